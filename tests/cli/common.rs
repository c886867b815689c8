//! Shared helpers for the binary's tests (the binary itself runs through
//! [`crate::harness::Test`]).
#![allow(dead_code)]

use std::path::Path;

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
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "CI",
    "STRIPE_SYNC_TEST_BACKOFF_MS",
    "STRIPE_SYNC_TEST_FOLLOW_UNIT_MS",
];

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

/// `PRAGMA integrity_check` is ok and no customer is half written (the
/// crash tests' and the server's check after a `kill -9`).
pub fn integrity(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    // A kill between creating the file and committing the first migration
    // leaves an empty database: nothing to check, but it must be empty.
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    if version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0, "unmigrated store with tables in it");
        return;
    }
    // No half customer: every subscription and every logged sync event
    // belongs to a customer row written in the same transaction. A failing
    // query fails the test (it must not count as "no orphans"). NOT EXISTS
    // rather than NOT IN, so a NULL id could not hide every orphan.
    let orphans: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM subscriptions s
                     WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = s.customer_id))
                  + (SELECT count(*) FROM events e
                     WHERE e.route = 'sync' AND e.customer_id IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = e.customer_id))",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("orphan query failed on {}: {e}", db.display()));
    assert_eq!(orphans, 0, "half-written customers");
}

/// Elapsed times vary from run to run: `11 ms` and `0.4 s` become `[t] ms`
/// and `[t] s`; whole seconds (`300 s`, a tolerance) are not elapsed times.
pub fn redact_times(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let words: Vec<&str> = line.split(' ').collect();
        // A duration's unit follows its number: a slow run's `1.2 s` reads
        // `[t] ms` as a quick run's `83 ms` does.
        let mut seconds_unit = false;
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if std::mem::take(&mut seconds_unit) {
                out.push_str("ms");
                out.push_str(&w[1..]);
                continue;
            }
            let next = words.get(i + 1).copied().unwrap_or("");
            let (lead, num) = w.split_at(w.len() - w.trim_start_matches('(').len());
            let numeric = !num.is_empty() && num.chars().all(|c| c.is_ascii_digit() || c == '.');
            let ms = next.starts_with("ms");
            let secs = num.contains('.') && next.trim_end_matches(['\n', ')', ';', ',']) == "s";
            if numeric && (ms || secs) {
                out.push_str(lead);
                out.push_str("[t]");
                seconds_unit = secs;
            } else {
                out.push_str(w);
            }
        }
    }
    out
}
