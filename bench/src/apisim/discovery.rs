//! Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/G/V`, `/version`) and resource → Kind mapping.

use serde_json::{json, Value};

/// A resource apisim advertises in discovery.
struct KnownResource {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
}

const fn known(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
) -> KnownResource {
    KnownResource {
        group,
        version,
        resource,
        kind,
        namespaced,
        short_names,
        subresources,
    }
}

const KNOWN: &[KnownResource] = &[
    known(
        "",
        "v1",
        "pods",
        "Pod",
        true,
        &["po"],
        &["status", "binding", "eviction", "log", "proxy"],
    ),
    known("", "v1", "configmaps", "ConfigMap", true, &["cm"], &[]),
    known("", "v1", "secrets", "Secret", true, &[], &[]),
    known("", "v1", "services", "Service", true, &["svc"], &["status"]),
    known("", "v1", "endpoints", "Endpoints", true, &["ep"], &[]),
    known("", "v1", "events", "Event", true, &["ev"], &[]),
    known(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        &[],
    ),
    known(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        &["status"],
    ),
    known(
        "",
        "v1",
        "namespaces",
        "Namespace",
        false,
        &["ns"],
        &["status", "finalize"],
    ),
    known("", "v1", "nodes", "Node", false, &["no"], &["status"]),
    known(
        "",
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        false,
        &["pv"],
        &["status"],
    ),
    known(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        &["deploy"],
        &["status", "scale"],
    ),
    known(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        &["rs"],
        &["status", "scale"],
    ),
    known(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        &["sts"],
        &["status", "scale"],
    ),
    known(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        true,
        &["ds"],
        &["status"],
    ),
    known("batch", "v1", "jobs", "Job", true, &[], &["status"]),
    known(
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        true,
        &["cj"],
        &["status"],
    ),
    known(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        &[],
        &[],
    ),
    known(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        &[],
        &[],
    ),
    known(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
        &["status"],
    ),
    known(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
        &[],
    ),
    known(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        &[],
        &[],
    ),
    known(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        &[],
    ),
    known(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        &[],
    ),
    known(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        &[],
    ),
    known(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
        &["sc"],
        &[],
    ),
    known(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        &["status"],
    ),
    known(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd"],
        &["status"],
    ),
];

/// Groups whose resources are built into the apiserver (strategic merge patch is accepted there); any
/// other group is treated like a CRD group.
const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "resource.k8s.io",
];

/// True when the group is one of the apiserver's own (not a CRD group).
pub fn is_built_in_group(group: &str) -> bool {
    BUILT_IN_GROUPS.contains(&group)
}

/// The Kind of a resource: from the table, else derived from the plural (`widgets` → `Widget`).
pub fn kind_for(group: &str, resource: &str) -> String {
    if let Some(entry) = KNOWN
        .iter()
        .find(|entry| entry.resource == resource && entry.group == group)
    {
        return entry.kind.to_string();
    }
    let singular = if let Some(stem) = resource.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = resource
        .strip_suffix("sses")
        .or_else(|| resource.strip_suffix("xes"))
        .or_else(|| resource.strip_suffix("ches"))
    {
        format!("{stem}{}", &resource[stem.len()..resource.len() - 2])
    } else {
        resource.strip_suffix('s').unwrap_or(resource).to_string()
    };
    let mut chars = singular.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The resource and scope of a Kind (`apps`, `Deployment` → `deployments`, namespaced): from the
/// table, else the lower-cased plural of the Kind, namespaced (custom resources usually are).
pub fn resource_for_kind(group: &str, kind: &str) -> (String, bool) {
    if let Some(entry) = KNOWN
        .iter()
        .find(|entry| entry.kind == kind && entry.group == group)
    {
        return (entry.resource.to_string(), entry.namespaced);
    }
    let lower = kind.to_ascii_lowercase();
    let plural = if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    };
    (plural, true)
}

