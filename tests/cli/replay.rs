use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::backends::{Backend, Site};
use crate::common::tempdir;
use crate::harness::Test;

// The tests that write or read the store run once per store backend from
// the same body (`replay::sqlite::NAME`, `replay::postgres::NAME`; see
// `backends.rs`); the others (dry runs, inputs, SQLite files) on SQLite.
crate::backends::on_both_backends!(
    fixtures_route_as_documented,
    second_run_sees_duplicates_and_changes_nothing,
    dry_run_creates_no_store,
    bad_inputs_are_named_and_good_ones_still_run,
    store_resolution_on_a_later_run,
    two_replays_on_one_store_at_once,
    closed_pipe_is_status_0_and_the_event_log_is_complete,
    a_large_replay_logs_on_its_own_thread_with_the_same_outcome,
);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture event as one compact JSON line, in the tool's reading order.
pub fn fixture_events() -> Vec<String> {
    let dir = tempdir();
    let v = Test::in_dir(dir.path())
        .args(["replay", "--dry-run", "--json"])
        .arg(fixtures())
        .status(1)
        .stdout_json()
        .stderr_has("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate")
        .run()
        .json();
    let mut order: Vec<String> = Vec::new();
    for d in v["events"].as_array().unwrap() {
        order.push(d["event_id"].as_str().unwrap().to_owned());
    }
    // Read the raw events back from the files in the same order.
    let mut by_id = std::collections::HashMap::new();
    for entry in walk(&fixtures()) {
        let text = fs::read_to_string(&entry).unwrap();
        let values: Vec<Value> = if entry.extension().unwrap() == "ndjson" {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        } else {
            match serde_json::from_str::<Value>(&text).unwrap() {
                Value::Array(a) => a,
                v if v["object"] == "list" => v["data"].as_array().unwrap().clone(),
                v => vec![v],
            }
        };
        for v in values {
            by_id.insert(
                v["id"].as_str().unwrap().to_owned(),
                serde_json::to_string(&v).unwrap(),
            );
        }
    }
    order.iter().map(|id| by_id[id].clone()).collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("json" | "ndjson")
        ) {
            out.push(p);
        }
    }
    out
}

/// `inspect --json` on the site's store, without the per-run `synced_at`.
pub fn mapping_on(site: &Site) -> Value {
    let mut v = site
        .sync()
        .args(["inspect", "--json"])
        .stdout_json()
        .run()
        .json();
    for row in v.as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("synced_at");
    }
    v
}

/// `inspect --json` without the per-run `synced_at`.
pub fn mapping(dir: &Path, db: &str) -> Value {
    let mut v = Test::in_dir(dir)
        .args(["inspect", "--json", "--db", db])
        .stdout_json()
        .run()
        .json();
    for row in v.as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("synced_at");
    }
    v
}

