//! Chaos: `serve --live --record` against an API stand-in that fails (5xx,
//! 429, HTML, truncated bodies, refused connections), stalls and recovers at
//! random, while signed events arrive over several connections with
//! redeliveries (the same bytes again: at once on two connections, later,
//! and as Stripe retries what was not acknowledged), and the server is
//! `kill -9`ed and restarted on the same store and record folder.
//!
//! Every request is tracked (event, bytes, answer) and every answer is
//! checked against the store at the moment it arrives. Afterwards, with the
//! API healthy and the server restarted, what never got a 200 is redelivered
//! until it does. What must hold (issue 18, SPEC.md `serve`):
//!
//! - a 200 is a promise: the event is in the event log when the answer
//!   arrives, after every later `kill -9`, and at the end, and a recording
//!   holds exactly the bytes sent for it (one per acknowledged request);
//! - a 500 means a retry will be processed: an event answered 500 is in the
//!   log only when another delivery may have processed it (one answered 200
//!   as processed, or one whose answer was lost);
//! - a `duplicate` is acknowledged only for an event in the log, processed
//!   by another delivery that started before the answer;
//! - an event acknowledged as processed is never processed again;
//! - the store passes `PRAGMA integrity_check`, and the record folder holds
//!   nothing but the exact bodies sent.
//!
//! The schedule of events, redeliveries, faults and kills comes from one
//! seed; which request meets which fault depends on timing, so the checks
//! hold for any interleaving rather than for one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_sync::secret::Secret;
use stripe_sync::signature;

use rustix::process::Signal;

use crate::common::{integrity, tempdir};
use crate::harness::{Output, Running, Test, show};
use crate::support::fake_stripe::{Account, FakeStripe, Fault};

const SECRET: &str = "whsec_chaos_test_5b7e19d3a0";
const SEED: u64 = 0x0c4a_05ee_d5ee_d001;
/// Distinct events; with redeliveries and retries, about twice as many requests.
const EVENTS: usize = 400;
/// Customers whose events name the user (`clerkUserId` in the metadata).
const NAMED: usize = 8;
/// Customers whose user is only on the customer: the first event processed
/// for each needs the API to look the customer up.
const LOOKUP: usize = 20;
/// Connections sending at once (each may open a second one for a twin).
const SENDERS: usize = 8;
/// How long the faults and kills go on at most.
const CHAOS: Duration = Duration::from_secs(20);
/// Each sender's pause between deliveries, in ms (from, to).
const PAUSE: (u64, u64) = (40, 240);
/// `kill -9`s during the chaos (one more ends it, under load too).
const KILLS: usize = 3;
/// Stripe's own retries of an unacknowledged event during the chaos.
const RETRIES: usize = 3;
/// Deliveries of each unacknowledged event once the API is healthy.
const FINAL_TRIES: usize = 5;
/// The redeliveries after the chaos take at most this long.
const FINAL_WITHIN: Duration = Duration::from_secs(10);
/// A client gives up on an answer after this (Stripe: 10 to 30 s).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// The server's own bound on a request (`STRIPE_SYNC_TEST_ANSWER_BOUND_MS`;
/// 15 s otherwise): API stalls longer than this are answered 500.
const SERVER_BOUND_MS: &str = "5000";
const T0: i64 = 1_767_225_600;

/// Deterministic "random" numbers (xorshift), so a schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn ms(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

// ---------------------------------------------------------------------------
// The account, the events
// ---------------------------------------------------------------------------

fn customer_id(c: usize) -> String {
    match c < NAMED {
        true => format!("cus_ChaosNamed{c:03}"),
        false => format!("cus_ChaosLookup{:03}", c - NAMED),
    }
}

fn user_id(c: usize) -> String {
    format!("user_chaos_{c:03}")
}

fn sub_id(c: usize) -> String {
    format!("sub_Chaos{c:03}")
}

fn account() -> Account {
    let mut a = Account::new();
    for c in 0..NAMED + LOOKUP {
        let created = T0 + c as i64;
        a.add_customer(json!({
            "id": customer_id(c), "email": format!("chaos{c}@example.com"),
            "name": format!("Chaos {c}"), "metadata": {"clerkUserId": user_id(c)},
            "created": created,
        }));
        a.add_subscription(json!({
            "id": sub_id(c), "customer": customer_id(c), "status": "active",
            "created": created + 100, "price": "price_pro",
            "current_period_start": created + 100,
            "current_period_end": created + 100 + 31 * 86_400,
        }));
    }
    a
}

