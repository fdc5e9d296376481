//! kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go), step for step, for driving
//! `reconfig watch` the way a ConfigMap or Secret volume really changes.
//!
//! One [`AtomicWriter::write`]:
//! 1. nothing is written when every file of the payload already has that content and no
//!    user-visible path has to go;
//! 2. the payload goes into a new hidden folder `..YYYY_MM_DD_HH_MM_SS.<random>` (UTC, mode 0755,
//!    created like Go's `os.MkdirTemp`) in the volume root, files with mode 0644 by default;
//! 3. a symlink `..data_tmp` → that folder is created and renamed over `..data`, the atomic
//!    commit point;
//! 4. user-visible `key → ..data/key` symlinks are created for new top-level names, and the
//!    names the payload dropped are removed (current kubelets do this after the swap; older ones
//!    created the links before it: [`LinkOrder::BeforeSwap`]);
//! 5. the previous timestamped folder is removed.
//!
//! [`AtomicWriter::force_write`] skips step 1 (an identical payload still gets a new folder and a
//! swap), for testing that a no-op rewrite does nothing. [`AtomicWriter::prepare`] and
//! [`Prepared::commit`] split one write at the swap, so that several volumes can be committed
//! within microseconds of each other, as when updates land together.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub const DATA_DIR: &str = "..data";
pub const DATA_TMP: &str = "..data_tmp";

/// File name → content; names may contain `/` (ConfigMap `items[].path`).
pub type Payload = BTreeMap<String, Vec<u8>>;

/// Builds a payload from `(name, text)` pairs.
pub fn payload(files: &[(&str, &str)]) -> Payload {
    files
        .iter()
        .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
        .collect()
}

/// When the user-visible symlinks are created relative to the `..data` swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOrder {
    /// Current kubelets: swap, then create missing links, then remove dropped ones.
    AfterSwap,
    /// Older kubelets (before 1.2x): create missing links, then swap, then remove dropped ones.
    BeforeSwap,
}

/// What one write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Content unchanged: nothing was touched.
    Unchanged,
    /// A new version was committed; `swapped_at` is taken right after the `..data` rename.
    Written { ts_dir: String, swapped_at: Instant },
}

impl Outcome {
    pub fn written(&self) -> bool {
        matches!(self, Outcome::Written { .. })
    }

    pub fn swapped_at(&self) -> Option<Instant> {
        match self {
            Outcome::Written { swapped_at, .. } => Some(*swapped_at),
            Outcome::Unchanged => None,
        }
    }
}

/// A ConfigMap/Secret volume root written the way kubelet writes it.
#[derive(Debug, Clone)]
pub struct AtomicWriter {
    root: PathBuf,
    mode: u32,
    order: LinkOrder,
}

/// A new version staged in its timestamped folder, not yet visible.
#[derive(Debug)]
pub struct Prepared {
    writer: AtomicWriter,
    ts_dir: String,
    old_ts_dir: Option<String>,
    payload: Payload,
    to_remove: BTreeSet<String>,
    linked_early: bool,
}

