//! Messages that say what is wrong and what to do (issue 20): files that are
//! not events, invalid NDJSON lines, metadata values with whitespace or of
//! the wrong type, forwarding without the store, a store in a read-only
//! directory, a first resync that fetched nothing, ids shared by two types.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::common::tempdir;
use crate::harness::Test;
use crate::support::fake_stripe::{Account, FakeStripe};

/// An event of `kind` about an invoice of `customer` whose metadata is
/// `metadata` (JSON).
fn invoice_event(id: &str, kind: &str, customer: &str, metadata: &str) -> String {
    format!(
        r#"{{"id":"{id}","object":"event","type":"{kind}","created":1767225600,"data":{{"object":{{"id":"in_{id}","object":"invoice","customer":{customer},"metadata":{metadata}}}}}}}"#
    )
}

/// The decisions of a `--json` replay, by position.
fn events(doc: &Value) -> &Vec<Value> {
    doc["events"].as_array().expect("events")
}

fn reason(d: &Value) -> &str {
    d["reason"].as_str().unwrap_or("")
}

#[test]
fn files_that_are_not_events_say_what_they_are_and_what_to_do() {
    let fixture = r#"{
  "_meta": {"template_version": 0},
  "fixtures": [
    {"name": "customer", "path": "/v1/customers", "method": "post", "params": {"email": "a@example.com"}}
  ]
}"#;
    let event = invoice_event(
        "evt_eb1",
        "invoice.paid",
        r#""cus_EB""#,
        r#"{"clerkUserId":"user_eb"}"#,
    );
    let envelope = |source: &str, detail: &str| {
        format!(
            r#"{{"version":"0","id":"8e0e","detail-type":"invoice.paid","source":"{source}","account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-west-2","resources":[],"detail":{detail}}}"#
        )
    };
    let out = Test::new()
        .file(
            "a-customer.json",
            r#"{"id": "cus_D1", "object": "customer", "email": "d@example.com", "metadata": {}}"#,
        )
        .file("b-fixture.json", fixture)
        .file(
            "c-customers.json",
            r#"{"object": "list", "url": "/v1/customers", "has_more": false,
                "data": [{"id": "cus_1", "object": "customer"}, {"id": "cus_2", "object": "customer"}]}"#,
        )
        .file(
            "d-eventbridge.json",
            envelope("aws.partner/stripe.com/ed_test_61T", &event),
        )
        .file(
            "e-ec2.json",
            envelope("aws.ec2", r#"{"instance-id": "i-0abc"}"#),
        )
        .args(["replay", "--dry-run", "--json"])
        .args([
            "a-customer.json",
            "b-fixture.json",
            "c-customers.json",
            "d-eventbridge.json",
            "e-ec2.json",
        ])
        .status(2)
        .stdout_json()
        .stderr_has(
            "error: c-customers.json: a Stripe list of 2 customer objects, not events: \
             stripe-sync reads Stripe events (`\"object\": \"event\"`); list the account's \
             events instead (`stripe events list`, or GET /v1/events)\n",
        )
        .stderr_has("4 events: 1 sync, 3 invalid")
        .stderr_lacks("line 1 column")
        .run();
    let doc = out.json();
    let d = events(&doc);
    assert_eq!(d.len(), 4, "{doc}");
    assert_eq!(
        reason(&d[0]),
        "a-customer.json: a customer object (cus_D1), not an event: stripe-sync reads Stripe \
         events (`\"object\": \"event\"`); wrap it as `data.object` of a `customer.updated` \
         event, or sync the customer from the API (`stripe-sync resync --customer cus_D1`)"
    );
    assert!(
        reason(&d[1]).starts_with(
            "b-fixture.json: a stripe-cli fixture file (API requests for `stripe fixtures`), \
             not events: run it with `stripe fixtures FILE`"
        ),
        "{}",
        reason(&d[1])
    );
    assert!(!reason(&d[1]).contains("line"), "{}", reason(&d[1]));
    // Stripe's EventBridge envelope is read as the event in `detail`.
    assert_eq!(d[2]["event_id"], "evt_eb1");
    assert_eq!(d[2]["route"], "sync");
    assert_eq!(d[2]["user_id"], "user_eb");
    assert_eq!(d[2]["source"], "d-eventbridge.json");
    assert_eq!(
        reason(&d[3]),
        "e-ec2.json: an Amazon EventBridge event from \"aws.ec2\", not from Stripe: only \
         Stripe's (source `aws.partner/stripe.com/...`) carry a Stripe event in `detail`"
    );
    assert_eq!(doc["errors"][0]["source"], "c-customers.json");
    assert_eq!(doc["summary"]["invalid"], 3);
}

