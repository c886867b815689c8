//! `resync --events`: catch up from Stripe's event log, no webhook needed.
//! List `GET /v1/events` since the checkpoint (newest first, paged back to
//! it), route the events oldest first exactly as `replay` does, resync each
//! affected customer once from the API (as `resync --customer`), log the
//! events, and only then move the checkpoint. `--follow` repeats the pass
//! ([`Follower`]), waiting out a failing API ([`Waiting`]).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::event::Event;
use crate::replay::{self, Feed, Plan, Progress, Summary};
use crate::runtime::Runtime;
use crate::store::WriteOutcome;
use crate::store::checkpoint::Events as Checkpoint;
use crate::stripe::{ApiError, Client};

use super::{Mode, SyncError, Syncer};

/// Stripe keeps events for 30 days.
pub(crate) const RETENTION_SECS: i64 = 30 * 24 * 3600;

/// Stripe filters at most this many types server-side.
const MAX_TYPES: usize = 20;

/// The customer events, always listed whatever `sync_events` says: they
/// carry the user id in the customer's metadata, or the customer's end.
/// With the 18 default `sync_events` they make 21 types, more than Stripe
/// filters, so the default listing is unfiltered and [`wanted`] filters.
const CUSTOMER_EVENTS: [&str; 3] = ["customer.created", "customer.updated", "customer.deleted"];

/// Test-only and undocumented: how many milliseconds one second of a
/// follower's waits on a failing API lasts (default 1000), so fault tests
/// of the binary do not wait for real. The poll interval is not scaled.
pub(crate) const TEST_FOLLOW_UNIT_ENV: &str = "STRIPE_SYNC_TEST_FOLLOW_UNIT_MS";

/// SIGTERM, for a follower: `true` once received.
pub(crate) type Terminate = tokio::sync::watch::Receiver<bool>;

/// A [`Terminate`] that turns true at the first SIGTERM (a follower then
/// ends after the poll in flight, with status 0).
pub(crate) fn on_sigterm(rt: &crate::runtime::Runtime) -> std::io::Result<Terminate> {
    let (tx, term) = tokio::sync::watch::channel(false);
    let mut sigterm = {
        let _inside = rt.handle().enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?
    };
    rt.handle().spawn(async move {
        if sigterm.recv().await.is_some() {
            let _ = tx.send(true);
        }
    });
    Ok(term)
}

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

impl Pass {
    /// Nothing but events already processed (or none): a quiet poll.
    pub(crate) fn nothing_new(&self) -> bool {
        self.summary.events == self.summary.duplicate
            && self.customers.is_empty()
            && self.failures.is_empty()
            && self.gap.is_none()
    }
}

pub(crate) struct CatchUp<'a> {
    pub rt: &'a Runtime,
    pub client: &'a Client,
    pub cfg: &'a Config,
    /// Start here instead of the checkpoint.
    pub since: Option<i64>,
    pub now: i64,
    /// With `--follow`: SIGTERM stops a pass that is still listing (nothing
    /// is done yet, so nothing is lost); a pass that is syncing finishes.
    pub term: Option<&'a Terminate>,
}

/// Why a catch-up cannot start.
#[derive(Debug, thiserror::Error)]
#[error(
    "no events checkpoint in the store: run `stripe-sync resync --all` first (it sets one), or pass --since (e.g. --since 7d)"
)]
pub(crate) struct NoCheckpoint;

/// The types asked of the API (`types[]`): `sync_events` and the customer
/// events, or none (all) when they do not fit Stripe's limit; then
/// [`wanted`] filters client-side.
fn server_types(sync_events: &[String]) -> Vec<String> {
    let mut types = sync_events.to_vec();
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

/// Whether a listed event is routed: one of `sync_events` or a customer event.
fn wanted(sync_events: &[String], kind: &str) -> bool {
    sync_events.iter().any(|t| t == kind) || CUSTOMER_EVENTS.contains(&kind)
}

impl CatchUp<'_> {
    /// The pass; `None` when SIGTERM stopped it before anything was done.
    pub(crate) fn run(&self, syncer: &mut Syncer) -> Result<Option<Pass>, SyncError> {
        let start = match (self.since, syncer.store().events_checkpoint()?) {
            (Some(since), _) => since,
            (None, Some(c)) => c.created,
            (None, None) => return Err(SyncError::Store(NoCheckpoint.into())),
        };
        let oldest_kept = self.now - RETENTION_SECS;
        let gap = (start < oldest_kept).then_some((start, oldest_kept));

        // Newest first, paged back to the start; then oldest first.
        let types = server_types(&self.cfg.sync_events);
        let mut listed: Vec<Event> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let listing = self.client.list_events(start, &types, after.as_deref());
            let Some(page) = self.rt.block_on(unless_terminated(listing, self.term))? else {
                return Ok(None);
            };
            let page = page.map_err(SyncError::Api)?;
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
            .filter(|e| wanted(&self.cfg.sync_events, &e.kind))
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
            fetched: None,
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
            syncer.advance_events_checkpoint(c)?;
        }
        if finished.failures.is_empty() {
            syncer.mark_caught_up(self.now)?;
        }
        Ok(Some(Pass {
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
        }))
    }
}

