//! Telling the app that a validated config is in place: signal, webhook, command, or restart.
//!
//! Actions run in their own task, fed through a channel that keeps only the
//! newest version: a retry that is still backing off is abandoned the moment a
//! newer config arrives, so the newest config always wins and a failing
//! endpoint never delays it. The task knows nothing of the sidecar's state: it
//! counts its runs in [`ActionMetrics`] and sends an [`ActionOutcome`] back for
//! each version it finishes with; the event loop decides what that means.
//!
//! With verification configured ([`verify`]), a version whose actions succeeded is verified in
//! the same task, so a newer version supersedes a verification as it supersedes a retry: the
//! task reports the actions' end ([`Outcome::Acted`], verification follows), then the verdict
//! ([`Outcome::Verified`]).

pub mod metric;
pub mod signal;
pub mod verify;
pub mod webhook;

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::{mpsc, watch};

use crate::backoff::{Backoff, Jitter};
use crate::process::{one_line, run_command};
use signal::{Process, Signal, Signaller, Target};
use verify::Verify;
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

    async fn run(&self, hash: &str) -> Result<Acted, Failed> {
        match self {
            Action::Signal { target, signal } => send(target.clone(), *signal)
                .await
                .map(|(detail, _)| Acted::said(detail)),
            Action::Restart { target } => send(target.clone(), Signal::TERM)
                .await
                .map(|(detail, restarted)| Acted { detail, restarted }),
            Action::Webhook(hook) => hook
                .call(hash)
                .await
                .map(Acted::said)
                .map_err(Failed::retry),
            Action::Exec { argv, timeout } => {
                let outcome = run_command(argv, *timeout).await;
                let detail = if outcome.output.is_empty() {
                    format!("`{}` {}", argv.join(" "), outcome.status)
                } else {
                    let output = one_line(&outcome.output);
                    format!("`{}` {}: {output}", argv.join(" "), outcome.status)
                };
                if outcome.success {
                    Ok(Acted::said(detail))
                } else {
                    Err(Failed::retry(detail))
                }
            }
        }
    }
}

/// What one successful run of an action did.
#[derive(Debug)]
struct Acted {
    detail: String,
    /// `--restart`: the processes sent SIGTERM, which verification waits out.
    restarted: Vec<Process>,
}

impl Acted {
    fn said(detail: String) -> Self {
        Acted {
            detail,
            restarted: Vec::new(),
        }
    }
}

/// Why one run of an action failed, and whether running it again could help.
#[derive(Debug)]
struct Failed {
    why: String,
    /// False for a refusal (PID 1, reconfig itself): it fails the same way every time.
    retry: bool,
}

impl Failed {
    fn retry(why: String) -> Self {
        Failed { why, retry: true }
    }
}

/// Finds the target afresh and signals it; `/proc` scans block, so they leave the event loop.
async fn send(target: Target, signal: Signal) -> Result<(String, Vec<Process>), Failed> {
    let name = signal::signal_name(signal);
    let sent = tokio::task::spawn_blocking(move || Signaller::new().send(&target, signal))
        .await
        .map_err(|e| Failed::retry(format!("signal task failed: {e}")))?;
    match sent {
        Ok(processes) => {
            let pids: Vec<String> = processes
                .iter()
                .map(|p| format!("{} ({})", p.pid, p.name))
                .collect();
            Ok((format!("{name} sent to {}", pids.join(", ")), processes))
        }
        Err(e) if e.is_refusal() => Err(Failed {
            why: format!("{e} (a refusal: not retried for this version)"),
            retry: false,
        }),
        Err(e) => Err(Failed::retry(e.to_string())),
    }
}

/// How actions are run and retried.
pub struct Policy {
    pub actions: Vec<Action>,
    pub retries: u32,
    /// The delays between tries; each version starts from the first.
    pub backoff: Backoff,
    /// Spreads reloads of many replicas: each waits a random time below this.
    pub jitter: Jitter,
    /// Verify each version once its actions succeeded.
    pub verify: Option<Verify>,
}

/// A validated config version to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub hash: String,
    /// Run no action, only verify: the app already has this version (found at start).
    pub verify_only: bool,
}

impl Version {
    /// A version to act on (and verify, when verification is configured).
    pub fn act(hash: String) -> Self {
        Version {
            hash,
            verify_only: false,
        }
    }
}

/// What the action task reports about a version (a superseded one has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The actions finished with it; with `verifying`, a verdict follows.
    Acted(ActionOutcome),
    /// Its verification finished.
    Verified(VerifyOutcome),
}

