//! Reads HTTP/1.1 responses from an async stream into a reused buffer and drains their
//! bodies; the framing rules are the sans-IO [`ResponseParser`]'s.

use futures_lite::{AsyncRead, AsyncReadExt};

pub use super::parser::{BodyFraming, ResponseError, ResponseHead};
use super::parser::{RecvBuffer, ResponseParser};

/// A reusable response reader for one connection.
#[derive(Debug, Default)]
pub struct ResponseReader {
    input: RecvBuffer,
    parser: ResponseParser,
}

impl ResponseReader {
    /// Forgets buffered bytes (after the connection is replaced).
    pub fn reset(&mut self) {
        self.input.reset();
    }

    /// Whether bytes beyond the last response are buffered (nobody's answer: the
    /// connection is not reused).
    pub fn has_buffered(&self) -> bool {
        self.input.has_unparsed()
    }

    /// Reads more bytes; returns how many (0 at end of stream).
    async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Result<usize, ResponseError> {
        let n = stream.read(self.input.spare()?).await?;
        self.input.filled(n);
        Ok(n)
    }

    /// Reads up to and including the head of the final (non-1xx) response.
    pub async fn read_head<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<ResponseHead, ResponseError> {
        let mut seen_any = self.input.has_unparsed();
        loop {
            if let Some(head) = self.parser.parse_head(&mut self.input)? {
                return Ok(head);
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
        self.parser.begin_body(framing);
        loop {
            if let Some(n) = self.parser.parse_body(&mut self.input, &mut sink)? {
                return Ok(n);
            }
            if self.fill(stream).await? == 0 {
                return self.parser.end_of_stream();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;
    use futures_lite::io::Cursor;
    use std::io;

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
        use crate::http1::parser::tests::{every_framing_parsed, EVERY_FRAMING};
        for step in [1, 2, 3, 7, 4096] {
            let got = read_all(EVERY_FRAMING, step).unwrap();
            assert_eq!(got, every_framing_parsed(), "step {step}");
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
