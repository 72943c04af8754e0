//! The per-block checks a replay runs ahead of its dispatcher (`check_in_due_order`): the
//! bound it publishes only ever covers checked records, damage in a late block stops it
//! there, a small file is checked whole before anything is released, and records whose
//! fields are wrong behind intact checksums (`reseal_checksums`) are refused the same way.

use std::path::Path;

use preprocess::profile::{ContentType, ProfileRequest, Spec, Verb};
use preprocess::request_target::PathMode;
use preprocess::timeline::format::SectionEntry;
use preprocess::timeline::record::RequestRecord;
use preprocess::timeline::{
    reseal_checksums, BlockLayout, Timeline, TimelineError, TimelineWriter, VerifyProgress,
    VerifyState, WriterOptions,
};

const SMALL_BLOCKS: BlockLayout = BlockLayout {
    records_per_block: 8,
    origin_block_bytes: 512,
    blob_block_bytes: 256,
};

/// `n` requests 10 ms apart over 12 objects, bodies on the writes.
fn write_timeline(path: &Path, n: u64, layout: BlockLayout) {
    let opts = WriterOptions {
        shards_per_runner: 2,
        block_layout: layout,
        ..WriterOptions::default()
    };
    let mut w = TimelineWriter::create(path, opts).unwrap();
    let verbs = [
        Verb::Create,
        Verb::Get,
        Verb::List,
        Verb::Patch,
        Verb::Delete,
    ];
    for i in 0..n {
        let verb = verbs[i as usize % verbs.len()];
        let name = format!("obj-{}", i % 12);
        let req = ProfileRequest {
            timestamp_ms: i as i64 * 10,
            verb,
            namespace: "ns".into(),
            resource_kind: "ConfigMap".into(),
            name: name.clone(),
            api_path: format!("/api/v1/namespaces/ns/configmaps/{name}"),
            body: if verb.requires_body() {
                format!("{{\"data\":{{\"i\":\"{i:0>40}\"}}}}")
            } else {
                String::new()
            },
            label_selector: String::new(),
        };
        w.push(i, &req, PathMode::Recorded).unwrap();
    }
    let spec = Spec {
        runner_count: 2,
        conns_per_runner: 1,
        clients_per_runner: 0,
        content_type: ContentType::Json,
        disable_http2: false,
    };
    w.finish(&spec, "blocks").unwrap();
}

/// Runs the due-order check to its end; the result and every bound it published.
fn check(path: &Path) -> (Result<bool, TimelineError>, Vec<u64>, VerifyState) {
    let t = Timeline::open(path).expect("opens: the damage is past the small sections");
    let progress = VerifyProgress::new();
    let mut bounds = Vec::new();
    let result = t.check_in_due_order(&progress, &mut |b| {
        bounds.push(b);
        true
    });
    (result, bounds, progress.state())
}

fn section_of(path: &Path, pick: fn(&Timeline) -> SectionEntry) -> SectionEntry {
    pick(&Timeline::open(path).unwrap())
}

#[test]
fn an_intact_file_ends_done_with_a_rising_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    write_timeline(&path, 300, SMALL_BLOCKS);
    let (result, bounds, state) = check(&path);
    assert!(result.unwrap(), "checked to the end");
    assert_eq!(state, VerifyState::Done);
    assert!(bounds.windows(2).all(|w| w[0] <= w[1]), "{bounds:?}");
    // Many blocks, so the bound was published well before the end.
    assert!(bounds.iter().any(|&b| b > 0 && b < 2_990_000), "{bounds:?}");
}

#[test]
fn damage_in_a_late_record_block_stops_the_bound_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    write_timeline(&good, 300, SMALL_BLOCKS);
    let t = Timeline::open(&good).unwrap();
    let records = t.sections().records;
    let bytes = std::fs::read(&good).unwrap();
    // Block 10 of run 0 (records 80..88 of the run): due about 1.6 s into 3 s.
    let run0 = t.run_records(0).unwrap();
    assert!(run0.len() > 100, "run 0 has {} records", run0.len());
    let first_damaged_due = run0[80].due_us;
    drop(t);
    let damaged = dir.path().join("damaged.bin");
    let mut copy = bytes.clone();
    copy[records.offset as usize + 83 * 64 + 1] ^= 0x10;
    std::fs::write(&damaged, &copy).unwrap();

    let (result, bounds, state) = check(&damaged);
    let err = result.unwrap_err();
    assert!(
        matches!(&err, TimelineError::ChecksumMismatch { what, .. } if what.starts_with("records block 10 of run 0")),
        "{err}"
    );
    assert_eq!(state, VerifyState::Failed);
    assert!(!state.covers(0));
    let highest = *bounds.iter().max().unwrap();
    assert!(
        highest > 0,
        "the intact early blocks were released: {bounds:?}"
    );
    assert!(
        highest <= first_damaged_due,
        "bound {highest} µs covers the damaged block (due from {first_damaged_due} µs)"
    );
}

