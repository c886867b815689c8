//! Event -> decision: the app's `switch` on the event type and its metadata
//! rules. Pure: no store, no network (resolution through those is in
//! `resolve`).

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::event::{Event, shown as quoted};
use crate::objects::{Expandable, Metadata, Oddity, metadata_oddity, metadata_str};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Sync,
    Ignored,
    Rejected,
    Unresolved,
    Duplicate,
    Invalid,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Sync => "sync",
            Route::Ignored => "ignored",
            Route::Rejected => "rejected",
            Route::Unresolved => "unresolved",
            Route::Duplicate => "duplicate",
            Route::Invalid => "invalid",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    ObjectMetadata,
    SubscriptionMetadata,
    ExpandedCustomer,
    Store,
    CustomerMetadata,
    Api,
    /// The object names the user but no customer: the user's customers
    /// known to the store are synced (the app schedules the user's sync).
    StoreUser,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::ObjectMetadata => "object_metadata",
            Via::SubscriptionMetadata => "subscription_metadata",
            Via::ExpandedCustomer => "expanded_customer",
            Via::Store => "store",
            Via::CustomerMetadata => "customer_metadata",
            Via::Api => "api",
            Via::StoreUser => "store_user",
        }
    }
}

/// What the event itself says, before store, inputs or API are consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Type not tracked.
    Ignored,
    /// The app would throw (checkout without required metadata).
    Rejected {
        user: Option<String>,
        customer: Option<String>,
        reason: String,
    },
    /// Tracked, with the user found in the event itself.
    Resolved {
        user: String,
        via: Via,
        customer: Option<String>,
    },
    /// Tracked; the user must come from the customer (store, inputs, API).
    NeedsCustomer { customer: String },
    /// Tracked, but no user and no customer to look one up by.
    NoCustomer { reason: String },
}

/// Route one event by type and metadata. Each event is routed exactly once:
/// `checkout.session.completed` is one case, not a fall-through into the
/// shared case (the original handler scheduled two syncs for it).
pub fn route(ev: &Event, cfg: &Config) -> Routed {
    if !cfg.sync_events.contains(&ev.kind) {
        return Routed::Ignored;
    }
    let obj = &ev.data.object;
    let key = cfg.user_key.as_str();
    let customer = obj.customer_id().map(str::to_owned);

    if ev.kind == "checkout.session.completed" {
        let user = metadata_str(obj.metadata.as_ref(), key).map(str::to_owned);
        if let Some(reason) = checkout_lacks(obj.metadata.as_ref(), &cfg.checkout_required_metadata)
        {
            return Routed::Rejected {
                user,
                customer,
                reason,
            };
        }
        return match (user, customer) {
            (Some(user), Some(customer)) => Routed::Resolved {
                user,
                via: Via::ObjectMetadata,
                customer: Some(customer),
            },
            // A guest checkout names the user: the app syncs that user.
            (Some(user), None) => Routed::Resolved {
                user,
                via: Via::ObjectMetadata,
                customer: None,
            },
            (None, None) => Routed::NoCustomer {
                reason: "checkout session has no customer to sync".into(),
            },
            // The user key is not among the required keys (custom config).
            (None, Some(customer)) => Routed::NeedsCustomer { customer },
        };
    }

    if let Some(user) = metadata_str(obj.metadata.as_ref(), key) {
        return Routed::Resolved {
            user: user.to_owned(),
            via: Via::ObjectMetadata,
            customer,
        };
    }
    if let Some(user) = metadata_str(obj.invoice_subscription_metadata(), key) {
        return Routed::Resolved {
            user: user.to_owned(),
            via: Via::SubscriptionMetadata,
            customer,
        };
    }
    if let Some(Expandable::Object(c)) = &obj.customer
        && let Some(user) = metadata_str(c.metadata.as_ref(), key)
    {
        return Routed::Resolved {
            user: user.to_owned(),
            via: Via::ExpandedCustomer,
            customer,
        };
    }
    let kind = match obj.kind() {
        "" => "object",
        kind => kind,
    };
    match (customer, metadata_oddity(obj.metadata.as_ref(), key)) {
        (Some(customer), _) => Routed::NeedsCustomer { customer },
        (None, Some(Oddity::NotString(what))) => Routed::NoCustomer {
            reason: format!(
                "`{key}` in the {kind} metadata is {what}, not a string (Stripe metadata \
                 values are strings: fix the fixture), and there is no customer"
            ),
        },
        (None, _) => Routed::NoCustomer {
            reason: format!("no `{key}` in the {kind} metadata and no customer (a guest payment?)"),
        },
    }
}

