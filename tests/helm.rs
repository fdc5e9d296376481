//! End to end with the real Helm 3.17.2 and Helm 4.1.4: `examples/chart` rendered
//! through `reconfig inject` as a Helm 3 post-renderer and as the Helm 4 plugin
//! in `helm-snippets/helm-plugin`, plus the chart snippets in `helm-snippets/`.
//!
//! The Helm binaries come from `tests/tools/install-helm.sh`, which this file
//! runs itself (a no-op once cached), so plain `cargo test` works. If Helm
//! cannot be installed, every test here fails: nothing is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use support::kube_api::FakeApi;

mod support;

const CHART: &str = "examples/chart";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Tools {
    helm3: PathBuf,
    helm4: PathBuf,
    kubectl: PathBuf,
}

/// Installs (or finds in the cache) the Helm binaries, once per test process.
fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let script = root().join("tests/tools/install-helm.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}); the Helm end-to-end tests need it:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).expect("utf8");
        let get = |key: &str| -> PathBuf {
            let path = stdout
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("install-helm.sh printed no {key}=:\n{stdout}"));
            let path = PathBuf::from(path);
            assert!(path.is_file(), "{} is missing", path.display());
            path
        };
        Tools {
            helm3: get("HELM3"),
            helm4: get("HELM4"),
            kubectl: get("KUBECTL"),
        }
    })
}

/// The directory of the reconfig binary under test, for PATH.
fn reconfig_dir() -> PathBuf {
    Path::new(support::cli::BINARY)
        .parent()
        .expect("binary dir")
        .to_path_buf()
}

/// PATH with the reconfig under test first, then kubectl 1.35 (for
/// `kubectl kustomize`), then the caller's PATH.
fn path_with_reconfig() -> OsString {
    let kubectl_dir = tools().kubectl.parent().expect("kubectl dir").to_path_buf();
    let mut dirs = vec![reconfig_dir(), kubectl_dir];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH")
}

/// One Helm generation with its own HELM_*_HOME, so the user's plugins,
/// repositories and caches play no part, and a kubeconfig that points nowhere.
struct Helm {
    exe: PathBuf,
    home: tempfile::TempDir,
    v4: bool,
}

impl Helm {
    fn new(exe: &Path, v4: bool) -> Helm {
        Helm {
            exe: exe.to_path_buf(),
            home: tempfile::tempdir().expect("tempdir"),
            v4,
        }
    }

    fn v3() -> Helm {
        Helm::new(&tools().helm3, false)
    }

    /// Helm 4 with the plugin installed from `helm-snippets/helm-plugin`.
    fn v4() -> Helm {
        let helm = Helm::new(&tools().helm4, true);
        helm.install_plugin(&root().join("helm-snippets/helm-plugin"));
        helm
    }

    fn install_plugin(&self, dir: &Path) {
        let out = self.run(&["plugin", "install", dir.to_str().expect("utf8 path")]);
        assert!(out.contains("Installed plugin: reconfig"), "{out}");
    }

    fn cmd(&self) -> Command {
        self.cmd_with(&self.exe)
    }

    /// A command for another Helm binary with this one's homes and PATH.
    fn cmd_with(&self, exe: &Path) -> Command {
        let mut cmd = Command::new(exe);
        let home = self.home.path();
        cmd.current_dir(root())
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("KUBECONFIG", home.join("no-kubeconfig"))
            .env("PATH", path_with_reconfig())
            .env_remove("HELM_PLUGINS")
            .env_remove("HELM_DEBUG");
        support::cli::clear_env(&mut cmd);
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run helm")
    }

    /// Runs helm, asserts success, returns stdout.
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "helm {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// The arguments that make this Helm post-render with reconfig.
    fn post_renderer(&self) -> Vec<&'static str> {
        if self.v4 {
            vec!["--post-renderer", "reconfig"]
        } else {
            vec![
                "--post-renderer",
                "reconfig",
                "--post-renderer-args",
                "inject",
            ]
        }
    }

    /// `helm template shop examples/chart` through reconfig, with extra arguments.
    fn render(&self, extra: &[&str]) -> String {
        let mut args = vec!["template", "shop", CHART];
        args.extend(self.post_renderer());
        args.extend(extra);
        self.run(&args)
    }

    /// The same render without reconfig. Helm 4 re-serializes whatever a
    /// post-renderer returns (list indentation changes, for one), so there
    /// the baseline goes through a plugin that returns its input unchanged.
    fn render_plain(&self, extra: &[&str]) -> String {
        let mut args = vec!["template", "shop", CHART];
        if self.v4 {
            self.install_script_plugin("identity", "exec cat");
            args.extend(["--post-renderer", "identity"]);
        }
        args.extend(extra);
        self.run(&args)
    }

    /// Installs a postrenderer/v1 plugin NAME that runs `sh run.sh` with this body.
    /// The script is read by sh, never exec'd: a file just written can be
    /// ETXTBSY to exec while another test thread forks.
    fn install_script_plugin(&self, name: &str, body: &str) {
        let dir = self.home.path().join(format!("plugin-{name}"));
        if dir.exists() {
            return;
        }
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("plugin.yaml"),
            format!(
                "apiVersion: v1\ntype: postrenderer/v1\nname: {name}\nversion: 0.1.0\n\
                 runtime: subprocess\nruntimeConfig:\n  platformCommand:\n\
                 \x20   - command: /bin/sh\n\
                 \x20     args: [\"${{HELM_PLUGIN_DIR}}/run.sh\"]\n"
            ),
        )
        .unwrap();
        fs::write(dir.join("run.sh"), format!("{body}\n")).unwrap();
        let out = self.run(&["plugin", "install", dir.to_str().expect("utf8 path")]);
        assert!(out.contains(&format!("Installed plugin: {name}")), "{out}");
    }
}

/// One document of a rendered stream, read the way Helm writes them: block
/// YAML, `kind:` and `metadata.name` at fixed indents.
#[derive(Debug)]
struct Doc {
    text: String,
    source: Option<String>,
    kind: String,
    name: String,
}

impl Doc {
    fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// Values of every annotation line with this key.
    fn annotations(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}: ");
        self.text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix(&prefix))
            .map(|v| v.trim_matches('"').to_string())
            .collect()
    }

    fn checksum(&self) -> Option<String> {
        let mut all = self.annotations("checksum/config");
        assert!(all.len() <= 1, "{} has several checksums", self.id());
        all.pop()
    }

    fn is_hook(&self) -> bool {
        self.text.contains("helm.sh/hook:")
    }
}

