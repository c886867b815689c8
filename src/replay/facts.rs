//! The replayed events' facts and the customers to sync, kept until the
//! end of the input in bounded memory. Routing needs none of them; the end
//! does, customer by customer (its settlement, its sync, its ambiguities).
//! So each fact, and each routing's user for a customer (its plan), is
//! sorted by its customer ([`crate::spill`]: in memory up to a budget, then
//! runs on disk), and the jobs and the model's snapshots
//! ([`EventSnapshots`]) are built for a few customers at a time, in
//! customer id order, each customer's records in input order: exactly what
//! one map of every customer would hold for them.
//!
//! A million events over 50,000 customers kept every snapshot at once in
//! 250 MB; the facts of 1,000 customers take a few MB.

use std::io;
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use std::hash::BuildHasher;

use crate::objects::Card;
use crate::spill::{Sorted, Sorter};
use crate::sync::source::{Arrival, Fact};
use crate::sync::{EventSnapshots, Job};

/// Facts held in memory before a sorted run goes to a temporary file.
const BUDGET: usize = 1 << 20;

/// One record about a customer, as sorted.
#[derive(Serialize)]
enum RecordRef<'a> {
    Fact(StoredRef<'a>),
    /// The routing sent an event of `created` (input position `seq`) to
    /// this user for the customer: the newest such is the sync's hint.
    Hint {
        user: &'a str,
        created: i64,
        seq: u64,
    },
    /// The customer is to be synced (its decisions wait for the end).
    Planned,
}

/// [`RecordRef`] read back.
#[derive(Deserialize)]
enum Record {
    Fact(Box<Stored>),
    Hint {
        user: String,
        created: i64,
        seq: u64,
    },
    Planned,
}

/// One fact as sorted: the fact and its event's place among the inputs.
#[derive(Serialize)]
struct StoredRef<'a> {
    kind: &'a str,
    created: i64,
    listed: Option<(&'a str, u64)>,
    seq: u64,
    event_id: &'a str,
    fact: &'a Fact,
}

/// [`StoredRef`] read back (the same fields, in the same order).
#[derive(Deserialize)]
struct Stored {
    kind: String,
    created: i64,
    listed: Option<(String, u64)>,
    seq: u64,
    event_id: String,
    fact: Fact,
}

/// The facts and plans of the routing pass, as they come.
pub(crate) struct FactLog {
    sorter: Sorter,
    /// Payment method id -> card: not a customer's, kept whole (small).
    cards: foldhash::HashMap<String, Card>,
    /// The customers met, as 64-bit hashes: how many jobs there will be
    /// (a progress bar's length; the jobs themselves come from the sort).
    customers: foldhash::HashSet<u64>,
    hasher: foldhash::fast::FixedState,
    buf: Vec<u8>,
}

impl FactLog {
    pub(crate) fn new() -> FactLog {
        FactLog {
            sorter: Sorter::new(BUDGET),
            cards: Default::default(),
            customers: Default::default(),
            hasher: foldhash::fast::FixedState::default(),
            buf: Vec::new(),
        }
    }

    /// About how many customers are to be synced (exact but for a 64-bit
    /// hash collision).
    pub(crate) fn customers(&self) -> usize {
        self.customers.len()
    }

    fn push(&mut self, customer: &str, record: &RecordRef<'_>) -> anyhow::Result<()> {
        self.customers.insert(self.hasher.hash_one(customer));
        self.buf.clear();
        self.buf = postcard::to_extend(record, std::mem::take(&mut self.buf))
            .context("cannot encode an event's facts")?;
        self.sorter
            .push(customer.as_bytes(), &self.buf)
            .with_context(|| {
                format!(
                    "cannot write a temporary file for the events' facts in {} (set TMPDIR to a writable directory with room)",
                    std::env::temp_dir().display()
                )
            })
    }

    /// The routing sent an event (of `created`, at input position `seq`)
    /// to `user` for `customer`.
    pub(crate) fn hint(
        &mut self,
        customer: &str,
        user: &str,
        created: i64,
        seq: u64,
    ) -> anyhow::Result<()> {
        self.push(customer, &RecordRef::Hint { user, created, seq })
    }

