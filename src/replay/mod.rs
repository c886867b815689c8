//! The replay engine: route every input event, resolve users, sync each
//! routed customer once (after all inputs are read, so order and duplicates
//! never change the outcome), then log the processed events.
//!
//! Memory stays flat in the number of events: decisions are spooled to an
//! anonymous temp file and streamed out at the end (so events resolved by
//! later inputs still print in input order); only per-customer and
//! per-subscription state, and the ids seen, are kept.

pub(crate) mod decision;
mod digest;
mod facts;
mod log;
mod seen;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};
use std::time::{Duration, Instant};

use anyhow::Context;

pub(crate) use crate::sync::source::Ambiguity;
pub(crate) use decision::{Decision, InputError, Summary, SyncFailure};
use digest::Digest;

use crate::config::Config;
use crate::event::{self, Input, Source};
use crate::forward;
use crate::parallel;
use crate::resolve::{self, Resolution};
use crate::routing::{Route, Routed, Via};
use crate::runtime::Runtime;
use crate::sync::source::{Fetched, Offline};
use crate::sync::{ApiSource, EventSnapshots, Job, Mode, SyncError, Syncer};

/// Where the events come from.
pub(crate) enum Feed<'a> {
    /// Files, directories, stdin (read and parsed on every core).
    Inputs(&'a [Input]),
    /// Events already in memory (`serve`), each with its source label.
    Events(Vec<(Source, event::Event)>),
}

/// What `replay` was asked to do.
pub(crate) struct Plan<'a> {
    pub cfg: &'a Config,
    pub feed: Feed<'a>,
    /// Inputs that could not be expanded (missing files, bad globs).
    pub input_errors: Vec<InputError>,
    /// `--live`: the API client.
    pub live: Option<&'a crate::stripe::Client>,
    /// A server's batch, with `live`: what its requests fetched from the
    /// API. The run answers from it alone and never waits on the network
    /// (see [`ApiSource::seed`]).
    pub fetched: Option<Fetched>,
    /// `--forward-to`: deliver each event; no sync.
    pub forwarder: Option<forward::Forwarder>,
    /// Keep each synced customer's outcome (for `-v`).
    pub trace: bool,
    /// Stop at Ctrl-C (a server finishes what it accepted instead).
    pub interruptible: bool,
    /// A live dry run fetches from the API all the same and writes into the
    /// copy (`resync --events --check`); else it attempts no sync at all.
    pub dry_run_fetches: bool,
}

/// Progress hooks for the caller's bars.
pub(crate) struct Progress {
    pub events: indicatif::ProgressBar,
    pub customers: indicatif::ProgressBar,
}

/// A finished replay: the summary, and the decisions to stream out.
pub(crate) struct Finished {
    pub summary: Summary,
    /// How long each phase took.
    pub timings: Vec<(&'static str, std::time::Duration)>,
    /// With `trace`: each synced customer, and what the sync changed.
    pub customers: Vec<(String, crate::store::WriteOutcome)>,
    pub errors: Vec<InputError>,
    pub failures: Vec<SyncFailure>,
    /// Offline: what the inputs cannot order (the model's rules 1 and 2).
    pub ambiguous: Vec<Ambiguity>,
    /// Odd metadata in the events (see [`crate::routing::metadata_notes`]).
    pub notes: Notes,
    spool: Spool,
    settled: Settlements,
    deliveries: HashMap<u64, forward::Delivery>,
    log_events: bool,
}

/// Notes about the events, the first [`Notes::KEPT`] kept (a million
/// events with padded metadata must not fill the memory or the terminal).
#[derive(Debug, Default)]
pub(crate) struct Notes {
    pub kept: Vec<String>,
    /// All of them, kept or not.
    pub total: u64,
}

impl Notes {
    const KEPT: usize = 10;

