//! `engine compare` on real reports (the engine binary against a recording server on
//! 127.0.0.1) and on doctored copies of them: exit codes and messages for each threshold
//! kind, the YAML thresholds file, kperf-format input and unusable input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::*;
use serde_json::Value;

/// A timeline of GETs, LISTs and CREATEs over ~150 ms, one runner.
fn timeline(dir: &Path) -> PathBuf {
    profile()
        .each(0..60i64, |p, i| {
            match i % 3 {
                0 => p.get(&format!("ns/p{}", i % 7)),
                1 => p.list("ns"),
                _ => p.create("ns/").body("{}"),
            }
            .at_ms(i * 2)
        })
        .timeline(dir, &spec(1, 4))
}

/// Runs the engine once against a server with `behavior`; returns the report's path.
fn real_report(dir: &Path, behavior: Behavior) -> PathBuf {
    let t = timeline(dir);
    let server = TestServer::start(behavior);
    let run = run_engine(
        &t,
        dir,
        &[
            "--server",
            &server.url(),
            "--cores",
            "1",
            "--timing",
            "relaxed",
        ],
        &[],
    );
    // A run whose requests all failed exits 1 (the built-in gate) and still writes its report.
    let all_failed = run.status.code() == Some(1) && run.stderr.contains("✗ error_rate>=100%");
    assert!(
        run.status.success() || all_failed,
        "engine run failed: {}",
        run.stderr
    );
    dir.join("out").join("report.json")
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read report")).expect("report JSON")
}

fn write(path: &Path, v: &Value) -> PathBuf {
    std::fs::write(path, serde_json::to_string_pretty(v).expect("serialise")).expect("write");
    path.to_path_buf()
}

