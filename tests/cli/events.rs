//! `resync --events`: catching up from Stripe's event log, against the fake
//! Stripe's own event log (tests/support/fake_stripe.rs).
//!
//! Every test runs once per store backend from the same body
//! (`events::sqlite::NAME`, `events::postgres::NAME`; see `backends.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::{Value, json};

use crate::backends::{Backend, Site, assert_unchanged};
use crate::common::json;
use crate::harness::Test;
use crate::support::fake_stripe::{Account, FakeStripe, Fault};

crate::backends::on_both_backends!(
    events_bring_the_store_to_what_a_fresh_backfill_says_within_the_bound,
    events_in_the_same_second_as_the_checkpoint_are_neither_lost_nor_repeated,
    no_checkpoint_is_a_usage_error_and_since_starts_anyway,
    a_start_beyond_stripes_retention_is_a_gap,
    events_replayed_from_files_are_duplicates_and_check_writes_nothing,
    check_reports_drift_since_the_checkpoint,
    follow_picks_up_a_change_and_stops_on_sigterm,
    follow_waits_out_an_api_that_goes_away_and_picks_up_what_happened_meanwhile,
    follow_waits_for_an_api_unreachable_at_start_and_quiet_polls_print_nothing,
    follow_waits_out_5xx_saying_so_once_and_a_refused_key_stops_it,
    a_key_refused_at_start_stops_a_follower_at_once,
    sigterm_and_ctrl_c_end_a_follower_that_is_waiting,
    sigterm_ends_a_follower_whose_request_hangs,
    follow_from_since_without_a_checkpoint_starts_each_poll_where_the_last_ended,
    customer_events_are_always_asked_for_including_customer_deleted,
);

/// `stripe-sync resync ARGS` against the fake, the key in `STRIPE_API_KEY`
/// (also `order.rs`'s); the test states what it prints.
pub(crate) fn resync(dir: &Path, fake: &FakeStripe, args: &[&str]) -> Test {
    resync_with(Test::in_dir(dir), fake, args)
}

/// The same on the site's store.
fn resync_at(site: &Site, fake: &FakeStripe, args: &[&str]) -> Test {
    resync_with(site.sync(), fake, args)
}

fn resync_with(t: Test, fake: &FakeStripe, args: &[&str]) -> Test {
    t.env("STRIPE_API_KEY", fake.api_key())
        .args(["resync", "--max-rps", "100", "--api-base", &fake.url()])
        .args(args)
}

/// `resync --all` (the backfill that sets the checkpoint): status 0.
fn backfill(site: &Site, fake: &FakeStripe) {
    resync_at(site, fake, &["--all"])
        .stdout_has("cus_a")
        .stderr_has("3 customers: 3 changed (3 new), 0 failed; ")
        .run();
}

