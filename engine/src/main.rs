//! `engine`: replays a timeline and writes kperf's report (plus kreplay's section).
//!
//! Exit codes of `run`: 0 after a complete run (even with failed requests: they are in the
//! report) unless a `--fail-on` threshold is crossed or every request failed (then 1, the
//! report still written), 1 on an error before or instead of the report, 3 when the report
//! could not be written to `--result`/stdout and was saved to the fallback file named on
//! stderr, 130 when Ctrl-C or SIGTERM stopped the run (the report of what ran is still written).
//! `compare`: 0 when no threshold is crossed, 1 when one is, 2 on unusable input.
//! `merge`: 0 when the merged report is written, 1 otherwise, 3 when it went to a fallback
//! file.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

use engine::cli::{
    Cli, Command, CompareArgs, CompareFormat, MergeArgs, MetricBase, ReportArgs, RunArgs,
};
use engine::clock::TimingMode;
use engine::compare::read::ReportFile;
use engine::compare::thresholds::{Limits, Thresholds};
use engine::compare::{compare_files, CompareOptions};
use engine::gate::{self, Gate};
use engine::job::args::JobCommand;
use engine::job::report_server::ReportServer;
use engine::kubeconfig::{from_flags, resolve, KubeconfigOptions, ServerFlags};
use engine::plan::RunnerSelection;
use engine::report::{render_report, summary::render_summary, ReportConfig, ReportContext};
use engine::report_destination::{ReportDestination, REPORT_FALLBACK_EXIT};
use engine::report_merge::{merge_files, MergeOptions};
use engine::report_view::ReportView;
use engine::run::{run, run_with_preflight, RunOptions};
use engine::source::fetch::{fetch_timeline, file_sha256, is_url, parse_sha256};
use engine::source::{ReplaySource, TimelineSource};
use engine::target::Target;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Library warnings (preflight answers, kept tokens, missing client certificates) go to
    // stderr; -v raises the level, RUST_LOG when set replaces it.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(preprocess::verbosity::log_level(cli.verbose))
            }),
        )
        .init();
    let args = match cli.command {
        Command::Run(args) => args,
        Command::Compare(args) => return compare_command(&args),
        Command::Merge(args) => return merge_command(&args),
        Command::Job { command } => return job_command(&command),
        Command::Report(args) => return report_command(&args),
    };
    match run_command(&args) {
        Ok(RunEnd::Complete) => ExitCode::SUCCESS,
        Ok(RunEnd::GateFailed | RunEnd::Damaged) => ExitCode::from(1),
        Ok(RunEnd::Interrupted) => ExitCode::from(130),
        Ok(RunEnd::ReportFallback) => ExitCode::from(REPORT_FALLBACK_EXIT),
        Err(e) => {
            eprintln!("engine: {e:#}");
            // Stopped before the replay began (e.g. in an exec plugin): nothing was sent.
            if engine::interrupt::stopped() {
                ExitCode::from(130)
            } else {
                ExitCode::from(1)
            }
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
    let (bases, new) = match args.base_and_new() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("engine compare: {e}");
            return ExitCode::from(2);
        }
    };
    // The file's expressions, then the flags'.
    let gates = thresholds
        .fail_on
        .iter()
        .chain(&args.fail_on)
        .cloned()
        .collect();
    let opts = CompareOptions {
        thresholds,
        per_url: args.per_url,
        gates,
        force: args.force,
    };
    let outcome = match compare_files(&bases, &new, &opts) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("engine compare: {e}");
            return ExitCode::from(2);
        }
    };
    let stdout = match args.format {
        CompareFormat::Text => {
            let mut text = outcome.table.clone();
            for c in outcome
                .checks
                .iter()
                .filter(|c| opts.gates.iter().any(|g| g.text == c.name))
            {
                let mark = if c.failed { '✗' } else { '✓' };
                text.push_str(&format!("{mark} {}: {}\n", c.name, c.detail));
            }
            text
        }
        CompareFormat::Json => engine::compare::output::to_json(&outcome),
        CompareFormat::Junit => engine::compare::output::to_junit(&outcome),
    };
    // A closed stdout (`| head`) must not hide the verdict on stderr.
    let _ = std::io::stdout().lock().write_all(stdout.as_bytes());
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

