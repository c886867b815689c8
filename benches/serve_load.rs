//! Load test of `stripe-sync serve` beside what users run instead, each a
//! separate process under the same load: sustained events/s and latency
//! over 32 keep-alive connections.
//!
//! Targets (each started as its own process, each answering `POST /stripe`):
//! - `serve`: `stripe-sync serve`, every event verified, routed, synced and
//!   committed to SQLite before its 200.
//! - `serve-pg` (issue 22): the same `serve` on a PostgreSQL store (a fresh
//!   database of a local server, `--db postgres://...`), every 200 after
//!   its commit (synchronous_commit on).
//! - `serve-pg2` (issue 22): two `serve` processes on one PostgreSQL store,
//!   each on its own port, the connections spread over the two (connection
//!   `i` to receiver `i % 2`: 16 each of 32).
//!   The PostgreSQL server is the tests' (`tests/support/pg.rs`) set back to
//!   PostgreSQL's defaults: fsync, synchronous_commit and full_page_writes
//!   on, shared_buffers 128MB, max_connections 100 (see
//!   `benches/support/pg_bench.rs`; `BENCH_PG_FSYNC=off` to see the figures
//!   without fsync). Its processes run on the same 2 cores as everything
//!   else, and talk with `serve` over TCP on 127.0.0.1. The results
//!   compare each with `serve` on SQLite from the same run (no goal set:
//!   `-` in the goal and verdict columns). Without PostgreSQL's binaries
//!   their rows say SKIPPED; `STRIPE_SYNC_REQUIRE_PG=1` fails instead.
//! - `bare`: a bare hyper server (this benchmark's binary run as
//!   `--bare-hyper-server`): reads the body, answers 200 with a
//!   decision-sized JSON. Same hyper builder, runtime (2 workers) and
//!   allocator (mimalloc) as `serve`: the HTTP ceiling of that stack here.
//! - `node`: the seed app's endpoint (`http.ts`: stripe-node's
//!   `constructEventAsync` on the raw body with the secret, then 200; no
//!   database), as `benches/baselines/node-endpoint/server.js`, stripe-node
//!   pinned and installed under `target/` by its `install.sh` (run here
//!   when missing).
//! - `node-bare`: a bare Node HTTP server (reads the body, answers 200),
//!   Node's own ceiling.
//! - `strace` (only when named): `serve` again under the same load with
//!   `strace -c -w -f` attached over the measured window: where its time goes.
//!   Slows `serve` down; never part of the figures. `strace-pg`, `strace-pg2`:
//!   the same for `serve` on PostgreSQL (one receiver; the first of two).
//!
//! Every `serve` target also prints the CPU time each process spent in the
//! measured window (serve, the PostgreSQL server's processes, this process
//! as the load generator), per event answered 200; `BENCH_PG_STATEMENTS=1`
//! adds what the PostgreSQL server ran per event.
//!
//! Same socket options everywhere: the generator sets TCP_NODELAY on its
//! own sockets; no server sets it on accepted sockets, as `serve` does not
//! (`server.js` passes `noDelay: false`, overriding Node's default).
//!
//! Run: cargo bench --bench serve_load              (about 3.5 min: 6 x (3 s warm-up + 30 s))
//!      cargo bench --bench serve_load -- serve node (only those targets)
//!      cargo bench --bench serve_load -- serve serve-pg serve-pg2  (SQLite beside PostgreSQL)
//!      cargo bench --bench serve_load -- strace     (the syscall profile of serve)
//! Without `--bench` (as `cargo test --benches` runs it) each target runs
//! for 1 s as a smoke test, Node only if already installed, and no result
//! lines are printed.
//!
//! Prints one line per target, then one tab-separated line per goal:
//!   result  MEASURE  THIS-TOOL  BASELINE(S)  RATIO  GOAL  met|missed
//! and one per PostgreSQL target (goal and verdict `-`, or SKIPPED).
//!
//! Settings (environment):
//!   SERVE_BENCH_SECS       measured seconds per target (default 30)
//!   SERVE_BENCH_WARMUP     warm-up seconds per target, not measured (default 3)
//!   SERVE_BENCH_CONNS      concurrent keep-alive connections (default 32)
//!   SERVE_BENCH_CUSTOMERS  distinct customers the events cycle through (default 10000)
//!   SERVE_BENCH_BIN        the binary (default: the one cargo bench builds, target/release/stripe-sync)
//!   SERVE_BENCH_ARGS       extra `serve` arguments, split on spaces (e.g. `--record /tmp/rec`)
//!   SERVE_BENCH_NODE       the node binary (default `node` on PATH)
//!   BENCH_PG_FSYNC=off     the PostgreSQL server without fsync (default: on)
//!   BENCH_PG_MAX_LOCKS=N   its max_locks_per_transaction (default 64, PostgreSQL's)
//!   BENCH_PG_STATEMENTS=1  load pg_stat_statements and print, per PostgreSQL target, the
//!                          statements the server ran per event (a profile, not a figure)
//!   STRIPE_SYNC_PG_BINDIR  PostgreSQL's binaries, when not found (tests/support/pg.rs)
//!
//! Each request is a distinct `customer.subscription.updated` event of about
//! 3.5 KB (a fixture subscription event with fresh event, subscription,
//! customer and user ids, newer `created` each time, so every one is a real
//! sync and store write), signed just before it is sent (about 2 us, the same
//! client cost for every target). Latency is measured from the send to the
//! last byte of the answer; a request counts when it completes inside the
//! measured window. The generator runs in this process on its own runtime
//! (2 workers), on the same machine: with 2 cores it competes with every
//! server alike for CPU, as in any local measurement.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use stripe_sync::secret::Secret;

