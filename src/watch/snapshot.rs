//! Reading a watched folder into memory, and the content hash that decides whether anything changed.
//!
//! A kubelet ConfigMap/Secret volume is read through its `..data` symlink,
//! resolved once, so a swap in the middle of a read can never mix two versions.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::validate::Candidate;

/// The symlink kubelet swaps atomically on every update.
pub const DATA_LINK: &str = "..data";

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

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
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
}

/// How a folder is laid out, which decides how it is read and which events matter.
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

/// One file: its name inside its folder and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The visible files of every watched folder, keyed by the path a user would write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub files: BTreeMap<String, File>,
    /// Folders whose files were read, with the directory actually read (the `..data` target for kubelet volumes).
    pub sources: Vec<(PathBuf, PathBuf)>,
}

impl Snapshot {
    /// Reads every folder; all must be readable for the snapshot to count.
    pub fn read(dirs: &[PathBuf], limits: Limits) -> Result<Snapshot, SnapshotError> {
        let mut snapshot = Snapshot::default();
        for dir in dirs {
            if dir.is_file() {
                let name = dir
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                let bytes = read_file(dir, limits)?;
                snapshot
                    .files
                    .insert(dir.display().to_string(), File { name, bytes });
                snapshot
                    .sources
                    .push((dir.clone(), dir.parent().unwrap_or(dir).to_path_buf()));
                continue;
            }
            let root = match layout(dir) {
                Layout::Kubelet => {
                    let link = dir.join(DATA_LINK);
                    std::fs::canonicalize(&link).map_err(|source| io_or_missing(&link, source))?
                }
                Layout::Plain => dir.clone(),
            };
            if !root.is_dir() {
                return Err(SnapshotError::Missing(dir.clone()));
            }
            let mut found = Vec::new();
            walk(&root, &root, 0, limits, &mut found)?;
            for (name, bytes) in found {
                let path = dir.join(&name).display().to_string();
                if snapshot
                    .files
                    .insert(path.clone(), File { name, bytes })
                    .is_some()
                {
                    return Err(SnapshotError::Collision(path));
                }
            }
            snapshot.sources.push((dir.clone(), root));
        }
        Ok(snapshot)
    }

    /// SHA-256 over the sorted (path, content) pairs: equal content, equal hash, whatever the timestamps.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        for (path, file) in &self.files {
            hasher.update((path.len() as u64).to_be_bytes());
            hasher.update(path.as_bytes());
            hasher.update((file.bytes.len() as u64).to_be_bytes());
            hasher.update(&file.bytes);
        }
        hex::encode(hasher.finalize())
    }

    /// The files as the validator takes them, borrowed.
    pub fn candidates(&self) -> Vec<Candidate<'_>> {
        self.files
            .iter()
            .map(|(path, f)| Candidate {
                path,
                name: &f.name,
                bytes: &f.bytes,
            })
            .collect()
    }
}

fn io_or_missing(path: &Path, source: std::io::Error) -> SnapshotError {
    if source.kind() == std::io::ErrorKind::NotFound {
        SnapshotError::Missing(path.to_path_buf())
    } else {
        SnapshotError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Names editors and kubelet use for temporary or hidden files.
fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name == "4913"
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    limits: Limits,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), SnapshotError> {
    let entries = std::fs::read_dir(dir).map_err(|source| io_or_missing(dir, source))?;
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| io_or_missing(dir, source))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !ignored(&name) {
            names.push((name, entry.path()));
        }
    }
    names.sort();
    for (_, path) in names {
        let meta = std::fs::metadata(&path).map_err(|source| io_or_missing(&path, source))?;
        if meta.is_dir() {
            let is_link = std::fs::symlink_metadata(&path)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false);
            if depth + 1 < limits.max_depth && !is_link {
                walk(root, &path, depth + 1, limits, out)?;
            }
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        if out.len() >= limits.max_files {
            return Err(SnapshotError::TooMany(root.to_path_buf(), limits.max_files));
        }
        let bytes = read_file(&path, limits)?;
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        out.push((relative, bytes));
    }
    Ok(())
}

