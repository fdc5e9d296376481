//! `reconfig watch` under faults, driven by kubelet-exact volume updates and a loopback webhook:
//! app restarts, a webhook that is down, unreadable or vanishing files, a missing folder,
//! oversized files, no-op rewrites, volumes that land together, `--publish`, and shutdown.
//!
//! Every assertion is on what the programs report (the webhook receiver's requests, the
//! signalled app's own record, reconfig's log, /readyz and /metrics), with exact counts. Waiting
//! is polling with generous timeouts; "nothing happened" is proven with a barrier: a later
//! real change whose reload arrives while the count stays exact.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::app::App;
use support::atomic_writer::{payload, AtomicWriter, LinkOrder, Outcome};
use support::reconfig::{self as rc, Reconfig};
use support::wait::{until, wait_for, TIMEOUT};
use support::watch::{carries, logged_versions, wait_successes, WatchTest, VALID};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `port: N` as a YAML config.
fn config(n: u32) -> support::atomic_writer::Payload {
    payload(&[("app.yaml", &format!("port: {n}\n"))])
}

/// Seconds into the day of a log line's timestamp (`2026-11-22T04:14:04.461435Z  WARN …`).
fn log_seconds(line: &str) -> f64 {
    let time = line
        .split_whitespace()
        .next()
        .and_then(|t| t.split_once('T'))
        .map(|(_, t)| t.trim_end_matches('Z'))
        .unwrap_or_else(|| panic!("no timestamp: {line}"));
    time.split(':')
        .map(|p| p.parse::<f64>().expect("number"))
        .fold(0.0, |acc, p| acc * 60.0 + p)
}

#[test]
fn each_kubelet_update_reloads_once_and_noop_rewrites_never() {
    let t = WatchTest::new()
        .kubelet_volume(config(1))
        .webhook()
        .args(["-v"])
        .start();
    let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
    r.wait_ready(200);
    r.wait_log("config is valid", 1);

    for n in 2..=4 {
        assert!(vol.write(&config(n)).expect("write").written());
        wait_successes(hook, n as usize - 1);
    }

    // kubelet itself writes nothing for unchanged content ...
    assert_eq!(vol.write(&config(4)).expect("write"), Outcome::Unchanged);
    // ... and identical content re-written through a full ..data swap reloads nothing either.
    for _ in 0..3 {
        let before = r.count("content unchanged");
        assert!(vol.force_write(&config(4)).expect("write").written());
        r.wait_log("content unchanged", before + 1);
    }
    assert_eq!(hook.count(), 3, "no-op rewrites must not reload");

    // The barrier: one more real change, exactly one more reload.
    vol.write(&config(5)).expect("write");
    let calls = wait_successes(hook, 4);
    assert_eq!(hook.count(), 4);
    let logged = logged_versions(r, 4);
    assert_eq!(
        logged.len(),
        4,
        "one validated version per update:\n{}",
        r.log()
    );
    for (call, short) in calls.iter().zip(&logged) {
        assert_eq!(
            (call.method.as_str(), call.path.as_str()),
            ("POST", "/-/reload")
        );
        assert!(carries(call, short), "{call:?} vs {short}");
    }

    r.wait_reloaded(4);
    let m = r.metrics();
    assert_eq!(
        m.value(
            "reconfig_reloads_total",
            &[("action", "webhook"), ("result", "success")]
        ),
        4.0
    );
    assert_eq!(m.value("reconfig_validation_failures_total", &[]), 0.0);
    assert_eq!(m.value("reconfig_config_valid", &[]), 1.0);
    assert!(m.value("reconfig_last_reload_success_timestamp_seconds", &[]) > 1.7e9);
    let newest = calls[3].hash.clone().expect("hash");
    assert_eq!(m.value("reconfig_config_info", &[("hash", &newest)]), 1.0);
    assert_eq!(
        m.label_sets("reconfig_config_info").len(),
        1,
        "one info series"
    );
    assert_eq!(r.readyz().status, 200);
}

