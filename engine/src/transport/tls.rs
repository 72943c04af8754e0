//! TLS pieces shared by the kubeconfig loader and [`connect`](super::connect): server-certificate
//! verifiers that explain their failures, and rustls errors turned into sentences.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{
    CertificateError, DigitallySignedStruct, Error as TlsError, OtherError, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The crypto provider every kreplay TLS config uses (ring), named explicitly so that another
/// crate enabling a second provider cannot make config building ambiguous.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// ALPN protocols to offer: `h2` then `http/1.1`, or `http/1.1` alone.
pub fn alpn_protocols(http1_only: bool) -> Vec<Vec<u8>> {
    if http1_only {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    }
}

/// A certificate failure already put in words; carried inside rustls's error so that
/// [`explain_tls_error`] can return the sentence unchanged.
#[derive(Debug)]
pub struct CertificateProblem(String);

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CertificateProblem {}

/// Checks the server's certificate against the cluster's certificate authorities (webpki rules)
/// and, on failure, says which authority it was checked against (`ca_source`).
#[derive(Debug)]
pub struct ClusterCertVerifier {
    inner: Arc<WebPkiServerVerifier>,
    ca_source: String,
}

impl ClusterCertVerifier {
    /// A verifier trusting `roots`; `ca_source` names where they came from (file or kubeconfig entry).
    pub fn new(roots: RootCertStore, ca_source: String) -> Result<Self, TlsError> {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
            .build()
            .map_err(|e| TlsError::General(e.to_string()))?;
        Ok(Self { inner, ca_source })
    }
}

impl ServerCertVerifier for ClusterCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|err| {
                let name = server_name.to_str();
                let sentence = match &err {
                    TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                        "server certificate not signed by the cluster's certificate-authority ({})",
                        self.ca_source
                    ),
                    other => explain_tls_error(other, &name),
                };
                TlsError::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                    CertificateProblem(sentence),
                ))))
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure-skip-tls-verify: true`: accepts any server certificate, for any name, from anyone.
///
/// Risk: the connection is encrypted but not authenticated, so anyone on the path can
/// impersonate the API server and read the bearer token or client-certificate session.
/// Handshake signatures are still checked, so the peer must at least own the key it presents.
#[derive(Debug)]
pub struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl AcceptAnyServerCert {
    /// The verifier for `insecure-skip-tls-verify`.
    pub fn new() -> Self {
        Self {
            provider: crypto_provider(),
        }
    }
}

impl Default for AcceptAnyServerCert {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Says what a rustls error means for a user connecting to `server_name`, and what to fix.
pub fn explain_tls_error(err: &TlsError, server_name: &str) -> String {
    match err {
        TlsError::InvalidCertificate(cert_error) => {
            explain_certificate_error(cert_error, server_name)
        }
        TlsError::AlertReceived(alert) => format!(
            "the server refused the handshake with alert {alert:?} (if it asks for a client \
             certificate, check client-certificate/client-key of the kubeconfig user)"
        ),
        TlsError::NoApplicationProtocol => {
            "the server supports none of the offered protocols (h2, http/1.1)".to_string()
        }
        TlsError::PeerIncompatible(why) => {
            format!("the server's TLS settings are incompatible with this client: {why:?}")
        }
        TlsError::InvalidMessage(why) => format!(
            "the server sent a malformed TLS message ({why:?}); is it a TLS server on this port?"
        ),
        other => format!("TLS error: {other}"),
    }
}

fn explain_certificate_error(err: &CertificateError, server_name: &str) -> String {
    match err {
        CertificateError::Other(OtherError(inner)) => {
            if let Some(problem) = inner.downcast_ref::<CertificateProblem>() {
                return problem.0.clone();
            }
            if let Some(webpki::Error::CaUsedAsEndEntity) = inner.downcast_ref::<webpki::Error>() {
                return "the server's certificate is a CA certificate used as a server \
                        certificate; issue a leaf certificate signed by that CA"
                    .to_string();
            }
            format!("the server's certificate was rejected: {inner}")
        }
        CertificateError::UnknownIssuer => {
            "server certificate not signed by a trusted certificate authority".to_string()
        }
        CertificateError::NotValidForName => {
            format!("the server's certificate is not valid for the name {server_name}")
        }
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "the server's certificate is not valid for the name {server_name} (it is valid for: {}); \
             set tls-server-name in the kubeconfig cluster or use a matching server address",
            presented.join(", ")
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the server's certificate has expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (check the clocks)".to_string()
        }
        CertificateError::BadEncoding => "the server's certificate is not valid DER".to_string(),
        CertificateError::BadSignature => {
            "the server's certificate signature does not verify".to_string()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the server's certificate is not issued for TLS server authentication".to_string()
        }
        other => format!("the server's certificate was rejected: {other}"),
    }
}
