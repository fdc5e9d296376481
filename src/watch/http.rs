//! The sidecar's HTTP face: `/healthz`, `/readyz`, `/status` and `/metrics`, for probes,
//! people and scrapes.
//!
//! `/readyz` is for the readiness probe: a validated config is running. `/status` is for
//! people and monitoring: what became of the newest version (JSON). It only reads: the view of
//! the config's state that `state` publishes, and the metrics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::metrics::Metrics;
use super::state::{Status, View as StateView};
use crate::clock::rfc3339;

/// Connections served at once; probes and scrapes need a handful.
const MAX_CONNECTIONS: usize = 32;

/// Binds `--listen`: `:9533` means every interface; port 0 picks a free port.
pub async fn bind(listen: &str) -> std::io::Result<TcpListener> {
    let addr = if listen.starts_with(':') {
        format!("0.0.0.0{listen}")
    } else {
        listen.to_string()
    };
    let addr: SocketAddr = addr.parse().map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{listen}` is not an address: {e}"),
        )
    })?;
    TcpListener::bind(addr).await
}

/// What the server reads.
#[derive(Clone)]
struct Sources {
    state: watch::Receiver<StateView>,
    metrics: Arc<Metrics>,
}

/// Serves until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    state: watch::Receiver<StateView>,
    metrics: Arc<Metrics>,
) {
    let sources = Sources { state, metrics };
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let sources = sources.clone();
                async move { Ok::<_, Infallible>(respond(&sources, &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
            drop(permit);
        });
    }
}

fn respond(sources: &Sources, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/healthz" => answer(sources.state.borrow().alive.clone()),
        "/readyz" => answer(sources.state.borrow().ready()),
        "/status" => {
            let body = status_json(&sources.state.borrow().status);
            let mut response = text(StatusCode::OK, body);
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            response
        }
        "/metrics" => {
            let mut response = text(StatusCode::OK, sources.metrics.encode());
            if let Ok(value) = "application/openmetrics-text; version=1.0.0; charset=utf-8".parse()
            {
                response
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, value);
            }
            response
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "try /healthz, /readyz, /status or /metrics\n".into(),
        ),
    }
}

/// The config status as one JSON object. Its message quotes no config value (validators'
/// full words are in the log): this port often answers more people than may read a Secret.
fn status_json(status: &Status) -> String {
    /// The fields in the order people read them.
    #[derive(serde::Serialize)]
    struct Json<'a> {
        phase: &'static str,
        hash: Option<&'a str>,
        wanted: Option<&'a str>,
        applied: Option<&'a str>,
        ready: bool,
        message: Option<String>,
        since: String,
    }
    let json = Json {
        phase: status.phase.name(),
        hash: status.phase.hash(),
        wanted: status.wanted.as_deref(),
        applied: status.applied.as_deref(),
        ready: status.ready().is_ok(),
        message: status.message(false),
        since: rfc3339(status.since),
    };
    match serde_json::to_string(&json) {
        Ok(text) => format!("{text}\n"),
        Err(e) => format!("{{\"error\":\"{e}\"}}\n"),
    }
}

/// `200 ok`, or `503` with the reason.
fn answer(check: Result<(), String>) -> Response<Full<Bytes>> {
    match check {
        Ok(()) => text(StatusCode::OK, "ok\n".into()),
        Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::state::Phase;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_status_is_one_json_object_in_reading_order() {
        let status = Status {
            phase: Phase::Rejected {
                hash: "bbbbbbbbbbbbbbbb".into(),
                why: "app.yaml:1:9: schema: at /port".into(),
                details: "app.yaml:1:9: schema: at /port: \"hunter2\" is not a number".into(),
            },
            wanted: Some("aaaaaaaaaaaaaaaa".into()),
            applied: Some("aaaaaaaaaaaaaaaa".into()),
            since: UNIX_EPOCH + Duration::from_millis(1_500),
            broken: None,
        };
        assert_eq!(
            status_json(&status),
            "{\"phase\":\"rejected\",\"hash\":\"bbbbbbbbbbbbbbbb\",\"wanted\":\"aaaaaaaaaaaaaaaa\",\
             \"applied\":\"aaaaaaaaaaaaaaaa\",\"ready\":true,\"message\":\"config bbbbbbbbbbbb is \
             invalid: app.yaml:1:9: schema: at /port; the app keeps config aaaaaaaaaaaa\",\
             \"since\":\"1970-01-01T00:00:01.500Z\"}\n",
            "no quoted value: that is for the log"
        );
    }
}
