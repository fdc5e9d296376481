//! A loopback stand-in for the Kubernetes API server (no real one can run here). It speaks the
//! API's JSON: discovery for a fixed set of kinds, and create, get, list (with label
//! selectors), replace, merge-style patch and delete of any object of those kinds, kept in
//! memory. That covers what `reconfig watch --events --annotate-pod` asks (read and patch its
//! pod, create `events.k8s.io/v1` Events and patch their `series`, checked as the real server
//! checks them) and what `helm install` and `helm upgrade` do. It records every request, and can
//! be told to answer the next requests with an error.
//!
//! Patches of every type (merge, strategic merge, server-side apply) are applied as JSON merge
//! patches: exact for the maps the tests read (annotations), approximate for lists.
//!
//! Lists come back in the real shape (`kind: XList`, `metadata.resourceVersion`, `items`
//! without `apiVersion`/`kind` for built-in kinds), unknown objects and resources as 404
//! `Status` bodies; `put` stores an object without a request: a cluster's objects for
//! `plan --live` and `inject --lookup`, the versions and their readers for `prune`.
//!
//! For `reconfig prune` it answers as the real server does: lists in one namespace or in all
//! (`/api/v1/configmaps`), label selectors of every form (`k`, `!k`, `k=v`, `k!=v`, `k in (…)`,
//! `k notin (…)`; 400 on one it cannot parse), metadata-only lists
//! (`as=PartialObjectMetadataList`), deletes with `preconditions` (409 Conflict on a
//! resourceVersion or uid that no longer matches), `creationTimestamp` on create, and 422 for a
//! change to an `immutable: true` ConfigMap's or Secret's data; `change_before_delete` plays a
//! writer racing a delete.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::http;

/// The kinds served: (group/version, plural, kind).
const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "configmaps", "ConfigMap"),
    ("v1", "secrets", "Secret"),
    ("v1", "services", "Service"),
    ("v1", "pods", "Pod"),
    ("v1", "podtemplates", "PodTemplate"),
    ("v1", "serviceaccounts", "ServiceAccount"),
    ("apps/v1", "deployments", "Deployment"),
    ("apps/v1", "statefulsets", "StatefulSet"),
    ("apps/v1", "daemonsets", "DaemonSet"),
    ("apps/v1", "replicasets", "ReplicaSet"),
    ("apps/v1", "controllerrevisions", "ControllerRevision"),
    ("v1", "replicationcontrollers", "ReplicationController"),
    ("batch/v1", "jobs", "Job"),
    ("batch/v1", "cronjobs", "CronJob"),
    ("events.k8s.io/v1", "events", "Event"),
    ("argoproj.io/v1alpha1", "rollouts", "Rollout"),
];

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The query string, without the `?`.
    pub query: String,
    /// Header lines, lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

#[derive(Default)]
struct State {
    /// Objects by their API path, e.g. `/apis/apps/v1/namespaces/shop/deployments/web`.
    objects: BTreeMap<String, Value>,
    /// Bumped on every write, and stamped on the object as its resourceVersion.
    version: u64,
    requests: Vec<Recorded>,
    /// Answer this many requests with this status before behaving again.
    failing: Option<(u16, usize)>,
    /// (method, plural, status): always answer these requests with this status.
    refusing: Vec<(String, String, u16)>,
    /// Names of objects that change (as a concurrent writer would change them) just before a
    /// DELETE of them is handled.
    change_before_delete: Vec<String>,
}

