//! A sans-IO HTTP/1.1 response parser over a reused receive buffer: the caller fills the
//! buffer (a socket read, or a receive completed by io_uring) and the parser consumes what
//! it can, so the same framing rules serve the async reader and the ring pool.
//!
//! Framing: `Transfer-Encoding: chunked`, `Content-Length`, or close-delimited;
//! 1xx interim responses are skipped; 204/304 have no body.

use std::io;

use super::framing::FramingHeaders;
use super::head_scan::scan_head;

/// Initial receive buffer; it grows only for larger response heads.
pub const READ_BUF: usize = 16 * 1024;
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers parsed per response.
pub(super) const MAX_HEADERS: usize = 64;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Why a response could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The connection closed before any byte of the response (Go: `EOF`).
    #[error("EOF")]
    Eof,
    /// The connection closed in the middle of the response (Go: `unexpected EOF`).
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// A socket error.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The bytes are not a valid HTTP/1.1 response.
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// The parsed head of a final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP status code.
    pub status: u16,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
    /// `Retry-After` in whole seconds, when the response has one.
    pub retry_after: Option<u32>,
}

/// A connection's receive buffer: bytes in `start..end` are received and not yet parsed.
#[derive(Debug)]
pub struct RecvBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for RecvBuffer {
    fn default() -> Self {
        RecvBuffer {
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
        }
    }
}

impl RecvBuffer {
    /// Forgets buffered bytes (after the connection is replaced).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Whether received bytes wait to be parsed.
    pub fn has_unparsed(&self) -> bool {
        self.start < self.end
    }

    /// The free space the next receive should fill: compacts, or grows up to 64 KiB when a
    /// single head or line fills the whole buffer. Never moves bytes while the caller holds
    /// the returned slice, so a receive in flight may write into it.
    pub fn spare(&mut self) -> io::Result<&mut [u8]> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_HEAD {
                self.buf.resize(self.buf.len() * 2, 0);
            } else {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
        }
        Ok(&mut self.buf[self.end..])
    }

    /// Records that a receive wrote `n` bytes into the slice `spare` returned.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    fn unparsed(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Hands up to `max` buffered bytes to `sink`; returns how many.
    fn take(&mut self, max: u64, sink: &mut impl FnMut(&[u8])) -> u64 {
        let n = (self.end - self.start).min(usize::try_from(max).unwrap_or(usize::MAX));
        if n > 0 {
            sink(&self.buf[self.start..self.start + n]);
            self.start += n;
        }
        n as u64
    }

    /// Takes one line (up to `\n`, which is consumed) if it is all buffered; returns its
    /// range in the buffer, without the `\n`.
    fn take_line(&mut self) -> Result<Option<(usize, usize)>, ResponseError> {
        match self.unparsed().iter().position(|&b| b == b'\n') {
            Some(pos) => {
                let line = (self.start, self.start + pos);
                self.start += pos + 1;
                Ok(Some(line))
            }
            None if self.end - self.start > MAX_LINE => {
                Err(ResponseError::Malformed("chunk line too long"))
            }
            None => Ok(None),
        }
    }

    /// Whether the line at `range` is empty (`""` or `"\r"`).
    fn is_empty_line(&self, (a, b): (usize, usize)) -> bool {
        b == a || (b == a + 1 && self.buf[a] == b'\r')
    }
}

/// Where the parser is within one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// This many body bytes left.
    Length(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Inside a chunk, this many bytes left.
    ChunkData(u64),
    /// Expecting the CRLF after a chunk's data.
    ChunkEnd,
    /// In the trailer section, until an empty line.
    Trailer,
    /// Until the server closes the connection.
    UntilClose,
}

/// Parses one response at a time out of a [`RecvBuffer`].
#[derive(Debug, Clone, Copy)]
pub struct ResponseParser {
    body: Body,
    total: u64,
}

impl Default for ResponseParser {
    fn default() -> Self {
        ResponseParser {
            body: Body::Length(0),
            total: 0,
        }
    }
}

