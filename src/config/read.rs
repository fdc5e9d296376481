//! Reading config folders into memory, and the content hash that decides whether anything changed.
//!
//! A kubelet ConfigMap/Secret volume is read through its `..data` symlink,
//! resolved once, so a swap in the middle of a read can never mix two versions.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::layout::{ignored, layout, Layout, DATA_LINK};
use super::{ConfigFile, Limits, ReadError};

/// The visible files of every folder read, in the order of their paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Sorted by `path`, each path once.
    pub files: Vec<ConfigFile>,
    /// Folders whose files were read, with the directory actually read (the `..data` target for kubelet volumes).
    pub sources: Vec<(PathBuf, PathBuf)>,
}

impl Snapshot {
    /// Reads every folder; all must be readable for the snapshot to count.
    pub fn read(dirs: &[PathBuf], limits: Limits) -> Result<Snapshot, ReadError> {
        let mut files: BTreeMap<String, ConfigFile> = BTreeMap::new();
        let mut sources = Vec::new();
        for dir in dirs {
            if dir.is_file() {
                let name = dir
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                let bytes = read_file(dir, limits)?;
                let path = dir.display().to_string();
                files.insert(path.clone(), ConfigFile { path, name, bytes });
                sources.push((dir.clone(), dir.parent().unwrap_or(dir).to_path_buf()));
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
                return Err(ReadError::Missing(dir.clone()));
            }
            let mut found = Vec::new();
            walk(&root, &root, 0, limits, &mut found)?;
            for (name, bytes) in found {
                let path = dir.join(&name).display().to_string();
                let file = ConfigFile {
                    path: path.clone(),
                    name,
                    bytes,
                };
                if files.insert(path.clone(), file).is_some() {
                    return Err(ReadError::Collision(path));
                }
            }
            sources.push((dir.clone(), root));
        }
        Ok(Snapshot {
            files: files.into_values().collect(),
            sources,
        })
    }

    /// SHA-256 over the sorted (path, content) pairs: equal content, equal hash, whatever the timestamps.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        for file in &self.files {
            hasher.update((file.path.len() as u64).to_be_bytes());
            hasher.update(file.path.as_bytes());
            hasher.update((file.bytes.len() as u64).to_be_bytes());
            hasher.update(&file.bytes);
        }
        hex::encode(hasher.finalize())
    }

    /// The folder holding the files an external validator should read: the first one read
    /// (the `..data` target of a kubelet volume, the folder of a single file).
    pub fn folder(&self) -> Option<&Path> {
        self.sources.first().map(|(_, read)| read.as_path())
    }
}

fn io_or_missing(path: &Path, source: std::io::Error) -> ReadError {
    if source.kind() == std::io::ErrorKind::NotFound {
        ReadError::Missing(path.to_path_buf())
    } else {
        ReadError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    limits: Limits,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), ReadError> {
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
            return Err(ReadError::TooMany(root.to_path_buf(), limits.max_files));
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
fn read_file(path: &Path, limits: Limits) -> Result<Vec<u8>, ReadError> {
    let too_large = |size| ReadError::TooLarge {
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
        let names: Vec<&str> = snap.files.iter().map(|f| f.name.as_str()).collect();
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
        let file = snap.files.first().expect("one");
        assert_eq!(file.path, dir.path().join("app.yaml").display().to_string());
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
            Err(ReadError::TooLarge { .. })
        ));
        let gone = dir.path().join("gone");
        assert!(matches!(
            Snapshot::read(&[gone], Limits::default()),
            Err(ReadError::Missing(_))
        ));
    }
}
