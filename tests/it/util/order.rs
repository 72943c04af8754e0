//! Per-object order checks against apisim's order log (`/apisim/order`): for every named
//! object of a profile, apisim must have seen the profile's verbs in profile order.

use std::collections::BTreeMap;
use std::path::Path;

use bench::lab::order::{apisim_key, apisim_verb};
use preprocess::loader::{load_profile, LoadOptions};
use preprocess::profile::ProfileRequest;
use serde_json::Value;

/// Loads a profile's requests with the project's own loader.
pub fn requests_of(profile: &Path) -> Vec<ProfileRequest> {
    let file = std::fs::File::open(profile).expect("open profile");
    let mut out = Vec::new();
    load_profile(
        &profile.display().to_string(),
        file,
        &LoadOptions::default(),
        &mut |_, r| {
            out.push(r);
            Ok(())
        },
    )
    .expect("profile loads");
    out
}

/// Objects whose requests apisim saw in another order than the profile's, with what it
/// saw and what was expected (empty: no violation). The lab's check (`bench::lab::order`).
pub fn order_violations(requests: &[ProfileRequest], order: &Value) -> Vec<String> {
    let mut expected: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for r in requests {
        if let Some(key) = apisim_key(r) {
            expected.entry(key).or_default().push(apisim_verb(r.verb));
        }
    }
    assert!(!expected.is_empty(), "profile has named objects");
    bench::lab::order::order_violations(&expected, order, Path::new("/apisim/order"))
        .expect("a complete order log")
}
