//! The routing config and the options that change it (`--user-key`), and the
//! option values clap refuses before any work starts: status 2, nothing on
//! stdout, and a message that says what to pass instead.

use std::fs;

use crate::common::tempdir;
use crate::harness::Test;

const EVENT: &str = r#"{"id": "evt_1", "object": "event", "type": "charge.succeeded", "created": 1,
 "data": {"object": {"id": "ch_1", "object": "charge"}}}"#;

#[test]
fn blank_user_key_in_the_config_file_is_status_2_naming_the_key() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("e.json"), EVENT).unwrap();
    fs::write(d.join("stripe-sync.toml"), "user_key = \"\"\n").unwrap();
    Test::in_dir(d)
        .args(["replay", "--dry-run", "e.json"])
        .status(2)
        .stdout("")
        .stderr("error: bad config stripe-sync.toml: `user_key` is blank: set it to the metadata key that holds the app's user id, or drop the line for the default `clerkUserId`\n")
        .run();

    // The same through --config, and for resync (before any API key is asked for).
    fs::create_dir(d.join("conf")).unwrap();
    fs::write(d.join("conf/routing.toml"), "user_key = \"   \"\n").unwrap();
    let out = Test::in_dir(d)
        .args([
            "--config",
            "conf/routing.toml",
            "resync",
            "--customer",
            "cus_1",
        ])
        .status(2)
        .stdout("")
        .stderr_has("`user_key` is blank")
        .run();
    assert!(
        out.stderr
            .starts_with("error: bad config conf/routing.toml: `user_key` is blank"),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_sync_event_types_warn_with_a_suggestion() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("e.json"), EVENT).unwrap();
    fs::write(
        d.join("stripe-sync.toml"),
        "sync_events = [\"invoice.paidd\", \"charge.succeeded\", \"subscription.deleted\"]\n",
    )
    .unwrap();
    let out = Test::in_dir(d)
        .args(["replay", "--dry-run", "--json", "e.json"])
        .stdout_json()
        .stderr_has("warning: stripe-sync.toml: sync_events: `invoice.paidd`")
        .stderr_has("1 event: 1 unresolved")
        .run();
    let v = out.json();
    assert_eq!(v["summary"]["events"], 1);
    // Tracked (not `ignored`): charge.succeeded is listed, though this charge has no customer.
    assert_eq!(v["events"][0]["route"], "unresolved");
    // The warnings, then the run's one-line summary (stdout is not a terminal).
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(
        warnings,
        [
            "warning: stripe-sync.toml: sync_events: `invoice.paidd` is not a Stripe event type (did you mean `invoice.paid`?)",
            "warning: stripe-sync.toml: sync_events: `subscription.deleted` is not a Stripe event type (did you mean `customer.subscription.deleted`?)"
        ]
    );
    assert_eq!(out.stderr.lines().count(), 3, "{}", out.stderr);
    assert!(
        out.stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("1 event: 1 unresolved"),
        "{}",
        out.stderr
    );
    // --quiet hides warnings.
    Test::in_dir(d)
        .args(["-q", "replay", "--dry-run", "--json", "e.json"])
        .stdout_json()
        .stderr("")
        .run();
}

#[test]
fn blank_user_key_flag_is_a_usage_error() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("e.json"), EVENT).unwrap();
    let cases: [&[&str]; 4] = [
        &["replay", "--dry-run", "--user-key", "", "e.json"],
        &["replay", "--dry-run", "--user-key=  ", "e.json"],
        &["resync", "--customer", "cus_1", "--user-key", ""],
        &["resync", "--all", "--user-key="],
    ];
    for args in cases {
        let out = Test::in_dir(d)
            .args(args)
            .status(2)
            .stdout("")
            .stderr_has("' for '--user-key <KEY>': the user key must not be blank: name the metadata key that holds the app's user id (for example clerkUserId)\n")
            .run();
        assert!(
            out.stderr.starts_with("error: invalid value '")
                && out.stderr.contains(
                    "' for '--user-key <KEY>': the user key must not be blank: name the metadata key that holds the app's user id (for example clerkUserId)\n"
                ),
            "{args:?}: {}",
            out.stderr
        );
    }
    // A real key is accepted.
    Test::in_dir(d)
        .args(["replay", "--dry-run", "--user-key", "appUserId", "e.json"])
        .stdout_has("1 event: 1 ignored")
        .stderr_has("1 event: 1 ignored")
        .run();
}

#[test]
fn dry_run_and_forward_to_exclude_each_other() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("e.json"), EVENT).unwrap();
    let out = Test::in_dir(d)
        .args([
            "replay",
            "--dry-run",
            "--forward-to",
            "http://127.0.0.1:9/stripe",
            "--secret",
            "whsec_test",
            "e.json",
        ])
        .status(2)
        .stdout("")
        .stderr_has("cannot be used with")
        .stderr_lacks("whsec_test")
        .run();
    assert!(
        out.stderr.starts_with(
            "error: the argument '--dry-run' cannot be used with '--forward-to <URL>'"
        ),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("whsec_test"),
        "no secret in an error message"
    );
}

#[test]
fn max_rps_and_max_retries_are_range_checked() {
    let dir = tempdir();
    let d = dir.path();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--max-rps", "0"],
            "error: invalid value '0' for '--max-rps <N>': must be a number above 0 (requests per second)\n",
        ),
        (
            &["--max-rps=-3"],
            "error: invalid value '-3' for '--max-rps <N>': must be a number above 0 (requests per second)\n",
        ),
        (
            &["--max-rps", "inf"],
            "error: invalid value 'inf' for '--max-rps <N>': must be a number above 0 (requests per second)\n",
        ),
        (
            &["--max-rps", "fast"],
            "error: invalid value 'fast' for '--max-rps <N>': invalid float literal: expected a number above 0 (requests per second)\n",
        ),
        (
            &["--max-retries", "21"],
            "error: invalid value '21' for '--max-retries <N>': 21 is not in 0..=20\n",
        ),
    ];
    for (extra, first_line) in cases {
        let out = Test::in_dir(d)
            .env("STRIPE_API_KEY", "sk_test_never_used")
            .args(["resync", "--customer", "cus_1"])
            .args(extra)
            .status(2)
            .stdout("")
            .stderr_has(first_line)
            .run();
        assert!(
            out.stderr.starts_with(first_line),
            "{extra:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn help_texts_say_what_dry_run_and_check_do() {
    let dir = tempdir();
    let out = Test::in_dir(dir.path())
        .args(["replay", "--help"])
        .stdout_has("--dry-run")
        .stderr("")
        .run();
    let flat = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Route and resolve only; write nothing, send nothing; the summary says what a real run would do (would sync)"),
        "{}",
        out.stdout
    );
    let out = Test::in_dir(dir.path())
        .args(["resync", "--help"])
        .stdout_has("--check")
        .stderr("")
        .run();
    let flat = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Fetch and compare exactly as the real run would, write nothing; list differences; exit 1 on any drift"),
        "{}",
        out.stdout
    );
}
