//! Connections to the API server: TCP and TLS streams on glommio, and an HTTP/2 client over them.
//!
//! Everything here runs on the calling core's glommio executor; nothing is shared between cores.

mod error;
pub(crate) mod http2;
mod stream;
pub mod tls;

pub use error::{error_code_name, Http2Error, TransportError};
pub use http2::{Http2Body, Http2Connection, Http2Response};
pub use stream::{connect, idle_socket_unusable, Stream};
