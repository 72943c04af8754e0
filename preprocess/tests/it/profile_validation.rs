//! The sample profile, and kperf's validation rules with their exact messages and priority.

use crate::util::*;
use preprocess::loader::LoadError;
use preprocess::profile::{ContentType, Verb};

#[test]
fn sample_fixture_loads_with_its_spec_and_nine_requests() {
    let bytes = std::fs::read(SAMPLE).expect("fixture present");
    let (head, requests) =
        load_bytes(&bytes, &Default::default()).expect("the sample profile is valid");
    assert_eq!(head.version, 1);
    assert_eq!(
        head.description,
        "Sample replay profile - Pod lifecycle simulation"
    );
    assert_eq!(head.spec.runner_count, 2);
    assert_eq!(head.spec.conns_per_runner, 2);
    assert_eq!(head.spec.clients_per_runner, 10);
    assert_eq!(head.spec.content_type, ContentType::Json);
    assert!(!head.spec.disable_http2);
    assert_eq!(head.request_count, 9);
    assert!(head.warnings.is_empty(), "{:?}", head.warnings);
    let stamps: Vec<i64> = requests.iter().map(|r| r.timestamp_ms).collect();
    assert_eq!(stamps, [0, 50, 100, 150, 200, 250, 300, 350, 400]);
    assert_eq!(requests[0].verb, Verb::Create);
    assert!(requests[0].body.starts_with("{\n  \"apiVersion\": \"v1\""));
    assert!(
        requests[0].body.ends_with("}\n"),
        "a | block keeps its final newline"
    );
    assert_eq!(requests[5].label_selector, "app=nginx");
    assert_eq!(requests[6].verb, Verb::Delete);
    assert_eq!(
        requests[6].api_path,
        "/api/v1/namespaces/default/pods/nginx-1"
    );
    assert_eq!(requests[2].name, "");
}

fn invalid(yaml: &str) -> String {
    match load(yaml) {
        Err(LoadError::Invalid { name, message, .. }) => {
            assert_eq!(name, "test.yaml");
            message
        }
        other => panic!("expected an invalid-profile error, got {other:?}"),
    }
}

#[test]
fn version_must_be_one() {
    let yaml = with_requests(&get_item(0)).replace("version: 1", "version: 2");
    assert_eq!(invalid(&yaml), "version should be 1");
    let yaml = with_requests(&get_item(0)).replace("version: 1\n", "");
    assert_eq!(invalid(&yaml), "version should be 1");
}

#[test]
fn spec_rules_and_messages() {
    let spec = |body: &str| format!("version: 1\nspec:\n{body}requests:\n{}", get_item(0));
    let base = "  runnerCount: 1\n  connsPerRunner: 1\n  contentType: json\n";
    assert_eq!(
        invalid(&spec(&base.replace("runnerCount: 1", "runnerCount: 0"))),
        "spec: runnerCount must be > 0: 0"
    );
    assert_eq!(
        invalid(&spec(&base.replace("runnerCount: 1", "runnerCount: -3"))),
        "spec: runnerCount must be > 0: -3"
    );
    assert_eq!(
        invalid(&spec(
            &base.replace("connsPerRunner: 1", "connsPerRunner: 0")
        )),
        "spec: connsPerRunner must be > 0: 0"
    );
    assert_eq!(
        invalid(&spec(&format!("{base}  clientsPerRunner: -1\n"))),
        "spec: clientsPerRunner must be >= 0: -1"
    );
    assert_eq!(
        invalid(&spec(&base.replace("json", "JSON"))),
        "spec: unsupported content type JSON"
    );
    assert_eq!(
        invalid(&spec("  runnerCount: 1\n  connsPerRunner: 1\n")),
        "spec: unsupported content type ",
        "contentType has no default"
    );
    // kperf's first failing spec rule wins.
    assert_eq!(
        invalid(&spec(
            "  runnerCount: 0\n  connsPerRunner: 0\n  contentType: xml\n"
        )),
        "spec: runnerCount must be > 0: 0"
    );
    let (head, _) = load(&spec(&format!(
        "{}  disableHTTP2: true\n",
        base.replace("json", "protobuf")
    )))
    .expect("valid");
    assert_eq!(head.spec.content_type, ContentType::Protobuf);
    assert!(head.spec.disable_http2);
    assert_eq!(head.spec.clients_per_runner, 0);
}

