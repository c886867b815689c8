use std::fs;
use std::path::Path;

use serde_json::json;

use crate::backends::{Backend, Site, Store};
use crate::harness::Test;

// Every test runs once per store backend from the same body
// (`inspect::sqlite::NAME`, `inspect::postgres::NAME`; see `backends.rs`).
crate::backends::on_both_backends!(
    table_csv_json_and_filters,
    no_match_is_status_1_and_missing_store_2,
    duplicate_customers_warn_and_text_is_escaped,
    empty_store_without_a_filter_is_status_0_with_a_hint,
    empty_store_with_a_filter_is_still_status_1,
    unknown_status_is_a_usage_error_naming_the_valid_ones,
    deleted_customers_filter_and_show_once_as_deleted,
    a_closed_stdout_ends_json_output_quietly,
);

fn replayed(b: Backend) -> Site {
    let site = b.site();
    site.sync()
        .arg("replay")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
        .status(1)
        .stdout_has("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate")
        .stderr_has("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate")
        .run();
    site
}

fn table_csv_json_and_filters(b: Backend) {
    let site = replayed(b);
    let d = &site;
    let out = d
        .sync()
        .args(["inspect"])
        .stdout_has("mastercard •••• 4444")
        .stdout_has("2026-04-02 → 2026-05-02")
        .stderr("")
        .run();
    assert_eq!(out.stdout.lines().count(), 7, "header + 6 customers");

    let rows = inspect_json(d, &["--status", "active,trialing"], 0);
    assert_eq!(rows.as_array().unwrap().len(), 5);
    let keys = crate::common::keys(&rows[0]);
    assert_eq!(
        keys,
        [
            "user_id",
            "customer_id",
            "email",
            "subscription_id",
            "status",
            "price_id",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "payment_method",
            "synced_at",
            "source",
            "deleted"
        ]
    );
    let synced = rows[0]["synced_at"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(synced, &time::format_description::well_known::Rfc3339).is_ok(),
        "{synced}"
    );

    let rows = inspect_json(d, &["--user", "user_24DqvypdTaxjEZmCRfl01cQzv24"], 0);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["status"], "past_due");

    let v = d
        .sync()
        .args(["--json", "inspect", "--customer", "cus_njhAmuZQRSZSmF"])
        .stdout_json()
        .run()
        .json();
    assert_eq!(v[0]["user_id"], serde_json::Value::Null);
    let v = d
        .sync()
        .args(["inspect", "--unmapped", "--json"])
        .stdout_json()
        .run()
        .json();
    assert_eq!(v.as_array().unwrap().len(), 1);

    let out = d
        .sync()
        .args(["inspect", "--csv", "--customer", "cus_1gIHnbN8OoIW0c"])
        .stdout_has("user_id,customer_id,")
        .run();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "user_id,customer_id,email,subscription_id,status,price_id,current_period_start,current_period_end,cancel_at_period_end,card_brand,card_last4,synced_at,source"
    );
    assert!(lines[1].starts_with("user_23q4rvzWDYkqJ0g9tlqhv8lWozr,cus_1gIHnbN8OoIW0c,ada@example.com,sub_1ImifjRkT3sQ8vLmmGj8uznS,active,price_1uYMpZRkT3sQ8vLm0xjneFTC,1775124248,1777716248,true,mastercard,4444,"), "{}", lines[1]);
}

/// `inspect --json ARGS` in `d` with nothing on stderr: the rows.
fn inspect_json(d: &Site, args: &[&str], status: i32) -> serde_json::Value {
    d.sync()
        .args(["inspect", "--json"])
        .args(args)
        .status(status)
        .stdout_json()
        .run()
        .json()
}

fn no_match_is_status_1_and_missing_store_2(b: Backend) {
    let site = replayed(b);
    assert_eq!(inspect_json(&site, &["--status", "canceled"], 1), json!([]));
    // No store: for PostgreSQL, a database without the schema.
    let none = b.site();
    none.sync()
        .args(["inspect"])
        .status(2)
        .stderr_has(format!("no store at {}", none.shown()))
        .run();
    site.sync()
        .args(["inspect", "--csv", "--json"])
        .status(2)
        .stderr_has("error: ")
        .run();
}

