//! Backfill against the fake Stripe at Stripe's test-mode limits (issue 4):
//! 10,000 customers and 10,000 subscriptions, 40 ms latency, 25 requests/s,
//! then `resync --events` catching up on 200 changed customers (issue 11).
//! Run: cargo bench --bench backfill   (about a minute)
//!
//! At scale (issue 12): `BACKFILL_BENCH_CUSTOMERS=1000000 cargo bench
//! --bench backfill` runs `resync --all` on that many customers and as
//! many subscriptions instead, with the fake answering at once and pacing
//! out of the way, against issue 12's goals; then `inspect` on the store it
//! made (see `at_scale`). Minutes, and a few GB in the temp dir.
//!
//! Issue 21: each goal is a `result` line on stdout (see [`result`]): the
//! backfill against the request bound, `ceil(C/100) + ceil(S/100)` list
//! pages at 25 requests/s; at scale, the report phase's time and its
//! resident memory (sampled from /proc from the pass's last `-v` line to
//! the exit), and the bench exits 1 when that exceeds 50 MB.
//! The report's CPU time and what its peak RSS is made of (SQLite's heap,
//! Rust's, the binary) are printed too. `BACKFILL_BENCH_RUNS=1` runs the
//! first backfill alone (no second, no `inspect`); `BACKFILL_BENCH_BIN=PATH`
//! measures another build; `BACKFILL_BENCH_RSS_LOG=PATH` writes the RSS
//! and its parts every 200 ms.
//!
//! Into PostgreSQL (issue 22): `BACKFILL_BENCH_POSTGRES=1 cargo bench
//! --bench backfill` runs the at-scale backfill (`resync --all`, the fake
//! answering at once, pacing off) of 100,000 customers and as many
//! subscriptions (`BACKFILL_BENCH_CUSTOMERS` sets another number) into a
//! fresh SQLite file and into a fresh PostgreSQL database, side by side on
//! the same fake, `BACKFILL_BENCH_ROUNDS` times (default 2: SQLite,
//! PostgreSQL, then PostgreSQL, SQLite), and prints for each run its wall
//! time, customers/s, stripe-sync's CPU time and peak RSS, and the
//! PostgreSQL server's CPU time (its own processes: not in stripe-sync's
//! RSS), then two `result` rows (customers/s, peak RSS) with SQLite as the
//! baseline and no goal (`-`). The server is the tests' with PostgreSQL's
//! default durability (see `benches/support/pg_bench.rs`: fsync on;
//! `BENCH_PG_FSYNC=off` without; `BENCH_PG_STATEMENTS=1` prints the
//! statements it ran per customer). Without PostgreSQL's binaries the
//! rows say SKIPPED (`STRIPE_SYNC_REQUIRE_PG=1`: the bench fails instead).
//! A minute or two at 100,000.
#![allow(clippy::print_stdout)]

#[path = "../tests/support/fake_stripe.rs"]
mod fake_stripe;
#[path = "support/inspect_probe.rs"]
mod inspect_probe;
#[allow(dead_code)]
#[path = "../tests/support/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "support/pg_bench.rs"]
mod pg_bench;

use std::process::Command;
use std::time::{Duration, Instant};

use fake_stripe::{Account, FakeStripe};
use inspect_probe::thousands;

fn run(dir: &std::path::Path, fake: &FakeStripe, args: &[&str]) -> (serde_json::Value, Duration) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_stripe-sync"))
        .current_dir(dir)
        .env("STRIPE_API_KEY", fake.api_key())
        .args(["resync", "--json", "--api-base", &fake.url()])
        .args(args)
        .output()
        .expect("runs stripe-sync");
    let took = t.elapsed();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).expect("JSON"), took)
}

