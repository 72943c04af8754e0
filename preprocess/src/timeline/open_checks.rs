//! The structural checks `Timeline::open` and `verify` apply to the mapped bytes.

use xxhash_rust::xxh3::xxh3_64;

use super::error::TimelineError;
use super::format::{
    OriginEntry, RunEntry, SectionEntry, SectionTable, TimelineHeader, FORMAT_VERSION, MAX_RUNS,
    PREAMBLE_LEN, SECTION_ALIGN,
};
use super::reader::RunInfo;

/// `len` bytes at `offset`, or a Truncated error naming `what`.
pub(crate) fn slice<'m>(
    map: &'m [u8],
    offset: u64,
    len: u64,
    what: &str,
) -> Result<&'m [u8], TimelineError> {
    let file_len = map.len() as u64;
    let truncated = || TimelineError::Truncated {
        what: what.to_string(),
        start: offset,
        end: offset.saturating_add(len),
        file_len,
    };
    let end = offset.checked_add(len).ok_or_else(truncated)?;
    if end > file_len {
        return Err(truncated());
    }
    Ok(&map[offset as usize..end as usize])
}

/// A whole section as a slice of `T`, read in place (length and alignment checked).
pub(crate) fn cast_section<'m, T: bytemuck::Pod>(
    map: &'m [u8],
    s: SectionEntry,
    what: &str,
) -> Result<&'m [T], TimelineError> {
    let bytes = slice(map, s.offset, s.len, what)?;
    bytemuck::try_cast_slice(bytes)
        .map_err(|e| TimelineError::Corrupt(format!("{what} cannot be read in place: {e:?}")))
}

/// xxh3 of `bytes` against the stored checksum.
pub(crate) fn check_checksum(what: &str, bytes: &[u8], stored: u64) -> Result<(), TimelineError> {
    let computed = xxh3_64(bytes);
    if computed != stored {
        return Err(TimelineError::ChecksumMismatch {
            what: what.to_string(),
            stored,
            computed,
        });
    }
    Ok(())
}

/// Header values the rest of the checks rely on.
pub(crate) fn check_header(h: &TimelineHeader) -> Result<(), TimelineError> {
    if h.format_version != FORMAT_VERSION {
        return Err(TimelineError::UnsupportedVersion {
            found: h.format_version,
            expected: FORMAT_VERSION,
        });
    }
    if h.runner_count == 0 || h.shards_per_runner == 0 {
        return Err(TimelineError::Corrupt(format!(
            "runner count {} and shards per runner {} must both be at least 1",
            h.runner_count, h.shards_per_runner
        )));
    }
    if u64::from(h.runner_count) * u64::from(h.shards_per_runner) > MAX_RUNS {
        return Err(TimelineError::Corrupt(format!("more than {MAX_RUNS} runs")));
    }
    if h.watch_count > h.request_count {
        return Err(TimelineError::Corrupt("more WATCHes than requests".into()));
    }
    Ok(())
}

/// Section lengths against the header's counts; alignment, order and bounds.
pub(crate) fn check_sections(
    s: &SectionTable,
    h: &TimelineHeader,
    header_offset: u64,
) -> Result<(), TimelineError> {
    let runs = u64::from(h.runner_count) * u64::from(h.shards_per_runner);
    let expect_len = |name: &str, got: u64, want: Option<u64>| match want {
        Some(w) if w == got => Ok(()),
        _ => Err(TimelineError::Corrupt(format!(
            "{name} section is {got} bytes, expected {want:?} for the header's counts"
        ))),
    };
    expect_len(
        "index",
        s.index.len,
        runs.checked_mul(std::mem::size_of::<RunEntry>() as u64),
    )?;
    expect_len("records", s.records.len, h.request_count.checked_mul(64))?;
    expect_len(
        "labels",
        s.labels.len,
        u64::from(h.label_count).checked_mul(16),
    )?;
    expect_len(
        "origins",
        s.origins.len,
        h.request_count
            .checked_mul(std::mem::size_of::<OriginEntry>() as u64),
    )?;
    let mut min_start = PREAMBLE_LEN as u64;
    for (name, entry) in s.named() {
        if entry.offset % SECTION_ALIGN != 0 {
            return Err(TimelineError::Corrupt(format!(
                "{name} section offset {} is not a multiple of {SECTION_ALIGN}",
                entry.offset
            )));
        }
        if entry.offset < min_start {
            return Err(TimelineError::Corrupt(format!(
                "{name} section starts at {} inside the previous part (which ends at {min_start})",
                entry.offset
            )));
        }
        let end = entry
            .offset
            .checked_add(entry.len)
            .ok_or_else(|| TimelineError::Corrupt(format!("{name} section length overflows")))?;
        if end > header_offset {
            return Err(TimelineError::Truncated {
                what: format!("{name} section"),
                start: entry.offset,
                end,
                file_len: header_offset,
            });
        }
        min_start = end;
    }
    // The header follows the block table directly; anything else would be unchecked bytes.
    if s.blocks.offset + s.blocks.len != header_offset {
        return Err(TimelineError::Corrupt(
            "the header does not follow the blocks section".into(),
        ));
    }
    Ok(())
}

/// The zero padding before every section (under 64 bytes each, so checked at open).
pub(crate) fn check_padding(map: &[u8], s: &SectionTable) -> Result<(), TimelineError> {
    let mut expected_start = PREAMBLE_LEN as u64;
    for (name, entry) in s.named() {
        let gap = slice(map, expected_start, entry.offset - expected_start, name)?;
        if gap.iter().any(|&b| b != 0) {
            return Err(TimelineError::Corrupt(format!(
                "padding before the {name} section is not zero"
            )));
        }
        expected_start = entry.offset + entry.len;
    }
    Ok(())
}

/// The run index: runner-major order, contiguous runs summing to the request count.
pub(crate) fn check_index(
    bytes: &[u8],
    h: &TimelineHeader,
) -> Result<(Vec<RunInfo>, Vec<u64>), TimelineError> {
    let entries: Vec<RunEntry> = bytes
        .chunks_exact(std::mem::size_of::<RunEntry>())
        .map(bytemuck::pod_read_unaligned)
        .collect();
    let shards = h.shards_per_runner;
    let mut next_first = 0u64;
    let mut runs = Vec::with_capacity(entries.len());
    let mut starts = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let want_runner = (i as u64 / u64::from(shards)) as u32;
        let want_shard = (i as u64 % u64::from(shards)) as u32;
        if (e.runner, e.shard) != (want_runner, want_shard) {
            return Err(TimelineError::Corrupt(format!(
                "index entry {i} is ({}, {}) but should be runner {want_runner} shard {want_shard}",
                e.runner, e.shard
            )));
        }
        if e.first_record != next_first {
            return Err(TimelineError::Corrupt(format!(
                "index entry {i} starts at record {} but the previous run ends at {next_first}",
                e.first_record
            )));
        }
        next_first = e
            .first_record
            .checked_add(e.count)
            .filter(|&end| end <= h.request_count)
            .ok_or_else(|| {
                TimelineError::Corrupt(format!(
                    "index entry {i} ({} records from {}) runs past the {} records",
                    e.count, e.first_record, h.request_count
                ))
            })?;
        runs.push(RunInfo {
            runner: e.runner,
            shard: e.shard,
            len: e.count,
        });
        starts.push(e.first_record);
    }
    if next_first != h.request_count {
        return Err(TimelineError::Corrupt(format!(
            "the runs hold {next_first} records but the header counts {}",
            h.request_count
        )));
    }
    Ok((runs, starts))
}
