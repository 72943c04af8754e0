//! A connection to the target: HTTP/1.1 on a plain or TLS stream, or a stream on an
//! HTTP/2 connection when the server chose `h2` in the TLS handshake. A core's HTTP/2
//! connections are a pool: each request or WATCH takes a stream on the connection with the
//! fewest in flight, up to the server's stream limit.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use glommio::timer::sleep;

use crate::target::Target;
use crate::transport::{self, Http2Connection, Stream, TransportError};

/// An HTTP/2 connection and how many streams (requests, WATCHes) it carries now.
pub struct H2Shared {
    conn: Http2Connection,
    leases: Cell<usize>,
}

impl H2Shared {
    /// Room for one more stream, up to the server's limit (as Go's client).
    fn has_free_stream(&self) -> bool {
        !self.conn.is_closed() && self.leases.get() < self.conn.max_concurrent_streams().max(1)
    }
}

thread_local! {
    /// Most streams seen at once on one HTTP/2 connection of this core (each core is a thread).
    static PEAK_STREAMS: Cell<usize> = const { Cell::new(0) };
    /// Where this core's next search for a connection with the fewest streams starts.
    static NEXT_CONNECTION: Cell<usize> = const { Cell::new(0) };
}

/// The most streams seen at once on one HTTP/2 connection of this thread's core since the
/// last call; resets it.
pub fn take_peak_streams() -> usize {
    PEAK_STREAMS.with(|p| p.replace(0))
}

/// Notes that an HTTP/2 connection of this thread's core carries `streams` streams now.
pub fn note_streams(streams: usize) {
    PEAK_STREAMS.with(|p| p.set(p.get().max(streams)));
}

/// A core's open HTTP/2 connections.
pub type H2Pool = RefCell<Vec<Rc<H2Shared>>>;

/// One worker's lease of a stream on a shared HTTP/2 connection (released on drop).
pub struct H2Lease(Rc<H2Shared>);

