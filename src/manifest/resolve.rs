//! Resolving every pod template: which objects it depends on, and what its checksum is.
//!
//! `inject` writes the result and `plan` compares two of them, so it is computed once, here,
//! in named steps: find the workloads and pass a Rollout's dependencies on to the workload
//! it references (`link_workload_refs`), decide skips (`workload_skip`), collect what each
//! template wants (`wanted`), look that up in the object index (`Resolver::look_up`), and
//! summarise the result as a checksum and the uses behind it (`summarise`).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::checksum::{checksum, Contribution, Selection};
use super::edit::Edit;
use super::index::{Item, ObjectIndex};
use super::object::{ConfigKind, ConfigObject, ObjectId};
use super::stream::{Diagnostic, DocInfo, Location, Parsed};
use super::workload::{
    parse_object_ref, qualified, GroupKind, KindSpec, PodTemplate, Workload, WorkloadId,
};

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
    pub object: ObjectId,
    /// The keys read, or `None` for the whole object.
    pub keys: Option<Vec<String>>,
    pub via: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Annotate { checksum: String, uses: Vec<Used> },
    Skipped(Skip),
}

/// The decision for one pod template.
#[derive(Debug, Clone)]
pub struct TemplateResolution {
    pub workload: WorkloadId,
    /// Dotted path of the pod template; empty when the whole workload is skipped.
    pub path: String,
    pub location: Location,
    pub outcome: Outcome,
    /// Index into the parsed documents.
    pub doc: usize,
    pub edit: Option<Edit>,
}

/// The decisions for a whole stream.
#[derive(Debug, Default)]
pub struct Resolution {
    pub templates: Vec<TemplateResolution>,
    /// Things a user should know that do not stop the output.
    pub warnings: Vec<Diagnostic>,
    /// Required references not in the stream: warnings, or errors under `--strict`.
    pub missing: Vec<Diagnostic>,
}

/// Resolves the checksum of every pod template of a parsed stream.
pub fn resolve(
    parsed: &Parsed<Item>,
    objects: &ObjectIndex,
    rules: &Rules,
    annotation_key: &str,
) -> Resolution {
    let default_namespace = rules.namespace.as_deref().unwrap_or("");
    let workloads: Vec<WorkloadDoc<'_>> = parsed
        .docs
        .iter()
        .zip(&parsed.values)
        .enumerate()
        .filter_map(|(index, (info, item))| match item {
            Some(Item::Workload(workload)) => Some(WorkloadDoc {
                index,
                info,
                id: workload.id(default_namespace),
                workload,
            }),
            _ => None,
        })
        .collect();
    let links = link_workload_refs(&workloads, rules);
    let resolver = Resolver {
        parsed,
        objects,
        rules,
        annotation_key,
    };

    let mut out = Resolution::default();
    for (i, w) in workloads.iter().enumerate() {
        if let Some(skip) = workload_skip(w.workload, rules, links.targets.get(&i)) {
            let location = w.info.at(w.workload.pos);
            if let Skip::WorkloadRef { found: false, .. } = skip {
                out.warnings.push(Diagnostic {
                    location: location.clone(),
                    message: format!("{} {skip}: nothing is annotated for it", w.id),
                });
            }
            out.templates.push(TemplateResolution {
                workload: w.id.clone(),
                path: String::new(),
                location,
                outcome: Outcome::Skipped(skip),
                doc: w.index,
                edit: None,
            });
            continue;
        }
        let forwarded = links.forwarded.get(&i).map_or(&[][..], Vec::as_slice);
        for template in &w.workload.templates {
            resolver.template(&mut out, w, template, forwarded);
        }
    }
    out
}

/// A workload with the document it came from.
struct WorkloadDoc<'p> {
    /// Index into the parsed documents.
    index: usize,
    info: &'p DocInfo,
    workload: &'p Workload,
    id: WorkloadId,
}

/// What Rollouts with a `workloadRef` mean for the other workloads, by position in the list.
#[derive(Default)]
struct RefLinks {
    /// Dependencies a Rollout declared, handed on to the workload it references.
    forwarded: HashMap<usize, Vec<(ConfigKind, String)>>,
    /// For each Rollout with a reference: the workload it names, and whether the stream has it.
    targets: HashMap<usize, RefTarget>,
}

