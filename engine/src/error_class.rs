//! kperf's failure classification (docs/kperf-compatibility.md §10): each failed request becomes a
//! `(type, code, message)` triple, and `errorStats` counts them under a key derived from it.
//!
//! The engine maps what its transports report into a [`FailureKind`]; [`classify`] then
//! applies kperf's rules, first match wins: `http` (a Kubernetes Status, or the status
//! client-go derives from the HTTP status), `http2-protocol`, `connection`, `unknown`.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// What went wrong with one request, as the engine observed it. Texts handed in here end up
/// in reports: they must never contain credentials.
///
/// Mapping from the engine's transports:
/// - a final response with a status outside 200..=299 ([`is_kperf_failure_status`]) →
///   [`FailureKind::HttpStatus`] with the (possibly partial) body read;
/// - `h2`: a GOAWAY received from the server → [`FailureKind::Http2GoAway`]; a locally
///   detected connection error (`h2::Error` with a reason, not remote, not a reset) →
///   [`FailureKind::Http2Connection`]; a RST_STREAM → [`FailureKind::Http2StreamReset`];
///   the connection closing under an open stream without GOAWAY →
///   [`FailureKind::Http2ConnectionLost`];
/// - `std::io::ErrorKind::ConnectionRefused` / `ConnectionReset` → the variants of the same
///   name; a body cut short (Content-Length or chunked framing unfinished) →
///   [`FailureKind::UnexpectedEof`]; a connection closed before any response byte →
///   [`FailureKind::Eof`]; a deadline that expired in the engine → [`FailureKind::Timeout`]
///   with the phase it expired in;
/// - anything else → [`FailureKind::Other`] with a one-line description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind<'a> {
    /// A final HTTP response that counts as a failure, with the body bytes received.
    HttpStatus {
        /// HTTP status code.
        status: u16,
        /// Response body (may be partial, may be protobuf or text).
        body: &'a [u8],
    },
    /// The server sent GOAWAY and the connection closed before the request completed.
    Http2GoAway {
        /// GOAWAY error code.
        code: u32,
        /// GOAWAY debug data, as sent.
        debug: &'a [u8],
    },
    /// An HTTP/2 connection error (protocol violation, flow control, ...) with its code.
    Http2Connection {
        /// HTTP/2 error code.
        code: u32,
    },
    /// The server reset the request's stream (RST_STREAM) with this code.
    Http2StreamReset {
        /// HTTP/2 error code.
        code: u32,
    },
    /// The HTTP/2 connection was lost without GOAWAY (Go: `http2: client connection lost`).
    Http2ConnectionLost,
    /// A network timeout; kperf keys it by Go's full error text, which names the request.
    Timeout {
        /// HTTP method sent (`GET`, `POST`, ...).
        method: &'a str,
        /// The request URL as Go would print it (base, path, sorted query with `timeout=1m0s`).
        url: &'a str,
        /// Where the deadline expired.
        phase: TimeoutPhase,
    },
    /// The server refused the TCP connection (ECONNREFUSED).
    ConnectionRefused,
    /// The peer reset the connection (ECONNRESET).
    ConnectionReset,
    /// The connection closed in the middle of a response.
    UnexpectedEof,
    /// The connection closed before a response started.
    Eof,
    /// Anything else; `text` becomes the message.
    Other {
        /// One-line description of the error (no credentials).
        text: &'a str,
    },
}

impl FailureKind<'static> {
    /// The kind for an I/O error whose meaning does not depend on context: connection
    /// refused, connection reset, unexpected EOF. `None` for anything else (timeouts need
    /// their phase, other errors their text).
    pub fn from_io_error(err: &std::io::Error) -> Option<FailureKind<'static>> {
        match err.kind() {
            std::io::ErrorKind::ConnectionRefused => Some(FailureKind::ConnectionRefused),
            std::io::ErrorKind::ConnectionReset => Some(FailureKind::ConnectionReset),
            std::io::ErrorKind::UnexpectedEof => Some(FailureKind::UnexpectedEof),
            _ => None,
        }
    }
}

/// Where a [`FailureKind::Timeout`] happened, which decides Go's error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// TCP connect: `dial tcp <remote>: i/o timeout`.
    Dial {
        /// Address being connected to.
        remote: SocketAddr,
    },
    /// TLS handshake: `net/http: TLS handshake timeout`.
    TlsHandshake,
    /// Reading from an established connection: `read tcp <local>-><remote>: i/o timeout`.
    Read {
        /// Local address of the connection.
        local: SocketAddr,
        /// Remote address of the connection.
        remote: SocketAddr,
    },
    /// Writing to an established connection: `write tcp <local>-><remote>: i/o timeout`.
    Write {
        /// Local address of the connection.
        local: SocketAddr,
        /// Remote address of the connection.
        remote: SocketAddr,
    },
    /// A whole-request deadline before the response headers:
    /// `context deadline exceeded (Client.Timeout exceeded while awaiting headers)`.
    AwaitingHeaders,
}

