//! Writes a timeline with bounded memory.
//!
//! Requests arrive in profile order before the runner count is known (the spec may
//! follow the requests in the YAML), so each one is spooled to a temporary file as a
//! record plus its origin strings; strings and bodies go to the interned blob store.
//! `finish` reads the spool twice: once to count the records of every (runner, shard),
//! once to scatter them into their runs through small per-run buffers. The output is
//! built in a 0600 temporary file beside the destination and renamed into place, so an
//! error never leaves a partial timeline behind.

use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use super::blob_store::{BlobStore, HashKeyedMap};
use super::block_layout::{check_layout, BlockMap};
use super::error::TimelineError;
use super::format::{
    align_up, header_config, BlockLayout, FileHeader, OriginEntry, Preamble, RunEntry,
    SectionEntry, SectionTable, TimelineHeader, DEFAULT_SHARDS_PER_RUNNER, FORMAT_VERSION, MAGIC,
    MAX_HEADER_LEN, MAX_RUNS, PREAMBLE_LEN,
};
use super::output::{Output, RunScatter, SequentialWriter};
use super::record::{BlobRef, RequestRecord, FLAG_INVALID_TARGET, FLAG_WATCH};
use super::spool::{RecordSpool, SpoolEntry};
use crate::destination::Destination;
use crate::partition::{runner_of, shard_of};
use crate::profile::{BodyKind, Method, Spec, Verb};

/// How the writer partitions and labels the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Shards per runner (≥ 1); `DEFAULT_SHARDS_PER_RUNNER` unless asked otherwise.
    pub shards_per_runner: u32,
    /// Replaces `spec.runnerCount` for partitioning (kperf's rule with this N).
    pub runner_count_override: Option<u32>,
    /// Where the profile came from, recorded in the header.
    pub source: String,
    /// Wire path mode name recorded in the header.
    pub path_mode: String,
    /// Block sizes of the per-block checksums (the default unless a test needs many blocks).
    pub block_layout: BlockLayout,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            shards_per_runner: DEFAULT_SHARDS_PER_RUNNER,
            runner_count_override: None,
            source: String::new(),
            path_mode: "recorded".to_string(),
            block_layout: BlockLayout::default(),
        }
    }
}

/// The profile's own strings of a request, kept for export.
#[derive(Debug, Clone, Copy, Default)]
pub struct OriginStrings<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Resource kind.
    pub resource_kind: &'a str,
    /// Name.
    pub name: &'a str,
    /// Label selector.
    pub label_selector: &'a str,
    /// apiPath as written.
    pub api_path: &'a str,
}

/// One request, already normalised: everything a record holds, by value.
#[derive(Debug, Clone, Copy)]
pub struct PreparedRequest<'a> {
    /// Position in the profile (pushes must be 0, 1, 2, ...).
    pub profile_index: u64,
    /// Due time, microseconds from the start.
    pub due_us: u64,
    /// Object-key hash (partitioning).
    pub key_hash: u64,
    /// Verb.
    pub verb: Verb,
    /// HTTP method.
    pub method: Method,
    /// Content-Type class of the body.
    pub body_kind: BodyKind,
    /// `FLAG_*` bits (`FLAG_WATCH` is derived from the verb and need not be set).
    pub flags: u8,
    /// Wire request target.
    pub target: &'a [u8],
    /// Body bytes.
    pub body: &'a [u8],
    /// Metric label (`"<METHOD LABEL> <metric path>"`).
    pub label: &'a str,
    /// The profile's strings.
    pub origin: OriginStrings<'a>,
}

/// The xxh3 of a prepared request's strings (target, body, label, then the five origin
/// strings), which the blob store interns by; computing them off the writer's thread leaves
/// the writer only the lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StringHashes(pub(super) [u64; 8]);

impl StringHashes {
    /// The hashes of `req`'s strings.
    pub(crate) fn of(req: &PreparedRequest<'_>) -> Self {
        let o = &req.origin;
        StringHashes(
            [
                req.target,
                req.body,
                req.label.as_bytes(),
                o.namespace.as_bytes(),
                o.resource_kind.as_bytes(),
                o.name.as_bytes(),
                o.label_selector.as_bytes(),
                o.api_path.as_bytes(),
            ]
            .map(xxh3_64),
        )
    }
}

