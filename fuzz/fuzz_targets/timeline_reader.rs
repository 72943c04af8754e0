//! The timeline reader: any bytes as a timeline, checked as `inspect --verify` and `engine run`
//! do (the due-order check included), and every record, label and origin read whatever the
//! checks said. The first byte is a control byte: when its low bit is set the rest has its
//! checksums recomputed (`reseal_checksums`) before it is read, so that mutations of records,
//! runs and references reach the checks behind the checksums instead of stopping at them.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use preprocess::timeline::{reseal_checksums, Timeline, VerifyProgress, VerifyState};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut image = rest.to_vec();
    if control & 1 == 1 {
        let _ = reseal_checksums(&mut image);
    }
    let Ok(timeline) = Timeline::from_bytes(&image, Path::new("fuzz.bin")) else {
        return;
    };

    // The due-order check: its bound never falls, its end state matches its result, and what
    // the whole-file check accepts it accepts.
    let progress = VerifyProgress::new();
    let mut highest = 0u64;
    let checked = timeline.check_in_due_order(&progress, &mut |bound| {
        assert!(bound >= highest, "the bound fell from {highest} to {bound}");
        highest = bound;
        true
    });
    match &checked {
        Ok(true) => assert_eq!(progress.state(), VerifyState::Done),
        Ok(false) => unreachable!("pace never stops this check"),
        Err(e) => {
            assert_eq!(progress.state(), VerifyState::Failed);
            assert!(!e.to_string().is_empty());
        }
    }
    // `verify` runs the same check again (as `verify_for_replay`) before its own.
    if timeline.verify().is_ok() {
        assert!(checked.is_ok(), "verify accepted what the due-order check refused");
    }

    // What a dispatcher may take under the highest published bound (each run in order, no due
    // time going backwards) was checked: it decodes and is due within the profile.
    let duration = timeline.header().duration_us;
    for run in 0..timeline.runs().len() {
        let Some(records) = timeline.run_records(run) else {
            continue;
        };
        let mut taken = 0u64;
        for rec in records.iter().take(4096) {
            let covered = checked.as_ref().is_ok_and(|&done| done) || rec.due_us < highest;
            if !covered || rec.due_us < taken {
                break;
            }
            taken = rec.due_us;
            let view = timeline.view(rec);
            assert!(view.is_ok(), "a covered record does not decode: {view:?}");
            assert!(rec.due_us <= duration, "a covered record is due past the end");
        }
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
    let _ = timeline.content_id();
    for id in 0..64 {
        let _ = timeline.label(id);
    }
});
