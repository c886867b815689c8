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
//! Nothing grows with the account: pages stream from the listing thread
//! (which parses them, into compact [`Page`]s) through a short channel
//! into the store, what the pass has seen is kept in the store, and so is
//! each written customer's mapping from before the run (the journal the
//! report is read from). The pass is followed by its report, which must
//! fit in 50 MB at a million customers (issue 21), and the allocators keep
//! what the pass used: so the pass itself holds little (a small page cache,
//! compact pages, a listing thread that ends with the listing).

use std::time::{Duration, Instant};

use tokio::sync::mpsc::Receiver;
use tokio::sync::mpsc::error::TryRecvError;

use super::{Mode, SyncError, Syncer};
use crate::objects::{Card, StripeObject, SubscriptionRecord};
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

/// Hold the store's backfill lock for this run (see
/// `Store::try_backfill_lock`): two passes at once would each settle what
/// the other had not listed yet. While another process holds it, `waiting`
/// is told once who does and the run waits (Ctrl-C stops it); with
/// `no_wait`, it refuses instead.
pub(crate) fn hold_lock(
    syncer: &Syncer,
    rt: &Runtime,
    no_wait: bool,
    waiting: impl FnOnce(&str),
) -> anyhow::Result<()> {
    let mut waiting = Some(waiting);
    while let Some(holder) = syncer.store().try_backfill_lock()? {
        if no_wait {
            anyhow::bail!(
                "another backfill is running on this store: {holder}; run again when it \
                 ends (or without --no-wait, to wait for it)"
            );
        }
        if let Some(tell) = waiting.take() {
            tell(&holder);
        }
        rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(500)).await;
        })?;
    }
    Ok(())
}

/// One page of a listing, as it waits to be written: what the writes need
/// of its objects, read where it was fetched (see [`Page`]).
struct Listed {
    listing: Listing,
    objects: u64,
    page: Page,
    next: Cursor,
}

