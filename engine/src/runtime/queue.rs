//! A core's due requests waiting for a connection, with per-object order.
//!
//! A request is taken only if no earlier request with the same object key is in
//! flight on this core; since every key lives on one core, the server sees each
//! object's requests in profile order (kperf weakness 3 is fixed). Requests of
//! other keys overtake a blocked one; requests of the blocked key never do.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use crate::source::ReplaySource;

/// How far into the queue a free connection looks for a request whose key is free.
/// Bounds the cost of a hot key; requests further back wait (and the wait is in their lag).
pub const SCAN_LIMIT: usize = 1024;

/// How many places behind the front `prefetch_upcoming` asks for targets (for records
/// twice, for queue entries three times as far): a start takes ~8 µs (its send), far more
/// than a miss, and much further ahead the kernel's TCP work evicts what was fetched.
const PREFETCH_AHEAD: usize = 4;

/// One due request, waiting for a connection.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// Global run index.
    pub run: u32,
    /// Record index within the run.
    pub index: u32,
    /// Object-key hash.
    pub key: u64,
    /// Due instant.
    pub due: Instant,
}

/// Hashes an already-hashed key with one multiply (keys are FNV-1a outputs).
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The ready queue and the keys in flight.
#[derive(Debug)]
pub struct ReadyQueue {
    items: VecDeque<Pending>,
    in_flight: HashSet<u64, BuildHasherDefault<KeyHasher>>,
}

impl ReadyQueue {
    /// A queue preallocated for `capacity` waiting requests and `max_in_flight` connections.
    pub fn new(capacity: usize, max_in_flight: usize) -> ReadyQueue {
        let mut in_flight = HashSet::default();
        in_flight.reserve(max_in_flight.max(1) * 2);
        ReadyQueue {
            items: VecDeque::with_capacity(capacity),
            in_flight,
        }
    }

    /// Adds a due request at the back.
    pub fn push(&mut self, p: Pending) {
        self.items.push_back(p);
    }

    /// Hints the caches about what the requests a few places behind the front will read
    /// when they start: their queue entries, records and targets. Each is asked for once
    /// its predecessor in the chain should be cached, so the hint reads no cold memory.
    pub fn prefetch_upcoming(&self, source: &dyn ReplaySource) {
        let record = |p: &Pending| {
            source
                .run_records(p.run as usize)
                .and_then(|r| r.get(p.index as usize))
        };
        if let Some(p) = self.items.get(3 * PREFETCH_AHEAD) {
            crate::prefetch::prefetch(p);
        }
        if let Some(r) = self.items.get(2 * PREFETCH_AHEAD).and_then(record) {
            crate::prefetch::prefetch(r);
        }
        if let Some(r) = self.items.get(PREFETCH_AHEAD).and_then(record) {
            source.prefetch(r);
        }
    }

    /// Number of waiting requests.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no request waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Takes the first request whose key is not in flight and marks its key in flight.
    pub fn take(&mut self) -> Option<Pending> {
        let pos = self
            .items
            .iter()
            .take(SCAN_LIMIT)
            .position(|p| !self.in_flight.contains(&p.key))?;
        let p = self.items.remove(pos)?;
        self.in_flight.insert(p.key);
        Some(p)
    }

    /// Marks `key` as no longer in flight.
    pub fn release(&mut self, key: u64) {
        self.in_flight.remove(&key);
    }

    /// Drops every waiting request (on stop); returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.items.len();
        self.items.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(index: u32, key: u64) -> Pending {
        Pending {
            run: 0,
            index,
            key,
            due: Instant::now(),
        }
    }

    #[test]
    fn same_key_waits_other_keys_overtake() {
        let mut q = ReadyQueue::new(8, 4);
        q.push(p(0, 7));
        q.push(p(1, 7));
        q.push(p(2, 9));
        q.push(p(3, 7));
        assert_eq!(q.take().map(|x| x.index), Some(0));
        assert_eq!(q.take().map(|x| x.index), Some(2));
        assert!(q.take().is_none(), "key 7 and 9 are in flight");
        q.release(7);
        assert_eq!(q.take().map(|x| x.index), Some(1));
        q.release(7);
        q.release(9);
        assert_eq!(q.take().map(|x| x.index), Some(3));
        assert!(q.is_empty());
    }

    #[test]
    fn clear_drops_waiting() {
        let mut q = ReadyQueue::new(2, 1);
        q.push(p(0, 1));
        q.push(p(1, 2));
        assert_eq!(q.clear(), 2);
        assert!(q.take().is_none());
    }
}
