//! K-way merge of a core's runs into one stream ordered by (due time, profile index).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use preprocess::timeline::record::RequestRecord;

/// A position in a core's runs: which run (index into the core's run list) and which record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Index into the run list given to `RunMerger::new`.
    pub run_pos: u32,
    /// Record index within that run.
    pub index: u32,
}

/// Merges sorted runs; the heap holds one entry per run, so no allocation per record.
#[derive(Debug)]
pub struct RunMerger<'a> {
    runs: Vec<&'a [RequestRecord]>,
    next: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
}

impl<'a> RunMerger<'a> {
    /// Starts a merge over `runs` (each in profile order).
    pub fn new(runs: Vec<&'a [RequestRecord]>) -> RunMerger<'a> {
        let mut heap = BinaryHeap::with_capacity(runs.len());
        for (run_pos, run) in runs.iter().enumerate() {
            if let Some(r) = run.first() {
                heap.push(Reverse((r.due_us, r.profile_index, run_pos as u32)));
            }
        }
        let next = vec![0; runs.len()];
        RunMerger { runs, next, heap }
    }

    /// Due time of the next record, µs.
    pub fn peek_due(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Takes the next record.
    pub fn pop(&mut self) -> Option<(Cursor, &'a RequestRecord)> {
        let mut top = self.heap.peek_mut()?;
        let Reverse((_, _, run_pos)) = *top;
        let run = self.runs[run_pos as usize];
        let index = self.next[run_pos as usize];
        let record = &run[index as usize];
        self.next[run_pos as usize] = index + 1;
        // The run's next record replaces it in place: one sift instead of a pop and a push.
        match run.get(index as usize + 1) {
            Some(r) => *top = Reverse((r.due_us, r.profile_index, run_pos)),
            None => drop(std::collections::binary_heap::PeekMut::pop(top)),
        }
        // This run's next pop reads the record after; with dozens of runs merged, the
        // hardware prefetcher does not follow them all.
        if let Some(r) = run.get(index as usize + 2) {
            crate::prefetch::prefetch(r);
        }
        Some((Cursor { run_pos, index }, record))
    }

    /// Records not popped yet, over every run (what a stop leaves unsent).
    pub fn remaining(&self) -> u64 {
        self.runs
            .iter()
            .zip(&self.next)
            .map(|(run, &next)| (run.len() as u64).saturating_sub(u64::from(next)))
            .sum()
    }

    /// The record at `cursor`.
    pub fn record(&self, cursor: Cursor) -> &'a RequestRecord {
        &self.runs[cursor.run_pos as usize][cursor.index as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytemuck::Zeroable;

    fn rec(due_us: u64, profile_index: u64) -> RequestRecord {
        RequestRecord {
            due_us,
            profile_index,
            ..RequestRecord::zeroed()
        }
    }

    #[test]
    fn merges_by_due_then_profile_index() {
        let a = [rec(0, 1), rec(10, 4), rec(10, 6)];
        let b = [rec(0, 0), rec(10, 5), rec(30, 7)];
        let c: [RequestRecord; 0] = [];
        let mut m = RunMerger::new(vec![&a, &b, &c]);
        let mut order = Vec::new();
        while let Some((cursor, r)) = m.pop() {
            assert_eq!(m.record(cursor), r);
            order.push(r.profile_index);
        }
        assert_eq!(order, vec![0, 1, 4, 5, 6, 7]);
        assert_eq!(m.peek_due(), None);
    }
}
