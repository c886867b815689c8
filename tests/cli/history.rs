//! Random account histories through the binary, against an oracle of the
//! true history (issue 17, item 8).
//!
//! The generator plays an account forward in time (customers created,
//! subscribed, updated with Stripe-shaped `previous_attributes`, canceled,
//! re-subscribed, renamed, deleted; several events often in one second, as
//! a checkout produces), so it knows the real order and the final state of
//! every customer. The same history is then delivered four ways, each into
//! a fresh store, and `inspect --json` is held to the oracle:
//!
//! - (a) one Stripe list object, newest first (as `GET /v1/events` lists):
//!   the list decides every same-second order, so nothing is ambiguous;
//! - (b) that list cut into pages, one file each, newest page first: the
//!   list decides inside a page; across a page boundary (two list objects,
//!   SPEC: "the order of a Stripe list object") only `previous_attributes`
//!   and the lifecycle can;
//! - (c) one file per event in a random order, duplicates included;
//! - (d) the files of (c) replayed in two runs into one store.
//!
//! Where the evidence rule 1 weighs (list order, `previous_attributes`,
//! lifecycle) leaves a same-second pair of differing snapshots of one object
//! undecided, the binary may pick by arrival and must then name the
//! customer in `ambiguous`. A customer not named there must equal the
//! oracle, and a customer may only be named when it has such a pair.
//!
//! What this test found when it was written, each kept as a minimal
//! reproducer at the end of this file: a customer deleted in the run that
//! names its user lost the user; same-second customer snapshots across two
//! runs were not ordered by evidence; `previous_attributes` of non-adjacent
//! updates misled rule 1; a snapshot equal to the pick replaced it and hid
//! its place in the chain. A fifth pins down the SPEC's reading of pages of
//! one listing saved as separate files: separate lists.
//!
//! Every test runs twice from the same body, once per store backend
//! (`history::sqlite::NAME`, `history::postgres::NAME`; see `backends.rs`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::{Value, json};

use crate::backends::{Backend, Site};

crate::backends::on_both_backends!(
    random_histories_replayed_four_ways_match_the_oracle,
    a_customer_deleted_in_the_run_that_names_its_user_keeps_the_user,
    same_second_customer_snapshots_across_runs_are_ordered_by_evidence,
    previous_attributes_of_non_adjacent_updates_do_not_order_them,
    a_snapshot_equal_to_the_pick_keeps_its_place_in_the_chain,
    pages_of_one_listing_in_separate_files_are_separate_lists,
);

const T0: i64 = 1_767_225_600;
const PERIOD: i64 = 2_592_000;
const PRICES: [&str; 3] = ["price_basic", "price_pro", "price_team"];

// ---------------------------------------------------------------------------
// The history and its oracle
// ---------------------------------------------------------------------------

/// Rule 1's lifecycle stage of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Created,
    Updated,
    Final,
}

/// What the store keeps of one snapshot: what "the two differ" means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kept {
    /// A deleted customer's stub has no metadata: `user` is `None` there.
    Customer { user: Option<String>, deleted: bool },
    Subscription {
        status: String,
        price: String,
        cancel_at_period_end: bool,
    },
}

impl Kept {
    fn field(&self, name: &str) -> Option<String> {
        match (self, name) {
            (Kept::Customer { user, .. }, "user") => user.clone(),
            (Kept::Subscription { status, .. }, "status") => Some(status.clone()),
            (Kept::Subscription { price, .. }, "price") => Some(price.clone()),
            (
                Kept::Subscription {
                    cancel_at_period_end,
                    ..
                },
                "cancel_at_period_end",
            ) => Some(cancel_at_period_end.to_string()),
            _ => None,
        }
    }
}

/// One event of the true history.
#[derive(Debug, Clone)]
struct Ev {
    id: String,
    created: i64,
    /// Index of its customer.
    customer: usize,
    /// The id of the object whose snapshot it carries.
    object: String,
    kept: Kept,
    stage: Stage,
    /// Its `previous_attributes` in the fields the store keeps (the item's
    /// period, also named on a price change, is the same in every snapshot
    /// of one subscription).
    previous: Option<Vec<(&'static str, String)>>,
    body: Value,
}

impl Ev {
    /// Rule 1's chained evidence: this update names `other`'s values as
    /// the ones it changed.
    fn follows(&self, other: &Ev) -> bool {
        self.previous.as_ref().is_some_and(|p| {
            !p.is_empty()
                && p.iter()
                    .all(|(f, v)| other.kept.field(f).as_deref() == Some(v.as_str()))
        })
    }
}

#[derive(Debug, Clone)]
struct SubState {
    id: String,
    created: i64,
    status: String,
    price: String,
    cancel_at_period_end: bool,
    /// `metadata.clerkUserId`, as checkout set it (a rename leaves it).
    user: String,
}

impl SubState {
    fn live(&self) -> bool {
        !matches!(self.status.as_str(), "canceled" | "incomplete_expired")
    }

    fn item(&self) -> Value {
        json!({
            "id": format!("si_{}", &self.id[4..]), "object": "subscription_item",
            "price": {"id": self.price, "object": "price"},
            "current_period_start": self.created,
            "current_period_end": self.created + PERIOD,
        })
    }

    fn object(&self, customer: &str) -> Value {
        json!({
            "id": self.id, "object": "subscription", "customer": customer,
            "status": self.status, "created": self.created,
            "cancel_at_period_end": self.cancel_at_period_end,
            "metadata": {"clerkUserId": self.user},
            "items": {"object": "list", "has_more": false, "data": [self.item()]},
        })
    }

