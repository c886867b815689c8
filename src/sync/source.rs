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
use crate::truth::{CustomerState, Newest, Previous, SnapshotOrder, Stage, Stamp};

/// A source of customer state.
pub(crate) trait Source {
    /// Customers committed per transaction.
    fn batch(&self) -> usize;
    /// The customer's write; `known`: the store has the customer already.
    fn fetch(&mut self, job: &Job, known: bool) -> Result<CustomerWrite, FetchError>;
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

/// One thing an event's object tells about the account, with what the
/// model weighs to order it (see [`crate::truth`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum Fact {
    Customer(String, CustomerInfo, Stage, Option<Previous>),
    Subscription(SubscriptionRecord, Option<Previous>),
    Card(String, Card),
}

/// What an event's object tells (customer, subscription, cards), in the
/// order it is taken: pure, so it runs where the event is parsed.
/// `previous`: the event's `previous_attributes` (its own object's).
pub(crate) fn facts(
    kind: &str,
    o: &StripeObject,
    previous: Option<&StripeObject>,
    user_key: &str,
    created: i64,
) -> Vec<Fact> {
    let mut facts = Vec::new();
    match o.kind() {
        "customer" => {
            if let Some(id) = &o.id {
                let deleted = kind == "customer.deleted";
                let info = customer_info(o, user_key, created, deleted);
                let stage = Stage::of(kind, None);
                let prev = previous.and_then(|p| Previous::of_customer(p, user_key));
                facts.push(Fact::Customer(id.clone(), info, stage, prev));
            }
        }
        "subscription" => {
            if let Some(rec) = SubscriptionRecord::from_object(o) {
                if let (Some(pm), Some(card)) = (&rec.payment_method_id, &rec.card) {
                    facts.push(Fact::Card(pm.clone(), card.clone()));
                }
                let prev = previous.and_then(Previous::of_subscription);
                facts.push(Fact::Subscription(rec, prev));
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
        let stage = if c.deleted {
            Stage::Final
        } else {
            Stage::Updated
        };
        facts.push(Fact::Customer(c.id.clone(), info, stage, None));
    }
    if let Some(pm) = o.default_payment_method.as_ref().and_then(|p| p.object())
        && let Some(card) = &pm.card
    {
        facts.push(Fact::Card(pm.id.clone(), card.clone()));
    }
    facts
}

/// Where one event stands among the inputs: rule 1's evidence but the
/// stage, which is each fact's.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    pub created: i64,
    pub listed: Option<(std::sync::Arc<str>, usize)>,
    pub seq: u64,
    pub event_id: std::sync::Arc<str>,
}

impl Arrival {
    fn stamp(&self, stage: Stage) -> Stamp {
        Stamp {
            created: self.created,
            listed: self.listed.clone(),
            stage,
            seq: self.seq,
            event_id: self.event_id.clone(),
        }
    }
}

pub(crate) use crate::truth::Ambiguity;

/// Offline source: the newest snapshot of every object seen in the replayed
/// events, by the model's order ([`crate::truth::order`]).
#[derive(Debug, Default)]
pub(crate) struct EventSnapshots {
    /// Customer objects (not deleted): the user and email.
    pub customers: FastMap<String, Newest<CustomerInfo>>,
    /// Customers deleted (rule 3: final), with the deletion's event.
    deletions: FastMap<String, Stamp>,
    pub subscriptions: FastMap<String, Newest<SubscriptionRecord>>,
    /// subscription id -> its `*.created` event (rule 2's tie evidence)
    born: FastMap<String, Stamp>,
    /// payment method id -> card
    pub cards: FastMap<String, Card>,
    /// customer id -> its subscription ids
    by_customer: FastMap<String, Vec<String>>,
}

impl EventSnapshots {
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
        let arrival = Arrival {
            created,
            listed: None,
            seq,
            event_id: std::sync::Arc::from(format!("evt_{seq}")),
        };
        self.take(facts(kind, o, None, user_key, created), kind, &arrival);
    }

    /// Take what one event (of type `kind`) told (see [`facts`]), in order.
    #[cfg(test)]
    pub fn take(&mut self, facts: Vec<Fact>, kind: &str, at: &Arrival) {
        for fact in facts {
            self.take_fact(fact, kind, at);
        }
    }

    /// No object yet but these cards.
    pub(crate) fn with_cards(cards: FastMap<String, Card>) -> EventSnapshots {
        EventSnapshots {
            cards,
            ..EventSnapshots::default()
        }
    }

    /// Forget every object but the cards (which are keyed by payment
    /// method, not customer): the next customers' facts come next.
    pub(crate) fn clear_customers(&mut self) {
        let cards = std::mem::take(&mut self.cards);
        *self = EventSnapshots {
            cards,
            ..EventSnapshots::default()
        };
    }

    /// Take one fact of an event of type `kind`.
    pub(crate) fn take_fact(&mut self, fact: Fact, kind: &str, at: &Arrival) {
        match fact {
            Fact::Customer(id, info, _, prev) if info.deleted => {
                // Rule 3: a deletion is final, kept apart from the
                // customer's user. A stub says nothing of the user; the
                // object of a `customer.deleted` event is the customer
                // as it was deleted: its user is the last one.
                if info.user_id.is_some() || info.email.is_some() {
                    let last = CustomerInfo {
                        deleted: false,
                        ..info
                    };
                    let stamp = at.stamp(Stage::Final);
                    match self.customers.get_mut(&id) {
                        Some(n) => n.offer(last, stamp, prev),
                        None => {
                            self.customers
                                .insert(id.clone(), Newest::new(last, stamp, prev));
                        }
                    }
                }
                self.deletions
                    .entry(id)
                    .or_insert_with(|| at.stamp(Stage::Final));
            }
            Fact::Customer(id, info, stage, prev) => {
                let stamp = at.stamp(stage);
                match self.customers.get_mut(&id) {
                    Some(n) => n.offer(info, stamp, prev),
                    None => {
                        self.customers.insert(id, Newest::new(info, stamp, prev));
                    }
                }
            }
            Fact::Card(id, card) => {
                self.cards.insert(id, card);
            }
            Fact::Subscription(rec, prev) => {
                let stamp = at.stamp(Stage::of(kind, Some(&rec.status)));
                if kind.ends_with(".created") && !self.born.contains_key(&rec.id) {
                    self.born.insert(rec.id.clone(), stamp.clone());
                }
                match self.subscriptions.get_mut(&rec.id) {
                    Some(n) => n.offer(rec, stamp, prev),
                    None => {
                        let ids = self.by_customer.entry(rec.customer_id.clone()).or_default();
                        ids.push(rec.id.clone());
                        self.subscriptions
                            .insert(rec.id.clone(), Newest::new(rec, stamp, prev));
                    }
                }
            }
        }
    }

    /// The user id the inputs' customer objects give a customer.
    pub fn customer_user(&self, customer_id: &str) -> Option<&str> {
        self.customers.get(customer_id)?.snapshot.user_id.as_deref()
    }

    /// Customers that have a customer object (or a deletion) or a
    /// subscription in the inputs.
    #[cfg(test)]
    pub fn customer_ids(&self) -> impl Iterator<Item = &String> {
        self.customers
            .keys()
            .chain(self.deletions.keys())
            .chain(self.by_customer.keys())
    }

    /// Whether the inputs hold the customer's object (or its deletion).
    pub fn describes(&self, customer_id: &str) -> bool {
        self.customers.contains_key(customer_id) || self.deletions.contains_key(customer_id)
    }

    /// Snapshots whose order the inputs cannot tell (rule 1), by customer
    /// and object id.
    pub fn ambiguities(&self) -> Vec<Ambiguity> {
        let mut out: Vec<Ambiguity> = Vec::new();
        let ids = |v: Vec<std::sync::Arc<str>>| v.iter().map(|e| e.to_string()).collect();
        for (id, n) in &self.customers {
            if let Some(events) = n.ambiguity() {
                out.push(Ambiguity {
                    customer_id: id.clone(),
                    object_id: id.clone(),
                    event_ids: ids(events),
                });
            }
        }
        for (id, n) in &self.subscriptions {
            if let Some(events) = n.ambiguity() {
                out.push(Ambiguity {
                    customer_id: n.snapshot.customer_id.clone(),
                    object_id: id.clone(),
                    event_ids: ids(events),
                });
            }
        }
        out.sort_by(|a, b| (&a.customer_id, &a.object_id).cmp(&(&b.customer_id, &b.object_id)));
        out
    }

    /// The creation events the inputs hold of a customer's subscriptions.
    pub(crate) fn born_of(&self, customer_id: &str) -> Vec<(String, Stamp)> {
        self.by_customer
            .get(customer_id)
            .into_iter()
            .flatten()
            .filter_map(|id| Some((id.clone(), self.born.get(id)?.clone())))
            .collect()
    }
}

