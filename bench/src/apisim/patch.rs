//! Patch bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and YAML decoding for server-side apply.

use serde_json::{Map, Value};

use super::status::ApiError;

/// The patch flavours apisim applies, chosen by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`: applied as a merge patch (no patch strategies).
    StrategicMerge,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml`: server-side apply, applied as a merge patch (no field ownership).
    Apply,
}

impl PatchKind {
    /// Maps a Content-Type (parameters ignored) to a patch kind, or the apiserver's 415.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, ApiError> {
        let media = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::StrategicMerge),
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/apply-patch+yaml" => Ok(PatchKind::Apply),
            _ => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format ({media:?}) - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, \
                 application/strategic-merge-patch+json"
            ))),
        }
    }
}

/// Applies an RFC 7386 merge patch in place.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Applies an RFC 6902 JSON patch (an array of operations); failures are 422s naming the operation index.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let operations = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json patch body must be an array of operations"))?;
    for (index, operation) in operations.iter().enumerate() {
        apply_operation(target, operation)
            .map_err(|why| ApiError::invalid(format!("json patch operation {index}: {why}")))?;
    }
    Ok(())
}

fn apply_operation(target: &mut Value, operation: &Value) -> Result<(), String> {
    let field = |name: &str| {
        operation
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("missing string field {name:?}"))
    };
    let op = field("op")?;
    let path = parse_pointer(field("path")?)?;
    let value = || {
        operation
            .get("value")
            .cloned()
            .ok_or_else(|| "missing field \"value\"".to_string())
    };
    match op {
        "add" => add(target, &path, value()?),
        "remove" => remove(target, &path).map(|_| ()),
        "replace" => {
            let slot = resolve_mut(target, &path)?;
            *slot = value()?;
            Ok(())
        }
        "move" => {
            let from = parse_pointer(field("from")?)?;
            let moved = remove(target, &from)?;
            add(target, &path, moved)
        }
        "copy" => {
            let from = parse_pointer(field("from")?)?;
            let copied = resolve_mut(target, &from)?.clone();
            add(target, &path, copied)
        }
        "test" => {
            if *resolve_mut(target, &path)? == value()? {
                Ok(())
            } else {
                Err(format!("test failed at {:?}", field("path")?))
            }
        }
        other => Err(format!(
            "unknown op {other:?}: expected add, remove, replace, move, copy or test"
        )),
    }
}

fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("path {pointer:?} must start with '/'"))?;
    Ok(rest
        .split('/')
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn resolve_mut<'a>(target: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut node = target;
    for token in path {
        node = match node {
            Value::Object(map) => map
                .get_mut(token)
                .ok_or_else(|| format!("path element {token:?} does not exist"))?,
            Value::Array(items) => {
                let index = array_index(token, items.len())?;
                items
                    .get_mut(index)
                    .ok_or_else(|| format!("array index {token} out of range"))?
            }
            _ => return Err(format!("path element {token:?} is inside a scalar")),
        };
    }
    Ok(node)
}

fn array_index(token: &str, len: usize) -> Result<usize, String> {
    if token == "-" {
        return Ok(len);
    }
    token
        .parse::<usize>()
        .map_err(|_| format!("{token:?} is not an array index"))
}

fn add(target: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent_path)) = path.split_last() else {
        *target = value;
        return Ok(());
    };
    match resolve_mut(target, parent_path)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(last, items.len())?;
            if index > items.len() {
                return Err(format!("array index {last} out of range"));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("cannot add {last:?} inside a scalar")),
    }
}

fn remove(target: &mut Value, path: &[String]) -> Result<Value, String> {
    let (last, parent_path) = path
        .split_last()
        .ok_or_else(|| "cannot remove the whole document".to_string())?;
    match resolve_mut(target, parent_path)? {
        Value::Object(map) => map
            .remove(last)
            .ok_or_else(|| format!("path element {last:?} does not exist")),
        Value::Array(items) => {
            let index = array_index(last, items.len())?;
            if index >= items.len() {
                return Err(format!("array index {last} out of range"));
            }
            Ok(items.remove(index))
        }
        _ => Err(format!("cannot remove {last:?} inside a scalar")),
    }
}

/// Decodes a YAML (or JSON) document into JSON; errors are 400s with the parser's location.
pub fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    serde_saphyr::from_slice::<Value>(body)
        .map_err(|error| ApiError::bad_request(format!("error decoding YAML body: {error}")))
}

/// Decodes a JSON body, or YAML when the Content-Type says so.
pub fn decode_body(body: &[u8], content_type: Option<&str>) -> Result<Value, ApiError> {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "" | "application/json" | "*/*" => serde_json::from_slice(body).map_err(|error| {
            ApiError::bad_request(format!(
                "the body of the request is not valid JSON: {error}"
            ))
        }),
        "application/yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(body),
        _ => Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format ({media:?}) - accepted media types \
             include: application/json, application/yaml (apisim does not decode protobuf or CBOR)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386_examples() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
        let mut target = json!({"a": [{"b": "c"}]});
        merge_patch(&mut target, &json!({"a": [1]}));
        assert_eq!(target, json!({"a": [1]}));
        let mut target = json!(["a"]);
        merge_patch(&mut target, &json!({"a": {"bb": {"ccc": null}}}));
        assert_eq!(target, json!({"a": {"bb": {}}}));
    }

    #[test]
    fn json_patch_operations() {
        let mut target = json!({"foo": ["bar", "baz"], "x": {"y": 1}});
        json_patch(
            &mut target,
            &json!([
                {"op": "add", "path": "/foo/1", "value": "qux"},
                {"op": "add", "path": "/foo/-", "value": "end"},
                {"op": "remove", "path": "/foo/0"},
                {"op": "replace", "path": "/x/y", "value": 2},
                {"op": "copy", "from": "/x", "path": "/z"},
                {"op": "move", "from": "/z/y", "path": "/m~1n"},
                {"op": "test", "path": "/m~1n", "value": 2},
            ]),
        )
        .unwrap();
        assert_eq!(
            target,
            json!({"foo": ["qux", "baz", "end"], "x": {"y": 2}, "z": {}, "m/n": 2})
        );
    }

    #[test]
    fn json_patch_failures_name_the_operation() {
        let mut target = json!({"a": 1});
        let error = json_patch(
            &mut target,
            &json!([{"op": "test", "path": "/a", "value": 1}, {"op": "remove", "path": "/b"}]),
        )
        .unwrap_err();
        assert_eq!(error.code, 422);
        assert!(error.message.contains("operation 1"), "{}", error.message);
        assert_eq!(json_patch(&mut target, &json!({})).unwrap_err().code, 400);
        let error = json_patch(
            &mut target,
            &json!([{"op": "test", "path": "/a", "value": 9}]),
        )
        .unwrap_err();
        assert!(error.message.contains("test failed"));
    }

    #[test]
    fn yaml_and_json_bodies() {
        let value = decode_yaml(
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: \"1\"\n",
        )
        .unwrap();
        assert_eq!(value["metadata"]["name"], "c");
        assert_eq!(value["data"]["k"], "1");
        let value = decode_yaml(br#"{"kind": "Pod", "spec": {"n": 3}}"#).unwrap();
        assert_eq!(value["spec"]["n"], 3);
        assert_eq!(decode_yaml(b"a: [1, 2").unwrap_err().code, 400);
        assert_eq!(decode_body(b"{", None).unwrap_err().code, 400);
        let protobuf = Some("application/vnd.kubernetes.protobuf");
        assert_eq!(decode_body(b"k8s\0", protobuf).unwrap_err().code, 415);
        assert_eq!(
            decode_body(b"a: 1", Some("application/yaml")).unwrap()["a"],
            1
        );
    }

    #[test]
    fn patch_kind_by_content_type() {
        assert_eq!(
            PatchKind::from_content_type(Some("application/merge-patch+json; charset=utf-8"))
                .unwrap(),
            PatchKind::Merge
        );
        assert_eq!(
            PatchKind::from_content_type(Some("application/apply-patch+yaml")).unwrap(),
            PatchKind::Apply
        );
        assert_eq!(
            PatchKind::from_content_type(Some("text/plain"))
                .unwrap_err()
                .code,
            415
        );
        assert_eq!(PatchKind::from_content_type(None).unwrap_err().code, 415);
    }
}
