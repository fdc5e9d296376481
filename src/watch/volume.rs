//! Turning inotify events on the watched folders into changes worth evaluating, and keeping
//! the watches armed.
//!
//! Kubelet volumes are watched on their root, never on file paths (a watch on a
//! file follows the old inode and goes silent after the first update), and only
//! the `..data` name counts, whatever kind of event a library reports for it.
//!
//! A watch is on one folder, not on a path: a folder deleted and created again (a volume
//! re-populated), a new mount over it (a volume re-mounted) or a layout that changed (its
//! `..data` gone or back) leaves the watch on something nobody writes to any more. So every
//! armed folder is checked on each [`Volumes::rearm`] (the event loop's one-second tick) and
//! watched anew when it is not the folder that was armed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use super::debounce::Change;
use crate::config::layout::{ignored, layout, Layout, DATA_LINK};

/// What the watcher thread reports to the event loop.
#[derive(Debug)]
pub enum VolumeEvent {
    Changed(Change),
    /// A watched folder itself was removed or moved away: re-arm now, not at the next check.
    Lost,
    Error(String),
}

struct Folder {
    path: PathBuf,
    armed: Option<Armed>,
    /// Why the folder, which exists, could not be watched at the last attempt.
    failed: Option<String>,
}

/// A watch in place: on which path, for which layout, on which folder (device and inode).
struct Armed {
    target: PathBuf,
    layout: Layout,
    identity: (u64, u64),
}

pub struct Volumes {
    watcher: RecommendedWatcher,
    folders: Vec<Folder>,
    /// What the event callback classifies against; a folder's layout is settled when it is watched.
    targets: Arc<RwLock<Vec<(PathBuf, Layout)>>>,
    /// Per folder, the path watched now, and whether the event callback saw that path itself
    /// removed or moved away since.
    watched: Arc<Mutex<Vec<Watched>>>,
}

#[derive(Default)]
struct Watched {
    path: Option<PathBuf>,
    lost: bool,
}

impl Volumes {
    /// Starts the inotify watcher; folders that do not exist yet are picked up by [`Volumes::rearm`].
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
        let watched: Arc<Mutex<Vec<Watched>>> = Arc::new(Mutex::new(
            absolute.iter().map(|_| Watched::default()).collect(),
        ));
        let classify = targets.clone();
        let mark_lost = watched.clone();
        let watcher = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
            let volume_event = match result {
                Err(e) => Some(VolumeEvent::Error(e.to_string())),
                Ok(event) => {
                    let mut lost = false;
                    if removes_itself(&event) {
                        let mut watched = mark_lost.lock().unwrap_or_else(|p| p.into_inner());
                        for w in watched.iter_mut() {
                            if w.path.as_ref().is_some_and(|p| event.paths.contains(p)) {
                                w.lost = true;
                                lost = true;
                            }
                        }
                    }
                    if lost {
                        let _ = tx.send(VolumeEvent::Lost);
                    }
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
                    armed: None,
                    failed: None,
                })
                .collect(),
            targets,
            watched,
        };
        volumes.rearm();
        Ok(volumes)
    }

    /// Drops the watches on folders that are gone, replaced, re-mounted or laid out anew, and
    /// watches every folder that exists and is not watched; returns how many folders were lost
    /// or (re-)armed: they need an evaluation.
    ///
    /// The layout is read again here: a volume that appears late is a kubelet volume by then.
    pub fn rearm(&mut self) -> usize {
        let mut changed = 0;
        for (i, folder) in self.folders.iter_mut().enumerate() {
            let lost = self
                .watched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(i)
                .is_some_and(|w| std::mem::take(&mut w.lost));
            if let Some(armed) = &folder.armed {
                if lost
                    || layout(&folder.path) != armed.layout
                    || identity(&armed.target) != Some(armed.identity)
                {
                    tracing::warn!(dir = %folder.path.display(), "the watched folder was removed, replaced or re-mounted; watching it anew");
                    // notify may have dropped a watch whose folder was deleted: nothing to undo then.
                    let _ = self.watcher.unwatch(&armed.target);
                    folder.armed = None;
                    set_watched(&self.watched, i, None);
                    changed += 1;
                }
            }
            if folder.armed.is_some() {
                continue;
            }
            let layout = layout(&folder.path);
            let (target, mode) = watch_target(&folder.path, layout);
            let Some(before) = identity(&target) else {
                folder.failed = None;
                continue;
            };
            if let Some(entry) = self
                .targets
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(i)
            {
                entry.1 = layout;
            }
            match self.watcher.watch(&target, mode) {
                // The identity was taken before the watch: a folder replaced in between differs
                // from it, and is caught on the next call.
                Ok(()) => {
                    set_watched(&self.watched, i, Some(target.clone()));
                    folder.armed = Some(Armed {
                        target,
                        layout,
                        identity: before,
                    });
                    if folder.failed.take().is_some() {
                        tracing::info!(dir = %folder.path.display(), "the folder can be watched again");
                    }
                    changed += 1;
                    tracing::info!(dir = %folder.path.display(), ?layout, "watching");
                }
                Err(e) => {
                    let why = format!("cannot watch {}: {e}", folder.path.display());
                    if folder.failed.as_deref() != Some(why.as_str()) {
                        tracing::warn!("{why}");
                    }
                    folder.failed = Some(why);
                }
            }
        }
        changed
    }

    /// Every folder is watched and none has failed: only a re-mount, which inotify does not
    /// report, is left to find by looking, so looking can be rare.
    pub fn settled(&self) -> bool {
        self.folders
            .iter()
            .all(|f| f.armed.is_some() && f.failed.is_none())
    }

    /// `Err` while a folder exists but cannot be watched: updates to it would go unseen, and a
    /// new process (a fresh inotify instance) may succeed where this one fails. A folder that
    /// does not exist is waited for, as at start.
    pub fn health(&self) -> Result<(), String> {
        match self.folders.iter().find_map(|f| f.failed.as_ref()) {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }
}

