//! `preprocess`: a kperf replay profile → a binary timeline; `inspect` and `export` it.

use std::cell::Cell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use preprocess::export::export_to_file;
use preprocess::inspect::inspect;
use preprocess::loader::{
    load_profile, load_profile_fast, FastOptions, FastOutcome, LoadError, LoadOptions,
};
use preprocess::request_target::PathMode;
use preprocess::source::{open_source, SourceOptions};
use preprocess::timeline::{
    path_mode_name, OwnedPrepared, Timeline, TimelineError, TimelineWriter, WriterOptions,
    DEFAULT_SHARDS_PER_RUNNER,
};
use preprocess::warnings::{config_warnings, Advice, RunnerCapacity};

// Loading allocates a few small strings per request on the parser threads and frees them on
// another; glibc malloc spends a large share of a load's CPU on that, mimalloc far less
// (`bench/RESULTS.md`, issue 20).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option numbers (`mi_option_e` in the bundled v3 `mimalloc.h`; the sys crate
/// names only some of them).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Returns freed memory to the OS within 10 ms and commits arenas only as they are used: by
/// default mimalloc keeps freed pages for a while, and the parsed chunks freed every few
/// milliseconds then add tens of MB to the peak RSS of a large load. Arenas are reserved
/// at the first allocation with the options of that moment, so this runs as an ELF
/// constructor, before the Rust runtime allocates (set at the start of `main`, the same
/// options came too late and the peak stayed high). The binary's choice
/// replaces `MIMALLOC_ARENA_EAGER_COMMIT` and `MIMALLOC_PURGE_DELAY` in the environment.
extern "C" fn set_allocator_options() {
    // A delay of 0 cost noticeably more system time than 10 ms for a little less memory.
    for (option, value) in [
        (MI_OPTION_ARENA_EAGER_COMMIT, 0),
        (MI_OPTION_PURGE_DELAY, 10),
    ] {
        // SAFETY: sets one of mimalloc's global options, which it reads atomically.
        unsafe { libmimalloc_sys::mi_option_set(option, value) };
    }
}

#[used]
#[link_section = ".init_array"]
static SET_ALLOCATOR_OPTIONS: extern "C" fn() = set_allocator_options;

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
    /// Read the profile with the general YAML parser only (no fast, parallel path).
    #[arg(long, hide = true)]
    general_parser: bool,
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
    let mode = if args.kperf_paths {
        PathMode::KperfCleaned
    } else {
        PathMode::Recorded
    };
    let bytes_read = Arc::new(AtomicU64::new(0));
    let progress = Progress::new(local_plain_size(&profile));
    // A local file can be read again, so it first goes through the fast path; a profile
    // that path defers (unusual YAML, or any error) is read again by the general parser.
    let fast = !args.general_parser && is_local_path(&profile);
    let mut loaded = None;
    for general in [!fast, true] {
        let source = open_source(&profile, &SourceOptions::default())?;
        bytes_read.store(0, Ordering::Relaxed);
        let reader = CountingReader {
            inner: source.reader,
            count: Arc::clone(&bytes_read),
        };
        let options = WriterOptions {
            shards_per_runner: args.shards,
            runner_count_override: args.runners,
            source: source.name.clone(),
            path_mode: path_mode_name(mode).to_string(),
            ..WriterOptions::default()
        };
        let mut writer = TimelineWriter::create(&output, options)
            .with_context(|| format!("cannot write {}", output.display()))?;
        // The loader's callback error carries only text; keep the writer's error itself.
        let mut write_error: Option<TimelineError> = None;
        let mut store = |index: u64, prepared: Result<&OwnedPrepared, TimelineError>| {
            if index.is_multiple_of(4096) {
                progress.update(index, bytes_read.load(Ordering::Relaxed));
            }
            let pushed = prepared.and_then(|p| writer.push_owned(index, p));
            pushed.map_err(|e| {
                let message = e.to_string();
                write_error = Some(e);
                LoadError::Rejected { index, message }
            })
        };
        let result = if general {
            load_profile(
                &source.name,
                reader,
                &LoadOptions::default(),
                &mut |index, req| match OwnedPrepared::new(index, req, mode) {
                    Ok(prepared) => store(index, Ok(&prepared)),
                    Err(e) => store(index, Err(e)),
                },
            )
            .map(Some)
        } else {
            load_profile_fast(
                reader,
                &FastOptions::default(),
                &|req| OwnedPrepared::new(0, req, mode).ok(),
                &mut |index, prepared| store(index, Ok(prepared)),
            )
            .map(|outcome| match outcome {
                FastOutcome::Loaded(head) => Some(head),
                FastOutcome::Deferred(_) => None,
            })
        };
        match (result, write_error) {
            (_, Some(e)) => {
                progress.finish();
                return Err(e)
                    .with_context(|| format!("{}: cannot store the profile", source.name));
            }
            (Err(e), None) => {
                progress.finish();
                return Err(e.into());
            }
            (Ok(Some(head)), None) => {
                loaded = Some((head, writer));
                break;
            }
            (Ok(None), None) => {}
        }
    }
    progress.finish();
    let Some((head, writer)) = loaded else {
        anyhow::bail!("the general parser did not finish (a bug)");
    };
    for warning in &head.warnings {
        eprintln!("preprocess: warning: {warning}");
    }
    let summary = writer
        .finish(&head.spec, &head.description)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let elapsed = started.elapsed();
    let h = &summary.header;
    print_kperf_warnings(&summary.requests_per_runner, h);
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
fn print_kperf_warnings(per_runner: &[u64], h: &preprocess::timeline::format::TimelineHeader) {
    // From the writer's counts: reading the output back would block on a FIFO or a device.
    let warnings = config_warnings(
        per_runner,
        0,
        u64::from(h.runner_count),
        h.duration_us,
        RunnerCapacity::of_spec(&h.spec),
        Advice::Profile,
    );
    for w in warnings {
        eprintln!("preprocess: warning: {w}");
    }
}

