//! Publishing validated files in kubelet's own `..data` layout, so the app only ever reads validated config.
//!
//! One publication: files go into a new hidden timestamped folder (the stage,
//! which an external validator can inspect), a `..data_tmp` symlink to it is
//! renamed over `..data` (the atomic commit), visible names are symlinked
//! through `..data`, and the previous folder is removed, unless it is the newest verified
//! version: that one stays on disk, recorded in `..reconfig_versions` (see `versions.rs`), so
//! that a version failing verification can be replaced by it ([`Publisher::roll_back`]), even
//! by a sidecar that restarted in between.
//!
//! A stage that fails (a full disk, say) is removed at once, and stages an earlier run left
//! behind are removed at start: a failed version never takes the space the next one needs.
//! Files keep the mode they were read with; folders keep the source's, 0755 at most.

use std::collections::BTreeSet;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::versions::{self, Entry, Versions};
use crate::config::layout::DATA_LINK;
use crate::config::read::Snapshot;

const DATA_TMP: &str = "..data_tmp";
/// The record of versions (see `versions.rs`), and its temporary name while it is replaced.
const RECORD: &str = "..reconfig_versions";
const RECORD_TMP: &str = "..reconfig_versions_tmp";

/// The widest a published folder gets (kubelet's own folders are 0755).
const FOLDER_BITS: u32 = 0o755;

/// What the publisher itself needs on its folders while it writes, replaces and removes them.
const WRITING: u32 = 0o700;

#[derive(Debug, thiserror::Error)]
#[error("publishing into {dir}: {action}: {source}")]
pub struct PublishError {
    dir: PathBuf,
    action: String,
    source: std::io::Error,
}

pub struct Publisher {
    dir: PathBuf,
    versions: Versions,
    /// Keep the record on disk: only verification makes versions worth recording.
    record: bool,
}

/// Files written but not yet visible.
pub struct Stage {
    pub path: PathBuf,
    name: String,
    top_level: Vec<String>,
}

impl Publisher {
    /// A publisher into `dir`; stages an earlier run left there are removed now.
    pub fn new(dir: PathBuf) -> Self {
        Self::with_record(dir, false)
    }

    /// A publisher that keeps the record of versions (with verification): the stages it names
    /// are kept at start.
    pub fn with_record(dir: PathBuf, record: bool) -> Self {
        let mut publisher = Publisher {
            dir,
            versions: Versions::default(),
            record,
        };
        if record {
            publisher.versions = publisher.read_record();
        }
        publisher.remove_stale();
        publisher
    }

