//! kperf's metric URL (masking of DELETE/PATCH/APPLY), metric labels, and the body's
//! content-type class (the built-in group rule).

use crate::util::target_request;
use preprocess::profile::{BodyKind, Verb};
use preprocess::request_target::{metric_label, normalize, NormalizedRequest, PathMode};

fn norm(verb: Verb, api_path: &str) -> NormalizedRequest {
    match normalize(&target_request(verb, api_path, ""), PathMode::Recorded) {
        Ok(n) => n,
        Err(e) => panic!("normalize({verb} {api_path:?}) failed: {e}"),
    }
}

fn metric(verb: Verb, api_path: &str) -> String {
    norm(verb, api_path).metric_path
}

#[test]
fn delete_patch_and_apply_mask_the_last_segment() {
    let object = "/api/v1/namespaces/default/pods/nginx-1";
    for verb in [Verb::Delete, Verb::Patch, Verb::Apply] {
        assert_eq!(
            metric(verb, object),
            "/api/v1/namespaces/default/pods/:name",
            "{verb}"
        );
        // The request URL itself is not masked.
        assert_eq!(norm(verb, object).request_path, object, "{verb}");
    }
}

#[test]
fn other_verbs_are_not_masked() {
    let object = "/api/v1/namespaces/default/pods/nginx-1";
    for verb in [Verb::Get, Verb::List, Verb::Create, Verb::DeleteCollection] {
        assert_eq!(metric(verb, object), object, "{verb}");
    }
    assert_eq!(metric(Verb::Watch, object), format!("{object}?watch=true"));
}

#[test]
fn one_trailing_slash_is_dropped_before_masking() {
    assert_eq!(
        metric(Verb::Delete, "/api/v1/pods/x/"),
        "/api/v1/pods/:name"
    );
    // Only one: "x//" masks the empty segment between the slashes.
    assert_eq!(
        metric(Verb::Delete, "/api/v1/pods/x//"),
        "/api/v1/pods/x/:name"
    );
}

#[test]
fn subresource_paths_mask_the_subresource() {
    assert_eq!(
        metric(
            Verb::Patch,
            "/apis/apps/v1/namespaces/a/deployments/web/scale"
        ),
        "/apis/apps/v1/namespaces/a/deployments/web/:name"
    );
    assert_eq!(
        metric(Verb::Patch, "/api/v1/namespaces/default/pods/x/status"),
        "/api/v1/namespaces/default/pods/x/:name"
    );
}

#[test]
fn masking_keeps_the_query_and_fragment() {
    assert_eq!(
        metric(
            Verb::Delete,
            "/api/v1/namespaces/default/pods/x?gracePeriodSeconds=0&dryRun=All"
        ),
        "/api/v1/namespaces/default/pods/:name?dryRun=All&gracePeriodSeconds=0"
    );
    assert_eq!(
        metric(Verb::Delete, "/api/v1/pods/x?#f"),
        "/api/v1/pods/:name?#f"
    );
}

#[test]
fn masking_works_on_the_decoded_path() {
    // %2F decodes to '/', so the masked segment is the part after it.
    assert_eq!(
        metric(Verb::Delete, "/api/v1/pods/a%2Fb"),
        "/api/v1/pods/a/:name"
    );
    // Other escapes are re-applied from the decoded path.
    assert_eq!(
        metric(Verb::Delete, "/api/v1/namespaces/my%20ns/pods/x"),
        "/api/v1/namespaces/my%20ns/pods/:name"
    );
    assert_eq!(
        metric(Verb::Delete, "/api/v1/namespaces/a%2Fb/pods/x"),
        "/api/v1/namespaces/a/b/pods/:name"
    );
    // A path already ending in ":name" is unchanged by masking, so Go prints the
    // recorded text (its RawPath), %2F included.
    assert_eq!(metric(Verb::Delete, "/a%2Fb/:name"), "/a%2Fb/:name");
}

