//! Read inputs on one thread, parse events on the others, hand them back in
//! input order. Parsing JSON is most of a replay's work; with this it uses
//! every core while memory stays bounded by the channel depth.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread;

use crate::event::{self, Event, Input, Source};

/// One element of the input stream, in input order.
// Units travel in Vecs; boxing every event would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Unit {
    /// The parsed event, and its exact text when the caller asked to keep it.
    Item(Source, Result<Event, String>, Option<String>),
    /// A file that could not be read or split (its name, the message).
    FileError(String, String),
}

enum Raw {
    Item(Source, Result<String, String>),
    FileError(String, String),
}

const BATCH: usize = 256;
const DEPTH: usize = 8;

/// Parse every input; the iterator yields units in input order.
pub fn parse_inputs(inputs: &[Input], keep_raw: bool) -> impl Iterator<Item = Unit> {
    let inputs = inputs.to_vec();
    let workers = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let (raw_tx, raw_rx) = mpsc::sync_channel::<(u64, Vec<Raw>)>(DEPTH);
    let raw_rx = std::sync::Arc::new(std::sync::Mutex::new(raw_rx));
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Vec<Unit>)>(DEPTH);

    thread::spawn(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let mut idx = 0u64;
        let send = |batch: &mut Vec<Raw>, idx: &mut u64| -> bool {
            let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
            let ok = raw_tx.send((*idx, full)).is_ok();
            *idx += 1;
            ok
        };
        for input in &inputs {
            let mut alive = true;
            let result = event::for_each_item(input, &mut |source, text| {
                if !alive {
                    return;
                }
                batch.push(Raw::Item(source, text.map(str::to_owned)));
                if batch.len() >= BATCH {
                    alive = send(&mut batch, &mut idx);
                }
            });
            if let Err(message) = result {
                batch.push(Raw::FileError(input.display(), message));
            }
            if !alive {
                return;
            }
        }
        if !batch.is_empty() {
            send(&mut batch, &mut idx);
        }
    });

    for _ in 0..workers {
        let rx = raw_rx.clone();
        let tx = done_tx.clone();
        thread::spawn(move || {
            loop {
                let next = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                let Ok((idx, batch)) = next else { return };
                let parsed = batch
                    .into_iter()
                    .map(|raw| match raw {
                        Raw::Item(source, Ok(text)) => {
                            let parsed = event::parse_event(&text);
                            Unit::Item(source, parsed, keep_raw.then_some(text))
                        }
                        Raw::Item(source, Err(e)) => Unit::Item(source, Err(e), None),
                        Raw::FileError(name, message) => Unit::FileError(name, message),
                    })
                    .collect();
                if tx.send((idx, parsed)).is_err() {
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

/// Reorders parsed batches by their index.
struct InOrder {
    rx: mpsc::Receiver<(u64, Vec<Unit>)>,
    next: u64,
    waiting: BTreeMap<u64, Vec<Unit>>,
    current: std::vec::IntoIter<Unit>,
}

impl Iterator for InOrder {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
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
