//! A request's API part, with `--live`. What the writer's batch will ask the
//! Stripe API for a request's event is fetched in the request, before the
//! event is queued: requests fetch at the same time (the client paces them
//! all, its clones sharing one pacer), each within its request's time bound,
//! and the writer answers from what was fetched without waiting on the
//! network. A slow API call holds up its own request, never the writer, so
//! an unrelated event is answered at once; a fetch that fails or runs out
//! of time is answered 500 without reaching the writer (nothing to commit:
//! Stripe retries).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::config::Config;
use crate::event::Event;
use crate::resolve::{self, Resolution};
use crate::routing::{self, Routed};
use crate::store::Store;
use crate::sync::FetchError;
use crate::sync::source::{Api, Fact, Fetched, facts};

/// `--live`: what a request needs to fetch before its event is queued.
pub(crate) struct Live {
    client: crate::stripe::Client,
    cfg: Config,
    /// A read-only connection to the store: what the engine will ask the
    /// API for depends on what the store knows (the event already logged,
    /// a customer's user, a user's customers). `None` once the server stops.
    reader: Arc<Mutex<Option<Store>>>,
    turns: Turns,
}

impl Live {
    pub(crate) fn new(client: crate::stripe::Client, cfg: Config, reader: Store) -> Live {
        Live {
            client,
            cfg,
            reader: Arc::new(Mutex::new(Some(reader))),
            turns: Turns::default(),
        }
    }

    /// Close the reader. Called before the writer closes the store: the
    /// last connection to close folds the WAL in and removes its files, and
    /// that is the writer's to do (or, for a lost store, to leave undone).
    pub(crate) fn close(&self) {
        drop(self.reader.lock().unwrap_or_else(|p| p.into_inner()).take());
    }

    /// Fetch, by `deadline`, everything the writer will ask the API for
    /// `event` (see [`needs`]), with this request's turns for its customers
    /// (see [`Turns`]): keep them until the event is queued.
    pub(crate) async fn fetch(
        &self,
        event: &Event,
        deadline: Instant,
        bound: std::time::Duration,
    ) -> Result<(Fetched, Held<'_>), NotFetched> {
        let needs = self.needs(event, deadline, bound).await?;
        let customers: Vec<String> = needs.lookups.iter().chain(&needs.syncs).cloned().collect();
        let turns = tokio::time::timeout_at(deadline, self.turns.take(&customers))
            .await
            .map_err(|_| late(customers.first().map_or("", String::as_str), bound))?;
        let api = Api {
            client: &self.client,
            user_key: &self.cfg.user_key,
            now: crate::commands::unix_now(),
        };
        let mut fetched = Fetched::default();
        for c in &needs.lookups {
            let info = tokio::time::timeout_at(deadline, api.customer(c))
                .await
                .map_err(|_| late(c, bound))?
                .map_err(|e| failed(c, "looked up", e))?;
            // A customer the API does not know is the sync's failure below.
            if let Some(info) = info {
                fetched.customers.insert(c.clone(), info);
            }
        }
        for c in &needs.syncs {
            let known = fetched.customers.get(c).cloned();
            let write = tokio::time::timeout_at(deadline, api.write(c, known))
                .await
                .map_err(|_| late(c, bound))?
                .map_err(|e| failed(c, "synced", e))?;
            fetched.writes.insert(c.clone(), write);
        }
        Ok((fetched, turns))
    }

    /// What the engine will ask the API for `event`, with the store as it
    /// is now (read off the connection threads, within the deadline).
    async fn needs(
        &self,
        event: &Event,
        deadline: Instant,
        bound: std::time::Duration,
    ) -> Result<Needs, NotFetched> {
        // As the engine's routing pass sees the event (`replay::Digest`).
        let (routed, facts) = if event.is_thin() {
            (Routed::Ignored, Vec::new())
        } else {
            let o = &event.data.object;
            let previous = event.data.previous_attributes.as_ref();
            (
                routing::route(event, &self.cfg),
                facts(&event.kind, o, previous, &self.cfg.user_key, event.created),
            )
        };
        let reader = Arc::clone(&self.reader);
        let id = event.id.clone();
        let read = tokio::task::spawn_blocking(move || {
            let store = reader.lock().unwrap_or_else(|p| p.into_inner());
            match store.as_ref() {
                Some(store) => needs(&id, routed, &facts, store)
                    .map_err(|e| NotFetched::Failed(format!("{e:#}"))),
                None => Err(NotFetched::Stopping),
            }
        });
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(needs)) => needs,
            Ok(Err(e)) => Err(NotFetched::Failed(format!(
                "the store could not be read: {e}"
            ))),
            Err(_) => Err(NotFetched::Failed(format!(
                "the store could not be read within {} (the request's bound); \
                 the event was not processed, and a retry will be",
                crate::output::fmt::elapsed(bound)
            ))),
        }
    }
}