/// Whether `profile` names a local file (which can be opened twice).
fn is_local_path(profile: &str) -> bool {
    profile != "-" && !profile.starts_with("http://") && !profile.starts_with("https://")
}

/// The size of a local, uncompressed profile, for the progress bar's length.
fn local_plain_size(profile: &str) -> Option<u64> {
    if !is_local_path(profile) {
        return None;
    }
    let mut magic = [0u8; 2];
    let mut file = std::fs::File::open(profile).ok()?;
    file.read_exact(&mut magic).ok()?;
    (magic != [0x1f, 0x8b])
        .then(|| file.metadata().ok().map(|m| m.len()))
        .flatten()
}

/// Counts the (gunzipped) bytes the loader has read, for the progress bar.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Bytes and requests per second on stderr, once a load has taken a few seconds, and only
/// when stderr is a terminal (indicatif hides it otherwise).
struct Progress {
    bar: ProgressBar,
    started: Instant,
    shown: Cell<bool>,
}

/// How long a load runs before the progress bar appears.
const PROGRESS_AFTER: Duration = Duration::from_secs(2);

impl Progress {
    fn new(total_bytes: Option<u64>) -> Self {
        let bar = ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::hidden());
        let template = if total_bytes.is_some() {
            "{bar:30} {bytes}/{total_bytes} ({binary_bytes_per_sec}, {eta} left) {msg}"
        } else {
            "{spinner} {bytes} ({binary_bytes_per_sec}) {msg} {elapsed}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Progress {
            bar,
            started: Instant::now(),
            shown: Cell::new(false),
        }
    }

    fn update(&self, requests: u64, bytes: u64) {
        let elapsed = self.started.elapsed();
        if !self.shown.get() {
            if elapsed < PROGRESS_AFTER {
                return;
            }
            self.shown.set(true);
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.enable_steady_tick(Duration::from_millis(200));
        }
        self.bar.set_position(bytes);
        let rate = requests as f64 / elapsed.as_secs_f64().max(1e-9);
        self.bar
            .set_message(format!("{requests} requests ({rate:.0}/s)"));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
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
