//! `kreplay-lab render`: records in, `<stamp>.json`, `<stamp>.md` and `<stamp>-<plot>.svg` out.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::markdown::{self, RunInfo};
use super::model::{scenarios, Scenario};
use super::plots::{plots, render_svg, PlotError};
use super::record::{read_records, Record, RecordError};
use super::stats::{median, ToolValue};

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The records could not be read.
    #[error(transparent)]
    Records(#[from] RecordError),
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// An output could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The stamp would make a bad file name.
    #[error("stamp {0:?}: use letters, digits, '-' and '_' only (e.g. 2026-11-28-0040)")]
    BadStamp(String),
}

/// What `render` wrote.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The JSON file.
    pub json: PathBuf,
    /// The markdown file.
    pub markdown: PathBuf,
    /// The SVG files.
    pub svgs: Vec<PathBuf>,
    /// Figures whose expected value was not met (scenario title: figure).
    pub problems: Vec<String>,
}

fn tool_json(t: &Option<ToolValue>) -> Value {
    t.as_ref().map_or(
        Value::Null,
        |t| json!({"tool": t.tool, "median": t.median, "command": t.command}),
    )
}

fn scenario_json(s: &Scenario, plot_files: &[(String, String)]) -> Value {
    json!({
        "id": s.id,
        "title": s.title,
        "notes": s.notes,
        "figures": s.figures.iter().map(|f| json!({
            "figure": f.figure,
            "unit": f.unit,
            "better": f.better,
            "kreplay": tool_json(&f.kreplay),
            "bestPeer": tool_json(&f.best_peer),
            "peers": f.peers.iter().map(|p| tool_json(&Some(p.clone()))).collect::<Vec<_>>(),
            "ratio": f.ratio,
            "expect": f.expect,
            "violation": f.violates_expectation(),
        })).collect::<Vec<_>>(),
        "plots": s.plots.iter().filter_map(|id| plot_files.iter().find(|(p, _)| p == id).map(|(_, f)| f.clone())).collect::<Vec<_>>(),
    })
}

fn record_json(r: &Record) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let (Record::Figure(f), Some(obj)) = (r, v.as_object_mut()) {
        obj.insert("median".into(), json!(median(&f.values)));
    }
    v
}

fn write(path: PathBuf, text: &str) -> Result<PathBuf, RenderError> {
    std::fs::write(&path, text).map_err(|source| RenderError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Renders `records` into `out_dir` (created if missing).
pub fn render_records(
    records: &[Record],
    out_dir: &Path,
    info: &RunInfo,
) -> Result<Rendered, RenderError> {
    if info.stamp.is_empty()
        || !info
            .stamp
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(RenderError::BadStamp(info.stamp.clone()));
    }
    std::fs::create_dir_all(out_dir).map_err(|source| RenderError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut plot_files = Vec::new();
    let mut svgs = Vec::new();
    for p in plots(records) {
        if let Some(svg) = render_svg(&p)? {
            let file = format!("{}-{}.svg", info.stamp, p.id);
            svgs.push(write(out_dir.join(&file), &svg)?);
            plot_files.push((p.id.clone(), file));
        }
    }
    let scenarios = scenarios(records);
    let problems = scenarios
        .iter()
        .flat_map(|s| {
            s.figures
                .iter()
                .filter(|f| f.violates_expectation())
                .map(move |f| format!("{}: {}", s.title, f.figure))
        })
        .collect();
    let md = markdown::render(info, &scenarios, &|id| {
        plot_files
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, f)| f.clone())
    });
    let doc = json!({
        "stamp": info.stamp,
        "machine": info.machine,
        "command": info.command,
        "scenarios": scenarios.iter().map(|s| scenario_json(s, &plot_files)).collect::<Vec<_>>(),
        "records": records.iter().map(record_json).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    Ok(Rendered {
        json: write(out_dir.join(format!("{}.json", info.stamp)), &text)?,
        markdown: write(out_dir.join(format!("{}.md", info.stamp)), &md)?,
        svgs,
        problems,
    })
}

/// Reads `records_path` and renders it into `out_dir`.
pub fn render_file(
    records_path: &Path,
    out_dir: &Path,
    info: &RunInfo,
) -> Result<Rendered, RenderError> {
    let records = read_records(records_path)?;
    render_records(&records, out_dir, info)
}
