//! A one-pass read of the common response head: `HTTP/1.x NNN reason`, then `Name: value`
//! lines, each ending in CRLF. It accepts only heads httparse accepts and reads them as
//! httparse does (the tests compare the two on generated heads); anything else — a partial
//! head, a bare LF, a byte outside the common sets, too many headers, a bad framing header —
//! is left to httparse, which decides it.
//!
//! Why: reading response heads was a third of the engine's user-space instructions in an
//! unpaced replay, most of it httparse's general parser (a cursor with bounds checks per
//! byte, header slots, runtime SIMD dispatch). Here a name is found by a word-at-a-time
//! search for its colon and, when it is one servers commonly send, recognised whole (no
//! per-byte check, no case-blind compares); values are checked eight bytes at a time.
//! The instruction counts before and after are in `bench/RESULTS.md` (issue 3).

use super::framing::{FramingHeaders, FramingRole};
use super::parser::{ResponseHead, MAX_HEADERS};

/// httparse's header-name characters: RFC 9110 `tchar`.
static TOKEN: [bool; 256] = {
    let mut map = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        map[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    map
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is below 0x20 (a control character, TAB or
/// CR) or is DEL. The lowest flagged byte is exact (higher flags may be borrows' echoes),
/// which is all a search for the first one needs. Bytes from 0x80 (obs-text) are plain.
fn special_bytes(word: u64) -> u64 {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let del = word ^ (ONES * 0x7f);
    let is_del = del.wrapping_sub(ONES) & !del & HIGHS;
    below_space | is_del
}

/// Where the first `byte` at or after `i` is, eight bytes at a time.
fn find(b: &[u8], mut i: usize, byte: u8) -> Option<usize> {
    while let Some(chunk) = b.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(byte));
        // The high bit of each zero byte; the lowest is exact.
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(i + (zeros.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?.iter().position(|&c| c == byte).map(|p| i + p)
}

/// The framing role of a header name that servers commonly send, spelled as they send it
/// (kube-apiserver's, nginx's and other common ones): such a name is a valid token as it
/// stands, so the byte-by-byte check and the case-blind name compares are skipped for it.
/// `None` for any other name.
fn known_name(name: &[u8]) -> Option<FramingRole> {
    let other = Some(FramingRole::None);
    match name {
        b"Content-Length" => Some(FramingRole::ContentLength),
        b"Connection" => Some(FramingRole::Connection),
        b"Transfer-Encoding" => Some(FramingRole::TransferEncoding),
        b"Retry-After" => Some(FramingRole::RetryAfter),
        b"Date" | b"Server" | b"Content-Type" | b"Audit-Id" | b"Cache-Control" => other,
        b"X-Kubernetes-Pf-Flowschema-Uid" | b"X-Kubernetes-Pf-Prioritylevel-Uid" => other,
        b"Warning" | b"Keep-Alive" | b"Vary" | b"Etag" | b"Location" | b"Last-Modified" => other,
        _ => None,
    }
}

/// Where the header value starting at `i` stops: the first byte from `i` that no value may
/// hold (httparse's set: TAB, SP to `~`, and obs-text), or the end of `b`.
fn value_end(b: &[u8], mut i: usize) -> usize {
    loop {
        while let Some(chunk) = b.get(i..i + 8) {
            let Ok(word) = <[u8; 8]>::try_from(chunk) else {
                break;
            };
            let special = special_bytes(u64::from_le_bytes(word));
            if special != 0 {
                i += (special.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        // `i` is at a special byte (a TAB goes on), or fewer than eight bytes are left.
        match b.get(i) {
            Some(&c) if c == b'\t' || (c >= 0x20 && c != 0x7f) => i += 1,
            _ => return i,
        }
    }
}

/// The head at the start of `b`, its length and what it says, when it is complete and of
/// the common form; `None` leaves it to httparse. Public so the scan can be checked against
/// [`super::parse_head_strictly`] from outside the crate (fuzzing).
pub fn scan_head(b: &[u8]) -> Option<(usize, ResponseHead)> {
    let line = b.get(..13)?;
    let http10 = match &line[..8] {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return None,
    };
    if line[8] != b' ' || line[12] != b' ' {
        return None;
    }
    let mut status = 0u16;
    for &d in &line[9..12] {
        if !d.is_ascii_digit() {
            return None;
        }
        status = status * 10 + u16::from(d - b'0');
    }
    let mut i = 13;
    loop {
        match *b.get(i)? {
            b'\r' => break,
            b'\t' | 0x20..=0x7e => i += 1,
            _ => return None,
        }
    }
    if *b.get(i + 1)? != b'\n' {
        return None;
    }
    i += 2;
    let mut framing = FramingHeaders::new(http10);
    let mut headers = 0;
    loop {
        if *b.get(i)? == b'\r' {
            return (*b.get(i + 1)? == b'\n').then(|| (i + 2, framing.finish(status)));
        }
        let colon = find(b, i, b':')?;
        let name = &b[i..colon];
        let role = match known_name(name) {
            Some(role) => role,
            None if !name.is_empty() && name.iter().all(|&c| TOKEN[usize::from(c)]) => {
                FramingRole::of(name)
            }
            None => return None,
        };
        i = colon + 1;
        while matches!(*b.get(i)?, b' ' | b'\t') {
            i += 1;
        }
        let value_start = i;
        i = value_end(b, i);
        if *b.get(i)? != b'\r' || *b.get(i + 1)? != b'\n' {
            return None;
        }
        let value = b[value_start..i].trim_ascii_end();
        headers += 1;
        if headers > MAX_HEADERS {
            return None;
        }
        framing.take(role, value).ok()?;
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::parser::{parse_head_strictly, BodyFraming};
    use proptest::prelude::*;

    /// httparse's answer for `bytes`, `None` unless it is a complete head.
    fn strictly(bytes: &[u8]) -> Option<(usize, ResponseHead)> {
        parse_head_strictly(bytes).ok().flatten()
    }

    const NGINX: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\
        Date: Sat, 28 Nov 2026 12:00:00 GMT\r\nContent-Type: application/json\r\n\
        Content-Length: 80\r\nConnection: keep-alive\r\n\r\n{}";
    const APISERVER: &[u8] = b"HTTP/1.1 201 Created\r\n\
        Audit-Id: 0f8c5e36-7d43-4a57-9d0b-2bd3b1c5f2a1\r\n\
        Cache-Control: no-cache, private\r\nContent-Type: application/json\r\n\
        X-Kubernetes-Pf-Flowschema-Uid: 4b2d7b3e-57c4-4f5c-a0a5-6f3f0c1d2e3f\r\n\
        X-Kubernetes-Pf-Prioritylevel-Uid: 9e1f4c2a-1b6d-4e8f-8c3a-2d5e6f7a8b9c\r\n\
        Date: Sat, 28 Nov 2026 12:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n";

    #[test]
    fn common_heads_are_scanned_as_httparse_reads_them() {
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}Content-Length: 0\r\n\r\n",
            "X-Filler: 1\r\n".repeat(MAX_HEADERS - 1)
        );
        let heads: [&[u8]; 10] = [
            NGINX,
            APISERVER,
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 204 \r\n\r\n",
            b"HTTP/1.1 404 Not\tFound\r\nX-Empty:\r\nX-Blank:  \t \r\nContent-Length:\t 3 \t\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-Obs: caf\xc3\xa9\tlatte  \r\nconnection: close\r\n\r\n",
            b"HTTP/1.1 500 Internal Server Error\r\nX-Odd!#$%&'*+-.^_`|~9: ~!\r\n\r\n",
            many.as_bytes(),
        ];
        for head in heads {
            let scanned = scan_head(head);
            assert!(scanned.is_some(), "{}", String::from_utf8_lossy(head));
            assert_eq!(scanned, strictly(head), "{}", String::from_utf8_lossy(head));
        }
        assert_eq!(
            scan_head(NGINX),
            Some((
                NGINX.len() - 2,
                ResponseHead {
                    status: 200,
                    framing: BodyFraming::Length(80),
                    keep_alive: true,
                    retry_after: None,
                }
            ))
        );
        let (_, apiserver) = scan_head(APISERVER).unwrap();
        assert_eq!(
            (apiserver.status, apiserver.framing),
            (201, BodyFraming::Chunked)
        );
    }

    #[test]
    fn other_heads_are_left_to_httparse() {
        let too_many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "X-Filler: 1\r\n".repeat(MAX_HEADERS + 1)
        );
        let heads: [&[u8]; 14] = [
            b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n",
            b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
            b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 caf\xc3\xa9\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-Ctl: a\x01b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"HTTP/1.1  200 OK\r\n\r\n",
            too_many.as_bytes(),
        ];
        for head in heads {
            assert_eq!(scan_head(head), None, "{}", String::from_utf8_lossy(head));
        }
        // A head cut anywhere is incomplete.
        for cut in 0..NGINX.len() - 2 {
            assert_eq!(scan_head(&NGINX[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn known_names_are_tokens_with_their_framing_role() {
        let names: [&[u8]; 21] = [
            b"Retry-After",
            b"Content-Length",
            b"Connection",
            b"Transfer-Encoding",
            b"Date",
            b"Server",
            b"Content-Type",
            b"Audit-Id",
            b"Cache-Control",
            b"X-Kubernetes-Pf-Flowschema-Uid",
            b"X-Kubernetes-Pf-Prioritylevel-Uid",
            b"Warning",
            b"Keep-Alive",
            b"Vary",
            b"Etag",
            b"Location",
            b"Last-Modified",
            b"content-length",
            b"Content-Length ",
            b"Date\r\n",
            b"",
        ];
        let mut known = 0;
        for name in names {
            if let Some(role) = known_name(name) {
                known += 1;
                assert!(name.iter().all(|&c| TOKEN[usize::from(c)]), "{name:?}");
                assert_eq!(role, FramingRole::of(name), "{name:?}");
            }
        }
        assert_eq!(known, 17);
    }

    #[test]
    fn find_returns_the_first_match() {
        let line = b"X-Long-Header-Name: a:b";
        assert_eq!(find(line, 0, b':'), Some(18));
        assert_eq!(find(line, 19, b':'), Some(21));
        assert_eq!(find(line, 22, b':'), None);
        assert_eq!(find(b"abc", 5, b':'), None);
    }

    /// Pieces of heads, well and badly formed, for generated heads.
    const STATUS: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.0 200 OK\r\n",
        b"HTTP/1.1 404 Not Found\r\n",
        b"HTTP/1.1 100 Continue\r\n",
        b"HTTP/1.1 304 \r\n",
        b"HTTP/1.1 204\r\n",
        b"HTTP/1.1 200 OK\n",
        b"HTTP/1.2 200 OK\r\n",
        b"HTTP/1.1 2x0 OK\r\n",
        b"HTTP/1.1  200 OK\r\n",
        b"HTTP/1.1 200 \tO K\x7f\r\n",
        b"HTTP/1.1 200 \xc3\xa9\r\n",
        b"\r\nHTTP/1.1 200 OK\r\n",
        b"http/1.1 200 OK\r\n",
    ];
    const NAMES: &[&[u8]] = &[
        b"Retry-After",
        b"retry-after",
        b"Content-Length",
        b"content-length",
        b"CONTENT-LENGTH",
        b"Connection",
        b"Transfer-Encoding",
        b"transfer-encoding",
        b"Date",
        b"X-Odd!#$%&'*+-.^_`|~9",
        b"Content_Length",
        b"",
        b" Leading",
        b"Bad Name",
        b"Caf\xc3\xa9",
        b"Content-Length ",
        b"Audit-Id",
        b"Server",
    ];
    const SEPARATORS: &[&[u8]] = &[b":", b": ", b":\t", b":  \t ", b" :", b""];
    const VALUES: &[&[u8]] = &[
        b"0",
        b"5",
        b"123",
        b" 7 ",
        b"1, 2",
        b"x",
        b"keep-alive",
        b"close",
        b"Keep-Alive, Upgrade",
        b"upgrade, close",
        b"chunked",
        b"gzip, chunked",
        b"",
        b"  ",
        b"a\tb",
        b"value with spaces \t ",
        b"\xc3\xa9t\xc3\xa9",
        b"bad\x01ctl",
        b"del\x7f",
        b"Sat, 28 Nov 2026 12:00:00 GMT",
        b"application/json; charset=utf-8; with a longer tail of words",
    ];
    const LINE_ENDS: &[&[u8]] = &[b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"\r\n "];
    const HEAD_ENDS: &[&[u8]] = &[b"\r\n", b"\r\n", b"\n", b"", b"\r"];

    fn head() -> impl Strategy<Value = Vec<u8>> {
        let header = (
            0..NAMES.len(),
            0..SEPARATORS.len(),
            0..VALUES.len(),
            0..LINE_ENDS.len(),
        );
        (
            0..STATUS.len(),
            proptest::collection::vec(header, 0..8),
            0..HEAD_ENDS.len(),
            proptest::option::weighted(0.3, (any::<usize>(), any::<u8>())),
            proptest::option::weighted(0.2, any::<usize>()),
        )
            .prop_map(|(status, headers, end, change, cut)| {
                let mut b = STATUS[status].to_vec();
                for (n, s, v, e) in headers {
                    for piece in [NAMES[n], SEPARATORS[s], VALUES[v], LINE_ENDS[e]] {
                        b.extend_from_slice(piece);
                    }
                }
                b.extend_from_slice(HEAD_ENDS[end]);
                b.extend_from_slice(b"body");
                if let Some((at, byte)) = change {
                    let at = at % b.len();
                    b[at] = byte;
                }
                if let Some(len) = cut {
                    b.truncate(len % (b.len() + 1));
                }
                b
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn a_scanned_head_is_the_head_httparse_reads(bytes in head()) {
            if let Some(scanned) = scan_head(&bytes) {
                prop_assert_eq!(Some(scanned), strictly(&bytes), "{}", String::from_utf8_lossy(&bytes));
            }
        }

        #[test]
        fn values_end_at_the_first_byte_no_value_may_hold(
            bytes in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'a'), Just(b' '), Just(b'\t'), Just(b'\r')],
                0..40,
            ),
            start in 0usize..40,
        ) {
            let start = start.min(bytes.len());
            let expected = bytes[start..]
                .iter()
                .position(|&c| !(c == b'\t' || (c >= 0x20 && c != 0x7f)))
                .map_or(bytes.len(), |p| start + p);
            prop_assert_eq!(value_end(&bytes, start), expected);
        }
    }
}
