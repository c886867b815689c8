//! The one sync engine. [`Syncer`] is the only writer of customers and
//! subscriptions: offline replay, `replay --live`, `resync --customer/--user`,
//! the backfill and every `--check`/`--dry-run` go through it.
//!
//! A dry run is the same code on a private in-memory copy of the store
//! ([`Mode::DryRun`]): every write happens there, so the outcomes (what would
//! change, drift) are exact, and the file is never touched.
//!
//! Which subscription is "the user's" is one rule, applied by the store when
//! the Syncer writes (see [`crate::store::Current`]): what
//! `GET /v1/subscriptions?customer=C&status=all&limit=1` returns first.

pub(crate) mod backfill;
pub(crate) mod events;
pub(crate) mod report;
pub(crate) mod source;
pub(crate) mod targeted;

use crate::Fatal;
use crate::runtime::Runtime;
use crate::store::{CustomerWrite, PassMarks, PassWrites, Store, WriteOutcome};
use crate::stripe::ApiError;

pub(crate) use source::{ApiSource, EventSnapshots, Source};

/// Whether writes reach the store's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Commit to the file.
    Write,
    /// Run every write on an in-memory copy of the store; the file is not touched.
    DryRun,
}

/// Why a sync run stopped as a whole (per-customer failures are not errors
/// of the run: they are in each [`Synced`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    /// The API refused the key (401/403) or cannot be reached at all: no
    /// further request can succeed.
    #[error(transparent)]
    Api(ApiError),
    /// The store could not be written.
    #[error(transparent)]
    Store(anyhow::Error),
    /// Ctrl-C; everything committed so far is consistent.
    #[error(transparent)]
    Interrupted(#[from] Fatal),
}

impl From<anyhow::Error> for SyncError {
    fn from(e: anyhow::Error) -> SyncError {
        SyncError::Store(e)
    }
}

/// Why one customer could not be fetched.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// Stops the run (see [`SyncError::Api`]).
    Fatal(ApiError),
    /// This customer's alone (a 404, a 400, an unreadable object).
    Customer(String),
    /// Ctrl-C while waiting for the API.
    Interrupted,
}

impl From<ApiError> for FetchError {
    fn from(e: ApiError) -> FetchError {
        if e.is_fatal() {
            FetchError::Fatal(e)
        } else {
            FetchError::Customer(e.to_string())
        }
    }
}

/// One customer to sync, and the user the routing found for it.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub customer_id: String,
    pub user_hint: Option<String>,
}

/// One customer's result.
#[derive(Debug, Clone)]
pub(crate) struct Synced {
    pub customer_id: String,
    pub result: Result<WriteOutcome, String>,
}

pub(crate) struct Syncer {
    store: Store,
    mode: Mode,
}

impl Syncer {
    /// The store at `db`, or a private copy of it for a dry run (an empty
    /// one when there is no file yet).
    pub(crate) fn open(db: &crate::store::Location, mode: Mode) -> anyhow::Result<Syncer> {
        let store = match mode {
            Mode::Write => Store::open(db)?,
            Mode::DryRun => Store::open_copy(db)?,
        };
        Ok(Syncer { store, mode })
    }

