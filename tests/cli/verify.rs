use std::fs;

use stripe_sync::secret::Secret;
use stripe_sync::signature;

use crate::common::tempdir;
use crate::harness::{Output, Test};

const SECRET: &str = "whsec_cli_test_secret_9f8e7d";
const T: i64 = 1_767_225_590;
const PAYLOAD: &str =
    "{\n  \"id\": \"evt_1\",\n  \"object\": \"event\",\n  \"type\": \"invoice.paid\"\n}";

fn header(t: i64, payload: &[u8]) -> String {
    signature::sign(&Secret::new(SECRET), t, payload).header
}

fn setup(payload: &[u8]) -> (tempfile::TempDir, String) {
    let dir = tempdir();
    fs::write(dir.path().join("payload.json"), payload).unwrap();
    let h = header(T, payload);
    (dir, h)
}

fn assert_no_secret(out: &Output) {
    assert!(
        !out.stdout.contains("cli_test_secret"),
        "secret in stdout: {}",
        out.stdout
    );
    assert!(
        !out.stderr.contains("cli_test_secret"),
        "secret in stderr: {}",
        out.stderr
    );
}

#[test]
fn valid_payload_json_fields_exactly_as_spec() {
    let (dir, h) = setup(PAYLOAD.as_bytes());
    let out = Test::in_dir(dir.path())
        .args([
            "verify",
            "--json",
            "--secret",
            SECRET,
            "--signature",
            &h,
            "--now",
        ])
        .arg((T + 5).to_string())
        .arg("payload.json")
        .stdout_json()
        .stderr("")
        .run();
    let v = out.json();
    assert_eq!(v["valid"], true);
    assert_eq!(v["reason"], "ok");
    assert_eq!(v["timestamp"], T);
    assert_eq!(v["age_seconds"], 5);
    assert_eq!(v["matched_secret"], 0);
    assert_eq!(
        v["event"],
        serde_json::json!({"id": "evt_1", "type": "invoice.paid"})
    );
    assert_eq!(v["hints"], serde_json::json!([]));
    assert_eq!(v["notes"], serde_json::json!([]));
    assert_no_secret(&out);
}

#[test]
fn human_output_valid() {
    let (dir, h) = setup(PAYLOAD.as_bytes());
    Test::in_dir(dir.path())
        .args([
            "verify",
            "-s",
            SECRET,
            "--signature",
            &h,
            "--now",
            "1767225600",
            "payload.json",
        ])
        .stdout(
            "valid signature matches secret #1 (t=1767225590, 10 s old)\nevent evt_1 invoice.paid\n",
        )
        .stderr("")
        .run();
}

#[test]
fn stdin_and_prefixed_header_and_env_secrets() {
    let dir = tempdir();
    let h = header(T, PAYLOAD.as_bytes());
    let out = Test::in_dir(dir.path())
        .env("STRIPE_WEBHOOK_SECRET", format!("whsec_old,{SECRET}"))
        .env("STRIPE_SIGNATURE", format!("Stripe-Signature: {h}"))
        .args(["verify", "--json", "--tolerance", "0"])
        .stdin(PAYLOAD)
        .stdout_json()
        .run();
    let v = out.json();
    assert_eq!(v["matched_secret"], 1);
    assert_no_secret(&out);
}

#[test]
fn explicit_dash_reads_stdin() {
    let dir = tempdir();
    let h = header(T, b"x");
    Test::in_dir(dir.path())
        .args([
            "verify",
            "--secret",
            SECRET,
            "--signature",
            &h,
            "--tolerance",
            "0",
            "-",
        ])
        .stdin("x")
        .stdout_has("valid signature matches secret #1")
        .run();
}

