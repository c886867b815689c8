//! A PostgreSQL store shared by a team (`--db postgres://...`), through the
//! binary: two `serve` receivers on one database, fed the same account's
//! events at once, out of order and partly twice (Stripe redelivers), end
//! with the mapping one receiver gives; a receiver killed (`kill -9`) under
//! load loses nothing it answered 200 for; a role that may only read can
//! `inspect` but cannot `serve`; and no output of any of these runs shows
//! the database password.
//!
//! The database is the test server of `tests/support/pg.rs` (a fresh
//! database per store); the events are recorded by the fake Stripe of
//! `tests/support/fake_stripe.rs` as it makes an account's history, one
//! change a second, so they are Stripe's own shapes and order.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::{Value, json};
use stripe_sync::secret::Secret;
use stripe_sync::signature;

use crate::common::tempdir;
use crate::harness::{Output, Running, Test, show};
use crate::support::fake_stripe::{Account, FakeStripe};
use crate::support::pg::{self, PgServer, TEST_ROLE};

const SECRET: &str = "whsec_team_store_3b9d41c07a";
const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const LISTENING: &str = "listening on http://";

// ---------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------

/// A role of the test server that may only read the store of one database.
pub(crate) struct ReadOnlyRole {
    pub name: String,
    pub password: String,
    /// `postgres://NAME:PASSWORD@127.0.0.1:PORT/DB`
    pub url: String,
}

/// A new login role with `USAGE` on schema `stripe_sync` of `db` and
/// `SELECT` on its tables, nothing more (the store must exist).
pub(crate) fn read_only_role(pg: &PgServer, db: &str) -> ReadOnlyRole {
    let name = format!("reader_{db}");
    let password = format!(
        "ro-{}",
        std::iter::repeat_with(fastrand::alphanumeric)
            .take(20)
            .collect::<String>()
    );
    as_superuser(
        pg,
        &format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"),
    );
    pg.execute(
        db,
        &format!(
            "GRANT USAGE ON SCHEMA stripe_sync TO {name};
             GRANT SELECT ON ALL TABLES IN SCHEMA stripe_sync TO {name};"
        ),
    );
    let url = pg.url(db).replacen(
        &format!("{TEST_ROLE}:{}@", pg.password()),
        &format!("{name}:{password}@"),
        1,
    );
    assert!(url.contains(&name), "the test server's URL changed shape");
    ReadOnlyRole {
        name,
        password,
        url,
    }
}

/// Runs `sql` as the server's superuser, over its unix socket (trusted;
/// the test role may not create roles). The socket is the one of the
/// server's port in the kernel's table of unix sockets.
fn as_superuser(pg: &PgServer, sql: &str) {
    let name = format!("/.s.PGSQL.{}", pg.port());
    let table = std::fs::read_to_string("/proc/net/unix").expect("/proc/net/unix");
    let socket = table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(7))
        .find(|p| p.ends_with(&name))
        .unwrap_or_else(|| panic!("no unix socket *{name} of the test server"))
        .to_owned();
    let dir = socket[..socket.len() - name.len()].to_owned();
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(&dir)
        .port(pg.port())
        .user("postgres")
        .dbname("postgres");
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let (client, conn) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .expect("connect as the superuser");
                tokio::spawn(conn);
                client
                    .batch_execute(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            })
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p));
}

// ---------------------------------------------------------------------------
// The account's history, as Stripe sends it
// ---------------------------------------------------------------------------

/// `customers` customers, each with a history of changes made through the
/// fake one second apart (so each records its event, and no two events
/// share a second): created with the user id in its metadata (every third
/// one has it on its subscriptions too, so their events route by their own
/// metadata, the others' through the customer), a trial that becomes
/// active, a card, a paid invoice, a changed email, and for some a second
/// subscription with the first one canceled, a cancellation at the
/// period's end, another paid invoice. The events, oldest first, as
/// request bodies; the endpoint is not sent `payment_method.*` events (a
/// subscription names its card by id: offline it is unknown, `--live`
/// reads it from the API).
fn history(fake: &FakeStripe, customers: usize) -> Vec<Vec<u8>> {
    history_with(fake, customers, true, false)
}

