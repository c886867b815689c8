//! replay --forward-to against a local endpoint that verifies every signature
//! with the project's own verifier.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use stripe_sync::secret::Secret;
use stripe_sync::signature;

use crate::common::{keys, tempdir};
use crate::harness::Test;

const SECRET: &str = "whsec_forward_test_3c1d";

/// Body, whether its signature verified, headers.
type Received = (Vec<u8>, bool, HeaderMap);

#[derive(Clone, Default)]
struct Seen {
    bodies: Arc<Mutex<Vec<Received>>>,
}

struct Endpoint {
    url: String,
    seen: Seen,
    _rt: tokio::runtime::Runtime,
}

/// What the endpoint says to a delivery whose signature does not verify
/// (Stripe's libraries' words), with status 400.
const REJECTED: &str = "No signatures found matching the expected signature for payload";

/// An endpoint answering `status` after `delay`, recording what it got.
fn endpoint(status: u16, delay: Duration) -> Endpoint {
    endpoint_answering(status, delay, "ok")
}

/// An endpoint answering `status` and `answer` after `delay` to a delivery
/// whose signature verifies (400 and [`REJECTED`] to one that does not),
/// recording what it got.
fn endpoint_answering(status: u16, delay: Duration, answer: &'static str) -> Endpoint {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let seen = Seen::default();
    let state = seen.clone();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                tokio::time::sleep(delay).await;
                let sig = headers
                    .get("stripe-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let now = stripe_sync::commands::unix_now();
                let valid = signature::verify(&body, sig, &[Secret::new(SECRET)], 300, now).valid;
                state
                    .bodies
                    .lock()
                    .unwrap()
                    .push((body.to_vec(), valid, headers));
                match valid {
                    true => (StatusCode::from_u16(status).unwrap(), answer),
                    false => (StatusCode::BAD_REQUEST, REJECTED),
                }
            }
        }),
    );
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Endpoint {
        url: format!("http://{addr}/hook"),
        seen,
        _rt: rt,
    }
}

/// The warning and error lines on stderr (its summary line is not one).
fn complaints(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("warning:") || l.starts_with("error:") || l.contains("panicked"))
        .collect()
}

/// No warning or error line on stderr.
fn no_complaints(stderr: &str) -> bool {
    complaints(stderr).is_empty()
}

/// `replay` in `dir`, for the test to add arguments and state what it
/// prints.
fn replay(dir: &std::path::Path) -> Test {
    Test::in_dir(dir).arg("replay")
}

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

