//! One model of a customer's truth, through the binary: same-second events
//! ordered by evidence (list order, `previous_attributes`, lifecycle), what
//! no evidence decides reported as `ambiguous`, customer changes
//! (`customer.updated`, `customer.deleted`) reaching the store on every
//! path, and a user named without a customer synced through the store.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::tempdir;
use crate::events::resync;
use crate::harness::Test;
use crate::support::fake_stripe::{Account, FakeStripe};

/// The second every event of these tests shares.
const T: i64 = 1_767_225_600;

fn subscription(id: &str, status: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "subscription", "customer": "cus_1", "status": status,
        "created": created, "cancel_at_period_end": false,
        "metadata": {"clerkUserId": "user_1"},
        "items": {"object": "list", "data": [
            {"price": {"id": "price_1"}, "current_period_start": T, "current_period_end": T + 2_592_000}
        ]}
    })
}

fn event(id: &str, kind: &str, object: Value, previous: Option<Value>) -> Value {
    let mut data = json!({ "object": object });
    if let Some(p) = previous {
        data["previous_attributes"] = p;
    }
    json!({"id": id, "object": "event", "type": kind, "created": T, "data": data})
}

fn sub_event(id: &str, kind: &str, status: &str, previous: Option<Value>) -> Value {
    event(id, kind, subscription("sub_1", status, T), previous)
}

fn write(dir: &Path, name: &str, v: &Value) {
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

fn list(events: &[Value]) -> Value {
    json!({"object": "list", "url": "/v1/events", "has_more": false, "data": events})
}

/// `replay --json ARGS`: one JSON document on stdout, the replay's summary
/// (`N events: ...`) on stderr.
fn replay(dir: &Path, args: &[&str]) -> Test {
    Test::in_dir(dir)
        .args(["replay", "--json"])
        .args(args)
        .stdout_json()
        .stderr_with("a replay summary (N events: ...)", summary)
}

/// stderr holds a replay's summary line, `N event(s): ...`.
fn summary(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.split_once(": ").is_some_and(|(n, _)| {
            let (count, word) = n.split_once(' ').unwrap_or(("", ""));
            count.parse::<u32>().is_ok() && (word == "event" || word == "events")
        })
    })
}

/// The store's row of a customer, as `inspect --json` shows it.
fn row(dir: &Path, customer: &str) -> Value {
    Test::in_dir(dir)
        .args(["inspect", "--json", "--customer", customer])
        .stdout_json()
        .run()
        .json()[0]
        .clone()
}

/// Runs `test` (status 0) and returns its JSON document.
fn ok(test: Test) -> Value {
    test.run().json()
}

#[test]
fn a_stripe_list_page_is_newest_first() {
    // GET /v1/events lists the update (active) before the creation
    // (incomplete) of the same second: the page's order is the evidence.
    let dir = tempdir();
    let d = dir.path();
    let updated = sub_event("evt_upd", "customer.subscription.updated", "active", None);
    let created = sub_event(
        "evt_cre",
        "customer.subscription.created",
        "incomplete",
        None,
    );
    write(d, "page.json", &list(&[updated, created]));
    let v = ok(replay(d, &["page.json"]));
    assert_eq!(v["ambiguous"], json!([]), "{v}");
    assert_eq!(row(d, "cus_1")["status"], "active");

    // Two updates and nothing but the page to tell them apart.
    let dir = tempdir();
    let d = dir.path();
    let newer = sub_event("evt_2", "customer.subscription.updated", "past_due", None);
    let older = sub_event("evt_1", "customer.subscription.updated", "active", None);
    write(d, "page.json", &list(&[newer, older]));
    let v = ok(replay(d, &["page.json"]));
    assert_eq!(v["ambiguous"], json!([]), "{v}");
    assert_eq!(row(d, "cus_1")["status"], "past_due");
}

