//! Resource verbs: get, list, create, update, patch, server-side apply, delete, deletecollection.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN_B64;
use base64::Engine as _;
use bytes::Bytes;
use hyper::{Method, Response};
use rand::Rng;
use serde_json::{json, Value};

use super::body::{json_bytes, json_value, ApiBody};
use super::discovery::{is_built_in_group, kind_for};
use super::patch::{decode_body, decode_yaml, json_patch, merge_patch, PatchKind};
use super::path::{QueryParams, ResourcePath};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{metadata_mut, metadata_str, ObjectKey, StoredObject, WriteOp};
use super::{table, Shared};

/// A resource request after parsing, ready for its verb's handler.
pub(crate) struct ApiRequest<'a> {
    pub verb: &'static str,
    pub path: &'a ResourcePath,
    pub params: &'a QueryParams,
    pub content_type: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub body: Bytes,
    /// The body already decoded (CREATE only).
    pub decoded: Option<Value>,
}

/// The verb of a request, from its method, path shape, `watch` and Content-Type.
pub(crate) fn classify(
    method: &Method,
    path: &ResourcePath,
    params: &QueryParams,
    content_type: Option<&str>,
) -> Result<&'static str, ApiError> {
    let named = path.name.is_some();
    let verb = match *method {
        Method::GET if path.watch_prefix || params.watch => "WATCH",
        Method::GET if named => "GET",
        Method::GET => "LIST",
        Method::POST => "CREATE",
        Method::PUT if named => "UPDATE",
        Method::PATCH if named => {
            if PatchKind::from_content_type(content_type) == Ok(PatchKind::Apply) {
                "APPLY"
            } else {
                "PATCH"
            }
        }
        Method::DELETE if named => "DELETE",
        Method::DELETE => "DELETECOLLECTION",
        _ => return Err(ApiError::method_not_allowed(method.as_str())),
    };
    if path.watch_prefix && *method != Method::GET {
        return Err(ApiError::method_not_allowed(method.as_str()));
    }
    if verb == "CREATE" && named && path.subresource.is_none() {
        return Err(ApiError::method_not_allowed(method.as_str()));
    }
    Ok(verb)
}

/// Runs a non-watch verb.
pub(crate) fn handle(
    shared: &Arc<Shared>,
    request: ApiRequest<'_>,
) -> Result<Response<ApiBody>, ApiError> {
    match request.verb {
        "GET" => get(shared, &request),
        "LIST" => list(shared, &request),
        "CREATE" => create(shared, request),
        "UPDATE" => update(shared, &request),
        "PATCH" | "APPLY" => patch(shared, &request),
        "DELETE" => delete(shared, &request),
        "DELETECOLLECTION" => delete_collection(shared, &request),
        other => Err(ApiError::internal(format!("verb {other} has no handler"))),
    }
}

/// `<group>/<resource>`, the store's collection name.
pub(crate) fn collection(path: &ResourcePath) -> String {
    format!("{}/{}", path.group, path.resource)
}

fn object_key(path: &ResourcePath, name: &str) -> ObjectKey {
    ObjectKey {
        collection: collection(path),
        namespace: path.namespace.clone().unwrap_or_default(),
        name: name.to_string(),
    }
}

fn not_found(path: &ResourcePath, name: &str) -> ApiError {
    ApiError::not_found(
        &path.qualified_resource(),
        &path.group,
        &path.resource,
        name,
    )
}

fn conflict(path: &ResourcePath, name: &str) -> ApiError {
    ApiError::conflict(
        &path.qualified_resource(),
        &path.group,
        &path.resource,
        name,
    )
}

fn url_name(path: &ResourcePath) -> Result<&str, ApiError> {
    path.name
        .as_deref()
        .ok_or_else(|| ApiError::method_not_allowed("collection"))
}

