//! Kubernetes object identity, and the data of ConfigMaps and Secrets as a pod sees it.
//!
//! What counts is what the API server would store: keys it accepts (file names, never paths),
//! base64 as Go decodes it, and a `List`'s items as objects of their own.

use std::fmt;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use saphyr_parser::ScalarStyle;

use super::edit::RenameSlots;
use super::node::{Node, Value, GO_BASE64};
use super::stream::Problem;

/// Identity fields every object carries.
#[derive(Debug, Clone)]
pub struct ObjectMeta<'n, 'a> {
    /// API group: `apps` for `apps/v1`, empty for the core `v1`.
    pub group: &'n str,
    pub kind: &'n str,
    pub name: &'n str,
    pub namespace: Option<&'n str>,
    pub annotations: Option<&'n Node<'a>>,
}

impl<'n, 'a> ObjectMeta<'n, 'a> {
    /// Reads identity; `None` when the document is not a Kubernetes object.
    pub fn read(root: &'n Node<'a>) -> Option<Self> {
        let api_version = root.get_str("apiVersion")?;
        let kind = root.get_str("kind")?;
        let metadata = root.get("metadata");
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        Some(ObjectMeta {
            group,
            kind,
            name: metadata.and_then(|m| m.get_str("name")).unwrap_or(""),
            namespace: metadata
                .and_then(|m| m.get_str("namespace"))
                .filter(|ns| !ns.is_empty()),
            annotations: metadata.and_then(|m| m.get("annotations")),
        })
    }

    pub fn annotation(&self, key: &str) -> Option<&'n str> {
        self.annotations.and_then(|a| a.get_str(key))
    }
}

/// The objects a document holds: itself, or the items of a `List` (`kind: List`, what
/// `kubectl get -o yaml` prints, or a typed list such as `DeploymentList`).
///
/// kubectl expands any kind ending in `List` that has `items`; so does this. Items that are
/// not objects (no `apiVersion` or `kind`) are left out, as a document that is not one is.
/// A List inside a List is not expanded further.
pub fn objects<'n, 'a>(root: &'n Node<'a>) -> Vec<(&'n Node<'a>, ObjectMeta<'n, 'a>)> {
    let Some(meta) = ObjectMeta::read(root) else {
        return Vec::new();
    };
    let is_sequence = |node: &Node<'_>| node.entries().is_none() && node.as_str().is_none();
    let list_items = root
        .get("items")
        .filter(|items| meta.kind.ends_with("List") && (items.is_null() || is_sequence(items)));
    match list_items {
        Some(items) => items
            .items()
            .iter()
            .filter_map(|item| ObjectMeta::read(item).map(|meta| (item, meta)))
            .collect(),
        None => vec![(root, meta)],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKind {
    ConfigMap,
    Secret,
}

impl ConfigKind {
    /// Parses the lower-case spelling users write in annotations and flags.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "configmap" | "configmaps" | "cm" => Some(ConfigKind::ConfigMap),
            "secret" | "secrets" => Some(ConfigKind::Secret),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::ConfigMap => "ConfigMap",
            ConfigKind::Secret => "Secret",
        }
    }
}

impl fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which ConfigMap or Secret: its kind, namespace (the stream's default filled in) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub kind: ConfigKind,
    pub namespace: String,
    pub name: String,
}

impl ObjectId {
    pub fn new(kind: ConfigKind, namespace: &str, name: &str) -> Self {
        ObjectId {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// Kind and name, as messages name an object a workload uses (its namespace is the workload's).
    pub fn kind_and_name(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }
}

/// One key of a ConfigMap or Secret, reduced to a digest of the bytes a pod reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDigest {
    pub digest: [u8; 32],
    /// `binaryData` keys become files but never environment variables.
    pub in_env: bool,
}

/// A ConfigMap or Secret from the stream, reduced to what pods can observe.
///
/// One is kept for every object of the stream until output, so it is kept small: 64 bytes,
/// with what versioning reads behind a box that most objects never fill.
#[derive(Debug, Clone)]
pub struct ConfigObject {
    pub kind: ConfigKind,
    pub name: Box<str>,
    pub namespace: Option<Box<str>>,
    pub keys: KeyDigests,
    versioning: Option<Box<Versioning>>,
}

/// What `inject --versioned` reads of an object; absent where all of it is absent.
#[derive(Debug, Clone, Default)]
struct Versioning {
    versioned_from: Option<String>,
    versioned: Option<bool>,
    carried: bool,
    rename: Option<RenameSlots>,
}

/// The keys of one ConfigMap or Secret with their digests, sorted by key: a map's reading
/// (`get`, `keys`, `iter`) in one exact allocation. It is kept for every object of the stream
/// until output, and a `BTreeMap` costs a 640-byte node even for one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyDigests(Box<[(String, KeyDigest)]>);

impl KeyDigests {
    pub fn get(&self, key: &str) -> Option<&KeyDigest> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &KeyDigest)> {
        self.0.iter().map(|(k, d)| (k, d))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, KeyDigest)> for KeyDigests {
    /// A key given twice keeps the last value, as a map's `collect` does (Secret `stringData`
    /// comes after `data`, and wins).
    fn from_iter<I: IntoIterator<Item = (String, KeyDigest)>>(iter: I) -> Self {
        let mut entries: Vec<(String, KeyDigest)> = iter.into_iter().collect();
        // Stable: equal keys keep their order, so the last of them is the one to keep.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(String, KeyDigest)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        KeyDigests(kept.into_boxed_slice())
    }
}

impl std::ops::Index<&str> for KeyDigests {
    type Output = KeyDigest;

