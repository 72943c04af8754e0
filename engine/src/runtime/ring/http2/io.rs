//! The byte pipe between an `h2` connection and the core's loop. `h2` reads and writes through
//! tokio's I/O traits; here they move bytes in memory only: the loop appends what the ring
//! received (decrypted, over TLS) and takes what `h2` wrote, to seal and send it itself. No
//! call here ever waits: a read with nothing buffered is `Pending`, and the loop polls the
//! connection again when bytes arrive.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The buffers both sides share.
#[derive(Debug, Default)]
pub(super) struct Pipe {
    /// Received plaintext; `inbound[read..filled]` is what `h2` has not read yet. The buffer
    /// stays initialised to its length, so a read into its spare room zeroes nothing.
    inbound: Vec<u8>,
    read: usize,
    filled: usize,
    /// The server ended the stream: reads return end-of-file once `inbound` is drained.
    eof: bool,
    /// The socket failed: reads return it once `inbound` is drained.
    error: Option<io::Error>,
    /// What `h2` wrote and the loop has not taken yet.
    outbound: Vec<u8>,
}

impl Pipe {
    /// At least `n` bytes of room for received bytes (read ones are dropped first); the
    /// caller reports what it wrote with [`Pipe::filled`].
    pub(super) fn spare(&mut self, n: usize) -> &mut [u8] {
        if self.read == self.filled {
            self.read = 0;
            self.filled = 0;
        }
        if self.inbound.len() - self.filled < n && self.read > 0 {
            self.inbound.copy_within(self.read..self.filled, 0);
            self.filled -= self.read;
            self.read = 0;
        }
        if self.inbound.len() - self.filled < n {
            self.inbound.resize(self.filled + n, 0);
        }
        &mut self.inbound[self.filled..]
    }

    /// `n` bytes were written at the start of the last [`Pipe::spare`].
    pub(super) fn filled(&mut self, n: usize) {
        self.filled += n;
        debug_assert!(self.filled <= self.inbound.len());
    }

    /// The server closed the connection.
    pub(super) fn end(&mut self) {
        self.eof = true;
    }

    /// The socket failed with `error`.
    pub(super) fn fail(&mut self, error: io::Error) {
        self.error.get_or_insert(error);
    }

    /// Forgets everything (the connection is replaced).
    pub(super) fn reset(&mut self) {
        self.read = 0;
        self.filled = 0;
        self.eof = false;
        self.error = None;
        self.outbound.clear();
    }

    /// Whether `h2` wrote bytes that wait to be sent.
    pub(super) fn has_outbound(&self) -> bool {
        !self.outbound.is_empty()
    }

    /// The outbound bytes, for sealing in place; cleared with [`Pipe::clear_outbound`].
    pub(super) fn outbound(&self) -> &[u8] {
        &self.outbound
    }

    pub(super) fn clear_outbound(&mut self) {
        self.outbound.clear();
    }
}

/// `h2`'s side of a [`Pipe`].
#[derive(Debug, Clone)]
pub(super) struct PipeIo(pub(super) Rc<RefCell<Pipe>>);

impl AsyncRead for PipeIo {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut pipe = self.0.borrow_mut();
        let available = pipe.filled - pipe.read;
        if available == 0 {
            // End of file is a read of nothing; otherwise the loop polls again with bytes.
            if let Some(e) = pipe.error.take() {
                pipe.eof = true;
                return Poll::Ready(Err(e));
            }
            return if pipe.eof {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        }
        let n = available.min(buf.remaining());
        let from = pipe.read;
        buf.put_slice(&pipe.inbound[from..from + n]);
        pipe.read += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PipeIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.borrow_mut().outbound.extend_from_slice(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_the_pipe_in_order_and_end_of_file_follows_them() {
        let pipe = Rc::new(RefCell::new(Pipe::default()));
        let mut io = PipeIo(pipe.clone());
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut space = [0u8; 4];
        let mut buf = ReadBuf::new(&mut space);
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_pending());
        {
            let mut pipe = pipe.borrow_mut();
            pipe.spare(6)[..6].copy_from_slice(b"abcdef");
            pipe.filled(6);
        }
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_ready());
        assert_eq!(buf.filled(), b"abcd");
        let mut space = [0u8; 4];
        let mut buf = ReadBuf::new(&mut space);
        pipe.borrow_mut().end();
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_ready());
        assert_eq!(buf.filled(), b"ef");
        let mut buf = ReadBuf::new(&mut space);
        assert!(Pin::new(&mut io).poll_read(&mut cx, &mut buf).is_ready());
        assert!(buf.filled().is_empty(), "end of file");
        assert!(matches!(
            Pin::new(&mut io).poll_write(&mut cx, b"xy"),
            Poll::Ready(Ok(2))
        ));
        assert_eq!(pipe.borrow().outbound(), b"xy");
        pipe.borrow_mut().clear_outbound();
        assert!(!pipe.borrow().has_outbound());
    }
}
