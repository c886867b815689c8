//! At 40, 60, 80 and 120 columns no line any command draws on a terminal
//! wraps: tables fit or change shape (a block of `key: value` lines per
//! record), messages wrap at words. Each command's screen is a snapshot
//! per width (`cargo insta review`, or INSTA_UPDATE=always); on a pipe
//! nothing is cut, whatever `COLUMNS` says.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::harness::{Output, Test};
use crate::support::fake_stripe::{Account, FakeStripe};

pub const WIDTHS: [u16; 4] = [40, 60, 80, 120];

#[test]
fn help_fits_every_width() {
    for cols in WIDTHS {
        let out = Test::new()
            .args(["--help"])
            .terminal(cols)
            .stdout_has("Usage: stripe-sync [OPTIONS] <COMMAND>")
            .run();
        out.screen.expect("a terminal").assert_fits();
    }
}

/// Ctrl-C typed on the terminal reaches the binary as SIGINT (the harness's
/// terminal is the binary's controlling terminal).
#[test]
fn ctrl_c_on_the_terminal_interrupts() {
    let dir = tempfile::tempdir().unwrap();
    let mut term = Test::in_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--secret", "whsec_test"])
        .spawn_terminal(80);
    term.wait_for("listening", std::time::Duration::from_secs(10));
    term.ctrl_c();
    let out = term.finish();
    assert_eq!(out.status, 130, "{}", out.stdout);
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The screen a run left, checked to fit, as a snapshot's text.
fn fitted(out: &Output) -> String {
    let screen = out.screen.as_ref().expect("a terminal");
    screen.assert_fits();
    for row in &screen.rows {
        assert!(!row.contains('\u{1b}'), "a raw escape on screen: {row:?}");
    }
    crate::common::redact_times(&screen.text())
}

/// A store made by replaying the quick start's fixtures (as the README does).
fn replayed_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    Test::in_dir(repo())
        .arg("--db")
        .arg(&db)
        .args(["replay", "fixtures/"])
        .status(1)
        .stdout_has("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate")
        .stderr_has("6 customers synced")
        .run();
    (dir, db)
}

#[test]
fn replay_fits_every_width() {
    for cols in WIDTHS {
        let dir = tempfile::tempdir().unwrap();
        let out = Test::in_dir(repo())
            .arg("--db")
            .arg(dir.path().join("s.db"))
            .args(["replay", "fixtures/"])
            .terminal(cols)
            .status(1)
            .stdout_has("45 events:")
            .run();
        let text = fitted(&out);
        let summary = text.replace("\n  ", " ");
        assert!(
            summary
                .contains("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate"),
            "{text}"
        );
        match cols {
            // Too narrow for a row: a block per event, every field named.
            40 | 60 => {
                assert!(
                    text.contains("event:    evt_1YE59yRkT3sQ8vLmowi9hyek\n"),
                    "{text}"
                );
                assert!(text.contains("source:"), "{text}");
                assert!(!text.contains("not shown"), "{text}");
            }
            // Rows, and what they leave out is said (as inspect says it).
            _ => {
                assert!(text.starts_with("EVENT "), "{text}");
                assert!(
                    summary.contains("SOURCE not shown: widen the terminal, or use -v or --json"),
                    "{text}"
                );
            }
        }
        insta::assert_snapshot!(format!("replay_{cols}"), text);
    }
}

/// A wide terminal has room for SOURCE: then it is shown, not mentioned.
#[test]
fn replay_shows_source_when_it_fits() {
    let dir = tempfile::tempdir().unwrap();
    let out = Test::in_dir(repo())
        .arg("--db")
        .arg(dir.path().join("s.db"))
        .args(["replay", "fixtures/2026-03-onboarding/"])
        .terminal(250)
        .status(1)
        .stdout_has("SOURCE")
        .stdout_has("fixtures/2026-03-onboarding/00-product-created.json")
        .stdout_lacks("not shown")
        .run();
    out.screen.unwrap().assert_fits();
}

/// On a pipe nothing is cut, whatever `COLUMNS` says: full event ids and
/// SOURCE, ready for `grep`.
#[test]
fn replay_on_a_pipe_cuts_nothing_whatever_columns_says() {
    let dir = tempfile::tempdir().unwrap();
    Test::in_dir(repo())
        .env("COLUMNS", "40")
        .arg("--db")
        .arg(dir.path().join("s.db"))
        .args(["replay", "fixtures/"])
        .status(1)
        .stdout_has("SOURCE")
        .stdout_has("evt_1YE59yRkT3sQ8vLmowi9hyek")
        .stdout_has("fixtures/2026-03-onboarding/00-product-created.json")
        .stdout_has("user_24DqvypdTaxjEZmCRfl01cQzv24")
        .stdout_lacks("…")
        .stdout_lacks("event:    ")
        .stderr_has("45 events: 29 sync, 11 ignored, 1 rejected, 3 unresolved, 1 duplicate")
        .stderr_lacks("not shown")
        .run();
}

