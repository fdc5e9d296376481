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
use crate::manifest::object::CARRIED;
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
/// the cluster names (`referenced`), or with `keep` every one, that the stream lacks
/// (`in_stream`: `(kind, namespace, name)` with namespaces resolved as the cluster has them),
/// and writes each as a plain document; `keep` adds `--keep`'s annotations.
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
        } else if !keep && !referenced.contains_key(&key) {
            // With `--keep` Helm never deletes a version, so one nothing names stays in the
            // cluster: left out of the release, a rollback to the revision that made it would
            // meet Helm's refusal. Carried, the rollback finds it (and once `prune` deletes
            // it, a rollback creates it again from the release).
            Some(Left::Unused)
        } else {
            None
        };
        if let Some(why) = why_not {
            selection.left.push((key.0, key.1, key.2, why));
            continue;
        }
        let mut used_by = referenced.get(&key).cloned().unwrap_or_default();
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
/// labels, annotations other than [`OWNED_ANNOTATIONS`], plus [`CARRIED`] so that `inject`
/// leaves it as it is), `immutable: true`, and its type,
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
    annotations.insert(CARRIED.into(), "true".into());
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
/// a letter, holds only letters, digits and `. _ / - = ,` (none of them special inside a
/// block-context plain scalar), and is no YAML 1.1 boolean or null word; double-quoted
/// otherwise.
pub fn scalar(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | '=' | ','))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::Limits;
    use crate::manifest::parse::parse_documents;
    use crate::validate::to_json;
    use serde_json::json;

    fn live(kind: &str, name: &str, extra: Value) -> Value {
        let mut object = json!({
            "apiVersion": "v1", "kind": kind,
            "metadata": {
                "name": name, "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "helm"}],
                "labels": {VERSIONED_FROM: "app", "app.kubernetes.io/managed-by": "Helm"},
                "annotations": {
                    "meta.helm.sh/release-name": "shop",
                    "meta.helm.sh/release-namespace": "shop",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{}}",
                    "postrenderer.helm.sh/postrender-filename": "app/templates/cm.yaml",
                    "reconfig/data-checksum": "ab12",
                    "team": "web"
                }
            },
            "immutable": true,
        });
        if let (Some(o), Some(e)) = (object.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        object
    }

    fn referenced(names: &[(&'static str, &str, &str)]) -> Referenced {
        let mut r = Referenced::new();
        for (kind, name, by) in names {
            r.entry((*kind, "shop".to_string(), name.to_string()))
                .or_default()
                .push(by.to_string());
        }
        r
    }

    /// Parses `text` with the crate's reader (held to Helm's by tests/yaml_oracle.rs).
    fn read_back(text: &str) -> Value {
        let docs = parse_documents(text, Limits::default()).expect("valid YAML");
        assert_eq!(docs.len(), 1, "{text}");
        to_json(docs[0].as_ref().expect("a document"))
    }

    #[test]
    fn only_used_versions_the_stream_lacks_are_carried_sorted_by_name() {
        let mut versions = vec![
            live("ConfigMap", "app-c", json!({"data": {"k": "3"}})),
            live("ConfigMap", "app-a", json!({"data": {"k": "1"}})),
            live("ConfigMap", "app-b", json!({"data": {"k": "2"}})),
            live("ConfigMap", "app-d", json!({"data": {"k": "4"}})),
            live("ConfigMap", "app-e", json!({"data": {"k": "5"}})),
            live("Secret", "app-a", json!({"data": {"k": "MQ=="}})),
        ];
        versions[4]["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
        let used = referenced(&[
            ("ConfigMap", "app-c", "ReplicaSet web-3"),
            ("ConfigMap", "app-a", "ReplicaSet web-1"),
            ("ConfigMap", "app-a", "Pod web-1-x"),
            ("ConfigMap", "app-d", "ReplicaSet web-4"),
            ("ConfigMap", "app-e", "ReplicaSet web-5"),
            ("Secret", "app-a", "ControllerRevision db-1"),
        ]);
        let in_stream: HashSet<_> = [("ConfigMap", "shop".to_string(), "app-d".to_string())]
            .into_iter()
            .collect();
        let s = select(&versions, &used, &in_stream, false);
        let carried: Vec<(&str, &str, Vec<String>)> = s
            .carried
            .iter()
            .map(|c| (c.kind, c.name.as_str(), c.used_by.clone()))
            .collect();
        assert_eq!(
            carried,
            vec![
                (
                    "ConfigMap",
                    "app-a",
                    vec!["Pod web-1-x".to_string(), "ReplicaSet web-1".to_string()]
                ),
                (
                    "Secret",
                    "app-a",
                    vec!["ControllerRevision db-1".to_string()]
                ),
                ("ConfigMap", "app-c", vec!["ReplicaSet web-3".to_string()]),
            ]
        );
        assert!(s.carried.iter().all(|c| c.from == "app"));
        let left: Vec<(&str, Left)> = s
            .left
            .iter()
            .map(|(_, _, name, why)| (name.as_str(), why.clone()))
            .collect();
        assert_eq!(
            left,
            vec![
                ("app-b", Left::Unused),
                ("app-d", Left::InStream),
                ("app-e", Left::Deleting),
            ]
        );
        // With --keep, Helm keeps app-b whatever names it: carried, so that a rollback to the
        // revision that made it finds it in the release.
        let kept = select(&versions, &used, &in_stream, true);
        let names: Vec<(&str, &str, usize)> = kept
            .carried
            .iter()
            .map(|c| (c.kind, c.name.as_str(), c.used_by.len()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("ConfigMap", "app-a", 2),
                ("Secret", "app-a", 1),
                ("ConfigMap", "app-b", 0),
                ("ConfigMap", "app-c", 1),
            ]
        );
    }

    #[test]
    fn a_carried_document_is_plain_and_reads_back_as_the_live_data() {
        let secret = live(
            "Secret",
            "app-a",
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
                   "binaryData": null}),
        );
        let document = to_yaml(&plain(&secret, false));
        assert_eq!(
            document,
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app-a\n  namespace: shop\n  labels:\n    app.kubernetes.io/managed-by: Helm\n    reconfig/versioned-from: app\n  annotations:\n    reconfig/carried: \"true\"\n    reconfig/data-checksum: ab12\n    team: web\nimmutable: true\ntype: kubernetes.io/tls\ndata:\n  tls.crt: Y2VydA==\n  tls.key: a2V5\n"
        );
        // Values any reader could take for another type, or that need escapes, read back exact.
        let tricky = json!({
            "yes": "no", "n": "on", "num": "0.10", "empty": "", "tab": "a\tb",
            "lines": "a: 1\n- b\n", "quote": "say \"hi\" \\ #x", "unicode": "ü\u{2028}\u{85}\u{7f}\u{1}",
            "null": "~", "colon": "a: b", "spaces": " lead", "star": "*alias", "true": "True",
        });
        let cm = live(
            "ConfigMap",
            "app-b",
            json!({"data": tricky, "binaryData": {"bin": "AAEC"}}),
        );
        let plain_cm = plain(&cm, false);
        assert_eq!(read_back(&to_yaml(&plain_cm)), plain_cm);
        assert_eq!(plain_cm["data"], tricky);
        assert_eq!(plain_cm["binaryData"]["bin"], "AAEC");
    }

    #[test]
    fn server_and_owner_fields_are_dropped_and_keep_adds_its_annotations() {
        let mut cm = live("ConfigMap", "app-a", json!({"data": {"k": "v"}}));
        cm["metadata"]["annotations"][ARGOCD_SYNC_OPTIONS] = json!("Replace=true,Prune=true");
        let p = plain(&cm, false);
        let meta = p["metadata"].as_object().expect("metadata");
        let mut keys: Vec<&String> = meta.keys().collect();
        keys.sort();
        assert_eq!(keys, ["annotations", "labels", "name", "namespace"]);
        let annotations = &p["metadata"]["annotations"];
        assert_eq!(
            annotations,
            &json!({"reconfig/data-checksum": "ab12", "team": "web", CARRIED: "true",
                    ARGOCD_SYNC_OPTIONS: "Replace=true,Prune=true"})
        );
        assert_eq!(p["immutable"], true);
        let kept = plain(&cm, true);
        assert_eq!(
            kept["metadata"]["annotations"][HELM_RESOURCE_POLICY],
            "keep"
        );
        assert_eq!(
            kept["metadata"]["annotations"][ARGOCD_SYNC_OPTIONS],
            "Replace=true,Prune=false"
        );
        // A live object without labels gets no empty map.
        let bare = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "x", "namespace": "shop"}, "data": {}});
        assert_eq!(
            to_yaml(&plain(&bare, false)),
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: shop\n  annotations:\n    reconfig/carried: \"true\"\nimmutable: true\ndata: {}\n"
        );
    }

    #[test]
    fn scalars_are_plain_only_when_unambiguous() {
        for plain in [
            "v1",
            "shop-config-1a2b3c4d5e",
            "app.kubernetes.io/name",
            "e1",
            "a_b",
        ] {
            assert_eq!(scalar(plain), plain);
        }
        for quoted in [
            "", "1", "0x1f", "yes", "No", "ON", "null", "true", "-x", ".inf", "a b", "a:b", "~",
        ] {
            assert!(scalar(quoted).starts_with('"'), "{quoted}");
        }
        assert_eq!(quote("a\"b\\c\u{2028}"), "\"a\\\"b\\\\c\\u2028\"");
    }
}
