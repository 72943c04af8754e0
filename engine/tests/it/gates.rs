//! Gates: `engine run --fail-on` (each rule crossed and not crossed, the all-failed rule) and
//! `engine compare` (different timelines refused, `--fail-on` with any percentile, absolute
//! and relative, several bases by their spread, JSON and JUnit output).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;
use preprocess::profile::ProfileRequest;
use serde_json::Value;

fn gets_and_lists(n: i64) -> Vec<ProfileRequest> {
    profile()
        .each(0..n, |p, i| {
            if i % 2 == 0 {
                p.get("ns/p").at_ms(i)
            } else {
                p.list("ns").at_ms(i)
            }
        })
        .build()
}

fn run_with(dir: &Path, url: &str, gates: &[&str]) -> EngineRun {
    let tl = write_timeline(dir, &spec(1, 2), &gets_and_lists(40));
    let mut args = vec!["--server", url, "--cores", "1"];
    for g in gates {
        args.extend(["--fail-on", g]);
    }
    run_engine(&tl, dir, &args, &[])
}

#[test]
fn run_exits_1_exactly_when_a_threshold_is_crossed() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let passing = [
        "error_rate>0.1%",
        "p99(GET)>10s",
        "p50(LIST)>=10s",
        "max>1m",
        "lag_p99>1h",
        "rate<0",
    ];
    let run = run_with(dir.path(), &server.url(), &passing);
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    for g in passing {
        assert!(
            run.stderr.contains(&format!("✓ {g}: ")),
            "{g}: {}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains('✗'), "{}", run.stderr);

    // Each kind crossed on its own (a run per gate: exit 1, the report still written).
    for crossed in [
        "error_rate>=0%",
        "p99(GET)>1ns",
        "p50(LIST)>0",
        "p90>=0",
        "max>1ns",
        "lag_max>=0",
        "rate>0",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let run = run_with(dir.path(), &server.url(), &["p99>1h", crossed]);
        assert_eq!(run.status.code(), Some(1), "{crossed}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("✗ {crossed}: ")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("✓ p99>1h: "), "{}", run.stderr);
        assert_eq!(num(run.report.as_ref().unwrap(), "totalRun"), 40);
    }
    // A figure the report cannot hold fails rather than passing unchecked.
    let run = run_with(dir.path(), &server.url(), &["p99(WATCH)>1s"]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("✗ p99(WATCH)>1s: not checked"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_run_in_which_every_request_failed_exits_1_with_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let run = run_with(dir.path(), &url, &[]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("✗ error_rate>=100%: 100.000% (40 of 40 failed)"),
        "{}",
        run.stderr
    );
    let report = run.report.expect("the report is still written");
    assert_eq!(num(&report, "totalFailed"), 40);
}

#[test]
fn bad_expressions_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_with(dir.path(), "http://127.0.0.1:1", &["p99(GET)>200"]);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("missing unit"), "{}", run.stderr);
    assert!(run.report.is_none());
}

fn compare(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("compare")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("engine compare");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A real report of 40 requests.
fn real_report(dir: &Path) -> Value {
    let server = TestServer::start(Behavior::default());
    let run = run_with(dir, &server.url(), &[]);
    assert!(run.status.success(), "{}", run.stderr);
    run.report.unwrap()
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p.to_str().unwrap().to_string()
}

/// The report in kperf's form (no kreplay section) with its overall p50 and p95 set.
fn kperf_form(report: &Value, p50: f64, p95: f64) -> Value {
    let mut v = report.clone();
    v.as_object_mut().unwrap().remove("kreplay");
    for pair in v["percentileLatencies"].as_array_mut().unwrap() {
        match pair[0].as_f64() {
            Some(0.5) => pair[1] = Value::from(p50),
            Some(0.95) => pair[1] = Value::from(p95),
            _ => {}
        }
    }
    v
}

#[test]
fn compare_refuses_other_timelines_and_gates_any_percentile() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let report = real_report(d);
    let base = write(d, "base.json", &report);
    let mut other = report.clone();
    other["kreplay"]["config"]["timelineId"] = Value::from("xxh3:0000000000000000");
    let other = write(d, "other.json", &other);
    let (code, _, err) = compare(&[&base, &other]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("different timelines") && err.contains("--force"),
        "{err}"
    );
    let (code, _, err) = compare(&[&base, &other, "--force"]);
    assert_eq!(code, 0, "{err}");
    let mut faster = report.clone();
    faster["kreplay"]["config"]["speed"] = Value::from(2.0);
    let faster = write(d, "faster.json", &faster);
    let (code, _, err) = compare(&[&base, &faster]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("different speeds"), "{err}");

    // p50 regressions are gated now (relative), p95 absolutely; a table check column.
    let b = write(d, "b.json", &kperf_form(&report, 0.010, 0.020));
    let n = write(d, "n.json", &kperf_form(&report, 0.015, 0.020));
    let (code, out, err) = compare(&[
        &b,
        &n,
        "--fail-on",
        "p50>20%",
        "--max-p99-regression",
        "1000%",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("✗ p50>20%: 15.000 ms vs base 10.000 ms (+50.0%)"),
        "{out}"
    );
    assert!(out.lines().next().unwrap().ends_with("check"), "{out}");
    assert!(out.contains("✓ pass"), "{out}");
    let (code, out, _) = compare(&[&b, &n, "--fail-on", "p50>60%", "--fail-on", "p95>=20ms"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✓ p50>60%") && out.contains("✗ p95>=20ms: 20.000 ms"),
        "{out}"
    );

    // Two bases: the new run is inside their spread, so a noisy first base does not fail it.
    let b2 = write(d, "b2.json", &kperf_form(&report, 0.014, 0.020));
    let (code, out, err) = compare(&["--base", &b, "--base", &b2, &n, "--fail-on", "p50>20%"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("vs base 14.000 ms (+7.1%, bases 10.000 ms–14.000 ms)"),
        "{out}"
    );

    // The thresholds file holds the same expressions (a gate checked into a repository).
    let file = d.join("gate.yaml");
    std::fs::write(&file, "fail_on:\n  - p50>20%\n").unwrap();
    let (code, out, _) = compare(&[&b, &n, "--thresholds", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ p50>20%"), "{out}");
    std::fs::write(&file, "fail_on:\n  - p50>>20%\n").unwrap();
    let (code, _, err) = compare(&[&b, &n, "--thresholds", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("fail_on[0]"), "{err}");

    // JSON and JUnit carry the same verdicts.
    let (code, out, _) = compare(&[&b, &n, "--fail-on", "p50>20%", "--format", "json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(v["pass"], false);
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "p50>20%" && c["pass"] == false));
    let (code, out, _) = compare(&[&b, &n, "--fail-on", "p50>20%", "--format", "junit"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("<?xml"), "{out}");
    assert!(
        out.contains(
            "<testcase classname=\"kreplay.compare\" name=\"p50&gt;20%\">\n      <failure"
        ),
        "{out}"
    );
}
