//! The pieces of Go's `net/url` and `path` that kperf's request building goes
//! through (Go 1.22), reproduced byte for byte. Decoded values are bytes, not `str`:
//! like Go strings they may hold any byte (`%FF` decodes to a lone 0xFF).

use std::borrow::Cow;

/// The URL part a string belongs to; Go escapes and validates each one differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlPart {
    /// The whole path (`encodePath`).
    Path,
    /// One query key or value (`encodeQueryComponent`).
    QueryComponent,
    /// The fragment after `#` (`encodeFragment`).
    Fragment,
}

/// A `%` not followed by two hex digits: Go's `EscapeError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadEscape {
    /// Byte offset of the `%` in the unescaped input.
    pub offset: usize,
    /// Length of the text Go quotes (`%` plus up to two following bytes).
    pub len: usize,
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Go's `shouldEscape` for the three parts kperf uses.
const fn should_escape(c: u8, part: UrlPart) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match part {
            UrlPart::Path => c == b'?',
            UrlPart::QueryComponent => true,
            UrlPart::Fragment => false,
        },
        b'!' | b'(' | b')' | b'*' => !matches!(part, UrlPart::Fragment),
        _ => true,
    }
}

/// `should_escape` for every byte, one table per part (this runs for every request).
const fn escape_table(part: UrlPart) -> [bool; 256] {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = should_escape(c as u8, part);
        c += 1;
    }
    table
}

const ESCAPE_PATH: [bool; 256] = escape_table(UrlPart::Path);
const ESCAPE_QUERY: [bool; 256] = escape_table(UrlPart::QueryComponent);
const ESCAPE_FRAGMENT: [bool; 256] = escape_table(UrlPart::Fragment);

fn escape_table_of(part: UrlPart) -> &'static [bool; 256] {
    match part {
        UrlPart::Path => &ESCAPE_PATH,
        UrlPart::QueryComponent => &ESCAPE_QUERY,
        UrlPart::Fragment => &ESCAPE_FRAGMENT,
    }
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Go's `unescape` for `part`: `%XX` decoded, `+` → space in query components only.
/// Borrows when nothing changes.
pub(crate) fn unescape(s: &[u8], part: UrlPart) -> Result<Cow<'_, [u8]>, BadEscape> {
    let mut percents = 0usize;
    let mut plus = false;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let ok = i + 2 < s.len() && unhex(s[i + 1]).is_some() && unhex(s[i + 2]).is_some();
                if !ok {
                    return Err(BadEscape {
                        offset: i,
                        len: (s.len() - i).min(3),
                    });
                }
                percents += 1;
                i += 3;
            }
            b'+' => {
                plus |= part == UrlPart::QueryComponent;
                i += 1;
            }
            _ => i += 1,
        }
    }
    if percents == 0 && !plus {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len() - 2 * percents);
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                // Checked above: two hex digits follow.
                let hi = unhex(s[i + 1]).unwrap_or(0);
                let lo = unhex(s[i + 2]).unwrap_or(0);
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if part == UrlPart::QueryComponent => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// Appends Go's `escape(s, part)` to `out` (`%XX` upper-case; space is `+` in query
/// components, `%20` elsewhere).
pub(crate) fn escape_into(out: &mut String, s: &[u8], part: UrlPart) {
    let table = escape_table_of(part);
    let mut rest = s;
    while !rest.is_empty() {
        let run = rest
            .iter()
            .position(|&c| table[usize::from(c)])
            .unwrap_or(rest.len());
        // Bytes that need no escaping are ASCII, so the run is valid UTF-8.
        out.push_str(std::str::from_utf8(&rest[..run]).unwrap_or_default());
        let Some(&c) = rest.get(run) else {
            break;
        };
        if c == b' ' && part == UrlPart::QueryComponent {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(c >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(c & 15)]));
        }
        rest = &rest[run + 1..];
    }
}

