//! Accepting connections: TLS (ALPN h2/http1.1) or plain (h2c prior knowledge + HTTP/1.1), per-connection
//! state, and the connection-level faults (close after N requests, GOAWAY after N streams).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Notify};

use super::{service, Shared};

/// What the service knows about its connection.
pub(crate) struct ConnState {
    /// The connection's number in accept order (1 for the first).
    pub number: u64,
    /// The client presented a certificate that the client CA verified.
    pub cert_authenticated: bool,
    /// Requests (streams) served so far.
    pub requests: AtomicU64,
    /// Wakes the connection task to close gracefully (HTTP/1.1 close, HTTP/2 GOAWAY).
    pub close: Notify,
}

impl ConnState {
    /// Counts a request and asks for a graceful close when a connection fault limit is reached; true
    /// when this request is the connection's last.
    pub fn count_request(&self, shared: &Shared, is_http2: bool) -> bool {
        let served = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let (close_after, goaway_after) = shared.faults.connection_limits();
        let close = close_after.is_some_and(|limit| served >= limit)
            || (is_http2 && goaway_after.is_some_and(|limit| served >= limit));
        if close {
            self.close.notify_one();
        }
        close
    }
}

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts until shutdown; each connection runs in its own task.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    max_concurrent_streams: u32,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_concurrent_streams(max_concurrent_streams);
    // Small responses: one write of head and body together beats writev of two buffers.
    builder.http1().writev(false);
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors or a connection reset before accept: back off briefly and go on.
                tracing::warn!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = shared.metrics.connection_opened();
        let shared = shared.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let read_delay = shared.faults.read_delay();
            match tls {
                None => {
                    if let Some(delay) = read_delay {
                        tokio::time::sleep(delay).await;
                    }
                    serve_connection(stream, connection, false, shared, builder).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(tls_stream)) => {
                            if let Some(delay) = read_delay {
                                tokio::time::sleep(delay).await;
                            }
                            let has_cert = tls_stream.get_ref().1.peer_certificates().is_some();
                            serve_connection(tls_stream, connection, has_cert, shared, builder)
                                .await
                        }
                        Ok(Err(error)) => tracing::debug!("TLS handshake failed: {error}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn serve_connection<I>(
    io: I,
    number: u64,
    cert_authenticated: bool,
    shared: Arc<Shared>,
    builder: auto::Builder<TokioExecutor>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_state = Arc::new(ConnState {
        number,
        cert_authenticated,
        requests: AtomicU64::new(0),
        close: Notify::new(),
    });
    let service = {
        let shared = shared.clone();
        let conn_state = conn_state.clone();
        service_fn(move |request: Request<Incoming>| {
            let shared = shared.clone();
            let conn_state = conn_state.clone();
            async move { Ok::<_, Infallible>(service::handle(shared, conn_state, request).await) }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    // A helper task turns "close this connection" and "server stopping" into one oneshot: the
    // connection task then polls a cheap receiver on each wake instead of a Notify and a watch.
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    tokio::spawn(close_signal(
        conn_state.clone(),
        shared.shutdown.clone(),
        stop_tx,
    ));
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!("connection ended: {error}");
                }
                break;
            }
            _ = &mut stop_rx, if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Fires `stop` when the connection must close (fault limit) or the server stops; ends quietly when the
/// connection ended first.
async fn close_signal(
    conn_state: Arc<ConnState>,
    mut shutdown: watch::Receiver<bool>,
    mut stop: oneshot::Sender<()>,
) {
    let fire = tokio::select! {
        _ = conn_state.close.notified() => true,
        stopped = shutdown.wait_for(|stop| *stop) => stopped.is_ok(),
        _ = stop.closed() => false,
    };
    if fire {
        let _ = stop.send(());
    }
}
