//! RFC 7541 Appendix C, hex dumps and tables as the RFC prints them.

use super::super::huffman::CODES;
use super::super::table::{static_name, STATIC};
use super::super::{huffman, read_int, write_int, Decoder, Encoder, Indexing};
use super::{contents, decode, fields, hex, huffman_encode, Rng};

#[test]
fn c1_integers() {
    // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix; C.1.3: 42 with 8 bits.
    for (value, prefix, wire) in [
        (10, 5, vec![0b0000_1010]),
        (1337, 5, vec![0b0001_1111, 0b1001_1010, 0b0000_1010]),
        (42, 8, vec![0b0010_1010]),
    ] {
        let mut out = Vec::new();
        write_int(&mut out, 0, prefix, value);
        assert_eq!(out, wire);
        let mut pos = 0;
        assert_eq!(read_int(&wire, &mut pos, prefix), Ok(value));
        assert_eq!(pos, wire.len());
    }
    // The prefix's other bits are not part of the value.
    let mut pos = 0;
    assert_eq!(read_int(&[0b1110_1010], &mut pos, 5), Ok(10));
}

#[test]
fn c2_single_literals() {
    let cases: [(&str, (&str, &str), usize); 4] = [
        (
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            ("custom-key", "custom-header"),
            55,
        ),
        (
            "040c 2f73 616d 706c 652f 7061 7468",
            (":path", "/sample/path"),
            0,
        ),
        (
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            ("password", "secret"),
            0,
        ),
        ("82", (":method", "GET"), 0),
    ];
    for (dump, field, size) in cases {
        let mut decoder = Decoder::new(4096);
        assert_eq!(decode(&mut decoder, &hex(dump)).unwrap(), fields(&[field]));
        assert_eq!(decoder.table.size(), size, "{dump}");
        let expected = if size > 0 {
            fields(&[field])
        } else {
            Vec::new()
        };
        assert_eq!(contents(&decoder.table), expected);
    }
}

const AUTHORITY: (&str, &str) = (":authority", "www.example.com");
const NO_CACHE: (&str, &str) = ("cache-control", "no-cache");
const CUSTOM: (&str, &str) = ("custom-key", "custom-value");

type Step = (
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, &'static str)>,
    usize,
);

/// The fields of C.3 / C.4's requests, and the table after each.
fn request_steps() -> [Step; 3] {
    let get = (":method", "GET");
    [
        (
            vec![get, (":scheme", "http"), (":path", "/"), AUTHORITY],
            vec![AUTHORITY],
            57,
        ),
        (
            vec![
                get,
                (":scheme", "http"),
                (":path", "/"),
                AUTHORITY,
                NO_CACHE,
            ],
            vec![NO_CACHE, AUTHORITY],
            110,
        ),
        (
            vec![
                get,
                (":scheme", "https"),
                (":path", "/index.html"),
                AUTHORITY,
                CUSTOM,
            ],
            vec![CUSTOM, NO_CACHE, AUTHORITY],
            164,
        ),
    ]
}

/// C.3 / C.4: three requests, then the fields and the table after each.
fn requests(blocks: [&str; 3]) {
    let mut decoder = Decoder::new(4096);
    for (dump, (want, table, size)) in blocks.iter().zip(request_steps()) {
        assert_eq!(decode(&mut decoder, &hex(dump)).unwrap(), fields(&want));
        assert_eq!(contents(&decoder.table), fields(&table));
        assert_eq!(decoder.table.size(), size);
    }
}

const C3: [&str; 3] = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];

#[test]
fn c3_requests_without_huffman() {
    requests(C3);
}

