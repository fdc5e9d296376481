//! Finding and signalling the app's main process from the sidecar (`--signal`, `--restart`).
//!
//! The sidecar sees the app only when the pod shares one PID namespace
//! (`shareProcessNamespace: true`); the app is then not PID 1 (the pause process is).
//! Every send resolves the target afresh, because the app may have restarted with a
//! new PID, and signals through a pidfd after re-checking the process's identity,
//! because PIDs get reused.
//!
//! Everything here blocks, but only for a `/proc` scan and a few small reads:
//! async callers run it with `spawn_blocking`.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags};
use tracing::{debug, warn};

pub use rustix::process::Signal;

/// Cap on reads of `/proc/<pid>/stat` and `cmdline`; both are far smaller in practice.
const MAX_PROC_READ: u64 = 64 * 1024;
/// Cap on a pid file: a PID is a few digits, so anything longer is not a pid file.
const MAX_PID_FILE: u64 = 4096;
/// The kernel keeps 15 bytes of a process name (`TASK_COMM_LEN` minus the NUL).
const COMM_LEN: usize = 15;
/// `PF_KTHREAD` in the flags field of stat: kernel threads are never the app.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The signals `--signal` accepts, by name without the `SIG` prefix.
const SIGNALS: &[(&str, Signal)] = &[
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("KILL", Signal::KILL),
    ("USR1", Signal::USR1),
    ("USR2", Signal::USR2),
    ("ALRM", Signal::ALARM),
    ("TERM", Signal::TERM),
    ("CONT", Signal::CONT),
    ("STOP", Signal::STOP),
    ("WINCH", Signal::WINCH),
];

/// Which process to signal, from `--pid N`, `--pid-file FILE` or `--process NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pid(i32),
    /// Re-read on every send, since the app rewrites it when it restarts.
    PidFile(PathBuf),
    /// Matched against comm (cut to 15 characters) and the file name of `argv[0]`; the root
    /// of each matching tree is signalled, or, when `unique` (`--process-unique`), the only one.
    Process {
        name: String,
        unique: bool,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pid(pid) => write!(f, "PID {pid}"),
            Target::PidFile(path) => write!(f, "the PID in {}", path.display()),
            Target::Process { name, .. } => write!(f, "process {name:?}"),
        }
    }
}

/// A process as found in `/proc`; `(pid, start_time)` identifies it even after PID reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    /// The kernel's name for it (comm), at most 15 bytes.
    pub name: String,
    /// Field 22 of stat: clock ticks after boot at which it started.
    pub start_time: u64,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (PID {})", self.name, self.pid)
    }
}

/// Why a target could not be found or signalled; each message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error(
        "unknown signal {0:?}: use HUP, INT, QUIT, USR1, USR2, TERM, KILL, WINCH, CONT, STOP \
         or ALRM (with or without SIG, in any case) or its number"
    )]
    UnknownSignal(String),
    #[error("{0} is not a process ID: it must be a positive number")]
    InvalidPid(i32),
    #[error(
        "refusing to signal PID 1: it is the pod's pause process (or a container's init), \
         never the app"
    )]
    RefusedInit,
    #[error("refusing to signal PID {0}: that is reconfig itself")]
    RefusedSelf(i32),
    #[error(
        "refusing --process {name:?}: it matches reconfig itself (PID {pid}), which is never \
         signalled; give the name of the app's process"
    )]
    MatchesSelf { name: String, pid: i32 },
    #[error(
        "--process {name:?} matches {} unrelated process trees ({}) and --process-unique \
         refuses to choose: none was signalled",
        .roots.len(),
        list(.roots)
    )]
    Ambiguous { name: String, roots: Vec<Process> },
    #[error(
        "no process with PID {0} is running (it has exited, or this container does not \
         share the app's PID namespace: the pod needs shareProcessNamespace: true)"
    )]
    NoSuchProcess(i32),
    #[error(
        "no process named {0:?} is running: other containers' processes are visible only \
         when the pod sets shareProcessNamespace: true, and the name is compared with the \
         kernel's process name (comm, cut to 15 characters) and the file name of argv[0]"
    )]
    NoMatch(String),
    #[error("cannot read pid file {}: {error}", path.display())]
    PidFileUnreadable { path: PathBuf, error: io::Error },
    #[error("pid file {} {reason}", path.display())]
    PidFileInvalid { path: PathBuf, reason: String },
    #[error(
        "stale pid file {}: PID {pid} is not running (the app exited, or has not \
         rewritten the file yet)",
        path.display()
    )]
    StalePidFile { path: PathBuf, pid: i32 },
    #[error("cannot read {}: {error}", path.display())]
    ProcUnreadable { path: PathBuf, error: io::Error },
    #[error(
        "permission denied signalling {process}: reconfig needs the target's UID or \
         CAP_KILL (SYS_PTRACE is not needed)"
    )]
    PermissionDenied { process: Process },
    #[error("{process} exited between lookup and signal; it was not signalled")]
    Exited { process: Process },
    #[error(
        "PID {} was reused between lookup and signal: it no longer belongs to {}, \
         so it was not signalled",
        process.pid,
        process.name
    )]
    Reused { process: Process },
    #[error("{call} for {process} failed: {error}")]
    Os {
        process: Process,
        call: &'static str,
        error: io::Error,
    },
}

impl SignalError {
    /// A refusal fails the same way every time (PID 1, reconfig itself): trying the same
    /// target again cannot succeed, so it is not retried.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SignalError::InvalidPid(_)
                | SignalError::RefusedInit
                | SignalError::RefusedSelf(_)
                | SignalError::MatchesSelf { .. }
        )
    }
}

/// `nginx (PID 7), nginx (PID 31)`.
fn list(processes: &[Process]) -> String {
    processes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `HUP`, `SIGHUP`, `hup` or `1` into a signal of the accepted set.
pub fn parse_signal(name: &str) -> Result<Signal, SignalError> {
    let unknown = || SignalError::UnknownSignal(name.to_string());
    let trimmed = name.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return SIGNALS
            .iter()
            .map(|&(_, sig)| sig)
            .find(|sig| sig.as_raw() == number)
            .ok_or_else(unknown);
    }
    let upper = trimmed.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|&(_, sig)| sig)
        .ok_or_else(unknown)
}

