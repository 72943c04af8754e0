//! Go-exact text encodings used by the kperf report (docs/kperf-compatibility.md §12).
//! Expected strings are what Go 1.22's encoding/json, strconv and time packages print for the
//! same input.

use std::time::{Duration, UNIX_EPOCH};

use engine::report::gofmt::{
    format_go_duration, format_go_float, format_rfc3339_nano, write_json_bytes_as_string,
    write_json_string,
};
use engine::report::json_writer::GoJsonWriter;

fn float(x: f64) -> String {
    let mut s = String::new();
    format_go_float(&mut s, x);
    s
}

fn json_str(s: &str) -> String {
    let mut out = String::new();
    write_json_string(&mut out, s);
    out
}

fn json_bytes(b: &[u8]) -> String {
    let mut out = String::new();
    write_json_bytes_as_string(&mut out, b);
    out
}

#[test]
fn floats_match_go_encoding_json() {
    let cases: &[(f64, &str)] = &[
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (2.0, "2"),
        (10.0, "10"),
        (0.5, "0.5"),
        (-1.5, "-1.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (123456789.123, "123456789.123"),
        (0.000123, "0.000123"),
        (0.012345, "0.012345"),
        (1e-6, "0.000001"),
        (9.99e-7, "9.99e-7"),
        (1e-7, "1e-7"),
        (1.5e-8, "1.5e-8"),
        (1.23e-7, "1.23e-7"),
        (2.5e-10, "2.5e-10"),
        (1e-100, "1e-100"),
        (5e-324, "5e-324"),
        (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e21, "1e+21"),
        (-1e21, "-1e+21"),
        (1.5e300, "1.5e+300"),
        (f64::MAX, "1.7976931348623157e+308"),
    ];
    for &(x, want) in cases {
        assert_eq!(float(x), want, "format_go_float({x:?})");
    }
}

#[test]
fn non_finite_floats_stay_valid_json() {
    assert_eq!(float(f64::NAN), "null");
    assert_eq!(float(f64::INFINITY), "null");
}

#[test]
fn floats_round_trip_through_their_text() {
    // Shortest round-trip digits: parsing the text gives the same float back.
    let mut x = 1.234_567_890_123e-9_f64;
    for _ in 0..200 {
        let text = float(x);
        let back: f64 = text.parse().expect("Go float text parses as f64");
        assert_eq!(back.to_bits(), x.to_bits(), "{text}");
        x *= 3.7;
    }
}

#[test]
fn durations_match_go_duration_string() {
    let cases: &[(Duration, &str)] = &[
        (Duration::ZERO, "0s"),
        (Duration::from_nanos(1), "1ns"),
        (Duration::from_nanos(999), "999ns"),
        (Duration::from_micros(1), "1µs"),
        (Duration::from_nanos(1_001), "1.001µs"),
        (Duration::from_nanos(1_500), "1.5µs"),
        (Duration::from_nanos(123_456), "123.456µs"),
        (Duration::from_micros(999), "999µs"),
        (Duration::from_millis(1), "1ms"),
        (Duration::from_micros(1_500), "1.5ms"),
        (Duration::from_nanos(1_234_567), "1.234567ms"),
        (Duration::from_nanos(1_000_001), "1.000001ms"),
        (Duration::from_millis(100), "100ms"),
        (Duration::from_secs(1), "1s"),
        (Duration::from_nanos(1_000_000_001), "1.000000001s"),
        (Duration::from_nanos(1_234_567_891), "1.234567891s"),
        (Duration::from_nanos(59_999_999_999), "59.999999999s"),
        (Duration::from_secs(60), "1m0s"),
        (Duration::from_millis(120_500), "2m0.5s"),
        (Duration::from_secs(180), "3m0s"),
        (Duration::from_secs(3600), "1h0m0s"),
        (Duration::from_secs(3605), "1h0m5s"),
        (Duration::from_secs(25 * 3600 + 180), "25h3m0s"),
        (
            Duration::from_nanos(i64::MAX as u64),
            "2562047h47m16.854775807s",
        ),
    ];
    for &(d, want) in cases {
        assert_eq!(format_go_duration(d), want, "{d:?}");
    }
}

#[test]
fn rfc3339_nano_matches_go() {
    let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    assert_eq!(format_rfc3339_nano(t, 0), "2023-11-14T22:13:20.123456789Z");
    assert_eq!(
        format_rfc3339_nano(t, 3600),
        "2023-11-14T23:13:20.123456789+01:00"
    );
    assert_eq!(
        format_rfc3339_nano(t, -(5 * 3600 + 30 * 60)),
        "2023-11-14T16:43:20.123456789-05:30"
    );
    let half = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
    assert_eq!(format_rfc3339_nano(half, 0), "2023-11-14T22:13:20.5Z");
    assert_eq!(format_rfc3339_nano(UNIX_EPOCH, 0), "1970-01-01T00:00:00Z");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
    assert_eq!(format_rfc3339_nano(leap, 0), "2000-02-29T00:00:00Z");
    let before = UNIX_EPOCH - Duration::from_nanos(1);
    assert_eq!(
        format_rfc3339_nano(before, 0),
        "1969-12-31T23:59:59.999999999Z"
    );
    let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    assert_eq!(format_rfc3339_nano(last, 0), "9999-12-31T23:59:59Z");
    // Go keeps hours:minutes of an offset and truncates its seconds toward zero.
    assert_eq!(
        format_rfc3339_nano(UNIX_EPOCH, -30),
        "1969-12-31T23:59:30+00:00"
    );
    assert_eq!(
        format_rfc3339_nano(UNIX_EPOCH, 90),
        "1970-01-01T00:01:30+00:01"
    );
}

#[test]
fn strings_escape_like_go() {
    assert_eq!(json_str(""), r#""""#);
    assert_eq!(json_str("plain text"), r#""plain text""#);
    assert_eq!(json_str(r#"a"b\c"#), r#""a\"b\\c""#);
    assert_eq!(json_str("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
    assert_eq!(json_str("\u{0}\u{1}\u{1f}"), r#""\u0000\u0001\u001f""#);
    assert_eq!(json_str("\u{b}\u{7f}"), "\"\\u000b\u{7f}\"");
    assert_eq!(json_str("<a>&b"), r#""\u003ca\u003e\u0026b""#);
    assert_eq!(
        json_str("GET https://h/p?a=1&b=2"),
        r#""GET https://h/p?a=1\u0026b=2""#
    );
    assert_eq!(json_str("\u{2028}\u{2029}"), r#""\u2028\u2029""#);
    assert_eq!(json_str("µs é 日本"), "\"µs é 日本\"");
    // Other characters that start with 0xE2 like U+2028 stay as they are.
    assert_eq!(
        json_str("€\u{2027}a\u{2028}\u{202a}\u{2029}"),
        "\"€\u{2027}a\\u2028\u{202a}\\u2029\""
    );
}

#[test]
fn invalid_utf8_becomes_replacement_per_byte() {
    assert_eq!(json_bytes(b"ok"), r#""ok""#);
    assert_eq!(json_bytes(b"a\xffb"), r#""a\ufffdb""#);
    // A truncated 3-byte sequence: Go skips one byte at a time, so two replacements.
    assert_eq!(json_bytes(b"\xe2\x82A"), r#""\ufffd\ufffdA""#);
    // An encoded surrogate is invalid UTF-8: three bytes, three replacements.
    assert_eq!(json_bytes(b"\xed\xa0\x80"), r#""\ufffd\ufffd\ufffd""#);
    assert_eq!(json_bytes("é<".as_bytes()), "\"é\\u003c\"");
    assert_eq!(json_bytes(b"\xff"), r#""\ufffd""#);
}

#[test]
fn writer_matches_marshal_indent_layout() {
    let mut w = GoJsonWriter::new();
    w.begin_object();
    w.key("total").int(9);
    w.key("duration").string("1.5s");
    w.key("errorStats").begin_object();
    w.key("http/404").int(2);
    w.end_object();
    w.key("totalReceivedBytes").uint(1234);
    w.key("percentileLatencies").begin_array();
    for (p, v) in [(0.0, 0.001), (0.99, 0.5), (1.0, 2.0)] {
        w.begin_array().float(p).float(v).end_array();
    }
    w.end_array();
    w.key("empty").begin_object().end_object();
    w.key("none").begin_array().end_array();
    w.key("ok").bool(true);
    w.key("nothing").null();
    w.key("pre").raw("42");
    w.end_object();
    let want = r#"{
  "total": 9,
  "duration": "1.5s",
  "errorStats": {
    "http/404": 2
  },
  "totalReceivedBytes": 1234,
  "percentileLatencies": [
    [
      0,
      0.001
    ],
    [
      0.99,
      0.5
    ],
    [
      1,
      2
    ]
  ],
  "empty": {},
  "none": [],
  "ok": true,
  "nothing": null,
  "pre": 42
}
"#;
    assert_eq!(w.finish(), want);
}

#[test]
fn writer_escapes_keys_and_values_and_nests_objects_in_arrays() {
    let mut w = GoJsonWriter::with_capacity(256);
    w.begin_object();
    w.key("latenciesByURL").begin_object();
    w.key("LIST https://h/p?a=1&b=2").begin_array();
    w.float(1e-7).float(0.25);
    w.end_array();
    w.end_object();
    w.key("errors").begin_array();
    w.begin_object();
    w.key("method").string("GET");
    w.key("message").bytes_as_string(b"bad\xff");
    w.end_object();
    w.end_array();
    w.end_object();
    let want = r#"{
  "latenciesByURL": {
    "LIST https://h/p?a=1\u0026b=2": [
      1e-7,
      0.25
    ]
  },
  "errors": [
    {
      "method": "GET",
      "message": "bad\ufffd"
    }
  ]
}
"#;
    assert_eq!(w.finish(), want);
}

#[test]
fn writer_output_is_json_that_parses_back() {
    let mut w = GoJsonWriter::new();
    w.begin_array();
    w.string("a\u{0}<").int(-5).float(1e21).float(5e-324);
    w.end_array();
    let text = w.finish();
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(v[0], "a\u{0}<");
    assert_eq!(v[1], -5);
    assert_eq!(v[2].as_f64(), Some(1e21));
    assert_eq!(v[3].as_f64(), Some(5e-324));
}
