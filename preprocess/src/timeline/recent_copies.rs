//! In-memory copies of the most recently stored short strings, so that the blob store can
//! confirm a hit on one without reading its spool.
//!
//! Memory is bounded, so the copies form a circular log: a new copy overwrites the oldest
//! ones, and the caller is told of each (`evicted`) so that its index entry stops naming a
//! copy. An entry that names a copy therefore always names its own, and a confirmation
//! from a copy is exact. Short strings that repeat (names, paths) mostly do so while their
//! object lives; a string confirmed from disk is copied again, so long-lived strings that
//! keep coming back stay in memory too.

use std::collections::VecDeque;

/// A copy starts with its string's hash (8 bytes) and length (4 bytes), little-endian.
const HEADER: usize = 12;
/// Copies start on 4-byte boundaries: a copy's slot is its offset / `ALIGN`.
pub(crate) const ALIGN: usize = 4;

/// The copies (see the module's comment).
pub(crate) struct RecentCopies {
    /// Grows up to `capacity`, then is reused from its start.
    ring: Vec<u8>,
    capacity: usize,
    /// Where the next copy goes.
    head: usize,
    /// Offsets of the live copies, oldest first: those of the previous lap at or after
    /// `head`, then those of this lap, before it.
    live: VecDeque<u32>,
}

impl RecentCopies {
    /// Copies in at most `capacity` bytes (below 4 GiB).
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity <= u32::MAX as usize, "offsets are kept as u32");
        RecentCopies {
            ring: Vec::new(),
            capacity,
            head: 0,
            live: VecDeque::new(),
        }
    }

    /// The bytes copied at `slot` (a slot [`Self::push`] returned and no eviction has
    /// reported since).
    pub(crate) fn get(&self, slot: u64) -> &[u8] {
        let at = slot as usize * ALIGN;
        let (_, len) = self.header(at);
        &self.ring[at + HEADER..at + HEADER + len]
    }

    /// The hash and length written at the start of the copy at `at`.
    fn header(&self, at: usize) -> (u64, usize) {
        let mut hash = [0u8; 8];
        let mut len = [0u8; 4];
        hash.copy_from_slice(&self.ring[at..at + 8]);
        len.copy_from_slice(&self.ring[at + 8..at + HEADER]);
        (u64::from_le_bytes(hash), u32::from_le_bytes(len) as usize)
    }

    /// Copies `bytes`, whose hash is `hash`, and returns its slot; `None` if it can never
    /// fit. Each older copy this overwrites is first reported as `evicted(hash, slot)`.
    pub(crate) fn push(
        &mut self,
        hash: u64,
        bytes: &[u8],
        mut evicted: impl FnMut(u64, u64),
    ) -> Option<u64> {
        let need = (HEADER + bytes.len()).next_multiple_of(ALIGN);
        if need > self.capacity {
            return None;
        }
        if self.head + need > self.capacity {
            // The previous lap's copies left after `head` go too, so that the oldest copy
            // is always the next one overwritten.
            while let Some(&at) = self.live.front() {
                if (at as usize) < self.head {
                    break;
                }
                self.live.pop_front();
                self.report_evicted(at as usize, &mut evicted);
            }
            self.head = 0;
        }
        let end = self.head + need;
        while let Some(&at) = self.live.front() {
            let at = at as usize;
            if at < self.head || at >= end {
                break;
            }
            self.live.pop_front();
            self.report_evicted(at, &mut evicted);
        }
        if self.ring.len() < end {
            self.ring.resize(end, 0);
        }
        let at = self.head;
        self.ring[at..at + 8].copy_from_slice(&hash.to_le_bytes());
        self.ring[at + 8..at + HEADER].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.ring[at + HEADER..at + HEADER + bytes.len()].copy_from_slice(bytes);
        self.live.push_back(at as u32);
        self.head = end;
        Some((at / ALIGN) as u64)
    }

    /// Tells the caller that the copy at `at` (already off `live`) is being overwritten.
    fn report_evicted(&self, at: usize, evicted: &mut impl FnMut(u64, u64)) {
        let (hash, _) = self.header(at);
        evicted(hash, (at / ALIGN) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every copy stays readable until it is reported evicted, each eviction is reported
    /// once, and copies go oldest first, over several laps of strings of mixed lengths.
    #[test]
    fn copies_live_until_reported_and_go_oldest_first() {
        let mut copies = RecentCopies::new(1000);
        let mut alive: Vec<(u64, u64, Vec<u8>)> = Vec::new();
        for i in 0..2000u64 {
            let bytes = vec![b'a' + (i % 26) as u8; (i as usize * 7) % 90];
            let mut gone = Vec::new();
            let slot = copies
                .push(i, &bytes, |hash, slot| gone.push((hash, slot)))
                .unwrap();
            for (hash, slot) in gone {
                let oldest = alive.remove(0);
                assert_eq!((oldest.0, oldest.1), (hash, slot), "copy {i}");
            }
            alive.push((i, slot, bytes));
            for (hash, slot, bytes) in &alive {
                assert_eq!(copies.get(*slot), bytes.as_slice(), "copy {hash} at {i}");
            }
            let held: usize = alive
                .iter()
                .map(|(_, _, b)| (HEADER + b.len()).next_multiple_of(ALIGN))
                .sum();
            assert!(held <= 1000, "{held} bytes held");
        }
        assert!(alive.len() > 10, "only {} copies held", alive.len());
    }

    #[test]
    fn a_string_larger_than_the_ring_is_not_copied() {
        let mut copies = RecentCopies::new(64);
        assert_eq!(
            copies.push(1, &[0; 60], |_, _| panic!("nothing to evict")),
            None
        );
        assert_eq!(
            copies.push(2, &[7; 52], |_, _| panic!("nothing to evict")),
            Some(0)
        );
        assert_eq!(copies.get(0), &[7; 52]);
    }
}
