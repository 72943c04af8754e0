//! A connection to the target: HTTP/1.1 on a plain or TLS stream, or a slot on an
//! HTTP/2 connection when the server chose `h2` in the TLS handshake. An HTTP/2
//! connection is shared by up to `min(server limit, H2_MAX_SLOTS)` workers of its core,
//! each with one request in flight, and by WATCH streams up to the server's own limit.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use glommio::timer::sleep;

use crate::target::Target;
use crate::transport::{self, Http2Connection, Stream, TransportError};

/// Most requests kreplay puts on one HTTP/2 connection at once.
pub const H2_MAX_SLOTS: usize = 100;

/// An HTTP/2 connection and how many workers use it.
pub struct H2Shared {
    conn: Http2Connection,
    leases: Cell<usize>,
}

impl H2Shared {
    /// Room for one more worker: pool requests keep at most `H2_MAX_SLOTS` streams busy.
    fn has_free_slot(&self) -> bool {
        let limit = self.conn.max_concurrent_streams().clamp(1, H2_MAX_SLOTS);
        !self.conn.is_closed() && self.leases.get() < limit
    }

    /// Room for one more WATCH stream: up to the server's stream limit, like Go's client.
    fn has_free_stream(&self) -> bool {
        !self.conn.is_closed() && self.leases.get() < self.conn.max_concurrent_streams().max(1)
    }
}

/// A core's open HTTP/2 connections.
pub type H2Pool = RefCell<Vec<Rc<H2Shared>>>;

/// One worker's slot on a shared HTTP/2 connection (released on drop).
pub struct H2Lease(Rc<H2Shared>);

impl H2Lease {
    fn new(shared: &Rc<H2Shared>) -> H2Lease {
        shared.leases.set(shared.leases.get() + 1);
        H2Lease(shared.clone())
    }

    /// The connection.
    pub fn conn(&self) -> &Http2Connection {
        &self.0.conn
    }
}

impl Drop for H2Lease {
    fn drop(&mut self) {
        self.0.leases.set(self.0.leases.get().saturating_sub(1));
    }
}

/// An open connection (or HTTP/2 slot).
pub enum Conn {
    /// HTTP/1.1 over TCP or TLS.
    Http1(Stream),
    /// A slot on a shared HTTP/2 connection.
    Http2(H2Lease),
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

/// A free slot on one of the core's HTTP/2 connections, if any (closed ones are dropped).
pub fn lease_h2(pool: &H2Pool) -> Option<Conn> {
    let mut pool = pool.borrow_mut();
    pool.retain(|s| !s.conn.is_closed());
    pool.iter()
        .find(|s| s.has_free_slot())
        .map(|s| Conn::Http2(H2Lease::new(s)))
}

/// A free stream for a WATCH on one of the core's HTTP/2 connections, if any.
pub fn lease_h2_watch(pool: &H2Pool) -> Option<H2Lease> {
    let mut pool = pool.borrow_mut();
    pool.retain(|s| !s.conn.is_closed());
    pool.iter().find(|s| s.has_free_stream()).map(H2Lease::new)
}

/// Opens a connection to `target` (TCP_NODELAY; TLS for `https`; HTTP/2 when negotiated,
/// then shared through `pool`).
pub async fn connect(target: &Target, pool: &H2Pool) -> Result<Conn, ConnectError> {
    let stream = transport::connect(target.addr(), target.tls.clone())
        .await
        .map_err(connect_error)?;
    if stream.negotiated_alpn() == Some(b"h2".as_slice()) {
        let h2 = Http2Connection::handshake(stream, &target.host_header)
            .await
            .map_err(ConnectError::Transport)?;
        let shared = Rc::new(H2Shared {
            conn: h2,
            leases: Cell::new(0),
        });
        let lease = H2Lease::new(&shared);
        pool.borrow_mut().push(shared);
        return Ok(Conn::Http2(lease));
    }
    Ok(Conn::Http1(stream))
}

/// Gives `n` workers a connection each, every connect bounded by `timeout`; failures give
/// `None`. Over HTTP/2 workers take the free slots of open connections before another is
/// opened (each opening is a TLS handshake and a driver task); over HTTP/1.1 each worker
/// has its own connection, opened a few at a time.
pub(super) async fn prewarm(
    target: &Target,
    pool: &Rc<H2Pool>,
    n: usize,
    timeout: Duration,
) -> Vec<Option<Conn>> {
    let mut conns = Vec::with_capacity(n);
    while conns.len() < n {
        if let Some(c) = lease_h2(pool) {
            conns.push(Some(c));
            continue;
        }
        // One connection first tells the protocol (the preflight's, if any, is in the pool).
        let first = future::or(async { connect(target, pool).await.ok() }, async {
            sleep(timeout).await;
            None
        })
        .await;
        let h2 = matches!(first, Some(Conn::Http2(_)));
        conns.push(first);
        if !h2 {
            break;
        }
    }
    let done = conns.len();
    // Sequential connects would cost n round trips; a few at a time is enough on one core.
    for chunk_start in (done..n).step_by(32) {
        let k = (n - chunk_start).min(32);
        let tasks: Vec<_> = (0..k)
            .map(|_| {
                let t = target.clone();
                let pool = pool.clone();
                glommio::spawn_local(async move {
                    future::or(async { connect(&t, &pool).await.ok() }, async {
                        sleep(timeout).await;
                        None
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            conns.push(t.await);
        }
    }
    conns
}
