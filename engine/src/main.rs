//! `engine`: replays a timeline and writes kperf's report (plus kreplay's section).
//!
//! Exit codes of `run`: 0 after a complete run (even with failed requests: they are in the
//! report), 1 on an error before or instead of the report, 130 when Ctrl-C or SIGTERM
//! stopped the run (the report of what ran is still written).
//! `compare`: 0 when no threshold is crossed, 1 when one is, 2 on unusable input.
//! `merge`: 0 when the merged report is written, 1 otherwise.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

use engine::cli::{Cli, Command, CompareArgs, MergeArgs, MetricBase, RunArgs};
use engine::clock::TimingMode;
use engine::compare::thresholds::{Limits, Thresholds};
use engine::compare::{compare_files, CompareOptions};
use engine::job::args::JobCommand;
use engine::job::report_server::ReportServer;
use engine::kubeconfig::{resolve, KubeconfigOptions};
use engine::plan::RunnerSelection;
use engine::report::{render_report, summary::render_summary, ReportConfig, ReportContext};
use engine::report_merge::{merge_files, MergeOptions};
use engine::run::{run, run_with_preflight, RunOptions};
use engine::source::fetch::{fetch_timeline, file_sha256, is_url, parse_sha256};
use engine::source::{ReplaySource, TimelineSource};
use engine::target::Target;

fn main() -> ExitCode {
    // Library warnings (preflight answers, kept tokens, missing client certificates) go to
    // stderr; RUST_LOG adjusts the level.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Run(args) => args,
        Command::Compare(args) => return compare_command(&args),
        Command::Merge(args) => return merge_command(&args),
        Command::Job { command } => return job_command(&command),
    };
    match run_command(&args) {
        Ok(interrupted) => {
            if interrupted {
                ExitCode::from(130)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("engine: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs `engine compare`: the table on stdout, crossings and unchecked figures on stderr.
fn compare_command(args: &CompareArgs) -> ExitCode {
    let file = match &args.thresholds {
        Some(path) => match Thresholds::from_file(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("engine compare: {e}");
                return ExitCode::from(2);
            }
        },
        None => Thresholds::default(),
    };
    let thresholds = file.with_flags(&Limits {
        max_p99_regression: args.max_p99_regression,
        max_lag_p99: args.max_lag_p99,
        max_error_rate: args.max_error_rate,
    });
    eprintln!("limits: {thresholds}");
    let opts = CompareOptions {
        thresholds,
        per_url: args.per_url,
    };
    let outcome = match compare_files(&args.base, &args.new, &opts) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("engine compare: {e}");
            return ExitCode::from(2);
        }
    };
    // A closed stdout (`| head`) must not hide the verdict on stderr.
    let _ = std::io::stdout().lock().write_all(outcome.table.as_bytes());
    for n in &outcome.notes {
        eprintln!("note: {n}");
    }
    for u in &outcome.unchecked {
        eprintln!("not checked: {u}");
    }
    for c in &outcome.crossings {
        eprintln!("THRESHOLD CROSSED: {c}");
    }
    if outcome.crossings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Runs `engine job …`: 0 every runner merged, 1 a runner failed or is missing, 2 unusable input,
/// 130 interrupted (the Job is kept; `engine job collect` continues).
fn job_command(command: &JobCommand) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone());
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    let result = match command {
        JobCommand::Manifest(args) => engine::job::manifest_command(args).map(|yaml| {
            let _ = std::io::stdout().lock().write_all(yaml.as_bytes());
        }),
        JobCommand::Run(args) => engine::job::run_command(args, &stop),
        JobCommand::Collect(args) => engine::job::collect_command(args, &stop),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine job: {}", e.message);
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                ExitCode::from(130)
            } else {
                ExitCode::from(e.code)
            }
        }
    }
}

