//! `engine merge` on real reports: the engine binary replays each runner of one timeline
//! against a recording server on 127.0.0.1, the reports are merged, and the result is
//! checked against a full local run of the same timeline and against the inputs' sums.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;
use engine::report::kperf::hdr_percentiles;
use engine::report::kreplay::decode_histogram;
use engine::report::percentile::kperf_percentiles;
use hdrhistogram::Histogram;
use serde_json::Value;

/// 90 requests of several verbs over ~180 ms, on objects spread over 3 runners.
fn timeline(dir: &Path, description_suffix: &str) -> PathBuf {
    let reqs = profile()
        .each(0..90i64, |p, i| {
            let object = format!("ns/o{}", i % 11);
            match i % 5 {
                0 => p.create(&object).body("{}"),
                1 | 2 => p.get(&object),
                3 => p.patch(&object).body("{\"a\":1}"),
                _ => p.list("ns"),
            }
            .at_ms(i * 2)
        })
        .build();
    let d = dir.join(format!("t{description_suffix}"));
    std::fs::create_dir_all(&d).unwrap();
    let path = write_timeline(&d, &spec(3, 2), &reqs);
    if description_suffix.is_empty() {
        return path;
    }
    // "-twin": the same requests written from another profile path (the same content);
    // otherwise another timeline: the same description, one request fewer.
    let twin = description_suffix == "-twin";
    let other = dir.join(format!("other{description_suffix}.bin"));
    let mut w = preprocess::timeline::TimelineWriter::create(
        &other,
        preprocess::timeline::WriterOptions {
            source: format!("another-profile{description_suffix}"),
            ..Default::default()
        },
    )
    .unwrap();
    let keep = if twin { reqs.len() } else { reqs.len() - 1 };
    for (i, r) in reqs.iter().take(keep).enumerate() {
        w.push(i as u64, r, preprocess::request_target::PathMode::Recorded)
            .unwrap();
    }
    // The same description as `write_timeline`: only the content and the path differ.
    w.finish(&spec(3, 2), testkit::profile::TIMELINE_DESCRIPTION)
        .unwrap();
    other
}

/// Runs the engine with `args`; returns the report's path (in a fresh sub-directory).
fn run_into(t: &Path, dir: &Path, name: &str, url: &str, args: &[&str]) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let mut all = vec!["--server", url, "--cores", "1", "--timing", "relaxed"];
    all.extend_from_slice(args);
    let run = run_engine(t, &d, &all, &[]);
    assert!(
        run.status.success(),
        "engine run {name} failed: {}",
        run.stderr
    );
    d.join("out").join("report.json")
}

fn merge(inputs: &[&Path], out: &Path, extra: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("merge")
        .args(inputs)
        .arg("-o")
        .arg(out)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run engine merge");
    (
        o.status.code().expect("exit code"),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A percentile list as numbers (JSON `1` and `1.0` are the same value).
fn pairs(v: &Value) -> Vec<(f64, f64)> {
    v.as_array()
        .expect("percentile list")
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON")
}

fn hist(report: &Value, path: &[&str]) -> Histogram<u64> {
    let mut v = &report["kreplay"]["histograms"];
    for p in path {
        v = &v[*p];
    }
    decode_histogram(
        v.as_str()
            .unwrap_or_else(|| panic!("no histogram at {path:?}")),
    )
    .expect("decodes")
}

fn by_url_lens(report: &Value) -> BTreeMap<String, u64> {
    report["kreplay"]["histograms"]["byURL"]
        .as_object()
        .map(|m| {
            m.keys()
                .map(|k| (k.clone(), hist(report, &["byURL", k, "service"]).len()))
                .collect()
        })
        .unwrap_or_default()
}

fn verb_counts(report: &Value) -> BTreeMap<String, (u64, u64)> {
    report["kreplay"]["verbs"]
        .as_object()
        .expect("verbs")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v["count"].as_u64().unwrap(), v["errors"].as_u64().unwrap()),
            )
        })
        .collect()
}

