//! The config's state and its transitions: which version is wanted, which one the app runs,
//! and what became of the newest one.
//!
//! Readiness, the `reconfig_config_info` and `reconfig_config_valid` metrics and every [`Note`]
//! for the reporters (Kubernetes Events, pod annotations) are derived here, by the transition
//! that changes them, so they change together. The event loop owns the one [`ConfigState`];
//! `/readyz` and `/healthz` read the [`View`] it publishes after every transition.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::error;

use super::metrics::Metrics;
use crate::reload::{short, ActionOutcome, GaveUp};
use crate::validate::Invalid;

/// What became of the newest config version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No valid config yet: none read, or none readable.
    Waiting { why: String },
    /// Valid (and published); its actions have not succeeded yet.
    Applying { hash: String },
    /// Valid and in place.
    Applied { hash: String },
    /// Validation refused it; the app keeps its last good config.
    Rejected { hash: String, why: String },
    /// Valid, but it could not be put in place: publishing failed, or the actions gave up.
    Failed { hash: String, why: String },
}

impl Phase {
    /// What `/readyz` answers: ready only when the newest version is in place.
    pub fn readiness(&self) -> Result<(), String> {
        match self {
            Phase::Applied { .. } => Ok(()),
            Phase::Applying { hash } => Err(format!(
                "config {} is valid but not yet applied",
                short(hash)
            )),
            Phase::Waiting { why } | Phase::Rejected { why, .. } | Phase::Failed { why, .. } => {
                Err(why.clone())
            }
        }
    }
}

/// The state as the HTTP endpoints see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub phase: Phase,
    /// The version `reconfig_config_info` shows.
    pub applied: Option<String>,
    /// The watcher is running (missing folders make it degraded, not dead).
    pub alive: Result<(), String>,
}

impl View {
    /// What `/readyz` answers: `Ok` when the newest config is valid and applied; otherwise why not.
    pub fn ready(&self) -> Result<(), String> {
        self.phase.readiness()
    }
}

/// What happened to a config version, for reporters beyond logs and metrics (Kubernetes Events, pod annotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The config found at start is valid; nothing was done with it.
    Started { hash: String },
    /// A changed config is valid and in place: its actions succeeded, or it was published.
    Applied { hash: String, detail: String },
    /// Validation refused this version; the app keeps its last good one.
    Rejected {
        hash: String,
        /// Everything the validators said, config values included.
        reason: String,
        /// Where and what, quoting no value from the config.
        summary: String,
    },
    /// A valid version that could not be put in place: publishing failed, or the actions gave up.
    Failed { hash: String, reason: String },
}

/// Receives every [`Note`]; it must not block, since notes come from the event loop.
pub trait NoteSink: Send + Sync {
    fn note(&self, note: &Note);
}

/// The verdict on the content judged last, which a read that works again restores.
#[derive(Debug, Clone)]
struct Verdict {
    hash: String,
    /// `Err` holds the rejection's readiness message.
    valid: Result<(), String>,
}

