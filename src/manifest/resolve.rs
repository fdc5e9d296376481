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

use super::checksum::{checksum_digest, Contribution, Selection};
use super::edit::{ChecksumEdit, ChecksumKey, SlotError};
use super::index::{Item, Items, ObjectIndex};
use super::object::{ConfigKind, ConfigObject, ObjectId};
use super::stream::{Diagnostic, DocInfo, Location, Parsed};
use super::workload::{
    parse_object_ref, qualified, GroupKind, KindSpec, PodTemplate, Workload, WorkloadId,
    OWN_CHECKSUM,
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
    /// Count volumes that a known reload sidecar watches too (`--include-reloaded`); by
    /// default they are left out, since the app gets those changes without a restart.
    pub include_reloaded: bool,
}

/// Why a pod template was left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Hook(String),
    Job,
    OptedOut,
    WorkloadRef {
        target: String,
        found: bool,
    },
    NothingToHash,
    /// Everything it uses is a volume its reload sidecar applies without a restart.
    AllReloaded,
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
            Skip::AllReloaded => f.write_str(
                "everything it uses is reloaded in place by its reload sidecar (reconfig/include or --include-reloaded counts it)",
            ),
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
    pub edit: Option<ChecksumEdit>,
    /// References left out because a reload sidecar applies them in place, each saying which
    /// and by whom (for `-v`).
    pub reloaded: Vec<String>,
}

/// How much a user is told about one decision: `-v` shows `Info`, `-vv` `Debug` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteLevel {
    Info,
    Debug,
}

/// One line a user is told about a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub level: NoteLevel,
    pub text: String,
}

/// What `inject` keeps of a decision ([`Options::brief_decisions`](super::analysis::Options)):
/// the edit it writes, and what it tells the user (only when asked to keep notes). A whole
/// decision names its workload, the objects it uses and their keys, and costs several times
/// what this does, for every pod template of the stream until the output is written.
#[derive(Debug, Clone)]
pub struct Brief {
    /// Index into the parsed documents.
    pub doc: usize,
    pub edit: Option<ChecksumEdit>,
    pub notes: Box<[Note]>,
}

/// Brief decisions in stream order, in runs: each thread that resolves workloads fills a
/// run of its own, and the runs are kept as they are rather than copied into one list (for
/// the pairs of `benches/memory_bench.sh`, a copy of 6 MiB at the peak).
#[derive(Debug, Default)]
pub struct Briefs(Vec<Vec<Brief>>);

impl Briefs {
    /// An empty list whose first run has room for `count` briefs.
    pub fn with_capacity(count: usize) -> Self {
        Briefs(vec![Vec::with_capacity(count)])
    }

    /// Every brief, in stream order.
    pub fn iter(&self) -> impl Iterator<Item = &Brief> {
        self.0.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Vec::is_empty)
    }

    /// Appends briefs to the last run.
    pub fn extend(&mut self, briefs: impl IntoIterator<Item = Brief>) {
        if self.0.is_empty() {
            self.0.push(Vec::new());
        }
        if let Some(last) = self.0.last_mut() {
            last.extend(briefs);
        }
    }

    /// Appends the runs of `other` after these.
    pub fn append(&mut self, other: Briefs) {
        self.0
            .extend(other.0.into_iter().filter(|run| !run.is_empty()));
    }

    /// Puts the briefs in stream order when they might not be (a stable sort: each
    /// workload's own stay in their order), as one run.
    pub fn sort(&mut self) {
        let mut all: Vec<Brief> = std::mem::take(&mut self.0).into_iter().flatten().collect();
        all.sort_by_key(|b| b.doc);
        self.0 = vec![all];
    }
}

impl TemplateResolution {
    /// What the user is told about this decision: sidecar-reloaded references left out,
    /// then the checksum and what it covers, or why the template was skipped.
    pub fn notes(&self) -> Vec<Note> {
        let note = |level, text| Note { level, text };
        let mut notes: Vec<Note> = self
            .reloaded
            .iter()
            .map(|r| {
                note(
                    NoteLevel::Info,
                    format!(
                        "{} {}: left out of the checksum: {r}",
                        self.workload, self.path
                    ),
                )
            })
            .collect();
        notes.push(match &self.outcome {
            Outcome::Annotate { checksum, uses } => {
                let used: Vec<String> = uses
                    .iter()
                    .map(|u| match &u.keys {
                        None => u.object.kind_and_name(),
                        Some(keys) => format!("{} [{}]", u.object.kind_and_name(), keys.join(", ")),
                    })
                    .collect();
                let state = if self.edit.is_some() {
                    "annotated"
                } else {
                    "unchanged"
                };
                note(
                    NoteLevel::Info,
                    format!(
                        "{} {} {state}: {} from {}",
                        self.workload,
                        self.path,
                        checksum.get(..12).unwrap_or(checksum),
                        used.join("; ")
                    ),
                )
            }
            Outcome::Skipped(why) => note(
                NoteLevel::Debug,
                format!("{} {}: skipped: {why}", self.workload, self.path),
            ),
        });
        notes
    }

