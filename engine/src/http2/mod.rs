//! HTTP/2 (RFC 9113) as a sans-I/O client codec: frames ([`frame`]), HPACK (RFC 7541, [`Encoder`]
//! and [`Decoder`]) and one connection's state ([`Protocol`]). The codec writes what the
//! client sends into a buffer and reads what the server sent from another; it owns no socket
//! and no task, and allocates nothing per request once warm. The core's loop drives it
//! (`runtime/ring/http2/`), as it drives the HTTP/1.1 codec of [`crate::http1`]. Hand-written
//! rather than taken from `h2`: `h2`'s per-request futures, allocations and locks dominated
//! the client's CPU per request (`bench/RESULTS.md`), and its state machine cannot run
//! without an executor.

pub mod frame;
mod hpack;
mod protocol;

pub use hpack::{DecodeError, Decoder, Encoder, Indexing};
pub use protocol::{ConnectionError, Event, Protocol, CONNECTION_WINDOW, STREAM_WINDOW};