#[test]
fn older_kubelets_that_link_before_the_swap_work_the_same() {
    let t = WatchTest::new()
        .link_order(LinkOrder::BeforeSwap)
        .kubelet_volume(config(1))
        .webhook()
        .start();
    let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
    r.wait_ready(200);
    // A new key's link appears before ..data has it: reconfig must read through ..data only.
    vol.write(&payload(&[
        ("app.yaml", "port: 2\n"),
        ("extra.yaml", "x: 1\n"),
    ]))
    .expect("write");
    wait_successes(hook, 1);
    vol.write(&payload(&[("app.yaml", "port: 3\n")]))
        .expect("write");
    wait_successes(hook, 2);
    assert_eq!(hook.count(), 2);
    r.wait_reloaded(2);
    let files: Vec<String> = r
        .lines()
        .iter()
        .filter(|l| l.contains(VALID))
        .filter_map(|l| rc::field(l, "files"))
        .collect();
    assert_eq!(files, vec!["2", "1"], "{}", r.log());
}

/// Rewrites the pid file the way apps do: a new file renamed into place.
fn write_pid_file(path: &Path, pid: u32) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, format!("{pid}\n")).expect("write pid");
    fs::rename(&tmp, path).expect("rename pid");
}

#[test]
fn an_app_restarted_with_a_new_pid_gets_the_next_signal_and_none_is_lost() {
    let setup = WatchTest::new().kubelet_volume(config(1));
    let tmp = setup.tmp().to_path_buf();
    let pid_file = tmp.join("app.pid");
    let mut first = App::start(&tmp, "first");
    write_pid_file(&pid_file, first.pid());
    let t = setup
        .args(["--signal", "SIGHUP", "--pid-file", s(&pid_file)])
        .args(["--retry-backoff", "100ms", "--retries", "60"])
        .start();
    let (vol, r) = (t.vol(), &t.r);
    r.wait_ready(200);

    vol.write(&config(2)).expect("write");
    until("the first app to get SIGHUP", || first.hups() == 1);

    // The app dies; its pid file still names it. An update lands while it is down.
    first.stop();
    vol.write(&config(3)).expect("write");
    // The failure names the stale pid file (the metric is counted before the line is logged).
    let line = r.wait_log("reload failed", 1);
    assert!(line.contains("stale pid file"), "{line}");
    assert!(r.reloads("signal", "failure") >= 1);

    // It comes back with a new PID and rewrites the pid file: the pending retry reaches it.
    let second = App::start(&tmp, "second");
    write_pid_file(&pid_file, second.pid());
    until("the restarted app to get the pending SIGHUP", || {
        second.hups() == 1
    });
    vol.write(&config(4)).expect("write");
    until("the restarted app to get the next SIGHUP", || {
        second.hups() == 2
    });

    assert_eq!(first.hups(), 1);
    r.wait_reloaded(3);
    assert_eq!(r.reloads("signal", "success"), 3);
    assert_eq!(r.readyz().status, 200);
    drop(second);
}

#[test]
fn a_webhook_that_is_down_gets_the_update_once_it_is_back() {
    let mut t = WatchTest::new()
        .kubelet_volume(config(1))
        .webhook_down()
        .args(["--retry-backoff", "100ms", "--retries", "60"])
        .start();
    t.r.wait_ready(200);

    t.vol().write(&config(2)).expect("write");
    t.r.wait_log("reload failed", 2);
    assert!(t.r.reloads("webhook", "failure") >= 2);
    assert_eq!(t.r.reloads("webhook", "success"), 0);

    t.webhook_comes_back();
    let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
    let calls = wait_successes(hook, 1);
    let logged = logged_versions(r, 1);
    assert_eq!(logged.len(), 1);
    assert!(carries(&calls[0], &logged[0]));
    r.wait_reloaded(1);
    assert_eq!(r.reloads("webhook", "success"), 1);

    // Retries backed off exponentially: 100 ms, then 200 ms, ... between failed attempts.
    let attempts: Vec<f64> = r
        .lines()
        .iter()
        .filter(|l| l.contains("reload failed"))
        .map(|l| log_seconds(l))
        .collect();
    assert!(attempts.len() >= 2, "{}", r.log());
    for (i, pair) in attempts.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let backoff = 0.1 * f64::from(1u32 << i);
        assert!(
            gap >= backoff * 0.95,
            "attempt {} came {gap:.3}s after the previous one, backoff {backoff}s",
            i + 2
        );
    }

    // No duplicate: the next update is one more call, carrying the next version.
    vol.write(&config(3)).expect("write");
    let calls = wait_successes(hook, 2);
    assert_eq!(hook.count(), 2);
    assert!(carries(&calls[1], &logged_versions(r, 2)[1]));
}

