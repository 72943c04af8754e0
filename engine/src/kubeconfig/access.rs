//! From the merged kubeconfig to [`ClusterAccess`]: select the context, check its cluster and
//! user, build the TLS configs and the credentials.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rustls_pki_types::ServerName;

use super::credentials::Credentials;
use super::endpoint::Endpoint;
use super::error::KubeconfigError;
use super::exec::ExecPlugin;
use super::load::{MergedConfig, Sourced};
use super::model::{Cluster, User};
use super::pem::certified_key;
use super::tls_config::{client_config, server_verifier, ClientCertificate, ServerTrust};
use super::{ClusterAccess, ResolveEnvironment, SelectedContext};

/// Builds access for `context` (or the current context) of `merged`.
pub(crate) fn from_merged(
    merged: &MergedConfig,
    context: Option<&str>,
    env: &ResolveEnvironment,
) -> Result<ClusterAccess, KubeconfigError> {
    let files = merged.files_label();
    let entry_error = |entry: String, message: String| KubeconfigError::Entry {
        source_files: files.clone(),
        entry,
        message,
    };

    let context_name = match context {
        Some(name) => name.to_string(),
        None => match &merged.current_context {
            Some(current) => current.value.clone(),
            None => {
                return Err(entry_error(
                    "current-context".into(),
                    format!(
                        "is not set; pass --context (defined contexts: {})",
                        names(merged.contexts.keys())
                    ),
                ))
            }
        },
    };
    let context_entry = merged.contexts.get(&context_name).ok_or_else(|| {
        entry_error(
            format!("context {context_name:?}"),
            format!(
                "is not defined (defined contexts: {})",
                names(merged.contexts.keys())
            ),
        )
    })?;
    let context_label = format!(
        "context {context_name:?} in {}",
        context_entry.file.display()
    );
    let cluster_name = context_entry.value.cluster.clone().unwrap_or_default();
    if cluster_name.is_empty() {
        return Err(entry_error(
            format!("context {context_name:?}"),
            "names no cluster".into(),
        ));
    }
    let cluster = merged.clusters.get(&cluster_name).ok_or_else(|| {
        entry_error(
            format!("context {context_name:?}"),
            format!(
                "refers to cluster {cluster_name:?}, which is not defined (defined clusters: {})",
                names(merged.clusters.keys())
            ),
        )
    })?;
    let user_name = context_entry.value.user.clone().unwrap_or_default();
    let user = if user_name.is_empty() {
        None
    } else {
        Some(merged.users.get(&user_name).ok_or_else(|| {
            entry_error(
                format!("context {context_name:?}"),
                format!(
                    "refers to user {user_name:?}, which is not defined (defined users: {})",
                    names(merged.users.keys())
                ),
            )
        })?)
    };

    let cluster_settings = ClusterSettings::read(&cluster_name, cluster)?;
    let (credentials, client_certificate) = match user {
        Some(user) => user_credentials(&user_name, user, &cluster_settings, env)?,
        None => (Credentials::anonymous(), ClientCertificate::None),
    };

    let cluster_error = |message: String| KubeconfigError::Entry {
        source_files: cluster.file.display().to_string(),
        entry: format!("cluster {cluster_name:?}"),
        message,
    };
    let (tls, tls_http1_only, server_name) = if cluster_settings.endpoint.https {
        let name_text = cluster_settings
            .tls_server_name
            .clone()
            .unwrap_or_else(|| cluster_settings.endpoint.host.clone());
        let server_name = ServerName::try_from(name_text.clone())
            .map_err(|_| cluster_error(format!("{name_text:?} is not a valid TLS server name")))?;
        let verifier = server_verifier(cluster_settings.trust())
            .map_err(|e| cluster_error(format!("{} {e}", cluster_settings.ca_label())))?;
        let tls = client_config(Arc::clone(&verifier), &client_certificate, false)
            .map_err(&cluster_error)?;
        let tls1 = client_config(verifier, &client_certificate, true).map_err(&cluster_error)?;
        (Some(tls), Some(tls1), Some(server_name))
    } else {
        (None, None, None)
    };

    Ok(ClusterAccess {
        server: cluster_settings.server.clone(),
        tls,
        tls_server_name: cluster_settings.tls_server_name.clone(),
        credentials,
        source: context_label,
        endpoint: cluster_settings.endpoint.clone(),
        selected: Some(SelectedContext {
            context: context_name,
            cluster: cluster_name,
            user: user_name,
            namespace: context_entry
                .value
                .namespace
                .clone()
                .filter(|n| !n.is_empty()),
        }),
        tls_http1_only,
        server_name,
    })
}

