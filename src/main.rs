#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use reconfig::cli::{Cli, Command, LogFormat};
use reconfig::logging::{self, Style};
use reconfig::{check, inject, plan};
use tracing_subscriber::filter::LevelFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (style, base) = match (&cli.command, cli.log.log_format) {
        (Command::Inject(_), LogFormat::Text) => (Style::Plain, LevelFilter::WARN),
        (Command::Inject(_), LogFormat::Json) => (Style::Json, LevelFilter::WARN),
        (Command::Check(_), LogFormat::Text) => (Style::Plain, LevelFilter::WARN),
        (Command::Check(_), LogFormat::Json) => (Style::Json, LevelFilter::WARN),
        (Command::Plan(_), LogFormat::Text) => (Style::Plain, LevelFilter::WARN),
        (Command::Plan(_), LogFormat::Json) => (Style::Json, LevelFilter::WARN),
        (Command::Watch(_), LogFormat::Text) => (Style::Service, LevelFilter::INFO),
        (Command::Watch(_), LogFormat::Json) => (Style::Json, LevelFilter::INFO),
    };
    if let Err(e) = logging::init(
        style,
        base,
        cli.log.verbose,
        cli.log.quiet,
        cli.log.log_file.as_deref(),
    ) {
        eprintln!("reconfig: error: cannot open the log file: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Inject(args) => inject::run(args),
        Command::Watch(args) => reconfig::cli::watch::run(*args),
        Command::Check(args) => check::run(args),
        Command::Plan(args) => plan::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            tracing::error!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
