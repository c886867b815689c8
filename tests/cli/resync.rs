//! resync and replay --live against the fake Stripe in tests/support.
//!
//! The tests of what resync writes to the store or reads back from it run
//! twice from the same body, once per store backend
//! (`resync::sqlite::NAME`, `resync::postgres::NAME`; see `backends.rs`);
//! those of the HTTP client (retries, pacing, credentials, refusals) do
//! not depend on the store and run on SQLite only.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use rustix::process::Signal;

use crate::backends::{Backend, Site, assert_unchanged};
use crate::common::tempdir;
use crate::harness::Test;
use crate::support::fake_stripe::{Account, FakeStripe, Fault, FaultRule};

crate::backends::on_both_backends!(
    customer_with_unknown_then_known_store,
    user_via_store_search_and_scan,
    pre_basil_api_version_reads_periods_from_the_subscription,
    backfill_pages_everything_in_few_requests,
    check_reports_exactly_the_drift_and_writes_nothing,
    interrupted_backfill_resumes_with_fewer_requests,
    replay_live_resolves_and_syncs_through_the_api,
    a_backfill_that_fetched_nothing_is_not_resumed_in_words,
);

/// `resync --api-base FAKE ARGS` in `dir`, the fake's key in the
/// environment: a run that ends with its summary on stderr
/// (`N customers: N changed (N new), N failed; N API requests, ...`).
fn resync(dir: &Path, fake: &FakeStripe, args: &[&str]) -> Test {
    refused(dir, fake, args).stderr_has(" failed; ")
}

/// The same run, refused before any summary.
fn refused(dir: &Path, fake: &FakeStripe, args: &[&str]) -> Test {
    against(Test::in_dir(dir), fake, args)
}

/// [`resync`] in the site's dir, on its store.
fn resync_on(site: &Site, fake: &FakeStripe, args: &[&str]) -> Test {
    refused_on(site, fake, args).stderr_has(" failed; ")
}

/// [`refused`] in the site's dir, on its store.
fn refused_on(site: &Site, fake: &FakeStripe, args: &[&str]) -> Test {
    against(site.sync(), fake, args)
}

/// `resync --api-base FAKE ARGS` on top of `t`, the fake's key in the
/// environment.
fn against(t: Test, fake: &FakeStripe, args: &[&str]) -> Test {
    t.env("STRIPE_API_KEY", fake.api_key())
        .args(["resync", "--api-base", &fake.url()])
        .args(args)
}

/// Stderr holds nothing but warnings (of duplicate customers).
fn only_warnings(stderr: &str) -> bool {
    stderr.lines().all(|l| l.starts_with("warning: "))
}

/// `inspect --json ARGS` on top of `t`.
fn inspect_json_with(t: Test, args: &[&str]) -> Value {
    t.args(["inspect", "--json"])
        .args(args)
        .stdout_json()
        .stderr_with("only warnings", only_warnings)
        .run()
        .json()
}

/// `inspect --json ARGS` in the site's dir, on its store.
fn inspect_json_on(site: &Site, args: &[&str]) -> Value {
    inspect_json_with(site.sync(), args)
}

