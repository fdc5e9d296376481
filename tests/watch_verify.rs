//! `reconfig watch --verify-*`: a version is applied only once the app is seen to run it, and
//! one the app does not take is rolled back to the newest verified version (`--publish`).
//!
//! The app is a stand-in that behaves like a real one: it loads `app.yaml` from the folder it
//! reads when its reload endpoint is called (and at its first request), and its `/healthz`
//! answers from the config it loaded: 200 with `healthy: true`, 500 otherwise; `hang: true`
//! makes `/healthz` never answer, `die: true` makes the app exit right after loading it, and
//! it refuses to reload to a config with `refuse: true` (500, keeping the one it has). Its
//! `/metrics` has Prometheus's reload gauges (`prometheus_config_last_reload_successful` and
//! the whole second of the last successful load); a config with `late-refuse: true` is
//! answered at once and refused 400 ms later, as Prometheus answers a SIGHUP.
//! Versions are written with kubelet's AtomicWriter; the Kubernetes API is the loopback
//! stand-in (`support::kube_api`).

mod support;

use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::atomic_writer::{payload, AtomicWriter, Payload};
use support::http::read_request;
use support::reconfig::{self as rc, Reconfig};
use support::wait::{wait_for, TIMEOUT};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn config(text: &str) -> Payload {
    payload(&[("app.yaml", text)])
}

const V1: &str = "healthy: true\nv: 1\n";

/// The stand-in app; see the module documentation. Stops serving when dropped.
struct App {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    /// The `app.yaml` it reads its config from.
    file: PathBuf,
    /// Every config it loaded, in order (the first at its first request).
    loaded: Mutex<Vec<String>>,
    /// Reload requests answered.
    reloads: Mutex<usize>,
    /// Exited (`die: true`): it no longer listens.
    dead: AtomicBool,
    /// Whether the last reload succeeded, and the Unix second of the last one that did.
    reload_ok: AtomicBool,
    reload_second: Mutex<u64>,
    stop: AtomicBool,
}

impl Shared {
    fn current(&self) -> String {
        let mut loaded = self.loaded.lock().expect("lock");
        if loaded.is_empty() {
            loaded.push(std::fs::read_to_string(&self.file).unwrap_or_default());
            *self.reload_second.lock().expect("lock") = unix_second();
        }
        loaded.last().cloned().unwrap_or_default()
    }

    fn load(&self) -> String {
        self.current();
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        self.loaded.lock().expect("lock").push(text.clone());
        *self.reloads.lock().expect("lock") += 1;
        self.reload_ok.store(true, Ordering::SeqCst);
        *self.reload_second.lock().expect("lock") = unix_second();
        text
    }
}

fn unix_second() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

