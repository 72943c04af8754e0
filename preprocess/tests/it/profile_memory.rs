//! The loader streams: requests are handed out while the input is still being read, and memory
//! does not grow with the number of requests. Memory is what the loading thread itself holds at
//! its peak (a counting allocator, per thread): the tests of this binary share its process, so
//! the process's peak RSS is not this test's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
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

/// The system allocator, counting the bytes each thread holds and the most it held. Installed
/// for the whole test binary; the counting is a few thread-local additions per allocation.
struct PerThreadPeak;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // try_with: a thread being torn down has no counters left, and frees then go uncounted.
    let _ = HELD.try_with(|held| {
        let now = held.get() + delta;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the counting allocates nothing.
unsafe impl GlobalAlloc for PerThreadPeak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: PerThreadPeak = PerThreadPeak;

/// Starts counting this thread's peak from what it holds now.
fn reset_peak() {
    let held = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(held));
}

/// The most this thread held since [`reset_peak`], above what it held then, in KiB.
fn peak_growth_kib(held_at_reset: isize) -> u64 {
    let peak = PEAK.with(Cell::get);
    ((peak - held_at_reset).max(0) / 1024) as u64
}

#[test]
fn two_hundred_thousand_requests_stream_with_bounded_memory() {
    const COUNT: u64 = 200_000;
    let held_before = HELD.with(Cell::get);
    reset_peak();
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
    let growth_kib = peak_growth_kib(held_before);
    // The input is ~30 MB and the requests ~60 MB as values; streaming needs neither.
    assert!(
        growth_kib < 16 * 1024,
        "the loading thread held {growth_kib} KiB more at its peak, for {total} bytes of input"
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
