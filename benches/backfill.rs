//! Backfill against the fake Stripe at Stripe's test-mode limits (issue 4):
//! 10,000 customers and 10,000 subscriptions, 40 ms latency, 25 requests/s.
//! Run: cargo bench --bench backfill   (about a minute)
#![allow(clippy::print_stdout)]

#[path = "../tests/support/fake_stripe.rs"]
mod fake_stripe;

use std::process::Command;
use std::time::{Duration, Instant};

use fake_stripe::{Account, FakeStripe};

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
    let (customers, subscriptions) = (10_000usize, 10_000usize);
    let events_only = std::env::var_os("BACKFILL_BENCH_EVENTS_ONLY").is_some();
    let fake = FakeStripe::builder()
        .account(Account::generate(customers, subscriptions, 1))
        .latency(Duration::from_millis(40))
        .rate_limit(25)
        .start();
    let dir = tempfile::tempdir().expect("temp dir");

    let (v, took) = run(dir.path(), &fake, &["--all", "--max-rps", "25"]);
    let requests = fake.request_count();
    let backfill_took = took;
    if events_only {
        catch_up(dir.path(), &fake, requests, backfill_took);
        return;
    }
    let minimum = customers.div_ceil(100) + subscriptions.div_ceil(100);
    let bound = requests as f64 / 25.0;
    println!(
        "backfill {customers} customers / {subscriptions} subscriptions, fake at 40 ms latency and 25 req/s:"
    );
    println!(
        "  {requests} requests (ceil(C/100)+ceil(S/100) = {minimum}), {} 429s from the fake, {} retries",
        fake.rate_limited_count(),
        v["summary"]["retries"]
    );
    println!(
        "  wall {:.2} s; rate-limit bound {bound:.2} s ({:+.1}%)",
        took.as_secs_f64(),
        (took.as_secs_f64() / bound - 1.0) * 100.0
    );
    let per_customer = customers as f64 / 25.0;
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
