//! Cluster access like kubectl's: which kubeconfig file(s), which context, the cluster's server
//! and TLS settings, and the user's credentials; or the in-cluster service account when there is
//! no kubeconfig. Every problem is reported before any replay starts, naming the file and entry.

mod access;
mod credentials;
mod endpoint;
mod error;
mod exec;
mod flags;
mod in_cluster;
mod load;
mod model;
mod pem;
mod tls_config;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

pub use credentials::{Credentials, TOKEN_FILE_CHECK_INTERVAL};
pub use endpoint::Endpoint;
pub use error::{CredentialError, KubeconfigError};
pub use exec::EXEC_REFRESH_MARGIN;
pub use flags::{from_flags, ServerFlags};

/// What the user asked for on the command line.
#[derive(Clone, Debug, Default)]
pub struct KubeconfigOptions {
    /// `--kubeconfig`: this file only (it must exist).
    pub kubeconfig: Option<PathBuf>,
    /// `--context`: instead of the kubeconfig's `current-context`.
    pub context: Option<String>,
}

/// The process environment resolution depends on, injectable for tests.
#[derive(Clone, Debug)]
pub struct ResolveEnvironment {
    /// The `KUBECONFIG` variable (colon-separated list).
    pub kubeconfig_env: Option<OsString>,
    /// The home directory (`~/.kube/config`).
    pub home: Option<PathBuf>,
    /// Where the service-account `token` and `ca.crt` are mounted.
    pub in_cluster_root: PathBuf,
    /// `KUBERNETES_SERVICE_HOST`.
    pub service_host: Option<String>,
    /// `KUBERNETES_SERVICE_PORT`.
    pub service_port: Option<String>,
    /// How often token files are checked for rotation at most.
    pub token_file_check_interval: Duration,
}

/// The standard service-account mount.
pub const IN_CLUSTER_ROOT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Relocates the service-account mount, for runners that are not real pods (apisim's
/// `--run-jobs` runs each pod as a local process and puts the token and CA here).
pub const SERVICE_ACCOUNT_DIR_ENV: &str = "KREPLAY_SERVICE_ACCOUNT_DIR";

impl ResolveEnvironment {
    /// The environment of this process.
    pub fn from_process() -> Self {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            kubeconfig_env: std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            in_cluster_root: std::env::var_os(SERVICE_ACCOUNT_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(IN_CLUSTER_ROOT), PathBuf::from),
            service_host: non_empty("KUBERNETES_SERVICE_HOST"),
            service_port: non_empty("KUBERNETES_SERVICE_PORT"),
            token_file_check_interval: TOKEN_FILE_CHECK_INTERVAL,
        }
    }
}

/// Names of the selected kubeconfig entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedContext {
    /// The context.
    pub context: String,
    /// Its cluster.
    pub cluster: String,
    /// Its user (empty: anonymous).
    pub user: String,
    /// Its namespace, if any.
    pub namespace: Option<String>,
}

/// Everything needed to talk to the cluster.
#[derive(Clone)]
pub struct ClusterAccess {
    /// The server URL as written in the kubeconfig (in-cluster: `https://host:port`).
    pub server: String,
    /// TLS settings for `https` servers, offering ALPN `h2` and `http/1.1`.
    pub tls: Option<Arc<ClientConfig>>,
    /// The kubeconfig's `tls-server-name`, when set.
    pub tls_server_name: Option<String>,
    /// The user's credentials.
    pub credentials: Credentials,
    /// Where this came from, for messages (`context "x" in /path/config`, `in-cluster …`).
    pub source: String,
    /// The parsed server address.
    pub endpoint: Endpoint,
    /// The selected context, cluster and user (`None` in-cluster).
    pub selected: Option<SelectedContext>,
    tls_http1_only: Option<Arc<ClientConfig>>,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for ClusterAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAccess")
            .field("server", &self.server)
            .field("tls", &self.tls.is_some())
            .field("tls_server_name", &self.tls_server_name)
            .field("credentials", &self.credentials)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl ClusterAccess {
    /// The TLS config to use (`None` for `http://` servers): ALPN `h2`+`http/1.1`, or
    /// `http/1.1` only when `http1_only`.
    pub fn tls_config(&self, http1_only: bool) -> Option<Arc<ClientConfig>> {
        if http1_only {
            self.tls_http1_only.clone()
        } else {
            self.tls.clone()
        }
    }

    /// The name the server certificate is checked against (`tls-server-name`, else the host).
    pub fn server_name(&self) -> Option<&ServerName<'static>> {
        self.server_name.as_ref()
    }

