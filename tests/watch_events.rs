//! `reconfig watch --events --annotate-pod` under bursts: a config that flaps (a certificate
//! re-issued in a loop, a generator rewriting a ConfigMap) must cost the API server a few
//! writes, not one Event and one pod patch per version, while the pod still ends up showing the
//! newest version and a rejection is still reported at once.
//!
//! Versions are written with kubelet's AtomicWriter; the API is the loopback stand-in
//! (`support::kube_api::FakeApi`), which checks Events and their `series` as
//! events.k8s.io/v1 does and records every request, so writes are counted where they land.

#![cfg(feature = "kube")]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::atomic_writer::{payload, AtomicWriter, Payload};
use support::http::Receiver;
use support::kube_api::FakeApi;
use support::reconfig::{self as rc, field, Reconfig};
use support::wait::{wait_for, TIMEOUT};
use support::watch::carries;

const NS: &str = rc::POD_NAMESPACE;
const POD: &str = rc::POD_NAME;
const HASH: &str = "reconfig/config-hash";
const STATUS: &str = "reconfig/config-status";
const MESSAGE: &str = "reconfig/config-message";
/// The log line of a valid version handed to the webhook.
const VALID: &str = "config is valid; reloading";

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn config(text: &str) -> Payload {
    payload(&[("app.yaml", text)])
}

/// `reconfig watch --events --annotate-pod ARGS` as pod shop/web-0, against `api`.
fn watch(api: &FakeApi, tmp: &Path, args: &[&str]) -> Command {
    rc::api_command(&api.kubeconfig(tmp, NS), Some("uid-web-0"), args)
}

/// A sidecar reporting to the API stand-in (pod shop/web-0), watching a kubelet volume that
/// holds `port: 0`, with a webhook receiver; `refuse` sets up the API's refusals first.
/// Bind every field: the temporary folder must outlive the sidecar.
struct Setup {
    _tmp: tempfile::TempDir,
    api: FakeApi,
    vol: AtomicWriter,
    hook: Receiver,
    r: Reconfig,
}

fn start(refuse: impl FnOnce(&FakeApi), extra: &[&str]) -> Setup {
    let tmp = tempfile::tempdir().expect("tempdir");
    let api = FakeApi::start();
    api.add_pod(NS, POD, "uid-web-0");
    refuse(&api);
    let vol = AtomicWriter::new(tmp.path().join("vol"));
    vol.write(&config("port: 0\n")).expect("write");
    let hook = Receiver::start();
    let url = hook.url("/-/reload");
    let mut args = vec!["--dir", s(vol.root()), "--webhook", &url];
    args.extend_from_slice(extra);
    let r = Reconfig::spawn(watch(&api, tmp.path(), &args));
    Setup {
        _tmp: tmp,
        api,
        vol,
        hook,
        r,
    }
}

/// How many occurrences an Event stands for: its `series.count`, or 1.
fn occurrences(event: &Value) -> u64 {
    event["series"]["count"].as_u64().unwrap_or(1)
}

fn with_reason<'a>(events: &'a [Value], reason: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["reason"] == reason).collect()
}

