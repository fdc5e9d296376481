//! Shipping: the image (`scripts/build-image.sh`, the `Dockerfile`), the release tarball
//! (`scripts/release.sh`), and the version both carry, which the examples reference.
//!
//! The scripts build the static sidecar binary (minutes the first time; `tests/run.sh` builds
//! it before `cargo test`, so here cargo finds it up to date). The image test unpacks the
//! image's root filesystem and runs the binary in it with nothing else present (chroot).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::CommandFactory as _;
use serde_json::Value;
use support::wait::wait_for;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const IMAGE: &str = "ghcr.io/reconfig/reconfig";

/// Runs a script of `scripts/` and returns its stdout, trimmed; stderr is shown on failure.
///
/// The variables cargo sets for a test (`CARGO_PKG_*`, `LD_LIBRARY_PATH`, …) are removed: the
/// nested `cargo build` would otherwise see another environment than `tests/run.sh`'s build of
/// the same binary and rebuild it (minutes), and the next build from a shell would again.
fn script(name: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("bash");
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let ours = key.starts_with("CARGO") && !matches!(&*key, "CARGO_HOME" | "CARGO_TARGET_DIR");
        if ours || matches!(&*key, "LD_LIBRARY_PATH" | "RUST_RECURSION_COUNT") {
            cmd.env_remove(&*key);
        }
    }
    let out = cmd
        .arg(Path::new("scripts").join(name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} {args:?} failed:\n{stderr}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every text file under `dir` (recursively), with its contents.
fn text_files(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            text_files(&path, out);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            out.push((path, text));
        }
    }
}