    /// What [`crate::transport::connect`] takes for this cluster: `None` for `http://`.
    pub fn tls_target(&self, http1_only: bool) -> Option<(Arc<ClientConfig>, ServerName<'static>)> {
        Some((self.tls_config(http1_only)?, self.server_name.clone()?))
    }
}

/// Resolves cluster access from the process environment, like kubectl.
pub fn resolve(opts: &KubeconfigOptions) -> Result<ClusterAccess, KubeconfigError> {
    resolve_with(opts, &ResolveEnvironment::from_process())
}

/// Resolves cluster access: `--kubeconfig`, else the `KUBECONFIG` list (missing files skipped,
/// as kubectl does), else `~/.kube/config`; with no file at all, the in-cluster service account.
pub fn resolve_with(
    opts: &KubeconfigOptions,
    env: &ResolveEnvironment,
) -> Result<ClusterAccess, KubeconfigError> {
    let (files, tried) = kubeconfig_files(opts, env)?;
    if files.is_empty() {
        if let Some(context) = &opts.context {
            return Err(KubeconfigError::Entry {
                source_files: tried,
                entry: format!("context {context:?}"),
                message: "was requested but no kubeconfig file exists".into(),
            });
        }
        return in_cluster::resolve(env, &tried);
    }
    let merged = load::load_and_merge(&files)?;
    access::from_merged(&merged, opts.context.as_deref(), env)
}

/// Reads and merges the kubeconfig files `paths` (first definition wins) without selecting a
/// context or touching credentials: the syntax and structure checks alone, which never read a
/// referenced file or run a plugin. For checking untrusted kubeconfig files (and fuzzing).
pub fn check_kubeconfig_files(paths: &[PathBuf]) -> Result<(), KubeconfigError> {
    load::load_and_merge(paths).map(|_| ())
}

/// Checks `stdout` as the engine reads an exec plugin's output for a plugin configured with
/// `api_version`: an ExecCredential with a token and/or a client certificate and key. Returns
/// whether it carried a token and whether it carried a client certificate. For diagnosing a
/// plugin's output without running it (and fuzzing).
pub fn check_exec_credential(
    api_version: &str,
    stdout: &[u8],
) -> Result<(bool, bool), CredentialError> {
    exec::check_output(api_version, stdout)
}

/// The kubeconfig files to load, and a description of where was looked (for messages).
fn kubeconfig_files(
    opts: &KubeconfigOptions,
    env: &ResolveEnvironment,
) -> Result<(Vec<PathBuf>, String), KubeconfigError> {
    if let Some(path) = &opts.kubeconfig {
        if let Err(source) = std::fs::metadata(path) {
            return Err(KubeconfigError::Read {
                path: path.clone(),
                source,
            });
        }
        return Ok((
            vec![path.clone()],
            format!("--kubeconfig {}", path.display()),
        ));
    }
    if let Some(list) = &env.kubeconfig_env {
        let listed = load::split_kubeconfig_env(list);
        let existing: Vec<PathBuf> = listed.iter().filter(|p| p.exists()).cloned().collect();
        return Ok((existing, format!("KUBECONFIG={}", list.to_string_lossy())));
    }
    match &env.home {
        Some(home) => {
            let path = home.join(".kube").join("config");
            let tried = path.display().to_string();
            Ok((if path.exists() { vec![path] } else { vec![] }, tried))
        }
        None => Ok((vec![], "HOME is not set, so no ~/.kube/config".into())),
    }
}
