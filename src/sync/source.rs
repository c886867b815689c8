//! Where a customer's truth comes from: the replayed events
//! ([`EventSnapshots`]) or the Stripe API ([`ApiSource`]). Each turns a
//! [`Job`] into a [`CustomerWrite`] for the [`super::Syncer`]; neither writes.

// foldhash: the replay looks these maps up once per event; SipHash was a
// measurable share of the routing thread (issue 12). Inputs are the user's
// own files, so hash flooding is not a concern here.
use foldhash::HashMap as FastMap;
use std::collections::HashMap;

use super::{FetchError, Job};
use crate::objects::{Card, StripeObject, SubscriptionRecord, metadata_str};
use crate::runtime::Runtime;
use crate::store::{Current, CustomerInfo, CustomerWrite, RecordSource};

/// A source of customer state.
pub(crate) trait Source {
    /// Customers committed per transaction.
    fn batch(&self) -> usize;
    /// The customer's write; `known`: the store has the customer already.
    fn fetch(&mut self, job: &Job, known: bool) -> Result<CustomerWrite, FetchError>;
}

/// A customer's identity when the source has no customer object: the
/// routing's user fills a blank, never replaces what an object said.
fn hinted(user_hint: Option<&str>) -> CustomerInfo {
    CustomerInfo {
        user_id: user_hint.map(str::to_owned),
        ..CustomerInfo::default()
    }
}

/// The customer's identity from a customer object.
pub(crate) fn customer_info(
    o: &StripeObject,
    user_key: &str,
    snapshot_at: i64,
    deleted: bool,
) -> CustomerInfo {
    CustomerInfo {
        user_id: metadata_str(o.metadata.as_ref(), user_key).map(str::to_owned),
        email: o.email.clone(),
        deleted: deleted || o.deleted.unwrap_or(false),
        snapshot_at: Some(snapshot_at),
    }
}

/// One thing an event's object tells about the account.
#[derive(Debug, Clone)]
pub(crate) enum Fact {
    Customer(String, CustomerInfo),
    Subscription(SubscriptionRecord),
    Card(String, Card),
}

/// What an event's object tells (customer, subscription, cards), in the
/// order it is taken: pure, so it runs where the event is parsed.
pub(crate) fn facts(kind: &str, o: &StripeObject, user_key: &str, created: i64) -> Vec<Fact> {
    let mut facts = Vec::new();
    match o.kind() {
        "customer" => {
            if let Some(id) = &o.id {
                let deleted = kind == "customer.deleted";
                let info = customer_info(o, user_key, created, deleted);
                facts.push(Fact::Customer(id.clone(), info));
            }
        }
        "subscription" => {
            if let Some(rec) = SubscriptionRecord::from_object(o) {
                if let (Some(pm), Some(card)) = (&rec.payment_method_id, &rec.card) {
                    facts.push(Fact::Card(pm.clone(), card.clone()));
                }
                facts.push(Fact::Subscription(rec));
            }
        }
        "payment_method" => {
            if let (Some(id), Some(card)) = (&o.id, &o.card) {
                facts.push(Fact::Card(id.clone(), card.clone()));
            }
        }
        _ => {}
    }
    // An expanded customer on any object is a customer snapshot too.
    if let Some(crate::objects::Expandable::Object(c)) = &o.customer {
        let info = CustomerInfo {
            user_id: metadata_str(c.metadata.as_ref(), user_key).map(str::to_owned),
            email: c.email.clone(),
            deleted: c.deleted,
            snapshot_at: Some(created),
        };
        facts.push(Fact::Customer(c.id.clone(), info));
    }
    if let Some(pm) = o.default_payment_method.as_ref().and_then(|p| p.object())
        && let Some(card) = &pm.card
    {
        facts.push(Fact::Card(pm.id.clone(), card.clone()));
    }
    facts
}

