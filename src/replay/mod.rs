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
mod log;
mod seen;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};

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

/// Every customer to sync, with its plan.
type Plans = foldhash::HashMap<String, CustomerPlan>;

/// Per-customer plan: the routing's newest user for it.
#[derive(Debug, Default)]
struct CustomerPlan {
    /// (user, event created, input sequence)
    user_hint: Option<(String, i64, u64)>,
}

/// Decisions that wait for the whole input: 12 bytes a decision (its spool
/// line and its customer's number), whatever the number of events.
#[derive(Default)]
struct Pending {
    /// (spool line, customer number), in line order.
    lines: Vec<(u64, u32)>,
    /// The waiting customers, numbered.
    customers: Vec<String>,
    numbers: foldhash::HashMap<String, u32>,
}

impl Pending {
    fn push(&mut self, line: u64, customer: &str) {
        let n = match self.numbers.get(customer) {
            Some(n) => *n,
            None => {
                let n = self.customers.len() as u32;
                self.customers.push(customer.to_owned());
                self.numbers.insert(customer.to_owned(), n);
                n
            }
        };
        self.lines.push((line, n));
    }
}

/// How each waiting decision was settled: one outcome a customer.
#[derive(Default)]
pub(crate) struct Settlements {
    lines: Vec<(u64, u32)>,
    outcomes: Vec<Settled>,
    /// Customers whose user the API could not be asked for (not a verdict).
    failures: Vec<SyncFailure>,
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
    snapshots: EventSnapshots,
    plans: Plans,
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