impl AtomicWriter {
    /// A writer for the volume rooted at `root`; the root is created if missing (kubelet's
    /// volume folder exists before the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        AtomicWriter {
            root: root.into(),
            mode: 0o644,
            order: LinkOrder::AfterSwap,
        }
    }

    /// File mode for the payload (a volume's `defaultMode`, 0644 unless set).
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    pub fn with_link_order(mut self, order: LinkOrder) -> Self {
        self.order = order;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder `..data` points at now, if any.
    pub fn current_ts_dir(&self) -> Option<String> {
        fs::read_link(self.root.join(DATA_DIR))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// One kubelet update: nothing when the content is unchanged, else a full atomic swap.
    pub fn write(&self, payload: &Payload) -> io::Result<Outcome> {
        match self.prepare(payload, false)? {
            None => Ok(Outcome::Unchanged),
            Some(prepared) => prepared.commit(),
        }
    }

    /// The same steps, but writing even when nothing changed (a no-op rewrite).
    pub fn force_write(&self, payload: &Payload) -> io::Result<Outcome> {
        match self.prepare(payload, true)? {
            None => Ok(Outcome::Unchanged),
            Some(prepared) => prepared.commit(),
        }
    }

    /// Steps 1–2 (and the early links of [`LinkOrder::BeforeSwap`]); `None` when nothing is to
    /// be written.
    pub fn prepare(&self, payload: &Payload, force: bool) -> io::Result<Option<Prepared>> {
        for name in payload.keys() {
            validate_path(name)?;
        }
        if !self.root.exists() {
            fs::create_dir_all(&self.root)?;
        }
        let old_ts_dir = self.current_ts_dir();
        let mut to_remove = BTreeSet::new();
        if let Some(old) = &old_ts_dir {
            let old_path = self.root.join(old);
            to_remove = paths_to_remove(payload, &old_path)?;
            if !force && !should_write_payload(payload, &old_path)? && to_remove.is_empty() {
                return Ok(None);
            }
        }

        let ts_dir = self.new_timestamp_dir()?;
        let ts_path = self.root.join(&ts_dir);
        for (name, content) in payload {
            let full = ts_path.join(name);
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&full, content)?;
            fs::set_permissions(&full, fs::Permissions::from_mode(self.mode))?;
        }
        let mut prepared = Prepared {
            writer: self.clone(),
            ts_dir,
            old_ts_dir,
            payload: payload.clone(),
            to_remove,
            linked_early: false,
        };
        if self.order == LinkOrder::BeforeSwap {
            prepared.writer.create_user_visible_files(payload)?;
            prepared.linked_early = true;
        }
        Ok(Some(prepared))
    }

    /// `os.MkdirTemp(root, "..2006_01_02_15_04_05.")` followed by `chmod 0755`.
    fn new_timestamp_dir(&self) -> io::Result<String> {
        let prefix = timestamp_prefix(SystemTime::now());
        loop {
            let name = format!("{prefix}{}", random_u32());
            match fs::create_dir(self.root.join(&name)) {
                Ok(()) => {
                    fs::set_permissions(self.root.join(&name), fs::Permissions::from_mode(0o755))?;
                    return Ok(name);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// `key → ..data/key` for every top-level name of the payload that has no link yet.
    fn create_user_visible_files(&self, payload: &Payload) -> io::Result<()> {
        for name in payload.keys() {
            let top = name.split('/').next().unwrap_or(name);
            let visible = self.root.join(top);
            match fs::read_link(&visible) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    symlink(Path::new(DATA_DIR).join(top), &visible)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes dropped top-level names (nested ones live inside the timestamped folders).
    fn remove_user_visible_paths(&self, paths: &BTreeSet<String>) -> io::Result<()> {
        let mut last = Ok(());
        for path in paths.iter().filter(|p| !p.contains('/')) {
            if let Err(e) = fs::remove_file(self.root.join(path)) {
                last = Err(e);
            }
        }
        last
    }
}

impl Prepared {
    /// The hidden folder this version was written to.
    pub fn ts_dir(&self) -> &str {
        &self.ts_dir
    }

    /// Steps 3–5: `..data_tmp` renamed over `..data`, links, removal of the old folder.
    pub fn commit(self) -> io::Result<Outcome> {
        let w = &self.writer;
        let tmp = w.root.join(DATA_TMP);
        if let Err(e) = symlink(&self.ts_dir, &tmp) {
            let _ = fs::remove_dir_all(w.root.join(&self.ts_dir));
            return Err(e);
        }
        if let Err(e) = fs::rename(&tmp, w.root.join(DATA_DIR)) {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_dir_all(w.root.join(&self.ts_dir));
            return Err(e);
        }
        let swapped_at = Instant::now();
        if !self.linked_early {
            w.create_user_visible_files(&self.payload)?;
        }
        w.remove_user_visible_paths(&self.to_remove)?;
        if let Some(old) = &self.old_ts_dir {
            if *old != self.ts_dir {
                fs::remove_dir_all(w.root.join(old))?;
            }
        }
        Ok(Outcome::Written {
            ts_dir: self.ts_dir,
            swapped_at,
        })
    }
}

/// kubelet's `validatePath`: relative, no `..` element, not starting with `..`, bounded.
fn validate_path(name: &str) -> io::Result<()> {
    let invalid = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid payload path {name:?}: {why}"),
        ))
    };
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > 4096 {
        return invalid("longer than 4096 bytes");
    }
    let path = Path::new(name);
    if path.is_absolute() {
        return invalid("absolute");
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return invalid("contains '..'");
    }
    if name.split('/').any(|part| part.len() > 255) {
        return invalid("a file name is over 255 bytes");
    }
    let first = name.split('/').next().unwrap_or_default();
    if first.starts_with("..") && first.len() > 2 {
        return invalid("starts with '..'");
    }
    Ok(())
}

/// Whether any file of the payload is missing or differs from the old version.
fn should_write_payload(payload: &Payload, old: &Path) -> io::Result<bool> {
    for (name, content) in payload {
        let path = old.join(name);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        if fs::read(&path)? != *content {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every path of the old version (files and folders, relative) that the new payload lacks.
fn paths_to_remove(payload: &Payload, old: &Path) -> io::Result<BTreeSet<String>> {
    let mut current = BTreeSet::new();
    if let Err(e) = walk(old, old, &mut current) {
        if e.kind() == io::ErrorKind::NotFound {
            return Ok(BTreeSet::new());
        }
        return Err(e);
    }
    let mut wanted = BTreeSet::new();
    for name in payload.keys() {
        let mut sub = name.as_str();
        loop {
            wanted.insert(sub.to_string());
            match sub.rfind('/') {
                Some(i) => sub = &sub[..i],
                None => break,
            }
        }
    }
    Ok(current.difference(&wanted).cloned().collect())
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        out.insert(relative);
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        }
    }
    Ok(())
}

/// `..YYYY_MM_DD_HH_MM_SS.` in UTC, Go's `time.Now().UTC().Format("..2006_01_02_15_04_05.")`.
pub fn timestamp_prefix(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (year, month, day) = date_of(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    format!(
        "..{year:04}_{month:02}_{day:02}_{:02}_{:02}_{:02}.",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (400-year cycles of 146,097 days).
pub fn date_of(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days since 0000-03-01
    let cycle = shifted.div_euclid(146_097);
    let day_of_cycle = shifted.rem_euclid(146_097);
    let year_of_cycle =
        (day_of_cycle - day_of_cycle / 1460 + day_of_cycle / 36_524 - day_of_cycle / 146_096) / 365;
    let day_of_year =
        day_of_cycle - (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_cycle + cycle * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A decimal suffix like Go's `MkdirTemp` (a random uint32); xorshift over time and a counter.
fn random_u32() -> u32 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut x = nanos
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(std::process::id()).rotate_left(32);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x >> 32) as u32
}