/// Issue 4: a valid config whose reload keeps failing has not been applied. Since issue 13
/// (item 17) that is the config status (`/status`: applying), not readiness: the app still
/// serves the config it runs, so /readyz stays 200.
#[test]
fn a_valid_config_that_has_not_reached_the_app_is_applying_not_applied() {
    let mut t = WatchTest::new()
        .kubelet_volume(config(1))
        .webhook_down()
        .args(["--retry-backoff", "100ms", "--retries", "60"])
        .start();
    t.r.wait_ready(200);
    t.vol().write(&config(2)).expect("write");
    t.r.wait_metric(
        "reconfig_reloads_total",
        &[("action", "webhook"), ("result", "failure")],
        1.0,
    );
    let during = t.r.status();
    let ready_during = t.r.readyz();
    t.webhook_comes_back();
    t.wait_successes(1);
    t.r.wait_ready(200);
    assert_eq!(
        during["phase"], "applying",
        "/status said {during} while version 2 was still failing to reach the app"
    );
    assert_ne!(during["applied"], during["wanted"], "{during}");
    assert_eq!(ready_during.status, 200, "version 1 still runs");
    t.r.wait_phase("applied");
}

#[test]
fn a_newer_config_supersedes_a_pending_retry_and_the_newest_wins() {
    // A long backoff: a retry that blocked newer changes would show as a 3 s delay.
    let t = WatchTest::new()
        .kubelet_volume(config(1))
        .webhook()
        .args(["--retry-backoff", "3s", "--retries", "5"])
        .start();
    let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
    hook.set_status(503);
    r.wait_ready(200);

    vol.write(&config(2)).expect("write");
    until("the first attempt for version 2", || hook.count() == 1);
    hook.set_status(200);
    let swapped = vol
        .write(&config(3))
        .expect("write")
        .swapped_at()
        .expect("written");
    let calls = wait_successes(hook, 1);
    let waited = calls[0].at.duration_since(swapped);
    assert!(
        waited < Duration::from_millis(2500),
        "version 3 waited {waited:?}: the retry of version 2 blocked it"
    );
    r.wait_log("a newer config arrived", 1);

    let logged = logged_versions(r, 1);
    assert_eq!(logged.len(), 2, "{}", r.log());
    let all = hook.requests();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(carries(&all[0], &logged[0]) && all[0].status == 503);
    assert!(carries(&all[1], &logged[1]) && all[1].status == 200);
    r.wait_reloaded(1);
    assert_eq!(r.reloads("webhook", "superseded"), 1);
    assert_eq!(r.reloads("webhook", "success"), 1);
    let newest = all[1].hash.clone().expect("hash");
    assert_eq!(
        r.metric("reconfig_config_info", &[("hash", &newest)]),
        1.0,
        "the app runs the newest"
    );
    r.wait_ready(200);
    let dropped = r.wait_log("a newer config arrived", 1);
    assert!(
        dropped.contains(&format!("dropping the retries for {}", logged[0])),
        "the retries of version 2 were dropped: {dropped}"
    );
}

fn schema(dir: &Path) -> PathBuf {
    let path = dir.join("schema.json");
    fs::write(
        &path,
        r#"{"type":"object","required":["port"],"properties":{"port":{"type":"integer"}}}"#,
    )
    .expect("write schema");
    path
}