fn duplicate_customers_warn_and_text_is_escaped(b: Backend) {
    let site = b.site();
    let d = &site;
    let mk = |evt: &str, cus: &str, email: &str| {
        json!({"id": evt, "object": "event", "type": "customer.created", "created": 1,
        "data": {"object": {"id": cus, "object": "customer", "email": email, "metadata": {"clerkUserId": "user_dup"}}}})
    };
    let lines = [
        mk("evt_a", "cus_a", "evil\u{1b}[2J@x.io"),
        mk("evt_b", "cus_b", "rtl\u{202e}@x.io"),
    ];
    fs::write(
        d.path().join("c.ndjson"),
        lines
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    d.sync()
        .args(["replay", "c.ndjson"])
        .stdout_has("2 events: 2 ignored\n2 customers synced (2 changed)")
        .stderr_has("2 events: 2 ignored; 2 customers synced (2 changed)")
        .run();
    let out = d
        .sync()
        .args(["inspect"])
        .stdout_has("cus_a")
        .stderr_has("user user_dup maps to 2 customers (cus_a, cus_b)")
        .run();
    assert!(!out.stdout.contains('\u{1b}'), "raw escape in table");
    assert!(
        !out.stdout.contains('\u{202e}'),
        "raw bidi override in table"
    );
    assert!(out.stdout.contains("evil\\u{1b}[2J@x.io"), "{}", out.stdout);
    // --quiet hides the warning.
    d.sync()
        .args(["-q", "inspect"])
        .stdout_has("cus_a")
        .stderr("")
        .run();
}

/// A store with its schema but no customer: one replayed event of a type the
/// routing ignores is logged, and nothing else is written.
fn empty_store(b: Backend) -> Site {
    let site = b.site();
    let d = &site;
    fs::write(
        d.path().join("e.json"),
        json!({"id": "evt_ignored", "object": "event", "type": "charge.succeeded", "created": 1,
               "data": {"object": {"id": "ch_1", "object": "charge"}}})
        .to_string(),
    )
    .unwrap();
    d.sync()
        .args(["replay", "e.json"])
        .stdout_has("1 event: 1 ignored")
        .stderr_has("1 event: 1 ignored")
        .run();
    assert!(d.store.exists(), "the store was created");
    site
}

/// The hint for an empty store, naming the store read (`stripe-sync.db`,
/// or the URL without its password).
fn empty_hint(site: &Site) -> String {
    EMPTY_HINT.replace("stripe-sync.db", &site.shown())
}

const EMPTY_HINT: &str = "the store stripe-sync.db holds no customers yet: run `stripe-sync replay fixtures/` or `stripe-sync resync --all`\n";

fn empty_store_without_a_filter_is_status_0_with_a_hint(b: Backend) {
    let site = empty_store(b);
    let d = &site;

    let out = d
        .sync()
        .args(["inspect"])
        .stdout_has("USER")
        .stderr(empty_hint(d))
        .run();
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "the header only: {}",
        out.stdout
    );
    let header: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        header,
        [
            "USER", "CUSTOMER", "STATUS", "PERIOD", "CARD", "CANCELS", "EMAIL", "PRICE", "SOURCE"
        ]
    );

    let out = d
        .sync()
        .args(["inspect", "--json"])
        .stdout_json()
        .stderr(empty_hint(d))
        .run();
    assert_eq!(out.json(), json!([]));

    d.sync()
        .args(["inspect", "--csv"])
        .stdout("user_id,customer_id,email,subscription_id,status,price_id,current_period_start,current_period_end,cancel_at_period_end,card_brand,card_last4,synced_at,source\n")
        .stderr(empty_hint(d))
        .run();

    // --quiet hides the hint.
    d.sync()
        .args(["-q", "inspect"])
        .stdout_has("USER")
        .stderr("")
        .run();

    // The hint names the store actually read: another file.
    if let Store::Sqlite(_) = d.store {
        fs::rename(d.path().join("stripe-sync.db"), d.path().join("other.db")).unwrap();
        Test::in_dir(d.path())
            .args(["--db", "other.db", "inspect", "--json"])
            .stdout("[]\n")
            .stderr(EMPTY_HINT.replace("stripe-sync.db", "other.db"))
            .run();
        Test::in_dir(d.path())
            .args(["--db", "other.db", "-q", "inspect"])
            .stdout_has("USER")
            .stderr("")
            .run();
    }
}

