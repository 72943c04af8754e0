//! The `engine` command line: `engine run TIMELINE --server URL [...]`,
//! `engine compare BASE NEW [...]` and `engine merge R0 R1 ... -o OUT`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::clock::TimingMode;

/// kreplay's replay engine.
#[derive(Debug, Parser)]
#[command(
    name = "engine",
    version,
    about = "Replays a kreplay timeline against a Kubernetes API server"
)]
pub struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace (RUST_LOG, when set, wins).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a timeline (made by `preprocess`) at its recorded instants.
    Run(Box<RunArgs>),
    /// Compare two reports side by side; exit 1 when a threshold is crossed, 2 on unusable input.
    Compare(CompareArgs),
    /// Merge the reports of distributed runners exactly, from their histograms.
    Merge(MergeArgs),
    /// Distributed replays on Kubernetes: an Indexed Job of runners, collected and merged.
    Job {
        /// What to do.
        #[command(subcommand)]
        command: Box<crate::job::args::JobCommand>,
    },
    /// Summarise a saved report (a run's, a merged one, or kperf's); `--html` plots it.
    Report(ReportArgs),
}

/// `engine report` options.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report (kreplay's or kperf's JSON).
    pub report: PathBuf,
    /// Also write one self-contained HTML page of plots and tables here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `engine compare` options.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// `BASE NEW`, or only `NEW` with `--base` (kreplay's or kperf's JSON reports).
    #[arg(required = true, num_args = 1..=2, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// A base report (repeatable): several bases are compared by their spread.
    #[arg(long = "base", value_name = "REPORT")]
    pub bases: Vec<PathBuf>,
    /// Fail when this threshold is crossed (repeatable): `p50(LIST)>20%` (change from the
    /// base), `p99(GET)>200ms`, `max>2s`, `error_rate>0.1%`, `lag_p99>1ms`.
    #[arg(long = "fail-on", value_name = "EXPR", value_parser = parse_gate)]
    pub fail_on: Vec<crate::gate::Gate>,
    /// Compare reports of different timelines or speeds.
    #[arg(long)]
    pub force: bool,
    /// Output: the table (text), or the verdicts as JSON or JUnit XML (on stdout).
    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    pub format: CompareFormat,
    /// Largest allowed p99 latency regression, (new − base) / base (default 10%).
    #[arg(long, value_parser = crate::compare::thresholds::parse_percent)]
    pub max_p99_regression: Option<f64>,
    /// Largest allowed p99 send lag of the new run (`200us`, `1ms`); kreplay reports only.
    #[arg(long, value_parser = parse_duration)]
    pub max_lag_p99: Option<Duration>,
    /// Largest allowed error rate (failed / run) of the new run (`0.1%`).
    #[arg(long, value_parser = crate::compare::thresholds::parse_percent)]
    pub max_error_rate: Option<f64>,
    /// Also show one group per metric key (server URL removed); display only.
    #[arg(long)]
    pub per_url: bool,
    /// Thresholds file (YAML); flags beat it.
    #[arg(long)]
    pub thresholds: Option<PathBuf>,
}

/// `engine compare --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// The side-by-side table with a check column.
    Text,
    /// The verdicts as JSON.
    Json,
    /// The verdicts as a JUnit XML test suite.
    Junit,
}

impl CompareArgs {
    /// The base reports and the report under test, or why the arguments do not say.
    pub fn base_and_new(&self) -> Result<(Vec<PathBuf>, PathBuf), String> {
        match (self.reports.as_slice(), self.bases.is_empty()) {
            ([base, new], true) => Ok((vec![base.clone()], new.clone())),
            ([new], false) => Ok((self.bases.clone(), new.clone())),
            ([_], true) => Err("give BASE NEW, or NEW with --base BASE".into()),
            _ => Err("with --base, give only the NEW report".into()),
        }
    }
}

/// `engine merge` options.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Reports of `engine run` (one per runner).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Where to write the merged report.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Merge reports of different timelines or speeds, or the same runner twice.
    #[arg(long)]
    pub force: bool,
}

/// `--timing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimingArg {
    /// Sleep until a margin before each due instant, calibrated from the core's own wake-ups,
    /// then spin (1 ns timer slack).
    Precise,
    /// Sleep only: cheaper, tens of µs late.
    Relaxed,
}

impl From<TimingArg> for TimingMode {
    fn from(t: TimingArg) -> TimingMode {
        match t {
            TimingArg::Precise => TimingMode::Precise,
            TimingArg::Relaxed => TimingMode::Relaxed,
        }
    }
}

