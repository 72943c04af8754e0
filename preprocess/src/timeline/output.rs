//! The writer's output file: positional writes, per-run scatter buffers, and the
//! 0600 temporary file delivered to its destination.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::error::TimelineError;
use super::format::RunEntry;
use super::record::RequestRecord;
use crate::destination::Destination;

/// The output file under construction.
pub(crate) struct Output {
    file: NamedTempFile,
    path: PathBuf,
}

impl Output {
    pub(crate) fn create(dir: &Path, output: &Path) -> Result<Self, TimelineError> {
        // NamedTempFile creates with mode 0600: bodies can hold secrets.
        let file = tempfile::Builder::new()
            .prefix(".preprocess-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| TimelineError::io(dir, "create temporary output", e))?;
        Ok(Output {
            file,
            path: output.to_path_buf(),
        })
    }

    fn as_file(&self) -> &File {
        self.file.as_file()
    }

    pub(crate) fn write_at(&self, bytes: &[u8], offset: u64) -> Result<(), TimelineError> {
        self.as_file()
            .write_all_at(bytes, offset)
            .map_err(|e| TimelineError::io(&self.path, "write", e))
    }

    pub(crate) fn write_hashed(&self, bytes: &[u8], offset: u64) -> Result<u64, TimelineError> {
        self.write_at(bytes, offset)?;
        Ok(xxhash_rust::xxh3::xxh3_64(bytes))
    }

    /// Reads back `len` bytes at `offset` and appends the xxh3 of each `block`-byte piece
    /// (the last may be shorter) to `sums`, feeding `whole` with every byte on the way.
    pub(crate) fn hash_blocks(
        &self,
        offset: u64,
        len: u64,
        block: u64,
        sums: &mut Vec<u64>,
        mut whole: Option<&mut xxhash_rust::xxh3::Xxh3Default>,
    ) -> Result<(), TimelineError> {
        let mut buf = vec![0u8; block.min(len) as usize];
        let mut done = 0u64;
        while done < len {
            let chunk = (len - done).min(block) as usize;
            self.as_file()
                .read_exact_at(&mut buf[..chunk], offset + done)
                .map_err(|e| TimelineError::io(&self.path, "read back for block checksums", e))?;
            sums.push(xxhash_rust::xxh3::xxh3_64(&buf[..chunk]));
            if let Some(h) = whole.as_deref_mut() {
                h.update(&buf[..chunk]);
            }
            done += chunk as u64;
        }
        Ok(())
    }

    pub(crate) fn copy_from(
        &self,
        src: &File,
        len: u64,
        offset: u64,
    ) -> Result<u64, TimelineError> {
        let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < len {
            let chunk = (len - done).min(buf.len() as u64) as usize;
            src.read_exact_at(&mut buf[..chunk], done)
                .map_err(|e| TimelineError::io(&self.path, "read blob spool", e))?;
            hasher.update(&buf[..chunk]);
            self.write_at(&buf[..chunk], offset + done)?;
            done += chunk as u64;
        }
        Ok(hasher.digest())
    }

    pub(crate) fn persist(self, to: &Destination) -> Result<(), TimelineError> {
        Ok(to.deliver(self.file)?)
    }
}

/// Per-run write buffers: records of one run are written in batches, not one syscall each.
pub(crate) struct RunScatter {
    records_offset: u64,
    next: Vec<u64>,
    buffered: Vec<u32>,
    buffer: Vec<RequestRecord>,
    per_run: usize,
}

/// Memory for all run buffers together.
const SCATTER_BUFFER_BYTES: usize = 8 << 20;

impl RunScatter {
    pub(crate) fn new(runs: &[RunEntry], records_offset: u64) -> Self {
        let per_run = (SCATTER_BUFFER_BYTES / 64 / runs.len().max(1)).clamp(1, 512);
        RunScatter {
            records_offset,
            next: runs.iter().map(|r| r.first_record).collect(),
            buffered: vec![0; runs.len()],
            buffer: vec![bytemuck::Zeroable::zeroed(); per_run * runs.len()],
            per_run,
        }
    }

    /// Queues `record` at the next slot of `run`; returns its record index.
    pub(crate) fn place(
        &mut self,
        out: &Output,
        run: usize,
        record: &RequestRecord,
    ) -> Result<u64, TimelineError> {
        let slot = self.buffered[run] as usize;
        self.buffer[run * self.per_run + slot] = *record;
        self.buffered[run] += 1;
        let index = self.next[run] + slot as u64;
        if self.buffered[run] as usize == self.per_run {
            self.flush_run(out, run)?;
        }
        Ok(index)
    }

    fn flush_run(&mut self, out: &Output, run: usize) -> Result<(), TimelineError> {
        let count = self.buffered[run] as usize;
        if count == 0 {
            return Ok(());
        }
        let start = run * self.per_run;
        let bytes: &[u8] = bytemuck::cast_slice(&self.buffer[start..start + count]);
        out.write_at(bytes, self.records_offset + self.next[run] * 64)?;
        self.next[run] += count as u64;
        self.buffered[run] = 0;
        Ok(())
    }

    pub(crate) fn flush_all(&mut self, out: &Output) -> Result<(), TimelineError> {
        for run in 0..self.next.len() {
            self.flush_run(out, run)?;
        }
        Ok(())
    }
}

/// Buffered positional writes of one sequential section, hashing as it goes.
pub(crate) struct SequentialWriter {
    offset: u64,
    pending: Vec<u8>,
    hasher: xxhash_rust::xxh3::Xxh3Default,
}

impl SequentialWriter {
    pub(crate) fn new(offset: u64) -> Self {
        SequentialWriter {
            offset,
            pending: Vec::with_capacity(1 << 20),
            hasher: xxhash_rust::xxh3::Xxh3Default::new(),
        }
    }

    pub(crate) fn write(&mut self, out: &Output, bytes: &[u8]) -> Result<(), TimelineError> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= 1 << 20 {
            self.flush(out)?;
        }
        Ok(())
    }

    fn flush(&mut self, out: &Output) -> Result<(), TimelineError> {
        if !self.pending.is_empty() {
            out.write_at(&self.pending, self.offset)?;
            self.hasher.update(&self.pending);
            self.offset += self.pending.len() as u64;
            self.pending.clear();
        }
        Ok(())
    }

    pub(crate) fn finish(mut self, out: &Output) -> Result<u64, TimelineError> {
        self.flush(out)?;
        Ok(self.hasher.digest())
    }
}
