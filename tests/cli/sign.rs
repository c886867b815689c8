use stripe_sync::secret::Secret;
use stripe_sync::signature;

use crate::common::tempdir;
use crate::harness::Test;

#[test]
fn sign_prints_header_that_verifies() {
    let dir = tempdir();
    std::fs::write(dir.path().join("p.json"), "{\"id\":\"evt_9\"}").unwrap();
    // python3: hmac.new(b"whsec_abc", b'1767225590.{"id":"evt_9"}', sha256).hexdigest()
    let expected = signature::sign(
        &Secret::new("whsec_abc"),
        1_767_225_590,
        b"{\"id\":\"evt_9\"}",
    );
    let out = Test::in_dir(dir.path())
        .args([
            "sign",
            "--secret",
            "whsec_abc",
            "--timestamp",
            "1767225590",
            "p.json",
        ])
        .stdout(format!("{}\n", expected.header))
        .stderr("")
        .run();
    assert!(out.stdout.starts_with("t=1767225590,v1="));

    Test::in_dir(dir.path())
        .args([
            "verify",
            "--secret",
            "whsec_abc",
            "--signature",
            out.stdout.trim(),
            "--now",
            "1767225590",
            "p.json",
        ])
        .stdout("valid signature matches secret #1 (t=1767225590, 0 s old)\n")
        .run();
}

#[test]
fn sign_json_and_stdin_and_env() {
    let dir = tempdir();
    let out = Test::in_dir(dir.path())
        .env("STRIPE_WEBHOOK_SECRET", "whsec_abc")
        .args(["sign", "--json", "--timestamp", "42"])
        .stdin("hello")
        .stdout_json()
        .run();
    let v = out.json();
    assert_eq!(v["timestamp"], 42);
    let sig = v["signature"].as_str().unwrap();
    assert_eq!(sig.len(), 64);
    assert_eq!(v["header"], format!("t=42,v1={sig}"));
    assert!(!out.stdout.contains("whsec_abc"));
}

#[test]
fn sign_without_secret_is_usage_error() {
    Test::new()
        .args(["sign"])
        .stdin("x")
        .status(2)
        .stdout("")
        .stderr_has("no webhook secret")
        .run();
}

#[test]
fn sign_refuses_timestamps_the_sdks_cannot_verify() {
    let dir = tempdir();
    for t in ["-1", "9007199254740993"] {
        Test::in_dir(dir.path())
            .args(["sign", "--secret", "whsec_abc", "--timestamp", t])
            .stdin("x")
            .status(2)
            .stdout("")
            .stderr_has("cannot verify")
            .run();
    }
}

const API_KEY_WARNING: &str = "not a webhook signing secret (whsec_…): Stripe signs webhooks \
    with the endpoint's whsec_ secret, so an app that verifies with it will reject this header\n";

#[test]
fn sign_with_an_api_key_signs_but_warns() {
    let dir = tempdir();
    std::fs::write(dir.path().join("p.json"), "{\"id\":\"evt_9\"}").unwrap();
    for (key, prefix) in [
        ("sk_test_51Hsignkey_9f8e", "sk_"),
        ("rk_live_51Hsignkey_9f8e", "rk_"),
        ("pk_test_51Hsignkey_9f8e", "pk_"),
    ] {
        let expected = signature::sign(&Secret::new(key), 1_767_225_590, b"{\"id\":\"evt_9\"}");
        let out = Test::in_dir(dir.path())
            .args([
                "sign",
                "--secret",
                key,
                "--timestamp",
                "1767225590",
                "p.json",
            ])
            .stdout(format!("{}\n", expected.header))
            .stderr(format!(
                "warning: the secret is an API key ({prefix}…), {API_KEY_WARNING}"
            ))
            .run();
        assert!(!out.stderr.contains("signkey") && !out.stdout.contains("signkey"));
    }

    // From the environment, with --json: the same document, the same warning.
    let out = Test::in_dir(dir.path())
        .env("STRIPE_WEBHOOK_SECRET", "sk_test_51Hsignkey_9f8e")
        .args(["sign", "--json", "--timestamp", "42", "p.json"])
        .stdout_json()
        .stderr(format!(
            "warning: the secret is an API key (sk_…), {API_KEY_WARNING}"
        ))
        .run();
    let want = signature::sign(
        &Secret::new("sk_test_51Hsignkey_9f8e"),
        42,
        b"{\"id\":\"evt_9\"}",
    );
    assert_eq!(
        out.json(),
        serde_json::json!({"header": want.header, "timestamp": 42, "signature": want.signature,
            "signatures": [want.signature]})
    );
    assert!(!out.stderr.contains("signkey") && !out.stdout.contains("signkey"));
}

#[test]
fn sign_of_an_empty_payload_signs_but_warns() {
    let dir = tempdir();
    let expected = signature::sign(&Secret::new("whsec_abc"), 42, b"");
    let out = Test::in_dir(dir.path())
        .args(["sign", "--secret", "whsec_abc", "--timestamp", "42"])
        .stdin("")
        .stdout(format!("{}\n", expected.header))
        .stderr(
            "warning: the payload is empty: stripe-node refuses an empty body (\"No webhook payload \
             was provided\") whatever the signature, and `verify` reports empty_payload\n",
        )
        .run();
    assert!(!out.stderr.contains("whsec_abc"));

    // --quiet silences warnings, not the header.
    Test::in_dir(dir.path())
        .args(["-q", "sign", "--secret", "whsec_abc", "--timestamp", "42"])
        .stdin("")
        .stdout(format!("{}\n", expected.header))
        .stderr("")
        .run();
}

