//! Versioned config: ConfigMaps and Secrets renamed after their content, so every pod pins
//! the exact config it was rolled out with (`inject --versioned`).
//!
//! A checksum annotation rolls pods when their config changes, but old and new pods still
//! mount one object by name: a canary's stable pods get the new config too, and a rollback
//! rolls the template back while the object keeps its new content. A content-addressed name
//! (`app-1a2b3c4d5e`, as kustomize's `configMapGenerator` and kapp do) makes each template
//! name its own version. Renaming is only safe where every reader is a pod template reconfig
//! rewrites: an object some other field names (an Ingress's TLS secret, `imagePullSecrets`, a
//! dependency a controller reads through the API) keeps its name, with a warning naming who
//! reads it. This module decides which objects are renamed and makes the edits; it reads
//! the slots that `object`, `workload` and `edit` found while the trees were alive.

use std::collections::HashMap;
use std::ops::Range;

use super::checksum::data_checksum;
use super::edit::{quote, Edit, RenameSlots, Slot, SlotError};
use super::index::{Item, Items, ObjectIndex};
use super::object::{ConfigKind, ConfigObject, ObjectId, VERSIONED, VERSIONED_FROM};
use super::resolve::Rules;
use super::stream::{Diagnostic, Location, Parsed};
use super::workload::{qualified, GroupKind};

/// Annotation on a versioned object: the full checksum its name's hash is the start of.
pub const DATA_CHECKSUM: &str = "reconfig/data-checksum";
/// Helm keeps an object with this annotation (`keep`) when a release no longer renders it.
pub const HELM_RESOURCE_POLICY: &str = "helm.sh/resource-policy";
/// Argo CD's per-object sync options; `Prune=false` keeps an object it no longer renders.
pub const ARGOCD_SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";

/// Hex digits of the checksum in a versioned name.
pub const HASH_LEN: usize = 10;
/// The longest object name the API server accepts (a DNS subdomain).
pub const MAX_NAME_LEN: usize = 253;
/// The longest label value the API server accepts.
pub const MAX_LABEL_VALUE_LEN: usize = 63;

/// Which ConfigMaps and Secrets get versioned names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// None: nothing is renamed (`--versioned=none`).
    #[default]
    Off,
    /// Those annotated `reconfig/versioned: "true"` (inject's default).
    Annotated,
    /// Also every object that only pod templates reference, unless annotated `"false"`.
    All,
}

/// How objects are versioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Versioning {
    pub mode: Mode,
    /// Ask Helm and Argo CD to keep old versions (`--keep`).
    pub keep: bool,
}

impl Versioning {
    /// Whether the stream `text` may have objects to version, so that slots and the names
    /// other objects use must be read. Without `--versioned`, only a stream that mentions
    /// the annotation or the label can.
    pub fn may_apply(&self, text: &str) -> bool {
        match self.mode {
            Mode::Off => false,
            Mode::All => true,
            Mode::Annotated => text.contains(VERSIONED),
        }
    }

    /// The annotations a versioned object carries, in the order they are written.
    pub fn annotation_keys(&self) -> Vec<&'static str> {
        let mut keys = vec![DATA_CHECKSUM];
        if self.keep {
            keys.extend([HELM_RESOURCE_POLICY, ARGOCD_SYNC_OPTIONS]);
        }
        keys
    }
}

/// One object renamed (or found already versioned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    /// The object as the stream has it.
    pub id: ObjectId,
    pub new_name: String,
    /// Its full data checksum.
    pub checksum: String,
    /// Pod template references that name it.
    pub references: usize,
    /// Whether anything in the text changes (not when it is already versioned).
    pub changed: bool,
    pub location: Location,
}

/// What versioning does to a stream.
#[derive(Debug, Default)]
pub struct Versions {
    pub renamed: Vec<Renamed>,
    /// Edits by document index.
    pub edits: Vec<(usize, Edit)>,
    /// Objects that asked to be (or would be) versioned and are not, saying why.
    pub warnings: Vec<Diagnostic>,
    /// Objects whose versioned name the API server would refuse: the stream is invalid.
    pub errors: Vec<Diagnostic>,
}

