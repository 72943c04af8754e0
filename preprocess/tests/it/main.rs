//! preprocess's integration tests, one module a scenario family: profiles (`profile_*`), request
//! targets (`target_*`), partitioning (`partition_*`), the timeline file (`timeline_*`), the fast
//! loader and the command line (`cli_*`). `util` holds what they share.

mod util;

mod cli_output_paths;
mod cli_preprocess;
mod fast_loader;
mod partition_sample_profile;
mod partition_shards;
mod partition_vectors;
mod profile_dialect;
mod profile_limits;
mod profile_memory;
mod profile_source;
mod profile_validation;
mod target_errors;
mod target_go_vectors;
mod target_invariants;
mod target_metric;
mod target_path;
mod target_query;
mod timeline_blocks;
mod timeline_corruption;
mod timeline_format;
mod timeline_open_cost;
mod timeline_roundtrip;