#[test]
fn mismatch_is_status_1_with_hint() {
    let dir = tempdir();
    let mut body = PAYLOAD.as_bytes().to_vec();
    let h = header(T, &body);
    body.push(b'\n');
    fs::write(dir.path().join("p.json"), &body).unwrap();
    let out = Test::in_dir(dir.path())
        .args([
            "verify",
            "--json",
            "--secret",
            SECRET,
            "--signature",
            &h,
            "--now",
            "1767225590",
            "p.json",
        ])
        .status(1)
        .stdout_json()
        .stderr("")
        .run();
    let v = out.json();
    assert_eq!(v["valid"], false);
    assert_eq!(v["reason"], "signature_mismatch");
    assert_eq!(v["matched_secret"], serde_json::Value::Null);
    assert_eq!(v["hints"], serde_json::json!(["payload_trailing_newline"]));
    assert_no_secret(&out);

    let out = Test::in_dir(dir.path())
        .args([
            "verify",
            "--secret",
            SECRET,
            "--signature",
            &h,
            "--now",
            "1767225590",
            "p.json",
        ])
        .status(1)
        .stdout_has("hint payload_trailing_newline:")
        .run();
    assert!(
        out.stdout
            .starts_with("invalid signature_mismatch: no v1 signature matches the secret"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("hint payload_trailing_newline:"),
        "{}",
        out.stdout
    );
}

#[test]
fn expired_reports_by_how_much() {
    let (dir, h) = setup(PAYLOAD.as_bytes());
    let v = Test::in_dir(dir.path())
        .args([
            "verify",
            "--json",
            "-s",
            SECRET,
            "--signature",
            &h,
            "--now",
            "1767226000",
            "payload.json",
        ])
        .status(1)
        .stdout_json()
        .run()
        .json();
    assert_eq!(v["reason"], "timestamp_out_of_tolerance");
    assert_eq!(v["matched_secret"], 0);
    assert_eq!(v["age_seconds"], 410);
    assert_eq!(
        v["hints"],
        serde_json::json!(["expired_but_signature_valid"])
    );
    assert!(
        v["diagnosis"][0]["message"]
            .as_str()
            .unwrap()
            .contains("1 min 50 s past the tolerance of 300 s")
    );
}

#[test]
fn api_key_as_secret_is_diagnosed_and_not_printed() {
    let (dir, h) = setup(PAYLOAD.as_bytes());
    let key = "sk_test_51Hxyzcli_test_secret";
    let out = Test::in_dir(dir.path())
        .args([
            "-vv",
            "verify",
            "--json",
            "--secret",
            key,
            "--signature",
            &h,
            "payload.json",
        ])
        .status(1)
        .stdout_json()
        .stderr_has("debug: verifying")
        .run();
    let v = out.json();
    assert_eq!(v["hints"], serde_json::json!(["not_a_webhook_secret"]));
    assert_no_secret(&out);
}

#[test]
fn malformed_and_empty_headers() {
    let (dir, _) = setup(PAYLOAD.as_bytes());
    for (h, reason) in [
        ("garbage", "malformed_header"),
        ("", "no_signatures"),
        ("t=1,v0=ab", "no_signatures"),
        (&",".repeat(10_000), "malformed_header"),
        ("t=1,v1=\u{202e}\x1b[2J", "signature_mismatch"),
    ] {
        let v = Test::in_dir(dir.path())
            .args([
                "verify",
                "--json",
                "-s",
                SECRET,
                "--signature",
                h,
                "payload.json",
            ])
            .status(1)
            .stdout_json()
            .run()
            .json();
        assert_eq!(v["reason"], reason, "{h}");
    }
}

#[test]
fn payload_not_utf8() {
    let dir = tempdir();
    fs::write(dir.path().join("bin"), b"\xff\xfe\x00garbage").unwrap();
    let v = Test::in_dir(dir.path())
        .args([
            "verify",
            "--json",
            "-s",
            SECRET,
            "--signature",
            "t=1,v1=00",
            "bin",
        ])
        .status(1)
        .stdout_json()
        .run()
        .json();
    assert_eq!(v["reason"], "payload_not_utf8");
    assert_eq!(v["event"], serde_json::Value::Null);
}

#[test]
fn large_payload_verifies() {
    let dir = tempdir();
    let mut body = String::from("{\"id\":\"evt_big\",\"type\":\"x\",\"pad\":\"");
    body.push_str(&"a".repeat(50 * 1024 * 1024));
    body.push_str("\"}");
    fs::write(dir.path().join("big.json"), &body).unwrap();
    let h = header(T, body.as_bytes());
    Test::in_dir(dir.path())
        .args([
            "verify",
            "-s",
            SECRET,
            "--signature",
            &h,
            "--tolerance",
            "0",
            "big.json",
        ])
        .stdout_has("valid signature matches secret #1")
        .run();
}

#[test]
fn usage_errors_are_status_2() {
    let (dir, h) = setup(PAYLOAD.as_bytes());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["verify", "--signature", &h, "payload.json"],
            "no webhook secret",
        ),
        (
            vec!["verify", "-s", SECRET, "payload.json"],
            "no signature header",
        ),
        (
            vec!["verify", "-s", "   ", "--signature", &h, "payload.json"],
            "webhook secret #1 is blank",
        ),
        (
            vec!["verify", "-s", SECRET, "--signature", &h, "missing.json"],
            "cannot read payload file missing.json",
        ),
        (
            vec![
                "verify",
                "-s",
                SECRET,
                "--signature",
                &h,
                "--tolerance",
                "-3",
                "payload.json",
            ],
            "-3",
        ),
        (vec!["verify", "--bogus"], "unexpected argument"),
    ];
    for (args, needle) in cases {
        let out = Test::in_dir(dir.path())
            .args(&args)
            .status(2)
            .stdout("")
            .stderr_has(needle)
            .run();
        assert_no_secret(&out);
    }
}

