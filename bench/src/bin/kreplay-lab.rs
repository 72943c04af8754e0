//! kreplay-lab: the benchmark lab's helper. `scripts/bench.sh` measures and calls it to append
//! records, read report fields and check per-object order; `render` turns the records into
//! `<stamp>.json`, `<stamp>.md` and SVG plots.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use bench::lab::markdown::RunInfo;
use bench::lab::order::check_files;
use bench::lab::record::{append_record, Better, Figure, Note, PlotRef, PlotX, Record, Series};
use bench::lab::render::render_file;
use clap::{Args, Parser, Subcommand};
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "kreplay-lab",
    version,
    about = "kreplay's benchmark lab: records, report, plots, order check"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ScenarioArgs {
    /// Records file (JSON lines), appended to
    #[arg(long)]
    records: PathBuf,
    /// Scenario id (h1, paced, h2, apisim, replay, scale)
    #[arg(long)]
    scenario: String,
    /// Scenario title (a heading of the report)
    #[arg(long)]
    title: String,
}

#[derive(Subcommand)]
enum Command {
    /// Render records into <out-dir>/<stamp>.json, <stamp>.md and <stamp>-<plot>.svg
    Render {
        /// Records file (JSON lines)
        #[arg(long)]
        records: PathBuf,
        /// Output directory
        #[arg(long)]
        out_dir: PathBuf,
        /// File stem, e.g. 2026-11-28-0040
        #[arg(long)]
        stamp: String,
        /// Machine description for the header
        #[arg(long, default_value = "")]
        machine: String,
        /// The command that measured, for the header
        #[arg(long, default_value = "")]
        command: String,
    },
    /// Count per-object order violations: apisim's /apisim/order JSON against the profile
    OrderViolations {
        /// The replayed profile (YAML, gzip detected)
        #[arg(long)]
        profile: PathBuf,
        /// A saved GET /apisim/order response
        #[arg(long)]
        order: PathBuf,
        /// Violations to list on stderr
        #[arg(long, default_value_t = 10)]
        show: usize,
    },
    /// Append a figure record; VALUES are one number per repeat
    Record {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Figure name (compared across tools within the scenario)
        #[arg(long)]
        figure: String,
        /// Unit of the values
        #[arg(long)]
        unit: String,
        /// Which way is better: higher or lower
        #[arg(long, value_parser = parse_better)]
        better: Better,
        /// kreplay or the peer's name
        #[arg(long)]
        tool: String,
        /// The exact command or setting
        #[arg(long)]
        command: String,
        /// Value every kreplay repeat must have (flagged in the report otherwise)
        #[arg(long)]
        expect: Option<f64>,
        /// Plot id this figure is drawn in
        #[arg(long)]
        plot: Option<String>,
        /// x of the figure in the plot: a number, or a category name
        #[arg(long, requires = "plot")]
        x: Option<String>,
        /// Line name in the plot
        #[arg(long, default_value = "")]
        series: String,
        /// x axis label
        #[arg(long, default_value = "")]
        x_label: String,
        /// Logarithmic y axis
        #[arg(long)]
        log_y: bool,
        /// Logarithmic x axis
        #[arg(long)]
        log_x: bool,
        /// Plot caption (default: the scenario title)
        #[arg(long, default_value = "")]
        plot_title: String,
        /// One value per repeat
        #[arg(required = true, allow_negative_numbers = true)]
        values: Vec<String>,
    },
    /// Append a series record whose y values are a JSON array in FILE at POINTER (x = index)
    Series {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Plot id
        #[arg(long)]
        plot: String,
        /// Line name
        #[arg(long)]
        series: String,
        /// kreplay or a peer
        #[arg(long, default_value = "kreplay")]
        tool: String,
        /// x axis label
        #[arg(long)]
        x_label: String,
        /// y axis label
        #[arg(long)]
        y_label: String,
        /// The command that produced the data
        #[arg(long, default_value = "")]
        command: String,
        /// Plot caption (default: the scenario title)
        #[arg(long, default_value = "")]
        plot_title: String,
        /// JSON file holding the array
        #[arg(long)]
        json: PathBuf,
        /// JSON pointer of the array, e.g. /kreplay/perSecond/sent
        #[arg(long)]
        pointer: String,
        /// Missing array: say so on stderr and append nothing (instead of failing)
        #[arg(long)]
        optional: bool,
    },
    /// Append a note shown under a scenario's heading
    Note {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// The sentence
        text: String,
    },
    /// Print the value at a JSON pointer of a JSON file (strings unquoted)
    Get {
        /// JSON file
        file: PathBuf,
        /// JSON pointer, e.g. /kreplay/sendLag/p99
        pointer: String,
        /// Printed when the pointer is absent (otherwise that is an error)
        #[arg(long)]
        default: Option<String>,
    },
    /// Print a free TCP port on 127.0.0.1
    FreePort,
}

