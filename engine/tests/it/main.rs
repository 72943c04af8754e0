//! The engine's integration tests, one module a scenario family: `engine run` against
//! recording servers, apisim and nginx (`run_*`), its transports and kubeconfigs
//! (`transport_*`, `kubeconfig_*`), reports, gates and comparisons (`report_*`, `gates`,
//! `compare_*`, `per_second_series`, `live_metrics`) and the command line (`cli_*`). `util` holds
//! the servers and runners they share; profiles and apisim come from `testkit`.

mod util;

mod cli_cpus;
mod compare_exit_codes;
mod gates;
mod kubeconfig_credentials;
mod kubeconfig_resolution;
mod live_metrics;
mod per_second_series;
mod report_defaults;
mod report_format_error_class;
mod report_format_gofmt;
mod report_format_percentile;
mod report_html;
mod report_merge_runners;
mod run_conn_reuse;
mod run_counting;
mod run_faults;
mod run_h2_goaway;
mod run_h2_streams;
mod run_h2_watch;
mod run_kubectl_flags;
mod run_library;
mod run_nginx_conns;
mod run_order;
mod run_pool;
mod run_preflight;
mod run_timing;
mod run_tls;
mod run_token_rotation;
mod run_watch;
mod run_watch_lane;
mod run_wire;
mod transport_http2_errors;
mod transport_nginx;
