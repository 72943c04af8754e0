//! The process-wide stop flag (set by Ctrl-C / SIGTERM) and the bound on exec credential
//! plugins: what the blocking phases outside the executors (kubeconfig resolution, exec
//! plugins run on any thread) consult, so that a signal or a hung plugin never holds the
//! engine past its own limits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Default bound on one exec credential plugin run (`--exec-timeout`).
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(60);

static EXEC_TIMEOUT_MS: AtomicU64 = AtomicU64::new(DEFAULT_EXEC_TIMEOUT.as_millis() as u64);

/// The flag the signal handlers set; the same `Arc` every time.
pub fn stop_flag() -> Arc<AtomicBool> {
    STOP.get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone()
}

/// Whether a stop was asked for.
pub fn stopped() -> bool {
    STOP.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// Sets the longest an exec credential plugin may run.
pub fn set_exec_timeout(limit: Duration) {
    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
    EXEC_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// The longest an exec credential plugin may run.
pub fn exec_timeout() -> Duration {
    Duration::from_millis(EXEC_TIMEOUT_MS.load(Ordering::Relaxed))
}
