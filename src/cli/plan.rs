//! `reconfig plan`: its arguments, the verdicts as text, JSON lines, Markdown or GitHub
//! workflow commands, and the limits that turn a too-big change into exit code 3.
//!
//! It compares what `inject` would decide for two renders (or for one render and what the
//! cluster runs, with `--live`): reading is `input`'s (and `kube::live`'s), the comparison is
//! `manifest::compare`'s; this file only wires them, prints and applies the limits.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context as _;

use super::ci::{workflow_command, Level, Place};
use crate::input::{Inputs, ManifestArgs};
use crate::manifest::compare::{compare, CauseKind, Change, Settings, Verdict};
use crate::manifest::shape::Sides;
use crate::manifest::workload::{KindSpec, WorkloadId};
use crate::manifest::{Analysis, DEFAULT_ANNOTATION};
use crate::units::parse_duration;
use crate::Failure;

const EXAMPLES: &str = "\
Examples:
  # Helm 3: the release as stored (hooks too), and the upgrade rendered alike
  { helm get manifest app -n prod; helm get hooks app -n prod; } > old.yaml
  helm template app ./chart -n prod -f values.yaml --post-renderer reconfig \\
      --post-renderer-args inject | reconfig plan old.yaml -

  # Helm 4: the plugin re-serialises the stream, so render through it too
  { helm get manifest app -n prod; helm get hooks app -n prod; } > old.yaml
  helm template app ./chart -n prod -f values.yaml --post-renderer reconfig \\
      --post-renderer-args=--namespace=prod | reconfig plan old.yaml -

  # The old side from the cluster (read-only), for Helm, kustomize or plain YAML
  kustomize build overlays/prod | reconfig plan --live -

  # In CI: a table for the pull request, and exit 3 if too much would restart
  reconfig plan old.yaml new.yaml --output markdown --max-restarts 5 \\
      --fail-on-restart statefulset/postgres

Every pod-template change is reported with its cause: `config` (a ConfigMap or Secret key
it reads) or `template` (an image, env, an annotation such as a chart's own checksum/cm).

Exit codes: 0 ok, 1 invalid input, 2 usage or internal error (an unreachable API server
with --live), 3 a limit (--max-restarts, --fail-on-restart) was exceeded.";

/// Compare two renders: which pod templates restart, and why.
///
/// A pod template restarts when anything in it changes: config (the checksum `inject`
/// writes: a key it reads changed, appeared or went away, or it started or stopped using an
/// object) or the template itself (image, env, annotations, …). Each cause says which.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
// The flags shared with inject, in plan's own words.
#[command(mut_arg("namespace", |a| a.help(
    "Namespace of objects that set none in either render (as given to inject)")))]
#[command(mut_arg("include_jobs", |a| a.help(
    "Count Jobs too, as inject --include-jobs annotates them (a changed Job template makes \
     `helm upgrade` fail: a Job's pod template is immutable)")))]
#[command(mut_arg("secret_hash_key_file", |a| a.help(
    "The key inject hashes Secret values with (HMAC-SHA256), so plan computes the checksums \
     inject writes")))]
pub struct PlanArgs {
    /// OLD NEW: the render running now (e.g. `helm get manifest`) and the one about to be
    /// applied. With --live, only NEW. `-` reads stdin.
    #[arg(value_name = "RENDER", num_args = 1..=2, required = true)]
    pub renders: Vec<PathBuf>,

    /// Read the old side from the cluster (kubeconfig or in-cluster account): the workloads of
    /// the new render and the ConfigMaps and Secrets of their namespaces, with one list per
    /// kind and namespace (read-only). Workloads the cluster lacks are `new`.
    #[arg(long)]
    pub live: bool,

    /// The kubeconfig context to read with (--live); the current one by default.
    #[arg(long, value_name = "NAME", requires = "live")]
    pub context: Option<String>,

    /// Time limit for each request to the API server (--live).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: std::time::Duration,

    /// text for people, json (one object per pod template), markdown (a table for a pull
    /// request comment), github (a notice per restarted workload, as workflow commands).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// Exit 3 when more workloads than this would restart.
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<usize>,

    /// Exit 3 when any of these workloads would restart: KIND/NAME (any namespace) or
    /// KIND/NAMESPACE/NAME; KIND may be KIND.GROUP. Comma-separated, repeatable.
    #[arg(long, value_name = "KIND/NAME", value_delimiter = ',')]
    pub fail_on_restart: Vec<WorkloadSpec>,

    #[command(flatten)]
    pub manifest: ManifestArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
    Markdown,
    Github,
}