#[test]
fn blank_entry_in_env_is_usage_error() {
    let (dir, h) = setup(PAYLOAD.as_bytes());
    let out = Test::in_dir(dir.path())
        .env("STRIPE_WEBHOOK_SECRET", format!("{SECRET},"))
        .args(["verify", "--signature", &h, "payload.json"])
        .status(2)
        .stderr_has("webhook secret #2 is blank")
        .run();
    assert_no_secret(&out);
}

#[test]
fn help_never_shows_env_secret() {
    let dir = tempdir();
    let out = Test::in_dir(dir.path())
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .args(["verify", "--help"])
        .stdout_has("STRIPE_WEBHOOK_SECRET")
        .stdout_has("Examples:")
        .run();
    assert_no_secret(&out);
}

#[test]
fn global_flags_before_or_after_command() {
    let (dir, h) = setup(PAYLOAD.as_bytes());
    let a = Test::in_dir(dir.path())
        .args([
            "--json",
            "verify",
            "-s",
            SECRET,
            "--signature",
            &h,
            "--now",
            "1767225590",
            "payload.json",
        ])
        .stdout_json()
        .run();
    let b = Test::in_dir(dir.path())
        .args([
            "verify",
            "-s",
            SECRET,
            "--signature",
            &h,
            "--now",
            "1767225590",
            "payload.json",
            "--json",
        ])
        .stdout_json()
        .run();
    assert_eq!(a.status, 0);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn closed_stdout_pipe_is_quiet_success() {
    let (dir, h) = setup(PAYLOAD.as_bytes());
    // The reader goes away before anything is written.
    Test::in_dir(dir.path())
        .args(["verify", "-s", SECRET, "--signature", &h])
        .args(["--tolerance", "0", "payload.json"])
        .hang_up_after(0)
        .run();
}

/// The SDKs split the header on `,` and `=` and trim nothing, so a header
/// read with its line ending (`t=...,v1=<hex>\n`) compares `<hex>\n` with the
/// signature and fails in both; verify fails it too, and says why.
#[test]
fn header_with_trailing_newline_is_rejected_like_the_sdks() {
    let (dir, h) = setup(PAYLOAD.as_bytes());
    let now = (T + 5).to_string();
    let json_verdict = |out: &Output, what: &str| {
        assert_eq!(out.status, 1, "{what:?}: {}", out.stdout);
        assert_eq!(out.stderr, "", "{what:?}");
        let v = out.json();
        assert_eq!(v["valid"], false, "{what:?}");
        assert_eq!(v["reason"], "signature_mismatch", "{what:?}");
        assert_eq!(v["matched_secret"], serde_json::Value::Null, "{what:?}");
        assert_eq!(v["timestamp"], T, "{what:?}");
        assert_eq!(
            v["hints"],
            serde_json::json!(["header_trailing_newline"]),
            "{what:?}"
        );
        assert_no_secret(out);
    };
    for sig in [
        format!("{h}\n"),
        format!("{h}\r\n"),
        format!("{h}\n\n"),
        format!("{h} \n "),
        format!("Stripe-Signature: {h}\r\n"),
    ] {
        let out = Test::in_dir(dir.path())
            .args(["verify", "--json", "-s", SECRET, "--signature", &sig])
            .args(["--now", &now, "payload.json"])
            .status(1)
            .stdout_json()
            .stderr("")
            .run();
        json_verdict(&out, &sig);
    }
    // The same header from the environment (`STRIPE_SIGNATURE` from a .env line).
    let out = Test::in_dir(dir.path())
        .env("STRIPE_SIGNATURE", format!("{h}\n"))
        .args([
            "verify",
            "--json",
            "-s",
            SECRET,
            "--now",
            &now,
            "payload.json",
        ])
        .status(1)
        .stdout_json()
        .stderr("")
        .run();
    json_verdict(&out, "STRIPE_SIGNATURE");

    Test::in_dir(dir.path())
        .env("STRIPE_SIGNATURE", format!("{h}\n"))
        .args(["verify", "-s", SECRET, "--now", &now, "payload.json"])
        .status(1)
        .stdout(
        "invalid signature_mismatch: no v1 signature matches the secret\n  t=1767225590, 5 s old\n\
         event evt_1 invoice.paid\n  \
         hint header_trailing_newline: the signature matches once the trailing newline is \
         removed from the Stripe-Signature header: it was read with its line ending (a file, a \
         .env line, `echo`), and Stripe's SDKs compare the v1 value byte for byte\n",
        )
        .stderr("")
        .run();

    // Where both SDKs still read the right value, the header stays valid: a
    // newline entry after a trailing comma (ignored), a newline after the `t`
    // value (int() and parseInt skip it), spaces and tabs (HTTP strips them).
    let sig = h.split_once(",v1=").unwrap().1;
    for ok in [
        format!("{h},\n"),
        format!("v1={sig},t={T}\n"),
        format!("{h} \t"),
    ] {
        Test::in_dir(dir.path())
            .args(["verify", "-s", SECRET, "--signature", &ok])
            .args(["--now", &now, "payload.json"])
            .stdout(
                "valid signature matches secret #1 (t=1767225590, 5 s old)\nevent evt_1 invoice.paid\n",
            )
            .stderr("")
            .run();
    }

    // The hint is a re-check: a wrong signature with a newline gets none.
    let wrong = format!("{}\n", header(T, b"another body"));
    let v = Test::in_dir(dir.path())
        .args(["verify", "--json", "-s", SECRET, "--signature", &wrong])
        .args(["--now", &now, "payload.json"])
        .status(1)
        .stdout_json()
        .stderr("")
        .run()
        .json();
    assert_eq!(v["reason"], "signature_mismatch");
    assert_eq!(v["hints"], serde_json::json!([]));
}

/// A Stripe thin event ("event notification"), as an event destination sends it.
const THIN: &str = "{\n  \"id\": \"evt_test_65R9Ijk8e8lvFuuMUAK16RFwOGSQHVMFNw7kNPW2gF8V7A\",\n  \
                    \"object\": \"v2.core.event\",\n  \
                    \"type\": \"v1.billing.meter.error_report_triggered\",\n  \
                    \"livemode\": false,\n  \"created\": \"2026-01-01T00:00:00.000Z\",\n  \
                    \"related_object\": {\"id\": \"mtr_test_61R9\", \"type\": \"billing.meter\", \
                    \"url\": \"/v1/billing/meters/mtr_test_61R9\"}\n}";

const THIN_NOTE: &str = "the payload is a thin event (\"object\": \"v2.core.event\"): \
    stripe.webhooks.constructEvent (stripe-node) and Webhook.construct_event (stripe-python) \
    refuse it even when its signature is valid; parse it with stripe.parseEventNotification \
    (stripe-node) or client.parse_event_notification (stripe-python), then fetch the full event";

#[test]
fn thin_event_is_verified_byte_for_byte_with_a_notice() {
    let (dir, h) = setup(THIN.as_bytes());
    let now = (T + 5).to_string();
    let base = ["verify", "-s", SECRET, "--now", &now];

    // Valid: status 0, the event named, the notice in `notes` (hints are for failures).
    let v = Test::in_dir(dir.path())
        .args(base)
        .args(["--json", "--signature", &h, "payload.json"])
        .stdout_json()
        .stderr("")
        .run()
        .json();
    assert_eq!(v["valid"], true);
    assert_eq!(v["reason"], "ok");
    assert_eq!(v["matched_secret"], 0);
    assert_eq!(
        v["event"],
        serde_json::json!({
            "id": "evt_test_65R9Ijk8e8lvFuuMUAK16RFwOGSQHVMFNw7kNPW2gF8V7A",
            "type": "v1.billing.meter.error_report_triggered"
        })
    );
    assert_eq!(v["hints"], serde_json::json!([]));
    assert_eq!(
        v["notes"],
        serde_json::json!([{"code": "thin_event", "message": THIN_NOTE}])
    );

    Test::in_dir(dir.path())
        .args(base)
        .args(["--signature", &h, "payload.json"])
        .stdout(format!(
            "valid signature matches secret #1 (t=1767225590, 5 s old)\n\
             event evt_test_65R9Ijk8e8lvFuuMUAK16RFwOGSQHVMFNw7kNPW2gF8V7A \
             v1.billing.meter.error_report_triggered\n  note thin_event: {THIN_NOTE}\n"
        ))
        .stderr("")
        .run();

    // Invalid: the notice joins the hints, and is no explanation of a mismatch.
    let other = header(T, b"{}");
    let v = Test::in_dir(dir.path())
        .args(base)
        .args(["--json", "--signature", &other, "payload.json"])
        .status(1)
        .stdout_json()
        .stderr("")
        .run()
        .json();
    assert_eq!(v["reason"], "signature_mismatch");
    assert_eq!(v["hints"], serde_json::json!(["thin_event"]));
    assert_eq!(v["diagnosis"][0]["message"], THIN_NOTE);
    assert_eq!(v["notes"], serde_json::json!([]));
    assert_eq!(
        v["event"]["type"],
        "v1.billing.meter.error_report_triggered"
    );

    Test::in_dir(dir.path())
        .args(base)
        .args(["--signature", &other, "payload.json"])
        .status(1)
        .stdout(format!(
            "invalid signature_mismatch: no v1 signature matches the secret\n  t=1767225590, 5 s old\n\
             event evt_test_65R9Ijk8e8lvFuuMUAK16RFwOGSQHVMFNw7kNPW2gF8V7A \
             v1.billing.meter.error_report_triggered\n  hint thin_event: {THIN_NOTE}\n  \
             no tested cause matched: the secret is probably another endpoint's (each endpoint \
             and each `stripe listen` session has its own whsec_), or the payload is not the raw \
             body that was signed\n"
        ))
        .stderr("")
        .run();

    // A thin event without a usable id or type: `event` is null, no error.
    let odd = "{\"object\": \"v2.core.event\", \"type\": 5, \"created\": \"2026-01-01T00:00:00Z\"}";
    let (dir, h) = setup(odd.as_bytes());
    let v = Test::in_dir(dir.path())
        .args(base)
        .args(["--json", "--signature", &h, "payload.json"])
        .stdout_json()
        .stderr("")
        .run()
        .json();
    assert_eq!(v["event"], serde_json::Value::Null);
    assert_eq!(v["notes"][0]["code"], "thin_event");
}

/// What `verify` says about a payload that starts with a UTF-8 byte-order mark.
const BOM_DISAGREEMENT: &str = "stripe-node strips the mark before computing the signature, \
    stripe-python does not, so no signature passes both SDKs; save the file without a BOM";

/// stripe-node decodes a leading BOM away before the HMAC, stripe-python
/// keeps it: no header passes both, so a BOM payload is refused whatever the
/// signature, and the hint says why.
#[test]
fn bom_payload_is_refused_whatever_the_signature() {
    let dir = tempdir();
    let body = [b"\xef\xbb\xbf".as_slice(), PAYLOAD.as_bytes()].concat();
    fs::write(dir.path().join("bom.json"), &body).unwrap();
    // Every verdict here is status 1 with nothing on stderr; the JSON form
    // is one document, the human one is checked whole below.
    let verify = |h: &str, json: bool| {
        let c = Test::in_dir(dir.path())
            .args(if json { &["--json"][..] } else { &[] })
            .args([
                "verify",
                "-s",
                "whsec_other",
                "-s",
                SECRET,
                "--signature",
                h,
            ])
            .args(["--now", "1767225595", "bom.json"])
            .status(1)
            .stderr("");
        match json {
            true => c.stdout_json(),
            false => c.stdout_has("invalid payload_bom: "),
        }
        .run()
    };

    // Signed over the exact bytes (what stripe-python checks): reason payload_bom.
    let raw = header(T, &body);
    let out = verify(&raw, true);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let message = format!(
        "the signature matches these exact bytes with secret #2, the UTF-8 byte-order mark at \
         the start included: {BOM_DISAGREEMENT}"
    );
    assert_eq!(
        out.json(),
        serde_json::json!({
            "valid": false,
            "reason": "payload_bom",
            "timestamp": T,
            "age_seconds": 5,
            "matched_secret": 1,
            "event": null,
            "hints": ["payload_bom"],
            "detail": "the payload's first bytes are EF BB BF, a UTF-8 byte-order mark",
            "diagnosis": [{"code": "payload_bom", "message": message}],
            "notes": [],
        })
    );
    let out = verify(&raw, false);
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stdout,
        format!(
            "invalid payload_bom: the payload starts with a UTF-8 byte-order mark\n  \
             t=1767225590, 5 s old\n  \
             the payload's first bytes are EF BB BF, a UTF-8 byte-order mark\n  \
             hint payload_bom: {message}\n"
        )
    );
    assert_eq!(out.stderr, "");

    // Signed without the mark (what stripe-node checks): a mismatch, same hint code.
    let stripped = header(T, PAYLOAD.as_bytes());
    let out = verify(&stripped, true);
    assert_eq!(out.status, 1);
    assert_eq!(out.stderr, "");
    let v = out.json();
    assert_eq!(v["reason"], "signature_mismatch");
    assert_eq!(v["matched_secret"], serde_json::Value::Null);
    assert_eq!(v["hints"], serde_json::json!(["payload_bom"]));
    assert_eq!(
        v["diagnosis"][0]["message"],
        format!(
            "the signature matches once the UTF-8 byte-order mark at the start is removed: \
             {BOM_DISAGREEMENT}"
        )
    );

    // Signed with neither: still named.
    let wrong = signature::sign(&Secret::new("whsec_third"), T, &body).header;
    let out = verify(&wrong, true);
    assert_eq!(out.status, 1);
    assert_eq!(out.stderr, "");
    let v = out.json();
    assert_eq!(v["reason"], "signature_mismatch");
    assert_eq!(
        v["diagnosis"],
        serde_json::json!([{
            "code": "payload_bom",
            "message": format!("the payload starts with a UTF-8 byte-order mark: {BOM_DISAGREEMENT}"),
        }])
    );
    assert_no_secret(&out);
}