#[test]
fn separate_files_newer_first_are_ordered_by_evidence() {
    // The update carries previous_attributes {status: incomplete}, and a
    // creation never follows an update: either says the update is newer.
    let dir = tempdir();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let updated = sub_event(
        "evt_b",
        "customer.subscription.updated",
        "active",
        Some(json!({"status": "incomplete"})),
    );
    let created = sub_event("evt_a", "customer.subscription.created", "incomplete", None);
    write(&d.join("in"), "1.json", &updated);
    write(&d.join("in"), "2.json", &created);
    let v = ok(replay(d, &["in"]));
    assert_eq!(v["ambiguous"], json!([]));
    assert_eq!(row(d, "cus_1")["status"], "active");

    // The same, one run each: the store keeps the evidence of what it has.
    let dir = tempdir();
    let d = dir.path();
    write(d, "1.json", &updated);
    write(d, "2.json", &created);
    ok(replay(d, &["1.json"]));
    let v = ok(replay(d, &["2.json"]));
    assert_eq!(v["ambiguous"], json!([]), "{v}");
    assert_eq!(row(d, "cus_1")["status"], "active");

    // A cancellation is final, whatever follows it in the input.
    let dir = tempdir();
    let d = dir.path();
    write(
        d,
        "1.json",
        &sub_event("evt_d", "customer.subscription.deleted", "canceled", None),
    );
    write(
        d,
        "2.json",
        &sub_event("evt_u", "customer.subscription.updated", "active", None),
    );
    ok(replay(d, &["1.json", "2.json"]));
    assert_eq!(row(d, "cus_1")["status"], "canceled");
}

#[test]
fn what_no_evidence_decides_is_reported_ambiguous() {
    let dir = tempdir();
    let d = dir.path();
    write(
        d,
        "1.json",
        &sub_event("evt_x", "customer.subscription.updated", "active", None),
    );
    write(
        d,
        "2.json",
        &sub_event("evt_y", "customer.subscription.updated", "past_due", None),
    );
    let out = replay(d, &["1.json", "2.json"])
        .stderr_has("cus_1")
        .stderr_has("--live")
        .run();
    let v = out.json();
    assert_eq!(
        v["ambiguous"],
        json!([{"customer_id": "cus_1", "object_id": "sub_1", "event_ids": ["evt_y", "evt_x"]}]),
        "{v}"
    );
    assert!(out.stderr.contains("cus_1"), "{}", out.stderr);
    assert!(out.stderr.contains("--live"), "{}", out.stderr);
    // Deterministic: the later input.
    assert_eq!(row(d, "cus_1")["status"], "past_due");

    // Human output says so on stderr, not stdout.
    let dir = tempdir();
    let d = dir.path();
    write(
        d,
        "1.json",
        &sub_event("evt_x", "customer.subscription.updated", "active", None),
    );
    write(
        d,
        "2.json",
        &sub_event("evt_y", "customer.subscription.updated", "past_due", None),
    );
    Test::in_dir(d)
        .args(["replay", "--dry-run", "1.json", "2.json"])
        .stdout_has("evt_x")
        .stdout_has("evt_y")
        .stdout_lacks("depends on an order")
        .stderr_has("1 customer depends on an order")
        .stderr_with("a replay summary (N events: ...)", summary)
        .run();

    // Two identical snapshots in one second are no ambiguity.
    let dir = tempdir();
    let d = dir.path();
    write(
        d,
        "1.json",
        &sub_event("evt_x", "customer.subscription.updated", "active", None),
    );
    write(
        d,
        "2.json",
        &sub_event("evt_y", "invoice.paid", "active", None),
    );
    let v = ok(replay(d, &["--dry-run", "1.json", "2.json"]));
    assert_eq!(v["ambiguous"], json!([]), "{v}");
}

