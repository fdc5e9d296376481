//! `reconfig inject`: the checksum post-renderer.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tracing::{debug, error, info, warn};

use crate::cli::parse_size;
use crate::manifest::plan::{Depend, Outcome};
use crate::manifest::stream::{Diagnostic, StreamError};
use crate::manifest::workload::{TemplateKinds, TemplatePath};
use crate::manifest::{self, Analysis, Options, DEFAULT_ANNOTATION};
use crate::Failure;

const EXAMPLES: &str = "\
Examples:
  helm template my-release ./chart | reconfig inject > rendered.yaml
  helm upgrade --install app ./chart --post-renderer reconfig --post-renderer-args inject
  reconfig inject -n prod --depends deployment/argo-rollouts=configmap/argo-rollouts-config < all.yaml

Annotations read from workloads and pod templates:
  reconfig/skip: \"true\"                      leave this workload alone
  reconfig/configmaps: \"a,b\"                 add ConfigMaps read through the API (no mount)
  reconfig/secrets: \"s\"                      likewise for Secrets
  reconfig/exclude: \"configmap/x,secret/y\"   leave out what the app hot-reloads itself

Under Helm 4, stderr is not shown: add --log-file (or RECONFIG_LOG_FILE) to keep diagnostics,
and pass the release namespace with --post-renderer-args=--namespace=NS.";

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

    /// Fail when a required ConfigMap or Secret is not in the stream (a warning otherwise).
    #[arg(long)]
    pub strict: bool,
}

/// How a manifest stream is read and matched up; shared by `inject` and `plan`.
#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    /// Namespace of objects that set none (Helm 4 gives post-renderers none).
    #[arg(short, long, env = "RECONFIG_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,

    /// Annotate (or, in plan, count) Jobs too. Their pod template is immutable, so `helm upgrade`
    /// fails if it changes.
    #[arg(long)]
    pub include_jobs: bool,

    /// Where a custom resource keeps its pod template, e.g. `Workflow.example.com=spec.podTemplate`.
    /// Repeatable; replaces the built-in paths of a kind it names.
    #[arg(long, value_name = "KIND.GROUP=PATH")]
    pub template_path: Vec<TemplatePath>,

    /// A dependency no pod spec shows, e.g. `deployment/argo-rollouts=configmap/argo-rollouts-config`.
    /// Repeatable; the right side may list several objects separated by commas.
    #[arg(long, value_name = "KIND/NAME=KIND/NAME")]
    pub depends: Vec<Depend>,

    /// Hash Secret values with HMAC-SHA256 under the key in this file (one trailing newline is
    /// ignored). Without it, anyone who can read a Deployment can test guesses of a short
    /// Secret value against its checksum.
    #[arg(long, env = "RECONFIG_SECRET_HASH_KEY_FILE", value_name = "FILE")]
    pub secret_hash_key_file: Option<PathBuf>,

    /// Refuse inputs larger than this (accepts KiB, MiB, GiB suffixes).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub max_input_size: usize,
}

impl ManifestArgs {
    pub fn options(&self, annotation_key: &str) -> Result<Options, Failure> {
        let secret_key = self
            .secret_hash_key_file
            .as_deref()
            .map(read_key)
            .transpose()
            .map_err(Failure::Usage)?;
        Ok(Options {
            annotation_key: annotation_key.to_string(),
            rules: manifest::plan::Rules {
                namespace: self.namespace.clone(),
                include_jobs: self.include_jobs,
                depends: self.depends.clone(),
            },
            secret_key,
            kinds: TemplateKinds::with_custom(&self.template_path),
            max_input_size: self.max_input_size,
            ..Options::default()
        })
    }
}

/// Analyzes a stream read by [`read_inputs`], pointing diagnostics at file lines.
pub(crate) fn analyze<'a>(
    text: &'a str,
    parts: &[Part],
    options: &Options,
) -> Result<Analysis<'a>, Failure> {
    match manifest::analyze(text, options) {
        Ok(analysis) => Ok(analysis),
        Err(StreamError::Invalid(mut diagnostics)) => {
            relocate(&mut diagnostics, parts);
            Err(Failure::Invalid(
                StreamError::Invalid(diagnostics).to_string(),
            ))
        }
        Err(e) => Err(Failure::Invalid(e.to_string())),
    }
}

/// One input and where it starts in the combined stream, for locating diagnostics.
pub(crate) struct Part {
    name: String,
    first_line: usize,
}

