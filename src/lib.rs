//! reconfig: make Kubernetes config changes take effect safely.
//!
//! The library holds the logic: reading inputs (`input`), the models and the decisions
//! (`manifest`, `validate`), and the sidecar's run time (`watch`, `reload`). `cli/` only
//! wires those to the command line, files and the terminal, and `main.rs` only starts it.
#![forbid(unsafe_code)]

pub mod admit;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod config;
pub mod input;
#[cfg(feature = "kube")]
pub mod kube;
pub mod logging;
pub mod manifest;
pub mod pipe;
pub mod policy;
pub mod process;
pub mod reload;
pub mod units;
pub mod validate;
pub mod watch;

/// How a command failed, which decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The input or config is invalid, or failed validation: exit code 1.
    #[error("{0}")]
    Invalid(String),
    /// Bad flags or arguments that clap could not catch (a `--validate-cmd` that does not
    /// parse, an empty key file): exit code 2.
    #[error("{0:#}")]
    Usage(anyhow::Error),
    /// The environment or the program failed us (an unreadable file, a closed stdout, a
    /// runtime that would not start): exit code 2.
    #[error("{0:#}")]
    Internal(anyhow::Error),
    /// A dry run found a change bigger than allowed (`plan --max-restarts`,
    /// `--fail-on-restart`): exit code 3, so CI can tell it from broken input.
    #[error("{0}")]
    Limit(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Invalid(_) => 1,
            Failure::Usage(_) | Failure::Internal(_) => 2,
            Failure::Limit(_) => 3,
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