pub struct FakeApi {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    pub fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake API");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        FakeApi { addr, state }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_pod(&self, namespace: &str, name: &str, uid: &str) {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": uid,
                         "annotations": {"prometheus.io/scrape": "true"}},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        });
        let path = format!("/api/v1/namespaces/{namespace}/pods/{name}");
        self.state().objects.insert(path, pod);
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Value {
        let path = format!("/api/v1/namespaces/{namespace}/pods/{name}");
        self.state().objects[&path].clone()
    }

    /// The pod's annotations, as strings.
    pub fn annotations(&self, namespace: &str, name: &str) -> BTreeMap<String, String> {
        let pod = self.pod(namespace, name);
        pod["metadata"]["annotations"]
            .as_object()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every stored object of `kind`, in the order they were last written.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        let mut found: Vec<Value> = self
            .state()
            .objects
            .values()
            .filter(|o| o["kind"] == kind)
            .cloned()
            .collect();
        found.sort_by_key(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        });
        found
    }

    /// The Events created, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.objects("Event")
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// The requests that asked to change something (create, replace, patch, delete), in order:
    /// what the API server and etcd pay for.
    pub fn writes(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|q| matches!(q.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
            .collect()
    }

    /// Answers the next `n` requests with `status` (and a Status body), as a broken or
    /// forbidding server would.
    pub fn fail_next(&self, status: u16, n: usize) {
        self.state().failing = Some((status, n));
    }

    /// Answers every `method` request on `plural` (e.g. `PATCH`, `events`) with `status`, as
    /// the real server answers 403 when the Role lacks that verb.
    pub fn refuse(&self, method: &str, plural: &str, status: u16) {
        self.state()
            .refusing
            .push((method.to_string(), plural.to_string(), status));
    }

    /// Stores `object` as a client's create would (its path from apiVersion, kind, namespace
    /// and name; uid, resourceVersion and, unless given, creationTimestamp stamped), without
    /// a request.
    pub fn put(&self, object: Value) -> Value {
        let api_version = object["apiVersion"]
            .as_str()
            .expect("apiVersion")
            .to_string();
        let kind = object["kind"].as_str().expect("kind").to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        let namespace = object["metadata"]["namespace"].as_str().map(str::to_string);
        let plural = KINDS
            .iter()
            .find(|(gv, _, k)| *gv == api_version && *k == kind)
            .map(|(_, plural, _)| *plural)
            .unwrap_or_else(|| panic!("the fake API does not serve {api_version} {kind}"));
        let prefix = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let path = match &namespace {
            Some(ns) => format!("{prefix}/namespaces/{ns}/{plural}/{name}"),
            None => format!("{prefix}/{plural}/{name}"),
        };
        let t = target(&path).expect("a served path");
        let mut state = self.state();
        store(&mut state, &path, object, &t)
    }

    /// Makes the object `name` change (a new resourceVersion) just before the server handles
    /// a DELETE of it: a writer racing the deleting client.
    pub fn change_before_delete(&self, name: &str) {
        self.state().change_before_delete.push(name.to_string());
    }

    /// Writes a kubeconfig that points here, with a bearer token, and returns its path.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        kubeconfig(dir, &self.url(), namespace)
    }
}

/// Writes `dir/kubeconfig` for `server` (bearer token `test-token`) and returns its path.
pub fn kubeconfig(dir: &Path, server: &str, namespace: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\n\
         current-context: fake\nusers:\n- name: fake\n  user:\n    token: test-token\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    // An answer goes out in one piece, at once: without this, a client's delayed ACK holds
    // each keep-alive answer back for 40 ms.
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(incoming) = http::read_request(&mut reader, usize::MAX)? {
        let headers: BTreeMap<String, String> = incoming.headers.into_iter().collect();
        assert!(
            !headers.contains_key("transfer-encoding"),
            "the fake API expects sized bodies: {headers:?}"
        );
        let (method, target, body) = (incoming.method, incoming.target, incoming.body);
        let protobuf = headers
            .get("content-type")
            .is_some_and(|t| t == "application/vnd.kubernetes.protobuf");
        let body: Value = if body.is_empty() {
            Value::Null
        } else if protobuf {
            protobuf::decode(&body).unwrap_or_else(|| {
                Value::String(format!(
                    "undecodable protobuf: {:?}",
                    &body[..body.len().min(64)]
                ))
            })
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_string(), query.to_string()),
            None => (target.clone(), String::new()),
        };
        let close = headers
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let (status, reply) = {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            state.requests.push(Recorded {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                headers: headers.clone(),
                body: body.clone(),
            });
            answer(&mut state, &method, &path, &query, &headers, body)
        };
        let reply = reply.to_string();
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
        writer.write_all(answer.as_bytes())?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// A resource path taken apart: group/version, namespace, plural, name.
struct Target<'a> {
    group_version: String,
    namespace: Option<&'a str>,
    plural: &'a str,
    kind: &'static str,
    name: Option<&'a str>,
}