#[allow(dead_code)]
#[path = "../tests/support/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "support/pg_bench.rs"]
mod pg_bench;

// The bare hyper server runs in this binary: the same allocator as
// `stripe-sync` (src/main.rs), so the two differ only in the work done.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &str = "whsec_serve_load_bench_0a1b2c";
/// 3.5 KB, the size of the events the goals are stated for.
const TARGET_SIZE: usize = 3584;

/// Goals of issue 21, each against a baseline from the same run.
const GOAL_VS_NODE: f64 = 2.0;
const GOAL_P99_MS: f64 = 10.0;
const GOAL_VS_BARE: f64 = 0.60;

/// The argument that makes this binary the bare hyper server.
const BARE_SERVER_ARG: &str = "--bare-hyper-server";

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

struct Settings {
    secs: u64,
    warmup: u64,
    conns: usize,
    customers: u64,
    bin: PathBuf,
    extra: Vec<String>,
    node: PathBuf,
    /// `--bench`: full runs and result lines; else a smoke test.
    measure: bool,
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/// A compact event with placeholders, about [`TARGET_SIZE`] bytes once filled.
struct Gen {
    template: String,
    customers: u64,
    created0: i64,
}

impl Gen {
    fn new(customers: u64) -> Gen {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/2026-03-onboarding/03-ada-subscription-created.json");
        let mut e: Value = serde_json::from_slice(&std::fs::read(&path).expect("the fixture"))
            .expect("fixture JSON");
        e["id"] = json!("evt_@E@");
        e["type"] = json!("customer.subscription.updated");
        e["created"] = json!("@T@");
        // Trim what the sync never reads, then pad to TARGET_SIZE.
        let o = &mut e["data"]["object"];
        for k in [
            "automatic_tax",
            "payment_settings",
            "trial_settings",
            "cancellation_details",
            "invoice_settings",
        ] {
            o.as_object_mut().unwrap().remove(k);
        }
        o["items"]["data"][0]
            .as_object_mut()
            .unwrap()
            .remove("plan");
        let pm = &mut o["default_payment_method"];
        if let Some(pm) = pm.as_object_mut() {
            pm.remove("billing_details");
            if let Some(card) = pm.get_mut("card").and_then(Value::as_object_mut) {
                for k in [
                    "checks",
                    "networks",
                    "three_d_secure_usage",
                    "wallet",
                    "generated_from",
                    "regulated_status",
                ] {
                    card.remove(k);
                }
            }
            pm.insert("customer".into(), json!("cus_@C@"));
        }
        o["id"] = json!("sub_@S@");
        o["customer"] = json!("cus_@C@");
        o["metadata"]["clerkUserId"] = json!("user_@U@");
        o["items"]["data"][0]["subscription"] = json!("sub_@S@");
        let sample = |t: &str| {
            t.replace("@E@", "bench00000000000")
                .replace("@S@", "bench00000000")
                .replace("@C@", "bench00000000")
                .replace("@U@", "bench00000000")
                .replace("\"@T@\"", "1780000000")
        };
        let mut template = serde_json::to_string(&e).unwrap();
        let size = sample(&template).len();
        if size < TARGET_SIZE {
            o_pad(&mut e, TARGET_SIZE - size);
            template = serde_json::to_string(&e).unwrap();
        }
        Gen {
            template,
            customers,
            created0: 1_780_000_000,
        }
    }

