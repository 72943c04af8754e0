//! A pool connection: takes due requests from the core's queue and runs them one at a
//! time over keep-alive HTTP/1.1, replacing its connection when it breaks.

use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::timer::sleep;

use futures_lite::{future, AsyncWriteExt};

use super::conn::{self, Conn};
use super::exchange::{keep_error_body, record_outcome, request_of, Exchange, ERROR_BODY_KEEP};
use super::failure::Failure;
use super::queue::Pending;
use super::{CancelReason, CoreCtx, WorkerControl, QUEUE_RESUME};
use crate::error_class::is_kperf_failure_status;
use crate::http1::ResponseReader;

/// Most times a request refused over HTTP/2 is sent again (Go's transport: 6).
const H2_REFUSED_RETRIES: u32 = 6;

/// Buffers a worker reuses for every request.
pub(super) struct Buffers {
    pub(super) request: Vec<u8>,
    pub(super) reader: ResponseReader,
    pub(super) error_body: Vec<u8>,
}

impl Buffers {
    pub(super) fn new() -> Buffers {
        Buffers {
            request: Vec::with_capacity(4096),
            reader: ResponseReader::default(),
            error_body: Vec::with_capacity(ERROR_BODY_KEEP),
        }
    }
}

/// The worker's loop: runs until the core's input is done and its queue is empty.
pub(super) async fn run(ctx: Rc<CoreCtx>, control: Rc<WorkerControl>, mut conn: Option<Conn>) {
    let mut bufs = Buffers::new();
    while let Some(job) = next_job(&ctx, &control).await {
        conn = execute(&ctx, &control, conn, &mut bufs, job).await;
        ctx.queue.borrow_mut().release(job.key);
    }
    // Others may be parked waiting for work that will never come.
    ctx.wake_all_idle();
}

/// The next request this worker may send, or `None` when the run is over.
async fn next_job(ctx: &Rc<CoreCtx>, control: &Rc<WorkerControl>) -> Option<Pending> {
    loop {
        ctx.prefetch_upcoming();
        let taken = ctx.queue.borrow_mut().take();
        if let Some(job) = taken {
            let left = ctx.queue.borrow().len();
            if left > 0 {
                // Chain: another idle worker may find a request this one could not take.
                if let Some(other) = ctx.idle.borrow_mut().pop() {
                    other.wake.notify();
                }
            }
            // Only where the held-back dispatcher would resume: notifying on every take
            // woke it (and re-armed its timer) once per request when flat out.
            if left < QUEUE_RESUME {
                ctx.space.notify();
            }
            return Some(job);
        }
        if ctx.input_done.get() && ctx.queue.borrow().is_empty() {
            return None;
        }
        ctx.idle.borrow_mut().push(control.clone());
        control.wake.notified().await;
    }
}

