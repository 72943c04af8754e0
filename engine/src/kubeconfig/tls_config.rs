//! Building rustls client configurations for a cluster: trust roots (cluster CA, or the
//! webpki roots when the kubeconfig names none), `insecure-skip-tls-verify`, client
//! certificates (static or from an exec plugin) and ALPN.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};

use super::exec::{ExecClientCert, ExecPlugin};
use super::pem::parse_certificates;
use crate::transport::tls::{
    alpn_protocols, crypto_provider, AcceptAnyServerCert, ClusterCertVerifier,
};

/// How the server's certificate is checked.
pub(crate) enum ServerTrust {
    /// Against these CA certificates (PEM), described by `source` in messages.
    CertificateAuthority { pem: Vec<u8>, source: String },
    /// Against the public web roots (no CA in the kubeconfig).
    PublicRoots,
    /// Not at all (`insecure-skip-tls-verify: true`).
    Insecure,
}

/// Which client certificate is presented.
#[derive(Clone)]
pub(crate) enum ClientCertificate {
    None,
    Static(Arc<CertifiedKey>),
    Exec(Arc<ExecPlugin>),
}

/// The verifier for `trust`; an error is a sentence about the CA data.
pub(crate) fn server_verifier(trust: ServerTrust) -> Result<Arc<dyn ServerCertVerifier>, String> {
    match trust {
        ServerTrust::Insecure => Ok(Arc::new(AcceptAnyServerCert::new())),
        ServerTrust::PublicRoots => {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            ClusterCertVerifier::new(
                roots,
                "the public web roots; the kubeconfig names no certificate-authority".into(),
            )
            .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
            .map_err(|e| e.to_string())
        }
        ServerTrust::CertificateAuthority { pem, source } => {
            let mut roots = RootCertStore::empty();
            for certificate in parse_certificates(&pem)? {
                roots
                    .add(certificate)
                    .map_err(|e| format!("holds a certificate that is not a usable CA: {e}"))?;
            }
            ClusterCertVerifier::new(roots, source)
                .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
                .map_err(|e| e.to_string())
        }
    }
}

/// A client config with `verifier`, `client_certificate` and ALPN `h2`+`http/1.1` (or
/// `http/1.1` only).
pub(crate) fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
    client_certificate: &ClientCertificate,
    http1_only: bool,
) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_certificate {
        ClientCertificate::None => builder.with_no_client_auth(),
        ClientCertificate::Static(key) => {
            builder.with_client_cert_resolver(Arc::new(StaticClientCert(Arc::clone(key))))
        }
        ClientCertificate::Exec(plugin) => {
            builder.with_client_cert_resolver(Arc::new(ExecClientCert(Arc::clone(plugin))))
        }
    };
    config.alpn_protocols = alpn_protocols(http1_only);
    Ok(Arc::new(config))
}

/// A client certificate from the kubeconfig (file or data).
struct StaticClientCert(Arc<CertifiedKey>);

impl std::fmt::Debug for StaticClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticClientCert")
    }
}

impl ResolvesClientCert for StaticClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}