impl EventSnapshots {
    /// The order evidence of each of the customer's newest snapshots.
    fn evidence_of(&self, customer_id: &str) -> Vec<(String, SnapshotOrder)> {
        self.by_customer
            .get(customer_id)
            .into_iter()
            .flatten()
            .filter_map(|id| {
                let n = self.subscriptions.get(id)?;
                let order = SnapshotOrder {
                    stamp: n.stamp.clone(),
                    previous: n.previous.clone(),
                };
                Some((id.clone(), order))
            })
            .collect()
    }

    pub(crate) fn subscriptions_of(&self, customer_id: &str) -> Vec<(SubscriptionRecord, i64)> {
        let mut subscriptions = Vec::new();
        for id in self.by_customer.get(customer_id).into_iter().flatten() {
            if let Some(n) = self.subscriptions.get(id) {
                let mut rec = n.snapshot.clone();
                if rec.card.is_none()
                    && let Some(pm) = &rec.payment_method_id
                {
                    rec.card = self.cards.get(pm).cloned();
                }
                subscriptions.push((rec, n.stamp.created));
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
        let object = self.snapshots.customers.get(&job.customer_id);
        let mut info = crate::truth::user_of(object.map(|n| &n.snapshot), job.user_hint.as_deref());
        // A deletion alone is no view of the user: with no customer object
        // in the inputs the routing's user stays a hint (it fills a blank,
        // and a customer object of any time still says who the user was).
        if self.snapshots.deletions.contains_key(&job.customer_id) {
            info.deleted = true;
        }
        let customer_evidence = object.map(|n| SnapshotOrder {
            stamp: n.stamp.clone(),
            previous: n.previous.clone(),
        });
        Ok(CustomerWrite {
            customer_id: job.customer_id.clone(),
            info,
            user_key: self.user_key.to_owned(),
            subscriptions: self.snapshots.subscriptions_of(&job.customer_id),
            evidence: self.snapshots.evidence_of(&job.customer_id),
            customer_evidence,
            current: Current::Newest(self.snapshots.born_of(&job.customer_id)),
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
    /// A server's writer (see [`ApiSource::seed`]): the writes fetched before
    /// its batch. When set, this source never calls the API: `fetch` and
    /// `customer` answer from what was fetched, and a customer that was not
    /// fails with a message that says so.
    pub fetched: Option<HashMap<String, CustomerWrite>>,
}

/// What a server fetched from the API for its requests, before handing them
/// to its writer (see `crate::serve`): the customers whose user was looked
/// up, and each customer's write.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    pub customers: HashMap<String, CustomerInfo>,
    pub writes: HashMap<String, CustomerWrite>,
}

impl Fetched {
    /// Add what a later request fetched: for a customer both fetched, the
    /// later fetch wins.
    pub(crate) fn merge(&mut self, later: Fetched) {
        self.customers.extend(later.customers);
        self.writes.extend(later.writes);
    }
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
            fetched: None,
        }
    }

    /// Answer from `fetched` alone, never from the API: a server's writer,
    /// which must not wait on the network (its requests fetched before it).
    pub(crate) fn seed(&mut self, fetched: Fetched) {
        self.prefetched.extend(fetched.customers);
        self.fetched = Some(fetched.writes);
    }

    /// The calls, as futures (see [`Api`]).
    fn api(&self) -> Api<'_> {
        Api {
            client: self.client,
            user_key: &self.user_key,
            now: self.now,
        }
    }

    fn call<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        if !self.interruptible {
            return self.rt.handle().block_on(f);
        }
        match self.rt.block_on(f) {
            Ok(r) => r,
            Err(_) => Err(FetchError::Interrupted),
        }
    }

