//! The one place that writes to stdout and stderr, and decides colour,
//! progress bars and prompts from the flags and the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressState, ProgressStyle};

use crate::cli::{ColorChoice, GlobalArgs};

/// Owner of stdout and stderr for one run.
pub struct Printer {
    pub json: bool,
    quiet: bool,
    verbosity: u8,
    color_out: bool,
    color_err: bool,
    interactive: bool,
    stderr_tty: bool,
    stdout_tty: bool,
    /// Columns to fit tables into: the terminal's width (or `COLUMNS`), on
    /// a terminal; on a pipe only when `COLUMNS` is set, else no limit.
    width: Option<usize>,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Printer {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let want = |tty: bool| match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color_env,
        };
        let stdout_tty = io::stdout().is_terminal();
        let stderr_tty = io::stderr().is_terminal();
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        Printer {
            json: global.json,
            quiet: global.quiet,
            verbosity: global.verbose,
            color_out: want(stdout_tty),
            color_err: want(stderr_tty),
            interactive: !global.no_input && !ci && io::stdin().is_terminal() && stderr_tty,
            stderr_tty,
            stdout_tty,
            width: table_width(stdout_tty),
        }
    }

    /// The width human tables must fit, if any (see [`Printer::width`] field).
    pub(crate) fn width(&self) -> Option<usize> {
        self.width
    }

    /// Whether a one-line summary should also go to stderr: stdout is not a
    /// terminal (a file, a pipe), and stderr is not that same file or pipe
    /// (`2>&1`), where the summary already is.
    pub(crate) fn wants_stderr_summary(&self) -> bool {
        !self.stdout_tty && !stderr_is_stdout()
    }

    /// Whether stdout gets colour.
    pub(crate) fn color_out(&self) -> bool {
        self.color_out
    }

    /// Whether the user may be asked questions.
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Whether progress bars should be drawn: on a terminal, without
    /// `--json` or `--quiet`, and not under `-vv`, whose one line per request
    /// would tear a bar apart.
    pub fn show_progress(&self) -> bool {
        self.stderr_tty && !self.quiet && !self.json && self.verbosity < 2
    }

    pub fn verbosity(&self) -> u8 {
        self.verbosity
    }

    /// Write data to stdout. A closed pipe surfaces as `BrokenPipe`, which
    /// the caller turns into a quiet exit 0.
    pub fn out(&self, text: &str) -> io::Result<()> {
        let mut lock = io::stdout().lock();
        lock.write_all(text.as_bytes())?;
        lock.flush()
    }

    /// One JSON document on stdout, followed by a newline.
    pub fn out_json<T: serde::Serialize>(&self, value: &T) -> io::Result<()> {
        let mut lock = io::BufWriter::new(io::stdout().lock());
        serde_json::to_writer_pretty(&mut lock, value).map_err(io::Error::from)?;
        lock.write_all(b"\n")?;
        lock.flush()
    }

    /// A buffered stdout writer for streamed output.
    pub fn stdout_writer(&self) -> io::BufWriter<io::StdoutLock<'static>> {
        io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
    }

    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            let text = table::wrap_lines(&format!("warning: {msg}"), self.stderr_width());
            let rest = text.trim_end_matches('\n').trim_start_matches("warning:");
            self.err_line(&format!("{}{rest}", self.paint_err("warning:", YELLOW)));
        }
    }

    /// On a terminal, stderr's width: messages wrap at words rather than
    /// where the terminal cuts them.
    fn stderr_width(&self) -> Option<usize> {
        match self.stderr_tty {
            true => terminal_size::terminal_size_of(io::stderr()).map(|(w, _)| usize::from(w.0)),
            false => None,
        }
    }

    pub fn info(&self, msg: &str) {
        if !self.quiet {
            let text = table::wrap_lines(msg, self.stderr_width());
            self.err_line(text.trim_end_matches('\n'));
        }
    }

    /// Shown with -v.
    pub fn verbose(&self, msg: &str) {
        if self.verbosity >= 1 {
            self.err_line(msg);
        }
    }

    /// Shown with -vv.
    pub fn debug(&self, msg: &str) {
        if self.verbosity >= 2 {
            self.err_line(&format!("debug: {msg}"));
        }
    }

    /// Errors are always shown, even with --quiet.
    pub fn error(&self, msg: &str) {
        self.err_line(&format!("{} {msg}", self.paint_err("error:", RED)));
    }

    fn err_line(&self, msg: &str) {
        let _ = writeln!(io::stderr().lock(), "{msg}");
    }

    /// Colour for stdout text.
    pub fn paint<'a>(&self, text: &'a str, style: Style) -> Cow<'a, str> {
        paint(self.color_out, text, style)
    }

    fn paint_err<'a>(&self, text: &'a str, style: Style) -> Cow<'a, str> {
        paint(self.color_err, text, style)
    }

    /// Ask for a secret with a hidden prompt; `None` when prompting is not
    /// allowed (CI, --no-input, no terminal) or the user gave nothing.
    pub fn ask_secret(&self, prompt: &str) -> Option<crate::secret::Secret> {
        if !self.interactive {
            return None;
        }
        dialoguer::Password::new()
            .with_prompt(prompt)
            .allow_empty_password(true)
            .interact()
            .ok()
            .filter(|s| !s.trim().is_empty())
            .map(crate::secret::Secret::new)
    }

    /// Ask a yes/no question on stderr; `None` when prompting is not allowed.
    pub fn confirm(&self, question: &str) -> Option<bool> {
        if !self.interactive {
            return None;
        }
        dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .ok()
    }
}

