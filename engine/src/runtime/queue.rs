//! A core's due requests waiting for a connection, with per-object order.
//!
//! A request is taken only if no earlier request with the same object key is in
//! flight on this core; since every key lives on one core, the server sees each
//! object's requests in profile order (kperf weakness 3 is fixed). Requests of
//! other keys overtake a blocked one; requests of the blocked key never do.
//!
//! `take` returns the earliest waiting request whose key is free. Requests met at the front
//! whose key is busy are parked, in per-key chains, instead of being scanned again on every
//! take: a hot key (a lease renewed over and over) costs each of its requests one park and
//! one unpark, not a scan of everything queued behind it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use crate::source::ReplaySource;

/// How many places behind the front `prefetch_upcoming` asks for targets (for records
/// twice, for queue entries three times as far): a start (its send) takes far longer than
/// a miss, and much further ahead the kernel's TCP work evicts what was fetched.
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

type KeyBuild = BuildHasherDefault<KeyHasher>;

/// A parked request and the next one of its key (`NONE` if it is the last).
#[derive(Debug, Clone, Copy)]
struct Parked {
    pending: Pending,
    /// Order of parking, which is queue order: every parked request was ahead of every
    /// request still in `items`.
    seq: u64,
    next: u32,
}

const NONE: u32 = u32::MAX;

/// The parked requests of one key, oldest first (indices into `ReadyQueue::parked`).
#[derive(Debug, Clone, Copy)]
struct Chain {
    head: u32,
    tail: u32,
}

/// The ready queue and the keys in flight.
#[derive(Debug)]
pub struct ReadyQueue {
    /// Requests in due order, none of them parked.
    items: VecDeque<Pending>,
    in_flight: HashSet<u64, KeyBuild>,
    /// Storage of parked requests; `free` lists the unused slots.
    parked: Vec<Parked>,
    free: Vec<u32>,
    parked_count: usize,
    /// Keys with parked requests.
    chains: HashMap<u64, Chain, KeyBuild>,
    /// Keys with parked requests and none in flight, by the park order of their oldest.
    ready: BinaryHeap<Reverse<(u64, u64)>>,
    next_seq: u64,
}

