//! `inject --carry`: which live versions of versioned config go back into the render, and the
//! plain documents they become. No I/O: `live::read_versions` reads, this decides and writes.
//!
//! Why: `helm rollback` refuses an object that exists in the cluster but is not in the current
//! release's manifest (`no ConfigMap with the name "app-1a2b3c4d5e" found`; helm/helm#8228,
//! #13462), and an old version kept with `--keep` is exactly that. Putting every version that a
//! ReplicaSet, ControllerRevision, Job, Pod or workload still names back into the render keeps
//! it in the release, so a rollback to the revision that made it finds it, and Helm never
//! deletes a version something still uses. What counts as "names it" is
//! [`versions::names_in`](super::versions::names_in), the one finder `prune` keeps by too.

use std::collections::HashSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::versions::{Referenced, VERSIONED_FROM};
use crate::manifest::version::{with_prune_false, ARGOCD_SYNC_OPTIONS, HELM_RESOURCE_POLICY};

/// Annotations the cluster's writers own, never carried: the server's and kubectl's
/// bookkeeping, Helm's ownership (it writes its own again), Helm 4's post-render file names
/// and Argo CD's tracking.
const OWNED_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/",
    "meta.helm.sh/",
    "postrenderer.helm.sh/",
    "argocd.argoproj.io/tracking-id",
];

/// One version carried into the render. No `Debug`: the document holds a Secret's values.
pub struct Carried {
    /// `ConfigMap` or `Secret`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The name it was versioned from.
    pub from: String,
    /// What names it (`ReplicaSet web-5d4c…`), sorted.
    pub used_by: Vec<String>,
    /// The plain document, `---` line included.
    pub document: String,
}

/// Why a live version is not carried (said at `-vv`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// The render has it already (the version it produces, or one carried before).
    InStream,
    /// Nothing in the cluster names it.
    Unused,
    /// It is being deleted.
    Deleting,
}

impl std::fmt::Display for Left {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Left::InStream => "the render has it already",
            Left::Unused => "nothing in the cluster names it",
            Left::Deleting => "it is being deleted",
        })
    }
}

