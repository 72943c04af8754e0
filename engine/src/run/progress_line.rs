//! The progress line `engine run` shows on a terminal: what the cores (and the WATCH lane)
//! publish, summed every 500 ms.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::runtime::Shared;

/// Prints a progress line on stderr every 500 ms until every core has finished.
pub(super) fn progress_loop(
    shared: &Shared,
    scheduled: u64,
    span_us: u64,
    start: Instant,
    speed: f64,
) {
    let mut err = std::io::stderr();
    loop {
        let all_done = shared
            .progress
            .iter()
            .all(|p| p.finished.load(Ordering::Acquire));
        let (mut sent, mut done, mut failed, mut lag, mut pos) = (0, 0, 0, 0, 0);
        for p in shared.progress.iter() {
            sent += p.sent.load(Ordering::Relaxed);
            done += p.done.load(Ordering::Relaxed);
            failed += p.failed.load(Ordering::Relaxed);
            lag = lag.max(p.lag_p99_us.load(Ordering::Relaxed));
            pos = pos.max(p.position_us.load(Ordering::Relaxed));
        }
        let elapsed = Instant::now()
            .saturating_duration_since(start)
            .as_secs_f64();
        let _ = write!(
            err,
            "\r\x1b[2K[{elapsed:7.1}s] timeline {:.1}/{:.1}s  sent {sent}/{scheduled}  in flight {}  errors {failed}  lag p99 {lag} µs",
            pos as f64 / 1e6 / speed,
            span_us as f64 / 1e6 / speed,
            sent.saturating_sub(done),
        );
        let _ = err.flush();
        if all_done {
            let _ = writeln!(err);
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