fn docs(stream: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut flush = |text: &mut String| {
        let t = std::mem::take(text);
        if t.trim().is_empty() {
            return;
        }
        let kind = t
            .lines()
            .find_map(|l| l.strip_prefix("kind: "))
            .unwrap_or_else(|| panic!("no kind in:\n{t}"))
            .to_string();
        let name = t
            .lines()
            .skip_while(|l| *l != "metadata:")
            .find_map(|l| l.strip_prefix("  name: "))
            .unwrap_or_else(|| panic!("no metadata.name in:\n{t}"))
            .to_string();
        let source = t
            .lines()
            .find_map(|l| l.strip_prefix("# Source: "))
            .map(str::to_string);
        docs.push(Doc {
            text: t,
            source,
            kind,
            name,
        });
    };
    for line in stream.lines() {
        if line == "---" {
            flush(&mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current);
    docs
}

/// `Kind/name` → checksum annotation, for every document.
fn checksums(stream: &str) -> BTreeMap<String, Option<String>> {
    let mut map = BTreeMap::new();
    for d in docs(stream) {
        let id = d.id();
        assert!(map.insert(id.clone(), d.checksum()).is_none(), "{id} twice");
    }
    map
}

const ANNOTATED: &[&str] = &[
    "CronJob/shop-report",
    "Deployment/shop-edge",
    "Deployment/shop-web",
    "Rollout/shop-api",
    "StatefulSet/shop-worker",
];

/// Everything the example chart's render must show, whichever Helm made it.
fn check_render(post: &str, plain: &str) {
    let (post_docs, plain_docs) = (docs(post), docs(plain));
    assert_eq!(
        post_docs.iter().map(Doc::id).collect::<Vec<_>>(),
        plain_docs.iter().map(Doc::id).collect::<Vec<_>>(),
        "the post-renderer must keep every document, in order"
    );

    let annotated: Vec<String> = post_docs
        .iter()
        .filter(|d| d.checksum().is_some())
        .map(Doc::id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(annotated, ANNOTATED, "annotated workloads");

    for (p, q) in post_docs.iter().zip(&plain_docs) {
        // Helm shows each document under its real template file.
        let source = p.source.as_deref().unwrap_or_else(|| {
            panic!("{} lost its # Source: comment", p.id());
        });
        assert_eq!(p.source, q.source, "{}", p.id());
        assert!(
            source.starts_with("shop/templates/") && !source.contains("generated-by-postrender"),
            "{}: {source}",
            p.id()
        );
        if let Some(sum) = p.checksum() {
            assert_eq!(sum.len(), 64, "{}: {sum}", p.id());
            assert!(!p.is_hook());
            assert_only_annotation_added(q, p);
        } else {
            assert_eq!(p.text, q.text, "{} must come out unchanged", p.id());
        }
    }

    let hooks: Vec<String> = post_docs
        .iter()
        .filter(|d| d.is_hook())
        .map(Doc::id)
        .collect();
    assert_eq!(hooks, ["ConfigMap/shop-migrate", "Job/shop-migrate"]);

    let edge = post_docs
        .iter()
        .find(|d| d.id() == "Rollout/shop-edge")
        .expect("Rollout/shop-edge");
    assert!(edge.text.contains("  workloadRef:"), "{}", edge.text);
    assert!(
        !edge.text.contains("template:"),
        "a Rollout with workloadRef must stay template-free:\n{}",
        edge.text
    );

    // Helm 4 strips its own filename annotation again before printing.
    assert!(!post.contains("postrenderer.helm.sh/"), "{post}");
    assert!(!post.contains("generated-by-postrender"), "{post}");
}

/// `after` is `before` plus the checksum line (and `annotations:`/`metadata:`
/// where the pod template had none), every other line kept in order.
fn assert_only_annotation_added(before: &Doc, after: &Doc) {
    let mut old = before.text.lines().peekable();
    for line in after.text.lines() {
        if old.peek() == Some(&line) {
            old.next();
        } else {
            let t = line.trim_start();
            assert!(
                t.starts_with("checksum/config: \"") || t == "annotations:" || t == "metadata:",
                "{}: unexpected line {line:?}",
                after.id()
            );
        }
    }
    assert_eq!(old.next(), None, "{}: lines were lost", after.id());
}

#[test]
fn helm3_post_renderer_annotates_workloads_keeps_sources() {
    let helm = Helm::v3();
    let post = helm.render(&[]);
    let plain = helm.render_plain(&[]);
    check_render(&post, &plain);
}

#[test]
fn helm4_plugin_annotates_workloads_keeps_file_names() {
    let helm = Helm::v4();
    let post = helm.render(&[]);
    let plain = helm.render_plain(&[]);
    check_render(&post, &plain);
    // Both generations feed reconfig the same objects: same checksums.
    assert_eq!(checksums(&post), checksums(&Helm::v3().render(&[])));
}

/// Helm 4's side of the contract, as reference.md describes it, seen by a
/// plugin that keeps a copy of its stdin.
#[test]
fn helm4_sends_hooks_and_filenames_to_the_plugin() {
    let helm = Helm::new(&tools().helm4, true);
    let capture = helm.home.path().join("stdin.yaml");
    helm.install_script_plugin("capture", &format!("exec tee '{}'", capture.display()));
    helm.run(&[
        "template",
        "shop",
        CHART,
        "-n",
        "demo",
        "--post-renderer",
        "capture",
    ]);
    let sent = fs::read_to_string(&capture).unwrap();
    let sent_docs = docs(&sent);
    assert!(
        sent_docs.iter().any(|d| d.id() == "Job/shop-migrate"),
        "Helm 4 sends hooks"
    );
    assert!(!sent.contains("# Source:"), "Helm 4 sends no # Source:");
    for d in &sent_docs {
        assert_eq!(
            d.annotations("postrenderer.helm.sh/postrender-filename")
                .len(),
            1,
            "{}",
            d.id()
        );
    }
    assert!(!sent.contains("demo"), "Helm 4 gives no namespace");
}

#[test]
fn show_only_still_works() {
    for helm in [Helm::v3(), Helm::v4()] {
        let out = helm.render(&["--show-only", "templates/cronjob.yaml"]);
        let d = docs(&out);
        assert_eq!(d.len(), 1, "{out}");
        assert_eq!(d[0].id(), "CronJob/shop-report");
        assert_eq!(d[0].source.as_deref(), Some("shop/templates/cronjob.yaml"));
        assert!(d[0].checksum().is_some(), "{out}");
    }
}

#[test]
fn changing_one_value_rolls_exactly_its_users() {
    let cases: &[(&str, &[&str])] = &[
        (
            "logLevel=debug",
            &["Deployment/shop-web", "Rollout/shop-api"],
        ),
        ("featureFlags=checkout", &["Deployment/shop-web"]),
        ("worker.concurrency=8", &["StatefulSet/shop-worker"]),
        (
            "worker.reportFormat=json",
            &["CronJob/shop-report", "StatefulSet/shop-worker"],
        ),
        ("edge.workerConnections=2048", &["Deployment/shop-edge"]),
        (
            "db.password=hunter2",
            &["Deployment/shop-web", "StatefulSet/shop-worker"],
        ),
        ("migrate.lockTimeout=5m", &[]),
    ];
    for helm in [Helm::v3(), Helm::v4()] {
        let base = checksums(&helm.render(&[]));
        for (set, users) in cases {
            let changed = checksums(&helm.render(&["--set", set]));
            assert_eq!(
                base.keys().collect::<Vec<_>>(),
                changed.keys().collect::<Vec<_>>()
            );
            let differing: Vec<&str> = base
                .iter()
                .filter(|(id, sum)| changed[*id] != **sum)
                .map(|(id, _)| id.as_str())
                .collect();
            assert_eq!(&differing, users, "--set {set} (helm 4: {})", helm.v4);
        }
    }
}

#[test]
fn helm4_passes_post_renderer_args_on() {
    let helm = Helm::v4();
    let out = helm.render(&["--post-renderer-args=--annotation=example.com/config-hash"]);
    let d = docs(&out);
    let with_key: BTreeSet<String> = d
        .iter()
        .filter(|d| d.annotations("example.com/config-hash").len() == 1)
        .map(Doc::id)
        .collect();
    assert_eq!(with_key, ANNOTATED.iter().map(|s| s.to_string()).collect());
    assert!(!out.contains("checksum/config"));

    // An explicit subcommand passes through unchanged.
    let out = helm.render(&[
        "--post-renderer-args",
        "inject",
        "--post-renderer-args",
        "-q",
    ]);
    assert_eq!(checksums(&out).values().flatten().count(), ANNOTATED.len());
}

/// `helm install` (client-side dry run: no cluster here) goes through the plugin too.
#[test]
fn helm4_install_dry_run_uses_the_plugin() {
    let helm = Helm::v4();
    let out = helm.run(&[
        "install",
        "shop",
        CHART,
        "-n",
        "shop",
        "--dry-run=client",
        "--post-renderer",
        "reconfig",
        "--post-renderer-args=--namespace=shop",
    ]);
    assert_eq!(
        out.matches("checksum/config: ").count(),
        ANNOTATED.len(),
        "{out}"
    );
    assert!(!out.contains("generated-by-postrender"));
}

/// Helm 3 and Helm 4 share ~/.local/share/helm by default. Helm 3 cannot read
/// a Helm 4 plugin.yaml: it warns on every command, but still works.
#[test]
fn helm3_tolerates_the_helm4_plugin_in_a_shared_data_home() {
    let helm = Helm::v4();
    let out = helm
        .cmd_with(&tools().helm3)
        .args(["template", "shop", CHART])
        .args(Helm::v3().post_renderer())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("failed to load plugin"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        checksums(&stdout).values().flatten().count(),
        ANNOTATED.len()
    );
}

const MISSING: &str = r#"ConfigMap "shop-extra""#;

#[test]
fn helm3_shows_why_the_post_renderer_failed() {
    let helm = Helm::v3();
    let out = helm.output(&[
        "template",
        "shop",
        CHART,
        "--set",
        "extraEnvFromConfigMap=shop-extra",
        "--post-renderer",
        "reconfig",
        "--post-renderer-args",
        "inject",
        "--post-renderer-args",
        "--strict",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "helm must fail:\n{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains(MISSING), "{stderr}");
    assert!(
        stderr.contains("shop/templates/deployment.yaml"),
        "{stderr}"
    );
}

#[test]
fn helm4_failure_is_diagnosable_through_the_log_file() {
    let helm = Helm::v4();
    let log = helm.home.path().join("reconfig.log");
    let log_arg = format!("--post-renderer-args=--log-file={}", log.display());
    let out = helm.output(&[
        "template",
        "shop",
        CHART,
        "--set",
        "extraEnvFromConfigMap=shop-extra",
        "--post-renderer",
        "reconfig",
        "--post-renderer-args=--strict",
        &log_arg,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "helm must fail:\n{stderr}");
    assert!(
        stderr.contains(r#"plugin "reconfig" exited with error"#),
        "{stderr}"
    );
    // Helm 4 swallows the plugin's stderr, even on failure ...
    assert!(!stderr.contains(MISSING), "{stderr}");
    // ... so the diagnostic is in the log file.
    let logged = fs::read_to_string(&log).expect("reconfig wrote its log file");
    assert!(logged.contains(MISSING), "{logged}");
    assert!(
        logged.contains("shop/templates/deployment.yaml"),
        "{logged}"
    );
}

/// A copy of the plugin with `bin/reconfig` inside it, run with a PATH that
/// has no reconfig: the launcher finds the binary next to itself.
#[test]
fn helm4_plugin_runs_the_binary_next_to_it() {
    let helm = Helm::new(&tools().helm4, true);
    let plugin = helm.home.path().join("reconfig-plugin");
    fs::create_dir_all(plugin.join("bin")).unwrap();
    // Symlinks, not copies: exec'ing a file this process just wrote can fail
    // with ETXTBSY while another test thread forks.
    for f in ["plugin.yaml", "reconfig-plugin.sh"] {
        symlink(
            root().join("helm-snippets/helm-plugin").join(f),
            plugin.join(f),
        )
        .unwrap();
    }
    helm.install_plugin(&plugin);
    let args = ["template", "shop", CHART, "--post-renderer", "reconfig"];

    // Not in bin/ and not on PATH: Helm fails, and the launcher says why.
    let bare_path = "/usr/bin:/bin";
    let out = helm
        .cmd()
        .env("PATH", bare_path)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let direct = Command::new(plugin.join("reconfig-plugin.sh"))
        .env("PATH", bare_path)
        .env_remove("HELM_PLUGIN_DIR")
        .output()
        .unwrap();
    assert_eq!(direct.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&direct.stderr).contains("no reconfig binary"));

    symlink(support::cli::BINARY, plugin.join("bin/reconfig")).unwrap();
    let out = helm
        .cmd()
        .env("PATH", bare_path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(checksums(&out).values().flatten().count(), ANNOTATED.len());
}

#[test]
fn helm_lint_accepts_the_example_chart() {
    for helm in [Helm::v3(), Helm::v4()] {
        helm.run(&["lint", "--strict", CHART]);
    }
}

// ---- helm-snippets/: the library chart, through its demo chart ----------------

/// A copy of `helm-snippets/{demo,reconfig-snippets}` with the dependency built,
/// so tests can edit the chart. Returns (tempdir, demo chart path).
fn snippets_demo(helm: &Helm) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    for dir in ["demo", "reconfig-snippets"] {
        copy_dir(
            &root().join("helm-snippets").join(dir),
            &tmp.path().join(dir),
        );
    }
    let demo = tmp.path().join("demo");
    let _ = fs::remove_dir_all(demo.join("charts"));
    helm.run(&["dependency", "build", demo.to_str().unwrap()]);
    (tmp, demo)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn find<'a>(docs: &'a [Doc], id: &str) -> &'a Doc {
    docs.iter()
        .find(|d| d.id() == id)
        .unwrap_or_else(|| panic!("no {id} in the render"))
}

/// The text between `start` (a line ending in ':') and the next line indented
/// no deeper than it.
fn block<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in:\n{text}"));
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let indent = at - line_start;
    let rest = &text[at..];
    let mut end = rest.len();
    let mut offset = 0;
    for (i, line) in rest.split_inclusive('\n').enumerate() {
        if i > 0 {
            let ind = line.len() - line.trim_start().len();
            if !line.trim().is_empty() && ind <= indent {
                end = offset;
                break;
            }
        }
        offset += line.len();
    }
    &rest[..end]
}

fn assert_hardened_sidecar(container: &str) {
    for needle in [
        "- name: reconfig-watch",
        "image: \"registry.example.com/reconfig:0.1.0\"",
        "- watch\n",
        "\"--dir=/config/raw\"",
        "\"--listen=:9533\"",
        "- name: watch-metrics\n",
        "containerPort: 9533",
        "livenessProbe:\n",
        "path: /healthz",
        "readinessProbe:\n",
        "path: /readyz",
        "runAsNonRoot: true",
        "runAsUser: 10001",
        "allowPrivilegeEscalation: false",
        "readOnlyRootFilesystem: true",
        "drop: [ALL]",
        "requests:\n",
        "limits:\n",
        "memory: 64Mi",
    ] {
        assert!(
            container.contains(needle),
            "{needle:?} missing in:\n{container}"
        );
    }
    assert!(
        !container.contains("add:"),
        "no capability is added:\n{container}"
    );
}

#[test]
fn snippets_render_and_lint_with_both_helms() {
    let (h3, h4) = (Helm::v3(), Helm::v4());
    let (_tmp, demo) = snippets_demo(&h3);
    let demo = demo.to_str().unwrap();
    let mut renders = Vec::new();
    for helm in [&h3, &h4] {
        helm.run(&["lint", "--strict", demo]);
        renders.push(helm.run(&["template", "r", demo, "-n", "apps"]));
    }
    assert_eq!(
        renders[0], renders[1],
        "Helm 3 and Helm 4 render the snippets alike"
    );
    let all = docs(&renders[0]);

    // Native sidecar: an init container that keeps running, gating the app on /readyz.
    let native = &find(&all, "Deployment/r-native").text;
    assert!(
        native.contains("      shareProcessNamespace: true\n"),
        "{native}"
    );
    assert!(native.contains("      serviceAccountName: r-reconfig\n"));
    let init = block(native, "initContainers:");
    assert_hardened_sidecar(init);
    assert!(init.contains("restartPolicy: Always"), "{init}");
    let startup = block(init, "startupProbe:");
    assert!(startup.contains("path: /readyz") && startup.contains("port: watch-metrics"));
    for arg in ["--publish=/config/live", "--signal=SIGHUP", "--process=app"] {
        assert!(init.contains(&format!("\"{arg}\"")), "{arg} in:\n{init}");
    }
    for arg in ["- --events\n", "- --annotate-pod\n"] {
        assert!(init.contains(arg), "{arg} in:\n{init}");
    }
    for (var, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
        ("POD_UID", "metadata.uid"),
    ] {
        let trimmed: Vec<&str> = init.lines().map(str::trim).collect();
        let want = [
            format!("- name: {var}"),
            "valueFrom:".into(),
            "fieldRef:".into(),
            format!("fieldPath: {field}"),
        ];
        assert!(
            trimmed.windows(4).any(|w| w == want),
            "{var} from {field} in:\n{init}"
        );
    }
    assert!(
        block(native, "volumes:").contains("- name: reconfig-published\n          emptyDir:"),
        "{native}"
    );

    // Classic form: a plain container next to the app; webhook mode needs no shared PIDs.
    let classic = &find(&all, "Deployment/r-classic").text;
    assert!(!classic.contains("shareProcessNamespace"), "{classic}");
    assert!(!classic.contains("initContainers"), "{classic}");
    let containers = block(classic, "containers:");
    assert_hardened_sidecar(containers);
    assert!(!containers.contains("restartPolicy"));
    assert!(!containers.contains("startupProbe"));
    assert!(containers.contains("\"--webhook=http://127.0.0.1:8080/-/reload\""));

    // RBAC in the release namespace: Events and its own pod.
    for id in [
        "ServiceAccount/r-reconfig",
        "Role/r-reconfig",
        "RoleBinding/r-reconfig",
    ] {
        assert!(find(&all, id).text.contains("  namespace: apps\n"), "{id}");
    }
    let role = &find(&all, "Role/r-reconfig").text;
    assert!(role.contains(
        "apiGroups: [events.k8s.io]\n    resources: [events]\n    verbs: [create, patch]\n"
    ));
    assert!(role.contains("apiGroups: [\"\"]\n    resources: [pods]\n    verbs: [get, patch]\n"));
    assert_eq!(
        role.matches("apiGroups:").count(),
        2,
        "nothing beyond what --events and --annotate-pod use:\n{role}"
    );
    let policy = &find(&all, "ValidatingAdmissionPolicy/apps-r-reconfig-own-pod").text;
    assert!(policy.contains("system:serviceaccount:apps:r-reconfig"));
    find(
        &all,
        "ValidatingAdmissionPolicyBinding/apps-r-reconfig-own-pod",
    );
}

/// The `args:` list of the sidecar in a rendered container block.
fn sidecar_args(container: &str) -> Vec<String> {
    let args = block(container, "args:");
    args.lines()
        .skip(1)
        .map(|l| {
            let v = l.trim_start().strip_prefix("- ").expect("list item");
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
                .to_string()
        })
        .collect()
}

/// The rendered arguments are ones the real `reconfig watch` accepts: clap
/// parses every argument before acting on `--help`, so an unknown flag or a bad
/// value fails with exit 2 and a good command line prints help.
fn assert_watch_accepts(args: &[String]) {
    assert_eq!(args.first().map(String::as_str), Some("watch"), "{args:?}");
    let run = |extra: &[&str]| {
        support::cli::command()
            .args(args)
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run(&["--help"]);
    assert!(
        ok.status.success(),
        "reconfig rejects {args:?}:\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(run(&["--no-such-flag", "--help"]).status.code(), Some(2));
}

#[test]
fn watch_snippet_args_are_accepted_by_reconfig_watch() {
    let helm = Helm::v3();
    let (_tmp, demo) = snippets_demo(&helm);
    let demo = demo.to_str().unwrap();
    let all = docs(&helm.run(&[
        "template",
        "r",
        demo,
        "--set",
        "reconfigWatch.restart=true,reconfigWatch.exec=/bin/true",
        "--set",
        "reconfigWatch.extraArgs={--debounce=200ms,--jitter=2s}",
    ]));
    let native = sidecar_args(block(
        &find(&all, "Deployment/r-native").text,
        "initContainers:",
    ));
    for arg in [
        "--restart",
        "--exec=/bin/true",
        "--debounce=200ms",
        "--process=app",
    ] {
        assert!(native.iter().any(|a| a == arg), "{arg} in {native:?}");
    }
    assert_watch_accepts(&native);
    let classic = block(&find(&all, "Deployment/r-classic").text, "containers:");
    let classic = &classic[classic.find("- name: reconfig-watch").unwrap()..];
    assert_watch_accepts(&sidecar_args(classic));

    // Several webhooks.
    let all = docs(&helm.run(&[
        "template",
        "r",
        demo,
        "--set",
        "reconfigWatch.webhook={http://127.0.0.1:1/a,http://127.0.0.1:2/b}",
    ]));
    let native = sidecar_args(block(
        &find(&all, "Deployment/r-native").text,
        "initContainers:",
    ));
    let hooks: Vec<&String> = native
        .iter()
        .filter(|a| a.starts_with("--webhook="))
        .collect();
    assert_eq!(hooks.len(), 2, "{native:?}");
    assert_watch_accepts(&native);
}

#[test]
fn watch_snippet_rejects_a_signal_without_a_target() {
    let helm = Helm::v3();
    let (_tmp, demo) = snippets_demo(&helm);
    let out = helm.output(&[
        "template",
        "r",
        demo.to_str().unwrap(),
        "--set",
        "reconfigWatch.process=",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("signal needs process or pidFile"),
        "{stderr}"
    );
}

#[test]
fn checksum_snippet_hashes_data_not_template_text() {
    let (h3, h4) = (Helm::v3(), Helm::v4());
    let (_tmp, demo) = snippets_demo(&h3);
    // For contrast, the common idiom that hashes the template's text.
    fs::write(
        demo.join("templates/naive.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: naive\ndata:\n  \
         sum: {{ include (print $.Template.BasePath \"/configmap.yaml\") . | sha256sum | quote }}\n",
    )
    .unwrap();
    let demo_str = demo.to_str().unwrap().to_string();
    let sums = |helm: &Helm, set: &[&str]| -> (String, String) {
        let mut args = vec!["template", "r", demo_str.as_str()];
        for s in set {
            args.extend(["--set", s]);
        }
        let all = docs(&helm.run(&args));
        let ours = find(&all, "Deployment/r-checksum").checksum().unwrap();
        let naive = find(&all, "ConfigMap/naive")
            .annotations("sum")
            .pop()
            .unwrap();
        (ours, naive)
    };

    let (base, naive_base) = sums(&h3, &[]);
    assert_eq!(base.len(), 64);
    assert_eq!(sums(&h4, &[]).0, base, "same checksum under Helm 4");

    // A comment, a label, the chart version and key order: nothing the pod sees.
    let cm = demo.join("templates/configmap.yaml");
    let text = fs::read_to_string(&cm).unwrap();
    let schema = "  app.schema.json: |\n    {\"type\": \"object\", \"required\": [\"logLevel\"]}\n";
    let edited = text
        .replacen("\ndata:\n", "\n# a new comment\ndata:\n", 1)
        .replacen("  labels:\n", "  labels:\n    team: payments\n", 1)
        .replacen(schema, "", 1)
        .replacen("\ndata:\n", &format!("\ndata:\n{schema}"), 1);
    assert_ne!(edited, text);
    fs::write(&cm, &edited).unwrap();
    let chart = demo.join("Chart.yaml");
    let meta = fs::read_to_string(&chart).unwrap();
    fs::write(&chart, meta.replace("version: 0.3.0", "version: 0.3.1")).unwrap();

    let (after_edit, naive_after_edit) = sums(&h3, &[]);
    assert_eq!(
        after_edit, base,
        "comment/label/version/order changes must not restart pods"
    );
    assert_ne!(
        naive_after_edit, naive_base,
        "the text-hashing idiom changes on the same edit"
    );

    // Data does count, in the ConfigMap and in the Secret of the same file.
    let (debug, _) = sums(&h3, &["config.logLevel=debug"]);
    assert_ne!(debug, base);
    let (token, _) = sums(&h3, &["secret.apiToken=other"]);
    assert_ne!(token, base);
    assert_ne!(token, debug);
    assert_eq!(sums(&h4, &["config.logLevel=debug"]).0, debug);
}

// ---- examples/kustomize ---------------------------------------------------------

fn run_pipeline(script: &str) -> String {
    let out = support::cli::clear_env(&mut Command::new("sh"))
        .args(["-c", script])
        .current_dir(root())
        .env("PATH", path_with_reconfig())
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn kustomize_build_piped_into_reconfig() {
    assert!(tools().kubectl.is_file());
    let prod = run_pipeline(
        "kubectl kustomize examples/kustomize/overlays/prod | reconfig inject -n prod",
    );
    let base = run_pipeline("kubectl kustomize examples/kustomize/base | reconfig inject");
    let (prod, base) = (checksums(&prod), checksums(&base));
    let (p, b) = (&prod["Deployment/api"], &base["Deployment/api"]);
    assert!(p.is_some() && b.is_some(), "{prod:?} {base:?}");
    assert_ne!(p, b, "the overlay's RATE_LIMIT patch changes the checksum");
}

/// Helm, then kustomize patches, then reconfig: the checksum sees the patched
/// config. The chain's patch sets LOG_LEVEL=warn, so its checksums must equal
/// those of `--set logLevel=warn` without kustomize.
#[test]
fn helm_post_renderer_chained_with_kustomize() {
    let h3 = Helm::v3();
    let h4 = Helm::v4();
    let dir = root().join("examples/kustomize/post-render");
    let out = h4.run(&["plugin", "install", dir.to_str().unwrap()]);
    assert!(
        out.contains("Installed plugin: kustomize-reconfig"),
        "{out}"
    );

    let expected = checksums(&h3.render(&["--set", "logLevel=warn"]));
    let base = checksums(&h3.render(&[]));
    assert_ne!(expected["Deployment/shop-web"], base["Deployment/shop-web"]);

    let chained3 = h3.run(&[
        "template",
        "shop",
        CHART,
        "--post-renderer",
        "examples/kustomize/post-render/post-render.sh",
    ]);
    let chained4 = h4.run(&[
        "template",
        "shop",
        CHART,
        "--post-renderer",
        "kustomize-reconfig",
    ]);
    for chained in [&chained3, &chained4] {
        assert_eq!(checksums(chained), expected);
        let web = docs(chained)
            .into_iter()
            .find(|d| d.id() == "Deployment/shop-web")
            .unwrap();
        assert!(web.text.contains("  replicas: 4\n"), "{}", web.text);
    }
    // Helm 4 still knows every file name after kustomize.
    assert!(!chained4.contains("generated-by-postrender"));
    assert!(chained4.contains("# Source: shop/templates/deployment.yaml"));
}

// ---- examples/argocd-cmp -------------------------------------------------------

/// The `generate` script of the CMP's plugin.yaml: the literal block under `args: - |`.
fn cmp_generate_script() -> String {
    let text = fs::read_to_string(root().join("examples/argocd-cmp/plugin.yaml")).unwrap();
    let after = &text[text.find("  generate:\n").expect("generate")..];
    assert!(after.contains("command: [bash, -c]"), "{after}");
    let start = after.find("- |\n").expect("literal block") + 4;
    let mut script = String::new();
    for line in after[start..].lines() {
        match line.strip_prefix("        ") {
            Some(l) => script.push_str(l),
            None if line.trim().is_empty() => {}
            None => break,
        }
        script.push('\n');
    }
    assert!(script.contains("reconfig inject"), "{script}");
    script
}

/// Runs the CMP's generate as argocd-cmp-server would: in the app's folder,
/// with the Application's variables, `helm` being the given binary.
fn run_cmp(helm: &Path, values_file: &str) -> Output {
    let bin = tempfile::tempdir().unwrap();
    symlink(helm, bin.path().join("helm")).unwrap();
    let mut dirs = vec![bin.path().to_path_buf()];
    dirs.extend(std::env::split_paths(&path_with_reconfig()));
    let home = tempfile::tempdir().unwrap();
    support::cli::clear_env(&mut Command::new("bash"))
        .args(["-c", &cmp_generate_script()])
        .current_dir(root().join(CHART))
        .env("PATH", std::env::join_paths(dirs).unwrap())
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env("ARGOCD_APP_NAME", "shop")
        .env("ARGOCD_APP_NAMESPACE", "shop-prod")
        .env("KUBE_VERSION", "1.31.0")
        .env("ARGOCD_ENV_VALUES_FILE", values_file)
        .output()
        .expect("bash")
}

#[test]
fn argocd_cmp_generate_renders_annotated_manifests() {
    let expected = checksums(&Helm::v3().render(&[]));
    for helm in [&tools().helm3, &tools().helm4] {
        let first = run_cmp(helm, "values.yaml");
        assert!(
            first.status.success(),
            "{}",
            String::from_utf8_lossy(&first.stderr)
        );
        let out = String::from_utf8(first.stdout).unwrap();
        assert_eq!(checksums(&out), expected, "{}", helm.display());
        // Deterministic: a refresh renders the same bytes, so Argo CD sees no drift.
        let second = run_cmp(helm, "values.yaml");
        assert_eq!(String::from_utf8(second.stdout).unwrap(), out);

        let failed = run_cmp(helm, "no-such-values.yaml");
        assert!(
            !failed.status.success(),
            "a failing helm template must fail generate"
        );
    }
}

// ---- install and upgrade, against a stand-in API server --------------------

/// Workload id → its pod template's checksum, as the (stand-in) cluster stores them.
fn stored_checksums(api: &FakeApi) -> BTreeMap<String, Option<String>> {
    let mut found = BTreeMap::new();
    for kind in ["Deployment", "StatefulSet", "CronJob", "Rollout", "Job"] {
        for object in api.objects(kind) {
            let spec = &object["spec"];
            let template = if kind == "CronJob" {
                &spec["jobTemplate"]["spec"]["template"]
            } else {
                &spec["template"]
            };
            let name = object["metadata"]["name"].as_str().expect("name");
            let checksum = template["metadata"]["annotations"]["checksum/config"]
                .as_str()
                .map(str::to_string);
            found.insert(format!("{kind}/{name}"), checksum);
        }
    }
    found
}

/// `helm install` then `helm upgrade` with one value changed, as a cluster sees them: the
/// objects Helm creates carry the checksums, and the upgrade changes exactly the users'.
/// No API server can run here: the stand-in (tests/support/kube_api.rs) serves discovery and
/// keeps what Helm writes (Helm 3 creates with POST and upgrades with strategic-merge and merge
/// patches, Helm 4 server-side applies; both store releases as protobuf Secrets), but serves no
/// OpenAPI schemas (so `--disable-openapi-validation`) and runs no hooks (so `--no-hooks`).
#[test]
fn install_and_upgrade_roll_exactly_the_users_of_a_changed_value() {
    for helm in [Helm::v3(), Helm::v4()] {
        let api = FakeApi::start();
        let kubeconfig = api.kubeconfig(helm.home.path(), "shop");
        let run = |verb: &str, extra: &[&str]| {
            let mut args = vec![
                verb,
                "shop",
                CHART,
                "-n",
                "shop",
                "--no-hooks",
                "--disable-openapi-validation",
            ];
            args.extend(helm.post_renderer());
            args.extend(extra);
            let out = helm
                .cmd()
                .env("KUBECONFIG", &kubeconfig)
                .args(&args)
                .output()
                .expect("run helm");
            assert!(
                out.status.success(),
                "helm {} (helm 4: {}) failed:\n{}",
                args.join(" "),
                helm.v4,
                String::from_utf8_lossy(&out.stderr)
            );
        };

        run("install", &[]);
        let installed = stored_checksums(&api);
        let annotated: Vec<&str> = installed
            .iter()
            .filter(|(_, sum)| sum.is_some())
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(annotated, ANNOTATED, "helm 4: {}", helm.v4);
        assert!(
            installed.contains_key("Rollout/shop-edge"),
            "the workloadRef Rollout is created too: {installed:?}"
        );

        run("upgrade", &["--set", "logLevel=debug"]);
        let upgraded = stored_checksums(&api);
        let differing: Vec<&str> = installed
            .iter()
            .filter(|(id, sum)| upgraded[*id] != **sum)
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(
            differing,
            ["Deployment/shop-web", "Rollout/shop-api"],
            "helm 4: {}",
            helm.v4
        );
        let releases = api
            .objects("Secret")
            .iter()
            .filter(|s| s["metadata"]["labels"]["owner"] == "helm")
            .count();
        assert_eq!(releases, 2, "Helm stored two release versions");
    }
}

/// Issue 12, item 1: Helm 4 re-serialises the stream with go-yaml, which writes the closing
/// quote of a multi-line single-quoted scalar at column 0 (kube-prometheus-stack's
/// PrometheusRule descriptions). reconfig must read it, and leave its data as it was.
#[test]
fn helm4_go_yaml_closing_quote_at_column_0_passes_through() {
    let chart = tempfile::tempdir().expect("tempdir");
    let write = |path: &str, text: &str| {
        let path = chart.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        "Chart.yaml",
        "apiVersion: v2\nname: rules\nversion: 0.1.0\n",
    );
    write("values.yaml", "instance: node-1\n");
    write(
        "templates/rule.yaml",
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: {{ .Release.Name }}-rules\n\
         spec:\n  groups:\n    - name: node\n      rules:\n        - alert: NodeDown\n          annotations:\n\
         \x20           description: 'Node {{ .Values.instance }} is down.\n\n              It has been unreachable for 5 minutes.\n\n              '\n\
         \x20           summary: Node down\n",
    );
    write(
        "templates/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  motd: 'hello\n\n    world\n\n    '\n\
         ---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector: {matchLabels: {app: app}}\n\
         \x20 template:\n    metadata:\n      labels: {app: app}\n    spec:\n      containers:\n        - name: app\n          image: nginx\n\
         \x20         volumeMounts: [{name: c, mountPath: /c}]\n      volumes:\n        - name: c\n          configMap: {name: app}\n",
    );
    let chart_dir = chart.path().to_str().expect("utf8 path");

    // What Helm 4 hands a post-renderer: the closing quotes at column 0.
    let helm = Helm::v4();
    let capture = helm.home.path().join("stdin.yaml");
    helm.install_script_plugin("capture", &format!("exec tee '{}'", capture.display()));
    helm.run(&["template", "r", chart_dir, "--post-renderer", "capture"]);
    let sent = fs::read_to_string(&capture).unwrap();
    assert!(
        sent.contains("\n'\n"),
        "Helm 4 no longer writes the closing quote at column 0; keep this test meaningful:\n{sent}"
    );

    // Through reconfig: Helm 4 accepts the output, the Deployment is annotated, the data is kept.
    let out = helm.run(&["template", "r", chart_dir, "--post-renderer", "reconfig"]);
    let out_docs = docs(&out);
    let app = out_docs
        .iter()
        .find(|d| d.id() == "Deployment/app")
        .expect("the Deployment");
    assert!(app.checksum().is_some(), "{out}");
    let oracle = |text: &str| {
        let oracle = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root().join("target"), PathBuf::from)
            .join("tools/yaml-oracle");
        let mut child = Command::new(&oracle)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (tests/tools/install-yaml-oracle.sh)",
                    oracle.display()
                )
            });
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().expect("oracle");
        assert!(out.status.success(), "the oracle refuses:\n{text}");
        String::from_utf8(out.stdout).expect("utf8")
    };
    let plain = Helm::new(&tools().helm4, true);
    plain.install_script_plugin("identity", "exec cat");
    let baseline = plain.run(&["template", "r", chart_dir, "--post-renderer", "identity"]);
    let data = |text: &str| -> Vec<String> {
        oracle(text)
            .lines()
            .filter(|l| !l.contains("\"Deployment\""))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(data(&out), data(&baseline));
    assert!(
        out.contains("It has been unreachable for 5 minutes."),
        "{out}"
    );
}

/// The fenced block after the marker line `<!-- tested: NAME -->` in the README.
fn readme_block(name: &str) -> String {
    let readme = fs::read_to_string(root().join("README.md")).expect("README");
    let marker = format!("<!-- tested: {name} -->\n");
    let after = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("README has no {marker}"))
        .1;
    let body = after.split_once('\n').expect("a fence line").1;
    body.split_once("\n```")
        .expect("a closing fence")
        .0
        .to_string()
        + "\n"
}

/// The README's `reconfig plan` recipes, run as written with the real Helm 3 and Helm 4
/// after `helm install` through the post-renderer: both print exactly the README's sample,
/// and the same commands without the value change restart nothing (like compared with like).
#[test]
fn readme_plan_recipes_compare_like_with_like() {
    let sample = readme_block("plan sample");
    for (helm, recipe) in [
        (Helm::v3(), readme_block("plan recipe helm3")),
        (Helm::v4(), readme_block("plan recipe helm4")),
    ] {
        let api = FakeApi::start();
        let kubeconfig = api.kubeconfig(helm.home.path(), "shop");
        let mut install = vec![
            "install",
            "shop",
            CHART,
            "-n",
            "shop",
            "--no-hooks",
            "--disable-openapi-validation",
        ];
        install.extend(helm.post_renderer());
        let out = helm
            .cmd()
            .env("KUBECONFIG", &kubeconfig)
            .args(&install)
            .output()
            .expect("run helm");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `helm` on PATH is this Helm; the commands run in a folder of their own, where
        // `examples` is the repository's.
        let work = tempfile::tempdir().expect("tempdir");
        let bin = work.path().join("bin");
        fs::create_dir(&bin).unwrap();
        symlink(&helm.exe, bin.join("helm")).unwrap();
        symlink(root().join("examples"), work.path().join("examples")).unwrap();
        let mut path = vec![bin];
        path.extend(std::env::split_paths(&path_with_reconfig()));
        let run = |script: &str| {
            let out = helm
                .cmd_with(Path::new("sh"))
                .current_dir(work.path())
                .env("KUBECONFIG", &kubeconfig)
                .env("PATH", std::env::join_paths(&path).expect("PATH"))
                .args(["-ec", script])
                .output()
                .expect("run sh");
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                out.status.success(),
                "helm 4: {}: {script}\n{stderr}",
                helm.v4
            );
            String::from_utf8(out.stdout).expect("utf8")
        };
        let planned = run(&recipe);
        assert_eq!(planned, sample, "helm 4: {}", helm.v4);
        let unchanged = run(&recipe.replace(" --set logLevel=debug", ""));
        assert!(
            unchanged.ends_with(
                "0 of 7 pod template(s) restart: 0 for config, 0 for other template changes only.\n"
            ),
            "helm 4: {}: {unchanged}",
            helm.v4
        );
        assert!(
            !unchanged.contains("new "),
            "hooks on both sides: {unchanged}"
        );
    }
}

/// Why the recipe renders through the post-renderer: Helm 4's go-yaml re-serialises a folded
/// scalar with a more-indented line into other data on the plugin path (go-yaml itself reads
/// the stored text back with extra line breaks), so a plain `helm template` compared with the
/// stored release reports a restart that never happens. The README's recipe does not.
#[test]
fn helm4_plain_template_differs_from_the_release_and_the_recipe_does_not() {
    let chart = root().join("tests/fixtures/folded-chart");
    let chart = chart.to_str().expect("utf8 path");
    for helm in [Helm::v3(), Helm::v4()] {
        let api = FakeApi::start();
        let kubeconfig = api.kubeconfig(helm.home.path(), "shop");
        let helm_ok = |args: &[&str]| {
            let out = helm
                .cmd()
                .env("KUBECONFIG", &kubeconfig)
                .args(args)
                .output()
                .expect("run helm");
            assert!(
                out.status.success(),
                "helm {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).expect("utf8")
        };
        let mut install = vec!["install", "notes", chart, "-n", "shop"];
        install.extend(["--disable-openapi-validation"]);
        install.extend(helm.post_renderer());
        helm_ok(&install);
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("old.yaml");
        let stored = helm_ok(&["get", "manifest", "notes", "-n", "shop"]);
        fs::write(&old, stored).unwrap();
        let old = old.to_str().expect("utf8 path");
        let plan = |new: &str| {
            let run = support::cli::run(&["plan", old, "-"], new);
            assert_eq!(run.code, 0, "{}", run.stderr);
            run.stdout
        };
        let plain = plan(&helm_ok(&["template", "notes", chart, "-n", "shop"]));
        let mut through = vec!["template", "notes", chart, "-n", "shop"];
        through.extend(helm.post_renderer());
        let recipe = plan(&helm_ok(&through));
        let clean = "keep      Deployment notes-app spec.template\n\
                     0 of 1 pod template(s) restart: 0 for config, 0 for other template changes only.\n";
        assert_eq!(recipe, clean, "helm 4: {}", helm.v4);
        if helm.v4 {
            assert!(
                plain.contains("RESTART   Deployment notes-app spec.template: config: ConfigMap notes-notes: motd changed"),
                "Helm 4 no longer changes the folded scalar? {plain}"
            );
        } else {
            assert_eq!(plain, clean);
        }
    }
}

/// `--lookup` passed through both Helms' post-renderer arguments, as the README shows: the
/// ConfigMap the chart references but does not render is read from the cluster (the API
/// stand-in), so `--strict` passes, and its data is in the checksum.
#[test]
fn lookup_through_the_post_renderer_of_both_helms() {
    for helm in [Helm::v3(), Helm::v4()] {
        let api = FakeApi::start();
        let kubeconfig = api.kubeconfig(helm.home.path(), "shop");
        let render = |level: &str| {
            let mut args = vec![
                "template",
                "shop",
                CHART,
                "-n",
                "shop",
                "--set",
                "extraEnvFromConfigMap=shop-extra",
            ];
            args.extend(helm.post_renderer());
            args.extend([
                "--post-renderer-args=--lookup",
                "--post-renderer-args=--strict",
                "--post-renderer-args=--namespace=shop",
            ]);
            api.put(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "shop-extra", "namespace": "shop"},
                "data": {"EXTRA_LEVEL": level},
            }));
            let out = helm
                .cmd()
                .env("KUBECONFIG", &kubeconfig)
                .args(&args)
                .output()
                .expect("run helm");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "helm 4: {}: {stderr}", helm.v4);
            checksums(&String::from_utf8(out.stdout).expect("utf8"))
        };
        let (one, two) = (render("info"), render("debug"));
        let differing: Vec<&String> = one.keys().filter(|id| one[*id] != two[*id]).collect();
        assert_eq!(differing, ["Deployment/shop-web"], "helm 4: {}", helm.v4);
        let gets: Vec<String> = api
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert_eq!(
            gets,
            vec!["GET /api/v1/namespaces/shop/configmaps/shop-extra"; 2],
            "helm 4: {}",
            helm.v4
        );
    }
}
