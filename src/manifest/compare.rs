//! Comparing two renders: which pod templates restart, and why.
//!
//! A pod template restarts when anything in it changes. The checksum `inject` writes covers
//! config: a key it reads changed, appeared or went away, or it started or stopped using an
//! object. Everything else (an image, an environment variable, a chart's own text hash such
//! as `checksum/cm`) is a template change, named from the templates' shapes. Each cause says
//! which of the two it is. This is the decision behind `reconfig plan`; the command only reads
//! the renders (or the cluster) and prints.

use std::collections::{BTreeMap, BTreeSet};

use super::analysis::Analysis;
use super::object::ObjectId;
use super::resolve::{Outcome, Skip, TemplateResolution, Used};
use super::shape::{describe, Sides, TemplateShape};
use super::workload::{WorkloadId, OWN_CHECKSUM};

/// What happens to one pod template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Restart,
    Keep,
    New,
    Removed,
    Untracked,
}

impl Verdict {
    /// The verdict's name in machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Restart => "restart",
            Verdict::Keep => "keep",
            Verdict::New => "new",
            Verdict::Removed => "removed",
            Verdict::Untracked => "untracked",
        }
    }
}

/// Whether a cause is config (what the checksum covers) or another change to the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CauseKind {
    Config,
    Template,
}

impl CauseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CauseKind::Config => "config",
            CauseKind::Template => "template",
        }
    }
}

/// One reason a pod template restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub kind: CauseKind,
    /// `ConfigMap app: a changed`, `container web image`, `annotation checksum/cm`.
    pub text: String,
}

impl Cause {
    fn config(text: String) -> Self {
        Cause {
            kind: CauseKind::Config,
            text,
        }
    }
}

/// One pod template's verdict, with the objects and keys behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub workload: WorkloadId,
    /// Dotted path of the pod template; empty when the whole workload was skipped.
    pub path: String,
    pub verdict: Verdict,
    /// Why it restarts: config causes first, then template ones.
    pub causes: Vec<Cause>,
    /// Why reconfig does not track it (a Helm hook, a Job), for `Untracked`.
    pub note: Option<String>,
}

impl Change {
    /// Whether config (rather than only other template changes) restarts it.
    pub fn for_config(&self) -> bool {
        self.causes.iter().any(|c| c.kind == CauseKind::Config)
    }
}

/// How to compare: where the old side came from, and the annotation `inject` writes.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub sides: Sides,
    /// The checksum annotation (`-a`): reconfig's value there is config, not a template change.
    pub annotation_key: &'a str,
}

/// Pairs up the pod templates of two renders and explains each difference.
pub fn compare(old: &Analysis<'_>, new: &Analysis<'_>, settings: Settings<'_>) -> Vec<Change> {
    let (old_templates, new_templates) = (templates(old), templates(new));
    let mut changes = Vec::new();
    for (key, after) in &new_templates {
        let (verdict, causes, note) = match old_templates.get(key) {
            // A hook is never rolled, and `helm get manifest` leaves hooks out: not new.
            None => match &after.outcome {
                Outcome::Skipped(skip @ Skip::Hook(_)) => {
                    (Verdict::Untracked, Vec::new(), Some(skip.to_string()))
                }
                _ => (Verdict::New, Vec::new(), None),
            },
            Some(before) => {
                let mut causes = config_causes(&before.outcome, &after.outcome, old, new);
                causes.extend(template_causes(old, before, new, after, settings));
                match (&after.outcome, causes.is_empty()) {
                    // Hooks run once and Jobs cannot change: nothing is rolled either way.
                    (Outcome::Skipped(skip @ (Skip::Hook(_) | Skip::Job)), _)
                    | (Outcome::Skipped(skip), true) => {
                        (Verdict::Untracked, Vec::new(), Some(skip.to_string()))
                    }
                    (_, true) => (Verdict::Keep, causes, None),
                    (_, false) => (Verdict::Restart, causes, None),
                }
            }
        };
        changes.push(Change {
            workload: key.workload.clone(),
            path: key.path.to_string(),
            verdict,
            causes,
            note,
        });
    }
    for key in old_templates.keys() {
        if !new_templates.contains_key(key) {
            changes.push(Change {
                workload: key.workload.clone(),
                path: key.path.to_string(),
                verdict: Verdict::Removed,
                causes: Vec::new(),
                note: None,
            });
        }
    }
    changes
}