fn names<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let mut names: Vec<&str> = keys.map(String::as_str).collect();
    if names.is_empty() {
        return "none".into();
    }
    names.sort_unstable();
    names.join(", ")
}

/// A cluster entry, checked.
struct ClusterSettings {
    server: String,
    endpoint: Endpoint,
    tls_server_name: Option<String>,
    insecure: bool,
    /// CA PEM and where it came from.
    ca: Option<(Vec<u8>, String)>,
}

impl ClusterSettings {
    fn read(name: &str, sourced: &Sourced<Cluster>) -> Result<Self, KubeconfigError> {
        let cluster = &sourced.value;
        let file = sourced.file.display().to_string();
        let error = |message: String| KubeconfigError::Entry {
            source_files: file.clone(),
            entry: format!("cluster {name:?}"),
            message,
        };
        let server = cluster.server.clone().unwrap_or_default();
        if server.is_empty() {
            return Err(error(
                "has no server; set server: https://<host>:<port>".into(),
            ));
        }
        if cluster.proxy_url.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(error(
                "sets proxy-url, which kreplay does not support; reach the server directly \
                 (for example through a port-forward or tunnel)"
                    .into(),
            ));
        }
        let ca = match (
            non_empty(&cluster.certificate_authority_data),
            non_empty(&cluster.certificate_authority),
        ) {
            (Some(data), _) => Some((
                decode_base64(data)
                    .map_err(|e| error(format!("certificate-authority-data {e}")))?,
                format!("certificate-authority-data of cluster {name:?} in {file}"),
            )),
            (None, Some(path)) => Some((
                read_referenced(path)?,
                format!("certificate-authority {path} of cluster {name:?}"),
            )),
            (None, None) => None,
        };
        let insecure = cluster.insecure_skip_tls_verify.unwrap_or(false);
        if insecure && ca.is_some() {
            return Err(error(
                "sets insecure-skip-tls-verify together with a certificate-authority; \
                 specifying a root certificate with the insecure flag is not allowed"
                    .into(),
            ));
        }
        let tls_server_name = non_empty(&cluster.tls_server_name).map(str::to_string);
        let default_tls = ca.is_some() || insecure || tls_server_name.is_some();
        let endpoint = Endpoint::parse(&server, default_tls).map_err(error)?;
        Ok(Self {
            server,
            endpoint,
            tls_server_name,
            insecure,
            ca,
        })
    }

    fn trust(&self) -> ServerTrust {
        match (&self.ca, self.insecure) {
            (_, true) => ServerTrust::Insecure,
            (Some((pem, source)), false) => ServerTrust::CertificateAuthority {
                pem: pem.clone(),
                source: source.clone(),
            },
            (None, false) => ServerTrust::PublicRoots,
        }
    }

    fn ca_label(&self) -> String {
        match &self.ca {
            Some((_, source)) => source.clone(),
            None => "trust roots".into(),
        }
    }

    /// `spec.cluster` for exec plugins that ask for cluster info.
    fn exec_cluster_info(&self) -> serde_json::Value {
        let mut info = serde_json::json!({ "server": self.server });
        if let Some(name) = &self.tls_server_name {
            info["tls-server-name"] = name.clone().into();
        }
        if self.insecure {
            info["insecure-skip-tls-verify"] = true.into();
        }
        if let Some((pem, _)) = &self.ca {
            info["certificate-authority-data"] =
                base64::engine::general_purpose::STANDARD.encode(pem).into();
        }
        info
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn decode_base64(data: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| "is not valid base64".to_string())
}

