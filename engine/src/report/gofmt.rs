//! Go's text encodings that a kperf report consumer sees byte for byte: `encoding/json`
//! (`MarshalIndent` with two spaces, HTML escaping on), `strconv` float formatting as
//! `encoding/json` uses it, `time.Duration.String()` and `time.RFC3339Nano`
//! (docs/kperf-compatibility.md §12).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal, escaped as Go's `encoding/json` does with HTML
/// escaping on: `\"` `\\` `\n` `\r` `\t` `\b` `\f`, other C0 controls as `\u00xx`,
/// `<` `>` `&` as `\u003c` `\u003e` `\u0026`, U+2028/U+2029 as `\u2028`/`\u2029`.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    write_escaped_valid(out, s);
    out.push('"');
}

/// Like [`write_json_string`] for bytes that may not be UTF-8: each byte that does not
/// start a valid UTF-8 sequence becomes `\ufffd` (Go decodes rune by rune and skips one
/// byte per invalid position, so `E2 82 41` gives `\ufffd\ufffdA`).
pub fn write_json_bytes_as_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                write_escaped_valid(out, valid);
                break;
            }
            Err(e) => {
                let (valid, tail) = rest.split_at(e.valid_up_to());
                // `valid_up_to` marks a prefix that is valid UTF-8 by definition.
                if let Ok(valid) = std::str::from_utf8(valid) {
                    write_escaped_valid(out, valid);
                }
                out.push_str("\\ufffd");
                rest = &tail[1..];
            }
        }
    }
    out.push('"');
}

fn write_escaped_valid(out: &mut String, s: &str) {
    let _ = escape_go_json::<std::convert::Infallible>(s, |part| {
        out.push_str(part);
        Ok(())
    });
}

/// Hands `s` to `emit` in parts, escaped as Go's `encoding/json` escapes a string's contents
/// (see [`write_json_string`]): the one escaper of both the report's serde formatter and the
/// string writers here. `emit` sees runs of `s` and escape sequences, in order; its first
/// error stops the walk.
pub fn escape_go_json<E>(s: &str, mut emit: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    // Byte by byte: every character Go escapes is ASCII or starts with 0xE2 (U+2028,
    // U+2029), and `s` is valid UTF-8, so each byte acted on starts a character.
    while i < bytes.len() {
        let b = bytes[i];
        if !ESCAPE_CANDIDATE[usize::from(b)] {
            i += 1;
            continue;
        }
        let (escape, len): (Option<&str>, usize) = match b {
            b'"' => (Some("\\\""), 1),
            b'\\' => (Some("\\\\"), 1),
            b'\n' => (Some("\\n"), 1),
            b'\r' => (Some("\\r"), 1),
            b'\t' => (Some("\\t"), 1),
            0x08 => (Some("\\b"), 1),
            0x0c => (Some("\\f"), 1),
            b'<' => (Some("\\u003c"), 1),
            b'>' => (Some("\\u003e"), 1),
            b'&' => (Some("\\u0026"), 1),
            0xe2 if bytes[i + 1..].starts_with(&[0x80, 0xa8]) => (Some("\\u2028"), 3),
            0xe2 if bytes[i + 1..].starts_with(&[0x80, 0xa9]) => (Some("\\u2029"), 3),
            0xe2 => {
                i += 1;
                continue;
            }
            _ => (None, 1),
        };
        if start < i {
            emit(&s[start..i])?;
        }
        match escape {
            Some(e) => emit(e)?,
            None => {
                let code = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ];
                // ASCII by construction.
                emit(std::str::from_utf8(&code).unwrap_or("\\ufffd"))?;
            }
        }
        i += len;
        start = i;
    }
    if start < bytes.len() {
        emit(&s[start..])?;
    }
    Ok(())
}

/// Bytes that may need escaping: control characters, `"`, `\\`, `<`, `>`, `&`, and 0xE2
/// (the first byte of U+2028 and U+2029).
const ESCAPE_CANDIDATE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xe2] = true;
    t
};

