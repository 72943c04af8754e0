//! The YAML dialect kperf accepts (gopkg.in/yaml.v2, non-strict), at the scalar level, and a
//! streaming character input for the event parser.
//!
//! Three pieces: [`CharInput`] turns bytes into chars for `saphyr-parser`, failing on invalid
//! UTF-8, I/O errors, and on too many bytes without an event (a parser accumulates a scalar
//! before emitting it, so the scalar limit has to be enforced below it); [`Node`] is a small
//! document subtree (one request, the spec, an anchored value); [`resolve`] applies yaml.v2's
//! YAML 1.1 resolution (ints with `_`/`0x`/`0b`/leading-0 octal, floats, the 1.1 booleans) and
//! the conversions into int, bool and string fields.

mod input;

use std::rc::Rc;

use saphyr_parser::ScalarStyle;

pub(crate) use input::{CharInput, InputError, InputState};

/// An explicit tag on a scalar, as yaml.v2 distinguishes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScalarTag {
    /// No tag.
    None,
    /// A core-schema tag (`!!int` → "int").
    Core(String),
    /// Any other tag, as written.
    Other(String),
}

/// A piece of the document kept in memory: one request, the spec, a merge value, or an
/// anchored value that a later alias may name.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    /// 1-based line where the node starts.
    pub(crate) line: usize,
    /// 1-based column where the node starts (for error positions).
    pub(crate) col: usize,
}

#[derive(Debug)]
pub(crate) enum NodeKind {
    Scalar {
        value: String,
        plain: bool,
        tag: ScalarTag,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// An anchored node at the place it is defined (not an expansion).
    Anchored(Rc<Node>),
    /// An alias: a reference to an earlier anchored node.
    Alias(Rc<Node>),
}

impl Node {
    /// The node itself, looking through the place an anchor was defined (not through aliases).
    pub(crate) fn defined(&self) -> &Node {
        match &self.kind {
            NodeKind::Anchored(inner) => inner.defined(),
            _ => self,
        }
    }

    /// Whether this is the plain scalar `<<` (a merge key) — quoted `"<<"` is an ordinary key.
    pub(crate) fn is_merge_key(&self) -> bool {
        match &self.defined().kind {
            NodeKind::Scalar { value, plain, tag } => {
                value == "<<" && (*plain || matches!(tag, ScalarTag::Core(t) if t == "merge"))
            }
            _ => false,
        }
    }
}

pub(crate) fn is_plain(style: ScalarStyle) -> bool {
    style == ScalarStyle::Plain
}

/// What a scalar resolves to under yaml.v2's rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    /// A string (or anything else without a numeric/bool meaning, e.g. a timestamp).
    Str,
}

/// A scalar's resolution and the tag yaml.v2 would name in a type error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolution {
    pub(crate) value: Resolved,
    pub(crate) tag: String,
}

/// Resolves a scalar as yaml.v2 `resolve` does. `Err` carries yaml.v2's fatal
/// "cannot decode !!x `v` as a !!y" for an explicit tag that does not fit the text.
pub(crate) fn resolve(value: &str, plain: bool, tag: &ScalarTag) -> Result<Resolution, String> {
    let wanted = match tag {
        ScalarTag::None if !plain => return Ok(res(Resolved::Str, "!!str")),
        ScalarTag::None => None,
        ScalarTag::Core(t) => match t.as_str() {
            // yaml.v2 hands timestamps to fields as their text.
            "str" | "timestamp" => return Ok(res(Resolved::Str, "!!str")),
            "int" | "float" | "bool" => Some(t.as_str()),
            other => return Ok(res(Resolved::Str, &format!("!!{other}"))),
        },
        ScalarTag::Other(t) => return Ok(res(Resolved::Str, t)),
    };
    let (found, kind) = resolve_plain(value);
    let Some(wanted) = wanted else {
        return Ok(res(found, kind));
    };
    if kind == format!("!!{wanted}") {
        return Ok(res(found, kind));
    }
    if wanted == "float" {
        match found {
            Resolved::Int(i) => return Ok(res(Resolved::Float(i as f64), "!!float")),
            Resolved::Uint(u) => return Ok(res(Resolved::Float(u as f64), "!!float")),
            _ => {}
        }
    }
    Err(format!("cannot decode {kind} `{value}` as a !!{wanted}"))
}

fn res(value: Resolved, tag: &str) -> Resolution {
    Resolution {
        value,
        tag: tag.to_string(),
    }
}

