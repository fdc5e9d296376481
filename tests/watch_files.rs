//! What `reconfig watch` reads and publishes, under faults: a volume deleted, re-created or
//! re-mounted; `--publish` onto a full disk; symlinks that lead out of the volume; file modes;
//! keys that look like editor files; names that are not UTF-8.
//!
//! Volumes change as kubelet changes them (tests/support/atomic_writer.rs), disks are real
//! tmpfs mounts (the tests run as root), and every assertion is on what the programs report:
//! the webhook receiver's requests, the published files, reconfig's log, /healthz and /metrics.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::atomic_writer::{payload, AtomicWriter, Payload};
use support::cli;
use support::wait::{until, wait_for, TIMEOUT};
use support::watch::{wait_successes, WatchTest};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `port: N` as a YAML config.
fn config(n: u32) -> Payload {
    payload(&[("app.yaml", &format!("port: {n}\n"))])
}

/// A real tmpfs of `size` bytes, unmounted when dropped (before its folder goes, if it owns one).
struct Tmpfs {
    path: PathBuf,
    _owned: Option<tempfile::TempDir>,
}

impl Tmpfs {
    /// A new tmpfs in a folder of its own.
    fn new(size: usize) -> Tmpfs {
        let owned = tempfile::tempdir().expect("tempdir");
        let mut tmpfs = Tmpfs::over(owned.path(), size);
        tmpfs._owned = Some(owned);
        tmpfs
    }

    /// A new, empty tmpfs mounted over `path`, hiding what was there: a re-mounted volume.
    fn over(path: &Path, size: usize) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs on {} (these tests run as root): {status}",
            path.display()
        );
        Tmpfs {
            path: path.to_path_buf(),
            _owned: None,
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The hidden entries of a published folder other than `..data`: the timestamped folders.
fn stages(published: &Path) -> Vec<String> {
    fs::read_dir(published)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("..") && n != "..data")
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

// Item 2: a re-created or re-mounted volume is watched again.

#[test]
fn a_volume_deleted_and_created_again_is_watched_again() {
    let t = WatchTest::new().kubelet_volume(config(1)).webhook().start();
    let (hook, r) = (t.hook(), &t.r);
    r.wait_ready(200);

    fs::remove_dir_all(t.vol().root()).expect("rm -rf the volume");
    let again = AtomicWriter::new(t.vol().root());
    again.write(&config(2)).expect("populate it again");
    // The default --resync is 3 minutes: only a watch re-armed on the new folder sees this.
    wait_successes(hook, 1);
    r.wait_reloaded(1);
    assert_eq!(hook.count(), 1, "{}", r.log());

    // The new folder's own updates are seen too.
    again.write(&config(3)).expect("update");
    wait_successes(hook, 2);
    assert_eq!(hook.count(), 2, "{}", r.log());
    assert_eq!(r.get("/healthz").status, 200);
    r.wait_ready(200);
}

#[test]
fn a_plain_folder_deleted_and_created_again_is_watched_again() {
    let t = WatchTest::new()
        .plain_folder(&[("app.yaml", "port: 1\n")])
        .webhook()
        .args(["--debounce", "50ms"])
        .start();
    let (hook, r) = (t.hook(), &t.r);
    r.wait_ready(200);

    fs::remove_dir_all(t.dir()).expect("rm -rf");
    fs::create_dir(t.dir()).expect("mkdir");
    fs::write(t.dir().join("app.yaml"), "port: 2\n").expect("write");
    wait_successes(hook, 1);
    fs::write(t.dir().join("app.yaml"), "port: 3\n").expect("write");
    wait_successes(hook, 2);
    assert_eq!(hook.count(), 2, "{}", r.log());
}

#[test]
fn a_volume_mounted_over_is_watched_again() {
    let t = WatchTest::new().kubelet_volume(config(1)).webhook().start();
    let (hook, r) = (t.hook(), &t.r);
    r.wait_ready(200);

    // A new mount on the same path, populated by kubelet: no inotify event reaches the old
    // watch, which stays on the folder under the mount.
    let _mount = Tmpfs::over(t.vol().root(), 1 << 20);
    let remounted = AtomicWriter::new(t.vol().root());
    remounted.write(&config(2)).expect("populate the new mount");
    wait_successes(hook, 1);
    remounted.write(&config(3)).expect("update");
    wait_successes(hook, 2);
    assert_eq!(hook.count(), 2, "{}", r.log());
}

#[test]
fn healthz_fails_while_a_recreated_folder_cannot_be_watched() {
    let t = WatchTest::new()
        .kubelet_volume(config(1))
        .webhook()
        .unprivileged()
        .start();
    let (hook, r) = (t.hook(), &t.r);
    r.wait_ready(200);
    assert_eq!(r.get("/healthz").status, 200);

    // Re-created by root, closed to the sidecar (which runs as nobody): it cannot be watched.
    let root = t.vol().root();
    fs::remove_dir_all(root).expect("rm -rf");
    fs::create_dir(root).expect("mkdir");
    fs::set_permissions(root, fs::Permissions::from_mode(0o700)).expect("chmod");
    AtomicWriter::new(root).write(&config(2)).expect("populate");
    let body = wait_for("/healthz to fail", TIMEOUT, || {
        let h = r.get("/healthz");
        if h.status == 503 {
            Ok(h.body)
        } else {
            Err(format!("{} {}\n{}", h.status, h.body, r.log()))
        }
    });
    assert!(body.contains("cannot watch"), "{body}");
    assert!(body.contains(s(root)), "{body}");

    // Opened up: watched again, healthy again, and the config it holds is applied.
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).expect("chmod");
    wait_successes(hook, 1);
    until("/healthz to answer 200", || r.get("/healthz").status == 200);
    assert_eq!(hook.count(), 1, "{}", r.log());
}

