//! Path handling of `normalize`: Go's `EscapedPath` for kperf's URLs, the two wire
//! path modes, and fragments.

use crate::util::target_request;
use preprocess::profile::Verb;
use preprocess::request_target::{normalize, NormalizedRequest, PathMode};

fn norm(verb: Verb, api_path: &str, mode: PathMode) -> NormalizedRequest {
    match normalize(&target_request(verb, api_path, ""), mode) {
        Ok(n) => n,
        Err(e) => panic!("normalize({verb} {api_path:?}) failed: {e}"),
    }
}

/// (request_path, recorded wire target, kperf-cleaned wire target) of a GET.
fn get(api_path: &str) -> (String, String, String) {
    let recorded = norm(Verb::Get, api_path, PathMode::Recorded);
    let cleaned = norm(Verb::Get, api_path, PathMode::KperfCleaned);
    assert_eq!(recorded.request_path, cleaned.request_path);
    assert_eq!(recorded.metric_path, cleaned.metric_path);
    (recorded.request_path, recorded.target, cleaned.target)
}

#[test]
fn recorded_is_the_default_mode() {
    assert_eq!(PathMode::default(), PathMode::Recorded);
}

#[test]
fn ordinary_kubernetes_paths_come_out_unchanged() {
    for path in [
        "/api/v1/namespaces/default/pods/nginx-1",
        "/apis/apps/v1/namespaces/kube-system/deployments/coredns/scale",
        "/api/v1/nodes/aks-nodepool1-12345678-vmss000000",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:controller:job-controller",
        "/api/v1/namespaces/default/pods/web-0/log",
        "/apis/example.com/v1/namespaces/a/widgets/w~1_x.y",
    ] {
        let (request_path, recorded, cleaned) = get(path);
        assert_eq!(request_path, path);
        assert_eq!(recorded, format!("{path}?timeout=1m0s"));
        assert_eq!(cleaned, format!("{path}?timeout=1m0s"));
    }
}

#[test]
fn bytes_illegal_in_a_path_are_escaped_from_the_decoded_path() {
    // Space and non-ASCII make the text invalid, so Go re-escapes the decoded path;
    // the legal "%41" then comes out decoded, and '(' ')' get escaped.
    let (request_path, recorded, cleaned) = get("/api/v1/namespaces/my ns/pods/café%41(1)");
    let want = "/api/v1/namespaces/my%20ns/pods/caf%C3%A9A%281%29";
    assert_eq!(request_path, want);
    assert_eq!(recorded, format!("{want}?timeout=1m0s"));
    assert_eq!(cleaned, format!("{want}?timeout=1m0s"));
}

#[test]
fn legal_text_is_kept_as_written_even_with_escapes() {
    // Valid as written, so Go keeps it (lower-case hex, %41, sub-delims, '[', '+').
    // (A query follows, or step 2 would turn the '&' into '?'.)
    let path = "/api/v1/namespaces/a%2fb/pods/%41!$&'()*+,;=:@[]";
    let (request_path, recorded, cleaned) = get(&format!("{path}?limit=1"));
    assert_eq!(request_path, format!("{path}?limit=1"));
    assert_eq!(recorded, format!("{path}?limit=1&timeout=1m0s"));
    // kperf decodes, so %2f becomes a separator; '!' '\'' '(' ')' '*' '[' ']' are escaped.
    assert_eq!(
        cleaned,
        "/api/v1/namespaces/a/b/pods/A%21$&%27%28%29%2A+,;=:@%5B%5D?limit=1&timeout=1m0s"
    );
}

#[test]
fn escaped_question_mark_and_percent_stay_escaped() {
    let (request_path, recorded, cleaned) = get("/p/a%3Fb%25c");
    assert_eq!(request_path, "/p/a%3Fb%25c");
    assert_eq!(recorded, "/p/a%3Fb%25c?timeout=1m0s");
    assert_eq!(cleaned, "/p/a%3Fb%25c?timeout=1m0s");
}

#[test]
fn recorded_mode_keeps_dot_segments_and_double_slashes() {
    let path = "/api/v1/./namespaces//default/../kube-system/pods/";
    let (request_path, recorded, cleaned) = get(path);
    assert_eq!(request_path, path);
    assert_eq!(recorded, format!("{path}?timeout=1m0s"));
    assert_eq!(cleaned, "/api/v1/namespaces/kube-system/pods?timeout=1m0s");
}

#[test]
fn kperf_cleaning_never_climbs_above_the_root() {
    let (_, recorded, cleaned) = get("/../../api/v1/pods/..");
    assert_eq!(recorded, "/../../api/v1/pods/..?timeout=1m0s");
    assert_eq!(cleaned, "/api/v1?timeout=1m0s");
}

#[test]
fn root_and_query_only_paths() {
    let (request_path, recorded, cleaned) = get("/");
    assert_eq!(request_path, "/");
    assert_eq!(recorded, "/?timeout=1m0s");
    assert_eq!(cleaned, "/?timeout=1m0s");
    // "?a=1" gets its leading slash first.
    let (request_path, recorded, _) = get("?a=1");
    assert_eq!(request_path, "/?a=1");
    assert_eq!(recorded, "/?a=1&timeout=1m0s");
}

#[test]
fn fragment_is_in_kperfs_urls_but_never_on_the_wire() {
    let (request_path, recorded, cleaned) = get("/api/v1/pods?limit=5#page-2");
    assert_eq!(request_path, "/api/v1/pods?limit=5#page-2");
    assert_eq!(recorded, "/api/v1/pods?limit=5&timeout=1m0s");
    assert_eq!(cleaned, "/api/v1/pods?limit=5&timeout=1m0s");
    // A '?' after the '#' belongs to the fragment.
    let (request_path, recorded, _) = get("/api/v1/pods#a?limit=5");
    assert_eq!(request_path, "/api/v1/pods#a?limit=5");
    assert_eq!(recorded, "/api/v1/pods?timeout=1m0s");
    // An empty fragment is not printed.
    let (request_path, _, _) = get("/api/v1/pods#");
    assert_eq!(request_path, "/api/v1/pods");
}

#[test]
fn fragment_is_printed_as_go_escapes_it() {
    // Legal as written: kept (escapes included).
    let (request_path, _, _) = get("/p#a/b?c=%41!()*'[]");
    assert_eq!(request_path, "/p#a/b?c=%41!()*'[]");
    // Illegal bytes (space, a second '#', a control byte: Go only checks the part
    // before '#' for those): the decoded fragment is re-escaped.
    let (request_path, recorded, _) = get("/p#x y#%41\t'");
    assert_eq!(request_path, "/p#x%20y%23A%09%27");
    assert_eq!(recorded, "/p?timeout=1m0s");
}

#[test]
fn ampersand_fix_up_sees_the_fragment_too() {
    // No '?' anywhere, so the first '&' (inside the fragment) becomes '?'.
    let (request_path, recorded, _) = get("/p#a&b=1");
    assert_eq!(request_path, "/p#a?b=1");
    assert_eq!(recorded, "/p?timeout=1m0s");
}

#[test]
fn watch_query_and_fragment_together() {
    let n = norm(Verb::Watch, "/api/v1/pods?x=1#f", PathMode::Recorded);
    assert_eq!(n.request_path, "/api/v1/pods?watch=true&x=1#f");
    assert_eq!(n.target, "/api/v1/pods?timeout=1m0s&watch=true&x=1");
}