/// The config's state machine; see the module documentation.
pub struct ConfigState {
    phase: Phase,
    /// The version an action succeeded for, or that was published or found at start: the one
    /// `reconfig_config_info` shows.
    applied: Option<String>,
    /// The newest valid version: handed to the actions, or applied without any.
    wanted: Option<String>,
    verdict: Option<Verdict>,
    /// A read failed since `verdict` was given; reading the same content again restores it.
    degraded: bool,
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
        let (view, _) = watch::channel(View {
            phase: phase.clone(),
            applied: None,
            alive: Ok(()),
        });
        ConfigState {
            phase,
            applied: None,
            wanted: None,
            verdict: None,
            degraded: false,
            alive: Ok(()),
            view,
            metrics,
            sink,
        }
    }

    /// What `/readyz` and `/healthz` read; it follows every transition.
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

    /// The version `reconfig_config_info` shows.
    pub fn applied(&self) -> Option<&str> {
        self.applied.as_deref()
    }

    /// The config found at start is valid; the app starts with it, so nothing is done.
    pub fn started(&mut self, hash: &str) {
        self.valid(hash);
        self.wanted = Some(hash.to_string());
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
        self.valid(hash);
        self.wanted = Some(hash.to_string());
        self.now_running(hash);
        self.set(Phase::Applied {
            hash: hash.to_string(),
        });
        self.note(Note::Applied {
            hash: hash.to_string(),
            detail,
        });
    }

    /// A valid version that is already the wanted one: nothing to do.
    pub fn valid_and_wanted(&mut self, hash: &str) {
        self.valid(hash);
        self.set(Phase::Applied {
            hash: hash.to_string(),
        });
    }

    /// A valid version goes to the actions.
    pub fn applying(&mut self, hash: &str) {
        self.valid(hash);
        self.wanted = Some(hash.to_string());
        self.set(Phase::Applying {
            hash: hash.to_string(),
        });
    }

    /// The action task finished with a version.
    pub fn action_outcome(&mut self, outcome: ActionOutcome) {
        match outcome.result {
            Ok(detail) => self.actions_succeeded(&outcome.hash, detail),
            Err(gave_up) => self.actions_gave_up(&outcome.hash, &gave_up),
        }
    }

    fn actions_succeeded(&mut self, hash: &str, detail: String) {
        self.now_running(hash);
        self.metrics.succeeded_now();
        self.set(Phase::Applied {
            hash: hash.to_string(),
        });
        self.note(Note::Applied {
            hash: hash.to_string(),
            detail,
        });
    }

    fn actions_gave_up(&mut self, hash: &str, gave_up: &GaveUp) {
        let why = format!(
            "config {} is valid but {gave_up}; waiting for the next change",
            short(hash)
        );
        let reason = format!("{why}: {}", gave_up.errors.join("; "));
        self.set(Phase::Failed {
            hash: hash.to_string(),
            why,
        });
        self.note(Note::Failed {
            hash: hash.to_string(),
            reason,
        });
    }

    /// Validation refused this version.
    pub fn rejected(&mut self, hash: &str, problems: &[Invalid]) {
        self.degraded = false;
        let why = self.reject(hash, problems);
        self.verdict = Some(Verdict {
            hash: hash.to_string(),
            valid: Err(why),
        });
    }

    /// Content that cannot be forwarded at all (a file over the size limit, two folders with
    /// one file name): rejected without a hash, and judged again once it reads differently.
    pub fn unforwardable(&mut self, problem: Invalid) {
        self.degraded = true;
        self.reject("-", &[problem]);
    }

    /// A valid version could not be published; it is tried again on the next event or resync.
    pub fn publish_failed(&mut self, hash: &str, why: &str) {
        self.degraded = false;
        self.verdict = None;
        self.set(Phase::Failed {
            hash: hash.to_string(),
            why: why.to_string(),
        });
        self.note(Note::Failed {
            hash: hash.to_string(),
            reason: why.to_string(),
        });
    }

    /// The folders cannot be read; the app keeps what it has, and without a valid config yet,
    /// the sidecar waits.
    pub fn unreadable(&mut self, why: &str) {
        self.degraded = true;
        if self.wanted.is_none() {
            self.set(Phase::Waiting {
                why: format!("waiting for a readable config: {why}"),
            });
        }
    }

    /// The content judged last was read again: after a failed read, its verdict holds again.
    pub fn read_again(&mut self) {
        if !std::mem::take(&mut self.degraded) {
            return;
        }
        let Some(verdict) = self.verdict.clone() else {
            return;
        };
        self.set(match verdict.valid {
            Ok(()) => Phase::Applied { hash: verdict.hash },
            Err(why) => Phase::Rejected {
                hash: verdict.hash,
                why,
            },
        });
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

    /// The common part of every valid verdict.
    fn valid(&mut self, hash: &str) {
        self.degraded = false;
        self.verdict = Some(Verdict {
            hash: hash.to_string(),
            valid: Ok(()),
        });
        self.metrics.config_valid.set(1);
    }

    /// Logs, counts and reports a rejection; returns the readiness message.
    fn reject(&mut self, hash: &str, problems: &[Invalid]) -> String {
        let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
        for reason in &reasons {
            error!(hash = %short(hash), "config rejected: {reason}");
        }
        self.metrics.validation_failures.inc();
        self.metrics.config_valid.set(0);
        let keeping = match &self.wanted {
            Some(h) => format!("the app keeps config {}", short(h)),
            None => "no valid config yet".to_string(),
        };
        let why = format!(
            "config {} is invalid: {}; {keeping}",
            short(hash),
            reasons.first().map_or("", String::as_str)
        );
        self.set(Phase::Rejected {
            hash: hash.to_string(),
            why: why.clone(),
        });
        let summaries: Vec<String> = problems.iter().map(Invalid::summary).collect();
        self.note(Note::Rejected {
            hash: hash.to_string(),
            reason: reasons.join("; "),
            summary: summaries.join("; "),
        });
        why
    }

    /// Callers go on to [`ConfigState::set`], which publishes it.
    fn now_running(&mut self, hash: &str) {
        self.applied = Some(hash.to_string());
        self.metrics.running(hash);
    }

    fn set(&mut self, phase: Phase) {
        self.phase = phase;
        self.publish();
    }

    fn publish(&self) {
        self.view.send_replace(View {
            phase: self.phase.clone(),
            applied: self.applied.clone(),
            alive: self.alive.clone(),
        });
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

    /// Keeps every note, for the assertions.
    #[derive(Clone, Default)]
    struct Notes(Arc<Mutex<Vec<Note>>>);

    impl NoteSink for Notes {
        fn note(&self, note: &Note) {
            self.0.lock().expect("lock").push(note.clone());
        }
    }

    impl Notes {
        fn take(&self) -> Vec<Note> {
            std::mem::take(&mut *self.0.lock().expect("lock"))
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

    fn info(metrics: &Metrics) -> String {
        let text = metrics.encode();
        text.lines()
            .filter(|l| l.starts_with("reconfig_config_info{"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    const H1: &str = "1111111111111111";
    const H2: &str = "2222222222222222";

    #[test]
    fn waits_until_a_first_valid_config() {
        let (mut state, view, notes, _) = state();
        assert_eq!(ready(&view), Err("no validated config yet".into()));
        state.unreadable("no such folder");
        assert_eq!(
            ready(&view),
            Err("waiting for a readable config: no such folder".into())
        );
        state.started(H1);
        assert_eq!(ready(&view), Ok(()));
        assert_eq!(notes.take(), vec![Note::Started { hash: H1.into() }]);
        state.unreadable("gone again");
        assert_eq!(ready(&view), Ok(()), "the app keeps its config");
    }

    #[test]
    fn applied_only_once_the_actions_succeed() {
        let (mut state, view, notes, metrics) = state();
        state.started(H1);
        notes.take();
        state.applying(H2);
        assert_eq!(
            ready(&view),
            Err("config 222222222222 is valid but not yet applied".into())
        );
        assert_eq!((state.wanted(), state.applied()), (Some(H2), Some(H1)));
        assert!(info(&metrics).contains(H1), "{}", info(&metrics));
        state.action_outcome(ActionOutcome {
            hash: H2.into(),
            result: Ok("SIGHUP sent".into()),
        });
        assert_eq!(ready(&view), Ok(()));
        assert_eq!(state.applied(), Some(H2));
        assert_eq!(view.borrow().applied.as_deref(), Some(H2));
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
    fn actions_that_give_up_fail_the_version() {
        let (mut state, view, notes, metrics) = state();
        state.started(H1);
        notes.take();
        state.applying(H2);
        state.action_outcome(ActionOutcome {
            hash: H2.into(),
            result: Err(GaveUp {
                actions: vec!["webhook", "exec"],
                attempts: 3,
                errors: vec!["answered 503".into(), "exit 1".into()],
            }),
        });
        let why = "config 222222222222 is valid but webhook, exec failed 3 times; waiting for the next change";
        assert_eq!(ready(&view), Err(why.into()));
        assert_eq!(
            state.phase(),
            &Phase::Failed {
                hash: H2.into(),
                why: why.into()
            }
        );
        assert_eq!(
            notes.take(),
            vec![Note::Failed {
                hash: H2.into(),
                reason: format!("{why}: answered 503; exit 1"),
            }]
        );
        assert!(info(&metrics).contains(H1), "the app still runs H1");
    }

    #[test]
    fn a_rejection_counts_and_says_what_the_app_keeps() {
        let (mut state, view, notes, metrics) = state();
        state.rejected(H1, &[Invalid::new("app.yaml", "not YAML")]);
        let first = ready(&view).unwrap_err();
        assert!(
            first.starts_with("config 111111111111 is invalid: ")
                && first.ends_with("; no valid config yet"),
            "{first}"
        );
        state.started(H2);
        notes.take();
        state.rejected(H1, &[Invalid::new("app.yaml", "not YAML")]);
        let why = ready(&view).unwrap_err();
        assert!(
            why.ends_with("; the app keeps config 222222222222"),
            "{why}"
        );
        assert!(matches!(&notes.take()[..], [Note::Rejected { hash, .. }] if hash == H1));
        let text = metrics.encode();
        assert!(
            text.contains("reconfig_validation_failures_total 2"),
            "{text}"
        );
        assert!(text.contains("reconfig_config_valid 0"), "{text}");
    }

    #[test]
    fn a_read_that_works_again_restores_the_last_verdict() {
        let (mut state, view, _, _) = state();
        state.rejected(H1, &[Invalid::new("app.yaml", "not YAML")]);
        let rejected = ready(&view);
        state.unforwardable(Invalid::new("big.yaml is too large", "not forwarded"));
        assert_ne!(ready(&view), rejected);
        state.read_again();
        assert_eq!(ready(&view), rejected);

        state.started(H2);
        state.unforwardable(Invalid::new("big.yaml is too large", "not forwarded"));
        assert!(ready(&view).is_err());
        state.read_again();
        assert_eq!(ready(&view), Ok(()));
        state.rejected(H1, &[Invalid::new("app.yaml", "not YAML")]);
        state.read_again();
        assert!(ready(&view).is_err(), "nothing failed: nothing to restore");
    }

    #[test]
    fn a_failed_publish_is_not_restored_and_a_stopped_watcher_is_not_alive() {
        let (mut state, view, notes, _) = state();
        state.started(H1);
        notes.take();
        state.publish_failed(H2, "cannot stage the config: disk full");
        assert_eq!(
            ready(&view),
            Err("cannot stage the config: disk full".into())
        );
        assert_eq!(
            notes.take(),
            vec![Note::Failed {
                hash: H2.into(),
                reason: "cannot stage the config: disk full".into()
            }]
        );
        state.unreadable("gone");
        state.read_again();
        assert!(ready(&view).is_err());
        assert_eq!(view.borrow().alive, Ok(()));
        state.watcher_stopped();
        assert_eq!(view.borrow().alive, Err("the file watcher stopped".into()));
    }
}