/// The conventional name (`SIGHUP`) of a signal, for logs; `SIG?` outside the accepted set.
pub fn signal_name(signal: Signal) -> &'static str {
    const FULL: &[&str] = &[
        "SIGHUP", "SIGINT", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTERM",
        "SIGCONT", "SIGSTOP", "SIGWINCH",
    ];
    SIGNALS
        .iter()
        .zip(FULL)
        .find(|((_, sig), _)| *sig == signal)
        .map_or("SIG?", |(_, full)| full)
}

/// Finds and signals processes through a `/proc` tree.
#[derive(Debug, Clone)]
pub struct Signaller {
    /// `/proc` in production; a fake tree in tests.
    proc_root: PathBuf,
    /// Never signalled, and counted as a match when building trees.
    own_pid: i32,
}

impl Default for Signaller {
    fn default() -> Self {
        Self::new()
    }
}

impl Signaller {
    /// Looks at the real `/proc`, as this process.
    pub fn new() -> Self {
        // PIDs are at most 2^22 on Linux, so the conversion cannot fail.
        let own_pid = i32::try_from(std::process::id()).unwrap_or(0);
        Self::with_proc_root(PathBuf::from("/proc"), own_pid)
    }

    /// Looks at another `/proc` tree (tests), treating `own_pid` as this process.
    pub fn with_proc_root(proc_root: PathBuf, own_pid: i32) -> Self {
        Signaller { proc_root, own_pid }
    }

