//! Response bodies (a whole buffer, or a channel-fed watch stream) and response builders.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame};
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use super::status::ApiError;

/// A watch stream body: chunks arrive from the watch task; the stream ends when the task drops its sender.
pub struct StreamBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl StreamBody {
    /// A body fed by `receiver`.
    pub fn new(receiver: mpsc::Receiver<Bytes>) -> Self {
        StreamBody { receiver }
    }
}

impl Body for StreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.receiver
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// Every apisim response body.
pub type ApiBody = Either<Full<Bytes>, StreamBody>;

/// A response with a whole body.
pub fn full(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<ApiBody> {
    let mut response = Response::new(Either::Left(Full::new(body.into())));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A JSON response from pre-serialised bytes.
pub fn json_bytes(status: u16, body: impl Into<Bytes>) -> Response<ApiBody> {
    full(status, "application/json", body)
}

/// A JSON response from a value.
pub fn json_value(status: u16, value: &Value) -> Response<ApiBody> {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// The Status response for an error, with `Retry-After` when it has one.
pub fn error_response(error: &ApiError) -> Response<ApiBody> {
    let mut response = json_value(error.code, &error.to_status());
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A streaming JSON response (watch).
pub fn stream(receiver: mpsc::Receiver<Bytes>) -> Response<ApiBody> {
    stream_with_type(receiver, "application/json")
}

/// A streaming response of the given content type.
pub fn stream_with_type(
    receiver: mpsc::Receiver<Bytes>,
    content_type: &'static str,
) -> Response<ApiBody> {
    let mut response = Response::new(Either::Right(StreamBody::new(receiver)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Body length of a whole response (0 for streams, which count their own bytes).
pub fn body_len(response: &Response<ApiBody>) -> usize {
    match response.body() {
        Either::Left(full) => full.size_hint().exact().unwrap_or(0) as usize,
        Either::Right(_) => 0,
    }
}
