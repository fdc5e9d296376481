//! What `reconfig watch` says about the config, and that it never lies: "applied" means an
//! action for that exact hash succeeded (or it was published, or nothing needs doing), a
//! version that is not forwarded is a rejection, an empty folder is not a config, and
//! readiness (a validated config is running) is apart from the config status (what became of
//! the newest version: `/status`, `reconfig_config_status`, Events, pod annotations).
//!
//! Every assertion is on what the programs observe: the webhook receiver's requests, /readyz,
//! /status, /metrics, and the pod and Events in the loopback API stand-in.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use support::atomic_writer::{payload, Payload};
use support::reconfig::Reconfig;
use support::watch::{carries, WatchTest, VALID};

const PHASES: [&str; 5] = ["waiting", "applying", "applied", "rejected", "failed"];

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `port: N` as a YAML config.
fn config(n: u32) -> Payload {
    payload(&[("app.yaml", &format!("port: {n}\n"))])
}

fn invalid() -> Payload {
    payload(&[("app.yaml", "port: [1\n")])
}

/// The hash `reconfig_config_info` names: the config the app runs on.
fn info_hash(r: &Reconfig) -> String {
    let sets = r.metrics().label_sets("reconfig_config_info");
    assert_eq!(sets.len(), 1, "one running config: {sets:?}");
    sets[0]["hash"].clone()
}

/// `reconfig_config_status{status=…}` for every phase: exactly one is 1.
fn status_gauges(r: &Reconfig) -> BTreeMap<&'static str, f64> {
    let metrics = r.metrics();
    PHASES
        .iter()
        .map(|p| {
            let value = metrics
                .get("reconfig_config_status", &[("status", p)])
                .unwrap_or_else(|| panic!("reconfig_config_status{{status={p:?}}} is missing"));
            (*p, value)
        })
        .collect()
}

