//! What can go wrong with one request, and its kperf classification (cold path).

use std::io;

use super::conn::ConnectError;
use crate::error_class::{classify, ErrorClass, FailureKind, TimeoutPhase};
use crate::http1::ResponseError;
use crate::transport::{Http2Error, TransportError};

/// Why a request failed, as the worker saw it.
#[derive(Debug)]
pub enum Failure {
    /// A final response outside 200..=299 (its body is in the worker's error buffer).
    Status(u16),
    /// Connecting failed.
    Connect(io::Error),
    /// TLS, HTTP/2 handshake or an HTTP/2 exchange failed.
    Transport(TransportError),
    /// Writing the request or reading the response failed.
    Response(ResponseError),
    /// `--timeout` expired before the response was read.
    Timeout,
    /// The run was interrupted and `--grace` expired before the response was read.
    Interrupted,
    /// The record could not be decoded (corrupt timeline).
    Corrupt(String),
}

impl From<ResponseError> for Failure {
    fn from(e: ResponseError) -> Failure {
        Failure::Response(e)
    }
}

impl From<ConnectError> for Failure {
    fn from(e: ConnectError) -> Failure {
        match e {
            ConnectError::Io(e) => Failure::Connect(e),
            ConnectError::Transport(e) => Failure::Transport(e),
        }
    }
}

impl Failure {
    /// Whether a request that failed this way on a reused connection, before any byte of
    /// its response, goes once more on a fresh connection, as Go's transport decides: the
    /// server closed or reset the connection, and either nothing of the request was written
    /// or the request is a GET (GET, LIST): a write to a connection the server had already
    /// closed was never processed, and a GET can be sent twice anyway.
    pub fn retries_on_fresh_connection(
        &self,
        verb: preprocess::profile::Verb,
        written: bool,
    ) -> bool {
        use preprocess::profile::Verb;
        let closed = match self {
            Failure::Response(ResponseError::Eof) => true,
            Failure::Response(ResponseError::Io(e)) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        };
        closed && (!written || matches!(verb, Verb::Get | Verb::List | Verb::Watch))
    }

    /// Whether the connection must be replaced after this failure.
    pub fn breaks_connection(&self) -> bool {
        !matches!(self, Failure::Status(_) | Failure::Corrupt(_))
    }

    /// kperf's classification. `body` is the kept start of a failed response's body;
    /// `method`/`url` name the request for Go-style timeout texts.
    pub fn classify(&self, body: &[u8], method: &str, url: &str) -> ErrorClass {
        let mut text = String::new();
        let kind = match self {
            Failure::Status(status) => FailureKind::HttpStatus {
                status: *status,
                body,
            },
            Failure::Connect(e) | Failure::Response(ResponseError::Io(e)) => {
                io_failure(e, &mut text)
            }
            Failure::Transport(TransportError::Http2(h2)) => match h2 {
                Http2Error::GoAway { code, debug } => FailureKind::Http2GoAway {
                    code: *code,
                    debug: debug.as_bytes(),
                },
                Http2Error::StreamReset { code } => FailureKind::Http2StreamReset { code: *code },
                Http2Error::Connection { code } => FailureKind::Http2Connection { code: *code },
                Http2Error::ConnectionLost => FailureKind::Http2ConnectionLost,
                Http2Error::Io(e) => io_failure(e, &mut text),
                other => {
                    text = other.to_string();
                    FailureKind::Other { text: &text }
                }
            },
            Failure::Transport(other) => {
                text = other.to_string();
                FailureKind::Other { text: &text }
            }
            Failure::Response(ResponseError::Eof) => FailureKind::Eof,
            Failure::Response(ResponseError::UnexpectedEof) => FailureKind::UnexpectedEof,
            Failure::Response(e @ ResponseError::Malformed(_)) => {
                text = e.to_string();
                FailureKind::Other { text: &text }
            }
            Failure::Timeout => FailureKind::Timeout {
                method,
                url,
                phase: TimeoutPhase::AwaitingHeaders,
            },
            Failure::Interrupted => FailureKind::Other {
                text: "interrupted: no response before the grace period ended",
            },
            Failure::Corrupt(message) => FailureKind::Other { text: message },
        };
        classify(&kind)
    }
}

/// kperf's class of an I/O error: its own for a refused, reset or cut connection, else its
/// text (kept in `text`).
fn io_failure<'t>(e: &io::Error, text: &'t mut String) -> FailureKind<'t> {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => FailureKind::ConnectionRefused,
        io::ErrorKind::ConnectionReset => FailureKind::ConnectionReset,
        io::ErrorKind::UnexpectedEof => FailureKind::UnexpectedEof,
        _ => {
            *text = e.to_string();
            let text: &'t String = text;
            FailureKind::Other { text }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_class::stats_key;

    fn key(f: Failure) -> String {
        stats_key(&f.classify(b"", "GET", "http://127.0.0.1:1/api"))
    }

    #[test]
    fn kperf_keys() {
        assert_eq!(key(Failure::Status(404)), "http/404");
        assert_eq!(
            key(Failure::Connect(io::ErrorKind::ConnectionRefused.into())),
            "connection/connection refused"
        );
        assert_eq!(key(Failure::Response(ResponseError::Eof)), "connection/EOF");
        assert_eq!(
            key(Failure::Response(ResponseError::UnexpectedEof)),
            "connection/unexpected EOF"
        );
        assert_eq!(
            key(Failure::Response(ResponseError::Io(
                io::ErrorKind::ConnectionReset.into()
            ))),
            "connection/connection reset by peer"
        );
        assert!(key(Failure::Timeout).starts_with("connection/"));
        assert!(
            key(Failure::Response(ResponseError::Malformed("x"))).starts_with("unknown/malformed")
        );
        assert!(key(Failure::Connect(io::Error::other("boom"))).contains("boom"));
    }
}
