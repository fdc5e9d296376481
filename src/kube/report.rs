//! The sidecar's optional Kubernetes API features: Events on its own pod
//! (`--events`) and annotations on it that say which config the app runs
//! (`--annotate-pod`).
//!
//! The API is a side channel. A slow, absent or forbidding API server never
//! delays a reload: notes go to their own tasks, for Events through a book with
//! one entry per reason, for annotations through a newest-only slot; every
//! request has a time limit, and failures are logged and counted. Annotations are
//! retried with backoff until they land, since only the newest state matters; an
//! Event is tried a few times and then dropped.
//!
//! Nor does a flapping config flood the API server: both tasks pace their writes
//! and Events fold into series ([`super::series`]), so a burst of versions costs a
//! few writes, while a lone change, a rejection or a failure shows at once.

use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use super::client::{explain, retryable, Connection, KubeError};
use super::series::{EventBook, Occurrence, Pace, Series, Span, Write};
use crate::backoff::Backoff;
use crate::reload::short;
use crate::watch::metrics::ApiResult;
use crate::watch::state::{Note, NoteSink, Status};

/// The full content hash of the config the app runs on.
pub const HASH_ANNOTATION: &str = "reconfig/config-hash";
/// What became of the newest version, as `/status` says: `waiting`, `applying`, `verifying`,
/// `applied`, `rejected` (refused; the app keeps its config), `failed` (valid, but not put in
/// place) or `rolled-back` (it failed verification; the newest verified version runs again).
pub const STATUS_ANNOTATION: &str = "reconfig/config-status";
/// Why the newest version is not running; absent when it is.
pub const MESSAGE_ANNOTATION: &str = "reconfig/config-message";

/// `reportingController` of our Events: a qualified name, like `kubernetes.io/kubelet`.
const REPORTING_CONTROLLER: &str = "reconfig/watch";
/// events.k8s.io/v1 refuses a longer `note`.
const NOTE_LIMIT: usize = 1024;
const EVENT_ATTEMPTS: u32 = 3;
/// The first retry waits this long; each next one twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What to report and about which pod.
#[derive(Debug, Clone)]
pub struct Settings {
    pub events: bool,
    pub annotate: bool,
    /// Defaults to the host name, which is the pod name unless `spec.hostname` is set.
    pub pod_name: Option<String>,
    /// Defaults to the kubeconfig's or service account's namespace.
    pub pod_namespace: Option<String>,
    /// Events carry it so `kubectl describe pod` finds them; looked up when not given.
    pub pod_uid: Option<String>,
    /// Limit for each API request.
    pub timeout: Duration,
    /// Put validators' full messages, which may quote config values, in Events and annotations.
    pub details: bool,
}

/// This pod, as Events refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub name: String,
    pub namespace: String,
    pub uid: Option<String>,
}

/// Hands notes to the API tasks without ever waiting for them.
pub struct Reporter {
    events: Option<Arc<Outbox>>,
    annotations: Option<watch::Sender<Option<PodNews>>>,
    details: bool,
}

/// What the pod's annotations are to say: the newest state, and the newest problem (a
/// rejection or a failure). Annotations are newest-only, but a problem is reported at once, so
/// one that a newer version replaced before the next write is still written, then the newest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodNews {
    newest: PodState,
    problem: Option<PodState>,
}

/// The Events waiting to be written, shared with the task that writes them: bounded by the
/// few reasons there are, however many versions come.
#[derive(Default)]
struct Outbox {
    book: Mutex<EventBook>,
    /// Wakes the task: news, or the reporter is gone.
    wake: Notify,
    closed: AtomicBool,
}

impl Outbox {
    fn book(&self) -> MutexGuard<'_, EventBook> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl NoteSink for Reporter {
    fn note(&self, note: &Note) {
        let note = if self.details {
            Cow::Borrowed(note)
        } else {
            Cow::Owned(without_details(note))
        };
        let note = note.as_ref();
        if let Some(events) = &self.events {
            if let Some(what) = occurrence(note) {
                events.book().record(what, Instant::now(), Timestamp::now());
                events.wake.notify_one();
            }
        }
    }

