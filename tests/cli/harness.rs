//! The one way the CLI tests run the binary, in the style of casey/just's
//! `tests/test.rs`: a [`Test`] states the status, stdout and stderr it
//! expects, and `run` checks all three. Unless the test says otherwise the
//! binary must exit 0 with nothing on stdout and nothing on stderr, so no
//! test can forget a stream.
//!
//! ```ignore
//! Test::new()
//!     .args(["verify", "--payload", "e.json"])
//!     .status(1)
//!     .stderr_has("no signatures found")
//!     .run();
//! ```
//!
//! Every run is in a temp dir (or the test's own), without a developer's
//! ambient `STRIPE_*` variables, with the client's backoff sleeps off.
//! `terminal(cols)` runs the binary on a pseudo-terminal of that width and
//! reads back the screen it drew (see [`Screen`]).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::AMBIENT;
use crate::support::fake_stripe::FakeStripe;

/// What a stream must hold.
#[derive(Debug, Clone)]
enum Expect {
    /// Exactly this text (the default: `""`).
    Exact(String),
    /// Each check holds.
    Checks(Vec<Check>),
}

#[derive(Debug, Clone)]
enum Check {
    Equals(String),
    Has(String),
    Lacks(String),
    Json,
    NdJson,
    /// A named predicate (the name is shown when it fails).
    With(&'static str, fn(&str) -> bool),
}

impl Expect {
    /// Adds `check`. The default (empty) gives way to it; an exact text the
    /// test stated stays, as one more check.
    fn push(&mut self, check: Check, stated: &mut bool) {
        match self {
            Expect::Checks(checks) => checks.push(check),
            Expect::Exact(_) if !*stated => *self = Expect::Checks(vec![check]),
            Expect::Exact(text) => *self = Expect::Checks(vec![Check::Equals(text.clone()), check]),
        }
        *stated = true;
    }

