//! Taking a new certificate or policy while serving. The files are looked at every
//! `--reload-interval` (through symlinks, so kubelet's `..data` swap of a mounted Secret or
//! ConfigMap is seen like any rewrite); a change is loaded whole and checked first. A pair that
//! does not fit, or a policy that does not load, is refused with a log line and a metric, and
//! what was being served stays.
//!
//! Looking is cheap (three small files read and hashed) and kubelet itself updates mounted
//! Secrets a minute or so after the API change, so a one-second look adds nothing noticeable,
//! and it cannot miss an event the way a lost inotify watch can.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tracing::{error, info};

use super::server::Shared;
use super::tls::{certified_key, read_pem, Certificate};
use crate::policy::load::{fingerprint, load};

/// The files to look at.
pub struct Files {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub policy: PathBuf,
}

/// What was last taken, or last refused (so a refusal is reported once).
pub struct Reloader {
    files: Files,
    certificate: Arc<Certificate>,
    shared: Arc<Shared>,
    cert_digest: String,
    cert_refused: Option<String>,
    policy_sources: Vec<PathBuf>,
    policy_fingerprint: String,
    policy_refused: Option<String>,
}

impl Reloader {
    pub fn new(
        files: Files,
        certificate: Arc<Certificate>,
        shared: Arc<Shared>,
        cert_digest: String,
        policy_sources: Vec<PathBuf>,
        policy_fingerprint: String,
    ) -> Self {
        Reloader {
            files,
            certificate,
            shared,
            cert_digest,
            cert_refused: None,
            policy_sources,
            policy_fingerprint,
            policy_refused: None,
        }
    }

    /// Looks every `interval` until the task is dropped.
    pub async fn run(mut self, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            self.certificate_once();
            self.policy_once();
        }
    }

    fn certificate_once(&mut self) {
        let pair = read_pem(&self.files.cert).and_then(|c| Ok((c, read_pem(&self.files.key)?)));
        let (cert, key) = match pair {
            Ok(pair) => pair,
            Err(e) => return self.refuse_certificate(e.to_string(), e.to_string()),
        };
        let digest = cert_digest(&cert, &key);
        if digest == self.cert_digest {
            self.cert_refused = None;
            return;
        }
        match certified_key(&cert, &key) {
            Ok(certified) => {
                self.certificate.replace(certified);
                self.cert_digest = digest;
                self.cert_refused = None;
                self.shared.metrics.certificate_reload(true);
                info!(cert = %self.files.cert.display(), "serving the new certificate");
            }
            Err(e) => self.refuse_certificate(digest, e.to_string()),
        }
    }

    fn refuse_certificate(&mut self, what: String, why: String) {
        if self.cert_refused.as_ref() == Some(&what) {
            return;
        }
        error!(cert = %self.files.cert.display(), "the new certificate is refused, the old one is served: {why}");
        self.shared.metrics.certificate_reload(false);
        self.cert_refused = Some(what);
    }

    fn policy_once(&mut self) {
        let now = fingerprint(&self.policy_sources);
        if now.as_deref() == Some(self.policy_fingerprint.as_str()) {
            return;
        }
        match load(&self.files.policy) {
            Ok(loaded) => {
                if loaded.fingerprint == self.policy_fingerprint {
                    return;
                }
                let refused_commands = loaded.policy.rules_with_commands();
                if !self.shared.allow_commands && !refused_commands.is_empty() {
                    info!(
                        "rules {} run commands, which admit skips without --allow-commands",
                        refused_commands.join(", ")
                    );
                }
                self.shared.replace_policy(loaded.policy);
                self.policy_sources = loaded.sources;
                self.policy_fingerprint = loaded.fingerprint;
                self.policy_refused = None;
                self.shared.metrics.policy_reload(true);
                info!(policy = %self.files.policy.display(), "policy reloaded");
            }
            Err(e) => {
                let why = e.to_string();
                if self.policy_refused.as_ref() == Some(&why) {
                    return;
                }
                error!(policy = %self.files.policy.display(), "the new policy is refused, the old one stays in force: {}", why.replace('\n', "; "));
                self.shared.metrics.policy_reload(false);
                self.policy_refused = Some(why);
            }
        }
    }
}

/// Identifies a certificate and key pair as read.
pub fn cert_digest(cert: &[u8], key: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update((cert.len() as u64).to_be_bytes());
    digest.update(cert);
    digest.update(key);
    hex::encode(digest.finalize())
}
