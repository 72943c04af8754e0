//! Finding, reading and merging kubeconfig files by kubectl's rules: for each map entry
//! (cluster, user, context) the first file that defines the name wins and entries are never
//! merged field by field; `current-context` comes from the first file that sets it; relative
//! paths are resolved against the directory of the file that names them.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::error::KubeconfigError;
use super::model::{Cluster, ConfigFile, Context, User};

/// An entry together with the file that defined it (for messages and relative paths).
#[derive(Debug)]
pub(crate) struct Sourced<T> {
    pub value: T,
    pub file: PathBuf,
}

/// The merged view of one or more kubeconfig files.
#[derive(Debug, Default)]
pub(crate) struct MergedConfig {
    pub files: Vec<PathBuf>,
    pub clusters: HashMap<String, Sourced<Cluster>>,
    pub users: HashMap<String, Sourced<User>>,
    pub contexts: HashMap<String, Sourced<Context>>,
    pub current_context: Option<Sourced<String>>,
}

impl MergedConfig {
    /// The files, for messages: `a` or `a:b:c`.
    pub fn files_label(&self) -> String {
        let shown: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        shown.join(":")
    }
}

/// The files named by a KUBECONFIG value, in order, duplicates and empty entries removed.
pub(crate) fn split_kubeconfig_env(value: &OsString) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for path in std::env::split_paths(value) {
        if path.as_os_str().is_empty() || files.contains(&path) {
            continue;
        }
        files.push(path);
    }
    files
}

/// Reads and merges `paths` in order (first definition wins).
pub(crate) fn load_and_merge(paths: &[PathBuf]) -> Result<MergedConfig, KubeconfigError> {
    let mut merged = MergedConfig::default();
    for path in paths {
        let file = read_file(path)?;
        merge_file(&mut merged, path, file)?;
        merged.files.push(path.clone());
    }
    Ok(merged)
}

fn read_file(path: &Path) -> Result<ConfigFile, KubeconfigError> {
    let bytes = std::fs::read(path).map_err(|source| KubeconfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| KubeconfigError::Parse {
        path: path.to_path_buf(),
        message: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })?;
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_saphyr::from_str::<ConfigFile>(&text).map_err(|e| KubeconfigError::Parse {
        path: path.to_path_buf(),
        message: redact_quoted(&e.render_with_options(serde_saphyr::render_options! {
            snippets: serde_saphyr::SnippetMode::Off,
        })),
    })
}

/// Parser messages may quote the offending value, which could be a misplaced secret: keep the
/// structure of the message, drop the quoted text.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_quote = false;
    for c in message.chars() {
        if c == '"' || c == '`' {
            if !in_quote {
                out.push_str("\"…\"");
            }
            in_quote = !in_quote;
        } else if !in_quote {
            out.push(c);
        }
    }
    out
}

fn merge_file(
    merged: &mut MergedConfig,
    path: &Path,
    file: ConfigFile,
) -> Result<(), KubeconfigError> {
    let dir = base_dir(path);
    let duplicate = |kind: &str, name: &str| KubeconfigError::Entry {
        source_files: path.display().to_string(),
        entry: format!("{kind} {name:?}"),
        message: format!("defined twice in this file; each {kind} name must be unique"),
    };

    let mut seen = Vec::new();
    for named in file.clusters.unwrap_or_default() {
        if seen.contains(&named.name) {
            return Err(duplicate("cluster", &named.name));
        }
        seen.push(named.name.clone());
        let mut cluster = named.cluster.unwrap_or_default();
        resolve_path(&mut cluster.certificate_authority, &dir);
        merged.clusters.entry(named.name).or_insert(Sourced {
            value: cluster,
            file: path.to_path_buf(),
        });
    }
    seen.clear();
    for named in file.users.unwrap_or_default() {
        if seen.contains(&named.name) {
            return Err(duplicate("user", &named.name));
        }
        seen.push(named.name.clone());
        let mut user = named.user.unwrap_or_default();
        resolve_path(&mut user.client_certificate, &dir);
        resolve_path(&mut user.client_key, &dir);
        resolve_path(&mut user.token_file, &dir);
        if let Some(exec) = user.exec.as_mut() {
            // kubectl resolves the command only when it is a path, not a name looked up in PATH.
            if exec.command.contains('/') {
                let mut command = Some(std::mem::take(&mut exec.command));
                resolve_path(&mut command, &dir);
                exec.command = command.unwrap_or_default();
            }
        }
        merged.users.entry(named.name).or_insert(Sourced {
            value: user,
            file: path.to_path_buf(),
        });
    }
    seen.clear();
    for named in file.contexts.unwrap_or_default() {
        if seen.contains(&named.name) {
            return Err(duplicate("context", &named.name));
        }
        seen.push(named.name.clone());
        merged.contexts.entry(named.name).or_insert(Sourced {
            value: named.context.unwrap_or_default(),
            file: path.to_path_buf(),
        });
    }
    if merged.current_context.is_none() {
        if let Some(current) = file.current_context.filter(|c| !c.is_empty()) {
            merged.current_context = Some(Sourced {
                value: current,
                file: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// The absolute directory of a kubeconfig file, against which its relative paths resolve.
fn base_dir(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn resolve_path(value: &mut Option<String>, dir: &Path) {
    if let Some(text) = value.as_mut() {
        if !text.is_empty() && Path::new(text.as_str()).is_relative() {
            *text = dir.join(text.as_str()).display().to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_env_list_drops_empty_and_duplicate_entries() {
        let files = split_kubeconfig_env(&OsString::from("/a::/b:/a"));
        assert_eq!(files, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    }

    #[test]
    fn quoted_values_are_removed_from_parser_messages() {
        assert_eq!(
            redact_quoted("invalid type: string \"s3cret\", expected a boolean"),
            "invalid type: string \"…\", expected a boolean"
        );
    }
}
