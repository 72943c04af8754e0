//! What the engine replays: runs of request records, and how to decode one record.
//!
//! The engine codes against `ReplaySource` rather than the timeline file directly, so
//! the scheduler and pools can be exercised with in-memory data (`MemorySource`) and
//! the timeline reader stays the format's single owner.

pub mod fetch;
pub mod memory;
pub mod timeline;

use preprocess::profile::{BodyKind, Method, Spec, Verb};
use preprocess::timeline::record::RequestRecord;

pub use memory::{MemoryRequest, MemorySource};
pub use timeline::TimelineSource;

/// Facts about a source, known before any record is read.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// Number of requests over all runs.
    pub request_count: u64,
    /// Number of WATCH requests over all runs.
    pub watch_count: u64,
    /// Due time of the last request, µs.
    pub duration_us: u64,
    /// Number of runners (partitions) the runs belong to.
    pub runner_count: u32,
    /// The profile's spec.
    pub spec: Spec,
    /// The profile's description.
    pub description: String,
    /// Where the profile came from (for the report).
    pub source: String,
    /// Number of metric labels (label ids are `0..label_count`).
    pub label_count: u32,
    /// The timeline's content identity (`Timeline::content_id`); `None` for in-memory sources.
    pub content_id: Option<u64>,
}

/// One run: the records of one (runner, shard), in profile order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunMeta {
    /// The runner (partition) this run belongs to.
    pub runner: u32,
    /// The shard within the runner.
    pub shard: u32,
    /// Number of records.
    pub len: u64,
}

/// One record decoded for sending: enums checked, blobs resolved.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The record itself.
    pub record: &'a RequestRecord,
    /// The profile verb.
    pub verb: Verb,
    /// The wire method.
    pub method: Method,
    /// Content-Type class of the body.
    pub body_kind: BodyKind,
    /// Request target without the server's base path.
    pub target: &'a [u8],
    /// Body bytes (empty: no body).
    pub body: &'a [u8],
}

/// A record that cannot be decoded (a corrupt source).
#[derive(Debug, Clone, thiserror::Error)]
#[error("request {profile_index}: {message}")]
pub struct SourceError {
    /// Position of the request in the profile.
    pub profile_index: u64,
    /// What is wrong with it.
    pub message: String,
}

/// A source that failed its check before the replay: nothing of it was sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{origin}: {message}; nothing was sent (preprocess the profile again)")]
pub struct DamagedSource {
    /// The file (or other origin) that is damaged.
    pub origin: String,
    /// What is wrong, naming the section or request.
    pub message: String,
}

/// Runs of records to replay. Shared read-only by every core.
pub trait ReplaySource: Send + Sync {
    /// Facts about the whole source.
    fn info(&self) -> &SourceInfo;
    /// Every run, in index order.
    fn runs(&self) -> &[RunMeta];
    /// The records of run `run`, in profile order.
    fn run_records(&self, run: usize) -> Option<&[RequestRecord]>;
    /// Decodes one record of this source with every field checked.
    fn request<'a>(&'a self, record: &'a RequestRecord) -> Result<RequestParts<'a>, SourceError>;
    /// The metric label `id`: `"<METHOD LABEL> <metric path>"`.
    fn label(&self, id: u32) -> Result<&str, SourceError>;
    /// Hints the caches about the bytes `request` will read for `record` (its target).
    fn prefetch(&self, record: &RequestRecord);
    /// Checks everything the replay will read (checksums, every record), so that a damaged
    /// source is refused before anything is sent. Runs beside the connects, off the hot path.
    fn verify_for_replay(&self) -> Result<(), DamagedSource>;
}
