//! kperf's failure classification and errorStats keys (docs/kperf-compatibility.md §10).

use std::net::SocketAddr;

use engine::error_class::{
    classify, http2_error_code_name, is_kperf_failure_status, stats_key, status_code_from_body,
    ErrorClass, FailureKind, TimeoutPhase,
};

fn key_of(f: FailureKind<'_>) -> (ErrorClass, String) {
    let c = classify(&f);
    let k = stats_key(&c);
    (c, k)
}

fn status_body(reason: &str, code: i32) -> Vec<u8> {
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"m","reason":"{reason}","code":{code}}}"#
    )
    .into_bytes()
}

#[test]
fn status_reasons_map_to_canonical_codes() {
    let table = [
        ("BadRequest", 400),
        ("Unauthorized", 401),
        ("Forbidden", 403),
        ("NotFound", 404),
        ("MethodNotAllowed", 405),
        ("NotAcceptable", 406),
        ("AlreadyExists", 409),
        ("Gone", 410),
        ("RequestEntityTooLarge", 413),
        ("UnsupportedMediaType", 415),
        ("Invalid", 422),
        ("TooManyRequests", 429),
        ("InternalError", 500),
        ("ServiceUnavailable", 503),
        ("Timeout", 504),
    ];
    for (reason, code) in table {
        // The Status code field says 599: the reason wins.
        assert_eq!(
            status_code_from_body(599, &status_body(reason, 599)),
            code,
            "{reason}"
        );
    }
}

#[test]
fn unknown_reason_uses_status_code_field() {
    assert_eq!(
        status_code_from_body(409, &status_body("Conflict", 409)),
        409
    );
    assert_eq!(
        status_code_from_body(410, &status_body("Expired", 410)),
        410
    );
    assert_eq!(status_code_from_body(500, &status_body("", 418)), 418);
    assert_eq!(
        status_code_from_body(504, &status_body("ServerTimeout", 500)),
        500
    );
}