/// Pages listed ahead of the store: enough to keep both listings busy
/// while a transaction commits, few enough to hold no memory to speak of
/// (a [`Page`] is 10-25 KB).
///
/// The listing runs on a thread of its own, not on the runtime's workers:
/// what a thread allocated (bodies, parsed objects, pages) mimalloc keeps
/// for that thread until it allocates again or ends, and the workers sit
/// idle through the report that follows the pass. At a million customers
/// that was 5-15 MB of the report's resident memory; a thread that ends
/// with the listing gives it back (issue 21).
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
        let mut rx = self.list(&pass.checkpoint)?;
        syncer.pass_writes(marks, |out| {
            while let Some(pages) = self.next_pages(&mut rx, out, &mut pass)? {
                pass.write(out, pages)?;
                on_page(pass.counts);
            }
            Ok(())
        })?;
        // Settling deletes what the pass did not list: only once both
        // listings reached their ends (one that stopped short without an
        // error, as a panic would, is no complete pass).
        if pass.checkpoint.customers != Cursor::Done
            || pass.checkpoint.subscriptions != Cursor::Done
        {
            return Err(SyncError::Store(anyhow::anyhow!(
                "the listing stopped before its end; run the backfill again to resume it"
            )));
        }
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
        let blank = CustomerWrite {
            customer_id: String::new(),
            info: CustomerInfo::default(),
            user_key: self.user_key.to_owned(),
            subscriptions: Vec::new(),
            evidence: Vec::new(),
            customer_evidence: None,
            current: Current::Keep,
            source: RecordSource::Api,
        };
        let pass = Pass {
            checkpoint,
            counts: Counts::default(),
            customer: blank.clone(),
            subscriptions: blank,
            deferred: false,
            waiting: Duration::ZERO,
            writing: Duration::ZERO,
            last_commit: None,
        };
        Ok((pass, marks))
    }

    /// List what the checkpoint has not finished: both listings on a
    /// thread of their own, which ends with the listing (see
    /// [`PAGES_AHEAD`] for why not on the runtime's workers).
    fn list(&self, checkpoint: &Backfill) -> Result<Receiver<Result<Listed, ApiError>>, SyncError> {
        let (tx, rx) = tokio::sync::mpsc::channel(PAGES_AHEAD);
        let listers: Vec<(Lister, Cursor)> = [
            (Listing::Customers, &checkpoint.customers),
            (Listing::Subscriptions, &checkpoint.subscriptions),
        ]
        .into_iter()
        .filter(|(_, cursor)| **cursor != Cursor::Done)
        .map(|(listing, cursor)| {
            let lister = Lister {
                client: self.client.clone(),
                listing,
                user_key: self.user_key.to_owned(),
                at: checkpoint.started_at,
            };
            (lister, cursor.clone())
        })
        .collect();
        let cannot = |e: std::io::Error| {
            SyncError::Store(anyhow::Error::from(e).context("cannot start the backfill's listing"))
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(cannot)?;
        std::thread::Builder::new()
            .name("backfill-listing".into())
            .spawn(move || {
                rt.block_on(async move {
                    let mut listings = tokio::task::JoinSet::new();
                    for (lister, cursor) in listers {
                        listings.spawn(lister.run(cursor, tx.clone()));
                    }
                    drop(tx);
                    while listings.join_next().await.is_some() {}
                });
            })
            .map_err(cannot)?;
        Ok(rx)
    }

    /// The next page and those already behind it (up to `SORTED_PAGES`),
    /// or `None` when both listings are done. When none comes within
    /// `IDLE_COMMIT`, what was written is committed while waiting.
    fn next_pages(
        &self,
        rx: &mut Receiver<Result<Listed, ApiError>>,
        out: &mut PassWrites<'_, '_>,
        pass: &mut Pass,
    ) -> Result<Option<Vec<Result<Listed, ApiError>>>, SyncError> {
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
    /// The write being made, one customer at a time, its strings reused.
    customer: CustomerWrite,
    subscriptions: CustomerWrite,
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
        out: &mut PassWrites<'_, '_>,
        pages: Vec<Result<Listed, ApiError>>,
    ) -> Result<(), SyncError> {
        let written = Instant::now();
        let mut listed = Vec::with_capacity(pages.len());
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
                }
                Listing::Subscriptions => {
                    self.counts.subscriptions += page.objects;
                    self.checkpoint.subscriptions = page.next;
                }
            }
            listed.push(page.page);
        }
        // Each write by its page and place there. Stable: a customer's
        // subscriptions stay in listing order, so its first one in the pass
        // is still first. Otherwise the order of writes does not matter:
        // each is a customer's own.
        let (mut customers, mut subscriptions) = (Vec::new(), Vec::new());
        for (p, page) in listed.iter().enumerate() {
            customers.extend((0..page.customers.len()).map(|i| (p, i)));
            subscriptions.extend((0..page.groups.len()).map(|i| (p, i)));
        }
        customers
            .sort_by(|&(p, i), &(q, j)| listed[p].customer_id(i).cmp(listed[q].customer_id(j)));
        subscriptions
            .sort_by(|&(p, i), &(q, j)| listed[p].subscriber_id(i).cmp(listed[q].subscriber_id(j)));
        for (p, i) in customers {
            listed[p].customer_write(i, &mut self.customer);
            out.write(&PassPage {
                writes: std::slice::from_ref(&self.customer),
                listed: true,
                checkpoint: None,
            })?;
        }
        for (p, i) in subscriptions {
            listed[p].subscriptions_write(i, &mut self.subscriptions);
            out.write(&PassPage {
                writes: std::slice::from_ref(&self.subscriptions),
                listed: false,
                checkpoint: None,
            })?;
        }
        out.write(&PassPage {
            writes: &[],
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
    async fn run(self, cursor: Cursor, tx: tokio::sync::mpsc::Sender<Result<Listed, ApiError>>) {
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
            let msg = Listed {
                listing: self.listing,
                objects: page.data.len() as u64,
                page: match self.listing {
                    Listing::Customers => Page::customers(&page.data, &self.user_key, self.at),
                    Listing::Subscriptions => Page::subscriptions(&page.data, self.at),
                },
                next,
            };
            if tx.send(Ok(msg)).await.is_err() || done {
                return;
            }
            after = last;
        }
    }
}

