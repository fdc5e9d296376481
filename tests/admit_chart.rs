//! The `reconfig admit` chart (`helm-snippets/admit-chart`), rendered and linted by the real
//! Helm 3.17.2 and Helm 4.1.4; the self-signed certificate Helm generates is then served by the
//! real `reconfig admit`, with the policy ConfigMap the chart renders, and checked by a TLS
//! client that trusts only the rendered caBundle and expects the Service's DNS name.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::json;

use support::admit::{configmap, review, Admit, Certs, Client, Proto};

const CHART: &str = "helm-snippets/admit-chart";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Helm 3 and Helm 4 from `tests/tools/install-helm.sh` (cached in target/tools).
fn helms() -> Vec<PathBuf> {
    let script = root().join("tests/tools/install-helm.sh");
    let out = Command::new("bash").arg(&script).output().expect("bash");
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ["HELM3", "HELM4"]
        .iter()
        .map(|key| {
            let path = stdout
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {key}= in {stdout}"));
            PathBuf::from(path)
        })
        .collect()
}

fn helm(exe: &Path, home: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(exe);
    cmd.current_dir(root())
        .env("HELM_DATA_HOME", home.join("data"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .args(args);
    support::cli::clear_env(&mut cmd);
    let out = cmd.output().expect("run helm");
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        exe.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

fn helm_fails(exe: &Path, home: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(exe);
    cmd.current_dir(root())
        .env("HELM_DATA_HOME", home.join("data"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .args(args);
    support::cli::clear_env(&mut cmd);
    let out = cmd.output().expect("run helm");
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The documents of a render, each with its `kind` and `metadata.name`.
fn docs(stream: &str) -> Vec<(String, String, String)> {
    stream
        .split("\n---\n")
        .filter_map(|doc| {
            let kind = doc
                .lines()
                .find_map(|l| l.strip_prefix("kind: "))?
                .to_string();
            let name = doc
                .lines()
                .skip_while(|l| *l != "metadata:")
                .find_map(|l| l.strip_prefix("  name: "))?
                .to_string();
            let text = doc.trim().trim_start_matches("---").trim();
            Some((kind, name, text.to_string()))
        })
        .collect()
}

fn doc<'a>(all: &'a [(String, String, String)], kind: &str) -> &'a str {
    &all.iter()
        .find(|(k, _, _)| k == kind)
        .unwrap_or_else(|| panic!("no {kind} in the render"))
        .2
}

/// `key: value` on a line of its own in `doc` (first match, value trimmed).
fn value<'a>(doc: &'a str, key: &str) -> &'a str {
    doc.lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{doc}"))
        .trim()
}

/// A ConfigMap's `data` entries written as `KEY: |` block scalars.
fn block_data(doc: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_data = false;
    for line in doc.lines() {
        if line == "data:" {
            in_data = true;
            continue;
        }
        if !in_data {
            continue;
        }
        if let Some(key) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(": |")) {
            if !key.starts_with(' ') {
                out.push((key.to_string(), String::new()));
                continue;
            }
        }
        if let (Some(text), Some(last)) = (line.strip_prefix("    "), out.last_mut()) {
            last.1.push_str(text);
            last.1.push('\n');
        } else if line.is_empty() {
            if let Some(last) = out.last_mut() {
                last.1.push('\n');
            }
        }
    }
    out
}

#[test]
fn the_chart_renders_alike_with_helm3_and_helm4_and_lints() {
    let home = tempfile::tempdir().expect("tempdir");
    let helms = helms();
    let mut renders = Vec::new();
    for exe in &helms {
        helm(exe, home.path(), &["lint", "--strict", CHART]);
        renders.push(helm(
            exe,
            home.path(),
            &["template", "r", CHART, "-n", "sys"],
        ));
    }
    // The same documents (Helm 4 orders kinds it does not know differently).
    let sorted = |render: &str| {
        let mut all = docs(render);
        all.sort();
        all
    };
    assert_eq!(
        sorted(&renders[0]),
        sorted(&renders[1]),
        "Helm 3 and Helm 4 render the chart alike"
    );
    let all = docs(&renders[0]);
    let kinds: Vec<&str> = all.iter().map(|(k, _, _)| k.as_str()).collect();
    for kind in [
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ConfigMap",
        "ValidatingWebhookConfiguration",
        "Certificate",
        "Issuer",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    let deployment = doc(&all, "Deployment");
    assert_eq!(value(deployment, "replicas"), "2");
    for arg in [
        "- admit",
        "- --policy=/etc/reconfig/policy/policy.yaml",
        "- \"--listen=:8443\"",
        "- \"--probe-listen=:9534\"",
        "- \"--timeout=2s\"",
        "path: /readyz",
        "path: /healthz",
        "readOnlyRootFilesystem: true",
    ] {
        assert!(deployment.contains(arg), "{arg:?} missing:\n{deployment}");
    }
    assert!(!deployment.contains("--allow-commands"));
    assert!(
        !deployment.contains("subPath:"),
        "whole volumes, so kubelet updates them"
    );
    assert_eq!(value(doc(&all, "PodDisruptionBudget"), "minAvailable"), "1");

    let webhook = doc(&all, "ValidatingWebhookConfiguration");
    for needle in [
        "sideEffects: None",
        "failurePolicy: Fail",
        "timeoutSeconds: 5",
        "admissionReviewVersions: [\"v1\"]",
        "operations: [\"CREATE\", \"UPDATE\"]",
        "resources: [\"configmaps\", \"secrets\"]",
        "reconfig/validate: \"true\"",
        "path: /validate",
        "- \"kube-system\"\n            - \"sys\"",
        "cert-manager.io/inject-ca-from: sys/r-reconfig-admit",
    ] {
        assert!(webhook.contains(needle), "{needle:?} missing:\n{webhook}");
    }
    let certificate = doc(&all, "Certificate");
    assert!(
        certificate.contains("- r-reconfig-admit.sys.svc\n"),
        "{certificate}"
    );
    assert_eq!(value(certificate, "secretName"), "r-reconfig-admit-tls");

    // Values: failurePolicy Ignore, an issuer of one's own; nonsense is refused.
    let ignore = helm(
        &helms[1],
        home.path(),
        &[
            "template",
            "r",
            CHART,
            "-n",
            "sys",
            "--set",
            "webhook.failurePolicy=Ignore",
            "--set",
            "tls.certManager.issuerRef.kind=ClusterIssuer",
            "--set",
            "tls.certManager.issuerRef.name=corp-ca",
        ],
    );
    let all = docs(&ignore);
    assert!(doc(&all, "ValidatingWebhookConfiguration").contains("failurePolicy: Ignore"));
    assert!(!all.iter().any(|(k, _, _)| k == "Issuer"));
    assert!(doc(&all, "Certificate").contains("name: corp-ca"));
    for exe in &helms {
        let error = helm_fails(
            exe,
            home.path(),
            &[
                "template",
                "r",
                CHART,
                "--set",
                "webhook.failurePolicy=Maybe",
            ],
        );
        assert!(error.contains("failurePolicy is Fail or Ignore"), "{error}");
        let error = helm_fails(
            exe,
            home.path(),
            &["template", "r", CHART, "--set", "tls.mode=none"],
        );
        assert!(
            error.contains("tls.mode is certManager or selfSigned"),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_signed_quick_start_serves_with_the_rendered_certificate_and_policy() {
    let home = tempfile::tempdir().expect("tempdir");
    let helms = helms();
    let tmp = tempfile::tempdir().expect("tempdir");
    let values = tmp.path().join("values.yaml");
    std::fs::write(
        &values,
        "tls: {mode: selfSigned}\npolicy: |\n  apiVersion: reconfig/v1\n  kind: Policy\n  rules:\n    - name: app\n      keys: [\"*.yaml\"]\n      schema: app.schema.json\nschemas:\n  app.schema.json: |\n    {\"type\": \"object\", \"required\": [\"port\"]}\n",
    )
    .expect("write");
    for exe in &helms {
        let render = helm(
            exe,
            home.path(),
            &[
                "template",
                "r",
                CHART,
                "-n",
                "sys",
                "-f",
                &values.to_string_lossy(),
            ],
        );
        let all = docs(&render);
        assert!(!all
            .iter()
            .any(|(k, _, _)| k == "Certificate" || k == "Issuer"));
        let secret = doc(&all, "Secret");
        let b64 = |key: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(value(secret, key))
                .expect("base64")
        };
        let webhook = doc(&all, "ValidatingWebhookConfiguration");
        assert_eq!(value(webhook, "caBundle"), value(secret, "ca.crt"));
        assert!(!webhook.contains("inject-ca-from"));

        // Serve the rendered pair and policy with the real binary.
        let certs_dir = tmp.path().join("tls");
        let policy_dir = tmp.path().join("policy");
        for dir in [&certs_dir, &policy_dir] {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir(dir).expect("mkdir");
        }
        let unused = tmp.path().join("unused");
        std::fs::create_dir_all(&unused).expect("mkdir");
        let mut certs = Certs::new(&unused);
        certs.dir = certs_dir.clone();
        std::fs::write(certs.cert_path(), b64("tls.crt")).expect("write");
        std::fs::write(certs.key_path(), b64("tls.key")).expect("write");
        for (key, text) in block_data(doc(&all, "ConfigMap")) {
            std::fs::write(policy_dir.join(key), text).expect("write");
        }
        let admit = Admit::start(&policy_dir.join("policy.yaml"), &certs, &[]);
        let ca = String::from_utf8(b64("ca.crt")).expect("PEM");
        let mut client =
            Client::connect_named(admit.addr, &ca, Proto::H2, "r-reconfig-admit.sys.svc")
                .await
                .expect("the rendered CA vouches for the Service's name");
        let bad = configmap("prod", "app", &[("app.yaml", "name: x\n")]);
        let answer = client
            .review(&review("u1", "CREATE", &bad, None, false))
            .await;
        assert_eq!(
            answer.json()["response"]["status"]["message"],
            json!("denied by the reconfig policy: configmap/app/app.yaml:1:1: rule app: schema: \"port\" is a required property")
        );
        let good = configmap("prod", "app", &[("app.yaml", "port: 1\n")]);
        let answer = client
            .review(&review("u2", "CREATE", &good, None, false))
            .await;
        assert_eq!(
            answer.json()["response"],
            json!({"uid": "u2", "allowed": true})
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn the_watch_snippets_name_the_object_a_folder_holds_for_the_policy() {
    let home = tempfile::tempdir().expect("tempdir");
    let tmp = tempfile::tempdir().expect("tempdir");
    for dir in ["demo", "reconfig-snippets"] {
        copy_dir(
            &root().join("helm-snippets").join(dir),
            &tmp.path().join(dir),
        );
    }
    let demo = tmp.path().join("demo");
    let _ = std::fs::remove_dir_all(demo.join("charts"));
    let demo = demo.to_string_lossy().into_owned();
    for exe in &helms() {
        helm(exe, home.path(), &["dependency", "build", &demo]);
        let render = helm(
            exe,
            home.path(),
            &[
                "template",
                "r",
                &demo,
                "-n",
                "apps",
                "--set-json",
                r#"reconfigWatch.dirs=[{"configMap":"r-config","path":"/config/raw"},{"secret":"r-secret","path":"/config/secret"},"/plain"]"#,
                "--set",
                "reconfigWatch.policy=/etc/reconfig/policy/policy.yaml",
                "--set",
                "reconfigWatch.validateCmd=",
                "--set-json",
                "reconfigWatch.schemas=[]",
            ],
        );
        for arg in [
            "- \"--dir=configmap/r-config=/config/raw\"",
            "- \"--dir=secret/r-secret=/config/secret\"",
            "- \"--dir=/plain\"",
            "- \"--policy=/etc/reconfig/policy/policy.yaml\"",
        ] {
            assert!(render.contains(arg), "{arg:?} missing");
        }
        let error = helm_fails(
            exe,
            home.path(),
            &[
                "template",
                "r",
                &demo,
                "--set-json",
                r#"reconfigWatch.dirs=[{"configMap":"x"}]"#,
            ],
        );
        assert!(error.contains("needs path"), "{error}");
    }
}
