//! Deciding, for every pod template, which objects it depends on and what its checksum is.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::checksum::{checksum, Contribution, Selection};
use super::edit::Edit;
use super::object::{ConfigKind, ConfigObject};
use super::stream::{Diagnostic, DocInfo, Location, Parsed};
use super::workload::{parse_object_ref, GroupKind, KindSpec, Workload};

/// What one document turned into.
#[derive(Debug)]
pub enum Item {
    Config(ConfigObject),
    Workload(Workload),
    Other,
}

/// A `--depends KIND/NAME=KIND/NAME[,KIND/NAME…]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depend {
    pub workload: KindSpec,
    pub name: String,
    pub objects: Vec<(ConfigKind, String)>,
}

impl FromStr for Depend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = || {
            format!("`{s}` should be KIND/NAME=configmap/NAME, e.g. deployment/argo-rollouts=configmap/argo-rollouts-config")
        };
        let (workload, objects) = s.split_once('=').ok_or_else(usage)?;
        let (kind, name) = workload.split_once('/').ok_or_else(usage)?;
        if name.is_empty() {
            return Err(usage());
        }
        let objects = objects
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(parse_object_ref)
            .collect::<Result<Vec<_>, _>>()?;
        if objects.is_empty() {
            return Err(usage());
        }
        Ok(Depend {
            workload: kind.parse()?,
            name: name.to_string(),
            objects,
        })
    }
}

/// How objects and workloads are matched up.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Namespace of objects that name none (Helm 4 passes none to post-renderers).
    pub namespace: Option<String>,
    /// Annotate Jobs too, although their pod template is immutable.
    pub include_jobs: bool,
    pub depends: Vec<Depend>,
}

/// Why a pod template was left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Hook(String),
    Job,
    OptedOut,
    WorkloadRef { target: String, found: bool },
    NothingToHash,
    CannotEdit(String),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Hook(hook) => write!(f, "Helm hook ({hook}): hooks are not rolled"),
            Skip::Job => f.write_str(
                "Job pod templates are immutable (use --include-jobs to annotate them anyway)",
            ),
            Skip::OptedOut => f.write_str("opted out with reconfig/skip"),
            Skip::WorkloadRef {
                target,
                found: true,
            } => {
                write!(f, "uses spec.workloadRef, whose template must stay empty; {target} is annotated instead")
            }
            Skip::WorkloadRef {
                target,
                found: false,
            } => {
                write!(
                    f,
                    "uses spec.workloadRef to {target}, which is not in the stream"
                )
            }
            Skip::NothingToHash => {
                f.write_str("references no ConfigMap or Secret found in the stream")
            }
            Skip::CannotEdit(why) => write!(f, "cannot be annotated: {why}"),
        }
    }
}

/// One object's part in a checksum, for telling users why a workload rolls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    pub kind: ConfigKind,
    pub name: String,
    /// The keys read, or `None` for the whole object.
    pub keys: Option<Vec<String>>,
    pub via: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Annotate {
        checksum: String,
        previous: Option<String>,
        uses: Vec<Used>,
    },
    Skipped(Skip),
}

/// The decision for one pod template.
#[derive(Debug, Clone)]
pub struct TemplatePlan {
    /// `Deployment bench/web`.
    pub workload: String,
    pub path: String,
    pub location: Location,
    pub outcome: Outcome,
    /// Index into the parsed documents.
    pub doc: usize,
    pub edit: Option<Edit>,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub templates: Vec<TemplatePlan>,
    /// Things a user should know that do not stop the output.
    pub warnings: Vec<Diagnostic>,
    /// Required references not in the stream: warnings, or errors under `--strict`.
    pub missing: Vec<Diagnostic>,
}

type ObjectKey<'s> = (ConfigKind, &'s str, &'s str);

