//! From a profile request to a prepared record: normalisation, key hash, due time.

use super::error::TimelineError;
use super::record::FLAG_INVALID_TARGET;
use super::writer::{OriginStrings, PreparedRequest, StringHashes, TimelineWriter};
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

/// A request normalised for the writer, owning its strings, so that it can be built on
/// another thread than the writer's.
#[derive(Debug, Clone)]
pub struct OwnedPrepared {
    /// The request as the profile gives it (its strings are the origin strings).
    pub request: ProfileRequest,
    due_us: u64,
    key_hash: u64,
    body_kind: BodyKind,
    flags: u8,
    target: String,
    label: String,
    hashes: StringHashes,
}

impl OwnedPrepared {
    /// Normalises `req` (profile index `index`) with `mode`. A target Go's url.Parse rejects
    /// is kept with `FLAG_INVALID_TARGET` and the raw apiPath, as kperf runs such a request
    /// and counts it failed.
    pub fn new(index: u64, req: ProfileRequest, mode: PathMode) -> Result<Self, TimelineError> {
        let due_us = due_us_of(index, req.timestamp_ms)?;
        let (target, label, body_kind, flags) = match normalize(&req, mode) {
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
        let mut prepared = OwnedPrepared {
            due_us,
            key_hash: key_hash(&req),
            body_kind,
            flags,
            target,
            label,
            request: req,
            hashes: StringHashes([0; 8]),
        };
        prepared.hashes = StringHashes::of(&prepared.at(index));
        Ok(prepared)
    }

    /// The prepared request at profile index `index`, borrowing these strings.
    pub fn at(&self, index: u64) -> PreparedRequest<'_> {
        let req = &self.request;
        PreparedRequest {
            profile_index: index,
            due_us: self.due_us,
            key_hash: self.key_hash,
            verb: req.verb,
            method: req.verb.method(),
            body_kind: self.body_kind,
            flags: self.flags,
            target: self.target.as_bytes(),
            body: req.body.as_bytes(),
            label: &self.label,
            origin: OriginStrings {
                namespace: &req.namespace,
                resource_kind: &req.resource_kind,
                name: &req.name,
                label_selector: &req.label_selector,
                api_path: &req.api_path,
            },
        }
    }
}

impl TimelineWriter {
    /// Normalises `req` (profile index `index`) with `mode` and adds it (see
    /// [`OwnedPrepared::new`]).
    pub fn push(
        &mut self,
        index: u64,
        req: &ProfileRequest,
        mode: PathMode,
    ) -> Result<(), TimelineError> {
        let prepared = OwnedPrepared::new(index, req.clone(), mode)?;
        self.push_owned(index, &prepared)
    }

    /// Adds a request prepared elsewhere (its string hashes included) at `index`.
    pub fn push_owned(&mut self, index: u64, req: &OwnedPrepared) -> Result<(), TimelineError> {
        self.push_hashed(&req.at(index), &req.hashes)
    }
}