/// Go's `validEncoded`: whether `s` may be printed as is for `part` (no byte in it
/// needs escaping; sub-delims, `:`, `@`, `[`, `]` and `%` are allowed).
pub(crate) fn valid_encoded(s: &[u8], part: UrlPart) -> bool {
    let table = escape_table_of(part);
    s.iter().all(|&c| {
        matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !table[usize::from(c)]
    })
}

/// Go's `stringContainsCTLByte`: the first byte below 0x20 or equal to 0x7F.
pub(crate) fn first_control_byte(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b < 0x20 || b == 0x7f)
}

/// One decoded `key=value` pair of a query.
pub(crate) type QueryPair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// Go's `url.ParseQuery` pairs in order: split on `&`, empty pairs skipped, a pair
/// containing `;` or a bad escape dropped, a key without `=` gets "".
pub(crate) fn parse_query(raw: &[u8]) -> Vec<QueryPair<'_>> {
    let mut pairs = Vec::new();
    for pair in raw.split(|&b| b == b'&') {
        if pair.is_empty() || pair.contains(&b';') {
            continue;
        }
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let (Ok(key), Ok(value)) = (
            unescape(key, UrlPart::QueryComponent),
            unescape(value, UrlPart::QueryComponent),
        ) else {
            continue;
        };
        pairs.push((key, value));
    }
    pairs
}

/// Go's `path.Clean` for a rooted path (`p` starts with `/`): duplicate `/`
/// collapsed, `.` and `..` resolved (never above the root), trailing `/` dropped.
pub(crate) fn clean_rooted_path(p: &[u8]) -> Vec<u8> {
    let n = p.len();
    let mut out: Vec<u8> = Vec::with_capacity(n.max(1));
    out.push(b'/');
    let mut r = 0;
    while r < n {
        // An empty element (`//`) or a `.` element: skip it.
        if p[r] == b'/' || (p[r] == b'.' && (r + 1 == n || p[r + 1] == b'/')) {
            r += 1;
        } else if p[r] == b'.' && p.get(r + 1) == Some(&b'.') && (r + 2 == n || p[r + 2] == b'/') {
            r += 2;
            // Back up to the previous '/', but never past the root.
            while out.len() > 1 {
                let last = out.pop();
                if last == Some(b'/') {
                    break;
                }
            }
        } else {
            if out.len() != 1 {
                out.push(b'/');
            }
            while r < n && p[r] != b'/' {
                out.push(p[r]);
                r += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(p: &str) -> String {
        String::from_utf8(clean_rooted_path(p.as_bytes())).unwrap_or_default()
    }

    #[test]
    fn clean_matches_go_path_clean() {
        // Cases from Go's path/path_test.go (rooted ones).
        for (input, want) in [
            ("/", "/"),
            ("/abc", "/abc"),
            ("/abc/def/", "/abc/def"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("/abc/./def", "/abc/def"),
            ("/./abc/def", "/abc/def"),
            ("/abc/.", "/abc"),
            ("/abc/def/ghi/../jkl", "/abc/def/jkl"),
            ("/abc/def/../ghi/../jkl", "/abc/jkl"),
            ("/abc/def/..", "/abc"),
            ("/abc/def/../..", "/"),
            ("/abc/def/../../..", "/"),
            ("/abc/def/../../../ghi/jkl/../../../mno", "/mno"),
            ("/../abc", "/abc"),
            ("/..", "/"),
            ("/.", "/"),
            ("/abc/...", "/abc/..."),
            ("/abc/..x/y", "/abc/..x/y"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn unescape_reports_go_escape_text() {
        assert_eq!(
            unescape(b"/a%zzb", UrlPart::Path),
            Err(BadEscape { offset: 2, len: 3 })
        );
        assert_eq!(
            unescape(b"/a%4", UrlPart::Path),
            Err(BadEscape { offset: 2, len: 2 })
        );
        assert_eq!(
            unescape(b"a+b%41", UrlPart::QueryComponent).as_deref(),
            Ok(&b"a bA"[..])
        );
        assert_eq!(unescape(b"a+b", UrlPart::Path).as_deref(), Ok(&b"a+b"[..]));
    }
}
