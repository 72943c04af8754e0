//! The recent-request log behind `/apisim/requests`: exactly what arrived (method, target, headers of
//! interest, body), bounded, and off unless `--record-requests N` asks for it.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};

/// Bodies up to this size are kept verbatim (when UTF-8); larger ones only by length and hash.
const BODY_KEEP_LIMIT: usize = 16 * 1024;

/// One recorded request.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    /// Arrival sequence number (same numbering as the order log).
    pub seq: u64,
    /// The connection it came on, numbered in accept order from 1.
    pub connection: u64,
    /// HTTP method.
    pub method: String,
    /// Path and query as received.
    pub target: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Content-Type header.
    pub content_type: Option<String>,
    /// Accept header.
    pub accept: Option<String>,
    /// User-Agent header.
    pub user_agent: Option<String>,
    /// Content-Length header.
    pub content_length: Option<String>,
    /// Body length in bytes.
    pub body_len: usize,
    /// FNV-1a 64 of the body, hex.
    pub body_fnv64: String,
    /// The body, when it is UTF-8 and at most 16 KiB.
    pub body: Option<String>,
}

/// A bounded ring of recent requests.
pub struct RequestLog {
    entries: Mutex<VecDeque<RecordedRequest>>,
    capacity: usize,
}

impl RequestLog {
    /// A log of the last `capacity` requests; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        RequestLog {
            entries: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    /// True when requests are recorded.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Adds a request, dropping the oldest beyond capacity.
    pub fn push(&self, mut request: RecordedRequest, body: &[u8]) {
        if !self.enabled() {
            return;
        }
        request.body_len = body.len();
        request.body_fnv64 = format!("{:016x}", fnv1a64(body));
        request.body = (body.len() <= BODY_KEEP_LIMIT)
            .then(|| std::str::from_utf8(body).ok().map(str::to_string))
            .flatten();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(request);
    }

    /// Forgets everything.
    pub fn reset(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// `{"capacity": N, "requests": [...]}`, oldest first.
    pub fn to_json(&self) -> Value {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let requests: Vec<&RecordedRequest> = entries.iter().collect();
        json!({"capacity": self.capacity, "requests": requests})
    }
}

/// FNV-1a 64 (the hash kperf uses for object keys).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(seq: u64) -> RecordedRequest {
        RecordedRequest {
            seq,
            connection: 1,
            method: "POST".into(),
            target: "/api/v1/namespaces/a/pods".into(),
            version: "HTTP/1.1".into(),
            content_type: None,
            accept: Some("application/json".into()),
            user_agent: None,
            content_length: Some("2".into()),
            body_len: 0,
            body_fnv64: String::new(),
            body: None,
        }
    }

    #[test]
    fn ring_keeps_the_latest_and_hashes_bodies() {
        let log = RequestLog::new(2);
        for seq in 1..=3 {
            log.push(request(seq), b"{}");
        }
        let json = log.to_json();
        let requests = json["requests"].as_array().unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0]["seq"], 2);
        assert_eq!(requests[1]["body"], "{}");
        assert_eq!(
            requests[1]["body_fnv64"],
            format!("{:016x}", fnv1a64(b"{}"))
        );
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn disabled_log_records_nothing() {
        let log = RequestLog::new(0);
        log.push(request(1), b"x");
        assert!(!log.enabled());
        assert_eq!(log.to_json()["requests"].as_array().unwrap().len(), 0);
    }
}