/// [`history`]; with `user_on_customer` false, every third customer has
/// its user id only on its subscriptions; with `card_events`, the
/// `payment_method.attached` events are sent too.
fn history_with(
    fake: &FakeStripe,
    customers: usize,
    user_on_customer: bool,
    card_events: bool,
) -> Vec<Vec<u8>> {
    fake.set_clock(Some(T0));
    fake.clear_events();
    let tick = || fake.advance_clock(1);
    let cus = |i: usize| format!("cus_Team{i:04}");
    let user = |i: usize| format!("user_team_{i:04}");
    let on_customer = |i: usize| user_on_customer || !i.is_multiple_of(3);
    let sub_meta = |i: usize| match i % 3 {
        0 => json!({ "clerkUserId": user(i) }),
        _ => json!({}),
    };
    // Each step, for every customer in turn: their histories interleave.
    let steps: Vec<Box<dyn Fn(usize) + '_>> = vec![
        Box::new(|i| {
            let metadata = match on_customer(i) {
                true => json!({ "clerkUserId": user(i) }),
                false => json!({}),
            };
            fake.upsert_customer(
                json!({"id": cus(i), "email": format!("team{i}@example.com"),
                "name": format!("Team {i}"), "metadata": metadata}),
            );
        }),
        Box::new(|i| {
            fake.upsert_subscription(json!({"id": format!("sub_Team{i:04}A"), "customer": cus(i),
                "status": "trialing", "price": "price_team_basic", "created": fake.now_unix(),
                "metadata": sub_meta(i),
                "current_period_start": fake.now_unix(), "current_period_end": fake.now_unix() + 14 * 86_400}));
        }),
        Box::new(|i| {
            fake.upsert_payment_method(json!({"id": format!("pm_Team{i:04}"), "customer": cus(i),
                "card": {"brand": "visa", "last4": format!("{:04}", 4000 + i)}}));
        }),
        Box::new(|i| {
            fake.upsert_subscription(json!({"id": format!("sub_Team{i:04}A"), "status": "active",
                "default_payment_method": format!("pm_Team{i:04}")}));
        }),
        Box::new(|i| {
            fake.record_invoice_paid(&format!("sub_Team{i:04}A"));
        }),
        Box::new(|i| {
            fake.upsert_customer(json!({"id": cus(i), "email": format!("billing{i}@example.com")}));
        }),
        Box::new(|i| {
            if i % 2 == 0 {
                fake.upsert_subscription(json!({"id": format!("sub_Team{i:04}B"), "customer": cus(i),
                    "status": "active", "price": "price_team_pro", "created": fake.now_unix(),
                    "metadata": sub_meta(i), "default_payment_method": format!("pm_Team{i:04}"),
                    "current_period_start": fake.now_unix(), "current_period_end": fake.now_unix() + 31 * 86_400}));
            }
        }),
        Box::new(|i| {
            if i % 2 == 0 {
                fake.cancel_subscription(&format!("sub_Team{i:04}A"));
            }
        }),
        Box::new(|i| {
            if i % 4 == 1 {
                fake.upsert_subscription(
                    json!({"id": format!("sub_Team{i:04}A"), "cancel_at_period_end": true}),
                );
            }
        }),
        Box::new(|i| {
            if i % 4 == 2 {
                fake.record_invoice_paid(&format!("sub_Team{i:04}B"));
            }
        }),
    ];
    for step in &steps {
        for i in 0..customers {
            tick();
            step(i);
        }
    }
    let mut events = fake.events();
    events.reverse();
    events.retain(|e| {
        card_events
            || !e["type"]
                .as_str()
                .unwrap_or("")
                .starts_with("payment_method.")
    });
    let mut seen = HashSet::new();
    for e in &events {
        assert!(seen.insert(e["created"].clone()), "one event a second");
    }
    events.iter().map(|e| e.to_string().into_bytes()).collect()
}

