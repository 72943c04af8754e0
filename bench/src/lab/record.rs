//! The lab's measurement records: one JSON object per line in `records.jsonl`, appended by
//! `scripts/bench.sh` (through `kreplay-lab record` / `series`) and read by `kreplay-lab render`.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The tool name of kreplay's own records; every other tool is a peer.
pub const KREPLAY: &str = "kreplay";

/// Which way a figure improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// More is better (throughput, achieved rate).
    Higher,
    /// Less is better (lag, CPU, memory, violations).
    Lower,
}

/// An x position in a plot: a number (line plots) or a category name (bar plots).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PlotX {
    /// A numeric x (a rate, a request count).
    Number(f64),
    /// A category (a scenario, a protocol).
    Category(String),
}

/// Where a figure goes in a plot: plot id, x position and the line (series) name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlotRef {
    /// Plot id: the SVG is `<stamp>-<id>.svg`.
    pub id: String,
    /// Position on the x axis.
    pub x: PlotX,
    /// Line name within the plot (e.g. `p99`); the tool is added to it.
    #[serde(default)]
    pub series: String,
    /// Label of the x axis.
    #[serde(default)]
    pub x_label: String,
    /// Logarithmic y axis.
    #[serde(default)]
    pub log_y: bool,
    /// Logarithmic x axis.
    #[serde(default)]
    pub log_x: bool,
    /// Plot caption (default: the scenario title).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
}

/// One measured figure of one tool: every repeat's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Figure {
    /// Scenario id (`h1`, `paced`, `h2`, `apisim`, `replay`, `scale`).
    pub scenario: String,
    /// Scenario title, a heading in the markdown.
    pub scenario_title: String,
    /// Figure name; records of the same scenario and figure are compared across tools.
    pub figure: String,
    /// Unit of `values`.
    pub unit: String,
    /// Which way is better.
    pub better: Better,
    /// `kreplay` or a peer's name.
    pub tool: String,
    /// The exact command or setting that produced the values.
    pub command: String,
    /// One value per repeat.
    pub values: Vec<f64>,
    /// A value the figure must have (order violations: 0); a differing median is flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<f64>,
    /// Plot placement, if the figure is plotted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plot: Option<PlotRef>,
}

/// A line of a plot given point by point (the replay's per-second shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    /// Scenario id.
    pub scenario: String,
    /// Scenario title.
    pub scenario_title: String,
    /// Plot id: the SVG is `<stamp>-<plot>.svg`.
    pub plot: String,
    /// Line name (e.g. `scheduled`, `sent`).
    pub series: String,
    /// `kreplay` or a peer.
    pub tool: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// x values, as many as `y`.
    pub x: Vec<f64>,
    /// y values.
    pub y: Vec<f64>,
    /// The command or setting that produced the series.
    #[serde(default)]
    pub command: String,
    /// Plot caption (default: the scenario title).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub plot_title: String,
}

/// A sentence shown under a scenario's heading (what no peer can do, what was skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// Scenario id.
    pub scenario: String,
    /// Scenario title.
    pub scenario_title: String,
    /// The sentence.
    pub text: String,
}

/// One line of `records.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    /// A measured figure.
    Figure(Figure),
    /// A plotted series.
    Series(Series),
    /// A note.
    Note(Note),
}

impl Record {
    /// The scenario id and title the record belongs to.
    pub fn scenario(&self) -> (&str, &str) {
        match self {
            Record::Figure(f) => (&f.scenario, &f.scenario_title),
            Record::Series(s) => (&s.scenario, &s.scenario_title),
            Record::Note(n) => (&n.scenario, &n.scenario_title),
        }
    }
}

/// Why records could not be read, written or checked.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a record.
    #[error(
        "{path}:{line}: not a lab record ({source}); expected one JSON object per line with \
         \"kind\": \"figure\" | \"series\" | \"note\""
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A record parses but cannot be used.
    #[error("{path}:{line}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 when the record is not from a file).
        line: usize,
        /// What is wrong and what would be valid.
        what: String,
    },
}

/// Checks what serde cannot: non-empty names, finite values, `x` and `y` of equal length.
pub fn validate(record: &Record) -> Result<(), String> {
    let (scenario, _) = record.scenario();
    if scenario.is_empty() {
        return Err("empty \"scenario\"; give a scenario id such as \"h1\"".into());
    }
    match record {
        Record::Figure(f) => {
            if f.figure.is_empty() || f.tool.is_empty() {
                return Err("a figure needs a non-empty \"figure\" and \"tool\"".into());
            }
            if f.values.is_empty() {
                return Err(format!(
                    "figure {:?} of {}: \"values\" is empty; give one value per repeat",
                    f.figure, f.tool
                ));
            }
            if let Some(v) = f.values.iter().find(|v| !v.is_finite()) {
                return Err(format!(
                    "figure {:?} of {}: value {v} is not a finite number",
                    f.figure, f.tool
                ));
            }
        }
        Record::Series(s) => {
            if s.x.len() != s.y.len() {
                return Err(format!(
                    "series {:?} of plot {:?}: {} x values but {} y values; they must pair up",
                    s.series,
                    s.plot,
                    s.x.len(),
                    s.y.len()
                ));
            }
            if s.x.iter().chain(&s.y).any(|v| !v.is_finite()) {
                return Err(format!(
                    "series {:?} of plot {:?}: a value is not a finite number",
                    s.series, s.plot
                ));
            }
        }
        Record::Note(_) => {}
    }
    Ok(())
}

/// Reads every record of a JSON-lines file (blank lines are skipped).
pub fn read_records(path: &Path) -> Result<Vec<Record>, RecordError> {
    let io = |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line).map_err(|source| RecordError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        validate(&record).map_err(|what| RecordError::Invalid {
            path: path.to_path_buf(),
            line: i + 1,
            what,
        })?;
        out.push(record);
    }
    Ok(out)
}

/// Appends one record as a line (the file is created if missing).
pub fn append_record(path: &Path, record: &Record) -> Result<(), RecordError> {
    validate(record).map_err(|what| RecordError::Invalid {
        path: path.to_path_buf(),
        line: 0,
        what,
    })?;
    let io = |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut line = serde_json::to_string(record).map_err(|e| io(std::io::Error::other(e)))?;
    line.push('\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    file.write_all(line.as_bytes()).map_err(io)
}