fn target(path: &str) -> Option<Target<'_>> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_string(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(*ns), rest),
        _ => (None, rest),
    };
    let (plural, name) = match rest {
        [plural] => (*plural, None),
        [plural, name] => (*plural, Some(*name)),
        _ => return None,
    };
    let kind = KINDS
        .iter()
        .find(|(gv, p, _)| *gv == group_version && *p == plural)
        .map(|(_, _, kind)| *kind)?;
    Some(Target {
        group_version,
        namespace,
        plural,
        kind,
        name,
    })
}

fn answer(
    state: &mut State,
    method: &str,
    path: &str,
    query: &str,
    headers: &BTreeMap<String, String>,
    body: Value,
) -> (u16, Value) {
    if let Some((code, left)) = state.failing {
        state.failing = (left > 1).then(|| (code, left - 1));
        let reason = if code == 403 {
            "Forbidden"
        } else {
            "InternalError"
        };
        return status(
            code,
            reason,
            &format!("{method} {path}: the fake API was told to answer {code}"),
        );
    }
    if method == "GET" {
        if let Some(found) = discovery(path) {
            return (200, found);
        }
    }
    let Some(t) = target(path) else {
        return status(
            404,
            "NotFound",
            &format!("the fake API does not serve {method} {path}"),
        );
    };
    let refused = state
        .refusing
        .iter()
        .find(|(m, p, _)| m == method && p == t.plural)
        .map(|(_, _, code)| *code);
    if let Some(code) = refused {
        let reason = if code == 403 { "Forbidden" } else { "Invalid" };
        return status(
            code,
            reason,
            &format!("{method} {path}: the fake API was told to refuse it"),
        );
    }
    let collection = path.trim_end_matches('/');
    match (method, t.name) {
        ("GET", Some(name)) => match state.objects.get(path) {
            Some(object) => (200, as_asked(object, headers)),
            None => not_found(&t, name),
        },
        ("GET", None) => {
            let selector = query_value(query, "labelSelector");
            if let Some(Err(why)) = selector.as_deref().map(parse_selector) {
                return status(
                    400,
                    "BadRequest",
                    &format!("unable to parse requirement: {why}"),
                );
            }
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|(p, _)| in_collection(p, collection, &t))
                .map(|(_, o)| o.clone())
                .filter(|o| matches_labels(o, selector.as_deref()))
                .map(|o| as_list_item(o, &t.group_version))
                .collect();
            let version = state.version.to_string();
            let metadata_only = headers
                .get("accept")
                .is_some_and(|a| a.contains("as=PartialObjectMetadataList"));
            if metadata_only {
                let items: Vec<Value> = items
                    .iter()
                    .map(|o| {
                        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                                    "metadata": o["metadata"].clone()})
                    })
                    .collect();
                return (
                    200,
                    json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                           "metadata": {"resourceVersion": version}, "items": items}),
                );
            }
            (
                200,
                json!({"kind": format!("{}List", t.kind), "apiVersion": t.group_version,
                       "metadata": {"resourceVersion": version}, "items": items}),
            )
        }
        ("POST", None) => {
            if t.kind == "Event" {
                if let Err(why) = check_event(t.namespace.unwrap_or_default(), &body) {
                    return status(422, "Invalid", &format!("Event is invalid: {why}"));
                }
            }
            let Some(name) = body["metadata"]["name"].as_str().map(str::to_string) else {
                return status(422, "Invalid", "metadata.name: Required value");
            };
            let item = format!("{collection}/{name}");
            if state.objects.contains_key(&item) {
                return status(
                    409,
                    "AlreadyExists",
                    &format!("{} \"{name}\" already exists", t.plural),
                );
            }
            let stored = store(state, &item, body, &t);
            (201, stored)
        }
        ("PUT", Some(name)) => {
            let Some(before) = state.objects.get(path) else {
                return not_found(&t, name);
            };
            if let Err(refused) = check_immutable(&t, name, before, &body) {
                return refused;
            }
            let stored = store(state, path, body, &t);
            (200, stored)
        }
        ("PATCH", Some(name)) => {
            let kind = headers.get("content-type").cloned().unwrap_or_default();
            let apply = kind == "application/apply-patch+yaml";
            if !apply
                && kind != "application/merge-patch+json"
                && kind != "application/strategic-merge-patch+json"
            {
                return status(415, "UnsupportedMediaType", &format!("patch type {kind}"));
            }
            let mut object = match state.objects.get(path) {
                Some(object) => object.clone(),
                None if apply => json!({}),
                None => return not_found(&t, name),
            };
            let before = object.clone();
            merge(&mut object, &body);
            if let Err(refused) = check_immutable(&t, name, &before, &object) {
                return refused;
            }
            if t.kind == "Event" && !apply {
                if let Err(why) =
                    check_event_update(t.namespace.unwrap_or_default(), &before, &object)
                {
                    return status(422, "Invalid", &format!("Event is invalid: {why}"));
                }
            }
            let stored = store(state, path, object, &t);
            (200, as_asked(&stored, headers))
        }
        ("DELETE", Some(name)) => {
            if state.change_before_delete.iter().any(|n| n == name) {
                state.change_before_delete.retain(|n| n != name);
                if let Some(object) = state.objects.get(path).cloned() {
                    store(state, path, object, &t);
                }
            }
            if let Some(object) = state.objects.get(path) {
                if let Err(conflict) = check_preconditions(&t, name, object, &body) {
                    return conflict;
                }
            }
            delete(state, path, name, &t)
        }
        _ => status(
            405,
            "MethodNotAllowed",
            &format!("{method} is not supported on {path}"),
        ),
    }
}

