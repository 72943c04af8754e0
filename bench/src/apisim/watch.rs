//! WATCH: a chunked stream of `{"type":...,"object":...}\n` events, from the requested resourceVersion,
//! with bookmarks, `timeoutSeconds`, and an end on server shutdown or client disconnect.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::body::{stream, ApiBody};
use super::discovery::kind_for;
use super::handlers::{collection, ApiRequest};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{EventType, StoreEvent, StoredObject};
use super::{table, Shared};

/// Events fetched from the history per lock.
const BATCH: usize = 256;
/// Largest chunk of initial ADDED events sent at once.
const SNAPSHOT_CHUNK: usize = 64 * 1024;
/// Chunks buffered per watch before the watch task waits for the client.
const CHANNEL_DEPTH: usize = 64;

/// Which objects a watch sees.
struct WatchFilter {
    collection: String,
    namespace: Option<String>,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl WatchFilter {
    fn matches_object(&self, object: &StoredObject) -> bool {
        self.labels.matches(&object.value) && self.fields.matches(&object.value)
    }

    fn concerns(&self, event: &StoreEvent) -> bool {
        event.key.collection == self.collection
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| event.key.namespace == *ns)
            && self
                .name
                .as_ref()
                .is_none_or(|name| event.key.name == *name)
    }

    /// The event type this watch sees: a change that makes an object match the selectors is ADDED, one
    /// that makes it stop matching is DELETED (as the apiserver does); None when it never matched.
    fn visible_type(&self, event: &StoreEvent) -> Option<EventType> {
        let matches_now = self.matches_object(&event.object);
        match &event.previous {
            Some(previous) => match (self.matches_object(previous), matches_now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            },
            None => matches_now.then_some(event.event_type),
        }
    }
}

/// Where the stream starts.
enum Start {
    /// Synthetic ADDED events for the current state, then changes (resourceVersion unset or "0").
    Snapshot,
    /// Changes after this resourceVersion.
    After(u64),
}

/// Starts a watch: validates the request, then answers 200 with a stream fed by a task.
pub(crate) fn start(
    shared: &Arc<Shared>,
    request: &ApiRequest<'_>,
) -> Result<Response<ApiBody>, ApiError> {
    let params = request.params;
    let path = request.path;
    let fields = FieldSelector::parse(params.field_selector.as_deref().unwrap_or(""))?;
    let filter = WatchFilter {
        collection: collection(path),
        namespace: path.namespace.clone(),
        name: path
            .name
            .clone()
            .or_else(|| fields.required_name().map(str::to_string)),
        labels: LabelSelector::parse(params.label_selector.as_deref().unwrap_or(""))?,
        fields,
    };
    let start = match params.resource_version.as_deref() {
        None | Some("") | Some("0") => Start::Snapshot,
        Some(text) => Start::After(text.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resourceVersion {text:?}: expected a decimal integer"
            ))
        })?),
    };
    let kind = kind_for(&path.group, &path.resource);
    let api_version = path.api_version();
    let session = WatchSession {
        shared: shared.clone(),
        filter,
        bookmark_prefix: bookmark_prefix(&kind, &api_version),
        kind,
        api_version,
        as_table: table::wants_table(request.accept),
        bookmarks: params.allow_watch_bookmarks,
        initial_events_end: params.send_initial_events && params.allow_watch_bookmarks,
        deadline: params
            .timeout_seconds
            .filter(|seconds| *seconds > 0)
            .map(|seconds| Instant::now() + Duration::from_secs(seconds)),
    };
    let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
    shared.metrics.watch_delta(1);
    tokio::spawn(session.run(start, sender));
    Ok(stream(receiver))
}

struct WatchSession {
    shared: Arc<Shared>,
    filter: WatchFilter,
    kind: String,
    api_version: String,
    /// A plain BOOKMARK line up to its resourceVersion's digits (see [`bookmark_prefix`]).
    bookmark_prefix: Vec<u8>,
    as_table: bool,
    bookmarks: bool,
    initial_events_end: bool,
    deadline: Option<Instant>,
}

/// Why the stream stopped early.
struct Closed;

impl WatchSession {
    async fn run(self, start: Start, sender: mpsc::Sender<Bytes>) {
        let _ = self.stream(start, &sender).await;
        self.shared.metrics.watch_delta(-1);
    }

    async fn send(&self, sender: &mpsc::Sender<Bytes>, chunk: Bytes) -> Result<(), Closed> {
        self.shared.metrics.add_response_bytes(chunk.len());
        sender.send(chunk).await.map_err(|_| Closed)
    }