fn fixtures_route_as_documented(b: Backend) {
    let site = b.site();
    // One rejected checkout: status 1.
    let out = site.sync()
        .args(["replay", "--json"])
        .arg(fixtures())
        .status(1)
        .stdout_json()
        .stderr_has("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate; 6 customers synced (6 changed) in ")
        .run();
    // stdout is not a terminal: the one-line summary goes to stderr.
    assert!(
        out.stderr.starts_with("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate; 6 customers synced (6 changed) in "),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
    let v = out.json();
    assert_eq!(
        v["summary"],
        json!({"events": 45, "sync": 29, "ignored": 11, "rejected": 1, "unresolved": 3, "duplicate": 1,
               "invalid": 0, "customers_synced": 6, "customers_changed": 6, "sync_failures": 0,
               "api_requests": 0, "forwarded": 0, "forward_failures": 0, "dry_run": false})
    );
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 45);
    let keys = crate::common::keys(&events[0]);
    assert_eq!(
        keys,
        [
            "event_id",
            "type",
            "created",
            "route",
            "user_id",
            "customer_id",
            "resolved_via",
            "reason",
            "source"
        ]
    );
    let by_id = |id: &str| events.iter().find(|e| e["event_id"] == id).unwrap().clone();
    // A customer's user found only in a later file.
    let k = by_id("evt_16Ur8wRkT3sQ8vLmYb8SClzv");
    assert_eq!(k["route"], "sync");
    assert_eq!(k["resolved_via"], "customer_metadata");
    assert_eq!(k["user_id"], "user_2qglbdQZKD8NxCVHfYv8vBVtdm3");
    assert!(
        k["source"]
            .as_str()
            .unwrap()
            .ends_with("06-katherine-trial.ndjson:1")
    );
    let rejected = by_id("evt_1djGUORkT3sQ8vLmJhFak61D");
    assert_eq!(rejected["route"], "rejected");
    assert!(rejected["reason"].as_str().unwrap().contains("tier"));
    assert_eq!(
        by_id("evt_1S7NM5RkT3sQ8vLmkgRU67bY")["resolved_via"],
        "expanded_customer"
    );
    assert_eq!(
        by_id("evt_1bZxy1RkT3sQ8vLmqaWu7al9")["resolved_via"],
        "subscription_metadata"
    );
    assert_eq!(by_id("evt_1JPSgqRkT3sQ8vLmO5vm9Bi9")["route"], "unresolved");
    let dup: Vec<&Value> = events
        .iter()
        .filter(|e| e["route"] == "duplicate")
        .collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0]["event_id"], "evt_1TXUcrRkT3sQ8vLmgAwVDbaL");
    assert!(
        dup[0]["source"]
            .as_str()
            .unwrap()
            .ends_with("01-resent-from-dashboard.ndjson:2")
    );

    // The store's mapping: fixtures/README.md, "Expected final state".
    let m = mapping_on(&site);
    let row = |c: &str| {
        m.as_array()
            .unwrap()
            .iter()
            .find(|r| r["customer_id"] == c)
            .unwrap()
            .clone()
    };
    assert_eq!(
        row("cus_1gIHnbN8OoIW0c"),
        json!({"user_id": "user_23q4rvzWDYkqJ0g9tlqhv8lWozr", "customer_id": "cus_1gIHnbN8OoIW0c",
               "email": "ada@example.com", "subscription_id": "sub_1ImifjRkT3sQ8vLmmGj8uznS",
               "status": "active", "price_id": "price_1uYMpZRkT3sQ8vLm0xjneFTC",
               "current_period_start": 1775124248, "current_period_end": 1777716248,
               "cancel_at_period_end": true, "payment_method": {"brand": "mastercard", "last4": "4444"},
               "source": "events", "deleted": false})
    );
    let grace = row("cus_iRVVPNjHoKAHeU");
    assert_eq!(
        (
            grace["status"].clone(),
            grace["current_period_start"].clone()
        ),
        (json!("active"), json!(1772546400))
    );
    assert_eq!(grace["payment_method"], Value::Null);
    let alan = row("cus_njFgSzPz2mwWH0");
    assert_eq!(alan["subscription_id"], "sub_17nYJDRkT3sQ8vLm61sbYBCR");
    assert_eq!(
        alan["payment_method"],
        json!({"brand": "visa", "last4": "5556"})
    );
    let edsger = row("cus_SfClaTlRZe2I0c");
    assert_eq!(edsger["status"], "past_due");
    assert_eq!(edsger["current_period_end"], 1777820400);
    let katherine = row("cus_rfpsSSfpYR3idB");
    assert_eq!(katherine["user_id"], "user_2qglbdQZKD8NxCVHfYv8vBVtdm3");
    let initech = row("cus_njhAmuZQRSZSmF");
    assert_eq!(initech["user_id"], Value::Null, "kept, unmapped");
}

