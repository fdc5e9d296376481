//! `reconfig check` as CI runs it: folders, files and rendered manifests.

mod support;

const GOOD: &str = "tests/fixtures/check/good";
const BAD: &str = "tests/fixtures/check/bad";
const SCHEMA: &str = "tests/fixtures/check/app.schema.json";

fn check(args: &[&str], stdin: &str) -> (i32, String) {
    let run = support::cli::run(&[&["check"], args].concat(), stdin);
    (run.code, run.stderr)
}

#[test]
fn valid_folders_pass_and_unknown_formats_are_left_alone() {
    let (code, stderr) = check(&[GOOD], "");
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("notes.txt"), "{stderr}");

    // notes.txt is neither YAML, JSON nor TOML: under any of those names the same folder fails,
    // so the pass above means it was left alone, not that it happened to parse.
    for format in ["yaml", "json", "toml"] {
        let dir = tempfile::tempdir().expect("tempdir");
        for entry in std::fs::read_dir(GOOD).expect("fixture") {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("name").to_string_lossy();
            let name = name.replace("notes.txt", &format!("notes.{format}"));
            std::fs::copy(&path, dir.path().join(name)).expect("copy");
        }
        let (code, stderr) = check(&[dir.path().to_str().expect("path")], "");
        assert_eq!(code, 1, "notes.{format} passed: {stderr}");
        assert!(stderr.contains(&format!("notes.{format}:")), "{stderr}");
    }
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let (code, stderr) = check(&[BAD], "");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("tests/fixtures/check/bad/app.yaml:2:"),
        "{stderr}"
    );
    assert!(stderr.contains("1 problem(s) in 1 file(s)"), "{stderr}");
}

#[test]
fn schemas_apply_by_file_name() {
    let schema = format!("app.yaml={SCHEMA}");
    assert_eq!(check(&["--schema", &schema, GOOD], "").0, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("app.yaml"), "server:\n  port: \"8080\"\n").expect("write");
    let (code, stderr) = check(
        &["--schema", &schema, dir.path().to_str().expect("path")],
        "",
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("app.yaml:2:9: schema: at /server/port"),
        "{stderr}"
    );
}

#[test]
fn external_validators_see_the_folder() {
    assert_eq!(
        check(
            &["--validate-cmd", "sh -c 'test -f {dir}/app.yaml'", GOOD],
            ""
        )
        .0,
        0
    );
    let (code, stderr) = check(
        &["--validate-cmd", "sh -c 'echo nope >&2; exit 4'", GOOD],
        "",
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("nope"), "{stderr}");
}

#[test]
fn rendered_configmaps_are_checked_key_by_key() {
    let render = std::fs::read_to_string("examples/helm-render.yaml").expect("example");
    let (code, stderr) = check(&["--manifests", "-"], &render);
    assert_eq!(code, 0, "{stderr}");

    let broken = render.replace("ttl: 30s", "ttl: [30s");
    let (code, stderr) = check(&["--manifests", "-"], &broken);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("configmap/shop-config/app.yaml:4:12"),
        "{stderr}"
    );

    let staged = check(
        &[
            "--manifests",
            "-",
            "--validate-cmd",
            "sh -c 'test -f {dir}/nginx.conf'",
        ],
        &render,
    );
    assert_eq!(staged.0, 0, "{}", staged.1);
}

#[test]
fn whole_configmap_schemas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = dir.path().join("cm.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "required": ["LOG_LEVEL"], "properties": {"LOG_LEVEL": {"enum": ["debug", "info", "warn"]}}}"#,
    )
    .expect("write");
    let spec = format!("configmap/shop-config={}", schema.display());
    let render = std::fs::read_to_string("examples/helm-render.yaml").expect("example");
    assert_eq!(
        check(&["--manifests", "-", "--schema", &spec], &render).0,
        0
    );
    let (code, stderr) = check(
        &["--manifests", "-", "--schema", &spec],
        &render.replace("LOG_LEVEL: \"info\"", "LOG_LEVEL: \"loud\""),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("configmap/shop-config: schema: at /LOG_LEVEL"),
        "{stderr}"
    );
    let missing = format!("configmap/nope={}", schema.display());
    assert_eq!(
        check(&["--manifests", "-", "--schema", &missing], &render).0,
        1
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(check(&[], "").0, 2);
    assert_eq!(check(&["/nonexistent/folder"], "").0, 2);
    assert_eq!(
        check(&["--schema", "app.yaml=/nonexistent.json", GOOD], "").0,
        2
    );
}

#[test]
fn secret_values_stay_out_of_ci_logs() {
    let render = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  app.yaml: |\n    server:\n      port: hunter2\n";
    let schema = format!("--schema=app.yaml={SCHEMA}");
    let (code, stderr) = check(&["--manifests", "-", &schema], render);
    assert_eq!(code, 1);
    assert!(
        stderr
            .contains("secret/app/app.yaml:2:9: schema: at /server/port (the message would quote"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let (code, stderr) = check(
        &["--manifests", "-", &schema, "--show-secret-values"],
        render,
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("\"hunter2\" is not of type"), "{stderr}");

    let configmap = render
        .replace("kind: Secret", "kind: ConfigMap")
        .replace("stringData", "data");
    let (_, stderr) = check(&["--manifests", "-", &schema], &configmap);
    assert!(
        stderr.contains("\"hunter2\" is not of type"),
        "ConfigMaps are shown in full: {stderr}"
    );
}

/// `check --manifests` reads its input as `inject` does: the same size limit (`--max-input-size`)
/// and the same verdicts, exit 1 for input that is too large or not UTF-8.
#[test]
fn manifests_are_read_as_inject_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let latin1 = dir.path().join("latin1.yaml");
    std::fs::write(
        &latin1,
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: caf\xe9}\n",
    )
    .expect("write");
    let latin1 = latin1.to_str().expect("path");
    for command in ["check --manifests", "inject"] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push(latin1);
        let run = support::cli::run(&args, "");
        assert_eq!(run.code, 1, "{command}: {}", run.stderr);
        assert!(
            run.stderr.contains("line 4: input is not UTF-8"),
            "{command}: {}",
            run.stderr
        );
    }

    let big = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n";
    let (code, stderr) = check(&["--manifests", "-", "--max-input-size", "16"], big);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("over the 16-byte limit"), "{stderr}");
    let (code, stderr) = check(&["--manifests", "-", "--max-input-size", "1KiB"], big);
    assert_eq!(code, 0, "{stderr}");
}
