//! The human output, as a person sees it on a terminal 80 and 120 columns
//! wide: a change in look is a reviewed change (`cargo insta review`, or
//! INSTA_UPDATE=always). Every line fits its width and none ends in a space.

use std::path::Path;

use serde_json::json;

use crate::common::redact_times;
use crate::common::tempdir;
use crate::harness::{Output, Test};
use crate::support::fake_stripe::{Account, FakeStripe};

const WIDTHS: [u16; 2] = [80, 120];

fn check_fits(text: &str, width: usize) {
    for line in text.lines() {
        let cells = unicode_width(line);
        assert!(cells <= width, "wider than {width} ({cells}): {line:?}");
        assert!(!line.ends_with(' '), "trailing space: {line:?}");
    }
}

/// Display width without pulling a crate into the tests: every char here
/// is one cell (the output holds no wide characters).
fn unicode_width(s: &str) -> usize {
    s.chars().count()
}

/// The screen a run left (stdout and stderr both drawn on the terminal),
/// checked to fit, with the status.
fn screen(out: &Output) -> String {
    let screen = out.screen.as_ref().expect("a terminal");
    screen.assert_fits();
    check_fits(&screen.text(), usize::from(screen.cols));
    format!(
        "status: {}\n--- screen\n{}",
        out.status,
        redact_times(&screen.text())
    )
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

#[test]
fn replay_and_inspect_at_80_and_120() {
    for width in WIDTHS {
        let dir = tempdir();
        let out = Test::in_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
            .env("STRIPE_SYNC_DB", dir.path().join("s.db"))
            .args([
                "replay",
                "fixtures/2026-03-onboarding/09-edsger-signup.json",
                "fixtures/2026-04-billing/",
            ])
            .terminal(width)
            .status(1)
            .stdout_has("16 events: 13 sync, 1 ignored, 1 rejected, 1 unresolved")
            .run();
        insta::assert_snapshot!(format!("replay_{width}"), screen(&out));

        Test::in_dir(dir.path())
            .args(["--db", "s.db", "replay"])
            .arg(fixtures())
            .status(1)
            .stdout_has("45 events: ")
            .stderr_has("45 events: ")
            .run();
        let out = Test::in_dir(dir.path())
            .args(["--db", "s.db", "inspect"])
            .terminal(width)
            .stdout_has("cus_1gIHnbN8OoIW0c")
            .run();
        insta::assert_snapshot!(format!("inspect_{width}"), screen(&out));
    }
}

#[test]
fn verify_at_80_and_120() {
    let dir = tempdir();
    let payload = dir.path().join("payload.json");
    std::fs::write(
        &payload,
        r#"{"id":"evt_1","object":"event","type":"invoice.paid","created":1767225590,"data":{"object":{}}}"#,
    )
    .unwrap();
    let sign = Test::in_dir(dir.path())
        .args([
            "sign",
            "--secret",
            "whsec_test_secret",
            "--timestamp",
            "1767225590",
            "payload.json",
        ])
        .stdout_has("t=1767225590,v1=")
        .run();
    let header = sign.stdout.trim().to_owned();
    let mut with_newline = std::fs::read(&payload).unwrap();
    with_newline.push(b'\n');
    std::fs::write(dir.path().join("edited.json"), with_newline).unwrap();
    for width in WIDTHS {
        let mut text = String::new();
        for (file, now, status) in [
            ("payload.json", "1767225595", 0),
            ("edited.json", "1767225595", 1),
            ("payload.json", "1796000000", 1),
        ] {
            let out = Test::in_dir(dir.path())
                .args([
                    "verify",
                    "--secret",
                    "whsec_test_secret",
                    "--signature",
                    &header,
                    "--now",
                    now,
                    file,
                ])
                .terminal(width)
                .status(status)
                .stdout_has("valid")
                .run();
            text.push_str(&screen(&out));
        }
        insta::assert_snapshot!(format!("verify_{width}"), text);
    }
}

#[test]
fn resync_at_80_and_120() {
    let account = Account::new()
        .customer(json!({"id": "cus_QXg1o8vcGmoR32", "email": "ada@example.com", "metadata": {"clerkUserId": "user_2abcdefghijklmnopqrstuvwx"}, "created": 1_700_000_000}))
        .customer(json!({"id": "cus_B7kq2nP0wXz1Lm", "email": "grace@example.com", "metadata": {"clerkUserId": "user_2bcdefghijklmnopqrstuvwxy"}, "created": 1_700_000_100}))
        .subscription(json!({"id": "sub_1", "customer": "cus_QXg1o8vcGmoR32", "status": "active", "created": 1_700_000_020, "price": "price_pro"}))
        .subscription(json!({"id": "sub_2", "customer": "cus_B7kq2nP0wXz1Lm", "status": "trialing", "created": 1_700_000_120, "price": "price_pro"}));
    for width in WIDTHS {
        let fake = FakeStripe::start(account.clone());
        let dir = tempdir();
        let resync = |args: &[&str], status: i32, says: &str| {
            Test::in_dir(dir.path())
                .env("STRIPE_API_KEY", fake.api_key())
                .args(["resync", "--api-base", &fake.url()])
                .args(args)
                .terminal(width)
                .status(status)
                .stdout_has(says)
                .run()
        };
        let mut text = screen(&resync(
            &["--all", "--all-rows"],
            0,
            "2 customers: 2 changed (2 new), 0 failed",
        ));
        let mut changed = fake.subscription("sub_2").unwrap();
        changed["status"] = json!("past_due");
        fake.upsert_subscription(changed);
        let check = resync(&["--all", "--check"], 1, "2 customers: 1 drifted");
        text.push_str(&screen(&check));
        text.push_str(&screen(&resync(
            &["--customer", "cus_doesnotexist"],
            1,
            "cus_doesnotexist",
        )));
        insta::assert_snapshot!(format!("resync_{width}"), text);
    }
}

#[test]
fn times_are_redacted_and_nothing_else() {
    assert_eq!(redact_times("in 11 ms\n"), "in [t] ms\n");
    // A slow run's seconds read as a quick run's milliseconds.
    assert_eq!(redact_times("retries, 0.4 s\n"), "retries, [t] ms\n");
    assert_eq!(redact_times("requests, 1.2 s\n"), "requests, [t] ms\n");
    assert_eq!(redact_times("(12 ms)\n"), "([t] ms)\n");
    assert_eq!(redact_times("45 events: 29 sync\n"), "45 events: 29 sync\n");
    assert_eq!(redact_times("tolerance of 300 s;"), "tolerance of 300 s;");
    assert_eq!(redact_times("5 s old"), "5 s old");
}