#[test]
fn an_unreadable_file_is_reported_and_the_fixed_config_is_applied() {
    // As root it runs as `nobody`, so that a chmod 000 file is really unreadable to it.
    let t = WatchTest::new()
        .plain_folder(&[("app.yaml", "port: 1\n")])
        .webhook()
        .args(["--debounce", "50ms"])
        .unprivileged()
        .start();
    let (file, hook, r) = (t.dir().join("app.yaml"), t.hook(), &t.r);
    r.wait_ready(200);

    fs::set_permissions(&file, fs::Permissions::from_mode(0o000)).expect("chmod");
    let line = r.wait_log("cannot read the config", 1);
    assert!(
        line.contains("app.yaml") && line.contains("ermission denied"),
        "a clear line naming the file and the reason: {line}"
    );
    assert!(
        r.metric("reconfig_watcher_errors_total", &[]) >= 1.0,
        "counted as a watcher error"
    );
    assert_eq!(r.get("/healthz").status, 200, "still alive");

    // Fixed, with new content: applied once.
    fs::write(&file, "port: 2\n").expect("write");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
    let calls = wait_successes(hook, 1);
    let logged = logged_versions(r, 1);
    assert_eq!(logged.len(), 1, "{}", r.log());
    assert!(carries(&calls[0], &logged[0]));
    r.wait_ready(200);
    assert_eq!(hook.count(), 1);
}

/// A read error that goes away with the content unchanged is no new version: the app already runs
/// it, so nothing must be reloaded.
#[test]
fn an_unreadable_blip_with_unchanged_content_reloads_nothing() {
    let t = WatchTest::new()
        .plain_folder(&[("app.yaml", "port: 1\n")])
        .webhook()
        .args(["-v", "--debounce", "50ms"])
        .unprivileged()
        .start();
    let (file, hook, r) = (t.dir().join("app.yaml"), t.hook(), &t.r);
    r.wait_ready(200);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o000)).expect("chmod");
    r.wait_log("cannot read the config", 1);
    let evaluations = |r: &Reconfig| r.count("content unchanged") + r.count("config is valid");
    let before = evaluations(r);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
    until("the readable folder to be evaluated again", || {
        evaluations(r) > before
    });
    // Barrier: a real change afterwards must be the only reload.
    let before = r.count("config is valid");
    fs::write(&file, "port: 2\n").expect("write");
    wait_successes(hook, 1);
    r.wait_log("config is valid", before + 1);
    let calls = hook.requests();
    let logged = r.hashes(VALID);
    assert_eq!(
        calls.len(),
        1,
        "the unchanged config was reloaded again after the read error cleared:\n{}",
        r.log()
    );
    assert!(carries(&calls[0], logged.last().expect("one")));
}

#[test]
fn a_dangling_symlink_is_reported_and_recovers() {
    let t = WatchTest::new()
        .plain_folder(&[("app.yaml", "port: 1\n")])
        .webhook()
        .args(["--debounce", "50ms"])
        .start();
    // The target is inside the folder (a link out of it is refused: tests/watch_files.rs), under
    // a hidden name, so that it is read only through the link.
    let (target, file, hook, r) = (
        t.dir().join(".nowhere.yaml"),
        t.dir().join("app.yaml"),
        t.hook(),
        &t.r,
    );
    r.wait_ready(200);

    fs::remove_file(&file).expect("rm");
    std::os::unix::fs::symlink(&target, &file).expect("symlink");
    let line = r.wait_log("cannot read the config", 1);
    assert!(line.contains("app.yaml"), "{line}");
    assert_eq!(r.get("/healthz").status, 200);

    fs::write(&target, "port: 2\n").expect("write");
    // The link target is a hidden file, whose events do not count: so touch the link.
    fs::remove_file(&file).expect("rm");
    std::os::unix::fs::symlink(&target, &file).expect("symlink");
    wait_successes(hook, 1);
    assert_eq!(hook.count(), 1);
    r.wait_ready(200);
}

