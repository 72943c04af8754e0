//! kperf's configuration warnings (`validateAndWarnConfig`, kperf's thresholds): `preprocess`
//! gives them about the profile, `engine run` about the profile with its flags, even with
//! `--quiet`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::{bin, run_bounded, workspace, ApiSim};

fn sample() -> String {
    std::fs::read_to_string(workspace().join("bench/profiles/kperf_sample_replay.yaml"))
        .expect("the kperf sample in bench/profiles")
}

/// `preprocess PROFILE -o OUT`; returns its stderr.
fn preprocess_stderr(profile: &Path, out: &Path) -> String {
    let o = run_bounded(
        Command::new(bin("preprocess"))
            .arg(profile)
            .arg("-o")
            .arg(out),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "preprocess failed: {err}");
    err
}

#[test]
fn the_kperf_sample_warns_about_workers_and_connections_in_preprocess_and_engine() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("sample.yaml");
    std::fs::write(&profile, sample()).unwrap();
    let timeline = dir.path().join("t.bin");
    let err = preprocess_stderr(&profile, &timeline);
    // 9 requests over 0.4 s in 2 runners: ~10 requests/s each, so kperf recommends 11
    // workers (clientsPerRunner is 10) and 5 connections (connsPerRunner is 2).
    for runner in 0..2 {
        assert!(
            err.contains(&format!(
                "warning: runner {runner}: 2 connections per runner may be insufficient"
            )),
            "{err}"
        );
    }
    assert!(
        err.contains("set spec.connsPerRunner to at least 5"),
        "{err}"
    );
    assert!(!err.contains("exceed"), "{err}");

    // The engine, with --quiet, names its own flags; a larger --conns silences that warning.
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let run = |extra: &[&str]| {
        let o = run_bounded(
            Command::new(bin("engine"))
                .arg("run")
                .arg(&timeline)
                .args(["--server", &sim.url, "--quiet", "--result"])
                .arg(dir.path().join("r.json"))
                .args(extra),
            Duration::from_secs(60),
        );
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "engine failed: {err}");
        err
    };
    let err = run(&[]);
    assert!(
        err.contains("engine: warning: runner 0: 2 connections per runner may be insufficient"),
        "{err}"
    );
    assert!(err.contains("pass --conns 10 or more"), "{err}");
    let err = run(&["--conns", "10"]);
    assert!(
        !err.contains("connections per runner may be insufficient"),
        "{err}"
    );
}

#[test]
fn sixty_connections_per_runner_exceed_kperfs_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("conns60.yaml");
    let text = sample().replace("connsPerRunner: 2", "connsPerRunner: 60");
    assert!(text.contains("connsPerRunner: 60"));
    std::fs::write(&profile, text).unwrap();
    let err = preprocess_stderr(&profile, &dir.path().join("t.bin"));
    for runner in 0..2 {
        assert!(
            err.contains(&format!(
                "warning: runner {runner}: 60 connections per runner exceed kperf's recommended maximum of 50"
            )),
            "{err}"
        );
    }
    assert!(err.contains("raise spec.runnerCount"), "{err}");
    assert!(
        !err.contains("connections per runner may be insufficient"),
        "{err}"
    );
}
