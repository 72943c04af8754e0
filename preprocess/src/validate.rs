//! kperf's profile validation (docs/kperf-compatibility.md §3): the same rules, in the same
//! order, with the same messages, so a profile kperf accepts is accepted and one it rejects
//! fails with the same first error. The checks work on the values as decoded (before
//! conversion to the model), since a negative timestamp or an unknown verb must be reported,
//! not unrepresentable.
//!
//! Order: version, spec, non-empty requests, every request in list order, then sortedness.
//! The loader streams requests, so it calls these piecewise and reports in this order.

use crate::profile::{ContentType, ProfileRequest, Spec, Verb};

/// `spec` as decoded: kperf's Go field types (int), before the range checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSpec {
    /// `runnerCount`.
    pub runner_count: i64,
    /// `connsPerRunner`.
    pub conns_per_runner: i64,
    /// `clientsPerRunner`.
    pub clients_per_runner: i64,
    /// `contentType`, as written.
    pub content_type: String,
    /// `disableHTTP2`.
    pub disable_http2: bool,
}

/// One request as decoded: strings as written, the timestamp as any int64.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRequest {
    /// `timestamp` (ms).
    pub timestamp: i64,
    /// `verb`, as written.
    pub verb: String,
    /// `namespace`.
    pub namespace: String,
    /// `resourceKind`.
    pub resource_kind: String,
    /// `name`.
    pub name: String,
    /// `apiPath`.
    pub api_path: String,
    /// `body`.
    pub body: String,
    /// `labelSelector`.
    pub label_selector: String,
}

/// Step 1: `version should be 1`.
pub fn check_version(version: i64) -> Result<(), String> {
    if version != 1 {
        return Err("version should be 1".to_string());
    }
    Ok(())
}

/// Step 2, wrapped as kperf does (`spec: <msg>`), then the model's own range check: kperf keeps
/// Go ints, kreplay keeps `u32`, so a count above `u32::MAX` is refused here with its own message.
pub fn check_spec(spec: &RawSpec) -> Result<Spec, String> {
    if spec.runner_count <= 0 {
        return Err(format!(
            "spec: runnerCount must be > 0: {}",
            spec.runner_count
        ));
    }
    if spec.conns_per_runner <= 0 {
        return Err(format!(
            "spec: connsPerRunner must be > 0: {}",
            spec.conns_per_runner
        ));
    }
    if spec.clients_per_runner < 0 {
        return Err(format!(
            "spec: clientsPerRunner must be >= 0: {}",
            spec.clients_per_runner
        ));
    }
    let content_type = match spec.content_type.as_str() {
        "json" => ContentType::Json,
        "protobuf" => ContentType::Protobuf,
        other => return Err(format!("spec: unsupported content type {other}")),
    };
    let fit = |field: &str, v: i64| {
        u32::try_from(v).map_err(|_| {
            format!(
                "spec: {field} is too large for kreplay: {v} (at most {})",
                u32::MAX
            )
        })
    };
    Ok(Spec {
        runner_count: fit("runnerCount", spec.runner_count)?,
        conns_per_runner: fit("connsPerRunner", spec.conns_per_runner)?,
        clients_per_runner: fit("clientsPerRunner", spec.clients_per_runner)?,
        content_type,
        disable_http2: spec.disable_http2,
    })
}

/// Step 3: `requests must not be empty`.
pub fn check_not_empty(count: u64) -> Result<(), String> {
    if count == 0 {
        return Err("requests must not be empty".to_string());
    }
    Ok(())
}

/// The verbs a profile may use, as kperf spells them.
const VALID_VERBS: &str = "GET, LIST, WATCH, CREATE, DELETE, DELETECOLLECTION, PATCH, APPLY";

/// Step 4 for request `index`: the first failing rule, wrapped as `requests[<i>]: <msg>`;
/// on success, the request in the model's form.
pub fn check_request(index: u64, raw: RawRequest) -> Result<ProfileRequest, String> {
    let fail = |msg: String| Err(format!("requests[{index}]: {msg}"));
    if raw.timestamp < 0 {
        return fail(format!("timestamp must be >= 0: {}", raw.timestamp));
    }
    let Some(verb) = Verb::from_profile(&raw.verb) else {
        if raw.verb.is_empty() {
            return fail(format!("verb is required (one of {VALID_VERBS})"));
        }
        return fail(format!(
            "unsupported verb: {} (one of {VALID_VERBS})",
            raw.verb
        ));
    };
    if raw.resource_kind.is_empty() {
        return fail("resourceKind is required".to_string());
    }
    if raw.api_path.is_empty() {
        return fail("apiPath is required".to_string());
    }
    if verb.requires_name() && raw.name.is_empty() {
        return fail(format!("name is required for {verb} operation"));
    }
    if verb.requires_body() && raw.body.is_empty() {
        return fail(format!("body is required for {verb} operation"));
    }
    Ok(ProfileRequest {
        timestamp_ms: raw.timestamp,
        verb,
        namespace: raw.namespace,
        resource_kind: raw.resource_kind,
        name: raw.name,
        api_path: raw.api_path,
        body: raw.body,
        label_selector: raw.label_selector,
    })
}

/// Step 5 for request `index` (≥ 1) against its predecessor. Equal timestamps are allowed.
pub fn check_order(index: u64, timestamp: i64, previous: i64) -> Result<(), String> {
    if timestamp < previous {
        return Err(format!(
            "requests must be sorted by timestamp: request[{index}] timestamp {timestamp} < request[{}] timestamp {previous}",
            index - 1
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(verb: &str) -> RawRequest {
        RawRequest {
            timestamp: 5,
            verb: verb.into(),
            resource_kind: "Pod".into(),
            api_path: "/api/v1/pods".into(),
            name: "p".into(),
            body: "{}".into(),
            ..RawRequest::default()
        }
    }

    #[test]
    fn request_rules_in_kperf_order() {
        let mut r = request("GET");
        r.timestamp = -1;
        r.verb = "get".into();
        assert_eq!(
            check_request(2, r).unwrap_err(),
            "requests[2]: timestamp must be >= 0: -1"
        );
        let mut r = request("get");
        r.resource_kind.clear();
        assert_eq!(
            check_request(0, r).unwrap_err(),
            "requests[0]: unsupported verb: get (one of GET, LIST, WATCH, CREATE, DELETE, DELETECOLLECTION, PATCH, APPLY)"
        );
        let ok = check_request(0, request("PATCH")).unwrap();
        assert_eq!(ok.verb, Verb::Patch);
    }

    #[test]
    fn spec_rules_in_kperf_order() {
        let spec = RawSpec {
            runner_count: 0,
            conns_per_runner: -1,
            ..RawSpec::default()
        };
        assert_eq!(
            check_spec(&spec).unwrap_err(),
            "spec: runnerCount must be > 0: 0"
        );
        let spec = RawSpec {
            runner_count: 1,
            conns_per_runner: 1,
            content_type: "JSON".into(),
            ..RawSpec::default()
        };
        assert_eq!(
            check_spec(&spec).unwrap_err(),
            "spec: unsupported content type JSON"
        );
    }
}