/// The device and inode of a folder, following links: what a watch is really on.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Records the path watched for folder `i` (none), with nothing lost yet.
fn set_watched(watched: &Mutex<Vec<Watched>>, i: usize, path: Option<PathBuf>) {
    if let Some(w) = watched.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
        *w = Watched { path, lost: false };
    }
}

/// Whether an event can be a watched folder itself going away (inotify's `DELETE_SELF` and
/// `MOVE_SELF`, as notify reports them).
fn removes_itself(event: &notify::Event) -> bool {
    matches!(
        event.kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
    )
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
    // notify reports a rename inside a watched folder twice: `To` (or `From`) for each name,
    // then `Both` with the pair. Kubelet's `..data_tmp` → `..data` swap would be evaluated twice,
    // the second time while the first reload's request is in flight; the single-name reports
    // carry everything, so the pair is left out.
    if matches!(
        event.kind,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Name(RenameMode::Both))
    ) {
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
            EventKind::Modify(ModifyKind::Name(RenameMode::Any)),
        ] {
            assert_eq!(
                classify_event(&targets, &event(kind, "/etc/cfg/..data")),
                Some(Change::Swap)
            );
        }
        // The pair report of a rename that `To` already announced is not a second change.
        let both = notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path(PathBuf::from("/etc/cfg/..data_tmp"))
            .add_path(PathBuf::from("/etc/cfg/..data"));
        assert_eq!(classify_event(&targets, &both), None);
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
    fn a_folder_removed_or_moved_away_is_lost() {
        use notify::event::RemoveKind;
        let gone = event(EventKind::Remove(RemoveKind::Folder), "/etc/cfg");
        assert!(removes_itself(&gone));
        let moved = event(
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            "/etc/cfg",
        );
        assert!(removes_itself(&moved));
        assert!(!removes_itself(&event(
            EventKind::Create(CreateKind::Any),
            "/etc/cfg"
        )));
    }

    #[test]
    fn a_recreated_folder_is_watched_again() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("conf");
        std::fs::create_dir(&dir).expect("mkdir");
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut volumes = Volumes::new(std::slice::from_ref(&dir), tx).expect("watcher");
        assert_eq!(volumes.rearm(), 0, "armed at start, nothing changed since");
        assert_eq!(volumes.health(), Ok(()));
        std::fs::remove_dir(&dir).expect("rmdir");
        assert_eq!(volumes.rearm(), 1, "lost");
        assert_eq!(volumes.rearm(), 0, "waiting for it");
        assert_eq!(volumes.health(), Ok(()), "a missing folder is waited for");
        std::fs::create_dir(&dir).expect("mkdir");
        assert_eq!(volumes.rearm(), 1, "armed again");
        assert_eq!(volumes.rearm(), 0);
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