/// Sends one request and records its outcome; returns the connection if still usable.
async fn execute(
    ctx: &Rc<CoreCtx>,
    control: &WorkerControl,
    conn: Option<Conn>,
    bufs: &mut Buffers,
    job: Pending,
) -> Option<Conn> {
    let Some((record, parts)) = request_of(ctx, job.run, job.index, false) else {
        return conn;
    };
    control.cancel.clear();
    let started = Instant::now();
    control.busy_since.set(Some(started));
    let mut sent_at = started;
    let mut body_bytes = 0u64;
    bufs.error_body.clear();
    let mut conn = conn;
    // `--retries client-go`: a retryable answer is sent again after its Retry-After.
    let mut attempts = 0u8;
    let outcome = loop {
        let first = attempts == 0;
        let outcome = {
            let io = async {
                // A refused HTTP/2 request (graceful GOAWAY, REFUSED_STREAM) was not processed by
                // the server: it is sent again on another connection, as Go's HTTP/2 transport
                // does (up to 6 times; at once, then after 1, 2, 4, 8 and 16 s).
                let mut refusals = 0u32;
                let mut reused;
                loop {
                    // A connection that ended while this worker was idle takes no request: the
                    // request goes to another one, never having been sent.
                    if matches!(&conn, Some(Conn::Http2(l)) if l.conn().is_closed()) {
                        conn = None;
                    }
                    // Nor does an HTTP/1.1 connection the server closed while it was idle.
                    if matches!(&conn, Some(Conn::Http1(s)) if s.unusable_while_idle()) {
                        conn = None;
                        bufs.reader.reset();
                    }
                    reused = matches!(&conn, Some(Conn::Http1(_)));
                    if conn.is_none() {
                        conn = conn::lease_h2(&ctx.h2_pool);
                    }
                    // Over HTTP/2, one connect at a time: workers that all find every stream taken
                    // share the connection the first of them opens instead of opening one each.
                    let _permit = if conn.is_none() && !ctx.h2_pool.borrow().is_empty() {
                        let permit = ctx.h2_connect.acquire_permit(1).await.map_err(|e| {
                            Failure::Connect(std::io::Error::other(format!(
                                "HTTP/2 connect gate closed: {e}"
                            )))
                        })?;
                        conn = conn::lease_h2(&ctx.h2_pool);
                        // At `--max-conns` with every stream taken: wait for a stream (rare; a
                        // millisecond's poll keeps it simple).
                        while conn.is_none() && ctx.h2_pool.borrow().len() >= ctx.max_conns {
                            sleep(Duration::from_millis(1)).await;
                            conn = conn::lease_h2(&ctx.h2_pool);
                        }
                        Some(permit)
                    } else {
                        None
                    };
                    if conn.is_none() {
                        let c = conn::connect(&ctx.shared.target, &ctx.h2_pool)
                            .await
                            .map_err(Failure::from)?;
                        ctx.conns_opened.set(ctx.conns_opened.get() + 1);
                        bufs.reader.reset();
                        conn = Some(c);
                    }
                    let Some(Conn::Http2(lease)) = conn.as_ref() else {
                        break;
                    };
                    let result = send_http2(
                        ctx,
                        lease.conn(),
                        &parts,
                        // A resend after a refusal is the same request: its lag is the first attempt's.
                        (refusals == 0 && first).then_some(job.due),
                        &mut sent_at,
                        &mut body_bytes,
                        &mut bufs.error_body,
                    )
                    .await;
                    let refused = matches!(&result, Err(Failure::Transport(e)) if e.is_refused());
                    if refused && refusals < H2_REFUSED_RETRIES {
                        if refusals > 0 {
                            sleep(Duration::from_secs(1 << (refusals - 1))).await;
                        }
                        refusals += 1;
                        ctx.metrics.borrow_mut().connection_retries += 1;
                        conn = None;
                        continue;
                    }
                    return result;
                }
                ctx.encode_request(&mut bufs.request, &parts);
                if first {
                    sent_at = Instant::now();
                    ctx.record_send(sent_at, job.due);
                }
                let mut retried = false;
                let (stream, head) = loop {
                    let Some(Conn::Http1(stream)) = conn.as_mut() else {
                        return Err(Failure::Connect(std::io::Error::other(
                            "connection missing after connect",
                        )));
                    };
                    match send_http1(stream, bufs).await {
                        Ok(head) => break (stream, head),
                        // Closed by the server before any response byte on a reused connection:
                        // once more on a fresh one, with the first attempt's send instant and lag.
                        Err((f, written))
                            if reused
                                && !retried
                                && f.retries_on_fresh_connection(parts.verb, written) =>
                        {
                            retried = true;
                            ctx.metrics.borrow_mut().connection_retries += 1;
                            bufs.reader.reset();
                            conn = None;
                            let c = conn::connect(&ctx.shared.target, &ctx.h2_pool)
                                .await
                                .map_err(Failure::from)?;
                            ctx.conns_opened.set(ctx.conns_opened.get() + 1);
                            conn = Some(c);
                        }
                        Err((f, _)) => return Err(f),
                    }
                };
                let failed = is_kperf_failure_status(head.status);
                let keep = &mut bufs.error_body;
                bufs.reader
                    .read_body(stream, head.framing, |b| {
                        body_bytes += b.len() as u64;
                        if failed {
                            keep_error_body(keep, b);
                        }
                    })
                    .await?;
                // Bytes beyond the response are nobody's answer: the connection is not reused.
                let keep_alive = head.keep_alive && !bufs.reader.has_buffered();
                Ok::<_, Failure>((head.status, keep_alive, head.retry_after))
            };
            let cancelled = async {
                control.cancel.notified().await;
                Err(match control.cancel_reason.get() {
                    CancelReason::Timeout => Failure::Timeout,
                    CancelReason::Interrupted => Failure::Interrupted,
                })
            };
            future::or(io, cancelled).await
        };
        if let Ok((status, keep_alive, retry_after)) = outcome {
            if let Some(delay) = ctx
                .shared
                .settings
                .retry_delay(status, retry_after, attempts)
            {
                attempts += 1;
                {
                    let mut m = ctx.metrics.borrow_mut();
                    m.retries += 1;
                    m.add_body_bytes(false, body_bytes);
                }
                body_bytes = 0;
                bufs.error_body.clear();
                if !keep_alive {
                    conn = None;
                }
                let waited = future::or(
                    async {
                        sleep(delay).await;
                        true
                    },
                    async {
                        control.cancel.notified().await;
                        false
                    },
                )
                .await;
                if waited {
                    continue;
                }
                // Timed out or stopped while waiting: the answer is the outcome.
            }
        }
        break outcome;
    };
    control.busy_since.set(None);
    let end = Instant::now();
    ctx.last_end.set(end);
    let keep_conn = match &outcome {
        Ok((_, keep_alive, _)) => *keep_alive,
        Err(failure) => !failure.breaks_connection(),
    };
    let exchange = Exchange {
        pending: job,
        verb: parts.verb,
        label: record.label,
        sent_at,
    };
    record_outcome(
        ctx,
        &exchange,
        outcome.map(|(status, _, _)| status),
        body_bytes,
        &bufs.error_body,
        end,
    );
    match conn {
        // A stream is taken per request, on the connection with the fewest in flight.
        Some(Conn::Http2(_)) => None,
        c if keep_conn => c,
        _ => None,
    }
}

