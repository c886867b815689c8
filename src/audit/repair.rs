//! `audit --repair-via`: one signed event per drifted user, sent to the
//! app's own webhook, so the app's own sync runs for that user.
//!
//! The pattern's webhook is a trigger: it routes the event to a user (the
//! user id in the object's metadata) and then re-fetches that user's
//! subscription from Stripe. So the event carries what the store knows of
//! the user's subscription, with the user id under the configured key, and
//! the app fixes itself from the API. An app that writes the event's
//! snapshot instead of re-fetching gets the store's snapshot, which is
//! only as fresh as the store (`--live` first makes it current).

use serde::Serialize;
use serde_json::{Value, json};

use super::Report;
use crate::forward::{Delivery, Forwarder};
use crate::objects::SubscriptionRecord;
use crate::store::Store;

/// What is sent for one drifted user, or why nothing can be.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Repair {
    pub user_id: String,
    pub customer_id: Option<String>,
    #[serde(flatten)]
    pub plan: Plan,
    /// The endpoint's answer (absent in a dry run or when not repairable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Plan {
    Send {
        event_id: String,
        #[serde(rename = "type")]
        kind: &'static str,
        subscription_id: String,
        #[serde(skip)]
        body: String,
    },
    NotRepairable {
        repairable: bool,
        reason: String,
    },
}

/// The event types a repair sends: the subscription as it stands, or its end.
pub(crate) const UPDATED: &str = "customer.subscription.updated";
pub(crate) const DELETED: &str = "customer.subscription.deleted";

/// What a repair would send each drifted user of `report`, most serious first.
pub(crate) fn plan(
    store: &Store,
    report: &Report,
    user_key: &str,
    api_version: &str,
    now: i64,
) -> anyhow::Result<Vec<Repair>> {
    let mut out = Vec::new();
    for (user, customer) in report.drifted() {
        let plan = match customer {
            None => not_repairable(format!(
                "Stripe has no customer for user {user}: there is nothing to send; fix the app's record by hand"
            )),
            Some(c) => match store.last_subscription(c)? {
                None => not_repairable(format!(
                    "Stripe has no subscription for customer {c}: there is no subscription event to send; fix the app's record by hand"
                )),
                Some((sub, deleted)) => send_plan(&sub, deleted, user, user_key, api_version, now),
            },
        };
        out.push(Repair {
            user_id: user.to_owned(),
            customer_id: customer.map(str::to_owned),
            plan,
            delivery: None,
        });
    }
    Ok(out)
}

fn not_repairable(reason: String) -> Plan {
    Plan::NotRepairable {
        repairable: false,
        reason,
    }
}

/// A fresh event id: `evt_` and 24 characters, as Stripe's, never one the
/// app has seen (apps deduplicate by event id).
fn event_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let tail: String = (0..24)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect();
    format!("evt_{tail}")
}

/// The event for one user: `customer.subscription.updated` with the
/// subscription as the store holds it, or `.deleted` when it has ended
/// (or its customer was deleted, which cancels it).
fn send_plan(
    sub: &SubscriptionRecord,
    customer_deleted: bool,
    user: &str,
    user_key: &str,
    api_version: &str,
    now: i64,
) -> Plan {
    let ended =
        customer_deleted || matches!(sub.status.as_str(), "canceled" | "incomplete_expired");
    let kind = if ended { DELETED } else { UPDATED };
    let status = if customer_deleted {
        "canceled"
    } else {
        sub.status.as_str()
    };
    let event_id = event_id();
    let mut metadata = serde_json::Map::new();
    metadata.insert(user_key.to_owned(), Value::from(user));
    // The basil shape: the period lives on the subscription's items.
    let object = json!({
        "id": sub.id,
        "object": "subscription",
        "cancel_at_period_end": sub.cancel_at_period_end,
        "created": sub.created,
        "customer": sub.customer_id,
        "default_payment_method": sub.payment_method_id,
        "items": {
            "object": "list",
            "data": [{
                "object": "subscription_item",
                "current_period_start": sub.current_period_start,
                "current_period_end": sub.current_period_end,
                "price": {"id": sub.price_id, "object": "price"},
                "subscription": sub.id,
            }],
            "has_more": false,
            "url": format!("/v1/subscription_items?subscription={}", sub.id),
        },
        "livemode": false,
        "metadata": metadata,
        "status": status,
    });
    let event = json!({
        "id": event_id,
        "object": "event",
        "api_version": api_version,
        "created": now,
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind,
    });
    Plan::Send {
        event_id,
        kind,
        subscription_id: sub.id.clone(),
        body: serde_json::to_string_pretty(&event).unwrap_or_default(),
    }
}