/// Sets kind/apiVersion when absent and the namespace from the URL; rejects a conflicting namespace.
fn normalise(path: &ResourcePath, value: &mut Value) -> Result<(), ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON (or YAML) object",
        ));
    }
    let body_namespace = metadata_str(value, "namespace").to_string();
    if let Some(map) = value.as_object_mut() {
        map.entry("kind")
            .or_insert_with(|| Value::String(kind_for(&path.group, &path.resource)));
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(path.api_version()));
    }
    if let Some(namespace) = &path.namespace {
        if !body_namespace.is_empty() && body_namespace != *namespace {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({body_namespace}) does not match the namespace \
                 sent on the request ({namespace})"
            )));
        }
        metadata_mut(value).insert("namespace".to_string(), Value::String(namespace.clone()));
    }
    Ok(())
}

fn selectors(params: &QueryParams) -> Result<(LabelSelector, FieldSelector), ApiError> {
    Ok((
        LabelSelector::parse(params.label_selector.as_deref().unwrap_or(""))?,
        FieldSelector::parse(params.field_selector.as_deref().unwrap_or(""))?,
    ))
}

fn get(shared: &Shared, request: &ApiRequest<'_>) -> Result<Response<ApiBody>, ApiError> {
    let name = url_name(request.path)?;
    let object = shared
        .store
        .get(&object_key(request.path, name))
        .ok_or_else(|| not_found(request.path, name))?;
    if table::wants_table(request.accept) {
        let resource_version = object.resource_version.to_string();
        return Ok(json_value(
            200,
            &table::table(&[object], &resource_version, None),
        ));
    }
    Ok(json_bytes(200, object.json.clone()))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    ns: String,
    name: String,
}

fn list(shared: &Shared, request: &ApiRequest<'_>) -> Result<Response<ApiBody>, ApiError> {
    let path = request.path;
    let (labels, fields) = selectors(request.params)?;
    let start_after = match request.params.continue_token.as_deref() {
        None | Some("") => None,
        Some(token) => Some(
            TOKEN_B64
                .decode(token)
                .ok()
                .and_then(|raw| serde_json::from_slice::<ContinueToken>(&raw).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("invalid continue token {token:?}"))
                })?,
        ),
    };
    let filter =
        |object: &StoredObject| labels.matches(&object.value) && fields.matches(&object.value);
    let page = shared.store.list(
        &collection(path),
        path.namespace.as_deref(),
        start_after
            .as_ref()
            .map(|t| (t.ns.as_str(), t.name.as_str())),
        request.params.limit.unwrap_or(0),
        &filter,
    );
    let continue_token = page.continue_after.map(|(ns, name)| {
        let token = ContinueToken {
            rv: page.resource_version,
            ns,
            name,
        };
        TOKEN_B64.encode(serde_json::to_vec(&token).unwrap_or_default())
    });
    let resource_version = page.resource_version.to_string();
    if table::wants_table(request.accept) {
        return Ok(json_value(
            200,
            &table::table(&page.items, &resource_version, continue_token.as_deref()),
        ));
    }
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(token) = continue_token {
        metadata["continue"] = Value::String(token);
        if labels.is_empty()
            && request
                .params
                .field_selector
                .as_deref()
                .unwrap_or("")
                .is_empty()
        {
            metadata["remainingItemCount"] = json!(page.remaining);
        }
    }
    Ok(json_bytes(200, list_body(path, &metadata, &page.items)))
}

/// `{"kind":"<Kind>List","apiVersion":..,"metadata":..,"items":[..]}` from the stored encodings.
fn list_body(path: &ResourcePath, metadata: &Value, items: &[Arc<StoredObject>]) -> Vec<u8> {
    let head = json!({
        "kind": format!("{}List", kind_for(&path.group, &path.resource)),
        "apiVersion": path.api_version(),
        "metadata": metadata,
    });
    let mut out = serde_json::to_vec(&head).unwrap_or_default();
    out.pop();
    out.extend_from_slice(b",\"items\":[");
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&item.json);
    }
    out.extend_from_slice(b"]}");
    out
}

