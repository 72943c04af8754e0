//! Where requests go: a server URL (`--server`) or a kubeconfig cluster, behind one type.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::kubeconfig::{ClusterAccess, Credentials};

/// Something that yields the `Authorization` header value for requests (`Bearer …`).
/// Implementations must keep the value out of `Debug` and errors.
pub trait AuthProvider: Send + Sync {
    /// The current header value, or `None` when requests carry no credentials.
    fn authorization(&self) -> Result<Option<String>, String>;

    /// The server answered 401: refresh credentials that can be refreshed (exec plugins).
    fn on_unauthorized(&self) {}
}

impl AuthProvider for Credentials {
    fn authorization(&self) -> Result<Option<String>, String> {
        self.authorization_header().map_err(|e| e.to_string())
    }

    fn on_unauthorized(&self) {
        Credentials::on_unauthorized(self);
    }
}

/// A target that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The server URL is not `http://HOST[:PORT][/PATH]`.
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The host name does not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// `host:port`.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
}

/// The replay's target server.
#[derive(Clone)]
pub struct Target {
    /// Server URL without a trailing `/` (kperf's `base`): prefixes metric keys and error URLs.
    pub base_url: String,
    /// Path part of the server URL (no trailing `/`; usually empty), prefixed to every request target.
    pub base_path: String,
    /// `Host` header value (`host[:port]` as in the URL).
    pub host_header: String,
    /// Resolved addresses (connections use the first).
    pub addrs: Vec<SocketAddr>,
    /// Credentials, if any.
    pub auth: Option<Arc<dyn AuthProvider>>,
    /// TLS settings for pool connections (ALPN `h2` and `http/1.1`, or `http/1.1` only)
    /// and the name the certificate is checked against.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// TLS settings offering only `http/1.1` (WATCH connections).
    pub tls_http1: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("base_url", &self.base_url)
            .field("addrs", &self.addrs)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Target {
    /// A plain-HTTP target from `http://HOST[:PORT][/PATH]` (port 80 by default).
    pub fn from_server_url(url: &str) -> Result<Target, TargetError> {
        let bad = |reason: &str| TargetError::BadUrl {
            url: redact_userinfo(url),
            reason: reason.to_string(),
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad(
                    "https with --server is not supported; use --kubeconfig for TLS clusters",
                ))
            }
            _ => return Err(bad("expected http://HOST[:PORT][/PATH]")),
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user information in the URL is not supported"));
        }
        if uri.query().is_some() {
            return Err(bad("a server URL cannot have a query"));
        }
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(80);
        let host_for_resolve = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (host_for_resolve, port)
            .to_socket_addrs()
            .map_err(|source| TargetError::Resolve {
                host: format!("{host}:{port}"),
                source,
            })?
            .collect();
        if addrs.is_empty() {
            return Err(TargetError::Resolve {
                host: format!("{host}:{port}"),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
            });
        }
        let base_path = uri.path().trim_end_matches('/').to_string();
        let base_url = url.strip_suffix('/').unwrap_or(url).to_string();
        Ok(Target {
            base_url,
            base_path,
            host_header: authority.as_str().to_string(),
            addrs,
            auth: None,
            tls: None,
            tls_http1: None,
        })
    }

    /// A target from kubeconfig cluster access: TLS when the server is `https://`
    /// (offering HTTP/2 unless `http1_only`, as kperf's `disableHTTP2`), credentials
    /// from the selected user.
    pub fn from_cluster(access: &ClusterAccess, http1_only: bool) -> Result<Target, TargetError> {
        let e = &access.endpoint;
        let addrs = e.socket_addrs().map_err(|source| TargetError::Resolve {
            host: e.authority.clone(),
            source,
        })?;
        if addrs.is_empty() {
            return Err(TargetError::Resolve {
                host: e.authority.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
            });
        }
        let tls_for = |h1: bool| {
            access.tls_target(h1).ok_or_else(|| TargetError::BadUrl {
                url: redact_userinfo(&access.server),
                reason: format!("no TLS settings for this https server ({})", access.source),
            })
        };
        let (tls, tls_http1) = if e.https {
            (Some(tls_for(http1_only)?), Some(tls_for(true)?))
        } else {
            (None, None)
        };
        Ok(Target {
            base_url: access
                .server
                .strip_suffix('/')
                .unwrap_or(&access.server)
                .to_string(),
            base_path: e.base_path.clone(),
            host_header: e.authority.clone(),
            addrs,
            auth: Some(Arc::new(access.credentials.clone())),
            tls,
            tls_http1,
        })
    }

    /// The address connections go to.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }
}

/// The URL with any `user:password@` replaced, so errors never show credentials.
fn redact_userinfo(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    match url[after_scheme..authority_end].rfind('@') {
        Some(at) => format!(
            "{}<redacted>@{}",
            &url[..after_scheme],
            &url[after_scheme + at + 1..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_http_urls() {
        let t = Target::from_server_url("http://127.0.0.1:8080/").unwrap();
        assert_eq!(t.base_url, "http://127.0.0.1:8080");
        assert_eq!(t.base_path, "");
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.addr(), "127.0.0.1:8080".parse().unwrap());
        let t = Target::from_server_url("http://127.0.0.1/k8s/").unwrap();
        assert_eq!((t.base_path.as_str(), t.addr().port()), ("/k8s", 80));
    }

    #[test]
    fn rejects_what_it_cannot_serve() {
        for url in [
            "ftp://x",
            "https://127.0.0.1:6443",
            "127.0.0.1:80",
            "http://127.0.0.1/?a=1",
        ] {
            let err = Target::from_server_url(url).unwrap_err().to_string();
            assert!(err.contains(url), "{err}");
        }
        let err = Target::from_server_url("http://user:s3cret@127.0.0.1/")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("s3cret") && err.contains("<redacted>@127.0.0.1"),
            "{err}"
        );
    }
}
