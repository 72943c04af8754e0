//! WATCH requests. When the core's pool speaks HTTP/2, a WATCH that shares the pool is a
//! stream on a pool connection (another connection is opened when the streams of the open
//! ones are used up); kperf's rule decides which share (`--watch-connections`): the first
//! connsPerRunner WATCHes of a runner, later ones open a connection of their own. Over
//! HTTP/1.1 each WATCH has a dedicated connection. Latency = time to response
//! headers; events (lines) and bytes are counted per label; all end when the replay ends.

use std::rc::Rc;
use std::time::Instant;

use futures_lite::{future, AsyncWriteExt};
use glommio::timer::sleep;

use super::conn::{self, Conn, H2Lease};
use super::exchange::{keep_error_body, record_failure, request_of};
use super::failure::Failure;
use super::notify::Notify;
use super::CoreCtx;
use crate::error_class::is_kperf_failure_status;
use crate::http1::{BodyFraming, ResponseReader};
use crate::source::RequestView;
use crate::transport::{Http2Body, Stream};

/// The core's dispatcher met the WATCH at (`run`, `index`), due at `due`: it starts it
/// unless WATCHes run on the WATCH lane (`watch_lane`), which starts them itself.
pub(super) fn start(ctx: &Rc<CoreCtx>, run: u32, index: u32, due: Instant) {
    if ctx.shared.settings.watch_executor == crate::run::WatchExecutor::Cores {
        spawn(ctx, run, index, due);
    }
}

/// Starts the WATCH at (`run`, `index`), due at `due` (one task per WATCH: not the hot path).
pub(super) fn spawn(ctx: &Rc<CoreCtx>, run: u32, index: u32, due: Instant) {
    let stop = Rc::new(Notify::default());
    ctx.watch_stops.borrow_mut().push(stop.clone());
    let task = glommio::spawn_local(run_watch(ctx.clone(), stop, run, index, due)).detach();
    ctx.watches.borrow_mut().push(task);
}

/// Where a WATCH's response comes from once its headers have arrived.
enum WatchBody {
    /// A dedicated HTTP/1.1 connection, how its body is delimited, and the reader holding
    /// the bytes that followed the headers.
    Http1(Stream, BodyFraming, Box<ResponseReader>),
    /// A stream on a shared HTTP/2 connection (the lease keeps its place counted).
    Http2(Http2Body, H2Lease),
}

enum HeadOutcome {
    /// Response headers arrived.
    Head(u16, WatchBody),
    /// The replay ended first: kperf counts the WATCH as a success.
    Ended,
}

/// What the body phase saw.
#[derive(Default)]
struct Received {
    bytes: u64,
    events: u64,
}

/// A connection for one WATCH: a stream on an HTTP/2 pool connection when the server speaks
/// HTTP/2 (opening one more connection when every open one's streams are taken), else a
/// dedicated HTTP/1.1 connection.
async fn open(ctx: &CoreCtx, run: u32) -> Result<Conn, Failure> {
    let target = &ctx.shared.target;
    if target.tls.is_none() || ctx.watch_http1.get() {
        let s = conn::connect_http1(target).await.map_err(Failure::from)?;
        ctx.conns_opened.set(ctx.conns_opened.get() + 1);
        return Ok(Conn::Http1(s));
    }
    if !shares_pool(ctx, run) {
        let c = conn::connect_own(target).await.map_err(Failure::from)?;
        ctx.conns_opened.set(ctx.conns_opened.get() + 1);
        if matches!(c, Conn::Http1(_)) {
            ctx.watch_http1.set(true);
        }
        return Ok(c);
    }
    if let Some(lease) = conn::lease_h2_watch(&ctx.h2_pool) {
        return Ok(Conn::Http2(lease));
    }
    // One connect at a time: a thousand WATCHes due together share the connection the first
    // one opens instead of opening a thousand.
    let _permit = ctx.h2_connect.acquire_permit(1).await.map_err(|e| {
        Failure::Connect(std::io::Error::other(format!(
            "WATCH connect gate closed: {e}"
        )))
    })?;
    if ctx.watch_http1.get() {
        let s = conn::connect_http1(target).await.map_err(Failure::from)?;
        ctx.conns_opened.set(ctx.conns_opened.get() + 1);
        return Ok(Conn::Http1(s));
    }
    if let Some(lease) = conn::lease_h2_watch(&ctx.h2_pool) {
        return Ok(Conn::Http2(lease));
    }
    let c = conn::connect(target, &ctx.h2_pool)
        .await
        .map_err(Failure::from)?;
    ctx.conns_opened.set(ctx.conns_opened.get() + 1);
    if matches!(c, Conn::Http1(_)) {
        // The server chose HTTP/1.1: later WATCHes connect without waiting for each other.
        ctx.watch_http1.set(true);
    }
    Ok(c)
}

/// Whether the WATCH of run `run` takes a stream on a pool connection (`--watch-connections`;
/// kperf's rule: the first connsPerRunner WATCHes of a runner do, over all cores).
fn shares_pool(ctx: &CoreCtx, run: u32) -> bool {
    use crate::run::WatchConnections;
    match ctx.shared.settings.watch_connections {
        WatchConnections::Shared => true,
        WatchConnections::Own => false,
        WatchConnections::Kperf => {
            let runner = ctx.runner_of(run) as usize;
            let limit = ctx.shared.source.info().spec.conns_per_runner;
            ctx.shared
                .watches_started
                .get(runner)
                .is_none_or(|n| n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < limit)
        }
    }
}

