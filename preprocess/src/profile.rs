//! The kperf replay profile (ReplayProfile v1) as data: what one profile says,
//! before any normalisation. Parsing lives in `yaml`/`loader`, checks in `validate`.

use std::fmt;

/// One of the eight verbs a kperf profile may name (upper case only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Verb {
    Get = 0,
    List = 1,
    Watch = 2,
    Create = 3,
    Delete = 4,
    DeleteCollection = 5,
    Patch = 6,
    Apply = 7,
}

impl Verb {
    /// Every verb, in discriminant order.
    pub const ALL: [Verb; 8] = [
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Create,
        Verb::Delete,
        Verb::DeleteCollection,
        Verb::Patch,
        Verb::Apply,
    ];

    /// Parses the profile spelling (`GET`, `DELETECOLLECTION`, ...); case-sensitive as kperf.
    pub fn from_profile(s: &str) -> Option<Verb> {
        Some(match s {
            "GET" => Verb::Get,
            "LIST" => Verb::List,
            "WATCH" => Verb::Watch,
            "CREATE" => Verb::Create,
            "DELETE" => Verb::Delete,
            "DELETECOLLECTION" => Verb::DeleteCollection,
            "PATCH" => Verb::Patch,
            "APPLY" => Verb::Apply,
            _ => return None,
        })
    }

    /// The profile spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "CREATE",
            Verb::Delete => "DELETE",
            Verb::DeleteCollection => "DELETECOLLECTION",
            Verb::Patch => "PATCH",
            Verb::Apply => "APPLY",
        }
    }

    /// Decodes a stored discriminant; `None` for anything else (corrupt input).
    pub fn from_u8(v: u8) -> Option<Verb> {
        Verb::ALL.get(v as usize).copied()
    }

    /// The HTTP method kperf sends for this verb.
    pub fn method(self) -> Method {
        match self {
            Verb::Get | Verb::List | Verb::Watch => Method::Get,
            Verb::Create => Method::Post,
            Verb::Delete | Verb::DeleteCollection => Method::Delete,
            Verb::Patch | Verb::Apply => Method::Patch,
        }
    }

    /// kperf's metric method label (`LIST`, `WATCH`, `POST`, `PATCH` for APPLY, ...).
    pub fn metric_label(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Delete | Verb::DeleteCollection => "DELETE",
            Verb::Patch | Verb::Apply => "PATCH",
        }
    }

    /// Whether kperf requires a `name` for this verb.
    pub fn requires_name(self) -> bool {
        matches!(self, Verb::Get | Verb::Delete | Verb::Patch | Verb::Apply)
    }

    /// Whether kperf requires a `body` for this verb.
    pub fn requires_body(self) -> bool {
        matches!(self, Verb::Create | Verb::Apply | Verb::Patch)
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HTTP method on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Method {
    Get = 0,
    Post = 1,
    Delete = 2,
    Patch = 3,
}

impl Method {
    /// The method token as sent on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
        }
    }

    /// Decodes a stored discriminant.
    pub fn from_u8(v: u8) -> Option<Method> {
        [Method::Get, Method::Post, Method::Delete, Method::Patch]
            .get(v as usize)
            .copied()
    }
}

/// What `Content-Type` a request body is sent with (kperf's rules,
/// docs/kperf-compatibility.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BodyKind {
    /// No Content-Type header (GET, LIST, WATCH, DELETE, DELETECOLLECTION, and CREATE as kperf sends it).
    None = 0,
    /// `application/json` (available to CREATE when the user asks for an explicit type).
    Json = 1,
    /// `application/merge-patch+json`: PATCH to a non-built-in group.
    MergePatch = 2,
    /// `application/strategic-merge-patch+json`: PATCH to a built-in group.
    StrategicMergePatch = 3,
    /// `application/apply-patch+yaml`: APPLY.
    ApplyPatch = 4,
}

impl BodyKind {
    /// The header value, or `None` when no Content-Type is sent.
    pub fn content_type(self) -> Option<&'static str> {
        match self {
            BodyKind::None => None,
            BodyKind::Json => Some("application/json"),
            BodyKind::MergePatch => Some("application/merge-patch+json"),
            BodyKind::StrategicMergePatch => Some("application/strategic-merge-patch+json"),
            BodyKind::ApplyPatch => Some("application/apply-patch+yaml"),
        }
    }

    /// Decodes a stored discriminant.
    pub fn from_u8(v: u8) -> Option<BodyKind> {
        [
            BodyKind::None,
            BodyKind::Json,
            BodyKind::MergePatch,
            BodyKind::StrategicMergePatch,
            BodyKind::ApplyPatch,
        ]
        .get(v as usize)
        .copied()
    }
}

/// `spec.contentType`: what the replay asks the server to answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    /// `Accept: application/json, */*`
    Json,
    /// `Accept: application/vnd.kubernetes.protobuf, */*`
    Protobuf,
}

impl ContentType {
    /// The `Accept` header value kperf sends.
    pub fn accept(self) -> &'static str {
        match self {
            ContentType::Json => "application/json, */*",
            ContentType::Protobuf => "application/vnd.kubernetes.protobuf, */*",
        }
    }

    /// The profile spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "json",
            ContentType::Protobuf => "protobuf",
        }
    }
}

/// `spec` of a profile, after validation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    /// Number of partitions (> 0).
    pub runner_count: u32,
    /// REST clients (connections) per runner (> 0).
    pub conns_per_runner: u32,
    /// Workers per runner; 0 means "same as conns_per_runner".
    pub clients_per_runner: u32,
    /// Accept header class.
    pub content_type: ContentType,
    /// true: HTTP/1.1 only.
    pub disable_http2: bool,
}

/// One request of a profile, as written there (no normalisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRequest {
    /// Milliseconds from the replay start (>= 0).
    pub timestamp_ms: i64,
    /// The verb.
    pub verb: Verb,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Resource kind (only for the object key).
    pub resource_kind: String,
    /// Object name (only for the object key).
    pub name: String,
    /// Path and optional query sent to the server.
    pub api_path: String,
    /// Request body, byte for byte.
    pub body: String,
    /// Label selector (LIST/WATCH only).
    pub label_selector: String,
}
