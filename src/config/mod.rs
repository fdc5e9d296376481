//! Config folders as files: reading a mounted ConfigMap/Secret volume or a plain folder,
//! within limits, into one type for "a named file's bytes", and the content hash.
//!
//! `check`, `watch` and the validator all see a config through this module, so
//! a folder is read, bounded and named the same way in CI as in the sidecar.
//! It knows nothing of what makes a config valid (that is `validate`) nor of
//! what happens after (the sidecar's `watch`).

pub mod layout;
pub mod mount;
pub mod read;
pub mod stage;

use std::path::PathBuf;

/// One config file: the path users see, its name inside its folder, its bytes and its mode.
///
/// For a folder, `path` is the folder joined with `name`; for `check --manifests`,
/// a ConfigMap's or Secret's key is `configmap/NAME/KEY` (or `secret/…`), named `KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: String,
    pub name: String,
    pub bytes: Vec<u8>,
    /// The permission bits read (`0o777` at most; never setuid, setgid or sticky), which a
    /// published copy keeps: a Secret mounted 0400 is never published wider.
    pub mode: u32,
}

/// The mode of a file that was not read from disk (a manifest's key): kubelet's `defaultMode`.
pub const DEFAULT_MODE: u32 = 0o644;

/// Bounds on what one folder may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_file_size: u64,
    pub max_files: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: 8 * 1024 * 1024,
            max_files: 10_000,
            max_depth: 16,
        }
    }
}

/// Why a config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is {size} bytes, over the {limit}-byte limit (--max-file-size)")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{0} holds more than {1} files")]
    TooMany(PathBuf, usize),
    #[error("two watched folders both provide {0}")]
    Collision(String),
    #[error("{link} is a symlink to {target}, outside {folder}: refused (only links that stay inside the watched folder are followed)")]
    LinkOutside {
        link: PathBuf,
        target: PathBuf,
        folder: PathBuf,
    },
    #[error("{link} is a symlink (to {target}) in a kubelet volume's ..data folder, where kubelet never puts one: refused")]
    LinkInVolume { link: PathBuf, target: PathBuf },
    #[error(
        "{0:?} has a name that is not UTF-8: refused (config file names must be text; rename it)"
    )]
    NameNotText(PathBuf),
}

impl ReadError {
    /// Whether the config as it stands is invalid (rejected, never forwarded; `check` exits 1),
    /// rather than unreadable right now (missing, I/O: `check` exits 2, `watch` waits and keeps
    /// the last good one).
    pub fn rejects_config(&self) -> bool {
        match self {
            ReadError::TooLarge { .. }
            | ReadError::TooMany(..)
            | ReadError::Collision(_)
            | ReadError::LinkOutside { .. }
            | ReadError::LinkInVolume { .. }
            | ReadError::NameNotText(_) => true,
            ReadError::Missing(_) | ReadError::Io { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_are_sorted_into_invalid_or_unreadable() {
        let too_large = ReadError::TooLarge {
            path: PathBuf::from("a"),
            size: 2,
            limit: 1,
        };
        assert!(too_large.rejects_config());
        assert!(ReadError::Collision("a".into()).rejects_config());
        assert!(!ReadError::Missing(PathBuf::from("a")).rejects_config());
        let io = ReadError::Io {
            path: PathBuf::from("a"),
            source: std::io::Error::other("x"),
        };
        assert!(!io.rejects_config());
        assert!(ReadError::TooMany(PathBuf::from("a"), 1).rejects_config());
        let outside = ReadError::LinkOutside {
            link: PathBuf::from("/cfg/a"),
            target: PathBuf::from("/etc/shadow"),
            folder: PathBuf::from("/cfg"),
        };
        assert!(outside.rejects_config());
        assert!(ReadError::NameNotText(PathBuf::from("a")).rejects_config());
    }
}
