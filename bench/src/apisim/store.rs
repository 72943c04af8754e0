//! The in-memory object store: one global resourceVersion, objects kept serialised, a bounded event history.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::{Map, Value};
use time::macros::format_description;
use tokio::sync::watch;

use super::status::ApiError;

/// Where an object lives: `collection` is `<group>/<resource>` (`/pods`, `apps/deployments`); the
/// namespace is "" for cluster-scoped objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `<group>/<resource>`.
    pub collection: String,
    /// Namespace, "" when cluster-scoped.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

/// An object at one resourceVersion, with its JSON encoding computed once.
#[derive(Debug)]
pub struct StoredObject {
    /// The object.
    pub value: Value,
    /// `value` serialised as JSON.
    pub json: Bytes,
    /// Its resourceVersion.
    pub resource_version: u64,
}

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object deleted.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history and sent to watchers.
#[derive(Debug)]
pub struct StoreEvent {
    /// resourceVersion of the change.
    pub resource_version: u64,
    /// What happened.
    pub event_type: EventType,
    /// Which object.
    pub key: ObjectKey,
    /// The object after the change (for DELETED: its last state, at the deletion's resourceVersion).
    pub object: Arc<StoredObject>,
    /// For MODIFIED, the object before the change (watches with selectors need both states).
    pub previous: Option<Arc<StoredObject>>,
    /// `{"type":...,"object":...}\n`, rendered once for all watchers.
    pub line: Bytes,
}

/// What a write callback asks the store to do.
pub enum WriteOp {
    /// Store this object (create or replace).
    Put(Value),
    /// Delete the object.
    Delete,
}

/// The result of a write.
pub struct WriteOutcome {
    /// The object as stored (or, for a delete, as it was deleted).
    pub object: Arc<StoredObject>,
    /// What happened.
    pub event_type: EventType,
}

/// A page of a list.
pub struct ListPage {
    /// Matching objects in (namespace, name) order.
    pub items: Vec<Arc<StoredObject>>,
    /// The store's resourceVersion when the page was read.
    pub resource_version: u64,
    /// The last key returned, when more matching objects follow.
    pub continue_after: Option<(String, String)>,
    /// How many matching objects follow this page.
    pub remaining: u64,
}

struct StoreState {
    resource_version: u64,
    objects: BTreeMap<ObjectKey, Arc<StoredObject>>,
    history: VecDeque<Arc<StoreEvent>>,
    /// Highest resourceVersion dropped from the history: watches must start at or after it.
    compacted: u64,
    next_uid: u64,
}

/// The store. All operations take one short lock; nothing is held across an await.
pub struct Store {
    state: Mutex<StoreState>,
    history_limit: usize,
    latest: watch::Sender<u64>,
    /// Per collection, a channel that changes when that collection changes: a watch wakes
    /// for writes to what it watches, not for every write (tens of thousands of watches
    /// woken by every write cost apisim more than all their events).
    collections: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Store {
    /// An empty store keeping at most `history_limit` events for watches.
    pub fn new(history_limit: usize) -> Self {
        Store {
            state: Mutex::new(StoreState {
                resource_version: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 1,
                next_uid: 1,
            }),
            history_limit: history_limit.max(1),
            latest: watch::channel(1).0,
            collections: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, StoreState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters to a
        // simulator, so a poisoned lock is used as is.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    /// A receiver that changes whenever the resourceVersion advances.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// A receiver that changes whenever an object of `collection` is written (and on reset).
    pub fn subscribe_collection(&self, collection: &str) -> watch::Receiver<u64> {
        let mut map = self
            .collections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match map.get(collection) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(0);
                map.insert(collection.to_string(), sender);
                receiver
            }
        }
    }

    /// Wakes the watches of `collection` (all of them when `None`).
    fn notify_collections(&self, collection: Option<&str>, resource_version: u64) {
        let map = self
            .collections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match collection {
            Some(c) => {
                if let Some(sender) = map.get(c) {
                    sender.send_replace(resource_version);
                }
            }
            None => {
                for sender in map.values() {
                    sender.send_replace(resource_version);
                }
            }
        }
    }

    /// The object at `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<StoredObject>> {
        self.lock().objects.get(key).cloned()
    }