/// A file that `--schema` names and that disappears is not a valid config of zero files.
#[test]
fn deleting_the_file_a_schema_names_is_rejected_not_forwarded() {
    let setup = WatchTest::new().plain_folder(&[("app.yaml", "port: 1\n")]);
    let schema = schema(setup.tmp());
    let t = setup
        .webhook()
        .args(["--debounce", "50ms"])
        .args(["--schema", &format!("app.yaml={}", schema.display())])
        .start();
    let (file, hook, r) = (t.dir().join("app.yaml"), t.hook(), &t.r);
    r.wait_ready(200);

    fs::remove_file(&file).expect("rm");
    wait_for("a log line about the deleted file", TIMEOUT, || {
        let log = r.log();
        if hook.count() > 0 {
            return Ok(());
        }
        match log
            .lines()
            .find(|l| l.contains("app.yaml") && !l.contains("INFO"))
        {
            Some(_) => Ok(()),
            None => Err(log),
        }
    });
    assert_eq!(
        hook.count(),
        0,
        "the deletion was forwarded to the app as a valid, empty config:\n{}",
        r.log()
    );
    assert_eq!(r.validation_failures(), 1);
    assert_eq!(r.status()["phase"], "rejected");
    assert_eq!(r.readyz().status, 200, "the app keeps its config");

    fs::write(&file, "port: 2\n").expect("write");
    wait_successes(hook, 1);
    r.wait_ready(200);
    r.wait_phase("applied");
}

#[test]
fn deleting_a_file_the_validator_needs_is_rejected_and_recovers() {
    let t = WatchTest::new()
        .plain_folder(&[("app.yaml", "port: 1\n")])
        .webhook()
        .args(["--debounce", "50ms"])
        .args(["--validate-cmd", "test -f {dir}/app.yaml"])
        .start();
    let (file, hook, r) = (t.dir().join("app.yaml"), t.hook(), &t.r);
    r.wait_ready(200);

    fs::remove_file(&file).expect("rm");
    let line = r.wait_log("config rejected", 1);
    assert!(line.contains("app.yaml"), "{line}");
    assert_eq!(r.status()["phase"], "rejected");
    assert_eq!(r.readyz().status, 200, "the app keeps its config");
    assert_eq!(r.get("/healthz").status, 200);

    fs::write(&file, "port: 2\n").expect("write");
    let calls = wait_successes(hook, 1);
    assert_eq!(hook.count(), 1, "the empty folder never reached the app");
    assert!(carries(&calls[0], &logged_versions(r, 1)[0]));
    r.wait_ready(200);
}

/// Each rejection is one log record: a container log is collected line by line, so validator
/// output with newlines must not spill into lines without timestamp or level.
#[test]
fn a_rejection_is_logged_as_one_line() {
    let t = WatchTest::new()
        .kubelet_volume(config(1))
        .args([
            "--validate-cmd",
            "sh -c 'echo first problem; echo second problem >&2; exit 1'",
        ])
        .start();
    let r = &t.r;
    r.wait_log("config rejected", 1);
    r.wait_ready(503);
    let stray: Vec<String> = r
        .lines()
        .into_iter()
        .filter(|l| !l.starts_with("20"))
        .collect();
    assert!(
        stray.is_empty(),
        "log lines without timestamp and level: {stray:?}\n{}",
        r.log()
    );
    assert!(r.log().contains("second problem"));
}

#[test]
fn a_folder_missing_at_start_is_reported_then_applied_when_it_appears() {
    let t = WatchTest::new().missing_dir("vol").webhook().start();
    let (tmp, vol_path, hook, r) = (t.tmp(), t.dir(), t.hook(), &t.r);
    let line = r.wait_log("does not exist", 1);
    assert!(line.contains("vol"), "{line}");
    let body = r.wait_ready(503);
    assert!(body.contains("does not exist"), "/readyz says why: {body}");
    assert_eq!(r.get("/healthz").status, 200);

    // The volume appears whole (as a mount does): written elsewhere, renamed into place.
    let staging = AtomicWriter::new(tmp.join("staging"));
    staging.write(&config(1)).expect("write");
    fs::rename(staging.root(), vol_path).expect("rename");
    let calls = wait_successes(hook, 1);
    r.wait_ready(200);
    assert!(carries(&calls[0], &logged_versions(r, 1)[0]));

    // From then on it is a kubelet volume like any other: each update reloads once, promptly.
    let vol = AtomicWriter::new(vol_path);
    for n in 2..=3 {
        vol.write(&config(n)).expect("write");
        wait_for(
            &format!("update {n} of the late volume to reload"),
            Duration::from_secs(10),
            || {
                if hook.successes().len() >= n as usize {
                    Ok(())
                } else {
                    Err(r.log())
                }
            },
        );
    }
    assert_eq!(hook.count(), 3);
}

