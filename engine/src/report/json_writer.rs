//! The report's JSON text as Go's encoder writes it: [`GoFormatter`] makes `serde_json` write
//! `json.MarshalIndent(v, "", "  ")` byte for byte (the report model is written through it),
//! and [`GoJsonWriter`] drives the same formatter by hand, value by value.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

use super::gofmt::{escape_go_json, format_go_float, write_json_bytes_as_string};

/// A `serde_json` formatter that writes what Go's `json.MarshalIndent(v, "", "  ")` writes:
/// two-space indentation, `": "` after keys, `{}` and `[]` for empty containers, strings
/// escaped as Go escapes them (HTML characters and U+2028/U+2029 included), floats in Go's
/// shortest form ([`format_go_float`]). Key order is the caller's: struct field order, and
/// map keys sorted bytewise as Go sorts them (a `BTreeMap<String, _>`).
#[derive(Debug, Default)]
pub struct GoFormatter {
    depth: usize,
    /// The innermost open container has a member (its end goes on a line of its own).
    has_value: bool,
    /// Reused for float text.
    scratch: String,
}

impl GoFormatter {
    fn newline_indent<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        // One copy of a prefix rather than a write per level: every line of a report has one.
        const INDENT: &str = concat!(
            "\n                                                               ",
            "                                                                "
        );
        match INDENT.get(..1 + 2 * self.depth) {
            Some(prefix) => w.write_all(prefix.as_bytes()),
            None => {
                w.write_all(b"\n")?;
                (0..self.depth).try_for_each(|_| w.write_all(b"  "))
            }
        }
    }

    fn begin<W: ?Sized + Write>(&mut self, w: &mut W, open: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(open)
    }

    fn end<W: ?Sized + Write>(&mut self, w: &mut W, close: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline_indent(w)?;
        }
        w.write_all(close)
    }

    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline_indent(w)
    }
}