/// `prefix` + 5 random characters, as the apiserver completes `generateName`.
pub(crate) fn generated_name(shared: &Shared, prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = shared.names.lock().unwrap_or_else(|p| p.into_inner());
    let suffix: String = (0..5)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}{suffix}")
}

fn create(shared: &Shared, request: ApiRequest<'_>) -> Result<Response<ApiBody>, ApiError> {
    let path = request.path;
    let mut value = match request.decoded {
        Some(value) => value,
        None => decode_body(&request.body, request.content_type)?,
    };
    if let (Some(name), Some(_)) = (&path.name, &path.subresource) {
        // POST to a subresource (binding, eviction...): acknowledged when the object exists.
        shared
            .store
            .get(&object_key(path, name))
            .ok_or_else(|| not_found(path, name))?;
        return Ok(json_value(201, &value));
    }
    normalise(path, &mut value)?;
    let mut name = metadata_str(&value, "name").to_string();
    if name.is_empty() {
        let prefix = metadata_str(&value, "generateName").to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(format!(
                "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                kind_for(&path.group, &path.resource)
            )));
        }
        name = generated_name(shared, &prefix);
        metadata_mut(&mut value).insert("name".to_string(), Value::String(name.clone()));
    }
    metadata_mut(&mut value).remove("resourceVersion");
    let outcome = shared
        .store
        .write(&object_key(path, &name), |current| match current {
            Some(_) => Err(ApiError::already_exists(
                &path.qualified_resource(),
                &path.group,
                &path.resource,
                &name,
            )),
            None => Ok(WriteOp::Put(value)),
        })?;
    Ok(json_bytes(201, outcome.object.json.clone()))
}

fn update(shared: &Shared, request: &ApiRequest<'_>) -> Result<Response<ApiBody>, ApiError> {
    let path = request.path;
    let name = url_name(path)?;
    let mut value = decode_body(&request.body, request.content_type)?;
    normalise(path, &mut value)?;
    let body_name = metadata_str(&value, "name");
    if body_name.is_empty() {
        metadata_mut(&mut value).insert("name".to_string(), Value::String(name.to_string()));
    } else if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let precondition = metadata_str(&value, "resourceVersion").to_string();
    let outcome = shared.store.write(&object_key(path, name), |current| {
        let current = current.ok_or_else(|| not_found(path, name))?;
        if !precondition.is_empty() && precondition != current.resource_version.to_string() {
            return Err(conflict(path, name));
        }
        Ok(WriteOp::Put(value))
    })?;
    Ok(json_bytes(200, outcome.object.json.clone()))
}

fn patch(shared: &Shared, request: &ApiRequest<'_>) -> Result<Response<ApiBody>, ApiError> {
    let path = request.path;
    let name = url_name(path)?;
    let kind = PatchKind::from_content_type(request.content_type)?;
    if kind == PatchKind::StrategicMerge && !is_built_in_group(&path.group) {
        return Err(ApiError::unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    if kind == PatchKind::Apply
        && request
            .params
            .field_manager
            .as_deref()
            .unwrap_or("")
            .is_empty()
    {
        return Err(ApiError::invalid(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for \
             apply patch",
        ));
    }
    let patch_value = match kind {
        PatchKind::Apply => decode_yaml(&request.body)?,
        _ => serde_json::from_slice::<Value>(&request.body).map_err(|error| {
            ApiError::bad_request(format!("the patch body is not valid JSON: {error}"))
        })?,
    };
    let key = object_key(path, name);
    let outcome = shared.store.write(&key, |current| {
        let Some(current) = current else {
            if kind != PatchKind::Apply {
                return Err(not_found(path, name));
            }
            let mut created = patch_value;
            normalise(path, &mut created)?;
            check_name(&mut created, name)?;
            metadata_mut(&mut created).remove("resourceVersion");
            return Ok(WriteOp::Put(created));
        };
        let mut patched = current.value.clone();
        match kind {
            PatchKind::Json => json_patch(&mut patched, &patch_value)?,
            _ => merge_patch(&mut patched, &patch_value),
        }
        normalise(path, &mut patched)?;
        check_name(&mut patched, name)?;
        if metadata_str(&patched, "resourceVersion") != current.resource_version.to_string()
            && !metadata_str(&patched, "resourceVersion").is_empty()
        {
            return Err(conflict(path, name));
        }
        Ok(WriteOp::Put(patched))
    })?;
    let status = if outcome.event_type == super::store::EventType::Added {
        201
    } else {
        200
    };
    Ok(json_bytes(status, outcome.object.json.clone()))
}

/// Requires the object's name to be the URL's; an absent name is filled in from the URL.
fn check_name(object: &mut Value, url_name: &str) -> Result<(), ApiError> {
    let name = metadata_str(object, "name");
    if name.is_empty() {
        metadata_mut(object).insert("name".to_string(), Value::String(url_name.to_string()));
        Ok(())
    } else if name == url_name {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "metadata.name: Invalid value: {name:?}: field is immutable (the URL names {url_name:?})"
        )))
    }
}

