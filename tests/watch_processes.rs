//! `reconfig watch` and the processes it runs or signals: validators and `--exec` commands that
//! print a lot, outlive their timeout or are running at shutdown; signal targets that must be
//! refused (PID 1, reconfig itself) or are ambiguous (two trees of one name); and `{dir:q}`, the
//! shell-quoted folder for validators that go through `sh -c`.
//!
//! Every assertion is on what real programs observe: the webhook receiver's requests, the
//! processes still alive in `/proc`, the signals a stand-in app recorded, reconfig's exit code,
//! log, /readyz and /metrics. Waiting is polling with generous timeouts.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::app::App;
use support::atomic_writer::{payload, Payload};
use support::cli;
use support::reconfig as rc;
use support::wait::{until, wait_for, TIMEOUT};
use support::watch::{wait_successes, WatchTest};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `port: N` as a YAML config.
fn config(n: u32) -> Payload {
    payload(&[("app.yaml", &format!("port: {n}\n"))])
}

/// A config the `hang_validator` of the test hangs on.
fn hanging_config() -> Payload {
    payload(&[("app.yaml", "port: 9\n# hang\n")])
}

/// The PID a shell wrote into `file`, once it is there.
fn pid_in(file: &Path) -> i32 {
    wait_for(&format!("a PID in {}", file.display()), TIMEOUT, || {
        fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .ok_or_else(|| "not yet".to_string())
    })
}

/// Whether `pid` is a live (not zombie) process whose command line is `sleep 1000`: the
/// grandchild the validators below leave behind when only their shell is killed.
fn sleeper_alive(pid: i32) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = fs::read(proc.join("cmdline")).unwrap_or_default();
    let state = fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(str::to_string)
        })
        .unwrap_or_default();
    cmdline == b"sleep\x001000\x00" && !matches!(state.as_str(), "Z" | "X" | "")
}

/// Kills a `sleep 1000` left behind (the old behaviour), so a failing test leaks nothing.
struct Sleeper(i32);

