//! `stripe-sync replay [INPUT]...`: route events, resolve users, sync each
//! routed customer once, after all inputs are read.
//!
//! Memory stays flat in the number of events: decisions are spooled to an
//! anonymous temp file and printed at the end (so events resolved by later
//! inputs still print in input order); only per-customer and
//! per-subscription state, and the ids seen, are kept.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::Status;
use crate::cli::ReplayArgs;
use crate::config::Config;
use crate::event::{self, Source};
use crate::forward;
use crate::output::{self, Printer};
use crate::parallel;
use crate::resolve::{self, Resolution};
use crate::routing::{self, Route, Routed, Via};
use crate::store::{self, LoggedEvent, Store};
use crate::sync::{self, EventSnapshots};

/// Customers written per transaction: whole customers only, so a crash
/// never leaves half of one; batching saves rewriting the same pages.
const WRITE_BATCH: usize = 1000;

/// One event's decision (SPEC.md field names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Decision {
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
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub events: u64,
    pub sync: u64,
    pub ignored: u64,
    pub rejected: u64,
    pub unresolved: u64,
    pub duplicate: u64,
    pub invalid: u64,
    pub customers_synced: u64,
    pub sync_failures: u64,
    pub api_requests: u64,
    /// With --forward-to: deliveries answered 2xx, and the others.
    pub forwarded: u64,
    pub forward_failures: u64,
}