/// `inspect --json` as comparable rows (without the sync time and source).
fn rows(site: &Site) -> Vec<Value> {
    // A follower's store may have no customer yet: inspect then says so.
    let out = site
        .sync()
        .args(["inspect", "--json"])
        .stdout_json()
        .stderr_with("nothing, or that the store holds no customers yet", |s| {
            s.is_empty() || s.contains("holds no customers yet")
        })
        .run();
    let mut v: Vec<Value> = out.json().as_array().cloned().unwrap_or_default();
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

fn events_bring_the_store_to_what_a_fresh_backfill_says_within_the_bound(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    resync_at(&site, &fake, &["--all", "--json"])
        .stdout_json()
        .stderr_has(" failed; ")
        .run();
    change(&fake);
    // The 18 sync_events and the 3 customer events pass Stripe's limit of
    // 20 types: everything is listed (customer.deleted included), and
    // filtered here.
    let listed_events = fake.events().len() as u64;
    assert_eq!(listed_events, 5);

    fake.reset_counters();
    let out = resync_at(&site, &fake, &["--events", "--json"])
        .stdout_json()
        .run();
    assert!(!out.stderr.contains("error:"), "{}", out.stderr);
    let v = out.json();
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
    let listing = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/events")
        .unwrap();
    assert_eq!(listing.query_param("types[]"), None, "unfiltered");

    // The store now says what a fresh backfill says.
    let fresh = b.site();
    resync_at(&fresh, &fake, &["--all", "--json"])
        .stdout_json()
        .stderr_has(" failed; ")
        .run();
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
    assert_eq!(forget(rows(&site)), forget(rows(&fresh)));
    let by_id = rows(&site);
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
    let out = resync_at(&site, &fake, &["--events", "--json"])
        .stdout_json()
        .run();
    let v = out.json();
    assert_eq!(v["summary"]["customers"], 0, "{v}");
    assert_eq!(v["summary"]["api_requests"], 1, "{v}");
    assert_eq!(fake.request_count(), 1);
}

fn events_in_the_same_second_as_the_checkpoint_are_neither_lost_nor_repeated(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    backfill(&site, &fake);
    // Every change from here on happens in one second.
    let second = real_now() + 2;
    fake.set_clock(Some(second));
    fake.cancel_subscription("sub_a");
    let out = resync_at(&site, &fake, &["--events", "--json"])
        .stdout_json()
        .run();
    let v = out.json();
    assert_eq!(v["events"]["sync"], 1, "{v}");
    assert_eq!(v["events"]["checkpoint"]["created"], second);
    // Same second, a later event.
    fake.cancel_subscription("sub_b");
    let out = resync_at(&site, &fake, &["--events", "--json"])
        .stdout_json()
        .run();
    let v = out.json();
    assert_eq!(v["events"]["listed"], 2, "both events of that second: {v}");
    assert_eq!(
        v["events"]["duplicate"], 1,
        "the first is not processed twice: {v}"
    );
    assert_eq!(v["events"]["sync"], 1, "the second is not lost: {v}");
    let r = rows(&site);
    assert_eq!(
        r.iter().find(|x| x["customer_id"] == "cus_b").unwrap()["status"],
        "canceled"
    );
}

fn no_checkpoint_is_a_usage_error_and_since_starts_anyway(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    resync_at(&site, &fake, &["--events"])
        .status(2)
        .stderr_has("run `stripe-sync resync --all` first")
        .stderr_has("--since")
        .run();
    assert_eq!(fake.request_count(), 0, "refused before any request");

    resync_at(&site, &fake, &["--events", "--since", "yesterday"])
        .status(2)
        .stderr_has("--since")
        .run();

    fake.cancel_subscription("sub_b");
    let out = resync_at(&site, &fake, &["--events", "--since", "1h", "--json"])
        .stdout_json()
        .run();
    assert_eq!(out.json()["events"]["sync"], 1);
}

fn a_start_beyond_stripes_retention_is_a_gap(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    let out = resync_at(&site, &fake, &["--events", "--since", "40d", "--json"])
        .status(1)
        .stdout_json()
        .stderr_has("events may be missing")
        .stderr_has("resync --all")
        .run();
    let v = out.json();
    assert_eq!(v["events"]["gap"], true, "{v}");
    assert!(v["events"]["gap_span"].is_array());
}

fn events_replayed_from_files_are_duplicates_and_check_writes_nothing(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    backfill(&site, &fake);
    fake.cancel_subscription("sub_b");
    // The same events, saved as a file and replayed first.
    let list = json!({"object": "list", "data": fake.events(), "has_more": false});
    std::fs::write(site.path().join("events.json"), list.to_string()).unwrap();
    site.sync()
        .args(["replay", "events.json", "--json"])
        .stdout_json()
        .stderr_has("1 customer synced")
        .run();

    // --check: the drift since the checkpoint, nothing written.
    let before = site.store.snapshot();
    let out = resync_at(&site, &fake, &["--events", "--check", "--json"])
        .stdout_json()
        .run();
    assert_unchanged(&before, &site.store.snapshot(), "--check");
    let v = out.json();
    assert_eq!(
        v["events"]["duplicate"], 1,
        "already replayed from the file: {v}"
    );

    let out = resync_at(&site, &fake, &["--events", "--json"])
        .stdout_json()
        .run();
    let v = out.json();
    assert_eq!(v["events"]["duplicate"], 1, "{v}");
    assert_eq!(v["summary"]["customers"], 0, "{v}");
}

fn check_reports_drift_since_the_checkpoint(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    backfill(&site, &fake);
    fake.cancel_subscription("sub_b");
    // Drift: status 1.
    let out = resync_at(&site, &fake, &["--events", "--check", "--json"])
        .status(1)
        .stdout_json()
        .run();
    let v = out.json();
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

/// How long a test waits for a follower to do something.
const WAIT: Duration = Duration::from_secs(20);

fn follow_picks_up_a_change_and_stops_on_sigterm(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    backfill(&site, &fake);
    // One JSON document per poll that found something, one per line: the
    // change. Quiet polls (nothing listed, or only the checkpoint's own
    // second again) print nothing.
    let mut f = site
        .sync()
        .env("STRIPE_API_KEY", fake.api_key())
        .args([
            "resync",
            "--events",
            "--follow",
            "--interval",
            "1",
            "--json",
        ])
        .args(["--api-base", &fake.url()])
        .stdout_ndjson()
        .stderr(format!("{FOLLOWING}\n"))
        .spawn();
    // Let it poll once, then change something.
    f.wait_until("the first poll", WAIT, |_| {
        fake.count_path("/v1/events") >= 1
    });
    fake.cancel_subscription("sub_c");
    f.wait_until(
        "the change picked up: cus_c canceled in the store",
        WAIT,
        |_| status_of(&site, "cus_c").as_deref() == Some("canceled"),
    );
    f.signal(Signal::TERM);
    let out = f.finish();
    let docs = out.ndjson();
    assert!(fake.count_path("/v1/events") >= 2);
    assert_eq!(docs.len(), 1, "{}", out.stdout);
    assert_eq!(docs[0]["events"]["sync"], 1, "{}", out.stdout);
    assert_eq!(
        docs[0]["customers"][0]["customer_id"], "cus_c",
        "{}",
        out.stdout
    );
}

/// `resync --events --follow --interval 1 ARGS`, for the test to state what
/// it prints and start: one second of the follower's backoff lasts
/// `unit_ms` (see `STRIPE_SYNC_TEST_FOLLOW_UNIT_MS`); the client retries at
/// once.
fn follower(site: &Site, base: &str, key: &str, unit_ms: u32, args: &[&str]) -> Test {
    site.sync()
        .env("STRIPE_API_KEY", key)
        .env("STRIPE_SYNC_TEST_FOLLOW_UNIT_MS", unit_ms.to_string())
        .args(["resync", "--events", "--follow", "--interval", "1"])
        .args(["--max-rps", "100", "--api-base", base])
        .args(args)
}

const FOLLOWING: &str = "following Stripe's event log every 1 s (SIGTERM or Ctrl-C stops)";
const WAITING: &str = "warning: waiting for the Stripe API: ";
const BACK: &str = "the Stripe API answers again (after ";

/// stderr as lines, each with what it starts with checked, in order.
fn assert_lines(stderr: &str, starts: &[&str]) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), starts.len(), "{stderr}");
    for (line, start) in lines.iter().zip(starts) {
        assert!(
            line.starts_with(start),
            "{line:?} should start {start:?}:\n{stderr}"
        );
    }
}

