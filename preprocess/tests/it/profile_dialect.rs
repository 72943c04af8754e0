//! kperf's YAML dialect (yaml.v2, non-strict): what is accepted and how it reads.

use crate::util::*;
use preprocess::loader::LoadError;

fn one_request(fields: &str) -> preprocess::profile::ProfileRequest {
    let yaml = with_requests(&format!(
        "- verb: LIST\n  resourceKind: Pod\n  apiPath: /x\n{fields}"
    ));
    let (_, mut got) = load(&yaml).unwrap_or_else(|e| panic!("{e}\n---\n{yaml}"));
    got.remove(0)
}

fn timestamp_of(text: &str) -> i64 {
    one_request(&format!("  timestamp: {text}\n")).timestamp_ms
}

#[test]
fn yaml11_integers_floats_and_octal() {
    assert_eq!(timestamp_of("1_000"), 1000);
    assert_eq!(timestamp_of("+42"), 42);
    assert_eq!(timestamp_of("0x1F"), 31);
    assert_eq!(timestamp_of("0b101"), 5);
    assert_eq!(timestamp_of("010"), 8, "leading 0 is octal");
    assert_eq!(timestamp_of("0o17"), 15);
    assert_eq!(timestamp_of("1.9"), 1, "floats truncate toward zero");
    assert_eq!(timestamp_of("2.5e3"), 2500);
    assert_eq!(timestamp_of("08"), 8, "not octal, read as float 8");
    assert_eq!(timestamp_of(".5"), 0);
    assert_eq!(timestamp_of("~"), 0, "null is the zero value");
    assert_eq!(timestamp_of(""), 0);
    let (head, _) =
        load(&with_requests(&get_item(0)).replace("runnerCount: 1", "runnerCount: 0x2"))
            .expect("valid");
    assert_eq!(head.spec.runner_count, 2);
    let (head, _) = load(&with_requests(&get_item(0)).replace("version: 1", "version: 1.7"))
        .expect("1.7 truncates to 1");
    assert_eq!(head.version, 1);
}

fn type_errors(yaml: &str) -> Vec<String> {
    match load(yaml) {
        Err(LoadError::Types { errors, more, .. }) => {
            assert_eq!(more, 0);
            errors
        }
        other => panic!("expected type errors, got {other:?}"),
    }
}

#[test]
fn quoted_numbers_and_other_mismatches_are_type_errors_reported_together() {
    let yaml =
        "version: \"1\"\nspec:\n  runnerCount: 1\n  connsPerRunner: [1]\n  contentType: json\n  \
         disableHTTP2: maybe\nrequests:\n- timestamp: '100'\n  verb: GET\n  name: {a: b}\n";
    let errors = type_errors(yaml);
    assert_eq!(
        errors,
        [
            "line 1: version: cannot unmarshal !!str `1` into int",
            "line 4: spec.connsPerRunner: cannot unmarshal !!seq into int",
            "line 6: spec.disableHTTP2: cannot unmarshal !!str `maybe` into bool",
            "line 8: requests[0].timestamp: cannot unmarshal !!str `100` into int64",
            "line 10: requests[0].name: cannot unmarshal !!map into string",
        ]
    );
    let text = error_of(yaml);
    assert!(
        text.starts_with("test.yaml: failed to parse YAML: yaml: unmarshal errors:\n  line 1: "),
        "{text}"
    );
    // Long values are cut as yaml.v2 does; too-large ints are errors, not wrap-arounds.
    let errors = type_errors(&with_requests(
        "- timestamp: 99999999999999999999\n  verb: GET\n",
    ));
    assert_eq!(
        errors,
        ["line 7: requests[0].timestamp: cannot unmarshal !!float `9999999...` into int64"]
    );
    let errors = type_errors(&with_requests("- timestamp: true\n"));
    assert_eq!(
        errors,
        ["line 7: requests[0].timestamp: cannot unmarshal !!bool `true` into int64"]
    );
    let errors = type_errors(&format!("{HEAD}requests: 5\n"));
    assert_eq!(
        errors,
        ["line 6: requests: cannot unmarshal !!int `5` into []types.ReplayRequest"]
    );
    let errors = type_errors("- a\n- b\n");
    assert_eq!(
        errors,
        ["line 1: cannot unmarshal !!seq into types.ReplayProfile"]
    );
}

