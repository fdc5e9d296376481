//! `reconfig prune` against the loopback API stand-in: the real binary, the real kube client,
//! a kubeconfig pointing at the stand-in.
#![cfg(feature = "kube")]

mod support;

use std::path::PathBuf;

use serde_json::{json, Value};
use support::cli::reconfig;
use support::kube_api::FakeApi;

const NS: &str = "shop";

/// `creationTimestamp` of a version made `hours_ago`.
fn created(hours_ago: u64) -> String {
    let at = std::time::SystemTime::now() - std::time::Duration::from_secs(hours_ago * 3600);
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    // Whole seconds, UTC, as the API server writes them.
    reconfig_time(secs)
}

fn reconfig_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A version of ConfigMap `from` (or Secret, by `kind`), made `hours_ago`.
fn version(api: &FakeApi, kind: &str, from: &str, hash: &str, hours_ago: u64) {
    api.put(json!({
        "apiVersion": "v1", "kind": kind,
        "metadata": {"name": format!("{from}-{hash}"), "namespace": NS,
                     "labels": {"reconfig/versioned-from": from, "app.kubernetes.io/instance": "shop"},
                     "creationTimestamp": created(hours_ago)},
        "data": {"a": "b"},
    }));
}

/// A ReplicaSet whose pod template mounts `config` and reads `secret`.
fn replica_set(api: &FakeApi, name: &str, config: &str, secret: &str) {
    api.put(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": "app:1",
                            "envFrom": [{"secretRef": {"name": secret}}]}],
            "volumes": [{"name": "config", "configMap": {"name": config}}]}}},
    }));
}

struct Setup {
    api: FakeApi,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn setup() -> Setup {
    let api = FakeApi::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path(), NS);
    Setup {
        api,
        _dir: dir,
        kubeconfig,
    }
}

impl Setup {
    fn prune(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        reconfig()
            .arg("prune")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .assert()
    }

    fn names(&self, kind: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .api
            .objects(kind)
            .iter()
            .map(|o| {
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        names.sort();
        names
    }

    fn deletes(&self) -> Vec<String> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.path)
            .collect()
    }
}

/// Four versions of `app` (a: 40h old, b: 30h, c: 20h, d: 10h), two of Secret `db`; the
/// ReplicaSet `web-1` uses app-a and db-x.
fn cluster() -> Setup {
    let s = setup();
    for (hash, age) in [("a", 40), ("b", 30), ("c", 20), ("d", 10)] {
        version(&s.api, "ConfigMap", "app", hash, age);
    }
    version(&s.api, "Secret", "db", "x", 40);
    version(&s.api, "Secret", "db", "y", 30);
    replica_set(&s.api, "web-1", "app-a", "db-x");
    // Not a version: never touched.
    s.api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "plain", "namespace": NS}}));
    s
}

fn stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).expect("utf8")
}

fn stderr(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stderr.clone()).expect("utf8")
}

#[test]
fn keeps_what_is_used_and_the_newest_and_deletes_the_rest() {
    let s = cluster();
    let out = s.prune(&["--keep-last", "1"]).success();
    let text = stdout(&out);
    assert_eq!(
        s.names("ConfigMap"),
        vec!["app-a", "app-d", "plain"],
        "{text}"
    );
    assert_eq!(s.names("Secret"), vec!["db-x", "db-y"], "{text}");
    assert!(
        text.contains("keep          ConfigMap shop/app-a (from app): used by ReplicaSet web-1"),
        "{text}"
    );
    assert!(
        text.contains("deleted       ConfigMap shop/app-b (from app): deleted"),
        "{text}"
    );
    assert!(
        text.ends_with("namespace shop: 6 version(s), 2 deleted, 4 kept\n"),
        "{text}"
    );
    // Each delete carried the resourceVersion and uid it was listed with.
    let deletes: Vec<Value> = s
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.body)
        .collect();
    assert_eq!(deletes.len(), 2);
    for body in &deletes {
        assert!(
            body["preconditions"]["resourceVersion"].is_string(),
            "{body}"
        );
        assert!(body["preconditions"]["uid"].is_string(), "{body}");
    }
}

