//! Which versions of versioned ConfigMaps and Secrets `reconfig prune` deletes.
//!
//! `inject --versioned` gives every content of an object a name of its own
//! (`app-1a2b3c4d5e`, labelled `reconfig/versioned-from: app`), and `--keep` asks Helm and
//! Argo CD to leave old ones in place, because a pod of an old ReplicaSet that is created
//! again (a canary abort, an eviction, a rollback) needs its version. This module decides,
//! from what the cluster holds, which versions nothing can need any more: those no
//! ReplicaSet, ControllerRevision, Job, CronJob, Pod or workload names, beyond the newest
//! `--keep-last` of each name, and older than `--min-age`. It does no I/O: `prune` lists and
//! deletes, this only reads what was listed.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use serde_json::Value;

pub use crate::manifest::object::VERSIONED_FROM;

/// The kinds whose objects may name a version: what pods are made from, pods themselves,
/// and every workload `inject` knows. (group, version, plural, kind)
pub const READERS: &[(&str, &str, &str, &str)] = &[
    ("apps", "v1", "replicasets", "ReplicaSet"),
    ("apps", "v1", "controllerrevisions", "ControllerRevision"),
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
    ("apps", "v1", "daemonsets", "DaemonSet"),
    ("batch", "v1", "jobs", "Job"),
    ("batch", "v1", "cronjobs", "CronJob"),
    ("", "v1", "pods", "Pod"),
    ("", "v1", "podtemplates", "PodTemplate"),
    ("", "v1", "replicationcontrollers", "ReplicationController"),
    ("argoproj.io", "v1alpha1", "rollouts", "Rollout"),
    ("apps.kruise.io", "v1alpha1", "clonesets", "CloneSet"),
    ("apps.kruise.io", "v1beta1", "statefulsets", "StatefulSet"),
    ("apps.kruise.io", "v1alpha1", "daemonsets", "DaemonSet"),
    (
        "apps.kruise.io",
        "v1alpha1",
        "broadcastjobs",
        "BroadcastJob",
    ),
    (
        "apps.kruise.io",
        "v1alpha1",
        "advancedcronjobs",
        "AdvancedCronJob",
    ),
    (
        "apps.kruise.io",
        "v1alpha1",
        "uniteddeployments",
        "UnitedDeployment",
    ),
    ("serving.knative.dev", "v1", "services", "Service"),
];

/// One version found in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// `ConfigMap` or `Secret`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The name it was versioned from (its label).
    pub from: String,
    pub created: Option<SystemTime>,
    /// Deletes are conditional on these: a version changed since it was listed is not deleted.
    pub resource_version: String,
    pub uid: String,
}

/// Why a version stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Named by these objects (`ReplicaSet web-5d4c…`).
    Referenced(Vec<String>),
    /// Among the newest `--keep-last` of its name.
    Newest(usize),
    /// Younger than `--min-age`: it may have been applied before the workload naming it.
    Young(Duration),
    /// The API gave no creation time, so its age is unknown.
    NoCreationTime,
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keep::Referenced(by) => {
                let more = by.len().saturating_sub(3);
                write!(f, "used by {}", by[..by.len().min(3)].join(", "))?;
                if more > 0 {
                    write!(f, " and {more} more")?;
                }
                Ok(())
            }
            Keep::Newest(n) => write!(f, "among the newest {n} of its name (--keep-last)"),
            Keep::Young(min) => write!(f, "younger than --min-age {}s", min.as_secs()),
            Keep::NoCreationTime => f.write_str("no creation time, so its age is unknown"),
        }
    }
}

/// What happens to one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub version: Version,
    /// `None`: delete it.
    pub keep: Option<Keep>,
}

/// Which objects name which versions: `(kind, namespace, name)` to the referrers, described.
pub type Referenced = HashMap<(&'static str, String, String), Vec<String>>;

/// Adds the ConfigMaps and Secrets `object` names (anywhere in it, see [`names_in`]) to
/// `referenced`, described as `label`.
pub fn add_references(referenced: &mut Referenced, namespace: &str, label: &str, object: &Value) {
    for (kind, name) in names_in(object) {
        let by = referenced
            .entry((kind, namespace.to_string(), name))
            .or_default();
        if !by.iter().any(|b| b == label) {
            by.push(label.to_string());
        }
    }
}

/// Every ConfigMap and Secret name in an object, found by field name as `inject` finds
/// them: volumes (`configMap.name`, `secret.secretName`, projected sources), `envFrom`,
/// `valueFrom`, `imagePullSecrets`, and any `…secretName`/`…SecretRef.name`-like field,
/// anywhere, so a pod template inside a ControllerRevision's data or a CronJob's job
/// template counts. Finding too much only keeps a version.
pub fn names_in(object: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    walk(object, None, &mut out);
    out.sort();
    out.dedup();
    out
}

fn walk(value: &Value, context: Option<&'static str>, out: &mut Vec<(&'static str, String)>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "metadata" {
                    // Labels and annotations hold names, but no reference (and the
                    // versioned-from label would make every version look used).
                    continue;
                }
                let kind = kind_named_in(key);
                match value {
                    Value::String(name) if !name.is_empty() => {
                        let refers = if key == "name" {
                            context
                        } else {
                            kind.filter(|_| {
                                let key = key.to_ascii_lowercase();
                                ["name", "secret", "configmap", "ref"]
                                    .iter()
                                    .any(|end| key.ends_with(end))
                            })
                        };
                        if let Some(kind) = refers {
                            out.push((kind, name.clone()));
                        }
                    }
                    _ => walk(value, kind, out),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match (item, context) {
                    (Value::String(name), Some(kind)) => out.push((kind, name.clone())),
                    _ => walk(item, context, out),
                }
            }
        }
        _ => {}
    }
}