    /// Event `k`: its own id, customer `k % customers` (its subscription
    /// and user), `created` growing with `k`.
    fn body(&self, k: u64) -> Vec<u8> {
        let c = k % self.customers;
        self.template
            .replace("@E@", &format!("bench{k:011}"))
            .replace("@S@", &format!("bench{c:08}"))
            .replace("@C@", &format!("bench{c:08}"))
            .replace("@U@", &format!("bench{c:08}"))
            .replace("\"@T@\"", &(self.created0 + k as i64).to_string())
            .into_bytes()
    }
}

/// Pads the subscription's metadata so the event grows by `n` bytes.
fn o_pad(e: &mut Value, n: usize) {
    let pad = n.saturating_sub(",\"note\":\"\"".len());
    e["data"]["object"]["metadata"]["note"] = json!("x".repeat(pad));
}

fn signature(body: &[u8]) -> String {
    stripe_sync::signature::sign(
        &Secret::new(SECRET),
        stripe_sync::commands::unix_now(),
        body,
    )
    .header
}

// ---------------------------------------------------------------------------
// The load generator
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    /// Latency of each request completed in the window, in microseconds.
    lat_us: Vec<u32>,
    /// Answers in the window by status.
    by_status: std::collections::BTreeMap<u16, u64>,
    /// 200 answers over the whole run (warm-up and tail included).
    ok_total: u64,
    /// Connection or protocol errors (each followed by a reconnect).
    errors: u64,
    first_error: Option<String>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.lat_us.extend(o.lat_us);
        for (k, v) in o.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        self.ok_total += o.ok_total;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One keep-alive connection sending events back to back until `end`.
async fn connection(
    addr: SocketAddr,
    path: Arc<str>,
    events: Arc<Gen>,
    next: Arc<AtomicU64>,
    from: Instant,
    end: Instant,
) -> Stats {
    let mut st = Stats::default();
    let host = addr.to_string();
    let mut sender: Option<Sender> = None;
    while Instant::now() < end {
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    st.errors += 1;
                    st.first_error.get_or_insert(e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let body = events.body(next.fetch_add(1, Ordering::Relaxed));
        let req = Request::post(&*path)
            .header(HOST, &host)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .header(USER_AGENT, "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .header("stripe-signature", signature(&body))
            .body(Full::new(Bytes::from(body)))
            .expect("a request");
        if s.ready().await.is_err() {
            sender = None;
            continue;
        }
        let t = Instant::now();
        let answer = match s.send_request(req).await {
            Ok(resp) => {
                let status = resp.status();
                match resp.into_body().collect().await {
                    Ok(_) => Ok(status),
                    Err(e) => Err(format!("reading the answer: {e}")),
                }
            }
            Err(e) => Err(format!("request: {e}")),
        };
        let done = Instant::now();
        match answer {
            Ok(status) => {
                if status == StatusCode::OK {
                    st.ok_total += 1;
                }
                if done >= from && done < end {
                    st.lat_us
                        .push(u32::try_from((done - t).as_micros()).unwrap_or(u32::MAX));
                    *st.by_status.entry(status.as_u16()).or_default() += 1;
                }
            }
            Err(e) => {
                st.errors += 1;
                st.first_error.get_or_insert(e);
                sender = None;
            }
        }
    }
    st
}

struct Outcome {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    ok_in_window: u64,
    other: Vec<(u16, u64)>,
    ok_total: u64,
    errors: u64,
    first_error: Option<String>,
}

/// The measured part of a run: from the end of the warm-up to the end.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    end: Instant,
}

impl Window {
    fn starting_now(s: &Settings) -> Window {
        let from = Instant::now() + Duration::from_secs(s.warmup);
        Window {
            from,
            end: from + Duration::from_secs(s.secs),
        }
    }
}

/// The load over `s.conns` connections, spread over `addrs` (connection
/// `i` to `addrs[i % n]`): one server, or several receivers of one store.
fn drive(addrs: &[SocketAddr], path: &str, events: &Arc<Gen>, s: &Settings, w: Window) -> Outcome {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("load")
        .build()
        .expect("client runtime");
    let next = Arc::new(AtomicU64::new(0));
    let path: Arc<str> = Arc::from(path);
    let stats = rt.block_on(async {
        let tasks: Vec<_> = (0..s.conns)
            .map(|i| {
                tokio::spawn(connection(
                    addrs[i % addrs.len()],
                    Arc::clone(&path),
                    Arc::clone(events),
                    Arc::clone(&next),
                    w.from,
                    w.end,
                ))
            })
            .collect();
        let mut all = Stats::default();
        for t in tasks {
            all.merge(t.await.expect("a connection task"));
        }
        all
    });
    let mut lat = stats.lat_us;
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        f64::from(lat[i]) / 1000.0
    };
    let ok_in_window = stats.by_status.get(&200).copied().unwrap_or(0);
    Outcome {
        rate: ok_in_window as f64 / s.secs as f64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: lat.last().map_or(f64::NAN, |v| f64::from(*v) / 1000.0),
        ok_in_window,
        other: stats
            .by_status
            .iter()
            .filter(|(k, _)| **k != 200)
            .map(|(k, v)| (*k, *v))
            .collect(),
        ok_total: stats.ok_total,
        errors: stats.errors,
        first_error: stats.first_error,
    }
}

// ---------------------------------------------------------------------------
// Servers: each its own process, each announcing `listening on http://ADDR/PATH`
// on stderr, each stopped by SIGTERM
// ---------------------------------------------------------------------------

struct Server {
    child: Child,
    addr: SocketAddr,
    path: String,
    stderr: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `cmd` (stdout and stderr into files `name.*` in `dir`) and waits
/// for its `listening on` line.
fn launch(name: &str, mut cmd: Command, dir: &Path) -> Server {
    let stderr = dir.join(format!("{name}.stderr"));
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("{name}.stdout"))).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"));
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program} ({name}): {e}"));
    let t = Instant::now();
    const MARK: &str = "listening on http://";
    loop {
        let text = std::fs::read_to_string(&stderr).unwrap_or_default();
        if let Some(i) = text.find(MARK) {
            let rest = text[i + MARK.len()..].lines().next().unwrap_or("").trim();
            let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            return Server {
                child,
                addr: addr
                    .parse()
                    .unwrap_or_else(|_| panic!("address in {rest:?}")),
                path: if path.is_empty() {
                    "/".into()
                } else {
                    path.into()
                },
                stderr,
            };
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{name} ended ({status}) before listening:\n{text}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{name}: no `listening on` line in 30 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// SIGTERM, then the exit status and what it printed after the signal.
fn stop(mut server: Server) -> (Option<i32>, String) {
    let before = std::fs::metadata(&server.stderr).map_or(0, |m| m.len() as usize);
    sigterm(server.child.id());
    let t = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s.code();
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = server.child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read(&server.stderr).unwrap_or_default();
    let tail = String::from_utf8_lossy(&text[before.min(text.len())..]).into_owned();
    (status, tail)
}

// ---------------------------------------------------------------------------
// (a) stripe-sync serve, on SQLite and on PostgreSQL
// ---------------------------------------------------------------------------

/// The store a `serve` target writes.
#[derive(Clone, Copy)]
enum Store {
    /// A fresh SQLite file in the target's temp dir.
    Sqlite,
    /// A fresh database of the benchmarks' PostgreSQL server, shared by
    /// this many receivers (`serve` processes), the connections spread
    /// over them.
    Postgres(&'static pg_bench::BenchPg, usize),
}

/// `serve` on `url` (given in the environment: it holds a password), or
/// on `dir/bench.db`.
fn serve_command(s: &Settings, dir: &Path, url: Option<&str>) -> Command {
    let mut cmd = Command::new(&s.bin);
    for v in [
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_API_KEY",
        "STRIPE_SECRET_KEY",
        "STRIPE_SYNC_DB",
        "STRIPE_SYNC_CONFIG",
        "STRIPE_SYNC_LISTEN",
    ] {
        cmd.env_remove(v);
    }
    match url {
        Some(url) => {
            cmd.env("STRIPE_SYNC_DB", url);
        }
        None => {
            cmd.arg("--db").arg(dir.join("bench.db"));
        }
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--secret", SECRET])
        .args(&s.extra);
    cmd
}

fn logged_events(db: &Path) -> Option<u64> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()?;
    c.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .ok()
        .map(|n| n as u64)
}

/// Started `serve` processes on one store, and how to count its events.
struct Receivers {
    servers: Vec<Server>,
    /// The PostgreSQL database, when that is the store.
    pg: Option<(&'static pg_bench::BenchPg, String)>,
    dir: tempfile::TempDir,
}

fn start_receivers(s: &Settings, store: Store) -> Receivers {
    let dir = tempfile::tempdir().expect("temp dir");
    match store {
        Store::Sqlite => Receivers {
            servers: vec![launch(
                "serve",
                serve_command(s, dir.path(), None),
                dir.path(),
            )],
            pg: None,
            dir,
        },
        Store::Postgres(bpg, n) => {
            let (db, url) = bpg.fresh_url();
            // One after the other: the first makes the schema.
            let servers = (1..=n)
                .map(|i| {
                    launch(
                        &format!("serve-pg-{i}"),
                        serve_command(s, dir.path(), Some(&url)),
                        dir.path(),
                    )
                })
                .collect();
            Receivers {
                servers,
                pg: Some((bpg, db)),
                dir,
            }
        }
    }
}

impl Receivers {
    fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr).collect()
    }

    fn path(&self) -> String {
        self.servers[0].path.clone()
    }

    /// What to read the CPU time of over the window: each receiver, the
    /// PostgreSQL server, this process (the load generator).
    fn cpu_probes(&self) -> Vec<(String, Probe)> {
        let mut probes: Vec<(String, Probe)> = Vec::new();
        let many = self.servers.len() > 1;
        for (i, server) in self.servers.iter().enumerate() {
            let pid = server.child.id();
            let name = if many {
                format!("serve #{}", i + 1)
            } else {
                "serve".to_owned()
            };
            probes.push((name, Box::new(move || pg_bench::cpu_of(pid))));
        }
        if let Some((bpg, _)) = &self.pg {
            let bpg = *bpg;
            probes.push((
                "postgres (all its processes)".into(),
                Box::new(|| bpg.cpu()),
            ));
        }
        let me = std::process::id();
        probes.push((
            "load generator (this process)".into(),
            Box::new(move || pg_bench::cpu_of(me)),
        ));
        probes
    }

    /// Stops every receiver, says how each ended and whether every
    /// acknowledged event is in the store.
    fn stop_and_check(self, r: &Outcome) {
        let many = self.servers.len() > 1;
        let ended: Vec<(Option<i32>, String)> = self.servers.into_iter().map(stop).collect();
        let logged = match &self.pg {
            None => logged_events(&self.dir.path().join("bench.db")),
            Some((bpg, db)) => bpg.count(db, "events"),
        };
        println!(
            "  store: {} events logged for {} answered 200{}",
            logged.map_or("?".into(), |n| n.to_string()),
            r.ok_total,
            match logged {
                Some(n) if n == r.ok_total => " (every acknowledged event is there)",
                _ => " (MISMATCH: every 200 here is a distinct sync event)",
            }
        );
        if let Some((bpg, db)) = &self.pg {
            for l in bpg.statements(db, r.ok_total, "event") {
                println!("  {l}");
            }
        }
        for (i, (status, tail)) in ended.into_iter().enumerate() {
            let name = if many {
                format!("serve #{}", i + 1)
            } else {
                "serve".to_owned()
            };
            println!("  {name} stopped with status {status:?}");
            let summary: Vec<&str> = tail.lines().rev().take(6).collect();
            for l in summary.into_iter().rev() {
                println!("  | {l}");
            }
        }
    }
}

type Probe = Box<dyn Fn() -> Option<Duration> + Send>;

/// Reads each probe at the start and the end of the window, on a thread
/// of its own; joined, the CPU time each spent in the window.
fn cpu_over(
    w: Window,
    probes: Vec<(String, Probe)>,
) -> std::thread::JoinHandle<Vec<(String, Option<Duration>)>> {
    std::thread::spawn(move || {
        std::thread::sleep(w.from.saturating_duration_since(Instant::now()));
        let first: Vec<Option<Duration>> = probes.iter().map(|(_, p)| p()).collect();
        std::thread::sleep(w.end.saturating_duration_since(Instant::now()));
        probes
            .into_iter()
            .zip(first)
            .map(|((name, p), a)| {
                let d = match (a, p()) {
                    (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                    _ => None,
                };
                (name, d)
            })
            .collect()
    })
}

fn report_cpu(s: &Settings, r: &Outcome, cpu: &[(String, Option<Duration>)]) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parts: Vec<String> = cpu
        .iter()
        .map(|(name, d)| match d {
            Some(d) => format!(
                "{name} {:.1} s ({:.0} us/event)",
                d.as_secs_f64(),
                d.as_secs_f64() * 1e6 / r.ok_in_window.max(1) as f64
            ),
            None => format!("{name} ?"),
        })
        .collect();
    println!(
        "  CPU in the {} s window (of {} s on {cores} cores): {}",
        s.secs,
        s.secs * cores as u64,
        parts.join(", ")
    );
}

/// `serve` on `store` under the load: its figures, its CPU time and that
/// of the PostgreSQL server over the window, and the store's check.
fn run_serve(s: &Settings, events: &Arc<Gen>, store: Store) -> Outcome {
    let receivers = start_receivers(s, store);
    let w = Window::starting_now(s);
    let cpu = cpu_over(w, receivers.cpu_probes());
    let r = drive(&receivers.addrs(), &receivers.path(), events, s, w);
    let cpu = cpu.join().unwrap_or_default();
    receivers.stop_and_check(&r);
    report_cpu(s, &r, &cpu);
    r
}

/// `serve` under the same load with `strace -c -w -f` attached over the
/// measured window: the syscalls its time goes to (fsync per group commit,
/// reads and writes per request, futex hand-offs to the writer thread; on
/// PostgreSQL, the round trips to the server).
fn run_strace(s: &Settings, events: &Arc<Gen>, store: Store) -> Option<Outcome> {
    if Command::new("strace").arg("-V").output().is_err() {
        println!("  strace: not installed, no profile");
        return None;
    }
    let receivers = start_receivers(s, store);
    let w = Window::starting_now(s);
    let pid = receivers.servers[0].child.id();
    let out = receivers.dir.path().join("strace.txt");
    let tracer = {
        let out = out.clone();
        std::thread::spawn(move || {
            std::thread::sleep(w.from.saturating_duration_since(Instant::now()));
            let strace = Command::new("strace")
                .args(["-c", "-w", "-f", "-p", &pid.to_string(), "-o"])
                .arg(&out)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .ok()?;
            std::thread::sleep(w.end.saturating_duration_since(Instant::now()));
            let _ = Command::new("kill")
                .args(["-INT", &strace.id().to_string()])
                .status();
            let done = strace.wait_with_output().ok()?;
            Some(String::from_utf8_lossy(&done.stderr).into_owned())
        })
    };
    let cpu = cpu_over(w, receivers.cpu_probes());
    let r = drive(&receivers.addrs(), &receivers.path(), events, s, w);
    let tracer_err = tracer.join().ok().flatten();
    let cpu = cpu.join().unwrap_or_default();
    let table = std::fs::read_to_string(&out).ok();
    receivers.stop_and_check(&r);
    report_cpu(s, &r, &cpu);
    match table {
        Some(table) if !table.trim().is_empty() => {
            println!(
                "  strace -c -w -f -p <serve> over the {} s window (all threads; time is \
                 wall-clock time inside each call, waits included):",
                s.secs
            );
            for l in table.lines() {
                println!("  | {l}");
            }
        }
        _ => println!(
            "  strace: no profile ({})",
            tracer_err.as_deref().map_or("could not start", str::trim)
        ),
    }
    Some(r)
}

// ---------------------------------------------------------------------------
// (b) the bare hyper server, as its own process
// ---------------------------------------------------------------------------

/// A decision-sized answer, so `bare` and `serve` send about the same bytes.
const ANSWER: &str = r#"{"event_id":"evt_bench00000000000","type":"customer.subscription.updated","created":1780000000,"route":"sync","user_id":"user_bench00000000","customer_id":"cus_bench00000000","resolved_via":"object_metadata","reason":null,"source":"POST /stripe"}"#;

async fn bare_answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let _body = req.into_body().collect().await.map(|b| b.to_bytes());
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
        .expect("a response"))
}