#[test]
fn one_list_per_kind_and_no_reads_of_single_objects() {
    let s = cluster();
    s.prune(&["--dry-run"]).success();
    let requests = s.api.requests();
    let gets: Vec<&str> = requests
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.as_str())
        .collect();
    // Two lists of versions, one list per reader kind the stand-in serves, and one discovery
    // read per custom resource group (Rollouts are served; Kruise and Knative are not).
    let lists: Vec<&&str> = gets
        .iter()
        .filter(|p| {
            p.starts_with("/api/v1/namespaces/")
                || p.starts_with("/apis/") && p.contains("/namespaces/")
        })
        .collect();
    let mut unique = lists.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        lists.len(),
        "a kind was listed twice: {lists:#?}"
    );
    assert_eq!(lists.len(), 2 + 11, "{gets:#?}");
    assert!(s.deletes().is_empty(), "--dry-run deletes nothing");
}

#[test]
fn dry_run_and_json() {
    let s = cluster();
    let out = s
        .prune(&["--dry-run", "--keep-last", "0", "--output", "json"])
        .success();
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 6);
    let action = |name: &str| {
        lines
            .iter()
            .find(|l| l["name"] == name)
            .map(|l| l["action"].as_str().unwrap_or_default().to_string())
            .expect("listed")
    };
    assert_eq!(action("app-a"), "keep");
    assert_eq!(action("app-b"), "would-delete");
    assert_eq!(action("app-d"), "would-delete");
    assert_eq!(action("db-y"), "would-delete");
    assert_eq!(lines[0]["versionedFrom"], "app");
    assert!(lines[0]["created"].is_string());
    assert!(s.deletes().is_empty());
    assert_eq!(s.names("ConfigMap").len(), 5);
}

#[test]
fn min_age_protects_a_version_applied_before_its_workload() {
    let s = setup();
    version(&s.api, "ConfigMap", "app", "old", 5);
    version(&s.api, "ConfigMap", "app", "new", 0);
    let out = s.prune(&["--keep-last", "0"]).success();
    assert_eq!(s.names("ConfigMap"), vec!["app-new"], "{}", stdout(&out));
    assert!(stdout(&out).contains("younger than --min-age 600s"));
    let out = s.prune(&["--keep-last", "0", "--min-age", "0s"]).success();
    assert!(s.names("ConfigMap").is_empty(), "{}", stdout(&out));
}

#[test]
fn selector_and_all_namespaces() {
    let s = cluster();
    s.api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "other-z", "namespace": "elsewhere", "creationTimestamp": created(50),
                     "labels": {"reconfig/versioned-from": "other"}}}));
    s.api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "other-y", "namespace": "elsewhere", "creationTimestamp": created(10),
                     "labels": {"reconfig/versioned-from": "other"}}}));
    s.prune(&[
        "-l",
        "app.kubernetes.io/instance=shop",
        "--keep-last",
        "0",
        "-n",
        "elsewhere",
    ])
    .success();
    assert_eq!(
        s.names("ConfigMap").len(),
        7,
        "nothing in elsewhere matched"
    );
    s.prune(&["--all-namespaces", "--keep-last", "1"]).success();
    assert_eq!(
        s.names("ConfigMap"),
        vec!["app-a", "app-d", "other-y", "plain"]
    );
}

#[test]
fn a_refused_delete_fails_and_reports_only_what_was_done() {
    let s = cluster();
    s.api.refuse("DELETE", "configmaps", 403);
    let out = s.prune(&["--keep-last", "1"]).code(2);
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(
        text.contains(
            "failed        ConfigMap shop/app-c (from app): the delete failed: 403 Forbidden"
        ),
        "{text}"
    );
    assert!(
        text.contains("not-attempted ConfigMap shop/app-b"),
        "{text}"
    );
    assert!(err.contains("2 version(s) not deleted"), "{err}");
    assert!(err.contains("reconfig.prune"), "the fix is named: {err}");
    assert_eq!(s.deletes().len(), 1, "it stops at the first refusal");
    assert_eq!(s.names("ConfigMap").len(), 5);
}