/// Why a checkout session's metadata fails the app's check, if it does:
/// keys absent (the app throws), blank (the app would sync a blank value;
/// stripe-sync rejects it) or not strings (a hand-written fixture).
fn checkout_lacks(metadata: Option<&Metadata>, required: &[String]) -> Option<String> {
    let (mut absent, mut blank, mut not_strings) = (Vec::new(), Vec::new(), Vec::new());
    for k in required {
        if metadata_str(metadata, k).is_some() {
            continue;
        }
        match metadata_oddity(metadata, k) {
            Some(Oddity::Blank(_)) => blank.push(k.as_str()),
            Some(Oddity::NotString(what)) => not_strings.push(format!("{k} ({what})")),
            _ => absent.push(k.as_str()),
        }
    }
    let mut parts = Vec::new();
    if !absent.is_empty() {
        parts.push(format!(
            "checkout session lacks required metadata: {} (the app throws)",
            absent.join(", ")
        ));
    }
    if !blank.is_empty() {
        parts.push(format!(
            "checkout session's required metadata is blank: {} (the app would sync a blank value; stripe-sync rejects it)",
            blank.join(", ")
        ));
    }
    if !not_strings.is_empty() {
        parts.push(format!(
            "checkout session's required metadata is not a string: {} (Stripe metadata values are strings: fix the fixture)",
            not_strings.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What is odd in the metadata an event's routing and sync read (the user
/// key, and a checkout's required keys): values with whitespace around
/// them (kept as written, as the app keeps them), blank ones, values that
/// are not strings. One line each, naming the event, the object and the
/// key. Pure, like [`route`]; the caller decides how to tell them.
pub fn metadata_notes(ev: &Event, cfg: &Config) -> Vec<String> {
    if ev.is_thin() {
        return Vec::new();
    }
    let obj = &ev.data.object;
    let tracked = cfg.sync_events.contains(&ev.kind);
    let mut keys = vec![cfg.user_key.as_str()];
    if tracked && ev.kind == "checkout.session.completed" {
        for k in &cfg.checkout_required_metadata {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
    }
    // Where the routing and the sync read metadata (see `route`, and the
    // customer snapshots of `sync::source::facts`): (object kind, id, which
    // metadata, the metadata). Named only when something is odd: this runs
    // for every event.
    let mut places: Vec<(&str, Option<&str>, &str, Option<&Metadata>)> = Vec::new();
    if tracked || obj.kind() == "customer" {
        places.push((
            obj.kind(),
            obj.id.as_deref(),
            "metadata",
            obj.metadata.as_ref(),
        ));
    }
    if tracked {
        places.push((
            obj.kind(),
            obj.id.as_deref(),
            "subscription metadata",
            obj.invoice_subscription_metadata(),
        ));
    }
    if let Some(Expandable::Object(c)) = &obj.customer {
        places.push(("customer", Some(&c.id), "metadata", c.metadata.as_ref()));
    }
    let place = |kind: &str, id: Option<&str>, which: &str| match (kind, id) {
        ("", _) => format!("the object's {which}"),
        (kind, Some(id)) => format!("{} {}'s {which}", quoted(kind), quoted(id)),
        (kind, None) => format!("the {}'s {which}", quoted(kind)),
    };
    let mut notes = Vec::new();
    for (kind, id, which, metadata) in places {
        for key in &keys {
            let odd = match metadata_oddity(metadata, key) {
                None => continue,
                Some(Oddity::Padded(v)) => format!(
                    "is \"{}\", with whitespace around it: kept as written, as the app keeps it \
                     (not \"{}\")",
                    quoted(&v),
                    quoted(v.trim())
                ),
                Some(Oddity::Blank(v)) => format!(
                    "is blank (\"{}\"): read as absent (the app would take it as a user id)",
                    quoted(&v)
                ),
                Some(Oddity::NotString(what)) => format!(
                    "is {what}, not a string (Stripe metadata values are strings): read as absent"
                ),
            };
            notes.push(format!(
                "{}: `{key}` in {} {odd}",
                quoted(&ev.id),
                place(kind, id, which)
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    fn ev(kind: &str, object: &str) -> Event {
        parse_event(&format!(
            r#"{{"id":"evt_1","object":"event","type":"{kind}","created":1,"data":{{"object":{object}}}}}"#
        ))
        .unwrap()
    }

    fn r(kind: &str, object: &str) -> Routed {
        route(&ev(kind, object), &Config::default())
    }

    #[test]
    fn untracked_types_are_ignored() {
        assert_eq!(
            r("charge.succeeded", r#"{"customer":"cus_1"}"#),
            Routed::Ignored
        );
        assert_eq!(
            r("invoice.finalized", r#"{"customer":"cus_1"}"#),
            Routed::Ignored
        );
    }

    #[test]
    fn checkout_requires_metadata() {
        let got = r(
            "checkout.session.completed",
            r#"{"customer":"cus_1","metadata":{"clerkUserId":"user_1"}}"#,
        );
        match got {
            Routed::Rejected {
                user,
                customer,
                reason,
            } => {
                assert_eq!(user.as_deref(), Some("user_1"));
                assert_eq!(customer.as_deref(), Some("cus_1"));
                assert!(reason.contains("tier"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let got = r(
            "checkout.session.completed",
            r#"{"customer":"cus_1","metadata":{"clerkUserId":"user_1","tier":"pro"}}"#,
        );
        assert_eq!(
            got,
            Routed::Resolved {
                user: "user_1".into(),
                via: Via::ObjectMetadata,
                customer: Some("cus_1".into())
            }
        );
        let blank = r(
            "checkout.session.completed",
            r#"{"customer":"cus_1","metadata":{"clerkUserId":" ","tier":"pro"}}"#,
        );
        assert!(matches!(blank, Routed::Rejected { .. }));
    }

    #[test]
    fn resolution_order_in_the_event() {
        let sub = r(
            "customer.subscription.updated",
            r#"{"customer":"cus_1","metadata":{"clerkUserId":"u_obj"}}"#,
        );
        assert!(matches!(
            sub,
            Routed::Resolved {
                via: Via::ObjectMetadata,
                ..
            }
        ));
        let basil = r(
            "invoice.paid",
            r#"{"customer":"cus_1","metadata":{},"parent":{"subscription_details":{"metadata":{"clerkUserId":"u_sub"}}}}"#,
        );
        assert_eq!(
            basil,
            Routed::Resolved {
                user: "u_sub".into(),
                via: Via::SubscriptionMetadata,
                customer: Some("cus_1".into())
            }
        );
        let old = r(
            "invoice.payment_failed",
            r#"{"customer":"cus_1","subscription_details":{"metadata":{"clerkUserId":"u_old"}}}"#,
        );
        assert!(matches!(
            old,
            Routed::Resolved {
                via: Via::SubscriptionMetadata,
                ..
            }
        ));
        let expanded = r(
            "payment_intent.succeeded",
            r#"{"customer":{"id":"cus_9","object":"customer","metadata":{"clerkUserId":"u_c"}}}"#,
        );
        assert_eq!(
            expanded,
            Routed::Resolved {
                user: "u_c".into(),
                via: Via::ExpandedCustomer,
                customer: Some("cus_9".into())
            }
        );
        assert_eq!(
            r("invoice.paid", r#"{"customer":"cus_2"}"#),
            Routed::NeedsCustomer {
                customer: "cus_2".into()
            }
        );
        assert!(matches!(
            r("payment_intent.succeeded", r#"{"customer":null}"#),
            Routed::NoCustomer { .. }
        ));
    }

    #[test]
    fn metadata_is_read_exactly_and_odd_values_are_noted() {
        let padded = ev(
            "invoice.paid",
            r#"{"id":"in_1","object":"invoice","customer":"cus_1","metadata":{"clerkUserId":" user_e37 "}}"#,
        );
        assert_eq!(
            route(&padded, &Config::default()),
            Routed::Resolved {
                user: " user_e37 ".into(),
                via: Via::ObjectMetadata,
                customer: Some("cus_1".into())
            }
        );
        assert_eq!(
            metadata_notes(&padded, &Config::default()),
            [
                "evt_1: `clerkUserId` in invoice in_1's metadata is \" user_e37 \", with whitespace \
              around it: kept as written, as the app keeps it (not \"user_e37\")"
            ]
        );
        let number = ev(
            "payment_intent.succeeded",
            r#"{"id":"pi_1","object":"payment_intent","customer":null,"metadata":{"clerkUserId":42}}"#,
        );
        match route(&number, &Config::default()) {
            Routed::NoCustomer { reason } => {
                assert!(
                    reason.starts_with(
                        "`clerkUserId` in the payment_intent metadata is a number, not a string"
                    ),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        let notes = metadata_notes(&number, &Config::default());
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("is a number, not a string"), "{notes:?}");
        let checkout = ev(
            "checkout.session.completed",
            r#"{"id":"cs_1","customer":"cus_1","metadata":{"clerkUserId":7,"tier":"\u001b[31m "}}"#,
        );
        match route(&checkout, &Config::default()) {
            Routed::Rejected { reason, .. } => {
                assert!(
                    reason.contains("not a string: clerkUserId (a number)"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        let notes = metadata_notes(&checkout, &Config::default());
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[1].contains("`tier`") && notes[1].contains("\\u{1b}[31m"),
            "{notes:?}"
        );
        assert!(!notes.concat().contains('\u{1b}'));
        // Untracked types are not read: nothing to say.
        let untracked = ev(
            "charge.succeeded",
            r#"{"customer":"cus_1","metadata":{"clerkUserId":" u "}}"#,
        );
        assert!(metadata_notes(&untracked, &Config::default()).is_empty());
    }

    #[test]
    fn custom_config() {
        let cfg =
            Config::parse("sync_events = [\"charge.succeeded\"]\nuser_key = \"uid\"").unwrap();
        let e = ev(
            "charge.succeeded",
            r#"{"customer":"cus_1","metadata":{"uid":"u"}}"#,
        );
        assert!(matches!(route(&e, &cfg), Routed::Resolved { .. }));
        let e = ev(
            "invoice.paid",
            r#"{"customer":"cus_1","metadata":{"uid":"u"}}"#,
        );
        assert_eq!(route(&e, &cfg), Routed::Ignored);
    }
}
