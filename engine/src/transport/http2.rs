//! An HTTP/2 client on a [`Stream`], using the `h2` crate through tokio-util's compat layer (no
//! tokio runtime: `h2` needs only the I/O traits). The connection driver runs as a glommio task
//! on the calling core.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::RecvStream;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::error::{Http2Error, TransportError};
use super::stream::Stream;

/// Per-stream receive window: large enough that a LIST of a few MiB is not throttled by
/// WINDOW_UPDATE round trips.
const STREAM_WINDOW: u32 = 4 << 20;
/// Connection receive window, shared by all streams.
const CONNECTION_WINDOW: u32 = 16 << 20;

/// What the connection's driver saw when the connection ended (the driver is a glommio task
/// here, the core's loop for the loop's own connections).
#[derive(Debug, Default)]
pub(crate) struct DriverState {
    closed: Cell<bool>,
    error: RefCell<Option<Http2Error>>,
    /// The server's GOAWAY (code, debug data), once any request has seen it: it explains the
    /// I/O errors that follow when the server closes the socket.
    goaway: RefCell<Option<(u32, String)>>,
}

impl DriverState {
    /// The connection's future ended, with `result`.
    pub(crate) fn ended(&self, result: Result<(), h2::Error>) {
        match result {
            Err(e) => self.fail(Http2Error::from_h2(e)),
            Ok(()) => self.closed.set(true),
        }
    }

    /// The connection ended with `error`.
    pub(crate) fn fail(&self, error: Http2Error) {
        if let Http2Error::GoAway { code, debug } = &error {
            self.record_goaway(*code, debug);
        }
        self.error.borrow_mut().get_or_insert(error);
        self.closed.set(true);
    }

    /// Whether the connection takes no more requests: it ended, or a request saw a GOAWAY.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get() || self.goaway.borrow().is_some()
    }

    /// The server's GOAWAY: no new requests; it explains the errors that follow.
    pub(crate) fn record_goaway(&self, code: u32, debug: &str) {
        self.goaway
            .borrow_mut()
            .get_or_insert_with(|| (code, debug.to_string()));
    }

    /// The error to report for a request on a connection that has ended.
    pub(crate) fn closed_error(&self) -> Http2Error {
        if let Some((code, debug)) = self.goaway.borrow().as_ref() {
            return Http2Error::GoAway {
                code: *code,
                debug: debug.clone(),
            };
        }
        match self.error.borrow().as_ref() {
            Some(Http2Error::StreamReset { code }) => Http2Error::StreamReset { code: *code },
            Some(Http2Error::Connection { code }) => Http2Error::Connection { code: *code },
            Some(Http2Error::Io(e)) => Http2Error::Io(std::io::Error::new(e.kind(), e.to_string())),
            _ => Http2Error::ConnectionLost,
        }
    }
}

/// A stream-level failure, explained by the connection's fate when there is one: after a GOAWAY,
/// the I/O errors of the closing socket are reported as that GOAWAY.
pub(crate) fn stream_error(driver: &DriverState, err: h2::Error) -> TransportError {
    let mapped = Http2Error::from_h2(err);
    match mapped {
        Http2Error::GoAway { code, ref debug } => {
            driver.record_goaway(code, debug);
            mapped.into()
        }
        // An I/O error on a connection that has already ended (the server closed it after
        // its GOAWAY) is Go's "client connection lost", not a socket error of its own.
        Http2Error::Io(_) if driver.goaway.borrow().is_some() || driver.closed.get() => {
            driver.closed_error().into()
        }
        Http2Error::InvalidRequest(_) if driver.closed.get() => driver.closed_error().into(),
        other => other.into(),
    }
}

/// One HTTP/2 connection. Clone-free: requests are sent through `&self`, so many requests can be
/// in flight concurrently from tasks of the same core.
pub struct Http2Connection {
    sender: SendRequest<Bytes>,
    driver: Rc<DriverState>,
    scheme: Scheme,
    authority: Authority,
}

impl std::fmt::Debug for Http2Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Connection")
            .field("authority", &self.authority)
            .field("closed", &self.driver.closed.get())
            .finish()
    }
}

/// Response status and headers; the body is read from [`Http2Body`].
#[derive(Debug)]
pub struct Http2Response {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The response body, to be drained (or dropped, which cancels the stream).
    pub body: Http2Body,
}

/// A response body. Reading releases flow-control capacity, so the server can keep sending;
/// dropping it before the end resets the stream with CANCEL (how a WATCH is ended).
#[derive(Debug)]
pub struct Http2Body {
    recv: RecvStream,
    bytes_read: u64,
    driver: Rc<DriverState>,
}

