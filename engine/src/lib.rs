//! kreplay's engine: replays a timeline on pinned per-core executors and reports what the server did.

pub mod cli;
pub mod clock;
pub mod compare;
pub mod cpu_set;
pub mod gate;
pub mod http1;
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