    fn event_line(&self, event_type: &str, object: &StoredObject) -> Bytes {
        if self.as_table {
            let table = table::table(
                &[Arc::new(super::store::stored(
                    object.value.clone(),
                    object.resource_version,
                ))],
                &object.resource_version.to_string(),
                None,
            );
            return line(&json!({"type": event_type, "object": table}));
        }
        let mut out = Vec::with_capacity(object.json.len() + 32);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(event_type.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        out.extend_from_slice(&object.json);
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    fn bookmark(&self, resource_version: u64, initial_events_end: bool) -> Bytes {
        if !initial_events_end {
            // Every watch sends one per bookmark interval: written straight into the line
            // (the JSON value and its maps cost more than the rest of the event's path).
            let mut out = Vec::with_capacity(self.bookmark_prefix.len() + 28);
            out.extend_from_slice(&self.bookmark_prefix);
            out.extend_from_slice(resource_version.to_string().as_bytes());
            out.extend_from_slice(BOOKMARK_SUFFIX);
            return Bytes::from(out);
        }
        let mut metadata = json!({"resourceVersion": resource_version.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(&json!({
            "type": "BOOKMARK",
            "object": {"kind": self.kind, "apiVersion": self.api_version, "metadata": metadata}
        }))
    }

    async fn stream(&self, start: Start, sender: &mpsc::Sender<Bytes>) -> Result<(), Closed> {
        let mut changes = self
            .shared
            .store
            .subscribe_collection(&self.filter.collection);
        changes.borrow_and_update();
        let mut last = match start {
            Start::After(resource_version) => {
                let current = self.shared.store.resource_version();
                if resource_version > current {
                    // The apiserver waits up to 3 s for a future version, then sends this; apisim's
                    // versions come only from its own writes, so it answers at once.
                    let error = ApiError::timeout(format!(
                        "Too large resource version: {resource_version}, current: {current}"
                    ));
                    let chunk = line(&json!({"type": "ERROR", "object": error.to_status()}));
                    return self.send(sender, chunk).await;
                }
                resource_version
            }
            Start::Snapshot => {
                let page = self.shared.store.list(
                    &self.filter.collection,
                    self.filter.namespace.as_deref(),
                    None,
                    0,
                    &|object| {
                        self.filter.name.as_ref().is_none_or(|name| {
                            super::store::metadata_str(&object.value, "name") == name
                        }) && self.filter.matches_object(object)
                    },
                );
                // The initial ADDED events leave in chunks of up to SNAPSHOT_CHUNK bytes: a
                // watch of a collection of hundreds of objects costs a few sends, not one per
                // object (thousands of such watches opened together were most of apisim's work).
                let mut chunk = Vec::new();
                for object in &page.items {
                    if self.as_table {
                        self.send(sender, self.event_line(EventType::Added.as_str(), object))
                            .await?;
                        continue;
                    }
                    chunk.extend_from_slice(b"{\"type\":\"ADDED\",\"object\":");
                    chunk.extend_from_slice(&object.json);
                    chunk.extend_from_slice(b"}\n");
                    if chunk.len() >= SNAPSHOT_CHUNK {
                        self.send(sender, Bytes::from(std::mem::take(&mut chunk)))
                            .await?;
                    }
                }
                if !chunk.is_empty() {
                    self.send(sender, Bytes::from(chunk)).await?;
                }
                if self.initial_events_end {
                    self.send(sender, self.bookmark(page.resource_version, true))
                        .await?;
                }
                page.resource_version
            }
        };
        let mut shutdown = self.shared.shutdown.clone();
        let mut bookmark_timer = tokio::time::interval(self.shared.bookmark_interval);
        bookmark_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        bookmark_timer.reset();
        let deadline = self.deadline;
        // A bookmark carries the resourceVersion of a read made just before it, so it is as
        // recent as the store's (the watch wakes only for its own collection's writes).
        let mut bookmark_due = false;
        loop {
            changes.borrow_and_update();
            let (events, current) = match self.shared.store.events_after_at(last, BATCH, &|event| {
                self.filter.concerns(event) && self.filter.visible_type(event).is_some()
            }) {
                Ok(read) => read,
                Err(expired) => {
                    let error = line(&json!({"type": "ERROR", "object": expired.to_status()}));
                    return self.send(sender, error).await;
                }
            };
            let complete = events.len() < BATCH;
            for event in &events {
                let event_type = self.filter.visible_type(event).unwrap_or(event.event_type);
                let chunk = if self.as_table || event_type != event.event_type {
                    self.event_line(event_type.as_str(), &event.object)
                } else {
                    event.line.clone()
                };
                self.send(sender, chunk).await?;
                last = event.resource_version;
            }
            if !complete {
                continue;
            }
            last = last.max(current);
            if std::mem::take(&mut bookmark_due) {
                self.send(sender, self.bookmark(last, false)).await?;
            }
            let wake = tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() { Wake::End } else { Wake::Changed }
                }
                _ = bookmark_timer.tick(), if self.bookmarks => Wake::Bookmark,
                _ = sleep_until(deadline) => Wake::End,
                stopped = shutdown.wait_for(|stop| *stop) => {
                    drop(stopped);
                    Wake::End
                }
                _ = sender.closed() => return Err(Closed),
            };
            match wake {
                Wake::Changed => {}
                Wake::Bookmark => bookmark_due = true,
                Wake::End => return Ok(()),
            }
        }
    }
}

/// What woke an idle watch.
enum Wake {
    Changed,
    Bookmark,
    End,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What follows the resourceVersion's digits in a plain BOOKMARK line.
const BOOKMARK_SUFFIX: &[u8] = b"\"}},\"type\":\"BOOKMARK\"}\n";

/// The start of a plain BOOKMARK line of `kind` in `api_version`, byte for byte what
/// serde_json writes for it (keys in order), up to the resourceVersion's digits.
fn bookmark_prefix(kind: &str, api_version: &str) -> Vec<u8> {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    format!(
        "{{\"object\":{{\"apiVersion\":{},\"kind\":{},\"metadata\":{{\"resourceVersion\":\"",
        quoted(api_version),
        quoted(kind)
    )
    .into_bytes()
}

fn line(value: &Value) -> Bytes {
    let mut out = serde_json::to_vec(value).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_bookmark_line_is_what_serde_json_writes() {
        let mut line_bytes = bookmark_prefix("Pod", "v1");
        line_bytes.extend_from_slice(b"42");
        line_bytes.extend_from_slice(BOOKMARK_SUFFIX);
        let expected = line(&json!({
            "type": "BOOKMARK",
            "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "42"}}
        }));
        assert_eq!(line_bytes, expected.as_ref());
    }
}
