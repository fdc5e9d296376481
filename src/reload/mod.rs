//! Telling the app that a validated config is in place: signal, webhook, command, or restart.
//!
//! Actions run in their own task, fed through a channel that keeps only the
//! newest version: a retry that is still backing off is abandoned the moment a
//! newer config arrives, so the newest config always wins and a failing
//! endpoint never delays it.

pub mod signal;
pub mod webhook;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::process::{one_line, run_command};
use crate::serve::{Note, Shared};
use signal::{Signal, Signaller, Target};
use webhook::Webhook;

pub enum Action {
    /// `--signal SIG`: the app reloads in place.
    Signal {
        target: Target,
        signal: Signal,
    },
    /// `--restart`: SIGTERM, so the kubelet restarts the container on the new config.
    Restart {
        target: Target,
    },
    Webhook(Box<Webhook>),
    Exec {
        argv: Vec<String>,
        timeout: Duration,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Signal { .. } => "signal",
            Action::Restart { .. } => "restart",
            Action::Webhook(_) => "webhook",
            Action::Exec { .. } => "exec",
        }
    }

    async fn run(&self, hash: &str) -> Result<String, String> {
        match self {
            Action::Signal { target, signal } => send(target.clone(), *signal).await,
            Action::Restart { target } => send(target.clone(), Signal::TERM).await,
            Action::Webhook(hook) => hook.call(hash).await,
            Action::Exec { argv, timeout } => {
                let outcome = run_command(argv, *timeout).await;
                let detail = if outcome.output.is_empty() {
                    format!("`{}` {}", argv.join(" "), outcome.status)
                } else {
                    let output = one_line(&outcome.output);
                    format!("`{}` {}: {output}", argv.join(" "), outcome.status)
                };
                if outcome.success {
                    Ok(detail)
                } else {
                    Err(detail)
                }
            }
        }
    }
}

/// Finds the target afresh and signals it; `/proc` scans block, so they leave the event loop.
async fn send(target: Target, signal: Signal) -> Result<String, String> {
    let name = signal::signal_name(signal);
    tokio::task::spawn_blocking(move || Signaller::new().send(&target, signal))
        .await
        .map_err(|e| format!("signal task failed: {e}"))?
        .map(|processes| {
            let pids: Vec<String> = processes
                .iter()
                .map(|p| format!("{} ({})", p.pid, p.name))
                .collect();
            format!("{name} sent to {}", pids.join(", "))
        })
        .map_err(|e| e.to_string())
}

/// How actions are run and retried.
pub struct Policy {
    pub actions: Vec<Action>,
    pub retries: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Spreads reloads of many replicas: each waits a random time below this.
    pub jitter: Duration,
}

/// A validated config version to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub hash: String,
}

/// Starts the action task; send it versions through the returned channel.
pub fn spawn(policy: Policy, shared: Arc<Shared>) -> watch::Sender<Option<Version>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(run(policy, shared, rx));
    tx
}

async fn run(policy: Policy, shared: Arc<Shared>, mut rx: watch::Receiver<Option<Version>>) {
    let mut next: Option<Version> = None;
    loop {
        if next.is_none() {
            if rx.changed().await.is_err() {
                return;
            }
            next = rx.borrow_and_update().clone();
        }
        let Some(version) = next.take() else { continue };
        match apply(&policy, &shared, &version, &mut rx).await {
            Applied::Done => {}
            Applied::Superseded(newer) => next = newer,
            Applied::Closed => return,
        }
    }
}

enum Applied {
    Done,
    Superseded(Option<Version>),
    Closed,
}

/// Waits, or returns early with whatever newer version arrives meanwhile.
async fn wait_or_newer(
    delay: Duration,
    rx: &mut watch::Receiver<Option<Version>>,
) -> Option<Applied> {
    tokio::select! {
        () = tokio::time::sleep(delay) => None,
        changed = rx.changed() => Some(match changed {
            Ok(()) => Applied::Superseded(rx.borrow_and_update().clone()),
            Err(_) => Applied::Closed,
        }),
    }
}

