//! Reading what the cluster runs, read-only: the old side of `plan --live`, and the
//! ConfigMaps and Secrets `inject --lookup` hashes although the render lacks them.
//!
//! Both hand back a stream of JSON documents (JSON is YAML), so the cluster's objects go
//! through the very reader and resolution a render goes through: a live Deployment is hashed
//! exactly as a rendered one. Secret values exist only in that text in memory, to be hashed;
//! nothing here logs an object. The requests are few on purpose: `plan --live` makes one
//! list per kind and namespace (never one get per workload), `inject --lookup` one get per
//! object the render references but lacks.
//!
//! `inject --carry` and `prune` share [`list_readers`]: everything that may name a version of
//! versioned config (ReplicaSets, ControllerRevisions, Jobs, Pods, workloads), one list per
//! kind, read the one way, so what prune keeps and what inject carries agree.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, ApiResource, DynamicObject, ListParams, TypeMeta};
use kube::core::GroupVersionKind;

use super::client::Connection;
use super::versions::{self, Referenced, READERS, VERSIONED_FROM};
use crate::manifest::object::{ConfigKind, ObjectId};
use crate::manifest::Analysis;

/// Secrets of this type hold Helm's release history: large, and never mounted by a pod.
const HELM_RELEASE: &str = "helm.sh/release.v1";

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot list {what}: {message}")]
    List { what: String, message: String },
    #[error("cannot read {what}: {message}")]
    Get { what: String, message: String },
}

/// One list request: a kind in a namespace, at the version the cluster serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ListKey {
    api_version: String,
    kind: String,
    namespace: String,
}

/// What `plan --live` reads: the new render's workloads by list, and the namespaces whose
/// ConfigMaps and Secrets they may use.
#[derive(Debug, Default)]
pub struct Wanted {
    workloads: BTreeMap<ListKey, BTreeSet<String>>,
    namespaces: BTreeSet<String>,
}

/// The workloads of a render, grouped into the lists that read them back.
pub fn wanted(new: &Analysis<'_>) -> Wanted {
    let mut wanted = Wanted::default();
    for t in &new.resolution.templates {
        let Some(w) = new.workload_of(t) else {
            continue;
        };
        let key = ListKey {
            api_version: served_version(&w.api_version, &w.kind.kind),
            kind: w.kind.kind.clone(),
            namespace: t.workload.namespace.clone(),
        };
        wanted.namespaces.insert(key.namespace.clone());
        wanted
            .workloads
            .entry(key)
            .or_default()
            .insert(t.workload.name.clone());
    }
    wanted
}

/// The version current API servers serve a workload at: charts still write the old
/// `extensions/v1beta1` and `apps/v1beta*` forms, which Kubernetes 1.16 stopped serving.
fn served_version(api_version: &str, kind: &str) -> String {
    match (api_version, kind) {
        ("extensions/v1beta1" | "apps/v1beta1" | "apps/v1beta2", _) => "apps/v1".to_string(),
        ("batch/v1beta1" | "batch/v2alpha1", "CronJob") => "batch/v1".to_string(),
        _ => api_version.to_string(),
    }
}

/// What the cluster gave back. No `Debug`: the text holds Secret values.
#[derive(Default)]
pub struct Read {
    /// The objects as a stream of JSON documents.
    pub text: String,
    pub workloads: usize,
    pub configs: usize,
    /// Requests made.
    pub requests: usize,
}

fn resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

/// The resource as RBAC names it: `deployments.apps`, `secrets`.
fn rbac_name(r: &ApiResource) -> String {
    if r.group.is_empty() {
        r.plural.clone()
    } else {
        format!("{}.{}", r.plural, r.group)
    }
}