    /// A dry run on an empty store of its own: no file is opened, read or
    /// written (`replay --forward-to`, where the endpoint is under test).
    pub(crate) fn detached() -> anyhow::Result<Syncer> {
        Ok(Syncer {
            store: Store::in_memory()?,
            mode: Mode::DryRun,
        })
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// Read access for resolution and reports.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Fetch each job's customer from `source` and write it. Customers are
    /// committed `source.batch()` at a time, whole; a customer's fetch
    /// failure is its own; an auth or unreachable API, a store failure or
    /// Ctrl-C stops the run after committing what was fetched.
    pub(crate) fn sync(
        &mut self,
        source: &mut dyn Source,
        jobs: Vec<Job>,
        rt: Option<&Runtime>,
        progress: &indicatif::ProgressBar,
    ) -> Result<Vec<Synced>, SyncError> {
        let mut results = Vec::with_capacity(jobs.len());
        let batch = source.batch().max(1);
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let mut writes = Vec::with_capacity(batch);
            let mut stop = None;
            for job in jobs.by_ref().take(batch) {
                if let Some(rt) = rt
                    && let Err(e) = rt.check()
                {
                    stop = Some(SyncError::Interrupted(e));
                    break;
                }
                let known = self.store.customer_known(&job.customer_id)?;
                match source.fetch(&job, known) {
                    Ok(w) => writes.push(w),
                    Err(FetchError::Customer(msg)) => results.push(Synced {
                        customer_id: job.customer_id,
                        result: Err(msg),
                    }),
                    Err(FetchError::Fatal(e)) => {
                        stop = Some(SyncError::Api(e));
                        break;
                    }
                    Err(FetchError::Interrupted) => {
                        stop = Some(SyncError::Interrupted(Fatal::Interrupted));
                        break;
                    }
                }
                progress.inc(1);
            }
            let outcomes = self.write(&writes)?;
            results.extend(writes.into_iter().zip(outcomes).map(|(w, o)| Synced {
                customer_id: w.customer_id,
                result: Ok(o),
            }));
            if let Some(e) = stop {
                return Err(e);
            }
        }
        Ok(results)
    }

    /// Write whole customers in one transaction.
    pub(crate) fn write(
        &mut self,
        writes: &[CustomerWrite],
    ) -> Result<Vec<WriteOutcome>, SyncError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.apply(writes)?)
    }

    /// A backfill's writes (see [`crate::store::PassWrites`]): each
    /// customer is marked with the pass and run, which the run's report
    /// reads, rather than answering an outcome.
    pub(crate) fn pass_writes<T>(
        &mut self,
        marks: PassMarks,
        f: impl FnOnce(&mut PassWrites<'_, '_>) -> Result<T, SyncError>,
    ) -> Result<T, SyncError> {
        self.store.pass_writes(marks, f)
    }

    /// The event log, in one transaction (see [`Store::logging`]): the
    /// events the run processed, logged once their customers are committed.
    pub(crate) fn logging<T>(
        &mut self,
        f: impl FnOnce(&mut crate::store::EventLogger<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.store.logging(f)
    }

    /// Move the events checkpoint (`resync --events`, the end of a backfill).
    pub(crate) fn advance_events_checkpoint(
        &mut self,
        c: &crate::store::checkpoint::Events,
    ) -> anyhow::Result<()> {
        self.store.advance_events_checkpoint(c)
    }

    /// A backfill's bookkeeping: its pass, its run, its end, its indexes.
    pub(crate) fn begin_backfill(
        &mut self,
        now: i64,
    ) -> anyhow::Result<crate::store::checkpoint::Backfill> {
        self.store.begin_backfill(now)
    }

    pub(crate) fn begin_run(&mut self) -> anyhow::Result<i64> {
        self.store.begin_run()
    }

    pub(crate) fn end_backfill(&mut self) -> anyhow::Result<()> {
        self.store.end_backfill()
    }

    /// The whole account is in the store as of `at` (a finished backfill,
    /// a catch-up with no failure); nothing is marked in a dry run.
    pub(crate) fn mark_caught_up(&mut self, at: i64) -> anyhow::Result<()> {
        match self.mode() {
            Mode::Write => self.store.mark_caught_up(at),
            _ => Ok(()),
        }
    }

    pub(crate) fn restore_indexes(&mut self) -> anyhow::Result<()> {
        self.store.restore_indexes()
    }

    /// Close the store after a run that failed: a store file the run
    /// created and wrote nothing to is removed (see
    /// [`Store::close_or_discard`]).
    pub(crate) fn close_failed(self) {
        match self.mode {
            Mode::Write => self.store.close_or_discard(),
            Mode::DryRun => self.store.close(),
        }
    }

    /// Close the store, tidily (see [`Store::close`]).
    pub(crate) fn close(self) {
        self.store.close();
    }
}
