//! What each finished ring operation does to its slot: a connect goes on to the handshake or
//! the send, a send to the rest or the receive, a receive to the parser; a response that ends
//! (or fails) is recorded and its slot freed, its connection kept idle or closed.

use std::os::fd::AsRawFd;
use std::time::Instant;

use super::slot::Parked;
use super::tls::{Plaintext, TlsSession};
use super::uring::{self, Completion, Op};
use super::RingPool;
use crate::http1::ResponseError;
use crate::runtime::exchange::{record_outcome, Exchange};
use crate::runtime::failure::Failure;
use crate::runtime::{CancelReason, CoreCtx};

/// How many completions a reap handles between looks at the clock (for a due instant's
/// wake-up).
const REAP_CHECK_EVERY: usize = 8;

impl RingPool {
    /// Handles the completions that wait; returns how many there were and whether it stopped
    /// early, at `yield_at` (a due instant's wake-up: its requests go first, the rest of the
    /// completions after them).
    pub(super) fn reap(&mut self, ctx: &CoreCtx, yield_at: Option<Instant>) -> (usize, bool) {
        // The completions already posted all arrived before this instant: one clock read
        // ends them all, and is nearer their arrival than a read as each is handled. Any
        // posted while these are handled reads its own. Those a reap that stopped early left
        // keep its read.
        let ready = self.ring.completions_ready();
        let (carried, carried_at) = match self.stamped.take() {
            Some((k, at)) => (k.min(ready), Some(at)),
            None => (0, None),
        };
        let fresh_at = (ready > carried).then(Instant::now);
        let mut n = 0;
        while let Some(c) = self.ring.next_completion() {
            n += 1;
            self.reaped_at = if n <= carried {
                carried_at
            } else if n <= ready {
                fresh_at
            } else {
                None
            };
            self.complete(ctx, c);
            if n % REAP_CHECK_EVERY == 0 && yield_at.is_some_and(|t| Instant::now() >= t) {
                if n < ready {
                    self.stamped = fresh_at.or(carried_at).map(|at| (ready - n, at));
                }
                self.reaped_at = None;
                return (n, true);
            }
        }
        self.reaped_at = None;
        (n, false)
    }

    fn complete(&mut self, ctx: &CoreCtx, c: Completion) {
        let i = c.slot as usize;
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if c.op == Some(Op::Cancel) || !uring::same_generation(slot.generation, &c) {
            return;
        }
        slot.op = None;
        if let Some(reason) = slot.cancel {
            let failure = match reason {
                CancelReason::Timeout => Failure::Timeout,
                CancelReason::Interrupted => Failure::Interrupted,
            };
            return self.fail(ctx, i, failure);
        }
        let os_error = || std::io::Error::from_raw_os_error(-c.result);
        match c.op {
            Some(Op::Connect) if c.result < 0 => self.fail(ctx, i, Failure::Connect(os_error())),
            Some(Op::Connect) => {
                ctx.conns_opened.set(ctx.conns_opened.get() + 1);
                match &self.tls {
                    Some((config, name)) => {
                        match TlsSession::connect(config.clone(), name.clone()) {
                            Ok(session) => {
                                slot.tls = Some(Box::new(session));
                                slot.handshaking = true;
                                self.handshake(ctx, i);
                            }
                            Err(e) => self.fail(ctx, i, Failure::Transport(e)),
                        }
                    }
                    None => self.send(ctx, i),
                }
            }
            Some(Op::Send) if c.result < 0 => {
                self.fail(ctx, i, Failure::Response(os_error().into()))
            }
            Some(Op::Send) => {
                slot.written += c.result as usize;
                if slot.handshaking {
                    self.send_rest(ctx, i);
                } else {
                    self.send(ctx, i);
                }
            }
            Some(Op::Recv) if c.result < 0 => {
                self.fail(ctx, i, Failure::Response(os_error().into()))
            }
            Some(Op::Recv) if slot.handshaking => {
                self.handshake_received(ctx, i, c.result as usize)
            }
            Some(Op::Recv) if slot.tls.is_some() => self.received_tls(ctx, i, c.result as usize),
            Some(Op::Recv) => self.received(ctx, i, c.result as usize),
            Some(Op::Cancel) | None => {}
        }
    }

    /// `n` bytes arrived on slot `i` (0: the server closed the connection).
    fn received(&mut self, ctx: &CoreCtx, i: usize, n: usize) {
        if n == 0 {
            return self.ended(ctx, i);
        }
        let slot = &mut self.slots[i];
        slot.input.filled(n);
        slot.received_any = true;
        if self.parsed(ctx, i) {
            self.recv(ctx, i);
        }
    }

    /// `n` bytes of ciphertext arrived on TLS slot `i` (0: the server closed the
    /// connection): decrypted into its buffer and parsed, as much as rustls lets through
    /// at once (it holds 16 KiB of plaintext).
    fn received_tls(&mut self, ctx: &CoreCtx, i: usize, n: usize) {
        if n == 0 {
            return self.ended(ctx, i);
        }
        let mut from = 0;
        loop {
            let slot = &mut self.slots[i];
            let Some(tls) = slot.tls.as_mut() else { return };
            match tls.read_plaintext(&mut slot.input) {
                Ok(Plaintext::Read(_)) => {
                    slot.received_any = true;
                    if !self.parsed(ctx, i) {
                        return;
                    }
                    continue;
                }
                Ok(Plaintext::Closed) => return self.ended(ctx, i),
                Ok(Plaintext::Drained) if from == n => break,
                Ok(Plaintext::Drained) => {}
                Err(e) => return self.fail(ctx, i, Failure::Response(e.into())),
            }
            if let Err(e) = tls.take_ciphertext(&mut from, n) {
                return self.fail(ctx, i, Failure::Transport(e));
            }
        }
        self.recv(ctx, i);
    }

