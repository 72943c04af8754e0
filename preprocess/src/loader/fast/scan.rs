//! A line scanner for the common shape of a profile: block mappings and a block sequence of
//! request mappings whose values are single-line plain, single- or double-quoted scalars, or
//! `|` block literals. Anything else (anchors, tags, flow style, multi-line plain or quoted
//! scalars, tabs in indentation, unusual characters, unknown or repeated keys) is not decided
//! here: the scanner answers [`Defer`] and the general parser reads the whole input instead,
//! so every error message and every corner of the YAML dialect stays with one implementation.

use std::borrow::Cow;

use crate::validate::{RawRequest, RawSpec};
use crate::yaml::{resolve, to_bool, to_int, ScalarTag};

/// The input is outside what the scanner decides; the general parser must read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Defer(pub(crate) &'static str);

pub(crate) type Scan<T> = Result<T, Defer>;

/// One line: its indentation (spaces), its text after the indentation (no line break) and
/// where the next line starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub(crate) start: usize,
    pub(crate) indent: usize,
    pub(crate) body: &'a str,
    pub(crate) next: usize,
}

impl Line<'_> {
    /// Empty, or only spaces.
    pub(crate) fn is_blank(&self) -> bool {
        self.body.is_empty()
    }

    pub(crate) fn is_comment(&self) -> bool {
        self.body.starts_with('#')
    }
}

/// Lines of a text that [`check_text`] accepted.
pub(crate) struct Lines<'a> {
    text: &'a str,
    pos: usize,
    /// Most bytes one line, or a run of blank and comment lines, may take: the general
    /// parser fails on more than `max_scalar_bytes` without an event, so the scanner defers
    /// well before that (half of it).
    max_run: usize,
}

impl<'a> Lines<'a> {
    /// Lines of `text`, deferring near the general parser's `max_scalar` limit.
    pub(crate) fn new(text: &'a str, max_scalar: usize) -> Self {
        Lines {
            text,
            pos: 0,
            max_run: max_scalar / 2,
        }
    }

    /// The next line without consuming it.
    pub(crate) fn peek(&self) -> Scan<Option<Line<'a>>> {
        let bytes = self.text.as_bytes();
        if self.pos >= bytes.len() {
            return Ok(None);
        }
        let end = memchr::memchr(b'\n', &bytes[self.pos..]).map_or(bytes.len(), |i| self.pos + i);
        if end - self.pos > self.max_run {
            return Err(Defer("a line near the scalar size limit"));
        }
        let raw = &self.text[self.pos..end];
        let indent = raw.bytes().take_while(|&b| b == b' ').count();
        let body = &raw[indent..];
        if body.starts_with('\t') {
            return Err(Defer("a tab in indentation"));
        }
        Ok(Some(Line {
            start: self.pos,
            indent,
            body,
            next: (end + 1).min(bytes.len()),
        }))
    }

    pub(crate) fn advance(&mut self, line: &Line<'_>) {
        self.pos = line.next;
    }

    /// The next line that is neither blank nor a comment (consumed up to it, not past it).
    pub(crate) fn next_content(&mut self) -> Scan<Option<Line<'a>>> {
        let start = self.pos;
        while let Some(line) = self.peek()? {
            if !(line.is_blank() || line.is_comment()) {
                return Ok(Some(line));
            }
            self.advance(&line);
            if self.pos - start > self.max_run {
                return Err(Defer("blank and comment lines near the scalar size limit"));
            }
        }
        Ok(None)
    }
}

/// Characters the scanner leaves to the general parser wherever they appear: control
/// characters other than tab and line feed (CR included), DEL, C1 controls (NEL among them),
/// the Unicode line and paragraph separators, the byte-order mark and U+FFFE/U+FFFF.
pub(crate) fn check_text(text: &str) -> Scan<()> {
    let bytes = text.as_bytes();
    // Branch-free per block, so the compiler vectorises it: this runs over every byte.
    let odd_byte = |b: u8| (b < 0x20) & (b != b'\n') & (b != b'\t') | (b == 0x7f);
    let mut non_ascii = false;
    for block in bytes.chunks(64) {
        let (odd, high) = block.iter().fold((false, false), |(odd, high), &b| {
            (odd | odd_byte(b), high | (b >= 0x80))
        });
        if odd {
            return Err(Defer("a control character"));
        }
        non_ascii |= high;
    }
    if !non_ascii {
        return Ok(());
    }
    for (i, _) in bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == 0xc2 || b == 0xe2 || b == 0xef)
    {
        let next = bytes.get(i + 1).copied().unwrap_or(0);
        let third = bytes.get(i + 2).copied().unwrap_or(0);
        let odd = match bytes[i] {
            0xc2 => (0x80..=0x9f).contains(&next),
            0xe2 => next == 0x80 && (third == 0xa8 || third == 0xa9),
            _ => (next == 0xbb && third == 0xbf) || (next == 0xbf && third >= 0xbe),
        };
        if odd {
            return Err(Defer("a C1 control, line separator or byte-order mark"));
        }
    }
    Ok(())
}