/// What moved the checksum, if it moved.
fn config_causes(
    before: &Outcome,
    after: &Outcome,
    old: &Analysis<'_>,
    new: &Analysis<'_>,
) -> Vec<Cause> {
    let texts = match (before, after) {
        (Outcome::Skipped(_), Outcome::Skipped(_)) => Vec::new(),
        (Outcome::Annotate { uses, .. }, Outcome::Skipped(_)) => {
            vec![format!("stops using {}", names(uses))]
        }
        (Outcome::Skipped(_), Outcome::Annotate { uses, .. }) => {
            vec![format!("starts using {}", names(uses))]
        }
        (
            Outcome::Annotate {
                checksum: a,
                uses: old_uses,
            },
            Outcome::Annotate { checksum: b, uses },
        ) => {
            if a == b && !renamed(old_uses, uses, old, new) {
                Vec::new()
            } else {
                reasons(old_uses, uses, old, new)
            }
        }
    };
    texts.into_iter().map(Cause::config).collect()
}

/// Every other change to the pod template(s), named once each, in path order.
fn template_causes(
    old: &Analysis<'_>,
    before: &TemplateResolution,
    new: &Analysis<'_>,
    after: &TemplateResolution,
    settings: Settings<'_>,
) -> Vec<Cause> {
    let (old_templates, new_templates) = (old.templates_of(before), new.templates_of(after));
    let checksum = |t: &TemplateResolution| match &t.outcome {
        Outcome::Annotate { checksum, .. } => Some(checksum.clone()),
        Outcome::Skipped(_) => None,
    };
    let (old_sum, new_sum) = (checksum(before), checksum(after));
    let renames = version_renames(&before.outcome, &after.outcome, old, new);
    // The annotation key holds reconfig's checksum (config, compared above) or a chart's own
    // value (kept by inject, and a template change when it changes). It is on one side only
    // when one render went through inject and the other did not: reconfig's, then. On both
    // sides it is a chart's unless each side's value is that side's checksum.
    let ours = |shape: &TemplateShape, sum: &Option<String>, key: &str| {
        let path = ["metadata", "annotations", key];
        sum.as_deref().is_some_and(|s| shape.holds(&path, s))
    };
    let on_both = |old: &TemplateShape, new: &TemplateShape, key: &str| {
        let path = ["metadata", "annotations", key];
        old.has(&path) && new.has(&path)
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for t in &new_templates {
        let empty = TemplateShape::default();
        let was = old_templates
            .iter()
            .find(|o| o.path == t.path)
            .map_or(&empty, |o| &o.shape);
        for path in TemplateShape::changes(was, &t.shape, settings.sides) {
            if let ["metadata", "annotations", key] = path
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                if *key == OWN_CHECKSUM
                    || (*key == settings.annotation_key
                        && (!on_both(was, &t.shape, key)
                            || (ours(was, &old_sum, key) && ours(&t.shape, &new_sum, key))))
                {
                    continue;
                }
            }
            // A reference that now names another version of the same object is config, said
            // by the config causes (or, against an unversioned render, not a change at all).
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            if renames
                .iter()
                .any(|(from, to)| was.holds(&segments, from) && t.shape.holds(&segments, to))
            {
                continue;
            }
            let mut text = describe(&path);
            if new_templates.len() > 1 {
                text = format!("{} {text}", t.path);
            }
            if seen.insert(text.clone()) {
                out.push(Cause {
                    kind: CauseKind::Template,
                    text,
                });
            }
        }
    }
    out
}

/// A pod template's place in both renders; ordered as its text is, so output reads sorted.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct TemplateKey<'a> {
    label: String,
    path: &'a str,
    workload: &'a WorkloadId,
}

fn templates<'a>(analysis: &'a Analysis<'_>) -> BTreeMap<TemplateKey<'a>, &'a TemplateResolution> {
    analysis
        .resolution
        .templates
        .iter()
        .map(|t| {
            let key = TemplateKey {
                label: t.workload.to_string(),
                path: &t.path,
                workload: &t.workload,
            };
            (key, t)
        })
        .collect()
}

