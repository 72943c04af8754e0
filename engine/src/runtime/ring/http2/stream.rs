//! One request on an HTTP/2 stream: its head encoded with HPACK straight into its connection's
//! outbound bytes (no allocation), then its response's head and body taken from the events of
//! its connection's frames, and its outcome recorded. A refused request (REFUSED_STREAM,
//! graceful GOAWAY) was not processed by the server and goes again on another connection, as
//! with Go's transport; a retryable status waits for its `Retry-After` under
//! `--retries client-go`.

use std::time::{Duration, Instant};

use super::session::Phase;
use super::{Http2Pool, Parked, REFUSED_RETRIES};
use crate::error_class::is_kperf_failure_status;
use crate::runtime::exchange::{keep_error_body, ERROR_BODY_KEEP};
use crate::runtime::failure::Failure;
use crate::runtime::h2_request::{encode_head, HeadValues};
use crate::runtime::ring::completion::settle;
use crate::runtime::ring::slot::Job;
use crate::runtime::{CancelReason, CoreCtx};
use crate::source::RequestView;

/// A request slot: the request, its stream, and what its response has brought so far.
pub(super) struct StreamSlot {
    pub(super) job: Option<Job>,
    /// The session it runs on (or that is being opened for it).
    pub(super) session: usize,
    pub(super) cancel: Option<CancelReason>,
    /// Counted in its session's streams (it has a stream there).
    pub(super) attached: bool,
    /// Its first byte has been handed to the kernel (its send is recorded).
    sent: bool,
    status: u16,
    retry_after: Option<u32>,
    body_bytes: u64,
    error_body: Vec<u8>,
}

impl StreamSlot {
    pub(super) fn new() -> StreamSlot {
        StreamSlot {
            job: None,
            session: 0,
            cancel: None,
            attached: false,
            sent: false,
            status: 0,
            retry_after: None,
            body_bytes: 0,
            error_body: Vec::with_capacity(ERROR_BODY_KEEP),
        }
    }

    /// Takes `job`, not sent yet.
    pub(super) fn take_job(&mut self, job: Job) {
        debug_assert!(self.job.is_none(), "a stream slot runs one request");
        self.job = Some(job);
        self.cancel = None;
        self.sent = false;
        self.status = 0;
        self.retry_after = None;
        self.body_bytes = 0;
        self.error_body.clear();
    }

    /// Returns its request; the slot is free.
    pub(super) fn release(&mut self) -> Option<Job> {
        self.cancel = None;
        self.job.take()
    }

    /// Its first byte was handed to the kernel at `now`: the send and its lag are recorded
    /// (a resend keeps its first attempt's).
    pub(super) fn record_send(&mut self, ctx: &CoreCtx, now: Instant) {
        let Some(job) = self.job.as_mut() else { return };
        if self.sent {
            return;
        }
        self.sent = true;
        if !job.recorded {
            job.recorded = true;
            job.exchange.sent_at = now;
            ctx.record_send(now, job.exchange.pending.due);
        }
    }

    /// The response's head arrived.
    pub(super) fn head(&mut self, status: u16, retry_after: Option<u32>) {
        self.status = status;
        self.retry_after = retry_after;
    }

    /// Body bytes arrived.
    pub(super) fn body(&mut self, data: &[u8]) {
        self.body_bytes += data.len() as u64;
        if is_kperf_failure_status(self.status) {
            keep_error_body(&mut self.error_body, data);
        }
    }

    /// The response ended: its status.
    pub(super) fn status(&self) -> u16 {
        self.status
    }
}