fn status_of(site: &Site, customer: &str) -> Option<String> {
    rows(site)
        .iter()
        .find(|r| r["customer_id"] == customer)
        .and_then(|r| r["status"].as_str().map(str::to_owned))
}

fn follow_waits_out_an_api_that_goes_away_and_picks_up_what_happened_meanwhile(b: Backend) {
    let mut fake = FakeStripe::start(account());
    let site = b.site();
    backfill(&site, &fake);
    let base = fake.url();
    // One document: the poll that found the change; the polls before and
    // after it found nothing new and printed nothing.
    let mut f = follower(&site, &base, fake.api_key(), 20, &["--json"])
        .stdout_ndjson()
        .stderr_has(FOLLOWING)
        .stderr_has(WAITING)
        .stderr_has("connection refused")
        .stderr_has(base.as_str()) // names the API
        .stderr_has(BACK)
        .stderr_lacks(fake.api_key())
        .spawn();
    f.wait_until("the first poll", WAIT, |_| {
        fake.count_path("/v1/events") >= 1
    });

    // Connection refused: the old follower exited 2 here.
    fake.go_away();
    f.wait_for_stderr(WAITING, WAIT);
    // Several tries while away (20 ms doubling to 1.2 s), said once. The
    // outage's length is what is tested: a refused connection leaves no
    // trace outside the binary to wait for.
    std::thread::sleep(Duration::from_millis(700));
    fake.cancel_subscription("sub_c");
    fake.come_back();
    f.wait_for_stderr(BACK, WAIT);
    f.wait_until("cus_c canceled in the store", WAIT, |_| {
        status_of(&site, "cus_c").as_deref() == Some("canceled")
    });
    f.signal(Signal::TERM);
    let out = f.finish_within(Duration::from_secs(10));

    assert_lines(&out.stderr, &[FOLLOWING, WAITING, BACK]);
    let docs: Vec<Value> = out.stdout.lines().map(json).collect();
    assert_eq!(docs.len(), 1, "{}", out.stdout);
    assert_eq!(docs[0]["events"]["sync"], 1);
    assert_eq!(docs[0]["customers"][0]["customer_id"], "cus_c");
}

