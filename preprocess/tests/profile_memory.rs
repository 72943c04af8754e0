//! The loader streams: requests are handed out while the input is still being read, and memory
//! does not grow with the number of requests. (Alone in its binary so the process's peak RSS is
//! this test's.)

use std::io::{self, Read};

use preprocess::loader::{load_profile, LoadOptions};

/// A generated profile of `count` requests, produced on demand (never held as a whole).
struct GeneratedProfile {
    count: u64,
    next: u64,
    pending: Vec<u8>,
    pos: usize,
    served: u64,
}

impl GeneratedProfile {
    fn new(count: u64) -> Self {
        let head = "version: 1\ndescription: generated\nspec:\n  runnerCount: 4\n  \
                    connsPerRunner: 2\n  contentType: json\nrequests:\n";
        GeneratedProfile {
            count,
            next: 0,
            pending: head.as_bytes().to_vec(),
            pos: 0,
            served: 0,
        }
    }
}

impl Read for GeneratedProfile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.pending.len() {
            if self.next == self.count {
                return Ok(0);
            }
            let i = self.next;
            self.next += 1;
            self.pending.clear();
            self.pos = 0;
            let verb = ["CREATE", "GET", "GET"][(i % 3) as usize];
            self.pending.extend_from_slice(
                format!(
                    "- timestamp: {ts}\n  verb: {verb}\n  namespace: ns-{ns}\n  resourceKind: Pod\n  \
                     name: pod-{i}\n  apiPath: /api/v1/namespaces/ns-{ns}/pods/pod-{i}\n  \
                     body: |\n    {{\"metadata\": {{\"name\": \"pod-{i}\"}}}}\n",
                    ts = i / 10,
                    ns = i % 50
                )
                .as_bytes(),
            );
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        self.served += n as u64;
        Ok(n)
    }
}

/// Peak resident set of this process in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

#[test]
fn two_hundred_thousand_requests_stream_with_bounded_memory() {
    const COUNT: u64 = 200_000;
    let before = peak_rss_kib();
    let mut reader = GeneratedProfile::new(COUNT);
    let mut served_at_first = None;
    let mut delivered = 0u64;
    let mut last_ts = 0;
    let served = std::cell::Cell::new(0u64);
    let head = {
        let reader_ref = &mut reader;
        let counting = CountingReader {
            inner: reader_ref,
            served: &served,
        };
        load_profile(
            "generated.yaml",
            counting,
            &LoadOptions::default(),
            &mut |i, r| {
                assert_eq!(i, delivered);
                if i == 0 {
                    served_at_first = Some(served.get());
                }
                assert_eq!(r.name, format!("pod-{i}"));
                last_ts = r.timestamp_ms;
                delivered += 1;
                Ok(())
            },
        )
        .expect("generated profile is valid")
    };
    assert_eq!(head.request_count, COUNT);
    assert_eq!(delivered, COUNT);
    assert_eq!(last_ts, ((COUNT - 1) / 10) as i64);
    let total = reader.served;
    let first = served_at_first.expect("first request delivered");
    assert!(
        first < 1 << 20,
        "first request handed out after {first} of {total} bytes: not streaming"
    );
    let growth_kib = peak_rss_kib().saturating_sub(before);
    // The input is ~30 MB and the requests ~60 MB as values; streaming needs neither.
    assert!(
        growth_kib < 16 * 1024,
        "peak RSS grew by {growth_kib} KiB for {total} bytes of input"
    );
}

struct CountingReader<'a, R> {
    inner: R,
    served: &'a std::cell::Cell<u64>,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.served.set(self.served.get() + n as u64);
        Ok(n)
    }
}