    fn status(&self, status: &Status) {
        if let Some(annotations) = &self.annotations {
            let state = PodState::of(status, self.details);
            annotations.send_if_modified(|current| {
                let news = current.get_or_insert_with(|| PodNews {
                    newest: state.clone(),
                    problem: None,
                });
                let mut changed = news.newest != state;
                if state.is_problem() && news.problem.as_ref() != Some(&state) {
                    news.problem = Some(state.clone());
                    changed = true;
                }
                news.newest = state;
                changed
            });
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Some(events) = &self.events {
            events.closed.store(true, Ordering::Relaxed);
            events.wake.notify_one();
        }
    }
}

/// Starts the reporting tasks on a connection; call inside the runtime.
pub fn start(
    connection: Connection,
    settings: Settings,
    requests: Family<ApiResult, Counter>,
) -> Result<Reporter, KubeError> {
    let Connection {
        client,
        default_namespace,
        cluster,
    } = connection;
    let namespace = settings.pod_namespace.clone().unwrap_or(default_namespace);
    let name = match settings.pod_name.clone() {
        Some(name) => name,
        None => host_name().ok_or(KubeError::NoPodName)?,
    };
    let pod = Arc::new(PodHandle {
        pods: Api::namespaced(client.clone(), &namespace),
        pod: Mutex::new(PodRef {
            name: name.clone(),
            namespace: namespace.clone(),
            uid: settings.pod_uid.clone(),
        }),
        timeout: settings.timeout,
        requests: requests.clone(),
    });
    info!(
        server = %cluster,
        pod = %format!("{namespace}/{name}"),
        events = settings.events,
        annotate_pod = settings.annotate,
        "reporting to the Kubernetes API"
    );
    let events = settings.events.then(|| {
        let outbox = Arc::new(Outbox::default());
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        tokio::spawn(send_events(api, pod.clone(), outbox.clone()));
        outbox
    });
    let annotations = settings.annotate.then(|| {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(keep_annotations(pod.clone(), rx));
        tx
    });
    Ok(Reporter {
        events,
        annotations,
        details: settings.details,
    })
}

fn host_name() -> Option<String> {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    (!name.is_empty()).then_some(name)
}

/// The pod's identity plus what talking about it needs.
struct PodHandle {
    pods: Api<Pod>,
    pod: Mutex<PodRef>,
    timeout: Duration,
    requests: Family<ApiResult, Counter>,
}

impl PodHandle {
    fn current(&self) -> PodRef {
        self.pod.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes the UID from an API answer, unless one was given.
    fn learn_uid(&self, meta: &ObjectMeta) {
        let mut current = self.pod.lock().unwrap_or_else(|p| p.into_inner());
        if current.uid.is_none() {
            current.uid.clone_from(&meta.uid);
        }
    }

    /// The pod with its UID, fetched once if it was not given; without it the Event still goes out.
    async fn with_uid(&self) -> PodRef {
        let pod = self.current();
        if pod.uid.is_some() {
            return pod;
        }
        match tokio::time::timeout(self.timeout, self.pods.get_metadata(&pod.name)).await {
            Ok(Ok(found)) => {
                count(&self.requests, "get_pod", "success");
                self.learn_uid(&found.metadata);
                self.current()
            }
            Ok(Err(e)) => {
                count(&self.requests, "get_pod", "failure");
                warn!(
                    "Kubernetes API: cannot read pod {}/{} for its UID ({}); events will not show in `kubectl describe pod` (set POD_UID from the downward API)",
                    pod.namespace,
                    pod.name,
                    explain(&e, "get pods")
                );
                pod
            }
            Err(_) => {
                count(&self.requests, "get_pod", "failure");
                warn!(
                    "Kubernetes API: reading pod {}/{} took over {:?}",
                    pod.namespace, pod.name, self.timeout
                );
                pod
            }
        }
    }
}

/// Writes the Events of the outbox as they fall due, one at a time, until the reporter is gone.
async fn send_events(api: Api<Event>, pod: Arc<PodHandle>, outbox: Arc<Outbox>) {
    let mut uid_tried = false;
    while !outbox.closed.load(Ordering::Relaxed) {
        let due = outbox.book().next_due();
        match due {
            None => outbox.wake.notified().await,
            Some(due) if due > Instant::now() => {
                tokio::select! {
                    () = outbox.wake.notified() => {}
                    () = tokio::time::sleep_until(due.into()) => {}
                }
            }
            Some(_) => {}
        }
        let writes = outbox.book().take_due(Instant::now());
        if writes.is_empty() {
            continue;
        }
        let target = if uid_tried {
            pod.current()
        } else {
            uid_tried = true;
            pod.with_uid().await
        };
        for write in writes {
            if let Some(series) = send_event(&api, &pod, &target, &write).await {
                debug!(
                    reason = write.what.reason,
                    count = series.span.count,
                    "event recorded"
                );
                outbox.book().written(&write.what, series, Instant::now());
            }
        }
    }
}

/// Writes one Event: more occurrences for the series it extends, or a new Event (also when the
/// one to extend is gone, expired after the API server's `--event-ttl`, or may not be patched).
/// Returns the Event as it now stands, `None` when it could not be written.
async fn send_event(
    api: &Api<Event>,
    pod: &PodHandle,
    target: &PodRef,
    write: &Write,
) -> Option<Series> {
    let reason = write.what.reason;
    if let Some(extended) = write.extended() {
        let params = PatchParams {
            field_manager: Some("reconfig".into()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(series_patch(extended.span));
        let doing = format!("add to the series of the {reason} event");
        match attempts(pod, &doing, "patch events.events.k8s.io", true, || {
            api.patch(&extended.name, &params, &patch)
        })
        .await
        {
            Sent::Done => return Some(extended),
            Sent::Refused(404) => {
                debug!(reason, event = %extended.name, "the event to extend is gone; recording a new one");
            }
            Sent::Refused(_) => {}
            Sent::Dropped => return None,
        }
    }
    let event = new_event(target, &write.what, write.span);
    let name = event.metadata.name.clone().unwrap_or_default();
    let doing = format!("record the {reason} event");
    let params = PostParams::default();
    match attempts(pod, &doing, "create events.events.k8s.io", false, || {
        api.create(&params, &event)
    })
    .await
    {
        Sent::Done => Some(write.created(name)),
        Sent::Refused(_) | Sent::Dropped => None,
    }
}

/// What became of a request after its attempts.
enum Sent {
    Done,
    /// Refused with this HTTP status; not worth retrying.
    Refused(u16),
    /// Still failing after every attempt.
    Dropped,
}

/// Sends a request up to [`EVENT_ATTEMPTS`] times, with backoff, while the failure may pass;
/// `doing` says what for the log. With `may_be_gone`, a 404 is an answer, not a failure.
async fn attempts<F, Fut>(
    pod: &PodHandle,
    doing: &str,
    permission: &str,
    may_be_gone: bool,
    request: F,
) -> Sent
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Event, kube::Error>>,
{
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    for attempt in 1..=EVENT_ATTEMPTS {
        let why = match tokio::time::timeout(pod.timeout, request()).await {
            Ok(Ok(_)) => {
                count(&pod.requests, "event", "success");
                return Sent::Done;
            }
            Ok(Err(kube::Error::Api(status))) if may_be_gone && status.code == 404 => {
                return Sent::Refused(404);
            }
            Ok(Err(e)) if !retryable(&e) => {
                count(&pod.requests, "event", "failure");
                warn!(
                    "Kubernetes API: cannot {doing}: {}",
                    explain(&e, permission)
                );
                let code = match &e {
                    kube::Error::Api(status) => status.code,
                    _ => 0,
                };
                return Sent::Refused(code);
            }
            Ok(Err(e)) => explain(&e, permission),
            Err(_) => format!("no answer within {:?}", pod.timeout),
        };
        count(&pod.requests, "event", "failure");
        if attempt == EVENT_ATTEMPTS {
            warn!("Kubernetes API: gave up trying to {doing} after {attempt} attempts: {why}");
        } else {
            debug!("Kubernetes API: failed to {doing} ({why}); retrying");
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
    Sent::Dropped
}

/// Keeps the pod's annotations on the newest state, paced ([`Pace`]): a change of status (a
/// rejection, a failure, a recovery) is written at once or within a second of the last write, a
/// burst of versions once it settles or every few seconds; a failed write is retried with
/// backoff.
async fn keep_annotations(pod: Arc<PodHandle>, mut rx: watch::Receiver<Option<PodNews>>) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let mut failing = false;
    let mut pace = Pace::default();
    // What the pod's annotations say, as far as this task knows, and the last problem written.
    let mut shown: Option<PodState> = None;
    let mut problem_shown: Option<PodState> = None;
    loop {
        let news = rx.borrow_and_update().clone();
        let next = news.and_then(|news| {
            match news.problem.filter(|p| problem_shown.as_ref() != Some(p)) {
                Some(problem) => Some((problem, true)),
                None => Some((news.newest, false)).filter(|(s, _)| shown.as_ref() != Some(s)),
            }
        });
        let Some((state, is_problem)) = next else {
            if rx.changed().await.is_err() {
                return;
            }
            pace.news(Instant::now());
            continue;
        };
        // Problems and recoveries go out at once; the flow of applied versions is paced.
        let urgent = is_problem
            || shown
                .as_ref()
                .is_none_or(|shown| shown.status != state.status && shown.is_problem());
        if let Some(due) = pace.due(urgent).filter(|due| *due > Instant::now()) {
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => {}
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    pace.news(Instant::now());
                    continue;
                }
            }
        }
        pace.wrote(Instant::now());
        let name = pod.current().name;
        let params = PatchParams {
            field_manager: Some("reconfig".into()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(state.patch());
        let result =
            tokio::time::timeout(pod.timeout, pod.pods.patch_metadata(&name, &params, &patch))
                .await;
        let why = match result {
            Ok(Ok(updated)) => {
                count(&pod.requests, "annotate_pod", "success");
                pod.learn_uid(&updated.metadata);
                if std::mem::take(&mut failing) {
                    info!("Kubernetes API: pod annotations are up to date again");
                }
                debug!(status = state.status, "pod annotated");
                backoff.reset();
                if is_problem {
                    problem_shown = Some(state.clone());
                }
                shown = Some(state);
                continue;
            }
            Ok(Err(e)) => explain(&e, "patch pods"),
            Err(_) => format!("no answer within {:?}", pod.timeout),
        };
        count(&pod.requests, "annotate_pod", "failure");
        if !std::mem::replace(&mut failing, true) {
            warn!("Kubernetes API: cannot annotate pod {name}: {why}; retrying with backoff");
        } else {
            debug!("Kubernetes API: annotating pod {name} failed again: {why}");
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                pace.news(Instant::now());
            }
        }
    }
}

fn count(requests: &Family<ApiResult, Counter>, request: &str, result: &str) {
    requests
        .get_or_create(&ApiResult {
            request: request.to_string(),
            result: result.to_string(),
        })
        .inc();
}

/// A rejection as anyone who can read Events or pods may see it: validators quote values
/// (a JSON Schema error repeats the offending value, which may be a Secret's), so only where
/// and what, with a pointer to the log.
pub fn without_details(note: &Note) -> Note {
    match note {
        Note::Rejected { hash, summary, .. } => Note::Rejected {
            hash: hash.clone(),
            reason: format!("{summary} (details in the sidecar's log)"),
            summary: summary.clone(),
        },
        other => other.clone(),
    }
}

/// What the pod's annotations say: the config status, as `/status` says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodState {
    /// The config the app runs on, once there is one.
    pub hash: Option<String>,
    pub status: &'static str,
    /// Why the newest version is not running; quoting validators in full only with `details`.
    pub message: Option<String>,
}

impl PodState {
    /// A rejection, a failure or a rollback: reported at once, never lost to a newer version.
    pub fn is_problem(&self) -> bool {
        matches!(self.status, "rejected" | "failed" | "rolled-back")
    }

    pub fn of(status: &Status, details: bool) -> Self {
        PodState {
            hash: status.applied.clone(),
            status: status.phase.name(),
            message: status.message(details).map(|m| truncate(&m, NOTE_LIMIT)),
        }
    }

    /// A JSON merge patch; `null` removes what no longer holds.
    pub fn patch(&self) -> Value {
        json!({
            "metadata": {
                "annotations": {
                    HASH_ANNOTATION: self.hash,
                    STATUS_ANNOTATION: self.status,
                    MESSAGE_ANNOTATION: self.message,
                }
            }
        })
    }
}

/// The Event a note deserves; start-up is not news.
pub fn event_for(pod: &PodRef, note: &Note, now: Timestamp) -> Option<Event> {
    occurrence(note).map(|what| new_event(pod, &what, Span::one(now)))
}

/// What the Event of a note says; start-up is not news.
pub fn occurrence(note: &Note) -> Option<Occurrence> {
    let (kind, reason, action, text) = match note {
        Note::Started { .. } => return None,
        Note::Applied { hash, detail } => (
            "Normal",
            "ConfigApplied",
            "Reload",
            format!("config {} applied: {detail}", short(hash)),
        ),
        Note::Rejected { hash, reason, .. } => (
            "Warning",
            "ConfigRejected",
            "Validate",
            format!(
                "config {} rejected, the app keeps its last good config: {reason}",
                short(hash)
            ),
        ),
        Note::Failed { hash, reason } => (
            "Warning",
            "ConfigNotApplied",
            "Reload",
            format!("config {} is valid but not applied: {reason}", short(hash)),
        ),
        Note::RolledBack { hash, to, reason } => (
            "Warning",
            "ConfigRolledBack",
            "Rollback",
            format!(
                "config {} failed verification: {reason}; rolled back to config {}, which runs now",
                short(hash),
                short(to)
            ),
        ),
    };
    Some(Occurrence {
        kind,
        reason,
        action,
        note: truncate(&text, NOTE_LIMIT),
    })
}

/// A new Event about the pod for `span` occurrences of `what`; with two or more, its
/// `series` counts them.
pub fn new_event(pod: &PodRef, what: &Occurrence, span: Span) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(&pod.name, crate::random_u64())),
            namespace: Some(pod.namespace.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(span.first)),
        series: (span.count >= 2).then(|| series(span)),
        type_: Some(what.kind.into()),
        reason: Some(what.reason.into()),
        action: Some(what.action.into()),
        note: Some(what.note.clone()),
        regarding: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: pod.uid.clone(),
            ..ObjectReference::default()
        }),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(truncate_bytes(&pod.name, 128).to_string()),
        ..Event::default()
    }
}

