//! Reads a timeline in place from a read-only memory map.
//!
//! `open` checks everything whose size does not grow with the profile (preamble,
//! header checksum, section table, run index, block table, labels, padding) so it is fast
//! and its memory does not depend on the file size; `view` checks one record in O(1);
//! `check_in_due_order` (module `due_order`) checks every block in the order a replay needs
//! them; `verify_for_replay` runs it to the end, `verify` checks the origins too.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use xxhash_rust::xxh3::xxh3_64;

use super::block_layout::{check_layout, BlockMap};
use super::due_order::VerifyProgress;
use super::error::TimelineError;
use super::format::{
    header_config, FileHeader, OriginEntry, Preamble, SectionTable, TimelineHeader, FORMAT_VERSION,
    MAGIC, MAX_HEADER_LEN, PREAMBLE_LEN,
};
use super::open_checks::{
    cast_section, check_checksum, check_header, check_index, check_padding, check_sections, slice,
};
use super::record::{BlobRef, RequestRecord, FLAG_INVALID_TARGET, FLAG_WATCH};
use crate::profile::{BodyKind, Method, Verb};

/// One run: the records of one shard of one runner, in profile order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunInfo {
    /// Runner (partition) index.
    pub runner: u32,
    /// Shard index within the runner.
    pub shard: u32,
    /// Number of records.
    pub len: u64,
}

/// A record with its fields decoded and its blobs resolved.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The record as stored.
    pub record: &'a RequestRecord,
    /// Decoded verb.
    pub verb: Verb,
    /// Decoded HTTP method.
    pub method: Method,
    /// Decoded body class.
    pub body_kind: BodyKind,
    /// Request target bytes (path + query).
    pub target: &'a [u8],
    /// Body bytes (empty: no body).
    pub body: &'a [u8],
}

/// The profile's own strings of one request (for export).
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The request's record.
    pub record: &'a RequestRecord,
    /// Namespace.
    pub namespace: &'a str,
    /// Resource kind.
    pub resource_kind: &'a str,
    /// Name.
    pub name: &'a str,
    /// Label selector.
    pub label_selector: &'a str,
    /// apiPath as written in the profile.
    pub api_path: &'a str,
}

/// An open timeline file.
pub struct Timeline {
    map: Mmap,
    path: PathBuf,
    header: TimelineHeader,
    sections: SectionTable,
    runs: Vec<RunInfo>,
    /// Where each run's records lie in the map (checked at open): a run's records are
    /// looked up for every request sent.
    run_bytes: Vec<std::ops::Range<usize>>,
    /// Where each block's checksum is in the block table.
    block_map: BlockMap,
}

// The engine shares one Timeline between its per-core executors.
const _: () = {
    const fn shared_between_threads<T: Send + Sync>() {}
    shared_between_threads::<Timeline>();
};

impl Timeline {
    /// Maps and checks a timeline file (not every record: see `verify`).
    pub fn open(path: &Path) -> Result<Timeline, TimelineError> {
        let file = File::open(path).map_err(|e| TimelineError::io(path, "open timeline", e))?;
        // SAFETY: the map is read-only. kreplay never modifies a timeline in place (the
        // writer renames a new file over the old one, which leaves existing maps intact),
        // so the bytes do not change under the map; another program truncating the file
        // while it is mapped is outside what a mapped reader can guard against. Every
        // read of the map is bounds-checked.
        let map =
            unsafe { Mmap::map(&file) }.map_err(|e| TimelineError::io(path, "map timeline", e))?;
        Self::from_map(map, path)
    }

    /// Checks a timeline held in memory, as [`Timeline::open`] does a file: the bytes are
    /// copied into an anonymous map (page-aligned, so records are read in place); `name`
    /// stands for the path in messages. For tools that hold bytes rather than a file (the
    /// fuzzer, which would otherwise write and map a file per input).
    pub fn from_bytes(bytes: &[u8], name: &Path) -> Result<Timeline, TimelineError> {
        if bytes.len() < PREAMBLE_LEN {
            return Err(TimelineError::Truncated {
                what: "preamble".into(),
                start: 0,
                end: PREAMBLE_LEN as u64,
                file_len: bytes.len() as u64,
            });
        }
        let mut map = memmap2::MmapMut::map_anon(bytes.len())
            .map_err(|e| TimelineError::io(name, "map timeline", e))?;
        map.copy_from_slice(bytes);
        let map = map
            .make_read_only()
            .map_err(|e| TimelineError::io(name, "map timeline", e))?;
        Self::from_map(map, name)
    }

