//! The fast loader: one pass over the bytes for profiles of the common shape, with the
//! request list parsed in chunks on several threads and handed out in profile order.
//!
//! A reader thread cuts the input after the document's head at item boundaries (a line
//! `<indent>- ` at the list's indentation), workers scan, validate and prepare the requests
//! of a chunk, and the caller's thread receives them in order. The scanner decides only
//! inputs it can read exactly as the general loader does and that the general loader
//! accepts: anything else (any error included) ends in [`FastOutcome::Deferred`], after
//! which the caller discards what it received and runs [`super::load_profile`] on the same
//! bytes, so messages and the dialect's corners have one implementation.

mod scan;

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use super::{LoadError, LoadOptions, ProfileHead};
use crate::profile::ProfileRequest;
use crate::validate::{check_not_empty, check_request, check_spec, check_version, RawSpec};
use scan::{check_text, entry_value, spec_field, split_key, Defer, Line, Lines, Scan};

/// How the fast loader splits its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastOptions {
    /// Threads that scan chunks (at least 1).
    pub workers: usize,
    /// Bytes read per chunk before it is cut at the last item boundary.
    pub chunk_bytes: usize,
    /// The general loader's limits; an input near them is deferred to it.
    pub load: LoadOptions,
}

impl Default for FastOptions {
    fn default() -> Self {
        FastOptions {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            chunk_bytes: 256 << 10,
            load: LoadOptions::default(),
        }
    }
}