impl Summary {
    fn count(&mut self, route: Route) {
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
pub struct InputError {
    pub source: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncFailure {
    pub customer_id: String,
    pub error: String,
}

/// Per-customer plan: who the routing says the user is.
#[derive(Debug, Default)]
struct CustomerPlan {
    user_hint: Option<(String, i64, u64)>,
}

struct Pending {
    line: u64,
    customer: String,
}

/// Event ids seen in this run, as 128-bit keyed hashes: 16 bytes an event
/// instead of ~80 for the strings, so a 1 GB input stays well under 100 MB.
/// With random keys a false "duplicate" needs a 128-bit collision (about
/// 1e-28 for a million events), not something an input can aim for.
#[derive(Default)]
struct SeenIds {
    keys: (
        std::collections::hash_map::RandomState,
        std::collections::hash_map::RandomState,
    ),
    set: HashSet<u128>,
}

impl SeenIds {
    fn insert(&mut self, id: &str) -> bool {
        use std::hash::BuildHasher;
        let hi = u128::from(self.keys.0.hash_one(id));
        let lo = u128::from(self.keys.1.hash_one(id));
        self.set.insert((hi << 64) | lo)
    }
}

/// The routing pass over every input.
struct Pass<'a> {
    cfg: &'a Config,
    store: Option<&'a Store>,
    /// Whether the store has logged any event (a fresh one skips the lookups).
    store_has_events: bool,
    seen: SeenIds,
    snapshots: EventSnapshots,
    plans: BTreeMap<String, CustomerPlan>,
    pending: Vec<Pending>,
    spool: BufWriter<std::fs::File>,
    lines: u64,
    seq: u64,
    summary: Summary,
    errors: Vec<InputError>,
    bar: indicatif::ProgressBar,
    forwarder: Option<forward::Forwarder>,
}

impl Pass<'_> {
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

    fn item(
        &mut self,
        source: Source,
        parsed: Result<event::Event, String>,
        raw: Option<String>,
    ) -> anyhow::Result<()> {
        // Every event is delivered, duplicates too: Stripe redelivers them.
        if let (Some(fwd), Ok(_), Some(raw)) = (self.forwarder.as_mut(), &parsed, raw) {
            fwd.send(self.lines, raw);
        }
        self.seq += 1;
        let seq = self.seq;
        let src = source.to_string();
        let invalid = |reason: String| Decision {
            event_id: None,
            kind: None,
            created: None,
            route: Route::Invalid,
            user_id: None,
            customer_id: None,
            resolved_via: None,
            reason: Some(reason),
            source: src.clone(),
            forward: None,
        };
        let ev = match parsed {
            Ok(ev) => ev,
            Err(e) => return self.emit(&invalid(e)),
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
            source: src,
            forward: None,
        };

        let earlier_run = match self.store {
            Some(s) if self.store_has_events => s.event_seen(&ev.id)?,
            _ => false,
        };
        if earlier_run || !self.seen.insert(&ev.id) {
            d.route = Route::Duplicate;
            d.reason = Some(if earlier_run {
                "already processed in an earlier run (store's event log)".into()
            } else {
                "event id already seen in this run (redelivery)".into()
            });
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
                    let plan = self.plans.entry(customer.clone()).or_default();
                    if plan
                        .user_hint
                        .as_ref()
                        .is_none_or(|(_, c, s)| (ev.created, seq) >= (*c, *s))
                    {
                        plan.user_hint = Some((user, ev.created, seq));
                    }
                }
                Resolution::Pending { customer } => {
                    // Decided after all inputs are read; spooled as unresolved for now.
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

pub fn run(
    args: &ReplayArgs,
    global: &crate::cli::GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<Status> {
    if args.inputs.is_empty() {
        return Err(crate::usage(
            "no INPUT: name event files, directories or globs (or - for stdin), e.g. `stripe-sync replay fixtures/`",
        ));
    }
    let cfg = Config::load(global.config.as_deref())?.with_user_key(args.user_key.as_deref());
    // --live: customers come from the API, checked before any input is read.
    let live = match args.live {
        true => {
            let (client, _) = super::api_client(&args.api, &cfg, printer)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            Some((client, rt))
        }
        false => None,
    };
    let db = store::db_path(global.db.as_deref());

    let forwarder = match &args.forward_to {
        Some(url) => Some(forward::Forwarder::new(forward_settings(
            args, url, printer,
        )?)?),
        None => None,
    };
    // Dry runs read an existing store (for `store` resolution and duplicates)
    // and write nothing; so does forwarding, where the endpoint is under test.
    let no_writes = args.dry_run || forwarder.is_some();
    let mut store = if no_writes {
        Store::open_read_only(&db)?
    } else {
        Some(Store::open(&db)?)
    };

    let (inputs, expand_errors) = event::expand(&args.inputs);
    if inputs.contains(&event::Input::Stdin) && std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        return Err(crate::usage(
            "INPUT - reads events from stdin, which is a terminal: pipe them in, or name files",
        ));
    }
    let spool_file =
        tempfile::tempfile().context("cannot create a temporary file for decisions")?;
    let bar = printer.progress(None, "{spinner} {pos} events  {per_sec}  {elapsed}");
    let mut pass = Pass {
        cfg: &cfg,
        store: store.as_ref(),
        store_has_events: match &store {
            Some(s) => s.has_events()?,
            None => false,
        },
        seen: SeenIds::default(),
        snapshots: EventSnapshots::default(),
        plans: BTreeMap::new(),
        pending: Vec::new(),
        spool: BufWriter::with_capacity(256 * 1024, spool_file),
        lines: 0,
        seq: 0,
        summary: Summary::default(),
        errors: expand_errors
            .into_iter()
            .map(|(source, message)| InputError { source, message })
            .collect(),
        bar,
        forwarder,
    };

    let started = std::time::Instant::now();
    let keep_raw = pass.forwarder.is_some();
    for unit in parallel::parse_inputs(&inputs, keep_raw) {
        match unit {
            parallel::Unit::Item(source, parsed, raw) => pass.item(source, parsed, raw)?,
            parallel::Unit::FileError(source, message) => {
                pass.errors.push(InputError { source, message })
            }
        }
    }
    pass.bar.finish_and_clear();
    printer.verbose(&format!(
        "routed {} events from {} inputs in {:.2} s",
        pass.summary.events,
        inputs.len(),
        started.elapsed().as_secs_f64()
    ));

    // Resolve what waited for the whole input: customer objects anywhere in
    // it, else (--live) the customer fetched from the API, once per customer.
    let mut api = live.as_ref().map(|(client, rt)| sync::ApiSource {
        rt,
        client,
        user_key: cfg.user_key.clone(),
        now: super::unix_now(),
        known: HashSet::new(),
        prefetched: HashMap::new(),
        deleted: Vec::new(),
        fatal: None,
    });
    let mut fetched: HashMap<String, Result<(String, Via), String>> = HashMap::new();
    let mut patches: HashMap<u64, Result<(String, Via), String>> = HashMap::new();
    for p in std::mem::take(&mut pass.pending) {
        let mut outcome = resolve::resolve_later(&p.customer, &pass.snapshots, &cfg.user_key);
        if let (Err(_), Some(api)) = (&outcome, api.as_mut())
            && !pass.snapshots.customers.contains_key(&p.customer)
        {
            outcome = fetched
                .entry(p.customer.clone())
                .or_insert_with(|| match api.customer(&p.customer) {
                    Ok(Some(info)) => {
                        let user = info.user_id.clone();
                        api.prefetched.insert(p.customer.clone(), info);
                        user.map(|u| (u, Via::Api)).ok_or_else(|| {
                            format!(
                                "customer {} has no `{}` in its metadata (fetched from the API)",
                                p.customer, cfg.user_key
                            )
                        })
                    }
                    Ok(None) => Err(format!("customer {} is deleted in Stripe", p.customer)),
                    Err(e) => Err(format!("customer {}: {e:#}", p.customer)),
                })
                .clone();
        }
        if let Some(e) = api.as_mut().and_then(|a| a.fatal.take()) {
            return Err(anyhow::Error::new(e));
        }
        if let Ok((user, _)) = &outcome {
            let plan = pass.plans.entry(p.customer.clone()).or_default();
            if plan.user_hint.is_none() {
                plan.user_hint = Some((user.clone(), i64::MIN, 0));
            }
            pass.summary.unresolved -= 1;
            pass.summary.sync += 1;
        }
        patches.insert(p.line, outcome);
    }

    // Customers the inputs describe, even without a routed event: what the
    // store learns of them (user mapping, unmapped customers) is kept.
    let extra: Vec<String> = pass
        .snapshots
        .customer_ids()
        .filter(|c| !pass.plans.contains_key(*c))
        .cloned()
        .collect();
    for c in extra {
        pass.plans.entry(c).or_default();
    }

    let Pass {
        plans,
        mut snapshots,
        spool,
        mut summary,
        errors,
        forwarder,
        ..
    } = pass;
    let forwarding = forwarder.is_some();
    let deliveries = forwarder
        .map(forward::Forwarder::finish)
        .unwrap_or_default();
    for d in deliveries.values() {
        if d.ok() {
            summary.forwarded += 1;
        } else {
            summary.forward_failures += 1;
        }
    }
    let mut failures = Vec::new();
    let total = plans.len() as u64;
    let bar = printer.progress(Some(total), "{bar:30} {pos}/{len} customers  {elapsed}");
    match store.as_mut().filter(|_| !no_writes) {
        Some(store) => {
            let mut jobs = plans.into_iter().map(|(customer_id, plan)| sync::Job {
                customer_id,
                user_hint: plan.user_hint.map(|(u, _, _)| u),
                events: Vec::new(),
            });
            loop {
                let chunk: Vec<sync::Job> = jobs.by_ref().take(WRITE_BATCH).collect();
                if chunk.is_empty() {
                    break;
                }
                let n = chunk.len() as u64;
                let results = match api.as_mut() {
                    Some(api) => {
                        for job in &chunk {
                            if store.customer_known(&job.customer_id)? {
                                api.known.insert(job.customer_id.clone());
                            }
                        }
                        let r = sync::sync_batch(store, api, chunk, &cfg.user_key, false)?;
                        if let Some(e) = api.fatal.take() {
                            return Err(anyhow::Error::new(e));
                        }
                        r
                    }
                    None => sync::sync_batch(store, &mut snapshots, chunk, &cfg.user_key, false)?,
                };
                for (customer, result) in results {
                    match result {
                        Ok(_) => summary.customers_synced += 1,
                        Err(e) => {
                            printer.error(&format!("customer {customer}: sync failed: {e}"));
                            failures.push(SyncFailure {
                                customer_id: customer,
                                error: e,
                            });
                            summary.sync_failures += 1;
                        }
                    }
                }
                bar.inc(n);
            }
        }
        None if forwarding => {}
        None => summary.customers_synced = total,
    }
    if let Some(api) = &mut api {
        for c in std::mem::take(&mut api.deleted) {
            if let Some(store) = store.as_mut().filter(|_| !no_writes) {
                store.mark_deleted(&c)?;
            }
        }
    }
    summary.api_requests = live
        .as_ref()
        .map_or(0, |(client, _)| client.stats().requests);
    bar.finish_and_clear();
    printer.verbose(&format!(
        "synced {} customers ({} s since start)",
        summary.customers_synced,
        started.elapsed().as_secs_f64()
    ));

    // The event log is written last, from the spool: an event is marked
    // processed only once its customer is committed, so a crash before this
    // point means rework on the next run, never a lost event.
    let failed: HashSet<&str> = failures.iter().map(|f| f.customer_id.as_str()).collect();
    let mut log = store.as_mut().filter(|_| !no_writes).map(|s| EventLog {
        store: s,
        batch: Vec::new(),
        failed: &failed,
    });
    let outputs = Outputs {
        patches: &patches,
        deliveries: &deliveries,
        summary: &summary,
        errors: &errors,
        failures: &failures,
    };
    let printed = print(printer, spool, &outputs, log.as_mut());
    if let Some(log) = log.as_mut() {
        log.flush()?;
    }
    printed?;

    for e in &errors {
        printer.error(&e.message);
    }
    let status = if !errors.is_empty() || summary.invalid > 0 {
        Status::Failure
    } else {
        Status::from_problems(
            summary.rejected > 0
                || summary.sync_failures > 0
                || summary.forward_failures > 0
                || (args.strict && summary.unresolved > 0),
        )
    };
    Ok(status)
}

/// `--forward-to` options, checked before any input is read.
fn forward_settings(
    args: &ReplayArgs,
    url: &str,
    printer: &Printer,
) -> anyhow::Result<forward::Settings> {
    let url = forward::check_url(url, args.allow_remote).map_err(crate::usage)?;
    let secret = match &args.secret {
        Some(s) if !s.is_blank() => s.clone(),
        Some(_) => return Err(crate::usage("the webhook secret for --forward-to is blank")),
        None => printer.ask_secret("Endpoint signing secret (whsec_...)").ok_or_else(|| {
            crate::usage(
                "--forward-to needs the endpoint's signing secret: pass --secret whsec_... or set STRIPE_WEBHOOK_SECRET",
            )
        })?,
    };
    if args.concurrency == 0 {
        return Err(crate::usage("--concurrency must be at least 1"));
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(crate::usage(
            "--timeout must be a positive number of seconds",
        ));
    }
    let mut headers = reqwest::header::HeaderMap::new();
    for raw in &args.headers {
        let (name, value) = forward::parse_header(raw).map_err(crate::usage)?;
        headers.append(name, value);
    }
    Ok(forward::Settings {
        url,
        secret,
        concurrency: args.concurrency,
        timeout: std::time::Duration::from_secs_f64(args.timeout),
        headers,
        delay: std::time::Duration::from_millis(args.delay),
    })
}

/// The fields of a spooled decision the event log needs, borrowed from the
/// line: cheaper than a whole `Decision` when the line is printed as is.
#[derive(Deserialize)]
struct LogView<'a> {
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

/// Writes processed events to the store's log in large transactions.
struct EventLog<'a> {
    store: &'a mut Store,
    batch: Vec<LoggedEvent>,
    failed: &'a HashSet<&'a str>,
}

impl EventLog<'_> {
    fn record(&mut self, d: &Decision) -> anyhow::Result<()> {
        self.record_view(&LogView {
            event_id: d.event_id.as_deref().map(Cow::Borrowed),
            kind: d.kind.as_deref().map(Cow::Borrowed),
            created: d.created,
            route: d.route,
            user_id: d.user_id.as_deref().map(Cow::Borrowed),
            customer_id: d.customer_id.as_deref().map(Cow::Borrowed),
        })
    }

    fn record_view(&mut self, d: &LogView<'_>) -> anyhow::Result<()> {
        let route = match d.route {
            Route::Sync => "sync",
            Route::Ignored => "ignored",
            // Rejected and unresolved events may succeed on a later run; the
            // rest are not events, or were logged already.
            _ => return Ok(()),
        };
        // A customer whose sync failed gets its events again next time.
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
        self.batch.push(LoggedEvent {
            id: id.to_string(),
            kind: kind.to_string(),
            created,
            route,
            user_id: d.user_id.as_deref().map(str::to_owned),
            customer_id: d.customer_id.as_deref().map(str::to_owned),
        });
        if self.batch.len() >= 20_000 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        // Sorted, the random ids land in the B-tree page by page.
        self.batch.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        self.store
            .log_events(&self.batch)
            .context("cannot write the event log")?;
        self.batch.clear();
        Ok(())
    }
}

fn patch(d: &mut Decision, outcome: &Result<(String, Via), String>) {
    match outcome {
        Ok((user, via)) => {
            d.route = Route::Sync;
            d.user_id = Some(user.clone());
            d.resolved_via = Some(*via);
            d.reason = None;
        }
        Err(reason) => d.reason = Some(reason.clone()),
    }
}

/// What the final pass merges into the spooled decisions.
struct Outputs<'a> {
    patches: &'a HashMap<u64, Result<(String, Via), String>>,
    deliveries: &'a HashMap<u64, forward::Delivery>,
    summary: &'a Summary,
    errors: &'a [InputError],
    failures: &'a [SyncFailure],
}

fn print(
    printer: &Printer,
    spool: BufWriter<std::fs::File>,
    o: &Outputs<'_>,
    mut log: Option<&mut EventLog<'_>>,
) -> anyhow::Result<()> {
    let Outputs {
        patches,
        deliveries,
        summary,
        errors,
        failures,
    } = *o;
    let mut file = spool.into_inner().map_err(|e| e.into_error())?;
    file.rewind()?;
    let reader = BufReader::with_capacity(256 * 1024, file);
    // A reader that goes away (`| head`) must not cut the event log short:
    // output errors are held until every decision has been logged.
    let mut out = Tolerant {
        inner: printer.stdout_writer(),
        error: None,
    };
    if printer.json {
        out.write_all(b"{\"events\":[")?;
    } else {
        writeln!(out, "{}", table_line(&HEADER.map(String::from)))?;
    }
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        let patched = patches.get(&(i as u64));
        let delivery = deliveries.get(&(i as u64));
        let unchanged = patched.is_none() && delivery.is_none();
        if printer.json {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(b"\n")?;
            if unchanged {
                if let Some(log) = log.as_deref_mut() {
                    log.record_view(&serde_json::from_str(&line)?)?;
                }
                out.write_all(line.as_bytes())?;
                continue;
            }
        }
        let mut d: Decision = serde_json::from_str(&line)?;
        if let Some(p) = patched {
            patch(&mut d, p);
        }
        d.forward = delivery.cloned();
        if let Some(log) = log.as_deref_mut() {
            log.record(&d)?;
        }
        if printer.json {
            serde_json::to_writer(&mut out, &d)?;
        } else {
            writeln!(out, "{}", human_row(&d, printer))?;
        }
    }
    if printer.json {
        #[derive(Serialize)]
        struct Tail<'a> {
            summary: &'a Summary,
            errors: &'a [InputError],
            sync_failures: &'a [SyncFailure],
        }
        let tail = serde_json::to_string(&Tail {
            summary,
            errors,
            sync_failures: failures,
        })?;
        // `tail` is `{...}`: splice its fields after the events array.
        write!(out, "\n],{}\n", &tail[1..])?;
    } else {
        writeln!(
            out,
            "\n{} events: {} sync, {} ignored, {} rejected, {} unresolved, {} duplicate, {} invalid; {} customers synced, {} failed{}",
            summary.events,
            summary.sync,
            summary.ignored,
            summary.rejected,
            summary.unresolved,
            summary.duplicate,
            summary.invalid,
            summary.customers_synced,
            summary.sync_failures,
            if deliveries.is_empty() {
                String::new()
            } else {
                format!(
                    "; forwarded {} (2xx), {} failed",
                    summary.forwarded, summary.forward_failures
                )
            }
        )?;
    }
    out.flush()?;
    match out.error.take() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// A writer that keeps the first error and swallows the rest.
