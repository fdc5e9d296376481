//! `reconfig watch` in front of a real Prometheus (Debian's 2.42) whose config lives in a
//! kubelet-style volume, validated with `promtool check config`.
//!
//! What counts is what Prometheus itself reports: the config it serves on
//! `/api/v1/status/config`, `prometheus_config_last_reload_successful`, and its own log, where
//! every reload attempt (webhook or SIGHUP) starts with `Loading configuration file`.
//!
//! The tests run `prometheus` directly, as the current user, with their own config, data folder,
//! pid file and a free loopback port, so a packaged Prometheus service does not matter.

mod support;

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::atomic_writer::{payload, AtomicWriter, Payload};
use support::http::{self, reserve_port};
use support::reconfig::{Metrics, Reconfig};
use support::wait::{wait_for, TIMEOUT};

const FILE: &str = "prometheus.yml";

/// A config Prometheus and promtool accept: one job, named so that it shows in /status/config.
fn good(job: &str, interval: &str) -> Payload {
    let text = format!(
        "global:\n  scrape_interval: {interval}\n  evaluation_interval: 30s\n\
         scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:9']\n"
    );
    payload(&[(FILE, &text)])
}

/// Valid YAML, but promtool (and Prometheus) reject it: the timeout exceeds the interval.
fn rejected(job: &str) -> Payload {
    let text = format!(
        "global:\n  scrape_interval: 15s\n\
         scrape_configs:\n  - job_name: {job}\n    scrape_interval: 10s\n    scrape_timeout: 20s\n\
         \x20   static_configs:\n      - targets: ['127.0.0.1:9']\n"
    );
    payload(&[(FILE, &text)])
}

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus on a free port with `--web.enable-lifecycle`, and waits until ready.
    fn start(bin: &Path, config: &Path, work: &Path) -> Prometheus {
        for attempt in 1..=3 {
            let addr = reserve_port();
            let log = work.join(format!("prometheus-{attempt}.log"));
            let out = File::create(&log).expect("log file");
            let child = Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    work.join(format!("data-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--web.enable-lifecycle")
                .arg("--log.level=info")
                .current_dir(work)
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("dup"))
                .stderr(out)
                .spawn()
                .expect("start prometheus");
            let mut p = Prometheus { child, addr, log };
            let started = Instant::now();
            loop {
                if let Ok(Some(status)) = p.child.try_wait() {
                    let text = p.log_text();
                    if text.contains("address already in use") {
                        break;
                    }
                    panic!("prometheus exited at start ({status}):\n{text}");
                }
                if http::get(addr, "/-/ready").is_ok_and(|r| r.status == 200) {
                    return p;
                }
                if started.elapsed() > TIMEOUT {
                    panic!("prometheus not ready after {TIMEOUT:?}:\n{}", p.log_text());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("prometheus could not get a free port in 3 attempts");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Reload attempts so far, the start-up load included.
    fn loads(&self) -> usize {
        self.log_text()
            .matches("msg=\"Loading configuration file\"")
            .count()
    }

    fn failed_loads(&self) -> usize {
        self.log_text()
            .matches("msg=\"Error reloading config\"")
            .count()
    }

    /// The config Prometheus runs on, as it renders it.
    fn config(&self) -> String {
        let response = http::get(self.addr, "/api/v1/status/config").expect("status/config");
        assert_eq!(response.status, 200, "{}", response.body);
        let json: serde_json::Value = serde_json::from_str(&response.body).expect("json");
        json["data"]["yaml"]
            .as_str()
            .expect("data.yaml")
            .to_string()
    }

    fn metric(&self, name: &str) -> f64 {
        let response = http::get(self.addr, "/metrics").expect("metrics");
        Metrics::parse(&response.body)
            .get(name, &[])
            .unwrap_or_else(|| panic!("prometheus has no {name}"))
    }

    /// Waits until the served config names `job`; returns when it was first seen.
    fn wait_job(&self, job: &str, r: &Reconfig) -> Instant {
        let needle = format!("job_name: {job}\n");
        wait_for(&format!("prometheus to run job {job}"), TIMEOUT, || {
            let config = self.config();
            if config.contains(&needle) {
                Ok(Instant::now())
            } else {
                Err(format!(
                    "config:\n{config}\nprometheus log:\n{}\nreconfig log:\n{}",
                    self.log_text(),
                    r.log()
                ))
            }
        })
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- prometheus log ----\n{}", self.log_text());
        }
    }
}

fn binaries() -> Option<(PathBuf, PathBuf)> {
    let found =
        support::bins::require_all(&[("prometheus", "prometheus"), ("promtool", "prometheus")])?;
    Some((found[0].clone(), found[1].clone()))
}

/// Drives one Prometheus through a good update, a rejected one, and the next good one;
/// `action` is `webhook` (POST /-/reload) or `sighup` (SIGHUP to the PID in a pid file).
fn good_bad_good(action: &str) {
    let Some((prometheus, promtool)) = binaries() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let vol = AtomicWriter::new(tmp.path().join("config"));
    vol.write(&good("v1", "15s")).expect("write");
    let prom = Prometheus::start(&prometheus, &vol.root().join(FILE), tmp.path());
    assert!(prom.config().contains("job_name: v1\n"));
    assert_eq!(prom.loads(), 1);

    let validate = format!("{} check config {{dir}}/{FILE}", promtool.display());
    let reload_url = format!("http://{}/-/reload", prom.addr);
    let pid_file = tmp.path().join("prometheus.pid");
    fs::write(&pid_file, format!("{}\n", prom.pid())).expect("pid file");
    let vol_dir = vol.root().display().to_string();
    let mut args = vec!["--dir", &vol_dir, "--validate-cmd", &validate];
    let pid_file_arg = pid_file.display().to_string();
    let kind = match action {
        "webhook" => {
            args.extend(["--webhook", &reload_url]);
            "webhook"
        }
        _ => {
            args.extend(["--signal", "SIGHUP", "--pid-file", &pid_file_arg]);
            "signal"
        }
    };
    let r = Reconfig::start(&args);
    r.wait_ready(200);

    // a/b) A good update is loaded.
    vol.write(&good("v2", "20s")).expect("write");
    prom.wait_job("v2", &r);
    let served = prom.config();
    assert!(served.contains("scrape_interval: 20s"), "{served}");
    assert_eq!(prom.metric("prometheus_config_last_reload_successful"), 1.0);
    assert_eq!(prom.loads(), 2, "one reload:\n{}", prom.log_text());
    let first_sent = r.wait_reloaded(1);
    assert_eq!(r.reloads(kind, "success"), 1);
    if kind == "signal" {
        assert!(
            first_sent.contains(&format!(": SIGHUP sent to {} ", prom.pid())),
            "{first_sent}"
        );
    }

    // c) A config promtool rejects never reaches Prometheus.
    vol.write(&rejected("v3")).expect("write");
    r.wait_metric("reconfig_validation_failures_total", &[], 1.0);
    r.wait_log("config rejected", 1);
    assert!(
        r.log().contains(
            "scrape timeout greater than scrape interval for scrape config with job name \"v3\""
        ),
        "promtool's reason is in the log:\n{}",
        r.log()
    );
    let status = r.status();
    assert_eq!(status["phase"], "rejected", "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("invalid")),
        "{status}"
    );
    assert_eq!(r.readyz().status, 200, "Prometheus still serves v2");
    assert_eq!(r.metric("reconfig_config_valid", &[]), 0.0);
    assert_eq!(prom.config(), served, "Prometheus still runs v2");
    assert_eq!(prom.metric("prometheus_config_last_reload_successful"), 1.0);
    assert_eq!(prom.loads(), 2, "no reload attempt:\n{}", prom.log_text());
    assert_eq!(r.reloads(kind, "success"), 1);
    assert_eq!(r.reloads(kind, "failure"), 0);

    // d) The next good config is loaded promptly.
    let swapped = vol
        .write(&good("v4", "25s"))
        .expect("write")
        .swapped_at()
        .expect("written");
    let seen = prom.wait_job("v4", &r);
    let took = seen.duration_since(swapped);
    eprintln!("{action}: ..data swap → Prometheus serving v4 in {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(prom.metric("prometheus_config_last_reload_successful"), 1.0);
    assert_eq!(prom.loads(), 3);
    assert_eq!(prom.failed_loads(), 0);
    r.wait_reloaded(2);
    assert_eq!(r.reloads(kind, "success"), 2);
    assert_eq!(r.validation_failures(), 1);
    r.wait_ready(200);
    assert_eq!(r.metric("reconfig_config_valid", &[]), 1.0);
}

#[test]
fn prometheus_reloads_through_the_webhook_and_never_sees_a_rejected_config() {
    good_bad_good("webhook");
}

#[test]
fn prometheus_reloads_on_sighup_via_pid_file_and_never_sees_a_rejected_config() {
    good_bad_good("sighup");
}
