//! The blob store's index: the xxh3 of each distinct string → a 64-bit entry, 12 bytes a
//! slot.
//!
//! On tens of millions of distinct strings this table is most of the writer's memory, so
//! a slot keeps 32 bits of the hash (a fingerprint) beside the entry instead of all 64, in
//! an open-addressed table with linear probing. A fingerprint match is only a candidate:
//! the caller confirms it by comparing bytes and, if they differ, asks for the next one, so
//! a shorter fingerprint costs an occasional comparison, never a wrong reference.

/// The table is split by the hash's top bits: each part grows on its own, so a resize
/// holds one part's old slots beside the new ones, not the whole table's.
const PARTS: usize = 64;
const PART_SHIFT: u32 = 64 - PARTS.trailing_zeros();
/// A part grows by a quarter when it would be fuller than this (numerator / denominator):
/// at most 80 % full and, after a growth, 64 % (finer steps waste less memory at whatever
/// size a load ends; each entry is moved about four times in all).
const MAX_LOAD: (usize, usize) = (4, 5);
const MIN_SLOTS: usize = 16;
/// The entry of a free slot; callers never insert it.
pub(crate) const FREE: u64 = u64::MAX;

/// 12 bytes, 4-byte aligned: the entry is split so that no padding is added.
#[derive(Clone, Copy)]
struct Slot {
    fingerprint: u32,
    entry: [u32; 2],
}

impl Slot {
    const EMPTY: Slot = Slot {
        fingerprint: 0,
        entry: [u32::MAX; 2],
    };

    fn entry(&self) -> u64 {
        u64::from(self.entry[0]) | u64::from(self.entry[1]) << 32
    }
}

#[derive(Default)]
struct Part {
    slots: Vec<Slot>,
    len: usize,
}

impl Part {
    /// Where a fingerprint's probe starts (its share of the table, without a modulo).
    fn home(&self, fingerprint: u32) -> usize {
        ((u64::from(fingerprint) * self.slots.len() as u64) >> 32) as usize
    }

    fn place(&mut self, slot: Slot) {
        let mut at = self.home(slot.fingerprint);
        while self.slots[at].entry() != FREE {
            at = if at + 1 == self.slots.len() {
                0
            } else {
                at + 1
            };
        }
        self.slots[at] = slot;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() + self.slots.len() / 4).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![Slot::EMPTY; size]);
        for slot in old.into_iter().filter(|s| s.entry() != FREE) {
            self.place(slot);
        }
    }
}

/// Hash → entry, several entries possible for one hash (see the module's comment).
pub(crate) struct BlobIndex {
    parts: Vec<Part>,
}

impl Default for BlobIndex {
    fn default() -> Self {
        BlobIndex {
            parts: (0..PARTS).map(|_| Part::default()).collect(),
        }
    }
}

/// A lookup in progress: [`BlobIndex::next_candidate`] returns its candidates one by one.
pub(crate) struct Probe {
    part: usize,
    fingerprint: u32,
    at: usize,
    seen: usize,
}

fn split(hash: u64) -> (usize, u32) {
    (
        (hash >> PART_SHIFT) as usize,
        (hash >> (PART_SHIFT - 32)) as u32,
    )
}

impl BlobIndex {
    /// Starts a lookup of `hash`.
    pub(crate) fn probe(&self, hash: u64) -> Probe {
        let (part, fingerprint) = split(hash);
        let at = if self.parts[part].slots.is_empty() {
            0
        } else {
            self.parts[part].home(fingerprint)
        };
        Probe {
            part,
            fingerprint,
            at,
            seen: 0,
        }
    }

    /// The next entry stored under a hash that may be the probe's, if any.
    pub(crate) fn next_candidate(&self, probe: &mut Probe) -> Option<u64> {
        let slots = &self.parts[probe.part].slots;
        // A part is never full, so a free slot ends every probe; `seen` is a second stop.
        while probe.seen < slots.len() {
            let slot = slots[probe.at];
            probe.at = if probe.at + 1 == slots.len() {
                0
            } else {
                probe.at + 1
            };
            probe.seen += 1;
            let entry = slot.entry();
            if entry == FREE {
                probe.seen = slots.len();
                return None;
            }
            if slot.fingerprint == probe.fingerprint {
                return Some(entry);
            }
        }
        None
    }