fn id_of(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Deterministic "random" numbers (xorshift): a failing seed can be run again.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------
// Receivers
// ---------------------------------------------------------------------------

/// How a receiver is told its store.
enum DbBy<'a> {
    /// `--db URL` (before `serve`).
    Flag(&'a str),
    /// `STRIPE_SYNC_DB=URL`.
    Env(&'a str),
    /// The default store in its dir (SQLite).
    Default,
}

/// `stripe-sync [--db URL] serve --listen 127.0.0.1:0 --secret S [EXTRA]`
/// in `dir`: it must say where it listens, print nothing on stdout, and
/// (when stopped) exit 0; neither stream may show `hidden`.
fn serve(dir: &Path, db: DbBy<'_>, extra: &[&str], hidden: &[&str]) -> Test {
    let mut t = Test::in_dir(dir);
    match db {
        DbBy::Flag(url) => t = t.args(["--db", url]),
        DbBy::Env(url) => t = t.env("STRIPE_SYNC_DB", url),
        DbBy::Default => {}
    }
    t = t
        .args(["serve", "--listen", "127.0.0.1:0", "--secret", SECRET])
        .args(extra)
        .stderr_has(LISTENING);
    for h in hidden {
        t = t.hides(*h);
    }
    t
}

/// A started receiver and where it listens.
struct Receiver {
    run: Option<Running>,
    addr: SocketAddr,
}

impl Receiver {
    fn start(test: Test) -> Receiver {
        let mut run = test.spawn();
        run.wait_for_stderr(LISTENING, Duration::from_secs(90));
        let said = run.stderr_now();
        let at = said.find(LISTENING).expect("waited for it") + LISTENING.len();
        let rest = said[at..].lines().next().unwrap_or("").trim();
        let addr = rest[..rest.find('/').unwrap_or(rest.len())]
            .parse()
            .unwrap_or_else(|e| panic!("serve printed an unusable address ({e}): {rest}"));
        Receiver {
            run: Some(run),
            addr,
        }
    }

    fn stderr(&self) -> String {
        self.run
            .as_ref()
            .map(Running::stderr_now)
            .unwrap_or_default()
    }

    /// SIGTERM: it finishes what it has taken and exits (checked as stated).
    fn stop(&mut self) -> Output {
        let mut run = self.run.take().expect("running");
        run.signal(Signal::TERM);
        run.finish_within(Duration::from_secs(60))
    }

    /// `kill -9`: nothing of its own runs.
    fn kill9(&mut self) -> Output {
        self.run.take().expect("running").kill()
    }
}

/// One webhook delivery: POST the body, signed now, on a connection of its
/// own. The status and the answer's JSON (the decision; null if not JSON).
fn post(addr: SocketAddr, body: &[u8]) -> io::Result<(u16, Value)> {
    let now = stripe_sync::commands::unix_now();
    let sig = signature::sign(&Secret::new(SECRET), now, body).header;
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(120)))?;
    let head = format!(
        "POST /stripe HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\n\
         User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n\
         Stripe-Signature: {sig}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no complete answer"))?;
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no status line"))?;
    let mut body = answer[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || raw.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[(eol + 4 + size).min(raw.len())..];
    }
    out
}

/// A delivery of event `event` to receiver `to`, and what came back.
struct Answer {
    event: usize,
    to: usize,
    got: io::Result<(u16, Value)>,
}

type Answers = Arc<Mutex<Vec<Answer>>>;

/// `threads` clients deliver `plan` ((event, receiver) pairs, taken in
/// order as each client is free), all starting at once.
fn deliver(
    addrs: &[SocketAddr],
    bodies: &Arc<Vec<Vec<u8>>>,
    plan: Vec<(usize, usize)>,
    threads: usize,
) -> (Answers, Vec<JoinHandle<()>>) {
    let answers: Answers = Arc::new(Mutex::new(Vec::new()));
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(threads));
    let handles = (0..threads)
        .map(|_| {
            let (answers, plan, next, start, bodies) = (
                Arc::clone(&answers),
                Arc::clone(&plan),
                Arc::clone(&next),
                Arc::clone(&start),
                Arc::clone(bodies),
            );
            let addrs = addrs.to_vec();
            std::thread::spawn(move || {
                start.wait();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(event, to)) = plan.get(i) else {
                        return;
                    };
                    let got = post(addrs[to], &bodies[event]);
                    answers.lock().unwrap().push(Answer { event, to, got });
                }
            })
        })
        .collect();
    (answers, handles)
}

fn join(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        h.join().unwrap();
    }
}

/// Every body to one receiver, one at a time, in order: each answered 200.
fn deliver_in_order(r: &Receiver, bodies: &[Vec<u8>]) {
    for body in bodies {
        let (status, decision) =
            post(r.addr, body).unwrap_or_else(|e| panic!("no answer: {e}\n{}", r.stderr()));
        assert_eq!(status, 200, "{} answered {status}: {decision}", id_of(body));
    }
}

// ---------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------

/// `inspect --json` of the store `--db DB` names (in `dir`): the rows, with
/// or without `synced_at` (the time of each run's write).
fn inspect(dir: &Path, db: &str, hidden: &[&str], keep_synced_at: bool) -> Vec<Value> {
    let mut t = Test::in_dir(dir)
        .args(["inspect", "--json", "--db", db])
        .stdout_json();
    for h in hidden {
        t = t.hides(*h);
    }
    let mut rows = t.run().json().as_array().expect("rows").clone();
    if !keep_synced_at {
        for r in &mut rows {
            r.as_object_mut().unwrap().remove("synced_at");
        }
    }
    rows
}

/// Where two mappings differ, customer by customer (for a message).
fn mapping_diff(got: &[Value], want: &[Value]) -> String {
    let by_id = |rows: &[Value]| -> HashMap<String, Value> {
        rows.iter()
            .map(|r| {
                (
                    r["customer_id"].as_str().unwrap_or("").to_owned(),
                    r.clone(),
                )
            })
            .collect()
    };
    let (g, w) = (by_id(got), by_id(want));
    let mut ids: Vec<&String> = g.keys().chain(w.keys()).collect();
    ids.sort();
    ids.dedup();
    let mut out = String::new();
    for id in ids {
        if g.get(id) != w.get(id) {
            out.push_str(&format!(
                "{id}:\n  got  {}\n  want {}\n",
                g.get(id).map_or("(none)".into(), Value::to_string),
                w.get(id).map_or("(none)".into(), Value::to_string)
            ));
        }
    }
    if got.len() == want.len() && out.is_empty() {
        out.push_str("(the same rows, in another order)");
    }
    out
}