fn second_run_sees_duplicates_and_changes_nothing(b: Backend) {
    let site = b.site();
    site.sync()
        .arg("replay")
        .arg(fixtures())
        .status(1)
        .stdout_has("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate")
        .stderr_has("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate")
        .run();
    let before = mapping_on(&site);
    let v = site
        .sync()
        .args(["replay", "--json"])
        .arg(fixtures())
        .status(1)
        .stdout_json()
        .stderr_has("45 events: 1 rejected, 3 unresolved, 41 duplicate")
        .run()
        .json();
    assert_eq!(v["summary"]["sync"], 0);
    // 29 synced + 11 ignored logged in the first run; the redelivery is a duplicate again.
    assert_eq!(v["summary"]["duplicate"], 41);
    assert_eq!(mapping_on(&site), before);
}

fn dry_run_creates_no_store(b: Backend) {
    let site = b.site();
    site.sync()
        .args(["replay", "--dry-run"])
        .arg(fixtures())
        .status(1)
        .stdout_has("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate\nwould sync 6 customers (6 would change); nothing written")
        .stderr_has("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate; would sync 6 customers (6 would change); nothing written")
        .run();
    assert!(!site.path().join("stripe-sync.db").exists());
    assert!(!site.store.exists(), "a dry run creates no store");
    assert!(
        fs::read_dir(site.path()).unwrap().next().is_none(),
        "nothing written to the working dir"
    );
}

#[test]
fn human_table_has_a_row_per_event() {
    let dir = tempdir();
    let out = Test::in_dir(dir.path())
        .args(["replay", "--dry-run"])
        .arg(fixtures().join("2026-03-onboarding/09-edsger-signup.json"))
        .status(1)
        .stdout_has("lacks required metadata: tier")
        .stderr_has("1 rejected")
        .run();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("EVENT"), "{}", out.stdout);
    assert!(
        lines[2].contains("checkout.session.completed") && lines[2].contains("rejected"),
        "{}",
        out.stdout
    );
    assert!(lines[2].contains("lacks required metadata: tier"));
    assert!(lines[2].contains("09-edsger-signup.json[1]"));
}

fn bad_inputs_are_named_and_good_ones_still_run(b: Backend) {
    let site = b.site();
    let d = &site;
    let good = fixtures().join("2026-04-billing/02-alan-seats-applied.json");
    fs::write(d.path().join("empty.json"), "").unwrap();
    fs::write(
        d.path().join("truncated.json"),
        "{\"id\": \"evt_1\", \"type\":",
    )
    .unwrap();
    fs::write(d.path().join("binary.json"), b"\x00\x01\xff\xfe").unwrap();
    fs::write(d.path().join("mixed.json"), "[5, {\"id\":\"evt_x\",\"object\":\"event\",\"type\":\"invoice.paid\",\"created\":\"yesterday\",\"data\":{\"object\":{}}}]").unwrap();
    fs::write(d.path().join("lines.ndjson"), "{\"id\":\"evt_ok\",\"object\":\"event\",\"type\":\"product.created\",\"created\":1,\"data\":{\"object\":{}}}\n{not json\n").unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    fs::write(d.path().join("deep.json"), deep).unwrap();
    let out = d
        .sync()
        .args([
            "replay",
            "--json",
            "empty.json",
            "truncated.json",
            "binary.json",
            "mixed.json",
            "lines.ndjson",
            "deep.json",
            "missing.json",
            "nomatch*.json",
        ])
        .arg(&good)
        .status(2)
        .stdout_json()
        .stderr_has("empty.json: empty file")
        .run();
    let v = out.json();
    assert_eq!(v["summary"]["sync"], 1, "the good event still synced");
    assert_eq!(v["summary"]["customers_synced"], 1);
    let errs: Vec<String> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    let joined = errs.join("\n");
    for needle in [
        "empty.json: empty file",
        "truncated.json: invalid JSON",
        "binary.json: not UTF-8",
        "missing.json: no such file",
        "nomatch*.json: the pattern matches no file",
    ] {
        assert!(joined.contains(needle), "{needle} not in {joined}");
        assert!(out.stderr.contains(needle), "{needle} not on stderr");
    }
    let invalid: Vec<&Value> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["route"] == "invalid")
        .collect();
    let sources: Vec<&str> = invalid
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert!(sources.contains(&"mixed.json[0]"), "{sources:?}");
    assert!(sources.contains(&"mixed.json[1]"));
    assert!(sources.contains(&"lines.ndjson:2"));
    let created = invalid
        .iter()
        .find(|e| e["source"] == "mixed.json[1]")
        .unwrap();
    assert!(
        created["reason"].as_str().unwrap().contains("created"),
        "{created}"
    );
    assert_eq!(v["summary"]["ignored"], 1, "the good NDJSON line");
}

