//! An in-memory `ReplaySource`, for tests and tools that build requests in code.

use preprocess::profile::{BodyKind, Spec, Verb};
use preprocess::timeline::record::{BlobRef, RequestRecord, FLAG_INVALID_TARGET, FLAG_WATCH};

use super::{DamagedSource, ReplaySource, RequestView, RunInfo, SourceError, SourceInfo};

/// One request to put in a `MemorySource`.
#[derive(Debug, Clone)]
pub struct MemoryRequest {
    /// Due time, µs from the replay start.
    pub due_us: u64,
    /// Object-key hash: decides runner (`hash % runners`) and shard.
    pub key_hash: u64,
    /// The verb (also gives the method).
    pub verb: Verb,
    /// Content-Type class of the body.
    pub body_kind: BodyKind,
    /// Request target (path and query).
    pub target: String,
    /// Body (empty: none).
    pub body: Vec<u8>,
    /// Metric label, `"<METHOD LABEL> <metric path>"`.
    pub label: String,
    /// Marks the target as one kperf cannot build (run and failed, never sent).
    pub invalid_target: bool,
}

/// Requests held in memory, split into runs like a timeline (runner = key_hash mod runners).
#[derive(Debug)]
pub struct MemorySource {
    info: SourceInfo,
    runs: Vec<RunInfo>,
    records: Vec<Vec<RequestRecord>>,
    blob: Vec<u8>,
    labels: Vec<String>,
}

/// Mixes the key hash before the shard modulo, so shards are independent of runners.
fn shard_of(hash: u64, shards: u32) -> u32 {
    let mut x = hash ^ (hash >> 30);
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % u64::from(shards.max(1))) as u32
}

impl MemorySource {
    /// Builds a source; `requests` must be in profile order (sorted by `due_us`).
    pub fn new(spec: Spec, shards_per_runner: u32, requests: &[MemoryRequest]) -> MemorySource {
        let runners = spec.runner_count.max(1);
        let shards = shards_per_runner.max(1);
        let mut records: Vec<Vec<RequestRecord>> = vec![Vec::new(); (runners * shards) as usize];
        let mut blob = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        let mut watch_count = 0;
        let mut duration_us = 0;
        for (index, req) in requests.iter().enumerate() {
            let target = push_blob(&mut blob, req.target.as_bytes());
            let body = push_blob(&mut blob, &req.body);
            let label = match labels.iter().position(|l| *l == req.label) {
                Some(i) => i,
                None => {
                    labels.push(req.label.clone());
                    labels.len() - 1
                }
            };
            let mut flags = 0;
            if req.verb == Verb::Watch {
                flags |= FLAG_WATCH;
                watch_count += 1;
            }
            if req.invalid_target {
                flags |= FLAG_INVALID_TARGET;
            }
            duration_us = duration_us.max(req.due_us);
            let runner = (req.key_hash % u64::from(runners)) as u32;
            let shard = shard_of(req.key_hash, shards);
            records[(runner * shards + shard) as usize].push(RequestRecord {
                due_us: req.due_us,
                key_hash: req.key_hash,
                target,
                body,
                label: label as u32,
                verb: req.verb as u8,
                method: req.verb.method() as u8,
                body_kind: req.body_kind as u8,
                flags,
                profile_index: index as u64,
            });
        }
        let runs = records
            .iter()
            .enumerate()
            .map(|(i, r)| RunInfo {
                runner: i as u32 / shards,
                shard: i as u32 % shards,
                len: r.len() as u64,
            })
            .collect();
        let info = SourceInfo {
            request_count: requests.len() as u64,
            watch_count,
            duration_us,
            runner_count: runners,
            spec,
            description: "in-memory requests".to_string(),
            source: "memory".to_string(),
            label_count: labels.len() as u32,
            content_id: None,
        };
        MemorySource {
            info,
            runs,
            records,
            blob,
            labels,
        }
    }
}

fn push_blob(blob: &mut Vec<u8>, bytes: &[u8]) -> BlobRef {
    let offset = blob.len() as u64;
    blob.extend_from_slice(bytes);
    BlobRef {
        offset,
        len: bytes.len() as u32,
        reserved: 0,
    }
}

impl MemorySource {
    fn blob(&self, r: BlobRef, profile_index: u64) -> Result<&[u8], SourceError> {
        let start = r.offset as usize;
        self.blob
            .get(start..start + r.len as usize)
            .ok_or_else(|| SourceError {
                profile_index,
                message: "blob reference out of bounds".to_string(),
            })
    }
}

impl ReplaySource for MemorySource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn runs(&self) -> &[RunInfo] {
        &self.runs
    }

    fn run_records(&self, run: usize) -> Option<&[RequestRecord]> {
        self.records.get(run).map(Vec::as_slice)
    }

    /// Records built by `MemorySource::new` are valid by construction; the check is kept for
    /// the engine's start, which refuses a source whose check failed before it began.
    fn verify_state(&self) -> super::VerifyState {
        super::VerifyState::Done
    }

    fn check_ahead(&self, _pace: &mut dyn FnMut(u64) -> bool) -> Result<bool, DamagedSource> {
        for record in self.records.iter().flatten() {
            self.request(record).map_err(|e| DamagedSource {
                origin: "in-memory source".to_string(),
                message: e.to_string(),
            })?;
        }
        Ok(true)
    }

    fn prefetch(&self, record: &RequestRecord) {
        if let Ok(target) = self.blob(record.target, record.profile_index) {
            crate::prefetch::prefetch_bytes(target, 2);
        }
    }

    fn request<'a>(&'a self, record: &'a RequestRecord) -> Result<RequestView<'a>, SourceError> {
        let bad = |field: &str| SourceError {
            profile_index: record.profile_index,
            message: format!("invalid {field} byte"),
        };
        Ok(RequestView {
            record,
            verb: record.verb().ok_or_else(|| bad("verb"))?,
            method: record.method().ok_or_else(|| bad("method"))?,
            body_kind: record.body_kind().ok_or_else(|| bad("body kind"))?,
            target: self.blob(record.target, record.profile_index)?,
            body: self.blob(record.body, record.profile_index)?,
        })
    }

    fn label(&self, id: u32) -> Result<&str, SourceError> {
        self.labels
            .get(id as usize)
            .map(String::as_str)
            .ok_or_else(|| SourceError {
                profile_index: 0,
                message: format!("label {id} out of range"),
            })
    }
}