impl H2Lease {
    fn new(shared: &Rc<H2Shared>) -> H2Lease {
        let streams = shared.leases.get() + 1;
        shared.leases.set(streams);
        note_streams(streams);
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

/// An open connection (or a lease of an HTTP/2 stream).
pub enum Conn {
    /// HTTP/1.1 over TCP or TLS.
    Http1(Stream),
    /// A stream lease on a shared HTTP/2 connection.
    Http2(H2Lease),
}

/// What a prewarm for the core's loop opened: a connection, or a TLS connection whose server
/// chose HTTP/2, its HTTP/2 handshake left to the loop (which drives its HTTP/2 connections
/// itself).
enum Opened {
    Conn(Conn),
    Http2Socket(Stream),
}

/// The connections opened before the start.
pub(super) struct Prewarmed {
    /// HTTP/1.1 connections, one per worker or ring slot (`None`: not opened, or the worker of
    /// a pool HTTP/2 connection, which leases a stream per request).
    pub(super) conns: Vec<Option<Conn>>,
    /// TLS connections whose server chose HTTP/2, for the core's loop.
    pub(super) h2_sockets: Vec<Stream>,
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

/// A stream on the core's HTTP/2 connection with the fewest streams in flight that has
/// room for one more, if any (closed connections are dropped from the pool).
pub fn lease_h2(pool: &H2Pool) -> Option<Conn> {
    lease_h2_watch(pool).map(Conn::Http2)
}

/// Like [`lease_h2`], as the lease itself (a WATCH keeps it for its whole life).
pub fn lease_h2_watch(pool: &H2Pool) -> Option<H2Lease> {
    let mut pool = pool.borrow_mut();
    pool.retain(|s| !s.conn.is_closed());
    let n = pool.len();
    // Ties go round: a paced replay, whose connections are all idle at each request, still
    // spreads its requests over every connection (as kperf's round robin over its clients).
    let start = NEXT_CONNECTION.with(Cell::get) % n.max(1);
    let mut best: Option<usize> = None;
    for k in 0..n {
        let i = (start + k) % n;
        let s = &pool[i];
        if s.has_free_stream() && best.is_none_or(|b| s.leases.get() < pool[b].leases.get()) {
            best = Some(i);
        }
    }
    let i = best?;
    NEXT_CONNECTION.with(|c| c.set(i + 1));
    Some(H2Lease::new(&pool[i]))
}

/// Opens a connection to `target` (TCP_NODELAY; TLS for `https`; HTTP/2 when negotiated,
/// then shared through `pool`).
pub async fn connect(target: &Target, pool: &H2Pool) -> Result<Conn, ConnectError> {
    connect_to(target, Some(pool)).await
}

/// Opens a connection to `target` for the core's loop: like [`connect`], but a connection
/// whose server chose HTTP/2 comes back before its HTTP/2 handshake.
async fn connect_for_loop(target: &Target) -> Result<Opened, ConnectError> {
    let stream = transport::connect(target.addr(), target.tls.clone())
        .await
        .map_err(connect_error)?;
    if stream.negotiated_alpn() == Some(b"h2".as_slice()) {
        return Ok(Opened::Http2Socket(stream));
    }
    Ok(Opened::Conn(Conn::Http1(stream)))
}

/// Opens a connection to `target` for one user only (a WATCH with a connection of its own):
/// an HTTP/2 connection is not shared through the pool.
pub async fn connect_own(target: &Target) -> Result<Conn, ConnectError> {
    connect_to(target, None).await
}

async fn connect_to(target: &Target, pool: Option<&H2Pool>) -> Result<Conn, ConnectError> {
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
        if let Some(pool) = pool {
            pool.borrow_mut().push(shared);
        }
        return Ok(Conn::Http2(lease));
    }
    Ok(Conn::Http1(stream))
}

/// Opens `n` connections, every connect bounded by `timeout`; failures give `None`. Over
/// HTTP/1.1 each is a worker's (one request at a time). Over HTTP/2, `for_loop`: each is a
/// socket the core's loop runs HTTP/2 on (`h2_sockets`); otherwise they go into the pool,
/// where requests take streams on the one with the fewest in flight, and the workers
/// returned hold no stream (`None`: they lease one per request).
pub(super) async fn prewarm(
    target: &Target,
    pool: &Rc<H2Pool>,
    n: usize,
    timeout: Duration,
    for_loop: bool,
) -> Prewarmed {
    let open = |target: Target, pool: Rc<H2Pool>| async move {
        if for_loop {
            bounded(connect_for_loop(&target), timeout).await
        } else {
            // An HTTP/2 connection of the pool is there; its worker leases per request.
            bounded(connect(&target, &pool), timeout)
                .await
                .filter(|c| !matches!(c, Conn::Http2(_)))
                .map(Opened::Conn)
        }
    };
    let mut opened = Vec::with_capacity(n);
    let mut done = 0;
    if n > 0 && pool.borrow().is_empty() {
        // One connection first tells the protocol (the preflight's, if any, is in the pool).
        opened.push(open(target.clone(), pool.clone()).await);
        done = 1;
    }
    // Sequential connects would cost n round trips; a few at a time is enough on one core.
    for chunk_start in (done..n).step_by(32) {
        let k = (n - chunk_start).min(32);
        let tasks: Vec<_> = (0..k)
            .map(|_| glommio::spawn_local(open(target.clone(), pool.clone())))
            .collect();
        for t in tasks {
            opened.push(t.await);
        }
    }
    let mut prewarmed = Prewarmed {
        conns: Vec::with_capacity(n),
        h2_sockets: Vec::new(),
    };
    for o in opened {
        match o {
            Some(Opened::Http2Socket(stream)) => prewarmed.h2_sockets.push(stream),
            Some(Opened::Conn(c)) => prewarmed.conns.push(Some(c)),
            None => prewarmed.conns.push(None),
        }
    }
    prewarmed
}

/// `connecting`, or `None` once `timeout` has passed or it failed.
async fn bounded<T>(
    connecting: impl std::future::Future<Output = Result<T, ConnectError>>,
    timeout: Duration,
) -> Option<T> {
    future::or(async { connecting.await.ok() }, async {
        sleep(timeout).await;
        None
    })
    .await
}