    /// The customer object (a deleted customer's is marked `deleted`);
    /// `None`: no such customer (404), a verdict rather than a failure.
    pub(crate) fn customer(
        &mut self,
        customer_id: &str,
    ) -> Result<Option<CustomerInfo>, FetchError> {
        if let Some(info) = self.prefetched.get(customer_id) {
            return Ok(Some(info.clone()));
        }
        if self.fetched.is_some() {
            return Err(not_fetched(customer_id, "looked up"));
        }
        let Some(info) = self.call(self.api().customer(customer_id))? else {
            return Ok(None);
        };
        self.prefetched.insert(customer_id.to_owned(), info.clone());
        Ok(Some(info))
    }
}

/// A customer a server's writer needs but its requests did not fetch (the
/// store changed between a request's look at it and the batch): that
/// customer's events fail, and Stripe's retry fetches what it needs.
fn not_fetched(customer_id: &str, what: &str) -> FetchError {
    FetchError::Customer(format!(
        "customer {customer_id} was not {what} before its batch (the store changed \
         meanwhile); nothing was written for it, and a retry will fetch it"
    ))
}

/// The API calls behind [`ApiSource`], as futures: the engines block on
/// them one customer at a time; a server awaits them for many requests at
/// once, each within its request's time bound (see `crate::serve`).
pub(crate) struct Api<'a> {
    pub client: &'a crate::stripe::Client,
    pub user_key: &'a str,
    /// Fetch time: the snapshot time of everything fetched.
    pub now: i64,
}

