//! The replay's check of a timeline: block by block, in the order the replay needs them, with
//! a published bound below which every record is checked.
//!
//! The records of every run are checked a block at a time, always advancing the run that
//! holds the bound back (the smallest due time checked so far), so the bound rises with the
//! replay's clock. With each record block go the blob blocks its target and body lie in and
//! the origin block of its profile index; the remaining origin and blob blocks (strings only
//! export reads) are checked in proportion to the bound, so that they are all checked by the
//! time the last record is released and a small file is checked whole before its first
//! request. A record due at `d` may be sent once the state `covers(d)` and `d` is not
//! before a record taken earlier from its run: every record of a run's checked blocks is due
//! before the run's first unchecked one, and a damaged due time in an unchecked block that
//! falls below the bound is below that last checked record's too, so a reader that takes
//! each run in order and refuses a due time going backwards never takes an unchecked record.
//! A failed check freezes the bound and the state says `Failed`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::TimelineError;
use super::format::{OriginEntry, SectionEntry};
use super::reader::Timeline;
use super::record::{BlobRef, RequestRecord};

const DONE: u64 = u64::MAX;
const FAILED: u64 = u64::MAX - 1;
/// Largest bound published while checking (the two values above are states).
const MAX_CHECKING: u64 = u64::MAX - 2;

/// Where a check in due order has got to, shared between the checking thread and readers
/// (one atomic word: readers load it once per batch).
#[derive(Debug, Default)]
pub struct VerifyProgress {
    state: AtomicU64,
}

/// A snapshot of [`VerifyProgress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyState {
    /// Every record due before `below_us` (µs), and everything it references, is checked.
    Checking {
        /// Exclusive bound on the checked due times.
        below_us: u64,
    },
    /// Every block of the file is checked.
    Done,
    /// A check failed: nothing more may be sent.
    Failed,
}

impl VerifyState {
    /// Whether a record due at `due_us` has been checked.
    #[inline]
    pub fn covers(self, due_us: u64) -> bool {
        match self {
            VerifyState::Checking { below_us } => due_us < below_us,
            VerifyState::Done => true,
            VerifyState::Failed => false,
        }
    }
}

impl VerifyProgress {
    /// Nothing checked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state (one atomic load).
    #[inline]
    pub fn state(&self) -> VerifyState {
        match self.state.load(Ordering::Acquire) {
            DONE => VerifyState::Done,
            FAILED => VerifyState::Failed,
            below_us => VerifyState::Checking { below_us },
        }
    }

    fn publish(&self, below_us: u64) {
        self.state
            .store(below_us.min(MAX_CHECKING), Ordering::Release);
    }

    fn finish(&self, result: &Result<bool, TimelineError>) {
        match result {
            Ok(true) => self.state.store(DONE, Ordering::Release),
            Ok(false) => {}
            Err(_) => self.state.store(FAILED, Ordering::Release),
        }
    }
}

impl Timeline {
    /// Checks every block in due order, publishing the bound in `progress` as it rises.
    /// Before each block it calls `pace(bound)`, which may wait (to stay a bounded lead ahead
    /// of a replay) and returns `false` to stop early. Returns `Ok(true)` when the whole file
    /// is checked, `Ok(false)` when `pace` stopped it, or the first failure (after which
    /// `progress` says `Failed`).
    pub fn check_in_due_order(
        &self,
        progress: &VerifyProgress,
        pace: &mut dyn FnMut(u64) -> bool,
    ) -> Result<bool, TimelineError> {
        let result = Checker::new(self).run(progress, pace);
        progress.finish(&result);
        result
    }
}

/// One run's progress: its next block and the last record checked (for the order check).
#[derive(Default)]
struct RunCursor {
    next_block: u64,
    last: Option<RequestRecord>,
}

struct Checker<'t> {
    t: &'t Timeline,
    origin_done: Vec<bool>,
    blob_done: Vec<bool>,
    origin_swept: u64,
    blob_swept: u64,
}

