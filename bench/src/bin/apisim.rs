//! apisim: a Kubernetes API server simulator for kreplay's tests, demo and benchmarks.
//! Prints `listening on <url>` on stdout once ready; stops on SIGINT/SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use bench::apisim::{self, load_seed_objects, parse_latency_flag, ApiSimConfig, FaultConfig};
use clap::Parser;
use preprocess::duration::parse_positive_duration;

// glibc malloc showed up in apisim's profile at high request rates; mimalloc is cheaper per
// request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Kubernetes API server simulator (in-memory store, watches, fault injection).
#[derive(Debug, Parser)]
#[command(name = "apisim", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Plain HTTP (h2c prior knowledge + HTTP/1.1) instead of TLS.
    #[arg(long)]
    plain: bool,
    /// Write a kubeconfig here (mode 0600).
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: Option<PathBuf>,
    /// Write the server CA certificate (PEM) here.
    #[arg(long, value_name = "FILE")]
    write_ca: Option<PathBuf>,
    /// Bearer token to accept (default: random).
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// Accept requests without credentials.
    #[arg(long)]
    no_auth: bool,
    /// Runtime worker threads (1 = current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seed of the fault and generated-name generators.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep the last N requests for /apisim/requests (0 = off).
    #[arg(long, value_name = "N", default_value_t = 0)]
    record_requests: usize,
    /// Maximum entries of the order log (0 = off).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    order_log_limit: usize,
    /// Events kept for watches resuming from a resourceVersion.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    watch_history: usize,
    /// Time between BOOKMARK events on watches that allow them (Go form: `1s`, `250ms`).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_positive_duration)]
    bookmark_interval: Duration,
    /// Objects to hold at start and after `POST /apisim/reset` (YAML/JSON list or `kind: List`).
    #[arg(long, value_name = "FILE")]
    seed_objects: Option<PathBuf>,
    /// More log output: -v info, -vv debug (RUST_LOG, when set, wins).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Largest request body accepted, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 3 * 1024 * 1024)]
    max_body_bytes: usize,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_concurrent_streams: u32,
    /// Added latency: VERB=DURATION or VERB=MIN..MAX (`GET=300ms`, `*=0..3ms`; VERB may be *); repeatable.
    #[arg(long, value_name = "VERB=DURATION[..MAX]")]
    latency: Vec<String>,
    /// Fraction of API requests answered 429.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    throttle_fraction: f64,
    /// Answer the first N API requests (watches excluded) 429, then stop throttling.
    #[arg(long, value_name = "N")]
    throttle_first: Option<u64>,
    /// Retry-After seconds on 429s.
    #[arg(long, value_name = "S")]
    retry_after: Option<u32>,
    /// Requests in flight allowed (watches excluded); more are answered 429.
    #[arg(long, value_name = "N")]
    max_in_flight: Option<u64>,
    /// Fraction of API requests answered 500.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    error_fraction: f64,
    /// Fraction of API requests never answered (until shutdown); 1 stalls all.
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    stall_fraction: f64,
    /// Close each connection after N requests.
    #[arg(long, value_name = "N")]
    close_after: Option<u64>,
    /// Send HTTP/2 GOAWAY after N streams on each connection.
    #[arg(long, value_name = "N")]
    goaway_after: Option<u64>,
    /// Read nothing from a new connection for this long after its TLS handshake (Go's
    /// duration form: `1500ms`, `2s`).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    read_delay: Option<std::time::Duration>,
    /// Carry out Indexed batch/v1 Jobs: each index runs as a local process of ENTRYPOINT (a container's
    /// command[0] resolves by its basename in ENTRYPOINT's directory).
    #[arg(long, value_name = "ENTRYPOINT")]
    run_jobs: Option<PathBuf>,
    /// Map a PersistentVolumeClaim to a host directory for --run-jobs pods; repeatable.
    #[arg(long, value_name = "NAME=DIR", requires = "run_jobs")]
    pvc: Vec<String>,
    /// Make the directory of the --run-jobs pod directories here (default: the system's temp directory).
    #[arg(long, value_name = "DIR", requires = "run_jobs")]
    pods_dir: Option<PathBuf>,
}

impl Args {
    fn config(&self) -> anyhow::Result<ApiSimConfig> {
        let mut faults = FaultConfig {
            throttle_fraction: self.throttle_fraction,
            throttle_first: self.throttle_first,
            retry_after_seconds: self.retry_after,
            max_in_flight: self.max_in_flight,
            error_fraction: self.error_fraction,
            stall_fraction: self.stall_fraction,
            close_after_requests: self.close_after,
            goaway_after_streams: self.goaway_after,
            read_delay_ms: self
                .read_delay
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)),
            ..FaultConfig::default()
        };
        for spec in &self.latency {
            let (verb, range) = parse_latency_flag(spec).map_err(anyhow::Error::msg)?;
            faults.latency.insert(verb, range);
        }
        faults.validate().map_err(anyhow::Error::msg)?;
        let run_jobs = match &self.run_jobs {
            Some(entrypoint) => {
                let entrypoint = std::path::absolute(entrypoint).with_context(|| {
                    format!(
                        "--run-jobs {}: cannot resolve the path",
                        entrypoint.display()
                    )
                })?;
                if !entrypoint.is_file() {
                    anyhow::bail!(
                        "--run-jobs {}: not a file (expected the binary that stands in for the \
                         image's entrypoint)",
                        entrypoint.display()
                    );
                }
                let mut pvcs = std::collections::BTreeMap::new();
                for spec in &self.pvc {
                    let (name, dir) = apisim::parse_pvc_flag(spec).map_err(anyhow::Error::msg)?;
                    let dir = std::path::absolute(&dir)
                        .with_context(|| format!("--pvc {spec}: cannot resolve the path"))?;
                    if !dir.is_dir() {
                        anyhow::bail!("--pvc {spec}: {} is not a directory", dir.display());
                    }
                    pvcs.insert(name, dir);
                }
                Some(apisim::RunJobsConfig {
                    entrypoint,
                    pvcs,
                    pods_dir: self.pods_dir.clone(),
                })
            }
            None => None,
        };
        Ok(ApiSimConfig {
            listen: self.listen,
            plain: self.plain,
            token: self.token.clone(),
            no_auth: self.no_auth,
            kubeconfig_out: self.kubeconfig_out.clone(),
            write_ca: self.write_ca.clone(),
            threads: self.threads,
            faults,
            seed: self.seed,
            record_requests: self.record_requests,
            order_log_limit: self.order_log_limit,
            watch_history: self.watch_history,
            bookmark_interval: self.bookmark_interval,
            seed_objects: match &self.seed_objects {
                Some(path) => load_seed_objects(path).map_err(anyhow::Error::msg)?,
                None => Vec::new(),
            },
            max_body_bytes: self.max_body_bytes,
            max_concurrent_streams: self.max_concurrent_streams,
            run_jobs,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(preprocess::verbosity::log_level(args.verbose))
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = args.config()?;
    let runtime = apisim::build_runtime(config.threads)?;
    runtime.block_on(async move {
        let handle = apisim::serve(config)
            .await
            .context("apisim failed to start")?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "listening on {}", handle.url())?;
        stdout.flush()?;
        wait_for_signal().await?;
        handle.shutdown();
        // Let connections finish their graceful close (watches and stalls end on shutdown).
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot wait for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