/// What the writes of a page need of its objects, compact: the text of
/// their fields in one string, the rest in a small record an object. As
/// [`CustomerWrite`]s (a dozen allocations an object), a page of the fake
/// Stripe's subscriptions was 69 KB and one of its customers 37 KB, and
/// 128 pages in flight kept the allocator's memory high after the pass,
/// through the report (issue 21); as a `Page`, 25 KB and 11 KB, in three
/// allocations. Each becomes a `CustomerWrite` as it is written.
#[derive(Default)]
struct Page {
    text: String,
    /// A customers page: its customers, in listing order.
    customers: Vec<PageCustomer>,
    /// A subscriptions page: its subscriptions, each customer's together
    /// in listing order, and a group for each customer (in the order of
    /// its first subscription): a customer's write.
    subscriptions: Vec<PageSubscription>,
    groups: Vec<PageGroup>,
    /// The snapshot time of the page's subscriptions.
    at: i64,
}

/// Where a field's text is in [`Page::text`].
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

/// A customer object (see [`super::source::customer_info`]).
struct PageCustomer {
    id: Span,
    user_id: Option<Span>,
    email: Option<Span>,
    deleted: bool,
    snapshot_at: Option<i64>,
}

/// A subscription object (see [`SubscriptionRecord`]).
struct PageSubscription {
    id: Span,
    customer_id: Span,
    status: Span,
    price_id: Option<Span>,
    payment_method_id: Option<Span>,
    card: Option<(Option<Span>, Option<Span>)>,
    current_period_start: Option<i64>,
    current_period_end: Option<i64>,
    cancel_at_period_end: bool,
    created: i64,
}

/// One customer's subscriptions in a page: `subscriptions[start..end]`.
struct PageGroup {
    customer_id: Span,
    start: u32,
    end: u32,
}

impl Page {
    /// A customers page.
    fn customers(objects: &[StripeObject], user_key: &str, at: i64) -> Page {
        let mut page = Page::default();
        for o in objects {
            let Some(id) = o.id.as_deref() else {
                continue;
            };
            let info = super::source::customer_info(o, user_key, at, false);
            let customer = PageCustomer {
                id: page.put(id),
                user_id: page.put_some(info.user_id.as_deref()),
                email: page.put_some(info.email.as_deref()),
                deleted: info.deleted,
                snapshot_at: info.snapshot_at,
            };
            page.customers.push(customer);
        }
        page.shrink();
        page
    }

    /// A subscriptions page: each customer's subscriptions in listing
    /// order, so the first of a customer in the pass is its current one.
    fn subscriptions(objects: &[StripeObject], at: i64) -> Page {
        let mut page = Page {
            at,
            ..Page::default()
        };
        let mut group: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut listed: Vec<(usize, PageSubscription)> = Vec::with_capacity(objects.len());
        for o in objects {
            let Some(rec) = SubscriptionRecord::from_object(o) else {
                continue;
            };
            let next = group.len();
            let g = *group
                .entry(o.customer_id().unwrap_or_default())
                .or_insert(next);
            if g == next {
                let customer_id = page.put(&rec.customer_id);
                page.groups.push(PageGroup {
                    customer_id,
                    start: 0,
                    end: 0,
                });
            }
            let card = rec.card.as_ref().map(|c| {
                (
                    page.put_some(c.brand.as_deref()),
                    page.put_some(c.last4.as_deref()),
                )
            });
            let sub = PageSubscription {
                id: page.put(&rec.id),
                customer_id: page.put(&rec.customer_id),
                status: page.put(&rec.status),
                price_id: page.put_some(rec.price_id.as_deref()),
                payment_method_id: page.put_some(rec.payment_method_id.as_deref()),
                card,
                current_period_start: rec.current_period_start,
                current_period_end: rec.current_period_end,
                cancel_at_period_end: rec.cancel_at_period_end,
                created: rec.created,
            };
            listed.push((g, sub));
        }
        // Stable: listing order within each customer's.
        listed.sort_by_key(|(g, _)| *g);
        for (i, (g, sub)) in listed.into_iter().enumerate() {
            let i = i as u32;
            let group = &mut page.groups[g];
            if group.end == 0 {
                group.start = i;
            }
            group.end = i + 1;
            page.subscriptions.push(sub);
        }
        page.shrink();
        page
    }