#[test]
fn eventbridge_lines_are_forwarded_as_the_event_they_carry() {
    let event = invoice_event(
        "evt_eb2",
        "invoice.paid",
        r#""cus_EB""#,
        r#"{"clerkUserId":"user_eb"}"#,
    );
    let line = format!(
        r#"{{"version":"0","id":"1","detail-type":"invoice.paid","source":"aws.partner/stripe.com/ed_1","detail":{event}}}"#
    );
    let endpoint = Endpoint::start();
    let out = Test::new()
        .file("archive.ndjson", format!("{line}\n"))
        .args(["replay", "--json", "archive.ndjson", "--forward-to"])
        .arg(&endpoint.url)
        .args(["--secret", "whsec_messages_test"])
        .stdout_json()
        .stderr_has("forwarded 1 event: 1 answered 2xx, 0 failed")
        .run();
    assert_eq!(out.json()["events"][0]["event_id"], "evt_eb2");
    assert_eq!(
        endpoint.bodies(),
        [event],
        "the event's own bytes, not the envelope"
    );
}

#[test]
fn an_invalid_ndjson_line_names_the_file_and_its_line() {
    let good = invoice_event("evt_n1", "invoice.paid", "null", "{}");
    let out = Test::new()
        .file("events.ndjson", format!("{good}\n{{bad}}\n\n{good}x\n"))
        .file("padded.json", "\n\n{\"id\": \"evt_p\",\n  nul}")
        .args([
            "replay",
            "--dry-run",
            "--json",
            "events.ndjson",
            "padded.json",
        ])
        .status(2)
        .stdout_json()
        .stderr_has("error: padded.json: invalid JSON at line 4, column 3: key must be a string\n")
        .stderr_lacks("line 1 column")
        .run();
    let doc = out.json();
    let d = events(&doc);
    assert_eq!(d[1]["route"], "invalid");
    assert_eq!(
        reason(&d[1]),
        "events.ndjson:2: invalid JSON at column 2: key must be a string"
    );
    assert_eq!(d[1]["source"], "events.ndjson:2");
    assert_eq!(d[2]["source"], "events.ndjson:4");
    assert!(
        reason(&d[2]).starts_with("events.ndjson:4: invalid JSON at column "),
        "{}",
        reason(&d[2])
    );
}