#[test]
fn inspect_fits_every_width() {
    let (_dir, db) = replayed_store();
    for cols in WIDTHS {
        let out = Test::in_dir(repo())
            .arg("--db")
            .arg(&db)
            .arg("inspect")
            .terminal(cols)
            .stdout_has("cus_1gIHnbN8OoIW0c")
            .run();
        let text = fitted(&out);
        match cols {
            40 => assert!(text.contains("customer: cus_1gIHnbN8OoIW0c\n"), "{text}"),
            _ => assert!(text.contains("USER "), "{text}"),
        }
        insta::assert_snapshot!(format!("inspect_{cols}"), text);
    }
}

/// A user id that looks like a Clerk id: `user_2` and 27 letters and digits.
fn clerk_id(i: usize) -> String {
    let alnum = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789";
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let tail: String = (0..27)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            alnum[(x % alnum.len() as u64) as usize] as char
        })
        .collect();
    format!("user_2{tail}")
}

/// 55 customers with Stripe-length ids, each with an active subscription:
/// more than the 50 that `resync` lists in full.
fn account() -> Account {
    let mut a = Account::new();
    for i in 0..55 {
        let customer = format!("cus_R{i:02}kq2nP0wXz1L");
        a.add_customer(json!({"id": customer, "email": format!("u{i}@example.com"),
            "metadata": {"clerkUserId": clerk_id(i)}, "created": 1_700_000_000 + i as i64}));
        a.add_payment_method(json!({"id": format!("pm_{i}"), "customer": customer,
            "card": {"brand": "visa", "last4": "4242"}}));
        a.add_subscription(json!({"id": format!("sub_1Qx{i:02}"), "customer": customer,
            "status": "active", "created": 1_700_000_100 + i as i64, "price": "price_1PqRstUvWxYz",
            "default_payment_method": format!("pm_{i}"),
            "current_period_start": 1_767_225_600, "current_period_end": 1_769_904_000}));
    }
    a
}

/// Behind the store's back: one subscription changes in every field a user
/// sees, one only in status, and a new customer appears.
fn drift(fake: &FakeStripe) {
    let mut s = fake.subscription("sub_1Qx07").unwrap();
    s["status"] = json!("past_due");
    fake.upsert_subscription(s);
    fake.upsert_payment_method(json!({"id": "pm_new", "customer": "cus_R03kq2nP0wXz1L",
        "card": {"brand": "mastercard", "last4": "4444"}}));
    fake.upsert_subscription(json!({"id": "sub_1Qx03", "customer": "cus_R03kq2nP0wXz1L",
        "status": "canceled", "price": "price_9ZyXwVuTsRqP", "cancel_at_period_end": true,
        "default_payment_method": "pm_new",
        "current_period_start": 1_769_904_000, "current_period_end": 1_772_582_400}));
    fake.upsert_customer(
        json!({"id": "cus_Znew0wXz1Lmkq2", "email": "new@example.com",
        "metadata": {"clerkUserId": clerk_id(99)}, "created": 1_700_001_000}),
    );
}

#[test]
fn resync_fits_every_width() {
    for cols in WIDTHS {
        let fake = FakeStripe::start(account());
        let dir = tempfile::tempdir().unwrap();
        Test::in_dir(dir.path())
            .args(["resync", "--all"])
            .fake(&fake)
            .stdout_has("55 customers: 55 changed (55 new), 0 failed")
            .stderr_has("55 customers: 55 changed (55 new), 0 failed")
            .run();
        drift(&fake);
        let check = Test::in_dir(dir.path())
            .args(["resync", "--all", "--check"])
            .fake(&fake)
            .terminal(cols)
            .status(1)
            .stdout_has("56 customers: 3 drifted (1 new),")
            .run();
        let mut text = fitted(&check);
        let unwrapped = text.replace("\n  ", " ");
        assert!(
            unwrapped.contains("56 customers: 3 drifted (1 new), 0 failed;"),
            "{text}"
        );
        // The changed customers are listed, whole (a Stripe customer id
        // is never cut: a block takes over first); what is not listed is
        // counted on a line that fits.
        for customer in ["cus_R03kq2nP0wXz1L", "cus_R07kq2nP0wXz1L"] {
            assert!(text.contains(customer), "{customer} at {cols}:\n{text}");
        }
        assert!(
            unwrapped.contains(" customers not listed; --all-rows or --json lists all)"),
            "{text}"
        );
        // Most important first: the status is never the part cut off.
        match cols {
            40 => assert!(text.contains("drift:    status, price, period,"), "{text}"),
            60 | 80 => assert!(text.contains("  canceled  status, p"), "{text}"),
            _ => assert!(
                text.contains("  canceled  status, price, period, cancel"),
                "{text}"
            ),
        }
        if cols == 120 {
            // The ids are whole; DRIFT gives way.
            assert!(text.contains(&clerk_id(3)), "{text}");
        }
        let write = Test::in_dir(dir.path())
            .args([
                "resync",
                "--customer",
                "cus_R03kq2nP0wXz1L",
                "--customer",
                "cus_R07kq2nP0wXz1L",
            ])
            .fake(&fake)
            .terminal(cols)
            .stdout_has("2 customers: 2 changed (0 new),")
            .run();
        text.push_str("---\n");
        text.push_str(&fitted(&write));
        insta::assert_snapshot!(format!("resync_{cols}"), text);
    }
}

