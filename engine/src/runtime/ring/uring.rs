//! The pool's own io_uring ring: operations tagged with their connection, and the two
//! syscalls the pool makes itself (a socket for a connect, a non-blocking send).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types, IoUring};

/// What an operation in the ring does for its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Connect = 1,
    Send = 2,
    Recv = 3,
    /// Cancels the connection's operation in flight; its completion carries nothing.
    Cancel = 4,
}

/// A completion: which connection (slot and its connection generation), which operation,
/// and the kernel's result (bytes, or a negated errno).
#[derive(Debug, Clone, Copy)]
pub(super) struct Completion {
    pub slot: u32,
    pub generation: u32,
    pub op: Option<Op>,
    pub result: i32,
}

/// `slot` in the high 32 bits, the generation's low 24 bits, the operation in the low 8.
pub(super) fn tag(slot: u32, generation: u32, op: Op) -> u64 {
    (u64::from(slot) << 32) | (u64::from(generation & 0x00ff_ffff) << 8) | op as u64
}

fn untag(user_data: u64, result: i32) -> Completion {
    let op = match user_data & 0xff {
        1 => Some(Op::Connect),
        2 => Some(Op::Send),
        3 => Some(Op::Recv),
        4 => Some(Op::Cancel),
        _ => None,
    };
    Completion {
        slot: (user_data >> 32) as u32,
        generation: ((user_data >> 8) & 0x00ff_ffff) as u32,
        op,
        result,
    }
}

/// Whether a connection's generation matches a completion's (24 bits are compared).
pub(super) fn same_generation(generation: u32, completion: &Completion) -> bool {
    generation & 0x00ff_ffff == completion.generation
}

/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19): a receive is queued right after its request
/// left, so its response is rarely there yet; the kernel arms the socket's poll at once
/// instead of first trying a receive that fails with `EAGAIN`.
const RECV_POLL_FIRST: u16 = 1;

/// An io_uring ring owned by one core.
pub(super) struct Ring {
    ring: IoUring,
    /// `ioprio` of receives: [`RECV_POLL_FIRST`] on kernels that have it.
    recv_ioprio: u16,
    /// Whether a wait can carry a timeout (`IORING_FEAT_EXT_ARG`, Linux 5.11).
    timed_wait: bool,
    /// Whether the ring has a table of fixed files, one entry per connection.
    fixed_files: bool,
}

impl Ring {
    /// A ring for `connections` connections (each has at most one operation and one
    /// cancellation queued at a time).
    pub(super) fn new(connections: usize) -> io::Result<Ring> {
        let entries = (2 * connections + 16).next_power_of_two().min(4096) as u32;
        // Completions are delivered at this thread's next kernel entry, which the core makes
        // for every send anyway, instead of interrupting it (COOP_TASKRUN); older kernels
        // get a plain ring. DEFER_TASKRUN was tried: waiting on its fd through glommio, a
        // 200k-request probe hung (its completions wait for an `io_uring_enter` of ours).
        // COOP_TASKRUN came in 5.19 with POLL_FIRST: a kernel that takes one has the other.
        let (ring, recv_ioprio) = match IoUring::builder().setup_coop_taskrun().build(entries) {
            Ok(ring) => (ring, RECV_POLL_FIRST),
            Err(_) => (IoUring::new(entries)?, 0),
        };
        let timed_wait = ring.params().is_feature_ext_arg();
        // Receives name their socket by its entry in this table, which spares the kernel a
        // file lookup and reference per operation (sparse tables: Linux 5.19).
        let fixed_files = u32::try_from(connections)
            .is_ok_and(|n| ring.submitter().register_files_sparse(n).is_ok());
        Ok(Ring {
            ring,
            recv_ioprio,
            timed_wait,
            fixed_files,
        })
    }

