//! `kreplay-lab` end to end: records appended through the binary, rendered into markdown,
//! JSON and SVG files whose content is checked.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const LAB: &str = env!("CARGO_BIN_EXE_kreplay-lab");

/// Runs kreplay-lab, whatever its exit status.
fn lab_output(args: &[&str]) -> std::process::Output {
    Command::new(LAB)
        .args(args)
        .output()
        .expect("run kreplay-lab")
}

/// Runs kreplay-lab and requires success.
fn lab(args: &[&str]) -> std::process::Output {
    let out = lab_output(args);
    assert!(
        out.status.success(),
        "kreplay-lab {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Appends a figure record through the CLI.
#[allow(clippy::too_many_arguments)]
fn record(
    records: &Path,
    scenario: &str,
    title: &str,
    figure: &str,
    better: &str,
    tool: &str,
    extra: &[&str],
    values: &[&str],
) {
    let r = records.to_str().unwrap();
    let mut args = vec![
        "record",
        "--records",
        r,
        "--scenario",
        scenario,
        "--title",
        title,
        "--figure",
        figure,
        "--unit",
        "u",
        "--better",
        better,
        "--tool",
        tool,
        "--command",
        "cmd",
    ];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(values);
    lab(&args);
}

fn write_records(dir: &Path) -> std::path::PathBuf {
    let r = dir.join("records.jsonl");
    let h1 = ["--plot", "throughput", "--x", "h1"];
    record(
        &r,
        "h1",
        "Unpaced HTTP/1.1",
        "req per CPU-s",
        "higher",
        "kreplay",
        &h1,
        &["100", "300", "200"],
    );
    record(
        &r,
        "h1",
        "Unpaced HTTP/1.1",
        "req per CPU-s",
        "higher",
        "wrk",
        &h1,
        &["400", "400"],
    );
    record(
        &r,
        "h1",
        "Unpaced HTTP/1.1",
        "req per CPU-s",
        "higher",
        "hey",
        &h1,
        &["50"],
    );
    record(
        &r,
        "paced",
        "Paced rates",
        "latency p99 at 10000/s",
        "lower",
        "kreplay",
        &[
            "--plot",
            "paced-lag",
            "--x",
            "10000",
            "--series",
            "p99",
            "--log-y",
        ],
        &["2", "4"],
    );
    record(
        &r,
        "paced",
        "Paced rates",
        "latency p99 at 10000/s",
        "lower",
        "oha",
        &[
            "--plot",
            "paced-lag",
            "--x",
            "10000",
            "--series",
            "p99",
            "--log-y",
        ],
        &["8"],
    );
    record(
        &r,
        "paced",
        "Paced rates",
        "latency p99 at 10000/s",
        "lower",
        "hey",
        &[],
        &["16"],
    );
    record(
        &r,
        "paced",
        "Paced rates",
        "latency p99 at 50000/s",
        "lower",
        "kreplay",
        &[
            "--plot",
            "paced-lag",
            "--x",
            "50000",
            "--series",
            "p99",
            "--log-y",
        ],
        &["30"],
    );
    record(
        &r,
        "paced",
        "Paced rates",
        "send lag p50 at 10000/s",
        "lower",
        "kreplay",
        &[],
        &["0.01"],
    );
    record(
        &r,
        "replay",
        "Realistic replay",
        "per-object order violations",
        "lower",
        "kreplay",
        &["--expect", "0"],
        &["0", "0", "0"],
    );
    record(
        &r,
        "replay",
        "Realistic replay",
        "failed requests",
        "lower",
        "kreplay",
        &["--expect", "0"],
        &["0", "5", "0"],
    );
    lab(&[
        "note",
        "--records",
        r.to_str().unwrap(),
        "--scenario",
        "replay",
        "--title",
        "Realistic replay",
        "No peer can replay a profile.",
    ]);
    let report = dir.join("report.json");
    std::fs::write(
        &report,
        r#"{"kreplay": {"perSecond": {"scheduled": [10, 20, 30], "sent": [9, 21, 30]}}}"#,
    )
    .unwrap();
    // `lab series` of the replay-shape plot: `series` read from the report at `pointer`.
    let replay_series = |series: &str, pointer: &str, extra: &[&str]| {
        let mut args = vec![
            "series",
            "--records",
            r.to_str().unwrap(),
            "--scenario",
            "replay",
            "--title",
            "Realistic replay",
            "--plot",
            "replay-shape",
            "--series",
            series,
            "--x-label",
            "s",
            "--y-label",
            "requests",
            "--json",
            report.to_str().unwrap(),
            "--pointer",
            pointer,
        ];
        args.extend_from_slice(extra);
        lab(&args);
    };
    for series in ["scheduled", "sent"] {
        replay_series(series, &format!("/kreplay/perSecond/{series}"), &[]);
    }
    // A missing array is skipped with --optional: nothing appended.
    replay_series("absent", "/kreplay/nothing", &["--optional"]);
    for (n, rss) in [("100000", "20"), ("1000000", "60")] {
        record(
            &r,
            "scale",
            "Scale",
            &format!("preprocess peak RSS, {n} requests"),
            "lower",
            "kreplay",
            &["--plot", "scale", "--x", n, "--series", "preprocess RSS"],
            &[rss],
        );
    }
    r
}

fn render(dir: &Path, records: &Path) -> (String, Value) {
    let out_dir = dir.join("results");
    let out = lab(&[
        "render",
        "--records",
        records.to_str().unwrap(),
        "--out-dir",
        out_dir.to_str().unwrap(),
        "--stamp",
        "2026-01-02-0304",
        "--machine",
        "test machine",
        "--command",
        "scripts/bench.sh --quick",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PROBLEM: Realistic replay: failed requests"),
        "{stderr}"
    );
    assert!(!stderr.contains("order violations"), "{stderr}");
    let md = std::fs::read_to_string(out_dir.join("2026-01-02-0304.md")).unwrap();
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("2026-01-02-0304.json")).unwrap(),
    )
    .unwrap();
    (md, json)
}

#[test]
fn render_writes_tables_with_best_peer_ratio_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let records = write_records(dir.path());
    let (md, json) = render(dir.path(), &records);

    assert!(md.contains("Machine: test machine"), "{md}");
    assert!(md.contains("Command: `scripts/bench.sh --quick`"), "{md}");
    // Higher is better: best peer is wrk (400 > 50); kreplay's median 200; ratio 0.50.
    assert!(
        md.contains("| req per CPU-s | u | higher is better | 200 | wrk | 400 | 0.50 | hey 50 |"),
        "{md}"
    );
    // Lower is better: best peer is oha (8 < 16); kreplay's median of 2 and 4 is 3; ratio 0.375.
    assert!(
        md.contains(
            "| latency p99 at 10000/s | u | lower is better | 3 | oha | 8 | 0.38 | hey 16 |"
        ),
        "{md}"
    );
    // No peer: n/a.
    assert!(
        md.contains(
            "| send lag p50 at 10000/s | u | lower is better | 0.010 | n/a | n/a | n/a |  |"
        ),
        "{md}"
    );
    // Expectations: met for order violations, broken for failed requests (one run saw 5).
    assert!(
        md.contains(
            "| per-object order violations | u | lower is better | 0 | n/a | n/a | n/a |  |"
        ),
        "{md}"
    );
    assert!(
        md.contains("**0 — expected 0 in every run; saw 5**"),
        "{md}"
    );
    assert!(md.contains("## ⚠ PROBLEMS"), "{md}");
    assert!(md.contains("No peer can replay a profile."), "{md}");
    for plot in ["throughput", "paced-lag", "replay-shape", "scale"] {
        let file = format!("2026-01-02-0304-{plot}.svg");
        assert!(md.contains(&format!("]({file})")), "md links {file}: {md}");
        let svg = std::fs::read_to_string(dir.path().join("results").join(&file)).unwrap();
        assert!(
            svg.trim_start().starts_with("<svg"),
            "{file}: {}",
            &svg[..svg.len().min(200)]
        );
        assert!(svg.trim_end().ends_with("</svg>"), "{file}");
    }
    let shape =
        std::fs::read_to_string(dir.path().join("results/2026-01-02-0304-replay-shape.svg"))
            .unwrap();
    assert!(
        shape.contains("kreplay scheduled") && shape.contains("kreplay sent"),
        "legend names both series"
    );
    assert!(!shape.contains("absent"));

    let scenarios = json["scenarios"].as_array().unwrap();
    let ids: Vec<&str> = scenarios
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["h1", "paced", "replay", "scale"]);
    let h1 = &scenarios[0]["figures"][0];
    assert_eq!(h1["kreplay"]["median"], 200.0);
    assert_eq!(h1["bestPeer"]["tool"], "wrk");
    assert_eq!(h1["ratio"], 0.5);
    assert_eq!(h1["peers"].as_array().unwrap().len(), 2);
    assert_eq!(scenarios[2]["figures"][1]["violation"], true);
    assert_eq!(scenarios[2]["figures"][0]["violation"], false);
    let records = json["records"].as_array().unwrap();
    let wrk = records.iter().find(|r| r["tool"] == "wrk").unwrap();
    assert_eq!(wrk["median"], 400.0);
    assert_eq!(wrk["values"], serde_json::json!([400.0, 400.0]));
    assert_eq!(json["machine"], "test machine");
}

