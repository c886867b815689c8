//! Read inputs on one thread, parse events on the others, hand them back in
//! input order. Parsing JSON is most of a replay's work; with this it uses
//! every core while memory stays bounded by the channel depth.
//!
//! NDJSON files travel as large chunks of whole lines (one read, no copy per
//! line); the parsing threads split them. Each event is parsed and digested
//! (`digest`: whatever the consumer needs of it) on the parsing thread, so
//! the full object is built and dropped there.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use crate::event::{self, Event, Input, Source};

/// One element of the input stream, in input order.
pub enum Unit<T> {
    /// The digested event (or why the text is not one), and its exact text
    /// when the caller asked to keep it.
    Item(Source, Result<T, String>, Option<String>),
    /// A file that could not be read or split (its name, the message).
    FileError(String, String),
}

enum Raw {
    Item(Source, Result<String, String>),
    /// Whole lines of an NDJSON file, the first of them numbered `first`.
    Lines {
        file: Arc<str>,
        first: usize,
        text: Vec<u8>,
        trim: event::LineTrim,
    },
    FileError(String, String),
}

/// Events a batch of a JSON document; an NDJSON batch is one 256 KiB chunk.
const BATCH: usize = 256;
/// Batches in flight each way: enough to keep both cores fed (4 measured
/// no faster on 2 cores), few enough that the chunks waiting stay a few MB.
const DEPTH: usize = 2;
/// Batches between the reader and the consumer at most, parsed or not.
/// The channels alone do not bound them: while one parsing thread is slow
/// (descheduled on a busy machine, or on a chunk of huge events) the others
/// go on, and their batches wait to be put back in order. Unbounded, that
/// wait held 60 MB more at a million events on a loaded machine.
const WINDOW: usize = 2 * DEPTH + 3;

/// Parse every input and digest each event; the iterator yields units in
/// input order.
pub fn parse_inputs<T, D>(
    inputs: &[Input],
    keep_raw: bool,
    digest: D,
) -> impl Iterator<Item = Unit<T>>
where
    T: Send + 'static,
    D: Fn(Event) -> T + Send + Sync + 'static,
{
    let inputs = inputs.to_vec();
    let workers = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let (raw_tx, raw_rx) = mpsc::sync_channel::<(u64, Vec<Raw>)>(DEPTH);
    let raw_rx = Arc::new(Mutex::new(raw_rx));
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Vec<Unit<T>>)>(DEPTH);
    // Chunks go back to the reader once parsed: a handful of buffers serve
    // the whole input.
    let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
    // One ticket a batch: the reader takes one before sending a batch, the
    // consumer gives it back when the batch is consumed in order.
    let (ticket_tx, ticket_rx) = mpsc::sync_channel::<()>(WINDOW);
    for _ in 0..WINDOW {
        let _ = ticket_tx.send(());
    }

    thread::spawn(move || read_all(&inputs, &raw_tx, &spare_rx, &ticket_rx));

    let digest = Arc::new(digest);
    for _ in 0..workers {
        let rx = raw_rx.clone();
        let tx = done_tx.clone();
        let digest = digest.clone();
        let spare = spare_tx.clone();
        thread::spawn(move || {
            loop {
                let next = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                let Ok((idx, batch)) = next else { return };
                let mut units = Vec::with_capacity(batch.len());
                for raw in batch {
                    if let Some(buf) = parse_raw(raw, keep_raw, &*digest, &mut units) {
                        let _ = spare.send(buf);
                    }
                }
                if tx.send((idx, units)).is_err() {
                    return;
                }
            }
        });
    }
    drop(done_tx);

    InOrder {
        rx: done_rx,
        tickets: ticket_tx,
        next: 0,
        waiting: BTreeMap::new(),
        current: Vec::new().into_iter(),
    }
}