    /// Parses what slot `i` received; returns whether its response needs more bytes (else
    /// it was finished or failed).
    fn parsed(&mut self, ctx: &CoreCtx, i: usize) -> bool {
        match self.slots[i].parse() {
            Ok(Some(head)) => {
                self.finish(ctx, i, head.status, head.keep_alive, head.retry_after);
                false
            }
            Ok(None) => true,
            Err(e) => {
                self.fail(ctx, i, Failure::Response(e));
                false
            }
        }
    }

    /// The server ended slot `i`'s stream: the response ends with it, or fails.
    fn ended(&mut self, ctx: &CoreCtx, i: usize) {
        let slot = &mut self.slots[i];
        let outcome = match slot.head {
            None if slot.received_any => Err(ResponseError::UnexpectedEof),
            None => Err(ResponseError::Eof),
            Some(head) => slot.parser.end_of_stream().map(|_| head),
        };
        match outcome {
            Ok(head) => self.finish(ctx, i, head.status, false, head.retry_after),
            Err(e) => self.fail(ctx, i, Failure::Response(e)),
        }
    }

    /// Slot `i`'s response is complete: records it and frees the slot.
    fn finish(
        &mut self,
        ctx: &CoreCtx,
        i: usize,
        status: u16,
        keep_alive: bool,
        retry_after: Option<u32>,
    ) {
        let slot = &mut self.slots[i];
        let delay = slot.job.and_then(|j| {
            ctx.shared
                .settings
                .retry_delay(status, retry_after, j.attempts)
        });
        match (delay, slot.job.take()) {
            (Some(delay), Some(mut job)) => {
                // Answered with a retryable status: parked (still busy) until Retry-After.
                job.attempts += 1;
                let mut m = ctx.metrics.borrow_mut();
                m.retries += 1;
                m.add_body_bytes(false, slot.body_bytes);
                drop(m);
                let now = self.reaped_at.unwrap_or_else(Instant::now);
                self.parked.push(Parked {
                    job,
                    due: now + delay,
                    status,
                });
            }
            (_, job) => {
                slot.job = job;
                self.settle_slot(ctx, i, Ok(status));
            }
        }
        let slot = &mut self.slots[i];
        // Bytes beyond the response are nobody's answer: the connection is not reused.
        let unanswered =
            slot.input.has_unparsed() || slot.tls.as_mut().is_some_and(|t| t.has_plaintext());
        if keep_alive && !unanswered {
            slot.reused = true;
            slot.idle_since = self.reaped_at.unwrap_or_else(Instant::now);
            self.idle.push(i);
        } else {
            self.close(i);
        }
    }

    /// Slot `i`'s request failed: records it and closes the connection (no operation of the
    /// slot may be in flight).
    pub(super) fn fail(&mut self, ctx: &CoreCtx, i: usize, failure: Failure) {
        if self.retry_on_fresh(ctx, i, &failure) {
            return;
        }
        self.settle_slot(ctx, i, Err(failure));
        self.close(i);
    }

    /// Records how slot `i`'s request ended and takes it off the slot.
    fn settle_slot(&mut self, ctx: &CoreCtx, i: usize, outcome: Result<u16, Failure>) {
        let slot = &mut self.slots[i];
        if let Some(job) = slot.job.take() {
            // Not before its send, which may have been in this batch.
            let end = match self.reaped_at {
                Some(at) => at.max(job.exchange.sent_at),
                None => Instant::now(),
            };
            ctx.last_end.set(ctx.last_end.get().max(end));
            self.busy -= 1;
            let (bytes, body) = (slot.body_bytes, &slot.error_body);
            settle(ctx, &job.exchange, outcome, bytes, body, end);
        }
    }

    /// Closes slot `i`'s connection and frees the slot for a new one.
    pub(super) fn close(&mut self, i: usize) {
        if std::mem::take(&mut self.slots[i].fixed) && !self.ring.unregister_file(i) {
            // The table still holds the socket: end the connection all the same.
            if let Some(fd) = &self.slots[i].fd {
                // SAFETY: a valid descriptor; shutdown does not close it.
                unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
            }
        }
        let slot = &mut self.slots[i];
        debug_assert!(
            slot.op.is_none(),
            "closing a connection with an operation in flight"
        );
        slot.fd = None;
        slot.tls = None;
        slot.handshaking = false;
        slot.reused = false;
        slot.generation = slot.generation.wrapping_add(1);
        slot.cancel = None;
        slot.head = None;
        slot.input.reset();
        self.unconnected.push(i);
    }
}

/// Records how a request ended and lets its key go.
pub(super) fn settle(
    ctx: &CoreCtx,
    ex: &Exchange,
    outcome: Result<u16, Failure>,
    body_bytes: u64,
    error_body: &[u8],
    end: Instant,
) {
    ctx.queue.borrow_mut().release(ex.pending.key);
    record_outcome(ctx, ex, outcome, body_bytes, error_body, end);
}
