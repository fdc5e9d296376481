//! `reconfig check --manifests` on chart-shaped renders: the external validator runs once per
//! ConfigMap or Secret, on a folder holding that object's keys, which must be file names; a
//! Secret's values stay out of the output unless asked for.

mod support;

use std::path::Path;

use support::cli::reconfig;

const POSTGRESQL: &str = "tests/fixtures/charts/postgresql.yaml";

struct Checked {
    code: i32,
    stderr: String,
}

fn check(args: &[&str], stdin: &str, tmp: &Path) -> Checked {
    let out = reconfig()
        .arg("check")
        .args(args)
        .env("TMPDIR", tmp)
        .write_stdin(stdin)
        .output()
        .expect("run reconfig");
    Checked {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `dir`, recursively, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("under").display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn keys_that_are_paths_are_refused_and_nothing_is_written_outside() {
    let root = tempfile::tempdir().expect("tempdir");
    let tmp = root.path().join("t1/t2");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let absolute = root.path().join("abs-key");
    for key in ["../../escaped", absolute.to_str().expect("utf8")] {
        let stream = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  ok.conf: a\n  \"{key}\": b\n"
        );
        let out = check(
            &["--manifests", "-", "--validate-cmd", "true"],
            &stream,
            &tmp,
        );
        assert_eq!(out.code, 1, "{key}: {}", out.stderr);
        assert!(out.stderr.contains("not a valid key"), "{}", out.stderr);
        assert_eq!(files_under(root.path()), Vec::<String>::new(), "{key}");
    }
}

/// A validator for PostgreSQL's `override.conf` (every line `name = value`) that logs each run.
fn pg_validate(log: &Path) -> String {
    format!(
        "sh -c 'echo {{dir}} >> {}; ! grep -Evq \"^[a-z_]+ = [^ ]+$\" {{dir}}/override.conf'",
        log.display()
    )
}

#[test]
fn same_named_keys_of_two_objects_are_each_validated() {
    let render = std::fs::read_to_string(POSTGRESQL).expect("fixture");
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("runs.log");
    let validate = pg_validate(&log);
    let runs = || -> Vec<String> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        std::fs::remove_file(&log).ok();
        text.lines().map(str::to_string).collect()
    };

    let out = check(
        &["--manifests", "-", "--validate-cmd", &validate],
        &render,
        tmp.path(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let dirs = runs();
    assert_eq!(
        dirs.len(),
        2,
        "one run per ConfigMap holding override.conf: {dirs:?}"
    );
    assert_ne!(dirs[0], dirs[1]);

    // An invalid copy fails, whichever of the two it is.
    for (from, to, object) in [
        (
            "max_connections = 200",
            "max_connections 200",
            "configmap/pg-postgresql-extended-configuration",
        ),
        (
            "hot_standby_feedback = on",
            "hot_standby_feedback on",
            "configmap/pg-postgresql-read-extended-configuration",
        ),
    ] {
        let broken = render.replace(from, to);
        assert_ne!(broken, render);
        let out = check(
            &["--manifests", "-", "--validate-cmd", &validate],
            &broken,
            tmp.path(),
        );
        assert_eq!(out.code, 1, "{object}: {}", out.stderr);
        assert!(out.stderr.contains(object), "{}", out.stderr);
        assert_eq!(runs().len(), 2);
    }
}

#[test]
fn a_validator_file_no_object_holds_is_an_error() {
    let render = std::fs::read_to_string(POSTGRESQL).expect("fixture");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = check(
        &[
            "--manifests",
            "-",
            "--validate-cmd",
            "test -f {dir}/postgresql.conf",
        ],
        &render,
        tmp.path(),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("postgresql.conf") && out.stderr.contains("no ConfigMap or Secret"),
        "{}",
        out.stderr
    );
    // A command naming no file runs on every object.
    let log = tmp.path().join("all.log");
    let all = format!("sh -c 'ls {{dir}} >> {}'", log.display());
    let out = check(
        &["--manifests", "-", "--validate-cmd", &all],
        &render,
        tmp.path(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listed = std::fs::read_to_string(&log).expect("log");
    assert_eq!(listed, "override.conf\noverride.conf\n");
}

#[test]
fn validator_output_about_a_secret_is_redacted_unless_asked() {
    let stream = "apiVersion: v1\nkind: Secret\nmetadata: {name: app}\nstringData:\n  app.conf: password=hunter2\n";
    let tmp = tempfile::tempdir().expect("tempdir");
    for (validator, code) in [
        ("sh -c 'cat {dir}/app.conf; exit 3'", 1),
        ("sh -c 'cat {dir}/app.conf'", 0),
    ] {
        let out = check(
            &["--manifests", "-", "--validate-cmd", validator, "-v"],
            stream,
            tmp.path(),
        );
        assert_eq!(out.code, code, "{}", out.stderr);
        assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
        if code == 1 {
            assert!(
                out.stderr.contains("secret/app") && out.stderr.contains("--show-secret-values"),
                "{}",
                out.stderr
            );
        }
        let shown = check(
            &[
                "--manifests",
                "-",
                "--validate-cmd",
                validator,
                "--show-secret-values",
                "-v",
            ],
            stream,
            tmp.path(),
        );
        assert_eq!(shown.code, code);
        assert!(shown.stderr.contains("hunter2"), "{}", shown.stderr);
    }
    // A ConfigMap's output is printed as it is.
    let cm = stream
        .replace("kind: Secret", "kind: ConfigMap")
        .replace("stringData", "data");
    let out = check(
        &[
            "--manifests",
            "-",
            "--validate-cmd",
            "sh -c 'cat {dir}/app.conf; exit 3'",
        ],
        &cm,
        tmp.path(),
    );
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn configmaps_inside_a_list_are_checked() {
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: app}\n  data:\n    app.yaml: |\n      port: [8080\n";
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = check(&["--manifests", "-"], list, tmp.path());
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("configmap/app/app.yaml"),
        "{}",
        out.stderr
    );
}