#[test]
fn type_errors_win_over_validation_errors() {
    let yaml = "version: 2\nrequests:\n- timestamp: \"1\"\n";
    assert!(matches!(load(yaml), Err(LoadError::Types { .. })));
}

#[test]
fn yaml11_booleans_in_three_cases() {
    for (text, want) in [
        ("true", true),
        ("True", true),
        ("TRUE", true),
        ("yes", true),
        ("Yes", true),
        ("YES", true),
        ("on", true),
        ("On", true),
        ("ON", true),
        ("y", true),
        ("Y", true),
        ("false", false),
        ("False", false),
        ("FALSE", false),
        ("no", false),
        ("No", false),
        ("NO", false),
        ("off", false),
        ("Off", false),
        ("OFF", false),
        ("n", false),
        ("N", false),
        ("~", false),
    ] {
        let yaml = format!("{HEAD}  disableHTTP2: {text}\nrequests:\n{}", get_item(0));
        let (head, _) = load(&yaml).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(head.spec.disable_http2, want, "{text}");
    }
    for text in ["\"true\"", "tRUE", "1"] {
        let yaml = format!("{HEAD}  disableHTTP2: {text}\nrequests:\n{}", get_item(0));
        assert!(
            matches!(load(&yaml), Err(LoadError::Types { .. })),
            "{text} must be a type error"
        );
    }
}

#[test]
fn string_fields_keep_the_literal_text_of_any_scalar() {
    let r = one_request(
        "  name: 0123\n  namespace: yes\n  labelSelector: 1.50\n  body: ~\n  resourceKind: 0x1F\n",
    );
    assert_eq!(r.name, "0123");
    assert_eq!(r.namespace, "yes");
    assert_eq!(r.label_selector, "1.50");
    assert_eq!(r.body, "", "null is empty");
    assert_eq!(r.resource_kind, "0x1F");
    let r = one_request("  name: null\n  namespace: \"~\"\n  body: 'it''s'\n");
    assert_eq!(r.name, "");
    assert_eq!(r.namespace, "~", "a quoted ~ is text");
    assert_eq!(r.body, "it's");
}

#[test]
fn repeated_keys_last_wins() {
    let r = one_request("  name: first\n  name: second\n  timestamp: 5\n  timestamp: 6\n");
    assert_eq!(r.name, "second");
    assert_eq!(r.timestamp_ms, 6);
    // A repeated spec merges field by field (yaml.v2 sets fields on the same struct).
    let yaml = format!("{HEAD}spec:\n  runnerCount: 3\nrequests:\n{}", get_item(0));
    let (head, _) = load(&yaml).expect("valid");
    assert_eq!(head.spec.runner_count, 3);
    assert_eq!(head.spec.conns_per_runner, 1);
}

#[test]
fn repeated_requests_list_after_requests_were_read_is_refused() {
    let yaml = format!("{}requests:\n{}", with_requests(&get_item(0)), get_item(1));
    assert!(matches!(
        load(&yaml),
        Err(LoadError::RequestsRepeated { count: 1, .. })
    ));
    // An empty first list may be replaced.
    let yaml = format!("{HEAD}requests: []\nrequests:\n{}", get_item(1));
    assert_eq!(load(&yaml).expect("valid").1.len(), 1);
}

