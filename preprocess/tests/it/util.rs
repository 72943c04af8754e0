//! What preprocess's scenarios share: loading YAML text (`load`, `error_of`), a valid head to
//! put requests under, and the one request the target tests vary (`target_request`). Profiles
//! built request by request come from `testkit::profile`, re-exported here.

#![allow(dead_code)]

use preprocess::loader::{load_profile, LoadError, LoadOptions, ProfileHead};
use preprocess::profile::{ProfileRequest, Verb};

pub use testkit::profile;

/// A valid head for request-level tests.
pub const HEAD: &str =
    "version: 1\nspec:\n  runnerCount: 1\n  connsPerRunner: 1\n  contentType: json\n";

/// The sample fixture, reached through the shared folder beside the repository.
pub const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bench/profiles/kperf_sample_replay.yaml"
);

/// Loads YAML text, collecting the delivered requests.
pub fn load(yaml: &str) -> Result<(ProfileHead, Vec<ProfileRequest>), LoadError> {
    load_bytes(yaml.as_bytes(), &LoadOptions::default())
}

/// Loads bytes with options, collecting the delivered requests.
pub fn load_bytes(
    bytes: &[u8],
    opts: &LoadOptions,
) -> Result<(ProfileHead, Vec<ProfileRequest>), LoadError> {
    let mut got = Vec::new();
    let head = load_profile("test.yaml", bytes, opts, &mut |i, r| {
        assert_eq!(i as usize, got.len(), "requests arrive in order");
        got.push(r);
        Ok(())
    })?;
    Ok((head, got))
}

/// The error text of a profile that must fail.
pub fn error_of(yaml: &str) -> String {
    match load(yaml) {
        Ok((head, _)) => panic!("expected an error, loaded {head:?}"),
        Err(e) => e.to_string(),
    }
}

/// A profile with the valid head and these request items (YAML list items, already indented).
pub fn with_requests(items: &str) -> String {
    format!("{HEAD}requests:\n{items}")
}

/// One valid GET request item at `ts`.
pub fn get_item(ts: i64) -> String {
    format!(
        "- timestamp: {ts}\n  verb: GET\n  resourceKind: Pod\n  name: p\n  apiPath: /api/v1/pods/p\n"
    )
}

/// A request on Pod `default/x` of `verb`, sent to `api_path` with `selector`: what the request
/// target tests vary (a verb that needs a body gets `{}`).
pub fn target_request(verb: Verb, api_path: &str, selector: &str) -> ProfileRequest {
    let body = if verb.requires_body() { "{}" } else { "" };
    profile()
        .verb(verb, "default/x")
        .path(api_path)
        .selector(selector)
        .body(body)
        .one()
}