#[test]
fn stdin_and_list_objects() {
    let dir = tempdir();
    let events = fixture_events();
    let list = format!(
        "{{\"object\":\"list\",\"url\":\"/v1/events\",\"has_more\":false,\"data\":[{}]}}",
        events[..3].join(",")
    );
    let v = Test::in_dir(dir.path())
        .args(["replay", "--dry-run", "--json", "-"])
        .stdin(list)
        .stdout_json()
        .stderr_has("3 events: ")
        .run()
        .json();
    assert_eq!(v["summary"]["events"], 3);
    assert_eq!(v["events"][2]["source"], "-[2]");
    let nd = events[..4].join("\n");
    let v = Test::in_dir(dir.path())
        .args(["replay", "--dry-run", "--json", "-"])
        .stdin(nd)
        .stdout_json()
        .stderr_has("4 events: ")
        .run()
        .json();
    assert_eq!(v["events"][3]["source"], "-:4");
}

#[test]
fn usage_errors() {
    let dir = tempdir();
    Test::in_dir(dir.path())
        .args(["replay"])
        .status(2)
        .stderr_has("no INPUT")
        .run();
    fs::write(dir.path().join("stripe-sync.toml"), "user_keys = \"x\"\n").unwrap();
    Test::in_dir(dir.path())
        .args(["replay", "--dry-run"])
        .arg(fixtures())
        .status(2)
        .stderr_has("stripe-sync.toml")
        .stderr_has("user_keys")
        .run();
    Test::in_dir(dir.path())
        .args(["replay", "--config", "nope.toml"])
        .arg(fixtures())
        .status(2)
        .stderr_has("cannot read config nope.toml")
        .run();
}

#[test]
fn strict_counts_unresolved() {
    let dir = tempdir();
    let guest = fixtures().join("2026-03-onboarding/07-guest-tip-payment.json");
    for (strict, status) in [(&[][..], 0), (&["--strict"][..], 1)] {
        Test::in_dir(dir.path())
            .args(["replay", "--dry-run"])
            .args(strict)
            .arg(&guest)
            .status(status)
            .stdout_has(
                "1 event: 1 unresolved\nwould sync 0 customers (0 would change); nothing written",
            )
            .stderr_has(
                "1 event: 1 unresolved; would sync 0 customers (0 would change); nothing written",
            )
            .run();
    }
}

#[test]
fn user_key_flag_and_config() {
    let dir = tempdir();
    let ev = json!({"id": "evt_k", "object": "event", "type": "invoice.paid", "created": 5,
        "data": {"object": {"id": "in_1", "object": "invoice", "customer": "cus_k", "metadata": {"appUser": "u_77"}}}});
    fs::write(dir.path().join("e.json"), ev.to_string()).unwrap();
    let dry_run = |args: &[&str]| {
        Test::in_dir(dir.path())
            .args(["replay", "--dry-run", "--json"])
            .args(args)
            .arg("e.json")
            .stdout_json()
            .stderr_has("1 event: ")
            .run()
            .json()
    };
    assert_eq!(dry_run(&[])["events"][0]["route"], "unresolved");
    assert_eq!(
        dry_run(&["--user-key", "appUser"])["events"][0]["user_id"],
        "u_77"
    );
    fs::write(
        dir.path().join("stripe-sync.toml"),
        "user_key = \"appUser\"\n",
    )
    .unwrap();
    assert_eq!(dry_run(&[])["events"][0]["resolved_via"], "object_metadata");
}

