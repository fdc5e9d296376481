//! `completions` and `man`: shell completions and man pages, generated from the clap
//! definition itself, so they cover every subcommand and flag the binary has, and a release
//! (`scripts/release.sh`) ships the ones of the binary beside them.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::Failure;

/// Print shell completions for reconfig to stdout.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reconfig completions bash > /etc/bash_completion.d/reconfig
  reconfig completions zsh > \"${fpath[1]}/_reconfig\"
  reconfig completions fish > ~/.config/fish/completions/reconfig.fish")]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Write man pages to a folder: reconfig.1 and one per subcommand (reconfig-watch.1, …).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reconfig man /usr/local/share/man/man1
  reconfig man target/man && man target/man/reconfig-watch.1")]
pub struct ManArgs {
    /// The folder to write the pages into (created if missing; pages there are replaced).
    #[arg(value_name = "DIR")]
    pub out_dir: PathBuf,
}

/// Prints completions for `cli`, the whole command line (passed in: this module is one of its
/// subcommands, so it does not import it).
pub fn completions(args: CompletionsArgs, mut cli: clap::Command) -> Result<(), Failure> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "reconfig", &mut out);
    std::io::stdout()
        .lock()
        .write_all(&out)
        .context("writing the completions to stdout")
        .map_err(Failure::Internal)
}

/// Writes a page for `cli` and one for each of its visible subcommands.
pub fn man(args: ManArgs, cli: clap::Command) -> Result<(), Failure> {
    std::fs::create_dir_all(&args.out_dir)
        .and_then(|()| clap_mangen::generate_to(cli, &args.out_dir))
        .with_context(|| format!("writing man pages to {}", args.out_dir.display()))
        .map_err(Failure::Internal)
}