/// Writes the encoded request and reads its response's head; a failure says whether the
/// whole request was written.
async fn send_http1(
    stream: &mut crate::transport::Stream,
    bufs: &mut Buffers,
) -> Result<crate::http1::ResponseHead, (Failure, bool)> {
    let io_failure = |e: std::io::Error| (Failure::Response(e.into()), false);
    stream.write_all(&bufs.request).await.map_err(io_failure)?;
    stream.flush().await.map_err(io_failure)?;
    bufs.reader
        .read_head(stream)
        .await
        .map_err(|e| (Failure::Response(e), true))
}

/// One request as an HTTP/2 stream (the h2 crate allocates its request and frames; the
/// HTTP/2 path is for compatibility with servers that prefer it, HTTP/1.1 is the fast path).
/// The send lag is recorded against `lag_from` (`None` on a resend). Returns the status and
/// whether the connection stays usable.
async fn send_http2(
    ctx: &CoreCtx,
    h2: &crate::transport::Http2Connection,
    parts: &crate::source::RequestView<'_>,
    lag_from: Option<Instant>,
    sent_at: &mut Instant,
    body_bytes: &mut u64,
    keep: &mut Vec<u8>,
) -> Result<(u16, bool, Option<u32>), Failure> {
    let request = super::h2_request::build(ctx, parts)?;
    // A resend keeps the first attempt's instant: latency covers the retries, as in Go.
    if let Some(due) = lag_from {
        *sent_at = Instant::now();
        ctx.record_send(*sent_at, due);
    }
    let mut response = h2
        .send(request.method, &request.path, &request.headers, parts.body)
        .await
        .map_err(Failure::Transport)?;
    let status = response.status.as_u16();
    let failed = is_kperf_failure_status(status);
    loop {
        let chunk = response.body.chunk().await;
        match chunk {
            Ok(Some(b)) => {
                *body_bytes += b.len() as u64;
                if failed {
                    keep_error_body(keep, &b);
                }
            }
            Ok(None) => break,
            Err(e) => return Err(Failure::Transport(e)),
        }
    }
    let retry_after = response
        .headers
        .get("retry-after")
        .and_then(|v| crate::http1::parse_retry_after(v.as_bytes().trim_ascii()));
    Ok((status, !h2.is_closed(), retry_after))
}
