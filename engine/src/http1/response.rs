//! Reads HTTP/1.1 responses with httparse into a reused buffer and drains their bodies.
//!
//! Framing: `Transfer-Encoding: chunked`, `Content-Length`, or close-delimited;
//! 1xx interim responses are skipped; 204/304 have no body.

use std::io;

use futures_lite::{AsyncRead, AsyncReadExt};

/// Initial read buffer; it grows only for larger response heads.
const READ_BUF: usize = 16 * 1024;
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers parsed per response.
const MAX_HEADERS: usize = 64;
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
}

/// A reusable response reader for one connection.
#[derive(Debug)]
pub struct ResponseReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for ResponseReader {
    fn default() -> Self {
        ResponseReader {
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
        }
    }
}

impl ResponseReader {
    /// Forgets buffered bytes (after the connection is replaced).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Reads more bytes; returns how many (0 at end of stream).
    async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> io::Result<usize> {
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
        let n = stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Reads up to and including the head of the final (non-1xx) response.
    pub async fn read_head<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<ResponseHead, ResponseError> {
        let mut seen_any = self.start < self.end;
        loop {
            let parsed = {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete(len)) => Some((len, head_of(&response)?)),
                    Ok(httparse::Status::Partial) => None,
                    Err(_) => return Err(ResponseError::Malformed("invalid response head")),
                }
            };
            match parsed {
                Some((len, head)) => {
                    self.start += len;
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue;
                    }
                    return Ok(head);
                }
                None => {
                    if self.end - self.start >= MAX_HEAD {
                        return Err(ResponseError::Malformed("response head larger than 64 KiB"));
                    }
                    if self.fill(stream).await? == 0 {
                        return Err(if seen_any {
                            ResponseError::UnexpectedEof
                        } else {
                            ResponseError::Eof
                        });
                    }
                    seen_any = true;
                }
            }
        }
    }

    /// Reads the whole body, handing every body byte to `sink`; returns the body length.
    pub async fn read_body<S, F>(
        &mut self,
        stream: &mut S,
        framing: BodyFraming,
        mut sink: F,
    ) -> Result<u64, ResponseError>
    where
        S: AsyncRead + Unpin,
        F: FnMut(&[u8]),
    {
        match framing {
            BodyFraming::Length(len) => self.read_exact_body(stream, len, &mut sink).await,
            BodyFraming::UntilClose => {
                let mut total = 0;
                loop {
                    total += self.take_buffered(u64::MAX, &mut sink);
                    if self.fill(stream).await? == 0 {
                        return Ok(total);
                    }
                }
            }
            BodyFraming::Chunked => self.read_chunked(stream, &mut sink).await,
        }
    }

    /// Hands up to `max` buffered bytes to `sink`.
    fn take_buffered<F: FnMut(&[u8])>(&mut self, max: u64, sink: &mut F) -> u64 {
        let n = (self.end - self.start).min(usize::try_from(max).unwrap_or(usize::MAX));
        if n > 0 {
            sink(&self.buf[self.start..self.start + n]);
            self.start += n;
        }
        n as u64
    }

    async fn read_exact_body<S: AsyncRead + Unpin, F: FnMut(&[u8])>(
        &mut self,
        stream: &mut S,
        len: u64,
        sink: &mut F,
    ) -> Result<u64, ResponseError> {
        let mut left = len;
        loop {
            left -= self.take_buffered(left, sink);
            if left == 0 {
                return Ok(len);
            }
            if self.fill(stream).await? == 0 {
                return Err(ResponseError::UnexpectedEof);
            }
        }
    }

    /// Reads one line (up to `\n`) from the buffer, filling as needed; returns its range.
    async fn read_line<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<(usize, usize), ResponseError> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.buf[self.start + scanned..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                let line = (self.start, self.start + scanned + pos);
                self.start = line.1 + 1;
                return Ok(line);
            }
            scanned = self.end - self.start;
            if scanned > MAX_LINE {
                return Err(ResponseError::Malformed("chunk line too long"));
            }
            if self.fill(stream).await? == 0 {
                return Err(ResponseError::UnexpectedEof);
            }
        }
    }

    async fn read_chunked<S: AsyncRead + Unpin, F: FnMut(&[u8])>(
        &mut self,
        stream: &mut S,
        sink: &mut F,
    ) -> Result<u64, ResponseError> {
        let mut total = 0;
        loop {
            let (a, b) = self.read_line(stream).await?;
            let size = parse_chunk_size(&self.buf[a..b])?;
            if size == 0 {
                // Trailer section: lines until an empty one.
                loop {
                    let (a, b) = self.read_line(stream).await?;
                    if b == a || (b == a + 1 && self.buf[a] == b'\r') {
                        return Ok(total);
                    }
                }
            }
            total += self.read_exact_body(stream, size, sink).await?;
            let (a, b) = self.read_line(stream).await?;
            if !(b == a || (b == a + 1 && self.buf[a] == b'\r')) {
                return Err(ResponseError::Malformed("missing CRLF after chunk data"));
            }
        }
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

fn head_of(response: &httparse::Response<'_, '_>) -> Result<ResponseHead, ResponseError> {
    let status = response
        .code
        .ok_or(ResponseError::Malformed("no status code"))?;
    let http10 = response.version == Some(0);
    let mut keep_alive = !http10;
    let mut chunked = false;
    let mut length = None;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = has_token(h.value, b"chunked");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value)
                .map_err(|_| ResponseError::Malformed("invalid Content-Length"))?;
            let n: u64 = text
                .trim()
                .parse()
                .map_err(|_| ResponseError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|prev| prev != n) {
                return Err(ResponseError::Malformed(
                    "conflicting Content-Length headers",
                ));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("connection") {
            if has_token(h.value, b"close") {
                keep_alive = false;
            } else if has_token(h.value, b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        BodyFraming::Length(0)
    } else if chunked {
        BodyFraming::Chunked
    } else if let Some(n) = length {
        BodyFraming::Length(n)
    } else {
        keep_alive = false;
        BodyFraming::UntilClose
    };
    Ok(ResponseHead {
        status,
        framing,
        keep_alive,
    })
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
    use futures_lite::future::block_on;
    use futures_lite::io::Cursor;

    /// Feeds bytes in small pieces so every state of the reader sees a split.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let n = self.step.min(buf.len()).min(self.data.len() - self.pos);
            let pos = self.pos;
            buf[..n].copy_from_slice(&self.data[pos..pos + n]);
            self.pos += n;
            std::task::Poll::Ready(Ok(n))
        }
    }

    fn read_all(data: &[u8], step: usize) -> Result<Vec<(u16, Vec<u8>, bool)>, ResponseError> {
        block_on(async {
            let mut stream = Trickle {
                data: data.to_vec(),
                pos: 0,
                step,
            };
            let mut reader = ResponseReader::default();
            let mut out = Vec::new();
            loop {
                let head = match reader.read_head(&mut stream).await {
                    Ok(h) => h,
                    Err(ResponseError::Eof) => return Ok(out),
                    Err(e) => return Err(e),
                };
                let mut body = Vec::new();
                let n = reader
                    .read_body(&mut stream, head.framing, |b| body.extend_from_slice(b))
                    .await?;
                assert_eq!(n as usize, body.len());
                out.push((head.status, body, head.keep_alive));
                if !head.keep_alive {
                    return Ok(out);
                }
            }
        })
    }

    #[test]
    fn length_chunked_interim_and_close_delimited() {
        let data = b"HTTP/1.1 100 Continue\r\n\r\n\
            HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
            HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n\
            3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: z\r\n\r\n\
            HTTP/1.1 204 No Content\r\n\r\n\
            HTTP/1.1 200 OK\r\n\r\nuntil close";
        for step in [1, 2, 3, 7, 4096] {
            let got = read_all(data, step).unwrap();
            assert_eq!(
                got,
                vec![
                    (200, b"hello".to_vec(), true),
                    (404, b"abc0123456789abcdef".to_vec(), true),
                    (204, Vec::new(), true),
                    (200, b"until close".to_vec(), false),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn connection_close_header_ends_keep_alive() {
        let got = read_all(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            5,
        )
        .unwrap();
        assert_eq!(got, vec![(200, Vec::new(), false)]);
    }

    #[test]
    fn truncations_are_eof_kinds() {
        assert!(matches!(
            read_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", 4),
            Err(ResponseError::UnexpectedEof)
        ));
        assert!(matches!(
            read_all(b"HTTP/1.1 200 OK\r\nContent-Le", 4),
            Err(ResponseError::UnexpectedEof)
        ));
        assert!(matches!(
            read_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                4
            ),
            Err(ResponseError::UnexpectedEof)
        ));
        let empty = block_on(ResponseReader::default().read_head(&mut Cursor::new(Vec::new())));
        assert!(matches!(empty, Err(ResponseError::Eof)));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            read_all(b"NOT HTTP AT ALL\r\n\r\n", 64),
            Err(ResponseError::Malformed(_))
        ));
        assert!(matches!(
            read_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                64
            ),
            Err(ResponseError::Malformed(_))
        ));
        assert!(matches!(
            read_all(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 64),
            Err(ResponseError::Malformed(_))
        ));
    }
}
