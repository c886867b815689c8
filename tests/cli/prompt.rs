//! At a terminal a missing secret is asked for with a hidden prompt; never in
//! CI. `spawn_terminal` gives the binary a real pseudo-terminal as its
//! controlling terminal: the test types the secret once the prompt shows.

use std::time::Duration;

use crate::harness::Test;

const NO_SECRET: &str =
    "error: no webhook secret: pass --secret whsec_... (repeatable) or set STRIPE_WEBHOOK_SECRET\n";

#[test]
fn missing_secret_is_asked_for_at_a_terminal_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("p.json"), "hello").unwrap();
    let mut term = Test::in_dir(dir.path())
        .args(["sign", "--timestamp", "5", "p.json"])
        .spawn_terminal(100);
    term.wait_for(
        "Webhook signing secret (whsec_...)",
        Duration::from_secs(30),
    )
    .type_text("whsec_typed_in_7f\r");
    let out = term.finish();
    let screen = out.stdout.clone();
    assert_eq!(out.status, 0, "{screen}");
    assert!(
        screen.contains("Webhook signing secret (whsec_...)"),
        "{screen}"
    );
    assert!(
        !screen.contains("typed_in_7f"),
        "the secret was echoed: {screen}"
    );
    let expected = stripe_sync::signature::sign(
        &stripe_sync::secret::Secret::new("whsec_typed_in_7f"),
        5,
        b"hello",
    )
    .header;
    assert!(screen.contains(&expected), "{screen}");

    // No terminal, or CI set: a usage error, never a prompt.
    let out = Test::in_dir(dir.path())
        .args(["sign", "p.json"])
        .status(2)
        .stderr(NO_SECRET)
        .run();
    assert!(!out.stderr.contains("Webhook signing secret (whsec_...):"));
    Test::in_dir(dir.path())
        .env("CI", "true")
        .args(["sign", "--no-input", "p.json"])
        .status(2)
        .stderr(NO_SECRET)
        .run();
}
