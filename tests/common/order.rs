//! Per-object order checks against apisim's order log (`/apisim/order`): for every named
//! object of a profile, apisim must have seen the profile's verbs in profile order.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use preprocess::loader::{load_profile, LoadOptions};
use preprocess::profile::{ProfileRequest, Verb};
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

/// apisim's order-log key of a named request: `<ns>/<resource plural>/<name>`, read from the apiPath.
pub fn apisim_key(r: &ProfileRequest) -> Option<String> {
    if r.name.is_empty() || matches!(r.verb, Verb::List | Verb::Watch | Verb::DeleteCollection) {
        return None;
    }
    let path = r.api_path.split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Resource plural: the segment after the namespace, or after the group/version.
    let (ns, rest) = match segs.iter().position(|s| *s == "namespaces") {
        Some(i) if segs.len() > i + 2 => (segs[i + 1], &segs[i + 2..]),
        _ => {
            let skip = if segs.first() == Some(&"api") { 2 } else { 3 };
            ("", segs.get(skip..).unwrap_or(&[]))
        }
    };
    let resource = rest.first()?;
    Some(format!("{ns}/{resource}/{}", r.name))
}

/// apisim's name of a verb in its order log.
pub fn apisim_verb(v: Verb) -> &'static str {
    match v {
        Verb::Get => "GET",
        Verb::List => "LIST",
        Verb::Watch => "WATCH",
        Verb::Create => "CREATE",
        Verb::Delete => "DELETE",
        Verb::DeleteCollection => "DELETECOLLECTION",
        Verb::Patch => "PATCH",
        Verb::Apply => "APPLY",
    }
}

/// Objects whose requests apisim saw in another order than the profile's, with what it
/// saw and what was expected (empty: no violation).
pub fn order_violations(requests: &[ProfileRequest], order: &Value) -> Vec<String> {
    let mut expected: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for r in requests {
        if let Some(key) = apisim_key(r) {
            expected.entry(key).or_default().push(apisim_verb(r.verb));
        }
    }
    assert!(!expected.is_empty(), "profile has named objects");
    let objects = order["objects"].as_object().expect("order log objects");
    let mut out = Vec::new();
    for (key, verbs) in &expected {
        let seen: Vec<&str> = objects
            .get(key)
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|e| e["verb"].as_str().unwrap_or("?"))
                    .collect()
            })
            .unwrap_or_default();
        if &seen != verbs {
            out.push(format!("{key}: saw {seen:?}, expected {verbs:?}"));
        }
    }
    out
}
