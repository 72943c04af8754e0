//! From a Pod object to what its local process needs: the program and arguments, the environment, the
//! remapped ports and the volumes laid out under the pod directory. Pure: the store and the port
//! allocator come in as functions, so every rule is unit-tested here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::volumes::{keyed_files, plan_mounts, Mount};
use crate::apisim::store::metadata_str;

/// Why a pod cannot run: its `reason` (a Kubernetes-style word) and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodFailure {
    pub reason: &'static str,
    pub message: String,
}

impl PodFailure {
    pub(crate) fn config(message: String) -> Self {
        PodFailure {
            reason: "CreateContainerConfigError",
            message,
        }
    }
}

/// One `ports[]` entry of the container and the 127.0.0.1 port apisim chose for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortMap {
    pub name: Option<String>,
    pub container_port: u16,
    pub host_port: u16,
}

/// The local process of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    pub container: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub ports: Vec<PortMap>,
    pub mounts: Vec<Mount>,
}

/// What the kubelet knows besides the pod.
pub(crate) struct PlanContext<'a> {
    /// `--run-jobs ENTRYPOINT`.
    pub entrypoint: &'a Path,
    /// `--pvc NAME=DIR`.
    pub pvcs: &'a BTreeMap<String, PathBuf>,
    /// Variables Kubernetes sets before the container's own (service host/port, service-account dir).
    pub base_env: Vec<(String, String)>,
    /// Reads an object of the pod's namespace: (collection `/secrets` or `/configmaps`, name).
    pub lookup: &'a dyn Fn(&str, &str) -> Option<Value>,
    /// Picks a free 127.0.0.1 port.
    pub free_port: &'a mut dyn FnMut() -> std::io::Result<u16>,
}

/// Plans the pod's first container. Errors name the field and what would be valid.
pub(crate) fn plan(pod: &Value, ctx: PlanContext<'_>) -> Result<Launch, PodFailure> {
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let container = match containers.as_slice() {
        [one] => one,
        [] => return Err(PodFailure::config("spec.containers is empty".to_string())),
        _ => {
            return Err(PodFailure::config(format!(
                "spec.containers has {} containers; apisim runs pods of exactly one container",
                containers.len()
            )))
        }
    };
    if spec
        .get("initContainers")
        .and_then(Value::as_array)
        .is_some_and(|list| !list.is_empty())
    {
        return Err(PodFailure::config(
            "spec.initContainers: apisim does not run init containers".to_string(),
        ));
    }
    let name = str_field(container, "name").unwrap_or("").to_string();
    let ports = map_ports(container, ctx.free_port)?;
    let mut env = ctx.base_env.clone();
    let set = |env: &mut Vec<(String, String)>, name: &str, value: String| {
        env.retain(|(existing, _)| existing != name);
        env.push((name.to_string(), value));
    };
    // As in Kubernetes: `envFrom` first, then `env`, later definitions winning.
    for (name, value) in env_from(pod, container, ctx.lookup)? {
        let value = rewrite_port(&value, &ports).unwrap_or(value);
        set(&mut env, &name, value);
    }
    for (index, var) in array(container, "env").iter().enumerate() {
        let var_name = str_field(var, "name").ok_or_else(|| {
            PodFailure::config(format!("spec.containers[0].env[{index}].name is missing"))
        })?;
        let value = env_value(pod, var, index, ctx.lookup)?;
        let value = expand(&value, &env);
        let value = rewrite_port(&value, &ports).unwrap_or(value);
        set(&mut env, var_name, value);
    }
    let strings = |field: &str| -> Vec<String> {
        array(container, field)
            .iter()
            .map(|item| expand(item.as_str().unwrap_or(""), &env))
            .collect()
    };
    let command = strings("command");
    let mut args = strings("args");
    let program = match command.split_first() {
        None => ctx.entrypoint.to_path_buf(),
        Some((first, rest)) => {
            let base = Path::new(first).file_name().ok_or_else(|| {
                PodFailure::config(format!(
                    "spec.containers[0].command[0] {first:?} names no file"
                ))
            })?;
            let mut full = rest.to_vec();
            full.append(&mut args);
            args = full;
            ctx.entrypoint.parent().unwrap_or(Path::new(".")).join(base)
        }
    };
    let mounts = plan_mounts(pod, &spec, container, &ctx)?;
    Ok(Launch {
        container: name,
        program,
        args,
        env,
        ports,
        mounts,
    })
}

pub(crate) fn array<'a>(value: &'a Value, field: &str) -> &'a [Value] {
    value
        .get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(crate) fn str_field<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str)
}

