//! The app's records in user order without holding them all: a sort-merge
//! through unnamed temporary files.
//!
//! Records are encoded compactly as they are read and gathered up to
//! [`RUN_BYTES`]; then that run is sorted by user (records of one user in
//! source order) and written to a temporary file. Reading them back merges
//! the runs, and one user's records come out together, so two records for
//! one user are found without a map of every user. The files are unnamed
//! (`tempfile::tempfile`): the system removes them when they are closed,
//! however the process ends.
//!
//! An entry, in a run and in memory: its length (LEB128), then the user
//! (length, bytes), a `u16` of which fields are present, the present
//! strings (length, bytes) and times (zigzag LEB128), then, in a run,
//! where the record came from (an index into [`Places`], the line, row or
//! key as length and bytes).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

use anyhow::Context;

use super::record::{AppRecord, Origin};

/// Bytes of encoded records gathered before they are sorted and written
/// as a run (the run's index adds an eighth or so).
pub(crate) const RUN_BYTES: usize = 8 << 20;

/// Runs merged at once at most: more are first merged into one (each run
/// being read holds a file and a [`READ_BUFFER`]).
const MOST_RUNS: usize = 64;

/// The read buffer of each run being merged.
const READ_BUFFER: usize = 64 << 10;

/// The buffer of a file being written.
const WRITE_BUFFER: usize = 64 << 10;

/// The strings of a record, in their order in an entry and bits of its flags.
fn strings(r: &AppRecord) -> [&Option<String>; 6] {
    [
        &r.customer,
        &r.subscription,
        &r.status,
        &r.price,
        &r.card_brand,
        &r.card_last4,
    ]
}

const PERIOD_START: u16 = 1 << 6;
const PERIOD_END: u16 = 1 << 7;
const CANCEL_KNOWN: u16 = 1 << 8;
const CANCEL: u16 = 1 << 9;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A record, its user first (the sort key), appended to `out`.
fn put_record(out: &mut Vec<u8>, r: &AppRecord) {
    put_bytes(out, r.user.as_bytes());
    let mut flags = 0u16;
    for (bit, s) in strings(r).into_iter().enumerate() {
        if s.is_some() {
            flags |= 1 << bit;
        }
    }
    if r.period_start.is_some() {
        flags |= PERIOD_START;
    }
    if r.period_end.is_some() {
        flags |= PERIOD_END;
    }
    if let Some(cancel) = r.cancel_at_period_end {
        flags |= CANCEL_KNOWN | if cancel { CANCEL } else { 0 };
    }
    out.extend_from_slice(&flags.to_le_bytes());
    for s in strings(r).into_iter().flatten() {
        put_bytes(out, s.as_bytes());
    }
    for t in [r.period_start, r.period_end].into_iter().flatten() {
        put_varint(out, zigzag(t));
    }
}

/// An entry that does not decode: a temporary file was changed or cut
/// short under the audit (nothing else writes them).
fn damaged() -> anyhow::Error {
    anyhow::anyhow!(
        "a temporary file of the audit's sort was changed or cut short while it ran; run the audit again"
    )
}

/// Reads the parts of an entry, front to back.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> anyhow::Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first().ok_or_else(damaged)?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(damaged())
    }

    fn bytes(&mut self) -> anyhow::Result<&'a [u8]> {
        let len = usize::try_from(self.varint()?).map_err(|_| damaged())?;
        if len > self.0.len() {
            return Err(damaged());
        }
        let (b, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(b)
    }

    fn text(&mut self) -> anyhow::Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| damaged())
    }

    fn record(&mut self) -> anyhow::Result<AppRecord> {
        let user = self.text()?.to_owned();
        let (flags, rest) = self.0.split_at_checked(2).ok_or_else(damaged)?;
        self.0 = rest;
        let flags = u16::from_le_bytes([flags[0], flags[1]]);
        let mut text = [None, None, None, None, None, None];
        for (bit, s) in text.iter_mut().enumerate() {
            if flags & (1 << bit) != 0 {
                *s = Some(self.text()?.to_owned());
            }
        }
        let mut time = |bit: u16| -> anyhow::Result<Option<i64>> {
            match flags & bit != 0 {
                true => Ok(Some(unzigzag(self.varint()?))),
                false => Ok(None),
            }
        };
        let (period_start, period_end) = (time(PERIOD_START)?, time(PERIOD_END)?);
        let [
            customer,
            subscription,
            status,
            price,
            card_brand,
            card_last4,
        ] = text;
        Ok(AppRecord {
            user,
            customer,
            subscription,
            status,
            price,
            period_start,
            period_end,
            cancel_at_period_end: (flags & CANCEL_KNOWN != 0).then_some(flags & CANCEL != 0),
            card_brand,
            card_last4,
        })
    }
}

