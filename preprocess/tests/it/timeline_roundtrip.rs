//! profile → timeline → export → load gives back the same requests and spec, for
//! random profiles (every verb, awkward strings, equal timestamps), and the kperf
//! sample profile preprocesses to the partition kperf computes.

use std::path::Path;

use proptest::prelude::*;

use preprocess::export::export_to_file;
use preprocess::inspect::inspect;
use preprocess::loader::{load_profile, LoadOptions, ProfileHead};
use preprocess::profile::{ContentType, ProfileRequest, Spec, Verb};
use preprocess::request_target::PathMode;
use preprocess::timeline::{Timeline, TimelineWriter, WriterOptions};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bench/profiles/kperf_sample_replay.yaml"
);

fn load(path: &Path) -> (ProfileHead, Vec<ProfileRequest>) {
    let file = std::fs::File::open(path).unwrap();
    let mut reqs = Vec::new();
    let head = load_profile(
        &path.display().to_string(),
        file,
        &LoadOptions::default(),
        &mut |i, r| {
            assert_eq!(i, reqs.len() as u64);
            reqs.push(r);
            Ok(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (head, reqs)
}

fn build(
    out: &Path,
    spec: &Spec,
    description: &str,
    reqs: &[ProfileRequest],
    runners: Option<u32>,
) {
    let opts = WriterOptions {
        runner_count_override: runners,
        ..WriterOptions::default()
    };
    let mut w = TimelineWriter::create(out, opts).unwrap();
    for (i, r) in reqs.iter().enumerate() {
        w.push(i as u64, r, PathMode::Recorded).unwrap();
    }
    w.finish(spec, description).unwrap();
}

#[test]
fn sample_profile_splits_as_kperf_and_inspects() {
    let dir = tempfile::tempdir().unwrap();
    let (head, reqs) = load(Path::new(SAMPLE));
    let bin = dir.path().join("sample.bin");
    build(&bin, &head.spec, &head.description, &reqs, None);
    let t = Timeline::open(&bin).unwrap();
    let mut by_runner = [Vec::new(), Vec::new()];
    for (run, info) in t.runs().iter().enumerate() {
        for rec in t.run_records(run).unwrap() {
            by_runner[info.runner as usize].push((rec.profile_index, rec.due_us / 1000));
        }
    }
    for list in &mut by_runner {
        list.sort_unstable();
    }
    let times = |l: &Vec<(u64, u64)>| l.iter().map(|&(_, ms)| ms).collect::<Vec<_>>();
    // docs/kperf-compatibility.md §4.
    assert_eq!(times(&by_runner[0]), [50, 200, 250, 350]);
    assert_eq!(times(&by_runner[1]), [0, 100, 150, 300, 400]);

    let report = inspect(&t, true).unwrap();
    assert_eq!(report.requests, 9);
    assert_eq!(report.duration_ms, 400.0);
    assert_eq!(report.per_runner.counts, [4, 5]);
    assert!((report.per_runner.imbalance_pct - (5.0 - 4.5) / 4.5 * 100.0).abs() < 1e-9);
    assert_eq!(report.per_shard.counts.len(), 64);
    assert_eq!(report.per_shard.counts.iter().sum::<u64>(), 9);
    assert_eq!(report.peak_rate_per_s, 9);
    assert_eq!(report.mean_rate_per_s, 9.0);
    assert_eq!(report.watches, 0);
    let verbs: Vec<(&str, u64)> = report
        .per_verb
        .iter()
        .map(|(v, n)| (v.as_str(), *n))
        .collect();
    assert_eq!(
        verbs,
        [("CREATE", 2), ("DELETE", 2), ("GET", 2), ("LIST", 3)]
    );
    assert_eq!(report.top_labels[0].requests, 2);
    assert_eq!(report.top_labels.iter().map(|l| l.requests).sum::<u64>(), 9);
    assert!(report
        .top_labels
        .iter()
        .any(|l| l.label == "DELETE /api/v1/namespaces/default/pods/:name" && l.requests == 2));

    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "requests",
        "duration_ms",
        "watches",
        "per_verb",
        "per_runner",
        "per_shard",
        "peak_rate_per_s",
        "mean_rate_per_s",
        "top_labels",
    ] {
        assert!(json.get(key).is_some(), "JSON lacks {key}: {json}");
    }
    assert_eq!(json["per_runner"]["counts"], serde_json::json!([4, 5]));
    assert_eq!(json["per_verb"]["LIST"], 3);
}

#[test]
fn sample_exports_to_the_same_profile() {
    let dir = tempfile::tempdir().unwrap();
    let (head, reqs) = load(Path::new(SAMPLE));
    let bin = dir.path().join("s.bin");
    // Partitioned with 3 runners: export must still restore profile order and the spec's 2.
    build(&bin, &head.spec, &head.description, &reqs, Some(3));
    let yaml = dir.path().join("s.yaml");
    export_to_file(&Timeline::open(&bin).unwrap(), &yaml).unwrap();
    let (head2, reqs2) = load(&yaml);
    assert_eq!(reqs2, reqs);
    assert_eq!(head2.spec, head.spec);
    assert_eq!(head2.description, head.description);
}

/// Characters that YAML treats specially, line breaks YAML folds, and any char at all.
fn awkward_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => proptest::sample::select(vec![
            '"', '\'', '\\', '\n', '\r', '\t', ':', ' ', '#', '-', '?', '&', '*', '!', '%', '@', '`', '{', '}',
            '[', ']', ',', '|', '>', 'é', '日', '\u{85}', '\u{2028}', '\u{2029}', '\u{feff}', '\u{7f}', '\u{0}',
            '\u{1F600}', 'a', '/', '=',
        ]),
        1 => any::<char>(),
    ]
}

