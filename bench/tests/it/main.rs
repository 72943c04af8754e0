//! bench's integration tests against the real binaries: apisim (`apisim_*`), the profile
//! generator (`profile_gen_*`), the lab (`lab_*`) and the floor probe. `util` holds the HTTP/1.1
//! and h2c clients they talk to apisim with; apisim itself is started by `testkit`.

mod util;

mod apisim_embed;
mod apisim_faults;
mod apisim_http;
mod apisim_jobs;
mod apisim_kubectl;
mod apisim_reset;
mod apisim_watch;
mod floor_probe;
mod lab_order;
mod lab_render;
mod profile_gen_loads;
mod profile_gen_output;
mod profile_gen_shape;
