//! kperf's sample profile (bench/profiles/kperf_sample_replay.yaml): its split over
//! two runners (docs/kperf-compatibility.md §4) and its metric keys (§6).

use preprocess::loader::{load_profile, LoadOptions};
use preprocess::partition::{key_hash, runner_of};
use preprocess::profile::{ProfileRequest, Verb};
use preprocess::request_target::{metric_label, normalize, PathMode};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bench/profiles/kperf_sample_replay.yaml"
);

/// The requests of the sample profile, read by the crate's loader.
fn sample_requests() -> Vec<ProfileRequest> {
    let file = match std::fs::File::open(SAMPLE) {
        Ok(f) => f,
        Err(e) => panic!("cannot open {SAMPLE}: {e}"),
    };
    let mut requests = Vec::new();
    let head = load_profile(SAMPLE, file, &LoadOptions::default(), &mut |_, req| {
        requests.push(req);
        Ok(())
    });
    match head {
        Ok(head) => assert_eq!(head.spec.runner_count, 2),
        Err(e) => panic!("cannot load {SAMPLE}: {e}"),
    }
    requests
}

#[test]
fn sample_profile_reads_as_nine_requests() {
    let requests = sample_requests();
    let summary: Vec<(i64, Verb)> = requests.iter().map(|r| (r.timestamp_ms, r.verb)).collect();
    assert_eq!(
        summary,
        [
            (0, Verb::Create),
            (50, Verb::Create),
            (100, Verb::List),
            (150, Verb::Get),
            (200, Verb::Get),
            (250, Verb::List),
            (300, Verb::Delete),
            (350, Verb::Delete),
            (400, Verb::List),
        ]
    );
    assert_eq!(requests[5].label_selector, "app=nginx");
}

#[test]
fn two_runners_split_the_sample_as_kperf_does() {
    let mut runner_timestamps = [Vec::new(), Vec::new()];
    for req in sample_requests() {
        let runner = runner_of(key_hash(&req), 2) as usize;
        runner_timestamps[runner].push(req.timestamp_ms);
    }
    assert_eq!(runner_timestamps[0], [50, 200, 250, 350]);
    assert_eq!(runner_timestamps[1], [0, 100, 150, 300, 400]);
}

#[test]
fn sample_metric_keys_match_kperfs() {
    let mut labels = Vec::new();
    for req in sample_requests() {
        let n = match normalize(&req, PathMode::Recorded) {
            Ok(n) => n,
            Err(e) => panic!("{}: {e}", req.api_path),
        };
        let label = metric_label(req.verb, &n.metric_path);
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    assert_eq!(
        labels,
        [
            "POST /api/v1/namespaces/default/pods",
            "LIST /api/v1/namespaces/default/pods",
            "GET /api/v1/namespaces/default/pods/nginx-1",
            "GET /api/v1/namespaces/default/pods/nginx-2",
            "LIST /api/v1/namespaces/default/pods?labelSelector=app%3Dnginx",
            "DELETE /api/v1/namespaces/default/pods/:name",
        ]
    );
}
