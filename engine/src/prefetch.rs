//! Cache prefetch hints for the hot path.
//!
//! Unlike wrk's one request sent over and over, a replay reads fresh data for every request:
//! its queue entry, record and target (the timeline is read once, in time order across many
//! shards) and, when it completes, its label's latencies. By then the kernel's TCP work has
//! flushed them from the caches; asking for them a few requests ahead hides the misses.

/// Hints the CPU to bring the cache line holding `p` into every cache level. A hint only:
/// it never faults and never changes memory, whatever `p` points to.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 has no architectural effect (no fault, even on an unmapped
    // address), and SSE is part of x86_64's baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Hints the lines of the first `max_lines` cache lines of `bytes`.
#[inline(always)]
pub fn prefetch_bytes(bytes: &[u8], max_lines: usize) {
    let lines = bytes.len().div_ceil(64).min(max_lines);
    for line in 0..lines {
        prefetch(bytes[line * 64..].as_ptr());
    }
}
