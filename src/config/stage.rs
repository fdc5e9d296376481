//! A temporary copy of config files on disk, for an external validator that reads a folder
//! when the files came from somewhere else (`check --manifests`).

use std::path::Path;

use super::ConfigFile;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Folder(std::io::Error),
    #[error("staging {name}: {error}")]
    Write { name: String, error: std::io::Error },
    #[error("{0:?} would be written outside the staging folder; nothing was staged")]
    NotAFileName(String),
}

/// A private folder (mode 0700, a fresh random name) under the system temp dir holding
/// copies of files by name, removed on drop.
pub struct Staged(tempfile::TempDir);

impl Staged {
    /// Writes each file under its name (sub-folders created as needed). A name that could
    /// leave the folder (`../x`, `/etc/x`) is refused before anything is written.
    pub fn write(files: &[ConfigFile]) -> Result<Staged, StageError> {
        if let Some(bad) = files.iter().find(|f| !stays_inside(&f.name)) {
            return Err(StageError::NotAFileName(bad.name.clone()));
        }
        let folder = tempfile::Builder::new()
            .prefix("reconfig-check-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map_err(StageError::Folder)?;
        let staged = Staged(folder);
        for file in files {
            let path = staged.path().join(&file.name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(StageError::Folder)?;
            }
            std::fs::write(&path, &file.bytes).map_err(|error| StageError::Write {
                name: file.name.clone(),
                error,
            })?;
        }
        Ok(staged)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// A relative path of plain components only: no root, no `..`, no `.`, not empty.
fn stays_inside(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_by_name_and_removed_on_drop() {
        let file = ConfigFile {
            path: "configmap/app/app.yaml".into(),
            name: "app.yaml".into(),
            bytes: b"a: 1\n".to_vec(),
            mode: crate::config::DEFAULT_MODE,
        };
        let staged = Staged::write(std::slice::from_ref(&file)).expect("stage");
        let path = staged.path().to_path_buf();
        assert_eq!(
            std::fs::read(path.join("app.yaml")).expect("read"),
            file.bytes
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("stat").permissions(),
        );
        assert_eq!(
            mode & 0o777,
            0o700,
            "only the validator's user reads staged secrets"
        );
        drop(staged);
        assert!(!path.exists());
    }

    #[test]
    fn paths_are_refused_before_anything_is_written() {
        for name in ["../x", "/tmp/x", "a/../../b", "..", ".", "", "./x"] {
            let file = ConfigFile {
                path: format!("configmap/app/{name}"),
                name: name.into(),
                bytes: b"x".to_vec(),
                mode: crate::config::DEFAULT_MODE,
            };
            assert!(
                matches!(
                    Staged::write(std::slice::from_ref(&file)),
                    Err(StageError::NotAFileName(_))
                ),
                "{name:?}"
            );
        }
    }
}