fn store_resolution_on_a_later_run(b: Backend) {
    let site = b.site();
    let d = &site;
    let cust = json!({"id": "evt_c", "object": "event", "type": "customer.created", "created": 1,
        "data": {"object": {"id": "cus_s", "object": "customer", "metadata": {"clerkUserId": "user_s"}}}});
    let inv = json!({"id": "evt_i", "object": "event", "type": "invoice.paid", "created": 2,
        "data": {"object": {"id": "in_s", "object": "invoice", "customer": "cus_s", "metadata": {}}}});
    fs::write(d.path().join("c.json"), cust.to_string()).unwrap();
    fs::write(d.path().join("i.json"), inv.to_string()).unwrap();
    d.sync()
        .args(["replay", "c.json"])
        .stdout_has("1 event: 1 ignored\n1 customer synced (1 changed)")
        .stderr_has("1 event: 1 ignored; 1 customer synced (1 changed)")
        .run();
    let v = d
        .sync()
        .args(["replay", "--json", "i.json"])
        .stdout_json()
        .stderr_has("1 event: 1 sync")
        .run()
        .json();
    assert_eq!(v["events"][0]["resolved_via"], "store");
    assert_eq!(v["events"][0]["user_id"], "user_s");
}

#[test]
fn unusable_stores_are_status_2() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(
        d.join("bad.db"),
        "not a database, just some text long enough for a header....",
    )
    .unwrap();
    Test::in_dir(d)
        .args(["replay", "--db", "bad.db"])
        .arg(fixtures())
        .status(2)
        .stderr_has("bad.db")
        .stderr_has("not an SQLite database")
        .run();
    Test::in_dir(d)
        .args(["inspect", "--db", "bad.db"])
        .status(2)
        .stderr_has("bad.db")
        .stderr_has("not an SQLite database")
        .run();
    Test::in_dir(d)
        .args(["replay", "--db", "no/such/dir/s.db"])
        .arg(fixtures())
        .status(2)
        .stderr_has("no/such/dir/s.db")
        .run();
}

fn two_replays_on_one_store_at_once(b: Backend) {
    let site = b.site();
    let d = &site;
    let events = fixture_events();
    fs::write(d.path().join("a.ndjson"), events[..25].join("\n")).unwrap();
    fs::write(d.path().join("b.ndjson"), events[20..].join("\n")).unwrap();
    // Both files hold the rejected checkout (event 22): status 1 each.
    let spawn = |f: &str| {
        d.sync()
            .args(["replay", "--json", f])
            .status(1)
            .stdout_json()
            .stderr_has(" events: ")
            .stderr_lacks("locked")
            .spawn()
    };
    let (one, two) = (spawn("a.ndjson"), spawn("b.ndjson"));
    for child in [one, two] {
        child.finish();
    }
    // Same mapping as one run over everything.
    let single = b.site();
    fs::write(single.path().join("all.ndjson"), events.join("\n")).unwrap();
    single
        .sync()
        .args(["replay", "all.ndjson"])
        .status(1)
        .stdout_has("45 events: ")
        .stderr_has("45 events: ")
        .run();
    d.sync()
        .args(["replay", "a.ndjson", "b.ndjson"])
        .status(1)
        .stdout_has("50 events: ")
        .stderr_has("50 events: ")
        .run();
    assert_eq!(mapping_on(d), mapping_on(&single));
}

fn closed_pipe_is_status_0_and_the_event_log_is_complete(b: Backend) {
    closed_pipe_case(b, 40);
}

/// Above 10,000 events to log, the log is written on its own thread while
/// the decisions stream out: the same outcome, and the log still lands
/// whole (the second run logs nothing new and counts every event as seen).
fn a_large_replay_logs_on_its_own_thread_with_the_same_outcome(b: Backend) {
    let site = closed_pipe_case(b, 300);
    let v = replay_many(&site);
    // Each line has its own event id here: the 41 of every 45 that are
    // synced or ignored were logged, and come back as duplicates (12,300 of
    // them, above the 10,000 from which the log has its own thread).
    assert_eq!(v["summary"]["duplicate"], 41 * 300, "{}", v["summary"]);
}