async fn apply(
    policy: &Policy,
    shared: &Shared,
    version: &Version,
    rx: &mut watch::Receiver<Option<Version>>,
) -> Applied {
    let metrics = &shared.metrics;
    if !policy.jitter.is_zero() {
        let delay = policy.jitter.mul_f64(random_fraction());
        tracing::info!(hash = %short(&version.hash), "waiting {delay:?} (--jitter) before reloading");
        if let Some(early) = wait_or_newer(delay, rx).await {
            return early;
        }
    }
    let mut pending: Vec<&Action> = policy.actions.iter().collect();
    let mut attempt = 0u32;
    let mut done = Vec::new();
    loop {
        let mut failed = Vec::new();
        for action in pending {
            let started = Instant::now();
            let result = action.run(&version.hash).await;
            let took = started.elapsed();
            match result {
                Ok(detail) => {
                    metrics.reload(action.name(), "success", took);
                    tracing::info!(action = action.name(), hash = %short(&version.hash), took_ms = took.as_millis() as u64, "reloaded: {detail}");
                    done.push(detail);
                }
                Err(why) => {
                    metrics.reload(action.name(), "failure", took);
                    tracing::warn!(action = action.name(), hash = %short(&version.hash), attempt = attempt + 1, "reload failed: {why}");
                    failed.push((action, why));
                }
            }
        }
        if failed.is_empty() {
            metrics.running(&version.hash);
            metrics.succeeded_now();
            shared.set_ready(Ok(()));
            shared.note(Note::Applied {
                hash: version.hash.clone(),
                detail: done.join("; "),
            });
            return Applied::Done;
        }
        attempt += 1;
        if attempt > policy.retries {
            let names: Vec<&str> = failed.iter().map(|(a, _)| a.name()).collect();
            let reason = format!(
                "config {} is valid but {} failed {} times; waiting for the next change",
                short(&version.hash),
                names.join(", "),
                attempt
            );
            shared.set_ready(Err(reason.clone()));
            let last: Vec<&str> = failed.iter().map(|(_, why)| why.as_str()).collect();
            shared.note(Note::Failed {
                hash: version.hash.clone(),
                reason: format!("{reason}: {}", last.join("; ")),
            });
            return Applied::Done;
        }
        let backoff = policy
            .first_backoff
            .saturating_mul(2u32.saturating_pow(attempt - 1))
            .min(policy.max_backoff);
        if let Some(early) = wait_or_newer(backoff, rx).await {
            for (action, _) in &failed {
                metrics.reload(action.name(), "superseded", Duration::ZERO);
            }
            tracing::info!(
                "a newer config arrived; dropping the retries for {}",
                short(&version.hash)
            );
            return early;
        }
        pending = failed.into_iter().map(|(action, _)| action).collect();
    }
}

/// The first 12 hex digits, enough to tell versions apart in logs.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// A number in [0, 1) for the jitter draw.
fn random_fraction() -> f64 {
    (crate::random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback receiver that fails the first `failures` requests and records the hashes it saw.
    async fn receiver(failures: usize) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/reload", listener.local_addr().expect("addr"));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let hash = text
                    .lines()
                    .find_map(|l| l.strip_prefix("x-reconfig-hash: "))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                let status = if count.fetch_add(1, Ordering::SeqCst) < failures {
                    503
                } else {
                    200
                };
                if status == 200 {
                    record.lock().expect("lock").push(hash);
                }
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        });
        (url, seen)
    }

    fn policy(url: &str, retries: u32, backoff: Duration) -> Policy {
        Policy {
            actions: vec![Action::Webhook(Box::new(
                Webhook::new(url, "POST", Vec::new(), Duration::from_secs(2)).expect("hook"),
            ))],
            retries,
            first_backoff: backoff,
            max_backoff: backoff * 4,
            jitter: Duration::ZERO,
        }
    }

    async fn settle(shared: &Shared, want_ready: bool) {
        for _ in 0..200 {
            if shared.health.lock().expect("lock").ready.is_ok() == want_ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("readiness never became {want_ready}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn retries_until_the_webhook_answers() {
        let (url, seen) = receiver(2).await;
        let shared = Shared::new();
        let tx = spawn(policy(&url, 5, Duration::from_millis(10)), shared.clone());
        tx.send_replace(Some(Version { hash: "h1".into() }));
        settle(&shared, true).await;
        assert_eq!(*seen.lock().expect("lock"), vec!["h1".to_string()]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_newer_version_supersedes_pending_retries() {
        let (url, seen) = receiver(1).await;
        let shared = Shared::new();
        let tx = spawn(policy(&url, 5, Duration::from_secs(30)), shared.clone());
        tx.send_replace(Some(Version { hash: "old".into() }));
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send_replace(Some(Version { hash: "new".into() }));
        settle(&shared, true).await;
        assert_eq!(
            *seen.lock().expect("lock"),
            vec!["new".to_string()],
            "the newest wins without waiting 30 s"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn gives_up_after_the_retries_and_says_so() {
        let (url, _) = receiver(usize::MAX).await;
        let shared = Shared::new();
        shared.set_ready(Ok(()));
        let tx = spawn(policy(&url, 1, Duration::from_millis(10)), shared.clone());
        tx.send_replace(Some(Version { hash: "h".into() }));
        settle(&shared, false).await;
        let why = shared
            .health
            .lock()
            .expect("lock")
            .ready
            .clone()
            .unwrap_err();
        assert!(why.contains("webhook failed 2 times"), "{why}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn exec_actions_report_their_exit() {
        let ok = Action::Exec {
            argv: vec!["sh".into(), "-c".into(), "echo reloaded".into()],
            timeout: Duration::from_secs(5),
        };
        assert!(ok.run("h").await.expect("success").contains("reloaded"));
        let bad = Action::Exec {
            argv: vec!["false".into()],
            timeout: Duration::from_secs(5),
        };
        assert!(bad.run("h").await.is_err());
        assert!((0.0..1.0).contains(&random_fraction()));
    }
}