async fn run_watch(ctx: Rc<CoreCtx>, stop: Rc<Notify>, run: u32, index: u32, due: Instant) {
    let Some((record, parts)) = request_of(&ctx, run, index, true) else {
        return;
    };
    let timeout = ctx.shared.settings.timeout;
    // Watches are many and long-lived: no per-watch buffer beyond what its protocol needs
    // (the start of a failed response's body is kept only when there is one).
    let mut error_body = Vec::new();
    let mut sent_at = Instant::now();
    let head = {
        let io = send(&ctx, run, &parts, due, &mut sent_at);
        let timed_out = async {
            sleep(timeout).await;
            Err(Failure::Timeout)
        };
        let ended = async {
            stop.signalled().await;
            Ok(HeadOutcome::Ended)
        };
        future::or(io, future::or(ended, timed_out)).await
    };
    let at_head = Instant::now();
    let (status, body) = match head {
        Ok(HeadOutcome::Head(status, body)) => (status, body),
        Ok(HeadOutcome::Ended) => {
            ctx.metrics.borrow_mut().record_watch_ended(parts.verb);
            return;
        }
        Err(f) => {
            record_failure(&ctx, run, &parts, f, b"", at_head, sent_at);
            return;
        }
    };
    let failed = is_kperf_failure_status(status);
    let received = match body {
        WatchBody::Http1(mut s, framing, mut reader) => {
            let mut got = Received::default();
            let keep = &mut error_body;
            let drain = reader.read_body(&mut s, framing, |b| {
                count(&mut got, b, failed, keep);
            });
            // The stream ends when the server closes it or the replay ends; either is fine.
            let _ = future::or(async { drain.await.map(|_| ()) }, async {
                stop.signalled().await;
                Ok(())
            })
            .await;
            got
        }
        WatchBody::Http2(mut b, lease) => {
            let mut got = Received::default();
            let keep = &mut error_body;
            let drain = async {
                while let Ok(Some(chunk)) = b.chunk().await {
                    count(&mut got, &chunk, failed, keep);
                }
            };
            future::or(drain, stop.signalled()).await;
            // Dropping the body resets the stream (CANCEL); then its place is free.
            drop(b);
            drop(lease);
            got
        }
    };
    let end = Instant::now();
    ctx.last_end.set(end);
    {
        let mut m = ctx.metrics.borrow_mut();
        m.add_body_bytes(!failed, received.bytes);
        if !failed {
            m.record_success(
                parts.verb,
                record.label,
                at_head.saturating_duration_since(sent_at),
                at_head.saturating_duration_since(due),
            );
            if let Some(l) = m.label_mut(record.label) {
                l.watch_events += received.events;
                l.watch_bytes += received.bytes;
            }
            return;
        }
    }
    record_failure(
        &ctx,
        run,
        &parts,
        Failure::Status(status),
        &error_body,
        end,
        sent_at,
    );
}

/// Counts a chunk of a WATCH body: bytes, events (one JSON object per line), and keeps the
/// start of a failed response for its Status.
fn count(got: &mut Received, chunk: &[u8], failed: bool, keep: &mut Vec<u8>) {
    got.bytes += chunk.len() as u64;
    got.events += chunk.iter().filter(|&&c| c == b'\n').count() as u64;
    if failed {
        keep_error_body(keep, chunk);
    }
}

/// Records a WATCH's send (its lag is kept apart too: it includes the connect).
fn record_send(ctx: &CoreCtx, sent_at: Instant, due: Instant) {
    ctx.metrics.borrow_mut().record_watch_send(
        sent_at.saturating_duration_since(due),
        sent_at.saturating_duration_since(ctx.start),
    );
}

/// Opens the WATCH's connection or stream, sends it and waits for the response headers.
async fn send(
    ctx: &CoreCtx,
    run: u32,
    parts: &RequestView<'_>,
    due: Instant,
    sent_at: &mut Instant,
) -> Result<HeadOutcome, Failure> {
    match open(ctx, run).await? {
        Conn::Http1(mut s) => {
            let mut request = Vec::with_capacity(parts.target.len() + parts.body.len() + 512);
            ctx.encode_request(&mut request, parts);
            *sent_at = Instant::now();
            record_send(ctx, *sent_at, due);
            s.write_all(&request)
                .await
                .map_err(|e| Failure::Response(e.into()))?;
            s.flush().await.map_err(|e| Failure::Response(e.into()))?;
            let mut reader = Box::<ResponseReader>::default();
            let head = reader.read_head(&mut s).await?;
            Ok(HeadOutcome::Head(
                head.status,
                WatchBody::Http1(s, head.framing, reader),
            ))
        }
        Conn::Http2(lease) => {
            let request = super::h2_request::build(ctx, parts)?;
            *sent_at = Instant::now();
            record_send(ctx, *sent_at, due);
            let response = lease
                .conn()
                .send(request.method, &request.path, &request.headers, parts.body)
                .await
                .map_err(Failure::Transport)?;
            Ok(HeadOutcome::Head(
                response.status.as_u16(),
                WatchBody::Http2(response.body, lease),
            ))
        }
    }
}
