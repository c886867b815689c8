//! The one sync function: customer -> subscription record -> store. The
//! same code serves offline replay, `replay --live` and `resync`; only the
//! [`SubscriptionSource`] differs (the replayed events, or the API).

use std::collections::HashMap;

use crate::objects::{Card, StripeObject, SubscriptionRecord, metadata_str};
use crate::store::{CustomerInfo, CustomerWrite, LoggedEvent, RecordSource, Store, WriteOutcome};

/// What a source knows about one customer.
#[derive(Debug, Clone, Default)]
pub struct CustomerState {
    /// The customer object's view (user id from its metadata, email), if known.
    pub info: Option<CustomerInfo>,
    /// Subscription snapshots with the time each was true.
    pub subscriptions: Vec<(SubscriptionRecord, i64)>,
}

/// Where subscription state comes from.
pub trait SubscriptionSource {
    fn source(&self) -> RecordSource;
    fn fetch(&mut self, customer_id: &str) -> anyhow::Result<CustomerState>;
}

/// One customer to sync: id, the routing's user, the events to log with it.
pub struct Job {
    pub customer_id: String,
    pub user_hint: Option<String>,
    pub events: Vec<LoggedEvent>,
}

/// Sync many customers: each is fetched on its own (a failure is that
/// customer's alone), then the fetched ones are written in one transaction.
pub fn sync_batch(
    store: &mut Store,
    source: &mut dyn SubscriptionSource,
    jobs: Vec<Job>,
    user_key: &str,
    dry_run: bool,
) -> anyhow::Result<Vec<(String, Result<WriteOutcome, String>)>> {
    let mut results = Vec::with_capacity(jobs.len());
    let mut writes = Vec::with_capacity(jobs.len());
    for job in jobs {
        match source.fetch(&job.customer_id) {
            Ok(state) => writes.push(plan_write(
                &job.customer_id,
                state,
                job.user_hint.as_deref(),
                user_key,
                source.source(),
                job.events,
            )),
            Err(e) => results.push((job.customer_id, Err(format!("{e:#}")))),
        }
    }
    let outcomes = store.write_batch(&writes, &[], &[], dry_run)?;
    results.extend(
        writes
            .into_iter()
            .map(|w| w.customer_id)
            .zip(outcomes.into_iter().map(Ok)),
    );
    Ok(results)
}

pub fn plan_write(
    customer_id: &str,
    state: CustomerState,
    user_hint: Option<&str>,
    user_key: &str,
    source: RecordSource,
    events: Vec<LoggedEvent>,
) -> CustomerWrite {
    let info = match state.info {
        Some(mut info) => {
            if info.user_id.is_none() && !info.deleted {
                info.user_id = user_hint.map(str::to_owned);
            }
            info
        }
        None => CustomerInfo {
            user_id: user_hint.map(str::to_owned),
            ..CustomerInfo::default()
        },
    };
    CustomerWrite {
        customer_id: customer_id.to_owned(),
        info,
        user_key: user_key.to_owned(),
        subscriptions: state.subscriptions,
        source,
        events,
    }
}

