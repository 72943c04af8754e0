//! `apisim --run-jobs` against the real binary: Indexed Jobs run as local processes, their pods' status,
//! env, volumes, logs and proxy, failure handling, deletion with propagation, shutdown, and kubectl.
//! Every wait follows a watch or polls the store, bounded by `WAIT`.
//!
//! `lab.rs` starts apisim and makes, watches and waits for Jobs and pods; `runs.rs` runs Jobs to
//! their end (env, logs, failures, retries, volumes); `lifecycle.rs` carries pods' traffic,
//! deletes Jobs with each propagation, stops apisim, and drives kubectl.

mod lab;
mod lifecycle;
mod runs;