fn describe(writes: &[support::kube_api::Recorded]) -> String {
    writes
        .iter()
        .map(|q| format!("{} {} {}", q.method, q.path, q.body))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until the pod shows `status` for a hash starting with `short`; returns the annotations.
fn wait_pod_shows(api: &FakeApi, short: &str, status: &str) -> BTreeMap<String, String> {
    wait_for(
        &format!("the pod to show {short} {status}"),
        TIMEOUT,
        || {
            let annotations = api.annotations(NS, POD);
            let hash = annotations
                .get(HASH)
                .map(String::as_str)
                .unwrap_or_default();
            if hash.starts_with(short)
                && annotations.get(STATUS).map(String::as_str) == Some(status)
            {
                Ok(annotations)
            } else {
                Err(format!("{annotations:?}"))
            }
        },
    )
}

/// Seconds since midnight of a log line's leading RFC 3339 UTC timestamp.
fn logged_at(line: &str) -> Option<f64> {
    let time = line.split_whitespace().next()?.split_once('T')?.1;
    let mut parts = time.trim_end_matches('Z').split(':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    Some(hours * 3600.0 + minutes * 60.0 + seconds)
}

/// How many times the versions `r` judged (logged as valid or rejected) paused for `gap` or
/// longer after the first change.
fn pauses(r: &Reconfig, gap: Duration) -> usize {
    let judged: Vec<f64> = r
        .lines()
        .iter()
        .filter(|l| l.contains(VALID) || l.contains("config rejected"))
        .filter_map(|l| logged_at(l))
        .collect();
    judged
        .windows(2)
        .filter(|w| w[1] - w[0] >= gap.as_secs_f64())
        .count()
}

/// Waits until the API holds a ConfigRejected Event; returns it.
fn wait_rejected_event(api: &FakeApi) -> Value {
    wait_for("a ConfigRejected Event", TIMEOUT, || {
        api.events()
            .into_iter()
            .find(|e| e["reason"] == "ConfigRejected")
            .ok_or_else(|| format!("{:?}", api.events()))
    })
}

/// Waits until the newest Event (the last one written) has `reason` and names `short`.
fn wait_newest_event(api: &FakeApi, reason: &str, short: &str) -> Vec<Value> {
    wait_for(
        &format!("the newest Event to be {reason} for {short}"),
        TIMEOUT,
        || {
            let events = api.events();
            match events.last() {
                Some(e)
                    if e["reason"] == reason
                        && e["note"].as_str().unwrap_or_default().contains(short) =>
                {
                    Ok(events)
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
}

#[test]
fn a_flapping_config_costs_a_few_api_writes_and_the_pod_ends_on_the_newest() {
    let Setup {
        _tmp,
        api,
        vol,
        hook,
        r,
    } = start(|_| {}, &[]);
    let started = r.wait_log("config is valid", 1);
    let started = field(&started, "hash").expect("hash");
    wait_pod_shows(&api, &started, "applied");
    let before = api.writes().len();

    // 200 valid versions in 10 s (one every 50 ms), and an invalid one in the middle; the last
    // version has a second file, so its log line (files=2) tells its hash.
    const VERSIONS: u32 = 201;
    const INVALID: u32 = 101;
    let step = Duration::from_millis(50);
    let (invalid_at, (event_seen, annotation_seen)) = std::thread::scope(|scope| {
        let spy = scope.spawn(|| {
            // When the rejection shows in the API, as Event and as pod status.
            let mut event = None;
            let mut annotation = None;
            let start = Instant::now();
            while (event.is_none() || annotation.is_none()) && start.elapsed() < TIMEOUT {
                if event.is_none() && api.events().iter().any(|e| e["reason"] == "ConfigRejected") {
                    event = Some(Instant::now());
                }
                if annotation.is_none()
                    && api.annotations(NS, POD).get(STATUS).map(String::as_str) == Some("rejected")
                {
                    annotation = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (event, annotation)
        });
        let start = Instant::now();
        let mut invalid_at = None;
        for i in 1..=VERSIONS {
            let slot = start + step * (i - 1);
            std::thread::sleep(slot.saturating_duration_since(Instant::now()));
            let version = match i {
                INVALID => config("port: [1\n"),
                VERSIONS => payload(&[
                    ("app.yaml", &format!("port: {i}\n")),
                    ("last.yaml", "last: true\n"),
                ]),
                _ => config(&format!("port: {i}\n")),
            };
            let written = vol.write(&version).expect("write");
            if i == INVALID {
                invalid_at = written.swapped_at();
            }
        }
        (
            invalid_at.expect("the invalid version was written"),
            spy.join().expect("spy"),
        )
    });

    // The invalid version is reported within a second, as an Event and on the pod.
    let event_seen = event_seen.expect("a ConfigRejected Event");
    let annotation_seen = annotation_seen.expect("config-status rejected on the pod");
    let event_after = event_seen.saturating_duration_since(invalid_at);
    let annotation_after = annotation_seen.saturating_duration_since(invalid_at);
    assert!(
        event_after < Duration::from_secs(1),
        "the rejection's Event came {event_after:?} after the swap"
    );
    assert!(
        annotation_after < Duration::from_secs(1),
        "the pod said rejected {annotation_after:?} after the swap"
    );

    // At the end the pod, the newest Event and the app agree on the last version.
    let burst_end = Instant::now();
    let last_line = r.wait_log("files=2", 1);
    assert!(last_line.contains(VALID), "{last_line}");
    let last = field(&last_line, "hash").expect("hash");
    let annotations = wait_pod_shows(&api, &last, "applied");
    assert!(!annotations.contains_key(MESSAGE), "{annotations:?}");
    let events = wait_newest_event(&api, "ConfigApplied", &last);
    let settled = burst_end.elapsed();
    let reloads = hook.successes();
    assert!(
        carries(reloads.last().expect("reloads"), &last),
        "the app got the last version"
    );

    // A few writes for the whole burst, every one accepted. A loaded machine can stall the
    // writer or the sidecar; a pause of half a second or more in the versions the sidecar
    // judged may end a burst and start another: up to 4 more writes (the ConfigApplied Events
    // and the annotations, each once as the first burst settles and once as the next starts).
    let writes = api.writes().split_off(before);
    let stalls = pauses(&r, Duration::from_millis(500));
    eprintln!(
        "{} API writes for {} valid versions and 1 invalid ({stalls} stalls); the rejection \
         showed after {event_after:?} (Event) and {annotation_after:?} (pod); the pod and the \
         newest Event showed the last version {settled:?} after the burst:\n{}",
        writes.len(),
        VERSIONS - 1,
        describe(&writes)
    );
    assert!(
        writes.len() <= 10 + 4 * stalls,
        "{} API writes for {} versions with {stalls} stalls",
        writes.len(),
        VERSIONS
    );
    for request in ["event", "annotate_pod"] {
        assert_eq!(
            r.metric(
                "reconfig_kube_requests_total",
                &[("request", request), ("result", "failure")]
            ),
            0.0,
            "{request}"
        );
    }

    // The Events still count every version: each applied version once, the rejected one once.
    let applied = with_reason(&events, "ConfigApplied");
    let counted: u64 = applied.iter().map(|e| occurrences(e)).sum();
    assert_eq!(
        counted,
        reloads.len() as u64,
        "every version the app got is counted: {applied:?}"
    );
    let rejected = with_reason(&events, "ConfigRejected");
    let invalid = r.hashes("config rejected");
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(occurrences(rejected[0]), 1);
    assert!(
        rejected[0]["note"]
            .as_str()
            .expect("note")
            .contains(&invalid[0]),
        "{}",
        rejected[0]
    );
    assert!(
        reloads.iter().all(|q| !carries(q, &invalid[0])),
        "an invalid config is never forwarded"
    );
    for event in &events {
        if let Some(count) = event["series"]["count"].as_u64() {
            assert!(count >= 2, "{event}");
            assert!(
                event["series"]["lastObservedTime"].as_str().expect("time")
                    >= event["eventTime"].as_str().expect("time"),
                "{event}"
            );
        }
    }
}

#[test]
fn a_config_broken_the_same_way_again_and_again_is_one_event_whose_series_counts() {
    let Setup {
        _tmp,
        api,
        vol,
        hook,
        r,
    } = start(|_| {}, &[]);
    let started = r.wait_log("config is valid", 1);
    wait_pod_shows(&api, &field(&started, "hash").expect("hash"), "applied");

    // A generator that keeps writing the same broken config between good ones. The first
    // rejection is written at once; the next ones can only add to its series.
    const ROUNDS: usize = 10;
    for round in 1..=ROUNDS {
        vol.write(&config(&format!("port: {round}\n")))
            .expect("write");
        r.wait_reloaded(round);
        vol.write(&config("port: [1\n")).expect("write");
        r.wait_log("config rejected", round);
        if round == 1 {
            wait_rejected_event(&api);
        }
    }
    let broken = r.hashes("config rejected");
    assert!(broken.iter().all(|h| *h == broken[0]), "{broken:?}");

    // One ConfigRejected Event, its series counting every rejection; the pod says rejected.
    let rejected = wait_for(
        "one ConfigRejected Event counting every rejection",
        TIMEOUT,
        || {
            let events = api.events();
            let rejected: Vec<Value> = events
                .iter()
                .filter(|e| e["reason"] == "ConfigRejected")
                .cloned()
                .collect();
            match rejected.as_slice() {
                [one] if occurrences(one) == ROUNDS as u64 => Ok(one.clone()),
                _ => Err(format!("{rejected:?}")),
            }
        },
    );
    assert!(
        rejected["note"]
            .as_str()
            .expect("note")
            .contains(&broken[0]),
        "{rejected}"
    );
    assert!(
        rejected["series"]["lastObservedTime"]
            .as_str()
            .expect("lastObservedTime")
            > rejected["eventTime"].as_str().expect("eventTime"),
        "{rejected}"
    );
    let annotations = wait_pod_shows(&api, &r.hashes(VALID)[ROUNDS - 1], "rejected");
    assert!(annotations[MESSAGE].contains(&broken[0]), "{annotations:?}");

    // The series grew by merge patches of `series` alone, each accepted by the API's checks.
    let name = rejected["metadata"]["name"].as_str().expect("name");
    let patches: Vec<_> = api
        .writes()
        .into_iter()
        .filter(|q| q.method == "PATCH" && q.path.ends_with(&format!("/events/{name}")))
        .collect();
    assert!(!patches.is_empty(), "{}", describe(&api.writes()));
    for patch in &patches {
        assert_eq!(
            patch.headers["content-type"],
            "application/merge-patch+json"
        );
        let keys: Vec<&String> = patch.body.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["series"], "{}", patch.body);
    }
    assert_eq!(
        r.metric(
            "reconfig_kube_requests_total",
            &[("request", "event"), ("result", "failure")]
        ),
        0.0
    );
    // Each good version is counted once by the ConfigApplied Events, once they are written.
    assert_eq!(hook.successes().len(), ROUNDS);
    wait_for("every applied version counted", TIMEOUT, || {
        let applied: u64 = with_reason(&api.events(), "ConfigApplied")
            .iter()
            .map(|e| occurrences(e))
            .sum();
        if applied == ROUNDS as u64 {
            Ok(())
        } else {
            Err(format!("{applied} counted"))
        }
    });
}

#[test]
fn without_the_patch_permission_a_repeat_becomes_a_new_event() {
    // A Role from before series: `create` on events, no `patch`.
    let Setup {
        _tmp,
        api,
        vol,
        hook,
        r,
    } = start(|api| api.refuse("PATCH", "events", 403), &[]);
    r.wait_ready(200);

    for round in 1..=2 {
        vol.write(&config(&format!("port: {round}\n")))
            .expect("write");
        r.wait_reloaded(round);
        vol.write(&config("port: [1\n")).expect("write");
        r.wait_log("config rejected", round);
        if round == 1 {
            wait_rejected_event(&api);
        }
    }
    let hint = r.wait_log("needs `patch events.events.k8s.io`", 1);
    assert!(
        hint.contains("403 Forbidden") && hint.contains("reconfig.watch.rbac"),
        "{hint}"
    );
    let rejected = wait_for("a second ConfigRejected Event", TIMEOUT, || {
        let events = api.events();
        let rejected: Vec<Value> = with_reason(&events, "ConfigRejected")
            .into_iter()
            .cloned()
            .collect();
        if rejected.len() == 2 {
            Ok(rejected)
        } else {
            Err(format!("{rejected:?}"))
        }
    });
    assert_eq!(rejected[0]["note"], rejected[1]["note"]);
    assert!(rejected.iter().all(|e| occurrences(e) == 1), "{rejected:?}");
    let patches = api
        .writes()
        .iter()
        .filter(|q| q.method == "PATCH" && q.path.contains("/events/"))
        .count();
    assert_eq!(patches, 1, "a refusal is not retried");
    assert_eq!(hook.successes().len(), 2, "reloads go on");
}

#[test]
fn a_failure_in_the_middle_of_a_burst_is_reported_at_once() {
    let Setup {
        _tmp,
        api,
        vol,
        hook,
        r,
    } = start(|_| {}, &["--retries", "0"]);
    r.wait_ready(200);

    // 40 versions in 2 s; the app answers 500 to versions 20 to 29.
    const VERSIONS: u32 = 40;
    let step = Duration::from_millis(50);
    let (failing_at, (event_seen, annotation_seen)) = std::thread::scope(|scope| {
        let spy = scope.spawn(|| {
            let mut event = None;
            let mut annotation = None;
            let start = Instant::now();
            while (event.is_none() || annotation.is_none()) && start.elapsed() < TIMEOUT {
                if event.is_none()
                    && api
                        .events()
                        .iter()
                        .any(|e| e["reason"] == "ConfigNotApplied")
                {
                    event = Some(Instant::now());
                }
                if annotation.is_none()
                    && api.annotations(NS, POD).get(STATUS).map(String::as_str) == Some("failed")
                {
                    annotation = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (event, annotation)
        });
        let start = Instant::now();
        let mut failing_at = None;
        for i in 1..=VERSIONS {
            std::thread::sleep((start + step * (i - 1)).saturating_duration_since(Instant::now()));
            match i {
                20 => hook.set_status(500),
                30 => hook.set_status(200),
                _ => {}
            }
            let version = if i == VERSIONS {
                payload(&[
                    ("app.yaml", &format!("port: {i}\n")),
                    ("last.yaml", "last: true\n"),
                ])
            } else {
                config(&format!("port: {i}\n"))
            };
            let written = vol.write(&version).expect("write");
            if i == 20 {
                failing_at = written.swapped_at();
            }
        }
        (failing_at.expect("written"), spy.join().expect("spy"))
    });
    for (what, seen) in [("Event", event_seen), ("pod status", annotation_seen)] {
        let after = seen
            .unwrap_or_else(|| panic!("no ConfigNotApplied {what}"))
            .saturating_duration_since(failing_at);
        assert!(
            after < Duration::from_secs(1),
            "the failure's {what} came {after:?} after the swap"
        );
    }

    // At the end: the last version applied and shown; every failed version counted once.
    let last_line = r.wait_log("files=2", 1);
    let last = field(&last_line, "hash").expect("hash");
    wait_pod_shows(&api, &last, "applied");
    let events = wait_newest_event(&api, "ConfigApplied", &last);
    let failed = hook.requests().len() - hook.successes().len();
    assert!(failed >= 1, "the app answered 500 at least once");
    let counted: u64 = with_reason(&events, "ConfigNotApplied")
        .iter()
        .map(|e| occurrences(e))
        .sum();
    assert_eq!(counted, failed as u64, "{events:?}");
    let applied: u64 = with_reason(&events, "ConfigApplied")
        .iter()
        .map(|e| occurrences(e))
        .sum();
    assert_eq!(applied, hook.successes().len() as u64, "{events:?}");
}
