//! Running external commands with a time limit: `--validate-cmd` validators and `--exec` actions.
//!
//! Both run a program the user named, without a shell, and must never hang the sidecar nor
//! outlive their welcome; one function does it, so both get the same limits and the same output:
//!
//! - both pipes are read while the command runs, so a command that prints more than a pipe
//!   holds (64 KiB on Linux) is not blocked on a full pipe until its timeout; only the end of
//!   each stream is kept, since that is where errors are printed;
//! - the command leads its own process group, and a timeout, or a caller that stops waiting
//!   (shutdown drops the future), kills the whole group: a `sh -c` wrapper's children go too.

use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;

/// Bytes of output kept for the log, across both streams: the last half of each.
const OUTPUT_LIMIT: usize = 64 * 1024;
/// After the command exits, how long output is still read from pipes a background child of
/// it may hold open: the command is done, and such a child must not keep the caller waiting.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(100);
/// How long the reaping of a killed command is waited for; SIGKILL is not ignorable, but a
/// process stuck in the kernel (a hung NFS read) dies only when the kernel lets it.
const REAP_AFTER_KILL: Duration = Duration::from_secs(1);

/// What an external command run produced.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    pub success: bool,
    /// Exit status, or the reason it has none (timeout, spawn failure).
    pub status: String,
    /// The end of its stdout, then the end of its stderr.
    pub output: String,
}

/// Runs a command without a shell, in its own process group, with a timeout, keeping the end
/// of its output. Dropping the returned future kills the command's process group.
pub async fn run_command(argv: &[String], timeout: Duration) -> CommandOutcome {
    let Some((program, args)) = argv.split_first() else {
        return CommandOutcome {
            success: false,
            status: "empty command".into(),
            output: String::new(),
        };
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut group = match child {
        Ok(child) => Group::new(child),
        Err(e) => {
            return CommandOutcome {
                success: false,
                status: format!("cannot start `{program}`: {e}"),
                output: String::new(),
            }
        }
    };
    let (stdout, stderr) = (group.child.stdout.take(), group.child.stderr.take());
    let (mut out, mut err) = (Tail::default(), Tail::default());
    let finished = tokio::time::timeout(
        timeout,
        wait_and_read(&mut group, stdout, stderr, &mut out, &mut err),
    )
    .await;
    let (success, status) = match finished {
        Ok(Ok(status)) => (status.success(), status.to_string()),
        Ok(Err(e)) => (false, format!("wait failed: {e}")),
        Err(_) => {
            group.kill().await;
            (false, format!("timed out after {timeout:?} and was killed"))
        }
    };
    let mut output = out.text();
    let err = err.text();
    if !err.is_empty() {
        if !output.is_empty() {
            output.push('\n');
        }
        output.push_str(&err);
    }
    CommandOutcome {
        success,
        status,
        output,
    }
}

/// Waits for the command to exit while reading both pipes, then reads what is left for at
/// most [`DRAIN_AFTER_EXIT`].
async fn wait_and_read(
    group: &mut Group,
    stdout: Option<impl AsyncRead + Unpin>,
    stderr: Option<impl AsyncRead + Unpin>,
    out: &mut Tail,
    err: &mut Tail,
) -> std::io::Result<std::process::ExitStatus> {
    let reading = async { tokio::join!(out.read_all(stdout), err.read_all(stderr)) };
    let mut reading = std::pin::pin!(reading);
    let mut read_to_the_end = false;
    let status = tokio::select! {
        status = group.wait() => status,
        _ = &mut reading => {
            read_to_the_end = true;
            group.wait().await
        }
    };
    if !read_to_the_end {
        let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, reading).await;
    }
    status
}

/// The command's process group: killed whole on timeout, or when the caller stops waiting.
struct Group {
    child: Child,
    /// The group's ID (the command's PID) until the command is reaped: after that the number
    /// may name someone else's group, so it is never signalled again.
    pgid: Option<Pid>,
}

impl Group {
    fn new(child: Child) -> Self {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw);
        Group { child, pgid }
    }

    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let status = self.child.wait().await;
        if status.is_ok() {
            self.pgid = None;
        }
        status
    }

    /// SIGKILL to the whole group, then reaps the command.
    async fn kill(&mut self) {
        self.kill_group();
        let _ = tokio::time::timeout(REAP_AFTER_KILL, self.wait()).await;
    }

    fn kill_group(&mut self) {
        if let Some(pgid) = self.pgid {
            // ESRCH: everyone in it has exited already; nothing else can fail for our own child.
            let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
        }
    }
}

impl Drop for Group {
    /// A caller that stops waiting (shutdown) leaves nothing running; `kill_on_drop` then
    /// has tokio reap the command.
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// The last [`OUTPUT_LIMIT`]` / 2` bytes of one stream, and how many came before them.
#[derive(Debug, Default)]
struct Tail {
    kept: Vec<u8>,
    cut: u64,
}

impl Tail {
    const LIMIT: usize = OUTPUT_LIMIT / 2;

    /// Reads the stream to its end (or a read error), keeping its tail.
    async fn read_all(&mut self, stream: Option<impl AsyncRead + Unpin>) {
        let Some(mut stream) = stream else { return };
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            self.push(&buf[..n]);
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.kept.extend_from_slice(bytes);
        // Trimmed in batches, so a long stream is not moved for every read.
        if self.kept.len() >= 2 * Self::LIMIT {
            let excess = self.kept.len() - Self::LIMIT;
            self.kept.drain(..excess);
            self.cut += excess as u64;
        }
    }

