//! The store's event log, written last: an event is marked processed only
//! once its customer is committed, so a crash means rework, never a lost event.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;

use super::decision::Decision;
use crate::routing::Route;
use crate::store::{EventLogger, LoggedEvent};

/// The fields of a spooled decision the event log needs, borrowed from the
/// line: cheaper than a whole `Decision` when the line is printed as is.
#[derive(Deserialize)]
pub(crate) struct LogView<'a> {
    #[serde(borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    created: Option<i64>,
    route: Route,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    customer_id: Option<Cow<'a, str>>,
}

impl<'a> From<&'a Decision> for LogView<'a> {
    fn from(d: &'a Decision) -> LogView<'a> {
        LogView {
            event_id: d.event_id.as_deref().map(Cow::Borrowed),
            kind: d.kind.as_deref().map(Cow::Borrowed),
            created: d.created,
            route: d.route,
            user_id: d.user_id.as_deref().map(Cow::Borrowed),
            customer_id: d.customer_id.as_deref().map(Cow::Borrowed),
        }
    }
}

/// Which decisions the store's event log keeps, written as they stream
/// out, in one transaction (see [`crate::store::Store::logging`]).
pub(crate) struct EventLog<'a, 'l> {
    pub logger: &'a mut EventLogger<'l>,
    /// Customers whose sync failed: their events come again next time.
    pub failed: &'a HashSet<String>,
}

impl EventLog<'_, '_> {
    pub(crate) fn record(&mut self, d: &LogView<'_>) -> anyhow::Result<()> {
        let route = match d.route {
            Route::Sync => "sync",
            Route::Ignored => "ignored",
            // Rejected and unresolved events may succeed on a later run; the
            // rest are not events, or were logged already.
            _ => return Ok(()),
        };
        if d.route == Route::Sync
            && d.customer_id
                .as_deref()
                .is_some_and(|c| self.failed.contains(c))
        {
            return Ok(());
        }
        let (Some(id), Some(kind), Some(created)) = (&d.event_id, &d.kind, d.created) else {
            return Ok(());
        };
        self.logger.log(&LoggedEvent {
            id,
            kind,
            created,
            route,
            user_id: d.user_id.as_deref(),
            customer_id: d.customer_id.as_deref(),
        })
    }
}