fn names(uses: &[Used]) -> String {
    uses.iter()
        .map(|u| u.object.kind_and_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The id an object is known by across versions: a versioned object (`app-1a2b3c4d5e`,
/// labelled `reconfig/versioned-from: app`) is `app`, so two versions are one object that
/// changed, not one removed and one added.
fn logical(analysis: &Analysis<'_>, id: &ObjectId) -> ObjectId {
    match analysis.object(id) {
        Some(object) => ObjectId::new(id.kind, &id.namespace, object.logical_name()),
        None => id.clone(),
    }
}

/// Whether a pod template names another version of an object it used before: its spec
/// changes, so it restarts, even when the keys it reads (and so its checksum) did not.
/// Only when both renders are versioned: a render that is not (`helm template` before the
/// post-renderer) says nothing about the name `inject --versioned` would give.
fn renamed(old_uses: &[Used], uses: &[Used], old: &Analysis<'_>, new: &Analysis<'_>) -> bool {
    uses.iter().any(|u| {
        let same = logical(new, &u.object);
        old_uses.iter().any(|o| {
            o.object.name != u.object.name
                && logical(old, &o.object) == same
                && versioned(old, &o.object)
                && versioned(new, &u.object)
        })
    })
}

/// The names a pod template's references change from and to where both name one object: two
/// versions of it, or a version and its plain name (one render versioned, the other not). The
/// name change is not a template change of its own: it is config when both renders are
/// versioned ([`renamed`]), and says nothing about the upgrade when only one is.
fn version_renames(
    before: &Outcome,
    after: &Outcome,
    old: &Analysis<'_>,
    new: &Analysis<'_>,
) -> Vec<(String, String)> {
    let (Outcome::Annotate { uses: old_uses, .. }, Outcome::Annotate { uses, .. }) =
        (before, after)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for u in uses {
        let same = logical(new, &u.object);
        for o in old_uses {
            if o.object.name != u.object.name
                && logical(old, &o.object) == same
                && (versioned(old, &o.object) || versioned(new, &u.object))
            {
                out.push((o.object.name.clone(), u.object.name.clone()));
            }
        }
    }
    out
}

fn versioned(analysis: &Analysis<'_>, id: &ObjectId) -> bool {
    analysis
        .object(id)
        .is_some_and(|o| o.versioned_from().is_some())
}

/// Which objects and keys moved a checksum.
fn reasons(
    old_uses: &[Used],
    uses: &[Used],
    old: &Analysis<'_>,
    new: &Analysis<'_>,
) -> Vec<String> {
    let mut out = Vec::new();
    for u in uses {
        let same = logical(new, &u.object);
        let old_use = old_uses.iter().find(|o| logical(old, &o.object) == same);
        let was_used = old_use.is_some();
        let old_id = old_use.map_or(&u.object, |o| &o.object);
        let label = if old_id.name == u.object.name {
            u.object.kind_and_name()
        } else {
            format!(
                "{} {} ({} → {})",
                u.object.kind, same.name, old_id.name, u.object.name
            )
        };
        let (Some(before), Some(after)) = (old.object(old_id), new.object(&u.object)) else {
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
        } else if old_id.name != u.object.name
            && versioned(old, old_id)
            && versioned(new, &u.object)
        {
            out.push(format!(
                "{label}: it names the new version, though no key it reads changed"
            ));
        }
    }
    for o in old_uses {
        let same = logical(old, &o.object);
        if !uses.iter().any(|u| logical(new, &u.object) == same) {
            out.push(format!("stops using {}", o.object.kind_and_name()));
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
    use crate::manifest::manifests::Manifests;
    use crate::manifest::{analyze, Options};

    /// The ConfigMap `app` with these keys.
    fn app_config(data: &[(&str, &str)]) -> Manifests {
        data.iter().fold(
            Manifests::new().config_map("app"),
            |config, (key, value)| config.data(key, value),
        )
    }

    fn options() -> Options {
        Options {
            template_shapes: true,
            ..Options::default()
        }
    }

    fn plan(old: &Manifests, new: &Manifests) -> Vec<(String, Verdict, Vec<String>)> {
        let options = options();
        let (old, new) = (old.render(), new.render());
        let (a, b) = (
            analyze(&old, &options).expect("old"),
            analyze(&new, &options).expect("new"),
        );
        let settings = Settings {
            sides: Sides::Renders,
            annotation_key: crate::manifest::DEFAULT_ANNOTATION,
        };
        compare(&a, &b, settings)
            .into_iter()
            .map(|c| {
                let mut why: Vec<String> = c
                    .causes
                    .iter()
                    .map(|k| match k.kind {
                        CauseKind::Config => k.text.clone(),
                        CauseKind::Template => format!("template: {}", k.text),
                    })
                    .collect();
                why.extend(c.note);
                (c.workload.to_string(), c.verdict, why)
            })
            .collect()
    }

    #[test]
    fn names_the_keys_behind_each_restart() {
        let workloads = Manifests::new()
            .deployment("whole")
            .mounts_config_map("app")
            .deployment("key-a")
            .env_config_map_key("A", "app", "a")
            .deployment("plain");
        let old = app_config(&[("a", "one"), ("b", "two")]).append(workloads.clone());
        let new = app_config(&[("a", "one"), ("b", "2"), ("c", "three")]).append(workloads);
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

    fn settings() -> Settings<'static> {
        Settings {
            sides: Sides::Renders,
            annotation_key: crate::manifest::DEFAULT_ANNOTATION,
        }
    }

    fn changes(old: &str, new: &str) -> Vec<Change> {
        let options = options();
        let (a, b) = (
            analyze(old, &options).expect("old"),
            analyze(new, &options).expect("new"),
        );
        compare(&a, &b, settings())
    }

    fn template(kind: CauseKind, text: &str) -> Cause {
        Cause {
            kind,
            text: text.to_string(),
        }
    }

    #[test]
    fn every_template_change_restarts_and_says_it_is_not_config() {
        let stream_with = |image: &str, hash: &str, a: &str| {
            app_config(&[("a", a)])
                .append(
                    Manifests::new()
                        .deployment("web")
                        .mounts_config_map("app")
                        .template_annotation("checksum/cm", hash)
                        .deployment("plain"),
                )
                .render()
                .replace("image: app:1", &format!("image: {image}"))
        };
        let stream = |image: &str, hash: &str| stream_with(image, hash, "one");
        let same = changes(&stream("app:1", "x"), &stream("app:1", "x"));
        assert!(same.iter().all(|c| c.causes.is_empty()), "{same:?}");
        let changed = changes(&stream("app:1", "x"), &stream("app:2", "y"));
        assert_eq!(changed[0].workload.name, "plain");
        assert_eq!(changed[0].verdict, Verdict::Restart);
        assert_eq!(
            changed[0].causes,
            vec![template(CauseKind::Template, "container app image")]
        );
        assert_eq!(changed[1].verdict, Verdict::Restart);
        assert_eq!(
            changed[1].causes,
            vec![
                template(CauseKind::Template, "annotation checksum/cm"),
                template(CauseKind::Template, "container app image"),
            ]
        );
        assert!(!changed.iter().any(Change::for_config));
        // Config and template together: config first, each saying which it is.
        let both = changes(&stream("app:1", "x"), &stream_with("app:1", "y", "two"));
        assert_eq!(
            both[1].causes,
            vec![
                template(CauseKind::Config, "ConfigMap app: a changed"),
                template(CauseKind::Template, "annotation checksum/cm"),
            ]
        );
        assert!(both[1].for_config());
    }

    /// inject's own value under the annotation key is config, compared by checksum; a
    /// chart's own value there is a template change.
    #[test]
    fn the_checksum_annotation_is_config_unless_a_chart_wrote_it() {
        let stream = |chart_hash: Option<&str>| {
            let w = Manifests::new().deployment("web").mounts_config_map("app");
            let w = match chart_hash {
                Some(h) => w.template_annotation("checksum/config", h),
                None => w,
            };
            app_config(&[("a", "one")]).append(w).render()
        };
        let plain = stream(None);
        let annotated = {
            let a = analyze(&plain, &options()).expect("plain");
            let mut out = Vec::new();
            a.write_to(&mut out).expect("write");
            String::from_utf8(out).expect("utf8")
        };
        assert!(annotated.contains("checksum/config"), "{annotated}");
        // Injected (helm get manifest) against plain (helm template): no change either way.
        assert_eq!(changes(&annotated, &plain)[0].verdict, Verdict::Keep);
        assert_eq!(changes(&plain, &annotated)[0].verdict, Verdict::Keep);
        // A chart's own checksum/config that changes restarts, as a template change.
        let changed = changes(&stream(Some("aaa")), &stream(Some("bbb")));
        assert_eq!(changed[0].verdict, Verdict::Restart);
        assert_eq!(
            changed[0].causes,
            vec![template(CauseKind::Template, "annotation checksum/config")]
        );
    }

    #[test]
    fn a_hook_only_the_new_render_has_is_untracked_not_new() {
        let hook = Manifests::new()
            .workload("batch/v1", "Job", "migrate")
            .annotation("helm.sh/hook", "pre-upgrade")
            .mounts_config_map("app");
        let old = app_config(&[("a", "one")]);
        let got = plan(&old, &old.clone().append(hook));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, Verdict::Untracked, "{got:?}");
        assert_eq!(
            got[0].2,
            vec!["Helm hook (pre-upgrade): hooks are not rolled".to_string()]
        );
    }

    #[test]
    fn two_versions_of_an_object_are_one_object_that_changed() {
        use crate::manifest::version::{Mode, Versioning};
        let versioned = |config: Manifests| {
            let yaml = config
                .deployment("whole")
                .mounts_config_map("app")
                .deployment("key-a")
                .env_config_map_key("A", "app", "a")
                .render();
            let options = Options {
                versioning: Versioning {
                    mode: Mode::All,
                    keep: true,
                },
                ..Options::default()
            };
            let analysis = analyze(&yaml, &options).expect("valid");
            let mut out = Vec::new();
            analysis.write_to(&mut out).expect("write");
            String::from_utf8(out).expect("utf8")
        };
        let old = versioned(app_config(&[("a", "one"), ("b", "two")]));
        let new = versioned(app_config(&[("a", "one"), ("b", "2")]));
        let name = |yaml: &str| {
            yaml.lines()
                .find_map(|l| l.strip_prefix("  name: app-"))
                .map(|hash| format!("app-{hash}"))
                .expect("versioned")
        };
        let (old_name, new_name) = (name(&old), name(&new));
        assert_ne!(old_name, new_name);
        // The volume's and the env's reference name changed in the template too: that is this
        // config change, not a template change of its own.
        let summary = |old: &str, new: &str| -> Vec<(String, Verdict, Vec<Cause>)> {
            changes(old, new)
                .into_iter()
                .map(|c| (c.workload.to_string(), c.verdict, c.causes))
                .collect()
        };
        assert_eq!(
            summary(&old, &new),
            vec![
                (
                    "Deployment key-a".into(),
                    Verdict::Restart,
                    vec![template(CauseKind::Config, &format!(
                        "ConfigMap app ({old_name} → {new_name}): it names the new version, though no key it reads changed"
                    ))]
                ),
                (
                    "Deployment whole".into(),
                    Verdict::Restart,
                    vec![template(
                        CauseKind::Config,
                        &format!("ConfigMap app ({old_name} → {new_name}): b changed")
                    )]
                ),
            ]
        );
        // Against a render that is not versioned (before the post-renderer) only the data
        // counts: the plain name says nothing about the version the upgrade would name.
        let plain = |config: Manifests| {
            config
                .deployment("whole")
                .mounts_config_map("app")
                .deployment("key-a")
                .env_config_map_key("A", "app", "a")
                .render()
        };
        let plain_new = plain(app_config(&[("a", "one"), ("b", "2")]));
        assert_eq!(
            summary(&old, &plain_new),
            vec![
                ("Deployment key-a".into(), Verdict::Keep, vec![]),
                (
                    "Deployment whole".into(),
                    Verdict::Restart,
                    vec![template(
                        CauseKind::Config,
                        &format!("ConfigMap app ({old_name} → app): b changed")
                    )]
                ),
            ]
        );
        let plain_old = plain(app_config(&[("a", "one"), ("b", "two")]));
        assert!(
            summary(&plain_old, &old)
                .iter()
                .all(|(_, verdict, causes)| *verdict == Verdict::Keep && causes.is_empty()),
            "{:?}",
            summary(&plain_old, &old)
        );
        // A template change beside a new version is still named, as a template change.
        let new_image = new.replace("image: app:1", "image: app:2");
        assert_ne!(new_image, new);
        let both = summary(&old, &new_image);
        assert_eq!(
            both[1].2,
            vec![
                template(
                    CauseKind::Config,
                    &format!("ConfigMap app ({old_name} → {new_name}): b changed")
                ),
                template(CauseKind::Template, "container app image"),
            ]
        );
    }

    #[test]
    fn new_removed_and_objects_coming_and_going() {
        let config = || app_config(&[("a", "one"), ("b", "two")]);
        let uses = Manifests::new().deployment("w").mounts_config_map("app");
        let extra = Manifests::new().deployment("x");
        let no_cm = plan(&uses, &config().append(uses.clone()));
        assert_eq!(no_cm[0].1, Verdict::Restart);
        assert_eq!(no_cm[0].2, vec!["starts using ConfigMap app".to_string()]);
        let gone = plan(&config().append(uses.clone()).append(extra.clone()), &uses);
        assert_eq!(gone[0].2, vec!["stops using ConfigMap app".to_string()]);
        assert_eq!(gone[1].1, Verdict::Removed);
        assert_eq!(plan(&uses, &uses.clone().append(extra))[1].1, Verdict::New);
    }
}
