//! Distributed replays: `engine job manifest` output validated against Kubernetes' schemas
//! (`manifests`), `engine run URL` and the runner's report server (`runner`), and `engine job
//! run|collect` carried out end to end by `apisim --run-jobs`, each pod a local process of the
//! real engine binary (`jobs`). `support` holds what they share.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/order.rs"]
mod order;

mod jobs;
mod manifests;
mod runner;
mod support;
