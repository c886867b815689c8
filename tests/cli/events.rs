//! `resync --events`: catching up from Stripe's event log, against the fake
//! Stripe's own event log (tests/support/fake_stripe.rs).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Output, cmd_in, json, run, tempdir};
use crate::support::fake_stripe::{Account, FakeStripe};

fn resync(dir: &Path, fake: &FakeStripe, args: &[&str]) -> Output {
    run(cmd_in(dir)
        .env("STRIPE_API_KEY", fake.api_key())
        .env("STRIPE_SYNC_TEST_BACKOFF_MS", "0")
        .args(["resync", "--max-rps", "100", "--api-base", &fake.url()])
        .args(args))
}

/// `inspect --json` as comparable rows (without the sync time and source).
fn rows(dir: &Path) -> Vec<Value> {
    let out = run(cmd_in(dir).args(["inspect", "--json"]));
    assert!(out.status <= 1, "{}", out.stderr);
    let mut v: Vec<Value> = json(&out.stdout).as_array().cloned().unwrap_or_default();
    for r in &mut v {
        let o = r.as_object_mut().unwrap();
        o.remove("synced_at");
        o.remove("source");
    }
    v.sort_by_key(|r| r["customer_id"].as_str().unwrap_or("").to_owned());
    v
}

fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn account() -> Account {
    let now = real_now();
    Account::new()
        .customer(json!({"id": "cus_a", "email": "a@x.io", "metadata": {"clerkUserId": "user_a"}, "created": now - 1000}))
        .customer(json!({"id": "cus_b", "email": "b@x.io", "metadata": {"clerkUserId": "user_b"}, "created": now - 900}))
        .customer(json!({"id": "cus_c", "email": "c@x.io", "metadata": {"clerkUserId": "user_c"}, "created": now - 800}))
        .subscription(json!({"id": "sub_a", "customer": "cus_a", "status": "active", "created": now - 990, "price": "price_pro"}))
        .subscription(json!({"id": "sub_b", "customer": "cus_b", "status": "active", "created": now - 890, "price": "price_pro"}))
        .subscription(json!({"id": "sub_c", "customer": "cus_c", "status": "trialing", "created": now - 790, "price": "price_pro"}))
}

/// The changes behind the store's back: a cancellation, a new customer
/// with a user id and a subscription, a deleted customer.
fn change(fake: &FakeStripe) {
    fake.cancel_subscription("sub_a");
    fake.upsert_customer(
        json!({"id": "cus_new", "email": "n@x.io", "metadata": {"clerkUserId": "user_new"}}),
    );
    fake.upsert_subscription(
        json!({"id": "sub_new", "customer": "cus_new", "status": "active", "price": "price_pro"}),
    );
    fake.delete_customer("cus_c");
}