#[test]
fn damage_in_origins_and_blobs_names_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    write_timeline(&good, 300, SMALL_BLOCKS);
    let bytes = std::fs::read(&good).unwrap();
    for (pick, name) in [
        (
            (|t: &Timeline| t.sections().origins) as fn(&Timeline) -> SectionEntry,
            "origin block",
        ),
        (|t: &Timeline| t.sections().blobs, "blob block"),
    ] {
        let s = section_of(&good, pick);
        let at = s.offset + s.len - 3; // in the section's last block
        let mut copy = bytes.clone();
        copy[at as usize] ^= 0x01;
        let damaged = dir.path().join("damaged.bin");
        std::fs::write(&damaged, &copy).unwrap();
        let (result, _, state) = check(&damaged);
        let err = result.unwrap_err().to_string();
        assert!(err.contains(name), "{name}: {err}");
        assert_eq!(state, VerifyState::Failed);
    }
}

#[test]
fn every_byte_flip_of_a_small_file_fails_before_anything_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    write_timeline(&good, 40, BlockLayout::default());
    let bytes = std::fs::read(&good).unwrap();
    let damaged = dir.path().join("damaged.bin");
    let mut checked = 0;
    for at in 0..bytes.len() {
        let mut copy = bytes.clone();
        copy[at] ^= 0x04;
        std::fs::write(&damaged, &copy).unwrap();
        let Ok(t) = Timeline::open(&damaged) else {
            continue;
        };
        let progress = VerifyProgress::new();
        let mut highest = 0;
        let result = t.check_in_due_order(&progress, &mut |b| {
            highest = highest.max(b);
            true
        });
        assert!(result.is_err(), "flip at byte {at} went unnoticed");
        assert_eq!(highest, 0, "flip at byte {at}: a bound was published first");
        assert!(!progress.state().covers(0), "flip at byte {at}");
        checked += 1;
    }
    assert!(
        checked > bytes.len() / 2,
        "{checked} of {} flips opened",
        bytes.len()
    );
}

#[test]
fn pace_can_stop_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    write_timeline(&path, 300, SMALL_BLOCKS);
    let t = Timeline::open(&path).unwrap();
    let progress = VerifyProgress::new();
    let mut calls = 0;
    let result = t.check_in_due_order(&progress, &mut |_| {
        calls += 1;
        calls < 5
    });
    assert!(!result.unwrap(), "stopped before the end");
    assert_eq!(calls, 5);
    assert!(matches!(progress.state(), VerifyState::Checking { .. }));
}

/// Edits record `n` of the record table and reseals every checksum.
fn resealed_with(
    bytes: &[u8],
    records: SectionEntry,
    n: usize,
    edit: impl Fn(&mut RequestRecord),
) -> Vec<u8> {
    let at = records.offset as usize + n * 64;
    let mut rec: RequestRecord = bytemuck::pod_read_unaligned(&bytes[at..at + 64]);
    edit(&mut rec);
    let mut out = bytes.to_vec();
    out[at..at + 64].copy_from_slice(bytemuck::bytes_of(&rec));
    reseal_checksums(&mut out).expect("reseal");
    out
}

#[test]
fn bad_fields_behind_intact_checksums_are_refused_by_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    write_timeline(&good, 300, SMALL_BLOCKS);
    let bytes = std::fs::read(&good).unwrap();
    let records = section_of(&good, |t| t.sections().records);
    // Resealing an intact file changes nothing.
    let mut same = bytes.clone();
    reseal_checksums(&mut same).unwrap();
    assert_eq!(same, bytes);

    type Edit = fn(&mut RequestRecord);
    let cases: [(&str, Edit); 4] = [
        ("due_us", |r| r.due_us = 1 << 40),
        ("target", |r| r.target.offset = 1 << 30),
        ("label", |r| r.label = 1_000),
        ("profile_index", |r| r.profile_index = 1 << 33),
    ];
    for (field, edit) in cases {
        let damaged = dir.path().join("damaged.bin");
        std::fs::write(&damaged, resealed_with(&bytes, records, 120, edit)).unwrap();
        let (result, _, state) = check(&damaged);
        match result {
            Err(TimelineError::BadRecord { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected a BadRecord error, got {other:?}"),
        }
        assert_eq!(state, VerifyState::Failed);
        let t = Timeline::open(&damaged).unwrap();
        assert!(t.verify().is_err(), "{field}: verify");
    }
}

#[test]
fn the_block_table_follows_the_blobs_with_one_checksum_per_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.bin");
    write_timeline(&path, 300, SMALL_BLOCKS);
    let t = Timeline::open(&path).unwrap();
    let s = t.sections();
    assert_eq!(
        s.blocks.offset,
        (s.blobs.offset + s.blobs.len).div_ceil(64) * 64
    );
    let record_blocks: u64 = t.runs().iter().map(|r| r.len.div_ceil(8)).sum();
    let blocks = record_blocks + s.origins.len.div_ceil(512) + s.blobs.len.div_ceil(256);
    assert_eq!(s.blocks.len, blocks * 8);
    let bytes = std::fs::read(&path).unwrap();
    // The first entry is the xxh3 of run 0's first 8 records; the header follows the table.
    assert!(t.runs()[0].len >= 8, "run 0 fills its first block");
    let first = u64::from_le_bytes(bytes[s.blocks.offset as usize..][..8].try_into().unwrap());
    let run0 = &bytes[s.records.offset as usize..][..8 * 64];
    assert_eq!(first, xxhash_rust::xxh3::xxh3_64(run0));
    let preamble: preprocess::timeline::format::Preamble =
        bytemuck::pod_read_unaligned(&bytes[..64]);
    assert_eq!(preamble.header_offset, s.blocks.offset + s.blocks.len);
    assert_eq!(preamble.format_version, 2);
}