impl Http2Pool {
    /// Starts the request on stream slot `k` (`parts`) on ready session `s`: its HEADERS
    /// (and body) go into the session's outbound bytes, sent at the next flush.
    pub(super) fn begin(&mut self, ctx: &CoreCtx, s: usize, k: usize, parts: &RequestView<'_>) {
        let session = &mut self.sessions[s];
        let ready = session.phase == Phase::Ready && session.has_room();
        let Some(proto) = session.proto.as_mut().filter(|_| ready) else {
            let failure = Failure::Transport(session.driver.closed_error().into());
            return self.finish(ctx, k, Err(failure));
        };
        let auth = ctx.auth.borrow();
        let authorization = match auth
            .as_ref()
            .map(|a| a.http2_value().map(|v| v.as_bytes()))
            .transpose()
        {
            Ok(v) => v,
            Err(failure) => {
                drop(auth);
                return self.finish(ctx, k, Err(failure));
            }
        };
        let template = &ctx.shared.template;
        self.path.clear();
        self.path.extend_from_slice(template.base_path.as_bytes());
        self.path.extend_from_slice(parts.target);
        let values = HeadValues {
            authority: self.authority.as_str().as_bytes(),
            accept: template.accept.as_bytes(),
            user_agent: ctx.user_agent.as_bytes(),
            authorization,
        };
        let path = &self.path;
        let content_type = parts.body_kind.content_type();
        proto.open(k, parts.body, |encoder, out| {
            encode_head(encoder, out, parts.method, path, &values, content_type)
        });
        drop(auth);
        self.attach(s, k);
        self.sessions[s].unsent.push(k);
        self.mark_dirty(s);
    }

    /// Counts stream slot `k` among session `s`'s streams (it takes one of its places).
    pub(super) fn attach(&mut self, s: usize, k: usize) {
        let session = &mut self.sessions[s];
        session.streams += 1;
        crate::runtime::conn::note_streams(session.streams);
        let slot = &mut self.streams[k];
        slot.session = s;
        slot.attached = true;
    }

    /// Settles the cancelled stream slots: their streams are reset (RST_STREAM CANCEL).
    pub(super) fn settle_cancelled(&mut self, ctx: &CoreCtx) {
        while let Some(k) = self.cancelled.pop() {
            let slot = &mut self.streams[k];
            let Some(reason) = slot.cancel.filter(|_| slot.job.is_some()) else {
                continue;
            };
            let s = slot.session;
            if slot.attached {
                if let Some(proto) = self.sessions[s].proto.as_mut() {
                    proto.cancel(k);
                    self.mark_dirty(s);
                }
            } else if self.sessions[s].opener == Some(k) {
                self.interrupt(s);
            }
            let failure = match reason {
                CancelReason::Timeout => Failure::Timeout,
                CancelReason::Interrupted => Failure::Interrupted,
            };
            self.finish(ctx, k, Err(failure));
        }
    }

    /// Stream slot `k`'s request ended with `outcome`: recorded, or parked to go again.
    pub(super) fn finish(&mut self, ctx: &CoreCtx, k: usize, outcome: Result<u16, Failure>) {
        let now = Instant::now();
        let slot = &mut self.streams[k];
        let s = slot.session;
        let attached = std::mem::take(&mut slot.attached);
        let (body_bytes, retry_after) = (slot.body_bytes, slot.retry_after);
        let mut error_body = std::mem::take(&mut slot.error_body);
        let Some(mut job) = slot.release() else {
            slot.error_body = error_body;
            return;
        };
        self.free_streams.push(k);
        self.pace.answered();
        if attached {
            self.sessions[s].streams -= 1;
            self.free_if_idle(s);
        }
        let parked = match &outcome {
            Ok(status) => ctx
                .shared
                .settings
                .retry_delay(*status, retry_after, job.attempts)
                .inspect(|_| {
                    job.attempts += 1;
                    let mut m = ctx.metrics.borrow_mut();
                    m.retries += 1;
                    m.add_body_bytes(false, body_bytes);
                }),
            Err(Failure::Transport(e))
                if e.is_refused() && job.refusals < REFUSED_RETRIES && !ctx.stop_requested() =>
            {
                let wait = match job.refusals {
                    0 => Duration::ZERO,
                    r => Duration::from_secs(1 << (r - 1)),
                };
                job.refusals += 1;
                ctx.metrics.borrow_mut().connection_retries += 1;
                Some(wait)
            }
            _ => None,
        };
        match parked {
            Some(wait) => self.parked.push(Parked {
                job,
                due: now + wait,
                answer: outcome,
            }),
            None => {
                self.busy -= 1;
                ctx.last_end.set(ctx.last_end.get().max(now));
                settle(ctx, &job.exchange, outcome, body_bytes, &error_body, now);
            }
        }
        error_body.clear();
        self.streams[k].error_body = error_body;
    }
}
