//! `resync --events`: catching up from Stripe's event log, against the fake
//! Stripe's own event log (tests/support/fake_stripe.rs).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Output, cmd_in, json, run, tempdir};
use crate::support::fake_stripe::{Account, FakeStripe, Fault};

/// `stripe-sync resync ARGS` against the fake (also `order.rs`'s).
pub(crate) fn resync(dir: &Path, fake: &FakeStripe, args: &[&str]) -> Output {
    run(cmd_in(dir)
        .env("STRIPE_API_KEY", fake.api_key())
        .env("STRIPE_SYNC_TEST_BACKOFF_MS", "0")
        .args(["resync", "--max-rps", "100", "--api-base", &fake.url()])
        .args(args))
}

/// `inspect --json` as comparable rows (without the sync time and source).
fn rows(dir: &Path) -> Vec<Value> {
    let out = run(cmd_in(dir).args(["inspect", "--json"]));
    assert!(out.status <= 1, "{}", out.stderr);
    let mut v: Vec<Value> = json(&out.stdout).as_array().cloned().unwrap_or_default();
    for r in &mut v {
        let o = r.as_object_mut().unwrap();
        o.remove("synced_at");
        o.remove("source");
    }
    v.sort_by_key(|r| r["customer_id"].as_str().unwrap_or("").to_owned());
    v
}

fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn account() -> Account {
    let now = real_now();
    Account::new()
        .customer(json!({"id": "cus_a", "email": "a@x.io", "metadata": {"clerkUserId": "user_a"}, "created": now - 1000}))
        .customer(json!({"id": "cus_b", "email": "b@x.io", "metadata": {"clerkUserId": "user_b"}, "created": now - 900}))
        .customer(json!({"id": "cus_c", "email": "c@x.io", "metadata": {"clerkUserId": "user_c"}, "created": now - 800}))
        .subscription(json!({"id": "sub_a", "customer": "cus_a", "status": "active", "created": now - 990, "price": "price_pro"}))
        .subscription(json!({"id": "sub_b", "customer": "cus_b", "status": "active", "created": now - 890, "price": "price_pro"}))
        .subscription(json!({"id": "sub_c", "customer": "cus_c", "status": "trialing", "created": now - 790, "price": "price_pro"}))
}

/// The changes behind the store's back: a cancellation, a new customer
/// with a user id and a subscription, a deleted customer.
fn change(fake: &FakeStripe) {
    fake.cancel_subscription("sub_a");
    fake.upsert_customer(
        json!({"id": "cus_new", "email": "n@x.io", "metadata": {"clerkUserId": "user_new"}}),
    );
    fake.upsert_subscription(
        json!({"id": "sub_new", "customer": "cus_new", "status": "active", "price": "price_pro"}),
    );
    fake.delete_customer("cus_c");
}