/// One failure classified as kperf does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorClass {
    /// `http`, `http2-protocol`, `connection` or `unknown`.
    pub kind: &'static str,
    /// HTTP-derived code for `http`, else 0.
    pub code: i32,
    /// Empty for `http`, else the message kperf keys on.
    pub message: String,
}

/// `type` value for failures carrying a Kubernetes status code.
pub const KIND_HTTP: &str = "http";
/// `type` value for HTTP/2 protocol failures.
pub const KIND_HTTP2: &str = "http2-protocol";
/// `type` value for network failures.
pub const KIND_CONNECTION: &str = "connection";
/// `type` value for everything else.
pub const KIND_UNKNOWN: &str = "unknown";

/// Whether kperf (client-go) treats a final response status as a failure: anything
/// outside 200..=299.
pub fn is_kperf_failure_status(status: u16) -> bool {
    !(200..=299).contains(&status)
}

/// Classifies one failure (docs/kperf-compatibility.md §10).
pub fn classify(failure: &FailureKind<'_>) -> ErrorClass {
    let class = |kind: &'static str, message: String| ErrorClass {
        kind,
        code: 0,
        message,
    };
    match *failure {
        FailureKind::HttpStatus { status, body } => {
            let decoded = decode_status(status, body);
            if decoded.code != 0 {
                ErrorClass {
                    kind: KIND_HTTP,
                    code: decoded.code,
                    message: String::new(),
                }
            } else {
                // A Status whose code resolves to 0 is not an http failure for kperf; it
                // falls through to "unknown" with the Status error text (its message).
                class(KIND_UNKNOWN, decoded.message)
            }
        }
        FailureKind::Http2GoAway { code, debug } => {
            let mut m =
                String::from("http2: server sent GOAWAY and closed the connection; ErrCode=");
            m.push_str(&http2_error_code_name(code));
            m.push_str(", debug=");
            push_lossy_per_byte(&mut m, debug);
            class(KIND_HTTP2, m)
        }
        FailureKind::Http2Connection { code } | FailureKind::Http2StreamReset { code } => {
            class(KIND_HTTP2, http2_error_code_name(code))
        }
        FailureKind::Http2ConnectionLost => {
            class(KIND_HTTP2, "http2: client connection lost".to_owned())
        }
        FailureKind::Timeout { method, url, phase } => {
            class(KIND_CONNECTION, go_timeout_text(method, url, phase))
        }
        FailureKind::ConnectionRefused => class(KIND_CONNECTION, "connection refused".to_owned()),
        FailureKind::ConnectionReset => {
            class(KIND_CONNECTION, "connection reset by peer".to_owned())
        }
        FailureKind::UnexpectedEof => class(KIND_CONNECTION, "unexpected EOF".to_owned()),
        FailureKind::Eof => class(KIND_CONNECTION, "EOF".to_owned()),
        FailureKind::Other { text } => {
            // kperf tests the HTTP/2 text before the network one.
            if text.contains(CLIENT_CONNECTION_LOST) {
                class(KIND_HTTP2, CLIENT_CONNECTION_LOST.to_owned())
            } else if text.contains(TLS_HANDSHAKE_TIMEOUT) {
                class(KIND_CONNECTION, TLS_HANDSHAKE_TIMEOUT.to_owned())
            } else {
                class(KIND_UNKNOWN, text.to_owned())
            }
        }
    }
}

const TLS_HANDSHAKE_TIMEOUT: &str = "net/http: TLS handshake timeout";
const CLIENT_CONNECTION_LOST: &str = "http2: client connection lost";

/// The `errorStats` key: `http/<code>` for `http`, else `<type>/<message>`.
pub fn stats_key(class: &ErrorClass) -> String {
    if class.kind == KIND_HTTP {
        format!("{KIND_HTTP}/{}", class.code)
    } else {
        format!("{}/{}", class.kind, class.message)
    }
}

/// The code kperf records for a failed response: when the body is a JSON Kubernetes
/// Status with `status: "Failure"`, the canonical code of its `reason` if kperf knows the
/// reason, else its `code` field; otherwise (protobuf, text, empty or other JSON) the code
/// client-go derives from the HTTP status, which is the status itself except that 5xx
/// other than 503 and 504 become 500 (client-go calls them InternalError).
pub fn status_code_from_body(http_status: u16, body: &[u8]) -> i32 {
    decode_status(http_status, body).code
}