/// This process as the bare hyper server, until SIGTERM. Built as `serve`
/// builds its own (src/runtime.rs, src/serve/mod.rs): a 2-worker runtime,
/// hyper's HTTP/1 builder with a header read timeout, accepted sockets left
/// as they come (no TCP_NODELAY).
fn bare_hyper_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("the bound address");
        eprintln!("listening on http://{addr}/stripe");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(
                        TokioIo::new(stream),
                        hyper::service::service_fn(bare_answer),
                    )
                    .await;
            });
        }
    });
}

fn run_bare(s: &Settings, events: &Arc<Gen>) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(std::env::current_exe().expect("this benchmark's path"));
    cmd.arg(BARE_SERVER_ARG);
    let server = launch("bare", cmd, dir.path());
    let r = drive(
        &[server.addr],
        &server.path.clone(),
        events,
        s,
        Window::starting_now(s),
    );
    stop(server);
    r
}

// ---------------------------------------------------------------------------
// (c) the app's endpoint and a bare server, in Node
// ---------------------------------------------------------------------------

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baselines/node-endpoint")
}

/// Where install.sh puts stripe-node.
fn node_install_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench-baselines/node-endpoint")
}

/// Node's version, or why Node baselines cannot run.
fn node_version(s: &Settings) -> Result<String, String> {
    match Command::new(&s.node).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned()),
        Ok(o) => Err(format!("{} --version: {}", s.node.display(), o.status)),
        Err(e) => Err(format!("{}: {e}", s.node.display())),
    }
}