/// How a fast load ended.
#[derive(Debug)]
pub enum FastOutcome {
    /// Every request was handed out and the profile is valid.
    Loaded(ProfileHead),
    /// The input needs the general loader (the reason is for diagnostics only); what was
    /// handed out must be discarded.
    Deferred(&'static str),
}

/// The head of a document read so far (version, description, spec), keys seen once each.
#[derive(Default)]
struct Head {
    version: i64,
    description: String,
    spec: RawSpec,
    seen_keys: u8,
    seen_spec_keys: u8,
}

/// Most bytes of the document before the first request (or after the last one).
const MAX_HEAD_BYTES: usize = 1 << 20;

/// Reads a profile of the common shape from `reader`: `prepare` turns each request into what
/// `on_request(index, item)` receives in profile order (it runs on the workers; `None`
/// defers). Items are dropped on another thread than the caller's. Errors are only
/// `on_request`'s own; everything else defers.
pub fn load_profile_fast<P: Send>(
    reader: impl Read + Send,
    opts: &FastOptions,
    prepare: &(dyn Fn(ProfileRequest) -> Option<P> + Sync),
    on_request: &mut dyn FnMut(u64, &P) -> Result<(), LoadError>,
) -> Result<FastOutcome, LoadError> {
    let mut reader = reader;
    let mut head = Head::default();
    let max_scalar = opts.load.max_scalar_bytes;
    let (start, item_indent) = match read_head(&mut reader, &mut head, max_scalar) {
        Ok(found) => found,
        Err(Defer(why)) => return Ok(FastOutcome::Deferred(why)),
    };
    let workers = opts.workers.max(1);
    let cancel = AtomicBool::new(false);
    let mut needle = b"\n".to_vec();
    needle.extend(std::iter::repeat_n(b' ', item_indent));
    needle.extend_from_slice(b"- ");

    let outcome = std::thread::scope(|s| {
        let (work_tx, work_rx) = sync_channel::<(u64, Vec<u8>)>(workers);
        let (done_tx, done_rx) = sync_channel::<Done<P>>(workers * 2);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let cancel = &cancel;
        let splitter_done = done_tx.clone();
        // Chunks in flight (read, scanned or waiting for their turn) are bounded by tokens
        // the merge hands back, so memory does not grow behind one slow chunk.
        let in_flight = workers + 2;
        let (token_tx, token_rx) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = token_tx.send(());
        }
        let limit = opts.load.max_node_bytes;
        let chunk_bytes = opts.chunk_bytes.max(4096);
        s.spawn(move || {
            let chunks = Splitter {
                carry: start,
                reader,
                needle: &needle,
                chunk_bytes,
                limit,
            };
            chunks.run(&work_tx, &splitter_done, &token_rx, cancel);
        });
        for _ in 0..workers {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            s.spawn(move || loop {
                let next = work_rx.lock().map(|rx| rx.recv());
                let Ok(Ok((seq, bytes))) = next else { return };
                let done = parse_chunk(seq, bytes, item_indent, max_scalar, prepare);
                if done_tx.send(done).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        // Freeing a chunk's many small strings is work the caller's thread need not do.
        let (trash_tx, trash_rx) = sync_channel::<Done<P>>(1);
        s.spawn(move || while trash_rx.recv().is_ok() {});
        let result = merge(
            done_rx, token_tx, &trash_tx, &mut head, max_scalar, on_request,
        );
        cancel.store(true, Ordering::Relaxed);
        result
    });
    match outcome {
        Ok(count) => Ok(match finish(head, count) {
            Ok(loaded) => FastOutcome::Loaded(loaded),
            Err(Defer(why)) => FastOutcome::Deferred(why),
        }),
        Err(Stop::Defer(Defer(why))) => Ok(FastOutcome::Deferred(why)),
        Err(Stop::Caller(e)) => Err(e),
    }
}

enum Stop {
    Defer(Defer),
    Caller(LoadError),
}

impl From<Defer> for Stop {
    fn from(d: Defer) -> Self {
        Stop::Defer(d)
    }
}

/// A scanned chunk, or the splitter's end (`items` empty, `end_of_input`).
struct Done<P> {
    seq: u64,
    /// The chunk's text, kept for the document's tail after the list.
    text: Option<String>,
    /// Timestamp and prepared item of each request.
    items: Vec<(i64, P)>,
    /// Where the list ended inside the chunk, if it did.
    list_end: Option<usize>,
    outcome: Scan<()>,
    end_of_input: bool,
}

impl<P> Done<P> {
    fn failed(seq: u64, defer: Defer) -> Self {
        Done {
            seq,
            text: None,
            items: Vec::new(),
            list_end: None,
            outcome: Err(defer),
            end_of_input: false,
        }
    }
}

/// Hands out the requests of the chunks in order, then reads the tail after the list.
fn merge<P>(
    done_rx: Receiver<Done<P>>,
    tokens: SyncSender<()>,
    trash: &SyncSender<Done<P>>,
    head: &mut Head,
    max_scalar: usize,
    on_request: &mut dyn FnMut(u64, &P) -> Result<(), LoadError>,
) -> Result<u64, Stop> {
    let mut pending = BTreeMap::new();
    let mut next_seq = 0u64;
    let mut count = 0u64;
    let mut previous = i64::MIN;
    let mut tail: Option<String> = None;
    while let Ok(done) = done_rx.recv() {
        pending.insert(done.seq, done);
        while let Some(done) = pending.remove(&next_seq) {
            next_seq += 1;
            let _ = tokens.try_send(());
            if done.end_of_input {
                let tail = tail.unwrap_or_default();
                read_tail(&tail, head, max_scalar)?;
                return Ok(count);
            }
            if let Some(tail) = tail.as_mut() {
                tail.push_str(done.text.as_deref().ok_or(Defer("bytes after the list"))?);
                if tail.len() > MAX_HEAD_BYTES {
                    return Err(Defer("a long document after the request list").into());
                }
                continue;
            }
            done.outcome?;
            for (timestamp, item) in &done.items {
                if *timestamp < previous {
                    return Err(Defer("requests out of timestamp order").into());
                }
                previous = *timestamp;
                on_request(count, item).map_err(Stop::Caller)?;
                count += 1;
            }
            if let (Some(at), Some(text)) = (done.list_end, done.text.as_deref()) {
                tail = Some(text[at..].to_string());
            }
            let _ = trash.send(done);
        }
    }
    Err(Defer("the input ended early").into())
}

fn finish(head: Head, count: u64) -> Scan<ProfileHead> {
    let invalid = |_| Defer("an invalid profile");
    check_version(head.version).map_err(invalid)?;
    let spec = check_spec(&head.spec).map_err(invalid)?;
    check_not_empty(count).map_err(invalid)?;
    Ok(ProfileHead {
        version: head.version,
        description: head.description,
        spec,
        request_count: count,
        warnings: Vec::new(),
    })
}

/// Reads the document up to its first request: returns the bytes from that request's line
/// on and the list's indentation.
fn read_head(reader: &mut impl Read, head: &mut Head, max_scalar: usize) -> Scan<(Vec<u8>, usize)> {
    let mut buf = Vec::new();
    let eof = fill(reader, &mut buf, MAX_HEAD_BYTES).map_err(|_| Defer("a read error"))?;
    let complete = if eof {
        buf.len()
    } else {
        memchr::memrchr(b'\n', &buf).map_or(0, |i| i + 1)
    };
    let text = std::str::from_utf8(&buf[..complete]).map_err(|_| Defer("invalid UTF-8"))?;
    if text.starts_with('\u{feff}') {
        return Err(Defer("a byte-order mark"));
    }
    check_text(text)?;
    let mut lines = Lines::new(text, max_scalar);
    let Some((indent, at)) = head_entries(&mut lines, head, true, max_scalar)? else {
        return Err(Defer("no request list near the start"));
    };
    buf.drain(..at);
    Ok((buf, indent))
}

/// Reads what follows the request list: more head entries, nothing else.
fn read_tail(tail: &str, head: &mut Head, max_scalar: usize) -> Scan<()> {
    check_text(tail)?;
    let mut lines = Lines::new(tail, max_scalar);
    match head_entries(&mut lines, head, false, max_scalar)? {
        None => Ok(()),
        Some(_) => Err(Defer("a second request list")),
    }
}

const KEY_VERSION: u8 = 1;
const KEY_DESCRIPTION: u8 = 2;
const KEY_SPEC: u8 = 4;
const KEY_REQUESTS: u8 = 8;

/// Top-level entries up to the `requests:` line: returns the list's indentation and where its
/// first item starts, or `None` at the end of the text.
fn head_entries(
    lines: &mut Lines<'_>,
    head: &mut Head,
    allow_requests: bool,
    max_scalar: usize,
) -> Scan<Option<(usize, usize)>> {
    while let Some(line) = lines.next_content()? {
        if line.indent != 0 {
            return Err(Defer("an indented top-level line"));
        }
        let (key, rest) = split_key(line.body)?;
        let bit = match key {
            "version" => KEY_VERSION,
            "description" => KEY_DESCRIPTION,
            "spec" => KEY_SPEC,
            "requests" => KEY_REQUESTS,
            _ => return Err(Defer("an unknown top-level key")),
        };
        if head.seen_keys & bit != 0 {
            return Err(Defer("a repeated top-level key"));
        }
        head.seen_keys |= bit;
        match bit {
            KEY_VERSION => head.version = entry_value(rest, 0, lines, max_scalar)?.int()?,
            KEY_DESCRIPTION => {
                head.description = entry_value(rest, 0, lines, max_scalar)?.into_string()
            }
            KEY_SPEC => {
                nested_header(rest, line, lines)?;
                spec_entries(lines, head, max_scalar)?;
            }
            _ => {
                if !allow_requests {
                    return Err(Defer("a request list after the tail began"));
                }
                nested_header(rest, line, lines)?;
                let first = lines
                    .next_content()?
                    .ok_or(Defer("an empty request list"))?;
                if !first.body.starts_with("- ") {
                    return Err(Defer("a request list that is not a block sequence"));
                }
                return Ok(Some((first.indent, first.start)));
            }
        }
    }
    Ok(None)
}

/// `key:` with nothing (or a comment) after it, introducing a nested block.
fn nested_header(rest: &str, line: Line<'_>, lines: &mut Lines<'_>) -> Scan<()> {
    if !(rest.is_empty() || rest.starts_with('#')) {
        return Err(Defer("a collection written on its key's line"));
    }
    lines.advance(&line);
    Ok(())
}

fn spec_entries(lines: &mut Lines<'_>, head: &mut Head, max_scalar: usize) -> Scan<()> {
    let mut column = None;
    while let Some(line) = lines.next_content()? {
        if line.indent == 0 {
            break;
        }
        if *column.get_or_insert(line.indent) != line.indent {
            return Err(Defer("a spec entry at another indentation"));
        }
        let (key, rest) = split_key(line.body)?;
        let bit = match key {
            "runnerCount" => 1,
            "connsPerRunner" => 2,
            "clientsPerRunner" => 4,
            "contentType" => 8,
            "disableHTTP2" => 16,
            _ => return Err(Defer("an unknown spec key")),
        };
        if head.seen_spec_keys & bit != 0 {
            return Err(Defer("a repeated spec key"));
        }
        head.seen_spec_keys |= bit;
        let value = entry_value(rest, line.indent, lines, max_scalar)?;
        spec_field(&mut head.spec, key, value)?;
    }
    if column.is_none() {
        return Err(Defer("an empty spec"));
    }
    Ok(())
}

/// Scans, validates and prepares the requests of one chunk.
fn parse_chunk<P>(
    seq: u64,
    bytes: Vec<u8>,
    item_indent: usize,
    max_scalar: usize,
    prepare: &(dyn Fn(ProfileRequest) -> Option<P> + Sync),
) -> Done<P> {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => return Done::failed(seq, Defer("invalid UTF-8")),
    };
    let mut items = Vec::new();
    let mut list_end = None;
    let outcome = scan_items(
        &text,
        item_indent,
        max_scalar,
        prepare,
        &mut items,
        &mut list_end,
    );
    Done {
        seq,
        text: Some(text),
        items,
        list_end,
        outcome,
        end_of_input: false,
    }
}

fn scan_items<P>(
    text: &str,
    item_indent: usize,
    max_scalar: usize,
    prepare: &(dyn Fn(ProfileRequest) -> Option<P> + Sync),
    items: &mut Vec<(i64, P)>,
    list_end: &mut Option<usize>,
) -> Scan<()> {
    check_text(text)?;
    let mut lines = Lines::new(text, max_scalar);
    while let Some(line) = lines.next_content()? {
        if line.indent == item_indent && line.body.starts_with("- ") {
            let raw = scan::request(line, &mut lines, max_scalar)?;
            let request = check_request(0, raw).map_err(|_| Defer("an invalid request"))?;
            let timestamp = request.timestamp_ms;
            let item = prepare(request).ok_or(Defer("a request the writer refuses"))?;
            items.push((timestamp, item));
        } else if line.indent == 0 {
            *list_end = Some(line.start);
            return Ok(());
        } else {
            return Err(Defer(
                "a line that is neither an item nor the end of the list",
            ));
        }
    }
    Ok(())
}

/// Cuts the input into chunks of whole items.
struct Splitter<'n, R> {
    carry: Vec<u8>,
    reader: R,
    needle: &'n [u8],
    chunk_bytes: usize,
    limit: usize,
}

impl<R: Read> Splitter<'_, R> {
    fn run<P>(
        mut self,
        work: &SyncSender<(u64, Vec<u8>)>,
        done: &SyncSender<Done<P>>,
        tokens: &Receiver<()>,
        cancel: &AtomicBool,
    ) {
        let mut seq = 0u64;
        let mut want = self.chunk_bytes;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            let eof = match fill(&mut self.reader, &mut self.carry, want) {
                Ok(eof) => eof,
                Err(_) => {
                    let _ = done.send(Done::failed(seq, Defer("a read error")));
                    return;
                }
            };
            if eof {
                if !self.carry.is_empty() {
                    if tokens.recv().is_err()
                        || work.send((seq, std::mem::take(&mut self.carry))).is_err()
                    {
                        return;
                    }
                    seq += 1;
                }
                let mut end = Done::failed(seq, Defer("end"));
                end.outcome = Ok(());
                end.end_of_input = true;
                let _ = done.send(end);
                return;
            }
            match memchr::memmem::rfind(&self.carry, self.needle) {
                Some(at) => {
                    let rest = self.carry[at + 1..].to_vec();
                    self.carry.truncate(at + 1);
                    let chunk = std::mem::replace(&mut self.carry, rest);
                    if tokens.recv().is_err() || work.send((seq, chunk)).is_err() {
                        return;
                    }
                    seq += 1;
                    want = self.chunk_bytes;
                }
                None if self.carry.len() > self.limit => {
                    let _ = done.send(Done::failed(seq, Defer("an item over the size limit")));
                    return;
                }
                None => want = self.carry.len() + self.chunk_bytes,
            }
        }
    }
}

/// Reads into `buf` until it holds `want` bytes; true at the end of the input.
/// `read_to_end` grows `buf` as bytes arrive instead of zeroing `want` bytes up front (the
/// head's `want` is 1 MiB, most profiles' heads are a few hundred bytes).
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let Some(missing) = want.checked_sub(buf.len()).filter(|&m| m > 0) else {
        return Ok(false);
    };
    reader.by_ref().take(missing as u64).read_to_end(buf)?;
    Ok(buf.len() < want)
}