    /// Let go of what growing left unused: pages wait in the channel.
    fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.customers.shrink_to_fit();
        self.subscriptions.shrink_to_fit();
        self.groups.shrink_to_fit();
    }

    fn put(&mut self, text: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(text);
        Span {
            start,
            end: self.text.len() as u32,
        }
    }

    fn put_some(&mut self, text: Option<&str>) -> Option<Span> {
        text.map(|t| self.put(t))
    }

    fn get(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    /// The id of the `i`th customer.
    fn customer_id(&self, i: usize) -> &str {
        self.get(self.customers[i].id)
    }

    /// The customer of the `i`th group of subscriptions.
    fn subscriber_id(&self, i: usize) -> &str {
        self.get(self.groups[i].customer_id)
    }

    /// The write of the `i`th customer, made in `w` (a customers page's
    /// write: see [`Pass`]).
    fn customer_write(&self, i: usize, w: &mut CustomerWrite) {
        let c = &self.customers[i];
        set(&mut w.customer_id, self.get(c.id));
        set_some(&mut w.info.user_id, c.user_id.map(|s| self.get(s)));
        set_some(&mut w.info.email, c.email.map(|s| self.get(s)));
        w.info.deleted = c.deleted;
        w.info.snapshot_at = c.snapshot_at;
    }

    /// The write of the `i`th customer's subscriptions, made in `w` (a
    /// subscriptions page's write): the first is its current one, unless
    /// an earlier page of the pass had one.
    fn subscriptions_write(&self, i: usize, w: &mut CustomerWrite) {
        let group = &self.groups[i];
        set(&mut w.customer_id, self.get(group.customer_id));
        let subs = &self.subscriptions[group.start as usize..group.end as usize];
        w.subscriptions.truncate(subs.len());
        for (k, s) in subs.iter().enumerate() {
            if k == w.subscriptions.len() {
                w.subscriptions.push((blank_record(), self.at));
            }
            let (rec, at) = &mut w.subscriptions[k];
            *at = self.at;
            set(&mut rec.id, self.get(s.id));
            set(&mut rec.customer_id, self.get(s.customer_id));
            set(&mut rec.status, self.get(s.status));
            set_some(&mut rec.price_id, s.price_id.map(|t| self.get(t)));
            set_some(
                &mut rec.payment_method_id,
                s.payment_method_id.map(|t| self.get(t)),
            );
            match s.card {
                Some((brand, last4)) => {
                    let card = rec.card.get_or_insert(Card {
                        brand: None,
                        last4: None,
                    });
                    set_some(&mut card.brand, brand.map(|t| self.get(t)));
                    set_some(&mut card.last4, last4.map(|t| self.get(t)));
                }
                None => rec.card = None,
            }
            rec.current_period_start = s.current_period_start;
            rec.current_period_end = s.current_period_end;
            rec.cancel_at_period_end = s.cancel_at_period_end;
            rec.created = s.created;
        }
        let first = subs.first().map_or("", |s| self.get(s.id));
        match &mut w.current {
            Current::FirstInPass(id, at) => {
                set(id, first);
                *at = self.at;
            }
            current => *current = Current::FirstInPass(first.to_owned(), self.at),
        }
    }
}

fn blank_record() -> SubscriptionRecord {
    SubscriptionRecord {
        id: String::new(),
        customer_id: String::new(),
        status: String::new(),
        price_id: None,
        current_period_start: None,
        current_period_end: None,
        cancel_at_period_end: false,
        payment_method_id: None,
        card: None,
        created: 0,
    }
}

/// `to = from`, in `to`'s own buffer.
fn set(to: &mut String, from: &str) {
    to.clear();
    to.push_str(from);
}