/// Installs stripe-node (benches/baselines/node-endpoint/install.sh) when a
/// measured run needs it; a smoke run only uses what is there.
fn ensure_stripe_node(s: &Settings) -> Result<String, String> {
    let installed = node_install_dir().join("node_modules/stripe/package.json");
    if !installed.exists() {
        if !s.measure {
            return Err("stripe-node not installed (smoke run: not installing)".into());
        }
        let status = Command::new(node_dir().join("install.sh"))
            .arg(node_install_dir())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("install.sh: {e}"))?;
        if !status.success() {
            return Err(format!("install.sh: {status}"));
        }
    }
    let text =
        std::fs::read_to_string(&installed).map_err(|e| format!("{}: {e}", installed.display()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", installed.display()))?;
    Ok(v["version"].as_str().unwrap_or("?").to_owned())
}

fn run_node(s: &Settings, events: &Arc<Gen>, mode: &str) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(&s.node);
    cmd.arg(node_dir().join("server.js"))
        .arg(mode)
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env("NODE_ENDPOINT_DIR", node_install_dir())
        .env_remove("STRIPE_SECRET_KEY")
        .env_remove("NODE_OPTIONS");
    let server = launch(&format!("node-{mode}"), cmd, dir.path());
    let r = drive(
        &[server.addr],
        &server.path.clone(),
        events,
        s,
        Window::starting_now(s),
    );
    let (_, tail) = stop(server);
    let errors: Vec<&str> = tail
        .lines()
        .filter(|l| l.contains("Error"))
        .take(3)
        .collect();
    for l in errors {
        println!("  | {l}");
    }
    r
}

