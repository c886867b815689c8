//! `--record DIR`: the exact bytes of each request, written to a temporary
//! file, synced and renamed into place before the request is answered, so a
//! recorded folder is never half a file and `replay DIR` reproduces what
//! arrived. Bad signatures, and signed bodies that are not events, go under
//! `DIR/rejected/` with their `Stripe-Signature` header (never a secret),
//! for `verify` to diagnose, within [`Caps`]. What a killed process left half written is removed at
//! the next start ([`remove_leftovers`]).

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    // The rename is on disk only once the directory is: without this, a
    // power loss may forget the name of a recording already acknowledged.
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
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

/// What `DIR/rejected/` may take. Unsigned requests cost their sender
/// nothing, so what they may fill is bounded, and never the space that valid
/// events need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Caps {
    /// Requests kept at most; the oldest are dropped first.
    pub requests: usize,
    /// Bytes kept at most, bodies and headers together.
    pub bytes: u64,
    /// Free space a rejected request must leave on the disk, or it is not kept.
    pub free: u64,
}

pub(super) const CAPS: Caps = Caps {
    requests: 1_000,
    bytes: 50 << 20,
    free: 100 << 20,
};

/// For tests only (undocumented for users): `REQUESTS,BYTES,FREE` in place
/// of [`CAPS`] (e.g. `3,4096,0`), so that a test reaches the caps with a few
/// small requests, or the free-space floor without filling a disk.
pub(crate) const TEST_REJECTED_CAPS_ENV: &str = "STRIPE_SYNC_TEST_REJECTED_CAPS";

impl Caps {
    fn from_env() -> Caps {
        let Ok(v) = std::env::var(TEST_REJECTED_CAPS_ENV) else {
            return CAPS;
        };
        let n: Vec<u64> = v.split(',').filter_map(|p| p.trim().parse().ok()).collect();
        match n[..] {
            [requests, bytes, free] => Caps {
                requests: usize::try_from(requests).unwrap_or(usize::MAX),
                bytes,
                free,
            },
            _ => CAPS,
        }
    }
}

/// One kept request: `<unix>-<n>`, its place in arrival order, and the bytes
/// of its two files.
#[derive(Debug)]
struct KeptRequest {
    unix: i64,
    n: u64,
    bytes: u64,
}

/// `DIR/rejected/<unix>-<n>.json` and `.headers` (the signature header only),
/// kept within [`Caps`]: the oldest are dropped first.
pub(super) struct Rejected {
    dir: PathBuf,
    caps: Caps,
    /// What the folder holds, oldest first; read at the first rejected request.
    held: Option<VecDeque<KeptRequest>>,
    bytes: u64,
    /// Each notice is said once.
    said_full: bool,
    said_short: bool,
    said_large: bool,
}

impl Rejected {
    pub(super) fn new(record: &Path) -> Rejected {
        Rejected::with_caps(record, Caps::from_env())
    }

    fn with_caps(record: &Path, caps: Caps) -> Rejected {
        Rejected {
            dir: record.join("rejected"),
            caps,
            held: None,
            bytes: 0,
            said_full: false,
            said_short: false,
            said_large: false,
        }
    }