#[test]
fn two_subscriptions_of_one_second_go_by_the_list() {
    let dir = tempdir();
    let d = dir.path();
    // Listed newest first: sub_a was created after sub_b (the id alone
    // would pick sub_b).
    let a = event(
        "evt_a",
        "customer.subscription.created",
        subscription("sub_a", "active", T),
        None,
    );
    let b = event(
        "evt_b",
        "customer.subscription.created",
        subscription("sub_b", "incomplete_expired", T),
        None,
    );
    write(d, "page.json", &list(&[a, b]));
    let v = ok(replay(d, &["page.json"]));
    assert_eq!(v["ambiguous"], json!([]), "{v}");
    assert_eq!(row(d, "cus_1")["subscription_id"], "sub_a");

    // In two files, nothing tells: the pick is said to be ambiguous.
    let dir = tempdir();
    let d = dir.path();
    let a = event(
        "evt_a",
        "customer.subscription.created",
        subscription("sub_a", "active", T),
        None,
    );
    let b = event(
        "evt_b",
        "customer.subscription.created",
        subscription("sub_b", "active", T),
        None,
    );
    write(d, "1.json", &a);
    write(d, "2.json", &b);
    let v = ok(replay(d, &["1.json", "2.json"]));
    let amb = v["ambiguous"].as_array().unwrap();
    assert_eq!(amb.len(), 1, "{v}");
    assert_eq!(amb[0]["customer_id"], "cus_1");
    assert_eq!(amb[0]["object_id"], "sub_b,sub_a");
}

fn customer(user: Option<&str>) -> Value {
    let metadata = match user {
        Some(u) => json!({"clerkUserId": u}),
        None => json!({}),
    };
    json!({"id": "cus_1", "object": "customer", "email": "a@x.io", "metadata": metadata})
}

#[test]
fn customer_updates_and_deletions_reach_the_store_offline() {
    let dir = tempdir();
    let d = dir.path();
    let sub = sub_event("evt_s", "customer.subscription.created", "active", None);
    let created = event(
        "evt_c1",
        "customer.created",
        customer(Some("user_old")),
        None,
    );
    let renamed = event(
        "evt_c2",
        "customer.updated",
        customer(Some("user_new")),
        Some(json!({"metadata": {"clerkUserId": "user_old"}})),
    );
    // Newest first and in one second: only the evidence orders them.
    write(d, "a.json", &renamed);
    write(d, "b.json", &created);
    write(d, "c.json", &sub);
    let v = ok(replay(d, &["a.json", "b.json", "c.json"]));
    assert_eq!(v["ambiguous"], json!([]), "{v}");
    assert_eq!(row(d, "cus_1")["user_id"], "user_new");

    let deleted = json!({"id": "evt_c3", "object": "event", "type": "customer.deleted", "created": T + 5,
        "data": {"object": {"id": "cus_1", "object": "customer", "deleted": true}}});
    write(d, "d.json", &deleted);
    ok(replay(d, &["d.json"]));
    let r = row(d, "cus_1");
    assert_eq!(r["status"], "deleted");
    assert_eq!(
        r["user_id"], "user_new",
        "a deleted customer keeps its user"
    );
}

#[test]
fn a_user_named_without_a_customer_syncs_the_users_customers() {
    let dir = tempdir();
    let d = dir.path();
    write(
        d,
        "s.json",
        &sub_event("evt_s", "customer.subscription.created", "active", None),
    );
    ok(replay(d, &["s.json"]));
    let pi = |id: &str, user: &str| {
        json!({"id": id, "object": "event", "type": "payment_intent.succeeded", "created": T + 1,
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "customer": null,
                "metadata": {"clerkUserId": user}}}})
    };
    write(d, "pi.json", &pi("evt_pi", "user_1"));
    write(d, "pi2.json", &pi("evt_pi2", "user_unknown"));
    let v = ok(replay(d, &["pi.json", "pi2.json"]));
    let e = &v["events"][0];
    assert_eq!(e["route"], "sync", "{v}");
    assert_eq!(e["resolved_via"], "store_user");
    assert_eq!(e["customer_id"], "cus_1");
    assert_eq!(e["user_id"], "user_1");
    let e = &v["events"][1];
    assert_eq!(e["route"], "unresolved", "{v}");
    assert!(
        e["reason"].as_str().unwrap().contains("user_unknown"),
        "{v}"
    );
    assert_eq!(v["summary"]["customers_synced"], 1);
    // With --strict, the unknown user is a failure.
    Test::in_dir(d)
        .args(["replay", "--strict", "--dry-run", "pi2.json"])
        .status(1)
        .stdout_has("evt_pi2")
        .stderr_with("a replay summary (N events: ...)", summary)
        .run();
}

