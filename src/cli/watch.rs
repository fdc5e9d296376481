//! `reconfig watch` on the command line: its flags, and turning them into the sidecar's
//! [`Settings`](crate::watch::Settings), its action policy and, with `--events` or
//! `--annotate-pod`, a Kubernetes API reporter.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::validation::ValidationArgs;
use crate::backoff::{Backoff, Jitter};
use crate::config;
use crate::reload::metric::Condition;
use crate::reload::signal::{parse_signal, Signaller, Target};
use crate::reload::verify::{self, Probe, Verify};
use crate::reload::webhook::{parse_statuses, Webhook};
use crate::reload::{Action, Policy};
use crate::units::{parse_duration, parse_size};
use crate::watch::{self, AtStart, Sidecar};
use crate::Failure;

const EXAMPLES: &str = "\
Examples:
  # Prometheus: validate with promtool, then POST /-/reload
  reconfig watch --dir /etc/prometheus \\
      --validate-cmd 'promtool check config {dir}/prometheus.yml' \\
      --webhook http://localhost:9090/-/reload

  # nginx, shareProcessNamespace: true: nginx -t, then SIGHUP the master
  reconfig watch --dir /etc/nginx/conf.d --publish /run/nginx-conf \\
      --validate-cmd 'nginx -t -c /etc/nginx/nginx.conf' \\
      --signal SIGHUP --process nginx

  # An app that cannot reload: validate against a schema, then restart it
  reconfig watch --dir /config --schema config.yaml=/schemas/config.json \\
      --restart --process my-app

  # The policy `reconfig admit` enforces; the folder is ConfigMap app-config
  reconfig watch --dir configmap/app-config=/config \\
      --policy /etc/reconfig/policy.yaml --signal SIGHUP --process app

  # A validator that needs a shell: {dir:q} is the folder quoted for it
  reconfig watch --dir /config --signal SIGHUP --process my-app \\
      --process-unique \\
      --validate-cmd \"sh -c 'app --check {dir:q}/app.yaml && lint {dir:q}'\"

{dir} in --validate-cmd is the folder holding the candidate files: the staged copy with --publish,
otherwise the volume's current ..data folder (or the plain folder). It is one argument, never split;
inside your own `sh -c '...'` use {dir:q}, so that a folder name cannot inject shell commands.

--pid 1, a --pid-file holding 1 or reconfig's own PID, and a --process name reconfig itself answers
to are refused at start; found at reload time, such a refusal fails that version without retries.

Verify that the app took the config, and roll back when it did not (needs --publish):
  reconfig watch --dir /config --publish /run/nginx-conf \\
      --signal SIGHUP --process nginx \\
      --verify-url http://127.0.0.1:8080/healthz --verify-body 'ok' \\
      --verify-timeout 10s
  reconfig watch --dir /config --publish /run/prometheus \\
      --signal SIGHUP --process prometheus \\
      --verify-metric http://127.0.0.1:9090/metrics \\
      'prometheus_config_last_reload_successful==1'
A version is applied only once every --verify-* check passes in one round (polled every
--verify-interval, after --verify-delay, within --verify-timeout). One that fails is replaced by the
newest verified version, which is acted on and verified again; the failed content is not tried
again. prometheus_config_last_reload_successful==1 also requires
prometheus_config_last_reload_success_timestamp_seconds>={action_time} (a reload after the action).";

const KUBE_API: &str = "Kubernetes API (needs RBAC: helm-snippets, reconfig.watch.rbac)";