/// Whether the object at `path` belongs to the collection listed: in its namespace, or, for
/// a list without one (`/api/v1/configmaps`), of its kind in any namespace.
fn in_collection(path: &str, collection: &str, t: &Target<'_>) -> bool {
    let Some((parent, _)) = path.rsplit_once('/') else {
        return false;
    };
    if parent == collection {
        return true;
    }
    let prefix = if t.group_version.contains('/') {
        format!("/apis/{}/namespaces/", t.group_version)
    } else {
        format!("/api/{}/namespaces/", t.group_version)
    };
    t.namespace.is_none()
        && parent
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(_, plural)| plural == t.plural)
}

/// The API server's rule for a ConfigMap or Secret with `immutable: true`: its data cannot
/// change, nor can it become mutable again (422 Invalid).
fn check_immutable(
    t: &Target<'_>,
    name: &str,
    before: &Value,
    after: &Value,
) -> Result<(), (u16, Value)> {
    if !matches!(t.kind, "ConfigMap" | "Secret") || before["immutable"] != json!(true) {
        return Ok(());
    }
    let refused = |field: &str| {
        status(
            422,
            "Invalid",
            &format!(
                "{} \"{name}\" is invalid: {field}: Forbidden: field is immutable when `immutable` is set",
                t.kind
            ),
        )
    };
    if after["immutable"] != json!(true) {
        return Err(refused("immutable"));
    }
    for field in ["data", "binaryData", "stringData"] {
        let (old, new) = (&before[field], &after[field]);
        let empty = |v: &Value| v.is_null() || v.as_object().is_some_and(|m| m.is_empty());
        if old != new && !(empty(old) && empty(new)) {
            return Err(refused(field));
        }
    }
    Ok(())
}

/// The API server's check of `DeleteOptions.preconditions`: 409 Conflict on a mismatch.
fn check_preconditions(
    t: &Target<'_>,
    name: &str,
    object: &Value,
    options: &Value,
) -> Result<(), (u16, Value)> {
    let pre = &options["preconditions"];
    let conflict = |what: &str, wanted: &str, stored: &str| {
        status(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: {what}: {wanted}, {what} in object meta: {stored}",
                t.plural
            ),
        )
    };
    if let Some(uid) = pre["uid"].as_str() {
        let stored = object["metadata"]["uid"].as_str().unwrap_or_default();
        if uid != stored {
            return Err(conflict("UID in precondition", uid, stored));
        }
    }
    if let Some(rv) = pre["resourceVersion"].as_str() {
        let stored = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        if rv != stored {
            return Err(conflict("ResourceVersion in precondition", rv, stored));
        }
    }
    Ok(())
}

