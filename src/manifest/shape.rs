//! A pod template reduced to a digest per field, so `plan` can say what else restarts it.
//!
//! The checksum covers only config. A pod template restarts for any change to it: an image,
//! an environment variable, or a chart's own text hash (`checksum/cm`) that changes for a
//! ConfigMap annotation reconfig rightly ignores. Keeping whole trees for every workload would
//! undo the compact summaries `analysis` keeps, so each template becomes a sorted list of
//! leaf paths with a 128-bit digest of each value: enough to name what changed, never the
//! value itself (a template can hold a Secret's value in `env[].value`).

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use super::node::{Node, Value};

/// Separates a path's segments: annotation keys hold dots and slashes, never this.
const SEP: char = '\u{1f}';

/// One leaf: the path of mapping keys and list items down to it, and its value's digest.
type Leaf = (String, [u8; 16]);

/// A pod template's fields as digests, sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateShape {
    leaves: Vec<Leaf>,
}

/// How the two sides of a comparison were made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sides {
    /// Two renders: any field present on one side only, or different, is a change.
    Renders,
    /// The old side was read from the cluster, which fills in defaults (`imagePullPolicy`,
    /// `terminationMessagePath`, a port's `protocol`): only fields the render sets count.
    Live,
}

/// What differs, as paths of segments (one change per leaf).
pub type Changed = Vec<Vec<String>>;

impl TemplateShape {
    /// Reduces a pod template node to its leaves.
    pub fn of(template: &Node<'_>) -> Self {
        let mut leaves = BTreeMap::new();
        walk(template, &mut String::new(), &mut leaves);
        TemplateShape {
            leaves: leaves.into_iter().collect(),
        }
    }

    /// The leaves that changed from `old` to `new`, each as its path's segments.
    pub fn changes(old: &TemplateShape, new: &TemplateShape, sides: Sides) -> Changed {
        let before: BTreeMap<&str, &[u8; 16]> =
            old.leaves.iter().map(|(p, d)| (p.as_str(), d)).collect();
        let after: BTreeMap<&str, &[u8; 16]> =
            new.leaves.iter().map(|(p, d)| (p.as_str(), d)).collect();
        let mut out: Vec<&str> = Vec::new();
        for (path, digest) in &after {
            if before.get(path) != Some(digest) {
                out.push(path);
            }
        }
        if sides == Sides::Renders {
            out.extend(before.keys().filter(|p| !after.contains_key(*p)));
        }
        out.sort_unstable();
        out.into_iter()
            .map(|p| p.split(SEP).map(str::to_string).collect())
            .collect()
    }

    /// Whether the leaf at `path` (segments) holds `value`; `false` when absent.
    pub fn holds(&self, path: &[&str], value: &str) -> bool {
        let key = path.join(&SEP.to_string());
        self.leaves
            .binary_search_by(|(p, _)| p.as_str().cmp(&key))
            .is_ok_and(|i| self.leaves[i].1 == digest(value))
    }

    /// Whether the template has a leaf at `path` (segments).
    pub fn has(&self, path: &[&str]) -> bool {
        let key = path.join(&SEP.to_string());
        self.leaves
            .binary_search_by(|(p, _)| p.as_str().cmp(&key))
            .is_ok()
    }
}