/// A scalar value as written after `key:`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// A plain scalar (may resolve to null).
    Plain(&'a str),
    /// A quoted scalar or block literal: always a string.
    Text(Cow<'a, str>),
}

impl<'a> Value<'a> {
    /// The value of a Go string field (kperf's `string` fields): null is "".
    pub(crate) fn into_string(self) -> String {
        match self {
            Value::Plain(s) if is_null(s) => String::new(),
            Value::Plain(s) => s.to_string(),
            Value::Text(t) => t.into_owned(),
        }
    }

    /// The value of a Go int field, resolved as the general decoder does.
    pub(crate) fn int(&self) -> Scan<i64> {
        let Value::Plain(s) = self else {
            return Err(Defer("a quoted value for an int field"));
        };
        let b = s.as_bytes();
        if !b.is_empty()
            && b.len() <= 18
            && b.iter().all(u8::is_ascii_digit)
            && (b[0] != b'0' || b.len() == 1)
        {
            return Ok(b.iter().fold(0i64, |v, &d| v * 10 + i64::from(d - b'0')));
        }
        resolve(s, true, &ScalarTag::None)
            .ok()
            .and_then(|r| to_int(r.value))
            .ok_or(Defer("an int field that is not an int"))
    }

    /// The value of a Go bool field.
    pub(crate) fn boolean(&self) -> Scan<bool> {
        let Value::Plain(s) = self else {
            return Err(Defer("a quoted value for a bool field"));
        };
        resolve(s, true, &ScalarTag::None)
            .ok()
            .and_then(|r| to_bool(r.value))
            .ok_or(Defer("a bool field that is not a bool"))
    }
}

fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// Splits `key: rest` (a plain key of ASCII letters and digits); `rest` has its leading
/// spaces removed.
pub(crate) fn split_key(body: &str) -> Scan<(&str, &str)> {
    let colon = body
        .find(':')
        .ok_or(Defer("a line that is not `key: value`"))?;
    let key = &body[..colon];
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Defer("a key that is not a plain word"));
    }
    let rest = &body[colon + 1..];
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return Err(Defer("a key not followed by `: `"));
    }
    let rest = rest.trim_start_matches(' ');
    if rest.starts_with('\t') {
        return Err(Defer("a tab after a key"));
    }
    Ok((key, rest))
}

/// The value after `key:` on `line` (`rest`), reading further lines for a block literal.
/// `key_indent` is the column of the key.
fn value<'a>(
    rest: &'a str,
    key_indent: usize,
    lines: &mut Lines<'a>,
    max_scalar: usize,
) -> Scan<Value<'a>> {
    let Some(first) = rest.chars().next() else {
        return Ok(Value::Plain(""));
    };
    match first {
        '#' => Ok(Value::Plain("")),
        '"' => double_quoted(rest).map(Value::Text),
        '\'' => single_quoted(rest).map(Value::Text),
        '|' => {
            if !rest[1..].bytes().all(|b| b == b' ') {
                return Err(Defer("a block literal header other than `|`"));
            }
            literal(key_indent, lines, max_scalar).map(|t| Value::Text(Cow::Owned(t)))
        }
        '&' | '*' | '!' | '>' | '%' | '@' | '`' | '{' | '[' | ']' | '}' | ',' => {
            Err(Defer("an anchor, alias, tag, folded or flow value"))
        }
        '?' | ':' => Err(Defer("a complex key or a value starting with `:`")),
        '-' if rest.len() == 1 || rest.as_bytes()[1] == b' ' => Err(Defer("a nested sequence")),
        _ => plain(rest).map(Value::Plain),
    }
}

