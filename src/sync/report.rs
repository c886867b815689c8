//! What a resync tells per customer: its state and, when it changed (or
//! drifted, under `--check`), which fields differ between store and Stripe.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use super::Synced;
use crate::store::{MappingRow, Store, WriteOutcome};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CustomerReport {
    pub customer_id: Option<String>,
    pub user_id: Option<String>,
    pub status: Option<String>,
    pub changed: bool,
    pub error: Option<String>,
    pub diff: Option<Value>,
    /// Not in the store before (an addition to SPEC.md's fields).
    pub new: bool,
}

impl CustomerReport {
    /// A user for whom no customer was found.
    pub(crate) fn user_not_found(user: &str, error: String) -> CustomerReport {
        CustomerReport {
            customer_id: None,
            user_id: Some(user.to_owned()),
            status: None,
            changed: false,
            error: Some(error),
            diff: None,
            new: false,
        }
    }

    pub(crate) fn from_outcome(customer: &str, o: &WriteOutcome) -> CustomerReport {
        CustomerReport {
            customer_id: Some(customer.to_owned()),
            user_id: o.after.as_ref().and_then(|r| r.user_id.clone()),
            status: o.after.as_ref().map(|r| r.status.clone()),
            changed: o.changed,
            error: None,
            // A customer new to the store has no earlier state to differ from.
            diff: match o.before {
                Some(_) if o.changed => diff(o.before.as_ref(), o.after.as_ref()),
                _ => None,
            },
            new: o.before.is_none(),
        }
    }

    pub(crate) fn from_synced(s: &Synced) -> CustomerReport {
        match &s.result {
            Ok(o) => CustomerReport::from_outcome(&s.customer_id, o),
            Err(e) => CustomerReport::failed(&s.customer_id, e),
        }
    }

    /// A customer whose sync failed.
    pub(crate) fn failed(customer: &str, error: &str) -> CustomerReport {
        CustomerReport {
            customer_id: Some(customer.to_owned()),
            user_id: None,
            status: None,
            changed: false,
            error: Some(error.to_owned()),
            diff: None,
            new: false,
        }
    }
}

/// The fields a user sees in the mapping, store against Stripe.
pub(crate) fn diff(before: Option<&MappingRow>, after: Option<&MappingRow>) -> Option<Value> {
    let fields = |r: Option<&MappingRow>| -> BTreeMap<&'static str, Value> {
        let Some(r) = r else { return BTreeMap::new() };
        BTreeMap::from([
            ("user_id", json!(r.user_id)),
            ("email", json!(r.email)),
            ("subscription_id", json!(r.subscription_id)),
            ("status", json!(r.status)),
            ("price_id", json!(r.price_id)),
            ("current_period_start", json!(r.current_period_start)),
            ("current_period_end", json!(r.current_period_end)),
            ("cancel_at_period_end", json!(r.cancel_at_period_end)),
            ("payment_method", json!(r.payment_method)),
            ("deleted", json!(r.deleted)),
        ])
    };
    let (b, a) = (fields(before), fields(after));
    let mut out = serde_json::Map::new();
    for key in b.keys().chain(a.keys()).collect::<BTreeSet<_>>() {
        let (old, new) = (
            b.get(key).unwrap_or(&Value::Null),
            a.get(key).unwrap_or(&Value::Null),
        );
        if old != new {
            out.insert((*key).to_owned(), json!({"store": old, "stripe": new}));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Customers read per query: a page is about 1.5 KB a customer while it
/// is reported, and the report must fit in 50 MB (issue 21).
const REPORT_PAGE: usize = 256;

/// The report of a backfill run, one customer at a time in customer id
/// order, read from the store (the customers the run marked, and their
/// mappings from before it; see `store::write::run_page`) a page at a
/// time: the account's size does not matter.
pub(crate) struct PassReports<'a> {
    store: &'a Store,
    run: i64,
    after: Option<String>,
    page: std::vec::IntoIter<(String, WriteOutcome)>,
    done: bool,
}

impl<'a> PassReports<'a> {
    /// The report of the backfill run `run` (see `Backfiller::run`).
    pub(crate) fn new(store: &'a Store, run: i64) -> PassReports<'a> {
        PassReports {
            store,
            run,
            after: None,
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    /// How many customers the run wrote.
    pub(crate) fn len(&self) -> anyhow::Result<u64> {
        self.store.run_len(self.run)
    }
}

impl Iterator for PassReports<'_> {
    type Item = anyhow::Result<CustomerReport>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((customer, outcome)) = self.page.next() {
                return Some(Ok(CustomerReport::from_outcome(&customer, &outcome)));
            }
            if self.done {
                return None;
            }
            match self
                .store
                .run_page(self.run, self.after.as_deref(), REPORT_PAGE)
            {
                Ok(page) => {
                    self.done = page.len() < REPORT_PAGE;
                    self.after = page.last().map(|(c, _)| c.clone());
                    self.page = page.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// What a resync's reports add up to, counted as they are printed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub customers: u64,
    pub changed: u64,
    pub failed: u64,
    pub new: u64,
}

impl Tally {
    pub(crate) fn see(self, r: &CustomerReport) -> Tally {
        Tally {
            customers: self.customers + u64::from(r.customer_id.is_some()),
            changed: self.changed + u64::from(r.changed),
            failed: self.failed + u64::from(r.error.is_some()),
            new: self.new + u64::from(r.new),
        }
    }
}
