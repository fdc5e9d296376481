//! The Kubernetes API client pieces: connecting ([`client`]), and today's one user, the
//! sidecar's Events and pod annotations ([`report`]), paced and folded into series so that a
//! burst of versions costs a few writes ([`series`]).
//!
//! The API is optional (cargo feature `kube`): nothing else in the crate depends on it, and the
//! command line wires it in.

pub mod client;
pub mod report;
pub mod series;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::watch::metrics::ApiResult;
pub use client::KubeError;
pub use report::{Reporter, Settings};

/// Connects with `settings` and starts the reporting tasks; call inside the runtime.
pub async fn connect(
    settings: Settings,
    requests: Family<ApiResult, Counter>,
) -> Result<Reporter, KubeError> {
    let connection = client::connect(settings.timeout).await?;
    report::start(connection, settings, requests)
}
