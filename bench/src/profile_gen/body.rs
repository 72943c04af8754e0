//! Request bodies: whole objects (JSON for CREATE, YAML or JSON for APPLY) and JSON merge
//! patches, padded to a chosen size with an annotation.

use std::fmt::Write as _;

use rand::Rng;

use super::kinds::{push_namespace, Kind, Slot};

/// Annotation whose value pads a body to the requested size.
pub(crate) const PADDING_ANNOTATION: &str = "kreplay.dev/padding";

const IMAGE: &str = "registry.k8s.io/pause:3.9";

/// Characters a padding value is made of (safe unescaped in JSON, YAML and URLs).
const PAD_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A block of pseudo-random padding characters, cut at random offsets so bodies differ.
pub(crate) struct Padding {
    source: String,
}

impl Padding {
    pub(crate) fn new<R: Rng>(rng: &mut R) -> Padding {
        let source = (0..8192)
            .map(|_| PAD_ALPHABET[rng.gen_range(0..PAD_ALPHABET.len())] as char)
            .collect();
        Padding { source }
    }

    /// Inserts `len` padding characters at byte `at` of `buf`, starting at `offset` in the
    /// source block and wrapping around it.
    fn insert<R: Rng>(&self, buf: &mut String, at: usize, len: usize, rng: &mut R) {
        if len == 0 {
            return;
        }
        let tail = buf.split_off(at);
        buf.reserve(len + tail.len());
        let mut left = len;
        let mut offset = rng.gen_range(0..self.source.len());
        while left > 0 {
            let take = left.min(self.source.len() - offset);
            buf.push_str(&self.source[offset..offset + take]);
            left -= take;
            offset = 0;
        }
        buf.push_str(&tail);
    }
}

/// Writes `name`/`namespace`/`labels` of an object and returns the byte position where the
/// padding value goes.
fn json_metadata(buf: &mut String, slot: &Slot, name: &str) -> usize {
    buf.push_str(r#""metadata":{"name":""#);
    buf.push_str(name);
    buf.push('"');
    if slot.kind.namespaced {
        buf.push_str(r#","namespace":""#);
        push_namespace(buf, slot.ns);
        buf.push('"');
    }
    let _ = write!(
        buf,
        r#","labels":{{"app":"app-{}","generator":"kreplay-gen"}},"annotations":{{"{PADDING_ANNOTATION}":""#,
        slot.app
    );
    let at = buf.len();
    buf.push_str("\"}}");
    at
}

/// Replaces `buf` with a compact JSON object for `slot` named `name`, padded to `size` bytes
/// when `size` exceeds the bare object.
pub(crate) fn json_object<R: Rng>(
    buf: &mut String,
    slot: &Slot,
    name: &str,
    size: usize,
    padding: &Padding,
    rng: &mut R,
) {
    buf.clear();
    let kind: &Kind = slot.kind;
    let _ = write!(
        buf,
        r#"{{"apiVersion":"{}","kind":"{}","#,
        kind.api_version, kind.name
    );
    let at = json_metadata(buf, slot, name);
    match kind.name {
        "Pod" => {
            let _ = write!(
                buf,
                r#","spec":{{"containers":[{{"name":"app","image":"{IMAGE}"}}]}}"#
            );
        }
        "ConfigMap" => buf.push_str(r#","data":{"mode":"replay","level":"info"}"#),
        "Secret" => buf.push_str(r#","type":"Opaque","data":{"token":"a3JlcGxheS1nZW4="}"#),
        "Deployment" => {
            let _ = write!(
                buf,
                r#","spec":{{"replicas":1,"selector":{{"matchLabels":{{"app":"app-{a}"}}}},"template":{{"metadata":{{"labels":{{"app":"app-{a}"}}}},"spec":{{"containers":[{{"name":"app","image":"{IMAGE}"}}]}}}}}}"#,
                a = slot.app
            );
        }
        "CronTab" => {
            let _ = write!(
                buf,
                r#","spec":{{"cronSpec":"*/5 * * * *","image":"{IMAGE}","replicas":1}}"#
            );
        }
        "Node" => buf.push_str(r#","spec":{"unschedulable":false}"#),
        _ => {}
    }
    buf.push('}');
    padding.insert(buf, at, size.saturating_sub(buf.len()), rng);
}

/// Replaces `buf` with the same object as YAML (block style, final newline), padded to
/// `size` bytes when `size` exceeds the bare object.
pub(crate) fn yaml_object<R: Rng>(
    buf: &mut String,
    slot: &Slot,
    name: &str,
    size: usize,
    padding: &Padding,
    rng: &mut R,
) {
    buf.clear();
    let kind: &Kind = slot.kind;
    let _ = write!(
        buf,
        "apiVersion: {}\nkind: {}\nmetadata:\n  name: {name}\n",
        kind.api_version, kind.name
    );
    if kind.namespaced {
        buf.push_str("  namespace: ");
        push_namespace(buf, slot.ns);
        buf.push('\n');
    }
    let _ = write!(
        buf,
        "  labels:\n    app: app-{}\n    generator: kreplay-gen\n  annotations:\n    {PADDING_ANNOTATION}: \"",
        slot.app
    );
    let at = buf.len();
    buf.push_str("\"\n");
    match kind.name {
        "Pod" => {
            let _ = write!(
                buf,
                "spec:\n  containers:\n  - name: app\n    image: {IMAGE}\n"
            );
        }
        "ConfigMap" => buf.push_str("data:\n  mode: replay\n  level: info\n"),
        "Secret" => buf.push_str("type: Opaque\ndata:\n  token: a3JlcGxheS1nZW4=\n"),
        "Deployment" => {
            let _ = write!(
                buf,
                "spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: app-{a}\n  template:\n    metadata:\n      labels:\n        app: app-{a}\n    spec:\n      containers:\n      - name: app\n        image: {IMAGE}\n",
                a = slot.app
            );
        }
        "CronTab" => {
            let _ = write!(
                buf,
                "spec:\n  cronSpec: \"*/5 * * * *\"\n  image: {IMAGE}\n  replicas: 1\n"
            );
        }
        "Node" => buf.push_str("spec:\n  unschedulable: false\n"),
        _ => {}
    }
    padding.insert(buf, at, size.saturating_sub(buf.len()), rng);
}

/// Replaces `buf` with a JSON merge patch that sets a `rev` label (and, for config maps,
/// a data key), padded to `size` bytes when `size` exceeds the bare patch.
pub(crate) fn merge_patch<R: Rng>(
    buf: &mut String,
    slot: &Slot,
    rev: u64,
    size: usize,
    padding: &Padding,
    rng: &mut R,
) {
    buf.clear();
    let _ = write!(
        buf,
        r#"{{"metadata":{{"labels":{{"rev":"r{rev}"}},"annotations":{{"{PADDING_ANNOTATION}":""#
    );
    let at = buf.len();
    buf.push_str("\"}}");
    if slot.kind.name == "ConfigMap" {
        let _ = write!(buf, r#","data":{{"rev":"{rev}"}}"#);
    }
    buf.push('}');
    padding.insert(buf, at, size.saturating_sub(buf.len()), rng);
}