/// What became of a version the actions finished with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    pub hash: String,
    /// Every action succeeded (what each did, joined), or the retries ran out.
    pub result: Result<String, GaveUp>,
    /// The actions succeeded and verification runs now: an [`Outcome::Verified`] follows.
    pub verifying: bool,
}

/// Whether the app took a version: how it passed, or what the last round of probes saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutcome {
    pub hash: String,
    pub result: Result<String, String>,
}

/// The actions that still failed when the retries ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp {
    pub actions: Vec<&'static str>,
    /// Tries of each failing action, the first included.
    pub attempts: u32,
    /// The last error of each failing action.
    pub errors: Vec<String>,
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed {} times",
            self.actions.join(", "),
            self.attempts
        )
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionResult {
    pub action: String,
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: String,
}

/// What the action task counts as it goes; the sidecar's metrics registry exposes them.
#[derive(Debug, Clone)]
pub struct ActionMetrics {
    /// Runs by action and result (success, failure, superseded).
    pub runs: Family<ActionResult, Counter>,
    pub seconds: Family<ActionLabel, Histogram>,
}

impl Default for ActionMetrics {
    fn default() -> Self {
        ActionMetrics {
            runs: Family::default(),
            seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            }),
        }
    }
}

impl ActionMetrics {
    fn record(&self, action: &str, result: &str, took: Duration) {
        self.runs
            .get_or_create(&ActionResult {
                action: action.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.seconds
            .get_or_create(&ActionLabel {
                action: action.to_string(),
            })
            .observe(took.as_secs_f64());
    }
}

/// The handle on the action task: versions go in, outcomes come out. Dropping it stops the
/// task where it stands, killing a command it was running (shutdown does not wait for it).
pub struct Actions {
    versions: watch::Sender<Option<Version>>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Actions {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Actions {
    /// Hands over the newest version; one still waiting or retrying is superseded.
    pub fn apply(&self, version: Version) {
        self.versions.send_replace(Some(version));
    }

    /// The next outcome; `None` once the task has ended.
    pub async fn outcome(&mut self) -> Option<Outcome> {
        self.outcomes.recv().await
    }

    /// An outcome that has already arrived, without waiting.
    pub fn arrived(&mut self) -> Option<Outcome> {
        self.outcomes.try_recv().ok()
    }
}

/// Starts the action task.
pub fn spawn(policy: Policy, metrics: ActionMetrics) -> Actions {
    let (versions, rx) = watch::channel(None);
    let (tx, outcomes) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(policy, metrics, rx, tx));
    Actions {
        versions,
        outcomes,
        task,
    }
}

async fn run(
    policy: Policy,
    metrics: ActionMetrics,
    mut rx: watch::Receiver<Option<Version>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
) {
    let mut next: Option<Version> = None;
    // The second in which the last verification passed. `{action_time}` is in whole seconds,
    // as apps such as Prometheus record their reloads: a version acted on in that same second
    // would pass on the previous reload's timestamp, before the app has even read it. So its
    // actions wait for the next second (at most 1 s, only with `{action_time}` conditions).
    let mut last_verified: Option<u64> = None;
    let compares_action_time = policy.verify.as_ref().is_some_and(|v| v.uses_action_time());
    loop {
        if next.is_none() {
            if rx.changed().await.is_err() {
                return;
            }
            next = rx.borrow_and_update().clone();
        }
        let Some(version) = next.take() else { continue };
        if let (Some(last), true, false) =
            (last_verified, compares_action_time, version.verify_only)
        {
            if wait_for_second_after(last).await && rx.has_changed().unwrap_or(false) {
                // A newer version arrived while waiting: it is the one to act on.
                next = rx.borrow_and_update().clone();
                continue;
            }
        }
        let started = unix_seconds();
        let applied = if version.verify_only {
            Applied::Done(Ok("already in place".into()), Vec::new())
        } else {
            apply(&policy, &metrics, &version, &mut rx).await
        };
        let (result, restarted) = match applied {
            Applied::Done(result, restarted) => (result, restarted),
            Applied::Superseded(newer) => {
                next = newer;
                continue;
            }
            Applied::Closed => return,
        };
        let verify = policy.verify.as_ref().filter(|_| result.is_ok());
        let outcome = ActionOutcome {
            hash: version.hash.clone(),
            result,
            verifying: verify.is_some(),
        };
        if outcomes.send(Outcome::Acted(outcome)).is_err() {
            return;
        }
        let Some(verify) = verify else { continue };
        let acted = Instant::now();
        tracing::debug!(hash = %short(&version.hash), "verifying");
        let result = tokio::select! {
            result = verify.run(acted, started, &restarted) => result,
            changed = rx.changed() => match changed {
                Ok(()) => {
                    tracing::info!("a newer config arrived; dropping the verification of {}", short(&version.hash));
                    next = rx.borrow_and_update().clone();
                    continue;
                }
                Err(_) => return,
            },
        };
        if result.is_ok() {
            last_verified = Some(unix_seconds());
        }
        let outcome = VerifyOutcome {
            hash: version.hash,
            result,
        };
        if outcomes.send(Outcome::Verified(outcome)).is_err() {
            return;
        }
    }
}

/// Sleeps until the Unix clock is past the whole second `second`; whether it slept.
async fn wait_for_second_after(second: u64) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let target = Duration::from_secs(second + 1);
    if now >= target {
        return false;
    }
    tracing::debug!("waiting for the next second: {{action_time}} must tell this version's reload from the last one's");
    tokio::time::sleep(target - now + Duration::from_millis(5)).await;
    true
}

/// Now, in whole Unix seconds rounded down: what `{action_time}` compares with (apps such as
/// Prometheus record their reload time in whole seconds).
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

enum Applied {
    /// The result, and the processes `--restart` stopped.
    Done(Result<String, GaveUp>, Vec<Process>),
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
    metrics: &ActionMetrics,
    version: &Version,
    rx: &mut watch::Receiver<Option<Version>>,
) -> Applied {
    if !policy.jitter.is_zero() {
        let delay = policy.jitter.draw();
        tracing::info!(hash = %short(&version.hash), "waiting {delay:?} (--jitter) before reloading");
        if let Some(early) = wait_or_newer(delay, rx).await {
            return early;
        }
    }
    let mut backoff = policy.backoff.clone();
    let mut pending: Vec<&Action> = policy.actions.iter().collect();
    let mut attempt = 0u32;
    let mut done = Vec::new();
    let mut restarted = Vec::new();
    // Actions refused for this version: never tried again, reported when the others are done.
    let mut refused = Vec::new();
    loop {
        let mut failed = Vec::new();
        for action in pending {
            tracing::debug!(action = action.name(), hash = %short(&version.hash), "running");
            let started = Instant::now();
            let result = action.run(&version.hash).await;
            let took = started.elapsed();
            match result {
                Ok(Acted {
                    detail,
                    restarted: stopped,
                }) => {
                    metrics.record(action.name(), "success", took);
                    tracing::info!(action = action.name(), hash = %short(&version.hash), took_ms = took.as_millis() as u64, "reloaded: {detail}");
                    done.push(detail);
                    restarted.extend(stopped);
                }
                Err(Failed { why, retry }) => {
                    metrics.record(action.name(), "failure", took);
                    tracing::warn!(action = action.name(), hash = %short(&version.hash), attempt = attempt + 1, "reload failed: {why}");
                    if retry {
                        failed.push((action, why));
                    } else {
                        refused.push((action, why));
                    }
                }
            }
        }
        if failed.is_empty() && refused.is_empty() {
            return Applied::Done(Ok(done.join("; ")), restarted);
        }
        attempt += 1;
        if failed.is_empty() || attempt > policy.retries {
            let (actions, errors) = refused
                .into_iter()
                .chain(failed)
                .map(|(action, why)| (action.name(), why))
                .unzip();
            return Applied::Done(
                Err(GaveUp {
                    actions,
                    attempts: attempt,
                    errors,
                }),
                restarted,
            );
        }
        if let Some(early) = wait_or_newer(backoff.next_delay(), rx).await {
            for (action, _) in &failed {
                metrics.record(action.name(), "superseded", Duration::ZERO);
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

#[cfg(test)]
#[path = "../../tests/support/http.rs"]
#[allow(dead_code)]
pub(crate) mod http_support;

#[cfg(test)]
mod tests {
    use super::http_support::Receiver;
    use super::*;

    fn policy(url: &str, retries: u32, backoff: Duration) -> Policy {
        Policy {
            actions: vec![Action::Webhook(Box::new(
                Webhook::new(url, "POST", Vec::new(), Duration::from_secs(2)).expect("hook"),
            ))],
            retries,
            backoff: Backoff::new(backoff, backoff * 4),
            jitter: Jitter::new(Duration::ZERO),
            verify: None,
        }
    }

    /// The next outcome, within two seconds.
    async fn outcome(actions: &mut Actions) -> ActionOutcome {
        let outcome = tokio::time::timeout(Duration::from_secs(2), actions.outcome())
            .await
            .expect("an outcome within 2 s")
            .expect("the action task runs");
        match outcome {
            Outcome::Acted(acted) => acted,
            other => panic!("not the actions' outcome: {other:?}"),
        }
    }

    /// Polls without blocking the runtime, which runs the action task on this same thread.
    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    fn hashes(requests: Vec<http_support::Request>) -> Vec<String> {
        requests.into_iter().filter_map(|r| r.hash).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn retries_until_the_webhook_answers() {
        let hook = Receiver::start();
        hook.set_status(503);
        let mut actions = spawn(
            policy(&hook.url("/reload"), 5, Duration::from_millis(10)),
            ActionMetrics::default(),
        );
        actions.apply(Version::act("h1".into()));
        until("two failed tries", || hook.count() >= 2).await;
        hook.set_status(200);
        let outcome = outcome(&mut actions).await;
        assert_eq!(outcome.hash, "h1");
        assert!(outcome.result.is_ok(), "{outcome:?}");
        assert!(hook.count() >= 3, "{:?}", hook.requests());
        assert_eq!(hashes(hook.successes()), vec!["h1".to_string()]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_newer_version_supersedes_pending_retries() {
        let hook = Receiver::start();
        hook.set_status(503);
        let metrics = ActionMetrics::default();
        let mut actions = spawn(
            policy(&hook.url("/reload"), 5, Duration::from_secs(30)),
            metrics.clone(),
        );
        actions.apply(Version::act("old".into()));
        until("the first try", || hook.count() == 1).await;
        hook.set_status(200);
        actions.apply(Version::act("new".into()));
        let outcome = outcome(&mut actions).await;
        assert_eq!(
            (outcome.hash.as_str(), outcome.result.is_ok()),
            ("new", true),
            "the newest wins without waiting 30 s, and the superseded version has no outcome"
        );
        assert_eq!(
            hashes(hook.successes()),
            vec!["new".to_string()],
            "the newest wins without waiting 30 s"
        );
        let superseded = ActionResult {
            action: "webhook".into(),
            result: "superseded".into(),
        };
        assert_eq!(metrics.runs.get_or_create(&superseded).get(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn gives_up_after_the_retries_and_says_so() {
        let hook = Receiver::start();
        hook.set_status(503);
        let mut actions = spawn(
            policy(&hook.url("/reload"), 1, Duration::from_millis(10)),
            ActionMetrics::default(),
        );
        actions.apply(Version::act("h".into()));
        let outcome = outcome(&mut actions).await;
        assert_eq!(outcome.hash, "h");
        let why = outcome.result.unwrap_err();
        assert!(why.to_string().contains("webhook failed 2 times"), "{why}");
        assert_eq!(why.errors.len(), 1);
        assert!(why.errors[0].contains("answered 503"), "{why:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_refusal_is_final_for_the_version_and_the_rest_still_retry() {
        let hook = Receiver::start();
        hook.set_status(503);
        let mut policy = policy(&hook.url("/reload"), 2, Duration::from_millis(10));
        policy.actions.push(Action::Signal {
            target: Target::Pid(1),
            signal: Signal::HUP,
        });
        let metrics = ActionMetrics::default();
        let mut actions = spawn(policy, metrics.clone());
        actions.apply(Version::act("h".into()));
        let gave_up = outcome(&mut actions).await.result.expect_err("gave up");
        assert_eq!(gave_up.actions, ["signal", "webhook"]);
        assert_eq!(gave_up.attempts, 3);
        assert!(
            gave_up.errors[0].starts_with("refusing to signal PID 1")
                && gave_up.errors[0].ends_with("(a refusal: not retried for this version)"),
            "{gave_up:?}"
        );
        let count = |action: &str| {
            metrics
                .runs
                .get_or_create(&ActionResult {
                    action: action.into(),
                    result: "failure".into(),
                })
                .get()
        };
        assert_eq!((count("signal"), count("webhook")), (1, 3));

        // Alone, a refusal ends the version at once, whatever the retries.
        let mut actions = spawn(
            Policy {
                actions: vec![Action::Restart {
                    target: Target::Pid(1),
                }],
                retries: 8,
                backoff: Backoff::new(Duration::from_secs(30), Duration::from_secs(30)),
                jitter: Jitter::new(Duration::ZERO),
                verify: None,
            },
            ActionMetrics::default(),
        );
        actions.apply(Version::act("h2".into()));
        let gave_up = outcome(&mut actions).await.result.expect_err("refused");
        assert_eq!((gave_up.actions, gave_up.attempts), (vec!["restart"], 1));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn exec_actions_report_their_exit() {
        let ok = Action::Exec {
            argv: vec!["sh".into(), "-c".into(), "echo reloaded".into()],
            timeout: Duration::from_secs(5),
        };
        assert!(ok
            .run("h")
            .await
            .expect("success")
            .detail
            .contains("reloaded"));
        let bad = Action::Exec {
            argv: vec!["false".into()],
            timeout: Duration::from_secs(5),
        };
        assert!(bad.run("h").await.is_err());
    }
}
