//! AdmissionReview `admission.k8s.io/v1`: the request's JSON → what to judge, and a verdict →
//! the response's JSON. No I/O, no policy: `server` puts them together.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use crate::config::{self, ConfigFile};
use crate::manifest::object::ConfigKind;
use crate::policy::Identity;

/// The most findings spelt out in one message or warnings list; the rest are counted.
const MAX_LISTED: usize = 20;

#[derive(Deserialize)]
struct Review {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    request: Option<Request>,
}

#[derive(Deserialize)]
struct Request {
    uid: String,
    kind: GroupVersionKind,
    operation: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    object: Option<Object>,
    #[serde(default, rename = "dryRun")]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    kind: String,
}

#[derive(Deserialize, Default)]
struct Object {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    data: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "binaryData")]
    binary_data: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "stringData")]
    string_data: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "generateName")]
    generate_name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// What a review asks.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// A ConfigMap or Secret created or updated: judge it.
    Judge(Candidate),
    /// Anything else: allowed untouched.
    Pass { uid: String, operation: String },
}

/// A ConfigMap or Secret to judge: its identity and its keys as files.
#[derive(Debug, PartialEq, Eq)]
pub struct Candidate {
    pub uid: String,
    pub operation: String,
    pub dry_run: bool,
    pub identity: Identity,
    pub files: Vec<ConfigFile>,
}

/// Reads a review; an error is a malformed request (HTTP 400), worded for the caller.
pub fn read(body: &[u8]) -> Result<Asked, String> {
    let review: Review =
        serde_json::from_slice(body).map_err(|e| format!("not an AdmissionReview: {e}"))?;
    if review.api_version != "admission.k8s.io/v1" || review.kind != "AdmissionReview" {
        return Err(format!(
            "expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got {}, {} (set admissionReviewVersions: [v1])",
            review.api_version, review.kind
        ));
    }
    let request = review.request.ok_or("the AdmissionReview has no request")?;
    let kind = match (request.kind.group.as_str(), request.kind.kind.as_str()) {
        ("", "ConfigMap") => ConfigKind::ConfigMap,
        ("", "Secret") => ConfigKind::Secret,
        _ => return Ok(pass(request)),
    };
    if !matches!(request.operation.as_str(), "CREATE" | "UPDATE") {
        return Ok(pass(request));
    }
    let object = request
        .object
        .ok_or_else(|| format!("the {} request has no object", request.operation))?;
    let name = object
        .metadata
        .name
        .filter(|n| !n.is_empty())
        .or(request.name.filter(|n| !n.is_empty()))
        .or(object.metadata.generate_name)
        .unwrap_or_default();
    let identity = Identity {
        kind,
        namespace: request
            .namespace
            .filter(|n| !n.is_empty())
            .or(object.metadata.namespace),
        name,
        labels: Some(object.metadata.labels.unwrap_or_default()),
    };
    let files = files(
        &identity,
        kind,
        object.data,
        object.binary_data,
        object.string_data,
    )?;
    Ok(Asked::Judge(Candidate {
        uid: request.uid,
        operation: request.operation,
        dry_run: request.dry_run.unwrap_or(false),
        identity,
        files,
    }))
}

fn pass(request: Request) -> Asked {
    Asked::Pass {
        uid: request.uid,
        operation: request.operation,
    }
}

/// The keys as a volume would hold them: ConfigMap `data` as text, `binaryData` and Secret
/// `data` base64-decoded, Secret `stringData` as text (the API server folds it into `data`
/// before admission; accepted anyway).
fn files(
    identity: &Identity,
    kind: ConfigKind,
    data: Option<BTreeMap<String, String>>,
    binary: Option<BTreeMap<String, String>>,
    string_data: Option<BTreeMap<String, String>>,
) -> Result<Vec<ConfigFile>, String> {
    let label = identity.label();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let decode = |field: &str, key: &str, value: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|e| format!("{label}: {field} key {key:?} is not base64: {e}"))
    };
    match kind {
        ConfigKind::ConfigMap => {
            for (key, value) in binary.unwrap_or_default() {
                files.insert(key.clone(), decode("binaryData", &key, &value)?);
            }
            for (key, value) in data.unwrap_or_default() {
                files.insert(key, value.into_bytes());
            }
        }
        ConfigKind::Secret => {
            for (key, value) in data.unwrap_or_default() {
                files.insert(key.clone(), decode("data", &key, &value)?);
            }
            for (key, value) in string_data.unwrap_or_default() {
                files.insert(key, value.into_bytes());
            }
        }
    }
    Ok(files
        .into_iter()
        .map(|(name, bytes)| ConfigFile {
            path: format!("{label}/{name}"),
            name,
            bytes,
            mode: config::DEFAULT_MODE,
        })
        .collect())
}

