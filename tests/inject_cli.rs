//! `reconfig inject` as users run it: the real binary, fixtures on stdin or as files.

mod support;

use std::os::fd::AsFd as _;

use predicates::prelude::*;
use support::cli::reconfig;

const HELM3: &str = "tests/fixtures/helm3-render.yaml";
const HELM4: &str = "tests/fixtures/helm4-render.yaml";

fn fixture(path: &str) -> String {
    std::fs::read_to_string(path).expect("fixture")
}

fn inject(input: &str, args: &[&str]) -> String {
    let out = reconfig()
        .arg("inject")
        .args(args)
        .write_stdin(input)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).expect("utf8")
}

/// Splits a stream at document markers, keeping every byte.
fn documents(text: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = text.match_indices("\n---\n").map(|(i, _)| i + 1).collect();
    starts.insert(0, 0);
    starts.push(text.len());
    starts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

#[test]
fn helm3_render_is_annotated_exactly() {
    let input = fixture(HELM3);
    let output = inject(&input, &[]);
    insta::assert_snapshot!(output);

    let (before, after) = (documents(&input), documents(&output));
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        if b != a {
            // A changed document only gains lines (or, in flow style, its metadata line changes).
            let added: Vec<&str> = a.lines().filter(|l| !b.lines().any(|x| x == *l)).collect();
            let removed: Vec<&str> = b.lines().filter(|l| !a.lines().any(|x| x == *l)).collect();
            assert!(added.iter().any(|l| l.contains("checksum/config")), "{a}");
            assert!(
                removed.len() <= 1,
                "a changed document lost lines: {removed:?}"
            );
        }
    }
    assert_eq!(
        input.matches("# Source: ").count(),
        output.matches("# Source: ").count()
    );
    for untouched in [
        "kind: Service",
        "kind: ServiceAccount",
        "shop-migrate",
        "name: shop-worker\nspec:\n  workloadRef",
    ] {
        let b = before.iter().find(|d| d.contains(untouched)).expect("doc");
        assert!(
            after.contains(b),
            "{untouched} must come out byte-identical"
        );
    }
}

#[test]
fn output_is_idempotent() {
    let once = inject(&fixture(HELM3), &[]);
    assert_eq!(inject(&once, &[]), once);
}

#[test]
fn helm4_render_keeps_filenames_and_skips_hooks() {
    let input = fixture(HELM4);
    let output = inject(&input, &[]);
    assert_eq!(
        output
            .matches("postrenderer.helm.sh/postrender-filename")
            .count(),
        3
    );
    let docs = documents(&output);
    assert!(docs[1].contains("checksum/config"));
    assert!(
        !docs[2].contains("checksum/config"),
        "hooks are not annotated"
    );
    assert_eq!(docs[2], documents(&input)[2]);
}

