//! The command line: global options and the subcommands.

pub mod watch;

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};

use crate::check::CheckArgs;
use crate::inject::InjectArgs;
use crate::plan::PlanArgs;
use crate::validate::{Format, SchemaSpec, ValidateCommand, Validator};
use watch::WatchArgs;

/// Make Kubernetes config changes take effect safely.
///
/// `watch` runs as a sidecar: it validates every change of mounted ConfigMaps
/// and Secrets before it signals, calls or restarts the app, so a bad config
/// never reaches it.
///
/// `check` runs the same validation in CI; `plan` shows which workloads a change restarts.
///
/// `inject` writes a checksum of the ConfigMaps and Secrets each pod template
/// uses into its annotations, so a config change rolls exactly the workloads
/// that read it. Use it as a Helm post-renderer or as a stdin→stdout filter.
///
/// Exit codes: 0 success, 1 invalid input, 2 usage or internal error.
#[derive(Debug, Parser)]
#[command(
    name = "reconfig",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten, next_help_heading = "Diagnostics")]
    pub log: LogArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Annotate pod templates with a checksum of the config they use (Helm post-renderer).
    Inject(InjectArgs),
    /// Sidecar: watch mounted config, validate every change, then reload the app.
    Watch(Box<WatchArgs>),
    /// CI dry run: validate config files, folders or rendered ConfigMaps as `watch` would.
    Check(CheckArgs),
    /// CI dry run: which workloads a config change restarts, and why (compares two renders).
    Plan(PlanArgs),
}

/// How diagnostics are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (with timestamps for `watch`).
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Where diagnostics go and how many there are.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Also append diagnostics to this file.
    ///
    /// Helm 4 swallows a post-renderer's stderr, so this is how to see why it failed.
    #[arg(long, global = true, env = "RECONFIG_LOG_FILE", value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// More output: -v adds detail (inject: what was annotated and why), -vv everything,
    /// the libraries' own logs included.
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors, no warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Log as text or JSON lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "RECONFIG_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// How config files are judged; shared by `watch` and `check`, so CI and the sidecar agree.
#[derive(Debug, clap::Args)]
pub struct ValidationArgs {
    /// Parse every file as this format instead of going by extension.
    #[arg(long, value_name = "yaml|json|toml")]
    pub format: Option<Format>,

    /// Validate a file against a JSON Schema (YAML and TOML too); with `check --manifests`,
    /// configmap/NAME names a whole ConfigMap. Repeatable.
    #[arg(long, value_name = "FILE=SCHEMA.json")]
    pub schema: Vec<SchemaSpec>,

    /// An external validator, run without a shell; exit 0 means valid. `{dir}` in it is the
    /// folder holding the candidate files.
    #[arg(long, value_name = "CMD")]
    pub validate_cmd: Option<String>,

    /// Time limit for --validate-cmd.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub validate_timeout: Duration,
}

impl ValidationArgs {
    /// Builds the validator with `schemas` (the caller may set some aside for other uses).
    pub fn validator(&self, schemas: &[SchemaSpec]) -> anyhow::Result<Validator> {
        let command = self
            .validate_cmd
            .as_deref()
            .map(|c| ValidateCommand::parse(c, self.validate_timeout))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--validate-cmd: {e}"))?;
        Validator::new(self.format, schemas, command)
    }
}

/// Parses `250ms`, `5s`, `3m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 5s, 3m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("`{s}` is not a duration (e.g. 500ms, 5s, 3m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{s}` is out of range"))
}

/// Parses sizes like `1048576`, `512KiB`, `64MiB`, `1GiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let multiplier: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "ki" | "kib" => 1 << 10,
        "m" | "mb" | "mi" | "mib" => 1 << 20,
        "g" | "gb" | "gi" | "gib" => 1 << 30,
        _ => return Err(format!("`{s}` is not a size (e.g. 64MiB)")),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("`{s}` is not a size (e.g. 64MiB)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("2KiB"), Ok(2048));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert!(parse_size("lots").is_err());
    }
}
