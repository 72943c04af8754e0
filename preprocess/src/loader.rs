//! Streaming profile loader: reads YAML events as bytes arrive and hands each request to the
//! caller in profile order, holding at most one request (plus anchored values) at a time.
//!
//! It accepts exactly what kperf accepts (yaml.v2 non-strict, docs/kperf-compatibility.md
//! §1–§3) and fails with kperf's first error, in kperf's priority: syntax errors, then type
//! errors (collected), then validation in §3 order — even though `version`/`spec` may come
//! after `requests` in the file, so request-level errors are remembered and reported at the
//! end.
//!
//! Requests handed out before an error surfaces are not retracted: on `Err`, a caller must
//! discard everything `on_request` received.

mod decode;
mod events;
mod fast;
mod fields;

use std::io::{self, Read};

use saphyr_parser::Event;

use crate::profile::{ProfileRequest, Spec};
use crate::validate::{
    check_not_empty, check_order, check_request, check_spec, check_version, RawRequest, RawSpec,
};
use crate::yaml::Node;
use decode::{Decoder, FieldPath, SeqVisit, StructTarget};
use events::EventStream;
pub use fast::{load_profile_fast, FastOptions, FastOutcome};

/// Limits that keep a hostile or broken profile from exhausting memory or time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Most bytes the parser may read without producing an event (one scalar or comment).
    pub max_scalar_bytes: usize,
    /// Most nodes aliases may expand to within one request (or the spec, or one top-level value).
    pub max_alias_expansions: usize,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most bytes held for one request (or other value built in memory), and for all anchored
    /// values together.
    pub max_node_bytes: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_scalar_bytes: 16 << 20,
            max_alias_expansions: 100_000,
            max_depth: 64,
            max_node_bytes: 64 << 20,
        }
    }
}

/// What a profile says besides its requests, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileHead {
    /// `version` (always 1 once validated).
    pub version: i64,
    /// `description`.
    pub description: String,
    /// `spec`, validated.
    pub spec: Spec,
    /// Number of requests handed to `on_request`.
    pub request_count: u64,
    /// Non-fatal findings (unknown keys, with a likely intended key), at most ~20.
    pub warnings: Vec<String>,
}

/// Why a profile could not be loaded. Display names the source first, then kperf's wording.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the bytes failed (file, network, truncated or corrupt gzip).
    #[error("{name}: failed to read profile: {source}")]
    Read {
        /// The source.
        name: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The input is not UTF-8 (nor UTF-16 with a byte-order mark).
    #[error(
        "{name}: failed to parse YAML: input is not valid UTF-8 (or UTF-16 after a byte-order \
         mark) at byte offset {offset}"
    )]
    NotUtf8 {
        /// The source.
        name: String,
        /// Offset of the first bad byte in the (gunzipped) input.
        offset: u64,
    },
    /// One token (scalar or comment) is larger than `max_scalar_bytes`.
    #[error(
        "{name}: failed to parse YAML: a single scalar or comment exceeds {limit} bytes \
         (at byte offset {offset}; limit LoadOptions::max_scalar_bytes)"
    )]
    ScalarTooLarge {
        /// The source.
        name: String,
        /// The limit in force.
        limit: usize,
        /// Where the limit was crossed.
        offset: u64,
    },
    /// No YAML document at all (kperf: `failed to parse YAML: EOF`).
    #[error("{name}: failed to parse YAML: EOF")]
    Empty {
        /// The source.
        name: String,
    },
    /// A YAML syntax error, or a fatal decoding error (bad merge, bad explicit tag,
    /// excessive aliasing).
    #[error("{name}: failed to parse YAML: yaml: line {line}: {message}")]
    Syntax {
        /// The source.
        name: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Values of the wrong type, all reported together as yaml.v2 does.
    #[error(
        "{name}: failed to parse YAML: yaml: unmarshal errors:{}",
        list_type_errors(errors, *more)
    )]
    Types {
        /// The source.
        name: String,
        /// `line N: <field>: cannot unmarshal ...`, in document order.
        errors: Vec<String>,
        /// Further errors not listed.
        more: usize,
    },
    /// A [`LoadOptions`] limit was reached (nesting, held bytes, alias expansion).
    #[error("{name}: failed to parse YAML: {message}")]
    Limit {
        /// The source.
        name: String,
        /// Which limit, where.
        message: String,
    },
    /// The profile parsed but breaks a kperf rule; `message` is kperf's text for the first
    /// problem, `further` the next ones (up to [`MAX_REPORTED_ERRORS`] in all).
    #[error(
        "{name}{}: invalid profile: {message}{}",
        position(*at),
        list_further(name, further, *more)
    )]
    Invalid {
        /// The source.
        name: String,
        /// kperf's message, e.g. `requests[3]: name is required for GET operation`.
        message: String,
        /// Line and column (1-based) of the request the first problem is in, when it has one.
        at: Option<(usize, usize)>,
        /// Further problems: position and message.
        further: Vec<(Option<(usize, usize)>, String)>,
        /// Problems past the reported ones.
        more: u64,
    },
    /// `requests` is given again after requests were already handed out. kperf would keep the
    /// last list; a streaming loader cannot take back what it delivered.
    #[error(
        "{name}: failed to parse YAML: line {line}: `requests` is given again after {count} \
         requests were read; kreplay streams requests and needs a single `requests` list"
    )]
    RequestsRepeated {
        /// The source.
        name: String,
        /// Line of the second list.
        line: usize,
        /// Requests read from the first.
        count: u64,
    },
    /// The caller's `on_request` refused a request (for example, its output failed).
    #[error("request {index}: {message}")]
    Rejected {
        /// The request's index.
        index: u64,
        /// Why.
        message: String,
    },
}