// Item 3: a full disk fails one version, not every later one.

/// Valid YAML of about `kib` KiB: one key and comment lines.
fn big_config(port: u32, kib: usize) -> Payload {
    let mut text = format!("port: {port}\n");
    while text.len() < kib * 1024 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    payload(&[("app.yaml", &text)])
}

#[test]
fn a_full_disk_fails_one_version_and_the_next_one_is_published() {
    let disk = Tmpfs::new(64 * 1024);
    let published = disk.path().join("published");
    let t = WatchTest::new()
        .kubelet_volume(config(1))
        .webhook()
        .args(["--publish", s(&published)])
        .start();
    let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
    r.wait_ready(200);
    let read = || fs::read_to_string(published.join("app.yaml")).unwrap_or_default();
    assert_eq!(read(), "port: 1\n");

    // 96 KiB cannot fit on a 64 KiB disk: this version fails, and its stage must go with it.
    vol.write(&big_config(2, 96)).expect("write");
    let line = r.wait_log("cannot stage the config", 1);
    assert!(line.contains("No space left"), "{line}");
    assert_eq!(read(), "port: 1\n", "the last good config stays published");
    assert_eq!(
        stages(&published).len(),
        1,
        "the failed stage is removed at once: {:?}",
        stages(&published)
    );

    // The next version fits, and is published and acted on.
    vol.write(&config(3)).expect("write");
    wait_successes(hook, 1);
    assert_eq!(read(), "port: 3\n");
    assert_eq!(stages(&published).len(), 1, "{:?}", stages(&published));
    assert_eq!(hook.count(), 1, "{}", r.log());
    r.wait_ready(200);
}

#[test]
fn stages_an_earlier_run_left_are_removed_at_start() {
    let disk = Tmpfs::new(64 * 1024);
    let published = disk.path().join("published");
    // A run that died half-way: a stage filling the disk, and a `..data_tmp`.
    let stale = published.join("..2020_01_01_00_00_00.123");
    fs::create_dir_all(&stale).expect("mkdir");
    fs::write(published.join("keep.txt"), "not ours").expect("write");
    let filled = fs::write(stale.join("app.yaml"), vec![b'#'; 96 * 1024]);
    assert!(filled.is_err(), "the stale stage fills the disk");
    symlink("..2020_01_01_00_00_00.123", published.join("..data_tmp")).expect("link");

    let t = WatchTest::new()
        .kubelet_volume(config(1))
        .args(["--publish", s(&published)])
        .start();
    let r = &t.r;
    r.wait_ready(200);
    assert_eq!(
        fs::read_to_string(published.join("app.yaml")).expect("published"),
        "port: 1\n"
    );
    assert!(!stale.exists(), "the stale stage is removed");
    assert!(fs::symlink_metadata(published.join("..data_tmp")).is_err());
    assert_eq!(stages(&published).len(), 1, "{:?}", stages(&published));
    assert_eq!(
        fs::read_to_string(published.join("keep.txt")).expect("kept"),
        "not ours",
        "only stages are removed"
    );
}