/// `f`'s output, or `None` if SIGTERM comes first.
async fn unless_terminated<F: Future>(f: F, term: Option<&Terminate>) -> Option<F::Output> {
    let Some(term) = term else {
        return Some(f.await);
    };
    tokio::select! {
        biased;
        () = terminated(term.clone()) => None,
        out = f => Some(out),
    }
}

/// Completes at SIGTERM (never, if the signal could not be hooked).
async fn terminated(mut term: Terminate) {
    if term.wait_for(|t| *t).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What one poll of a follower did.
#[derive(Debug)]
pub(crate) enum Polled {
    /// SIGTERM came while it was listing: nothing was done.
    Stopped,
    /// Done; the next poll starts at `reached` (the newest event processed,
    /// or the first one a failed customer needs again), or where this one
    /// did when `None`.
    Done { reached: Option<i64> },
}

/// What a follower says between polls (the command words it).
#[derive(Debug)]
pub(crate) enum News<'e> {
    /// A poll failed; the next try is `after` from now. `first`: the first
    /// failure since the API last answered (the one to say).
    Waiting {
        cause: &'e ApiError,
        first: bool,
        after: Duration,
    },
    /// A poll succeeded after failures that began `away` ago.
    Back { away: Duration },
}

/// `resync --events --follow`: poll every interval until SIGTERM (Ok, after
/// the poll in flight) or Ctrl-C (`Interrupted`); a failing API is waited
/// out, only a refused key stops it (`Api`), as a store failure does.
pub(crate) struct Follower<'a> {
    pub rt: &'a Runtime,
    pub interval: Duration,
    pub waiting: Waiting,
    pub term: Terminate,
}

impl Follower<'_> {
    /// Poll from `start` (`None`: the store's checkpoint). Each poll starts
    /// where the last one ended, also when the store has no checkpoint to
    /// say so (`--since` on a new store, `--check`).
    pub(crate) fn run(
        &mut self,
        start: Option<i64>,
        mut poll: impl FnMut(Option<i64>, &Terminate) -> Result<Polled, SyncError>,
        mut say: impl FnMut(News<'_>),
    ) -> Result<(), SyncError> {
        let mut start = start;
        loop {
            let wait = match poll(start, &self.term) {
                Ok(Polled::Stopped) => return Ok(()),
                Ok(Polled::Done { reached }) => {
                    start = reached.or(start);
                    if let Some(away) = self.waiting.answered(Instant::now()) {
                        say(News::Back { away });
                    }
                    self.interval
                }
                Err(SyncError::Api(cause)) if !cause.is_auth() => {
                    let Retry { after, first } = self.waiting.failed(Instant::now());
                    say(News::Waiting {
                        cause: &cause,
                        first,
                        after,
                    });
                    after
                }
                Err(e) => return Err(e),
            };
            let term = self.term.clone();
            let stop = self.rt.block_on(async {
                tokio::select! {
                    biased;
                    () = terminated(term) => true,
                    () = tokio::time::sleep(wait) => false,
                }
            })?;
            if stop {
                return Ok(());
            }
        }
    }
}

/// A follower's pace while the API fails (unreachable, 5xx, timeouts): the
/// poll interval doubling up to a minute between tries (or the interval,
/// when that is longer), said once when it starts and once when it ends.
#[derive(Debug)]
pub(crate) struct Waiting {
    first: Duration,
    max: Duration,
    next: Duration,
    since: Option<Instant>,
}

/// What [`Waiting::failed`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Retry {
    pub after: Duration,
    /// The first failure since the API last answered: say so.
    pub first: bool,
}

impl Waiting {
    /// `unit` is a second, except in tests ([`TEST_FOLLOW_UNIT_ENV`]).
    pub(crate) fn new(interval_secs: u64, unit: Duration) -> Waiting {
        let secs = |n: u64| unit.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
        let first = secs(interval_secs);
        Waiting {
            first,
            max: secs(60).max(first),
            next: first,
            since: None,
        }
    }

