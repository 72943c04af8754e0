//! The on-disk layout of a timeline file, shared by the writer and the reader.
//!
//! ```text
//! [preamble 64 B] [index] [records] [labels] [origins] [blobs] [blocks] [header (bincode)]
//! ```
//! The fixed preamble at offset 0 holds the magic, the format version and where the
//! header is; the header (bincode 2, serde) holds the public `TimelineHeader`, the
//! section table (offset, length, xxh3 of each section) and the block layout. The header
//! comes last because the writer only knows the spec and the counts once the whole profile
//! has been read. Every section starts on a 64-byte boundary so the record table can be
//! read in place.
//!
//! The `blocks` section holds one xxh3 per block of the three large sections, so that a
//! replay can check each block just before it needs it instead of the whole file before
//! its start: the records of each run in blocks of `records_per_block` (a block never
//! spans two runs, so a run's blocks come in due order), then the origins and the blobs
//! in blocks of a fixed number of bytes. See `block_layout` for the order.

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use super::record::BlobRef;
use crate::profile::Spec;

/// The first eight bytes of every timeline file.
pub const MAGIC: [u8; 8] = *b"KRPLYTL\0";
/// The format version this crate writes and reads.
/// Version 2 added the per-block checksums (`blocks` section, `BlockLayout`).
pub const FORMAT_VERSION: u32 = 2;
/// Size of the fixed preamble at offset 0.
pub const PREAMBLE_LEN: usize = 64;
/// Alignment of every section start.
pub const SECTION_ALIGN: u64 = 64;
/// Default number of shards a runner's requests are split into (1–64 cores without re-preprocessing).
pub const DEFAULT_SHARDS_PER_RUNNER: u32 = 64;
/// Upper bound on runner_count × shards_per_runner (the index is held in memory).
pub const MAX_RUNS: u64 = 1 << 20;
/// Upper bound on the encoded header (a description or source name cannot be larger).
pub const MAX_HEADER_LEN: u64 = 16 << 20;

/// What the engine and tools need to know about a timeline before reading records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineHeader {
    /// Format version of the file (`FORMAT_VERSION`).
    pub format_version: u32,
    /// Number of requests (records) in the file.
    pub request_count: u64,
    /// How many of them are WATCHes.
    pub watch_count: u64,
    /// Due time of the last request, microseconds.
    pub duration_us: u64,
    /// Number of partitions the records are split into (the profile's, or the override).
    pub runner_count: u32,
    /// Shards per runner: the unit a core replays.
    pub shards_per_runner: u32,
    /// The profile's spec as written (its runner_count is not changed by an override).
    pub spec: Spec,
    /// The profile's description.
    pub description: String,
    /// The profile source's display name (path, `<stdin>`, or URL without credentials).
    pub source: String,
    /// Number of entries in the metric label table.
    pub label_count: u32,
    /// Wire path mode used at preprocessing (`recorded` or `kperf-cleaned`).
    pub path_mode: String,
}

/// Where one section lies in the file and its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SectionEntry {
    /// Byte offset from the start of the file (multiple of `SECTION_ALIGN`).
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// xxh3-64 of the section bytes.
    pub checksum: u64,
}

/// The section table, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SectionTable {
    /// Run index: `RunEntry` per (runner, shard), runner-major.
    pub index: SectionEntry,
    /// `RequestRecord`s, the records of one run contiguous and in profile order.
    pub records: SectionEntry,
    /// Metric labels: one `BlobRef` per label id, into the blob area.
    pub labels: SectionEntry,
    /// Cold `OriginEntry` per profile index (for export).
    pub origins: SectionEntry,
    /// Interned strings and bodies.
    pub blobs: SectionEntry,
    /// One xxh3-64 (little-endian `u64`) per block of the records, origins and blobs.
    pub blocks: SectionEntry,
}

impl SectionTable {
    /// Sections with their names, in file order.
    pub fn named(&self) -> [(&'static str, SectionEntry); 6] {
        [
            ("index", self.index),
            ("records", self.records),
            ("labels", self.labels),
            ("origins", self.origins),
            ("blobs", self.blobs),
            ("blocks", self.blocks),
        ]
    }
}

/// What the bincode header holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    /// The public header.
    pub header: TimelineHeader,
    /// Where each section is.
    pub sections: SectionTable,
    /// How the large sections are cut into checked blocks.
    pub blocks: BlockLayout,
}

/// The block sizes of the per-block checksums. Small enough that the blocks a replay needs
/// first are checked in a few milliseconds, large enough that the table stays a small
/// fraction of the file (one `u64` per 16 KiB of records, per 64 KiB of origins and blobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockLayout {
    /// Records per block of a run (the last block of a run may be shorter).
    pub records_per_block: u32,
    /// Bytes per block of the origins section.
    pub origin_block_bytes: u32,
    /// Bytes per block of the blob section.
    pub blob_block_bytes: u32,
}

impl Default for BlockLayout {
    fn default() -> Self {
        BlockLayout {
            records_per_block: 256,
            origin_block_bytes: 64 << 10,
            blob_block_bytes: 64 << 10,
        }
    }
}

/// Largest block size accepted in any unit (a corrupt layout cannot ask for huge blocks).
pub const MAX_BLOCK: u32 = 1 << 26;

/// The fixed preamble at offset 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Preamble {
    /// `MAGIC`.
    pub magic: [u8; 8],
    /// `FORMAT_VERSION`.
    pub format_version: u32,
    /// Always zero.
    pub reserved0: u32,
    /// Offset of the bincode header.
    pub header_offset: u64,
    /// Length of the bincode header.
    pub header_len: u64,
    /// xxh3-64 of the bincode header bytes.
    pub header_checksum: u64,
    /// Always zero.
    pub reserved: [u64; 3],
}

const _: () = assert!(std::mem::size_of::<Preamble>() == PREAMBLE_LEN);

/// One run of the index: the records of one (runner, shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct RunEntry {
    /// Runner (partition) index.
    pub runner: u32,
    /// Shard index within the runner.
    pub shard: u32,
    /// Index of the run's first record in the record table.
    pub first_record: u64,
    /// Number of records.
    pub count: u64,
}

/// Cold per-request data, indexed by profile index: what export needs beyond the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct OriginEntry {
    /// Position of the request's record in the record table.
    pub record_index: u64,
    /// Namespace as in the profile.
    pub namespace: BlobRef,
    /// Resource kind as in the profile.
    pub resource_kind: BlobRef,
    /// Name as in the profile.
    pub name: BlobRef,
    /// Label selector as in the profile.
    pub label_selector: BlobRef,
    /// apiPath as in the profile.
    pub api_path: BlobRef,
}

/// Rounds `n` up to the next multiple of `SECTION_ALIGN`, or `None` on overflow.
pub fn align_up(n: u64) -> Option<u64> {
    n.checked_add(SECTION_ALIGN - 1)
        .map(|v| v & !(SECTION_ALIGN - 1))
}

/// The bincode configuration of the header (with a decode limit against corrupt lengths).
pub fn header_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_HEADER_LEN as usize }>()
}
