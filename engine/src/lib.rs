//! kreplay's engine: replays a timeline on pinned per-core executors and reports what the server did.

pub mod kubeconfig;
pub mod transport;
pub mod report;
