//! One request on an HTTP/2 stream: handed to `h2` (which allocates its head and frames: the
//! HTTP/2 path is for servers that prefer it), then its response's head and body read as
//! `h2` delivers them, and its outcome recorded. A refused request (REFUSED_STREAM, graceful
//! GOAWAY) was not processed by the server and goes again on another connection, as with Go's
//! transport; a retryable status waits for its `Retry-After` under `--retries client-go`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::{RecvStream, SendStream};

use super::session::Phase;
use super::{Http2Pool, Parked, REFUSED_RETRIES};
use crate::error_class::is_kperf_failure_status;
use crate::runtime::exchange::{keep_error_body, ERROR_BODY_KEEP};
use crate::runtime::failure::Failure;
use crate::runtime::h2_request;
use crate::runtime::ring::completion::settle;
use crate::runtime::ring::slot::Job;
use crate::runtime::{CancelReason, CoreCtx};
use crate::transport::http2::{request_head, stream_error};

/// Where a stream's response stands.
enum Response {
    /// No stream yet (its connection is being opened).
    None,
    /// Waiting for the head.
    Head(ResponseFuture),
    /// Reading the body.
    Body(RecvStream),
}

/// A request slot: the request, its stream, and what its response has brought so far.
pub(super) struct StreamSlot {
    pub(super) job: Option<Job>,
    /// The session it runs on (or that is being opened for it).
    pub(super) session: usize,
    pub(super) cancel: Option<CancelReason>,
    response: Response,
    /// Kept while the response runs: dropping it early would end the stream.
    send: Option<SendStream<Bytes>>,
    /// Counted in its session's streams.
    attached: bool,
    /// Its first byte has been handed to the kernel (its send is recorded).
    sent: bool,
    status: u16,
    retry_after: Option<u32>,
    body_bytes: u64,
    error_body: Vec<u8>,
    waker: Waker,
}

impl StreamSlot {
    pub(super) fn new(waker: Waker) -> StreamSlot {
        StreamSlot {
            job: None,
            session: 0,
            cancel: None,
            response: Response::None,
            send: None,
            attached: false,
            sent: false,
            status: 0,
            retry_after: None,
            body_bytes: 0,
            error_body: Vec::with_capacity(ERROR_BODY_KEEP),
            waker,
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

    /// Drops its stream (resetting it if it runs) and returns its request.
    pub(super) fn release(&mut self) -> Option<Job> {
        self.response = Response::None;
        self.send = None;
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

    /// Polls the response; `Some` once it has ended, with its outcome.
    fn poll_response(
        &mut self,
        driver: &crate::transport::http2::DriverState,
    ) -> Option<Result<u16, Failure>> {
        let mut cx = Context::from_waker(&self.waker);
        loop {
            match &mut self.response {
                Response::None => return None,
                Response::Head(head) => match Pin::new(head).poll(&mut cx) {
                    Poll::Pending => return None,
                    Poll::Ready(Err(e)) => {
                        return Some(Err(Failure::Transport(stream_error(driver, e))))
                    }
                    Poll::Ready(Ok(response)) => {
                        let (head, body) = response.into_parts();
                        self.status = head.status.as_u16();
                        self.retry_after = head.headers.get("retry-after").and_then(|v| {
                            crate::http1::parse_retry_after(v.as_bytes().trim_ascii())
                        });
                        self.response = Response::Body(body);
                    }
                },
                Response::Body(body) => match body.poll_data(&mut cx) {
                    Poll::Pending => return None,
                    Poll::Ready(None) => return Some(Ok(self.status)),
                    Poll::Ready(Some(Err(e))) => {
                        return Some(Err(Failure::Transport(stream_error(driver, e))))
                    }
                    Poll::Ready(Some(Ok(data))) => {
                        self.body_bytes += data.len() as u64;
                        if is_kperf_failure_status(self.status) {
                            keep_error_body(&mut self.error_body, &data);
                        }
                        // The bytes are counted: the server may send more at once.
                        let _ = body.flow_control().release_capacity(data.len());
                    }
                },
            }
        }
    }
}

impl Http2Pool {
    /// Starts the request on stream slot `k` (`parts`) on ready session `s`.
    pub(super) fn begin(
        &mut self,
        ctx: &CoreCtx,
        s: usize,
        k: usize,
        parts: &crate::source::RequestView<'_>,
    ) {
        self.attach(s, k);
        match self.head_of(ctx, parts) {
            Ok(head) => {
                let body = (!parts.body.is_empty()).then(|| Bytes::copy_from_slice(parts.body));
                self.send_head(ctx, k, head, body);
            }
            Err(failure) => self.finish(ctx, k, Err(failure)),
        }
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

    /// The HTTP/2 head of `parts` (`h2` takes owned values: this allocates).
    pub(super) fn head_of(
        &self,
        ctx: &CoreCtx,
        parts: &crate::source::RequestView<'_>,
    ) -> Result<http::Request<()>, Failure> {
        let r = h2_request::build(ctx, parts)?;
        request_head(&self.scheme, &self.authority, r.method, r.path, r.headers)
            .map_err(|e| Failure::Transport(e.into()))
    }

    /// Hands stream slot `k`'s request (`head`, `body`) to `h2` on its session; the
    /// connection writes it when the loop next polls it.
    pub(super) fn send_head(
        &mut self,
        ctx: &CoreCtx,
        k: usize,
        head: http::Request<()>,
        body: Option<Bytes>,
    ) {
        let s = self.streams[k].session;
        let session = &mut self.sessions[s];
        let Some(h2) = session
            .h2
            .as_mut()
            .filter(|_| session.phase == Phase::Ready)
        else {
            let failure = Failure::Transport(session.driver.closed_error().into());
            return self.finish(ctx, k, Err(failure));
        };
        let sent = h2
            .sender
            .send_request(head, body.is_none())
            .and_then(|(response, mut send)| {
                if let Some(body) = body {
                    send.send_data(body, true)?;
                }
                Ok((response, send))
            });
        match sent {
            Ok((response, send)) => {
                session.unsent.push(k);
                let slot = &mut self.streams[k];
                slot.response = Response::Head(response);
                slot.send = Some(send);
                // Polled once so that `h2` knows its waker; the connection writes it.
                self.wake.set(k);
                self.wake.set(self.streams.len() + s);
            }
            Err(e) => {
                let failure = Failure::Transport(stream_error(&session.driver, e));
                self.finish(ctx, k, Err(failure));
            }
        }
    }

    /// Polls stream slot `k`: settles it when its response has ended or it was cancelled.
    pub(super) fn poll_stream(&mut self, ctx: &CoreCtx, k: usize) {
        let slot = &mut self.streams[k];
        if slot.job.is_none() {
            return;
        }
        if let Some(reason) = slot.cancel {
            let s = slot.session;
            if !slot.attached && self.sessions[s].opener == Some(k) {
                self.interrupt(s);
            }
            let failure = match reason {
                CancelReason::Timeout => Failure::Timeout,
                CancelReason::Interrupted => Failure::Interrupted,
            };
            return self.finish(ctx, k, Err(failure));
        }
        let driver = &self.sessions[slot.session].driver;
        if let Some(outcome) = slot.poll_response(driver) {
            self.finish(ctx, k, outcome);
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
        if attached {
            let session = &mut self.sessions[s];
            session.streams -= 1;
            // Its end (a reset, when it had not ended) is written by the connection.
            self.wake.set(self.streams.len() + s);
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
