//! `reconfig plan`: which workloads a config change restarts, and why.
//!
//! It compares the checksums `inject` would write for two renders, and names the
//! objects and keys behind every difference.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use crate::inject::{analyze, read_inputs, ManifestArgs};
use crate::manifest::object::{ConfigKind, ConfigObject};
use crate::manifest::plan::{Item, Outcome, Used};
use crate::manifest::{Analysis, DEFAULT_ANNOTATION};
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

/// What happens to one pod template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Restart,
    Keep,
    New,
    Removed,
    Untracked,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub workload: String,
    pub path: String,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

pub fn run(args: PlanArgs) -> Result<(), Failure> {
    let options = args.manifest.options(DEFAULT_ANNOTATION)?;
    let limit = args.manifest.max_input_size;
    let (old_text, old_parts) = read_inputs(std::slice::from_ref(&args.old), limit)?;
    let (new_text, new_parts) = read_inputs(std::slice::from_ref(&args.new), limit)?;
    let old = analyze(&old_text, &old_parts, &options)?;
    let new = analyze(&new_text, &new_parts, &options)?;
    let default_ns = args.manifest.namespace.clone().unwrap_or_default();
    let changes = compare(&old, &new, &default_ns);

    let mut out = String::new();
    for c in &changes {
        match args.output {
            Output::Json => {
                let line = serde_json::to_string(c).map_err(|e| Failure::Usage(e.into()))?;
                out.push_str(&line);
            }
            Output::Text => {
                let verdict = match c.verdict {
                    Verdict::Restart => "RESTART",
                    Verdict::Keep => "keep",
                    Verdict::New => "new",
                    Verdict::Removed => "removed",
                    Verdict::Untracked => "untracked",
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
    print!("{out}");
    Ok(())
}

type ObjectKey = (ConfigKind, String, String);

fn objects<'a>(
    analysis: &'a Analysis<'_>,
    default_ns: &str,
) -> HashMap<ObjectKey, &'a ConfigObject> {
    analysis
        .parsed
        .values
        .iter()
        .filter_map(|v| match v {
            Some(Item::Config(o)) => Some(o),
            _ => None,
        })
        .map(|o| {
            let ns = o
                .namespace
                .clone()
                .unwrap_or_else(|| default_ns.to_string());
            ((o.kind, ns, o.name.clone()), o)
        })
        .collect()
}

/// Pairs up the pod templates of two renders and explains each difference.
pub fn compare(old: &Analysis<'_>, new: &Analysis<'_>, default_ns: &str) -> Vec<Change> {
    let key = |t: &crate::manifest::plan::TemplatePlan| (t.workload.clone(), t.path.clone());
    let old_templates: BTreeMap<_, _> = old
        .plan
        .templates
        .iter()
        .map(|t| (key(t), &t.outcome))
        .collect();
    let new_templates: BTreeMap<_, _> = new
        .plan
        .templates
        .iter()
        .map(|t| (key(t), &t.outcome))
        .collect();
    let (old_objects, new_objects) = (objects(old, default_ns), objects(new, default_ns));

    let mut changes = Vec::new();
    for ((workload, path), outcome) in &new_templates {
        let before = old_templates.get(&(workload.clone(), path.clone()));
        let (verdict, reasons) = match (before, outcome) {
            (None, _) => (Verdict::New, Vec::new()),
            (Some(Outcome::Skipped(_)), Outcome::Skipped(skip)) => {
                (Verdict::Untracked, vec![skip.to_string()])
            }
            (Some(Outcome::Annotate { uses, .. }), Outcome::Skipped(_)) => (
                Verdict::Restart,
                vec![format!("stops using {}", names(uses))],
            ),
            (Some(Outcome::Skipped(_)), Outcome::Annotate { uses, .. }) => (
                Verdict::Restart,
                vec![format!("starts using {}", names(uses))],
            ),
            (
                Some(Outcome::Annotate {
                    checksum: a,
                    uses: old_uses,
                    ..
                }),
                Outcome::Annotate {
                    checksum: b, uses, ..
                },
            ) => {
                if a == b {
                    (Verdict::Keep, Vec::new())
                } else {
                    (
                        Verdict::Restart,
                        reasons(old_uses, uses, &old_objects, &new_objects),
                    )
                }
            }
        };
        changes.push(Change {
            workload: workload.clone(),
            path: path.clone(),
            verdict,
            reasons,
        });
    }
    for (workload, path) in old_templates.keys() {
        if !new_templates.contains_key(&(workload.clone(), path.clone())) {
            changes.push(Change {
                workload: workload.clone(),
                path: path.clone(),
                verdict: Verdict::Removed,
                reasons: Vec::new(),
            });
        }
    }
    changes
}

fn names(uses: &[Used]) -> String {
    uses.iter()
        .map(|u| format!("{} {}", u.kind, u.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which objects and keys moved a checksum.
fn reasons(
    old_uses: &[Used],
    uses: &[Used],
    old_objects: &HashMap<ObjectKey, &ConfigObject>,
    new_objects: &HashMap<ObjectKey, &ConfigObject>,
) -> Vec<String> {
    let mut out = Vec::new();
    for u in uses {
        let id = (u.kind, u.namespace.clone(), u.name.clone());
        let label = format!("{} {}", u.kind, u.name);
        let was_used = old_uses
            .iter()
            .any(|o| (o.kind, &o.namespace, &o.name) == (u.kind, &u.namespace, &u.name));
        let (Some(before), Some(after)) = (old_objects.get(&id), new_objects.get(&id)) else {
            out.push(format!("{label} appeared"));
            continue;
        };
        let keys: BTreeSet<&str> = match &u.keys {
            Some(keys) => keys.iter().map(String::as_str).collect(),
            None => before
                .keys
                .keys()
                .chain(after.keys.keys())
                .map(String::as_str)
                .collect(),
        };
        let mut moved = Vec::new();
        for k in keys {
            match (before.keys.get(k), after.keys.get(k)) {
                (Some(a), Some(b)) if a != b => moved.push(format!("{k} changed")),
                (None, Some(_)) => moved.push(format!("{k} added")),
                (Some(_), None) => moved.push(format!("{k} removed")),
                _ => {}
            }
        }
        if !moved.is_empty() {
            out.push(format!("{label}: {}", moved.join(", ")));
        } else if !was_used {
            out.push(format!("starts using {label}"));
        }
    }
    for o in old_uses {
        if !uses
            .iter()
            .any(|u| (u.kind, &u.namespace, &u.name) == (o.kind, &o.namespace, &o.name))
        {
            out.push(format!("stops using {} {}", o.kind, o.name));
        }
    }
    if out.is_empty() {
        out.push("the keys it reads changed".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{analyze, Options};

    const CM: &str =
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {a: one, b: two}\n";

    fn deployment(name: &str, spec: &str) -> String {
        format!("---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  template:\n    spec: {spec}\n")
    }

    fn plan(old: &str, new: &str) -> Vec<(String, Verdict, Vec<String>)> {
        let options = Options::default();
        let (a, b) = (
            analyze(old, &options).expect("old"),
            analyze(new, &options).expect("new"),
        );
        compare(&a, &b, "")
            .into_iter()
            .map(|c| (c.workload, c.verdict, c.reasons))
            .collect()
    }

    #[test]
    fn names_the_keys_behind_each_restart() {
        let whole = deployment("whole", "{volumes: [{name: v, configMap: {name: app}}]}");
        let key_a = deployment("key-a", "{containers: [{name: c, env: [{name: A, valueFrom: {configMapKeyRef: {name: app, key: a}}}]}]}");
        let plain = deployment("plain", "{containers: [{name: c}]}");
        let old = format!("{CM}{whole}{key_a}{plain}");
        let new = format!(
            "{}{whole}{key_a}{plain}",
            CM.replace("b: two", "b: 2, c: three")
        );
        assert_eq!(
            plan(&old, &new),
            vec![
                ("Deployment key-a".into(), Verdict::Keep, vec![]),
                (
                    "Deployment plain".into(),
                    Verdict::Untracked,
                    vec!["references no ConfigMap or Secret found in the stream".into()]
                ),
                (
                    "Deployment whole".into(),
                    Verdict::Restart,
                    vec!["ConfigMap app: b changed, c added".into()]
                ),
            ]
        );
    }

    #[test]
    fn new_removed_and_objects_coming_and_going() {
        let uses = deployment("w", "{volumes: [{name: v, configMap: {name: app}}]}");
        let extra = deployment("x", "{containers: [{name: c}]}");
        let no_cm = plan(&uses, &format!("{CM}{uses}"));
        assert_eq!(no_cm[0].1, Verdict::Restart);
        assert_eq!(no_cm[0].2, vec!["starts using ConfigMap app".to_string()]);
        let gone = plan(&format!("{CM}{uses}{extra}"), &uses);
        assert_eq!(gone[0].2, vec!["stops using ConfigMap app".to_string()]);
        assert_eq!(gone[1].1, Verdict::Removed);
        assert_eq!(plan(&uses, &format!("{uses}{extra}"))[1].1, Verdict::New);
    }
}
