//! The one place that writes to stdout and stderr, and decides colour,
//! progress bars and prompts from the flags and the terminal.
//!
//! Colour works as uv's printer does: renderers write text styled with
//! `anstyle`, and each stream (an `anstream::AutoStream`) keeps or strips
//! the styles, from `--color` and, under `auto`, from the terminal,
//! `NO_COLOR`, `CLICOLOR` and `CLICOLOR_FORCE`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};

use anstream::AutoStream;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressState, ProgressStyle};

use crate::cli::{ColorChoice, GlobalArgs};

/// Owner of stdout and stderr for one run.
pub struct Printer {
    pub json: bool,
    quiet: bool,
    verbosity: u8,
    /// Whether each stream keeps the styles written to it.
    out_colors: anstream::ColorChoice,
    err_colors: anstream::ColorChoice,
    interactive: bool,
    stderr_tty: bool,
    stdout_tty: bool,
    /// Columns to fit tables into: on a terminal, its width (or `COLUMNS`);
    /// on a pipe or a file, no limit whatever `COLUMNS` says.
    width: Option<usize>,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Printer {
        let stdout_tty = io::stdout().is_terminal();
        let stderr_tty = io::stderr().is_terminal();
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        Printer {
            json: global.json,
            quiet: global.quiet,
            verbosity: global.verbose,
            out_colors: colors(global.color, &io::stdout()),
            err_colors: colors(global.color, &io::stderr()),
            interactive: !global.no_input && !ci && io::stdin().is_terminal() && stderr_tty,
            stderr_tty,
            stdout_tty,
            width: terminal_width(stdout_tty, || terminal_size::terminal_size_of(io::stdout())),
        }
    }

    /// The width human tables must fit: the terminal's, or none on a pipe
    /// or a file (nothing is cut there).
    pub(crate) fn width(&self) -> Option<usize> {
        self.width
    }

    /// Whether a one-line summary should also go to stderr: stdout is not a
    /// terminal (a file, a pipe), and stderr is not that same file or pipe
    /// (`2>&1`), where the summary already is.
    pub(crate) fn wants_stderr_summary(&self) -> bool {
        !self.stdout_tty && !stderr_is_stdout()
    }

    /// Whether stdout shows colour (renderers that take a flag paint only
    /// then; what reaches the stream is stripped otherwise anyway).
    pub(crate) fn color_out(&self) -> bool {
        self.out_colors != anstream::ColorChoice::Never
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

    /// Write data to stdout, its styles kept or stripped as colour is on or
    /// off there. A closed pipe surfaces as `BrokenPipe`, which the caller
    /// turns into a quiet exit 0.
    pub fn out(&self, text: &str) -> io::Result<()> {
        let mut lock = AutoStream::new(io::stdout().lock(), self.out_colors);
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

    /// A buffered stdout writer for streamed data (JSON, CSV; a renderer
    /// that styles text through it checks [`Printer::color_out`]).
    pub fn stdout_writer(&self) -> io::BufWriter<io::StdoutLock<'static>> {
        io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
    }

    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            self.err_line(&labelled("warning:", YELLOW, msg, self.stderr_width()));
        }
    }

    /// On a terminal, stderr's width: messages wrap at words rather than
    /// where the terminal cuts them.
    fn stderr_width(&self) -> Option<usize> {
        stderr_width(self.stderr_tty)
    }

    pub fn info(&self, msg: &str) {
        if !self.quiet {
            self.err_line(&fit(msg, self.stderr_width()));
        }
    }

    /// Shown with -v.
    pub fn verbose(&self, msg: &str) {
        if self.verbosity >= 1 {
            self.err_line(&fit(msg, self.stderr_width()));
        }
    }

    /// Shown with -vv.
    pub fn debug(&self, msg: &str) {
        if self.verbosity >= 2 {
            self.err_line(&fit(&format!("debug: {msg}"), self.stderr_width()));
        }
    }

    /// Errors are always shown, even with --quiet.
    pub fn error(&self, msg: &str) {
        self.err_line(&labelled("error:", RED, msg, self.stderr_width()));
    }

    fn err_line(&self, msg: &str) {
        err_line(self.err_colors, msg);
    }

    /// `text` styled for stdout: the stream shows or strips the style.
    pub fn paint<'a>(&self, text: &'a str, style: Style) -> Cow<'a, str> {
        paint(true, text, style)
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
        self.progress(None, counter_style(unit, BarTerm::default().width()))
    }

    /// A bar over `len` `unit` (plural; `set_length` may change it later):
    /// `[####      ] 1,234/5,678 customers  41 customers/s  2.4 s`.
    pub(crate) fn bar(&self, len: u64, unit: &'static str) -> ProgressBar {
        self.progress(Some(len), bar_style(unit, BarTerm::default().width()))
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
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(BarTerm::default()), 10);
        ProgressBar::with_draw_target(len, target)
            .with_style(style)
            .with_finish(ProgressFinish::AndClear)
    }

    /// Where `-vv` writes a line per API request; shareable with the client.
    pub(crate) fn debug_sink(&self) -> DebugSink {
        DebugSink {
            colors: self.err_colors,
            stderr_tty: self.stderr_tty,
        }
    }
}

