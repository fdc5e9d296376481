//! The config's state and its transitions: which version is wanted, which one the app runs,
//! and what became of the newest one.
//!
//! Two questions are answered here, and kept apart. Readiness (`/readyz`): is a validated
//! (with verification configured: verified) config running, so that the pod can serve? It
//! fails before the first one, and when the app runs a version that failed verification with
//! nothing put back in its place (no `--publish`, `--no-rollback`, or the version rolled back
//! to failed too). A rollback to a verified version keeps the pod Ready. The config
//! status (`/status`, `reconfig_config_status`, pod annotations): what became of the newest
//! version: waiting, applying, applied, rejected or failed. A rejected edit is news for
//! monitoring, not a reason to take the pod out of its Service: the app still serves its last
//! good config.
//!
//! "Applied" means an action for that exact hash succeeded (and, with verification, the app
//! was then seen to run it), or it was published (or only validated) with no action to run,
//! or it is the config the app started with. The version
//! handed to the actions (`wanted`) and the one they succeeded for (`applied`) are tracked
//! apart, so a revert to a version that never reached the app is a new attempt.
//!
//! Every output is derived here, by the transition that changes it, so they change together:
//! the [`View`] the HTTP endpoints read, the `reconfig_config_info`, `reconfig_config_valid`
//! and `reconfig_config_status` metrics, and what the reporters get (a [`Note`] per thing
//! that happened, for Events; the [`Status`] after each change, for pod annotations).

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use tracing::{error, warn};

use super::metrics::Metrics;
use crate::reload::{short, ActionOutcome, GaveUp};
use crate::validate::Invalid;

/// What became of the newest config version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No version to judge: none read yet, the folders are unreadable, or hold no files.
    Waiting { why: String },
    /// Valid (and published); its actions have not succeeded yet.
    Applying { hash: String },
    /// Its actions succeeded (or the app started with it); the verification runs.
    Verifying { hash: String },
    /// Valid and in place.
    Applied { hash: String },
    /// Refused (by validation, or not readable whole); the app keeps its last good config.
    Rejected {
        hash: String,
        /// Where and what, quoting no value from the config.
        why: String,
        /// Everything the validators said, config values included.
        details: String,
    },
    /// Valid, but it could not be put in place: publishing failed, the actions gave up, or
    /// it failed verification and nothing was put back (see [`Status::broken`]).
    Failed { hash: String, why: String },
    /// It failed verification, and the newest verified version (`to`) was published again;
    /// `settled` once that one is verified again.
    RolledBack {
        hash: String,
        to: String,
        /// What verification saw.
        why: String,
        settled: bool,
    },
}

impl Phase {
    /// Every phase's name, as `/status`, metrics and annotations spell it.
    pub const NAMES: [&'static str; 7] = [
        "waiting",
        "applying",
        "verifying",
        "applied",
        "rejected",
        "failed",
        "rolled-back",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Phase::Waiting { .. } => "waiting",
            Phase::Applying { .. } => "applying",
            Phase::Verifying { .. } => "verifying",
            Phase::Applied { .. } => "applied",
            Phase::Rejected { .. } => "rejected",
            Phase::Failed { .. } => "failed",
            Phase::RolledBack { .. } => "rolled-back",
        }
    }

    /// The version this phase is about: the newest one seen.
    pub fn hash(&self) -> Option<&str> {
        match self {
            Phase::Waiting { .. } => None,
            Phase::Applying { hash }
            | Phase::Verifying { hash }
            | Phase::Applied { hash }
            | Phase::Rejected { hash, .. }
            | Phase::Failed { hash, .. }
            | Phase::RolledBack { hash, .. } => Some(hash),
        }
    }
}

/// The config status: what became of the newest version, and which version the app runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub phase: Phase,
    /// The newest valid version: handed to the actions, or in place without any.
    pub wanted: Option<String>,
    /// The version the app runs on: an action for it succeeded, it was published with no
    /// action to run, or it was found at start. `reconfig_config_info` names it.
    pub applied: Option<String>,
    /// When the phase last changed.
    pub since: SystemTime,
    /// Why the app cannot serve: it runs a version that failed verification, and none was put
    /// back. Readiness says it until a version is verified.
    pub broken: Option<String>,
}