    /// Reads matching objects of a collection (one namespace, or all when None), in key order, starting
    /// after `start_after` (namespace, name), at most `limit` (0 = all).
    pub fn list(
        &self,
        collection: &str,
        namespace: Option<&str>,
        start_after: Option<(&str, &str)>,
        limit: u64,
        filter: &dyn Fn(&StoredObject) -> bool,
    ) -> ListPage {
        let state = self.lock();
        let mut page = ListPage {
            items: Vec::new(),
            resource_version: state.resource_version,
            continue_after: None,
            remaining: 0,
        };
        let lower = ObjectKey {
            collection: collection.to_string(),
            namespace: namespace.unwrap_or("").to_string(),
            name: String::new(),
        };
        for (key, object) in state.objects.range(lower..) {
            if key.collection != collection {
                break;
            }
            if let Some(ns) = namespace {
                if key.namespace != ns {
                    break;
                }
            }
            if let Some((after_ns, after_name)) = start_after {
                if (key.namespace.as_str(), key.name.as_str()) <= (after_ns, after_name) {
                    continue;
                }
            }
            if !filter(object) {
                continue;
            }
            if limit > 0 && page.items.len() as u64 >= limit {
                page.remaining += 1;
                continue;
            }
            page.items.push(object.clone());
        }
        if page.remaining > 0 {
            page.continue_after = page.items.last().map(|last| {
                (
                    metadata_str(&last.value, "namespace").to_string(),
                    metadata_str(&last.value, "name").to_string(),
                )
            });
        }
        page
    }

    /// Reads the object at `key`, lets `decide` choose what to write, and applies it atomically.
    /// Creating stamps `uid` and `creationTimestamp`; replacing keeps them; every write sets
    /// `metadata.resourceVersion` to the new global resourceVersion and records an event.
    pub fn write(
        &self,
        key: &ObjectKey,
        decide: impl FnOnce(Option<&Arc<StoredObject>>) -> Result<WriteOp, ApiError>,
    ) -> Result<WriteOutcome, ApiError> {
        let mut state = self.lock();
        let previous = state.objects.get(key).cloned();
        let op = decide(previous.as_ref())?;
        let resource_version = state.resource_version + 1;
        let (mut value, event_type) = match (op, &previous) {
            (WriteOp::Put(value), None) => (value, EventType::Added),
            (WriteOp::Put(value), Some(_)) => (value, EventType::Modified),
            (WriteOp::Delete, Some(previous)) => (previous.value.clone(), EventType::Deleted),
            (WriteOp::Delete, None) => {
                return Err(ApiError::internal(
                    "delete of a missing object reached the store",
                ))
            }
        };
        let metadata = metadata_mut(&mut value);
        match (&previous, event_type) {
            (None, _) => {
                let uid = state.next_uid;
                state.next_uid += 1;
                metadata.entry("uid").or_insert_with(|| {
                    Value::String(format!("00000000-0000-4000-8000-{uid:012x}"))
                });
                metadata
                    .entry("creationTimestamp")
                    .or_insert_with(|| Value::String(now_rfc3339()));
            }
            (Some(previous), _) => {
                for field in ["uid", "creationTimestamp"] {
                    if let Some(kept) = previous.value.get("metadata").and_then(|m| m.get(field)) {
                        metadata.insert(field.to_string(), kept.clone());
                    }
                }
            }
        }
        metadata.insert(
            "resourceVersion".to_string(),
            Value::String(resource_version.to_string()),
        );
        let object = Arc::new(stored(value, resource_version));
        state.resource_version = resource_version;
        if event_type == EventType::Deleted {
            state.objects.remove(key);
        } else {
            state.objects.insert(key.clone(), object.clone());
        }
        let before = previous.filter(|_| event_type == EventType::Modified);
        self.record_event(&mut state, key, event_type, &object, before);
        drop(state);
        self.latest.send_replace(resource_version);
        self.notify_collections(Some(&key.collection), resource_version);
        Ok(WriteOutcome { object, event_type })
    }