struct Tolerant<W: Write> {
    inner: W,
    error: Option<std::io::Error>,
}

impl<W: Write> Write for Tolerant<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.error.is_none()
            && let Err(e) = self.inner.write_all(buf)
        {
            self.error = Some(e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.error.is_none()
            && let Err(e) = self.inner.flush()
        {
            self.error = Some(e);
        }
        Ok(())
    }
}

const HEADER: [&str; 7] = [
    "EVENT",
    "TYPE",
    "ROUTE",
    "USER",
    "CUSTOMER",
    "VIA",
    "REASON / SOURCE",
];
const WIDTHS: [usize; 6] = [30, 44, 10, 34, 20, 21];

fn fit(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        format!("{s:<width$}")
    } else {
        let cut: String = s.chars().take(width - 1).collect();
        format!("{cut}…")
    }
}

fn table_line(cells: &[String; 7]) -> String {
    let mut line = String::with_capacity(200);
    for (cell, w) in cells.iter().zip(WIDTHS) {
        line.push_str(&fit(cell, w));
        line.push(' ');
    }
    line.push_str(&cells[6]);
    line.trim_end().to_owned()
}

fn human_row(d: &Decision, printer: &Printer) -> String {
    let esc = |s: &Option<String>| {
        s.as_deref()
            .map(|v| output::escape_text(v).into_owned())
            .unwrap_or_else(|| "-".into())
    };
    let mut note = match &d.reason {
        Some(r) if d.route != Route::Sync => format!("{} ({})", output::escape_text(r), d.source),
        _ => d.source.clone(),
    };
    if let Some(f) = &d.forward {
        let answer = match (f.status, &f.error) {
            (Some(s), _) => format!("→ {s} in {} ms", f.ms),
            (None, Some(e)) => format!("→ failed: {}", output::escape_text(e)),
            (None, None) => "→ no answer".into(),
        };
        note = format!("{answer} · {note}");
    }
    let row = table_line(&[
        esc(&d.event_id),
        esc(&d.kind),
        d.route.as_str().to_owned(),
        esc(&d.user_id),
        esc(&d.customer_id),
        d.resolved_via
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| "-".into()),
        note,
    ]);
    let style = match d.route {
        Route::Sync => None,
        Route::Rejected | Route::Invalid => Some(output::RED),
        Route::Unresolved => Some(output::YELLOW),
        Route::Ignored | Route::Duplicate => Some(output::DIM),
    };
    match style {
        Some(s) => printer.paint(&row, s).into_owned(),
        None => row,
    }
}
