//! Verification: after the actions for a version succeed, did the app take the config?
//!
//! A validator judges files; only the app can say whether it runs on them. So each probe asks
//! the app (`--verify-url`, `--verify-metric`) or a command (`--verify-cmd`), after
//! `--verify-delay`, again every `--verify-interval`, until all pass in one round or
//! `--verify-timeout` (counted from the end of the actions, the delay included) runs out.
//! Every request and command is cut at that deadline, so an endpoint that hangs costs the
//! timeout and no more.

use std::path::Path;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::metric::{self, Condition};
use super::signal::{Process, Signaller};
use crate::process::{one_line, run_command};

/// Bytes of a `--verify-url` body read for `--verify-body` (the rest is not read).
pub const MAX_BODY: usize = 1 << 20;

/// One way to ask whether the app took the config.
pub enum Probe {
    /// `--verify-url`: a GET answered with an accepted status (and a body matching).
    Url {
        url: Uri,
        /// Accepted status codes; empty means any 2xx.
        accept: Vec<u16>,
        body: Option<regex::Regex>,
    },
    /// `--verify-metric URL CONDITION`: conditions on the samples of a Prometheus text page.
    Metric {
        url: Uri,
        conditions: Vec<Condition>,
    },
    /// `--verify-cmd`: exit 0 (no shell; `{dir}` already replaced).
    Command { argv: Vec<String> },
}

impl Probe {
    /// A URL the verifier can GET: http only, as for webhooks (the app is on the pod's loopback).
    pub fn parse_url(url: &str) -> Result<Uri, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") if uri.host().is_some() => Ok(uri),
            Some("http") => Err(format!("`{url}` has no host")),
            Some("https") => Err(format!(
                "`{url}`: https is not supported; the app is reached over the pod's loopback, use http://localhost:PORT/…"
            )),
            _ => Err(format!("`{url}` must start with http://")),
        }
    }

    fn describe(&self) -> String {
        match self {
            Probe::Url { url, .. } => format!("GET {url}"),
            Probe::Metric { url, .. } => format!("metrics at {url}"),
            Probe::Command { argv } => format!("`{}`", argv.join(" ")),
        }
    }
}

