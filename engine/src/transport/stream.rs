//! A connection to the server: plain TCP or TLS over glommio's `TcpStream`, usable by any
//! futures-io client (the HTTP/1.1 client) and, through tokio-util's compat layer, by `h2`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use super::error::TransportError;
use super::tls::explain_tls_error;

/// An open connection to the server, plain or TLS.
pub enum Stream {
    /// Cleartext TCP (an `http://` server).
    Plain(TcpStream),
    /// TLS over TCP (an `https://` server). Boxed: the TLS state is large.
    Tls(Box<TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stream::Plain(_) => f.write_str("Stream::Plain"),
            Stream::Tls(_) => f
                .debug_struct("Stream::Tls")
                .field("alpn", &self.negotiated_alpn().map(String::from_utf8_lossy))
                .finish(),
        }
    }
}

impl Stream {
    /// The ALPN protocol the server chose (`b"h2"` or `b"http/1.1"`), `None` for plain TCP or
    /// when the server chose none.
    pub fn negotiated_alpn(&self) -> Option<&[u8]> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => tls.get_ref().1.alpn_protocol(),
        }
    }

    /// Whether this stream is encrypted (decides the HTTP/2 `:scheme`).
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Whether this idle connection must not take a request: see [`idle_socket_unusable`].
    pub fn unusable_while_idle(&self) -> bool {
        use std::os::fd::AsRawFd;
        let fd = match self {
            Stream::Plain(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.get_ref().0.as_raw_fd(),
        };
        idle_socket_unusable(fd)
    }
}

/// Opens a TCP connection to `addr` with TCP_NODELAY and, when `tls` is given, completes a TLS
/// handshake checking the server's certificate against `server_name`.
///
/// Must run on a glommio executor. TLS failures come back as [`TransportError::Tls`] with a
/// sentence that says what to fix (see [`explain_tls_error`]).
pub async fn connect(
    addr: SocketAddr,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
) -> Result<Stream, TransportError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| TransportError::Connect {
            addr,
            source: io::Error::from(e),
        })?;
    tcp.set_nodelay(true).map_err(|e| TransportError::Connect {
        addr,
        source: io::Error::from(e),
    })?;
    let Some((config, server_name)) = tls else {
        return Ok(Stream::Plain(tcp));
    };
    let shown_name = server_name.to_str().into_owned();
    match TlsConnector::from(config).connect(server_name, tcp).await {
        Ok(stream) => Ok(Stream::Tls(Box::new(stream))),
        Err(e) => Err(tls_handshake_error(e, shown_name)),
    }
}

/// Turns a failed handshake into a sentence when rustls said why; plain I/O failures stay I/O errors.
fn tls_handshake_error(err: io::Error, server_name: String) -> TransportError {
    let rustls_error = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(tls_error) => TransportError::Tls {
            message: explain_tls_error(tls_error, &server_name),
            server_name,
        },
        None if err.kind() == io::ErrorKind::UnexpectedEof => TransportError::Tls {
            message: "the server closed the connection during the handshake (is it a TLS server?)"
                .to_string(),
            server_name,
        },
        None => TransportError::Io(err),
    }
}

/// Whether the server closed the idle connection on socket `fd` (end of stream, a reset) or
/// sent bytes nobody asked for (after TLS: its close_notify): a non-blocking peek. Go's
/// transport, whose read loop sees the same, drops such a connection from its idle pool.
pub fn idle_socket_unusable(fd: std::os::fd::RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: a one-byte buffer of ours; MSG_PEEK leaves the socket's data in place.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        );
    }
    true
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}
