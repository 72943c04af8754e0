//! A pod's log: its process's stdout and stderr in the order it wrote them, bounded to the last
//! `LOG_LIMIT` bytes (cut at a line start), and the `log` subresource (`tailLines`, `limitBytes`,
//! `follow`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::Response;
use tokio::sync::{mpsc, watch};

use super::{lock, pod_and_runtime, Jobs, PodRuntime};
use crate::apisim::body::{full, stream_with_type, ApiBody};
use crate::apisim::status::ApiError;
use crate::apisim::Shared;

/// Bytes kept per pod.
pub(crate) const LOG_LIMIT: usize = 4 * 1024 * 1024;

/// Chunks buffered per following reader.
const FOLLOW_DEPTH: usize = 16;

struct LogState {
    bytes: VecDeque<u8>,
    /// Bytes dropped from the front so far: `dropped + bytes.len()` is the total ever written.
    dropped: u64,
}

/// The bounded log of one pod.
pub(crate) struct LogBuffer {
    state: Mutex<LogState>,
    limit: usize,
    /// The total written so far; followers wait on it.
    written: watch::Sender<u64>,
}

impl LogBuffer {
    pub fn new(limit: usize) -> Self {
        LogBuffer {
            state: Mutex::new(LogState {
                bytes: VecDeque::new(),
                dropped: 0,
            }),
            limit,
            written: watch::channel(0).0,
        }
    }

    /// Appends a chunk; beyond the limit, the oldest bytes go, up to the next line start.
    pub fn push(&self, chunk: &[u8]) {
        let total = {
            let mut state = lock(&self.state);
            state.bytes.extend(chunk);
            if state.bytes.len() > self.limit {
                let mut cut = state.bytes.len() - self.limit;
                if let Some(newline) = state.bytes.range(cut..).position(|&b| b == b'\n') {
                    cut += newline + 1;
                }
                let cut = cut.min(state.bytes.len());
                state.bytes.drain(..cut);
                state.dropped += cut as u64;
            }
            state.dropped + state.bytes.len() as u64
        };
        self.written.send_replace(total);
    }

    /// The log, or its last `tail_lines` lines, then at most `limit_bytes` bytes from its start; and
    /// the offset where the log ends.
    pub fn read(&self, tail_lines: Option<u64>, limit_bytes: Option<u64>) -> (Vec<u8>, u64) {
        let state = lock(&self.state);
        let bytes = &state.bytes;
        let mut start = 0;
        if let Some(lines) = tail_lines {
            // A final line without a newline counts as a line.
            let mut end = bytes.len();
            if end > 0 && bytes[end - 1] == b'\n' {
                end -= 1;
            }
            let mut seen = 0;
            start = end;
            while start > 0 && seen < lines {
                start -= 1;
                if bytes[start] == b'\n' {
                    seen += 1;
                    if seen == lines {
                        start += 1;
                        break;
                    }
                }
            }
            if lines == 0 {
                start = bytes.len();
            }
        }
        let limit = limit_bytes.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let out = bytes.range(start..).take(limit).copied().collect();
        (out, state.dropped + bytes.len() as u64)
    }

    /// What was written from `offset` on (from the oldest byte kept when `offset` was dropped), and the
    /// offset where it ends.
    fn read_from(&self, offset: u64) -> (Vec<u8>, u64) {
        let state = lock(&self.state);
        let skip = usize::try_from(offset.saturating_sub(state.dropped)).unwrap_or(usize::MAX);
        let out = state
            .bytes
            .range(skip.min(state.bytes.len())..)
            .copied()
            .collect();
        (out, state.dropped + state.bytes.len() as u64)
    }
}