    fn extend(&mut self, notes: Vec<String>) {
        for note in notes {
            self.total += 1;
            if self.kept.len() < Notes::KEPT {
                self.kept.push(note);
            }
        }
    }
}

/// Where decisions wait for the whole input: a temporary file (inputs of
/// any size, flat memory) or, for a batch already in memory (`serve`), a
/// vector: typed values, never serialized and parsed again.
enum Spool {
    File(BufWriter<std::fs::File>),
    Memory(Vec<Decision>),
}

impl Spool {
    fn push(&mut self, d: &Decision) -> anyhow::Result<()> {
        match self {
            Spool::File(f) => {
                serde_json::to_writer(&mut *f, d)?;
                f.write_all(b"\n")?;
            }
            Spool::Memory(v) => v.push(d.clone()),
        }
        Ok(())
    }
}

/// One decision as it leaves the spool: the spooled JSON line when nothing
/// changed it since, else the settled decision.
pub(crate) enum Line {
    Raw(String),
    Settled(Box<Decision>),
}

/// How a waiting decision was settled: the user and how it was found, or
/// why none was.
pub(crate) type Settled = Result<(String, Via), String>;

/// Decisions that wait for the whole input: their spool lines and their
/// customers' numbers.
#[derive(Default)]
struct Pending {
    lines: WaitingLines,
    /// The waiting customers, numbered in the order first met.
    numbers: foldhash::HashMap<Box<str>, u32>,
}

impl Pending {
    fn push(&mut self, line: u64, customer: &str) {
        let n = match self.numbers.get(customer) {
            Some(n) => *n,
            None => {
                let n = self.numbers.len() as u32;
                self.numbers.insert(customer.into(), n);
                n
            }
        };
        self.lines.push(line, n);
    }
}

/// (spool line, customer number) pairs in line order, as varints of the
/// line's distance from the previous one and the number: 2 to 5 bytes a
/// waiting decision, where a vector of pairs took 16 (a million events
/// may leave half of them waiting).
#[derive(Default)]
struct WaitingLines {
    bytes: Vec<u8>,
    last: u64,
}

impl WaitingLines {
    fn push(&mut self, line: u64, n: u32) {
        put_varint(&mut self.bytes, line - self.last);
        put_varint(&mut self.bytes, u64::from(n));
        self.last = line;
    }

    fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let mut at = 0;
        let mut line = 0;
        std::iter::from_fn(move || {
            if at >= self.bytes.len() {
                return None;
            }
            line += get_varint(&self.bytes, &mut at);
            let n = get_varint(&self.bytes, &mut at) as u32;
            Some((line, n))
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// How each waiting decision was settled: one outcome a customer.
#[derive(Default)]
pub(crate) struct Settlements {
    lines: WaitingLines,
    outcomes: Vec<Settled>,
}

/// The routing pass over every input.
struct Pass<'a> {
    cfg: &'a Config,
    store: &'a crate::store::Store,
    /// Whether the store has logged any event (a fresh one skips the lookups).
    store_has_events: bool,
    /// Whether the store holds customers to look users up in.
    lookups: bool,
    seen: seen::SeenIds,
    facts: facts::FactLog,
    pending: Pending,
    spool: Spool,
    lines: u64,
    seq: u64,
    summary: Summary,
    notes: Notes,
    bar: &'a indicatif::ProgressBar,
}

impl Pass<'_> {
    /// Route every event of the feed (delivering each with `--forward-to`),
    /// keeping file-level problems in `errors`.
    fn route_all(
        &mut self,
        feed: Feed<'_>,
        mut forwarder: Option<&mut forward::Forwarder>,
        errors: &mut Vec<InputError>,
        check: impl Fn() -> Result<(), crate::Fatal>,
    ) -> Result<(), SyncError> {
        let keep_raw = forwarder.is_some();
        let cfg = self.cfg.clone();
        let units: Box<dyn Iterator<Item = parallel::Unit<Digest>>> = match feed {
            Feed::Inputs(inputs) => Box::new(parallel::parse_inputs(inputs, keep_raw, move |ev| {
                Digest::of(ev, &cfg)
            })),
            Feed::Events(events) => Box::new(events.into_iter().map(move |(source, ev)| {
                parallel::Unit::Item(source, Ok(Digest::of(ev, &cfg)), None)
            })),
        };
        for unit in units {
            check()?;
            match unit {
                parallel::Unit::Item(source, parsed, raw) => {
                    // Every event is delivered, duplicates too: Stripe redelivers them.
                    if let (Some(fwd), Ok(_), Some(raw)) = (forwarder.as_deref_mut(), &parsed, raw)
                    {
                        fwd.send(self.lines, raw);
                    }
                    self.item(source, parsed)?;
                }
                parallel::Unit::FileError(source, message) => {
                    errors.push(InputError { source, message })
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self, d: &Decision) -> anyhow::Result<()> {
        self.spool.push(d)?;
        self.lines += 1;
        self.summary.count(d.route);
        if self.summary.events.is_multiple_of(4096) {
            self.bar.set_position(self.summary.events);
        }
        Ok(())
    }

    fn item(&mut self, source: Source, parsed: Result<Digest, String>) -> anyhow::Result<()> {
        self.seq += 1;
        let seq = self.seq;
        let ev = match parsed {
            Ok(ev) => ev,
            Err(e) => return self.emit(&Decision::invalid(&source, e)),
        };
        let mut d = Decision {
            event_id: Some(ev.id),
            kind: Some(ev.kind),
            created: Some(ev.created),
            route: Route::Ignored,
            user_id: None,
            customer_id: ev.customer_id,
            resolved_via: None,
            reason: None,
            source: source.to_string(),
            forward: None,
            ambiguous: false,
        };
        let id = d.event_id.as_deref().unwrap_or_default();

        let earlier_run = self.store_has_events && self.store.event_seen(id)?;
        let seen = match earlier_run {
            true => seen::Seen::Again,
            false => self.seen.insert(id, d.kind.as_deref().unwrap_or_default()),
        };
        if seen != seen::Seen::New {
            d.route = Route::Duplicate;
            d.reason = Some(match (earlier_run, seen) {
                (true, _) => "already processed in an earlier run (store's event log)".into(),
                (false, seen::Seen::OtherType) => "event id already seen in this run with another type: \
                     not a redelivery (Stripe redelivers the same event) but two events sharing an id; \
                     give each fixture its own id"
                    .into(),
                (false, _) => "event id already seen in this run (redelivery)".into(),
            });
            return self.emit(&d);
        }
        self.notes.extend(ev.notes);
        if ev.thin {
            d.reason = Some(
                "thin event (v2.core.event): it carries no object snapshot to sync from; \
                 the SDKs read it with parseEventNotification, not constructEvent"
                    .into(),
            );
            return self.emit(&d);
        }

        let arrival = crate::sync::source::Arrival {
            created: ev.created,
            listed: match source.pos {
                event::Pos::Listed(i) => Some((source.file.clone(), i)),
                _ => None,
            },
            seq,
            event_id: std::sync::Arc::from(id),
        };
        self.facts
            .take(ev.facts, d.kind.as_deref().unwrap_or_default(), &arrival)?;
        match ev.routed {
            Routed::Ignored => {
                d.reason = Some("type not in sync_events".into());
            }
            Routed::Rejected {
                user,
                customer,
                reason,
            } => {
                d.route = Route::Rejected;
                d.user_id = user;
                d.customer_id = customer;
                d.reason = Some(reason);
            }
            routed => match resolve::resolve_now(routed, self.lookups.then_some(self.store))? {
                Resolution::Sync {
                    user,
                    customer,
                    via,
                } => {
                    d.route = Route::Sync;
                    d.user_id = Some(user.clone());
                    d.customer_id = Some(customer.clone());
                    d.resolved_via = Some(via);
                    self.facts.hint(&customer, &user, ev.created, seq)?;
                }
                Resolution::SyncUser { user, customers } => {
                    d.route = Route::Sync;
                    d.user_id = Some(user.clone());
                    d.customer_id = customers.first().cloned();
                    d.resolved_via = Some(Via::StoreUser);
                    for customer in &customers {
                        self.facts.hint(customer, &user, ev.created, seq)?;
                    }
                }
                Resolution::Pending { customer } => {
                    // Settled after all inputs are read; spooled as unresolved for now.
                    d.route = Route::Unresolved;
                    d.customer_id = Some(customer.clone());
                    self.pending.push(self.lines, &customer);
                    self.facts.plan(&customer)?;
                }
                Resolution::Unresolved { customer, reason } => {
                    d.route = Route::Unresolved;
                    d.customer_id = customer;
                    d.reason = Some(reason);
                }
            },
        }
        self.emit(&d)
    }
}

/// How long each phase of a run took.
struct Laps {
    clock: std::time::Instant,
    timings: Vec<(&'static str, std::time::Duration)>,
}

impl Laps {
    fn start() -> Laps {
        Laps {
            clock: std::time::Instant::now(),
            timings: Vec::new(),
        }
    }

    /// The phase `name` ends now.
    fn lap(&mut self, name: &'static str) {
        self.timings.push((name, self.clock.elapsed()));
        self.clock = std::time::Instant::now();
    }

    /// The phase `name` took `took`, in pieces (phases that interleave).
    fn add(&mut self, name: &'static str, took: Duration) {
        self.timings.push((name, took));
        self.clock = std::time::Instant::now();
    }
}

impl Spool {
    /// Memory for a batch already in memory (`serve`), a temporary file
    /// for inputs of any size.
    fn for_feed(feed: &Feed<'_>) -> anyhow::Result<Spool> {
        Ok(match feed {
            Feed::Events(events) => Spool::Memory(Vec::with_capacity(events.len())),
            Feed::Inputs(_) => Spool::File(BufWriter::with_capacity(
                256 * 1024,
                tempfile::tempfile().with_context(|| {
                    format!(
                        "cannot create a temporary file for decisions in {} (set TMPDIR to a writable directory)",
                        std::env::temp_dir().display()
                    )
                })?,
            )),
        })
    }
}

impl<'a> Pass<'a> {
    fn new(
        cfg: &'a Config,
        store: &'a crate::store::Store,
        spool: Spool,
        bar: &'a indicatif::ProgressBar,
    ) -> anyhow::Result<Pass<'a>> {
        Ok(Pass {
            cfg,
            store,
            store_has_events: store.has_events()?,
            lookups: store.has_customers()?,
            seen: seen::SeenIds::default(),
            facts: facts::FactLog::new(),
            pending: Pending::default(),
            spool,
            lines: 0,
            seq: 0,
            summary: Summary::default(),
            notes: Notes::default(),
            bar,
        })
    }
}

/// Customers whose snapshots are built, settled and synced at once: one
/// transaction of the offline source.
const CHUNK: usize = 1000;

/// Run a replay through `syncer` (a dry run's syncer works on a copy):
/// route every event, then settle and sync the routed customers a chunk
/// at a time.
pub(crate) fn run(
    plan: Plan<'_>,
    syncer: &mut Syncer,
    rt: &Runtime,
    progress: &Progress,
) -> Result<Finished, SyncError> {
    let Plan {
        cfg,
        feed,
        input_errors,
        live,
        fetched,
        mut forwarder,
        trace,
        interruptible,
        dry_run_fetches,
    } = plan;
    let mut laps = Laps::start();
    let mut errors = input_errors;
    let forwarding = forwarder.is_some();
    let mut pass = Pass::new(
        cfg,
        syncer.store(),
        Spool::for_feed(&feed)?,
        &progress.events,
    )?;
    pass.route_all(feed, forwarder.as_mut(), &mut errors, || {
        if interruptible { rt.check() } else { Ok(()) }
    })?;
    progress.events.finish_and_clear();
    laps.lap("routing");

    let Pass {
        facts,
        spool,
        mut summary,
        pending,
        seen,
        notes,
        ..
    } = pass;
    // The ids seen (about 11 bytes an event) are not needed past the routing.
    drop(seen);
    let customers_to_sync = facts.customers();
    let mut facts = facts.finish()?;
    let api = live.map(|client| api_source(client, rt, cfg, interruptible, fetched));
    let deliveries = finish_deliveries(forwarder, &mut summary);
    summary.dry_run = syncer.mode() == Mode::DryRun;
    progress.customers.set_length(customers_to_sync as u64);
    // Forwarding tests the endpoint: nothing is synced here. A live dry run
    // attempts no sync (unless asked to fetch): it says what would be synced.
    let said_only = api.is_some() && summary.dry_run && !dry_run_fetches;
    let mut chunks = Chunks {
        syncer,
        rt,
        cfg,
        progress,
        trace,
        interruptible,
        forwarding,
        said_only,
        // Offline, the state comes from the inputs' order; live, from the API.
        offline: api.is_none() && !forwarding,
        api,
        settler: Settler::new(pending),
        synced: SyncedChunks::default(),
    };
    let all = chunks.sync_all(&mut facts, &mut summary);
    progress.customers.finish_and_clear();
    all?;
    let Chunks {
        settler,
        synced:
            SyncedChunks {
                customers,
                mut failures,
                mut ambiguous,
                resolving,
                syncing,
            },
        ..
    } = chunks;
    laps.add("resolving", resolving);
    laps.add("syncing", syncing);
    sort_ambiguities(&mut ambiguous);
    let settled = settler.finish(&mut summary, &mut failures);
    summary.api_requests = live.map_or(0, |c| c.stats().requests);
    Ok(Finished {
        summary,
        timings: laps.timings,
        customers,
        errors,
        failures,
        ambiguous,
        notes,
        spool,
        settled,
        deliveries,
        log_events: !forwarding && syncer.mode() == Mode::Write,
    })
}

/// The routed customers' sync, a chunk at a time (one transaction of the
/// offline source): each chunk's snapshots, its settlement, its sync.
struct Chunks<'s, 'a> {
    syncer: &'s mut Syncer,
    rt: &'a Runtime,
    cfg: &'a Config,
    progress: &'a Progress,
    trace: bool,
    interruptible: bool,
    /// `--forward-to`: nothing is synced.
    forwarding: bool,
    /// A live dry run: what would be synced is said, not attempted.
    said_only: bool,
    /// The state comes from the inputs (not the API).
    offline: bool,
    api: Option<ApiSource<'a>>,
    settler: Settler,
    synced: SyncedChunks,
}

/// What the chunks' syncs found.
#[derive(Default)]
struct SyncedChunks {
    customers: Vec<(String, crate::store::WriteOutcome)>,
    failures: Vec<SyncFailure>,
    ambiguous: Vec<Ambiguity>,
    resolving: Duration,
    syncing: Duration,
}

impl Chunks<'_, '_> {
    fn sync_all(
        &mut self,
        facts: &mut facts::Facts,
        summary: &mut Summary,
    ) -> Result<(), SyncError> {
        loop {
            let clock = Instant::now();
            let (mut chunk, snapshots) = facts.next_jobs(CHUNK)?;
            if chunk.is_empty() {
                return Ok(());
            }
            self.settle(&mut chunk, snapshots, summary)?;
            self.synced.resolving += clock.elapsed();
            if !self.forwarding && !self.said_only {
                self.sync(chunk, snapshots, summary)?;
            }
        }
    }

    /// Settle what waited for the chunk's customers.
    fn settle(
        &mut self,
        chunk: &mut [Job],
        snapshots: &EventSnapshots,
        summary: &mut Summary,
    ) -> Result<(), SyncError> {
        if self.said_only && !self.forwarding {
            summary.customers_synced += chunk.len() as u64;
        }
        for job in chunk {
            self.settler.settle(
                job,
                snapshots,
                self.syncer.store(),
                self.api.as_mut(),
                self.cfg,
                summary,
            )?;
        }
        Ok(())
    }

    /// Sync the chunk's customers, from the inputs or the API, and count
    /// what came of them.
    fn sync(
        &mut self,
        chunk: Vec<Job>,
        snapshots: &EventSnapshots,
        summary: &mut Summary,
    ) -> Result<(), SyncError> {
        let clock = Instant::now();
        let mut offline_source = Offline {
            snapshots,
            user_key: &self.cfg.user_key,
        };
        let source: &mut dyn crate::sync::Source = match self.api.as_mut() {
            Some(api) => api,
            None => &mut offline_source,
        };
        let results = self.syncer.sync(
            source,
            chunk,
            self.interruptible.then_some(self.rt),
            &self.progress.customers,
        );
        self.synced.syncing += clock.elapsed();
        let results = results?;
        if self.offline {
            self.synced
                .ambiguous
                .extend(ambiguities(snapshots, &results));
        }
        let synced = &mut self.synced;
        tally(
            results,
            summary,
            self.trace,
            &mut synced.customers,
            &mut synced.failures,
        );
        Ok(())
    }
}

/// Rule 1's ambiguities among the inputs, and rule 2's among each synced
/// customer's subscriptions (with the creation events the inputs hold).
fn ambiguities(snapshots: &EventSnapshots, results: &[crate::sync::Synced]) -> Vec<Ambiguity> {
    let mut out = snapshots.ambiguities();
    for s in results {
        let Ok(o) = &s.result else { continue };
        for (sub, events) in &o.unordered {
            out.push(Ambiguity {
                customer_id: s.customer_id.clone(),
                object_id: sub.clone(),
                event_ids: events.clone(),
            });
        }
        if o.tied.is_empty() {
            continue;
        }
        let born = snapshots.born_of(&s.customer_id);
        let event_ids = o
            .tied
            .iter()
            .filter_map(|sub| born.iter().find(|(b, _)| b == sub))
            .map(|(_, st)| st.event_id.to_string())
            .collect();
        out.push(Ambiguity {
            customer_id: s.customer_id.clone(),
            object_id: o.tied.join(","),
            event_ids,
        });
    }
    out
}

fn sort_ambiguities(all: &mut [Ambiguity]) {
    all.sort_by(|a, b| (&a.customer_id, &a.object_id).cmp(&(&b.customer_id, &b.object_id)));
}

/// The API source of `--live`; a server's requests are not abandoned at
/// Ctrl-C, and a server's batch answers from what its requests fetched.
fn api_source<'a>(
    client: &'a crate::stripe::Client,
    rt: &'a Runtime,
    cfg: &Config,
    interruptible: bool,
    fetched: Option<Fetched>,
) -> ApiSource<'a> {
    let mut api = ApiSource::new(rt, client, &cfg.user_key, crate::commands::unix_now());
    api.interruptible = interruptible;
    if let Some(fetched) = fetched {
        api.seed(fetched);
    }
    api
}

/// Wait for every `--forward-to` delivery and count them into the summary.
fn finish_deliveries(
    forwarder: Option<forward::Forwarder>,
    summary: &mut Summary,
) -> HashMap<u64, forward::Delivery> {
    let deliveries = forwarder
        .map(forward::Forwarder::finish)
        .unwrap_or_default();
    summary.forwarded = deliveries.values().filter(|d| d.ok()).count() as u64;
    summary.forward_failures = deliveries.len() as u64 - summary.forwarded;
    deliveries
}

/// Count each customer's result into the summary; keep the failures, and
/// (with `trace`) every outcome.
fn tally(
    results: Vec<crate::sync::Synced>,
    summary: &mut Summary,
    trace: bool,
    customers: &mut Vec<(String, crate::store::WriteOutcome)>,
    failures: &mut Vec<SyncFailure>,
) {
    for s in results {
        match s.result {
            Ok(o) => {
                summary.customers_synced += 1;
                summary.customers_changed += u64::from(o.changed);
                if trace {
                    customers.push((s.customer_id, o));
                }
            }
            Err(error) => {
                summary.sync_failures += 1;
                failures.push(SyncFailure {
                    customer_id: s.customer_id,
                    error,
                });
            }
        }
    }
}

/// Resolves what waited for the whole input: customer objects anywhere in
/// it, else (`--live`) the customer fetched from the API, once per customer,
/// as each customer's turn comes.
struct Settler {
    pending: Pending,
    /// One outcome per waiting customer (by its number), once settled.
    outcomes: Vec<Option<Settled>>,
    /// Customers whose user the API could not be asked for, by number.
    failures: Vec<(u32, SyncFailure)>,
}

impl Settler {
    fn new(pending: Pending) -> Settler {
        Settler {
            outcomes: vec![None; pending.numbers.len()],
            pending,
            failures: Vec::new(),
        }
    }

    /// Settle the job's customer if decisions wait for it; a user found
    /// fills the job's blank hint.
    fn settle(
        &mut self,
        job: &mut Job,
        snapshots: &EventSnapshots,
        store: &crate::store::Store,
        api: Option<&mut ApiSource<'_>>,
        cfg: &Config,
        summary: &mut Summary,
    ) -> Result<(), SyncError> {
        let customer = job.customer_id.as_str();
        let Some(&n) = self.pending.numbers.get(customer) else {
            return Ok(());
        };
        let mut outcome = resolve::resolve_later(customer, snapshots, store, &cfg.user_key);
        if let (Err(_), Some(api)) = (&outcome, api)
            && !snapshots.describes(customer)
        {
            outcome = match fetch_user(api, customer, &cfg.user_key)? {
                Lookup::Settled(settled) => settled,
                // An API failure is no routing verdict: the customer's
                // events fail (a server answers 500, Stripe retries).
                Lookup::Failed(error) => {
                    summary.sync_failures += 1;
                    let failure = SyncFailure {
                        customer_id: customer.to_owned(),
                        error: error.clone(),
                    };
                    self.failures.push((n, failure));
                    Err(error)
                }
            };
        }
        if let Ok((user, _)) = &outcome
            && job.user_hint.is_none()
        {
            job.user_hint = Some(user.clone());
        }
        self.outcomes[n as usize] = Some(outcome);
        Ok(())
    }

    /// Every waiting decision's outcome, counted into the summary; the
    /// failures to ask the API join `failures`, in the order the customers
    /// were first met.
    fn finish(mut self, summary: &mut Summary, failures: &mut Vec<SyncFailure>) -> Settlements {
        let outcomes: Vec<Settled> = self
            .outcomes
            .into_iter()
            .map(|o| o.expect("every waiting customer has a job"))
            .collect();
        for (_, n) in self.pending.lines.iter() {
            if outcomes[n as usize].is_ok() {
                summary.unresolved -= 1;
                summary.sync += 1;
            }
        }
        self.failures.sort_by_key(|(n, _)| *n);
        failures.extend(self.failures.into_iter().map(|(_, f)| f));
        Settlements {
            lines: self.pending.lines,
            outcomes,
        }
    }
}

/// What the API said of a customer's user: a verdict, or a failure to ask.
enum Lookup {
    Settled(Settled),
    Failed(String),
}

/// `--live`: the user of a customer the inputs do not describe, from the API.
fn fetch_user(
    api: &mut ApiSource<'_>,
    customer: &str,
    user_key: &str,
) -> Result<Lookup, SyncError> {
    use crate::sync::FetchError;
    Ok(match api.customer(customer) {
        Ok(None) => Lookup::Settled(Err(format!(
            "customer {customer} does not exist in this Stripe account (404)"
        ))),
        Ok(Some(info)) if info.deleted => {
            Lookup::Settled(Err(format!("customer {customer} is deleted in Stripe")))
        }
        Ok(Some(info)) => {
            Lookup::Settled(info.user_id.clone().map(|u| (u, Via::Api)).ok_or_else(|| {
                format!(
                    "customer {customer} has no `{user_key}` in its metadata (fetched from the API)"
                )
            }))
        }
        Err(FetchError::Customer(e)) => {
            Lookup::Failed(format!("customer {customer} could not be looked up: {e}"))
        }
        Err(FetchError::Fatal(e)) => return Err(SyncError::Api(e)),
        Err(FetchError::Interrupted) => {
            return Err(SyncError::Interrupted(crate::Fatal::Interrupted));
        }
    })
}

/// Events to log from which the log is written on its own thread while
/// the decisions stream out (see [`log::alongside`]).
const LOG_ALONGSIDE_FROM: u64 = 10_000;

impl Finished {
    /// Stream every decision, in input order, to `out`; the event log is
    /// written as they pass (into `syncer`'s store, on a real run). An error
    /// of `out` does not cut the event log short: `out` decides what to keep.
    pub(crate) fn stream(
        &mut self,
        syncer: &mut Syncer,
        mut out: impl FnMut(Line) -> anyhow::Result<()>,
    ) -> Result<(), SyncError> {
        let failed: HashSet<String> = self
            .failures
            .iter()
            .map(|f| f.customer_id.clone())
            .collect();
        let spool = std::mem::replace(&mut self.spool, Spool::Memory(Vec::new()));
        let file = match spool {
            Spool::Memory(decisions) => return self.pour_memory(decisions, syncer, &failed, out),
            Spool::File(f) => f,
        };
        let mut file = file
            .into_inner()
            .map_err(|e| anyhow::Error::new(e.into_error()))?;
        file.rewind().context("cannot read back the decisions")?;
        let reader = BufReader::with_capacity(256 * 1024, file);
        if !self.log_events {
            return self.pour(reader, None, &mut out);
        }
        // A small run (one `serve` batch) is not worth a thread.
        if self.summary.sync + self.summary.ignored < LOG_ALONGSIDE_FROM {
            return syncer
                .logging(|logger| {
                    let mut log = log::EventLog {
                        logger,
                        failed: &failed,
                    };
                    self.pour(reader, Some(&mut log), &mut out)
                        .map_err(anyhow::Error::new)
                })
                .map_err(SyncError::Store);
        }
        log::alongside(syncer, &failed, |log| {
            self.pour(reader, Some(log), &mut out)
        })
    }

    /// A batch's decisions, settled, to `out`, and logged in one
    /// transaction (on a real run).
    fn pour_memory(
        &self,
        decisions: Vec<Decision>,
        syncer: &mut Syncer,
        failed: &HashSet<String>,
        mut out: impl FnMut(Line) -> anyhow::Result<()>,
    ) -> Result<(), SyncError> {
        let mut waiting = self.settled.lines.iter().peekable();
        let settled: Vec<Decision> = decisions
            .into_iter()
            .enumerate()
            .map(|(i, mut d)| {
                if let Some((_, n)) = waiting.next_if(|(l, _)| *l == i as u64) {
                    d.settle(&self.settled.outcomes[n as usize]);
                }
                if let Some(delivery) = self.deliveries.get(&(i as u64)) {
                    d.forward = Some(delivery.clone());
                }
                d
            })
            .collect();
        if self.log_events {
            syncer
                .logging(|logger| {
                    let mut log = log::EventLog { logger, failed };
                    settled
                        .iter()
                        .try_for_each(|d| log.record(&log::LogView::from(d)))
                })
                .map_err(SyncError::Store)?;
        }
        for d in settled {
            out(Line::Settled(Box::new(d)))?;
        }
        Ok(())
    }

    /// Every spooled decision, settled, to `out` (and the event log).
    fn pour(
        &self,
        reader: impl BufRead,
        mut log: Option<&mut dyn log::LogSink>,
        out: &mut impl FnMut(Line) -> anyhow::Result<()>,
    ) -> Result<(), SyncError> {
        let mut waiting = self.settled.lines.iter().peekable();
        for (i, line) in reader.lines().enumerate() {
            let line = line.context("cannot read back the decisions")?;
            let settled = waiting
                .next_if(|(l, _)| *l == i as u64)
                .map(|(_, n)| &self.settled.outcomes[n as usize]);
            let delivery = self.deliveries.get(&(i as u64));
            if settled.is_none() && delivery.is_none() {
                if let Some(log) = log.as_mut() {
                    let view: log::LogView<'_> =
                        serde_json::from_str(&line).context("spooled decision")?;
                    log.send(view)?;
                }
                out(Line::Raw(line))?;
                continue;
            }
            let mut d: Decision = serde_json::from_str(&line).context("spooled decision")?;
            if let Some(s) = settled {
                d.settle(s);
            }
            d.forward = delivery.cloned();
            if let Some(log) = log.as_mut() {
                log.send(log::LogView::from(&d))?;
            }
            out(Line::Settled(Box::new(d)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::WaitingLines;

    #[test]
    fn waiting_lines_read_back_as_pushed() {
        let pairs: Vec<(u64, u32)> = vec![
            (0, 0),
            (1, 0),
            (127, 1),
            (128, 70_000),
            (300_000, u32::MAX),
            (u64::MAX / 2, 3),
        ];
        let mut lines = WaitingLines::default();
        for &(line, n) in &pairs {
            lines.push(line, n);
        }
        assert_eq!(lines.iter().collect::<Vec<_>>(), pairs);
        assert!(lines.bytes.len() < pairs.len() * 8);
        assert_eq!(WaitingLines::default().iter().count(), 0);
    }
}