// Item 11: symlinks out of the volume are refused.

#[test]
fn a_symlink_out_of_the_volume_is_refused_not_published() {
    let setup = WatchTest::new().kubelet_volume(config(1));
    let published = setup.tmp().join("published");
    let outside = setup.tmp().join("shadow");
    fs::write(&outside, "TOPSECRET\n").expect("write");
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).expect("chmod");
    let t = setup.webhook().args(["--publish", s(&published)]).start();
    let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
    r.wait_ready(200);

    // A version whose `..data` holds a link to a file outside the volume.
    let prepared = vol
        .prepare(&config(2), false)
        .expect("prepare")
        .expect("a change");
    let stolen = vol.root().join(prepared.ts_dir()).join("stolen.txt");
    symlink(&outside, &stolen).expect("link");
    prepared.commit().expect("commit");
    let line = r.wait_log("config rejected", 1);
    assert!(
        line.contains("stolen.txt") && line.contains("symlink") && line.contains("refused"),
        "{line}"
    );
    // Rejected, while the app keeps serving its last good config: the pod stays Ready.
    r.wait_phase("rejected");
    r.wait_ready(200);
    assert_eq!(r.validation_failures(), 1);
    assert_eq!(
        fs::read_to_string(published.join("app.yaml")).expect("published"),
        "port: 1\n"
    );
    assert!(!published.join("..data/stolen.txt").exists());
    assert!(!published.join("stolen.txt").exists());
    assert!(!r.log().contains("TOPSECRET"));

    // The next clean version goes through (the link goes first: kubelet never made it, and
    // the writer would look for its visible name).
    fs::remove_file(&stolen).expect("rm");
    vol.write(&config(3)).expect("write");
    wait_successes(hook, 1);
    assert_eq!(
        fs::read_to_string(published.join("app.yaml")).expect("published"),
        "port: 3\n"
    );
    assert_eq!(hook.count(), 1, "{}", r.log());
}

#[test]
fn check_refuses_a_link_out_of_a_plain_folder_and_follows_one_inside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("shadow");
    fs::write(&outside, "TOPSECRET\n").expect("write");
    let conf = tmp.path().join("conf");
    fs::create_dir(&conf).expect("mkdir");
    fs::write(conf.join("app.yaml"), "port: 1\n").expect("write");
    symlink("app.yaml", conf.join("alias.yaml")).expect("link inside");

    let inside = cli::run(&["check", s(&conf)], "");
    assert_eq!(inside.code, 0, "{inside:?}");

    symlink(&outside, conf.join("leak.txt")).expect("link outside");
    let out = cli::run(&["check", s(&conf)], "");
    assert_eq!(out.code, 1, "{out:?}");
    let printed = format!("{}{}", out.stdout, out.stderr);
    assert!(
        printed.contains("leak.txt") && printed.contains("outside"),
        "{printed}"
    );
    assert!(!printed.contains("TOPSECRET"), "{printed}");
}

// Item 12: modes are kept, never widened.

#[test]
fn a_secret_mounted_0400_is_published_0400() {
    let setup = WatchTest::new();
    let published = setup.tmp().join("published");
    let secret = AtomicWriter::new(setup.tmp().join("secret")).with_mode(0o400);
    secret
        .write(&payload(&[
            ("token", "s3cr3t\n"),
            ("app.yaml", "port: 1\n"),
        ]))
        .expect("write");
    let t = setup
        .args(["--dir", s(secret.root()), "--publish", s(&published)])
        .start();
    let r = &t.r;
    r.wait_ready(200);
    assert_eq!(mode(&published.join("token")), 0o400);
    assert_eq!(mode(&published.join("app.yaml")), 0o400);
    assert_eq!(mode(&published.join("..data")), 0o755);

    secret
        .write(&payload(&[("token", "n3w\n"), ("app.yaml", "port: 1\n")]))
        .expect("write");
    until("the new token to be published", || {
        fs::read_to_string(published.join("token")).is_ok_and(|t| t == "n3w\n")
    });
    assert_eq!(mode(&published.join("token")), 0o400);
}