fn main() {
    let customers = std::env::var("BACKFILL_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse::<usize>().ok());
    if std::env::var_os("BACKFILL_BENCH_POSTGRES").is_some_and(|v| v == "1") {
        postgres_beside_sqlite(customers.unwrap_or(100_000));
        return;
    }
    if let Some(n) = customers {
        at_scale(n);
        return;
    }
    let (customers, subscriptions) = (10_000usize, 10_000usize);
    let events_only = std::env::var_os("BACKFILL_BENCH_EVENTS_ONLY").is_some();
    let fake = FakeStripe::builder()
        .account(Account::generate(customers, subscriptions, 1))
        .latency(Duration::from_millis(40))
        .rate_limit(RATE as u32)
        .start();
    let dir = tempfile::tempdir().expect("temp dir");

    let (v, took) = run(dir.path(), &fake, &["--all", "--max-rps", "25"]);
    let requests = fake.request_count();
    let backfill_took = took;
    if events_only {
        catch_up(dir.path(), &fake, requests, backfill_took);
        return;
    }
    println!(
        "backfill {customers} customers / {subscriptions} subscriptions, fake at 40 ms latency and {RATE} req/s:"
    );
    let bound = RequestBound::new(customers, subscriptions, RATE);
    let customer_lists = fake.count_where(|r| r.path == "/v1/customers");
    let subscription_lists = fake.count_where(|r| r.path == "/v1/subscriptions");
    println!(
        "  {requests} requests ({customer_lists} customer list pages, {subscription_lists} subscription list pages, {} other), {} 429s from the fake, {} retries",
        requests - customer_lists - subscription_lists,
        fake.rate_limited_count(),
        v["summary"]["retries"]
    );
    bound.report(
        &format!(
            "backfill {} customers / {} subscriptions at {RATE} req/s",
            thousands(customers as u64),
            thousands(subscriptions as u64)
        ),
        requests,
        took,
    );
    if requests > bound.requests {
        // Each page is a list call with `expand[]=data.default_payment_method`
        // (Stripe allows it on lists): no per-customer look-up should remain.
        println!(
            "  MISSED: {} requests beyond the {} list pages; paths: {:?}",
            requests - bound.requests,
            bound.requests,
            other_paths(&fake)
        );
    }
    println!(
        "  (wall {:.2} s; the pacer keeps under {RATE} in any 1 s window with a 25 ms margin: at best {:.2} s)",
        took.as_secs_f64(),
        bound.seconds() * 1.025
    );
    let per_customer = customers as f64 / RATE;
    println!(
        "  the pattern's per-customer sync needs {customers} requests: {per_customer:.0} s at 25/s, {:.0}x the backfill",
        per_customer / took.as_secs_f64()
    );

    // The per-customer pattern, measured on 250 customers the store knows.
    let ids: Vec<String> = fake
        .customers()
        .iter()
        .take(250)
        .map(|c| c["id"].as_str().unwrap_or("").to_owned())
        .collect();
    let mut args: Vec<&str> = vec!["--max-rps", "25"];
    for id in &ids {
        args.push("--customer");
        args.push(id);
    }
    fake.reset_counters();
    let (_, took) = run(dir.path(), &fake, &args);
    println!(
        "  measured: resync --customer x250 (known customers): {} requests in {:.2} s ({:.1} req/s) -> {:.0} s for 10,000",
        fake.request_count(),
        took.as_secs_f64(),
        fake.request_count() as f64 / took.as_secs_f64(),
        took.as_secs_f64() * customers as f64 / 250.0
    );

    // resync --user: a known mapping costs one request, an unknown user two.
    let user = fake.customers()[42]["metadata"]["clerkUserId"]
        .as_str()
        .unwrap_or("user_42")
        .to_owned();
    fake.reset_counters();
    let (_, took) = run(dir.path(), &fake, &["--user", &user]);
    println!(
        "  resync --user (mapping in the store): {} request(s), {:.0} ms",
        fake.request_count(),
        took.as_secs_f64() * 1000.0
    );
    let fresh = tempfile::tempdir().expect("temp dir");
    fake.reset_counters();
    let (_, took) = run(fresh.path(), &fake, &["--user", &user]);
    println!(
        "  resync --user (via search):           {} request(s), {:.0} ms",
        fake.request_count(),
        took.as_secs_f64() * 1000.0
    );

    catch_up(dir.path(), &fake, requests, backfill_took);
}

/// Stripe's test-mode rate limit, which the fake enforces and the run is given.
const RATE: f64 = 25.0;
/// The goal: within 10% of the request bound, in requests and in time.
const BOUND_GOAL: f64 = 1.10;

/// The least a backfill can do: list every customer and every subscription
/// 100 a page (`ceil(C/100) + ceil(S/100)` requests), at the rate limit.
struct RequestBound {
    requests: usize,
    rate: f64,
}

impl RequestBound {
    fn new(customers: usize, subscriptions: usize, rate: f64) -> RequestBound {
        RequestBound {
            requests: customers.div_ceil(100) + subscriptions.div_ceil(100),
            rate,
        }
    }

    fn seconds(&self) -> f64 {
        self.requests as f64 / self.rate
    }

    /// Print the result line of a run that made `requests` in `took`:
    /// the ratio is the worse of requests and time against the bound.
    fn report(&self, measure: &str, requests: usize, took: Duration) {
        let ratio = f64::max(
            requests as f64 / self.requests as f64,
            took.as_secs_f64() / self.seconds(),
        );
        result(
            measure,
            &format!(
                "{} requests {:.2} s",
                thousands(requests as u64),
                took.as_secs_f64()
            ),
            &format!(
                "bound {} requests {:.2} s",
                thousands(self.requests as u64),
                self.seconds()
            ),
            &format!("{ratio:.2}"),
            &format!("<= {BOUND_GOAL:.2} of the request bound"),
            ratio <= BOUND_GOAL,
        );
    }
}

/// Requests other than the two listings, by path (what a bound missed).
fn other_paths(fake: &FakeStripe) -> Vec<(String, usize)> {
    let mut paths: Vec<(String, usize)> = Vec::new();
    for r in fake.requests() {
        if r.path == "/v1/customers" || r.path == "/v1/subscriptions" {
            continue;
        }
        match paths.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, n)) => *n += 1,
            None => paths.push((r.path.clone(), 1)),
        }
    }
    paths
}

