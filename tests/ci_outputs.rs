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

/// The example render with the app's config and the web image changed, and the report
/// CronJob's image (a template change alone).
fn changed_render() -> String {
    let render = render();
    assert!(render.contains("ttl: 30s") && render.contains("shop:1.4.0"));
    assert!(render.contains("report:1.0"));
    render
        .replace("ttl: 30s", "ttl: 60s")
        .replacen("shop:1.4.0", "shop:1.5.0", 1)
        .replace("report:1.0", "report:1.1")
}

fn plan(args: &[&str]) -> support::cli::Run {
    let new = changed_render();
    support::cli::run(&[&["plan", RENDER, "-"], args].concat(), &new)
}

#[test]
fn plan_names_template_changes_with_their_cause() {
    let run = plan(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("plan_text", run.stdout);
    let run = plan(&["--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("plan_json", run.stdout);
    let causes: Vec<(String, String)> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .flat_map(|v| {
            let name = v["workload"].as_str().unwrap_or_default().to_string();
            v["reasons"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |r| {
                    (
                        name.clone(),
                        r["cause"].as_str().unwrap_or_default().to_string(),
                    )
                })
        })
        .collect();
    assert!(
        causes.contains(&("Deployment shop-web".to_string(), "template".to_string())),
        "{causes:?}"
    );
    assert!(
        causes.contains(&("Deployment shop-web".to_string(), "config".to_string())),
        "{causes:?}"
    );
}

#[test]
fn plan_markdown_and_github() {
    let run = plan(&["--output", "markdown"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("plan_markdown", run.stdout);
    let run = plan(&["--output", "github"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("plan_github", run.stdout);
    let lines: Vec<_> = run.stdout.lines().map(workflow_command).collect();
    // One notice per restarted pod template, and the summary.
    let restarts = lines
        .iter()
        .filter(|(name, props, _)| {
            name == "notice"
                && props
                    .iter()
                    .any(|(k, v)| k == "title" && v.ends_with(" restarts"))
        })
        .count();
    assert_eq!(restarts, 3, "{}", run.stdout);
    assert_eq!(lines.len(), 4, "{}", run.stdout);
}

#[test]
fn plan_limits_exit_3_after_printing_the_plan() {
    // Three workloads restart: shop-web, shop-api and shop-report.
    let ok = plan(&["--max-restarts", "3"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let over = plan(&["--max-restarts", "2"]);
    assert_eq!(over.code, 3, "{}", over.stderr);
    assert_eq!(over.stdout, ok.stdout, "the plan is printed all the same");
    assert!(
        over.stderr
            .contains("3 workload(s) would restart, more than --max-restarts 2"),
        "{}",
        over.stderr
    );

    let listed = plan(&["--fail-on-restart", "statefulset/shop-db,rollout/shop-api"]);
    assert_eq!(listed.code, 3, "{}", listed.stderr);
    assert!(
        listed
            .stderr
            .contains("Rollout shop-api would restart (--fail-on-restart)"),
        "{}",
        listed.stderr
    );
    assert!(
        !listed.stderr.contains("shop-db would"),
        "{}",
        listed.stderr
    );
    // Kind with its group, and a namespace that does not match.
    assert_eq!(
        plan(&["--fail-on-restart", "Rollout.argoproj.io/shop-api"]).code,
        3
    );
    assert_eq!(
        plan(&["--fail-on-restart", "rollout/prod/shop-api"]).code,
        0
    );
    // Not restarted, or a typo: no limit hit, but a typo is said.
    let typo = plan(&["--fail-on-restart", "deployment/shop-wbe"]);
    assert_eq!(typo.code, 0, "{}", typo.stderr);
    assert!(
        typo.stderr
            .contains("--fail-on-restart deployment/shop-wbe: no such workload"),
        "{}",
        typo.stderr
    );
    let github = plan(&["--max-restarts", "0", "--output", "github"]);
    assert_eq!(github.code, 3);
    let last = github.stdout.lines().last().expect("a line");
    assert_eq!(workflow_command(last).0, "error");
    assert_eq!(plan(&["--fail-on-restart", "nokind"]).code, 2);
}

#[test]
fn plan_help_documents_exit_3() {
    let run = support::cli::run(&["plan", "--help"], "");
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("3 a limit"), "{}", run.stdout);
}

/// Without the kube feature, `--live` is a usage error that says why; with it, an
/// unreachable API server is an error too (never a silent plan against nothing).
#[test]
fn plan_live_without_an_api_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = support::kube_api::kubeconfig(dir.path(), "http://127.0.0.1:9", "shop");
    let out = support::cli::reconfig()
        .args(["plan", "--live", "-", "--request-timeout", "2s"])
        .env("KUBECONFIG", &kubeconfig)
        .write_stdin(render())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    if cfg!(feature = "kube") {
        assert!(stderr.contains("cannot list"), "{stderr}");
    } else {
        assert!(stderr.contains("cargo feature `kube`"), "{stderr}");
    }
    let run = support::cli::run(&["plan", "--live", RENDER, RENDER], "");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("only the new render"), "{}", run.stderr);
    let run = support::cli::run(&["plan", RENDER], "");
    assert_eq!(run.code, 2);
}

/// Every kind of finding in JSON: a validator's failure (`command`, no file), a whole-object
/// schema (`object` without `key`), each with the fields it can fill.
#[test]
fn check_json_names_the_rule_and_what_it_judged() {
    let run = support::cli::run(
        &[
            "check",
            GOOD,
            "--validate-cmd",
            "sh -c 'echo nope; exit 4'",
            "--output",
            "json",
        ],
        "",
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("one json line");
    assert_eq!(v["rule"], "command");
    assert_eq!(v["file"], serde_json::Value::Null);
    assert_eq!(v["object"], serde_json::Value::Null);
    let message = v["message"].as_str().expect("message");
    assert!(message.starts_with("`sh -c "), "{message}");
    assert!(message.ends_with("exit status: 4: nope"), "{message}");

    let dir = tempfile::tempdir().expect("tempdir");
    let schema = dir.path().join("cm.json");
    std::fs::write(
        &schema,
        r#"{"type": "object", "required": ["MISSING_KEY"]}"#,
    )
    .expect("write");
    let spec = format!("configmap/shop-config={}", schema.display());
    let run = support::cli::run(
        &[
            "check",
            "--manifests",
            "-",
            "--schema",
            &spec,
            "--output",
            "json",
        ],
        &render(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("one json line");
    assert_eq!(v["rule"], "schema");
    assert_eq!(v["object"], "configmap/shop-config");
    assert_eq!(v["key"], serde_json::Value::Null);
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("MISSING_KEY")),
        "{v}"
    );
}