/// Offline source: the newest snapshot of every object seen in the replayed
/// events. "Newest" is by event `created`; later input breaks ties.
#[derive(Debug, Default)]
pub(crate) struct EventSnapshots {
    /// customer id -> (info, event created, input sequence)
    pub customers: FastMap<String, (CustomerInfo, i64, u64)>,
    /// subscription id -> (record, event created, input sequence)
    pub subscriptions: FastMap<String, (SubscriptionRecord, i64, u64)>,
    /// payment method id -> card
    pub cards: FastMap<String, Card>,
    /// customer id -> its subscription ids
    by_customer: FastMap<String, Vec<String>>,
}

impl EventSnapshots {
    fn newer(existing: Option<(i64, u64)>, created: i64, seq: u64) -> bool {
        existing.is_none_or(|(c, s)| (created, seq) >= (c, s))
    }

    /// Take what an event's object tells, at once.
    #[cfg(test)]
    pub fn observe(
        &mut self,
        kind: &str,
        o: &StripeObject,
        user_key: &str,
        created: i64,
        seq: u64,
    ) {
        self.take(facts(kind, o, user_key, created), created, seq);
    }

    /// Take what one event's object told (see [`facts`]), in order.
    pub fn take(&mut self, facts: Vec<Fact>, created: i64, seq: u64) {
        for fact in facts {
            match fact {
                Fact::Customer(id, info) => self.put_customer(id, info, created, seq),
                Fact::Card(id, card) => {
                    self.cards.insert(id, card);
                }
                Fact::Subscription(rec) => {
                    let existing = self.subscriptions.get(&rec.id).map(|(_, c, s)| (*c, *s));
                    if Self::newer(existing, created, seq) {
                        let ids = self.by_customer.entry(rec.customer_id.clone()).or_default();
                        if !ids.contains(&rec.id) {
                            ids.push(rec.id.clone());
                        }
                        self.subscriptions
                            .insert(rec.id.clone(), (rec, created, seq));
                    }
                }
            }
        }
    }

    fn put_customer(&mut self, id: String, info: CustomerInfo, created: i64, seq: u64) {
        let existing = self.customers.get(&id).map(|(_, c, s)| (*c, *s));
        if Self::newer(existing, created, seq) {
            self.customers.insert(id, (info, created, seq));
        }
    }

    /// The user id the inputs' customer objects give a customer.
    pub fn customer_user(&self, customer_id: &str) -> Option<&str> {
        self.customers.get(customer_id)?.0.user_id.as_deref()
    }

    /// Customers that have a customer object or a subscription in the inputs.
    pub fn customer_ids(&self) -> impl Iterator<Item = &String> {
        self.customers.keys().chain(self.by_customer.keys())
    }
}

impl EventSnapshots {
    fn subscriptions_of(&self, customer_id: &str) -> Vec<(SubscriptionRecord, i64)> {
        let mut subscriptions = Vec::new();
        for id in self.by_customer.get(customer_id).into_iter().flatten() {
            if let Some((rec, created, _)) = self.subscriptions.get(id) {
                let mut rec = rec.clone();
                if rec.card.is_none()
                    && let Some(pm) = &rec.payment_method_id
                {
                    rec.card = self.cards.get(pm).cloned();
                }
                subscriptions.push((rec, *created));
            }
        }
        subscriptions
    }
}

/// Offline: the newest snapshot of the customer and its subscriptions in
/// the inputs; the store then applies the newest-`created` rule over what
/// it and the inputs know.
pub(crate) struct Offline<'a> {
    pub snapshots: &'a EventSnapshots,
    pub user_key: &'a str,
}

impl Source for Offline<'_> {
    fn batch(&self) -> usize {
        // Whole customers only, so a crash never leaves half of one; large
        // transactions save rewriting the same pages.
        1000
    }

    fn fetch(&mut self, job: &Job, _known: bool) -> Result<CustomerWrite, FetchError> {
        let info = match self.snapshots.customers.get(&job.customer_id) {
            Some((info, _, _)) => {
                let mut info = info.clone();
                if info.user_id.is_none() && !info.deleted {
                    info.user_id = job.user_hint.clone();
                }
                info
            }
            None => hinted(job.user_hint.as_deref()),
        };
        Ok(CustomerWrite {
            customer_id: job.customer_id.clone(),
            info,
            user_key: self.user_key.to_owned(),
            subscriptions: self.snapshots.subscriptions_of(&job.customer_id),
            current: Current::Newest,
            source: RecordSource::Events,
        })
    }
}