/// `inspect --json`'s rows by customer id.
fn by_customer(v: Value) -> HashMap<String, Value> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["customer_id"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// The store's rows by customer id.
fn rows(dir: &Path) -> HashMap<String, Value> {
    by_customer(inspect_json_with(Test::in_dir(dir), &[]))
}

/// The same, on the site's store.
fn rows_on(site: &Site) -> HashMap<String, Value> {
    by_customer(inspect_json_on(site, &[]))
}

/// What the mapping must say, computed from the fake's own objects.
fn truth(fake: &FakeStripe) -> HashMap<String, (Option<String>, String)> {
    let mut newest: HashMap<String, (i64, String, String)> = HashMap::new();
    for s in fake.subscriptions() {
        let c = s["customer"].as_str().unwrap().to_owned();
        let key = (
            s["created"].as_i64().unwrap(),
            s["id"].as_str().unwrap().to_owned(),
        );
        let e = newest
            .entry(c)
            .or_insert((i64::MIN, String::new(), String::new()));
        if (key.0, key.1.clone()) > (e.0, e.1.clone()) {
            *e = (key.0, key.1, s["status"].as_str().unwrap().to_owned());
        }
    }
    fake.customers()
        .into_iter()
        .filter(|c| c["deleted"] != true)
        .map(|c| {
            let id = c["id"].as_str().unwrap().to_owned();
            let user = c["metadata"]["clerkUserId"].as_str().map(str::to_owned);
            let status = newest
                .get(&id)
                .map(|e| e.2.clone())
                .unwrap_or_else(|| "none".into());
            (id, (user, status))
        })
        .collect()
}

fn assert_matches_truth(dir: &Path, fake: &FakeStripe) {
    rows_match_truth(rows(dir), fake);
}

fn assert_matches_truth_on(site: &Site, fake: &FakeStripe) {
    rows_match_truth(rows_on(site), fake);
}

fn rows_match_truth(got: HashMap<String, Value>, fake: &FakeStripe) {
    let want = truth(fake);
    assert_eq!(got.len(), want.len(), "customer count");
    for (id, (user, status)) in want {
        let row = &got[&id];
        assert_eq!(row["user_id"].as_str().map(str::to_owned), user, "{id}");
        assert_eq!(row["status"], status, "{id}");
        assert_eq!(row["source"], "api");
    }
}

fn small_account() -> Account {
    Account::new()
        .customer(json!({"id": "cus_a", "email": "a@x.io", "metadata": {"clerkUserId": "user_a"}, "created": 1_700_000_000}))
        .customer(json!({"id": "cus_b", "email": "b@x.io", "metadata": {"clerkUserId": "user_b"}, "created": 1_700_000_100}))
        .customer(json!({"id": "cus_b2", "email": "b@x.io", "metadata": {"clerkUserId": "user_b"}, "created": 1_700_000_200}))
        .customer(json!({"id": "cus_none", "metadata": {}, "created": 1_700_000_300}))
        .payment_method(json!({"id": "pm_a", "customer": "cus_a", "card": {"brand": "visa", "last4": "4242"}}))
        .subscription(json!({"id": "sub_a_old", "customer": "cus_a", "status": "canceled", "created": 1_700_000_010, "price": "price_basic"}))
        .subscription(json!({"id": "sub_a", "customer": "cus_a", "status": "active", "created": 1_700_000_020, "price": "price_pro",
            "current_period_start": 1_700_000_020, "current_period_end": 1_702_592_020, "default_payment_method": "pm_a"}))
        .subscription(json!({"id": "sub_b", "customer": "cus_b", "status": "past_due", "created": 1_700_000_110, "price": "price_pro"}))
}

fn customer_with_unknown_then_known_store(b: Backend) {
    let fake = FakeStripe::start(small_account());
    let site = b.site();
    let v = resync_on(&site, &fake, &["--customer", "cus_a", "--json"])
        .stdout_json()
        .run()
        .json();
    assert_eq!(v["customers"][0]["customer_id"], "cus_a");
    assert_eq!(v["customers"][0]["user_id"], "user_a");
    assert_eq!(v["customers"][0]["status"], "active");
    assert_eq!(v["customers"][0]["changed"], true);
    assert_eq!(
        v["summary"]["api_requests"], 1,
        "the latest subscription, with its customer expanded inline"
    );
    let keys = crate::common::keys(&v["summary"]);
    assert_eq!(
        keys,
        [
            "customers",
            "changed",
            "failed",
            "api_requests",
            "retries",
            "elapsed_ms"
        ]
    );
    let sub_req = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/subscriptions")
        .unwrap();
    let q = sub_req.query_params();
    for (k, val) in [
        ("customer", "cus_a"),
        ("status", "all"),
        ("limit", "1"),
        ("expand[]", "data.default_payment_method"),
        ("expand[]", "data.customer"),
    ] {
        assert!(q.contains(&(k.to_owned(), val.to_owned())), "{k} in {q:?}");
    }
    assert_eq!(sub_req.stripe_version.as_deref(), Some("2025-06-30.basil"));
    let row = &rows_on(&site)["cus_a"];
    assert_eq!(
        row["payment_method"],
        json!({"brand": "visa", "last4": "4242"})
    );
    assert_eq!(row["current_period_end"], 1_702_592_020);
    assert_eq!(row["subscription_id"], "sub_a");

    fake.reset_counters();
    let out = resync_on(&site, &fake, &["--customer", "cus_a", "--json"])
        .stdout_json()
        .run();
    let v = out.json();
    assert_eq!(
        v["summary"]["api_requests"], 1,
        "store knows the customer: one request"
    );
    assert_eq!(v["customers"][0]["changed"], false);
    assert!(!out.stdout.contains(fake.api_key()) && !out.stderr.contains(fake.api_key()));
}

fn user_via_store_search_and_scan(b: Backend) {
    let fake = FakeStripe::start(small_account());
    let site = b.site();
    let v = resync_on(&site, &fake, &["--user", "user_a", "--json"])
        .stdout_json()
        .run()
        .json();
    assert_eq!(v["summary"]["api_requests"], 2, "search + subscriptions");
    fake.reset_counters();
    let v = resync_on(&site, &fake, &["--user", "user_a", "--json"])
        .stdout_json()
        .run()
        .json();
    assert_eq!(
        v["summary"]["api_requests"], 1,
        "known mapping: one request"
    );

    // Duplicate customers: both synced, with a warning.
    let v = resync_on(&site, &fake, &["--user", "user_b", "--json"])
        .stdout_json()
        .stderr_has("user user_b has 2 customers (cus_b, cus_b2)")
        .run()
        .json();
    assert_eq!(v["customers"].as_array().unwrap().len(), 2);
    assert_eq!(rows_on(&site)["cus_b2"]["status"], "none");

    // Search unavailable: a paged scan, with a warning.
    fake.set_search_enabled(false);
    let other = b.site();
    resync_on(&other, &fake, &["--user", "user_a", "--json"])
        .stdout_json()
        .stderr_has("scanning all customers")
        .run();
    assert_eq!(rows_on(&other)["cus_a"]["status"], "active");

    // Nobody: status 1 and a clear message.
    fake.set_search_enabled(true);
    let v = resync_on(&site, &fake, &["--user", "user_nobody", "--json"])
        .status(1)
        .stdout_json()
        .stderr_has("no customer for user user_nobody")
        .run()
        .json();
    assert!(
        v["customers"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no customer for user user_nobody")
    );
}

#[test]
fn credentials_and_base_url_errors_are_status_2() {
    let fake = FakeStripe::start(small_account());
    let dir = tempdir();
    let wrong = "sk_test_wrongkey_987654";
    let out = Test::in_dir(dir.path())
        .args([
            "resync",
            "--customer",
            "cus_a",
            "--api-base",
            &fake.url(),
            "--api-key",
            wrong,
        ])
        .status(2)
        .stderr_has("401")
        .run();
    assert!(
        !out.stderr.contains("wrongkey_987654") && !out.stdout.contains("wrongkey_987654"),
        "{}",
        out.stderr
    );
    assert_eq!(fake.count_path("/v1/"), 1, "401 is not retried");

    let before = fake.request_count();
    Test::in_dir(dir.path())
        .env("STRIPE_API_KEY", fake.api_key())
        .args([
            "resync",
            "--customer",
            "cus_a",
            "--api-base",
            "http://example.com",
        ])
        .status(2)
        .stderr_has("example.com")
        .run();
    assert_eq!(
        fake.request_count(),
        before,
        "no request before the usage error"
    );

    Test::in_dir(dir.path())
        .args(["resync", "--customer", "cus_a", "--api-base", &fake.url()])
        .status(2)
        .stderr_has("no Stripe API key")
        .run();
    refused(dir.path(), &fake, &[])
        .status(2)
        .stderr_has("nothing to resync")
        .run();

    // STRIPE_SECRET_KEY is the fallback, and --api-key-file works.
    Test::in_dir(dir.path())
        .env("STRIPE_SECRET_KEY", fake.api_key())
        .args(["resync", "--customer", "cus_a", "--api-base", &fake.url()])
        .stdout_has("cus_a")
        .stderr_has("1 customer: ")
        .run();
    std::fs::write(dir.path().join("key"), format!("{}\n", fake.api_key())).unwrap();
    Test::in_dir(dir.path())
        .args([
            "resync",
            "--customer",
            "cus_a",
            "--api-base",
            &fake.url(),
            "--api-key-file",
            "key",
        ])
        .stdout_has("cus_a")
        .stderr_has("1 customer: ")
        .run();
    let store = std::fs::read(dir.path().join("stripe-sync.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&store).contains(fake.api_key()),
        "key in the store"
    );
}

#[test]
fn faults_are_retried_and_counted() {
    let fake = FakeStripe::start(small_account());
    let dir = tempdir();
    fake.push_fault(
        FaultRule::new(Fault::Status {
            code: 429,
            should_retry: Some(true),
            retry_after: None,
        })
        .times(2),
    );
    fake.push_fault(Fault::TruncatedBody);
    fake.push_fault(Fault::Html);
    let v = resync(dir.path(), &fake, &["--customer", "cus_a", "--json"])
        .stdout_json()
        .run()
        .json();
    assert_eq!(v["summary"]["retries"], 4);
    // One request (the subscription with its customer inline) and 4 retries.
    assert_eq!(v["summary"]["api_requests"], 5);
    assert_eq!(rows(dir.path())["cus_a"]["status"], "active");

    // A 400 on one customer fails that customer only; Stripe-Should-Retry: false is obeyed.
    fake.push_fault(
        FaultRule::new(Fault::Status {
            code: 400,
            should_retry: None,
            retry_after: None,
        })
        // cus_b's read (its subscription, the customer inline).
        .on_path("/v1/subscriptions"),
    );
    fake.push_fault(
        FaultRule::new(Fault::Status {
            code: 503,
            should_retry: Some(false),
            retry_after: None,
        })
        // cus_b2's, next.
        .on_path("/v1/subscriptions"),
    );
    let out = resync(
        dir.path(),
        &fake,
        &[
            "--customer",
            "cus_b",
            "--customer",
            "cus_b2",
            "--customer",
            "cus_none",
            "--json",
        ],
    )
    .status(1)
    .stdout_json()
    .stderr_has("customer cus_b:")
    .run();
    let v = out.json();
    assert_eq!(v["summary"]["failed"], 2);
    assert_eq!(v["summary"]["retries"], 0);
    let errs: Vec<&str> = v["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["error"].as_str())
        .collect();
    assert!(
        errs.iter().all(|e| e.contains("req_")),
        "request ids named: {errs:?}"
    );
    assert!(out.stderr.contains("customer cus_b:"), "{}", out.stderr);
    assert_eq!(rows(dir.path())["cus_none"]["status"], "none");
}

fn pre_basil_api_version_reads_periods_from_the_subscription(b: Backend) {
    let fake = FakeStripe::start(small_account());
    let site = b.site();
    resync_on(
        &site,
        &fake,
        &["--customer", "cus_a", "--api-version", "2024-06-20"],
    )
    .stdout_has("cus_a")
    .run();
    assert_eq!(
        fake.requests()[0].stripe_version.as_deref(),
        Some("2024-06-20")
    );
    assert_eq!(rows_on(&site)["cus_a"]["current_period_end"], 1_702_592_020);
}

fn backfill_pages_everything_in_few_requests(b: Backend) {
    let fake = FakeStripe::start(Account::generate(250, 320, 11));
    let site = b.site();
    let v = resync_on(&site, &fake, &["--all", "--json"])
        .stdout_json()
        .run()
        .json();
    // ceil(250/100) + ceil(320/100)
    assert_eq!(v["summary"]["api_requests"], 3 + 4);
    assert_eq!(v["summary"]["customers"], 250);
    assert_matches_truth_on(&site, &fake);
    let subs_req = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/subscriptions")
        .unwrap();
    assert_eq!(subs_req.query_param("limit").as_deref(), Some("100"));
    assert_eq!(subs_req.query_param("status").as_deref(), Some("all"));

    // A customer deleted in Stripe is marked deleted after a complete pass.
    let gone = fake.customers()[5]["id"].as_str().unwrap().to_owned();
    fake.delete_customer(&gone);
    fake.purge(&gone);
    resync_on(&site, &fake, &["--all", "--json"])
        .stdout_json()
        .run();
    assert_eq!(
        inspect_json_on(&site, &["--customer", &gone])[0]["deleted"],
        true
    );
}

fn check_reports_exactly_the_drift_and_writes_nothing(b: Backend) {
    let fake = FakeStripe::start(Account::generate(60, 70, 5));
    let site = b.site();
    resync_on(&site, &fake, &["--all"])
        .stdout_has("60 customers")
        .run();
    // No drift yet: status 0.
    resync_on(&site, &fake, &["--all", "--check", "--json"])
        .stdout_json()
        .run();

    let subs = fake.subscriptions();
    let target = subs.iter().find(|s| s["status"] == "active").unwrap();
    let customer = target["customer"].as_str().unwrap().to_owned();
    // Only if it is that customer's newest subscription does the mapping change.
    let newest = subs
        .iter()
        .filter(|s| s["customer"] == customer.as_str())
        .max_by_key(|s| (s["created"].as_i64(), s["id"].as_str().map(str::to_owned)))
        .unwrap()
        .clone();
    fake.upsert_subscription(
        json!({"id": newest["id"], "status": "past_due", "cancel_at_period_end": true}),
    );
    let before = site.store.snapshot();
    let v = resync_on(&site, &fake, &["--all", "--check", "--json"])
        .status(1)
        .stdout_json()
        .run()
        .json();
    let drifted: Vec<&Value> = v["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["changed"] == true)
        .collect();
    assert_eq!(drifted.len(), 1, "{drifted:?}");
    assert_eq!(drifted[0]["customer_id"], customer.as_str());
    assert_eq!(drifted[0]["diff"]["status"]["store"], newest["status"]);
    assert_eq!(drifted[0]["diff"]["status"]["stripe"], "past_due");
    assert_eq!(drifted[0]["diff"]["cancel_at_period_end"]["stripe"], true);
    assert_unchanged(&before, &site.store.snapshot(), "--check");

    resync_on(&site, &fake, &["--customer", &customer, "--check"])
        .status(1)
        .stdout_has("status")
        .run();
}

#[test]
fn pacing_never_exceeds_max_rps() {
    let fake = FakeStripe::start(Account::generate(40, 40, 3));
    let dir = tempdir();
    let mut args = vec!["--max-rps".to_owned(), "8".to_owned(), "--json".to_owned()];
    for c in fake.customers().iter().take(20) {
        args.push("--customer".into());
        args.push(c["id"].as_str().unwrap().to_owned());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    resync(dir.path(), &fake, &refs).stdout_json().run();
    // One request a customer (its subscription, the customer inline), two
    // for one without a subscription (the customer read on its own).
    let expected: usize = fake
        .customers()
        .iter()
        .take(20)
        .map(|c| {
            let id = c["id"].as_str().unwrap();
            match fake.subscriptions().iter().any(|s| s["customer"] == id) {
                true => 1,
                false => 2,
            }
        })
        .sum();
    assert_eq!(fake.request_count(), expected);
    let peak = fake.max_requests_in_window(Duration::from_secs(1));
    assert!(
        peak <= 8,
        "peak {peak} requests in one second with --max-rps 8"
    );
}

#[test]
fn rate_limited_backfill_retries_without_losing_data() {
    let fake = FakeStripe::builder()
        .account(Account::generate(120, 150, 9))
        .rate_limit(3)
        .start();
    let dir = tempdir();
    // The client's real backoff: the fake's 429s need it.
    let v = resync(dir.path(), &fake, &["--all", "--json", "--max-rps", "50"])
        .env_remove("STRIPE_SYNC_TEST_BACKOFF_MS")
        .stdout_json()
        .run()
        .json();
    assert!(
        v["summary"]["retries"].as_u64().unwrap() >= 1,
        "the fake's 429s were retried"
    );
    assert_matches_truth(dir.path(), &fake);
}

fn interrupted_backfill_resumes_with_fewer_requests(b: Backend) {
    // 1,500 customers and subscriptions: 15 + 15 list pages.
    let fake = FakeStripe::builder()
        .account(Account::generate(1500, 1500, 21))
        .latency(Duration::from_millis(60))
        .start();
    let site = b.site();
    let mut child = refused_on(&site, &fake, &["--all", "--max-rps", "100"]).spawn();
    // Let a few pages land and a checkpoint be committed (when depends on
    // the store's speed, not on the requests: PostgreSQL's round trips make
    // its first commit later on a busy machine), then kill -9.
    let committed = "SELECT count(*) FROM sync_state WHERE key LIKE 'backfill.%cursor'";
    child.wait_until(
        "6 requests at the fake and a checkpoint committed",
        Duration::from_secs(30),
        |_| fake.request_count() >= 6 && site.store.value(committed, "").is_some_and(|n| n != "0"),
    );
    let killed = child.kill();
    assert_eq!(killed.status, -1, "killed by a signal");
    let first = fake.request_count();
    assert!(first < 30, "killed mid-run ({first} requests)");
    fake.reset_counters();
    resync_on(&site, &fake, &["--all", "--json", "--max-rps", "100"])
        .stdout_json()
        .stderr_has("resuming")
        .run();
    let resumed = fake.request_count();
    assert!(
        resumed < 30,
        "resume fetched {resumed} pages, a restart needs 30"
    );
    assert_matches_truth_on(&site, &fake);
    // The same store as an uninterrupted run: no drift, status 0.
    resync_on(&site, &fake, &["--all", "--check"])
        .stdout_has("1,500 customers")
        .run();
}

fn replay_live_resolves_and_syncs_through_the_api(b: Backend) {
    let fake = FakeStripe::start(small_account());
    let site = b.site();
    let d = site.path();
    let ev = json!({"id": "evt_live", "object": "event", "type": "invoice.paid", "created": 1_700_000_500,
        "data": {"object": {"id": "in_1", "object": "invoice", "customer": "cus_a", "metadata": {}}}});
    std::fs::write(d.join("e.json"), ev.to_string()).unwrap();
    let v = site
        .sync()
        .env("STRIPE_API_KEY", fake.api_key())
        .args([
            "replay",
            "--live",
            "--json",
            "--api-base",
            &fake.url(),
            "e.json",
        ])
        .stdout_json()
        .stderr_has("1 event: 1 sync")
        .run()
        .json();
    assert_eq!(v["events"][0]["route"], "sync");
    assert_eq!(v["events"][0]["resolved_via"], "api");
    assert_eq!(v["events"][0]["user_id"], "user_a");
    assert_eq!(
        v["summary"]["api_requests"], 2,
        "the customer once, then its subscription"
    );
    let row = &rows_on(&site)["cus_a"];
    assert_eq!(row["source"], "api");
    assert_eq!(row["status"], "active");
}

#[test]
fn live_key_backfill_needs_yes_without_a_terminal() {
    let fake = FakeStripe::start(Account::generate(5, 5, 1).with_api_key("sk_live_confirm_me_1"));
    let dir = tempdir();
    refused(dir.path(), &fake, &["--all"])
        .status(2)
        .stderr_has("--yes")
        .run();
    assert_eq!(fake.request_count(), 0, "refused before any request");
    let out = resync(dir.path(), &fake, &["--all", "--yes", "--json"])
        .stdout_json()
        .run();
    assert_eq!(out.json()["summary"]["customers"], 5);
    assert!(!out.stderr.contains("confirm_me"));
}

#[test]
fn unreachable_api_stops_the_run_with_status_2() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempdir();
    let out = Test::in_dir(dir.path())
        .env("STRIPE_API_KEY", "sk_test_unreachable_1")
        .args([
            "resync",
            "--customer",
            "cus_1",
            "--customer",
            "cus_2",
            "--max-retries",
            "1",
            "--json",
            "--api-base",
            &format!("http://{closed}"),
        ])
        .status(2)
        .stdout("")
        .stderr_has("cannot reach")
        .run();
    assert_eq!(
        out.stderr.matches("error:").count(),
        1,
        "said once: {}",
        out.stderr
    );
    assert!(out.stderr.contains("cannot reach"), "{}", out.stderr);
    assert!(!out.stderr.contains("sk_test_unreachable_1"));
}

#[test]
fn contradictory_mode_flags_are_usage_errors_naming_both() {
    let dir = tempdir();
    // Each was accepted before, the second flag silently ignored (clap
    // counts a requirement as met when it conflicts with a flag given):
    // `--all --follow` ran a plain backfill.
    let cases: &[(&[&str], &str)] = &[
        (
            &["--all", "--follow"],
            "'--all' cannot be used with '--follow'",
        ),
        (
            &["--follow", "--all"],
            "'--follow' cannot be used with '--all'",
        ),
        (
            &["--all", "--since", "1h"],
            "'--all' cannot be used with '--since <WHEN>'",
        ),
        (
            &["--all", "--interval", "3"],
            "'--all' cannot be used with '--interval <SECONDS>'",
        ),
        (
            &["--customer", "cus_1", "--restart"],
            "'--customer <ID>' cannot be used with '--restart'",
        ),
        (
            &["--user", "user_1", "--restart"],
            "'--user <ID>' cannot be used with '--restart'",
        ),
        (
            &["--events", "--restart"],
            "'--events' cannot be used with '--restart'",
        ),
        (
            &["--customer", "cus_1", "--since", "1h"],
            "'--customer <ID>' cannot be used with '--since <WHEN>'",
        ),
        (
            &["--user", "user_1", "--follow"],
            "'--user <ID>' cannot be used with '--follow'",
        ),
        // Already refused, and stays so.
        (
            &["--all", "--events"],
            "'--all' cannot be used with '--events'",
        ),
    ];
    for (args, conflict) in cases {
        // A key and a base that would work, so only the flags can fail.
        let out = Test::in_dir(dir.path())
            .env("STRIPE_API_KEY", "sk_test_unused")
            .args(["resync", "--api-base", "http://127.0.0.1:9"])
            .args(*args)
            .status(2)
            .stdout("")
            .stderr_has("Usage: stripe-sync resync")
            .run();
        let first = out.stderr.lines().next().unwrap_or("");
        assert_eq!(first, format!("error: the argument {conflict}"), "{args:?}");
        assert!(out.stderr.contains("Usage: stripe-sync resync"), "{args:?}");
        assert!(!out.stderr.contains("sk_test_unused"), "{args:?}");
    }
    assert!(
        !dir.path().join("stripe-sync.db").exists(),
        "refused before the store is opened"
    );
    // What each flag belongs with still works together (it fails later, on
    // the unreachable base, not on the flags).
    let unreachable = |args: &[&str]| {
        Test::in_dir(dir.path())
            .env("STRIPE_API_KEY", "sk_test_unused")
            .args(["resync", "--api-base", "http://127.0.0.1:9"])
            .args(args)
            .stderr_lacks("cannot be used with")
    };
    unreachable(&["--all", "--restart"])
        .status(2)
        .stderr_has("cannot reach the Stripe API at http://127.0.0.1:9")
        .run();
    // Following waits for the API to come back; SIGTERM stops it (status 0).
    let mut follow = unreachable(&["--events", "--since", "1h", "--follow", "--interval", "2"])
        .stderr_has("following Stripe's event log every 2 s")
        .stderr_has("warning: waiting for the Stripe API: cannot reach")
        .spawn();
    follow.wait_for_stderr("waiting for the Stripe API", Duration::from_secs(20));
    follow.signal(Signal::TERM);
    follow.finish();
}

/// A first backfill that fetched nothing (a dead API) left only its start:
/// the next run is no resumption, and does not say it is one.
fn a_backfill_that_fetched_nothing_is_not_resumed_in_words(b: Backend) {
    let fake = FakeStripe::start(small_account());
    let site = b.site();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    site.sync()
        .env("STRIPE_API_KEY", fake.api_key())
        .args([
            "resync",
            "--all",
            "--max-retries",
            "0",
            "--api-base",
            &format!("http://{dead}"),
        ])
        .status(2)
        .stderr_has("cannot reach")
        .run();
    resync_on(&site, &fake, &["--all"])
        .stdout_has("customers")
        .stderr_lacks("resuming")
        .run();
    assert_matches_truth_on(&site, &fake);
}