struct RefTarget {
    label: String,
    found: bool,
}

/// A Rollout with a workloadRef hands its declared dependencies to the workload it names.
fn link_workload_refs(workloads: &[WorkloadDoc<'_>], rules: &Rules) -> RefLinks {
    let mut links = RefLinks::default();
    for (i, w) in workloads.iter().enumerate() {
        let Some(r) = &w.workload.workload_ref else {
            continue;
        };
        let ns = &w.id.namespace;
        let target = workloads.iter().position(|t| {
            t.id.kind.kind == r.kind
                && matches!(t.id.kind.group.as_str(), "apps" | "")
                && t.id.name == r.name
                && t.id.namespace == *ns
        });
        if let Some(t) = target {
            let mut declared = w.workload.directives.declared.clone();
            declared.extend(depends_for(rules, &w.id.kind, &w.id.name).cloned());
            links.forwarded.entry(t).or_default().extend(declared);
        }
        links.targets.insert(
            i,
            RefTarget {
                label: format!("{} {}", r.kind, qualified(ns, &r.name)),
                found: target.is_some(),
            },
        );
    }
    links
}

/// Why a whole workload is left alone, if it is.
fn workload_skip(w: &Workload, rules: &Rules, ref_target: Option<&RefTarget>) -> Option<Skip> {
    if let Some(hook) = &w.hook {
        Some(Skip::Hook(hook.clone()))
    } else if w.kind == GroupKind::new("batch", "Job") && !rules.include_jobs {
        Some(Skip::Job)
    } else if w.directives.skip {
        Some(Skip::OptedOut)
    } else {
        ref_target.map(|target| Skip::WorkloadRef {
            target: target.label.clone(),
            found: target.found,
        })
    }
}

/// One object a pod template wants in its checksum.
struct Wanted<'w> {
    kind: ConfigKind,
    name: &'w str,
    selection: Selection,
    /// An optional reference that is not in the stream is no problem.
    optional: bool,
    via: String,
}

/// Everything a template wants, in order: its own references, then what is declared for it
/// (annotations, `--depends`, a Rollout's forwarded dependencies); minus what is excluded.
fn wanted<'w>(
    w: &'w Workload,
    template: &'w PodTemplate,
    rules: &'w Rules,
    forwarded: &'w [(ConfigKind, String)],
) -> Vec<Wanted<'w>> {
    let references = template.references.iter().map(|r| Wanted {
        kind: r.kind,
        name: r.name.as_str(),
        selection: r.selection.clone(),
        optional: r.optional,
        via: r.via.clone(),
    });
    let declared = w
        .directives
        .declared
        .iter()
        .chain(&template.directives.declared)
        .map(|d| (d, "reconfig/ annotation"))
        .chain(depends_for(rules, &w.kind, &w.name).map(|d| (d, "--depends")))
        .chain(forwarded.iter().map(|d| (d, "the Rollout's workloadRef")))
        .map(|((kind, name), via)| Wanted {
            kind: *kind,
            name: name.as_str(),
            selection: Selection::whole(),
            optional: false,
            via: format!("declared by {via}"),
        });
    let excluded = |want: &Wanted<'_>| {
        w.directives
            .exclude
            .iter()
            .chain(&template.directives.exclude)
            .any(|(kind, name)| *kind == want.kind && name == want.name)
    };
    references
        .chain(declared)
        .filter(|want| !excluded(want))
        .collect()
}

/// An object found for a template, with everything that asked for it merged.
struct Use<'p> {
    id: ObjectId,
    object: &'p ConfigObject,
    selection: Selection,
    via: Vec<String>,
}

/// What every template's resolution needs: the stream, its index and the rules.
struct Resolver<'p> {
    parsed: &'p Parsed<Item>,
    objects: &'p ObjectIndex,
    rules: &'p Rules,
    annotation_key: &'p str,
}

