//! `--record DIR`: the exact bytes of each request, written to a temporary
//! file, synced and renamed into place before the request is answered, so a
//! recorded folder is never half a file and `replay DIR` reproduces what
//! arrived. Bad signatures go under `DIR/rejected/` with their
//! `Stripe-Signature` header (never a secret), for `verify` to diagnose.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// An id from an event, safe as part of a file name.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => c,
            _ => '_',
        })
        .take(100)
        .collect()
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    let path = dir.join(name);
    tmp.persist(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `DIR/<created>-<arrival>-<event id>.json`: `arrival` (see
/// [`super::Arrivals`]) makes each name unique, and sorts events of one
/// second in the order they arrived, so `replay DIR` weighs them in that
/// order as `serve` did.
pub(super) fn accepted(
    dir: &Path,
    created: i64,
    arrival: u64,
    id: &str,
    body: &[u8],
) -> anyhow::Result<()> {
    write_atomically(
        dir,
        &format!("{created}-{arrival:020}-{}.json", file_safe(id)),
        body,
    )
}

/// `DIR/rejected/<unix>-<n>.json` and `.headers` (the signature header only).
pub(super) fn rejected(
    dir: &Path,
    now: i64,
    n: u64,
    body: &[u8],
    header: &str,
) -> anyhow::Result<()> {
    let dir = dir.join("rejected");
    write_atomically(&dir, &format!("{now}-{n}.json"), body)?;
    write_atomically(
        &dir,
        &format!("{now}-{n}.headers"),
        format!("Stripe-Signature: {header}\n").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_bytes_exact() {
        assert_eq!(file_safe("evt_1AbC"), "evt_1AbC");
        assert_eq!(file_safe("../../etc/passwd"), "______etc_passwd");
        let dir = tempfile::tempdir().unwrap();
        accepted(dir.path(), 5, 42, "evt_1", b"{\"a\": 1}\n").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("5-00000000000000000042-evt_1.json")).unwrap(),
            b"{\"a\": 1}\n"
        );
        // Ids that read the same once made safe still get their own file.
        accepted(dir.path(), 5, 43, "evt_x.y", b"1").unwrap();
        accepted(dir.path(), 5, 44, "evt_x_y", b"2").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        rejected(dir.path(), 7, 1, b"x", "t=1,v1=ab").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("rejected/7-1.headers")).unwrap(),
            "Stripe-Signature: t=1,v1=ab\n"
        );
    }
}