    /// What is published, what was verified, what failed.
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// The record as an earlier run left it; one that is unreadable or not ours counts as none
    /// (then nothing is known to be verified, and nothing is rolled back to).
    fn read_record(&self) -> Versions {
        let path = self.dir.join(RECORD);
        let text = match read_small(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Versions::default(),
            Err(e) => {
                tracing::warn!(
                    "cannot read {}: {e}; no version is known to be verified",
                    path.display()
                );
                return Versions::default();
            }
        };
        let mut versions = match Versions::parse(&text, is_stage_name) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("ignoring {}: {e}", path.display());
                return Versions::default();
            }
        };
        // A stage that is gone (removed by hand) cannot be put back.
        let current = std::fs::read_link(self.dir.join(DATA_LINK)).ok();
        if versions
            .current
            .as_ref()
            .is_some_and(|e| current.as_deref() != Some(Path::new(&e.stage)))
        {
            versions.current = None;
        }
        if versions
            .verified
            .as_ref()
            .is_some_and(|e| !self.dir.join(&e.stage).is_dir())
        {
            versions.verified = None;
        }
        versions
    }

    /// Writes the record atomically; a failure is logged: publishing goes on, only a restart
    /// would forget what the record says.
    fn write_record(&self) {
        if !self.record {
            return;
        }
        let tmp = self.dir.join(RECORD_TMP);
        let _ = std::fs::remove_file(&tmp);
        let written = write_file(&tmp, self.versions.render().as_bytes(), 0o600)
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(RECORD)));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(
                "cannot record the published versions in {}: {e}",
                self.dir.display()
            );
        }
    }

    /// The version in place was seen to work: it becomes the one to roll back to, and the one
    /// that was before leaves the disk.
    pub fn verified(&mut self, hash: &str) {
        let Some(current) = self.versions.current.clone().filter(|c| c.hash == hash) else {
            return;
        };
        if let Some(old) = self.versions.verified.replace(current.clone()) {
            if old.stage != current.stage {
                let _ = remove_stage(&self.dir.join(&old.stage));
            }
        }
        self.write_record();
    }

    /// A version failed verification: it is not tried again (see [`Versions::failed`]).
    pub fn failed(&mut self, hash: &str) {
        self.versions.fail(hash);
        self.write_record();
    }

    /// Puts the newest verified version back in place of the current one, which is removed.
    /// `None` when there is none to put back, or it is the one in place.
    pub fn roll_back(&mut self) -> Result<Option<String>, PublishError> {
        let Some(verified) = self.versions.verified.clone() else {
            return Ok(None);
        };
        let current = self.versions.current.clone();
        if current.as_ref() == Some(&verified) {
            return Ok(None);
        }
        let top_level = stage_names(&self.dir.join(&verified.stage))
            .map_err(self.fail(format!("reading {}", verified.stage)))?;
        self.switch(&verified.stage, &top_level)?;
        if let Some(current) = current {
            if current.stage != verified.stage {
                let _ = remove_stage(&self.dir.join(&current.stage));
            }
        }
        self.versions.current = Some(verified.clone());
        self.write_record();
        Ok(Some(verified.hash))
    }

    pub fn root(&self) -> &Path {
        &self.dir
    }

    fn fail(&self, action: impl Into<String>) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
        let action = action.into();
        move |source| PublishError {
            dir: self.dir.clone(),
            action,
            source,
        }
    }

    /// Removes every timestamped folder but the one `..data` points at, and a `..data_tmp`:
    /// what a run that stopped half-way through a publication leaves.
    fn remove_stale(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let current = std::fs::read_link(self.dir.join(DATA_LINK)).ok();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let removed = if name == DATA_TMP || name == RECORD_TMP {
                std::fs::remove_file(entry.path())
            } else if is_stage_name(name)
                && current.as_deref() != Some(Path::new(name))
                && !self.versions.keeps(name)
            {
                std::fs::remove_dir_all(entry.path())
            } else {
                continue;
            };
            match removed {
                Ok(()) => {
                    tracing::info!(dir = %self.dir.display(), "removed {name}, left by an earlier run")
                }
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), "cannot remove {name}, left by an earlier run: {e}")
                }
            }
        }
    }

    /// Writes the snapshot's files into a new timestamped folder; a stage that cannot be
    /// written whole is removed before the error is returned.
    pub fn stage(&self, snapshot: &Snapshot) -> Result<Stage, PublishError> {
        DirBuilder::new()
            .recursive(true)
            .mode(FOLDER_BITS)
            .create(&self.dir)
            .map_err(self.fail("creating the folder"))?;
        let name = stage_name();
        let path = self.dir.join(&name);
        DirBuilder::new()
            .mode(WRITING)
            .create(&path)
            .map_err(self.fail(format!("creating {name}")))?;
        match self.write(&path, snapshot) {
            Ok(top_level) => Ok(Stage {
                path,
                name,
                top_level,
            }),
            Err(e) => {
                if let Err(cleanup) = remove_stage(&path) {
                    tracing::warn!(
                        "cannot remove the failed stage {}: {cleanup}",
                        path.display()
                    );
                }
                Err(e)
            }
        }
    }

    /// The stage's files and folders, with their modes; returns the top-level names.
    fn write(&self, stage: &Path, snapshot: &Snapshot) -> Result<Vec<String>, PublishError> {
        let mut top_level: Vec<String> = Vec::new();
        let mut folders: BTreeSet<String> = BTreeSet::new();
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for file in &snapshot.files {
            // One published folder cannot hold two files of one name; neither is dropped silently.
            if !names.insert(&file.name) {
                return Err(self.fail(format!(
                    "two watched folders both provide {}, and one published folder cannot hold both",
                    file.name
                ))(std::io::ErrorKind::AlreadyExists.into()));
            }
            let target = stage.join(&file.name);
            let mut folder = Path::new(&file.name).parent();
            while let Some(f) = folder.filter(|f| !f.as_os_str().is_empty()) {
                folders.insert(f.display().to_string());
                folder = f.parent();
            }
            if let Some(parent) = target.parent() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(WRITING)
                    .create(parent)
                    .map_err(self.fail(format!("creating the folder for {}", file.name)))?;
            }
            write_file(&target, &file.bytes, file.mode)
                .map_err(self.fail(format!("writing {}", file.name)))?;
            let first = file
                .name
                .split('/')
                .next()
                .unwrap_or(&file.name)
                .to_string();
            if !top_level.contains(&first) {
                top_level.push(first);
            }
        }
        // Deepest first, the stage itself last: each stays writable until its content is done.
        for folder in folders.iter().rev().map(String::as_str).chain([""]) {
            let mode = folder_mode(snapshot.folders.get(folder).copied());
            std::fs::set_permissions(stage.join(folder), std::fs::Permissions::from_mode(mode))
                .map_err(self.fail(format!("setting the mode of {folder:?}")))?;
        }
        Ok(top_level)
    }

    /// Drops a stage that failed validation.
    pub fn discard(&self, stage: Stage) {
        let _ = remove_stage(&stage.path);
    }

    /// Makes a stage the published version of content `hash`, atomically; a stage that cannot
    /// be made visible is removed. The previous one is removed unless it is the verified one.
    pub fn commit(&mut self, stage: Stage, hash: &str) -> Result<(), PublishError> {
        let previous = std::fs::read_link(self.dir.join(DATA_LINK)).ok();
        if let Err(e) = self.switch(&stage.name, &stage.top_level) {
            // Removed unless it is in place already (a visible name could not be linked).
            let now = std::fs::read_link(self.dir.join(DATA_LINK)).ok();
            if now.as_deref() != Some(Path::new(&stage.name)) {
                let _ = remove_stage(&stage.path);
            }
            return Err(e);
        }
        if let Some(previous) = previous {
            if previous != Path::new(&stage.name)
                && !previous.to_str().is_some_and(|p| {
                    self.versions
                        .verified
                        .as_ref()
                        .is_some_and(|v| v.stage == p)
                })
            {
                let _ = remove_stage(&self.dir.join(previous));
            }
        }
        self.versions.current = Some(Entry {
            hash: hash.to_string(),
            stage: stage.name,
        });
        self.write_record();
        Ok(())
    }

    /// Points `..data` at the stage `name`, then the visible names at what it holds.
    fn switch(&self, name: &str, top_level: &[String]) -> Result<(), PublishError> {
        let data = self.dir.join(DATA_LINK);
        let tmp = self.dir.join(DATA_TMP);
        let _ = std::fs::remove_file(&tmp);
        if let Err(e) = std::os::unix::fs::symlink(name, &tmp) {
            return Err(self.fail("linking ..data_tmp")(e));
        }
        if let Err(e) = std::fs::rename(&tmp, &data) {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.fail("renaming ..data_tmp over ..data")(e));
        }
        for name in top_level {
            let visible = self.dir.join(name);
            let wanted = Path::new(DATA_LINK).join(name);
            if std::fs::read_link(&visible).ok().as_deref() != Some(wanted.as_path()) {
                let _ = std::fs::remove_file(&visible);
                std::os::unix::fs::symlink(&wanted, &visible)
                    .map_err(self.fail(format!("linking {name}")))?;
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_link = entry.file_type().map(|t| t.is_symlink()).unwrap_or(false);
                if is_link && !name.starts_with("..") && !top_level.contains(&name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }
}

/// The names at the top of a stage folder, as [`Publisher::write`] returned them.
fn stage_names(stage: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(stage)? {
        let name = entry?.file_name();
        names.push(name.to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// A small file of ours, bounded: a record grown past [`versions::MAX_SIZE`] is not ours.
fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(versions::MAX_SIZE)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// A file created owner-only, written, then given its mode: never readable wider than that
/// mode, not even while it is written.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// A published folder's mode: the source's, never wider than 0755, and always writable by the
/// publisher, which replaces and removes it.
fn folder_mode(source: Option<u32>) -> u32 {
    source.map_or(FOLDER_BITS, |mode| mode & FOLDER_BITS) | WRITING
}

/// Removes a stage (its folders are always writable by the publisher: see [`folder_mode`]).
fn remove_stage(path: &Path) -> std::io::Result<()> {
    std::fs::remove_dir_all(path)
}

/// Whether a name is one of the timestamped folders [`stage_name`] (and kubelet) make.
fn is_stage_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("..") else {
        return false;
    };
    let shape = b"dddd_dd_dd_dd_dd_dd.";
    rest.len() > shape.len()
        && rest.bytes().zip(shape.iter()).all(|(c, s)| match s {
            b'd' => c.is_ascii_digit(),
            s => c == *s,
        })
}

/// `..YYYY_MM_DD_HH_MM_SS.<random>`, as kubelet names its folders.
fn stage_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, mo, d) = crate::clock::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "..{y:04}_{mo:02}_{d:02}_{:02}_{:02}_{:02}.{}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        random_suffix()
    )
}

