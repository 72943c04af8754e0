//! The request entry point: health, authentication, admin endpoints, discovery, then resource requests
//! through the order log, the request log and the fault injector.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE,
    USER_AGENT,
};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, Version};
use serde_json::json;

use super::body::{body_len, error_response, full, json_value, ApiBody};
use super::faults::{FaultConfig, FaultDecision};
use super::handlers::{self, ApiRequest};
use super::path::{parse_query, parse_resource_path, ResourcePath};
use super::request_log::RecordedRequest;
use super::server::ConnState;
use super::status::ApiError;
use super::store::metadata_str;
use super::{discovery, jobs, patch, watch, Shared};

/// Handles one request; never fails (errors become Status responses).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    request: Request<Incoming>,
) -> Response<ApiBody> {
    let is_http2 = request.version() == Version::HTTP_2;
    let last = conn.count_request(&shared, is_http2);
    let mut response = respond(shared, conn, request).await;
    if last && !is_http2 {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn respond(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    request: Request<Incoming>,
) -> Response<ApiBody> {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if matches!(path, "/healthz" | "/readyz" | "/livez") {
        return full(200, "text/plain; charset=utf-8", "ok");
    }
    if !authorized(&shared, &conn, &parts.headers) {
        return finish(
            &shared,
            "GET",
            "-",
            arrived,
            error_response(&ApiError::unauthorized()),
        );
    }
    if path == "/metrics" || path.starts_with("/apisim/") {
        return admin(&shared, &parts, body).await;
    }
    if shared.jobs.is_some() {
        if let Some(route) = jobs::pod_route(path) {
            let verb = route.verb();
            let response = jobs::serve_route(&shared, route, parts, body).await;
            return finish(&shared, verb, "pods", arrived, response);
        }
    }
    match parse_resource_path(path) {
        Some(resource_path) => {
            resource(shared, conn.number, parts, body, resource_path, arrived).await
        }
        None => {
            let response = match discovery_document(&parts.method, parts.uri.path(), &shared) {
                Ok(value) => json_value(200, &value),
                Err(error) => error_response(&error),
            };
            finish(&shared, "GET", "-", arrived, response)
        }
    }
}

fn authorized(shared: &Shared, conn: &ConnState, headers: &HeaderMap) -> bool {
    let Some(token) = &shared.token else {
        return true;
    };
    if conn.cert_authenticated {
        return true;
    }
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .is_some_and(|(scheme, presented)| {
            scheme.eq_ignore_ascii_case("bearer") && presented.trim() == token
        })
}

fn finish(
    shared: &Shared,
    verb: &'static str,
    resource: &str,
    arrived: Instant,
    response: Response<ApiBody>,
) -> Response<ApiBody> {
    shared.metrics.record(
        verb,
        resource,
        response.status().as_u16(),
        arrived.elapsed(),
    );
    shared.metrics.add_response_bytes(body_len(&response));
    response
}

fn discovery_document(
    method: &Method,
    path: &str,
    shared: &Shared,
) -> Result<serde_json::Value, ApiError> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed(method.as_str()));
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let found = match segments.as_slice() {
        ["version"] => Some(discovery::version_info()),
        ["api"] => Some(discovery::core_versions(&shared.server_address)),
        ["apis"] => Some(discovery::group_list()),
        ["api", version] => discovery::resource_list("", version),
        ["apis", group] => discovery::group(group),
        ["apis", group, version] => discovery::resource_list(group, version),
        ["openapi", "v3"] => Some(discovery::openapi_v3_root()),
        ["openapi", "v3", rest @ ..] => discovery::openapi_v3_group_version(&rest.join("/")),
        _ => None,
    };
    found.ok_or_else(ApiError::path_not_found)
}

async fn read_body(shared: &Shared, body: Incoming) -> Result<Bytes, ApiError> {
    if hyper::body::Body::is_end_stream(&body) {
        // GET, DELETE and LIST carry no body: skip the collector on the hot path.
        return Ok(Bytes::new());
    }
    match Limited::new(body, shared.max_body_bytes).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::too_large(shared.max_body_bytes))
        }
        Err(error) => Err(ApiError::bad_request(format!(
            "error reading the request body: {error}"
        ))),
    }
}

