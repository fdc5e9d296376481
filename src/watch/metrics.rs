//! The sidecar's Prometheus metrics: one registry, the metric types, and their text encoding.
//!
//! Counters are bumped where things happen (the action task, the Kubernetes reporter, the
//! engine); the gauges that describe the config's state are set only by `state`'s transitions.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::reload::ActionMetrics;

/// Labels of `reconfig_kube_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiResult {
    pub request: String,
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HashLabel {
    pub hash: String,
}

/// Labels of `reconfig_config_status`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

/// Everything `/metrics` reports.
pub struct Metrics {
    registry: Registry,
    /// Reload actions, counted by the action task.
    pub actions: ActionMetrics,
    pub validation_failures: Counter,
    pub last_success: Gauge<f64, AtomicU64>,
    pub config_info: Family<HashLabel, Gauge>,
    pub config_valid: Gauge,
    /// 1 for the phase of the newest version, 0 for the others; set only by `state`.
    config_status: Family<StatusLabel, Gauge>,
    pub watcher_errors: Counter,
    /// Versions that failed verification and were replaced by the newest verified one.
    pub rollbacks: Counter,
    pub api_requests: Family<ApiResult, Counter>,
    current_hash: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("reconfig");
        let actions = ActionMetrics::default();
        let validation_failures = Counter::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        let config_info = Family::<HashLabel, Gauge>::default();
        let config_valid = Gauge::default();
        let config_status = Family::<StatusLabel, Gauge>::default();
        let watcher_errors = Counter::default();
        let rollbacks = Counter::default();
        registry.register(
            "reloads",
            "Reload actions by action and result (success, failure, superseded)",
            actions.runs.clone(),
        );
        registry.register(
            "validation_failures",
            "Config versions rejected: refused by validation, or not readable whole (not forwarded)",
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
            "config_status",
            "What became of the newest config version: 1 for its status (waiting, applying, verifying, applied, rejected, failed, rolled-back), 0 for the others",
            config_status.clone(),
        );
        registry.register(
            "watcher_errors",
            "Errors reading or watching the config folders",
            watcher_errors.clone(),
        );
        registry.register(
            "action_duration_seconds",
            "Time each reload action took",
            actions.seconds.clone(),
        );
        registry.register(
            "rollbacks",
            "Config versions that failed verification and were replaced by the newest verified one (--publish)",
            rollbacks.clone(),
        );
        let api_requests = Family::<ApiResult, Counter>::default();
        registry.register(
            "kube_requests",
            "Kubernetes API requests (--events, --annotate-pod) by request and result",
            api_requests.clone(),
        );
        Metrics {
            registry,
            actions,
            validation_failures,
            last_success,
            config_info,
            config_valid,
            config_status,
            watcher_errors,
            rollbacks,
            api_requests,
            current_hash: Mutex::new(None),
        }
    }
}

impl Metrics {
    /// Sets the time of the last fully successful reload to now.
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

    /// No config known to work runs (it failed verification): the info metric names none.
    pub fn not_running(&self) {
        let mut current = self.current_hash.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = current.take() {
            self.config_info.remove(&HashLabel { hash: old });
        }
    }

    /// Sets `reconfig_config_status`: 1 for `current`, 0 for every other of `all`.
    pub fn status(&self, all: &[&str], current: &str) {
        for status in all {
            self.config_status
                .get_or_create(&StatusLabel {
                    status: (*status).to_string(),
                })
                .set(i64::from(*status == current));
        }
    }

    /// The OpenMetrics text `/metrics` serves.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("encoding metrics: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_info_metric_names_only_the_running_config() {
        let metrics = Metrics::default();
        metrics.running("aaa");
        metrics.running("bbb");
        let text = metrics.encode();
        assert!(
            text.contains("reconfig_config_info{hash=\"bbb\"} 1"),
            "{text}"
        );
        assert!(!text.contains("hash=\"aaa\""), "{text}");
    }
}