    /// Keep one rejected request, dropping the oldest to stay within the
    /// caps; skip it when the disk would be left short. A notice to log the
    /// first time it drops or skips.
    pub(super) fn keep(
        &mut self,
        now: i64,
        n: u64,
        body: &[u8],
        header: &str,
    ) -> anyhow::Result<Option<String>> {
        let headers = format!("Stripe-Signature: {header}\n");
        let size = (body.len() + headers.len()) as u64;
        let caps = self.caps;
        if size > caps.bytes || caps.requests == 0 {
            return Ok(once(&mut self.said_large, || {
                format!(
                    "a rejected request of {} is more than {} may hold ({}): not kept",
                    amount(size),
                    self.dir.display(),
                    amount(caps.bytes)
                )
            }));
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        if free_space(&self.dir).is_some_and(|free| free < size.saturating_add(caps.free)) {
            return Ok(once(&mut self.said_short, || {
                format!(
                    "less than {} free on the disk of {}: rejected requests are not kept \
                     while space is short (valid events need it)",
                    amount(caps.free),
                    self.dir.display()
                )
            }));
        }
        let held = match &mut self.held {
            Some(held) => held,
            None => {
                let (held, bytes) = scan(&self.dir)?;
                self.bytes = bytes;
                self.held.insert(held)
            }
        };
        // The same name again (the same second and number after a restart)
        // replaces the first.
        if let Some(i) = held.iter().position(|k| (k.unix, k.n) == (now, n))
            && let Some(old) = held.remove(i)
        {
            self.bytes = self.bytes.saturating_sub(old.bytes);
        }
        let mut dropped = 0;
        while held.len() >= caps.requests || self.bytes + size > caps.bytes {
            let Some(old) = held.pop_front() else { break };
            for ext in ["json", "headers"] {
                let path = self.dir.join(format!("{}-{}.{ext}", old.unix, old.n));
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                    }
                    _ => {}
                }
            }
            self.bytes = self.bytes.saturating_sub(old.bytes);
            dropped += 1;
        }
        // Counted before it is written: a half-kept request is dropped in its turn.
        held.push_back(KeptRequest {
            unix: now,
            n,
            bytes: size,
        });
        self.bytes += size;
        write_atomically(&self.dir, &format!("{now}-{n}.json"), body)?;
        write_atomically(&self.dir, &format!("{now}-{n}.headers"), headers.as_bytes())?;
        Ok(match dropped {
            0 => None,
            _ => once(&mut self.said_full, || {
                format!(
                    "{} holds its most ({} requests, {}): the oldest rejected requests \
                     are dropped from now on",
                    self.dir.display(),
                    crate::output::fmt::count(caps.requests as u64),
                    amount(caps.bytes)
                )
            }),
        })
    }
}

/// `Some(notice)` the first time only.
fn once(said: &mut bool, notice: impl FnOnce() -> String) -> Option<String> {
    match std::mem::replace(said, true) {
        true => None,
        false => Some(notice()),
    }
}

fn amount(bytes: u64) -> String {
    match bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        true => format!("{} MiB", bytes >> 20),
        false => crate::output::fmt::plural(bytes, "byte"),
    }
}

/// The requests a rejected folder holds (the files this module names), oldest
/// first, and their bytes; other files are left alone and not counted.
fn scan(dir: &Path) -> anyhow::Result<(VecDeque<KeptRequest>, u64)> {
    let mut found: BTreeMap<(i64, u64), u64> = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| {
            n.strip_suffix(".json")
                .or_else(|| n.strip_suffix(".headers"))
        }) else {
            continue;
        };
        let Some((unix, n)) = stem
            .split_once('-')
            .and_then(|(u, n)| Some((u.parse::<i64>().ok()?, n.parse::<u64>().ok()?)))
        else {
            continue;
        };
        let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
        *found.entry((unix, n)).or_default() += len;
    }
    let bytes = found.values().sum();
    let held = found
        .into_iter()
        .map(|((unix, n), bytes)| KeptRequest { unix, n, bytes })
        .collect();
    Ok((held, bytes))
}

/// Bytes an unprivileged writer may still use on `dir`'s file system.
#[cfg(unix)]
fn free_space(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(not(unix))]
fn free_space(_: &Path) -> Option<u64> {
    None
}

