//! `reconfig admit`: the policy as a ValidatingAdmissionWebhook, so a bad ConfigMap or Secret
//! is refused when it is applied, not found by the next pod that restarts on it.
//!
//! `review` reads AdmissionReviews and writes answers, `server` serves them over TLS (and
//! probes and metrics on a plain port), `tls` holds the swappable certificate, `reload` takes
//! a rotated certificate or an edited policy while serving. The verdict is `policy`'s, the same
//! evaluation `check` and `watch` run.

mod metrics;
mod reload;
mod review;
mod server;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::policy;

/// Everything the webhook runs with.
pub struct Settings {
    pub policy: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub listen: String,
    pub probe_listen: String,
    pub timeout: Duration,
    pub max_body: usize,
    pub allow_commands: bool,
    pub reload_interval: Duration,
}

/// Why the webhook could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Policy(#[from] policy::PolicyError),
    #[error("the serving certificate: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("listening on {listen}: {source}")]
    Listen {
        listen: String,
        source: std::io::Error,
    },
    #[error("waiting for signals: {0}")]
    Signals(std::io::Error),
}

/// Loads the policy and the certificate (both must be good to start), listens, and serves
/// until SIGTERM or SIGINT.
pub async fn run(settings: Settings) -> Result<(), Error> {
    let loaded = policy::load(&settings.policy)?;
    let skipped = loaded.policy.rules_with_commands();
    if !settings.allow_commands && !skipped.is_empty() {
        warn!(
            "rules {} run commands, which admit skips without --allow-commands (check and watch run them)",
            skipped.join(", ")
        );
    }
    let cert = tls::read_pem(&settings.cert)?;
    let key = tls::read_pem(&settings.key)?;
    let certificate = tls::Certificate::new(tls::certified_key(&cert, &key)?);
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(Arc::clone(&certificate))?));
    let shared = server::Shared::new(
        loaded.policy,
        settings.max_body,
        settings.timeout,
        settings.allow_commands,
    );
    let reviews = bind(&settings.listen).await?;
    let probes = bind(&settings.probe_listen).await?;
    info!(
        listen = %local(&reviews),
        probes = %local(&probes),
        policy = %settings.policy.display(),
        "serving AdmissionReviews on /validate"
    );
    let reloader = reload::Reloader::new(
        reload::Files {
            cert: settings.cert.clone(),
            key: settings.key.clone(),
            policy: settings.policy.clone(),
        },
        certificate,
        Arc::clone(&shared),
        reload::cert_digest(&cert, &key),
        loaded.sources,
        loaded.fingerprint,
    );
    let tasks = [
        tokio::spawn(server::serve_reviews(
            reviews,
            acceptor,
            Arc::clone(&shared),
        )),
        tokio::spawn(server::serve_probes(probes, Arc::clone(&shared))),
        tokio::spawn(reloader.run(settings.reload_interval)),
    ];
    let stopped = stop_signal().await;
    info!("stopping");
    for task in tasks {
        task.abort();
    }
    stopped
}

async fn bind(listen: &str) -> Result<tokio::net::TcpListener, Error> {
    server::bind(listen).await.map_err(|source| Error::Listen {
        listen: listen.to_string(),
        source,
    })
}

fn local(listener: &tokio::net::TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|e| e.to_string(), |a| a.to_string())
}

async fn stop_signal() -> Result<(), Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
