//! The API server address from the kubeconfig `server` URL.

use std::net::{SocketAddr, ToSocketAddrs};

/// Where the API server listens, parsed from `server`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` (true) or `http`.
    pub https: bool,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    /// Port (443 / 80 when the URL gives none).
    pub port: u16,
    /// `host:port` as sent in `Host` / `:authority` (IPv6 in brackets).
    pub authority: String,
    /// Path prefix of the server URL without a trailing `/` (usually empty).
    pub base_path: String,
}

impl Endpoint {
    /// Parses a kubeconfig `server` value. Without a scheme, `https` is assumed when
    /// `default_tls` (client-go's rule: TLS settings present), else `http`.
    pub fn parse(server: &str, default_tls: bool) -> Result<Self, String> {
        let (https, rest) = if let Some(rest) = server.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = server.strip_prefix("http://") {
            (false, rest)
        } else if server.contains("://") {
            return Err(format!(
                "server {server:?} has an unsupported scheme; use https:// or http://"
            ));
        } else {
            (default_tls, server)
        };
        let (host_port, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.starts_with('?') || path.starts_with('#') {
            return Err(format!(
                "server {server:?} must not have a query or fragment"
            ));
        }
        if host_port.contains('@') {
            return Err(format!(
                "server {server:?} must not contain user information"
            ));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = split_host_port(host_port, default_port)
            .ok_or_else(|| format!("server {server:?} has no valid host[:port]"))?;
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Endpoint {
            https,
            host,
            port,
            authority,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// Resolves the host to socket addresses (blocking DNS: call it before the replay starts).
    pub fn socket_addrs(&self) -> std::io::Result<Vec<SocketAddr>> {
        Ok((self.host.as_str(), self.port).to_socket_addrs()?.collect())
    }
}

fn split_host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = text.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return (!host.is_empty()).then(|| (host.to_string(), port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()?),
        None => (text, default_port),
    };
    if host.is_empty() || host.contains(':') {
        return None;
    }
    Some((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scheme_host_port_and_path() {
        let e = Endpoint::parse("https://10.0.0.1:6443/prefix/", false).unwrap();
        assert!(e.https);
        assert_eq!((e.host.as_str(), e.port), ("10.0.0.1", 6443));
        assert_eq!(e.authority, "10.0.0.1:6443");
        assert_eq!(e.base_path, "/prefix");
        let e = Endpoint::parse("https://[::1]", false).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.authority.as_str()),
            ("::1", 443, "[::1]:443")
        );
        let e = Endpoint::parse("localhost:8080", false).unwrap();
        assert!(!e.https);
        assert_eq!(e.port, 8080);
    }

    #[test]
    fn rejects_bad_servers() {
        assert!(Endpoint::parse("ftp://x", true).is_err());
        assert!(Endpoint::parse("https://host:notaport", true).is_err());
        assert!(Endpoint::parse("https://", true).is_err());
        assert!(Endpoint::parse("https://h?x=1", true).is_err());
    }
}
