//! `resync --events`: catch up from Stripe's event log, no webhook needed.
//! List `GET /v1/events` since the checkpoint (newest first, paged back to
//! it), route the events oldest first exactly as `replay` does, resync each
//! affected customer once from the API (as `resync --customer`), log the
//! events, and only then move the checkpoint.

use crate::config::Config;
use crate::event::Event;
use crate::replay::{self, Feed, Plan, Progress, Summary};
use crate::runtime::Runtime;
use crate::store::WriteOutcome;
use crate::store::checkpoint::Events as Checkpoint;
use crate::stripe::Client;

use super::{Mode, SyncError, Syncer};

/// Stripe keeps events for 30 days.
pub(crate) const RETENTION_SECS: i64 = 30 * 24 * 3600;

/// Stripe filters at most this many types server-side.
const MAX_TYPES: usize = 20;

/// The customer events that carry the user id in the customer's metadata.
const CUSTOMER_EVENTS: [&str; 2] = ["customer.created", "customer.updated"];

/// One catch-up pass.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    pub listed: u64,
    pub summary: Summary,
    /// Customers synced, with what changed.
    pub customers: Vec<(String, WriteOutcome)>,
    pub failures: Vec<(String, String)>,
    /// The checkpoint after the pass (unchanged when nothing was processed).
    pub checkpoint: Option<Checkpoint>,
    /// The start lies beyond Stripe's retention: events may be missing
    /// between these two times.
    pub gap: Option<(i64, i64)>,
}

pub(crate) struct CatchUp<'a> {
    pub rt: &'a Runtime,
    pub client: &'a Client,
    pub cfg: &'a Config,
    /// Start here instead of the checkpoint.
    pub since: Option<i64>,
    pub now: i64,
}

/// Why a catch-up cannot start.
#[derive(Debug, thiserror::Error)]
#[error(
    "no events checkpoint in the store: run `stripe-sync resync --all` first (it sets one), or pass --since (e.g. --since 7d)"
)]
pub(crate) struct NoCheckpoint;

impl CatchUp<'_> {
    /// The types asked of the API, or none (all) when they do not fit
    /// Stripe's limit; then [`CatchUp::wanted`] filters client-side.
    fn server_types(&self) -> Vec<String> {
        let mut types = self.cfg.sync_events.clone();
        for t in CUSTOMER_EVENTS {
            if !types.iter().any(|x| x == t) {
                types.push(t.to_owned());
            }
        }
        match types.len() <= MAX_TYPES {
            true => types,
            false => Vec::new(),
        }
    }

    fn wanted(&self, kind: &str) -> bool {
        self.cfg.sync_events.iter().any(|t| t == kind) || CUSTOMER_EVENTS.contains(&kind)
    }

    pub(crate) fn run(&self, syncer: &mut Syncer) -> Result<Pass, SyncError> {
        let start = match (self.since, syncer.store().events_checkpoint()?) {
            (Some(since), _) => since,
            (None, Some(c)) => c.created,
            (None, None) => return Err(SyncError::Store(NoCheckpoint.into())),
        };
        let oldest_kept = self.now - RETENTION_SECS;
        let gap = (start < oldest_kept).then_some((start, oldest_kept));

        // Newest first, paged back to the start; then oldest first.
        let types = self.server_types();
        let mut listed: Vec<Event> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .rt
                .block_on(self.client.list_events(start, &types, after.as_deref()))?
                .map_err(SyncError::Api)?;
            let last = page.data.last().map(|e| e.id.clone());
            let more = page.has_more;
            listed.extend(page.data);
            match (more, last) {
                (true, Some(l)) => after = Some(l),
                _ => break,
            }
        }
        listed.reverse();
        let count = listed.len() as u64;
        let events: Vec<(crate::event::Source, Event)> = listed
            .into_iter()
            .filter(|e| self.wanted(&e.kind))
            .map(|e| {
                let source = crate::event::Source {
                    file: std::sync::Arc::from(format!("GET /v1/events {}", e.id)),
                    pos: crate::event::Pos::Whole,
                };
                (source, e)
            })
            .collect();
        let newest = events.last().map(|(_, e)| (e.created, e.id.clone()));
        let created_of: std::collections::HashMap<String, i64> = events
            .iter()
            .filter_map(|(_, e)| {
                e.data
                    .object
                    .customer_id()
                    .map(|c| (c.to_owned(), e.created))
            })
            .collect();

        let plan = Plan {
            cfg: self.cfg,
            feed: Feed::Events(events),
            input_errors: Vec::new(),
            live: Some(self.client),
            forwarder: None,
            trace: true,
            interruptible: true,
            dry_run_fetches: true,
        };
        let progress = Progress {
            events: indicatif::ProgressBar::hidden(),
            customers: indicatif::ProgressBar::hidden(),
        };
        let mut finished = replay::run(plan, syncer, self.rt, &progress)?;
        finished.stream(syncer, |_| Ok(()))?;

        // The checkpoint moves to the newest event processed, but never past
        // a customer that failed: its events come again next time.
        let failed_from = finished
            .failures
            .iter()
            .filter_map(|f| created_of.get(&f.customer_id))
            .min()
            .copied();
        let checkpoint = match (newest, failed_from) {
            (_, Some(created)) => Some(Checkpoint { created, id: None }),
            (Some((created, id)), None) => Some(Checkpoint {
                created,
                id: Some(id),
            }),
            (None, None) => None,
        };
        if let Some(c) = &checkpoint
            && syncer.mode() == Mode::Write
        {
            syncer.store_mut().advance_events_checkpoint(c)?;
        }
        Ok(Pass {
            listed: count,
            failures: finished
                .failures
                .iter()
                .map(|f| (f.customer_id.clone(), f.error.clone()))
                .collect(),
            customers: std::mem::take(&mut finished.customers),
            summary: finished.summary.clone(),
            checkpoint,
            gap,
        })
    }
}

/// `--since`: a unix time, an RFC 3339 time, or a duration back from now
/// (`90m`, `36h`, `7d`, `45s`, `2w`).
pub(crate) fn parse_since(text: &str, now: i64) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(unix) = t.parse::<i64>() {
        return Ok(unix);
    }
    if let Ok(at) = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        return Ok(at.unix_timestamp());
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad_since(text))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad_since(text)),
    };
    Ok(now - n.saturating_mul(secs))
}

fn bad_since(text: &str) -> String {
    format!(
        "--since {text:?}: expected a unix time, an RFC 3339 time (2026-11-30T08:00:00Z) or a duration back from now (90m, 36h, 7d)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_times_and_durations() {
        let now = 1_800_000_000;
        assert_eq!(parse_since("1767225590", now), Ok(1_767_225_590));
        assert_eq!(parse_since("2026-01-01T00:00:00Z", now), Ok(1_767_225_600));
        assert_eq!(parse_since("90m", now), Ok(now - 5400));
        assert_eq!(parse_since("36h", now), Ok(now - 36 * 3600));
        assert_eq!(parse_since("7d", now), Ok(now - 7 * 86_400));
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("7x", now).is_err());
        assert!(parse_since("", now).is_err());
    }
}