    /// The decision reduced to its [`Brief`], with its notes when `notes` is set.
    pub fn brief(self, notes: bool) -> Brief {
        let notes = if notes { self.notes() } else { Vec::new() };
        Brief {
            notes: notes.into_boxed_slice(),
            doc: self.doc,
            edit: self.edit,
        }
    }
}

/// The decisions for a whole stream.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Every decision in full, in stream order; empty when they are kept as `briefs`.
    pub templates: Vec<TemplateResolution>,
    /// The decisions as [`Brief`]s, in stream order (`inject`); empty when kept in full.
    pub briefs: Briefs,
    /// Things a user should know that do not stop the output.
    pub warnings: Vec<Diagnostic>,
    /// Required references not in the stream: warnings, or errors under `--strict`.
    pub missing: Vec<Diagnostic>,
    /// Flags that matched nothing in the stream (`--depends`, `--template-path`): a typo or a
    /// release-prefixed name, most likely. Warnings, or errors under `--strict`.
    pub unmatched: Vec<String>,
    /// Every object a pod template references (optional or not) that the stream lacks:
    /// what `inject --lookup` reads from the cluster.
    pub absent: std::collections::BTreeSet<ObjectId>,
}

impl Resolution {
    /// Moves the decisions kept in full to the end of `briefs`, each reduced to its
    /// [`Brief`] (with its notes when `notes` is set).
    pub fn brief_templates(&mut self, notes: bool) {
        let briefs = self.templates.drain(..).map(|t| t.brief(notes));
        self.briefs.extend(briefs);
    }
}

/// Resolves the checksum of every pod template of a parsed stream.
///
/// With `release_workloads`, each workload is dropped from `parsed` once its templates are
/// resolved ([`Item::Released`]): for `inject`, whose later steps read only the decisions, so
/// that the decisions and the workloads they came from are never all in memory at once.
pub fn resolve(
    parsed: &mut Parsed<Items>,
    objects: &ObjectIndex,
    rules: &Rules,
    annotation_key: &str,
    release_workloads: bool,
) -> Resolution {
    let default_namespace = rules.namespace.as_deref().unwrap_or("");
    let (places, links, unmatched, decisions) = {
        let workloads = workload_docs(parsed, default_namespace);
        let places: Vec<(usize, usize)> = workloads.iter().map(|w| (w.index, w.item)).collect();
        let decisions: usize = workloads
            .iter()
            .map(|w| w.workload.templates.len().max(1))
            .sum();
        let links = link_workload_refs(&workloads, rules);
        (
            places,
            links,
            unmatched_depends(&workloads, rules),
            decisions,
        )
    };
    let mut out = Resolution {
        unmatched,
        ..Resolution::default()
    };
    // Kept until output: sized once, not grown to twice what it holds.
    out.templates.reserve_exact(decisions);
    for (i, &(index, item)) in places.iter().enumerate() {
        let resolver = Resolver {
            parsed: &*parsed,
            objects,
            rules,
            annotation_key,
        };
        if let Some(w) = WorkloadDoc::at(parsed, index, item, default_namespace) {
            let forwarded = links.forwarded.get(&i).map_or(&[][..], Vec::as_slice);
            resolver.workload(&mut out, &w, forwarded, links.targets.get(&i));
        }
        if release_workloads {
            if let Some(Some(slot)) = parsed.values.get_mut(index).map(|v| v.as_mut()) {
                if let Some(released) = slot.get_mut(item) {
                    *released = Item::Released;
                }
            }
        }
    }
    out
}

/// Resolves one workload, read after every ConfigMap and Secret of the stream is indexed in
/// `objects` (`inject`'s flow, in which no workload is kept), and adds its decisions to `out`
/// as [`Brief`]s, with their notes when `notes` is set.
///
/// Only what is known of the workload alone is used: the caller makes sure no link between
/// workloads applies (no Rollout with a `workloadRef` in the stream, no `--depends` whose
/// match over the whole stream is to be reported).
#[allow(clippy::too_many_arguments)]
pub fn resolve_workload(
    out: &mut Resolution,
    parsed: &Parsed<Items>,
    objects: &ObjectIndex,
    rules: &Rules,
    annotation_key: &str,
    (index, info): (usize, &DocInfo),
    workload: &Workload,
    notes: bool,
) {
    let default_namespace = rules.namespace.as_deref().unwrap_or("");
    let w = WorkloadDoc {
        index,
        item: 0,
        info,
        workload,
        id: workload.id(default_namespace),
    };
    let resolver = Resolver {
        parsed,
        objects,
        rules,
        annotation_key,
    };
    resolver.workload(out, &w, &[], None);
    out.brief_templates(notes);
}