/// What `finish` wrote, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    /// The written header.
    pub header: TimelineHeader,
    /// Distinct request targets stored.
    pub distinct_targets: u64,
    /// Distinct bodies stored.
    pub distinct_bodies: u64,
    /// Bytes of the blob area.
    pub blob_bytes: u64,
    /// Size of the output file.
    pub file_bytes: u64,
    /// Requests of each runner, by runner index.
    pub requests_per_runner: Vec<u64>,
}

/// Builds a timeline file from prepared requests in profile order.
pub struct TimelineWriter {
    output: PathBuf,
    destination: Destination,
    dir: PathBuf,
    options: WriterOptions,
    spool: RecordSpool,
    blobs: BlobStore,
    labels: Vec<BlobRef>,
    label_ids: HashKeyedMap<u32>,
    count: u64,
    watch_count: u64,
    last_due_us: u64,
    distinct_targets: u64,
    distinct_bodies: u64,
}

impl TimelineWriter {
    /// Starts a timeline that `finish` will write to `output` (see [`Destination`]);
    /// temporary files go beside it, or to the temporary directory for a device or pipe.
    pub fn create(output: &Path, options: WriterOptions) -> Result<Self, TimelineError> {
        if options.shards_per_runner == 0 {
            return Err(TimelineError::InvalidWrite(
                "shards per runner must be at least 1".into(),
            ));
        }
        check_layout(&options.block_layout)
            .map_err(|e| TimelineError::InvalidWrite(e.to_string()))?;
        if options.runner_count_override == Some(0) {
            return Err(TimelineError::InvalidWrite(
                "runner count override must be at least 1".into(),
            ));
        }
        let destination = Destination::of(output)?;
        let dir = destination.work_dir();
        Ok(TimelineWriter {
            output: output.to_path_buf(),
            destination,
            spool: RecordSpool::new_in(&dir)?,
            blobs: BlobStore::new_in(&dir)?,
            dir,
            options,
            labels: Vec::new(),
            label_ids: HashKeyedMap::default(),
            count: 0,
            watch_count: 0,
            last_due_us: 0,
            distinct_targets: 0,
            distinct_bodies: 0,
        })
    }

    /// Requests pushed so far.
    pub fn request_count(&self) -> u64 {
        self.count
    }

    /// Adds the next request (profile order, non-decreasing due time).
    pub fn push_prepared(&mut self, req: &PreparedRequest<'_>) -> Result<(), TimelineError> {
        self.push_hashed(req, &StringHashes::of(req))
    }

    /// [`Self::push_prepared`] with the strings' hashes already computed (on another thread).
    pub(crate) fn push_hashed(
        &mut self,
        req: &PreparedRequest<'_>,
        hashes: &StringHashes,
    ) -> Result<(), TimelineError> {
        let [h_target, h_body, h_label, h_namespace, h_kind, h_name, h_selector, h_path] = hashes.0;
        let bad = |field, problem: String| TimelineError::BadRequest {
            index: req.profile_index,
            field,
            problem,
        };
        if req.profile_index != self.count {
            return Err(bad(
                "profile index",
                format!(
                    "requests must be pushed in profile order; expected index {}",
                    self.count
                ),
            ));
        }
        if self.count > 0 && req.due_us < self.last_due_us {
            return Err(bad(
                "timestamp",
                format!(
                    "due time {} us is before the previous request's {} us; the profile must be sorted",
                    req.due_us, self.last_due_us
                ),
            ));
        }
        if req.flags & !(FLAG_WATCH | FLAG_INVALID_TARGET) != 0 {
            return Err(bad(
                "flags",
                format!("unknown flag bits {:#04x}", req.flags),
            ));
        }
        let (target, new_target) = self.blobs.intern_hashed(req.target, h_target)?;
        let (body, new_body) = self.blobs.intern_hashed(req.body, h_body)?;
        self.distinct_targets += u64::from(new_target);
        self.distinct_bodies += u64::from(new_body);
        let label = self.label_id(req.label, h_label)?;
        let o = &req.origin;
        let origin = [
            self.blobs
                .intern_hashed(o.namespace.as_bytes(), h_namespace)?
                .0,
            self.blobs
                .intern_hashed(o.resource_kind.as_bytes(), h_kind)?
                .0,
            self.blobs.intern_hashed(o.name.as_bytes(), h_name)?.0,
            self.blobs
                .intern_hashed(o.label_selector.as_bytes(), h_selector)?
                .0,
            self.blobs.intern_hashed(o.api_path.as_bytes(), h_path)?.0,
        ];
        let mut flags = req.flags & !FLAG_WATCH;
        if req.verb == Verb::Watch {
            flags |= FLAG_WATCH;
            self.watch_count += 1;
        }
        let record = RequestRecord {
            due_us: req.due_us,
            key_hash: req.key_hash,
            target,
            body,
            label,
            verb: req.verb as u8,
            method: req.method as u8,
            body_kind: req.body_kind as u8,
            flags,
            profile_index: req.profile_index,
        };
        self.spool.push(&SpoolEntry { record, origin })?;
        self.count += 1;
        self.last_due_us = req.due_us;
        Ok(())
    }

