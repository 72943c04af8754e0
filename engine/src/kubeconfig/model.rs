//! The kubeconfig file as written on disk (client-go's `v1.Config`), only the fields kreplay
//! reads. Unknown fields are ignored, as kubectl ignores them.

use serde::Deserialize;

/// One kubeconfig file.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConfigFile {
    #[serde(default)]
    pub clusters: Option<Vec<NamedCluster>>,
    #[serde(default)]
    pub users: Option<Vec<NamedUser>>,
    #[serde(default)]
    pub contexts: Option<Vec<NamedContext>>,
    #[serde(default, rename = "current-context")]
    pub current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NamedCluster {
    pub name: String,
    #[serde(default)]
    pub cluster: Option<Cluster>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NamedUser {
    pub name: String,
    #[serde(default)]
    pub user: Option<User>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NamedContext {
    pub name: String,
    #[serde(default)]
    pub context: Option<Context>,
}

/// How to reach one API server.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct Cluster {
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub certificate_authority: Option<String>,
    #[serde(default)]
    pub certificate_authority_data: Option<String>,
    #[serde(default)]
    pub insecure_skip_tls_verify: Option<bool>,
    #[serde(default)]
    pub tls_server_name: Option<String>,
    #[serde(default)]
    pub proxy_url: Option<String>,
}

/// How to authenticate. Secrets stay in here only until credentials are built.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct User {
    #[serde(default)]
    pub client_certificate: Option<String>,
    #[serde(default)]
    pub client_certificate_data: Option<String>,
    #[serde(default)]
    pub client_key: Option<String>,
    #[serde(default)]
    pub client_key_data: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default, rename = "tokenFile")]
    pub token_file: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub exec: Option<ExecConfig>,
    #[serde(default)]
    pub auth_provider: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "as")]
    pub impersonate: Option<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("User { .. }")
    }
}

/// Which cluster and user a context joins.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Context {
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// An exec credential plugin (client.authentication.k8s.io).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExecConfig {
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<ExecEnvVar>>,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub install_hint: Option<String>,
    #[serde(default)]
    pub provide_cluster_info: Option<bool>,
    #[serde(default)]
    pub interactive_mode: Option<String>,
}

/// One environment variable given to an exec plugin.
#[derive(Clone, Deserialize)]
pub(crate) struct ExecEnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

impl std::fmt::Debug for ExecEnvVar {
    // Plugin env values are often secrets (client secrets, passwords).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExecEnvVar {{ name: {:?}, .. }}", self.name)
    }
}