// ---------------------------------------------------------------------------
// Progress bars and the request log (stderr)
// ---------------------------------------------------------------------------

impl Printer {
    /// A spinner counting `unit` (plural) as they pass, for work of unknown
    /// size: `⠙ 12,345 events  4,321 events/s  2.4 s`.
    pub(crate) fn counter(&self, unit: &'static str) -> ProgressBar {
        self.progress(None, counter_style(unit))
    }

    /// A bar over `len` `unit` (plural; `set_length` may change it later):
    /// `[####      ] 1,234/5,678 customers  41 customers/s  2.4 s`.
    pub(crate) fn bar(&self, len: u64, unit: &'static str) -> ProgressBar {
        self.progress(Some(len), bar_style(unit))
    }

    /// A spinner showing the message its owner sets: `⠙ {msg}  2.4 s`.
    pub(crate) fn spinner(&self) -> ProgressBar {
        self.progress(None, spinner_style())
    }

    /// Hidden unless [`Printer::show_progress`]; cleared when finished or dropped.
    fn progress(&self, len: Option<u64>, style: ProgressStyle) -> ProgressBar {
        if !self.show_progress() {
            return ProgressBar::hidden();
        }
        ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr_with_hz(10))
            .with_style(style)
            .with_finish(ProgressFinish::AndClear)
    }

    /// Where `-vv` writes a line per API request; shareable with the client.
    pub(crate) fn debug_sink(&self) -> DebugSink {
        DebugSink {
            color: self.color_err,
        }
    }
}

impl Printer {
    /// A sink for a server's per-request lines, usable from any task.
    pub(crate) fn request_sink(&self) -> RequestSink {
        RequestSink {
            json: self.json,
            quiet: self.quiet,
            color: self.color_err,
        }
    }
}

/// A server's output from any thread: one log line per request on stderr
/// (hidden by `-q`) and, with `--json`, one JSON object per line on stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSink {
    pub json: bool,
    quiet: bool,
    color: bool,
}

impl RequestSink {
    /// A request's log line; the status coloured by its class.
    pub(crate) fn log(&self, status: u16, rest: &str) {
        if self.quiet {
            return;
        }
        let style = match status {
            200..=299 => GREEN,
            400..=499 => YELLOW,
            _ => RED,
        };
        let stamp = time::OffsetDateTime::now_utc();
        let line = format!(
            "{:02}:{:02}:{:02} {} {rest}",
            stamp.hour(),
            stamp.minute(),
            stamp.second(),
            paint(self.color, &status.to_string(), style)
        );
        let _ = writeln!(io::stderr().lock(), "{line}");
    }

