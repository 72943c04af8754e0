//! In-cluster configuration (client-go's `rest.InClusterConfig`): the service-account token and
//! CA mounted into every pod, and the API server address from KUBERNETES_SERVICE_HOST/PORT.

use super::credentials::Credentials;
use super::endpoint::Endpoint;
use super::error::KubeconfigError;
use super::tls_config::{client_config, server_verifier, ClientCertificate, ServerTrust};
use super::{ClusterAccess, ResolveEnvironment};
use rustls_pki_types::ServerName;

/// In-cluster access, or why it does not apply (`tried`: the kubeconfig places looked at).
pub(crate) fn resolve(
    env: &ResolveEnvironment,
    tried: &str,
) -> Result<ClusterAccess, KubeconfigError> {
    let root = &env.in_cluster_root;
    let token_path = root.join("token");
    let ca_path = root.join("ca.crt");
    let not_found = |why: String| KubeconfigError::NotFound {
        tried: tried.to_string(),
        in_cluster: why,
    };
    let (Some(host), Some(port)) = (&env.service_host, &env.service_port) else {
        return Err(not_found(
            "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set".into(),
        ));
    };
    if !token_path.exists() {
        return Err(not_found(format!(
            "{} does not exist",
            token_path.display()
        )));
    }
    let host_port = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let server = format!("https://{host_port}");
    let source = format!("in-cluster service account ({})", root.display());
    let entry_error = |message: String| KubeconfigError::Entry {
        source_files: source.clone(),
        entry: "KUBERNETES_SERVICE_HOST/PORT".into(),
        message,
    };
    let endpoint = Endpoint::parse(&server, true).map_err(entry_error)?;
    let server_name = ServerName::try_from(endpoint.host.clone())
        .map_err(|_| entry_error(format!("{:?} is not a valid server name", endpoint.host)))?;
    let credentials = Credentials::token_file(&token_path, &source, env.token_file_check_interval)?;
    let ca = std::fs::read(&ca_path).map_err(|source| KubeconfigError::Read {
        path: ca_path.clone(),
        source,
    })?;
    let ca_error = |message: String| KubeconfigError::Entry {
        source_files: source.clone(),
        entry: format!("CA {}", ca_path.display()),
        message,
    };
    let verifier = server_verifier(ServerTrust::CertificateAuthority {
        pem: ca,
        source: format!("in-cluster CA {}", ca_path.display()),
    })
    .map_err(ca_error)?;
    let tls = client_config(verifier.clone(), &ClientCertificate::None, false).map_err(ca_error)?;
    let tls_http1_only =
        client_config(verifier, &ClientCertificate::None, true).map_err(ca_error)?;
    Ok(ClusterAccess {
        server,
        tls: Some(tls),
        tls_server_name: None,
        credentials,
        source,
        endpoint,
        selected: None,
        tls_http1_only: Some(tls_http1_only),
        server_name: Some(server_name),
    })
}