fn header(headers: &HeaderMap, name: hyper::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Counts a request in flight while alive.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn resource(
    shared: Arc<Shared>,
    connection: u64,
    parts: Parts,
    body: Incoming,
    path: ResourcePath,
    arrived: Instant,
) -> Response<ApiBody> {
    let resource = path.resource.clone();
    let fail =
        |verb, error: ApiError| finish(&shared, verb, &resource, arrived, error_response(&error));
    let params = match parse_query(parts.uri.query()) {
        Ok(params) => params,
        Err(error) => return fail("GET", error),
    };
    let content_type = header(&parts.headers, CONTENT_TYPE).map(str::to_string);
    let verb = match handlers::classify(&parts.method, &path, &params, content_type.as_deref()) {
        Ok(verb) => verb,
        Err(error) => return fail("GET", error),
    };
    let seq = shared.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let body = match read_body(&shared, body).await {
        Ok(body) => body,
        Err(error) => return fail(verb, error),
    };
    shared.metrics.add_request_bytes(body.len());
    if shared.requests.enabled() {
        record_request(&shared, connection, &parts, seq, &body);
    }
    let decoded = if verb == "CREATE" {
        match patch::decode_body(&body, content_type.as_deref()) {
            Ok(value) => Some(value),
            Err(error) => {
                shared.order.record(&order_key(&path, ""), seq, verb);
                return fail(verb, error);
            }
        }
    } else {
        None
    };
    let name = path
        .name
        .as_deref()
        .or_else(|| decoded.as_ref().map(|value| metadata_str(value, "name")))
        .unwrap_or("");
    shared.order.record(&order_key(&path, name), seq, verb);

    let is_watch = verb == "WATCH";
    let in_flight = if is_watch {
        shared.in_flight.load(Ordering::Relaxed)
    } else {
        shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1
    };
    let _guard = (!is_watch).then(|| InFlight(&shared.in_flight));
    match shared.faults.decide(verb, in_flight) {
        FaultDecision::Stall => {
            let mut shutdown = shared.shutdown.clone();
            let _ = shutdown.wait_for(|stop| *stop).await;
            return fail(
                verb,
                ApiError::internal("apisim is shutting down (stalled request)"),
            );
        }
        FaultDecision::Throttle(retry_after) => {
            return fail(verb, ApiError::too_many_requests(retry_after))
        }
        FaultDecision::Fail => return fail(verb, ApiError::internal("apisim injected fault")),
        FaultDecision::Proceed { delay } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }

    let request = ApiRequest {
        verb,
        path: &path,
        params: &params,
        content_type: content_type.as_deref(),
        accept: header(&parts.headers, ACCEPT),
        body,
        decoded,
    };
    let result = if is_watch {
        watch::start(&shared, &request)
    } else if jobs::is_job_delete(&shared, &request) {
        jobs::delete_job(&shared, &request, parts.uri.query()).await
    } else {
        handlers::handle(&shared, request)
    };
    let response = result.unwrap_or_else(|error| error_response(&error));
    finish(&shared, verb, &resource, arrived, response)
}

/// `<namespace>/<resource>/<name>`; see the order log's documentation.
fn order_key(path: &ResourcePath, name: &str) -> String {
    format!(
        "{}/{}/{}",
        path.namespace.as_deref().unwrap_or(""),
        path.resource,
        name
    )
}

fn record_request(shared: &Shared, connection: u64, parts: &Parts, seq: u64, body: &[u8]) {
    let text = |name| header(&parts.headers, name).map(str::to_string);
    let request = RecordedRequest {
        seq,
        connection,
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_default(),
        version: format!("{:?}", parts.version),
        content_type: text(CONTENT_TYPE),
        accept: text(ACCEPT),
        user_agent: text(USER_AGENT),
        content_length: text(CONTENT_LENGTH),
        body_len: 0,
        body_fnv64: String::new(),
        body: None,
    };
    shared.requests.push(request, body);
}

async fn admin(shared: &Shared, parts: &Parts, body: Incoming) -> Response<ApiBody> {
    let ok = || {
        json_value(
            200,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        )
    };
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/metrics") => full(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            shared
                .metrics
                .render(shared.in_flight.load(Ordering::Relaxed)),
        ),
        (&Method::GET, "/apisim/order") => json_value(200, &shared.order.to_json()),
        (&Method::DELETE, "/apisim/order") => {
            shared.order.reset();
            ok()
        }
        (&Method::GET, "/apisim/requests") => json_value(200, &shared.requests.to_json()),
        (&Method::DELETE, "/apisim/requests") => {
            shared.requests.reset();
            ok()
        }
        (&Method::POST, "/apisim/reset") => {
            // Objects, history, order and request logs go; faults stay (they are the run's setup).
            shared.store.reset();
            super::seed::apply_seed(&shared.store, &shared.seed);
            shared.order.reset();
            shared.requests.reset();
            ok()
        }
        (&Method::GET, "/apisim/faults") => json_value(200, &json!(shared.faults.config())),
        (&Method::POST | &Method::PUT, "/apisim/faults") => {
            let body = match read_body(shared, body).await {
                Ok(body) => body,
                Err(error) => return error_response(&error),
            };
            let config: FaultConfig = match serde_json::from_slice(&body) {
                Ok(config) => config,
                Err(error) => {
                    return error_response(&ApiError::bad_request(format!(
                        "invalid fault settings: {error}"
                    )))
                }
            };
            if let Err(why) = config.validate() {
                return error_response(&ApiError::bad_request(format!(
                    "invalid fault settings: {why}"
                )));
            }
            shared.faults.set(config);
            json_value(200, &json!(shared.faults.config()))
        }
        (
            method,
            "/metrics" | "/apisim/order" | "/apisim/requests" | "/apisim/faults" | "/apisim/reset",
        ) => error_response(&ApiError::method_not_allowed(method.as_str())),
        _ => error_response(&ApiError::path_not_found()),
    }
}