    /// The tail as text, trimmed, saying how much came before it.
    fn text(&self) -> String {
        let start = self.kept.len().saturating_sub(Self::LIMIT);
        let cut = self.cut + start as u64;
        let mut tail = &self.kept[start..];
        if cut > 0 {
            // Start at a line, when there is one, rather than in the middle of a word.
            if let Some(newline) = tail.iter().position(|&b| b == b'\n') {
                tail = &tail[newline + 1..];
            }
        }
        let text = String::from_utf8_lossy(tail);
        let text = text.trim_end();
        if cut == 0 {
            text.to_string()
        } else {
            let cut = cut + (self.kept.len() - start - tail.len()) as u64;
            format!("[{cut} earlier bytes not kept]\n{text}")
        }
    }
}

/// Folds a command's output into one line, so each log record stays one line.
pub fn one_line(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(ToString::to_string).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn commands_run_without_a_shell_and_time_out() {
        let outcome = run_command(
            &argv(&["sh", "-c", "echo checked /tmp/x; exit 3"]),
            Duration::from_secs(5),
        )
        .await;
        assert!(!outcome.success);
        assert_eq!(outcome.output, "checked /tmp/x");
        assert!(outcome.status.contains('3'), "{}", outcome.status);

        let ok = run_command(&["true".to_string()], Duration::from_secs(5)).await;
        assert!(ok.success);

        let slow = run_command(
            &["sleep".to_string(), "5".to_string()],
            Duration::from_millis(100),
        )
        .await;
        assert!(
            !slow.success && slow.status.contains("timed out"),
            "{}",
            slow.status
        );

        let missing = run_command(
            &["/nonexistent/validator".to_string()],
            Duration::from_secs(1),
        )
        .await;
        assert!(!missing.success && missing.status.contains("cannot start"));
    }

    /// Whether `pid` is a live process (a zombie has exited: its parent may never reap it here).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace()
                    .next()
                    .map(|s| !matches!(s, "Z" | "X"))
            })
            .unwrap_or(false)
    }

    fn wait_until_dead(pid: i32) {
        for _ in 0..500 {
            if !alive(pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("PID {pid} is still running");
    }

    /// A shell that starts `sleep 1000` in the background, writes its PID to `file` and waits.
    fn sleeper(file: &std::path::Path) -> Vec<String> {
        let script = format!("sleep 1000 & echo $! > '{}'; wait", file.display());
        argv(&["sh", "-c", &script])
    }

    fn pid_in(file: &std::path::Path) -> Option<i32> {
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn output_beyond_what_a_pipe_holds_is_drained_and_its_end_kept() {
        let outcome = run_command(
            &argv(&[
                "sh",
                "-c",
                "yes 0123456789 | head -c 300000; echo OUT-END; \
                 yes e | head -c 300000 >&2; echo ERR-END >&2",
            ]),
            Duration::from_secs(20),
        )
        .await;
        assert!(outcome.success, "{}", outcome.status);
        let (out, err) = outcome
            .output
            .split_once("OUT-END\n")
            .expect("both streams");
        assert!(out.starts_with('[') && out.contains("earlier bytes not kept]\n0123456789\n"));
        assert!(
            err.starts_with('[') && err.ends_with("e\nERR-END"),
            "{:.80}",
            err
        );
        assert!(
            outcome.output.len() <= OUTPUT_LIMIT + 100,
            "{}",
            outcome.output.len()
        );
    }

    #[test]
    fn the_tail_starts_at_a_line_and_counts_what_came_before() {
        let mut tail = Tail::default();
        let mut total = 0;
        for i in 0..20_000 {
            let line = format!("line {i}\n");
            total += line.len();
            tail.push(line.as_bytes());
        }
        let text = tail.text();
        let (note, kept) = text.split_once('\n').expect("a note, then the lines");
        let cut: usize = note
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(" earlier bytes not kept]"))
            .and_then(|n| n.parse().ok())
            .expect(note);
        assert!(kept.starts_with("line ") && kept.ends_with("line 19999"));
        assert_eq!(cut + kept.len() + 1, total, "every byte is kept or counted");
        assert!(kept.len() <= Tail::LIMIT);

        let mut short = Tail::default();
        short.push(b"all of it\n\n");
        assert_eq!(short.text(), "all of it");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pid");
        let outcome = run_command(&sleeper(&file), Duration::from_millis(500)).await;
        assert!(outcome.status.contains("timed out"), "{}", outcome.status);
        let pid = pid_in(&file).expect("the shell started its child");
        wait_until_dead(pid);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_caller_that_stops_waiting_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pid");
        let argv = sleeper(&file);
        let run = run_command(&argv, Duration::from_secs(60));
        let pid = tokio::select! {
            outcome = run => panic!("finished early: {outcome:?}"),
            pid = async {
                loop {
                    if let Some(pid) = pid_in(&file) {
                        break pid;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            } => pid,
        };
        // The run was dropped by select!.
        wait_until_dead(pid);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_background_child_holding_the_pipes_does_not_hold_the_caller() {
        let started = std::time::Instant::now();
        let outcome = run_command(
            &argv(&["sh", "-c", "sleep 3 & echo done"]),
            Duration::from_secs(20),
        )
        .await;
        assert!(outcome.success, "{}", outcome.status);
        assert_eq!(outcome.output, "done");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn output_folds_into_one_line() {
        assert_eq!(one_line("a\n\n  b  \nc\n"), "a | b | c");
        assert_eq!(one_line(""), "");
    }
}