/// `--retries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetryArg {
    /// The first answer is the outcome.
    None,
    /// client-go's rule: 429/5xx with an integer `Retry-After`, up to 10 retries.
    ClientGo,
}

/// `--watch-connections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchConnectionsArg {
    /// kperf's rule: the first connsPerRunner WATCHes of a runner share, later ones own one.
    Kperf,
    /// Every WATCH is a stream on a pool connection (HTTP/2) when one has room.
    Shared,
    /// Every WATCH opens a connection of its own.
    Own,
}

/// `--watch-executor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchExecutorArg {
    /// One executor for every WATCH, at the lowest CPU priority, with its own connections.
    Separate,
    /// Each core holds the WATCHes of its runs.
    Cores,
}

impl From<WatchExecutorArg> for crate::run::WatchExecutor {
    fn from(a: WatchExecutorArg) -> Self {
        match a {
            WatchExecutorArg::Separate => crate::run::WatchExecutor::Separate,
            WatchExecutorArg::Cores => crate::run::WatchExecutor::Cores,
        }
    }
}

impl From<RetryArg> for crate::run::RetryPolicy {
    fn from(r: RetryArg) -> Self {
        match r {
            RetryArg::None => crate::run::RetryPolicy::None,
            RetryArg::ClientGo => crate::run::RetryPolicy::ClientGo,
        }
    }
}

impl From<WatchConnectionsArg> for crate::run::WatchConnections {
    fn from(w: WatchConnectionsArg) -> Self {
        match w {
            WatchConnectionsArg::Kperf => crate::run::WatchConnections::Kperf,
            WatchConnectionsArg::Shared => crate::run::WatchConnections::Shared,
            WatchConnectionsArg::Own => crate::run::WatchConnections::Own,
        }
    }
}

/// `--metric-base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricBase {
    /// kperf's keys: `"<METHOD> <server URL><path>"`.
    Url,
    /// `"<METHOD> <path>"`: keys match across servers (kperf weakness 22).
    None,
}

