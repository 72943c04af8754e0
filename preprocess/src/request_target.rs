//! From a profile's `apiPath` to what is sent and what is reported
//! (docs/kperf-compatibility.md §6):
//! the wire request target, kperf's request URL and its masked metric URL (both
//! without the server's base URL), and the body's content-type class.
//!
//! kperf builds these with Go's `net/url` and client-go; `go_url` reproduces the Go
//! behaviour they depend on, so a profile yields the same URLs and metric keys.
//! The server's base URL is assumed to have no path of its own.

mod go_url;
mod query;

use std::borrow::Cow;

use go_url::{
    clean_rooted_path, escape_into, first_control_byte, unescape, valid_encoded, BadEscape, UrlPart,
};
use query::QueryPairs;

use crate::profile::{BodyKind, ProfileRequest, Verb};

/// How the wire path is derived from the recorded `apiPath`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathMode {
    /// The request URL's escaped path as recorded: `%2F` stays escaped and `.`, `..`,
    /// `//` stay in place, so the server sees the recorded path (kperf weakness 18 fixed).
    #[default]
    Recorded,
    /// kperf exactly: the decoded path, cleaned like Go `path.Join`, re-escaped.
    KperfCleaned,
}

/// One request's target, normalised once offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedRequest {
    /// Wire request target: path + `?` + query (with `timeout=1m0s`), no base URL.
    pub target: String,
    /// kperf's request URL without the base: path, `?query` (no timeout) and any `#fragment`.
    pub request_path: String,
    /// kperf's metric URL without the base: like `request_path`, with the last path
    /// segment masked as `:name` for DELETE, PATCH and APPLY.
    pub metric_path: String,
    /// The body's Content-Type class.
    pub body_kind: BodyKind,
}

/// Where in the apiPath a bad `%` escape was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPart {
    /// Before `?`.
    Path,
    /// After `#`.
    Fragment,
}

impl std::fmt::Display for TargetPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TargetPart::Path => "path",
            TargetPart::Fragment => "fragment",
        })
    }
}

/// An `apiPath` that Go's `url.Parse` rejects, so kperf cannot build the request.
/// Offsets are byte offsets into the apiPath as written in the profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// A control byte (0x00–0x1F or 0x7F) before any `#`.
    #[error(
        "apiPath {api_path:?}: control character 0x{byte:02X} at byte {offset}; \
         a request target may not contain bytes 0x00-0x1F or 0x7F (write them as %XX)"
    )]
    ControlCharacter {
        /// The apiPath as written in the profile.
        api_path: String,
        /// The offending byte.
        byte: u8,
        /// Its byte offset.
        offset: usize,
    },
    /// A `%` not followed by two hex digits in the path or the fragment.
    #[error(
        "apiPath {api_path:?}: invalid URL escape {escape:?} at byte {offset} in the {part}; \
         '%' must be followed by two hex digits (write a literal '%' as %25)"
    )]
    InvalidEscape {
        /// The apiPath as written in the profile.
        api_path: String,
        /// The part of the URL the escape is in.
        part: TargetPart,
        /// The escape text as Go quotes it: `%` and up to two following bytes.
        escape: String,
        /// Byte offset of the `%`.
        offset: usize,
    },
}

/// The `timeout` query parameter kperf's client adds to every request (60 s).
const WIRE_TIMEOUT: &str = "1m0s";
/// The field manager kperf sends with every APPLY.
const APPLY_FIELD_MANAGER: &str = "kperf-replay";