#[test]
fn delivers_signed_exact_bytes_in_order() {
    let ep = endpoint(200, Duration::ZERO);
    let dir = tempdir();
    // A pretty-printed single event, an array element, and an NDJSON line.
    let single =
        std::fs::read(fixtures().join("2026-03-onboarding/00-product-created.json")).unwrap();
    std::fs::copy(
        fixtures().join("2026-03-onboarding/00-product-created.json"),
        dir.path().join("a.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("b.json"), "[ {\"id\":\"evt_b1\",\"object\":\"event\",\"type\":\"x.y\",\"created\":1,\"data\":{\"object\":{}}} ,\n  {\"id\": \"evt_b2\", \"object\": \"event\", \"type\": \"x.y\", \"created\": 2, \"data\": {\"object\": {\"n\": \"\\u00e9\"}}}]").unwrap();
    std::fs::write(dir.path().join("c.ndjson"), "{\"id\":\"evt_c1\",\"object\":\"event\",\"type\":\"x.y\",\"created\":3,\"data\":{\"object\":{}}}\n").unwrap();
    let out = replay(dir.path())
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .args([
            "--json",
            "--forward-to",
            &ep.url,
            "-H",
            "X-Test: yes",
            "a.json",
            "b.json",
            "c.ndjson",
        ])
        .stdout_json()
        .stdout_lacks(SECRET)
        .stderr_has("forwarded 4 events: 4 answered 2xx, 0 failed")
        .stderr_lacks(SECRET)
        .run();
    let v = out.json();
    assert_eq!(v["summary"]["forwarded"], 4);
    assert_eq!(v["summary"]["forward_failures"], 0);
    assert_eq!(v["summary"]["customers_synced"], 0);
    assert_eq!(v["events"][0]["forward"]["status"], 200);
    assert!(v["events"][0]["forward"]["ms"].is_u64());
    assert_eq!(
        keys(&v["events"][0]["forward"]),
        ["status", "ms"],
        "a 2xx keeps no body"
    );
    let got = ep.seen.bodies.lock().unwrap();
    assert_eq!(got.len(), 4);
    assert!(
        got.iter().all(|(_, valid, _)| *valid),
        "every signature verifies"
    );
    assert_eq!(
        got[0].0,
        String::from_utf8(single).unwrap().trim().as_bytes(),
        "whole file, byte for byte"
    );
    assert_eq!(got[1].0, b"{\"id\":\"evt_b1\",\"object\":\"event\",\"type\":\"x.y\",\"created\":1,\"data\":{\"object\":{}}}");
    assert_eq!(got[2].0, "{\"id\": \"evt_b2\", \"object\": \"event\", \"type\": \"x.y\", \"created\": 2, \"data\": {\"object\": {\"n\": \"\\u00e9\"}}}".as_bytes(), "the element's own text, escapes kept");
    let h = &got[0].2;
    assert_eq!(h["content-type"], "application/json; charset=utf-8");
    assert!(h["user-agent"].to_str().unwrap().starts_with("Stripe/1.0"));
    assert_eq!(h["x-test"], "yes");
    assert!(
        !dir.path().join("stripe-sync.db").exists(),
        "the store is not written"
    );
}

#[test]
fn order_is_kept_at_concurrency_1_and_all_arrive_at_4() {
    let ep = endpoint(200, Duration::from_millis(5));
    let dir = tempdir();
    // With --forward-to the deliveries decide the status: all were 2xx, so
    // 0, although the fixtures hold one rejected checkout (still reported).
    let v = replay(dir.path())
        .args(["--json", "--secret", SECRET, "--forward-to", &ep.url])
        .arg(fixtures())
        .stdout_json()
        .stderr_has("1 rejected")
        .stderr_has("forwarded 45 events: 45 answered 2xx, 0 failed")
        .run()
        .json();
    assert_eq!(v["summary"]["rejected"], 1);
    let ids: Vec<String> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    let got: Vec<String> = ep
        .seen
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|(b, _, _)| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        got, ids,
        "45 deliveries (the redelivery too) in input order"
    );

    let ep4 = endpoint(200, Duration::from_millis(20));
    let v = replay(dir.path())
        .args(["--json", "--secret", SECRET, "--concurrency", "4"])
        .args(["--forward-to", &ep4.url])
        .arg(fixtures())
        .stdout_json()
        .stderr_has("forwarded 45 events: 45 answered 2xx, 0 failed")
        .run()
        .json();
    assert_eq!(v["summary"]["forwarded"], 45);
    assert_eq!(ep4.seen.bodies.lock().unwrap().len(), 45);
}

#[test]
fn failures_timeouts_and_bad_urls() {
    let ep = endpoint(500, Duration::ZERO);
    let dir = tempdir();
    let one = fixtures().join("2026-04-billing/02-alan-seats-applied.json");
    let v = replay(dir.path())
        .args(["--json", "--secret", SECRET, "--forward-to", &ep.url])
        .arg(&one)
        .status(1)
        .stdout_json()
        .stderr_has("forwarded 1 event: 0 answered 2xx, 1 failed")
        .run()
        .json();
    assert_eq!(v["events"][0]["forward"]["status"], 500);
    assert_eq!(v["events"][0]["forward"]["body"], "ok");
    assert_eq!(keys(&v["events"][0]["forward"]), ["status", "ms", "body"]);
    assert_eq!(v["summary"]["forward_failures"], 1);

    let slow = endpoint(200, Duration::from_secs(5));
    replay(dir.path())
        .args([
            "--secret",
            SECRET,
            "--timeout",
            "0.3",
            "--forward-to",
            &slow.url,
        ])
        .arg(&one)
        .status(1)
        .stdout_has("timed out after 0.3 s")
        .stderr_has("forwarded 1 event: 0 answered 2xx, 1 failed")
        .run();
    let v = replay(dir.path())
        .args(["--json", "--secret", SECRET, "--timeout", "0.3"])
        .args(["--forward-to", &slow.url])
        .arg(&one)
        .status(1)
        .stdout_json()
        .stderr_has("forwarded 1 event: 0 answered 2xx, 1 failed")
        .run()
        .json();
    assert_eq!(
        keys(&v["events"][0]["forward"]),
        ["ms", "error"],
        "a timeout has no status and no body"
    );

    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let v = replay(dir.path())
        .args(["--json", "--secret", SECRET, "--forward-to"])
        .arg(format!("http://{closed}/hook"))
        .arg(&one)
        .status(1)
        .stdout_json()
        .stderr_has("forwarded 1 event: 0 answered 2xx, 1 failed")
        .run()
        .json();
    assert!(
        v["events"][0]["forward"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect")
    );

    for (url, needle) in [
        ("http://example.com/hook", "--allow-remote"),
        ("ftp://x/y", "unsupported scheme"),
        ("nope", "invalid --forward-to"),
    ] {
        replay(dir.path())
            .args(["--secret", SECRET, "--forward-to", url])
            .arg(&one)
            .status(2)
            .stderr_has("error: ")
            .stderr_has(needle)
            .run();
    }
    replay(dir.path())
        .args(["--forward-to", &ep.url])
        .arg(&one)
        .status(2)
        .stderr_has("error: ")
        .stderr_has("signing secret")
        .run();
    replay(dir.path())
        .args([
            "--secret",
            SECRET,
            "-H",
            "bad header",
            "--forward-to",
            &ep.url,
        ])
        .arg(&one)
        .status(2)
        .stderr_has("error: ")
        .stderr_has("bad header")
        .run();
}

/// `--delay` used to build its timer outside the runtime and panic (status
/// 101) after the first delivery.
#[test]
fn delay_between_deliveries_delivers_everything() {
    let ep = endpoint(200, Duration::ZERO);
    let dir = tempdir();
    let started = std::time::Instant::now();
    // Every delivery 2xx: status 0 (the deliveries decide under --forward-to),
    // where it was 101, a panic, after the first delivery.
    let out = replay(dir.path())
        .args(["--json", "--secret", SECRET, "--delay", "5"])
        .args(["--forward-to", &ep.url])
        .arg(fixtures())
        .stdout_json()
        .stderr_has("forwarded 45 events: 45 answered 2xx, 0 failed")
        .stderr_lacks("panicked")
        .stderr_with("no warning or error line", no_complaints)
        .run();
    let elapsed = started.elapsed();
    let v = out.json();
    assert_eq!(v["summary"]["rejected"], 1, "still reported");
    assert_eq!(v["summary"]["forwarded"], 45);
    assert_eq!(v["summary"]["forward_failures"], 0);
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 45);
    assert!(
        events.iter().all(|e| e["forward"]["status"] == 200),
        "every delivery answered 200: {}",
        out.stdout
    );
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let got = ep.seen.bodies.lock().unwrap();
    assert!(
        got.iter().all(|(_, valid, _)| *valid),
        "every signature verifies"
    );
    let got_ids: Vec<String> = got
        .iter()
        .map(|(b, _, _)| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(got_ids, ids, "45 deliveries, in input order");
    assert!(
        elapsed >= Duration::from_millis(44 * 5),
        "44 pauses of 5 ms, took {elapsed:?}"
    );
}

/// A failed delivery keeps the start of the endpoint's answer: 200 bytes at
/// most, cut on a character boundary with `…`, terminal controls escaped.
#[test]
fn failed_delivery_keeps_the_start_of_the_answer() {
    // 4 bytes of escape sequence and 195 x's make 199 bytes: the two-byte é
    // that follows straddles byte 200 and is left out whole.
    let answer: &'static str =
        Box::leak(format!("\n  \x1b[2J{}é{}\n", "x".repeat(195), "y".repeat(300)).into_boxed_str());
    let ep = endpoint_answering(500, Duration::ZERO, answer);
    let dir = tempdir();
    let one = fixtures().join("2026-04-billing/02-alan-seats-applied.json");
    let v = replay(dir.path())
        .args(["--json", "--secret", SECRET, "--forward-to", &ep.url])
        .arg(&one)
        .status(1)
        .stdout_json()
        .stderr_has("forwarded 1 event: 0 answered 2xx, 1 failed")
        .stderr_with("no warning or error line", no_complaints)
        .run()
        .json();
    let f = &v["events"][0]["forward"];
    assert_eq!(keys(f), ["status", "ms", "body"]);
    assert_eq!(f["status"], 500);
    assert_eq!(
        f["body"].as_str().unwrap(),
        format!("\\u{{1b}}[2J{}…", "x".repeat(195))
    );
    assert_eq!(v["summary"]["forward_failures"], 1);

    // The human table never carries the endpoint's raw control characters.
    replay(dir.path())
        .args(["--secret", SECRET, "--forward-to", &ep.url])
        .arg(&one)
        .status(1)
        .stdout_has("500")
        .stdout_lacks("\x1b")
        .stderr_has("forwarded 1 event: 0 answered 2xx, 1 failed")
        .stderr_lacks("\x1b")
        .run();
}

/// https:// to a port that serves plain HTTP: rustls reports "received
/// corrupt message of type InvalidContentType"; the delivery says why.
#[test]
fn https_to_a_plain_http_port_says_use_http() {
    let ep = endpoint(200, Duration::ZERO);
    let https = ep.url.replacen("http://", "https://", 1);
    let dir = tempdir();
    let one = fixtures().join("2026-04-billing/02-alan-seats-applied.json");
    let v = replay(dir.path())
        .args(["--json", "--secret", SECRET, "--forward-to", &https])
        .arg(&one)
        .status(1)
        .stdout_json()
        .stderr_has("forwarded 1 event: 0 answered 2xx, 1 failed")
        .stderr_with("no warning or error line", no_complaints)
        .run()
        .json();
    let f = &v["events"][0]["forward"];
    assert_eq!(keys(f), ["ms", "error"]);
    assert_eq!(f["error"], "the endpoint does not speak TLS: use http://");
    assert_eq!(v["summary"]["forward_failures"], 1);
    assert!(
        ep.seen.bodies.lock().unwrap().is_empty(),
        "nothing delivered"
    );

    replay(dir.path())
        .args(["--secret", SECRET, "--forward-to", &https])
        .arg(&one)
        .status(1)
        .stdout_has("the endpoint does not speak TLS: use http://")
        .stdout_lacks("InvalidContentType")
        .stderr_has("forwarded 1 event: 0 answered 2xx, 1 failed")
        .run();

    // A plain server that reads the ClientHello and hangs up without a word.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = mute.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in mute.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut conn, &mut buf);
        }
    });
    let v = replay(dir.path())
        .args(["--json", "--secret", SECRET, "--forward-to"])
        .arg(format!("https://{addr}/hook"))
        .arg(&one)
        .status(1)
        .stdout_json()
        .stderr_has("forwarded 1 event: 0 answered 2xx, 1 failed")
        .run()
        .json();
    let error = v["events"][0]["forward"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("TLS handshake") && error.contains("use http://"),
        "{error}"
    );
}

