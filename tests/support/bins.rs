//! Real programs the tests drive: found on PATH or in the sbin folders Debian uses.
//!
//! A test whose program is missing cannot run. Under CI it fails. Elsewhere it returns early and
//! cargo reports it `ok`, so the skip is also appended to the file named by [`SKIP_LOG`], which
//! `tests/run.sh` sets and prints at the end (failing unless `RECONFIG_ALLOW_SKIP=1`).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The variable naming the file that skipped tests are appended to, one `TEST: reason` a line.
pub const SKIP_LOG: &str = "RECONFIG_SKIP_LOG";

/// Whether this is a CI run (`CI=true`, as GitHub Actions, GitLab and most others set it).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// An executable called `name` on PATH or in /usr/sbin, /usr/bin, /sbin, /bin.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The program, or `None` after a loud message when it is missing and this is not CI.
/// Under CI a missing program fails the test: a silent skip would hide a broken setup.
pub fn require(name: &str, package: &str) -> Option<PathBuf> {
    if let Some(found) = find(name) {
        return Some(found);
    }
    let message = format!(
        "`{name}` is not installed: it comes with Debian's `{package}` package, which \
         `bash tests/run.sh` installs (apt-get install -y {package})"
    );
    missing(&message);
    None
}

/// Says that what a test needs is missing: under CI the test fails here; elsewhere the skip is
/// printed and recorded (see [`SKIP_LOG`]), and the caller returns early.
pub fn missing(message: &str) {
    if under_ci() {
        panic!("{message}. CI is set, so this test fails instead of skipping.");
    }
    eprintln!("\n******** SKIPPING: {message} ********\n");
    record_skip(message);
}

/// Appends `TEST: reason` to the [`SKIP_LOG`] file, if one is set. The test is named by its
/// binary and its thread, which libtest names after the test.
fn record_skip(reason: &str) {
    let Some(log) = std::env::var_os(SKIP_LOG).filter(|v| !v.is_empty()) else {
        return;
    };
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    let line = format!("{}::{test}: {reason}\n", env!("CARGO_CRATE_NAME"));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!(
            "cannot record the skip in {}: {e}",
            Path::new(&log).display()
        );
    }
}

/// Every program of the list, or `None` (see [`require`]).
pub fn require_all(names: &[(&str, &str)]) -> Option<Vec<PathBuf>> {
    let found: Vec<Option<PathBuf>> = names
        .iter()
        .map(|(name, package)| require(name, package))
        .collect();
    found.into_iter().collect()
}
