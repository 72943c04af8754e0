//! Writes a profile as YAML that any YAML 1.1/1.2 parser reads the same way: every string
//! double-quoted with escapes, YAML bodies as block literals, numbers and booleans plain.

use std::io::{self, Write};

use super::synth::RequestFields;
use super::{GenConfig, GenContentType};

/// Appends `s` as a YAML double-quoted scalar.
pub(crate) fn push_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\t' => Some(b"\\t"),
            '\r' => Some(b"\\r"),
            '\u{85}' => Some(b"\\N"),
            '\u{2028}' => Some(b"\\L"),
            '\u{2029}' => Some(b"\\P"),
            '\u{feff}' => Some(b"\\uFEFF"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c) => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                let v = c as u32;
                out.extend_from_slice(b"\\x");
                out.push(HEX[(v >> 4) as usize & 0xf]);
                out.push(HEX[v as usize & 0xf]);
            }
        }
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes `version`, `description`, `spec` and the `requests:` line.
pub(crate) fn write_header<W: Write>(out: &mut W, cfg: &GenConfig) -> io::Result<()> {
    let mut line = Vec::with_capacity(256);
    line.extend_from_slice(b"version: 1\ndescription: ");
    let description = format!(
        "kreplay-gen: {} requests, shape {}, seed {}",
        cfg.requests, cfg.shape, cfg.seed
    );
    push_quoted(&mut line, &description);
    line.extend_from_slice(b"\n");
    out.write_all(&line)?;
    let content_type = match cfg.content_type {
        GenContentType::Json => "json",
        GenContentType::Protobuf => "protobuf",
    };
    write!(
        out,
        "spec:\n  runnerCount: {}\n  connsPerRunner: {}\n  clientsPerRunner: {}\n  contentType: {}\n  disableHTTP2: {}\nrequests:\n",
        cfg.runners, cfg.conns, cfg.clients, content_type, cfg.disable_http2
    )
}

/// Appends one request item to `out` (a reused buffer).
pub(crate) fn push_request(out: &mut Vec<u8>, timestamp_ms: i64, r: &RequestFields) {
    use std::io::Write as _;
    let verb = r.verb.map_or("GET", |v| v.as_str());
    // Writing into a Vec cannot fail.
    let _ = write!(out, "  - timestamp: {timestamp_ms}\n    verb: {verb}\n");
    if !r.namespace.is_empty() {
        out.extend_from_slice(b"    namespace: ");
        push_quoted(out, &r.namespace);
        out.push(b'\n');
    }
    out.extend_from_slice(b"    resourceKind: ");
    push_quoted(out, r.kind);
    out.push(b'\n');
    if !r.name.is_empty() {
        out.extend_from_slice(b"    name: ");
        push_quoted(out, &r.name);
        out.push(b'\n');
    }
    out.extend_from_slice(b"    apiPath: ");
    push_quoted(out, &r.api_path);
    out.push(b'\n');
    if !r.label_selector.is_empty() {
        out.extend_from_slice(b"    labelSelector: ");
        push_quoted(out, &r.label_selector);
        out.push(b'\n');
    }
    if !r.body.is_empty() {
        if r.body_is_yaml && block_literal_safe(&r.body) {
            // `|` keeps exactly one final newline, which the YAML body has.
            out.extend_from_slice(b"    body: |\n");
            for line in r.body.lines() {
                out.extend_from_slice(b"      ");
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        } else {
            out.extend_from_slice(b"    body: ");
            push_quoted(out, &r.body);
            out.push(b'\n');
        }
    }
}

/// A block literal reproduces `body` exactly when it ends in one newline, its first line
/// is not indented (the indentation is detected from it) and no line carries characters
/// YAML would refuse or normalise.
fn block_literal_safe(body: &str) -> bool {
    body.ends_with('\n')
        && !body.ends_with("\n\n")
        && !body.starts_with([' ', '\n'])
        && !body
            .chars()
            .any(|c| c == '\r' || c == '\t' || (c as u32) < 0x20 && c != '\n' || c == '\u{7f}')
}
