//! apisim: a Kubernetes API server simulator, the loopback target of kreplay's tests, demo and benchmarks.
//!
//! It serves HTTP/1.1 and HTTP/2 (TLS with ALPN, or h2c prior knowledge and HTTP/1.1 when plain), keeps
//! objects of any resource in memory under one global resourceVersion, and answers the verbs kperf
//! replays (GET, LIST, WATCH, CREATE, UPDATE, PATCH, APPLY, DELETE, DELETECOLLECTION) with apiserver
//! status codes and `Status` errors. It also records what arrived (order log, request log, metrics) and
//! injects faults. See bench/README.md for flags, endpoints and known differences from kube-apiserver.

mod body;
mod discovery;
mod faults;
mod handlers;
mod jobs;
mod metrics;
mod order_log;
pub mod patch;
pub mod path;
mod pki;
mod request_log;
mod seed;
pub mod selector;
mod server;
mod service;
mod status;
mod store;
mod table;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch as signal;

pub use faults::{parse_latency_flag, FaultConfig, LatencyRange, VERBS};
pub use jobs::{parse_pvc_flag, RunJobsConfig};
pub use order_log::{OrderEntry, OrderLog};
pub use seed::{load_seed_objects, SeedObject};

/// apisim's settings. `Default` is plain HTTP on 127.0.0.1 with a free port, token auth with a random
/// token, no faults.
#[derive(Debug, Clone)]
pub struct ApiSimConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Plain HTTP (h2c prior knowledge + HTTP/1.1) instead of TLS.
    pub plain: bool,
    /// Bearer token accepted; None generates a random one.
    pub token: Option<String>,
    /// Accept every request without credentials.
    pub no_auth: bool,
    /// Where to write the kubeconfig (mode 0600).
    pub kubeconfig_out: Option<PathBuf>,
    /// Where to write the server CA certificate (PEM).
    pub write_ca: Option<PathBuf>,
    /// Worker threads of the runtime `spawn` and the binary build (1 = current-thread runtime).
    pub threads: usize,
    /// Initial fault settings.
    pub faults: FaultConfig,
    /// Seed of the fault and name generators.
    pub seed: u64,
    /// Keep the last N requests for `/apisim/requests` (0 = off).
    pub record_requests: usize,
    /// Maximum entries of the order log (0 = off).
    pub order_log_limit: usize,
    /// Events kept for watches that resume from a resourceVersion.
    pub watch_history: usize,
    /// Interval between BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: u32,
    /// Carry out Indexed Jobs as local processes (`--run-jobs`); None = Jobs are plain objects.
    pub run_jobs: Option<RunJobsConfig>,
    /// Objects held at start and after `POST /apisim/reset` (`--seed-objects`).
    pub seed_objects: Vec<SeedObject>,
}

impl Default for ApiSimConfig {
    fn default() -> Self {
        ApiSimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            plain: true,
            token: None,
            no_auth: false,
            kubeconfig_out: None,
            write_ca: None,
            threads: 1,
            faults: FaultConfig::default(),
            seed: 0,
            record_requests: 0,
            order_log_limit: 1_000_000,
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(1),
            max_body_bytes: 3 * 1024 * 1024,
            max_concurrent_streams: 1000,
            run_jobs: None,
            seed_objects: Vec::new(),
        }
    }
}

/// Errors starting apisim.
#[derive(Debug, thiserror::Error)]
pub enum ApiSimError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// A file (kubeconfig, CA) could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Certificate or TLS setup failed.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The fault settings are out of range.
    #[error("invalid fault settings: {0}")]
    Faults(String),
    /// The job runner could not set up its pod directory.
    #[error("cannot set up --run-jobs: {0}")]
    Jobs(std::io::Error),
    /// The runtime or its thread could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(String),
}

/// State shared by all connections.
pub(crate) struct Shared {
    pub store: store::Store,
    /// Objects put back after every `POST /apisim/reset`.
    pub seed: Vec<seed::SeedObject>,
    pub faults: faults::Faults,
    pub metrics: metrics::Metrics,
    pub order: OrderLog,
    pub requests: request_log::RequestLog,
    /// None when `no_auth`.
    pub token: Option<String>,
    pub shutdown: signal::Receiver<bool>,
    pub seq: AtomicU64,
    pub in_flight: AtomicU64,
    pub server_address: String,
    pub bookmark_interval: Duration,
    pub max_body_bytes: usize,
    pub names: Mutex<ChaCha8Rng>,
    /// The job runner (`--run-jobs`).
    pub jobs: Option<jobs::Jobs>,
}

