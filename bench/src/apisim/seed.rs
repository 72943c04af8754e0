//! `--seed-objects FILE`: objects apisim holds at start and again after `POST /apisim/reset`, so a
//! replay that GETs, UPDATEs or DELETEs objects it did not create finds them.
//!
//! The file is YAML or JSON: a list of objects, a `kind: List` with `items`, or one object. Each
//! needs `apiVersion`, `kind` and `metadata.name`; namespaced kinds without `metadata.namespace`
//! go to `default`.

use std::path::Path;

use serde_json::Value;

use super::discovery::resource_for_kind;
use super::store::{metadata_mut, ObjectKey, Store, WriteOp};

/// One object to seed, with where it lives.
#[derive(Debug, Clone)]
pub struct SeedObject {
    key: ObjectKey,
    object: Value,
}

/// Reads and checks the seed file; errors name the file, the item and the missing field.
pub fn load_seed_objects(path: &Path) -> Result<Vec<SeedObject>, String> {
    let where_ = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("--seed-objects {where_}: {e}"))?;
    let document: Value = serde_saphyr::from_slice(&bytes)
        .map_err(|e| format!("--seed-objects {where_}: not YAML or JSON: {e}"))?;
    let items = match document {
        Value::Array(items) => items,
        Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
            match map.get("items") {
                Some(Value::Array(items)) => items.clone(),
                _ => {
                    return Err(format!(
                        "--seed-objects {where_}: a List needs an items array"
                    ))
                }
            }
        }
        Value::Object(_) => vec![document],
        _ => {
            return Err(format!(
                "--seed-objects {where_}: expected a list of objects, a kind: List, or one object"
            ))
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, object)| {
            seed_object(object).map_err(|why| format!("--seed-objects {where_}: item {i}: {why}"))
        })
        .collect()
}

fn seed_object(mut object: Value) -> Result<SeedObject, String> {
    let text = |object: &Value, field: &str| -> Result<String, String> {
        match object.get(field).and_then(Value::as_str) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(format!("{field} is missing or empty")),
        }
    };
    let api_version = text(&object, "apiVersion")?;
    let kind = text(&object, "kind")?;
    if !object.get("metadata").is_some_and(Value::is_object) {
        return Err("metadata is missing".into());
    }
    let name = text(&object["metadata"], "name").map_err(|e| format!("metadata.{e}"))?;
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let (resource, namespaced) = resource_for_kind(group, &kind);
    let namespace = if namespaced {
        let ns = object["metadata"]
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or("default")
            .to_string();
        metadata_mut(&mut object).insert("namespace".into(), Value::String(ns.clone()));
        ns
    } else {
        String::new()
    };
    Ok(SeedObject {
        key: ObjectKey {
            collection: format!("{group}/{resource}"),
            namespace,
            name,
        },
        object,
    })
}

/// Stores the seed objects (each a creation: it gets a uid and a resourceVersion).
pub fn apply_seed(store: &Store, seed: &[SeedObject]) {
    for s in seed {
        // A duplicate in the file replaces the earlier object, as a second `kubectl apply` would.
        let _ = store.write(&s.key, |_| Ok(WriteOp::Put(s.object.clone())));
    }
}
