//! A request's lifecycle, shared by every kind of connection (the ring's slots, the task
//! workers, WATCHes): from a due record to the parts of its request, and from its outcome to
//! the metrics. Failures are the cold path: a success records two histogram entries and
//! allocates nothing.

use std::time::{Instant, SystemTime};

use super::failure::Failure;
use super::queue::Pending;
use super::CoreCtx;
use crate::error_class::is_kperf_failure_status;
use crate::metrics::ErrorRecord;
use crate::source::RequestView;
use preprocess::profile::Verb;
use preprocess::timeline::record::RequestRecord;

/// How much of a failed response's body is kept for the Status decode.
pub(super) const ERROR_BODY_KEEP: usize = 4096;

/// A request that went out: what recording its outcome needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Exchange {
    pub(super) pending: Pending,
    pub(super) verb: Verb,
    pub(super) label: u32,
    /// When its first byte was written.
    pub(super) sent_at: Instant,
}

/// Appends the start of a failed response's body to `keep`, up to `ERROR_BODY_KEEP` bytes.
pub(super) fn keep_error_body(keep: &mut Vec<u8>, chunk: &[u8]) {
    if keep.len() < ERROR_BODY_KEEP {
        let n = chunk.len().min(ERROR_BODY_KEEP - keep.len());
        keep.extend_from_slice(&chunk[..n]);
    }
}

/// Records how a request ended and the body bytes it received: a success status in its
/// label's and verb's histograms; a failure status (after a credential refresh on 401) or a
/// failure with kperf's classification. Its key is released by the caller.
pub(super) fn record_outcome(
    ctx: &CoreCtx,
    ex: &Exchange,
    outcome: Result<u16, Failure>,
    body_bytes: u64,
    error_body: &[u8],
    end: Instant,
) {
    let mut m = ctx.metrics.borrow_mut();
    // A response with an error status adds 0 to kperf's bytes; a transport failure mid-body
    // keeps what was read (kperf counts partial bodies).
    let status_ok = !matches!(outcome, Ok(s) if is_kperf_failure_status(s));
    m.add_body_bytes(status_ok, body_bytes);
    let failure = match outcome {
        Ok(status) if !is_kperf_failure_status(status) => {
            m.record_success(
                ex.verb,
                ex.label,
                end.saturating_duration_since(ex.sent_at),
                end.saturating_duration_since(ex.pending.due),
            );
            return;
        }
        Ok(status) => Failure::Status(status),
        Err(failure) => failure,
    };
    drop(m);
    if matches!(failure, Failure::Status(401)) {
        refresh_credentials(ctx);
    }
    // Decoded again: failures are the cold path, and a success needs no request text.
    if let Some((_, parts)) = request_of(ctx, ex.pending.run, ex.pending.index, false) {
        record_failure(
            ctx,
            ex.pending.run,
            &parts,
            failure,
            error_body,
            end,
            ex.sent_at,
        );
    }
}

/// The record `index` of run `run` and its request; `None` (with the failure recorded) when
/// the record is corrupt or its target cannot be built, so it is never sent. `watch`: the
/// record is a WATCH's (its failure counts as one).
pub(super) fn request_of(
    ctx: &CoreCtx,
    run: u32,
    index: u32,
    watch: bool,
) -> Option<(&RequestRecord, RequestView<'_>)> {
    // Borrowed, not cloned: an Arc clone per request would bounce its count between cores.
    let source = &*ctx.shared.source;
    let record = source
        .run_records(run as usize)
        .and_then(|r| r.get(index as usize))?;
    let parts = match source.request(record) {
        Ok(p) => p,
        Err(e) => {
            // A corrupt record: counted as failed under its profile index, never sent.
            let verb = if watch {
                preprocess::profile::Verb::Watch
            } else {
                record.verb().unwrap_or(preprocess::profile::Verb::Get)
            };
            let class = Failure::Corrupt(e.to_string()).classify(b"", "GET", "");
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
                    runner: ctx.runner_of(run),
                    watch,
                },
            );
            return None;
        }
    };
    if record.has_invalid_target() {
        ctx.metrics.borrow_mut().record_unbuildable(parts.verb);
        return None;
    }
    Some((record, parts))
}

/// Records a failure with kperf's classification (cold path).
pub(super) fn record_failure(
    ctx: &CoreCtx,
    run: u32,
    parts: &crate::source::RequestView<'_>,
    failure: Failure,
    body: &[u8],
    end: Instant,
    sent_at: Instant,
) {
    let url = ctx.request_url(parts.target, parts.verb);
    let class = failure.classify(body, parts.method.as_str(), &url);
    ctx.metrics.borrow_mut().record_failure(
        parts.verb,
        ErrorRecord {
            method: parts.verb.metric_label(),
            url,
            timestamp: SystemTime::now(),
            duration: end.saturating_duration_since(sent_at).as_secs_f64(),
            kind: class.kind,
            code: class.code,
            message: class.message,
            runner: ctx.runner_of(run),
            watch: parts.verb == preprocess::profile::Verb::Watch,
        },
    );
}

/// After a 401: lets exec/token-file credentials refresh, and re-reads the header (cold path).
pub(super) fn refresh_credentials(ctx: &CoreCtx) {
    if let Some(a) = ctx.shared.target.auth.as_ref() {
        a.on_unauthorized();
    }
    ctx.reread_credentials();
}