/// A workload named on the command line: `statefulset/postgres`, `Rollout.argoproj.io/prod/api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    pub kind: KindSpec,
    pub namespace: Option<String>,
    pub name: String,
}

impl FromStr for WorkloadSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let usage =
            || format!("`{s}` should be KIND/NAME or KIND/NAMESPACE/NAME, e.g. deployment/web");
        let parts: Vec<&str> = s.trim().split('/').collect();
        let (kind, namespace, name) = match parts.as_slice() {
            [kind, name] => (*kind, None, *name),
            [kind, ns, name] if !ns.is_empty() => (*kind, Some(ns.to_string()), *name),
            _ => return Err(usage()),
        };
        if name.is_empty() {
            return Err(usage());
        }
        Ok(WorkloadSpec {
            kind: kind.parse()?,
            namespace,
            name: name.to_string(),
        })
    }
}

impl WorkloadSpec {
    fn matches(&self, id: &WorkloadId) -> bool {
        id.kind.matches(&self.kind)
            && id.name == self.name
            && self.namespace.as_ref().is_none_or(|ns| *ns == id.namespace)
    }
}

impl std::fmt::Display for WorkloadSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.kind.kind)?;
        if let Some(group) = &self.kind.group {
            write!(f, ".{group}")?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, "/{ns}")?;
        }
        write!(f, "/{}", self.name)
    }
}

/// One line of `--output json`.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    /// `Deployment prod/web`, as text names it.
    workload: String,
    kind: &'a str,
    group: &'a str,
    namespace: &'a str,
    name: &'a str,
    path: &'a str,
    verdict: &'static str,
    /// Why it restarts, each with its cause (`config` or `template`).
    reasons: Vec<JsonReason<'a>>,
    /// Why it is not tracked (untracked only).
    note: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct JsonReason<'a> {
    cause: &'static str,
    text: &'a str,
}

impl<'a> JsonLine<'a> {
    fn new(change: &'a Change) -> Self {
        JsonLine {
            workload: change.workload.to_string(),
            kind: &change.workload.kind.kind,
            group: &change.workload.kind.group,
            namespace: &change.workload.namespace,
            name: &change.workload.name,
            path: &change.path,
            verdict: change.verdict.as_str(),
            reasons: change
                .causes
                .iter()
                .map(|c| JsonReason {
                    cause: c.kind.as_str(),
                    text: &c.text,
                })
                .collect(),
            note: change.note.as_deref(),
        }
    }
}