#[test]
fn non_status_bodies_use_http_status_as_client_go_does() {
    assert_eq!(status_code_from_body(404, b"404 page not found\n"), 404);
    assert_eq!(status_code_from_body(429, b""), 429);
    assert_eq!(status_code_from_body(413, b"k8s\x00\x0a\x0d"), 413);
    // client-go names every other 5xx InternalError, which kperf counts as 500.
    assert_eq!(status_code_from_body(502, b"bad gateway"), 500);
    assert_eq!(status_code_from_body(501, b""), 500);
    assert_eq!(status_code_from_body(503, b""), 503);
    assert_eq!(status_code_from_body(504, b""), 504);
    // JSON that is not a failed Status: the HTTP status decides.
    assert_eq!(status_code_from_body(404, br#"{"kind":"Pod"}"#), 404);
    assert_eq!(
        status_code_from_body(404, br#"{"kind":"Status","status":"Success","code":200}"#),
        404
    );
    assert_eq!(
        status_code_from_body(404, br#"{"kind":"Status","status":"Failure","code":"x"}"#),
        404
    );
    assert_eq!(status_code_from_body(400, br#"{"kind":"Status","#), 400);
}

#[test]
fn http_failures() {
    let body = status_body("NotFound", 404);
    let (c, k) = key_of(FailureKind::HttpStatus {
        status: 404,
        body: &body,
    });
    assert_eq!(
        c,
        ErrorClass {
            kind: "http",
            code: 404,
            message: String::new()
        }
    );
    assert_eq!(k, "http/404");
    let (_, k) = key_of(FailureKind::HttpStatus {
        status: 429,
        body: b"",
    });
    assert_eq!(k, "http/429");
}

#[test]
fn status_with_code_zero_falls_through_to_unknown() {
    let body = br#"{"kind":"Status","status":"Failure","message":"odd <server>","reason":"Weird"}"#;
    let (c, k) = key_of(FailureKind::HttpStatus { status: 500, body });
    assert_eq!(c.kind, "unknown");
    assert_eq!(c.code, 0);
    assert_eq!(c.message, "odd <server>");
    assert_eq!(k, "unknown/odd <server>");
}

#[test]
fn http2_failures() {
    let (c, k) = key_of(FailureKind::Http2GoAway {
        code: 0,
        debug: b"",
    });
    assert_eq!(c.kind, "http2-protocol");
    assert_eq!(
        c.message,
        "http2: server sent GOAWAY and closed the connection; ErrCode=NO_ERROR, debug="
    );
    assert_eq!(
        k,
        "http2-protocol/http2: server sent GOAWAY and closed the connection; ErrCode=NO_ERROR, debug="
    );
    let (c, _) = key_of(FailureKind::Http2GoAway {
        code: 11,
        debug: b"too_many_pings",
    });
    assert_eq!(
        c.message,
        "http2: server sent GOAWAY and closed the connection; ErrCode=ENHANCE_YOUR_CALM, debug=too_many_pings"
    );
    let (c, _) = key_of(FailureKind::Http2GoAway {
        code: 2,
        debug: b"x\xffy",
    });
    assert!(c
        .message
        .ends_with("ErrCode=INTERNAL_ERROR, debug=x\u{fffd}y"));
    let (_, k) = key_of(FailureKind::Http2Connection { code: 1 });
    assert_eq!(k, "http2-protocol/PROTOCOL_ERROR");
    let (_, k) = key_of(FailureKind::Http2StreamReset { code: 10 });
    assert_eq!(k, "http2-protocol/CONNECT_ERROR");
    let (_, k) = key_of(FailureKind::Http2StreamReset { code: 0x1f });
    assert_eq!(k, "http2-protocol/unknown error code 0x1f");
    let (_, k) = key_of(FailureKind::Http2ConnectionLost);
    assert_eq!(k, "http2-protocol/http2: client connection lost");
}

#[test]
fn http2_code_names() {
    let names = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    for (code, name) in names.iter().enumerate() {
        assert_eq!(http2_error_code_name(code as u32), *name);
    }
    assert_eq!(http2_error_code_name(14), "unknown error code 0xe");
    assert_eq!(
        http2_error_code_name(0xdead_beef),
        "unknown error code 0xdeadbeef"
    );
}

#[test]
fn timeouts_carry_go_full_text() {
    let remote: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let local: SocketAddr = "127.0.0.1:54321".parse().expect("addr");
    let url = "https://127.0.0.1:1/api/v1/pods?timeout=1m0s";
    let (c, k) = key_of(FailureKind::Timeout {
        method: "GET",
        url,
        phase: TimeoutPhase::Dial { remote },
    });
    assert_eq!(c.kind, "connection");
    assert_eq!(
        c.message,
        r#"Get "https://127.0.0.1:1/api/v1/pods?timeout=1m0s": dial tcp 127.0.0.1:1: i/o timeout"#
    );
    assert_eq!(k, format!("connection/{}", c.message));
    let (c, _) = key_of(FailureKind::Timeout {
        method: "PATCH",
        url,
        phase: TimeoutPhase::Read { local, remote },
    });
    assert_eq!(
        c.message,
        format!(r#"Patch "{url}": read tcp 127.0.0.1:54321->127.0.0.1:1: i/o timeout"#)
    );
    let (c, _) = key_of(FailureKind::Timeout {
        method: "POST",
        url,
        phase: TimeoutPhase::Write { local, remote },
    });
    assert_eq!(
        c.message,
        format!(r#"Post "{url}": write tcp 127.0.0.1:54321->127.0.0.1:1: i/o timeout"#)
    );
    let (c, _) = key_of(FailureKind::Timeout {
        method: "DELETE",
        url,
        phase: TimeoutPhase::TlsHandshake,
    });
    assert_eq!(
        c.message,
        format!(r#"Delete "{url}": net/http: TLS handshake timeout"#)
    );
    let (c, _) = key_of(FailureKind::Timeout {
        method: "GET",
        url: "http://h/a\"b",
        phase: TimeoutPhase::AwaitingHeaders,
    });
    assert_eq!(
        c.message,
        r#"Get "http://h/a\"b": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"#
    );
    let v6: SocketAddr = "[::1]:6443".parse().expect("addr");
    let (c, _) = key_of(FailureKind::Timeout {
        method: "GET",
        url,
        phase: TimeoutPhase::Dial { remote: v6 },
    });
    assert!(c.message.ends_with(": dial tcp [::1]:6443: i/o timeout"));
}

#[test]
fn connection_failures() {
    for (f, want) in [
        (
            FailureKind::ConnectionRefused,
            "connection/connection refused",
        ),
        (
            FailureKind::ConnectionReset,
            "connection/connection reset by peer",
        ),
        (FailureKind::UnexpectedEof, "connection/unexpected EOF"),
        (FailureKind::Eof, "connection/EOF"),
    ] {
        let (c, k) = key_of(f);
        assert_eq!(c.code, 0);
        assert_eq!(k, want);
    }
}

#[test]
fn other_failures_by_text() {
    let (c, k) = key_of(FailureKind::Other {
        text: "oops: net/http: TLS handshake timeout",
    });
    assert_eq!(c.kind, "connection");
    assert_eq!(k, "connection/net/http: TLS handshake timeout");
    let (_, k) = key_of(FailureKind::Other {
        text: "read: http2: client connection lost",
    });
    assert_eq!(k, "http2-protocol/http2: client connection lost");
    let (c, k) = key_of(FailureKind::Other {
        text: "certificate not trusted",
    });
    assert_eq!(c.kind, "unknown");
    assert_eq!(c.message, "certificate not trusted");
    assert_eq!(k, "unknown/certificate not trusted");
}

#[test]
fn failure_statuses() {
    assert!(!is_kperf_failure_status(200));
    assert!(!is_kperf_failure_status(201));
    assert!(!is_kperf_failure_status(206));
    // kperf counts every 2xx as a success.
    assert!(!is_kperf_failure_status(207));
    assert!(!is_kperf_failure_status(299));
    assert!(is_kperf_failure_status(300));
    assert!(is_kperf_failure_status(199));
    assert!(is_kperf_failure_status(304));
    assert!(is_kperf_failure_status(404));
}

#[test]
fn io_errors_that_map_without_context() {
    use std::io::{Error, ErrorKind};
    let refused = Error::from(ErrorKind::ConnectionRefused);
    assert_eq!(
        FailureKind::from_io_error(&refused),
        Some(FailureKind::ConnectionRefused)
    );
    let reset = Error::from_raw_os_error(libc::ECONNRESET);
    assert_eq!(
        FailureKind::from_io_error(&reset),
        Some(FailureKind::ConnectionReset)
    );
    let eof = Error::new(ErrorKind::UnexpectedEof, "body cut");
    assert_eq!(
        FailureKind::from_io_error(&eof),
        Some(FailureKind::UnexpectedEof)
    );
    assert_eq!(
        FailureKind::from_io_error(&Error::from(ErrorKind::TimedOut)),
        None
    );
    assert_eq!(FailureKind::from_io_error(&Error::other("x")), None);
}
