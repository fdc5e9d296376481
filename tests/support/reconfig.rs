//! `reconfig watch` as a child process: started on a free loopback port, its log collected,
//! /readyz and /metrics read over plain TCP, and killed on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::cli;
use super::http::{self, Response};
use super::wait::{wait_for, TIMEOUT};

/// The log line that names the port picked for `--listen 127.0.0.1:0`.
const SERVING: &str = "serving /healthz, /readyz, /status and /metrics on ";

/// `reconfig watch ARGS --listen 127.0.0.1:0`, not yet started: add env, uid, etc.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = cli::command();
    cmd.arg("watch")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// The pod the Kubernetes API tests play, as the loopback API stand-in knows it.
pub const POD_NAMESPACE: &str = "shop";
pub const POD_NAME: &str = "web-0";

/// `reconfig -v watch --events --annotate-pod ARGS` as pod shop/web-0, with the API at
/// `kubeconfig`; `uid` as the downward API would give it, or `None` to have it read from the API.
pub fn api_command(kubeconfig: &Path, uid: Option<&str>, args: &[&str]) -> Command {
    let mut all = vec!["-v", "--events", "--annotate-pod"];
    all.extend_from_slice(args);
    let mut cmd = command(&all);
    cmd.env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", POD_NAME)
        .env("POD_NAMESPACE", POD_NAMESPACE)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT");
    match uid {
        Some(uid) => cmd.env("POD_UID", uid),
        None => cmd.env_remove("POD_UID"),
    };
    cmd
}

