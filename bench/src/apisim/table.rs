//! `meta.k8s.io/v1` Table answers, which kubectl asks for (`Accept: ...;as=Table;...`) to print `get`.
//! Columns: Name and Created At; each row carries the object's metadata as PartialObjectMetadata.

use std::sync::Arc;

use serde_json::{json, Value};

use super::store::{metadata_str, StoredObject};

/// True when the Accept header asks for a Table.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| accept.contains("as=Table"))
}

/// A Table of `objects`.
pub fn table(
    objects: &[Arc<StoredObject>],
    resource_version: &str,
    continue_token: Option<&str>,
) -> Value {
    let rows: Vec<Value> = objects.iter().map(|object| row(&object.value)).collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(token) = continue_token {
        metadata["continue"] = Value::String(token.to_string());
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Object name.", "priority": 0},
            {"name": "Created At", "type": "date", "format": "", "description": "Creation time.", "priority": 0}
        ],
        "rows": rows
    })
}

fn row(object: &Value) -> Value {
    json!({
        "cells": [metadata_str(object, "name"), metadata_str(object, "creationTimestamp")],
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or(Value::Null)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apisim::store::stored;

    #[test]
    fn rows_carry_name_and_metadata() {
        let object = Arc::new(stored(
            json!({"metadata": {"name": "a", "namespace": "n"}}),
            3,
        ));
        let value = table(&[object], "3", Some("tok"));
        assert_eq!(value["kind"], "Table");
        assert_eq!(value["rows"][0]["cells"][0], "a");
        assert_eq!(value["rows"][0]["object"]["metadata"]["namespace"], "n");
        assert_eq!(value["metadata"]["continue"], "tok");
        assert!(wants_table(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json")));
    }
}
