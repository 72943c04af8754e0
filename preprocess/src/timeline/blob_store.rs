//! The writer's blob area: interned byte strings streamed to a temporary file.
//!
//! Memory holds only a map from the xxh3 of each distinct string to where it is
//! stored; the bytes go to disk. A hash hit is confirmed by reading the stored bytes
//! back (a 64-bit collision must not merge two different bodies); on a collision the
//! new string is simply stored again.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use super::error::TimelineError;
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

/// Interned strings, stored once each, in a temporary file.
pub(crate) struct BlobStore {
    file: File,
    path: PathBuf,
    buffer: Vec<u8>,
    flushed_len: u64,
    index: HashKeyedMap<BlobRef>,
    compare_buf: Vec<u8>,
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
            index: HashKeyedMap::default(),
            compare_buf: Vec::new(),
        })
    }

    /// Total bytes stored.
    pub(crate) fn len(&self) -> u64 {
        self.flushed_len + self.buffer.len() as u64
    }

    /// Stores `bytes` unless identical bytes are already stored; returns where they
    /// are and whether they were new.
    pub(crate) fn intern(&mut self, bytes: &[u8]) -> Result<(BlobRef, bool), TimelineError> {
        if bytes.is_empty() {
            return Ok((BlobRef::default(), false));
        }
        let len = u32::try_from(bytes.len()).map_err(|_| {
            TimelineError::InvalidWrite(format!(
                "a string of {} bytes exceeds the 4 GiB limit of a blob",
                bytes.len()
            ))
        })?;
        let hash = xxh3_64(bytes);
        if let Some(&existing) = self.index.get(&hash) {
            if existing.len == len && self.stored_equals(existing, bytes)? {
                return Ok((existing, false));
            }
            // A collision: store the new bytes without indexing them.
            return Ok((self.append(bytes, len)?, true));
        }
        let stored = self.append(bytes, len)?;
        self.index.insert(hash, stored);
        Ok((stored, true))
    }

    fn append(&mut self, bytes: &[u8], len: u32) -> Result<BlobRef, TimelineError> {
        let at = BlobRef {
            offset: self.len(),
            len,
            reserved: 0,
        };
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
        if at.offset >= self.flushed_len {
            let start = (at.offset - self.flushed_len) as usize;
            return Ok(self.buffer.get(start..start + bytes.len()) == Some(bytes));
        }
        if at.offset + u64::from(at.len) > self.flushed_len {
            self.flush()?;
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
