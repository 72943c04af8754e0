//! The request URL that error records show, as kperf builds it (not the wire target).

use preprocess::profile::Verb;

/// Appends kperf's request URL form of a wire target: the wire-only query pairs kperf adds
/// while building the request (`timeout=1m0s`, and APPLY's first `fieldManager=kperf-replay`)
/// are not part of the URL its error records show.
pub(super) fn push_request_target(out: &mut String, target: &str, verb: Verb) {
    let Some((path, query)) = target.split_once('?') else {
        out.push_str(target);
        return;
    };
    out.push_str(path);
    let mut manager_dropped = verb != Verb::Apply;
    let mut first = true;
    for pair in query.split('&') {
        if pair == "timeout=1m0s" {
            continue;
        }
        if !manager_dropped && pair == "fieldManager=kperf-replay" {
            manager_dropped = true;
            continue;
        }
        out.push(if first { '?' } else { '&' });
        out.push_str(pair);
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(target: &str, verb: Verb) -> String {
        let mut out = String::from("https://h:1");
        push_request_target(&mut out, target, verb);
        out
    }

    #[test]
    fn wire_only_pairs_are_left_out() {
        assert_eq!(
            url("/api/v1/pods?timeout=1m0s", Verb::List),
            "https://h:1/api/v1/pods"
        );
        assert_eq!(
            url(
                "/api/v1/pods?labelSelector=a%3Db&timeout=1m0s&watch=true",
                Verb::Watch
            ),
            "https://h:1/api/v1/pods?labelSelector=a%3Db&watch=true"
        );
        assert_eq!(
            url("/apis/apps/v1/x/d?fieldManager=kperf-replay&fieldManager=kperf-replay&timeout=1m0s", Verb::Apply),
            "https://h:1/apis/apps/v1/x/d?fieldManager=kperf-replay"
        );
        // Only APPLY's added manager is dropped.
        assert_eq!(
            url(
                "/api/v1/x?fieldManager=kperf-replay&timeout=1m0s",
                Verb::Patch
            ),
            "https://h:1/api/v1/x?fieldManager=kperf-replay"
        );
        assert_eq!(
            url("/api/v1/pods/p", Verb::Get),
            "https://h:1/api/v1/pods/p"
        );
    }
}
