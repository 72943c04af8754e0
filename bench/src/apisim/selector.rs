//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`exists) and field selectors.

use serde_json::Value;

use super::status::ApiError;

/// One label requirement.
#[derive(Debug, Clone, PartialEq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parses the Kubernetes label selector syntax; errors are 400s quoting the selector.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let invalid = |why: &str| {
            ApiError::bad_request(format!(
                "unable to parse requirement: invalid label selector {text:?}: {why}"
            ))
        };
        let mut requirements = Vec::new();
        for clause in split_top_level(text) {
            let clause = clause.trim();
            if clause.is_empty() {
                continue;
            }
            if let Some(key) = clause.strip_prefix('!') {
                requirements.push(LabelRequirement::NotExists(checked_key(
                    key.trim(),
                    &invalid,
                )?));
            } else if let Some((key, value)) = clause.split_once("!=") {
                requirements.push(LabelRequirement::NotEquals(
                    checked_key(key.trim(), &invalid)?,
                    value.trim().to_string(),
                ));
            } else if let Some((key, value)) = clause.split_once("==") {
                requirements.push(LabelRequirement::Equals(
                    checked_key(key.trim(), &invalid)?,
                    value.trim().to_string(),
                ));
            } else if let Some((key, value)) = clause.split_once('=') {
                requirements.push(LabelRequirement::Equals(
                    checked_key(key.trim(), &invalid)?,
                    value.trim().to_string(),
                ));
            } else if let Some((key, values)) = split_set_clause(clause, " notin ") {
                requirements.push(LabelRequirement::NotIn(
                    checked_key(key, &invalid)?,
                    parse_set(values, &invalid)?,
                ));
            } else if let Some((key, values)) = split_set_clause(clause, " in ") {
                requirements.push(LabelRequirement::In(
                    checked_key(key, &invalid)?,
                    parse_set(values, &invalid)?,
                ));
            } else if clause.contains(['<', '>', '(', ')', ' ']) {
                return Err(invalid(
                    "expected key, !key, key=value, key==value, key!=value, key in (a,b) or key notin (a,b)",
                ));
            } else {
                requirements.push(LabelRequirement::Exists(checked_key(clause, &invalid)?));
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// True when the object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.get("metadata").and_then(|m| m.get("labels"));
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements
            .iter()
            .all(|requirement| match requirement {
                LabelRequirement::Equals(key, value) => label(key) == Some(value.as_str()),
                LabelRequirement::NotEquals(key, value) => label(key) != Some(value.as_str()),
                LabelRequirement::In(key, values) => {
                    label(key).is_some_and(|v| values.iter().any(|candidate| candidate == v))
                }
                LabelRequirement::NotIn(key, values) => {
                    label(key).is_none_or(|v| values.iter().all(|candidate| candidate != v))
                }
                LabelRequirement::Exists(key) => label(key).is_some(),
                LabelRequirement::NotExists(key) => label(key).is_none(),
            })
    }

    /// True when the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

fn checked_key(key: &str, invalid: &impl Fn(&str) -> ApiError) -> Result<String, ApiError> {
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_string())
    } else {
        Err(invalid(&format!("invalid label key {key:?}")))
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn split_set_clause<'a>(clause: &'a str, operator: &str) -> Option<(&'a str, &'a str)> {
    let (key, values) = clause.split_once(operator)?;
    Some((key.trim(), values.trim()))
}

fn parse_set(values: &str, invalid: &impl Fn(&str) -> ApiError) -> Result<Vec<String>, ApiError> {
    let inner = values
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| invalid("a set must be written (a,b,...)"))?;
    Ok(inner
        .split(',')
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
        .collect())
}

/// A parsed field selector: `path=value`, `path==value`, `path!=value`, comma-separated. Any dotted JSON
/// path of the object is accepted (the apiserver allows only a per-resource list).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    requirements: Vec<(String, String, bool)>,
}

impl FieldSelector {
    /// Parses a field selector; errors are 400s quoting the selector.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for clause in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (field, value, equal) = if let Some((f, v)) = clause.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = clause.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = clause.split_once('=') {
                (f, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector {text:?}: {clause:?} is not field=value, field==value or field!=value"
                )));
            };
            requirements.push((field.trim().to_string(), value.trim().to_string(), equal));
        }
        Ok(FieldSelector { requirements })
    }

    /// The value required for `metadata.name`, if the selector pins it.
    pub fn required_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|(field, _, equal)| *equal && field == "metadata.name")
            .map(|(_, value, _)| value.as_str())
    }

    /// True when every requirement holds; a missing field compares as "".
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|(field, value, equal)| {
            let actual = field
                .split('.')
                .try_fold(object, |node, part| node.get(part))
                .map(|node| match node {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels}, "spec": {"nodeName": "n1"}})
    }

    #[test]
    fn equality_and_inequality() {
        let object = pod(json!({"app": "web", "tier": "front"}));
        assert!(LabelSelector::parse("app=web").unwrap().matches(&object));
        assert!(LabelSelector::parse("app==web,tier=front")
            .unwrap()
            .matches(&object));
        assert!(!LabelSelector::parse("app=db").unwrap().matches(&object));
        assert!(LabelSelector::parse("app!=db").unwrap().matches(&object));
        assert!(LabelSelector::parse("missing!=x").unwrap().matches(&object));
    }

    #[test]
    fn set_and_existence() {
        let object = pod(json!({"app": "web"}));
        assert!(LabelSelector::parse("app in (db, web)")
            .unwrap()
            .matches(&object));
        assert!(!LabelSelector::parse("app notin (db,web)")
            .unwrap()
            .matches(&object));
        assert!(LabelSelector::parse("tier notin (a)")
            .unwrap()
            .matches(&object));
        assert!(LabelSelector::parse("app,!tier").unwrap().matches(&object));
        assert!(!LabelSelector::parse("tier").unwrap().matches(&object));
        assert!(LabelSelector::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_selectors_are_400() {
        for text in ["app in web", "a b", "=x", "x>1"] {
            let error = LabelSelector::parse(text).unwrap_err();
            assert_eq!(error.code, 400, "{text}");
            assert!(error.message.contains(text), "{text}: {}", error.message);
        }
    }

    #[test]
    fn field_selectors() {
        let object = pod(json!({}));
        assert!(FieldSelector::parse("metadata.name=p")
            .unwrap()
            .matches(&object));
        assert!(
            FieldSelector::parse("metadata.namespace!=x,spec.nodeName==n1")
                .unwrap()
                .matches(&object)
        );
        assert!(!FieldSelector::parse("metadata.name=q")
            .unwrap()
            .matches(&object));
        assert_eq!(
            FieldSelector::parse("metadata.name=p")
                .unwrap()
                .required_name(),
            Some("p")
        );
        assert_eq!(FieldSelector::parse("nonsense").unwrap_err().code, 400);
    }
}
