//! `serve` and Ctrl-C on a real terminal at 40, 60, 80 and 120 columns:
//! no line of the request log, the shutdown summary or the interrupt
//! message is wider than the terminal; and what serve answers to
//! `HEAD /healthz` and keeps under `--record` of a signed non-event.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use stripe_sync::secret::Secret;
use stripe_sync::signature;

use rustix::process::Signal;

use crate::harness::{Screen, Test};
use crate::support::fake_stripe::FakeStripe;
use crate::terminal::Terminal;

const SECRET: &str = "whsec_terminal_serve_test";
const WIDTHS: [u16; 4] = [40, 60, 80, 120];
const WAIT: Duration = Duration::from_secs(20);

fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sign(body: &[u8]) -> String {
    let now = stripe_sync::commands::unix_now();
    signature::sign(&Secret::new(SECRET), now, body).header
}

/// One HTTP/1.1 request over a fresh connection: the status and the body.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut conn = TcpStream::connect(addr).expect("connect to serve");
    conn.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).expect("send head");
    conn.write_all(body).expect("send body");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).expect("read answer");
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(answer.len(), |i| i + 4);
    (status, answer[split..].to_vec())
}

fn post_signed(addr: &str, body: &[u8]) -> u16 {
    let sig = sign(body);
    let headers = [
        ("Content-Type", "application/json"),
        ("Stripe-Signature", sig.as_str()),
    ];
    request(addr, "POST", "/stripe", &headers, body).0
}

/// `host:port` from serve's `listening on http://HOST:PORT/stripe`, which
/// may be wrapped onto the next row at a narrow terminal.
fn listening_addr(term: &Terminal) -> String {
    let text = term.screen().rows.join(" ");
    let after = text.split("http://").nth(1).expect("an address");
    after.split('/').next().expect("host:port").to_owned()
}

/// The rows of a screen read as one text: continuation rows (indented)
/// joined to the row they continue, so a message wrapped at words reads whole.
fn joined(screen: &Screen) -> String {
    screen
        .rows
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The rows from the first that starts with `start` to the end.
fn rows_from(screen: &Screen, start: &str) -> String {
    let at = screen
        .rows
        .iter()
        .position(|r| r.starts_with(start))
        .unwrap_or_else(|| panic!("no row starts with {start:?}:\n{}", screen.text()));
    screen.rows[at..].join("\n") + "\n"
}

/// A path longer than the narrowest terminal: its log line cannot wrap at
/// words, so it is split where it must.
const LONG_PATH: &str = "/this/path/is/not/the/webhook/and/is/longer/than/forty/columns";

#[test]
fn serve_log_lines_and_shutdown_summary_fit_40_60_80_120_columns() {
    let event = fixture("2026-03-onboarding/02-ada-checkout-session-completed.json");
    for cols in WIDTHS {
        let mut term = Test::new()
            .args(["serve", "--listen", "127.0.0.1:0", "--secret", SECRET])
            .spawn_terminal(cols);
        term.wait_for("/stripe", WAIT);
        let addr = listening_addr(&term);
        // Each line is logged before its answer is sent: once answered, it
        // is on the terminal, before anything Ctrl-C prints.
        assert_eq!(post_signed(&addr, &event), 200);
        let forged = [("Stripe-Signature", "t=1,v1=00")];
        assert_eq!(request(&addr, "POST", "/stripe", &forged, b"{}").0, 400);
        assert_eq!(request(&addr, "GET", LONG_PATH, &[], b"").0, 404);
        term.ctrl_c();
        let out = term.finish();
        assert_eq!(out.status, 130, "{}", out.stdout);
        let screen = out.screen.expect("a terminal");
        screen.assert_fits();
        let text = joined(&screen);
        for logged in [
            "200 evt_1ATr2kRkT3sQ8vLm0N1fzK0A checkout.session.completed sync \
             user_23q4rvzWDYkqJ0g9tlqhv8lWozr",
            "400 /stripe bad signature: signature_mismatch",
            "served 3 requests: 1 × 200, 1 × 400, 1 × 404; routes: 1 sync",
        ] {
            assert!(
                text.contains(logged),
                "{cols} columns: no {logged:?} in\n{text}"
            );
        }
        // The long path is split, not cut: twice whole (the path, the note).
        let unsplit = screen.rows.iter().map(|r| r.trim()).collect::<String>();
        assert_eq!(unsplit.matches(LONG_PATH).count(), 2, "{}", screen.text());
        // The `^C` the terminal echoed is erased: the summary starts its row.
        assert!(!text.contains("^C"), "{}", screen.text());
        insta::assert_snapshot!(
            format!("serve_shutdown_{cols}"),
            rows_from(&screen, "served ")
        );
    }
}

#[test]
fn ctrl_c_clears_the_progress_bar_and_its_message_fits_40_60_80_120_columns() {
    // Slow pages: the backfill is still running when Ctrl-C comes.
    let fake = FakeStripe::builder()
        .generated(1_000, 1_000, 7)
        .latency(Duration::from_millis(200))
        .start();
    for cols in WIDTHS {
        let mut term = Test::new()
            .args(["resync", "--all"])
            .fake(&fake)
            .spawn_terminal(cols);
        // The spinner's message, once the first page is in.
        term.wait_for("customers,", WAIT);
        term.ctrl_c();
        let out = term.finish();
        assert_eq!(out.status, 130, "{}", out.stdout);
        let screen = out.screen.expect("a terminal");
        screen.assert_fits();
        let text = screen.text();
        assert!(!text.contains("customers"), "the bar stayed:\n{text}");
        assert!(!text.contains("^C"), "{text}");
        assert!(
            joined(&screen).contains(
                "error: interrupted: the store is consistent; run the same command again to continue"
            ),
            "{text}"
        );
        insta::assert_snapshot!(format!("interrupted_{cols}"), text);
    }
}

#[test]
fn follow_waiting_and_interrupt_lines_fit_40_60_80_120_columns() {
    // A port nothing listens on: the follower waits for the API.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    for cols in WIDTHS {
        let mut term = Test::new()
            .args(["resync", "--events", "--since", "1d", "--follow"])
            .api(&base, "sk_test_closed_port")
            .spawn_terminal(cols);
        term.wait_for("apart", WAIT);
        term.ctrl_c();
        let out = term.finish();
        assert_eq!(out.status, 130, "{}", out.stdout);
        let screen = out.screen.expect("a terminal");
        screen.assert_fits();
        let text = joined(&screen);
        for said in [
            "following Stripe's event log every 5 s (SIGTERM or Ctrl-C stops)",
            "warning: waiting for the Stripe API: cannot reach the Stripe API at",
            "trying again with backoff, at most a minute apart",
            "error: interrupted: the store is consistent; run the same command again to continue",
        ] {
            assert!(
                text.contains(said),
                "{cols} columns: no {said:?} in\n{}",
                screen.text()
            );
        }
        assert!(!text.contains("^C"), "{}", screen.text());
    }
}

