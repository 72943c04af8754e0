//! A damaged timeline is an error from `open`, `view`, `label`, `origin` or `verify`,
//! never a panic: truncation at every section boundary and at random points, flipped
//! bytes anywhere (header, index, records, label table, ...), a wrong version.

use std::path::Path;

use proptest::prelude::*;

use preprocess::profile::{ContentType, ProfileRequest, Spec, Verb};
use preprocess::request_target::PathMode;
use preprocess::timeline::format::{Preamble, PREAMBLE_LEN};
use preprocess::timeline::record::RequestRecord;
use preprocess::timeline::{
    Timeline, TimelineError, TimelineWriter, WriterOptions, FORMAT_VERSION,
};

fn sample_bytes() -> Vec<u8> {
    static SAMPLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SAMPLE.get_or_init(build_sample).clone()
}

fn build_sample() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.bin");
    let opts = WriterOptions {
        shards_per_runner: 3,
        ..WriterOptions::default()
    };
    let mut w = TimelineWriter::create(&path, opts).unwrap();
    let verbs = [
        Verb::Create,
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Patch,
        Verb::Delete,
    ];
    for i in 0..40u64 {
        let verb = verbs[i as usize % verbs.len()];
        let req = ProfileRequest {
            timestamp_ms: i as i64 * 7,
            verb,
            namespace: format!("ns-{}", i % 3),
            resource_kind: "Pod".into(),
            name: format!("p-{}", i % 5),
            api_path: format!("/api/v1/namespaces/ns-{}/pods/p-{}", i % 3, i % 5),
            body: if verb.requires_body() {
                format!("{{\"n\":{i}}}")
            } else {
                String::new()
            },
            label_selector: if verb == Verb::List {
                "app=x".into()
            } else {
                String::new()
            },
        };
        w.push(i, &req, PathMode::Recorded).unwrap();
    }
    let spec = Spec {
        runner_count: 2,
        conns_per_runner: 1,
        clients_per_runner: 0,
        content_type: ContentType::Protobuf,
        disable_http2: true,
    };
    w.finish(&spec, "corruption sample").unwrap();
    std::fs::read(&path).unwrap()
}

/// Opens `bytes` as a timeline and reads all of it; the first error, if any.
fn read_everything(dir: &Path, bytes: &[u8]) -> Result<(), TimelineError> {
    let path = dir.join("t.bin");
    std::fs::write(&path, bytes).unwrap();
    let t = Timeline::open(&path)?;
    for run in 0..t.runs().len() {
        let records = t
            .run_records(run)
            .ok_or_else(|| TimelineError::Corrupt(format!("run {run} missing")))?;
        for rec in records {
            t.view(rec)?;
        }
    }
    for id in 0..t.header().label_count {
        t.label(id)?;
    }
    for i in 0..t.header().request_count {
        t.origin(i)?;
    }
    t.verify()
}

fn boundaries(bytes: &[u8]) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    std::fs::write(&path, bytes).unwrap();
    let t = Timeline::open(&path).unwrap();
    let mut cuts = vec![0, 1, PREAMBLE_LEN as u64 - 1, PREAMBLE_LEN as u64];
    for (_, s) in t.sections().named() {
        cuts.extend([
            s.offset,
            s.offset + 1,
            s.offset + s.len.saturating_sub(1),
            s.offset + s.len,
        ]);
    }
    cuts.push(bytes.len() as u64 - 1);
    cuts.retain(|&c| c < bytes.len() as u64);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

#[test]
fn the_sample_reads_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    read_everything(dir.path(), &sample_bytes()).expect("an undamaged timeline reads");
}

#[test]
fn truncation_at_every_section_boundary_fails_open() {
    let bytes = sample_bytes();
    let dir = tempfile::tempdir().unwrap();
    let cuts = boundaries(&bytes);
    assert!(cuts.len() > 15, "{cuts:?}");
    for cut in cuts {
        let path = dir.path().join("cut.bin");
        std::fs::write(&path, &bytes[..cut as usize]).unwrap();
        let err = Timeline::open(&path)
            .err()
            .unwrap_or_else(|| panic!("cut at {cut} opened"));
        let text = err.to_string();
        assert!(
            text.contains("truncated") || text.contains("corrupt") || text.contains("bad magic"),
            "cut at {cut}: {text}"
        );
    }
}

#[test]
fn every_single_byte_flip_is_detected() {
    let bytes = sample_bytes();
    let dir = tempfile::tempdir().unwrap();
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        assert!(
            read_everything(dir.path(), &damaged).is_err(),
            "flip at byte {at} went unnoticed"
        );
    }
}