fn map_ports(
    container: &Value,
    free_port: &mut dyn FnMut() -> std::io::Result<u16>,
) -> Result<Vec<PortMap>, PodFailure> {
    let mut ports = Vec::new();
    for (index, port) in array(container, "ports").iter().enumerate() {
        let container_port = port
            .get("containerPort")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                PodFailure::config(format!(
                    "spec.containers[0].ports[{index}].containerPort must be a port number 1-65535"
                ))
            })?;
        let host_port = free_port().map_err(|error| PodFailure {
            reason: "StartError",
            message: format!("no free 127.0.0.1 port for containerPort {container_port}: {error}"),
        })?;
        ports.push(PortMap {
            name: str_field(port, "name").map(str::to_string),
            container_port,
            host_port,
        });
    }
    Ok(ports)
}

/// An env var's value: `value`, or `valueFrom` (`fieldRef`, `secretKeyRef`, `configMapKeyRef`).
fn env_value(
    pod: &Value,
    var: &Value,
    index: usize,
    lookup: &dyn Fn(&str, &str) -> Option<Value>,
) -> Result<String, PodFailure> {
    let field = |what: &str| format!("spec.containers[0].env[{index}].{what}");
    let Some(from) = var.get("valueFrom") else {
        return Ok(str_field(var, "value").unwrap_or("").to_string());
    };
    if let Some(path) = from.get("fieldRef").and_then(|r| str_field(r, "fieldPath")) {
        return field_ref(pod, path).ok_or_else(|| {
            PodFailure::config(format!(
                "{}: unsupported fieldPath {path:?} (apisim knows metadata.name, metadata.namespace, \
                 metadata.uid, metadata.labels['K'], metadata.annotations['K'], spec.nodeName, \
                 spec.serviceAccountName, status.podIP, status.hostIP)",
                field("valueFrom.fieldRef")
            ))
        });
    }
    for (reference, collection, kind) in [
        ("secretKeyRef", "/secrets", "secret"),
        ("configMapKeyRef", "/configmaps", "configmap"),
    ] {
        let Some(key_ref) = from.get(reference) else {
            continue;
        };
        let name = str_field(key_ref, "name").unwrap_or("");
        let key = str_field(key_ref, "key").unwrap_or("");
        let optional = key_ref.get("optional").and_then(Value::as_bool) == Some(true);
        let files = lookup(collection, name).map(|object| keyed_files(&object, &[]));
        let value = match files {
            Some(Ok(files)) => files
                .into_iter()
                .find(|(file, _)| file == key)
                .map(|(_, bytes)| String::from_utf8_lossy(&bytes).into_owned()),
            Some(Err(message)) => {
                return Err(PodFailure::config(format!(
                    "{}: {kind} {name:?}: {message}",
                    field(&format!("valueFrom.{reference}"))
                )))
            }
            None => None,
        };
        return match value {
            Some(value) => Ok(value),
            None if optional => Ok(String::new()),
            None => Err(PodFailure::config(format!(
                "{}: key {key:?} of {kind} {name:?} not found in namespace {:?}",
                field(&format!("valueFrom.{reference}")),
                metadata_str(pod, "namespace")
            ))),
        };
    }
    Err(PodFailure::config(format!(
        "{}: apisim supports fieldRef, secretKeyRef and configMapKeyRef",
        field("valueFrom")
    )))
}