fn digest(text: &str) -> [u8; 16] {
    let full = Sha256::digest(text.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// Records every leaf under `node`. Lists of mappings that all have distinct `name`s
/// (containers, volumes, env) are keyed by name, so a reordering or an insertion names the
/// item that changed rather than every later index.
fn walk(node: &Node<'_>, path: &mut String, leaves: &mut BTreeMap<String, [u8; 16]>) {
    let len = path.len();
    let push = |path: &mut String, segment: &str| {
        if !path.is_empty() {
            path.push(SEP);
        }
        path.push_str(segment);
    };
    match node.value() {
        Value::Scalar(..) | Value::Shared(_) => {
            // A null and an empty string are both "nothing" to the API server's decoder.
            let text = if node.is_null() {
                ""
            } else {
                node.as_str().unwrap_or("")
            };
            leaves.insert(path.clone(), digest(text));
        }
        Value::Mapping(entries, _) if entries.is_empty() => {
            leaves.insert(path.clone(), digest("{}"));
        }
        Value::Mapping(entries, _) => {
            // A key written twice: the last one counts, as for the API server.
            let mut seen: BTreeMap<&str, &Node<'_>> = BTreeMap::new();
            for (k, v) in entries {
                if let Some(k) = k.as_str() {
                    seen.insert(k, v);
                }
            }
            for (k, v) in seen {
                push(path, k);
                walk(v, path, leaves);
                path.truncate(len);
            }
        }
        Value::Sequence(items, _) if items.is_empty() => {
            leaves.insert(path.clone(), digest("[]"));
        }
        Value::Sequence(items, _) => {
            let names: Option<Vec<&str>> = items.iter().map(|i| i.get_str("name")).collect();
            let named = names.filter(|n| {
                let mut sorted = n.clone();
                sorted.sort_unstable();
                sorted.dedup();
                sorted.len() == n.len()
            });
            for (i, item) in items.iter().enumerate() {
                let segment = match &named {
                    Some(names) => format!("[{}]", names[i]),
                    None => format!("[{i}]"),
                };
                push(path, &segment);
                walk(item, path, leaves);
                path.truncate(len);
            }
        }
    }
}

/// Says what a changed leaf is, in a user's words: `container app image`,
/// `annotation checksum/cm`, `env of container app`, `volume data`, `spec.nodeSelector`.
pub fn describe(path: &[String]) -> String {
    let strip = |s: &str| {
        s.strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .map(str::to_string)
            .unwrap_or_else(|| s.to_string())
    };
    let seg: Vec<&str> = path.iter().map(String::as_str).collect();
    match seg.as_slice() {
        ["metadata", "annotations", key, ..] => format!("annotation {key}"),
        ["metadata", "labels", key, ..] => format!("label {key}"),
        ["spec", list @ ("containers" | "initContainers" | "ephemeralContainers"), item, rest @ ..] =>
        {
            let what = match *list {
                "containers" => "container",
                "initContainers" => "init container",
                _ => "ephemeral container",
            };
            match rest.first() {
                Some(field) => format!("{what} {} {field}", strip(item)),
                None => format!("{what} {}", strip(item)),
            }
        }
        ["spec", "volumes", item, ..] => format!("volume {}", strip(item)),
        [first, second, ..] => format!("{first}.{second}"),
        [only] => (*only).to_string(),
        [] => "the template".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::Limits;
    use crate::manifest::parse::parse_documents;

    fn shape(yaml: &str) -> TemplateShape {
        let docs = parse_documents(yaml, Limits::default()).expect("yaml");
        TemplateShape::of(docs[0].as_ref().expect("a document"))
    }

    fn changes(old: &str, new: &str, sides: Sides) -> Vec<String> {
        TemplateShape::changes(&shape(old), &shape(new), sides)
            .iter()
            .map(|p| describe(p))
            .collect()
    }

    const BASE: &str = "metadata:
  annotations: {checksum/cm: abc, checksum/config: x}
  labels: {app: web}
spec:
  containers:
  - name: web
    image: web:1
    env: [{name: A, value: one}, {name: B, value: two}]
  - name: side
    image: side:1
  volumes:
  - {name: data, configMap: {name: app}}
";

    #[test]
    fn names_what_changed_in_a_users_words() {
        assert!(changes(BASE, BASE, Sides::Renders).is_empty());
        let new = BASE
            .replace("web:1", "web:2")
            .replace("checksum/cm: abc", "checksum/cm: abd")
            .replace("value: two", "value: 2")
            .replace("name: app}", "name: app2}");
        assert_eq!(
            changes(BASE, &new, Sides::Renders),
            vec![
                "annotation checksum/cm",
                "container web env",
                "container web image",
                "volume data",
            ]
        );
        // Containers are matched by name: a reordering changes nothing.
        let reordered = BASE.replace(
            "  - name: web\n    image: web:1\n    env: [{name: A, value: one}, {name: B, value: two}]\n  - name: side\n    image: side:1\n",
            "  - name: side\n    image: side:1\n  - name: web\n    image: web:1\n    env: [{name: A, value: one}, {name: B, value: two}]\n",
        );
        assert_ne!(reordered, BASE);
        assert!(changes(BASE, &reordered, Sides::Renders).is_empty());
    }

    #[test]
    fn a_live_side_may_have_fields_the_render_does_not_set() {
        let live = BASE.replace(
            "    image: side:1\n",
            "    image: side:1\n    imagePullPolicy: IfNotPresent\n    terminationMessagePath: /dev/termination-log\n",
        );
        assert_eq!(
            changes(&live, BASE, Sides::Renders),
            vec![
                "container side imagePullPolicy",
                "container side terminationMessagePath"
            ]
        );
        assert!(changes(&live, BASE, Sides::Live).is_empty());
        // What the render sets still counts.
        assert_eq!(
            changes(&live, &BASE.replace("side:1", "side:2"), Sides::Live),
            vec!["container side image"]
        );
    }

    #[test]
    fn nothing_and_null_are_the_same_and_values_are_checked() {
        let a = shape("metadata:\n  annotations:\n    x: ~\n");
        let b = shape("metadata:\n  annotations:\n    x: \"\"\n");
        assert!(TemplateShape::changes(&a, &b, Sides::Renders).is_empty());
        assert!(a.holds(&["metadata", "annotations", "x"], ""));
        assert!(!a.holds(&["metadata", "annotations", "x"], "y"));
        assert!(a.has(&["metadata", "annotations", "x"]));
        assert!(!a.has(&["metadata", "annotations", "y"]));
    }
}
