//! `reconfig prune`: its arguments, and the report as text or JSON lines.
//!
//! Listing, deciding and deleting are `kube::prune`'s and `kube::versions`'s; this file only
//! wires them to the command line and prints what happened to each version.

use std::time::Duration;

#[cfg(feature = "kube")]
use crate::clock::rfc3339;
#[cfg(feature = "kube")]
use crate::kube::prune::{Deletion, Report};
use crate::units::parse_duration;
use crate::Failure;

const EXAMPLES: &str = "\
Examples:
  reconfig prune -n shop --dry-run
  reconfig prune -n shop --keep-last 5 --min-age 1h
  reconfig prune --all-namespaces -l app.kubernetes.io/instance=shop \\
      --output json

A version is kept while a ReplicaSet, ControllerRevision, Job, CronJob, Pod or workload
(Deployment, StatefulSet, DaemonSet, Rollout, OpenKruise and Knative kinds) names it: an old
ReplicaSet is what a rollback or a canary abort scales up again. Deletes are conditional on the
resourceVersion and uid that were listed, so a version changed since (re-applied by a rollback)
is not deleted. Exit codes: 0 done, 2 the API refused or failed (what was deleted is listed).

helm-snippets' reconfig.prune template runs this as a CronJob with the RBAC it needs.";

/// Delete versions of versioned config (`inject --versioned`) that nothing uses any more.
///
/// Lists the ConfigMaps and Secrets labelled reconfig/versioned-from, and everything that
/// may name them (one list per kind, no per-object reads). Deletes those no object names,
/// except the newest --keep-last of each name and any younger than --min-age.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct PruneArgs {
    /// Namespace to prune (default: the kubeconfig's, or the service account's).
    #[arg(short, long, value_name = "NS", conflicts_with = "all_namespaces")]
    pub namespace: Option<String>,

    /// Prune in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// Only versions matching this label selector (e.g. app.kubernetes.io/instance=shop).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Keep the newest N versions of each name, used or not.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub keep_last: usize,

    /// Never delete a version younger than this: it may have been applied before the workload
    /// that names it.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub min_age: Duration,

    /// Say what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Text for people, or JSON lines (one per version) for tools.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Time limit for each API request.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[cfg(not(feature = "kube"))]
pub fn run(_args: PruneArgs) -> Result<(), Failure> {
    Err(Failure::Usage(anyhow::anyhow!(
        "reconfig prune needs the Kubernetes API, and this reconfig was built without it (cargo feature `kube`)"
    )))
}

#[cfg(feature = "kube")]
pub fn run(args: PruneArgs) -> Result<(), Failure> {
    use std::io::Write as _;

    use anyhow::Context as _;

    use crate::kube::prune::{prune, Settings};

    let settings = Settings {
        namespace: args.namespace.clone(),
        all_namespaces: args.all_namespaces,
        selector: args.selector.clone(),
        keep_last: args.keep_last,
        min_age: args.min_age,
        dry_run: args.dry_run,
        timeout: args.timeout,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(Failure::Internal)?;
    let report = runtime
        .block_on(prune(&settings))
        .map_err(|e| Failure::Internal(anyhow::anyhow!("{e}")))?;
    for kind in &report.absent_kinds {
        tracing::debug!("{kind} is not served by this cluster; skipped");
    }
    let lines = lines(&report, args.output);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in &lines {
        writeln!(out, "{line}")
            .context("writing to stdout")
            .map_err(Failure::Internal)?;
    }
    let failed: Vec<String> = report
        .decisions
        .iter()
        .filter_map(|(d, deletion)| {
            deletion.as_ref().filter(|x| x.is_failure()).map(|x| {
                format!(
                    "{} {}/{}: {}",
                    d.version.kind,
                    d.version.namespace,
                    d.version.name,
                    describe(x)
                )
            })
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Internal(anyhow::anyhow!(
            "{} version(s) not deleted: {}",
            failed.len(),
            failed.join("; ")
        )))
    }
}

#[cfg(feature = "kube")]
fn describe(deletion: &Deletion) -> String {
    match deletion {
        Deletion::Deleted => "deleted".into(),
        Deletion::WouldDelete => "would be deleted (--dry-run)".into(),
        Deletion::AlreadyGone => "already gone".into(),
        Deletion::Changed(why) => format!("changed since it was listed, kept ({why})"),
        Deletion::Failed(why) => format!("the delete failed: {why}"),
        Deletion::NotAttempted => "not attempted after an earlier delete failed".into(),
    }
}

#[cfg(feature = "kube")]
fn action(deletion: Option<&Deletion>) -> &'static str {
    match deletion {
        None => "keep",
        Some(Deletion::Deleted) => "deleted",
        Some(Deletion::WouldDelete) => "would-delete",
        Some(Deletion::AlreadyGone) => "already-gone",
        Some(Deletion::Changed(_)) => "changed",
        Some(Deletion::Failed(_)) => "failed",
        Some(Deletion::NotAttempted) => "not-attempted",
    }
}

/// The report as lines of text or JSON.
#[cfg(feature = "kube")]
fn lines(report: &Report, output: Output) -> Vec<String> {
    let mut lines = Vec::new();
    let (mut deleted, mut kept) = (0usize, 0usize);
    for (decision, deletion) in &report.decisions {
        let v = &decision.version;
        let why = match (&decision.keep, deletion) {
            (Some(keep), _) => keep.to_string(),
            (None, Some(d)) => describe(d),
            (None, None) => String::new(),
        };
        match deletion {
            None => kept += 1,
            Some(Deletion::Deleted | Deletion::WouldDelete | Deletion::AlreadyGone) => deleted += 1,
            Some(_) => kept += 1,
        }
        match output {
            Output::Json => lines.push(
                serde_json::json!({
                    "kind": v.kind,
                    "namespace": v.namespace,
                    "name": v.name,
                    "versionedFrom": v.from,
                    "created": v.created.map(rfc3339),
                    "action": action(deletion.as_ref()),
                    "reason": why,
                })
                .to_string(),
            ),
            Output::Text => lines.push(format!(
                "{:<13} {} {}/{} (from {}): {why}",
                action(deletion.as_ref()),
                v.kind,
                v.namespace,
                v.name,
                v.from
            )),
        }
    }
    if output == Output::Text {
        let scope = match &report.namespace {
            Some(ns) => format!("namespace {ns}"),
            None => "all namespaces".to_string(),
        };
        let verb = if report
            .decisions
            .iter()
            .any(|(_, d)| matches!(d, Some(Deletion::WouldDelete)))
        {
            "would be deleted"
        } else {
            "deleted"
        };
        lines.push(format!(
            "{scope}: {} version(s), {deleted} {verb}, {kept} kept",
            report.decisions.len()
        ));
    }
    lines
}

#[cfg(all(test, not(feature = "kube")))]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn without_the_kube_feature_prune_is_a_usage_error() {
        let cli = crate::cli::Cli::parse_from(["reconfig", "prune", "--dry-run"]);
        let crate::cli::Command::Prune(args) = cli.command else {
            panic!("prune parses");
        };
        let failure = run(args).expect_err("refused");
        assert_eq!(failure.exit_code(), 2);
        assert!(
            failure.to_string().contains("cargo feature `kube`"),
            "{failure}"
        );
    }
}
