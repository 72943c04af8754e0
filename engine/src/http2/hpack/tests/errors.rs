//! Every `DecodeError`, each from a crafted block.

use super::super::{DecodeError, Decoder};
use super::{decode, hex, huffman_encode};

fn error_of(block: &[u8]) -> DecodeError {
    decode(&mut Decoder::new(4096), block).unwrap_err()
}

#[test]
fn truncated_integer() {
    // Indexed field whose 7-bit prefix is full, then nothing or an unfinished continuation.
    assert_eq!(error_of(&[0xff]), DecodeError::TruncatedInteger);
    assert_eq!(error_of(&[0xff, 0x80]), DecodeError::TruncatedInteger);
    // A string length cut the same way.
    assert_eq!(error_of(&[0x04, 0x7f, 0x81]), DecodeError::TruncatedInteger);
}

#[test]
fn integer_overflow() {
    // 127 + (2^28 - 1) + 15·2^28 = 2^32 + 126.
    assert_eq!(
        error_of(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        DecodeError::IntegerOverflow
    );
    // Zero continuation bytes past the fifth: refused rather than read forever.
    assert_eq!(
        error_of(&[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
        DecodeError::IntegerOverflow
    );
    // u32::MAX itself is an integer; as an index it is simply past the tables.
    assert_eq!(
        error_of(&[0xff, 0x80, 0xff, 0xff, 0xff, 0x0f]),
        DecodeError::IndexPastTables {
            index: u32::MAX as usize,
            entries: 61
        }
    );
}

#[test]
fn truncated_string() {
    // New name expected after the representation's first byte.
    assert_eq!(error_of(&[0x40]), DecodeError::TruncatedString);
    // Name indexed (:path), value missing.
    assert_eq!(error_of(&[0x04]), DecodeError::TruncatedString);
    // Name literal complete, value missing.
    assert_eq!(error_of(&[0x10, 0x01, b'x']), DecodeError::TruncatedString);
}

#[test]
fn string_past_block() {
    assert_eq!(
        error_of(&[0x40, 0x05, b'a']),
        DecodeError::StringPastBlock { len: 5, left: 1 }
    );
    assert_eq!(
        error_of(&[0x04, 0x83, 0xff]),
        DecodeError::StringPastBlock { len: 3, left: 1 }
    );
}

#[test]
fn zero_index() {
    assert_eq!(error_of(&[0x80]), DecodeError::ZeroIndex);
}

#[test]
fn index_past_tables() {
    // Indexed 62 with an empty dynamic table.
    assert_eq!(
        error_of(&[0xbe]),
        DecodeError::IndexPastTables {
            index: 62,
            entries: 61
        }
    );
    // A name index past the tables, in each literal form.
    for first in [0x7e, 0x0f, 0x1f] {
        let block = if first == 0x7e {
            vec![first, 0x00]
        } else {
            vec![first, 0x2f, 0x00]
        };
        assert_eq!(
            error_of(&block),
            DecodeError::IndexPastTables {
                index: 62,
                entries: 61
            }
        );
    }
    // One entry in the table: 62 exists, 63 does not.
    let mut decoder = Decoder::new(4096);
    decode(&mut decoder, &hex("400a 6375 7374 6f6d 2d6b 6579 0161")).unwrap();
    assert_eq!(decode(&mut decoder, &[0xbe]).unwrap().len(), 1);
    assert_eq!(
        decode(&mut decoder, &[0xbf]).unwrap_err(),
        DecodeError::IndexPastTables {
            index: 63,
            entries: 62
        }
    );
}

#[test]
fn table_size_too_large() {
    // 4097 = 31 + 0x62 + 0x1f·128.
    assert_eq!(
        error_of(&[0x3f, 0xe2, 0x1f]),
        DecodeError::TableSizeTooLarge {
            size: 4097,
            max: 4096
        }
    );
    let mut decoder = Decoder::new(100);
    assert_eq!(
        decode(&mut decoder, &[0x3f, 0x46]).unwrap_err(),
        DecodeError::TableSizeTooLarge {
            size: 101,
            max: 100
        }
    );
    // The limit itself and two updates in a row are fine.
    let mut decoder = Decoder::new(100);
    assert_eq!(
        decode(&mut decoder, &[0x20, 0x3f, 0x45, 0x82])
            .unwrap()
            .len(),
        1
    );
    assert_eq!(decoder.table.max_size(), 100);
}

#[test]
fn late_table_size_update() {
    assert_eq!(error_of(&[0x82, 0x20]), DecodeError::LateTableSizeUpdate);
    assert_eq!(
        error_of(&[0x20, 0x82, 0x3f, 0x45]),
        DecodeError::LateTableSizeUpdate
    );
}

/// A literal without indexing, name :authority, with `huffman` as its Huffman-coded value.
fn with_huffman_value(huffman: &[u8]) -> Vec<u8> {
    let mut block = vec![0x01, 0x80 | huffman.len() as u8];
    block.extend_from_slice(huffman);
    block
}

#[test]
fn huffman_eos() {
    // 30 ones: EOS, then padding.
    assert_eq!(
        error_of(&with_huffman_value(&[0xff; 4])),
        DecodeError::HuffmanEos
    );
    // EOS after a symbol, mid-byte.
    let value = [0x1f, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        error_of(&with_huffman_value(&value)),
        DecodeError::HuffmanEos
    );
}

#[test]
fn huffman_padding_too_long() {
    // 'a' (00011), then 11 ones.
    assert_eq!(
        error_of(&with_huffman_value(&[0x1f, 0xff])),
        DecodeError::HuffmanPaddingTooLong
    );
    // A whole byte of padding after a byte-aligned string.
    let mut value = huffman_encode(b"0a0");
    assert_eq!(value.len() * 8, 15 + 1);
    value.push(0xff);
    assert_eq!(
        error_of(&with_huffman_value(&value)),
        DecodeError::HuffmanPaddingTooLong
    );
    // Eight ones alone.
    assert_eq!(
        error_of(&with_huffman_value(&[0xff])),
        DecodeError::HuffmanPaddingTooLong
    );
}

#[test]
fn huffman_padding_not_ones() {
    // 'a' (00011), then 000.
    assert_eq!(
        error_of(&with_huffman_value(&[0x18])),
        DecodeError::HuffmanPaddingNotOnes
    );
    // 'a', then 110.
    assert_eq!(
        error_of(&with_huffman_value(&[0x1e])),
        DecodeError::HuffmanPaddingNotOnes
    );
    // The same strings with good padding decode.
    let mut decoder = Decoder::new(4096);
    let good = decode(&mut decoder, &with_huffman_value(&[0x1f])).unwrap();
    assert_eq!(good, vec![(b":authority".to_vec(), b"a".to_vec())]);
}

#[test]
fn errors_have_messages() {
    let all = [
        DecodeError::TruncatedInteger,
        DecodeError::IntegerOverflow,
        DecodeError::TruncatedString,
        DecodeError::StringPastBlock { len: 5, left: 1 },
        DecodeError::ZeroIndex,
        DecodeError::IndexPastTables {
            index: 62,
            entries: 61,
        },
        DecodeError::TableSizeTooLarge {
            size: 4097,
            max: 4096,
        },
        DecodeError::LateTableSizeUpdate,
        DecodeError::HuffmanEos,
        DecodeError::HuffmanPaddingTooLong,
        DecodeError::HuffmanPaddingNotOnes,
    ];
    for error in all {
        let message = error.to_string();
        assert!(
            message.starts_with("HPACK: ") && message.len() > 20,
            "{message}"
        );
    }
    assert_eq!(
        DecodeError::StringPastBlock { len: 5, left: 1 }.to_string(),
        "HPACK: string literal of 5 bytes runs past the end of the block (1 left)"
    );
}