#[test]
fn padded_metadata_is_kept_exactly_and_warned_about() {
    let dir = tempdir();
    let lines = [
        invoice_event(
            "evt_w1",
            "invoice.paid",
            r#""cus_W1""#,
            r#"{"clerkUserId":" user_e37 "}"#,
        ),
        // A number where Stripe has strings (a hand-written fixture).
        invoice_event(
            "evt_w2",
            "invoice.payment_failed",
            "null",
            r#"{"clerkUserId":42}"#,
        ),
    ];
    Test::in_dir(dir.path())
        .file("e.ndjson", lines.join("\n"))
        .args(["replay", "--json", "e.ndjson"])
        .stdout_json()
        .stdout_has(r#""user_id":" user_e37 ""#)
        .stdout_has(
            "`clerkUserId` in the invoice metadata is a number, not a string (Stripe metadata \
             values are strings: fix the fixture), and there is no customer",
        )
        .stderr_has(
            "warning: evt_w1: `clerkUserId` in invoice in_evt_w1's metadata is \" user_e37 \", \
             with whitespace around it: kept as written, as the app keeps it (not \"user_e37\")\n",
        )
        .stderr_has(
            "warning: evt_w2: `clerkUserId` in invoice in_evt_w2's metadata is a number, not a \
             string (Stripe metadata values are strings): read as absent\n",
        )
        .stderr_has("2 events: 1 sync, 1 unresolved")
        .run();
    let rows = Test::in_dir(dir.path())
        .args(["inspect", "--json"])
        .stdout_json()
        .run()
        .json();
    assert_eq!(rows[0]["customer_id"], "cus_W1");
    assert_eq!(
        rows[0]["user_id"], " user_e37 ",
        "the value the app would use, untrimmed"
    );
}

#[test]
fn resync_keeps_the_metadata_value_exactly() {
    let fake = FakeStripe::start(Account::new().customer(json!({
        "id": "cus_R1",
        "metadata": {"clerkUserId": " user_e37 "}
    })));
    let dir = tempdir();
    let doc = Test::in_dir(dir.path())
        .args(["resync", "--customer", "cus_R1", "--json"])
        .fake(&fake)
        .stdout_json()
        .stderr_has("1 customer: 1 changed")
        .run()
        .json();
    assert_eq!(doc["customers"][0]["user_id"], " user_e37 ");
    // The user as written is the user: the trimmed id is another one.
    Test::in_dir(dir.path())
        .args(["inspect", "--user", "user_e37"])
        .status(1)
        .stdout("")
        .stderr_has("no customer matches the filter")
        .run();
    let rows = Test::in_dir(dir.path())
        .args(["inspect", "--json"])
        .stdout_json()
        .run()
        .json();
    assert_eq!(rows[0]["user_id"], " user_e37 ");
}

/// A webhook endpoint answering 200 to every POST, keeping the bodies.
struct Endpoint {
    url: String,
    bodies: Arc<std::sync::Mutex<Vec<String>>>,
    count: Arc<AtomicUsize>,
}

impl Endpoint {
    fn start() -> Endpoint {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let (kept, counted) = (bodies.clone(), count.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                if let Some(body) = read_request(&mut stream) {
                    kept.lock().unwrap().push(body);
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        Endpoint { url, bodies, count }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// One HTTP/1.1 request's body (by its content-length).
fn read_request(stream: &mut std::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn forwarding_neither_opens_the_store_nor_labels_from_it() {
    let dir = tempdir();
    let lines = [
        invoice_event(
            "evt_f1",
            "invoice.paid",
            r#""cus_F1""#,
            r#"{"clerkUserId":"user_f1"}"#,
        ),
        invoice_event("evt_f2", "invoice.paid", r#""cus_F1""#, "{}"),
    ];
    // A run that logs both events and maps cus_F1 to user_f1.
    Test::in_dir(dir.path())
        .file("e.ndjson", lines.join("\n"))
        .args(["replay", "--json", "e.ndjson"])
        .stdout_json()
        .stderr_has("2 events: 1 sync, 1 unresolved; 1 customer synced")
        .run();
    let store = dir.path().join("stripe-sync.db");
    let before = std::fs::read(&store).unwrap();

    let endpoint = Endpoint::start();
    let out = Test::in_dir(dir.path())
        .args(["replay", "--json", "e.ndjson", "--forward-to"])
        .arg(&endpoint.url)
        .args(["--secret", "whsec_messages_test"])
        .stdout_json()
        .stderr_has("forwarded 2 events: 2 answered 2xx, 0 failed")
        .run();
    let doc = out.json();
    let d = events(&doc);
    assert_eq!(doc["summary"]["duplicate"], 0, "{doc}");
    assert_eq!(d[0]["route"], "sync", "{doc}");
    // The store maps cus_F1 to user_f1 now; the inputs alone do not.
    assert_eq!(d[1]["route"], "unresolved", "{doc}");
    assert!(
        reason(&d[1]).contains("neither in the store nor among the inputs"),
        "{doc}"
    );
    assert_eq!(endpoint.count.load(Ordering::SeqCst), 2);
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "the store is untouched"
    );

    // --db naming another application's SQLite file: not even opened.
    let other = dir.path().join("app.sqlite");
    let conn = rusqlite::Connection::open(&other).unwrap();
    conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');")
        .unwrap();
    drop(conn);
    let theirs = std::fs::read(&other).unwrap();
    Test::in_dir(dir.path())
        .args(["replay", "e.ndjson", "--db", "app.sqlite", "--forward-to"])
        .arg(&endpoint.url)
        .args(["--secret", "whsec_messages_test"])
        .stdout_has("evt_f1")
        .stdout_lacks("duplicate")
        .stderr_has("forwarded 2 events: 2 answered 2xx, 0 failed")
        .stderr_lacks("error")
        .run();
    assert_eq!(std::fs::read(&other).unwrap(), theirs);
    assert_eq!(endpoint.count.load(Ordering::SeqCst), 4);
}

/// Permissions do not bind root: the run is made as nobody.
#[test]
fn a_writable_store_in_a_read_only_directory_names_the_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let d = dir.path();
    let event = invoice_event(
        "evt_ro1",
        "invoice.paid",
        r#""cus_RO""#,
        r#"{"clerkUserId":"user_ro"}"#,
    );
    Test::in_dir(d)
        .file("e.json", &event)
        .args(["replay", "e.json"])
        .stdout_has("evt_ro1")
        .stderr_has("1 event: ")
        .run();
    let mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, PermissionsExt::from_mode(m)).unwrap();
    mode(&d.join("stripe-sync.db"), 0o666);
    mode(&d.join("e.json"), 0o644);
    mode(d, 0o755);
    let db = d.join("stripe-sync.db").display().to_string();
    Test::in_dir(d)
        .unprivileged()
        .args(["replay", "e.json", "--db", &db])
        .status(2)
        .stdout("")
        .stderr(format!(
            "error: store {db}: read-only: the file is writable but its directory {} is not, \
             and SQLite must create the store's journal there (stripe-sync.db-wal, \
             stripe-sync.db-shm): make the directory writable for this user, or keep the store \
             in one that is (--db)\n",
            d.display()
        ))
        .run();
    // No store yet: the directory is named too.
    Test::in_dir(d)
        .unprivileged()
        .args(["replay", "e.json", "--db", "new.db"])
        .status(2)
        .stdout("")
        .stderr(format!(
            "error: store new.db: cannot create it: this user may not write the directory {} \
             (make it writable, or keep the store in one that is: --db)\n",
            d.display()
        ))
        .run();
}

#[test]
fn a_first_resync_that_fetches_nothing_leaves_no_store() {
    let fake = FakeStripe::start(Account::new().customer(json!({"id": "cus_K1"})));
    let dir = tempdir();
    let d = dir.path();
    for _ in 0..2 {
        Test::in_dir(d)
            .args(["resync", "--all", "--api-base", &fake.url()])
            .args(["--api-key", "sk_test_wrong_key_000"])
            .status(2)
            .stdout("")
            .stderr_has("error: ")
            .stderr_has("401")
            .stderr_lacks("resuming")
            .run();
        assert!(
            !d.join("stripe-sync.db").exists(),
            "a refused key leaves no store"
        );
    }
    // A dead port: nothing listens there once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Test::in_dir(d)
        .args(["resync", "--customer", "cus_K1", "--api-key", "sk_test_x"])
        .args(["--api-base", &format!("http://127.0.0.1:{port}")])
        .status(2)
        .stdout("")
        .stderr_has("error: cannot reach the Stripe API")
        .run();
    assert!(
        !d.join("stripe-sync.db").exists(),
        "a dead API leaves no store"
    );
    let entries: Vec<_> = std::fs::read_dir(d).unwrap().collect();
    assert!(entries.is_empty(), "no side files either: {entries:?}");
    // The same for a first catch-up from the event log, once or following.
    for follow in [&[][..], &["--follow", "--interval", "1"][..]] {
        Test::in_dir(d)
            .args(["resync", "--events", "--since", "7d"])
            .args(["--api-base", fake.url().as_str()])
            .args(["--api-key", "sk_test_wrong_key_000"])
            .args(follow)
            .status(2)
            .stdout("")
            .stderr_has("401")
            .run();
        let entries: Vec<_> = std::fs::read_dir(d).unwrap().collect();
        assert!(entries.is_empty(), "{follow:?}: no store: {entries:?}");
    }

    // A store that existed before the failure is kept.
    Test::in_dir(d)
        .args(["resync", "--all", "--api-base", &fake.url()])
        .args(["--api-key", fake.api_key()])
        .stdout_has("cus_K1")
        .stderr_has("1 customer: 1 changed (1 new), 0 failed")
        .stderr_lacks("resuming")
        .run();
    Test::in_dir(d)
        .args(["resync", "--all", "--api-base", &fake.url()])
        .args(["--api-key", "sk_test_wrong_key_000"])
        .status(2)
        .stdout("")
        .stderr_has("401")
        .run();
    assert!(d.join("stripe-sync.db").exists());
}

#[test]
fn one_id_with_two_types_is_not_called_a_redelivery() {
    let paid = invoice_event(
        "evt_same",
        "invoice.paid",
        r#""cus_S""#,
        r#"{"clerkUserId":"user_s"}"#,
    );
    let failed = invoice_event(
        "evt_same",
        "invoice.payment_failed",
        r#""cus_S""#,
        r#"{"clerkUserId":"user_s"}"#,
    );
    let doc = Test::new()
        .file("a.json", &paid)
        .file("b.json", &paid)
        .file("c.json", &failed)
        .args([
            "replay",
            "--dry-run",
            "--json",
            "a.json",
            "b.json",
            "c.json",
        ])
        .stdout_json()
        .stderr_has("3 events: 1 sync, 2 duplicate")
        .run()
        .json();
    let d = events(&doc);
    assert_eq!(d[1]["route"], "duplicate");
    assert_eq!(
        reason(&d[1]),
        "event id already seen in this run (redelivery)"
    );
    assert_eq!(d[2]["route"], "duplicate");
    assert_eq!(d[2]["type"], "invoice.payment_failed");
    assert_eq!(
        reason(&d[2]),
        "event id already seen in this run with another type: not a redelivery \
         (Stripe redelivers the same event) but two events sharing an id; give each \
         fixture its own id"
    );
}