pub struct Reconfig {
    child: Child,
    /// Where /healthz, /readyz and /metrics are served.
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Reconfig {
    /// Starts `reconfig watch ARGS` and waits until it serves.
    pub fn start(args: &[&str]) -> Reconfig {
        Self::spawn(command(args))
    }

    /// Starts `cmd` with a thread collecting its stderr lines; `addr` is unset.
    fn launch(mut cmd: Command) -> Reconfig {
        let mut child = cmd.spawn().expect("start reconfig");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lock").push(line);
            }
        });
        Reconfig {
            child,
            addr: "127.0.0.1:0".parse().expect("addr"),
            lines,
            reader: Some(reader),
            status: None,
        }
    }

    /// Starts a prepared [`command`] and waits until it serves.
    pub fn spawn(cmd: Command) -> Reconfig {
        let mut reconfig = Self::launch(cmd);
        reconfig.addr = wait_for("reconfig to log its listen address", TIMEOUT, || {
            if let Some(line) = reconfig.lines().iter().find(|l| l.contains(SERVING)) {
                let addr = line.rsplit(' ').next().unwrap_or_default();
                return addr
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("cannot parse {addr:?}: {e}"));
            }
            if let Ok(Some(status)) = reconfig.child.try_wait() {
                reconfig.status = Some(status);
                panic!("reconfig exited at start ({status}):\n{}", reconfig.log());
            }
            Err("no listen line yet".into())
        });
        reconfig
    }

    /// Starts another subcommand (`admit`) and waits for a log line containing `needle`;
    /// `addr` stays unset (the caller reads its addresses from that line).
    pub fn spawn_until(cmd: Command, needle: &str) -> Reconfig {
        let mut reconfig = Self::launch(cmd);
        wait_for(&format!("reconfig to log {needle:?}"), TIMEOUT, || {
            if reconfig.count(needle) > 0 {
                return Ok(());
            }
            if let Ok(Some(status)) = reconfig.child.try_wait() {
                reconfig.status = Some(status);
                panic!("reconfig exited at start ({status}):\n{}", reconfig.log());
            }
            Err("not yet".into())
        });
        reconfig
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    pub fn log(&self) -> String {
        self.lines().join("\n")
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits until at least `n` log lines contain `needle`; returns the `n`-th.
    pub fn wait_log(&self, needle: &str, n: usize) -> String {
        wait_for(
            &format!("{n} log line(s) containing {needle:?}"),
            TIMEOUT,
            || {
                self.lines()
                    .into_iter()
                    .filter(|l| l.contains(needle))
                    .nth(n - 1)
                    .ok_or_else(|| format!("{} so far; log:\n{}", self.count(needle), self.log()))
            },
        )
    }

    /// Waits for the `n`-th successful reload action (`reloaded: …`); returns its log line.
    ///
    /// The app can see a signal or a webhook call before reconfig counts it, so wait for this
    /// before asserting on reload metrics. With a single action, once the line is out /metrics,
    /// /readyz and the config hash are updated too: reconfig's runtime is single-threaded and
    /// updates them without yielding, before it can answer another request.
    pub fn wait_reloaded(&self, n: usize) -> String {
        self.wait_log("reloaded:", n)
    }

    /// The short hashes (`hash=…`) of the log lines containing `needle`, in order.
    pub fn hashes(&self, needle: &str) -> Vec<String> {
        self.lines()
            .iter()
            .filter(|l| l.contains(needle))
            .filter_map(|l| field(l, "hash"))
            .collect()
    }

    pub fn get(&self, path: &str) -> Response {
        http::get(self.addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()))
    }

    pub fn readyz(&self) -> Response {
        self.get("/readyz")
    }

    pub fn metrics(&self) -> Metrics {
        Metrics::parse(&self.get("/metrics").body)
    }

    /// A metric's value (0 when the series does not exist yet).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.metrics().value(name, labels)
    }

    /// `reconfig_reloads_total{action, result}`.
    pub fn reloads(&self, action: &str, result: &str) -> u64 {
        self.metric(
            "reconfig_reloads_total",
            &[("action", action), ("result", result)],
        ) as u64
    }

    pub fn validation_failures(&self) -> u64 {
        self.metric("reconfig_validation_failures_total", &[]) as u64
    }

    /// Waits until `name{labels}` reaches at least `at_least`; returns the value seen.
    pub fn wait_metric(&self, name: &str, labels: &[(&str, &str)], at_least: f64) -> f64 {
        wait_for(&format!("{name}{labels:?} >= {at_least}"), TIMEOUT, || {
            let value = self.metric(name, labels);
            if value >= at_least {
                Ok(value)
            } else {
                Err(format!("{value}; log:\n{}", self.log()))
            }
        })
    }

    /// `/status` as JSON: the config status (phase, hashes, message, since).
    pub fn status(&self) -> serde_json::Value {
        let r = self.get("/status");
        assert_eq!(r.status, 200, "/status: {}\n{}", r.body, self.log());
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("/status is not JSON ({e}): {}", r.body))
    }

    /// Waits until `/status` says `phase`; returns it.
    pub fn wait_phase(&self, phase: &str) -> serde_json::Value {
        wait_for(&format!("/status phase {phase}"), TIMEOUT, || {
            let r = self.get("/status");
            match serde_json::from_str::<serde_json::Value>(&r.body) {
                Ok(status) if status["phase"] == phase => Ok(status),
                _ => Err(format!("{} {}; log:\n{}", r.status, r.body, self.log())),
            }
        })
    }

    /// Waits until /readyz answers `status`; returns its body.
    pub fn wait_ready(&self, status: u16) -> String {
        wait_for(&format!("/readyz to answer {status}"), TIMEOUT, || {
            let r = self.readyz();
            if r.status == status {
                Ok(r.body)
            } else {
                Err(format!("{} {}; log:\n{}", r.status, r.body, self.log()))
            }
        })
    }

    /// The exit status, if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        send_signal(self.child.id(), rustix::process::Signal::TERM);
        self.wait_exit(TIMEOUT)
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_status() {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            if start.elapsed() > timeout {
                panic!("reconfig did not exit within {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Reconfig {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- reconfig log ----\n{}\n----------------------",
                self.log()
            );
        }
    }
}

/// Sends `signal` to `pid` (a process this test started).
pub fn send_signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a positive pid");
    rustix::process::kill_process(pid, signal).expect("kill");
}

/// `key=value` from a text log line (values end at a space; quotes are stripped).
pub fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let value = line[start..].split(' ').next()?;
    Some(value.trim_matches('"').to_string())
}

/// Prometheus text-format samples.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, rest) = match line.find('{') {
                Some(_) => {
                    let close = line.rfind('}').unwrap_or(line.len() - 1);
                    (&line[..close + 1], &line[close + 1..])
                }
                None => line.split_at(line.find(' ').unwrap_or(line.len())),
            };
            let Some(value) = rest.split_whitespace().next().and_then(parse_value) else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_string(), labels, value));
        }
        Metrics { samples }
    }

    /// The first sample of `name` whose labels include `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).is_some_and(|x| x == v))
            })
            .map(|(_, _, v)| *v)
    }

    /// [`Metrics::get`], 0 when absent (counters of a label set not seen yet).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// The label sets of every sample of `name`.
    pub fn label_sets(&self, name: &str) -> Vec<BTreeMap<String, String>> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, l, _)| l.clone())
            .collect()
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        let Some(body) = after.strip_prefix('"') else {
            break;
        };
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = body.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        value.push(if next == 'n' { '\n' } else { next });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                _ => value.push(c),
            }
        }
        labels.insert(key, value);
        rest = &body[end..];
    }
    labels
}
