//! The contract of the one sync engine, through the binary: every path
//! (`resync --all/--customer/--user`, `replay --live`, `--check`) gives the
//! same answer for the same account, dry runs and checks write nothing, and
//! the failure classes end with the documented status.
//!
//! Every command runs through the CLI tests' builder (`harness.rs`): in a
//! temp dir with no ambient `STRIPE_*` variables and with
//! `STRIPE_SYNC_TEST_BACKOFF_MS=0` (the client then skips real backoff
//! sleeps), each run stating its status, stdout and stderr; API commands
//! talk to the fake Stripe in `tests/support/`.
//!
//! Every test runs twice from the same body, once per store backend
//! (`truth::sqlite::NAME`, `truth::postgres::NAME`; see `backends.rs`): an SQLite file, or a
//! fresh database of the test PostgreSQL server (`tests/support/pg.rs`)
//! named by `--db postgres://...`, whose password no run may print.
//! "Writes nothing" is checked on the file's bytes, or on every row of the
//! schema `stripe_sync` with the transaction that wrote it (`xmin`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backends::{Backend, Site, Store, assert_unchanged, sync};
use crate::common::tempdir;
use crate::harness::{Output, Test, show};
use crate::support::fake_stripe::{Account, FakeStripe};

// ---------------------------------------------------------------------------
// The backends: every contract test runs once on each
// ---------------------------------------------------------------------------

crate::backends::on_both_backends!(
    tie_on_created_every_path_takes_the_apis_first_subscription,
    generated_account_backfill_checks_and_user_resyncs_agree,
    customer_deleted_in_stripe_is_drift_then_marked_deleted,
    dry_runs_write_nothing_and_say_so,
    unreachable_api_stops_the_run_with_status_2,
    refused_key_stops_the_run_with_status_2,
    missing_customer_fails_only_that_customer,
    read_only_store_can_be_inspected_and_checked,
    second_replay_of_the_same_inputs_writes_nothing,
    concurrent_replays_on_one_store_both_succeed,
    thin_event_is_ignored_with_a_reason,
);

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// Lines on stderr that report a problem.
fn problem_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.starts_with("error")
                || l.starts_with("warning")
                || l.contains("panicked")
                || l.contains("RUST_BACKTRACE")
        })
        .collect()
}

/// No line on stderr reports a problem (a summary or a note may be there).
fn no_problems(stderr: &str) -> bool {
    problem_lines(stderr).is_empty()
}

/// Lines on stderr that report a problem.
fn problems(out: &Output) -> Vec<&str> {
    problem_lines(&out.stderr)
}

/// The one `error:` line of a run that could not do its job.
fn single_error(out: &Output) -> String {
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {}", show(out));
    assert!(!out.stderr.contains("panicked"), "{}", show(out));
    errors[0].to_owned()
}

/// `resync ARGS --json` against the fake: one JSON document on stdout, the
/// summary (`N customers: ..., F failed; ...`) on stderr (the test states
/// the status and what else stderr holds).
fn resync(site: &Site, fake: &FakeStripe, args: &[&str]) -> Test {
    sync(site)
        .arg("resync")
        .args(args)
        .arg("--json")
        .fake(fake)
        .stdout_json()
        .stderr_has(" failed; ")
}

/// `resync ARGS --check --json`: no drift, no failure, nothing on stderr.
fn assert_no_drift(site: &Site, fake: &FakeStripe, args: &[&str]) {
    let mut all = args.to_vec();
    all.push("--check");
    let out = resync(site, fake, &all)
        .stderr_has(" 0 failed; ")
        .stderr_with("no error or warning line", no_problems)
        .run();
    let v = out.json();
    assert_eq!(v["summary"]["changed"], 0, "{args:?}: {}", show(&out));
    assert_eq!(v["summary"]["failed"], 0, "{args:?}: {}", show(&out));
    let drifted: Vec<&Value> = v["customers"]
        .as_array()
        .expect("customers array")
        .iter()
        .filter(|c| c["changed"] != false)
        .collect();
    assert!(drifted.is_empty(), "{args:?}: {drifted:?}");
}

