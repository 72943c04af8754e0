//! kperf replay profiles in, memory-mapped binary timelines out.
//!
//! This crate owns the profile model and its validation, the profile sources,
//! the request normalisation and partitioning rules, and the timeline format
//! (writer and reader: the format has one owner). The engine never parses YAML;
//! this crate never sends a request. The kperf rules it keeps (§1–§6) are numbered in
//! `docs/kperf-compatibility.md`.

pub mod destination;
pub mod duration;
pub mod export;
pub mod inspect;
pub mod loader;
pub mod partition;
pub mod profile;
pub mod request_target;
pub mod source;
pub mod timeline;
pub mod validate;
pub mod verbosity;
pub mod warnings;
pub mod yaml;