    /// A warning from the server (not hidden by `-q`: it is about the setup).
    pub(crate) fn warn(&self, msg: &str) {
        let _ = writeln!(
            io::stderr().lock(),
            "{} {msg}",
            paint(self.color, "warning:", YELLOW)
        );
    }

    /// One NDJSON line on stdout (with `--json`); a closed stdout is ignored.
    pub(crate) fn ndjson<T: serde::Serialize>(&self, value: &T) {
        if !self.json {
            return;
        }
        if let Ok(mut line) = serde_json::to_vec(value) {
            line.push(b'\n');
            let mut out = io::stdout().lock();
            let _ = out.write_all(&line).and_then(|()| out.flush());
        }
    }
}

/// Writes `debug: ...` lines to stderr from any thread (the HTTP client's
/// request hook), colouring failures when stderr gets colour.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DebugSink {
    color: bool,
}

impl DebugSink {
    /// `debug: GET /v1/customers → 429 req_x 3 ms (retry 1 in 500 ms)`.
    pub(crate) fn request(&self, log: &crate::stripe::RequestLog) {
        let line = request_line(log, self.color);
        // One write per line, so lines from concurrent requests never mix.
        let _ = writeln!(io::stderr().lock(), "debug: {line}");
    }
}

/// Template of [`Printer::counter`]; `count`, `rate` and `elapsed` are ours.
fn counter_style(unit: &'static str) -> ProgressStyle {
    styled("{spinner} {count}  {rate}  {elapsed}", unit)
}

/// Template of [`Printer::bar`].
fn bar_style(unit: &'static str) -> ProgressStyle {
    styled("{bar:30} {count}  {rate}  {elapsed}", unit)
}

fn spinner_style() -> ProgressStyle {
    styled("{spinner} {msg}  {elapsed}", "")
}

/// `template` with the keys that print numbers as [`fmt`] does: `{count}`
/// (`12,345 events`, or `1,234/5,678 customers` once there is a length),
/// `{rate}` (`4,321 events/s`) and `{elapsed}` (`850 ms`, `2.4 s`).
fn styled(template: &str, unit: &'static str) -> ProgressStyle {
    let key = |text: fn(&ProgressState, &str) -> String| {
        move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&text(state, unit));
        }
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "count",
            key(|s, unit| progress_count(s.pos(), s.len(), unit)),
        )
        .with_key("rate", key(|s, unit| fmt::rate(s.per_sec(), unit)))
        .with_key("elapsed", key(|s, _| fmt::elapsed(s.elapsed())))
}

/// `12,345 events`; with a length, `1,234/5,678 customers`.
fn progress_count(pos: u64, len: Option<u64>, unit: &str) -> String {
    match len {
        Some(len) => format!("{}/{} {unit}", fmt::count(pos), fmt::count(len)),
        None => format!("{} {unit}", fmt::count(pos)),
    }
}

/// One request of the `-vv` log, after `debug: `:
/// `GET /v1/customers (retry 1) → 429 req_x 3 ms (retry 2 in 1.0 s)`.
/// With `color`, what went wrong is yellow.
fn request_line(log: &crate::stripe::RequestLog, color: bool) -> String {
    use crate::stripe::NextStep;
    let mut line = format!("{} {}", log.method, log.target);
    if log.retry > 0 {
        let _ = write!(line, " (retry {})", log.retry);
    }
    let status = log.status.map(|s| s.to_string());
    let outcome = [status.as_deref(), log.error]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let failed = log.error.is_some() || log.status.is_none_or(|s| !(200..300).contains(&s));
    let outcome = match failed {
        true => paint(color, &outcome, YELLOW).into_owned(),
        false => outcome,
    };
    let _ = write!(line, " → {outcome}");
    if let Some(id) = &log.request_id {
        let _ = write!(line, " {}", escape_text(id));
    }
    let _ = write!(line, " {}", fmt::elapsed(log.elapsed));
    match log.next {
        NextStep::Done => {}
        NextStep::Retry { number, after } => {
            let _ = write!(line, " (retry {number} in {})", fmt::elapsed(after));
        }
        NextStep::GiveUp => line.push_str(" (no retries left)"),
    }
    line
}