impl App {
    fn start(file: PathBuf) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            file,
            loaded: Mutex::new(Vec::new()),
            reloads: Mutex::new(0),
            dead: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            reload_ok: AtomicBool::new(true),
            reload_second: Mutex::new(0),
        });
        let state = shared.clone();
        let thread = std::thread::spawn(move || {
            // Dropping the listener when it dies: connections are refused from then on.
            while !state.stop.load(Ordering::SeqCst) && !state.dead.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let state = state.clone();
                        std::thread::spawn(move || {
                            let _ = answer(stream, &state);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        App {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every config loaded, the first one included.
    fn loaded(&self) -> Vec<String> {
        self.shared.loaded.lock().expect("lock").clone()
    }

    fn reloads(&self) -> usize {
        *self.shared.reloads.lock().expect("lock")
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(stream: TcpStream, state: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request) = read_request(&mut reader, 1 << 16)? else {
        return Ok(());
    };
    let metrics;
    let mut refuse_later = false;
    let (status, body) = match (request.method.as_str(), request.target.as_str()) {
        ("POST", "/-/reload")
            if std::fs::read_to_string(&state.file)
                .is_ok_and(|t| t.contains("late-refuse: true")) =>
        {
            // Answered now, refused later: the gauges say the previous reload meanwhile.
            refuse_later = true;
            (200, "")
        }
        ("POST", "/-/reload")
            if std::fs::read_to_string(&state.file).is_ok_and(|t| t.contains("refuse: true")) =>
        {
            (500, "refused")
        }
        ("GET", "/metrics") => {
            state.current();
            metrics = format!(
                "prometheus_config_last_reload_successful {}\nprometheus_config_last_reload_success_timestamp_seconds {}\n",
                u8::from(state.reload_ok.load(Ordering::SeqCst)),
                state.reload_second.lock().expect("lock")
            );
            (200, metrics.as_str())
        }
        ("POST", "/-/reload") => {
            let text = state.load();
            if text.contains("die: true") {
                state.dead.store(true, Ordering::SeqCst);
            }
            (200, "reloaded")
        }
        ("GET", "/healthz") => {
            let config = state.current();
            if config.contains("hang: true") {
                while !state.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return Ok(());
            }
            if config.contains("healthy: true") {
                (200, "ok")
            } else {
                (500, "unhealthy")
            }
        }
        _ => (404, "no such path"),
    };
    if state.dead.load(Ordering::SeqCst) && status != 200 {
        return Ok(());
    }
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} S\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    if refuse_later {
        std::thread::sleep(Duration::from_millis(400));
        state.reload_ok.store(false, Ordering::SeqCst);
    }
    Ok(())
}

/// A volume holding V1, a published folder, the app reading it, and the verify flags (with
/// `timeout`); `extra` adds flags.
struct Setup {
    tmp: tempfile::TempDir,
    vol: AtomicWriter,
    out: PathBuf,
    app: App,
}

impl Setup {
    fn new(publish: bool) -> Setup {
        let tmp = tempfile::tempdir().expect("tempdir");
        let vol = AtomicWriter::new(tmp.path().join("vol"));
        vol.write(&config(V1)).expect("write");
        let out = tmp.path().join("out");
        let read_from = if publish { &out } else { vol.root() };
        let app = App::start(read_from.join("app.yaml"));
        Setup { tmp, vol, out, app }
    }

    fn args(&self, timeout: &str, publish: bool, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--dir",
            s(self.vol.root()),
            "--webhook",
            &self.app.url("/-/reload"),
            "--verify-url",
            &self.app.url("/healthz"),
            "--verify-timeout",
            timeout,
            "--verify-interval",
            "50ms",
            "--retries",
            "0",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        if publish {
            args.extend(["--publish".to_string(), s(&self.out).to_string()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    fn start(&self, timeout: &str, publish: bool, extra: &[&str]) -> Reconfig {
        let args = self.args(timeout, publish, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Reconfig::start(&args)
    }

    fn published(&self) -> String {
        std::fs::read_to_string(self.out.join("app.yaml")).expect("published app.yaml")
    }
}

/// Waits until `/status` says `phase` for a version whose message contains `says` (any
/// message when empty); checks on every look that `/readyz` answers 200, if `stays_ready`.
fn wait_status(r: &Reconfig, phase: &str, says: &str, stays_ready: bool) -> serde_json::Value {
    wait_for(&format!("/status {phase} saying {says:?}"), TIMEOUT, || {
        if stays_ready {
            let ready = r.readyz();
            assert_eq!(
                ready.status,
                200,
                "the pod stays ready: {}\n{}",
                ready.body,
                r.log()
            );
        }
        let status = r.status();
        let message = status["message"].as_str().unwrap_or_default();
        if status["phase"] == phase && message.contains(says) {
            Ok(status)
        } else {
            Err(status.to_string())
        }
    })
}

#[cfg(feature = "kube")]
mod api {
    use super::*;
    use serde_json::Value;
    use support::kube_api::FakeApi;

    const NS: &str = rc::POD_NAMESPACE;
    const POD: &str = rc::POD_NAME;

    fn short(hash: &Value) -> String {
        hash.as_str().expect("a hash")[..12].to_string()
    }

    /// Every `reconfig/config-status` the sidecar wrote on the pod, in order.
    fn statuses_written(api: &FakeApi) -> Vec<String> {
        api.writes()
            .iter()
            .filter(|w| w.method == "PATCH" && w.path.contains("/pods/"))
            .filter_map(|w| {
                w.body["metadata"]["annotations"]["reconfig/config-status"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    }

    fn wait_event(api: &FakeApi, reason: &str, names: &str) -> Value {
        wait_for(&format!("a {reason} Event naming {names}"), TIMEOUT, || {
            api.events()
                .into_iter()
                .find(|e| {
                    e["reason"] == reason && e["note"].as_str().unwrap_or_default().contains(names)
                })
                .ok_or_else(|| format!("{:#?}", api.events()))
        })
    }

    /// Issue 14: a version the app does not take (its health check answers 500 forever) is
    /// rolled back: the newest verified version is published again, the app reloads it, and it
    /// is verified; the pod stays Ready throughout; Events, annotations, metrics and `/status`
    /// say what happened; the same content is not tried again.
    #[test]
    fn a_version_the_app_does_not_take_is_rolled_back_reported_and_not_tried_again() {
        let t = Setup::new(true);
        let api = FakeApi::start();
        api.add_pod(NS, POD, "uid-web-0");
        let args = t.args("2s", true, &[]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = Reconfig::spawn(rc::api_command(
            &api.kubeconfig(t.tmp.path(), NS),
            Some("uid-web-0"),
            &args,
        ));
        let first = wait_status(&r, "applied", "", false);
        let good = first["applied"].clone();
        assert_eq!(t.published(), V1);

        let bad_text = "healthy: false\nv: 2\n";
        t.vol.write(&config(bad_text)).expect("write");
        let status = wait_status(&r, "rolled-back", "which runs now", true);
        let bad = status["hash"].clone();
        assert_eq!(status["applied"], good, "{status}");
        assert_eq!(status["ready"], true);
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "config {} failed verification: not verified within 2s",
                short(&bad)
            )) && message.contains("GET http://")
                && message.contains("answered 500")
                && message.ends_with(&format!(
                    "rolled back to config {}, which runs now",
                    short(&good)
                )),
            "{message}"
        );
        assert_eq!(
            t.app.loaded(),
            [V1, bad_text, V1],
            "the app reloaded the bad one, then the good one"
        );
        assert_eq!(
            t.published(),
            V1,
            "the last verified version is back in place"
        );
        assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 1.0);
        assert_eq!(r.reloads("webhook", "success"), 2);

        let event = wait_event(&api, "ConfigRolledBack", &short(&bad));
        assert_eq!(event["type"], "Warning");
        let note = event["note"].as_str().unwrap_or_default();
        assert!(
            note.contains("failed verification")
                && note.contains("answered 500")
                && note.ends_with(&format!(
                    "rolled back to config {}, which runs now",
                    short(&good)
                )),
            "{note}"
        );
        wait_for("the pod to show rolled-back", TIMEOUT, || {
            let annotations = api.annotations(NS, POD);
            if annotations
                .get("reconfig/config-status")
                .map(String::as_str)
                == Some("rolled-back")
                && annotations.get("reconfig/config-hash").map(String::as_str) == good.as_str()
            {
                Ok(())
            } else {
                Err(format!("{annotations:?}"))
            }
        });
        let written = statuses_written(&api);
        let verifying = written.iter().rposition(|s| s == "verifying");
        let rolled_back = written.iter().rposition(|s| s == "rolled-back");
        assert!(
            matches!((verifying, rolled_back), (Some(v), Some(b)) if v < b),
            "verifying, then rolled-back: {written:?}"
        );

        // The same content again, after an invalid edit: not tried again.
        t.vol.write(&config("healthy: [\n")).expect("write");
        wait_status(&r, "rejected", "", true);
        t.vol.write(&config(bad_text)).expect("write");
        let status = wait_status(&r, "failed", "not tried again", true);
        assert_eq!(status["hash"], bad);
        assert_eq!(t.app.reloads(), 2, "not sent to the app again");
        assert_eq!(t.published(), V1);

        // A good version is applied, verified, and reported.
        let v3 = "healthy: true\nv: 3\n";
        t.vol.write(&config(v3)).expect("write");
        let status = wait_status(&r, "applied", "", true);
        assert_eq!(status["applied"], status["hash"]);
        assert_eq!(t.published(), v3);
        assert_eq!(t.app.loaded().last().map(String::as_str), Some(v3));
        let applied = wait_event(&api, "ConfigApplied", &short(&status["hash"]));
        assert!(
            applied["note"]
                .as_str()
                .unwrap_or_default()
                .contains("verified after"),
            "{applied}"
        );
        assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 1.0);
    }
}

/// Without `--publish` there is nothing to put back: the failure is reported, saying that
/// `--publish` enables rollback, and readiness says the pod cannot serve until a version is
/// verified. `--no-rollback` verifies and only reports too.
#[test]
fn without_publish_or_with_no_rollback_a_failure_is_reported_and_readiness_fails() {
    let t = Setup::new(false);
    let r = t.start("1s", false, &[]);
    wait_status(&r, "applied", "", false);
    t.vol
        .write(&config("healthy: false\nv: 2\n"))
        .expect("write");
    let status = wait_status(&r, "failed", "--publish enables rollback", false);
    assert_eq!(status["ready"], false);
    let ready = r.readyz();
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("failed verification"), "{}", ready.body);
    assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 0.0);
    t.vol
        .write(&config("healthy: true\nv: 3\n"))
        .expect("write");
    wait_status(&r, "applied", "", false);
    r.wait_ready(200);
    drop(r);

    let t = Setup::new(true);
    let r = t.start("1s", true, &["--no-rollback"]);
    wait_status(&r, "applied", "", false);
    let bad = "healthy: false\nv: 2\n";
    t.vol.write(&config(bad)).expect("write");
    wait_status(&r, "failed", "not rolled back (--no-rollback)", false);
    r.wait_ready(503);
    assert_eq!(t.published(), bad, "left in place");
    assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 0.0);
}

/// Faults: an endpoint that hangs costs the verify timeout and is rolled back; an app that
/// dies during verification cannot take the version put back either: the sidecar stops,
/// reports it, and readiness fails; it never loops.
#[test]
fn a_hanging_endpoint_is_rolled_back_and_a_dead_app_stops_the_sidecar_without_looping() {
    let t = Setup::new(true);
    let r = t.start("1500ms", true, &[]);
    let first = wait_status(&r, "applied", "", false);

    let written = Instant::now();
    t.vol
        .write(&config("healthy: true\nhang: true\n"))
        .expect("write");
    let status = wait_status(&r, "rolled-back", "which runs now", true);
    let took = written.elapsed();
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("no answer within the 1.5s of --verify-timeout")),
        "{status}"
    );
    assert!(took >= Duration::from_millis(1_500), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(status["applied"], first["applied"]);
    assert_eq!(t.published(), V1);

    t.vol
        .write(&config("healthy: true\ndie: true\n"))
        .expect("write");
    let status = wait_status(&r, "failed", "which failed too", false);
    assert_eq!(status["ready"], false);
    let ready = r.readyz();
    assert_eq!(ready.status, 503);
    assert!(
        ready.body.contains("stopped until the next change"),
        "{}",
        ready.body
    );
    assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 2.0);
    assert_eq!(t.published(), V1, "the verified version stays in place");
    // Never a loop: nothing is tried after the stop (an absence, so it is watched a while).
    let tried = (
        r.reloads("webhook", "failure"),
        r.reloads("webhook", "success"),
    );
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(
        (
            r.reloads("webhook", "failure"),
            r.reloads("webhook", "success")
        ),
        tried
    );
    assert_eq!(tried.0, 1, "one try of the version put back (--retries 0)");
    assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 2.0);
}

/// A sidecar that stops while a version is being verified, and is started again, verifies
/// the version in place from what is on disk, and rolls back to the verified version kept
/// there.
#[test]
fn a_sidecar_restarted_before_the_rollback_rolls_back_from_disk() {
    let t = Setup::new(true);
    let mut r = t.start("60s", true, &[]);
    let first = wait_status(&r, "applied", "", false);
    let hang = "healthy: true\nhang: true\n";
    t.vol.write(&config(hang)).expect("write");
    wait_status(&r, "verifying", "verifying that the app took it", true);
    rc::send_signal(r.pid(), rustix::process::Signal::KILL);
    r.wait_exit(TIMEOUT);
    assert_eq!(t.published(), hang, "the unverified version is in place");
    drop(r);

    let r = t.start("1s", true, &[]);
    let status = wait_status(&r, "rolled-back", "which runs now", false);
    assert_eq!(status["applied"], first["applied"]);
    assert_eq!(t.published(), V1);
    assert_eq!(t.app.loaded().last().map(String::as_str), Some(V1));
    assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 1.0);
    r.wait_ready(200);
}

/// Two versions that arrive while one is being verified: the newest wins at once (the
/// verification under way is dropped, nothing is rolled back).
#[test]
fn versions_arriving_during_a_verification_supersede_it_and_the_newest_wins() {
    let t = Setup::new(true);
    let r = t.start("60s", true, &[]);
    wait_status(&r, "applied", "", false);
    t.vol
        .write(&config("healthy: true\nhang: true\n"))
        .expect("write");
    wait_status(&r, "verifying", "", true);
    let started = Instant::now();
    t.vol
        .write(&config("healthy: true\nv: 3\n"))
        .expect("write");
    let v4 = "healthy: true\nv: 4\n";
    t.vol.write(&config(v4)).expect("write");
    wait_for("v4 to be applied", TIMEOUT, || {
        let status = r.status();
        if status["phase"] == "applied" && t.published() == v4 {
            Ok(())
        } else {
            Err(status.to_string())
        }
    });
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "not held up by the 60 s verification"
    );
    assert_eq!(t.app.loaded().last().map(String::as_str), Some(v4));
    assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 0.0);
    assert!(
        r.log().contains("dropping the verification of"),
        "{}",
        r.log()
    );
}