    /// A poll failed at `now`.
    pub(crate) fn failed(&mut self, now: Instant) -> Retry {
        let first = self.since.is_none();
        self.since.get_or_insert(now);
        let after = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        Retry { after, first }
    }

    /// A poll succeeded at `now`: how long the API was away, if it was.
    pub(crate) fn answered(&mut self, now: Instant) -> Option<Duration> {
        self.next = self.first;
        self.since.take().map(|t| now.saturating_duration_since(t))
    }
}

/// The unit of [`Waiting`] from [`TEST_FOLLOW_UNIT_ENV`]'s value: whole
/// milliseconds, 1 to 1000; anything else is a second.
pub(crate) fn follow_unit(value: Option<&str>) -> Duration {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| (1..=1000).contains(ms))
        .map_or(Duration::from_secs(1), Duration::from_millis)
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

    fn types(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn customer_events_are_always_listed() {
        let few = types(&["invoice.paid", "customer.updated"]);
        assert_eq!(
            server_types(&few),
            types(&[
                "invoice.paid",
                "customer.updated",
                "customer.created",
                "customer.deleted"
            ])
        );
        // The 18 defaults and the 3 customer events pass Stripe's 20: all
        // are listed, and filtered here.
        let defaults = Config::default().sync_events;
        assert_eq!(defaults.len(), 18);
        assert_eq!(server_types(&defaults), Vec::<String>::new());
        for kind in ["customer.created", "customer.updated", "customer.deleted"] {
            assert!(wanted(&defaults, kind), "{kind}");
            assert!(wanted(&few, kind), "{kind}");
        }
        assert!(wanted(&defaults, "invoice.paid"));
        assert!(!wanted(&few, "customer.subscription.updated"));
        assert!(!wanted(&defaults, "charge.succeeded"));
        // Exactly 20 is still filtered by Stripe.
        let seventeen = defaults[..17].to_vec();
        assert_eq!(server_types(&seventeen).len(), 20);
        assert!(server_types(&seventeen).contains(&"customer.deleted".to_owned()));
    }

    #[test]
    fn a_follower_waits_doubling_up_to_a_minute_and_says_so_once() {
        let unit = Duration::from_secs(1);
        let t0 = Instant::now();
        let mut w = Waiting::new(5, unit);
        let waits: Vec<Retry> = (0..7).map(|_| w.failed(t0)).collect();
        let secs: Vec<u64> = waits.iter().map(|r| r.after.as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60, 60]);
        assert!(waits[0].first);
        assert!(waits[1..].iter().all(|r| !r.first));
        assert_eq!(
            w.answered(t0 + Duration::from_secs(90)),
            Some(Duration::from_secs(90))
        );
        // Back to normal: no second "back", and the next outage starts over.
        assert_eq!(w.answered(t0), None);
        assert_eq!(
            w.failed(t0),
            Retry {
                after: Duration::from_secs(5),
                first: true
            }
        );
        // An interval longer than a minute is never shortened.
        let mut slow = Waiting::new(300, unit);
        assert_eq!(slow.failed(t0).after, Duration::from_secs(300));
        assert_eq!(slow.failed(t0).after, Duration::from_secs(300));
        // Tests shorten the unit.
        let mut fast = Waiting::new(1, Duration::from_millis(10));
        let ms: Vec<u128> = (0..8).map(|_| fast.failed(t0).after.as_millis()).collect();
        assert_eq!(ms, [10, 20, 40, 80, 160, 320, 600, 600]);
    }

    #[test]
    fn the_follow_unit_is_a_second_unless_a_test_says() {
        let second = Duration::from_secs(1);
        assert_eq!(follow_unit(None), second);
        assert_eq!(follow_unit(Some("20")), Duration::from_millis(20));
        for ignored in ["0", "1001", "-5", "fast", ""] {
            assert_eq!(follow_unit(Some(ignored)), second, "{ignored}");
        }
    }

    #[test]
    fn a_poll_of_duplicates_only_is_quiet() {
        let mut pass = Pass::default();
        assert!(pass.nothing_new());
        pass.summary.events = 2;
        pass.summary.duplicate = 2;
        assert!(pass.nothing_new());
        pass.summary.events = 3;
        pass.summary.ignored = 1;
        assert!(!pass.nothing_new());
        let mut gap = Pass {
            gap: Some((1, 2)),
            ..Pass::default()
        };
        assert!(!gap.nothing_new());
        gap.gap = None;
        gap.failures.push(("cus_1".into(), "HTTP 500".into()));
        assert!(!gap.nothing_new());
    }
}
