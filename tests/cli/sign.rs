use stripe_sync::secret::Secret;
use stripe_sync::signature;

use crate::common::{cmd_in, json, run, tempdir};

#[test]
fn sign_prints_header_that_verifies() {
    let dir = tempdir();
    std::fs::write(dir.path().join("p.json"), "{\"id\":\"evt_9\"}").unwrap();
    let out = run(cmd_in(dir.path()).args([
        "sign",
        "--secret",
        "whsec_abc",
        "--timestamp",
        "1767225590",
        "p.json",
    ]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    // python3: hmac.new(b"whsec_abc", b'1767225590.{"id":"evt_9"}', sha256).hexdigest()
    let expected = signature::sign(
        &Secret::new("whsec_abc"),
        1_767_225_590,
        b"{\"id\":\"evt_9\"}",
    );
    assert_eq!(out.stdout, format!("{}\n", expected.header));
    assert!(out.stdout.starts_with("t=1767225590,v1="));

    let verify = run(cmd_in(dir.path()).args([
        "verify",
        "--secret",
        "whsec_abc",
        "--signature",
        out.stdout.trim(),
        "--now",
        "1767225590",
        "p.json",
    ]));
    assert_eq!(verify.status, 0, "{}", verify.stdout);
}

#[test]
fn sign_json_and_stdin_and_env() {
    let dir = tempdir();
    let out = run(cmd_in(dir.path())
        .env("STRIPE_WEBHOOK_SECRET", "whsec_abc")
        .args(["sign", "--json", "--timestamp", "42"])
        .write_stdin("hello"));
    assert_eq!(out.status, 0, "{}", out.stderr);
    let v = json(&out.stdout);
    assert_eq!(v["timestamp"], 42);
    let sig = v["signature"].as_str().unwrap();
    assert_eq!(sig.len(), 64);
    assert_eq!(v["header"], format!("t=42,v1={sig}"));
    assert!(!out.stdout.contains("whsec_abc"));
}

#[test]
fn sign_without_secret_is_usage_error() {
    let dir = tempdir();
    let out = run(cmd_in(dir.path()).args(["sign"]).write_stdin("x"));
    assert_eq!(out.status, 2);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("no webhook secret"), "{}", out.stderr);
}

#[test]
fn sign_refuses_timestamps_the_sdks_cannot_verify() {
    let dir = tempdir();
    for t in ["-1", "9007199254740993"] {
        let out = run(cmd_in(dir.path())
            .args(["sign", "--secret", "whsec_abc", "--timestamp", t])
            .write_stdin("x"));
        assert_eq!(out.status, 2, "{t}");
        assert_eq!(out.stdout, "");
        assert!(out.stderr.contains("cannot verify"), "{}", out.stderr);
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
        let out = run(cmd_in(dir.path()).args([
            "sign",
            "--secret",
            key,
            "--timestamp",
            "1767225590",
            "p.json",
        ]));
        assert_eq!(out.status, 0, "{key}: {}", out.stderr);
        assert_eq!(out.stdout, format!("{}\n", expected.header), "{key}");
        assert_eq!(
            out.stderr,
            format!("warning: the secret is an API key ({prefix}…), {API_KEY_WARNING}"),
            "{key}"
        );
        assert!(!out.stderr.contains("signkey") && !out.stdout.contains("signkey"));
    }

    // From the environment, with --json: the same document, the same warning.
    let out = run(cmd_in(dir.path())
        .env("STRIPE_WEBHOOK_SECRET", "sk_test_51Hsignkey_9f8e")
        .args(["sign", "--json", "--timestamp", "42", "p.json"]));
    assert_eq!(out.status, 0, "{}", out.stderr);
    let want = signature::sign(
        &Secret::new("sk_test_51Hsignkey_9f8e"),
        42,
        b"{\"id\":\"evt_9\"}",
    );
    assert_eq!(
        json(&out.stdout),
        serde_json::json!({"header": want.header, "timestamp": 42, "signature": want.signature})
    );
    assert_eq!(
        out.stderr,
        format!("warning: the secret is an API key (sk_…), {API_KEY_WARNING}")
    );
    assert!(!out.stderr.contains("signkey") && !out.stdout.contains("signkey"));
}

#[test]
fn sign_of_an_empty_payload_signs_but_warns() {
    let dir = tempdir();
    let expected = signature::sign(&Secret::new("whsec_abc"), 42, b"");
    let out = run(cmd_in(dir.path())
        .args(["sign", "--secret", "whsec_abc", "--timestamp", "42"])
        .write_stdin(""));
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{}\n", expected.header));
    assert_eq!(
        out.stderr,
        "warning: the payload is empty: stripe-node refuses an empty body (\"No webhook payload \
         was provided\") whatever the signature, and `verify` reports empty_payload\n"
    );
    assert!(!out.stderr.contains("whsec_abc"));

    // --quiet silences warnings, not the header.
    let out = run(cmd_in(dir.path())
        .args(["-q", "sign", "--secret", "whsec_abc", "--timestamp", "42"])
        .write_stdin(""));
    assert_eq!(out.status, 0);
    assert_eq!(out.stdout, format!("{}\n", expected.header));
    assert_eq!(out.stderr, "");
}
