//! How a config folder is laid out, which decides how it is read and which file events matter.

use std::path::Path;

/// The symlink kubelet swaps atomically on every update.
pub const DATA_LINK: &str = "..data";

/// How a folder is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A kubelet volume root: read through `..data`, react to its swap.
    Kubelet,
    /// Anything else: read recursively, react to any change after a quiet period.
    Plain,
}

pub fn layout(dir: &Path) -> Layout {
    if dir.join(DATA_LINK).symlink_metadata().is_ok() {
        Layout::Kubelet
    } else {
        Layout::Plain
    }
}

/// Names editors and kubelet use for temporary or hidden files: never part of a config,
/// and a change to one is no change. The one list, for reading and for file events.
pub fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name == "4913"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_and_hidden_files_are_ignored() {
        for name in [".hidden", "a.yaml~", ".a.yaml.swp", "a.yaml.swx", "4913"] {
            assert!(ignored(name), "{name}");
        }
        for name in ["a.yaml", "4914", "swp", "sub"] {
            assert!(!ignored(name), "{name}");
        }
    }
}