fn delete(shared: &Shared, request: &ApiRequest<'_>) -> Result<Response<ApiBody>, ApiError> {
    let path = request.path;
    let name = url_name(path)?;
    let outcome = shared
        .store
        .write(&object_key(path, name), |current| match current {
            Some(_) => Ok(WriteOp::Delete),
            None => Err(not_found(path, name)),
        })?;
    Ok(json_bytes(200, outcome.object.json.clone()))
}

fn delete_collection(
    shared: &Shared,
    request: &ApiRequest<'_>,
) -> Result<Response<ApiBody>, ApiError> {
    let path = request.path;
    let (labels, fields) = selectors(request.params)?;
    let filter =
        |object: &StoredObject| labels.matches(&object.value) && fields.matches(&object.value);
    let deleted =
        shared
            .store
            .delete_matching(&collection(path), path.namespace.as_deref(), &filter);
    let metadata = json!({"resourceVersion": shared.store.resource_version().to_string()});
    Ok(json_bytes(200, list_body(path, &metadata, &deleted)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apisim::path::parse_resource_path;

    #[test]
    fn verbs_by_method_and_shape() {
        let named = parse_resource_path("/api/v1/namespaces/a/pods/p").unwrap();
        let collection = parse_resource_path("/api/v1/namespaces/a/pods").unwrap();
        let watch = QueryParams {
            watch: true,
            ..QueryParams::default()
        };
        let none = QueryParams::default();
        let apply = Some("application/apply-patch+yaml");
        assert_eq!(classify(&Method::GET, &named, &none, None), Ok("GET"));
        assert_eq!(classify(&Method::GET, &collection, &none, None), Ok("LIST"));
        assert_eq!(
            classify(&Method::GET, &collection, &watch, None),
            Ok("WATCH")
        );
        assert_eq!(
            classify(&Method::POST, &collection, &none, None),
            Ok("CREATE")
        );
        assert_eq!(classify(&Method::PUT, &named, &none, None), Ok("UPDATE"));
        assert_eq!(classify(&Method::PATCH, &named, &none, apply), Ok("APPLY"));
        assert_eq!(
            classify(
                &Method::PATCH,
                &named,
                &none,
                Some("application/merge-patch+json")
            ),
            Ok("PATCH")
        );
        assert_eq!(classify(&Method::DELETE, &named, &none, None), Ok("DELETE"));
        assert_eq!(
            classify(&Method::DELETE, &collection, &none, None),
            Ok("DELETECOLLECTION")
        );
        assert_eq!(
            classify(&Method::POST, &named, &none, None)
                .unwrap_err()
                .code,
            405
        );
        assert_eq!(
            classify(&Method::PUT, &collection, &none, None)
                .unwrap_err()
                .code,
            405
        );
    }
}
