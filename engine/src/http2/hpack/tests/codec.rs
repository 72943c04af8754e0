//! The encoder through the decoder: fields survive, and the encoder's model of the peer's
//! table stays the decoder's table.

use super::super::table::DynamicTable;
use super::super::{Decoder, Encoder, Indexing};
use super::{contents, decode, huffman_encode, Fields, Rng};

type Field<'a> = (&'a [u8], &'a [u8], Indexing);

/// Encodes `list` as one block, decodes it, checks fields and tables, returns the block.
fn round_trip(encoder: &mut Encoder, decoder: &mut Decoder, list: &[Field]) -> Vec<u8> {
    let mut block = Vec::new();
    encoder.begin_block(&mut block);
    for &(name, value, indexing) in list {
        encoder.field(name, value, indexing, &mut block);
    }
    let want: Fields = list
        .iter()
        .map(|(n, v, _)| (n.to_vec(), v.to_vec()))
        .collect();
    assert_eq!(decode(decoder, &block).unwrap(), want);
    assert_eq!(contents(&encoder.table), contents(&decoder.table));
    assert_eq!(encoder.table.size(), decoder.table.size());
    assert_eq!(encoder.table.max_size(), decoder.table.max_size());
    block
}

const UA: Field = (b"user-agent", b"kreplay/0.1", Indexing::Index);
const AUTH: Field = (b"authorization", b"Bearer abc.def", Indexing::Never);

#[test]
fn repeated_index_field_costs_one_byte() {
    let (mut encoder, mut decoder) = (Encoder::new(), Decoder::new(4096));
    let first = round_trip(&mut encoder, &mut decoder, &[UA]);
    assert!(first.len() > 11);
    // The newest dynamic entry: index 62.
    assert_eq!(round_trip(&mut encoder, &mut decoder, &[UA]), [0x80 | 62]);
    // A name-only repeat still costs its value.
    let other = (&b"user-agent"[..], &b"other"[..], Indexing::Index);
    assert_eq!(
        round_trip(&mut encoder, &mut decoder, &[other]).len(),
        1 + 1 + 5
    );
    assert_eq!(round_trip(&mut encoder, &mut decoder, &[UA]), [0x80 | 63]);
}

#[test]
fn static_full_matches_are_one_byte() {
    let (mut encoder, mut decoder) = (Encoder::new(), Decoder::new(4096));
    let list = [
        (&b":method"[..], &b"GET"[..], Indexing::NoIndex),
        (b":scheme", b"https", Indexing::Index),
        (b":path", b"/", Indexing::NoIndex),
    ];
    assert_eq!(
        round_trip(&mut encoder, &mut decoder, &list),
        [0x82, 0x87, 0x84]
    );
    assert_eq!(encoder.table.len(), 0);
}

#[test]
fn never_indexed_stays_literal() {
    let (mut encoder, mut decoder) = (Encoder::new(), Decoder::new(4096));
    for _ in 0..3 {
        let block = round_trip(&mut encoder, &mut decoder, &[AUTH]);
        // Never indexed (0001), name index 23 (authorization) = 15 + 8, raw value.
        assert_eq!(block[..3], [0x1f, 0x08, 14]);
        assert_eq!(&block[3..], AUTH.1);
    }
    assert_eq!(decoder.table.len(), 0);
    // Even when the same field was indexed before, it is not referenced by index.
    let indexed = (b"x-token".as_slice(), b"secret".as_slice(), Indexing::Index);
    round_trip(&mut encoder, &mut decoder, &[indexed]);
    let never = (indexed.0, indexed.1, Indexing::Never);
    let block = round_trip(&mut encoder, &mut decoder, &[never]);
    // Never indexed with the dynamic name 62 = 15 + 47.
    assert_eq!(block[..2], [0x1f, 47]);
}