/// `-H` must not silently replace what stripe-sync computes: refused
/// (status 2, before any delivery or secret prompt) unless
/// --allow-header-override, and then said once on stderr.
#[test]
fn overriding_own_headers_takes_a_flag() {
    let ep = endpoint(200, Duration::ZERO);
    let dir = tempdir();
    let one = fixtures().join("2026-04-billing/02-alan-seats-applied.json");
    for (header, name) in [
        ("Stripe-Signature: v1=forged_0", "Stripe-Signature"),
        ("stripe-signature: t=1,v1=00", "Stripe-Signature"),
        ("content-type: text/plain", "Content-Type"),
        ("User-Agent: curl/8", "User-Agent"),
    ] {
        // The value is not echoed.
        let value = header.split_once(": ").unwrap().1;
        replay(dir.path())
            .args(["--json", "--secret", SECRET, "-H", header])
            .args(["--forward-to", &ep.url])
            .arg(&one)
            .status(2)
            .stderr_has("--allow-header-override")
            .stderr_has(name)
            .stderr_lacks(value)
            .run();
    }
    // Refused before the missing secret is asked for.
    replay(dir.path())
        .args(["-H", "Stripe-Signature: forged", "--forward-to", &ep.url])
        .arg(&one)
        .status(2)
        .stderr_has("--allow-header-override")
        .run();
    assert!(
        ep.seen.bodies.lock().unwrap().is_empty(),
        "nothing delivered"
    );

    // With the flag the forged signature is the one sent, and the endpoint
    // rejects it: status 1, its answer in the decision.
    let two = fixtures().join("2026-04-billing");
    let out = replay(dir.path())
        .args(["--json", "--secret", SECRET, "--allow-header-override"])
        .args([
            "-H",
            "Stripe-Signature: forged",
            "-H",
            "User-Agent: forger/1",
        ])
        .args(["--forward-to", &ep.url])
        .arg(&two)
        .status(1)
        .stdout_json()
        .stderr_has("warning: --allow-header-override")
        .stderr_has(" answered 2xx, ")
        .run();
    let warnings = complaints(&out.stderr);
    assert_eq!(warnings.len(), 1, "one warning: {}", out.stderr);
    assert!(
        warnings[0].starts_with("warning: --allow-header-override")
            && warnings[0].contains("Stripe-Signature, User-Agent"),
        "{}",
        out.stderr
    );
    let v = out.json();
    let events = v["events"].as_array().unwrap();
    assert!(events.len() > 1);
    for e in events {
        assert_eq!(keys(&e["forward"]), ["status", "ms", "body"], "{e}");
        assert_eq!(e["forward"]["status"], 400);
        assert_eq!(e["forward"]["body"], REJECTED);
    }
    assert_eq!(v["summary"]["forwarded"], 0);
    let got = ep.seen.bodies.lock().unwrap();
    assert_eq!(got.len(), events.len());
    for (_, valid, h) in got.iter() {
        assert!(!valid);
        let sigs: Vec<_> = h.get_all("stripe-signature").iter().collect();
        assert_eq!(
            sigs,
            ["forged"],
            "the given header replaces the computed one"
        );
        let agents: Vec<_> = h.get_all("user-agent").iter().collect();
        assert_eq!(agents, ["forger/1"]);
        assert_eq!(h["content-type"], "application/json; charset=utf-8");
    }
    drop(got);

    // A replaced Content-Type is the one sent too; the signature is still
    // computed, so the delivery goes through. --quiet drops the warning.
    let ep = endpoint(200, Duration::ZERO);
    let v = replay(dir.path())
        .args([
            "--quiet",
            "--json",
            "--secret",
            SECRET,
            "--allow-header-override",
        ])
        .args([
            "-H",
            "Content-Type: application/json",
            "--forward-to",
            &ep.url,
        ])
        .arg(&one)
        .stdout_json()
        .run()
        .json();
    assert_eq!(v["events"][0]["forward"]["status"], 200);
    let got = ep.seen.bodies.lock().unwrap();
    let types: Vec<_> = got[0].2.get_all("content-type").iter().collect();
    assert_eq!(types, ["application/json"]);
    assert!(got[0].1, "the computed signature still verifies");
}