/// One line of the table `benches/all.sh` collects (tab-separated):
/// measure, this tool, baseline(s), ratio, goal, met|missed.
fn result(measure: &str, this: &str, baseline: &str, ratio: &str, goal: &str, met: bool) {
    let verdict = if met { "met" } else { "missed" };
    println!("result\t{measure}\t{this}\t{baseline}\t{ratio}\t{goal}\t{verdict}");
}

/// Issue 11: 200 customers changed behind the store's back (about 600
/// events), then `resync --events`, against the full backfill.
fn catch_up(
    dir: &std::path::Path,
    fake: &FakeStripe,
    backfill_requests: usize,
    backfill: Duration,
) {
    let subs = fake.subscriptions();
    let mut changed = 0;
    for s in subs.iter().filter(|s| s["status"] == "active").take(200) {
        let id = s["id"].as_str().unwrap_or_default().to_owned();
        let customer = s["customer"].as_str().unwrap_or_default().to_owned();
        let mut c = fake.customer(&customer).expect("customer");
        c["email"] = serde_json::json!(format!("changed-{changed}@example.com"));
        fake.upsert_customer(c);
        fake.record_invoice_paid(&id);
        let mut s = s.clone();
        s["cancel_at_period_end"] = serde_json::json!(true);
        fake.upsert_subscription(s);
        changed += 1;
    }
    let events = fake.events().len();
    fake.reset_counters();
    let (v, took) = run(dir, fake, &["--events", "--max-rps", "25"]);
    let requests = fake.request_count();
    println!("catch-up: {changed} customers changed behind the store's back, {events} events:");
    println!(
        "  resync --events: {requests} requests (bound ceil(E/100)+customers = {}), {} customers synced, {:.2} s",
        events.div_ceil(100) + changed,
        v["summary"]["customers"],
        took.as_secs_f64()
    );
    println!(
        "  against the full backfill ({backfill_requests} requests, {:.2} s): {:.1}x fewer requests, {:.1}x less time (goal: 10x each)",
        backfill.as_secs_f64(),
        backfill_requests as f64 / requests.max(1) as f64,
        backfill.as_secs_f64() / took.as_secs_f64()
    );
}

/// Issue 12's goals for `resync --all` at a million customers.
const RSS_GOAL_MB: f64 = 150.0;
const CUSTOMERS_PER_S_GOAL: f64 = 50_000.0;
/// Issue 21: the report phase of a million-customer backfill in at most
/// 50 MB resident (checked: the bench fails when exceeded).
const REPORT_RSS_GOAL_BYTES: u64 = 50_000_000;
/// The report reads back what the pass wrote: a tenth of the pass at most.
const REPORT_SHARE_GOAL: f64 = 0.10;

