//! Many WATCHes beside GETs against the real apisim (TLS, HTTP/2), with the WATCHes on their
//! own executor (`--watch-executor separate`, the default) and on the cores: every GET
//! completes, every WATCH is opened, reads events and is counted, and every WATCH ends with
//! the replay (apisim holds none once the engine has exited).

use std::time::{Duration, Instant};

use crate::util::ApiSim;
use crate::util::*;
use preprocess::profile::ProfileRequest;

const WATCHES: usize = 2000;
const GETS: usize = 400;

/// A CREATE of pod p0 at t=0, `WATCHES` WATCHes (bookmarks allowed) spread over the first
/// 500 ms, and `GETS` GETs of p0 spread over the first two seconds.
fn watch_lane_profile() -> Vec<ProfileRequest> {
    let mut requests = profile()
        .create_pod("ns/p0")
        .at_ms(0)
        .each(0..WATCHES, |p, i| {
            p.watch("ns")
                .path("/api/v1/namespaces/ns/pods?allowWatchBookmarks=true")
                .at_ms((i * 500 / WATCHES) as i64)
        })
        .each(0..GETS, |p, i| {
            p.get("ns/p0").at_ms(10 + (i * 2000 / GETS) as i64)
        })
        .build();
    requests.sort_by_key(|r| r.timestamp_ms);
    requests
}

/// apisim's `apisim_watches` gauge.
fn open_watches(sim: &ApiSim) -> i64 {
    let text = sim.admin_get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("apisim_watches "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no apisim_watches in /metrics:\n{text}"))
}

fn replay_with(executor: &str) {
    // Bookmarks every 100 ms: every WATCH reads events while the GETs run.
    let sim = ApiSim::start(&["--bookmark-interval", "100ms"]);
    let dir = tempfile::tempdir().unwrap();
    let spec = h2_spec(1, 2);
    let tl = write_timeline(dir.path(), &spec, &watch_lane_profile());
    let run = run_on_apisim(
        &sim,
        &tl,
        dir.path(),
        &[
            "--watch-connections",
            "shared",
            "--watch-executor",
            executor,
        ],
    );
    assert!(run.status.success(), "{executor}: {}", run.stderr);
    let report = run.report.unwrap();
    let k = &report["kreplay"];
    assert_eq!(num(&report, "totalRun"), (1 + WATCHES + GETS) as u64);
    assert_eq!(num(&report, "totalFailed"), 0, "{}", report["errorStats"]);
    assert_eq!(
        k["verbs"]["GET"]["count"].as_u64(),
        Some(GETS as u64),
        "{k}"
    );
    assert_eq!(k["verbs"]["GET"]["errors"].as_u64(), Some(0), "{k}");
    assert_eq!(k["verbs"]["WATCH"]["count"].as_u64(), Some(WATCHES as u64));
    // Send lag is told apart: the WATCHes' (their connects included) and the others'.
    let lag = &k["sendLag"];
    assert_eq!(
        lag["count"].as_u64(),
        Some((1 + WATCHES + GETS) as u64),
        "{lag}"
    );
    assert_eq!(
        lag["watches"]["count"].as_u64(),
        Some(WATCHES as u64),
        "{lag}"
    );
    assert_eq!(
        lag["withoutWatches"]["count"].as_u64(),
        Some((1 + GETS) as u64),
        "{lag}"
    );
    // `engine merge` keeps the split: the report merged with itself doubles both counts and
    // keeps each part's percentiles.
    let report_path = dir.path().join("out").join("report.json");
    let merged_path = dir.path().join("merged.json");
    let merge = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(["merge", "--force", "-o"])
        .arg(&merged_path)
        .arg(&report_path)
        .arg(&report_path)
        .output()
        .expect("run engine merge");
    assert!(
        merge.status.success(),
        "{}",
        String::from_utf8_lossy(&merge.stderr)
    );
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged_path).expect("merged report"))
            .expect("merged JSON");
    let merged_lag = &merged["kreplay"]["sendLag"];
    for (part, count) in [("watches", WATCHES), ("withoutWatches", 1 + GETS)] {
        assert_eq!(
            merged_lag[part]["count"].as_u64(),
            Some(2 * count as u64),
            "{part}: {merged_lag}"
        );
        assert_eq!(
            merged_lag[part]["p99"], lag[part]["p99"],
            "{part}: {merged_lag} against {lag}"
        );
    }
    // The WATCHes read their bookmarks while the GETs ran (how many each depends on when the
    // executor got to it, not a behaviour to pin).
    let events: u64 = k["watches"]
        .as_object()
        .expect("kreplay.watches")
        .values()
        .filter_map(|w| w["events"].as_u64())
        .sum();
    assert!(events > 0, "{executor}: no WATCH event was read");
    // The WATCHes ended with the replay: apisim sees their streams end (the gauge falls as
    // apisim notices each reset; bounded wait).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut open = open_watches(&sim);
    while open != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        open = open_watches(&sim);
    }
    assert_eq!(open, 0, "{executor}: apisim still holds {open} watches");
}

#[test]
fn watches_on_their_own_executor_leave_every_get_done_and_end_with_the_replay() {
    replay_with("separate");
}

#[test]
fn watches_on_the_cores_leave_every_get_done_and_end_with_the_replay() {
    replay_with("cores");
}