fn parse_better(s: &str) -> Result<Better, String> {
    match s {
        "higher" => Ok(Better::Higher),
        "lower" => Ok(Better::Lower),
        _ => Err(format!("{s:?}: use higher or lower")),
    }
}

fn read_json(path: &PathBuf) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Render {
            records,
            out_dir,
            stamp,
            machine,
            command,
        } => {
            let out = render_file(
                &records,
                &out_dir,
                &RunInfo {
                    stamp,
                    machine,
                    command,
                },
            )?;
            println!("{}", out.markdown.display());
            println!("{}", out.json.display());
            for svg in &out.svgs {
                println!("{}", svg.display());
            }
            for p in &out.problems {
                eprintln!("PROBLEM: {p}");
            }
        }
        Command::OrderViolations {
            profile,
            order,
            show,
        } => {
            let violations = check_files(&profile, &order)?;
            for v in violations.iter().take(show) {
                eprintln!("order violation: {v}");
            }
            println!("{}", violations.len());
        }
        Command::Record {
            scenario,
            figure,
            unit,
            better,
            tool,
            command,
            expect,
            plot,
            x,
            series,
            x_label,
            log_y,
            log_x,
            plot_title,
            values,
        } => {
            let values = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.trim().parse::<f64>().with_context(|| {
                        format!(
                            "value {} of figure {figure:?} ({tool}): {v:?} is not a number",
                            i + 1
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let plot = match plot {
                None => None,
                Some(id) => {
                    let Some(x) = x else {
                        bail!("--plot {id} needs --x (a number or a category name)")
                    };
                    let x = x
                        .parse::<f64>()
                        .map(PlotX::Number)
                        .unwrap_or(PlotX::Category(x));
                    Some(PlotRef {
                        id,
                        x,
                        series,
                        x_label,
                        log_y,
                        log_x,
                        title: plot_title,
                    })
                }
            };
            let record = Record::Figure(Figure {
                scenario: scenario.scenario,
                scenario_title: scenario.title,
                figure,
                unit,
                better,
                tool,
                command,
                values,
                expect,
                plot,
            });
            append_record(&scenario.records, &record)?;
        }
        Command::Series {
            scenario,
            plot,
            series,
            tool,
            x_label,
            y_label,
            command,
            json,
            pointer,
            optional,
            plot_title,
        } => {
            let doc = read_json(&json)?;
            let Some(array) = doc.pointer(&pointer).and_then(Value::as_array) else {
                if optional {
                    eprintln!(
                        "{}: no array at {pointer}; series {series:?} of plot {plot:?} skipped",
                        json.display()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                bail!("{}: no array at {pointer}", json.display());
            };
            let y = array
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_f64().with_context(|| {
                        format!("{}: {pointer}/{i} is not a number", json.display())
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let x = (0..y.len()).map(|i| i as f64).collect();
            let record = Record::Series(Series {
                scenario: scenario.scenario,
                scenario_title: scenario.title,
                plot,
                series,
                tool,
                x_label,
                y_label,
                x,
                y,
                command,
                plot_title,
            });
            append_record(&scenario.records, &record)?;
        }
        Command::Note { scenario, text } => {
            let record = Record::Note(Note {
                scenario: scenario.scenario,
                scenario_title: scenario.title,
                text,
            });
            append_record(&scenario.records, &record)?;
        }
        Command::Get {
            file,
            pointer,
            default,
        } => {
            let doc = read_json(&file)?;
            match (doc.pointer(&pointer), default) {
                (Some(Value::String(s)), _) => println!("{s}"),
                (Some(v), _) => println!("{v}"),
                (None, Some(d)) => println!("{d}"),
                (None, None) => bail!("{}: nothing at {pointer}", file.display()),
            }
        }
        Command::FreePort => {
            let listener =
                std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
            println!("{}", listener.local_addr().context("local address")?.port());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kreplay-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