/// `resync --all` on `n` customers and `n` subscriptions: the fake answers
/// at once (latency 0) and `--max-rps 10000` keeps pacing out of the way
/// (the highest rate the client takes; the run makes a few hundred
/// requests a second at most); then the same again with nothing changed,
/// then `inspect` on the store.
fn at_scale(n: usize) {
    println!(
        "backfill at scale: {n} customers / {n} subscriptions, fake at 0 ms latency, pacing off:"
    );
    let t = Instant::now();
    let fake = FakeStripe::builder().generated(n, n, 1).start();
    println!(
        "  fake: {:.1} s to generate and start; this process's peak RSS so far {}",
        t.elapsed().as_secs_f64(),
        own_peak_rss().map_or("unknown".to_owned(), mib)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("stripe-sync.db");
    let goal_requests = 2 * n.div_ceil(100);
    let mut memory_exceeded = false;

    // BACKFILL_BENCH_RUNS=1: the first backfill alone (no second, no
    // `inspect`), for a quicker look at one change.
    let runs = std::env::var("BACKFILL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(2);
    for (label, what) in [
        ("first backfill", "into an empty store"),
        ("second backfill", "nothing changed"),
    ]
    .into_iter()
    .take(runs)
    {
        fake.reset_counters();
        let run = measured(
            dir.path(),
            &fake,
            &["--all", "--max-rps", "10000", "-v"],
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let requests = fake.request_count();
        let customers = stored_customers(&db);
        let wall = run.wall.as_secs_f64();
        let cpu = run.cpu.map_or(String::new(), |c| {
            format!(" (stripe-sync's CPU: {:.2} s)", c.as_secs_f64())
        });
        println!(
            "  {label} ({what}): wall {wall:.2} s{cpu}; it says: {}",
            run.summary
        );
        println!(
            "    requests: {requests} (goal: exactly ceil(C/100)+ceil(S/100) = {goal_requests}) {}",
            verdict(requests == goal_requests)
        );
        let rate = customers as f64 / wall;
        println!(
            "    customers in the store / wall time: {customers} / {wall:.2} s = {rate:.0}/s (goal >= {CUSTOMERS_PER_S_GOAL:.0}/s) {}",
            verdict(rate >= CUSTOMERS_PER_S_GOAL)
        );
        if let Some(writing) = run.phase("writing") {
            println!(
                "    store writes alone (stripe-sync -v: time writing and committing pages): {:.2} s, {:.0} customers/s",
                writing.as_secs_f64(),
                customers as f64 / writing.as_secs_f64()
            );
        }
        let phases: Vec<String> = ["listing", "writing", "settling", "indexing", "report"]
            .iter()
            .filter_map(|p| {
                run.phase(p)
                    .map(|d| format!("{p} {:.2} s", d.as_secs_f64()))
            })
            .collect();
        println!("    phases (-v): {}", phases.join(", "));
        match run.peak_rss {
            Some(bytes) => println!(
                "    peak RSS of stripe-sync: {} (goal <= {RSS_GOAL_MB:.0} MB) {}",
                mib(bytes),
                verdict(bytes as f64 <= RSS_GOAL_MB * 1e6)
            ),
            None => println!("    peak RSS of stripe-sync: not measured (no /usr/bin/time)"),
        }
        let measure = format!(
            "backfill report, {} customers ({label})",
            thousands(n as u64)
        );
        if let Some(report) = run.phase("report") {
            let pass = wall - report.as_secs_f64();
            let ratio = report.as_secs_f64() / pass;
            result(
                &format!("{measure}, time"),
                &format!("{:.2} s", report.as_secs_f64()),
                &format!("the pass {pass:.2} s"),
                &format!("{ratio:.2}"),
                &format!("<= {REPORT_SHARE_GOAL:.2} of the pass"),
                ratio <= REPORT_SHARE_GOAL,
            );
        }
        // Sampled from the end of the pass to the exit: a report phase too
        // short to sample is no pass of the check.
        let rss = run.report_rss;
        let within = rss.is_some_and(|b| b <= REPORT_RSS_GOAL_BYTES);
        result(
            &format!("{measure}, peak RSS"),
            &rss.map_or("not measured".to_owned(), |b| {
                format!("{:.1} MB", b as f64 / 1e6)
            }),
            "-",
            &rss.map_or("-".to_owned(), |b| {
                format!("{:.2}", b as f64 / REPORT_RSS_GOAL_BYTES as f64)
            }),
            &format!("<= {} MB", REPORT_RSS_GOAL_BYTES / 1_000_000),
            within,
        );
        if let Some(cpu) = run.report_cpu {
            println!(
                "    report's CPU (stripe-sync's user + system time): {:.2} s",
                cpu.as_secs_f64()
            );
        }
        if let Some(p) = run.report_parts {
            let mb =
                |b: Option<u64>| b.map_or("?".to_owned(), |b| format!("{:.1}", b as f64 / 1e6));
            println!(
                "    report's peak RSS: {} MB anonymous ({} MB glibc's heap: SQLite's; {} MB anonymous mappings: mimalloc's, Rust's), {} MB of files (the binary, the WAL index)",
                mb(Some(p.anon)),
                mb(p.heap),
                mb(p.mapped),
                mb(Some(p.file)),
            );
        }
        memory_exceeded |= !within;
    }

    // Another helper's probe of `inspect` (issue 12), on the store just made.
    if runs >= 2 {
        let user = any_user(&db);
        for line in inspect_probe::measure(&stripe_sync(), &db, &user) {
            println!("  {line}");
        }
    }
    if memory_exceeded {
        println!("the backfill's report exceeded its memory bound (or was not measured)");
        // `exit` runs no destructor: the store (half a GB) goes first.
        drop(dir);
        std::process::exit(1);
    }
}

/// The stores the PostgreSQL comparison writes.
#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Sqlite,
    Postgres,
}

/// Issue 22: [`at_scale`]'s first backfill of `n` customers (and as many
/// subscriptions) into a fresh SQLite store and into a fresh PostgreSQL
/// database, on the same fake, alternating, `BACKFILL_BENCH_ROUNDS` times.
fn postgres_beside_sqlite(n: usize) {
    let rounds = std::env::var("BACKFILL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(2)
        .max(1);
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    };
    println!(
        "backfill into PostgreSQL beside SQLite: {} customers / {} subscriptions, fake at 0 ms \
         latency, pacing off (--max-rps 10000), {rounds} round(s) alternating the engines; \
         load average {}",
        thousands(n as u64),
        thousands(n as u64),
        load()
    );
    let measure = |what: &str, short: &str| {
        format!(
            "backfill {} customers into {short} (resync --all, fake at 0 ms), {what}",
            thousands(n as u64)
        )
    };
    let bpg = match pg_bench::start() {
        Ok(b) => b,
        Err(why) => {
            println!("  PostgreSQL SKIPPED: {why}");
            for what in ["customers/s", "peak RSS"] {
                let m = measure(what, "PostgreSQL");
                println!("result\t{m}\tSKIPPED: {why}\t-\t-\t-\tSKIPPED");
            }
            return;
        }
    };
    println!("  {}", bpg.settings);
    let t = Instant::now();
    let fake = FakeStripe::builder().generated(n, n, 1).start();
    println!(
        "  fake: {:.1} s to generate and start",
        t.elapsed().as_secs_f64()
    );
    let goal_requests = 2 * n.div_ceil(100);
    // Per engine: (wall s, customers/s, peak RSS bytes) of each run.
    let mut figures: Vec<(Engine, f64, f64, Option<u64>)> = Vec::new();
    // Runs that failed: the engine and why.
    let mut failures: Vec<(Engine, String)> = Vec::new();
    for round in 0..rounds {
        let order = match round % 2 {
            0 => [Engine::Sqlite, Engine::Postgres],
            _ => [Engine::Postgres, Engine::Sqlite],
        };
        for engine in order {
            let dir = tempfile::tempdir().expect("temp dir");
            let target = (engine == Engine::Postgres).then(|| bpg.fresh_url());
            fake.reset_counters();
            let pg_cpu0 = bpg.cpu();
            let run = measured(
                dir.path(),
                &fake,
                &["--all", "--max-rps", "10000", "-v"],
                target.as_ref().map(|(_, url)| url.as_str()),
            );
            let pg_cpu = match (pg_cpu0, bpg.cpu()) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            };
            let name = match engine {
                Engine::Sqlite => "SQLite",
                Engine::Postgres => "PostgreSQL",
            };
            let run = match run {
                Ok(run) => run,
                Err(why) => {
                    println!("  round {} {name}: FAILED: {why}", round + 1);
                    failures.push((engine, why));
                    continue;
                }
            };
            let requests = fake.request_count();
            let customers = match &target {
                Some((db, _)) => bpg.count(db, "customers").unwrap_or(0),
                None => stored_customers(&dir.path().join("stripe-sync.db")),
            };
            let wall = run.wall.as_secs_f64();
            let rate = customers as f64 / wall;
            println!(
                "  round {} {name}: wall {wall:.2} s, {} customers stored ({}/s){}; it says: {}",
                round + 1,
                thousands(customers),
                thousands(rate.round() as u64),
                if customers as usize == n {
                    ""
                } else {
                    " (MISMATCH: not every customer listed)"
                },
                run.summary
            );
            let cpu = |d: Option<Duration>| {
                d.map_or("?".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
            };
            println!(
                "    CPU: stripe-sync {}{}; peak RSS of stripe-sync {}; requests {requests} (goal {goal_requests}) {}",
                cpu(run.cpu),
                match engine {
                    Engine::Postgres => format!(", the PostgreSQL server {}", cpu(pg_cpu)),
                    Engine::Sqlite => String::new(),
                },
                run.peak_rss
                    .map_or("not measured (no /usr/bin/time)".to_owned(), mib),
                verdict(requests == goal_requests)
            );
            let phases: Vec<String> = ["listing", "writing", "settling", "indexing", "report"]
                .iter()
                .filter_map(|p| {
                    run.phase(p)
                        .map(|d| format!("{p} {:.2} s", d.as_secs_f64()))
                })
                .collect();
            println!("    phases (-v): {}", phases.join(", "));
            if let Some((db, _)) = &target {
                for l in bpg.statements(db, customers, "customer") {
                    println!("    {l}");
                }
            }
            figures.push((engine, wall, rate, run.peak_rss));
        }
    }
    println!("  load average after: {}", load());
    // Each engine's median run, with the range when there are several.
    let of = |engine: Engine| -> (f64, f64, String, Option<u64>, String) {
        let runs: Vec<&(Engine, f64, f64, Option<u64>)> =
            figures.iter().filter(|f| f.0 == engine).collect();
        let mut walls: Vec<f64> = runs.iter().map(|f| f.1).collect();
        let mut rates: Vec<f64> = runs.iter().map(|f| f.2).collect();
        let mut rss: Vec<u64> = runs.iter().filter_map(|f| f.3).collect();
        walls.sort_by(f64::total_cmp);
        rates.sort_by(f64::total_cmp);
        rss.sort_unstable();
        let wall = median(&walls);
        let rate = median(&rates);
        let rate_text = if rates.len() > 1 {
            format!(
                "{wall:.2} s, {}/s (runs {}-{}/s)",
                thousands(rate.round() as u64),
                thousands(rates[0].round() as u64),
                thousands(rates[rates.len() - 1].round() as u64)
            )
        } else {
            format!("{wall:.2} s, {}/s", thousands(rate.round() as u64))
        };
        let peak = rss.last().copied();
        let rss_text = match (rss.first(), rss.last()) {
            (Some(a), Some(b)) if a != b => format!(
                "{:.1} MB (runs {:.1}-{:.1})",
                *b as f64 / 1e6,
                *a as f64 / 1e6,
                *b as f64 / 1e6
            ),
            (Some(a), _) => format!("{:.1} MB", *a as f64 / 1e6),
            _ => "not measured".to_owned(),
        };
        (wall, rate, rate_text, peak, rss_text)
    };
    let (_, sqlite_rate, sqlite_text, sqlite_rss, sqlite_rss_text) = of(Engine::Sqlite);
    let (_, pg_rate, pg_text, pg_rss, pg_rss_text) = of(Engine::Postgres);
    let ratio = |a: f64, b: f64| {
        let r = a / b;
        if r.is_finite() {
            format!("{r:.2}")
        } else {
            "-".to_owned()
        }
    };
    let runs = if rounds > 1 {
        format!(", median of {rounds}")
    } else {
        String::new()
    };
    // A failed run is no figure: the rows say so (with the first line of
    // its error) and the bench exits 1.
    let failed = |engine: Engine| -> Option<String> {
        let why: Vec<&String> = failures
            .iter()
            .filter(|f| f.0 == engine)
            .map(|f| &f.1)
            .collect();
        let first = why.first()?.lines().next().unwrap_or("").trim();
        Some(format!("FAILED in {} of {rounds} runs: {first}", why.len()))
    };
    let (pg_failed, sqlite_failed) = (failed(Engine::Postgres), failed(Engine::Sqlite));
    let verdict = if pg_failed.is_some() || sqlite_failed.is_some() {
        "FAILED"
    } else {
        "-"
    };
    let sqlite_text = sqlite_failed.clone().unwrap_or(sqlite_text);
    let sqlite_rss_text = sqlite_failed.clone().unwrap_or(sqlite_rss_text);
    let pg_text = pg_failed.clone().unwrap_or(pg_text);
    let pg_rss_text = pg_failed.clone().unwrap_or(pg_rss_text);
    println!(
        "result\t{}\t{pg_text}\tSQLite {sqlite_text}\t{}\t-\t{verdict}",
        measure(&format!("customers/s{runs}"), &bpg.short),
        ratio(pg_rate, sqlite_rate)
    );
    println!(
        "result\t{}\t{pg_rss_text}\tSQLite {sqlite_rss_text}\t{}\t-\t{verdict}",
        measure(
            &format!("peak RSS of stripe-sync (the server's own not counted), largest of {rounds}"),
            &bpg.short
        ),
        match (pg_rss, sqlite_rss) {
            (Some(a), Some(b)) => ratio(a as f64, b as f64),
            _ => "-".to_owned(),
        }
    );
    if verdict == "FAILED" {
        std::process::exit(1);
    }
}

/// The median of sorted values.
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// One measured `stripe-sync resync` run.
struct Measured {
    wall: Duration,
    /// Its CPU time, user and system (the machine may be busy with more
    /// than this run: wall time alone says little then).
    cpu: Option<Duration>,
    /// Its peak RSS in bytes (`/usr/bin/time`'s maximum resident set).
    peak_rss: Option<u64>,
    /// Its largest RSS sampled during the report phase (after the pass's
    /// last `-v` line), in bytes.
    report_rss: Option<u64>,
    /// That sample's parts (see [`Resident`]).
    report_parts: Option<Resident>,
    /// Its CPU time during the report phase (user and system; on a busy
    /// machine its wall time says little).
    report_cpu: Option<Duration>,
    /// The summary line it printed.
    summary: String,
    /// Its `-v` lines.
    stderr: String,
}

impl Measured {
    /// A phase's time from the `-v` lines (`  writing: 12.3 s`).
    fn phase(&self, name: &str) -> Option<Duration> {
        let prefix = format!("{name}: ");
        let line = self
            .stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix.as_str()))?;
        parse_elapsed(line)
    }
}