/// A running apisim.
pub struct ApiSimHandle {
    url: String,
    token: String,
    kubeconfig: Option<PathBuf>,
    shared: Arc<Shared>,
    stop: signal::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiSimHandle {
    /// Base URL (`http://127.0.0.1:PORT` or `https://...`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bearer token accepted (meaningless with `no_auth`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The kubeconfig written, when `kubeconfig_out` was set.
    pub fn kubeconfig_path(&self) -> Option<&Path> {
        self.kubeconfig.as_deref()
    }

    /// The order log (also served at `/apisim/order`).
    pub fn order_log(&self) -> &OrderLog {
        &self.shared.order
    }

    /// Stops accepting, ends watches and stalled requests, and lets connections close. When apisim
    /// runs on its own thread (`spawn`), waits for that thread.
    pub fn shutdown(mut self) {
        self.stop.send_replace(true);
        self.kill_pods();
        if let Some(thread) = self.thread.take() {
            // A panicked server thread has nothing more to clean up.
            let _ = thread.join();
        }
    }
}

impl ApiSimHandle {
    /// Ends every process `--run-jobs` started.
    fn kill_pods(&self) {
        if let Some(jobs) = &self.shared.jobs {
            jobs.kill_all();
        }
    }
}

impl Drop for ApiSimHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.kill_pods();
    }
}

/// Starts apisim on the current tokio runtime: binds, writes the kubeconfig/CA files, spawns the accept
/// loop, and returns once it accepts connections.
pub async fn serve(config: ApiSimConfig) -> Result<ApiSimHandle, ApiSimError> {
    config.faults.validate().map_err(ApiSimError::Faults)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ApiSimError::Bind {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ApiSimError::Bind {
        addr: config.listen,
        source,
    })?;
    let host = match local.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let scheme = if config.plain { "http" } else { "https" };
    let url = format!("{scheme}://{host}:{}", local.port());
    let token = config.token.clone().unwrap_or_else(random_token);

    let pki = if config.plain {
        None
    } else {
        Some(pki::Pki::generate(Some(local.ip()))?)
    };
    let tls = match &pki {
        Some(pki) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
            pki.server_config()?,
        ))),
        None => None,
    };
    if let (Some(path), Some(pki)) = (&config.write_ca, &pki) {
        std::fs::write(path, &pki.ca_pem).map_err(|source| ApiSimError::Write {
            path: path.clone(),
            source,
        })?;
    }
    if let Some(path) = &config.kubeconfig_out {
        pki::write_private_file(path, &pki::kubeconfig_yaml(&url, pki.as_ref(), &token))?;
    }

    let jobs = match &config.run_jobs {
        Some(run_jobs) => Some(
            jobs::Jobs::new(
                run_jobs.clone(),
                local.port(),
                token.clone(),
                pki.as_ref().map(|pki| pki.ca_pem.clone()),
            )
            .map_err(ApiSimError::Jobs)?,
        ),
        None => None,
    };
    let (stop, shutdown) = signal::channel(false);
    let shared = Arc::new(Shared {
        store: store::Store::new(config.watch_history),
        seed: config.seed_objects.clone(),
        faults: faults::Faults::new(config.faults.clone(), config.seed),
        metrics: metrics::Metrics::default(),
        order: OrderLog::new(config.order_log_limit),
        requests: request_log::RequestLog::new(config.record_requests),
        token: (!config.no_auth).then(|| token.clone()),
        shutdown,
        seq: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        server_address: format!("{host}:{}", local.port()),
        bookmark_interval: config.bookmark_interval,
        max_body_bytes: config.max_body_bytes,
        names: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed ^ 0x6e61_6d65)),
        jobs,
    });
    seed::apply_seed(&shared.store, &shared.seed);
    if shared.jobs.is_some() {
        tokio::spawn(jobs::run_controller(shared.clone()));
    }
    tokio::spawn(server::accept_loop(
        listener,
        tls,
        shared.clone(),
        config.max_concurrent_streams,
    ));
    Ok(ApiSimHandle {
        url,
        token,
        kubeconfig: config.kubeconfig_out.clone(),
        shared,
        stop,
        thread: None,
    })
}

/// Builds the runtime `config.threads` asks for (1 = current-thread).
pub fn build_runtime(threads: usize) -> Result<tokio::runtime::Runtime, ApiSimError> {
    let built = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    built.map_err(|e| ApiSimError::Runtime(e.to_string()))
}

/// Starts apisim on its own thread and runtime; `shutdown()` stops it and joins the thread.
pub fn spawn(config: ApiSimConfig) -> Result<ApiSimHandle, ApiSimError> {
    let runtime = build_runtime(config.threads)?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("apisim".to_string())
        .spawn(move || {
            runtime.block_on(async move {
                match serve(config).await {
                    Ok(handle) => {
                        let mut stopped = handle.stop.subscribe();
                        let _ = ready_tx.send(Ok(handle));
                        // Serve until the handle asks to stop, then give connections a moment to close.
                        let _ = stopped.wait_for(|stop| *stop).await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            });
        })
        .map_err(|e| ApiSimError::Runtime(e.to_string()))?;
    let mut handle = ready_rx.recv().map_err(|_| {
        ApiSimError::Runtime("the apisim thread ended before starting".to_string())
    })??;
    handle.thread = Some(thread);
    Ok(handle)
}

fn random_token() -> String {
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect()
}