/// The variables of `envFrom`: every key of each `secretRef` / `configMapRef`, with its `prefix`.
fn env_from(
    pod: &Value,
    container: &Value,
    lookup: &dyn Fn(&str, &str) -> Option<Value>,
) -> Result<Vec<(String, String)>, PodFailure> {
    let mut vars = Vec::new();
    for (index, source) in array(container, "envFrom").iter().enumerate() {
        let prefix = str_field(source, "prefix").unwrap_or("");
        let (collection, reference, kind) = if let Some(r) = source.get("secretRef") {
            ("/secrets", r, "secret")
        } else if let Some(r) = source.get("configMapRef") {
            ("/configmaps", r, "configmap")
        } else {
            return Err(PodFailure::config(format!(
                "spec.containers[0].envFrom[{index}]: expected secretRef or configMapRef"
            )));
        };
        let name = str_field(reference, "name").unwrap_or("");
        let optional = reference.get("optional").and_then(Value::as_bool) == Some(true);
        let files = match lookup(collection, name) {
            Some(object) => keyed_files(&object, &[]).map_err(|why| {
                PodFailure::config(format!(
                    "spec.containers[0].envFrom[{index}]: {kind} {name:?}: {why}"
                ))
            })?,
            None if optional => Vec::new(),
            None => {
                let namespace = metadata_str(pod, "namespace");
                return Err(PodFailure::config(format!(
                    "spec.containers[0].envFrom[{index}]: {kind} {name:?} not found in namespace \
                     {namespace:?}"
                )));
            }
        };
        for (key, bytes) in files {
            vars.push((
                format!("{prefix}{key}"),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    Ok(vars)
}

/// The value of a downward-API `fieldPath`.
fn field_ref(pod: &Value, path: &str) -> Option<String> {
    let quoted_key = |prefix: &str| {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .or_else(|| path.strip_prefix(prefix)?.strip_suffix("\"]"))
            .map(|key| key.trim_start_matches(['\'', '"']).to_string())
    };
    if let Some(key) = quoted_key("metadata.labels[") {
        return Some(map_entry(pod, "labels", &key));
    }
    if let Some(key) = quoted_key("metadata.annotations[") {
        return Some(map_entry(pod, "annotations", &key));
    }
    match path {
        "metadata.name" | "metadata.namespace" | "metadata.uid" => {
            Some(metadata_str(pod, &path["metadata.".len()..]).to_string())
        }
        "spec.nodeName" | "spec.serviceAccountName" => Some(
            pod.pointer(&format!("/spec/{}", &path["spec.".len()..]))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        "status.podIP" | "status.hostIP" => Some("127.0.0.1".to_string()),
        _ => None,
    }
}

fn map_entry(pod: &Value, map: &str, key: &str) -> String {
    pod.get("metadata")
        .and_then(|m| m.get(map))
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Kubernetes' `$(VAR)` expansion: references to defined variables are replaced, `$$` is a literal `$`,
/// anything else is kept as written.
pub(crate) fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.iter().rev().find(|(key, _)| key == name) {
                        Some((_, value)) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str(&rest[at..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `HOST:<containerPort>` at the end of a value becomes `127.0.0.1:<host port>` (a scheme or `user@`
/// before the host is kept); None when the value does not end in a container port.
pub(crate) fn rewrite_port(value: &str, ports: &[PortMap]) -> Option<String> {
    let (head, port) = value.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u16 = port.parse().ok()?;
    let mapped = ports.iter().find(|p| p.container_port == number)?;
    if port != mapped.container_port.to_string() {
        return None;
    }
    let host_start = head.rfind(['/', '@', '=', ' ']).map_or(0, |at| at + 1);
    Some(format!(
        "{}127.0.0.1:{}",
        &head[..host_start],
        mapped.host_port
    ))
}

#[cfg(test)]
mod tests {
    use super::super::volumes::{relative_mount, VolumeContent};
    use super::*;
    use serde_json::json;

    fn pod(container: Value, volumes: Value) -> Value {
        json!({
            "metadata": {"name": "j-0-abcde", "namespace": "ns", "uid": "u1",
                         "labels": {"app": "x"}, "annotations": {"batch.kubernetes.io/job-completion-index": "0"}},
            "spec": {"containers": [container], "volumes": volumes, "nodeName": "apisim"}
        })
    }

    fn run_plan(pod: &Value, pvcs: &BTreeMap<String, PathBuf>) -> Result<Launch, PodFailure> {
        let lookup = |collection: &str, name: &str| match (collection, name) {
            ("/secrets", "creds") => Some(json!({"kind": "Secret", "data": {"token": "c2VjcmV0"},
                                                 "stringData": {"plain": "text"}})),
            _ => None,
        };
        let mut next = 40000u16;
        let mut free_port = || {
            next += 1;
            Ok(next)
        };
        plan(
            pod,
            PlanContext {
                entrypoint: Path::new("/opt/bin/engine"),
                pvcs,
                base_env: vec![("KUBERNETES_SERVICE_PORT".into(), "6443".into())],
                lookup: &lookup,
                free_port: &mut free_port,
            },
        )
    }

    fn env_of<'a>(launch: &'a Launch, name: &str) -> Option<&'a str> {
        launch
            .env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn command_resolves_by_basename_and_args_follow() {
        let launch = run_plan(
            &pod(
                json!({"name": "c", "command": ["/usr/local/bin/engine", "run"], "args": ["--index=$(IDX)", "$$(IDX)"],
                       "env": [{"name": "IDX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]}),
                json!([]),
            ),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(launch.program, Path::new("/opt/bin/engine"));
        assert_eq!(launch.args, ["run", "--index=0", "$(IDX)"]);
        let without = run_plan(
            &pod(json!({"name": "c", "args": ["a"]}), json!([])),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(without.program, Path::new("/opt/bin/engine"));
        assert_eq!(without.args, ["a"]);
    }

    #[test]
    fn env_from_fields_secrets_and_remapped_ports() {
        let launch = run_plan(
            &pod(
                json!({"name": "c", "ports": [{"name": "report", "containerPort": 8086}],
                       "env": [{"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                               {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                               {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                               {"name": "LISTEN", "value": "0.0.0.0:8086"},
                               {"name": "URL", "value": "http://localhost:8086"},
                               {"name": "OTHER", "value": "0.0.0.0:80860"}]}),
                json!([]),
            ),
            &BTreeMap::new(),
        )
        .unwrap();
        let get = |name: &str| env_of(&launch, name).map(str::to_string);
        assert_eq!(get("NAME").as_deref(), Some("j-0-abcde"));
        assert_eq!(get("APP").as_deref(), Some("x"));
        assert_eq!(get("TOKEN").as_deref(), Some("secret"));
        assert_eq!(get("LISTEN").as_deref(), Some("127.0.0.1:40001"));
        assert_eq!(get("URL").as_deref(), Some("http://127.0.0.1:40001"));
        assert_eq!(get("OTHER").as_deref(), Some("0.0.0.0:80860"));
        assert_eq!(get("KUBERNETES_SERVICE_PORT").as_deref(), Some("6443"));
        assert_eq!(launch.ports[0].name.as_deref(), Some("report"));
    }

    #[test]
    fn env_from_a_secret_with_prefix_and_env_wins() {
        let launch = run_plan(
            &pod(
                json!({"name": "c", "envFrom": [{"secretRef": {"name": "creds"}, "prefix": "S_"}],
                       "env": [{"name": "S_plain", "value": "override"}]}),
                json!([]),
            ),
            &BTreeMap::new(),
        )
        .unwrap();
        let get = |name: &str| env_of(&launch, name);
        assert_eq!(get("S_token"), Some("secret"));
        assert_eq!(get("S_plain"), Some("override"));
        let missing = run_plan(
            &pod(
                json!({"name": "c", "envFrom": [{"configMapRef": {"name": "absent"}}]}),
                json!([]),
            ),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            missing.message.contains("configmap \"absent\" not found"),
            "{missing:?}"
        );
    }

    #[test]
    fn volumes_map_under_the_working_dir() {
        let mut pvcs = BTreeMap::new();
        pvcs.insert("data".to_string(), PathBuf::from("/srv/data"));
        let launch = run_plan(
            &pod(
                json!({"name": "c", "workingDir": "/work",
                       "volumeMounts": [{"name": "scratch", "mountPath": "/work/tmp"},
                                        {"name": "sec", "mountPath": "/work/secret"},
                                        {"name": "pv", "mountPath": "/work/pv"}]}),
                json!([{"name": "scratch", "emptyDir": {}},
                       {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                       {"name": "pv", "persistentVolumeClaim": {"claimName": "data"}}]),
            ),
            &pvcs,
        )
        .unwrap();
        assert_eq!(launch.mounts[0].relative, Path::new("tmp"));
        assert_eq!(launch.mounts[0].content, VolumeContent::EmptyDir);
        assert_eq!(
            launch.mounts[1].content,
            VolumeContent::Files {
                files: vec![
                    ("plain".to_string(), b"text".to_vec()),
                    ("token".to_string(), b"secret".to_vec())
                ],
                mode: 0o400
            }
        );
        assert_eq!(
            launch.mounts[2].content,
            VolumeContent::Link(PathBuf::from("/srv/data"))
        );
    }

    #[test]
    fn missing_secret_unmapped_claim_and_outside_mounts_fail_clearly() {
        let missing = run_plan(
            &pod(
                json!({"name": "c", "volumeMounts": [{"name": "sec", "mountPath": "/s"}]}),
                json!([{"name": "sec", "secret": {"secretName": "nope"}}]),
            ),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(missing.reason, "FailedMount");
        assert!(
            missing.message.contains("secret \"nope\" not found"),
            "{missing:?}"
        );
        let unmapped = run_plan(
            &pod(
                json!({"name": "c", "volumeMounts": [{"name": "pv", "mountPath": "/pv"}]}),
                json!([{"name": "pv", "persistentVolumeClaim": {"claimName": "data"}}]),
            ),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(unmapped.message.contains("--pvc data=DIR"), "{unmapped:?}");
        assert!(relative_mount("/work", "/etc/x").is_err());
        assert_eq!(relative_mount("/work/", "/work").unwrap(), Path::new(""));
        assert!(relative_mount("/", "/a/../b").is_err());
    }

    #[test]
    fn expansion_keeps_unknown_references() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$-$x-$(", &env), "1-$(B)-$-$x-$(");
    }
}
