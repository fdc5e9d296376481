//! Reading config folders into memory, and the content hash that decides whether anything changed.
//!
//! A kubelet ConfigMap/Secret volume is read through its `..data` symlink,
//! resolved once, so a swap in the middle of a read can never mix two versions.
//!
//! Nothing outside the folder is ever read (a version holding a link to `/etc/shadow` is
//! refused, not published). In a kubelet volume, kubelet's own links are the only ones
//! followed: `..data` must lead to a folder of the volume, the visible `NAME -> ..data/NAME`
//! links are not read at all, and a link inside `..data`, where kubelet never puts one, is
//! refused. In a plain folder, a link is followed when its target stays inside the folder.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::layout::{is_config_name, layout, Layout, DATA_LINK};
use super::{ConfigFile, Limits, ReadError};

/// The permission bits kept from what is read: never setuid, setgid or sticky.
const PERMISSION_BITS: u32 = 0o777;

/// The visible files of every folder read, in the order of their paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Sorted by `path`, each path once.
    pub files: Vec<ConfigFile>,
    /// The permission bits of the folders read, by name relative to them (`""` for the folders
    /// themselves, the narrowest of them), so that a published copy is no wider.
    pub folders: BTreeMap<String, u32>,
    /// Folders whose files were read, with the directory actually read (the `..data` target for kubelet volumes).
    pub sources: Vec<(PathBuf, PathBuf)>,
}

impl Snapshot {
    /// Reads every folder; all must be readable for the snapshot to count.
    pub fn read(dirs: &[PathBuf], limits: Limits) -> Result<Snapshot, ReadError> {
        let mut files: BTreeMap<String, ConfigFile> = BTreeMap::new();
        let mut folders: BTreeMap<String, u32> = BTreeMap::new();
        let mut sources = Vec::new();
        for dir in dirs {
            if dir.is_file() {
                let name = dir
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                // The user named this file: it is read wherever a link of theirs leads.
                let (bytes, mode) = read_file(dir, Follow::Yes, limits)?;
                let path = dir.display().to_string();
                files.insert(
                    path.clone(),
                    ConfigFile {
                        path,
                        name,
                        bytes,
                        mode,
                    },
                );
                sources.push((dir.clone(), dir.parent().unwrap_or(dir).to_path_buf()));
                continue;
            }
            let layout = layout(dir);
            let (root, boundary) = match layout {
                Layout::Kubelet => {
                    let link = dir.join(DATA_LINK);
                    let target = std::fs::canonicalize(&link)
                        .map_err(|source| io_or_missing(&link, source))?;
                    let volume =
                        std::fs::canonicalize(dir).map_err(|source| io_or_missing(dir, source))?;
                    if target.parent() != Some(volume.as_path()) {
                        return Err(ReadError::LinkOutside {
                            link,
                            target,
                            folder: dir.clone(),
                        });
                    }
                    (target.clone(), target)
                }
                Layout::Plain => {
                    let boundary =
                        std::fs::canonicalize(dir).map_err(|source| io_or_missing(dir, source))?;
                    (dir.clone(), boundary)
                }
            };
            let root_meta =
                std::fs::metadata(&root).map_err(|source| io_or_missing(&root, source))?;
            if !root_meta.is_dir() {
                return Err(ReadError::Missing(dir.clone()));
            }
            narrowest(&mut folders, String::new(), root_meta.permissions().mode());
            let mut walk = Walk {
                root: &root,
                boundary: &boundary,
                layout,
                limits,
                files: Vec::new(),
                folders: Vec::new(),
            };
            walk.folder(&root, 0)?;
            for (name, mode) in walk.folders {
                narrowest(&mut folders, name, mode);
            }
            for Found { name, bytes, mode } in walk.files {
                let path = dir.join(&name).display().to_string();
                let file = ConfigFile {
                    path: path.clone(),
                    name,
                    bytes,
                    mode,
                };
                if files.insert(path.clone(), file).is_some() {
                    return Err(ReadError::Collision(path));
                }
            }
            sources.push((dir.clone(), root));
        }
        Ok(Snapshot {
            files: files.into_values().collect(),
            folders,
            sources,
        })
    }