#[test]
fn requests_must_not_be_empty() {
    assert_eq!(invalid(HEAD), "requests must not be empty");
    assert_eq!(
        invalid(&format!("{HEAD}requests: []\n")),
        "requests must not be empty"
    );
    assert_eq!(
        invalid(&format!("{HEAD}requests:\n")),
        "requests must not be empty"
    );
}

#[test]
fn each_request_rule_with_its_message() {
    let item = |fields: &str| with_requests(&format!("- {fields}\n"));
    let cases = [
        (
            "{timestamp: -5, verb: GET, resourceKind: Pod, name: p, apiPath: /x}",
            "requests[0]: timestamp must be >= 0: -5",
        ),
        (
            "{timestamp: 1, verb: get, resourceKind: Pod, name: p, apiPath: /x}",
            "requests[0]: unsupported verb: get (one of GET, LIST, WATCH, CREATE, DELETE, DELETECOLLECTION, PATCH, APPLY)",
        ),
        (
            "{timestamp: 1, resourceKind: Pod, apiPath: /x}",
            "requests[0]: verb is required (one of GET, LIST, WATCH, CREATE, DELETE, DELETECOLLECTION, PATCH, APPLY)",
        ),
        (
            "{timestamp: 1, verb: LIST, apiPath: /x}",
            "requests[0]: resourceKind is required",
        ),
        (
            "{timestamp: 1, verb: LIST, resourceKind: Pod}",
            "requests[0]: apiPath is required",
        ),
        (
            "{timestamp: 1, verb: GET, resourceKind: Pod, apiPath: /x}",
            "requests[0]: name is required for GET operation",
        ),
        (
            "{timestamp: 1, verb: DELETE, resourceKind: Pod, apiPath: /x}",
            "requests[0]: name is required for DELETE operation",
        ),
        (
            "{timestamp: 1, verb: PATCH, resourceKind: Pod, apiPath: /x, body: '{}'}",
            "requests[0]: name is required for PATCH operation",
        ),
        (
            "{timestamp: 1, verb: APPLY, resourceKind: Pod, name: n, apiPath: /x}",
            "requests[0]: body is required for APPLY operation",
        ),
        (
            "{timestamp: 1, verb: CREATE, resourceKind: Pod, apiPath: /x}",
            "requests[0]: body is required for CREATE operation",
        ),
        (
            "{timestamp: 1, verb: PATCH, resourceKind: Pod, name: n, apiPath: /x}",
            "requests[0]: body is required for PATCH operation",
        ),
    ];
    for (fields, message) in cases {
        assert_eq!(invalid(&item(fields)), message, "for {fields}");
    }
    // Verbs that need neither name nor body.
    for verb in ["LIST", "WATCH", "DELETECOLLECTION"] {
        let yaml = item(&format!(
            "{{timestamp: 1, verb: {verb}, resourceKind: Pod, apiPath: /x}}"
        ));
        let (_, got) = load(&yaml).expect("valid");
        assert_eq!(got[0].verb.as_str(), verb);
    }
}

#[test]
fn unsorted_requests_are_rejected_with_both_timestamps() {
    let yaml = with_requests(&format!("{}{}{}", get_item(5), get_item(9), get_item(7)));
    assert_eq!(
        invalid(&yaml),
        "requests must be sorted by timestamp: request[2] timestamp 7 < request[1] timestamp 9"
    );
    // Equal timestamps are fine.
    let (_, got) = load(&with_requests(&format!("{}{}", get_item(5), get_item(5)))).unwrap();
    assert_eq!(got.len(), 2);
}

#[test]
fn request_errors_for_all_requests_come_before_the_order_check() {
    let bad = "- {timestamp: 10, verb: GET, resourceKind: Pod, apiPath: /x}\n";
    let yaml = with_requests(&format!("{}{}{}", get_item(5), get_item(1), bad));
    assert_eq!(
        invalid(&yaml),
        "requests[2]: name is required for GET operation"
    );
}

