//! HTTP/1.1 on any `AsyncRead + AsyncWrite` stream: request encoding and response reading.
//!
//! Generic over the stream so a plain glommio `TcpStream` and a TLS stream share one client.

mod framing;
mod head_scan;
pub mod parser;
pub mod request;
pub mod response;

pub use framing::parse_retry_after;
pub use head_scan::scan_head;
pub use parser::parse_head_strictly;
pub use parser::{BodyFraming, RecvBuffer, ResponseError, ResponseHead, ResponseParser};
pub use request::{user_agent_header, InvalidUserAgent, RequestTemplate};
pub use response::ResponseReader;
