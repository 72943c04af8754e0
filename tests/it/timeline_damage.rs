//! End to end: a damaged timeline is refused before anything is sent. Forty single-bit flips
//! at seeded random positions of a small timeline, each replayed against apisim (with and
//! without the preflight): every run must exit non-zero naming the file, within a bound, and
//! apisim's request log must stay empty. Damage in a late block of a longer timeline: the
//! run starts, sends only what comes before the damaged block, then stops with the error,
//! a non-zero exit and its report.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::{bin, generated_timeline, run_bounded, ApiSim};
use bench::profile_gen::{GenConfig, RateShape};
use serde_json::Value;

const FLIPS: usize = 40;

/// splitmix64: a reproducible sequence of positions without a dependency.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn small_timeline(dir: &Path) -> std::path::PathBuf {
    let cfg = GenConfig {
        requests: 60,
        rate: Some(2_000.0),
        shape: RateShape::Constant,
        objects: 10,
        namespaces: 2,
        watches: Some(0),
        conns: 2,
        seed: 5,
        ..GenConfig::default()
    };
    generated_timeline(dir, "timeline", &cfg, &[])
}

/// 3,000 requests over 3 s in one run (one runner, one shard): twelve blocks of 256 records.
fn long_timeline(dir: &Path) -> std::path::PathBuf {
    let cfg = GenConfig {
        requests: 3_000,
        rate: Some(1_000.0),
        shape: RateShape::Constant,
        objects: 50,
        namespaces: 2,
        watches: Some(0),
        runners: 1,
        conns: 4,
        seed: 7,
        ..GenConfig::default()
    };
    generated_timeline(dir, "long", &cfg, &["--shards", "1"])
}

fn recorded_requests(sim: &ApiSim) -> Vec<Value> {
    let log: Value = serde_json::from_str(&sim.admin_get("/apisim/requests")).expect("JSON log");
    log["requests"].as_array().cloned().unwrap_or_default()
}

/// `engine run TIMELINE --server SERVER --quiet --timeout 5s --result RESULT`, bounded.
fn replay(timeline: &Path, server: &str, result: &Path) -> std::process::Output {
    run_bounded(
        Command::new(bin("engine"))
            .arg("run")
            .arg(timeline)
            .args(["--server", server, "--quiet", "--timeout", "5s", "--result"])
            .arg(result),
        Duration::from_secs(60),
    )
}