#[test]
fn version_and_spec_errors_win_even_when_written_after_the_requests() {
    let bad_request = "- {timestamp: 1, verb: NOPE, resourceKind: Pod, apiPath: /x}\n";
    let yaml = format!(
        "requests:\n{bad_request}version: 1\nspec: {{runnerCount: 0, connsPerRunner: 1, contentType: json}}\n"
    );
    assert_eq!(invalid(&yaml), "spec: runnerCount must be > 0: 0");
    let yaml = format!("requests:\n{bad_request}version: 3\nspec: {{runnerCount: 0}}\n");
    assert_eq!(invalid(&yaml), "version should be 1");
    let yaml = format!(
        "requests:\n{bad_request}version: 1\nspec: {{runnerCount: 1, connsPerRunner: 1, contentType: json}}\n"
    );
    assert_eq!(invalid(&yaml), "requests[0]: unsupported verb: NOPE (one of GET, LIST, WATCH, CREATE, DELETE, DELETECOLLECTION, PATCH, APPLY)");
}

#[test]
fn delivery_stops_at_the_first_request_error() {
    let bad = "- {timestamp: 3, verb: GET, resourceKind: Pod, apiPath: /x}\n";
    let yaml = with_requests(&format!(
        "{}{}{bad}{}",
        get_item(1),
        get_item(2),
        get_item(4)
    ));
    let mut delivered = Vec::new();
    let err =
        preprocess::loader::load_profile("t", yaml.as_bytes(), &Default::default(), &mut |i, _| {
            delivered.push(i);
            Ok(())
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t:17:3: invalid profile: requests[2]: name is required for GET operation"
    );
    assert_eq!(delivered, [0, 1]);
}

#[test]
fn a_refusing_consumer_stops_the_load() {
    let yaml = with_requests(&format!("{}{}", get_item(1), get_item(2)));
    let err =
        preprocess::loader::load_profile("t", yaml.as_bytes(), &Default::default(), &mut |i, _| {
            if i == 1 {
                Err(LoadError::Rejected {
                    index: i,
                    message: "disk full".into(),
                })
            } else {
                Ok(())
            }
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "request 1: disk full");
}

#[test]
fn error_display_names_the_source_and_wraps_like_kperf() {
    let yaml = with_requests(&get_item(0)).replace("runnerCount: 1", "runnerCount: 0");
    let err = preprocess::loader::load_profile(
        "profile.yaml",
        yaml.as_bytes(),
        &Default::default(),
        &mut |_, _| Ok(()),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "profile.yaml: invalid profile: spec: runnerCount must be > 0: 0"
    );
}

#[test]
fn up_to_twenty_problems_at_once_with_line_and_column() {
    // 25 bad requests (no verb) and one out of order: the first 20 are listed, the rest counted.
    let mut items = String::new();
    for i in 0..25 {
        items.push_str(&format!(
            "- {{timestamp: {}, resourceKind: Pod, apiPath: /x}}\n",
            100 - i
        ));
    }
    let yaml = with_requests(&items);
    let err = load(&yaml).unwrap_err();
    let LoadError::Invalid {
        message,
        at,
        further,
        more,
        ..
    } = &err
    else {
        panic!("expected an invalid-profile error, got {err:?}")
    };
    assert!(
        message.starts_with("requests[0]: verb is required"),
        "{message}"
    );
    let (line, col) = at.expect("the first problem has a position");
    assert!(yaml.lines().nth(line - 1).unwrap()[col - 1..].starts_with("{timestamp: 100"));
    assert_eq!(further.len(), 19);
    // Kept in the order met (request 1's own problem, then its order), listed rules first.
    assert!(
        further[8].1.starts_with("requests[9]: verb is required"),
        "{further:?}"
    );
    assert!(further[9]
        .1
        .starts_with("requests must be sorted by timestamp: request[1]"));
    assert_eq!(
        further[0].0.map(|(l, _)| l),
        Some(line + 1),
        "each problem names its own line"
    );
    // 25 request problems + 24 order problems, 20 reported.
    assert_eq!(*more, 29);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("test.yaml:{line}:{col}: invalid profile: ")),
        "{text}"
    );
    assert!(text.ends_with("... and 29 more"), "{text}");
}
