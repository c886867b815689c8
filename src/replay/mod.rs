//! The replay engine: route every input event, resolve users, sync each
//! routed customer once (after all inputs are read, so order and duplicates
//! never change the outcome), then log the processed events.
//!
//! Memory stays flat in the number of events: decisions are spooled to an
//! anonymous temp file and streamed out at the end (so events resolved by
//! later inputs still print in input order); only per-customer and
//! per-subscription state, and the ids seen, are kept.

pub(crate) mod decision;
mod log;
mod seen;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};

use anyhow::Context;

pub(crate) use decision::{Decision, InputError, Summary, SyncFailure};

use crate::config::Config;
use crate::event::{self, Input, Source};
use crate::forward;
use crate::parallel;
use crate::resolve::{self, Resolution};
use crate::routing::{self, Route, Routed, Via};
use crate::runtime::Runtime;
use crate::sync::source::Offline;
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
    spool: BufWriter<std::fs::File>,
    settled: HashMap<u64, Settled>,
    deliveries: HashMap<u64, forward::Delivery>,
    log_events: bool,
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

/// Per-customer plan: the routing's newest user for it.
#[derive(Debug, Default)]
struct CustomerPlan {
    /// (user, event created, input sequence)
    user_hint: Option<(String, i64, u64)>,
}

struct Pending {
    line: u64,
    customer: String,
}

