//! `reconfig inject`: the checksum post-renderer's arguments, logging and output.
//!
//! Reading is `input`'s, deciding every checksum is `manifest`'s; this file only says
//! what was decided and writes the stream.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use tracing::{debug, error, info, warn};

use crate::input::{Inputs, ManifestArgs};
use crate::manifest::object::{ConfigObject, ObjectId};
use crate::manifest::resolve::NoteLevel;
use crate::manifest::version::{Mode, Versioning};
use crate::manifest::workload::qualified;
use crate::manifest::DEFAULT_ANNOTATION;
use crate::Failure;

const EXAMPLES: &str = "\
Examples:
  helm template my-release ./chart | reconfig inject > rendered.yaml

  # Helm 3 (the binary is the post-renderer)
  helm upgrade --install app ./chart \\
      --post-renderer reconfig --post-renderer-args inject

  # Helm 4 (the plugin in helm-snippets/helm-plugin), keeping the diagnostics
  helm upgrade --install app ./chart -n prod --post-renderer reconfig \\
      --post-renderer-args=--namespace=prod \\
      --post-renderer-args=--log-file=/tmp/reconfig.log

  reconfig inject -n prod \\
      --depends deployment/argo-rollouts=configmap/argo-rollouts-config \\
      < all.yaml

  # Content-addressed config names: each pod pins the config it rolled out with
  helm template app ./chart | reconfig inject --versioned --keep

  # ... keeping old versions still in use in the release (helm rollback works)
  helm upgrade app ./chart -n prod --post-renderer reconfig \\
      --post-renderer-args inject --post-renderer-args=--namespace=prod \\
      --post-renderer-args=--versioned --post-renderer-args=--keep \\
      --post-renderer-args=--lookup --post-renderer-args=--carry

Annotations read from workloads and pod templates:
  reconfig/skip: \"true\"                  leave this workload alone
  reconfig/configmaps: \"a,b\"             add ConfigMaps read through the API
  reconfig/secrets: \"s\"                  likewise for Secrets
  reconfig/exclude: \"configmap/x,...\"    leave out what the app hot-reloads
  reconfig/include: \"configmap/x\"        count a volume a reload sidecar watches

Annotations read from ConfigMaps and Secrets:
  reconfig/versioned: \"true\"    rename it after its content (\"false\": never)
  reconfig/carried: \"true\"      an old version --carry copied in: left as it is

Volumes mounted by a known reload sidecar (reconfig watch, configmap-reload,
prometheus-config-reloader, k8s-sidecar) are left out: the app gets those changes without a
restart (-v names them; --include-reloaded counts them). A value under the annotation key that
reconfig did not compute (a chart's own checksum/config) is kept, and reconfig writes its
checksum to reconfig/checksum instead, with a warning.

Helm 3 and Helm 4 show none of a successful post-renderer's warnings (Helm 4 hides its stderr
on failure too): add --log-file (or RECONFIG_LOG_FILE) to keep diagnostics, and under Helm 4 pass
the release namespace with --post-renderer-args=--namespace=NS.";

/// Reads a manifest stream and writes it back with a checksum annotation on
/// every pod template that uses a ConfigMap or Secret of the stream.
///
/// The checksum covers what the pod sees (values, not YAML formatting), and only
/// the keys a template reads when it names keys. Documents that need no change
/// are copied byte for byte. Nothing is written unless the whole input is valid.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct InjectArgs {
    /// Manifest files, read as one stream; `-` or none reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Annotation key written on pod templates.
    #[arg(short, long, value_name = "KEY", default_value = DEFAULT_ANNOTATION, value_parser = parse_annotation_key)]
    pub annotation: String,

    #[command(flatten)]
    pub manifest: ManifestArgs,

    /// Fail when a required ConfigMap or Secret is not in the stream, a --depends or
    /// --template-path matches nothing, a key is written twice, a ConfigMap value is not a
    /// string, or an object to version cannot be (warnings otherwise).
    #[arg(long)]
    pub strict: bool,

    /// Read referenced ConfigMaps and Secrets that the stream lacks from the cluster (one
    /// `get` each; kubeconfig or in-cluster account) and hash them like the rest. An API
    /// server that cannot be reached or refuses fails the run; `--lookup=best-effort` warns
    /// and goes on without them. Secret values are only hashed, never printed.
    #[arg(
        long,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "required",
        value_enum
    )]
    pub lookup: Option<Lookup>,

    /// Put the old versions the cluster still uses back into the render (--versioned, with
    /// --lookup): every live ConfigMap or Secret labelled reconfig/versioned-from a name being
    /// versioned that a ReplicaSet, ControllerRevision, Job, CronJob, Pod or workload names is
    /// appended as a plain document, so it stays in the Helm release and `helm rollback` to the
    /// revision that made it works (helm/helm#8228). Read failures follow --lookup's rule.
    #[arg(long, requires = "lookup")]
    pub carry: bool,

    /// The kubeconfig context to read with (--lookup); the current one by default.
    #[arg(long, value_name = "NAME", requires = "lookup")]
    pub context: Option<String>,

    /// Time limit for each request to the API server (--lookup).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::units::parse_duration)]
    pub request_timeout: std::time::Duration,

    /// Rename ConfigMaps and Secrets after their content (NAME-HASH10), so each pod template
    /// pins the exact config it was rolled out with.
    ///
    /// `--versioned` (or `=all`): every object that only pod templates reference, plus those
    /// annotated reconfig/versioned: "true"; an object annotated "false" is left alone.
    /// `=annotated` (the default without the flag): only the annotated ones. `=none`: nothing.
    /// A renamed object gets immutable: true, the label reconfig/versioned-from: NAME and
    /// the annotation reconfig/data-checksum; every pod template reference to it is
    /// rewritten. An object something else names (an Ingress's TLS secret, imagePullSecrets,
    /// a reconfig/configmaps dependency) keeps its name, with a warning.
    #[arg(
        long,
        value_enum,
        value_name = "WHICH",
        num_args = 0..=1,
        require_equals = true,
        default_value = "annotated",
        default_missing_value = "all"
    )]
    pub versioned: Versioned,

    /// Keep old versions when a release no longer renders them: adds
    /// helm.sh/resource-policy: keep and argocd.argoproj.io/sync-options: Prune=false to
    /// versioned objects (`reconfig prune` deletes them once nothing uses them).
    #[arg(long)]
    pub keep: bool,
}

