//! `watch`'s [`LabelReader`]: an object's labels from the API server, metadata only (a
//! Secret's values are never fetched), for policy rules that select by label.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use super::client::{explain, Connection};
use crate::manifest::object::ConfigKind;
use crate::policy::Identity;
use crate::watch::labels::{LabelReader, LabelsFuture};

/// Reads labels through `connection`, in the object's namespace (else the connection's).
pub struct ObjectLabels {
    connection: Connection,
}

impl ObjectLabels {
    pub fn new(connection: Connection) -> Self {
        ObjectLabels { connection }
    }

    async fn read(&self, object: &Identity) -> Result<BTreeMap<String, String>, String> {
        let client = self.connection.client.clone();
        let namespace = object
            .namespace
            .as_deref()
            .unwrap_or(&self.connection.default_namespace);
        let (metadata, resource) = match object.kind {
            ConfigKind::ConfigMap => (
                Api::<ConfigMap>::namespaced(client, namespace)
                    .get_metadata(&object.name)
                    .await
                    .map(|m| m.metadata),
                "configmaps",
            ),
            ConfigKind::Secret => (
                Api::<Secret>::namespaced(client, namespace)
                    .get_metadata(&object.name)
                    .await
                    .map(|m| m.metadata),
                "secrets",
            ),
        };
        metadata
            .map(|m| m.labels.unwrap_or_default())
            .map_err(|e| match &e {
                kube::Error::Api(status) if status.code == 404 => format!(
                    "{} is not in namespace {namespace} (does --dir name the object the volume mounts?)",
                    object.label()
                ),
                _ => explain(&e, &format!("get {resource} in {namespace}")),
            })
    }
}

impl LabelReader for ObjectLabels {
    fn labels<'a>(&'a self, object: &'a Identity) -> LabelsFuture<'a> {
        Box::pin(self.read(object))
    }
}
