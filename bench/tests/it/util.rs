//! What apisim's scenarios share: HTTP/1.1 and h2c clients to talk to it, watch readers, metric
//! polls. The binary itself is started by `testkit::ApiSim`, re-exported here.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;

pub use testkit::ApiSim;

/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// A whole response.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Builds a request; `headers` are (name, value) pairs.
pub fn request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(target);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request")
}

/// One HTTP/1.1 keep-alive connection.
pub struct H1 {
    pub sender: http1::SendRequest<Full<Bytes>>,
    pub connection: tokio::task::JoinHandle<()>,
    host: String,
}

impl H1 {
    pub async fn connect(addr: &str) -> H1 {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("http1 handshake");
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        H1 {
            sender,
            connection,
            host: addr.to_string(),
        }
    }

    /// Sends and returns the response head with its streaming body.
    pub async fn send_streaming(
        &mut self,
        mut request: Request<Full<Bytes>>,
    ) -> Response<Incoming> {
        request
            .headers_mut()
            .insert("host", self.host.parse().expect("host header"));
        tokio::time::timeout(WAIT, async {
            self.sender.ready().await.expect("connection ready");
            self.sender.send_request(request).await.expect("send")
        })
        .await
        .expect("response head within the wait bound")
    }

    /// Sends and reads the whole response.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Answer {
        let response = self.send_streaming(request).await;
        collect(response).await
    }
}

/// One h2c (prior knowledge) connection.
pub struct H2 {
    pub sender: http2::SendRequest<Full<Bytes>>,
    pub connection: tokio::task::JoinHandle<()>,
}

impl H2 {
    pub async fn connect(addr: &str) -> H2 {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        H2 { sender, connection }
    }

    pub async fn send(&mut self, addr: &str, request: Request<Full<Bytes>>) -> Answer {
        let (mut parts, body) = request.into_parts();
        parts.uri = format!("http://{addr}{}", parts.uri)
            .parse()
            .expect("absolute uri");
        let request = Request::from_parts(parts, body);
        let response = tokio::time::timeout(WAIT, async {
            self.sender.ready().await.expect("h2 ready");
            self.sender.send_request(request).await.expect("h2 send")
        })
        .await
        .expect("h2 response within the wait bound");
        collect(response).await
    }
}

/// Reads a whole body (bounded).
pub async fn collect(response: Response<Incoming>) -> Answer {
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(WAIT, body.collect())
        .await
        .expect("body within the wait bound")
        .expect("body")
        .to_bytes();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// One request on a fresh HTTP/1.1 connection.
pub async fn call(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    H1::connect(addr)
        .await
        .send(request(method, target, headers, body))
        .await
}

/// Reads watch lines from a streaming body until `want` lines arrived (bounded by WAIT); None at end of
/// stream.
pub struct WatchReader {
    body: Incoming,
    buffer: Vec<u8>,
}

impl WatchReader {
    pub fn new(response: Response<Incoming>) -> WatchReader {
        WatchReader {
            body: response.into_body(),
            buffer: Vec::new(),
        }
    }

    /// The next event, or None when the stream ended.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("watch line is JSON"));
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("watch event within the wait bound");
            match frame {
                None => return None,
                Some(frame) => {
                    if let Ok(data) = frame.expect("watch frame").into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// Polls `/metrics` until `line` appears (bounded).
pub async fn wait_for_metric(addr: &str, headers: &[(&str, &str)], line: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = call(addr, "GET", "/metrics", headers, "").await.text();
        if metrics.lines().any(|l| l == line) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metric line {line:?} never appeared:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