/// The routing pass over every input.
struct Pass<'a> {
    cfg: &'a Config,
    store: &'a crate::store::Store,
    /// Whether the store has logged any event (a fresh one skips the lookups).
    store_has_events: bool,
    seen: seen::SeenIds,
    snapshots: EventSnapshots,
    plans: BTreeMap<String, CustomerPlan>,
    pending: Vec<Pending>,
    spool: BufWriter<std::fs::File>,
    lines: u64,
    seq: u64,
    summary: Summary,
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
        let units: Box<dyn Iterator<Item = parallel::Unit>> = match feed {
            Feed::Inputs(inputs) => Box::new(parallel::parse_inputs(inputs, keep_raw)),
            Feed::Events(events) => Box::new(
                events
                    .into_iter()
                    .map(|(source, ev)| parallel::Unit::Item(source, Ok(ev), None)),
            ),
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
        serde_json::to_writer(&mut self.spool, d)?;
        self.spool.write_all(b"\n")?;
        self.lines += 1;
        self.summary.count(d.route);
        if self.summary.events.is_multiple_of(4096) {
            self.bar.set_position(self.summary.events);
        }
        Ok(())
    }

    fn item(&mut self, source: Source, parsed: Result<event::Event, String>) -> anyhow::Result<()> {
        self.seq += 1;
        let seq = self.seq;
        let ev = match parsed {
            Ok(ev) => ev,
            Err(e) => return self.emit(&Decision::invalid(source.to_string(), e)),
        };
        let obj = &ev.data.object;
        let mut d = Decision {
            event_id: Some(ev.id.clone()),
            kind: Some(ev.kind.clone()),
            created: Some(ev.created),
            route: Route::Ignored,
            user_id: None,
            customer_id: obj.customer_id().map(str::to_owned),
            resolved_via: None,
            reason: None,
            source: source.to_string(),
            forward: None,
        };

        let earlier_run = self.store_has_events && self.store.event_seen(&ev.id)?;
        if earlier_run || !self.seen.insert(&ev.id) {
            d.route = Route::Duplicate;
            d.reason = Some(if earlier_run {
                "already processed in an earlier run (store's event log)".into()
            } else {
                "event id already seen in this run (redelivery)".into()
            });
            return self.emit(&d);
        }
        if ev.is_thin() {
            d.reason = Some(
                "thin event (v2.core.event): it carries no object snapshot to sync from; \
                 the SDKs read it with parseEventNotification, not constructEvent"
                    .into(),
            );
            return self.emit(&d);
        }

        self.snapshots
            .observe(&ev.kind, obj, &self.cfg.user_key, ev.created, seq);
        match routing::route(&ev, self.cfg) {
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
            routed => match resolve::resolve_now(routed, self.store)? {
                Resolution::Sync {
                    user,
                    customer,
                    via,
                } => {
                    d.route = Route::Sync;
                    d.user_id = Some(user.clone());
                    d.customer_id = Some(customer.clone());
                    d.resolved_via = Some(via);
                    let plan = self.plans.entry(customer).or_default();
                    if plan
                        .user_hint
                        .as_ref()
                        .is_none_or(|(_, c, s)| (ev.created, seq) >= (*c, *s))
                    {
                        plan.user_hint = Some((user, ev.created, seq));
                    }
                }
                Resolution::Pending { customer } => {
                    // Settled after all inputs are read; spooled as unresolved for now.
                    d.route = Route::Unresolved;
                    d.customer_id = Some(customer.clone());
                    self.pending.push(Pending {
                        line: self.lines,
                        customer: customer.clone(),
                    });
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
        mut forwarder,
        trace,
        interruptible,
        dry_run_fetches,
    } = plan;
    let check = |rt: &Runtime| if interruptible { rt.check() } else { Ok(()) };
    let mut timings = Vec::new();
    let mut clock = std::time::Instant::now();
    let mut lap = |name: &'static str, timings: &mut Vec<_>| {
        timings.push((name, clock.elapsed()));
        clock = std::time::Instant::now();
    };
    let spool_file =
        tempfile::tempfile().context("cannot create a temporary file for decisions")?;
    let mut errors = input_errors;
    let store_has_events = syncer.store().has_events()?;
    let mut pass = Pass {
        cfg,
        store: syncer.store(),
        store_has_events,
        seen: seen::SeenIds::default(),
        snapshots: EventSnapshots::default(),
        plans: BTreeMap::new(),
        pending: Vec::new(),
        spool: BufWriter::with_capacity(256 * 1024, spool_file),
        lines: 0,
        seq: 0,
        summary: Summary::default(),
        bar: &progress.events,
    };
    let keep_raw = forwarder.is_some();
    pass.route_all(feed, forwarder.as_mut(), &mut errors, || check(rt))?;
    progress.events.finish_and_clear();
    lap("routing", &mut timings);

    let Pass {
        mut plans,
        snapshots,
        spool,
        mut summary,
        pending,
        ..
    } = pass;
    let mut api = live.map(|client| api_source(client, rt, cfg, interruptible));
    let settled = settle_pending(
        pending,
        &snapshots,
        syncer.store(),
        api.as_mut(),
        cfg,
        &mut plans,
        &mut summary,
    )?;

    plan_described(&snapshots, &mut plans);
    lap("resolving", &mut timings);

    let deliveries = finish_deliveries(forwarder, &mut summary);
    let forwarding = keep_raw;
    summary.dry_run = syncer.mode() == Mode::DryRun;
    let jobs = jobs_of(plans);
    progress.customers.set_length(jobs.len() as u64);
    // Forwarding tests the endpoint: nothing is synced here. A live dry run
    // attempts no sync (unless asked to fetch): it says what would be synced.
    let said_only = api.is_some() && summary.dry_run && !dry_run_fetches;
    if said_only && !forwarding {
        summary.customers_synced = jobs.len() as u64;
    }
    let offline = Offline {
        snapshots: &snapshots,
        user_key: &cfg.user_key,
    };
    let results = match (forwarding || said_only, api.as_mut()) {
        (true, _) => Ok(Vec::new()),
        (false, Some(api)) => {
            syncer.sync(api, jobs, interruptible.then_some(rt), &progress.customers)
        }
        (false, None) => syncer.sync(
            &mut { offline },
            jobs,
            interruptible.then_some(rt),
            &progress.customers,
        ),
    };
    progress.customers.finish_and_clear();
    lap("syncing", &mut timings);
    let (customers, failures) = tally(results?, &mut summary, trace);
    summary.api_requests = live.map_or(0, |c| c.stats().requests);
    Ok(Finished {
        summary,
        timings,
        customers,
        errors,
        failures,
        spool,
        settled,
        deliveries,
        log_events: !forwarding && syncer.mode() == Mode::Write,
    })
}

/// The API source of `--live`; a server's requests are not abandoned at Ctrl-C.
fn api_source<'a>(
    client: &'a crate::stripe::Client,
    rt: &'a Runtime,
    cfg: &Config,
    interruptible: bool,
) -> ApiSource<'a> {
    let mut api = ApiSource::new(rt, client, &cfg.user_key, crate::commands::unix_now());
    api.interruptible = interruptible;
    api
}

