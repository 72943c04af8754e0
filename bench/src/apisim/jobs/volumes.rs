//! A container's volume mounts, laid out under the pod directory: where each lands (relative to the
//! container's workingDir) and what it holds (an empty directory, a Secret's or ConfigMap's keys as
//! files, or a link to the host directory of a PersistentVolumeClaim).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;

use super::podspec::{array, str_field, PlanContext, PodFailure};
use crate::apisim::store::metadata_str;

/// What a volume mount becomes under the pod directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VolumeContent {
    /// An empty directory.
    EmptyDir,
    /// A directory of files (secret, configMap): relative path and bytes.
    Files {
        /// Relative path and bytes of each file.
        files: Vec<(String, Vec<u8>)>,
        /// The volume's `defaultMode` (0600 when unset).
        mode: u32,
    },
    /// A symlink to a host directory (persistentVolumeClaim mapped by `--pvc`).
    Link(PathBuf),
}

/// A volume mount, relative to the pod directory ("" = the pod directory itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub relative: PathBuf,
    pub content: VolumeContent,
}

/// `mountPath` relative to the container's `workingDir` (unset: `/`); an error when it lies outside.
pub(crate) fn relative_mount(working_dir: &str, mount_path: &str) -> Result<PathBuf, String> {
    let normal = |path: &str| -> Result<Vec<String>, String> {
        let mut parts = Vec::new();
        for component in Path::new(path).components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(format!("path {path:?} must not contain '..'"))
                }
            }
        }
        Ok(parts)
    };
    if !mount_path.starts_with('/') {
        return Err(format!("mountPath {mount_path:?} must be absolute"));
    }
    let base = normal(if working_dir.is_empty() {
        "/"
    } else {
        working_dir
    })?;
    let target = normal(mount_path)?;
    match target.strip_prefix(base.as_slice()) {
        Some(rest) => Ok(rest.iter().collect()),
        None => Err(format!(
            "mountPath {mount_path:?} is outside the container's workingDir {working_dir:?}; apisim maps \
             only mounts at or under the workingDir into the pod directory"
        )),
    }
}

