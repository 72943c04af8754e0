//! Waiting for due instants: sleep, then spin the last microseconds (`precise`), or sleep only.

use std::cell::Cell;
use std::time::{Duration, Instant};

use glommio::timer::Timer;

/// How the dispatcher waits for a due instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimingMode {
    /// Timer slack 1 ns, sleep until a calibrated margin ([`SpinMargin`]) before the
    /// instant, then spin.
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

/// Longest single sleep, so a stop request is noticed while waiting for a distant instant.
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// Lowers this thread's timer slack to 1 ns (Linux `PR_SET_TIMERSLACK`); without it a
/// sleep wakes late by about the default slack (50 µs). Returns false if the kernel refused.
pub fn set_precise_timer_slack() -> bool {
    // SAFETY: prctl(PR_SET_TIMERSLACK, 1) takes plain integers and only affects this thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) == 0 }
}

/// A reusable waiter for one dispatcher (one glommio timer, reset per wait).
pub struct DueWaiter {
    margin: SpinMargin,
    timer: Timer,
    /// Time spent spinning, in total.
    spun: Duration,
}

impl DueWaiter {
    /// A waiter; must be created inside a glommio executor.
    pub fn new(mode: TimingMode) -> DueWaiter {
        DueWaiter {
            margin: SpinMargin::new(mode),
            timer: Timer::new(Duration::ZERO),
            spun: Duration::ZERO,
        }
    }

    /// Waits until `due`, or until `stop` is set (checked at least every 50 ms).
    /// Returns immediately when `due` has passed.
    pub async fn wait_until(&mut self, due: Instant, stop: &dyn Fn() -> bool) {
        let margin = self.margin.get();
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
            let sleep = (left - margin).min(MAX_SLEEP);
            self.timer.reset(sleep);
            (&mut self.timer).await;
            self.margin
                .observe(Instant::now().saturating_duration_since(now + sleep));
        }
        self.spun += spin_until(due);
    }

    /// Time this waiter has spent spinning.
    pub fn spun(&self) -> Duration {
        self.spun
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

/// Spins until `due`; returns how long it spun.
pub fn spin_until(due: Instant) -> Duration {
    let from = Instant::now();
    let mut now = from;
    while now < due {
        std::hint::spin_loop();
        now = Instant::now();
    }
    now - from
}

/// How long before a due instant a precise wait stops sleeping and spins, calibrated from
/// how late its own timed waits wake: it tracks their 99th percentile, so that 99 % of due
/// instants are met by a spin no longer than the machine needs (a fixed margin either spins
/// for nothing on a quiet machine or wakes late on a busy one).
#[derive(Debug, Clone, Copy)]
pub struct SpinMargin {
    margin_ns: u64,
    /// Upper bound of the margin, in ns.
    max_ns: u64,
}

/// The margin before any wait has been observed.
const MARGIN_START: Duration = Duration::from_micros(50);
/// Bounds of the calibrated margin.
const MARGIN_MIN: Duration = Duration::from_micros(2);
const MARGIN_MAX: Duration = Duration::from_micros(300);
/// Upper bound of a readying margin ([`SpinMargin::for_readying`]): the loop sleeps, rather
/// than spins, through what readying leaves of it, so a large one costs no CPU.
const READYING_MAX: Duration = Duration::from_millis(2);
/// Step of the quantile tracker: a late wake raises the margin by 99 steps, an early one
/// lowers it by one, so it settles where 1 % of wakes are later than the margin.
const MARGIN_STEP_NS: u64 = 20;

impl SpinMargin {
    /// A margin of `MARGIN_START`; zero for `Relaxed` timing (never spin).
    pub fn new(mode: TimingMode) -> SpinMargin {
        SpinMargin {
            margin_ns: match mode {
                TimingMode::Precise => MARGIN_START.as_nanos() as u64,
                TimingMode::Relaxed => 0,
            },
            max_ns: MARGIN_MAX.as_nanos() as u64,
        }
    }

    /// A margin for readying an instant's requests before it (see the core's loop), which
    /// may grow to 2 ms: a burst of many requests takes long to ready.
    pub fn for_readying(mode: TimingMode) -> SpinMargin {
        SpinMargin {
            max_ns: READYING_MAX.as_nanos() as u64,
            ..SpinMargin::new(mode)
        }
    }

    /// The current margin.
    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.margin_ns)
    }

    /// A timed wait that was to end at some instant ended `late` after it.
    pub fn observe(&mut self, late: Duration) {
        if self.margin_ns == 0 {
            return;
        }
        let late = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
        self.margin_ns = if late > self.margin_ns {
            self.margin_ns + 99 * MARGIN_STEP_NS
        } else {
            self.margin_ns.saturating_sub(MARGIN_STEP_NS)
        }
        .clamp(MARGIN_MIN.as_nanos() as u64, self.max_ns);
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
    fn the_margin_settles_near_the_99th_percentile_of_lateness() {
        let mut m = SpinMargin::new(TimingMode::Precise);
        // Lateness uniform over 0..100 µs, in a fixed pseudo-random order.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            m.observe(Duration::from_nanos(x % 100_000));
        }
        let got = m.get();
        assert!(
            got >= Duration::from_micros(95) && got <= Duration::from_micros(101),
            "{got:?}"
        );
    }

    #[test]
    fn the_margin_stays_in_its_bounds_and_relaxed_never_spins() {
        let mut m = SpinMargin::new(TimingMode::Precise);
        for _ in 0..10_000 {
            m.observe(Duration::ZERO);
        }
        assert_eq!(m.get(), MARGIN_MIN);
        for _ in 0..10_000 {
            m.observe(Duration::from_secs(1));
        }
        assert_eq!(m.get(), MARGIN_MAX);
        let mut readying = SpinMargin::for_readying(TimingMode::Precise);
        for _ in 0..10_000 {
            readying.observe(Duration::from_secs(1));
        }
        assert_eq!(readying.get(), READYING_MAX);
        let mut relaxed = SpinMargin::new(TimingMode::Relaxed);
        relaxed.observe(Duration::from_millis(1));
        assert_eq!(relaxed.get(), Duration::ZERO);
        let mut relaxed = SpinMargin::for_readying(TimingMode::Relaxed);
        relaxed.observe(Duration::from_millis(1));
        assert_eq!(relaxed.get(), Duration::ZERO);
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