/// stripe-python rejects `t < time.time() - tolerance` on its sub-second
/// clock, so a header exactly `--tolerance` seconds old passes only at the
/// whole second; without `--now` the clock's fraction counts.
#[test]
fn exactly_tolerance_old_on_the_real_clock_is_refused() {
    let dir = tempdir();
    fs::write(dir.path().join("payload.json"), PAYLOAD).unwrap();
    // Early in a second, so the command runs within it (the old whole-second
    // check accepted an age of exactly 300 there).
    let mut now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    if now.subsec_millis() > 300 {
        std::thread::sleep(std::time::Duration::from_millis(
            1_020 - u64::from(now.subsec_millis()),
        ));
        now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
    }
    let t = i64::try_from(now.as_secs()).unwrap() - 300;
    let h = header(t, PAYLOAD.as_bytes());
    let v = Test::in_dir(dir.path())
        .args([
            "verify",
            "--json",
            "-s",
            SECRET,
            "--signature",
            &h,
            "payload.json",
        ])
        .status(1)
        .stdout_json()
        .stderr("")
        .run()
        .json();
    assert_eq!(v["valid"], false);
    assert_eq!(v["reason"], "timestamp_out_of_tolerance");
    assert_eq!(v["matched_secret"], 0);
    assert_eq!(
        v["hints"],
        serde_json::json!(["expired_but_signature_valid"])
    );
    let message = v["diagnosis"][0]["message"].as_str().unwrap();
    let past = match v["age_seconds"].as_i64() {
        Some(300) => "a fraction of a second",
        Some(301) => "1 s", // the second turned before the command read the clock
        other => panic!("age {other:?}"),
    };
    assert!(
        message.contains(&format!("{past} past the tolerance of 300 s")),
        "{message}"
    );

    // With --now, a whole second: both SDKs accept exactly 300 s there.
    let at = |now: i64, status: i32| {
        Test::in_dir(dir.path())
            .args(["verify", "--json", "-s", SECRET, "--signature", &h])
            .args(["--now", &now.to_string(), "payload.json"])
            .status(status)
            .stdout_json()
            .stderr("")
            .run()
            .json()
    };
    assert_eq!(at(t + 300, 0)["age_seconds"], 300);
    assert_eq!(at(t + 301, 1)["reason"], "timestamp_out_of_tolerance");
}

/// Only an object with `"object": "event"` (or a thin event) is labelled an
/// event: a signed account object has an `id` and a `type` too.
#[test]
fn a_signed_object_that_is_no_event_is_not_labelled_one() {
    let account = r#"{"id": "acct_1IuH", "object": "account", "type": "custom"}"#;
    let (dir, h) = setup(account.as_bytes());
    let base = [
        "verify",
        "-s",
        SECRET,
        "--signature",
        &h,
        "--now",
        "1767225600",
    ];
    Test::in_dir(dir.path())
        .args(base)
        .arg("payload.json")
        .stdout("valid signature matches secret #1 (t=1767225590, 10 s old)\n")
        .stderr("")
        .run();
    let v = Test::in_dir(dir.path())
        .args(base)
        .args(["--json", "payload.json"])
        .stdout_json()
        .run()
        .json();
    assert_eq!(v["event"], serde_json::Value::Null);
}
