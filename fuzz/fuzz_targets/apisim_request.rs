//! apisim's request path: the resource path, the query, label and field selectors, body
//! decoding and the three patch kinds, on any bytes (split at the first two newlines into
//! the request target, the content type and the body).
#![no_main]

use bench::apisim::{patch, path, selector};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let target = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let content_type = parts.next().map(String::from_utf8_lossy);
    let body = parts.next().unwrap_or_default();

    let (path_part, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*target, None),
    };
    if let Some(resource) = path::parse_resource_path(path_part) {
        let _ = resource.qualified_resource();
        let _ = resource.api_version();
    }
    if let Ok(params) = path::parse_query(query) {
        std::hint::black_box(&params);
    }
    let object = patch::decode_body(body, content_type.as_deref()).ok();
    for text in [query.unwrap_or_default(), &*target] {
        if let Ok(labels) = selector::LabelSelector::parse(text) {
            if let Some(object) = &object {
                let _ = labels.matches(object);
            }
        }
        if let Ok(fields) = selector::FieldSelector::parse(text) {
            let _ = fields.required_name();
            if let Some(object) = &object {
                let _ = fields.matches(object);
            }
        }
    }
    let _ = patch::PatchKind::from_content_type(content_type.as_deref());
    if let Some(patch_value) = &object {
        let mut target_object: Value = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"app": "x"}},
            "data": {"k": "v", "list": [1, 2, 3]}
        });
        let mut merged = target_object.clone();
        patch::merge_patch(&mut merged, patch_value);
        let _ = patch::json_patch(&mut target_object, patch_value);
    }
});