/// Why a request's event was not queued.
#[derive(Debug)]
pub(crate) enum NotFetched {
    /// The server stopped meanwhile: the request gets no answer.
    Stopping,
    /// The request answers 500 with this.
    Failed(String),
}

impl From<String> for NotFetched {
    fn from(why: String) -> NotFetched {
        NotFetched::Failed(why)
    }
}

/// What the engine will ask the API for one event.
#[derive(Debug, Default, PartialEq, Eq)]
struct Needs {
    /// Customers whose user is looked up (`ApiSource::customer`).
    lookups: Vec<String>,
    /// Customers synced (`ApiSource::fetch`).
    syncs: Vec<String>,
}

/// What `replay::run` will ask the API for one event, decided as it decides
/// it, with `store` as it is now: nothing for an event already logged (a
/// duplicate); the customer routing and the store resolve it to (a user's
/// customers, when the object names only the user); a customer's user when
/// neither the event nor the store has it (unless the event holds the
/// customer object); and every customer the event's object describes.
/// Should the store change before the batch, the writer lacks what it needs
/// for a customer and fails that customer's events: Stripe's retry fetches it.
fn needs(id: &str, routed: Routed, facts: &[Fact], store: &Store) -> anyhow::Result<Needs> {
    let mut n = Needs::default();
    if store.event_seen(id)? {
        return Ok(n);
    }
    let described: Vec<&str> = facts
        .iter()
        .filter_map(|f| match f {
            Fact::Customer(id, ..) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    match routed {
        Routed::Ignored | Routed::Rejected { .. } | Routed::NoCustomer { .. } => {}
        routed => match resolve::resolve_now(routed, Some(store))? {
            Resolution::Sync { customer, .. } => n.syncs.push(customer),
            Resolution::SyncUser { customers, .. } => n.syncs.extend(customers),
            Resolution::Pending { customer } => {
                if !described.contains(&customer.as_str()) {
                    n.lookups.push(customer.clone());
                }
                n.syncs.push(customer);
            }
            Resolution::Unresolved { .. } => {}
        },
    }
    for f in facts {
        match f {
            Fact::Customer(id, ..) => n.syncs.push(id.clone()),
            Fact::Subscription(rec, _) => n.syncs.push(rec.customer_id.clone()),
            Fact::Card(..) => {}
        }
    }
    n.syncs.sort();
    n.syncs.dedup();
    Ok(n)
}

/// A fetch that ran out of the request's time.
fn late(customer: &str, bound: std::time::Duration) -> String {
    format!(
        "the Stripe API did not answer for customer {customer} within {} (the request's bound); \
         the event was not processed, and a retry will be",
        crate::output::fmt::elapsed(bound)
    )
}

/// A fetch the API refused or failed, as the writer would have said it.
fn failed(customer: &str, what: &str, e: FetchError) -> String {
    let why = match e {
        FetchError::Fatal(e) => e.to_string(),
        FetchError::Customer(msg) => msg,
        FetchError::Interrupted => "interrupted".into(),
    };
    format!("customer {customer} could not be {what}: {why}")
}

/// One request at a time fetches a customer, in the order they ask, and
/// keeps its turn until its event is queued: the writer then meets a
/// customer's fetches in the order they were made, so an earlier, slower
/// fetch never lands after a later one. (The store keeps the newest
/// snapshot by fetch time only to the second.)
#[derive(Default)]
struct Turns(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// The turns of one request; given back when dropped.
pub(crate) struct Held<'a> {
    turns: &'a Turns,
    customers: Vec<String>,
    guards: Vec<tokio::sync::OwnedMutexGuard<()>>,
}

impl Turns {
    /// Wait for the turn of each customer, in id order (two requests that
    /// need the same two customers never wait for each other's).
    async fn take(&self, customers: &[String]) -> Held<'_> {
        let mut customers = customers.to_vec();
        customers.sort();
        customers.dedup();
        let mut held = Held {
            turns: self,
            customers: Vec::with_capacity(customers.len()),
            guards: Vec::with_capacity(customers.len()),
        };
        for c in customers {
            let turn = {
                let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
                Arc::clone(map.entry(c.clone()).or_default())
            };
            held.customers.push(c);
            held.guards.push(turn.lock_owned().await);
        }
        held
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.guards.clear();
        let mut map = self.turns.0.lock().unwrap_or_else(|p| p.into_inner());
        for c in &self.customers {
            // Nobody else holds or waits for it: forget it.
            if map.get(c).is_some_and(|t| Arc::strong_count(t) == 1) {
                map.remove(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs_of(json: &str, store: &Store) -> Needs {
        let ev = crate::event::parse_event(json).unwrap();
        let cfg = Config::default();
        let f = facts(
            &ev.kind,
            &ev.data.object,
            ev.data.previous_attributes.as_ref(),
            &cfg.user_key,
            ev.created,
        );
        needs(&ev.id, routing::route(&ev, &cfg), &f, store).unwrap()
    }

    fn ev(id: &str, kind: &str, object: &str) -> String {
        format!(
            r#"{{"id":"{id}","object":"event","type":"{kind}","created":1,"data":{{"object":{object}}}}}"#
        )
    }

    #[test]
    fn what_each_event_needs_from_the_api() {
        let store = Store::in_memory().unwrap();
        let n = |kind: &str, object: &str| needs_of(&ev("evt_1", kind, object), &store);
        let v = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // Untracked, naming no customer object: nothing.
        assert_eq!(
            n("product.created", r#"{"id":"prod_1","object":"product"}"#),
            Needs::default()
        );
        // The user on the event: the customer's write only.
        assert_eq!(
            n(
                "invoice.paid",
                r#"{"object":"invoice","customer":"cus_1","metadata":{"clerkUserId":"u1"}}"#
            ),
            Needs {
                lookups: vec![],
                syncs: v(&["cus_1"])
            }
        );
        // The user only on the customer: looked up, then synced.
        assert_eq!(
            n("invoice.paid", r#"{"object":"invoice","customer":"cus_1"}"#),
            Needs {
                lookups: v(&["cus_1"]),
                syncs: v(&["cus_1"])
            }
        );
        // An untracked event holding a customer object: that customer is synced.
        assert_eq!(
            n(
                "customer.created",
                r#"{"id":"cus_2","object":"customer","metadata":{}}"#
            ),
            Needs {
                lookups: vec![],
                syncs: v(&["cus_2"])
            }
        );
    }

    #[test]
    fn the_store_decides_duplicates_known_users_and_a_users_customers() {
        let mut store = Store::in_memory().unwrap();
        store
            .log_events(&[crate::store::LoggedEvent {
                id: "evt_done",
                kind: "invoice.paid",
                created: 1,
                route: "sync",
                user_id: Some("u1"),
                customer_id: Some("cus_1"),
            }])
            .unwrap();
        let object = r#"{"object":"invoice","customer":"cus_1"}"#;
        assert_eq!(
            needs_of(&ev("evt_done", "invoice.paid", object), &store),
            Needs::default(),
            "a duplicate asks nothing"
        );
        let write = crate::store::CustomerWrite {
            customer_id: "cus_1".into(),
            info: crate::store::CustomerInfo {
                user_id: Some("u1".into()),
                email: None,
                deleted: false,
                snapshot_at: Some(1),
            },
            user_key: "clerkUserId".into(),
            subscriptions: Vec::new(),
            evidence: Vec::new(),
            customer_evidence: None,
            current: crate::store::Current::Listed(None, 1),
            source: crate::store::RecordSource::Api,
        };
        store.apply(&[write]).unwrap();
        assert_eq!(
            needs_of(&ev("evt_2", "invoice.paid", object), &store),
            Needs {
                lookups: vec![],
                syncs: vec!["cus_1".into()]
            },
            "the store knows the user"
        );
        let guest = r#"{"object":"payment_intent","metadata":{"clerkUserId":"u1"}}"#;
        assert_eq!(
            needs_of(&ev("evt_3", "payment_intent.succeeded", guest), &store),
            Needs {
                lookups: vec![],
                syncs: vec!["cus_1".into()]
            },
            "the user's customers, from the store"
        );
    }

    #[tokio::test]
    async fn turns_are_taken_in_order_and_forgotten_when_given_back() {
        let turns = Arc::new(Turns::default());
        let a = vec!["cus_a".to_owned()];
        let first = turns.take(&a).await;
        let t2 = Arc::clone(&turns);
        let a2 = a.clone();
        let second = tokio::spawn(async move {
            let _held = t2.take(&a2).await;
        });
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "waits for the first");
        drop(first);
        second.await.unwrap();
        assert!(turns.0.lock().unwrap().is_empty());
    }
}