fn set_some(to: &mut Option<String>, from: Option<&str>) {
    match from {
        Some(from) => set(to.get_or_insert_with(String::new), from),
        None => *to = None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writes of a page as they were first made, one `CustomerWrite`
    /// an object (or a customer's subscriptions) in the listing task.
    fn first_customer_writes(objects: &[StripeObject], at: i64) -> Vec<CustomerWrite> {
        objects
            .iter()
            .filter_map(|o| {
                Some(CustomerWrite {
                    customer_id: o.id.clone()?,
                    info: super::super::source::customer_info(o, "clerkUserId", at, false),
                    user_key: "clerkUserId".into(),
                    subscriptions: Vec::new(),
                    evidence: Vec::new(),
                    customer_evidence: None,
                    current: Current::Keep,
                    source: RecordSource::Api,
                })
            })
            .collect()
    }

    fn first_subscription_writes(objects: &[StripeObject], at: i64) -> Vec<CustomerWrite> {
        let mut writes: Vec<CustomerWrite> = Vec::new();
        for o in objects {
            let Some(rec) = SubscriptionRecord::from_object(o) else {
                continue;
            };
            match writes.iter_mut().find(|w| w.customer_id == rec.customer_id) {
                Some(w) => w.subscriptions.push((rec, at)),
                None => writes.push(CustomerWrite {
                    customer_id: rec.customer_id.clone(),
                    info: CustomerInfo::default(),
                    user_key: "clerkUserId".into(),
                    current: Current::FirstInPass(rec.id.clone(), at),
                    subscriptions: vec![(rec, at)],
                    evidence: Vec::new(),
                    customer_evidence: None,
                    source: RecordSource::Api,
                }),
            }
        }
        writes
    }

    fn objects(json: serde_json::Value) -> Vec<StripeObject> {
        serde_json::from_value(json).unwrap()
    }

    /// Each write of `page`, made in one reused `CustomerWrite`.
    fn made(page: &Page, subscriptions: bool) -> Vec<String> {
        let mut w = CustomerWrite {
            customer_id: String::new(),
            info: CustomerInfo::default(),
            user_key: "clerkUserId".into(),
            subscriptions: Vec::new(),
            evidence: Vec::new(),
            customer_evidence: None,
            current: Current::Keep,
            source: RecordSource::Api,
        };
        let n = match subscriptions {
            true => page.groups.len(),
            false => page.customers.len(),
        };
        (0..n)
            .map(|i| {
                match subscriptions {
                    true => page.subscriptions_write(i, &mut w),
                    false => page.customer_write(i, &mut w),
                }
                format!("{w:?}")
            })
            .collect()
    }

    #[test]
    fn a_compact_page_makes_the_writes_its_objects_made() {
        let customers = objects(serde_json::json!([
            {"id": "cus_2", "email": "two@example.com", "metadata": {"clerkUserId": "user_2"}},
            {"id": "cus_1", "email": null, "metadata": {}},
            {"email": "no-id@example.com"},
            {"id": "cus_3", "deleted": true},
            {"id": "cus_4", "email": "", "metadata": {"clerkUserId": "user_4"}}
        ]));
        let page = Page::customers(&customers, "clerkUserId", 50);
        let first: Vec<String> = first_customer_writes(&customers, 50)
            .iter()
            .map(|w| format!("{w:?}"))
            .collect();
        assert_eq!(first.len(), 4);
        assert_eq!(made(&page, false), first);

        let sub = |id: &str, customer: &str, status: &str, card: serde_json::Value| {
            serde_json::json!({
                "id": id, "object": "subscription", "customer": customer, "status": status,
                "created": 100, "cancel_at_period_end": status == "active",
                "items": {"object": "list", "data": [{"price": {"id": "price_1"},
                    "current_period_start": 10, "current_period_end": 20}]},
                "default_payment_method": card
            })
        };
        let subscriptions = objects(serde_json::json!([
            sub("sub_1", "cus_2", "active", serde_json::json!({"id": "pm_1", "card": {"brand": "visa", "last4": "4242"}})),
            sub("sub_2", "cus_1", "past_due", serde_json::json!("pm_2")),
            sub("sub_3", "cus_2", "canceled", serde_json::json!(null)),
            {"id": "sub_no_customer", "status": "active", "created": 1},
            sub("sub_4", "cus_3", "trialing", serde_json::json!({"id": "pm_4", "card": {"brand": "amex"}})),
            sub("sub_5", "cus_2", "unpaid", serde_json::json!({"id": "pm_5", "card": {"last4": "0005"}})),
            {"id": "sub_6", "object": "subscription", "customer": "cus_1", "status": "active",
             "created": 90, "current_period_start": 1, "current_period_end": 2}
        ]));
        let page = Page::subscriptions(&subscriptions, 50);
        let first: Vec<String> = first_subscription_writes(&subscriptions, 50)
            .iter()
            .map(|w| format!("{w:?}"))
            .collect();
        assert_eq!(first.len(), 3);
        assert_eq!(made(&page, true), first);
        // A write made in a buffer that held a larger one first.
        let mut w = first_subscription_writes(&subscriptions, 50).remove(0);
        page.subscriptions_write(2, &mut w);
        assert_eq!(format!("{w:?}"), first[2]);
    }
}
