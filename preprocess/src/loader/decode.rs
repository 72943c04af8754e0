//! Decoding node trees into kperf's Go structs the way yaml.v2 (non-strict) does: known keys
//! set fields in document order (a repeated key: last wins), unknown keys are ignored (here:
//! noted as warnings), `<<` merges apply in place, null resets a field to its zero value, and
//! type errors are collected rather than fatal. Alias expansion is counted as in yaml.v2
//! (its "excessive aliasing" ratio) plus a per-node cap against alias bombs.

use std::collections::HashMap;

use super::LoadError;
use crate::yaml::{decode_base64, resolve, shown_value, to_bool, to_int, Node, NodeKind, Resolved};

/// Type errors kept for the message; the rest are only counted.
const MAX_TYPE_ERRORS_SHOWN: usize = 50;
/// Distinct unknown-key warnings kept.
const MAX_WARNINGS: usize = 20;

/// The fields of one Go struct, as a decode target.
pub(crate) trait StructTarget {
    /// The Go type name used in type errors (`types.ReplayRequest`).
    const GO_TYPE: &'static str;
    /// The field keys, for "did you mean" hints.
    const KEYS: &'static [&'static str];
    /// Sets the zero value (a null node).
    fn reset(&mut self);
    /// Decodes `value` into the field named `key`; false when there is no such field.
    fn field(
        &mut self,
        dec: &mut Decoder,
        key: &str,
        value: &Node,
        path: FieldPath<'_>,
    ) -> Result<bool, LoadError>;
}

struct UnknownKey {
    first: String,
    count: u64,
}

/// Decoding state for one document: counters, collected type errors, warnings.
pub(crate) struct Decoder {
    name: String,
    max_expansions: u64,
    decode_count: u64,
    alias_count: u64,
    alias_depth: u32,
    /// Alias expansions since the last [`Decoder::start_node`].
    node_expansions: u64,
    type_errors: Vec<String>,
    type_error_total: usize,
    unknown: HashMap<String, UnknownKey>,
    unknown_order: Vec<String>,
    unknown_dropped: u64,
}

impl Decoder {
    pub(crate) fn new(name: &str, max_expansions: usize) -> Self {
        Decoder {
            name: name.to_string(),
            max_expansions: max_expansions as u64,
            decode_count: 0,
            alias_count: 0,
            alias_depth: 0,
            node_expansions: 0,
            type_errors: Vec::new(),
            type_error_total: 0,
            unknown: HashMap::new(),
            unknown_order: Vec::new(),
            unknown_dropped: 0,
        }
    }

    /// Starts the alias budget of one top-level piece (a request, the spec, ...).
    pub(crate) fn start_node(&mut self) {
        self.node_expansions = 0;
    }

    pub(crate) fn type_error_count(&self) -> usize {
        self.type_error_total
    }

    /// The collected type errors, or `None` when there were none.
    pub(crate) fn take_type_errors(&mut self) -> Option<LoadError> {
        if self.type_error_total == 0 {
            return None;
        }
        Some(LoadError::Types {
            name: self.name.clone(),
            more: self.type_error_total - self.type_errors.len(),
            errors: std::mem::take(&mut self.type_errors),
        })
    }

