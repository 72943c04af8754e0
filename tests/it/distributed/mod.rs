//! Distributed replays: `engine job manifest` output validated against Kubernetes' schemas
//! (`manifests`), `engine run URL` and the runner's report server (`runner`), and `engine job
//! run|collect` carried out end to end by `apisim --run-jobs`, each pod a local process of the
//! real engine binary (`jobs`). `support` holds what they share.
//!
//! Serial: these tests must run alone (see `support::one_at_a_time`); `scripts/test.sh` runs them
//! with `distributed:: --test-threads=1` after the rest.

mod jobs;
mod manifests;
mod runner;
mod support;