fn series(span: Span) -> EventSeries {
    EventSeries {
        count: i32::try_from(span.count).unwrap_or(i32::MAX),
        last_observed_time: MicroTime(span.last),
    }
}

/// The JSON merge patch that makes an Event's `series` count `span`; nothing else of an Event
/// may change.
pub fn series_patch(span: Span) -> Value {
    json!({ "series": series(span) })
}

/// `POD.SUFFIX`, as the kubelet names its events; kept within the 253 characters of a name.
fn event_name(pod: &str, suffix: u64) -> String {
    format!("{}.{suffix:016x}", truncate_bytes(pod, 253 - 17))
}

fn truncate_bytes(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// At most `limit` bytes, cut at a character boundary and marked.
fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let marker = "…";
    format!("{}{marker}", truncate_bytes(text, limit - marker.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::state::Phase;

    fn pod() -> PodRef {
        PodRef {
            name: "web-7d9f".into(),
            namespace: "shop".into(),
            uid: Some("0a1b".into()),
        }
    }

    fn rejected() -> Note {
        Note::Rejected {
            hash: "1234567890abcdef".into(),
            reason: "nginx.conf line 3: unexpected \"}\"".into(),
            summary: "nginx.conf".into(),
        }
    }

    #[test]
    fn rejections_shown_beyond_the_log_quote_no_values() {
        let note = Note::Rejected {
            hash: "h".into(),
            reason: "app.yaml:2:11: schema: at /password: 12345 is not of type \"string\"".into(),
            summary: "app.yaml:2:11: schema: at /password".into(),
        };
        let Note::Rejected { reason, .. } = without_details(&note) else {
            panic!("still a rejection");
        };
        assert_eq!(
            reason,
            "app.yaml:2:11: schema: at /password (details in the sidecar's log)"
        );
        let applied = Note::Applied {
            hash: "h".into(),
            detail: "SIGHUP sent".into(),
        };
        assert_eq!(without_details(&applied), applied);
    }

    #[test]
    fn a_rejection_is_a_warning_on_the_pod() {
        let event = event_for(&pod(), &rejected(), Timestamp::UNIX_EPOCH).expect("event");
        let value = serde_json::to_value(&event).expect("json");
        assert_eq!(value["type"], "Warning");
        assert_eq!(value["reason"], "ConfigRejected");
        assert_eq!(value["action"], "Validate");
        assert_eq!(value["reportingController"], "reconfig/watch");
        assert_eq!(value["reportingInstance"], "web-7d9f");
        assert_eq!(
            value["note"],
            "config 1234567890ab rejected, the app keeps its last good config: nginx.conf line 3: unexpected \"}\""
        );
        assert_eq!(
            value["regarding"],
            json!({"apiVersion": "v1", "kind": "Pod", "name": "web-7d9f", "namespace": "shop", "uid": "0a1b"})
        );
        assert_eq!(value["eventTime"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(value["metadata"]["namespace"], "shop");
        let name = value["metadata"]["name"].as_str().expect("name");
        assert!(
            name.starts_with("web-7d9f.") && name.len() == "web-7d9f.".len() + 16,
            "{name}"
        );
    }

    #[test]
    fn applied_and_failed_versions_have_their_own_reasons() {
        let applied = Note::Applied {
            hash: "ab".into(),
            detail: "SIGHUP sent to 7 (nginx)".into(),
        };
        let event = event_for(&pod(), &applied, Timestamp::UNIX_EPOCH).expect("event");
        assert_eq!(event.type_.as_deref(), Some("Normal"));
        assert_eq!(event.reason.as_deref(), Some("ConfigApplied"));
        assert_eq!(
            event.note.as_deref(),
            Some("config ab applied: SIGHUP sent to 7 (nginx)")
        );
        let failed = Note::Failed {
            hash: "cd".into(),
            reason: "webhook failed 9 times".into(),
        };
        let event = event_for(&pod(), &failed, Timestamp::UNIX_EPOCH).expect("event");
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.reason.as_deref(), Some("ConfigNotApplied"));
        let started = Note::Started { hash: "ef".into() };
        assert!(event_for(&pod(), &started, Timestamp::UNIX_EPOCH).is_none());
    }

    #[test]
    fn notes_and_names_stay_within_the_api_limits() {
        let long = Note::Rejected {
            hash: "h".into(),
            reason: "é".repeat(2000),
            summary: String::new(),
        };
        let mut long_pod = pod();
        long_pod.name = "p".repeat(300);
        let event = event_for(&long_pod, &long, Timestamp::UNIX_EPOCH).expect("event");
        let note = event.note.expect("note");
        assert!(
            note.len() <= NOTE_LIMIT && note.ends_with('…'),
            "{}",
            note.len()
        );
        assert!(event.metadata.name.expect("name").len() <= 253);
        assert_eq!(event.reporting_instance.expect("instance").len(), 128);
        assert_eq!(event_name("web", 0xab), "web.00000000000000ab");
    }

    fn status(phase: Phase, applied: Option<&str>) -> Status {
        Status {
            phase,
            wanted: applied.map(str::to_string),
            applied: applied.map(str::to_string),
            since: std::time::SystemTime::UNIX_EPOCH,
            broken: None,
        }
    }

    fn rejected_phase() -> Phase {
        Phase::Rejected {
            hash: "1234567890abcdef".into(),
            why: "app.yaml:2:11: schema: at /password".into(),
            details: "app.yaml:2:11: schema: at /password: \"hunter2\" is not a number".into(),
        }
    }

    #[test]
    fn an_event_for_several_versions_carries_their_series() {
        let what = occurrence(&rejected()).expect("news");
        let first = Timestamp::UNIX_EPOCH;
        let last = first + Duration::from_secs(10);
        let one = new_event(&pod(), &what, Span::one(first));
        assert_eq!(one.series, None, "a single occurrence has no series");
        let span = Span {
            count: 57,
            first,
            last,
        };
        let value = serde_json::to_value(new_event(&pod(), &what, span)).expect("json");
        assert_eq!(value["eventTime"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            value["series"],
            json!({"count": 57, "lastObservedTime": "1970-01-01T00:00:10.000000Z"})
        );
        assert_eq!(value["note"], json!(what.note));
        assert_eq!(
            series_patch(span),
            json!({"series": {"count": 57, "lastObservedTime": "1970-01-01T00:00:10.000000Z"}}),
            "a patch touches nothing the API server keeps immutable"
        );
    }

    #[test]
    fn annotations_say_the_config_status() {
        let applied = status(Phase::Applied { hash: "h0".into() }, Some("h0"));
        assert_eq!(
            PodState::of(&applied, false).patch(),
            json!({"metadata": {"annotations": {
                "reconfig/config-hash": "h0",
                "reconfig/config-status": "applied",
                "reconfig/config-message": null,
            }}})
        );
        let rejected = status(rejected_phase(), Some("h0"));
        let patch = PodState::of(&rejected, false).patch();
        let annotations = &patch["metadata"]["annotations"];
        assert_eq!(
            annotations["reconfig/config-hash"], "h0",
            "the app still runs h0"
        );
        assert_eq!(annotations["reconfig/config-status"], "rejected");
        assert_eq!(
            annotations["reconfig/config-message"],
            "config 1234567890ab is invalid: app.yaml:2:11: schema: at /password; the app keeps config h0"
        );
        let detailed = PodState::of(&rejected, true);
        assert!(
            detailed
                .message
                .as_deref()
                .is_some_and(|m| m.contains("hunter2")),
            "--report-details: {detailed:?}"
        );
        let applying = status(Phase::Applying { hash: "h1".into() }, Some("h0"));
        let state = PodState::of(&applying, false);
        assert_eq!(
            (state.hash.as_deref(), state.status),
            (Some("h0"), "applying")
        );
        assert_eq!(
            state.message.as_deref(),
            Some("config h1 is valid but not yet applied")
        );
    }

    #[test]
    fn a_first_config_that_is_invalid_names_no_hash() {
        let state = PodState::of(&status(rejected_phase(), None), false);
        assert_eq!(
            state.patch()["metadata"]["annotations"]["reconfig/config-hash"],
            Value::Null
        );
        assert_eq!(state.status, "rejected");
    }
}