    /// `customer` is to be synced.
    pub(crate) fn plan(&mut self, customer: &str) -> anyhow::Result<()> {
        self.push(customer, &RecordRef::Planned)
    }

    /// Keep what one event (of type `kind`) told. Every customer the facts
    /// describe is synced: what the store learns of it (user mapping,
    /// unmapped customers) is kept.
    pub(crate) fn take(
        &mut self,
        facts: Vec<Fact>,
        kind: &str,
        at: &Arrival,
    ) -> anyhow::Result<()> {
        for fact in facts {
            let customer = match &fact {
                Fact::Card(pm, card) => {
                    self.cards.insert(pm.clone(), card.clone());
                    continue;
                }
                Fact::Customer(id, ..) => id.as_str(),
                Fact::Subscription(rec, _) => rec.customer_id.as_str(),
            };
            let stored = StoredRef {
                kind,
                created: at.created,
                listed: at.listed.as_ref().map(|(f, i)| (&**f, *i as u64)),
                seq: at.seq,
                event_id: &at.event_id,
                fact: &fact,
            };
            self.push(customer, &RecordRef::Fact(stored))?;
        }
        Ok(())
    }

    /// The facts, sorted by customer.
    pub(crate) fn finish(self) -> anyhow::Result<Facts> {
        let sorted = self
            .sorter
            .finish()
            .context("cannot read back the temporary file of the events' facts")?;
        Ok(Facts {
            sorted,
            snapshots: EventSnapshots::with_cards(self.cards),
        })
    }
}

/// The facts and plans in customer id order, read a few customers at a time.
pub(crate) struct Facts {
    sorted: Sorted,
    snapshots: EventSnapshots,
}

impl Facts {
    /// The jobs of the next `n` customers (in customer id order, each with
    /// the routing's newest user for it), and their snapshots; no job when
    /// every customer was read.
    pub(crate) fn next_jobs(&mut self, n: usize) -> anyhow::Result<(Vec<Job>, &EventSnapshots)> {
        self.snapshots.clear_customers();
        let mut jobs: Vec<Job> = Vec::new();
        // The newest hint of the last job: (created, seq).
        let mut newest = None;
        while let Some(key) = self.sorted.peek_key() {
            let same = jobs.last().is_some_and(|j| j.customer_id.as_bytes() == key);
            if !same && jobs.len() == n {
                break;
            }
            let Some((key, payload)) = self.sorted.next_record().map_err(read_error)? else {
                break;
            };
            if !same {
                let customer_id =
                    String::from_utf8(key).context("a customer id in the facts' file")?;
                jobs.push(Job {
                    customer_id,
                    user_hint: None,
                });
                newest = None;
            }
            let record: Record = postcard::from_bytes(&payload)
                .context("cannot decode the temporary file of the events' facts")?;
            match record {
                Record::Fact(s) => {
                    let at = Arrival {
                        created: s.created,
                        listed: s.listed.map(|(f, i)| (Arc::from(f), i as usize)),
                        seq: s.seq,
                        event_id: Arc::from(s.event_id),
                    };
                    self.snapshots.take_fact(s.fact, &s.kind, &at);
                }
                Record::Hint { user, created, seq } => {
                    if newest.is_none_or(|n| (created, seq) >= n) {
                        newest = Some((created, seq));
                        jobs.last_mut().expect("a job for each record").user_hint = Some(user);
                    }
                }
                Record::Planned => {}
            }
        }
        Ok((jobs, &self.snapshots))
    }
}

