//! `reconfig watch --events --annotate-pod` against a loopback server that speaks the
//! Kubernetes API's JSON (no API server can run here; this is kube-rs's own testing approach,
//! with the real kube client inside the real binary, configured by a real kubeconfig).
//!
//! What must hold: each config version shows on the pod (Events and annotations), and the API
//! is a side channel: refusing, failing or absent, it never holds back a reload.

#![cfg(feature = "kube")]

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::atomic_writer::{payload, AtomicWriter, Payload};
use support::http::{reserve_port, Receiver};
use support::kube_api::FakeApi;
use support::reconfig::{self as rc, Reconfig};
use support::wait::{wait_for, TIMEOUT};

const NS: &str = rc::POD_NAMESPACE;
const POD: &str = rc::POD_NAME;
const HASH: &str = "reconfig/config-hash";
const STATUS: &str = "reconfig/config-status";
const MESSAGE: &str = "reconfig/config-message";

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn config(text: &str) -> Payload {
    payload(&[("app.yaml", text)])
}

/// `reconfig watch` with the API features on, pointed at `kubeconfig`, as pod shop/web-0.
fn watch(kubeconfig: &Path, args: &[&str]) -> Command {
    rc::api_command(kubeconfig, None, args)
}

/// Waits until the fake API holds `n` events; returns them.
fn wait_events(api: &FakeApi, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} event(s)"), TIMEOUT, || {
        let events = api.events();
        if events.len() >= n {
            Ok(events)
        } else {
            Err(format!("{} so far: {events:?}", events.len()))
        }
    })
}

/// Waits until the pod's `reconfig/config-status` says `status`; returns the annotations.
fn wait_status(api: &FakeApi, status: &str) -> std::collections::BTreeMap<String, String> {
    wait_for(&format!("config-status {status}"), TIMEOUT, || {
        let annotations = api.annotations(NS, POD);
        if annotations.get(STATUS).map(String::as_str) == Some(status) {
            Ok(annotations)
        } else {
            Err(format!("{annotations:?}"))
        }
    })
}

#[test]
fn each_version_shows_on_the_pod_as_events_and_annotations() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = FakeApi::start();
    api.add_pod(NS, POD, "uid-web-0");
    let kubeconfig = api.kubeconfig(tmp.path(), "default");
    let vol = AtomicWriter::new(tmp.path().join("vol"));
    vol.write(&config("port: 1\n")).expect("write");
    let hook = Receiver::start();
    let url = hook.url("/-/reload");
    let schema_file = tmp.path().join("app.schema.json");
    std::fs::write(
        &schema_file,
        r#"{"properties": {"port": {"type": "integer"}}}"#,
    )
    .expect("schema");
    let schema = format!("app.yaml={}", s(&schema_file));
    let r = Reconfig::spawn(watch(
        &kubeconfig,
        &[
            "--dir",
            s(vol.root()),
            "--webhook",
            &url,
            "--schema",
            &schema,
        ],
    ));

    // Start-up: the annotations name the running config; starting is not an event.
    let first = wait_status(&api, "applied");
    // The log reader may lag the API: wait for the line before reading its hash.
    r.wait_log("config is valid", 1);
    let started = r.hashes("config is valid").remove(0);
    assert!(first[HASH].starts_with(&started), "{first:?} vs {started}");
    assert!(!first.contains_key(MESSAGE));
    assert_eq!(
        first["prometheus.io/scrape"], "true",
        "other annotations are kept"
    );

    // An invalid version: a Warning event naming file and line, the app keeps its config.
    vol.write(&config("port: [1\n")).expect("write");
    let events = wait_events(&api, 1);
    let rejected = &events[0];
    assert_eq!(rejected["type"], "Warning");
    assert_eq!(rejected["reason"], "ConfigRejected");
    assert_eq!(rejected["action"], "Validate");
    assert_eq!(rejected["reportingController"], "reconfig/watch");
    assert_eq!(rejected["reportingInstance"], POD);
    assert_eq!(rejected["regarding"]["kind"], "Pod");
    assert_eq!(rejected["regarding"]["name"], POD);
    assert_eq!(
        rejected["regarding"]["uid"], "uid-web-0",
        "looked up, so `kubectl describe pod` lists it"
    );
    let note = rejected["note"].as_str().expect("note");
    assert!(
        note.contains("app.yaml")
            && note.contains("app.yaml:1:9")
            && note.contains("keeps its last good config"),
        "{note}"
    );
    let annotations = wait_status(&api, "rejected");
    assert_eq!(
        annotations[HASH], first[HASH],
        "the app still runs the first config"
    );
    assert!(annotations[MESSAGE].contains("app.yaml"), "{annotations:?}");
    assert_eq!(hook.count(), 0, "an invalid config is never forwarded");

    // A valid version: reloaded, a Normal event saying how, the annotations move on.
    vol.write(&config("port: 2\n")).expect("write");
    r.wait_reloaded(1);
    let events = wait_events(&api, 2);
    let applied = &events[1];
    assert_eq!(applied["type"], "Normal");
    assert_eq!(applied["reason"], "ConfigApplied");
    assert_eq!(applied["action"], "Reload");
    assert!(
        applied["note"]
            .as_str()
            .expect("note")
            .contains("/-/reload"),
        "{applied}"
    );
    let annotations = wait_status(&api, "applied");
    let reloaded = hook.successes()[0].hash.clone().expect("hash");
    assert_eq!(
        annotations[HASH], reloaded,
        "the hash the app was told about"
    );
    assert!(!annotations.contains_key(MESSAGE), "{annotations:?}");

    // A value the schema refuses: the log quotes it, the Event and the annotation do not.
    vol.write(&config("port: \"hunter2\"\n")).expect("write");
    let events = wait_events(&api, 3);
    let note = events[2]["note"].as_str().expect("note");
    assert!(
        note.ends_with("app.yaml:1:7: schema: at /port (details in the sidecar's log)"),
        "{note}"
    );
    let annotations = wait_status(&api, "rejected");
    assert!(!annotations[MESSAGE].contains("hunter2"), "{annotations:?}");
    assert!(r
        .wait_log("config rejected", 2)
        .contains("\"hunter2\" is not of type"));

    let requests = api.requests();
    for request in &requests {
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some("Bearer test-token"),
            "the kubeconfig's credentials are used: {request:?}"
        );
    }
    let gets = requests.iter().filter(|q| q.method == "GET").count();
    assert!(gets <= 1, "the pod UID is read at most once ({gets} reads)");
    let patches: Vec<_> = requests.iter().filter(|q| q.method == "PATCH").collect();
    assert!(patches.len() >= 3, "{patches:?}");
    for patch in patches {
        assert_eq!(
            patch.headers["content-type"],
            "application/merge-patch+json"
        );
        assert!(
            patch.headers["accept"].contains("as=PartialObjectMetadata"),
            "only the metadata comes back: {patch:?}"
        );
    }
    // Three Events were written (the count is bumped when the API's answer is read, so wait).
    let recorded = r.wait_metric(
        "reconfig_kube_requests_total",
        &[("request", "event"), ("result", "success")],
        3.0,
    );
    assert_eq!(recorded, 3.0);
}