/// Reads one file, refusing it whole when it is over the limit (even if it grew while being read).
fn read_file(path: &Path, limits: Limits) -> Result<Vec<u8>, SnapshotError> {
    let too_large = |size| SnapshotError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: limits.max_file_size,
    };
    let file = std::fs::File::open(path).map_err(|source| io_or_missing(path, source))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > limits.max_file_size {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limits.max_file_size + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| io_or_missing(path, source))?;
    if bytes.len() as u64 > limits.max_file_size {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Why a `--dir` will never see updates, if it looks that way: a single file or a subPath mount.
pub fn never_updates(dir: &Path) -> Option<String> {
    if dir.is_file() {
        return Some(format!(
            "{} is a single file: a ConfigMap mounted with subPath never updates, and an edited file is replaced, not changed; mount the whole volume and watch its folder",
            dir.display()
        ));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let canonical = std::fs::canonicalize(dir).ok()?;
    subpath_mount(&mountinfo, &canonical).then(|| {
        format!(
            "{} is a subPath mount: kubelet never updates those; mount the whole volume and watch its root",
            dir.display()
        )
    })
}

/// A mount whose source is a sub-folder of its filesystem (field 4 is not `/`) and that holds no `..data`.
fn subpath_mount(mountinfo: &str, dir: &Path) -> bool {
    let dir = dir.display().to_string();
    mountinfo.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.len() > 4
            && fields[4] == dir
            && fields[3] != "/"
            && fields[3].contains("/volumes/kubernetes.io~")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_folders_are_read_recursively_without_hidden_or_editor_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.yaml"), "a: 1\n").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/b.conf"), "b").expect("write");
        for hidden in [".hidden", "a.yaml~", ".a.yaml.swp", "4913"] {
            std::fs::write(dir.path().join(hidden), "x").expect("write");
        }
        let snap = Snapshot::read(&[dir.path().to_path_buf()], Limits::default()).expect("read");
        let names: Vec<&str> = snap.files.values().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["a.yaml", "sub/b.conf"]);
        assert_eq!(layout(dir.path()), Layout::Plain);
    }

    #[test]
    fn kubelet_volumes_are_read_through_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ts = dir.path().join("..2026_11_22_10_00_00.123");
        std::fs::create_dir(&ts).expect("mkdir");
        std::fs::write(ts.join("app.yaml"), "x: 1\n").expect("write");
        std::os::unix::fs::symlink("..2026_11_22_10_00_00.123", dir.path().join("..data"))
            .expect("link");
        std::os::unix::fs::symlink("..data/app.yaml", dir.path().join("app.yaml")).expect("link");
        let snap = Snapshot::read(&[dir.path().to_path_buf()], Limits::default()).expect("read");
        assert_eq!(layout(dir.path()), Layout::Kubelet);
        assert_eq!(snap.files.len(), 1);
        let (path, file) = snap.files.iter().next().expect("one");
        assert_eq!(path, &dir.path().join("app.yaml").display().to_string());
        assert_eq!(file.bytes, b"x: 1\n");
        assert!(snap.sources[0].1.ends_with("..2026_11_22_10_00_00.123"));
    }

    #[test]
    fn hash_is_about_content() {
        let a = tempfile::tempdir().expect("tempdir");
        std::fs::write(a.path().join("f"), "1").expect("write");
        let dirs = [a.path().to_path_buf()];
        let first = Snapshot::read(&dirs, Limits::default())
            .expect("read")
            .hash();
        std::fs::write(a.path().join("f"), "1").expect("rewrite");
        assert_eq!(
            Snapshot::read(&dirs, Limits::default())
                .expect("read")
                .hash(),
            first
        );
        std::fs::write(a.path().join("f"), "2").expect("write");
        assert_ne!(
            Snapshot::read(&dirs, Limits::default())
                .expect("read")
                .hash(),
            first
        );
    }

    #[test]
    fn bounds_and_missing_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("big"), vec![b'x'; 100]).expect("write");
        let limits = Limits {
            max_file_size: 10,
            ..Limits::default()
        };
        assert!(matches!(
            Snapshot::read(&[dir.path().to_path_buf()], limits),
            Err(SnapshotError::TooLarge { .. })
        ));
        let gone = dir.path().join("gone");
        assert!(matches!(
            Snapshot::read(&[gone], Limits::default()),
            Err(SnapshotError::Missing(_))
        ));
    }

    #[test]
    fn single_files_and_subpath_mounts_are_flagged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.yaml");
        std::fs::write(&file, "a: 1").expect("write");
        assert!(never_updates(&file).is_some_and(|w| w.contains("single file")));
        assert!(never_updates(dir.path()).is_none());
        let info = "1210 1190 0:52 /var/lib/kubelet/pods/x/volumes/kubernetes.io~configmap/cfg/..2026/app.yaml /etc/app rw - tmpfs tmpfs rw\n";
        assert!(subpath_mount(info, Path::new("/etc/app")));
        assert!(!subpath_mount(info, Path::new("/etc/other")));
    }
}