/// `GET pods/NAME/log` (`container`, `tailLines`, `limitBytes`, `follow`).
pub(crate) fn serve(
    shared: &Shared,
    jobs: &Jobs,
    namespace: &str,
    name: &str,
    query: Option<&str>,
) -> Result<Response<ApiBody>, ApiError> {
    let mut container = None;
    let mut tail_lines = None;
    let mut limit_bytes = None;
    let mut follow = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = |value: &str| {
            value.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid query parameter {key}={value:?}: expected a non-negative integer"
                ))
            })
        };
        match key {
            "container" => container = Some(value.to_string()),
            "tailLines" => tail_lines = Some(number(value)?),
            "limitBytes" => limit_bytes = Some(number(value)?),
            "follow" => follow = matches!(value, "true" | "1"),
            "previous" if value == "true" => {
                return Err(ApiError::bad_request(format!(
                    "previous terminated container in pod {name:?} not found"
                )))
            }
            _ => {}
        }
    }
    let (_, runtime) = pod_and_runtime(shared, jobs, namespace, name)?;
    let runtime = runtime.filter(|r| r.started.load(std::sync::atomic::Ordering::SeqCst));
    let Some(runtime) = runtime else {
        return Err(ApiError::bad_request(format!(
            "container in pod {name:?} is waiting to start: ContainerCreating"
        )));
    };
    let own = lock(&runtime.container).clone();
    if let Some(asked) = container.filter(|c| !c.is_empty() && *c != own) {
        return Err(ApiError::bad_request(format!(
            "container {asked} is not valid for pod {name}"
        )));
    }
    let (head, offset) = runtime.logs.read(tail_lines, limit_bytes);
    if !follow {
        return Ok(full(200, "text/plain", Bytes::from(head)));
    }
    let remaining = limit_bytes.map(|limit| limit.saturating_sub(head.len() as u64));
    let (sender, receiver) = mpsc::channel(FOLLOW_DEPTH);
    tokio::spawn(follow_log(
        runtime,
        shared.shutdown.clone(),
        sender,
        Bytes::from(head),
        offset,
        remaining,
    ));
    Ok(stream_with_type(receiver, "text/plain"))
}

/// Streams the log as it grows, until the process ended and its output is in, the byte limit is
/// reached, the client goes, or apisim stops.
async fn follow_log(
    pod: Arc<PodRuntime>,
    mut shutdown: watch::Receiver<bool>,
    sender: mpsc::Sender<Bytes>,
    head: Bytes,
    mut offset: u64,
    mut remaining: Option<u64>,
) {
    if !head.is_empty() && sender.send(head).await.is_err() {
        return;
    }
    let mut written = pod.logs.written.subscribe();
    let mut finished = pod.finished.subscribe();
    loop {
        if remaining == Some(0) {
            return;
        }
        written.borrow_and_update();
        let done = *finished.borrow_and_update();
        let (mut chunk, next) = pod.logs.read_from(offset);
        offset = next;
        if let Some(left) = remaining.as_mut() {
            chunk.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
            *left -= chunk.len() as u64;
        }
        if !chunk.is_empty() && sender.send(Bytes::from(chunk)).await.is_err() {
            return;
        }
        if done {
            return;
        }
        tokio::select! {
            _ = written.changed() => {}
            _ = finished.changed() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = sender.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_lines_and_limit_bytes() {
        let log = LogBuffer::new(1024);
        log.push(b"one\ntwo\n");
        log.push(b"three\nfour");
        let read = |tail, limit| log.read(tail, limit).0;
        assert_eq!(read(None, None), b"one\ntwo\nthree\nfour");
        assert_eq!(read(Some(2), None), b"three\nfour");
        assert_eq!(read(Some(10), None), b"one\ntwo\nthree\nfour");
        assert_eq!(read(Some(0), None), b"");
        assert_eq!(read(Some(3), Some(5)), b"two\nt");
        log.push(b"\n");
        assert_eq!(read(Some(1), None), b"four\n");
    }

    #[test]
    fn oldest_lines_go_first() {
        let log = LogBuffer::new(10);
        log.push(b"aaaa\nbbbb\n");
        log.push(b"cc\n");
        assert_eq!(log.read(None, None), (b"bbbb\ncc\n".to_vec(), 13));
        // A follower that was at offset 2 lost the dropped bytes and resumes at the oldest kept.
        assert_eq!(log.read_from(2), (b"bbbb\ncc\n".to_vec(), 13));
        assert_eq!(log.read_from(11), (b"c\n".to_vec(), 13));
        assert_eq!(log.read_from(13), (Vec::new(), 13));
    }
}