struct Ev {
    id: String,
    body: Vec<u8>,
}

/// `invoice.paid` and `customer.subscription.updated` over the customers
/// (named customers' events carry the user, the others' do not), and now
/// and then a `product.created` (ignored: no API call). Some bodies are
/// pretty-printed with a CRLF, as a proxy might pass them on.
fn events(rng: &mut Rng) -> Vec<Ev> {
    (0..EVENTS)
        .map(|i| {
            let id = format!("evt_chaos{i:04}");
            let created = T0 + 1_000 + i as i64;
            // Lookup customers come in over the run, so lookups happen all along.
            let lookups_so_far = (1 + i * LOOKUP / (EVENTS * 3 / 4)).min(LOOKUP);
            let c = match rng.below(3) {
                0 => rng.below(NAMED as u64) as usize,
                _ => NAMED + rng.below(lookups_so_far as u64) as usize,
            };
            let metadata = match c < NAMED {
                true => json!({"clerkUserId": user_id(c)}),
                false => json!({}),
            };
            let (kind, object) = if i % 23 == 11 {
                (
                    "product.created",
                    json!({"id": format!("prod_chaos{i}"), "object": "product", "name": "Chaos"}),
                )
            } else if i % 2 == 0 {
                (
                    "invoice.paid",
                    json!({"id": format!("in_chaos{i:04}"), "object": "invoice",
                        "customer": customer_id(c), "subscription": sub_id(c),
                        "status": "paid", "metadata": metadata}),
                )
            } else {
                (
                    "customer.subscription.updated",
                    json!({"id": sub_id(c), "object": "subscription",
                        "customer": customer_id(c), "status": "active", "metadata": metadata}),
                )
            };
            let v = json!({
                "id": id, "object": "event", "type": kind, "created": created,
                "api_version": "2025-06-30.basil", "livemode": false, "pending_webhooks": 1,
                "request": {"id": null, "idempotency_key": null},
                "data": {"object": object},
            });
            let body = match i % 5 {
                3 => format!("{}\r\n", serde_json::to_string_pretty(&v).unwrap()).into_bytes(),
                _ => v.to_string().into_bytes(),
            };
            Ev { id, body }
        })
        .collect()
}

/// One delivery in the schedule: `twin` sends the same bytes on two
/// connections at once.
#[derive(Clone, Copy)]
struct Item {
    event: usize,
    twin: bool,
}

/// Every event once in order; some twice at once, some again later.
fn schedule(rng: &mut Rng) -> VecDeque<Item> {
    let mut keyed: Vec<(usize, Item)> = Vec::new();
    for event in 0..EVENTS {
        let twin = rng.below(100) < 20;
        keyed.push((event * 10, Item { event, twin }));
        if rng.below(100) < 15 {
            let later = event + 5 + rng.below(60) as usize;
            keyed.push((later * 10 + 5, Item { event, twin: false }));
        }
    }
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, item)| item).collect()
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

struct Server {
    run: Running,
    addr: SocketAddr,
    path: String,
    /// Its number, for the log.
    n: usize,
}

/// Everything every server printed on stderr, for failure messages.
type Log = Arc<Mutex<String>>;

fn start(dir: &Path, api: &str, key: &str, n: usize) -> Server {
    // Stopped with SIGTERM (the last one), a server exits 0 having said
    // where it listened; its log is on stderr, nothing on stdout.
    let mut run = Test::in_dir(dir)
        .env("STRIPE_SYNC_TEST_ANSWER_BOUND_MS", SERVER_BOUND_MS)
        .args(["serve", "--listen", "127.0.0.1:0", "--secret", SECRET])
        .args(["--live", "--api-base", api, "--api-key", key])
        .args(["--max-rps", "1000", "--record", "rec"])
        .stderr_has("listening on http://")
        .spawn();
    run.wait_until(
        &format!("server #{n} to say where it listens"),
        Duration::from_secs(30),
        |r| {
            r.stderr_now()
                .split("listening on http://")
                .nth(1)
                .is_some_and(|rest| rest.contains('\n'))
        },
    );
    let stderr = run.stderr_now();
    let rest = stderr
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("the listening line")
        .trim()
        .to_owned();
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Server {
        run,
        addr: addr.parse().expect("the listening address"),
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
        n,
    }
}