impl ReadyQueue {
    /// A queue preallocated for `capacity` waiting requests and `max_in_flight` connections.
    pub fn new(capacity: usize, max_in_flight: usize) -> ReadyQueue {
        let mut in_flight = HashSet::default();
        in_flight.reserve(max_in_flight.max(1) * 2);
        let mut chains = HashMap::default();
        chains.reserve(max_in_flight.max(1) * 2);
        ReadyQueue {
            items: VecDeque::with_capacity(capacity),
            in_flight,
            parked: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            parked_count: 0,
            chains,
            ready: BinaryHeap::with_capacity(max_in_flight.max(1) * 2),
            next_seq: 0,
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

    /// Number of waiting requests (parked ones included).
    pub fn len(&self) -> usize {
        self.items.len() + self.parked_count
    }

    /// When the first request waiting in due order was due (parked requests aside).
    pub fn front_due(&self) -> Option<std::time::Instant> {
        self.items.front().map(|p| p.due)
    }

    /// Whether no request waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the earliest request whose key is not in flight and marks its key in flight.
    #[inline]
    pub fn take(&mut self) -> Option<Pending> {
        // A parked request whose key came free is older than anything in `items`.
        if let Some(Reverse((_, key))) = self.ready.pop() {
            let p = self.unpark_oldest(key);
            let fresh = self.in_flight.insert(key);
            debug_assert!(fresh, "per-object order: a key went out twice at once");
            return Some(p);
        }
        while let Some(p) = self.items.pop_front() {
            let blocked = self.in_flight.contains(&p.key)
                || (!self.chains.is_empty() && self.chains.contains_key(&p.key));
            if blocked {
                self.park(p);
                continue;
            }
            let fresh = self.in_flight.insert(p.key);
            debug_assert!(fresh, "per-object order: a key went out twice at once");
            return Some(p);
        }
        None
    }

    /// Marks `key` as no longer in flight; its oldest parked request (if any) may go next.
    #[inline]
    pub fn release(&mut self, key: u64) {
        if !self.in_flight.remove(&key) {
            return;
        }
        if !self.chains.is_empty() {
            self.ready_if_parked(key);
        }
    }

    /// `key` came free: its oldest parked request, if any, joins the ready ones.
    #[inline(never)]
    fn ready_if_parked(&mut self, key: u64) {
        if let Some(chain) = self.chains.get(&key) {
            let seq = self.parked[chain.head as usize].seq;
            self.ready.push(Reverse((seq, key)));
        }
    }

    /// Drops every waiting request (on stop); returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.len();
        self.items.clear();
        self.parked.clear();
        self.free.clear();
        self.parked_count = 0;
        self.chains.clear();
        self.ready.clear();
        n
    }

    /// Appends `p` to its key's chain (the key is in flight, or has older parked requests).
    #[inline(never)]
    fn park(&mut self, p: Pending) {
        let node = Parked {
            pending: p,
            seq: self.next_seq,
            next: NONE,
        };
        self.next_seq += 1;
        let i = match self.free.pop() {
            Some(i) => {
                self.parked[i as usize] = node;
                i
            }
            None => {
                self.parked.push(node);
                (self.parked.len() - 1) as u32
            }
        };
        self.parked_count += 1;
        match self.chains.get_mut(&p.key) {
            Some(chain) => {
                self.parked[chain.tail as usize].next = i;
                chain.tail = i;
            }
            None => {
                self.chains.insert(p.key, Chain { head: i, tail: i });
            }
        }
    }

    /// Removes and returns the oldest parked request of `key`, which has one.
    #[inline(never)]
    fn unpark_oldest(&mut self, key: u64) -> Pending {
        let chain = self
            .chains
            .get_mut(&key)
            .expect("a key is ready only while it has parked requests");
        let head = chain.head;
        let node = self.parked[head as usize];
        chain.head = node.next;
        if node.next == NONE {
            self.chains.remove(&key);
        }
        self.free.push(head);
        self.parked_count -= 1;
        node.pending
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
        q.push(p(2, 1));
        assert_eq!(q.take().map(|x| x.index), Some(0));
        assert_eq!(q.take().map(|x| x.index), Some(1), "request 2 is parked");
        assert_eq!(q.len(), 1);
        assert_eq!(q.clear(), 1);
        q.release(1);
        assert!(q.take().is_none());
        assert!(q.is_empty());
    }

    #[test]
    fn a_hot_key_does_not_hold_back_a_request_far_behind_it() {
        let mut q = ReadyQueue::new(8, 4);
        for i in 0..5000 {
            q.push(p(i, 1));
        }
        q.push(p(5000, 2));
        assert_eq!(q.take().map(|x| x.index), Some(0));
        assert_eq!(q.take().map(|x| x.index), Some(5000));
        assert_eq!(q.len(), 4999);
        q.release(1);
        assert_eq!(q.take().map(|x| x.index), Some(1));
    }

    /// The queue's rule, written plainly: the first waiting request whose key is free.
    #[derive(Default)]
    struct Model {
        items: Vec<Pending>,
        in_flight: HashSet<u64>,
    }

    impl Model {
        fn take(&mut self) -> Option<Pending> {
            let pos = self
                .items
                .iter()
                .position(|p| !self.in_flight.contains(&p.key))?;
            let p = self.items.remove(pos);
            self.in_flight.insert(p.key);
            Some(p)
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u64),
        Take,
        /// Releases the n-th key in flight (modulo their number).
        Release(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (0u64..6).prop_map(Op::Push),
            2 => Just(Op::Take),
            2 => (0usize..8).prop_map(Op::Release),
        ]
    }

    proptest::proptest! {
        #[test]
        fn takes_what_a_plain_scan_would(ops in proptest::collection::vec(op(), 1..300)) {
            let mut q = ReadyQueue::new(4, 2);
            let mut model = Model::default();
            let mut taken: Vec<u64> = Vec::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push(key) => {
                        q.push(p(n as u32, key));
                        model.items.push(p(n as u32, key));
                    }
                    Op::Take => {
                        let (got, want) = (q.take(), model.take());
                        proptest::prop_assert_eq!(got.map(|x| x.index), want.map(|x| x.index));
                        if let Some(x) = got {
                            taken.push(x.key);
                        }
                    }
                    Op::Release(i) if !taken.is_empty() => {
                        let key = taken.swap_remove(i % taken.len());
                        q.release(key);
                        model.in_flight.remove(&key);
                    }
                    Op::Release(_) => {}
                }
                proptest::prop_assert_eq!(q.len(), model.items.len());
            }
        }
    }
}