#[test]
fn merged_runner_reports_equal_a_full_run_and_the_sum_of_their_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let t = timeline(dir.path(), "");
    // The recording server answers 200 to everything: runners and the full run see the same outcomes.
    let server = TestServer::start(Behavior::default());
    let url = server.url();
    let runners: Vec<PathBuf> = (0..3)
        .map(|i| {
            run_into(
                &t,
                dir.path(),
                &format!("r{i}"),
                &url,
                &["--runner-index", &i.to_string()],
            )
        })
        .collect();
    let full = read(&run_into(&t, dir.path(), "full", &url, &[]));
    let merged_path = dir.path().join("merged.json");
    let inputs: Vec<&Path> = runners.iter().map(PathBuf::as_path).collect();
    let (code, err) = merge(&inputs, &merged_path, &[]);
    assert_eq!(code, 0, "{err}");
    let merged = read(&merged_path);
    let parts: Vec<Value> = runners.iter().map(|p| read(p)).collect();

    // Every runner replayed a non-empty share (so the merge is not trivially one report).
    assert!(parts.iter().all(|p| p["total"].as_u64().unwrap() > 0));
    for key in ["total", "totalRun", "totalFailed", "runnerCount"] {
        assert_eq!(merged[key], full[key], "{key}");
    }
    assert_eq!(merged["total"], 90);
    assert_eq!(verb_counts(&merged), verb_counts(&full));
    assert_eq!(
        by_url_lens(&merged),
        by_url_lens(&full),
        "per-key sample counts"
    );
    assert_eq!(
        merged["kreplay"]["config"]["runnerIndexes"],
        serde_json::json!([0, 1, 2])
    );

    // Histograms: the merged totals are the inputs' sums, and the percentiles are the sum's.
    for path in [["all", "service"], ["all", "scheduled"]] {
        let sum: u64 = parts.iter().map(|p| hist(p, &path).len()).sum();
        assert_eq!(hist(&merged, &path).len(), sum, "{path:?}");
    }
    let lag_sum: u64 = parts.iter().map(|p| hist(p, &["sendLag"]).len()).sum();
    assert_eq!(hist(&merged, &["sendLag"]).len(), lag_sum);
    assert_eq!(
        merged["kreplay"]["sendLag"]["count"].as_u64(),
        Some(lag_sum)
    );
    let mut added = engine::metrics::new_histogram();
    for p in &parts {
        added.add(hist(p, &["all", "service"])).unwrap();
    }
    assert_eq!(
        pairs(&merged["percentileLatencies"]),
        hdr_percentiles(&added)
    );
    // duration is the longest runner's.
    let longest = parts
        .iter()
        .map(|p| p["duration"].as_str().unwrap().to_string())
        .max_by_key(|d| engine::compare::read::parse_go_duration(d).unwrap())
        .unwrap();
    assert_eq!(merged["duration"].as_str(), Some(longest.as_str()));
    let bytes: u64 = parts
        .iter()
        .map(|p| p["totalReceivedBytes"].as_u64().unwrap())
        .sum();
    assert_eq!(merged["totalReceivedBytes"].as_u64(), Some(bytes));

    // The replay's shape: every report counts each request once as scheduled and once as
    // sent; the merged counts add up second by second to the same totals.
    let counts = per_second;
    for k in ["scheduled", "sent"] {
        let part_sum: u64 = parts.iter().map(|p| counts(p, k).iter().sum::<u64>()).sum();
        assert_eq!(part_sum, 90, "{k}");
        assert_eq!(counts(&merged, k).iter().sum::<u64>(), 90, "{k}");
        assert_eq!(counts(&full, k).iter().sum::<u64>(), 90, "{k}");
    }
    // 90 requests over 180 ms at speed 1: all scheduled in the first second.
    assert_eq!(counts(&full, "scheduled"), vec![90]);
    assert_eq!(
        merged["kreplay"]["config"]["timelineId"],
        full["kreplay"]["config"]["timelineId"]
    );
    assert_eq!(merged["kreplay"]["config"]["runnerCount"], 3);
}