/// A volume that shows up late is still a kubelet volume: its `..data` swaps are the commit
/// points (5 ms window), not edits inside hidden folders waiting out the plain-folder debounce.
#[test]
fn a_late_kubelet_volume_reacts_to_its_data_swaps() {
    let t = WatchTest::new()
        .missing_dir("vol")
        .webhook()
        .args(["-v"])
        .start();
    let (tmp, vol_path, r) = (t.tmp(), t.dir(), &t.r);
    r.wait_log("does not exist", 1);
    let staging = AtomicWriter::new(tmp.join("staging"));
    staging.write(&config(1)).expect("write");
    fs::rename(staging.root(), vol_path).expect("rename");
    t.wait_successes(1);
    let vol = AtomicWriter::new(vol_path);
    vol.write(&config(2)).expect("write");
    t.wait_successes(2);
    let watching = r.wait_log("watching", 1);
    assert!(
        watching.contains("layout=Kubelet"),
        "the late volume is watched as a plain folder: {watching}"
    );
    // The ..data swap was recognised: its debug line is written before the webhook call, but
    // the test's log reader can still be behind it, so wait for it rather than count.
    r.wait_log("change=Swap", 1);
}

#[test]
fn an_oversized_file_is_rejected_and_never_forwarded() {
    let t = WatchTest::new()
        .kubelet_volume(config(1))
        .webhook()
        .args(["--max-file-size", "1KiB"])
        .start();
    let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
    r.wait_ready(200);

    let big = format!("port: 2\npad: \"{}\"\n", "x".repeat(2000));
    vol.write(&payload(&[("app.yaml", &big)])).expect("write");
    let line = r.wait_log("config rejected", 1);
    assert!(
        line.contains("app.yaml") && line.contains("1024"),
        "names the file and the limit: {line}"
    );
    assert_eq!(r.validation_failures(), 1);
    assert_eq!(r.metric("reconfig_config_valid", &[]), 0.0);
    let status = r.wait_phase("rejected");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("app.yaml")),
        "{status}"
    );
    assert_eq!(r.readyz().status, 200, "the app keeps its config");

    vol.write(&config(3)).expect("write");
    let calls = wait_successes(hook, 1);
    assert_eq!(
        hook.count(),
        1,
        "the oversized version never reached the app"
    );
    assert!(carries(&calls[0], &logged_versions(r, 1)[0]));
    r.wait_ready(200);
}

#[test]
fn two_volumes_that_land_together_reload_once() {
    let t = WatchTest::new()
        .kubelet_volume_at("a", payload(&[("a.yaml", "a: 1\n")]))
        .kubelet_volume_at("b", payload(&[("b.yaml", "b: 1\n")]))
        .webhook()
        .start();
    let (a, b, hook, r) = (t.volume(0), t.volume(1), t.hook(), &t.r);
    r.wait_ready(200);

    // Both staged, then both committed back to back, as two volumes of one update.
    let pa = a
        .prepare(&payload(&[("a.yaml", "a: 2\n")]), false)
        .expect("prepare")
        .expect("changed");
    let pb = b
        .prepare(&payload(&[("b.yaml", "b: 2\n")]), false)
        .expect("prepare")
        .expect("changed");
    pa.commit().expect("commit");
    pb.commit().expect("commit");
    wait_successes(hook, 1);

    // Barrier: one later change of one volume is exactly one more reload.
    a.write(&payload(&[("a.yaml", "a: 3\n")])).expect("write");
    wait_successes(hook, 2);
    assert_eq!(hook.count(), 2, "{:?}", hook.requests());
    assert_eq!(logged_versions(r, 2).len(), 2, "{}", r.log());
}