impl Status {
    /// Readiness: `Ok` once a validated config is running; before that, why not.
    pub fn ready(&self) -> Result<(), String> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        if self.applied.is_some() {
            return Ok(());
        }
        Err(self
            .message(false)
            .unwrap_or_else(|| "no validated config yet".to_string()))
    }

    /// Why the newest version is not running; `None` when it is. With `details`, a rejection
    /// quotes the validators in full (they may quote config values).
    pub fn message(&self, details: bool) -> Option<String> {
        match &self.phase {
            Phase::Applied { .. } => None,
            Phase::Waiting { why } | Phase::Failed { why, .. } => Some(why.clone()),
            Phase::Applying { hash } => Some(format!(
                "config {} is valid but not yet applied",
                short(hash)
            )),
            Phase::Verifying { hash } => Some(format!(
                "config {} is in place; verifying that the app took it",
                short(hash)
            )),
            Phase::RolledBack {
                hash,
                to,
                why,
                settled,
            } => Some(format!(
                "config {} failed verification: {why}; rolled back to config {}{}",
                short(hash),
                short(to),
                if *settled {
                    ", which runs now"
                } else {
                    " (verifying it)"
                }
            )),
            Phase::Rejected {
                hash,
                why,
                details: all,
            } => {
                let said = if details { all } else { why };
                let keeping = match &self.applied {
                    Some(h) => format!("the app keeps config {}", short(h)),
                    None => "no valid config yet".to_string(),
                };
                Some(format!(
                    "config {} is invalid: {said}; {keeping}",
                    short(hash)
                ))
            }
        }
    }
}

/// The state as the HTTP endpoints see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub status: Status,
    /// The watcher is running (missing folders make it degraded, not dead).
    pub alive: Result<(), String>,
}

impl View {
    /// What `/readyz` answers: see [`Status::ready`].
    pub fn ready(&self) -> Result<(), String> {
        self.status.ready()
    }
}

/// What happened to a config version, for reporters beyond logs and metrics (Kubernetes Events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The config found at start is valid; nothing was done with it.
    Started { hash: String },
    /// A version is in place: its actions succeeded, or it was published.
    Applied { hash: String, detail: String },
    /// This version is refused; the app keeps its last good one.
    Rejected {
        hash: String,
        /// Everything the validators said, config values included.
        reason: String,
        /// Where and what, quoting no value from the config.
        summary: String,
    },
    /// A valid version that could not be put in place: publishing failed, the actions gave
    /// up, or it failed verification and nothing was put back.
    Failed { hash: String, reason: String },
    /// A version failed verification; the newest verified one (`to`) runs again, verified.
    RolledBack {
        hash: String,
        to: String,
        reason: String,
    },
}

/// Receives every [`Note`] and each new [`Status`]; it must not block, since both come from
/// the event loop.
pub trait NoteSink: Send + Sync {
    fn note(&self, note: &Note);

    /// The config status changed (pod annotations follow it).
    fn status(&self, _status: &Status) {}
}

/// A rollback: the version that failed verification, the one put back, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rollback {
    failed: String,
    to: String,
    why: String,
    /// The version put back is verified again.
    settled: bool,
}

/// Where a valid version stands with the actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// It is the one handed over last and its actions succeeded: nothing to do.
    Running,
    /// It is the one handed over last and the actions are still at it.
    InFlight,
    /// Anything else (never handed over, superseded, given up): it needs an attempt.
    New,
}

/// The config's state machine; see the module documentation.
pub struct ConfigState {
    phase: Phase,
    since: SystemTime,
    applied: Option<String>,
    wanted: Option<String>,
    /// The action task is working on `wanted`: it has sent no final outcome for it yet (with
    /// verification, that is the verdict).
    in_flight: bool,
    /// What the actions did for `wanted`, kept for its note until it is verified.
    acted: Option<String>,
    /// The rollback under way or done last: the failed version, the one put back, and why.
    rollback: Option<Rollback>,
    /// See [`Status::broken`].
    broken: Option<String>,
    /// The phase (and its time) a failed read replaced; reading the same content again
    /// restores it.
    before_unreadable: Option<(Phase, SystemTime)>,
    alive: Result<(), String>,
    view: watch::Sender<View>,
    metrics: Arc<Metrics>,
    sink: Option<Box<dyn NoteSink>>,
}

impl ConfigState {
    /// Starts waiting for a first config; notes go to `sink`, if any.
    pub fn new(metrics: Arc<Metrics>, sink: Option<Box<dyn NoteSink>>) -> Self {
        let phase = Phase::Waiting {
            why: "no validated config yet".into(),
        };
        let since = SystemTime::now();
        let (view, _) = watch::channel(View {
            status: Status {
                phase: phase.clone(),
                wanted: None,
                applied: None,
                since,
                broken: None,
            },
            alive: Ok(()),
        });
        let state = ConfigState {
            phase,
            since,
            applied: None,
            wanted: None,
            in_flight: false,
            acted: None,
            rollback: None,
            broken: None,
            before_unreadable: None,
            alive: Ok(()),
            view,
            metrics,
            sink,
        };
        state.publish();
        state
    }

