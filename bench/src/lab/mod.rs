//! The benchmark lab's data side: measurement records (`records.jsonl`), their summaries
//! (medians, best peer, ratio), the markdown/JSON report and SVG plots, and the per-object
//! order check of a replay against apisim. `scripts/bench.sh` measures; `kreplay-lab` renders.

pub mod markdown;
pub mod model;
pub mod order;
pub mod plots;
pub mod record;
pub mod render;
pub mod stats;