fn awkward_string(min: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(awkward_char(), min..12).prop_map(|c| c.into_iter().collect()),
        proptest::sample::select(vec![
            "null", "~", "yes", "0123", "1e3", "- a", "a: b", "#c", " x "
        ])
        .prop_map(|s| s.to_string()),
    ]
    .prop_filter("at least min chars", move |s| s.chars().count() >= min)
}

fn request_strategy() -> impl Strategy<Value = (u8, ProfileRequest)> {
    (
        0u8..3,
        proptest::sample::select(Verb::ALL.to_vec()),
        awkward_string(0),
        awkward_string(1),
        awkward_string(0),
        awkward_string(1),
        awkward_string(0),
        awkward_string(0),
    )
        .prop_map(
            |(step, verb, namespace, resource_kind, name, api_path, body, label_selector)| {
                let name = if verb.requires_name() && name.is_empty() {
                    "n".into()
                } else {
                    name
                };
                let body = if verb.requires_body() && body.is_empty() {
                    "{}".into()
                } else {
                    body
                };
                let req = ProfileRequest {
                    timestamp_ms: 0,
                    verb,
                    namespace,
                    resource_kind,
                    name,
                    api_path: format!("/{api_path}"),
                    body,
                    label_selector,
                };
                (step, req)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_profiles_round_trip_through_export(
        steps in proptest::collection::vec(request_strategy(), 1..30),
        description in awkward_string(0),
        runners in 1u32..5,
        protobuf in any::<bool>(),
    ) {
        let mut ts = 1_700_000_000_000i64;
        let reqs: Vec<ProfileRequest> = steps
            .into_iter()
            .map(|(step, mut r)| {
                ts += i64::from(step); // 0 gives equal timestamps
                r.timestamp_ms = ts;
                r
            })
            .collect();
        let spec = Spec {
            runner_count: runners,
            conns_per_runner: 3,
            clients_per_runner: 7,
            content_type: if protobuf { ContentType::Protobuf } else { ContentType::Json },
            disable_http2: protobuf,
        };
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("t.bin");
        build(&bin, &spec, &description, &reqs, None);
        let t = Timeline::open(&bin).unwrap();
        t.verify().unwrap();
        let yaml = dir.path().join("t.yaml");
        export_to_file(&t, &yaml).unwrap();
        let (head, back) = load(&yaml);
        prop_assert_eq!(head.spec, spec);
        prop_assert_eq!(head.description, description);
        prop_assert_eq!(back, reqs);
    }
}
