//! The timeline reader: open a file of any bytes, check it as `inspect --verify` and
//! `engine run` do, and read every record, label and origin whatever the checks said.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use preprocess::timeline::Timeline;

/// One file per fuzzing process, rewritten for each input (the reader maps a file).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("kreplay-fuzz-timeline-{}.bin", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch timeline");
    let Ok(timeline) = Timeline::open(path) else {
        return;
    };
    let _ = timeline.verify();
    let _ = timeline.verify_for_replay();
    let _ = timeline.content_id();
    let _ = timeline.header();
    for run in 0..timeline.runs().len() {
        let Some(records) = timeline.run_records(run) else {
            continue;
        };
        for rec in records.iter().take(4096) {
            if let Ok(view) = timeline.view(rec) {
                std::hint::black_box(&view);
            }
            let _ = timeline.origin(rec.profile_index);
        }
    }
    if let Ok(all) = timeline.all_records() {
        for rec in all.iter().take(4096) {
            let _ = timeline.view(rec);
        }
    }
    for id in 0..64 {
        let _ = timeline.label(id);
    }
});