#[test]
fn root_path_masks_to_slash_name() {
    assert_eq!(metric(Verb::Delete, "/"), "/:name");
    assert_eq!(metric(Verb::Delete, "/x"), "/:name");
}

#[test]
fn metric_label_joins_the_method_label_and_the_path() {
    let cases = [
        (
            Verb::Create,
            "/api/v1/namespaces/default/pods",
            "",
            "POST /api/v1/namespaces/default/pods",
        ),
        (
            Verb::Get,
            "/api/v1/namespaces/default/pods/nginx-1",
            "",
            "GET /api/v1/namespaces/default/pods/nginx-1",
        ),
        (
            Verb::List,
            "/api/v1/namespaces/default/pods",
            "app=nginx",
            "LIST /api/v1/namespaces/default/pods?labelSelector=app%3Dnginx",
        ),
        (
            Verb::Delete,
            "/api/v1/namespaces/default/pods/nginx-1",
            "",
            "DELETE /api/v1/namespaces/default/pods/:name",
        ),
        (
            Verb::Watch,
            "/api/v1/namespaces/default/pods",
            "app=nginx",
            "WATCH /api/v1/namespaces/default/pods?labelSelector=app%3Dnginx&watch=true",
        ),
        (
            Verb::DeleteCollection,
            "/api/v1/namespaces/default/pods",
            "app=nginx",
            "DELETE /api/v1/namespaces/default/pods",
        ),
        (
            Verb::Apply,
            "/apis/apps/v1/namespaces/a/deployments/web",
            "",
            "PATCH /apis/apps/v1/namespaces/a/deployments/:name",
        ),
    ];
    for (verb, api_path, selector, want) in cases {
        let n = match normalize(
            &target_request(verb, api_path, selector),
            PathMode::Recorded,
        ) {
            Ok(n) => n,
            Err(e) => panic!("{verb} {api_path}: {e}"),
        };
        assert_eq!(metric_label(verb, &n.metric_path), want);
    }
}

fn patch_kind(api_path: &str) -> BodyKind {
    norm(Verb::Patch, api_path).body_kind
}

#[test]
fn patch_uses_strategic_merge_for_built_in_groups() {
    for path in [
        "/api/v1/namespaces/default/pods/x",
        "api/v1/nodes/n",
        "/apis/apps/v1/namespaces/a/deployments/web",
        "/apis/batch/v1/namespaces/a/jobs/j",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/r",
        // Any group ending in .k8s.io counts, CRDs included (kperf weakness 15).
        "/apis/gateway.networking.k8s.io/v1/namespaces/a/httproutes/r",
        // The rule reads the decoded path.
        "/apis/apps%2Fv1/x",
    ] {
        assert_eq!(patch_kind(path), BodyKind::StrategicMergePatch, "{path}");
    }
}

#[test]
fn patch_uses_merge_patch_elsewhere() {
    for path in [
        "/apis/example.com/v1/namespaces/a/widgets/w",
        "/apis/monitoring.coreos.com/v1/namespaces/m/podmonitors/p",
        // "k8s.io" itself has a dot and does not end with ".k8s.io".
        "/apis/k8s.io/v1/x",
        "/apis/a.k8s.io.example/v1/x",
        // /apis/<group> with no further '/'.
        "/apis/apps",
        "/apis/",
        "/api",
        "/apiv1/x",
        "/healthz",
    ] {
        assert_eq!(patch_kind(path), BodyKind::MergePatch, "{path}");
    }
}

#[test]
fn other_verbs_get_their_fixed_body_kind() {
    let path = "/api/v1/namespaces/default/pods/x";
    assert_eq!(norm(Verb::Apply, path).body_kind, BodyKind::ApplyPatch);
    assert_eq!(
        norm(Verb::Apply, "/apis/example.com/v1/w/x").body_kind,
        BodyKind::ApplyPatch
    );
    for verb in [
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Create,
        Verb::Delete,
        Verb::DeleteCollection,
    ] {
        assert_eq!(norm(verb, path).body_kind, BodyKind::None, "{verb}");
    }
}
