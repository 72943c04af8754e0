// kreplay: a readiness wait on any file descriptor, so that a task can drive an io_uring
// ring of its own (whose fd is pollable) from inside the executor.

use std::{io, os::unix::io::RawFd};

/// Waits until `fd` is readable (`POLLIN`), with a one-shot poll on the executor's ring.
///
/// The caller keeps `fd` open until this resolves or is dropped; dropping the future
/// cancels the poll.
pub async fn readable(fd: RawFd) -> io::Result<()> {
    let source = crate::executor().reactor().poll_read_ready(fd);
    source.collect_rw().await.map(|_| ())
}
