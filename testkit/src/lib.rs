//! Support for the workspace's integration tests: the real binaries and a bounded way to run
//! them ([`process`]), the one way to start apisim ([`apisim`]), and a profile builder that
//! reads like the scenario it describes ([`profile`]).
//!
//! Every wait here is bounded, every server listens on loopback, and nothing touches
//! process-wide state: the tests of a crate share one process.

pub mod apisim;
pub mod process;
pub mod profile;

pub use apisim::ApiSim;
pub use process::{bin, free_port, run_bounded, run_ok, wait_bounded, workspace};
pub use profile::{h2_spec, profile, spec, write_timeline, Profile};