    /// What `/readyz`, `/status` and `/healthz` read; it follows every transition.
    pub fn view(&self) -> watch::Receiver<View> {
        self.view.subscribe()
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The newest valid version, handed to the actions or applied without any.
    pub fn wanted(&self) -> Option<&str> {
        self.wanted.as_deref()
    }

    /// The version the app runs on, which `reconfig_config_info` shows.
    pub fn applied(&self) -> Option<&str> {
        self.applied.as_deref()
    }

    /// Whether some config was ever valid: without one, there is nothing to keep.
    pub fn has_config(&self) -> bool {
        self.wanted.is_some() || self.applied.is_some()
    }

    /// Where a valid version stands with the actions.
    pub fn progress(&self, hash: &str) -> Progress {
        if self.wanted.as_deref() != Some(hash) {
            Progress::New
        } else if self.in_flight {
            Progress::InFlight
        } else if self.applied.as_deref() == Some(hash) {
            Progress::Running
        } else {
            Progress::New
        }
    }

    /// The config found at start is valid; the app starts with it, so nothing is done.
    pub fn started(&mut self, hash: &str) {
        self.valid();
        self.hand_over(hash, false);
        self.now_running(hash);
        self.set(Phase::Applied {
            hash: hash.to_string(),
        });
        self.note(Note::Started {
            hash: hash.to_string(),
        });
    }

    /// A valid version is in place without any action: it was published, or only validated.
    pub fn applied_without_actions(&mut self, hash: &str, detail: String) {
        self.valid();
        self.hand_over(hash, false);
        self.now_running(hash);
        self.set(Phase::Applied {
            hash: hash.to_string(),
        });
        self.note(Note::Applied {
            hash: hash.to_string(),
            detail,
        });
    }

    /// A valid version that the app already runs ([`Progress::Running`]): nothing to do.
    pub fn already_running(&mut self, hash: &str) {
        self.valid();
        self.set(Phase::Applied {
            hash: hash.to_string(),
        });
    }

    /// A valid version whose actions are still at work ([`Progress::InFlight`]).
    pub fn still_applying(&mut self, hash: &str) {
        self.valid();
        let hash = hash.to_string();
        self.set(if self.acted.is_some() {
            Phase::Verifying { hash }
        } else {
            Phase::Applying { hash }
        });
    }

    /// A valid version goes to the actions.
    pub fn applying(&mut self, hash: &str) {
        self.valid();
        self.hand_over(hash, true);
        self.set(Phase::Applying {
            hash: hash.to_string(),
        });
    }

    /// The action task finished with a version. The phase moves only if it is still about
    /// that version: a newer rejection stays the newest word.
    pub fn action_outcome(&mut self, outcome: ActionOutcome) {
        let wanted = self.wanted.as_deref() == Some(outcome.hash.as_str());
        if wanted && !outcome.verifying {
            self.in_flight = false;
        }
        let current = matches!(&self.phase, Phase::Applying { hash } if *hash == outcome.hash);
        match outcome.result {
            Ok(detail) if outcome.verifying => {
                if wanted {
                    self.acted = Some(detail);
                }
                if current {
                    self.set(Phase::Verifying { hash: outcome.hash });
                }
            }
            Ok(detail) => self.actions_succeeded(&outcome.hash, detail, current),
            Err(gave_up) => {
                if self.rolling_back_to() == Some(outcome.hash.as_str()) {
                    let why = format!(
                        "its actions gave up: {gave_up}: {}",
                        gave_up.errors.join("; ")
                    );
                    return self.rollback_failed(&outcome.hash, &why);
                }
                self.actions_gave_up(&outcome.hash, &gave_up, current)
            }
        }
    }

    /// The config found at start runs (see [`ConfigState::started`]) and is verified now.
    pub fn verifying_at_start(&mut self, hash: &str) {
        self.hand_over(hash, true);
        self.acted = Some("the app started with it".into());
        self.set(Phase::Verifying {
            hash: hash.to_string(),
        });
    }

    /// The version a rollback under way puts back, if one is under way.
    pub fn rolling_back_to(&self) -> Option<&str> {
        self.rollback
            .as_ref()
            .filter(|r| !r.settled && self.wanted.as_deref() == Some(r.to.as_str()))
            .map(|r| r.to.as_str())
    }

    /// A verification finished. Success makes the version applied (or settles the rollback
    /// that put it back); a failure is the engine's to act on first (roll back, or
    /// [`ConfigState::not_verified`]).
    pub fn verified(&mut self, hash: &str, detail: &str) {
        if self.wanted.as_deref() != Some(hash) {
            return;
        }
        self.in_flight = false;
        self.broken = None;
        let acted = self.acted.take().unwrap_or_default();
        let detail = if acted.is_empty() {
            detail.to_string()
        } else {
            format!("{acted}; {detail}")
        };
        if self.rolling_back_to() == Some(hash) {
            let Some(rollback) = self.rollback.as_mut() else {
                return;
            };
            rollback.settled = true;
            let rollback = rollback.clone();
            self.now_running(hash);
            self.metrics.succeeded_now();
            if matches!(&self.phase, Phase::RolledBack { to, .. } if to == hash) {
                self.set(Phase::RolledBack {
                    hash: rollback.failed.clone(),
                    to: rollback.to.clone(),
                    why: rollback.why.clone(),
                    settled: true,
                });
            } else {
                self.publish();
            }
            return self.note(Note::RolledBack {
                hash: rollback.failed,
                to: rollback.to,
                reason: rollback.why,
            });
        }
        let current = matches!(&self.phase, Phase::Verifying { hash: h } if h == hash);
        self.actions_succeeded(hash, detail, current);
    }

    /// The engine puts back `to`, the newest verified version, in place of `failed`, and hands it
    /// to the actions; the pod stays Ready (`to` ran verified before).
    pub fn rolling_back(&mut self, failed: &str, to: &str, why: &str) {
        warn!(hash = %short(failed), to = %short(to), "config failed verification: {why}; rolling back");
        self.metrics.rollbacks.inc();
        self.hand_over(to, true);
        self.acted = None;
        self.rollback = Some(Rollback {
            failed: failed.to_string(),
            to: to.to_string(),
            why: why.to_string(),
            settled: false,
        });
        self.set(Phase::RolledBack {
            hash: failed.to_string(),
            to: to.to_string(),
            why: why.to_string(),
            settled: false,
        });
    }

    /// The version a rollback put back failed too (its verification, or its actions): stop
    /// acting, and let readiness say the pod cannot serve, until the next change.
    pub fn rollback_failed(&mut self, to: &str, why: &str) {
        let Some(rollback) = self.rollback.take() else {
            return;
        };
        self.in_flight = false;
        let message = format!(
            "config {} failed verification: {}; rolled back to config {}, which failed too: {why}; stopped until the next change",
            short(&rollback.failed),
            rollback.why,
            short(to)
        );
        error!("{message}");
        self.cannot_serve(&rollback.failed, message);
    }

    /// A version failed verification and nothing is put back; `why` ends with what would have.
    pub fn not_verified(&mut self, hash: &str, why: &str, instead: &str) {
        if self.wanted.as_deref() != Some(hash) {
            return;
        }
        self.in_flight = false;
        self.acted = None;
        let message = format!(
            "config {} failed verification: {why}; {instead}",
            short(hash)
        );
        error!("{message}");
        self.cannot_serve(hash, message);
    }

    /// The app runs a version that failed verification: nothing known to work runs.
    fn cannot_serve(&mut self, hash: &str, message: String) {
        self.broken = Some(message.clone());
        self.applied = None;
        self.metrics.not_running();
        self.set(Phase::Failed {
            hash: hash.to_string(),
            why: message.clone(),
        });
        self.note(Note::Failed {
            hash: hash.to_string(),
            reason: message,
        });
    }

    /// The newest content is a version that failed verification before: it is not tried
    /// again; the app keeps what it runs.
    pub fn failed_before(&mut self, hash: &str) {
        self.valid();
        let keeping = match &self.applied {
            Some(h) => format!("the app keeps config {}", short(h)),
            None => "no verified config runs".to_string(),
        };
        self.set(Phase::Failed {
            hash: hash.to_string(),
            why: format!(
                "config {} failed verification before and is not tried again (change it to try again); {keeping}",
                short(hash)
            ),
        });
    }

    fn actions_succeeded(&mut self, hash: &str, detail: String, current: bool) {
        self.now_running(hash);
        self.metrics.succeeded_now();
        if current {
            self.set(Phase::Applied {
                hash: hash.to_string(),
            });
        } else {
            self.publish();
        }
        self.note(Note::Applied {
            hash: hash.to_string(),
            detail,
        });
    }

    fn actions_gave_up(&mut self, hash: &str, gave_up: &GaveUp, current: bool) {
        let why = format!(
            "config {} is valid but {gave_up}; waiting for the next change",
            short(hash)
        );
        let reason = format!("{why}: {}", gave_up.errors.join("; "));
        if current {
            self.set(Phase::Failed {
                hash: hash.to_string(),
                why,
            });
        }
        self.note(Note::Failed {
            hash: hash.to_string(),
            reason,
        });
    }

    /// Validation refused this version.
    pub fn rejected(&mut self, hash: &str, problems: &[Invalid]) {
        self.before_unreadable = None;
        let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
        for reason in &reasons {
            error!(hash = %short(hash), "config rejected: {reason}");
        }
        self.metrics.validation_failures.inc();
        self.metrics.config_valid.set(0);
        let summaries: Vec<String> = problems.iter().map(Invalid::summary).collect();
        self.set(Phase::Rejected {
            hash: hash.to_string(),
            why: summaries.join("; "),
            details: reasons.join("; "),
        });
        self.note(Note::Rejected {
            hash: hash.to_string(),
            reason: reasons.join("; "),
            summary: summaries.join("; "),
        });
    }

    /// A valid version could not be published; it is tried again on the next event or resync.
    pub fn publish_failed(&mut self, hash: &str, why: &str) {
        self.before_unreadable = None;
        self.set(Phase::Failed {
            hash: hash.to_string(),
            why: why.to_string(),
        });
        self.note(Note::Failed {
            hash: hash.to_string(),
            reason: why.to_string(),
        });
    }

    /// The folders cannot be read right now; the app keeps what it has, and without a valid
    /// config yet, the sidecar waits.
    pub fn unreadable(&mut self, why: &str) {
        if !self.has_config() {
            self.wait(format!("waiting for a readable config: {why}"));
        }
    }

    /// The folders hold no files and no config ran yet: there is nothing to judge, as if they
    /// were missing.
    pub fn no_files(&mut self, why: String) {
        self.before_unreadable = None;
        self.set(Phase::Waiting { why });
    }

    /// The content judged last was read again: after a failed read, its phase holds again.
    pub fn read_again(&mut self) {
        if let Some((phase, since)) = self.before_unreadable.take() {
            self.phase = phase;
            self.since = since;
            self.publish();
        }
    }

    /// The file watcher is gone: the sidecar is no longer alive.
    pub fn watcher_stopped(&mut self) {
        self.alive = Err("the file watcher stopped".into());
        self.publish();
    }

    /// A folder that exists cannot be watched (`Err`), or every one can again (`Ok`).
    pub fn watcher_health(&mut self, health: Result<(), String>) {
        if self.alive != health {
            self.alive = health;
            self.publish();
        }
    }

    fn wait(&mut self, why: String) {
        if self.before_unreadable.is_none() {
            self.before_unreadable = Some((self.phase.clone(), self.since));
        }
        self.set(Phase::Waiting { why });
    }

    /// The common part of every valid verdict.
    fn valid(&mut self) {
        self.before_unreadable = None;
        self.metrics.config_valid.set(1);
    }

    fn hand_over(&mut self, hash: &str, to_actions: bool) {
        if self.wanted.as_deref() != Some(hash) || !to_actions {
            self.acted = None;
        }
        if self.rolling_back_to() != Some(hash) {
            // A newer version replaces the rollback under way (the newest wins).
            self.rollback = self.rollback.take().filter(|r| r.settled);
        }
        self.wanted = Some(hash.to_string());
        self.in_flight = to_actions;
    }

    /// Callers go on to [`ConfigState::set`] or [`ConfigState::publish`].
    fn now_running(&mut self, hash: &str) {
        self.applied = Some(hash.to_string());
        self.metrics.running(hash);
    }

    fn set(&mut self, phase: Phase) {
        if self.phase != phase {
            self.since = SystemTime::now();
            self.phase = phase;
        }
        self.publish();
    }

    fn publish(&self) {
        let status = Status {
            phase: self.phase.clone(),
            wanted: self.wanted.clone(),
            applied: self.applied.clone(),
            since: self.since,
            broken: self.broken.clone(),
        };
        self.metrics.status(&Phase::NAMES, self.phase.name());
        self.view.send_replace(View {
            status: status.clone(),
            alive: self.alive.clone(),
        });
        if let Some(sink) = &self.sink {
            sink.status(&status);
        }
    }

    fn note(&self, note: Note) {
        if let Some(sink) = &self.sink {
            sink.note(&note);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps every note and status, for the assertions.
    #[derive(Clone, Default)]
    struct Notes(Arc<Mutex<Vec<Note>>>, Arc<Mutex<Vec<Status>>>);

    impl NoteSink for Notes {
        fn note(&self, note: &Note) {
            self.0.lock().expect("lock").push(note.clone());
        }

        fn status(&self, status: &Status) {
            self.1.lock().expect("lock").push(status.clone());
        }
    }

    impl Notes {
        fn take(&self) -> Vec<Note> {
            std::mem::take(&mut *self.0.lock().expect("lock"))
        }

        fn last_status(&self) -> Status {
            self.1
                .lock()
                .expect("lock")
                .last()
                .cloned()
                .expect("a status")
        }
    }

    fn state() -> (ConfigState, watch::Receiver<View>, Notes, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let notes = Notes::default();
        let state = ConfigState::new(metrics.clone(), Some(Box::new(notes.clone())));
        let view = state.view();
        (state, view, notes, metrics)
    }

    fn ready(view: &watch::Receiver<View>) -> Result<(), String> {
        view.borrow().ready()
    }

    fn status(view: &watch::Receiver<View>) -> Status {
        view.borrow().status.clone()
    }

    fn lines(metrics: &Metrics, prefix: &str) -> String {
        let text = metrics.encode();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn info(metrics: &Metrics) -> String {
        lines(metrics, "reconfig_config_info{")
    }

    /// The phase `reconfig_config_status` says is current; exactly one is 1.
    fn gauge(metrics: &Metrics) -> String {
        let text = lines(metrics, "reconfig_config_status{");
        let on: Vec<&str> = text.lines().filter(|l| l.ends_with(" 1")).collect();
        assert_eq!(text.lines().count(), Phase::NAMES.len(), "{text}");
        assert_eq!(on.len(), 1, "{text}");
        on[0].split('"').nth(1).expect("label").to_string()
    }

    fn succeeded(hash: &str) -> ActionOutcome {
        ActionOutcome {
            hash: hash.into(),
            result: Ok("SIGHUP sent".into()),
            verifying: false,
        }
    }

    fn gave_up(hash: &str) -> ActionOutcome {
        ActionOutcome {
            hash: hash.into(),
            result: Err(GaveUp {
                actions: vec!["webhook", "exec"],
                attempts: 3,
                errors: vec!["answered 503".into(), "exit 1".into()],
            }),
            verifying: false,
        }
    }

    fn invalid() -> Invalid {
        Invalid {
            detail: Some("\"hunter2\" is not a number".into()),
            ..Invalid::new("app.yaml", "not YAML")
        }
    }

    const H1: &str = "1111111111111111";
    const H2: &str = "2222222222222222";
    const H3: &str = "3333333333333333";

    #[test]
    fn ready_once_a_first_valid_config_runs_and_from_then_on() {
        let (mut state, view, notes, metrics) = state();
        assert_eq!(ready(&view), Err("no validated config yet".into()));
        assert_eq!(gauge(&metrics), "waiting");
        state.unreadable("no such folder");
        assert_eq!(
            ready(&view),
            Err("waiting for a readable config: no such folder".into())
        );
        state.started(H1);
        assert_eq!(ready(&view), Ok(()));
        assert_eq!(gauge(&metrics), "applied");
        assert_eq!(notes.take(), vec![Note::Started { hash: H1.into() }]);
        state.unreadable("gone again");
        assert_eq!(ready(&view), Ok(()), "the app keeps its config");
        assert_eq!(state.phase().name(), "applied");
        state.rejected(H2, &[invalid()]);
        assert_eq!(ready(&view), Ok(()), "a rejected edit keeps the pod ready");
        assert_eq!(gauge(&metrics), "rejected");
    }

    #[test]
    fn applied_only_once_the_actions_succeed() {
        let (mut state, view, notes, metrics) = state();
        state.started(H1);
        notes.take();
        state.applying(H2);
        assert_eq!(ready(&view), Ok(()), "H1 still serves");
        let now = status(&view);
        assert_eq!(
            now.message(false).as_deref(),
            Some("config 222222222222 is valid but not yet applied")
        );
        assert_eq!(
            (now.wanted.as_deref(), now.applied.as_deref()),
            (Some(H2), Some(H1))
        );
        assert_eq!(state.progress(H2), Progress::InFlight);
        assert!(info(&metrics).contains(H1), "{}", info(&metrics));
        assert_eq!(gauge(&metrics), "applying");
        assert_eq!(notes.last_status(), now, "the sink hears every status");
        state.action_outcome(succeeded(H2));
        assert_eq!(state.phase(), &Phase::Applied { hash: H2.into() });
        assert_eq!(state.progress(H2), Progress::Running);
        assert_eq!(status(&view).applied.as_deref(), Some(H2));
        assert_eq!(status(&view).message(false), None);
        assert_eq!(
            info(&metrics),
            format!("reconfig_config_info{{hash=\"{H2}\"}} 1")
        );
        assert_eq!(
            notes.take(),
            vec![Note::Applied {
                hash: H2.into(),
                detail: "SIGHUP sent".into()
            }]
        );
    }

    #[test]
    fn actions_that_give_up_fail_the_version_and_a_revert_to_it_is_new() {
        let (mut state, view, notes, metrics) = state();
        state.started(H1);
        notes.take();
        state.applying(H2);
        state.action_outcome(gave_up(H2));
        let why = "config 222222222222 is valid but webhook, exec failed 3 times; waiting for the next change";
        assert_eq!(
            state.phase(),
            &Phase::Failed {
                hash: H2.into(),
                why: why.into()
            }
        );
        assert_eq!(ready(&view), Ok(()), "the app still runs H1");
        assert_eq!(status(&view).message(false).as_deref(), Some(why));
        assert_eq!(
            notes.take(),
            vec![Note::Failed {
                hash: H2.into(),
                reason: format!("{why}: answered 503; exit 1"),
            }]
        );
        assert!(info(&metrics).contains(H1), "the app still runs H1");
        assert_eq!(gauge(&metrics), "failed");
        assert_eq!(
            state.progress(H2),
            Progress::New,
            "a version that never reached the app is a new attempt"
        );
        assert_eq!(
            state.progress(H1),
            Progress::New,
            "the app was last told of H2: going back to H1 tells it again"
        );
    }

    #[test]
    fn a_revert_while_the_actions_work_is_still_applying() {
        let (mut state, view, _, metrics) = state();
        state.started(H1);
        state.applying(H2);
        state.rejected(H3, &[invalid()]);
        assert_eq!(state.progress(H2), Progress::InFlight);
        state.still_applying(H2);
        assert_eq!(state.phase(), &Phase::Applying { hash: H2.into() });
        assert_eq!(status(&view).applied.as_deref(), Some(H1));
        assert_eq!(gauge(&metrics), "applying");
        state.action_outcome(succeeded(H2));
        assert_eq!(state.phase(), &Phase::Applied { hash: H2.into() });
        assert_eq!(state.progress(H2), Progress::Running);
    }

    #[test]
    fn a_late_outcome_does_not_hide_a_newer_rejection() {
        let (mut state, view, notes, metrics) = state();
        state.started(H1);
        state.applying(H2);
        state.rejected(H3, &[invalid()]);
        notes.take();
        state.action_outcome(succeeded(H2));
        let now = status(&view);
        assert_eq!(now.phase.name(), "rejected");
        assert_eq!(now.applied.as_deref(), Some(H2), "the app runs H2 now");
        assert!(
            now.message(false)
                .is_some_and(|m| m.ends_with("the app keeps config 222222222222")),
            "{now:?}"
        );
        assert!(info(&metrics).contains(H2));
        assert!(matches!(&notes.take()[..], [Note::Applied { hash, .. }] if hash == H2));
        state.applying(H1);
        state.rejected(H3, &[invalid()]);
        state.action_outcome(gave_up(H1));
        assert_eq!(state.phase().name(), "rejected", "still the newest word");
    }

    #[test]
    fn a_rejection_counts_says_what_the_app_keeps_and_quotes_nothing_unasked() {
        let (mut state, view, notes, metrics) = state();
        state.rejected(H1, &[invalid()]);
        assert_eq!(
            ready(&view),
            Err("config 111111111111 is invalid: app.yaml: not YAML; no valid config yet".into())
        );
        state.started(H2);
        notes.take();
        state.rejected(H1, &[invalid()]);
        let now = status(&view);
        assert_eq!(
            now.message(false).as_deref(),
            Some("config 111111111111 is invalid: app.yaml: not YAML; the app keeps config 222222222222")
        );
        assert!(now
            .message(true)
            .is_some_and(|m| m.contains("\"hunter2\" is not a number")));
        assert!(matches!(&notes.take()[..], [Note::Rejected { hash, .. }] if hash == H1));
        let text = metrics.encode();
        assert!(
            text.contains("reconfig_validation_failures_total 2"),
            "{text}"
        );
        assert!(text.contains("reconfig_config_valid 0"), "{text}");
    }

    #[test]
    fn a_read_that_works_again_restores_the_phase_it_replaced() {
        let (mut state, view, _, _) = state();
        state.rejected(H1, &[invalid()]);
        let rejected = status(&view);
        state.unreadable("cannot read app.yaml");
        assert_eq!(status(&view).phase.name(), "waiting");
        state.unreadable("still not");
        state.read_again();
        assert_eq!(status(&view), rejected, "the phase and its time");
        state.read_again();
        assert_eq!(status(&view), rejected, "nothing to restore twice");
        state.no_files("vol holds no files".into());
        state.read_again();
        assert_eq!(status(&view).phase.name(), "waiting");
    }

    #[test]
    fn a_failed_publish_fails_the_version_and_a_stopped_watcher_is_not_alive() {
        let (mut state, view, notes, _) = state();
        state.started(H1);
        notes.take();
        state.publish_failed(H2, "cannot stage the config: disk full");
        assert_eq!(
            status(&view).message(false).as_deref(),
            Some("cannot stage the config: disk full")
        );
        assert_eq!(ready(&view), Ok(()));
        assert_eq!(
            notes.take(),
            vec![Note::Failed {
                hash: H2.into(),
                reason: "cannot stage the config: disk full".into()
            }]
        );
        assert_eq!(state.progress(H1), Progress::Running);
        assert_eq!(view.borrow().alive, Ok(()));
        state.watcher_stopped();
        assert_eq!(view.borrow().alive, Err("the file watcher stopped".into()));
    }

    fn acted(hash: &str) -> ActionOutcome {
        ActionOutcome {
            hash: hash.into(),
            result: Ok("SIGHUP sent".into()),
            verifying: true,
        }
    }

    #[test]
    fn with_verification_applied_only_once_verified_and_a_rollback_keeps_the_pod_ready() {
        let (mut state, view, notes, metrics) = state();
        state.started(H1);
        notes.take();
        state.applying(H2);
        state.action_outcome(acted(H2));
        assert_eq!(state.phase(), &Phase::Verifying { hash: H2.into() });
        assert_eq!(
            state.progress(H2),
            Progress::InFlight,
            "verification is still at work"
        );
        assert_eq!(
            status(&view).applied.as_deref(),
            Some(H1),
            "not applied before verified"
        );
        assert_eq!(gauge(&metrics), "verifying");
        state.verified(H2, "verified after 3 ms (1 try)");
        assert_eq!(state.phase(), &Phase::Applied { hash: H2.into() });
        assert_eq!(
            notes.take(),
            vec![Note::Applied {
                hash: H2.into(),
                detail: "SIGHUP sent; verified after 3 ms (1 try)".into()
            }]
        );

        state.applying(H3);
        state.action_outcome(acted(H3));
        state.rolling_back(H3, H2, "GET /healthz answered 500");
        assert_eq!(state.rolling_back_to(), Some(H2));
        assert_eq!(ready(&view), Ok(()), "H2 ran verified; the pod stays ready");
        assert_eq!(gauge(&metrics), "rolled-back");
        assert!(notes.take().is_empty(), "reported once H2 runs again");
        state.action_outcome(acted(H2));
        state.verified(H2, "verified");
        assert_eq!(state.rolling_back_to(), None);
        assert_eq!(
            status(&view).message(false).as_deref(),
            Some("config 333333333333 failed verification: GET /healthz answered 500; rolled back to config 222222222222, which runs now")
        );
        assert_eq!(
            notes.take(),
            vec![Note::RolledBack {
                hash: H3.into(),
                to: H2.into(),
                reason: "GET /healthz answered 500".into()
            }]
        );
        assert_eq!(metrics.rollbacks.get(), 1);
        assert_eq!(ready(&view), Ok(()));
    }

    #[test]
    fn a_rollback_that_fails_too_stops_and_readiness_says_why_until_a_version_is_verified() {
        let (mut state, view, notes, metrics) = state();
        state.started(H1);
        state.applying(H2);
        state.action_outcome(acted(H2));
        state.rolling_back(H2, H1, "answered 500");
        state.action_outcome(acted(H1));
        state.rollback_failed(H1, "answered 503");
        notes.take();
        let why = ready(&view).expect_err("cannot serve");
        assert!(
            why.contains("which failed too: answered 503; stopped"),
            "{why}"
        );
        assert_eq!(state.phase().name(), "failed");
        assert_eq!(status(&view).applied, None);
        assert!(!info(&metrics).contains("hash="), "{}", info(&metrics));
        state.rejected(H3, &[invalid()]);
        assert!(
            ready(&view).is_err(),
            "a rejection changes nothing about what runs"
        );
        state.applying(H3);
        state.action_outcome(acted(H3));
        state.verified(H3, "verified");
        assert_eq!(ready(&view), Ok(()));
        assert_eq!(state.phase(), &Phase::Applied { hash: H3.into() });
    }

    #[test]
    fn since_moves_only_when_the_phase_changes() {
        let (mut state, view, _, _) = state();
        state.started(H1);
        let first = status(&view).since;
        std::thread::sleep(std::time::Duration::from_millis(5));
        state.already_running(H1);
        assert_eq!(status(&view).since, first);
        state.rejected(H2, &[invalid()]);
        assert!(status(&view).since > first);
    }
}
