//! Timeline writer + reader round trip on hand-built requests: header, runs, records,
//! labels, origins, interning, per-object order, file mode, and writer errors.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use preprocess::partition::{runner_of, shard_of};
use preprocess::profile::{ContentType, ProfileRequest, Spec, Verb};
use preprocess::request_target::PathMode;
use preprocess::timeline::{Timeline, TimelineError, TimelineWriter, WriterOptions};

use crate::util::profile;

fn spec(runners: u32) -> Spec {
    Spec {
        runner_count: runners,
        conns_per_runner: 2,
        clients_per_runner: 0,
        content_type: ContentType::Json,
        disable_http2: false,
    }
}

/// A GET of Pod default/a due at `ts` ms: the request the writer's edge cases push.
fn get_a(ts: i64) -> ProfileRequest {
    profile().get("default/a").at_ms(ts).one()
}

fn write(
    path: &Path,
    reqs: &[ProfileRequest],
    runners: u32,
    shards: u32,
) -> preprocess::timeline::WriteSummary {
    let opts = WriterOptions {
        shards_per_runner: shards,
        source: "hand-built".into(),
        ..WriterOptions::default()
    };
    let mut w = TimelineWriter::create(path, opts).expect("create writer");
    for (i, r) in reqs.iter().enumerate() {
        w.push(i as u64, r, PathMode::Recorded).expect("push");
    }
    w.finish(&spec(runners), "a description").expect("finish")
}

/// 200 requests over 20 objects, every verb, bodies shared between objects.
fn mixed_requests() -> Vec<ProfileRequest> {
    let verbs = [
        Verb::Create,
        Verb::Get,
        Verb::Patch,
        Verb::List,
        Verb::Watch,
        Verb::Delete,
        Verb::Apply,
    ];
    profile()
        .each(0..200, |p, i| {
            let verb = verbs[i % verbs.len()];
            let body = if verb.requires_body() {
                format!("{{\"spec\":{}}}", i % 3)
            } else {
                String::new()
            };
            p.verb(verb, &format!("default/pod-{}", i % 20))
                .body(&body)
                .at_ms((i / 3) as i64)
        })
        .build()
}

#[test]
fn round_trip_keeps_every_request_in_its_run_in_profile_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    let reqs = mixed_requests();
    let summary = write(&path, &reqs, 3, 4);
    let t = Timeline::open(&path).expect("open");
    let h = t.header();
    assert_eq!(h.request_count, 200);
    assert_eq!(h.runner_count, 3);
    assert_eq!(h.shards_per_runner, 4);
    assert_eq!(h.spec, spec(3));
    assert_eq!(h.description, "a description");
    assert_eq!(h.source, "hand-built");
    assert_eq!(h.path_mode, "recorded");
    assert_eq!(h.duration_us, 199 / 3 * 1000);
    assert_eq!(
        h.watch_count,
        reqs.iter().filter(|r| r.verb == Verb::Watch).count() as u64
    );
    assert_eq!(summary.header, *h);
    assert_eq!(t.runs().len(), 12);
    t.verify().expect("verify");

    let mut seen = vec![false; reqs.len()];
    for (run, info) in t.runs().iter().enumerate() {
        assert_eq!((info.runner, info.shard), (run as u32 / 4, run as u32 % 4));
        let records = t.run_records(run).expect("run exists");
        assert_eq!(records.len() as u64, info.len);
        let mut last = None;
        for rec in records {
            let v = t.view(rec).expect("view");
            let i = rec.profile_index as usize;
            let req = &reqs[i];
            assert!(!seen[i], "profile index {i} appears twice");
            seen[i] = true;
            assert!(last < Some(i), "run {run} not in profile order");
            last = Some(i);
            assert_eq!(v.verb, req.verb);
            assert_eq!(v.method, req.verb.method());
            assert_eq!(rec.due_us, req.timestamp_ms as u64 * 1000);
            assert_eq!(v.body, req.body.as_bytes());
            assert!(std::str::from_utf8(v.target)
                .unwrap()
                .starts_with(&req.api_path));
            assert_eq!(rec.is_watch(), req.verb == Verb::Watch);
            assert_eq!(runner_of(rec.key_hash, 3), info.runner);
            assert_eq!(shard_of(rec.key_hash, 4), info.shard);
            let label = t.label(rec.label).expect("label");
            assert!(label.starts_with(req.verb.metric_label()), "{label}");
            let o = t.origin(rec.profile_index).expect("origin");
            assert_eq!(o.record, rec);
            assert_eq!(
                (
                    o.namespace,
                    o.resource_kind,
                    o.name,
                    o.label_selector,
                    o.api_path
                ),
                (
                    &*req.namespace,
                    &*req.resource_kind,
                    &*req.name,
                    &*req.label_selector,
                    &*req.api_path
                )
            );
        }
    }
    assert!(seen.iter().all(|&s| s), "every request is in some run");
}

