//! One evaluation of the watched folders: read → validate → publish → act.
//!
//! The engine remembers only what it needs to skip work (the content it judged last); what an
//! evaluation means for readiness, metrics and reports is up to the [`ConfigState`] it drives.
//! A version is forwarded or it is rejected: content that cannot be read whole (over a limit,
//! two folders with one file name) is a rejection too, under an identity of its own, and a
//! folder with no files is no config at all (unless `--allow-empty`).
//! Action outcomes come back through the same engine, so every transition happens on the event
//! loop, in the order things happened.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::{debug, error, info, warn};

use super::metrics::Metrics;
use super::publish::Publisher;
use super::state::{ConfigState, Progress};
use crate::config::{self, read::Snapshot, ReadError};
use crate::policy::{Finding, Folders};
use crate::reload::{short, ActionOutcome, Actions, Version};
use crate::validate::Invalid;

/// What to do with the valid config found at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtStart {
    /// Record it and run no action: the app starts with it anyway.
    Record,
    /// Run the actions for it too (`--reload-on-start`).
    Reload,
}

/// What a valid version that is not the wanted one yet leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnValid {
    Record,
    Act,
}

/// What the engine is built from.
pub struct Parts {
    pub dirs: Vec<PathBuf>,
    pub limits: config::Limits,
    pub validator: Folders,
    pub publisher: Option<Publisher>,
    pub state: ConfigState,
    pub actions: Actions,
    pub has_actions: bool,
    pub metrics: Arc<Metrics>,
    /// A folder with no files is a config (`--allow-empty`), not one still to come.
    pub allow_empty: bool,
}

/// The read → validate → publish → act pipeline and what it remembers between runs.
pub struct Engine {
    dirs: Vec<PathBuf>,
    limits: config::Limits,
    validator: Folders,
    publisher: Option<Publisher>,
    state: ConfigState,
    actions: Actions,
    has_actions: bool,
    metrics: Arc<Metrics>,
    allow_empty: bool,
    /// Hash of the newest content judged, valid or not (or the identity of content that could
    /// not be read whole): the same bytes are not judged twice.
    seen: Option<String>,
}

impl Engine {
    pub fn new(parts: Parts) -> Self {
        Engine {
            dirs: parts.dirs,
            limits: parts.limits,
            validator: parts.validator,
            publisher: parts.publisher,
            state: parts.state,
            actions: parts.actions,
            has_actions: parts.has_actions,
            metrics: parts.metrics,
            allow_empty: parts.allow_empty,
            seen: None,
        }
    }

    /// The first evaluation.
    pub async fn start(&mut self, at_start: AtStart) {
        let on_valid = match at_start {
            AtStart::Record => OnValid::Record,
            AtStart::Reload => OnValid::Act,
        };
        self.judge(on_valid).await;
    }

    /// Every later evaluation: a valid change goes to the actions.
    pub async fn evaluate(&mut self) {
        self.judge(OnValid::Act).await;
    }

    /// Waits for the action task to finish with a version.
    pub async fn next_outcome(&mut self) -> Option<ActionOutcome> {
        self.actions.outcome().await
    }

    pub fn settle(&mut self, outcome: ActionOutcome) {
        self.state.action_outcome(outcome);
    }

    /// The file watcher reported an error; it keeps running.
    pub fn watcher_error(&self, e: &str) {
        warn!("file watcher: {e}");
        self.metrics.watcher_errors.inc();
    }

    pub fn watcher_stopped(&mut self) {
        self.state.watcher_stopped();
    }

    /// Whether every existing folder is watched (see `Volumes::health`).
    pub fn watcher_health(&mut self, health: Result<(), String>) {
        self.state.watcher_health(health);
    }

    /// Applies outcomes that arrived while the engine was busy, before anything newer.
    fn catch_up(&mut self) {
        while let Some(outcome) = self.actions.arrived() {
            self.state.action_outcome(outcome);
        }
    }

