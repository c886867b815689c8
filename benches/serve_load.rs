//! Load test of `stripe-sync serve`: sustained events/s and latency over 32
//! keep-alive connections, against the same load on a bare hyper server
//! (reads the body, answers 200: the HTTP limit of this machine).
//!
//! Run: cargo bench --bench serve_load            (about 70 s: 2 x (3 s warm-up + 30 s))
//!      cargo bench --bench serve_load -- serve   (only the server; `bare` for the baseline)
//!
//! Settings (environment):
//!   SERVE_BENCH_SECS       measured seconds per target (default 30)
//!   SERVE_BENCH_WARMUP     warm-up seconds per target, not measured (default 3)
//!   SERVE_BENCH_CONNS      concurrent keep-alive connections (default 32)
//!   SERVE_BENCH_CUSTOMERS  distinct customers the events cycle through (default 10000)
//!   SERVE_BENCH_BIN        the binary (default: the one cargo bench builds, target/release/stripe-sync)
//!   SERVE_BENCH_ARGS       extra `serve` arguments, split on spaces (e.g. `--record /tmp/rec`)
//!
//! Each request is a distinct `customer.subscription.updated` event of about
//! 2.5 KB (a fixture subscription event with fresh event, subscription,
//! customer and user ids, newer `created` each time, so every one is a real
//! sync and store write), signed just before it is sent (about 2 us, the same
//! client cost for both targets). Latency is measured from the send to the
//! last byte of the answer; a request counts when it completes inside the
//! measured window. The client runs in this process on its own runtime, on
//! the same machine: with 2 cores the client, and for the baseline the bare
//! server too, compete with the server for CPU, as they would in any local
//! measurement.
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

const SECRET: &str = "whsec_serve_load_bench_0a1b2c";
const TARGET_SIZE: usize = 2560;

/// Goals of the issue, printed beside the figures.
const GOAL_RATIO: f64 = 0.50;
const GOAL_RATE: f64 = 5_000.0;
const GOAL_P99_MS: f64 = 25.0;

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
        // Trim what the sync never reads, towards a 2.5 KB event.
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