// ---------------------------------------------------------------------------

fn report(label: &str, r: &Outcome) {
    println!(
        "  {label:<46} {:>9} events/s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms",
        thousands(r.rate),
        r.p50_ms,
        r.p99_ms,
        r.max_ms
    );
    if !r.other.is_empty() || r.errors > 0 {
        println!(
            "  {:<46} {} answered 200 in the window; other answers {:?}; {} connection errors{}",
            "",
            r.ok_in_window,
            r.other,
            r.errors,
            r.first_error
                .as_deref()
                .map_or(String::new(), |e| format!(" (first: {e})"))
        );
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}

/// `12,345/s p99 6.1 ms`
fn figure(r: &Outcome) -> String {
    format!("{}/s p99 {:.1} ms", thousands(r.rate), r.p99_ms)
}

/// One goal, tab-separated, for benches/all.sh.
fn result_line(measure: &str, tool: &str, baseline: &str, ratio: f64, goal: &str, met: bool) {
    println!(
        "result\t{measure}\t{tool}\t{baseline}\t{ratio:.2}\t{goal}\t{}",
        verdict(met)
    );
}

/// A row without a goal (issue 22 sets none): the figure beside its
/// baseline, `-` for the goal and the verdict.
fn info_line(measure: &str, tool: &str, baseline: &str, ratio: f64) {
    let ratio = if ratio.is_finite() {
        format!("{ratio:.2}")
    } else {
        "-".to_owned()
    };
    println!("result\t{measure}\t{tool}\t{baseline}\t{ratio}\t-\t-");
}

/// A row that could not be measured here, and why.
fn skipped_line(measure: &str, why: &str) {
    println!("result\t{measure}\tSKIPPED: {why}\t-\t-\t-\tSKIPPED");
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    if std::env::args().any(|a| a == BARE_SERVER_ARG) {
        bare_hyper_server();
        return;
    }
    // `cargo bench` passes `--bench`; bare words pick targets.
    let measure = std::env::args().any(|a| a == "--bench");
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    const TARGETS: [&str; 9] = [
        "bare",
        "serve",
        "serve-pg",
        "serve-pg2",
        "node",
        "node-bare",
        "strace",
        "strace-pg",
        "strace-pg2",
    ];
    if !only.is_empty() && !only.iter().any(|w| TARGETS.contains(&w.as_str())) {
        // A filter meant for another benchmark (`cargo bench FILTER`).
        println!(
            "serve load: no target named by {only:?} ({})",
            TARGETS.join(", ")
        );
        return;
    }
    // The strace targets only when named: they slow serve down.
    let wants = |t: &str| {
        if only.is_empty() {
            !t.starts_with("strace")
        } else {
            only.iter().any(|a| a == t)
        }
    };
    let s = Settings {
        secs: if measure {
            env_num("SERVE_BENCH_SECS", 30).max(1)
        } else {
            1
        },
        warmup: if measure {
            env_num("SERVE_BENCH_WARMUP", 3)
        } else {
            0
        },
        conns: env_num("SERVE_BENCH_CONNS", 32).max(1) as usize,
        customers: env_num("SERVE_BENCH_CUSTOMERS", 10_000).max(1),
        bin: std::env::var_os("SERVE_BENCH_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_stripe-sync"))),
        extra: std::env::var("SERVE_BENCH_ARGS")
            .map(|a| a.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        node: std::env::var_os("SERVE_BENCH_NODE").map_or_else(|| "node".into(), PathBuf::from),
        measure,
    };
    let events = Arc::new(Gen::new(s.customers));
    let size = events.body(0).len();
    let kb = format!("{:.1} KB", size as f64 / 1024.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "serve load{}: {} keep-alive connections, distinct signed events of {size} bytes over {} customers, \
         {} s warm-up + {} s measured per target, each target its own process, {cores} cores, \
         load average {}",
        if measure {
            ""
        } else {
            " (smoke run, no --bench)"
        },
        s.conns,
        thousands(s.customers as f64),
        s.warmup,
        s.secs,
        loadavg()
    );
    let node = if wants("node") || wants("node-bare") {
        match node_version(&s) {
            Ok(v) => Some(v),
            Err(e) => {
                println!("  Node baselines skipped: {e}");
                None
            }
        }
    } else {
        None
    };
    let bare = wants("bare").then(|| {
        let r = run_bare(&s, &events);
        report("bare hyper (reads the body, answers 200)", &r);
        r
    });
    if wants("serve") || wants("serve-pg") || wants("serve-pg2") {
        println!("  stripe-sync serve: {}", s.bin.display());
    }
    let serve = wants("serve").then(|| {
        let r = run_serve(&s, &events, Store::Sqlite);
        report("stripe-sync serve (SQLite)", &r);
        r
    });
    // The PostgreSQL server, when a target needs it: `Err(why)` when
    // there is none (its rows say SKIPPED).
    let pg = ["serve-pg", "serve-pg2", "strace-pg", "strace-pg2"]
        .iter()
        .any(|t| wants(t))
        .then(|| {
            let pg = pg_bench::start();
            match &pg {
                Ok(b) => println!("  {}", b.settings),
                Err(why) => println!("  PostgreSQL targets SKIPPED: {why}"),
            }
            pg
        });
    let on_pg = |receivers: usize| -> Result<Outcome, String> {
        let bpg = pg.clone().expect("PostgreSQL looked for")?;
        let r = run_serve(&s, &events, Store::Postgres(bpg, receivers));
        report(
            &match receivers {
                1 => "stripe-sync serve (PostgreSQL)".to_owned(),
                n => format!("stripe-sync serve (PostgreSQL, {n} receivers)"),
            },
            &r,
        );
        Ok(r)
    };
    let serve_pg = wants("serve-pg").then(|| on_pg(1));
    let serve_pg2 = wants("serve-pg2").then(|| on_pg(2));
    let app = match (&node, wants("node")) {
        (Some(v), true) => match ensure_stripe_node(&s) {
            Ok(stripe) => {
                let r = run_node(&s, &events, "endpoint");
                report(
                    &format!("app's endpoint (Node {v}, stripe-node {stripe})"),
                    &r,
                );
                Some(r)
            }
            Err(e) => {
                println!("  app's Node endpoint skipped: {e}");
                None
            }
        },
        _ => None,
    };
    let node_bare = (node.is_some() && wants("node-bare")).then(|| {
        let r = run_node(&s, &events, "bare");
        report("bare Node (reads the body, answers 200)", &r);
        r
    });
    if wants("strace") {
        println!("  stripe-sync serve under strace (not a figure):");
        if let Some(r) = run_strace(&s, &events, Store::Sqlite) {
            report("stripe-sync serve, traced", &r);
        }
    }
    for (target, receivers) in [("strace-pg", 1), ("strace-pg2", 2)] {
        if !wants(target) {
            continue;
        }
        match pg.clone().expect("PostgreSQL looked for") {
            Ok(bpg) => {
                println!(
                    "  stripe-sync serve on PostgreSQL ({receivers} receiver(s), the first \
                     traced) under strace (not a figure):"
                );
                if let Some(r) = run_strace(&s, &events, Store::Postgres(bpg, receivers)) {
                    report(
                        &format!("stripe-sync serve (PostgreSQL, {receivers}), traced"),
                        &r,
                    );
                }
            }
            Err(why) => println!("  {target} SKIPPED: {why}"),
        }
    }
    println!("  load average after: {}", loadavg());
    for (name, r) in [
        ("serve", serve.as_ref()),
        (
            "serve (PostgreSQL)",
            serve_pg.as_ref().and_then(|r| r.as_ref().ok()),
        ),
        (
            "serve (PostgreSQL, 2 receivers)",
            serve_pg2.as_ref().and_then(|r| r.as_ref().ok()),
        ),
    ] {
        if let Some(r) = r {
            let clean = r.other.is_empty() && r.errors == 0;
            println!(
                "  {name} answered every request 200: {}",
                if clean { "yes" } else { "NO" }
            );
        }
    }
    if !measure {
        println!("  (smoke run: no result lines; `cargo bench --bench serve_load` measures)");
        return;
    }
    let load = format!("{kb} signed, {} conns", s.conns);
    if let Some(serve) = &serve {
        goals(
            serve,
            app.as_ref(),
            bare.as_ref(),
            node_bare.as_ref(),
            &load,
        );
    }
    // Issue 22: serve on PostgreSQL beside serve on SQLite (no goal set).
    for (receivers, r) in [(1, &serve_pg), (2, &serve_pg2)] {
        let Some(r) = r else { continue };
        let short = pg
            .as_ref()
            .and_then(|p| p.as_ref().ok())
            .map_or("PostgreSQL", |b| b.short.as_str());
        let measure = match receivers {
            1 => format!("serve events/s on {short}, one receiver ({load})"),
            n => format!(
                "serve events/s on {short}, {n} receivers on one store ({load} spread over them)"
            ),
        };
        match r {
            Ok(r) => info_line(
                &measure,
                &figure(r),
                &serve
                    .as_ref()
                    .map_or("serve on SQLite not measured".into(), |b| {
                        format!("serve on SQLite {}", figure(b))
                    }),
                serve.as_ref().map_or(f64::NAN, |b| r.rate / b.rate),
            ),
            Err(why) => skipped_line(&measure, why),
        }
    }
}

