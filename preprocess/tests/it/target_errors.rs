//! apiPaths that Go's `url.Parse` rejects: a clear `TargetError`, never a panic; and
//! what Go tolerates must not be rejected.

use preprocess::profile::{ProfileRequest, Verb};
use preprocess::request_target::{normalize, PathMode, TargetError, TargetPart};

fn try_normalize(api_path: &str) -> Result<String, TargetError> {
    let req = ProfileRequest {
        timestamp_ms: 0,
        verb: Verb::Get,
        namespace: String::new(),
        resource_kind: "Pod".into(),
        name: "x".into(),
        api_path: api_path.into(),
        body: String::new(),
        label_selector: String::new(),
    };
    normalize(&req, PathMode::Recorded).map(|n| n.request_path)
}

fn invalid_escape(api_path: &str) -> (TargetPart, String, usize) {
    match try_normalize(api_path) {
        Err(TargetError::InvalidEscape {
            api_path: reported,
            part,
            escape,
            offset,
        }) => {
            assert_eq!(reported, api_path);
            (part, escape, offset)
        }
        other => panic!("{api_path:?}: expected InvalidEscape, got {other:?}"),
    }
}

#[test]
fn bad_escapes_in_the_path_are_errors() {
    assert_eq!(
        invalid_escape("/api/v1/namespaces/%zz/pods"),
        (TargetPart::Path, "%zz".into(), 19)
    );
    assert_eq!(
        invalid_escape("/api/v1/pods%4"),
        (TargetPart::Path, "%4".into(), 12)
    );
    assert_eq!(
        invalid_escape("/api/v1/pods%"),
        (TargetPart::Path, "%".into(), 12)
    );
    assert_eq!(
        invalid_escape("/api/%%41"),
        (TargetPart::Path, "%%4".into(), 5)
    );
    // Offsets count in the apiPath as written, before kperf prefixes '/'.
    assert_eq!(
        invalid_escape("pods/%g1"),
        (TargetPart::Path, "%g1".into(), 5)
    );
    // A non-ASCII byte after '%' is reported as the whole character.
    assert_eq!(invalid_escape("/p%é"), (TargetPart::Path, "%é".into(), 2));
}

#[test]
fn bad_escapes_in_the_fragment_are_errors() {
    assert_eq!(
        invalid_escape("/api/v1/pods?limit=1#%x"),
        (TargetPart::Fragment, "%x".into(), 21)
    );
}

#[test]
fn bad_escapes_in_the_query_are_not_errors() {
    // Go drops such pairs instead (see target_query.rs).
    assert_eq!(
        try_normalize("/api/v1/pods?a=%zz&b=1"),
        Ok("/api/v1/pods?b=1".to_owned())
    );
}

#[test]
fn control_bytes_before_the_fragment_are_errors() {
    for (api_path, byte, offset) in [
        ("/api/v1/pods\n", 0x0a, 12),
        ("/api/v1/\tpods", 0x09, 8),
        ("/api/v1/pods?limit=1\u{7f}", 0x7f, 20),
        ("\u{0}/api", 0x00, 0),
        ("api\r", 0x0d, 3),
    ] {
        match try_normalize(api_path) {
            Err(TargetError::ControlCharacter {
                api_path: reported,
                byte: b,
                offset: o,
            }) => {
                assert_eq!(reported, api_path);
                assert_eq!((b, o), (byte, offset), "{api_path:?}");
            }
            other => panic!("{api_path:?}: expected ControlCharacter, got {other:?}"),
        }
    }
    // Go checks only the part before '#' for control bytes.
    assert_eq!(try_normalize("/p#a\nb"), Ok("/p#a%0Ab".to_owned()));
}

#[test]
fn messages_name_the_field_the_text_and_the_rule() {
    let Err(e) = try_normalize("/api/v1/namespaces/%zz/pods") else {
        panic!("expected an error");
    };
    let msg = e.to_string();
    for part in [
        "apiPath",
        "\"/api/v1/namespaces/%zz/pods\"",
        "\"%zz\"",
        "byte 19",
        "path",
        "two hex digits",
        "%25",
    ] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
    let Err(e) = try_normalize("/api/v1/pods\n") else {
        panic!("expected an error");
    };
    let msg = e.to_string();
    for part in ["apiPath", "\"/api/v1/pods\\n\"", "0x0A", "byte 12", "%XX"] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
}

#[test]
fn what_go_tolerates_is_accepted() {
    for api_path in [
        "/api/v1/pods with spaces",
        "/api/v1/\"quoted\"/<x>/{y}|^`\\",
        "/api/v1/日本",
        "//double/leading",
        "/%41%2f%2F",
        "/p?q=%",
        "/p?%",
    ] {
        assert!(
            try_normalize(api_path).is_ok(),
            "{api_path:?} should be accepted"
        );
    }
}
