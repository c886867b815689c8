//! Decision -> (user, customer): what routing could not settle from the
//! event itself is looked up in the store now, and in the replayed inputs
//! (or the API) once every input has been read.

use crate::routing::{Routed, Via};
use crate::store::{Known, Store};
use crate::sync::EventSnapshots;

/// The outcome of resolving one tracked event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// User and customer known.
    Sync {
        user: String,
        customer: String,
        via: Via,
    },
    /// The object names the user but no customer: the user's customers
    /// the store knows (first: the one the decision shows).
    SyncUser {
        user: String,
        customers: Vec<String>,
    },
    /// Must wait for the whole input (customer objects later in the input, or the API).
    Pending { customer: String },
    /// No user can be found; skipped as the app does.
    Unresolved {
        customer: Option<String>,
        reason: String,
    },
}

/// Resolve with what is known while reading: the event itself, then the
/// store (`None`: the store holds no customer, nothing to look up).
pub(crate) fn resolve_now(routed: Routed, store: Option<&Store>) -> anyhow::Result<Resolution> {
    Ok(match routed {
        Routed::Resolved {
            user,
            via,
            customer: Some(customer),
        } => Resolution::Sync {
            user,
            customer,
            via,
        },
        Routed::Resolved {
            user,
            customer: None,
            ..
        } => {
            let mut customers = match store {
                Some(s) => s.customers_of_user(&user)?,
                None => Vec::new(),
            };
            customers.sort();
            match customers.is_empty() {
                false => Resolution::SyncUser { user, customers },
                true => Resolution::Unresolved {
                    customer: None,
                    reason: format!(
                        "user {user} found, but the object names no customer and the store knows no customer of user {user}"
                    ),
                },
            }
        }
        Routed::NeedsCustomer { customer } => match store
            .map(|s| s.customer_user(&customer))
            .transpose()?
            .unwrap_or(Known::Unknown)
        {
            Known::User(user) => Resolution::Sync {
                user,
                customer,
                via: Via::Store,
            },
            // Known to the store, and unmapped there: the inputs may still
            // hold a newer customer object that names the user.
            Known::Unmapped | Known::Unknown => Resolution::Pending { customer },
        },
        Routed::NoCustomer { reason } => Resolution::Unresolved {
            customer: None,
            reason,
        },
        // Callers settle these before resolving; answer sensibly all the same.
        Routed::Ignored => Resolution::Unresolved {
            customer: None,
            reason: "type not tracked".into(),
        },
        Routed::Rejected {
            customer, reason, ..
        } => Resolution::Unresolved { customer, reason },
    })
}

/// Resolve a pending customer once all inputs are read.
pub(crate) fn resolve_later(
    customer: &str,
    inputs: &EventSnapshots,
    store: &Store,
    user_key: &str,
) -> Result<(String, Via), String> {
    match inputs.customer_user(customer) {
        Some(user) => Ok((user.to_owned(), Via::CustomerMetadata)),
        None if inputs.customers.contains_key(customer) => Err(format!(
            "customer {customer} has no `{user_key}` in its metadata (unmapped customer)"
        )),
        None => match store.customer_user(customer) {
            Ok(Known::Unmapped) => Err(format!(
                "customer {customer} has no `{user_key}` in its metadata (unmapped customer, as the store knows it)"
            )),
            _ => Err(format!(
                "no `{user_key}` on the event, and customer {customer} is neither in the store nor among the inputs (try --live)"
            )),
        },
    }
}
