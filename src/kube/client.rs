//! Connecting to the API server (kubeconfig or in-cluster service account) with our time
//! limits and retry policy, and saying what an API error means for the user.

use std::time::Duration;

/// Where the fix for a refusal is.
const RBAC_HINT: &str = "grant it with the Role in helm-snippets (reconfig.watch.rbac)";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The inner error is shown, not chained: its own chain repeats it.
    #[error(
        "no Kubernetes API access (neither a kubeconfig nor an in-cluster service account): {0}"
    )]
    Config(kube::config::InferConfigError),
    #[error("cannot use the kubeconfig context `{0}`: {1}")]
    Context(String, kube::config::KubeconfigError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(kube::Error),
    #[error("cannot tell which pod this is: set POD_NAME from the downward API, or --pod-name")]
    NoPodName,
}

/// A client, and what it was configured with.
pub struct Connection {
    pub client: kube::Client,
    /// The kubeconfig's or service account's namespace.
    pub default_namespace: String,
    /// The API server, for the log.
    pub cluster: String,
}

/// Infers the configuration and builds a client whose every request ends within `timeout`.
pub async fn connect(timeout: Duration) -> Result<Connection, KubeError> {
    let config = kube::Config::infer().await.map_err(KubeError::Config)?;
    with_limits(config, timeout)
}

/// `connect`, through a named kubeconfig context instead of the current one when `context`
/// is given (`plan --live --context`, `inject --lookup --context`).
pub async fn connect_in(timeout: Duration, context: Option<&str>) -> Result<Connection, KubeError> {
    let Some(context) = context else {
        return connect(timeout).await;
    };
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_kubeconfig(&options)
        .await
        .map_err(|e| KubeError::Context(context.to_string(), e))?;
    with_limits(config, timeout)
}

/// Builds the client with our time limits and retry policy.
fn with_limits(mut config: kube::Config, timeout: Duration) -> Result<Connection, KubeError> {
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    // One retry policy, ours: the client's own would retry inside our time limit.
    config.default_retry = false;
    let default_namespace = config.default_namespace.clone();
    let cluster = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(KubeError::Client)?;
    Ok(Connection {
        client,
        default_namespace,
        cluster,
    })
}

/// Server errors, throttling and transport failures may pass; a refusal will not.
pub fn retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => true,
    }
}

/// One line for the log, with the fix when the cause is known.
pub fn explain(e: &kube::Error, permission: &str) -> String {
    match e {
        kube::Error::Api(status) => {
            let text = format!("{} {}: {}", status.code, status.reason, status.message);
            match status.code {
                403 => format!("{text} (the service account needs `{permission}`: {RBAC_HINT})"),
                404 => format!(
                    "{text} (is POD_NAME/POD_NAMESPACE this pod? set them from the downward API)"
                ),
                _ => text,
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_not_retried_and_carry_their_fix() {
        let status = |code: u16| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                reason: "Forbidden".into(),
                message: "events.events.k8s.io is forbidden".into(),
                ..kube::core::Status::default()
            }))
        };
        assert!(!retryable(&status(403)));
        assert!(!retryable(&status(422)));
        assert!(retryable(&status(429)));
        assert!(retryable(&status(503)));
        let text = explain(&status(403), "create events.events.k8s.io");
        assert!(
            text.starts_with("403 Forbidden: events.events.k8s.io is forbidden"),
            "{text}"
        );
        assert!(text.contains("reconfig.watch.rbac"), "{text}");
    }
}