    fn kept(&self) -> Kept {
        Kept::Subscription {
            status: self.status.clone(),
            price: self.price.clone(),
            cancel_at_period_end: self.cancel_at_period_end,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct CustomerState {
    id: String,
    user: String,
    touched: bool,
    deleted: bool,
    /// In creation order: the last is the newest `created`.
    subs: Vec<SubState>,
}

/// How the generator spends seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every event in its own second: nothing for rule 1's evidence to do.
    Spread,
    /// Every step in the first second: long same-second chains.
    Burst,
    /// Steps advance 0, 1 or 2 seconds; a step's events share its second.
    Mixed,
}

/// What one generated case asks for.
#[derive(Debug, Clone)]
struct Case {
    customers: usize,
    mode: Mode,
    /// (customer, action, seconds to advance) per step.
    steps: Vec<(u8, u8, u8)>,
    seed: u64,
    page: Index,
    dups: Vec<Index>,
    cut: Index,
}

fn case(mode: impl Strategy<Value = Mode>) -> impl Strategy<Value = Case> {
    (
        1..=4usize,
        mode,
        prop::collection::vec(any::<(u8, u8, u8)>(), 0..14),
        any::<u64>(),
        any::<Index>(),
        prop::collection::vec(any::<Index>(), 0..4),
        any::<Index>(),
    )
        .prop_map(|(customers, mode, steps, seed, page, dups, cut)| Case {
            customers,
            mode,
            steps,
            seed,
            page,
            dups,
            cut,
        })
}

/// A bijection of u32 so that ids are unique but say nothing of order.
fn scramble(n: u32, salt: u32) -> u32 {
    (n ^ salt).wrapping_mul(0x9E37_79B1).rotate_left(13) ^ 0x5bd1_e995
}

struct Account {
    spread: bool,
    burst: bool,
    salt: u32,
    now: i64,
    next_id: u32,
    customers: Vec<CustomerState>,
    events: Vec<Ev>,
}

impl Account {
    fn new(customers: usize, spread: bool, burst: bool, seed: u64) -> Account {
        let salt = seed as u32;
        Account {
            spread,
            burst,
            salt,
            now: T0,
            next_id: 0,
            customers: (0..customers)
                .map(|c| CustomerState {
                    id: format!("cus_{:08x}", scramble(1000 + c as u32, salt)),
                    user: format!("user_{c}a"),
                    ..Default::default()
                })
                .collect(),
            events: Vec::new(),
        }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:08x}", scramble(self.next_id, self.salt))
    }

    fn emit(
        &mut self,
        kind: &'static str,
        c: usize,
        object: Value,
        kept: Kept,
        previous: Option<(Value, Vec<(&'static str, String)>)>,
    ) {
        if self.spread {
            self.now += 1;
        }
        let id = self.fresh("evt");
        let stage = if kind.ends_with(".deleted")
            || matches!(&kept, Kept::Subscription { status, .. }
                if status == "canceled" || status == "incomplete_expired")
        {
            Stage::Final
        } else if kind.ends_with(".created") {
            Stage::Created
        } else {
            Stage::Updated
        };
        let mut data = json!({ "object": object });
        let previous = previous.map(|(json, fields)| {
            data["previous_attributes"] = json;
            fields
        });
        let body = json!({
            "id": id, "object": "event", "api_version": "2025-06-30.basil",
            "type": kind, "created": self.now, "livemode": false, "data": data,
        });
        self.events.push(Ev {
            id,
            created: self.now,
            customer: c,
            object: object["id"].as_str().unwrap().to_owned(),
            kept,
            stage,
            previous,
            body,
        });
    }

    fn customer_object(&self, c: usize) -> Value {
        let cus = &self.customers[c];
        json!({
            "id": cus.id, "object": "customer", "email": format!("c{c}@example.com"),
            "metadata": {"clerkUserId": cus.user},
        })
    }

    fn customer_kept(&self, c: usize) -> Kept {
        Kept::Customer {
            user: Some(self.customers[c].user.clone()),
            deleted: false,
        }
    }

    /// The customer's live subscription (the newest, unless it ended).
    fn live(&self, c: usize) -> Option<usize> {
        let subs = &self.customers[c].subs;
        subs.last().filter(|s| s.live()).map(|_| subs.len() - 1)
    }

    fn sub_event(&mut self, kind: &'static str, c: usize, s: usize, previous: Option<Value>) {
        let sub = &self.customers[c].subs[s];
        let object = sub.object(&self.customers[c].id);
        let kept = sub.kept();
        let fields = previous.as_ref().map(|p| {
            let mut f = Vec::new();
            if let Some(v) = p.get("status") {
                f.push(("status", v.as_str().unwrap().to_owned()));
            }
            if let Some(v) = p.get("cancel_at_period_end") {
                f.push(("cancel_at_period_end", v.as_bool().unwrap().to_string()));
            }
            if let Some(v) = p.pointer("/items/data/0/price/id") {
                f.push(("price", v.as_str().unwrap().to_owned()));
            }
            f
        });
        self.emit(kind, c, object, kept, previous.zip(fields));
    }

    /// A new subscription (a checkout, or a re-subscription), in a later
    /// second than the customer's previous one (rule 2 never ties here).
    fn subscribe(&mut self, c: usize, pick: u8, checkout: bool) {
        if let Some(last) = self.customers[c].subs.last()
            && self.now <= last.created
        {
            self.now = last.created + 1;
        }
        let id = self.fresh("sub");
        let status = if checkout {
            "incomplete"
        } else {
            ["incomplete", "active", "trialing"][pick as usize % 3]
        };
        let created = self.now + i64::from(self.spread);
        let sub = SubState {
            id,
            created,
            status: status.into(),
            price: PRICES[(pick as usize / 3) % PRICES.len()].into(),
            cancel_at_period_end: false,
            user: self.customers[c].user.clone(),
        };
        self.customers[c].subs.push(sub);
        let s = self.customers[c].subs.len() - 1;
        self.sub_event("customer.subscription.created", c, s, None);
        // A checkout pays in the same second: incomplete, then active.
        if status == "incomplete" && (checkout || pick & 0x40 != 0) {
            self.customers[c].subs[s].status = "active".into();
            self.sub_event(
                "customer.subscription.updated",
                c,
                s,
                Some(json!({"status": "incomplete"})),
            );
        }
    }

    fn update(&mut self, c: usize, s: usize, status: bool, cancel: bool, price: u8) {
        let sub = self.customers[c].subs[s].clone();
        let mut previous = serde_json::Map::new();
        let next = &mut self.customers[c].subs[s];
        if status {
            let choices: &[&str] = match sub.status.as_str() {
                "incomplete" => &["active", "active", "incomplete_expired"],
                "trialing" => &["active", "past_due"],
                "active" => &["past_due", "unpaid"],
                _ => &["active"],
            };
            next.status = choices[price as usize % choices.len()].into();
            previous.insert("status".into(), json!(sub.status));
        }
        if cancel {
            next.cancel_at_period_end = !sub.cancel_at_period_end;
            previous.insert(
                "cancel_at_period_end".into(),
                json!(sub.cancel_at_period_end),
            );
        }
        if price & 0x80 != 0 || (!status && !cancel) {
            let i = PRICES.iter().position(|p| *p == sub.price).unwrap();
            next.price = PRICES[(i + 1 + (price as usize & 1)) % PRICES.len()].into();
            previous.insert(
                "items".into(),
                json!({"object": "list", "has_more": false, "data": [sub.item()]}),
            );
        }
        self.sub_event(
            "customer.subscription.updated",
            c,
            s,
            Some(Value::Object(previous)),
        );
    }

    fn cancel(&mut self, c: usize, s: usize) {
        self.customers[c].subs[s].status = "canceled".into();
        self.sub_event("customer.subscription.deleted", c, s, None);
    }

    fn rename(&mut self, c: usize, pick: u8) {
        let old = self.customers[c].user.clone();
        // A small pool, so that a name can come back (A -> B -> A).
        let pool = [
            format!("user_{c}a"),
            format!("user_{c}b"),
            format!("user_{c}c"),
        ];
        let others: Vec<&String> = pool.iter().filter(|u| **u != old).collect();
        self.customers[c].user = others[pick as usize % others.len()].clone();
        let object = self.customer_object(c);
        let kept = self.customer_kept(c);
        let previous = json!({"metadata": {"clerkUserId": old}});
        self.emit(
            "customer.updated",
            c,
            object,
            kept,
            Some((previous, vec![("user", old)])),
        );
    }

    fn delete(&mut self, c: usize) {
        // Stripe cancels the subscriptions of a deleted customer.
        if let Some(s) = self.live(c) {
            self.cancel(c, s);
        }
        let id = self.customers[c].id.clone();
        let stub = json!({"id": id, "object": "customer", "deleted": true});
        let kept = Kept::Customer {
            user: None,
            deleted: true,
        };
        self.emit("customer.deleted", c, stub, kept, None);
        self.customers[c].deleted = true;
    }

    fn step(&mut self, who: u8, what: u8, advance: u8) {
        let c = who as usize % self.customers.len();
        if self.customers[c].deleted {
            return;
        }
        if !self.spread && !self.burst {
            self.now += [0, 0, 1, 2][advance as usize % 4];
        }
        let what = what % 16;
        if !self.customers[c].touched {
            self.customers[c].touched = true;
            let object = self.customer_object(c);
            let kept = self.customer_kept(c);
            self.emit("customer.created", c, object, kept, None);
            // Outside spread mode the first customer always checks out
            // (two snapshots of one subscription in one second): every
            // such case has same-second evidence to weigh.
            if what < 13 || (c == 0 && !self.spread) {
                self.subscribe(c, advance, !self.spread);
            }
            return;
        }
        let live = self.live(c);
        match (what, live) {
            (13 | 14, _) => self.rename(c, advance),
            (15, _) => self.delete(c),
            (0..=6, Some(s)) => self.update(c, s, true, false, advance),
            (7 | 8, Some(s)) => self.update(c, s, false, true, advance),
            (9 | 10, Some(s)) => self.update(c, s, false, false, advance),
            (11, Some(s)) => self.update(c, s, true, true, advance | 0x80),
            // 12
            (_, Some(s)) => self.cancel(c, s),
            (_, None) => self.subscribe(c, advance, false),
        }
    }

    fn play(case: &Case) -> Account {
        let mut a = Account::new(
            case.customers,
            case.mode == Mode::Spread,
            case.mode == Mode::Burst,
            case.seed,
        );
        for &(who, what, advance) in &case.steps {
            a.step(who, what, advance);
        }
        // Every customer takes part.
        for c in 0..a.customers.len() {
            if !a.customers[c].touched {
                a.step(c as u8, 0, 1);
            }
        }
        a
    }

    /// The oracle: each customer's row as `inspect --json` must show it.
    fn expected(&self) -> BTreeMap<String, Value> {
        self.customers
            .iter()
            .map(|c| {
                let row = match (c.deleted, c.subs.last()) {
                    (true, _) => row(&c.user, "deleted", None),
                    (false, None) => row(&c.user, "none", None),
                    (false, Some(s)) => row(&c.user, &s.status, Some(s)),
                };
                (c.id.clone(), row)
            })
            .collect()
    }
}

fn row(user: &str, status: &str, sub: Option<&SubState>) -> Value {
    json!({
        "user_id": user, "status": status,
        "subscription_id": sub.map(|s| &s.id),
        "price_id": sub.map(|s| &s.price),
        // A row without a subscription shows `false` (the field is a bool).
        "cancel_at_period_end": sub.is_some_and(|s| s.cancel_at_period_end),
    })
}

/// The fields of an `inspect --json` row that the oracle speaks of.
fn projection(r: &Value) -> Value {
    json!({
        "user_id": r["user_id"], "status": r["status"],
        "subscription_id": r["subscription_id"], "price_id": r["price_id"],
        "cancel_at_period_end": r["cancel_at_period_end"],
    })
}

// ---------------------------------------------------------------------------
// What rule 1 can and cannot decide in one delivery
// ---------------------------------------------------------------------------

/// How a same-second pair of differing snapshots of one object fares with
/// the evidence a delivery offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pair {
    Decided,
    /// Nothing tells: the binary may pick by arrival (and must say so).
    Undecided,
    /// Pairwise evidence points the wrong way: `previous_attributes` of
    /// two non-adjacent snapshots (A -> B -> C where C reverted what B's
    /// update changed) match the other one.
    Misleading,
}

/// `listed[event index]`: the (list, position) that carries the event.
fn judge(older: &Ev, newer: &Ev, listed: &[Option<(usize, usize)>], i: usize, j: usize) -> Pair {
    if let (Some((la, _)), Some((lb, _))) = (listed[i], listed[j])
        && la == lb
    {
        return Pair::Decided;
    }
    match (newer.follows(older), older.follows(newer)) {
        (true, false) => return Pair::Decided,
        (false, true) => return Pair::Misleading,
        _ => {}
    }
    if older.stage != newer.stage {
        Pair::Decided
    } else {
        Pair::Undecided
    }
}

/// Every same-second pair of differing snapshots of one object, as
/// (customer, verdict), given where the delivery lists each event.
fn pairs(events: &[Ev], listed: &[Option<(usize, usize)>]) -> Vec<(usize, Pair)> {
    let mut out = Vec::new();
    for (i, a) in events.iter().enumerate() {
        for (j, b) in events.iter().enumerate().skip(i + 1) {
            if a.object == b.object && a.created == b.created && a.kept != b.kept {
                out.push((a.customer, judge(a, b, listed, i, j)));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

fn write(dir: &Path, name: &str, v: &Value) {
    std::fs::write(dir.join(name), serde_json::to_vec(v).unwrap()).unwrap();
}

fn list(events: &[&Ev], has_more: bool) -> Value {
    let data: Vec<&Value> = events.iter().map(|e| &e.body).collect();
    json!({"object": "list", "url": "/v1/events", "has_more": has_more, "data": data})
}

/// stderr holds a replay's summary line, `N event(s): ...`.
fn summary(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.split_once(": ").is_some_and(|(n, _)| {
            let (count, word) = n.split_once(' ').unwrap_or(("", ""));
            count.parse::<u32>().is_ok() && (word == "event" || word == "events")
        })
    })
}

/// `replay --json ARGS` in `dir`: status 0, one JSON document on stdout,
/// the summary (and any warning) on stderr.
fn replay_run<S: AsRef<std::ffi::OsStr>>(site: &Site, args: &[S]) -> crate::harness::Output {
    site.sync()
        .args(["replay", "--json"])
        .args(args)
        .stdout_json()
        .stderr_with("a replay summary (N events: ...)", summary)
        .run()
}

/// `replay --json FILES...` in `dir`: its JSON document, after checking
/// status and stderr.
fn replay(site: &Site, files: &[String]) -> Result<Value, TestCaseError> {
    let out = replay_run(site, files);
    let v = out.json();
    let ambiguous = !v["ambiguous"].as_array().unwrap().is_empty();
    // The warning on stderr points to --live exactly when something is ambiguous.
    prop_assert_eq!(
        out.stderr.contains("--live"),
        ambiguous,
        "stderr {}\nstdout {}",
        out.stderr,
        out.stdout
    );
    prop_assert_eq!(&v["summary"]["invalid"], &json!(0), "{}", v);
    Ok(v)
}

/// The store's rows by customer id, as the oracle speaks of them.
fn store(site: &Site) -> Result<BTreeMap<String, Value>, TestCaseError> {
    let rows = site
        .sync()
        .args(["inspect", "--json"])
        .stdout_json()
        .run()
        .json();
    Ok(rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["customer_id"].as_str().unwrap().to_owned(), projection(r)))
        .collect())
}

/// Customers `ambiguous` names, over one or more runs.
fn ambiguous_customers(runs: &[&Value]) -> BTreeSet<String> {
    runs.iter()
        .flat_map(|v| v["ambiguous"].as_array().unwrap().iter())
        .map(|a| a["customer_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Counts over the whole run, so that the test cannot pass on nothing.
#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    customers: usize,
    /// Same-second pairs of differing snapshots of one object.
    same_second_pairs: usize,
    cases_without_same_second: usize,
    /// Pairs across a page boundary of (b) that no evidence decides.
    undecided_across_pages: usize,
    /// Customers set aside as ambiguous in (b), (c) and (d).
    excused: usize,
    /// Customer rows held equal to the oracle, over the four deliveries.
    compared: usize,
    duplicates: usize,
    /// Same-second pairs whose `previous_attributes` point the wrong way
    /// (see [`Pair::Misleading`]).
    misleading: usize,
}

/// The store against the oracle: every customer present, each equal
/// unless excused (named ambiguous), and only those with an undecided
/// pair may be named.
fn hold(
    way: &str,
    account: &Account,
    got: &BTreeMap<String, Value>,
    named: &BTreeSet<String>,
    pairs: &[(usize, Pair)],
    tally: &mut Tally,
) -> Result<(), TestCaseError> {
    let expected = account.expected();
    let ids: Vec<&String> = expected.keys().collect();
    prop_assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ids,
        "({}) customers in the store",
        way
    );
    let may_be_named: BTreeSet<String> = pairs
        .iter()
        .filter(|(_, p)| *p == Pair::Undecided)
        .map(|(c, _)| account.customers[*c].id.clone())
        .collect();
    for n in named {
        prop_assert!(
            may_be_named.contains(n),
            "({}) {} is named ambiguous, but evidence orders all its same-second snapshots",
            way,
            n
        );
    }
    for (id, want) in &expected {
        if named.contains(id) {
            tally.excused += 1;
            continue;
        }
        prop_assert_eq!(
            &got[id],
            want,
            "({}) customer {} (not named ambiguous)",
            way,
            id
        );
        tally.compared += 1;
    }
    Ok(())
}

/// The order of (c)'s files: indexes of the true history, shuffled, with
/// the case's duplicates.
fn delivery(case: &Case, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for d in &case.dups {
        if n > 0 {
            order.push(d.index(n));
        }
    }
    let mut rng = case.seed | 1;
    for i in (1..order.len()).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        order.swap(i, (rng % (i as u64 + 1)) as usize);
    }
    order
}

/// Deliver the history four ways and hold each store to the oracle.
fn check(b: Backend, case: &Case, tally: &mut Tally) -> Result<(), TestCaseError> {
    let account = Account::play(case);
    let events = &account.events;
    let n = events.len();
    tally.cases += 1;
    tally.customers += account.customers.len();
    prop_assert!(account.customers.iter().all(|c| c.touched));

    let unlisted = vec![None; n];
    let same_second = pairs(events, &unlisted);
    tally.same_second_pairs += same_second.len();
    tally.misleading += same_second
        .iter()
        .filter(|(_, p)| *p == Pair::Misleading)
        .count();
    if same_second.is_empty() {
        tally.cases_without_same_second += 1;
    }

    // (a) One list, newest first: the list decides every order.
    let dir = b.site();
    let newest_first: Vec<&Ev> = events.iter().rev().collect();
    write(dir.path(), "events.json", &list(&newest_first, false));
    let v = replay(&dir, &["events.json".into()])?;
    prop_assert_eq!(&v["ambiguous"], &json!([]), "(a) one list: {}", v);
    prop_assert_eq!(&v["summary"]["events"], &json!(n));
    let got = store(&dir)?;
    hold("a", &account, &got, &BTreeSet::new(), &[], tally)?;

    // (b) Pages of that list, newest page first, one file each.
    let dir = b.site();
    let size = 1 + case.page.index(n.clamp(1, 5));
    let mut files = Vec::new();
    let mut listed = vec![None; n];
    for (p, page) in newest_first.chunks(size).enumerate() {
        let name = format!("page_{p:03}.json");
        let has_more = (p + 1) * size < n;
        write(dir.path(), &name, &list(page, has_more));
        for (k, e) in page.iter().enumerate() {
            let i = events.iter().position(|x| x.id == e.id).unwrap();
            listed[i] = Some((p, k));
        }
        files.push(name);
    }
    let paged = pairs(events, &listed);
    tally.undecided_across_pages += paged.iter().filter(|(_, p)| *p == Pair::Undecided).count();
    let v = replay(&dir, &files)?;
    let named = ambiguous_customers(&[&v]);
    let got = store(&dir)?;
    hold("b", &account, &got, &named, &paged, tally)?;

    // (c) One file per event, shuffled, with duplicates.
    let order = delivery(case, n);
    let dir = b.site();
    let files: Vec<String> = order
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let name = format!("e_{k:03}.json");
            write(dir.path(), &name, &events[i].body);
            name
        })
        .collect();
    // Each occurrence after an event's first is a duplicate.
    let mut seen = BTreeSet::new();
    let expected_routes: Vec<bool> = order.iter().map(|&i| !seen.insert(i)).collect();
    tally.duplicates += expected_routes.iter().filter(|d| **d).count();
    let check_routes = |runs: &[&Value]| -> Result<(), TestCaseError> {
        let decisions: Vec<&Value> = runs
            .iter()
            .flat_map(|v| v["events"].as_array().unwrap().iter())
            .collect();
        prop_assert_eq!(decisions.len(), order.len());
        for ((d, &dup), &i) in decisions.iter().zip(&expected_routes).zip(&order) {
            prop_assert_eq!(&d["event_id"], &json!(events[i].id));
            prop_assert_eq!(
                d["route"] == "duplicate",
                dup,
                "decision {} (duplicate expected: {})",
                d,
                dup
            );
            if !dup {
                prop_assert!(
                    d["route"] == "sync" || d["route"] == "ignored",
                    "decision {}",
                    d
                );
            }
        }
        Ok(())
    };
    let v = replay(&dir, &files)?;
    check_routes(&[&v])?;
    let named = ambiguous_customers(&[&v]);
    let got = store(&dir)?;
    hold("c", &account, &got, &named, &same_second, tally)?;

