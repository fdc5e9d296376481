//! `reconfig watch --verify-metric` in front of a real Prometheus (Debian's): a config that
//! `promtool check config` accepts in the sidecar, but that the running Prometheus refuses, is
//! rolled back, and Prometheus serves the last good config afterwards.
//!
//! The two views differ as they do when a reference resolves differently inside the app's
//! container: the config names a rule file by a relative path, which promtool resolves next to
//! the staged copy (where the ConfigMap's valid `extra-rules.yml` is), and Prometheus next to
//! the config file path it was given, a folder of its own (`prom/`, whose `prometheus.yml`
//! links to the published one) holding a stale, broken `extra-rules.yml`. Prometheus is told
//! with SIGHUP (its PID in a pid file), so only its own reload gauge says whether it took the
//! config.

mod support;

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::atomic_writer::{payload, AtomicWriter, Payload};
use support::http::{self, reserve_port};
use support::reconfig::Reconfig;
use support::wait::{wait_for, TIMEOUT};

const FILE: &str = "prometheus.yml";
const RULES: &str = "extra-rules.yml";

/// A config both accept: one job, named so that it shows in /api/v1/status/config; with
/// `rules`, it loads `extra-rules.yml` (shipped valid in the ConfigMap).
fn version(job: &str, rules: bool) -> Payload {
    let rule_files = if rules {
        format!("rule_files:\n  - {RULES}\n")
    } else {
        String::new()
    };
    let text = format!(
        "global:\n  scrape_interval: 15s\n{rule_files}\
         scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:9']\n"
    );
    payload(&[(FILE, &text), (RULES, "groups: []\n")])
}

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus on `addr` (reserved: the sidecar's --verify-metric names it first),
    /// and waits until it is ready.
    fn start(bin: &Path, config: &Path, work: &Path, addr: SocketAddr) -> Prometheus {
        let log = work.join("prometheus.log");
        let out = File::create(&log).expect("log file");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                work.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=info")
            .current_dir(work)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("start prometheus");
        let mut p = Prometheus { child, addr, log };
        wait_for("prometheus to be ready", TIMEOUT, || {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited at start ({status}):\n{}", p.log_text());
            }
            match http::get(addr, "/-/ready") {
                Ok(r) if r.status == 200 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        p
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
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

fn wait_phase(r: &Reconfig, phase: &str, says: &str) -> serde_json::Value {
    wait_for(&format!("/status {phase} saying {says:?}"), TIMEOUT, || {
        assert_eq!(r.readyz().status, 200, "the pod stays Ready\n{}", r.log());
        let status = r.status();
        let message = status["message"].as_str().unwrap_or_default();
        if status["phase"] == phase && message.contains(says) {
            Ok(status)
        } else {
            Err(status.to_string())
        }
    })
}

#[test]
fn a_config_promtool_accepts_but_prometheus_refuses_is_rolled_back() {
    let Some(found) =
        support::bins::require_all(&[("prometheus", "prometheus"), ("promtool", "prometheus")])
    else {
        return;
    };
    let (prometheus, promtool) = (&found[0], &found[1]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let vol = AtomicWriter::new(tmp.path().join("config"));
    vol.write(&version("v1", false)).expect("write");
    let out = tmp.path().join("out");
    // Prometheus's view: its own folder, its config linked to the published one, and a stale
    // rule file that does not parse.
    let prom_dir = tmp.path().join("prom");
    fs::create_dir(&prom_dir).expect("mkdir");
    std::os::unix::fs::symlink(out.join(FILE), prom_dir.join(FILE)).expect("link");
    fs::write(
        prom_dir.join(RULES),
        "groups:\n  - name: stale\n    rules:\n      - alert: Broken\n        expr: 'sum('\n",
    )
    .expect("write");
    let pid_file = tmp.path().join("prometheus.pid");
    // The pid file exists before the sidecar starts: it checks its target at start.
    fs::write(&pid_file, "999999\n").expect("pid file");

    let validate = format!("{} check config {{dir}}/{FILE}", promtool.display());
    let addr = reserve_port();
    let metrics = format!("http://{addr}/metrics");
    // The sidecar starts before Prometheus (as a native sidecar does) and publishes v1.
    let r = Reconfig::start(&[
        "--dir",
        vol.root().to_str().expect("utf-8"),
        "--publish",
        out.to_str().expect("utf-8"),
        "--validate-cmd",
        &validate,
        "--signal",
        "SIGHUP",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        "--verify-metric",
        &metrics,
        "prometheus_config_last_reload_successful==1",
        "--verify-timeout",
        "4s",
        "--verify-interval",
        "100ms",
    ]);
    wait_for("the first publication", TIMEOUT, || {
        out.join(FILE).exists().then_some(()).ok_or_else(|| r.log())
    });
    let prom = Prometheus::start(prometheus, &prom_dir.join(FILE), tmp.path(), addr);
    fs::write(&pid_file, format!("{}\n", prom.child.id())).expect("pid file");
    let first = wait_phase(&r, "applied", "");
    assert!(prom.config().contains("job_name: v1\n"));

    // promtool accepts v2 in the sidecar (its rule file is valid there); Prometheus refuses it.
    vol.write(&version("v2", true)).expect("write");
    let status = wait_phase(&r, "rolled-back", "which runs now");
    assert_eq!(status["applied"], first["applied"]);
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "at {metrics}: prometheus_config_last_reload_successful==1: it is 0"
        )),
        "{message}"
    );
    assert!(
        prom.log_text().contains("Error reloading config"),
        "Prometheus refused v2:\n{}",
        prom.log_text()
    );
    assert_eq!(
        r.validation_failures(),
        0,
        "promtool accepted v2 in the sidecar"
    );
    // Prometheus runs the last good config: v1 was reloaded and verified again.
    let config = prom.config();
    assert!(
        config.contains("job_name: v1\n") && !config.contains(RULES),
        "{config}"
    );
    assert_eq!(
        fs::read_to_string(out.join(FILE)).expect("published"),
        String::from_utf8(version("v1", false)[FILE].clone()).expect("utf-8")
    );
    assert_eq!(r.metric("reconfig_rollbacks_total", &[]), 1.0);
    let reloads = prom
        .log_text()
        .matches("Completed loading of configuration file")
        .count();
    assert!(
        reloads >= 2,
        "the start and the rollback:\n{}",
        prom.log_text()
    );

    // The next good version is applied, and verified by a reload after its action.
    vol.write(&version("v3", false)).expect("write");
    let status = wait_phase(&r, "applied", "");
    assert_ne!(status["applied"], first["applied"]);
    assert!(prom.config().contains("job_name: v3\n"));
}
