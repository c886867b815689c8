//! `stripe-sync resync`: the truth from the Stripe API, into the store (or
//! compared with it, `--check`). GET requests only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::{GlobalArgs, ResyncArgs};
use crate::config::Config;
use crate::objects::{StripeObject, SubscriptionRecord, metadata_str};
use crate::output::{self, Printer};
use crate::store::{
    self, CustomerInfo, CustomerWrite, MappingRow, RecordSource, Store, WriteOutcome,
};
use crate::stripe::{ApiError, Client, KeyMode};
use crate::sync::{self, ApiSource, Job};
use crate::{Fatal, Status};

#[derive(Debug, Clone, Serialize)]
pub struct CustomerReport {
    pub customer_id: Option<String>,
    pub user_id: Option<String>,
    pub status: Option<String>,
    pub changed: bool,
    pub error: Option<String>,
    pub diff: Option<Value>,
    /// Not in the store before (an addition to SPEC.md's fields).
    pub new: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub customers: u64,
    pub changed: u64,
    pub failed: u64,
    pub api_requests: u64,
    pub retries: u64,
    pub elapsed_ms: u64,
}

#[derive(Serialize)]
struct Report<'a> {
    customers: &'a [CustomerReport],
    summary: &'a Summary,
}

pub fn run(args: &ResyncArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Status> {
    if !args.all && args.users.is_empty() && args.customers.is_empty() {
        return Err(crate::usage(
            "nothing to resync: pass --user ID, --customer ID (both repeatable) or --all",
        ));
    }
    let started = Instant::now();
    let cfg = Config::load(global.config.as_deref())?.with_user_key(args.user_key.as_deref());
    let (client, mode) = super::api_client(&args.api, &cfg, printer)?;
    if args.all && mode == KeyMode::Live && !args.yes {
        match printer
            .confirm("Backfill every customer of this LIVE Stripe account (GET requests only)?")
        {
            Some(true) => {}
            Some(false) => return Err(crate::usage("backfill cancelled")),
            None => {
                return Err(crate::usage(
                    "--all on a live key needs confirmation: pass --yes (no terminal to ask on)",
                ));
            }
        }
    }
    let db = store::db_path(global.db.as_deref());
    let mut store = if args.check {
        // Nothing is written: compare against the store if there is one.
        match Store::open_snapshot(&db)? {
            Some(s) => s,
            None => Store::in_memory()?,
        }
    } else {
        Store::open(&db)?
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let reports = if args.all {
        backfill(&rt, &client, &mut store, &cfg, args, printer)?
    } else {
        targeted(&rt, &client, &mut store, &cfg, args, printer)?
    };

    let stats = client.stats();
    let summary = Summary {
        customers: reports.iter().filter(|r| r.customer_id.is_some()).count() as u64,
        changed: reports.iter().filter(|r| r.changed).count() as u64,
        failed: reports.iter().filter(|r| r.error.is_some()).count() as u64,
        api_requests: stats.requests,
        retries: stats.retries,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    if printer.json {
        printer.out_json(&Report {
            customers: &reports,
            summary: &summary,
        })?;
    } else {
        printer.out(&human(&reports, &summary, args.check))?;
    }
    let drift = args.check && summary.changed > 0;
    Ok(Status::from_problems(summary.failed > 0 || drift))
}

/// The fields a user sees in the mapping, for drift reports.
fn diff(before: Option<&MappingRow>, after: Option<&MappingRow>) -> Option<Value> {
    let fields = |r: Option<&MappingRow>| -> BTreeMap<&'static str, Value> {
        let Some(r) = r else { return BTreeMap::new() };
        BTreeMap::from([
            ("user_id", json!(r.user_id)),
            ("email", json!(r.email)),
            ("subscription_id", json!(r.subscription_id)),
            ("status", json!(r.status)),
            ("price_id", json!(r.price_id)),
            ("current_period_start", json!(r.current_period_start)),
            ("current_period_end", json!(r.current_period_end)),
            ("cancel_at_period_end", json!(r.cancel_at_period_end)),
            ("payment_method", json!(r.payment_method)),
            ("deleted", json!(r.deleted)),
        ])
    };
    let (b, a) = (fields(before), fields(after));
    let mut out = serde_json::Map::new();
    for key in b.keys().chain(a.keys()).collect::<BTreeSet<_>>() {
        let (old, new) = (
            b.get(key).unwrap_or(&Value::Null),
            a.get(key).unwrap_or(&Value::Null),
        );
        if old != new {
            out.insert((*key).to_owned(), json!({"store": old, "stripe": new}));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn report(customer: &str, outcome: Result<&WriteOutcome, String>) -> CustomerReport {
    match outcome {
        Ok(o) => CustomerReport {
            customer_id: Some(customer.to_owned()),
            user_id: o.after.as_ref().and_then(|r| r.user_id.clone()),
            status: o.after.as_ref().map(|r| r.status.clone()),
            changed: o.changed,
            error: None,
            // A customer new to the store has no earlier state to differ from.
            diff: if o.changed && o.before.is_some() {
                diff(o.before.as_ref(), o.after.as_ref())
            } else {
                None
            },
            new: o.before.is_none(),
        },
        Err(e) => CustomerReport {
            customer_id: Some(customer.to_owned()),
            user_id: None,
            status: None,
            changed: false,
            error: Some(e),
            diff: None,
            new: false,
        },
    }
}

/// A refused key stops the whole run with status 2.
fn fatal_api(e: ApiError) -> anyhow::Error {
    anyhow::Error::new(e)
}

/// `--customer` and `--user`: one request per customer (plus the customer
/// object when the store does not know it, plus search for unknown users).
fn targeted(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    store: &mut Store,
    cfg: &Config,
    args: &ResyncArgs,
    printer: &Printer,
) -> anyhow::Result<Vec<CustomerReport>> {
    let mut reports = Vec::new();
    let mut order: Vec<String> = Vec::new();
    let mut prefetched: HashMap<String, CustomerInfo> = HashMap::new();
    let now = super::unix_now();
    let push = |c: String, order: &mut Vec<String>| {
        if !order.contains(&c) {
            order.push(c);
        }
    };
    for c in &args.customers {
        push(c.clone(), &mut order);
    }
    for user in &args.users {
        let mut found = store.customers_of_user(user)?;
        if found.is_empty() {
            found = match rt.block_on(client.search_customers_by_metadata(&cfg.user_key, user)) {
                Ok(objects) => remember(objects, &cfg.user_key, now, &mut prefetched),
                Err(e) if e.is_auth() => return Err(fatal_api(e)),
                Err(e) => {
                    printer.warn(&format!(
                        "customer search failed ({e}); scanning all customers for user {}",
                        output::escape_text(user)
                    ));
                    let all = scan_customers(rt, client)?;
                    let matching = all
                        .into_iter()
                        .filter(|o| {
                            metadata_str(o.metadata.as_ref(), &cfg.user_key) == Some(user.as_str())
                        })
                        .collect();
                    remember(matching, &cfg.user_key, now, &mut prefetched)
                }
            };
        }
        if found.len() > 1 {
            printer.warn(&format!(
                "user {} has {} customers ({}): duplicate customers, all are synced",
                output::escape_text(user),
                found.len(),
                found.join(", ")
            ));
        }
        if found.is_empty() {
            reports.push(CustomerReport {
                customer_id: None,
                user_id: Some(user.clone()),
                status: None,
                changed: false,
                error: Some(format!(
                    "no customer for user {user}: none in the store, and no customer with metadata['{}'] = '{user}' in Stripe",
                    cfg.user_key
                )),
                diff: None,
                new: false,
            });
        }
        for c in found {
            push(c, &mut order);
        }
    }

    let mut known = HashSet::new();
    for c in &order {
        if store.customer_known(c)? {
            known.insert(c.clone());
        }
    }
    let mut source = ApiSource {
        rt,
        client,
        user_key: cfg.user_key.clone(),
        now,
        known,
        prefetched,
        deleted: Vec::new(),
        fatal: None,
    };
    let jobs = order
        .iter()
        .map(|c| Job {
            customer_id: c.clone(),
            user_hint: None,
            events: Vec::new(),
        })
        .collect();
    let results = sync::sync_batch(store, &mut source, jobs, &cfg.user_key, args.check)?;
    if let Some(e) = source.fatal.take() {
        return Err(fatal_api(e));
    }
    let mut by_customer: HashMap<String, Result<WriteOutcome, String>> =
        results.into_iter().collect();
    for c in &order {
        let Some(outcome) = by_customer.remove(c) else {
            continue;
        };
        let mut r = report(c, outcome.as_ref().map_err(|e| e.clone()));
        if let Some(e) = &r.error {
            printer.error(&format!("customer {c}: {e}"));
        }
        if source.deleted.contains(c) {
            let was_deleted = outcome
                .as_ref()
                .ok()
                .and_then(|o| o.before.as_ref())
                .is_some_and(|b| b.deleted);
            if !args.check {
                store.mark_deleted(c)?;
            }
            if !was_deleted {
                r.changed = true;
                r.diff = Some(json!({"deleted": {"store": false, "stripe": true}}));
            }
        }
        reports.push(r);
    }
    Ok(reports)
}

/// Customer ids of search or scan results, with their objects kept.
fn remember(
    objects: Vec<StripeObject>,
    user_key: &str,
    now: i64,
    prefetched: &mut HashMap<String, CustomerInfo>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for o in objects {
        if let Some(id) = o.id.clone() {
            prefetched.insert(id.clone(), sync::customer_info(&o, user_key, now, false));
            ids.push(id);
        }
    }
    ids.sort();
    ids
}

fn scan_customers(
    rt: &tokio::runtime::Runtime,
    client: &Client,
) -> anyhow::Result<Vec<StripeObject>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = rt
            .block_on(client.list_customers(after.as_deref()))
            .map_err(fatal_api)?;
        let last = page.data.last().and_then(|o| o.id.clone());
        let more = page.has_more;
        all.extend(page.data);
        match (more, last) {
            (true, Some(l)) => after = Some(l),
            _ => return Ok(all),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Customers,
    Subscriptions,
}

impl Kind {
    fn cursor_key(self) -> &'static str {
        match self {
            Kind::Customers => "backfill.customers_cursor",
            Kind::Subscriptions => "backfill.subscriptions_cursor",
        }
    }
    fn done_key(self) -> &'static str {
        match self {
            Kind::Customers => "backfill.customers_done",
            Kind::Subscriptions => "backfill.subscriptions_done",
        }
    }
}

struct Page {
    kind: Kind,
    objects: Vec<StripeObject>,
    last: Option<String>,
    has_more: bool,
}

const STARTED_KEY: &str = "backfill.started_at";

/// `--all`: page customers and subscriptions (100 a page, both at once),
/// write each page with its cursor in one transaction (an interrupted run
/// resumes there), then mark customers Stripe no longer has as deleted.
fn backfill(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    store: &mut Store,
    cfg: &Config,
    args: &ResyncArgs,
    printer: &Printer,
) -> anyhow::Result<Vec<CustomerReport>> {
    let check = args.check;
    if !check && args.restart {
        for k in [Kind::Customers, Kind::Subscriptions] {
            store.set_state(k.cursor_key(), None)?;
            store.set_state(k.done_key(), None)?;
        }
        store.set_state(STARTED_KEY, None)?;
    }
    let resuming = !check && store.get_state(STARTED_KEY)?.is_some();
    let now = super::unix_now();
    if !check && !resuming {
        store.backfill_reset()?;
        store.set_state(STARTED_KEY, Some(&now.to_string()))?;
    }
    if resuming {
        printer.info("resuming the interrupted backfill (pass --restart to start over)");
    }
    // A resumed run keeps the first run's snapshot time, so both halves agree.
    let snapshot_at: i64 = if resuming {
        store
            .get_state(STARTED_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(now)
    } else {
        now
    };
    let mut start: Vec<(Kind, Option<String>)> = Vec::new();
    for kind in [Kind::Customers, Kind::Subscriptions] {
        let done = !check && store.get_state(kind.done_key())?.is_some();
        if !done {
            let cursor = if check {
                None
            } else {
                store.get_state(kind.cursor_key())?
            };
            start.push((kind, cursor));
        }
    }

    let bar = printer.progress(None, "{spinner} {msg} {elapsed}");
    let mut counts: HashMap<Kind, (u64, u64)> = HashMap::new();
    // Each customer's mapping before its first write in this run.
    let mut outcomes: BTreeMap<String, Option<MappingRow>> = BTreeMap::new();
    // --check collects everything, then compares in one rolled-back transaction.
    let mut seen_customers: Vec<StripeObject> = Vec::new();
    let mut seen_subs: Vec<StripeObject> = Vec::new();
    let user_key = cfg.user_key.clone();

    let result: anyhow::Result<()> = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Page, ApiError>>(4);
        for (kind, cursor) in start {
            let tx = tx.clone();
            let client = client.clone();
            tokio::spawn(async move {
                let mut after = cursor;
                loop {
                    let page = match kind {
                        Kind::Customers => client.list_customers(after.as_deref()).await,
                        Kind::Subscriptions => client.list_subscriptions(after.as_deref()).await,
                    };
                    let page = match page {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let last = page.data.last().and_then(|o| o.id.clone());
                    let has_more = page.has_more && last.is_some();
                    let msg = Page {
                        kind,
                        objects: page.data,
                        last: last.clone(),
                        has_more,
                    };
                    if tx.send(Ok(msg)).await.is_err() || !has_more {
                        return;
                    }
                    after = last;
                }
            });
        }
        drop(tx);
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let page = tokio::select! {
                biased;
                _ = &mut ctrl_c => return Err(Fatal::Interrupted.into()),
                page = rx.recv() => page,
            };
            let Some(page) = page else { return Ok(()) };
            let page = page.map_err(fatal_api)?;
            let entry = counts.entry(page.kind).or_default();
            entry.0 += page.objects.len() as u64;
            entry.1 += 1;
            if check {
                match page.kind {
                    Kind::Customers => seen_customers.extend(page.objects),
                    Kind::Subscriptions => seen_subs.extend(page.objects),
                }
            } else {
                write_page(store, &page, &user_key, snapshot_at, &mut outcomes)?;
            }
            let stats = client.stats();
            let c = counts.get(&Kind::Customers).copied().unwrap_or_default();
            let s = counts
                .get(&Kind::Subscriptions)
                .copied()
                .unwrap_or_default();
            bar.set_message(format!(
                "{} customers ({} pages), {} subscriptions ({} pages), {} requests, {} retries",
                c.0, c.1, s.0, s.1, stats.requests, stats.retries
            ));
        }
    });
    bar.finish_and_clear();
    result?;

    if check {
        return compare_all(store, seen_customers, seen_subs, &user_key, now);
    }
    // A complete pass: customers Stripe no longer lists are deleted there.
    for c in store.backfill_unseen()? {
        let before = store.mapping_of(&c)?;
        if store.mark_deleted(&c)? {
            outcomes.entry(c).or_insert(before);
        }
    }
    for k in [Kind::Customers, Kind::Subscriptions] {
        store.set_state(k.cursor_key(), None)?;
        store.set_state(k.done_key(), None)?;
    }
    store.set_state(STARTED_KEY, None)?;
    // Report every customer touched: its mapping before this run against now.
    let mut reports = Vec::with_capacity(outcomes.len());
    for (c, before) in outcomes {
        let after = store.mapping_of(&c)?;
        let changed = match (&before, &after) {
            (Some(b), Some(a)) => diff(Some(b), Some(a)).is_some(),
            _ => true,
        };
        let o = WriteOutcome {
            before,
            after,
            changed,
        };
        reports.push(report(&c, Ok(&o)));
    }
    Ok(reports)
}

fn customer_write(o: &StripeObject, user_key: &str, at: i64) -> Option<CustomerWrite> {
    let id = o.id.clone()?;
    Some(CustomerWrite {
        customer_id: id,
        info: sync::customer_info(o, user_key, at, false),
        user_key: user_key.to_owned(),
        subscriptions: Vec::new(),
        source: RecordSource::Api,
        events: Vec::new(),
    })
}

fn subscription_writes(subs: &[StripeObject], user_key: &str, at: i64) -> Vec<CustomerWrite> {
    let mut by_customer: BTreeMap<String, Vec<(SubscriptionRecord, i64)>> = BTreeMap::new();
    for o in subs {
        if let Some(rec) = SubscriptionRecord::from_object(o) {
            by_customer
                .entry(rec.customer_id.clone())
                .or_default()
                .push((rec, at));
        }
    }
    by_customer
        .into_iter()
        .map(|(customer_id, subscriptions)| CustomerWrite {
            customer_id,
            info: CustomerInfo::default(),
            user_key: user_key.to_owned(),
            subscriptions,
            source: RecordSource::Api,
            events: Vec::new(),
        })
        .collect()
}

fn write_page(
    store: &mut Store,
    page: &Page,
    user_key: &str,
    at: i64,
    outcomes: &mut BTreeMap<String, Option<MappingRow>>,
) -> anyhow::Result<()> {
    let writes: Vec<CustomerWrite> = match page.kind {
        Kind::Customers => page
            .objects
            .iter()
            .filter_map(|o| customer_write(o, user_key, at))
            .collect(),
        Kind::Subscriptions => subscription_writes(&page.objects, user_key, at),
    };
    let seen: Vec<&str> = match page.kind {
        Kind::Customers => writes.iter().map(|w| w.customer_id.as_str()).collect(),
        Kind::Subscriptions => Vec::new(),
    };
    let mut state: Vec<(&str, Option<&str>)> = vec![(page.kind.cursor_key(), page.last.as_deref())];
    if !page.has_more {
        state.push((page.kind.done_key(), Some("1")));
    }
    let results = store.write_batch(&writes, &state, &seen, false)?;
    for (w, o) in writes.iter().zip(results) {
        outcomes.entry(w.customer_id.clone()).or_insert(o.before);
    }
    Ok(())
}

/// `--check --all`: everything Stripe has, against everything the store has.
fn compare_all(
    store: &mut Store,
    customers: Vec<StripeObject>,
    subs: Vec<StripeObject>,
    user_key: &str,
    now: i64,
) -> anyhow::Result<Vec<CustomerReport>> {
    let mut writes: BTreeMap<String, CustomerWrite> = BTreeMap::new();
    for o in &customers {
        if let Some(w) = customer_write(o, user_key, now) {
            writes.insert(w.customer_id.clone(), w);
        }
    }
    for w in subscription_writes(&subs, user_key, now) {
        match writes.get_mut(&w.customer_id) {
            Some(existing) => existing.subscriptions.extend(w.subscriptions),
            None => {
                writes.insert(w.customer_id.clone(), w);
            }
        }
    }
    let writes: Vec<CustomerWrite> = writes.into_values().collect();
    let outcomes = store.write_batch(&writes, &[], &[], true)?;
    let mut reports: Vec<CustomerReport> = writes
        .iter()
        .zip(outcomes.iter())
        .map(|(w, o)| report(&w.customer_id, Ok(o)))
        .collect();
    let listed: HashSet<&str> = writes.iter().map(|w| w.customer_id.as_str()).collect();
    for c in store.customer_ids()? {
        if !listed.contains(c.as_str())
            && let Some(row) = store.mapping_of(&c)?
            && !row.deleted
        {
            reports.push(CustomerReport {
                customer_id: Some(c),
                user_id: row.user_id,
                status: Some(row.status),
                changed: true,
                error: None,
                diff: Some(json!({"deleted": {"store": false, "stripe": true}})),
                new: false,
            });
        }
    }
    Ok(reports)
}

fn human(reports: &[CustomerReport], s: &Summary, check: bool) -> String {
    let mut b = tabled::builder::Builder::default();
    b.push_record([
        "CUSTOMER",
        "USER",
        "STATUS",
        if check { "DRIFT" } else { "CHANGED" },
        "ERROR",
    ]);
    let mut shown = 0;
    for r in reports {
        // Large runs list what changed or failed; the summary counts the rest.
        if reports.len() > 50 && (!r.changed || r.new) && r.error.is_none() {
            continue;
        }
        shown += 1;
        let esc = |v: &Option<String>| {
            v.as_deref()
                .map(|x| output::escape_text(x).into_owned())
                .unwrap_or_else(|| "-".into())
        };
        let change = match (&r.diff, r.changed) {
            (_, true) if r.new => "new".into(),
            (Some(Value::Object(m)), true) => m.keys().cloned().collect::<Vec<_>>().join(", "),
            (_, true) => "yes".into(),
            _ => "-".into(),
        };
        b.push_record([
            esc(&r.customer_id),
            esc(&r.user_id),
            esc(&r.status),
            change,
            esc(&r.error),
        ]);
    }
    let mut out = String::new();
    if shown > 0 {
        let mut t = b.build();
        t.with(tabled::settings::Style::blank());
        out.push_str(&format!("{t}\n"));
    }
    let verb = if check { "drifted" } else { "changed" };
    let new = reports.iter().filter(|r| r.new).count();
    out.push_str(&format!(
        "{} customers: {} {verb} ({new} new), {} failed; {} API requests, {} retries, {:.1} s\n",
        s.customers,
        s.changed,
        s.failed,
        s.api_requests,
        s.retries,
        s.elapsed_ms as f64 / 1000.0
    ));
    out
}
