//! An external sort: records pushed with a key come back in key order
//! (bytewise), the records of one key in the order they were pushed, in
//! bounded memory.
//!
//! Records stay in one buffer until it holds `budget` bytes; then the
//! buffer is sorted and written to an unnamed temporary file (a run), and
//! at the end the runs and the last buffer are merged. A run that never
//! fills its buffer touches no disk.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};

/// Records in, sorted records out.
pub(crate) struct Sorter {
    budget: usize,
    /// Records, each `[key length: u32][key][payload]`.
    arena: Vec<u8>,
    /// (offset, length) of each record in `arena`, in push order.
    index: Vec<(usize, usize)>,
    runs: Vec<File>,
    /// The write buffer of runs.
    out: Vec<u8>,
}

/// Bytes written to a run at a time.
const WRITE: usize = 64 * 1024;

impl Sorter {
    /// A sorter that spills past `budget` bytes of records.
    pub(crate) fn new(budget: usize) -> Sorter {
        Sorter {
            budget: budget.max(1),
            arena: Vec::new(),
            index: Vec::new(),
            runs: Vec::new(),
            out: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, key: &[u8], payload: &[u8]) -> io::Result<()> {
        let need = 4 + key.len() + payload.len();
        if self.arena.len() + need > self.arena.capacity() {
            // Doubling, but never past the budget (and a record's room):
            // plain doubling would end at up to twice the budget.
            let cap = (self.arena.capacity() * 2)
                .max(64 * 1024)
                .min(self.budget.saturating_add(64 * 1024))
                .max(self.arena.len() + need);
            self.arena.reserve_exact(cap - self.arena.len());
        }
        let start = self.arena.len();
        let key_len = u32::try_from(key.len()).map_err(io::Error::other)?;
        self.arena.extend_from_slice(&key_len.to_le_bytes());
        self.arena.extend_from_slice(key);
        self.arena.extend_from_slice(payload);
        self.index.push((start, self.arena.len() - start));
        if self.arena.len() >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Whether any record went to disk.
    #[cfg(test)]
    pub(crate) fn spilled(&self) -> bool {
        !self.runs.is_empty()
    }

    /// The buffer's records in key order, push order within a key (the
    /// offsets grow with it). Unstable sorting allocates nothing: a stable
    /// sort's scratch, allocated and freed at each run, lingered in the
    /// allocator.
    fn sort_index(&mut self) {
        let arena = &self.arena;
        self.index.sort_unstable_by(|a, b| {
            key_of(&arena[a.0..a.0 + a.1])
                .cmp(key_of(&arena[b.0..b.0 + b.1]))
                .then(a.0.cmp(&b.0))
        });
    }

    fn spill(&mut self) -> io::Result<()> {
        self.sort_index();
        let mut file = tempfile::tempfile()?;
        // Written through a buffer of our own, kept from run to run.
        let mut out = std::mem::take(&mut self.out);
        for &(at, len) in &self.index {
            out.extend_from_slice(&(len as u64).to_le_bytes());
            out.extend_from_slice(&self.arena[at..at + len]);
            if out.len() >= WRITE {
                file.write_all(&out)?;
                out.clear();
            }
        }
        file.write_all(&out)?;
        out.clear();
        self.out = out;
        file.rewind()?;
        self.runs.push(file);
        self.arena.clear();
        self.index.clear();
        Ok(())
    }

    /// Every record, merged in order. Once records went to disk, the last
    /// of them go too, so the merge holds no buffer of records.
    pub(crate) fn finish(mut self) -> io::Result<Sorted> {
        if !self.runs.is_empty() {
            if !self.index.is_empty() {
                self.spill()?;
            }
            self.arena = Vec::new();
            self.index = Vec::new();
            self.out = Vec::new();
        }
        self.sort_index();
        let mut inputs: Vec<Input> = self
            .runs
            .into_iter()
            .map(|f| Input::Run(BufReader::with_capacity(8 * 1024, f)))
            .collect();
        inputs.push(Input::Memory {
            arena: self.arena,
            index: self.index.into_iter(),
        });
        let mut sorted = Sorted {
            heads: inputs.iter().map(|_| None).collect(),
            inputs,
            heap: BinaryHeap::new(),
        };
        for i in 0..sorted.inputs.len() {
            sorted.advance(i)?;
        }
        Ok(sorted)
    }
}

fn key_of(record: &[u8]) -> &[u8] {
    let len = u32::from_le_bytes(record[..4].try_into().expect("4 bytes")) as usize;
    &record[4..4 + len]
}

enum Input {
    Run(BufReader<File>),
    Memory {
        arena: Vec<u8>,
        index: std::vec::IntoIter<(usize, usize)>,
    },
}

impl Input {
    /// The next record, whole.
    fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self {
            Input::Memory { arena, index } => {
                Ok(index.next().map(|(at, len)| arena[at..at + len].to_vec()))
            }
            Input::Run(r) => {
                let mut len = [0u8; 8];
                match r.read_exact(&mut len) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
                let mut record = vec![0u8; u64::from_le_bytes(len) as usize];
                r.read_exact(&mut record)?;
                Ok(Some(record))
            }
        }
    }
}

/// The merge: records in key order, ties in push order (an earlier run
/// holds earlier records).
pub(crate) struct Sorted {
    inputs: Vec<Input>,
    /// Each input's next record.
    heads: Vec<Option<Vec<u8>>>,
    /// (key, input) of each head.
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
}

impl Sorted {
    fn advance(&mut self, i: usize) -> io::Result<()> {
        self.heads[i] = self.inputs[i].next()?;
        if let Some(record) = &self.heads[i] {
            self.heap.push(Reverse((key_of(record).to_vec(), i)));
        }
        Ok(())
    }