#[test]
fn unknown_keys_are_ignored_with_one_warning_each() {
    let yaml = format!(
        "{HEAD}  contenttype: protobuf\nkind: Profile\nrequests:\n{}{}",
        get_item(0).replace("apiPath", "labelselector: a=b\n  apiPath"),
        get_item(1).replace("apiPath", "labelselector: a=b\n  apiPath")
    );
    let (head, got) = load(&yaml).expect("unknown keys are ignored");
    assert_eq!(got[0].label_selector, "");
    assert_eq!(
        head.warnings,
        [
            "spec: unknown key \"contenttype\" (did you mean \"contentType\"?)",
            "unknown key \"kind\"",
            "requests[0]: unknown key \"labelselector\" (did you mean \"labelSelector\"?) (2 times)",
        ]
    );
    // Keys are case-sensitive: `Version` is not `version`.
    let yaml = with_requests(&get_item(0)).replace("version: 1", "Version: 1");
    assert_eq!(
        error_of(&yaml),
        "test.yaml: invalid profile: version should be 1"
    );
}

#[test]
fn warnings_are_capped() {
    let mut yaml = with_requests(&get_item(0));
    for i in 0..40 {
        yaml.push_str(&format!("extra{i}: 1\n"));
    }
    let (head, _) = load(&yaml).expect("valid");
    assert!(head.warnings.len() <= 21, "{}", head.warnings.len());
    assert_eq!(
        head.warnings.last().map(String::as_str),
        Some("20 more unknown keys of other kinds not listed")
    );
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let yaml = format!(
        "{HEAD}defaults: &pod\n  resourceKind: Pod\n  verb: GET\n  namespace: ns\n\
         requests:\n\
         - <<: *pod\n  timestamp: 1\n  name: a\n  apiPath: &path /api/v1/pods/a\n\
         - <<: *pod\n  timestamp: 2\n  name: b\n  verb: DELETE\n  apiPath: *path\n\
         - &third\n  <<: [*pod, {{verb: LIST, name: ignored}}]\n  timestamp: 3\n  apiPath: /p\n\
         - *third\n"
    );
    let (_, got) = load(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].verb.as_str(), "GET");
    assert_eq!(got[0].namespace, "ns");
    assert_eq!(
        got[1].verb.as_str(),
        "DELETE",
        "later keys override the merge"
    );
    assert_eq!(got[1].api_path, "/api/v1/pods/a");
    assert_eq!(
        got[2].verb.as_str(),
        "GET",
        "earlier maps in a merge list win"
    );
    assert_eq!(got[2].name, "ignored");
    assert_eq!(got[3], got[2]);
    // yaml.v2 v2 applies a merge in place: it overrides keys written before it.
    let r = one_request("  name: before\n  <<: {name: merged}\n");
    assert_eq!(r.name, "merged");
    // A quoted "<<" is an ordinary (unknown) key.
    let r = one_request("  \"<<\": {name: merged}\n");
    assert_eq!(r.name, "");
    // Merging a scalar is fatal, as in yaml.v2.
    let text = error_of(&with_requests("- <<: 5\n"));
    assert!(
        text.ends_with("map merge requires map or sequence of maps as the value"),
        "{text}"
    );
}

#[test]
fn spec_and_requests_from_aliases_and_top_level_merge() {
    let yaml = format!(
        "base: &base\n  version: 1\n  spec: {{runnerCount: 4, connsPerRunner: 2, contentType: json}}\n\
         list: &list\n{}<<: *base\nrequests: *list\n",
        get_item(7).replace("- ", "  - ").replace("\n  ", "\n    ")
    );
    let (head, got) = load(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(head.spec.runner_count, 4);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamp_ms, 7);
}

#[test]
fn only_the_first_document_is_read() {
    let yaml = format!(
        "---\n{}---\nversion: 2\n--- [unclosed\n",
        with_requests(&get_item(0))
    );
    let (head, got) = load(&yaml).expect("second document ignored");
    assert_eq!(head.version, 1);
    assert_eq!(got.len(), 1);
}