    async fn judge(&mut self, on_valid: OnValid) {
        self.catch_up();
        let snapshot = match Snapshot::read(&self.dirs, self.limits) {
            Ok(s) => s,
            Err(e) => return self.unreadable(e),
        };
        let hash = snapshot.hash();
        if self.seen.as_deref() == Some(hash.as_str()) {
            debug!(hash = %short(&hash), "content unchanged");
            self.state.read_again();
            return;
        }
        self.seen = Some(hash.clone());
        let empty = if self.allow_empty {
            None
        } else {
            empty_folder(&self.dirs, &snapshot).map(Path::to_path_buf)
        };
        if let (Some(dir), false) = (&empty, self.state.has_config()) {
            let why = format!(
                "{} holds no files yet; waiting for a config (--allow-empty accepts an empty one)",
                dir.display()
            );
            info!("{why}");
            return self.state.no_files(why);
        }

        let problems = denials(self.validator.check(&snapshot.files));
        if !problems.is_empty() {
            return self.state.rejected(&hash, &problems);
        }
        let stage = match &self.publisher {
            Some(p) => match p.stage(&snapshot) {
                Ok(stage) => Some(stage),
                Err(e) => {
                    return self.publish_failed(&hash, &format!("cannot stage the config: {e}"))
                }
            },
            None => None,
        };
        if self.validator.has_commands(&snapshot.files) {
            let dir = stage
                .as_ref()
                .map(|s| s.path.as_path())
                .or_else(|| snapshot.folder())
                .unwrap_or(Path::new(""));
            let findings = self.validator.run_commands(&snapshot.files, dir).await;
            self.catch_up();
            let problems = denials(findings);
            if !problems.is_empty() {
                if let (Some(p), Some(stage)) = (&self.publisher, stage) {
                    p.discard(stage);
                }
                return self.state.rejected(&hash, &problems);
            }
        }
        if let Some(dir) = empty {
            if let (Some(p), Some(stage)) = (&self.publisher, stage) {
                p.discard(stage);
            }
            let problem = Invalid::new(
                &dir.display().to_string(),
                "holds no files; not forwarded (--allow-empty forwards an empty folder)",
            );
            return self.state.rejected(&hash, &[problem]);
        }
        if let (Some(p), Some(stage)) = (&self.publisher, stage) {
            if let Err(e) = p.commit(stage) {
                return self.publish_failed(&hash, &e.to_string());
            }
            info!(hash = %short(&hash), "published");
        }
        match self.state.progress(&hash) {
            Progress::Running => {
                info!(hash = %short(&hash), "config is valid and already running; nothing to do");
                return self.state.already_running(&hash);
            }
            Progress::InFlight => {
                info!(hash = %short(&hash), "config is valid and its actions are still at work; waiting for them");
                return self.state.still_applying(&hash);
            }
            Progress::New => {}
        }
        let files = snapshot.files.len();
        match on_valid {
            OnValid::Record => {
                info!(hash = %short(&hash), files, "config is valid");
                self.state.started(&hash);
            }
            OnValid::Act if !self.has_actions => {
                info!(hash = %short(&hash), files, "config is valid");
                let detail = match &self.publisher {
                    Some(p) => format!("published to {}", p.root().display()),
                    None => "validated (no action configured)".to_string(),
                };
                self.state.applied_without_actions(&hash, detail);
            }
            OnValid::Act => {
                info!(hash = %short(&hash), files, "config is valid; reloading");
                self.state.applying(&hash);
                self.actions.apply(Version { hash });
            }
        }
    }

    fn unreadable(&mut self, e: ReadError) {
        if e.rejects_config() {
            let why = e.to_string();
            let identity = unread_identity(&self.dirs, &why);
            if self.seen.as_deref() == Some(identity.as_str()) {
                debug!(hash = %short(&identity), "still not forwarded: {why}");
                return;
            }
            self.seen = Some(identity.clone());
            self.state
                .rejected(&identity, &[Invalid::new(&why, "not forwarded")]);
        } else {
            self.metrics.watcher_errors.inc();
            warn!("cannot read the config: {e}; keeping the last good one");
            self.state.unreadable(&e.to_string());
        }
    }

    /// Publishing failed: the same content is tried again on the next event or resync.
    fn publish_failed(&mut self, hash: &str, why: &str) {
        error!("{why}");
        self.seen = None;
        self.metrics.watcher_errors.inc();
        self.state.publish_failed(hash, why);
    }
}

