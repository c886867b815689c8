//! Event -> decision: the app's `switch` on the event type and its metadata
//! rules. Pure: no store, no network (resolution through those is in
//! `resolve`).

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::event::Event;
use crate::objects::{Expandable, metadata_str};

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
        let missing: Vec<&str> = cfg
            .checkout_required_metadata
            .iter()
            .map(String::as_str)
            .filter(|k| metadata_str(obj.metadata.as_ref(), k).is_none())
            .collect();
        let user = metadata_str(obj.metadata.as_ref(), key).map(str::to_owned);
        if !missing.is_empty() {
            // A blank value is present to the app (JavaScript's `" "` is
            // truthy): it would not throw, it would sync a blank.
            let (blank, absent): (Vec<&str>, Vec<&str>) = missing.iter().partition(|k| {
                obj.metadata
                    .as_ref()
                    .and_then(|m| m.get(**k))
                    .and_then(|v| v.as_str())
                    .is_some_and(|v| !v.is_empty())
            });
            let reason = match (absent.is_empty(), blank.is_empty()) {
                (false, true) => format!(
                    "checkout session lacks required metadata: {} (the app throws)",
                    absent.join(", ")
                ),
                (true, false) => format!(
                    "checkout session's required metadata is blank: {} (the app would sync a blank value; stripe-sync rejects it)",
                    blank.join(", ")
                ),
                _ => format!(
                    "checkout session lacks required metadata: {} (the app throws), and {} is blank",
                    absent.join(", "),
                    blank.join(", ")
                ),
            };
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
    match customer {
        Some(customer) => Routed::NeedsCustomer { customer },
        None => Routed::NoCustomer {
            reason: format!(
                "no `{key}` in the {} metadata and no customer (a guest payment?)",
                if obj.kind().is_empty() {
                    "object"
                } else {
                    obj.kind()
                }
            ),
        },
    }
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