/// Watch mounted ConfigMaps/Secrets, validate every change, and only then tell the app.
///
/// Kubelet volumes are recognised by their `..data` link and react to its swap;
/// plain folders react after a quiet period. A change is a change of content:
/// rewrites with the same bytes do nothing. An invalid config is logged, counted
/// and shown on /status (and in Events with --events), and the app keeps its last
/// good one. /readyz is ready once a validated config runs. With --verify-*, a version
/// is applied once the app is seen to run it; with --publish, one it does not take is
/// replaced by the newest verified version.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct WatchArgs {
    /// A ConfigMap/Secret volume root or a plain folder to watch (repeatable). Write
    /// configmap/NAME=DIR or secret/NAME=DIR to say which object it holds, so --policy rules
    /// selecting it apply (its namespace is POD_NAMESPACE's).
    #[arg(long, value_name = "[configmap/NAME=]DIR", required = true)]
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

    /// Run this command (no shell, its own process group) after each validated change.
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

    /// With --process: refuse to signal when the name matches several unrelated process trees (by default each is signalled, with a warning).
    #[arg(long, help_heading = "Target")]
    pub process_unique: bool,

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

    /// Address for /healthz, /readyz, /status and /metrics; `:PORT` means every interface, port 0 picks one.
    #[arg(long, value_name = "ADDR", default_value = ":9533")]
    pub listen: String,

    /// Accept a folder with no files as a config. Without it, an empty folder is not a config
    /// yet: the sidecar waits for files, as for a missing folder, and once a config runs, a
    /// version with no files is rejected.
    #[arg(long)]
    pub allow_empty: bool,

    /// After the actions: GET this URL and require 2xx (or --verify-status). Repeatable.
    #[arg(long, value_name = "URL", help_heading = "Verify")]
    pub verify_url: Vec<String>,

    /// Status codes that count as success for --verify-url (default: any 2xx), e.g. 200,204.
    #[arg(long, value_name = "CODES", value_parser = parse_statuses, help_heading = "Verify")]
    pub verify_status: Option<Vec<u16>>,

    /// A regular expression the --verify-url body must match (the first 1 MiB is read).
    #[arg(long, value_name = "REGEX", help_heading = "Verify")]
    pub verify_body: Option<String>,

    /// GET a Prometheus text page and require NAME[{label="v"}]OP VALUE of its samples (OP: == != >= <= > <; VALUE: a number or {action_time}). Repeatable.
    #[arg(long, num_args = 2, value_names = ["URL", "CONDITION"], help_heading = "Verify")]
    pub verify_metric: Vec<String>,

    /// Run this command (no shell) and require exit 0; {dir} is the folder the app reads (--publish, else the first --dir).
    #[arg(long, value_name = "CMD", help_heading = "Verify")]
    pub verify_cmd: Option<String>,

    /// Wait this long after the actions before the first check.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration, help_heading = "Verify")]
    pub verify_delay: Duration,

    /// Give up on a version this long after its actions (the delay included): it failed verification.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, help_heading = "Verify")]
    pub verify_timeout: Duration,

    /// Check again this often until every check passes.
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_duration, help_heading = "Verify")]
    pub verify_interval: Duration,

    /// Verify and report, but never put back the last verified version.
    #[arg(long, help_heading = "Verify")]
    pub no_rollback: bool,

    /// Largest file accepted; a bigger one is reported and not forwarded.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub max_file_size: usize,

    #[command(flatten)]
    pub kube: KubeArgs,
}

/// The Kubernetes API flags: what the sidecar reports, about which pod.
#[derive(Debug, clap::Args)]
pub struct KubeArgs {
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

#[cfg(feature = "kube")]
impl From<&KubeArgs> for crate::kube::Settings {
    fn from(args: &KubeArgs) -> Self {
        crate::kube::Settings {
            events: args.events,
            annotate: args.annotate_pod,
            pod_name: args.pod_name.clone().filter(|n| !n.is_empty()),
            pod_namespace: args.pod_namespace.clone().filter(|n| !n.is_empty()),
            pod_uid: args.pod_uid.clone().filter(|n| !n.is_empty()),
            timeout: args.kube_timeout,
            details: args.report_details,
        }
    }
}

impl WatchArgs {
    fn target(&self) -> Option<Target> {
        self.pid
            .map(Target::Pid)
            .or_else(|| self.pid_file.clone().map(Target::PidFile))
            .or_else(|| {
                self.process.clone().map(|name| Target::Process {
                    name,
                    unique: self.process_unique,
                })
            })
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
        if self.process_unique && self.process.is_none() {
            anyhow::bail!("--process-unique goes with --process NAME");
        }
        if let Some(target) = &target {
            // PID 1 or reconfig itself would be refused at every reload: say so now.
            Signaller::new()
                .check_at_start(target)
                .map_err(|e| anyhow::anyhow!("cannot signal {target}: {e}"))?;
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
            backoff: Backoff::new(
                self.retry_backoff,
                Duration::from_secs(30).max(self.retry_backoff),
            ),
            jitter: Jitter::new(self.jitter),
            verify: self.verify()?,
        })
    }