/// Normalises one profile request: kperf's request URL and metric URL (§6 steps 1–5)
/// and the wire target for `mode`. Errors where Go's `url.Parse` fails.
pub fn normalize(req: &ProfileRequest, mode: PathMode) -> Result<NormalizedRequest, TargetError> {
    let api = kperf_api_path(&req.api_path);
    // Offsets inside `api` are one byte ahead of the profile text when '/' was prefixed.
    let shift = usize::from(!req.api_path.starts_with('/'));
    let url = ParsedUrl::parse(&api).map_err(|e| e.into_target_error(&req.api_path, shift))?;

    let escaped_path = url.escaped_path();
    let mut query = QueryPairs::parse(url.raw_query.as_bytes());
    let selector = req.label_selector.as_str();
    if !selector.is_empty() && matches!(req.verb, Verb::List | Verb::Watch) {
        query.set("labelSelector", selector);
    }
    if req.verb == Verb::Watch {
        query.set("watch", "true");
    }
    // Go keeps the raw query text when the parsed map is empty.
    let query_text: Cow<'_, str> = if query.is_empty() {
        Cow::Borrowed(url.raw_query)
    } else {
        let mut encoded = String::with_capacity(url.raw_query.len() + 32);
        query.encode_into(&mut encoded);
        Cow::Owned(encoded)
    };

    let mut request_path = String::with_capacity(api.len() + query_text.len() + 2);
    request_path.push_str(&escaped_path);
    url.push_query_and_fragment(&mut request_path, &query_text);

    let metric_path = if matches!(req.verb, Verb::Delete | Verb::Patch | Verb::Apply) {
        let mut masked_url = String::with_capacity(request_path.len() + 6);
        url.push_masked_path(&mut masked_url, &escaped_path);
        url.push_query_and_fragment(&mut masked_url, &query_text);
        masked_url
    } else {
        request_path.clone()
    };

    let mut target = String::with_capacity(request_path.len() + 16);
    match mode {
        PathMode::Recorded => target.push_str(&escaped_path),
        PathMode::KperfCleaned => {
            escape_into(&mut target, &clean_rooted_path(&url.path), UrlPart::Path)
        }
    }
    target.push('?');
    // client-go re-reads the step-4 query and adds its own parameters.
    if req.verb == Verb::Apply {
        query.add_first("fieldManager", APPLY_FIELD_MANAGER);
    }
    // kperf drops the selector of a DELETECOLLECTION (kperf weakness 17); kreplay sends it.
    if req.verb == Verb::DeleteCollection && !selector.is_empty() {
        query.set("labelSelector", selector);
    }
    query.set("timeout", WIRE_TIMEOUT);
    query.encode_into(&mut target);

    Ok(NormalizedRequest {
        target,
        request_path,
        metric_path,
        body_kind: body_kind(req.verb, &url.path),
    })
}

/// `"<metric method label> <metric_path>"`, e.g. `"DELETE /api/v1/namespaces/default/pods/:name"`.
/// kperf's key has the base URL between the two; the engine inserts it after the space.
pub fn metric_label(verb: Verb, metric_path: &str) -> String {
    let label = verb.metric_label();
    let mut out = String::with_capacity(label.len() + 1 + metric_path.len());
    out.push_str(label);
    out.push(' ');
    out.push_str(metric_path);
    out
}

/// §6 steps 1–2: prefix `/` when missing; with no `?` but some `&`, the first `&` becomes `?`.
fn kperf_api_path(api_path: &str) -> Cow<'_, str> {
    let needs_slash = !api_path.starts_with('/');
    let amp = if api_path.contains('?') {
        None
    } else {
        api_path.find('&')
    };
    if !needs_slash && amp.is_none() {
        return Cow::Borrowed(api_path);
    }
    let mut out = String::with_capacity(api_path.len() + 1);
    if needs_slash {
        out.push('/');
    }
    match amp {
        Some(i) => {
            out.push_str(&api_path[..i]);
            out.push('?');
            out.push_str(&api_path[i + 1..]);
        }
        None => out.push_str(api_path),
    }
    Cow::Owned(out)
}

/// Content-Type class by verb; PATCH picks strategic merge for built-in groups only.
fn body_kind(verb: Verb, decoded_path: &[u8]) -> BodyKind {
    match verb {
        Verb::Patch if is_builtin_api_path(decoded_path) => BodyKind::StrategicMergePatch,
        Verb::Patch => BodyKind::MergePatch,
        Verb::Apply => BodyKind::ApplyPatch,
        _ => BodyKind::None,
    }
}

/// kperf's built-in rule: `/api/…`, or `/apis/<group>/…` with a group that has no `.`
/// or ends with `.k8s.io`. `/apis/<group>` with no further `/` is not built-in.
fn is_builtin_api_path(path: &[u8]) -> bool {
    if path.starts_with(b"/api/") {
        return true;
    }
    let Some(rest) = path.strip_prefix(b"/apis/") else {
        return false;
    };
    let Some(slash) = rest.iter().position(|&b| b == b'/') else {
        return false;
    };
    let group = &rest[..slash];
    !group.contains(&b'.') || group.ends_with(b".k8s.io")
}

/// kperf's `maskLastPathSegment`: one trailing `/` removed, then the last segment
/// replaced by `:name`; a path with no `/` becomes `:name`; empty stays empty.
fn mask_last_segment(path: &[u8]) -> Cow<'_, [u8]> {
    if path.is_empty() {
        return Cow::Borrowed(path);
    }
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    match trimmed.iter().rposition(|&b| b == b'/') {
        None => Cow::Borrowed(b":name"),
        Some(slash) => {
            let mut masked = Vec::with_capacity(slash + 6);
            masked.extend_from_slice(&trimmed[..=slash]);
            masked.extend_from_slice(b":name");
            Cow::Owned(masked)
        }
    }
}

/// Where Go's `url.Parse` failed, in offsets of the normalised apiPath.
enum ParseFailure {
    Control {
        offset: usize,
        byte: u8,
    },
    Escape {
        part: TargetPart,
        offset: usize,
        len: usize,
    },
}

