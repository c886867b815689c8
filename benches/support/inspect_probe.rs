//! Measures `inspect` on a large store against issue 12's goals, running the
//! built binary as a user would (std and serde_json only, so any bench can
//! include it with `#[path = "support/inspect_probe.rs"] mod inspect_probe;`):
//!
//! - `inspect --json` and `inspect --csv`, stdout read from a pipe: time to
//!   the first row (the first byte after `[`, or after the CSV header line),
//!   rows per second over the whole run, and the child's peak RSS (from
//!   `/usr/bin/time -f %M`; without it, VmHWM sampled from /proc while the
//!   child runs, a lower bound, and said so);
//! - `inspect --user ID --json`, the median of [`USER_RUNS`] runs, beside the
//!   median of as many `stripe-sync --version` runs (the cost of starting a
//!   process, which the goal's 5 ms includes), interleaved so both see the
//!   same machine load.
//!
//! Each figure is printed beside its goal.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How many times `inspect --user` (and `--version`) run for the medians.
pub const USER_RUNS: usize = 20;

const FIRST_ROW_GOAL: Duration = Duration::from_millis(100);
const RSS_GOAL_BYTES: u64 = 50_000_000;
const ROWS_PER_S_GOAL: f64 = 200_000.0;
const USER_GOAL: Duration = Duration::from_millis(5);

/// Runs every measure on the store `db` with the binary `bin` (build it with
/// `cargo build --release`); `user` is a user id the store maps. Returns the
/// report, one line per figure. Panics if a command fails.
pub fn measure(bin: &Path, db: &Path, user: &str) -> Vec<String> {
    let mut lines = vec![format!(
        "inspect on {} ({})",
        db.display(),
        size(std::fs::metadata(db).map(|m| m.len()).unwrap_or(0))
    )];
    let mut rows = Vec::new();
    for form in [Form::Json, Form::Csv] {
        let s = stream(bin, db, form);
        lines.push(format!(
            "  inspect {}: first row {} (goal < {} ms) {}",
            form.flag(),
            s.first_row.map_or("-".to_owned(), ms),
            FIRST_ROW_GOAL.as_millis(),
            verdict(s.first_row.is_some_and(|t| t < FIRST_ROW_GOAL)),
        ));
        let rate = s.rows as f64 / s.total.as_secs_f64();
        lines.push(format!(
            "  inspect {}: {} rows, {} in {:.2} s = {} rows/s (goal >= {}) {}",
            form.flag(),
            thousands(s.rows),
            size(s.bytes),
            s.total.as_secs_f64(),
            thousands(rate as u64),
            thousands(ROWS_PER_S_GOAL as u64),
            verdict(rate >= ROWS_PER_S_GOAL),
        ));
        lines.push(match s.peak_rss {
            Some(Rss { bytes, how }) => format!(
                "  inspect {}: peak RSS {} {how} (goal <= {}) {}",
                form.flag(),
                size(bytes),
                size(RSS_GOAL_BYTES),
                verdict(bytes <= RSS_GOAL_BYTES),
            ),
            None => format!(
                "  inspect {}: peak RSS not measured (neither /usr/bin/time nor /proc)",
                form.flag()
            ),
        });
        rows.push(s.rows);
    }
    if rows[0] != rows[1] {
        lines.push(format!(
            "  warning: --json gave {} rows but --csv {}",
            rows[0], rows[1]
        ));
    }

    let (query, start) = user_runs(bin, db, user);
    let (query, start) = (median(query), median(start));
    lines.push(format!(
        "  inspect --user {user} --json: median {} of {USER_RUNS} runs (goal < {} ms) {}; \
         of which starting a process (`--version`, median {}) and the rest, {}, is opening the store and the query",
        ms(query),
        USER_GOAL.as_millis(),
        verdict(query < USER_GOAL),
        ms(start),
        ms(query.saturating_sub(start)),
    ));
    lines
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Json,
    Csv,
}

impl Form {
    fn flag(self) -> &'static str {
        match self {
            Form::Json => "--json",
            Form::Csv => "--csv",
        }
    }

    /// The bytes before the first row: `[`, or the header line.
    fn before_rows(self, seen: &[u8]) -> Option<usize> {
        match self {
            Form::Json => seen.first().map(|_| 1),
            Form::Csv => seen.iter().position(|&b| b == b'\n').map(|i| i + 1),
        }
    }
}

struct Stream {
    first_row: Option<Duration>,
    total: Duration,
    rows: u64,
    bytes: u64,
    peak_rss: Option<Rss>,
}

struct Rss {
    bytes: u64,
    how: &'static str,
}

