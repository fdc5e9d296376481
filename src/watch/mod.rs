//! `reconfig watch`: the validating reload sidecar.
//!
//! Every change is read, hashed, validated and (with `--publish`) published
//! before any action runs; a config that fails validation never reaches the app.

pub mod debounce;
pub mod publish;
pub mod volume;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::sync::watch as latest;
use tracing::{debug, error, info, warn};

use crate::cli::validation::ValidationArgs;
use crate::config::{self, read::Snapshot, ReadError};
use crate::reload::signal::{parse_signal, Target};
use crate::reload::webhook::{parse_statuses, Webhook};
use crate::reload::{self, short, Action, Policy, Version};
use crate::serve::{self, Note, Shared};
use crate::units::{parse_duration, parse_size};
use crate::validate::{Invalid, Validator};
use crate::Failure;
use debounce::Debouncer;
use publish::Publisher;
use volume::Volumes;

const EXAMPLES: &str = "\
Examples:
  # Prometheus: validate with promtool, then POST /-/reload
  reconfig watch --dir /etc/prometheus --validate-cmd 'promtool check config {dir}/prometheus.yml' \\
      --webhook http://localhost:9090/-/reload

  # nginx in a pod with shareProcessNamespace: true: nginx -t, then SIGHUP the master
  reconfig watch --dir /etc/nginx/conf.d --publish /run/nginx-conf \\
      --validate-cmd 'nginx -t -c /etc/nginx/nginx.conf' --signal SIGHUP --process nginx

  # An app that cannot reload: validate against a schema, then restart it
  reconfig watch --dir /config --schema config.yaml=/schemas/config.json --restart --process my-app

{dir} in --validate-cmd is the folder holding the candidate files: the staged copy with --publish,
otherwise the volume's current ..data folder (or the plain folder).";

const KUBE_API: &str = "Kubernetes API (needs RBAC: helm-snippets, reconfig.watch.rbac)";

/// Watch mounted ConfigMaps/Secrets, validate every change, and only then tell the app.
///
/// Kubelet volumes are recognised by their `..data` link and react to its swap;
/// plain folders react after a quiet period. A change is a change of content:
/// rewrites with the same bytes do nothing. An invalid config is logged, counted
/// and shown on /readyz, and the app keeps its last good one.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct WatchArgs {
    /// A ConfigMap/Secret volume root or a plain folder to watch (repeatable).
    #[arg(long, value_name = "DIR", required = true)]
    pub dir: Vec<PathBuf>,

    /// Quiet period after the last change in a plain folder (kubelet swaps act at once, or within 5ms with several --dir).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub debounce: Duration,

    /// Re-read everything this often, as a safety net for lost events (0 disables).
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = parse_duration)]
    pub resync: Duration,

    #[command(flatten)]
    pub validation: ValidationArgs,

    /// Publish each validated version into DIR in kubelet's ..data layout; point the app here.
    #[arg(long, value_name = "DIR")]
    pub publish: Option<PathBuf>,

    /// Send this signal to the target after each validated change (e.g. SIGHUP).
    #[arg(long, value_name = "SIG", help_heading = "Actions")]
    pub signal: Option<String>,

    /// Restart the target with SIGTERM, for apps that cannot reload; kubelet starts it on the new config.
    #[arg(long, help_heading = "Actions")]
    pub restart: bool,

    /// POST (see --webhook-method) to this URL after each validated change. Repeatable.
    #[arg(long, value_name = "URL", help_heading = "Actions")]
    pub webhook: Vec<String>,

    /// Run this command (no shell) after each validated change.
    #[arg(long, value_name = "CMD", help_heading = "Actions")]
    pub exec: Option<String>,

    /// The process to signal: by PID.
    #[arg(long, value_name = "N", help_heading = "Target", group = "target")]
    pub pid: Option<i32>,

    /// The process to signal: by a PID file, re-read every time.
    #[arg(long, value_name = "FILE", help_heading = "Target", group = "target")]
    pub pid_file: Option<PathBuf>,

    /// The process to signal: by name, in a shared PID namespace (the root of each matching tree).
    #[arg(long, value_name = "NAME", help_heading = "Target", group = "target")]
    pub process: Option<String>,

    /// HTTP method for --webhook.
    #[arg(
        long,
        value_name = "METHOD",
        default_value = "POST",
        help_heading = "Actions"
    )]
    pub webhook_method: String,

    /// Status codes that count as success for --webhook (default: any 2xx), e.g. 200,204.
    #[arg(long, value_name = "CODES", value_parser = parse_statuses, help_heading = "Actions")]
    pub webhook_status: Option<Vec<u16>>,

    /// Time limit for each --webhook request.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, help_heading = "Actions")]
    pub webhook_timeout: Duration,

    /// Time limit for --exec.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, help_heading = "Actions")]
    pub exec_timeout: Duration,

    /// Retries for a failed action, with exponential backoff from --retry-backoff up to 30s.
    #[arg(long, value_name = "N", default_value_t = 8, help_heading = "Actions")]
    pub retries: u32,

    /// First retry delay.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = parse_duration, help_heading = "Actions")]
    pub retry_backoff: Duration,

    /// Wait a random time below this before acting, to spread the reloads of many replicas.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration, help_heading = "Actions")]
    pub jitter: Duration,

    /// Also run the actions for the config found at start (off: the app starts with it anyway).
    #[arg(long, help_heading = "Actions")]
    pub reload_on_start: bool,

    /// Address for /healthz, /readyz and /metrics; `:PORT` means every interface, port 0 picks one.
    #[arg(long, value_name = "ADDR", default_value = ":9533")]
    pub listen: String,

    /// Largest file accepted; a bigger one is reported and not forwarded.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub max_file_size: usize,

    /// Record Kubernetes Events on this pod when a config is rejected, applied, or cannot be applied.
    #[arg(
        long,
        help_heading = KUBE_API
    )]
    pub events: bool,

    /// Keep this pod's reconfig/config-hash, reconfig/config-status and reconfig/config-message annotations current.
    #[arg(
        long,
        help_heading = KUBE_API
    )]
    pub annotate_pod: bool,

    /// This pod's name [default: the host name, which is the pod name unless spec.hostname is set].
    #[arg(
        long,
        env = "POD_NAME",
        value_name = "NAME",
        help_heading = KUBE_API
    )]
    pub pod_name: Option<String>,

    /// This pod's namespace [default: the service account's, or the kubeconfig context's].
    #[arg(
        long,
        env = "POD_NAMESPACE",
        value_name = "NS",
        help_heading = KUBE_API
    )]
    pub pod_namespace: Option<String>,

    /// This pod's UID, so `kubectl describe pod` lists the events [default: read from the API].
    #[arg(
        long,
        env = "POD_UID",
        value_name = "UID",
        help_heading = KUBE_API
    )]
    pub pod_uid: Option<String>,

    /// Put validators' full messages in Events and annotations; they may quote config values, Secrets' included.
    #[arg(
        long,
        help_heading = KUBE_API
    )]
    pub report_details: bool,

    /// Time limit for each Kubernetes API request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, help_heading = KUBE_API)]
    pub kube_timeout: Duration,
}

