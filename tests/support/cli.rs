//! The one way the tests run the `reconfig` binary. A developer's shell or a CI pod may export
//! variables that change its defaults (`RECONFIG_LOG_FORMAT=json`, `RECONFIG_NAMESPACE`,
//! `POD_NAME`, ...), so every command starts without any `RECONFIG_*` or `POD_*` variable; a
//! test that needs one sets it explicitly.

use std::ffi::OsStr;
use std::process::Command;

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_reconfig");

/// Whether `name` is a variable the binary reads: `RECONFIG_*` (its options) or `POD_*` (the
/// downward API `watch` reads).
fn is_ours(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with("RECONFIG_") || n.starts_with("POD_"))
}

/// Removes from `cmd` every `RECONFIG_*` and `POD_*` variable of this process's environment,
/// for any program that runs `reconfig` in turn (Helm's post-renderer, a shell pipeline).
pub fn clear_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os().filter(|(name, _)| is_ours(name)) {
        cmd.env_remove(name);
    }
    cmd
}

/// `reconfig` with a clean environment, as a `std::process::Command` (to spawn, or set a uid).
pub fn command() -> Command {
    let mut cmd = Command::new(BINARY);
    clear_env(&mut cmd);
    cmd
}

/// `reconfig` with a clean environment, as an `assert_cmd::Command` (stdin, output, asserts).
pub fn reconfig() -> assert_cmd::Command {
    assert_cmd::Command::from_std(command())
}

/// What a finished run printed.
#[derive(Debug, Clone)]
pub struct Run {
    /// The exit code, -1 when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `reconfig ARGS` with `stdin` to the end.
pub fn run(args: &[&str], stdin: &str) -> Run {
    let out = reconfig()
        .args(args)
        .write_stdin(stdin)
        .output()
        .expect("run reconfig");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
