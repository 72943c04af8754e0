//! A connection to the target: HTTP/1.1 on a plain or TLS stream, or HTTP/2 when the
//! server chose `h2` in the TLS handshake (one stream in flight per connection).

use std::io;

use crate::target::Target;
use crate::transport::{self, Http2Connection, Stream, TransportError};

/// An open connection.
pub enum Conn {
    /// HTTP/1.1 over TCP or TLS.
    Http1(Stream),
    /// HTTP/2 over TLS.
    Http2(Http2Connection),
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// TCP (refused, reset, ...).
    Io(io::Error),
    /// TLS or HTTP/2 handshake.
    Transport(TransportError),
}

/// Opens an HTTP/1.1-only connection (WATCHes: a dedicated connection each).
pub async fn connect_http1(target: &Target) -> Result<Stream, ConnectError> {
    transport::connect(target.addr(), target.tls_http1.clone())
        .await
        .map_err(connect_error)
}

fn connect_error(e: TransportError) -> ConnectError {
    match e {
        TransportError::Connect { source, .. } | TransportError::Io(source) => {
            ConnectError::Io(source)
        }
        other => ConnectError::Transport(other),
    }
}

/// Opens a connection to `target` (TCP_NODELAY; TLS for `https`; HTTP/2 when negotiated).
pub async fn connect(target: &Target) -> Result<Conn, ConnectError> {
    let stream = transport::connect(target.addr(), target.tls.clone())
        .await
        .map_err(connect_error)?;
    if stream.negotiated_alpn() == Some(b"h2".as_slice()) {
        let h2 = Http2Connection::handshake(stream, &target.host_header)
            .await
            .map_err(ConnectError::Transport)?;
        return Ok(Conn::Http2(h2));
    }
    Ok(Conn::Http1(stream))
}
