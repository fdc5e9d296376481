//! A stand-in app to signal: a shell that appends a line to its record for every SIGHUP and
//! exits on SIGTERM, started under the name `--process` will look for.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::wait::until;

/// Killed and reaped when dropped.
pub struct App {
    child: Child,
    record: PathBuf,
}

impl App {
    /// Starts `name` (its argv[0]), recording in `dir`, and waits until its traps are set.
    pub fn start(dir: &Path, name: &str) -> App {
        std::fs::create_dir_all(dir).expect("the app's folder");
        let record = dir.join(format!("{name}.hups"));
        let ready = dir.join(format!("{name}.ready"));
        let child = Command::new("sh")
            .arg0(name)
            .arg("-c")
            .arg(
                r#"trap 'echo hup >> "$0"' HUP; trap 'exit 0' TERM; : > "$1"
                   while :; do sleep 1 & wait $!; done"#,
            )
            .arg(&record)
            .arg(&ready)
            .stdin(Stdio::null())
            .spawn()
            .expect("start sh");
        let app = App { child, record };
        until("the stand-in app to set its traps", || ready.exists());
        app
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGHUPs received so far.
    pub fn hups(&self) -> usize {
        std::fs::read_to_string(&self.record)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Dies at once, as a crash would, and is reaped.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop();
    }
}