// ---------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------

/// `inspect --json FILTERS`: the rows (exit 0 expected: the filter matches).
fn rows(site: &Site, filters: &[&str]) -> Vec<Value> {
    let out = sync(site)
        .args(["inspect", "--json"])
        .args(filters)
        .stdout_json()
        .run();
    let v = out.json();
    v.as_array().expect("an array of rows").clone()
}

/// The rows without the per-run `synced_at`.
fn timeless(mut rows: Vec<Value>) -> Vec<Value> {
    for r in &mut rows {
        r.as_object_mut().expect("a row object").remove("synced_at");
    }
    rows
}

fn row(site: &Site, customer: &str) -> Value {
    let mut rs = timeless(rows(site, &["--customer", customer]));
    assert_eq!(rs.len(), 1, "{rs:?}");
    rs.remove(0)
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// An `invoice.paid` event for `customer`; with `user`, routed through the
/// invoice's own metadata, else through the customer (the API under `--live`).
fn invoice_paid(id: &str, customer: &str, user: Option<&str>) -> Value {
    let metadata = match user {
        Some(u) => json!({ "clerkUserId": u }),
        None => json!({}),
    };
    json!({
        "id": id, "object": "event", "type": "invoice.paid", "created": 1_767_225_700,
        "api_version": "2025-06-30.basil", "livemode": false, "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "data": { "object": {
            "id": format!("in_{id}"), "object": "invoice", "customer": customer,
            "status": "paid", "metadata": metadata,
        } },
    })
}