impl Server {
    /// Whether the process has ended (on its own).
    fn exited(&mut self) -> bool {
        self.run.exited()
    }

    /// `kill -9`; what it printed goes to `log`.
    fn kill9(self, log: &Log) -> Output {
        let n = self.n;
        let out = self.run.kill();
        keep(log, n, &out);
        out
    }

    /// SIGTERM, then what the test stated (status 0) is checked; `None`
    /// when it holds, else why not. One still running 30 s later is killed.
    fn stop(mut self, log: &Log) -> Option<String> {
        let n = self.n;
        if !self.exited() {
            self.run.signal(Signal::TERM);
        }
        let pid = rustix::process::Pid::from_raw(self.run.pid() as i32).expect("pid");
        let (ended, ended_rx) = mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) =
                ended_rx.recv_timeout(Duration::from_secs(30))
            {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        });
        let run = self.run;
        let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.finish()));
        drop(ended);
        let _ = watchdog.join();
        match finished {
            Ok(out) => {
                keep(log, n, &out);
                None
            }
            Err(why) => Some(
                why.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "the check panicked".to_owned()),
            ),
        }
    }
}

/// Appends a server's stderr to `log`.
fn keep(log: &Log, n: usize, out: &Output) {
    log.lock()
        .unwrap()
        .push_str(&format!("--- server #{n}\n{}", out.stderr));
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// Deliveries
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// No connection: never sent.
    Refused,
    /// Sent, but no whole answer (the server died, or the client gave up):
    /// the event may have been processed.
    Lost(String),
    Status {
        code: u16,
        route: String,
        text: String,
    },
}

impl Answer {
    fn acked(&self) -> bool {
        matches!(self, Answer::Status { code: 200, .. })
    }

    /// Acknowledged as processed by this very delivery.
    fn processed(&self) -> bool {
        matches!(self, Answer::Status { code: 200, route, .. } if route != "duplicate")
    }

    /// This delivery may be the one that processed its event.
    fn may_have_processed(&self) -> bool {
        self.processed() || matches!(self, Answer::Lost(_))
    }
}

/// POST the body, signed now, on a fresh connection.
fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Answer {
    let sig = signature::sign(
        &Secret::new(SECRET),
        stripe_sync::commands::unix_now(),
        body,
    )
    .header;
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return Answer::Refused;
    };
    let _ = s.set_read_timeout(Some(ANSWER_WITHIN));
    let _ = s.set_write_timeout(Some(ANSWER_WITHIN));
    let _ = s.set_nodelay(true);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json; charset=utf-8\r\n\
         User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\nStripe-Signature: {sig}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if let Err(e) = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
    {
        return Answer::Lost(format!("sending: {e}"));
    }
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        return Answer::Lost(format!("reading: {e} ({} bytes)", raw.len()));
    }
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer::Lost(format!("no whole head ({} bytes)", raw.len()));
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = &raw[split + 4..];
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(0);
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(body.len());
    if code == 0 || body.len() != length {
        return Answer::Lost(format!("a partial answer: {head:?}"));
    }
    let route = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["route"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Answer::Status {
        code,
        route,
        text: String::from_utf8_lossy(body).into_owned(),
    }
}

