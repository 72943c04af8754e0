//! `pods/NAME[:PORT]/proxy/PATH`: the request is forwarded over HTTP/1.1 to the pod's remapped port on
//! 127.0.0.1, and the response streamed back frame by frame (bounded channel, never whole in memory).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Either};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HOST};
use hyper::http::request::Parts;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::{lock, pod_and_runtime, Jobs};
use crate::apisim::body::{error_response, ApiBody, StreamBody};
use crate::apisim::status::ApiError;
use crate::apisim::Shared;

/// Frames buffered between the pod and the client.
const CHANNEL_DEPTH: usize = 16;

/// Headers that belong to one hop; never forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Forwards one request to the pod; 503 when the pod does not run or nothing listens on the port.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn forward(
    shared: &Arc<Shared>,
    jobs: &Jobs,
    namespace: &str,
    name: &str,
    port: Option<&str>,
    rest: &str,
    parts: Parts,
    body: Incoming,
) -> Response<ApiBody> {
    match connect_and_send(shared, jobs, namespace, name, port, rest, parts, body).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

#[allow(clippy::too_many_arguments)]
async fn connect_and_send(
    shared: &Arc<Shared>,
    jobs: &Jobs,
    namespace: &str,
    name: &str,
    port: Option<&str>,
    rest: &str,
    parts: Parts,
    body: Incoming,
) -> Result<Response<ApiBody>, ApiError> {
    let (_, runtime) = pod_and_runtime(shared, jobs, namespace, name)?;
    let runtime = runtime
        .filter(|r| r.running())
        .ok_or_else(|| ApiError::service_unavailable(format!("pod {name:?} is not running")))?;
    let host_port = {
        let ports = lock(&runtime.ports);
        let found = match port {
            None => ports.first(),
            Some(asked) => ports.iter().find(|p| {
                p.container_port.to_string() == asked || p.name.as_deref() == Some(asked)
            }),
        };
        found.map(|p| p.host_port).ok_or_else(|| {
            ApiError::service_unavailable(format!(
                "pod {name:?} declares no containerPort {}",
                port.map_or(
                    "(none given, and the container has no ports)".to_string(),
                    |p| { format!("{p:?}") }
                )
            ))
        })?
    };
    let address = format!("127.0.0.1:{host_port}");
    let stream = TcpStream::connect(&address).await.map_err(|error| {
        ApiError::service_unavailable(format!(
            "error trying to reach pod {name:?}: dial tcp {address}: {error}"
        ))
    })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| ApiError::service_unavailable(format!("pod {name:?}: {error}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let target = match parts.uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_string(),
    };
    let mut builder = Request::builder().method(parts.method.clone()).uri(target);
    for (header, value) in &parts.headers {
        // apisim's credentials stay with apisim, as the apiserver's do.
        if hop_by_hop(header) || *header == HOST || header.as_str() == "authorization" {
            continue;
        }
        builder = builder.header(header, value);
    }
    let request = builder
        .header(HOST, address.as_str())
        .body(body)
        .map_err(|error| ApiError::bad_request(format!("cannot forward the request: {error}")))?;
    let upstream = sender.send_request(request).await.map_err(|error| {
        ApiError::service_unavailable(format!("error trying to reach pod {name:?}: {error}"))
    })?;
    let (head, mut upstream_body) = upstream.into_parts();
    let (chunks, receiver) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    let counter = shared.clone();
    tokio::spawn(async move {
        while let Some(frame) = upstream_body.frame().await {
            let Ok(frame) = frame else { break };
            if let Ok(data) = frame.into_data() {
                counter.metrics.add_response_bytes(data.len());
                if chunks.send(data).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut response = Response::new(Either::Right(StreamBody::new(receiver)));
    *response.status_mut() = head.status;
    for (header, value) in &head.headers {
        if !hop_by_hop(header) {
            response.headers_mut().append(header, value.clone());
        }
    }
    Ok(response)
}