/// One place a pod template names an object.
struct Site {
    doc: usize,
    name_at: Option<(Range<usize>, Option<char>)>,
    /// Why this reference cannot be rewritten, naming the template; `None` when it can.
    blocked: Option<String>,
    /// The app reloads it in place (a reload sidecar's volume, `reconfig/exclude`).
    in_place: Option<String>,
}

/// Everything that names one object, by its id.
#[derive(Default)]
struct Readers {
    sites: Vec<Site>,
    /// Readers that are not pod templates reconfig rewrites, described.
    others: Vec<String>,
}

/// Decides which objects are versioned and makes the edits.
pub fn plan(
    parsed: &Parsed<Items>,
    objects: &ObjectIndex,
    rules: &Rules,
    versioning: &Versioning,
) -> Versions {
    let mut out = Versions::default();
    if versioning.mode == Mode::Off {
        return out;
    }
    let default_namespace = rules.namespace.as_deref().unwrap_or("");
    let readers = readers(parsed, rules, default_namespace);
    let none = Readers::default();
    for (doc, items) in parsed.values.iter().enumerate() {
        for item in items.iter().flatten() {
            let Item::Config(object) = item else { continue };
            let id = object.id(default_namespace);
            // Of two objects with one id, the later one is what the API server keeps.
            if !objects
                .get(parsed, &id)
                .is_some_and(|o| std::ptr::eq(o, object))
            {
                continue;
            }
            let Some(slots) = object.rename.as_deref() else {
                continue;
            };
            let location = parsed.docs[doc].at(slots.pos);
            let found = readers.get(&id).unwrap_or(&none);
            let rewritable = found.sites.iter().filter(|s| s.blocked.is_none()).count();
            let asked = object.versioned_from.is_some() || object.versioned == Some(true);
            let selected = asked
                || (versioning.mode == Mode::All
                    && object.versioned != Some(false)
                    && rewritable > 0
                    && found.sites.iter().all(|s| s.in_place.is_none()));
            if !selected {
                continue;
            }
            let mut why_not: Vec<String> = found
                .sites
                .iter()
                .filter_map(|s| s.blocked.clone())
                .chain(found.others.iter().cloned())
                .collect();
            why_not.extend(slot_problems(slots));
            if !why_not.is_empty() {
                why_not.sort();
                why_not.dedup();
                out.warnings.push(Diagnostic {
                    location,
                    message: format!(
                        "{} {} is not versioned: {}; it keeps its name",
                        object.kind,
                        qualified(&id.namespace, &object.name),
                        why_not.join("; ")
                    ),
                });
                continue;
            }
            match rename(object, slots) {
                Err(message) => out.errors.push(Diagnostic { location, message }),
                Ok((new_name, checksum, edits)) => {
                    let mut changed = !edits.is_empty();
                    out.edits.extend(edits.into_iter().map(|e| (doc, e)));
                    for site in &found.sites {
                        let Some((range, quote_char)) = &site.name_at else {
                            continue;
                        };
                        if object.name != new_name {
                            changed = true;
                            out.edits.push((
                                site.doc,
                                Edit {
                                    range: range.clone(),
                                    text: quoted(&new_name, *quote_char),
                                },
                            ));
                        }
                    }
                    if asked && object.versioned_from.is_none() && found.sites.is_empty() {
                        out.warnings.push(Diagnostic {
                            location: location.clone(),
                            message: format!(
                                "{} {} is versioned as {new_name}, but no pod template in the stream uses it",
                                object.kind,
                                qualified(&id.namespace, &object.name)
                            ),
                        });
                    }
                    out.renamed.push(Renamed {
                        references: found.sites.len(),
                        id,
                        new_name,
                        checksum,
                        changed,
                        location,
                    });
                }
            }
        }
    }
    out
}

/// Why an object's own text cannot be edited in place, if it cannot.
fn slot_problems(slots: &RenameSlots) -> Vec<String> {
    let mut out = Vec::new();
    if slots.anchors {
        out.push("its document uses YAML anchors, which reconfig does not rename in".into());
    } else if slots.name.is_none() {
        out.push(
            "its metadata.name is not a one-line plain or quoted string reconfig can rewrite"
                .into(),
        );
    }
    let failed = |what: &str, slot: &Result<Slot, SlotError>| {
        slot.as_ref()
            .err()
            .map(|e| format!("its {what} cannot be written in place: {e}"))
    };
    out.extend(failed("label", &slots.label));
    out.extend(failed("immutable field", &slots.immutable));
    for (key, slot) in &slots.annotations {
        out.extend(failed(&format!("annotation {key}"), slot));
    }
    out
}

