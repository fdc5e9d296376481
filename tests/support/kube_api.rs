//! A loopback stand-in for the Kubernetes API server (no real one can run here). It speaks the
//! API's JSON for what `reconfig watch --events --annotate-pod` asks: read a pod, merge-patch
//! it, create `events.k8s.io/v1` Events, checking the fields the real server checks. It
//! records every request, and can be told to answer the next requests with an error.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header lines, lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

#[derive(Default)]
struct State {
    pods: BTreeMap<(String, String), Value>,
    events: Vec<Value>,
    requests: Vec<Recorded>,
    /// Answer this many requests with this status before behaving again.
    failing: Option<(u16, usize)>,
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
        self.state()
            .pods
            .insert((namespace.to_string(), name.to_string()), pod);
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Value {
        self.state().pods[&(namespace.to_string(), name.to_string())].clone()
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

    pub fn events(&self) -> Vec<Value> {
        self.state().events.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Answers the next `n` requests with `status` (and a Status body), as a broken or
    /// forbidding server would.
    pub fn fail_next(&self, status: u16, n: usize) {
        self.state().failing = Some((status, n));
    }

    /// Writes a kubeconfig that points here, with a bearer token, and returns its path.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\n\
             current-context: fake\nusers:\n- name: fake\n  user:\n    token: test-token\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers = BTreeMap::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        assert!(
            !headers.contains_key("transfer-encoding"),
            "the fake API expects sized bodies: {headers:?}"
        );
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        let path = target.split('?').next().unwrap_or_default().to_string();
        let close = headers
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let (status, reply) = {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            state.requests.push(Recorded {
                method: method.clone(),
                path: path.clone(),
                headers: headers.clone(),
                body: body.clone(),
            });
            answer(&mut state, &method, &path, &headers, body)
        };
        let reply = reply.to_string();
        write!(
            writer,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        )?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn answer(
    state: &mut State,
    method: &str,
    path: &str,
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
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => {
            match state.pods.get(&(ns.to_string(), name.to_string())) {
                Some(pod) => (200, as_asked(pod, headers)),
                None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
            }
        }
        ("PATCH", ["api", "v1", "namespaces", ns, "pods", name]) => {
            let kind = headers.get("content-type").cloned().unwrap_or_default();
            if kind != "application/merge-patch+json" {
                return status(
                    415,
                    "UnsupportedMediaType",
                    &format!("not a merge patch: {kind}"),
                );
            }
            match state.pods.get_mut(&(ns.to_string(), name.to_string())) {
                Some(pod) => {
                    merge(pod, &body);
                    (200, as_asked(pod, headers))
                }
                None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
            }
        }
        ("POST", ["apis", "events.k8s.io", "v1", "namespaces", ns, "events"]) => {
            if let Err(why) = check_event(ns, &body) {
                return status(422, "Invalid", &format!("Event is invalid: {why}"));
            }
            let mut event = body;
            event["metadata"]["uid"] = json!(format!("event-{}", state.events.len()));
            state.events.push(event.clone());
            (201, event)
        }
        _ => status(
            404,
            "NotFound",
            &format!("the fake API does not serve {method} {path}"),
        ),
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

/// The checks the API server's events.k8s.io/v1 validation makes on a new Event.
fn check_event(ns: &str, event: &Value) -> Result<(), String> {
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