impl Http2Connection {
    /// Performs the HTTP/2 handshake on `stream` (the server must speak HTTP/2: ALPN `h2`, or
    /// prior knowledge on cleartext) and starts the connection driver on the current glommio
    /// executor, then waits one round trip (PING) so that the server's SETTINGS are known.
    /// `authority` is the `host:port` sent as `:authority`. A server that never answers keeps
    /// this waiting: callers bound it with their connect timeout.
    pub async fn handshake(stream: Stream, authority: &str) -> Result<Self, TransportError> {
        let authority = parse_authority(authority)?;
        let scheme = if stream.is_tls() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let (sender, mut connection) = client_builder()
            .handshake::<_, Bytes>(stream.compat())
            .await
            .map_err(Http2Error::from_h2)?;
        let ping_pong = connection.ping_pong();
        let driver = Rc::new(DriverState::default());
        let driver_state = Rc::clone(&driver);
        glommio::spawn_local(async move {
            driver_state.ended(connection.await);
        })
        .detach();
        // The server's SETTINGS (its stream limit) precede its PING acknowledgement: once the
        // pong is back, `max_concurrent_streams` is the server's and no request opens a stream
        // the server would refuse with REFUSED_STREAM.
        if let Some(mut ping_pong) = ping_pong {
            ping_pong
                .ping(h2::Ping::opaque())
                .await
                .map_err(Http2Error::from_h2)?;
        }
        Ok(Self {
            sender,
            driver,
            scheme,
            authority,
        })
    }

    /// The server's current limit on concurrent streams (its SETTINGS are processed before
    /// [`handshake`](Self::handshake) returns). Requests beyond it wait inside this connection
    /// until a stream ends; a pool that wants no waiting opens another connection instead.
    pub fn max_concurrent_streams(&self) -> usize {
        self.sender.current_max_send_streams()
    }

    /// Whether the connection takes no more requests: it has ended (I/O error, closed by the
    /// server) or a request has seen the server's GOAWAY (streams already open may still end).
    pub fn is_closed(&self) -> bool {
        self.driver.is_closed()
    }

    /// Why the connection ended, if it ended with an error.
    pub fn close_reason(&self) -> Option<String> {
        self.driver.error.borrow().as_ref().map(ToString::to_string)
    }

    /// Sends one request and waits for the response head. `body` is sent as one DATA frame
    /// sequence (empty: no DATA frame). Waits while the server's stream limit is reached.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Http2Response, TransportError> {
        if self.is_closed() {
            return Err(self.driver.closed_error().into());
        }
        let request = request_head(
            &self.scheme,
            &self.authority,
            method,
            path_and_query.to_owned(),
            headers.clone(),
        )?;

        let mut sender = self
            .sender
            .clone()
            .ready()
            .await
            .map_err(|e| stream_error(&self.driver, e))?;
        let (response, mut body_sender) = sender
            .send_request(request, body.is_empty())
            .map_err(|e| stream_error(&self.driver, e))?;
        if !body.is_empty() {
            body_sender
                .send_data(Bytes::copy_from_slice(body), true)
                .map_err(|e| stream_error(&self.driver, e))?;
        }
        let response = response.await.map_err(|e| stream_error(&self.driver, e))?;
        let (head, recv) = response.into_parts();
        Ok(Http2Response {
            status: head.status,
            headers: head.headers,
            body: Http2Body {
                recv,
                bytes_read: 0,
                driver: Rc::clone(&self.driver),
            },
        })
    }
}

/// The settings of kreplay's HTTP/2 client connections (no push; windows that do not throttle
/// a LIST of a few MiB).
pub(crate) fn client_builder() -> h2::client::Builder {
    let mut builder = h2::client::Builder::new();
    builder
        .enable_push(false)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    builder
}

/// A request's head, as `h2` takes it.
pub(crate) fn request_head(
    scheme: &Scheme,
    authority: &Authority,
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
) -> Result<Request<()>, Http2Error> {
    // Owned: `http` keeps the bytes it was given instead of copying them.
    let path =
        PathAndQuery::from_maybe_shared(bytes::Bytes::from(path_and_query)).map_err(|e| {
            Http2Error::InvalidRequest(format!(
                "the request target is not a valid HTTP/2 :path: {e}"
            ))
        })?;
    let uri = Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| Http2Error::InvalidRequest(e.to_string()))?;
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The `:authority` of requests to `host_port`.
pub(crate) fn parse_authority(host_port: &str) -> Result<Authority, Http2Error> {
    host_port.parse().map_err(|e: http::uri::InvalidUri| {
        Http2Error::InvalidRequest(format!("authority {host_port:?}: {e}"))
    })
}

impl Http2Body {
    /// The next chunk of the body, `None` at its end. Its capacity is released to the server
    /// at once: the caller has the bytes.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        match self.recv.data().await {
            None => Ok(None),
            Some(Ok(data)) => {
                self.bytes_read += data.len() as u64;
                // Releasing can only fail when the stream is already gone; the next read reports it.
                let _ = self.recv.flow_control().release_capacity(data.len());
                Ok(Some(data))
            }
            Some(Err(e)) => Err(stream_error(&self.driver, e)),
        }
    }

    /// Reads and discards the rest of the body; returns the bytes read by this call.
    /// On error, [`bytes_read`](Self::bytes_read) still counts what arrived before it.
    pub async fn drain(&mut self) -> Result<u64, TransportError> {
        let before = self.bytes_read;
        while self.chunk().await?.is_some() {}
        Ok(self.bytes_read - before)
    }

    /// Body bytes received so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Whether the server has ended the body.
    pub fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}
