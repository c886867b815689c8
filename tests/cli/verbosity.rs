//! `-vv` request logs and `--color` / `NO_COLOR`, through the binary.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::common::tempdir;
use crate::harness::{Output, Test};
use crate::support::fake_stripe::{Account, FakeStripe, Fault, FaultRule, RecordedRequest};

fn account() -> Account {
    Account::new()
        .customer(
            json!({"id": "cus_a", "metadata": {"clerkUserId": "user_a"}, "created": 1_700_000_000}),
        )
        .customer(
            json!({"id": "cus_b", "metadata": {"clerkUserId": "user_b"}, "created": 1_700_000_100}),
        )
        .payment_method(
            json!({"id": "pm_a", "customer": "cus_a", "card": {"brand": "visa", "last4": "4242"}}),
        )
        .subscription(
            json!({"id": "sub_a", "customer": "cus_a", "status": "active", "created": 1_700_000_020,
            "price": "price_pro", "default_payment_method": "pm_a"}),
        )
}

/// `resync --api-base FAKE ARGS` in `dir`: a run that ends with its
/// summary on stderr (`N customers: ..., N failed; N API requests, ...`).
fn resync(dir: &Path, fake: &FakeStripe, args: &[&str]) -> Test {
    Test::in_dir(dir)
        .env("STRIPE_API_KEY", fake.api_key())
        .args(["resync", "--api-base", &fake.url()])
        .args(args)
        .stderr_has(" failed; ")
}

/// The `debug: ` lines of stderr.
fn debug_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("debug: "))
        .collect()
}

/// What the log line of `r` starts with: method, path and decoded query
/// (the queries here hold nothing to escape), the status and the
/// `Request-Id`; the time and any retry note follow.
fn expected_start(r: &RecordedRequest) -> String {
    let mut target = r.path.clone();
    for (i, (k, v)) in r.query_params().iter().enumerate() {
        target.push(if i == 0 { '?' } else { '&' });
        target.push_str(&format!("{k}={v}"));
    }
    format!("GET {target} → {} {} ", r.status, r.request_id)
}

/// `N ms` or `N.N s`, then nothing or a note in parentheses.
fn assert_time_then_note(rest: &str, line: &str) {
    let (time, note) = match rest.split_once(" (") {
        Some((time, note)) => (time, Some(note)),
        None => (rest, None),
    };
    let number = time
        .strip_suffix(" ms")
        .or_else(|| time.strip_suffix(" s"))
        .unwrap_or_else(|| panic!("no time in {line:?}"));
    assert!(
        !number.is_empty() && number.chars().all(|c| c.is_ascii_digit() || c == '.'),
        "{line:?}"
    );
    if let Some(note) = note {
        assert!(note.ends_with(')'), "{line:?}");
    }
}

/// Each request the fake saw has exactly one line, and each line one request.
fn assert_one_line_per_request(stderr: &str, fake: &FakeStripe) {
    let mut lines = debug_lines(stderr);
    let requests = fake.requests();
    assert!(!requests.is_empty());
    assert_eq!(lines.len(), requests.len(), "{stderr}");
    for r in &requests {
        let start = expected_start(r);
        let retry = lines
            .iter()
            .position(|l| {
                // A retried request carries "(retry N)" before the arrow.
                let l = l.trim_start_matches("debug: ");
                let unmarked = match l.split_once(" (retry ") {
                    Some((head, tail)) if !head.contains('→') => {
                        tail.split_once(") ").map(|(_, t)| format!("{head} {t}"))
                    }
                    _ => None,
                };
                unmarked.as_deref().unwrap_or(l).starts_with(&start)
            })
            .unwrap_or_else(|| panic!("no line starts with {start:?} in\n{stderr}"));
        let line = lines.remove(retry);
        let rest = line
            .rsplit_once(&format!(" {} ", r.request_id))
            .expect(line)
            .1;
        assert_time_then_note(rest, line);
    }
}

