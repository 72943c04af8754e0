//! The server's pace, and the pause it allows the core's loop when the core is behind its
//! schedule (the HTTP/2 pool keeps one; over HTTP/1.1 every request has its own connection,
//! so its sends and receives stay one per request however the loop gathers, and a pause
//! only costs wake-ups: measured, it lowered requests per CPU-second).
//!
//! When the request waiting longest is late by [`BACKLOG`] or more and none can start until
//! answers free room, the server is the limit. A loop faster than the server's pace would
//! otherwise wake for each answer alone and send the request it frees alone: a `send`, a
//! TLS record, an ACK and a wake-up of the server each. After a pause, the answers that came
//! are read together and their successors leave together, in one `send`, as a
//! client slower than the server's pace would send them. The pause is a quarter of the time
//! the server needs for the requests in flight at its measured pace, so it never runs out of
//! work, within [`GATHER_MIN`]..=[`GATHER_MAX`]. Answers read after a pause carry the time
//! they were read: their latency reads up to the pause late. Only backlog pauses; a request
//! on schedule never waits for one.

use std::time::{Duration, Instant};

/// A waiting request due this long ago or more is backlog.
pub(super) const BACKLOG: Duration = Duration::from_millis(1);
/// Longest and shortest pause.
const GATHER_MAX: Duration = Duration::from_micros(200);
const GATHER_MIN: Duration = Duration::from_micros(20);

/// The mean time between the server's answers while requests waited for room.
#[derive(Debug, Default)]
pub(super) struct Pace {
    /// Requests answered so far.
    answered: u64,
    /// The mean time between answers (a moving average).
    gap: Option<Duration>,
    /// The last look: when, how many were answered then, and whether requests were waiting
    /// for room then (only such spans measure the server's pace: it was never short of
    /// work).
    looked: Option<(Instant, u64, bool)>,
}

impl Pace {
    /// One more request was answered.
    pub(super) fn answered(&mut self) {
        self.answered += 1;
    }

    /// Whether a look would change anything: an answer came since the last one (or none was
    /// taken yet). The loop asks before it reads the clock.
    pub(super) fn has_news(&self) -> bool {
        self.looked
            .is_none_or(|(_, answered, _)| answered != self.answered)
    }

    /// Takes a look at `now`, once the loop has started what it could; `waiting`: requests
    /// still wait for room (the span from now on measures the server's pace).
    pub(super) fn look(&mut self, now: Instant, waiting: bool) {
        if let Some((at, answered, true)) = self.looked {
            let n = self.answered - answered;
            if n == 0 {
                return;
            }
            let gap = now.saturating_duration_since(at) / n as u32;
            self.gap = Some(self.gap.map_or(gap, |g| (g * 7 + gap) / 8));
        }
        self.looked = Some((now, self.answered, waiting));
    }

    /// The pause before reading completions, if the core is behind: `waiting_since` is when
    /// the request waiting longest was due, `full` says no waiting request can start now,
    /// `in_flight` how many the server has.
    pub(super) fn pause(
        &self,
        now: Instant,
        waiting_since: Option<Instant>,
        full: bool,
        in_flight: usize,
    ) -> Option<Duration> {
        if !full {
            return None;
        }
        if now.saturating_duration_since(waiting_since?) < BACKLOG {
            return None;
        }
        let pause = (self.gap? * in_flight as u32 / 4).min(GATHER_MAX);
        (pause >= GATHER_MIN).then_some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn the_pace_is_measured_only_over_spans_in_which_requests_waited() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.look(t0, false);
        // 10 answers in 1 ms with nothing waiting: the server was short of work, not slow.
        (0..10).for_each(|_| pace.answered());
        pace.look(t0 + us(1000), true);
        assert_eq!(pace.gap, None);
        // 10 answers in 100 µs while requests waited: 10 µs each.
        (0..10).for_each(|_| pace.answered());
        pace.look(t0 + us(1100), true);
        assert_eq!(pace.gap, Some(us(10)));
        // A look with no answer since changes nothing; the next span averages in.
        assert!(!pace.has_news());
        pace.look(t0 + us(1150), true);
        (0..5).for_each(|_| pace.answered());
        assert!(pace.has_news());
        pace.look(t0 + us(1200), true);
        assert_eq!(pace.gap, Some((us(10) * 7 + us(20)) / 8));
    }

    #[test]
    fn only_a_full_core_behind_its_schedule_pauses_and_within_bounds() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.look(t0, true);
        (0..10).for_each(|_| pace.answered());
        pace.look(t0 + us(100), true);
        let now = t0 + us(5000);
        let late = Some(now - Duration::from_millis(2));
        // 64 in flight at 10 µs each: a quarter of 640 µs; 128: held to the longest pause.
        assert_eq!(pace.pause(now, late, true, 64), Some(us(160)));
        assert_eq!(pace.pause(now, late, true, 128), Some(GATHER_MAX));
        // Too short to be worth a sleep.
        assert_eq!(pace.pause(now, late, true, 4), None);
        // Room to start a request, or nothing late by BACKLOG, or nothing waiting: no pause.
        assert_eq!(pace.pause(now, late, false, 64), None);
        assert_eq!(pace.pause(now, Some(now - us(500)), true, 64), None);
        assert_eq!(pace.pause(now, None, true, 64), None);
        // No pace measured yet: no pause.
        assert_eq!(Pace::default().pause(now, late, true, 64), None);
    }
}