/// What `--lookup` does when the API server cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lookup {
    /// Fail (the default of a bare `--lookup`).
    Required,
    /// Warn and go on without the objects.
    BestEffort,
}

/// Which objects `--versioned` renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Versioned {
    /// Nothing.
    None,
    /// Objects annotated reconfig/versioned: "true".
    Annotated,
    /// Also every object only pod templates reference.
    All,
}

impl Versioned {
    fn mode(self) -> Mode {
        match self {
            Versioned::None => Mode::Off,
            Versioned::Annotated => Mode::Annotated,
            Versioned::All => Mode::All,
        }
    }
}

pub fn run(args: InjectArgs) -> Result<(), Failure> {
    let mut options = args.manifest.options(&args.annotation)?;
    options.versioning = Versioning {
        mode: args.versioned.mode(),
        keep: args.keep,
    };
    // inject writes the edits and tells the user; it reads nothing else of a decision.
    options.brief_decisions = true;
    options.notes = tracing::enabled!(tracing::Level::INFO);
    let inputs = Inputs::read(&args.files, args.manifest.max_input_size)?.unnamed_if_stdin_alone();
    let mut analysis = inputs.analyze(&options)?;
    if let Some(mode) = args.lookup {
        let absent: Vec<ObjectId> = analysis.resolution.absent.iter().cloned().collect();
        if !absent.is_empty() {
            match look_up(
                &absent,
                &options,
                args.request_timeout,
                args.context.as_deref(),
            ) {
                Ok(outside) => analysis = inputs.analyze_with(&options, outside)?,
                Err(e) if mode == Lookup::BestEffort => {
                    warn!("--lookup=best-effort: going on without the cluster's objects: {e:#}");
                }
                Err(e) => {
                    return Err(Failure::Internal(e.context(
                        "--lookup (use --lookup=best-effort to go on without it)",
                    )))
                }
            }
        }
    }

    let mut warnings = analysis.resolution.warnings.clone();
    let mut missing = analysis.resolution.missing.clone();
    let mut doubts = analysis.parsed.doubts.clone();
    inputs.relocate(&mut warnings);
    inputs.relocate(&mut missing);
    inputs.relocate(&mut doubts);
    for d in &doubts {
        if args.strict {
            error!("{d}");
        } else {
            warn!("{d}");
        }
    }
    if args.strict && !doubts.is_empty() {
        return Err(Failure::Invalid(format!(
            "{} value(s) or key(s) the API server would read differently or refuse (--strict); nothing was written",
            doubts.len()
        )));
    }
    for w in &warnings {
        warn!("{w}");
    }
    let unmatched = &analysis.resolution.unmatched;
    for m in missing
        .iter()
        .map(ToString::to_string)
        .chain(unmatched.iter().cloned())
    {
        if args.strict {
            error!("{m}");
        } else {
            warn!("{m}");
        }
    }
    if args.strict && !(missing.is_empty() && unmatched.is_empty()) {
        let mut counts = Vec::new();
        if !missing.is_empty() {
            counts.push(format!(
                "{} required reference(s) not in the stream",
                missing.len()
            ));
        }
        if !unmatched.is_empty() {
            counts.push(format!("{} flag(s) that match nothing", unmatched.len()));
        }
        return Err(Failure::Invalid(format!(
            "{} (--strict); nothing was written",
            counts.join(", ")
        )));
    }
    let mut version_errors = analysis.versions.errors.clone();
    let mut version_warnings = analysis.versions.warnings.clone();
    inputs.relocate(&mut version_errors);
    inputs.relocate(&mut version_warnings);
    for e in &version_errors {
        error!("{e}");
    }
    if !version_errors.is_empty() {
        return Err(Failure::Invalid(format!(
            "{} object(s) cannot be versioned; nothing was written",
            version_errors.len()
        )));
    }
    for w in &version_warnings {
        if args.strict {
            error!("{w}");
        } else {
            warn!("{w}");
        }
    }
    if args.strict && !version_warnings.is_empty() {
        return Err(Failure::Invalid(format!(
            "{} object(s) to version keep their names (--strict); nothing was written",
            version_warnings.len()
        )));
    }
    for r in &analysis.versions.renamed {
        let state = if r.changed { "versioned" } else { "unchanged" };
        info!(
            "{} {} {state} as {} ({} pod template reference(s))",
            r.id.kind,
            qualified(&r.id.namespace, &r.id.name),
            r.new_name,
            r.references
        );
    }
    for note in analysis.notes() {
        match note.level {
            NoteLevel::Info => info!("{}", note.text),
            NoteLevel::Debug => debug!("{}", note.text),
        }
    }

    let carried = match args.lookup.filter(|_| args.carry) {
        None => Vec::new(),
        Some(mode) => match carry(
            &analysis,
            args.request_timeout,
            args.context.as_deref(),
            args.keep,
        ) {
            Ok(documents) => documents,
            Err(e) if mode == Lookup::BestEffort => {
                warn!("--lookup=best-effort: carrying no old versions: {e:#}");
                Vec::new()
            }
            Err(e) => {
                return Err(Failure::Internal(
                    e.context("--carry (use --lookup=best-effort to go on without it)"),
                ))
            }
        },
    };

    let stdout = io::stdout();
    // Helm reads the result from a pipe: see `pipe`.
    crate::pipe::widen(&stdout);
    let mut out = Tail {
        inner: io::BufWriter::with_capacity(1 << 16, stdout.lock()),
        last: None,
    };
    analysis
        .write_to(&mut out)
        .and_then(|()| {
            if !carried.is_empty() && !matches!(out.last, None | Some(b'\n')) {
                out.write_all(b"\n")?;
            }
            for document in &carried {
                out.write_all(document.as_bytes())?;
            }
            out.flush()
        })
        .context("writing the manifest to stdout")
        .map_err(Failure::Internal)?;
    info!("{} pod template(s) annotated", analysis.changed());
    // The process ends next: freeing the summaries of every document one by one, from this
    // thread while the parsing threads allocated them, took 5 of 60 ms on a 6,000-document
    // render, and the kernel takes the memory back at exit anyway.
    std::mem::forget(analysis);
    std::mem::forget(inputs);
    Ok(())
}