/// The image the examples and snippets run is the one the build makes: one version, the
/// crate's, everywhere (`ghcr.io/reconfig/reconfig:TAG`, the snippets' default tag, the
/// Dockerfile's VERSION).
#[test]
fn every_image_reference_carries_the_crate_version() {
    let mut files = Vec::new();
    for dir in ["examples", "helm-snippets", "scripts"] {
        text_files(Path::new(dir), &mut files);
    }
    for file in ["README.md", "Dockerfile", "CHANGELOG.md", "SECURITY.md"] {
        files.push((file.into(), std::fs::read_to_string(file).expect(file)));
    }
    let reference = format!("{IMAGE}:");
    let mut found = 0;
    for (path, text) in &files {
        for (at, _) in text.match_indices(&reference) {
            let tag: String = text[at + reference.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect();
            let tag = tag.trim_end_matches('.');
            assert!(
                tag == VERSION
                    || tag == format!("{VERSION}-lean")
                    || matches!(tag, "VERSION" | "TAG"),
                "{}: {reference}{tag} is not the crate version {VERSION}",
                path.display()
            );
            found += 1;
        }
    }
    assert!(
        found >= 3,
        "the examples reference the image ({found} found)"
    );

    let dockerfile = std::fs::read_to_string("Dockerfile").expect("Dockerfile");
    assert!(
        dockerfile.contains(&format!("ARG VERSION={VERSION}\n")),
        "the Dockerfile's VERSION is not {VERSION}"
    );
    let template = "helm-snippets/reconfig-snippets/templates/_watch.tpl";
    let template = std::fs::read_to_string(template).expect(template);
    assert!(
        template.contains(&format!(
            "($image.repository | default \"{IMAGE}\") ($image.tag | default \"{VERSION}\")"
        )),
        "the snippets' default image is not {IMAGE}:{VERSION}"
    );
    let values = std::fs::read_to_string("helm-snippets/values-watch.yaml").expect("values");
    assert!(
        values.contains(&format!("repository: {IMAGE} ")),
        "{values}"
    );
    assert!(values.contains(&format!("tag: \"{VERSION}\" ")), "{values}");
}

/// The release tarball: checksums verify, it holds exactly the binary, docs, completions and
/// one man page per subcommand, and the binary runs.
#[test]
fn release_tarball_verifies_unpacks_and_runs() {
    let dist = tempfile::tempdir().expect("tempdir");
    let dist_arg = dist.path().to_str().expect("utf-8 path");
    let tarball = PathBuf::from(script("release.sh", &["--dist", dist_arg]));
    let name = format!("reconfig-{VERSION}-x86_64-unknown-linux-gnu");
    assert_eq!(tarball, dist.path().join(format!("{name}.tar.gz")));

    let sums = std::fs::read_to_string(dist.path().join("SHA256SUMS")).expect("SHA256SUMS");
    let mut listed: Vec<&str> = sums
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(_, f)| f)
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [format!("{name}.cdx.json"), format!("{name}.tar.gz")],
        "{sums}"
    );
    run(
        "sha256sum",
        &["--check", "--strict", "SHA256SUMS"],
        dist.path(),
    );
    // A flipped byte is caught: the check is real.
    let copy = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        dist.path().join("SHA256SUMS"),
        copy.path().join("SHA256SUMS"),
    )
    .expect("cp");
    let mut bytes = std::fs::read(&tarball).expect("tarball");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(copy.path().join(format!("{name}.tar.gz")), bytes).expect("write");
    std::fs::copy(
        dist.path().join(format!("{name}.cdx.json")),
        copy.path().join(format!("{name}.cdx.json")),
    )
    .expect("cp");
    let tampered = Command::new("sha256sum")
        .args(["--check", "--quiet", "SHA256SUMS"])
        .current_dir(copy.path())
        .output()
        .expect("sha256sum");
    assert!(
        !tampered.status.success(),
        "a changed tarball passed the checksum"
    );

    run(
        "tar",
        &["-xzf", tarball.to_str().expect("path")],
        dist.path(),
    );
    let root = dist.path().join(&name);
    let mut cli = reconfig::cli::Cli::command();
    cli.build();
    let mut expected: Vec<String> = [
        "CHANGELOG.md",
        "LICENSE",
        "README.md",
        "SECURITY.md",
        "completions/_reconfig",
        "completions/reconfig.bash",
        "completions/reconfig.fish",
        "man/reconfig.1",
        "reconfig",
    ]
    .map(String::from)
    .to_vec();
    for sub in cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        expected.push(format!("man/reconfig-{}.1", sub.get_name()));
    }
    expected.sort();
    let listing = run("find", &[".", "-type", "f"], &root);
    let mut files: Vec<String> = listing
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect();
    files.sort();
    assert_eq!(files, expected);
    let entries = run(
        "tar",
        &["-tvzf", tarball.to_str().expect("path")],
        dist.path(),
    );
    for line in entries.lines() {
        assert!(
            line.contains(" 0/0 "),
            "owned by root in the archive: {line}"
        );
    }

    let binary = root.join("reconfig");
    let version = run(binary.to_str().expect("path"), &["--version"], dist.path());
    assert_eq!(version.trim(), format!("reconfig {VERSION}"));
    assert_static(&binary);
    // The packaged docs are the repository's.
    for doc in ["LICENSE", "README.md", "CHANGELOG.md", "SECURITY.md"] {
        assert_eq!(
            std::fs::read(root.join(doc)).ok(),
            std::fs::read(doc).ok(),
            "{doc}"
        );
    }
    let completions = |file: &str| std::fs::read_to_string(root.join(file)).expect(file);
    assert!(completions("completions/reconfig.bash").contains("complete -F _reconfig"));
    assert!(completions("completions/_reconfig").starts_with("#compdef reconfig"));
    assert!(completions("completions/reconfig.fish").contains("complete -c reconfig"));
    for shell in ["bash", "zsh", "fish"] {
        let printed = run(
            binary.to_str().expect("path"),
            &["completions", shell],
            dist.path(),
        );
        assert!(
            printed.contains("--validate-cmd") && printed.contains("copy-binary"),
            "{shell}"
        );
    }
    let watch_page = completions("man/reconfig-watch.1");
    assert!(
        watch_page.starts_with(".ie") || watch_page.contains(".TH reconfig-watch 1"),
        "{watch_page}"
    );
    assert!(
        watch_page.contains("validate\\-cmd"),
        "the page documents the flags"
    );

    let sbom = std::fs::read_to_string(dist.path().join(format!("{name}.cdx.json"))).expect("sbom");
    let sbom: Value = serde_json::from_str(&sbom).expect("the SBOM is JSON");
    assert_eq!(sbom["bomFormat"], "CycloneDX", "{sbom}");
    let components: Vec<&str> = sbom["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for crate_name in ["clap", "tokio", "kube-client", "rustls", "saphyr-parser"] {
        assert!(
            components.contains(&crate_name),
            "{crate_name} missing from {components:?}"
        );
    }
    for absent in ["openssl", "openssl-sys", "proptest", "insta"] {
        assert!(
            !components.contains(&absent),
            "{absent} is not in the binary"
        );
    }
}