#[test]
fn verify_flags_that_cannot_work_are_refused_at_start() {
    for (args, says) in [
        (
            vec!["--verify-body", "ok"],
            "--verify-body and --verify-status go with --verify-url",
        ),
        (vec!["--no-rollback"], "--no-rollback goes with"),
        (vec!["--verify-url", "https://x/"], "https is not supported"),
        (
            vec!["--verify-metric", "http://x/metrics", "up=1"],
            "no comparison",
        ),
        (
            vec![
                "--verify-url",
                "http://x/",
                "--verify-delay",
                "5s",
                "--verify-timeout",
                "5s",
            ],
            "must be shorter than --verify-timeout",
        ),
        (
            vec!["--verify-url", "http://x/", "--verify-body", "("],
            "--verify-body",
        ),
    ] {
        let mut cmd: Command = support::cli::command();
        cmd.args(["watch", "--dir", "/nonexistent"]).args(&args);
        let out = cmd.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// An app that refuses the reload (its reload endpoint answers 500) did not take the version:
/// with verification, the version is rolled back as for a failed check, and not tried again.
#[test]
fn a_version_whose_reload_the_app_refuses_is_rolled_back() {
    let t = Setup::new(true);
    let r = t.start("2s", true, &["--retry-backoff", "50ms"]);
    let first = wait_status(&r, "applied", "", false);
    t.vol
        .write(&config("healthy: true\nrefuse: true\n"))
        .expect("write");
    let status = wait_status(&r, "rolled-back", "which runs now", true);
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("its actions gave up (webhook failed 1 times")
            && message.contains("answered 500"),
        "{message}"
    );
    assert_eq!(status["applied"], first["applied"]);
    assert_eq!(t.published(), V1);
    assert_eq!(
        t.app.loaded(),
        [V1, V1],
        "it kept v1, then reloaded v1 put back"
    );
    assert_eq!(t.app.reloads(), 1, "the refused reload loaded nothing");
    assert_eq!(r.reloads("webhook", "failure"), 1);
    assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 1.0);
}