#[test]
fn empty_input_is_eof_and_null_document_is_invalid() {
    assert_eq!(error_of(""), "test.yaml: failed to parse YAML: EOF");
    assert_eq!(
        error_of("# only a comment\n"),
        "test.yaml: failed to parse YAML: EOF"
    );
    assert_eq!(
        error_of("---\n"),
        "test.yaml: invalid profile: version should be 1"
    );
    let errors = type_errors("just text\n");
    assert_eq!(
        errors,
        ["line 1: cannot unmarshal !!str `just text` into types.ReplayProfile"]
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let text = error_of(&format!("{HEAD}requests:\n- timestamp: [1, 2\n"));
    assert!(
        text.starts_with("test.yaml: failed to parse YAML: yaml: line "),
        "{text}"
    );
}

#[test]
fn explicit_tags() {
    assert_eq!(timestamp_of("!!int \"12\""), 12);
    assert_eq!(timestamp_of("!!float 3"), 3);
    let r = one_request("  name: !!str 12\n");
    assert_eq!(r.name, "12");
    let errors = type_errors(&with_requests("- timestamp: !!str 12\n"));
    assert_eq!(
        errors,
        ["line 7: requests[0].timestamp: cannot unmarshal !!str `12` into int64"]
    );
    let text = error_of(&with_requests("- timestamp: !!int abc\n"));
    assert!(
        text.ends_with("cannot decode !!str `abc` as a !!int"),
        "{text}"
    );
}

#[test]
fn a_null_request_item_is_a_zero_request() {
    let yaml = with_requests("- ~\n");
    assert_eq!(
        error_of(&yaml),
        "test.yaml:7:3: invalid profile: requests[0]: verb is required (one of GET, LIST, WATCH, CREATE, DELETE, DELETECOLLECTION, PATCH, APPLY)"
    );
}

#[test]
fn an_anchored_root_is_decoded_in_memory() {
    let yaml = format!("--- &root\n{}", with_requests(&get_item(3)));
    let (head, got) = load(&yaml).expect("valid");
    assert_eq!(head.spec.runner_count, 1);
    assert_eq!(got[0].timestamp_ms, 3);
}

#[test]
fn many_type_errors_are_summarised() {
    let items: String = (0..60).map(|_| "- timestamp: x\n").collect();
    match load(&with_requests(&items)) {
        Err(LoadError::Types { errors, more, .. }) => {
            assert_eq!(errors.len(), 50);
            assert_eq!(more, 10);
        }
        other => panic!("expected type errors, got {other:?}"),
    }
    let text = error_of(&with_requests(&items));
    assert!(text.ends_with("\n  ... and 10 more"), "{text}");
}

#[test]
fn binary_tagged_strings_are_base64_decoded_as_in_yaml_v2() {
    let r = one_request("  body: !!binary eyJhIjoxfQ==\n");
    assert_eq!(r.body, "{\"a\":1}");
    let text = error_of(&with_requests("- body: !!binary not*base64\n"));
    assert!(
        text.ends_with("!!binary value contains invalid base64 data"),
        "{text}"
    );
}

#[test]
fn a_json_profile_on_one_line_is_yaml_too() {
    let item = |ts: u32| {
        format!(
            "{{\"timestamp\":{ts},\"verb\":\"GET\",\"resourceKind\":\"Pod\",\"name\":\"p{ts}\",\
             \"apiPath\":\"/api/v1/pods/p{ts}\"}}"
        )
    };
    let items: Vec<String> = (0..2000).map(item).collect();
    let json = format!(
        "{{\"version\":1,\"spec\":{{\"runnerCount\":2,\"connsPerRunner\":1,\
         \"contentType\":\"protobuf\"}},\"requests\":[{}]}}",
        items.join(",")
    );
    let (head, got) = load(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(head.request_count, 2000);
    assert_eq!(got[1999].name, "p1999");
}