#[test]
fn size_updates_and_big_fields() {
    let (mut encoder, mut decoder) = (Encoder::new(), Decoder::new(4096));
    let accept = (&b"accept"[..], &b"application/json"[..], Indexing::Index);
    round_trip(&mut encoder, &mut decoder, &[UA, accept, AUTH]);
    assert_eq!(decoder.table.len(), 2);

    encoder.set_peer_table_size(0);
    let block = round_trip(&mut encoder, &mut decoder, &[UA]);
    assert_eq!(block[0], 0x20);
    assert_eq!(decoder.table.len(), 0);
    // Nothing fits: the field goes as a literal without indexing, every time.
    assert_eq!(block[1], 0x0f);
    assert_eq!(round_trip(&mut encoder, &mut decoder, &[UA])[0], 0x0f);

    encoder.set_peer_table_size(100);
    let block = round_trip(&mut encoder, &mut decoder, &[UA, accept]);
    // 100 = 31 + 69.
    assert_eq!(block[..2], [0x3f, 69]);
    assert_eq!(decoder.table.max_size(), 100);
    // user-agent (10 + 11 + 32 = 53) was evicted by accept (6 + 16 + 32 = 54).
    assert_eq!(
        contents(&decoder.table),
        [(accept.0.to_vec(), accept.1.to_vec())]
    );

    // Bigger than the whole table: written, not inserted, and the table keeps its entry.
    let big_value = [b'v'; 80];
    let big = (&b"x-big"[..], &big_value[..], Indexing::Index);
    let block = round_trip(&mut encoder, &mut decoder, &[big]);
    assert_eq!(block[0] & 0xf0, 0x00);
    assert_eq!(
        round_trip(&mut encoder, &mut decoder, &[accept]),
        [0x80 | 62]
    );

    // No change, no update; above 4096 the encoder stays at 4096.
    encoder.set_peer_table_size(100);
    assert_eq!(
        round_trip(&mut encoder, &mut decoder, &[accept]),
        [0x80 | 62]
    );
    encoder.set_peer_table_size(1 << 20);
    let block = round_trip(&mut encoder, &mut decoder, &[accept]);
    // 4096 = 31 + 0x61 + 0x1f·128, then the indexed field.
    assert_eq!(block, [0x3f, 0xe1, 0x1f, 0x80 | 62]);
}

#[test]
fn shrink_then_grow_announces_both() {
    let (mut encoder, mut decoder) = (Encoder::new(), Decoder::new(4096));
    round_trip(&mut encoder, &mut decoder, &[UA]);
    encoder.set_peer_table_size(0);
    encoder.set_peer_table_size(4096);
    let block = round_trip(&mut encoder, &mut decoder, &[UA]);
    // 0, then 4096, then user-agent again as a new entry (its name from the static table, 58).
    assert_eq!(block[..5], [0x20, 0x3f, 0xe1, 0x1f, 0x40 | 58]);
}

#[test]
fn decoder_entry_named_by_the_entry_it_evicts() {
    let mut decoder = Decoder::new(4096);
    let name = b"x-long-header-name";
    let mut block = vec![0x3f, 0x45, 0x40, name.len() as u8];
    block.extend_from_slice(name);
    block.extend_from_slice(&[0x05]);
    block.extend_from_slice(b"first");
    decode(&mut decoder, &block).unwrap();
    assert_eq!(decoder.table.size(), 18 + 5 + 32);
    // Same name by index 62, longer value: 18 + 30 + 32 > 100 - 55, so 62 goes first.
    let mut block = vec![0x40 | 62, 30];
    block.extend_from_slice(&[b'z'; 30]);
    let got = decode(&mut decoder, &block).unwrap();
    assert_eq!(got, [(name.to_vec(), vec![b'z'; 30])]);
    assert_eq!(contents(&decoder.table), got);
}

#[test]
fn oversized_entry_empties_decoder_table() {
    let mut decoder = Decoder::new(4096);
    // Table size 60, one small entry, then an entry of 10 + 20 + 32 > 60.
    let mut block = vec![0x3f, 60 - 31, 0x40, 1, b'a', 1, b'b', 0x40, 10];
    block.extend_from_slice(b"0123456789");
    block.push(20);
    block.extend_from_slice(&[b'v'; 20]);
    let got = decode(&mut decoder, &block).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(decoder.table.len(), 0);
    assert_eq!(decoder.table.size(), 0);
}

