//! The HTTP/1.1 response reader: the one-pass head scan against httparse (a differential
//! check: where the scan decides, httparse must agree), then the whole parser fed the bytes
//! in pieces as a connection receives them.
#![no_main]

use engine::http1::{parse_head_strictly, scan_head, RecvBuffer, ResponseParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the receive size, so heads and chunk lines split everywhere.
    let (step, bytes) = match data.split_first() {
        Some((s, rest)) => (usize::from(*s % 64) + 1, rest),
        None => return,
    };
    if let Some((len, head)) = scan_head(bytes) {
        assert!(len <= bytes.len());
        match parse_head_strictly(bytes) {
            Ok(Some((strict_len, strict_head))) => {
                assert_eq!(len, strict_len, "head length differs from httparse");
                assert_eq!(head, strict_head, "head differs from httparse");
            }
            other => panic!("scan accepted a head httparse gives as {other:?}"),
        }
    } else {
        let _ = parse_head_strictly(bytes);
    }

    let mut buffer = RecvBuffer::default();
    let mut parser = ResponseParser::default();
    let mut in_body = false;
    let mut fed = 0;
    // Bounded: each pass consumes input or ends.
    for _ in 0..bytes.len() * 2 + 8 {
        if fed < bytes.len() {
            let Ok(spare) = buffer.spare() else { return };
            let n = step.min(spare.len()).min(bytes.len() - fed);
            spare[..n].copy_from_slice(&bytes[fed..fed + n]);
            buffer.filled(n);
            fed += n;
        }
        if !in_body {
            match parser.parse_head(&mut buffer) {
                Ok(Some(_)) => in_body = true,
                Ok(None) if fed == bytes.len() => return,
                Ok(None) => continue,
                Err(_) => return,
            }
        }
        match parser.parse_body(&mut buffer, |b| {
            std::hint::black_box(b);
        }) {
            Ok(Some(_)) => in_body = false,
            Ok(None) if fed == bytes.len() => {
                let _ = parser.end_of_stream();
                return;
            }
            Ok(None) => {}
            Err(_) => return,
        }
    }
});
