//! A query as Go's `url.Values` sees it: a multi-map kept as pairs in insertion order,
//! encoded with keys sorted bytewise and each key's values in insertion order.

use std::borrow::Cow;

use super::go_url::{escape_into, parse_query, QueryPair, UrlPart};

/// Query pairs in insertion order; equal keys form one `url.Values` entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryPairs<'a> {
    pairs: Vec<QueryPair<'a>>,
}

impl<'a> QueryPairs<'a> {
    /// Go's `url.ParseQuery(raw)`, keeping the pairs it accepts.
    pub(crate) fn parse(raw: &'a [u8]) -> Self {
        QueryPairs {
            pairs: parse_query(raw),
        }
    }

    /// Whether the map has no key (`len(values) == 0`).
    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `Values.Set`: `key` gets exactly one value.
    pub(crate) fn set(&mut self, key: &'a str, value: &'a str) {
        self.pairs.retain(|(k, _)| k.as_ref() != key.as_bytes());
        self.pairs.push((
            Cow::Borrowed(key.as_bytes()),
            Cow::Borrowed(value.as_bytes()),
        ));
    }

    /// Adds `key=value` before any existing value of `key` (as a `Param` call made
    /// before the recorded values are added).
    pub(crate) fn add_first(&mut self, key: &'a str, value: &'a str) {
        self.pairs.insert(
            0,
            (
                Cow::Borrowed(key.as_bytes()),
                Cow::Borrowed(value.as_bytes()),
            ),
        );
    }

    /// Appends `Values.Encode()` to `out`: keys sorted bytewise (values of one key in
    /// insertion order), `key=value` pairs joined by `&`, each part query-escaped.
    pub(crate) fn encode_into(&mut self, out: &mut String) {
        // A stable sort keeps each key's values in insertion order.
        self.pairs.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            escape_into(out, key, UrlPart::QueryComponent);
            out.push('=');
            escape_into(out, value, UrlPart::QueryComponent);
        }
    }
}
