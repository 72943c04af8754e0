//! Header block decoding (RFC 7541 §3, §6).

use super::table::{DynamicTable, STATIC};
use super::{read_int, read_string, DecodeError, HuffmanMemo};

/// Decodes the peer's header blocks, keeping the dynamic table they build.
pub struct Decoder {
    pub(super) table: DynamicTable,
    /// The largest table size the peer may ask for (our SETTINGS_HEADER_TABLE_SIZE).
    max_table_size: usize,
    /// Huffman-decoded names and copied names of new entries.
    name_buf: Vec<u8>,
    /// Huffman-decoded values.
    value_buf: Vec<u8>,
    memo: HuffmanMemo,
}

impl Decoder {
    /// A decoder whose dynamic table may grow to `max_table_size` bytes (what our
    /// SETTINGS_HEADER_TABLE_SIZE allows; 4096 by default). The table starts at that size.
    pub fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_table_size,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
            memo: HuffmanMemo::default(),
        }
    }

    /// Decodes one whole header block (HEADERS + CONTINUATION payloads already joined), calling
    /// `field(name, value)` for each header field in order (pseudo-headers included). Updates
    /// the dynamic table. After an error the connection is dead (COMPRESSION_ERROR), so the
    /// state left does not matter.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let mut pos = 0;
        // Size updates are allowed only before the first field (§4.2).
        let mut at_start = true;
        while let Some(&first) = block.get(pos) {
            if first & 0x80 != 0 {
                // Indexed field (§6.1).
                let index = read_int(block, &mut pos, 7)?;
                let (name, value) = entry(&self.table, index)?;
                field(name, value);
            } else if first & 0x40 != 0 {
                // Literal with incremental indexing (§6.2.1).
                let index = read_int(block, &mut pos, 6)?;
                let name: &[u8] = if index == 0 {
                    read_string(block, &mut pos, &mut self.name_buf, &mut self.memo)?
                } else {
                    // Copied: inserting may evict the entry it names (§4.4).
                    let (name, _) = entry(&self.table, index)?;
                    self.name_buf.clear();
                    self.name_buf.extend_from_slice(name);
                    &self.name_buf
                };
                let value = read_string(block, &mut pos, &mut self.value_buf, &mut self.memo)?;
                self.table.insert(name, value);
                field(name, value);
            } else if first & 0x20 != 0 {
                // Dynamic table size update (§6.3).
                if !at_start {
                    return Err(DecodeError::LateTableSizeUpdate);
                }
                let size = read_int(block, &mut pos, 5)?;
                if size > self.max_table_size {
                    return Err(DecodeError::TableSizeTooLarge {
                        size,
                        max: self.max_table_size,
                    });
                }
                self.table.set_max_size(size);
                continue;
            } else {
                // Literal without indexing (0000) or never indexed (0001): the same to a decoder
                // that does not re-encode (§6.2.2, §6.2.3).
                let index = read_int(block, &mut pos, 4)?;
                let name: &[u8] = if index == 0 {
                    read_string(block, &mut pos, &mut self.name_buf, &mut self.memo)?
                } else {
                    entry(&self.table, index)?.0
                };
                let value = read_string(block, &mut pos, &mut self.value_buf, &mut self.memo)?;
                field(name, value);
            }
            at_start = false;
        }
        Ok(())
    }
}

/// The entry at `index` of the index space (§2.3.3): static from 1, dynamic from 62.
fn entry(table: &DynamicTable, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
    if index == 0 {
        return Err(DecodeError::ZeroIndex);
    }
    if let Some(&(name, value)) = STATIC.get(index - 1) {
        return Ok((name, value));
    }
    table
        .get(index - 1 - STATIC.len())
        .ok_or(DecodeError::IndexPastTables {
            index,
            entries: STATIC.len() + table.len(),
        })
}