    fn from_map(map: Mmap, path: &Path) -> Result<Timeline, TimelineError> {
        let file_len = map.len() as u64;
        let preamble_bytes = slice(&map, 0, PREAMBLE_LEN as u64, "preamble")?;
        let preamble: Preamble = bytemuck::pod_read_unaligned(preamble_bytes);
        if preamble.magic != MAGIC {
            return Err(TimelineError::BadMagic);
        }
        if preamble.format_version != FORMAT_VERSION {
            return Err(TimelineError::UnsupportedVersion {
                found: preamble.format_version,
                expected: FORMAT_VERSION,
            });
        }
        if preamble.reserved0 != 0 || preamble.reserved != [0; 3] {
            return Err(TimelineError::Corrupt(
                "reserved preamble bytes are not zero".into(),
            ));
        }
        if preamble.header_len > MAX_HEADER_LEN {
            return Err(TimelineError::Corrupt(format!(
                "header length {} exceeds the limit {MAX_HEADER_LEN}",
                preamble.header_len
            )));
        }
        let header_bytes = slice(&map, preamble.header_offset, preamble.header_len, "header")?;
        let computed = xxh3_64(header_bytes);
        if computed != preamble.header_checksum {
            return Err(TimelineError::ChecksumMismatch {
                what: "header".into(),
                stored: preamble.header_checksum,
                computed,
            });
        }
        let header_end = preamble.header_offset + preamble.header_len;
        if header_end != file_len {
            return Err(TimelineError::Corrupt(format!(
                "file is {file_len} bytes but its header ends at {header_end}"
            )));
        }
        let (file_header, used): (FileHeader, usize) =
            bincode::serde::decode_from_slice(header_bytes, header_config())
                .map_err(|e| TimelineError::Corrupt(format!("header does not decode: {e}")))?;
        if used as u64 != preamble.header_len {
            return Err(TimelineError::Corrupt(
                "trailing bytes after the header".into(),
            ));
        }
        let FileHeader {
            header,
            sections,
            blocks,
        } = file_header;
        check_header(&header)?;
        check_layout(&blocks)?;
        check_sections(&sections, &header, preamble.header_offset)?;
        check_padding(&map, &sections)?;

        let index_bytes = slice(
            &map,
            sections.index.offset,
            sections.index.len,
            "index section",
        )?;
        check_checksum("index section", index_bytes, sections.index.checksum)?;
        let (runs, run_starts) = check_index(index_bytes, &header)?;
        let block_map = BlockMap::new(
            blocks,
            runs.iter().map(|r| r.len),
            sections.origins.len,
            sections.blobs.len,
        );
        if block_map.section_len() != Some(sections.blocks.len) {
            return Err(TimelineError::Corrupt(format!(
                "blocks section is {} bytes, expected {:?} for the runs and the block layout",
                sections.blocks.len,
                block_map.section_len()
            )));
        }
        for (name, s) in [("blocks", sections.blocks), ("labels", sections.labels)] {
            let bytes = slice(&map, s.offset, s.len, name)?;
            check_checksum(&format!("{name} section"), bytes, s.checksum)?;
        }
        let mut timeline = Timeline {
            map,
            path: path.to_path_buf(),
            header,
            sections,
            runs,
            run_bytes: Vec::new(),
            block_map,
        };
        // Cast once now so that later casts cannot fail on alignment.
        let records = timeline.records()?.len();
        timeline.label_refs()?;
        timeline.origin_entries()?;
        let size = std::mem::size_of::<RequestRecord>();
        let base = usize::try_from(timeline.sections.records.offset)
            .map_err(|_| TimelineError::Corrupt("records section offset".into()))?;
        timeline.run_bytes = timeline
            .runs
            .iter()
            .zip(&run_starts)
            .map(|(run, &start)| {
                let start = usize::try_from(start).ok()?;
                let end = start.checked_add(usize::try_from(run.len).ok()?)?;
                (end <= records).then(|| base + start * size..base + end * size)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| TimelineError::Corrupt("a run lies outside the records".into()))?;
        Ok(timeline)
    }

    /// The file's header.
    pub fn header(&self) -> &TimelineHeader {
        &self.header
    }

    /// Where each section lies (for tools and tests that look at the layout).
    pub fn sections(&self) -> &SectionTable {
        &self.sections
    }

    /// The content's identity: xxh3 over the checksums of the five content sections (not
    /// the block table, which is derived from them). Two files with the same
    /// requests, partitioning and bodies have the same id wherever and whenever they were
    /// written (the profile's path is in the header, not in the sections).
    pub fn content_id(&self) -> u64 {
        let mut bytes = [0u8; 40];
        for (chunk, (_, s)) in bytes.chunks_exact_mut(8).zip(self.sections.named()) {
            chunk.copy_from_slice(&s.checksum.to_le_bytes());
        }
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All runs, runner-major: run `r * shards_per_runner + s` is shard `s` of runner `r`.
    pub fn runs(&self) -> &[RunInfo] {
        &self.runs
    }

    /// The records of run `run`, in profile order, read in place.
    pub fn run_records(&self, run: usize) -> Option<&[RequestRecord]> {
        let bytes = self.map.get(self.run_bytes.get(run)?.clone())?;
        bytemuck::try_cast_slice(bytes).ok()
    }

    /// Every record, run after run.
    pub fn all_records(&self) -> Result<&[RequestRecord], TimelineError> {
        self.records()
    }

    fn records(&self) -> Result<&[RequestRecord], TimelineError> {
        cast_section(&self.map, self.sections.records, "records section")
    }

    fn label_refs(&self) -> Result<&[BlobRef], TimelineError> {
        cast_section(&self.map, self.sections.labels, "labels section")
    }

    fn origin_entries(&self) -> Result<&[OriginEntry], TimelineError> {
        cast_section(&self.map, self.sections.origins, "origins section")
    }

    fn blobs(&self) -> &[u8] {
        let s = self.sections.blobs;
        // Bounds were checked at open.
        &self.map[s.offset as usize..(s.offset + s.len) as usize]
    }

    /// The bytes `at` refers to; `None` if it points outside the blob area.
    pub fn blob(&self, at: BlobRef) -> Option<&[u8]> {
        if at.reserved != 0 {
            return None;
        }
        let start = usize::try_from(at.offset).ok()?;
        self.blobs().get(start..start.checked_add(at.len as usize)?)
    }

    /// Decodes and checks one record (O(1), no allocation).
    pub fn view<'a>(&'a self, rec: &'a RequestRecord) -> Result<RequestView<'a>, TimelineError> {
        let bad = |field, problem: String| TimelineError::BadRecord {
            profile_index: rec.profile_index,
            field,
            problem,
        };
        let verb = rec
            .verb()
            .ok_or_else(|| bad("verb", format!("byte {} is not a verb (0..=7)", rec.verb)))?;
        let method = rec.method().ok_or_else(|| {
            bad(
                "method",
                format!("byte {} is not a method (0..=3)", rec.method),
            )
        })?;
        if method != verb.method() {
            return Err(bad(
                "method",
                format!("{} does not match verb {verb}", method.as_str()),
            ));
        }
        let body_kind = rec.body_kind().ok_or_else(|| {
            bad(
                "body_kind",
                format!("byte {} is not a body kind (0..=4)", rec.body_kind),
            )
        })?;
        if rec.flags & !(FLAG_WATCH | FLAG_INVALID_TARGET) != 0 {
            return Err(bad("flags", format!("unknown bits in {:#04x}", rec.flags)));
        }
        if rec.is_watch() != (verb == Verb::Watch) {
            return Err(bad(
                "flags",
                format!("watch flag does not match verb {verb}"),
            ));
        }
        if u64::from(rec.label) >= u64::from(self.header.label_count) {
            return Err(bad(
                "label",
                format!(
                    "id {} is not below the label count {}",
                    rec.label, self.header.label_count
                ),
            ));
        }
        if rec.profile_index >= self.header.request_count {
            return Err(bad(
                "profile_index",
                format!("not below the request count {}", self.header.request_count),
            ));
        }
        let blob_len = self.sections.blobs.len;
        let target = self.blob(rec.target).ok_or_else(|| {
            bad(
                "target",
                format!("{:?} is outside the {blob_len}-byte blob area", rec.target),
            )
        })?;
        let body = self.blob(rec.body).ok_or_else(|| {
            bad(
                "body",
                format!("{:?} is outside the {blob_len}-byte blob area", rec.body),
            )
        })?;
        Ok(RequestView {
            record: rec,
            verb,
            method,
            body_kind,
            target,
            body,
        })
    }

    /// Where label `id`'s bytes are stored, if the id is in range.
    pub(crate) fn label_ref(&self, id: u32) -> Option<BlobRef> {
        self.label_refs().ok()?.get(id as usize).copied()
    }

    /// The metric label `id`: `"<METHOD LABEL> <metric path>"`.
    pub fn label(&self, id: u32) -> Result<&str, TimelineError> {
        let refs = self.label_refs()?;
        let at = *refs.get(id as usize).ok_or(TimelineError::OutOfRange {
            what: "label id",
            value: u64::from(id),
            limit: refs.len() as u64,
        })?;
        let bytes = self.blob(at).ok_or_else(|| {
            TimelineError::Corrupt(format!("label {id}: {at:?} is outside the blob area"))
        })?;
        std::str::from_utf8(bytes)
            .map_err(|e| TimelineError::Corrupt(format!("label {id} is not UTF-8: {e}")))
    }

    /// The profile's strings of request `profile_index` (cold section, for export).
    pub fn origin(&self, profile_index: u64) -> Result<Origin<'_>, TimelineError> {
        let entries = self.origin_entries()?;
        let entry = usize::try_from(profile_index)
            .ok()
            .and_then(|i| entries.get(i))
            .ok_or(TimelineError::OutOfRange {
                what: "profile index",
                value: profile_index,
                limit: entries.len() as u64,
            })?;
        let corrupt = |what: &str| {
            TimelineError::Corrupt(format!("origin of profile index {profile_index}: {what}"))
        };
        let record = usize::try_from(entry.record_index)
            .ok()
            .and_then(|i| self.records().ok()?.get(i))
            .ok_or_else(|| corrupt("record index out of range"))?;
        if record.profile_index != profile_index {
            return Err(corrupt("points at the record of another request"));
        }
        let text = |at: BlobRef, field: &str| -> Result<&str, TimelineError> {
            let bytes = self
                .blob(at)
                .ok_or_else(|| corrupt(&format!("{field} is outside the blob area")))?;
            std::str::from_utf8(bytes).map_err(|_| corrupt(&format!("{field} is not UTF-8")))
        };
        Ok(Origin {
            record,
            namespace: text(entry.namespace, "namespace")?,
            resource_kind: text(entry.resource_kind, "resourceKind")?,
            name: text(entry.name, "name")?,
            label_selector: text(entry.label_selector, "labelSelector")?,
            api_path: text(entry.api_path, "apiPath")?,
        })
    }

    /// Checks every block a replay reads before it sends any of it: every record (fields,
    /// references into the blob area, label id, due time within the profile's duration,
    /// order and membership of its run) and the checksum of every block of the records,
    /// origins and blobs, with the small sections checked at open. It runs
    /// [`Timeline::check_in_due_order`] to the end on the calling thread; what it leaves to
    /// [`Timeline::verify`] is decoding the cold origins (export's strings).
    pub fn verify_for_replay(&self) -> Result<(), TimelineError> {
        self.check_in_due_order(&VerifyProgress::new(), &mut |_| true)
            .map(|_| ())
    }

    /// The block table's shape.
    pub(crate) fn block_map(&self) -> &BlockMap {
        &self.block_map
    }

    /// The stored checksum of block `index` of the table (in range: checked at open).
    pub(crate) fn block_sum(&self, index: u64) -> u64 {
        let s = self.sections.blocks;
        let at = (s.offset + index * 8) as usize;
        u64::from_le_bytes(self.map[at..at + 8].try_into().expect("8 bytes"))
    }

    /// `len` bytes of section `s` from `offset` within it (bounds checked at open).
    pub(crate) fn section_bytes(
        &self,
        s: super::format::SectionEntry,
        offset: u64,
        len: u64,
    ) -> &[u8] {
        let start = (s.offset + offset) as usize;
        &self.map[start..start + len as usize]
    }

    /// Everything [`Timeline::verify_for_replay`] checks, and every origin entry.
    pub fn verify(&self) -> Result<(), TimelineError> {
        self.verify_for_replay()?;
        // The whole-section checksums too: they are the content's identity (`content_id`).
        for (name, s) in self.sections.named() {
            let bytes = slice(&self.map, s.offset, s.len, name)?;
            check_checksum(&format!("{name} section"), bytes, s.checksum)?;
        }
        for i in 0..self.header.request_count {
            self.origin(i)?;
        }
        Ok(())
    }
}
