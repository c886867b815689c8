//! Every ```console block of README.md is run, and its output checked, so the
//! README shows what the tool really prints.
//!
//! A block is one shell session (`sh`) whose output goes to a terminal 80
//! columns wide, as a reader's would, in a fresh temp dir that holds a copy
//! of `fixtures/`, with the `stripe-sync` under test first on PATH:
//!
//! - `$ command` runs in that session, so files and shell variables carry over
//!   to the next command of the block (`$ SIG=$(stripe-sync sign ...)`); its
//!   stdin is empty, its stdout and stderr are the terminal (unless the
//!   command pipes or redirects them: `| jq`, `> out.json`).
//! - The lines after it, up to the next `$` or `# fake:` line, are the screen
//!   it drew (stdout and stderr together, read back through vt100: a progress
//!   bar that was cleared is not there), matched as snapbox matches: a line
//!   `...` stands for any number of lines, `[..]` for anything within a line.
//!   Spaces at the end of a line are ignored (editors strip them). A line
//!   wider than the terminal is a failure, whatever the README shows.
//! - A last output line `? N` checks the exit status; without it the status is
//!   not checked.
//! - `# fake: ...` changes the fake Stripe between two commands, see
//!   [`fake_directive`].
//!
//! Nothing of the developer's environment reaches the commands but PATH; HOME
//! is the temp dir, `TERM=xterm-256color`, and `STRIPE_API_BASE` / `STRIPE_API_KEY`
//! point at the test suite's fake Stripe (`tests/support/fake_stripe.rs`),
//! started for each block with the same generated account, and retries do not
//! wait (`STRIPE_SYNC_TEST_BACKOFF_MS=0`).
//!
//! After a change of output, refresh the README with
//! `STRIPE_SYNC_BLESS=1 cargo test --test cli readme`: each command's expected
//! output is rewritten from what it printed, keeping the `...` and `[..]`
//! lines that still match, and a duration that ends a line becomes `[..]`;
//! review the result with `git diff README.md`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::common::tempdir;
use crate::support::fake_stripe::{Account, FakeStripe};

/// The fake Stripe's account: 300 customers and 300 subscriptions, the same
/// ones on every run (`user_42` is on a trial).
const FAKE_SEED: u64 = 7;
const FAKE_NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// Longest a single README command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Printed after each command, with its exit status, to find where its output ends.
const DONE: &str = "@@readme-command-done@@";

/// The width of the terminal the commands print to.
const COLUMNS: u16 = 80;

#[test]
fn readme_console_blocks_print_what_they_show() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let blocks = parse(&readme).unwrap_or_else(|e| panic!("README.md: {e}"));
    assert!(
        blocks.iter().filter(|b| !b.steps.is_empty()).count() >= 4,
        "verify, replay, resync and inspect have console examples"
    );
    let bless = std::env::var_os("STRIPE_SYNC_BLESS").is_some();

    let outcomes: Vec<BlockOutcome> = blocks.iter().map(run_block).collect();

    if bless {
        let mut lines: Vec<String> = readme.lines().map(str::to_owned).collect();
        // Last block first, so that the line numbers of the others still hold.
        for (block, outcome) in blocks.iter().zip(outcomes).rev() {
            lines.splice(block.body.clone(), outcome.blessed);
        }
        let mut text = lines.join("\n");
        text.push('\n');
        if text != readme {
            std::fs::write(&path, text).expect("write README.md");
        }
    } else {
        let failures: Vec<String> = outcomes.into_iter().flat_map(|o| o.failures).collect();
        assert!(
            failures.is_empty(),
            "README.md console blocks differ from the output:\n\n{}\n\
             refresh them with: STRIPE_SYNC_BLESS=1 cargo test --test cli readme",
            failures.join("\n")
        );
    }
}

/// A ```console block.
#[derive(Debug)]
struct Block {
    /// README line indexes (0-based) of the block's content, fences excluded.
    body: std::ops::Range<usize>,
    steps: Vec<Step>,
}

#[derive(Debug, PartialEq)]
enum Step {
    /// `$ command` and the output shown after it.
    Run {
        /// README line number (1-based), for messages.
        line: usize,
        command: String,
        expected: Vec<String>,
        /// From a last output line `? N`.
        status: Option<i32>,
    },
    /// A `# fake: ...` line, kept verbatim.
    Fake(String),
}

fn parse(readme: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```console" {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].trim_end() == "```")
            .ok_or_else(|| format!("line {}: the console block is not closed", i + 1))?;
        let mut steps = Vec::new();
        for (j, &text) in lines.iter().enumerate().take(end).skip(start) {
            if let Some(command) = text.strip_prefix("$ ") {
                steps.push(Step::Run {
                    line: j + 1,
                    command: command.to_owned(),
                    expected: Vec::new(),
                    status: None,
                });
            } else if text.starts_with("# fake:") {
                steps.push(Step::Fake(text.to_owned()));
            } else if let Some(Step::Run {
                expected, status, ..
            }) = steps.last_mut()
            {
                if status.is_some() {
                    return Err(format!("line {}: output after `? N`", j + 1));
                }
                match exit_marker(text) {
                    Some(code) => *status = Some(code),
                    None => expected.push(text.to_owned()),
                }
            } else {
                return Err(format!(
                    "line {}: console output that follows no `$ command`: {text:?}",
                    j + 1
                ));
            }
        }
        blocks.push(Block {
            body: start..end,
            steps,
        });
        i = end + 1;
    }
    Ok(blocks)
}

