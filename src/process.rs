//! Running external commands with a time limit: `--validate-cmd` validators and `--exec` actions.
//!
//! Both run a program the user named, without a shell, and must never hang the
//! sidecar; one function does it, so both get the same limits and the same output.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// Bytes of a command's output kept for the log.
const OUTPUT_LIMIT: usize = 16 * 1024;

/// What an external command run produced.
#[derive(Debug, Clone)]
pub struct CommandOutcome {
    pub success: bool,
    /// Exit status, or the reason it has none (timeout, spawn failure).
    pub status: String,
    pub output: String,
}

/// Runs a command without a shell, with a timeout, keeping the start of its output.
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
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            return CommandOutcome {
                success: false,
                status: format!("cannot start `{program}`: {e}"),
                output: String::new(),
            }
        }
    };
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let collect = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(OUTPUT_LIMIT as u64).read_to_end(&mut out).await;
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(OUTPUT_LIMIT as u64).read_to_end(&mut err).await;
        }
        let status = child.wait().await;
        (status, out, err)
    };
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => CommandOutcome {
            success: false,
            status: format!("timed out after {timeout:?} and was killed"),
            output: String::new(),
        },
        Ok((status, out, err)) => {
            let mut output = String::from_utf8_lossy(&out).trim_end().to_string();
            let err = String::from_utf8_lossy(&err);
            if !err.trim().is_empty() {
                if !output.is_empty() {
                    output.push('\n');
                }
                output.push_str(err.trim_end());
            }
            match status {
                Ok(status) => CommandOutcome {
                    success: status.success(),
                    status: status.to_string(),
                    output,
                },
                Err(e) => CommandOutcome {
                    success: false,
                    status: format!("wait failed: {e}"),
                    output,
                },
            }
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

    #[test]
    fn output_folds_into_one_line() {
        assert_eq!(one_line("a\n\n  b  \nc\n"), "a | b | c");
        assert_eq!(one_line(""), "");
    }
}