fn drive(addr: SocketAddr, path: &str, events: &Arc<Gen>, s: &Settings) -> Outcome {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("load")
        .build()
        .expect("client runtime");
    let start = Instant::now();
    let from = start + Duration::from_secs(s.warmup);
    let end = from + Duration::from_secs(s.secs);
    let next = Arc::new(AtomicU64::new(0));
    let path: Arc<str> = Arc::from(path);
    let stats = rt.block_on(async {
        let tasks: Vec<_> = (0..s.conns)
            .map(|_| {
                tokio::spawn(connection(
                    addr,
                    Arc::clone(&path),
                    Arc::clone(events),
                    Arc::clone(&next),
                    from,
                    end,
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
// (a) stripe-sync serve
// ---------------------------------------------------------------------------

struct Serve {
    child: Child,
    addr: SocketAddr,
    path: String,
    stderr: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start_serve(s: &Settings, dir: &Path) -> Serve {
    let stderr = dir.join("serve.stderr");
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
    cmd.current_dir(dir)
        .arg("--db")
        .arg(dir.join("bench.db"))
        .args(["serve", "--listen", "127.0.0.1:0", "--secret", SECRET])
        .args(&s.extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", s.bin.display()));
    let t = Instant::now();
    const MARK: &str = "listening on http://";
    loop {
        let text = std::fs::read_to_string(&stderr).unwrap_or_default();
        if let Some(i) = text.find(MARK) {
            let rest = text[i + MARK.len()..].lines().next().unwrap_or("").trim();
            let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            return Serve {
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
            panic!("stripe-sync serve ended ({status}) before listening:\n{text}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no `listening on` line in 30 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM, then the exit status and what it printed after the signal.
fn stop_serve(mut serve: Serve) -> (Option<i32>, String) {
    let before = std::fs::metadata(&serve.stderr).map_or(0, |m| m.len() as usize);
    let _ = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = serve.child.try_wait().unwrap() {
            break s.code();
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = serve.child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read(&serve.stderr).unwrap_or_default();
    let tail = String::from_utf8_lossy(&text[before.min(text.len())..]).into_owned();
    (status, tail)
}

fn logged_events(db: &Path) -> Option<i64> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()?;
    c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .ok()
}

fn run_serve(s: &Settings, events: &Arc<Gen>) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = start_serve(s, dir.path());
    let (addr, path) = (serve.addr, serve.path.clone());
    let r = drive(addr, &path, events, s);
    let (status, tail) = stop_serve(serve);
    let logged = logged_events(&dir.path().join("bench.db"));
    println!(
        "  serve stopped with status {status:?}; store: {} events logged for {} answered 200{}",
        logged.map_or("?".into(), |n| n.to_string()),
        r.ok_total,
        match logged {
            Some(n) if n as u64 == r.ok_total => " (every acknowledged event is there)",
            _ => " (MISMATCH: every 200 here is a distinct sync event)",
        }
    );
    let summary: Vec<&str> = tail.lines().rev().take(6).collect();
    for l in summary.into_iter().rev() {
        println!("  | {l}");
    }
    r
}

// ---------------------------------------------------------------------------
// (b) a bare hyper server
// ---------------------------------------------------------------------------

/// A decision-sized answer, so both servers send about the same bytes.
const ANSWER: &str = r#"{"event_id":"evt_bench00000000000","type":"customer.subscription.updated","created":1780000000,"route":"sync","user_id":"user_bench00000000","customer_id":"cus_bench00000000","resolved_via":"object_metadata","reason":null,"source":"POST /stripe"}"#;

async fn bare_answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let _body = req.into_body().collect().await.map(|b| b.to_bytes());
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
        .expect("a response"))
}

/// Starts the bare server on its own thread and runtime; returns its
/// address and the sender that stops it.
fn start_bare() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("bare")
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(async move {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(
                                    TokioIo::new(stream),
                                    hyper::service::service_fn(bare_answer),
                                )
                                .await;
                        });
                    }
                    _ = &mut stop_rx => break,
                }
            }
        });
        rt.shutdown_background();
    });
    (addr_rx.recv().expect("bare server address"), stop_tx)
}

fn run_bare(s: &Settings, events: &Arc<Gen>) -> Outcome {
    let (addr, stop) = start_bare();
    let r = drive(addr, "/stripe", events, s);
    let _ = stop.send(());
    r
}

// ---------------------------------------------------------------------------

fn report(label: &str, r: &Outcome) {
    println!(
        "  {label:<44} {:>9} events/s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms",
        thousands(r.rate),
        r.p50_ms,
        r.p99_ms,
        r.max_ms
    );
    if !r.other.is_empty() || r.errors > 0 {
        println!(
            "  {:<44} {} answered 200 in the window; other answers {:?}; {} connection errors{}",
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
    if ok { "met" } else { "MISSED" }
}

fn main() {
    // `cargo bench` passes `--bench`; a bare word picks one target.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |t: &str| only.is_empty() || only.iter().any(|a| a == t);
    let s = Settings {
        secs: env_num("SERVE_BENCH_SECS", 30).max(1),
        warmup: env_num("SERVE_BENCH_WARMUP", 3),
        conns: env_num("SERVE_BENCH_CONNS", 32).max(1) as usize,
        customers: env_num("SERVE_BENCH_CUSTOMERS", 10_000).max(1),
        bin: std::env::var_os("SERVE_BENCH_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_stripe-sync"))),
        extra: std::env::var("SERVE_BENCH_ARGS")
            .map(|a| a.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    let events = Arc::new(Gen::new(s.customers));
    let size = events.body(0).len();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "serve load: {} keep-alive connections, distinct signed events of {size} bytes over {} customers, \
         {} s warm-up + {} s measured per target, {cores} cores",
        s.conns,
        thousands(s.customers as f64),
        s.warmup,
        s.secs
    );
    let bare = wants("bare").then(|| {
        let r = run_bare(&s, &events);
        report("bare hyper (reads the body, answers 200)", &r);
        r
    });
    let serve = wants("serve").then(|| {
        println!("  stripe-sync serve: {}", s.bin.display());
        let r = run_serve(&s, &events);
        report("stripe-sync serve", &r);
        r
    });
    if let Some(serve) = &serve {
        println!("goals:");
        if let Some(bare) = &bare {
            let ratio = serve.rate / bare.rate;
            println!(
                "  serve / bare        {:>9.1} %         goal >= {:.0} %      {}",
                ratio * 100.0,
                GOAL_RATIO * 100.0,
                verdict(ratio >= GOAL_RATIO)
            );
        }
        println!(
            "  serve events/s      {:>9}           goal >= {}    {}",
            thousands(serve.rate),
            thousands(GOAL_RATE),
            verdict(serve.rate >= GOAL_RATE)
        );
        println!(
            "  serve p99           {:>9.2} ms        goal <= {GOAL_P99_MS} ms     {}",
            serve.p99_ms,
            verdict(serve.p99_ms <= GOAL_P99_MS)
        );
        let clean = serve.other.is_empty() && serve.errors == 0;
        println!(
            "  every answer 200    {:>9}                              {}",
            if clean { "yes" } else { "no" },
            verdict(clean)
        );
    }
}