/// The user of an entry (its bytes after the length); empty if it does
/// not decode, which [`read_entry`] has ruled out.
fn user_of(entry: &[u8]) -> &[u8] {
    let mut c = Cursor(entry);
    c.varint().and_then(|_| c.bytes()).unwrap_or_default()
}

/// The next entry of a run into `into` (length and all); `false` at the
/// run's end.
fn read_entry(run: &mut impl BufRead, into: &mut Vec<u8>) -> anyhow::Result<bool> {
    into.clear();
    loop {
        let Some(&b) = run.fill_buf()?.first() else {
            return match into.is_empty() {
                true => Ok(false),
                false => Err(damaged()),
            };
        };
        run.consume(1);
        into.push(b);
        if b < 0x80 {
            break;
        }
        if into.len() > 9 {
            return Err(damaged());
        }
    }
    let len = usize::try_from(Cursor(into).varint()?).map_err(|_| damaged())?;
    let start = into.len();
    // A length no entry has (a damaged file) fails here, not in an abort.
    into.try_reserve(len).map_err(|_| damaged())?;
    into.resize(start + len, 0);
    run.read_exact(&mut into[start..])
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => damaged(),
            _ => anyhow::Error::from(e),
        })?;
    // The user must decode: the merge orders entries by it.
    Cursor(&into[start..]).text()?;
    Ok(true)
}

fn temp_file() -> anyhow::Result<File> {
    tempfile::tempfile().with_context(|| {
        format!(
            "cannot make a temporary file in {} for the audit's sort (set TMPDIR to a writable directory with room)",
            std::env::temp_dir().display()
        )
    })
}

fn write_failed(e: io::Error) -> anyhow::Error {
    anyhow::Error::from(e).context(format!(
        "cannot write the audit's sort to {} (set TMPDIR to a writable directory with room)",
        std::env::temp_dir().display()
    ))
}