#[test]
fn publish_keeps_the_last_good_config() {
    let setup = WatchTest::new().kubelet_volume(config(1));
    let published = setup.tmp().join("published");
    let t = setup
        .args(["--publish", s(&published)])
        .args(["--validate-cmd", "grep -q port: {dir}/app.yaml"])
        .webhook()
        .start();
    let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
    r.wait_ready(200);
    let read = || fs::read_to_string(published.join("app.yaml")).unwrap_or_default();
    assert_eq!(read(), "port: 1\n");
    assert!(fs::symlink_metadata(published.join("..data"))
        .expect("..data")
        .file_type()
        .is_symlink());

    // Rejected by the parser, then by the validator: the published copy stays.
    vol.write(&payload(&[("app.yaml", "port: [1\n")]))
        .expect("write");
    r.wait_metric("reconfig_validation_failures_total", &[], 1.0);
    assert_eq!(read(), "port: 1\n");
    assert_eq!(r.status()["phase"], "rejected");
    assert_eq!(r.readyz().status, 200, "the app keeps its published config");
    vol.write(&payload(&[("app.yaml", "listen: 2\n")]))
        .expect("write");
    r.wait_metric("reconfig_validation_failures_total", &[], 2.0);
    assert_eq!(read(), "port: 1\n");
    assert_eq!(hook.count(), 0);
    let leftovers: Vec<String> = fs::read_dir(&published)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("..") && n != "..data")
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "rejected stages are discarded: {leftovers:?}"
    );

    vol.write(&config(3)).expect("write");
    wait_successes(hook, 1);
    assert_eq!(read(), "port: 3\n", "published before the app is told");
    r.wait_ready(200);
}

#[test]
fn publish_writes_nothing_until_a_valid_config_exists() {
    let setup = WatchTest::new().kubelet_volume(payload(&[("app.yaml", "port: [1\n")]));
    let published = setup.tmp().join("published");
    let t = setup.args(["--publish", s(&published)]).start();
    let (vol, r) = (t.vol(), &t.r);
    r.wait_log("config rejected", 1);
    let body = r.wait_ready(503);
    assert!(body.contains("invalid"), "{body}");
    assert!(
        !published.join("..data").exists() && !published.join("app.yaml").exists(),
        "nothing published"
    );
    vol.write(&config(2)).expect("write");
    r.wait_ready(200);
    assert_eq!(
        fs::read_to_string(published.join("app.yaml")).expect("published"),
        "port: 2\n"
    );
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    for signal in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let mut t = WatchTest::new().kubelet_volume(config(1)).start();
        let r = &mut t.r;
        r.wait_ready(200);
        rc::send_signal(r.pid(), signal);
        let status = r.wait_exit(TIMEOUT);
        assert_eq!(status.code(), Some(0), "{signal:?}: {status}\n{}", r.log());
        assert!(r.log().contains("shutting down"));
    }
}

/// `--dir config` relative to the working directory, as people run it outside Kubernetes.
#[test]
fn a_relative_dir_sees_updates() {
    for layout in ["kubelet", "plain"] {
        let setup = WatchTest::new().relative_dirs().webhook();
        let t = if layout == "kubelet" {
            setup.kubelet_volume(config(1)).start()
        } else {
            setup.plain_folder(&[("app.yaml", "port: 1\n")]).start()
        };
        let (hook, r) = (t.hook(), &t.r);
        r.wait_ready(200);
        let started = Instant::now();
        if layout == "kubelet" {
            t.vol().write(&config(2)).expect("write");
        } else {
            fs::write(t.dir().join("app.yaml"), "port: 2\n").expect("write");
        }
        wait_for(
            &format!("a {layout} update under a relative --dir to reload"),
            Duration::from_secs(10),
            || {
                if hook.count() == 1 {
                    Ok(())
                } else {
                    Err(r.log())
                }
            },
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