#[test]
fn index_and_header_flips_fail_at_open() {
    let bytes = sample_bytes();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    std::fs::write(&path, &bytes).unwrap();
    let t = Timeline::open(&path).unwrap();
    let index = t.sections().index;
    let labels = t.sections().labels;
    let blocks = t.sections().blocks;
    let header_start = (blocks.offset + blocks.len) as usize;
    drop(t);
    // The small sections are checked whole at open: the index, the labels and the block table.
    let positions = (0..PREAMBLE_LEN)
        .chain(index.offset as usize..(index.offset + index.len) as usize)
        .chain(labels.offset as usize..(labels.offset + labels.len) as usize)
        .chain(blocks.offset as usize..header_start)
        .chain(header_start..bytes.len());
    for at in positions {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x01;
        std::fs::write(&path, &damaged).unwrap();
        assert!(Timeline::open(&path).is_err(), "flip at byte {at} opened");
    }
}

/// Rewrites record `n` of the record table with `edit` (no checksum fix: `view` alone must catch it).
fn with_record_edited(bytes: &[u8], n: usize, edit: impl Fn(&mut RequestRecord)) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    std::fs::write(&path, bytes).unwrap();
    let records = Timeline::open(&path).unwrap().sections().records;
    let at = records.offset as usize + n * 64;
    let mut rec: RequestRecord = bytemuck::pod_read_unaligned(&bytes[at..at + 64]);
    edit(&mut rec);
    let mut out = bytes.to_vec();
    out[at..at + 64].copy_from_slice(bytemuck::bytes_of(&rec));
    out
}

fn view_of_record(bytes: &[u8], n: usize) -> Result<(), TimelineError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    std::fs::write(&path, bytes).unwrap();
    let t = Timeline::open(&path).expect("records are not checked at open");
    let rec = &t.all_records()?[n];
    t.view(rec).map(|_| ())
}

type RecordEdit = Box<dyn Fn(&mut RequestRecord)>;

#[test]
fn view_rejects_each_bad_record_field() {
    let bytes = sample_bytes();
    let cases: [(&str, RecordEdit); 9] = [
        ("verb", Box::new(|r| r.verb = 8)),
        ("method", Box::new(|r| r.method = 4)),
        ("method", Box::new(|r| r.method = (r.method + 1) % 4)),
        ("body_kind", Box::new(|r| r.body_kind = 5)),
        ("flags", Box::new(|r| r.flags |= 0x80)),
        ("label", Box::new(|r| r.label = u32::MAX)),
        ("target", Box::new(|r| r.target.offset = u64::MAX - 1)),
        ("body", Box::new(|r| r.body.len = u32::MAX)),
        ("target", Box::new(|r| r.target.reserved = 1)),
    ];
    for (field, edit) in cases {
        let damaged = with_record_edited(&bytes, 5, edit);
        match view_of_record(&damaged, 5) {
            Err(TimelineError::BadRecord { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected a BadRecord error, got {other:?}"),
        }
    }
}

#[test]
fn another_format_version_is_refused_by_name() {
    // 1: the format before per-block checksums, which must be written again.
    for version in [1, 99] {
        let mut bytes = sample_bytes();
        let mut preamble: Preamble = bytemuck::pod_read_unaligned(&bytes[..PREAMBLE_LEN]);
        preamble.format_version = version;
        bytes[..PREAMBLE_LEN].copy_from_slice(bytemuck::bytes_of(&preamble));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        std::fs::write(&path, &bytes).unwrap();
        let err = Timeline::open(&path)
            .err()
            .expect("another version must not open");
        assert!(
            matches!(
                err,
                TimelineError::UnsupportedVersion { found, expected: FORMAT_VERSION } if found == version
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains(&format!("version {version}")), "{text}");
        assert!(text.contains("re-run preprocess"), "{text}");
    }
}

#[test]
fn a_file_that_is_not_a_timeline_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for content in [&b""[..], b"version: 1\n", &[0u8; 200][..]] {
        let path = dir.path().join("x.bin");
        std::fs::write(&path, content).unwrap();
        let err = Timeline::open(&path).err().expect("must not open");
        assert!(
            matches!(
                err,
                TimelineError::Truncated { .. } | TimelineError::BadMagic
            ),
            "{err}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_truncation_fails_open(frac in 0.0f64..1.0) {
        let bytes = sample_bytes();
        let cut = (bytes.len() as f64 * frac) as usize;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        std::fs::write(&path, &bytes[..cut]).unwrap();
        prop_assert!(Timeline::open(&path).is_err());
    }

    #[test]
    fn random_multi_byte_damage_is_detected(
        edits in proptest::collection::vec((0.0f64..1.0, 1u8..=255), 1..8)
    ) {
        let bytes = sample_bytes();
        let mut damaged = bytes.clone();
        for (frac, mask) in edits {
            let at = ((bytes.len() as f64 * frac) as usize).min(bytes.len() - 1);
            damaged[at] ^= mask;
        }
        prop_assume!(damaged != bytes);
        let dir = tempfile::tempdir().unwrap();
        prop_assert!(read_everything(dir.path(), &damaged).is_err());
    }
}
