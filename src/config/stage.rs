//! A temporary copy of config files on disk, for an external validator that reads a folder
//! when the files came from somewhere else (`check --manifests`).

use std::path::{Path, PathBuf};

use super::ConfigFile;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Folder(std::io::Error),
    #[error("staging {name}: {error}")]
    Write { name: String, error: std::io::Error },
}

/// A folder under the system temp dir holding copies of files by name, removed on drop.
pub struct Staged(PathBuf);

impl Staged {
    /// Writes each file under its name (sub-folders created as needed).
    pub fn write(files: &[ConfigFile]) -> Result<Staged, StageError> {
        let name = format!("reconfig-check-{:016x}", crate::random_u64());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).map_err(StageError::Folder)?;
        let staged = Staged(path);
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
        &self.0
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
        drop(staged);
        assert!(!path.exists());
    }
}
