//! Verification throughput for a 2.5 KB event, beside the bound set by
//! HMAC-SHA256 itself on the same bytes (issue 12: >= 90% of that bound).
//! Run: cargo bench --bench verify
//!
//! The cases run in interleaved rounds and each reports its median round, so
//! that other work on the machine slows all of them alike. Without `--bench`
//! (as `cargo test --benches` runs it) every case runs once, as a smoke test.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stripe_sync::secret::Secret;
use stripe_sync::signature;

const SECRET: &str = "whsec_bench_0123456789abcdef0123456789abcdef";
const T: i64 = 1_767_225_590;
/// Issue 12: at least 90% of the HMAC bound of this machine.
const GOAL_SHARE: f64 = 0.90;

fn payload_2_5k() -> Vec<u8> {
    let mut p = String::from(
        "{\n  \"id\": \"evt_1PgcMqB7WZ01zgkW0tOsZ8Ja\",\n  \"object\": \"event\",\n  \"api_version\": \"2025-06-30.basil\",\n  \"created\": 1767225590,\n  \"type\": \"invoice.paid\",\n  \"data\": {\n    \"object\": {\n      \"id\": \"in_1PgcMqB7WZ01zgkW\",\n      \"object\": \"invoice\",\n      \"lines\": [",
    );
    while p.len() < 2_480 {
        p.push_str(
            "\n        {\"id\": \"il_1PgcMqB7WZ01\", \"amount\": 2000, \"currency\": \"usd\"},",
        );
    }
    p.push_str("\n      ]\n    }\n  }\n}");
    p.truncate(2_560);
    p.into_bytes()
}

struct Case<'a> {
    name: &'static str,
    run: Box<dyn FnMut() + 'a>,
    rates: Vec<f64>,
}

/// Nanoseconds this thread has spent runnable but waiting for a CPU that
/// other processes held (Linux's schedstat; accounted whenever the thread
/// gets a CPU back, so exact at any moment the thread is running).
fn thread_wait_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Calls per second of `f` over about `span` of the thread's own running
/// time: the wall clock less the time spent waiting for a CPU, where the
/// system reports that (its running-time counter itself only moves at
/// scheduler ticks, too coarse for rounds this short).
fn rate(f: &mut dyn FnMut(), span: Duration) -> f64 {
    let mut calls = 0u64;
    let mut batch = 64u64;
    let start = Instant::now();
    let wait_start = thread_wait_ns();
    loop {
        for _ in 0..batch {
            f();
        }
        calls += batch;
        let elapsed = start.elapsed();
        let waited = match (wait_start, thread_wait_ns()) {
            (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
            _ => Duration::ZERO,
        };
        let running = elapsed.saturating_sub(waited);
        if running >= span {
            return calls as f64 / running.as_secs_f64();
        }
        batch = (batch * 2).min(4096);
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let payload = payload_2_5k();
    let secret = Secret::new(SECRET);
    let header = signature::sign(&secret, T, &payload).header;
    let secrets = [secret.clone()];
    assert!(signature::verify(&payload, &header, &secrets, 300, T).valid);
    let keyed = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    let signed_prefix = format!("{T}.");

    let verifier = signature::Verifier::new(&secrets, 300);
    assert!(verifier.verify(&payload, &header, T).valid);

    let mut cases = [
        Case {
            name: "verify 2.5 KB (Verifier, keyed once)",
            run: Box::new(|| {
                black_box(verifier.verify(black_box(&payload), black_box(&header), T));
            }),
            rates: Vec::new(),
        },
        Case {
            name: "verify 2.5 KB (signature::verify)",
            run: Box::new(|| {
                black_box(signature::verify(
                    black_box(&payload),
                    black_box(&header),
                    &secrets,
                    300,
                    T,
                ));
            }),
            rates: Vec::new(),
        },
        Case {
            name: "HMAC-SHA256 bound (keyed once, same body)",
            run: Box::new(|| {
                let mut mac = keyed.clone();
                mac.update(signed_prefix.as_bytes());
                mac.update(black_box(&payload));
                black_box(mac.finalize().into_bytes());
            }),
            rates: Vec::new(),
        },
        Case {
            name: "sign 2.5 KB (signature::sign)",
            run: Box::new(|| {
                black_box(signature::sign(&secret, T, black_box(&payload)));
            }),
            rates: Vec::new(),
        },
    ];

    if !measure {
        for case in &mut cases {
            (case.run)();
        }
        return;
    }
    let clock = match thread_wait_ns() {
        Some(_) => "the thread's running time",
        None => "the wall clock",
    };
    println!("rates by {clock}; median of interleaved rounds");
    let rounds = 40;
    let span = Duration::from_millis(100);
    for _ in 0..rounds {
        for case in &mut cases {
            case.rates.push(rate(&mut *case.run, span));
        }
    }
    // Each case's share of the bound is taken round by round (the two ran
    // moments apart), then the median: steadier than a ratio of medians
    // while other work on the machine comes and goes. Other work only ever
    // slows a round down, so the best rounds show the code's own speed.
    let [keyed_once, _, hmac, _] = &cases;
    let best = |rates: &[f64]| rates.iter().copied().fold(0.0, f64::max);
    let paired_share = |case: &Case| {
        let shares: Vec<f64> = case
            .rates
            .iter()
            .zip(&hmac.rates)
            .map(|(r, b)| r / b)
            .collect();
        median(&shares)
    };
    let best_share = |case: &Case| best(&case.rates) / best(&hmac.rates);
    println!(
        "{:<44} {:>10} {:>8}  {:>8}  {:>10}",
        "", "median", "", "share", "best-round"
    );
    for case in &cases {
        let r = median(&case.rates);
        println!(
            "{:<44} {:>9.0}/s {:>6.2} µs  {:>7.1}%  {:>9.1}%",
            case.name,
            r,
            1e6 / r,
            100.0 * paired_share(case),
            100.0 * best_share(case)
        );
    }
    // The 540,000/s is 90% of the bound it measured (about 600,000/s
    // with SHA-NI); the bound measured here stands in for it on any machine.
    let verdict = match (paired_share(keyed_once), best_share(keyed_once)) {
        (median, _) if median >= GOAL_SHARE => "met".to_owned(),
        (median, best) if best >= GOAL_SHARE => format!(
            "met in the best rounds; {:.1}% in the median one (a busy machine?)",
            100.0 * median
        ),
        _ => "missed".to_owned(),
    };
    println!(
        "verify 2.5 KB: {:.0}/s, {:.1}% of the HMAC bound {:.0}/s (goal >= {:.0}% of it: \
         issue 12's 540,000/s of 600,000/s): {verdict}",
        median(&keyed_once.rates),
        100.0 * paired_share(keyed_once),
        median(&hmac.rates),
        100.0 * GOAL_SHARE,
    );
}
