//! Profiles written the way a scenario is told: one request after another, each with its
//! instant, as the replay should see them.
//!
//! ```
//! use testkit::profile;
//! let requests = profile()
//!     .create("ns/a").body(r#"{"metadata":{"name":"a"}}"#).at_ms(0)
//!     .get("ns/a").at_ms(5)
//!     .list("ns").selector("app=web")
//!     .delete("ns/a").at_ms(10)
//!     .build();
//! assert_eq!(requests[2].timestamp_ms, 5, "a request without at_ms keeps the last instant");
//! assert_eq!(requests[3].api_path, "/api/v1/namespaces/ns/pods/a");
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use preprocess::export::push_quoted;
use preprocess::profile::{ContentType, ProfileRequest, Spec, Verb};
use preprocess::request_target::PathMode;
use preprocess::timeline::{TimelineWriter, WriterOptions};

/// An empty profile to add requests to.
pub fn profile() -> Profile {
    Profile::default()
}

/// A profile under construction. Verbs add a request on a Pod at the current instant; the
/// modifiers after a verb (`at_ms`, `body`, `path`, `selector`, `kind`) change that request.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    requests: Vec<ProfileRequest>,
    now_ms: i64,
}

/// `"ns/name"` as its two halves.
fn split_object(object: &str) -> (&str, &str) {
    object
        .split_once('/')
        .unwrap_or_else(|| panic!("object {object:?} is not namespace/name"))
}

fn pods(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods")
}

impl Profile {
    fn push(mut self, verb: Verb, namespace: &str, name: &str, api_path: String) -> Self {
        self.requests.push(ProfileRequest {
            timestamp_ms: self.now_ms,
            verb,
            namespace: namespace.to_string(),
            resource_kind: "Pod".to_string(),
            name: name.to_string(),
            api_path,
            body: String::new(),
            label_selector: String::new(),
        });
        self
    }

    fn on_object(self, verb: Verb, object: &str) -> Self {
        let (ns, name) = split_object(object);
        let path = format!("{}/{name}", pods(ns));
        self.push(verb, ns, name, path)
    }

    fn last(&mut self) -> &mut ProfileRequest {
        self.requests
            .last_mut()
            .expect("a modifier follows a verb (get, create, list...)")
    }

    /// GET of Pod `"ns/name"`.
    pub fn get(self, object: &str) -> Self {
        self.on_object(Verb::Get, object)
    }

    /// CREATE of Pod `"ns/name"`: a POST to the namespace's collection.
    pub fn create(self, object: &str) -> Self {
        let (ns, name) = split_object(object);
        self.push(Verb::Create, ns, name, pods(ns))
    }

