//! What the routing pass needs of one event, taken where the event is
//! parsed: the parsing threads route it and read its facts, so the full
//! object never crosses threads and the routing thread does only what needs
//! the run's state (duplicates, the store, the plans).

use crate::config::Config;
use crate::event::Event;
use crate::routing::{self, Routed};
use crate::sync::source::{Fact, facts};

pub(crate) struct Digest {
    pub id: String,
    pub kind: String,
    pub created: i64,
    /// A thin event (no object snapshot): not routed, no facts.
    pub thin: bool,
    pub customer_id: Option<String>,
    /// What the event itself says (`routing::route`).
    pub routed: Routed,
    /// What its object tells about the account, in order.
    pub facts: Vec<Fact>,
    /// Odd metadata values it carries (`routing::metadata_notes`).
    pub notes: Vec<String>,
}

impl Digest {
    pub(crate) fn of(ev: Event, cfg: &Config) -> Digest {
        let thin = ev.is_thin();
        let obj = &ev.data.object;
        let (routed, facts) = if thin {
            (Routed::Ignored, Vec::new())
        } else {
            (
                routing::route(&ev, cfg),
                facts(
                    &ev.kind,
                    obj,
                    ev.data.previous_attributes.as_ref(),
                    &cfg.user_key,
                    ev.created,
                ),
            )
        };
        let customer_id = obj.customer_id().map(str::to_owned);
        let notes = routing::metadata_notes(&ev, cfg);
        Digest {
            id: ev.id,
            kind: ev.kind,
            created: ev.created,
            thin,
            customer_id,
            routed,
            facts,
            notes,
        }
    }
}
