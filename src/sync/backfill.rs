//! `resync --all`: page every customer and subscription (100 a page, both
//! listings at once), write the pages with their checkpoint in one
//! transaction through the [`Syncer`] (an interrupted run resumes there),
//! then settle what a complete pass proves: customers Stripe no longer
//! lists are deleted, customers none of whose subscriptions it listed have
//! none.
//!
//! The listing is newest first and ties come in the API's own order, so the
//! first subscription of a customer seen in the pass is exactly what
//! `status=all&limit=1` returns for it: nothing re-ranks ties.
//!
//! Nothing grows with the account: pages stream from the listing tasks
//! (which parse them) through a short channel into the store, what the
//! pass has seen is kept in the store, and so is each written customer's
//! mapping from before the run (the journal the report is read from).

use std::time::{Duration, Instant};

use tokio::sync::mpsc::Receiver;
use tokio::sync::mpsc::error::TryRecvError;

use super::{Mode, SyncError, Syncer};
use crate::objects::{StripeObject, SubscriptionRecord};
use crate::runtime::Runtime;
use crate::store::checkpoint::{Backfill, Cursor};
use crate::store::{
    Current, CustomerInfo, CustomerWrite, PassMarks, PassPage, PassWrites, RecordSource, Unlisted,
};
use crate::stripe::{ApiError, Client};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Customers,
    Subscriptions,
}

/// One page, turned into writes where it was fetched.
struct Page {
    listing: Listing,
    objects: u64,
    writes: Vec<CustomerWrite>,
    next: Cursor,
}

/// Pages listed ahead of the store: enough to keep both listings busy
/// while a transaction commits, few enough to hold no memory to speak of.
const PAGES_AHEAD: usize = 64;
/// When to commit the pages written so far. Ids are random, so a
/// transaction dirties index pages all over the store and its commit
/// writes each of them out: while pages keep coming, commits are
/// `BUSY_COMMIT` apart (a 1M-customer pass writes gigabytes less than with
/// a commit per page); when none comes for `IDLE_COMMIT` (a slow API),
/// at once, since the writer has nothing else to do. Either way an
/// interrupted run loses at most that much work, and resumes at the last
/// commit. (Committing whenever the channel was briefly empty, as this
/// did first, made a fast listing commit every 100 ms: a sixth of a
/// million-customer pass's CPU went to writing the same pages again.)
const BUSY_COMMIT: Duration = Duration::from_secs(2);
const IDLE_COMMIT: Duration = Duration::from_millis(100);
/// Pages (of those already listed) written together, sorted by customer.
const SORTED_PAGES: usize = PAGES_AHEAD;
/// Objects a pass writes before it drops the indexes only readers use
/// (`inspect`'s order, replay's newest subscription; see
/// `Store::defer_indexes`) and makes them again, sorted, once the pass is
/// complete: keeping them up row by row at random places was half of a
/// million-customer pass's time. Meanwhile readers work, slower; an
/// interrupted pass leaves them to the next open of the store for writing.
const DEFER_INDEXES_AFTER: u64 = 20_000;
/// Customers settled per transaction after the pass.
const SETTLE_BATCH: usize = 1_000;

/// What a run did.
#[derive(Debug, Clone)]
pub(crate) struct Ran {
    /// Its number: [`super::report::PassReports`] reads its report.
    pub run: i64,
    pub counts: Counts,
    /// Where the time went, for `-v`: waiting for the API's pages, writing
    /// them (with their commits), settling the complete pass, making the
    /// readers' indexes again (see `DEFER_INDEXES_AFTER`).
    pub timings: [(&'static str, Duration); 4],
}

/// Progress, for the caller's progress bar.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub customers: u64,
    pub subscriptions: u64,
}

pub(crate) struct Backfiller<'a> {
    pub rt: &'a Runtime,
    pub client: &'a Client,
    pub user_key: &'a str,
    /// Start over even if a pass was interrupted.
    pub restart: bool,
    pub now: i64,
}