/// Runs `engine report`: the summary on stdout, and the HTML page when asked.
fn report_command(args: &ReportArgs) -> ExitCode {
    let result = ReportFile::load(&args.report)
        .map_err(|e| e.to_string())
        .and_then(ReportView::new)
        .and_then(|view| {
            let _ = std::io::stdout()
                .lock()
                .write_all(view.summary().as_bytes());
            if let Some(path) = &args.html {
                std::fs::write(path, engine::report_view::html::render(&view))
                    .map_err(|e| format!("cannot write --html {}: {e}", path.display()))?;
                eprintln!("HTML report written to {}", path.display());
            }
            Ok(())
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine report: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs `engine job …`: 0 every runner merged, 1 a runner failed or is missing, 2 unusable input,
/// 130 interrupted (the Job is kept; `engine job collect` continues).
fn job_command(command: &JobCommand) -> ExitCode {
    let stop = engine::interrupt::stop_flag();
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
            if engine::interrupt::stopped() {
                ExitCode::from(130)
            } else {
                ExitCode::from(e.code)
            }
        }
    }
}

/// Runs `engine merge`.
fn merge_command(args: &MergeArgs) -> ExitCode {
    let sink = match ReportDestination::open("-o", Some(&args.output)) {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("engine merge: {e}");
            return ExitCode::from(1);
        }
    };
    let merged = match merge_files(
        &args.reports,
        MergeOptions {
            force: args.force,
            expected_runners: None,
        },
    ) {
        Ok(merged) => merged,
        Err(e) => {
            sink.discard();
            eprintln!("engine merge: {e:#}");
            return ExitCode::from(1);
        }
    };
    for n in &merged.notes {
        eprintln!("engine merge: note: {n}");
    }
    match sink.write(&merged.json) {
        Ok(()) => {
            // What was merged, as `engine report` shows it.
            match engine::report_view::summary_of(&args.output) {
                Ok(summary) => print!("{summary}"),
                Err(e) => eprintln!("engine merge: the merged report's summary: {e}"),
            }
            ExitCode::SUCCESS
        }
        Err(fallback) => {
            eprintln!("engine merge: {}", fallback.message());
            ExitCode::from(REPORT_FALLBACK_EXIT)
        }
    }
}

/// How `engine run` ended, when it wrote a report.
enum RunEnd {
    Complete,
    /// A `--fail-on` threshold was crossed, or every request failed.
    GateFailed,
    Interrupted,
    /// The report went to a fallback file (see `report_destination`).
    ReportFallback,
    /// The timeline check failed during the run, which stopped before the damaged part.
    Damaged,
}

/// Runs `engine run`: the report's destination is opened before anything is sent, and the
/// report of a run that happened is never lost.
fn run_command(args: &RunArgs) -> Result<RunEnd> {
    // A runner pod's state is visible from the start, its report once written (`engine job`).
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
    // Without --result the report goes to a file named for the time (`--result -`: stdout);
    // a served runner's report is fetched from it, so it writes a file only when asked to.
    let sink = match (&report_server, &args.result) {
        (Some(_), None) => None,
        (None, None) => {
            let path = engine::report::default_report_path(std::time::SystemTime::now());
            Some(ReportDestination::open("--result", Some(&path))?)
        }
        (_, Some(p)) if p.as_os_str() == "-" => Some(ReportDestination::open("--result", None)?),
        (_, Some(p)) => Some(ReportDestination::open("--result", Some(p))?),
    };
    let (report, interrupted, check_failure) = match replay(args) {
        Ok(done) => done,
        Err(e) => {
            if let Some(sink) = sink {
                sink.discard();
            }
            return Err(e);
        }
    };
    let gate_failed = check_gates(&args.fail_on, &report);
    let mut end = if check_failure.is_some() {
        RunEnd::Damaged
    } else if interrupted {
        RunEnd::Interrupted
    } else if gate_failed {
        RunEnd::GateFailed
    } else {
        RunEnd::Complete
    };
    if let Some(sink) = sink {
        let shown = sink.path().map(|p| p.display().to_string());
        match sink.write(&report) {
            Ok(()) => {
                if let Some(path) = shown {
                    eprintln!("report written to {path}");
                }
            }
            Err(fallback) => {
                eprintln!("engine: {}", fallback.message());
                end = RunEnd::ReportFallback;
            }
        }
    }
    if let Some(e) = &check_failure {
        eprintln!(
            "engine: {e}; the run stopped before the damaged part (every request sent had been \
             checked; preprocess the profile again)"
        );
    }
    if let Some(server) = &report_server {
        serve_until_collected(server, report, &end, args);
    }
    Ok(end)
}