/// Whether the event log holds `id` now.
fn in_log(db: &Path, id: &str) -> bool {
    let mut last = String::new();
    for _ in 0..3 {
        let got = open_store(db).and_then(|c| {
            c.busy_timeout(Duration::from_secs(2))?;
            c.query_row("SELECT count(*) FROM events WHERE id = ?1", [id], |r| {
                r.get::<_, i64>(0)
            })
        });
        match got {
            Ok(n) => return n > 0,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("cannot read the event log of {}: {last}", db.display())
}

/// The store as it is (never made: the server makes it).
fn open_store(db: &Path) -> rusqlite::Result<rusqlite::Connection> {
    rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

fn log_ids(db: &Path) -> HashSet<String> {
    let c = open_store(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut st = c.prepare("SELECT id FROM events").unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Chaos,
    /// Redelivery of what was never acknowledged, the API healthy.
    Retry,
    /// Every event once more at the end: all duplicates.
    Last,
}

/// One request: ticks order starts, answers and log reads across threads.
#[derive(Debug)]
struct Attempt {
    event: usize,
    phase: Phase,
    start: u64,
    end: u64,
    answer: Answer,
    /// Whether the event was in the log just after the answer.
    logged_after: Option<bool>,
}

/// What the senders share.
struct Shared {
    events: Vec<Ev>,
    db: PathBuf,
    /// The server's address (None while it restarts) and webhook path.
    target: Mutex<Option<(SocketAddr, String)>>,
    clock: AtomicU64,
    /// Requests sent and not yet answered.
    in_flight: AtomicUsize,
    attempts: Mutex<Vec<Attempt>>,
    stop: AtomicBool,
    work: Mutex<Work>,
}

struct Work {
    schedule: VecDeque<Item>,
    /// Stripe's retries of unacknowledged events: (due, event).
    retries: Vec<(Instant, usize)>,
    retried: HashMap<usize, usize>,
}

impl Shared {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    /// The next delivery: a retry that is due, else the schedule; waits for
    /// retries not yet due; None when all is done or the chaos is over.
    fn next(&self) -> Option<Item> {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            {
                let mut w = self.work.lock().unwrap();
                let now = Instant::now();
                if let Some(i) = w.retries.iter().position(|(due, _)| *due <= now) {
                    let (_, event) = w.retries.remove(i);
                    return Some(Item { event, twin: false });
                }
                if let Some(item) = w.schedule.pop_front() {
                    return Some(item);
                }
                if w.retries.is_empty() {
                    return None;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server to send to, waiting while it restarts.
    fn target(&self) -> Option<(SocketAddr, String)> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if let Some(t) = self.target.lock().unwrap().clone() {
                return Some(t);
            }
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Send one event, read the log at once, keep the attempt; true on 200.
    fn deliver(&self, event: usize, phase: Phase, rng: &mut Rng) -> bool {
        let Some((addr, path)) = self.target() else {
            return false;
        };
        let ev = &self.events[event];
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let start = self.tick();
        let answer = post(addr, &path, &ev.body);
        let end = self.tick();
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if answer == Answer::Refused {
            // Nothing listens (yet): as Stripe, try again a little later.
            std::thread::sleep(Duration::from_millis(25));
        }
        let logged_after =
            matches!(answer, Answer::Status { .. }).then(|| in_log(&self.db, &ev.id));
        let acked = answer.acked();
        if !acked && phase == Phase::Chaos {
            let mut w = self.work.lock().unwrap();
            let n = w.retried.entry(event).or_default();
            if *n < RETRIES {
                *n += 1;
                let due = Instant::now() + rng.ms(300, 2_500);
                w.retries.push((due, event));
            }
        }
        self.attempts.lock().unwrap().push(Attempt {
            event,
            phase,
            start,
            end,
            answer,
            logged_after,
        });
        acked
    }
}

/// One of Stripe's delivery queues: the next delivery, then a pause (so
/// the schedule lasts long enough for the API to change many times).
fn sender(shared: &Shared, seed: u64) {
    let mut rng = Rng(seed);
    while let Some(item) = shared.next() {
        if item.twin {
            // The second copy at once, or while the first is in the writer.
            let lag = rng.ms(0, 150) * u32::from(rng.below(3) == 0);
            let mut twin_rng = Rng(rng.below(u64::MAX) | 1);
            std::thread::scope(|s| {
                let twin = s.spawn(move || {
                    std::thread::sleep(lag);
                    shared.deliver(item.event, Phase::Chaos, &mut twin_rng)
                });
                shared.deliver(item.event, Phase::Chaos, &mut rng);
                twin.join().unwrap();
            });
        } else {
            shared.deliver(item.event, Phase::Chaos, &mut rng);
        }
        std::thread::sleep(rng.ms(PAUSE.0, PAUSE.1));
    }
}

// ---------------------------------------------------------------------------
// Chaos in the API
// ---------------------------------------------------------------------------

/// Until `stop`: every few hundred ms the API becomes something else
/// (healthy, failing, slow, gone), from a seeded schedule.
fn chaos(mut fake: FakeStripe, stop: &AtomicBool, mut rng: Rng) -> (FakeStripe, Vec<&'static str>) {
    let mut steps = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        fake.clear_faults();
        fake.set_latency(Duration::ZERO);
        fake.come_back();
        let n = 1 + rng.below(8) as usize;
        let step = match rng.below(13) {
            0 | 1 => "healthy",
            2 => {
                fake.push_fault(Fault::status(500).forever());
                "500 forever"
            }
            3 => {
                // Customer lookups fail, the rest works.
                fake.push_fault(Fault::status(500).on_path("/v1/customers").forever());
                "500 on customers"
            }
            4 => {
                fake.push_fault(Fault::status(500).times(n));
                "500 n times"
            }
            5 => {
                fake.push_fault(Fault::Html.times(n));
                "502 html n times"
            }
            6 => {
                fake.push_fault(Fault::TruncatedBody.times(n));
                "truncated n times"
            }
            7 => {
                fake.set_latency(rng.ms(100, 1_200));
                "latency"
            }
            8 => {
                // Up to longer than the server's bound on a request.
                fake.push_fault(Fault::Timeout(rng.ms(500, 6_000)).times(1 + n / 3));
                "stall"
            }
            9 => {
                fake.push_fault(
                    Fault::Status {
                        code: 429,
                        should_retry: Some(true),
                        retry_after: None,
                    }
                    .times(n),
                );
                "429 n times"
            }
            11 => {
                // Slow, then failing: requests pile up, and redeliveries
                // arrive beside their first copies.
                fake.set_latency(rng.ms(200, 700));
                fake.push_fault(Fault::status(500).forever());
                "slow 500 forever"
            }
            12 => {
                fake.set_latency(rng.ms(200, 700));
                fake.push_fault(Fault::status(500).on_path("/v1/customers").forever());
                "slow 500 on customers"
            }
            _ => {
                fake.go_away();
                "gone"
            }
        };
        steps.push(step);
        let until = Instant::now() + rng.ms(200, 1_000);
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    fake.clear_faults();
    fake.set_latency(Duration::ZERO);
    fake.come_back();
    (fake, steps)
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

/// Every answer held to the promise (see the module's doc), with the log as
/// it was just after each answer and as it is at the end; ids of events
/// acknowledged and missing from the log go to `lost`.
fn judge(
    events: &[Ev],
    attempts: &[Attempt],
    logged: &HashSet<String>,
    lost: &mut HashSet<String>,
) -> Vec<String> {
    let mut violations = Vec::new();
    let mut by_event: HashMap<usize, Vec<&Attempt>> = HashMap::new();
    for a in attempts {
        by_event.entry(a.event).or_default().push(a);
    }
    for a in attempts {
        let id = &events[a.event].id;
        let others = || {
            by_event[&a.event]
                .iter()
                .filter(move |b| !std::ptr::eq(**b, a))
        };
        match &a.answer {
            Answer::Refused | Answer::Lost(_) => {}
            Answer::Status {
                code: 200,
                route,
                text,
            } => {
                if a.logged_after != Some(true) {
                    violations.push(format!(
                        "{id}: 200 {route} but not in the event log when the answer came: {text}"
                    ));
                }
                if !logged.contains(id) && lost.insert(id.clone()) {
                    violations.push(format!(
                        "{id}: 200 {route} but not in the event log at the end"
                    ));
                }
                match route.as_str() {
                    "duplicate" => {
                        // Processed by another delivery that had begun by then.
                        if !others().any(|b| b.start < a.end && b.answer.may_have_processed()) {
                            violations.push(format!(
                                "{id}: 200 duplicate, but no other delivery begun before it was processed \
                                 (theirs: {:?})",
                                others().map(|b| &b.answer).collect::<Vec<_>>()
                            ));
                        }
                    }
                    "sync" | "ignored" => {
                        // Processed twice: an earlier delivery was acknowledged as processed.
                        if let Some(b) = others().find(|b| b.end < a.start && b.answer.processed())
                        {
                            violations.push(format!(
                                "{id}: processed again ({route}) after an earlier 200 {:?}",
                                b.answer
                            ));
                        }
                    }
                    other => violations.push(format!(
                        "{id}: 200 with route {other:?}, not sync, ignored or duplicate: {text}"
                    )),
                }
                if a.phase == Phase::Last && route != "duplicate" {
                    violations.push(format!(
                        "{id}: at the end, after an acknowledged delivery, answered 200 {route}"
                    ));
                }
            }
            Answer::Status {
                code: 500, text, ..
            } => {
                // A 500 promises that a retry is processed: if the event is in
                // the log, another delivery begun by then processed it.
                if a.logged_after == Some(true)
                    && !others().any(|b| b.start < a.end && b.answer.may_have_processed())
                {
                    violations.push(format!(
                        "{id}: answered 500 ({text}) but in the event log, processed by no other delivery"
                    ));
                }
            }
            Answer::Status { code, text, .. } => {
                violations.push(format!("{id}: unexpected {code}: {text}"));
            }
        }
    }
    // An event never acknowledged is in the log only if a delivery whose
    // answer was lost processed it.
    for (e, list) in &by_event {
        let id = &events[*e].id;
        if logged.contains(id)
            && !list
                .iter()
                .any(|a| a.answer.acked() || matches!(a.answer, Answer::Lost(_)))
        {
            violations.push(format!(
                "{id}: never acknowledged, never lost, yet in the event log"
            ));
        }
    }
    violations
}

/// Each acknowledged request has its own recording holding exactly the
/// bytes sent; the folder holds nothing else (no leftovers after a clean
/// start and stop, nothing rejected). The violations, and the files seen.
fn check_recordings(rec: &Path, events: &[Ev], attempts: &[Attempt]) -> (Vec<String>, usize) {
    let mut violations = Vec::new();
    let mut recorded: HashMap<String, usize> = HashMap::new();
    let mut files = 0;
    for entry in std::fs::read_dir(rec).expect("the record folder") {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        files += 1;
        if !name.ends_with(".json") || entry.path().is_dir() {
            violations.push(format!("rec/{name}: not a recording"));
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        let id = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned));
        match id.and_then(|id| events.iter().find(|e| e.id == id)) {
            Some(e) if e.body == bytes && name.ends_with(&format!("-{}.json", e.id)) => {
                *recorded.entry(e.id.clone()).or_default() += 1;
            }
            _ => violations.push(format!(
                "rec/{name}: not exactly a body that was sent ({} bytes)",
                bytes.len()
            )),
        }
    }
    let mut acks: HashMap<&str, usize> = HashMap::new();
    for a in attempts.iter().filter(|a| a.answer.acked()) {
        *acks.entry(events[a.event].id.as_str()).or_default() += 1;
    }
    for (id, acks) in acks {
        let kept = recorded.get(id).copied().unwrap_or(0);
        if kept < acks {
            violations.push(format!(
                "{id}: {acks} acknowledged requests but {kept} recordings of its bytes"
            ));
        }
    }
    (violations, files)
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

#[test]
fn serve_under_api_chaos_and_kill_9_acknowledges_only_what_it_processed_and_kept() {
    let began = Instant::now();
    let dir = tempdir();
    let d = dir.path();
    let db = d.join("stripe-sync.db");
    let rec = d.join("rec");
    let mut rng = Rng(SEED);
    let fake = FakeStripe::start(account());
    let (api, key) = (fake.url(), fake.api_key().to_owned());
    let log: Log = Arc::new(Mutex::new(String::new()));
    let mut servers = 0;
    let mut server = start(d, &api, &key, servers);
    servers += 1;

    let shared = Arc::new(Shared {
        events: events(&mut rng),
        db: db.clone(),
        target: Mutex::new(Some((server.addr, server.path.clone()))),
        clock: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        attempts: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        work: Mutex::new(Work {
            schedule: schedule(&mut rng),
            retries: Vec::new(),
            retried: HashMap::new(),
        }),
    });
    let scheduled = shared.work.lock().unwrap().schedule.len();
    let chaos_stop = Arc::new(AtomicBool::new(false));
    let chaos_thread = {
        let stop = Arc::clone(&chaos_stop);
        let rng = Rng(rng.below(u64::MAX) | 1);
        std::thread::spawn(move || chaos(fake, &stop, rng))
    };
    let senders: Vec<_> = (0..SENDERS)
        .map(|k| {
            let shared = Arc::clone(&shared);
            let seed = rng.below(u64::MAX) | 1;
            std::thread::Builder::new()
                .name(format!("chaos-sender-{k}"))
                .spawn(move || sender(&shared, seed))
                .unwrap()
        })
        .collect();

    // Kills when seeded shares of the schedule have been sent, or of the
    // time has passed, and requests are in flight (so each lands under load
    // however fast the machine is); the last one, when all of it has been
    // sent or the time is up, ends the chaos.
    let mut violations: Vec<String> = Vec::new();
    let mut lost: HashSet<String> = HashSet::new();
    let mut kills = 0;
    let chaos_start = Instant::now();
    let share = scheduled / (KILLS + 1);
    for k in 0..=KILLS {
        let (point, by) = match k < KILLS {
            true => (
                share * (k + 1) - rng.below(share as u64 / 3) as usize,
                CHAOS * (k as u32 + 1) / (KILLS as u32 + 1),
            ),
            false => (scheduled, CHAOS),
        };
        while chaos_start.elapsed() < by
            && scheduled - shared.work.lock().unwrap().schedule.len() < point
            && !senders.iter().all(|t| t.is_finished())
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        // With requests in flight (a little later at most).
        let t = Instant::now();
        while shared.in_flight.load(Ordering::SeqCst) < 2 && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(1));
        }
        *shared.target.lock().unwrap() = None;
        if k == KILLS {
            shared.stop.store(true, Ordering::SeqCst);
        }
        let by_itself = server.exited();
        let out = server.kill9(&log);
        if by_itself {
            violations.push(format!(
                "server #{} stopped by itself before kill #{} (status {})\n{}",
                servers - 1,
                kills + 1,
                out.status,
                show(&out)
            ));
        }
        kills += 1;
        let kill_tick = shared.tick();
        // What was acknowledged before the kill survived it.
        integrity(&db);
        let logged = log_ids(&db);
        for a in shared.attempts.lock().unwrap().iter() {
            let id = &shared.events[a.event].id;
            if a.answer.acked()
                && a.end < kill_tick
                && !logged.contains(id)
                && lost.insert(id.clone())
            {
                violations.push(format!(
                    "{id} was answered 200 ({:?}) but is not in the event log after kill #{kills}",
                    a.answer
                ));
            }
        }
        if k == KILLS {
            break;
        }
        server = start(d, &api, &key, servers);
        servers += 1;
        *shared.target.lock().unwrap() = Some((server.addr, server.path.clone()));
    }
    for t in senders {
        t.join().expect("a sender panicked");
    }
    chaos_stop.store(true, Ordering::SeqCst);
    let (fake, steps) = chaos_thread.join().expect("the chaos thread panicked");
    let chaos_took = chaos_start.elapsed();

    // The API is healthy again and the server restarted: Stripe redelivers
    // what was never acknowledged until it is, then (a check of ours) every
    // event once more, which must all be duplicates now.
    let mut server = start(d, &api, &key, servers);
    shared.stop.store(false, Ordering::SeqCst);
    *shared.target.lock().unwrap() = Some((server.addr, server.path.clone()));
    let acked: HashSet<usize> = shared
        .attempts
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.answer.acked())
        .map(|a| a.event)
        .collect();
    let pending: Vec<usize> = (0..EVENTS).filter(|e| !acked.contains(e)).collect();
    let unacked_after_chaos = pending.len();
    let final_by = Instant::now() + FINAL_WITHIN;
    // Four queues deliver `list`, each event up to `tries` times until a
    // 200, within FINAL_WITHIN and while the server runs.
    let run_all = |server: &mut Server, list: Vec<usize>, phase: Phase, tries: usize| {
        let queue = Arc::new(Mutex::new(VecDeque::from(list)));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|k| {
                let (queue, failed, shared) =
                    (Arc::clone(&queue), Arc::clone(&failed), Arc::clone(&shared));
                std::thread::spawn(move || {
                    let mut rng = Rng(0x9e37_79b9 + k);
                    loop {
                        let Some(e) = queue.lock().unwrap().pop_front() else {
                            return;
                        };
                        let ok = (0..tries).any(|n| {
                            if n > 0 {
                                std::thread::sleep(Duration::from_millis(200));
                            }
                            Instant::now() < final_by
                                && !shared.stop.load(Ordering::SeqCst)
                                && shared.deliver(e, phase, &mut rng)
                        });
                        if !ok {
                            failed.lock().unwrap().push(e);
                        }
                    }
                })
            })
            .collect();
        let mut exited = false;
        while !threads.iter().all(|t| t.is_finished()) {
            if !exited {
                exited = server.exited();
                shared.stop.store(exited, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for t in threads {
            t.join().expect("a final sender panicked");
        }
        let failed = failed.lock().unwrap().clone();
        (failed, exited)
    };
    let (failed, mut exited) = run_all(&mut server, pending, Phase::Retry, FINAL_TRIES);
    for e in failed {
        violations.push(format!(
            "{} got no 200 in {FINAL_TRIES} deliveries with the API healthy",
            shared.events[e].id
        ));
    }
    if !exited {
        let (failed, then) = run_all(&mut server, (0..EVENTS).collect(), Phase::Last, 1);
        exited = then;
        for e in failed {
            violations.push(format!(
                "{} got no 200 when delivered once more at the end",
                shared.events[e].id
            ));
        }
    }
    if exited {
        violations.push(format!(
            "the last server (#{servers}) stopped by itself during the redeliveries"
        ));
    }
    if let Some(why) = server.stop(&log) {
        violations.push(format!(
            "the last server did not end as expected after SIGTERM: {why}"
        ));
    }
    drop(fake);

    // ----- the checks -----
    let attempts = std::mem::take(&mut *shared.attempts.lock().unwrap());
    let events = &shared.events;
    let logged = log_ids(&db);
    violations.extend(judge(events, &attempts, &logged, &mut lost));
    let (wrong, files) = check_recordings(&rec, events, &attempts);
    violations.extend(wrong);
    integrity(&db);
    let c = open_store(&db).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    if check != "ok" {
        violations.push(format!("PRAGMA integrity_check: {check}"));
    }

    let count = |f: &dyn Fn(&Answer) -> bool| attempts.iter().filter(|a| f(&a.answer)).count();
    let oks = count(&|a| a.acked());
    let errors = count(&|a| matches!(a, Answer::Status { code: 500, .. }));
    let refused = count(&|a| matches!(a, Answer::Refused));
    let lost_answers = count(&|a| matches!(a, Answer::Lost(_)));
    let dups =
        count(&|a| matches!(a, Answer::Status { code: 200, route, .. } if route == "duplicate"));
    // Deliveries of one event in flight at the same time.
    let mut by_event: HashMap<usize, Vec<&Attempt>> = HashMap::new();
    for a in &attempts {
        by_event.entry(a.event).or_default().push(a);
    }
    let overlapping: usize = by_event
        .values()
        .map(|list| {
            list.iter()
                .enumerate()
                .flat_map(|(i, a)| list[i + 1..].iter().map(move |b| (a, b)))
                .filter(|(a, b)| a.start < b.end && b.start < a.end)
                .count()
        })
        .sum();
    let chaos_requests = attempts.iter().filter(|a| a.phase == Phase::Chaos).count();
    say(&format!(
        "chaos: {} requests ({chaos_requests} during {:.1} s of chaos, {scheduled} scheduled), \
         {oks} × 200 ({dups} duplicate), {overlapping} redeliveries while in flight, {errors} × 500, {} connection errors ({refused} refused, \
         {lost_answers} answers lost), {kills} kills, {} API steps, {EVENTS} events \
         ({unacked_after_chaos} unacknowledged after the chaos), {} logged, {files} recordings, \
         lost = {}; {:.1} s",
        attempts.len(),
        chaos_took.as_secs_f64(),
        refused + lost_answers,
        steps.len(),
        logged.len(),
        lost.len(),
        began.elapsed().as_secs_f64(),
    ));
    assert!(
        violations.is_empty(),
        "{} violations (the first 40):\n{}\n--- server logs (tail)\n{}",
        violations.len(),
        violations[..violations.len().min(40)].join("\n"),
        tail(&log.lock().unwrap(), 60)
    );
    assert_eq!(logged.len(), EVENTS, "every event is in the log at the end");
    // The test tested something: faults reached the answers, kills landed
    // under load, redeliveries met processed events.
    assert!(
        errors > 0,
        "no 500 at all: the faults never reached an answer"
    );
    assert!(lost_answers > 0, "no answer was lost to a kill");
    assert!(
        attempts.iter().any(|a| a.phase == Phase::Chaos
            && matches!(&a.answer, Answer::Status { code: 200, route, .. } if route == "duplicate")),
        "no redelivery during the chaos was answered duplicate"
    );
    assert!(
        attempts
            .iter()
            .any(|a| a.phase == Phase::Chaos && a.answer.processed()),
        "nothing was processed during the chaos"
    );
}
