//! `copy-binary`: the image is `FROM scratch` (no shell, no `cp`), so an init container that
//! puts reconfig into an app's image (to run a validator that lives there, such as
//! `promtool`) asks the binary to copy itself, as Tekton's entrypoint does.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::Failure;

/// Copy this reconfig binary to a path, for an init container (the image has no `cp`).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  # An init container of the reconfig image fills an emptyDir mounted at
  # /reconfig-bin; a sidecar from the app's image (with promtool) runs the copy
  command: [\"/reconfig\", \"copy-binary\", \"/reconfig-bin/reconfig\"]")]
pub struct CopyBinaryArgs {
    /// Where to write the copy: a file path, or an existing folder (the copy is named
    /// `reconfig` there). Written to a temporary name first and renamed, mode 0755.
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
}

pub fn run(args: CopyBinaryArgs) -> Result<(), Failure> {
    let source = this_binary().map_err(Failure::Internal)?;
    let dest = if args.dest.is_dir() {
        args.dest.join("reconfig")
    } else {
        args.dest.clone()
    };
    copy(&source, &dest)
        .with_context(|| format!("copying {} to {}", source.display(), dest.display()))
        .map_err(Failure::Internal)
}

/// This binary: /proc/self/exe, or where there is no /proc (a bare chroot), argv[0] when it
/// is a path (a container's entrypoint is `/reconfig`).
fn this_binary() -> anyhow::Result<PathBuf> {
    let proc_error = match std::env::current_exe() {
        Ok(path) => return Ok(path),
        Err(e) => e,
    };
    match std::env::args_os().next().map(PathBuf::from) {
        Some(path) if path.components().count() > 1 && path.is_file() => Ok(path),
        _ => Err(anyhow::anyhow!(
            "finding this binary: {proc_error}, and it was not started by its path"
        )),
    }
}

/// Copies `source` to a fresh temporary file beside `dest`, then renames it over `dest`, so a
/// reader never sees half a binary and a link at `dest` is replaced, never followed.
fn copy(source: &Path, dest: &Path) -> std::io::Result<()> {
    let folder = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let bytes = std::fs::read(source)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".reconfig-copy-")
        .tempfile_in(folder)?;
    temp.write_all(&bytes)?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))?;
    temp.as_file().sync_all()?;
    temp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_whole_executable_and_replaces_a_link_instead_of_following_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("src");
        std::fs::write(&source, b"\x7fELF binary").expect("write");
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"keep").expect("write");
        let dest = dir.path().join("dest");
        std::os::unix::fs::symlink(&outside, &dest).expect("link");

        copy(&source, &dest).expect("copy");
        assert_eq!(std::fs::read(&dest).expect("read"), b"\x7fELF binary");
        assert_eq!(std::fs::read(&outside).expect("read"), b"keep");
        let mode = std::fs::symlink_metadata(&dest).expect("stat");
        assert!(mode.is_file());
        assert_eq!(mode.permissions().mode() & 0o777, 0o755);
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(left.len(), 3, "no temporary file left behind");
    }
}