/// `{action_time}` is in whole seconds, as Prometheus records its reloads: a version acted on
/// in the second in which the one before it was verified must not pass on that one's reload
/// timestamp before the app has even read it (a reload answered at once, done later, as
/// SIGHUP is). It failed before: the new version was "verified" 4 ms after its action.
#[test]
fn a_version_acted_on_in_the_same_second_does_not_pass_on_the_last_reload() {
    let t = Setup::new(true);
    // Start just after a second begins: v1 is verified and v2 acted on within that second.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    std::thread::sleep(
        Duration::from_millis(1020) - Duration::from_nanos(now.subsec_nanos().into()),
    );
    let metrics = t.app.url("/metrics");
    let r = t.start(
        "3s",
        true,
        &[
            "--verify-metric",
            &metrics,
            "prometheus_config_last_reload_successful==1",
        ],
    );
    let first = wait_status(&r, "applied", "", false);
    t.vol
        .write(&config("healthy: true\nlate-refuse: true\n"))
        .expect("write");
    let status = wait_status(&r, "rolled-back", "which runs now", true);
    assert_eq!(status["applied"], first["applied"]);
    assert_eq!(t.published(), V1);
}

/// An HTTP app that reads `app.yaml` once at start (its `/healthz`: 200 with `healthy: true`,
/// else 500), and on SIGTERM goes on answering for half a second before it exits, as an app
/// draining its connections does.
const RESTARTED_APP: &str = r#"
import http.server, signal, socketserver, sys, threading, time
config = open(sys.argv[1]).read()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if "healthy: true" in config else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = True
    daemon_threads = True
