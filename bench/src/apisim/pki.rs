//! Certificates (server CA + leaf, client CA + client certificate), the rustls server configuration, and
//! the kubeconfig apisim writes for its clients.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::ApiSimError;

/// PEM material generated at start.
pub struct Pki {
    /// Server CA certificate, PEM (what clients trust).
    pub ca_pem: String,
    server_cert_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
    client_ca_der: CertificateDer<'static>,
    /// Client certificate, PEM (CN `apisim-admin`, O `system:masters`).
    pub client_cert_pem: String,
    /// Client private key, PEM.
    pub client_key_pem: String,
}

fn pki_error(what: &str, error: impl std::fmt::Display) -> ApiSimError {
    ApiSimError::Tls(format!("{what}: {error}"))
}

fn ca_params(common_name: &str) -> Result<CertificateParams, ApiSimError> {
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| pki_error("CA parameters", e))?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

impl Pki {
    /// Generates a server CA and a leaf for 127.0.0.1, ::1, localhost (and `extra_ip`), and a client CA
    /// with one client certificate.
    pub fn generate(extra_ip: Option<IpAddr>) -> Result<Self, ApiSimError> {
        let ca_key = KeyPair::generate().map_err(|e| pki_error("CA key", e))?;
        let ca = ca_params("apisim CA")?
            .self_signed(&ca_key)
            .map_err(|e| pki_error("CA certificate", e))?;

        let mut server = CertificateParams::new(vec!["localhost".to_string()])
            .map_err(|e| pki_error("server certificate parameters", e))?;
        let mut ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        if let Some(ip) = extra_ip.filter(|ip| !ip.is_unspecified() && !ips.contains(ip)) {
            ips.push(ip);
        }
        server
            .subject_alt_names
            .extend(ips.into_iter().map(SanType::IpAddress));
        server.distinguished_name.push(DnType::CommonName, "apisim");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let server_key = KeyPair::generate().map_err(|e| pki_error("server key", e))?;
        let server_cert = server
            .signed_by(&server_key, &ca, &ca_key)
            .map_err(|e| pki_error("server certificate", e))?;

        let client_ca_key = KeyPair::generate().map_err(|e| pki_error("client CA key", e))?;
        let client_ca = ca_params("apisim client CA")?
            .self_signed(&client_ca_key)
            .map_err(|e| pki_error("client CA certificate", e))?;
        let mut client = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| pki_error("client certificate parameters", e))?;
        client
            .distinguished_name
            .push(DnType::CommonName, "apisim-admin");
        client
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let client_key = KeyPair::generate().map_err(|e| pki_error("client key", e))?;
        let client_cert = client
            .signed_by(&client_key, &client_ca, &client_ca_key)
            .map_err(|e| pki_error("client certificate", e))?;

        Ok(Pki {
            ca_pem: ca.pem(),
            server_cert_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
            client_ca_der: client_ca.der().clone(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// A rustls server config: ALPN h2 + http/1.1, client certificates optional but, when sent, verified
    /// against the client CA.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, ApiSimError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.client_ca_der.clone())
            .map_err(|e| pki_error("client CA", e))?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| pki_error("client verifier", e))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| pki_error("TLS versions", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server_cert_der.clone()], key)
            .map_err(|e| pki_error("server certificate", e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Renders the kubeconfig: cluster `apisim`; with TLS, users/contexts `apisim-cert` (current) and
/// `apisim-token`; plain, only `apisim-token` (current).
pub fn kubeconfig_yaml(server_url: &str, pki: Option<&Pki>, token: &str) -> String {
    let b64 = |text: &str| BASE64.encode(text.as_bytes());
    let mut out =
        String::from("apiVersion: v1\nkind: Config\nclusters:\n- name: apisim\n  cluster:\n");
    out.push_str(&format!("    server: \"{server_url}\"\n"));
    if let Some(pki) = pki {
        out.push_str(&format!(
            "    certificate-authority-data: {}\n",
            b64(&pki.ca_pem)
        ));
    }
    out.push_str("users:\n");
    if let Some(pki) = pki {
        out.push_str(&format!(
            "- name: apisim-cert\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&pki.client_cert_pem),
            b64(&pki.client_key_pem)
        ));
    }
    out.push_str(&format!(
        "- name: apisim-token\n  user:\n    token: \"{token}\"\n"
    ));
    out.push_str("contexts:\n");
    if pki.is_some() {
        out.push_str(
            "- name: apisim-cert\n  context:\n    cluster: apisim\n    user: apisim-cert\n",
        );
    }
    out.push_str("- name: apisim-token\n  context:\n    cluster: apisim\n    user: apisim-token\n");
    let current = if pki.is_some() {
        "apisim-cert"
    } else {
        "apisim-token"
    };
    out.push_str(&format!("current-context: {current}\n"));
    out
}

/// Writes `contents` to `path` with mode 0600 (it holds credentials).
pub fn write_private_file(path: &Path, contents: &str) -> Result<(), ApiSimError> {
    let io_error = |source| ApiSimError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_error)?;
    }
    file.write_all(contents.as_bytes()).map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_material_builds_a_tls_config() {
        let pki = Pki::generate(None).unwrap();
        assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let config = pki.server_config().unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
    }

    #[test]
    fn kubeconfig_has_both_contexts_with_tls_and_token_only_when_plain() {
        let pki = Pki::generate(None).unwrap();
        let text = kubeconfig_yaml("https://127.0.0.1:1", Some(&pki), "tok");
        assert!(text.contains("certificate-authority-data: "));
        assert!(text.contains("client-certificate-data: "));
        assert!(text.contains("current-context: apisim-cert\n"));
        assert!(text.contains("- name: apisim-token\n  context:"));
        let plain = kubeconfig_yaml("http://127.0.0.1:1", None, "tok");
        assert!(!plain.contains("certificate"));
        assert!(plain.contains("current-context: apisim-token\n"));
        assert!(plain.contains("token: \"tok\""));
    }
}