    /// Forgets every object and the event history (`POST /apisim/reset`). The resourceVersion keeps
    /// growing, so a watch resuming from before the reset gets 410 Expired instead of stale events.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.objects.clear();
        state.history.clear();
        state.resource_version += 1;
        state.compacted = state.resource_version;
        let resource_version = state.resource_version;
        drop(state);
        self.latest.send_replace(resource_version);
        self.notify_collections(None, resource_version);
    }

    /// Deletes every object of a collection (and namespace, when given) that passes `filter`.
    pub fn delete_matching(
        &self,
        collection: &str,
        namespace: Option<&str>,
        filter: &dyn Fn(&StoredObject) -> bool,
    ) -> Vec<Arc<StoredObject>> {
        let keys: Vec<ObjectKey> = {
            let state = self.lock();
            state
                .objects
                .iter()
                .filter(|(key, object)| {
                    key.collection == collection
                        && namespace.is_none_or(|ns| key.namespace == ns)
                        && filter(object)
                })
                .map(|(key, _)| key.clone())
                .collect()
        };
        keys.iter()
            .filter_map(|key| {
                self.write(key, |current| match current {
                    Some(_) => Ok(WriteOp::Delete),
                    None => Err(ApiError::path_not_found()),
                })
                .ok()
                .map(|outcome| outcome.object)
            })
            .collect()
    }

    /// Events after `resource_version` that pass `filter`, at most `max`; 410 Expired when the history no
    /// longer reaches back that far.
    pub fn events_after(
        &self,
        resource_version: u64,
        max: usize,
        filter: &dyn Fn(&StoreEvent) -> bool,
    ) -> Result<Vec<Arc<StoreEvent>>, ApiError> {
        self.events_after_at(resource_version, max, filter)
            .map(|(events, _)| events)
    }

    /// Like [`events_after`](Self::events_after), with the store's resourceVersion when the
    /// events were read (one lock): a reader that got fewer than `max` has seen every event
    /// up to it that passes `filter`.
    pub fn events_after_at(
        &self,
        resource_version: u64,
        max: usize,
        filter: &dyn Fn(&StoreEvent) -> bool,
    ) -> Result<(Vec<Arc<StoreEvent>>, u64), ApiError> {
        let state = self.lock();
        if resource_version < state.compacted {
            return Err(ApiError::expired(format!(
                "too old resource version: {resource_version} ({})",
                state.compacted
            )));
        }
        let start = state
            .history
            .partition_point(|event| event.resource_version <= resource_version);
        let events = state
            .history
            .range(start..)
            .filter(|event| filter(event))
            .take(max)
            .cloned()
            .collect();
        Ok((events, state.resource_version))
    }

    fn record_event(
        &self,
        state: &mut StoreState,
        key: &ObjectKey,
        event_type: EventType,
        object: &Arc<StoredObject>,
        previous: Option<Arc<StoredObject>>,
    ) {
        let mut line = Vec::with_capacity(object.json.len() + 32);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(event_type.as_str().as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        line.extend_from_slice(&object.json);
        line.extend_from_slice(b"}\n");
        state.history.push_back(Arc::new(StoreEvent {
            resource_version: object.resource_version,
            event_type,
            key: key.clone(),
            object: object.clone(),
            previous,
            line: Bytes::from(line),
        }));
        while state.history.len() > self.history_limit {
            if let Some(dropped) = state.history.pop_front() {
                state.compacted = dropped.resource_version;
            }
        }
    }
}

/// Wraps a value with its JSON encoding.
pub fn stored(value: Value, resource_version: u64) -> StoredObject {
    // Serialising a serde_json::Value cannot fail (all keys are strings).
    let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
    StoredObject {
        value,
        json,
        resource_version,
    }
}

/// `metadata.<field>` as a string, "" when absent.
pub fn metadata_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|metadata| metadata.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The object's `metadata` map, created when missing or not a map (the object itself becomes a map).
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    ensure_map(ensure_map(object).entry("metadata").or_insert(Value::Null))
}

