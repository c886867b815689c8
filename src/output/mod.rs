//! The one place that writes to stdout and stderr, and decides colour,
//! progress bars and prompts from the flags and the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};

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

    /// Whether stdout is a terminal (else a one-line summary goes to stderr).
    pub(crate) fn stdout_is_terminal(&self) -> bool {
        self.stdout_tty
    }

    /// Whether stdout gets colour.
    pub(crate) fn color_out(&self) -> bool {
        self.color_out
    }

    /// Whether the user may be asked questions.
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Whether progress bars should be drawn.
    pub fn show_progress(&self) -> bool {
        self.stderr_tty && !self.quiet && !self.json
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
        serde_json::to_writer_pretty(&mut lock, value).map_err(io::Error::other)?;
        lock.write_all(b"\n")?;
        lock.flush()
    }

    /// A buffered stdout writer for streamed output.
    pub fn stdout_writer(&self) -> io::BufWriter<io::StdoutLock<'static>> {
        io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
    }

    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            self.err_line(&format!("{} {msg}", self.paint_err("warning:", YELLOW)));
        }
    }

    pub fn info(&self, msg: &str) {
        if !self.quiet {
            self.err_line(msg);
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

    /// A progress bar on stderr, hidden unless [`Printer::show_progress`].
    pub fn progress(&self, len: Option<u64>, template: &str) -> indicatif::ProgressBar {
        if !self.show_progress() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = match len {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::no_length(),
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(10));
        bar
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
}

pub(crate) mod fmt;
pub(crate) mod table;
pub(crate) mod replay;
pub(crate) mod resync;
