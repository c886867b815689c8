//! The one writer of a server: a thread that owns the store, takes the
//! verified events of every request waiting at that moment, runs them
//! through the replay engine as one batch (group commit: two transactions
//! for the whole batch instead of two per event), and only then answers each
//! request. With `--live` it never waits on the network: each request
//! fetched what its event needs before queueing it (`super::fetch`), and the
//! batch answers from that.

use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::config::Config;
use crate::event::{Event, Source};
use crate::replay::{self, Decision, Feed, Line, Plan, Progress};
use crate::routing::Route;
use crate::runtime::Runtime;
use crate::sync::Syncer;
use crate::sync::source::Fetched;

/// Events taken into one batch at most.
const MAX_BATCH: usize = 512;

/// Why an event was not processed: the request answers 500 and the event is
/// not logged, so Stripe's retry is processed.
pub(crate) type Failure = String;

pub(crate) struct Job {
    pub source: Source,
    pub event: Event,
    /// When it arrived (see `super::Arrivals`): a batch runs in this order.
    pub arrival: u64,
    pub answer: oneshot::Sender<Result<Decision, Failure>>,
    /// With `--live`: what the request fetched from the API for its event.
    pub fetched: Fetched,
}

pub(crate) struct Writer {
    pub syncer: Syncer,
    pub cfg: Config,
    /// `--live`: the client of the batch's API source, which answers from
    /// what the requests fetched and never calls it.
    pub live: Option<crate::stripe::Client>,
    /// Where odd metadata in the events is said (as `replay` says it).
    pub sink: crate::output::RequestSink,
}

impl Writer {
    /// Serve jobs until every sender is gone; then close the store.
    pub(crate) fn run(mut self, jobs: mpsc::Receiver<Job>, rt: &Runtime) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.batch(batch, rt);
        }
        self.syncer.close();
    }

    fn batch(&mut self, mut batch: Vec<Job>, rt: &Runtime) {
        // In the order queued: a customer's fetches were queued in the
        // order they were made (`super::fetch::Turns`), and the last one wins.
        let mut fetched = Fetched::default();
        for job in &mut batch {
            fetched.merge(std::mem::take(&mut job.fetched));
        }
        // The order `--record` names them in, so a replay of the recording
        // weighs same-second events as this batch does.
        batch.sort_by_key(|j| j.arrival);
        let mut answers = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        for job in batch {
            answers.push(job.answer);
            events.push((job.source, job.event));
        }
        // The store must still be the file it opened, before the batch and
        // after its commit: nothing written to a deleted or replaced store
        // is acknowledged (`Store::check_identity`).
        let processed = self
            .syncer
            .store()
            .check_identity()
            .and_then(|()| self.process(events, fetched, rt))
            .and_then(|results| self.syncer.store().check_identity().map(|()| results));
        match processed {
            Ok(results) => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                for answer in answers {
                    let _ = answer.send(Err(msg.clone()));
                }
            }
        }
    }

    /// Route, sync and log one batch; per event its decision, or why its
    /// customer could not be synced.
    fn process(
        &mut self,
        events: Vec<(Source, Event)>,
        fetched: Fetched,
        rt: &Runtime,
    ) -> anyhow::Result<Vec<Result<Decision, Failure>>> {
        let plan = Plan {
            cfg: &self.cfg,
            feed: Feed::Events(events),
            input_errors: Vec::new(),
            live: self.live.as_ref(),
            fetched: self.live.is_some().then_some(fetched),
            forwarder: None,
            trace: false,
            interruptible: false,
            dry_run_fetches: false,
        };
        let progress = Progress {
            events: indicatif::ProgressBar::hidden(),
            customers: indicatif::ProgressBar::hidden(),
        };
        let mut finished = replay::run(plan, &mut self.syncer, rt, &progress)?;
        // Padded, blank or non-string metadata: kept as written, and said
        // (the first few of a batch).
        for note in &finished.notes.kept {
            self.sink.warn(note);
        }
        let more = finished.notes.total - finished.notes.kept.len() as u64;
        if more > 0 {
            self.sink.warn(&format!(
                "{} more about metadata values (whitespace around them, blank, not strings)",
                crate::output::fmt::plural(more, "warning")
            ));
        }
        let ambiguous: std::collections::HashSet<String> = finished
            .ambiguous
            .iter()
            .map(|a| a.customer_id.clone())
            .collect();
        let mut decisions = Vec::new();
        finished.stream(&mut self.syncer, |line| {
            decisions.push(match line {
                Line::Raw(raw) => serde_json::from_str::<Decision>(&raw)?,
                Line::Settled(d) => *d,
            });
            Ok(())
        })?;
        Ok(answers(decisions, &finished.failures, &ambiguous))
    }
}

/// Each decision's answer: a failed customer's events (synced, or whose
/// user could not be looked up) fail; a redelivery in the same batch
/// answers as its first copy did, so a `duplicate` is never acknowledged
/// for an event that was not processed.
fn answers(
    decisions: Vec<Decision>,
    failures: &[crate::replay::SyncFailure],
    ambiguous: &std::collections::HashSet<String>,
) -> Vec<Result<Decision, Failure>> {
    let mut first: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<Result<Decision, Failure>> = Vec::with_capacity(decisions.len());
    for d in decisions {
        let id = d.event_id.clone().unwrap_or_default();
        let copy_of = match d.route {
            Route::Duplicate => first.get(&id).copied(),
            _ => {
                first.entry(id).or_insert(out.len());
                None
            }
        };
        if let Some(Err(failure)) = copy_of.map(|i| &out[i]) {
            let failure = failure.clone();
            out.push(Err(failure));
            continue;
        }
        let failed = failures.iter().find(|f| {
            matches!(d.route, Route::Sync | Route::Unresolved)
                && d.customer_id.as_deref() == Some(&f.customer_id)
        });
        out.push(match failed {
            Some(f) => Err(format!(
                "customer {} could not be synced: {}",
                f.customer_id, f.error
            )),
            None => Ok(Decision {
                ambiguous: d.route == Route::Sync
                    && d.customer_id
                        .as_ref()
                        .is_some_and(|c| ambiguous.contains(c)),
                ..d
            }),
        });
    }
    out
}