#[test]
fn one_full_report_merged_alone_keeps_its_kperf_members_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let t = timeline(dir.path(), "");
    let server = TestServer::start(Behavior::default());
    let full = run_into(&t, dir.path(), "full", &server.url(), &[]);
    let out = dir.path().join("m.json");
    let (code, err) = merge(&[&full], &out, &[]);
    assert_eq!(code, 0, "{err}");
    let (a, b) = (
        std::fs::read_to_string(&full).unwrap(),
        std::fs::read_to_string(&out).unwrap(),
    );
    let kperf_part = |s: &str| s[..s.find("\"kreplay\"").expect("kreplay member")].to_string();
    assert_eq!(kperf_part(&a), kperf_part(&b));
    let (ra, rb) = (read(&full), read(&out));
    assert_eq!(ra["kreplay"]["sendLag"], rb["kreplay"]["sendLag"]);
    assert_eq!(ra["kreplay"]["verbs"], rb["kreplay"]["verbs"]);
    assert_eq!(
        ra["kreplay"]["scheduledLatency"],
        rb["kreplay"]["scheduledLatency"]
    );
}

#[test]
fn raw_data_and_errors_are_merged_from_runner_reports() {
    let dir = tempfile::tempdir().unwrap();
    let t = timeline(dir.path(), "");
    let ok = TestServer::start(Behavior::default());
    let failing = TestServer::start(Behavior {
        status: 404,
        ..Behavior::default()
    });
    // Runner 0 succeeds, runners 1 and 2 fail every request: both kinds of raw data.
    let r0 = run_into(
        &t,
        dir.path(),
        "r0",
        &ok.url(),
        &["--runner-index", "0", "--raw-data", "--metric-base", "none"],
    );
    let r1 = run_into(
        &t,
        dir.path(),
        "r1",
        &failing.url(),
        &["--runner-index", "1", "--raw-data", "--metric-base", "none"],
    );
    let r2 = run_into(
        &t,
        dir.path(),
        "r2",
        &failing.url(),
        &["--runner-index", "2", "--raw-data", "--metric-base", "none"],
    );
    let out = dir.path().join("m.json");
    // Given out of order: the errors still come runner by runner.
    let (code, err) = merge(&[&r2, &r0, &r1], &out, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("name different servers"), "{err}");
    let m = read(&out);
    let parts = [read(&r0), read(&r1), read(&r2)];
    let failed: u64 = parts[1]["total"].as_u64().unwrap() + parts[2]["total"].as_u64().unwrap();
    assert_eq!(m["totalFailed"].as_u64(), Some(failed));
    assert_eq!(m["errorStats"]["http/404"].as_u64(), Some(failed));
    assert_eq!(m["errors"].as_array().map(Vec::len), Some(failed as usize));
    // kreplay's own counters of the runs add up exactly (404 bodies are error bytes).
    for key in [
        "errorBodyBytes",
        "retries",
        "connectionRetries",
        "connectionsOpened",
    ] {
        let sum: u64 = parts
            .iter()
            .map(|p| {
                p["kreplay"]["run"][key]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{key}"))
            })
            .sum();
        assert_eq!(m["kreplay"]["run"][key].as_u64(), Some(sum), "{key}");
    }
    assert!(m["kreplay"]["run"]["errorBodyBytes"].as_u64() > Some(0));
    // Per-core connections: the merged order follows the sorted runners (r0, r1, r2).
    let per_core: Vec<Value> = parts
        .iter()
        .flat_map(|p| {
            p["kreplay"]["run"]["connectionsPerCore"]
                .as_array()
                .cloned()
                .unwrap()
        })
        .collect();
    assert_eq!(
        m["kreplay"]["run"]["connectionsPerCore"],
        Value::Array(per_core)
    );
    let streams = parts
        .iter()
        .map(|p| {
            p["kreplay"]["run"]["maxStreamsPerConnection"]
                .as_u64()
                .unwrap()
        })
        .max();
    assert_eq!(
        m["kreplay"]["run"]["maxStreamsPerConnection"].as_u64(),
        streams
    );
    let in_flight: u64 = parts
        .iter()
        .map(|p| p["kreplay"]["config"]["maxInFlight"].as_u64().unwrap())
        .sum();
    assert_eq!(
        m["kreplay"]["config"]["maxInFlight"].as_u64(),
        Some(in_flight)
    );
    let expected_errors: Vec<Value> = parts
        .iter()
        .flat_map(|p| p["errors"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        m["errors"],
        Value::Array(expected_errors),
        "runner by runner, unchanged"
    );
    // Raw latencies: kperf's percentiles of the pooled raw values.
    let mut all: Vec<f64> = m["latenciesByURL"]
        .as_object()
        .expect("latenciesByURL")
        .values()
        .flat_map(|v| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
        .collect();
    assert_eq!(
        all.len() as u64,
        parts[0]["kreplay"]["run"]["completed"].as_u64().unwrap()
    );
    all.sort_by(f64::total_cmp);
    assert_eq!(pairs(&m["percentileLatencies"]), kperf_percentiles(&all));
    assert_eq!(
        m["latenciesByURL"], parts[0]["latenciesByURL"],
        "only runner 0 had latencies"
    );
}

#[test]
fn refuses_other_timelines_repeated_runners_and_kperf_reports() {
    let dir = tempfile::tempdir().unwrap();
    let t = timeline(dir.path(), "");
    let other = timeline(dir.path(), "-2");
    let server = TestServer::start(Behavior::default());
    let url = server.url();
    let r0 = run_into(&t, dir.path(), "r0", &url, &["--runner-index", "0"]);
    let r1 = run_into(&t, dir.path(), "r1", &url, &["--runner-index", "1"]);
    let o1 = run_into(&other, dir.path(), "o1", &url, &["--runner-index", "1"]);
    let out = dir.path().join("m.json");

    let (code, err) = merge(&[&r0, &o1], &out, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("different timelines") && err.contains("--force"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written on refusal");
    let (code, err) = merge(&[&r0, &o1], &out, &["--force"]);
    assert_eq!(code, 0, "{err}");

    // The same content from another path is the same timeline.
    let twin = timeline(dir.path(), "-twin");
    let w1 = run_into(&twin, dir.path(), "w1", &url, &["--runner-index", "1"]);
    let (rep0, rep1) = (read(&r0), read(&w1));
    let id = |v: &Value| v["kreplay"]["config"]["timelineId"].clone();
    assert!(id(&rep0).as_str().is_some_and(|s| s.starts_with("xxh3:")));
    assert_eq!(id(&rep0), id(&rep1), "same content, same id");
    assert_ne!(id(&rep0), id(&read(&o1)), "other content, other id");
    assert_ne!(
        rep0["kreplay"]["config"]["timelineSource"],
        rep1["kreplay"]["config"]["timelineSource"]
    );
    let (code, err) = merge(&[&r0, &w1], &out, &[]);
    assert_eq!(code, 0, "{err}");

    let (code, err) = merge(&[&r0, &r1, &r1], &out, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("is runner 1 again"), "{err}");

    let mut kperf = read(&r1);
    kperf.as_object_mut().unwrap().remove("kreplay");
    let kperf_path = dir.path().join("kperf.json");
    std::fs::write(&kperf_path, kperf.to_string()).unwrap();
    let (code, err) = merge(&[&r0, &kperf_path], &out, &["--force"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("kperf.json") && err.contains("kperf-format report"),
        "{err}"
    );

    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "[1, 2").unwrap();
    let (code, err) = merge(&[&r0, &junk], &out, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("junk.json: not JSON"), "{err}");
}