/// A report written to `path`, parsed.
fn read_report(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the report {} is written: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

#[test]
fn every_single_bit_flip_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = small_timeline(dir.path());
    let bytes = std::fs::read(&good).expect("read timeline");
    let sim = ApiSim::start(&["--plain", "--no-auth", "--record-requests", "10000"]);

    // The intact file replays: the log records requests, so an empty log below means something.
    let report = dir.path().join("good.json");
    let out = run_bounded(
        Command::new(bin("engine"))
            .arg("run")
            .arg(&good)
            .args(["--server", &sim.url, "--quiet", "--result"])
            .arg(&report),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "intact timeline: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        recorded_requests(&sim).len(),
        60,
        "the intact run's requests"
    );
    let cleared = run_bounded(
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--fail", "-X", "DELETE"])
            .arg(format!("{}/apisim/requests", sim.url)),
        Duration::from_secs(15),
    );
    assert!(cleared.status.success(), "clear apisim's request log");
    assert!(recorded_requests(&sim).is_empty());

    let mut state = 0x6b72_6570_6c61_7900u64; // seed: fixed, so a failure reproduces
    let damaged = dir.path().join("damaged.bin");
    for flip in 0..FLIPS {
        let bit = splitmix(&mut state) % (bytes.len() as u64 * 8);
        let mut copy = bytes.clone();
        copy[(bit / 8) as usize] ^= 1 << (bit % 8);
        std::fs::write(&damaged, &copy).expect("write damaged timeline");
        let mut cmd = Command::new(bin("engine"));
        cmd.arg("run")
            .arg(&damaged)
            .args(["--server", &sim.url, "--quiet", "--timeout", "5s"])
            .arg("--result")
            .arg(dir.path().join("damaged.json"));
        if flip % 2 == 1 {
            cmd.arg("--no-preflight");
        }
        let out = run_bounded(&mut cmd, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(
            code.is_some() && code != Some(0),
            "flip {flip} (byte {}, bit {}) was not refused: exit {:?}, stderr:\n{stderr}",
            bit / 8,
            bit % 8,
            out.status
        );
        assert!(
            stderr.contains(damaged.to_str().expect("utf-8 path")),
            "flip {flip} (byte {}): the message names the file:\n{stderr}",
            bit / 8
        );
        let sent = recorded_requests(&sim);
        assert!(
            sent.is_empty(),
            "flip {flip} (byte {}, bit {}): {} request(s) reached the server: {:?}",
            bit / 8,
            bit % 8,
            sent.len(),
            sent.first()
        );
    }
}

#[test]
fn damage_in_a_late_block_stops_the_run_after_the_intact_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = long_timeline(dir.path());
    let t = preprocess::timeline::Timeline::open(&good).expect("open");
    assert_eq!(t.runs().len(), 1);
    let records = t.sections().records;
    let run = t.run_records(0).expect("run 0");
    assert_eq!(run.len(), 3_000);
    // Block 9 holds records 2304..2560, due from about 2.3 s: the check reaches it about a
    // second before that (its lead), well after the start.
    let first_damaged = 9 * 256;
    let damaged_due_us = run[first_damaged].due_us;
    assert!(damaged_due_us > 2_000_000, "due {damaged_due_us} µs");
    drop(t);
    let mut bytes = std::fs::read(&good).expect("read timeline");
    bytes[records.offset as usize + (first_damaged + 40) * 64 + 3] ^= 0x20;
    let damaged = dir.path().join("late-damage.bin");
    std::fs::write(&damaged, &bytes).expect("write damaged timeline");

    let sim = ApiSim::start(&["--plain", "--no-auth", "--record-requests", "10000"]);
    let report_path = dir.path().join("late.json");
    let out = replay(&damaged, &sim.url, &report_path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit: {:?}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(damaged.to_str().expect("utf-8 path"))
            && stderr.contains("records block 9 of run 0"),
        "the message names the file and the block:\n{stderr}"
    );
    let sent = recorded_requests(&sim).len();
    assert!(
        sent > 0,
        "the run started: the intact early part was sent\n{stderr}"
    );
    assert!(
        sent < first_damaged,
        "{sent} requests reached the server: some came from the damaged block or later"
    );
    let report = read_report(&report_path);
    assert_eq!(report["totalRun"], sent as u64, "report: {report}");
    // The report says why the run stopped, naming the file and the block.
    let damage = report["kreplay"]["run"]["timelineDamage"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "no kreplay.run.timelineDamage in {}",
                report["kreplay"]["run"]
            )
        });
    assert!(
        damage.contains(damaged.to_str().expect("utf-8 path"))
            && damage.contains("records block 9 of run 0"),
        "timelineDamage: {damage}"
    );

    // A merge of that report with an intact one carries the damage, naming the report.
    let intact_path = dir.path().join("intact.json");
    let intact = replay(&good, &sim.url, &intact_path);
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    let intact_report = read_report(&intact_path);
    assert!(
        intact_report["kreplay"]["run"]
            .get("timelineDamage")
            .is_none(),
        "an intact run has no timelineDamage: {}",
        intact_report["kreplay"]["run"]
    );
    let merged_path = dir.path().join("merged.json");
    let merge = run_bounded(
        Command::new(bin("engine"))
            .arg("merge")
            // The two replayed different timelines (one damaged): the merge needs --force.
            .arg("--force")
            .arg(&report_path)
            .arg(&intact_path)
            .arg("-o")
            .arg(&merged_path),
        Duration::from_secs(60),
    );
    assert!(
        merge.status.success(),
        "{}",
        String::from_utf8_lossy(&merge.stderr)
    );
    let merged = read_report(&merged_path);
    let merged_damage = merged["kreplay"]["run"]["timelineDamage"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "no timelineDamage in the merge: {}",
                merged["kreplay"]["run"]
            )
        });
    assert!(
        merged_damage.contains(report_path.to_str().expect("utf-8 path"))
            && merged_damage.contains("records block 9 of run 0")
            && !merged_damage.contains(intact_path.to_str().expect("utf-8 path")),
        "merged timelineDamage: {merged_damage}"
    );
}

#[test]
fn wrong_fields_behind_intact_checksums_are_refused_before_anything_is_sent() {
    use preprocess::timeline::record::RequestRecord;
    let dir = tempfile::tempdir().expect("tempdir");
    let good = small_timeline(dir.path());
    let records = preprocess::timeline::Timeline::open(&good)
        .expect("open")
        .sections()
        .records;
    let bytes = std::fs::read(&good).expect("read timeline");
    let sim = ApiSim::start(&["--plain", "--no-auth", "--record-requests", "10000"]);
    type Edit = fn(&mut RequestRecord);
    let cases: [(&str, Edit); 3] = [
        ("due_us", |r| r.due_us = 1 << 40),
        ("target", |r| r.target.offset = 1 << 30),
        ("label", |r| r.label = 100_000),
    ];
    for (field, edit) in cases {
        let at = records.offset as usize + 30 * 64;
        let mut rec: RequestRecord = bytemuck::pod_read_unaligned(&bytes[at..at + 64]);
        edit(&mut rec);
        let mut copy = bytes.clone();
        copy[at..at + 64].copy_from_slice(bytemuck::bytes_of(&rec));
        preprocess::timeline::reseal_checksums(&mut copy).expect("reseal");
        let damaged = dir.path().join(format!("{field}.bin"));
        std::fs::write(&damaged, &copy).expect("write damaged timeline");
        let out = run_bounded(
            Command::new(bin("engine"))
                .arg("run")
                .arg(&damaged)
                .args([
                    "--server",
                    &sim.url,
                    "--quiet",
                    "--timeout",
                    "5s",
                    "--result",
                ])
                .arg(dir.path().join(format!("{field}.json"))),
            Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{field}: {:?}\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains(damaged.to_str().expect("utf-8 path")) && stderr.contains(field),
            "{field}: the message names the file and the field:\n{stderr}"
        );
        let sent = recorded_requests(&sim);
        assert!(
            sent.is_empty(),
            "{field}: {} request(s) were sent",
            sent.len()
        );
    }
}
