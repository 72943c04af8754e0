//! Cluster access from kubectl's own flags, without a kubeconfig: `--server`, `--token`,
//! `--certificate-authority`, `--insecure-skip-tls-verify` (same names, same meaning).

use std::path::PathBuf;

use rustls_pki_types::ServerName;

use super::credentials::Credentials;
use super::endpoint::Endpoint;
use super::error::KubeconfigError;
use super::tls_config::{client_config, server_verifier, ClientCertificate, ServerTrust};
use super::ClusterAccess;

/// The kubectl-style flags that describe a cluster on the command line.
#[derive(Clone, Default)]
pub struct ServerFlags {
    /// `--server`: `https://HOST[:PORT][/PATH]` or `http://…`.
    pub server: String,
    /// `--token`: bearer token (never printed).
    pub token: Option<String>,
    /// `--certificate-authority`: CA bundle (PEM) the server certificate is checked against.
    pub certificate_authority: Option<PathBuf>,
    /// `--insecure-skip-tls-verify`: do not check the server certificate.
    pub insecure_skip_tls_verify: bool,
}

impl std::fmt::Debug for ServerFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerFlags")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("certificate_authority", &self.certificate_authority)
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .finish()
    }
}

/// Builds access from the flags; errors name the flag and never contain the token.
pub fn from_flags(flags: &ServerFlags) -> Result<ClusterAccess, KubeconfigError> {
    let source = format!("--server {}", flags.server);
    let flag_error = |entry: &str, message: String| KubeconfigError::Entry {
        source_files: "command line".into(),
        entry: entry.into(),
        message,
    };
    if flags.insecure_skip_tls_verify && flags.certificate_authority.is_some() {
        // kubectl refuses the same pair.
        return Err(flag_error(
            "--insecure-skip-tls-verify",
            "cannot be combined with --certificate-authority: pick one".into(),
        ));
    }
    let endpoint = Endpoint::parse(&flags.server, true).map_err(|e| flag_error("--server", e))?;
    let credentials = match flags.token.as_deref() {
        Some("") => {
            return Err(flag_error(
                "--token",
                "is empty; give the bearer token".into(),
            ))
        }
        Some(token) => Credentials::bearer_token(token),
        None => Credentials::anonymous(),
    };
    let (tls, tls_http1_only, server_name) = if endpoint.https {
        let server_name = ServerName::try_from(endpoint.host.clone()).map_err(|_| {
            flag_error(
                "--server",
                format!("{:?} is not a valid TLS server name", endpoint.host),
            )
        })?;
        let trust = match (&flags.certificate_authority, flags.insecure_skip_tls_verify) {
            (_, true) => ServerTrust::Insecure,
            (Some(path), false) => ServerTrust::CertificateAuthority {
                pem: std::fs::read(path).map_err(|source| KubeconfigError::Read {
                    path: path.clone(),
                    source,
                })?,
                source: format!("--certificate-authority {}", path.display()),
            },
            (None, false) => ServerTrust::PublicRoots,
        };
        let ca_error = |e: String| flag_error("--certificate-authority", e);
        let verifier = server_verifier(trust).map_err(ca_error)?;
        let tls =
            client_config(verifier.clone(), &ClientCertificate::None, false).map_err(ca_error)?;
        let tls1 = client_config(verifier, &ClientCertificate::None, true).map_err(ca_error)?;
        (Some(tls), Some(tls1), Some(server_name))
    } else {
        if flags.certificate_authority.is_some() || flags.insecure_skip_tls_verify {
            return Err(flag_error(
                "--server",
                format!(
                    "{} is plain http: --certificate-authority and --insecure-skip-tls-verify need https://",
                    flags.server
                ),
            ));
        }
        (None, None, None)
    };
    Ok(ClusterAccess {
        server: flags.server.clone(),
        tls,
        tls_server_name: None,
        credentials,
        source,
        endpoint,
        selected: None,
        tls_http1_only,
        server_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_with_token_and_insecure() {
        let access = from_flags(&ServerFlags {
            server: "https://127.0.0.1:6443".into(),
            token: Some("s3cret-token".into()),
            insecure_skip_tls_verify: true,
            ..ServerFlags::default()
        })
        .unwrap();
        assert!(access.tls_target(false).is_some());
        assert_eq!(
            access
                .credentials
                .authorization_header()
                .unwrap()
                .as_deref(),
            Some("Bearer s3cret-token")
        );
        assert!(!format!("{access:?}").contains("s3cret"));
    }

    #[test]
    fn refuses_contradictions_without_leaking_the_token() {
        let err = from_flags(&ServerFlags {
            server: "https://127.0.0.1:6443".into(),
            token: Some("s3cret-token".into()),
            certificate_authority: Some("/nonexistent/ca.crt".into()),
            insecure_skip_tls_verify: true,
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--insecure-skip-tls-verify") && !err.contains("s3cret"),
            "{err}"
        );
        let err = from_flags(&ServerFlags {
            server: "https://127.0.0.1:6443".into(),
            certificate_authority: Some("/nonexistent/ca.crt".into()),
            ..ServerFlags::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/ca.crt"), "{err}");
        let err = from_flags(&ServerFlags {
            server: "http://127.0.0.1:80".into(),
            insecure_skip_tls_verify: true,
            ..ServerFlags::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("https://"), "{err}");
    }
}
