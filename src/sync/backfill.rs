//! `resync --all`: page every customer and subscription (100 a page, both
//! listings at once), write each page with its checkpoint in one
//! transaction through the [`Syncer`] (an interrupted run resumes there),
//! then settle what a complete pass proves: customers Stripe no longer
//! lists are deleted, customers none of whose subscriptions it listed have
//! none.
//!
//! The listing is newest first and ties come in the API's own order, so the
//! first subscription of a customer seen in the pass is exactly what
//! `status=all&limit=1` returns for it: nothing re-ranks ties.

use std::collections::BTreeMap;

use super::{Mode, SyncError, Syncer};
use crate::objects::{StripeObject, SubscriptionRecord};
use crate::runtime::Runtime;
use crate::store::checkpoint::{Backfill, Cursor};
use crate::store::{
    Current, CustomerInfo, CustomerWrite, MappingRow, PassStep, RecordSource, WriteOutcome,
};
use crate::stripe::{ApiError, Client};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Customers,
    Subscriptions,
}

struct Page {
    listing: Listing,
    objects: Vec<StripeObject>,
    next: Cursor,
}

/// Progress, for the caller's progress bar.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub customers: u64,
    pub subscriptions: u64,
}

/// The result of a pass: each customer touched, its mapping before the pass
/// against after.
pub(crate) struct Pass {
    pub outcomes: Vec<(String, WriteOutcome)>,
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
    pub(crate) fn run(
        &self,
        syncer: &mut Syncer,
        on_page: &mut dyn FnMut(Counts),
    ) -> Result<Pass, SyncError> {
        // A dry run (`--check`) always compares a whole fresh pass.
        let resume = match (syncer.mode(), self.restart) {
            (Mode::Write, false) => syncer.store().backfill()?,
            _ => None,
        };
        let mut checkpoint = match resume {
            Some(b) => b,
            None => {
                let b = Backfill::new(self.now);
                syncer.store_mut().begin_backfill(&b)?;
                b
            }
        };
        let at = checkpoint.started_at;
        let mut before: BTreeMap<String, Option<MappingRow>> = BTreeMap::new();
        let mut counts = Counts::default();

        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Page, ApiError>>(4);
        for (listing, cursor) in [
            (Listing::Customers, checkpoint.customers.clone()),
            (Listing::Subscriptions, checkpoint.subscriptions.clone()),
        ] {
            if cursor != Cursor::Done {
                self.rt
                    .handle()
                    .spawn(list(self.client.clone(), listing, cursor, tx.clone()));
            }
        }
        drop(tx);
        loop {
            let Some(page) = self.rt.block_on(rx.recv())? else {
                break;
            };
            let page = page.map_err(SyncError::Api)?;
            let (writes, seen) = match page.listing {
                Listing::Customers => {
                    counts.customers += page.objects.len() as u64;
                    checkpoint.customers = page.next;
                    let writes = customer_writes(&page.objects, self.user_key, at);
                    let seen = writes.iter().map(|w| w.customer_id.clone()).collect();
                    (writes, seen)
                }
                Listing::Subscriptions => {
                    counts.subscriptions += page.objects.len() as u64;
                    checkpoint.subscriptions = page.next;
                    (
                        subscription_writes(&page.objects, self.user_key, at),
                        Vec::new(),
                    )
                }
            };
            let step = PassStep {
                checkpoint: Some(&checkpoint),
                seen: seen.iter().map(String::as_str).collect(),
            };
            let outcomes = syncer.write(&writes, &step)?;
            for (w, o) in writes.iter().zip(outcomes) {
                before.entry(w.customer_id.clone()).or_insert(o.before);
            }
            on_page(counts);
        }

        self.settle(syncer, at, &mut before)?;
        let mut outcomes = Vec::with_capacity(before.len());
        for (c, before) in before {
            let after = syncer.store().mapping_of(&c)?;
            let changed = match (&before, &after) {
                (Some(b), Some(a)) => !crate::store::same_mapping(b, a),
                _ => true,
            };
            outcomes.push((
                c,
                WriteOutcome {
                    before,
                    after,
                    changed,
                },
            ));
        }
        Ok(Pass { outcomes })
    }

    /// The pass is complete: what it did not list is gone. Customers not
    /// listed are deleted; customers none of whose subscriptions were listed
    /// have none. Then the checkpoints move on.
    fn settle(
        &self,
        syncer: &mut Syncer,
        at: i64,
        before: &mut BTreeMap<String, Option<MappingRow>>,
    ) -> Result<(), SyncError> {
        let (unseen, without_subscriptions) = syncer.store().backfill_unseen()?;
        let write = |customer_id: String, info: CustomerInfo, current: Current| CustomerWrite {
            customer_id,
            info,
            user_key: self.user_key.to_owned(),
            subscriptions: Vec::new(),
            current,
            source: RecordSource::Api,
        };
        let deleted = CustomerInfo {
            deleted: true,
            snapshot_at: Some(at),
            ..CustomerInfo::default()
        };
        let mut writes: Vec<CustomerWrite> = unseen
            .into_iter()
            .map(|c| write(c, deleted.clone(), Current::Keep))
            .collect();
        writes.extend(
            without_subscriptions
                .into_iter()
                .map(|c| write(c, CustomerInfo::default(), Current::Listed(None, at))),
        );
        for (w, o) in writes
            .iter()
            .zip(syncer.write(&writes, &PassStep::default())?)
        {
            before.entry(w.customer_id.clone()).or_insert(o.before);
        }
        syncer.store_mut().end_backfill()?;
        // Events from the moment the pass started on are `resync --events`'s.
        syncer
            .store_mut()
            .advance_events_checkpoint(&crate::store::checkpoint::Events {
                created: at,
                id: None,
            })?;
        Ok(())
    }
}

/// One listing, page by page, into the channel; stops at the end, on an
/// error, or when the receiver is gone.
async fn list(
    client: Client,
    listing: Listing,
    cursor: Cursor,
    tx: tokio::sync::mpsc::Sender<Result<Page, ApiError>>,
) {
    let mut after = match cursor {
        Cursor::After(id) => Some(id),
        _ => None,
    };
    loop {
        let page = match listing {
            Listing::Customers => client.list_customers(after.as_deref()).await,
            Listing::Subscriptions => client.list_subscriptions(after.as_deref()).await,
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
        let msg = Page {
            listing,
            objects: page.data,
            next,
        };
        if tx.send(Ok(msg)).await.is_err() || done {
            return;
        }
        after = last;
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
                    source: RecordSource::Api,
                });
            }
        }
    }
    writes
}
