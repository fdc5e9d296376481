//! One evaluation of the watched folders: read → validate → publish → act.
//!
//! The engine remembers only what it needs to skip work (the content it judged last); what an
//! evaluation means for readiness, metrics and reports is up to the [`ConfigState`] it drives.
//! A version is forwarded or it is rejected: content that cannot be read whole (over a limit,
//! two folders with one file name) is a rejection too, under an identity of its own, and a
//! folder with no files is no config at all (unless `--allow-empty`).
//! Action outcomes come back through the same engine, so every transition happens on the event
//! loop, in the order things happened.
//!
//! With verification, the engine also decides what a failed verification leads to: with
//! `--publish`, the newest verified version is published again and handed to the actions
//! (verified in turn); the failed content is remembered, on disk too, and not tried again. A
//! version put back that fails as well ends it: the engine stops acting until the next change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::{debug, error, info, warn};

use super::labels::LabelReader;
use super::metrics::Metrics;
use super::publish::Publisher;
use super::state::{ConfigState, Progress};
use crate::config::{self, read::Snapshot, ReadError};
use crate::policy::{Finding, Folders};
use crate::reload::{short, Actions, Outcome, VerifyOutcome, Version};
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
    /// The action task verifies each version (`--verify-*`).
    pub verifies: bool,
    /// A version failing verification is replaced by the newest verified one (with a
    /// publisher; off with `--no-rollback`).
    pub rollback: bool,
    /// Reads the objects' labels before each judgement, when the policy selects by label.
    pub labels: Option<Box<dyn LabelReader>>,
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
    verifies: bool,
    rollback: bool,
    labels: Option<Box<dyn LabelReader>>,
    /// Versions that failed verification, not tried again (the publisher's record, with one).
    failed: Vec<String>,
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
            verifies: parts.verifies,
            rollback: parts.rollback,
            labels: parts.labels,
            failed: Vec::new(),
            seen: None,
        }
    }

    /// The first evaluation.
    pub async fn start(&mut self, at_start: AtStart) {
        if let Some(p) = &self.publisher {
            self.failed = p.versions().failed.clone();
        }
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
    pub async fn next_outcome(&mut self) -> Option<Outcome> {
        self.actions.outcome().await
    }

    pub fn settle(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Acted(acted) => match &acted.result {
                // With verification, an app that refused the reload did not take the version:
                // as for a failed verification (the version put back still ends as before).
                Err(gave_up)
                    if self.verifies
                        && self.state.wanted() == Some(acted.hash.as_str())
                        && self.state.rolling_back_to() != Some(acted.hash.as_str()) =>
                {
                    let why = format!(
                        "its actions gave up ({gave_up}: {})",
                        gave_up.errors.join("; ")
                    );
                    self.remember_failed(&acted.hash);
                    self.roll_back_from(&acted.hash, &why);
                }
                _ => self.state.action_outcome(acted),
            },
            Outcome::Verified(verdict) => self.verdict(verdict),
        }
    }

    /// A verification finished; see the module documentation.
    fn verdict(&mut self, verdict: VerifyOutcome) {
        if self.state.wanted() != Some(verdict.hash.as_str()) {
            return;
        }
        let hash = verdict.hash.as_str();
        match &verdict.result {
            Ok(detail) => {
                info!(hash = %short(hash), "config verified: {detail}");
                if let Some(p) = &mut self.publisher {
                    p.verified(hash);
                }
                self.state.verified(hash, detail);
            }
            Err(why) if self.state.rolling_back_to() == Some(hash) => {
                self.state.rollback_failed(hash, why);
            }
            Err(why) => {
                let why = why.clone();
                self.remember_failed(hash);
                self.roll_back_from(&verdict.hash, &why);
            }
        }
    }

    fn remember_failed(&mut self, hash: &str) {
        self.failed.retain(|h| h != hash);
        self.failed.push(hash.to_string());
        if self.failed.len() > super::versions::MAX_FAILED {
            self.failed.remove(0);
        }
        if let Some(p) = &mut self.publisher {
            p.failed(hash);
        }
    }

    /// `failed` did not pass verification: put the newest verified version back and hand it to
    /// the actions, or say why nothing is put back.
    fn roll_back_from(&mut self, failed: &str, why: &str) {
        let instead = match (&mut self.publisher, self.rollback) {
            (None, _) => "nothing to roll back to: --publish enables rollback".to_string(),
            (Some(_), false) => "not rolled back (--no-rollback)".to_string(),
            (Some(p), true) => match p.roll_back() {
                Ok(Some(to)) => {
                    info!(hash = %short(&to), "published again");
                    self.state.rolling_back(failed, &to, why);
                    self.actions.apply(Version::act(to));
                    return;
                }
                Ok(None) => "no verified version to roll back to".to_string(),
                Err(e) => format!("rolling back failed: {e}"),
            },
        };
        self.state.not_verified(failed, why, &instead);
    }

    /// The newest content failed verification before: it is not tried again. A sidecar that
    /// stopped between that failure and the rollback finds it still in place, and rolls back.
    fn failed_again(&mut self, hash: &str) {
        info!(hash = %short(hash), "config failed verification before; not tried again");
        let current = self
            .publisher
            .as_ref()
            .and_then(|p| p.versions().current.as_ref())
            .map(|c| c.hash.clone());
        if current.as_deref() == Some(hash) && self.rollback {
            return self
                .roll_back_from(hash, "it failed verification before the sidecar restarted");
        }
        if !self.state.has_config() {
            if let Some(current) = &current {
                // At start: the version in place runs.
                self.state.started(current);
            }
        }
        self.state.failed_before(hash);
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

    /// The objects' labels as the API server has them now, for rules that select by label; a
    /// failed read keeps the labels last read.
    async fn read_labels(&mut self) {
        let Some(reader) = &self.labels else {
            return;
        };
        for object in self.validator.objects_mut() {
            match reader.labels(object).await {
                Ok(labels) => object.labels = Some(labels),
                Err(e) => {
                    let kept = if object.labels.is_some() {
                        "the labels last read are used"
                    } else {
                        "rules selecting by labels do not apply to it"
                    };
                    warn!("cannot read the labels of {}: {e}; {kept}", object.label());
                }
            }
        }
    }

    /// Applies outcomes that arrived while the engine was busy, before anything newer.
    fn catch_up(&mut self) {
        while let Some(outcome) = self.actions.arrived() {
            self.settle(outcome);
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
        if self.failed.contains(&hash) {
            return self.failed_again(&hash);
        }
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

        self.read_labels().await;
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
        if let (Some(p), Some(stage)) = (&mut self.publisher, stage) {
            if let Err(e) = p.commit(stage, &hash) {
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
                self.verify_at_start(hash);
            }
            OnValid::Act if !self.has_actions && !self.verifies => {
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
                self.actions.apply(Version::act(hash));
            }
        }
    }

    /// The config found at start runs; with verification it is verified now (unless it was
    /// before, as the publisher's record says), so that it can be rolled back to.
    fn verify_at_start(&mut self, hash: String) {
        if !self.verifies {
            return;
        }
        if let Some(p) = &mut self.publisher {
            if p.versions()
                .verified
                .as_ref()
                .is_some_and(|v| v.hash == hash)
            {
                info!(hash = %short(&hash), "config was verified before");
                p.verified(&hash);
                return;
            }
        }
        self.state.verifying_at_start(&hash);
        self.actions.apply(Version {
            hash,
            verify_only: true,
        });
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
    use crate::reload::http_support::Receiver;
    use crate::reload::verify::{Probe, Verify};
    use crate::reload::{self, Action, ActionResult, Policy};
    use crate::watch::state::{Phase, View};
    use std::time::Duration;
    use tokio::sync::watch;

    fn engine(
        dir: &std::path::Path,
        actions: Vec<Action>,
    ) -> (Engine, watch::Receiver<View>, Arc<Metrics>) {
        engine_with(dir, actions, None, None)
    }

    /// An engine that verifies with `verify` and publishes into `publish`, if given.
    fn engine_with(
        dir: &std::path::Path,
        actions: Vec<Action>,
        verify: Option<Verify>,
        publish: Option<PathBuf>,
    ) -> (Engine, watch::Receiver<View>, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let state = ConfigState::new(metrics.clone(), None);
        let view = state.view();
        let has_actions = !actions.is_empty();
        let verifies = verify.is_some();
        let policy = Policy {
            actions,
            retries: 0,
            backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(10)),
            jitter: Jitter::new(Duration::ZERO),
            verify,
        };
        let engine = Engine::new(Parts {
            dirs: vec![dir.to_path_buf()],
            limits: config::Limits::default(),
            validator: Folders::unnamed(crate::policy::Policy::from_flags(
                crate::validate::Validator::new(None, &[], None).expect("validator"),
            )),
            publisher: publish.map(|dir| Publisher::with_record(dir, verifies)),
            state,
            actions: reload::spawn(policy, metrics.actions.clone()),
            has_actions,
            metrics: metrics.clone(),
            allow_empty: false,
            verifies,
            rollback: true,
            labels: None,
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

    fn verify_url(app: &Receiver) -> Verify {
        Verify::new(
            vec![Probe::Url {
                url: Probe::parse_url(&app.url("/healthz")).expect("url"),
                accept: Vec::new(),
                body: None,
            }],
            Duration::ZERO,
            Duration::from_millis(300),
            Duration::from_millis(20),
        )
    }

    /// Settles outcomes until the phase is `want` (the start-up verification, actions,
    /// verdicts).
    async fn settle_until(engine: &mut Engine, want: &str) {
        for _ in 0..10 {
            if phase_name(engine) == want && engine.state.rolling_back_to().is_none() {
                return;
            }
            settle_next(engine).await;
        }
        assert_eq!(phase_name(engine), want);
    }

    fn published(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("app.yaml")).expect("published app.yaml")
    }

    /// Issue 14: a version that fails verification is replaced by the newest verified one,
    /// kept on disk; the failed content is not tried again, not even by a restarted sidecar;
    /// and a version put back that fails too stops it, with readiness false.
    #[tokio::test(flavor = "current_thread")]
    async fn a_version_failing_verification_is_rolled_back_to_the_newest_verified_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
        std::fs::create_dir(&src).expect("mkdir");
        let file = src.join("app.yaml");
        std::fs::write(&file, "v: 1\n").expect("write");
        let app = Receiver::start();
        let (mut engine, view, metrics) =
            engine_with(&src, Vec::new(), Some(verify_url(&app)), Some(out.clone()));
        engine.start(AtStart::Record).await;
        assert_eq!(
            phase_name(&engine),
            "verifying",
            "the config found at start"
        );
        assert_eq!(view.borrow().ready(), Ok(()), "ready while it is verified");
        settle_until(&mut engine, "applied").await;
        let good = engine.state.applied().map(str::to_string).expect("applied");

        app.set_status(500);
        std::fs::write(&file, "v: 2\n").expect("write");
        engine.evaluate().await;
        assert_eq!(published(&out), "v: 2\n");
        settle_next(&mut engine).await;
        assert_eq!(phase_name(&engine), "verifying");
        settle_next(&mut engine).await;
        assert_eq!(phase_name(&engine), "rolled-back");
        assert_eq!(
            published(&out),
            "v: 1\n",
            "the last verified version is back"
        );
        assert_eq!(
            view.borrow().ready(),
            Ok(()),
            "a rollback keeps the pod ready"
        );
        assert_eq!(metrics.rollbacks.get(), 1);
        app.set_status(200);
        settle_next(&mut engine).await;
        settle_next(&mut engine).await;
        let status = view.borrow().status.clone();
        assert!(
            matches!(&status.phase, Phase::RolledBack { settled: true, to, .. } if *to == good),
            "{status:?}"
        );
        assert_eq!(status.applied.as_deref(), Some(good.as_str()));
        let message = status.message(false).expect("a message");
        // Under load the last try can be cut by the deadline instead of answered 500.
        assert!(
            message.contains("failed verification: not verified within 300ms")
                && message.ends_with("which runs now"),
            "{message}"
        );

        // A restarted sidecar finds v: 2 still in the ConfigMap: not tried again.
        drop(engine);
        let (mut engine, view, metrics) =
            engine_with(&src, Vec::new(), Some(verify_url(&app)), Some(out.clone()));
        engine.start(AtStart::Record).await;
        assert_eq!(phase_name(&engine), "failed");
        assert!(
            view.borrow()
                .status
                .message(false)
                .is_some_and(|m| m.contains("not tried again")),
            "{:?}",
            view.borrow().status
        );
        assert_eq!(view.borrow().ready(), Ok(()));
        assert_eq!(published(&out), "v: 1\n");
        assert_eq!(metrics.rollbacks.get(), 0);

        // A new version fails, and the version put back fails too: stop, not ready.
        app.set_status(503);
        std::fs::write(&file, "v: 3\n").expect("write");
        engine.evaluate().await;
        for _ in 0..4 {
            settle_next(&mut engine).await;
        }
        assert_eq!(phase_name(&engine), "failed");
        let why = view.borrow().ready().expect_err("cannot serve");
        assert!(why.contains("which failed too"), "{why}");
        assert_eq!(metrics.rollbacks.get(), 1, "one rollback, no loop");
        assert!(
            tokio::time::timeout(Duration::from_millis(500), engine.next_outcome())
                .await
                .is_err(),
            "nothing more is tried"
        );
    }

    /// Issue 14: the failure was recorded, and the sidecar stopped before it rolled back: at
    /// the next start the failed version is still in place, and it is rolled back from disk.
    #[tokio::test(flavor = "current_thread")]
    async fn a_failure_recorded_before_a_restart_is_rolled_back_at_start() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (src, out) = (tmp.path().join("src"), tmp.path().join("out"));
        std::fs::create_dir(&src).expect("mkdir");
        let file = src.join("app.yaml");
        std::fs::write(&file, "v: 1\n").expect("write");
        let app = Receiver::start();
        let (mut engine, _, _) =
            engine_with(&src, Vec::new(), Some(verify_url(&app)), Some(out.clone()));
        engine.start(AtStart::Record).await;
        settle_until(&mut engine, "applied").await;
        std::fs::write(&file, "v: 2\n").expect("write");
        engine.evaluate().await;
        settle_next(&mut engine).await;
        assert_eq!(phase_name(&engine), "verifying");
        let bad = engine.state.wanted().map(str::to_string).expect("wanted");
        // What the engine writes first when the verdict is a failure; then the sidecar stops.
        engine.publisher.as_mut().expect("publisher").failed(&bad);
        drop(engine);
        assert_eq!(published(&out), "v: 2\n");

        let (mut engine, view, metrics) =
            engine_with(&src, Vec::new(), Some(verify_url(&app)), Some(out.clone()));
        engine.start(AtStart::Record).await;
        assert_eq!(phase_name(&engine), "rolled-back");
        assert_eq!(published(&out), "v: 1\n", "put back from disk at start");
        assert_eq!(metrics.rollbacks.get(), 1);
        settle_next(&mut engine).await;
        settle_next(&mut engine).await;
        assert!(
            matches!(&view.borrow().status.phase, Phase::RolledBack { settled: true, hash, .. } if *hash == bad),
            "{:?}",
            view.borrow().status
        );
        assert_eq!(view.borrow().ready(), Ok(()));
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
