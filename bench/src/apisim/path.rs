//! Request targets: resource paths (`/api/v1/...`, `/apis/G/V/...`) and the query parameters apisim reads.

use std::borrow::Cow;

use super::status::ApiError;

/// A resource request's path, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group, "" for the core group.
    pub group: String,
    /// API version (`v1`).
    pub version: String,
    /// Namespace from `/namespaces/NS/`, None for cluster-scoped or all-namespace requests.
    pub namespace: Option<String>,
    /// Plural resource name (`pods`).
    pub resource: String,
    /// Object name, None for collection requests.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, ...).
    pub subresource: Option<String>,
    /// The path used the legacy `/watch/` prefix.
    pub watch_prefix: bool,
}

impl ResourcePath {
    /// `pods` for the core group, `deployments.apps` otherwise (the form apiserver messages use).
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Splits a resource path; None when the path is not under `/api/v1` or `/apis/G/V` or has too many segments.
pub fn parse_resource_path(path: &str) -> Option<ResourcePath> {
    let segments: Vec<Cow<'_, str>> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_decode_inner(segment, false))
        .collect();
    let (group, version, rest) = match segments.first().map(|s| s.as_ref()) {
        Some("api") if segments.len() >= 3 => {
            (String::new(), segments[1].to_string(), &segments[2..])
        }
        Some("apis") if segments.len() >= 4 => (
            segments[1].to_string(),
            segments[2].to_string(),
            &segments[3..],
        ),
        _ => return None,
    };
    let (watch_prefix, rest) = match rest.first().map(|s| s.as_ref()) {
        Some("watch") => (true, &rest[1..]),
        _ => (false, rest),
    };
    // `namespaces/NS/status` and `namespaces/NS/finalize` are subresources of a namespace, not a collection.
    let namespaced = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && (rest[2] == "status" || rest[2] == "finalize"));
    let (namespace, rest) = if namespaced {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    if rest.is_empty() || rest.len() > 3 {
        return None;
    }
    Some(ResourcePath {
        group,
        version,
        namespace,
        resource: rest[0].to_string(),
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
        watch_prefix,
    })
}

/// Decodes `%XX` escapes (and `+` as space in queries); malformed escapes are kept as written.
fn percent_decode_inner(text: &str, plus_is_space: bool) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if !bytes
        .iter()
        .any(|&b| b == b'%' || (plus_is_space && b == b'+'))
    {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push(high * 16 + low);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The query parameters apisim understands; others (`timeout`, `pretty`, `dryRun`...) are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryParams {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit` (0 means no limit).
    pub limit: Option<u64>,
    /// `continue` token.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `watch=true|1`.
    pub watch: bool,
    /// `allowWatchBookmarks=true`.
    pub allow_watch_bookmarks: bool,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<u64>,
    /// `fieldManager`.
    pub field_manager: Option<String>,
}

/// Parses the query string; a malformed number or boolean is a 400 naming the parameter.
pub fn parse_query(query: Option<&str>) -> Result<QueryParams, ApiError> {
    let mut params = QueryParams::default();
    let Some(query) = query else {
        return Ok(params);
    };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode_inner(raw_key, true);
        let value = percent_decode_inner(raw_value, true).into_owned();
        match key.as_ref() {
            "labelSelector" => params.label_selector = Some(value),
            "fieldSelector" => params.field_selector = Some(value),
            "limit" => params.limit = Some(parse_number("limit", &value)?),
            "continue" => params.continue_token = Some(value),
            "resourceVersion" => params.resource_version = Some(value),
            "watch" => params.watch = parse_bool("watch", &value)?,
            "allowWatchBookmarks" => {
                params.allow_watch_bookmarks = parse_bool("allowWatchBookmarks", &value)?
            }
            "sendInitialEvents" => {
                params.send_initial_events = parse_bool("sendInitialEvents", &value)?
            }
            "timeoutSeconds" => {
                params.timeout_seconds = Some(parse_number("timeoutSeconds", &value)?)
            }
            "fieldManager" => params.field_manager = Some(value),
            _ => {}
        }
    }
    Ok(params)
}

fn parse_number(name: &str, value: &str) -> Result<u64, ApiError> {
    value.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid query parameter {name}={value:?}: expected a non-negative integer"
        ))
    })
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" | "True" | "TRUE" | "t" | "T" => Ok(true),
        "false" | "0" | "False" | "FALSE" | "f" | "F" | "" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "invalid query parameter {name}={value:?}: expected true or false"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_namespaced_object() {
        let path = parse_resource_path("/api/v1/namespaces/default/pods/nginx").unwrap();
        assert_eq!(path.group, "");
        assert_eq!(path.version, "v1");
        assert_eq!(path.namespace.as_deref(), Some("default"));
        assert_eq!(path.resource, "pods");
        assert_eq!(path.name.as_deref(), Some("nginx"));
        assert_eq!(path.subresource, None);
        assert_eq!(path.api_version(), "v1");
    }

    #[test]
    fn group_cluster_collection_and_watch_prefix() {
        let path = parse_resource_path("/apis/example.com/v1alpha1/watch/widgets").unwrap();
        assert_eq!(path.group, "example.com");
        assert_eq!(path.namespace, None);
        assert_eq!(path.resource, "widgets");
        assert!(path.watch_prefix);
        assert_eq!(path.qualified_resource(), "widgets.example.com");
    }

    #[test]
    fn namespace_subresources_are_not_collections() {
        let path = parse_resource_path("/api/v1/namespaces/ns1/status").unwrap();
        assert_eq!(path.resource, "namespaces");
        assert_eq!(path.name.as_deref(), Some("ns1"));
        assert_eq!(path.subresource.as_deref(), Some("status"));
        let path = parse_resource_path("/apis/apps/v1/namespaces/a/deployments/d/scale").unwrap();
        assert_eq!(path.namespace.as_deref(), Some("a"));
        assert_eq!(path.subresource.as_deref(), Some("scale"));
    }

    #[test]
    fn rejects_non_resource_and_too_deep_paths() {
        assert_eq!(parse_resource_path("/api"), None);
        assert_eq!(parse_resource_path("/apis/apps/v1"), None);
        assert_eq!(parse_resource_path("/api/v1/namespaces/a/pods/b/c/d"), None);
        assert_eq!(parse_resource_path("/metrics"), None);
    }

    #[test]
    fn query_decoding_and_errors() {
        let params = parse_query(Some(
            "labelSelector=app%3Dnginx&limit=5&watch=true&timeout=1m0s&x",
        ))
        .unwrap();
        assert_eq!(params.label_selector.as_deref(), Some("app=nginx"));
        assert_eq!(params.limit, Some(5));
        assert!(params.watch);
        let error = parse_query(Some("limit=abc")).unwrap_err();
        assert_eq!(error.code, 400);
        assert!(error.message.contains("limit"));
        assert_eq!(percent_decode_inner("a%2Fb%zz", false), "a/b%zz");
        assert_eq!(percent_decode_inner("a+b", true), "a b");
    }
}