#[test]
fn table_storage_stops_growing() {
    let mut table = DynamicTable::new(300);
    let mut rng = Rng(7);
    let mut value = Vec::new();
    let mut capacity = table.capacity();
    let mut growths = 0;
    for round in 0..20_000 {
        value.clear();
        value.resize(rng.below(120), b'a' + (round % 26) as u8);
        assert!(table.insert(b"x-name", &value));
        let (name, newest) = table.get(0).unwrap();
        assert_eq!((name, newest), (&b"x-name"[..], &value[..]));
        assert!(table.size() <= 300);
        if table.capacity() != capacity {
            capacity = table.capacity();
            growths += 1;
        }
    }
    // A few doublings while warming up, then the same buffer for 20 000 entries.
    assert!(growths <= 8, "{growths}");
    assert!(capacity <= 2 * 300, "{capacity}");
}

#[test]
fn random_round_trips() {
    const NAMES: [&[u8]; 12] = [
        b":authority",
        b":method",
        b":path",
        b":scheme",
        b"accept",
        b"user-agent",
        b"authorization",
        b"content-type",
        b"content-length",
        b"x-request-id",
        b"x-a",
        b"cookie",
    ];
    const VALUES: [&[u8]; 6] = [b"GET", b"POST", b"/", b"https", b"", b"application/json"];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let (mut encoder, mut decoder) = (Encoder::new(), Decoder::new(4096));
    let mut strings: Vec<Vec<u8>> = Vec::new();
    for _ in 0..2000 {
        if rng.below(20) == 0 {
            let sizes = [0, 40, 100, 256, 1000, 4096, 70_000];
            encoder.set_peer_table_size(sizes[rng.below(sizes.len())]);
        }
        strings.clear();
        let count = 1 + rng.below(10);
        for _ in 0..count {
            let name: Vec<u8> = match rng.below(4) {
                0 => (0..1 + rng.below(12))
                    .map(|_| b'a' + rng.below(26) as u8)
                    .collect(),
                _ => NAMES[rng.below(NAMES.len())].to_vec(),
            };
            let value: Vec<u8> = match rng.below(5) {
                0 => VALUES[rng.below(VALUES.len())].to_vec(),
                1 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
                _ => (0..rng.below(8))
                    .map(|_| b'0' + rng.below(4) as u8)
                    .collect(),
            };
            strings.push(name);
            strings.push(value);
        }
        let modes = [
            Indexing::Index,
            Indexing::Index,
            Indexing::NoIndex,
            Indexing::Never,
        ];
        let list: Vec<Field> = strings
            .chunks(2)
            .map(|pair| (&pair[0][..], &pair[1][..], modes[rng.below(modes.len())]))
            .collect();
        round_trip(&mut encoder, &mut decoder, &list);
    }
}

#[test]
fn huffman_values_seen_again_decode_the_same_past_the_memos_size() {
    // More distinct values than the memo keeps, each repeated at varying distances, as a
    // server repeats `date` and `content-type`: every decoding matches the value encoded.
    let mut rng = Rng(0x5eed_cafe);
    let values: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("value-{i:02}-{}", "x".repeat(i % 3)).into_bytes())
        .collect();
    let mut decoder = Decoder::new(4096);
    for _ in 0..500 {
        let value = &values[rng.below(values.len())];
        let coded = huffman_encode(value);
        // A literal without indexing, name `server` (static index 54), Huffman-coded value.
        let mut block = vec![0x0f, 54 - 15];
        block.push(0x80 | coded.len() as u8);
        block.extend_from_slice(&coded);
        let decoded = decode(&mut decoder, &block).unwrap();
        assert_eq!(decoded, [(b"server".to_vec(), value.clone())]);
    }
    // A string the memo has seen but whose bytes differ by one is decoded afresh.
    let mut coded = huffman_encode(b"value-01-x");
    coded[0] ^= 0x01;
    let mut block = vec![0x0f, 54 - 15, 0x80 | coded.len() as u8];
    block.extend_from_slice(&coded);
    let mut direct = Vec::new();
    let expected = super::super::huffman::decode(&coded, &mut direct).map(|()| direct);
    let got = decode(&mut decoder, &block).map(|f| f[0].1.clone());
    assert_eq!(got, expected);
}
