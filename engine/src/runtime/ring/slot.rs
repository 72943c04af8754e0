//! One connection of the ring pool: its socket, the request it runs and its buffers.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use super::super::exchange::{keep_error_body, Exchange, ERROR_BODY_KEEP};
use super::super::CancelReason;
use super::tls::TlsSession;
use super::uring::{self, Op};
use crate::error_class::is_kperf_failure_status;
use crate::http1::{RecvBuffer, ResponseError, ResponseHead, ResponseParser};

/// Idle time after which a connection is checked for a close before it is reused.
const IDLE_CHECK_AFTER: std::time::Duration = std::time::Duration::from_micros(100);

/// The request a slot is running.
#[derive(Debug, Clone, Copy)]
pub(super) struct Job {
    pub(super) exchange: Exchange,
    /// When the slot took it (timeouts count from here, connect included).
    pub(super) started: Instant,
    /// Already sent once more on a fresh connection (see `RingPool::retry_on_fresh`).
    pub(super) retried: bool,
    /// Times sent again under `--retries client-go`.
    pub(super) attempts: u8,
    /// Times sent again after an HTTP/2 refusal (REFUSED_STREAM, graceful GOAWAY).
    pub(super) refusals: u8,
    /// Its send and lag are recorded (HTTP/2: at the first attempt whose bytes reached the
    /// kernel; a request refused before that is recorded at its resend).
    pub(super) recorded: bool,
}

impl Job {
    /// A request taken from the queue at `now`, not sent yet.
    pub(super) fn new(exchange: Exchange, now: Instant) -> Job {
        Job {
            exchange,
            started: now,
            retried: false,
            attempts: 0,
            refusals: 0,
            recorded: false,
        }
    }

    /// A request for the first time: its send is recorded (a resend keeps the first one's
    /// instant and lag, so latency covers the retries, as client-go's does).
    pub(super) fn first_send(&self) -> bool {
        !self.retried && self.attempts == 0
    }
}

/// A request answered with a retryable status, waiting for its `Retry-After`
/// (`--retries client-go`). Its key stays held: later requests of its object wait behind it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Parked {
    pub(super) job: Job,
    /// When it goes again.
    pub(super) due: Instant,
    /// The answer it got, its outcome if the run stops before it goes again.
    pub(super) status: u16,
}

/// One pool connection and its buffers.
pub(super) struct Slot {
    pub(super) fd: Option<OwnedFd>,
    /// Whether the ring's fixed file of this slot's index is `fd`.
    pub(super) fixed: bool,
    /// Bumped on each new connection, so a stale completion is recognised.
    pub(super) generation: u32,
    /// The operation in flight, if any.
    pub(super) op: Option<Op>,
    pub(super) job: Option<Job>,
    pub(super) cancel: Option<CancelReason>,
    /// The request, when it cannot be written at once from `RingPool::encoded` (it waits
    /// for a connect, or the socket was full); grown on first use.
    pub(super) request: Vec<u8>,
    /// Bytes of the request written.
    pub(super) written: usize,
    pub(super) input: RecvBuffer,
    pub(super) parser: ResponseParser,
    pub(super) head: Option<ResponseHead>,
    /// Bytes of the current response seen (tells `EOF` from `unexpected EOF`).
    pub(super) received_any: bool,
    pub(super) body_bytes: u64,
    pub(super) error_body: Vec<u8>,
    /// The connection has served a response (a failure on it may be a close while idle).
    pub(super) reused: bool,
    /// TLS state of an `https://` connection.
    pub(super) tls: Option<Box<TlsSession>>,
    /// The TLS handshake is under way (the request waits in `request`).
    pub(super) handshaking: bool,
    /// Encrypted bytes to send (TLS): the request or handshake records; `written` counts
    /// into it.
    pub(super) cipher: Vec<u8>,
    /// When its last response ended (checked for a close before the connection is reused).
    pub(super) idle_since: Instant,
}

impl Slot {
    pub(super) fn new(fd: Option<OwnedFd>) -> Slot {
        Slot {
            fd,
            fixed: false,
            generation: 0,
            op: None,
            job: None,
            cancel: None,
            request: Vec::new(),
            written: 0,
            input: RecvBuffer::default(),
            parser: ResponseParser::default(),
            head: None,
            received_any: false,
            body_bytes: 0,
            error_body: Vec::with_capacity(ERROR_BODY_KEEP),
            reused: false,
            tls: None,
            handshaking: false,
            cipher: Vec::new(),
            idle_since: Instant::now(),
        }
    }

    /// Whether its idle connection must not take a request (closed, reset, or bytes nobody
    /// asked for). Checked only after `IDLE_CHECK_AFTER` idle: a connection reused at once
    /// (an unpaced burst) skips the system call, and a close that races the reuse costs a
    /// retry on a fresh connection instead (as it does in Go, whose read loop races too).
    pub(super) fn unusable_while_idle(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.idle_since) >= IDLE_CHECK_AFTER
            && crate::transport::idle_socket_unusable(self.raw_fd())
    }

    /// Takes `job`, its request not written yet.
    pub(super) fn take_job(&mut self, job: Job) {
        self.job = Some(job);
        self.written = 0;
        self.head = None;
        // Bytes already here (beyond the last response) are part of no answer of its.
        self.received_any = self.input.has_unparsed();
        self.body_bytes = 0;
        self.error_body.clear();
    }

    /// The bytes the connection is writing: ciphertext over TLS, else the request.
    pub(super) fn outgoing(&self) -> &[u8] {
        if self.tls.is_some() {
            &self.cipher
        } else {
            &self.request
        }
    }

    pub(super) fn raw_fd(&self) -> i32 {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    pub(super) fn tag(&self, index: usize, op: Op) -> u64 {
        uring::tag(index as u32, self.generation, op)
    }

    /// Parses what the buffer holds of the current response: its head once the response is
    /// complete, `None` while more bytes are needed. Body bytes are counted, and a failed
    /// response's kept.
    pub(super) fn parse(&mut self) -> Result<Option<ResponseHead>, ResponseError> {
        if self.head.is_none() {
            self.head = self.parser.parse_head(&mut self.input)?;
        }
        let Some(head) = self.head else {
            return Ok(None);
        };
        let failed = is_kperf_failure_status(head.status);
        let (bytes, keep) = (&mut self.body_bytes, &mut self.error_body);
        let done = self.parser.parse_body(&mut self.input, |b| {
            *bytes += b.len() as u64;
            if failed {
                keep_error_body(keep, b);
            }
        })?;
        Ok(done.map(|_| head))
    }
}
