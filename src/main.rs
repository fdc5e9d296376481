#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use reconfig::cli::{Cli, Command};
use reconfig::{inject, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log.verbose, cli.log.quiet, cli.log.log_file.as_deref()) {
        eprintln!("reconfig: error: cannot open the log file: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Inject(args) => inject::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            tracing::error!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