    /// Refuses, before the sidecar starts, a target that could never be signalled as far as
    /// can be known then: PID 1 or reconfig's own PID (given, or already in the pid file), or
    /// a process name that reconfig itself answers to. A pid file that is missing or holds no
    /// PID yet is accepted: the app writes it when it starts.
    pub fn check_at_start(&self, target: &Target) -> Result<(), SignalError> {
        match target {
            Target::Pid(pid) => self.check_allowed(*pid),
            Target::PidFile(path) => match read_pid_file(path) {
                Ok(pid) => self.check_allowed(pid),
                Err(_) => Ok(()),
            },
            Target::Process { name, .. } => {
                let own = self.own_pid;
                let is_me = self
                    .read_stat(own)
                    .ok()
                    .flatten()
                    .is_some_and(|stat| comm_matches(&stat.comm, name))
                    || self.argv0_is(own, name);
                if is_me {
                    Err(SignalError::MatchesSelf {
                        name: name.clone(),
                        pid: own,
                    })
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Resolves the target afresh (never cached: the app may have restarted with a new PID).
    ///
    /// `Target::Process` yields the root of each matching tree (nginx's master, not its
    /// workers), sorted by PID, with a warning when there are several (two unrelated apps
    /// of one name), or an error under `unique`; the other targets yield one process.
    pub fn resolve(&self, target: &Target) -> Result<Vec<Process>, SignalError> {
        match target {
            Target::Pid(pid) => {
                self.check_allowed(*pid)?;
                match self.lookup(*pid)? {
                    Some(process) => Ok(vec![process]),
                    None => Err(SignalError::NoSuchProcess(*pid)),
                }
            }
            Target::PidFile(path) => {
                let pid = read_pid_file(path)?;
                self.check_allowed(pid)?;
                match self.lookup(pid)? {
                    Some(process) => Ok(vec![process]),
                    None => Err(SignalError::StalePidFile {
                        path: path.clone(),
                        pid,
                    }),
                }
            }
            Target::Process { name, unique } => {
                let roots = self.find_roots(name)?;
                if roots.len() > 1 {
                    if *unique {
                        return Err(SignalError::Ambiguous {
                            name: name.clone(),
                            roots,
                        });
                    }
                    warn!(
                        "--process {name:?} matches {} unrelated process trees: {}; signalling \
                         each (--process-unique refuses this instead)",
                        roots.len(),
                        list(&roots)
                    );
                }
                Ok(roots)
            }
        }
    }

    /// Resolves, then signals each process through a pidfd after re-checking its identity.
    ///
    /// Returns the processes signalled. When several were found and only some could be
    /// signalled, the failures are logged and the rest succeed; when none could, the
    /// first failure is returned.
    pub fn send(&self, target: &Target, signal: Signal) -> Result<Vec<Process>, SignalError> {
        let mut sent = Vec::new();
        let mut failures = Vec::new();
        for process in self.resolve(target)? {
            match self.signal_process(&process, signal, true) {
                Ok(()) => sent.push(process),
                Err(err) => failures.push(err),
            }
        }
        let mut failures = failures.into_iter();
        let first = if sent.is_empty() {
            failures.next()
        } else {
            None
        };
        for err in failures {
            warn!("signalling {target}: {err}");
        }
        match first {
            Some(err) => Err(err),
            None => Ok(sent),
        }
    }

    fn check_allowed(&self, pid: i32) -> Result<(), SignalError> {
        if pid <= 0 {
            // kill(2) reads 0 and negative numbers as process groups or "everyone".
            Err(SignalError::InvalidPid(pid))
        } else if pid == 1 {
            Err(SignalError::RefusedInit)
        } else if pid == self.own_pid {
            Err(SignalError::RefusedSelf(pid))
        } else {
            Ok(())
        }
    }

    /// Whether `process` has exited: no live process with its PID, or another one (PID reused).
    /// An unreadable `/proc` counts as not yet.
    pub fn has_exited(&self, process: &Process) -> bool {
        match self.lookup(process.pid) {
            Ok(None) => true,
            Ok(Some(now)) => now.start_time != process.start_time,
            Err(_) => false,
        }
    }

    /// The live process with this PID, or `None` when there is none (or only a zombie).
    fn lookup(&self, pid: i32) -> Result<Option<Process>, SignalError> {
        Ok(self
            .read_stat(pid)?
            .filter(Stat::is_alive)
            .map(|stat| stat.into_process(pid)))
    }

    /// Reads and parses `<proc_root>/<pid>/stat`; `None` when the process is gone.
    fn read_stat(&self, pid: i32) -> Result<Option<Stat>, SignalError> {
        let path = self.proc_root.join(pid.to_string()).join("stat");
        let raw = match read_bounded(&path, MAX_PROC_READ) {
            Ok(raw) => raw,
            Err(err) if is_gone(&err) => return Ok(None),
            Err(error) => return Err(SignalError::ProcUnreadable { path, error }),
        };
        match Stat::parse(&raw) {
            Some(stat) => Ok(Some(stat)),
            None => Err(SignalError::ProcUnreadable {
                path,
                error: io::Error::new(io::ErrorKind::InvalidData, "not in the format of stat(5)"),
            }),
        }
    }

    /// Whether the file name of `argv[0]` is `name`.
    fn argv0_is(&self, pid: i32, name: &str) -> bool {
        let path = self.proc_root.join(pid.to_string()).join("cmdline");
        let Ok(cmdline) = read_bounded(&path, MAX_PROC_READ) else {
            return false;
        };
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
        !base.is_empty() && base == name.as_bytes()
    }

    fn find_roots(&self, name: &str) -> Result<Vec<Process>, SignalError> {
        let entries =
            fs::read_dir(&self.proc_root).map_err(|error| SignalError::ProcUnreadable {
                path: self.proc_root.clone(),
                error,
            })?;
        let mut matches: HashMap<i32, Stat> = HashMap::new();
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let stat = match self.read_stat(pid) {
                Ok(Some(stat)) => stat,
                // Gone since the listing, or unreadable: neither is the app.
                Ok(None) => continue,
                Err(err) => {
                    debug!("skipping PID {pid}: {err}");
                    continue;
                }
            };
            if pid <= 0 || !stat.is_alive() || stat.flags & PF_KTHREAD != 0 {
                continue;
            }
            if comm_matches(&stat.comm, name) || self.argv0_is(pid, name) {
                matches.insert(pid, stat);
            }
        }
        // PID 1 and reconfig itself count as matches here, so that their children are not
        // taken for roots (nginx as PID 1 must not get its workers signalled instead).
        let mut roots: Vec<Process> = matches
            .iter()
            .filter(|(_, stat)| !matches.contains_key(&stat.ppid))
            .map(|(&pid, stat)| stat.clone().into_process(pid))
            .collect();
        roots.sort_by_key(|p| p.pid);
        let mut refused = None;
        roots.retain(|p| match self.check_allowed(p.pid) {
            Ok(()) => true,
            Err(err) => {
                refused.get_or_insert(err);
                false
            }
        });
        match refused {
            Some(err) if roots.is_empty() => Err(err),
            _ if roots.is_empty() => Err(SignalError::NoMatch(name.to_string())),
            _ => Ok(roots),
        }
    }

    /// Signals one resolved process, after confirming that its PID still names it.
    ///
    /// With `use_pidfd` false (or a kernel without pidfds) it falls back to kill(2).
    fn signal_process(
        &self,
        process: &Process,
        signal: Signal,
        use_pidfd: bool,
    ) -> Result<(), SignalError> {
        self.check_allowed(process.pid)?;
        let pid = Pid::from_raw(process.pid).ok_or(SignalError::InvalidPid(process.pid))?;
        if use_pidfd {
            match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
                Ok(pidfd) => {
                    // The pidfd now pins one process; make sure it is the one we resolved.
                    self.confirm_identity(process)?;
                    match rustix::process::pidfd_send_signal(&pidfd, signal) {
                        Ok(()) => {
                            debug!("sent {} to {process} via pidfd", signal_name(signal));
                            return Ok(());
                        }
                        Err(Errno::NOSYS) => {
                            debug!("pidfd_send_signal is unavailable; falling back to kill(2)");
                        }
                        Err(errno) => return Err(errno_error(errno, process, "pidfd_send_signal")),
                    }
                }
                // ENOSYS: kernel before 5.3. EPERM: pidfd_open itself never checks
                // permissions, so this is a seccomp profile that does not know it.
                Err(errno @ (Errno::NOSYS | Errno::PERM)) => {
                    debug!("pidfd_open is unavailable ({errno}); falling back to kill(2)");
                }
                Err(errno) => return Err(errno_error(errno, process, "pidfd_open")),
            }
        }
        self.confirm_identity(process)?;
        rustix::process::kill_process(pid, signal)
            .map_err(|errno| errno_error(errno, process, "kill"))?;
        debug!("sent {} to {process} via kill(2)", signal_name(signal));
        Ok(())
    }

    /// Re-reads stat: the PID must still be alive with the same start time and name.
    fn confirm_identity(&self, process: &Process) -> Result<(), SignalError> {
        let exited = || SignalError::Exited {
            process: process.clone(),
        };
        let stat = self.read_stat(process.pid)?.ok_or_else(exited)?;
        if stat.start_time != process.start_time
            || String::from_utf8_lossy(&stat.comm) != process.name
        {
            return Err(SignalError::Reused {
                process: process.clone(),
            });
        }
        if !stat.is_alive() {
            return Err(exited());
        }
        Ok(())
    }
}

fn errno_error(errno: Errno, process: &Process, call: &'static str) -> SignalError {
    let process = process.clone();
    match errno {
        Errno::SRCH => SignalError::Exited { process },
        Errno::PERM => SignalError::PermissionDenied { process },
        _ => SignalError::Os {
            process,
            call,
            error: errno.into(),
        },
    }
}

/// The fields of `/proc/<pid>/stat` that matter here.
#[derive(Debug, Clone)]
struct Stat {
    comm: Vec<u8>,
    state: u8,
    ppid: i32,
    flags: u64,
    start_time: u64,
}

impl Stat {
    /// Parses stat(5). comm may hold spaces and `)`, so it ends at the last `)`.
    fn parse(raw: &[u8]) -> Option<Stat> {
        let open = raw.iter().position(|&b| b == b'(')?;
        let close = raw.iter().rposition(|&b| b == b')')?;
        let comm = raw.get(open + 1..close)?.to_vec();
        let rest = std::str::from_utf8(raw.get(close + 1..)?).ok()?;
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        // fields[0] is field 3 of stat(5), numbering from 1.
        let field = |n: usize| fields.get(n - 3).copied();
        Some(Stat {
            comm,
            state: field(3)?.bytes().next()?,
            ppid: field(4)?.parse().ok()?,
            flags: field(9)?.parse().ok()?,
            start_time: field(22)?.parse().ok()?,
        })
    }

    /// Zombies (`Z`) and dead tasks (`X`) have exited already.
    fn is_alive(&self) -> bool {
        !matches!(self.state, b'Z' | b'X' | b'x')
    }

    fn into_process(self, pid: i32) -> Process {
        Process {
            pid,
            name: String::from_utf8_lossy(&self.comm).into_owned(),
            start_time: self.start_time,
        }
    }
}

/// comm equals `name`, or the 15 bytes the kernel kept of it.
fn comm_matches(comm: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    !name.is_empty() && (comm == name || (name.len() > COMM_LEN && comm == &name[..COMM_LEN]))
}

fn read_pid_file(path: &Path) -> Result<i32, SignalError> {
    let invalid = |reason: String| SignalError::PidFileInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let raw =
        read_bounded(path, MAX_PID_FILE + 1).map_err(|error| SignalError::PidFileUnreadable {
            path: path.to_path_buf(),
            error,
        })?;
    if raw.len() as u64 > MAX_PID_FILE {
        return Err(invalid(format!(
            "is over {MAX_PID_FILE} bytes, too long to hold a PID"
        )));
    }
    let text = String::from_utf8_lossy(&raw);
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid("is empty".to_string()));
    }
    match text.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => {
            let shown: String = text.chars().take(40).collect();
            Err(invalid(format!("does not hold a PID: {shown:?}")))
        }
    }
}

fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    File::open(path)?.take(limit).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Errors that mean the process is gone: its `/proc` entry vanished, or is vanishing.
fn is_gone(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(Errno::SRCH.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    /// The PID the fake trees treat as reconfig itself.
    const OWN: i32 = 20;

    /// A fake `/proc`: `<pid>/stat` and `<pid>/cmdline` files in a tempdir.
    struct FakeProc {
        dir: tempfile::TempDir,
    }

    impl FakeProc {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            // Entries that are not processes, as in the real /proc.
            fs::create_dir(dir.path().join("self")).expect("mkdir");
            fs::create_dir(dir.path().join("sys")).expect("mkdir");
            fs::write(dir.path().join("uptime"), "1.0 1.0\n").expect("write");
            FakeProc { dir }
        }

        fn add(&self, pid: i32, comm: &str, ppid: i32, argv: &[&str]) -> &Self {
            self.add_full(pid, comm, ppid, 'S', 0, 1000 + pid as u64, argv)
        }

        #[allow(clippy::too_many_arguments)]
        fn add_full(
            &self,
            pid: i32,
            comm: &str,
            ppid: i32,
            state: char,
            flags: u64,
            start_time: u64,
            argv: &[&str],
        ) -> &Self {
            // Fields 3 to 52 of stat(5); fields[0] is field 3.
            let mut fields = vec!["0".to_string(); 50];
            fields[0] = state.to_string();
            fields[1] = ppid.to_string();
            fields[6] = flags.to_string();
            fields[19] = start_time.to_string();
            let stat = format!("{pid} ({comm}) {}\n", fields.join(" "));
            let cmdline: Vec<u8> = argv.iter().flat_map(|arg| arg.bytes().chain([0])).collect();
            self.write(pid, "stat", stat.as_bytes());
            self.write(pid, "cmdline", &cmdline);
            self
        }

        fn write(&self, pid: i32, file: &str, content: &[u8]) {
            let dir = self.dir.path().join(pid.to_string());
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(dir.join(file), content).expect("write");
        }

        fn signaller(&self) -> Signaller {
            Signaller::with_proc_root(self.dir.path().to_path_buf(), OWN)
        }
    }

    fn pids(result: Result<Vec<Process>, SignalError>) -> Vec<i32> {
        match result {
            Ok(processes) => processes.iter().map(|p| p.pid).collect(),
            Err(err) => panic!("unexpected error: {err}"),
        }
    }

    fn by_name(name: &str) -> Target {
        Target::Process {
            name: name.to_string(),
            unique: false,
        }
    }

    fn unique(name: &str) -> Target {
        Target::Process {
            name: name.to_string(),
            unique: true,
        }
    }

    #[test]
    fn several_trees_are_each_signalled_or_refused_under_unique() {
        let proc = FakeProc::new();
        proc.add(7, "nginx", 0, &["nginx"])
            .add(8, "nginx", 7, &["nginx"])
            .add(31, "nginx", 0, &["nginx"]);
        let s = proc.signaller();
        assert_eq!(pids(s.resolve(&by_name("nginx"))), [7, 31]);
        let err = s.resolve(&unique("nginx")).expect_err("ambiguous");
        assert!(!err.is_refusal(), "another tree may exit: worth retrying");
        let text = err.to_string();
        assert!(
            text.contains("2 unrelated process trees (nginx (PID 7), nginx (PID 31))"),
            "{text}"
        );
        // One tree (a master and its worker) is not ambiguous.
        let proc = FakeProc::new();
        proc.add(7, "nginx", 0, &["nginx"])
            .add(8, "nginx", 7, &["nginx"]);
        assert_eq!(pids(proc.signaller().resolve(&unique("nginx"))), [7]);
    }

    #[test]
    fn targets_known_to_be_refused_are_refused_at_start() {
        let proc = FakeProc::new();
        proc.add(1, "pause", 0, &["/pause"]).add(
            OWN,
            "reconfig",
            0,
            &["/usr/bin/reconfig-sidecar", "watch"],
        );
        let s = proc.signaller();
        let refused = |target: &Target| {
            let err = s.check_at_start(target).expect_err("refused");
            assert!(err.is_refusal(), "{err}");
            err
        };
        assert!(matches!(refused(&Target::Pid(1)), SignalError::RefusedInit));
        assert!(matches!(
            refused(&Target::Pid(OWN)),
            SignalError::RefusedSelf(OWN)
        ));
        assert!(matches!(
            refused(&Target::Pid(0)),
            SignalError::InvalidPid(0)
        ));
        for name in ["reconfig", "reconfig-sidecar"] {
            let err = refused(&by_name(name));
            assert!(
                err.to_string().contains("reconfig itself (PID 20)"),
                "{err}"
            );
        }

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.pid");
        let target = Target::PidFile(file.clone());
        s.check_at_start(&target)
            .expect("no pid file yet: the app writes it when it starts");
        fs::write(&file, "1\n").expect("write");
        assert!(matches!(refused(&target), SignalError::RefusedInit));
        fs::write(&file, format!("{OWN}\n")).expect("write");
        assert!(matches!(refused(&target), SignalError::RefusedSelf(OWN)));
        fs::write(&file, "77\n").expect("write");
        s.check_at_start(&target).expect("not running yet is fine");

        // Not running yet, or running: either way not reconfig, so accepted at start.
        for target in [Target::Pid(77), by_name("nginx"), by_name("pause")] {
            s.check_at_start(&target).expect("accepted");
        }
    }

    #[test]
    fn stat_comm_ends_at_the_last_paren() {
        let mut raw = b"42 (a) b (c)) R 7 42 42 0 -1 4194560".to_vec();
        raw.extend(b" 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0\n");
        let stat = Stat::parse(&raw).expect("parses");
        assert_eq!(stat.comm, b"a) b (c)");
        assert_eq!(stat.state, b'R');
        assert_eq!(stat.ppid, 7);
        assert_eq!(stat.flags, 4194560);
        assert_eq!(stat.start_time, 123456);
    }

    #[test]
    fn stat_garbage_is_rejected() {
        for raw in [
            &b""[..],
            b"42 no parens S 1",
            b"42 (x) S",
            b"42 (x) S 1 1 1 0 -1 0",
            b"42 (x) S one 1 1 0 -1 0 0 0 0 0 0 0 0 0 0 0 1 0 5",
            b") 42 (",
        ] {
            assert!(
                Stat::parse(raw).is_none(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn comm_with_spaces_and_parens() {
        let proc = FakeProc::new();
        proc.add(31, "my (app) v2)", 0, &["/bin/app"]);
        proc.add(32, "my", 0, &["/bin/my"]);
        let found = proc
            .signaller()
            .resolve(&by_name("my (app) v2)"))
            .expect("found");
        assert_eq!(
            found,
            vec![Process {
                pid: 31,
                name: "my (app) v2)".to_string(),
                start_time: 1031
            }]
        );
        assert_eq!(pids(proc.signaller().resolve(&by_name("my"))), [32]);
    }

    #[test]
    fn long_names_match_the_truncated_comm() {
        let proc = FakeProc::new();
        proc.add(40, "prometheus-conf", 0, &["/bin/prc"]);
        let s = proc.signaller();
        assert_eq!(
            pids(s.resolve(&by_name("prometheus-config-reloader"))),
            [40]
        );
        assert_eq!(pids(s.resolve(&by_name("prometheus-conf"))), [40]);
        // A shorter name is not a prefix match.
        assert!(matches!(
            s.resolve(&by_name("prometheus-con")),
            Err(SignalError::NoMatch(_))
        ));
    }

    #[test]
    fn argv0_file_name_matches() {
        let proc = FakeProc::new();
        proc.add(
            50,
            "main",
            0,
            &["/opt/app/bin/order-service", "--config", "x"],
        );
        proc.add(51, "java", 0, &["worker-pool", "-jar"]);
        proc.add(52, "trailing", 0, &["/opt/dir/"]);
        let s = proc.signaller();
        assert_eq!(pids(s.resolve(&by_name("order-service"))), [50]);
        assert_eq!(pids(s.resolve(&by_name("worker-pool"))), [51]);
        for name in [
            "--config",
            "x",
            "/opt/app/bin/order-service",
            "bin",
            "dir",
            "",
        ] {
            assert!(
                matches!(s.resolve(&by_name(name)), Err(SignalError::NoMatch(_))),
                "{name:?}"
            );
        }
    }

    #[test]
    fn only_the_root_of_each_tree_is_chosen() {
        let proc = FakeProc::new();
        proc.add(1, "pause", 0, &["/pause"])
            .add(
                7,
                "nginx",
                0,
                &["nginx: master process nginx -g daemon off;"],
            )
            .add(12, "nginx", 7, &["nginx: worker process"])
            .add(13, "nginx", 7, &["nginx: worker process"])
            .add(14, "nginx", 13, &["nginx: helper"])
            .add(OWN, "reconfig", 0, &["/reconfig", "watch"])
            .add(30, "sh", 0, &["/bin/sh", "-c", "nginx"])
            .add(31, "nginx", 30, &["/usr/sbin/nginx"])
            .add(32, "nginx", 31, &["/usr/sbin/nginx"]);
        assert_eq!(pids(proc.signaller().resolve(&by_name("nginx"))), [7, 31]);
    }

    #[test]
    fn pid_1_and_own_pid_are_never_chosen() {
        let proc = FakeProc::new();
        // nginx as PID 1 (sidecar inside its container): neither it nor its workers.
        proc.add(1, "nginx", 0, &["nginx"])
            .add(5, "nginx", 1, &["nginx"])
            .add(6, "nginx", 1, &["nginx"]);
        // reconfig itself and a child with its name.
        proc.add(OWN, "reconfig", 0, &["/reconfig"])
            .add(21, "reconfig", OWN, &["/reconfig"]);
        let s = proc.signaller();
        assert!(matches!(
            s.resolve(&by_name("nginx")),
            Err(SignalError::RefusedInit)
        ));
        assert!(matches!(
            s.resolve(&by_name("reconfig")),
            Err(SignalError::RefusedSelf(OWN))
        ));
        // Another tree of the same name is still found.
        proc.add(9, "nginx", 0, &["nginx"]);
        assert_eq!(pids(s.resolve(&by_name("nginx"))), [9]);
    }

    #[test]
    fn explicit_pids_are_checked() {
        let proc = FakeProc::new();
        proc.add(1, "pause", 0, &["/pause"])
            .add(7, "app", 0, &["/app"])
            .add(OWN, "reconfig", 0, &["/reconfig"]);
        let s = proc.signaller();
        assert_eq!(
            s.resolve(&Target::Pid(7)).expect("found"),
            [Process {
                pid: 7,
                name: "app".to_string(),
                start_time: 1007
            }]
        );
        assert!(matches!(
            s.resolve(&Target::Pid(1)),
            Err(SignalError::RefusedInit)
        ));
        assert!(matches!(
            s.resolve(&Target::Pid(OWN)),
            Err(SignalError::RefusedSelf(OWN))
        ));
        for pid in [0, -1, -7] {
            assert!(matches!(
                s.resolve(&Target::Pid(pid)),
                Err(SignalError::InvalidPid(p)) if p == pid
            ));
        }
        assert!(matches!(
            s.resolve(&Target::Pid(99)),
            Err(SignalError::NoSuchProcess(99))
        ));
        let err = s
            .resolve(&Target::Pid(99))
            .expect_err("missing")
            .to_string();
        assert!(err.contains("shareProcessNamespace: true"), "{err}");
    }

    #[test]
    fn zombies_and_kernel_threads_are_skipped() {
        let proc = FakeProc::new();
        proc.add_full(60, "app", 0, 'Z', 0, 5, &[]);
        proc.add_full(61, "app", 2, 'I', PF_KTHREAD, 6, &[]);
        let s = proc.signaller();
        assert!(matches!(
            s.resolve(&by_name("app")),
            Err(SignalError::NoMatch(_))
        ));
        assert!(matches!(
            s.resolve(&Target::Pid(60)),
            Err(SignalError::NoSuchProcess(60))
        ));
        // A live process whose parent is a zombie of the same name is a root.
        proc.add(62, "app", 60, &["app"]);
        assert_eq!(pids(s.resolve(&by_name("app"))), [62]);
    }

    #[test]
    fn garbage_stat_is_an_error_for_a_pid_and_skipped_in_a_scan() {
        let proc = FakeProc::new();
        proc.write(70, "stat", b"70 (app");
        proc.add(71, "app", 0, &["app"]);
        let s = proc.signaller();
        assert!(matches!(
            s.resolve(&Target::Pid(70)),
            Err(SignalError::ProcUnreadable { .. })
        ));
        assert_eq!(pids(s.resolve(&by_name("app"))), [71]);
    }

    #[test]
    fn missing_proc_root_is_reported() {
        let s = Signaller::with_proc_root(PathBuf::from("/nonexistent/proc"), OWN);
        let err = s.resolve(&by_name("app")).expect_err("no /proc");
        assert!(matches!(err, SignalError::ProcUnreadable { .. }), "{err}");
    }

    #[test]
    fn no_match_explains_the_namespace_and_truncation() {
        let proc = FakeProc::new();
        proc.add(1, "pause", 0, &["/pause"]);
        let err = proc
            .signaller()
            .resolve(&by_name("nginx"))
            .expect_err("none");
        let text = err.to_string();
        assert!(text.contains("\"nginx\""), "{text}");
        assert!(text.contains("shareProcessNamespace: true"), "{text}");
        assert!(text.contains("15 characters"), "{text}");
        assert!(text.contains("argv[0]"), "{text}");
    }

    #[test]
    fn pid_files_are_reread_and_checked() {
        let proc = FakeProc::new();
        proc.add(1, "pause", 0, &["/pause"])
            .add(7, "app", 0, &["/app"])
            .add(30, "app", 0, &["/app"]);
        let s = proc.signaller();
        let file = proc.dir.path().join("app.pid");
        let target = Target::PidFile(file.clone());

        let err = s.resolve(&target).expect_err("missing file");
        assert!(
            matches!(err, SignalError::PidFileUnreadable { .. }),
            "{err}"
        );

        fs::write(&file, " 7\n").expect("write");
        assert_eq!(pids(s.resolve(&target)), [7]);
        // The app restarted and rewrote its pid file: never cached.
        fs::write(&file, "30").expect("write");
        assert_eq!(pids(s.resolve(&target)), [30]);

        let cases: &[(&str, &str)] = &[
            ("", "is empty"),
            ("  \n\t", "is empty"),
            ("abc\n", "does not hold a PID: \"abc\""),
            ("7 8\n", "does not hold a PID"),
            ("7.0", "does not hold a PID"),
            ("-4", "does not hold a PID"),
            ("0", "does not hold a PID"),
            ("99999999999", "does not hold a PID"),
        ];
        for (content, expected) in cases {
            fs::write(&file, content).expect("write");
            let err = s.resolve(&target).expect_err(content);
            assert!(matches!(err, SignalError::PidFileInvalid { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains(expected), "{content:?}: {text}");
            assert!(text.contains("app.pid"), "{text}");
        }

        let mut long = " ".repeat(5000);
        long.push('7');
        fs::write(&file, long).expect("write");
        let err = s.resolve(&target).expect_err("too long").to_string();
        assert!(err.contains("too long"), "{err}");

        fs::write(&file, "99\n").expect("write");
        let err = s.resolve(&target).expect_err("stale");
        assert!(
            matches!(err, SignalError::StalePidFile { pid: 99, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("stale pid file"), "{err}");

        fs::write(&file, "1\n").expect("write");
        assert!(matches!(s.resolve(&target), Err(SignalError::RefusedInit)));
        fs::write(&file, format!("{OWN}\n")).expect("write");
        assert!(matches!(
            s.resolve(&target),
            Err(SignalError::RefusedSelf(OWN))
        ));
    }

    #[test]
    fn signal_names_and_numbers() {
        let cases: &[(&str, Signal)] = &[
            ("HUP", Signal::HUP),
            ("SIGHUP", Signal::HUP),
            ("hup", Signal::HUP),
            ("sighup", Signal::HUP),
            (" SIGTERM\n", Signal::TERM),
            ("1", Signal::HUP),
            ("9", Signal::KILL),
            ("15", Signal::TERM),
            ("INT", Signal::INT),
            ("QUIT", Signal::QUIT),
            ("USR1", Signal::USR1),
            ("SigUsr2", Signal::USR2),
            ("KILL", Signal::KILL),
            ("WINCH", Signal::WINCH),
            ("CONT", Signal::CONT),
            ("STOP", Signal::STOP),
            ("ALRM", Signal::ALARM),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_signal(text).expect(text), *expected, "{text:?}");
        }
        for text in [
            "", "SIG", "SIGFOO", "HUPP", "0", "-1", "11", "99", "SIG HUP",
        ] {
            let err = parse_signal(text).expect_err(text);
            assert!(
                matches!(&err, SignalError::UnknownSignal(t) if t == text),
                "{err}"
            );
        }
        for (name, sig) in SIGNALS {
            assert_eq!(signal_name(*sig), format!("SIG{name}"));
            assert_eq!(parse_signal(signal_name(*sig)).expect(name), *sig);
        }
        assert_eq!(signal_name(Signal::SEGV), "SIG?");
    }

    #[test]
    fn errno_maps_to_clear_errors() {
        let process = Process {
            pid: 7,
            name: "app".to_string(),
            start_time: 1,
        };
        let err = errno_error(Errno::PERM, &process, "kill");
        assert!(matches!(err, SignalError::PermissionDenied { .. }));
        let text = err.to_string();
        assert!(text.contains("app (PID 7)"), "{text}");
        assert!(text.contains("CAP_KILL"), "{text}");
        assert!(matches!(
            errno_error(Errno::SRCH, &process, "kill"),
            SignalError::Exited { .. }
        ));
        let text = errno_error(Errno::INVAL, &process, "pidfd_open").to_string();
        assert!(
            text.starts_with("pidfd_open for app (PID 7) failed"),
            "{text}"
        );
    }

    // Real processes. Each test runs a copy of a system binary under a unique name, so
    // that other processes on the machine never match.

    /// Kills and reaps the child if a test fails before it exits.
    struct Guard(Child);

    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    impl Guard {
        fn pid(&self) -> i32 {
            i32::try_from(self.0.id()).expect("pid")
        }

        fn exit_signal(&mut self) -> Option<i32> {
            self.0.wait().expect("wait").signal()
        }

        /// Waits until the child's command line holds `argv0`. `spawn` returns once the
        /// child has begun to exec, and the kernel sets the new command line a moment later:
        /// on a loaded machine a test looked for it first and found nothing.
        fn wait_for_argv0(&self, argv0: &str) {
            let path = format!("/proc/{}/cmdline", self.pid());
            for _ in 0..500 {
                let cmdline = std::fs::read(&path).unwrap_or_default();
                if cmdline.split(|&b| b == 0).next() == Some(argv0.as_bytes()) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("{path} never held {argv0:?}");
        }
    }

    /// A 15-character name no other process has: `rcfgtest-` and six hex digits.
    fn unique_name() -> String {
        use std::hash::{BuildHasher, RandomState};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let seed = (
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            Instant::now(),
        );
        let hash = RandomState::new().hash_one(seed);
        format!("rcfgtest-{:06x}", hash & 0xff_ffff)
    }

    /// Copies `binary` into a tempdir as `name`.
    fn copy_binary(binary: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        fs::copy(binary, &path).expect("copy binary");
        (dir, path)
    }

    fn spawn(command: &mut Command) -> Guard {
        // A parallel test forking while the copy was open for writing makes exec fail
        // with ETXTBSY until that child execs; retry briefly.
        for _ in 0..100 {
            match command.spawn() {
                Ok(child) => return Guard(child),
                Err(err) if err.raw_os_error() == Some(Errno::TXTBSY.raw_os_error()) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(err) => panic!("spawn {command:?}: {err}"),
            }
        }
        panic!("spawn {command:?}: text file busy");
    }

    fn spawn_sleep(path: &Path) -> Guard {
        spawn(Command::new(path).arg("30").stdin(Stdio::null()))
    }

    #[test]
    fn real_pid_target_gets_sigterm() {
        let name = unique_name();
        let (_dir, path) = copy_binary("/bin/sleep", &name);
        let mut child = spawn_sleep(&path);
        let s = Signaller::new();
        let target = Target::Pid(child.pid());
        let found = s.resolve(&target).expect("resolve");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pid, child.pid());
        assert_eq!(found[0].name, name);
        assert_eq!(s.send(&target, Signal::TERM).expect("send"), found);
        assert_eq!(child.exit_signal(), Some(libc_signal(Signal::TERM)));
    }

    #[test]
    fn real_pid_file_target_gets_sighup() {
        let (dir, path) = copy_binary("/bin/sleep", &unique_name());
        let mut child = spawn_sleep(&path);
        let file = dir.path().join("app.pid");
        fs::write(&file, format!("{}\n", child.pid())).expect("write");
        let sent = Signaller::new()
            .send(&Target::PidFile(file), Signal::HUP)
            .expect("send");
        assert_eq!(sent.len(), 1);
        assert_eq!(child.exit_signal(), Some(libc_signal(Signal::HUP)));
    }

    #[test]
    fn real_process_found_by_truncated_comm() {
        let name = format!("{}-with-a-long-name", unique_name());
        let (_dir, path) = copy_binary("/bin/sleep", &name);
        // argv[0] is unrelated, so only comm (cut to 15 characters) can match.
        let mut child = spawn(Command::new(&path).arg0("zz").arg("30"));
        let s = Signaller::new();
        let found = s.resolve(&by_name(&name)).expect("resolve");
        assert_eq!(pids(Ok(found.clone())), [child.pid()]);
        assert_eq!(found[0].name, name[..15]);
        assert_eq!(pids(s.send(&by_name(&name), Signal::USR1)), [child.pid()]);
        assert_eq!(child.exit_signal(), Some(libc_signal(Signal::USR1)));
    }

    #[test]
    fn real_process_found_by_argv0() {
        let comm = unique_name();
        let argv0_name = format!("argv-{comm}");
        let (_dir, path) = copy_binary("/bin/sleep", &comm);
        let mut child = spawn(
            Command::new(&path)
                .arg0(format!("/nowhere/{argv0_name}"))
                .arg("30"),
        );
        child.wait_for_argv0(&format!("/nowhere/{argv0_name}"));
        let target = by_name(&argv0_name);
        let sent = Signaller::new().send(&target, Signal::TERM).expect("send");
        assert_eq!(pids(Ok(sent)), [child.pid()]);
        assert_eq!(child.exit_signal(), Some(libc_signal(Signal::TERM)));
    }

    #[test]
    fn real_exited_pid_is_a_clear_error() {
        let (dir, path) = copy_binary("/bin/sleep", &unique_name());
        let mut child = spawn_sleep(&path);
        let pid = child.pid();
        child.0.kill().expect("kill");
        child.0.wait().expect("wait");
        let s = Signaller::new();
        let err = s.send(&Target::Pid(pid), Signal::HUP).expect_err("gone");
        assert!(
            matches!(err, SignalError::NoSuchProcess(p) if p == pid),
            "{err}"
        );
        let file = dir.path().join("app.pid");
        fs::write(&file, pid.to_string()).expect("write");
        let err = s
            .send(&Target::PidFile(file), Signal::HUP)
            .expect_err("gone");
        assert!(matches!(err, SignalError::StalePidFile { .. }), "{err}");
    }

    #[test]
    fn real_exit_between_lookup_and_signal() {
        let (_dir, path) = copy_binary("/bin/sleep", &unique_name());
        let mut child = spawn_sleep(&path);
        let s = Signaller::new();
        let found = s.resolve(&Target::Pid(child.pid())).expect("resolve");
        child.0.kill().expect("kill");
        child.0.wait().expect("wait");
        for use_pidfd in [true, false] {
            let err = s
                .signal_process(&found[0], Signal::HUP, use_pidfd)
                .expect_err("exited");
            assert!(matches!(err, SignalError::Exited { .. }), "{err}");
        }
    }

    #[test]
    fn real_reused_pid_is_not_signalled() {
        let (_dir, path) = copy_binary("/bin/sleep", &unique_name());
        let mut child = spawn_sleep(&path);
        let s = Signaller::new();
        let mut stale = s.resolve(&Target::Pid(child.pid())).expect("resolve")[0].clone();
        // Same PID, different start time: another process now holds the PID.
        stale.start_time += 1;
        for use_pidfd in [true, false] {
            let err = s
                .signal_process(&stale, Signal::TERM, use_pidfd)
                .expect_err("reused");
            assert!(matches!(err, SignalError::Reused { .. }), "{err}");
        }
        assert!(child.0.try_wait().expect("try_wait").is_none());
    }

    #[test]
    fn real_kill_fallback_after_identity_check() {
        let (_dir, path) = copy_binary("/bin/sleep", &unique_name());
        let mut child = spawn_sleep(&path);
        let s = Signaller::new();
        let found = s.resolve(&Target::Pid(child.pid())).expect("resolve");
        s.signal_process(&found[0], Signal::TERM, false)
            .expect("kill");
        assert_eq!(child.exit_signal(), Some(libc_signal(Signal::TERM)));
    }

    #[test]
    fn send_signals_every_root_it_can_and_reports_the_rest() {
        // A fake tree naming real children, so that send really signals them.
        let (_dir, path) = copy_binary("/bin/sleep", &unique_name());
        let mut first = spawn_sleep(&path);
        let mut second = spawn_sleep(&path);
        let mut gone = spawn_sleep(&path);
        let gone_pid = gone.pid();
        gone.0.kill().expect("kill");
        gone.0.wait().expect("wait");
        let proc = FakeProc::new();
        for pid in [first.pid(), second.pid(), gone_pid] {
            proc.add(pid, "app", 0, &["app"]);
        }
        let own = i32::try_from(std::process::id()).expect("pid");
        let s = Signaller::with_proc_root(proc.dir.path().to_path_buf(), own);
        let mut expected = vec![first.pid(), second.pid()];
        expected.sort_unstable();
        assert_eq!(pids(s.send(&by_name("app"), Signal::TERM)), expected);
        assert_eq!(first.exit_signal(), Some(libc_signal(Signal::TERM)));
        assert_eq!(second.exit_signal(), Some(libc_signal(Signal::TERM)));

        // When nothing could be signalled, the failure is the result.
        let proc = FakeProc::new();
        proc.add(gone_pid, "app", 0, &["app"]);
        let s = Signaller::with_proc_root(proc.dir.path().to_path_buf(), own);
        let err = s.send(&by_name("app"), Signal::TERM).expect_err("exited");
        assert!(matches!(err, SignalError::Exited { .. }), "{err}");
    }

    /// PIDs of live processes named `comm` whose parent is `ppid`.
    fn children_named(ppid: i32, comm: &str) -> Vec<i32> {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let raw =
                    read_bounded(&Path::new("/proc").join(pid.to_string()).join("stat"), 4096);
                raw.ok()
                    .and_then(|raw| Stat::parse(&raw))
                    .is_some_and(|st| {
                        st.ppid == ppid && st.is_alive() && st.comm == comm.as_bytes()
                    })
            })
            .collect()
    }

    fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(value) = probe() {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn real_tree_signals_only_its_root_and_is_found_again() {
        let name = unique_name();
        let (dir, shell) = copy_binary("/bin/sh", &name);
        let fifo = dir.path().join("fifo");
        let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(status.success());
        // The root shell starts a second copy of itself, which blocks opening the fifo:
        // two processes named `name`, parent and child.
        let mut root = spawn(
            Command::new(&shell)
                .args(["-c", "\"$RCFG_SELF\" -c 'read x <\"$RCFG_FIFO\"' & wait"])
                .env("RCFG_SELF", &shell)
                .env("RCFG_FIFO", &fifo)
                .stdin(Stdio::null()),
        );
        let child = wait_until("the child shell", || {
            children_named(root.pid(), &name).first().copied()
        });
        let s = Signaller::new();
        let target = by_name(&name);
        assert_eq!(pids(s.resolve(&target)), [root.pid()]);
        assert_eq!(pids(s.send(&target, Signal::TERM)), [root.pid()]);
        assert_eq!(root.exit_signal(), Some(libc_signal(Signal::TERM)));

        // The orphaned child is now the root of its tree: found afresh, by its own PID.
        let found = wait_until("the orphan to be a root", || {
            s.resolve(&target)
                .ok()
                .filter(|found| pids(Ok(found.clone())) == [child])
        });
        assert_eq!(pids(s.send(&target, Signal::KILL)), [child]);
        assert_eq!(found[0].pid, child);
        wait_until("the orphan to die", || {
            matches!(s.resolve(&target), Err(SignalError::NoMatch(_))).then_some(())
        });
    }

    fn libc_signal(signal: Signal) -> i32 {
        signal.as_raw()
    }
}