/// Runs `engine merge`.
fn merge_command(args: &MergeArgs) -> ExitCode {
    let result = merge_files(
        &args.reports,
        MergeOptions {
            force: args.force,
            expected_runners: None,
        },
    )
    .map_err(anyhow::Error::from)
    .and_then(|merged| {
        for n in &merged.notes {
            eprintln!("engine merge: note: {n}");
        }
        std::fs::write(&args.output, merged.json)
            .with_context(|| format!("cannot write -o {}", args.output.display()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine merge: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs `engine run`; returns whether a signal stopped it.
fn run_command(args: &RunArgs) -> Result<bool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .context("installing the signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }

    // A runner pod's state is visible from the start; its report once written.
    let report_server = match args.serve_report {
        Some(addr) => {
            let server = ReportServer::start(addr)?;
            eprintln!(
                "engine: serving the run's state and report on {}",
                server.addr()
            );
            Some(server)
        }
        None => None,
    };
    let timeline_path = local_timeline(args)?;
    let source = TimelineSource::open(&timeline_path)
        .with_context(|| format!("cannot open timeline {}", timeline_path.display()))?;
    let target = match &args.server {
        Some(url) => Target::from_server_url(url)?,
        None => {
            let access = resolve(&KubeconfigOptions {
                kubeconfig: args.kubeconfig.clone(),
                context: args.context.clone(),
            })?;
            Target::from_cluster(&access, args.http1 || source.info().spec.disable_http2)?
        }
    };
    let info = source.info().clone();
    let env_index = std::env::var("JOB_COMPLETION_INDEX").ok();
    let selection =
        RunnerSelection::resolve(args.runner_index, env_index.as_deref(), info.runner_count)?;
    let timing: TimingMode = args.timing.into();
    let opts = RunOptions {
        cores: args.cores,
        conns: args.conns,
        max_conns: args.max_conns,
        max_in_flight: args.max_in_flight,
        retries: args.retries.into(),
        watch_connections: args.watch_connections.into(),
        speed: args.speed,
        timing,
        start_at: args.start_at,
        timeout: args.timeout,
        grace: args.grace,
        raw_data: args.raw_data,
        user_agent: args.user_agent.clone(),
        selection,
        progress: !args.quiet,
    };
    // kperf's warnings, with the flags in force; shown even with --quiet.
    for w in engine::run::config_warnings(&source, &opts) {
        eprintln!("engine: warning: {w}");
    }
    let base_url = target.base_url.clone();
    let source: Arc<dyn ReplaySource> = Arc::new(source);
    let outcome = if args.no_preflight {
        run(source.clone(), Arc::new(target), &opts, stop)?
    } else {
        run_with_preflight(source.clone(), Arc::new(target), &opts, stop)?
    };

    let runner_index = match selection {
        RunnerSelection::One(i) => Some(i),
        RunnerSelection::All => None,
    };
    let ctx = ReportContext {
        outcome: &outcome,
        source: source.as_ref(),
        base_url: match args.metric_base {
            MetricBase::Url => Some(base_url.as_str()),
            MetricBase::None => None,
        },
        raw_data: args.raw_data,
        runner_form: runner_index.is_some(),
        speed: args.speed,
        config: ReportConfig {
            timing: timing.as_str(),
            timeout: args.timeout,
            runner_index,
            server: base_url.clone(),
            user_agent: args.user_agent.clone(),
        },
    };
    let report = render_report(&ctx)?;
    eprint!("{}", render_summary(&ctx));
    if let Some(server) = &report_server {
        if let Some(path) = &args.result {
            write_result(path, &report)?;
        }
        eprintln!(
            "engine: report ready for collection on {} (waiting up to {:?})",
            server.addr(),
            args.serve_report_for
        );
        // A signal from now on (the pod being deleted) ends the wait.
        let wait_stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let _ = signal_hook::flag::register(sig, wait_stop.clone());
        }
        let code = if outcome.interrupted { 130 } else { 0 };
        if !server.publish_and_wait(report, code, args.serve_report_for, &wait_stop) {
            eprintln!("engine: the report was not collected");
        }
        return Ok(outcome.interrupted);
    }
    match &args.result {
        Some(path) => write_result(path, &report)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(report.as_bytes())
                .context("writing the report to stdout")?;
            out.flush().context("writing the report to stdout")?;
        }
    }
    Ok(outcome.interrupted)
}

/// Writes the report to `--result` (parent directories are created).
fn write_result(path: &std::path::Path, report: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("cannot create the directory of --result {}", path.display())
        })?;
    }
    std::fs::write(path, report)
        .with_context(|| format!("cannot write --result {}", path.display()))
}

/// The timeline as a local file: downloaded (and its digest checked) when given as a URL.
fn local_timeline(args: &RunArgs) -> Result<std::path::PathBuf> {
    let expected = args
        .timeline_sha256
        .as_deref()
        .map(parse_sha256)
        .transpose()?;
    let text = args.timeline.to_string_lossy();
    if !is_url(&text) {
        if let Some(expected) = &expected {
            let computed = file_sha256(&args.timeline)
                .with_context(|| format!("cannot read timeline {}", args.timeline.display()))?;
            anyhow::ensure!(
                &computed == expected,
                "timeline {} has SHA-256 {computed}, not the expected {expected} (--timeline-sha256)",
                args.timeline.display()
            );
        }
        return Ok(args.timeline.clone());
    }
    let path = fetch_timeline(
        &text,
        &args.download_dir,
        expected.as_deref(),
        args.timeout.max(std::time::Duration::from_secs(60)),
    )?;
    Ok(path)
}