#[test]
fn events_bring_the_store_to_what_a_fresh_backfill_says_within_the_bound() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    let out = resync(dir.path(), &fake, &["--all", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    change(&fake);
    // Filtered server-side to the 18 sync_events plus customer.created and
    // customer.updated (20, Stripe's limit): customer.deleted is not listed.
    let listed_events = fake
        .events()
        .iter()
        .filter(|e| e["type"] != "customer.deleted")
        .count() as u64;
    assert_eq!(listed_events, 4);

    fake.reset_counters();
    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("error:"), "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["events"]["listed"], listed_events, "{v}");
    assert_eq!(v["events"]["gap"], false);
    assert!(v["events"]["checkpoint"]["id"].is_string(), "{v}");
    // The bound: ceil(E/100) list requests, one subscription request per
    // affected customer, one customer request per customer the store does
    // not know, and one more for a customer left without a live
    // subscription (deleted, or only canceled?).
    let affected = 3; // cus_a (canceled), cus_new (new), cus_c (deleted)
    let unknown = 1; // cus_new
    let without_live = 2; // cus_a, cus_c
    let bound = listed_events.div_ceil(100) + affected + unknown + without_live;
    let used = v["summary"]["api_requests"].as_u64().unwrap();
    assert_eq!(used, fake.request_count() as u64);
    assert!(used <= bound, "{used} requests, bound {bound}");
    assert_eq!(fake.count_path("/v1/events"), 1);

    // The store now says what a fresh backfill says.
    let fresh = tempdir();
    let out = resync(fresh.path(), &fake, &["--all", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    // A deleted customer's stub names no user; the caught-up store keeps
    // whose it was (a fresh one cannot know). Everything else is equal.
    let forget = |mut v: Vec<Value>| {
        for r in &mut v {
            if r["deleted"] == true {
                r["user_id"] = Value::Null;
                r["email"] = Value::Null;
            }
        }
        v
    };
    assert_eq!(forget(rows(dir.path())), forget(rows(fresh.path())));
    let by_id = rows(dir.path());
    let row = |id: &str| {
        by_id
            .iter()
            .find(|r| r["customer_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("cus_a")["status"], "canceled");
    assert_eq!(row("cus_new")["user_id"], "user_new");
    assert_eq!(row("cus_new")["status"], "active");
    assert_eq!(row("cus_c")["status"], "deleted");

    // A second catch-up finds nothing new: 0 customers, 1 request.
    fake.reset_counters();
    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["summary"]["customers"], 0, "{v}");
    assert_eq!(v["summary"]["api_requests"], 1, "{v}");
    assert_eq!(fake.request_count(), 1);
}

#[test]
fn events_in_the_same_second_as_the_checkpoint_are_neither_lost_nor_repeated() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    // Every change from here on happens in one second.
    let second = real_now() + 2;
    fake.set_clock(Some(second));
    fake.cancel_subscription("sub_a");
    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["events"]["sync"], 1, "{v}");
    assert_eq!(v["events"]["checkpoint"]["created"], second);
    // Same second, a later event.
    fake.cancel_subscription("sub_b");
    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["events"]["listed"], 2, "both events of that second: {v}");
    assert_eq!(
        v["events"]["duplicate"], 1,
        "the first is not processed twice: {v}"
    );
    assert_eq!(v["events"]["sync"], 1, "the second is not lost: {v}");
    let r = rows(dir.path());
    assert_eq!(
        r.iter().find(|x| x["customer_id"] == "cus_b").unwrap()["status"],
        "canceled"
    );
}

#[test]
fn no_checkpoint_is_a_usage_error_and_since_starts_anyway() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    let out = resync(dir.path(), &fake, &["--events"]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("run `stripe-sync resync --all` first"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--since"), "{}", out.stderr);
    assert_eq!(fake.request_count(), 0, "refused before any request");

    let out = resync(dir.path(), &fake, &["--events", "--since", "yesterday"]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--since"), "{}", out.stderr);

    fake.cancel_subscription("sub_b");
    let out = resync(dir.path(), &fake, &["--events", "--since", "1h", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(json(&out.stdout)["events"]["sync"], 1);
}

#[test]
fn a_start_beyond_stripes_retention_is_a_gap() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    let out = resync(dir.path(), &fake, &["--events", "--since", "40d", "--json"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["events"]["gap"], true, "{v}");
    assert!(v["events"]["gap_span"].is_array());
    assert!(
        out.stderr.contains("events may be missing"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("resync --all"), "{}", out.stderr);
}

#[test]
fn events_replayed_from_files_are_duplicates_and_check_writes_nothing() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    fake.cancel_subscription("sub_b");
    // The same events, saved as a file and replayed first.
    let list = json!({"object": "list", "data": fake.events(), "has_more": false});
    std::fs::write(dir.path().join("events.json"), list.to_string()).unwrap();
    let out = run(cmd_in(dir.path()).args(["replay", "events.json", "--json"]));
    assert_eq!(out.status, 0, "{}", out.stderr);

    // --check: the drift since the checkpoint, nothing written.
    let db = dir.path().join("stripe-sync.db");
    let before = std::fs::read(&db).unwrap();
    let out = resync(dir.path(), &fake, &["--events", "--check", "--json"]);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "--check writes nothing"
    );
    let v = json(&out.stdout);
    assert_eq!(
        v["events"]["duplicate"], 1,
        "already replayed from the file: {v}"
    );
    assert_eq!(out.status, 0, "{}", out.stderr);

    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["events"]["duplicate"], 1, "{v}");
    assert_eq!(v["summary"]["customers"], 0, "{v}");
}

#[test]
fn check_reports_drift_since_the_checkpoint() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    fake.cancel_subscription("sub_b");
    let out = resync(dir.path(), &fake, &["--events", "--check", "--json"]);
    assert_eq!(out.status, 1, "drift: {}", out.stderr);
    let v = json(&out.stdout);
    let drifted: Vec<&Value> = v["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["changed"] == true)
        .collect();
    assert_eq!(drifted.len(), 1, "{v}");
    assert_eq!(drifted[0]["customer_id"], "cus_b");
    assert_eq!(drifted[0]["diff"]["status"]["stripe"], "canceled");
}

#[test]
fn follow_picks_up_a_change_and_stops_on_sigterm() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("stripe-sync"))
        .current_dir(dir.path())
        .env_clear()
        .env("STRIPE_API_KEY", fake.api_key())
        .env("STRIPE_SYNC_TEST_BACKOFF_MS", "0")
        .args([
            "resync",
            "--events",
            "--follow",
            "--interval",
            "1",
            "--json",
        ])
        .args(["--api-base", &fake.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it poll once, then change something.
    let t0 = Instant::now();
    while fake.count_path("/v1/events") < 1 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    fake.cancel_subscription("sub_c");
    let t0 = Instant::now();
    loop {
        let r = rows(dir.path());
        if r.iter()
            .any(|x| x["customer_id"] == "cus_c" && x["status"] == "canceled")
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the change was not picked up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // One JSON document per poll, one per line; the change is in one of them.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let docs: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(docs.len() >= 2, "{stdout}");
    assert!(docs.iter().any(|d| d["events"]["sync"] == 1), "{stdout}");
}
