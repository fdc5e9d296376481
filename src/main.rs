//! The `reconfig` binary: parse the command line, start logging, run, exit with the code the
//! failure names. Everything else lives in the library (`reconfig::cli` wires it).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use reconfig::cli::Cli;
use reconfig::logging;

/// mimalloc rather than glibc's allocator (cargo feature `mimalloc`, on by default): the YAML
/// and JSON trees `admit` builds for every review are many small allocations, freed at once,
/// and it serves them in about a quarter less CPU. Transparent huge pages are off for it
/// (`no_thp`), which would otherwise add megabytes to an idle webhook's RSS.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (style, base) = cli.log_style();
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
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            tracing::error!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