/// Where records came from: each distinct (unit, source) once, so an
/// entry names its place by index (a source has one or two).
#[derive(Debug, Default)]
struct Places(Vec<(&'static str, String)>);

impl Places {
    fn index(&mut self, o: &Origin) -> usize {
        let found = self
            .0
            .iter()
            .rposition(|(unit, source)| *unit == o.unit && *source == o.source);
        found.unwrap_or_else(|| {
            self.0.push((o.unit, o.source.clone()));
            self.0.len() - 1
        })
    }

    /// The origin at the end of an entry (after its record).
    fn origin(&self, c: &mut Cursor<'_>) -> anyhow::Result<Origin> {
        let place = usize::try_from(c.varint()?).map_err(|_| damaged())?;
        let (unit, source) = self.0.get(place).ok_or_else(damaged)?;
        Ok(Origin {
            source: source.clone(),
            unit,
            at: c.text()?.to_owned(),
        })
    }
}

/// A sorted run of entries: in a file, or in memory when it is the only
/// one (a source of fewer than [`RUN_BYTES`] never touches the disk).
#[derive(Debug)]
enum Run {
    File(File),
    Memory(Vec<u8>),
}

impl Run {
    /// The run's entries, from the first.
    fn reader(&self) -> anyhow::Result<Box<dyn BufRead + '_>> {
        match self {
            Run::File(file) => {
                let mut file = file;
                file.seek(SeekFrom::Start(0))?;
                Ok(Box::new(BufReader::with_capacity(READ_BUFFER, file)))
            }
            Run::Memory(entries) => Ok(Box::new(entries.as_slice())),
        }
    }
}

/// Gathers records into sorted runs (see the module's note).
pub(crate) struct Sorter {
    run_bytes: usize,
    /// The entries of the run being gathered, one after the other.
    gathered: Vec<u8>,
    /// Where each of them starts in `gathered`.
    starts: Vec<usize>,
    /// Sorted runs written, in source order.
    runs: Vec<Run>,
    places: Places,
    /// The entry being encoded (its length goes first).
    entry: Vec<u8>,
}

impl Sorter {
    /// A sorter that writes a run every `run_bytes` bytes of entries.
    pub(crate) fn new(run_bytes: usize) -> Sorter {
        Sorter {
            run_bytes,
            gathered: Vec::new(),
            starts: Vec::new(),
            runs: Vec::new(),
            places: Places::default(),
            entry: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, r: &AppRecord, origin: &Origin) -> anyhow::Result<()> {
        self.entry.clear();
        put_record(&mut self.entry, r);
        put_varint(&mut self.entry, self.places.index(origin) as u64);
        put_bytes(&mut self.entry, origin.at.as_bytes());
        if self.gathered.is_empty() {
            // The whole run at once: doubling would pass through a buffer
            // half as large again.
            self.gathered
                .reserve_exact(self.run_bytes + self.entry.len() + 10);
        }
        self.starts.push(self.gathered.len());
        put_bytes(&mut self.gathered, &self.entry);
        if self.gathered.len() >= self.run_bytes {
            let mut out = BufWriter::with_capacity(WRITE_BUFFER, temp_file()?);
            self.write_sorted(&mut out)?;
            let run = out.into_inner().map_err(|e| write_failed(e.into_error()))?;
            self.runs.push(Run::File(run));
            if self.runs.len() >= MOST_RUNS {
                self.merge_runs()?;
            }
        }
        Ok(())
    }

    /// The gathered entries, sorted by user (then in source order), to
    /// `out`; none are left gathered.
    fn write_sorted(&mut self, out: &mut impl Write) -> anyhow::Result<()> {
        let gathered = &self.gathered;
        self.starts.sort_unstable_by(|&a, &b| {
            user_of(&gathered[a..])
                .cmp(user_of(&gathered[b..]))
                .then(a.cmp(&b))
        });
        for &start in &self.starts {
            let mut c = Cursor(&gathered[start..]);
            let len = usize::try_from(c.varint()?).map_err(|_| damaged())?;
            let end = gathered.len() - c.0.len() + len;
            let entry = gathered.get(start..end).ok_or_else(damaged)?;
            out.write_all(entry).map_err(write_failed)?;
        }
        self.gathered.clear();
        self.starts.clear();
        Ok(())
    }

    /// All runs merged into one, the first.
    fn merge_runs(&mut self) -> anyhow::Result<()> {
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, temp_file()?);
        let mut merge = Merge::new(&self.runs)?;
        while let Some(entry) = merge.peek() {
            out.write_all(entry).map_err(write_failed)?;
            merge.advance()?;
        }
        drop(merge);
        let run = out.into_inner().map_err(|e| write_failed(e.into_error()))?;
        self.runs = vec![Run::File(run)];
        Ok(())
    }

    /// Every record pushed, sorted.
    pub(crate) fn finish(mut self) -> anyhow::Result<Sorted> {
        if !self.starts.is_empty() {
            let last = match self.runs.is_empty() {
                true => {
                    let mut sorted = Vec::with_capacity(self.gathered.len());
                    self.write_sorted(&mut sorted)?;
                    Run::Memory(sorted)
                }
                false => {
                    let mut out = BufWriter::with_capacity(WRITE_BUFFER, temp_file()?);
                    self.write_sorted(&mut out)?;
                    Run::File(out.into_inner().map_err(|e| write_failed(e.into_error()))?)
                }
            };
            self.runs.push(last);
        }
        Ok(Sorted {
            runs: self.runs,
            places: self.places,
        })
    }
}

/// Sorted runs of the app's records, to be read in user order (more than
/// once: `--live` takes the users before the audit takes their records).
#[derive(Debug)]
pub(crate) struct Sorted {
    runs: Vec<Run>,
    places: Places,
}

impl Sorted {
    /// The app's users in order, from the start.
    pub(crate) fn users(&self) -> anyhow::Result<AppUsers<'_>> {
        Ok(AppUsers {
            merge: Merge::new(&self.runs)?,
            places: &self.places,
            first: Vec::new(),
        })
    }

    /// How many runs there are, and how many are files (tests).
    #[cfg(test)]
    fn runs(&self) -> (usize, usize) {
        let files = self
            .runs
            .iter()
            .filter(|r| matches!(r, Run::File(_)))
            .count();
        (self.runs.len(), files)
    }
}