/// One `inspect --json` or `--csv` run, its stdout read as fast as a pipe
/// gives it, rows counted as they pass.
fn stream(bin: &Path, db: &Path, form: Form) -> Stream {
    let rss_file = temp_path(form.flag());
    let timed = gnu_time().is_some();
    let mut cmd = match gnu_time() {
        Some(time) => {
            let mut c = Command::new(time);
            c.args(["-f", "%M", "-o"]).arg(&rss_file).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.arg("--db")
        .arg(db)
        .args(["inspect", form.flag()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("runs {}: {e}", bin.display()));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut buf = vec![0u8; 1 << 20];
    let mut head: Vec<u8> = Vec::new();
    let mut first_row = None;
    let mut counter = RowCounter::new(form);
    let mut bytes = 0u64;
    let mut sampled_hwm = 0u64;
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("reading inspect's stdout: {e}"),
        };
        if first_row.is_none() {
            head.extend_from_slice(&buf[..n]);
            if form.before_rows(&head).is_some_and(|at| head.len() > at) {
                first_row = Some(started.elapsed());
                head = Vec::new();
            }
        }
        bytes += n as u64;
        counter.feed(&buf[..n]);
        if !timed {
            sampled_hwm = sampled_hwm.max(vm_hwm(&child).unwrap_or(0));
        }
    }
    let status = wait(&mut child);
    let total = started.elapsed();
    assert!(
        status == Some(0) || status == Some(1),
        "inspect {} ended with {status:?}",
        form.flag()
    );
    let peak_rss = if timed {
        let kib = std::fs::read_to_string(&rss_file).ok().and_then(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse::<u64>().ok())
                .next_back()
        });
        let _ = std::fs::remove_file(&rss_file);
        kib.map(|k| Rss {
            bytes: k * 1024,
            how: "(/usr/bin/time)",
        })
    } else {
        (sampled_hwm > 0).then_some(Rss {
            bytes: sampled_hwm,
            how: "(VmHWM sampled while reading: a lower bound, /usr/bin/time not found)",
        })
    };
    Stream {
        first_row,
        total,
        rows: counter.rows,
        bytes,
        peak_rss,
    }
}

/// Counts rows in a stream of `inspect` output: pretty JSON elements open
/// with a line `  {` (strings escape their line breaks), CSV rows end with
/// a line break (after the header; the generated text has none of its own).
struct RowCounter {
    form: Form,
    /// The last bytes seen, for a marker split across reads.
    tail: [u8; 3],
    lines: u64,
    rows: u64,
}

impl RowCounter {
    fn new(form: Form) -> Self {
        RowCounter {
            form,
            tail: [0; 3],
            lines: 0,
            rows: 0,
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        match self.form {
            Form::Csv => {
                self.lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                self.rows = self.lines.saturating_sub(1);
            }
            Form::Json => {
                // `\n  {` across the boundary with the previous chunk...
                let mut joined = self.tail.to_vec();
                joined.extend_from_slice(&chunk[..chunk.len().min(3)]);
                self.rows += joined.windows(4).filter(|w| w == b"\n  {").count() as u64;
                // ...and within this one.
                self.rows += chunk.windows(4).filter(|w| w == b"\n  {").count() as u64;
                let keep = chunk.len().min(3);
                self.tail.rotate_left(keep);
                self.tail[3 - keep..].copy_from_slice(&chunk[chunk.len() - keep..]);
            }
        }
    }
}

/// `inspect --user ID --json` and `--version`, interleaved.
fn user_runs(bin: &Path, db: &Path, user: &str) -> (Vec<Duration>, Vec<Duration>) {
    let mut query = Vec::with_capacity(USER_RUNS);
    let mut start = Vec::with_capacity(USER_RUNS);
    for _ in 0..USER_RUNS {
        let t = Instant::now();
        let out = Command::new(bin)
            .arg("--db")
            .arg(db)
            .args(["inspect", "--json", "--user", user])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("runs {}: {e}", bin.display()));
        query.push(t.elapsed());
        assert!(
            out.status.success(),
            "inspect --user {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON");
        assert!(
            rows.as_array().is_some_and(|r| !r.is_empty()),
            "inspect --user {user} showed no row"
        );

        let t = Instant::now();
        let out = Command::new(bin)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("runs {}: {e}", bin.display()));
        start.push(t.elapsed());
        assert!(out.status.success());
    }
    (query, start)
}

/// GNU time, if installed and able to report the peak RSS.
fn gnu_time() -> Option<&'static Path> {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let time = PathBuf::from("/usr/bin/time");
            let probe = temp_path("time-check");
            let works = Command::new(&time)
                .args(["-f", "%M", "-o"])
                .arg(&probe)
                .arg("true")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                && std::fs::read_to_string(&probe).is_ok_and(|s| s.trim().parse::<u64>().is_ok());
            let _ = std::fs::remove_file(&probe);
            works.then_some(time)
        })
        .as_deref()
}

/// The child's peak resident set so far, from /proc (Linux only).
fn vm_hwm(child: &Child) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn wait(child: &mut Child) -> Option<i32> {
    if let Some(mut err) = child.stderr.take() {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        // Warnings (duplicate customers) are expected; errors are not.
        assert!(!text.contains("error:"), "inspect: {text}");
    }
    child.wait().ok().and_then(|s| s.code())
}

fn temp_path(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "inspect-probe-{}-{}.rss",
        std::process::id(),
        what.trim_start_matches('-')
    ))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn verdict(met: bool) -> &'static str {
    if met { "ok" } else { "MISSED" }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn size(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `1,000,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