fn random_suffix() -> u32 {
    (crate::random_u64() % 1_000_000_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::layout::{layout, Layout};
    use crate::config::{ConfigFile, Limits};

    fn snapshot(files: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            files: files
                .iter()
                .map(|(n, c)| ConfigFile {
                    path: format!("/src/{n}"),
                    name: n.to_string(),
                    bytes: c.as_bytes().to_vec(),
                    mode: crate::config::DEFAULT_MODE,
                })
                .collect(),
            folders: Default::default(),
            sources: Vec::new(),
        }
    }

    #[test]
    fn publishes_in_kubelet_layout_and_swaps_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut publisher = Publisher::new(dir.path().join("out"));
        let stage = publisher
            .stage(&snapshot(&[("a.yaml", "1"), ("sub/b", "2")]))
            .expect("stage");
        assert!(stage.path.join("sub/b").is_file());
        publisher.commit(stage, "aa").expect("commit");
        let out = dir.path().join("out");
        assert_eq!(
            std::fs::read_to_string(out.join("a.yaml")).expect("read"),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("sub/b")).expect("read"),
            "2"
        );
        let first = std::fs::read_link(out.join("..data")).expect("link");

        let stage = publisher
            .stage(&snapshot(&[("a.yaml", "3")]))
            .expect("stage");
        publisher.commit(stage, "aa").expect("commit");
        assert_eq!(
            std::fs::read_to_string(out.join("a.yaml")).expect("read"),
            "3"
        );
        assert!(!out.join("sub").exists(), "dropped names are unlinked");
        assert!(!out.join(&first).exists(), "the old folder is removed");
        let again = Snapshot::read(std::slice::from_ref(&out), Limits::default()).expect("read");
        assert_eq!(again.files.len(), 1);
        assert_eq!(layout(&out), Layout::Kubelet);
    }

    #[test]
    fn discarded_stages_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let publisher = Publisher::new(dir.path().to_path_buf());
        let stage = publisher.stage(&snapshot(&[("a", "1")])).expect("stage");
        publisher.discard(stage);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn modes_are_kept_and_folders_are_never_wider_than_0755() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let publisher = Publisher::new(dir.path().join("out"));
        let mut snap = snapshot(&[("token", "s"), ("sub/db", "d")]);
        snap.files[0].mode = 0o400;
        snap.files[1].mode = 0o640;
        snap.folders.insert(String::new(), 0o777);
        snap.folders.insert("sub".into(), 0o750);
        let stage = publisher.stage(&snap).expect("stage");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode(&stage.path.join("token")), 0o400);
        assert_eq!(mode(&stage.path.join("sub/db")), 0o640);
        assert_eq!(mode(&stage.path.join("sub")), 0o750);
        assert_eq!(mode(&stage.path), 0o755);
        assert_eq!(
            folder_mode(Some(0o500)),
            0o700,
            "the publisher can always remove it"
        );
        assert_eq!(folder_mode(None), 0o755);
    }

    #[test]
    fn a_stage_that_cannot_be_written_whole_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let publisher = Publisher::new(dir.path().to_path_buf());
        let mut snap = snapshot(&[("a", "1"), ("a", "2")]);
        snap.files[1].path = "/other/a".into();
        let err = publisher.stage(&snap).err().expect("refused");
        assert!(err.to_string().contains("both provide a"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn stale_stages_are_removed_and_the_published_one_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let mut publisher = Publisher::new(out.clone());
        let stage = publisher.stage(&snapshot(&[("a", "1")])).expect("stage");
        publisher.commit(stage, "aa").expect("commit");
        let live = std::fs::read_link(out.join("..data")).expect("link");
        let stale = out.join("..2020_01_01_00_00_00.1");
        std::fs::create_dir(&stale).expect("mkdir");
        std::os::unix::fs::symlink("..2020_01_01_00_00_00.1", out.join("..data_tmp"))
            .expect("link");
        std::fs::create_dir(out.join("..mine")).expect("mkdir");
        drop(Publisher::new(out.clone()));
        assert!(!stale.exists());
        assert!(std::fs::symlink_metadata(out.join("..data_tmp")).is_err());
        assert!(out.join(&live).is_dir(), "the published stage stays");
        assert!(
            out.join("..mine").is_dir(),
            "only stage-shaped names are removed"
        );
        assert_eq!(std::fs::read_to_string(out.join("a")).expect("read"), "1");
    }

    #[test]
    fn names_look_like_kubelet_folders() {
        assert!(is_stage_name("..2026_11_22_10_00_00.123"));
        assert!(!is_stage_name("..data"));
        assert!(!is_stage_name("..2026_11_22_10_00_00."));
        assert!(!is_stage_name("2026_11_22_10_00_00.1"));
        let name = stage_name();
        assert!(name.starts_with("..20") && name.len() > 22, "{name}");
    }
}
