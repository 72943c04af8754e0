//! kreplay's engine: replays a timeline on pinned per-core executors and reports what the server did.
//!
//! It owns cluster access (`kubeconfig`, `target`, `transport`), the replay (`run` starts one
//! executor per core; `runtime` is one core's schedule, ready queue, pools and WATCHes), the
//! measurements (`metrics`, per core until the end of a run), the report (`report`: kperf's
//! members, then kreplay's) and what reads reports back (`report_merge`, `compare`,
//! `report_view`), and distributed replays (`job`). It never parses a profile: `preprocess`
//! writes the timeline and owns its format.
//!
//! How a request goes from the timeline to the report, the invariants of the hot path and the
//! words the code uses are in `docs/ARCHITECTURE.md`; the kperf rules it keeps are numbered in
//! `docs/kperf-compatibility.md`.
//!
//! Entry points: `run::run` (a replay), `report::render_report` (its report),
//! `report_merge::merge_files`, `compare::compare_files`.

pub mod cli;
pub mod clock;
pub mod compare;
pub mod cpu_set;
pub mod error_class;
pub mod gate;
pub mod http1;
pub mod http2;
pub mod interrupt;
pub mod job;
pub mod kubeconfig;
pub mod live_metrics;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod prefetch;
pub mod report;
pub mod report_destination;
pub mod report_merge;
pub mod report_view;
pub mod run;
pub mod runtime;
pub mod source;
pub mod target;
pub mod timeline_check;
pub mod transport;