    /// SHA-256 over the sorted (path, mode, content) triples: equal files, equal hash, whatever
    /// the timestamps.
    ///
    /// The mode counts: a `chmod 600` in a plain folder is a new version, so the published copy
    /// is narrowed with it and never stays wider than its source. Kubelet rewrites a volume only
    /// when content changes, so for ConfigMap and Secret volumes this is the content hash.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        for file in &self.files {
            hasher.update((file.path.len() as u64).to_be_bytes());
            hasher.update(file.path.as_bytes());
            hasher.update(file.mode.to_be_bytes());
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

/// Keeps the narrowest permission bits seen for a folder name.
fn narrowest(folders: &mut BTreeMap<String, u32>, name: String, mode: u32) {
    let mode = mode & PERMISSION_BITS;
    folders
        .entry(name)
        .and_modify(|m| *m &= mode)
        .or_insert(mode);
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

/// One file found, named relative to the folder read.
struct Found {
    name: String,
    bytes: Vec<u8>,
    mode: u32,
}

/// One folder's recursive read.
struct Walk<'a> {
    /// The folder read; names are relative to it.
    root: &'a Path,
    /// `root` without symlinks: no link in a plain folder may lead outside it.
    boundary: &'a Path,
    layout: Layout,
    limits: Limits,
    files: Vec<Found>,
    folders: Vec<(String, u32)>,
}

impl Walk<'_> {
    fn folder(&mut self, dir: &Path, depth: usize) -> Result<(), ReadError> {
        let entries = std::fs::read_dir(dir).map_err(|source| io_or_missing(dir, source))?;
        let mut names: Vec<(String, PathBuf)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| io_or_missing(dir, source))?;
            let os_name = entry.file_name();
            let Some(name) = os_name.to_str() else {
                // Names are text everywhere after this (messages, schemas by name, Events): a
                // name that is not cannot be published under its own bytes, so it is refused.
                if is_config_name(self.layout, &os_name.to_string_lossy()) {
                    return Err(ReadError::NameNotText(entry.path()));
                }
                continue;
            };
            if is_config_name(self.layout, name) {
                names.push((name.to_string(), entry.path()));
            }
        }
        names.sort();
        for (_, path) in names {
            let meta =
                std::fs::symlink_metadata(&path).map_err(|source| io_or_missing(&path, source))?;
            let (source, meta) = if meta.file_type().is_symlink() {
                if self.layout == Layout::Kubelet {
                    let target = std::fs::read_link(&path).unwrap_or_default();
                    return Err(ReadError::LinkInVolume { link: path, target });
                }
                let target =
                    std::fs::canonicalize(&path).map_err(|source| io_or_missing(&path, source))?;
                if !target.starts_with(self.boundary) {
                    return Err(ReadError::LinkOutside {
                        link: path,
                        target,
                        folder: self.boundary.to_path_buf(),
                    });
                }
                let meta =
                    std::fs::metadata(&target).map_err(|source| io_or_missing(&path, source))?;
                if meta.is_dir() {
                    // Its files are read where they are, once.
                    continue;
                }
                (target, meta)
            } else {
                (path.clone(), meta)
            };
            if meta.is_dir() {
                if depth + 1 < self.limits.max_depth {
                    self.folders
                        .push((self.relative(&path), meta.permissions().mode()));
                    self.folder(&path, depth + 1)?;
                }
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            if self.files.len() >= self.limits.max_files {
                return Err(ReadError::TooMany(
                    self.root.to_path_buf(),
                    self.limits.max_files,
                ));
            }
            let (bytes, mode) =
                read_file(&source, Follow::No, self.limits).map_err(|e| match e {
                    // Read under the link's name, which is what the user sees.
                    ReadError::Io { source, .. } => ReadError::Io {
                        path: path.clone(),
                        source,
                    },
                    other => other,
                })?;
            let name = self.relative(&path);
            self.files.push(Found { name, bytes, mode });
        }
        Ok(())
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Whether a file may be opened through a symlink in its last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    /// A path the user named.
    Yes,
    /// A file found in a folder, already resolved: if it became a link since, it is not read.
    No,
}