/// Remove the temporary files (`tempfile`'s `.tmpXXXXXX`) that a process
/// killed in the middle of [`write_atomically`] left in the record folder
/// and in `rejected/`: never renamed, so never acknowledged. How many.
pub(super) fn remove_leftovers(record: &Path) -> anyhow::Result<usize> {
    let mut removed = 0;
    for dir in [record.to_path_buf(), record.join("rejected")] {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            let leftover = entry.file_name().to_str().is_some_and(is_temporary)
                && entry.file_type().is_ok_and(|t| t.is_file());
            if leftover {
                let path = entry.path();
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// `.tmp` and six letters or digits: the name `tempfile` gives (and no name
/// this module gives, nor one a user is likely to).
fn is_temporary(name: &str) -> bool {
    name.strip_prefix(".tmp")
        .is_some_and(|rest| rest.len() == 6 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
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
        let mut rejected = Rejected::with_caps(dir.path(), CAPS);
        rejected.keep(7, 1, b"x", "t=1,v1=ab").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("rejected/7-1.headers")).unwrap(),
            "Stripe-Signature: t=1,v1=ab\n"
        );
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn rejected_keeps_the_newest_within_its_caps_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let caps = Caps {
            requests: 3,
            bytes: 200,
            free: 0,
        };
        let mut rejected = Rejected::with_caps(dir.path(), caps);
        let mut notices = Vec::new();
        for n in 1..=4 {
            notices.push(rejected.keep(10, n, b"0123456789", "t=1,v1=00").unwrap());
        }
        // The fourth dropped the first, and said so; the headers line is 28 bytes.
        assert_eq!(notices[..3], [None, None, None]);
        assert!(notices[3].as_deref().unwrap().contains("dropped"));
        let held = ["10-2", "10-3", "10-4"];
        let expect = |held: &[&str]| {
            let mut v: Vec<String> = held
                .iter()
                .flat_map(|h| [format!("{h}.headers"), format!("{h}.json")])
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&dir.path().join("rejected")), expect(&held));
        // A new process reads what is there, oldest first, and only once says so.
        let mut again = Rejected::with_caps(dir.path(), caps);
        std::fs::write(dir.path().join("rejected/notes.txt"), "mine").unwrap();
        let big = [b'x'; 120];
        assert!(again.keep(11, 1, &big, "t=1").unwrap().is_some());
        // 120 + 22 bytes: only one 38-byte request fits beside it.
        let mut held = vec!["10-4", "11-1"];
        let mut want = expect(&held);
        want.push("notes.txt".into());
        want.sort();
        assert_eq!(names(&dir.path().join("rejected")), want);
        // 24 bytes more: over 200, so the oldest goes (said already).
        assert_eq!(again.keep(11, 2, b"12345", "").unwrap(), None);
        held = vec!["11-1", "11-2"];
        let mut want = expect(&held);
        want.push("notes.txt".into());
        want.sort();
        assert_eq!(names(&dir.path().join("rejected")), want);
    }

    #[test]
    fn rejected_is_not_kept_when_the_disk_is_short_or_it_is_too_big() {
        let dir = tempfile::tempdir().unwrap();
        let short = Caps {
            requests: 10,
            bytes: 1 << 20,
            free: u64::MAX,
        };
        let mut rejected = Rejected::with_caps(dir.path(), short);
        assert!(
            rejected
                .keep(1, 1, b"x", "")
                .unwrap()
                .unwrap()
                .contains("free")
        );
        assert_eq!(rejected.keep(1, 2, b"x", "").unwrap(), None);
        let small = Caps {
            requests: 10,
            bytes: 10,
            free: 0,
        };
        let mut rejected = Rejected::with_caps(dir.path(), small);
        assert!(
            rejected
                .keep(1, 3, b"x", "")
                .unwrap()
                .unwrap()
                .contains("not kept")
        );
        assert_eq!(names(&dir.path().join("rejected")), Vec::<String>::new());
    }

    #[test]
    fn leftovers_are_tempfile_names_only() {
        assert!(is_temporary(".tmpAb12Cd"));
        for name in [
            ".tmp",
            ".tmpAb12C",
            ".tmpAb12Cde",
            ".tmpAb-2Cd",
            "tmpAb12Cd",
            "1-2-evt.json",
        ] {
            assert!(!is_temporary(name), "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rejected")).unwrap();
        for leftover in [".tmpAAAAAA", ".tmp0b1C2d", "rejected/.tmpzzzzzz"] {
            std::fs::write(dir.path().join(leftover), "x").unwrap();
        }
        std::fs::write(dir.path().join("1-2-evt_1.json"), "{}").unwrap();
        std::fs::create_dir(dir.path().join(".tmpDIRDIR")).unwrap();
        assert_eq!(remove_leftovers(dir.path()).unwrap(), 3);
        assert_eq!(
            names(dir.path()),
            [".tmpDIRDIR", "1-2-evt_1.json", "rejected"]
        );
        assert_eq!(remove_leftovers(dir.path()).unwrap(), 0);
    }
}
