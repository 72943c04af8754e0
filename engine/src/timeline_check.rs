//! The timeline check's thread during a run: started with the run (beside the preflight and
//! the connects), paced by the replay's clock so that it stays at most `CHECK_LEAD` ahead of
//! it, and stopped with the run however the run ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::SpeedScale;
use crate::source::{DamagedSource, ReplaySource};

/// How far ahead of the replay's clock (wall time) the check may run: far enough that a
/// dispatcher does not wait for it, near enough that a block is read shortly before it is
/// sent rather than the whole file before the start.
pub const CHECK_LEAD: Duration = Duration::from_secs(1);

/// How often a check that is ahead looks at the clock again.
const PACE_STEP: Duration = Duration::from_millis(2);

/// The check's verdict: `Ok(true)` all checked, `Ok(false)` stopped with the run.
pub type CheckResult = Result<bool, DamagedSource>;

/// The running check. Dropping it stops the check (at its next block).
pub struct TimelineCheck {
    handle: Option<JoinHandle<CheckResult>>,
    start: Arc<OnceLock<Instant>>,
    cancel: Arc<AtomicBool>,
}

impl TimelineCheck {
    /// Starts checking `source` on its own thread, paced for a replay at `scale`.
    pub fn spawn(source: Arc<dyn ReplaySource>, scale: SpeedScale) -> std::io::Result<Self> {
        let start = Arc::new(OnceLock::new());
        let cancel = Arc::new(AtomicBool::new(false));
        let handle = {
            let (start, cancel) = (start.clone(), cancel.clone());
            std::thread::Builder::new()
                .name("kreplay-verify".into())
                .spawn(move || {
                    source.check_ahead(&mut |bound| pace(bound, scale, &start, &cancel))
                })?
        };
        Ok(TimelineCheck {
            handle: Some(handle),
            start,
            cancel,
        })
    }

    /// The replay starts (or started) at `start`: from now on the lead is counted from it.
    pub fn replay_starts(&self, start: Instant) {
        let _ = self.start.set(start);
    }

    /// The failure of a check that has already ended with one (it is then joined).
    pub fn failed_already(&mut self) -> Option<DamagedSource> {
        if !self.handle.as_ref()?.is_finished() {
            return None;
        }
        self.finish().and_then(Result::err)
    }

    /// Stops the check where it is and joins it; `None` if it was already joined.
    pub fn finish(&mut self) -> Option<CheckResult> {
        self.cancel.store(true, Ordering::Relaxed);
        match self.handle.take()?.join() {
            Ok(result) => Some(result),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for TimelineCheck {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The check's pace: `true` once a bound of `bound_us` is within `CHECK_LEAD` of the
/// replay's clock (0 before the start), `false` when the run is over.
fn pace(bound_us: u64, scale: SpeedScale, start: &OnceLock<Instant>, cancel: &AtomicBool) -> bool {
    loop {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        let elapsed = start.get().map_or(Duration::ZERO, Instant::elapsed);
        if scale.offset(bound_us) <= elapsed + CHECK_LEAD {
            return true;
        }
        std::thread::sleep(PACE_STEP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_within_the_lead_goes_on_at_once() {
        let (start, cancel) = (OnceLock::new(), AtomicBool::new(false));
        let scale = SpeedScale::new(1.0);
        assert!(pace(0, scale, &start, &cancel));
        assert!(
            pace(900_000, scale, &start, &cancel),
            "0.9 s is within the lead"
        );
        // Twice as fast: 1.8 s of profile time is 0.9 s of wall time.
        assert!(pace(1_800_000, SpeedScale::new(2.0), &start, &cancel));
        // After a start 10 s ago, 10.5 s of profile time is within the lead.
        start.set(Instant::now() - Duration::from_secs(10)).unwrap();
        assert!(pace(10_500_000, scale, &start, &cancel));
    }

    #[test]
    fn a_bound_past_the_lead_waits_until_the_run_ends() {
        let start = OnceLock::new();
        let cancel = Arc::new(AtomicBool::new(false));
        let stopper = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                cancel.store(true, Ordering::Relaxed);
            })
        };
        let waited = Instant::now();
        // 5 s of profile time before any start: past the 1 s lead, so it waits for the stop.
        assert!(!pace(5_000_000, SpeedScale::new(1.0), &start, &cancel));
        assert!(waited.elapsed() >= Duration::from_millis(30));
        stopper.join().unwrap();
    }
}