/// Issue 21's goals for `serve` (on SQLite), against the baselines run.
fn goals(
    serve: &Outcome,
    app: Option<&Outcome>,
    bare: Option<&Outcome>,
    node_bare: Option<&Outcome>,
    load: &str,
) {
    let ceiling = node_bare.map_or(String::new(), |b| format!("; bare Node {}", figure(b)));
    if let Some(app) = app {
        let ratio = serve.rate / app.rate;
        result_line(
            &format!("serve events/s ({load})"),
            &figure(serve),
            &format!("app's Node endpoint {}{ceiling}", figure(app)),
            ratio,
            &format!(">= {GOAL_VS_NODE}x the app's Node endpoint"),
            ratio >= GOAL_VS_NODE,
        );
    }
    result_line(
        &format!("serve p99 latency ({load})"),
        &format!("{:.1} ms", serve.p99_ms),
        &app.map_or("app's Node endpoint not measured".into(), |a| {
            format!("app's Node endpoint p99 {:.1} ms", a.p99_ms)
        }),
        app.map_or(f64::NAN, |a| serve.p99_ms / a.p99_ms),
        &format!("<= {GOAL_P99_MS} ms"),
        serve.p99_ms <= GOAL_P99_MS,
    );
    if let Some(bare) = bare {
        let ratio = serve.rate / bare.rate;
        result_line(
            &format!("serve events/s vs bare hyper, both out of process ({load})"),
            &figure(serve),
            &format!("bare hyper {}", figure(bare)),
            ratio,
            &format!(">= {:.0}% of the bare hyper server", GOAL_VS_BARE * 100.0),
            ratio >= GOAL_VS_BARE,
        );
    }
}