fn kind_named_in(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    if key.contains("secret") {
        Some("Secret")
    } else if key.contains("configmap") {
        Some("ConfigMap")
    } else {
        None
    }
}

/// Decides every version: kept, with the reason, or deleted. In order of namespace, name
/// versioned from, and newest first.
pub fn decide(
    versions: Vec<Version>,
    referenced: &Referenced,
    keep_last: usize,
    min_age: Duration,
    now: SystemTime,
) -> Vec<Decision> {
    let mut groups: BTreeMap<(String, &'static str, String), Vec<Version>> = BTreeMap::new();
    for v in versions {
        groups
            .entry((v.namespace.clone(), v.kind, v.from.clone()))
            .or_default()
            .push(v);
    }
    let mut out = Vec::new();
    for (_, mut group) in groups {
        group.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)));
        for (rank, version) in group.into_iter().enumerate() {
            let key = (
                version.kind,
                version.namespace.clone(),
                version.name.clone(),
            );
            let keep = if let Some(by) = referenced.get(&key) {
                let mut by = by.clone();
                by.sort();
                Some(Keep::Referenced(by))
            } else if rank < keep_last {
                Some(Keep::Newest(keep_last))
            } else {
                match version.created {
                    None => Some(Keep::NoCreationTime),
                    Some(created) => {
                        let age = now.duration_since(created).unwrap_or_default();
                        (age < min_age).then_some(Keep::Young(min_age))
                    }
                }
            };
            out.push(Decision { version, keep });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::UNIX_EPOCH;

    fn version(from: &str, hash: &str, created_secs: u64) -> Version {
        Version {
            kind: "ConfigMap",
            namespace: "shop".into(),
            name: format!("{from}-{hash}"),
            from: from.into(),
            created: Some(UNIX_EPOCH + Duration::from_secs(created_secs)),
            resource_version: "1".into(),
            uid: format!("uid-{hash}"),
        }
    }

    #[test]
    fn names_are_found_wherever_a_pod_template_holds_them() {
        let replica_set = json!({
            "metadata": {"name": "web-1", "labels": {"reconfig/versioned-from": "app"}},
            "spec": {"template": {"spec": {
                "imagePullSecrets": [{"name": "pull"}],
                "volumes": [
                    {"name": "v", "configMap": {"name": "app-1"}},
                    {"name": "s", "secret": {"secretName": "db-1"}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "proj-1"}}]}}
                ],
                "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "env-1"}}]}],
                "containers": [{"name": "c", "env": [
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "key-1", "key": "a"}}}
                ]}]
            }}}
        });
        assert_eq!(
            names_in(&replica_set),
            vec![
                ("ConfigMap", "app-1".to_string()),
                ("ConfigMap", "key-1".to_string()),
                ("ConfigMap", "proj-1".to_string()),
                ("Secret", "db-1".to_string()),
                ("Secret", "env-1".to_string()),
                ("Secret", "pull".to_string()),
            ]
        );
        // A StatefulSet's ControllerRevision holds its template under `data`.
        let revision = json!({"data": {"spec": {"template": {"spec": {
            "volumes": [{"name": "v", "configMap": {"name": "app-2"}}]}}}}});
        assert_eq!(
            names_in(&revision),
            vec![("ConfigMap", "app-2".to_string())]
        );
    }

    #[test]
    fn referenced_newest_and_young_versions_stay() {
        let hour = 3600;
        let now = UNIX_EPOCH + Duration::from_secs(100 * hour);
        let versions = vec![
            version("app", "a", hour),
            version("app", "b", 2 * hour),
            version("app", "c", 3 * hour),
            version("app", "d", 4 * hour),
            version("app", "e", 100 * hour - 60),
            version("other", "x", hour),
        ];
        let mut referenced = Referenced::new();
        add_references(
            &mut referenced,
            "shop",
            "ReplicaSet web-1",
            &json!({"spec": {"volumes": [{"configMap": {"name": "app-a"}}]}}),
        );
        let decide = |keep_last| {
            decide(
                versions.clone(),
                &referenced,
                keep_last,
                Duration::from_secs(600),
                now,
            )
            .into_iter()
            .map(|d| (d.version.name, d.keep))
            .collect::<Vec<_>>()
        };
        assert_eq!(
            decide(1),
            vec![
                ("app-e".into(), Some(Keep::Newest(1))),
                ("app-d".into(), None),
                ("app-c".into(), None),
                ("app-b".into(), None),
                (
                    "app-a".into(),
                    Some(Keep::Referenced(vec!["ReplicaSet web-1".into()]))
                ),
                ("other-x".into(), Some(Keep::Newest(1))),
            ]
        );
        let three = decide(3);
        assert_eq!(three[2], ("app-c".into(), Some(Keep::Newest(3))));
        assert_eq!(three[3], ("app-b".into(), None));
        // With --keep-last 0, the one applied a minute ago is still too young.
        let none = decide(0);
        assert_eq!(
            none[0],
            ("app-e".into(), Some(Keep::Young(Duration::from_secs(600))))
        );
        assert_eq!(none[5], ("other-x".into(), None));
    }
}