/// Problems reported at once at most (the first and up to 19 more): enough to fix a batch
/// without flooding a terminal.
pub const MAX_REPORTED_ERRORS: usize = 20;

fn position(at: Option<(usize, usize)>) -> String {
    at.map_or(String::new(), |(line, col)| format!(":{line}:{col}"))
}

fn list_further(name: &str, further: &[(Option<(usize, usize)>, String)], more: u64) -> String {
    let mut out = String::new();
    for (at, message) in further {
        out.push_str(&format!("\n  {name}{}: {message}", position(*at)));
    }
    if more > 0 {
        out.push_str(&format!("\n  ... and {more} more"));
    }
    out
}

fn list_type_errors(errors: &[String], more: usize) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str("\n  ");
        out.push_str(e);
    }
    if more > 0 {
        out.push_str(&format!("\n  ... and {more} more"));
    }
    out
}

/// Reads a profile from `reader` (already gunzipped), calling `on_request(index, request)` for
/// every request in profile order, and returns the rest once the whole document is validated.
/// `name` is used in messages. Memory stays bounded by `opts` whatever the number of requests.
pub fn load_profile<R: Read>(
    name: &str,
    reader: R,
    opts: &LoadOptions,
    on_request: &mut dyn FnMut(u64, ProfileRequest) -> Result<(), LoadError>,
) -> Result<ProfileHead, LoadError> {
    let mut events = EventStream::new(name, reader, opts);
    let mut dec = Decoder::new(name, opts.max_alias_expansions);
    let mut profile = ProfileFields {
        version: 0,
        description: String::new(),
        spec: RawSpec::default(),
        requests: RequestStream::new(name, on_request),
    };

    let (first, span) = events.next()?;
    if !matches!(first, Event::StreamStart) {
        return Err(events.syntax(span.start.line(), "expected the start of the stream"));
    }
    let (doc, span) = events.next()?;
    match doc {
        Event::DocumentStart(_) => {}
        Event::StreamEnd => {
            return Err(events.input_error().unwrap_or(LoadError::Empty {
                name: name.to_string(),
            }))
        }
        _ => return Err(events.syntax(span.start.line(), "expected a document")),
    }
    let root = events.next()?;
    if matches!(root.0, Event::MappingStart(0, _)) {
        stream_root_mapping(&mut events, &mut dec, &mut profile)?;
    } else {
        // An anchored or non-mapping root is decoded in memory (bounded by max_node_bytes).
        let node = events.build(root)?;
        dec.start_node();
        dec.structure(&node, "", &mut profile)?;
    }
    let (end, span) = events.next()?;
    if !matches!(end, Event::DocumentEnd) {
        return Err(events.syntax(span.start.line(), "expected the end of the document"));
    }
    // Only the first document is read; a truncated or broken input still counts.
    if let Some(e) = events.input_error() {
        return Err(e);
    }
    if let Some(e) = dec.take_type_errors() {
        return Err(e);
    }
    let invalid = |message: String| LoadError::Invalid {
        name: name.to_string(),
        message,
        at: None,
        further: Vec::new(),
        more: 0,
    };
    check_version(profile.version).map_err(invalid)?;
    let spec = check_spec(&profile.spec).map_err(invalid)?;
    let requests = profile.requests;
    check_not_empty(requests.count).map_err(invalid)?;
    // kperf's order: every request's own rules (step 4) before sortedness (step 5).
    let mut problems = requests
        .request_errors
        .into_iter()
        .chain(requests.order_errors);
    if let Some((at, message)) = problems.next() {
        return Err(LoadError::Invalid {
            name: name.to_string(),
            message,
            at,
            further: problems.collect(),
            more: requests.unreported_errors,
        });
    }
    Ok(ProfileHead {
        version: profile.version,
        description: profile.description,
        spec,
        request_count: requests.count,
        warnings: dec.warnings(),
    })
}