impl WatchArgs {
    fn target(&self) -> Option<Target> {
        self.pid
            .map(Target::Pid)
            .or_else(|| self.pid_file.clone().map(Target::PidFile))
            .or_else(|| self.process.clone().map(Target::Process))
    }

    fn policy(&self) -> anyhow::Result<Policy> {
        let mut actions = Vec::new();
        let target = self.target();
        if (self.signal.is_some() || self.restart) && target.is_none() {
            anyhow::bail!("--signal and --restart need a target: --pid, --pid-file or --process");
        }
        if target.is_some() && self.signal.is_none() && !self.restart {
            anyhow::bail!("--pid, --pid-file and --process choose whom to signal: add --signal SIG or --restart");
        }
        if let (Some(signal), Some(target)) = (&self.signal, &target) {
            let signal = parse_signal(signal).map_err(|e| anyhow::anyhow!("--signal: {e}"))?;
            actions.push(Action::Signal {
                target: target.clone(),
                signal,
            });
        }
        for url in &self.webhook {
            let hook = Webhook::new(
                url,
                &self.webhook_method,
                self.webhook_status.clone().unwrap_or_default(),
                self.webhook_timeout,
            )
            .map_err(|e| anyhow::anyhow!("--webhook: {e}"))?;
            actions.push(Action::Webhook(Box::new(hook)));
        }
        if let Some(cmd) = &self.exec {
            let argv = shell_words::split(cmd)
                .map_err(|e| anyhow::anyhow!("--exec: cannot split `{cmd}`: {e}"))?;
            anyhow::ensure!(!argv.is_empty(), "--exec is empty");
            actions.push(Action::Exec {
                argv,
                timeout: self.exec_timeout,
            });
        }
        if self.restart {
            if let Some(target) = target {
                actions.push(Action::Restart { target });
            }
        }
        Ok(Policy {
            actions,
            retries: self.retries,
            first_backoff: self.retry_backoff,
            max_backoff: Duration::from_secs(30).max(self.retry_backoff),
            jitter: self.jitter,
        })
    }
}

pub fn run(args: WatchArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(Failure::Internal)?;
    runtime
        .block_on(serve_forever(args))
        .map_err(Failure::Internal)
}