#[test]
fn changing_one_value_rolls_exactly_its_users() {
    let input = fixture(HELM3);
    let changed = input.replace("ttl: 30s", "ttl: 60s");
    let annotations = |text: &str| -> Vec<String> {
        documents(&inject(text, &[]))
            .iter()
            .map(|d| {
                d.lines()
                    .find(|l| l.contains("checksum/config"))
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    };
    let (a, b) = (annotations(&input), annotations(&changed));
    let differing: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    // app.yaml is read by shop-web (envFrom: data keys) and shop-api (items: app.yaml) only.
    let names: Vec<&str> = differing
        .iter()
        .map(|&i| {
            let doc = documents(&input)[i];
            doc.lines()
                .find_map(|l| l.strip_prefix("  name: "))
                .unwrap_or("?")
        })
        .collect();
    assert_eq!(names, vec!["shop-web", "shop-api"]);
}

#[test]
fn documents_that_are_not_objects_pass_through() {
    let input = "---\n- just\n- a list\n---\nplain scalar\n---\n{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"c\"}, \"data\": {\"a\": \"b\"}}\n---\n{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": \"d\"}, \"spec\": {\"template\": {\"spec\": {\"volumes\": [{\"name\": \"v\", \"configMap\": {\"name\": \"c\"}}]}}}}\n---\n";
    let output = inject(input, &[]);
    let (before, after) = (documents(input), documents(&output));
    assert_eq!(before[..3], after[..3]);
    assert!(
        after[3].contains("\"metadata\": {\"annotations\": {\"checksum/config\": "),
        "{}",
        after[3]
    );
}

fn fails_with(args: &[&str], input: &str, code: i32) -> String {
    let out = reconfig()
        .args(args)
        .write_stdin(input)
        .assert()
        .code(code)
        .stdout("");
    String::from_utf8(out.get_output().stderr.clone()).expect("utf8")
}

#[test]
fn bad_input_fails_whole_and_says_where() {
    for (file, expected) in [
        (
            "unclosed-flow.yaml",
            "document 1 (shop/templates/configmap.yaml), line 7, column 23",
        ),
        (
            "tab-indent.yaml",
            "document 2 (shop/templates/configmap.yaml), line 12, column 1: found a tab character",
        ),
        (
            "recursive-alias.yaml",
            "document 1 (shop/templates/configmap.yaml), line 8, column 9",
        ),
        ("alias-bomb.yaml", "alias bomb"),
        (
            "bad-base64.yaml",
            "line 8, column 13: Secret data key \"password\" is not valid base64",
        ),
    ] {
        let path = format!("tests/fixtures/bad/{file}");
        let stderr = fails_with(&["inject", &path], "", 1);
        assert!(stderr.contains(expected), "{file}: {stderr}");
        assert!(stderr.contains(&path), "{file} names the file: {stderr}");
        let stderr = fails_with(&["inject"], &fixture(&path), 1);
        assert!(stderr.contains(expected), "{file} on stdin: {stderr}");
    }
}

#[test]
fn every_bad_document_is_reported() {
    let input = "---\na: [\n---\nb: ok\n---\nc: {\n";
    let stderr = fails_with(&["inject"], input, 1);
    assert!(
        stderr.contains("document 1,") && stderr.contains("document 3,"),
        "{stderr}"
    );
}

#[test]
fn oversized_and_non_utf8_input() {
    let stderr = fails_with(&["inject", "--max-input-size", "100"], &fixture(HELM3), 1);
    assert!(stderr.contains("over the 100-byte limit"), "{stderr}");
    let out = reconfig()
        .arg("inject")
        .write_stdin(b"a: \xff\n".to_vec())
        .assert()
        .code(1)
        .stdout("");
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("not UTF-8"));
}

#[test]
fn missing_references_warn_or_fail_with_strict() {
    let input =
        fixture(HELM3).replace("name: shop-nginx\ndata:", "name: shop-nginx-renamed\ndata:");
    let out = reconfig()
        .arg("inject")
        .write_stdin(input.clone())
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("warning:") && stderr.contains("Deployment shop-web: ConfigMap \"shop-nginx\" (volume \"nginx\") is not in the stream"),
        "{stderr}"
    );
    let stderr = fails_with(&["inject", "--strict"], &input, 1);
    assert!(stderr.contains("--strict"), "{stderr}");
}

#[test]
fn log_file_keeps_diagnostics_for_helm4() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("reconfig.log");
    let flag_log = dir.path().join("flag.log");
    reconfig()
        .arg("inject")
        .env("RECONFIG_LOG_FILE", &log)
        .write_stdin("a: [\n")
        .assert()
        .code(1);
    reconfig()
        .args(["inject", "--log-file"])
        .arg(&flag_log)
        .write_stdin("a: [\n")
        .assert()
        .code(1);
    for path in [&log, &flag_log] {
        let text = std::fs::read_to_string(path).expect("log written");
        assert!(text.contains("error: document 1, line 1"), "{text}");
    }
}

#[test]
fn secret_hash_key_file_changes_secret_checksums() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    std::fs::write(&key, "s3cret-key\n").expect("write key");
    let plain = inject(&fixture(HELM3), &[]);
    let keyed = inject(
        &fixture(HELM3),
        &["--secret-hash-key-file", key.to_str().expect("path")],
    );
    assert_ne!(plain, keyed);
    let via_env = reconfig()
        .arg("inject")
        .env("RECONFIG_SECRET_HASH_KEY_FILE", &key)
        .write_stdin(fixture(HELM3))
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&via_env.get_output().stdout), keyed);
    // The nginx config is no Secret: shop-web's checksum would differ anyway, but the
    // StatefulSet reads only a Secret, and the CronJob only a ConfigMap.
    let line = |text: &str, name: &str| -> String {
        documents(text)
            .into_iter()
            .find(|d| d.contains(&format!("name: {name}\n")) && d.contains("checksum/config"))
            .and_then(|d| d.lines().find(|l| l.contains("checksum/config")))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(line(&plain, "shop-report"), line(&keyed, "shop-report"));
    assert_ne!(line(&plain, "shop-db"), line(&keyed, "shop-db"));
}

