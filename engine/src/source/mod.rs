//! What the engine replays: runs of request records, and how to decode one record.
//!
//! The engine codes against `ReplaySource` rather than the timeline file directly, so
//! the scheduler and pools can be exercised with in-memory data (`MemorySource`) and
//! the timeline reader stays the format's single owner.

pub mod fetch;
pub mod memory;
pub mod timeline;

use preprocess::profile::Spec;
use preprocess::timeline::record::RequestRecord;
pub use preprocess::timeline::VerifyState;

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

/// One run: the records of one (runner, shard), in profile order (the timeline's own type;
/// an in-memory source builds the same).
pub use preprocess::timeline::RunInfo;

/// One record decoded for sending: enums checked, blobs resolved (the timeline's own type;
/// an in-memory source builds the same).
pub use preprocess::timeline::RequestView;

/// A record that cannot be decoded (a corrupt source).
#[derive(Debug, Clone, thiserror::Error)]
#[error("request {profile_index}: {message}")]
pub struct SourceError {
    /// Position of the request in the profile.
    pub profile_index: u64,
    /// What is wrong with it.
    pub message: String,
}

/// A source that failed its check (before the replay or during it, ahead of the dispatcher:
/// nothing of the damaged part was sent).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{origin}: {message}")]
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
    fn runs(&self) -> &[RunInfo];
    /// The records of run `run`, in profile order.
    fn run_records(&self, run: usize) -> Option<&[RequestRecord]>;
    /// Decodes one record of this source with every field checked.
    fn request<'a>(&'a self, record: &'a RequestRecord) -> Result<RequestView<'a>, SourceError>;
    /// The metric label `id`: `"<METHOD LABEL> <metric path>"`.
    fn label(&self, id: u32) -> Result<&str, SourceError>;
    /// Hints the caches about the bytes `request` will read for `record` (its target).
    fn prefetch(&self, record: &RequestRecord);
    /// Checks everything the replay will read (checksums, every record) in the order the
    /// replay needs it, publishing how far it got in [`ReplaySource::verify_state`]. Before
    /// each block it calls `pace(bound)`, which may wait (to stay a bounded lead ahead of
    /// the replay) and returns `false` to stop. Runs on its own thread, off the hot path.
    /// `Ok(true)`: all checked; `Ok(false)`: `pace` stopped it.
    fn check_ahead(&self, pace: &mut dyn FnMut(u64) -> bool) -> Result<bool, DamagedSource>;
    /// How far [`ReplaySource::check_ahead`] has got: a record may be sent once the state
    /// `covers` its due time. One atomic load: read it once per batch, not per request.
    fn verify_state(&self) -> VerifyState;
}

/// Longest a dispatcher waits for the timeline check to cover its next record. The check
/// runs far faster than any replay, so reaching this means its thread is starved.
pub const CHECK_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until `source`'s check covers a record due at `due_us`. `false`: the dispatcher
/// must stop sending (the check failed, or did not get there within [`CHECK_WAIT_LIMIT`]),
/// or `stop` was set. Polls every millisecond: only reached when the check is behind.
pub async fn wait_until_checked(
    source: &dyn ReplaySource,
    due_us: u64,
    waiter: &mut crate::clock::DueWaiter,
    stop: &dyn Fn() -> bool,
) -> bool {
    if source.verify_state().covers(due_us) {
        return true;
    }
    let step = std::time::Duration::from_millis(1);
    let give_up = std::time::Instant::now() + CHECK_WAIT_LIMIT;
    loop {
        match source.verify_state() {
            VerifyState::Failed => return false,
            state if state.covers(due_us) => return true,
            _ => {}
        }
        if stop() || std::time::Instant::now() >= give_up {
            return false;
        }
        waiter.pause(step).await;
    }
}