fn closed_pipe_case(b: Backend, copies: usize) -> Site {
    let site = b.site();
    // Output far larger than a pipe buffer, so the writer does hit the hang-up.
    let mut lines = Vec::new();
    for (k, line) in fixture_events()
        .iter()
        .cycle()
        .take(45 * copies)
        .enumerate()
    {
        lines.push(line.replacen("\"evt_", &format!("\"evt_{k}x"), 1));
    }
    fs::write(site.path().join("many.ndjson"), lines.join("\n")).unwrap();
    // Read a few bytes, then hang up, as `| head -c 10` does.
    let out = site
        .sync()
        .args(["replay", "--json", "many.ndjson"])
        .hang_up_after(10)
        .stdout_with("the first 10 bytes", |s| s.len() == 10)
        .run();
    assert!(out.stdout.starts_with('{'), "{}", out.stdout);
    let v = replay_many(&site);
    assert_eq!(
        v["summary"]["sync"], 0,
        "every routed event was logged before exiting"
    );
    assert_eq!(
        v["summary"]["ignored"], 0,
        "every ignored event was logged too"
    );
    site
}

/// `replay --json many.ndjson` again, on the store a first run left: every
/// line a duplicate or the one rejected, unresolved or invalid it was.
fn replay_many(site: &Site) -> Value {
    site.sync()
        .args(["replay", "--json", "many.ndjson"])
        .status(1)
        .stdout_json()
        .stderr_has(" events: ")
        .run()
        .json()
}

/// `"customer": ""` (a hand-written fixture) is no customer: the reason
/// says so, not `customer  is neither in the store` with a blank id.
#[test]
fn a_blank_customer_id_is_no_customer() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("blank.json"),
        r#"{"id":"evt_blank","object":"event","type":"invoice.paid","created":1767225600,"data":{"object":{"id":"in_1","object":"invoice","customer":""}}}"#,
    )
    .unwrap();
    let doc = Test::in_dir(dir.path())
        .args(["replay", "--dry-run", "--json", "blank.json"])
        .stdout_json()
        .stderr_has("1 event: 1 unresolved")
        .run()
        .json();
    let d = &doc["events"][0];
    assert_eq!(d["route"], "unresolved", "{doc}");
    assert_eq!(d["customer_id"], serde_json::Value::Null);
    let reason = d["reason"].as_str().unwrap();
    assert!(reason.contains("no customer"), "{reason}");
    assert!(!reason.contains("  "), "{reason}");
}

#[test]
fn a_blank_api_version_is_a_usage_error() {
    Test::new()
        .args(["resync", "--all", "--api-version", " "])
        .status(2)
        .stdout("")
        .stderr_has("'--api-version <V>': is blank")
        .run();
}

/// Stripe redelivers the same event; two events that share an id but not
/// a type are fixtures that reuse ids, and are named so.
#[test]
fn one_id_with_two_types_is_not_called_a_redelivery() {
    let dir = tempdir();
    let event = |kind: &str| {
        format!(
            r#"{{"id":"evt_same","object":"event","type":"{kind}","created":1767225600,"data":{{"object":{{"id":"in_1","object":"invoice","customer":null}}}}}}"#
        )
    };
    let lines = [
        event("invoice.paid"),
        event("invoice.paid"),
        event("invoice.payment_failed"),
    ];
    std::fs::write(dir.path().join("e.ndjson"), lines.join("\n")).unwrap();
    let doc = Test::in_dir(dir.path())
        .args(["replay", "--dry-run", "--json", "e.ndjson"])
        .stdout_json()
        .stderr_has("3 events: ")
        .run()
        .json();
    let reasons: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons[1], "event id already seen in this run (redelivery)");
    assert!(
        reasons[2].contains("with another type: not a redelivery"),
        "{}",
        reasons[2]
    );
    assert_eq!(doc["events"][2]["route"], "duplicate");
}
