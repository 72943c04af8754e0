//! The writer's blob area: interned byte strings streamed to a temporary file.
//!
//! Memory holds an index from the xxh3 of each distinct string to where it is stored
//! (`blob_index`); the bytes go to disk. A hit is confirmed by comparing the stored bytes
//! (a collision must not merge two different bodies); when no candidate matches, the new
//! string is stored and indexed beside the others. The first `RESIDENT_LIMIT` bytes of the area are
//! also kept in memory, and so are the most recent short strings (`recent_copies`), so most
//! confirmations need no read from disk.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[cfg(test)]
use xxhash_rust::xxh3::xxh3_64;

use super::blob_index::BlobIndex;
use super::error::TimelineError;
use super::recent_copies::{RecentCopies, ALIGN};
use super::record::BlobRef;

/// Keys are already xxh3 hashes: hashing them again would only cost time.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A hash map keyed by a precomputed 64-bit hash.
pub(crate) type HashKeyedMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

const WRITE_BUFFER: usize = 1 << 20;
/// Bytes of the blob area kept in memory for comparisons (bounded memory beyond it).
const RESIDENT_LIMIT: usize = 32 << 20;
/// Strings up to this length also get a copy of their own (targets, names, labels: the
/// strings that repeat), so that a hit on one stored late needs no read from disk.
const SMALL_MAX: usize = 256;
/// Bytes of such copies kept at most (the most recent ones).
const SMALL_LIMIT: usize = 32 << 20;
const _: () = assert!(
    SMALL_LIMIT / ALIGN < NO_COPY as usize,
    "a slot reaches every copy"
);
/// The slot of a string without a copy.
const NO_COPY: u64 = (1 << SLOT_BITS) - 1;
/// An index entry packs the offset (below 2^40) and the copy's slot into one u64, so the
/// map costs what it did before the copies (it is most of the writer's memory).
const SLOT_BITS: u32 = 24;
/// Strings stored at or beyond this offset are not indexed (they may then be stored twice);
/// the last offset below 2^40 is left out too, so that no entry is the index's free mark.
const MAX_INDEXED_OFFSET: u64 = (1 << (64 - SLOT_BITS)) - 1;

/// Interned strings, stored once each, in a temporary file.
pub(crate) struct BlobStore {
    file: File,
    path: PathBuf,
    buffer: Vec<u8>,
    flushed_len: u64,
    /// xxh3 → offset << 24 | slot of its copy in `small` (`NO_COPY` if none). The length is
    /// not kept: a hit is confirmed by comparing the new bytes with the stored bytes, which
    /// is all a reference needs.
    index: BlobIndex,
    /// Copies of recent short strings (see `SMALL_MAX`).
    small: RecentCopies,
    compare_buf: Vec<u8>,
    /// A copy of the area's first bytes (up to `RESIDENT_LIMIT`).
    resident: Vec<u8>,
    resident_limit: usize,
    /// Comparisons that read the spool.
    #[cfg(test)]
    spool_reads: usize,
}

impl BlobStore {
    /// A store spooling to an anonymous temporary file in `dir`.
    pub(crate) fn new_in(dir: &Path) -> Result<Self, TimelineError> {
        let file = tempfile::tempfile_in(dir)
            .map_err(|e| TimelineError::io(dir, "create blob spool", e))?;
        Ok(BlobStore {
            file,
            path: dir.to_path_buf(),
            buffer: Vec::with_capacity(WRITE_BUFFER),
            flushed_len: 0,
            index: BlobIndex::default(),
            small: RecentCopies::new(SMALL_LIMIT),
            compare_buf: Vec::new(),
            resident: Vec::new(),
            resident_limit: RESIDENT_LIMIT,
            #[cfg(test)]
            spool_reads: 0,
        })
    }

    /// Total bytes stored.
    pub(crate) fn len(&self) -> u64 {
        self.flushed_len + self.buffer.len() as u64
    }

    /// Stores `bytes` unless identical bytes are already stored; returns where they
    /// are and whether they were new.
    #[cfg(test)]
    pub(crate) fn intern(&mut self, bytes: &[u8]) -> Result<(BlobRef, bool), TimelineError> {
        self.intern_hashed(bytes, xxh3_64(bytes))
    }