/// yaml.v2's resolution of an untagged plain scalar: the lookup table first, then by the
/// first character ('.' floats; digits and signs: int, uint, float, 0b ints). Timestamps end
/// up as their text, so they need no case here.
fn resolve_plain(s: &str) -> (Resolved, &'static str) {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return (Resolved::Bool(true), "!!bool")
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return (Resolved::Bool(false), "!!bool")
        }
        "" | "~" | "null" | "Null" | "NULL" => return (Resolved::Null, "!!null"),
        ".nan" | ".NaN" | ".NAN" => return (Resolved::Float(f64::NAN), "!!float"),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return (Resolved::Float(f64::INFINITY), "!!float")
        }
        "-.inf" | "-.Inf" | "-.INF" => return (Resolved::Float(f64::NEG_INFINITY), "!!float"),
        "<<" => return (Resolved::Str, "!!merge"),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        return match parse_go_decimal_float(s) {
            Some(f) => (Resolved::Float(f), "!!float"),
            None => (Resolved::Str, "!!str"),
        };
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return (Resolved::Str, "!!str");
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    if let Some(i) = parse_go_int(&plain) {
        return (Resolved::Int(i), "!!int");
    }
    if let Some(u) = parse_go_uint(&plain) {
        return (Resolved::Uint(u), "!!int");
    }
    if is_yaml_style_float(&plain) {
        if let Some(f) = parse_go_decimal_float(&plain) {
            return (Resolved::Float(f), "!!float");
        }
    }
    if let Some(bits) = plain.strip_prefix("0b") {
        if let Some(i) = digits_value(bits, 2).and_then(|m| i64::try_from(m).ok()) {
            return (Resolved::Int(i), "!!int");
        }
        if let Some(u) = digits_value(bits, 2).and_then(|m| u64::try_from(m).ok()) {
            return (Resolved::Uint(u), "!!int");
        }
    } else if let Some(bits) = plain.strip_prefix("-0b") {
        if let Some(m) = digits_value(bits, 2) {
            if m <= 1u128 << 63 {
                return (Resolved::Int((m as i128).wrapping_neg() as i64), "!!int");
            }
        }
    }
    (Resolved::Str, "!!str")
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go `strconv.ParseFloat` for decimal text (underscores only between digits); `None` on
/// syntax errors and on overflow to infinity, as Go reports a range error there.
fn parse_go_decimal_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let ok =
                i > 0 && i + 1 < b.len() && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit();
            if !ok {
                return None;
            }
        }
    }
    let cleaned: String = s.chars().filter(|&c| c != '_').collect();
    if !cleaned
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let f: f64 = cleaned.parse().ok()?;
    if f.is_infinite() {
        None
    } else {
        Some(f)
    }
}

/// Splits Go base-0 syntax into (negative, radix, digits).
fn split_go_int(s: &str, allow_sign: bool) -> Option<(bool, u32, &str)> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' if allow_sign => (true, &s[1..]),
        b'+' if allow_sign => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = rest.get(..2).map(|p| p.to_ascii_lowercase());
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &rest[2..]),
        Some("0b") => (2, &rest[2..]),
        Some("0o") => (8, &rest[2..]),
        _ if rest.len() > 1 && rest.starts_with('0') => (8, &rest[1..]),
        _ => (10, rest),
    };
    Some((neg, radix, digits))
}

fn digits_value(digits: &str, radix: u32) -> Option<u128> {
    if digits.is_empty() {
        return None;
    }
    let mut v: u128 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix)? as u128;
        v = v.checked_mul(radix as u128)?.checked_add(d)?;
        if v > u64::MAX as u128 {
            return None;
        }
    }
    Some(v)
}