/// The head of a run in the merge: its next entry.
struct Head {
    entry: Vec<u8>,
    run: usize,
}

impl Ord for Head {
    /// By user, then by run: runs are in source order, so one user's
    /// records stay in source order.
    fn cmp(&self, other: &Head) -> Ordering {
        user_of(&self.entry)
            .cmp(user_of(&other.entry))
            .then(self.run.cmp(&other.run))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Head) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Head) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// The entries of several runs in order, each read from its start.
struct Merge<'a> {
    readers: Vec<Box<dyn BufRead + 'a>>,
    heads: BinaryHeap<Reverse<Head>>,
}

impl<'a> Merge<'a> {
    fn new(runs: &'a [Run]) -> anyhow::Result<Merge<'a>> {
        let mut readers = Vec::with_capacity(runs.len());
        let mut heads = BinaryHeap::with_capacity(runs.len());
        for (i, run) in runs.iter().enumerate() {
            let mut reader = run.reader()?;
            let mut entry = Vec::new();
            if read_entry(&mut reader, &mut entry)? {
                heads.push(Reverse(Head { entry, run: i }));
            }
            readers.push(reader);
        }
        Ok(Merge { readers, heads })
    }

    /// The next entry, left in place.
    fn peek(&self) -> Option<&[u8]> {
        self.heads.peek().map(|h| h.0.entry.as_slice())
    }

    /// Past the entry [`Merge::peek`] shows.
    fn advance(&mut self) -> anyhow::Result<()> {
        let Some(mut top) = self.heads.peek_mut() else {
            return Ok(());
        };
        let run = top.0.run;
        if !read_entry(&mut self.readers[run], &mut top.0.entry)? {
            PeekMut::pop(top);
        }
        Ok(())
    }
}

/// A user of the app, as the sorted records tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppUser {
    /// The user's one record.
    One(AppRecord),
    /// Two or more records for the user, where each is (in source order):
    /// none of them is compared.
    Many(String, Vec<Origin>),
}

impl AppUser {
    pub(crate) fn user(&self) -> &str {
        match self {
            AppUser::One(r) => &r.user,
            AppUser::Many(user, _) => user,
        }
    }
}

/// The app's users in order (see [`Sorted::users`]).
pub(crate) struct AppUsers<'a> {
    merge: Merge<'a>,
    places: &'a Places,
    /// The origin of the user's first record, encoded: it is made an
    /// [`Origin`] only when a second record turns up.
    first: Vec<u8>,
}

impl AppUsers<'_> {
    pub(crate) fn next(&mut self) -> anyhow::Result<Option<AppUser>> {
        let Some(entry) = self.merge.peek() else {
            return Ok(None);
        };
        let mut c = Cursor(entry);
        c.varint()?;
        let record = c.record()?;
        self.first.clear();
        self.first.extend_from_slice(c.0);
        self.merge.advance()?;
        let mut origins = Vec::new();
        while let Some(entry) = self.merge.peek() {
            if user_of(entry) != record.user.as_bytes() {
                break;
            }
            if origins.is_empty() {
                origins.push(self.places.origin(&mut Cursor(&self.first))?);
            }
            let mut c = Cursor(entry);
            c.varint()?;
            c.record()?;
            origins.push(self.places.origin(&mut c)?);
            self.merge.advance()?;
        }
        Ok(Some(match origins.is_empty() {
            true => AppUser::One(record),
            false => AppUser::Many(record.user, origins),
        }))
    }
}

/// Bytes of records a [`Spool`] holds before it moves them to a file.
const SPOOL_BYTES: usize = 1 << 20;

/// Records written one after the other and read back in the same order
/// (the users the store lacks, judged after its walk): in memory, then in
/// a file once they pass [`SPOOL_BYTES`].
#[derive(Default)]
pub(crate) struct Spool {
    memory: Vec<u8>,
    file: Option<BufWriter<File>>,
    record: Vec<u8>,
}

