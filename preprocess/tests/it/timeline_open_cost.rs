//! Measurement, not a check: what opening a large timeline and checking it for a replay cost:
//! the open, the wait for the due-order check's first bound (what a replay's first request
//! waits for), and the whole check (its throughput per block).
//! `KREPLAY_OPEN_COST_REQUESTS=10000000 cargo test --release -p preprocess --test it --
//! --ignored --nocapture timeline_open_cost` (writes a ~1.5 GB file in $TMPDIR).

use std::time::{Duration, Instant};

use preprocess::profile::{ContentType, ProfileRequest, Spec, Verb};
use preprocess::request_target::PathMode;
use preprocess::timeline::{Timeline, TimelineWriter, VerifyProgress, WriterOptions};

fn best_of(rounds: usize, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn open_and_replay_check_cost() {
    let n: u64 = std::env::var("KREPLAY_OPEN_COST_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.bin");
    let mut w = TimelineWriter::create(&path, WriterOptions::default()).expect("writer");
    let verbs = [Verb::Get, Verb::Patch, Verb::List, Verb::Create];
    let started = Instant::now();
    for i in 0..n {
        let verb = verbs[(i % 4) as usize];
        let name = match verb {
            Verb::List | Verb::Create => String::new(),
            _ => format!("pod-{}", i % 100_000),
        };
        let req = ProfileRequest {
            timestamp_ms: (i / 10) as i64,
            verb,
            namespace: format!("ns-{}", i % 10),
            resource_kind: "Pod".into(),
            api_path: format!("/api/v1/namespaces/ns-{}/pods/{name}", i % 10),
            name,
            body: if verb == Verb::Patch {
                format!("{{\"metadata\":{{\"labels\":{{\"v\":\"{}\"}}}}}}", i % 1000)
            } else {
                String::new()
            },
            label_selector: String::new(),
        };
        w.push(i, &req, PathMode::Recorded).expect("push");
    }
    let spec = Spec {
        runner_count: 4,
        conns_per_runner: 2,
        clients_per_runner: 0,
        content_type: ContentType::Json,
        disable_http2: false,
    };
    w.finish(&spec, "open cost").expect("finish");
    let bytes = std::fs::metadata(&path).expect("size").len();
    eprintln!(
        "{n} requests, {:.2} GB, written in {:.1} s",
        bytes as f64 / 1e9,
        started.elapsed().as_secs_f64()
    );
    let open = best_of(20, || {
        Timeline::open(&path).expect("open");
    });
    let t = Timeline::open(&path).expect("open");
    // Open, then check until the first bound above 0 is published: every record due at 0 (in
    // every run) is then checked, and a replay's first request may go.
    let first_bound = best_of(5, || {
        let t = Timeline::open(&path).expect("open");
        let progress = VerifyProgress::new();
        let done = t
            .check_in_due_order(&progress, &mut |bound| bound == 0)
            .expect("replay check");
        assert!(!done, "a bound was published before the end");
    });
    let check = best_of(3, || t.verify_for_replay().expect("replay check"));
    let layout = preprocess::timeline::BlockLayout::default();
    let record_blocks: u64 = t
        .runs()
        .iter()
        .map(|r| r.len.div_ceil(u64::from(layout.records_per_block)))
        .sum();
    let s = t.sections();
    let other_blocks = s.origins.len.div_ceil(u64::from(layout.origin_block_bytes))
        + s.blobs.len.div_ceil(u64::from(layout.blob_block_bytes));
    eprintln!(
        "open (best of 20): {:.3} ms; open + check to the first bound (best of 5): {:.2} ms; \
         whole due-order check (best of 3, one thread, page cache warm): {:.0} ms = {:.1} ns per \
         request; {record_blocks} record blocks of {} + {other_blocks} origin/blob blocks: {:.1} µs per record block",
        open.as_secs_f64() * 1e3,
        first_bound.as_secs_f64() * 1e3,
        check.as_secs_f64() * 1e3,
        check.as_secs_f64() * 1e9 / n as f64,
        layout.records_per_block,
        check.as_secs_f64() * 1e6 / record_blocks as f64,
    );
}
