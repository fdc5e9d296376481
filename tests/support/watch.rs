//! One `reconfig watch` scenario set up in a line: a temporary folder, the config volumes or
//! folders in it, a webhook receiver (up, or down on a reserved port), and the running sidecar.
//!
//! ```text
//! let t = WatchTest::new().kubelet_volume(config(1)).webhook().args(["--retries", "1"]).start();
//! t.r.wait_ready(200);
//! t.vol().write(&config(2)).expect("write");
//! t.wait_successes(1);
//! ```

use std::ffi::OsString;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::atomic_writer::{AtomicWriter, LinkOrder, Payload};
use super::http::{reserve_port, Receiver, Request};
use super::reconfig::{self, Reconfig};
use super::wait::{wait_for, TIMEOUT};

/// The log line of a validated version handed to the actions (with its `hash=`).
pub const VALID: &str = "config is valid; reloading";

/// A scenario being set up; [`WatchTest::start`] runs it.
pub struct WatchTest {
    tmp: tempfile::TempDir,
    link_order: LinkOrder,
    volumes: Vec<AtomicWriter>,
    /// Every `--dir`, in order (volumes, plain folders, missing ones).
    dirs: Vec<PathBuf>,
    webhook: Option<Webhook>,
    args: Vec<OsString>,
    unprivileged: bool,
    relative: bool,
}

enum Webhook {
    /// A receiver answering at this path.
    Up(String),
    /// Nothing listening yet on a reserved port, at this path.
    Down(String),
}

impl WatchTest {
    /// An empty scenario in a new temporary folder.
    pub fn new() -> WatchTest {
        WatchTest {
            tmp: tempfile::tempdir().expect("tempdir"),
            link_order: LinkOrder::AfterSwap,
            volumes: Vec::new(),
            dirs: Vec::new(),
            webhook: None,
            args: Vec::new(),
            unprivileged: false,
            relative: false,
        }
    }

    /// The temporary folder everything lives in.
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// How the following kubelet volumes order their links (the default: after the swap).
    pub fn link_order(mut self, order: LinkOrder) -> WatchTest {
        self.link_order = order;
        self
    }

    /// A kubelet volume `vol` holding `payload`, watched with `--dir`.
    pub fn kubelet_volume(self, payload: Payload) -> WatchTest {
        self.kubelet_volume_at("vol", payload)
    }

    /// A kubelet volume in `name`, holding `payload`, watched with `--dir`.
    pub fn kubelet_volume_at(mut self, name: &str, payload: Payload) -> WatchTest {
        let volume = AtomicWriter::new(self.tmp.path().join(name)).with_link_order(self.link_order);
        volume.write(&payload).expect("write the volume");
        self.dirs.push(volume.root().to_path_buf());
        self.volumes.push(volume);
        self
    }

    /// A plain folder `conf` holding `(name, text)` files, watched with `--dir`.
    pub fn plain_folder(mut self, files: &[(&str, &str)]) -> WatchTest {
        let folder = self.tmp.path().join("conf");
        fs::create_dir(&folder).expect("mkdir");
        for (name, text) in files {
            fs::write(folder.join(name), text).expect("write");
        }
        self.dirs.push(folder);
        self
    }

    /// `--dir` for `name`, which does not exist yet.
    pub fn missing_dir(mut self, name: &str) -> WatchTest {
        self.dirs.push(self.tmp.path().join(name));
        self
    }

    /// A webhook receiver answering 200, reloaded at `/-/reload`.
    pub fn webhook(self) -> WatchTest {
        self.webhook_at("/-/reload")
    }

    /// A webhook receiver answering 200, reloaded at `path`.
    pub fn webhook_at(mut self, path: &str) -> WatchTest {
        self.webhook = Some(Webhook::Up(path.to_string()));
        self
    }

    /// A webhook at `/-/reload` of a reserved port where nothing listens until
    /// [`Running::webhook_comes_back`].
    pub fn webhook_down(mut self) -> WatchTest {
        self.webhook = Some(Webhook::Down("/-/reload".to_string()));
        self
    }

    pub fn args<I, S>(mut self, args: I) -> WatchTest
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs as `nobody` when the tests run as root, so that a chmod 000 file is really unreadable
    /// to it (the temporary folder and every `--dir` are opened up to it).
    pub fn unprivileged(mut self) -> WatchTest {
        self.unprivileged = true;
        self
    }

    /// `--dir` relative to the temporary folder, the working directory, as people run it
    /// outside Kubernetes.
    pub fn relative_dirs(mut self) -> WatchTest {
        self.relative = true;
        self
    }