impl Api<'_> {
    /// The customer as the API says it now (one request).
    async fn state(&self, customer_id: &str) -> Result<CustomerState, FetchError> {
        use crate::stripe::CustomerFetch;
        Ok(match self.client.customer(customer_id).await? {
            CustomerFetch::Found(o) => CustomerState::of_object(
                o.deleted.unwrap_or(false),
                o.metadata.as_ref(),
                o.email.as_deref(),
                self.user_key,
            ),
            CustomerFetch::Deleted => CustomerState::Deleted,
            CustomerFetch::Missing => CustomerState::Missing,
        })
    }

    /// The customer object (a deleted customer's is marked `deleted`);
    /// `None`: no such customer (404).
    pub(crate) async fn customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<CustomerInfo>, FetchError> {
        Ok(self.state(customer_id).await?.info(self.now))
    }

    /// The customer's listed subscription with the customer expanded in
    /// it: one request; a customer without a subscription is read on its
    /// own (a second, unless `prefetched` holds it), so a changed user id or
    /// a deletion is always seen.
    pub(crate) async fn write(
        &self,
        id: &str,
        prefetched: Option<CustomerInfo>,
    ) -> Result<CustomerWrite, FetchError> {
        let latest = match self.client.latest_subscription(id).await {
            Ok(latest) => latest,
            // Stripe may refuse to list a deleted customer's subscriptions.
            Err(e) => {
                let msg = match FetchError::from(e) {
                    FetchError::Customer(msg) => msg,
                    other => return Err(other),
                };
                return match self.state(id).await? {
                    CustomerState::Deleted => self.write_of(id, CustomerState::Deleted, None),
                    _ => Err(FetchError::Customer(msg)),
                };
            }
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
        let inline = latest
            .as_ref()
            .and_then(|o| o.customer.as_ref())
            .and_then(|c| c.object());
        let state = match (inline, prefetched) {
            (Some(c), _) => CustomerState::of_object(
                c.deleted,
                c.metadata.as_ref(),
                c.email.as_deref(),
                self.user_key,
            ),
            (None, Some(info)) if info.deleted => CustomerState::Deleted,
            (None, Some(info)) => CustomerState::Live {
                user: info.user_id,
                email: info.email,
            },
            (None, None) => self.state(id).await?,
        };
        self.write_of(id, state, record)
    }

    /// A write of the customer in `state`, with its listed subscription.
    fn write_of(
        &self,
        id: &str,
        state: CustomerState,
        listed: Option<SubscriptionRecord>,
    ) -> Result<CustomerWrite, FetchError> {
        let Some(info) = state.info(self.now) else {
            return Err(FetchError::Customer(format!(
                "no such customer {id} in this Stripe account (404)"
            )));
        };
        // Rule 3: a deleted customer has no live subscription to show.
        let listed = listed.filter(|_| !info.deleted);
        Ok(CustomerWrite {
            customer_id: id.to_owned(),
            info,
            user_key: self.user_key.to_owned(),
            current: Current::Listed(listed.as_ref().map(|r| r.id.clone()), self.now),
            subscriptions: listed.into_iter().map(|r| (r, self.now)).collect(),
            evidence: Vec::new(),
            customer_evidence: None,
            source: RecordSource::Api,
        })
    }
}

impl Source for ApiSource<'_> {
    fn batch(&self) -> usize {
        // Commit often: an interrupted run keeps what it fetched.
        50
    }

    /// See [`Api::write`]; a server's writer answers from what was fetched.
    fn fetch(&mut self, job: &Job, _known: bool) -> Result<CustomerWrite, FetchError> {
        let id = job.customer_id.as_str();
        if let Some(fetched) = self.fetched.as_mut() {
            return fetched.remove(id).ok_or_else(|| not_fetched(id, "fetched"));
        }
        let prefetched = self.prefetched.remove(id);
        self.call(self.api().write(id, prefetched))
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