/// One line for the user, with the fix for a refusal.
fn explain(e: &kube::Error, verb: &str, r: &ApiResource, namespace: &str) -> String {
    match e {
        kube::Error::Api(status) if status.code == 403 => format!(
            "{} {}: {} (the account needs `{verb}` on {} in namespace {namespace}; see the README for the Role)",
            status.code,
            status.reason,
            status.message,
            rbac_name(r)
        ),
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

/// Appends `object` to the stream as a JSON document, typed as `r`.
fn push(text: &mut String, mut object: DynamicObject, r: &ApiResource) -> Result<(), String> {
    // Items of a list carry no apiVersion/kind; the reader needs them.
    object.types = Some(TypeMeta {
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
    });
    let json = serde_json::to_string(&object).map_err(|e| e.to_string())?;
    text.push_str("---\n");
    text.push_str(&json);
    text.push('\n');
    Ok(())
}

/// Lists `r` in `namespace`; `Ok(None)` when the cluster does not serve it (404).
async fn list(
    connection: &Connection,
    r: &ApiResource,
    namespace: &str,
) -> Result<Option<Vec<DynamicObject>>, ReadError> {
    let api: Api<DynamicObject> = Api::namespaced_with(connection.client.clone(), namespace, r);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(Some(list.items)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(ReadError::List {
            what: format!("{} in namespace {namespace}", rbac_name(r)),
            message: explain(&e, "list", r, namespace),
        }),
    }
}

/// Reads the live side for `plan --live`: the wanted workloads that exist (one list per kind
/// and namespace), and the ConfigMaps and Secrets of their namespaces (one list each).
/// A kind the cluster does not serve has no workloads yet: they all come out `new`.
pub async fn read(connection: &Connection, wanted: &Wanted) -> Result<Read, ReadError> {
    let mut read = Read::default();
    let to_error = |what: String| move |message| ReadError::List { what, message };
    for (key, names) in &wanted.workloads {
        let r = resource(&key.api_version, &key.kind);
        read.requests += 1;
        let Some(items) = list(connection, &r, &key.namespace).await? else {
            tracing::warn!(
                "the cluster does not serve {} ({}): its workloads in {} count as new",
                rbac_name(&r),
                key.api_version,
                key.namespace
            );
            continue;
        };
        for item in items {
            if item
                .metadata
                .name
                .as_ref()
                .is_some_and(|n| names.contains(n))
            {
                push(&mut read.text, item, &r).map_err(to_error(rbac_name(&r)))?;
                read.workloads += 1;
            }
        }
    }
    for namespace in &wanted.namespaces {
        for kind in ["ConfigMap", "Secret"] {
            let r = resource("v1", kind);
            read.requests += 1;
            let items = list(connection, &r, namespace).await?.unwrap_or_default();
            for item in items {
                if item.data.get("type").and_then(|t| t.as_str()) == Some(HELM_RELEASE) {
                    continue;
                }
                push(&mut read.text, item, &r).map_err(to_error(rbac_name(&r)))?;
                read.configs += 1;
            }
        }
    }
    Ok(read)
}

/// What `inject --lookup` found. No `Debug`: the text holds Secret values.
#[derive(Default)]
pub struct Found {
    /// The objects found, as a stream of JSON documents, each in the namespace it was asked for.
    pub text: String,
    pub found: Vec<ObjectId>,
    /// Objects the cluster does not have (404).
    pub absent: Vec<ObjectId>,
}

/// Reads each object with a `get` of its name. An object of the empty namespace (a render
/// that names none, with no `--namespace`) is read from the kubeconfig's namespace.
pub async fn get(connection: &Connection, ids: &[ObjectId]) -> Result<Found, ReadError> {
    let mut found = Found::default();
    for id in ids {
        let kind = match id.kind {
            ConfigKind::ConfigMap => "ConfigMap",
            ConfigKind::Secret => "Secret",
        };
        let r = resource("v1", kind);
        let namespace = if id.namespace.is_empty() {
            connection.default_namespace.as_str()
        } else {
            id.namespace.as_str()
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(connection.client.clone(), namespace, &r);
        let what = || format!("{kind} {namespace}/{}", id.name);
        match api.get_opt(&id.name).await {
            Ok(Some(mut object)) => {
                // Matched to the workloads as the render names their namespace.
                object.metadata.namespace =
                    (!id.namespace.is_empty()).then(|| id.namespace.clone());
                push(&mut found.text, object, &r).map_err(|message| ReadError::Get {
                    what: what(),
                    message,
                })?;
                found.found.push(id.clone());
            }
            Ok(None) => found.absent.push(id.clone()),
            Err(e) => {
                return Err(ReadError::Get {
                    what: what(),
                    message: explain(&e, "get", &r, namespace),
                })
            }
        }
    }
    Ok(found)
}

/// What names which versions in a namespace (or all), from one list per reader kind.
#[derive(Debug, Default)]
pub struct ReaderScan {
    pub referenced: Referenced,
    /// Reader kinds the cluster does not serve (CRDs not installed), skipped.
    pub absent_kinds: Vec<String>,
    pub requests: usize,
}

/// A list the API server refused or failed, for the caller to explain in its own words.
#[derive(Debug)]
pub struct ListFailure {
    /// `replicasets.apps`, `the API group argoproj.io/v1alpha1`.
    pub what: String,
    /// ` (to find what uses each version)`, or empty.
    pub purpose: &'static str,
    /// The permission it lacks, e.g. `list replicasets`.
    pub permission: String,
    pub error: kube::Error,
}

/// Lists every kind in [`READERS`] in `namespace` (`None`: all namespaces), and records the
/// ConfigMaps and Secrets each object names ([`versions::add_references`]). A custom kind whose
/// group the cluster does not serve is skipped (discovery, once per group-version, is open to
/// any account).
pub async fn list_readers(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<ReaderScan, ListFailure> {
    let mut scan = ReaderScan::default();
    // What each custom resource group-version serves, read once (`None`: not served).
    let mut served: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    for (group, version, plural, kind) in READERS {
        let r =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        if !group.is_empty() && !matches!(*group, "apps" | "batch") {
            if !served.contains_key(&r.api_version) {
                scan.requests += 1;
                let resources = match client.list_api_group_resources(&r.api_version).await {
                    Ok(list) => Some(list.resources.into_iter().map(|r| r.name).collect()),
                    Err(kube::Error::Api(status)) if status.code == 404 => None,
                    Err(error) => {
                        return Err(ListFailure {
                            what: format!("the API group {}", r.api_version),
                            purpose: "",
                            permission: "discovery".to_string(),
                            error,
                        })
                    }
                };
                served.insert(r.api_version.clone(), resources);
            }
            let is_served = served
                .get(&r.api_version)
                .and_then(Option::as_ref)
                .is_some_and(|names| names.iter().any(|n| n == plural));
            if !is_served {
                scan.absent_kinds.push(format!("{kind}.{group}"));
                continue;
            }
        }
        let api = match namespace {
            Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &r),
            None => Api::<DynamicObject>::all_with(client.clone(), &r),
        };
        scan.requests += 1;
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|error| ListFailure {
                what: format!("{plural}.{}", if group.is_empty() { "core" } else { group }),
                purpose: " (to find what uses each version)",
                permission: format!("list {plural}"),
                error,
            })?;
        for item in list.items {
            let ns = item.metadata.namespace.clone().unwrap_or_default();
            let label = format!("{kind} {}", item.metadata.name.as_deref().unwrap_or("?"));
            let value = serde_json::to_value(&item).unwrap_or_default();
            versions::add_references(&mut scan.referenced, &ns, &label, &value);
        }
    }
    Ok(scan)
}

/// What `inject --carry` read. No `Debug`: the versions hold Secret values.
#[derive(Default)]
pub struct CarryRead {
    /// The live versions of the names asked for, each with apiVersion and kind.
    pub versions: Vec<serde_json::Value>,
    pub readers: ReaderScan,
    /// Requests made, the readers' lists included.
    pub requests: usize,
}

/// Reads, for `inject --carry`, the live versions of each name in `wanted` (by kind and
/// namespace: one list each, by the label [`VERSIONED_FROM`]), then what names them, one list
/// per reader kind in each namespace that has versions. Nothing is read when nothing is wanted.
pub async fn read_versions(
    connection: &Connection,
    wanted: &BTreeMap<(&'static str, String), BTreeSet<String>>,
) -> Result<CarryRead, ReadError> {
    let mut read = CarryRead::default();
    let mut namespaces = BTreeSet::new();
    for ((kind, namespace), names) in wanted {
        if names.is_empty() {
            continue;
        }
        let r = resource("v1", kind);
        let api: Api<DynamicObject> =
            Api::namespaced_with(connection.client.clone(), namespace, &r);
        // Versioned names are valid label values, so the set needs no quoting.
        let selector = format!(
            "{VERSIONED_FROM} in ({})",
            names.iter().cloned().collect::<Vec<_>>().join(",")
        );
        read.requests += 1;
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| ReadError::List {
                what: format!("{} in namespace {namespace}", rbac_name(&r)),
                message: explain(&e, "list", &r, namespace),
            })?;
        for mut item in list.items {
            item.types = Some(TypeMeta {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
            });
            let value = serde_json::to_value(&item).map_err(|e| ReadError::List {
                what: rbac_name(&r),
                message: e.to_string(),
            })?;
            namespaces.insert(namespace.clone());
            read.versions.push(value);
        }
    }
    for namespace in &namespaces {
        let scan = list_readers(&connection.client, Some(namespace))
            .await
            .map_err(|f| ReadError::List {
                what: format!("{} in namespace {namespace}{}", f.what, f.purpose),
                message: match &f.error {
                    kube::Error::Api(status) if status.code == 403 => format!(
                        "{} {}: {} (the account needs `{}` in namespace {namespace}; see the README for the Role)",
                        status.code, status.reason, status.message, f.permission
                    ),
                    other => explain_other(other),
                },
            })?;
        read.requests += scan.requests;
        read.readers.requests += scan.requests;
        for (key, by) in scan.referenced {
            read.readers.referenced.entry(key).or_default().extend(by);
        }
        read.readers.absent_kinds.extend(scan.absent_kinds);
    }
    read.readers.absent_kinds.sort();
    read.readers.absent_kinds.dedup();
    Ok(read)
}

fn explain_other(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_api_versions_are_read_at_the_served_one() {
        assert_eq!(
            served_version("extensions/v1beta1", "Deployment"),
            "apps/v1"
        );
        assert_eq!(served_version("apps/v1beta2", "StatefulSet"), "apps/v1");
        assert_eq!(served_version("batch/v1beta1", "CronJob"), "batch/v1");
        assert_eq!(
            served_version("argoproj.io/v1alpha1", "Rollout"),
            "argoproj.io/v1alpha1"
        );
    }

    #[test]
    fn resources_are_named_as_rbac_names_them() {
        assert_eq!(
            rbac_name(&resource("apps/v1", "Deployment")),
            "deployments.apps"
        );
        assert_eq!(rbac_name(&resource("v1", "Secret")), "secrets");
        assert_eq!(
            rbac_name(&resource("argoproj.io/v1alpha1", "Rollout")),
            "rollouts.argoproj.io"
        );
    }
}