impl Printer {
    /// A sink for a server's per-request lines, usable from any task.
    pub(crate) fn request_sink(&self) -> RequestSink {
        RequestSink {
            json: self.json,
            quiet: self.quiet,
            colors: self.err_colors,
            stderr_tty: self.stderr_tty,
        }
    }
}

/// A server's output from any thread: one log line per request on stderr
/// (hidden by `-q`) and, with `--json`, one JSON object per line on stdout.
/// On a terminal the lines wrap at words to its width (read at each line:
/// the window may be resized); on a pipe or a file each is one whole line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSink {
    pub json: bool,
    quiet: bool,
    colors: anstream::ColorChoice,
    stderr_tty: bool,
}

impl RequestSink {
    /// A request's log line, `HH:MM:SS STATUS REST`; the status coloured by
    /// its class.
    pub(crate) fn log(&self, status: u16, rest: &str) {
        if self.quiet {
            return;
        }
        let stamp = time::OffsetDateTime::now_utc();
        let line = request_log_line(
            (stamp.hour(), stamp.minute(), stamp.second()),
            status,
            rest,
            stderr_width(self.stderr_tty),
        );
        err_line(self.colors, &line);
    }

    /// A warning from the server (not hidden by `-q`: it is about the setup).
    pub(crate) fn warn(&self, msg: &str) {
        let width = stderr_width(self.stderr_tty);
        err_line(self.colors, &labelled("warning:", YELLOW, msg, width));
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
    colors: anstream::ColorChoice,
    stderr_tty: bool,
}

impl DebugSink {
    /// `debug: GET /v1/customers → 429 req_x 3 ms (retry 1 in 500 ms)`,
    /// wrapped at a terminal's width.
    pub(crate) fn request(&self, log: &crate::stripe::RequestLog) {
        let line = request_line(log, true);
        let width = stderr_width(self.stderr_tty);
        err_line(self.colors, &fit(&format!("debug: {line}"), width));
    }
}

/// One line (or one wrapped message) on stderr, its styles kept or
/// stripped by the stream; one write, so lines from concurrent tasks never
/// mix.
fn err_line(colors: anstream::ColorChoice, msg: &str) {
    // Styled (or stripped) into one buffer, then one write: stderr is
    // unbuffered, and a stripping stream writes each unstyled piece on its
    // own (three writes a line for `serve`'s log, per request).
    let mut text = AutoStream::new(Vec::with_capacity(msg.len() + 8), colors);
    let _ = text.write_all(msg.as_bytes());
    let _ = text.write_all(b"\n");
    let text = text.into_inner();
    let mut lock = io::stderr().lock();
    // After Ctrl-C, on a terminal: back to the row's start, erasing the
    // echoed `^C` (no style: written whatever the colours).
    if CTRL_C_ECHOED.swap(false, std::sync::atomic::Ordering::Relaxed) && lock.is_terminal() {
        let _ = lock.write_all(b"\r\x1b[K");
    }
    let _ = lock.write_all(&text);
    let _ = lock.flush();
}

/// `--color` for one stream: `auto` asks anstream (a terminal, `NO_COLOR`,
/// `CLICOLOR`, `CLICOLOR_FORCE`, `TERM=dumb`).
fn colors<S: anstream::stream::RawStream>(flag: ColorChoice, stream: &S) -> anstream::ColorChoice {
    match flag {
        ColorChoice::Always => anstream::ColorChoice::Always,
        ColorChoice::Never => anstream::ColorChoice::Never,
        ColorChoice::Auto => AutoStream::choice(stream),
    }
}

/// `LABEL message`, wrapped to `width` at words, the label styled.
fn labelled(label: &str, style: Style, msg: &str, width: Option<usize>) -> String {
    let text = fit(&format!("{label} {msg}"), width);
    let rest = text.strip_prefix(label).unwrap_or(&text);
    format!("{}{rest}", paint(true, label, style))
}

/// `text` wrapped at words to `width` (continuation lines indented), a word
/// wider than the width split where it must (textwrap's `break_words`);
/// unchanged without a width. No trailing newline.
fn fit(text: &str, width: Option<usize>) -> String {
    table::wrap_lines(text, width)
        .trim_end_matches('\n')
        .to_owned()
}

/// A request's log line at `stamp` (UTC hour, minute, second), wrapped to
/// `width` at words; the status coloured by its class.
fn request_log_line(stamp: (u8, u8, u8), status: u16, rest: &str, width: Option<usize>) -> String {
    let style = match status {
        200..=299 => GREEN,
        400..=499 => YELLOW,
        _ => RED,
    };
    let (h, m, s) = stamp;
    let stamp = format!("{h:02}:{m:02}:{s:02}");
    let text = fit(&format!("{stamp} {status} {rest}"), width);
    // The status is the word after the stamp, on its row or the next.
    let after = &text[stamp.len()..];
    let gap = after.len() - after.trim_start().len();
    let (space, after) = after.split_at(gap);
    let status = status.to_string();
    let tail = after.strip_prefix(status.as_str()).unwrap_or(after);
    format!("{stamp}{space}{style}{status}{style:#}{tail}")
}

/// Stderr as progress bars see it: two columns narrower than the terminal.
/// indicatif pads a bar's line to the width it is given; on the full width
/// the `^C` a terminal echoes at Ctrl-C would wrap onto a new row, and the
/// bar's last clear would erase that row instead of the bar, leaving the bar
/// on screen. Two columns keep the echo on the bar's row, which the clear
/// erases with it. A frame is written in one piece at `flush`.
#[derive(Debug, Default)]
struct BarTerm {
    frame: std::sync::Mutex<String>,
}

impl BarTerm {
    /// The width bars are drawn to (see [`indicatif::TermLike::width`]).
    fn width(&self) -> u16 {
        indicatif::TermLike::width(self)
    }

