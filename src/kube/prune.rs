//! `reconfig prune`'s API work: list the versions, list everything that may name them (one
//! list per kind, never a read per object), and delete what `versions::decide` lets go, each
//! delete conditional on the resourceVersion and uid that were listed.
//!
//! Versions are listed before their readers, so a reader created while prune runs names a
//! version that was listed as young (`--min-age`), and a version changed after it was listed
//! (re-applied by a rollback) is not deleted: the API server answers 409 to the precondition.

use std::time::{Duration, SystemTime};

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Preconditions,
};

use super::client::{self, KubeError};
use super::live;
use super::versions::{self, Decision, Version, VERSIONED_FROM};
use crate::clock::parse_rfc3339;

pub use super::versions::READERS;

/// The kinds that are versioned: (plural, kind).
const VERSIONED: &[(&str, &str)] = &[("configmaps", "ConfigMap"), ("secrets", "Secret")];

/// What to prune.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `None`: the kubeconfig's namespace; ignored with `all_namespaces`.
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    /// A label selector narrowing the versions, e.g. `app.kubernetes.io/instance=shop`.
    pub selector: Option<String>,
    pub keep_last: usize,
    pub min_age: Duration,
    pub dry_run: bool,
    /// Per request.
    pub timeout: Duration,
}

/// What happened to a version that was to be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// `--dry-run`.
    WouldDelete,
    /// Someone else deleted it first.
    AlreadyGone,
    /// It changed after it was listed (the precondition failed): kept.
    Changed(String),
    /// The API server refused or failed; nothing after it was attempted.
    Failed(String),
    /// Not attempted, because an earlier delete failed.
    NotAttempted,
}

impl Deletion {
    /// Whether this outcome means the run did not do what it set out to.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Deletion::Changed(_) | Deletion::Failed(_) | Deletion::NotAttempted
        )
    }
}

/// The run's result: every version with its decision, and for each one to delete, what
/// happened.
#[derive(Debug)]
pub struct Report {
    /// The namespace searched, or `None` for all of them.
    pub namespace: Option<String>,
    pub decisions: Vec<(Decision, Option<Deletion>)>,
    /// Reader kinds the cluster does not serve (CRDs not installed), skipped.
    pub absent_kinds: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Connect(#[from] KubeError),
    #[error("cannot list {what}: {why}; nothing was deleted")]
    List { what: String, why: String },
}

/// Runs the whole prune; call inside a runtime.
pub async fn prune(settings: &Settings) -> Result<Report, PruneError> {
    let connection = client::connect(settings.timeout).await?;
    let client = connection.client;
    let namespace = (!settings.all_namespaces).then(|| {
        settings
            .namespace
            .clone()
            .unwrap_or(connection.default_namespace)
    });
    let api = |resource: &ApiResource| match &namespace {
        Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, resource),
        None => Api::<DynamicObject>::all_with(client.clone(), resource),
    };
    let where_ = match &namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "in any namespace".to_string(),
    };

    let mut selector = VERSIONED_FROM.to_string();
    if let Some(extra) = settings.selector.as_deref().filter(|s| !s.is_empty()) {
        selector.push(',');
        selector.push_str(extra);
    }
    let mut found = Vec::new();
    for (plural, kind) in VERSIONED {
        let resource = resource("", "v1", plural, kind);
        let list = api(&resource)
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| PruneError::List {
                what: format!("{plural} {where_}"),
                why: explain(&e, &format!("list {plural}")),
            })?;
        for item in list.items {
            let meta = item.metadata;
            let label = meta
                .labels
                .as_ref()
                .and_then(|l| l.get(VERSIONED_FROM))
                .cloned()
                .unwrap_or_default();
            found.push(Version {
                kind,
                namespace: meta.namespace.unwrap_or_default(),
                name: meta.name.unwrap_or_default(),
                from: label,
                created: meta
                    .creation_timestamp
                    .and_then(|t| parse_rfc3339(&t.0.to_string())),
                resource_version: meta.resource_version.unwrap_or_default(),
                uid: meta.uid.unwrap_or_default(),
            });
        }
    }

    let scan = if found.is_empty() {
        live::ReaderScan::default()
    } else {
        live::list_readers(&client, namespace.as_deref())
            .await
            .map_err(|f| PruneError::List {
                what: format!("{} {where_}{}", f.what, f.purpose),
                why: explain(&f.error, &f.permission),
            })?
    };
    let (referenced, absent_kinds) = (scan.referenced, scan.absent_kinds);

    let decisions = versions::decide(
        found,
        &referenced,
        settings.keep_last,
        settings.min_age,
        SystemTime::now(),
    );
    let mut out = Vec::with_capacity(decisions.len());
    let mut stopped = false;
    for decision in decisions {
        if decision.keep.is_some() {
            out.push((decision, None));
            continue;
        }
        let deletion = if settings.dry_run {
            Deletion::WouldDelete
        } else if stopped {
            Deletion::NotAttempted
        } else {
            let v = &decision.version;
            let (plural, kind) = VERSIONED
                .iter()
                .find(|(_, k)| *k == v.kind)
                .copied()
                .unwrap_or(("configmaps", "ConfigMap"));
            let resource = resource("", "v1", plural, kind);
            let api =
                Api::<DynamicObject>::namespaced_with(client.clone(), &v.namespace, &resource);
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: Some(v.resource_version.clone()),
                    uid: Some(v.uid.clone()),
                }),
                ..DeleteParams::default()
            };
            match api.delete(&v.name, &params).await {
                Ok(_) => Deletion::Deleted,
                Err(kube::Error::Api(status)) if status.code == 404 => Deletion::AlreadyGone,
                Err(kube::Error::Api(status)) if status.code == 409 => Deletion::Changed(format!(
                    "{} {}: {}",
                    status.code, status.reason, status.message
                )),
                Err(e) => {
                    stopped = true;
                    Deletion::Failed(explain(&e, &format!("delete {plural}")))
                }
            }
        };
        out.push((decision, Some(deletion)));
    }
    Ok(Report {
        namespace,
        decisions: out,
        absent_kinds,
    })
}

/// One line for the user, with the fix when the cause is known.
fn explain(e: &kube::Error, permission: &str) -> String {
    match e {
        kube::Error::Api(status) => {
            let text = format!("{} {}: {}", status.code, status.reason, status.message);
            if status.code == 403 {
                format!("{text} (reconfig prune needs `{permission}`: see the Role that helm-snippets' reconfig.prune template grants)")
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

fn resource(group: &str, version: &str, plural: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}