    /// What is wrong with `text`, if anything.
    fn fails(&self, text: &str) -> Option<String> {
        match self {
            Expect::Exact(want) if want == text => None,
            Expect::Exact(want) => Some(format!("expected exactly:\n{want}")),
            Expect::Checks(checks) => checks.iter().find_map(|c| c.fails(text)),
        }
    }
}

impl Check {
    fn fails(&self, text: &str) -> Option<String> {
        let ok = match self {
            Check::Equals(s) => text == s,
            Check::Has(s) => text.contains(s.as_str()),
            Check::Lacks(s) => !text.contains(s.as_str()),
            Check::Json => serde_json::from_str::<serde_json::Value>(text).is_ok(),
            Check::NdJson => {
                !text.is_empty()
                    && text.ends_with('\n')
                    && text
                        .lines()
                        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
            }
            Check::With(_, f) => f(text),
        };
        (!ok).then(|| match self {
            Check::Equals(s) => format!("expected exactly:\n{s}"),
            Check::Has(s) => format!("expected it to contain: {s:?}"),
            Check::Lacks(s) => format!("expected it not to contain: {s:?}"),
            Check::Json => "expected one JSON document".to_owned(),
            Check::NdJson => "expected one JSON document per line".to_owned(),
            Check::With(name, _) => format!("expected: {name}"),
        })
    }
}

/// One run of `stripe-sync` and what it must produce.
pub struct Test {
    dir: Dir,
    cmd: Command,
    stdin: Option<Vec<u8>>,
    status: Option<i32>,
    stdout: Expect,
    stderr: Expect,
    /// Whether the test stated anything about stdout / stderr.
    stated: (bool, bool),
    terminal: Option<u16>,
    hang_up: Option<usize>,
    /// Texts neither stream may contain (see [`Test::hides`]).
    hidden: Vec<String>,
}

/// The unprivileged user `unprivileged` runs as (when the tests run as root,
/// file permissions bind only for another user).
pub const NOBODY: &str = "65534";

enum Dir {
    Own(tempfile::TempDir),
    Given(PathBuf),
}

impl Dir {
    fn path(&self) -> &Path {
        match self {
            Dir::Own(t) => t.path(),
            Dir::Given(p) => p,
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    /// On a terminal: the screen (see [`Screen`]).
    pub screen: Option<Screen>,
    /// The run's dir, kept alive when the test made none.
    pub(crate) dir: Option<tempfile::TempDir>,
}

impl Output {
    /// Stdout as the one JSON document it was expected to be.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// Stdout's lines as JSON documents.
    pub fn ndjson(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The dir the run happened in, when the test did not give one.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("the test gave its own dir").path()
    }
}

impl Default for Test {
    fn default() -> Test {
        Test::new()
    }
}

impl Test {
    /// A run in a fresh temp dir.
    pub fn new() -> Test {
        let dir = tempfile::tempdir().expect("temp dir");
        Test::with_dir(Dir::Own(dir))
    }

    /// A run in `dir` (so the default store is `dir/stripe-sync.db`).
    pub fn in_dir(dir: &Path) -> Test {
        Test::with_dir(Dir::Given(dir.to_path_buf()))
    }

    fn with_dir(dir: Dir) -> Test {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stripe-sync"));
        for v in AMBIENT {
            cmd.env_remove(v);
        }
        cmd.env_remove("COLUMNS");
        cmd.env("STRIPE_SYNC_TEST_BACKOFF_MS", "0")
            .current_dir(dir.path());
        Test {
            dir,
            cmd,
            stdin: None,
            status: None,
            stdout: Expect::Exact(String::new()),
            stderr: Expect::Exact(String::new()),
            stated: (false, false),
            terminal: None,
            hang_up: None,
            hidden: Vec::new(),
        }
    }

    /// The run's working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` in the run's dir (parents made).
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Test {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent dir");
        }
        std::fs::write(&path, contents).expect("write test file");
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Test {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Test {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Test {
        self.cmd.env_remove(key);
        self
    }

    /// `--api-base URL --api-key KEY` (after the subcommand's arguments).
    pub fn api(self, base: &str, key: &str) -> Test {
        self.args(["--api-base", base, "--api-key", key])
    }

    /// `--api-base`/`--api-key` of the fake Stripe.
    pub fn fake(self, fake: &FakeStripe) -> Test {
        self.api(&fake.url(), fake.api_key())
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Test {
        self.stdin = Some(input.into());
        self
    }

    /// Runs the binary through `prefix` (`prlimit --nofile=48:96`, say):
    /// `prefix`'s program and arguments, then the binary's.
    pub fn wrapped(mut self, prefix: Command) -> Test {
        self.cmd = prefixed(prefix, &self.cmd);
        self
    }

    /// Runs as the unprivileged user [`NOBODY`] (`setpriv`, util-linux).
    pub fn unprivileged(mut self) -> Test {
        let mut run = Command::new("setpriv");
        run.args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
        ]);
        self.cmd = prefixed(run, &self.cmd);
        self
    }

    /// The exit status expected (default 0).
    pub fn status(mut self, code: i32) -> Test {
        self.status = Some(code);
        self
    }

    /// Stdout is exactly `text`.
    pub fn stdout(mut self, text: impl Into<String>) -> Test {
        self.stdout = Expect::Exact(text.into());
        self.stated.0 = true;
        self
    }

    /// Stdout contains `text` (may be given several times).
    pub fn stdout_has(mut self, text: impl Into<String>) -> Test {
        self.stdout
            .push(Check::Has(text.into()), &mut self.stated.0);
        self
    }

    /// Stdout does not contain `text` (alone, it allows any other output).
    pub fn stdout_lacks(mut self, text: impl Into<String>) -> Test {
        self.stdout
            .push(Check::Lacks(text.into()), &mut self.stated.0);
        self
    }

    /// Stdout is one JSON document (read it with [`Output::json`]).
    pub fn stdout_json(mut self) -> Test {
        self.stdout.push(Check::Json, &mut self.stated.0);
        self
    }

    /// Stdout is one JSON document per line.
    pub fn stdout_ndjson(mut self) -> Test {
        self.stdout.push(Check::NdJson, &mut self.stated.0);
        self
    }

    /// Stdout satisfies `check`, described by `what`.
    pub fn stdout_with(mut self, what: &'static str, check: fn(&str) -> bool) -> Test {
        self.stdout
            .push(Check::With(what, check), &mut self.stated.0);
        self
    }

    /// Stderr is exactly `text`.
    pub fn stderr(mut self, text: impl Into<String>) -> Test {
        self.stderr = Expect::Exact(text.into());
        self.stated.1 = true;
        self
    }

    /// Stderr contains `text` (may be given several times).
    pub fn stderr_has(mut self, text: impl Into<String>) -> Test {
        self.stderr
            .push(Check::Has(text.into()), &mut self.stated.1);
        self
    }

    /// Stderr does not contain `text` (alone, it allows any other output).
    pub fn stderr_lacks(mut self, text: impl Into<String>) -> Test {
        self.stderr
            .push(Check::Lacks(text.into()), &mut self.stated.1);
        self
    }

    /// Stderr satisfies `check`, described by `what`.
    pub fn stderr_with(mut self, what: &'static str, check: fn(&str) -> bool) -> Test {
        self.stderr
            .push(Check::With(what, check), &mut self.stated.1);
        self
    }

    /// Neither stdout nor stderr may contain `secret` (a password, a key),
    /// on top of whatever the test states about them: unlike
    /// [`Test::stdout_lacks`], this leaves the expectations as they are (an
    /// unstated stream must still be empty). Checked by [`Test::run`] and
    /// [`Running::finish`]; may be given several times.
    pub fn hides(mut self, secret: impl Into<String>) -> Test {
        self.hidden.push(secret.into());
        self
    }

    /// Runs on a pseudo-terminal `cols` wide (stdin, stdout and stderr all
    /// on it, as in a shell). What the binary drew is [`Output::screen`] and,
    /// as plain text, `stdout`; stderr is then always empty.
    pub fn terminal(mut self, cols: u16) -> Test {
        self.terminal = Some(cols);
        self
    }

    /// Starts the binary on a terminal `cols` wide, for a test that types
    /// on it or presses Ctrl-C (see [`crate::terminal::Terminal`]); the test
    /// then checks the screen [`crate::terminal::Terminal::finish`] returns.
    pub fn spawn_terminal(self, cols: u16) -> crate::terminal::Terminal {
        let mut term = crate::terminal::Terminal::start(&self.cmd, cols);
        if let Dir::Own(t) = self.dir {
            term.keep(t);
        }
        term
    }

    /// The reader of stdout goes away after `bytes` bytes (`head -c`), or
    /// before anything is written when `bytes` is 0. `stdout` is then what
    /// was read.
    pub fn hang_up_after(mut self, bytes: usize) -> Test {
        self.hang_up = Some(bytes);
        self
    }

    /// Runs to the end and checks status, stdout and stderr.
    pub fn run(self) -> Output {
        let Test {
            dir,
            mut cmd,
            stdin,
            status,
            stdout,
            stderr,
            terminal,
            hang_up,
            hidden,
            ..
        } = self;
        let mut out = match (terminal, hang_up) {
            (Some(cols), _) => crate::terminal::run(&mut cmd, cols, stdin.as_deref()),
            (None, Some(bytes)) => run_hanging_up(&mut cmd, stdin.as_deref(), bytes),
            (None, None) => run_piped(&mut cmd, stdin.as_deref()),
        };
        check(&out, status.unwrap_or(0), &stdout, &stderr);
        check_hidden(&out, &hidden);
        if let Dir::Own(t) = dir {
            out.dir = Some(t);
        }
        out
    }

    /// Starts the binary (stdin closed, stdout and stderr read as they come)
    /// for a test that must act while it runs; [`Running::finish`] checks
    /// what was expected.
    pub fn spawn(mut self) -> Running {
        assert!(self.terminal.is_none(), "spawn runs on pipes");
        let mut child = self
            .cmd
            .stdin(match self.stdin.is_some() {
                true => Stdio::piped(),
                false => Stdio::null(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("stripe-sync starts");
        if let Some(input) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin piped");
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            drain(child.stdout.take().expect("stdout piped"), stdout.clone()),
            drain(child.stderr.take().expect("stderr piped"), stderr.clone()),
        ];
        Running {
            child,
            stdout,
            stderr,
            readers,
            test: self,
        }
    }
}

/// A binary started by [`Test::spawn`].
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    test: Test,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stdout so far.
    pub fn stdout_now(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("lock")).into_owned()
    }

    /// Stderr so far.
    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("lock")).into_owned()
    }

    /// Waits until stderr holds `text` (panics after `within`, showing both
    /// streams, or when the binary exits first).
    pub fn wait_for_stderr(&mut self, text: &str, within: Duration) -> &mut Running {
        self.wait_until(&format!("stderr to contain {text:?}"), within, |r| {
            r.stderr_now().contains(text)
        })
    }

    /// Waits until stdout holds `text`.
    pub fn wait_for_stdout(&mut self, text: &str, within: Duration) -> &mut Running {
        self.wait_until(&format!("stdout to contain {text:?}"), within, |r| {
            r.stdout_now().contains(text)
        })
    }

    /// Waits until `cond` holds, polling every 10 ms.
    pub fn wait_until(
        &mut self,
        what: &str,
        within: Duration,
        cond: impl Fn(&Running) -> bool,
    ) -> &mut Running {
        let start = Instant::now();
        loop {
            if cond(self) {
                return self;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || start.elapsed() > within {
                let why = match exited {
                    Some(s) => format!("the binary exited ({s}) first"),
                    None => format!("not within {within:?}"),
                };
                panic!(
                    "waited for {what}: {why}\n--- stdout\n{}\n--- stderr\n{}",
                    self.stdout_now(),
                    self.stderr_now()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` (e.g. `libc`'s SIGINT = 2) to the binary.
    pub fn signal(&mut self, signal: rustix::process::Signal) -> &mut Running {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, signal).expect("signal sent");
        self
    }

    /// Whether the binary has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// [`Running::finish`], but the binary must exit within `limit`: past
    /// it the binary is killed and the test fails, showing both streams.
    pub fn finish_within(mut self, limit: Duration) -> Output {
        let start = Instant::now();
        while !self.exited() {
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let out = self.collect();
                panic!("still running after {limit:?}: killed\n{}", show(&out));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.finish()
    }

    /// Kills the binary at once (SIGKILL): nothing of its own runs.
    pub fn kill(mut self) -> Output {
        let _ = self.child.kill();
        self.collect()
    }

    /// Waits for the binary to exit and checks status, stdout and stderr.
    pub fn finish(mut self) -> Output {
        let out = self.collect();
        check(
            &out,
            self.test.status.unwrap_or(0),
            &self.test.stdout,
            &self.test.stderr,
        );
        check_hidden(&out, &self.test.hidden);
        out
    }

    fn collect(&mut self) -> Output {
        let status = self.child.wait().expect("stripe-sync ends");
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Output {
            status: status.code().unwrap_or(-1),
            stdout: self.stdout_now(),
            stderr: self.stderr_now(),
            screen: None,
            dir: None,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `prefix`, then `cmd`'s program and arguments, with `cmd`'s environment
/// and directory.
pub fn prefixed(mut prefix: Command, cmd: &Command) -> Command {
    prefix.arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => prefix.env(k, v),
            None => prefix.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        prefix.current_dir(dir);
    }
    prefix
}

fn drain(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().expect("lock").extend_from_slice(&buf[..n]);
        }
    })
}

fn run_piped(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(match stdin {
        Some(_) => Stdio::piped(),
        None => Stdio::null(),
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("stripe-sync starts");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = child.wait_with_output().expect("stripe-sync ends");
    Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        screen: None,
        dir: None,
    }
}

/// [`run_piped`], but stdout's reader goes away after `bytes` bytes.
fn run_hanging_up(cmd: &mut Command, stdin: Option<&[u8]>, bytes: usize) -> Output {
    assert!(stdin.is_none(), "hang_up_after takes no stdin");
    let (reader, writer) = std::io::pipe().expect("pipe");
    let mut kept = vec![0u8; bytes];
    let mut got = 0;
    // Closed from the start when nothing is to be read.
    let reader = (bytes > 0).then_some(reader);
    cmd.stdout(writer);
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("stripe-sync starts");
    // The parent's copy of the writer goes with `cmd`'s Stdio.
    *cmd = Command::new("true");
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let drained = drain(child.stderr.take().expect("stderr piped"), stderr.clone());
    if let Some(mut reader) = reader {
        while got < bytes {
            match reader.read(&mut kept[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    }
    let status = child.wait().expect("stripe-sync ends");
    let _ = drained.join();
    kept.truncate(got);
    let stderr = stderr.lock().expect("lock").clone();
    Output {
        status: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&kept).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        screen: None,
        dir: None,
    }
}

/// Everything about a run, for a failed assertion.
pub fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status, out.stdout, out.stderr
    )
}

fn check(out: &Output, status: i32, stdout: &Expect, stderr: &Expect) {
    let mut wrong = Vec::new();
    if out.status != status {
        wrong.push(format!("status {} (expected {status})", out.status));
    }
    if let Some(why) = stdout.fails(&out.stdout) {
        wrong.push(format!("stdout: {why}"));
    }
    if let Some(why) = stderr.fails(&out.stderr) {
        wrong.push(format!("stderr: {why}"));
    }
    assert!(
        !out.stderr.contains("panicked"),
        "the binary panicked\n{}",
        show(out)
    );
    assert!(wrong.is_empty(), "{}\n\n{}", wrong.join("\n"), show(out));
}

/// Neither stream holds any of the `hidden` texts (see [`Test::hides`]);
/// the failure names the stream, not the text.
fn check_hidden(out: &Output, hidden: &[String]) {
    for (i, secret) in hidden.iter().enumerate() {
        for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !text.contains(secret.as_str()),
                "{name} shows hidden text #{i} (a password or a key)\n\n{}",
                show(out)
            );
        }
    }
}

/// What the binary drew on a terminal, read back through a vt100 screen.
#[derive(Debug)]
pub struct Screen {
    pub cols: u16,
    /// Each row's text, trailing blanks removed; trailing empty rows dropped.
    pub rows: Vec<String>,
    /// The rows the terminal had to wrap (a line longer than the width).
    pub wrapped: Vec<usize>,
}

impl Screen {
    /// Asserts that no line was wider than the terminal.
    pub fn assert_fits(&self) {
        assert!(
            self.wrapped.is_empty(),
            "rows {:?} wrap at {} columns:\n{}",
            self.wrapped,
            self.cols,
            self.rows.join("\n")
        );
    }

    pub fn text(&self) -> String {
        let mut s = self.rows.join("\n");
        s.push('\n');
        s
    }
}
