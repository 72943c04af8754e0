//! Query handling of `normalize`: kperf's `&` fix-up, Go's `url.ParseQuery` rules,
//! re-encoding (sorted keys, QueryEscape), and the parameters kperf and kreplay add.

use crate::util::target_request;
use preprocess::profile::Verb;
use preprocess::request_target::{normalize, NormalizedRequest, PathMode};

fn norm(verb: Verb, api_path: &str, label_selector: &str) -> NormalizedRequest {
    match normalize(
        &target_request(verb, api_path, label_selector),
        PathMode::Recorded,
    ) {
        Ok(n) => n,
        Err(e) => panic!("normalize({verb} {api_path:?}) failed: {e}"),
    }
}

/// (request_path, wire target) of a GET.
fn get(api_path: &str) -> (String, String) {
    let n = norm(Verb::Get, api_path, "");
    (n.request_path, n.target)
}

#[test]
fn first_ampersand_becomes_question_mark_when_there_is_none() {
    let n = norm(Verb::List, "/api/v1/pods&limit=100&continue=abc", "");
    // The map is non-empty, so it is re-encoded with sorted keys.
    assert_eq!(n.request_path, "/api/v1/pods?continue=abc&limit=100");
    assert_eq!(n.target, "/api/v1/pods?continue=abc&limit=100&timeout=1m0s");
}

#[test]
fn ampersand_is_left_alone_when_a_question_mark_exists() {
    // "/pods&a" stays the path; the query is "b", a key without '='.
    let (request_path, target) = get("/pods&a?b");
    assert_eq!(request_path, "/pods&a?b=");
    assert_eq!(target, "/pods&a?b=&timeout=1m0s");
}

#[test]
fn missing_leading_slash_is_added() {
    let (request_path, target) = get("api/v1/namespaces/default/pods/x?limit=1");
    assert_eq!(request_path, "/api/v1/namespaces/default/pods/x?limit=1");
    assert_eq!(
        target,
        "/api/v1/namespaces/default/pods/x?limit=1&timeout=1m0s"
    );
}

#[test]
fn keys_sort_bytewise_and_values_keep_their_order() {
    let (request_path, _) = get("/p?x=2&b=1&a=1&x=1&B=1&_=1&x=3");
    assert_eq!(request_path, "/p?B=1&_=1&a=1&b=1&x=2&x=1&x=3");
}

#[test]
fn keys_and_values_are_query_escaped() {
    let n = norm(Verb::List, "/api/v1/pods", "env in (prod, qa),tier!=web");
    assert_eq!(
        n.request_path,
        "/api/v1/pods?labelSelector=env+in+%28prod%2C+qa%29%2Ctier%21%3Dweb"
    );
    // Unreserved bytes are kept; everything else is %XX upper-case, UTF-8 for non-ASCII.
    let (request_path, _) = get("/p?k%C3%A9y=caf%c3%a9&t=-_.~*'/:@$");
    assert_eq!(
        request_path,
        "/p?k%C3%A9y=caf%C3%A9&t=-_.~%2A%27%2F%3A%40%24"
    );
    let (request_path, _) = get("/p?name=café");
    assert_eq!(request_path, "/p?name=caf%C3%A9");
}

#[test]
fn plus_means_space_and_escaped_plus_stays_plus() {
    let (request_path, _) = get("/p?a=x+y&b=x%20y&c=x%2By");
    assert_eq!(request_path, "/p?a=x+y&b=x+y&c=x%2By");
}

#[test]
fn pairs_with_semicolons_or_bad_escapes_are_dropped() {
    let (request_path, target) = get("/p?a=1;b=2&c=3&d=%zz&e%4=1&f=%41");
    assert_eq!(request_path, "/p?c=3&f=A");
    assert_eq!(target, "/p?c=3&f=A&timeout=1m0s");
}

#[test]
fn empty_pairs_are_skipped_and_bare_keys_get_empty_values() {
    let (request_path, _) = get("/p?&&a=1&&flag&=v&");
    assert_eq!(request_path, "/p?=v&a=1&flag=");
}

