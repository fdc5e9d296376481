//! The edge: the command line's options, and wiring each subcommand to the library.
//!
//! A subcommand's file here holds its clap arguments and a `run` that reads inputs, asks
//! the library for the decision and writes the output. The logic lives in the library
//! modules, so it can be tested and reused without a command line.

pub mod admit;
pub mod check;
pub mod ci;
pub mod copy_binary;
pub mod generate;
pub mod inject;
pub mod plan;
pub mod prune;
pub mod validation;
pub mod watch;

use std::path::PathBuf;

use clap::{ArgAction, CommandFactory as _, Parser, Subcommand};
use tracing_subscriber::filter::LevelFilter;

use crate::logging::Style;
use crate::Failure;
use admit::AdmitArgs;
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
/// `admit` is a validating admission webhook: the policy `check --policy` and
/// `watch --policy` enforce, enforced when ConfigMaps and Secrets are applied.
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
// The diagnostics flags are global; where a subcommand has more to say about one, it gets
// its own copy of the flag with its own words (see `in_own_words`).
#[command(mut_subcommand("inject", |c| in_own_words(c, "log_file",
    "Also append diagnostics to this file. Helm 3 and 4 hide a successful post-render's \
     warnings, and Helm 4 its errors too: this is how to see them")))]
#[command(mut_subcommand("inject", |c| in_own_words(c, "verbose",
    "More output: -v says what was annotated and why, -vv everything, the libraries' own logs \
     included")))]
#[command(mut_subcommand("watch", |c| in_own_words(c, "log_file",
    "Also append the sidecar's log to this file (stderr gets it too, for kubectl logs)")))]
#[command(mut_subcommand("watch", |c| in_own_words(c, "verbose",
    "More output: -v adds debug detail (each change's latency trace, how a process was \
     signalled), -vv everything, the libraries' own logs included")))]
#[command(mut_subcommand("check", |c| in_own_words(c, "verbose",
    "More output: -v also reports what passed (a passing validator's output: ConfigMaps \
     only), -vv everything, the libraries' own logs included")))]
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
    /// Validating admission webhook: the policy enforced when ConfigMaps and Secrets are applied.
    Admit(Box<AdmitArgs>),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(generate::CompletionsArgs),
    /// Write man pages, one per subcommand, to a folder.
    Man(generate::ManArgs),
    /// Copy this binary to a path (an init container's `cp`: the image has none).
    CopyBinary(copy_binary::CopyBinaryArgs),
}

