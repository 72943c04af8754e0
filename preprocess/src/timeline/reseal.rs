//! Recomputes every checksum of a timeline image in place: the sections', the blocks' and
//! the header's. For tests and the fuzzer, which change a record's fields on purpose and
//! need the file to reach the per-record checks instead of stopping at a checksum.

use xxhash_rust::xxh3::xxh3_64;

use super::block_layout::{check_layout, hash_blocks};
use super::error::TimelineError;
use super::format::{header_config, FileHeader, Preamble, RunEntry, SectionEntry, PREAMBLE_LEN};
use super::open_checks::slice;

/// Rewrites the checksums of `image` (a whole timeline file) to match its bytes: every
/// section's, every block's and the header's (the header is re-encoded, so the image's
/// length may change). Fails, changing nothing, when the image's preamble, header or
/// section table cannot be read: only a file whose structure is intact can be resealed.
pub fn reseal_checksums(image: &mut Vec<u8>) -> Result<(), TimelineError> {
    let preamble: Preamble =
        bytemuck::pod_read_unaligned(slice(image, 0, PREAMBLE_LEN as u64, "preamble")?);
    let header_bytes = slice(image, preamble.header_offset, preamble.header_len, "header")?;
    let (mut file_header, _): (FileHeader, usize) =
        bincode::serde::decode_from_slice(header_bytes, header_config())
            .map_err(|e| TimelineError::Corrupt(format!("header does not decode: {e}")))?;
    let body = &image[..preamble.header_offset as usize];
    let layout = file_header.blocks;
    check_layout(&layout)?;
    let s = &mut file_header.sections;
    let bytes_of = |e: SectionEntry, name: &str| slice(body, e.offset, e.len, name);

    let mut sums = Vec::new();
    let index = bytes_of(s.index, "index section")?;
    let record_block = u64::from(layout.records_per_block) * 64;
    for run in index.chunks_exact(std::mem::size_of::<RunEntry>()) {
        let run: RunEntry = bytemuck::pod_read_unaligned(run);
        let start = run
            .first_record
            .checked_mul(64)
            .and_then(|o| o.checked_add(s.records.offset));
        let len = run.count.checked_mul(64);
        let (Some(start), Some(len)) = (start, len) else {
            return Err(TimelineError::Corrupt("a run's records overflow".into()));
        };
        hash_blocks(
            slice(body, start, len, "a run's records")?,
            record_block as usize,
            &mut sums,
        );
    }
    let origins = bytes_of(s.origins, "origins section")?;
    hash_blocks(origins, layout.origin_block_bytes as usize, &mut sums);
    let blobs = bytes_of(s.blobs, "blobs section")?;
    hash_blocks(blobs, layout.blob_block_bytes as usize, &mut sums);
    if sums.len() as u64 * 8 != s.blocks.len {
        return Err(TimelineError::Corrupt(format!(
            "blocks section is {} bytes but the file has {} blocks",
            s.blocks.len,
            sums.len()
        )));
    }
    for (e, name) in [
        (s.blocks, "blocks"),
        (s.labels, "labels"),
        (s.records, "records"),
    ] {
        bytes_of(e, name)?;
    }
    let table: &[u8] = bytemuck::cast_slice(&sums);
    let at = s.blocks.offset as usize;
    image[at..at + table.len()].copy_from_slice(table);

    let body = &image[..preamble.header_offset as usize];
    for entry in [
        &mut s.index,
        &mut s.records,
        &mut s.labels,
        &mut s.origins,
        &mut s.blobs,
        &mut s.blocks,
    ] {
        entry.checksum = xxh3_64(slice(body, entry.offset, entry.len, "section")?);
    }
    let header = bincode::serde::encode_to_vec(&file_header, header_config())
        .map_err(|e| TimelineError::InvalidWrite(format!("encode header: {e}")))?;
    image.truncate(preamble.header_offset as usize);
    image.extend_from_slice(&header);
    let preamble = Preamble {
        header_len: header.len() as u64,
        header_checksum: xxh3_64(&header),
        ..preamble
    };
    image[..PREAMBLE_LEN].copy_from_slice(bytemuck::bytes_of(&preamble));
    Ok(())
}
