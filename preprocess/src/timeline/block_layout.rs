//! Where each block's checksum lies in the `blocks` section, for the writer, the reader
//! and `reseal`: first every run's record blocks (run after run, in index order), then the
//! origin blocks, then the blob blocks.

use std::ops::Range;

use super::error::TimelineError;
use super::format::{BlockLayout, MAX_BLOCK};

/// The block table's shape for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockMap {
    layout: BlockLayout,
    /// Index of each run's first block; one more entry than runs (the origins' first block).
    run_first: Vec<u64>,
    origin_blocks: u64,
    blob_blocks: u64,
}

/// Checks the block sizes a header declares.
pub(crate) fn check_layout(layout: &BlockLayout) -> Result<(), TimelineError> {
    for (name, value) in [
        ("records per block", layout.records_per_block),
        ("origin block bytes", layout.origin_block_bytes),
        ("blob block bytes", layout.blob_block_bytes),
    ] {
        if value == 0 || value > MAX_BLOCK {
            return Err(TimelineError::Corrupt(format!(
                "block layout: {name} is {value}, expected 1..={MAX_BLOCK}"
            )));
        }
    }
    Ok(())
}

impl BlockMap {
    /// The map for runs of `run_lens` records and the given section lengths (in bytes);
    /// the layout must have passed `check_layout`.
    pub(crate) fn new(
        layout: BlockLayout,
        run_lens: impl IntoIterator<Item = u64>,
        origins_len: u64,
        blobs_len: u64,
    ) -> BlockMap {
        let mut run_first = vec![0u64];
        let mut next = 0u64;
        for len in run_lens {
            next += len.div_ceil(u64::from(layout.records_per_block));
            run_first.push(next);
        }
        BlockMap {
            layout,
            run_first,
            origin_blocks: origins_len.div_ceil(u64::from(layout.origin_block_bytes)),
            blob_blocks: blobs_len.div_ceil(u64::from(layout.blob_block_bytes)),
        }
    }

    /// The layout the map was made for.
    pub(crate) fn layout(&self) -> BlockLayout {
        self.layout
    }

    /// Table positions of run `run`'s record blocks.
    pub(crate) fn run_blocks(&self, run: usize) -> Range<u64> {
        self.run_first[run]..self.run_first[run + 1]
    }

    /// Table position of the first origin block.
    pub(crate) fn origin_first(&self) -> u64 {
        self.run_first[self.run_first.len() - 1]
    }

    /// Number of origin blocks.
    pub(crate) fn origin_blocks(&self) -> u64 {
        self.origin_blocks
    }

    /// Table position of the first blob block.
    pub(crate) fn blob_first(&self) -> u64 {
        self.origin_first() + self.origin_blocks
    }

    /// Number of blob blocks.
    pub(crate) fn blob_blocks(&self) -> u64 {
        self.blob_blocks
    }

    /// Entries in the whole table.
    pub(crate) fn total(&self) -> u64 {
        self.blob_first() + self.blob_blocks
    }

    /// Byte length of the `blocks` section.
    pub(crate) fn section_len(&self) -> Option<u64> {
        self.total().checked_mul(8)
    }
}

/// xxh3 of each `block`-byte piece of `bytes` (the last one may be shorter), appended to `sums`.
pub(crate) fn hash_blocks(bytes: &[u8], block: usize, sums: &mut Vec<u64>) {
    sums.extend(bytes.chunks(block.max(1)).map(xxhash_rust::xxh3::xxh3_64));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_then_origins_then_blobs() {
        let layout = BlockLayout {
            records_per_block: 4,
            origin_block_bytes: 100,
            blob_block_bytes: 10,
        };
        let map = BlockMap::new(layout, [9, 0, 4], 250, 31);
        assert_eq!(map.run_blocks(0), 0..3);
        assert_eq!(map.run_blocks(1), 3..3);
        assert_eq!(map.run_blocks(2), 3..4);
        assert_eq!((map.origin_first(), map.origin_blocks()), (4, 3));
        assert_eq!((map.blob_first(), map.blob_blocks()), (7, 4));
        assert_eq!(map.section_len(), Some(88));
    }

    #[test]
    fn zero_and_huge_block_sizes_are_refused() {
        let ok = BlockLayout::default();
        assert!(check_layout(&ok).is_ok());
        for bad in [
            BlockLayout {
                records_per_block: 0,
                ..ok
            },
            BlockLayout {
                blob_block_bytes: MAX_BLOCK + 1,
                ..ok
            },
        ] {
            let e = check_layout(&bad).unwrap_err().to_string();
            assert!(e.contains("expected 1..="), "{e}");
        }
    }
}