    /// [`Self::intern`] of `bytes` whose xxh3 is `hash` (computed by the caller, maybe on
    /// another thread; a wrong hash only costs a duplicate, never a wrong reference).
    pub(crate) fn intern_hashed(
        &mut self,
        bytes: &[u8],
        hash: u64,
    ) -> Result<(BlobRef, bool), TimelineError> {
        if bytes.is_empty() {
            return Ok((BlobRef::default(), false));
        }
        let len = u32::try_from(bytes.len()).map_err(|_| {
            TimelineError::InvalidWrite(format!(
                "a string of {} bytes exceeds the 4 GiB limit of a blob",
                bytes.len()
            ))
        })?;
        let mut probe = self.index.probe(hash);
        while let Some(entry) = self.index.next_candidate(&mut probe) {
            let existing = BlobRef {
                offset: entry >> SLOT_BITS,
                len,
                reserved: 0,
            };
            let slot = entry & NO_COPY;
            let equal = if slot == NO_COPY {
                let from_disk = self.only_on_disk(existing);
                let equal = self.stored_equals(existing, bytes)?;
                if equal && from_disk {
                    // Back among the recent copies: its next hit needs no read.
                    if let Some(copy) = self.copy(hash, bytes) {
                        self.index
                            .update(hash, |e| (e == entry).then_some(e & !NO_COPY | copy));
                    }
                }
                equal
            } else {
                self.small.get(slot) == bytes
            };
            if equal {
                return Ok((existing, false));
            }
            // Another string under the same fingerprint (or, rarely, the same hash).
        }
        let stored = self.append(bytes, len)?;
        if stored.offset >= MAX_INDEXED_OFFSET {
            return Ok((stored, true));
        }
        let slot = self.copy(hash, bytes).unwrap_or(NO_COPY);
        self.index.insert(hash, stored.offset << SLOT_BITS | slot);
        Ok((stored, true))
    }

    /// Copies a short string among the recent copies, if it is short; the entries of the
    /// copies it overwrites stop naming them.
    fn copy(&mut self, hash: u64, bytes: &[u8]) -> Option<u64> {
        if bytes.len() > SMALL_MAX {
            return None;
        }
        let index = &mut self.index;
        self.small.push(hash, bytes, |hash, slot| {
            let found = index.update(hash, |e| (e & NO_COPY == slot).then_some(e | NO_COPY));
            debug_assert!(found, "an evicted copy's entry is in the index");
        })
    }

    /// Whether a comparison with the string stored at `at` must read the spool.
    fn only_on_disk(&self, at: BlobRef) -> bool {
        at.offset + u64::from(at.len) > self.resident.len() as u64 && at.offset < self.flushed_len
    }

    fn append(&mut self, bytes: &[u8], len: u32) -> Result<BlobRef, TimelineError> {
        let at = BlobRef {
            offset: self.len(),
            len,
            reserved: 0,
        };
        if self.resident.len() as u64 == at.offset
            && self.resident.len() + bytes.len() <= self.resident_limit
        {
            self.resident.extend_from_slice(bytes);
        }
        if self.buffer.len() + bytes.len() > WRITE_BUFFER {
            self.flush()?;
        }
        if bytes.len() >= WRITE_BUFFER {
            self.file
                .write_all(bytes)
                .map_err(|e| TimelineError::io(&self.path, "write blob spool", e))?;
            self.flushed_len += bytes.len() as u64;
        } else {
            self.buffer.extend_from_slice(bytes);
        }
        Ok(at)
    }

    fn flush(&mut self) -> Result<(), TimelineError> {
        if !self.buffer.is_empty() {
            self.file
                .write_all(&self.buffer)
                .map_err(|e| TimelineError::io(&self.path, "write blob spool", e))?;
            self.flushed_len += self.buffer.len() as u64;
            self.buffer.clear();
        }
        Ok(())
    }

    fn stored_equals(&mut self, at: BlobRef, bytes: &[u8]) -> Result<bool, TimelineError> {
        let end = at.offset + u64::from(at.len);
        if end > self.len() {
            return Ok(false);
        }
        if end <= self.resident.len() as u64 {
            return Ok(&self.resident[at.offset as usize..end as usize] == bytes);
        }
        if at.offset >= self.flushed_len {
            let start = (at.offset - self.flushed_len) as usize;
            return Ok(self.buffer.get(start..start + bytes.len()) == Some(bytes));
        }
        if end > self.flushed_len {
            self.flush()?;
        }
        #[cfg(test)]
        {
            self.spool_reads += 1;
        }
        self.compare_buf.resize(bytes.len(), 0);
        self.file
            .read_exact_at(&mut self.compare_buf, at.offset)
            .map_err(|e| TimelineError::io(&self.path, "read blob spool", e))?;
        Ok(self.compare_buf == bytes)
    }

