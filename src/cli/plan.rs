//! `reconfig plan`: its arguments, and the verdicts as text or JSON lines.
//!
//! It compares the checksums `inject` would write for two renders: reading is `input`'s,
//! the comparison is `manifest::compare`'s; this file only wires them and prints.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::input::{Inputs, ManifestArgs};
use crate::manifest::compare::{compare, Change, Verdict};
use crate::manifest::DEFAULT_ANNOTATION;
use crate::Failure;

const EXAMPLES: &str = "\
Examples:
  helm get manifest app -n prod > old.yaml
  helm template app ./chart -n prod | reconfig plan old.yaml -
  kustomize build overlays/prod | reconfig plan live.yaml - --output json

Only config counts here: a changed image or pod spec restarts a workload too, but that
is plain in the diff of the render itself.";

/// Compare two renders: which pod templates a config change restarts, and why.
///
/// A pod template restarts when the checksum `inject` writes for it changes: a key it
/// reads changed, appeared or went away, or it started or stopped using an object.
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
    /// The render running now (e.g. `helm get manifest`).
    #[arg(value_name = "OLD")]
    pub old: PathBuf,

    /// The render about to be applied; `-` reads stdin.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,

    /// Text for people, or JSON lines for tools.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    #[command(flatten)]
    pub manifest: ManifestArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// One line of `--output json`.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    workload: String,
    path: &'a str,
    verdict: &'static str,
    reasons: &'a [String],
}

impl<'a> JsonLine<'a> {
    fn new(change: &'a Change) -> Self {
        JsonLine {
            workload: change.workload.to_string(),
            path: &change.path,
            verdict: change.verdict.as_str(),
            reasons: &change.reasons,
        }
    }
}

pub fn run(args: PlanArgs) -> Result<(), Failure> {
    let options = args.manifest.options(DEFAULT_ANNOTATION)?;
    let limit = args.manifest.max_input_size;
    let old_inputs = Inputs::read(std::slice::from_ref(&args.old), limit)?;
    let new_inputs = Inputs::read(std::slice::from_ref(&args.new), limit)?;
    let old = old_inputs.analyze(&options)?;
    let new = new_inputs.analyze(&options)?;
    // A flag that matches nothing in either render is most likely a typo: say so once.
    for flag in &new.resolution.unmatched {
        if old.resolution.unmatched.contains(flag) {
            tracing::warn!("{flag}");
        }
    }
    let changes = compare(&old, &new);

    let mut out = String::new();
    for c in &changes {
        match args.output {
            Output::Json => {
                let line = serde_json::to_string(&JsonLine::new(c))
                    .map_err(|e| Failure::Internal(e.into()))?;
                out.push_str(&line);
            }
            Output::Text => {
                let verdict = match c.verdict {
                    Verdict::Restart => "RESTART",
                    other => other.as_str(),
                };
                let path = if c.path.is_empty() {
                    String::new()
                } else {
                    format!(" {}", c.path)
                };
                out.push_str(&format!("{verdict:<9} {}{path}", c.workload));
                if !c.reasons.is_empty() {
                    out.push_str(&format!(": {}", c.reasons.join("; ")));
                }
            }
        }
        out.push('\n');
    }
    if args.output == Output::Text {
        let restarts = changes
            .iter()
            .filter(|c| c.verdict == Verdict::Restart)
            .count();
        out.push_str(&format!(
            "{restarts} of {} pod template(s) restart for config.\n",
            changes.len()
        ));
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the plan to stdout")
        .map_err(Failure::Internal)
}
