//! Per-object order check: for every named object of a profile, apisim's order log
//! (`/apisim/order`) must show the profile's verbs in profile order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use preprocess::loader::{load_profile, LoadError, LoadOptions};
use preprocess::profile::{ProfileRequest, Verb};
use serde_json::Value;

/// Why the order check could not run.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The profile or order log could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The profile does not load.
    #[error(transparent)]
    Profile(#[from] LoadError),
    /// The order log is not apisim's.
    #[error(
        "{path}: not an apisim order log ({what}); expected the JSON of GET /apisim/order: \
         {{\"recorded\": N, \"dropped\": N, \"objects\": {{\"ns/resource/name\": [{{\"seq\": N, \"verb\": \"GET\"}}]}}}}"
    )]
    OrderLog {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// apisim dropped entries, so the log cannot prove the order.
    #[error(
        "{path}: apisim dropped {dropped} order-log entries (its --order-log-limit is too small \
         for this profile); raise it and run again"
    )]
    Dropped {
        /// The file.
        path: PathBuf,
        /// Entries dropped.
        dropped: u64,
    },
}

/// apisim's order-log key of a named request: `<ns>/<resource plural>/<name>`, read from
/// the apiPath; `None` for collection requests, which have no per-object order.
pub fn apisim_key(r: &ProfileRequest) -> Option<String> {
    if r.name.is_empty() || matches!(r.verb, Verb::List | Verb::Watch | Verb::DeleteCollection) {
        return None;
    }
    let path = r.api_path.split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Resource plural: the segment after the namespace, or after the group/version.
    let (ns, rest) = match segs.iter().position(|s| *s == "namespaces") {
        Some(i) if segs.len() > i + 2 => (segs[i + 1], &segs[i + 2..]),
        _ => {
            let skip = if segs.first() == Some(&"api") { 2 } else { 3 };
            ("", segs.get(skip..).unwrap_or(&[]))
        }
    };
    let resource = rest.first()?;
    Some(format!("{ns}/{resource}/{}", r.name))
}

/// apisim's name of a verb in its order log: the profile's spelling.
pub fn apisim_verb(v: Verb) -> &'static str {
    v.as_str()
}

/// The verbs each named object of a profile must see, in order (gzip is detected).
pub fn expected_order(profile: &Path) -> Result<BTreeMap<String, Vec<&'static str>>, OrderError> {
    let io = |source| OrderError::Io {
        path: profile.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(profile).map_err(io)?;
    let reader = preprocess::source::gunzip_if_magic(Box::new(file)).map_err(io)?;
    let mut expected: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    load_profile(
        &profile.display().to_string(),
        reader,
        &LoadOptions::default(),
        &mut |_, r| {
            if let Some(key) = apisim_key(&r) {
                expected.entry(key).or_default().push(apisim_verb(r.verb));
            }
            Ok(())
        },
    )?;
    Ok(expected)
}

/// Objects whose requests apisim saw in another order than expected, each as
/// `key: saw [...], expected [...]` (empty: no violation).
pub fn order_violations(
    expected: &BTreeMap<String, Vec<&'static str>>,
    order: &Value,
    order_path: &Path,
) -> Result<Vec<String>, OrderError> {
    let bad = |what: &str| OrderError::OrderLog {
        path: order_path.to_path_buf(),
        what: what.into(),
    };
    let objects = order
        .get("objects")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no \"objects\" map"))?;
    let dropped = order.get("dropped").and_then(Value::as_u64).unwrap_or(0);
    if dropped > 0 {
        return Err(OrderError::Dropped {
            path: order_path.to_path_buf(),
            dropped,
        });
    }
    let mut out = Vec::new();
    for (key, verbs) in expected {
        let seen: Vec<&str> = match objects.get(key) {
            None => Vec::new(),
            Some(list) => {
                let list = list
                    .as_array()
                    .ok_or_else(|| bad(&format!("objects[{key:?}] is not a list")))?;
                list.iter()
                    .map(|e| {
                        e.get("verb").and_then(Value::as_str).ok_or_else(|| {
                            bad(&format!("an entry of objects[{key:?}] has no \"verb\""))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        if &seen != verbs {
            out.push(format!("{key}: saw {seen:?}, expected {verbs:?}"));
        }
    }
    Ok(out)
}

/// Reads a profile and a saved `/apisim/order` JSON and returns the violations.
pub fn check_files(profile: &Path, order: &Path) -> Result<Vec<String>, OrderError> {
    let expected = expected_order(profile)?;
    let text = std::fs::read_to_string(order).map_err(|source| OrderError::Io {
        path: order.to_path_buf(),
        source,
    })?;
    let log: Value = serde_json::from_str(&text).map_err(|e| OrderError::OrderLog {
        path: order.to_path_buf(),
        what: format!("not JSON: {e}"),
    })?;
    order_violations(&expected, &log, order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expected() -> BTreeMap<String, Vec<&'static str>> {
        BTreeMap::from([(
            "default/pods/a".to_string(),
            vec!["CREATE", "GET", "DELETE"],
        )])
    }

    #[test]
    fn same_order_is_no_violation_and_other_order_is_one() {
        let p = Path::new("order.json");
        let good = json!({"recorded": 3, "dropped": 0, "objects": {"default/pods/a": [
            {"seq": 1, "verb": "CREATE"}, {"seq": 2, "verb": "GET"}, {"seq": 5, "verb": "DELETE"}]}});
        assert!(order_violations(&expected(), &good, p).unwrap().is_empty());
        let swapped = json!({"recorded": 3, "dropped": 0, "objects": {"default/pods/a": [
            {"seq": 1, "verb": "GET"}, {"seq": 2, "verb": "CREATE"}, {"seq": 5, "verb": "DELETE"}]}});
        let v = order_violations(&expected(), &swapped, p).unwrap();
        assert_eq!(v.len(), 1);
        assert!(
            v[0].starts_with("default/pods/a: saw [\"GET\", \"CREATE\""),
            "{v:?}"
        );
        let missing = json!({"recorded": 0, "dropped": 0, "objects": {}});
        assert_eq!(order_violations(&expected(), &missing, p).unwrap().len(), 1);
    }

    #[test]
    fn dropped_entries_and_foreign_json_are_errors() {
        let p = Path::new("order.json");
        let dropped = json!({"recorded": 3, "dropped": 2, "objects": {}});
        let e = order_violations(&expected(), &dropped, p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dropped 2") && e.contains("--order-log-limit"),
            "{e}"
        );
        let foreign = json!({"items": []});
        let e = order_violations(&expected(), &foreign, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("order.json") && e.contains("objects"), "{e}");
    }
}
