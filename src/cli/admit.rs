//! `reconfig admit`: the validating admission webhook's flags, and starting it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::admit::{self, Settings};
use crate::units::{parse_duration, parse_size};
use crate::Failure;

const EXAMPLES: &str = "\
Examples:
  # What the Helm chart (helm-snippets/admit-chart) runs
  reconfig admit --policy /etc/reconfig/policy/policy.yaml \\
      --tls-cert /etc/reconfig/tls/tls.crt --tls-key /etc/reconfig/tls/tls.key

The API server POSTs AdmissionReviews (admission.k8s.io/v1) to https://SERVICE:443/validate.
ConfigMap and Secret CREATE and UPDATE requests (dry runs alike) are judged by the policy, as
`reconfig check --policy` and `reconfig watch --policy` judge them: a failing deny rule refuses
the object with a message naming object, key, line and rule; a failing warn rule adds a
warning. Messages never quote a Secret's value. Everything else is allowed untouched.

The certificate, the key and the policy (and the schemas it names) are looked at every
--reload-interval and taken when they change (a kubelet ..data swap included); a pair that does
not match or a policy that does not load is refused and the old one kept
(reconfig_admit_certificate_reloads_total / reconfig_admit_policy_reloads_total{result=\"failure\"}).
A review not judged within --timeout is answered 503, so the webhook's failurePolicy decides.";

/// Validating admission webhook: the policy enforced when ConfigMaps and Secrets are applied.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct AdmitArgs {
    /// The policy file (the one `check --policy` and `watch --policy` read).
    #[arg(long, value_name = "FILE", env = "RECONFIG_POLICY")]
    pub policy: PathBuf,

    /// The serving certificate chain (PEM), re-read when it changes.
    #[arg(long, value_name = "FILE", default_value = "/etc/reconfig/tls/tls.crt")]
    pub tls_cert: PathBuf,

    /// The certificate's private key (PEM), re-read when it changes.
    #[arg(long, value_name = "FILE", default_value = "/etc/reconfig/tls/tls.key")]
    pub tls_key: PathBuf,

    /// HTTPS address for AdmissionReviews (POST /validate); `:PORT` is every interface.
    #[arg(long, value_name = "ADDR", default_value = ":8443")]
    pub listen: String,

    /// Plain HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, value_name = "ADDR", default_value = ":9534")]
    pub probe_listen: String,

    /// Time to judge one review; keep it below the webhook's timeoutSeconds.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Largest request body accepted (an object of up to 1 MiB plus its oldObject, as JSON).
    #[arg(long, value_name = "SIZE", default_value = "3MiB", value_parser = parse_size)]
    pub max_body_size: usize,

    /// Run the policy's external commands too (off: a webhook should not run programs on
    /// what any client sends; check and watch run them).
    #[arg(long)]
    pub allow_commands: bool,

    /// How often the certificate, key and policy files are looked at for a change.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub reload_interval: Duration,

    /// Worker threads (default: the number of CPUs, at most 4).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

pub fn run(args: AdmitArgs) -> Result<(), Failure> {
    if args.timeout.is_zero() || args.reload_interval.is_zero() {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--timeout and --reload-interval must be above zero"
        )));
    }
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(4)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .max_blocking_threads(64)
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(Failure::Internal)?;
    let settings = Settings {
        policy: args.policy,
        cert: args.tls_cert,
        key: args.tls_key,
        listen: args.listen,
        probe_listen: args.probe_listen,
        timeout: args.timeout,
        max_body: args.max_body_size,
        allow_commands: args.allow_commands,
        reload_interval: args.reload_interval,
    };
    runtime.block_on(admit::run(settings)).map_err(|e| match e {
        admit::Error::Policy(crate::policy::PolicyError::Invalid(_)) => {
            Failure::Invalid(format!("invalid policy:\n{e}"))
        }
        e => Failure::Usage(e.into()),
    })
}
