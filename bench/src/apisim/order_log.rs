//! The order log: for each object key, the requests that touched it in arrival order. Tests of kreplay read
//! it at `/apisim/order` to check that each object's requests arrived in the recorded order.
//!
//! The key is `<namespace>/<resource>/<name>`: namespace "" for cluster-scoped or all-namespace requests,
//! resource the plural from the URL (`pods`, `deployments`; no group), name from the URL, or for a
//! create the name from the body (`metadata.name`, else the generated name). Collection requests (LIST,
//! WATCH, DELETECOLLECTION, a create whose name is unknown) use an empty name: `default/pods/`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};

/// One request in an object's history.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OrderEntry {
    /// Global arrival sequence number (1-based, shared by all requests).
    pub seq: u64,
    /// Verb (`GET`, `CREATE`, ...).
    pub verb: &'static str,
}

#[derive(Default)]
struct OrderState {
    by_key: HashMap<String, Vec<OrderEntry>>,
    recorded: usize,
    dropped: u64,
}

/// The log, bounded to `limit` entries in total (later requests are counted as dropped).
pub struct OrderLog {
    state: Mutex<OrderState>,
    limit: usize,
}

impl OrderLog {
    /// A log keeping at most `limit` entries; 0 disables it.
    pub fn new(limit: usize) -> Self {
        OrderLog {
            state: Mutex::new(OrderState::default()),
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OrderState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one request to `key`'s history.
    pub fn record(&self, key: &str, seq: u64, verb: &'static str) {
        if self.limit == 0 {
            return;
        }
        let mut state = self.lock();
        if state.recorded >= self.limit {
            state.dropped += 1;
            return;
        }
        state.recorded += 1;
        let entry = OrderEntry { seq, verb };
        match state.by_key.get_mut(key) {
            Some(entries) => entries.push(entry),
            None => {
                state.by_key.insert(key.to_string(), vec![entry]);
            }
        }
    }

    /// Forgets everything.
    pub fn reset(&self) {
        *self.lock() = OrderState::default();
    }

    /// The history of one key, by arrival number. (Entries are recorded once the body is read, so two
    /// requests racing on different connections may be appended out of arrival order.)
    pub fn entries(&self, key: &str) -> Vec<OrderEntry> {
        let mut entries = self.lock().by_key.get(key).cloned().unwrap_or_default();
        entries.sort_by_key(|entry| entry.seq);
        entries
    }

    /// `{"recorded": N, "dropped": M, "objects": {key: [{"seq", "verb"}...]}}`, keys sorted.
    pub fn to_json(&self) -> Value {
        let state = self.lock();
        let objects: std::collections::BTreeMap<&String, Vec<&OrderEntry>> = state
            .by_key
            .iter()
            .map(|(key, entries)| {
                let mut sorted: Vec<&OrderEntry> = entries.iter().collect();
                sorted.sort_by_key(|entry| entry.seq);
                (key, sorted)
            })
            .collect();
        json!({"recorded": state.recorded, "dropped": state.dropped, "objects": objects})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_per_key_order_and_bound() {
        let log = OrderLog::new(6);
        for (key, seq, verb) in [
            ("ns/pods/a", 1, "CREATE"),
            ("ns/pods/b", 2, "CREATE"),
            ("ns/pods/a", 3, "GET"),
            ("ns/pods/a", 4, "DELETE"),
            ("ns/pods/c", 6, "GET"),
            ("ns/pods/c", 5, "CREATE"),
            ("ns/pods/a", 7, "GET"),
        ] {
            log.record(key, seq, verb);
        }
        let verbs = |key: &str| -> Vec<(u64, &str)> {
            log.entries(key).iter().map(|e| (e.seq, e.verb)).collect()
        };
        assert_eq!(
            verbs("ns/pods/a"),
            [(1, "CREATE"), (3, "GET"), (4, "DELETE")]
        );
        assert_eq!(verbs("ns/pods/c"), [(5, "CREATE"), (6, "GET")]);
        let json = log.to_json();
        assert_eq!(json["recorded"], 6);
        assert_eq!(json["dropped"], 1);
        assert_eq!(json["objects"]["ns/pods/c"][0]["verb"], "CREATE");
        assert_eq!(json["objects"]["ns/pods/b"][0]["seq"], 2);
        log.reset();
        assert!(log.entries("ns/pods/a").is_empty());
        assert_eq!(log.to_json()["recorded"], 0);
    }
}