impl<'p> Resolver<'p> {
    /// Resolves one pod template of a workload that is not skipped as a whole.
    fn template(
        &self,
        out: &mut Resolution,
        w: &WorkloadDoc<'_>,
        template: &PodTemplate,
        forwarded: &[(ConfigKind, String)],
    ) {
        let location = w.info.at(template.pos);
        let record = |out: &mut Resolution, outcome: Outcome, edit: Option<Edit>| {
            out.templates.push(TemplateResolution {
                workload: w.id.clone(),
                path: template.path.clone(),
                location: location.clone(),
                outcome,
                doc: w.index,
                edit,
            })
        };
        if template.directives.skip {
            record(out, Outcome::Skipped(Skip::OptedOut), None);
            return;
        }
        let slot = match &template.slot {
            Ok(slot) => slot,
            Err(e) => {
                out.warnings.push(Diagnostic {
                    location: location.clone(),
                    message: format!("{} {}: cannot be annotated: {e}", w.id, template.path),
                });
                record(out, Outcome::Skipped(Skip::CannotEdit(e.to_string())), None);
                return;
            }
        };

        let wanted = wanted(w.workload, template, self.rules, forwarded);
        let used = self.look_up(wanted, &w.id, &location, &mut out.missing);
        if used.is_empty() {
            record(out, Outcome::Skipped(Skip::NothingToHash), None);
            return;
        }
        let (sum, uses) = summarise(&used);
        if let Some(strategy) = &w.workload.in_place {
            out.warnings.push(Diagnostic {
                location: location.clone(),
                message: format!(
                    "{} updates pods in place ({strategy}): a changed checksum only rewrites pod metadata and restarts no container; use a recreating update strategy, or let the app reload (reconfig watch)",
                    w.id
                ),
            });
        }
        let edit = (slot.existing.as_deref() != Some(sum.as_str()))
            .then(|| slot.edit(self.annotation_key, &sum));
        record(
            out,
            Outcome::Annotate {
                checksum: sum,
                uses,
            },
            edit,
        );
    }

    /// Finds what a template wants in the workload's namespace, merging repeated wants;
    /// a required object that is missing becomes a diagnostic in `missing`.
    fn look_up(
        &self,
        wanted: Vec<Wanted<'_>>,
        workload: &WorkloadId,
        location: &Location,
        missing: &mut Vec<Diagnostic>,
    ) -> Vec<Use<'p>> {
        let mut used: Vec<Use<'p>> = Vec::new();
        for want in wanted {
            let id = ObjectId::new(want.kind, &workload.namespace, want.name);
            match self.objects.get(self.parsed, &id) {
                Some(object) => match used.iter_mut().find(|u| u.id == id) {
                    Some(found) => {
                        found.selection.merge(&want.selection);
                        if !found.via.contains(&want.via) {
                            found.via.push(want.via);
                        }
                    }
                    None => used.push(Use {
                        id,
                        object,
                        selection: want.selection,
                        via: vec![want.via],
                    }),
                },
                None if want.optional => {}
                None => missing.push(Diagnostic {
                    location: location.clone(),
                    message: format!(
                        "{workload}: {} \"{}\" ({}) is not in the stream; changes to it will not roll this workload",
                        want.kind, want.name, want.via
                    ),
                }),
            }
        }
        used
    }
}