    /// The verification the `--verify-*` flags ask for, if any.
    fn verify(&self) -> anyhow::Result<Option<Verify>> {
        let mut probes = Vec::new();
        let body = match &self.verify_body {
            Some(re) => Some(
                regex::RegexBuilder::new(re)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| anyhow::anyhow!("--verify-body: {e}"))?,
            ),
            None => None,
        };
        if self.verify_url.is_empty() && (body.is_some() || self.verify_status.is_some()) {
            anyhow::bail!("--verify-body and --verify-status go with --verify-url URL");
        }
        for url in &self.verify_url {
            probes.push(Probe::Url {
                url: Probe::parse_url(url).map_err(|e| anyhow::anyhow!("--verify-url: {e}"))?,
                accept: self.verify_status.clone().unwrap_or_default(),
                body: body.clone(),
            });
        }
        for pair in self.verify_metric.chunks(2) {
            let [url, condition] = pair else {
                anyhow::bail!("--verify-metric takes a URL and a condition");
            };
            let url = Probe::parse_url(url).map_err(|e| anyhow::anyhow!("--verify-metric: {e}"))?;
            let condition =
                Condition::parse(condition).map_err(|e| anyhow::anyhow!("--verify-metric: {e}"))?;
            probes.push(Probe::Metric {
                url,
                conditions: condition.with_implied(),
            });
        }
        if let Some(cmd) = &self.verify_cmd {
            let dir = self.publish.as_ref().or(self.dir.first());
            let argv = verify::command_argv(cmd, dir.map_or(std::path::Path::new(""), |d| d))
                .map_err(|e| anyhow::anyhow!("--verify-cmd: {e}"))?;
            probes.push(Probe::Command { argv });
        }
        if probes.is_empty() {
            anyhow::ensure!(
                !self.no_rollback,
                "--no-rollback goes with a --verify-url, --verify-metric or --verify-cmd"
            );
            return Ok(None);
        }
        anyhow::ensure!(
            self.verify_delay < self.verify_timeout,
            "--verify-delay ({:?}) must be shorter than --verify-timeout ({:?}), which includes it",
            self.verify_delay,
            self.verify_timeout
        );
        anyhow::ensure!(
            !self.verify_interval.is_zero(),
            "--verify-interval must be more than 0"
        );
        Ok(Some(Verify::new(
            probes,
            self.verify_delay,
            self.verify_timeout,
            self.verify_interval,
        )))
    }

    /// The sidecar's settings; fails on flags that do not fit together.
    pub fn settings(&self) -> anyhow::Result<watch::Settings> {
        let policy = self.policy()?;
        let rules = self
            .validation
            .policy()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let namespace = std::env::var("POD_NAMESPACE")
            .ok()
            .filter(|ns| !ns.is_empty());
        let mut dirs = Vec::new();
        let mut objects = Vec::new();
        for arg in &self.dir {
            let (object, dir) = super::validation::object_folder(arg);
            if let Some((kind, name)) = object {
                let identity = crate::policy::Identity {
                    kind,
                    namespace: namespace.clone(),
                    name,
                    labels: None,
                };
                objects.push((dir.clone(), identity));
            }
            dirs.push(dir);
        }
        let validator = crate::policy::Folders {
            policy: rules,
            objects,
        };
        if self.validation.policy.is_some() {
            // With the Kubernetes client built in, the sidecar reads labels (see `run`).
            let labels_read = cfg!(feature = "kube") && validator.needs_labels();
            for why in validator.blind_spots(&dirs, labels_read) {
                tracing::warn!("{why}");
            }
        }
        Ok(watch::Settings {
            dirs,
            debounce: self.debounce,
            resync: self.resync,
            validator,
            limits: config::Limits {
                max_file_size: self.max_file_size as u64,
                ..config::Limits::default()
            },
            allow_empty: self.allow_empty,
            publish: self.publish.clone(),
            policy,
            at_start: if self.reload_on_start {
                AtStart::Reload
            } else {
                AtStart::Record
            },
            listen: self.listen.clone(),
            rollback: !self.no_rollback,
        })
    }
}

pub fn run(args: WatchArgs) -> Result<(), Failure> {
    let settings = args.settings().map_err(Failure::Usage)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(Failure::Internal)?;
    runtime.block_on(async {
        let mut sidecar = Sidecar::new(settings);
        if sidecar.needs_labels() {
            read_labels(&args.kube, &mut sidecar).await;
        }
        if args.kube.events || args.kube.annotate_pod {
            // No API access at all is a setup the user must fix before the sidecar is useful.
            report_to_the_api(&args.kube, &mut sidecar)
                .await
                .map_err(Failure::Usage)?;
        }
        sidecar.run().await.map_err(|e| Failure::Internal(e.into()))
    })
}