#[test]
fn namespace_flag_and_env() {
    let input = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: prod}\nspec:\n  template:\n    spec:\n      volumes: [{name: v, configMap: {name: c}}]\n";
    assert!(!inject(input, &[]).contains("checksum/config"));
    assert!(inject(input, &["--namespace", "prod"]).contains("checksum/config"));
    let out = reconfig()
        .arg("inject")
        .env("RECONFIG_NAMESPACE", "prod")
        .write_stdin(input)
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("checksum/config"));
}

#[test]
fn custom_annotation_key() {
    let output = inject(
        &fixture(HELM4),
        &["--annotation", "example.com/config-hash"],
    );
    assert!(output.contains("example.com/config-hash: \"") && !output.contains("checksum/config"));
}

#[test]
fn several_files_make_one_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cm = dir.path().join("cm.yaml");
    let deploy = dir.path().join("deploy.yaml");
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}",
    )
    .expect("write");
    std::fs::write(&deploy, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      volumes: [{name: v, configMap: {name: c}}]\n").expect("write");
    let out = reconfig()
        .arg("inject")
        .arg(&cm)
        .arg(&deploy)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.starts_with("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n---\napiVersion: apps/v1"), "{stdout}");
    assert!(stdout.contains("checksum/config"));

    std::fs::write(
        &deploy,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: [d\n",
    )
    .expect("write");
    let stderr = fails_with(
        &[
            "inject",
            cm.to_str().expect("p"),
            deploy.to_str().expect("p"),
        ],
        "",
        1,
    );
    assert!(
        stderr.contains("deploy.yaml: document 2, line 4, column"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    fails_with(&["inject", "--depends", "nonsense"], "", 2);
    fails_with(&["inject", "--annotation", "Bad Key"], "", 2);
    fails_with(&["inject", "--template-path", "Foo"], "", 2);
    fails_with(&["inject", "/nonexistent/manifest.yaml"], "", 2);
    fails_with(
        &["inject", "--secret-hash-key-file", "/nonexistent/key"],
        "",
        2,
    );
    fails_with(&["frobnicate"], "", 2);
}

#[test]
fn help_teaches() {
    reconfig()
        .args(["inject", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "--post-renderer reconfig --post-renderer-args inject",
        ))
        .stdout(predicate::str::contains("reconfig/exclude"))
        .stdout(predicate::str::contains("--log-file"));
}

#[test]
fn windows_line_endings_are_kept_in_the_lines_it_adds() {
    let input = fixture(HELM3).replace('\n', "\r\n");
    let output = inject(&input, &[]);
    assert!(output.contains("checksum/config"), "{output}");
    assert_eq!(
        output.matches('\n').count(),
        output.matches("\r\n").count(),
        "no bare LF in a CRLF stream"
    );
    assert_eq!(
        output.replace("\r\n", "\n"),
        inject(&fixture(HELM3), &[]),
        "the same annotations as with LF"
    );
    assert_eq!(inject(&output, &[]), output, "idempotent");
}

/// Helm pipes the render in and reads the result from another pipe; at the kernel's default
/// 64 KiB a 5 MiB render crosses each in ~80 turns. inject widens both (`reconfig::pipe`);
/// the width is the pipe's, so this side sees it on its own ends after the run.
#[test]
fn the_pipes_a_post_renderer_is_given_are_widened() {
    use std::io::{Read as _, Write as _};
    use std::process::Stdio;

    let (stdin_read, stdin_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("a pipe");
    // A copy of the read end stays here to look at the pipe once the run is over.
    let kept = stdin_read.try_clone().expect("dup");
    let mut child = support::cli::command()
        .arg("inject")
        .stdin(Stdio::from(stdin_read))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run reconfig");
    let mut input = std::fs::File::from(stdin_write);
    input.write_all(fixture(HELM3).as_bytes()).expect("write");
    drop(input);
    let mut stdout = child.stdout.take().expect("stdout");
    let mut out = String::new();
    stdout.read_to_string(&mut out).expect("read");
    assert!(child.wait().expect("wait").success());
    assert!(out.contains("checksum/config"), "{out}");
    let width = |fd| rustix::pipe::fcntl_getpipe_size(fd).expect("a pipe's width");
    assert_eq!(width(kept.as_fd()), reconfig::pipe::WIDTH, "stdin");
    assert_eq!(width(stdout.as_fd()), reconfig::pipe::WIDTH, "stdout");
}