struct DecodedStatus {
    code: i32,
    /// What Go's `StatusError.Error()` prints: the Status message.
    message: String,
}

fn decode_status(http_status: u16, body: &[u8]) -> DecodedStatus {
    if let Some(status) = parse_failure_status(body) {
        let code = reason_code(&status.reason).unwrap_or(status.code);
        return DecodedStatus {
            code,
            message: status.message,
        };
    }
    let code = i32::from(http_status);
    let code = match code {
        503 | 504 => code,
        c if c >= 500 => 500,
        c => c,
    };
    DecodedStatus {
        code,
        message: format!(
            "the server responded with the status code {http_status} but did not return more information"
        ),
    }
}

struct FailureStatus {
    reason: String,
    code: i32,
    message: String,
}

/// A JSON `{"kind":"Status","status":"Failure",...}`; any field of the wrong type makes the
/// whole body "not a Status", as a failed decode does in client-go.
fn parse_failure_status(body: &[u8]) -> Option<FailureStatus> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = value.as_object()?;
    let text = |key: &str| -> Option<String> {
        match obj.get(key) {
            None | Some(serde_json::Value::Null) => Some(String::new()),
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => None,
        }
    };
    if text("kind")? != "Status" || text("status")? != "Failure" {
        return None;
    }
    let code = match obj.get("code") {
        None | Some(serde_json::Value::Null) => 0,
        Some(v) => i32::try_from(v.as_i64()?).ok()?,
    };
    Some(FailureStatus {
        reason: text("reason")?,
        code,
        message: text("message")?,
    })
}

/// kperf's reason → code table (the `apierrors.IsXxx` checks it runs, in order).
fn reason_code(reason: &str) -> Option<i32> {
    Some(match reason {
        "BadRequest" => 400,
        "Unauthorized" => 401,
        "Forbidden" => 403,
        "NotFound" => 404,
        "MethodNotAllowed" => 405,
        "NotAcceptable" => 406,
        "AlreadyExists" => 409,
        "Gone" => 410,
        "RequestEntityTooLarge" => 413,
        "UnsupportedMediaType" => 415,
        "Invalid" => 422,
        "TooManyRequests" => 429,
        "InternalError" => 500,
        "ServiceUnavailable" => 503,
        "Timeout" => 504,
        _ => return None,
    })
}

/// Go's `http2.ErrCode.String()`: `NO_ERROR` … `HTTP_1_1_REQUIRED`, else
/// `unknown error code 0x<hex>` (lower-case hex).
pub fn http2_error_code_name(code: u32) -> String {
    // One table for the whole engine: the transport names the codes it reports.
    crate::transport::error_code_name(code).into_owned()
}

/// Go's `*url.Error` text for a timeout: `<Op> "<url>": <cause>`, where Op is the method
/// with only its first letter upper case (`Get`, `Post`, `Patch`, `Delete`).
fn go_timeout_text(method: &str, url: &str, phase: TimeoutPhase) -> String {
    let mut out = String::with_capacity(url.len() + 64);
    let mut chars = method.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(&chars.as_str().to_lowercase());
    }
    out.push(' ');
    write_go_quoted(&mut out, url);
    out.push_str(": ");
    let _ = match phase {
        TimeoutPhase::Dial { remote } => write!(out, "dial tcp {remote}: i/o timeout"),
        TimeoutPhase::TlsHandshake => write!(out, "{TLS_HANDSHAKE_TIMEOUT}"),
        TimeoutPhase::Read { local, remote } => {
            write!(out, "read tcp {local}->{remote}: i/o timeout")
        }
        TimeoutPhase::Write { local, remote } => {
            write!(out, "write tcp {local}->{remote}: i/o timeout")
        }
        TimeoutPhase::AwaitingHeaders => write!(
            out,
            "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        ),
    };
    out
}

/// Appends `bytes` with each byte that does not start a valid UTF-8 sequence replaced by
/// U+FFFD, which is what Go's JSON encoder makes of such bytes.
fn push_lossy_per_byte(out: &mut String, bytes: &[u8]) {
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return;
            }
            Err(e) => {
                let (valid, tail) = rest.split_at(e.valid_up_to());
                if let Ok(valid) = std::str::from_utf8(valid) {
                    out.push_str(valid);
                }
                out.push('\u{fffd}');
                rest = &tail[1..];
            }
        }
    }
}

/// Go's `strconv.Quote` for the text a URL can hold: `"` and `\` escaped, C0 controls and
/// DEL as `\a \b \f \n \r \t \v` or `\xNN`, everything else (printable) as is.
fn write_go_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