impl Spool {
    pub(crate) fn push(&mut self, r: &AppRecord) -> anyhow::Result<()> {
        self.record.clear();
        put_record(&mut self.record, r);
        put_bytes(&mut self.memory, &self.record);
        if self.file.is_none() && self.memory.len() < SPOOL_BYTES {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => self
                .file
                .insert(BufWriter::with_capacity(WRITE_BUFFER, temp_file()?)),
        };
        file.write_all(&self.memory).map_err(write_failed)?;
        self.memory.clear();
        Ok(())
    }

    /// The records pushed, from the first.
    pub(crate) fn read_back(self) -> anyhow::Result<Spooled> {
        let reader: Box<dyn BufRead> = match self.file {
            None => Box::new(io::Cursor::new(self.memory)),
            Some(out) => {
                let mut file = out.into_inner().map_err(|e| write_failed(e.into_error()))?;
                file.seek(SeekFrom::Start(0))?;
                Box::new(BufReader::with_capacity(READ_BUFFER, file))
            }
        };
        Ok(Spooled {
            reader,
            entry: Vec::new(),
        })
    }
}

/// A [`Spool`]'s records, read back.
pub(crate) struct Spooled {
    reader: Box<dyn BufRead>,
    entry: Vec<u8>,
}

impl Spooled {
    pub(crate) fn next(&mut self) -> anyhow::Result<Option<AppRecord>> {
        if !read_entry(&mut self.reader, &mut self.entry)? {
            return Ok(None);
        }
        let mut c = Cursor(&self.entry);
        c.varint()?;
        Ok(Some(c.record()?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn origin(i: usize) -> Origin {
        Origin {
            source: "app.csv".into(),
            unit: "row",
            at: (i + 2).to_string(),
        }
    }

    /// A record for `user` whose fields vary with `i`.
    fn record(user: &str, i: usize) -> AppRecord {
        let some = |m: usize, v: String| (!i.is_multiple_of(m)).then_some(v);
        AppRecord {
            user: user.into(),
            customer: some(2, format!("cus_{i}")),
            subscription: some(3, format!("sub_{i}")),
            status: some(4, ["active", "canceled", "trialing"][i % 3].into()),
            price: some(5, String::new()),
            period_start: some(6, String::new()).map(|_| 1_700_000_000 + i as i64),
            period_end: some(7, String::new()).map(|_| -(i as i64)),
            cancel_at_period_end: some(8, String::new()).map(|_| i.is_multiple_of(2)),
            card_brand: some(9, "visa".into()),
            card_last4: some(10, format!("{:04}", i % 10_000)),
        }
    }

    fn sort(items: &[(AppRecord, Origin)], run_bytes: usize) -> Sorted {
        let mut sorter = Sorter::new(run_bytes);
        for (r, o) in items {
            sorter.push(r, o).unwrap();
        }
        sorter.finish().unwrap()
    }

    fn all(sorted: &Sorted) -> Vec<AppUser> {
        let mut users = sorted.users().unwrap();
        let mut out = Vec::new();
        while let Some(u) = users.next().unwrap() {
            out.push(u);
        }
        out
    }

    /// What the sort must give: each user once, in `&str` order, with
    /// their one record or where each of their records is.
    fn expected(items: &[(AppRecord, Origin)]) -> Vec<AppUser> {
        let mut by_user: BTreeMap<&str, Vec<&(AppRecord, Origin)>> = BTreeMap::new();
        for item in items {
            by_user.entry(&item.0.user).or_default().push(item);
        }
        by_user
            .into_iter()
            .map(|(user, all)| match all.as_slice() {
                [(r, _)] => AppUser::One(r.clone()),
                _ => AppUser::Many(user.into(), all.iter().map(|(_, o)| o.clone()).collect()),
            })
            .collect()
    }

    #[test]
    fn a_record_reads_back_as_itself() {
        let full = AppRecord {
            user: "user_é\u{1b}".into(),
            customer: Some("cus_1".into()),
            subscription: None,
            status: Some("active".into()),
            price: Some(String::new()),
            period_start: Some(i64::MIN),
            period_end: Some(i64::MAX),
            cancel_at_period_end: Some(true),
            card_brand: Some("visa".into()),
            card_last4: Some("4242".into()),
        };
        let empty = AppRecord {
            user: String::new(),
            ..AppRecord::default()
        };
        for r in [full, empty, record("u", 0), record("u", 1), record("u", 59)] {
            let mut entry = Vec::new();
            put_record(&mut entry, &r);
            assert_eq!(Cursor(&entry).record().unwrap(), r);
            // Cut short anywhere, it is an error, not a panic.
            for end in 0..entry.len() {
                assert!(
                    Cursor(&entry[..end]).record().is_err(),
                    "{r:?} cut at {end}"
                );
            }
        }
    }

    #[test]
    fn many_runs_merge_in_user_order_with_duplicates_across_runs() {
        let mut rng = fastrand::Rng::with_seed(7);
        // Users that sort differently as numbers and as text, prefixes of
        // one another, and not ASCII.
        let users: Vec<String> = (0..400)
            .map(|n| match n % 4 {
                0 => format!("user_{n}"),
                1 => format!("user_{n}0"),
                2 => format!("Üser_{n}"),
                _ => format!("u{n}"),
            })
            .collect();
        let items: Vec<(AppRecord, Origin)> = (0..3000)
            .map(|i| (record(&users[rng.usize(..users.len())], i), origin(i)))
            .collect();
        let want = expected(&items);
        assert!(want.iter().any(|u| matches!(u, AppUser::Many(..))));
        assert!(want.iter().any(|u| matches!(u, AppUser::One(..))));
        // A run a record (merged into one every MOST_RUNS), a few records,
        // a few hundred, and one run in memory.
        for (run_bytes, runs) in [
            (1, 2..=MOST_RUNS),
            (800, 6..=MOST_RUNS),
            (20_000, 6..=20),
            (1 << 20, 1..=1),
        ] {
            let sorted = sort(&items, run_bytes);
            let (n, files) = sorted.runs();
            assert!(runs.contains(&n), "run_bytes {run_bytes}: {n} runs");
            assert_eq!(files, if run_bytes < 1 << 20 { n } else { 0 });
            assert_eq!(all(&sorted), want, "run_bytes {run_bytes}");
            // Read again (--live reads the users first): the same.
            assert_eq!(all(&sorted), want, "run_bytes {run_bytes}, again");
        }
    }

    #[test]
    fn a_user_with_records_in_several_runs_names_each_in_source_order() {
        let items: Vec<(AppRecord, Origin)> = ["b", "a", "b", "c", "b", "a"]
            .iter()
            .enumerate()
            .map(|(i, u)| (record(u, i), origin(i)))
            .collect();
        let sorted = sort(&items, 1);
        assert_eq!(sorted.runs(), (6, 6));
        assert_eq!(
            all(&sorted),
            [
                AppUser::Many("a".into(), vec![origin(1), origin(5)]),
                AppUser::Many("b".into(), vec![origin(0), origin(2), origin(4)]),
                AppUser::One(record("c", 3)),
            ]
        );
    }

    #[test]
    fn an_empty_source_has_no_users_and_no_runs() {
        let sorted = sort(&[], 1);
        assert_eq!(sorted.runs(), (0, 0));
        assert_eq!(all(&sorted), []);
    }

    #[test]
    fn a_small_source_stays_in_memory() {
        let items: Vec<_> = (0..50)
            .map(|i| (record(&format!("u{i}"), i), origin(i)))
            .collect();
        let sorted = sort(&items, RUN_BYTES);
        assert_eq!(sorted.runs(), (1, 0));
        assert_eq!(all(&sorted), expected(&items));
    }

    #[test]
    fn a_spool_reads_back_in_order_from_memory_or_a_file() {
        for n in [0, 3, 50_000] {
            let mut spool = Spool::default();
            let records: Vec<AppRecord> = (0..n).map(|i| record(&format!("u{i}"), i)).collect();
            for r in &records {
                spool.push(r).unwrap();
            }
            assert_eq!(spool.file.is_some(), n == 50_000, "{n} records");
            let mut back = spool.read_back().unwrap();
            let mut got = Vec::new();
            while let Some(r) = back.next().unwrap() {
                got.push(r);
            }
            assert_eq!(got, records);
        }
    }
}