fn read_referenced(path: &str) -> Result<Vec<u8>, KubeconfigError> {
    std::fs::read(path).map_err(|source| KubeconfigError::Read {
        path: Path::new(path).to_path_buf(),
        source,
    })
}

/// The user's credentials and client certificate.
fn user_credentials(
    name: &str,
    sourced: &Sourced<User>,
    cluster: &ClusterSettings,
    env: &ResolveEnvironment,
) -> Result<(Credentials, ClientCertificate), KubeconfigError> {
    let user = &sourced.value;
    let file = sourced.file.display().to_string();
    let origin = format!("user {name:?} in {file}");
    let error = |message: String| KubeconfigError::Entry {
        source_files: file.clone(),
        entry: format!("user {name:?}"),
        message,
    };
    if user.auth_provider.is_some() {
        return Err(error(
            "uses auth-provider, which kreplay does not support (client-go removed the built-in \
             providers); use an exec plugin instead"
                .into(),
        ));
    }
    if non_empty(&user.impersonate).is_some() {
        return Err(error(
            "sets as (impersonation), which kreplay does not support".into(),
        ));
    }

    let cert = match (
        non_empty(&user.client_certificate_data),
        non_empty(&user.client_certificate),
    ) {
        (Some(data), _) => {
            Some(decode_base64(data).map_err(|e| error(format!("client-certificate-data {e}")))?)
        }
        (None, Some(path)) => Some(read_referenced(path)?),
        (None, None) => None,
    };
    let key = match (
        non_empty(&user.client_key_data),
        non_empty(&user.client_key),
    ) {
        (Some(data), _) => {
            Some(decode_base64(data).map_err(|e| error(format!("client-key-data {e}")))?)
        }
        (None, Some(path)) => Some(read_referenced(path)?),
        (None, None) => None,
    };
    let mut client_certificate = match (cert, key) {
        (Some(cert), Some(key)) => {
            ClientCertificate::Static(certified_key(&cert, &key).map_err(error)?)
        }
        (None, None) => ClientCertificate::None,
        (Some(_), None) => return Err(error("has a client certificate but no client-key".into())),
        (None, Some(_)) => return Err(error("has a client-key but no client certificate".into())),
    };

    let token = non_empty(&user.token);
    let token_file = non_empty(&user.token_file);
    let basic = non_empty(&user.username).is_some() || non_empty(&user.password).is_some();
    if basic && (token.is_some() || token_file.is_some()) {
        return Err(error(
            "sets both username/password and a token; set only one of them".into(),
        ));
    }
    if user.exec.is_some() && (token.is_some() || token_file.is_some() || basic) {
        return Err(error(
            "sets an exec plugin together with token, tokenFile or username/password; set only one"
                .into(),
        ));
    }

    let credentials = if let Some(exec) = &user.exec {
        let plugin = Arc::new(ExecPlugin::new(
            exec.clone(),
            origin,
            Some(cluster.exec_cluster_info()),
        )?);
        // Run it now: a failing plugin must stop the run before the replay starts.
        let first = plugin.credential()?;
        if first.client_certificate.is_some()
            && matches!(client_certificate, ClientCertificate::None)
        {
            client_certificate = ClientCertificate::Exec(Arc::clone(&plugin));
        }
        Credentials::exec(plugin)
    } else if let Some(path) = token_file {
        // client-go: the token file, re-read as it rotates, wins over a static token.
        Credentials::token_file(Path::new(path), &origin, env.token_file_check_interval)?
    } else if let Some(token) = token {
        if token.chars().any(char::is_control) {
            return Err(error("token holds control characters".into()));
        }
        Credentials::bearer_token(token)
    } else if basic {
        Credentials::basic(
            user.username.as_deref().unwrap_or_default(),
            user.password.as_deref().unwrap_or_default(),
        )
    } else {
        Credentials::anonymous()
    };
    Ok((credentials, client_certificate))
}
