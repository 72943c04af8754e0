//! The run report: kperf's JSON report plus kreplay's own section.

pub mod error_class;
pub mod gofmt;
pub mod percentile;