impl Cli {
    /// How diagnostics look: the sidecar logs as a service (timestamps, info and up), the
    /// one-shot commands plainly (warnings and up), either as JSON lines on request.
    pub fn log_style(&self) -> (Style, LevelFilter) {
        let (text, base) = match self.command {
            Command::Watch(_) | Command::Admit(_) => (Style::Service, LevelFilter::INFO),
            Command::Inject(_) | Command::Check(_) | Command::Plan(_) | Command::Prune(_) => {
                (Style::Plain, LevelFilter::WARN)
            }
            Command::Completions(_) | Command::Man(_) | Command::CopyBinary(_) => {
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
            Command::Admit(args) => admit::run(*args),
            Command::Completions(args) => generate::completions(args, Cli::command()),
            Command::Man(args) => generate::man(args, Cli::command()),
            Command::CopyBinary(args) => copy_binary::run(args),
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

/// Gives `cmd` its own copy of the global diagnostics flag `id`, with `help` as its words.
///
/// clap propagates a global flag only to subcommands that lack one of that id, and still
/// collects the value into `LogArgs`, so parsing is unchanged.
fn in_own_words(cmd: clap::Command, id: &str, help: &'static str) -> clap::Command {
    use clap::Args as _;
    let flags = LogArgs::augment_args(clap::Command::new("diagnostics"));
    let flag = flags.get_arguments().find(|a| a.get_id() == id).cloned();
    match flag {
        Some(flag) => cmd.arg(flag.help(help).long_help(None).help_heading("Diagnostics")),
        None => cmd,
    }
}

/// Where diagnostics go and how many there are.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Also append diagnostics to this file (stderr gets them too).
    #[arg(long, global = true, env = "RECONFIG_LOG_FILE", value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// More output: -v adds detail, -vv everything, the libraries' own logs included.
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors, no warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Log as text or JSON lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "RECONFIG_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// Every subcommand, depth first, with its path (`reconfig check`).
    fn all_commands(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.clone(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            all_commands(sub, format!("{path} {}", sub.get_name()), out);
        }
    }

    /// Examples (the indented lines of a subcommand's closing text) must survive clap's
    /// re-wrapping at every width help is shown at (the terminal's, capped at 100, and 100
    /// when piped), so that they can be copied and pasted: never broken mid-command.
    #[test]
    fn examples_are_printed_verbatim_at_every_width() {
        let mut commands = Vec::new();
        let mut cli = Cli::command();
        cli.build(); // global flags reach the subcommands
        all_commands(&cli, "reconfig".into(), &mut commands);
        for width in [80, 100] {
            for (path, cmd) in &commands {
                let mut cmd = cmd.clone().term_width(width);
                let short = cmd.get_after_help().map(|s| s.to_string());
                let long = cmd.get_after_long_help().map(|s| s.to_string());
                let long = long.or_else(|| short.clone());
                for (text, rendered) in [
                    (long, cmd.render_long_help().to_string()),
                    (short, cmd.render_help().to_string()),
                ] {
                    let Some(text) = text else { continue };
                    let rendered: Vec<&str> = rendered.lines().map(str::trim_end).collect();
                    for line in text.lines().filter(|l| l.starts_with("  ")) {
                        assert!(
                            rendered.contains(&line.trim_end()),
                            "`{path} --help` at {width} columns breaks the example line\n{line}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn shared_flags_speak_for_their_subcommand() {
        let help = |sub: &str| {
            let mut cmd = Cli::command().term_width(1000);
            cmd.build();
            let sub = cmd.find_subcommand_mut(sub).expect("subcommand").clone();
            // The flags' words only: an example may rightly show another command (plan's
            // recipe renders through the post-renderer).
            sub.after_help("")
                .after_long_help("")
                .term_width(1000)
                .render_long_help()
                .to_string()
        };
        let (inject, plan, watch, check) =
            (help("inject"), help("plan"), help("watch"), help("check"));
        for (name, text) in [("plan", &plan), ("watch", &watch), ("check", &check)] {
            assert!(
                !text.contains("post-render"),
                "{name}'s help talks of post-renderers:\n{text}"
            );
            assert!(
                !text.contains("inject:"),
                "{name}'s help speaks for inject:\n{text}"
            );
        }
        assert!(!inject.contains("in plan"), "{inject}");
        assert!(!watch.contains("Helm"), "{watch}");
        assert!(!check.contains("Helm 4"), "{check}");
        assert!(inject.contains("Helm 3 and 4 hide"), "{inject}");
        assert!(plan.contains("Count Jobs too"), "{plan}");
    }

    /// `reconfig inject --log-file F` (a subcommand's own copy of the global flag) and
    /// `reconfig --log-file F inject` both reach `LogArgs`.
    #[test]
    fn own_words_flags_still_parse_as_global_ones() {
        let cases: [&[&str]; 3] = [
            &["reconfig", "inject", "--log-file", "f.log", "-vv"],
            &["reconfig", "--log-file", "f.log", "-vv", "inject"],
            &[
                "reconfig",
                "--log-file",
                "f.log",
                "watch",
                "--dir",
                "d",
                "-vv",
            ],
        ];
        for args in cases {
            let cli = Cli::try_parse_from(args).expect("parses");
            assert_eq!(
                cli.log.log_file.as_deref(),
                Some(std::path::Path::new("f.log")),
                "{args:?}"
            );
            assert_eq!(cli.log.verbose, 2, "{args:?}");
        }
        Cli::command().debug_assert();
    }
}