#[test]
fn raw_query_is_kept_when_nothing_parses() {
    // Every pair is dropped, so Go keeps RawQuery as written; the wire only has the timeout.
    let (request_path, target) = get("/p?a=%zz;x");
    assert_eq!(request_path, "/p?a=%zz;x");
    assert_eq!(target, "/p?timeout=1m0s");
    let (request_path, target) = get("/p?;");
    assert_eq!(request_path, "/p?;");
    assert_eq!(target, "/p?timeout=1m0s");
}

#[test]
fn lone_trailing_question_mark_is_printed() {
    // Go's ForceQuery: an empty query after '?' is kept in the request URL.
    let (request_path, target) = get("/api/v1/pods?");
    assert_eq!(request_path, "/api/v1/pods?");
    assert_eq!(target, "/api/v1/pods?timeout=1m0s");
    // Two '?': the second belongs to the query, as a key.
    let (request_path, _) = get("/api/v1/pods??");
    assert_eq!(request_path, "/api/v1/pods?%3F=");
}

#[test]
fn label_selector_replaces_the_recorded_one_for_list_and_watch_only() {
    let api = "/api/v1/pods?labelSelector=a&labelSelector=b";
    let list = norm(Verb::List, api, "app=nginx");
    assert_eq!(list.request_path, "/api/v1/pods?labelSelector=app%3Dnginx");
    // An empty field leaves the recorded values alone.
    let list = norm(Verb::List, api, "");
    assert_eq!(
        list.request_path,
        "/api/v1/pods?labelSelector=a&labelSelector=b"
    );
    // GET ignores the field.
    let got = norm(Verb::Get, "/api/v1/pods/x", "app=nginx");
    assert_eq!(got.request_path, "/api/v1/pods/x");
    assert_eq!(got.target, "/api/v1/pods/x?timeout=1m0s");
}

#[test]
fn watch_sets_watch_true() {
    let n = norm(
        Verb::Watch,
        "/api/v1/namespaces/default/pods?watch=false&watch=0",
        "app=nginx",
    );
    assert_eq!(
        n.request_path,
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dnginx&watch=true"
    );
    assert_eq!(
        n.target,
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dnginx&timeout=1m0s&watch=true"
    );
    assert_eq!(n.metric_path, n.request_path);
}

#[test]
fn timeout_replaces_any_recorded_timeout_on_the_wire_only() {
    let (request_path, target) = get("/api/v1/pods?timeout=5s&limit=1&timeout=9s");
    assert_eq!(request_path, "/api/v1/pods?limit=1&timeout=5s&timeout=9s");
    assert_eq!(target, "/api/v1/pods?limit=1&timeout=1m0s");
}

#[test]
fn apply_field_manager_comes_before_recorded_ones() {
    let n = norm(
        Verb::Apply,
        "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=me&dryRun=All",
        "",
    );
    assert_eq!(
        n.target,
        "/apis/apps/v1/namespaces/a/deployments/web\
         ?dryRun=All&fieldManager=kperf-replay&fieldManager=me&timeout=1m0s"
    );
    // kperf's own URLs do not show the field manager it adds.
    assert_eq!(
        n.request_path,
        "/apis/apps/v1/namespaces/a/deployments/web?dryRun=All&fieldManager=me"
    );
    let plain = norm(
        Verb::Apply,
        "/apis/apps/v1/namespaces/a/deployments/web",
        "",
    );
    assert_eq!(
        plain.target,
        "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=kperf-replay&timeout=1m0s"
    );
}

#[test]
fn deletecollection_sends_its_selector_but_keeps_kperfs_metric_path() {
    let n = norm(
        Verb::DeleteCollection,
        "/api/v1/namespaces/default/pods",
        "app=nginx",
    );
    assert_eq!(
        n.target,
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dnginx&timeout=1m0s"
    );
    assert_eq!(n.request_path, "/api/v1/namespaces/default/pods");
    assert_eq!(n.metric_path, "/api/v1/namespaces/default/pods");
    // Without the field, the recorded query is what is sent.
    let n = norm(
        Verb::DeleteCollection,
        "/api/v1/pods?labelSelector=x%3D1",
        "",
    );
    assert_eq!(n.target, "/api/v1/pods?labelSelector=x%3D1&timeout=1m0s");
}