/// The customer's identity from a customer object.
pub fn customer_info(
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

/// Offline source: the newest snapshot of every object seen in the replayed
/// events. "Newest" is by event `created`; later input breaks ties.
#[derive(Debug, Default)]
pub struct EventSnapshots {
    /// customer id -> (info, event created, input sequence)
    pub customers: HashMap<String, (CustomerInfo, i64, u64)>,
    /// subscription id -> (record, event created, input sequence)
    pub subscriptions: HashMap<String, (SubscriptionRecord, i64, u64)>,
    /// payment method id -> card
    pub cards: HashMap<String, Card>,
    /// customer id -> its subscription ids
    by_customer: HashMap<String, Vec<String>>,
}

impl EventSnapshots {
    fn newer(existing: Option<(i64, u64)>, created: i64, seq: u64) -> bool {
        existing.is_none_or(|(c, s)| (created, seq) >= (c, s))
    }

    /// Take what an event's object tells: customer, subscription, card.
    pub fn observe(
        &mut self,
        kind: &str,
        o: &StripeObject,
        user_key: &str,
        created: i64,
        seq: u64,
    ) {
        match o.kind() {
            "customer" => {
                if let Some(id) = &o.id {
                    let deleted = kind == "customer.deleted";
                    self.put_customer(
                        id,
                        customer_info(o, user_key, created, deleted),
                        created,
                        seq,
                    );
                }
            }
            "subscription" => {
                if let Some(rec) = SubscriptionRecord::from_object(o) {
                    if let (Some(pm), Some(card)) = (&rec.payment_method_id, &rec.card) {
                        self.cards.insert(pm.clone(), card.clone());
                    }
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
            "payment_method" => {
                if let (Some(id), Some(card)) = (&o.id, &o.card) {
                    self.cards.insert(id.clone(), card.clone());
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
            self.put_customer(&c.id, info, created, seq);
        }
        if let Some(pm) = o.default_payment_method.as_ref().and_then(|p| p.object())
            && let Some(card) = &pm.card
        {
            self.cards.insert(pm.id.clone(), card.clone());
        }
    }

    fn put_customer(&mut self, id: &str, info: CustomerInfo, created: i64, seq: u64) {
        let existing = self.customers.get(id).map(|(_, c, s)| (*c, *s));
        if Self::newer(existing, created, seq) {
            self.customers.insert(id.to_owned(), (info, created, seq));
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

impl SubscriptionSource for EventSnapshots {
    fn source(&self) -> RecordSource {
        RecordSource::Events
    }

    fn fetch(&mut self, customer_id: &str) -> anyhow::Result<CustomerState> {
        let info = self.customers.get(customer_id).map(|(i, _, _)| i.clone());
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
        Ok(CustomerState {
            info,
            subscriptions,
        })
    }
}

/// Online source: the customer's newest subscription (`status=all`,
/// `limit=1`, payment method expanded) and, when the store does not know the
/// customer yet, the customer object itself.
pub struct ApiSource<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub client: &'a crate::stripe::Client,
    pub user_key: String,
    /// Fetch time: the snapshot time of everything this source returns.
    pub now: i64,
    /// Customers whose identity need not be fetched (known to the store).
    pub known: std::collections::HashSet<String>,
    /// Customer objects already fetched (search results, `--live` resolution).
    pub prefetched: HashMap<String, CustomerInfo>,
    /// Customers Stripe reports deleted; the caller marks them in the store.
    pub deleted: Vec<String>,
    /// A refused key stops the run; set on the first 401/403.
    pub fatal: Option<crate::stripe::ApiError>,
}

impl ApiSource<'_> {
    fn check(&mut self, e: crate::stripe::ApiError) -> anyhow::Error {
        if e.is_auth() && self.fatal.is_none() {
            self.fatal = Some(e.clone());
        }
        anyhow::Error::new(e)
    }

    /// The customer object, or `None` if Stripe says it was deleted.
    pub fn customer(&mut self, customer_id: &str) -> anyhow::Result<Option<CustomerInfo>> {
        use crate::stripe::CustomerFetch;
        if let Some(e) = &self.fatal {
            return Err(anyhow::Error::new(e.clone()));
        }
        match self.rt.block_on(self.client.customer(customer_id)) {
            Ok(CustomerFetch::Found(o)) => {
                Ok(Some(customer_info(&o, &self.user_key, self.now, false)))
            }
            Ok(CustomerFetch::Deleted) => Ok(None),
            Ok(CustomerFetch::Missing) => {
                anyhow::bail!("no such customer {customer_id} in this Stripe account (404)")
            }
            Err(e) => Err(self.check(e)),
        }
    }
}

impl SubscriptionSource for ApiSource<'_> {
    fn source(&self) -> RecordSource {
        RecordSource::Api
    }

    fn fetch(&mut self, customer_id: &str) -> anyhow::Result<CustomerState> {
        if let Some(e) = &self.fatal {
            return Err(anyhow::Error::new(e.clone()));
        }
        let info = match self.prefetched.remove(customer_id) {
            Some(info) => Some(info),
            None if self.known.contains(customer_id) => None,
            None => match self.customer(customer_id)? {
                Some(info) => Some(info),
                None => {
                    self.deleted.push(customer_id.to_owned());
                    None
                }
            },
        };
        let latest = match self
            .rt
            .block_on(self.client.latest_subscription(customer_id))
        {
            Ok(s) => s,
            Err(e) => return Err(self.check(e)),
        };
        let subscriptions = match &latest {
            None => Vec::new(),
            Some(o) => match SubscriptionRecord::from_object(o) {
                Some(r) => vec![(r, self.now)],
                None => anyhow::bail!(
                    "subscription {} of customer {customer_id} lacks id, customer, status or created",
                    o.id.as_deref().unwrap_or("(no id)")
                ),
            },
        };
        Ok(CustomerState {
            info,
            subscriptions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let state = a.fetch("cus_1").unwrap();
        assert_eq!(state.subscriptions.len(), 1);
        assert_eq!(state.subscriptions[0].0.status, "past_due");
        assert_eq!(state.subscriptions[0].1, 200);
    }

    #[test]
    fn ties_go_to_later_input() {
        let mut a = EventSnapshots::default();
        a.observe("x", &sub("sub_1", "active", 10), "uid", 100, 0);
        a.observe("x", &sub("sub_1", "canceled", 10), "uid", 100, 1);
        assert_eq!(
            a.fetch("cus_1").unwrap().subscriptions[0].0.status,
            "canceled"
        );
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
        let s = a.fetch("cus_1").unwrap();
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
        let w = plan_write(
            "cus_1",
            a.fetch("cus_1").unwrap(),
            Some("hint"),
            "uid",
            RecordSource::Events,
            vec![],
        );
        assert_eq!(w.info.user_id.as_deref(), Some("user_new"));
        assert_eq!(w.info.email.as_deref(), Some("a@b.c"));
    }
}
