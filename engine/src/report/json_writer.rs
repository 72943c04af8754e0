//! The report's JSON text, indented as Go's encoder writes it; strings and numbers in Go's
//! encodings (`gofmt`).

use super::gofmt::{format_go_float, write_json_bytes_as_string, write_json_string};

/// Builds JSON text exactly as Go's `json.MarshalIndent(v, "", "  ")` followed by one
/// newline (what `json.Encoder` with `SetIndent("", "  ")` writes). The caller supplies
/// keys in the order Go would emit them (struct field order; map keys sorted bytewise)
/// and omits `omitempty` fields itself. Misuse (a value in an object without a key,
/// unbalanced ends) is a programming error caught by debug assertions.
#[derive(Debug, Default)]
pub struct GoJsonWriter {
    out: String,
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
            out: String::with_capacity(capacity),
            stack: Vec::with_capacity(8),
            after_key: false,
        }
    }

    fn newline_indent(&mut self, depth: usize) {
        // One copy of a prefix rather than a push per level: every line of a report has one.
        const INDENT: &str = concat!(
            "\n                                                               ",
            "                                                                "
        );
        match INDENT.get(..1 + 2 * depth) {
            Some(prefix) => self.out.push_str(prefix),
            None => {
                self.out.push('\n');
                for _ in 0..depth {
                    self.out.push_str("  ");
                }
            }
        }
    }

    /// Starts a member or an element: separator, newline and indentation as Go writes them.
    fn begin_item(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        let depth = self.stack.len();
        if let Some(top) = self.stack.last_mut() {
            debug_assert!(!top.0, "GoJsonWriter: value inside an object without a key");
            let had = top.1;
            top.1 = true;
            if had {
                self.out.push(',');
            }
            self.newline_indent(depth);
        }
    }

    /// Writes an object key (escaped like any string) and `": "`.
    pub fn key(&mut self, k: &str) -> &mut Self {
        debug_assert!(!self.after_key, "GoJsonWriter: two keys in a row");
        let depth = self.stack.len();
        if let Some(top) = self.stack.last_mut() {
            debug_assert!(top.0, "GoJsonWriter: key inside an array");
            let had = top.1;
            top.1 = true;
            if had {
                self.out.push(',');
            }
            self.newline_indent(depth);
        }
        write_json_string(&mut self.out, k);
        self.out.push_str(": ");
        self.after_key = true;
        self
    }

    /// Opens an object (`{`).
    pub fn begin_object(&mut self) -> &mut Self {
        self.begin_item();
        self.out.push('{');
        self.stack.push((true, false));
        self
    }

    /// Closes the innermost object; an empty object prints as `{}`.
    pub fn end_object(&mut self) -> &mut Self {
        self.end_container(true, '}')
    }

    /// Opens an array (`[`).
    pub fn begin_array(&mut self) -> &mut Self {
        self.begin_item();
        self.out.push('[');
        self.stack.push((false, false));
        self
    }

    /// Closes the innermost array; an empty array prints as `[]`.
    pub fn end_array(&mut self) -> &mut Self {
        self.end_container(false, ']')
    }

    fn end_container(&mut self, object: bool, close: char) -> &mut Self {
        debug_assert!(!self.after_key, "GoJsonWriter: key without a value");
        let top = self.stack.pop();
        debug_assert!(
            matches!(top, Some((o, _)) if o == object),
            "GoJsonWriter: unbalanced end"
        );
        if let Some((_, true)) = top {
            let depth = self.stack.len();
            self.newline_indent(depth);
        }
        self.out.push(close);
        self
    }

    /// Writes a string value.
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.begin_item();
        write_json_string(&mut self.out, s);
        self
    }

    /// Writes `bytes` in standard base64 as a string value. The alphabet (`A–Z a–z 0–9 + / =`)
    /// never needs escaping, so the text skips the escape scan (histograms are most of a
    /// report's bytes).
    pub fn base64_string(&mut self, bytes: &[u8]) -> &mut Self {
        use base64::Engine as _;
        self.begin_item();
        self.out.push('"');
        base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut self.out);
        self.out.push('"');
        self
    }

    /// Writes a string value from bytes that may not be UTF-8 (see [`write_json_bytes_as_string`]).
    pub fn bytes_as_string(&mut self, b: &[u8]) -> &mut Self {
        self.begin_item();
        write_json_bytes_as_string(&mut self.out, b);
        self
    }

    /// Writes a signed integer value.
    pub fn int(&mut self, v: i64) -> &mut Self {
        self.begin_item();
        self.out.push_str(itoa::Buffer::new().format(v));
        self
    }

    /// Writes an unsigned integer value.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        self.begin_item();
        self.out.push_str(itoa::Buffer::new().format(v));
        self
    }

    /// Writes a float64 value (see [`format_go_float`]).
    pub fn float(&mut self, v: f64) -> &mut Self {
        self.begin_item();
        format_go_float(&mut self.out, v);
        self
    }

    /// Writes `true` or `false`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.begin_item();
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    /// Writes `null`.
    pub fn null(&mut self) -> &mut Self {
        self.begin_item();
        self.out.push_str("null");
        self
    }

    /// Writes pre-encoded JSON text as one value, unchanged (the caller guarantees it is a
    /// single-line scalar or already indented for this position).
    pub fn raw(&mut self, json: &str) -> &mut Self {
        self.begin_item();
        self.out.push_str(json);
        self
    }

    /// Ends the document: appends the trailing newline and returns the text.
    pub fn finish(mut self) -> String {
        debug_assert!(self.stack.is_empty(), "GoJsonWriter: unclosed container");
        self.out.push('\n');
        self.out
    }
}
