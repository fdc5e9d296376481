//! The data of every ConfigMap and Secret in a stream, key by key, as a pod reads it.
//!
//! `check --manifests` validates each key as a file; it needs the decoded bytes of
//! every key (not the digests `analyze` keeps), and nothing about workloads.

use std::collections::BTreeMap;

use super::node::Limits;
use super::object::{config_data, objects, ConfigKind, DataItem};
use super::stream::{Stream, StreamError};

/// One ConfigMap's or Secret's keys, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectData {
    pub kind: ConfigKind,
    pub name: String,
    /// `metadata.namespace`, when it names one.
    pub namespace: Option<String>,
    /// `metadata.labels` with string values (a policy's label selector reads them).
    pub labels: BTreeMap<String, String>,
    pub items: Vec<DataItem>,
}

/// Reads every ConfigMap and Secret of a stream (a `List`'s items too), in stream order. Any
/// invalid document fails the whole stream, as in `analyze`.
pub fn config_objects(
    text: &str,
    limits: Limits,
    max_input_size: usize,
) -> Result<Vec<ObjectData>, StreamError> {
    let stream = Stream::new(text, max_input_size)?;
    let parsed = stream.parse(limits, |doc| {
        let mut found = Vec::new();
        for (root, meta) in objects(doc.root) {
            if let Some((kind, items)) = config_data(root, &meta)? {
                let labels = root
                    .path("metadata.labels")
                    .and_then(|l| l.entries())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                    .collect();
                found.push(ObjectData {
                    kind,
                    name: meta.name.to_string(),
                    namespace: meta.namespace.map(str::to_string),
                    labels,
                    items,
                });
            }
        }
        Ok(found)
    })?;
    Ok(parsed.values.into_iter().flatten().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmaps_and_secrets_are_read_others_skipped() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a.yaml: eDogMQo=}\nstringData: {b.json: '{}'}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n";
        let objects = config_objects(text, Limits::default(), 1 << 20).expect("valid");
        type Summary<'o> = (ConfigKind, &'o str, Vec<(&'o str, &'o [u8])>);
        let summary: Vec<Summary<'_>> = objects
            .iter()
            .map(|o| {
                let items = o
                    .items
                    .iter()
                    .map(|i| (i.key.as_str(), &i.bytes[..]))
                    .collect();
                (o.kind, o.name.as_str(), items)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    ConfigKind::Secret,
                    "s",
                    vec![("a.yaml", &b"x: 1\n"[..]), ("b.json", &b"{}"[..])]
                ),
                (ConfigKind::ConfigMap, "c", vec![("k", &b"v"[..])]),
            ]
        );
    }
}