/// The workloads of a parsed stream, in stream order.
fn workload_docs<'p>(parsed: &'p Parsed<Items>, default_namespace: &str) -> Vec<WorkloadDoc<'p>> {
    (0..parsed.values.len())
        .flat_map(|index| {
            let count = parsed.values[index].as_ref().map_or(0, |items| items.len());
            (0..count).map(move |item| (index, item))
        })
        .filter_map(|(index, item)| WorkloadDoc::at(parsed, index, item, default_namespace))
        .collect()
}

/// A workload with the document it came from.
struct WorkloadDoc<'p> {
    /// Index into the parsed documents.
    index: usize,
    /// Index among the document's items.
    item: usize,
    info: &'p DocInfo,
    workload: &'p Workload,
    id: WorkloadId,
}

impl<'p> WorkloadDoc<'p> {
    /// The workload at item `item` of document `index`, if that item is one.
    fn at(
        parsed: &'p Parsed<Items>,
        index: usize,
        item: usize,
        default_namespace: &str,
    ) -> Option<Self> {
        let Item::Workload(workload) = parsed.values.get(index)?.as_ref()?.get(item)? else {
            return None;
        };
        Some(WorkloadDoc {
            index,
            item,
            info: parsed.docs.get(index)?,
            id: workload.id(default_namespace),
            workload,
        })
    }
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
/// (annotations, `--depends`, a Rollout's forwarded dependencies); minus what is excluded,
/// and minus volumes a reload sidecar applies in place (unless included), which are
/// returned as notes saying so.
fn wanted<'w>(
    w: &'w Workload,
    template: &'w PodTemplate,
    rules: &'w Rules,
    forwarded: &'w [(ConfigKind, String)],
) -> (Vec<Wanted<'w>>, Vec<String>) {
    let included = |kind: ConfigKind, name: &str| {
        w.directives
            .include
            .iter()
            .chain(&template.directives.include)
            .any(|(k, n)| *k == kind && n == name)
    };
    let mut reloaded = Vec::new();
    let mut kept = Vec::new();
    for r in &template.references {
        match &r.reloaded_by {
            Some(sidecar) if !rules.include_reloaded && !included(r.kind, &r.name) => reloaded
                .push(format!(
                    "{} {} ({}) is reloaded in place by {sidecar}",
                    r.kind, r.name, r.via
                )),
            _ => kept.push(r),
        }
    }
    let references = kept.into_iter().map(|r| Wanted {
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
    let wanted = references
        .chain(declared)
        .filter(|want| !excluded(want))
        .collect();
    (wanted, reloaded)
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
    parsed: &'p Parsed<Items>,
    objects: &'p ObjectIndex,
    rules: &'p Rules,
    annotation_key: &'p str,
}

impl<'p> Resolver<'p> {
    /// Resolves every pod template of a workload, or its skip; `forwarded` and `ref_target`
    /// are what a Rollout's `workloadRef` means for it ([`RefLinks`]).
    fn workload(
        &self,
        out: &mut Resolution,
        w: &WorkloadDoc<'_>,
        forwarded: &[(ConfigKind, String)],
        ref_target: Option<&RefTarget>,
    ) {
        if let Some(skip) = workload_skip(w.workload, self.rules, ref_target) {
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
                reloaded: Vec::new(),
            });
            return;
        }
        for template in &w.workload.templates {
            self.template(out, w, template, forwarded);
        }
    }

    /// Resolves one pod template of a workload that is not skipped as a whole.
    fn template(
        &self,
        out: &mut Resolution,
        w: &WorkloadDoc<'_>,
        template: &PodTemplate,
        forwarded: &[(ConfigKind, String)],
    ) {
        let location = w.info.at(template.pos);
        let (wanted, reloaded) = wanted(w.workload, template, self.rules, forwarded);
        let record = |out: &mut Resolution, outcome: Outcome, edit: Option<ChecksumEdit>| {
            out.templates.push(TemplateResolution {
                workload: w.id.clone(),
                path: template.path.clone(),
                location: location.clone(),
                outcome,
                doc: w.index,
                edit,
                reloaded: reloaded.clone(),
            })
        };
        if template.directives.skip {
            record(out, Outcome::Skipped(Skip::OptedOut), None);
            return;
        }
        // An existing value under the key that cannot be rewritten (an anchored or block
        // scalar) is not reconfig's: it stays, and reconfig's own key is used (below).
        let cannot_edit = |out: &mut Resolution, e: &SlotError| {
            out.warnings.push(Diagnostic {
                location: location.clone(),
                message: format!("{} {}: cannot be annotated: {e}", w.id, template.path),
            });
            record(out, Outcome::Skipped(Skip::CannotEdit(e.to_string())), None);
        };
        let slot = match &template.slot {
            Ok(slot) => Ok(slot),
            Err(e) if e.is_about_existing_value() && template.own_slot.is_some() => Err(e),
            Err(e) => return cannot_edit(out, e),
        };

        let used = self.look_up(wanted, &w.id, &location, out);
        if used.is_empty() {
            let skip = if reloaded.is_empty() {
                Skip::NothingToHash
            } else {
                Skip::AllReloaded
            };
            record(out, Outcome::Skipped(skip), None);
            return;
        }
        let (digest, uses) = summarise(&used);
        let sum = hex::encode(digest);
        if let Some(strategy) = &w.workload.in_place {
            out.warnings.push(Diagnostic {
                location: location.clone(),
                message: format!(
                    "{} updates pods in place ({strategy}): a changed checksum only rewrites pod metadata and restarts no container; use a recreating update strategy, or let the app reload (reconfig watch)",
                    w.id
                ),
            });
        }
        // A value under the key that is not the checksum, or one it cannot rewrite, is someone
        // else's (a chart's own `checksum/config`): it stays, and reconfig's checksum goes to a
        // key of its own.
        let foreign = slot.is_ok_and(|slot| slot.existing.as_ref().is_some_and(|e| *e != sum));
        let (key, slot) = match (slot, &template.own_slot) {
            (Ok(slot), None) => (ChecksumKey::Configured, slot),
            (Ok(slot), Some(_)) if !foreign => (ChecksumKey::Configured, slot),
            (_, Some(Err(e))) => return cannot_edit(out, e),
            (_, Some(Ok(own))) => {
                out.warnings.push(Diagnostic {
                    location: location.clone(),
                    message: format!(
                        "{} {} already has {}, which reconfig did not compute (the chart's own hash, most likely): it is kept, and reconfig's checksum goes to {OWN_CHECKSUM}",
                        w.id, template.path, self.annotation_key
                    ),
                });
                (ChecksumKey::Own, own)
            }
            (Err(e), None) => return cannot_edit(out, e),
        };
        let edit = (slot.existing.as_deref() != Some(sum.as_str()))
            .then(|| slot.checksum_edit(key, digest));
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
        out: &mut Resolution,
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
                None if want.optional => {
                    out.absent.insert(id);
                }
                None => {
                    out.absent.insert(id);
                    out.missing.push(Diagnostic {
                        location: location.clone(),
                        message: format!(
                            "{workload}: {} \"{}\" ({}) is not in the stream; changes to it will not roll this workload",
                            want.kind, want.name, want.via
                        ),
                    })
                }
            }
        }
        used
    }
}

