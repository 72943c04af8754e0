//! Transport errors, with HTTP/2 failures named by their RFC 9113 error codes as Go's client names them.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;

/// A failure to connect, to complete the TLS handshake, or to exchange data with the server.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The TCP connection could not be established.
    #[error("dial tcp {addr}: {source}")]
    Connect {
        /// The address that was dialled.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed; `message` is a sentence that says what to fix.
    #[error("TLS handshake with {server_name} failed: {message}")]
    Tls {
        /// The name the server's certificate was checked against.
        server_name: String,
        /// What went wrong, in words a user can act on.
        message: String,
    },
    /// Reading or writing the connection failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The HTTP/2 layer failed (GOAWAY, stream reset, protocol error, lost connection).
    #[error("{0}")]
    Http2(#[from] Http2Error),
}

impl TransportError {
    /// The operating-system error behind this failure, if there is one (for `connection refused`,
    /// `connection reset by peer`, `EOF` classification).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            TransportError::Connect { source, .. } => Some(source),
            TransportError::Io(e) => Some(e),
            TransportError::Http2(Http2Error::Io(e)) => Some(e),
            _ => None,
        }
    }

    /// The message of kperf's `http2-protocol` error class, when this is an HTTP/2 error of that class.
    pub fn http2_protocol_message(&self) -> Option<String> {
        match self {
            TransportError::Http2(e) => e.http2_protocol_message(),
            _ => None,
        }
    }

    /// Whether the server refused the request without processing it (see
    /// [`Http2Error::is_refused`]): it may be sent again on another connection.
    pub fn is_refused(&self) -> bool {
        matches!(self, TransportError::Http2(e) if e.is_refused())
    }
}

/// An HTTP/2 failure. Codes are RFC 9113 error codes (`u32`, so unknown codes survive).
#[derive(Debug, thiserror::Error)]
pub enum Http2Error {
    /// The server sent GOAWAY with an error code (or after its last stream): the connection is over.
    #[error("http2: server sent GOAWAY and closed the connection; ErrCode={}, debug={debug}", error_code_name(*.code))]
    GoAway {
        /// The GOAWAY error code.
        code: u32,
        /// The GOAWAY debug data, non-printable bytes escaped.
        debug: String,
    },
    /// The stream was reset (RST_STREAM) by the server or by the client library.
    #[error("stream error: {}", error_code_name(*.code))]
    StreamReset {
        /// The RST_STREAM error code.
        code: u32,
    },
    /// The client library detected a connection error and closed the connection with this code.
    #[error("connection error: {}", error_code_name(*.code))]
    Connection {
        /// The error code the connection was closed with.
        code: u32,
    },
    /// The connection ended without an HTTP/2 error while the request needed it.
    #[error("http2: client connection lost")]
    ConnectionLost,
    /// Reading or writing the underlying stream failed.
    #[error("{0}")]
    Io(io::Error),
    /// The request could not be expressed in HTTP/2 (bad path, header or method).
    #[error("invalid HTTP/2 request: {0}")]
    InvalidRequest(String),
}

impl Http2Error {
    /// The message of kperf's `http2-protocol` error class (docs/kperf-compatibility.md
    /// §10), or `None` when the error belongs to another class (I/O errors are `connection`
    /// errors).
    pub fn http2_protocol_message(&self) -> Option<String> {
        match self {
            Http2Error::GoAway { .. } | Http2Error::ConnectionLost => Some(self.to_string()),
            Http2Error::StreamReset { code } | Http2Error::Connection { code } => {
                Some(error_code_name(*code).into_owned())
            }
            Http2Error::Io(_) | Http2Error::InvalidRequest(_) => None,
        }
    }

    /// Whether the server did not process the request, so it may be sent again on another
    /// connection, as Go's client does transparently: a graceful GOAWAY (`NO_ERROR`, which
    /// only fails streams the server will not process) or a stream reset with `REFUSED_STREAM`
    /// (RFC 9113 §8.7).
    pub fn is_refused(&self) -> bool {
        matches!(
            self,
            Http2Error::GoAway { code: 0x0, .. } | Http2Error::StreamReset { code: 0x7 }
        )
    }

    /// Maps an `h2` error to the kind the report classifies.
    pub(crate) fn from_h2(err: h2::Error) -> Http2Error {
        let code = err.reason().map(u32::from);
        if err.is_io() {
            return match err.into_io() {
                Some(io) => Http2Error::Io(io),
                None => Http2Error::ConnectionLost,
            };
        }
        match code {
            Some(code) if err.is_go_away() && err.is_remote() => Http2Error::GoAway {
                code,
                debug: goaway_debug_data(&err.to_string()),
            },
            Some(code) if err.is_reset() => Http2Error::StreamReset { code },
            Some(code) => Http2Error::Connection { code },
            None => Http2Error::InvalidRequest(err.to_string()),
        }
    }
}

/// The GOAWAY debug data, which `h2` only exposes inside its Display text as ` (b"…")`.
fn goaway_debug_data(display: &str) -> String {
    match (display.find(" (b\""), display.rfind("\")")) {
        (Some(start), Some(end)) if end >= start + 4 => display[start + 4..end].to_string(),
        _ => String::new(),
    }
}

/// The name Go gives an HTTP/2 error code (`PROTOCOL_ERROR`, …; unknown: `unknown error code 0x<hex>`).
pub fn error_code_name(code: u32) -> Cow<'static, str> {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        other => return Cow::Owned(format!("unknown error code 0x{other:x}")),
    };
    Cow::Borrowed(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_names_follow_go() {
        assert_eq!(error_code_name(1), "PROTOCOL_ERROR");
        assert_eq!(error_code_name(0xd), "HTTP_1_1_REQUIRED");
        assert_eq!(error_code_name(0x1f), "unknown error code 0x1f");
    }

    #[test]
    fn goaway_debug_data_is_taken_from_h2_display() {
        assert_eq!(
            goaway_debug_data("connection error received: not a result of an error (b\"bye\")"),
            "bye"
        );
        assert_eq!(goaway_debug_data("connection error received: x"), "");
    }
}