    // (d) The same files in two runs into one store.
    let cut = case.cut.index(files.len() + 1);
    let (first, second) = files.split_at(cut);
    let dir2 = b.site();
    for f in &files {
        std::fs::copy(dir.path().join(f), dir2.path().join(f)).unwrap();
    }
    let mut runs = Vec::new();
    for part in [first, second] {
        if !part.is_empty() {
            runs.push(replay(&dir2, part)?);
        }
    }
    let run_refs: Vec<&Value> = runs.iter().collect();
    check_routes(&run_refs)?;
    let named = ambiguous_customers(&run_refs);
    let got = store(&dir2)?;
    // Each run sees only its share of the history: where a customer's
    // events fall in both runs, a run's evidence may be incomplete (an
    // update of the second before, or of the same second, is in the other
    // run), and the binary may say so; the store must still equal the
    // oracle for every customer it does not name.
    let first_run: BTreeSet<usize> = order[..cut].iter().copied().collect();
    let second_run: BTreeSet<usize> = order[cut..].iter().copied().collect();
    let mut split = same_second.clone();
    for (i, e) in events.iter().enumerate() {
        let only_first = first_run.contains(&i) && !second_run.contains(&i);
        let only_second = second_run.contains(&i) && !first_run.contains(&i);
        let other_side = events.iter().enumerate().any(|(j, f)| {
            f.customer == e.customer
                && ((only_first && second_run.contains(&j) && !first_run.contains(&j))
                    || (only_second && first_run.contains(&j) && !second_run.contains(&j)))
        });
        if other_side {
            split.push((e.customer, Pair::Undecided));
        }
    }
    hold("d", &account, &got, &named, &split, tally)?;
    Ok(())
}

/// The history of a failing case, oldest first, with (c)'s file order and
/// (d)'s cut, for a reproducer.
fn describe(case: &Case) -> String {
    let account = Account::play(case);
    let events = &account.events;
    let lines: Vec<String> = events.iter().map(|e| e.body.to_string()).collect();
    let order = delivery(case, events.len());
    let files: Vec<&str> = order.iter().map(|&i| events[i].id.as_str()).collect();
    let cut = case.cut.index(order.len() + 1);
    format!(
        "{case:?}\nevents (true order):\n{}\n(c) files in this order: {files:?}\n\
         (d) first run: the first {cut} of them\nexpected: {:?}",
        lines.join("\n"),
        account.expected()
    )
}

/// Cases of each kind, in fixed numbers so that the counts checked at the
/// end are certain: spread cases have no same-second events at all; every
/// other case has at least one (its first customer's checkout).
const SPREAD_CASES: u32 = 8;
const SAME_SECOND_CASES: u32 = 24;

fn run_cases(b: Backend, cases: u32, mode: impl Strategy<Value = Mode>, tally: &RefCell<Tally>) {
    let config = Config {
        cases,
        // A failure prints its whole history (below); an attempt runs the
        // binary nine times, so shrinking stays short.
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    };
    // The same cases on every run (CI must not depend on the draw);
    // `HISTORY_RANDOM=1 cargo test --test cli history` explores new ones.
    let mut runner = match std::env::var_os("HISTORY_RANDOM") {
        Some(_) => TestRunner::new(config),
        None => TestRunner::new_with_rng(
            config,
            proptest::test_runner::TestRng::deterministic_rng(
                proptest::test_runner::RngAlgorithm::ChaCha,
            ),
        ),
    };
    let result = runner.run(&case(mode), |c| check(b, &c, &mut tally.borrow_mut()));
    if let Err(e) = result {
        let detail = match &e {
            TestError::Fail(_, c) => describe(c),
            TestError::Abort(_) => String::new(),
        };
        panic!("{e}\n{detail}");
    }
}

// This property fails until the KNOWN DISAGREEMENTS of the module doc are
// fixed (their reproducers are at the end of this file): do not weaken it.
fn random_histories_replayed_four_ways_match_the_oracle(b: Backend) {
    let tally = RefCell::new(Tally::default());
    run_cases(b, SPREAD_CASES, Just(Mode::Spread), &tally);
    run_cases(
        b,
        SAME_SECOND_CASES,
        prop_oneof![Just(Mode::Burst), Just(Mode::Mixed), Just(Mode::Mixed)],
        &tally,
    );
    let t = tally.into_inner();
    let cases = (SPREAD_CASES + SAME_SECOND_CASES) as usize;
    assert_eq!(t.cases, cases, "{t:?}");
    assert!(t.customers >= cases, "{t:?}");
    // Four deliveries of every customer, few set aside as ambiguous.
    assert!(t.compared + t.excused == 4 * t.customers, "{t:?}");
    assert!(t.compared > 3 * t.customers, "{t:?}");
    assert_eq!(t.cases_without_same_second, SPREAD_CASES as usize, "{t:?}");
    assert!(t.same_second_pairs >= SAME_SECOND_CASES as usize, "{t:?}");
    assert!(t.duplicates > 0, "{t:?}");
}

// ---------------------------------------------------------------------------
// Minimal reproducers of what the property found
// ---------------------------------------------------------------------------

const KNOWN: &str = "issue 17 item 8: known disagreement, reported; un-ignore once fixed";

fn subscription(status: &str, cancel_at_period_end: bool, price: &str) -> Value {
    let item = |price: &str| {
        json!({"price": {"id": price}, "current_period_start": T0 - 100,
            "current_period_end": T0 + PERIOD})
    };
    json!({
        "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": status,
        "created": T0 - 100, "cancel_at_period_end": cancel_at_period_end,
        "metadata": {"clerkUserId": "user_1"},
        "items": {"object": "list", "data": [item(price)]},
    })
}

/// The item list a price change names in `previous_attributes`.
fn old_items(price: &str) -> Value {
    json!({"object": "list", "data": [{"price": {"id": price},
        "current_period_start": T0 - 100, "current_period_end": T0 + PERIOD}]})
}

fn event(id: &str, kind: &str, created: i64, object: Value, previous: Option<Value>) -> Value {
    let mut data = json!({ "object": object });
    if let Some(p) = previous {
        data["previous_attributes"] = p;
    }
    json!({"id": id, "object": "event", "type": kind, "created": created, "data": data})
}

fn updated(id: &str, object: Value, previous: Value) -> Value {
    event(
        id,
        "customer.subscription.updated",
        T0,
        object,
        Some(previous),
    )
}

fn customer(user: &str) -> Value {
    json!({"id": "cus_1", "object": "customer", "email": "a@x.io",
        "metadata": {"clerkUserId": user}})
}

fn stub() -> Value {
    json!({"id": "cus_1", "object": "customer", "deleted": true})
}

/// `replay --json FILES` must succeed; its document, and whether stderr
/// warned of an ambiguity.
fn replay_ok(site: &Site, files: &[&str]) -> (Value, bool) {
    let out = replay_run(site, files);
    let v = out.json();
    let warned = out.stderr.contains("--live");
    assert_eq!(
        warned,
        v["ambiguous"] != json!([]),
        "the warning goes with `ambiguous`: {}",
        out.stderr
    );
    (v, warned)
}

fn cus_1(site: &Site) -> Value {
    let rows = site
        .sync()
        .args(["inspect", "--json", "--customer", "cus_1"])
        .stdout_json()
        .run()
        .json();
    projection(&rows[0])
}

fn names_cus_1(v: &Value) -> bool {
    v["ambiguous"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["customer_id"] == "cus_1")
}

/// Rule 3 within one run: the user the run knew the customer by is kept.
/// Today the row is `user_id: null` (the stub, the newest snapshot, has no
/// metadata, and the row is new), while the same events in two runs keep
/// `user_1`: a run boundary changes the outcome.
///
/// `stripe-sync replay --json events.json && stripe-sync inspect --json`
fn a_customer_deleted_in_the_run_that_names_its_user_keeps_the_user(b: Backend) {
    let dir = b.site();
    let d = dir.path();
    let created = event("evt_1", "customer.created", T0, customer("user_1"), None);
    let deleted = event("evt_2", "customer.deleted", T0 + 60, stub(), None);
    write(
        d,
        "events.json",
        &json!({"object": "list", "data": [deleted, created]}),
    );
    let (v, _) = replay_ok(&dir, &["events.json"]);
    assert_eq!(v["ambiguous"], json!([]), "{v}");
    let want = json!({"user_id": "user_1", "status": "deleted", "subscription_id": null,
        "price_id": null, "cancel_at_period_end": false});
    assert_eq!(cus_1(&dir), want, "{KNOWN}");
}

/// Rule 1 across runs for customers: the store keeps a customer snapshot
/// of the same second without its evidence, and a later run's snapshot of
/// that second replaces it whatever the lifecycle or `previous_attributes`
/// say (subscriptions are weighed against the stored snapshot; customers
/// are not), and nothing is reported.
///
/// `stripe-sync replay --json 1.json && stripe-sync replay --json 2.json`
fn same_second_customer_snapshots_across_runs_are_ordered_by_evidence(b: Backend) {
    // The rename, then (next run) the creation it follows: today `user_old`.
    let dir = b.site();
    let d = dir.path();
    let previous = json!({"metadata": {"clerkUserId": "user_old"}});
    let renamed = event(
        "evt_2",
        "customer.updated",
        T0,
        customer("user_new"),
        Some(previous),
    );
    write(d, "1.json", &renamed);
    write(
        d,
        "2.json",
        &event("evt_1", "customer.created", T0, customer("user_old"), None),
    );
    replay_ok(&dir, &["1.json"]);
    let (v, _) = replay_ok(&dir, &["2.json"]);
    assert_eq!(v["ambiguous"], json!([]), "{v}");
    let user = cus_1(&dir)["user_id"].clone();

    // The deletion, then (next run) an update of the same second: today the
    // customer is no longer deleted (status `none`).
    let dir = b.site();
    let d = dir.path();
    write(
        d,
        "1.json",
        &event("evt_3", "customer.deleted", T0, stub(), None),
    );
    write(d, "2.json", &renamed);
    replay_ok(&dir, &["1.json"]);
    replay_ok(&dir, &["2.json"]);
    let status = cus_1(&dir)["status"].clone();
    assert_eq!(
        (user, status),
        (json!("user_new"), json!("deleted")),
        "{KNOWN}"
    );
}

/// Rule 1's `previous_attributes` between two updates that are not next to
/// each other. One second, three updates, in this order: u1 sets
/// cancel_at_period_end (was false), u2 changes the price (was basic), u3
/// unsets cancel_at_period_end and changes the price again (was true, pro).
/// u1's `{cancel_at_period_end: false}` matches u3, and u3's does not
/// match u1 (price), so u1 is taken as the newer by "evidence": the store
/// shows u1's state and reports nothing. (An update leaves the fields it
/// does not name unchanged: u1 names only cancel_at_period_end, yet u1 and
/// u3 differ in price, so u1 cannot come right after u3.)
///
/// `stripe-sync replay --json u3.json u2.json u1.json`
fn previous_attributes_of_non_adjacent_updates_do_not_order_them(b: Backend) {
    let dir = b.site();
    let d = dir.path();
    let u1 = updated(
        "evt_u1",
        subscription("active", true, "price_basic"),
        json!({"cancel_at_period_end": false}),
    );
    let u2 = updated(
        "evt_u2",
        subscription("active", true, "price_pro"),
        json!({"items": old_items("price_basic")}),
    );
    let u3 = updated(
        "evt_u3",
        subscription("active", false, "price_team"),
        json!({"cancel_at_period_end": true, "items": old_items("price_pro")}),
    );
    write(d, "u1.json", &u1);
    write(d, "u2.json", &u2);
    write(d, "u3.json", &u3);
    let (v, _) = replay_ok(&dir, &["u3.json", "u2.json", "u1.json"]);
    let row = cus_1(&dir);
    assert!(
        names_cus_1(&v)
            || (row["price_id"] == "price_team" && row["cancel_at_period_end"] == false),
        "{KNOWN}: the store shows {row} and reports nothing: {v}"
    );
}

/// Rule 1 when a snapshot equals the current pick: one second, u1
/// incomplete -> active, u2 active -> past_due, u3 past_due -> active (the
/// only order every `previous_attributes` allows). Read u3, u1, u2: u1
/// equals u3 in every stored field, so it replaces u3 by arrival and u3's
/// place in the chain is forgotten; u2 then follows u1, and the store shows
/// past_due with nothing reported. Without u1 the same pick is reported
/// as ambiguous (u2 and u3 each match the other's previous_attributes).
///
/// `stripe-sync replay --json u3.json u1.json u2.json`
fn a_snapshot_equal_to_the_pick_keeps_its_place_in_the_chain(b: Backend) {
    let dir = b.site();
    let d = dir.path();
    let sub = |status| subscription(status, false, "price_1");
    write(
        d,
        "u1.json",
        &updated("evt_u1", sub("active"), json!({"status": "incomplete"})),
    );
    write(
        d,
        "u2.json",
        &updated("evt_u2", sub("past_due"), json!({"status": "active"})),
    );
    write(
        d,
        "u3.json",
        &updated("evt_u3", sub("active"), json!({"status": "past_due"})),
    );
    // Without u1: said to be ambiguous (this part holds today).
    let (v, warned) = replay_ok(&dir, &["--dry-run", "u3.json", "u2.json"]);
    assert!(names_cus_1(&v) && warned, "{v}");

    let (v, _) = replay_ok(&dir, &["u3.json", "u1.json", "u2.json"]);
    let row = cus_1(&dir);
    assert!(
        names_cus_1(&v) || row["status"] == "active",
        "{KNOWN}: the store shows {row} and reports nothing: {v}"
    );
}

/// A question more than a bug: pages of one `GET /v1/events` listing saved
/// as separate files, given newest page first. The SPEC makes list order
/// evidence within "a Stripe list object", so the two pages are two lists
/// and a same-second pair across the boundary, undecided by
/// `previous_attributes` (past_due <-> active both ways), is reported
/// ambiguous and the later input wins: with pages in listing order that
/// is always the older event (today: past_due, reported). The brief of
/// issue 17 item 8 expected pages to decide like one list.
///
/// `stripe-sync replay --json page_000.json page_001.json`
fn pages_of_one_listing_in_separate_files_are_separate_lists(b: Backend) {
    let dir = b.site();
    let d = dir.path();
    let sub = |status| subscription(status, false, "price_1");
    let older = updated("evt_u1", sub("past_due"), json!({"status": "active"}));
    let newer = updated("evt_u2", sub("active"), json!({"status": "past_due"}));
    let page = |e: Value, has_more: bool| json!({"object": "list", "url": "/v1/events", "has_more": has_more, "data": [e]});
    write(d, "page_000.json", &page(newer, true));
    write(d, "page_001.json", &page(older, false));
    // SPEC: list order is evidence within one list object. Two files are
    // two lists (nothing says they are pages of one listing, or in which
    // order they were saved): the pick is by input order, and said to be
    // ambiguous.
    let (v, warned) = replay_ok(&dir, &["page_000.json", "page_001.json"]);
    assert!(warned, "{v}");
    assert_eq!(v["ambiguous"][0]["customer_id"], "cus_1", "{v}");
    assert_eq!(cus_1(&dir)["status"], "past_due");
}