/// Online: the customer's first listed subscription (`status=all`,
/// `limit=1`, payment method expanded) and, when the store does not know the
/// customer yet, the customer object itself.
pub(crate) struct ApiSource<'a> {
    pub rt: &'a Runtime,
    pub client: &'a crate::stripe::Client,
    pub user_key: String,
    /// Fetch time: the snapshot time of everything this source returns.
    pub now: i64,
    /// Customer objects already fetched (search results, `--live` resolution).
    pub prefetched: HashMap<String, CustomerInfo>,
    /// Whether Ctrl-C abandons a request (a server finishes what it accepted).
    pub interruptible: bool,
}

impl<'a> ApiSource<'a> {
    pub(crate) fn new(
        rt: &'a Runtime,
        client: &'a crate::stripe::Client,
        user_key: &str,
        now: i64,
    ) -> ApiSource<'a> {
        ApiSource {
            rt,
            client,
            user_key: user_key.to_owned(),
            now,
            prefetched: HashMap::new(),
            interruptible: true,
        }
    }

    fn call<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, crate::stripe::ApiError>>,
    ) -> Result<T, FetchError> {
        if !self.interruptible {
            return self.rt.handle().block_on(f).map_err(FetchError::from);
        }
        match self.rt.block_on(f) {
            Ok(r) => r.map_err(FetchError::from),
            Err(_) => Err(FetchError::Interrupted),
        }
    }

    /// The customer object (a deleted customer's is marked `deleted`).
    pub(crate) fn customer(&mut self, customer_id: &str) -> Result<CustomerInfo, FetchError> {
        use crate::stripe::CustomerFetch;
        if let Some(info) = self.prefetched.get(customer_id) {
            return Ok(info.clone());
        }
        let info = match self.call(self.client.customer(customer_id))? {
            CustomerFetch::Found(o) => customer_info(&o, &self.user_key, self.now, false),
            CustomerFetch::Deleted => CustomerInfo {
                deleted: true,
                snapshot_at: Some(self.now),
                ..CustomerInfo::default()
            },
            CustomerFetch::Missing => {
                return Err(FetchError::Customer(format!(
                    "no such customer {customer_id} in this Stripe account (404)"
                )));
            }
        };
        self.prefetched.insert(customer_id.to_owned(), info.clone());
        Ok(info)
    }
}

