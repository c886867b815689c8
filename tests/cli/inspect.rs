use std::fs;
use std::path::Path;

use serde_json::json;

use crate::common::{cmd_in, json, run, tempdir};

fn replayed() -> tempfile::TempDir {
    let dir = tempdir();
    let out = run(cmd_in(dir.path())
        .arg("replay")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")));
    assert_eq!(out.status, 1, "{}", out.stderr);
    dir
}

#[test]
fn table_csv_json_and_filters() {
    let dir = replayed();
    let d = dir.path();
    let out = run(cmd_in(d).args(["inspect"]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert!(
        out.stdout.contains("mastercard •••• 4444"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("2026-04-02 → 2026-05-02"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().count(), 7, "header + 6 customers");

    let out = run(cmd_in(d).args(["inspect", "--json", "--status", "active,trialing"]));
    let rows = json(&out.stdout);
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

    let out = run(cmd_in(d).args([
        "inspect",
        "--json",
        "--user",
        "user_24DqvypdTaxjEZmCRfl01cQzv24",
    ]));
    let rows = json(&out.stdout);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["status"], "past_due");

    let out = run(cmd_in(d).args(["--json", "inspect", "--customer", "cus_njhAmuZQRSZSmF"]));
    assert_eq!(json(&out.stdout)[0]["user_id"], serde_json::Value::Null);
    let out = run(cmd_in(d).args(["inspect", "--unmapped", "--json"]));
    assert_eq!(json(&out.stdout).as_array().unwrap().len(), 1);

    let out = run(cmd_in(d).args(["inspect", "--csv", "--customer", "cus_1gIHnbN8OoIW0c"]));
    assert_eq!(out.status, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "user_id,customer_id,email,subscription_id,status,price_id,current_period_start,current_period_end,cancel_at_period_end,card_brand,card_last4,synced_at,source"
    );
    assert!(lines[1].starts_with("user_23q4rvzWDYkqJ0g9tlqhv8lWozr,cus_1gIHnbN8OoIW0c,ada@example.com,sub_1ImifjRkT3sQ8vLmmGj8uznS,active,price_1uYMpZRkT3sQ8vLm0xjneFTC,1775124248,1777716248,true,mastercard,4444,"), "{}", lines[1]);
}

#[test]
fn no_match_is_status_1_and_missing_store_2() {
    let dir = replayed();
    let out = run(cmd_in(dir.path()).args(["inspect", "--json", "--status", "canceled"]));
    assert_eq!(out.status, 1);
    assert_eq!(json(&out.stdout), json!([]));
    let empty = tempdir();
    let out = run(cmd_in(empty.path()).args(["inspect"]));
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains("no store at stripe-sync.db"),
        "{}",
        out.stderr
    );
    let out = run(cmd_in(dir.path()).args(["inspect", "--csv", "--json"]));
    assert_eq!(out.status, 2);
}

#[test]
fn duplicate_customers_warn_and_text_is_escaped() {
    let dir = tempdir();
    let d = dir.path();
    let mk = |evt: &str, cus: &str, email: &str| {
        json!({"id": evt, "object": "event", "type": "customer.created", "created": 1,
        "data": {"object": {"id": cus, "object": "customer", "email": email, "metadata": {"clerkUserId": "user_dup"}}}})
    };
    let lines = [
        mk("evt_a", "cus_a", "evil\u{1b}[2J@x.io"),
        mk("evt_b", "cus_b", "rtl\u{202e}@x.io"),
    ];
    fs::write(
        d.join("c.ndjson"),
        lines
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    assert_eq!(run(cmd_in(d).args(["replay", "c.ndjson"])).status, 0);
    let out = run(cmd_in(d).args(["inspect"]));
    assert_eq!(out.status, 0);
    assert!(
        out.stderr
            .contains("user user_dup maps to 2 customers (cus_a, cus_b)"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains('\u{1b}'), "raw escape in table");
    assert!(
        !out.stdout.contains('\u{202e}'),
        "raw bidi override in table"
    );
    assert!(out.stdout.contains("evil\\u{1b}[2J@x.io"), "{}", out.stdout);
    let out = run(cmd_in(d).args(["-q", "inspect"]));
    assert_eq!(out.stderr, "", "--quiet hides the warning");
}

/// A store with its schema but no customer: one replayed event of a type the
/// routing ignores is logged, and nothing else is written.
fn empty_store() -> tempfile::TempDir {
    let dir = tempdir();
    let d = dir.path();
    fs::write(
        d.join("e.json"),
        json!({"id": "evt_ignored", "object": "event", "type": "charge.succeeded", "created": 1,
               "data": {"object": {"id": "ch_1", "object": "charge"}}})
        .to_string(),
    )
    .unwrap();
    let out = run(cmd_in(d).args(["replay", "e.json"]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(d.join("stripe-sync.db").exists(), "the store was created");
    dir
}

const EMPTY_HINT: &str = "the store stripe-sync.db holds no customers yet: run `stripe-sync replay fixtures/` or `stripe-sync resync --all`\n";

#[test]
fn empty_store_without_a_filter_is_status_0_with_a_hint() {
    let dir = empty_store();
    let d = dir.path();

    let out = run(cmd_in(d).args(["inspect"]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, EMPTY_HINT);
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

    let out = run(cmd_in(d).args(["inspect", "--json"]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, EMPTY_HINT);
    assert_eq!(json(&out.stdout), json!([]));

    let out = run(cmd_in(d).args(["inspect", "--csv"]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, EMPTY_HINT);
    assert_eq!(
        out.stdout,
        "user_id,customer_id,email,subscription_id,status,price_id,current_period_start,current_period_end,cancel_at_period_end,card_brand,card_last4,synced_at,source\n"
    );

    // The hint names the store actually read, and --quiet hides it.
    fs::rename(d.join("stripe-sync.db"), d.join("other.db")).unwrap();
    let out = run(cmd_in(d).args(["--db", "other.db", "inspect", "--json"]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, EMPTY_HINT.replace("stripe-sync.db", "other.db"));
    let out = run(cmd_in(d).args(["--db", "other.db", "-q", "inspect"]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
}

#[test]
fn empty_store_with_a_filter_is_still_status_1() {
    let dir = empty_store();
    let d = dir.path();
    let filters: [&[&str]; 4] = [
        &["--status", "active"],
        &["--user", "user_1"],
        &["--customer", "cus_1"],
        &["--unmapped"],
    ];
    for filter in filters {
        let out = run(cmd_in(d).args(["inspect"]).args(filter));
        assert_eq!(out.status, 1, "{filter:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{filter:?}");
        assert_eq!(out.stderr, "no customer matches the filter\n", "{filter:?}");

        let out = run(cmd_in(d).args(["inspect", "--json"]).args(filter));
        assert_eq!(out.status, 1, "{filter:?}: {}", out.stderr);
        assert_eq!(json(&out.stdout), json!([]), "{filter:?}");
        assert_eq!(out.stderr, "", "{filter:?}");
    }
}

#[test]
fn unknown_status_is_a_usage_error_naming_the_valid_ones() {
    let dir = empty_store();
    let d = dir.path();
    for value in ["pastdue", "active,pastdue", "active,", "ACTIVE"] {
        let out = run(cmd_in(d).args(["inspect", "--json", "--status", value]));
        assert_eq!(out.status, 2, "{value}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{value}");
        assert!(
            out.stderr.starts_with("error: ")
                && out.stderr.contains(" for '--status <S[,S...]>'")
                && out.stderr.contains(
                    "[possible values: incomplete, incomplete_expired, trialing, active, past_due, canceled, unpaid, paused, none, deleted]"
                ),
            "{value}: {}",
            out.stderr
        );
    }
    let out = run(cmd_in(d).args(["inspect", "--status", "pastdue"]));
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
        let out = run(cmd_in(d).args(["inspect", "--json", "--status", value]));
        assert_eq!(out.status, 1, "{value}: {}", out.stderr);
        assert_eq!(json(&out.stdout), json!([]), "{value}");
        assert_eq!(out.stderr, "", "{value}");
    }
}

#[test]
fn deleted_customers_filter_and_show_once_as_deleted() {
    let dir = tempdir();
    let d = dir.path();
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
    fs::write(d.join("c.ndjson"), lines.map(|l| l.to_string()).join("\n")).unwrap();
    let out = run(cmd_in(d).args(["replay", "c.ndjson"]));
    assert_eq!(out.status, 0, "{}", out.stderr);

    let out = run(cmd_in(d).args(["inspect", "--status", "deleted"]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
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
    let out = run(cmd_in(d).args(["inspect", "--json", "--status", "active,none"]));
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert_eq!(json(&out.stdout), json!([]));
    assert_eq!(out.stderr, "");
}

/// A reader that stops early (`| head`) ends JSON output quietly: no
/// "Broken pipe" error, status 0, for the streamed `inspect` and for the
/// one-document `--json` of the other commands.
#[test]
fn a_closed_stdout_ends_json_output_quietly() {
    let dir = replayed();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let fixtures = fixtures.to_str().unwrap();
    for args in [
        &["inspect", "--json"][..],
        &["inspect", "--csv"][..],
        &["replay", "--json", "--dry-run", fixtures][..],
        // Larger than the output buffer: the error comes from serde_json.
        &["completions", "bash", "--json"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("stripe-sync"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("STRIPE_SYNC_DB")
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}