impl ResponseParser {
    /// Parses the head of the final (non-1xx) response, if all of it is buffered, and
    /// prepares to read its body.
    pub fn parse_head(
        &mut self,
        input: &mut RecvBuffer,
    ) -> Result<Option<ResponseHead>, ResponseError> {
        loop {
            let parsed = match scan_head(input.unparsed()) {
                Some(found) => Some(found),
                None => parse_head_strictly(input.unparsed())?,
            };
            match parsed {
                Some((len, head)) => {
                    input.start += len;
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue;
                    }
                    self.begin_body(head.framing);
                    return Ok(Some(head));
                }
                None if input.end - input.start >= MAX_HEAD => {
                    return Err(ResponseError::Malformed("response head larger than 64 KiB"))
                }
                None => return Ok(None),
            }
        }
    }

    /// Prepares to read a body delimited by `framing`.
    pub fn begin_body(&mut self, framing: BodyFraming) {
        self.total = 0;
        self.body = match framing {
            BodyFraming::Length(n) => Body::Length(n),
            BodyFraming::Chunked => Body::ChunkSize,
            BodyFraming::UntilClose => Body::UntilClose,
        };
    }

    /// Hands the buffered body bytes to `sink`; returns the body's length once it is
    /// complete, `None` while more bytes are needed.
    pub fn parse_body(
        &mut self,
        input: &mut RecvBuffer,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<Option<u64>, ResponseError> {
        loop {
            match self.body {
                Body::Length(left) => {
                    let n = input.take(left, &mut sink);
                    self.total += n;
                    if n < left {
                        self.body = Body::Length(left - n);
                        return Ok(None);
                    }
                    self.body = Body::Length(0);
                    return Ok(Some(self.total));
                }
                Body::UntilClose => {
                    self.total += input.take(u64::MAX, &mut sink);
                    return Ok(None);
                }
                Body::ChunkData(left) => {
                    let n = input.take(left, &mut sink);
                    self.total += n;
                    if n < left {
                        self.body = Body::ChunkData(left - n);
                        return Ok(None);
                    }
                    self.body = Body::ChunkEnd;
                }
                Body::ChunkSize | Body::ChunkEnd | Body::Trailer => {
                    let Some(line) = input.take_line()? else {
                        return Ok(None);
                    };
                    let empty = input.is_empty_line(line);
                    self.body = match self.body {
                        Body::ChunkSize => match parse_chunk_size(&input.buf[line.0..line.1])? {
                            0 => Body::Trailer,
                            size => Body::ChunkData(size),
                        },
                        Body::ChunkEnd if empty => Body::ChunkSize,
                        Body::ChunkEnd => {
                            return Err(ResponseError::Malformed("missing CRLF after chunk data"))
                        }
                        _ if empty => {
                            self.body = Body::Length(0);
                            return Ok(Some(self.total));
                        }
                        other => other,
                    };
                }
            }
        }
    }

    /// The connection ended: the body's length if it ended with it (close-delimited), else
    /// the error the end means.
    pub fn end_of_stream(&self) -> Result<u64, ResponseError> {
        match self.body {
            Body::UntilClose => Ok(self.total),
            _ => Err(ResponseError::UnexpectedEof),
        }
    }
}

/// The head at the start of `bytes` by httparse, which decides every case the one-pass
/// scan leaves: its length and what it says, or `None` while it is incomplete.
pub fn parse_head_strictly(bytes: &[u8]) -> Result<Option<(usize, ResponseHead)>, ResponseError> {
    let mut headers = [std::mem::MaybeUninit::uninit(); MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        bytes,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(len)) => {
            let status = response
                .code
                .ok_or(ResponseError::Malformed("no status code"))?;
            let mut framing = FramingHeaders::new(response.version == Some(0));
            for h in response.headers.iter() {
                framing.header(h.name.as_bytes(), h.value)?;
            }
            Ok(Some((len, framing.finish(status))))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(ResponseError::Malformed("invalid response head")),
    }
}

