//! What the end-to-end scenarios share: the sample profiles, the real `preprocess` and
//! `engine` binaries run with a deadline, reports, and the per-object order check (`order`).
//! Binaries, apisim and profiles come from `testkit`, re-exported here. Every wait is bounded.

#![allow(dead_code)]

pub mod order;

pub use testkit::{
    bin, free_port, profile, run_bounded, run_ok, spec, wait_bounded, workspace, ApiSim,
};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A sample profile kept in the repository (`bench/profiles/<name>`).
pub fn fixture(name: &str) -> PathBuf {
    workspace().join("bench").join("profiles").join(name)
}

/// `engine run TIMELINE ARGS --quiet --result RESULT`, spawned with stderr piped (for a test
/// that acts while it runs, then collects it with [`wait_bounded`]).
pub fn spawn_engine_run(timeline: &Path, args: &[&str], result: &Path) -> Child {
    Command::new(bin("engine"))
        .arg("run")
        .arg(timeline)
        .args(args)
        .args(["--quiet", "--result"])
        .arg(result)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn engine")
}

/// `engine run TIMELINE ARGS --quiet --result <tmp>` to its end (at most 120 s): its output
/// and the report it wrote, if it wrote one.
pub fn run_to_report(timeline: &Path, args: &[&str]) -> (Output, Option<serde_json::Value>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let result = dir.path().join("report.json");
    let out = wait_bounded(
        spawn_engine_run(timeline, args, &result),
        Duration::from_secs(120),
    );
    let report = std::fs::read_to_string(&result).ok().map(|text| {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("report is JSON ({e}): {text}"))
    });
    (out, report)
}

/// The JSON report at `path`.
pub fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written"))
        .expect("report is JSON")
}

/// A profile generated from `cfg` (`bench::profile_gen`, as `kreplay-gen` writes it) at
/// `dir/<name>.yaml`, preprocessed with `extra` flags into `dir/<name>.bin` (returned).
pub fn generated_timeline(
    dir: &Path,
    name: &str,
    cfg: &bench::profile_gen::GenConfig,
    extra: &[&str],
) -> PathBuf {
    let profile = dir.join(format!("{name}.yaml"));
    bench::profile_gen::write_profile_to_path(cfg, profile.to_str().expect("utf-8 path"))
        .expect("generate profile");
    let timeline = dir.join(format!("{name}.bin"));
    preprocess(&profile, &timeline, extra);
    timeline
}

/// `preprocess PROFILE -o OUT` with the real binary; panics with stderr on failure.
pub fn preprocess(profile: &Path, out: &Path, extra: &[&str]) {
    let o = run_bounded(
        Command::new(bin("preprocess"))
            .arg(profile)
            .arg("-o")
            .arg(out)
            .args(extra),
        Duration::from_secs(120),
    );
    assert!(
        o.status.success(),
        "preprocess failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