// ---------------------------------------------------------------------------
// Against the API: the customer is read with its subscription
// ---------------------------------------------------------------------------

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn account() -> Account {
    let now = now();
    Account::new()
        .customer(json!({"id": "cus_a", "email": "a@x.io", "metadata": {"clerkUserId": "user_a"}, "created": now - 1000}))
        .customer(json!({"id": "cus_b", "email": "b@x.io", "metadata": {"clerkUserId": "user_b"}, "created": now - 900}))
        .subscription(json!({"id": "sub_a", "customer": "cus_a", "status": "active", "created": now - 990, "price": "price_pro"}))
}

#[test]
fn a_targeted_resync_rereads_the_customer_in_the_same_request() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    let d = dir.path();
    ok(resync(d, &fake, &["--customer", "cus_a", "--json"])
        .stdout_json()
        .stderr_has(" 0 failed; "));
    assert_eq!(row(d, "cus_a")["user_id"], "user_a");
    fake.upsert_customer(json!({"id": "cus_a", "metadata": {"clerkUserId": "user_z"}}));
    fake.reset_counters();
    let v = ok(resync(d, &fake, &["--customer", "cus_a", "--json"])
        .stdout_json()
        .stderr_has(" 0 failed; "));
    assert_eq!(v["customers"][0]["user_id"], "user_z", "{v}");
    assert_eq!(row(d, "cus_a")["user_id"], "user_z");
    assert_eq!(
        fake.request_count(),
        1,
        "the customer comes inline with its subscription"
    );
}

#[test]
fn events_apply_customer_changes_and_agree_with_a_check() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    let d = dir.path();
    ok(resync(d, &fake, &["--all", "--json"])
        .stdout_json()
        .stderr_has(" 0 failed; "));
    fake.upsert_customer(json!({"id": "cus_a", "metadata": {"clerkUserId": "user_z"}}));
    fake.delete_customer("cus_b");
    let kinds: Vec<String> = fake
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(kinds.iter().any(|k| k == "customer.updated"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "customer.deleted"), "{kinds:?}");
    ok(resync(d, &fake, &["--events", "--json"]).stdout_json());
    assert_eq!(row(d, "cus_a")["user_id"], "user_z");
    assert_eq!(row(d, "cus_b")["status"], "deleted");
    // No drift after --events: status 0.
    ok(resync(d, &fake, &["--all", "--check", "--json"])
        .stdout_json()
        .stderr_has(" 0 failed; "));
}

#[test]
fn an_event_log_that_fails_after_the_commit_says_what_was_kept_and_closes_the_document() {
    // The customers commit, then the event log cannot be written (a full
    // disk in the field; here a trigger on the log refuses every row).
    let dir = tempdir();
    let d = dir.path();
    write(
        d,
        "s.json",
        &sub_event("evt_s", "customer.subscription.created", "active", None),
    );
    write(
        d,
        "t.json",
        &sub_event("evt_t", "customer.subscription.updated", "past_due", None),
    );
    ok(replay(d, &["s.json"]));
    let conn = rusqlite::Connection::open(d.join("stripe-sync.db")).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse_log BEFORE INSERT ON events
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
    drop(conn);
    let v = Test::in_dir(d)
        .args(["replay", "--json", "t.json"])
        .status(2)
        .stdout_json()
        .stderr_has("error: 1 customer synced and committed")
        .stderr_lacks("nothing was written")
        .run()
        .json();
    assert_eq!(v["summary"]["customers_synced"], 1, "{v}");
    let msg = v["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("1 customer synced and committed"), "{msg}");
    assert!(msg.contains("event log could not be written"), "{msg}");
    // What was committed is there; the event comes again next run.
    assert_eq!(row(d, "cus_1")["status"], "past_due");
}
