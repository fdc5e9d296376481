//! `reconfig watch`: the validating reload sidecar, at run time.
//!
//! Every change is read, hashed, validated and (with `--publish`) published
//! before any action runs; a config that fails validation never reaches the app.
//!
//! This module is the event loop: volume events, timers and action outcomes become
//! evaluations by the [`engine`]; [`state`] decides what they mean for readiness, metrics and
//! reports; [`http`] serves them. It takes a plain [`Settings`]: the command line lives in
//! `cli::watch`.

pub mod debounce;
pub mod engine;
pub mod http;
pub mod labels;
pub mod metrics;
pub mod publish;

pub mod state;
pub mod versions;
pub mod volume;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config;
use crate::reload::{self, Action, Policy};
use debounce::Debouncer;
pub use engine::AtStart;
use engine::{Engine, Parts};
use labels::LabelReader;
use metrics::Metrics;
use publish::Publisher;
use state::{ConfigState, NoteSink};
use volume::{VolumeEvent, Volumes};

/// Everything the sidecar runs with, decided before it starts.
pub struct Settings {
    /// ConfigMap/Secret volume roots or plain folders.
    pub dirs: Vec<PathBuf>,
    /// Quiet period after the last change in a plain folder.
    pub debounce: Duration,
    /// Re-read everything this often; zero never.
    pub resync: Duration,
    /// The validation policy, with the objects the folders hold.
    pub validator: crate::policy::Folders,
    pub limits: config::Limits,
    /// A folder with no files is a config like any other, rather than one still to come.
    pub allow_empty: bool,
    /// Publish each validated version here, in kubelet's `..data` layout.
    pub publish: Option<PathBuf>,
    pub policy: Policy,
    pub at_start: AtStart,
    /// Address for `/healthz`, `/readyz` and `/metrics`.
    pub listen: String,
    /// A version failing verification is replaced by the newest verified one (with
    /// `--publish`); false with `--no-rollback`.
    pub rollback: bool,
}