#[test]
fn a_refusing_api_never_holds_back_a_reload() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = FakeApi::start();
    api.add_pod(NS, POD, "uid-web-0");
    api.fail_next(403, usize::MAX);
    let kubeconfig = api.kubeconfig(tmp.path(), NS);
    let vol = AtomicWriter::new(tmp.path().join("vol"));
    vol.write(&config("port: 1\n")).expect("write");
    let hook = Receiver::start();
    let url = hook.url("/-/reload");
    let mut r = Reconfig::spawn(watch(
        &kubeconfig,
        &["--dir", s(vol.root()), "--webhook", &url],
    ));
    r.wait_ready(200);

    vol.write(&config("port: 2\n")).expect("write");
    r.wait_reloaded(1);
    assert_eq!(hook.successes().len(), 1);
    r.wait_metric(
        "reconfig_kube_requests_total",
        &[("request", "event"), ("result", "failure")],
        1.0,
    );
    r.wait_metric(
        "reconfig_kube_requests_total",
        &[("request", "annotate_pod"), ("result", "failure")],
        1.0,
    );
    let hint = r.wait_log("needs `create events.events.k8s.io`", 1);
    assert!(
        hint.contains("403 Forbidden") && hint.contains("reconfig.watch.rbac"),
        "{hint}"
    );
    assert!(api.events().is_empty());
    // A refusal is not retried: the event was tried once.
    let posts = api.requests().iter().filter(|q| q.method == "POST").count();
    assert_eq!(posts, 1);

    vol.write(&config("port: 3\n")).expect("write");
    r.wait_reloaded(2);
    assert_eq!(hook.successes().len(), 2);
    assert_eq!(r.readyz().status, 200);
    assert!(r.try_status().is_none(), "still running:\n{}", r.log());
}

#[test]
fn annotations_land_once_the_api_recovers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = FakeApi::start();
    api.add_pod(NS, POD, "uid-web-0");
    api.fail_next(503, 2);
    let kubeconfig = api.kubeconfig(tmp.path(), NS);
    let vol = AtomicWriter::new(tmp.path().join("vol"));
    vol.write(&config("port: 1\n")).expect("write");
    let mut cmd = watch(&kubeconfig, &["--dir", s(vol.root())]);
    cmd.env("POD_UID", "uid-given");
    let r = Reconfig::spawn(cmd);

    let annotations = wait_status(&api, "applied");
    r.wait_log("config is valid", 1);
    assert!(annotations[HASH].starts_with(&r.hashes("config is valid")[0]));
    let patches = api
        .requests()
        .iter()
        .filter(|q| q.method == "PATCH")
        .count();
    assert_eq!(patches, 3, "two failures, then success");
    r.wait_metric(
        "reconfig_kube_requests_total",
        &[("request", "annotate_pod"), ("result", "success")],
        1.0,
    );
    r.wait_log("pod annotations are up to date again", 1);

    // With POD_UID given the pod is never read; with no action a valid change is applied as is.
    vol.write(&config("port: [\n")).expect("write");
    let events = wait_events(&api, 1);
    assert_eq!(events[0]["regarding"]["uid"], "uid-given");
    vol.write(&config("port: 2\n")).expect("write");
    let events = wait_events(&api, 2);
    assert_eq!(events[1]["reason"], "ConfigApplied");
    assert!(api.requests().iter().all(|q| q.method != "GET"));
}

