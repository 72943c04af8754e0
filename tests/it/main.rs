//! End-to-end tests: the real binaries (`preprocess`, `engine`, `apisim`) run against apisim
//! on 127.0.0.1: replays (`replay_*`), faults and limits, reports, the runner image, distributed
//! jobs (`distributed`), and the links of the documentation. `util` holds what they share.

mod util;

mod distributed;
mod docs_links;
mod image;
mod kperf_warnings;
mod replay_apisim;
mod replay_apisim_faults;
mod replay_concurrency;
mod replay_retries;
mod report_destination;
mod run_limits_signals;
mod smoke_bench;
mod timeline_damage;
