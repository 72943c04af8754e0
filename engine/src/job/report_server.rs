//! The runner's side of collection: while a runner pod replays, and after, it serves its state and,
//! once written, its report over HTTP, so `engine job collect` can fetch it through the API
//! server's pod proxy with nothing but a kubeconfig. The report stays available until the
//! collector says it has it (`POST /collected`) or `--serve-report-for` runs out: a report is
//! never lost to a pod that exited before anyone read it.
//!
//! Endpoints: `GET /status` (JSON: `state` `running` | `done`, `exitCode`, `sha256`, `bytes`),
//! `GET /report` (the report's JSON, `X-Kreplay-Sha256` header; 409 while running),
//! `POST /collected` (ends the wait). Control path only: it never touches the replay's hot path.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;

use crate::source::fetch::sha256_hex;

/// The header that carries the report's SHA-256 (lower-case hex).
pub const DIGEST_HEADER: &str = "x-kreplay-sha256";

#[derive(Default)]
struct State {
    report: Option<(Bytes, String, i32)>,
}

struct Shared {
    state: Mutex<State>,
    collected: Notify,
}

/// A running report server (a thread of its own with a current-thread tokio runtime).
pub struct ReportServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
}

/// Why the report server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve the report on {addr}: {source}")]
pub struct ServeError {
    addr: SocketAddr,
    source: std::io::Error,
}

impl ReportServer {
    /// Binds `addr` and starts answering `GET /status` (`running`) at once.
    pub fn start(addr: SocketAddr) -> Result<ReportServer, ServeError> {
        let fail = |source| ServeError { addr, source };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kreplay-report-server")
            .enable_all()
            .build()
            .map_err(fail)?;
        let std_listener = std::net::TcpListener::bind(addr).map_err(fail)?;
        std_listener.set_nonblocking(true).map_err(fail)?;
        let bound = std_listener.local_addr().map_err(fail)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            collected: Notify::new(),
        });
        let accept_shared = shared.clone();
        let _guard = runtime.enter();
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(fail)?;
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(answer(&shared, req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(ReportServer {
            shared,
            addr: bound,
            runtime,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes the report (and the exit code the runner will end with), then waits until the
    /// collector confirms it has it, `wait` runs out, or `stop` is set (a signal). Returns whether
    /// the report was collected.
    pub fn publish_and_wait(
        &self,
        report: String,
        exit_code: i32,
        wait: Duration,
        stop: &std::sync::atomic::AtomicBool,
    ) -> bool {
        let digest = sha256_hex(report.as_bytes());
        if let Ok(mut state) = self.shared.state.lock() {
            state.report = Some((Bytes::from(report), digest, exit_code));
        }
        let shared = self.shared.clone();
        let deadline = tokio::time::Instant::now() + wait;
        self.runtime.block_on(async move {
            loop {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return false;
                }
                let tick = tokio::time::sleep(Duration::from_millis(100));
                tokio::select! {
                    _ = shared.collected.notified() => return true,
                    _ = tick => {}
                }
                if tokio::time::Instant::now() >= deadline {
                    return false;
                }
            }
        })
    }
}

fn answer(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let state = match shared.state.lock() {
        Ok(s) => s.report.clone(),
        Err(_) => None,
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/status") => {
            let body = match &state {
                None => serde_json::json!({ "state": "running" }),
                Some((report, digest, code)) => serde_json::json!({
                    "state": "done",
                    "exitCode": code,
                    "sha256": digest,
                    "bytes": report.len(),
                }),
            };
            json(StatusCode::OK, body.to_string())
        }
        (&Method::GET, "/report") => match state {
            None => json(
                StatusCode::CONFLICT,
                r#"{"state":"running","message":"the replay has not finished"}"#.into(),
            ),
            Some((report, digest, _)) => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header(DIGEST_HEADER, digest)
                .body(Full::new(report))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
        },
        (&Method::POST, "/collected") => {
            if state.is_none() {
                return json(
                    StatusCode::CONFLICT,
                    r#"{"message":"no report yet"}"#.into(),
                );
            }
            shared.collected.notify_one();
            json(StatusCode::OK, r#"{"state":"collected"}"#.into())
        }
        _ => json(StatusCode::NOT_FOUND, r#"{"message":"not found"}"#.into()),
    }
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