fn read_error(e: io::Error) -> anyhow::Error {
    anyhow::Error::new(e).context("cannot read back the temporary file of the events' facts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::StripeObject;
    use crate::sync::source::facts;

    fn object(json: serde_json::Value) -> StripeObject {
        serde_json::from_value(json).unwrap()
    }

    /// Events over several customers, facts spilled to disk in tiny runs,
    /// give each customer the snapshots one map of everything gives.
    #[test]
    fn chunked_snapshots_equal_one_map() {
        let mut whole = EventSnapshots::default();
        let mut log = FactLog::new();
        log.sorter = Sorter::new(64);
        let statuses = ["trialing", "active", "past_due", "active", "canceled"];
        let mut seq = 0;
        for (round, status) in statuses.iter().enumerate() {
            for c in 0..7 {
                seq += 1;
                let sub = object(serde_json::json!({
                    "id": format!("sub_{c}_{}", round / 3), "object": "subscription",
                    "customer": format!("cus_{c}"), "status": status,
                    "created": 100 + round / 3, "cancel_at_period_end": round == 4,
                    "default_payment_method": {"id": format!("pm_{c}"), "object": "payment_method",
                        "card": {"brand": "visa", "last4": format!("{c:04}")}},
                    "items": {"object": "list", "data": [{"price": {"id": "price_1"},
                        "current_period_start": 100, "current_period_end": 200}]}
                }));
                let cus = object(serde_json::json!({
                    "id": format!("cus_{c}"), "object": "customer",
                    "metadata": {"clerkUserId": format!("user_{}", c + round)},
                    "email": "a@example.com"
                }));
                // Same second for every round: the order needs the evidence.
                let at = Arrival {
                    created: 1000,
                    listed: (round == 2).then(|| (Arc::from("list.json"), c)),
                    seq,
                    event_id: Arc::from(format!("evt_{seq}")),
                };
                for (kind, o) in [
                    ("customer.subscription.updated", &sub),
                    ("customer.updated", &cus),
                ] {
                    let f = facts(kind, o, None, "clerkUserId", 1000);
                    whole.take(f.clone(), kind, &at);
                    log.take(f, kind, &at).unwrap();
                }
            }
        }
        // Plans: the newest hint wins whatever the input order; a customer
        // with a plan only has a job too.
        log.hint("cus_1", "user_new", 2000, 1).unwrap();
        log.hint("cus_1", "user_old", 1999, 2).unwrap();
        log.hint("cus_1", "user_same_second_later", 2000, 3)
            .unwrap();
        log.plan("cus_9").unwrap();
        assert!(log.sorter.spilled());
        assert_eq!(log.customers(), 8);
        let mut facts = log.finish().unwrap();
        let mut seen = 0;
        let mut all_jobs = Vec::new();
        loop {
            let (jobs, chunk) = facts.next_jobs(3).unwrap();
            if jobs.is_empty() {
                break;
            }
            assert!(jobs.len() <= 3);
            let mut ids: Vec<&String> = chunk.customer_ids().collect();
            ids.sort();
            ids.dedup();
            for id in ids {
                seen += 1;
                assert!(jobs.iter().any(|j| &j.customer_id == id));
                assert_eq!(chunk.customer_user(id), whole.customer_user(id), "{id}");
                assert_eq!(
                    chunk.subscriptions_of(id),
                    whole.subscriptions_of(id),
                    "{id}"
                );
                assert_eq!(chunk.born_of(id), whole.born_of(id), "{id}");
            }
            let mine: Vec<_> = chunk.ambiguities();
            let theirs: Vec<_> = whole
                .ambiguities()
                .into_iter()
                .filter(|a| mine.iter().any(|m| m.customer_id == a.customer_id))
                .collect();
            assert_eq!(format!("{mine:?}"), format!("{theirs:?}"));
            all_jobs.extend(jobs.into_iter().map(|j| (j.customer_id, j.user_hint)));
        }
        assert_eq!(seen, 7);
        let want: Vec<(String, Option<String>)> = (0..7)
            .map(|c| (format!("cus_{c}"), None))
            .chain([("cus_9".to_owned(), None)])
            .map(|(c, h)| match c.as_str() {
                "cus_1" => (c, Some("user_same_second_later".to_owned())),
                _ => (c, h),
            })
            .collect();
        assert_eq!(all_jobs, want);
    }
}