/// Why the sidecar stopped, other than being told to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("listening on {listen}")]
    Listen {
        listen: String,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the file watcher")]
    Watcher(#[source] notify::Error),
    #[error("the file watcher stopped")]
    WatcherStopped,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The sidecar before it runs: its metrics exist, so reporters can count into them.
pub struct Sidecar {
    settings: Settings,
    metrics: Arc<Metrics>,
    sink: Option<Box<dyn NoteSink>>,
    labels: Option<Box<dyn LabelReader>>,
}

impl Sidecar {
    /// Warns about settings that cannot work as the user probably expects.
    pub fn new(settings: Settings) -> Self {
        for dir in &settings.dirs {
            if let Some(warning) = config::mount::never_updates(dir) {
                warn!("{warning}");
            }
        }
        if settings.policy.actions.is_empty() && settings.publish.is_none() {
            warn!("no action and no --publish: validating only (see /status and /metrics)");
        }
        if settings.policy.verify.is_some() && settings.publish.is_none() {
            warn!("verifying without --publish: a version that fails verification is reported, but there is no last good version to put back (--publish enables rollback)");
        }
        Sidecar {
            settings,
            metrics: Arc::new(Metrics::default()),
            sink: None,
            labels: None,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Sends every note about a config version to `sink` too.
    pub fn report_to(&mut self, sink: Box<dyn NoteSink>) {
        self.sink = Some(sink);
    }

    /// Reads the labels of the objects the folders hold with `reader`, before each judgement.
    pub fn read_labels_with(&mut self, reader: Box<dyn LabelReader>) {
        self.labels = Some(reader);
    }

    /// Whether the policy selects by labels objects the folders name (see `read_labels_with`).
    pub fn needs_labels(&self) -> bool {
        self.settings.validator.needs_labels()
    }

    /// Runs until SIGTERM or SIGINT.
    pub async fn run(self) -> Result<(), Error> {
        let Sidecar {
            settings,
            metrics,
            sink,
            labels,
        } = self;
        let state = ConfigState::new(metrics.clone(), sink);
        let listener = http::bind(&settings.listen)
            .await
            .map_err(|source| Error::Listen {
                listen: settings.listen.clone(),
                source,
            })?;
        info!(
            "serving /healthz, /readyz, /status and /metrics on {}",
            listener.local_addr()?
        );
        let server = tokio::spawn(http::serve(listener, state.view(), metrics.clone()));

        let policy = settings.policy;
        let names = policy.actions.iter().map(Action::name).collect::<Vec<_>>();
        let has_actions = !names.is_empty();
        let verifies = policy.verify.is_some();
        info!(dirs = ?settings.dirs, actions = ?names, publish = ?settings.publish, "starting");
        let actions = reload::spawn(policy, metrics.actions.clone());

        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut volumes = Volumes::new(&settings.dirs, tx).map_err(Error::Watcher)?;
        let mut engine = Engine::new(Parts {
            dirs: settings.dirs.clone(),
            limits: settings.limits,
            validator: settings.validator,
            publisher: settings
                .publish
                .clone()
                .map(|dir| Publisher::with_record(dir, verifies)),
            state,
            actions,
            has_actions,
            metrics,
            allow_empty: settings.allow_empty,
            verifies,
            rollback: settings.rollback,
            labels,
        });
        // Listening before the first evaluation: a validator running then is stopped too.
        let mut shutdown = Shutdown::listen()?;
        if shutdown
            .unless(engine.start(settings.at_start))
            .await
            .is_none()
        {
            stop(server);
            return Ok(());
        }

        let mut debouncer = Debouncer::new(settings.debounce, settings.dirs.len());
        let resync = settings.resync;
        let mut resync = (!resync.is_zero())
            .then(|| tokio::time::interval_at(tokio::time::Instant::now() + resync, resync));
        // Missing folders are watched once they appear, and lost watches are re-armed: looked
        // for every second while a folder is missing or unwatchable, every 5 s otherwise (a
        // removal is reported at once; only a re-mount must be found by looking), so an idle
        // sidecar wakes rarely.
        let rearm_every =
            |volumes: &Volumes| Duration::from_secs(if volumes.settled() { 5 } else { 1 });
        let mut next_rearm = Instant::now() + rearm_every(&volumes);
        loop {
            let deadline = debouncer.deadline();
            tokio::select! {
                // Events first: the two reports notify gives of one `..data` rename land in one
                // evaluation, before a due deadline acts on the first.
                biased;
                event = rx.recv() => match event {
                    Some(VolumeEvent::Changed(change)) => {
                        debug!(?change, "event");
                        debouncer.event(change, Instant::now());
                    }
                    Some(VolumeEvent::Lost) => next_rearm = Instant::now(),
                    Some(VolumeEvent::Error(e)) => engine.watcher_error(&e),
                    None => {
                        engine.watcher_stopped();
                        return Err(Error::WatcherStopped);
                    }
                },
                Some(outcome) = engine.next_outcome() => engine.settle(outcome),
                () = sleep_until(deadline) => {
                    if let Some(waited) = debouncer.take_burst(Instant::now()) {
                        let started = Instant::now();
                        if shutdown.unless(engine.evaluate()).await.is_none() {
                            break;
                        }
                        // The latency trace (-v): event → evaluation → action task → request.
                        debug!(
                            waited_us = waited.as_micros() as u64,
                            evaluate_us = started.elapsed().as_micros() as u64,
                            "evaluated"
                        );
                    }
                }
                _ = tick(&mut resync) => {
                    debug!("resync");
                    if shutdown.unless(engine.evaluate()).await.is_none() {
                        break;
                    }
                }
                () = sleep_until(Some(next_rearm)) => {
                    let changed = volumes.rearm();
                    next_rearm = Instant::now() + rearm_every(&volumes);
                    engine.watcher_health(volumes.health());
                    if changed > 0 && shutdown.unless(engine.evaluate()).await.is_none() {
                        break;
                    }
                }
                () = shutdown.requested() => break,
            }
        }
        // Dropping the engine stops the action task, killing a command it was running.
        drop(engine);
        stop(server);
        Ok(())
    }
}

fn stop(server: tokio::task::JoinHandle<()>) {
    info!("shutting down");
    server.abort();
}

/// SIGTERM and SIGINT: the sidecar stops at once, even in the middle of an evaluation.
struct Shutdown {
    sigterm: tokio::signal::unix::Signal,
    sigint: tokio::signal::unix::Signal,
}

impl Shutdown {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Shutdown {
            sigterm: signal(SignalKind::terminate())?,
            sigint: signal(SignalKind::interrupt())?,
        })
    }

    async fn requested(&mut self) {
        tokio::select! {
            _ = self.sigterm.recv() => {}
            _ = self.sigint.recv() => {}
        }
    }

    /// Runs `work` unless shutdown is requested first (`None`): `work` is then dropped where it
    /// stands, which kills the validator it was running. Nothing is lost by abandoning it: the
    /// content is judged afresh at the next start.
    async fn unless<T>(&mut self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            done = work => Some(done),
            () = self.requested() => None,
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        // tokio's timer rounds every deadline up to its next millisecond tick and parks for
        // whole milliseconds: a deadline that has already come (a swap in a single volume) would
        // wait 1–2 ms for nothing.
        Some(d) if d <= Instant::now() => {}
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    /// A swap in a single volume is due at once: it must not go through tokio's timer, which
    /// rounds a deadline up to its next millisecond tick and parks for whole milliseconds
    /// (1–2 ms added to every reload).
    #[tokio::test(flavor = "current_thread")]
    async fn a_deadline_that_has_come_is_ready_at_the_first_poll() {
        let mut cx = Context::from_waker(Waker::noop());
        let due = std::pin::pin!(sleep_until(Some(Instant::now())));
        assert_eq!(due.poll(&mut cx), Poll::Ready(()));
        let later = std::pin::pin!(sleep_until(Some(Instant::now() + Duration::from_secs(60))));
        assert_eq!(later.poll(&mut cx), Poll::Pending);
        let never = std::pin::pin!(sleep_until(None));
        assert_eq!(never.poll(&mut cx), Poll::Pending);
    }
}