/// The first watched folder that holds no file, if any (a single-file `--dir` always holds one).
fn empty_folder<'a>(dirs: &'a [PathBuf], snapshot: &Snapshot) -> Option<&'a Path> {
    dirs.iter()
        .find(|dir| {
            !snapshot
                .files
                .iter()
                .any(|file| Path::new(&file.path).starts_with(dir))
        })
        .map(PathBuf::as_path)
}

/// The identity of a version that could not be read whole, in place of its content hash: the
/// same problem in the same folders is the same version (judged once), a different one is new.
fn unread_identity(dirs: &[PathBuf], why: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"reconfig-unread-v1\n");
    for dir in dirs {
        hasher.update(dir.as_os_str().as_encoded_bytes());
        hasher.update([0]);
    }
    hasher.update(why.as_bytes());
    hex::encode(hasher.finalize())
}

/// A policy's findings: warnings are logged and let through, denials reject the version.
fn denials(findings: Vec<Finding>) -> Vec<Invalid> {
    let mut problems = Vec::new();
    for finding in findings {
        if finding.denies() {
            problems.push(finding.invalid);
        } else {
            warn!("policy warning: {}", finding.message(false));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::{Backoff, Jitter};
    use crate::reload::{self, Action, ActionResult, Policy};
    use crate::watch::state::View;
    use std::time::Duration;
    use tokio::sync::watch;

    fn engine(
        dir: &std::path::Path,
        actions: Vec<Action>,
    ) -> (Engine, watch::Receiver<View>, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let state = ConfigState::new(metrics.clone(), None);
        let view = state.view();
        let has_actions = !actions.is_empty();
        let policy = Policy {
            actions,
            retries: 0,
            backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(10)),
            jitter: Jitter::new(Duration::ZERO),
        };
        let engine = Engine::new(Parts {
            dirs: vec![dir.to_path_buf()],
            limits: config::Limits::default(),
            validator: Folders::unnamed(crate::policy::Policy::from_flags(
                crate::validate::Validator::new(None, &[], None).expect("validator"),
            )),
            publisher: None,
            state,
            actions: reload::spawn(policy, metrics.actions.clone()),
            has_actions,
            metrics: metrics.clone(),
            allow_empty: false,
        });
        (engine, view, metrics)
    }

    fn phase_name(engine: &Engine) -> &'static str {
        engine.state.phase().name()
    }

    async fn settle_next(engine: &mut Engine) {
        let outcome = tokio::time::timeout(Duration::from_secs(5), engine.next_outcome())
            .await
            .expect("an outcome")
            .expect("the action task runs");
        engine.settle(outcome);
    }

    /// Issue 13, item 1: a version whose actions gave up, reverted to after an invalid one, goes
    /// to the actions again; it is not "already running".
    #[tokio::test(flavor = "current_thread")]
    async fn a_revert_to_a_version_that_gave_up_is_a_new_attempt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.yaml");
        std::fs::write(&file, "a: 1\n").expect("write");
        let exec = Action::Exec {
            argv: vec!["false".into()],
            timeout: Duration::from_secs(5),
        };
        let (mut engine, _, _) = engine(dir.path(), vec![exec]);
        engine.start(AtStart::Record).await;
        std::fs::write(&file, "a: 2\n").expect("write");
        engine.evaluate().await;
        settle_next(&mut engine).await;
        assert_eq!(phase_name(&engine), "failed");
        let failed = engine.state.wanted().map(str::to_string);

        std::fs::write(&file, "a: [\n").expect("write");
        engine.evaluate().await;
        assert_eq!(phase_name(&engine), "rejected");
        std::fs::write(&file, "a: 2\n").expect("write");
        engine.evaluate().await;
        assert_eq!(phase_name(&engine), "applying", "a new attempt");
        assert_eq!(engine.state.wanted().map(str::to_string), failed);
        settle_next(&mut engine).await;
        assert_eq!(phase_name(&engine), "failed");
    }

    /// Issue 13, item 4: an empty folder is no config yet; once one runs, emptying is a rejection.
    #[tokio::test(flavor = "current_thread")]
    async fn an_empty_folder_is_waited_for_and_emptying_it_later_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut engine, view, metrics) = engine(dir.path(), Vec::new());
        engine.start(AtStart::Record).await;
        assert_eq!(phase_name(&engine), "waiting");
        let why = view.borrow().ready().expect_err("not ready");
        assert!(why.contains("holds no files yet"), "{why}");

        let file = dir.path().join("app.yaml");
        std::fs::write(&file, "a: 1\n").expect("write");
        engine.evaluate().await;
        assert_eq!(phase_name(&engine), "applied");
        std::fs::remove_file(&file).expect("rm");
        engine.evaluate().await;
        assert_eq!(phase_name(&engine), "rejected");
        assert_eq!(metrics.validation_failures.get(), 1);
        engine.evaluate().await;
        assert_eq!(metrics.validation_failures.get(), 1, "judged once");
    }

    #[test]
    fn an_unread_version_has_a_stable_identity_of_its_own() {
        let dirs = [PathBuf::from("/config")];
        let a = unread_identity(&dirs, "/config holds more than 10000 files");
        assert_eq!(a.len(), 64);
        assert_eq!(
            a,
            unread_identity(&dirs, "/config holds more than 10000 files")
        );
        assert_ne!(
            a,
            unread_identity(&dirs, "/config/big is 9 bytes, over the 8-byte limit")
        );
        assert_ne!(
            a,
            unread_identity(
                &[PathBuf::from("/other")],
                "/config holds more than 10000 files"
            )
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_config_found_at_start_is_recorded_and_a_change_goes_to_the_actions() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("app.yaml"), "a: 1\n").expect("write");
        let exec = Action::Exec {
            argv: vec!["true".into()],
            timeout: Duration::from_secs(5),
        };
        let (mut engine, view, _) = engine(dir.path(), vec![exec]);
        engine.start(AtStart::Record).await;
        assert_eq!(phase_name(&engine), "applied");
        let first = engine.state.applied().map(str::to_string);

        std::fs::write(dir.path().join("app.yaml"), "a: 2\n").expect("write");
        engine.evaluate().await;
        assert_eq!(phase_name(&engine), "applying");
        assert_eq!(view.borrow().ready(), Ok(()), "the first config still runs");
        assert_eq!(engine.state.applied().map(str::to_string), first);
        let outcome = tokio::time::timeout(Duration::from_secs(5), engine.next_outcome())
            .await
            .expect("an outcome")
            .expect("the action task runs");
        engine.settle(outcome);
        assert_eq!(phase_name(&engine), "applied");
        assert_eq!(engine.state.applied(), engine.state.wanted());
        assert_ne!(engine.state.applied().map(str::to_string), first);
    }

    /// An action that finished before a rejection is applied before it, as it happened: the
    /// newest word is the rejection, whatever the event loop polled first.
    #[tokio::test(flavor = "current_thread")]
    async fn an_outcome_that_arrived_first_is_applied_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("app.yaml"), "a: 1\n").expect("write");
        let exec = Action::Exec {
            argv: vec!["true".into()],
            timeout: Duration::from_secs(5),
        };
        let (mut engine, view, metrics) = engine(dir.path(), vec![exec]);
        engine.start(AtStart::Record).await;
        std::fs::write(dir.path().join("app.yaml"), "a: 2\n").expect("write");
        engine.evaluate().await;
        let wanted = engine.state.wanted().map(str::to_string);

        // The action task records its success and sends the outcome without yielding between.
        let success = ActionResult {
            action: "exec".into(),
            result: "success".into(),
        };
        for _ in 0..500 {
            if metrics.actions.runs.get_or_create(&success).get() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(metrics.actions.runs.get_or_create(&success).get(), 1);

        std::fs::write(dir.path().join("app.yaml"), "a: [\n").expect("write");
        engine.evaluate().await;
        assert_eq!(phase_name(&engine), "rejected");
        assert_eq!(view.borrow().status.phase.name(), "rejected");
        assert_eq!(
            view.borrow().ready(),
            Ok(()),
            "the app runs a validated config"
        );
        assert_eq!(
            engine.state.applied().map(str::to_string),
            wanted,
            "the outcome was applied, before the rejection"
        );
        assert!(
            engine.actions.arrived().is_none(),
            "no outcome left to apply after the rejection"
        );
    }
}