/// The checksum over what a template uses, and the uses as users are told about them.
fn summarise(used: &[Use<'_>]) -> (String, Vec<Used>) {
    let contributions: Vec<Contribution<'_>> = used
        .iter()
        .map(|u| Contribution {
            object: u.object,
            keys: u.selection.resolve(u.object),
        })
        .collect();
    let uses = used
        .iter()
        .map(|u| Used {
            object: u.id.clone(),
            keys: (!u.selection.whole).then(|| {
                u.selection
                    .resolve(u.object)
                    .keys()
                    .map(|k| k.to_string())
                    .collect()
            }),
            via: u.via.clone(),
        })
        .collect();
    (checksum(&contributions), uses)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::manifest::{analyze, Options};

    /// Checksum (or skip reason) per `workload path`.
    fn outcomes(yaml: &str, options: &Options) -> BTreeMap<String, String> {
        let analysis = analyze(yaml, options).expect("valid stream");
        analysis
            .resolution
            .templates
            .iter()
            .map(|t| {
                let value = match &t.outcome {
                    Outcome::Annotate { checksum, .. } => checksum.clone(),
                    Outcome::Skipped(skip) => format!("skipped: {skip}"),
                };
                (
                    format!("{} {}", t.workload, t.path).trim().to_string(),
                    value,
                )
            })
            .collect()
    }

    fn sums(yaml: &str) -> BTreeMap<String, String> {
        outcomes(yaml, &Options::default())
    }

    const CM: &str =
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata:\n  a: one\n  b: two\n";
    const SECRET: &str = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData:\n  user: admin\n  pass: hunter2\n";

    fn deployment(name: &str, spec: &str) -> String {
        format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  template:\n    spec:\n{}",
            indent(spec, 6)
        )
    }

    fn indent(text: &str, by: usize) -> String {
        text.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(by)))
            .collect()
    }

    const WHOLE: &str = "volumes: [{name: c, configMap: {name: app}}]\ncontainers: [{name: x}]";
    const KEY_A: &str = "containers:\n  - name: x\n    env: [{name: A, valueFrom: {configMapKeyRef: {name: app, key: a}}}]";

    #[test]
    fn every_kind_gets_its_templates_annotated() {
        let with = |api: &str, kind: &str, path: &str| -> String {
            let mut doc = format!("---\napiVersion: {api}\nkind: {kind}\nmetadata: {{name: w}}\n");
            let parts: Vec<&str> = path.split('.').collect();
            for (depth, part) in parts.iter().enumerate() {
                doc.push_str(&format!("{}{part}:\n", "  ".repeat(depth)));
            }
            let depth = parts.len();
            doc.push_str(&format!(
                "{}spec:\n{}volumes: [{{name: c, configMap: {{name: app}}}}]\n",
                "  ".repeat(depth),
                "  ".repeat(depth + 1)
            ));
            doc
        };
        let cases = [
            ("apps/v1", "Deployment", "spec.template"),
            ("apps/v1", "ReplicaSet", "spec.template"),
            ("apps/v1", "StatefulSet", "spec.template"),
            ("apps/v1", "DaemonSet", "spec.template"),
            ("v1", "ReplicationController", "spec.template"),
            ("v1", "PodTemplate", "template"),
            ("batch/v1", "CronJob", "spec.jobTemplate.spec.template"),
            ("argoproj.io/v1alpha1", "Rollout", "spec.template"),
            ("apps.kruise.io/v1alpha1", "CloneSet", "spec.template"),
            ("apps.kruise.io/v1beta1", "StatefulSet", "spec.template"),
            ("apps.kruise.io/v1alpha1", "DaemonSet", "spec.template"),
            ("apps.kruise.io/v1alpha1", "BroadcastJob", "spec.template"),
            (
                "apps.kruise.io/v1alpha1",
                "AdvancedCronJob",
                "spec.template.jobTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "AdvancedCronJob",
                "spec.template.broadcastJobTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.statefulSetTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.advancedStatefulSetTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.cloneSetTemplate.spec.template",
            ),
            (
                "apps.kruise.io/v1alpha1",
                "UnitedDeployment",
                "spec.template.deploymentTemplate.spec.template",
            ),
            ("serving.knative.dev/v1", "Service", "spec.template"),
        ];
        for (api, kind, path) in cases {
            let yaml = format!("{CM}{}", with(api, kind, path));
            let analysis = analyze(&yaml, &Options::default()).expect("valid");
            let annotated: Vec<_> = analysis
                .resolution
                .templates
                .iter()
                .filter(|t| t.edit.is_some())
                .collect();
            assert_eq!(annotated.len(), 1, "{kind} {path}:\n{yaml}");
            assert_eq!(annotated[0].path, path);
            let mut out = Vec::new();
            analysis.write_to(&mut out).expect("write");
            let out = String::from_utf8(out).expect("utf8");
            let again = analyze(&out, &Options::default()).expect("output parses");
            assert_eq!(again.changed(), 0, "{kind}: not idempotent");
        }
        // The core Service and a Job (by default) are left alone.
        let yaml = format!(
            "{CM}{}{}",
            with("v1", "Service", "spec.template"),
            with("batch/v1", "Job", "spec.template")
        );
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.changed(), 0);
    }

    #[test]
    fn jobs_only_with_include_jobs() {
        let job = "---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      volumes: [{name: c, configMap: {name: app}}]\n";
        let yaml = format!("{CM}{job}");
        assert!(sums(&yaml)["Job j"].starts_with("skipped: Job pod templates are immutable"));
        let options = Options {
            rules: Rules {
                include_jobs: true,
                ..Rules::default()
            },
            ..Options::default()
        };
        assert_eq!(outcomes(&yaml, &options)["Job j spec.template"].len(), 64);
    }

    #[test]
    fn hooks_and_opt_outs_are_skipped() {
        let hook = deployment("h", WHOLE).replace(
            "metadata: {name: h}",
            "metadata:\n  name: h\n  annotations: {helm.sh/hook: pre-install}",
        );
        let skip = deployment("s", WHOLE).replace(
            "metadata: {name: s}",
            "metadata:\n  name: s\n  annotations: {reconfig/skip: \"true\"}",
        );
        let template_skip = deployment("t", WHOLE).replace(
            "  template:\n",
            "  template:\n    metadata:\n      annotations: {reconfig/skip: \"true\"}\n",
        );
        let out = sums(&format!("{CM}{hook}{skip}{template_skip}"));
        assert_eq!(
            out["Deployment h"],
            "skipped: Helm hook (pre-install): hooks are not rolled"
        );
        assert_eq!(out["Deployment s"], "skipped: opted out with reconfig/skip");
        assert_eq!(
            out["Deployment t spec.template"],
            "skipped: opted out with reconfig/skip"
        );
    }

    #[test]
    fn key_level_precision() {
        let base = sums(&format!(
            "{CM}{}{}",
            deployment("whole", WHOLE),
            deployment("key", KEY_A)
        ));
        let b_changed = sums(&format!(
            "{}{}{}",
            CM.replace("b: two", "b: TWO"),
            deployment("whole", WHOLE),
            deployment("key", KEY_A)
        ));
        let a_changed = sums(&format!(
            "{}{}{}",
            CM.replace("a: one", "a: ONE"),
            deployment("whole", WHOLE),
            deployment("key", KEY_A)
        ));
        let key_added = sums(&format!(
            "{}  c: three\n{}{}",
            CM,
            deployment("whole", WHOLE),
            deployment("key", KEY_A)
        ));
        assert_ne!(
            base["Deployment whole spec.template"],
            b_changed["Deployment whole spec.template"]
        );
        assert_eq!(
            base["Deployment key spec.template"],
            b_changed["Deployment key spec.template"]
        );
        assert_ne!(
            base["Deployment key spec.template"],
            a_changed["Deployment key spec.template"]
        );
        assert_ne!(
            base["Deployment whole spec.template"],
            key_added["Deployment whole spec.template"]
        );
        assert_eq!(
            base["Deployment key spec.template"],
            key_added["Deployment key spec.template"]
        );
    }

    #[test]
    fn items_select_keys_and_env_from_skips_binary_data() {
        let cm = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {a: one, b: two}\nbinaryData: {bin: aGk=}\n";
        let items = "volumes: [{name: c, configMap: {name: app, items: [{key: a, path: a}]}}]\ncontainers: [{name: x}]";
        let env_from = "containers: [{name: x, envFrom: [{configMapRef: {name: app}}]}]";
        let run = |cm: &str| {
            sums(&format!(
                "{cm}{}{}",
                deployment("items", items),
                deployment("env", env_from)
            ))
        };
        let base = run(cm);
        let bin_changed = run(&cm.replace("aGk=", "aGo="));
        let b_changed = run(&cm.replace("b: two", "b: 2"));
        assert_eq!(
            base["Deployment items spec.template"],
            bin_changed["Deployment items spec.template"]
        );
        assert_eq!(
            base["Deployment env spec.template"],
            bin_changed["Deployment env spec.template"]
        );
        assert_eq!(
            base["Deployment items spec.template"],
            b_changed["Deployment items spec.template"]
        );
        assert_ne!(
            base["Deployment env spec.template"],
            b_changed["Deployment env spec.template"]
        );
    }

    #[test]
    fn formatting_and_metadata_do_not_change_the_checksum() {
        let reformatted = "---\n# a comment\napiVersion: v1\nkind: ConfigMap\ndata: {b: \"two\", a: 'one'}\nmetadata:\n  name: app\n  labels: {chart: app-1.2.4}\n  annotations: {note: changed}\n";
        let a = sums(&format!("{CM}{}", deployment("w", WHOLE)));
        let b = sums(&format!("{reformatted}{}", deployment("w", WHOLE)));
        assert_eq!(a, b);
    }

    #[test]
    fn secrets_hash_string_data_like_data() {
        let data = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata:\n  user: YWRtaW4=\n  pass: aHVudGVyMg==\n";
        let spec = "volumes: [{name: s, secret: {secretName: creds}}]\ncontainers: [{name: x}]";
        assert_eq!(
            sums(&format!("{SECRET}{}", deployment("w", spec))),
            sums(&format!("{data}{}", deployment("w", spec)))
        );
    }

    #[test]
    fn secret_hash_key_changes_secret_contributions_only() {
        let spec = "volumes: [{name: s, secret: {secretName: creds}}, {name: c, configMap: {name: app}}]\ncontainers: [{name: x}]";
        let yaml = format!(
            "{CM}{SECRET}{}{}",
            deployment("both", spec),
            deployment("cm", WHOLE)
        );
        let keyed = Options {
            secret_key: Some(b"k1".to_vec()),
            ..Options::default()
        };
        let other_key = Options {
            secret_key: Some(b"k2".to_vec()),
            ..Options::default()
        };
        let plain = sums(&yaml);
        let k1 = outcomes(&yaml, &keyed);
        let k2 = outcomes(&yaml, &other_key);
        assert_ne!(
            plain["Deployment both spec.template"],
            k1["Deployment both spec.template"]
        );
        assert_ne!(
            k1["Deployment both spec.template"],
            k2["Deployment both spec.template"]
        );
        assert_eq!(
            plain["Deployment cm spec.template"],
            k1["Deployment cm spec.template"]
        );
    }

    #[test]
    fn namespaces_must_match() {
        let cm_prod = CM.replace(
            "metadata: {name: app}",
            "metadata: {name: app, namespace: prod}",
        );
        let in_prod = deployment("w", WHOLE).replace(
            "metadata: {name: w}",
            "metadata: {name: w, namespace: prod}",
        );
        let no_ns = deployment("w", WHOLE);
        // Same explicit namespace.
        assert_eq!(
            sums(&format!("{cm_prod}{in_prod}"))["Deployment prod/w spec.template"].len(),
            64
        );
        // Different namespaces never match.
        assert!(
            sums(&format!("{cm_prod}{no_ns}"))["Deployment w spec.template"].starts_with("skipped")
        );
        // Unnamespaced objects match each other.
        assert_eq!(
            sums(&format!("{CM}{no_ns}"))["Deployment w spec.template"].len(),
            64
        );
        // --namespace fills in for objects that name none.
        let options = Options {
            rules: Rules {
                namespace: Some("prod".into()),
                ..Rules::default()
            },
            ..Options::default()
        };
        assert_eq!(
            outcomes(&format!("{cm_prod}{no_ns}"), &options)["Deployment prod/w spec.template"]
                .len(),
            64
        );
        assert!(
            outcomes(&format!("{CM}{in_prod}"), &options)["Deployment prod/w spec.template"].len()
                == 64
        );
    }

    #[test]
    fn missing_references() {
        let optional = "volumes: [{name: c, configMap: {name: gone, optional: true}}]\ncontainers: [{name: x}]";
        let required = "volumes: [{name: c, configMap: {name: gone}}]\ncontainers: [{name: x}]";
        let yaml = format!("{CM}{}", deployment("opt", optional));
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert!(analysis.resolution.missing.is_empty());
        assert_eq!(analysis.changed(), 0);
        let yaml = format!("{CM}{}", deployment("req", required));
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.resolution.missing.len(), 1);
        let message = &analysis.resolution.missing[0].message;
        assert!(
            message.contains("Deployment req") && message.contains("ConfigMap \"gone\""),
            "{message}"
        );
    }

    #[test]
    fn declared_dependencies_and_exclusions() {
        let controller = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: argo-rollouts\n  annotations: {reconfig/configmaps: app}\nspec:\n  template:\n    spec:\n      containers: [{name: x}]\n";
        let out = sums(&format!("{CM}{controller}"));
        assert_eq!(out["Deployment argo-rollouts spec.template"].len(), 64);

        let plain = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: argo-rollouts}\nspec:\n  template:\n    spec:\n      containers: [{name: x}]\n";
        let options = Options {
            rules: Rules {
                depends: vec!["deployment/argo-rollouts=configmap/app"
                    .parse()
                    .expect("depend")],
                ..Rules::default()
            },
            ..Options::default()
        };
        assert_eq!(
            outcomes(&format!("{CM}{plain}"), &options)["Deployment argo-rollouts spec.template"],
            out["Deployment argo-rollouts spec.template"]
        );
        assert!(
            sums(&format!("{CM}{plain}"))["Deployment argo-rollouts spec.template"]
                .starts_with("skipped")
        );

        let excluded = deployment("hot", &format!("{WHOLE}\n")).replace(
            "  template:\n",
            "  template:\n    metadata:\n      annotations: {reconfig/exclude: configmap/app}\n",
        );
        assert!(
            sums(&format!("{CM}{excluded}"))["Deployment hot spec.template"].starts_with("skipped")
        );
    }

    #[test]
    fn rollout_with_workload_ref_annotates_its_target() {
        let rollout = "---\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: r\n  annotations: {reconfig/secrets: creds}\nspec:\n  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: w}\n";
        let yaml = format!("{CM}{SECRET}{rollout}{}", deployment("w", WHOLE));
        let with_ref = sums(&yaml);
        assert_eq!(with_ref["Rollout r"], "skipped: uses spec.workloadRef, whose template must stay empty; Deployment w is annotated instead");
        let alone = sums(&format!("{CM}{SECRET}{}", deployment("w", WHOLE)));
        assert_ne!(
            with_ref["Deployment w spec.template"], alone["Deployment w spec.template"],
            "the Rollout's declared Secret counts for its target"
        );

        let yaml = format!("{CM}{rollout}");
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.changed(), 0);
        assert!(analysis.resolution.warnings[0]
            .message
            .contains("not in the stream"));
    }

    #[test]
    fn kruise_in_place_updates_are_reported() {
        let cloneset = "---\napiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata: {name: c}\nspec:\n  updateStrategy: {type: InPlaceIfPossible}\n  template:\n    spec:\n      volumes: [{name: c, configMap: {name: app}}]\n";
        let yaml = format!("{CM}{cloneset}");
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        assert_eq!(analysis.changed(), 1);
        assert!(analysis.resolution.warnings[0]
            .message
            .contains("InPlaceIfPossible"));
    }

    #[test]
    fn custom_template_paths() {
        let custom = "---\napiVersion: example.com/v1\nkind: Workflow\nmetadata: {name: wf}\nspec:\n  podTemplate:\n    spec:\n      volumes: [{name: c, configMap: {name: app}}]\n";
        let options = Options {
            kinds: crate::manifest::workload::TemplateKinds::with_custom(&[
                "Workflow.example.com=spec.podTemplate"
                    .parse()
                    .expect("path"),
            ]),
            ..Options::default()
        };
        assert_eq!(
            outcomes(&format!("{CM}{custom}"), &options)["Workflow wf spec.podTemplate"].len(),
            64
        );
        assert!(sums(&format!("{CM}{custom}")).is_empty());
    }

    /// The checksum is a public contract: these values must never change.
    #[test]
    fn checksums_are_pinned() {
        let spec = "volumes: [{name: s, secret: {secretName: creds, items: [{key: pass, path: p}]}}]\ncontainers: [{name: x, envFrom: [{configMapRef: {name: app}}], env: [{name: U, valueFrom: {secretKeyRef: {name: creds, key: user}}}]}]";
        let out = sums(&format!(
            "{CM}{SECRET}{}{}",
            deployment("whole", WHOLE),
            deployment("mixed", spec)
        ));
        insta::assert_debug_snapshot!(out);
    }

    #[test]
    fn depend_specs_parse() {
        let d: Depend = "Deployment.apps/argo-rollouts=configmap/a, secret/b"
            .parse()
            .expect("valid");
        assert_eq!(d.name, "argo-rollouts");
        assert_eq!(
            d.objects,
            vec![
                (ConfigKind::ConfigMap, "a".into()),
                (ConfigKind::Secret, "b".into())
            ]
        );
        for bad in [
            "deployment=configmap/a",
            "deployment/x=",
            "deployment/x=pod/y",
            "deployment/=configmap/a",
        ] {
            assert!(bad.parse::<Depend>().is_err(), "{bad}");
        }
    }
}
