//! `preprocess inspect`: what a timeline holds, and how evenly it is spread.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use crate::profile::Verb;
use crate::timeline::{Timeline, TimelineError};

/// How many metric labels the report lists.
pub const TOP_LABELS: usize = 10;

/// Counts over a set of buckets and how uneven they are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    /// Requests per bucket, by bucket index.
    pub counts: Vec<u64>,
    /// (max − mean) / mean × 100; 0 when there are no requests.
    pub imbalance_pct: f64,
}

impl Spread {
    fn new(counts: Vec<u64>) -> Spread {
        let total: u64 = counts.iter().sum();
        let max = counts.iter().copied().max().unwrap_or(0);
        let imbalance_pct = if total == 0 || counts.is_empty() {
            0.0
        } else {
            let mean = total as f64 / counts.len() as f64;
            (max as f64 - mean) / mean * 100.0
        };
        Spread {
            counts,
            imbalance_pct,
        }
    }
}

/// One metric label and its request count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelCount {
    /// `"<METHOD LABEL> <metric path>"`.
    pub label: String,
    /// Requests with that label.
    pub requests: u64,
}

/// The inspection of one timeline (also its `--json` form).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectReport {
    /// Format version of the file.
    pub format_version: u32,
    /// Profile source recorded at preprocessing.
    pub source: String,
    /// The profile's description.
    pub description: String,
    /// Number of requests.
    pub requests: u64,
    /// Due time of the last request, ms.
    pub duration_ms: f64,
    /// Number of WATCH requests.
    pub watches: u64,
    /// Runner count used for partitioning.
    pub runners: u32,
    /// Shards per runner.
    pub shards_per_runner: u32,
    /// Wire path mode.
    pub path_mode: String,
    /// Requests per verb (profile spelling), verbs with none omitted.
    pub per_verb: BTreeMap<String, u64>,
    /// Requests per runner.
    pub per_runner: Spread,
    /// Requests per shard index, summed over runners.
    pub per_shard: Spread,
    /// Requests per (runner, shard) run: the unit one core replays.
    pub per_run: Spread,
    /// Most requests due in one 1-second bucket.
    pub peak_rate_per_s: u64,
    /// Requests / number of 1-second buckets from 0 to the last due time.
    pub mean_rate_per_s: f64,
    /// Number of distinct metric labels.
    pub label_count: u32,
    /// The most frequent metric labels, most frequent first (ties by label).
    pub top_labels: Vec<LabelCount>,
    /// Whether `verify` (full checksums) ran and passed.
    pub verified: bool,
}

/// Reads every record of `t` once and builds the report. Runs `verify` first when asked.
pub fn inspect(t: &Timeline, verify: bool) -> Result<InspectReport, TimelineError> {
    if verify {
        t.verify()?;
    }
    let h = t.header();
    let shards = h.shards_per_runner as usize;
    let mut per_verb = [0u64; Verb::ALL.len()];
    let mut per_runner = vec![0u64; h.runner_count as usize];
    let mut per_shard = vec![0u64; shards];
    let mut per_run = Vec::with_capacity(t.runs().len());
    let mut per_label = vec![0u64; h.label_count as usize];
    // Keyed by second: a profile of epoch-ms timestamps spans decades, so no dense vector.
    let mut per_second: HashMap<u64, u64> = HashMap::new();
    for (run, info) in t.runs().iter().enumerate() {
        per_runner[info.runner as usize] += info.len;
        per_shard[info.shard as usize] += info.len;
        per_run.push(info.len);
        let records = t.run_records(run).ok_or_else(|| {
            TimelineError::Corrupt(format!("run {run} is outside the record table"))
        })?;
        for rec in records {
            let view = t.view(rec)?;
            per_verb[view.verb as usize] += 1;
            per_label[rec.label as usize] += 1;
            *per_second.entry(rec.due_us / 1_000_000).or_default() += 1;
        }
    }
    let seconds = h.duration_us / 1_000_000 + 1;
    let mut top: Vec<(u64, u32)> = per_label
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(id, &n)| (n, id as u32))
        .collect();
    top.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut top_labels = Vec::with_capacity(TOP_LABELS);
    for &(requests, id) in top.iter().take(TOP_LABELS) {
        top_labels.push(LabelCount {
            label: t.label(id)?.to_string(),
            requests,
        });
    }
    Ok(InspectReport {
        format_version: h.format_version,
        source: h.source.clone(),
        description: h.description.clone(),
        requests: h.request_count,
        duration_ms: h.duration_us as f64 / 1000.0,
        watches: h.watch_count,
        runners: h.runner_count,
        shards_per_runner: h.shards_per_runner,
        path_mode: h.path_mode.clone(),
        per_verb: Verb::ALL
            .iter()
            .zip(per_verb)
            .filter(|(_, n)| *n > 0)
            .map(|(v, n)| (v.as_str().to_string(), n))
            .collect(),
        per_runner: Spread::new(per_runner),
        per_shard: Spread::new(per_shard),
        per_run: Spread::new(per_run),
        peak_rate_per_s: per_second.values().copied().max().unwrap_or(0),
        mean_rate_per_s: h.request_count as f64 / seconds as f64,
        label_count: h.label_count,
        top_labels,
        verified: verify,
    })
}

/// Shows at most this many buckets of a spread on one line.
const SPREAD_SHOWN: usize = 16;

fn write_spread(f: &mut fmt::Formatter<'_>, name: &str, s: &Spread) -> fmt::Result {
    let min = s.counts.iter().min().copied().unwrap_or(0);
    let max = s.counts.iter().max().copied().unwrap_or(0);
    write!(
        f,
        "{name:<12} {} buckets, min {min}, max {max}, imbalance {:.1}%",
        s.counts.len(),
        s.imbalance_pct
    )?;
    if s.counts.len() <= SPREAD_SHOWN {
        let shown: Vec<String> = s.counts.iter().map(u64::to_string).collect();
        write!(f, ": {}", shown.join(" "))?;
    }
    writeln!(f)
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "source       {}", self.source)?;
        if !self.description.is_empty() {
            writeln!(f, "description  {}", self.description)?;
        }
        writeln!(
            f,
            "requests     {} over {} ms ({} WATCH)",
            self.requests, self.duration_ms, self.watches
        )?;
        writeln!(
            f,
            "rate         peak {}/s, mean {:.1}/s (1 s buckets)",
            self.peak_rate_per_s, self.mean_rate_per_s
        )?;
        writeln!(
            f,
            "partitions   {} runners × {} shards, path mode {}, format v{}",
            self.runners, self.shards_per_runner, self.path_mode, self.format_version
        )?;
        let verbs: Vec<String> = self
            .per_verb
            .iter()
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        writeln!(f, "verbs        {}", verbs.join(", "))?;
        write_spread(f, "per runner", &self.per_runner)?;
        write_spread(f, "per shard", &self.per_shard)?;
        write_spread(f, "per run", &self.per_run)?;
        writeln!(
            f,
            "labels       {} distinct; top {}:",
            self.label_count,
            self.top_labels.len()
        )?;
        for l in &self.top_labels {
            writeln!(f, "  {:>10}  {}", l.requests, l.label)?;
        }
        if self.verified {
            writeln!(f, "verify       all checksums and records OK")?;
        }
        Ok(())
    }
}