    /// Replaces the first of `hash`'s candidate entries for which `change` gives a new
    /// entry (not [`FREE`]); returns whether one did.
    pub(crate) fn update(&mut self, hash: u64, mut change: impl FnMut(u64) -> Option<u64>) -> bool {
        let mut probe = self.probe(hash);
        while let Some(entry) = self.next_candidate(&mut probe) {
            if let Some(new) = change(entry) {
                debug_assert_ne!(new, FREE);
                let slots = &mut self.parts[probe.part].slots;
                // The candidate is the slot before the probe's position.
                let at = probe.at.checked_sub(1).unwrap_or(slots.len() - 1);
                slots[at].entry = [new as u32, (new >> 32) as u32];
                return true;
            }
        }
        false
    }

    /// Adds `entry` (not [`FREE`]) under `hash`, beside any entries already there.
    pub(crate) fn insert(&mut self, hash: u64, entry: u64) {
        debug_assert_ne!(entry, FREE);
        let (part, fingerprint) = split(hash);
        let part = &mut self.parts[part];
        if (part.len + 1) * MAX_LOAD.1 > part.slots.len() * MAX_LOAD.0 {
            part.grow();
        }
        part.place(Slot {
            fingerprint,
            entry: [entry as u32, (entry >> 32) as u32],
        });
        part.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xxhash_rust::xxh3::xxh3_64;

    fn candidates(index: &BlobIndex, hash: u64) -> Vec<u64> {
        let mut probe = index.probe(hash);
        std::iter::from_fn(|| index.next_candidate(&mut probe)).collect()
    }

    #[test]
    fn every_entry_is_found_through_growth() {
        let mut index = BlobIndex::default();
        let count = 200_000u64;
        for i in 0..count {
            index.insert(xxh3_64(&i.to_le_bytes()), i << 24 | 7);
        }
        assert_eq!(std::mem::size_of::<Slot>(), 12);
        for i in 0..count {
            let found = candidates(&index, xxh3_64(&i.to_le_bytes()));
            assert!(found.contains(&(i << 24 | 7)), "entry {i} lost: {found:?}");
        }
        assert!(candidates(&index, xxh3_64(b"never inserted")).len() <= 1);
        let slots: usize = index.parts.iter().map(|p| p.slots.len()).sum();
        assert!(slots * 4 <= count as usize * 8, "{slots} slots for {count}");
    }

    /// Entries under one hash, or under hashes with the same part and fingerprint, are all
    /// candidates, in the order they were added.
    #[test]
    fn equal_fingerprints_keep_every_entry() {
        let mut index = BlobIndex::default();
        let hash = 0xdead_beef_0123_4567;
        let twin = hash ^ 0x1; // differs below the fingerprint's bits
        index.insert(hash, 1);
        index.insert(twin, 2);
        index.insert(hash, 3);
        assert_eq!(candidates(&index, hash), vec![1, 2, 3]);
        assert_eq!(candidates(&index, twin), vec![1, 2, 3]);
        assert_eq!(candidates(&index, hash ^ 1 << 40), Vec::<u64>::new());
        assert_eq!(candidates(&BlobIndex::default(), hash), Vec::<u64>::new());
    }

    /// An update changes the one entry it matches, in place (growth may reorder candidates).
    #[test]
    fn update_changes_only_the_matching_entry() {
        let mut index = BlobIndex::default();
        let hash = 0xdead_beef_0123_4567;
        for entry in 1..=20 {
            index.insert(hash, entry);
        }
        assert!(index.update(hash, |e| (e == 13).then_some(1300)));
        assert!(!index.update(hash, |e| (e == 13).then_some(1)));
        assert!(!index.update(hash ^ 1 << 40, |_| Some(5)));
        let mut want: Vec<u64> = (1..=20).collect();
        want[12] = 1300;
        let mut found = candidates(&index, hash);
        found.sort_unstable();
        want.sort_unstable();
        assert_eq!(found, want);
    }
}