fn delete(state: &mut State, path: &str, name: &str, t: &Target<'_>) -> (u16, Value) {
    match state.objects.remove(path) {
        Some(_) => (
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success",
                       "details": {"name": name, "kind": t.plural}}),
        ),
        None => not_found(t, name),
    }
}

/// Stamps what the server sets (uid, resourceVersion, kind) and keeps the object.
fn store(state: &mut State, path: &str, mut object: Value, t: &Target<'_>) -> Value {
    state.version += 1;
    let uid = object["metadata"]["uid"]
        .as_str()
        .map_or_else(|| format!("uid-{}", state.version), str::to_string);
    object["apiVersion"] = json!(t.group_version);
    object["kind"] = json!(t.kind);
    object["metadata"]["uid"] = json!(uid);
    object["metadata"]["resourceVersion"] = json!(state.version.to_string());
    if object["metadata"]["creationTimestamp"].is_null() {
        let created = state
            .objects
            .get(path)
            .map(|old| old["metadata"]["creationTimestamp"].clone())
            .filter(|c| !c.is_null())
            .unwrap_or_else(|| json!(now_rfc3339()));
        object["metadata"]["creationTimestamp"] = created;
    }
    if let Some(ns) = t.namespace {
        object["metadata"]["namespace"] = json!(ns);
    }
    state.objects.insert(path.to_string(), object.clone());
    object
}

/// A list's item as the real API server writes it: built-in kinds without `apiVersion` and
/// `kind` (the list names them once), custom resources (`argoproj.io`) with them.
fn as_list_item(mut object: Value, group_version: &str) -> Value {
    let custom = group_version.starts_with("argoproj.io/");
    if let (false, Some(fields)) = (custom, object.as_object_mut()) {
        fields.remove("apiVersion");
        fields.remove("kind");
    }
    object
}

fn not_found(t: &Target<'_>, name: &str) -> (u16, Value) {
    status(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", t.plural),
    )
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

/// Decodes a query value as a form-encoded one: `%XX` escapes and `+` for a space.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One requirement of a label selector, as the API server reads them.
#[derive(Debug, PartialEq)]
enum Requirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// Parses a label selector: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
/// joined by commas (a comma inside parentheses belongs to the set).
fn parse_selector(selector: &str) -> Result<Vec<Requirement>, String> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    let set = |rest: &str| -> Result<Vec<String>, String> {
        let inner = rest
            .trim()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| format!("expected a set in parentheses, found {rest:?}"))?;
        Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|term| {
            if let Some(key) = term.strip_prefix('!') {
                return Ok(Requirement::NotExists(key.trim().to_string()));
            }
            if let Some((k, v)) = term.split_once("!=") {
                return Ok(Requirement::NotEquals(k.trim().into(), v.trim().into()));
            }
            if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                return Ok(Requirement::Equals(k.trim().into(), v.trim().into()));
            }
            if let Some((k, rest)) = term.split_once(" notin ") {
                return Ok(Requirement::NotIn(k.trim().into(), set(rest)?));
            }
            if let Some((k, rest)) = term.split_once(" in ") {
                return Ok(Requirement::In(k.trim().into(), set(rest)?));
            }
            if term.contains(' ') || term.contains('(') {
                return Err(format!("{term:?} is not a label selector requirement"));
            }
            Ok(Requirement::Exists(term.to_string()))
        })
        .collect()
}

/// Whether the object's labels satisfy every requirement of the selector.
fn matches_labels(object: &Value, selector: Option<&str>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let Ok(requirements) = parse_selector(selector) else {
        return false;
    };
    let labels = &object["metadata"]["labels"];
    let value = |k: &str| labels[k].as_str();
    requirements.iter().all(|r| match r {
        Requirement::Exists(k) => value(k).is_some(),
        Requirement::NotExists(k) => value(k).is_none(),
        Requirement::Equals(k, v) => value(k) == Some(v.as_str()),
        Requirement::NotEquals(k, v) => value(k) != Some(v.as_str()),
        Requirement::In(k, set) => value(k).is_some_and(|x| set.iter().any(|v| v == x)),
        Requirement::NotIn(k, set) => !value(k).is_some_and(|x| set.iter().any(|v| v == x)),
    })
}