fn compare(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("compare")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn engine compare");
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    (
        status.code().expect("exit code"),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn os<'a>(items: &'a [&'a dyn AsRef<std::ffi::OsStr>]) -> Vec<&'a std::ffi::OsStr> {
    items.iter().map(|i| i.as_ref()).collect()
}

/// Multiplies the p99 pair of a percentile list by `factor`.
fn scale_p99(list: &mut Value, factor: f64) {
    for pair in list.as_array_mut().expect("percentile list") {
        if pair[0].as_f64() == Some(0.99) {
            let v = pair[1].as_f64().expect("seconds");
            pair[1] = Value::from(v * factor);
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    base: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let base = real_report(&dir, Behavior::default());
    Fixture {
        _dir: tmp,
        dir,
        base,
    }
}

#[test]
fn a_report_against_itself_passes_and_a_doubled_p99_fails() {
    let f = fixture();
    let (code, out, err) = compare(&os(&[&f.base, &f.base]));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for row in [
        "all",
        "GET",
        "LIST",
        "CREATE",
        "p99",
        "errors",
        "rate",
        "send lag p99",
    ] {
        assert!(out.contains(row), "table lacks {row}:\n{out}");
    }
    assert!(!err.contains("THRESHOLD"), "{err}");
    // --per-url adds one group per metric key, server URL removed.
    let (code, out, err) = compare(&os(&[&f.base, &f.base, &"--per-url"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\nGET /api/v1/namespaces/ns/pods/p0\n"),
        "{out}"
    );
    assert!(out.contains("\nLIST /api/v1/namespaces/ns/pods\n"), "{out}");
    assert!(!out.contains("http://127.0.0.1"), "{out}");

    let mut doubled = read(&f.base);
    scale_p99(&mut doubled["percentileLatencies"], 2.0);
    let doubled = write(&f.dir.join("doubled.json"), &doubled);
    let (code, _, err) = compare(&os(&[&f.base, &doubled]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("p99 latency of all requests regressed +100.0%"),
        "{err}"
    );
    // A looser limit lets it pass; the reverse direction is an improvement.
    let (code, _, err) = compare(&os(&[&f.base, &doubled, &"--max-p99-regression", &"150%"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = compare(&os(&[&doubled, &f.base]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn per_verb_p99_yaml_overrides_and_flags_beating_the_file() {
    let f = fixture();
    let mut v = read(&f.base);
    let p99 = v["kreplay"]["verbs"]["LIST"]["p99"]
        .as_f64()
        .expect("LIST p99");
    v["kreplay"]["verbs"]["LIST"]["p99"] = Value::from(p99 * 1.5);
    let new = write(&f.dir.join("list-slower.json"), &v);
    let (code, _, err) = compare(&os(&[&f.base, &new]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("p99 latency of LIST regressed +50.0%"),
        "{err}"
    );
    assert!(!err.contains("of GET"), "{err}");

    let file = f.dir.join("thresholds.yaml");
    std::fs::write(
        &file,
        "max_p99_regression: 10%\nverbs:\n  LIST:\n    max_p99_regression: 60%\n",
    )
    .unwrap();
    let (code, _, err) = compare(&os(&[&f.base, &new, &"--thresholds", &file]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = compare(&os(&[
        &f.base,
        &new,
        &"--thresholds",
        &file,
        &"--max-p99-regression",
        &"20%",
    ]));
    assert_eq!(code, 1, "the flag replaces the file's LIST override: {err}");
}

#[test]
fn send_lag_and_error_rate_limits() {
    let f = fixture();
    let mut v = read(&f.base);
    v["kreplay"]["sendLag"]["p99"] = Value::from(0.25);
    let laggy = write(&f.dir.join("laggy.json"), &v);
    let (code, _, err) = compare(&os(&[&f.base, &laggy, &"--max-lag-p99", &"200ms"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("p99 send lag is 250.000 ms, limit 200.000 ms"),
        "{err}"
    );
    let (code, _, err) = compare(&os(&[&f.base, &laggy, &"--max-lag-p99", &"300ms"]));
    assert_eq!(code, 0, "{err}");

    // A real run where every request fails.
    let failing_dir = f.dir.join("failing");
    std::fs::create_dir_all(&failing_dir).unwrap();
    let failing = real_report(
        &failing_dir,
        Behavior {
            status: 503,
            ..Behavior::default()
        },
    );
    let (code, _, err) = compare(&os(&[&f.base, &failing, &"--max-error-rate", &"0.1%"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error rate of all requests is 100.000% (60 of 60), limit 0.100%"),
        "{err}"
    );
    assert!(
        err.contains("error rate of CREATE is 100.000% (20 of 20)"),
        "{err}"
    );
    // Without an error limit, the failures alone do not fail the gate (no p99 to compare is listed).
    let (code, _, err) = compare(&os(&[&f.base, &failing]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("not checked: p99 regression of all requests: no p99 in the new report"),
        "{err}"
    );

    let file = f.dir.join("errors.yaml");
    std::fs::write(&file, "max_error_rate: 0.1%\n").unwrap();
    let (code, _, err) = compare(&os(&[&f.base, &failing, &"--thresholds", &file]));
    assert_eq!(code, 1, "{err}");
}

#[test]
fn kperf_format_reports_use_the_fields_they_have() {
    let f = fixture();
    let mut v = read(&f.base);
    v.as_object_mut().unwrap().remove("kreplay");
    let kperf = write(&f.dir.join("kperf.json"), &v);
    let mut slow = v.clone();
    scale_p99(&mut slow["percentileLatencies"], 2.0);
    for (_, list) in slow["percentileLatenciesByURL"].as_object_mut().unwrap() {
        scale_p99(list, 2.0);
    }
    let slow = write(&f.dir.join("kperf-slow.json"), &slow);

    let (code, out, err) = compare(&os(&[&kperf, &kperf, &"--max-lag-p99", &"1ms"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("kperf report (kperf does not record send lag)"),
        "{err}"
    );
    // Per-verb rows come from the method labels of the keys: CREATE is kperf's POST.
    assert!(out.contains("POST"), "{out}");
    assert!(out.contains("GET "), "{out}");
    // GET has 7 keys and there are no raw latencies: its percentiles cannot be pooled.
    assert!(err.contains("GET has 7 metric keys"), "{err}");

    let (code, _, err) = compare(&os(&[&kperf, &slow]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("p99 latency of all requests"), "{err}");
    assert!(
        err.contains("p99 latency of LIST"),
        "single-key labels are checked: {err}"
    );

    // Mixed: the kreplay side is folded into method labels through its histograms.
    let (code, out, err) = compare(&os(&[&f.base, &slow]));
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("POST") && !out.contains("CREATE"), "{out}");
}

#[test]
fn unusable_input_exits_2_naming_the_file() {
    let f = fixture();
    let missing = f.dir.join("missing.json");
    let (code, _, err) = compare(&os(&[&f.base, &missing]));
    assert_eq!(code, 2);
    assert!(
        err.contains("missing.json") && err.contains("cannot read"),
        "{err}"
    );

    let not_json = f.dir.join("notes.txt");
    std::fs::write(&not_json, "hello").unwrap();
    let (code, _, err) = compare(&os(&[&not_json, &f.base]));
    assert_eq!(code, 2);
    assert!(err.contains("notes.txt: not JSON"), "{err}");

    let other = f.dir.join("other.json");
    std::fs::write(&other, "{\"apiVersion\": \"v1\"}").unwrap();
    let (code, _, err) = compare(&os(&[&f.base, &other]));
    assert_eq!(code, 2);
    assert!(
        err.contains("other.json: not a report: no integer `total`"),
        "{err}"
    );

    let bad_yaml = f.dir.join("t.yaml");
    std::fs::write(&bad_yaml, "max_p99_regresion: 10%\n").unwrap();
    let (code, _, err) = compare(&os(&[&f.base, &f.base, &"--thresholds", &bad_yaml]));
    assert_eq!(code, 2);
    assert!(
        err.contains("t.yaml") && err.contains("max_p99_regresion"),
        "{err}"
    );
    std::fs::write(&bad_yaml, "max_error_rate: 0.1\n").unwrap();
    let (code, _, err) = compare(&os(&[&f.base, &f.base, &"--thresholds", &bad_yaml]));
    assert_eq!(code, 2);
    assert!(
        err.contains("max_error_rate") && err.contains("with %"),
        "{err}"
    );
}
