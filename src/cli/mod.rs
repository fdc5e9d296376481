//! The edge: the command line's options, and wiring each subcommand to the library.
//!
//! A subcommand's file here holds its clap arguments and a `run` that reads inputs, asks
//! the library for the decision and writes the output. The logic lives in the library
//! modules, so it can be tested and reused without a command line.

pub mod check;
pub mod ci;
pub mod inject;
pub mod plan;
pub mod prune;
pub mod validation;
pub mod watch;

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};
use tracing_subscriber::filter::LevelFilter;

use crate::logging::Style;
use crate::Failure;
use check::CheckArgs;
use inject::InjectArgs;
use plan::PlanArgs;
use prune::PruneArgs;
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
/// `inject --versioned` names each ConfigMap and Secret after its content, so every pod
/// pins its config; `prune` deletes the old versions nothing uses any more.
///
/// Exit codes: 0 success, 1 invalid input, 2 usage or internal error, 3 `plan` found a change
/// over its limits (--max-restarts, --fail-on-restart).
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
    /// CI dry run: which workloads a change restarts, and why (two renders, or one and the cluster).
    Plan(PlanArgs),
    /// Delete versions of versioned config (`inject --versioned`) that nothing uses any more.
    Prune(PruneArgs),
}

impl Cli {
    /// How diagnostics look: the sidecar logs as a service (timestamps, info and up), the
    /// one-shot commands plainly (warnings and up), either as JSON lines on request.
    pub fn log_style(&self) -> (Style, LevelFilter) {
        let (text, base) = match self.command {
            Command::Watch(_) => (Style::Service, LevelFilter::INFO),
            Command::Inject(_) | Command::Check(_) | Command::Plan(_) | Command::Prune(_) => {
                (Style::Plain, LevelFilter::WARN)
            }
        };
        match self.log.log_format {
            LogFormat::Text => (text, base),
            LogFormat::Json => (Style::Json, base),
        }
    }
}

impl Command {
    /// Runs the subcommand; the error decides the exit code.
    pub fn run(self) -> Result<(), Failure> {
        match self {
            Command::Inject(args) => inject::run(args),
            Command::Watch(args) => watch::run(*args),
            Command::Check(args) => check::run(args),
            Command::Plan(args) => plan::run(args),
            Command::Prune(args) => prune::run(args),
        }
    }
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