#[test]
fn records_of_one_object_share_a_shard_in_profile_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    let reqs = mixed_requests();
    write(&path, &reqs, 2, 8);
    let t = Timeline::open(&path).unwrap();
    let mut run_of_key = std::collections::HashMap::new();
    for run in 0..t.runs().len() {
        let mut last_index_of_key = std::collections::HashMap::new();
        for rec in t.run_records(run).unwrap() {
            let prev_run = run_of_key.insert(rec.key_hash, run);
            assert!(
                prev_run.is_none() || prev_run == Some(run),
                "key split across runs"
            );
            let prev = last_index_of_key.insert(rec.key_hash, rec.profile_index);
            assert!(prev < Some(rec.profile_index), "object order broken");
        }
    }
    // 20 named objects + the nameless LIST/WATCH key.
    assert_eq!(run_of_key.len(), 21);
}

#[test]
fn identical_bodies_and_targets_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    let body = "x".repeat(1000);
    let reqs = profile()
        .each(0..100, |p, i| p.create("default/same").body(&body).at_ms(i))
        .build();
    let summary = write(&path, &reqs, 1, 1);
    assert_eq!(summary.distinct_bodies, 1);
    assert_eq!(summary.distinct_targets, 1);
    assert!(
        summary.blob_bytes < 2 * 1000,
        "blob area {} bytes",
        summary.blob_bytes
    );
    let t = Timeline::open(&path).unwrap();
    let records = t.run_records(0).unwrap();
    assert!(records
        .iter()
        .all(|r| r.body == records[0].body && r.target == records[0].target));
    assert_eq!(t.view(&records[99]).unwrap().body, body.as_bytes());
}

#[test]
fn output_is_private_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    write(&path, &mixed_requests(), 1, 1);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn runner_override_partitions_with_n_and_keeps_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    let opts = WriterOptions {
        runner_count_override: Some(5),
        shards_per_runner: 2,
        ..WriterOptions::default()
    };
    let mut w = TimelineWriter::create(&path, opts).unwrap();
    for (i, r) in mixed_requests().iter().enumerate() {
        w.push(i as u64, r, PathMode::Recorded).unwrap();
    }
    w.finish(&spec(2), "").unwrap();
    let t = Timeline::open(&path).unwrap();
    assert_eq!(t.header().runner_count, 5);
    assert_eq!(t.header().spec.runner_count, 2);
    assert_eq!(t.runs().len(), 10);
    t.verify().unwrap();
}

fn dir_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn failed_finish_leaves_no_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    let mut w = TimelineWriter::create(&path, WriterOptions::default()).unwrap();
    w.push(0, &get_a(0), PathMode::Recorded).unwrap();
    let err = w.finish(&spec(0), "").unwrap_err();
    assert!(err.to_string().contains("runner count"), "{err}");
    assert!(
        dir_entries(dir.path()).is_empty(),
        "{:?}",
        dir_entries(dir.path())
    );
}

#[test]
fn unsorted_and_out_of_order_pushes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        TimelineWriter::create(&dir.path().join("t.bin"), WriterOptions::default()).unwrap();
    w.push(0, &get_a(10), PathMode::Recorded).unwrap();
    let err = w.push(1, &get_a(9), PathMode::Recorded).unwrap_err();
    assert!(
        matches!(
            err,
            TimelineError::BadRequest {
                index: 1,
                field: "timestamp",
                ..
            }
        ),
        "{err}"
    );
    let err = w.push(5, &get_a(11), PathMode::Recorded).unwrap_err();
    assert!(
        matches!(
            err,
            TimelineError::BadRequest {
                field: "profile index",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn timestamps_that_overflow_microseconds_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut w =
        TimelineWriter::create(&dir.path().join("t.bin"), WriterOptions::default()).unwrap();
    let err = w.push(0, &get_a(i64::MAX), PathMode::Recorded).unwrap_err();
    assert!(err.to_string().contains("timestamp"), "{err}");
    let err = w.push(0, &get_a(-1), PathMode::Recorded).unwrap_err();
    assert!(err.to_string().contains("-1 ms"), "{err}");
    // The largest representable timestamp is accepted.
    w.push(0, &get_a((u64::MAX / 1000) as i64), PathMode::Recorded)
        .unwrap();
}

#[test]
fn an_invalid_api_path_is_kept_raw_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    let mut bad = get_a(0);
    bad.api_path = "/api/v1/pods/%zz".into();
    let summary = write(&path, &[bad], 1, 1);
    assert_eq!(summary.header.request_count, 1);
    let t = Timeline::open(&path).unwrap();
    let rec = &t.run_records(0).unwrap()[0];
    assert!(rec.has_invalid_target());
    assert_eq!(t.view(rec).unwrap().target, b"/api/v1/pods/%zz");
}

#[test]
fn too_many_runs_are_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        runner_count_override: Some(1 << 20),
        ..WriterOptions::default()
    };
    let mut w = TimelineWriter::create(&dir.path().join("t.bin"), opts).unwrap();
    w.push(0, &get_a(0), PathMode::Recorded).unwrap();
    let err = w.finish(&spec(1), "").unwrap_err();
    assert!(err.to_string().contains("--shards"), "{err}");
    assert!(dir_entries(dir.path()).is_empty());
}
