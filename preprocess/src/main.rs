//! `preprocess`: a kperf replay profile → a binary timeline; `inspect` and `export` it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use preprocess::export::export_to_file;
use preprocess::inspect::inspect;
use preprocess::loader::{load_profile, LoadError, LoadOptions};
use preprocess::request_target::PathMode;
use preprocess::source::{open_source, SourceOptions};
use preprocess::timeline::{
    path_mode_name, Timeline, TimelineError, TimelineWriter, WriterOptions,
    DEFAULT_SHARDS_PER_RUNNER,
};
use preprocess::warnings::{config_warnings, Advice, RunnerCapacity};

/// Turns a kperf replay profile into a memory-mapped timeline for the engine.
#[derive(Parser, Debug)]
#[command(
    name = "preprocess",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    build: BuildArgs,
}

#[derive(Args, Debug)]
struct BuildArgs {
    /// The profile: a path, `-` for stdin, or an http(s) URL (gzip is detected).
    #[arg(required = true)]
    profile: Option<String>,
    /// Where to write the timeline.
    #[arg(short, long, required = true)]
    output: Option<PathBuf>,
    /// Partition into N runners instead of the profile's spec.runnerCount.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    runners: Option<u32>,
    /// Shards per runner (the units spread over cores; 64 serves 1–64 cores).
    #[arg(long, value_name = "S", default_value_t = DEFAULT_SHARDS_PER_RUNNER,
          value_parser = clap::value_parser!(u32).range(1..))]
    shards: u32,
    /// Send kperf's cleaned wire path (decoded, `.`/`..`/`//` removed) instead of the recorded one.
    #[arg(long)]
    kperf_paths: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Summarise a timeline: counts per verb, runner and shard, rates, top labels.
    Inspect {
        /// The timeline file.
        timeline: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Check every checksum and record first.
        #[arg(long)]
        verify: bool,
    },
    /// Write a timeline back as a kperf replay profile (YAML), in profile order.
    Export {
        /// The timeline file.
        timeline: PathBuf,
        /// The profile to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Inspect {
            timeline,
            json,
            verify,
        }) => run_inspect(&timeline, json, verify),
        Some(Command::Export { timeline, output }) => run_export(&timeline, &output),
        None => run_build(cli.build),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("preprocess: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_inspect(path: &Path, json: bool, verify: bool) -> Result<()> {
    let t = Timeline::open(path).with_context(|| format!("{}", path.display()))?;
    let report = inspect(&t, verify).with_context(|| format!("{}", path.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

fn run_export(path: &Path, output: &Path) -> Result<()> {
    let t = Timeline::open(path).with_context(|| format!("{}", path.display()))?;
    export_to_file(&t, output)
        .with_context(|| format!("export {} to {}", path.display(), output.display()))?;
    eprintln!(
        "preprocess: exported {} requests to {}",
        t.header().request_count,
        output.display()
    );
    Ok(())
}

fn run_build(args: BuildArgs) -> Result<()> {
    let (Some(profile), Some(output)) = (args.profile, args.output) else {
        anyhow::bail!("a PROFILE and -o OUTPUT are required (see --help)");
    };
    let started = Instant::now();
    let source = open_source(&profile, &SourceOptions::default())?;
    let mode = if args.kperf_paths {
        PathMode::KperfCleaned
    } else {
        PathMode::Recorded
    };
    let options = WriterOptions {
        shards_per_runner: args.shards,
        runner_count_override: args.runners,
        source: source.name.clone(),
        path_mode: path_mode_name(mode).to_string(),
    };
    let mut writer = TimelineWriter::create(&output, options)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let progress = progress_bar();
    // The loader's callback error carries only text; keep the writer's error itself.
    let mut write_error: Option<TimelineError> = None;
    let loaded = load_profile(
        &source.name,
        source.reader,
        &LoadOptions::default(),
        &mut |index, req| {
            if index % 4096 == 0 {
                progress.set_position(index);
            }
            writer.push(index, &req, mode).map_err(|e| {
                let message = e.to_string();
                write_error = Some(e);
                LoadError::Rejected { index, message }
            })
        },
    );
    progress.finish_and_clear();
    let head = match (loaded, write_error) {
        (_, Some(e)) => {
            return Err(e).with_context(|| format!("{}: cannot store the profile", source.name))
        }
        (Err(e), None) => return Err(e.into()),
        (Ok(head), None) => head,
    };
    for warning in &head.warnings {
        eprintln!("preprocess: warning: {warning}");
    }
    let summary = writer
        .finish(&head.spec, &head.description)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let elapsed = started.elapsed();
    let h = &summary.header;
    print_kperf_warnings(&output, h)?;
    println!(
        "wrote {} ({})",
        output.display(),
        human_bytes(summary.file_bytes)
    );
    println!("  source     {}", h.source);
    println!(
        "  requests   {} over {} ms, {} WATCH",
        h.request_count,
        h.duration_us as f64 / 1000.0,
        h.watch_count
    );
    println!(
        "  runners    {} × {} shards{}",
        h.runner_count,
        h.shards_per_runner,
        if args.runners.is_some() {
            format!(" (profile says {})", h.spec.runner_count)
        } else {
            String::new()
        }
    );
    println!(
        "  distinct   {} targets, {} bodies, {} metric labels ({} of strings)",
        summary.distinct_targets,
        summary.distinct_bodies,
        h.label_count,
        human_bytes(summary.blob_bytes)
    );
    println!("  path mode  {}", h.path_mode);
    println!(
        "  time       {:.3} s, {:.0} requests/s",
        elapsed.as_secs_f64(),
        h.request_count as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// kperf's configuration warnings about the profile (on stderr, whatever else is shown).
fn print_kperf_warnings(
    output: &Path,
    h: &preprocess::timeline::format::TimelineHeader,
) -> Result<()> {
    let t = Timeline::open(output).with_context(|| format!("{}", output.display()))?;
    let mut per_runner = vec![0u64; h.runner_count as usize];
    for run in t.runs() {
        if let Some(n) = per_runner.get_mut(run.runner as usize) {
            *n += run.len;
        }
    }
    let warnings = config_warnings(
        &per_runner,
        0,
        u64::from(h.runner_count),
        h.duration_us,
        RunnerCapacity::of_spec(&h.spec),
        Advice::Profile,
    );
    for w in warnings {
        eprintln!("preprocess: warning: {w}");
    }
    Ok(())
}

fn progress_bar() -> ProgressBar {
    // Hidden by indicatif when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {human_pos} requests ({per_sec}) {elapsed}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