    /// Plan the customer's sync with the routing's newest user for it.
    fn plan_user(&mut self, customer: String, user: &str, created: i64, seq: u64) {
        let plan = self.plans.entry(customer).or_default();
        if plan
            .user_hint
            .as_ref()
            .is_none_or(|(_, c, s)| (created, seq) >= (*c, *s))
        {
            plan.user_hint = Some((user.to_owned(), created, seq));
        }
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
        self.snapshots
            .take(ev.facts, d.kind.as_deref().unwrap_or_default(), &arrival);
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
                    self.plan_user(customer, &user, ev.created, seq);
                }
                Resolution::SyncUser { user, customers } => {
                    d.route = Route::Sync;
                    d.user_id = Some(user.clone());
                    d.customer_id = customers.first().cloned();
                    d.resolved_via = Some(Via::StoreUser);
                    for customer in customers {
                        self.plan_user(customer, &user, ev.created, seq);
                    }
                }
                Resolution::Pending { customer } => {
                    // Settled after all inputs are read; spooled as unresolved for now.
                    d.route = Route::Unresolved;
                    d.customer_id = Some(customer.clone());
                    self.pending.push(self.lines, &customer);
                    self.plans.entry(customer).or_default();
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
}

impl Spool {
    /// Memory for a batch already in memory (`serve`), a temporary file
    /// for inputs of any size.
    fn for_feed(feed: &Feed<'_>) -> anyhow::Result<Spool> {
        Ok(match feed {
            Feed::Events(events) => Spool::Memory(Vec::with_capacity(events.len())),
            Feed::Inputs(_) => Spool::File(BufWriter::with_capacity(
                256 * 1024,
                tempfile::tempfile().context("cannot create a temporary file for decisions")?,
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
            snapshots: EventSnapshots::default(),
            plans: Plans::default(),
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

/// Run a replay through `syncer` (a dry run's syncer works on a copy).
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
    let check = |rt: &Runtime| if interruptible { rt.check() } else { Ok(()) };
    let mut laps = Laps::start();
    let mut errors = input_errors;
    let mut pass = Pass::new(
        cfg,
        syncer.store(),
        Spool::for_feed(&feed)?,
        &progress.events,
    )?;
    let forwarding = forwarder.is_some();
    pass.route_all(feed, forwarder.as_mut(), &mut errors, || check(rt))?;
    progress.events.finish_and_clear();
    laps.lap("routing");

    let Pass {
        mut plans,
        snapshots,
        spool,
        mut summary,
        pending,
        seen,
        notes,
        ..
    } = pass;
    // The ids seen (about 11 bytes an event) are not needed past the routing.
    drop(seen);
    let mut api = live.map(|client| api_source(client, rt, cfg, interruptible, fetched));
    let mut settled = settle_pending(
        pending,
        &snapshots,
        syncer.store(),
        api.as_mut(),
        cfg,
        &mut plans,
        &mut summary,
    )?;
    let lookup_failures = std::mem::take(&mut settled.failures);

    plan_described(&snapshots, &mut plans);
    laps.lap("resolving");

    let deliveries = finish_deliveries(forwarder, &mut summary);
    summary.dry_run = syncer.mode() == Mode::DryRun;
    let jobs = jobs_of(plans);
    progress.customers.set_length(jobs.len() as u64);
    // Forwarding tests the endpoint: nothing is synced here. A live dry run
    // attempts no sync (unless asked to fetch): it says what would be synced.
    let said_only = api.is_some() && summary.dry_run && !dry_run_fetches;
    if said_only && !forwarding {
        summary.customers_synced = jobs.len() as u64;
    }
    let results = match forwarding || said_only {
        true => Ok(Vec::new()),
        false => {
            let mut offline = Offline {
                snapshots: &snapshots,
                user_key: &cfg.user_key,
            };
            let source: &mut dyn crate::sync::Source = match api.as_mut() {
                Some(api) => api,
                None => &mut offline,
            };
            let rt = interruptible.then_some(rt);
            syncer.sync(source, jobs, rt, &progress.customers)
        }
    };
    progress.customers.finish_and_clear();
    laps.lap("syncing");
    let results = results?;
    // Offline, the state comes from the inputs' order; live, from the API.
    let offline = api.is_none() && !forwarding;
    let ambiguous = if offline {
        ambiguities(&snapshots, &results)
    } else {
        Vec::new()
    };
    let (customers, mut failures) = tally(results, &mut summary, trace);
    failures.extend(lookup_failures);
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
    out.sort_by(|a, b| (&a.customer_id, &a.object_id).cmp(&(&b.customer_id, &b.object_id)));
    out
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

/// Customers the inputs describe, even without a routed event: what the
/// store learns of them (user mapping, unmapped customers) is kept.
fn plan_described(snapshots: &EventSnapshots, plans: &mut Plans) {
    for c in snapshots.customer_ids() {
        if !plans.contains_key(c) {
            plans.insert(c.clone(), CustomerPlan::default());
        }
    }
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

/// One job per planned customer, with the routing's newest user for it,
/// in customer id order.
fn jobs_of(plans: Plans) -> Vec<Job> {
    let mut jobs: Vec<Job> = plans
        .into_iter()
        .map(|(customer_id, plan)| Job {
            customer_id,
            user_hint: plan.user_hint.map(|(u, _, _)| u),
        })
        .collect();
    jobs.sort_unstable_by(|a, b| a.customer_id.cmp(&b.customer_id));
    jobs
}

/// Count each customer's result into the summary; keep the failures, and
/// (with `trace`) every outcome.
fn tally(
    results: Vec<crate::sync::Synced>,
    summary: &mut Summary,
    trace: bool,
) -> (Vec<(String, crate::store::WriteOutcome)>, Vec<SyncFailure>) {
    let mut customers = Vec::new();
    let mut failures = Vec::new();
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
    (customers, failures)
}

/// Resolve what waited for the whole input: customer objects anywhere in
/// it, else (`--live`) the customer fetched from the API, once per customer.
fn settle_pending(
    pending: Pending,
    snapshots: &EventSnapshots,
    store: &crate::store::Store,
    mut api: Option<&mut ApiSource<'_>>,
    cfg: &Config,
    plans: &mut Plans,
    summary: &mut Summary,
) -> Result<Settlements, SyncError> {
    let mut outcomes = Vec::with_capacity(pending.customers.len());
    let mut failures = Vec::new();
    for customer in &pending.customers {
        let mut outcome = resolve::resolve_later(customer, snapshots, store, &cfg.user_key);
        if let (Err(_), Some(api)) = (&outcome, api.as_deref_mut())
            && !snapshots.describes(customer)
        {
            outcome = match fetch_user(api, customer, &cfg.user_key)? {
                Lookup::Settled(settled) => settled,
                // An API failure is no routing verdict: the customer's
                // events fail (a server answers 500, Stripe retries).
                Lookup::Failed(error) => {
                    summary.sync_failures += 1;
                    failures.push(SyncFailure {
                        customer_id: customer.clone(),
                        error: error.clone(),
                    });
                    Err(error)
                }
            };
        }
        if let Ok((user, _)) = &outcome {
            let plan = plans.entry(customer.clone()).or_default();
            if plan.user_hint.is_none() {
                plan.user_hint = Some((user.clone(), i64::MIN, 0));
            }
        }
        outcomes.push(outcome);
    }
    for (_, n) in &pending.lines {
        if outcomes[*n as usize].is_ok() {
            summary.unresolved -= 1;
            summary.sync += 1;
        }
    }
    Ok(Settlements {
        lines: pending.lines,
        outcomes,
        failures,
    })
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
                    d.settle(&self.settled.outcomes[*n as usize]);
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
                .map(|(_, n)| &self.settled.outcomes[*n as usize]);
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
