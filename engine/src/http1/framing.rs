//! What a response's headers say about its framing: body length, chunked coding, and
//! whether the connection stays open. Shared by the one-pass head scan and httparse's path,
//! so both read the same headers the same way.

use super::parser::{BodyFraming, ResponseError, ResponseHead};

/// The framing headers seen so far in one response head.
#[derive(Debug, Clone, Copy)]
pub(super) struct FramingHeaders {
    keep_alive: bool,
    chunked: bool,
    length: Option<u64>,
    retry_after: Option<u32>,
}

impl FramingHeaders {
    /// Before any header: HTTP/1.1 connections stay open unless told otherwise, HTTP/1.0 ones
    /// close.
    pub(super) fn new(http10: bool) -> FramingHeaders {
        FramingHeaders {
            keep_alive: !http10,
            chunked: false,
            length: None,
            retry_after: None,
        }
    }

    /// Takes one header (`value` without surrounding blanks); other headers are ignored.
    pub(super) fn header(&mut self, name: &[u8], value: &[u8]) -> Result<(), ResponseError> {
        self.take(FramingRole::of(name), value)
    }

    /// Takes one header whose name's role is `role` (`value` without surrounding blanks).
    pub(super) fn take(&mut self, role: FramingRole, value: &[u8]) -> Result<(), ResponseError> {
        match role {
            FramingRole::ContentLength => {
                let n = parse_content_length(value)?;
                if self.length.is_some_and(|prev| prev != n) {
                    return Err(ResponseError::Malformed(
                        "conflicting Content-Length headers",
                    ));
                }
                self.length = Some(n);
            }
            FramingRole::Connection => {
                if value == b"keep-alive" || value.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                } else if has_token(value, b"close") {
                    self.keep_alive = false;
                } else if has_token(value, b"keep-alive") {
                    self.keep_alive = true;
                }
            }
            FramingRole::TransferEncoding => self.chunked = has_token(value, b"chunked"),
            FramingRole::RetryAfter => self.retry_after = parse_retry_after(value),
            FramingRole::None => {}
        }
        Ok(())
    }

    /// The head of a response with status `status` and the headers taken.
    pub(super) fn finish(self, status: u16) -> ResponseHead {
        let mut keep_alive = self.keep_alive;
        let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
            BodyFraming::Length(0)
        } else if self.chunked {
            BodyFraming::Chunked
        } else if let Some(n) = self.length {
            BodyFraming::Length(n)
        } else {
            keep_alive = false;
            BodyFraming::UntilClose
        };
        ResponseHead {
            status,
            framing,
            keep_alive,
            retry_after: self.retry_after,
        }
    }
}

/// What a header says about framing, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FramingRole {
    ContentLength,
    Connection,
    TransferEncoding,
    /// Not framing, but read in the same pass: `Retry-After` (`--retries client-go`).
    RetryAfter,
    /// Nothing: any other header.
    None,
}

impl FramingRole {
    /// The role of the header named `name` (any case; a valid token).
    pub(super) fn of(name: &[u8]) -> FramingRole {
        if name_is(name, b"content-length") {
            FramingRole::ContentLength
        } else if name_is(name, b"connection") {
            FramingRole::Connection
        } else if name_is(name, b"transfer-encoding") {
            FramingRole::TransferEncoding
        } else if name_is(name, b"retry-after") {
            FramingRole::RetryAfter
        } else {
            FramingRole::None
        }
    }
}

/// Seconds of a `Retry-After` value when it is an integer, as client-go reads it (an HTTP
/// date is ignored, as there).
pub fn parse_retry_after(value: &[u8]) -> Option<u32> {
    if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Whether the header name `name` is `lower` (lowercase letters and `-`) in any case.
///
/// Names hold only token characters. For those, `c | 0x20` equals a lowercase letter
/// exactly when `c` is that letter in either case, and equals `-` only for `-` (the other
/// byte, CR, is no token character): one OR and compare per byte instead of folding both
/// sides' case, on every header of every response.
fn name_is<const N: usize>(name: &[u8], lower: &[u8; N]) -> bool {
    let Ok(name) = <&[u8; N]>::try_from(name) else {
        return false;
    };
    let mut diff = 0;
    for i in 0..N {
        diff |= (name[i] | 0x20) ^ lower[i];
    }
    diff == 0
}

/// A Content-Length value: decimal digits, optionally surrounded by blanks.
fn parse_content_length(value: &[u8]) -> Result<u64, ResponseError> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ResponseError::Malformed("invalid Content-Length"));
    }
    Ok(digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Whether a comma-separated header value contains `token` (ASCII case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_headers_match_in_any_case_and_only_by_name() {
        assert!(name_is(b"Content-Length", b"content-length"));
        assert!(name_is(b"CONTENT-LENGTH", b"content-length"));
        assert!(name_is(b"cOnNeCtIoN", b"connection"));
        // Same length, one byte off (`_` | 0x20 is DEL, not `-`).
        assert!(!name_is(b"content_length", b"content-length"));
        assert!(!name_is(b"content-lengtx", b"content-length"));
        assert!(!name_is(b"connectio", b"connection"));
        assert!(!name_is(b"connections", b"connection"));
    }

    #[test]
    fn connection_tokens_decide_keep_alive() {
        let keep_alive = |http10: bool, value: &[u8]| {
            let mut f = FramingHeaders::new(http10);
            f.header(b"Content-Length", b"0").unwrap();
            f.header(b"Connection", value).unwrap();
            f.finish(200).keep_alive
        };
        assert!(keep_alive(false, b"upgrade"));
        assert!(!keep_alive(false, b"Upgrade, CLOSE"));
        assert!(keep_alive(true, b"Keep-Alive"));
        assert!(keep_alive(true, b"x, keep-alive"));
        assert!(!keep_alive(true, b"x"));
    }
}