/// The new name, the checksum and the edits of the object's own document.
fn rename(
    object: &ConfigObject,
    slots: &RenameSlots,
) -> Result<(String, String, Vec<Edit>), String> {
    let base = object.logical_name();
    let what = format!("{} {}", object.kind, object.name);
    if let Err(why) = check_label_value(base) {
        return Err(format!(
            "{what} cannot be versioned: its name goes into the label {VERSIONED_FROM}, and {why}; shorten the name, or annotate it {VERSIONED}: \"false\""
        ));
    }
    let checksum = data_checksum(object);
    let new_name = format!("{base}-{}", &checksum[..HASH_LEN]);
    if new_name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{what} cannot be versioned: {new_name} would be {} characters, over the {MAX_NAME_LEN} the API server accepts; shorten the name, or annotate it {VERSIONED}: \"false\"",
            new_name.len()
        ));
    }
    let mut edits = Vec::new();
    if object.name != new_name {
        if let Some((range, quote_char)) = &slots.name {
            edits.push(Edit {
                range: range.clone(),
                text: quoted(&new_name, *quote_char),
            });
        }
    }
    if let Ok(slot) = &slots.label {
        if slot.existing.as_deref() != Some(base) {
            edits.push(slot.edit(VERSIONED_FROM, base));
        }
    }
    if let Ok(slot) = &slots.immutable {
        if !slot
            .existing
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            edits.push(slot.edit_entries(&[("immutable", "true".to_string())]));
        }
    }
    // Existing annotations are set one by one; missing ones go in together, as one edit,
    // since they go into the same mapping (which may itself be missing).
    let mut inserts: Vec<(&Slot, &str, String)> = Vec::new();
    for (key, slot) in &slots.annotations {
        let Ok(slot) = slot else { continue };
        let wanted = match key.as_str() {
            DATA_CHECKSUM => checksum.clone(),
            HELM_RESOURCE_POLICY => "keep".to_string(),
            ARGOCD_SYNC_OPTIONS => with_prune_false(slot.existing.as_deref()),
            _ => continue,
        };
        if slot.existing.as_deref() == Some(wanted.as_str()) {
            continue;
        }
        if slot.existing.is_some() {
            edits.push(slot.edit(key, &wanted));
        } else {
            inserts.push((slot, key, wanted));
        }
    }
    while let Some((first, _, _)) = inserts.first() {
        let first: &Slot = first;
        let (together, rest): (Vec<_>, Vec<_>) = inserts
            .into_iter()
            .partition(|(slot, _, _)| std::ptr::eq(*slot, first) || first.same_insertion(slot));
        let entries: Vec<(&str, String)> = together
            .iter()
            .map(|(_, key, value)| (*key, quote(value)))
            .collect();
        edits.push(first.edit_entries(&entries));
        inserts = rest;
    }
    Ok((new_name, checksum, edits))
}

/// Argo CD's comma-separated sync options with `Prune=false` in place of any `Prune=…`.
fn with_prune_false(existing: Option<&str>) -> String {
    let mut options: Vec<&str> = existing
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty() && !o.starts_with("Prune="))
        .collect();
    options.push("Prune=false");
    options.join(",")
}

/// A name as it was written: plain, or in the same quotes.
fn quoted(name: &str, quote_char: Option<char>) -> String {
    match quote_char {
        Some(q) => format!("{q}{name}{q}"),
        None => name.to_string(),
    }
}

/// Checks a label value as the API server does: at most 63 characters of letters, digits,
/// `-`, `_` and `.`, starting and ending with a letter or digit.
fn check_label_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_LABEL_VALUE_LEN {
        return Err(format!(
            "{value} is {} characters, over the {MAX_LABEL_VALUE_LEN} a label value may have",
            value.len()
        ));
    }
    let ok = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!("{value:?} is not a valid label value"))
    }
}