/// `? 1` -> 1
fn exit_marker(line: &str) -> Option<i32> {
    line.strip_prefix("? ")?.trim_end().parse().ok()
}

struct BlockOutcome {
    failures: Vec<String>,
    /// The block's lines with each command's output as it was printed.
    blessed: Vec<String>,
}

fn run_block(block: &Block) -> BlockOutcome {
    let dir = tempdir();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
        &dir.path().join("fixtures"),
    );
    let fake = FakeStripe::start(Account::generate_at(300, 300, FAKE_SEED, FAKE_NOW));
    let mut shell = Shell::start(dir.path(), &fake);
    let assert = snapbox::Assert::new().normalize_paths(false);
    let mut failures = Vec::new();
    let mut blessed = Vec::new();
    for step in &block.steps {
        match step {
            Step::Fake(directive) => {
                fake_directive(&fake, directive);
                blessed.push(directive.clone());
            }
            Step::Run {
                line,
                command,
                expected,
                status,
            } => {
                let (screen, code) = shell.run(command);
                let here = format!("README.md:{line}: $ {command}");
                if !screen.wrapped.is_empty() {
                    failures.push(format!(
                        "{here}\nrows {:?} are wider than {COLUMNS} columns:\n{}\n",
                        screen.wrapped,
                        screen.text()
                    ));
                }
                let actual = snapbox::Data::text(trim_line_ends(&lines(&screen)));
                let mut want = expected.join("\n");
                if !want.is_empty() {
                    want.push('\n');
                }
                let (normalized, _) = assert.normalize(actual.clone(), snapbox::Data::text(&want));
                if let Err(diff) = assert.try_eq(Some(&"actual"), actual, snapbox::Data::text(want))
                {
                    failures.push(format!("{here}\n{diff}"));
                }
                if let Some(want) = *status
                    && want != code
                {
                    failures.push(format!("{here}\nexit status {code}, expected {want}\n"));
                }
                blessed.push(format!("$ {command}"));
                blessed.extend(
                    normalized
                        .render()
                        .unwrap_or_default()
                        .lines()
                        .map(wildcard_elapsed),
                );
                if status.is_some() {
                    blessed.push(format!("? {code}"));
                }
            }
        }
    }
    shell.finish();
    BlockOutcome { failures, blessed }
}