server = Server(("127.0.0.1", int(sys.argv[2])), Handler)
def drain(*_):
    threading.Thread(target=lambda: (time.sleep(0.5), server.shutdown()), daemon=True).start()
signal.signal(signal.SIGTERM, drain)
server.serve_forever()
"#;

/// `--restart`: verification waits until the restarted app has exited, so that the old one,
/// still answering while it drains, cannot pass for the new one; then the new one is checked.
/// The test plays kubelet: it starts the app again whenever it exits.
#[test]
fn with_restart_verification_waits_for_the_restarted_app() {
    let Some(python) = support::bins::require("python3", "python3") else {
        return;
    };
    let real = Command::new(&python)
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .expect("python3");
    let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
    let t = Setup::new(true);
    let name = format!("app{}r", std::process::id());
    let launcher = t.tmp.path().join(&name);
    std::os::unix::fs::symlink(&real, &launcher).expect("symlink");
    let script = t.tmp.path().join("app.py");
    std::fs::write(&script, RESTARTED_APP).expect("write");
    let port = support::http::reserve_port();
    let url = format!("http://{port}/healthz");
    let r = Reconfig::start(&[
        "--dir",
        s(t.vol.root()),
        "--publish",
        s(&t.out),
        "--restart",
        "--process",
        &name,
        "--verify-url",
        &url,
        "--verify-timeout",
        "3s",
        "--verify-interval",
        "50ms",
    ]);
    wait_for("the first publication", TIMEOUT, || {
        t.out
            .join("app.yaml")
            .exists()
            .then_some(())
            .ok_or_else(|| r.log())
    });

    // kubelet: the container is started again whenever it exits.
    let stop = Arc::new(AtomicBool::new(false));
    let starts = Arc::new(Mutex::new(0usize));
    let kubelet = {
        let (stop, starts) = (stop.clone(), starts.clone());
        let (launcher, script, config) = (launcher.clone(), script.clone(), t.out.join("app.yaml"));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let mut child = Command::new(&launcher)
                    .arg(&script)
                    .arg(&config)
                    .arg(port.port().to_string())
                    .spawn()
                    .expect("start the app");
                *starts.lock().expect("lock") += 1;
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        })
    };
    let first = wait_status(&r, "applied", "", false);

    t.vol
        .write(&config("healthy: false\nv: 2\n"))
        .expect("write");
    let status = wait_status(&r, "rolled-back", "which runs now", true);
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("answered 500"),
        "the new app was checked: {message}"
    );
    assert_eq!(status["applied"], first["applied"]);
    assert_eq!(t.published(), V1);
    assert_eq!(
        *starts.lock().expect("lock"),
        3,
        "started, restarted on v2, then on v1"
    );
    assert_eq!(r.reloads("restart", "success"), 2);
    stop.store(true, Ordering::SeqCst);
    let _ = kubelet.join();
}

/// `--verify-cmd`: a command (no shell) on `{dir}`, the folder the app reads (`--publish`);
/// exit 0 passes. Here it asks the app's published config itself.
#[test]
fn a_verify_command_judges_and_its_failure_rolls_back() {
    let t = Setup::new(true);
    let args = [
        "--dir",
        s(t.vol.root()),
        "--publish",
        s(&t.out),
        "--webhook",
        &t.app.url("/-/reload"),
        "--verify-cmd",
        "grep -q 'healthy: true' {dir}/app.yaml",
        "--verify-timeout",
        "1s",
        "--verify-interval",
        "50ms",
    ];
    let r = Reconfig::start(&args);
    let first = wait_status(&r, "applied", "", false);
    t.vol
        .write(&config("healthy: false\nv: 2\n"))
        .expect("write");
    let status = wait_status(&r, "rolled-back", "which runs now", true);
    let message = status["message"].as_str().unwrap_or_default();
    let cmd = format!(
        "`grep -q healthy: true {}/app.yaml` exit status: 1",
        s(&t.out)
    );
    assert!(message.contains(&cmd), "{message}");
    assert_eq!(status["applied"], first["applied"]);
    assert_eq!(t.published(), V1);
}
