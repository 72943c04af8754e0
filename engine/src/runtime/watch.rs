//! WATCH requests: each on a dedicated HTTP/1.1 connection (kperf's pool-sharing and
//! overflow-client rules do not apply to kreplay's pools), latency = time to response
//! headers, events (lines) and bytes counted per label, ended when the replay ends.

use std::rc::Rc;
use std::time::{Instant, SystemTime};

use futures_lite::{future, AsyncWriteExt};
use glommio::timer::sleep;

use super::conn;
use super::failure::Failure;
use super::notify::Notify;
use super::worker::{record_failure, Buffers, ERROR_BODY_KEEP};
use super::CoreCtx;
use crate::metrics::ErrorRecord;
use crate::report::error_class::is_kperf_failure_status;

/// Starts the WATCH at (`run`, `index`), due at `due` (one task per WATCH: not the hot path).
pub(super) fn start(ctx: &Rc<CoreCtx>, run: u32, index: u32, due: Instant) {
    let stop = Rc::new(Notify::default());
    ctx.watch_stops.borrow_mut().push(stop.clone());
    let task = glommio::spawn_local(run_watch(ctx.clone(), stop, run, index, due)).detach();
    ctx.watches.borrow_mut().push(task);
}

enum HeadOutcome {
    /// Response headers arrived.
    Head(crate::http1::ResponseHead),
    /// The replay ended first: kperf counts the WATCH as a success.
    Ended,
}

async fn run_watch(ctx: Rc<CoreCtx>, stop: Rc<Notify>, run: u32, index: u32, due: Instant) {
    // Borrowed, not cloned: an Arc clone per request would bounce its count between cores.
    let source = &*ctx.shared.source;
    let Some(record) = source
        .run_records(run as usize)
        .and_then(|r| r.get(index as usize))
    else {
        return;
    };
    let parts = match source.request(record) {
        Ok(p) => p,
        Err(e) => {
            let class = Failure::Corrupt(e.to_string()).classify(b"", "GET", "");
            let verb = preprocess::profile::Verb::Watch;
            ctx.metrics.borrow_mut().record_failure(
                verb,
                ErrorRecord {
                    method: verb.metric_label(),
                    url: String::new(),
                    timestamp: SystemTime::now(),
                    duration: 0.0,
                    kind: class.kind,
                    code: class.code,
                    message: class.message,
                },
            );
            return;
        }
    };
    if record.has_invalid_target() {
        ctx.metrics.borrow_mut().record_unbuildable(parts.verb);
        return;
    }
    let timeout = ctx.shared.settings.timeout;
    let mut bufs = Buffers::new();
    let mut sent_at = Instant::now();
    let mut stream = None;
    let head = {
        let io = async {
            let mut s = conn::connect_http1(&ctx.shared.target)
                .await
                .map_err(Failure::from)?;
            ctx.conns_opened.set(ctx.conns_opened.get() + 1);
            {
                let auth = ctx.auth.borrow();
                ctx.shared.template.encode(
                    &mut bufs.request,
                    parts.method,
                    parts.target,
                    parts.body_kind,
                    parts.body,
                    auth.as_deref(),
                );
            }
            sent_at = Instant::now();
            ctx.metrics
                .borrow_mut()
                .record_send(sent_at.saturating_duration_since(due));
            s.write_all(&bufs.request)
                .await
                .map_err(|e| Failure::Response(e.into()))?;
            s.flush().await.map_err(|e| Failure::Response(e.into()))?;
            let head = bufs.reader.read_head(&mut s).await?;
            stream = Some(s);
            Ok(HeadOutcome::Head(head))
        };
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
    let head = match head {
        Ok(HeadOutcome::Head(h)) => h,
        Ok(HeadOutcome::Ended) => {
            ctx.metrics.borrow_mut().record_watch_ended(parts.verb);
            return;
        }
        Err(f) => {
            record_failure(&ctx, &parts, f, b"", at_head, sent_at);
            return;
        }
    };
    let Some(mut s) = stream else { return };
    let failed = is_kperf_failure_status(head.status);
    let mut bytes = 0u64;
    let mut events = 0u64;
    {
        let keep = &mut bufs.error_body;
        let drain = bufs.reader.read_body(&mut s, head.framing, |b| {
            bytes += b.len() as u64;
            events += b.iter().filter(|&&c| c == b'\n').count() as u64;
            if failed && keep.len() < ERROR_BODY_KEEP {
                let n = b.len().min(ERROR_BODY_KEEP - keep.len());
                keep.extend_from_slice(&b[..n]);
            }
        });
        // The stream ends when the server closes it or the replay ends; either is fine.
        let _ = future::or(async { drain.await.map(|_| ()) }, async {
            stop.signalled().await;
            Ok(())
        })
        .await;
    }
    let end = Instant::now();
    ctx.last_end.set(end);
    {
        let mut m = ctx.metrics.borrow_mut();
        m.bytes_received += bytes;
        if !failed {
            m.record_success(
                parts.verb,
                record.label,
                at_head.saturating_duration_since(sent_at),
                at_head.saturating_duration_since(due),
            );
            if let Some(l) = m.label_mut(record.label) {
                l.watch_events += events;
                l.watch_bytes += bytes;
            }
            return;
        }
    }
    record_failure(
        &ctx,
        &parts,
        Failure::Status(head.status),
        &bufs.error_body,
        end,
        sent_at,
    );
}