/// A statically linked ELF file has no program interpreter (PT_INTERP, type 3).
fn assert_static(binary: &Path) {
    let elf = std::fs::read(binary).expect("binary");
    assert_eq!(&elf[..4], b"\x7fELF");
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let u64_at = |at: usize| {
        let mut b = [0; 8];
        b.copy_from_slice(&elf[at..at + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let kind = u32::from_le_bytes(elf[phoff + i * phentsize..][..4].try_into().expect("4"));
        assert_ne!(
            kind,
            3,
            "{} has an interpreter: not static",
            binary.display()
        );
    }
}

/// The `LABEL`, `USER` and `ENTRYPOINT` of the Dockerfile's final stage, with `${VERSION}`
/// replaced by its `ARG` default: what the daemonless build must produce too.
fn dockerfile_final_stage() -> (BTreeMap<String, String>, String, Vec<String>) {
    let text = std::fs::read_to_string("Dockerfile").expect("Dockerfile");
    let last = text.rfind("\nFROM ").expect("a FROM");
    let stage = text[last..].replace("\\\n", " ");
    let mut labels = BTreeMap::new();
    let (mut user, mut entrypoint, mut version) = (String::new(), Vec::new(), String::new());
    for line in stage.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("ARG VERSION=") {
            version = v.to_string();
        } else if let Some(rest) = line.strip_prefix("LABEL ") {
            // key="value" pairs; values hold spaces, never quotes
            for pair in rest.split("\" ") {
                let (key, value) = pair.trim().split_once("=\"").expect("key=\"value\"");
                let value = value.trim_end_matches('"').replace("${VERSION}", &version);
                labels.insert(key.to_string(), value);
            }
        } else if let Some(u) = line.strip_prefix("USER ") {
            user = u.to_string();
        } else if let Some(e) = line.strip_prefix("ENTRYPOINT ") {
            entrypoint = serde_json::from_str(e).expect("ENTRYPOINT in exec form");
        }
    }
    (labels, user, entrypoint)
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("blob")).expect("JSON")
}

/// A command run as the image's user in `rootfs` as its root, with an empty environment.
fn in_rootfs(rootfs: &Path, args: &[&str]) -> Command {
    let mut cmd = if rustix::process::geteuid().is_root() {
        let mut cmd = Command::new(support::bins::find("chroot").expect("chroot (coreutils)"));
        cmd.arg("--userspec=65532:65532").arg(rootfs);
        cmd
    } else {
        // Unprivileged: a user namespace gives the chroot (as root of that namespace).
        let mut cmd = Command::new(support::bins::find("unshare").expect("unshare (util-linux)"));
        cmd.args(["--user", "--map-root-user", "chroot"])
            .arg(rootfs);
        cmd
    };
    cmd.arg("/reconfig").args(args).env_clear();
    cmd
}