    /// Unknown-key warnings, one per distinct key path, in first-seen order.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .unknown_order
            .iter()
            .filter_map(|k| self.unknown.get(k))
            .map(|u| match u.count {
                1 => u.first.clone(),
                n => format!("{} ({n} times)", u.first),
            })
            .collect();
        if self.unknown_dropped > 0 {
            out.push(format!(
                "{} more unknown keys of other kinds not listed",
                self.unknown_dropped
            ));
        }
        out
    }

    fn fatal(&self, line: usize, message: String) -> LoadError {
        LoadError::Syntax {
            name: self.name.clone(),
            line,
            message,
        }
    }

    /// yaml.v2's per-unmarshal bookkeeping, plus kreplay's per-node expansion cap.
    fn count(&mut self, line: usize) -> Result<(), LoadError> {
        self.decode_count += 1;
        if self.alias_depth > 0 {
            self.alias_count += 1;
            self.node_expansions += 1;
            if self.node_expansions > self.max_expansions {
                return Err(LoadError::Limit {
                    name: self.name.clone(),
                    message: format!(
                        "line {line}: aliases expand to more than {} nodes in one value \
                         (LoadOptions::max_alias_expansions)",
                        self.max_expansions
                    ),
                });
            }
        }
        if self.alias_count > 100
            && self.decode_count > 1000
            && self.alias_count as f64 / self.decode_count as f64
                > allowed_alias_ratio(self.decode_count)
        {
            return Err(self.fatal(line, "document contains excessive aliasing".into()));
        }
        Ok(())
    }

    fn type_error(&mut self, node: &Node, path: FieldPath<'_>, go_type: &str) {
        let shown = match &node.kind {
            NodeKind::Scalar { value, plain, tag } => {
                let tag = resolve(value, *plain, tag)
                    .map(|r| r.tag)
                    .unwrap_or_else(|_| "!!str".into());
                format!("{tag}{}", shown_value(value))
            }
            NodeKind::Seq(_) => "!!seq".into(),
            _ => "!!map".into(),
        };
        let field = if path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        self.type_error_total += 1;
        if self.type_errors.len() < MAX_TYPE_ERRORS_SHOWN {
            self.type_errors.push(format!(
                "line {}: {field}cannot unmarshal {shown} into {go_type}",
                node.line
            ));
        }
    }

    pub(crate) fn unknown_key(&mut self, path: &str, key: &str, known: &[&str]) {
        let generic = format!("{}\u{0}{key}", strip_indices(path));
        if let Some(u) = self.unknown.get_mut(&generic) {
            u.count += 1;
            return;
        }
        if self.unknown_order.len() >= MAX_WARNINGS {
            self.unknown_dropped += 1;
            return;
        }
        let at = if path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        let hint = suggest(key, known)
            .map(|k| format!(" (did you mean \"{k}\"?)"))
            .unwrap_or_default();
        let first = format!("{at}unknown key \"{key}\"{hint}");
        self.unknown
            .insert(generic.clone(), UnknownKey { first, count: 1 });
        self.unknown_order.push(generic);
    }

    /// Follows an alias (counted), or returns the node itself.
    fn through<T>(
        &mut self,
        node: &Node,
        f: impl FnOnce(&mut Self, &Node) -> Result<T, LoadError>,
    ) -> Result<T, LoadError> {
        let node = node.defined();
        self.count(node.line)?;
        match &node.kind {
            NodeKind::Alias(target) => {
                self.alias_depth += 1;
                let out = self.through(target, f);
                self.alias_depth -= 1;
                out
            }
            _ => f(self, node),
        }
    }

    /// A scalar's resolution for a typed field; `None` (after noting a type error) for a
    /// collection or a value of the wrong type.
    fn scalar<T>(
        &mut self,
        node: &Node,
        path: FieldPath<'_>,
        go_type: &str,
        convert: fn(Resolved) -> Option<T>,
    ) -> Result<Option<T>, LoadError> {
        self.through(node, |dec, n| {
            let NodeKind::Scalar { value, plain, tag } = &n.kind else {
                dec.type_error(n, path, go_type);
                return Ok(None);
            };
            let resolved = resolve(value, *plain, tag).map_err(|m| dec.fatal(n.line, m))?;
            match convert(resolved.value) {
                Some(v) => Ok(Some(v)),
                None => {
                    dec.type_error(n, path, go_type);
                    Ok(None)
                }
            }
        })
    }

    /// Decodes an int field (Go `int`/`int64`); a type error leaves it unchanged.
    pub(crate) fn int(
        &mut self,
        node: &Node,
        path: FieldPath<'_>,
        go_type: &str,
        out: &mut i64,
    ) -> Result<(), LoadError> {
        if let Some(v) = self.scalar(node, path, go_type, to_int)? {
            *out = v;
        }
        Ok(())
    }

    /// Decodes a bool field.
    pub(crate) fn boolean(
        &mut self,
        node: &Node,
        path: FieldPath<'_>,
        out: &mut bool,
    ) -> Result<(), LoadError> {
        if let Some(v) = self.scalar(node, path, "bool", to_bool)? {
            *out = v;
        }
        Ok(())
    }

    /// Decodes a string field: any non-null scalar keeps its literal text, null is "".
    pub(crate) fn string(
        &mut self,
        node: &Node,
        path: FieldPath<'_>,
        go_type: &str,
        out: &mut String,
    ) -> Result<(), LoadError> {
        let text = self.through(node, |dec, n| {
            let NodeKind::Scalar { value, plain, tag } = &n.kind else {
                dec.type_error(n, path, go_type);
                return Ok(None);
            };
            let resolved = resolve(value, *plain, tag).map_err(|m| dec.fatal(n.line, m))?;
            if resolved.tag == "!!binary" {
                let Some(bytes) = decode_base64(value) else {
                    return Err(
                        dec.fatal(n.line, "!!binary value contains invalid base64 data".into())
                    );
                };
                return match String::from_utf8(bytes) {
                    Ok(text) => Ok(Some(text)),
                    Err(_) => Err(dec.fatal(
                        n.line,
                        format!("{path}: !!binary value is not UTF-8 text, which kreplay requires"),
                    )),
                };
            }
            Ok(Some(if resolved.value == Resolved::Null {
                String::new()
            } else {
                value.clone()
            }))
        })?;
        if let Some(text) = text {
            *out = text;
        }
        Ok(())
    }

    /// A mapping key as yaml.v2 decodes it into a string (null is ""); `None` after a type
    /// error. Borrowed from the node: keys are decoded for every entry of every request.
    pub(crate) fn key<'n>(
        &mut self,
        node: &'n Node,
        parent: &str,
    ) -> Result<Option<&'n str>, LoadError> {
        let node = node.defined();
        self.count(node.line)?;
        match &node.kind {
            NodeKind::Alias(target) => {
                self.alias_depth += 1;
                let out = self.key(target, parent);
                self.alias_depth -= 1;
                out
            }
            NodeKind::Scalar { value, plain, tag } => {
                let resolved = resolve(value, *plain, tag).map_err(|m| self.fatal(node.line, m))?;
                Ok(Some(if resolved.value == Resolved::Null {
                    ""
                } else {
                    value.as_str()
                }))
            }
            _ => {
                self.type_error(node, FieldPath::of(parent), "string");
                Ok(None)
            }
        }
    }

    /// Decodes a sequence-typed field: `visit(Begin)` when a sequence or null is assigned, then
    /// `visit(Item)` per item (aliases followed and counted). A scalar or a mapping is a type
    /// error and visits nothing.
    pub(crate) fn sequence(
        &mut self,
        node: &Node,
        path: FieldPath<'_>,
        go_type: &str,
        mut visit: impl FnMut(&mut Self, SeqVisit<'_>) -> Result<(), LoadError>,
    ) -> Result<(), LoadError> {
        self.through(node, |dec, n| match &n.kind {
            NodeKind::Seq(items) => {
                visit(dec, SeqVisit::Begin(n.line))?;
                for item in items {
                    visit(dec, SeqVisit::Item(item))?;
                }
                Ok(())
            }
            NodeKind::Scalar { value, plain, tag } => {
                let resolved = resolve(value, *plain, tag).map_err(|m| dec.fatal(n.line, m))?;
                if resolved.value == Resolved::Null {
                    visit(dec, SeqVisit::Begin(n.line))
                } else {
                    dec.type_error(n, path, go_type);
                    Ok(())
                }
            }
            _ => {
                dec.type_error(n, path, go_type);
                Ok(())
            }
        })
    }

    /// Decodes a mapping into a struct (null resets it; other scalars and sequences are
    /// type errors). `path` names the struct in messages ("spec", "requests[3]", "").
    pub(crate) fn structure<T: StructTarget>(
        &mut self,
        node: &Node,
        path: &str,
        out: &mut T,
    ) -> Result<(), LoadError> {
        self.through(node, |dec, n| match &n.kind {
            NodeKind::Map(entries) => {
                for (key, value) in entries {
                    if key.is_merge_key() {
                        dec.merge(value, path, out)?;
                        continue;
                    }
                    let Some(name) = dec.key(key, path)? else {
                        continue;
                    };
                    let field_path = FieldPath {
                        parent: path,
                        key: name,
                    };
                    if !out.field(dec, name, value, field_path)? {
                        dec.unknown_key(path, name, T::KEYS);
                    }
                }
                Ok(())
            }
            NodeKind::Scalar { value, plain, tag } => {
                let resolved = resolve(value, *plain, tag).map_err(|m| dec.fatal(n.line, m))?;
                if resolved.value == Resolved::Null {
                    out.reset();
                } else {
                    dec.type_error(n, FieldPath::of(path), T::GO_TYPE);
                }
                Ok(())
            }
            _ => {
                dec.type_error(n, FieldPath::of(path), T::GO_TYPE);
                Ok(())
            }
        })
    }

    /// yaml.v2 (v2.4) merge: a mapping, an alias to one, or a sequence of those applied last
    /// to first (so earlier ones win among themselves); keys later in the mapping override.
    pub(crate) fn merge<T: StructTarget>(
        &mut self,
        value: &Node,
        path: &str,
        out: &mut T,
    ) -> Result<(), LoadError> {
        let wrong = |dec: &Self, line| {
            dec.fatal(
                line,
                "map merge requires map or sequence of maps as the value".into(),
            )
        };
        let value = value.defined();
        match &value.kind {
            NodeKind::Map(_) => self.structure(value, path, out),
            NodeKind::Alias(target) if is_map(target) => self.structure(value, path, out),
            NodeKind::Seq(items) => {
                for item in items.iter().rev() {
                    let item_def = item.defined();
                    let ok = match &item_def.kind {
                        NodeKind::Map(_) => true,
                        NodeKind::Alias(target) => is_map(target),
                        _ => false,
                    };
                    if !ok {
                        return Err(wrong(self, item_def.line));
                    }
                    self.structure(item, path, out)?;
                }
                Ok(())
            }
            _ => Err(wrong(self, value.line)),
        }
    }
}