fn write_events(dir: &Path, name: &str, events: &[Value]) -> PathBuf {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

/// A URL on 127.0.0.1 where nothing listens.
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

// ---------------------------------------------------------------------------
// a. The user's subscription on a `created` tie is the API's first
// ---------------------------------------------------------------------------

const TIE_CUSTOMER: &str = "cus_Tie0000000001";
const TIE_USER: &str = "user_tie";
/// Added first and canceled; its id sorts AFTER `SUB_A`.
const SUB_B: &str = "sub_B0000000000000000000000";
/// Added second and active, in the same second: the API lists it first.
const SUB_A: &str = "sub_A0000000000000000000000";

fn tie_account() -> Account {
    Account::new()
        .customer(json!({"id": TIE_CUSTOMER, "email": "tie@example.com", "name": "Tie Breaker",
            "metadata": {"clerkUserId": TIE_USER}, "created": T0}))
        .payment_method(json!({"id": "pm_tie", "customer": TIE_CUSTOMER,
            "card": {"brand": "visa", "last4": "4242"}}))
        .subscription(json!({"id": SUB_B, "customer": TIE_CUSTOMER, "status": "canceled",
            "created": T0 + 100, "price": "price_basic", "canceled_at": T0 + 200, "ended_at": T0 + 200}))
        .subscription(json!({"id": SUB_A, "customer": TIE_CUSTOMER, "status": "active",
            "created": T0 + 100, "price": "price_pro", "default_payment_method": "pm_tie",
            "current_period_start": T0 + 100, "current_period_end": T0 + 100 + 31 * 86_400}))
}

fn tie_on_created_every_path_takes_the_apis_first_subscription(b: Backend) {
    let fake = FakeStripe::start(tie_account());
    let listed: Vec<Value> = fake
        .subscriptions()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(
        listed,
        [SUB_A, SUB_B],
        "the fake lists the later-added first"
    );

    let event = invoice_paid("evt_tie_1", TIE_CUSTOMER, None);
    let paths: [(&str, &[&str]); 4] = [
        ("resync --all", &["resync", "--all"]),
        ("resync --customer", &["resync", "--customer", TIE_CUSTOMER]),
        ("resync --user", &["resync", "--user", TIE_USER]),
        ("replay --live", &["replay", "--live", "e.ndjson"]),
    ];
    let mut seen: Vec<(&str, Value)> = Vec::new();
    for (name, args) in paths {
        let site = b.site();
        write_events(site.path(), "e.ndjson", std::slice::from_ref(&event));
        let run = sync(&site)
            .args(args)
            .args(["--json"])
            .fake(&fake)
            .stdout_json();
        // replay's summary is on stderr; resync --json prints nothing there.
        let run = match name.starts_with("replay") {
            true => run
                .stderr_has("1 customer synced")
                .stderr_with("no error or warning line", no_problems),
            false => run
                .stderr_has("1 customer: ")
                .stderr_with("no error or warning line", no_problems),
        };
        let out = run.run();
        let v = out.json();
        if name.starts_with("replay") {
            assert_eq!(v["events"][0]["route"], "sync", "{name}: {v}");
            assert_eq!(v["events"][0]["customer_id"], TIE_CUSTOMER, "{name}");
            assert_eq!(v["summary"]["customers_synced"], 1, "{name}");
        } else {
            assert_eq!(v["customers"][0]["customer_id"], TIE_CUSTOMER, "{name}");
            assert_eq!(v["customers"][0]["status"], "active", "{name}: {v}");
            assert_eq!(v["summary"]["failed"], 0, "{name}");
        }
        assert!(!out.stdout.contains(fake.api_key()) && !out.stderr.contains(fake.api_key()));

        let r = row(&site, TIE_CUSTOMER);
        assert_eq!(r["status"], "active", "{name}: {r}");
        assert_eq!(r["subscription_id"], SUB_A, "{name}: {r}");
        assert_eq!(r["user_id"], TIE_USER, "{name}: {r}");
        assert_eq!(r["deleted"], false, "{name}: {r}");
        seen.push((name, r));

        assert_no_drift(&site, &fake, &["--all"]);
        assert_no_drift(&site, &fake, &["--user", TIE_USER]);
        assert_no_drift(&site, &fake, &["--customer", TIE_CUSTOMER]);
    }
    for (name, r) in &seen[1..] {
        assert_eq!(r, &seen[0].1, "{name} and {} disagree", seen[0].0);
    }
}

// ---------------------------------------------------------------------------
// b. A generated account: backfill, checks and per-user resyncs agree
// ---------------------------------------------------------------------------

fn generated_account_backfill_checks_and_user_resyncs_agree(b: Backend) {
    let fake = FakeStripe::start(Account::generate_at(80, 110, 17, T0));
    let subs = fake.subscriptions();
    let n_subs = |cus: &str| subs.iter().filter(|s| s["customer"] == cus).count();
    let mapped: Vec<(String, String)> = fake
        .customers()
        .iter()
        .filter_map(|c| {
            let user = c["metadata"]["clerkUserId"].as_str()?;
            Some((user.to_owned(), c["id"].as_str()?.to_owned()))
        })
        .collect();
    let pick = |want: &dyn Fn(usize) -> bool, skip: &[&String]| -> (String, String) {
        mapped
            .iter()
            .find(|(u, c)| want(n_subs(c)) && !skip.contains(&u))
            .cloned()
            .expect("the generated account has such a user")
    };
    let (tie_user, tie_cus) = pick(&|n| n >= 2, &[]);
    let (many_user, many_cus) = pick(&|n| n >= 2, &[&tie_user]);
    let (one_user, _) = pick(&|n| n == 1, &[]);
    let (none_user, _) = pick(&|n| n == 0, &[]);

    // Two `created` ties where the API's order is not id order: each new
    // subscription is added later than the customer's newest, in the same
    // second, so the API lists it first; one id sorts before the generated
    // `sub_1...` ids and one after, so neither id order gives the API's answer.
    let ties = [
        (
            &tie_cus,
            &tie_user,
            "sub_0TieAddedLater000000000",
            "trialing",
        ),
        (
            &many_cus,
            &many_user,
            "sub_zTieAddedLater000000000",
            "past_due",
        ),
    ];
    for (cus, _, id, status) in ties {
        let newest = subs.iter().find(|s| s["customer"] == cus.as_str()).unwrap();
        fake.upsert_subscription(json!({
            "id": id, "customer": cus, "status": status, "created": newest["created"],
            "price": newest["items"]["data"][0]["price"]["id"],
        }));
        let first = fake
            .subscriptions()
            .into_iter()
            .find(|s| s["customer"] == cus.as_str())
            .unwrap();
        assert_eq!(first["id"], id, "the fake lists the later-added first");
    }

    let all = b.site();
    let out = resync(&all, &fake, &["--all"])
        .stderr_with("no error or warning line", no_problems)
        .run();
    let v = out.json();
    assert_eq!(v["summary"]["customers"], 80);
    assert_eq!(v["summary"]["failed"], 0);
    for (cus, user, id, status) in ties {
        let r = row(&all, cus);
        assert_eq!(r["subscription_id"], id, "{r}");
        assert_eq!(r["status"], status, "{r}");
        assert_eq!(r["user_id"], user.as_str(), "{r}");
    }
    assert_no_drift(&all, &fake, &["--all"]);

    for user in [&tie_user, &many_user, &one_user, &none_user] {
        assert_no_drift(&all, &fake, &["--user", user]);
        let fresh = b.site();
        let out = resync(&fresh, &fake, &["--user", user])
            .stderr_with("no error or warning line", no_problems)
            .run();
        let v = out.json();
        assert_eq!(v["summary"]["failed"], 0, "{user}");
        assert_eq!(
            timeless(rows(&fresh, &["--user", user])),
            timeless(rows(&all, &["--user", user])),
            "resync --user {user} on a fresh store vs resync --all"
        );
    }
}

// ---------------------------------------------------------------------------
// c. A customer deleted in Stripe: drift under --check, then marked
// ---------------------------------------------------------------------------

fn customer_deleted_in_stripe_is_drift_then_marked_deleted(b: Backend) {
    let mut account = Account::new();
    for (cus, status) in [
        ("cus_Active000001", "active"),
        ("cus_Trial0000001", "trialing"),
        ("cus_PastDue00001", "past_due"),
        ("cus_Gone00000001", "active"),
    ] {
        account.add_customer(json!({"id": cus, "created": T0,
            "metadata": {"clerkUserId": format!("user_{}", &cus[4..])}}));
        account.add_subscription(json!({"id": format!("sub_{}", &cus[4..]), "customer": cus,
            "status": status, "created": T0 + 10, "price": "price_pro"}));
    }
    let gone = "cus_Gone00000001";
    let fake = FakeStripe::start(account);
    let site = b.site();
    resync(&site, &fake, &["--all"])
        .stderr_with("no error or warning line", no_problems)
        .run();

    fake.delete_customer(gone);
    let before = site.store.snapshot();
    let out = resync(&site, &fake, &["--all", "--check"])
        .status(1)
        .stderr_with("no error or warning line", no_problems)
        .run();
    let v = out.json();
    // Drift is data, not an error: no problem on stderr (stated above).
    assert_unchanged(&before, &site.store.snapshot(), "resync --all --check");
    assert_eq!(v["summary"]["changed"], 1, "{v}");
    for c in v["customers"].as_array().unwrap() {
        if c["customer_id"] == gone {
            assert_eq!(c["changed"], true, "{c}");
            let diff = c["diff"].to_string();
            assert!(diff.contains("status") || diff.contains("deleted"), "{c}");
        } else {
            assert_eq!(c["changed"], false, "{c}");
        }
    }
    assert!(
        v["customers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["customer_id"] == gone),
        "the deleted customer is reported: {v}"
    );

    let out = resync(&site, &fake, &["--all"])
        .stderr_with("no error or warning line", no_problems)
        .run();
    let v = out.json();
    assert_eq!(v["summary"]["changed"], 1, "{v}");
    let r = row(&site, gone);
    assert_eq!(r["status"], "deleted", "{r}");
    assert_eq!(r["deleted"], true, "{r}");
    for status in ["active", "trialing", "past_due"] {
        let listed = rows(&site, &["--status", status]);
        assert_eq!(listed.len(), 1, "--status {status}: {listed:?}");
        assert!(
            listed.iter().all(|r| r["customer_id"] != gone),
            "--status {status}"
        );
    }
    let listed = rows(&site, &["--status", "deleted"]);
    let ids: Vec<&Value> = listed.iter().map(|r| &r["customer_id"]).collect();
    assert_eq!(ids, [gone]);
    assert_no_drift(&site, &fake, &["--all"]);
}

// ---------------------------------------------------------------------------
// d. Dry runs write nothing
// ---------------------------------------------------------------------------

fn dry_runs_write_nothing_and_say_so(b: Backend) {
    let site = b.site();
    // One rejected checkout: status 1.
    sync(&site)
        .args(["replay"])
        .arg(fixtures())
        .status(1)
        .stdout_has("rejected")
        .stderr_has("45 events: ")
        .stderr_has("1 rejected")
        .run();

    let before = site.store.snapshot();
    let v = sync(&site)
        .args(["replay", "--dry-run", "--json"])
        .arg(fixtures())
        .status(1)
        .stdout_json()
        .stderr_has("45 events: ")
        .stderr_has("nothing written")
        .stderr_with("no error or warning line", no_problems)
        .run()
        .json();
    assert_eq!(v["summary"]["dry_run"], true, "{}", v["summary"]);
    let out = sync(&site)
        .args(["replay", "--dry-run"])
        .arg(fixtures())
        .status(1)
        .stdout_has("would sync")
        .stderr_has("45 events: ")
        .stderr_has("nothing written")
        .stderr_with("no error or warning line", no_problems)
        .run();
    let last = out.stdout.trim_end().lines().last().unwrap_or("");
    assert!(last.contains("would sync"), "summary line: {last:?}");
    assert_unchanged(&before, &site.store.snapshot(), "replay --dry-run");

    // --live --dry-run: resolving may read a customer, syncing is not attempted.
    let fake = FakeStripe::start(tie_account());
    let live = b.site();
    write_events(
        live.path(),
        "e.ndjson",
        &[invoice_paid("evt_dry_1", TIE_CUSTOMER, None)],
    );
    let v = sync(&live)
        .args(["replay", "--live", "--dry-run", "--json", "e.ndjson"])
        .fake(&fake)
        .stdout_json()
        .stderr_has("1 event: 1 sync")
        .stderr_has("nothing written")
        .stderr_with("no error or warning line", no_problems)
        .run()
        .json();
    assert_eq!(v["summary"]["dry_run"], true);
    assert_eq!(v["events"][0]["route"], "sync", "{v}");
    assert_eq!(fake.count_path("/v1/subscriptions"), 0, "no sync request");
    assert!(!live.store.exists(), "a dry run creates no store");

    let v = sync(&live)
        .args(["replay", "--live", "--json", "e.ndjson"])
        .fake(&fake)
        .stdout_json()
        .stderr_has("1 event: 1 sync")
        .stderr_has("1 customer synced")
        .stderr_with("no error or warning line", no_problems)
        .run()
        .json();
    assert_eq!(v["summary"]["dry_run"], false);
    assert_eq!(v["summary"]["customers_synced"], 1);
    assert_eq!(fake.count_path("/v1/subscriptions"), 1);
    assert!(live.store.exists(), "the real run made the store");
}

// ---------------------------------------------------------------------------
// e. Dead API, refused key, missing customer
// ---------------------------------------------------------------------------

/// Nine events, each routed (by its own metadata) to a different customer.
fn nine_customers(dir: &Path) -> PathBuf {
    let events: Vec<Value> = (1..=9)
        .map(|i| {
            invoice_paid(
                &format!("evt_dead_{i}"),
                &format!("cus_Dead00000000{i}"),
                Some(&format!("user_dead_{i}")),
            )
        })
        .collect();
    write_events(dir, "nine.ndjson", &events)
}

/// The API runs of the dead-API and refused-key cases.
fn api_runs(dir: &Path) -> Vec<(&'static str, Vec<String>)> {
    let events = nine_customers(dir).display().to_string();
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<String>>();
    vec![
        (
            "replay --live (9 customers)",
            s(&["replay", "--live", "--json", &events]),
        ),
        ("resync --all", s(&["resync", "--all", "--json"])),
        (
            "resync --customer x3",
            s(&[
                "resync",
                "--json",
                "--customer",
                "cus_Dead000000001",
                "--customer",
                "cus_Dead000000002",
                "--customer",
                "cus_Dead000000003",
            ]),
        ),
    ]
}

/// stdout of a run that stopped: nothing, or one JSON document.
fn stopped_stdout(stdout: &str) -> bool {
    stdout.trim().is_empty() || serde_json::from_str::<Value>(stdout).is_ok()
}

fn unreachable_api_stops_the_run_with_status_2(b: Backend) {
    let site = b.site();
    let base = closed_port_url();
    let key = "sk_test_unreachable_77";
    for (name, args) in api_runs(site.path()) {
        let t = Instant::now();
        let out = sync(&site)
            .args(&args)
            .api(&base, key)
            .status(2)
            .stdout_with("nothing, or one JSON document", stopped_stdout)
            .stdout_lacks(key)
            .stderr_has("cannot reach")
            .stderr_lacks(key)
            .run();
        let took = t.elapsed();
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
        let err = single_error(&out);
        assert!(err.contains("cannot reach"), "{name}: {err}");
    }
}

fn refused_key_stops_the_run_with_status_2(b: Backend) {
    let fake = FakeStripe::start(tie_account());
    let site = b.site();
    let wrong = "sk_test_refused_key_4401";
    for (name, args) in api_runs(site.path()) {
        fake.reset_counters();
        // The key is never printed.
        let out = sync(&site)
            .args(&args)
            .api(&fake.url(), wrong)
            .status(2)
            .stdout_with("nothing, or one JSON document", stopped_stdout)
            .stdout_lacks("refused_key")
            .stderr_has("401")
            .stderr_lacks("refused_key")
            .run();
        let err = single_error(&out);
        assert!(err.contains("401"), "{name}: {err}");
        assert!(
            fake.count_path("/v1/") < 9,
            "{name}: stopped at the first 401, not customer by customer ({} requests)",
            fake.count_path("/v1/")
        );
    }
}

fn missing_customer_fails_only_that_customer(b: Backend) {
    let fake = FakeStripe::start(tie_account());
    let site = b.site();
    let out = resync(&site, &fake, &["--customer", "cus_doesnotexist"])
        .status(1)
        .stderr_has("cus_doesnotexist")
        .run();
    let v = out.json();
    let c = &v["customers"][0];
    assert_eq!(c["customer_id"], "cus_doesnotexist", "{v}");
    let err = c["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error: {v}"));
    assert!(err.contains("cus_doesnotexist"), "{err}");
    assert_eq!(v["summary"]["failed"], 1);
    let lines = problems(&out);
    assert_eq!(lines.len(), 1, "{}", show(&out));
    assert!(lines[0].contains("cus_doesnotexist"), "{}", show(&out));
}

// ---------------------------------------------------------------------------
// f. A read-only store is readable
// ---------------------------------------------------------------------------

fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// `stripe-sync` in `dir`, as the unprivileged user when `unprivileged`.
fn ro_sync(dir: &Path, unprivileged: bool) -> Test {
    match unprivileged {
        true => Test::in_dir(dir).unprivileged(),
        false => Test::in_dir(dir),
    }
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A command run as the store's reader.
type Reader<'a> = dyn Fn(&[&str]) -> Test + 'a;

/// A store its reader may not write: an SQLite file (and dir) without
/// write permission, or a PostgreSQL role with only `USAGE` on the schema
/// and `SELECT` on its tables. Either can be inspected and checked, and
/// stays as it was.
fn read_only_store_can_be_inspected_and_checked(b: Backend) {
    let fake = FakeStripe::start(tie_account());
    let tmp = tempdir();
    chmod(tmp.path(), 0o755);
    let ro = tmp.path().join("ro");
    fs::create_dir(&ro).unwrap();
    let site = b.site_in(&ro);
    write_events(
        &ro,
        "e.ndjson",
        &[invoice_paid("evt_ro_1", TIE_CUSTOMER, None)],
    );
    sync(&site)
        .args(["replay", "--live", "--json", "e.ndjson"])
        .fake(&fake)
        .stdout_json()
        .stderr_has("1 customer synced")
        .stderr_with("no error or warning line", no_problems)
        .run();
    let written = rows(&site, &[]);

    // `stripe-sync ARGS --db STORE` as the reader.
    let reader: Box<Reader<'_>> = match &site.store {
        Store::Sqlite(store) => {
            for side in ["", "-wal", "-shm"] {
                let p = PathBuf::from(format!("{}{side}", store.display()));
                if p.exists() {
                    chmod(&p, 0o444);
                }
            }
            chmod(&ro, 0o555);
            // Root ignores permissions: run as nobody then.
            let unprivileged = running_as_root();
            let db_arg = store.display().to_string();
            let ro = ro.clone();
            Box::new(move |args| {
                ro_sync(&ro, unprivileged)
                    .args(args)
                    .args(["--db", &db_arg])
            })
        }
        Store::Postgres { pg, db } => {
            let role = crate::team_store::read_only_role(pg, db);
            let ro = ro.clone();
            Box::new(move |args| {
                Test::in_dir(&ro)
                    .args(args)
                    .args(["--db", &role.url])
                    .hides(pg.password())
                    .hides(&role.password)
            })
        }
    };
    let before = site.store.snapshot();

    let v = reader(&["inspect", "--json"]).stdout_json().run().json();
    assert_eq!(v[0]["customer_id"], TIE_CUSTOMER, "{v}");
    assert_eq!(v[0]["subscription_id"], SUB_A, "{v}");
    assert_eq!(
        v.as_array().unwrap(),
        &written,
        "the reader sees what was written"
    );

    let v = reader(&["resync", "--customer", TIE_CUSTOMER, "--check", "--json"])
        .fake(&fake)
        .stdout_json()
        .stderr_has("1 customer: 0 drifted (0 new), 0 failed; ")
        .run()
        .json();
    assert_eq!(v["summary"]["changed"], 0, "{v}");
    assert_unchanged(&before, &site.store.snapshot(), "reading a read-only store");
    chmod(&ro, 0o755);

    match b {
        Backend::Sqlite => {
            // A directory is not a store.
            let out = Test::in_dir(tmp.path())
                .args(["inspect", "--json", "--db"])
                .arg(tmp.path())
                .status(2)
                .stderr_has("is a directory")
                .run();
            let err = single_error(&out);
            assert!(err.contains("is a directory"), "{err}");
        }
        Backend::Postgres(_) => {
            // A database without the store's schema holds no store.
            let empty = b.site();
            let out = sync(&empty)
                .args(["inspect", "--json"])
                .status(2)
                .stderr_has("no store at")
                .run();
            let err = single_error(&out);
            assert!(err.contains("no store at"), "{err}");
            assert!(!empty.store.exists(), "inspect made no store");
        }
    }
}

// ---------------------------------------------------------------------------
// g. A second replay of the same inputs writes nothing
// ---------------------------------------------------------------------------

const INITECH: &str = "cus_njhAmuZQRSZSmF";

/// The unmapped customer's decisions never claim it is unknown.
fn assert_initech_known(v: &Value) {
    let initech: Vec<&Value> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["customer_id"] == INITECH && e["route"] == "unresolved")
        .collect();
    assert!(!initech.is_empty(), "Initech's events stay unresolved: {v}");
    for e in initech {
        let reason = e["reason"].as_str().unwrap_or("");
        assert!(!reason.is_empty(), "{e}");
        assert!(
            !reason.contains("neither in the store nor among the inputs"),
            "the store and the inputs both know {INITECH}: {e}"
        );
    }
}

