//! The profile loader: the general streaming loader on any bytes, and the fast parallel
//! loader on the same bytes; where both load the profile they must agree exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use preprocess::loader::{load_profile, load_profile_fast, FastOptions, FastOutcome, LoadOptions};
use preprocess::profile::ProfileRequest;

/// Small limits so a fuzz input reaches them (and the deferral to the general loader).
fn load_options() -> LoadOptions {
    LoadOptions {
        max_scalar_bytes: 4 << 10,
        max_alias_expansions: 1_000,
        max_depth: 32,
        max_node_bytes: 64 << 10,
    }
}

fuzz_target!(|data: &[u8]| {
    let opts = load_options();
    let mut general: Vec<ProfileRequest> = Vec::new();
    let general_head = load_profile("fuzz.yaml", data, &opts, &mut |index, req| {
        assert_eq!(
            index,
            general.len() as u64,
            "general loader skipped an index"
        );
        general.push(req);
        Ok(())
    });
    if let Err(e) = &general_head {
        // Every error has a message naming the source.
        assert!(!e.to_string().is_empty());
    }

    let fast_opts = FastOptions {
        workers: 2,
        chunk_bytes: 4096,
        load: opts,
    };
    let mut fast: Vec<ProfileRequest> = Vec::new();
    let outcome = load_profile_fast(data, &fast_opts, &|req| Some(req), &mut |index, req| {
        assert_eq!(index, fast.len() as u64, "fast loader skipped an index");
        fast.push(req.clone());
        Ok(())
    });
    // The fast loader only defers or loads; its own errors are `on_request`'s, never raised here.
    let outcome = outcome.expect("the fast loader failed instead of deferring");
    if let FastOutcome::Loaded(fast_head) = outcome {
        let head = general_head.expect("the fast loader accepted what the general loader refused");
        assert_eq!(fast_head.version, head.version);
        assert_eq!(fast_head.description, head.description);
        assert_eq!(fast_head.spec, head.spec);
        assert_eq!(fast_head.request_count, head.request_count);
        assert_eq!(fast, general, "the two loaders read different requests");
    }
});