/// The binary measured: this build's, or `BACKFILL_BENCH_BIN` (to compare
/// two builds back to back on the same fake).
fn stripe_sync() -> std::path::PathBuf {
    std::env::var_os("BACKFILL_BENCH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_stripe-sync").into())
}

/// `stripe-sync resync ARGS` in `dir`, measured; on the store at `url`
/// (given in the environment: it holds a password) or, without, on
/// `dir/stripe-sync.db`. A failed run: its status and what it printed.
fn measured(
    dir: &std::path::Path,
    fake: &FakeStripe,
    args: &[&str],
    url: Option<&str>,
) -> Result<Measured, String> {
    use std::io::{BufRead, Read};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let time = std::path::Path::new("/usr/bin/time");
    let rusage_file = dir.join("rusage");
    let timed = time.exists();
    let mut cmd = match timed {
        true => {
            let mut c = Command::new(time);
            c.arg("-f").arg("%M %U %S").arg("-o").arg(&rusage_file);
            c.arg(stripe_sync());
            c
        }
        false => Command::new(stripe_sync()),
    };
    match url {
        Some(url) => cmd.env("STRIPE_SYNC_DB", url),
        None => cmd.env_remove("STRIPE_SYNC_DB"),
    };
    let t = Instant::now();
    let mut child = cmd
        .current_dir(dir)
        .env("STRIPE_API_KEY", fake.api_key())
        .args(["resync", "--api-base", &fake.url()])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs stripe-sync");
    // The report phase starts after the last of the pass's `-v` lines
    // (`  indexing: ...`); from then on, stripe-sync's resident set is
    // sampled from /proc every millisecond until it exits.
    let reporting = AtomicBool::new(false);
    let exited = AtomicBool::new(false);
    let report_rss = AtomicU64::new(0);
    let report_parts = std::sync::Mutex::new(None);
    // stripe-sync's CPU time (clock ticks) when the report began, and last seen.
    let report_cpu = std::sync::Mutex::new((None::<u64>, 0u64));
    let (stdout, stderr, status) = std::thread::scope(|scope| {
        let mut out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let outer = child.id();
        let (reporting, exited, report_rss, report_parts, report_cpu) =
            (&reporting, &exited, &report_rss, &report_parts, &report_cpu);
        scope.spawn(move || {
            let mut pid = None;
            // BACKFILL_BENCH_RSS_LOG=PATH: the resident set every 200 ms,
            // with glibc's heap and the anonymous mappings, for a look at
            // where the memory goes.
            let mut log = std::env::var_os("BACKFILL_BENCH_RSS_LOG")
                .and_then(|p| std::fs::File::create(p).ok());
            let mut next_log = Instant::now();
            while !exited.load(Ordering::Acquire) {
                if let (Some(file), Some(p)) = (log.as_mut(), pid)
                    && next_log.elapsed() >= Duration::from_millis(200)
                    && let Some(rss) = resident(p).map(|r| with_regions(p, r))
                {
                    use std::io::Write;
                    next_log = Instant::now();
                    let _ = writeln!(
                        file,
                        "{:.1}\t{}\t{:.1}\t{:.1}\t{:.1}",
                        t.elapsed().as_secs_f64(),
                        if reporting.load(Ordering::Acquire) {
                            "report"
                        } else {
                            "pass"
                        },
                        rss.total as f64 / 1e6,
                        rss.heap.unwrap_or(0) as f64 / 1e6,
                        rss.mapped.unwrap_or(0) as f64 / 1e6
                    );
                }
                pid = pid.or_else(|| match timed {
                    true => first_child(outer),
                    false => Some(outer),
                });
                if reporting.load(Ordering::Acquire)
                    && let Some(rss) = pid.and_then(resident)
                    && report_rss.fetch_max(rss.total, Ordering::AcqRel) < rss.total
                    && let Ok(mut parts) = report_parts.lock()
                {
                    *parts = Some(pid.map_or(rss, |p| with_regions(p, rss)));
                }
                if reporting.load(Ordering::Acquire)
                    && let Some(ticks) = pid.and_then(cpu_ticks)
                    && let Ok(mut cpu) = report_cpu.lock()
                {
                    cpu.0.get_or_insert(ticks);
                    cpu.1 = ticks;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let stderr = scope.spawn(move || {
            let mut text = String::new();
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if line.trim_start().starts_with("indexing:") {
                    reporting.store(true, Ordering::Release);
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let mut stdout = String::new();
        out.read_to_string(&mut stdout).expect("stdout");
        let status = child.wait().expect("stripe-sync exits");
        exited.store(true, Ordering::Release);
        (stdout, stderr.join().expect("stderr reader"), status)
    });
    let wall = t.elapsed();
    if !status.success() {
        // Its error first (the table shows the first line), then the rest.
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error"))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("")
            .trim();
        return Err(format!(
            "stripe-sync resync {status} after {:.2} s: {error}{}{}",
            wall.as_secs_f64(),
            stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| format!("\n    {l}"))
                .collect::<String>(),
            stderr
                .lines()
                .filter(|l| !l.trim().is_empty() && l.trim() != error)
                .map(|l| format!("\n    {l}"))
                .collect::<String>()
        ));
    }
    // `%M %U %S`: peak RSS in KiB, user and system CPU seconds.
    let rusage = std::fs::read_to_string(&rusage_file).unwrap_or_default();
    let mut rusage = rusage.split_whitespace();
    let peak_rss = rusage
        .next()
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib * 1024);
    let cpu = rusage.map_while(|s| s.parse::<f64>().ok()).sum::<f64>();
    let report_rss = report_rss.into_inner();
    Ok(Measured {
        wall,
        cpu: (cpu > 0.0).then(|| Duration::from_secs_f64(cpu)),
        peak_rss,
        report_rss: (report_rss > 0).then_some(report_rss),
        report_parts: report_parts.into_inner().ok().flatten(),
        report_cpu: match report_cpu.into_inner() {
            Ok((Some(first), last)) => Some(Duration::from_secs_f64(
                last.saturating_sub(first) as f64 / CLOCK_TICKS,
            )),
            _ => None,
        },
        summary: stdout
            .lines()
            .find(|l| l.contains(" customers: "))
            .unwrap_or("")
            .to_owned(),
        stderr,
    })
}

/// The first child of `pid` (stripe-sync under /usr/bin/time).
fn first_child(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// Clock ticks a second in /proc/PID/stat (`getconf CLK_TCK`: 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// A process's CPU time so far (user + system), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// A process's resident set, in bytes: the whole (VmRSS), its anonymous
/// memory and its pages of mapped files (the binary, SQLite's WAL index).
#[derive(Debug, Clone, Copy)]
struct Resident {
    total: u64,
    anon: u64,
    file: u64,
    /// Of `anon`: glibc's main heap (`[heap]` in smaps: SQLite's memory,
    /// which runs on the main thread) and anonymous mappings (mimalloc's
    /// arena: Rust's memory; and glibc's largest blocks), when read.
    heap: Option<u64>,
    mapped: Option<u64>,
}

/// A process's resident set now (Linux's /proc/PID/status).
fn resident(pid: u32) -> Option<Resident> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some(Resident {
        total: field("VmRSS:")?,
        anon: field("RssAnon:").unwrap_or(0),
        file: field("RssFile:").unwrap_or(0),
        heap: None,
        mapped: None,
    })
}

/// `rss` with its heap and anonymous mappings read from /proc/PID/smaps.
fn with_regions(pid: u32, mut rss: Resident) -> Resident {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return rss;
    };
    let (mut heap, mut mapped, mut region) = (0, 0, "");
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some(w) if w.contains('-') && !w.ends_with(':') => {
                // `start-end perms offset dev inode [path]`
                region = match words.nth(4) {
                    Some("[heap]") => "heap",
                    None => "anon",
                    Some(_) => "",
                };
            }
            Some("Rss:") => {
                let kib: u64 = words.next().and_then(|k| k.parse().ok()).unwrap_or(0);
                match region {
                    "heap" => heap += kib * 1024,
                    "anon" => mapped += kib * 1024,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    rss.heap = Some(heap);
    rss.mapped = Some(mapped);
    rss
}

/// `850 ms`, `2.4 s`, `1 min 05 s`, `1 h 02 min` (stripe-sync's own format).
fn parse_elapsed(text: &str) -> Option<Duration> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let secs = match words.as_slice() {
        [n, "ms"] => n.parse::<f64>().ok()? / 1000.0,
        [n, "s"] => n.parse::<f64>().ok()?,
        [m, "min", s, "s"] => m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?,
        [h, "h", m, "min"] => h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn stored_customers(db: &std::path::Path) -> u64 {
    let conn = rusqlite::Connection::open(db).expect("the store opens");
    conn.query_row("SELECT count(*) FROM customers", [], |r| r.get::<_, i64>(0))
        .map_or(0, |n| n as u64)
}

/// A user the store maps to a customer (for `inspect --user`).
fn any_user(db: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(db).expect("the store opens");
    conn.query_row(
        "SELECT user_id FROM customers WHERE user_id IS NOT NULL ORDER BY id LIMIT 1",
        [],
        |r| r.get(0),
    )
    .expect("a mapped user")
}

/// This process's peak RSS in bytes (Linux).
fn own_peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(bytes: u64) -> String {
    format!(
        "{:.1} MiB ({:.0} MB)",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1e6
    )
}

fn verdict(met: bool) -> &'static str {
    if met { "ok" } else { "MISSED" }
}
