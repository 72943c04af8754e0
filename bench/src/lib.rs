//! kreplay's lab: apisim, the synthetic profile generator, and the benchmark harness.

pub mod apisim;
pub mod lab;
pub mod profile_gen;
