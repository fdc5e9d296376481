//! Publishing validated files in kubelet's own `..data` layout, so the app only ever reads validated config.
//!
//! One publication: files go into a new hidden timestamped folder (the stage,
//! which an external validator can inspect), a `..data_tmp` symlink to it is
//! renamed over `..data` (the atomic commit), visible names are symlinked
//! through `..data`, and the previous folder is removed.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::layout::DATA_LINK;
use crate::config::read::Snapshot;

const DATA_TMP: &str = "..data_tmp";

#[derive(Debug, thiserror::Error)]
#[error("publishing into {dir}: {action}: {source}")]
pub struct PublishError {
    dir: PathBuf,
    action: String,
    source: std::io::Error,
}

pub struct Publisher {
    dir: PathBuf,
}

/// Files written but not yet visible.
pub struct Stage {
    pub path: PathBuf,
    name: String,
    top_level: Vec<String>,
}

impl Publisher {
    pub fn new(dir: PathBuf) -> Self {
        Publisher { dir }
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

    /// Writes the snapshot's files into a new timestamped folder.
    pub fn stage(&self, snapshot: &Snapshot) -> Result<Stage, PublishError> {
        std::fs::create_dir_all(&self.dir).map_err(self.fail("creating the folder"))?;
        let name = stage_name();
        let path = self.dir.join(&name);
        std::fs::create_dir(&path).map_err(self.fail(format!("creating {name}")))?;
        let mut top_level: Vec<String> = Vec::new();
        for file in &snapshot.files {
            let target = path.join(&file.name);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(self.fail(format!("creating the folder for {}", file.name)))?;
            }
            std::fs::write(&target, &file.bytes)
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
        Ok(Stage {
            path,
            name,
            top_level,
        })
    }

    /// Drops a stage that failed validation.
    pub fn discard(&self, stage: Stage) {
        let _ = std::fs::remove_dir_all(stage.path);
    }

    /// Makes a stage the published version, atomically.
    pub fn commit(&self, stage: Stage) -> Result<(), PublishError> {
        let data = self.dir.join(DATA_LINK);
        let previous = std::fs::read_link(&data).ok();
        let tmp = self.dir.join(DATA_TMP);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&stage.name, &tmp).map_err(self.fail("linking ..data_tmp"))?;
        std::fs::rename(&tmp, &data).map_err(self.fail("renaming ..data_tmp over ..data"))?;
        for name in &stage.top_level {
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
                if is_link && !name.starts_with("..") && !stage.top_level.contains(&name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        if let Some(previous) = previous {
            if previous != Path::new(&stage.name) {
                let _ = std::fs::remove_dir_all(self.dir.join(previous));
            }
        }
        Ok(())
    }
}

/// `..YYYY_MM_DD_HH_MM_SS.<random>`, as kubelet names its folders.
fn stage_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
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

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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
                })
                .collect(),
            sources: Vec::new(),
        }
    }

    #[test]
    fn publishes_in_kubelet_layout_and_swaps_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let publisher = Publisher::new(dir.path().join("out"));
        let stage = publisher
            .stage(&snapshot(&[("a.yaml", "1"), ("sub/b", "2")]))
            .expect("stage");
        assert!(stage.path.join("sub/b").is_file());
        publisher.commit(stage).expect("commit");
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
        publisher.commit(stage).expect("commit");
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
    fn names_look_like_kubelet_folders() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        let name = stage_name();
        assert!(name.starts_with("..20") && name.len() > 22, "{name}");
    }
}