impl<'t> Checker<'t> {
    fn new(t: &'t Timeline) -> Self {
        let map = t.block_map();
        Checker {
            t,
            origin_done: vec![false; map.origin_blocks() as usize],
            blob_done: vec![false; map.blob_blocks() as usize],
            origin_swept: 0,
            blob_swept: 0,
        }
    }

    fn run(
        &mut self,
        progress: &VerifyProgress,
        pace: &mut dyn FnMut(u64) -> bool,
    ) -> Result<bool, TimelineError> {
        let t = self.t;
        for id in 0..t.header().label_count {
            if let Some(at) = t.label_ref(id) {
                self.blob_range(at)?;
            }
            t.label(id)?;
        }
        let mut cursors: Vec<RunCursor> = t.runs().iter().map(|_| RunCursor::default()).collect();
        // (bound of the run, run): every record of the run due before its bound is checked.
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = t
            .runs()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.len > 0)
            .map(|(i, _)| Reverse((0, i)))
            .collect();
        let mut published = 0u64;
        while let Some(&Reverse((_, run))) = heap.peek() {
            if !pace(published) {
                return Ok(false);
            }
            heap.pop();
            let cursor = &mut cursors[run];
            let finished = self.check_record_block(run, cursor)?;
            if !finished {
                let last_due = cursor.last.map_or(0, |r| r.due_us);
                heap.push(Reverse((last_due, run)));
            }
            let bound = heap.peek().map_or(DONE, |r| r.0 .0);
            if bound > published && bound != DONE {
                self.sweep_to(bound)?;
                progress.publish(bound);
                published = bound;
            }
        }
        self.sweep_to(DONE)?;
        Ok(true)
    }

    /// The next block of `run`'s records; returns whether it was the run's last.
    fn check_record_block(
        &mut self,
        run: usize,
        cursor: &mut RunCursor,
    ) -> Result<bool, TimelineError> {
        let t = self.t;
        let info = t.runs()[run];
        let per_block = u64::from(t.block_map().layout().records_per_block);
        let records = t.run_records(run).ok_or_else(|| {
            TimelineError::Corrupt(format!("run {run} is outside the record table"))
        })?;
        let block = cursor.next_block;
        let start = block * per_block;
        let end = (start + per_block).min(info.len);
        let recs = &records[start as usize..end as usize];
        let stored = t.block_sum(t.block_map().run_blocks(run).start + block);
        let computed = xxhash_rust::xxh3::xxh3_64(bytemuck::cast_slice(recs));
        if computed != stored {
            return Err(TimelineError::ChecksumMismatch {
                what: format!(
                    "records block {block} of run {run} (runner {}, shard {}: records {start}..{end} of the run)",
                    info.runner, info.shard
                ),
                stored,
                computed,
            });
        }
        let duration_us = t.header().duration_us;
        let runner_count = t.header().runner_count;
        let shards = t.header().shards_per_runner;
        for rec in recs {
            let view = t.view(rec)?;
            if rec.due_us > duration_us {
                return Err(TimelineError::BadRecord {
                    profile_index: rec.profile_index,
                    field: "due_us",
                    problem: format!(
                        "{} µs is past the profile's duration {duration_us} µs",
                        rec.due_us
                    ),
                });
            }
            let runner = crate::partition::runner_of(rec.key_hash, runner_count);
            let shard = crate::partition::shard_of(rec.key_hash, shards);
            if (runner, shard) != (info.runner, info.shard) {
                return Err(TimelineError::Corrupt(format!(
                    "record of profile index {} is in run ({}, {}) but its key belongs to ({runner}, {shard})",
                    rec.profile_index, info.runner, info.shard
                )));
            }
            if let Some(p) = &cursor.last {
                if rec.profile_index <= p.profile_index || rec.due_us < p.due_us {
                    return Err(TimelineError::Corrupt(format!(
                        "run ({}, {}) is not in profile order at profile index {}",
                        info.runner, info.shard, rec.profile_index
                    )));
                }
            }
            self.blob_range(view.record.target)?;
            self.blob_range(view.record.body)?;
            self.origin_of(rec.profile_index)?;
            cursor.last = Some(*rec);
        }
        cursor.next_block += 1;
        Ok(end == info.len)
    }

    /// The blob blocks `at` lies in (an empty or out-of-area reference needs none: `view`
    /// and `label` refuse the latter).
    fn blob_range(&mut self, at: BlobRef) -> Result<(), TimelineError> {
        let area = self.t.sections().blobs.len;
        let Some(end) = at.offset.checked_add(u64::from(at.len)) else {
            return Ok(());
        };
        if at.len == 0 || end > area {
            return Ok(());
        }
        let size = u64::from(self.t.block_map().layout().blob_block_bytes);
        for block in at.offset / size..=(end - 1) / size {
            self.blob_block(block)?;
        }
        Ok(())
    }

    /// The origin block(s) holding the entry of `profile_index`.
    fn origin_of(&mut self, profile_index: u64) -> Result<(), TimelineError> {
        let entry = std::mem::size_of::<OriginEntry>() as u64;
        let size = u64::from(self.t.block_map().layout().origin_block_bytes);
        let start = profile_index * entry;
        if start + entry > self.t.sections().origins.len {
            return Ok(());
        }
        for block in start / size..=(start + entry - 1) / size {
            self.origin_block(block)?;
        }
        Ok(())
    }

    /// The origin and blob blocks due by `bound`: the same fraction of each as `bound` is
    /// of the profile's duration, all of them once `bound` is past it.
    fn sweep_to(&mut self, bound: u64) -> Result<(), TimelineError> {
        let duration = self.t.header().duration_us;
        let share = |n: u64| -> u64 {
            if bound > duration {
                n
            } else {
                let num = u128::from(n) * u128::from(bound);
                num.div_ceil(u128::from(duration) + 1) as u64
            }
        };
        let (origins, blobs) = (
            share(self.origin_done.len() as u64),
            share(self.blob_done.len() as u64),
        );
        while self.origin_swept < origins {
            self.origin_block(self.origin_swept)?;
            self.origin_swept += 1;
        }
        while self.blob_swept < blobs {
            self.blob_block(self.blob_swept)?;
            self.blob_swept += 1;
        }
        Ok(())
    }

    fn origin_block(&mut self, block: u64) -> Result<(), TimelineError> {
        if self.origin_done[block as usize] {
            return Ok(());
        }
        let map = self.t.block_map();
        let size = map.layout().origin_block_bytes.into();
        self.check_block(
            "origin",
            self.t.sections().origins,
            size,
            block,
            map.origin_first(),
        )?;
        self.origin_done[block as usize] = true;
        Ok(())
    }

    fn blob_block(&mut self, block: u64) -> Result<(), TimelineError> {
        if self.blob_done[block as usize] {
            return Ok(());
        }
        let map = self.t.block_map();
        let size = map.layout().blob_block_bytes.into();
        self.check_block(
            "blob",
            self.t.sections().blobs,
            size,
            block,
            map.blob_first(),
        )?;
        self.blob_done[block as usize] = true;
        Ok(())
    }

    fn check_block(
        &self,
        name: &str,
        section: SectionEntry,
        size: u64,
        block: u64,
        table_first: u64,
    ) -> Result<(), TimelineError> {
        let start = block * size;
        let len = size.min(section.len - start);
        let bytes = self.t.section_bytes(section, start, len);
        let stored = self.t.block_sum(table_first + block);
        let computed = xxhash_rust::xxh3::xxh3_64(bytes);
        if computed != stored {
            return Err(TimelineError::ChecksumMismatch {
                what: format!(
                    "{name} block {block} (bytes {start}..{} of the {name}s section)",
                    start + len
                ),
                stored,
                computed,
            });
        }
        Ok(())
    }
}