/// The image: config as the Dockerfile says, one layer holding only /reconfig, under the
/// size goal; unpacked, its binary runs `--version`, `copy-binary` and a `watch` that
/// validates, serves /readyz and /status, and rejects a bad edit, with nothing else there.
#[test]
fn image_matches_the_dockerfile_and_runs_on_an_empty_filesystem() {
    let Some(umoci) = support::bins::require("umoci", "umoci") else {
        return;
    };
    if support::bins::require("skopeo", "skopeo").is_none() {
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let dir = out.path().join("image");
    let archive = script("build-image.sh", &["--out", dir.to_str().expect("path")]);
    assert_eq!(
        PathBuf::from(&archive),
        dir.join(format!("reconfig-{VERSION}-amd64.docker.tar"))
    );

    // The OCI layout: one image, tagged with the crate version.
    let layout = dir.join("oci");
    let index = json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"], VERSION,
        "{index}"
    );
    let manifest = json(&blob(
        &layout,
        manifests[0]["digest"].as_str().expect("digest"),
    ));
    let config = json(&blob(
        &layout,
        manifest["config"]["digest"].as_str().expect("digest"),
    ));
    let (labels, user, entrypoint) = dockerfile_final_stage();
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["config"]["User"], user.as_str());
    assert_eq!(user, "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(entrypoint)
    );
    assert_eq!(entrypoint, ["/reconfig"]);
    assert!(config["config"]["Cmd"].is_null(), "no CMD: {config}");
    let image_labels: BTreeMap<String, String> =
        serde_json::from_value(config["config"]["Labels"].clone()).expect("labels");
    assert_eq!(
        image_labels, labels,
        "the image's labels are the Dockerfile's"
    );
    assert_eq!(labels["org.opencontainers.image.version"], VERSION);
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(
        labels["org.opencontainers.image.source"],
        env!("CARGO_PKG_REPOSITORY")
    );

    // One layer, holding one file: /reconfig, root's, 0755; no shell, nothing else.
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer = blob(&layout, layers[0]["digest"].as_str().expect("digest"));
    let listing = run("tar", &["-tvzf", layer.to_str().expect("path")], out.path());
    // The layer's root folder entry (`./`, as umoci writes it) and one file.
    let (dirs, entries): (Vec<&str>, Vec<&str>) = listing.lines().partition(|l| l.starts_with('d'));
    for dir in &dirs {
        let fields: Vec<&str> = dir.split_whitespace().collect();
        assert_eq!(fields[..2], ["drwxr-xr-x", "0/0"], "{listing}");
        assert!(matches!(fields.last(), Some(&"./" | &".")), "{listing}");
    }
    assert!(dirs.len() <= 1, "{listing}");
    assert_eq!(entries.len(), 1, "{listing}");
    let fields: Vec<&str> = entries[0].split_whitespace().collect();
    assert_eq!(fields[0], "-rwxr-xr-x", "{listing}");
    assert_eq!(fields[1], "0/0", "{listing}");
    assert_eq!(
        fields.last().map(|n| n.trim_start_matches('/')),
        Some("reconfig")
    );
    let size: u64 = fields[2].parse().expect("size");
    eprintln!(
        "image: one layer, /reconfig {size} bytes uncompressed, layer {} bytes gzipped",
        std::fs::metadata(&layer).expect("layer").len()
    );
    assert!(
        size <= 10_000_000,
        "the image is over 10 MB uncompressed: {size} bytes"
    );

    // The docker-archive names the image with the same tag.
    let tar_manifest = run("tar", &["-xOf", &archive, "manifest.json"], out.path());
    let tar_manifest: Value = serde_json::from_str(&tar_manifest).expect("manifest.json");
    assert_eq!(
        tar_manifest[0]["RepoTags"],
        serde_json::json!([format!("{IMAGE}:{VERSION}")])
    );

    // Its root filesystem, unpacked: /reconfig and nothing else.
    let bundle = out.path().join("bundle");
    let image_ref = format!("{}:{VERSION}", layout.display());
    let mut unpack = Command::new(&umoci);
    unpack.arg("unpack");
    if !rustix::process::geteuid().is_root() {
        unpack.arg("--rootless");
    }
    let status = unpack
        .args(["--image", &image_ref])
        .arg(&bundle)
        .status()
        .expect("umoci");
    assert!(status.success(), "umoci unpack");
    let rootfs = bundle.join("rootfs");
    let names: Vec<String> = std::fs::read_dir(&rootfs)
        .expect("rootfs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["reconfig"]);

    let version = in_rootfs(&rootfs, &["--version"]).output().expect("chroot");
    assert!(
        version.status.success(),
        "{}",
        String::from_utf8_lossy(&version.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("reconfig {VERSION}")
    );

    // What the examples' init container does: the binary copies itself (no cp in the image).
    std::fs::create_dir(rootfs.join("bin-volume")).expect("mkdir");
    std::fs::set_permissions(
        rootfs.join("bin-volume"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let copy = in_rootfs(&rootfs, &["copy-binary", "/bin-volume/reconfig"])
        .output()
        .expect("chroot");
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    assert_eq!(
        std::fs::read(rootfs.join("bin-volume/reconfig")).expect("copy"),
        std::fs::read(rootfs.join("reconfig")).expect("binary")
    );

    // A short `watch`: a volume (here a plain folder) is all a pod adds to the image.
    std::fs::create_dir(rootfs.join("config")).expect("mkdir");
    std::fs::write(rootfs.join("config/app.yaml"), "port: 8080\n").expect("write");
    let addr = support::http::reserve_port();
    let listen = addr.to_string();
    let mut sidecar = in_rootfs(&rootfs, &["watch", "--dir", "/config", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chroot");
    let status = |want: &str| {
        wait_for(&format!("/status {want}"), support::wait::TIMEOUT, || {
            let body = support::http::get(addr, "/status")
                .map_err(|e| e.to_string())?
                .body;
            let phase: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
            if phase["phase"] == want {
                Ok(phase)
            } else {
                Err(body)
            }
        })
    };
    let applied = status("applied");
    let ready = support::http::get(addr, "/readyz").expect("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.body);
    // Idle resident memory of the image's binary, for the README.
    std::thread::sleep(Duration::from_secs(2));
    let proc_status =
        std::fs::read_to_string(format!("/proc/{}/status", sidecar.id())).expect("status");
    let rss = proc_status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?");
    eprintln!("sidecar from the image, idle: {rss}");

    std::fs::write(rootfs.join("config/app.yaml"), "port: [8080\n").expect("write");
    let rejected = status("rejected");
    assert_eq!(
        rejected["applied"], applied["hash"],
        "the app keeps the last good config"
    );
    assert!(
        rejected["message"]
            .as_str()
            .is_some_and(|m| m.contains("app.yaml")),
        "{rejected}"
    );

    let term = Command::new("kill")
        .args(["-TERM", &sidecar.id().to_string()])
        .status();
    assert!(term.expect("kill").success());
    let exit = wait_for("the sidecar to stop", support::wait::TIMEOUT, || {
        sidecar
            .try_wait()
            .map_err(|e| e.to_string())?
            .ok_or("running".to_string())
    });
    let mut log = String::new();
    std::io::Read::read_to_string(sidecar.stderr.as_mut().expect("stderr"), &mut log).expect("log");
    assert!(exit.success(), "{exit}: {log}");
}