#[test]
fn bad_records_are_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("records.jsonl");
    std::fs::write(&r, "{\"kind\":\"note\",\"scenario\":\"a\",\"scenarioTitle\":\"A\",\"text\":\"t\"}\n{\"kind\":\"figure\"}\n").unwrap();
    let render = |stamp: &str| {
        lab_output(&[
            "render",
            "--records",
            r.to_str().unwrap(),
            "--out-dir",
            dir.path().to_str().unwrap(),
            "--stamp",
            stamp,
        ])
    };
    let out = render("x");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("records.jsonl:2: not a lab record"), "{err}");

    let out = lab_output(&[
        "record",
        "--records",
        r.to_str().unwrap(),
        "--scenario",
        "a",
        "--title",
        "A",
        "--figure",
        "f",
        "--unit",
        "u",
        "--better",
        "higher",
        "--tool",
        "kreplay",
        "--command",
        "c",
        "12",
        "fast",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("value 2 of figure \"f\" (kreplay): \"fast\" is not a number"),
        "{err}"
    );

    let out = render("../x");
    assert!(!out.status.success());
}

#[test]
fn get_prints_report_fields_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.json");
    std::fs::write(
        &f,
        r#"{"kreplay": {"sendLag": {"p99": 0.25}, "config": {"server": "http://x"}}}"#,
    )
    .unwrap();
    let get = |args: &[&str]| String::from_utf8(lab(args).stdout).unwrap();
    assert_eq!(
        get(&["get", f.to_str().unwrap(), "/kreplay/sendLag/p99"]),
        "0.25\n"
    );
    assert_eq!(
        get(&["get", f.to_str().unwrap(), "/kreplay/config/server"]),
        "http://x\n"
    );
    assert_eq!(
        get(&[
            "get",
            f.to_str().unwrap(),
            "/kreplay/perSecond",
            "--default",
            "none"
        ]),
        "none\n"
    );
    let out = lab_output(&["get", f.to_str().unwrap(), "/missing"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing at /missing"));
}