    /// Flushes and hands over the spool file (its bytes are the blob area) and its length.
    pub(crate) fn into_file(mut self) -> Result<(File, u64), TimelineError> {
        self.flush()?;
        Ok((self.file, self.flushed_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distinct(i: usize) -> Vec<u8> {
        format!("{i:08}-{}", "b".repeat(1000)).into_bytes()
    }

    /// Interning must work the same whether the stored copy is in memory, in the write
    /// buffer or only on disk.
    #[test]
    fn hits_are_confirmed_from_memory_buffer_and_disk() {
        for limit in [0, 1 << 20, RESIDENT_LIMIT] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = BlobStore::new_in(dir.path()).unwrap();
            store.resident_limit = limit;
            let count = 3 * WRITE_BUFFER / 1000;
            let refs: Vec<BlobRef> = (0..count)
                .map(|i| {
                    let (r, new) = store.intern(&distinct(i)).unwrap();
                    assert!(new);
                    r
                })
                .collect();
            for (i, r) in refs.iter().enumerate().rev() {
                assert_eq!(
                    store.intern(&distinct(i)).unwrap(),
                    (*r, false),
                    "limit {limit}, string {i}"
                );
            }
            let (file, len) = store.into_file().unwrap();
            assert_eq!(len, refs.iter().map(|r| u64::from(r.len)).sum::<u64>());
            for (i, r) in refs.iter().enumerate().step_by(97) {
                let mut back = vec![0; r.len as usize];
                file.read_exact_at(&mut back, r.offset).unwrap();
                assert_eq!(back, distinct(i));
            }
        }
    }

    /// Short strings whose copies were overwritten are confirmed from the spool once, copied
    /// again, and then confirmed from memory; every reference stays the first one.
    #[test]
    fn evicted_copies_are_read_once_then_copied_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BlobStore::new_in(dir.path()).unwrap();
        store.resident_limit = 0;
        store.small = RecentCopies::new(4096);
        let name = |i: usize| format!("name-{i:05}").into_bytes();
        let refs: Vec<BlobRef> = (0..2000)
            .map(|i| store.intern(&name(i)).unwrap().0)
            .collect();
        // Pushes every name out of the write buffer, onto disk.
        store.intern(&vec![b'x'; 2 * WRITE_BUFFER]).unwrap();
        for round in 0..2 {
            for (i, r) in refs.iter().enumerate().take(100) {
                assert_eq!(
                    store.intern(&name(i)).unwrap(),
                    (*r, false),
                    "round {round}"
                );
            }
            assert_eq!(store.spool_reads, 100, "round {round}");
        }
        // The oldest names were overwritten meanwhile: still found, from disk.
        for (i, r) in refs.iter().enumerate().skip(1000).take(10) {
            assert_eq!(store.intern(&name(i)).unwrap(), (*r, false));
        }
        assert_eq!(store.spool_reads, 110);
    }

    #[test]
    fn the_empty_string_needs_no_storage() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BlobStore::new_in(dir.path()).unwrap();
        assert_eq!(store.intern(b"").unwrap(), (BlobRef::default(), false));
        assert_eq!(store.len(), 0);
    }

    /// A hit on a hash whose stored bytes differ (a collision, simulated by planting a
    /// wrong offset) stores the new bytes instead of referring to the wrong ones, even
    /// when the new bytes would run past the end of the area or of the short copies, and
    /// finds them on the next intern.
    #[test]
    fn a_hash_collision_stores_the_bytes_again() {
        let planted_cases = [b"other".as_slice(), b"a much longer string than first"];
        for (planted, copy) in planted_cases
            .into_iter()
            .flat_map(|p| [(p, NO_COPY), (p, 0)])
        {
            let dir = tempfile::tempdir().unwrap();
            let mut store = BlobStore::new_in(dir.path()).unwrap();
            let (first, _) = store.intern(b"first").unwrap();
            store
                .index
                .insert(xxh3_64(planted), first.offset << SLOT_BITS | copy);
            let (r, new) = store.intern(planted).unwrap();
            assert!(new);
            assert_ne!(r.offset, first.offset);
            assert_eq!(store.intern(planted).unwrap(), (r, false));
            let (file, _) = store.into_file().unwrap();
            let mut back = vec![0; r.len as usize];
            file.read_exact_at(&mut back, r.offset).unwrap();
            assert_eq!(back, planted);
        }
    }
}
