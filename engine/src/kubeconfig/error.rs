//! Errors of kubeconfig resolution and of credentials. Messages name the file and the entry and
//! never contain a secret.

use std::io;
use std::path::PathBuf;

/// Why the cluster could not be resolved from the kubeconfig (or in-cluster configuration).
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// A kubeconfig file (or a file it names) could not be read.
    #[error("kubeconfig {path}: cannot read: {source}", path = .path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A kubeconfig file is not valid YAML/JSON of the kubeconfig shape.
    #[error("kubeconfig {path}: {message}", path = .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (line, column); quoted values are elided.
        message: String,
    },
    /// No kubeconfig was found and the process is not running inside a cluster.
    #[error("no kubeconfig found ({tried}) and not running inside a cluster ({in_cluster}); pass --kubeconfig")]
    NotFound {
        /// The places that were looked at.
        tried: String,
        /// Why in-cluster configuration does not apply.
        in_cluster: String,
    },
    /// An entry of the kubeconfig is missing, unknown or invalid.
    #[error("kubeconfig {source_files}: {entry}: {message}")]
    Entry {
        /// The file(s) the entry was looked up in.
        source_files: String,
        /// The entry, e.g. `cluster "prod"` or `context "dev"`.
        entry: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// The credentials of the selected user could not be obtained.
    #[error(transparent)]
    Credential(#[from] CredentialError),
}

/// Why credentials could not be obtained or refreshed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The token file could not be read or is empty.
    #[error("{origin}: tokenFile {path}: {message}", path = .path.display())]
    TokenFile {
        /// The kubeconfig user (or in-cluster account) that names the file.
        origin: String,
        /// The token file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The exec plugin's command does not exist.
    #[error("{origin}: exec plugin command {command:?} not found{hint}", hint = install_hint_suffix(.install_hint))]
    ExecNotFound {
        /// The kubeconfig user that configures the plugin.
        origin: String,
        /// The command.
        command: String,
        /// The plugin's `installHint`, shown to the user.
        install_hint: Option<String>,
    },
    /// The exec plugin could not run, failed, or printed something that is not a usable credential.
    #[error("{origin}: exec plugin {command:?}: {message}")]
    Exec {
        /// The kubeconfig user that configures the plugin.
        origin: String,
        /// The command.
        command: String,
        /// What went wrong (never the plugin's output).
        message: String,
    },
}

fn install_hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(hint) if !hint.trim().is_empty() => format!("; {}", hint.trim()),
        _ => String::new(),
    }
}