/// Appends `x` as Go's `encoding/json` encodes a float64: shortest digits that round-trip,
/// plain decimal for `1e-6 <= |x| < 1e21` (and zero), exponent form otherwise with a
/// sign and no leading zero in the exponent (`1e-7`, `1.5e-8`, `1e+21`); integral values
/// carry no `.0`. Go refuses to encode NaN and ±Inf; they are written as `null` here so
/// that the output stays valid JSON.
pub fn format_go_float(out: &mut String, x: f64) {
    if !x.is_finite() {
        out.push_str("null");
        return;
    }
    let abs = x.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` gives the same shortest digits as Go's 'e' format; only the
        // exponent spelling differs (Go: "e+21", "e-07" trimmed to "e-7" by encoding/json).
        let start = out.len();
        let _ = write!(out, "{x:e}");
        if let Some(e_pos) = out[start..].find('e') {
            let after = start + e_pos + 1;
            if !out[after..].starts_with('-') {
                out.insert(after, '+');
            }
        }
    } else if !write_micros_decimal(out, x) {
        // Rust's `Display` for f64 is the shortest round-trip digits in plain decimal,
        // without ".0" for integral values: exactly Go's 'f' format with precision -1.
        let _ = write!(out, "{x}");
    }
}

/// Writes `x` when it is the float nearest to a whole number n of millionths (every
/// second of a µs figure, and kperf's percentiles): the shortest round-trip digits are then
/// n·10⁻⁶'s own, trailing zeros dropped. That decimal rounds to `x` as the division did,
/// and no other decimal of at most as many digits lies within `x`'s half ulp while
/// |x| < 10⁹ (half an ulp < 10⁻⁷, other decimals ≥ 10⁻⁶ away). `false`: not such a float,
/// nothing written (+0 is written, as "0"). Why not `Display`: its shortest-digits search
/// is far dearer, and floats are most of a report's numbers.
fn write_micros_decimal(out: &mut String, x: f64) -> bool {
    if x == 0.0 && x.is_sign_positive() {
        out.push('0');
        return true;
    }
    let abs = x.abs();
    if !(1e-6..1e9).contains(&abs) {
        return false;
    }
    let n = (abs * 1e6).round();
    if n / 1e6 != abs {
        return false;
    }
    let n = n as u64; // < 10¹⁵ + 1, exact
    if x < 0.0 {
        out.push('-');
    }
    let mut digits = itoa::Buffer::new();
    out.push_str(digits.format(n / 1_000_000));
    let mut frac = n % 1_000_000;
    if frac != 0 {
        let mut places = 6;
        while frac.is_multiple_of(10) {
            frac /= 10;
            places -= 1;
        }
        let frac = digits.format(frac);
        out.push('.');
        for _ in frac.len()..places {
            out.push('0');
        }
        out.push_str(frac);
    }
    true
}

/// Go's `time.Duration.String()`: `0s`, `999ns`, `1.5µs`, `1.5ms`, `1.234567891s`,
/// `2m0.5s`, `1h0m5s`. Durations beyond Go's int64 range follow the same rules.
pub fn format_go_duration(d: Duration) -> String {
    let mut out = String::with_capacity(24);
    write_go_duration(&mut out, d);
    out
}

/// [`format_go_duration`] appending to `out`.
pub fn write_go_duration(out: &mut String, d: Duration) {
    let mut u = d.as_nanos();
    // Built right to left like Go's, in a buffer large enough for u128 nanoseconds.
    let mut buf = [0u8; 64];
    let mut w = buf.len();
    if u < 1_000_000_000 {
        w -= 1;
        buf[w] = b's';
        w -= 1;
        let prec;
        if u == 0 {
            out.push_str("0s");
            return;
        } else if u < 1_000 {
            prec = 0;
            buf[w] = b'n';
        } else if u < 1_000_000 {
            prec = 3;
            // 'µ' is U+00B5, encoded C2 B5.
            buf[w] = 0xB5;
            w -= 1;
            buf[w] = 0xC2;
        } else {
            prec = 6;
            buf[w] = b'm';
        }
        let (nw, nv) = fmt_frac(&mut buf, w, u, prec);
        w = fmt_int(&mut buf, nw, nv);
    } else {
        w -= 1;
        buf[w] = b's';
        let (nw, nv) = fmt_frac(&mut buf, w, u, 9);
        u = nv;
        w = fmt_int(&mut buf, nw, u % 60);
        u /= 60;
        if u > 0 {
            w -= 1;
            buf[w] = b'm';
            w = fmt_int(&mut buf, w, u % 60);
            u /= 60;
            if u > 0 {
                w -= 1;
                buf[w] = b'h';
                w = fmt_int(&mut buf, w, u);
            }
        }
    }
    // Only ASCII digits, letters and the complete two-byte 'µ' were written.
    if let Ok(s) = std::str::from_utf8(&buf[w..]) {
        out.push_str(s);
    }
}

/// Writes the `prec` low decimal digits of `v` as a fraction ending at `w`, trailing zeros
/// (and a bare '.') omitted; returns the new start and `v / 10^prec`.
fn fmt_frac(buf: &mut [u8], mut w: usize, mut v: u128, prec: u32) -> (usize, u128) {
    let mut print = false;
    for _ in 0..prec {
        let digit = (v % 10) as u8;
        print = print || digit != 0;
        if print {
            w -= 1;
            buf[w] = b'0' + digit;
        }
        v /= 10;
    }
    if print {
        w -= 1;
        buf[w] = b'.';
    }
    (w, v)
}

/// Writes `v` in decimal ending at `w`; returns the new start.
fn fmt_int(buf: &mut [u8], mut w: usize, mut v: u128) -> usize {
    if v == 0 {
        w -= 1;
        buf[w] = b'0';
        return w;
    }
    while v > 0 {
        w -= 1;
        buf[w] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    w
}

/// Go's `t.In(zone).Format(time.RFC3339Nano)` for a zone `utc_offset_seconds` east of UTC:
/// `2006-01-02T15:04:05.999999999Z07:00` with fraction trailing zeros (and a bare '.')
/// dropped, `Z` for a zero offset, otherwise `±hh:mm` (seconds of the offset truncated, as
/// Go does).
pub fn format_rfc3339_nano(t: SystemTime, utc_offset_seconds: i32) -> String {
    // Seconds and nanoseconds since the epoch as a floor pair, also before 1970.
    let (secs, nanos): (i64, u32) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (clamp_secs(d.as_secs()), d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let s = clamp_secs(d.as_secs());
            if d.subsec_nanos() == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    };
    let local = secs + i64::from(utc_offset_seconds);
    let days = local.div_euclid(86_400);
    let sod = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(36);
    if (0..=9999).contains(&year) {
        let _ = write!(out, "{year:04}");
    } else if year < 0 {
        let _ = write!(out, "-{:04}", -year);
    } else {
        let _ = write!(out, "{year}");
    }
    let _ = write!(
        out,
        "-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if nanos != 0 {
        let mut frac = format!("{nanos:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
        out.push('.');
        out.push_str(&frac);
    }
    if utc_offset_seconds == 0 {
        out.push('Z');
    } else {
        // Go: zone := offset / 60 (truncating); the sign comes from the minutes.
        let mut zone = utc_offset_seconds / 60;
        if zone < 0 {
            out.push('-');
            zone = -zone;
        } else {
            out.push('+');
        }
        let _ = write!(out, "{:02}:{:02}", zone / 60, zone % 60);
    }
    out
}

fn clamp_secs(s: u64) -> i64 {
    // Beyond ±292 billion years the date is meaningless anyway; clamp rather than wrap.
    i64::try_from(s).unwrap_or(i64::MAX / 2).min(i64::MAX / 2)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros_text(x: f64) -> Option<String> {
        let mut s = String::new();
        write_micros_decimal(&mut s, x).then_some(s)
    }

    #[test]
    fn millionths_are_written_as_display_writes_them() {
        let mut checked = 0;
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut ns: Vec<u64> = (0..400_000u64).collect();
        ns.extend((0..400_000).map(|_| next() % 1_000_000_000_000_000));
        ns.extend((0..200_000).map(|_| next() % 10_000_000_000));
        ns.extend([
            999_999_999_999_999,
            1_000_000_000_000_000,
            u64::from(u32::MAX),
        ]);
        for n in ns {
            for x in [n as f64 / 1e6, -(n as f64 / 1e6)] {
                match micros_text(x) {
                    Some(text) => {
                        assert_eq!(text, format!("{x}"), "{n} µs");
                        checked += 1;
                    }
                    None => assert!(x == 0.0 || x.abs() >= 1e9, "{n} µs not taken"),
                }
            }
        }
        assert!(checked > 1_900_000);
        for p in [0.5, 0.9, 0.95, 0.99, 0.999, 0.25] {
            assert_eq!(micros_text(p), Some(format!("{p}")));
        }
        // Floats that are no whole millionth go to `Display`.
        assert_eq!(micros_text(0.0).as_deref(), Some("0"));
        for x in [1.0 / 3.0, 1e-7, 5e-324, -0.0, 2.5e-6 + 1e-13, 1e9, f64::NAN] {
            assert_eq!(micros_text(x), None, "{x}");
        }
    }
}
