//! The HTTP/2 form of a replayed request: method, `:path` and headers (the same headers the
//! HTTP/1.1 encoder writes, minus the connection-level ones HTTP/2 forbids).

use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, Method};

use super::failure::Failure;
use crate::http1::RequestTemplate;
use crate::source::RequestView;
use preprocess::profile::BodyKind;

/// An HTTP/2 request ready for [`Http2Connection::send`](crate::transport::Http2Connection::send).
pub(super) struct H2Request {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) headers: HeaderMap,
}

/// Builds the HTTP/2 request for `parts` (the h2 crate needs owned values: this allocates).
pub(super) fn build(
    template: &RequestTemplate,
    parts: &RequestView<'_>,
    authorization: Option<&str>,
) -> Result<H2Request, Failure> {
    let target = std::str::from_utf8(parts.target).map_err(|_| {
        Failure::Corrupt(format!(
            "request {}: target is not UTF-8",
            parts.record.profile_index
        ))
    })?;
    let mut path = String::with_capacity(template.base_path.len() + target.len());
    path.push_str(&template.base_path);
    path.push_str(target);
    let headers = headers(template, parts.body_kind, authorization)?;
    let method = match parts.method {
        preprocess::profile::Method::Get => Method::GET,
        preprocess::profile::Method::Post => Method::POST,
        preprocess::profile::Method::Delete => Method::DELETE,
        preprocess::profile::Method::Patch => Method::PATCH,
    };
    Ok(H2Request {
        method,
        path,
        headers,
    })
}

/// The request headers of kreplay's requests (the ones HTTP/1.1 requests carry, minus `Host`,
/// which is `:authority` here).
pub(super) fn headers(
    template: &RequestTemplate,
    body_kind: BodyKind,
    authorization: Option<&str>,
) -> Result<HeaderMap, Failure> {
    let bad_header = |what: &str| Failure::Corrupt(format!("{what} is not a valid header value"));
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(ACCEPT, HeaderValue::from_static(template.accept));
    headers.insert(USER_AGENT, template.user_agent.clone());
    if let Some(auth) = authorization {
        let mut v =
            HeaderValue::from_str(auth).map_err(|_| bad_header("the Authorization header"))?;
        v.set_sensitive(true);
        headers.insert(AUTHORIZATION, v);
    }
    if let Some(ct) = body_kind.content_type() {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    Ok(headers)
}
