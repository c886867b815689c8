//! What replay says about each event, and in total (SPEC.md field names).

use serde::{Deserialize, Serialize};

use crate::forward;
use crate::routing::{Route, Via};

/// One event's decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Decision {
    pub event_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub created: Option<i64>,
    pub route: Route,
    pub user_id: Option<String>,
    pub customer_id: Option<String>,
    pub resolved_via: Option<Via>,
    pub reason: Option<String>,
    pub source: String,
    /// With --forward-to: what the endpoint answered.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub forward: Option<forward::Delivery>,
    /// `serve`: the customer's state depends on an order no evidence
    /// decides (see `crate::truth`); `replay` lists these at the top level.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub ambiguous: bool,
}

impl Decision {
    /// An element that is not an event. The reason names the file and the
    /// element's position in it (`file:LINE`, `file[INDEX]`, `file`), so it
    /// stands alone where the SOURCE column is not shown.
    pub(crate) fn invalid(source: &crate::event::Source, why: String) -> Decision {
        let source = source.to_string();
        let reason = format!("{source}: {why}");
        Decision {
            event_id: None,
            kind: None,
            created: None,
            route: Route::Invalid,
            user_id: None,
            customer_id: None,
            resolved_via: None,
            reason: Some(reason),
            source,
            forward: None,
            ambiguous: false,
        }
    }

    /// Settle a decision that waited for the whole input.
    pub(crate) fn settle(&mut self, outcome: &super::Settled) {
        match outcome {
            Ok((user, via)) => {
                self.route = Route::Sync;
                self.user_id = Some(user.clone());
                self.resolved_via = Some(*via);
                self.reason = None;
            }
            Err(reason) => self.reason = Some(reason.clone()),
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct Summary {
    pub events: u64,
    pub sync: u64,
    pub ignored: u64,
    pub rejected: u64,
    pub unresolved: u64,
    pub duplicate: u64,
    pub invalid: u64,
    /// Customers synced; with `dry_run`, customers a real run would sync.
    pub customers_synced: u64,
    /// Of those, customers whose stored mapping changed (or would).
    pub customers_changed: u64,
    pub sync_failures: u64,
    pub api_requests: u64,
    /// With --forward-to: deliveries answered 2xx, and the others.
    pub forwarded: u64,
    pub forward_failures: u64,
    /// Nothing was written and no sync was attempted.
    pub dry_run: bool,
}

impl Summary {
    pub(crate) fn count(&mut self, route: Route) {
        self.events += 1;
        match route {
            Route::Sync => self.sync += 1,
            Route::Ignored => self.ignored += 1,
            Route::Rejected => self.rejected += 1,
            Route::Unresolved => self.unresolved += 1,
            Route::Duplicate => self.duplicate += 1,
            Route::Invalid => self.invalid += 1,
        }
    }
}

/// An input problem that is not one event's (unreadable file, broken JSON).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InputError {
    pub source: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SyncFailure {
    pub customer_id: String,
    pub error: String,
}
