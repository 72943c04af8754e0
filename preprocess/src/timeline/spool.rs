//! The writer's record spool: records in profile order, in a temporary file, until
//! the runner count is known and they can be scattered into their runs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::TimelineError;
use super::record::{BlobRef, RequestRecord};

/// A record and its origin strings (namespace, kind, name, selector, apiPath).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpoolEntry {
    pub(crate) record: RequestRecord,
    pub(crate) origin: [BlobRef; 5],
}

const RECORD_LEN: usize = std::mem::size_of::<RequestRecord>();
const ENTRY_LEN: usize = RECORD_LEN + 5 * std::mem::size_of::<BlobRef>();
/// Entries read per chunk when replaying the spool.
const ENTRIES_PER_READ: usize = 8192;

/// Spool being written.
pub(crate) struct RecordSpool {
    writer: BufWriter<File>,
    dir: PathBuf,
    count: u64,
}

impl RecordSpool {
    /// An empty spool in an anonymous temporary file in `dir`.
    pub(crate) fn new_in(dir: &Path) -> Result<Self, TimelineError> {
        let file = tempfile::tempfile_in(dir)
            .map_err(|e| TimelineError::io(dir, "create record spool", e))?;
        Ok(RecordSpool {
            writer: BufWriter::with_capacity(1 << 20, file),
            dir: dir.to_path_buf(),
            count: 0,
        })
    }

    /// Appends one entry.
    pub(crate) fn push(&mut self, entry: &SpoolEntry) -> Result<(), TimelineError> {
        let io = |e| TimelineError::io(&self.dir, "write record spool", e);
        self.writer
            .write_all(bytemuck::bytes_of(&entry.record))
            .map_err(io)?;
        self.writer
            .write_all(bytemuck::cast_slice(&entry.origin))
            .map_err(io)?;
        self.count += 1;
        Ok(())
    }

    /// Flushes; the spool can then be read any number of times.
    pub(crate) fn finish(self) -> Result<FinishedSpool, TimelineError> {
        let dir = self.dir;
        let file = self
            .writer
            .into_inner()
            .map_err(|e| TimelineError::io(&dir, "flush record spool", e.into_error()))?;
        Ok(FinishedSpool {
            file,
            dir,
            count: self.count,
        })
    }
}

/// A complete spool.
pub(crate) struct FinishedSpool {
    file: File,
    dir: PathBuf,
    count: u64,
}

impl FinishedSpool {
    /// Calls `f` on every entry in profile order.
    pub(crate) fn for_each(
        &self,
        mut f: impl FnMut(&SpoolEntry) -> Result<(), TimelineError>,
    ) -> Result<(), TimelineError> {
        let mut buf = vec![0u8; ENTRY_LEN * ENTRIES_PER_READ];
        let mut done = 0u64;
        while done < self.count {
            let n = (self.count - done).min(ENTRIES_PER_READ as u64) as usize;
            let chunk = &mut buf[..n * ENTRY_LEN];
            self.file
                .read_exact_at(chunk, done * ENTRY_LEN as u64)
                .map_err(|e| TimelineError::io(&self.dir, "read record spool", e))?;
            for bytes in chunk.chunks_exact(ENTRY_LEN) {
                let (record, origin) = bytes.split_at(RECORD_LEN);
                let mut refs = [BlobRef::default(); 5];
                for (slot, raw) in refs.iter_mut().zip(origin.chunks_exact(16)) {
                    *slot = bytemuck::pod_read_unaligned(raw);
                }
                f(&SpoolEntry {
                    record: bytemuck::pod_read_unaligned(record),
                    origin: refs,
                })?;
            }
            done += n as u64;
        }
        Ok(())
    }
}
