//! The sidecar's HTTP face: `/healthz`, `/readyz` and `/metrics`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections served at once; probes and scrapes need a handful.
const MAX_CONNECTIONS: usize = 32;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionResult {
    pub action: String,
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiResult {
    pub request: String,
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HashLabel {
    pub hash: String,
}

/// Everything `/metrics` reports.
pub struct Metrics {
    registry: Registry,
    pub reloads: Family<ActionResult, Counter>,
    pub validation_failures: Counter,
    pub last_success: Gauge<f64, AtomicU64>,
    pub config_info: Family<HashLabel, Gauge>,
    pub config_valid: Gauge,
    pub watcher_errors: Counter,
    pub action_seconds: Family<ActionLabel, Histogram>,
    pub api_requests: Family<ApiResult, Counter>,
    current_hash: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("reconfig");
        let reloads = Family::<ActionResult, Counter>::default();
        let validation_failures = Counter::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        let config_info = Family::<HashLabel, Gauge>::default();
        let config_valid = Gauge::default();
        let watcher_errors = Counter::default();
        let action_seconds = Family::<ActionLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "reloads",
            "Reload actions by action and result (success, failure, superseded)",
            reloads.clone(),
        );
        registry.register(
            "validation_failures",
            "Config versions rejected by validation",
            validation_failures.clone(),
        );
        registry.register(
            "last_reload_success_timestamp_seconds",
            "Unix time of the last fully successful reload",
            last_success.clone(),
        );
        registry.register(
            "config_info",
            "The content hash of the config the app runs on",
            config_info.clone(),
        );
        registry.register(
            "config_valid",
            "Whether the newest config seen is valid (1) or not (0)",
            config_valid.clone(),
        );
        registry.register(
            "watcher_errors",
            "Errors reading or watching the config folders",
            watcher_errors.clone(),
        );
        registry.register(
            "action_duration_seconds",
            "Time each reload action took",
            action_seconds.clone(),
        );
        let api_requests = Family::<ApiResult, Counter>::default();
        registry.register(
            "kube_requests",
            "Kubernetes API requests (--events, --annotate-pod) by request and result",
            api_requests.clone(),
        );
        Metrics {
            registry,
            reloads,
            validation_failures,
            last_success,
            config_info,
            config_valid,
            watcher_errors,
            action_seconds,
            api_requests,
            current_hash: Mutex::new(None),
        }
    }
}

impl Metrics {
    pub fn reload(&self, action: &str, result: &str, took: Duration) {
        self.reloads
            .get_or_create(&ActionResult {
                action: action.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.action_seconds
            .get_or_create(&ActionLabel {
                action: action.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn succeeded_now(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_success.set(now.as_secs_f64());
    }

    /// Moves the info metric to the config the app now runs on.
    pub fn running(&self, hash: &str) {
        let mut current = self.current_hash.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = current.take() {
            self.config_info.remove(&HashLabel { hash: old });
        }
        self.config_info
            .get_or_create(&HashLabel {
                hash: hash.to_string(),
            })
            .set(1);
        *current = Some(hash.to_string());
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("encoding metrics: {e}");
        }
        out
    }
}

/// What `/readyz` and `/healthz` report.
#[derive(Debug, Clone)]
pub struct Health {
    /// `Ok` when the newest config is valid and applied; otherwise why not.
    pub ready: Result<(), String>,
    /// The watcher is running (missing folders make it degraded, not dead).
    pub alive: Result<(), String>,
}

/// What happened to a config version, for reporters beyond logs and metrics (Kubernetes Events, pod annotations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The config found at start is valid; nothing was done with it.
    Started { hash: String },
    /// A changed config is valid and in place: its actions succeeded, or it was published.
    Applied { hash: String, detail: String },
    /// Validation refused this version; the app keeps its last good one.
    Rejected {
        hash: String,
        /// Everything the validators said, config values included.
        reason: String,
        /// Where and what, quoting no value from the config.
        summary: String,
    },
    /// A valid version that could not be put in place: publishing failed, or the actions gave up.
    Failed { hash: String, reason: String },
}

/// Receives every [`Note`]; it must not block, since notes come from the event loop.
pub trait NoteSink: Send + Sync {
    fn note(&self, note: &Note);
}

pub struct Shared {
    pub health: Mutex<Health>,
    pub metrics: Metrics,
    sink: OnceLock<Box<dyn NoteSink>>,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Shared {
            health: Mutex::new(Health {
                ready: Err("no validated config yet".into()),
                alive: Ok(()),
            }),
            metrics: Metrics::default(),
            sink: OnceLock::new(),
        })
    }

    /// Installs the one reporter of notes; a second call is refused and returns it.
    pub fn set_sink(&self, sink: Box<dyn NoteSink>) -> Result<(), Box<dyn NoteSink>> {
        self.sink.set(sink)
    }

    pub fn note(&self, note: Note) {
        if let Some(sink) = self.sink.get() {
            sink.note(&note);
        }
    }

    pub fn set_ready(&self, ready: Result<(), String>) {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).ready = ready;
    }

    pub fn set_alive(&self, alive: Result<(), String>) {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).alive = alive;
    }

    fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

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

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
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
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(respond(&shared, &req)) }
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

fn respond(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/healthz" => match shared.health().alive {
            Ok(()) => text(StatusCode::OK, "ok\n".into()),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        },
        "/readyz" => match shared.health().ready {
            Ok(()) => text(StatusCode::OK, "ok\n".into()),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        },
        "/metrics" => {
            let mut response = text(StatusCode::OK, shared.metrics.encode());
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
            "try /healthz, /readyz or /metrics\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