    /// The key of the next record.
    pub(crate) fn peek_key(&self) -> Option<&[u8]> {
        self.heap.peek().map(|Reverse((key, _))| key.as_slice())
    }

    /// The next record: its key and its payload.
    pub(crate) fn next_record(&mut self) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        let Some(Reverse((key, i))) = self.heap.pop() else {
            return Ok(None);
        };
        let record = self.heads[i].take().expect("a head for each heap entry");
        self.advance(i)?;
        let payload = record[4 + key.len()..].to_vec();
        Ok(Some((key, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: Sorter) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut sorted = s.finish().unwrap();
        let mut out = Vec::new();
        while let Some(r) = sorted.next_record().unwrap() {
            out.push(r);
        }
        out
    }

    fn expected(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut want = records.to_vec();
        want.sort_by(|a, b| a.0.cmp(&b.0)); // stable
        want
    }

    #[test]
    fn in_memory_and_spilled_give_one_order() {
        let mut records = Vec::new();
        for i in 0u32..5000 {
            let key = format!("cus_{:03}", (i * 7919) % 337).into_bytes();
            records.push((key, i.to_le_bytes().to_vec()));
        }
        for budget in [usize::MAX, 1, 100, 4096] {
            let mut s = Sorter::new(budget);
            for (k, p) in &records {
                s.push(k, p).unwrap();
            }
            assert_eq!(s.spilled(), budget != usize::MAX, "budget {budget}");
            assert_eq!(drain(s), expected(&records), "budget {budget}");
        }
    }

    #[test]
    fn empty_keys_payloads_and_no_records() {
        assert!(drain(Sorter::new(10)).is_empty());
        let records = vec![
            (b"b".to_vec(), Vec::new()),
            (Vec::new(), b"x".to_vec()),
            (b"b".to_vec(), b"y".to_vec()),
            (Vec::new(), Vec::new()),
        ];
        let mut s = Sorter::new(9);
        for (k, p) in &records {
            s.push(k, p).unwrap();
        }
        let mut sorted = s.finish().unwrap();
        assert_eq!(sorted.peek_key(), Some(&b""[..]));
        let mut out = Vec::new();
        while let Some(r) = sorted.next_record().unwrap() {
            out.push(r);
        }
        assert_eq!(out, expected(&records));
        assert_eq!(sorted.peek_key(), None);
    }

    proptest::proptest! {
        #[test]
        fn any_records_any_budget(
            records in proptest::collection::vec(
                (proptest::collection::vec(0u8..4, 0..3), proptest::collection::vec(proptest::num::u8::ANY, 0..5)),
                0..200,
            ),
            budget in 1usize..300,
        ) {
            let mut s = Sorter::new(budget);
            for (k, p) in &records {
                s.push(k, p).unwrap();
            }
            proptest::prop_assert_eq!(drain(s), expected(&records));
        }
    }
}