#[test]
fn events_bring_the_store_to_what_a_fresh_backfill_says_within_the_bound() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    let out = resync(dir.path(), &fake, &["--all", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    change(&fake);
    // The 18 sync_events and the 3 customer events pass Stripe's limit of
    // 20 types: everything is listed (customer.deleted included), and
    // filtered here.
    let listed_events = fake.events().len() as u64;
    assert_eq!(listed_events, 5);

    fake.reset_counters();
    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("error:"), "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["events"]["listed"], listed_events, "{v}");
    assert_eq!(v["events"]["gap"], false);
    assert!(v["events"]["checkpoint"]["id"].is_string(), "{v}");
    // The bound: ceil(E/100) list requests, one subscription request per
    // affected customer, one customer request per customer the store does
    // not know, and one more for a customer left without a live
    // subscription (deleted, or only canceled?).
    let affected = 3; // cus_a (canceled), cus_new (new), cus_c (deleted)
    let unknown = 1; // cus_new
    let without_live = 2; // cus_a, cus_c
    let bound = listed_events.div_ceil(100) + affected + unknown + without_live;
    let used = v["summary"]["api_requests"].as_u64().unwrap();
    assert_eq!(used, fake.request_count() as u64);
    assert!(used <= bound, "{used} requests, bound {bound}");
    assert_eq!(fake.count_path("/v1/events"), 1);
    let listing = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/events")
        .unwrap();
    assert_eq!(listing.query_param("types[]"), None, "unfiltered");

    // The store now says what a fresh backfill says.
    let fresh = tempdir();
    let out = resync(fresh.path(), &fake, &["--all", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    // A deleted customer's stub names no user; the caught-up store keeps
    // whose it was (a fresh one cannot know). Everything else is equal.
    let forget = |mut v: Vec<Value>| {
        for r in &mut v {
            if r["deleted"] == true {
                r["user_id"] = Value::Null;
                r["email"] = Value::Null;
            }
        }
        v
    };
    assert_eq!(forget(rows(dir.path())), forget(rows(fresh.path())));
    let by_id = rows(dir.path());
    let row = |id: &str| {
        by_id
            .iter()
            .find(|r| r["customer_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("cus_a")["status"], "canceled");
    assert_eq!(row("cus_new")["user_id"], "user_new");
    assert_eq!(row("cus_new")["status"], "active");
    assert_eq!(row("cus_c")["status"], "deleted");

    // A second catch-up finds nothing new: 0 customers, 1 request.
    fake.reset_counters();
    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["summary"]["customers"], 0, "{v}");
    assert_eq!(v["summary"]["api_requests"], 1, "{v}");
    assert_eq!(fake.request_count(), 1);
}

#[test]
fn events_in_the_same_second_as_the_checkpoint_are_neither_lost_nor_repeated() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    // Every change from here on happens in one second.
    let second = real_now() + 2;
    fake.set_clock(Some(second));
    fake.cancel_subscription("sub_a");
    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["events"]["sync"], 1, "{v}");
    assert_eq!(v["events"]["checkpoint"]["created"], second);
    // Same second, a later event.
    fake.cancel_subscription("sub_b");
    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["events"]["listed"], 2, "both events of that second: {v}");
    assert_eq!(
        v["events"]["duplicate"], 1,
        "the first is not processed twice: {v}"
    );
    assert_eq!(v["events"]["sync"], 1, "the second is not lost: {v}");
    let r = rows(dir.path());
    assert_eq!(
        r.iter().find(|x| x["customer_id"] == "cus_b").unwrap()["status"],
        "canceled"
    );
}

#[test]
fn no_checkpoint_is_a_usage_error_and_since_starts_anyway() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    let out = resync(dir.path(), &fake, &["--events"]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("run `stripe-sync resync --all` first"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--since"), "{}", out.stderr);
    assert_eq!(fake.request_count(), 0, "refused before any request");

    let out = resync(dir.path(), &fake, &["--events", "--since", "yesterday"]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--since"), "{}", out.stderr);

    fake.cancel_subscription("sub_b");
    let out = resync(dir.path(), &fake, &["--events", "--since", "1h", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(json(&out.stdout)["events"]["sync"], 1);
}

#[test]
fn a_start_beyond_stripes_retention_is_a_gap() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    let out = resync(dir.path(), &fake, &["--events", "--since", "40d", "--json"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["events"]["gap"], true, "{v}");
    assert!(v["events"]["gap_span"].is_array());
    assert!(
        out.stderr.contains("events may be missing"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("resync --all"), "{}", out.stderr);
}

#[test]
fn events_replayed_from_files_are_duplicates_and_check_writes_nothing() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    fake.cancel_subscription("sub_b");
    // The same events, saved as a file and replayed first.
    let list = json!({"object": "list", "data": fake.events(), "has_more": false});
    std::fs::write(dir.path().join("events.json"), list.to_string()).unwrap();
    let out = run(cmd_in(dir.path()).args(["replay", "events.json", "--json"]));
    assert_eq!(out.status, 0, "{}", out.stderr);

    // --check: the drift since the checkpoint, nothing written.
    let db = dir.path().join("stripe-sync.db");
    let before = std::fs::read(&db).unwrap();
    let out = resync(dir.path(), &fake, &["--events", "--check", "--json"]);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "--check writes nothing"
    );
    let v = json(&out.stdout);
    assert_eq!(
        v["events"]["duplicate"], 1,
        "already replayed from the file: {v}"
    );
    assert_eq!(out.status, 0, "{}", out.stderr);

    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["events"]["duplicate"], 1, "{v}");
    assert_eq!(v["summary"]["customers"], 0, "{v}");
}

#[test]
fn check_reports_drift_since_the_checkpoint() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    fake.cancel_subscription("sub_b");
    let out = resync(dir.path(), &fake, &["--events", "--check", "--json"]);
    assert_eq!(out.status, 1, "drift: {}", out.stderr);
    let v = json(&out.stdout);
    let drifted: Vec<&Value> = v["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["changed"] == true)
        .collect();
    assert_eq!(drifted.len(), 1, "{v}");
    assert_eq!(drifted[0]["customer_id"], "cus_b");
    assert_eq!(drifted[0]["diff"]["status"]["stripe"], "canceled");
}

#[test]
fn follow_picks_up_a_change_and_stops_on_sigterm() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("stripe-sync"))
        .current_dir(dir.path())
        .env_clear()
        .env("STRIPE_API_KEY", fake.api_key())
        .env("STRIPE_SYNC_TEST_BACKOFF_MS", "0")
        .args([
            "resync",
            "--events",
            "--follow",
            "--interval",
            "1",
            "--json",
        ])
        .args(["--api-base", &fake.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it poll once, then change something.
    let t0 = Instant::now();
    while fake.count_path("/v1/events") < 1 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    fake.cancel_subscription("sub_c");
    let t0 = Instant::now();
    loop {
        let r = rows(dir.path());
        if r.iter()
            .any(|x| x["customer_id"] == "cus_c" && x["status"] == "canceled")
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the change was not picked up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // One JSON document per poll that found something, one per line: the
    // change. Quiet polls (nothing listed, or only the checkpoint's own
    // second again) print nothing.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let docs: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(fake.count_path("/v1/events") >= 2);
    assert_eq!(docs.len(), 1, "{stdout}");
    assert_eq!(docs[0]["events"]["sync"], 1, "{stdout}");
    assert_eq!(docs[0]["customers"][0]["customer_id"], "cus_c", "{stdout}");
    assert_eq!(
        stderr.trim_end(),
        "following Stripe's event log every 1 s (SIGTERM or Ctrl-C stops)"
    );
}

/// A `resync --events --follow` running in the background; its stderr is
/// read as it comes, so a test can wait for what it says.
struct Follower {
    child: std::process::Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// `Follower::finish`: how it ended.
struct Ended {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Follower {
    /// One second of the follower's backoff lasts `unit_ms` (see
    /// `STRIPE_SYNC_TEST_FOLLOW_UNIT_MS`); the client retries at once.
    fn start(dir: &Path, base: &str, key: &str, unit_ms: u32, args: &[&str]) -> Follower {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("stripe-sync"))
            .current_dir(dir)
            .env_clear()
            .env("STRIPE_API_KEY", key)
            .env("STRIPE_SYNC_TEST_BACKOFF_MS", "0")
            .env("STRIPE_SYNC_TEST_FOLLOW_UNIT_MS", unit_ms.to_string())
            .args(["resync", "--events", "--follow", "--interval", "1"])
            .args(["--max-rps", "100", "--api-base", base])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Follower {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait (up to 20 s) until `done` holds; fail if the follower ends first.
    fn wait_until(&mut self, what: &str, done: impl Fn(&Follower) -> bool) {
        let t0 = Instant::now();
        while !done(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "the follower ended ({status}) before {what}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "not within 20 s: {what}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until stderr says `text`.
    fn wait_for(&mut self, text: &str) {
        self.wait_until(&format!("stderr says {text:?}"), |f| {
            f.stderr().contains(text)
        });
    }

    fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Wait (up to `within`) for the follower to end.
    fn finish(mut self, within: Duration) -> Ended {
        let t0 = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if t0.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("still running after {within:?}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        Ended {
            status: status.code(),
            stdout,
            stderr: self.stderr(),
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        // A failed test leaves no follower behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const FOLLOWING: &str = "following Stripe's event log every 1 s (SIGTERM or Ctrl-C stops)";
const WAITING: &str = "warning: waiting for the Stripe API: ";
const BACK: &str = "the Stripe API answers again (after ";

/// stderr as lines, each with what it starts with checked, in order.
fn assert_lines(stderr: &str, starts: &[&str]) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), starts.len(), "{stderr}");
    for (line, start) in lines.iter().zip(starts) {
        assert!(
            line.starts_with(start),
            "{line:?} should start {start:?}:\n{stderr}"
        );
    }
}

fn status_of(dir: &Path, customer: &str) -> Option<String> {
    rows(dir)
        .iter()
        .find(|r| r["customer_id"] == customer)
        .and_then(|r| r["status"].as_str().map(str::to_owned))
}

#[test]
fn follow_waits_out_an_api_that_goes_away_and_picks_up_what_happened_meanwhile() {
    let mut fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    let base = fake.url();
    let mut f = Follower::start(dir.path(), &base, fake.api_key(), 20, &["--json"]);
    f.wait_until("the first poll", |_| fake.count_path("/v1/events") >= 1);

    // Connection refused: the old follower exited 2 here.
    fake.go_away();
    f.wait_for(WAITING);
    // Several tries while away (20 ms doubling to 1.2 s), said once.
    std::thread::sleep(Duration::from_millis(700));
    fake.cancel_subscription("sub_c");
    fake.come_back();
    f.wait_for(BACK);
    f.wait_until("cus_c canceled in the store", |_| {
        status_of(dir.path(), "cus_c").as_deref() == Some("canceled")
    });
    f.signal("TERM");
    let out = f.finish(Duration::from_secs(10));

    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_lines(&out.stderr, &[FOLLOWING, WAITING, BACK]);
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);
    assert!(out.stderr.contains(&base), "names the API: {}", out.stderr);
    assert!(!out.stderr.contains(fake.api_key()), "{}", out.stderr);
    // One document: the poll that found the change; the polls before and
    // after it found nothing new and printed nothing.
    let docs: Vec<Value> = out.stdout.lines().map(json).collect();
    assert_eq!(docs.len(), 1, "{}", out.stdout);
    assert_eq!(docs[0]["events"]["sync"], 1);
    assert_eq!(docs[0]["customers"][0]["customer_id"], "cus_c");
}

#[test]
fn follow_waits_for_an_api_unreachable_at_start_and_quiet_polls_print_nothing() {
    let mut fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    let base = fake.url();
    fake.go_away();
    // Without --follow an unreachable API is still status 2 at once.
    let out = run(cmd_in(dir.path())
        .env("STRIPE_API_KEY", fake.api_key())
        .env("STRIPE_SYNC_TEST_BACKOFF_MS", "0")
        .args(["resync", "--events", "--api-base", &base]));
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with(&format!("error: cannot reach the Stripe API at {base}")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);

    // A follower waits, in human mode too.
    let mut f = Follower::start(dir.path(), &base, fake.api_key(), 20, &[]);
    f.wait_for(WAITING);
    fake.come_back();
    f.wait_for(BACK);
    fake.reset_counters();
    f.wait_until("two more polls", |_| fake.count_path("/v1/events") >= 2);
    f.signal("TERM");
    let out = f.finish(Duration::from_secs(10));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "", "quiet polls print nothing");
    assert_lines(&out.stderr, &[FOLLOWING, WAITING, BACK]);
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);
}

#[test]
fn follow_waits_out_5xx_saying_so_once_and_a_refused_key_stops_it() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    fake.push_fault(Fault::status(500).on_path("/v1/events").forever());
    let mut f = Follower::start(dir.path(), &fake.url(), fake.api_key(), 20, &[]);
    // Three polls, each the first try and 5 retries.
    f.wait_until("three failed polls", |_| {
        fake.count_path("/v1/events") >= 18
    });
    fake.clear_faults();
    f.wait_for(BACK);
    fake.cancel_subscription("sub_a");
    f.wait_until("cus_a canceled in the store", |_| {
        status_of(dir.path(), "cus_a").as_deref() == Some("canceled")
    });
    // The key is revoked: that is not waited out.
    fake.push_fault(Fault::status(401).forever());
    let out = f.finish(Duration::from_secs(20));
    assert_eq!(out.status, Some(2), "{}", out.stderr);
    let stderr = &out.stderr;
    assert_lines(
        stderr,
        &[
            FOLLOWING,
            WAITING,
            BACK,
            "error: Stripe did not accept the API key (HTTP 401",
        ],
    );
    assert!(stderr.contains("Stripe answered HTTP 500"), "{stderr}");
    assert!(!stderr.contains(fake.api_key()), "{stderr}");
    // Human output: the one poll that found something.
    assert!(
        out.stdout.starts_with("1 event listed: 1 sync"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("cus_a"), "{}", out.stdout);
}

#[test]
fn a_key_refused_at_start_stops_a_follower_at_once() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    // 403: a restricted key without the permission to list events.
    fake.push_fault(Fault::status(403).forever());
    let out = Follower::start(dir.path(), &fake.url(), fake.api_key(), 20, &[])
        .finish(Duration::from_secs(10));
    assert_eq!(out.status, Some(2), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_lines(&out.stderr, &[FOLLOWING, "error: Stripe answered HTTP 403"]);
    assert_eq!(fake.count_path("/v1/events"), 1, "not retried");
}

#[test]
fn sigterm_and_ctrl_c_end_a_follower_that_is_waiting() {
    let mut fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    let base = fake.url();
    fake.go_away();
    // Real seconds of backoff: the signal comes while it sleeps.
    for (signal, status) in [("TERM", 0), ("INT", 130)] {
        let mut f = Follower::start(dir.path(), &base, fake.api_key(), 1000, &["--json"]);
        f.wait_for(WAITING);
        let sent = Instant::now();
        f.signal(signal);
        let out = f.finish(Duration::from_secs(10));
        assert!(sent.elapsed() < Duration::from_secs(5), "{signal}");
        assert_eq!(out.status, Some(status), "{signal}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{signal}");
        match status {
            0 => assert_lines(&out.stderr, &[FOLLOWING, WAITING]),
            _ => assert_lines(
                &out.stderr,
                &[
                    FOLLOWING,
                    WAITING,
                    "error: interrupted: the store is consistent",
                ],
            ),
        }
    }
}

#[test]
fn sigterm_ends_a_follower_whose_request_hangs() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    // Longer than the client's 30 s timeout, and retried: minutes in all.
    fake.push_fault(
        Fault::Timeout(Duration::from_secs(120))
            .on_path("/v1/events")
            .forever(),
    );
    let mut f = Follower::start(dir.path(), &fake.url(), fake.api_key(), 20, &[]);
    f.wait_until("the listing hangs", |_| fake.count_path("/v1/events") >= 1);
    std::thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    f.signal("TERM");
    let out = f.finish(Duration::from_secs(10));
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_lines(&out.stderr, &[FOLLOWING]);
}

#[test]
fn follow_from_since_without_a_checkpoint_starts_each_poll_where_the_last_ended() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    let since = real_now() - 1;
    let since_arg = since.to_string();
    let mut f = Follower::start(
        dir.path(),
        &fake.url(),
        fake.api_key(),
        20,
        &["--since", &since_arg, "--json"],
    );
    // The old follower asked for a checkpoint at its second poll (exit 2).
    f.wait_until("three polls", |_| fake.count_path("/v1/events") >= 3);
    fake.cancel_subscription("sub_b");
    f.wait_until("cus_b canceled in the store", |_| {
        status_of(dir.path(), "cus_b").as_deref() == Some("canceled")
    });
    let polls_then = fake.count_path("/v1/events");
    f.wait_until("a poll after the change", |_| {
        fake.count_path("/v1/events") > polls_then
    });
    f.signal("TERM");
    let out = f.finish(Duration::from_secs(10));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_lines(&out.stderr, &[FOLLOWING]);
    let docs: Vec<Value> = out.stdout.lines().map(json).collect();
    assert_eq!(docs.len(), 1, "{}", out.stdout);
    assert_eq!(docs[0]["events"]["sync"], 1);
    let created = fake.events()[0]["created"].as_i64().unwrap();
    assert_eq!(docs[0]["events"]["checkpoint"]["created"], created);

    // Every poll starts at --since until an event is processed, then at it.
    let starts: Vec<i64> = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/events")
        .map(|r| r.query_param("created[gte]").unwrap().parse().unwrap())
        .collect();
    let first_at_event = starts.iter().position(|&s| s == created).unwrap();
    assert!(first_at_event >= 3, "{starts:?}");
    assert!(
        starts[..first_at_event].iter().all(|&s| s == since),
        "{starts:?}"
    );
    assert!(
        starts[first_at_event..].iter().all(|&s| s == created),
        "{starts:?}"
    );
}

#[test]
fn customer_events_are_always_asked_for_including_customer_deleted() {
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    // Few enough types for Stripe's filter: the customer events are added.
    std::fs::write(
        dir.path().join("stripe-sync.toml"),
        "sync_events = [\"customer.subscription.deleted\", \"invoice.paid\"]\n",
    )
    .unwrap();
    assert_eq!(resync(dir.path(), &fake, &["--all"]).status, 0);
    fake.delete_customer("cus_c");
    fake.reset_counters();
    let out = resync(dir.path(), &fake, &["--events", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let listing = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/events")
        .unwrap();
    let types: Vec<String> = listing
        .query_params()
        .into_iter()
        .filter(|(k, _)| k == "types[]")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        types,
        [
            "customer.subscription.deleted",
            "invoice.paid",
            "customer.created",
            "customer.updated",
            "customer.deleted"
        ]
    );
    // The deletion: the subscription's end and the customer's, both listed.
    let v = json(&out.stdout);
    assert_eq!(v["events"]["listed"], 2, "{v}");
}