#[test]
fn vv_logs_one_line_per_request_and_never_the_key() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    let out = resync(dir.path(), &fake, &["--customer", "cus_a", "-vv"])
        .stdout_has("cus_a")
        .stderr_has("debug: GET ")
        .run();
    assert_one_line_per_request(&out.stderr, &fake);
    let subscriptions = debug_lines(&out.stderr)
        .into_iter()
        .find(|l| l.contains("/v1/subscriptions"))
        .expect("a subscription read");
    assert!(
        subscriptions.starts_with(
            "debug: GET /v1/subscriptions?customer=cus_a&status=all&limit=1&expand[]=data.default_payment_method&expand[]=data.customer → 200 req_"
        ),
        "{subscriptions}"
    );
    assert!(out.stdout.contains("cus_a"), "{}", out.stdout);
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(fake.api_key()), "the key: {text}");
        assert!(!text.to_lowercase().contains("bearer"), "a header: {text}");
        assert!(!text.contains('\u{1b}'), "colour on a pipe: {text}");
    }
}

#[test]
fn vv_marks_retries_and_keeps_stdout_json() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    fake.push_fault(
        FaultRule::new(Fault::Status {
            code: 429,
            should_retry: Some(true),
            retry_after: None,
        })
        .on_path("/v1/customers/cus_b"),
    );
    let out = resync(dir.path(), &fake, &["--customer", "cus_b", "--json", "-vv"])
        .stdout_json()
        .stderr_has("(retry 1) →")
        .run();
    let v = out.json();
    assert_eq!(v["summary"]["retries"], 1);
    assert_one_line_per_request(&out.stderr, &fake);
    let lines = debug_lines(&out.stderr);
    let failed = lines
        .iter()
        .find(|l| l.contains("→ 429 "))
        .expect("the 429");
    assert!(
        failed.starts_with("debug: GET /v1/customers/cus_b → 429 req_")
            && failed.ends_with(" (retry 1 in 0 ms)"),
        "{failed}"
    );
    let retried = lines
        .iter()
        .find(|l| l.contains("(retry 1) →"))
        .expect("the retry");
    assert!(
        retried.starts_with("debug: GET /v1/customers/cus_b (retry 1) → 200 req_")
            && !retried.ends_with(')'),
        "{retried}"
    );
    assert!(!out.stderr.contains(fake.api_key()));
}

#[test]
fn without_vv_no_request_lines() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    for args in [&["--customer", "cus_a"][..], &["--customer", "cus_a", "-v"]] {
        let before = fake.request_count();
        let out = resync(dir.path(), &fake, args)
            .stdout_has("cus_a")
            .stderr_lacks("debug:")
            .stderr_lacks("/v1/")
            .run();
        assert!(fake.request_count() > before, "{args:?} asked the API");
        assert!(out.stdout.contains("cus_a"), "{}", out.stdout);
        assert!(!out.stderr.contains("debug:"), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("/v1/"), "{args:?}: {}", out.stderr);
    }
}

// ---------------------------------------------------------------------------
// --color and NO_COLOR (stdout and stderr are pipes here, so `auto` is off)
// ---------------------------------------------------------------------------

const ESC: char = '\u{1b}';

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `replay fixtures/` (exit 1: one rejected event) with extra arguments and env.
fn replay(dir: &Path, args: &[&str], no_color: bool) -> Output {
    let mut c = Test::in_dir(dir);
    if no_color {
        c = c.env("NO_COLOR", "1");
    }
    c.args(["replay", "--dry-run"])
        .args(args)
        .arg(fixtures())
        .status(1)
        .stdout_has("rejected")
        .stderr_has("would sync 6 customers")
        .run()
}