/// Plans the checksums for every workload of a parsed stream.
pub fn plan(parsed: &Parsed<Item>, rules: &Rules, annotation_key: &str) -> Plan {
    let default_ns = rules.namespace.as_deref().unwrap_or("");
    let namespace =
        |ns: &Option<String>| -> String { ns.clone().unwrap_or_else(|| default_ns.to_string()) };

    let mut objects: HashMap<(ConfigKind, String, String), &ConfigObject> = HashMap::new();
    let mut workloads: Vec<(usize, &DocInfo, &Workload)> = Vec::new();
    for (index, (doc, item)) in parsed.docs.iter().zip(&parsed.values).enumerate() {
        match item {
            Some(Item::Config(object)) => {
                objects.insert(
                    (
                        object.kind,
                        namespace(&object.namespace),
                        object.name.clone(),
                    ),
                    object,
                );
            }
            Some(Item::Workload(w)) => workloads.push((index, doc, w)),
            _ => {}
        }
    }

    // A Rollout with a workloadRef hands its declared dependencies to the workload it names.
    let mut forwarded: HashMap<usize, Vec<(ConfigKind, String)>> = HashMap::new();
    let mut ref_targets: HashMap<usize, (String, bool)> = HashMap::new();
    for (i, (_, _, w)) in workloads.iter().enumerate() {
        let Some(r) = &w.workload_ref else { continue };
        let ns = namespace(&w.namespace);
        let target = workloads.iter().position(|(_, _, t)| {
            t.kind.kind == r.kind
                && matches!(t.kind.group.as_str(), "apps" | "")
                && t.name == r.name
                && namespace(&t.namespace) == ns
        });
        if let Some(t) = target {
            let mut declared = w.directives.declared.clone();
            declared.extend(depends_for(rules, &w.kind, &w.name).cloned());
            forwarded.entry(t).or_default().extend(declared);
        }
        ref_targets.insert(
            i,
            (
                format!("{} {}", r.kind, qualified(&ns, &r.name)),
                target.is_some(),
            ),
        );
    }

    let mut out = Plan::default();
    for (i, (doc_index, doc, w)) in workloads.iter().enumerate() {
        let ns = namespace(&w.namespace);
        let label = format!("{} {}", w.kind.kind, qualified(&ns, &w.name));
        let workload_skip = if let Some(hook) = &w.hook {
            Some(Skip::Hook(hook.clone()))
        } else if w.kind == GroupKind::new("batch", "Job") && !rules.include_jobs {
            Some(Skip::Job)
        } else if w.directives.skip {
            Some(Skip::OptedOut)
        } else {
            ref_targets
                .get(&i)
                .map(|(target, found)| Skip::WorkloadRef {
                    target: target.clone(),
                    found: *found,
                })
        };
        if let Some(skip) = workload_skip {
            if let Skip::WorkloadRef { found: false, .. } = skip {
                out.warnings.push(Diagnostic {
                    location: doc.at(w.pos),
                    message: format!("{label} {skip}: nothing is annotated for it"),
                });
            }
            out.templates.push(TemplatePlan {
                workload: label.clone(),
                path: String::new(),
                location: doc.at(w.pos),
                outcome: Outcome::Skipped(skip),
                doc: *doc_index,
                edit: None,
            });
            continue;
        }

        for template in &w.templates {
            let location = doc.at(template.pos);
            let mut push = |outcome: Outcome, edit: Option<Edit>| {
                out.templates.push(TemplatePlan {
                    workload: label.clone(),
                    path: template.path.clone(),
                    location: location.clone(),
                    outcome,
                    doc: *doc_index,
                    edit,
                })
            };
            if template.directives.skip {
                push(Outcome::Skipped(Skip::OptedOut), None);
                continue;
            }
            let slot = match &template.slot {
                Ok(slot) => slot,
                Err(e) => {
                    out.warnings.push(Diagnostic {
                        location: location.clone(),
                        message: format!("{label} {}: cannot be annotated: {e}", template.path),
                    });
                    push(Outcome::Skipped(Skip::CannotEdit(e.to_string())), None);
                    continue;
                }
            };

            let mut exclude = w.directives.exclude.clone();
            exclude.extend(template.directives.exclude.iter().cloned());
            let mut wanted: Vec<(ConfigKind, &str, Selection, bool, String)> = Vec::new();
            for r in &template.references {
                wanted.push((
                    r.kind,
                    r.name.as_str(),
                    r.selection.clone(),
                    r.optional,
                    r.via.clone(),
                ));
            }
            let declared = w
                .directives
                .declared
                .iter()
                .chain(&template.directives.declared)
                .map(|d| (d, "reconfig/ annotation"))
                .chain(depends_for(rules, &w.kind, &w.name).map(|d| (d, "--depends")))
                .chain(
                    forwarded
                        .get(&i)
                        .into_iter()
                        .flatten()
                        .map(|d| (d, "the Rollout's workloadRef")),
                );
            let mut declared_owned = Vec::new();
            for ((kind, name), via) in declared {
                declared_owned.push((*kind, name.clone(), via));
            }
            for (kind, name, via) in &declared_owned {
                wanted.push((
                    *kind,
                    name.as_str(),
                    Selection::whole(),
                    false,
                    format!("declared by {via}"),
                ));
            }

            let mut used: Vec<(ObjectKey<'_>, &ConfigObject, Selection, Vec<String>)> = Vec::new();
            for (kind, name, selection, optional, via) in wanted {
                if exclude.iter().any(|(k, n)| *k == kind && n == name) {
                    continue;
                }
                match objects.get(&(kind, ns.clone(), name.to_string())) {
                    Some(object) => match used
                        .iter_mut()
                        .find(|(key, ..)| *key == (kind, &ns[..], name))
                    {
                        Some((_, _, sel, vias)) => {
                            sel.merge(&selection);
                            if !vias.contains(&via) {
                                vias.push(via);
                            }
                        }
                        None => used.push(((kind, &ns[..], name), object, selection, vec![via])),
                    },
                    None if optional => {}
                    None => {
                        out.missing.push(Diagnostic {
                            location: location.clone(),
                            message: format!(
                                "{label}: {kind} \"{name}\" ({via}) is not in the stream; changes to it will not roll this workload"
                            ),
                        });
                    }
                }
            }
            if used.is_empty() {
                push(Outcome::Skipped(Skip::NothingToHash), None);
                continue;
            }
            let contributions: Vec<Contribution<'_>> = used
                .iter()
                .map(|(_, object, selection, _)| Contribution {
                    object,
                    keys: selection.resolve(object),
                })
                .collect();
            let sum = checksum(&contributions);
            let uses = used
                .iter()
                .map(|(_, object, selection, via)| Used {
                    kind: object.kind,
                    name: object.name.clone(),
                    keys: (!selection.whole).then(|| {
                        selection
                            .resolve(object)
                            .keys()
                            .map(|k| k.to_string())
                            .collect()
                    }),
                    via: via.clone(),
                })
                .collect();
            if let Some(strategy) = &w.in_place {
                out.warnings.push(Diagnostic {
                    location: location.clone(),
                    message: format!(
                        "{label} updates pods in place ({strategy}): a changed checksum only rewrites pod metadata and restarts no container; use a recreating update strategy, or let the app reload (reconfig watch)"
                    ),
                });
            }
            let edit = (slot.existing.as_deref() != Some(sum.as_str()))
                .then(|| slot.edit(annotation_key, &sum));
            push(
                Outcome::Annotate {
                    checksum: sum,
                    previous: slot.existing.clone(),
                    uses,
                },
                edit,
            );
        }
    }
    out
}

fn depends_for<'r>(
    rules: &'r Rules,
    kind: &'r GroupKind,
    name: &'r str,
) -> impl Iterator<Item = &'r (ConfigKind, String)> {
    rules
        .depends
        .iter()
        .filter(move |d| d.name == name && kind.matches(&d.workload))
        .flat_map(|d| &d.objects)
}

fn qualified(ns: &str, name: &str) -> String {
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}