    /// The ring's descriptor: readable when completions wait.
    pub(super) fn fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Queues `entry`, submitting first if the submission queue is full.
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY (for the callers' entries): every buffer and address an entry points to is
        // owned by the pool's slots, which never move or free them while the operation is in
        // flight (see `RingPool`'s invariants and its `Drop`).
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.ring.submit()?;
            unsafe { self.ring.submission().push(&entry) }
                .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        }
        Ok(())
    }

    /// Makes fixed file `index` name `fd`; returns whether it does (never, without a table).
    pub(super) fn register_file(&mut self, index: usize, fd: RawFd) -> bool {
        self.update_file(index, fd)
    }

    /// Empties fixed file `index`, so that the table no longer holds its socket open once
    /// the descriptor closes; returns whether it did.
    pub(super) fn unregister_file(&mut self, index: usize) -> bool {
        self.update_file(index, -1)
    }

    fn update_file(&mut self, index: usize, fd: RawFd) -> bool {
        let Ok(index) = u32::try_from(index) else {
            return false;
        };
        if !self.fixed_files {
            return false;
        }
        match self.ring.submitter().register_files_update(index, &[fd]) {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!("io_uring fixed file {index}: {e}");
                false
            }
        }
    }

    /// Queues a receive of up to `len` bytes at `buf` from socket `fd`, named by fixed file
    /// `fixed` when it has one.
    pub(super) fn recv(
        &mut self,
        fd: RawFd,
        fixed: Option<u32>,
        buf: *mut u8,
        len: usize,
        tag: u64,
    ) -> io::Result<()> {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let entry = match fixed {
            Some(index) => opcode::Recv::new(types::Fixed(index), buf, len),
            None => opcode::Recv::new(types::Fd(fd), buf, len),
        };
        self.push(entry.ioprio(self.recv_ioprio).build().user_data(tag))
    }

    /// Queues a send of `len` bytes at `buf` (the part a non-blocking send left).
    pub(super) fn send(
        &mut self,
        fd: RawFd,
        buf: *const u8,
        len: usize,
        tag: u64,
    ) -> io::Result<()> {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.push(
            opcode::Send::new(types::Fd(fd), buf, len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(tag),
        )
    }

    /// Queues a connect of `fd` to `addr`.
    pub(super) fn connect(
        &mut self,
        fd: RawFd,
        addr: &socket2::SockAddr,
        tag: u64,
    ) -> io::Result<()> {
        self.push(
            opcode::Connect::new(types::Fd(fd), addr.as_ptr().cast(), addr.len())
                .build()
                .user_data(tag),
        )
    }

    /// Queues the cancellation of the operation tagged `target`.
    pub(super) fn cancel(&mut self, target: u64, tag: u64) -> io::Result<()> {
        self.push(opcode::AsyncCancel::new(target).build().user_data(tag))
    }

    /// Submits what is queued, if anything (one `io_uring_enter`).
    pub(super) fn submit(&mut self) -> io::Result<()> {
        if self.ring.submission().is_empty() {
            return Ok(());
        }
        self.ring.submit().map(|_| ())
    }

    /// Submits what is queued and blocks the thread until a completion is posted or `limit`
    /// has passed (one `io_uring_enter`). Returns whether completions wait; `false` also
    /// when the kernel cannot time a wait or the wait was interrupted.
    pub(super) fn wait(&mut self, limit: std::time::Duration) -> bool {
        if !self.timed_wait {
            return false;
        }
        let ts = types::Timespec::from(limit);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            // ETIME: the limit passed; EINTR: a signal; EBUSY: the completion backlog is
            // full (reaping makes room). Other errors show again at the next submit.
            Err(e) => tracing::trace!("io_uring wait: {e}"),
        }
        self.has_completions()
    }

    /// Whether completions wait.
    pub(super) fn has_completions(&mut self) -> bool {
        !self.ring.completion().is_empty()
    }

    /// How many completions wait.
    pub(super) fn completions_ready(&mut self) -> usize {
        self.ring.completion().len()
    }

    /// The next completion, if any.
    pub(super) fn next_completion(&mut self) -> Option<Completion> {
        self.ring
            .completion()
            .next()
            .map(|c| untag(c.user_data(), c.result()))
    }
}

