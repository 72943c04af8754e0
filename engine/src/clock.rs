//! Waiting for due instants: sleep, then spin the last microseconds (`precise`), or sleep only.

use std::cell::Cell;
use std::time::{Duration, Instant};

use glommio::timer::Timer;

/// How the dispatcher waits for a due instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimingMode {
    /// Timer slack 1 ns, sleep until `SPIN_MARGIN` before the instant, then spin.
    Precise,
    /// Sleep only (cheaper on CPU, wakes tens of µs late).
    Relaxed,
}

impl TimingMode {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TimingMode::Precise => "precise",
            TimingMode::Relaxed => "relaxed",
        }
    }
}

/// How long before a due instant a precise wait stops sleeping and starts spinning.
/// Inside a replaying executor (sockets in flight) glommio's timer wakes ~70 µs late at the
/// median, not the 22–33 µs of an idle one: with a 40 µs margin the send lag at 1k/s was
/// 27–32 µs at the median, with 120 µs it is 5 µs (spin cost: ~50 µs per due instant).
pub const SPIN_MARGIN: Duration = Duration::from_micros(120);

/// Longest single sleep, so a stop request is noticed while waiting for a distant instant.
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// Lowers this thread's timer slack to 1 ns (Linux `PR_SET_TIMERSLACK`); without it a
/// sleep wakes 50–80 µs late. Returns false if the kernel refused.
pub fn set_precise_timer_slack() -> bool {
    // SAFETY: prctl(PR_SET_TIMERSLACK, 1) takes plain integers and only affects this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) == 0 }
}

/// A reusable waiter for one dispatcher (one glommio timer, reset per wait).
pub struct DueWaiter {
    mode: TimingMode,
    timer: Timer,
}

impl DueWaiter {
    /// A waiter; must be created inside a glommio executor.
    pub fn new(mode: TimingMode) -> DueWaiter {
        DueWaiter {
            mode,
            timer: Timer::new(Duration::ZERO),
        }
    }

    /// Waits until `due`, or until `stop` is set (checked at least every 50 ms).
    /// Returns immediately when `due` has passed.
    pub async fn wait_until(&mut self, due: Instant, stop: &dyn Fn() -> bool) {
        let margin = match self.mode {
            TimingMode::Precise => SPIN_MARGIN,
            TimingMode::Relaxed => Duration::ZERO,
        };
        loop {
            if stop() {
                return;
            }
            let now = Instant::now();
            if now >= due {
                return;
            }
            let left = due - now;
            if left <= margin {
                break;
            }
            self.timer.reset((left - margin).min(MAX_SLEEP));
            (&mut self.timer).await;
        }
        while Instant::now() < due {
            std::hint::spin_loop();
        }
    }
}

impl DueWaiter {
    /// Sleeps for `d` on the reusable timer. A short pause lets every runnable task and
    /// the reactor (pending I/O) run before the caller continues.
    pub async fn pause(&mut self, d: Duration) {
        self.timer.reset(d);
        (&mut self.timer).await;
    }
}

/// Converts profile time (µs) to a wall offset at a replay speed, without per-call division.
#[derive(Debug, Clone, Copy)]
pub struct SpeedScale {
    ns_per_us: f64,
}

impl SpeedScale {
    /// `speed` > 0: 2.0 replays twice as fast.
    pub fn new(speed: f64) -> SpeedScale {
        SpeedScale {
            ns_per_us: 1000.0 / speed,
        }
    }

    /// Offset from the replay start of a request due at `due_us`.
    pub fn offset(&self, due_us: u64) -> Duration {
        Duration::from_nanos((due_us as f64 * self.ns_per_us) as u64)
    }
}

/// A flag set once, polled by loops on one core.
#[derive(Debug, Default)]
pub struct LocalFlag(Cell<bool>);

impl LocalFlag {
    /// Sets the flag.
    pub fn set(&self) {
        self.0.set(true);
    }

    /// Whether the flag is set.
    pub fn get(&self) -> bool {
        self.0.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_scales_offsets() {
        assert_eq!(
            SpeedScale::new(1.0).offset(1_500),
            Duration::from_micros(1_500)
        );
        assert_eq!(
            SpeedScale::new(2.0).offset(1_000_000),
            Duration::from_millis(500)
        );
        assert_eq!(SpeedScale::new(0.5).offset(10), Duration::from_micros(20));
    }

    #[test]
    fn wait_returns_at_or_after_due_and_stops_early() {
        glommio::LocalExecutorBuilder::default()
            .io_memory(1 << 20)
            .make()
            .expect("executor")
            .run(async {
                for mode in [TimingMode::Precise, TimingMode::Relaxed] {
                    let mut w = DueWaiter::new(mode);
                    let due = Instant::now() + Duration::from_millis(3);
                    w.wait_until(due, &|| false).await;
                    assert!(Instant::now() >= due);
                    let start = Instant::now();
                    w.wait_until(start + Duration::from_secs(3600), &|| true)
                        .await;
                    assert!(Instant::now() < start + Duration::from_secs(3600));
                }
            });
    }
}