/// Now, as the API server writes times (whole seconds, UTC).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Legacy discovery documents for [`KINDS`].
fn discovery(path: &str) -> Option<Value> {
    let resources = |gv: &str| {
        let list: Vec<Value> = KINDS
            .iter()
            .filter(|(g, _, _)| *g == gv)
            .map(|(_, plural, kind)| {
                json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": true,
                       "kind": kind,
                       "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
            })
            .collect();
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
               "resources": list})
    };
    match path.trim_end_matches('/') {
        "/version" => Some(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0",
                                  "platform": "linux/amd64"})),
        "/api" => Some(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
        "/apis" => {
            let mut groups: Vec<&str> = KINDS
                .iter()
                .map(|(gv, _, _)| *gv)
                .filter(|gv| gv.contains('/'))
                .collect();
            groups.dedup();
            let groups: Vec<Value> = groups
                .iter()
                .filter_map(|gv| gv.split_once('/').map(|(g, v)| (gv, g, v)))
                .map(|(gv, g, v)| {
                    json!({"name": g, "versions": [{"groupVersion": gv, "version": v}],
                           "preferredVersion": {"groupVersion": gv, "version": v}})
                })
                .collect();
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        "/api/v1" => Some(resources("v1")),
        other => {
            let gv = other.strip_prefix("/apis/")?;
            (gv.matches('/').count() == 1 && KINDS.iter().any(|(g, _, _)| *g == gv))
                .then(|| resources(gv))
        }
    }
}

/// The object, or only its metadata when the client asks for `PartialObjectMetadata`.
fn as_asked(object: &Value, headers: &BTreeMap<String, String>) -> Value {
    let accept = headers
        .get("accept")
        .map(String::as_str)
        .unwrap_or_default();
    if accept.contains("as=PartialObjectMetadata") {
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
               "metadata": object["metadata"].clone()})
    } else {
        object.clone()
    }
}

/// The checks the API server's events.k8s.io/v1 validation makes on a new Event
/// (`ValidateEventCreate` in kubernetes/pkg/apis/core/validation/events.go).
pub fn check_event(ns: &str, event: &Value) -> Result<(), String> {
    let text = |field: &str| event[field].as_str().unwrap_or_default().to_string();
    if event["apiVersion"] != "events.k8s.io/v1" || event["kind"] != "Event" {
        return Err(format!(
            "apiVersion/kind: {} {}",
            event["apiVersion"], event["kind"]
        ));
    }
    if event["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        return Err("metadata.name: Required value".into());
    }
    if event["metadata"]["namespace"] != ns {
        return Err("metadata.namespace: does not match the request".into());
    }
    if text("eventTime").is_empty() {
        return Err("eventTime: Required value".into());
    }
    for field in [
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
    ] {
        let value = text(field);
        if value.is_empty() || value.len() > 128 {
            return Err(format!("{field}: must be 1 to 128 characters"));
        }
    }
    if text("note").len() > 1024 {
        return Err("note: can have at most 1024 characters".into());
    }
    if !matches!(text("type").as_str(), "Normal" | "Warning") {
        return Err("type: must be Normal or Warning".into());
    }
    if event["regarding"]["namespace"] != ns {
        return Err("regarding.namespace: does not match event.namespace".into());
    }
    for deprecated in [
        "deprecatedCount",
        "deprecatedSource",
        "deprecatedFirstTimestamp",
    ] {
        if !event[deprecated].is_null() {
            return Err(format!("{deprecated}: must not be set"));
        }
    }
    check_series(event)
}

/// The checks the API server makes on an Event changed through events.k8s.io/v1, after applying
/// the patch (`ValidateEventUpdate`): the result must still be a valid Event, a changed `series`
/// must be a valid series, and every field that says what happened is immutable (`note`
/// included), so only `series` and metadata such as labels can change.
pub fn check_event_update(ns: &str, old: &Value, new: &Value) -> Result<(), String> {
    check_event(ns, new)?;
    for field in [
        "type",
        "reason",
        "action",
        "note",
        "eventTime",
        "regarding",
        "related",
        "reportingController",
        "reportingInstance",
    ] {
        if old[field] != new[field] {
            return Err(format!("{field}: field is immutable"));
        }
    }
    for field in ["name", "namespace", "uid"] {
        if old["metadata"][field] != new["metadata"][field] {
            return Err(format!("metadata.{field}: field is immutable"));
        }
    }
    Ok(())
}