/// Serve on pipes (`--record rec` with `record`) and the `host:port` it listens on.
fn serve_on_pipes(test: Test) -> (crate::harness::Running, String) {
    let mut running = test.spawn();
    running.wait_for_stderr("/stripe\n", WAIT);
    let stderr = running.stderr_now();
    let after = stderr.split("http://").nth(1).expect("an address");
    let addr = after.split('/').next().expect("host:port").to_owned();
    (running, addr)
}

#[test]
fn head_healthz_is_200_without_a_body() {
    let test = Test::new()
        .args(["serve", "--listen", "127.0.0.1:0", "--secret", SECRET])
        .stderr_has("200 /healthz")
        .stderr_has("served 2 requests: 2 × 200\n");
    let (mut running, addr) = serve_on_pipes(test);
    let (status, body) = request(&addr, "HEAD", "/healthz", &[], b"");
    assert_eq!((status, body.as_slice()), (200, &b""[..]));
    let (status, body) = request(&addr, "GET", "/healthz", &[], b"");
    assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
    running.signal(Signal::TERM);
    running.finish();
}

#[test]
fn record_keeps_a_signed_body_that_is_not_an_event_under_rejected() {
    let customer = br#"{"id":"cus_1gIHnbN8OoIW0c","object":"customer","email":"ada@example.com","metadata":{}}"#;
    let list = b"[]";
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let test = Test::in_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--secret", SECRET])
        .args(["--record", "rec"])
        .stderr_has("400 /stripe")
        .stderr_has("served 2 requests: 2 × 400\n");
    let (mut running, addr) = serve_on_pipes(test);
    assert_eq!(post_signed(&addr, customer), 400);
    assert_eq!(post_signed(&addr, list), 400);
    running.signal(Signal::TERM);
    let out = running.finish();
    // Nothing accepted; both kept, byte for byte, with their header.
    let top: Vec<String> = std::fs::read_dir(dir.join("rec"))
        .expect("rec")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["rejected"], "{}", crate::harness::show(&out));
    let mut kept = Vec::new();
    for entry in std::fs::read_dir(dir.join("rec/rejected")).expect("rejected/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let headers = std::fs::read_to_string(path.with_extension("headers")).expect("headers");
            assert!(headers.starts_with("Stripe-Signature: t="), "{headers}");
            kept.push(std::fs::read(&path).expect("body"));
        }
    }
    kept.sort();
    assert_eq!(kept, [list.to_vec(), customer.to_vec()]);
}
