//! `reconfig admit`'s Prometheus metrics: reviews by operation and result, their latency,
//! and the reloads of the policy and the certificate.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    pub operation: String,
    /// `allowed`, `warned`, `denied`, `error` (not judged in time: HTTP 503).
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `success` or `failure` (the new file refused, the old one kept).
    pub result: String,
}

pub struct Metrics {
    registry: Registry,
    pub reviews: Family<ReviewLabels, Counter>,
    pub duration: Histogram,
    pub bad_requests: Counter,
    pub policy_reloads: Family<ReloadLabels, Counter>,
    pub certificate_reloads: Family<ReloadLabels, Counter>,
    /// 1 while the policy in force is the newest file's, 0 while a refused one waits.
    pub policy_current: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("reconfig_admit");
        let reviews = Family::<ReviewLabels, Counter>::default();
        let duration = Histogram::new([
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ]);
        let bad_requests = Counter::default();
        let policy_reloads = Family::<ReloadLabels, Counter>::default();
        let certificate_reloads = Family::<ReloadLabels, Counter>::default();
        let policy_current = Gauge::default();
        policy_current.set(1);
        registry.register(
            "reviews",
            "AdmissionReviews answered, by operation and result",
            reviews.clone(),
        );
        registry.register(
            "review_duration_seconds",
            "Time from a review's request read to its answer",
            duration.clone(),
        );
        registry.register(
            "bad_requests",
            "Requests refused with HTTP 400 (malformed, truncated, oversized)",
            bad_requests.clone(),
        );
        registry.register(
            "policy_reloads",
            "Policy file changes, by whether the new policy was taken",
            policy_reloads.clone(),
        );
        registry.register(
            "certificate_reloads",
            "Certificate or key changes, by whether the new pair was taken",
            certificate_reloads.clone(),
        );
        registry.register(
            "policy_current",
            "1 when the policy in force is the newest file's, 0 while a refused one is on disk",
            policy_current.clone(),
        );
        Metrics {
            registry,
            reviews,
            duration,
            bad_requests,
            policy_reloads,
            certificate_reloads,
            policy_current,
        }
    }
}

impl Metrics {
    pub fn review(&self, operation: &str, result: &str) {
        self.reviews
            .get_or_create(&ReviewLabels {
                operation: operation.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn policy_reload(&self, success: bool) {
        reload(&self.policy_reloads, success);
        self.policy_current.set(i64::from(success));
    }

    pub fn certificate_reload(&self, success: bool) {
        reload(&self.certificate_reloads, success);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("encoding metrics: {e}");
        }
        out
    }
}

fn reload(family: &Family<ReloadLabels, Counter>, success: bool) {
    family
        .get_or_create(&ReloadLabels {
            result: if success { "success" } else { "failure" }.to_string(),
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels() {
        let metrics = Metrics::default();
        metrics.review("CREATE", "denied");
        metrics.policy_reload(false);
        metrics.duration.observe(0.001);
        let text = metrics.encode();
        assert!(
            text.contains("reconfig_admit_reviews_total{operation=\"CREATE\",result=\"denied\"} 1"),
            "{text}"
        );
        assert!(text.contains("reconfig_admit_policy_reloads_total{result=\"failure\"} 1"));
        assert!(text.contains("reconfig_admit_policy_current 0"));
        assert!(text.contains("reconfig_admit_review_duration_seconds_count 1"));
    }
}