#[test]
fn c4_requests_with_huffman() {
    requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

const DATE_21: (&str, &str) = ("date", "Mon, 21 Oct 2013 20:13:21 GMT");
const DATE_22: (&str, &str) = ("date", "Mon, 21 Oct 2013 20:13:22 GMT");
const PRIVATE: (&str, &str) = ("cache-control", "private");
const LOCATION: (&str, &str) = ("location", "https://www.example.com");
const GZIP: (&str, &str) = ("content-encoding", "gzip");
const COOKIE: (&str, &str) = (
    "set-cookie",
    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
);

/// The fields of C.5 / C.6's responses, and the table (size 256) after each.
#[allow(clippy::type_complexity)]
fn response_steps() -> [Step; 3] {
    let s302 = (":status", "302");
    let s307 = (":status", "307");
    [
        (
            vec![s302, PRIVATE, DATE_21, LOCATION],
            vec![LOCATION, DATE_21, PRIVATE, s302],
            222,
        ),
        (
            vec![s307, PRIVATE, DATE_21, LOCATION],
            vec![s307, LOCATION, DATE_21, PRIVATE],
            222,
        ),
        (
            vec![(":status", "200"), PRIVATE, DATE_22, LOCATION, GZIP, COOKIE],
            vec![COOKIE, GZIP, DATE_22],
            215,
        ),
    ]
}

fn responses(blocks: [&str; 3]) {
    let mut decoder = Decoder::new(256);
    for (dump, (want, table, size)) in blocks.iter().zip(response_steps()) {
        assert_eq!(decode(&mut decoder, &hex(dump)).unwrap(), fields(&want));
        assert_eq!(contents(&decoder.table), fields(&table));
        assert_eq!(decoder.table.size(), size);
    }
}

const C5: [&str; 3] = [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
     2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
     6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
     54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
     5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
     3d31",
];

#[test]
fn c5_responses_without_huffman() {
    responses(C5);
}

#[test]
fn c6_responses_with_huffman() {
    responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

/// With raw strings and `Index` everywhere, the encoder makes the RFC's own choices.
#[test]
fn encoder_writes_c3() {
    let mut encoder = Encoder::new();
    for ((list, _, _), dump) in request_steps().iter().zip(C3) {
        let mut out = Vec::new();
        encoder.begin_block(&mut out);
        for (n, v) in list {
            encoder.field(n.as_bytes(), v.as_bytes(), Indexing::Index, &mut out);
        }
        assert_eq!(out, hex(dump));
    }
}

#[test]
fn encoder_writes_c5() {
    let mut encoder = Encoder::new();
    encoder.set_peer_table_size(256);
    // The RFC sets the size out of band; the update a real block starts with is left out.
    encoder.begin_block(&mut Vec::new());
    for ((list, table, size), dump) in response_steps().iter().zip(C5) {
        let mut out = Vec::new();
        encoder.begin_block(&mut out);
        for (n, v) in list {
            encoder.field(n.as_bytes(), v.as_bytes(), Indexing::Index, &mut out);
        }
        assert_eq!(out, hex(dump));
        assert_eq!(contents(&encoder.table), fields(table));
        assert_eq!(encoder.table.size(), *size);
    }
}

#[test]
fn huffman_table_round_trips_every_byte() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let all: Vec<u8> = (0..=255).collect();
    let mut inputs = vec![all.clone(), all.iter().rev().copied().collect(), Vec::new()];
    for _ in 0..500 {
        let len = rng.below(40);
        inputs.push((0..len).map(|_| rng.next() as u8).collect());
    }
    let mut out = Vec::new();
    for input in inputs {
        out.clear();
        huffman::decode(&huffman_encode(&input), &mut out).unwrap();
        assert_eq!(out, input);
    }
}

/// Appendix B's code is canonical: sorted by (length, symbol), each code is the previous plus
/// one, shifted to its length. This catches a mistyped or misplaced entry that the examples
/// and the round trip (which uses the same table both ways) would not.
#[test]
fn huffman_codes_are_canonical() {
    let mut order: Vec<usize> = (0..CODES.len()).collect();
    order.sort_by_key(|&sym| (CODES[sym].1, sym));
    let mut code = 0u32;
    let mut prev_len = CODES[order[0]].1;
    for (k, &sym) in order.iter().enumerate() {
        let len = CODES[sym].1;
        if k > 0 {
            code = (code + 1) << (len - prev_len);
        }
        assert_eq!(CODES[sym].0, code, "symbol {sym}");
        prev_len = len;
    }
    assert_eq!(CODES[256], (0x3fff_ffff, 30));
}

#[test]
fn static_name_agrees_with_static_table() {
    for (i, (name, _)) in STATIC.iter().enumerate() {
        let (first, count) = static_name(name).unwrap();
        let index = i + 1;
        assert!(
            (first..first + count).contains(&index),
            "{}",
            String::from_utf8_lossy(name)
        );
        assert_eq!(STATIC.iter().position(|(n, _)| n == name), Some(first - 1));
        assert_eq!(STATIC.iter().filter(|(n, _)| n == name).count(), count);
    }
    for other in [
        &b""[..],
        b"x-custom",
        b"acceptx",
        b"Accept",
        b":statu",
        b"content-typf",
    ] {
        assert_eq!(static_name(other), None);
    }
}