impl Drop for Sleeper {
    fn drop(&mut self) {
        if sleeper_alive(self.0) {
            if let Some(pid) = rustix::process::Pid::from_raw(self.0) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// Waits (briefly) for the `sleep 1000` with this PID to be gone.
fn assert_sleeper_gone(pid: i32, what: &str, r: &rc::Reconfig) {
    wait_for(
        &format!("{what}: its `sleep 1000` child (PID {pid}) to be killed"),
        Duration::from_secs(5),
        || {
            if sleeper_alive(pid) {
                Err(format!("still running; log:\n{}", r.log()))
            } else {
                Ok(())
            }
        },
    );
}

/// A shell command printing `bytes` bytes of filler on `stream` (1 or 2), then `last` on a
/// line of its own, then exiting with `code`.
fn chatty(bytes: usize, stream: u8, last: &str, code: u8) -> String {
    format!("sh -c 'yes 0123456789abcdef | head -c {bytes} >&{stream}; echo {last} >&{stream}; exit {code}'")
}

// Item 6: output larger than a pipe holds.

#[test]
fn a_validator_printing_more_than_a_pipe_holds_is_judged_by_its_exit_status() {
    for stream in [1, 2] {
        let t = WatchTest::new()
            .kubelet_volume(config(1))
            .webhook()
            .args(["--validate-timeout", "10s"])
            .args(["--validate-cmd", &chatty(200_000, stream, "ALL-GOOD", 0)])
            .start();
        let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
        r.wait_ready(200);
        vol.write(&config(2)).expect("write");
        wait_successes(hook, 1);
        assert_eq!(r.validation_failures(), 0, "stream {stream}:\n{}", r.log());
        let passed = r.wait_log("validator passed", 2);
        assert!(passed.contains("ALL-GOOD"), "the end of the output is kept");
        assert!(
            passed.len() < 80 * 1024,
            "the output kept is bounded: {} bytes",
            passed.len()
        );
    }
}

#[test]
fn a_failing_validator_that_prints_a_lot_is_rejected_with_the_end_of_its_output() {
    let t = WatchTest::new()
        .kubelet_volume(config(1))
        .webhook()
        .args(["--validate-timeout", "10s"])
        .args([
            "--validate-cmd",
            "sh -c 'grep -q \"port: 1\" {dir}/app.yaml || { yes filler | head -c 300000 >&2; echo the real error at line 7 >&2; exit 1; }'",
        ])
        .start();
    let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
    r.wait_ready(200);
    vol.write(&config(2)).expect("write");
    let rejected = r.wait_log("config rejected", 1);
    assert!(rejected.contains("exit status: 1"), "{rejected:.300}");
    assert!(!rejected.contains("timed out"), "{rejected:.300}");
    assert!(
        rejected.contains("the real error at line 7"),
        "the tail is kept, not the head"
    );
    assert!(rejected.len() < 80 * 1024, "{} bytes", rejected.len());
    assert_eq!(r.validation_failures(), 1);
    assert_eq!(hook.count(), 0);
}

#[test]
fn an_exec_printing_more_than_a_pipe_holds_succeeds_and_runs_once() {
    let setup = WatchTest::new().kubelet_volume(config(1));
    let runs = setup.tmp().join("runs");
    let exec = format!(
        "sh -c 'echo run >> {}; yes 0123456789abcdef | head -c 200000; yes oops | head -c 200000 >&2'",
        s(&runs)
    );
    let t = setup
        .args(["--exec", &exec, "--exec-timeout", "10s"])
        .args(["--retries", "2", "--retry-backoff", "50ms"])
        .start();
    let (vol, r) = (t.vol(), &t.r);
    r.wait_ready(200);
    vol.write(&config(2)).expect("write");
    r.wait_reloaded(1);
    r.wait_ready(200);
    assert_eq!(r.reloads("exec", "success"), 1, "{}", r.log());
    assert_eq!(r.reloads("exec", "failure"), 0);
    assert_eq!(
        fs::read_to_string(&runs).expect("runs").lines().count(),
        1,
        "run once, never retried"
    );
}

// Item 7: a timeout kills the whole process group.

#[test]
fn a_validator_that_times_out_leaves_no_process_behind() {
    let setup = WatchTest::new().kubelet_volume(config(1));
    let pid_file = setup.tmp().join("sleeper.pid");
    let validator = format!("sh -c 'sleep 1000 & echo $! > {}; wait'", s(&pid_file));
    let t = setup
        .args(["--validate-cmd", &validator, "--validate-timeout", "500ms"])
        .start();
    let r = &t.r;
    let sleeper = Sleeper(pid_in(&pid_file));
    let rejected = r.wait_log("config rejected", 1);
    assert!(rejected.contains("timed out"), "{rejected}");
    assert_eq!(r.readyz().status, 503);
    assert_sleeper_gone(sleeper.0, "the timed-out validator", r);
}

#[test]
fn an_exec_that_times_out_leaves_no_process_behind() {
    let setup = WatchTest::new().kubelet_volume(config(1));
    let pid_file = setup.tmp().join("sleeper.pid");
    let exec = format!("sh -c 'sleep 1000 & echo $! > {}; wait'", s(&pid_file));
    let t = setup
        .args(["--exec", &exec, "--exec-timeout", "500ms", "--retries", "0"])
        .start();
    let (vol, r) = (t.vol(), &t.r);
    r.wait_ready(200);
    vol.write(&config(2)).expect("write");
    let sleeper = Sleeper(pid_in(&pid_file));
    let failed = r.wait_log("reload failed", 1);
    assert!(failed.contains("timed out"), "{failed}");
    assert_sleeper_gone(sleeper.0, "the timed-out --exec", r);
    assert_eq!(r.reloads("exec", "failure"), 1);
}

// Item 8: SIGTERM stops a running validator or action at once.

/// Sends `signal` and asserts reconfig exits 0 within a second.
fn assert_prompt_shutdown(r: &mut rc::Reconfig, signal: rustix::process::Signal, what: &str) {
    let sent = Instant::now();
    rc::send_signal(r.pid(), signal);
    let status = r.wait_exit(Duration::from_secs(10));
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(0), "{what}: {status}\n{}", r.log());
    assert!(
        took < Duration::from_secs(1),
        "{what}: exited {took:?} after {signal:?}\n{}",
        r.log()
    );
}

#[test]
fn sigterm_stops_a_running_validator_at_once() {
    use rustix::process::Signal;
    // At start (the first evaluation) and later (a change), by SIGTERM and by SIGINT.
    for (at_start, signal) in [
        (true, Signal::TERM),
        (false, Signal::TERM),
        (false, Signal::INT),
    ] {
        let start = if at_start {
            hanging_config()
        } else {
            config(1)
        };
        let setup = WatchTest::new().kubelet_volume(start);
        let pid_file = setup.tmp().join("sleeper.pid");
        let validator = format!(
            "sh -c 'grep -q hang {{dir}}/app.yaml || exit 0; sleep 1000 & echo $! > {}; wait'",
            s(&pid_file)
        );
        let mut t = setup.args(["--validate-cmd", &validator]).start();
        if !at_start {
            t.r.wait_ready(200);
            t.vol().write(&hanging_config()).expect("write");
        }
        let sleeper = Sleeper(pid_in(&pid_file));
        let what = format!("validator (at start: {at_start})");
        assert_prompt_shutdown(&mut t.r, signal, &what);
        assert_sleeper_gone(sleeper.0, &what, &t.r);
    }
}

#[test]
fn sigterm_stops_a_running_exec_at_once() {
    let setup = WatchTest::new().kubelet_volume(config(1));
    let pid_file = setup.tmp().join("sleeper.pid");
    let exec = format!("sh -c 'sleep 1000 & echo $! > {}; wait'", s(&pid_file));
    let mut t = setup.args(["--exec", &exec]).start();
    t.r.wait_ready(200);
    t.vol().write(&config(2)).expect("write");
    let sleeper = Sleeper(pid_in(&pid_file));
    assert_prompt_shutdown(&mut t.r, rustix::process::Signal::TERM, "--exec");
    assert_sleeper_gone(sleeper.0, "--exec", &t.r);
}

// Item 9: targets that can never be signalled.

/// Runs `reconfig watch ARGS` expecting it to refuse to start; returns its stderr.
fn refused_at_start(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = cli::command()
        .arg("watch")
        .args(["--dir", s(dir.path()), "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reconfig");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`reconfig watch {}` started instead of refusing",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
    stderr
}

#[test]
fn targets_that_are_never_signalled_are_refused_at_start() {
    let err = refused_at_start(&["--pid", "1", "--signal", "HUP"]);
    assert!(err.contains("refusing to signal PID 1"), "{err}");
    let err = refused_at_start(&["--pid", "1", "--restart"]);
    assert!(err.contains("refusing to signal PID 1"), "{err}");

    let tmp = tempfile::tempdir().expect("tempdir");
    let pid_file = tmp.path().join("app.pid");
    fs::write(&pid_file, "1\n").expect("write");
    let err = refused_at_start(&["--pid-file", s(&pid_file), "--signal", "HUP"]);
    assert!(err.contains("refusing to signal PID 1"), "{err}");
    assert!(err.contains("app.pid"), "says where PID 1 came from: {err}");

    // The tests run the binary as `reconfig`: it would match itself.
    let err = refused_at_start(&["--process", "reconfig", "--signal", "HUP"]);
    assert!(err.contains("reconfig itself"), "{err}");
}

/// A name no other process on the machine has.
fn unique_name(what: &str) -> String {
    format!("rcfg-{what}-{}-{}", std::process::id(), {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(Instant::now()) & 0xffff
    })
}

#[test]
fn a_refusal_at_reload_is_final_for_that_version() {
    let setup = WatchTest::new().kubelet_volume(config(1));
    let tmp = setup.tmp().to_path_buf();
    // The app has not written its pid file yet: accepted at start.
    let pid_file = tmp.join("app.pid");
    let t = setup
        .args(["--pid-file", s(&pid_file), "--signal", "HUP"])
        .args(["--retries", "3", "--retry-backoff", "50ms"])
        .start();
    let (vol, r) = (t.vol(), &t.r);
    r.wait_ready(200);

    // PID 1, then reconfig's own PID: each version is refused once, never retried.
    for (n, pid) in [(2, 1), (3, r.pid())] {
        fs::write(&pid_file, format!("{pid}\n")).expect("write pid");
        vol.write(&config(n)).expect("write");
        let failed = r.wait_log("reload failed", n as usize - 1);
        assert!(failed.contains("refusing to signal"), "{failed}");
        assert!(failed.contains("not retried"), "{failed}");
    }

    // The barrier: a real app appears, the next version reaches it, and the count is exact.
    let app = App::start(&tmp, &format!("{}-1", unique_name("final")));
    fs::write(&pid_file, format!("{}\n", app.pid())).expect("write pid");
    vol.write(&config(4)).expect("write");
    until("the app to get SIGHUP", || app.hups() == 1);
    r.wait_reloaded(1);
    assert_eq!(r.reloads("signal", "failure"), 2, "{}", r.log());
    assert_eq!(r.reloads("signal", "superseded"), 0, "{}", r.log());
    assert_eq!(r.count("reload failed"), 2, "{}", r.log());
    assert_eq!(app.hups(), 1);
    r.wait_ready(200);
}

// Item 10: one name, two unrelated process trees.

#[test]
fn a_name_matching_two_trees_signals_both_and_warns() {
    let setup = WatchTest::new().kubelet_volume(config(1));
    let tmp = setup.tmp().to_path_buf();
    let name = unique_name("two");
    let (a, b) = (
        App::start(&tmp.join("1"), &name),
        App::start(&tmp.join("2"), &name),
    );
    let t = setup.args(["--process", &name, "--signal", "HUP"]).start();
    let (vol, r) = (t.vol(), &t.r);
    r.wait_ready(200);
    vol.write(&config(2)).expect("write");
    until("both apps to get SIGHUP", || a.hups() == 1 && b.hups() == 1);
    let warning = r.wait_log("process trees", 1);
    assert!(warning.contains("WARN"), "{warning}");
    for pid in [a.pid(), b.pid()] {
        assert!(warning.contains(&pid.to_string()), "{pid}: {warning}");
    }
    assert!(warning.contains("--process-unique"), "{warning}");
    r.wait_reloaded(1);
    assert_eq!(r.reloads("signal", "success"), 1);
}

#[test]
fn process_unique_refuses_a_name_matching_two_trees() {
    let setup = WatchTest::new().kubelet_volume(config(1));
    let tmp = setup.tmp().to_path_buf();
    let name = unique_name("uniq");
    let (a, mut b) = (
        App::start(&tmp.join("1"), &name),
        App::start(&tmp.join("2"), &name),
    );
    let t = setup
        .args(["--process", &name, "--process-unique", "--signal", "HUP"])
        .args(["--retries", "0"])
        .start();
    let (vol, r) = (t.vol(), &t.r);
    r.wait_ready(200);
    vol.write(&config(2)).expect("write");
    let failed = r.wait_log("reload failed", 1);
    for pid in [a.pid(), b.pid()] {
        assert!(failed.contains(&pid.to_string()), "{pid}: {failed}");
    }
    assert_eq!(r.reloads("signal", "failure"), 1);

    // The barrier: with one tree left, the next version reaches it, and only it.
    b.stop();
    vol.write(&config(3)).expect("write");
    until("the remaining app to get SIGHUP", || a.hups() == 1);
    r.wait_reloaded(1);
    assert_eq!(a.hups(), 1);
    assert_eq!(b.hups(), 0, "nothing was signalled while ambiguous");
    assert_eq!(r.reloads("signal", "failure"), 1, "{}", r.log());
}

// Item 15: `{dir:q}`, the folder shell-quoted for `sh -c`.

#[test]
fn dir_q_quotes_the_folder_for_a_shell() {
    // The validator runs in the temporary folder, so the command the name smuggles in
    // (`touch pwned`) would leave its mark there.
    let t = WatchTest::new().relative_dirs();
    let tmp = t.tmp().to_path_buf();
    let pwned = tmp.join("pwned");
    // A folder name that runs a command when pasted unquoted into `sh -c`.
    let dir = tmp.join("it's a $(touch pwned) dir; touch pwned #");
    fs::create_dir(&dir).expect("mkdir");
    fs::write(dir.join("app.yaml"), "port: 1\n").expect("write");
    let t = t
        .webhook()
        .args(["--dir", s(&dir)])
        .args([
            "--validate-cmd",
            "sh -c 'grep -q port: {dir:q}/app.yaml && test -d {dir:q}'",
        ])
        .start();
    let (hook, r) = (t.hook(), &t.r);
    r.wait_ready(200);
    fs::write(dir.join("app.yaml"), "port: 2\n").expect("write");
    wait_successes(hook, 1);
    fs::write(dir.join("app.yaml"), "listen: 3\n").expect("write");
    r.wait_log("config rejected", 1);
    assert_eq!(r.validation_failures(), 1);
    assert!(!pwned.exists(), "the folder name ran a command");
    assert_eq!(hook.count(), 1);
}