fn only_phase(r: &Reconfig, phase: &str) {
    let gauges = status_gauges(r);
    for (p, value) in &gauges {
        let want = if *p == phase { 1.0 } else { 0.0 };
        assert_eq!(*value, want, "{phase}: {gauges:?}");
    }
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

/// Issue 13, item 1: webhook down, `--retries 1`: v2 gives up, an invalid version comes, then
/// v2 again. The revert is a new attempt: the app gets v2 once the webhook is back.
#[test]
fn a_revert_to_a_version_whose_retries_ran_out_is_a_new_attempt() {
    let mut t = WatchTest::new()
        .kubelet_volume(config(1))
        .webhook_down()
        .args(["--retries", "1", "--retry-backoff", "50ms"])
        .start();
    t.r.wait_ready(200);
    let first = info_hash(&t.r);

    t.vol().write(&config(2)).expect("write");
    t.r.wait_metric(
        "reconfig_reloads_total",
        &[("action", "webhook"), ("result", "failure")],
        2.0,
    );
    t.vol().write(&invalid()).expect("write");
    t.r.wait_metric("reconfig_validation_failures_total", &[], 1.0);

    t.webhook_comes_back();
    t.vol().write(&config(2)).expect("write");
    let calls = t.wait_successes(1);
    // The webhook can hear the call before the test's reader of reconfig's log has the line
    // written before it (seen on a loaded machine): wait for the line, then count.
    t.r.wait_log(VALID, 2);
    let logged = t.r.hashes(VALID);
    assert_eq!(logged.len(), 2, "v2, then v2 again:\n{}", t.r.log());
    assert_eq!(logged[0], logged[1]);
    assert!(carries(&calls[0], &logged[1]));
    t.r.wait_reloaded(1);

    let status = t.r.wait_phase("applied");
    let v2 = calls[0].hash.clone().expect("hash");
    assert_eq!(status["applied"], v2.as_str(), "{status}");
    assert_eq!(status["wanted"], v2.as_str(), "{status}");
    assert_eq!(info_hash(&t.r), v2);
    assert_ne!(first, v2);
    assert_eq!(t.r.readyz().status, 200);
    only_phase(&t.r, "applied");
    assert_eq!(t.hook().count(), 1, "{:?}", t.hook().requests());
}

/// Issue 13, item 4: a folder created empty and filled later is waited for, as a missing one.
#[test]
fn an_empty_folder_is_not_a_config_until_it_holds_files() {
    let t = WatchTest::new()
        .plain_folder(&[])
        .webhook()
        .args(["--debounce", "50ms"])
        .start();
    let body = t.r.wait_ready(503);
    assert!(body.contains("no files"), "{body}");
    let status = t.r.wait_phase("waiting");
    assert!(text(&status["message"]).contains("no files"), "{status}");
    assert_eq!(status["applied"], Value::Null, "{status}");
    only_phase(&t.r, "waiting");
    assert_eq!(t.r.metrics().label_sets("reconfig_config_info").len(), 0);

    std::fs::write(t.dir().join("app.yaml"), "port: 1\n").expect("write");
    let calls = t.wait_successes(1);
    t.r.wait_ready(200);
    let status = t.r.wait_phase("applied");
    assert_eq!(
        calls[0].hash.as_deref(),
        status["applied"].as_str(),
        "{status}"
    );
    assert_eq!(t.hook().count(), 1);
}

/// Issue 13, item 4, in a kubelet volume: a ConfigMap with no keys yet is waited for; once a
/// config runs, a version with no files is not forwarded: a rejection, and the app keeps its
/// config.
#[test]
fn an_empty_volume_is_waited_for_and_emptied_later_is_rejected() {
    let t = WatchTest::new()
        .kubelet_volume(payload(&[]))
        .webhook()
        .start();
    t.r.wait_ready(503);
    t.r.wait_phase("waiting");

    t.vol().write(&config(1)).expect("write");
    let calls = t.wait_successes(1);
    t.r.wait_ready(200);
    let running = calls[0].hash.clone().expect("hash");

    t.vol().write(&payload(&[])).expect("write");
    let status = t.r.wait_phase("rejected");
    let message = text(&status["message"]);
    assert!(
        message.contains("no files") && message.contains(s(t.vol().root())),
        "{status}"
    );
    assert_eq!(status["applied"], running.as_str(), "{status}");
    assert_eq!(t.r.validation_failures(), 1);
    assert_eq!(t.r.readyz().status, 200);
    assert_eq!(
        t.hook().count(),
        1,
        "the empty version never reached the app"
    );

    t.vol().write(&config(2)).expect("write");
    t.wait_successes(2);
    t.r.wait_phase("applied");
    assert_eq!(t.hook().count(), 2);
}

/// `--allow-empty`: an empty folder is a config like any other.
#[test]
fn allow_empty_makes_an_empty_folder_a_config() {
    let t = WatchTest::new()
        .plain_folder(&[])
        .args(["--allow-empty"])
        .start();
    t.r.wait_ready(200);
    let status = t.r.wait_phase("applied");
    assert!(status["applied"].is_string(), "{status}");

    let help = support::cli::run(&["watch", "--help"], "");
    assert!(help.stdout.contains("--allow-empty"), "{}", help.stdout);
}

/// Readiness before the first validated config: 503 while the only version is rejected, and the
/// status says why.
#[test]
fn not_ready_until_a_first_validated_config_runs() {
    let t = WatchTest::new().kubelet_volume(invalid()).webhook().start();
    let body = t.r.wait_ready(503);
    assert!(body.contains("invalid"), "{body}");
    let status = t.r.wait_phase("rejected");
    assert_eq!(status["ready"], false);
    assert_eq!(status["applied"], Value::Null);
    assert!(
        text(&status["message"]).contains("no valid config yet"),
        "{status}"
    );

    t.vol().write(&config(1)).expect("write");
    t.wait_successes(1);
    t.r.wait_ready(200);
    t.r.wait_phase("applied");
}

/// The cases that need the Kubernetes API features (`--events`, `--annotate-pod`), against the
/// loopback API stand-in.
#[cfg(feature = "kube")]
mod with_the_api {
    use super::*;
    use std::process::Command;

    use support::atomic_writer::AtomicWriter;
    use support::http::Receiver;
    use support::reconfig::{self as rc};
    use support::wait::{wait_for, TIMEOUT};
    use support::watch::wait_successes;

    /// Issue 13, item 1, before the retries run out: the revert to v2 is still being applied, and
    /// everything says so (status, metrics, annotations) until the action for v2 succeeds.
    #[test]
    fn a_revert_while_its_retries_run_is_applying_until_the_action_succeeds() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let api = Api::start(tmp.path());
        let vol = AtomicWriter::new(tmp.path().join("vol"));
        vol.write(&config(1)).expect("write");
        let down = support::http::reserve_port();
        let url = format!("http://{down}/-/reload");
        let r = Reconfig::spawn(api.watch(&[
            "--dir",
            s(vol.root()),
            "--webhook",
            &url,
            "--retries",
            "60",
            "--retry-backoff",
            "100ms",
        ]));
        r.wait_ready(200);
        let first = info_hash(&r);
        api.wait_status("applied");

        vol.write(&config(2)).expect("write");
        r.wait_metric(
            "reconfig_reloads_total",
            &[("action", "webhook"), ("result", "failure")],
            1.0,
        );
        let applying = r.wait_phase("applying");
        let v2 = text(&applying["hash"]).to_string();
        vol.write(&invalid()).expect("write");
        r.wait_phase("rejected");
        api.wait_status("rejected");
        vol.write(&config(2)).expect("write");

        // Back to v2, which the app has not got yet.
        let status = r.wait_phase("applying");
        assert_eq!(status["hash"], v2.as_str(), "{status}");
        assert_eq!(status["wanted"], v2.as_str(), "{status}");
        assert_eq!(status["applied"], first.as_str(), "{status}");
        assert_eq!(info_hash(&r), first, "the app still runs the first config");
        assert_eq!(r.readyz().status, 200, "a validated config is running");
        only_phase(&r, "applying");
        let annotations = api.wait_status("applying");
        assert_eq!(annotations[HASH], first, "{annotations:?}");
        let events = api.reasons();
        assert_eq!(events, ["ConfigRejected"], "nothing applied yet");

        let hook = Receiver::start_on(down).expect("the webhook comes back");
        let calls = wait_successes(&hook, 1);
        assert_eq!(calls[0].hash.as_deref(), Some(v2.as_str()));
        r.wait_reloaded(1);
        let status = r.wait_phase("applied");
        assert_eq!(status["applied"], v2.as_str(), "{status}");
        assert_eq!(info_hash(&r), v2);
        only_phase(&r, "applied");
        let annotations = api.wait_status("applied");
        assert_eq!(annotations[HASH], v2, "{annotations:?}");
        let events = api.wait_events(2);
        assert_eq!(events, ["ConfigRejected", "ConfigApplied"]);
        assert_eq!(hook.count(), 1, "v2 once: {:?}", hook.requests());
    }

    /// Issue 13, item 5: over the file limit, a version is not forwarded: that is a rejection,
    /// counted once (not again at each resync), in the status and in Events, under an identity.
    #[test]
    fn a_version_over_the_file_limit_is_a_rejection_counted_once_and_reported() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let api = Api::start(tmp.path());
        let vol = AtomicWriter::new(tmp.path().join("vol"));
        vol.write(&config(1)).expect("write");
        let hook = Receiver::start();
        let url = hook.url("/-/reload");
        let r = Reconfig::spawn(api.watch(&[
            "--dir",
            s(vol.root()),
            "--webhook",
            &url,
            "--resync",
            "1s",
        ]));
        r.wait_ready(200);
        api.wait_status("applied");

        // One version of 10,001 keys, committed as kubelet commits: a `..data` swap. (Written
        // directly: the AtomicWriter port takes long for that many keys.)
        let keys: Vec<(String, &str)> = (0..10_001).map(|i| (format!("k{i:05}"), "x")).collect();
        swap(vol.root(), "..2026_11_30_00_00_00.1", &keys);

        let status = r.wait_phase("rejected");
        let message = text(&status["message"]);
        assert!(
            message.contains(s(vol.root())) && message.contains("10000"),
            "names the folder and the limit: {status}"
        );
        let hash = text(&status["hash"]);
        assert_eq!(hash.len(), 64, "a real identity, not `-`: {status}");
        assert_eq!(r.validation_failures(), 1);
        assert_eq!(r.readyz().status, 200, "the app keeps its config");
        only_phase(&r, "rejected");
        let events = api.wait_events(1);
        assert_eq!(events, ["ConfigRejected"]);
        let note = api.notes().remove(0);
        assert!(
            note.contains(&format!("config {} rejected", &hash[..12])) && note.contains("10000"),
            "{note}"
        );
        let annotations = api.wait_status("rejected");
        assert!(annotations[MESSAGE].contains("10000"), "{annotations:?}");

        // Resyncs read the same folder again: the same rejection, not a new one.
        r.wait_log("still not forwarded", 2);
        assert_eq!(r.validation_failures(), 1, "{}", r.log());
        assert_eq!(api.reasons(), ["ConfigRejected"]);

        swap(
            vol.root(),
            "..2026_11_30_00_00_01.2",
            &[("app.yaml".to_string(), "port: 2\n")],
        );
        wait_successes(&hook, 1);
        r.wait_phase("applied");
        assert_eq!(
            hook.count(),
            1,
            "the oversized version never reached the app"
        );
        assert_eq!(r.validation_failures(), 1);
    }

    /// Issue 13, item 17: a rejected edit keeps the pod Ready (the app serves its last good config),
    /// while /status, the metrics, the annotations and Events say it was rejected.
    #[test]
    fn a_rejected_edit_keeps_the_pod_ready_while_everything_else_says_rejected() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let api = Api::start(tmp.path());
        let vol = AtomicWriter::new(tmp.path().join("vol"));
        vol.write(&config(1)).expect("write");
        let hook = Receiver::start();
        let url = hook.url("/-/reload");
        let r = Reconfig::spawn(api.watch(&["--dir", s(vol.root()), "--webhook", &url]));
        r.wait_ready(200);
        let status = r.wait_phase("applied");
        let first = info_hash(&r);
        assert_eq!(status["applied"], first.as_str());
        assert_eq!(status["hash"], first.as_str());
        assert_eq!(status["ready"], true);
        assert!(
            status["since"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{status}"
        );
        assert_eq!(status["message"], Value::Null, "{status}");
        only_phase(&r, "applied");
        api.wait_status("applied");

        vol.write(&invalid()).expect("write");
        let status = r.wait_phase("rejected");
        let ready = r.readyz();
        assert_eq!(ready.status, 200, "{}", ready.body);
        assert_eq!(status["ready"], true);
        assert_eq!(status["applied"], first.as_str(), "{status}");
        assert_ne!(status["hash"], first.as_str(), "{status}");
        let message = text(&status["message"]);
        assert!(
            message.contains("app.yaml:1:") && message.contains("keeps config"),
            "{status}"
        );
        assert_eq!(r.validation_failures(), 1);
        assert_eq!(r.metric("reconfig_config_valid", &[]), 0.0);
        only_phase(&r, "rejected");
        assert_eq!(info_hash(&r), first);
        let annotations = api.wait_status("rejected");
        assert_eq!(annotations[HASH], first);
        assert!(annotations[MESSAGE].contains("app.yaml"), "{annotations:?}");
        assert_eq!(api.wait_events(1), ["ConfigRejected"]);
        assert_eq!(hook.count(), 0);

        vol.write(&config(2)).expect("write");
        let calls = wait_successes(&hook, 1);
        r.wait_reloaded(1);
        let status = r.wait_phase("applied");
        assert_eq!(status["applied"], calls[0].hash.as_deref().expect("hash"));
        assert_eq!(r.readyz().status, 200);
        only_phase(&r, "applied");
        assert_eq!(api.wait_events(2), ["ConfigRejected", "ConfigApplied"]);
        let annotations = api.wait_status("applied");
        assert!(!annotations.contains_key(MESSAGE), "{annotations:?}");
    }

    /// A new `..data` folder `name` holding `files`, swapped in as kubelet commits a version (the
    /// visible links are left out: reads go through `..data`).
    fn swap(root: &Path, name: &str, files: &[(String, &str)]) {
        let folder = root.join(name);
        std::fs::create_dir(&folder).expect("mkdir");
        for (key, text) in files {
            std::fs::write(folder.join(key), text).expect("write");
        }
        let link = root.join("..data_tmp");
        std::os::unix::fs::symlink(name, &link).expect("symlink");
        std::fs::rename(&link, root.join("..data")).expect("swap");
    }

    const NS: &str = rc::POD_NAMESPACE;
    const POD: &str = rc::POD_NAME;
    const HASH: &str = "reconfig/config-hash";
    const STATUS: &str = "reconfig/config-status";
    const MESSAGE: &str = "reconfig/config-message";

    /// The loopback API stand-in, with pod shop/web-0 and a kubeconfig for it.
    struct Api {
        api: support::kube_api::FakeApi,
        kubeconfig: std::path::PathBuf,
    }

    impl Api {
        fn start(dir: &Path) -> Api {
            let api = support::kube_api::FakeApi::start();
            api.add_pod(NS, POD, "uid-web-0");
            let kubeconfig = api.kubeconfig(dir, NS);
            Api { api, kubeconfig }
        }

        /// `reconfig watch --events --annotate-pod ARGS` as pod shop/web-0.
        fn watch(&self, args: &[&str]) -> Command {
            rc::api_command(&self.kubeconfig, Some("uid-web-0"), args)
        }

        /// The reasons of the Events so far, in order.
        fn reasons(&self) -> Vec<String> {
            self.api
                .events()
                .iter()
                .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
                .collect()
        }

        fn notes(&self) -> Vec<String> {
            self.api
                .events()
                .iter()
                .map(|e| e["note"].as_str().unwrap_or_default().to_string())
                .collect()
        }

        /// Waits until there are `n` Events; returns their reasons.
        fn wait_events(&self, n: usize) -> Vec<String> {
            wait_for(&format!("{n} event(s)"), TIMEOUT, || {
                let reasons = self.reasons();
                if reasons.len() >= n {
                    Ok(reasons)
                } else {
                    Err(format!("{reasons:?}"))
                }
            })
        }

        /// Waits until the pod's `reconfig/config-status` says `status`; returns the annotations.
        fn wait_status(&self, status: &str) -> BTreeMap<String, String> {
            wait_for(&format!("config-status {status}"), TIMEOUT, || {
                let annotations = self.api.annotations(NS, POD);
                if annotations.get(STATUS).map(String::as_str) == Some(status) {
                    Ok(annotations)
                } else {
                    Err(format!("{annotations:?}"))
                }
            })
        }
    }
}