/// Where a value sits, for messages: `parent.key` (either part may be empty). Built into a
/// string only when a message is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldPath<'a> {
    pub(crate) parent: &'a str,
    pub(crate) key: &'a str,
}

impl<'a> FieldPath<'a> {
    /// The path of a struct itself (no key).
    pub(crate) fn of(parent: &'a str) -> Self {
        FieldPath { parent, key: "" }
    }

    fn is_empty(&self) -> bool {
        self.parent.is_empty() && self.key.is_empty()
    }
}

impl std::fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.parent.is_empty(), self.key.is_empty()) {
            (_, true) => f.write_str(self.parent),
            (true, false) => f.write_str(self.key),
            (false, false) => write!(f, "{}.{}", self.parent, self.key),
        }
    }
}

fn is_map(node: &Node) -> bool {
    matches!(node.defined().kind, NodeKind::Map(_))
}

/// What [`Decoder::sequence`] hands its visitor.
pub(crate) enum SeqVisit<'n> {
    /// A new value (a sequence, or null = empty) replaces the field; at this line.
    Begin(usize),
    /// One item, in order.
    Item(&'n Node),
}

/// yaml.v2's allowed share of alias-expanded nodes: 99 % up to 400k decodes, 10 % from 4M.
fn allowed_alias_ratio(decode_count: u64) -> f64 {
    const LOW: f64 = 400_000.0;
    const HIGH: f64 = 4_000_000.0;
    let n = decode_count as f64;
    if n <= LOW {
        0.99
    } else if n >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((n - LOW) / (HIGH - LOW))
    }
}

/// `requests[3]` → `requests[]`, so one misspelt key is reported once, not per request.
fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// The known key a misspelling most likely meant: same letters ignoring case, or at most two
/// edits away.
fn suggest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(key)) {
        return Some(k);
    }
    known
        .iter()
        .map(|k| {
            (
                edit_distance(&key.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diag = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("labelselector", crate::validate::RawRequest::KEYS),
            Some("labelSelector")
        );
        let keys = <crate::validate::RawRequest as StructTarget>::KEYS;
        assert_eq!(suggest("timestmp", keys), Some("timestamp"));
        assert_eq!(suggest("zzz", keys), None);
        assert_eq!(strip_indices("requests[12].x"), "requests[].x");
    }
}