async fn serve_forever(args: WatchArgs) -> anyhow::Result<()> {
    let policy = args.policy()?;
    let validator = args.validation.validator()?;
    for dir in &args.dir {
        if let Some(warning) = config::mount::never_updates(dir) {
            warn!("{warning}");
        }
    }
    if policy.actions.is_empty() && args.publish.is_none() {
        warn!("no action and no --publish: validating only (see /readyz and /metrics)");
    }

    let shared = Shared::new();
    if args.events || args.annotate_pod {
        report_to_the_api(&args, &shared).await?;
    }
    let listener = serve::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    info!(
        "serving /healthz, /readyz and /metrics on {}",
        listener.local_addr()?
    );
    let server = tokio::spawn(serve::serve(listener, shared.clone()));

    let actions = policy.actions.iter().map(Action::name).collect::<Vec<_>>();
    let has_actions = !actions.is_empty();
    info!(dirs = ?args.dir, actions = ?actions, publish = ?args.publish, "starting");
    let to_actions = reload::spawn(policy, shared.clone());

    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut volumes = Volumes::new(&args.dir, tx).context("starting the file watcher")?;
    let mut engine = Engine {
        dirs: args.dir.clone(),
        limits: config::Limits {
            max_file_size: args.max_file_size as u64,
            ..config::Limits::default()
        },
        validator,
        publisher: args.publish.clone().map(Publisher::new),
        shared: shared.clone(),
        actions: to_actions,
        has_actions,
        seen: None,
        running: None,
        degraded: false,
    };
    engine.evaluate(!args.reload_on_start).await;

    let mut debouncer = Debouncer::new(args.debounce, args.dir.len());
    let mut resync = (!args.resync.is_zero())
        .then(|| tokio::time::interval_at(tokio::time::Instant::now() + args.resync, args.resync));
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        let deadline = debouncer.deadline();
        tokio::select! {
            signal = rx.recv() => match signal {
                Some(volume::Signal::Changed(change)) => {
                    debug!(?change, "event");
                    debouncer.event(change, Instant::now());
                }
                Some(volume::Signal::Error(e)) => {
                    warn!("file watcher: {e}");
                    shared.metrics.watcher_errors.inc();
                }
                None => {
                    shared.set_alive(Err("the file watcher stopped".into()));
                    anyhow::bail!("the file watcher stopped");
                }
            },
            () = sleep_until(deadline) => {
                if debouncer.take_due(Instant::now()) {
                    engine.evaluate(false).await;
                }
            }
            _ = tick(&mut resync) => {
                debug!("resync");
                engine.evaluate(false).await;
            }
            _ = retry.tick(), if !volumes.all_watched() => {
                if volumes.retry_missing() > 0 {
                    engine.evaluate(false).await;
                }
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    info!("shutting down");
    server.abort();
    Ok(())
}

#[cfg(feature = "kube")]
async fn report_to_the_api(args: &WatchArgs, shared: &Shared) -> anyhow::Result<()> {
    let settings = crate::kube::Settings {
        events: args.events,
        annotate: args.annotate_pod,
        pod_name: args.pod_name.clone().filter(|n| !n.is_empty()),
        pod_namespace: args.pod_namespace.clone().filter(|n| !n.is_empty()),
        pod_uid: args.pod_uid.clone().filter(|n| !n.is_empty()),
        timeout: args.kube_timeout,
        details: args.report_details,
    };
    let reporter = crate::kube::connect(settings, shared.metrics.api_requests.clone())
        .await
        .context("--events/--annotate-pod")?;
    if shared.set_sink(Box::new(reporter)).is_err() {
        anyhow::bail!("a note reporter is already installed");
    }
    Ok(())
}

#[cfg(not(feature = "kube"))]
async fn report_to_the_api(_: &WatchArgs, _: &Shared) -> anyhow::Result<()> {
    anyhow::bail!(
        "--events and --annotate-pod need the Kubernetes API, and this reconfig was built without it (cargo feature `kube`)"
    )
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
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

/// The read → validate → publish → act pipeline and what it remembers between runs.
struct Engine {
    dirs: Vec<PathBuf>,
    limits: config::Limits,
    validator: Validator,
    publisher: Option<Publisher>,
    shared: Arc<Shared>,
    actions: latest::Sender<Option<Version>>,
    has_actions: bool,
    /// Hash of the newest content evaluated, valid or not, and its verdict: the same bytes are not evaluated twice.
    seen: Option<(String, Result<(), String>)>,
    /// Hash of the newest valid config, the one the app runs on.
    running: Option<String>,
    /// A read failed since `seen` was judged; the next successful read restores its readiness.
    degraded: bool,
}

impl Engine {
    /// Evaluates the folders; `quiet` marks the start-up version, which needs no action.
    async fn evaluate(&mut self, quiet: bool) {
        let snapshot = match Snapshot::read(&self.dirs, self.limits) {
            Ok(s) => s,
            Err(e) => return self.unreadable(e),
        };
        let hash = snapshot.hash();
        if let Some((seen, verdict)) = &self.seen {
            if *seen == hash {
                debug!(hash = %short(&hash), "content unchanged");
                if std::mem::take(&mut self.degraded) {
                    self.shared.set_ready(verdict.clone());
                }
                return;
            }
        }
        self.degraded = false;
        self.seen = Some((hash.clone(), Ok(())));

        let problems = self.validator.check_files(&snapshot.files);
        if !problems.is_empty() {
            return self.invalid(&hash, &problems);
        }
        let stage = match &self.publisher {
            Some(p) => match p.stage(&snapshot) {
                Ok(stage) => Some(stage),
                Err(e) => return self.failed(&hash, &format!("cannot stage the config: {e}")),
            },
            None => None,
        };
        if let Some(command) = self.validator.command() {
            let dir = stage
                .as_ref()
                .map(|s| s.path.as_path())
                .or_else(|| snapshot.folder())
                .unwrap_or(Path::new(""));
            if let Some(problem) = command.verdict(dir).await {
                if let (Some(p), Some(stage)) = (&self.publisher, stage) {
                    p.discard(stage);
                }
                return self.invalid(&hash, &[problem]);
            }
        }
        if let (Some(p), Some(stage)) = (&self.publisher, stage) {
            if let Err(e) = p.commit(stage) {
                return self.failed(&hash, &e.to_string());
            }
            info!(hash = %short(&hash), "published");
        }
        self.shared.metrics.config_valid.set(1);
        if self.running.as_deref() == Some(hash.as_str()) {
            info!(hash = %short(&hash), "config is valid and already running; nothing to do");
            self.shared.set_ready(Ok(()));
            return;
        }
        self.running = Some(hash.clone());
        if quiet || !self.has_actions {
            info!(hash = %short(&hash), files = snapshot.files.len(), "config is valid");
            self.shared.metrics.running(&hash);
            self.shared.set_ready(Ok(()));
            self.shared.note(if quiet {
                Note::Started { hash }
            } else {
                let detail = match &self.publisher {
                    Some(p) => format!("published to {}", p.root().display()),
                    None => "validated (no action configured)".to_string(),
                };
                Note::Applied { hash, detail }
            });
        } else {
            info!(hash = %short(&hash), files = snapshot.files.len(), "config is valid; reloading");
            let why = format!("config {} is valid but not yet applied", short(&hash));
            self.shared.set_ready(Err(why));
            self.actions.send_replace(Some(Version { hash }));
        }
    }

    fn unreadable(&mut self, e: ReadError) {
        self.shared.metrics.watcher_errors.inc();
        self.degraded = true;
        if e.rejects_config() {
            self.invalid("-", &[Invalid::new(&e.to_string(), "not forwarded")])
        } else {
            warn!("cannot read the config: {e}; keeping the last good one");
            if self.running.is_none() {
                let why = format!("waiting for a readable config: {e}");
                self.shared.set_ready(Err(why));
            }
        }
    }

    fn invalid(&mut self, hash: &str, problems: &[Invalid]) {
        let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
        for reason in &reasons {
            error!(hash = %short(hash), "config rejected: {reason}");
        }
        self.shared.metrics.validation_failures.inc();
        self.shared.metrics.config_valid.set(0);
        let keeping = match &self.running {
            Some(h) => format!("the app keeps config {}", short(h)),
            None => "no valid config yet".to_string(),
        };
        let why = format!(
            "config {} is invalid: {}; {keeping}",
            short(hash),
            reasons.first().map_or("", String::as_str)
        );
        if let Some((seen, verdict)) = &mut self.seen {
            if seen == hash {
                *verdict = Err(why.clone());
            }
        }
        self.shared.set_ready(Err(why));
        let summaries: Vec<String> = problems.iter().map(Invalid::summary).collect();
        self.shared.note(Note::Rejected {
            hash: hash.to_string(),
            reason: reasons.join("; "),
            summary: summaries.join("; "),
        });
    }

    /// Publishing failed: the same content is tried again on the next event or resync.
    fn failed(&mut self, hash: &str, why: &str) {
        error!("{why}");
        self.seen = None;
        self.shared.metrics.watcher_errors.inc();
        self.shared.set_ready(Err(why.to_string()));
        self.shared.note(Note::Failed {
            hash: hash.to_string(),
            reason: why.to_string(),
        });
    }
}
