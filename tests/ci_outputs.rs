//! What `check` and `plan` print for CI (`--output text|json|github|markdown`) and the limits
//! that stop a change from restarting too much (`plan --max-restarts`, `--fail-on-restart`,
//! exit 3). Outputs are snapshots; GitHub's lines are also read back by the workflow-command
//! syntax.

mod support;

const GOOD: &str = "tests/fixtures/check/good";
const BAD: &str = "tests/fixtures/check/bad";
const SCHEMA: &str = "tests/fixtures/check/app.schema.json";
const RENDER: &str = "examples/helm-render.yaml";

fn render() -> String {
    std::fs::read_to_string(RENDER).expect("example")
}

/// Reads a GitHub workflow command line back as the runner does: name, properties, message.
fn workflow_command(line: &str) -> (String, Vec<(String, String)>, String) {
    let unescape = |t: &str| {
        t.replace("%0D", "\r")
            .replace("%0A", "\n")
            .replace("%3A", ":")
            .replace("%2C", ",")
            .replace("%25", "%")
    };
    let rest = line
        .strip_prefix("::")
        .unwrap_or_else(|| panic!("not a workflow command: {line}"));
    let (head, message) = rest.split_once("::").expect("a second ::");
    let (name, props) = head.split_once(' ').unwrap_or((head, ""));
    assert!(
        ["error", "warning", "notice"].contains(&name),
        "unknown command {name}"
    );
    let props = props
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').expect("key=value");
            assert!(
                ["file", "line", "col", "endLine", "endColumn", "title"].contains(&k),
                "unknown property {k}"
            );
            (k.to_string(), unescape(v))
        })
        .collect();
    (name.to_string(), props, unescape(message))
}

#[test]
fn check_text_says_what_was_valid() {
    let run = support::cli::run(&["check", GOOD], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "4 files valid\n");
    let run = support::cli::run(&["check", "--manifests", "-"], &render());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "6 keys in 3 objects valid\n");
}

#[test]
fn check_json_is_one_object_per_finding() {
    let broken = render().replace("ttl: 30s", "ttl: [30s");
    let run = support::cli::run(&["check", "--manifests", "-", "--output", "json"], &broken);
    assert_eq!(run.code, 1, "{}", run.stderr);
    insta::assert_snapshot!("check_json_manifests", run.stdout);
    let run = support::cli::run(&["check", BAD, "--output", "json"], "");
    assert_eq!(run.code, 1, "{}", run.stderr);
    insta::assert_snapshot!("check_json_folder", run.stdout);
    for line in run.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        for field in [
            "object", "key", "file", "line", "column", "rule", "severity", "message",
        ] {
            assert!(v.get(field).is_some(), "{field} missing: {line}");
        }
    }
    // All valid: no finding, no line.
    let run = support::cli::run(&["check", GOOD, "--output", "json"], "");
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
}

#[test]
fn check_json_and_github_redact_secret_values_as_text_does() {
    let render = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  app.yaml: |\n    server:\n      port: hunter2\n";
    let schema = format!("--schema=app.yaml={SCHEMA}");
    for output in ["json", "github"] {
        let run = support::cli::run(
            &["check", "--manifests", "-", &schema, "--output", output],
            render,
        );
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
        assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
        assert!(
            run.stdout.contains("--show-secret-values prints it"),
            "{}",
            run.stdout
        );
        insta::assert_snapshot!(format!("check_{output}_secret"), run.stdout);
        let run = support::cli::run(
            &[
                "check",
                "--manifests",
                "-",
                &schema,
                "--output",
                output,
                "--show-secret-values",
            ],
            render,
        );
        assert!(run.stdout.contains("hunter2"), "asked for: {}", run.stdout);
    }
}

#[test]
fn check_github_annotates_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A name with the characters GitHub's properties must escape.
    let file = dir.path().join("a,b:c.yaml");
    std::fs::write(&file, "server:\n  port: \"8080\"\n").expect("write");
    let schema = format!("a,b:c.yaml={SCHEMA}");
    let run = support::cli::run(
        &[
            "check",
            "--schema",
            &schema,
            "--output",
            "github",
            dir.path().to_str().expect("path"),
        ],
        "",
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    let (name, props, message) = workflow_command(lines[0]);
    assert_eq!(name, "error");
    let get = |k: &str| props.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    assert_eq!(get("file").as_deref(), file.to_str());
    assert_eq!(get("line").as_deref(), Some("2"));
    assert_eq!(get("col").as_deref(), Some("9"));
    assert_eq!(get("title").as_deref(), Some("reconfig check: schema"));
    assert!(
        message.starts_with("schema: at /server/port: "),
        "{message}"
    );

    let broken = render().replace("ttl: 30s", "ttl: [30s");
    let run = support::cli::run(
        &["check", "--manifests", "-", "--output", "github"],
        &broken,
    );
    insta::assert_snapshot!("check_github_manifests", run.stdout);
    for line in run.stdout.lines() {
        workflow_command(line);
    }
    let run = support::cli::run(&["check", GOOD, "--output", "github"], "");
    assert_eq!(run.code, 0);
    assert_eq!(workflow_command(run.stdout.trim_end()).0, "notice");
}