/// Whether fd 1 and fd 2 are the same open file (`cmd > log 2>&1`).
fn stderr_is_stdout() -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let stat = |fd: u8| std::fs::metadata(format!("/proc/self/fd/{fd}")).ok();
        if let (Some(a), Some(b)) = (stat(1), stat(2)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    false
}

/// `COLUMNS` wins (a test or a user can fix the width); else the terminal's.
fn table_width(stdout_tty: bool) -> Option<usize> {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c >= 20);
    match (columns, stdout_tty) {
        (Some(c), _) => Some(c),
        (None, true) => terminal_size::terminal_size_of(io::stdout())
            .map(|(w, _)| usize::from(w.0))
            .or(Some(80)),
        (None, false) => None,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Style(&'static str);
pub const GREEN: Style = Style("32");
pub const RED: Style = Style("31");
pub const YELLOW: Style = Style("33");
pub const DIM: Style = Style("2");

fn paint(on: bool, text: &str, style: Style) -> Cow<'_, str> {
    if on {
        Cow::Owned(format!("\x1b[{}m{text}\x1b[0m", style.0))
    } else {
        Cow::Borrowed(text)
    }
}

/// Escape control characters and bidi overrides in text that came from an
/// event or the API, so it cannot move the cursor or reorder the terminal.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    fn needs_escape(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls_and_bidi() {
        assert_eq!(escape_text("plain é"), "plain é");
        assert_eq!(escape_text("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_text("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape_text("l1\nl2\t\u{7f}"), "l1\\nl2\\t\\u{7f}");
    }

    #[test]
    fn progress_counts_have_separators_and_units() {
        assert_eq!(progress_count(0, None, "events"), "0 events");
        assert_eq!(progress_count(12_345, None, "events"), "12,345 events");
        assert_eq!(
            progress_count(1_234, Some(56_789), "customers"),
            "1,234/56,789 customers"
        );
    }

    /// A terminal that keeps what indicatif draws.
    #[derive(Debug, Clone, Default)]
    struct Screen(std::sync::Arc<std::sync::Mutex<String>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            if let Ok(mut screen) = self.0.lock() {
                screen.push_str(s);
            }
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            if let Ok(mut screen) = self.0.lock() {
                screen.clear();
            }
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What `style` shows for a bar at `pos` of `len`.
    fn render(style: ProgressStyle, len: Option<u64>, pos: u64) -> String {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let bar = ProgressBar::with_draw_target(len, target).with_style(style);
        bar.set_position(pos);
        bar.force_draw();
        let shown = screen.0.lock().map(|s| s.trim_end().to_owned());
        shown.unwrap_or_default()
    }

    /// `rest` is `N UNIT/s  ELAPSED`, N with separators, ELAPSED as fmt::elapsed.
    fn assert_rate_then_elapsed(rest: &str, unit: &str) {
        let (rate, elapsed) = rest.split_once("/s  ").expect(rest);
        let (n, u) = rate.split_once(' ').expect(rate);
        assert_eq!(u, unit, "{rest}");
        assert!(
            !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == ','),
            "{rest}"
        );
        assert!(
            elapsed.ends_with(" ms") || elapsed.ends_with(" s"),
            "{rest}"
        );
    }

    #[test]
    fn counter_shows_separated_count_and_rate() {
        let shown = render(counter_style("events"), None, 1_234_567);
        let (spinner, rest) = shown.split_once(' ').expect(&shown);
        assert_eq!(spinner.chars().count(), 1, "{shown}");
        let rest = rest.strip_prefix("1,234,567 events  ").expect(&shown);
        assert_rate_then_elapsed(rest, "events");
        assert!(!shown.contains("{"), "an unknown key: {shown}");
    }

    #[test]
    fn bar_shows_position_of_length() {
        let shown = render(bar_style("customers"), Some(20_000), 5_000);
        let (bar, rest) = shown.split_once(' ').expect(&shown);
        assert_eq!(bar.chars().count(), 30, "{shown}");
        let rest = rest.strip_prefix("5,000/20,000 customers  ").expect(&shown);
        assert_rate_then_elapsed(rest, "customers");
    }

    #[test]
    fn spinner_shows_its_message() {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let bar = ProgressBar::with_draw_target(None, target).with_style(spinner_style());
        bar.set_message("12 customers");
        bar.force_draw();
        let shown = screen.0.lock().map(|s| s.trim_end().to_owned());
        let shown = shown.unwrap_or_default();
        assert!(shown.contains(" 12 customers  "), "{shown}");
        assert!(shown.ends_with(" ms") || shown.ends_with(" s"), "{shown}");
    }

    #[test]
    fn bars_are_hidden_with_json_quiet_or_debug() {
        let printer = |json, quiet, verbose| {
            Printer::new(&GlobalArgs {
                db: None,
                config: None,
                json,
                quiet,
                verbose,
                color: ColorChoice::Auto,
                no_input: true,
            })
        };
        for p in [
            printer(true, false, 0),
            printer(false, true, 0),
            printer(false, false, 2),
        ] {
            assert!(!p.show_progress());
            assert!(p.counter("events").is_hidden());
            assert!(p.bar(10, "customers").is_hidden());
            assert!(p.spinner().is_hidden());
        }
        // Off a terminal (how `cargo test` runs, unless from a terminal) too.
        let plain = printer(false, false, 0);
        assert_eq!(plain.show_progress(), io::stderr().is_terminal());
    }

    fn log(status: Option<u16>, next: crate::stripe::NextStep) -> crate::stripe::RequestLog {
        crate::stripe::RequestLog {
            method: "GET",
            target: "/v1/customers?limit=100".to_owned(),
            status,
            error: None,
            request_id: Some("req_x".to_owned()),
            elapsed: std::time::Duration::from_millis(3),
            retry: 0,
            next,
        }
    }

    #[test]
    fn request_lines() {
        use crate::stripe::NextStep;
        use std::time::Duration;
        assert_eq!(
            request_line(&log(Some(200), NextStep::Done), false),
            "GET /v1/customers?limit=100 → 200 req_x 3 ms"
        );
        let retry = NextStep::Retry {
            number: 1,
            after: Duration::from_millis(500),
        };
        assert_eq!(
            request_line(&log(Some(429), retry), false),
            "GET /v1/customers?limit=100 → 429 req_x 3 ms (retry 1 in 500 ms)"
        );
        let mut again = log(None, NextStep::GiveUp);
        again.retry = 5;
        again.error = Some("timeout");
        again.request_id = None;
        again.elapsed = Duration::from_millis(30_000);
        assert_eq!(
            request_line(&again, false),
            "GET /v1/customers?limit=100 (retry 5) → timeout 30.0 s (no retries left)"
        );
        let mut cut = log(Some(200), NextStep::Done);
        cut.error = Some("unreadable body");
        assert_eq!(
            request_line(&cut, true),
            "GET /v1/customers?limit=100 → \x1b[33m200 unreadable body\x1b[0m req_x 3 ms"
        );
        // Success stays plain even with colour; a Request-Id cannot inject controls.
        let mut ok = log(Some(200), NextStep::Done);
        ok.request_id = Some("req_\x1b[2J".to_owned());
        assert_eq!(
            request_line(&ok, true),
            "GET /v1/customers?limit=100 → 200 req_\\u{1b}[2J 3 ms"
        );
    }
}

pub(crate) mod audit;
pub(crate) mod fmt;
pub(crate) mod inspect;
pub(crate) mod replay;
pub(crate) mod resync;
pub(crate) mod table;
pub(crate) mod verify;