/// A writer that remembers the last byte written (to end the stream's last line before
/// appending documents).
struct Tail<W> {
    inner: W,
    last: Option<u8>,
}

impl<W: Write> Write for Tail<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Connects for `--lookup` and `--carry`. An object of no namespace (no `--namespace` either)
/// is read where Helm puts it: `HELM_NAMESPACE` when set (Helm sets it for plugins; a user
/// may export it), else the kubeconfig context's namespace (or the service account's), else
/// `default`.
#[cfg(feature = "kube")]
async fn connect(
    timeout: std::time::Duration,
    context: Option<&str>,
) -> anyhow::Result<crate::kube::client::Connection> {
    let mut connection = crate::kube::client::connect_in(timeout, context).await?;
    if let Some(namespace) = std::env::var("HELM_NAMESPACE")
        .ok()
        .filter(|n| !n.trim().is_empty())
    {
        connection.default_namespace = namespace.trim().to_string();
    }
    Ok(connection)
}

#[cfg(feature = "kube")]
fn kind_name(kind: crate::manifest::object::ConfigKind) -> &'static str {
    match kind {
        crate::manifest::object::ConfigKind::ConfigMap => "ConfigMap",
        crate::manifest::object::ConfigKind::Secret => "Secret",
    }
}

/// `--carry`: reads the live versions of every name being versioned and what names them, and
/// returns the plain documents of those still in use that the stream lacks, sorted by name.
/// Logs names only, never a value.
#[cfg(feature = "kube")]
fn carry(
    analysis: &crate::manifest::Analysis<'_>,
    timeout: std::time::Duration,
    context: Option<&str>,
    keep: bool,
) -> anyhow::Result<Vec<String>> {
    use std::collections::{BTreeMap, BTreeSet, HashSet};

    use crate::kube::{carry, live};

    let renamed = &analysis.versions.renamed;
    if renamed.is_empty() {
        debug!("--carry: nothing is versioned, so nothing to carry");
        return Ok(Vec::new());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (selection, read_requests, absent_kinds) = runtime.block_on(async {
        let connection = connect(timeout, context).await?;
        let resolve = |namespace: &str| {
            if namespace.is_empty() {
                connection.default_namespace.clone()
            } else {
                namespace.to_string()
            }
        };
        let mut wanted: BTreeMap<(&'static str, String), BTreeSet<String>> = BTreeMap::new();
        let mut in_stream: HashSet<(&'static str, String, String)> = HashSet::new();
        for r in renamed {
            let kind = kind_name(r.id.kind);
            let namespace = resolve(&r.id.namespace);
            wanted
                .entry((kind, namespace.clone()))
                .or_default()
                .insert(r.from.clone());
            in_stream.insert((kind, namespace, r.new_name.clone()));
        }
        for id in analysis.objects.stream_ids(&analysis.parsed) {
            in_stream.insert((kind_name(id.kind), resolve(&id.namespace), id.name.clone()));
        }
        let read = live::read_versions(&connection, &wanted).await?;
        let selection = carry::select(&read.versions, &read.readers.referenced, &in_stream, keep);
        anyhow::Ok((selection, read.requests, read.readers.absent_kinds))
    })?;
    for kind in &absent_kinds {
        debug!("--carry: the cluster does not serve {kind}; none of its objects names a version");
    }
    for (kind, namespace, name, why) in &selection.left {
        debug!("{kind} {namespace}/{name}: not carried: {why}");
    }
    for c in &selection.carried {
        let more = c.used_by.len().saturating_sub(3);
        let mut by = c.used_by[..c.used_by.len().min(3)].join(", ");
        if more > 0 {
            by.push_str(&format!(" and {more} more"));
        }
        if by.is_empty() {
            by = "nothing names it, kept (--keep) until reconfig prune deletes it".into();
        } else {
            by = format!("used by {by}");
        }
        info!(
            "{} {}/{} (versioned from {}) carried into the render: {by}",
            c.kind, c.namespace, c.name, c.from
        );
    }
    debug!("--carry: {read_requests} request(s) to the API server");
    Ok(selection.carried.into_iter().map(|c| c.document).collect())
}

#[cfg(not(feature = "kube"))]
fn carry(
    _: &crate::manifest::Analysis<'_>,
    _: std::time::Duration,
    _: Option<&str>,
    _: bool,
) -> anyhow::Result<Vec<String>> {
    anyhow::bail!("this build leaves out the Kubernetes API client (cargo feature `kube`)")
}

/// Reads the objects the stream lacks from the cluster and reduces them to digests; those
/// the cluster lacks too are said once each.
#[cfg(feature = "kube")]
fn look_up(
    absent: &[ObjectId],
    options: &crate::manifest::Options,
    timeout: std::time::Duration,
    context: Option<&str>,
) -> anyhow::Result<Vec<ConfigObject>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let found = runtime.block_on(async {
        let connection = connect(timeout, context).await?;
        anyhow::Ok(crate::kube::live::get(&connection, absent).await?)
    })?;
    for id in &found.found {
        info!(
            "{} {}: read from the cluster",
            id.kind,
            qualified(&id.namespace, &id.name)
        );
    }
    for id in &found.absent {
        debug!(
            "{} {}: not in the cluster either",
            id.kind,
            qualified(&id.namespace, &id.name)
        );
    }
    crate::manifest::analysis::config_objects(&found.text, options)
        .context("reading the cluster's objects")
}

#[cfg(not(feature = "kube"))]
fn look_up(
    _: &[ObjectId],
    _: &crate::manifest::Options,
    _: std::time::Duration,
    _: Option<&str>,
) -> anyhow::Result<Vec<ConfigObject>> {
    anyhow::bail!("this build leaves out the Kubernetes API client (cargo feature `kube`)")
}

/// Accepts a Kubernetes annotation key: an optional DNS-subdomain prefix and a name of up to 63 characters.
fn parse_annotation_key(s: &str) -> Result<String, String> {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && label.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    if name_ok && prefix_ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a valid annotation key (e.g. checksum/config, example.com/config-hash)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_keys() {
        for ok in [
            "checksum/config",
            "example.com/config-hash",
            "config_hash",
            "a.b/c.d",
        ] {
            assert!(parse_annotation_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/x", "Example.com/x", "x/", "-x", "a b", "a/b/c"] {
            assert!(parse_annotation_key(bad).is_err(), "{bad}");
        }
    }
}
