//! kill -9 at random moments: the store stays intact, no customer is half
//! written, and a rerun ends with exactly the store of an uninterrupted run.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::common::tempdir;
use crate::harness::{Output, Running, Test, show};
use crate::replay::fixture_events;
use crate::support::fake_stripe::{Account, FakeStripe};

/// Deterministic "random" delays (xorshift), so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The fixtures, cloned `copies` times under fresh event, customer and
/// subscription ids: a replay long enough to be killed in the middle.
fn many_events(copies: usize) -> String {
    let base = fixture_events();
    let mut out = String::new();
    for k in 0..copies {
        for line in &base {
            let line = line
                .replace("\"evt_", &format!("\"evt_{k}x"))
                .replace("\"cus_", &format!("\"cus_{k}x"))
                .replace("\"sub_", &format!("\"sub_{k}x"));
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// `replay events.ndjson` in `dir`: one rejected checkout per copy of the
/// fixtures, so it ends with 1; each decision on stdout, the tally on stderr.
fn replay(dir: &Path) -> Test {
    Test::in_dir(dir)
        .args(["replay", "events.ndjson"])
        .status(1)
        .stdout_has("evt_0x1YE59yRkT3sQ8vLmowi9hyek")
        .stderr_has(" events: ")
        .stderr_has(" rejected")
}

/// `resync --all ARGS` in `dir` with `key` (the caller states what it prints).
fn resync(dir: &Path, key: &str, args: &[&str]) -> Test {
    Test::in_dir(dir)
        .env("STRIPE_API_KEY", key)
        .args(["resync", "--all"])
        .args(args)
}

/// `inspect --json` of `db` in `dir` without the per-run `synced_at` (as
/// `crate::replay::mapping`, which expects nothing on stderr): the fixtures
/// cloned under new customer ids give one user many customers, which
/// `inspect` warns about on stderr.
fn mapping(dir: &Path, db: &str) -> serde_json::Value {
    let out = Test::in_dir(dir)
        .args(["inspect", "--json", "--db", db])
        .stdout_json()
        .stderr_with(
            "nothing, or the warning about users with several customers",
            |e| {
                e.is_empty()
                    || e.lines()
                        .all(|l| l.starts_with("warning: ") && l.contains("more than one customer"))
            },
        )
        .run();
    let mut v = out.json();
    for row in v.as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("synced_at");
    }
    v
}

/// SIGKILL at once: nothing of the binary's own runs, so there is no status
/// or stream to expect (only that it never panicked before).
fn kill_9(running: Running) {
    let out = running.kill();
    assert!(!out.stderr.contains("panicked"), "{}", show(&out));
}

#[test]
fn replay_survives_twenty_kills() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("events.ndjson"), many_events(120)).unwrap();
    let reference = tempdir();
    std::fs::copy(
        d.join("events.ndjson"),
        reference.path().join("events.ndjson"),
    )
    .unwrap();
    let t = Instant::now();
    replay(reference.path()).run();
    let full = t.elapsed();

    let mut rng = Rng(0x5eed_1234);
    let mut killed_mid_run = 0;
    for _ in 0..20 {
        let running = replay(d).spawn();
        // The random moment of the kill is the subject of the test.
        let wait = rng.below(full.as_millis().max(20) as u64);
        std::thread::sleep(Duration::from_millis(wait));
        if still_running(&running) {
            killed_mid_run += 1;
        }
        kill_9(running);
        if d.join("stripe-sync.db").exists() {
            crate::common::integrity(&d.join("stripe-sync.db"));
        }
    }
    assert!(
        killed_mid_run >= 10,
        "only {killed_mid_run} kills landed mid-run"
    );
    let out = replay(d).run();
    assert!(out.status <= 1, "{}", out.stderr);
    crate::common::integrity(&d.join("stripe-sync.db"));
    assert_eq!(
        mapping(d, "stripe-sync.db"),
        mapping(reference.path(), "stripe-sync.db")
    );
}

/// Whether the binary has not exited yet (a zombie, not yet waited for, has).
fn still_running(running: &Running) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", running.pid())).unwrap_or_default();
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

#[test]
fn backfill_survives_twenty_kills() {
    let fake = FakeStripe::builder()
        .account(Account::generate(700, 800, 4))
        .latency(Duration::from_millis(15))
        .start();
    let key = fake.api_key().to_owned();
    let base = fake.url();
    let args = ["--max-rps", "200", "--api-base", base.as_str()];
    let backfill = |dir: &Path| {
        resync(dir, &key, &args)
            .stdout_has(" customers: ")
            .stderr_has(" customers: ")
            .stderr_has(" 0 failed")
    };
    let reference = tempdir();
    let t = Instant::now();
    let out = backfill(reference.path()).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    let full = t.elapsed();

    let dir = tempdir();
    let d = dir.path();
    let mut rng = Rng(0xdead_beef);
    for _ in 0..20 {
        let running = backfill(d).spawn();
        // The random moment of the kill is the subject of the test.
        std::thread::sleep(Duration::from_millis(
            rng.below(full.as_millis().max(20) as u64),
        ));
        kill_9(running);
        if d.join("stripe-sync.db").exists() {
            crate::common::integrity(&d.join("stripe-sync.db"));
        }
    }
    let out = backfill(d).run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    crate::common::integrity(&d.join("stripe-sync.db"));
    assert_eq!(
        mapping(d, "stripe-sync.db"),
        mapping(reference.path(), "stripe-sync.db")
    );
}

#[test]
fn replay_and_resync_share_a_store() {
    let fake = FakeStripe::builder()
        .account(Account::generate(300, 300, 8))
        .latency(Duration::from_millis(5))
        .start();
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("events.ndjson"), many_events(40)).unwrap();
    let key = fake.api_key().to_owned();
    let base = fake.url();
    let children = vec![
        replay(d).spawn(),
        resync(d, &key, &["--max-rps", "100", "--api-base", &base])
            .stdout_has(" customers: ")
            .stderr_has(" customers: ")
            .spawn(),
        replay(d).spawn(),
    ];
    for c in children {
        let out: Output = c.finish();
        assert!(matches!(out.status, 0 | 1), "{:?}", out.status);
    }
    crate::common::integrity(&d.join("stripe-sync.db"));
    // Everything both sources describe is there.
    let m = mapping(d, "stripe-sync.db");
    assert_eq!(m.as_array().unwrap().len(), 300 + 6 * 40);
}

#[test]
fn ctrl_c_stops_a_backfill_with_130_and_it_resumes() {
    let fake = FakeStripe::builder()
        .account(Account::generate(600, 600, 12))
        .latency(Duration::from_millis(80))
        .start();
    let key = fake.api_key().to_owned();
    let base = fake.url();
    let dir = tempdir();
    let d = dir.path();
    let mut running = resync(d, &key, &["--max-rps", "100", "--api-base", &base])
        .status(130)
        .stderr_has("interrupted")
        .spawn();
    running
        .wait_until("3 requests to the API", Duration::from_secs(20), |_| {
            fake.request_count() >= 3
        })
        .signal(Signal::INT);
    let out = running.finish();
    assert_eq!(out.status, 130, "{}", out.stderr);
    assert!(out.stderr.contains("interrupted"));
    crate::common::integrity(&d.join("stripe-sync.db"));
    let out = resync(d, &key, &["--json", "--api-base", &base])
        .stdout_json()
        .stderr_has("resuming")
        .run();
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stderr.contains("resuming"), "{}", out.stderr);
}