/// The answer: allowed unless `denials`, with `warnings`; messages already redacted.
pub fn response(uid: &str, denials: &[String], warnings: &[String]) -> Json {
    let mut answer = json!({ "uid": uid, "allowed": denials.is_empty() });
    if !denials.is_empty() {
        answer["status"] = json!({
            "code": 403,
            "reason": "Forbidden",
            "message": format!("denied by the reconfig policy: {}", listed(denials, "; ")),
        });
    }
    if !warnings.is_empty() {
        let mut list: Vec<Json> = warnings
            .iter()
            .take(MAX_LISTED)
            .map(|w| Json::String(w.clone()))
            .collect();
        if warnings.len() > MAX_LISTED {
            list.push(Json::String(format!(
                "and {} more warning(s)",
                warnings.len() - MAX_LISTED
            )));
        }
        answer["warnings"] = Json::Array(list);
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": answer,
    })
}

fn listed(items: &[String], separator: &str) -> String {
    let mut text = items
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(separator);
    if items.len() > MAX_LISTED {
        text.push_str(&format!("{separator}and {} more", items.len() - MAX_LISTED));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(kind: &str, operation: &str, object: Json) -> Vec<u8> {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "resource": {"group": "", "version": "v1", "resource": "configmaps"},
                "requestKind": {"group": "", "version": "v1", "kind": kind},
                "name": "app",
                "namespace": "prod",
                "operation": operation,
                "userInfo": {"username": "admin"},
                "object": object,
                "oldObject": null,
                "dryRun": true,
                "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
            }
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn configmaps_and_secrets_become_files() {
        let object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": "prod", "labels": {"reconfig/validate": "true"}},
            "data": {"app.yaml": "port: 1\n"},
            "binaryData": {"blob": "aGk="}
        });
        let Ok(Asked::Judge(candidate)) = read(&review("ConfigMap", "CREATE", object)) else {
            panic!("a candidate");
        };
        assert!(candidate.dry_run);
        assert_eq!(candidate.identity.label(), "configmap/app");
        assert_eq!(candidate.identity.namespace.as_deref(), Some("prod"));
        let files: Vec<(&str, &str, &[u8])> = candidate
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.name.as_str(), &f.bytes[..]))
            .collect();
        assert_eq!(
            files,
            vec![
                ("configmap/app/app.yaml", "app.yaml", &b"port: 1\n"[..]),
                ("configmap/app/blob", "blob", &b"hi"[..]),
            ]
        );

        let secret = json!({"metadata": {"name": "db"}, "data": {"pw": "aHVudGVyMg=="}});
        let Ok(Asked::Judge(candidate)) = read(&review("Secret", "UPDATE", secret)) else {
            panic!("a candidate");
        };
        assert_eq!(candidate.files[0].bytes, b"hunter2");
        assert_eq!(candidate.files[0].path, "secret/db/pw");
    }

    #[test]
    fn everything_else_passes_and_garbage_is_refused() {
        for (kind, op) in [
            ("ConfigMap", "DELETE"),
            ("Pod", "CREATE"),
            ("Secret", "CONNECT"),
        ] {
            assert!(matches!(
                read(&review(kind, op, json!({}))),
                Ok(Asked::Pass { .. })
            ));
        }
        assert!(read(b"{").is_err());
        assert!(read(b"[]").is_err());
        assert!(
            read(br#"{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}"#)
                .is_err()
        );
        assert!(
            read(br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#).is_err()
        );
        let bad = json!({"metadata": {"name": "db"}, "data": {"pw": "not base64!"}});
        assert!(read(&review("Secret", "CREATE", bad)).is_err());
        let mut no_object = review("ConfigMap", "CREATE", Json::Null);
        assert!(read(&no_object).is_err());
        no_object.truncate(no_object.len() / 2);
        assert!(read(&no_object).is_err());
    }

    #[test]
    fn responses_echo_the_uid() {
        let allowed = response("u1", &[], &[]);
        assert_eq!(allowed["response"], json!({"uid": "u1", "allowed": true}));
        let denied = response("u2", &["a".into(), "b".into()], &["w".into()]);
        assert_eq!(denied["response"]["allowed"], json!(false));
        assert_eq!(denied["response"]["status"]["code"], json!(403));
        assert_eq!(
            denied["response"]["status"]["message"],
            json!("denied by the reconfig policy: a; b")
        );
        assert_eq!(denied["response"]["warnings"], json!(["w"]));
        let many: Vec<String> = (0..30).map(|i| i.to_string()).collect();
        let capped = response("u3", &many, &many);
        assert_eq!(
            capped["response"]["warnings"].as_array().map(Vec::len),
            Some(21)
        );
        assert!(capped["response"]["status"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("; and 10 more")));
    }
}
