//! kreplay's lab: apisim, the synthetic profile generator, and the benchmark harness.
//!
//! Nothing in `engine` or `preprocess` depends on this crate: their tests start the `apisim`
//! binary. The lab's measurements go to `bench/results/` and `bench/RESULTS.md` only.

pub mod apisim;
pub mod lab;
pub mod profile_gen;