/// Go `strconv.ParseInt(s, 0, 64)`.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, radix, digits) = split_go_int(s, true)?;
    let m = digits_value(digits, radix)?;
    if neg {
        if m <= 1u128 << 63 {
            Some((m as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else {
        i64::try_from(m).ok()
    }
}

/// Go `strconv.ParseUint(s, 0, 64)` (no sign allowed).
fn parse_go_uint(s: &str) -> Option<u64> {
    let (_, radix, digits) = split_go_int(s, false)?;
    digits_value(digits, radix).and_then(|m| u64::try_from(m).ok())
}

/// Go `base64.StdEncoding.DecodeString` (padding required, CR/LF ignored), which yaml.v2
/// applies to `!!binary` scalars.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits, mut symbols, mut padding) = (0u32, 0u32, 0usize, 0usize);
    for c in text.bytes() {
        let v = match c {
            b'\r' | b'\n' => continue,
            b'=' => {
                padding += 1;
                symbols += 1;
                continue;
            }
            _ if padding > 0 => return None,
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        symbols += 1;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if symbols % 4 != 0 || padding > 2 || (padding > 0 && symbols - padding < 2) {
        return None;
    }
    Some(out)
}

/// An int field's value as yaml.v2 sets it; `None` is a type error.
pub(crate) fn to_int(r: Resolved) -> Option<i64> {
    match r {
        Resolved::Null => Some(0),
        Resolved::Int(i) => Some(i),
        Resolved::Uint(u) => i64::try_from(u).ok(),
        // Go: `if f <= math.MaxInt64 { int64(f) }`; on amd64 an out-of-range conversion
        // (including exactly 2^63 and -Inf) yields the minimum int64.
        Resolved::Float(f) if f <= i64::MAX as f64 => {
            if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                Some(i64::MIN)
            } else {
                Some(f.trunc() as i64)
            }
        }
        _ => None,
    }
}

/// A bool field's value as yaml.v2 sets it; `None` is a type error.
pub(crate) fn to_bool(r: Resolved) -> Option<bool> {
    match r {
        Resolved::Null => Some(false),
        Resolved::Bool(b) => Some(b),
        _ => None,
    }
}

/// yaml.v2's rendering of a value in a type error: the text, cut to 7 chars + `...` when
/// longer than 10 bytes.
pub(crate) fn shown_value(value: &str) -> String {
    if value.len() > 10 {
        let cut: String = value.chars().take(7).collect();
        format!(" `{cut}...`")
    } else {
        format!(" `{value}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(s: &str) -> Resolved {
        resolve(s, true, &ScalarTag::None)
            .map(|r| r.value)
            .unwrap_or(Resolved::Str)
    }

    #[test]
    fn yaml11_integers_and_floats() {
        assert_eq!(plain("010"), Resolved::Int(8));
        assert_eq!(plain("0x1F"), Resolved::Int(31));
        assert_eq!(plain("-0x10"), Resolved::Int(-16));
        assert_eq!(plain("0b101"), Resolved::Int(5));
        assert_eq!(plain("-0b101"), Resolved::Int(-5));
        assert_eq!(plain("1_000"), Resolved::Int(1000));
        assert_eq!(plain("+7"), Resolved::Int(7));
        assert_eq!(plain("08"), Resolved::Float(8.0));
        assert_eq!(plain("1.9"), Resolved::Float(1.9));
        assert_eq!(plain(".5"), Resolved::Float(0.5));
        assert_eq!(plain("18446744073709551615"), Resolved::Uint(u64::MAX));
        assert_eq!(plain("1e400"), Resolved::Str);
        assert_eq!(plain("2001-12-14"), Resolved::Str);
        assert_eq!(plain("12abc"), Resolved::Str);
    }

    #[test]
    fn conversions_into_int_fields() {
        assert_eq!(to_int(Resolved::Float(-1.9)), Some(-1));
        assert_eq!(to_int(Resolved::Float(f64::NAN)), None);
        assert_eq!(to_int(Resolved::Float(1e20)), None);
        assert_eq!(to_int(Resolved::Float(f64::NEG_INFINITY)), Some(i64::MIN));
        assert_eq!(to_int(Resolved::Uint(u64::MAX)), None);
        assert_eq!(to_int(Resolved::Bool(true)), None);
    }

    #[test]
    fn base64_as_go_decodes_it() {
        assert_eq!(decode_base64("TWFu").as_deref(), Some(&b"Man"[..]));
        assert_eq!(decode_base64("TWE=\n").as_deref(), Some(&b"Ma"[..]));
        assert_eq!(decode_base64("TQ==").as_deref(), Some(&b"M"[..]));
        assert_eq!(decode_base64("TQ="), None);
        assert_eq!(decode_base64("T==="), None);
        assert_eq!(decode_base64("TW=u"), None);
        assert_eq!(decode_base64("TW u"), None);
    }

    #[test]
    fn explicit_tags() {
        let int = ScalarTag::Core("int".into());
        assert_eq!(
            resolve("5", false, &int).map(|r| r.value),
            Ok(Resolved::Int(5))
        );
        assert!(resolve("abc", false, &int).is_err());
        let float = ScalarTag::Core("float".into());
        assert_eq!(
            resolve("5", true, &float).map(|r| r.value),
            Ok(Resolved::Float(5.0))
        );
        assert_eq!(
            resolve("5", true, &ScalarTag::Core("str".into())).map(|r| r.value),
            Ok(Resolved::Str)
        );
    }
}
