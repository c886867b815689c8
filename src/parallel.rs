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
    },
    FileError(String, String),
}

/// Events a batch of a JSON document; an NDJSON batch is one 1 MiB chunk.
const BATCH: usize = 256;
/// Batches in flight each way: enough to keep both cores fed, few enough
/// that the chunks waiting stay a few MB.
const DEPTH: usize = 4;

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

    thread::spawn(move || read_all(&inputs, &raw_tx, &spare_rx));

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
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut idx = 0u64;
    let mut send = |batch: &mut Vec<Raw>| -> bool {
        let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
        let ok = raw_tx.send((idx, full)).is_ok();
        idx += 1;
        ok
    };
    for input in inputs {
        let mut alive = true;
        let name: Arc<str> = Arc::from(input.display());
        let result = match input {
            Input::File(path) if event::is_ndjson(path) => event::read_chunks(
                &name,
                path,
                &mut || spare.try_recv().ok(),
                &mut |first, text| {
                    batch.push(Raw::Lines {
                        file: name.clone(),
                        first,
                        text,
                    });
                    alive = send(&mut batch);
                    alive
                },
            ),
            _ => event::for_each_item(input, &mut |source, text| {
                if !alive {
                    return;
                }
                batch.push(Raw::Item(source, text.map(str::to_owned)));
                if batch.len() >= BATCH {
                    alive = send(&mut batch);
                }
            }),
        };
        if let Err(message) = result {
            batch.push(Raw::FileError(input.display(), message));
        }
        if !alive {
            return;
        }
    }
    if !batch.is_empty() {
        send(&mut batch);
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
        Raw::Lines { file, first, text } => {
            event::for_each_line(&file, first, &text, &mut one);
            return Some(text);
        }
        Raw::FileError(name, message) => out.push(Unit::FileError(name, message)),
    }
    None
}

/// Reorders parsed batches by their index.
struct InOrder<T> {
    rx: mpsc::Receiver<(u64, Vec<Unit<T>>)>,
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