    /// The digest of `key`, which must be there (as with a map's indexing).
    fn index(&self, key: &str) -> &KeyDigest {
        self.get(key)
            .unwrap_or_else(|| panic!("no key {key:?} in this object"))
    }
}

impl<'a> IntoIterator for &'a KeyDigests {
    type Item = (&'a String, &'a KeyDigest);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, KeyDigest)>,
        fn(&'a (String, KeyDigest)) -> (&'a String, &'a KeyDigest),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, d)| (k, d))
    }
}

/// Annotation by which a ConfigMap or Secret asks to be versioned (`"true"`) or not (`"false"`).
pub const VERSIONED: &str = "reconfig/versioned";
/// Label a versioned object carries: the name it had before it was versioned.
pub const VERSIONED_FROM: &str = "reconfig/versioned-from";
/// Annotation on an old version `inject --carry` copied from the cluster into the render.
pub const CARRIED: &str = "reconfig/carried";

/// Digests a value; Secrets use HMAC when a key is given so their digests cannot be brute-forced.
pub fn value_digest(kind: ConfigKind, secret_key: Option<&[u8]>, bytes: &[u8]) -> [u8; 32] {
    match (kind, secret_key) {
        (ConfigKind::Secret, Some(key)) => {
            let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
            mac.update(bytes);
            mac.finalize().into_bytes().into()
        }
        _ => Sha256::digest(bytes).into(),
    }
}

/// One key of a ConfigMap or Secret, with the bytes a pod reads for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataItem {
    pub key: String,
    pub bytes: Vec<u8>,
    /// `binaryData` keys become files but never environment variables.
    pub in_env: bool,
}

/// The keys of a ConfigMap or Secret, decoded; `Ok(None)` for other kinds.
///
/// Base64 fields come first, so Secret `stringData` wins over `data` when both
/// are collected into a map, as in the API server.
pub fn config_data(
    root: &Node<'_>,
    meta: &ObjectMeta<'_, '_>,
) -> Result<Option<(ConfigKind, Vec<DataItem>)>, Problem> {
    let kind = match (meta.group, meta.kind) {
        ("", "ConfigMap") => ConfigKind::ConfigMap,
        ("", "Secret") => ConfigKind::Secret,
        _ => return Ok(None),
    };
    let (plain, encoded) = match kind {
        ConfigKind::ConfigMap => ("data", "binaryData"),
        ConfigKind::Secret => ("stringData", "data"),
    };
    let mut items = Vec::new();
    for (field, is_encoded) in [(encoded, true), (plain, false)] {
        for (key, value) in data_entries(root, field)? {
            let name = key
                .as_str()
                .ok_or_else(|| Problem::at(key, format!("{kind} keys must be strings")))?;
            if let Err(why) = check_key(name) {
                return Err(Problem::at(
                    key,
                    format!("{kind} {field} key {name:?} is not a valid key: {why}"),
                ));
            }
            let text = scalar(kind, field, key, value)?;
            let bytes = if is_encoded {
                decode_base64(text).map_err(|e| {
                    Problem::at(
                        value,
                        format!("{kind} {field} key \"{name}\" is not valid base64: {e}"),
                    )
                })?
            } else {
                text.as_bytes().to_vec()
            };
            items.push(DataItem {
                key: name.to_string(),
                bytes,
                in_env: !is_encoded || kind == ConfigKind::Secret,
            });
        }
    }
    Ok(Some((kind, items)))
}

