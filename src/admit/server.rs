//! The two listeners: AdmissionReviews over TLS (HTTP/2 or HTTP/1.1 by ALPN), and the plain
//! port for probes and metrics. Every request is bounded: its size, the time to receive it, the
//! time to judge it; what does not fit gets an HTTP error with a message, never a panic.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::metrics::Metrics;
use super::review::{self, Asked, Candidate};
use crate::config::ConfigFile;
use crate::policy::{Commands, Finding, Identity, Policy, Subject};

/// Time for a client to finish the TLS handshake, or to send its headers or body.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once on each port.
const MAX_CONNECTIONS: usize = 1024;

/// What every request handler reads.
pub struct Shared {
    policy: RwLock<Arc<Policy>>,
    pub metrics: Metrics,
    pub max_body: usize,
    pub timeout: Duration,
    pub allow_commands: bool,
    /// Reviews judged at once. Judging is CPU work: as many at once as there are cores
    /// (more only share the cores, so every one of them finishes later, and the caches
    /// with them), the rest wait their turn in order. With external commands, which wait
    /// on processes, many more.
    judging: tokio::sync::Semaphore,
}

impl Shared {
    pub fn new(
        policy: Policy,
        max_body: usize,
        timeout: Duration,
        allow_commands: bool,
    ) -> Arc<Self> {
        let at_once = if allow_commands {
            64
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        };
        Arc::new(Shared {
            policy: RwLock::new(Arc::new(policy)),
            metrics: Metrics::default(),
            max_body,
            timeout,
            allow_commands,
            judging: tokio::sync::Semaphore::new(at_once),
        })
    }

    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace_policy(&self, policy: Policy) {
        match self.policy.write() {
            Ok(mut p) => *p = Arc::new(policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(policy),
        }
    }
}

/// Serves AdmissionReviews on `listener` until the task is dropped.
pub async fn serve_reviews(listener: TcpListener, tls: TlsAcceptor, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: wait a little rather than spin.
                warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(RECEIVE_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => return debug!(%peer, "TLS handshake timed out"),
            };
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(answer_review(&shared, req).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(RECEIVE_TIMEOUT);
            // Windows that take a usual review at once: with HTTP/2's 64 KiB default, every
            // larger ConfigMap would wait a round trip for a WINDOW_UPDATE. Buffered data per
            // connection stays within the connection window (4 MiB).
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(64)
                .initial_stream_window_size(1024 * 1024)
                .initial_connection_window_size(4 * 1024 * 1024);
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%peer, "connection: {e}");
            }
        });
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `listener` until the task is dropped.
pub async fn serve_probes(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(32));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req: Request<Incoming>| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(answer_probe(&shared, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(RECEIVE_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer_probe(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/healthz" | "/readyz" => text(StatusCode::OK, "ok\n".to_string()),
        "/metrics" => {
            let mut response = text(StatusCode::OK, shared.metrics.encode());
            response.headers_mut().insert(
                CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        other => text(
            StatusCode::NOT_FOUND,
            format!("{other}: not found; try /healthz, /readyz or /metrics\n"),
        ),
    }
}

/// One AdmissionReview: read within bounds, judged within `--timeout`, answered.
async fn answer_review(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/validate" {
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "{}: not found; AdmissionReviews go to /validate\n",
                req.uri().path()
            ),
        );
    }
    if req.method() != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST an AdmissionReview to /validate\n".to_string(),
        );
    }
    let started = Instant::now();
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&n| n > shared.max_body as u64) {
        // Read and drop a body up to a few times the limit so the client hears the 400 rather
        // than a reset; a larger one is not worth reading.
        if declared <= 4 * shared.max_body as u64 {
            drain(req.into_body()).await;
        }
        return bad_request(shared, too_large(shared.max_body));
    }
    let limited = Limited::new(req.into_body(), shared.max_body);
    let body = match tokio::time::timeout(RECEIVE_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return bad_request(shared, too_large(shared.max_body))
        }
        Ok(Err(e)) => return bad_request(shared, format!("reading the request body: {e}")),
        Err(_) => {
            return bad_request(
                shared,
                format!("the request body did not arrive within {RECEIVE_TIMEOUT:?}"),
            )
        }
    };
    let answer = match review::read(&body) {
        Err(why) => return bad_request(shared, why),
        Ok(Asked::Pass { uid, operation }) => {
            shared.metrics.review(&operation, "allowed");
            review::response(&uid, &[], &[])
        }
        Ok(Asked::Judge(candidate)) => match judge(shared, candidate).await {
            Ok(answer) => answer,
            Err(response) => return response,
        },
    };
    shared
        .metrics
        .duration
        .observe(started.elapsed().as_secs_f64());
    json(StatusCode::OK, answer.to_string())
}

/// Objects up to this size (all keys together) are judged on the connection's thread when no
/// command runs: see [`judge`].
const INLINE_JUDGE_BYTES: usize = 128 * 1024;

