//! Writes HTTP/1.1 requests into a reused buffer: no allocation once the buffer has grown.

use http::HeaderValue;
use preprocess::profile::{BodyKind, Method};

/// A `--user-agent` that is not a valid header value: written as is, its CR or LF would
/// start headers of its own on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--user-agent {0:?} is not a valid header value: use visible ASCII characters, spaces and tabs (no CR, LF or other control characters)")]
pub struct InvalidUserAgent(pub String);

/// `text` as a `User-Agent` header value, or why it cannot be one.
pub fn user_agent_header(text: &str) -> Result<HeaderValue, InvalidUserAgent> {
    HeaderValue::from_str(text).map_err(|_| InvalidUserAgent(text.to_string()))
}

/// The parts of every request that depend only on the target and the run.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    /// Path prefix of the server URL (no trailing `/`; usually empty).
    pub base_path: String,
    /// `Host` header value.
    pub host: String,
    /// `User-Agent` header value, checked once (HTTP/2 requests take a clone).
    pub user_agent: HeaderValue,
    /// `Accept` header value.
    pub accept: &'static str,
    /// `" HTTP/1.1\r\nHost: …\r\nUser-Agent: …\r\nAccept: …"`: the fixed middle of every
    /// request head, copied in one piece.
    fixed: Vec<u8>,
}

impl RequestTemplate {
    /// A template for requests to `host` under `base_path`; `user_agent` must be a valid
    /// header value.
    pub fn new(
        base_path: String,
        host: String,
        user_agent: &str,
        accept: &'static str,
    ) -> Result<RequestTemplate, InvalidUserAgent> {
        let user_agent = user_agent_header(user_agent)?;
        let mut fixed = Vec::new();
        for part in [
            b" HTTP/1.1\r\nHost: ".as_slice(),
            host.as_bytes(),
            b"\r\nUser-Agent: ",
            user_agent.as_bytes(),
            b"\r\nAccept: ",
            accept.as_bytes(),
        ] {
            fixed.extend_from_slice(part);
        }
        Ok(RequestTemplate {
            base_path,
            host,
            user_agent,
            accept,
            fixed,
        })
    }

    /// The `User-Agent` value with bytes of its own, for one core: clones of a value count
    /// references in one place, which cores must not share per request.
    pub fn user_agent_copy(&self) -> HeaderValue {
        let mut copy = HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(
            self.user_agent.as_bytes(),
        ))
        .unwrap_or_else(|_| self.user_agent.clone());
        copy.set_sensitive(self.user_agent.is_sensitive());
        copy
    }

    /// Encodes one request (head and body) into `buf`, replacing its contents.
    /// `authorization` is the full header value (`Bearer …`) when the target has credentials.
    pub fn encode(
        &self,
        buf: &mut Vec<u8>,
        method: Method,
        target: &[u8],
        body_kind: BodyKind,
        body: &[u8],
        authorization: Option<&str>,
    ) {
        buf.clear();
        buf.extend_from_slice(method.as_str().as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(self.base_path.as_bytes());
        buf.extend_from_slice(target);
        buf.extend_from_slice(&self.fixed);
        if let Some(auth) = authorization {
            buf.extend_from_slice(b"\r\nAuthorization: ");
            buf.extend_from_slice(auth.as_bytes());
        }
        if let Some(content_type) = body_kind.content_type() {
            buf.extend_from_slice(b"\r\nContent-Type: ");
            buf.extend_from_slice(content_type.as_bytes());
        }
        // A body-less POST/PATCH still says so, or a server would wait for one.
        if !body.is_empty() || matches!(method, Method::Post | Method::Patch) {
            buf.extend_from_slice(b"\r\nContent-Length: ");
            write_decimal(buf, body.len() as u64);
        }
        buf.extend_from_slice(b"\r\n\r\n");
        buf.extend_from_slice(body);
    }
}

/// Appends `n` in decimal without going through `fmt` (which would not allocate, but is slow).
fn write_decimal(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> RequestTemplate {
        RequestTemplate::new(
            "/prefix".to_string(),
            "127.0.0.1:8080".to_string(),
            "kreplay/test",
            "application/json, */*",
        )
        .expect("a valid user agent")
    }

    #[test]
    fn each_core_gets_a_user_agent_with_bytes_of_its_own() {
        let t = template();
        let (a, b) = (t.user_agent_copy(), t.user_agent_copy());
        assert_eq!(a, t.user_agent);
        assert_eq!(b, t.user_agent);
        assert_ne!(a.as_bytes().as_ptr(), t.user_agent.as_bytes().as_ptr());
        assert_ne!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
    }

    #[test]
    fn a_user_agent_that_would_start_a_header_of_its_own_is_refused() {
        for bad in ["ua\r\nX-Evil: 1", "ua\nX: 1", "ua\0", "ua\x7f"] {
            let err = RequestTemplate::new(String::new(), "h".into(), bad, "*/*").unwrap_err();
            assert_eq!(err, InvalidUserAgent(bad.to_string()));
            assert!(err.to_string().contains("no CR, LF"), "{err}");
        }
        let ok = RequestTemplate::new(
            String::new(),
            "h".into(),
            "kperf/v0 (linux/amd64)\tx",
            "*/*",
        )
        .expect("visible ASCII, spaces and tabs");
        assert_eq!(ok.user_agent.as_bytes(), b"kperf/v0 (linux/amd64)\tx");
    }

    #[test]
    fn get_has_no_body_headers() {
        let mut buf = Vec::new();
        template().encode(
            &mut buf,
            Method::Get,
            b"/api/v1/pods?limit=1",
            BodyKind::None,
            b"",
            None,
        );
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "GET /prefix/api/v1/pods?limit=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: kreplay/test\r\n\
             Accept: application/json, */*\r\n\r\n"
        );
    }

    #[test]
    fn patch_has_type_length_and_body() {
        let mut buf = b"stale contents".to_vec();
        template().encode(
            &mut buf,
            Method::Patch,
            b"/api/v1/namespaces/a/pods/x",
            BodyKind::StrategicMergePatch,
            b"{\"a\":1}",
            Some("Bearer t"),
        );
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "PATCH /prefix/api/v1/namespaces/a/pods/x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
             User-Agent: kreplay/test\r\nAccept: application/json, */*\r\nAuthorization: Bearer t\r\n\
             Content-Type: application/strategic-merge-patch+json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        );
    }

    #[test]
    fn decimal_digits() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut buf = Vec::new();
            write_decimal(&mut buf, n);
            assert_eq!(buf, n.to_string().into_bytes());
        }
    }
}