/// `validateV1EventSeries`: a series counts at least two occurrences and says when the last was.
fn check_series(event: &Value) -> Result<(), String> {
    let series = &event["series"];
    if series.is_null() {
        return Ok(());
    }
    if series["count"].as_i64().unwrap_or(0) < 2 {
        return Err("series.count: should be at least 2".into());
    }
    if series["lastObservedTime"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        return Err("series.lastObservedTime: Required value".into());
    }
    Ok(())
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Some(object) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            object.remove(key);
        } else {
            merge(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Just enough of the API's protobuf encoding to read what Helm's typed client sends that way:
/// the Secrets (and ConfigMaps) of its release storage. Answers are JSON, which clients accept.
mod protobuf {
    use base64::Engine as _;
    use serde_json::{json, Map, Value};

    /// `k8s\0` + runtime.Unknown{typeMeta{apiVersion, kind}, raw} → the object as JSON.
    pub fn decode(bytes: &[u8]) -> Option<Value> {
        let unknown = bytes.strip_prefix(b"k8s\0")?;
        let mut kind = String::new();
        let mut raw: &[u8] = &[];
        for (field, value) in fields(unknown)? {
            match field {
                1 => {
                    for (f, v) in fields(value)? {
                        if f == 2 {
                            kind = text(v);
                        }
                    }
                }
                2 => raw = value,
                _ => {}
            }
        }
        let mut object = Map::new();
        let mut data = Map::new();
        for (field, value) in fields(raw)? {
            match (kind.as_str(), field) {
                (_, 1) => {
                    object.insert("metadata".into(), metadata(value)?);
                }
                ("Secret", 2) => {
                    let (k, v) = entry(value)?;
                    let encoded = base64::engine::general_purpose::STANDARD.encode(v);
                    data.insert(text(k), json!(encoded));
                }
                ("Secret", 3) => {
                    object.insert("type".into(), json!(text(value)));
                }
                ("ConfigMap", 2) => {
                    let (k, v) = entry(value)?;
                    data.insert(text(k), json!(text(v)));
                }
                _ => {}
            }
        }
        object.insert("data".into(), Value::Object(data));
        object.insert("kind".into(), json!(kind));
        object.insert("apiVersion".into(), json!("v1"));
        Some(Value::Object(object))
    }

    /// ObjectMeta: name (1), namespace (3), resourceVersion (6), labels (11).
    fn metadata(bytes: &[u8]) -> Option<Value> {
        let mut meta = Map::new();
        let mut labels = Map::new();
        for (field, value) in fields(bytes)? {
            match field {
                1 => {
                    meta.insert("name".into(), json!(text(value)));
                }
                3 => {
                    meta.insert("namespace".into(), json!(text(value)));
                }
                6 => {
                    meta.insert("resourceVersion".into(), json!(text(value)));
                }
                11 => {
                    let (k, v) = entry(value)?;
                    labels.insert(text(k), json!(text(v)));
                }
                _ => {}
            }
        }
        meta.insert("labels".into(), Value::Object(labels));
        Some(Value::Object(meta))
    }

    /// A map entry message: key (1), value (2).
    fn entry(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        let mut key: &[u8] = &[];
        let mut value: &[u8] = &[];
        for (field, v) in fields(bytes)? {
            match field {
                1 => key = v,
                2 => value = v,
                _ => {}
            }
        }
        Some((key, value))
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// The length-delimited fields of a message (varint fields are skipped).
    fn fields(mut bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let key = varint(&mut bytes)?;
            match key & 7 {
                0 => {
                    varint(&mut bytes)?;
                }
                2 => {
                    let len = usize::try_from(varint(&mut bytes)?).ok()?;
                    let value = bytes.get(..len)?;
                    bytes = &bytes[len..];
                    out.push((key >> 3, value));
                }
                _ => return None,
            }
        }
        Some(out)
    }

    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}