/// Reads one file and its permission bits, refusing it whole when it is over the limit (even
/// if it grew while being read).
fn read_file(path: &Path, follow: Follow, limits: Limits) -> Result<(Vec<u8>, u32), ReadError> {
    let too_large = |size| ReadError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: limits.max_file_size,
    };
    // Non-blocking, so that a FIFO put in a file's place cannot hang the read; it is then
    // refused as not a file.
    let mut flags =
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NONBLOCK;
    if follow == Follow::No {
        flags |= rustix::fs::OFlags::NOFOLLOW;
    }
    let file = rustix::fs::open(path, flags, rustix::fs::Mode::empty())
        .map(std::fs::File::from)
        .map_err(|errno| io_or_missing(path, errno.into()))?;
    let meta = file
        .metadata()
        .map_err(|source| io_or_missing(path, source))?;
    if !meta.is_file() {
        return Err(ReadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("not a regular file"),
        });
    }
    let len = meta.len();
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
    Ok((bytes, meta.permissions().mode() & PERMISSION_BITS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_kubelet_volume_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ts = dir.path().join("..2026_11_22_10_00_00.1");
        std::fs::create_dir(&ts).expect("mkdir");
        for key in [".env", "4913", "a.yaml~", ".a.yaml.swp", "a.yaml"] {
            std::fs::write(ts.join(key), "x").expect("write");
        }
        std::os::unix::fs::symlink("..2026_11_22_10_00_00.1", dir.path().join("..data"))
            .expect("link");
        let snap = Snapshot::read(&[dir.path().to_path_buf()], Limits::default()).expect("read");
        let names: Vec<&str> = snap.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            vec![".a.yaml.swp", ".env", "4913", "a.yaml", "a.yaml~"]
        );
    }

    #[test]
    fn links_out_of_the_folder_are_refused_and_links_inside_are_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outside = tmp.path().join("shadow");
        std::fs::write(&outside, "secret").expect("write");
        let dir = tmp.path().join("conf");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("a.yaml"), "a: 1\n").expect("write");
        std::os::unix::fs::symlink("a.yaml", dir.join("b.yaml")).expect("link");
        let dirs = [dir.clone()];
        let snap = Snapshot::read(&dirs, Limits::default()).expect("read");
        let names: Vec<&str> = snap.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["a.yaml", "b.yaml"]);
        assert_eq!(snap.files[1].bytes, b"a: 1\n");

        std::os::unix::fs::symlink("../shadow", dir.join("c")).expect("link");
        let err = Snapshot::read(&dirs, Limits::default()).expect_err("refused");
        assert!(matches!(err, ReadError::LinkOutside { .. }), "{err}");
        assert!(err.rejects_config());
        assert!(!err.to_string().contains("secret"), "{err}");
        std::fs::remove_file(dir.join("c")).expect("rm");

        // A link to a folder outside is refused too, not silently skipped.
        std::os::unix::fs::symlink("/etc", dir.join("etc")).expect("link");
        assert!(matches!(
            Snapshot::read(&dirs, Limits::default()),
            Err(ReadError::LinkOutside { .. })
        ));
    }

    #[test]
    fn a_link_inside_data_is_refused_wherever_it_leads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ts = dir.path().join("..2026_11_22_10_00_00.1");
        std::fs::create_dir(&ts).expect("mkdir");
        std::fs::write(ts.join("a.yaml"), "x").expect("write");
        std::os::unix::fs::symlink("a.yaml", ts.join("b.yaml")).expect("link");
        std::os::unix::fs::symlink("..2026_11_22_10_00_00.1", dir.path().join("..data"))
            .expect("link");
        let err =
            Snapshot::read(&[dir.path().to_path_buf()], Limits::default()).expect_err("refused");
        assert!(matches!(err, ReadError::LinkInVolume { .. }), "{err}");
        assert!(err.rejects_config());
    }

    #[test]
    fn a_data_link_out_of_the_volume_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        std::fs::write(elsewhere.join("a"), "x").expect("write");
        let vol = tmp.path().join("vol");
        std::fs::create_dir(&vol).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, vol.join("..data")).expect("link");
        assert!(matches!(
            Snapshot::read(&[vol], Limits::default()),
            Err(ReadError::LinkOutside { .. })
        ));
    }

    #[test]
    fn names_that_are_not_utf8_are_refused_unless_ignored() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.yaml"), "x").expect("write");
        let hidden = std::ffi::OsStr::from_bytes(b".a\xff.swp");
        std::fs::write(dir.path().join(hidden), "x").expect("write");
        let dirs = [dir.path().to_path_buf()];
        assert!(Snapshot::read(&dirs, Limits::default()).is_ok());
        let bad = std::ffi::OsStr::from_bytes(b"b\xff.yaml");
        std::fs::write(dir.path().join(bad), "x").expect("write");
        let err = Snapshot::read(&dirs, Limits::default()).expect_err("refused");
        assert!(matches!(err, ReadError::NameNotText(_)), "{err}");
        assert!(err.to_string().contains(r"b\xFF.yaml"), "{err}");
    }

    #[test]
    fn modes_are_read_and_count_in_the_hash() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a");
        std::fs::write(&file, "x").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4640)).expect("chmod");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::set_permissions(
            dir.path().join("sub"),
            std::fs::Permissions::from_mode(0o750),
        )
        .expect("chmod");
        let dirs = [dir.path().to_path_buf()];
        let snap = Snapshot::read(&dirs, Limits::default()).expect("read");
        assert_eq!(snap.files[0].mode, 0o640, "never setuid");
        assert_eq!(snap.folders.get("sub"), Some(&0o750));
        assert!(snap.folders.contains_key(""));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let narrowed = Snapshot::read(&dirs, Limits::default()).expect("read");
        assert_ne!(narrowed.hash(), snap.hash());
    }

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