/// `replay --json fixtures/`: status 1 (one rejected checkout), no
/// problem on stderr; the document.
fn replay_fixtures(site: &Site) -> Value {
    sync(site)
        .args(["replay", "--json"])
        .arg(fixtures())
        .status(1)
        .stdout_json()
        .stderr_has("45 events: ")
        .stderr_with("no error or warning line", no_problems)
        .run()
        .json()
}

fn second_replay_of_the_same_inputs_writes_nothing(b: Backend) {
    let site = b.site();
    let v = replay_fixtures(&site);
    assert_initech_known(&v);
    let before = site.store.snapshot();
    let rows_before = rows(&site, &[]);

    let v = replay_fixtures(&site);
    assert_eq!(v["summary"]["sync"], 0, "{}", v["summary"]);
    assert_initech_known(&v);
    let after = site.store.snapshot();
    assert!(
        before.same_contents(&after),
        "the second replay changed the store: {}",
        before.describe_change(&after)
    );
    assert_eq!(
        rows(&site, &[]),
        rows_before,
        "same rows, synced_at included"
    );

    // The snapshot sees a write: one new event changes it.
    write_events(
        site.path(),
        "more.ndjson",
        &[invoice_paid(
            "evt_more_1",
            "cus_More00000001",
            Some("user_more"),
        )],
    );
    sync(&site)
        .args(["replay", "more.ndjson"])
        .stdout_has("evt_more_1")
        .stderr_has("1 customer synced")
        .stderr_with("no error or warning line", no_problems)
        .run();
    assert!(
        !after.same_contents(&site.store.snapshot()),
        "a replay that writes changes the snapshot"
    );
}

