//! A pod's log: its process's stdout and stderr in the order the chunks were read, bounded to the last
//! `LOG_LIMIT` bytes (cut at a line start), and the `tailLines` / `limitBytes` views of it.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Bytes kept per pod.
pub(crate) const LOG_LIMIT: usize = 4 * 1024 * 1024;

/// The bounded log of one pod.
pub(crate) struct LogBuffer {
    bytes: Mutex<VecDeque<u8>>,
    limit: usize,
}

impl LogBuffer {
    pub fn new(limit: usize) -> Self {
        LogBuffer {
            bytes: Mutex::new(VecDeque::new()),
            limit,
        }
    }

    /// Appends a chunk; beyond the limit, the oldest bytes go, up to the next line start.
    pub fn push(&self, chunk: &[u8]) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        bytes.extend(chunk);
        if bytes.len() > self.limit {
            let mut cut = bytes.len() - self.limit;
            if let Some(newline) = bytes.range(cut..).position(|&b| b == b'\n') {
                cut += newline + 1;
            }
            let cut = cut.min(bytes.len());
            bytes.drain(..cut);
        }
    }

    /// The log, or its last `tail_lines` lines, then at most `limit_bytes` bytes from its start.
    pub fn read(&self, tail_lines: Option<u64>, limit_bytes: Option<u64>) -> Vec<u8> {
        let bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
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
        bytes.range(start..).take(limit).copied().collect()
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
        assert_eq!(log.read(None, None), b"one\ntwo\nthree\nfour");
        assert_eq!(log.read(Some(2), None), b"three\nfour");
        assert_eq!(log.read(Some(10), None), b"one\ntwo\nthree\nfour");
        assert_eq!(log.read(Some(0), None), b"");
        assert_eq!(log.read(Some(3), Some(5)), b"two\nt");
        log.push(b"\n");
        assert_eq!(log.read(Some(1), None), b"four\n");
    }

    #[test]
    fn oldest_lines_go_first() {
        let log = LogBuffer::new(10);
        log.push(b"aaaa\nbbbb\n");
        log.push(b"cc\n");
        assert_eq!(log.read(None, None), b"bbbb\ncc\n");
    }
}