/// `engine run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Timeline file written by `preprocess`, or an http(s) URL to download it from.
    pub timeline: PathBuf,
    /// The timeline's SHA-256: a downloaded timeline is refused unless it matches.
    #[arg(long, value_name = "HEX")]
    pub timeline_sha256: Option<String>,
    /// Where a timeline given as a URL is downloaded (mode 0600).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub download_dir: PathBuf,
    /// Serve the run's state and then its report on this address until collected
    /// (`engine job` runners; see docs/distributed.md).
    #[arg(long, value_name = "ADDR", env = "KREPLAY_SERVE_REPORT")]
    pub serve_report: Option<std::net::SocketAddr>,
    /// How long --serve-report keeps the report for collection.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub serve_report_for: Duration,
    /// API server URL, `https://HOST[:PORT][/PATH]` or `http://…` (instead of a kubeconfig), as kubectl's `--server`.
    #[arg(long, conflicts_with = "kubeconfig")]
    pub server: Option<String>,
    /// Bearer token for `--server` (kubectl's `--token`); never printed.
    #[arg(long, requires = "server", hide_env_values = true)]
    pub token: Option<String>,
    /// CA bundle (PEM) to check an `https` `--server` against (kubectl's flag); default: public roots.
    #[arg(long, requires = "server", value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,
    /// Do not check the `https` `--server`'s certificate (kubectl's flag; tests only).
    #[arg(long, requires = "server")]
    pub insecure_skip_tls_verify: bool,
    /// Kubeconfig for cluster access (TLS, credentials); default: KUBECONFIG, ~/.kube/config, in-cluster.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: its current-context).
    #[arg(long, conflicts_with = "server")]
    pub context: Option<String>,
    /// Write the JSON report here (parent directories are created); `-` for stdout (kperf's
    /// habit); default `kreplay-report-<UTC time>.json` in the current directory.
    #[arg(long)]
    pub result: Option<PathBuf>,
    /// Add kperf's `errors` and `latenciesByURL` (keeps every latency in memory).
    #[arg(long)]
    pub raw_data: bool,
    /// Replay only this runner's partition (kperf `runner replay`); beats JOB_COMPLETION_INDEX.
    #[arg(long, allow_negative_numbers = true)]
    pub runner_index: Option<i64>,
    /// Executors, one pinned per CPU (default: one per CPU of --cpus or of the affinity mask).
    #[arg(long, default_value_t = 0)]
    pub cores: usize,
    /// CPUs to pin the executors to, e.g. `2,3` or `4-7` (default: this process's affinity mask).
    #[arg(long, value_name = "LIST", value_parser = crate::cpu_set::parse_cpu_list)]
    pub cpus: Option<std::vec::Vec<usize>>,
    /// Serve Prometheus (OpenMetrics text) exposition on this address during the run
    /// (`127.0.0.1:9464`; port 0 picks one, printed on stderr).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Allow --cores above the CPUs available: executors share CPUs round robin (lag suffers).
    #[arg(long)]
    pub share_cpus: bool,
    /// Pool connections in total (default: connsPerRunner × replayed runners; at least 1 per core).
    #[arg(long)]
    pub conns: Option<usize>,
    /// Connection cap in total when every connection is busy (default: 4 × conns).
    #[arg(long)]
    pub max_conns: Option<usize>,
    /// Requests in flight in total before a due request waits for a connection (default:
    /// the larger of --max-conns and kperf's max(clientsPerRunner, connsPerRunner) × runners;
    /// at least --conns). Over HTTP/1.1 the pool grows its connections up to it on demand.
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Retry 429 and 5xx answers that carry `Retry-After` as client-go does (`client-go`: up
    /// to 10 times, waiting the seconds it says), or record the first answer (`none`).
    #[arg(long, value_enum, default_value_t = RetryArg::None)]
    pub retries: RetryArg,
    /// WATCH connections: `kperf` (the first connsPerRunner WATCHes of a runner share pool
    /// connections, later ones get their own), `shared` (all share) or `own` (one each).
    #[arg(long, value_enum, default_value_t = WatchConnectionsArg::Kperf)]
    pub watch_connections: WatchConnectionsArg,
    /// Where WATCHes run: `separate` (one executor of their own, at the lowest CPU priority,
    /// with connections of its own: requests never wait behind them) or `cores` (each core
    /// holds its runs' WATCHes beside its requests).
    #[arg(long, value_enum, default_value_t = WatchExecutorArg::Separate)]
    pub watch_executor: WatchExecutorArg,
    /// CPUs the WATCH executor may use, e.g. `0` (default: the CPUs of --cpus or of the
    /// affinity mask that no core uses, else the cores'). It runs at the lowest priority.
    #[arg(long, value_name = "LIST", value_parser = crate::cpu_set::parse_cpu_list)]
    pub watch_cpus: Option<std::vec::Vec<usize>>,
    /// Replay speed: 2 replays twice as fast.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// How the scheduler waits for due instants.
    #[arg(long, value_enum, default_value_t = TimingArg::Precise)]
    pub timing: TimingArg,
    /// Start the timeline at this wall-clock instant: RFC 3339 or unix milliseconds (default: now).
    #[arg(long, value_parser = parse_start_at)]
    pub start_at: Option<SystemTime>,
    /// Per-request timeout, as Go writes durations (`60s`, `1m30s`, `1.5s`, `500ms`).
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// After Ctrl-C / SIGTERM, time given to requests in flight.
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration)]
    pub grace: Duration,
    /// Longest an exec credential plugin may run before the engine gives up on it.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    pub exec_timeout: Duration,
    /// User-Agent header (kperf sends client-go's, e.g. `kperf/v0.0.0 (linux/amd64) kubernetes/$Format`).
    #[arg(long, default_value = concat!("kreplay/", env!("CARGO_PKG_VERSION")), value_parser = parse_user_agent)]
    pub user_agent: String,
    /// Whether metric keys include the server URL.
    #[arg(long, value_enum, default_value_t = MetricBase::Url)]
    pub metric_base: MetricBase,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Offer only HTTP/1.1 in TLS (as the profile's `disableHTTP2: true` does).
    #[arg(long)]
    pub http1: bool,
    /// Exit 1 when this threshold is crossed (repeatable): `error_rate>0.1%`, `p99(GET)>200ms`,
    /// `lag_p99>1ms`, `max>2s`, `rate<900`; a ✓/✗ line per threshold. A run in which every
    /// request failed always exits 1.
    #[arg(long = "fail-on", value_name = "EXPR", value_parser = parse_gate)]
    pub fail_on: Vec<crate::gate::Gate>,
    /// Skip the `GET /version` check each core makes before the start (a wrong CA, a
    /// 401/403 or an unreachable server then shows up as failed requests instead).
    #[arg(long)]
    pub no_preflight: bool,
}

pub use preprocess::duration::{parse_duration, parse_positive_duration};

/// A `--fail-on` expression (see [`crate::gate`]).
pub fn parse_gate(s: &str) -> Result<crate::gate::Gate, String> {
    s.parse()
}