    /// CREATE of Pod `"ns/name"` with the smallest manifest an API server accepts as its body.
    pub fn create_pod(self, object: &str) -> Self {
        let (ns, name) = split_object(object);
        let manifest = format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{ns}"}}}}"#
        );
        self.create(object).body(&manifest)
    }

    /// PATCH of Pod `"ns/name"`.
    pub fn patch(self, object: &str) -> Self {
        self.on_object(Verb::Patch, object)
    }

    /// APPLY (server-side apply) of Pod `"ns/name"`.
    pub fn apply(self, object: &str) -> Self {
        self.on_object(Verb::Apply, object)
    }

    /// DELETE of Pod `"ns/name"`.
    pub fn delete(self, object: &str) -> Self {
        self.on_object(Verb::Delete, object)
    }

    /// LIST of the Pods of namespace `ns`.
    pub fn list(self, ns: &str) -> Self {
        self.push(Verb::List, ns, "", pods(ns))
    }

    /// WATCH of the Pods of namespace `ns`.
    pub fn watch(self, ns: &str) -> Self {
        self.push(Verb::Watch, ns, "", pods(ns))
    }

    /// DELETECOLLECTION of the Pods of namespace `ns`.
    pub fn delete_collection(self, ns: &str) -> Self {
        self.push(Verb::DeleteCollection, ns, "", pods(ns))
    }

    /// A request of any verb on Pod `"ns/name"` (a name-less verb takes `"ns/"`): for
    /// scenarios that choose the verb as data.
    pub fn verb(self, verb: Verb, object: &str) -> Self {
        match verb {
            Verb::Create => self.create(object),
            Verb::List | Verb::Watch | Verb::DeleteCollection => {
                let (ns, _) = split_object(object);
                self.push(verb, ns, "", pods(ns))
            }
            _ => self.on_object(verb, object),
        }
    }

    /// The last request is due `ms` milliseconds after the replay starts, and so are the
    /// requests after it until the next `at_ms`.
    pub fn at_ms(mut self, ms: i64) -> Self {
        self.now_ms = ms;
        self.last().timestamp_ms = ms;
        self
    }

    /// The last request's body, byte for byte.
    pub fn body(mut self, body: &str) -> Self {
        self.last().body = body.to_string();
        self
    }

    /// The last request's path and query, instead of the Pod path its verb implies.
    pub fn path(mut self, api_path: &str) -> Self {
        self.last().api_path = api_path.to_string();
        self
    }

    /// The last request's label selector (LIST and WATCH).
    pub fn selector(mut self, selector: &str) -> Self {
        self.last().label_selector = selector.to_string();
        self
    }

    /// The last request's resource kind (part of the object key), instead of Pod.
    pub fn kind(mut self, kind: &str) -> Self {
        self.last().resource_kind = kind.to_string();
        self
    }

    /// `add` applied once per item, in order: a scenario's repeated requests, e.g.
    /// `profile().each(0..60, |p, i| p.get(&format!("ns/p{i}")).at_ms(i * 100))`.
    pub fn each<T>(
        self,
        items: impl IntoIterator<Item = T>,
        add: impl FnMut(Self, T) -> Self,
    ) -> Self {
        items.into_iter().fold(self, add)
    }

    /// Every request of `other`, after this profile's, at their own instants.
    pub fn then(mut self, other: Profile) -> Self {
        self.now_ms = other.now_ms;
        self.requests.extend(other.requests);
        self
    }

    /// The requests, in the order they were added.
    pub fn build(self) -> Vec<ProfileRequest> {
        self.requests
    }

    /// The one request built; panics if there are none or several.
    pub fn one(self) -> ProfileRequest {
        let n = self.requests.len();
        let mut requests = self.requests.into_iter();
        match (requests.next(), n) {
            (Some(r), 1) => r,
            _ => panic!("one() on a profile of {n} requests"),
        }
    }

    /// The requests as a timeline in `dir` (see [`write_timeline`]).
    pub fn timeline(self, dir: &Path, spec: &Spec) -> PathBuf {
        write_timeline(dir, spec, &self.requests)
    }

    /// The requests as a kperf replay profile (YAML) with `spec`, every string quoted.
    pub fn yaml(&self, spec: &Spec) -> String {
        let mut text = String::from("version: 1\ndescription: testkit profile\nspec:\n");
        let content_type = match spec.content_type {
            ContentType::Json => "json",
            ContentType::Protobuf => "protobuf",
        };
        // Infallible: writing to a String.
        let _ = write!(
            text,
            "  runnerCount: {}\n  connsPerRunner: {}\n  clientsPerRunner: {}\n  contentType: {content_type}\n  disableHTTP2: {}\nrequests:\n",
            spec.runner_count, spec.conns_per_runner, spec.clients_per_runner, spec.disable_http2
        );
        for r in &self.requests {
            let _ = write!(
                text,
                "  - timestamp: {}\n    verb: {}\n",
                r.timestamp_ms, r.verb
            );
            for (key, value) in [
                ("namespace", &r.namespace),
                ("resourceKind", &r.resource_kind),
                ("name", &r.name),
                ("apiPath", &r.api_path),
                ("body", &r.body),
                ("labelSelector", &r.label_selector),
            ] {
                if !value.is_empty() {
                    let _ = write!(text, "    {key}: ");
                    push_quoted(&mut text, value);
                    text.push('\n');
                }
            }
        }
        text
    }
}

/// A spec of `runners` runners with `conns` connections each, JSON, HTTP/1.1 only.
pub fn spec(runners: u32, conns: u32) -> Spec {
    Spec {
        runner_count: runners,
        conns_per_runner: conns,
        clients_per_runner: 0,
        content_type: ContentType::Json,
        disable_http2: true,
    }
}

/// Like [`spec`], with HTTP/2 allowed (negotiated by ALPN over TLS).
pub fn h2_spec(runners: u32, conns: u32) -> Spec {
    Spec {
        disable_http2: false,
        ..spec(runners, conns)
    }
}

/// The description [`write_timeline`] gives its timelines (a report names it; merging checks it).
pub const TIMELINE_DESCRIPTION: &str = "testkit timeline";

/// Writes `requests` as `dir/timeline.bin` with preprocess's writer (its real normalisation and
/// partitioning), the paths as recorded.
pub fn write_timeline(dir: &Path, spec: &Spec, requests: &[ProfileRequest]) -> PathBuf {
    let path = dir.join("timeline.bin");
    let mut w = TimelineWriter::create(
        &path,
        WriterOptions {
            source: "testkit".to_string(),
            ..WriterOptions::default()
        },
    )
    .expect("create timeline");
    for (i, r) in requests.iter().enumerate() {
        w.push(i as u64, r, PathMode::Recorded)
            .expect("push request");
    }
    w.finish(spec, TIMELINE_DESCRIPTION)
        .expect("finish timeline");
    path
}