impl ParseFailure {
    fn into_target_error(self, api_path: &str, shift: usize) -> TargetError {
        match self {
            ParseFailure::Control { offset, byte } => TargetError::ControlCharacter {
                api_path: api_path.to_owned(),
                byte,
                offset: offset.saturating_sub(shift),
            },
            ParseFailure::Escape { part, offset, len } => {
                let offset = offset.saturating_sub(shift);
                // Go quotes 3 bytes; widen to whole characters so the text stays readable.
                let mut end = (offset + len).min(api_path.len());
                while !api_path.is_char_boundary(end) {
                    end += 1;
                }
                let escape = api_path.get(offset..end).unwrap_or_default().to_owned();
                TargetError::InvalidEscape {
                    api_path: api_path.to_owned(),
                    part,
                    escape,
                    offset,
                }
            }
        }
    }
}

/// `url.Parse(base + apiPath)` restricted to the apiPath's share: path, query, fragment.
struct ParsedUrl<'a> {
    /// The path as written (Go's `RawPath` candidate).
    raw_path: &'a str,
    /// The decoded path (Go's `Path`).
    path: Cow<'a, [u8]>,
    /// A lone trailing `?` (Go's `ForceQuery`): printed even with an empty query.
    force_query: bool,
    /// The query as written, without `?`.
    raw_query: &'a str,
    /// The fragment as written and decoded; `None` when absent or empty.
    fragment: Option<(&'a str, Cow<'a, [u8]>)>,
}

impl<'a> ParsedUrl<'a> {
    /// `api` starts with `/`, so everything before `?` is the path.
    fn parse(api: &'a str) -> Result<Self, ParseFailure> {
        let (before_hash, raw_fragment) = match api.find('#') {
            Some(i) => (&api[..i], &api[i + 1..]),
            None => (api, ""),
        };
        if let Some(offset) = first_control_byte(before_hash.as_bytes()) {
            return Err(ParseFailure::Control {
                offset,
                byte: before_hash.as_bytes()[offset],
            });
        }
        let (raw_path, raw_query, force_query) = if before_hash.ends_with('?')
            && before_hash.bytes().filter(|&b| b == b'?').count() == 1
        {
            (&before_hash[..before_hash.len() - 1], "", true)
        } else {
            match before_hash.find('?') {
                Some(i) => (&before_hash[..i], &before_hash[i + 1..], false),
                None => (before_hash, "", false),
            }
        };
        let path =
            unescape(raw_path.as_bytes(), UrlPart::Path).map_err(|BadEscape { offset, len }| {
                ParseFailure::Escape {
                    part: TargetPart::Path,
                    offset,
                    len,
                }
            })?;
        let fragment = if raw_fragment.is_empty() {
            None
        } else {
            let fragment_start = before_hash.len() + 1;
            let decoded = unescape(raw_fragment.as_bytes(), UrlPart::Fragment).map_err(
                |BadEscape { offset, len }| ParseFailure::Escape {
                    part: TargetPart::Fragment,
                    offset: fragment_start + offset,
                    len,
                },
            )?;
            Some((raw_fragment, decoded))
        };
        Ok(ParsedUrl {
            raw_path,
            path,
            force_query,
            raw_query,
            fragment,
        })
    }

    /// Go's `EscapedPath`: the path as written when every byte of it is legal in a
    /// path (it then decodes to `path` by construction), else `path` re-escaped.
    fn escaped_path(&self) -> Cow<'a, str> {
        if valid_encoded(self.raw_path.as_bytes(), UrlPart::Path) {
            Cow::Borrowed(self.raw_path)
        } else {
            let mut out = String::with_capacity(self.raw_path.len() + 16);
            escape_into(&mut out, &self.path, UrlPart::Path);
            Cow::Owned(out)
        }
    }

    /// The masked URL's path as Go prints it: its `RawPath` still holds the recorded
    /// text, which wins only if it decodes to the masked path.
    fn push_masked_path(&self, out: &mut String, escaped_path: &str) {
        let masked = mask_last_segment(&self.path);
        let start = out.len();
        if masked.as_ref() == self.path.as_ref() {
            out.push_str(escaped_path);
        } else {
            escape_into(out, &masked, UrlPart::Path);
        }
        // URL.String puts a '/' between the host and a path that lacks one.
        if out.len() > start && !out[start..].starts_with('/') {
            out.insert(start, '/');
        }
    }

    /// Appends `?query` (when forced or non-empty) and `#fragment` as `URL.String` does.
    fn push_query_and_fragment(&self, out: &mut String, query_text: &str) {
        if self.force_query || !query_text.is_empty() {
            out.push('?');
            out.push_str(query_text);
        }
        if let Some((raw, decoded)) = &self.fragment {
            out.push('#');
            // Go's EscapedFragment: the text as written when legal, else re-escaped.
            if valid_encoded(raw.as_bytes(), UrlPart::Fragment) {
                out.push_str(raw);
            } else {
                escape_into(out, decoded, UrlPart::Fragment);
            }
        }
    }
}