#[test]
fn an_unreachable_api_never_holds_back_a_reload() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let closed = reserve_port();
    let kubeconfig = support::kube_api::kubeconfig(tmp.path(), &format!("http://{closed}"), NS);
    let vol = AtomicWriter::new(tmp.path().join("vol"));
    vol.write(&config("port: 1\n")).expect("write");
    let hook = Receiver::start();
    let url = hook.url("/-/reload");
    let r = Reconfig::spawn(watch(
        &kubeconfig,
        &[
            "--dir",
            s(vol.root()),
            "--webhook",
            &url,
            "--kube-timeout",
            "2s",
        ],
    ));
    r.wait_ready(200);
    for n in 2..=3 {
        vol.write(&config(&format!("port: {n}\n"))).expect("write");
        r.wait_reloaded(n - 1);
    }
    assert_eq!(hook.successes().len(), 2);
    r.wait_metric(
        "reconfig_kube_requests_total",
        &[("request", "annotate_pod"), ("result", "failure")],
        1.0,
    );
    r.wait_log("cannot annotate pod web-0", 1);
}

#[test]
fn without_api_access_it_says_so_and_exits_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let vol = AtomicWriter::new(tmp.path().join("vol"));
    vol.write(&config("port: 1\n")).expect("write");
    let mut cmd = watch(
        &tmp.path().join("no-such-kubeconfig"),
        &["--dir", s(vol.root())],
    );
    cmd.env("HOME", tmp.path());
    let output = cmd.output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--events/--annotate-pod: no Kubernetes API access"),
        "{stderr}"
    );
}

/// A policy rule that selects by label applies in the pod as in the webhook: the sidecar reads
/// the ConfigMap's labels from the API server (metadata only, never a value) before judging
/// each new config. Labelled, a bad JSON key is rejected; once the label is gone, the same
/// rule no longer selects the object and the next config is applied.
#[test]
fn label_selected_policy_rules_apply_by_the_labels_the_api_server_has() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = FakeApi::start();
    api.add_pod(NS, POD, "uid-web-0");
    let kubeconfig = api.kubeconfig(tmp.path(), "default");
    let config_map = |labels: Value| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": NS, "labels": labels},
            "data": {"app.json": "{}"}})
    };
    api.put(config_map(serde_json::json!({"reconfig/validate": "true"})));
    let policy = tmp.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: reconfig/v1\nkind: Policy\nrules:\n  - name: labelled-json\n    match:\n      kinds: [ConfigMap]\n      labels:\n        matchLabels: {reconfig/validate: \"true\"}\n    keys: [\"*.json\"]\n",
    )
    .expect("policy");
    let vol = AtomicWriter::new(tmp.path().join("vol"));
    vol.write(&payload(&[("app.json", "{}")])).expect("write");
    let hook = Receiver::start();
    let url = hook.url("/-/reload");
    let dir = format!("configmap/app={}", s(vol.root()));
    let r = Reconfig::spawn(watch(
        &kubeconfig,
        &["--dir", &dir, "--policy", s(&policy), "--webhook", &url],
    ));
    r.wait_phase("applied");
    assert_eq!(
        r.count("does not apply"),
        0,
        "no blind spot: the labels are read\n{}",
        r.log()
    );

    vol.write(&payload(&[("app.json", "{")])).expect("write");
    let status = r.wait_phase("rejected");
    assert!(
        status.to_string().contains("labelled-json"),
        "the rule named: {status}"
    );

    // The label goes: the rule selects the object no more, and the next config passes.
    api.put(config_map(serde_json::json!({})));
    vol.write(&payload(&[("app.json", "{\"a\":")]))
        .expect("write");
    r.wait_phase("applied");
    let reads: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|q| q.path == format!("/api/v1/namespaces/{NS}/configmaps/app"))
        .collect();
    assert_eq!(reads.len(), 3, "one read per new config: {reads:?}");
    assert!(
        reads.iter().all(|q| q.method == "GET"
            && q.headers
                .get("accept")
                .is_some_and(|a| a.contains("as=PartialObjectMetadata"))),
        "metadata only: {reads:?}"
    );
}
