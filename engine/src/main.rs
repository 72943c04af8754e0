//! `engine`: replays a timeline and writes kperf's report (plus kreplay's section).
//!
//! Exit codes of `run`: 0 after a complete run (even with failed requests: they are in the
//! report) unless a `--fail-on` threshold is crossed or every request failed (then 1, the
//! report still written), 1 on an error before or instead of the report, 130 when Ctrl-C or
//! SIGTERM stopped the run (the report of what ran is still written).
//! `compare`: 0 when no threshold is crossed, 1 when one is, 2 on unusable input.
//! `merge`: 0 when the merged report is written, 1 otherwise.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
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
use engine::kubeconfig::{from_flags, resolve, KubeconfigOptions, ServerFlags};
use engine::plan::RunnerSelection;
use engine::report::{render_report, summary::render_summary, ReportConfig, ReportContext};
use engine::report_merge::{merge_files, MergeOptions};
use engine::report_view::ReportView;
use engine::run::{run, run_with_preflight, RunOptions};
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
        Command::Report(args) => return report_command(&args),
    };
    match run_command(&args) {
        Ok((interrupted, gate_failed)) => {
            if interrupted {
                ExitCode::from(130)
            } else if gate_failed {
                ExitCode::from(1)
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

/// Runs `engine merge`.
fn merge_command(args: &MergeArgs) -> ExitCode {
    let result = merge_files(&args.reports, MergeOptions { force: args.force })
        .map_err(anyhow::Error::from)
        .and_then(|merged| {
            for n in &merged.notes {
                eprintln!("engine merge: note: {n}");
            }
            std::fs::write(&args.output, merged.json)
                .with_context(|| format!("cannot write -o {}", args.output.display()))?;
            // What was merged, as `engine report` shows it.
            let summary =
                engine::report_view::summary_of(&args.output).map_err(anyhow::Error::msg)?;
            print!("{summary}");
            Ok(())
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine merge: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs `engine run`; returns whether a signal stopped it and whether a gate failed.
fn run_command(args: &RunArgs) -> Result<(bool, bool)> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .context("installing the signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }

    let source = TimelineSource::open(&args.timeline)
        .with_context(|| format!("cannot open timeline {}", args.timeline.display()))?;
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
    let result = match &args.result {
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) => Some(p.clone()),
        None => Some(engine::report::default_report_path(
            std::time::SystemTime::now(),
        )),
    };
    match &result {
        Some(path) => {
            eprintln!("report written to {}", path.display());
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("cannot create the directory of --result {}", path.display())
                })?;
            }
            std::fs::write(path, &report)
                .with_context(|| format!("cannot write --result {}", path.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(report.as_bytes())
                .context("writing the report to stdout")?;
            out.flush().context("writing the report to stdout")?;
        }
    }
    let gate_failed = check_gates(&args.fail_on, &report);
    Ok((outcome.interrupted, gate_failed))
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
    let total_run = file.opt_u64("totalRun").ok().flatten().unwrap_or(0);
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