    fn label_id(&mut self, label: &str, hash: u64) -> Result<u32, TimelineError> {
        let (stored, _) = self.blobs.intern_hashed(label.as_bytes(), hash)?;
        // The blob store interns, so equal labels share one stored place: its offset is the label's identity.
        let key = stored.offset;
        if let Some(&id) = self.label_ids.get(&key) {
            if self.labels.get(id as usize) == Some(&stored) {
                return Ok(id);
            }
        }
        let id = u32::try_from(self.labels.len()).map_err(|_| {
            TimelineError::InvalidWrite("more than 2^32 distinct metric labels".into())
        })?;
        self.labels.push(stored);
        self.label_ids.insert(key, id);
        Ok(id)
    }

    /// Writes the file: partitions with the spec's runner count (or the override),
    /// and renames the result into place.
    pub fn finish(self, spec: &Spec, description: &str) -> Result<WriteSummary, TimelineError> {
        let runner_count = self
            .options
            .runner_count_override
            .unwrap_or(spec.runner_count);
        if runner_count == 0 {
            return Err(TimelineError::InvalidWrite(
                "runner count must be at least 1".into(),
            ));
        }
        let shards = self.options.shards_per_runner;
        let run_count = u64::from(runner_count) * u64::from(shards);
        if run_count > MAX_RUNS {
            return Err(TimelineError::InvalidWrite(format!(
                "{runner_count} runners × {shards} shards = {run_count} runs exceeds the limit of {MAX_RUNS}; use fewer shards (--shards)"
            )));
        }
        let run_of = |hash: u64| -> usize {
            runner_of(hash, runner_count) as usize * shards as usize
                + shard_of(hash, shards) as usize
        };

        let spool = self.spool.finish()?;
        let mut counts = vec![0u64; run_count as usize];
        spool.for_each(|entry| {
            counts[run_of(entry.record.key_hash)] += 1;
            Ok(())
        })?;

        let n = self.count;
        let too_big = || TimelineError::InvalidWrite("timeline larger than 2^64 bytes".into());
        let mut requests_per_runner = vec![0u64; runner_count as usize];
        for (i, &count) in counts.iter().enumerate() {
            requests_per_runner[i / shards as usize] += count;
        }
        let mut runs = Vec::with_capacity(counts.len());
        let mut first = 0u64;
        for (i, &count) in counts.iter().enumerate() {
            runs.push(RunEntry {
                runner: (i / shards as usize) as u32,
                shard: (i % shards as usize) as u32,
                first_record: first,
                count,
            });
            first += count;
        }
        let (blob_file, blob_len) = self.blobs.into_file()?;
        let index_bytes: &[u8] = bytemuck::cast_slice(&runs);
        let label_bytes: &[u8] = bytemuck::cast_slice(&self.labels);
        let section = |offset: u64, len: u64| SectionEntry {
            offset,
            len,
            checksum: 0,
        };
        let mut sections = SectionTable {
            index: section(PREAMBLE_LEN as u64, index_bytes.len() as u64),
            ..SectionTable::default()
        };
        let end = |s: SectionEntry| s.offset.checked_add(s.len).and_then(align_up);
        sections.records = section(end(sections.index).ok_or_else(too_big)?, n * 64);
        sections.labels = section(
            end(sections.records).ok_or_else(too_big)?,
            label_bytes.len() as u64,
        );
        let origin_len = n
            .checked_mul(std::mem::size_of::<OriginEntry>() as u64)
            .ok_or_else(too_big)?;
        sections.origins = section(end(sections.labels).ok_or_else(too_big)?, origin_len);
        sections.blobs = section(end(sections.origins).ok_or_else(too_big)?, blob_len);
        let layout = self.options.block_layout;
        let block_map = BlockMap::new(layout, runs.iter().map(|r| r.count), origin_len, blob_len);
        sections.blocks = section(
            end(sections.blobs).ok_or_else(too_big)?,
            block_map.section_len().ok_or_else(too_big)?,
        );

        let out = Output::create(&self.dir, &self.output)?;
        sections.index.checksum = out.write_hashed(index_bytes, sections.index.offset)?;
        sections.labels.checksum = out.write_hashed(label_bytes, sections.labels.offset)?;

        // Pass 2: scatter records into their runs; origins go out in profile order.
        let mut scatter = RunScatter::new(&runs, sections.records.offset);
        let mut origins = SequentialWriter::new(sections.origins.offset);
        spool.for_each(|entry| {
            let record_index = scatter.place(&out, run_of(entry.record.key_hash), &entry.record)?;
            let [namespace, resource_kind, name, label_selector, api_path] = entry.origin;
            let origin = OriginEntry {
                record_index,
                namespace,
                resource_kind,
                name,
                label_selector,
                api_path,
            };
            origins.write(&out, bytemuck::bytes_of(&origin))
        })?;
        scatter.flush_all(&out)?;
        sections.origins.checksum = origins.finish(&out)?;
        sections.blobs.checksum = out.copy_from(&blob_file, blob_len, sections.blobs.offset)?;

        // The block table, read back from what was written: each run's records in blocks
        // (the whole records section hashed on the way), then the origins and the blobs.
        let mut sums = Vec::with_capacity(block_map.total() as usize);
        let mut records_hash = xxhash_rust::xxh3::Xxh3Default::new();
        let record_block = u64::from(layout.records_per_block) * 64;
        for run in &runs {
            out.hash_blocks(
                sections.records.offset + run.first_record * 64,
                run.count * 64,
                record_block,
                &mut sums,
                Some(&mut records_hash),
            )?;
        }
        sections.records.checksum = records_hash.digest();
        let o = sections.origins;
        out.hash_blocks(
            o.offset,
            o.len,
            layout.origin_block_bytes.into(),
            &mut sums,
            None,
        )?;
        let b = sections.blobs;
        out.hash_blocks(
            b.offset,
            b.len,
            layout.blob_block_bytes.into(),
            &mut sums,
            None,
        )?;
        debug_assert_eq!(sums.len() as u64, block_map.total());
        let block_bytes: &[u8] = bytemuck::cast_slice(&sums);
        sections.blocks.checksum = out.write_hashed(block_bytes, sections.blocks.offset)?;

        let header = TimelineHeader {
            format_version: FORMAT_VERSION,
            request_count: n,
            watch_count: self.watch_count,
            duration_us: self.last_due_us,
            runner_count,
            shards_per_runner: shards,
            spec: spec.clone(),
            description: description.to_string(),
            source: self.options.source.clone(),
            label_count: self.labels.len() as u32,
            path_mode: self.options.path_mode.clone(),
        };
        let file_header = FileHeader {
            header: header.clone(),
            sections,
            blocks: layout,
        };
        let header_bytes = bincode::serde::encode_to_vec(&file_header, header_config())
            .map_err(|e| TimelineError::InvalidWrite(format!("encode header: {e}")))?;
        if header_bytes.len() as u64 > MAX_HEADER_LEN {
            return Err(TimelineError::InvalidWrite(format!(
                "the header would be {} bytes, over the {MAX_HEADER_LEN}-byte limit (is the description that long?)",
                header_bytes.len()
            )));
        }
        let header_offset = sections.blocks.offset + sections.blocks.len;
        let header_checksum = out.write_hashed(&header_bytes, header_offset)?;
        let preamble = Preamble {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            reserved0: 0,
            header_offset,
            header_len: header_bytes.len() as u64,
            header_checksum,
            reserved: [0; 3],
        };
        out.write_hashed(bytemuck::bytes_of(&preamble), 0)?;
        let file_bytes = header_offset + header_bytes.len() as u64;
        out.persist(&self.destination)?;
        Ok(WriteSummary {
            header,
            distinct_targets: self.distinct_targets,
            distinct_bodies: self.distinct_bodies,
            blob_bytes: blob_len,
            file_bytes,
            requests_per_runner,
        })
    }
}
