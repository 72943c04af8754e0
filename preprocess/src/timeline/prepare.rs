//! From a profile request to a prepared record: normalisation, key hash, due time.

use super::error::TimelineError;
use super::record::FLAG_INVALID_TARGET;
use super::writer::{OriginStrings, PreparedRequest, TimelineWriter};
use crate::partition::key_hash;
use crate::profile::{BodyKind, ProfileRequest};
use crate::request_target::{metric_label, normalize, PathMode};

/// Due time in microseconds of a profile timestamp in milliseconds; negative or
/// overflowing timestamps are an error (kperf weakness 32 is not copied).
pub fn due_us_of(index: u64, timestamp_ms: i64) -> Result<u64, TimelineError> {
    u64::try_from(timestamp_ms)
        .ok()
        .and_then(|ms| ms.checked_mul(1000))
        .ok_or_else(|| TimelineError::BadRequest {
            index,
            field: "timestamp",
            problem: format!(
                "{timestamp_ms} ms is outside 0..={} ms (the due time in microseconds must fit in 64 bits)",
                u64::MAX / 1000
            ),
        })
}

/// The name a path mode is recorded under in the header.
pub fn path_mode_name(mode: PathMode) -> &'static str {
    match mode {
        PathMode::Recorded => "recorded",
        PathMode::KperfCleaned => "kperf-cleaned",
    }
}

impl TimelineWriter {
    /// Normalises `req` (profile index `index`) with `mode` and adds it. A target Go's
    /// url.Parse rejects is stored with `FLAG_INVALID_TARGET` and the raw apiPath, as
    /// kperf runs such a request and counts it failed.
    pub fn push(
        &mut self,
        index: u64,
        req: &ProfileRequest,
        mode: PathMode,
    ) -> Result<(), TimelineError> {
        let due_us = due_us_of(index, req.timestamp_ms)?;
        let (target, label, body_kind, flags) = match normalize(req, mode) {
            Ok(n) => (
                n.target,
                metric_label(req.verb, &n.metric_path),
                n.body_kind,
                0,
            ),
            Err(_) => (
                req.api_path.clone(),
                metric_label(req.verb, &req.api_path),
                BodyKind::None,
                FLAG_INVALID_TARGET,
            ),
        };
        self.push_prepared(&PreparedRequest {
            profile_index: index,
            due_us,
            key_hash: key_hash(req),
            verb: req.verb,
            method: req.verb.method(),
            body_kind,
            flags,
            target: target.as_bytes(),
            body: req.body.as_bytes(),
            label: &label,
            origin: OriginStrings {
                namespace: &req.namespace,
                resource_kind: &req.resource_kind,
                name: &req.name,
                label_selector: &req.label_selector,
                api_path: &req.api_path,
            },
        })
    }
}