/// `# fake: KIND ID FIELD=VALUE...` merges the fields into a stored object of
/// the fake Stripe, as a change made in the Dashboard would: KIND is
/// `customer` or `subscription`; for a subscription, ID may be a customer's
/// id, meaning the subscription the API lists first for that customer. A
/// VALUE that parses as JSON is used as such, else as a string
/// (`status=past_due`, `cancel_at_period_end=true`).
/// `# fake: delete customer ID` deletes a customer.
fn fake_directive(fake: &FakeStripe, directive: &str) {
    let words: Vec<&str> = directive
        .trim_start_matches("# fake:")
        .split_whitespace()
        .collect();
    match words.as_slice() {
        ["delete", "customer", id] => fake.delete_customer(id),
        [kind, id, fields @ ..] if !fields.is_empty() => {
            let mut object = Map::new();
            let id = match *kind {
                "subscription" if id.starts_with("cus_") => fake
                    .subscriptions()
                    .into_iter()
                    .find(|s| s["customer"] == *id)
                    .and_then(|s| s["id"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| panic!("{directive}: {id} has no subscription")),
                _ => (*id).to_owned(),
            };
            object.insert("id".into(), id.into());
            for field in fields {
                let Some((name, value)) = field.split_once('=') else {
                    unreadable(directive)
                };
                let value = serde_json::from_str(value).unwrap_or_else(|_| value.into());
                object.insert(name.into(), value);
            }
            match *kind {
                "customer" => fake.upsert_customer(Value::Object(object)),
                "subscription" => fake.upsert_subscription(Value::Object(object)),
                _ => unreadable(directive),
            };
        }
        _ => unreadable(directive),
    }
}

fn unreadable(directive: &str) -> ! {
    panic!("README.md: cannot read {directive:?} (see tests/cli/readme.rs)")
}

/// One `sh` session: commands go in one at a time through a pipe (so the
/// shell is not interactive: no prompt, no echo), and what they print goes
/// to a terminal [`COLUMNS`] wide; each command's screen comes back with its
/// exit status.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    output: Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Shell {
    fn start(dir: &Path, fake: &FakeStripe) -> Shell {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_stripe-sync"));
        let mut path = vec![bin.parent().expect("the binary's directory").to_owned()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let (mut master, slave) = crate::terminal::open_pty(COLUMNS);
        let mut child = std::process::Command::new("sh")
            .env_clear()
            .env("PATH", std::env::join_paths(path).expect("PATH"))
            .env("HOME", dir)
            .env("TERM", "xterm-256color")
            .env("STRIPE_API_BASE", fake.url())
            .env("STRIPE_API_KEY", fake.api_key())
            .env("STRIPE_SYNC_TEST_BACKOFF_MS", "0")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("sh runs");
        let stdin = child.stdin.take().expect("piped");
        // The shell holds the terminal's other end alone now: reading the
        // master ends (EIO) when the shell and its commands are gone.
        let (tx, output) = channel();
        std::thread::spawn(move || {
            let mut buf = [0; 8192];
            while let Ok(n @ 1..) = master.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Shell {
            child,
            stdin,
            output,
            pending: Vec::new(),
        }
    }

    /// Runs `command`; returns the screen it drew and its exit status.
    fn run(&mut self, command: &str) -> (crate::harness::Screen, i32) {
        // Braces, not a subshell, so that variables set by the command stay
        // set; the newline ends a trailing `# comment`.
        writeln!(
            self.stdin,
            "{{ {command}\n}} </dev/null 2>&1; printf '%s %s\\n' '{DONE}' \"$?\""
        )
        .expect("write to sh");
        self.stdin.flush().expect("write to sh");
        loop {
            if let Some(at) = find(&self.pending, DONE.as_bytes()) {
                let rest = &self.pending[at + DONE.len()..];
                if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                    let status = String::from_utf8_lossy(&rest[..nl]).trim().parse();
                    let screen = crate::terminal::screen_of(&self.pending[..at], COLUMNS);
                    self.pending.drain(..at + DONE.len() + nl + 1);
                    return (screen, status.expect("exit status"));
                }
            }
            match self.output.recv_timeout(COMMAND_TIMEOUT) {
                Ok(chunk) => self.pending.extend(chunk),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "`{command}` still runs after {COMMAND_TIMEOUT:?}; output so far:\n{}",
                    String::from_utf8_lossy(&self.pending)
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "sh ended during `{command}`; output:\n{}",
                    String::from_utf8_lossy(&self.pending)
                ),
            }
        }
    }

    fn finish(mut self) {
        drop(self.stdin);
        self.child.wait().expect("sh ends");
    }
}

/// A line that ends in a duration (`..., 0 retries, 0.4 s`, `in 13 ms`)
/// ends in `[..]` instead: a time differs from run to run.
fn wildcard_elapsed(line: &str) -> String {
    let mut words = line.rsplitn(3, ' ');
    if let (Some(unit), Some(number), Some(rest)) = (words.next(), words.next(), words.next())
        && ["s", "ms", "µs", "min"].contains(&unit)
        && number.parse::<f64>().is_ok()
    {
        return format!("{rest} [..]");
    }
    line.to_owned()
}

/// The screen's rows, each ended by a newline (none when nothing was drawn).
fn lines(screen: &crate::harness::Screen) -> String {
    screen.rows.iter().map(|r| format!("{r}\n")).collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_line_ends(text: &str) -> String {
    text.lines()
        .map(|line| format!("{}\n", line.trim_end()))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read fixtures") {
        let entry = entry.expect("read fixtures");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture");
        }
    }
}

#[test]
fn console_blocks_parse_into_commands_outputs_and_directives() {
    let md = "text\n```console\n$ a\none\n...\n? 1\n# fake: customer cus_x name=X\n$ b\n```\n\n```sh\n$ not run\n```\n";
    let blocks = parse(md).unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].body, 2..8);
    assert_eq!(
        blocks[0].steps,
        [
            Step::Run {
                line: 3,
                command: "a".into(),
                expected: vec!["one".into(), "...".into()],
                status: Some(1),
            },
            Step::Fake("# fake: customer cus_x name=X".into()),
            Step::Run {
                line: 8,
                command: "b".into(),
                expected: vec![],
                status: None,
            },
        ]
    );
    assert!(parse("```console\noutput first\n```\n").is_err());
    assert!(parse("```console\n$ a\n? 0\nmore\n```\n").is_err());
    assert!(parse("```console\n$ a\n").is_err());
}

#[test]
fn bless_wildcards_durations_that_end_a_line() {
    assert_eq!(
        wildcard_elapsed("1 failed; 0 retries, 0.4 s"),
        "1 failed; 0 retries, [..]"
    );
    assert_eq!(
        wildcard_elapsed("4 customers synced in 13 ms"),
        "4 customers synced in [..]"
    );
    assert_eq!(
        wildcard_elapsed("valid (t=1, 5 s old)"),
        "valid (t=1, 5 s old)"
    );
    assert_eq!(wildcard_elapsed("a s"), "a s");
}
