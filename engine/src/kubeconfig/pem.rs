//! PEM certificates and private keys (RSA, EC, PKCS#8) for trust roots and client certificates.
//! Messages never quote the PEM text: it may be key material.

use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// All certificates in `pem`; at least one.
pub(crate) fn parse_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certificates = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        certificates.push(item.map_err(describe)?);
    }
    if certificates.is_empty() {
        return Err("holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certificates)
}

/// The first private key in `pem` (PKCS#1 RSA, SEC1 EC or PKCS#8).
pub(crate) fn parse_private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => {
            "holds no PEM private key (expected -----BEGIN PRIVATE KEY-----, \
             RSA PRIVATE KEY or EC PRIVATE KEY)"
                .to_string()
        }
        other => describe(other),
    })
}

/// A client certificate chain with its key, ready for rustls.
pub(crate) fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let chain = parse_certificates(cert_pem).map_err(|e| format!("client certificate {e}"))?;
    let key = parse_private_key(key_pem).map_err(|e| format!("client key {e}"))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| "client key is not a supported RSA, ECDSA or Ed25519 key".to_string())?;
    Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
}

fn describe(err: pem::Error) -> String {
    match err {
        pem::Error::NoItemsFound => "holds no PEM item".into(),
        pem::Error::MissingSectionEnd { .. } => {
            "is not valid PEM (a section has no END line)".into()
        }
        pem::Error::IllegalSectionStart { .. } => "is not valid PEM (malformed BEGIN line)".into(),
        pem::Error::Base64Decode(_) => "is not valid PEM (bad base64 inside a section)".into(),
        pem::Error::Io(e) => format!("cannot be read: {e}"),
        _ => "is not valid PEM".into(),
    }
}