/// The value of the entry on the line at the cursor (`rest` follows its `key:`); the cursor
/// moves past the line, and past a block literal's lines.
pub(crate) fn entry_value<'a>(
    rest: &'a str,
    key_indent: usize,
    lines: &mut Lines<'a>,
    max_scalar: usize,
) -> Scan<Value<'a>> {
    if !rest.starts_with('|') {
        let current = lines.peek()?.ok_or(Defer("a missing line"))?;
        lines.advance(&current);
    }
    value(rest, key_indent, lines, max_scalar)
}

/// A single-line plain scalar, up to a comment; trailing spaces dropped.
fn plain(rest: &str) -> Scan<&str> {
    let b = rest.as_bytes();
    let mut end = b.len();
    for i in 0..b.len() {
        match b[i] {
            b'\t' => return Err(Defer("a tab in a plain scalar")),
            b'#' if i > 0 && b[i - 1] == b' ' => {
                end = i;
                break;
            }
            b':' if i + 1 == b.len() || b[i + 1] == b' ' => {
                return Err(Defer("`: ` inside a plain scalar"))
            }
            _ => {}
        }
    }
    Ok(rest[..end].trim_end_matches(' '))
}

/// What may follow a closing quote: spaces, then the end of the line or a comment.
fn after_scalar(tail: &str) -> Scan<()> {
    let trimmed = tail.trim_start_matches(' ');
    if trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < tail.len()) {
        Ok(())
    } else {
        Err(Defer("text after a quoted scalar"))
    }
}

fn single_quoted(rest: &str) -> Scan<Cow<'_, str>> {
    let body = &rest[1..];
    let mut out: Option<String> = None;
    let mut from = 0;
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                out.get_or_insert_with(String::new)
                    .push_str(&body[from..=i]);
                i += 2;
                from = i;
                continue;
            }
            after_scalar(&body[i + 1..])?;
            return Ok(match out {
                None => Cow::Borrowed(&body[..i]),
                Some(mut s) => {
                    s.push_str(&body[from..i]);
                    Cow::Owned(s)
                }
            });
        }
        if b[i] == b'\t' {
            return Err(Defer("a tab in a quoted scalar"));
        }
        i += 1;
    }
    Err(Defer("a quoted scalar over several lines"))
}

fn double_quoted(rest: &str) -> Scan<Cow<'_, str>> {
    let body = &rest[1..];
    let b = body.as_bytes();
    let Some(first_special) = b
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c == b'\t')
    else {
        return Err(Defer("a quoted scalar over several lines"));
    };
    if b[first_special] == b'"' {
        after_scalar(&body[first_special + 1..])?;
        return Ok(Cow::Borrowed(&body[..first_special]));
    }
    let mut out = String::with_capacity(body.len());
    out.push_str(&body[..first_special]);
    let mut i = first_special;
    while i < b.len() {
        match b[i] {
            b'"' => {
                after_scalar(&body[i + 1..])?;
                return Ok(Cow::Owned(out));
            }
            b'\t' => return Err(Defer("a tab in a quoted scalar")),
            b'\\' => {
                let Some(&e) = b.get(i + 1) else {
                    return Err(Defer("an escaped line break"));
                };
                let simple = match e {
                    b'0' => Some('\0'),
                    b'a' => Some('\u{7}'),
                    b'b' => Some('\u{8}'),
                    b't' => Some('\t'),
                    b'n' => Some('\n'),
                    b'v' => Some('\u{b}'),
                    b'f' => Some('\u{c}'),
                    b'r' => Some('\r'),
                    b'e' => Some('\u{1b}'),
                    b' ' => Some(' '),
                    b'"' => Some('"'),
                    b'/' => Some('/'),
                    b'\\' => Some('\\'),
                    b'N' => Some('\u{85}'),
                    b'_' => Some('\u{a0}'),
                    b'L' => Some('\u{2028}'),
                    b'P' => Some('\u{2029}'),
                    _ => None,
                };
                if let Some(c) = simple {
                    out.push(c);
                    i += 2;
                    continue;
                }
                let digits = match e {
                    b'x' => 2,
                    b'u' => 4,
                    b'U' => 8,
                    _ => return Err(Defer("an unknown escape")),
                };
                let hex = body
                    .get(i + 2..i + 2 + digits)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .ok_or(Defer("a short hex escape"))?;
                let c = u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or(Defer("an escape that is not a character"))?;
                out.push(c);
                i += 2 + digits;
            }
            _ => {
                let next = memchr::memchr3(b'"', b'\\', b'\t', &b[i..]).map_or(b.len(), |p| i + p);
                out.push_str(&body[i..next]);
                i = next;
            }
        }
    }
    Err(Defer("a quoted scalar over several lines"))
}

