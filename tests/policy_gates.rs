//! One policy, three gates: `reconfig check --policy` (CI), `reconfig admit` (the API server's
//! webhook) and `reconfig watch --policy` (the pod) judge the same good and bad objects, and the
//! test asserts that their verdicts and messages agree exactly.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value as Json};

use support::admit::{configmap, review, secret, Admit, Certs, Client, Proto};
use support::atomic_writer::{payload, AtomicWriter};
use support::cli::run;
use support::reconfig::Reconfig;
use support::wait::{wait_for, TIMEOUT};

const POLICY: &str = "\
apiVersion: reconfig/v1
kind: Policy
rules:
  - name: app-schema
    match: {kinds: [ConfigMap, Secret], names: [\"app*\"]}
    keys: [\"*.yaml\"]
    schema: app.schema.json
  - name: json-syntax
    keys: [\"*.json\"]
    severity: warn
  - name: toml-syntax
    match: {kinds: [ConfigMap]}
    keys: [\"*.toml\"]
    format: toml
";

const SCHEMA: &str = r#"{"type": "object", "required": ["port"], "properties": {"port": {"type": "integer"}, "debug": {"type": "boolean"}}}"#;

/// A verdict as a gate gives it: denial messages, warning messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    denials: BTreeSet<String>,
    warnings: BTreeSet<String>,
}

/// One case: kind, name, keys.
type Case = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

fn cases() -> Vec<Case> {
    vec![
        (
            "ConfigMap",
            "app",
            vec![
                ("app.yaml", "port: 8080\ndebug: true\n"),
                ("notes.txt", "{"),
            ],
        ),
        (
            "ConfigMap",
            "app",
            vec![("app.yaml", "debug: true\nport: eighty\n")],
        ),
        (
            "ConfigMap",
            "app",
            vec![("app.yaml", "port: 1\n"), ("extra.json", "{\"a\": }")],
        ),
        (
            "ConfigMap",
            "app",
            vec![
                ("app.yaml", "port: [1\n"),
                ("extra.json", "[1,]"),
                ("c.toml", "a = \n"),
            ],
        ),
        ("ConfigMap", "app", vec![("app.yaml", "debug: maybe\n")]),
        ("Secret", "app-db", vec![("app.yaml", "port: hunter2\n")]),
    ]
}

fn manifest(kind: &str, name: &str, keys: &[(&str, &str)]) -> String {
    let mut text =
        format!("apiVersion: v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: prod\n");
    text.push_str(if kind == "Secret" {
        "stringData:\n"
    } else {
        "data:\n"
    });
    for (key, value) in keys {
        text.push_str(&format!(
            "  {key}: {}\n",
            serde_json::to_string(value).expect("json")
        ));
    }
    text
}

fn object(kind: &str, name: &str, keys: &[(&str, &str)]) -> Json {
    if kind == "Secret" {
        secret("prod", name, keys)
    } else {
        configmap("prod", name, keys)
    }
}

/// `reconfig check --policy P --manifests -` on one object.
fn check_gate(policy: &Path, kind: &str, name: &str, keys: &[(&str, &str)]) -> Verdict {
    let policy = policy.to_string_lossy();
    let out = run(
        &["check", "--policy", &policy, "--manifests", "-"],
        &manifest(kind, name, keys),
    );
    let redaction = " (the message would quote the Secret's value; --show-secret-values prints it)";
    let pick = |prefix: &str| -> BTreeSet<String> {
        out.stderr
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter(|l| !l.contains("problem(s) in"))
            .map(|l| l.trim_end_matches(redaction).to_string())
            .collect()
    };
    let verdict = Verdict {
        denials: pick("reconfig: error: "),
        warnings: pick("reconfig: warning: "),
    };
    assert_eq!(
        out.code,
        if verdict.denials.is_empty() { 0 } else { 1 },
        "{}",
        out.stderr
    );
    verdict
}

async fn admit_gate(client: &mut Client, uid: &str, object: &Json) -> Verdict {
    let answer = client
        .review(&review(uid, "CREATE", object, None, false))
        .await;
    let response = &answer.json()["response"];
    assert_eq!(response["uid"], json!(uid));
    let denials = response["status"]["message"]
        .as_str()
        .map(|m| {
            m.trim_start_matches("denied by the reconfig policy: ")
                .split("; ")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let warnings = response["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|w| w.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let verdict = Verdict { denials, warnings };
    assert_eq!(
        response["allowed"],
        json!(verdict.denials.is_empty()),
        "{}",
        answer.body
    );
    verdict
}

/// The messages about `object` (`configmap/app`) in log lines after `marker`, up to ` hash=`:
/// the sidecar judges all its folders at once, so a version names every object's problems.
fn watch_messages(lines: &[String], marker: &str, object: &str) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| l.split_once(marker).map(|(_, rest)| rest))
        .map(|rest| {
            rest.rsplit_once(" hash=")
                .map_or(rest, |(m, _)| m)
                .to_string()
        })
        .filter(|m| m.starts_with(&format!("{object}/")) || m.starts_with(&format!("{object}:")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_admit_and_watch_agree_on_every_verdict_and_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let policy_dir = tmp.path().join("policy");
    std::fs::create_dir(&policy_dir).expect("mkdir");
    let policy = policy_dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).expect("write");
    std::fs::write(policy_dir.join("app.schema.json"), SCHEMA).expect("write");
    let certs = Certs::new(tmp.path());
    let admit = Admit::start(&policy, &certs, &[]);
    let mut client = Client::connect(admit.addr, &certs.ca_pem, Proto::H2)
        .await
        .expect("connect");

    // The sidecar watches one ConfigMap volume and one Secret volume, named as the snippets do.
    let cm_volume = AtomicWriter::new(tmp.path().join("cm"));
    let secret_volume = AtomicWriter::new(tmp.path().join("secret"));
    let start = &cases()[0];
    cm_volume.write(&payload(&start.2)).expect("volume");
    secret_volume
        .write(&payload(&[("app.yaml", "port: 1\n")]))
        .expect("volume");
    let cm_dir = format!("configmap/app={}", tmp.path().join("cm").display());
    let secret_dir = format!("secret/app-db={}", tmp.path().join("secret").display());
    let mut cmd = support::reconfig::command(&[
        "--dir",
        &cm_dir,
        "--dir",
        &secret_dir,
        "--policy",
        &policy.to_string_lossy(),
    ]);
    cmd.env("POD_NAMESPACE", "prod");
    let watch = Reconfig::spawn(cmd);
    watch.wait_ready(200);

    let mut disagreements = Vec::new();
    let mut denied_somewhere = 0;
    let mut warned_somewhere = 0;
    for (i, (kind, name, keys)) in cases().into_iter().enumerate() {
        let by_check = check_gate(&policy, kind, name, &keys);
        let by_admit =
            admit_gate(&mut client, &format!("uid-{i}"), &object(kind, name, &keys)).await;

        let before = watch.lines().len();
        let hash_before = watch.status()["hash"].clone();
        let volume = if kind == "Secret" {
            &secret_volume
        } else {
            &cm_volume
        };
        volume.write(&payload(&keys)).expect("update volume");
        if i > 0 || kind == "Secret" {
            wait_for("the sidecar to judge the new version", TIMEOUT, || {
                let now = watch.status()["hash"].clone();
                if now != hash_before {
                    Ok(())
                } else {
                    Err(format!("still {now}"))
                }
            });
        }
        let label = format!("{}/{name}", kind.to_lowercase());
        let expected = by_check.denials.len() + by_check.warnings.len();
        let lines = wait_for("the sidecar's messages", TIMEOUT, || {
            let lines: Vec<String> = watch.lines()[before..].to_vec();
            let n = watch_messages(&lines, "config rejected: ", &label).len()
                + watch_messages(&lines, "policy warning: ", &label).len();
            if n >= expected {
                Ok(lines)
            } else {
                Err(format!("{n} of {expected}: {lines:?}"))
            }
        });
        let mut by_watch = Verdict {
            denials: watch_messages(&lines, "config rejected: ", &label),
            warnings: watch_messages(&lines, "policy warning: ", &label),
        };
        if kind == "Secret" {
            // The sidecar's own log keeps the validator's words (its Events and /status do not);
            // the other gates print where and what, which is how that log line starts.
            for (full, short) in by_watch.denials.iter().zip(&by_check.denials) {
                assert!(full.starts_with(&format!("{short}: ")), "{full} vs {short}");
            }
            by_watch.denials = by_check.denials.clone();
            assert!(by_admit.denials.iter().all(|m| !m.contains("hunter2")));
        }
        if watch.status()["phase"] == json!("rejected") {
            assert!(!by_watch.denials.is_empty());
        }
        denied_somewhere += usize::from(!by_check.denials.is_empty());
        warned_somewhere += usize::from(!by_check.warnings.is_empty());
        if by_check != by_admit || by_check != by_watch {
            disagreements.push(format!(
                "case {i}:\n  check {by_check:?}\n  admit {by_admit:?}\n  watch {by_watch:?}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert_eq!((denied_somewhere, warned_somewhere), (4, 2));
}

#[test]
fn check_on_folders_names_the_object_and_the_policy_file_is_checked_with_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("policy.yaml"), POLICY).expect("write");
    std::fs::write(tmp.path().join("app.schema.json"), SCHEMA).expect("write");
    let folder = tmp.path().join("app");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::write(folder.join("app.yaml"), "port: eighty\n").expect("write");
    let policy = tmp.path().join("policy.yaml");
    let policy = policy.to_string_lossy();
    let named = format!("configmap/app={}", folder.display());
    let out = run(&["check", "--policy", &policy, &named], "");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("reconfig: error: configmap/app/app.yaml:1:7: rule app-schema: schema: at /port: \"eighty\" is not of type \"integer\""),
        "{}",
        out.stderr
    );
    // A folder that names no object: rules that select objects do not apply, and say so.
    let plain = folder.to_string_lossy();
    let out = run(&["check", "--policy", &policy, &plain], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("rule app-schema selects objects, but this folder names none"),
        "{}",
        out.stderr
    );

    // The policy file itself is validated against the shipped schema, with lines.
    std::fs::write(
        tmp.path().join("policy.yaml"),
        POLICY.replace("keys: [\"*.json\"]", "keys: \"*.json\""),
    )
    .expect("write");
    let out = run(&["check", "--policy", &policy, &named], "");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("policy.yaml:9:11: at /rules/1/keys: \"*.json\" is not of type \"array\""),
        "{}",
        out.stderr
    );
    // And it cannot be combined with the flags it replaces.
    let out = run(
        &["check", "--policy", &policy, "--format", "yaml", &named],
        "",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn the_example_policy_loads_and_judges_the_example_objects() {
    let shipped: Json = serde_json::from_str(
        &std::fs::read_to_string("schemas/policy.schema.json").expect("schema file"),
    )
    .expect("JSON");
    assert_eq!(
        shipped["properties"]["apiVersion"]["const"],
        json!("reconfig/v1")
    );
    let out = run(
        &[
            "check",
            "--policy",
            "examples/policy/policy.yaml",
            "--manifests",
            "examples/policy/objects.yaml",
        ],
        "",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr.lines().collect::<Vec<_>>(),
        vec![
            "reconfig: error: configmap/shop-web/config.yaml:2:11: rule shop-config: schema: at /currency: \"GBP\" is not one of \"EUR\" or \"USD\"",
            "reconfig: warning: secret/shop-db/database.yaml:1:6: rule database-url: schema: at /url (the message would quote the Secret's value; --show-secret-values prints it)",
            "reconfig: error: 1 problem(s) in 3 file(s) checked",
        ]
    );
    assert!(!out.stderr.contains("hunter2"));
}

/// `check --policy` speaks the CI formats of `--output` too: each finding carries its policy
/// rule's name and its severity (a warn rule is a `warning`, which does not fail the check).
#[test]
fn policy_findings_in_the_ci_formats_name_rule_and_severity() {
    let args = |output: &str| {
        run(
            &[
                "check",
                "--policy",
                "examples/policy/policy.yaml",
                "--manifests",
                "examples/policy/objects.yaml",
                "--output",
                output,
            ],
            "",
        )
    };
    let out = args("json");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let findings: Vec<Json> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(
        findings,
        vec![
            json!({"object": "configmap/shop-web", "key": "config.yaml", "file": null, "line": 2,
                   "column": 11, "rule": "shop-config", "severity": "error",
                   "message": "rule shop-config: schema: at /currency: \"GBP\" is not one of \"EUR\" or \"USD\""}),
            json!({"object": "secret/shop-db", "key": "database.yaml", "file": null, "line": 1,
                   "column": 6, "rule": "database-url", "severity": "warning",
                   "message": "rule database-url: schema: at /url (the message would quote the Secret's value; --show-secret-values prints it)"}),
        ]
    );
    let out = args("github");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let levels: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(level, _)| level))
        .collect();
    assert_eq!(levels, vec!["::error", "::warning"], "{}", out.stdout);
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
}
