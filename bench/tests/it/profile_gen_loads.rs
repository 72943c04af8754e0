//! Generated profiles load and validate with kreplay's own kperf-compatible loader.

use bench::profile_gen::{write_profile, GenConfig, GenContentType, GenVerb, VerbMix};
use preprocess::loader::{load_profile, LoadOptions};
use preprocess::profile::{ContentType, ProfileRequest};

#[test]
fn generated_profile_loads_with_preprocess() {
    let mix: VerbMix =
        "GET=30,LIST=10,WATCH=5,CREATE=20,PATCH=10,APPLY=15,DELETE=8,DELETECOLLECTION=2"
            .parse()
            .expect("mix");
    let cfg = GenConfig {
        requests: 5000,
        rate: Some(500.0),
        mix,
        body_size: 1500,
        runners: 4,
        conns: 6,
        clients: 12,
        content_type: GenContentType::Protobuf,
        disable_http2: true,
        seed: 5,
        ..GenConfig::default()
    };
    let mut text = Vec::new();
    let summary = write_profile(&cfg, &mut text).expect("generate");
    let mut loaded: Vec<ProfileRequest> = Vec::new();
    let head = load_profile(
        "generated.yaml",
        &text[..],
        &LoadOptions::default(),
        &mut |i, r| {
            assert_eq!(i, loaded.len() as u64);
            loaded.push(r);
            Ok(())
        },
    )
    .expect("the generated profile loads");
    assert_eq!(head.request_count, 5000);
    assert!(head.warnings.is_empty(), "{:?}", head.warnings);
    assert_eq!(head.spec.runner_count, 4);
    assert_eq!(head.spec.conns_per_runner, 6);
    assert_eq!(head.spec.clients_per_runner, 12);
    assert_eq!(head.spec.content_type, ContentType::Protobuf);
    assert!(head.spec.disable_http2);
    assert!(head.description.starts_with("kreplay-gen: 5000 requests"));

    assert_eq!(
        loaded.last().map(|r| r.timestamp_ms),
        Some(summary.last_timestamp_ms)
    );
    for v in GenVerb::ALL {
        let n = loaded
            .iter()
            .filter(|r| r.verb.as_str() == v.as_str())
            .count() as u64;
        assert_eq!(n, summary.count(v), "{v}");
    }
    for (i, r) in loaded.iter().enumerate() {
        if r.verb.requires_body() {
            assert_eq!(r.body.len(), 1500, "request {i} ({}) body", r.verb);
        } else {
            assert!(r.body.is_empty(), "request {i}");
        }
    }
}