pub fn run(args: InjectArgs) -> Result<(), Failure> {
    let options = args.manifest.options(&args.annotation)?;
    let (text, mut parts) = read_inputs(&args.files, args.manifest.max_input_size)?;
    if parts.len() == 1 && parts[0].name == "<stdin>" {
        // A plain filter: diagnostics need no file name.
        parts.clear();
    }
    let analysis = analyze(&text, &parts, &options)?;

    let mut warnings = analysis.plan.warnings.clone();
    let mut missing = analysis.plan.missing.clone();
    relocate(&mut warnings, &parts);
    relocate(&mut missing, &parts);
    for w in &warnings {
        warn!("{w}");
    }
    for m in &missing {
        if args.strict {
            error!("{m}");
        } else {
            warn!("{m}");
        }
    }
    if args.strict && !missing.is_empty() {
        return Err(Failure::Invalid(format!(
            "{} required reference(s) not in the stream (--strict); nothing was written",
            missing.len()
        )));
    }
    for t in &analysis.plan.templates {
        match &t.outcome {
            Outcome::Annotate { checksum, uses, .. } => {
                let used: Vec<String> = uses
                    .iter()
                    .map(|u| match &u.keys {
                        None => format!("{} {}", u.kind, u.name),
                        Some(keys) => format!("{} {} [{}]", u.kind, u.name, keys.join(", ")),
                    })
                    .collect();
                let state = if t.edit.is_some() {
                    "annotated"
                } else {
                    "unchanged"
                };
                info!(
                    "{} {} {state}: {} from {}",
                    t.workload,
                    t.path,
                    &checksum[..12],
                    used.join("; ")
                );
            }
            Outcome::Skipped(why) => debug!("{} {}: skipped: {why}", t.workload, t.path),
        }
    }

    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    analysis
        .write_to(&mut out)
        .and_then(|()| out.flush())
        .context("writing the manifest to stdout")
        .map_err(Failure::Usage)?;
    info!("{} pod template(s) annotated", analysis.changed());
    Ok(())
}

/// Reads all inputs into one stream; each file starts a new document.
pub(crate) fn read_inputs(files: &[PathBuf], limit: usize) -> Result<(String, Vec<Part>), Failure> {
    let stdin_only = [PathBuf::from("-")];
    let files = if files.is_empty() {
        &stdin_only[..]
    } else {
        files
    };
    let mut text = String::new();
    let mut parts = Vec::new();
    let mut line = 1;
    for path in files {
        let (name, bytes) = if path.as_os_str() == "-" {
            (
                "<stdin>".to_string(),
                read_limited(io::stdin().lock(), limit).context("reading stdin"),
            )
        } else {
            let name = path.display().to_string();
            let bytes = std::fs::File::open(path)
                .and_then(|f| read_limited(f, limit))
                .with_context(|| format!("reading {name}"));
            (name, bytes)
        };
        let bytes = bytes.map_err(Failure::Usage)?;
        if bytes.len() > limit || text.len() + bytes.len() > limit {
            return Err(Failure::Invalid(format!(
                "{name}: input is over the {limit}-byte limit (raise it with --max-input-size)"
            )));
        }
        let chunk = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let bad_line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
            Failure::Invalid(format!(
                "{name}: line {bad_line}: input is not UTF-8 (byte {at})"
            ))
        })?;
        if !text.is_empty() {
            if !text.ends_with('\n') {
                text.push('\n');
                line += 1;
            }
            if !chunk.starts_with("---") {
                text.push_str("---\n");
                line += 1;
            }
        }
        parts.push(Part {
            name,
            first_line: line,
        });
        line += chunk.bytes().filter(|&b| b == b'\n').count();
        text.push_str(&chunk);
    }
    Ok((text, parts))
}

fn read_limited(reader: impl Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Rewrites stream lines as file lines when input came from files.
pub(crate) fn relocate(diagnostics: &mut [Diagnostic], parts: &[Part]) {
    for d in diagnostics {
        if let Some(part) = parts.iter().rev().find(|p| p.first_line <= d.location.line) {
            d.location.file = Some(part.name.clone());
            d.location.line = d.location.line - part.first_line + 1;
        }
    }
}

fn read_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut key = std::fs::read(path)
        .with_context(|| format!("reading the secret hash key {}", path.display()))?;
    if key.ends_with(b"\n") {
        key.pop();
        if key.ends_with(b"\r") {
            key.pop();
        }
    }
    anyhow::ensure!(
        !key.is_empty(),
        "the secret hash key file {} is empty",
        path.display()
    );
    Ok(key)
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