impl Backfiller<'_> {
    /// Run the pass (see [`Ran`]).
    pub(crate) fn run(
        &self,
        syncer: &mut Syncer,
        on_page: &mut dyn FnMut(Counts),
    ) -> Result<Ran, SyncError> {
        let (mut pass, marks) = self.begin(syncer)?;
        let mut rx = self.list(&pass.checkpoint);
        syncer.pass_writes(marks, |out| {
            while let Some(pages) = self.next_pages(&mut rx, out, &mut pass)? {
                pass.write(out, pages)?;
                on_page(pass.counts);
            }
            Ok(())
        })?;
        let settling = Instant::now();
        self.settle(syncer, marks, pass.checkpoint.started_at)?;
        let settling = settling.elapsed();
        let indexing = Instant::now();
        if pass.deferred {
            syncer.restore_indexes()?;
        }
        Ok(Ran {
            run: marks.run,
            counts: pass.counts,
            timings: [
                ("listing", pass.waiting),
                ("writing", pass.writing),
                ("settling", settling),
                ("indexing", indexing.elapsed()),
            ],
        })
    }

    /// The pass to run: the interrupted one, else a new one. A dry run
    /// (`--check`) always compares a whole fresh pass.
    fn begin(&self, syncer: &mut Syncer) -> Result<(Pass, PassMarks), SyncError> {
        let resume = match (syncer.mode(), self.restart) {
            (Mode::Write, false) => syncer.store().backfill()?,
            _ => None,
        };
        let checkpoint = match resume {
            Some(b) => b,
            None => syncer.begin_backfill(self.now)?,
        };
        let marks = PassMarks {
            pass: checkpoint.pass,
            run: syncer.begin_run()?,
        };
        let pass = Pass {
            checkpoint,
            counts: Counts::default(),
            deferred: false,
            waiting: Duration::ZERO,
            writing: Duration::ZERO,
            last_commit: None,
        };
        Ok((pass, marks))
    }

    /// Start a listing task for each listing the checkpoint has not finished.
    fn list(&self, checkpoint: &Backfill) -> Receiver<Result<Page, ApiError>> {
        let (tx, rx) = tokio::sync::mpsc::channel(PAGES_AHEAD);
        for (listing, cursor) in [
            (Listing::Customers, &checkpoint.customers),
            (Listing::Subscriptions, &checkpoint.subscriptions),
        ] {
            if *cursor != Cursor::Done {
                let lister = Lister {
                    client: self.client.clone(),
                    listing,
                    user_key: self.user_key.to_owned(),
                    at: checkpoint.started_at,
                };
                self.rt
                    .handle()
                    .spawn(lister.run(cursor.clone(), tx.clone()));
            }
        }
        rx
    }

    /// The next page and those already behind it (up to `SORTED_PAGES`),
    /// or `None` when both listings are done. When none comes within
    /// `IDLE_COMMIT`, what was written is committed while waiting.
    fn next_pages(
        &self,
        rx: &mut Receiver<Result<Page, ApiError>>,
        out: &mut PassWrites<'_>,
        pass: &mut Pass,
    ) -> Result<Option<Vec<Result<Page, ApiError>>>, SyncError> {
        let waited = Instant::now();
        let next = match rx.try_recv() {
            Ok(page) => Some(page),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) => {
                let next = async { tokio::time::timeout(IDLE_COMMIT, rx.recv()).await };
                match self.rt.block_on(next)? {
                    Ok(next) => next,
                    Err(_) => {
                        let committing = Instant::now();
                        out.commit()?;
                        pass.writing += committing.elapsed();
                        pass.last_commit = Some(Instant::now());
                        self.rt.block_on(rx.recv())?
                    }
                }
            }
        };
        pass.waiting += waited.elapsed();
        let Some(first) = next else {
            return Ok(None);
        };
        let mut pages = vec![first];
        while pages.len() < SORTED_PAGES {
            match rx.try_recv() {
                Ok(page) => pages.push(page),
                Err(_) => break,
            }
        }
        Ok(Some(pages))
    }
}

/// A pass under way: where it is, what it wrote, where the time went.
struct Pass {
    checkpoint: Backfill,
    counts: Counts,
    /// Whether the readers' indexes were dropped (see `DEFER_INDEXES_AFTER`).
    deferred: bool,
    waiting: Duration,
    writing: Duration,
    last_commit: Option<Instant>,
}

impl Pass {
    /// Write `pages` (those before a failed one), sorted by customer id so
    /// that the store's indexes are walked in order, not at random; then
    /// commit if the last commit is `BUSY_COMMIT` old.
    fn write(
        &mut self,
        out: &mut PassWrites<'_>,
        pages: Vec<Result<Page, ApiError>>,
    ) -> Result<(), SyncError> {
        let written = Instant::now();
        let (mut listed, mut subscriptions) = (Vec::new(), Vec::new());
        let mut failed = None;
        for page in pages {
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            match page.listing {
                Listing::Customers => {
                    self.counts.customers += page.objects;
                    self.checkpoint.customers = page.next;
                    listed.extend(page.writes);
                }
                Listing::Subscriptions => {
                    self.counts.subscriptions += page.objects;
                    self.checkpoint.subscriptions = page.next;
                    subscriptions.extend(page.writes);
                }
            }
        }
        // Stable: a customer's subscriptions stay in listing order, so its
        // first one in the pass is still first. Otherwise the order of
        // writes does not matter: each is a customer's own.
        listed.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        subscriptions.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        out.write(&PassPage {
            writes: &listed,
            listed: true,
            checkpoint: None,
        })?;
        out.write(&PassPage {
            writes: &subscriptions,
            listed: false,
            checkpoint: Some(&self.checkpoint),
        })?;
        if let Some(e) = failed {
            return Err(SyncError::Api(e));
        }
        // A large pass: the readers' indexes wait for the end.
        if !self.deferred
            && self.counts.customers + self.counts.subscriptions >= DEFER_INDEXES_AFTER
        {
            out.defer_indexes()?;
            self.deferred = true;
        }
        if self.last_commit.is_none_or(|t| t.elapsed() >= BUSY_COMMIT) {
            out.commit()?;
            self.last_commit = Some(Instant::now());
        }
        self.writing += written.elapsed();
        Ok(())
    }
}

