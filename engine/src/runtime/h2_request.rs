//! The HTTP/2 form of a replayed request: method, `:path` and headers (the same headers the
//! HTTP/1.1 encoder writes, minus the connection-level ones HTTP/2 forbids).

use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, Method};

use super::failure::Failure;
use super::CoreCtx;
use crate::http1::RequestTemplate;
use crate::http2::{Encoder, Indexing};
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

/// The values of a request's head that are the same for every request of a core.
pub(super) struct HeadValues<'a> {
    pub(super) authority: &'a [u8],
    pub(super) accept: &'a [u8],
    pub(super) user_agent: &'a [u8],
    pub(super) authorization: Option<&'a [u8]>,
}

/// Encodes a request's head for the core's loop: the pseudo-headers, then the same headers as
/// [`headers`] (kreplay's HTTP/1.1 headers minus `Host`, which is `:authority` here). Values repeated on every
/// request enter the server's HPACK table; the path does not, and the credential is never
/// indexed (RFC 7541 §7.1.3).
pub(super) fn encode_head(
    encoder: &mut Encoder,
    out: &mut Vec<u8>,
    method: preprocess::profile::Method,
    path: &[u8],
    values: &HeadValues<'_>,
    content_type: Option<&str>,
) {
    encoder.field(b":method", method.as_str().as_bytes(), Indexing::Index, out);
    encoder.field(b":scheme", b"https", Indexing::Index, out);
    encoder.field(b":authority", values.authority, Indexing::Index, out);
    encoder.field(b":path", path, Indexing::NoIndex, out);
    encoder.field(b"accept", values.accept, Indexing::Index, out);
    encoder.field(b"user-agent", values.user_agent, Indexing::Index, out);
    if let Some(auth) = values.authorization {
        encoder.field(b"authorization", auth, Indexing::Never, out);
    }
    if let Some(ct) = content_type {
        encoder.field(b"content-type", ct.as_bytes(), Indexing::Index, out);
    }
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

    #[test]
    fn the_loops_encoded_head_carries_the_same_headers_as_the_header_map() {
        let auth = Authorization::new("Bearer t0ken".into());
        let t = template();
        let map = headers(&t, &t.user_agent, BodyKind::Json, Some(&auth)).expect("headers");
        let values = HeadValues {
            authority: b"h:1",
            accept: t.accept.as_bytes(),
            user_agent: t.user_agent.as_bytes(),
            authorization: Some(auth.http2_value().expect("valid").as_bytes()),
        };
        let mut out = Vec::new();
        let mut encoder = Encoder::new();
        encoder.begin_block(&mut out);
        let ct = BodyKind::Json.content_type();
        encode_head(
            &mut encoder,
            &mut out,
            preprocess::profile::Method::Post,
            b"/p",
            &values,
            ct,
        );
        let mut fields = Vec::new();
        crate::http2::Decoder::new(4096)
            .decode(&out, |n, v| fields.push((n.to_vec(), v.to_vec())))
            .expect("decodes");
        let pseudo: Vec<_> = fields.iter().take_while(|(n, _)| n[0] == b':').collect();
        assert_eq!(
            pseudo,
            [
                &(b":method".to_vec(), b"POST".to_vec()),
                &(b":scheme".to_vec(), b"https".to_vec()),
                &(b":authority".to_vec(), b"h:1".to_vec()),
                &(b":path".to_vec(), b"/p".to_vec()),
            ]
        );
        let mut regular: Vec<_> = fields[pseudo.len()..].to_vec();
        let mut expected: Vec<_> = map
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        regular.sort();
        expected.sort();
        assert_eq!(regular, expected);
    }
}