/// Send every repair that has an event, in order; each gets its answer.
pub(crate) fn send(repairs: &mut [Repair], mut forwarder: Forwarder) {
    for (i, r) in repairs.iter().enumerate() {
        if let Plan::Send { body, .. } = &r.plan {
            forwarder.send(i as u64, body.clone());
        }
    }
    let mut answers = forwarder.finish();
    for (i, r) in repairs.iter_mut().enumerate() {
        r.delivery = answers.remove(&(i as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(status: &str) -> SubscriptionRecord {
        SubscriptionRecord {
            id: "sub_1".into(),
            customer_id: "cus_1".into(),
            status: status.into(),
            price_id: Some("price_1".into()),
            current_period_start: Some(100),
            current_period_end: Some(200),
            cancel_at_period_end: true,
            payment_method_id: Some("pm_1".into()),
            card: None,
            created: 50,
        }
    }

    fn body(p: &Plan) -> Value {
        match p {
            Plan::Send { body, .. } => serde_json::from_str(body).unwrap(),
            Plan::NotRepairable { .. } => panic!("not repairable"),
        }
    }

    #[test]
    fn a_live_subscription_is_sent_as_updated_routed_to_the_user() {
        let p = send_plan(
            &sub("past_due"),
            false,
            "user_1",
            "clerkUserId",
            "2025-06-30.basil",
            999,
        );
        let e = body(&p);
        assert_eq!(e["type"], UPDATED);
        assert_eq!(e["object"], "event");
        assert_eq!(e["created"], 999);
        assert_eq!(e["api_version"], "2025-06-30.basil");
        let o = &e["data"]["object"];
        assert_eq!(o["metadata"]["clerkUserId"], "user_1");
        assert_eq!(o["customer"], "cus_1");
        assert_eq!(o["status"], "past_due");
        assert_eq!(o["items"]["data"][0]["price"]["id"], "price_1");
        assert_eq!(o["items"]["data"][0]["current_period_end"], 200);
        let id = e["id"].as_str().unwrap();
        assert!(id.starts_with("evt_") && id.len() == 28, "{id}");
        // The event parses as the tool's own events do.
        let parsed: crate::event::Event = serde_json::from_value(e.clone()).unwrap();
        assert_eq!(parsed.kind, UPDATED);
    }

    #[test]
    fn an_ended_subscription_or_a_deleted_customer_is_sent_as_deleted() {
        let e = body(&send_plan(&sub("canceled"), false, "u", "uid", "v", 1));
        assert_eq!(e["type"], DELETED);
        assert_eq!(e["data"]["object"]["metadata"]["uid"], "u");
        let e = body(&send_plan(&sub("active"), true, "u", "uid", "v", 1));
        assert_eq!(e["type"], DELETED);
        assert_eq!(e["data"]["object"]["status"], "canceled");
    }

    #[test]
    fn every_event_id_is_fresh() {
        let a = send_plan(&sub("active"), false, "u", "k", "v", 1);
        let b = send_plan(&sub("active"), false, "u", "k", "v", 1);
        let id = |p: &Plan| match p {
            Plan::Send { event_id, .. } => event_id.clone(),
            Plan::NotRepairable { .. } => unreachable!(),
        };
        assert_ne!(id(&a), id(&b));
    }
}