impl Backfiller<'_> {
    /// The pass is complete: what it did not list is gone. Customers not
    /// listed are deleted; customers none of whose subscriptions were listed
    /// have none. Then the checkpoints move on.
    fn settle(&self, syncer: &mut Syncer, marks: PassMarks, at: i64) -> Result<(), SyncError> {
        let write = |customer_id: String, info: CustomerInfo, current: Current| CustomerWrite {
            customer_id,
            info,
            user_key: self.user_key.to_owned(),
            subscriptions: Vec::new(),
            evidence: Vec::new(),
            customer_evidence: None,
            current,
            source: RecordSource::Api,
        };
        let deleted = CustomerInfo {
            deleted: true,
            snapshot_at: Some(at),
            ..CustomerInfo::default()
        };
        let mut after = 0;
        loop {
            let (found, last) =
                syncer
                    .store()
                    .backfill_unlisted(marks.pass, after, SETTLE_BATCH)?;
            if found.is_empty() {
                break;
            }
            after = last;
            let writes: Vec<CustomerWrite> = found
                .into_iter()
                .map(|(c, what)| match what {
                    Unlisted::Customer => write(c, deleted.clone(), Current::Keep),
                    Unlisted::Subscriptions => {
                        write(c, CustomerInfo::default(), Current::Listed(None, at))
                    }
                })
                .collect();
            let page = PassPage {
                writes: &writes,
                listed: false,
                checkpoint: None,
            };
            syncer.pass_writes(marks, |out| Ok(out.write(&page)?))?;
        }
        syncer.end_backfill()?;
        // As of the pass's start: what changed since is the event log's.
        syncer.mark_caught_up(at)?;
        // Events from the moment the pass started on are `resync --events`'s.
        syncer.advance_events_checkpoint(&crate::store::checkpoint::Events {
            created: at,
            id: None,
        })?;
        Ok(())
    }
}

/// One listing, fetched and turned into writes on the runtime.
struct Lister {
    client: Client,
    listing: Listing,
    user_key: String,
    at: i64,
}

impl Lister {
    /// Page by page into the channel; stops at the end (the page that says
    /// `has_more: false`: no request past it), on an error, or when the
    /// receiver is gone.
    async fn run(self, cursor: Cursor, tx: tokio::sync::mpsc::Sender<Result<Page, ApiError>>) {
        let mut after = match cursor {
            Cursor::After(id) => Some(id),
            _ => None,
        };
        loop {
            let page = match self.listing {
                Listing::Customers => self.client.list_customers(after.as_deref()).await,
                Listing::Subscriptions => self.client.list_subscriptions(after.as_deref()).await,
            };
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let last = page.data.last().and_then(|o| o.id.clone());
            let next = match (&last, page.has_more) {
                (Some(l), true) => Cursor::After(l.clone()),
                _ => Cursor::Done,
            };
            let done = next == Cursor::Done;
            let writes = match self.listing {
                Listing::Customers => customer_writes(&page.data, &self.user_key, self.at),
                Listing::Subscriptions => subscription_writes(&page.data, &self.user_key, self.at),
            };
            let msg = Page {
                listing: self.listing,
                objects: page.data.len() as u64,
                writes,
                next,
            };
            if tx.send(Ok(msg)).await.is_err() || done {
                return;
            }
            after = last;
        }
    }
}

fn customer_writes(objects: &[StripeObject], user_key: &str, at: i64) -> Vec<CustomerWrite> {
    objects
        .iter()
        .filter_map(|o| {
            Some(CustomerWrite {
                customer_id: o.id.clone()?,
                info: super::source::customer_info(o, user_key, at, false),
                user_key: user_key.to_owned(),
                subscriptions: Vec::new(),
                evidence: Vec::new(),
                customer_evidence: None,
                current: Current::Keep,
                source: RecordSource::Api,
            })
        })
        .collect()
}

/// A subscriptions page, per customer in listing order: the first of a
/// customer in the pass is its current one.
fn subscription_writes(objects: &[StripeObject], user_key: &str, at: i64) -> Vec<CustomerWrite> {
    let mut writes: Vec<CustomerWrite> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for o in objects {
        let Some(rec) = SubscriptionRecord::from_object(o) else {
            continue;
        };
        match index.get(&rec.customer_id) {
            Some(&i) => writes[i].subscriptions.push((rec, at)),
            None => {
                index.insert(rec.customer_id.clone(), writes.len());
                writes.push(CustomerWrite {
                    customer_id: rec.customer_id.clone(),
                    info: CustomerInfo::default(),
                    user_key: user_key.to_owned(),
                    current: Current::FirstInPass(rec.id.clone(), at),
                    subscriptions: vec![(rec, at)],
                    evidence: Vec::new(),
                    customer_evidence: None,
                    source: RecordSource::Api,
                });
            }
        }
    }
    writes
}
