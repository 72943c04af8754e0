//! A connection to the target: the stream type the HTTP/1.1 client runs on.

use std::io;

use crate::target::Target;
use crate::transport::{self, TransportError};

/// An open connection: plain TCP or TLS (the transport's stream).
pub type Conn = transport::Stream;

/// Opens a connection to `target` (TCP_NODELAY; TLS handshake for `https`).
pub async fn connect(target: &Target) -> io::Result<Conn> {
    transport::connect(target.addr(), target.tls.clone())
        .await
        .map_err(|e| match e {
            TransportError::Connect { source, .. } | TransportError::Io(source) => source,
            other => io::Error::other(other.to_string()),
        })
}
