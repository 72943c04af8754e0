//! Which `h2` futures asked to be polled again. Every stream slot and every connection has a
//! waker made once, with the pool; waking one sets its bit here, and the loop polls exactly the
//! woken ones (never all streams after each event). A `Waker` must be `Send + Sync`, hence the
//! atomics; they are only ever touched by the core's own thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

/// A bit per waker.
#[derive(Debug)]
pub(super) struct WakeSet {
    words: Box<[AtomicU64]>,
}

impl WakeSet {
    /// Room for wakers `0..n`.
    pub(super) fn new(n: usize) -> Arc<WakeSet> {
        let words = (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Arc::new(WakeSet { words })
    }

    /// Marks `index` woken.
    pub(super) fn set(&self, index: usize) {
        self.words[index / 64].fetch_or(1 << (index % 64), Ordering::Relaxed);
    }

    /// Whether nothing is woken.
    pub(super) fn is_empty(&self) -> bool {
        self.words.iter().all(|w| w.load(Ordering::Relaxed) == 0)
    }

    /// Appends the woken indexes to `out`, in order, and clears them.
    pub(super) fn take(&self, out: &mut Vec<usize>) {
        for (w, word) in self.words.iter().enumerate() {
            if word.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut bits = word.swap(0, Ordering::Relaxed);
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                out.push(w * 64 + b);
                bits &= bits - 1;
            }
        }
    }
}

struct Bit {
    set: Arc<WakeSet>,
    index: usize,
}

impl Wake for Bit {
    fn wake(self: Arc<Self>) {
        self.set.set(self.index);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.set.set(self.index);
    }
}

/// The waker of `index` in `set`.
pub(super) fn waker(set: &Arc<WakeSet>, index: usize) -> Waker {
    Waker::from(Arc::new(Bit {
        set: set.clone(),
        index,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn woken_indexes_come_back_once_each_in_order() {
        let set = WakeSet::new(130);
        let wakers: Vec<Waker> = (0..130).map(|i| waker(&set, i)).collect();
        for i in [129, 3, 64, 3] {
            wakers[i].wake_by_ref();
        }
        // Waking by value (consuming a clone) sets the bit too.
        let owned = wakers[0].clone();
        owned.wake();
        let mut out = Vec::new();
        set.take(&mut out);
        assert_eq!(out, vec![0, 3, 64, 129]);
        out.clear();
        set.take(&mut out);
        assert!(out.is_empty());
    }
}