#[cfg(feature = "kube")]
async fn report_to_the_api(args: &KubeArgs, sidecar: &mut Sidecar) -> anyhow::Result<()> {
    let requests = sidecar.metrics().api_requests.clone();
    let reporter = crate::kube::connect(args.into(), requests)
        .await
        .context("--events/--annotate-pod")?;
    sidecar.report_to(Box::new(reporter));
    Ok(())
}

/// The policy selects by labels: read them from the API server. Without access the sidecar
/// goes on (the label rules do not apply, as it says): a reload never waits on the API.
#[cfg(feature = "kube")]
async fn read_labels(args: &KubeArgs, sidecar: &mut Sidecar) {
    match crate::kube::client::connect(args.kube_timeout).await {
        Ok(connection) => {
            tracing::info!(
                "the policy selects by labels: reading them from {} before each new config",
                connection.cluster
            );
            sidecar.read_labels_with(Box::new(crate::kube::labels::ObjectLabels::new(connection)));
        }
        Err(e) => tracing::warn!(
            "the policy selects by labels, which cannot be read: {e}; rules selecting by labels do not apply"
        ),
    }
}

#[cfg(not(feature = "kube"))]
async fn read_labels(_: &KubeArgs, _: &mut Sidecar) {}

#[cfg(not(feature = "kube"))]
async fn report_to_the_api(_: &KubeArgs, _: &mut Sidecar) -> anyhow::Result<()> {
    anyhow::bail!(
        "--events and --annotate-pod need the Kubernetes API, and this reconfig was built without it (cargo feature `kube`)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Line {
        #[command(flatten)]
        watch: WatchArgs,
    }

    fn parse(args: &[&str]) -> WatchArgs {
        Line::try_parse_from(std::iter::once("watch").chain(args.iter().copied()))
            .expect("parses")
            .watch
    }

    #[test]
    fn the_start_up_choice_is_named_not_a_bool() {
        let quiet = parse(&["--dir", "/config"]).settings().expect("settings");
        assert_eq!(quiet.at_start, AtStart::Record);
        let reload = parse(&["--dir", "/config", "--reload-on-start"])
            .settings()
            .expect("settings");
        assert_eq!(reload.at_start, AtStart::Reload);
    }

    #[test]
    fn a_signal_needs_a_target_and_a_target_needs_a_signal() {
        let no_target = parse(&["--dir", "/c", "--signal", "HUP"]).settings();
        assert!(no_target.is_err());
        let no_signal = parse(&["--dir", "/c", "--pid", "7"]).settings();
        assert!(no_signal.is_err());
        let both = parse(&["--dir", "/c", "--pid", "7", "--signal", "HUP"]);
        let names: Vec<&str> = both
            .settings()
            .expect("settings")
            .policy
            .actions
            .iter()
            .map(Action::name)
            .collect();
        assert_eq!(names, ["signal"]);
    }

    #[test]
    fn process_unique_goes_with_process_and_pid_1_is_refused_at_start() {
        let err = parse(&["--dir", "/c", "--process-unique", "--pid", "7", "--restart"])
            .settings()
            .err()
            .expect("refused");
        assert!(err.to_string().contains("goes with --process"), "{err}");
        let args = parse(&[
            "--dir",
            "/c",
            "--process",
            "app",
            "--process-unique",
            "--restart",
        ]);
        assert_eq!(
            args.target(),
            Some(Target::Process {
                name: "app".into(),
                unique: true
            })
        );
        let err = parse(&["--dir", "/c", "--pid", "1", "--signal", "HUP"])
            .settings()
            .err()
            .expect("refused");
        assert!(
            format!("{err:#}").starts_with("cannot signal PID 1: refusing to signal PID 1"),
            "{err:#}"
        );
    }

    #[cfg(feature = "kube")]
    #[test]
    fn kube_flags_become_the_reporter_settings_and_empty_names_count_as_unset() {
        let args = parse(&[
            "--dir",
            "/c",
            "--events",
            "--pod-name",
            "",
            "--pod-namespace",
            "shop",
            "--kube-timeout",
            "3s",
        ]);
        let settings = crate::kube::Settings::from(&args.kube);
        assert!(settings.events && !settings.annotate && !settings.details);
        assert_eq!(settings.pod_name, None);
        assert_eq!(settings.pod_namespace.as_deref(), Some("shop"));
        assert_eq!(settings.timeout, Duration::from_secs(3));
    }
}