/// The checksum over what a template uses, and the uses as users are told about them.
fn summarise(used: &[Use<'_>]) -> ([u8; 32], Vec<Used>) {
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
    (checksum_digest(&contributions), uses)
}

/// The `--depends` whose workload is not in the stream, each with what the stream has of
/// that kind, since a chart often prefixes names with the release (`rel-argo-rollouts`).
fn unmatched_depends(workloads: &[WorkloadDoc<'_>], rules: &Rules) -> Vec<String> {
    let mut out = Vec::new();
    for (i, d) in rules.depends.iter().enumerate() {
        let same = |e: &Depend| e.workload == d.workload && e.name == d.name;
        if rules.depends[..i].iter().any(same) {
            continue;
        }
        let of_kind: Vec<&WorkloadDoc<'_>> = workloads
            .iter()
            .filter(|w| w.workload.kind.matches(&d.workload))
            .collect();
        if of_kind.iter().any(|w| w.workload.name == d.name) {
            continue;
        }
        let spec = match &d.workload.group {
            Some(group) => format!("{}.{group}/{}", d.workload.kind, d.name),
            None => format!("{}/{}", d.workload.kind, d.name),
        };
        let hint = if of_kind.is_empty() {
            format!("no {} at all", d.workload.kind)
        } else {
            let mut names: Vec<&str> = of_kind.iter().map(|w| w.workload.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            let more = names.len().saturating_sub(5);
            names.truncate(5);
            format!(
                "of that kind it has {}{}",
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        };
        out.push(format!(
            "--depends {spec}=…: no workload {spec} in the stream ({hint}); the dependency is not counted"
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

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
