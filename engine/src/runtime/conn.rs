//! A connection to the target: the stream type the HTTP/1.1 client runs on.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

use crate::target::Target;

/// An open connection (plain TCP; TLS slots in as another variant).
pub enum Conn {
    /// Plain TCP with TCP_NODELAY.
    Plain(TcpStream),
}

/// Opens a connection to `target`.
pub async fn connect(target: &Target) -> io::Result<Conn> {
    let stream = TcpStream::connect(target.addr())
        .await
        .map_err(io::Error::from)?;
    stream.set_nodelay(true).map_err(io::Error::from)?;
    Ok(Conn::Plain(stream))
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_close(cx),
        }
    }
}