/// Everything in the stream that names a ConfigMap or Secret, by the id it names.
fn readers(
    parsed: &Parsed<Items>,
    rules: &Rules,
    default_namespace: &str,
) -> HashMap<ObjectId, Readers> {
    let mut readers: HashMap<ObjectId, Readers> = HashMap::new();
    for (doc, items) in parsed.values.iter().enumerate() {
        for item in items.iter().flatten() {
            match item {
                Item::Config(_) => {}
                Item::Referrer(r) => {
                    let ns = r.namespace.as_deref().unwrap_or(default_namespace);
                    for named in &r.named {
                        readers
                            .entry(ObjectId::new(named.kind, ns, &named.name))
                            .or_default()
                            .others
                            .push(format!(
                                "{} {} names it in {}",
                                r.kind,
                                qualified(ns, &r.name),
                                named.path
                            ));
                    }
                }
                Item::Workload(w) => {
                    let id = w.id(default_namespace);
                    let ns = id.namespace.as_str();
                    let is_job = w.kind == GroupKind::new("batch", "Job");
                    let whole_blocked = if w.hook.is_some() {
                        None
                    } else if is_job && !rules.include_jobs {
                        Some("its pod template is immutable (--include-jobs rewrites it)")
                    } else if w.directives.skip {
                        Some("it is opted out with reconfig/skip")
                    } else if w.anchors {
                        Some("its document uses YAML anchors, which reconfig does not rename in")
                    } else {
                        None
                    };
                    let declared = w
                        .directives
                        .declared
                        .iter()
                        .map(|d| (d, "reconfig/ annotation"))
                        .chain(
                            rules
                                .depends
                                .iter()
                                .filter(|d| d.name == w.name && w.kind.matches(&d.workload))
                                .flat_map(|d| &d.objects)
                                .map(|d| (d, "--depends")),
                        );
                    for ((kind, name), by) in declared {
                        readers
                            .entry(ObjectId::new(*kind, ns, name))
                            .or_default()
                            .others
                            .push(format!(
                                "{id} reads it through the API by its name (declared by {by})"
                            ));
                    }
                    for template in &w.templates {
                        for (kind, name) in &template.directives.declared {
                            readers
                                .entry(ObjectId::new(*kind, ns, name))
                                .or_default()
                                .others
                                .push(format!(
                                    "{id} {} reads it through the API by its name (declared by reconfig/ annotation)",
                                    template.path
                                ));
                        }
                        let excluded = |kind: ConfigKind, name: &str| {
                            w.directives
                                .exclude
                                .iter()
                                .chain(&template.directives.exclude)
                                .any(|(k, n)| *k == kind && n == name)
                        };
                        let included = |kind: ConfigKind, name: &str| {
                            w.directives
                                .include
                                .iter()
                                .chain(&template.directives.include)
                                .any(|(k, n)| *k == kind && n == name)
                        };
                        for r in &template.references {
                            let blocked = whole_blocked
                                .map(|why| format!("{id} {} uses it, and {why}", template.path))
                                .or_else(|| {
                                    template.directives.skip.then(|| {
                                        format!(
                                            "{id} {} uses it, and is opted out with reconfig/skip",
                                            template.path
                                        )
                                    })
                                })
                                .or_else(|| {
                                    r.name_at.is_none().then(|| {
                                        format!(
                                            "{id} {} names it ({}) in a way reconfig cannot rewrite (an alias, a tag or a block scalar)",
                                            template.path, r.via
                                        )
                                    })
                                });
                            let in_place = if excluded(r.kind, &r.name) {
                                Some("reconfig/exclude".to_string())
                            } else if rules.include_reloaded || included(r.kind, &r.name) {
                                None
                            } else {
                                r.reloaded_by.clone()
                            };
                            readers
                                .entry(ObjectId::new(r.kind, ns, &r.name))
                                .or_default()
                                .sites
                                .push(Site {
                                    doc,
                                    name_at: if blocked.is_none() {
                                        r.name_at.clone()
                                    } else {
                                        None
                                    },
                                    blocked,
                                    in_place,
                                });
                        }
                    }
                }
            }
        }
    }
    readers
}
