//! The Kubernetes API client pieces: connecting ([`client`]); the sidecar's Events and pod
//! annotations ([`report`]), paced and folded into series so that a burst of versions costs a
//! few writes ([`series`]); read-only reads of what the cluster runs for `plan --live` and
//! `inject --lookup` ([`live`]); `reconfig prune`, which deletes versioned config nothing
//! uses ([`prune`] talks to the API, [`versions`] decides); and `inject --carry`, which puts the
//! versions something still uses back into the render ([`live`] reads, [`carry`] decides).
//!
//! The API is optional (cargo feature `kube`): nothing else in the crate depends on it, and the
//! command line wires it in.

pub mod carry;
pub mod client;
pub mod labels;
pub mod live;
pub mod prune;
pub mod report;
pub mod series;
pub mod versions;

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