pub fn run(args: PlanArgs) -> Result<(), Failure> {
    let mut options = args.manifest.options(DEFAULT_ANNOTATION)?;
    options.template_shapes = true;
    let limit = args.manifest.max_input_size;
    let (old_path, new_path) = match (args.live, args.renders.as_slice()) {
        (false, [old, new]) => (Some(old), new),
        (true, [new]) => (None, new),
        (false, _) => {
            return Err(Failure::Usage(anyhow::anyhow!(
                "plan needs two renders, OLD and NEW (or --live and NEW)"
            )))
        }
        (true, _) => {
            return Err(Failure::Usage(anyhow::anyhow!(
                "with --live, plan takes only the new render: the old side is the cluster"
            )))
        }
    };
    let new_inputs = Inputs::read(std::slice::from_ref(new_path), limit)?;
    let live = if args.live {
        Some(Live::connect(
            args.request_timeout,
            args.context.as_deref(),
            &mut options,
        )?)
    } else {
        None
    };
    let new = new_inputs.analyze(&options)?;
    let old_side = match (old_path, &live) {
        (Some(path), _) => OldSide::Render(Inputs::read(std::slice::from_ref(path), limit)?),
        (None, Some(live)) => OldSide::Live(live.read(&new)?),
        (None, None) => {
            return Err(Failure::Internal(anyhow::anyhow!(
                "plan: no old render and no --live"
            )))
        }
    };
    let (old, sides) = match &old_side {
        OldSide::Render(inputs) => (inputs.analyze(&options)?, Sides::Renders),
        OldSide::Live(text) => {
            // The API server's JSON is valid YAML; a failure here is not the user's input.
            let old = crate::manifest::analyze(text, &options).map_err(|e| {
                Failure::Internal(anyhow::anyhow!("reading the cluster's objects: {e}"))
            })?;
            (old, Sides::Live)
        }
    };
    // A flag that matches nothing in either render is most likely a typo: say so once.
    for flag in &new.resolution.unmatched {
        if old.resolution.unmatched.contains(flag) {
            tracing::warn!("{flag}");
        }
    }
    let settings = Settings {
        sides,
        annotation_key: &options.annotation_key,
    };
    let changes = compare(&old, &new, settings);
    for spec in &args.fail_on_restart {
        if !changes.iter().any(|c| spec.matches(&c.workload)) {
            tracing::warn!("--fail-on-restart {spec}: no such workload in the render");
        }
    }
    let breaches = breaches(&changes, args.max_restarts, &args.fail_on_restart);

    let out = match args.output {
        Output::Text => text(&changes),
        Output::Json => json(&changes)?,
        Output::Markdown => markdown(&changes, &breaches),
        Output::Github => github(&changes, &breaches),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the plan to stdout")
        .map_err(Failure::Internal)?;
    if breaches.is_empty() {
        Ok(())
    } else {
        Err(Failure::Limit(breaches.join("; ")))
    }
}

/// Where the old side comes from.
enum OldSide {
    Render(Inputs),
    /// The cluster's objects as a stream of JSON documents (`--live`).
    Live(String),
}

/// The cluster as the old side (`--live`).
#[cfg(feature = "kube")]
struct Live {
    runtime: tokio::runtime::Runtime,
    connection: crate::kube::client::Connection,
}

#[cfg(feature = "kube")]
impl Live {
    /// Connects (kubeconfig or in-cluster account). Objects of the render that name no
    /// namespace are in the kubeconfig's namespace, as `kubectl apply` puts them, unless
    /// `--namespace` says otherwise.
    fn connect(
        timeout: std::time::Duration,
        context: Option<&str>,
        options: &mut crate::manifest::Options,
    ) -> Result<Live, Failure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime")
            .map_err(Failure::Internal)?;
        let connection = runtime
            .block_on(crate::kube::client::connect_in(timeout, context))
            .map_err(|e| Failure::Internal(e.into()))?;
        if options.rules.namespace.is_none() {
            options.rules.namespace = Some(connection.default_namespace.clone());
        }
        Ok(Live {
            runtime,
            connection,
        })
    }

    /// What the cluster runs of the new render's workloads, as a stream of JSON documents.
    fn read(&self, new: &Analysis<'_>) -> Result<String, Failure> {
        use crate::kube::live;
        let wanted = live::wanted(new);
        let read = self
            .runtime
            .block_on(live::read(&self.connection, &wanted))
            .map_err(|e| Failure::Internal(e.into()))?;
        tracing::info!(
            "read {} workload(s) and {} ConfigMap(s)/Secret(s) from {} in {} request(s)",
            read.workloads,
            read.configs,
            self.connection.cluster,
            read.requests
        );
        Ok(read.text)
    }
}

/// Without the API client, `--live` is a usage error that says why: no value can exist.
#[cfg(not(feature = "kube"))]
enum Live {}

#[cfg(not(feature = "kube"))]
impl Live {
    fn connect(
        _: std::time::Duration,
        _: Option<&str>,
        _: &mut crate::manifest::Options,
    ) -> Result<Live, Failure> {
        Err(Failure::Usage(anyhow::anyhow!(
            "--live needs the Kubernetes API client, which this build leaves out (cargo feature `kube`)"
        )))
    }

    fn read(&self, _: &Analysis<'_>) -> Result<String, Failure> {
        match *self {}
    }
}

/// Why the change is over the limits, if it is: one sentence per limit.
fn breaches(changes: &[Change], max: Option<usize>, listed: &[WorkloadSpec]) -> Vec<String> {
    let restarting: std::collections::BTreeSet<&WorkloadId> = changes
        .iter()
        .filter(|c| c.verdict == Verdict::Restart)
        .map(|c| &c.workload)
        .collect();
    let mut out = Vec::new();
    if let Some(max) = max.filter(|max| restarting.len() > *max) {
        out.push(format!(
            "{} workload(s) would restart, more than --max-restarts {max}",
            restarting.len()
        ));
    }
    let named: Vec<String> = restarting
        .iter()
        .filter(|w| listed.iter().any(|spec| spec.matches(w)))
        .map(|w| w.to_string())
        .collect();
    if !named.is_empty() {
        out.push(format!(
            "{} would restart (--fail-on-restart)",
            named.join(", ")
        ));
    }
    out
}

/// `config: …; template: a, b`: the causes as one text, config first.
fn causes_text(change: &Change) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut template: Vec<&str> = Vec::new();
    for c in &change.causes {
        match c.kind {
            CauseKind::Config => parts.push(format!("config: {}", c.text)),
            CauseKind::Template => template.push(&c.text),
        }
    }
    if !template.is_empty() {
        parts.push(format!("template: {}", template.join(", ")));
    }
    parts.join("; ")
}