fn ensure_map(value: &mut Value) -> &mut Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => {
            *other = Value::Object(Map::new());
            ensure_map(other)
        }
    }
}

/// The current time in the apiserver's timestamp form.
pub(crate) fn now_rfc3339() -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> ObjectKey {
        ObjectKey {
            collection: "/pods".to_string(),
            namespace: "ns".to_string(),
            name: name.to_string(),
        }
    }

    fn put(store: &Store, name: &str) -> WriteOutcome {
        let value = json!({"metadata": {"name": name, "namespace": "ns"}});
        store
            .write(&key(name), |_| Ok(WriteOp::Put(value)))
            .unwrap()
    }

    #[test]
    fn writes_bump_the_global_resource_version_and_keep_identity() {
        let store = Store::new(10);
        let first = put(&store, "a");
        assert_eq!(first.event_type, EventType::Added);
        assert_eq!(metadata_str(&first.object.value, "resourceVersion"), "2");
        let uid = metadata_str(&first.object.value, "uid").to_string();
        let second = put(&store, "a");
        assert_eq!(second.event_type, EventType::Modified);
        assert_eq!(metadata_str(&second.object.value, "resourceVersion"), "3");
        assert_eq!(metadata_str(&second.object.value, "uid"), uid);
        let deleted = store.write(&key("a"), |_| Ok(WriteOp::Delete)).unwrap();
        assert_eq!(deleted.event_type, EventType::Deleted);
        assert!(store.get(&key("a")).is_none());
        assert_eq!(store.resource_version(), 4);
    }

    #[test]
    fn a_collection_channel_changes_for_its_own_collection_and_on_reset_only() {
        let store = Store::new(10);
        let mut pods = store.subscribe_collection("/pods");
        let mut secrets = store.subscribe_collection("/secrets");
        pods.borrow_and_update();
        secrets.borrow_and_update();
        put(&store, "a");
        assert!(pods.has_changed().unwrap());
        assert_eq!(*pods.borrow_and_update(), store.resource_version());
        assert!(!secrets.has_changed().unwrap());
        store.reset();
        assert!(pods.has_changed().unwrap());
        assert!(secrets.has_changed().unwrap());
    }

    #[test]
    fn events_after_at_tells_the_version_it_read_at() {
        let store = Store::new(10);
        put(&store, "a");
        put(&store, "b");
        let (events, at) = store.events_after_at(1, 10, &|_| true).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(at, store.resource_version());
        let (none, at_filtered) = store.events_after_at(1, 10, &|_| false).unwrap();
        assert!(none.is_empty());
        assert_eq!(at_filtered, at);
    }

    #[test]
    fn list_pages_in_name_order() {
        let store = Store::new(10);
        for name in ["c", "a", "b"] {
            put(&store, name);
        }
        let page = store.list("/pods", Some("ns"), None, 2, &|_| true);
        let names: Vec<_> = page
            .items
            .iter()
            .map(|o| metadata_str(&o.value, "name"))
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(page.remaining, 1);
        let (ns, name) = page.continue_after.unwrap();
        let next = store.list("/pods", Some("ns"), Some((&ns, &name)), 2, &|_| true);
        assert_eq!(next.items.len(), 1);
        assert_eq!(metadata_str(&next.items[0].value, "name"), "c");
        assert!(next.continue_after.is_none());
        assert!(store
            .list("/pods", Some("other"), None, 0, &|_| true)
            .items
            .is_empty());
    }

    #[test]
    fn history_is_bounded_and_old_versions_expire() {
        let store = Store::new(2);
        for name in ["a", "b", "c"] {
            put(&store, name);
        }
        let events = store.events_after(2, 10, &|_| true).unwrap();
        assert_eq!(events.len(), 2);
        assert!(events[0]
            .line
            .starts_with(b"{\"type\":\"ADDED\",\"object\":{"));
        assert_eq!(store.events_after(1, 10, &|_| true).unwrap_err().code, 410);
    }
}