// ---------------------------------------------------------------------------
// h. Two replays at once on one store
// ---------------------------------------------------------------------------

fn concurrent_replays_on_one_store_both_succeed(b: Backend) {
    let ada = fixtures().join("2026-03-onboarding/03-ada-subscription-created.json");
    let grace = fixtures().join("2026-03-onboarding/05-grace-events-export.json");
    let expected_customers = ["cus_1gIHnbN8OoIW0c", "cus_iRVVPNjHoKAHeU"];
    // Each file syncs its customer (status 0), alone or with the other.
    let replay = |site: &Site, file: &PathBuf, customer: &str| {
        sync(site)
            .arg("replay")
            .arg(file)
            .stdout_has(customer)
            .stderr_has("1 customer synced")
            .stderr_lacks("locked")
            .stderr_with("no error or warning line", no_problems)
    };
    let files = [
        (&ada, expected_customers[0]),
        (&grace, expected_customers[1]),
    ];
    for (file, customer) in files {
        replay(&b.site(), file, customer).run();
    }
    for round in 0..50 {
        let site = b.site();
        let one = replay(&site, &ada, expected_customers[0]).spawn();
        let two = replay(&site, &grace, expected_customers[1]).spawn();
        one.finish();
        two.finish();
        let listed = rows(&site, &[]);
        for c in expected_customers {
            assert!(
                listed.iter().any(|r| r["customer_id"] == c),
                "round {round}: {c} missing from {listed:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// i. Thin (v2) events are ignored, not invalid
// ---------------------------------------------------------------------------

fn thin_event_is_ignored_with_a_reason(b: Backend) {
    let site = b.site();
    let thin = json!({
        "id": "evt_thin_1", "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered",
        "created": "2026-01-01T00:00:00.000Z", "livemode": false,
        "context": null, "reason": null,
        "related_object": {"id": "mtr_123", "type": "billing.meter", "url": "/v1/billing/meters/mtr_123"},
    });
    let routed = invoice_paid("evt_thin_neighbour", "cus_Thin00000001", Some("user_thin"));
    write_events(site.path(), "mixed.ndjson", &[thin, routed]);
    let v = sync(&site)
        .args(["replay", "--json", "mixed.ndjson"])
        .stdout_json()
        .stderr_has("2 events: 1 sync, 1 ignored")
        .stderr_with("no error or warning line", no_problems)
        .run()
        .json();
    let e = &v["events"][0];
    assert_eq!(e["event_id"], "evt_thin_1", "{v}");
    assert_eq!(e["route"], "ignored", "{e}");
    assert!(
        e["reason"].as_str().unwrap_or("").contains("thin event"),
        "{e}"
    );
    assert_eq!(v["events"][1]["route"], "sync", "{v}");
    assert_eq!(v["summary"]["invalid"], 0);
    assert_eq!(v["summary"]["ignored"], 1);
    assert_eq!(v["summary"]["sync"], 1);
}