/// `N of M pod template(s) restart: C for config, T for other template changes.`
fn summary(changes: &[Change]) -> String {
    let restarts: Vec<&Change> = changes
        .iter()
        .filter(|c| c.verdict == Verdict::Restart)
        .collect();
    let config = restarts.iter().filter(|c| c.for_config()).count();
    format!(
        "{} of {} pod template(s) restart: {config} for config, {} for other template changes only.",
        restarts.len(),
        changes.len(),
        restarts.len() - config
    )
}

fn text(changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        let verdict = match c.verdict {
            Verdict::Restart => "RESTART",
            Verdict::New => "NEW",
            other => other.as_str(),
        };
        let _ = write!(out, "{verdict:<9} {}", c.workload);
        if !c.path.is_empty() {
            let _ = write!(out, " {}", c.path);
        }
        if !c.causes.is_empty() {
            let _ = write!(out, ": {}", causes_text(c));
        } else if let Some(note) = &c.note {
            let _ = write!(out, ": {note}");
        }
        out.push('\n');
    }
    out.push_str(&summary(changes));
    out.push('\n');
    out
}

fn json(changes: &[Change]) -> Result<String, Failure> {
    let mut out = String::new();
    for c in changes {
        let line =
            serde_json::to_string(&JsonLine::new(c)).map_err(|e| Failure::Internal(e.into()))?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// Text in a Markdown table cell: no `|` to end it, no line break, no HTML from a name.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\r', '\n'], " ")
}

/// A pull-request comment: a heading with the count, a table of what restarts, a count of
/// the rest, and the limits exceeded.
fn markdown(changes: &[Change], breaches: &[String]) -> String {
    let mut out = String::from("### reconfig plan\n\n");
    let restarts: Vec<&Change> = changes
        .iter()
        .filter(|c| c.verdict == Verdict::Restart)
        .collect();
    if restarts.is_empty() {
        out.push_str("No pod template restarts.\n\n");
    } else {
        out.push_str("| workload | pod template | restarts for | what changed |\n");
        out.push_str("|---|---|---|---|\n");
        for c in &restarts {
            let mut kinds: Vec<&str> = c.causes.iter().map(|k| k.kind.as_str()).collect();
            kinds.dedup();
            let what: Vec<String> = c.causes.iter().map(|k| cell(&k.text)).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&c.workload.to_string()),
                cell(&c.path),
                kinds.join(", "),
                what.join("<br>")
            );
        }
        out.push('\n');
    }
    let count = |v: Verdict| changes.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        out,
        "{}  \n{} new, {} removed, {} unchanged, {} untracked.",
        summary(changes),
        count(Verdict::New),
        count(Verdict::Removed),
        count(Verdict::Keep),
        count(Verdict::Untracked),
    );
    for b in breaches {
        let _ = writeln!(out, "\n**Over the limit:** {}", cell(b));
    }
    out
}

/// A notice per restarted pod template, an error per limit exceeded.
fn github(changes: &[Change], breaches: &[String]) -> String {
    let mut out = String::new();
    for c in changes.iter().filter(|c| c.verdict == Verdict::Restart) {
        let title = format!("reconfig plan: {} restarts", c.workload);
        let place = Place {
            title: Some(&title),
            ..Place::default()
        };
        let message = format!("{} {}: {}", c.workload, c.path, causes_text(c));
        out.push_str(&workflow_command(Level::Notice, &place, message.trim()));
        out.push('\n');
    }
    out.push_str(&workflow_command(
        Level::Notice,
        &Place::default(),
        &format!("reconfig plan: {}", summary(changes)),
    ));
    out.push('\n');
    for b in breaches {
        let place = Place {
            title: Some("reconfig plan: over the limit"),
            ..Place::default()
        };
        out.push_str(&workflow_command(Level::Error, &place, b));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_specs() {
        let spec: WorkloadSpec = "statefulset/postgres".parse().expect("spec");
        assert_eq!(spec.kind.kind, "statefulset");
        assert_eq!(spec.namespace, None);
        let spec: WorkloadSpec = "Rollout.argoproj.io/prod/api".parse().expect("spec");
        assert_eq!(spec.kind.group.as_deref(), Some("argoproj.io"));
        assert_eq!(spec.namespace.as_deref(), Some("prod"));
        assert_eq!(spec.to_string(), "Rollout.argoproj.io/prod/api");
        for bad in ["web", "deployment/", "/web", "a/b/c/d", "deploy-ment/x"] {
            assert!(bad.parse::<WorkloadSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\nc<x>"), "a\\|b c&lt;x&gt;");
    }
}