#[test]
fn audit_fits_every_width() {
    let (dir, db) = replayed_store();
    let app = dir.path().join("app.csv");
    std::fs::write(
        &app,
        "user_id,customer_id,status,price_id\n\
         user_23q4rvzWDYkqJ0g9tlqhv8lWozr,cus_1gIHnbN8OoIW0c,active,price_1QtPro\n\
         user_24DqvypdTaxjEZmCRfl01cQzv24,cus_SfClaTlRZe2I0c,active,price_1QtPro\n\
         user_2CI80QcZ1aQ0h5PVTmIf17n1DS,cus_iRVVPNjHoKAHeU,canceled,price_1QtPro\n\
         user_2ZZZnotAUserOfStripeAtAll00,,active,\n",
    )
    .unwrap();
    for cols in WIDTHS {
        let out = Test::in_dir(dir.path())
            .arg("--db")
            .arg(&db)
            .args(["audit", "app.csv"])
            .terminal(cols)
            .status(1)
            .stdout_has("unpaid")
            .run();
        insta::assert_snapshot!(format!("audit_{cols}"), fitted(&out));
    }
}

#[test]
fn verify_fits_every_width() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let payload = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid","created":1767225590,"data":{"object":{}}}"#;
    std::fs::write(d.join("payload.json"), payload).unwrap();
    std::fs::write(d.join("edited.json"), format!("{payload}\n")).unwrap();
    let header = Test::in_dir(d)
        .args([
            "sign",
            "--secret",
            "whsec_test_secret",
            "--timestamp",
            "1767225590",
        ])
        .arg("payload.json")
        .stdout_has("t=1767225590,v1=")
        .run()
        .stdout
        .trim()
        .to_owned();
    for cols in WIDTHS {
        let mut text = String::new();
        for (file, secret, now, status) in [
            ("payload.json", "whsec_test_secret", "1767225595", 0),
            ("edited.json", "whsec_test_secret", "1767225595", 1),
            ("payload.json", "whsec_another_endpoint", "1767225595", 1),
            ("payload.json", "whsec_test_secret", "1796000000", 1),
        ] {
            let out = Test::in_dir(d)
                .args([
                    "verify",
                    "--secret",
                    secret,
                    "--signature",
                    &header,
                    "--now",
                    now,
                ])
                .arg(file)
                .terminal(cols)
                .status(status)
                .stdout_has("valid")
                .run();
            text.push_str(&fitted(&out));
            text.push_str("---\n");
        }
        insta::assert_snapshot!(format!("verify_{cols}"), text);
    }
}

/// `inspect --csv` (the `csv` crate): metadata's control characters are
/// escaped as in the table (an email holding an OSC title sequence must not
/// retitle the terminal), a text cell a spreadsheet would run as a formula
/// gets a leading `'`, and numbers stay numbers.
#[test]
fn inspect_csv_escapes_controls_and_defuses_formulas() {
    let fake = FakeStripe::start(
        Account::new()
            .customer(json!({"id": "cus_Csv0wXz1Lmkq2n", "email": "a\u{1b}]0;pwned\u{7}@x.io",
                "metadata": {"clerkUserId": "=HYPERLINK(\"http://x.io\")"}, "created": 1_700_000_000}))
            .subscription(json!({"id": "sub_csv", "customer": "cus_Csv0wXz1Lmkq2n",
                "status": "active", "created": 1_700_000_100, "price": "-price",
                "current_period_start": 1_767_225_600, "current_period_end": 1_769_904_000})),
    );
    let dir = tempfile::tempdir().unwrap();
    Test::in_dir(dir.path())
        .args(["resync", "--customer", "cus_Csv0wXz1Lmkq2n"])
        .fake(&fake)
        .stdout_has("1 customer: 1 changed (1 new), 0 failed;")
        .stderr_has("1 customer: 1 changed (1 new), 0 failed;")
        .run();
    let out = Test::in_dir(dir.path())
        .args(["inspect", "--csv"])
        .stdout_lacks("\u{1b}")
        .stdout_lacks("\u{7}")
        .stdout_has("a\\u{1b}]0;pwned\\u{7}@x.io")
        .run();
    let mut csv = csv::Reader::from_reader(out.stdout.as_bytes());
    let header = csv.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{}", out.stdout);
    let field = |name: &str| {
        let i = header.iter().position(|h| h == name).unwrap();
        rows[0][i].to_owned()
    };
    assert_eq!(field("user_id"), "'=HYPERLINK(\"http://x.io\")");
    assert_eq!(field("email"), "a\\u{1b}]0;pwned\\u{7}@x.io");
    assert_eq!(field("price_id"), "'-price");
    assert_eq!(field("current_period_start"), "1767225600");
    assert_eq!(field("current_period_end"), "1769904000");
    assert_eq!(field("customer_id"), "cus_Csv0wXz1Lmkq2n");
}
