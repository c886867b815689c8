//! At a terminal a missing secret is asked for with a hidden prompt; never in
//! CI. `script` (util-linux) gives the binary a real pseudo-terminal.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{cmd_in, run, tempdir};

fn in_terminal(dir: &std::path::Path, cmdline: &str, typed: &str) -> String {
    let bin = assert_cmd::cargo::cargo_bin("stripe-sync");
    let mut child = Command::new("script")
        .current_dir(dir)
        .args([
            "-qec",
            &format!(
                "env -u CI -u STRIPE_WEBHOOK_SECRET {} {cmdline}",
                bin.display()
            ),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    std::thread::sleep(Duration::from_millis(700));
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(typed.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn missing_secret_is_asked_for_at_a_terminal_only() {
    let dir = tempdir();
    std::fs::write(dir.path().join("p.json"), "hello").unwrap();
    let screen = in_terminal(
        dir.path(),
        "sign --timestamp 5 p.json",
        "whsec_typed_in_7f\r",
    );
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
    let out = run(cmd_in(dir.path()).args(["sign", "p.json"]));
    assert_eq!(out.status, 2);
    assert!(!out.stderr.contains("Webhook signing secret (whsec_...):"));
    let out = run(cmd_in(dir.path())
        .env("CI", "true")
        .args(["sign", "--no-input", "p.json"]));
    assert_eq!(out.status, 2);
}