fn hex(secret: &str, t: i64, payload: &[u8]) -> String {
    signature::sign(&Secret::new(secret), t, payload).signature
}

/// While a secret is rolled, Stripe signs with both: one `v1=` per secret,
/// in the order given (the new one first), and either secret alone verifies.
#[test]
fn several_secrets_give_one_v1_each_in_order() {
    let dir = tempdir();
    let body = b"{\"id\":\"evt_9\"}";
    std::fs::write(dir.path().join("p.json"), body).unwrap();
    let (new, old) = (
        hex("whsec_new_5b1", 1_767_225_590, body),
        hex("whsec_old_5b1", 1_767_225_590, body),
    );
    let want = format!("t=1767225590,v1={new},v1={old}");

    Test::in_dir(dir.path())
        .args([
            "sign",
            "--secret",
            "whsec_new_5b1",
            "-s",
            "whsec_old_5b1",
            "--timestamp",
            "1767225590",
            "p.json",
        ])
        .stdout(format!("{want}\n"))
        .stderr("")
        .run();

    // The env var comma-separated, as verify and serve read it; --json keeps
    // `signature` (the first secret's) and adds `signatures`.
    let out = Test::in_dir(dir.path())
        .env("STRIPE_WEBHOOK_SECRET", "whsec_new_5b1,whsec_old_5b1")
        .args(["sign", "--json", "--timestamp", "1767225590", "p.json"])
        .stdout_json()
        .stderr("")
        .run();
    assert_eq!(
        out.json(),
        serde_json::json!({"header": want, "timestamp": 1_767_225_590_i64, "signature": new,
            "signatures": [new, old]})
    );
    assert!(!out.stdout.contains("_5b1"));

    // Each secret alone verifies the header.
    for secret in ["whsec_new_5b1", "whsec_old_5b1"] {
        Test::in_dir(dir.path())
            .args([
                "verify",
                "-s",
                secret,
                "--signature",
                &want,
                "--now",
                "1767225590",
                "p.json",
            ])
            .stdout("valid signature matches secret #1 (t=1767225590, 0 s old)\n")
            .stderr("")
            .run();
    }
    // Neither: a mismatch.
    let v = Test::in_dir(dir.path())
        .args([
            "verify",
            "--json",
            "-s",
            "whsec_third_5b1",
            "--signature",
            &want,
            "--now",
            "1767225590",
            "p.json",
        ])
        .status(1)
        .stdout_json()
        .stderr("")
        .run();
    assert_eq!(v.json()["reason"], "signature_mismatch");
}

#[test]
fn a_blank_secret_among_several_is_a_usage_error() {
    let dir = tempdir();
    let blank = |n: usize| {
        format!(
            "error: webhook secret #{n} is blank (check --secret and STRIPE_WEBHOOK_SECRET for \
             empty entries)\n"
        )
    };
    for (env, args, n) in [
        (None, vec!["--secret", "  "], 1),
        (None, vec!["-s", "whsec_a_5b1", "-s", ""], 2),
        (Some("whsec_a_5b1,"), vec![], 2),
        (Some(",whsec_a_5b1"), vec![], 1),
    ] {
        let mut c = Test::in_dir(dir.path());
        if let Some(e) = env {
            c = c.env("STRIPE_WEBHOOK_SECRET", e);
        }
        c.arg("sign")
            .args(&args)
            .stdin("x")
            .status(2)
            .stdout("")
            .stderr(blank(n))
            .run();
    }
}

#[test]
fn sign_of_a_bom_payload_signs_the_bytes_but_warns() {
    let dir = tempdir();
    let body = b"\xef\xbb\xbf{\"id\":\"evt_9\"}";
    std::fs::write(dir.path().join("bom.json"), body).unwrap();
    // The exact bytes, mark included.
    Test::in_dir(dir.path())
        .args([
            "sign",
            "--secret",
            "whsec_abc",
            "--timestamp",
            "42",
            "bom.json",
        ])
        .stdout(format!("t=42,v1={}\n", hex("whsec_abc", 42, body)))
        .stderr(
            "warning: the payload starts with a UTF-8 byte-order mark, signed as is: stripe-node \
             strips the mark before computing the signature, stripe-python does not, so no \
             signature passes both SDKs; save the file without a BOM (`verify` reports \
             payload_bom)\n",
        )
        .run();
    // The mark elsewhere is just bytes.
    let inner = b"{\"n\":\"\xef\xbb\xbf\"}";
    std::fs::write(dir.path().join("inner.json"), inner).unwrap();
    Test::in_dir(dir.path())
        .args([
            "sign",
            "--secret",
            "whsec_abc",
            "--timestamp",
            "42",
            "inner.json",
        ])
        .stdout(format!("t=42,v1={}\n", hex("whsec_abc", 42, inner)))
        .stderr("")
        .run();
    // --quiet silences the warning, not the header.
    Test::in_dir(dir.path())
        .args([
            "-q",
            "sign",
            "--secret",
            "whsec_abc",
            "--timestamp",
            "42",
            "bom.json",
        ])
        .stdout(format!("t=42,v1={}\n", hex("whsec_abc", 42, body)))
        .stderr("")
        .run();
}