impl ConfigObject {
    /// An object with no word on versioning.
    pub fn new(kind: ConfigKind, name: &str, namespace: Option<&str>, keys: KeyDigests) -> Self {
        ConfigObject {
            kind,
            name: name.into(),
            namespace: namespace.map(Box::from),
            keys,
            versioning: None,
        }
    }

    /// The name pods and people know it by: the name it had before it was versioned.
    pub fn logical_name(&self) -> &str {
        self.versioned_from().unwrap_or(&self.name)
    }

    /// The label [`VERSIONED_FROM`]: the name the object had before `inject --versioned`
    /// renamed it.
    pub fn versioned_from(&self) -> Option<&str> {
        self.versioning.as_ref()?.versioned_from.as_deref()
    }

    /// The annotation [`VERSIONED`]: the object's own choice, when it makes one.
    pub fn versioned(&self) -> Option<bool> {
        self.versioning.as_ref()?.versioned
    }

    /// The annotation [`CARRIED`]: an old version `inject --carry` copied from the cluster,
    /// which `inject` never renames or edits.
    pub fn carried(&self) -> bool {
        self.versioning.as_ref().is_some_and(|v| v.carried)
    }

    /// Where renaming it edits the text; read only when the stream may version objects.
    pub fn rename(&self) -> Option<&RenameSlots> {
        self.versioning.as_ref()?.rename.as_ref()
    }

    /// Keeps where renaming it edits the text.
    pub fn set_rename(&mut self, slots: RenameSlots) {
        self.versioning.get_or_insert_with(Box::default).rename = Some(slots);
    }

    /// Its identity, with `default_namespace` for an object that names none.
    pub fn id(&self, default_namespace: &str) -> ObjectId {
        ObjectId::new(
            self.kind,
            self.namespace.as_deref().unwrap_or(default_namespace),
            &self.name,
        )
    }

    /// Reads a ConfigMap or Secret as per-key digests; other kinds give `Ok(None)`.
    pub fn read(
        root: &Node<'_>,
        meta: &ObjectMeta<'_, '_>,
        secret_key: Option<&[u8]>,
    ) -> Result<Option<Self>, Problem> {
        let Some((kind, items)) = config_data(root, meta)? else {
            return Ok(None);
        };
        let keys = items
            .into_iter()
            .map(|item| {
                let digest = KeyDigest {
                    digest: value_digest(kind, secret_key, &item.bytes),
                    in_env: item.in_env,
                };
                (item.key, digest)
            })
            .collect();
        let versioned_from = root
            .path("metadata.labels")
            .and_then(|labels| labels.get_str(VERSIONED_FROM))
            .filter(|from| !from.is_empty())
            .map(str::to_string);
        let versioned = match meta.annotations.and_then(|a| a.entry(VERSIONED)) {
            None => None,
            Some((_, value)) => match value.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("true") => Some(true),
                Some("false") => Some(false),
                _ => {
                    return Err(Problem::at(
                        value,
                        format!("`{VERSIONED}` must be \"true\" or \"false\""),
                    ))
                }
            },
        };
        let carried = meta
            .annotations
            .and_then(|a| a.entry(CARRIED))
            .and_then(|(_, value)| value.as_str())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let mut object = ConfigObject::new(kind, meta.name, meta.namespace, keys);
        if versioned_from.is_some() || versioned.is_some() || carried {
            object.versioning = Some(Box::new(Versioning {
                versioned_from,
                versioned,
                carried,
                rename: None,
            }));
        }
        Ok(Some(object))
    }
}

fn data_entries<'n, 'a>(
    root: &'n Node<'a>,
    field: &str,
) -> Result<&'n [(Node<'a>, Node<'a>)], Problem> {
    match root.get(field) {
        None => Ok(&[]),
        Some(node) if node.is_null() => Ok(&[]),
        Some(node) => node.entries().ok_or_else(|| {
            Problem::at(
                node,
                format!("`{field}` must be a mapping of keys to values"),
            )
        }),
    }
}

/// A value's text as the API server stores it: a null (`~`, `null`, nothing) is `""`,
/// since sigs.k8s.io/yaml makes it JSON null and a Go string field decodes that as empty.
fn scalar<'n>(
    kind: ConfigKind,
    field: &str,
    key: &Node<'_>,
    value: &'n Node<'_>,
) -> Result<&'n str, Problem> {
    if value.is_null() {
        return Ok("");
    }
    value.as_str().ok_or_else(|| {
        Problem::at(
            value,
            format!(
                "{kind} {field} key \"{}\" must have a string value, not a nested structure",
                key.as_str().unwrap_or("?")
            ),
        )
    })
}