/// What to do with the live versions.
#[derive(Default)]
pub struct Selection {
    /// Sorted by namespace, name and kind.
    pub carried: Vec<Carried>,
    /// `(kind, namespace, name, why)`, in the same order.
    pub left: Vec<(&'static str, String, String, Left)>,
}

/// Chooses, among live `versions` (full objects with apiVersion and kind), those something in
/// the cluster names (`referenced`) that the stream lacks (`in_stream`: `(kind, namespace,
/// name)` with namespaces resolved as the cluster has them), and writes each as a plain
/// document; `keep` adds `--keep`'s annotations.
pub fn select(
    versions: &[Value],
    referenced: &Referenced,
    in_stream: &HashSet<(&'static str, String, String)>,
    keep: bool,
) -> Selection {
    let mut selection = Selection::default();
    let mut seen = HashSet::new();
    for live in versions {
        let kind = match live["kind"].as_str() {
            Some("ConfigMap") => "ConfigMap",
            Some("Secret") => "Secret",
            _ => continue,
        };
        let meta = &live["metadata"];
        let (Some(namespace), Some(name)) = (meta["namespace"].as_str(), meta["name"].as_str())
        else {
            continue;
        };
        let key = (kind, namespace.to_string(), name.to_string());
        if !seen.insert(key.clone()) {
            continue;
        }
        let why_not = if in_stream.contains(&key) {
            Some(Left::InStream)
        } else if !meta["deletionTimestamp"].is_null() {
            Some(Left::Deleting)
        } else if !referenced.contains_key(&key) {
            Some(Left::Unused)
        } else {
            None
        };
        if let Some(why) = why_not {
            selection.left.push((key.0, key.1, key.2, why));
            continue;
        }
        let mut used_by = referenced[&key].clone();
        used_by.sort();
        selection.carried.push(Carried {
            kind,
            namespace: key.1,
            name: key.2,
            from: meta["labels"][VERSIONED_FROM]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            used_by,
            document: to_yaml(&plain(live, keep)),
        });
    }
    selection
        .carried
        .sort_by(|a, b| (&a.namespace, &a.name, a.kind).cmp(&(&b.namespace, &b.name, b.kind)));
    selection
        .left
        .sort_by(|a, b| (&a.1, &a.2, a.0).cmp(&(&b.1, &b.2, b.0)));
    selection
}

/// The live object as a render would write it: apiVersion, kind, metadata (name, namespace,
/// labels, annotations other than [`OWNED_ANNOTATIONS`]), `immutable: true`, and its type,
/// data and binaryData. Everything the server adds (uid, resourceVersion, managedFields,
/// timestamps, owner references) is left out.
pub fn plain(live: &Value, keep: bool) -> Value {
    let meta = &live["metadata"];
    let mut metadata = Map::new();
    for key in ["name", "namespace"] {
        if let Some(v) = meta[key].as_str() {
            metadata.insert(key.into(), Value::String(v.into()));
        }
    }
    if let Some(labels) = meta["labels"].as_object().filter(|l| !l.is_empty()) {
        metadata.insert("labels".into(), Value::Object(labels.clone()));
    }
    let mut annotations: Map<String, Value> = meta["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .filter(|(k, _)| !OWNED_ANNOTATIONS.iter().any(|o| k.starts_with(o)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if keep {
        annotations.insert(HELM_RESOURCE_POLICY.into(), "keep".into());
        let options = annotations.get(ARGOCD_SYNC_OPTIONS).and_then(Value::as_str);
        let options = with_prune_false(options);
        annotations.insert(ARGOCD_SYNC_OPTIONS.into(), options.into());
    }
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    let mut out = Map::new();
    out.insert("apiVersion".into(), "v1".into());
    out.insert("kind".into(), live["kind"].clone());
    out.insert("metadata".into(), Value::Object(metadata));
    out.insert("immutable".into(), Value::Bool(true));
    for key in ["type", "data", "binaryData"] {
        if !live[key].is_null() {
            out.insert(key.into(), live[key].clone());
        }
    }
    Value::Object(out)
}

/// Block YAML, `---` first: strings plain when no YAML reader could take them for anything
/// else, double-quoted otherwise. Only strings, booleans and maps of them occur here.
pub fn to_yaml(document: &Value) -> String {
    let mut out = String::from("---\n");
    // The order a person expects, whatever order the map keeps.
    let order = [
        "apiVersion",
        "kind",
        "metadata",
        "immutable",
        "type",
        "data",
        "binaryData",
    ];
    if let Some(map) = document.as_object() {
        for key in order {
            if let Some(value) = map.get(key) {
                write_entry(&mut out, 0, key, value);
            }
        }
    }
    out
}

fn write_entry(out: &mut String, indent: usize, key: &str, value: &Value) {
    let pad = " ".repeat(indent);
    let key_text = scalar(key);
    match value {
        Value::Object(map) if map.is_empty() => {
            let _ = writeln!(out, "{pad}{key_text}: {{}}");
        }
        Value::Object(map) => {
            let _ = writeln!(out, "{pad}{key_text}:");
            let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
            if indent == 0 && key == "metadata" {
                let rank = |k: &str| {
                    ["name", "namespace", "labels", "annotations"]
                        .iter()
                        .position(|o| *o == k)
                        .unwrap_or(usize::MAX)
                };
                keys.sort_by_key(|k| (rank(k), *k));
            } else {
                keys.sort_unstable();
            }
            for k in keys {
                write_entry(out, indent + 2, k, &map[k]);
            }
        }
        Value::String(s) => {
            let _ = writeln!(out, "{pad}{key_text}: {}", scalar(s));
        }
        Value::Bool(b) => {
            let _ = writeln!(out, "{pad}{key_text}: {b}");
        }
        Value::Number(n) => {
            let _ = writeln!(out, "{pad}{key_text}: {n}");
        }
        Value::Null => {
            let _ = writeln!(out, "{pad}{key_text}: null");
        }
        Value::Array(_) => {
            // No field of a ConfigMap or Secret is a list; JSON is YAML.
            let _ = writeln!(out, "{pad}{key_text}: {value}");
        }
    }
}

/// A string as a YAML scalar that reads back as exactly that string: plain when it starts with
/// a letter, holds only letters, digits, `.`, `_`, `/` and `-`, and is no YAML 1.1 boolean or
/// null word; double-quoted otherwise.
pub fn scalar(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "yes" | "n" | "no" | "true" | "false" | "on" | "off" | "null"
        );
    if plain {
        s.to_string()
    } else {
        quote(s)
    }
}

/// A YAML double-quoted scalar: `"` and `\` escaped, and every character YAML does not allow
/// as printable (C0 and C1 controls, DEL, line and paragraph separators, BOM, non-characters)
/// written as an escape, so the value reads back exactly.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20
                || (0x7f..=0x9f).contains(&(c as u32))
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