fn follow_waits_for_an_api_unreachable_at_start_and_quiet_polls_print_nothing(b: Backend) {
    let mut fake = FakeStripe::start(account());
    let site = b.site();
    backfill(&site, &fake);
    let base = fake.url();
    fake.go_away();
    // Without --follow an unreachable API is still status 2 at once.
    let out = site
        .sync()
        .env("STRIPE_API_KEY", fake.api_key())
        .args(["resync", "--events", "--api-base", &base])
        .status(2)
        .stderr_has(format!("error: cannot reach the Stripe API at {base}"))
        .stderr_has("connection refused")
        .run();
    assert!(
        out.stderr
            .starts_with(&format!("error: cannot reach the Stripe API at {base}")),
        "{}",
        out.stderr
    );

    // A follower waits, in human mode too; quiet polls print nothing.
    let mut f = follower(&site, &base, fake.api_key(), 20, &[])
        .stderr_has(FOLLOWING)
        .stderr_has(WAITING)
        .stderr_has("connection refused")
        .stderr_has(BACK)
        .spawn();
    f.wait_for_stderr(WAITING, WAIT);
    fake.come_back();
    f.wait_for_stderr(BACK, WAIT);
    fake.reset_counters();
    f.wait_until("two more polls", WAIT, |_| {
        fake.count_path("/v1/events") >= 2
    });
    f.signal(Signal::TERM);
    let out = f.finish_within(Duration::from_secs(10));
    assert_lines(&out.stderr, &[FOLLOWING, WAITING, BACK]);
}

fn follow_waits_out_5xx_saying_so_once_and_a_refused_key_stops_it(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    backfill(&site, &fake);
    fake.push_fault(Fault::status(500).on_path("/v1/events").forever());
    // Human output: the one poll that found something.
    let mut f = follower(&site, &fake.url(), fake.api_key(), 20, &[])
        .status(2)
        .stdout_has("1 event listed: 1 sync")
        .stdout_has("cus_a")
        .stderr_has(FOLLOWING)
        .stderr_has(WAITING)
        .stderr_has("Stripe answered HTTP 500")
        .stderr_has(BACK)
        .stderr_has("error: Stripe did not accept the API key (HTTP 401")
        .stderr_lacks(fake.api_key())
        .spawn();
    // Three polls, each the first try and 5 retries.
    f.wait_until("three failed polls", WAIT, |_| {
        fake.count_path("/v1/events") >= 18
    });
    fake.clear_faults();
    f.wait_for_stderr(BACK, WAIT);
    fake.cancel_subscription("sub_a");
    f.wait_until("cus_a canceled in the store", WAIT, |_| {
        status_of(&site, "cus_a").as_deref() == Some("canceled")
    });
    // The key is revoked: that is not waited out.
    fake.push_fault(Fault::status(401).forever());
    let out = f.finish_within(Duration::from_secs(20));
    assert_lines(
        &out.stderr,
        &[
            FOLLOWING,
            WAITING,
            BACK,
            "error: Stripe did not accept the API key (HTTP 401",
        ],
    );
    assert!(
        out.stdout.starts_with("1 event listed: 1 sync"),
        "{}",
        out.stdout
    );
}

fn a_key_refused_at_start_stops_a_follower_at_once(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    backfill(&site, &fake);
    // 403: a restricted key without the permission to list events.
    fake.push_fault(Fault::status(403).forever());
    let f = follower(&site, &fake.url(), fake.api_key(), 20, &[])
        .status(2)
        .stderr_has(FOLLOWING)
        .stderr_has("error: Stripe answered HTTP 403")
        .spawn();
    let out = f.finish_within(Duration::from_secs(10));
    assert_lines(&out.stderr, &[FOLLOWING, "error: Stripe answered HTTP 403"]);
    assert_eq!(fake.count_path("/v1/events"), 1, "not retried");
}

fn sigterm_and_ctrl_c_end_a_follower_that_is_waiting(b: Backend) {
    let mut fake = FakeStripe::start(account());
    let site = b.site();
    backfill(&site, &fake);
    let base = fake.url();
    fake.go_away();
    // Real seconds of backoff: the signal comes while it sleeps.
    for (signal, status) in [(Signal::TERM, 0), (Signal::INT, 130)] {
        let mut f = follower(&site, &base, fake.api_key(), 1000, &["--json"])
            .status(status)
            .stderr_has(FOLLOWING)
            .stderr_has(WAITING)
            .spawn();
        f.wait_for_stderr(WAITING, WAIT);
        let sent = Instant::now();
        f.signal(signal);
        let out = f.finish_within(Duration::from_secs(10));
        assert!(sent.elapsed() < Duration::from_secs(5), "{signal:?}");
        match status {
            0 => assert_lines(&out.stderr, &[FOLLOWING, WAITING]),
            _ => assert_lines(
                &out.stderr,
                &[
                    FOLLOWING,
                    WAITING,
                    "error: interrupted: the store is consistent",
                ],
            ),
        }
    }
}

