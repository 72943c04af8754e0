//! HPACK (RFC 7541), the header compression of HTTP/2, for a client: [`Encoder`] writes request
//! header blocks, [`Decoder`] reads response header blocks.
//!
//! Both keep their state in reused buffers: once warm, neither allocates per header or per
//! block. The encoder writes strings raw (no Huffman), which is cheaper and always allowed; the
//! decoder reads both forms.

mod decoder;
mod encoder;
mod huffman;
mod table;
#[cfg(test)]
mod tests;

pub use decoder::Decoder;
pub use encoder::{Encoder, Indexing};

/// Why a header block could not be decoded. Any of them is a connection error of type
/// COMPRESSION_ERROR (RFC 9113 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("HPACK: header block ends inside an integer")]
    TruncatedInteger,
    #[error("HPACK: integer larger than {}", u32::MAX)]
    IntegerOverflow,
    #[error("HPACK: header block ends where a string literal should start")]
    TruncatedString,
    #[error("HPACK: string literal of {len} bytes runs past the end of the block ({left} left)")]
    StringPastBlock { len: usize, left: usize },
    #[error("HPACK: index 0 is not a table entry")]
    ZeroIndex,
    #[error("HPACK: index {index} is past the tables ({entries} entries)")]
    IndexPastTables { index: usize, entries: usize },
    #[error("HPACK: dynamic table size update to {size} exceeds the allowed {max}")]
    TableSizeTooLarge { size: usize, max: usize },
    #[error("HPACK: dynamic table size update after a header field")]
    LateTableSizeUpdate,
    #[error("HPACK: EOS symbol inside a Huffman string")]
    HuffmanEos,
    #[error("HPACK: Huffman padding longer than 7 bits")]
    HuffmanPaddingTooLong,
    #[error("HPACK: Huffman padding is not all ones")]
    HuffmanPaddingNotOnes,
}

/// Reads an integer with an `n`-bit prefix (RFC 7541 §5.1) at `*pos`, which must be in the
/// block, and moves `*pos` past it. Values above `u32::MAX` are refused: no length or index
/// in a sane block comes near, and the bound keeps the arithmetic exact.
pub(super) fn read_int(block: &[u8], pos: &mut usize, n: u32) -> Result<usize, DecodeError> {
    let mask = ((1u16 << n) - 1) as u8;
    let first = block[*pos] & mask;
    *pos += 1;
    if first < mask {
        return Ok(usize::from(first));
    }
    let mut value = u64::from(mask);
    let mut shift = 0u32;
    loop {
        let Some(&byte) = block.get(*pos) else {
            return Err(DecodeError::TruncatedInteger);
        };
        *pos += 1;
        // Past 5 continuation bytes only zero-padded encodings remain: refused as overflow too.
        if shift > 28 {
            return Err(DecodeError::IntegerOverflow);
        }
        value += u64::from(byte & 0x7f) << shift;
        if value > u64::from(u32::MAX) {
            return Err(DecodeError::IntegerOverflow);
        }
        if byte & 0x80 == 0 {
            return Ok(value as usize);
        }
        shift += 7;
    }
}

/// Appends `value` with an `n`-bit prefix; `flags` fills the first byte's other bits.
pub(super) fn write_int(out: &mut Vec<u8>, flags: u8, n: u32, value: usize) {
    let mask = (1usize << n) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Reads a string literal (§5.2) at `*pos`: a raw one is borrowed from the block, a Huffman one
/// is decoded into `scratch` (cleared first), through `memo`.
pub(super) fn read_string<'a>(
    block: &'a [u8],
    pos: &mut usize,
    scratch: &'a mut Vec<u8>,
    memo: &mut HuffmanMemo,
) -> Result<&'a [u8], DecodeError> {
    let Some(&first) = block.get(*pos) else {
        return Err(DecodeError::TruncatedString);
    };
    let len = read_int(block, pos, 7)?;
    let left = block.len() - *pos;
    if len > left {
        return Err(DecodeError::StringPastBlock { len, left });
    }
    let raw = &block[*pos..*pos + len];
    *pos += len;
    if first & 0x80 == 0 {
        return Ok(raw);
    }
    scratch.clear();
    memo.decode(raw, scratch)?;
    Ok(scratch)
}

/// How many recent Huffman strings a [`HuffmanMemo`] keeps.
const MEMO_ENTRIES: usize = 8;

/// The last Huffman strings decoded and their decodings. A server repeats most of its
/// response header values (`date` within its second, `content-type`, `server`), and
/// comparing a few bytes costs less than decoding them again.
#[derive(Default)]
pub(super) struct HuffmanMemo {
    entries: [(Vec<u8>, Vec<u8>); MEMO_ENTRIES],
    next: usize,
}

impl HuffmanMemo {
    /// Appends the decoding of `raw` to `dst` (empty).
    fn decode(&mut self, raw: &[u8], dst: &mut Vec<u8>) -> Result<(), DecodeError> {
        debug_assert!(dst.is_empty());
        if let Some((_, decoded)) = self.entries.iter().find(|(r, _)| r.as_slice() == raw) {
            dst.extend_from_slice(decoded);
            return Ok(());
        }
        huffman::decode(raw, dst)?;
        let (r, decoded) = &mut self.entries[self.next];
        r.clear();
        r.extend_from_slice(raw);
        decoded.clear();
        decoded.extend_from_slice(dst);
        self.next = (self.next + 1) % MEMO_ENTRIES;
        Ok(())
    }
}

/// Appends a raw string literal.
pub(super) fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    write_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}
