//! The HTTP/2 form of a replayed request: method, `:path` and headers (the same headers the
//! HTTP/1.1 encoder writes, minus the connection-level ones HTTP/2 forbids).

use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, Method};

use super::failure::Failure;
use super::CoreCtx;
use crate::http1::RequestTemplate;
use crate::source::RequestView;
use preprocess::profile::BodyKind;

/// The `Authorization` value of the requests, as the credentials were read last: the text the
/// HTTP/1.1 encoder writes, and the HTTP/2 header value made from it once per read rather
/// than once per request (`None` when the text cannot be a header value).
pub(crate) struct Authorization {
    text: String,
    header: Option<HeaderValue>,
}

impl Authorization {
    /// The value `text` (`Bearer …`), marked sensitive for HPACK (never indexed).
    pub(crate) fn new(text: String) -> Authorization {
        let header = HeaderValue::from_str(&text).ok().map(|mut v| {
            v.set_sensitive(true);
            v
        });
        Authorization { text, header }
    }

    /// The value as HTTP/1.1 writes it.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The HTTP/2 header value, or the request's failure when the text cannot be one (the
    /// message does not show it).
    pub(crate) fn http2_value(&self) -> Result<&HeaderValue, Failure> {
        self.header.as_ref().ok_or_else(|| {
            Failure::Corrupt("the Authorization header is not a valid header value".into())
        })
    }
}

/// An HTTP/2 request ready for [`Http2Connection::send`](crate::transport::Http2Connection::send).
pub(super) struct H2Request {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) headers: HeaderMap,
}

/// Builds the HTTP/2 request for `parts` with the core's header values and credentials (the
/// h2 crate needs owned values: this allocates).
pub(super) fn build(ctx: &CoreCtx, parts: &RequestView<'_>) -> Result<H2Request, Failure> {
    let template = &ctx.shared.template;
    let target = std::str::from_utf8(parts.target).map_err(|_| {
        Failure::Corrupt(format!(
            "request {}: target is not UTF-8",
            parts.record.profile_index
        ))
    })?;
    let mut path = String::with_capacity(template.base_path.len() + target.len());
    path.push_str(&template.base_path);
    path.push_str(target);
    let headers = headers(
        template,
        &ctx.user_agent,
        parts.body_kind,
        ctx.auth.borrow().as_ref(),
    )?;
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
/// which is `:authority` here), with `user_agent` (a core's own copy of the template's).
pub(super) fn headers(
    template: &RequestTemplate,
    user_agent: &HeaderValue,
    body_kind: BodyKind,
    authorization: Option<&Authorization>,
) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(ACCEPT, HeaderValue::from_static(template.accept));
    headers.insert(USER_AGENT, user_agent.clone());
    if let Some(auth) = authorization {
        headers.insert(AUTHORIZATION, auth.http2_value()?.clone());
    }
    if let Some(ct) = body_kind.content_type() {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> RequestTemplate {
        RequestTemplate::new(String::new(), "h:1".into(), "kreplay/test", "*/*").expect("valid")
    }

    #[test]
    fn the_authorization_value_is_made_once_and_sensitive() {
        let auth = Authorization::new("Bearer t0ken".into());
        assert_eq!(auth.text(), "Bearer t0ken");
        let t = template();
        let headers = headers(&t, &t.user_agent, BodyKind::None, Some(&auth)).expect("headers");
        let value = &headers[AUTHORIZATION];
        assert_eq!(value.as_bytes(), b"Bearer t0ken");
        assert!(value.is_sensitive(), "HPACK must never index a credential");
        assert_eq!(headers[USER_AGENT].as_bytes(), b"kreplay/test");
    }

    #[test]
    fn a_credential_that_cannot_be_a_header_value_fails_the_request_without_showing_it() {
        // The credential readers refuse control characters before this; the request still
        // fails cleanly on one that slipped through.
        let auth = Authorization::new("Bearer t\u{7f}k".into());
        assert_eq!(auth.text(), "Bearer t\u{7f}k");
        let t = template();
        let Err(Failure::Corrupt(message)) =
            headers(&t, &t.user_agent, BodyKind::None, Some(&auth))
        else {
            panic!("a non-ASCII credential must fail the HTTP/2 request");
        };
        assert!(message.contains("Authorization"), "{message}");
        assert!(!message.contains("t\u{7f}k"), "{message}");
    }
}