fn sigterm_ends_a_follower_whose_request_hangs(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    backfill(&site, &fake);
    // Longer than the client's 30 s timeout, and retried: minutes in all.
    fake.push_fault(
        Fault::Timeout(Duration::from_secs(120))
            .on_path("/v1/events")
            .forever(),
    );
    let mut f = follower(&site, &fake.url(), fake.api_key(), 20, &[])
        .stderr(format!("{FOLLOWING}\n"))
        .spawn();
    // The fake records a request before it holds it: once counted, the
    // listing hangs.
    f.wait_until("the listing hangs", WAIT, |_| {
        fake.count_path("/v1/events") >= 1
    });
    let sent = Instant::now();
    f.signal(Signal::TERM);
    let out = f.finish_within(Duration::from_secs(10));
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert_lines(&out.stderr, &[FOLLOWING]);
}

fn follow_from_since_without_a_checkpoint_starts_each_poll_where_the_last_ended(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    let since = real_now() - 1;
    let since_arg = since.to_string();
    let mut f = follower(
        &site,
        &fake.url(),
        fake.api_key(),
        20,
        &["--since", &since_arg, "--json"],
    )
    .stdout_ndjson()
    .stderr(format!("{FOLLOWING}\n"))
    .spawn();
    // The old follower asked for a checkpoint at its second poll (exit 2).
    f.wait_until("three polls", WAIT, |_| fake.count_path("/v1/events") >= 3);
    fake.cancel_subscription("sub_b");
    f.wait_until("cus_b canceled in the store", WAIT, |_| {
        status_of(&site, "cus_b").as_deref() == Some("canceled")
    });
    let polls_then = fake.count_path("/v1/events");
    f.wait_until("a poll after the change", WAIT, |_| {
        fake.count_path("/v1/events") > polls_then
    });
    f.signal(Signal::TERM);
    let out = f.finish_within(Duration::from_secs(10));
    assert_lines(&out.stderr, &[FOLLOWING]);
    let docs: Vec<Value> = out.stdout.lines().map(json).collect();
    assert_eq!(docs.len(), 1, "{}", out.stdout);
    assert_eq!(docs[0]["events"]["sync"], 1);
    let created = fake.events()[0]["created"].as_i64().unwrap();
    assert_eq!(docs[0]["events"]["checkpoint"]["created"], created);

    // Every poll starts at --since until an event is processed, then at it.
    let starts: Vec<i64> = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/events")
        .map(|r| r.query_param("created[gte]").unwrap().parse().unwrap())
        .collect();
    let first_at_event = starts.iter().position(|&s| s == created).unwrap();
    assert!(first_at_event >= 3, "{starts:?}");
    assert!(
        starts[..first_at_event].iter().all(|&s| s == since),
        "{starts:?}"
    );
    assert!(
        starts[first_at_event..].iter().all(|&s| s == created),
        "{starts:?}"
    );
}

fn customer_events_are_always_asked_for_including_customer_deleted(b: Backend) {
    let fake = FakeStripe::start(account());
    let site = b.site();
    // Few enough types for Stripe's filter: the customer events are added.
    std::fs::write(
        site.path().join("stripe-sync.toml"),
        "sync_events = [\"customer.subscription.deleted\", \"invoice.paid\"]\n",
    )
    .unwrap();
    backfill(&site, &fake);
    fake.delete_customer("cus_c");
    fake.reset_counters();
    let out = resync_at(&site, &fake, &["--events", "--json"])
        .stdout_json()
        .run();
    assert_eq!(out.stderr, "");
    let listing = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/events")
        .unwrap();
    let types: Vec<String> = listing
        .query_params()
        .into_iter()
        .filter(|(k, _)| k == "types[]")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        types,
        [
            "customer.subscription.deleted",
            "invoice.paid",
            "customer.created",
            "customer.updated",
            "customer.deleted"
        ]
    );
    // The deletion: the subscription's end and the customer's, both listed.
    let v = out.json();
    assert_eq!(v["events"]["listed"], 2, "{v}");
}