#[test]
fn replay_colours_only_when_asked() {
    let dir = tempdir();
    let always = replay(dir.path(), &["--color", "always"], false);
    assert_eq!(always.status, 1, "{}", always.stderr);
    assert!(
        always.stdout.contains("\u{1b}[31m"),
        "red rejected: {}",
        always.stdout
    );

    // --color always wins over NO_COLOR.
    let both = replay(dir.path(), &["--color", "always"], true);
    assert_eq!(both.status, 1);
    assert!(both.stdout.contains("\u{1b}[31m"), "{}", both.stdout);

    for (args, no_color) in [
        (&["--color", "never"][..], false),
        (&["--color", "never"], true),
        (&[], false),
        (&[], true),
        (&["--color", "auto"], true),
    ] {
        let out = replay(dir.path(), args, no_color);
        assert_eq!(out.status, 1, "{}", out.stderr);
        assert!(out.stdout.contains("rejected"), "{}", out.stdout);
        assert!(
            !out.stdout.contains(ESC) && !out.stderr.contains(ESC),
            "{args:?} NO_COLOR={no_color}: {}{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn verify_colours_only_when_asked() {
    let dir = tempdir();
    let payload = fixtures().join("2026-04-billing/02-alan-seats-applied.json");
    // Every verdict: status 1, `invalid` on stdout, nothing on stderr.
    let verify = |args: &[&str], no_color: bool| {
        let mut c = Test::in_dir(dir.path());
        if no_color {
            c = c.env("NO_COLOR", "1");
        }
        c.args(["verify", "--secret", "whsec_colour_test"])
            .args(["--signature", "t=1,v1=00"])
            .args(args)
            .arg(&payload)
            .status(1)
            .stdout_has("invalid")
            .run()
    };
    let always = verify(&["--color", "always"], false);
    assert_eq!(always.status, 1, "{}", always.stderr);
    assert!(
        always.stdout.contains("\u{1b}[31minvalid\u{1b}[0m"),
        "{}",
        always.stdout
    );
    assert_eq!(verify(&["--color", "always"], true).stdout, always.stdout);
    for (args, no_color) in [
        (&["--color", "never"][..], false),
        (&[], true),
        (&[], false),
    ] {
        let out = verify(args, no_color);
        assert_eq!(out.status, 1, "{}", out.stderr);
        assert!(out.stdout.contains("invalid"), "{}", out.stdout);
        assert!(
            !out.stdout.contains(ESC) && !out.stderr.contains(ESC),
            "{args:?} NO_COLOR={no_color}: {}{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn stderr_colours_with_always_too() {
    let dir = tempdir();
    // A usage error goes through the Printer's `error:` on stderr.
    Test::in_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(["resync", "--customer", "cus_a", "--color", "always"])
        .status(2)
        .stderr_has("\u{1b}[31merror:\u{1b}[0m")
        .run();
    let out = Test::in_dir(dir.path())
        .args(["resync", "--customer", "cus_a"])
        .status(2)
        .stderr_has("error: ")
        .stderr_lacks(ESC)
        .run();
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(!out.stderr.contains(ESC), "{}", out.stderr);
}

#[test]
fn inspect_colours_only_when_asked() {
    let dir = tempdir();
    // One rejected event: status 1.
    Test::in_dir(dir.path())
        .arg("replay")
        .arg(fixtures())
        .status(1)
        .stdout_has("45 events: ")
        .stderr_has("45 events: ")
        .run();
    // Every table: status 0, Edsger's past_due on stdout, nothing on stderr.
    let inspect = |args: &[&str], no_color: bool| {
        let mut c = Test::in_dir(dir.path());
        if no_color {
            c = c.env("NO_COLOR", "1");
        }
        c.arg("inspect").args(args).stdout_has("past_due").run()
    };
    // Edsger is past_due in the fixtures: yellow.
    for no_color in [false, true] {
        let out = inspect(&["--color", "always"], no_color);
        assert_eq!(out.status, 0, "{}", out.stderr);
        assert!(
            out.stdout.contains("\u{1b}[33mpast_due\u{1b}[0m"),
            "NO_COLOR={no_color}: {}",
            out.stdout
        );
    }
    for (args, no_color) in [
        (&["--color", "never"][..], false),
        (&[], true),
        (&[], false),
    ] {
        let out = inspect(args, no_color);
        assert_eq!(out.status, 0, "{}", out.stderr);
        assert!(out.stdout.contains("past_due"), "{}", out.stdout);
        assert!(
            !out.stdout.contains(ESC) && !out.stderr.contains(ESC),
            "{args:?} NO_COLOR={no_color}: {}{}",
            out.stdout,
            out.stderr
        );
    }
}