/// A non-blocking TCP socket for `addr`, with TCP_NODELAY, not yet connected.
pub(super) fn open_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(*addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    Ok(socket.into())
}

/// One non-blocking `send`: the bytes written, `Ok(0)` when the socket buffer is full.
pub(super) fn send_now(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `bytes` is a valid slice for the duration of the call.
        let n = unsafe {
            libc::send(
                fd,
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        for (slot, generation, op) in [
            (0, 0, Op::Connect),
            (7, 1, Op::Send),
            (u32::MAX, 0x00ff_ffff, Op::Recv),
            (3, 0x0100_0002, Op::Cancel),
        ] {
            let c = untag(tag(slot, generation, op), -5);
            assert_eq!(c.slot, slot);
            assert!(same_generation(generation, &c));
            assert!(!same_generation(generation.wrapping_add(1), &c));
            assert_eq!(c.op, Some(op));
            assert_eq!(c.result, -5);
        }
        assert_eq!(untag(0, 0).op, None);
    }

    #[test]
    fn fixed_files_receive_and_let_go_of_their_sockets() {
        use std::io::{Read, Write};
        use std::time::Duration;

        let mut ring = Ring::new(2).expect("io_uring");
        if !ring.fixed_files || !ring.timed_wait {
            eprintln!("skipped: this kernel has no sparse fixed-file table or timed wait");
            return;
        }
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(ring.register_file(1, ours.as_raw_fd()));
        // A receive names the socket by its entry.
        let mut buf = [0u8; 8];
        ring.recv(-1, Some(1), buf.as_mut_ptr(), buf.len(), 9)
            .unwrap();
        theirs.write_all(b"ok").unwrap();
        assert!(ring.wait(Duration::from_secs(10)));
        let c = ring.next_completion().expect("the receive completed");
        assert_eq!((c.result, &buf[..2]), (2, &b"ok"[..]));
        // While the table holds the socket, closing the descriptor does not end it...
        let (held, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(ring.register_file(0, held.as_raw_fd()));
        drop(held);
        peer.set_nonblocking(true).unwrap();
        let mut one = [0u8; 1];
        let still_open = peer.read(&mut one).unwrap_err();
        assert_eq!(still_open.kind(), std::io::ErrorKind::WouldBlock);
        // ...until the entry is emptied.
        assert!(ring.unregister_file(0));
        peer.set_nonblocking(false).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(peer.read(&mut one).unwrap(), 0, "end of stream");
        assert!(ring.unregister_file(1));
        drop(ours);
        theirs
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(theirs.read(&mut one).unwrap(), 0, "end of stream");
    }

    #[test]
    fn a_wait_ends_with_a_completion_or_at_its_limit() {
        use std::io::Write;
        use std::time::{Duration, Instant};

        let mut ring = Ring::new(4).expect("io_uring");
        if !ring.timed_wait {
            eprintln!("skipped: this kernel cannot time an io_uring wait");
            return;
        }
        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut buf = [0u8; 16];
        ring.recv(theirs.as_raw_fd(), None, buf.as_mut_ptr(), buf.len(), 7)
            .unwrap();
        let before = Instant::now();
        // Nothing to receive: the wait ends at its limit, with nothing to reap.
        assert!(!ring.wait(Duration::from_millis(20)));
        assert!(before.elapsed() >= Duration::from_millis(20));
        assert!(ring.next_completion().is_none());
        ours.write_all(b"hello").unwrap();
        assert!(ring.wait(Duration::from_secs(10)));
        let c = ring.next_completion().expect("the receive completed");
        assert_eq!((c.result, &buf[..5]), (5, &b"hello"[..]));
    }
}
