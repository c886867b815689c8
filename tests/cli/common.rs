//! Shared helpers for the binary's tests.
#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;

/// Variables a developer's shell might carry that would change results.
pub const AMBIENT: &[&str] = &[
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_SIGNATURE",
    "STRIPE_API_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_API_BASE",
    "STRIPE_SYNC_DB",
    "STRIPE_SYNC_CONFIG",
    "STRIPE_SYNC_LISTEN",
    "NO_COLOR",
    "CI",
    "STRIPE_SYNC_TEST_BACKOFF_MS",
];

/// The binary in a fresh temp dir with no ambient STRIPE_* variables.
pub fn cmd_in(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("stripe-sync").expect("binary built");
    for v in AMBIENT {
        c.env_remove(v);
    }
    c.current_dir(dir);
    c
}

pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(c: &mut Command) -> Output {
    let out = c.output().expect("runs");
    Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {s}"))
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// The field names of a JSON object, in document order.
pub fn keys(v: &serde_json::Value) -> Vec<&str> {
    v.as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect()
}
