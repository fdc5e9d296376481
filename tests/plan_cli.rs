//! `reconfig plan` on two renders of the example chart.

mod support;

const RENDER: &str = "examples/helm-render.yaml";

fn plan(new: &str, args: &[&str]) -> (i32, String, String) {
    let run = support::cli::run(&[&["plan", RENDER, "-"], args].concat(), new);
    (run.code, run.stdout, run.stderr)
}

fn render() -> String {
    std::fs::read_to_string(RENDER).expect("example")
}

#[test]
fn names_the_workloads_a_change_restarts_and_why() {
    let (code, out, err) = plan(&render().replace("ttl: 30s", "ttl: 60s"), &[]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
}

#[test]
fn an_identical_render_restarts_nothing() {
    let (code, out, err) = plan(&render(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.ends_with(
            "0 of 7 pod template(s) restart: 0 for config, 0 for other template changes only.\n"
        ),
        "{out}"
    );
}

#[test]
fn json_lines_for_tools() {
    let (code, out, err) = plan(
        &render().replace("czNjcjN0", "bmV3cGFzcw=="),
        &["--output", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let restarts: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .filter(|v: &serde_json::Value| v["verdict"] == "restart")
        .collect();
    let names: Vec<&str> = restarts
        .iter()
        .filter_map(|v| v["workload"].as_str())
        .collect();
    // The password is read by shop-web (secretKeyRef), shop-api (projected, whole) and shop-worker (envFrom).
    assert_eq!(
        names,
        vec![
            "Deployment shop-web",
            "Deployment shop-worker",
            "Rollout shop-api"
        ]
    );
    assert_eq!(
        restarts[0]["reasons"][0],
        serde_json::json!({"cause": "config", "text": "Secret shop-db: password changed"})
    );
}

#[test]
fn invalid_renders_fail_like_inject() {
    let (code, out, err) = plan("a: [\n", &[]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("<stdin>: document 1, line 1"), "{err}");
}

/// A stdout nobody reads any more (a pipe whose reader is gone) is an error reported with
/// exit 2, never a panic.
#[test]
fn a_broken_stdout_is_an_error_not_a_panic() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = support::cli::command()
        .args(["plan", RENDER, RENDER])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run reconfig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("writing the plan to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
