//! `ReplaySource` over a memory-mapped timeline file.

use std::path::Path;

use preprocess::timeline::record::RequestRecord;
use preprocess::timeline::{Timeline, TimelineError, VerifyProgress, VerifyState};

use super::{DamagedSource, ReplaySource, RequestView, RunInfo, SourceError, SourceInfo};

/// An open timeline with its facts converted for the engine.
pub struct TimelineSource {
    timeline: Timeline,
    info: SourceInfo,
    /// How far the due-order check has got (read by the dispatchers once per batch).
    checked: VerifyProgress,
}

impl TimelineSource {
    /// Opens a timeline file and checks its small sections; the rest is checked block by block
    /// by `check_ahead`, and every record once more as it is sent.
    pub fn open(path: &Path) -> Result<TimelineSource, TimelineError> {
        let timeline = Timeline::open(path)?;
        let h = timeline.header();
        let info = SourceInfo {
            request_count: h.request_count,
            watch_count: h.watch_count,
            duration_us: h.duration_us,
            runner_count: h.runner_count,
            spec: h.spec.clone(),
            description: h.description.clone(),
            source: h.source.clone(),
            label_count: h.label_count,
            content_id: Some(timeline.content_id()),
        };
        Ok(TimelineSource {
            timeline,
            info,
            checked: VerifyProgress::new(),
        })
    }

    /// The underlying timeline.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }
}

impl ReplaySource for TimelineSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn runs(&self) -> &[RunInfo] {
        self.timeline.runs()
    }

    fn run_records(&self, run: usize) -> Option<&[RequestRecord]> {
        self.timeline.run_records(run)
    }

    fn request<'a>(&'a self, record: &'a RequestRecord) -> Result<RequestView<'a>, SourceError> {
        self.timeline.view(record).map_err(|e| SourceError {
            profile_index: record.profile_index,
            message: e.to_string(),
        })
    }

    fn prefetch(&self, record: &RequestRecord) {
        if let Some(target) = self.timeline.blob(record.target) {
            crate::prefetch::prefetch_bytes(target, 2);
        }
    }

    fn check_ahead(&self, pace: &mut dyn FnMut(u64) -> bool) -> Result<bool, DamagedSource> {
        self.timeline
            .check_in_due_order(&self.checked, pace)
            .map_err(|e| DamagedSource {
                origin: format!("timeline {}", self.timeline.path().display()),
                message: e.to_string(),
            })
    }

    #[inline]
    fn verify_state(&self) -> VerifyState {
        self.checked.state()
    }

    fn label(&self, id: u32) -> Result<&str, SourceError> {
        self.timeline.label(id).map_err(|e| SourceError {
            profile_index: 0,
            message: e.to_string(),
        })
    }
}