/// The longest key the API server accepts (a DNS subdomain's length).
pub const MAX_KEY_LEN: usize = 253;

/// Checks a ConfigMap or Secret key as the API server does (`IsConfigMapKey`): a file name of
/// `[-._a-zA-Z0-9]`, at most 253 characters, neither `.` nor `..` nor starting with `..`.
/// Keys become file names in volumes, so anything else (`../x`, `/etc/passwd`) is refused.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        Err("it is empty")
    } else if key.len() > MAX_KEY_LEN {
        Err("it is longer than 253 characters")
    } else if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Err("keys are file names of letters, digits, '-', '_' and '.' only")
    } else if key == "." || key == ".." {
        Err("it must not be '.' or '..'")
    } else if key.starts_with("..") {
        Err("it must not start with '..'")
    } else {
        Ok(())
    }
}

/// Values of a ConfigMap's or Secret's data fields that are valid YAML but not strings
/// (`port: 8080`, `enabled: true`): the API server refuses such an object, since
/// sigs.k8s.io/yaml types them (YAML 1.1) and a Go string cannot hold a number or a boolean.
pub fn non_string_values(root: &Node<'_>, meta: &ObjectMeta<'_, '_>) -> Vec<Problem> {
    let fields: &[&str] = match (meta.group, meta.kind) {
        ("", "ConfigMap") => &["data", "binaryData"],
        ("", "Secret") => &["data", "stringData"],
        _ => return Vec::new(),
    };
    let mut found = Vec::new();
    for field in fields {
        let Some(entries) = root.get(field).and_then(Node::entries) else {
            continue;
        };
        for (key, value) in entries {
            if let Value::Scalar(name, ScalarStyle::Plain) = key.value() {
                if let Some(what) = yaml11_type(name) {
                    found.push(Problem::at(
                        key,
                        format!(
                            "{} {field} key \"{name}\" is {what} to YAML 1.1: Helm and kubectl \
                             (sigs.k8s.io/yaml) store it under their spelling of that value, not \
                             as written; quote it",
                            meta.kind
                        ),
                    ));
                }
            }
            let Value::Scalar(text, ScalarStyle::Plain) = value.value() else {
                continue;
            };
            if let Some(what) = yaml11_type(text) {
                found.push(Problem::at(
                    value,
                    format!(
                        "{} {field} key \"{}\" has {what} value ({text}), not a string: the API server refuses this object; quote it",
                        meta.kind,
                        key.as_str().unwrap_or("?")
                    ),
                ));
            }
        }
    }
    found
}

/// What go-yaml v2 (under sigs.k8s.io/yaml) makes of a plain scalar that is not a string
/// or a null: `a boolean` or `a number`.
fn yaml11_type(text: &str) -> Option<&'static str> {
    const BOOLEANS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
    ];
    if BOOLEANS.contains(&text) {
        return Some("a boolean");
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(
        unsigned,
        ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN"
    ) {
        return Some("a number");
    }
    let digits: String = unsigned.chars().filter(|&c| c != '_').collect();
    let all = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    let integer = [("0x", 16), ("0o", 8), ("0b", 2)]
        .iter()
        .any(|(prefix, radix)| digits.strip_prefix(prefix).is_some_and(|d| all(d, *radix)))
        || all(&digits, 10);
    let float = || {
        let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
            Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
            None => (digits.as_str(), None),
        };
        let mantissa_ok = match mantissa.split_once('.') {
            Some((whole, fraction)) => {
                (whole.is_empty() && all(fraction, 10))
                    || (all(whole, 10) && (fraction.is_empty() || all(fraction, 10)))
            }
            None => all(mantissa, 10),
        };
        mantissa_ok && exponent.is_none_or(|e| all(e, 10))
    };
    (integer || float()).then_some("a number")
}

