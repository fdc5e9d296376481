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
            // A search of the whole stream before anything runs in parallel: memchr's, which
            // is several times `str::contains`'s speed.
            Mode::Annotated => {
                memchr::memmem::find(text.as_bytes(), VERSIONED.as_bytes()).is_some()
            }
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
    /// The name it is versioned from (its label `reconfig/versioned-from`).
    pub from: String,
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
    // Slots are read only from a stream that may version something: without any, there is
    // nothing to decide, and the map of readers (as large as the stream's references) is
    // not built.
    let has_slots = || {
        parsed
            .values
            .iter()
            .flatten()
            .flatten()
            .any(|item| matches!(item, Item::Config(object) if object.rename().is_some()))
    };
    if versioning.mode == Mode::Off || !has_slots() {
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
            let Some(slots) = object.rename() else {
                continue;
            };
            // An old version `--carry` copied from the cluster stays exactly as it is there.
            if object.carried() {
                continue;
            }
            let location = parsed.docs[doc].at(slots.pos);
            let found = readers.get(&id).unwrap_or(&none);
            let asked = object.versioned_from().is_some() || object.versioned() == Some(true);
            // An object the app reloads in place keeps its name unless asked: a new name
            // would restart the pods on every change.
            let selected = asked
                || (versioning.mode == Mode::All
                    && object.versioned() != Some(false)
                    && !found.sites.is_empty()
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
                        if *object.name != *new_name {
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
                    if asked && object.versioned_from().is_none() && found.sites.is_empty() {
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
                        from: object.logical_name().to_string(),
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
    if *object.name != *new_name {
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
pub fn with_prune_false(existing: Option<&str>) -> String {
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
                // Released only when nothing versions objects (see `analyze_with`).
                Item::Config(_) | Item::Released => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::manifests::Manifests;
    use crate::manifest::{analyze, Options};

    fn options(mode: Mode, keep: bool) -> Options {
        Options {
            versioning: Versioning { mode, keep },
            ..Options::default()
        }
    }

    /// The stream after inject, with the warnings and errors of versioning.
    fn run(yaml: &str, options: &Options) -> (String, Vec<String>, Vec<String>) {
        let analysis = analyze(yaml, options).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let mut out = Vec::new();
        analysis.write_to(&mut out).expect("write");
        let out = String::from_utf8(out).expect("utf8");
        let messages = |d: &[Diagnostic]| d.iter().map(|d| d.message.clone()).collect();
        (
            out,
            messages(&analysis.versions.warnings),
            messages(&analysis.versions.errors),
        )
    }

    fn all(yaml: &str) -> (String, Vec<String>) {
        let (out, warnings, errors) = run(yaml, &options(Mode::All, false));
        assert!(errors.is_empty(), "{errors:?}");
        (out, warnings)
    }

    /// The versioned name of the ConfigMap `app` with `a: one`.
    fn app_name() -> String {
        let (out, _) = all(&Manifests::new()
            .config_map("app")
            .data("a", "one")
            .deployment("w")
            .mounts_config_map("app")
            .render());
        let analysis = analyze(&out, &Options::default()).expect("output parses");
        analysis.versions.renamed.len(); // nothing versioned without the mode
        out.lines()
            .find_map(|l| l.trim().strip_prefix("name: app-"))
            .map(|hash| format!("app-{hash}"))
            .expect("renamed")
    }

    fn app() -> Manifests {
        Manifests::new().config_map("app").data("a", "one")
    }

    /// Names of the ConfigMaps and Secrets every pod template of `yaml` references.
    fn referenced(yaml: &str, options: &Options) -> Vec<String> {
        let options = Options {
            keep_workloads: true,
            ..options.clone()
        };
        let analysis = analyze(yaml, &options).expect("valid");
        let mut names: Vec<String> = analysis
            .parsed
            .values
            .iter()
            .flatten()
            .flatten()
            .filter_map(|item| match item {
                Item::Workload(w) => Some(w),
                _ => None,
            })
            .flat_map(|w| &w.templates)
            .flat_map(|t| &t.references)
            .map(|r| format!("{} {}", r.kind, r.name))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn the_name_is_the_logical_name_and_ten_digits_of_the_data_checksum() {
        let config = app();
        let yaml = config.render();
        let analysis = analyze(&yaml, &Options::default()).expect("valid");
        let object = analysis
            .object(&ObjectId::new(ConfigKind::ConfigMap, "", "app"))
            .expect("app");
        let sum = data_checksum(object);
        // Pinned: the name is a public contract, like the checksum. Computed apart, in Python:
        // sha256(b"reconfig-checksum-v1\n" + frame(b"ConfigMap") + frame(b"app") + u64be(1)
        //        + frame(b"a") + b"\x01" + sha256(b"one"))
        assert_eq!(
            sum,
            "17663cfc75fbd4943a03c695b50bdbf4addb4e4c782e5637bba1218669e8238c"
        );
        assert_eq!(app_name(), format!("app-{}", &sum[..HASH_LEN]));
    }

    #[test]
    fn every_reference_form_is_rewritten() {
        let yaml = app()
            .secret("creds")
            .string_data("pass", "hunter2")
            .raw(
                "---
apiVersion: apps/v1
kind: Deployment
metadata: {name: w}
spec:
  template:
    spec:
      initContainers:
        - name: init
          envFrom: [{configMapRef: {name: app}}]
      containers:
        - name: main
          env:
            - name: A
              valueFrom: {configMapKeyRef: {name: app, key: a}}
            - name: P
              valueFrom:
                secretKeyRef:
                  name: \"creds\"
                  key: pass
          envFrom:
            - secretRef: {name: 'creds'}
      ephemeralContainers:
        - name: debug
          env: [{name: B, valueFrom: {configMapKeyRef: {name: app, key: a}}}]
      volumes:
        - name: v
          configMap: {name: app}
        - name: s
          secret: {secretName: creds, items: [{key: pass, path: p}]}
        - name: p
          projected:
            sources:
              - configMap: {name: app}
              - secret: {name: creds}
",
            )
            .render();
        let (out, warnings) = all(&yaml);
        assert!(warnings.is_empty(), "{warnings:?}");
        let app = app_name();
        let names = referenced(&out, &Options::default());
        assert_eq!(names.len(), 2, "{out}");
        assert_eq!(names[0], format!("ConfigMap {app}"));
        assert!(names[1].starts_with("Secret creds-"), "{names:?}");
        // Quotes stay as they were written.
        assert!(out.contains("name: \"creds-"), "{out}");
        assert!(out.contains("secretRef: {name: 'creds-"), "{out}");
        // Only name lines and added lines differ.
        let added = |l: &&str| {
            !(l.contains("immutable: true")
                || l.contains("reconfig/")
                || l.contains("checksum/config")
                || ["metadata:", "labels:", "annotations:"].contains(&l.trim()))
        };
        let changed: Vec<(&str, &str)> = yaml
            .lines()
            .filter(added)
            .zip(out.lines().filter(added))
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(
            yaml.lines().filter(added).count(),
            out.lines().filter(added).count()
        );
        assert_eq!(changed.len(), 11, "{changed:#?}");
        assert!(changed
            .iter()
            .all(|(a, b)| a.replace("app", "").replace("creds", "")
                == b.replace(&app, "")
                    .split("creds-")
                    .map(|s| s.trim_start_matches(|c: char| c.is_ascii_hexdigit()))
                    .collect::<String>()));
        // Running it again changes nothing.
        assert_eq!(all(&out).0, out);
    }

    #[test]
    fn every_workload_kind_is_rewritten() {
        let cases = [
            ("apps/v1", "Deployment", "spec.template"),
            ("apps/v1", "StatefulSet", "spec.template"),
            ("apps/v1", "DaemonSet", "spec.template"),
            ("apps/v1", "ReplicaSet", "spec.template"),
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
                "UnitedDeployment",
                "spec.template.cloneSetTemplate.spec.template",
            ),
            ("serving.knative.dev/v1", "Service", "spec.template"),
        ];
        let app_name = app_name();
        for (api, kind, path) in cases {
            let yaml = app()
                .workload(api, kind, "w")
                .template_at(path)
                .mounts_config_map("app")
                .render();
            let (out, warnings) = all(&yaml);
            assert!(warnings.is_empty(), "{kind}: {warnings:?}");
            assert_eq!(
                referenced(&out, &Options::default()),
                vec![format!("ConfigMap {app_name}")],
                "{kind} {path}:\n{out}"
            );
            assert_eq!(all(&out).0, out, "{kind}: not idempotent");
        }
        // A Rollout with a workloadRef: the Deployment it names is rewritten.
        let yaml = app()
            .object("argoproj.io/v1alpha1", "Rollout", "r")
            .spec(
                "workloadRef",
                "{apiVersion: apps/v1, kind: Deployment, name: w}",
            )
            .deployment("w")
            .mounts_config_map("app")
            .render();
        let (out, warnings) = all(&yaml);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            referenced(&out, &Options::default()),
            vec![format!("ConfigMap {app_name}")]
        );
    }

    #[test]
    fn the_object_gets_immutable_the_label_and_the_annotations() {
        let yaml = app()
            .label("app.kubernetes.io/name", "x")
            .annotation(ARGOCD_SYNC_OPTIONS, "Replace=true,Prune=true")
            .deployment("w")
            .mounts_config_map("app")
            .render();
        let (out, warnings, errors) = run(&yaml, &options(Mode::All, true));
        assert!(warnings.is_empty() && errors.is_empty());
        let analysis = analyze(&out, &Options::default()).expect("output parses");
        let name = app_name();
        let object = analysis
            .object(&ObjectId::new(ConfigKind::ConfigMap, "", &name))
            .expect("renamed");
        assert_eq!(object.versioned_from(), Some("app"));
        let doc = out
            .split("---\n")
            .find(|d| d.contains("kind: ConfigMap"))
            .expect("config map");
        let sum = data_checksum(object);
        for line in [
            "immutable: true".to_string(),
            "    app.kubernetes.io/name: \"x\"".to_string(),
            "    reconfig/versioned-from: \"app\"".to_string(),
            format!("    {DATA_CHECKSUM}: \"{sum}\""),
            format!("    {HELM_RESOURCE_POLICY}: \"keep\""),
            format!("    {ARGOCD_SYNC_OPTIONS}: \"Replace=true,Prune=false\""),
            format!("  name: {name}"),
        ] {
            assert!(doc.lines().any(|l| l == line), "{line:?} in\n{doc}");
        }
        // The workload's checksum is the one it had without versioning.
        let checksum = |yaml: &str| match &analyze(yaml, &Options::default())
            .expect("valid")
            .resolution
            .templates[0]
            .outcome
        {
            crate::manifest::resolve::Outcome::Annotate { checksum, .. } => checksum.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(checksum(&yaml), checksum(&out));
    }

    #[test]
    fn objects_something_else_names_keep_their_names() {
        let ingress = "---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  tls: [{hosts: [x], secretName: tls}]
";
        let account = "---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa}
secrets: [{name: token}]
imagePullSecrets: [{name: pull}]
";
        let pod = "---
apiVersion: v1
kind: Pod
metadata: {name: bare}
spec:
  containers: [{name: c, envFrom: [{configMapRef: {name: for-pod}}]}]
";
        let yaml = Manifests::new()
            .secret("tls")
            .secret("token")
            .secret("pull")
            .secret("image-pull")
            .config_map("declared")
            .config_map("depended")
            .config_map("for-job")
            .config_map("for-skipped")
            .config_map("for-pod")
            .config_map("for-hook")
            .raw(ingress)
            .raw(account)
            .raw(pod)
            .raw(
                "---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {reconfig/configmaps: declared}
spec:
  template:
    spec:
      imagePullSecrets: [{name: image-pull}]
      containers: [{name: c, image: x}]
      volumes:
        - {name: a, secret: {secretName: tls}}
        - {name: b, secret: {secretName: token}}
        - {name: c, secret: {secretName: pull}}
        - {name: d, secret: {secretName: image-pull}}
        - {name: e, configMap: {name: declared}}
        - {name: f, configMap: {name: depended}}
        - {name: g, configMap: {name: for-pod}}
",
            )
            .workload("batch/v1", "Job", "job")
            .mounts_config_map("for-job")
            .deployment("skipped")
            .annotation("reconfig/skip", "true")
            .mounts_config_map("for-skipped")
            .workload("batch/v1", "Job", "hook")
            .annotation("helm.sh/hook", "pre-upgrade")
            .mounts_config_map("for-hook")
            .render();
        let options = Options {
            rules: Rules {
                depends: vec!["deployment/web=configmap/depended".parse().expect("depend")],
                ..Rules::default()
            },
            ..options(Mode::All, false)
        };
        let (out, warnings, _) = run(&yaml, &options);
        let expected = [
            ("Secret tls", "Ingress web names it in spec.tls[0].secretName"),
            ("Secret token", "ServiceAccount sa names it in secrets[0].name"),
            ("Secret pull", "ServiceAccount sa names it in imagePullSecrets[0].name"),
            (
                "Secret image-pull",
                "Deployment web names it in spec.template.spec.imagePullSecrets[0].name",
            ),
            (
                "ConfigMap declared",
                "Deployment web reads it through the API by its name (declared by reconfig/ annotation)",
            ),
            (
                "ConfigMap depended",
                "Deployment web reads it through the API by its name (declared by --depends)",
            ),
            (
                "ConfigMap for-job",
                "Job job spec.template uses it, and its pod template is immutable (--include-jobs rewrites it)",
            ),
            (
                "ConfigMap for-skipped",
                "Deployment skipped spec.template uses it, and it is opted out with reconfig/skip",
            ),
            ("ConfigMap for-pod", "Pod bare names it in spec.containers[0].envFrom[0].configMapRef.name"),
        ];
        for (object, why) in expected {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with(&format!("{object} is not versioned: {why}"))),
                "{object}: {why}\n{warnings:#?}"
            );
        }
        assert_eq!(warnings.len(), expected.len(), "{warnings:#?}");
        // Only the hook's ConfigMap is renamed: a hook is created anew each time.
        let analysis = analyze(&out, &Options::default()).expect("valid");
        assert_eq!(
            referenced(&out, &Options::default())
                .iter()
                .filter(|n| n.starts_with("ConfigMap for-hook-"))
                .count(),
            1
        );
        assert_eq!(
            analysis
                .parsed
                .values
                .iter()
                .flatten()
                .flatten()
                .filter(|i| matches!(i, Item::Config(o) if o.versioned_from().is_some()))
                .count(),
            1
        );
        // With --include-jobs the Job's template is rewritten too.
        let options = Options {
            rules: Rules {
                include_jobs: true,
                ..options.rules.clone()
            },
            ..options
        };
        let (_, warnings, _) = run(&yaml, &options);
        assert!(!warnings.iter().any(|w| w.contains("for-job")));
    }

    #[test]
    fn modes_annotations_and_opt_outs() {
        let yaml = app()
            .config_map("marked")
            .annotation(VERSIONED, "true")
            .data("k", "v")
            .config_map("unmarked")
            .annotation(VERSIONED, "false")
            .data("k", "v")
            .deployment("w")
            .mounts_config_map("app")
            .mounts_config_map("marked")
            .mounts_config_map("unmarked")
            .render();
        let names = |mode| {
            let (out, _, _) = run(&yaml, &options(mode, false));
            referenced(&out, &Options::default())
                .into_iter()
                .map(|n| n.split('-').next().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let renamed = |mode| {
            let (out, _, _) = run(&yaml, &options(mode, false));
            analyze(&out, &Options::default())
                .expect("valid")
                .parsed
                .values
                .iter()
                .flatten()
                .flatten()
                .filter_map(|i| match i {
                    Item::Config(o) => o.versioned_from().map(str::to_string),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(renamed(Mode::Off), Vec::<String>::new());
        assert_eq!(renamed(Mode::Annotated), vec!["marked"]);
        assert_eq!(renamed(Mode::All), vec!["app", "marked"]);
        assert_eq!(
            names(Mode::Off),
            "ConfigMap app ConfigMap marked ConfigMap unmarked"
        );
        // Without the flag, a stream that never mentions the annotation is not read further.
        assert!(!Versioning {
            mode: Mode::Annotated,
            keep: false
        }
        .may_apply("kind: ConfigMap"));
    }

    #[test]
    fn a_carried_old_version_is_left_exactly_as_it_is() {
        // Its name does not match its data (hashed elsewhere), it lacks the checksum
        // annotation, and a template names it: still nothing of it changes.
        let carried = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-0000000000\n  labels:\n    reconfig/versioned-from: app\n  annotations:\n    reconfig/carried: \"true\"\nimmutable: true\ndata:\n  a: old\n";
        let yaml = format!(
            "{}{carried}",
            app()
                .deployment("w")
                .mounts_config_map("app")
                .deployment("old")
                .mounts_config_map("app-0000000000")
                .render()
        );
        let (out, warnings, errors) = run(&yaml, &options(Mode::All, true));
        assert!(
            errors.is_empty() && warnings.is_empty(),
            "{errors:?} {warnings:?}"
        );
        assert!(out.ends_with(carried), "{out}");
        let analysis = analyze(&yaml, &options(Mode::All, true)).expect("valid");
        let renamed: Vec<&str> = analysis
            .versions
            .renamed
            .iter()
            .map(|r| r.from.as_str())
            .collect();
        assert_eq!(renamed, ["app"]);
        assert!(
            referenced(&out, &Options::default()).contains(&"ConfigMap app-0000000000".to_string())
        );
    }

    #[test]
    fn volumes_reloaded_in_place_and_other_namespaces() {
        let yaml = app()
            .namespace("a")
            .deployment("w")
            .namespace("b")
            .mounts_config_map("app")
            .render();
        let (out, warnings) = all(&yaml);
        assert_eq!(out, yaml, "a reference from another namespace is not a use");
        assert!(warnings.is_empty());

        let yaml = app()
            .deployment("w")
            .mounts_config_map("app")
            .template_annotation("reconfig/exclude", "configmap/app")
            .render();
        assert_eq!(all(&yaml).0, yaml, "an app that hot-reloads keeps the name");
    }

    #[test]
    fn anchors_and_unusual_names_are_left_alone_with_a_warning() {
        let yaml = app()
            .raw(
                "---
apiVersion: apps/v1
kind: Deployment
metadata: {name: w}
spec:
  template:
    metadata:
      labels: &labels {app: w}
    spec:
      containers: [{name: c}]
      volumes: [{name: v, configMap: {name: app}}]
",
            )
            .render();
        let (out, warnings) = all(&yaml);
        assert_eq!(out.matches("app-").count(), 0, "{out}");
        assert!(warnings[0].contains("YAML anchors"), "{warnings:?}");
    }

    #[test]
    fn names_the_api_server_would_refuse_are_errors() {
        let long = "a".repeat(64);
        let yaml = Manifests::new()
            .config_map(&long)
            .data("k", "v")
            .deployment("w")
            .mounts_config_map(&long)
            .render();
        let (_, _, errors) = run(&yaml, &options(Mode::All, false));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("64 characters, over the 63 a label value may have"),
            "{errors:?}"
        );
        let fits = "a".repeat(63);
        let yaml = yaml.replace(&long, &fits);
        let (out, _, errors) = run(&yaml, &options(Mode::All, false));
        assert!(errors.is_empty());
        assert!(out.contains(&format!("name: {fits}-")));
    }

    #[test]
    fn objects_in_a_list_are_versioned_in_place() {
        let yaml = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: app\n  data:\n    a: one\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: w\n  spec:\n    template:\n      spec:\n        volumes:\n        - name: v\n          configMap:\n            name: app\n";
        let (out, warnings) = all(yaml);
        assert!(warnings.is_empty(), "{warnings:?}");
        let name = app_name();
        assert!(
            out.contains("- apiVersion: v1\n  immutable: true\n  kind: ConfigMap\n"),
            "{out}"
        );
        assert!(out.contains(&format!("    name: {name}\n")), "{out}");
        assert!(
            out.contains(&format!("            name: {name}\n")),
            "{out}"
        );
        assert_eq!(all(&out).0, out);
    }

    #[test]
    fn flow_style_and_json_documents() {
        let yaml = "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"app\"}, \"data\": {\"a\": \"one\"}}\n---\n{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": \"w\"}, \"spec\": {\"template\": {\"spec\": {\"volumes\": [{\"name\": \"v\", \"configMap\": {\"name\": \"app\"}}]}}}}\n";
        let (out, warnings, errors) = run(yaml, &options(Mode::All, true));
        assert!(warnings.is_empty() && errors.is_empty(), "{warnings:?}");
        for doc in out.split("---\n") {
            let value: serde_json::Value =
                serde_json::from_str(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
            if value["kind"] == "ConfigMap" {
                assert_eq!(value["immutable"], true);
                assert_eq!(value["metadata"]["labels"][VERSIONED_FROM], "app");
                assert_eq!(
                    value["metadata"]["annotations"][HELM_RESOURCE_POLICY],
                    "keep"
                );
                assert_eq!(value["metadata"]["name"], app_name());
            } else {
                assert_eq!(
                    value["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
                    app_name()
                );
            }
        }
        assert_eq!(run(&out, &options(Mode::All, true)).0, out);
    }
}