/// The top-level mapping, key by key: `requests` items are built and handed out one at a
/// time, unknown keys are skipped, everything else is small and decoded from a tree.
fn stream_root_mapping<'a, R: Read + 'a>(
    events: &mut EventStream<'a, R>,
    dec: &mut Decoder,
    profile: &mut ProfileFields<'_>,
) -> Result<(), LoadError> {
    loop {
        let key_event = events.next()?;
        if matches!(key_event.0, Event::MappingEnd) {
            return Ok(());
        }
        let key = events.build(key_event)?;
        dec.start_node();
        let value_event = events.next()?;
        if key.is_merge_key() {
            let value = events.build(value_event)?;
            dec.merge(&value, "", profile)?;
            continue;
        }
        let Some(name) = dec.key(&key, "")? else {
            events.skip(value_event)?;
            continue;
        };
        match name {
            "requests" if matches!(value_event.0, Event::SequenceStart(0, _)) => {
                profile.requests.begin(value_event.1.start.line())?;
                loop {
                    let item_event = events.next()?;
                    if matches!(item_event.0, Event::SequenceEnd) {
                        break;
                    }
                    let item = events.build(item_event)?;
                    profile.requests.item(dec, &item)?;
                }
            }
            "requests" | "version" | "description" | "spec" => {
                let value = events.build(value_event)?;
                let path = FieldPath {
                    parent: "",
                    key: name,
                };
                profile.field(dec, name, &value, path)?;
            }
            _ => {
                dec.unknown_key("", name, ProfileFields::KEYS);
                events.skip(value_event)?;
            }
        }
    }
}

/// `types.ReplayProfile` as a decode target; requests go to the stream, not to a list.
struct ProfileFields<'f> {
    version: i64,
    description: String,
    spec: RawSpec,
    requests: RequestStream<'f>,
}

impl StructTarget for ProfileFields<'_> {
    const GO_TYPE: &'static str = "types.ReplayProfile";
    const KEYS: &'static [&'static str] = &["version", "description", "spec", "requests"];

    fn reset(&mut self) {
        self.version = 0;
        self.description.clear();
        self.spec = RawSpec::default();
        self.requests.reset();
    }

    fn field(
        &mut self,
        dec: &mut Decoder,
        key: &str,
        value: &Node,
        path: FieldPath<'_>,
    ) -> Result<bool, LoadError> {
        match key {
            "version" => dec.int(value, path, "int", &mut self.version)?,
            "description" => dec.string(value, path, "string", &mut self.description)?,
            "spec" => {
                dec.start_node();
                dec.structure(value, "spec", &mut self.spec)?
            }
            "requests" => {
                let requests = &mut self.requests;
                dec.sequence(
                    value,
                    path,
                    "[]types.ReplayRequest",
                    |dec, visit| match visit {
                        SeqVisit::Begin(line) => requests.begin(line),
                        SeqVisit::Item(item) => requests.item(dec, item),
                    },
                )?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Requests as they stream past: validated one by one (kperf step 4) and for order (step 5),
/// handed out until the first error of any kind, errors kept for the end.
struct RequestStream<'f> {
    name: String,
    on_request: &'f mut dyn FnMut(u64, ProfileRequest) -> Result<(), LoadError>,
    count: u64,
    previous_timestamp: Option<i64>,
    request_errors: Vec<Located>,
    order_errors: Vec<Located>,
    unreported_errors: u64,
    stopped: bool,
}

/// A problem with the position of its request.
type Located = (Option<(usize, usize)>, String);

impl<'f> RequestStream<'f> {
    fn new(
        name: &str,
        on_request: &'f mut dyn FnMut(u64, ProfileRequest) -> Result<(), LoadError>,
    ) -> Self {
        RequestStream {
            name: name.to_string(),
            on_request,
            count: 0,
            previous_timestamp: None,
            request_errors: Vec::new(),
            order_errors: Vec::new(),
            unreported_errors: 0,
            stopped: false,
        }
    }

    fn reset(&mut self) {
        self.count = 0;
        self.previous_timestamp = None;
        self.request_errors.clear();
        self.order_errors.clear();
        self.unreported_errors = 0;
    }

    /// Keeps a problem while fewer than [`MAX_REPORTED_ERRORS`] are kept; counts it otherwise.
    fn note(&mut self, order: bool, at: (usize, usize), message: String) {
        self.stopped = true;
        if self.request_errors.len() + self.order_errors.len() >= MAX_REPORTED_ERRORS {
            self.unreported_errors += 1;
        } else if order {
            self.order_errors.push((Some(at), message));
        } else {
            self.request_errors.push((Some(at), message));
        }
    }

    /// A new `requests` value replaces the list: fine unless requests were already read.
    fn begin(&mut self, line: usize) -> Result<(), LoadError> {
        if self.count > 0 {
            return Err(LoadError::RequestsRepeated {
                name: self.name.clone(),
                line,
                count: self.count,
            });
        }
        self.reset();
        Ok(())
    }

    fn item(&mut self, dec: &mut Decoder, node: &Node) -> Result<(), LoadError> {
        let index = self.count;
        self.count += 1;
        let mut raw = RawRequest::default();
        dec.start_node();
        dec.structure(node, &format!("requests[{index}]"), &mut raw)?;
        if dec.type_error_count() > 0 {
            self.stopped = true;
        }
        let at = (node.line, node.col);
        if let Some(previous) = self.previous_timestamp {
            if let Err(message) = check_order(index, raw.timestamp, previous) {
                self.note(true, at, message);
            }
        }
        self.previous_timestamp = Some(raw.timestamp);
        match check_request(index, raw) {
            Err(message) => {
                self.note(false, at, message);
                Ok(())
            }
            Ok(request) if !self.stopped => (self.on_request)(index, request),
            Ok(_) => Ok(()),
        }
    }
}