pub(crate) fn plan_mounts(
    pod: &Value,
    spec: &Value,
    container: &Value,
    ctx: &PlanContext<'_>,
) -> Result<Vec<Mount>, PodFailure> {
    let working_dir = str_field(container, "workingDir").unwrap_or("");
    let volumes = array(spec, "volumes");
    let namespace = metadata_str(pod, "namespace");
    let mut mounts = Vec::new();
    for (index, mount) in array(container, "volumeMounts").iter().enumerate() {
        let field = format!("spec.containers[0].volumeMounts[{index}]");
        let volume_name = str_field(mount, "name").unwrap_or("");
        let mount_path = str_field(mount, "mountPath").unwrap_or("");
        let mut relative = relative_mount(working_dir, mount_path)
            .map_err(|why| PodFailure::config(format!("{field}: {why}")))?;
        let volume = volumes
            .iter()
            .find(|v| str_field(v, "name") == Some(volume_name))
            .ok_or_else(|| {
                PodFailure::config(format!(
                    "{field}: no volume named {volume_name:?} in spec.volumes"
                ))
            })?;
        let sub_path = str_field(mount, "subPath").unwrap_or("");
        let content = if volume.get("emptyDir").is_some() {
            VolumeContent::EmptyDir
        } else if let Some(claim) = volume.get("persistentVolumeClaim") {
            let claim_name = str_field(claim, "claimName").unwrap_or("");
            let dir = ctx.pvcs.get(claim_name).ok_or_else(|| PodFailure {
                reason: "FailedMount",
                message: format!(
                    "volume {volume_name:?}: persistentVolumeClaim {claim_name:?} is not mapped to a \
                     directory (start apisim with --pvc {claim_name}=DIR)"
                ),
            })?;
            if relative.as_os_str().is_empty() {
                return Err(PodFailure::config(format!(
                    "{field}: a persistentVolumeClaim mounted at the workingDir itself cannot be mapped \
                     (mount it in a subdirectory)"
                )));
            }
            VolumeContent::Link(dir.join(sub_path))
        } else if let Some((collection, source, name_field, kind)) = [
            ("/secrets", "secret", "secretName", "secret"),
            ("/configmaps", "configMap", "name", "configmap"),
        ]
        .into_iter()
        .find_map(|(collection, key, name_field, kind)| {
            volume
                .get(key)
                .map(|source| (collection, source, name_field, kind))
        }) {
            let name = str_field(source, name_field).unwrap_or("");
            let optional = source.get("optional").and_then(Value::as_bool) == Some(true);
            let mode = source
                .get("defaultMode")
                .and_then(Value::as_u64)
                .map_or(0o600, |mode| (mode & 0o777) as u32);
            let files = match (ctx.lookup)(collection, name) {
                Some(object) => {
                    keyed_files(&object, array(source, "items")).map_err(|why| PodFailure {
                        reason: "FailedMount",
                        message: format!("volume {volume_name:?}: {kind} {name:?}: {why}"),
                    })?
                }
                None if optional => Vec::new(),
                None => {
                    return Err(PodFailure {
                        reason: "FailedMount",
                        message: format!(
                            "volume {volume_name:?}: {kind} {name:?} not found in namespace \
                             {namespace:?}"
                        ),
                    })
                }
            };
            if !sub_path.is_empty() {
                // A single key mounted as a file: the mount path is that file.
                let file = files.into_iter().find(|(path, _)| path == sub_path);
                let (_, bytes) = file.ok_or_else(|| PodFailure {
                    reason: "FailedMount",
                    message: format!(
                        "volume {volume_name:?}: subPath {sub_path:?} not in {kind} {name:?}"
                    ),
                })?;
                let file_name = relative
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                relative.pop();
                VolumeContent::Files {
                    files: vec![(file_name, bytes)],
                    mode,
                }
            } else {
                VolumeContent::Files { files, mode }
            }
        } else {
            return Err(PodFailure::config(format!(
                "volume {volume_name:?}: apisim supports emptyDir, secret, configMap and \
                 persistentVolumeClaim volumes"
            )));
        };
        mounts.push(Mount { relative, content });
    }
    Ok(mounts)
}

/// The files of a Secret or ConfigMap: `data` (base64 for Secrets, text for ConfigMaps),
/// `binaryData`, `stringData`; with `items`, only the listed keys at their paths.
pub(crate) fn keyed_files(
    object: &Value,
    items: &[Value],
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let is_secret = object.get("kind").and_then(Value::as_str) == Some("Secret");
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let entries = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
    };
    for (key, value) in entries("data") {
        let text = value.as_str().unwrap_or("");
        let bytes = if is_secret {
            BASE64
                .decode(text)
                .map_err(|e| format!("data[{key:?}] is not base64: {e}"))?
        } else {
            text.as_bytes().to_vec()
        };
        files.insert(key.clone(), bytes);
    }
    for (key, value) in entries("binaryData") {
        let bytes = BASE64
            .decode(value.as_str().unwrap_or(""))
            .map_err(|e| format!("binaryData[{key:?}] is not base64: {e}"))?;
        files.insert(key.clone(), bytes);
    }
    for (key, value) in entries("stringData") {
        files.insert(
            key.clone(),
            value.as_str().unwrap_or("").as_bytes().to_vec(),
        );
    }
    if items.is_empty() {
        return Ok(files.into_iter().collect());
    }
    items
        .iter()
        .map(|item| {
            let key = str_field(item, "key").unwrap_or("");
            let path = str_field(item, "path").unwrap_or(key);
            files
                .get(key)
                .map(|bytes| (path.to_string(), bytes.clone()))
                .ok_or_else(|| format!("items: key {key:?} not found"))
        })
        .collect()
}
