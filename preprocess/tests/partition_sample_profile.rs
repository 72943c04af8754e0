//! kperf's sample profile (shared/fixtures/kperf_sample_replay.yaml): its split over
//! two runners (KPERF_COMPAT §4) and its metric keys (§6).

use preprocess::partition::{key_hash, runner_of};
use preprocess::profile::{ProfileRequest, Verb};
use preprocess::request_target::{metric_label, normalize, PathMode};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/kperf_sample_replay.yaml"
);

/// The requests of the sample profile. The fixture's shape is fixed and simple (list
/// items `  - timestamp:`, fields at four spaces, bodies as deeper `|` blocks), so a
/// line reader suffices here and keeps this test independent of the YAML loader.
fn sample_requests() -> Vec<ProfileRequest> {
    let text = match std::fs::read_to_string(SAMPLE) {
        Ok(t) => t,
        Err(e) => panic!("cannot read {SAMPLE}: {e}"),
    };
    let mut requests: Vec<ProfileRequest> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let field = if let Some(rest) = line.strip_prefix("  - ") {
            requests.push(ProfileRequest {
                timestamp_ms: -1,
                verb: Verb::Get,
                namespace: String::new(),
                resource_kind: String::new(),
                name: String::new(),
                api_path: String::new(),
                body: String::new(),
                label_selector: String::new(),
            });
            rest
        } else if let Some(rest) = line.strip_prefix("    ") {
            if rest.starts_with(' ') {
                continue; // a body line
            }
            rest
        } else {
            continue;
        };
        let Some(req) = requests.last_mut() else {
            panic!("{SAMPLE}:{}: field before the first request", i + 1);
        };
        let Some((key, value)) = field.split_once(": ") else {
            continue; // `body: |` has no value on its line
        };
        let value = value.trim().to_owned();
        match key {
            "timestamp" => {
                req.timestamp_ms = value
                    .parse()
                    .unwrap_or_else(|e| panic!("{SAMPLE}:{}: timestamp {value:?}: {e}", i + 1))
            }
            "verb" => {
                req.verb = Verb::from_profile(&value)
                    .unwrap_or_else(|| panic!("{SAMPLE}:{}: verb {value:?}", i + 1))
            }
            "namespace" => req.namespace = value,
            "resourceKind" => req.resource_kind = value,
            "name" => req.name = value,
            "apiPath" => req.api_path = value,
            "labelSelector" => req.label_selector = value,
            "body" => {}
            other => panic!("{SAMPLE}:{}: unexpected field {other:?}", i + 1),
        }
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
