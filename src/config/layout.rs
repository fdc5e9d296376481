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

/// Whether a name found in a folder of this layout is part of the config.
///
/// In a kubelet volume every key counts, `.env`, `4913` or `app.yaml~` included (all valid
/// ConfigMap keys; no editor works inside `..data`): only kubelet's own `..` entries never do.
/// In a plain folder, editors' files are [`ignored`].
pub fn is_config_name(layout: Layout, name: &str) -> bool {
    match layout {
        Layout::Kubelet => !name.starts_with(".."),
        Layout::Plain => !ignored(name),
    }
}

/// Names editors use for temporary or hidden files in a plain folder: never part of a config,
/// and a change to one is no change. The one list, for reading and for file events; a kubelet
/// volume ignores none of them (see [`is_config_name`]).
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

    #[test]
    fn every_key_counts_in_a_kubelet_volume_but_its_own_entries() {
        for name in [".env", "4913", "a.yaml~", ".a.yaml.swp", "a.yaml"] {
            assert!(is_config_name(Layout::Kubelet, name), "{name}");
        }
        for name in ["..data", "..data_tmp", "..2026_11_22_10_00_00.1"] {
            assert!(!is_config_name(Layout::Kubelet, name), "{name}");
            assert!(!is_config_name(Layout::Plain, name), "{name}");
        }
        assert!(!is_config_name(Layout::Plain, ".env"));
        assert!(is_config_name(Layout::Plain, "a.yaml"));
    }
}