/// Decodes base64 as the API server does: `\r` and `\n` are skipped (YAML block values span
/// lines), every other byte counts, so a space or a tab is an error there and here.
fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    GO_BASE64.decode(compact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::node::Limits;
    use crate::manifest::parse::parse_documents;

    fn read(text: &str, key: Option<&[u8]>) -> Result<Option<ConfigObject>, Problem> {
        let docs = parse_documents(text, Limits::default()).expect("yaml");
        let root = docs[0].as_ref().expect("doc");
        let meta = ObjectMeta::read(root).expect("object");
        ConfigObject::read(root, &meta, key)
    }

    #[test]
    fn meta_splits_group_from_version() {
        let docs = parse_documents(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x, namespace: n}\n",
            Limits::default(),
        )
        .expect("yaml");
        let meta = ObjectMeta::read(docs[0].as_ref().expect("doc")).expect("object");
        assert_eq!(
            (meta.group, meta.kind, meta.name, meta.namespace),
            ("apps", "Deployment", "x", Some("n"))
        );
    }

    #[test]
    fn string_data_equals_base64_data() {
        let a = read(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  pw: hunter2\n",
            None,
        )
        .expect("ok")
        .expect("secret");
        let b = read(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  pw: aHVudGVyMg==\n",
            None,
        )
        .expect("ok")
        .expect("secret");
        assert_eq!(a.keys, b.keys);
    }

    #[test]
    fn string_data_wins_over_data() {
        let s = read(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {pw: b2xk}\nstringData: {pw: new}\n",
            None,
        )
        .expect("ok")
        .expect("secret");
        assert_eq!(
            s.keys["pw"].digest,
            value_digest(ConfigKind::Secret, None, b"new")
        );
    }

    #[test]
    fn quoting_does_not_matter() {
        let a = read(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  port: \"8080\"\n",
            None,
        )
        .expect("ok");
        let b = read(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {port: '8080'}\n",
            None,
        )
        .expect("ok");
        assert_eq!(a.expect("cm").keys, b.expect("cm").keys);
    }

    #[test]
    fn binary_data_is_decoded_and_kept_out_of_env() {
        let c = read(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nbinaryData: {blob: aGk=}\n",
            None,
        )
        .expect("ok")
        .expect("cm");
        assert_eq!(
            c.keys["blob"],
            KeyDigest {
                digest: value_digest(ConfigKind::ConfigMap, None, b"hi"),
                in_env: false
            }
        );
    }

    #[test]
    fn keyed_secret_digest_differs_from_plain() {
        let plain = value_digest(ConfigKind::Secret, None, b"pw");
        let keyed = value_digest(ConfigKind::Secret, Some(b"k"), b"pw");
        assert_ne!(plain, keyed);
        assert_eq!(
            value_digest(ConfigKind::ConfigMap, Some(b"k"), b"pw"),
            plain
        );
    }

    #[test]
    fn invalid_base64_is_located() {
        let err = read(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  pw: '!!!'\n",
            None,
        )
        .unwrap_err();
        assert_eq!(err.pos.line, 5);
        assert!(err.message.contains("base64"), "{}", err.message);
    }

    #[test]
    fn nested_values_are_rejected() {
        let err = read(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: {b: c}\n",
            None,
        )
        .unwrap_err();
        assert!(err.message.contains("string value"), "{}", err.message);
    }

    #[test]
    fn base64_is_decoded_as_go_decodes_it() {
        // Checked against Go's base64.StdEncoding.DecodeString.
        for (text, bytes) in [
            ("aGk=", &b"hi"[..]),
            ("aGl=", b"hi"),
            ("aGk=\r\n", b"hi"),
            ("aG\nk=", b"hi"),
            ("\naGk=\n\n", b"hi"),
            ("", b""),
        ] {
            assert_eq!(decode_base64(text).expect(text), bytes, "{text:?}");
        }
        for text in ["aGk", "aGk==", "aG k=", "aGk=\t", "aGk=aGk=", "a"] {
            assert!(decode_base64(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn keys_are_checked_as_the_api_server_does() {
        let long = "k".repeat(MAX_KEY_LEN);
        for ok in ["a", "app.yaml", ".hidden", "x..y", "A-b_c.9", long.as_str()] {
            assert_eq!(check_key(ok), Ok(()), "{ok}");
        }
        let too_long = "k".repeat(MAX_KEY_LEN + 1);
        for bad in [
            "",
            ".",
            "..",
            "..x",
            "../x",
            "/x",
            "a/b",
            "a b",
            "ü",
            too_long.as_str(),
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        let err = read(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  ../x: v\n",
            None,
        )
        .unwrap_err();
        assert_eq!((err.pos.line, err.pos.column), (5, 3));
        assert!(err.message.contains("not a valid key"), "{}", err.message);
    }

    #[test]
    fn a_list_is_its_items() {
        let kinds = |text: &str| -> Vec<String> {
            let docs = parse_documents(text, Limits::default()).expect("yaml");
            objects(docs[0].as_ref().expect("doc"))
                .iter()
                .map(|(_, meta)| format!("{} {}", meta.kind, meta.name))
                .collect()
        };
        assert_eq!(
            kinds("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- not an object\n- {apiVersion: apps/v1, kind: Deployment, metadata: {name: b}}\n"),
            vec!["ConfigMap a", "Deployment b"]
        );
        assert_eq!(
            kinds("apiVersion: apps/v1\nkind: DeploymentList\nitems: [{apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}]\n"),
            vec!["Deployment d"]
        );
        assert!(kinds("apiVersion: v1\nkind: List\nitems: null\n").is_empty());
        // Not a list: a kind without the suffix, or `items` that is not a sequence.
        assert_eq!(
            kinds("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nitems: [x]\n"),
            vec!["ConfigMap c"]
        );
        assert_eq!(
            kinds("apiVersion: x.io/v1\nkind: AllowList\nmetadata: {name: l}\nitems: {a: b}\n"),
            vec!["AllowList l"]
        );
        assert!(kinds("just: data\n").is_empty());
    }

    #[test]
    fn null_values_hash_as_the_empty_string_the_api_server_stores() {
        let keys = |value: &str| {
            read(
                &format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  k: {value}\n"
                ),
                None,
            )
            .expect("ok")
            .expect("cm")
            .keys
        };
        let empty = keys("\"\"");
        for null in ["~", "null", "Null", "NULL", ""] {
            assert_eq!(keys(null), empty, "{null:?}");
        }
        assert_ne!(keys("\"~\""), empty);
        assert_ne!(keys("'null'"), empty);
    }

    /// `non_string_values` of the one object in `text`, as (line, message).
    fn non_string_findings(text: &str) -> Vec<(usize, String)> {
        let docs = parse_documents(text, Limits::default()).expect("yaml");
        let root = docs[0].as_ref().expect("doc");
        let meta = ObjectMeta::read(root).expect("object");
        non_string_values(root, &meta)
            .into_iter()
            .map(|p| (p.pos.line, p.message))
            .collect()
    }

    #[test]
    fn non_string_data_values_are_found() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  port: 8080\n  x: yes\n  ratio: .5\n  s: '8080'\n  t: 12:30\n  nothing: ~\n  v: 1.2.3\n";
        let found = non_string_findings(text);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].0, 5);
        assert!(
            found[0].1.contains("\"port\" has a number value (8080)"),
            "{}",
            found[0].1
        );
        assert!(found[1].1.contains("a boolean"), "{}", found[1].1);
        for (text, what) in [
            ("0x1F", true),
            ("1_000", true),
            ("1e3", true),
            ("0x", false),
            ("12e", false),
            ("oN", false),
            ("-.inf", true),
            ("1.", true),
        ] {
            assert_eq!(yaml11_type(text).is_some(), what, "{text}");
        }
    }

    #[test]
    fn tags_type_data_values_as_go_yaml_does() {
        // `!!str 8080` is the string the API server stores; `!!int "8080"` a number it refuses.
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: !!str 8080\n  b: !!int \"8080\"\n  c: !thing true\n  d: !!bool 'yes'\n";
        let lines: Vec<_> = non_string_findings(text).into_iter().map(|f| f.0).collect();
        assert_eq!(lines, vec![6, 8]);
    }

    #[test]
    fn data_keys_yaml_types_are_found() {
        // sigs.k8s.io/yaml stores `on:` as "true" and `0644:` as "420" (tests/tools/yaml-oracle).
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  on: a\n  'off': b\n  0644: c\n  v1.2: d\n";
        let found = non_string_findings(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].0, found[1].0), (5, 7));
        assert!(
            found[0].1.contains("key \"on\" is a boolean"),
            "{}",
            found[0].1
        );
    }

    #[test]
    fn key_digests_are_sorted_and_keep_the_last_of_a_key() {
        let digest = |n: u8| KeyDigest {
            digest: [n; 32],
            in_env: true,
        };
        let keys: KeyDigests = [("b", 1), ("a", 2), ("b", 3), ("c", 4)]
            .into_iter()
            .map(|(k, n)| (k.to_string(), digest(n)))
            .collect();
        assert_eq!(
            keys.keys().map(String::as_str).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(keys.get("b"), Some(&digest(3)));
        assert_eq!(keys.get("d"), None);
        assert_eq!(keys.len(), 3);
    }

    #[test]
    fn other_kinds_are_not_config() {
        assert!(
            read("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", None)
                .expect("ok")
                .is_none()
        );
    }
}