/// The reading thread: every input, in order, as numbered batches.
fn read_all(
    inputs: &[Input],
    raw_tx: &mpsc::SyncSender<(u64, Vec<Raw>)>,
    spare: &mpsc::Receiver<Vec<u8>>,
    tickets: &mpsc::Receiver<()>,
) {
    let mut out = Batches {
        tx: raw_tx,
        tickets,
        batch: Vec::with_capacity(BATCH),
        idx: 0,
        alive: true,
    };
    for input in inputs {
        let name: Arc<str> = Arc::from(input.display());
        let mut spare = || spare.try_recv().ok();
        let result = match input {
            Input::File(path) if event::is_ndjson(path) => {
                event::read_chunks(&name, path, &mut spare, &mut |first, text| {
                    out.lines(&name, first, text, event::LineTrim::File)
                })
            }
            // NDJSON on stdin streams like a file's (bounded memory); a
            // single document (an event, an array, a list) is read whole.
            Input::Stdin => {
                let mut stdin = std::io::stdin().lock();
                match event::sniff_stdin(&mut stdin) {
                    Ok(event::Stdin::Lines(start)) => event::read_chunks_from(
                        &name,
                        &mut stdin,
                        start,
                        &mut spare,
                        &mut |first, text| out.lines(&name, first, text, event::LineTrim::Document),
                    ),
                    Ok(event::Stdin::Whole(buf)) => {
                        event::split_document(&name, &buf, &mut |source, text| {
                            out.item(source, text)
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Input::File(_) => {
                event::for_each_item(input, &mut |source, text| out.item(source, text))
            }
        };
        if let Err(message) = result {
            out.batch.push(Raw::FileError(input.display(), message));
        }
        if !out.alive {
            return;
        }
    }
    if !out.batch.is_empty() {
        out.send();
    }
}

/// The reader's batches on their way to the parsing threads.
struct Batches<'a> {
    tx: &'a mpsc::SyncSender<(u64, Vec<Raw>)>,
    tickets: &'a mpsc::Receiver<()>,
    batch: Vec<Raw>,
    idx: u64,
    /// The consumer is still there.
    alive: bool,
}

impl Batches<'_> {
    fn send(&mut self) {
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        // No ticket: the consumer is gone.
        self.alive = self.tickets.recv().is_ok() && self.tx.send((self.idx, full)).is_ok();
        self.idx += 1;
    }

    /// A chunk of NDJSON lines, a batch of its own; whether to go on.
    fn lines(
        &mut self,
        file: &Arc<str>,
        first: usize,
        text: Vec<u8>,
        trim: event::LineTrim,
    ) -> bool {
        self.batch.push(Raw::Lines {
            file: file.clone(),
            first,
            text,
            trim,
        });
        self.send();
        self.alive
    }

    /// One element of a document.
    fn item(&mut self, source: Source, text: Result<&str, String>) {
        if !self.alive {
            return;
        }
        self.batch.push(Raw::Item(source, text.map(str::to_owned)));
        if self.batch.len() >= BATCH {
            self.send();
        }
    }
}

/// Parse and digest one raw element (every line of a chunk) into `out`;
/// a chunk's buffer comes back, for the reader to fill again.
fn parse_raw<T>(
    raw: Raw,
    keep_raw: bool,
    digest: &dyn Fn(Event) -> T,
    out: &mut Vec<Unit<T>>,
) -> Option<Vec<u8>> {
    let mut one = |source: Source, text: Result<&str, String>| {
        let unit = match text {
            Ok(text) => Unit::Item(
                source,
                event::parse_event(text).map(digest),
                keep_raw.then(|| text.to_owned()),
            ),
            Err(e) => Unit::Item(source, Err(e), None),
        };
        out.push(unit);
    };
    match raw {
        Raw::Item(source, text) => match text {
            Ok(text) => one(source, Ok(&text)),
            Err(e) => one(source, Err(e)),
        },
        Raw::Lines {
            file,
            first,
            text,
            trim,
        } => {
            event::for_each_line(&file, first, &text, trim, &mut one);
            return Some(text);
        }
        Raw::FileError(name, message) => out.push(Unit::FileError(name, message)),
    }
    None
}

/// Reorders parsed batches by their index.
struct InOrder<T> {
    rx: mpsc::Receiver<(u64, Vec<Unit<T>>)>,
    tickets: mpsc::SyncSender<()>,
    next: u64,
    waiting: BTreeMap<u64, Vec<Unit<T>>>,
    current: std::vec::IntoIter<Unit<T>>,
}

impl<T> Iterator for InOrder<T> {
    type Item = Unit<T>;

    fn next(&mut self) -> Option<Unit<T>> {
        loop {
            if let Some(u) = self.current.next() {
                return Some(u);
            }
            if let Some(batch) = self.waiting.remove(&self.next) {
                self.next += 1;
                self.current = batch.into_iter();
                // The batch is out of the window (its units are taken one
                // by one from here: at most one batch more).
                let _ = self.tickets.try_send(());
                continue;
            }
            match self.rx.recv() {
                Ok((idx, batch)) => {
                    self.waiting.insert(idx, batch);
                }
                Err(_) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A parsing thread stuck on one chunk does not let the others run
    /// ahead without bound: at most [`WINDOW`] batches are in flight.
    #[test]
    fn a_slow_chunk_holds_back_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let pad = "x".repeat(2000);
        // About 125 events a 256 KiB chunk, 80 chunks.
        for i in 0..10_000 {
            writeln!(
                file,
                r#"{{"id":"evt_{i}","object":"event","type":"charge.succeeded","created":1,"data":{{"object":{{"id":"ch_1","object":"charge","description":"{pad}"}}}}}}"#
            )
            .unwrap();
        }
        drop(file);
        let digested = Arc::new(AtomicUsize::new(0));
        let counter = digested.clone();
        let inputs = [Input::File(path)];
        let mut units = parse_inputs(&inputs, false, move |ev: Event| {
            if ev.id == "evt_0" {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert!(units.next().is_some());
        let workers = thread::available_parallelism().map_or(1, |n| n.get());
        let per_chunk = (1 << 18) / 2100 + 1;
        // The window and the chunk being taken apart; of the 80 chunks.
        const { assert!(WINDOW + 1 < 20) };
        let at_most = 20 * per_chunk;
        let seen = digested.load(Ordering::SeqCst);
        assert!(
            workers == 1 || seen <= at_most,
            "{seen} events digested while the first chunk was slow, at most {at_most}"
        );
        assert_eq!(units.count(), 9_999);
    }
}