/// A `--user-agent` that can be a header value (no CR, LF or other control characters).
pub fn parse_user_agent(s: &str) -> Result<String, String> {
    crate::http1::user_agent_header(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// Parses an RFC 3339 instant or unix milliseconds.
pub fn parse_start_at(s: &str) -> Result<SystemTime, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let ms: u64 = t
            .parse()
            .map_err(|_| format!("unix milliseconds {s:?} out of range"))?;
        return UNIX_EPOCH
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| format!("unix milliseconds {s:?} out of range"));
    }
    let dt = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("invalid --start-at {s:?} ({e}): use RFC 3339 (2026-01-02T15:04:05Z) or unix milliseconds"))?;
    let nanos = dt.unix_timestamp_nanos();
    let since = u64::try_from(nanos).map_err(|_| format!("--start-at {s:?} is before 1970"))?;
    Ok(UNIX_EPOCH + Duration::from_nanos(since))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_take_go_forms() {
        let timeout = |t: &str| {
            Cli::try_parse_from(["engine", "run", "t", "--server", "http://x", "--timeout", t]).map(
                |cli| match cli.command {
                    Command::Run(a) => a.timeout,
                    _ => unreachable!(),
                },
            )
        };
        assert_eq!(timeout("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(timeout("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(timeout("90").is_err(), "a unit-less number is refused");
        assert!(timeout("0s").is_err(), "a zero timeout is refused");
        assert!(
            Cli::try_parse_from(["engine", "compare", "a", "b", "--max-lag-p99", "1"]).is_err()
        );
    }

    #[test]
    fn verbosity_and_kubectl_flags() {
        let cli = Cli::try_parse_from([
            "engine",
            "-vv",
            "run",
            "t",
            "--server",
            "https://127.0.0.1:6443",
            "--token",
            "abc",
            "--insecure-skip-tls-verify",
            "--cpus",
            "0-1",
        ])
        .unwrap();
        assert_eq!(cli.verbose, 2);
        let Command::Run(a) = cli.command else {
            panic!("not run")
        };
        assert_eq!(a.cpus, Some(vec![0, 1]));
        assert!(a.insecure_skip_tls_verify);
        assert!(Cli::try_parse_from(["engine", "run", "t", "--token", "abc"]).is_err());
    }

    #[test]
    fn start_instants() {
        assert_eq!(
            parse_start_at("1000"),
            Ok(UNIX_EPOCH + Duration::from_secs(1))
        );
        assert_eq!(
            parse_start_at("1970-01-01T00:00:02.5Z"),
            Ok(UNIX_EPOCH + Duration::from_millis(2500))
        );
        assert_eq!(parse_start_at("1970-01-01T01:00:00+01:00"), Ok(UNIX_EPOCH));
        assert!(parse_start_at("tomorrow").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn cli_parses_run() {
        let cli = Cli::try_parse_from([
            "engine",
            "run",
            "t.bin",
            "--server",
            "http://127.0.0.1:1",
            "--runner-index",
            "-1",
            "--timing",
            "relaxed",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!("not run")
        };
        assert_eq!(a.runner_index, Some(-1));
        assert_eq!(a.timing, TimingArg::Relaxed);
        assert_eq!(a.timeout, Duration::from_secs(60));
        assert!(
            Cli::try_parse_from(["engine", "run", "t", "--server", "x", "--kubeconfig", "k"])
                .is_err()
        );
    }

    #[test]
    fn cli_parses_compare_and_merge() {
        let cli = Cli::try_parse_from([
            "engine",
            "compare",
            "a.json",
            "b.json",
            "--max-p99-regression",
            "5%",
            "--max-lag-p99",
            "200us",
        ])
        .unwrap();
        let Command::Compare(c) = cli.command else {
            panic!("not compare")
        };
        assert_eq!(c.max_p99_regression, Some(0.05));
        assert_eq!(c.max_lag_p99, Some(Duration::from_micros(200)));
        assert_eq!(c.max_error_rate, None);
        assert!(
            Cli::try_parse_from(["engine", "compare", "a", "b", "--max-error-rate", "1"]).is_err()
        );
        let cli = Cli::try_parse_from(["engine", "merge", "r0", "r1", "-o", "t.json"]).unwrap();
        let Command::Merge(m) = cli.command else {
            panic!("not merge")
        };
        assert_eq!(m.reports.len(), 2);
        assert!(!m.force);
        assert!(Cli::try_parse_from(["engine", "merge", "-o", "t.json"]).is_err());
    }
}