/// During a rotation (`STRIPE_WEBHOOK_SECRET=whsec_new,whsec_old`, as
/// `verify` and `serve` read it) each delivery carries one `v1=` per
/// secret, the new one first, as Stripe signs while a secret is rolled: an
/// endpoint that still holds the old secret accepts it.
#[test]
fn rotation_signs_each_delivery_with_every_secret() {
    let ep = endpoint(200, Duration::ZERO);
    let dir = tempdir();
    let one = fixtures().join("2026-04-billing/02-alan-seats-applied.json");
    let new = "whsec_forward_new_8e4f";
    let v = replay(dir.path())
        .env("STRIPE_WEBHOOK_SECRET", format!("{new},{SECRET}"))
        .args(["--json", "--forward-to", &ep.url])
        .arg(&one)
        .stdout_json()
        .stdout_lacks("forward_new")
        .stdout_lacks(SECRET)
        .stderr_has("forwarded 1 event: 1 answered 2xx, 0 failed")
        .stderr_lacks("forward_new")
        .stderr_lacks(SECRET)
        .stderr_with("no warning or error line", no_complaints)
        .run()
        .json();
    assert_eq!(v["summary"]["forwarded"], 1);
    assert_eq!(v["events"][0]["forward"]["status"], 200);
    let got = ep.seen.bodies.lock().unwrap();
    assert_eq!(got.len(), 1);
    let (body, valid, headers) = &got[0];
    assert!(valid, "the endpoint holding the old secret accepts it");
    let sent = headers["stripe-signature"].to_str().unwrap();
    let t: i64 = sent
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{sent}"));
    let each = |s: &str| signature::sign(&Secret::new(s), t, body).signature;
    assert_eq!(sent, format!("t={t},v1={},v1={}", each(new), each(SECRET)));
}

#[test]
fn a_blank_secret_in_the_rotation_list_is_a_usage_error() {
    let ep = endpoint(200, Duration::ZERO);
    let dir = tempdir();
    let one = fixtures().join("2026-04-billing/02-alan-seats-applied.json");
    for (value, n) in [(format!("{SECRET},"), 2), (format!(",{SECRET}"), 1)] {
        replay(dir.path())
            .env("STRIPE_WEBHOOK_SECRET", &value)
            .args(["--forward-to", &ep.url])
            .arg(&one)
            .status(2)
            .stderr(format!(
                "error: webhook secret #{n} for --forward-to is blank (check --secret and \
                 STRIPE_WEBHOOK_SECRET for empty entries)\n"
            ))
            .run();
    }
    assert!(ep.seen.bodies.lock().unwrap().is_empty(), "nothing sent");
}