/// The PostgreSQL store's event log: id -> route.
fn pg_events(pg: &PgServer, db: &str) -> HashMap<String, String> {
    let text = pg.query_one(
        db,
        "SELECT coalesce(string_agg(id || ' ' || route, E'\\n' ORDER BY id), '') \
         FROM stripe_sync.events",
    );
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, route)| (id.to_owned(), route.to_owned()))
        .collect()
}

/// The PostgreSQL store's customer ids.
fn pg_customers(pg: &PgServer, db: &str) -> HashSet<String> {
    pg.query_one(
        db,
        "SELECT coalesce(string_agg(id, E'\\n'), '') FROM stripe_sync.customers",
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The SQLite store's event log: id -> route.
fn sqlite_events(db: &Path) -> HashMap<String, String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c.prepare("SELECT id, route FROM events").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

// ---------------------------------------------------------------------------
// a. Two receivers, one truth
// ---------------------------------------------------------------------------

/// The same events through one receiver on a fresh SQLite store, one at a
/// time, in the order Stripe made them: its mapping (without `synced_at`)
/// and its event log.
fn one_receiver(bodies: &[Vec<u8>], extra: &[&str]) -> (Vec<Value>, HashMap<String, String>) {
    let dir = tempdir();
    let mut one = Receiver::start(serve(dir.path(), DbBy::Default, extra, &[]));
    deliver_in_order(&one, bodies);
    let out = one.stop();
    assert_eq!(out.status, 0, "{}", show(&out));
    let db = dir.path().join("stripe-sync.db");
    (
        inspect(dir.path(), &db.display().to_string(), &[], false),
        sqlite_events(&db),
    )
}

/// Two receivers on one fresh PostgreSQL database (one told by `--db`, the
/// other by `STRIPE_SYNC_DB`), each event sent to a random one of them and
/// one in four to both, in a shuffled order, by eight clients at once. Every
/// delivery is answered 200; every event answered `sync` or `ignored` is in
/// the store's event log as such, with its customer's row; the mapping is
/// `want`'s.
fn two_receivers(
    pg: &PgServer,
    bodies: &Arc<Vec<Vec<u8>>>,
    extra: &[&str],
    seed: u64,
    want: &[Value],
) {
    let db = pg.create_database();
    let url = pg.url(&db);
    let hidden = [pg.password()];
    let (da, dbb) = (tempdir(), tempdir());
    let mut receivers = [
        Receiver::start(serve(da.path(), DbBy::Flag(&url), extra, &hidden)),
        Receiver::start(serve(dbb.path(), DbBy::Env(&url), extra, &hidden)),
    ];
    let addrs: Vec<SocketAddr> = receivers.iter().map(|r| r.addr).collect();

    let mut rng = Rng(seed);
    let mut plan = Vec::new();
    for event in 0..bodies.len() {
        let to = rng.below(2) as usize;
        plan.push((event, to));
        if rng.below(4) == 0 {
            plan.push((event, 1 - to));
        }
    }
    rng.shuffle(&mut plan);
    let deliveries = plan.len();
    let (answers, handles) = deliver(&addrs, bodies, plan, 8);
    join(handles);
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    assert_eq!(answers.len(), deliveries, "seed {seed:#x}");

    let log = pg_events(pg, &db);
    let customers = pg_customers(pg, &db);
    for a in &answers {
        let id = id_of(&bodies[a.event]);
        let (status, decision) = a.got.as_ref().unwrap_or_else(|e| {
            panic!(
                "seed {seed:#x}: {id} to receiver {}: no answer: {e}\n{}",
                a.to,
                receivers[a.to].stderr()
            )
        });
        assert_eq!(
            *status,
            200,
            "seed {seed:#x}: {id} to receiver {}: {decision}\n{}",
            a.to,
            receivers[a.to].stderr()
        );
        let route = decision["route"].as_str().unwrap_or("");
        if route == "sync" || route == "ignored" {
            assert_eq!(
                log.get(&id).map(String::as_str),
                Some(route),
                "seed {seed:#x}: {id} was answered 200 {route} by receiver {}",
                a.to
            );
        }
        if route == "sync"
            && let Some(c) = decision["customer_id"].as_str()
        {
            assert!(
                customers.contains(c),
                "seed {seed:#x}: {id} synced {c}, which is not in the store"
            );
        }
    }
    // Every answer followed its commit: the store is complete while the
    // receivers still run.
    let got = inspect(da.path(), &url, &hidden, false);
    assert!(
        got == want,
        "seed {seed:#x}: two receivers on one PostgreSQL store differ from one receiver:\n{}",
        mapping_diff(&got, want)
    );
    for r in &mut receivers {
        let out = r.stop();
        assert_eq!(out.status, 0, "seed {seed:#x}: {}", show(&out));
        assert!(out.stderr.contains("served "), "{}", show(&out));
    }
    assert_eq!(
        inspect(da.path(), &url, &hidden, false),
        got,
        "seed {seed:#x}: stopping changed the store"
    );
}

#[test]
fn two_receivers_of_shuffled_redelivered_events_end_where_one_ends() {
    let Some(pg) = pg::server() else { return };
    let fake = FakeStripe::start(Account::new());
    let bodies = history(&fake, 24);
    let (want, want_log) = one_receiver(&bodies, &[]);
    assert_eq!(want.len(), 24, "every customer is in the mapping: {want:?}");
    assert!(
        want.iter().all(|r| r["user_id"].is_string()),
        "every customer is mapped: {want:?}"
    );
    assert!(
        want_log.values().any(|r| r == "sync"),
        "the reference synced"
    );
    let bodies = Arc::new(bodies);
    for seed in [0x7ea5_0001_u64, 0xb0b_cafe, 0x5eed_d00d_1234] {
        two_receivers(pg, &bodies, &[], seed, &want);
    }
}

#[test]
fn two_live_receivers_of_shuffled_redelivered_events_end_where_one_ends() {
    let Some(pg) = pg::server() else { return };
    let fake = FakeStripe::start(Account::new());
    let bodies = history(&fake, 12);
    let live = [
        "--live",
        "--api-base",
        &fake.url(),
        "--api-key",
        fake.api_key(),
    ];
    let (want, _) = one_receiver(&bodies, &live);
    assert_eq!(want.len(), 12, "every customer is in the mapping: {want:?}");
    assert!(
        want.iter().all(|r| r["source"] == "api"),
        "synced from the API: {want:?}"
    );
    let bodies = Arc::new(bodies);
    for seed in [0x11fe_0001_u64, 0xface_b00c] {
        two_receivers(pg, &bodies, &live, seed, &want);
    }
}

// ---------------------------------------------------------------------------
// b. A killed receiver loses nothing it acknowledged
// ---------------------------------------------------------------------------

#[test]
fn a_receiver_killed_under_load_loses_nothing_it_acknowledged() {
    let Some(pg) = pg::server() else { return };
    let fake = FakeStripe::start(Account::new());
    let all = history(&fake, 40);
    let (want, _) = one_receiver(&all, &[]);
    let db = pg.create_database();
    let url = pg.url(&db);
    let hidden = [pg.password()];
    let dir = tempdir();
    const ROUNDS: usize = 3;
    let per_round = all.len() / ROUNDS;
    let mut rng = Rng(0x0c0f_fee0_dead);
    let mut acknowledged: HashSet<String> = HashSet::new();
    for round in 0..ROUNDS {
        // Killed mid-load: only its start can be expected.
        let mut r = Receiver::start(serve(dir.path(), DbBy::Flag(&url), &[], &hidden));
        let chunk = Arc::new(all[round * per_round..(round + 1) * per_round].to_vec());
        let plan: Vec<(usize, usize)> = (0..chunk.len()).map(|i| (i, 0)).collect();
        let (answers, handles) = deliver(&[r.addr], &chunk, plan, 8);
        let target = 10 + rng.below(per_round as u64 / 2) as usize;
        let start = Instant::now();
        while answers.lock().unwrap().len() < target {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "round {round}: only {} answers\n{}",
                answers.lock().unwrap().len(),
                r.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = r.kill9();
        assert_eq!(out.stdout, "", "{}", show(&out));
        assert!(!out.stderr.contains("panicked"), "{}", show(&out));
        assert!(!out.stderr.contains(pg.password()), "{}", show(&out));
        join(handles);
        let answers = std::mem::take(&mut *answers.lock().unwrap());
        let ok = answers
            .iter()
            .filter(|a| a.got.as_ref().is_ok_and(|(s, _)| *s == 200))
            .count();
        assert!(
            ok < chunk.len(),
            "round {round}: the kill landed after the load ({ok} answers)"
        );
        let log = pg_events(pg, &db);
        let customers = pg_customers(pg, &db);
        let mut acked_now = 0;
        for a in &answers {
            let Ok((status, decision)) = &a.got else {
                continue;
            };
            let id = id_of(&chunk[a.event]);
            assert!(
                (200..300).contains(status),
                "round {round}: {id} answered {status}: {decision}"
            );
            let route = decision["route"].as_str().unwrap_or("");
            if route == "sync" || route == "ignored" {
                assert_eq!(
                    log.get(&id).map(String::as_str),
                    Some(route),
                    "round {round}: {id} was answered 200 {route} before the kill but is not \
                     in stripe_sync.events"
                );
                acknowledged.insert(id.clone());
                acked_now += 1;
            }
            if route == "sync"
                && let Some(c) = decision["customer_id"].as_str()
            {
                assert!(
                    customers.contains(c),
                    "round {round}: {id} was answered 200 sync for {c}, which is not in \
                     stripe_sync.customers"
                );
            }
        }
        assert!(
            acked_now > 0,
            "round {round}: nothing acknowledged before the kill"
        );
    }
    // A restarted receiver takes everything again: what was acknowledged is
    // a duplicate now, the rest is processed, and the store ends where one
    // receiver that was never killed ends.
    let mut r = Receiver::start(serve(dir.path(), DbBy::Flag(&url), &[], &hidden));
    deliver_in_order(&r, &all);
    let out = r.stop();
    assert_eq!(out.status, 0, "{}", show(&out));
    let log = pg_events(pg, &db);
    for id in &acknowledged {
        assert!(log.contains_key(id), "{id} left the log");
    }
    let got = inspect(dir.path(), &url, &hidden, false);
    assert!(
        got == want,
        "after kills and redelivery the store differs from one receiver's:\n{}",
        mapping_diff(&got, &want)
    );
}

// ---------------------------------------------------------------------------
// c. A role that may only read
// ---------------------------------------------------------------------------

#[test]
fn a_read_only_role_can_inspect_but_not_serve() {
    let Some(pg) = pg::server() else { return };
    let fake = FakeStripe::start(Account::new());
    let bodies = history(&fake, 6);
    let db = pg.create_database();
    let url = pg.url(&db);
    let dir = tempdir();
    let d = dir.path();
    let mut r = Receiver::start(serve(d, DbBy::Flag(&url), &[], &[pg.password()]));
    deliver_in_order(&r, &bodies);
    let out = r.stop();
    assert_eq!(out.status, 0, "{}", show(&out));
    let owner_rows = inspect(d, &url, &[pg.password()], true);
    assert_eq!(owner_rows.len(), 6, "{owner_rows:?}");

    let role = read_only_role(pg, &db);
    let hidden = [pg.password(), role.password.as_str()];
    let events_before = pg_events(pg, &db);
    let rows = inspect(d, &role.url, &hidden, true);
    assert_eq!(rows, owner_rows, "{} sees the owner's rows", role.name);
    let one = Test::in_dir(d)
        .args(["--db", &role.url, "inspect", "--customer", "cus_Team0001"])
        .stdout_has("cus_Team0001")
        .hides(pg.password())
        .hides(&role.password)
        .run();
    assert!(one.stdout.contains("user_team_0001"), "{}", show(&one));

    // `serve` checks at start-up that it may write, and refuses (2).
    Test::in_dir(d)
        .args(["--db", &role.url, "serve", "--listen", "127.0.0.1:0"])
        .args(["--secret", SECRET])
        .status(2)
        .stderr_has("error: ")
        .stderr_has("read-only")
        .stderr_has("may not write")
        .stderr_lacks(LISTENING)
        .hides(pg.password())
        .hides(&role.password)
        .hides(SECRET)
        .spawn()
        .finish_within(Duration::from_secs(60));

    // Another write (one new event) is refused the same way; a dry run
    // reads a copy of the store.
    fake.advance_clock(1);
    let new = fake.record_invoice_paid("sub_Team0001A");
    let text: String = bodies
        .iter()
        .map(|b| format!("{}\n", String::from_utf8_lossy(b)))
        .chain([format!("{new}\n")])
        .collect();
    std::fs::write(d.join("again.ndjson"), text).unwrap();
    let reader = || {
        Test::in_dir(d)
            .args(["--db", &role.url])
            .hides(pg.password())
            .hides(&role.password)
    };
    reader()
        .args(["replay", "again.ndjson"])
        .status(2)
        .stderr_has("error: ")
        .stderr_has("read-only")
        .run();
    let v = reader()
        .args(["replay", "--dry-run", "--json", "again.ndjson"])
        .stdout_json()
        .stderr_has("nothing written")
        .run()
        .json();
    assert_eq!(v["summary"]["dry_run"], true, "{v}");
    assert_eq!(
        v["summary"]["duplicate"],
        bodies.len(),
        "the copy holds the event log: {}",
        v["summary"]
    );
    assert_eq!(v["summary"]["sync"], 1, "{}", v["summary"]);
    assert_eq!(pg_events(pg, &db), events_before, "nothing written");
    assert_eq!(
        inspect(d, &url, &[pg.password()], true),
        owner_rows,
        "nothing written"
    );
}

// ---------------------------------------------------------------------------
// d. Secrets
// ---------------------------------------------------------------------------

/// The harness's `hides` is what the tests above rely on: a run whose
/// output shows a hidden text fails.
#[test]
#[should_panic(expected = "shows hidden text")]
fn a_run_that_shows_a_hidden_text_fails() {
    Test::new()
        .args([
            "sign",
            "--secret",
            "whsec_hides_selftest",
            "--timestamp",
            "1767225600",
            "-",
        ])
        .stdin("{}")
        .stdout_has("t=1767225600,v1=")
        .hides(",v1=")
        .run();
}

// ---------------------------------------------------------------------------
// Same meaning, same JSON
// ---------------------------------------------------------------------------

/// `stripe-sync --db DB ARGS` in `dir` (status `status`): stdout as JSON.
fn json_run(dir: &Path, db: &str, args: &[&str], status: i32, hidden: &[&str]) -> Value {
    let mut t = Test::in_dir(dir)
        .args(["--db", db])
        .args(args)
        .status(status)
        .stdout_json()
        .stderr_with("no error line", |e| !e.contains("error"));
    for h in hidden {
        t = t.hides(*h);
    }
    t.run().json()
}

/// Without what differs from run to run (times, durations).
fn steady(mut v: Value) -> Value {
    if let Some(summary) = v.get_mut("summary").and_then(Value::as_object_mut) {
        summary.remove("elapsed_ms");
    }
    v
}

/// The same runs on an SQLite store and on a PostgreSQL one print the
/// same documents: `replay --json` of the fixtures (twice: the second is
/// all duplicates), `resync --all`, `--check`, and `inspect --json`.
#[test]
fn both_backends_print_the_same_documents() {
    let Some(pg) = pg::server() else { return };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let fixtures = fixtures.display().to_string();
    let fake = FakeStripe::start(Account::generate_at(30, 40, 11, T0));
    let api = ["--api-base", &fake.url(), "--api-key", fake.api_key()];
    let dir = tempdir();
    let d = dir.path();
    let (sqlite, url) = (
        d.join("s.db").display().to_string(),
        pg.url(&pg.create_database()),
    );
    let hidden = [pg.password()];
    let both = |args: &[&str], status: i32| -> (Value, Value) {
        (
            steady(json_run(d, &sqlite, args, status, &[])),
            steady(json_run(d, &url, args, status, &hidden)),
        )
    };
    let mut runs: Vec<(String, (Value, Value))> = vec![
        // One rejected checkout: status 1.
        ("replay".into(), both(&["replay", "--json", &fixtures], 1)),
        (
            "replay again".into(),
            both(&["replay", "--json", &fixtures], 1),
        ),
    ];
    let resync: Vec<&str> = ["resync", "--all", "--json"]
        .iter()
        .copied()
        .chain(api)
        .collect();
    runs.push(("resync --all".into(), both(&resync, 0)));
    let check: Vec<&str> = resync.iter().copied().chain(["--check"]).collect();
    runs.push(("resync --all --check".into(), both(&check, 0)));
    let (mut a, mut b) = both(&["inspect", "--json"], 0);
    for rows in [&mut a, &mut b] {
        for r in rows.as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("synced_at");
        }
    }
    assert_eq!(
        a.as_array().unwrap().len(),
        36,
        "6 customers of the fixtures, 30 of the API"
    );
    runs.push(("inspect".into(), (a, b)));
    for (name, (sqlite, postgres)) in runs {
        assert!(
            sqlite == postgres,
            "{name}: SQLite and PostgreSQL print different documents:\n--- SQLite\n{sqlite:#}\n--- PostgreSQL\n{postgres:#}"
        );
    }
}

// ---------------------------------------------------------------------------
// e. Found on the way: one receiver's answer depends on the arrival order
// ---------------------------------------------------------------------------

/// Not about PostgreSQL: ONE receiver on an SQLite store, given the same
/// events in another order, ends with another mapping when a customer's
/// user id is only on its subscriptions (the customer's own metadata is
/// empty): the customer's `user_id` is whatever the last event processed
/// said (`customer.updated` with empty metadata: null; a subscription
/// event routed by its own metadata: the user), not what the newest
/// snapshot says. The tests above keep the user on the customer, where
/// the answer does not depend on the order.
#[test]
#[ignore = "engine bug (both backends): a customer's user_id depends on the arrival order \
            when the user is only in its subscriptions' metadata; see the test's doc"]
fn one_receiver_ends_the_same_whatever_the_order_with_the_user_only_on_subscriptions() {
    let fake = FakeStripe::start(Account::new());
    let bodies = history_with(&fake, 24, false, false);
    let (want, _) = one_receiver(&bodies, &[]);
    let mut shuffled = bodies.clone();
    Rng(0x7ea5_0001).shuffle(&mut shuffled);
    let (got, _) = one_receiver(&shuffled, &[]);
    assert!(
        got == want,
        "the same events in another order:\n{}",
        mapping_diff(&got, &want)
    );
}

/// The same check with the user on every customer: one receiver ends the
/// same whatever the order (what the two-receiver tests build on).
#[test]
fn one_receiver_ends_the_same_whatever_the_order() {
    let fake = FakeStripe::start(Account::new());
    let bodies = history(&fake, 24);
    let (want, _) = one_receiver(&bodies, &[]);
    for seed in [0x7ea5_0001_u64, 0x0dd_ba11] {
        let mut shuffled = bodies.clone();
        Rng(seed).shuffle(&mut shuffled);
        let (got, _) = one_receiver(&shuffled, &[]);
        assert!(
            got == want,
            "seed {seed:#x}: the same events in another order:\n{}",
            mapping_diff(&got, &want)
        );
    }
}

/// Not about PostgreSQL either: ONE receiver on an SQLite store ends with
/// another card when events arrive together (a batch) than when they come
/// one at a time. A subscription names its card by id; the card's brand
/// and last4 are taken from a `payment_method.*` event only when that event
/// is in the same batch (`sync::source`'s cards of the inputs), and the
/// store does not keep cards of their own, so the answer depends on which
/// requests the writer happened to take together.
#[test]
#[ignore = "engine bug (both backends): serve's card depends on which events share a batch \
            when payment_method.* events are sent; see the test's doc"]
fn one_receiver_ends_the_same_whether_events_come_together_or_alone() {
    let fake = FakeStripe::start(Account::new());
    let bodies = history_with(&fake, 24, true, true);
    let (want, _) = one_receiver(&bodies, &[]);
    let bodies = Arc::new(bodies);
    for seed in 1..8_u64 {
        let dir = tempdir();
        let mut one = Receiver::start(serve(dir.path(), DbBy::Default, &[], &[]));
        let mut plan: Vec<(usize, usize)> = (0..bodies.len()).map(|i| (i, 0)).collect();
        Rng(seed * 0x9e37_79b9).shuffle(&mut plan);
        let (answers, handles) = deliver(&[one.addr], &bodies, plan, 8);
        join(handles);
        for a in answers.lock().unwrap().iter() {
            assert!(
                a.got.as_ref().is_ok_and(|(s, _)| *s == 200),
                "seed {seed}: {:?}",
                a.got
            );
        }
        let out = one.stop();
        assert_eq!(out.status, 0, "{}", show(&out));
        let db = dir.path().join("stripe-sync.db");
        let got = inspect(dir.path(), &db.display().to_string(), &[], false);
        assert!(
            got == want,
            "seed {seed}: delivered at once, not one at a time:\n{}",
            mapping_diff(&got, &want)
        );
    }
}

/// `resync --all` on a shared store holds its lock for the whole run: a
/// second one with `--no-wait` exits 2 naming who holds it; without, it
/// says it waits, and runs once the first has ended. Neither shows the
/// password.
#[test]
fn a_second_backfill_waits_for_the_first_or_exits_2_with_no_wait() {
    let Some(pg) = pg::server() else { return };
    let db = pg.create_database();
    let url = pg.url(&db);
    // 200 customers and subscriptions: 2 + 2 list pages (the two listings
    // side by side), each a second late, so the first backfill holds the
    // lock for 2 s or more: time for the other two to start.
    let fake = FakeStripe::builder()
        .account(Account::generate_at(200, 200, 5, T0))
        .latency(Duration::from_secs(1))
        .start();
    let dir = tempdir();
    let backfill = |extra: &[&str]| {
        Test::in_dir(dir.path())
            .args(["resync", "--all", "--db", &url])
            .args(extra)
            .fake(&fake)
            .hides(pg.password())
    };
    let held = || {
        pg.query_one(
            &db,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND objsubid = 2 AND classid = 1398035289 AND objid = 3",
        ) == "1"
    };
    let mut first = backfill(&[])
        .status(0)
        .stdout_has("200 customers")
        .stderr_lacks("waiting")
        .spawn();
    first.wait_until(
        "the first backfill to hold the lock",
        Duration::from_secs(20),
        |_| held(),
    );

    let refused = backfill(&["--no-wait"])
        .status(2)
        .stderr_has("another backfill is running on this store: server process")
        .stderr_has("run again when it ends")
        .run();
    assert!(!refused.stderr.contains("waiting"), "{}", show(&refused));

    let second = backfill(&[])
        .status(0)
        .stdout_has("200 customers")
        .stderr_has("waiting for it to end")
        .spawn();
    first.finish_within(Duration::from_secs(60));
    let second = second.finish_within(Duration::from_secs(60));
    assert!(
        !held(),
        "the lock is let go when the backfill ends\n{}",
        show(&second)
    );
}
