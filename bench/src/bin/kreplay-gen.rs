//! `kreplay-gen`: writes a synthetic kperf replay profile (see `bench::profile_gen`).

use std::process::ExitCode;
use std::time::Instant;

use bench::profile_gen::{
    write_profile_to_path, GenConfig, GenContentType, GenVerb, RateShape, VerbMix,
};
use clap::{Parser, ValueEnum};
use preprocess::duration::parse_positive_duration;

/// Writes a deterministic synthetic kperf replay profile.
#[derive(Debug, Parser)]
#[command(name = "kreplay-gen", version)]
struct Args {
    /// Number of requests.
    #[arg(short = 'n', long = "requests")]
    requests: u64,
    /// Requests per second (constant shape; default 100).
    #[arg(long, conflicts_with = "duration")]
    rate: Option<f64>,
    /// Profile length (constant shape), as Go writes durations (`90s`, `1m30s`, `5m`).
    #[arg(long, value_parser = parse_positive_duration)]
    duration: Option<std::time::Duration>,
    /// constant | ramp:FROM:TO | spike:BASE:PEAK:AT:LEN | all-at-zero (rates in requests/s,
    /// AT and LEN in seconds).
    #[arg(long, default_value = "constant")]
    shape: String,
    /// default | read-heavy | write-heavy | get-only | VERB=W,... (e.g. GET=80,LIST=20).
    #[arg(long, default_value = "default")]
    mix: String,
    /// Object slots (the most objects alive at once).
    #[arg(long, default_value_t = 1000)]
    objects: u32,
    /// Namespaces (kreplay-0, kreplay-1, ...).
    #[arg(long, default_value_t = 10)]
    namespaces: u32,
    /// Exact number of WATCH requests, spread evenly (default: from the mix).
    #[arg(long)]
    watches: Option<u64>,
    /// Target size in bytes of CREATE/APPLY/PATCH bodies.
    #[arg(long, default_value_t = 512)]
    body_size: usize,
    /// spec.runnerCount.
    #[arg(long, default_value_t = 1)]
    runners: u32,
    /// spec.connsPerRunner.
    #[arg(long, default_value_t = 10)]
    conns: u32,
    /// spec.clientsPerRunner (0: same as --conns).
    #[arg(long, default_value_t = 0)]
    clients: u32,
    /// spec.contentType.
    #[arg(long, value_enum, default_value_t = ContentTypeArg::Json)]
    content_type: ContentTypeArg,
    /// spec.disableHTTP2: true.
    #[arg(long)]
    disable_http2: bool,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output: FILE.yaml, FILE.yaml.gz (gzip), or - for stdout.
    #[arg(short = 'o', long = "output")]
    output: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ContentTypeArg {
    Json,
    Protobuf,
}

fn run(args: Args) -> anyhow::Result<()> {
    let cfg = GenConfig {
        requests: args.requests,
        rate: args.rate,
        duration_s: args.duration.map(|d| d.as_secs_f64()),
        shape: args.shape.parse::<RateShape>()?,
        mix: args.mix.parse::<VerbMix>()?,
        objects: args.objects,
        namespaces: args.namespaces,
        watches: args.watches,
        body_size: args.body_size,
        runners: args.runners,
        conns: args.conns,
        clients: args.clients,
        content_type: match args.content_type {
            ContentTypeArg::Json => GenContentType::Json,
            ContentTypeArg::Protobuf => GenContentType::Protobuf,
        },
        disable_http2: args.disable_http2,
        seed: args.seed,
    };
    let started = Instant::now();
    let summary = write_profile_to_path(&cfg, &args.output)?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let counts: Vec<String> = GenVerb::ALL
        .iter()
        .filter(|v| summary.count(**v) > 0)
        .map(|v| format!("{v}={}", summary.count(*v)))
        .collect();
    eprintln!(
        "kreplay-gen: {} requests over {} ms to {} ({} bytes of YAML) in {:.3} s: {:.0} requests/s, {:.1} MB/s; {}",
        summary.requests,
        summary.last_timestamp_ms,
        args.output,
        summary.yaml_bytes,
        secs,
        summary.requests as f64 / secs,
        summary.yaml_bytes as f64 / secs / 1e6,
        counts.join(" ")
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kreplay-gen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
