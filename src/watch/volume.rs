//! Turning inotify events on the watched folders into changes worth evaluating.
//!
//! Kubelet volumes are watched on their root, never on file paths (a watch on a
//! file follows the old inode and goes silent after the first update), and only
//! the `..data` name counts, whatever kind of event a library reports for it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use super::debounce::Change;
use crate::config::layout::{ignored, layout, Layout, DATA_LINK};

/// What the watcher thread reports to the event loop.
#[derive(Debug)]
pub enum VolumeEvent {
    Changed(Change),
    Error(String),
}

struct Folder {
    path: PathBuf,
    watched: bool,
}

pub struct Volumes {
    watcher: RecommendedWatcher,
    folders: Vec<Folder>,
    /// What the event callback classifies against; a folder's layout is settled when it is first watched.
    targets: Arc<RwLock<Vec<(PathBuf, Layout)>>>,
}

impl Volumes {
    /// Starts the inotify watcher; folders that do not exist yet are picked up by [`Volumes::retry_missing`].
    pub fn new(dirs: &[PathBuf], tx: UnboundedSender<VolumeEvent>) -> notify::Result<Self> {
        // notify reports absolute paths (a relative watch is joined to the working directory),
        // so relative --dir values are made absolute here or no event would ever match them.
        let absolute: Vec<PathBuf> = dirs
            .iter()
            .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
            .collect();
        let targets = Arc::new(RwLock::new(
            absolute
                .iter()
                .map(|d| (d.clone(), layout(d)))
                .collect::<Vec<_>>(),
        ));
        let classify = targets.clone();
        let watcher = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
            let volume_event = match result {
                Err(e) => Some(VolumeEvent::Error(e.to_string())),
                Ok(event) => {
                    let targets = classify.read().unwrap_or_else(|p| p.into_inner());
                    classify_event(&targets, &event).map(VolumeEvent::Changed)
                }
            };
            if let Some(volume_event) = volume_event {
                let _ = tx.send(volume_event);
            }
        })?;
        let mut volumes = Volumes {
            watcher,
            folders: absolute
                .into_iter()
                .map(|path| Folder {
                    path,
                    watched: false,
                })
                .collect(),
            targets,
        };
        volumes.retry_missing();
        Ok(volumes)
    }

    /// Watches folders that were missing; returns how many came up (they need an evaluation).
    ///
    /// The layout is read again here: a volume that appears late is a kubelet volume by then.
    pub fn retry_missing(&mut self) -> usize {
        let mut added = 0;
        for (i, folder) in self
            .folders
            .iter_mut()
            .enumerate()
            .filter(|(_, f)| !f.watched)
        {
            let layout = layout(&folder.path);
            let (path, mode) = watch_target(&folder.path, layout);
            if !path.exists() {
                continue;
            }
            if let Some(target) = self
                .targets
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(i)
            {
                target.1 = layout;
            }
            match self.watcher.watch(&path, mode) {
                Ok(()) => {
                    folder.watched = true;
                    added += 1;
                    tracing::info!(dir = %folder.path.display(), ?layout, "watching");
                }
                Err(e) => tracing::warn!(dir = %folder.path.display(), "cannot watch yet: {e}"),
            }
        }
        added
    }

    pub fn all_watched(&self) -> bool {
        self.folders.iter().all(|f| f.watched)
    }
}

/// Kubelet roots and single files are watched through their folder, non-recursively.
fn watch_target(dir: &Path, layout: Layout) -> (PathBuf, RecursiveMode) {
    match layout {
        Layout::Kubelet => (dir.to_path_buf(), RecursiveMode::NonRecursive),
        Layout::Plain if dir.is_file() => (
            dir.parent().unwrap_or(dir).to_path_buf(),
            RecursiveMode::NonRecursive,
        ),
        Layout::Plain => (dir.to_path_buf(), RecursiveMode::Recursive),
    }
}

fn classify_event(targets: &[(PathBuf, Layout)], event: &notify::Event) -> Option<Change> {
    if matches!(event.kind, EventKind::Access(_)) {
        return None;
    }
    let mut change = None;
    for path in &event.paths {
        for (dir, layout) in targets {
            let hit = match layout {
                Layout::Kubelet => (path.parent() == Some(dir.as_path())
                    && path.file_name().is_some_and(|n| n == DATA_LINK))
                .then_some(Change::Swap),
                Layout::Plain if path == dir => Some(Change::Edit),
                Layout::Plain if dir.is_file() => None,
                Layout::Plain => {
                    (path.starts_with(dir) && !ignored_path(path)).then_some(Change::Edit)
                }
            };
            change = change.or(hit);
        }
    }
    change
}

fn ignored_path(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| ignored(&n.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RenameMode};

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_data_counts_on_kubelet_roots_whatever_the_kind() {
        let targets = vec![(PathBuf::from("/etc/cfg"), Layout::Kubelet)];
        for kind in [
            EventKind::Create(CreateKind::Any),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
        ] {
            assert_eq!(
                classify_event(&targets, &event(kind, "/etc/cfg/..data")),
                Some(Change::Swap)
            );
        }
        let create = EventKind::Create(CreateKind::Any);
        assert_eq!(
            classify_event(&targets, &event(create, "/etc/cfg/..data_tmp")),
            None
        );
        assert_eq!(
            classify_event(&targets, &event(create, "/etc/cfg/..2026_11_22_10_00_00.1")),
            None
        );
        assert_eq!(
            classify_event(&targets, &event(create, "/etc/other/..data")),
            None
        );
    }

    #[test]
    fn plain_folders_see_edits_but_not_editor_noise() {
        let targets = vec![(PathBuf::from("/srv/conf"), Layout::Plain)];
        let modify = EventKind::Modify(ModifyKind::Any);
        assert_eq!(
            classify_event(&targets, &event(modify, "/srv/conf/sub/a.yaml")),
            Some(Change::Edit)
        );
        assert_eq!(
            classify_event(&targets, &event(modify, "/srv/conf/.a.yaml.swp")),
            None
        );
        assert_eq!(
            classify_event(&targets, &event(modify, "/srv/other/a.yaml")),
            None
        );
        let access = EventKind::Access(notify::event::AccessKind::Any);
        assert_eq!(
            classify_event(&targets, &event(access, "/srv/conf/a.yaml")),
            None
        );
    }
}