/// A `|` block literal (clip chomping, detected indentation) under a key at `key_indent`.
fn literal(key_indent: usize, lines: &mut Lines<'_>, max_scalar: usize) -> Scan<String> {
    let Some(header) = lines.peek()? else {
        return Err(Defer("an empty block literal"));
    };
    lines.advance(&header);
    let Some(first) = lines.peek()? else {
        return Err(Defer("an empty block literal"));
    };
    if first.is_blank() || first.indent <= key_indent {
        return Err(Defer("a block literal that starts blank or is empty"));
    }
    let n = first.indent;
    let mut out = String::new();
    let mut pending_breaks = 0usize;
    while let Some(line) = lines.peek()? {
        if line.is_blank() {
            if line.indent > n {
                return Err(Defer("a block literal line of spaces only"));
            }
            pending_breaks += 1;
            lines.advance(&line);
            continue;
        }
        if line.indent < n {
            break;
        }
        for _ in 0..pending_breaks {
            out.push('\n');
        }
        pending_breaks = 0;
        out.push_str(&lines.text[line.start + n..line.start + line.indent]);
        out.push_str(line.body);
        out.push('\n');
        if line.next - first.start > max_scalar / 2 {
            return Err(Defer("a block literal near the scalar size limit"));
        }
        lines.advance(&line);
    }
    Ok(out)
}

/// Bit of a request key in a set of seen keys; `None` for a key the request has not.
fn request_key_bit(key: &str) -> Option<u8> {
    Some(match key {
        "timestamp" => 0,
        "verb" => 1,
        "namespace" => 2,
        "resourceKind" => 3,
        "name" => 4,
        "apiPath" => 5,
        "body" => 6,
        "labelSelector" => 7,
        _ => return None,
    })
}

/// Reads one request mapping whose first line is `line` (`- key: value` at `item_indent`).
pub(crate) fn request<'a>(
    line: Line<'a>,
    lines: &mut Lines<'a>,
    max_scalar: usize,
) -> Scan<RawRequest> {
    let after_dash = &line.body[1..];
    let extra = after_dash.bytes().take_while(|&b| b == b' ').count();
    if extra == 0 || after_dash.len() == extra {
        return Err(Defer("an item that is not `- key: value`"));
    }
    let column = line.indent + 1 + extra;
    let mut raw = RawRequest::default();
    let mut seen = 0u8;
    let mut body = &after_dash[extra..];
    loop {
        if body.starts_with('#') {
            return Err(Defer("a comment where a key should be"));
        }
        let (key, rest) = split_key(body)?;
        let bit = request_key_bit(key).ok_or(Defer("an unknown request key"))?;
        if seen & (1 << bit) != 0 {
            return Err(Defer("a repeated request key"));
        }
        seen |= 1 << bit;
        let value = entry_value(rest, column, lines, max_scalar)?;
        match bit {
            0 => raw.timestamp = value.int()?,
            1 => raw.verb = value.into_string(),
            2 => raw.namespace = value.into_string(),
            3 => raw.resource_kind = value.into_string(),
            4 => raw.name = value.into_string(),
            5 => raw.api_path = value.into_string(),
            6 => raw.body = value.into_string(),
            _ => raw.label_selector = value.into_string(),
        }
        match lines.next_content()? {
            Some(next) if next.indent == column => {
                body = next.body;
            }
            Some(next) if next.indent > column => {
                return Err(Defer("a value continued on a more indented line"))
            }
            _ => return Ok(raw),
        }
    }
}

/// Decodes one `spec` entry.
pub(crate) fn spec_field(spec: &mut RawSpec, key: &str, value: Value<'_>) -> Scan<()> {
    match key {
        "runnerCount" => spec.runner_count = value.int()?,
        "connsPerRunner" => spec.conns_per_runner = value.int()?,
        "clientsPerRunner" => spec.clients_per_runner = value.int()?,
        "contentType" => spec.content_type = value.into_string(),
        "disableHTTP2" => spec.disable_http2 = value.boolean()?,
        _ => return Err(Defer("an unknown spec key")),
    }
    Ok(())
}