/// Customers the inputs describe, even without a routed event: what the
/// store learns of them (user mapping, unmapped customers) is kept.
fn plan_described(snapshots: &EventSnapshots, plans: &mut BTreeMap<String, CustomerPlan>) {
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

/// One job per planned customer, with the routing's newest user for it.
fn jobs_of(plans: BTreeMap<String, CustomerPlan>) -> Vec<Job> {
    plans
        .into_iter()
        .map(|(customer_id, plan)| Job {
            customer_id,
            user_hint: plan.user_hint.map(|(u, _, _)| u),
        })
        .collect()
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
    pending: Vec<Pending>,
    snapshots: &EventSnapshots,
    store: &crate::store::Store,
    mut api: Option<&mut ApiSource<'_>>,
    cfg: &Config,
    plans: &mut BTreeMap<String, CustomerPlan>,
    summary: &mut Summary,
) -> Result<HashMap<u64, Settled>, SyncError> {
    use crate::sync::FetchError;
    let mut fetched: HashMap<String, Settled> = HashMap::new();
    let mut settled = HashMap::new();
    for p in pending {
        let mut outcome = resolve::resolve_later(&p.customer, snapshots, store, &cfg.user_key);
        if let (Err(_), Some(api)) = (&outcome, api.as_deref_mut())
            && !snapshots.customers.contains_key(&p.customer)
        {
            if !fetched.contains_key(&p.customer) {
                let r = match api.customer(&p.customer) {
                    Ok(info) if info.deleted => {
                        Err(format!("customer {} is deleted in Stripe", p.customer))
                    }
                    Ok(info) => info.user_id.clone().map(|u| (u, Via::Api)).ok_or_else(|| {
                        format!(
                            "customer {} has no `{}` in its metadata (fetched from the API)",
                            p.customer, cfg.user_key
                        )
                    }),
                    Err(FetchError::Customer(e)) => Err(format!("customer {}: {e}", p.customer)),
                    Err(FetchError::Fatal(e)) => return Err(SyncError::Api(e)),
                    Err(FetchError::Interrupted) => {
                        return Err(SyncError::Interrupted(crate::Fatal::Interrupted));
                    }
                };
                fetched.insert(p.customer.clone(), r);
            }
            outcome = fetched[&p.customer].clone();
        }
        if let Ok((user, _)) = &outcome {
            let plan = plans.entry(p.customer.clone()).or_default();
            if plan.user_hint.is_none() {
                plan.user_hint = Some((user.clone(), i64::MIN, 0));
            }
            summary.unresolved -= 1;
            summary.sync += 1;
        }
        settled.insert(p.line, outcome);
    }
    Ok(settled)
}

impl Finished {
    /// Stream every decision, in input order, to `out`; the event log is
    /// written as they pass (into `syncer`'s store, on a real run). An error
    /// of `out` does not cut the event log short: `out` decides what to keep.
    pub(crate) fn stream(
        &mut self,
        syncer: &mut Syncer,
        mut out: impl FnMut(Line) -> anyhow::Result<()>,
    ) -> Result<(), SyncError> {
        let spool = std::mem::replace(
            &mut self.spool,
            BufWriter::new(tempfile::tempfile().context("cannot create a temporary file")?),
        );
        let mut file = spool
            .into_inner()
            .map_err(|e| anyhow::Error::new(e.into_error()))?;
        file.rewind().context("cannot read back the decisions")?;
        let reader = BufReader::with_capacity(256 * 1024, file);
        let failed: HashSet<String> = self
            .failures
            .iter()
            .map(|f| f.customer_id.clone())
            .collect();
        let mut log = self.log_events.then_some(log::EventLog {
            syncer,
            batch: Vec::new(),
            failed,
        });
        for (i, line) in reader.lines().enumerate() {
            let line = line.context("cannot read back the decisions")?;
            let settled = self.settled.get(&(i as u64));
            let delivery = self.deliveries.get(&(i as u64));
            if settled.is_none() && delivery.is_none() {
                if let Some(log) = log.as_mut() {
                    let view: log::LogView<'_> =
                        serde_json::from_str(&line).context("spooled decision")?;
                    log.record(&view)?;
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
                log.record(&log::LogView::from(&d))?;
            }
            out(Line::Settled(Box::new(d)))?;
        }
        if let Some(log) = log.as_mut() {
            log.flush()?;
        }
        Ok(())
    }
}
