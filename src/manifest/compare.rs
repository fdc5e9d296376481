//! Comparing two renders: which pod templates a config change restarts, and why.
//!
//! A pod template restarts when the checksum `inject` writes for it changes: a key it
//! reads changed, appeared or went away, or it started or stopped using an object. This
//! is the decision behind `reconfig plan`; the command only reads the renders and prints.

use std::collections::{BTreeMap, BTreeSet};

use super::analysis::Analysis;
use super::object::ObjectId;
use super::resolve::{Outcome, Used};
use super::workload::WorkloadId;

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

/// One pod template's verdict, with the objects and keys behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub workload: WorkloadId,
    /// Dotted path of the pod template; empty when the whole workload was skipped.
    pub path: String,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

/// Pairs up the pod templates of two renders and explains each difference.
pub fn compare(old: &Analysis<'_>, new: &Analysis<'_>) -> Vec<Change> {
    let (old_templates, new_templates) = (templates(old), templates(new));
    let mut changes = Vec::new();
    for (key, outcome) in &new_templates {
        let before = old_templates.get(key);
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
                if a == b && !renamed(old_uses, uses, old, new) {
                    (Verdict::Keep, Vec::new())
                } else {
                    (Verdict::Restart, reasons(old_uses, uses, old, new))
                }
            }
        };
        changes.push(Change {
            workload: key.workload.clone(),
            path: key.path.to_string(),
            verdict,
            reasons,
        });
    }
    for key in old_templates.keys() {
        if !new_templates.contains_key(key) {
            changes.push(Change {
                workload: key.workload.clone(),
                path: key.path.to_string(),
                verdict: Verdict::Removed,
                reasons: Vec::new(),
            });
        }
    }
    changes
}

/// A pod template's place in both renders; ordered as its text is, so output reads sorted.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct TemplateKey<'a> {
    label: String,
    path: &'a str,
    workload: &'a WorkloadId,
}

fn templates<'a>(analysis: &'a Analysis<'_>) -> BTreeMap<TemplateKey<'a>, &'a Outcome> {
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
            (key, &t.outcome)
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

fn versioned(analysis: &Analysis<'_>, id: &ObjectId) -> bool {
    analysis
        .object(id)
        .is_some_and(|o| o.versioned_from.is_some())
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

    fn plan(old: &Manifests, new: &Manifests) -> Vec<(String, Verdict, Vec<String>)> {
        let options = Options::default();
        let (old, new) = (old.render(), new.render());
        let (a, b) = (
            analyze(&old, &options).expect("old"),
            analyze(&new, &options).expect("new"),
        );
        compare(&a, &b)
            .into_iter()
            .map(|c| (c.workload.to_string(), c.verdict, c.reasons))
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
        let options = Options::default();
        let (a, b) = (
            analyze(&old, &options).expect("old"),
            analyze(&new, &options).expect("new"),
        );
        let changes: Vec<(String, Verdict, Vec<String>)> = compare(&a, &b)
            .into_iter()
            .map(|c| (c.workload.to_string(), c.verdict, c.reasons))
            .collect();
        assert_eq!(
            changes,
            vec![
                (
                    "Deployment key-a".into(),
                    Verdict::Restart,
                    vec![format!(
                        "ConfigMap app ({old_name} → {new_name}): it names the new version, though no key it reads changed"
                    )]
                ),
                (
                    "Deployment whole".into(),
                    Verdict::Restart,
                    vec![format!("ConfigMap app ({old_name} → {new_name}): b changed")]
                ),
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
