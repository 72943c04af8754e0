//! `engine job …` command-line options.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};

use super::manifest::{KeyValues, TolerationArg};
use crate::cli::{parse_duration, parse_start_at};

/// `engine job` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Create the Indexed Job, follow it, collect and merge the runners' reports, clean up.
    Run(JobRunArgs),
    /// Print the Job (and with --rbac its ServiceAccount and ClusterRole/Binding) as YAML.
    Manifest(JobManifestArgs),
    /// Collect and merge the reports of a Job created earlier (repeatable).
    Collect(JobCollectArgs),
}

/// Where the cluster is and which replay: shared by every `engine job` subcommand that talks to it.
#[derive(Debug, Args, Clone)]
pub struct ClusterArgs {
    /// The kubeconfig (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current-context).
    #[arg(long)]
    pub context: Option<String>,
}

/// What shapes the Job: shared by `run` and `manifest`.
#[derive(Debug, Args, Clone)]
pub struct JobSpecArgs {
    /// The timeline the pods replay: an http(s) URL they download (checked with --timeline-sha256),
    /// or, with --pvc, the path of the timeline inside that volume.
    #[arg(long, value_name = "URL|PATH")]
    pub timeline: String,
    /// The runner image (built from the repository's Dockerfile or scripts/image.sh).
    #[arg(long)]
    pub image: String,
    /// A local copy of the timeline: the runner count and the SHA-256 are read from it.
    #[arg(long, value_name = "FILE")]
    pub timeline_file: Option<PathBuf>,
    /// The timeline's SHA-256, checked by every pod before it replays (default: from
    /// --timeline-file, or from one download of --timeline by `engine job run`).
    #[arg(long, value_name = "HEX")]
    pub timeline_sha256: Option<String>,
    /// The timeline lives on this PersistentVolumeClaim (mounted read-only), at --timeline.
    #[arg(long, value_name = "CLAIM")]
    pub pvc: Option<String>,
    /// Runner count (default: the timeline's).
    #[arg(long)]
    pub runners: Option<u32>,
    /// The Job's name (default: kreplay-<UTC time>).
    #[arg(long)]
    pub name: Option<String>,
    /// The namespace of the Job.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// Every pod starts replaying at this instant (RFC 3339 or unix ms); default now + --start-in.
    #[arg(long, value_parser = parse_start_at)]
    pub start_at: Option<SystemTime>,
    /// How far ahead the common start lies, for pods to be scheduled and fetch the timeline.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub start_in: Duration,
    /// Schedule runners only on nodes with this label (KEY=VALUE; repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub node_selector: Vec<KeyValues>,
    /// Required node affinity: the node's label KEY is one of the values (repeatable).
    #[arg(long, value_name = "KEY=V1[,V2…]")]
    pub node_affinity: Vec<KeyValues>,
    /// Tolerate a taint: KEY[=VALUE]:EFFECT, KEY (any effect) or * (every taint); repeatable.
    #[arg(long, value_name = "KEY[=VALUE][:EFFECT]")]
    pub toleration: Vec<TolerationArg>,
    /// The pods' service account.
    #[arg(long)]
    pub service_account: Option<String>,
    /// Whole CPUs per runner pod (requests = limits: the static CPU manager then gives whole cores).
    #[arg(long)]
    pub cpu: Option<u32>,
    /// Memory per runner pod (requests = limits), e.g. 2Gi.
    #[arg(long)]
    pub memory: Option<String>,
    /// Authenticate with the kubeconfig in this Secret (key `config`) instead of the service account.
    #[arg(long, value_name = "SECRET")]
    pub kubeconfig_secret: Option<String>,
    /// Also create a ServiceAccount and a ClusterRole/Binding allowing the replayed verbs
    /// (cluster-wide: opt-in).
    #[arg(long)]
    pub rbac: bool,
    /// How long a runner keeps its report for collection after its replay.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub serve_report_for: Duration,
    /// `engine run` flags passed to every runner (after `--`).
    #[arg(last = true, value_name = "ENGINE RUN FLAGS")]
    pub engine_args: Vec<String>,
}

/// `engine job run`.
#[derive(Debug, Args)]
pub struct JobRunArgs {
    /// The Job.
    #[command(flatten)]
    pub spec: JobSpecArgs,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Where the reports go.
    #[command(flatten)]
    pub output: CollectOutputArgs,
    /// Keep the Job (and its RBAC objects) after collection.
    #[arg(long)]
    pub keep: bool,
}

/// `engine job manifest`.
#[derive(Debug, Args)]
pub struct JobManifestArgs {
    /// The Job.
    #[command(flatten)]
    pub spec: JobSpecArgs,
}

/// Where collected reports go: shared by `run` and `collect`.
#[derive(Debug, Args, Clone)]
pub struct CollectOutputArgs {
    /// The merged report.
    #[arg(long, value_name = "FILE")]
    pub result: PathBuf,
    /// Where each runner's report is kept (default: <result>.runners/).
    #[arg(long, value_name = "DIR")]
    pub reports_dir: Option<PathBuf>,
    /// Give up collecting after this long (default: until every runner ended).
    #[arg(long, value_parser = parse_duration)]
    pub collect_timeout: Option<Duration>,
}

/// `engine job collect`.
#[derive(Debug, Args)]
pub struct JobCollectArgs {
    /// The Job's name.
    #[arg(long)]
    pub name: String,
    /// Its namespace.
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Where the reports go.
    #[command(flatten)]
    pub output: CollectOutputArgs,
    /// Keep the Job after collection.
    #[arg(long)]
    pub keep: bool,
}