/// Evaluates a ConfigMap or Secret: on the connection's thread when it is small and no command
/// runs, else on a blocking thread within `--timeout`.
async fn judge(
    shared: &Shared,
    candidate: Candidate,
) -> Result<serde_json::Value, Response<Full<Bytes>>> {
    let policy = shared.policy();
    let allow_commands = shared.allow_commands;
    let label = candidate.identity.label();
    let Candidate {
        uid,
        operation,
        dry_run,
        identity,
        files,
    } = candidate;
    let inline = {
        let subject = Subject {
            object: Some(&identity),
            files: &files,
        };
        let size: usize = files.iter().map(|f| f.bytes.len()).sum();
        let commands = allow_commands && !policy.commands_for(&subject).is_empty();
        // Without a command, judging is parsing and schema checks, bounded by the size: 64 KiB
        // of YAML takes about 0.4 ms, of which handing it to a blocking thread and back would
        // add a sizeable part, and 128 KiB stays far below any sensible `--timeout`. Such an
        // object is judged here, on the connection's own thread.
        (!commands && size <= INLINE_JUDGE_BYTES).then(|| policy.check(&subject))
    };
    let findings = match inline {
        Some(findings) => findings,
        None => match judge_on_blocking_thread(shared, policy, identity, files).await {
            Ok(findings) => findings,
            Err((status, why)) => {
                shared.metrics.review(&operation, "error");
                return Err(text(status, why));
            }
        },
    };
    // Messages quote no Secret value: the same redaction as `check`.
    let (denials, warnings): (Vec<&Finding>, Vec<&Finding>) =
        findings.iter().partition(|f| f.denies());
    let denials: Vec<String> = denials.iter().map(|f| f.message(true)).collect();
    let warnings: Vec<String> = warnings.iter().map(|f| f.message(true)).collect();
    let result = if !denials.is_empty() {
        "denied"
    } else if !warnings.is_empty() {
        "warned"
    } else {
        "allowed"
    };
    shared.metrics.review(&operation, result);
    if result == "allowed" {
        debug!(object = %label, %operation, dry_run, "allowed");
    } else {
        info!(
            object = %label, %operation, dry_run, "{result}: {}",
            denials.iter().chain(&warnings).cloned().collect::<Vec<_>>().join("; ")
        );
    }
    Ok(review::response(&uid, &denials, &warnings))
}

/// Evaluates on a blocking thread within `--timeout`: external commands, and objects large
/// enough that parsing them would hold up other connections. An error is the status and text
/// to answer with.
async fn judge_on_blocking_thread(
    shared: &Shared,
    policy: Arc<Policy>,
    identity: Identity,
    files: Vec<ConfigFile>,
) -> Result<Vec<Finding>, (StatusCode, String)> {
    let allow_commands = shared.allow_commands;
    let label = identity.label();
    let handle = tokio::runtime::Handle::current();
    // The turn is held here, not by the blocking task: a review past its time budget gives
    // its turn back, whatever its abandoned task still does.
    let work = async {
        let _turn = shared.judging.acquire().await;
        tokio::task::spawn_blocking(move || {
            let subject = Subject {
                object: Some(&identity),
                files: &files,
            };
            let commands = if allow_commands {
                Commands::Stage
            } else {
                Commands::Skip
            };
            handle.block_on(policy.evaluate(&subject, commands))
        })
        .await
    };
    match tokio::time::timeout(shared.timeout, work).await {
        Ok(Ok(Ok(findings))) => Ok(findings),
        Ok(Ok(Err(stage))) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot stage {label} for its validator: {stage}\n"),
        )),
        Ok(Err(join)) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("judging {label} failed: {join}\n"),
        )),
        Err(_) => {
            warn!(object = %label, "not judged within {:?} (--timeout)", shared.timeout);
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "reconfig could not judge {label} within {:?} (--timeout); the webhook's failurePolicy decides\n",
                    shared.timeout
                ),
            ))
        }
    }
}

/// Reads a body to its end (or `RECEIVE_TIMEOUT`), keeping nothing.
async fn drain(mut body: Incoming) {
    let _ = tokio::time::timeout(RECEIVE_TIMEOUT, async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
}

fn too_large(max: usize) -> String {
    format!(
        "the request body is larger than {} bytes (--max-body-size)",
        max
    )
}

fn bad_request(shared: &Shared, why: String) -> Response<Full<Bytes>> {
    shared.metrics.bad_requests.inc();
    debug!("bad request: {why}");
    text(StatusCode::BAD_REQUEST, format!("{why}\n"))
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body)
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "application/json", body)
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// Binds `--listen`: `:8443` means every interface; port 0 picks a free port.
pub async fn bind(listen: &str) -> std::io::Result<TcpListener> {
    let addr = if listen.starts_with(':') {
        format!("0.0.0.0{listen}")
    } else {
        listen.to_string()
    };
    let addr: std::net::SocketAddr = addr.parse().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{listen}` is not an address: {e}"),
        )
    })?;
    TcpListener::bind(addr).await
}
