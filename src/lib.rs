//! reconfig: make Kubernetes config changes take effect safely.
//!
//! The library holds the logic; `main.rs` and the subcommand modules only wire
//! it to the command line, files and the terminal.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod check;
pub mod cli;
pub mod inject;
#[cfg(feature = "kube")]
pub mod kube;
pub mod logging;
pub mod manifest;
pub mod plan;
pub mod reload;
pub mod validate;
pub mod watch;

/// How a command failed, which decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The input or config is invalid: exit code 1.
    #[error("{0}")]
    Invalid(String),
    /// Bad usage, or the environment failed us (unreadable file, closed stdout): exit code 2.
    #[error("{0:#}")]
    Usage(anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Invalid(_) => 1,
            Failure::Usage(_) => 2,
        }
    }
}

/// Random bits for names and jitter, from std's per-process hasher keys and the clock;
/// not for cryptography, and no RNG crate needed.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    h.write_u128(now.unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}
