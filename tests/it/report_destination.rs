//! End to end: where the report goes. An unusable `--result` (a directory, a path under a
//! file, a place that cannot be created) is refused before anything is sent; a destination
//! that fails only when written (`/dev/full`, a closed stdout pipe) gets the report saved to a
//! fallback file named on stderr, with exit code 3. `engine merge -o` does the same.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::{bin, fixture, preprocess, run_bounded, wait_bounded, ApiSim};
use serde_json::Value;

/// Requests in the sample profile.
const SAMPLE_REQUESTS: u64 = 9;

fn sample_timeline(dir: &Path) -> PathBuf {
    let timeline = dir.join("timeline.bin");
    preprocess(&fixture("kperf_sample_replay.yaml"), &timeline, &[]);
    timeline
}

/// `engine run TIMELINE --server SIM --quiet --result RESULT`, with the fallback directory
/// (`TMPDIR`) in `tmp`.
fn engine_run(timeline: &Path, sim: &ApiSim, result: &Path, tmp: &Path) -> Output {
    run_bounded(
        Command::new(bin("engine"))
            .env("TMPDIR", tmp)
            .arg("run")
            .arg(timeline)
            .args(["--server", &sim.url, "--quiet", "--result"])
            .arg(result),
        Duration::from_secs(60),
    )
}

fn recorded(sim: &ApiSim) -> u64 {
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    order["recorded"].as_u64().expect("recorded count")
}

/// The fallback file named on stderr, read as JSON; it must lie in `tmp`.
fn fallback_report(stderr: &str, tmp: &Path) -> Value {
    let path = stderr
        .split("the report was saved to ")
        .nth(1)
        .and_then(|rest| rest.split(" instead").next())
        .unwrap_or_else(|| panic!("no fallback path on stderr: {stderr}"));
    let path = Path::new(path);
    assert!(path.starts_with(tmp), "{} is not in TMPDIR", path.display());
    serde_json::from_str(&std::fs::read_to_string(path).expect("fallback file")).expect("JSON")
}

#[test]
fn an_unusable_result_path_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = sample_timeline(dir.path());
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, b"x").expect("write");
    for (result, says) in [
        (dir.path().to_path_buf(), "is a directory"),
        (a_file.join("report.json"), "cannot create its directory"),
        (
            PathBuf::from("/proc/kreplay-report.json"),
            "cannot open it for writing",
        ),
    ] {
        let out = engine_run(&timeline, &sim, &result, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", result.display());
        assert!(stderr.contains("--result"), "names the flag: {stderr}");
        assert!(stderr.contains(says), "{}: {stderr}", result.display());
        assert_eq!(recorded(&sim), 0, "{}: nothing was sent", result.display());
    }
    assert_eq!(std::fs::read(&a_file).expect("read"), b"x");
}

#[test]
fn a_report_that_cannot_be_written_goes_to_a_fallback_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = sample_timeline(dir.path());
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let out = engine_run(&timeline, &sim, Path::new("/dev/full"), dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("/dev/full"), "{stderr}");
    let report = fallback_report(&stderr, dir.path());
    assert_eq!(report["totalRun"], SAMPLE_REQUESTS, "{report}");
    assert_eq!(recorded(&sim), SAMPLE_REQUESTS);
}

#[test]
fn a_closed_stdout_pipe_sends_the_report_to_a_fallback_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = sample_timeline(dir.path());
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let mut child = Command::new(bin("engine"))
        .env("TMPDIR", dir.path())
        .arg("run")
        .arg(&timeline)
        .args(["--server", &sim.url, "--quiet", "--result", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn engine");
    // Close the read end: the report's write gets EPIPE.
    drop(child.stdout.take());
    let out = wait_bounded(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("stdout"), "{stderr}");
    let report = fallback_report(&stderr, dir.path());
    assert_eq!(report["totalRun"], SAMPLE_REQUESTS, "{report}");
}

#[test]
fn merge_output_is_checked_first_and_never_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = sample_timeline(dir.path());
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let mut reports = Vec::new();
    for runner in ["0", "1"] {
        let report = dir.path().join(format!("runner-{runner}.json"));
        let out = run_bounded(
            Command::new(bin("engine"))
                .arg("run")
                .arg(&timeline)
                .args(["--server", &sim.url, "--quiet", "--runner-index", runner])
                .arg("--result")
                .arg(&report),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        reports.push(report);
    }
    let merge = |output: &Path| {
        run_bounded(
            Command::new(bin("engine"))
                .env("TMPDIR", dir.path())
                .arg("merge")
                .args(&reports)
                .arg("-o")
                .arg(output),
            Duration::from_secs(30),
        )
    };
    let out = merge(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");

    let out = merge(Path::new("/dev/full"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let merged = fallback_report(&stderr, dir.path());
    assert_eq!(merged["totalRun"], SAMPLE_REQUESTS, "{merged}");
}
