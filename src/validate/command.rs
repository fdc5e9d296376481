//! The external validator (`--validate-cmd`): a program run on the folder holding the
//! candidate files, whose exit status is the verdict.
//!
//! The folder goes into the command as `{dir}` (verbatim: one argument, since no shell splits
//! it) or `{dir:q}` (quoted for a shell). A user's own `sh -c '… {dir}'` would hand the folder
//! name to a shell unquoted, and a folder name can hold `$(…)`; `{dir:q}` is the safe form there.

use std::path::Path;
use std::time::Duration;

use tracing::info;

use super::invalid::Invalid;
use crate::process::{one_line, run_command};

/// An external validator: `promtool check config {dir}/prometheus.yml`.
#[derive(Debug, Clone)]
pub struct ValidateCommand {
    argv: Vec<String>,
    pub timeout: Duration,
}

impl ValidateCommand {
    /// Splits like a shell would (quotes, escapes) but runs no shell.
    pub fn parse(line: &str, timeout: Duration) -> Result<Self, String> {
        let argv = shell_words::split(line).map_err(|e| format!("cannot split `{line}`: {e}"))?;
        if argv.is_empty() {
            return Err("the validate command is empty".into());
        }
        Ok(ValidateCommand { argv, timeout })
    }

    /// The command as written, `{dir}` unexpanded: how messages name it whatever folder it ran on.
    pub fn template(&self) -> String {
        self.argv.join(" ")
    }

    /// The argv with `{dir}` replaced by the folder that holds the candidate files, and
    /// `{dir:q}` by the same, quoted for a shell.
    pub fn argv(&self, dir: &Path) -> Vec<String> {
        let dir = dir.display().to_string();
        let quoted = shell_words::quote(&dir);
        self.argv
            .iter()
            .map(|a| a.replace("{dir:q}", &quoted).replace("{dir}", &dir))
            .collect()
    }

    /// The file names the command reads as `{dir}/NAME` (a name of `[-._a-zA-Z0-9]`, the
    /// characters of a ConfigMap key), in order, without repeats.
    pub fn files_named(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for arg in &self.argv {
            for (at, _) in arg.match_indices("{dir}/") {
                let rest = &arg[at + "{dir}/".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                    .unwrap_or(rest.len());
                let name = &rest[..end];
                if !name.is_empty() && !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
        names
    }

    /// Runs the validator on `dir`: `None` when it exits 0, otherwise the command and its
    /// status, with its output (folded to one line; it may quote values) as the detail.
    pub async fn verdict(&self, dir: &Path) -> Option<Invalid> {
        self.judge(dir, true).await
    }

    /// The same verdict, but a passing validator's output is not logged: it may quote values
    /// (a Secret's) that the caller must not print.
    pub async fn verdict_unlogged(&self, dir: &Path) -> Option<Invalid> {
        self.judge(dir, false).await
    }

    async fn judge(&self, dir: &Path, log_output: bool) -> Option<Invalid> {
        let argv = self.argv(dir);
        let outcome = run_command(&argv, self.timeout).await;
        let output = one_line(&outcome.output);
        if outcome.success {
            if log_output {
                info!(output = %output, "validator passed");
            } else {
                info!("validator passed");
            }
            return None;
        }
        Some(Invalid {
            detail: (!output.is_empty()).then_some(output),
            ..Invalid::new(&format!("`{}`", argv.join(" ")), outcome.status)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_verdict_names_the_command_its_status_and_output() {
        let cmd =
            ValidateCommand::parse("sh -c 'echo checked {dir}; exit 3'", Duration::from_secs(5))
                .expect("parse");
        let invalid = cmd.verdict(Path::new("/tmp/x")).await.expect("invalid");
        assert_eq!(invalid.detail.as_deref(), Some("checked /tmp/x"));
        assert!(invalid.reason.contains('3'), "{}", invalid.reason);
        assert_eq!(invalid.file, "`sh -c echo checked /tmp/x; exit 3`");

        let pass = ValidateCommand::parse("true", Duration::from_secs(5)).expect("parse");
        assert!(pass.verdict(Path::new("/tmp/x")).await.is_none());

        let folded = ValidateCommand::parse(
            "sh -c 'echo first; echo second >&2; exit 1'",
            Duration::from_secs(5),
        )
        .expect("parse");
        let invalid = folded.verdict(Path::new("/")).await.expect("invalid");
        assert_eq!(invalid.detail.as_deref(), Some("first | second"));

        assert!(ValidateCommand::parse("unbalanced 'quote", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn files_named_are_the_names_after_dir() {
        let cmd = ValidateCommand::parse(
            "sh -c 'test -f {dir}/a.yaml && grep x {dir}/b_2.conf {dir}/a.yaml; ls {dir}; cat {dir}/*.x'",
            Duration::from_secs(1),
        )
        .expect("parse");
        assert_eq!(cmd.files_named(), vec!["a.yaml", "b_2.conf"]);
        let none = ValidateCommand::parse("promtool check config {dir}", Duration::from_secs(1))
            .expect("parse");
        assert!(none.files_named().is_empty());
        assert!(ValidateCommand::parse("  ", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn dir_q_is_the_folder_quoted_for_a_shell() {
        let cmd = ValidateCommand::parse(
            "sh -c 'check {dir:q}/app.yaml' -- {dir} {dir:q}",
            Duration::from_secs(1),
        )
        .expect("parse");
        let dir = Path::new("/v/it's $(reboot) a dir");
        assert_eq!(
            cmd.argv(dir),
            [
                "sh",
                "-c",
                "check '/v/it'\\''s $(reboot) a dir'/app.yaml",
                "--",
                "/v/it's $(reboot) a dir",
                "'/v/it'\\''s $(reboot) a dir'",
            ]
        );
        // What a shell makes of it: the folder name, as data.
        let plain = Path::new("/v/..2026_01_01/conf");
        assert_eq!(cmd.argv(plain)[2], "check /v/..2026_01_01/conf/app.yaml");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_shell_sees_a_dir_q_folder_as_one_word() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a b; touch pwned #$(touch pwned)");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("app.yaml"), "port: 1\n").expect("write");
        let cmd = ValidateCommand::parse(
            &format!(
                "sh -c 'cd {} && test -f {{dir:q}}/app.yaml'",
                shell_words::quote(&tmp.path().display().to_string())
            ),
            Duration::from_secs(5),
        )
        .expect("parse");
        assert_eq!(cmd.verdict(&dir).await, None);
        assert!(!tmp.path().join("pwned").exists());
    }
}