    fn push(&self, text: &str) -> io::Result<()> {
        self.frame
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_str(text);
        Ok(())
    }

    fn size() -> Option<(u16, u16)> {
        terminal_size::terminal_size_of(io::stderr()).map(|(w, h)| (w.0, h.0))
    }
}

/// Room left at the end of a bar's row for the echoed `^C`.
const ECHO_ROOM: u16 = 2;

impl indicatif::TermLike for BarTerm {
    fn width(&self) -> u16 {
        let cols = BarTerm::size().map_or(80, |(w, _)| w);
        cols.saturating_sub(ECHO_ROOM).max(1)
    }
    fn height(&self) -> u16 {
        BarTerm::size().map_or(24, |(_, h)| h)
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        match n {
            0 => Ok(()),
            n => self.push(&format!("\x1b[{n}A")),
        }
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        match n {
            0 => Ok(()),
            n => self.push(&format!("\x1b[{n}B")),
        }
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        match n {
            0 => Ok(()),
            n => self.push(&format!("\x1b[{n}C")),
        }
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        match n {
            0 => Ok(()),
            n => self.push(&format!("\x1b[{n}D")),
        }
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.push(s)?;
        self.push("\n")
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.push(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.push("\r\x1b[2K")
    }
    fn flush(&self) -> io::Result<()> {
        let frame = std::mem::take(&mut *self.frame.lock().unwrap_or_else(|p| p.into_inner()));
        let mut err = io::stderr().lock();
        err.write_all(frame.as_bytes())?;
        err.flush()
    }
}

/// Whether Ctrl-C was pressed and nothing was written to stderr since.
static CTRL_C_ECHOED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ctrl-C was pressed (the runtime's handler says so): a terminal echoed
/// `^C` where the cursor was, at the start of an empty row, so the next
/// line on stderr would begin two columns in and could be wider than the
/// terminal. That line erases the echo first.
pub(crate) fn ctrl_c_pressed() {
    CTRL_C_ECHOED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Template of [`Printer::counter`] for a row `cols` wide; `count`, `rate`
/// and `elapsed` are ours. The rate goes first when the row is narrow
/// (`⠙ 1,234,567 events  123,456 events/s  59.9 s` is 45 columns).
fn counter_style(unit: &'static str, cols: u16) -> ProgressStyle {
    match cols {
        50.. => styled("{spinner} {count}  {rate}  {elapsed}", unit),
        _ => styled("{spinner} {count}  {elapsed}", unit),
    }
}

/// Template of [`Printer::bar`] for a row `cols` wide: the bar takes what
/// the numbers leave (`1,234,567/1,234,567 customers` alone is 29 columns),
/// and the rate, then the time, give way on narrow rows.
fn bar_style(unit: &'static str, cols: u16) -> ProgressStyle {
    match cols {
        78.. => styled("{wide_bar} {count}  {rate}  {elapsed}", unit),
        56.. => styled("{wide_bar} {count}  {elapsed}", unit),
        _ => styled("{wide_bar} {count}", unit),
    }
}

/// The owner's message, cut to the row (indicatif's `wide_msg`).
fn spinner_style() -> ProgressStyle {
    styled("{spinner} {wide_msg}  {elapsed}", "")
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

/// Whether stdout and stderr are the same open file (`cmd > log 2>&1`).
fn stderr_is_stdout() -> bool {
    match (same_file::Handle::stdout(), same_file::Handle::stderr()) {
        (Ok(out), Ok(err)) => out == err,
        _ => false,
    }
}

/// The width of a terminal: `COLUMNS` when set (a user can fix it), else
/// what the terminal says (80 if it cannot tell). Off a terminal, none:
/// `COLUMNS` applies to terminals only, and nothing is cut on a pipe.
fn terminal_width(
    tty: bool,
    size: impl FnOnce() -> Option<(terminal_size::Width, terminal_size::Height)>,
) -> Option<usize> {
    if !tty {
        return None;
    }
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c >= 20);
    columns
        .or_else(|| size().map(|(w, _)| usize::from(w.0)))
        .or(Some(80))
}

/// Stderr's width when it is a terminal.
fn stderr_width(stderr_tty: bool) -> Option<usize> {
    terminal_width(stderr_tty, || terminal_size::terminal_size_of(io::stderr()))
}

/// A text style (`anstyle`); the stream decides whether it shows.
pub type Style = anstyle::Style;
pub const GREEN: Style = anstyle::AnsiColor::Green.on_default();
pub const RED: Style = anstyle::AnsiColor::Red.on_default();
pub const YELLOW: Style = anstyle::AnsiColor::Yellow.on_default();
pub const DIM: Style = anstyle::Style::new().dimmed();

/// `text` in `style` when `on` (renderers that know the stream's choice).
fn paint(on: bool, text: &str, style: Style) -> Cow<'_, str> {
    if on {
        Cow::Owned(format!("{style}{text}{style:#}"))
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
    fn off_a_terminal_there_is_no_width_whatever_columns_says() {
        let size = || Some((terminal_size::Width(100), terminal_size::Height(40)));
        assert_eq!(terminal_width(false, size), None);
        assert!(terminal_width(true, size).is_some());
    }

    /// Each row of `text` at most `width` cells wide, escapes not counted.
    fn assert_within(text: &str, width: usize) {
        for row in anstream::adapter::strip_str(text).to_string().lines() {
            assert!(
                unicode_width::UnicodeWidthStr::width(row) <= width,
                "{row:?} is wider than {width}:\n{text}"
            );
        }
    }

    #[test]
    fn messages_wrap_at_words_and_split_only_what_no_break_fits() {
        let msg = "waiting for the Stripe API: cannot reach http://127.0.0.1:9/v1/events?limit=100&types[]=invoice.paid: connection refused";
        assert_eq!(fit(msg, None), msg);
        for width in [20, 40, 60, 80] {
            let text = fit(msg, Some(width));
            assert_within(&text, width);
            let joined: String = text.split('\n').map(str::trim_start).collect();
            assert_eq!(joined.replace(' ', ""), msg.replace(' ', ""), "{text}");
        }
        assert_eq!(
            fit("one two three four", Some(9)),
            "one two\n  three\n  four"
        );
    }

    #[test]
    fn request_log_lines_wrap_at_a_terminal_and_stay_whole_on_a_pipe() {
        let rest = "evt_1ATr2kRkT3sQ8vLm0N1fzK0A checkout.session.completed sync user_23q4rvzWDYkqJ0g9tlqhv8lWozr 12 ms";
        assert_eq!(
            request_log_line((8, 5, 3), 200, rest, None),
            format!("08:05:03 \x1b[32m200\x1b[0m {rest}")
        );
        for width in [40, 60, 80] {
            let wrapped = request_log_line((8, 5, 3), 404, rest, Some(width));
            assert_within(&wrapped, width);
            assert_eq!(
                wrapped.matches("\x1b[33m404\x1b[0m").count(),
                1,
                "{wrapped}"
            );
            let plain = anstream::adapter::strip_str(&wrapped).to_string();
            let words: Vec<&str> = plain.split_whitespace().collect();
            let line = format!("08:05:03 404 {rest}");
            let want: Vec<&str> = line.split(' ').collect();
            assert_eq!(words, want, "{wrapped}");
        }
    }

    #[test]
    fn labels_are_styled_and_the_stream_strips_them() {
        let text = labelled("warning:", YELLOW, "the disk is nearly full", Some(20));
        assert_eq!(text, "\x1b[33mwarning:\x1b[0m the disk is\n  nearly full");
        let mut plain = AutoStream::new(Vec::new(), anstream::ColorChoice::Never);
        plain.write_all(text.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(plain.into_inner()).unwrap(),
            "warning: the disk is\n  nearly full"
        );
        assert_eq!(paint(false, "x", RED), "x");
        assert_eq!(paint(true, "x", DIM), "\x1b[2mx\x1b[0m");
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
    #[derive(Debug, Clone)]
    struct Screen(std::sync::Arc<std::sync::Mutex<String>>, u16);

    impl Screen {
        fn new(cols: u16) -> Screen {
            Screen(Default::default(), cols)
        }
    }

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            self.1
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
        render_at(200, style, len, pos)
    }

    /// What `style` shows on a row `cols` wide.
    fn render_at(cols: u16, style: ProgressStyle, len: Option<u64>, pos: u64) -> String {
        let screen = Screen::new(cols);
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
        let shown = render(counter_style("events", 200), None, 1_234_567);
        let (spinner, rest) = shown.split_once(' ').expect(&shown);
        assert_eq!(spinner.chars().count(), 1, "{shown}");
        let rest = rest.strip_prefix("1,234,567 events  ").expect(&shown);
        assert_rate_then_elapsed(rest, "events");
        assert!(!shown.contains("{"), "an unknown key: {shown}");
    }

    #[test]
    fn bar_shows_position_of_length() {
        let shown = render(bar_style("customers", 200), Some(20_000), 5_000);
        let (bar, rest) = shown.split_once(' ').expect(&shown);
        // The bar takes the row the numbers leave.
        assert_eq!(
            bar.chars().count() + 1 + rest.chars().count(),
            200,
            "{shown}"
        );
        let rest = rest.strip_prefix("5,000/20,000 customers  ").expect(&shown);
        assert_rate_then_elapsed(rest, "customers");
    }

    /// On rows from 38 columns up (a 40-column terminal less the echo room)
    /// no bar, counter or spinner is wider than its row, whatever the count.
    #[test]
    fn progress_fits_narrow_rows() {
        for cols in [38, 50, 58, 78, 118] {
            let styles = [
                (bar_style("customers", cols), Some(1_234_567)),
                (counter_style("events", cols), None),
                (spinner_style(), None),
            ];
            for (style, len) in styles {
                let style = style.tick_chars("⠁⠂ ");
                let shown = render_at(cols, style, len, 1_234_567);
                let width = unicode_width::UnicodeWidthStr::width(shown.as_str());
                assert!(width <= usize::from(cols), "{width} > {cols}: {shown}");
                assert!(shown.contains("1,234,567") || len.is_none(), "{shown}");
            }
        }
    }

    #[test]
    fn spinner_shows_its_message() {
        let screen = Screen::new(200);
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
pub(crate) mod catchup;
pub(crate) mod fmt;
pub(crate) mod inspect;
pub(crate) mod replay;
pub(crate) mod resync;
pub(crate) mod table;
pub(crate) mod verify;