#[test]
fn a_version_changed_between_list_and_delete_is_kept() {
    let s = cluster();
    s.api.change_before_delete("app-b");
    let out = s.prune(&["--keep-last", "1"]).code(2);
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(
        text.contains("changed       ConfigMap shop/app-b (from app): changed since it was listed, kept (409 Conflict"),
        "{text}"
    );
    assert!(
        text.contains("deleted       ConfigMap shop/app-c"),
        "{text}"
    );
    assert_eq!(
        s.names("ConfigMap"),
        vec!["app-a", "app-b", "app-d", "plain"]
    );
    assert!(err.contains("1 version(s) not deleted"), "{err}");
}

#[test]
fn a_refused_list_deletes_nothing() {
    let s = cluster();
    s.api.refuse("GET", "replicasets", 403);
    let out = s.prune(&["--keep-last", "0"]).code(2);
    let err = stderr(&out);
    assert!(
        err.contains("cannot list replicasets.apps in namespace shop (to find what uses each version): 403 Forbidden"),
        "{err}"
    );
    assert!(err.contains("nothing was deleted"), "{err}");
    assert!(s.deletes().is_empty());
}

/// The benchmark of `benches/prune_bench.sh`: 10,000 versions (100 names, 100 versions each)
/// and 5,000 ReplicaSets naming half of them. Prune lists each kind once and reads no single
/// object; it deletes the versions nothing names beyond the newest 3 of each name, one DELETE
/// each. Ignored in the normal run (it takes a while in a debug build); run it with
/// `cargo test --release --test prune_kube -- --ignored --nocapture prune_at_scale`.
#[test]
#[ignore]
fn prune_at_scale() {
    let s = setup();
    let (names, per_name) = (100, 100);
    for n in 0..names {
        for v in 0..per_name {
            s.api.put(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("app{n}-{v:010}"), "namespace": NS,
                             "labels": {"reconfig/versioned-from": format!("app{n}")},
                             "creationTimestamp": created(1000 - v as u64)},
                "data": {"k": "v"}}));
            if v % 2 == 0 {
                replica_set(
                    &s.api,
                    &format!("web{n}-{v}"),
                    &format!("app{n}-{v:010}"),
                    "none",
                );
            }
        }
    }
    let before = s.api.requests().len();
    let started = std::time::Instant::now();
    let out = s
        .prune(&[
            "--dry-run",
            "--keep-last",
            "3",
            "--min-age",
            "0s",
            "--output",
            "json",
        ])
        .success();
    let dry_run = started.elapsed();
    let requests: Vec<_> = s.api.requests().into_iter().skip(before).collect();
    let lists = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/namespaces/"))
        .count();
    let discovery = requests.len() - lists;
    let would: usize = stdout(&out)
        .lines()
        .filter(|l| l.contains("\"action\":\"would-delete\""))
        .count();
    // Half are named by a ReplicaSet; of the other half, the newest of each name (v99) is
    // among the newest 3 (v99, v98, v97: v98 is named anyway).
    assert_eq!(would, names * (per_name / 2 - 2));
    assert_eq!(lists, 2 + 11, "one list per kind");
    let started = std::time::Instant::now();
    s.prune(&["--keep-last", "3", "--min-age", "0s"]).success();
    let real = started.elapsed();
    let deletes = s.deletes().len();
    assert_eq!(deletes, would);
    println!(
        "prune over {} versions and {} ReplicaSets: --dry-run {:.2} s ({} requests: {lists} lists, {discovery} discovery reads, 0 reads of single objects); deleting {deletes} took {:.2} s ({} requests, one DELETE per version)",
        names * per_name,
        names * per_name / 2,
        dry_run.as_secs_f64(),
        requests.len(),
        real.as_secs_f64(),
        lists + discovery + deletes,
    );
}