/// How a version is verified; see the module documentation.
pub struct Verify {
    pub probes: Vec<Probe>,
    pub delay: Duration,
    pub timeout: Duration,
    pub interval: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Verify {
    pub fn new(probes: Vec<Probe>, delay: Duration, timeout: Duration, interval: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Verify {
            probes,
            delay,
            timeout,
            interval,
            client,
        }
    }

    /// Whether a condition compares with `{action_time}` (whole seconds: see `reload::run`).
    pub fn uses_action_time(&self) -> bool {
        self.probes.iter().any(|p| match p {
            Probe::Metric { conditions, .. } => conditions
                .iter()
                .any(|c| c.value == super::metric::Value::ActionTime),
            _ => false,
        })
    }

    /// Verifies a version whose actions started at `action_time` (Unix seconds) and ended at
    /// `acted`; with `--restart`, the `restarted` processes must have exited first (the old app
    /// could still answer). `Ok` says how it passed, `Err` what the last round saw.
    pub async fn run(
        &self,
        acted: Instant,
        action_time: u64,
        restarted: &[Process],
    ) -> Result<String, String> {
        let deadline = acted + self.timeout;
        tokio::time::sleep_until((acted + self.delay).into()).await;
        if !restarted.is_empty() {
            wait_exited(restarted, deadline).await?;
        }
        let mut tries = 0u32;
        // What the last round that was not cut by the deadline saw: a try cut short says less.
        let mut answered: Option<String> = None;
        loop {
            tries += 1;
            let mut failures = Vec::new();
            let mut cut = false;
            for probe in &self.probes {
                let left = deadline.saturating_duration_since(Instant::now());
                let answer = tokio::time::timeout(left, self.probe(probe, action_time)).await;
                match answer {
                    Ok(Ok(())) => {}
                    Ok(Err(why)) => failures.push(why),
                    Err(_) => {
                        cut = true;
                        failures.push(format!(
                            "{}: no answer within the {:?} of --verify-timeout",
                            probe.describe(),
                            self.timeout
                        ))
                    }
                }
            }
            let took = acted.elapsed();
            if failures.is_empty() {
                return Ok(format!(
                    "verified after {} ms ({tries} {})",
                    took.as_millis(),
                    if tries == 1 { "try" } else { "tries" }
                ));
            }
            let next = Instant::now() + self.interval;
            if next >= deadline {
                let mut why = failures.join("; ");
                if let Some(before) = answered.filter(|before| cut && *before != why) {
                    why = format!("{why} (the try before: {before})");
                }
                return Err(format!(
                    "not verified within {:?} ({tries} {}): {why}",
                    self.timeout,
                    if tries == 1 { "try" } else { "tries" },
                ));
            }
            if !cut {
                answered = Some(failures.join("; "));
            }
            tracing::debug!(tries, "not verified yet: {}", failures.join("; "));
            tokio::time::sleep_until(next.into()).await;
        }
    }

    async fn probe(&self, probe: &Probe, action_time: u64) -> Result<(), String> {
        match probe {
            Probe::Url { url, accept, body } => {
                let limit = if body.is_some() { MAX_BODY } else { 0 };
                let (status, text) = self.get(url, limit).await?;
                let accepted = if accept.is_empty() {
                    (200..300).contains(&status)
                } else {
                    accept.contains(&status)
                };
                if !accepted {
                    return Err(format!("GET {url} answered {status}"));
                }
                match body {
                    Some(re) if !re.is_match(&text) => Err(format!(
                        "GET {url} answered {status}, but the body does not match /{re}/"
                    )),
                    _ => Ok(()),
                }
            }
            Probe::Metric { url, conditions } => {
                let (status, text) = self.get(url, metric::MAX_TEXT).await?;
                if !(200..300).contains(&status) {
                    return Err(format!("GET {url} answered {status}"));
                }
                let samples = metric::samples(&text);
                let failed: Vec<String> = conditions
                    .iter()
                    .filter_map(|c| c.judge(&samples, action_time).err())
                    .collect();
                if failed.is_empty() {
                    Ok(())
                } else {
                    Err(format!("at {url}: {}", failed.join("; ")))
                }
            }
            Probe::Command { argv } => {
                // The caller's timeout drops this future, which kills the command's group.
                let outcome = run_command(argv, Duration::MAX).await;
                if outcome.success {
                    Ok(())
                } else if outcome.output.is_empty() {
                    Err(format!("`{}` {}", argv.join(" "), outcome.status))
                } else {
                    Err(format!(
                        "`{}` {}: {}",
                        argv.join(" "),
                        outcome.status,
                        one_line(&outcome.output)
                    ))
                }
            }
        }
    }

    /// GET `url`: the status, and the first `limit` bytes of the body (the rest is not read).
    async fn get(&self, url: &Uri, limit: usize) -> Result<(u16, String), String> {
        let request = Request::builder()
            .method("GET")
            .uri(url.clone())
            .header(
                "user-agent",
                concat!("reconfig/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while bytes.len() < limit {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let take = data.len().min(limit - bytes.len());
                        bytes.extend_from_slice(&data[..take]);
                    }
                }
                Some(Err(e)) => return Err(format!("GET {url}: reading the answer: {e}")),
                None => break,
            }
        }
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// Waits until every restarted process has exited, so that the old app cannot answer for the
/// new one.
async fn wait_exited(processes: &[Process], deadline: Instant) -> Result<(), String> {
    let signaller = Signaller::new();
    loop {
        let alive: Vec<&Process> = processes
            .iter()
            .filter(|p| !signaller.has_exited(p))
            .collect();
        if alive.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let pids: Vec<String> = alive.iter().map(|p| p.pid.to_string()).collect();
            return Err(format!(
                "the restarted app (PID {}) had not exited by the end of --verify-timeout",
                pids.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The `{dir}` of `--verify-cmd`: the folder the app reads.
pub fn command_argv(line: &str, dir: &Path) -> Result<Vec<String>, String> {
    let argv = shell_words::split(line).map_err(|e| format!("cannot split `{line}`: {e}"))?;
    if argv.is_empty() {
        return Err("the command is empty".into());
    }
    let dir = dir.display().to_string();
    let quoted = shell_words::quote(&dir);
    Ok(argv
        .iter()
        .map(|a| a.replace("{dir:q}", &quoted).replace("{dir}", &dir))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::http_support::Receiver;
    use super::*;

    fn verify(probes: Vec<Probe>, timeout_ms: u64) -> Verify {
        Verify::new(
            probes,
            Duration::ZERO,
            Duration::from_millis(timeout_ms),
            Duration::from_millis(20),
        )
    }

    fn url_probe(url: &str) -> Probe {
        Probe::Url {
            url: Probe::parse_url(url).expect("url"),
            accept: Vec::new(),
            body: None,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn polls_until_the_app_answers_and_gives_up_at_the_timeout() {
        let app = Receiver::start();
        let v = verify(vec![url_probe(&app.url("/healthz"))], 5_000);
        let ok = v.run(Instant::now(), 0, &[]).await.expect("verified");
        assert!(ok.contains("(1 try)"), "{ok}");

        app.set_status(500);
        let v = verify(vec![url_probe(&app.url("/healthz"))], 300);
        let started = Instant::now();
        let why = v
            .run(Instant::now(), 0, &[])
            .await
            .expect_err("500 forever");
        assert!(why.starts_with("not verified within 300ms"), "{why}");
        // Under load the last try can be cut by the deadline instead of answered.
        assert!(
            why.contains("answered 500") || why.contains("no answer within"),
            "{why}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(app.count() >= 2, "polled: {}", app.count());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_body_must_match_and_the_status_may_be_chosen() {
        let app = Receiver::start();
        let probe = |body: &str, accept: Vec<u16>| Probe::Url {
            url: Probe::parse_url(&app.url("/")).expect("url"),
            accept,
            body: Some(regex::Regex::new(body).expect("regex")),
        };
        let run = |p| async { verify(vec![p], 200).run(Instant::now(), 0, &[]).await };
        run(probe("^$", Vec::new()))
            .await
            .expect("the empty body matches ^$");
        let why = run(probe("ok", Vec::new())).await.expect_err("no match");
        assert!(why.contains("the body does not match /ok/"), "{why}");
        app.set_status(503);
        run(probe("^$", vec![503]))
            .await
            .expect("503 accepted when chosen");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_hanging_endpoint_costs_the_timeout_and_no_more() {
        // Accepts and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let v = verify(vec![url_probe(&url)], 400);
        let started = Instant::now();
        let why = v.run(Instant::now(), 0, &[]).await.expect_err("hangs");
        let took = started.elapsed();
        assert!(why.contains("no answer within the 400ms"), "{why}");
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(3),
            "{took:?}"
        );
        drop(listener);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn commands_pass_on_exit_0_and_are_killed_at_the_deadline() {
        let ok = verify(
            vec![Probe::Command {
                argv: vec!["true".into()],
            }],
            2_000,
        );
        ok.run(Instant::now(), 0, &[]).await.expect("true passes");
        let slow = verify(
            vec![Probe::Command {
                argv: vec!["sleep".into(), "30".into()],
            }],
            300,
        );
        let started = Instant::now();
        let why = slow.run(Instant::now(), 0, &[]).await.expect_err("cut");
        assert!(why.contains("`sleep 30`"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            command_argv("check {dir}/a '{dir:q}'", Path::new("/p q")).expect("argv"),
            vec!["check", "/p q/a", "'/p q'"]
        );
    }

    #[test]
    fn only_plain_http_urls() {
        assert!(Probe::parse_url("http://127.0.0.1:9090/-/ready").is_ok());
        assert!(Probe::parse_url("https://x/").is_err());
        assert!(Probe::parse_url("localhost:1").is_err());
    }
}