impl Source for ApiSource<'_> {
    fn batch(&self) -> usize {
        // Commit often: an interrupted run keeps what it fetched.
        50
    }

    fn fetch(&mut self, job: &Job, known: bool) -> Result<CustomerWrite, FetchError> {
        let id = job.customer_id.as_str();
        let mut info = match (self.prefetched.remove(id), known) {
            (Some(info), _) => Some(info),
            (None, true) => None,
            (None, false) => Some(self.customer(id)?),
        };
        let (user_key, now) = (self.user_key.clone(), self.now);
        let deleted_write = |info: CustomerInfo| CustomerWrite {
            customer_id: id.to_owned(),
            info,
            user_key: user_key.clone(),
            subscriptions: Vec::new(),
            current: Current::Listed(None, now),
            source: RecordSource::Api,
        };
        if let Some(i) = &info
            && i.deleted
        {
            return Ok(deleted_write(i.clone()));
        }
        let latest = match self.call(self.client.latest_subscription(id)) {
            Ok(latest) => latest,
            // Stripe may refuse to list a deleted customer's subscriptions.
            Err(FetchError::Customer(msg)) if info.is_none() => {
                let i = self.customer(id)?;
                if i.deleted {
                    return Ok(deleted_write(i));
                }
                return Err(FetchError::Customer(msg));
            }
            Err(e) => return Err(e),
        };
        let record = match &latest {
            None => None,
            Some(o) => match SubscriptionRecord::from_object(o) {
                Some(r) => Some(r),
                None => {
                    return Err(FetchError::Customer(format!(
                        "subscription {} of customer {id} lacks id, customer, status or created",
                        o.id.as_deref().unwrap_or("(no id)")
                    )));
                }
            },
        };
        // Deleting a customer cancels its subscriptions: a stored customer
        // with no live one may be gone; one more request tells.
        let live = record
            .as_ref()
            .is_some_and(|r| !matches!(r.status.as_str(), "canceled" | "incomplete_expired"));
        if info.is_none() && !live {
            let i = self.customer(id)?;
            if i.deleted {
                return Ok(deleted_write(i));
            }
            info = Some(i);
        }
        let current = Current::Listed(record.as_ref().map(|r| r.id.clone()), self.now);
        Ok(CustomerWrite {
            customer_id: id.to_owned(),
            info: info.unwrap_or_else(|| hinted(job.user_hint.as_deref())),
            user_key: self.user_key.clone(),
            subscriptions: record.into_iter().map(|r| (r, self.now)).collect(),
            current,
            source: RecordSource::Api,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(a: &EventSnapshots, hint: Option<&str>) -> CustomerWrite {
        let job = Job {
            customer_id: "cus_1".into(),
            user_hint: hint.map(str::to_owned),
        };
        Offline {
            snapshots: a,
            user_key: "uid",
        }
        .fetch(&job, false)
        .unwrap()
    }

    fn obj(json: &str) -> StripeObject {
        serde_json::from_str(json).unwrap()
    }

    fn sub(id: &str, status: &str, created: i64) -> StripeObject {
        obj(&format!(
            r#"{{"id":"{id}","object":"subscription","customer":"cus_1","status":"{status}","created":{created},
                "items":{{"data":[{{"price":"price_1","current_period_start":1,"current_period_end":2}}]}},
                "default_payment_method":"pm_1"}}"#
        ))
    }

    #[test]
    fn newest_snapshot_wins_whatever_the_order() {
        let mut a = EventSnapshots::default();
        a.observe(
            "customer.subscription.updated",
            &sub("sub_1", "past_due", 10),
            "uid",
            200,
            0,
        );
        a.observe(
            "customer.subscription.updated",
            &sub("sub_1", "active", 10),
            "uid",
            100,
            1,
        );
        let state = fetch(&a, None);
        assert_eq!(state.subscriptions.len(), 1);
        assert_eq!(state.subscriptions[0].0.status, "past_due");
        assert_eq!(state.subscriptions[0].1, 200);
    }

    #[test]
    fn ties_go_to_later_input() {
        let mut a = EventSnapshots::default();
        a.observe("x", &sub("sub_1", "active", 10), "uid", 100, 0);
        a.observe("x", &sub("sub_1", "canceled", 10), "uid", 100, 1);
        assert_eq!(fetch(&a, None).subscriptions[0].0.status, "canceled");
    }

    #[test]
    fn cards_from_payment_method_objects_fill_plain_ids() {
        let mut a = EventSnapshots::default();
        a.observe("x", &sub("sub_1", "active", 10), "uid", 100, 0);
        a.observe(
            "payment_method.attached",
            &obj(
                r#"{"id":"pm_1","object":"payment_method","card":{"brand":"amex","last4":"0005"}}"#,
            ),
            "uid",
            90,
            1,
        );
        let s = fetch(&a, None);
        assert_eq!(
            s.subscriptions[0].0.card.as_ref().unwrap().brand.as_deref(),
            Some("amex")
        );
    }

    #[test]
    fn customer_objects_give_the_user() {
        let mut a = EventSnapshots::default();
        a.observe(
            "customer.updated",
            &obj(r#"{"id":"cus_1","object":"customer","email":"a@b.c","metadata":{"uid":"user_new"}}"#),
            "uid",
            50,
            0,
        );
        a.observe(
            "customer.created",
            &obj(r#"{"id":"cus_1","object":"customer","metadata":{}}"#),
            "uid",
            40,
            1,
        );
        assert_eq!(a.customer_user("cus_1"), Some("user_new"));
        let w = fetch(&a, Some("hint"));
        assert_eq!(w.info.user_id.as_deref(), Some("user_new"));
        assert_eq!(w.info.email.as_deref(), Some("a@b.c"));
    }
}