#[test]
fn a_plain_folder_publishes_each_mode_and_a_chmod_narrows_the_copy() {
    let t0 = WatchTest::new().plain_folder(&[("app.yaml", "port: 1\n")]);
    let conf = t0.tmp().join("conf");
    let published = t0.tmp().join("published");
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o750)).expect("chmod");
    fs::create_dir(conf.join("sub")).expect("mkdir");
    fs::write(conf.join("sub/db.conf"), "x").expect("write");
    fs::set_permissions(conf.join("sub/db.conf"), fs::Permissions::from_mode(0o640))
        .expect("chmod");
    fs::set_permissions(conf.join("sub"), fs::Permissions::from_mode(0o710)).expect("chmod");
    fs::set_permissions(conf.join("app.yaml"), fs::Permissions::from_mode(0o644)).expect("chmod");
    let t = t0
        .args(["--publish", s(&published), "--debounce", "50ms"])
        .start();
    let r = &t.r;
    r.wait_ready(200);
    assert_eq!(mode(&published.join("app.yaml")), 0o644);
    assert_eq!(mode(&published.join("sub/db.conf")), 0o640);
    assert_eq!(mode(&published.join("sub")), 0o710);
    assert_eq!(mode(&published.join("..data")), 0o750);

    fs::set_permissions(conf.join("app.yaml"), fs::Permissions::from_mode(0o600)).expect("chmod");
    until("the published copy to be narrowed to 0600", || {
        mode(&published.join("app.yaml")) == 0o600
    });
}

// Item 13: every key of a kubelet volume counts.

#[test]
fn keys_that_look_like_editor_files_count_in_a_kubelet_volume() {
    let keys = [".env", "4913", "app.yaml~", ".app.yaml.swp", "app.yaml"];
    let files: Vec<(&str, String)> = keys.iter().map(|k| (*k, format!("{k}: 1\n"))).collect();
    let text: Vec<(&str, &str)> = files.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let setup = WatchTest::new().kubelet_volume(payload(&text));
    let published = setup.tmp().join("published");
    let t = setup.webhook().args(["--publish", s(&published)]).start();
    let (vol, hook, r) = (t.vol(), t.hook(), &t.r);
    r.wait_ready(200);
    for key in keys {
        assert_eq!(
            fs::read_to_string(published.join(key)).unwrap_or_default(),
            format!("{key}: 1\n"),
            "{key} is published"
        );
    }

    // A change to `.env` alone is a change.
    let mut changed = text.clone();
    changed[0] = (".env", "PORT=2\n");
    vol.write(&payload(&changed)).expect("write");
    wait_successes(hook, 1);
    assert_eq!(
        fs::read_to_string(published.join(".env")).expect("published"),
        "PORT=2\n"
    );
    assert_eq!(hook.count(), 1, "{}", r.log());
}

// Item 14: names that are not UTF-8 are refused, named.

#[test]
fn a_file_name_that_is_not_utf8_is_refused_naming_it() {
    let setup = WatchTest::new().plain_folder(&[("app.yaml", "port: 1\n")]);
    let published = setup.tmp().join("published");
    let t = setup
        .webhook()
        .args(["--publish", s(&published), "--debounce", "50ms"])
        .start();
    let (hook, r) = (t.hook(), &t.r);
    r.wait_ready(200);

    for name in [&b"a\xff.conf"[..], &b"b\xfe.conf"[..]] {
        fs::write(t.dir().join(OsStr::from_bytes(name)), "x").expect("write");
    }
    let line = r.wait_log("config rejected", 1);
    assert!(line.contains("not UTF-8"), "{line}");
    assert!(
        line.contains(r"a\xFF.conf") || line.contains(r"b\xFE.conf"),
        "{line}"
    );
    assert!(!r.log().contains("two watched folders"), "{}", r.log());
    let names: Vec<String> = fs::read_dir(published.join("..data"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["app.yaml"]);
    assert_eq!(hook.count(), 0);

    let out = cli::run(&["check", s(t.dir())], "");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("not UTF-8"), "{out:?}");
}
