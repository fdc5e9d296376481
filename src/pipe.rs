//! Wider pipes for the stream a post-renderer reads and writes.
//!
//! Helm hands a post-renderer the whole render on a pipe and reads the result from another.
//! A Linux pipe holds 64 KiB, so a 5 MiB render (kube-prometheus-stack) crosses each pipe in
//! about 80 turns, each one a wake-up of the other side; Go's side parks its goroutine and
//! waits for its poller every time. Timed through a Go parent that pipes as Helm does
//! (`benches/post_render/main.go`), the turns cost `inject` about 7 of 29 ms on that render.
//! A pipe can be widened from either end, and the width is the pipe's, so the manifest
//! readers widen the pipe they read (`input`), and `inject` the pipe it writes.
//!
//! Widening is an offer, not a need: where it is refused (a lower `fs.pipe-max-size`, a user
//! over `fs.pipe-user-pages-soft`), or the file is not a pipe, nothing changes and nothing is
//! said.

use std::os::fd::AsFd;

/// The width asked for: the largest an unprivileged process gets by default
/// (`/proc/sys/fs/pipe-max-size`). The kernel takes pages only as data fills them.
pub const WIDTH: usize = 1 << 20;

/// Widens `fd` to [`WIDTH`] when it is a pipe narrower than that. (Only a pipe has a width:
/// for anything else the kernel refuses the question.)
pub fn widen(fd: impl AsFd) {
    let fd = fd.as_fd();
    if rustix::pipe::fcntl_getpipe_size(fd).is_ok_and(|width| width < WIDTH) {
        // Refused, the pipe keeps its width; see the module's doc.
        let _ = rustix::pipe::fcntl_setpipe_size(fd, WIDTH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_is_widened_from_either_end() {
        for widen_reader in [true, false] {
            let (reader, writer) = rustix::pipe::pipe().expect("a pipe");
            let before = rustix::pipe::fcntl_getpipe_size(&reader).expect("its width");
            assert!(before < WIDTH, "pipes start at {before} bytes here");
            if widen_reader {
                widen(&reader);
            } else {
                widen(&writer);
            }
            assert_eq!(rustix::pipe::fcntl_getpipe_size(&writer).ok(), Some(WIDTH));
        }
    }

    #[test]
    fn files_that_are_not_pipes_are_left_alone() {
        let file = tempfile::tempfile().expect("a file");
        widen(&file);
        assert!(rustix::pipe::fcntl_getpipe_size(&file).is_err());
    }
}
