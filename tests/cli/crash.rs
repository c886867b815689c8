//! kill -9 at random moments: the store stays intact, no customer is half
//! written, and a rerun ends with exactly the store of an uninterrupted run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{cmd_in, run, tempdir};
use crate::replay::{fixture_events, mapping};
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

fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("stripe-sync"));
    c.current_dir(dir)
        .env_remove("STRIPE_SYNC_DB")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
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
    run(cmd_in(reference.path()).args(["replay", "events.ndjson"]));
    let full = t.elapsed();

    let mut rng = Rng(0x5eed_1234);
    let mut killed_mid_run = 0;
    for _ in 0..20 {
        let mut child = spawn(d, &["replay", "events.ndjson"], &[]);
        let wait = rng.below(full.as_millis().max(20) as u64);
        std::thread::sleep(Duration::from_millis(wait));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if d.join("stripe-sync.db").exists() {
            crate::common::integrity(&d.join("stripe-sync.db"));
        }
    }
    assert!(
        killed_mid_run >= 10,
        "only {killed_mid_run} kills landed mid-run"
    );
    let out = run(cmd_in(d).args(["replay", "events.ndjson"]));
    assert!(out.status <= 1, "{}", out.stderr);
    crate::common::integrity(&d.join("stripe-sync.db"));
    assert_eq!(
        mapping(d, "stripe-sync.db"),
        mapping(reference.path(), "stripe-sync.db")
    );
}

#[test]
fn backfill_survives_twenty_kills() {
    let fake = FakeStripe::builder()
        .account(Account::generate(700, 800, 4))
        .latency(Duration::from_millis(15))
        .start();
    let key = fake.api_key().to_owned();
    let base = fake.url();
    let args = [
        "resync",
        "--all",
        "--max-rps",
        "200",
        "--api-base",
        base.as_str(),
    ];
    let reference = tempdir();
    let t = Instant::now();
    let out = run(cmd_in(reference.path())
        .env("STRIPE_API_KEY", &key)
        .args(args));
    assert_eq!(out.status, 0, "{}", out.stderr);
    let full = t.elapsed();

    let dir = tempdir();
    let d = dir.path();
    let mut rng = Rng(0xdead_beef);
    for _ in 0..20 {
        let mut child = spawn(d, &args, &[("STRIPE_API_KEY", &key)]);
        std::thread::sleep(Duration::from_millis(
            rng.below(full.as_millis().max(20) as u64),
        ));
        child.kill().unwrap();
        child.wait().unwrap();
        if d.join("stripe-sync.db").exists() {
            crate::common::integrity(&d.join("stripe-sync.db"));
        }
    }
    let out = run(cmd_in(d).env("STRIPE_API_KEY", &key).args(args));
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
        spawn(d, &["replay", "events.ndjson"], &[]),
        spawn(
            d,
            &["resync", "--all", "--max-rps", "100", "--api-base", &base],
            &[("STRIPE_API_KEY", &key)],
        ),
        spawn(d, &["replay", "events.ndjson"], &[]),
    ];
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "{:?}",
            out.status
        );
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
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("stripe-sync"));
    c.current_dir(d)
        .env("STRIPE_API_KEY", &key)
        .env_remove("STRIPE_SYNC_DB")
        .args(["resync", "--all", "--max-rps", "100", "--api-base", &base])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let t0 = Instant::now();
    while fake.request_count() < 3 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    crate::common::integrity(&d.join("stripe-sync.db"));
    let out = run(cmd_in(d).env("STRIPE_API_KEY", &key).args([
        "resync",
        "--all",
        "--json",
        "--api-base",
        &base,
    ]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stderr.contains("resuming"), "{}", out.stderr);
}