impl Formatter for GoFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        self.scratch.clear();
        format_go_float(&mut self.scratch, value);
        w.write_all(self.scratch.as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json has escaped quotes, backslashes and controls already (as Go does:
        // `\b`, `\f`, `\u00xx` in lower-case hex); Go also escapes `<`, `>`, `&`, U+2028
        // and U+2029, which these runs may hold.
        escape_go_json(fragment, |part| w.write_all(part.as_bytes()))
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// `value` as Go's `json.Encoder` with `SetIndent("", "  ")` writes it: the indented text and
/// one newline. `capacity`: a guess of the length, so that the text is not copied to grow.
pub fn to_go_json<T: Serialize + ?Sized>(value: &T, capacity: usize) -> String {
    let mut out = Vec::with_capacity(capacity);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter::default());
    // Writing into a Vec cannot fail, and the model's types serialise without error (string
    // map keys, no custom failing impls).
    if let Err(e) = value.serialize(&mut ser) {
        debug_assert!(false, "the report model failed to serialise: {e}");
    }
    out.push(b'\n');
    // serde_json writes UTF-8 only (strings are `str`, escapes ASCII).
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes Go-indented JSON value by value through [`GoFormatter`], for text that is not a
/// typed value (tests, tools). The caller supplies keys in the order Go would emit them and
/// omits `omitempty` fields itself. Misuse (a value in an object without a key, unbalanced
/// ends) is a programming error caught by debug assertions.
#[derive(Debug, Default)]
pub struct GoJsonWriter {
    out: Vec<u8>,
    f: GoFormatter,
    /// One entry per open container: (is an object, has at least one member yet).
    stack: Vec<(bool, bool)>,
    /// A key was just written; the next value goes on the same line.
    after_key: bool,
}

impl GoJsonWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `capacity` bytes of output.
    pub fn with_capacity(capacity: usize) -> Self {
        GoJsonWriter {
            out: Vec::with_capacity(capacity),
            ..Self::default()
        }
    }

    /// Starts a value: after a key it follows on the same line, in an array it is an element.
    fn begin_item(&mut self) {
        if std::mem::take(&mut self.after_key) {
            let _ = self.f.begin_object_value(&mut self.out);
            return;
        }
        if let Some(top) = self.stack.last_mut() {
            debug_assert!(!top.0, "GoJsonWriter: value inside an object without a key");
            let first = !std::mem::replace(&mut top.1, true);
            let _ = self.f.begin_array_value(&mut self.out, first);
        }
    }

    /// Ends a value: the container it is in now has a member.
    fn end_item(&mut self) {
        if !self.stack.is_empty() {
            let _ = self.f.end_array_value(&mut self.out);
        }
    }

    /// Writes an object key (escaped like any string); its value follows.
    pub fn key(&mut self, k: &str) -> &mut Self {
        debug_assert!(!self.after_key, "GoJsonWriter: two keys in a row");
        if let Some(top) = self.stack.last_mut() {
            debug_assert!(top.0, "GoJsonWriter: key inside an array");
            let first = !std::mem::replace(&mut top.1, true);
            let _ = self.f.begin_object_key(&mut self.out, first);
        }
        self.write_scalar(k);
        self.after_key = true;
        self
    }

    /// Serialises a scalar through a formatter of its own: scalars do not touch the layout.
    fn write_scalar<T: Serialize + ?Sized>(&mut self, v: &T) {
        let mut ser = serde_json::Serializer::with_formatter(&mut self.out, GoFormatter::default());
        let _ = v.serialize(&mut ser);
    }

    /// Opens an object (`{`).
    pub fn begin_object(&mut self) -> &mut Self {
        self.begin_item();
        let _ = self.f.begin_object(&mut self.out);
        self.stack.push((true, false));
        self
    }

    /// Closes the innermost object; an empty object prints as `{}`.
    pub fn end_object(&mut self) -> &mut Self {
        self.end_container(true)
    }

    /// Opens an array (`[`).
    pub fn begin_array(&mut self) -> &mut Self {
        self.begin_item();
        let _ = self.f.begin_array(&mut self.out);
        self.stack.push((false, false));
        self
    }

    /// Closes the innermost array; an empty array prints as `[]`.
    pub fn end_array(&mut self) -> &mut Self {
        self.end_container(false)
    }

    fn end_container(&mut self, object: bool) -> &mut Self {
        debug_assert!(!self.after_key, "GoJsonWriter: key without a value");
        let top = self.stack.pop();
        debug_assert!(
            matches!(top, Some((o, _)) if o == object),
            "GoJsonWriter: unbalanced end"
        );
        let _ = if object {
            self.f.end_object(&mut self.out)
        } else {
            self.f.end_array(&mut self.out)
        };
        self.end_item();
        self
    }

    /// Writes a serialisable value (a string, a number, a bool, `None` as `null`).
    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> &mut Self {
        self.begin_item();
        self.write_scalar(v);
        self.end_item();
        self
    }

    /// Writes a string value.
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.value(s)
    }

    /// Writes a string value from bytes that may not be UTF-8 (see [`write_json_bytes_as_string`]).
    pub fn bytes_as_string(&mut self, b: &[u8]) -> &mut Self {
        let mut text = String::with_capacity(b.len() + 2);
        write_json_bytes_as_string(&mut text, b);
        self.raw(&text)
    }

    /// Writes a signed integer value.
    pub fn int(&mut self, v: i64) -> &mut Self {
        self.value(&v)
    }

    /// Writes an unsigned integer value.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        self.value(&v)
    }

    /// Writes a float64 value (see [`format_go_float`]).
    pub fn float(&mut self, v: f64) -> &mut Self {
        self.value(&v)
    }

    /// Writes `true` or `false`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.value(&v)
    }

    /// Writes `null`.
    pub fn null(&mut self) -> &mut Self {
        self.value(&())
    }

    /// Writes pre-encoded JSON text as one value, unchanged (the caller guarantees it is a
    /// single-line scalar or already indented for this position).
    pub fn raw(&mut self, json: &str) -> &mut Self {
        self.begin_item();
        self.out.extend_from_slice(json.as_bytes());
        self.end_item();
        self
    }

    /// Ends the document: appends the trailing newline and returns the text.
    pub fn finish(mut self) -> String {
        debug_assert!(self.stack.is_empty(), "GoJsonWriter: unclosed container");
        self.out.push(b'\n');
        String::from_utf8(self.out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}
