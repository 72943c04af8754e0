//! `kreplay.perSecond`: a 10 s replay at 1,000 requests/s has 10–11 intervals whose counts add
//! up to the run's totals, and `engine merge` adds two runners' series exactly.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::util::*;
use serde_json::Value;

fn counts(report: &Value, key: &str) -> Vec<u64> {
    per_second(report, key)
}

fn buckets(report: &Value, key: &str) -> Vec<Vec<(u64, u64)>> {
    report["kreplay"]["perSecond"][key]
        .as_array()
        .unwrap_or_else(|| panic!("perSecond.{key}"))
        .iter()
        .map(|pairs| {
            pairs
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
                .collect()
        })
        .collect()
}

#[test]
fn ten_seconds_at_1000_per_second_and_an_exact_merge() {
    // 10,000 GETs, one per millisecond, in 2 runners.
    let reqs = profile()
        .each(0..10_000, |p, i| p.get(&format!("ns/p{}", i % 50)).at_ms(i))
        .build();
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(2, 4), &reqs);
    let server = TestServer::start(Behavior::default());
    let url = server.url();
    let start = SystemTime::now() + Duration::from_secs(2);
    let start_ms = start
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let cpus = engine::cpu_set::allowed_cpus();
    let mut children = Vec::new();
    for runner in 0..2usize {
        let d = dir.path().join(format!("r{runner}"));
        std::fs::create_dir_all(&d).unwrap();
        let cpu = cpus[runner % cpus.len()].to_string();
        let child = spawn_engine(
            &tl,
            &d,
            &[
                "--server",
                &url,
                "--cpus",
                &cpu,
                "--runner-index",
                &runner.to_string(),
                "--start-at",
                &start_ms,
                "--timing",
                "relaxed",
            ],
            &[],
        );
        children.push((d, child));
    }
    let mut reports = Vec::new();
    for (d, child) in children {
        let (status, stderr) = wait_engine(child, Duration::from_secs(90));
        let run = read_run(status, stderr, &d);
        assert!(run.status.success(), "{}", run.stderr);
        reports.push((d.join("out").join("report.json"), run.report.unwrap()));
    }
    for (_, r) in &reports {
        let ps = &r["kreplay"]["perSecond"];
        assert_eq!(ps["intervalSeconds"], 1);
        let completed = counts(r, "completed");
        let failed = counts(r, "failed");
        assert!(
            (10..=11).contains(&completed.len()),
            "10 s at 1 interval per second: {completed:?}"
        );
        // A runner's report has kperf's runner form: `total` is what it ran.
        let run = num(r, "total");
        assert!(run > 4_000, "each runner replays about half: {run}");
        assert_eq!(
            completed.iter().sum::<u64>() + failed.iter().sum::<u64>(),
            run
        );
        assert_eq!(
            counts(r, "bytes").iter().sum::<u64>(),
            num(r, "totalReceivedBytes")
        );
        // Every send and every success is in exactly one interval's histogram.
        let lag_total: u64 = buckets(r, "lagBuckets").iter().flatten().map(|p| p.1).sum();
        assert_eq!(lag_total, r["kreplay"]["run"]["sent"].as_u64().unwrap());
        let lat_total: u64 = buckets(r, "latencyBuckets")
            .iter()
            .flatten()
            .map(|p| p.1)
            .sum();
        assert_eq!(lat_total, completed.iter().sum::<u64>());
        let p99 = ps["latencyP99"].as_array().unwrap();
        assert_eq!(p99.len(), completed.len());
        assert!(
            p99.iter()
                .take(9)
                .all(|v| v.as_f64().is_some_and(|s| s > 0.0)),
            "{p99:?}"
        );
    }

    let merged_path = dir.path().join("merged.json");
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("merge")
        .arg(&reports[0].0)
        .arg(&reports[1].0)
        .arg("-o")
        .arg(&merged_path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // engine merge prints the merged summary.
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("merged from runners") && summary.contains("10000 run"),
        "{summary}"
    );
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(&merged_path).unwrap()).unwrap();
    // Both runners started at the same instant: interval i of the merge is the sum of theirs.
    let (a, b) = (&reports[0].1, &reports[1].1);
    for key in ["completed", "failed", "bytes"] {
        let (x, y) = (counts(a, key), counts(b, key));
        let n = x.len().max(y.len());
        let sum: Vec<u64> = (0..n)
            .map(|i| x.get(i).unwrap_or(&0) + y.get(i).unwrap_or(&0))
            .collect();
        assert_eq!(counts(&merged, key), sum, "{key}");
    }
    for key in ["latencyBuckets", "lagBuckets"] {
        let (x, y, m) = (buckets(a, key), buckets(b, key), buckets(&merged, key));
        for (i, mi) in m.iter().enumerate() {
            let mut want = std::collections::BTreeMap::new();
            for (bk, c) in x
                .get(i)
                .into_iter()
                .flatten()
                .chain(y.get(i).into_iter().flatten())
            {
                *want.entry(*bk).or_insert(0) += c;
            }
            let got: std::collections::BTreeMap<u64, u64> = mi.iter().copied().collect();
            assert_eq!(got, want, "{key}[{i}]");
        }
    }
    assert_eq!(
        counts(&merged, "completed").iter().sum::<u64>()
            + counts(&merged, "failed").iter().sum::<u64>(),
        10_000
    );
}