/// Parses `1a3f[;ext]\r` into a size.
fn parse_chunk_size(line: &[u8]) -> Result<u64, ResponseError> {
    let mut size: u64 = 0;
    let mut digits = 0;
    for &b in line {
        let v = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            b';' | b'\r' | b' ' | b'\t' => break,
            _ => return Err(ResponseError::Malformed("invalid chunk size")),
        };
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(v)))
            .ok_or(ResponseError::Malformed("chunk size overflows"))?;
        digits += 1;
    }
    if digits == 0 {
        return Err(ResponseError::Malformed("empty chunk size"));
    }
    Ok(size)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// One response of each framing (after a 1xx), the last close-delimited.
    pub(in crate::http1) const EVERY_FRAMING: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n\
        HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
        HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n\
        3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: z\r\n\r\n\
        HTTP/1.1 204 No Content\r\n\r\n\
        HTTP/1.1 200 OK\r\n\r\nuntil close";

    /// (status, body, keep-alive) of each final response in `EVERY_FRAMING`.
    pub(in crate::http1) fn every_framing_parsed() -> Vec<(u16, Vec<u8>, bool)> {
        vec![
            (200, b"hello".to_vec(), true),
            (404, b"abc0123456789abcdef".to_vec(), true),
            (204, Vec::new(), true),
            (200, b"until close".to_vec(), false),
        ]
    }

    /// Feeds `data` into a buffer `step` bytes at a time, parsing every response.
    fn parse_all(data: &[u8], step: usize) -> Result<Vec<(u16, Vec<u8>, bool)>, ResponseError> {
        let mut input = RecvBuffer::default();
        let mut parser = ResponseParser::default();
        let mut fed = 0;
        let mut out = Vec::new();
        let mut head = None;
        let mut body = Vec::new();
        loop {
            if head.is_none() {
                head = parser.parse_head(&mut input)?;
            }
            if let Some(h) = head {
                if let Some(n) = parser.parse_body(&mut input, |b| body.extend_from_slice(b))? {
                    assert_eq!(n as usize, body.len());
                    out.push((h.status, std::mem::take(&mut body), h.keep_alive));
                    head = None;
                    continue;
                }
            }
            if fed == data.len() {
                return match head {
                    None if !input.has_unparsed() => Ok(out),
                    None => Err(ResponseError::UnexpectedEof),
                    Some(h) => {
                        parser.end_of_stream()?;
                        out.push((h.status, body, h.keep_alive));
                        Ok(out)
                    }
                };
            }
            let spare = input.spare()?;
            let n = step.min(spare.len()).min(data.len() - fed);
            spare[..n].copy_from_slice(&data[fed..fed + n]);
            input.filled(n);
            fed += n;
        }
    }

    #[test]
    fn every_framing_parses_across_any_split() {
        for step in [1, 2, 3, 7, 4096] {
            let got = parse_all(EVERY_FRAMING, step).unwrap();
            assert_eq!(got, every_framing_parsed(), "step {step}");
        }
    }

    #[test]
    fn large_heads_grow_the_buffer_up_to_the_limit() {
        let big = "a".repeat(20_000);
        let data = format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(
            parse_all(data.as_bytes(), 4096).unwrap(),
            vec![(200, b"ok".to_vec(), true)]
        );
        let huge = "a".repeat(70_000);
        let data = format!("HTTP/1.1 200 OK\r\nX-Big: {huge}\r\n\r\n");
        assert!(parse_all(data.as_bytes(), 4096).is_err());
    }

    #[test]
    fn content_length_is_strict_decimal() {
        for bad in ["x", "-1", "1 2", "", "99999999999999999999"] {
            let data = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert!(
                matches!(
                    parse_all(data.as_bytes(), 64),
                    Err(ResponseError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        let conflicting = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
        assert!(matches!(
            parse_all(conflicting, 64),
            Err(ResponseError::Malformed(_))
        ));
        assert_eq!(
            parse_all(b"HTTP/1.1 200 OK\r\ncontent-length:  3 \r\n\r\nabc", 64).unwrap(),
            vec![(200, b"abc".to_vec(), true)]
        );
    }

    #[test]
    fn framing_comes_from_headers_in_any_case() {
        let data = b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 2\r\nConnection: Close\r\n\r\nab\
            HTTP/1.1 200 OK\r\ntransfer-ENCODING: Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n\
            HTTP/1.1 200 OK\r\nContent_Length: 2\r\nconnection: upgrade, KEEP-ALIVE\r\n\r\nab";
        assert_eq!(
            parse_all(data, 7).unwrap(),
            vec![
                (200, b"ab".to_vec(), false),
                (200, b"x".to_vec(), true),
                // No framing header: the body runs to the end of the stream.
                (200, b"ab".to_vec(), false),
            ]
        );
    }

    #[test]
    fn truncated_bodies_end_with_unexpected_eof() {
        for data in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\nContent-Le",
        ] {
            assert!(matches!(
                parse_all(data, 4),
                Err(ResponseError::UnexpectedEof)
            ));
        }
    }
}