    /// Starts `reconfig watch` and waits until it serves (not until it is ready).
    pub fn start(self) -> Running {
        let (hook, down) = match &self.webhook {
            None => (None, None),
            Some(Webhook::Up(path)) => {
                let hook = Receiver::start();
                let url = hook.url(path);
                (Some((hook, url)), None)
            }
            Some(Webhook::Down(path)) => {
                let addr = reserve_port();
                (None, Some((addr, format!("http://{addr}{path}"))))
            }
        };
        let mut args: Vec<OsString> = Vec::new();
        for dir in &self.dirs {
            let dir = if self.relative {
                dir.strip_prefix(self.tmp.path()).expect("in tmp")
            } else {
                dir
            };
            args.push("--dir".into());
            args.push(dir.into());
        }
        args.extend(self.args.iter().cloned());
        if let Some(url) = hook
            .as_ref()
            .map(|(_, u)| u)
            .or(down.as_ref().map(|(_, u)| u))
        {
            args.push("--webhook".into());
            args.push(url.into());
        }
        let args: Vec<&str> = args
            .iter()
            .map(|a| a.to_str().expect("utf-8 argument"))
            .collect();
        let mut cmd = reconfig::command(&args);
        if self.relative {
            cmd.current_dir(self.tmp.path());
        }
        if self.unprivileged && rustix::process::geteuid().is_root() {
            use std::os::unix::process::CommandExt;
            let open = |path: &Path| {
                fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod")
            };
            open(self.tmp.path());
            self.dirs
                .iter()
                .filter(|d| d.exists())
                .for_each(|d| open(d));
            cmd.uid(65534).gid(65534);
        }
        let r = Reconfig::spawn(cmd);
        Running {
            r,
            hook: hook.map(|(hook, _)| hook),
            down: down.map(|(addr, _)| addr),
            volumes: self.volumes,
            dirs: self.dirs,
            tmp: self.tmp,
        }
    }
}

impl Default for WatchTest {
    fn default() -> Self {
        Self::new()
    }
}

/// A started scenario. Fields drop in order: the sidecar stops before its folder goes.
pub struct Running {
    pub r: Reconfig,
    hook: Option<Receiver>,
    down: Option<SocketAddr>,
    volumes: Vec<AtomicWriter>,
    dirs: Vec<PathBuf>,
    tmp: tempfile::TempDir,
}

impl Running {
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// The first kubelet volume.
    pub fn vol(&self) -> &AtomicWriter {
        self.volume(0)
    }

    /// The `i`-th kubelet volume, in the order they were added.
    pub fn volume(&self, i: usize) -> &AtomicWriter {
        self.volumes.get(i).expect("a kubelet volume")
    }

    /// The first `--dir` (a plain folder, or a missing one).
    pub fn dir(&self) -> &Path {
        self.dirs.first().expect("a --dir")
    }

    /// The webhook receiver (up from the start, or back with [`Running::webhook_comes_back`]).
    pub fn hook(&self) -> &Receiver {
        self.hook.as_ref().expect("a webhook receiver")
    }

    /// Starts the receiver on the reserved port of [`WatchTest::webhook_down`].
    pub fn webhook_comes_back(&mut self) -> &Receiver {
        let addr = self.down.take().expect("a webhook that is down");
        let hook = Receiver::start_on(addr).expect("the webhook comes back");
        self.hook.insert(hook)
    }

    /// Waits until the receiver has answered at least `n` requests with 2xx; returns them.
    pub fn wait_successes(&self, n: usize) -> Vec<Request> {
        wait_successes(self.hook(), n)
    }

    /// The short hashes of the versions reconfig validated and handed to its actions, once the
    /// `reloads`-th reload is logged (the app can see a reload before reconfig's log is read).
    pub fn logged_versions(&self, reloads: usize) -> Vec<String> {
        logged_versions(&self.r, reloads)
    }
}

/// Waits until `hook` has answered at least `n` requests with 2xx; returns them.
pub fn wait_successes(hook: &Receiver, n: usize) -> Vec<Request> {
    wait_for(&format!("{n} successful webhook call(s)"), TIMEOUT, || {
        let ok = hook.successes();
        if ok.len() >= n {
            Ok(ok)
        } else {
            Err(format!("{} so far", ok.len()))
        }
    })
}

/// The short hashes of the versions `r` validated and handed to its actions, once the
/// `reloads`-th reload is logged (the app can see a reload before reconfig's log is read).
pub fn logged_versions(r: &Reconfig, reloads: usize) -> Vec<String> {
    r.wait_reloaded(reloads);
    r.hashes(VALID)
}

/// The full hash a request carried starts with the short hash reconfig logged.
pub fn carries(request: &Request, short: &str) -> bool {
    request
        .hash
        .as_deref()
        .is_some_and(|h| h.starts_with(short))
}