/// `/version`.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-apisim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for entry in KNOWN.iter().filter(|entry| !entry.group.is_empty()) {
        if !groups.contains(&(entry.group, entry.version)) {
            groups.push((entry.group, entry.version));
        }
    }
    groups
}

/// `/apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|(group, version)| group_document(group, version))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn group_document(group: &str, version: &str) -> Value {
    let group_version = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [group_version],
        "preferredVersion": group_version
    })
}

/// `/apis/G` when G is advertised.
pub fn group(group: &str) -> Option<Value> {
    groups()
        .into_iter()
        .find(|(name, _)| *name == group)
        .map(|(name, version)| group_document(name, version))
}

/// `/api/v1` or `/apis/G/V` when advertised: an APIResourceList.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for entry in KNOWN
        .iter()
        .filter(|entry| entry.group == group && entry.version == version)
    {
        resources.push(json!({
            "name": entry.resource,
            "singularName": entry.kind.to_ascii_lowercase(),
            "namespaced": entry.namespaced,
            "kind": entry.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": entry.short_names,
        }));
        for sub in entry.subresources {
            resources.push(json!({
                "name": format!("{}/{sub}", entry.resource),
                "singularName": "",
                "namespaced": entry.namespaced,
                "kind": entry.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources
    }))
}

/// `/openapi/v3`: one entry per advertised group version. kubectl reads it to learn that the server
/// validates fields itself (`fieldValidation`), which spares it the client-side schema check.
pub fn openapi_v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    let mut versions = vec![("", "v1")];
    versions.extend(groups());
    for (group, version) in versions {
        let key = openapi_key(group, version);
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash=apisim")}),
        );
    }
    json!({"paths": paths})
}

fn openapi_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/G/V`: a PATCH operation per resource, tagged with its
/// group-version-kind and declaring the `fieldValidation` query parameter. No schemas.
pub fn openapi_v3_group_version(key: &str) -> Option<Value> {
    let (group, version) = match key.split('/').collect::<Vec<_>>().as_slice() {
        ["api", version] => ("", *version),
        ["apis", group, version] => (*group, *version),
        _ => return None,
    };
    let mut paths = serde_json::Map::new();
    for entry in KNOWN
        .iter()
        .filter(|entry| entry.group == group && entry.version == version)
    {
        let scope = if entry.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        paths.insert(
            format!("/{}/{scope}{}/{{name}}", openapi_key(group, version), entry.resource),
            json!({"patch": {
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": entry.kind},
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                "responses": {}
            }}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (apisim)", "version": "v1.32.0"},
        "paths": paths
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_table_and_plural_rules() {
        assert_eq!(kind_for("", "pods"), "Pod");
        assert_eq!(kind_for("apps", "deployments"), "Deployment");
        assert_eq!(kind_for("example.com", "widgets"), "Widget");
        assert_eq!(kind_for("example.com", "policies"), "Policy");
        assert_eq!(kind_for("example.com", "boxes"), "Box");
        assert_eq!(kind_for("example.com", "classes"), "Class");
        assert_eq!(kind_for("example.com", "sheep"), "Sheep");
    }

    #[test]
    fn discovery_documents() {
        let core = resource_list("", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(
            names.contains(&"pods")
                && names.contains(&"configmaps")
                && names.contains(&"pods/status")
        );
        assert!(resource_list("apps", "v1").is_some());
        assert!(resource_list("nope", "v1").is_none());
        assert!(group_list()["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "apps"));
        assert!(group("batch").is_some());
        assert!(is_built_in_group("apps") && !is_built_in_group("gateway.networking.k8s.io"));
        assert!(
            openapi_v3_root()["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1")
        );
        let core = openapi_v3_group_version("api/v1").unwrap();
        let patch = &core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "ConfigMap"
        );
        assert_eq!(patch["parameters"][0]["name"], "fieldValidation");
        assert!(openapi_v3_group_version("apis/none/v1").is_none());
    }
}