fn empty_store_with_a_filter_is_still_status_1(b: Backend) {
    let site = empty_store(b);
    let d = &site;
    let filters: [&[&str]; 4] = [
        &["--status", "active"],
        &["--user", "user_1"],
        &["--customer", "cus_1"],
        &["--unmapped"],
    ];
    for filter in filters {
        d.sync()
            .args(["inspect"])
            .args(filter)
            .status(1)
            .stdout("")
            .stderr("no customer matches the filter\n")
            .run();

        assert_eq!(inspect_json(d, filter, 1), json!([]), "{filter:?}");
    }
}

fn unknown_status_is_a_usage_error_naming_the_valid_ones(b: Backend) {
    let site = empty_store(b);
    let d = &site;
    for value in ["pastdue", "active,pastdue", "active,", "ACTIVE"] {
        let out = d.sync()
            .args(["inspect", "--json", "--status", value])
            .status(2)
            .stdout("")
            .stderr_has(" for '--status <S[,S...]>'")
            .stderr_has(
                "[possible values: incomplete, incomplete_expired, trialing, active, past_due, canceled, unpaid, paused, none, deleted]",
            )
            .run();
        assert!(out.stderr.starts_with("error: "), "{value}: {}", out.stderr);
    }
    let out = d
        .sync()
        .args(["inspect", "--status", "pastdue"])
        .status(2)
        .stderr_has("tip: a similar value exists: 'past_due'")
        .run();
    assert!(
        out.stderr
            .starts_with("error: invalid value 'pastdue' for '--status <S[,S...]>'\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("tip: a similar value exists: 'past_due'"),
        "{}",
        out.stderr
    );

    // Every valid status is accepted (spaces after commas too): the empty
    // store matches none of them, which is status 1, not a usage error.
    for value in [
        "incomplete,incomplete_expired,trialing,active",
        "past_due, canceled, unpaid, paused",
        "none",
        "deleted",
    ] {
        assert_eq!(
            inspect_json(d, &["--status", value], 1),
            json!([]),
            "{value}"
        );
    }
}

fn deleted_customers_filter_and_show_once_as_deleted(b: Backend) {
    let site = b.site();
    let d = &site;
    let customer = json!({"id": "cus_gone", "object": "customer", "email": "gone@x.io",
                          "metadata": {"clerkUserId": "user_gone"}});
    let mut deleted = customer.clone();
    deleted["deleted"] = json!(true);
    let lines = [
        json!({"id": "evt_c", "object": "event", "type": "customer.created", "created": 1,
               "data": {"object": customer}}),
        json!({"id": "evt_d", "object": "event", "type": "customer.deleted", "created": 2,
               "data": {"object": deleted}}),
    ];
    fs::write(
        d.path().join("c.ndjson"),
        lines.map(|l| l.to_string()).join("\n"),
    )
    .unwrap();
    d.sync()
        .args(["replay", "c.ndjson"])
        .stdout_has("2 events: 2 ignored\n1 customer synced (1 changed)")
        .stderr_has("2 events: 2 ignored; 1 customer synced (1 changed)")
        .run();

    let out = d
        .sync()
        .args(["inspect", "--status", "deleted"])
        .stdout_has("cus_gone")
        .stderr("")
        .run();
    let row: Vec<&str> = out
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "user_gone",
            "cus_gone",
            "deleted",
            "-",
            "-",
            "-",
            "gone@x.io",
            "-",
            "events"
        ]
    );
    assert_eq!(inspect_json(d, &["--status", "active,none"], 1), json!([]));
}

/// A reader that stops early (`| head`) ends JSON output quietly: no
/// "Broken pipe" error, status 0, for the streamed `inspect` and for the
/// one-document `--json` of the other commands.
fn a_closed_stdout_ends_json_output_quietly(b: Backend) {
    let site = replayed(b);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let fixtures = fixtures.to_str().unwrap();
    for args in [
        &["inspect", "--json"][..],
        &["inspect", "--csv"][..],
        &["replay", "--json", "--dry-run", fixtures][..],
        // Larger than the output buffer: the error comes from serde_json.
        &["completions", "bash", "--json"][..],
    ] {
        site.sync()
            .args(args)
            .hang_up_after(0)
            .stderr_lacks("Broken pipe")
            .run();
    }
}