/// Keeps the report for the collector (`engine job`) until it has it, the wait runs out or a
/// signal (the pod being deleted) ends it.
fn serve_until_collected(server: &ReportServer, report: String, end: &RunEnd, args: &RunArgs) {
    eprintln!(
        "engine: report ready for collection on {} (waiting up to {:?})",
        server.addr(),
        args.serve_report_for
    );
    let wait_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, wait_stop.clone());
    }
    let code = match end {
        RunEnd::Complete => 0,
        RunEnd::GateFailed | RunEnd::Damaged => 1,
        RunEnd::Interrupted => 130,
        RunEnd::ReportFallback => i32::from(REPORT_FALLBACK_EXIT),
    };
    if !server.publish_and_wait(report, code, args.serve_report_for, &wait_stop) {
        eprintln!("engine: the report was not collected");
    }
}

/// Replays and renders the report; returns it, whether a signal stopped the run and the
/// timeline check's failure during the run.
fn replay(args: &RunArgs) -> Result<(String, bool, Option<engine::source::DamagedSource>)> {
    let stop = engine::interrupt::stop_flag();
    engine::interrupt::set_exec_timeout(args.exec_timeout);
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .context("installing the signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }

    let timeline_path = local_timeline(args)?;
    let source = TimelineSource::open(&timeline_path)
        .with_context(|| format!("cannot open timeline {}", timeline_path.display()))?;
    let kubectl_flags = args.token.is_some()
        || args.certificate_authority.is_some()
        || args.insecure_skip_tls_verify;
    let target = match &args.server {
        Some(url) if url.starts_with("http://") && !kubectl_flags => Target::from_server_url(url)?,
        Some(url) => {
            let access = from_flags(&ServerFlags {
                server: url.clone(),
                token: args.token.clone(),
                certificate_authority: args.certificate_authority.clone(),
                insecure_skip_tls_verify: args.insecure_skip_tls_verify,
            })?;
            Target::from_cluster(&access, args.http1 || source.info().spec.disable_http2)?
        }
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
        cpus: args.cpus.clone(),
        share_cpus: args.share_cpus,
        metrics_listen: args.metrics_listen,
        conns: args.conns,
        max_conns: args.max_conns,
        max_in_flight: args.max_in_flight,
        retries: args.retries.into(),
        watch_connections: args.watch_connections.into(),
        watch_executor: args.watch_executor.into(),
        watch_cpus: args.watch_cpus.clone(),
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
    Ok((report, outcome.interrupted, outcome.check_failure))
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

/// Prints a ✓/✗ line per `--fail-on` threshold (and the built-in all-failed gate) on stderr;
/// returns whether one failed.
fn check_gates(gates: &[Gate], report: &str) -> bool {
    let file = match ReportFile::from_bytes(std::path::Path::new("report"), report.as_bytes()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("✗ thresholds not checked: {e}");
            return true;
        }
    };
    let mut failed = false;
    let implicit = gate::nothing_succeeded();
    let total_run = file.report.total_run.unwrap_or(0);
    if total_run > 0 {
        let v = gate::check(&implicit, &file);
        if v.failed {
            eprintln!("{v} (every request failed: nothing was measured)");
            failed = true;
        }
    }
    for g in gates {
        let v = gate::check(g, &file);
        eprintln!("{v}");
        failed |= v.failed;
    }
    failed
}
