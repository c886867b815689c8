//! Human tables that fit the terminal: columns are chosen by priority, long
//! values are shortened (in the middle for ids, from the left for paths),
//! widths are measured in terminal cells (unicode-aware), and no line ends
//! in a space. Without a width (stdout is not a terminal) nothing is cut.

use std::io::{self, Write};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::{Style, paint};

/// Spaces between columns.
const GAP: usize = 2;

/// Where a value too long for its column loses characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// `cus_1gIH…OoIW0c`: ids keep both ends.
    Middle,
    /// `…/2026-04-billing/03.json`: paths keep their end.
    Left,
    /// `connection refus…`: prose keeps its start.
    Right,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Col {
    pub header: &'static str,
    /// 0: always shown; higher numbers are dropped first when space runs out.
    pub priority: u8,
    /// The narrowest the column may be shortened to.
    pub min: usize,
    pub cut: Cut,
    /// Among columns of one priority, a column that gives first when the
    /// table must shrink (an event type before the ids beside it).
    pub gives_first: bool,
}

impl Col {
    pub(crate) const fn new(header: &'static str, priority: u8, min: usize, cut: Cut) -> Col {
        Col {
            header,
            priority,
            min,
            cut,
            gives_first: false,
        }
    }

    /// This column shortens before the others of its priority.
    pub(crate) const fn gives_first(mut self) -> Col {
        self.gives_first = true;
        self
    }
}

/// One cell: its text (already escaped) and an optional colour.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cell {
    pub text: String,
    pub style: Option<Style>,
}

impl Cell {
    pub(crate) fn styled(text: impl Into<String>, style: Option<Style>) -> Cell {
        Cell {
            text: text.into(),
            style,
        }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(text: T) -> Cell {
        Cell {
            text: text.into(),
            style: None,
        }
    }
}

/// The display width of a string, in terminal cells.
pub(crate) fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` shortened to at most `max` cells, cut as `cut` says.
pub(crate) fn shorten(s: &str, max: usize, cut: Cut) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let take = |chars: &mut dyn Iterator<Item = char>, budget: usize| -> String {
        let mut out = String::new();
        let mut used = 0;
        for c in chars {
            let w = c.width().unwrap_or(0);
            if used + w > budget {
                break;
            }
            used += w;
            out.push(c);
        }
        out
    };
    let room = max - 1; // the ellipsis takes one cell
    match cut {
        Cut::Right => format!("{}…", take(&mut s.chars(), room)),
        Cut::Left => {
            let tail: String = take(&mut s.chars().rev(), room).chars().rev().collect();
            format!("…{tail}")
        }
        Cut::Middle => {
            let head = take(&mut s.chars(), room.div_ceil(2));
            let tail: String = take(&mut s.chars().rev(), room / 2).chars().rev().collect();
            format!("{head}…{tail}")
        }
    }
}

/// Column widths for a width limit: `None` = the column is not shown.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    widths: Vec<Option<usize>>,
    /// Values longer than their column are cut (only with a width limit).
    cut: bool,
    /// The required columns cannot fit this limit even shortened: each
    /// record is drawn as a block of `key: value` lines instead of a row.
    blocks: Option<usize>,
}

impl Layout {
    /// Fit columns whose values need `natural` cells into `limit` cells:
    /// drop the least important columns first, then shorten the rest, the
    /// least important first (in proportion to what each can give within
    /// one priority), never below its `min`. When even the required
    /// columns at their `min` are wider than `limit`, the layout is blocks.
    pub(crate) fn fit(cols: &[Col], natural: &[usize], limit: Option<usize>) -> Layout {
        let mut widths: Vec<Option<usize>> = natural
            .iter()
            .zip(cols)
            .map(|(n, c)| Some((*n).max(width(c.header))))
            .collect();
        let Some(limit) = limit else {
            return Layout {
                widths,
                cut: false,
                blocks: None,
            };
        };
        let floor_of = |c: &Col| c.min.max(width(c.header));
        let total = |ws: &[Option<usize>]| -> usize {
            let shown: Vec<usize> = ws.iter().flatten().copied().collect();
            shown.iter().sum::<usize>() + GAP * shown.len().saturating_sub(1)
        };
        let floor = |ws: &[Option<usize>]| -> usize {
            let shown: Vec<usize> = ws
                .iter()
                .zip(cols)
                .filter_map(|(w, c)| w.map(|w| w.min(floor_of(c))))
                .collect();
            shown.iter().sum::<usize>() + GAP * shown.len().saturating_sub(1)
        };
        // Drop optional columns, least important (and rightmost) first,
        // while they could only fit by squeezing the required columns below
        // three quarters of their natural width (or below their minimum).
        let need = |ws: &[Option<usize>]| -> usize {
            let shown: Vec<usize> = ws
                .iter()
                .zip(cols)
                .filter_map(|(w, c)| {
                    let min = floor_of(c);
                    w.map(|w| match c.priority {
                        0 => w.min(min.max(w * 3 / 4)),
                        _ => w.min(min),
                    })
                })
                .collect();
            shown.iter().sum::<usize>() + GAP * shown.len().saturating_sub(1)
        };
        while need(&widths) > limit || floor(&widths) > limit {
            let victim = cols
                .iter()
                .enumerate()
                .filter(|(i, c)| c.priority > 0 && widths[*i].is_some())
                .max_by_key(|(i, c)| (c.priority, *i))
                .map(|(i, _)| i);
            match victim {
                Some(i) => widths[i] = None,
                None => break,
            }
        }
        if floor(&widths) > limit {
            return Layout {
                widths: natural.iter().map(|n| Some(*n)).collect(),
                cut: false,
                blocks: Some(limit),
            };
        }
        // Then shorten what is shown: the least important columns first,
        // columns of one priority each in proportion to what it can give
        // above its floor.
        let mut over = total(&widths).saturating_sub(limit);
        let level_of = |c: &Col| (c.priority, c.gives_first);
        let mut levels: Vec<(u8, bool)> = cols.iter().map(level_of).collect();
        levels.sort_unstable_by(|a, b| b.cmp(a));
        levels.dedup();
        for level in levels {
            while over > 0 {
                let slack: Vec<(usize, usize)> = widths
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| level_of(&cols[*i]) == level)
                    .filter_map(|(i, w)| w.map(|w| (i, w.saturating_sub(floor_of(&cols[i])))))
                    .filter(|(_, s)| *s > 0)
                    .collect();
                let spare: usize = slack.iter().map(|(_, s)| s).sum();
                if spare == 0 {
                    break;
                }
                let mut taken = 0;
                for (i, s) in slack {
                    let share = (s * over / spare).max(1).min(s).min(over - taken);
                    if let Some(w) = widths[i].as_mut() {
                        *w -= share;
                    }
                    taken += share;
                    if taken == over {
                        break;
                    }
                }
                over -= taken;
            }
        }
        // Room left over goes to the last column shown (it needs no
        // padding): a long path or reason is cut only when it must be.
        let spare = limit.saturating_sub(total(&widths));
        if let Some(last) = widths.iter_mut().rev().find_map(|w| w.as_mut()) {
            *last += spare;
        }
        Layout {
            widths,
            cut: true,
            blocks: None,
        }
    }

    /// Whether each record is a block of `key: value` lines (see [`Layout::record`]).
    pub(crate) fn blocks(&self) -> bool {
        self.blocks.is_some()
    }

    /// Headers of the columns left out (none in blocks: they show every field).
    pub(crate) fn hidden(&self, cols: &[Col]) -> Vec<&'static str> {
        if self.blocks() {
            return Vec::new();
        }
        self.widths
            .iter()
            .zip(cols)
            .filter(|(w, _)| w.is_none())
            .map(|(_, c)| c.header)
            .collect()
    }

    /// The line of one row: shown columns padded to their widths, no
    /// trailing spaces, colour around the visible text only. In blocks,
    /// the record's block (see [`Layout::record`]).
    pub(crate) fn line(&self, cols: &[Col], cells: &[Cell], color: bool) -> String {
        if self.blocks() {
            return self.record(cols, cells, color);
        }
        let shown: Vec<(usize, usize)> = self
            .widths
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.map(|w| (i, w)))
            .collect();
        let mut out = String::with_capacity(128);
        for (n, (i, w)) in shown.iter().enumerate() {
            let empty = Cell::default();
            let cell = cells.get(*i).unwrap_or(&empty);
            let text = match self.cut {
                true => shorten(&cell.text, *w, cols[*i].cut),
                false => cell.text.clone(),
            };
            let pad = w.saturating_sub(width(&text));
            match cell.style {
                Some(style) => out.push_str(&paint(color, &text, style)),
                None => out.push_str(&text),
            }
            if n + 1 < shown.len() {
                out.push_str(&" ".repeat(pad + GAP));
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out
    }

    /// One record as a block: a `key: value` line per field (the header in
    /// lower case; empty and `-` values left out), values aligned and never
    /// cut: a value too long for its line moves under its key, and prose
    /// wraps at words.
    pub(crate) fn record(&self, cols: &[Col], cells: &[Cell], color: bool) -> String {
        let limit = self.blocks.unwrap_or(usize::MAX);
        let keys: Vec<String> = cols
            .iter()
            .map(|c| format!("{}:", c.header.to_lowercase()))
            .collect();
        let key_width = keys.iter().map(|k| width(k)).max().unwrap_or(0) + 1;
        let mut out = String::new();
        for (key, cell) in keys.iter().zip(cells) {
            if cell.text.is_empty() || cell.text == "-" {
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            let text = match cell.style {
                Some(style) => paint(color, &cell.text, style),
                None => cell.text.as_str().into(),
            };
            let value = width(&cell.text);
            if key_width + value <= limit {
                out.push_str(&format!("{key:<key_width$}{text}"));
            } else if !cell.text.contains(' ') && 2 + value <= limit {
                out.push_str(&format!("{key}\n  {text}"));
            } else {
                let first = format!("{key:<key_width$}");
                out.push_str(&wrap_with(&text, &first, &" ".repeat(key_width), limit));
            }
        }
        out
    }

    /// The header line (nothing in blocks: each field is named).
    pub(crate) fn header(&self, cols: &[Col]) -> String {
        if self.blocks() {
            return String::new();
        }
        let cells: Vec<Cell> = cols.iter().map(|c| Cell::from(c.header)).collect();
        self.line(cols, &cells, false)
    }
}

/// A whole table: widths from every row, then fitted to `limit`; in
/// blocks, one block per row, a blank line between blocks.
pub(crate) fn render(
    cols: &[Col],
    rows: &[Vec<Cell>],
    limit: Option<usize>,
    color: bool,
) -> (String, Layout) {
    let layout = Layout::fit(cols, &natural(cols, rows), limit);
    let mut out = String::new();
    push_header(&layout, cols, &mut out);
    for (i, row) in rows.iter().enumerate() {
        push_row(&layout, cols, row, color, i == 0, &mut out);
    }
    (out, layout)
}

/// The widths the values of `rows` (and the headers) need.
fn natural(cols: &[Col], rows: &[Vec<Cell>]) -> Vec<usize> {
    let mut natural: Vec<usize> = cols.iter().map(|c| width(c.header)).collect();
    for row in rows {
        for (n, cell) in natural.iter_mut().zip(row) {
            *n = (*n).max(width(&cell.text));
        }
    }
    natural
}

/// The header line and its line break (nothing in blocks).
fn push_header(layout: &Layout, cols: &[Col], out: &mut String) {
    if !layout.blocks() {
        out.push_str(&layout.header(cols));
        out.push('\n');
    }
}

/// One row and its line break; in blocks, a blank line before every
/// block but the `first`.
fn push_row(
    layout: &Layout,
    cols: &[Col],
    row: &[Cell],
    color: bool,
    first: bool,
    out: &mut String,
) {
    if layout.blocks() && !first {
        out.push('\n');
    }
    out.push_str(&layout.line(cols, row, color));
    out.push('\n');
}

/// What a [`Streamed`] table calls with its layout, once fixed.
type Announce<'a> = Box<dyn FnOnce(&Layout) + 'a>;

/// How many rows a [`Streamed`] table sizes its columns from.
pub(crate) const SIZED_FROM: usize = 1000;

/// A table written as its rows come, in bounded memory: the first
/// [`SIZED_FROM`] rows are held to size the columns (fitted to `limit` as
/// [`render`] fits them), then every row is written at once. Without a
/// limit nothing is cut, so a later, wider value pushes the rest of its
/// line right; with one, later values are cut to the columns' widths.
/// A table of at most [`SIZED_FROM`] rows is [`render`]'s, byte for byte.
pub(crate) struct Streamed<'a, W: Write> {
    cols: &'a [Col],
    limit: Option<usize>,
    color: bool,
    out: W,
    /// Told the layout once it is fixed, before any line is written.
    announce: Option<Announce<'a>>,
    /// The rows read before the layout is fixed.
    held: Vec<Vec<Cell>>,
    layout: Option<Layout>,
    rows: u64,
    /// The line being written (reused).
    line: String,
}

impl<'a, W: Write> Streamed<'a, W> {
    pub(crate) fn new(
        cols: &'a [Col],
        limit: Option<usize>,
        color: bool,
        out: W,
        announce: impl FnOnce(&Layout) + 'a,
    ) -> Self {
        Streamed {
            cols,
            limit,
            color,
            out,
            announce: Some(Box::new(announce)),
            held: Vec::new(),
            layout: None,
            rows: 0,
            line: String::with_capacity(256),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<Cell>) -> io::Result<()> {
        match &self.layout {
            Some(_) => self.write(&cells),
            None => {
                self.held.push(cells);
                match self.held.len() >= SIZED_FROM {
                    true => self.fix(),
                    false => Ok(()),
                }
            }
        }
    }

    /// After the last row: a table of fewer rows than [`SIZED_FROM`] (or
    /// of none: the header alone) is sized and written now. Flushes.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        if self.layout.is_none() {
            self.fix()?;
        }
        self.out.flush()
    }

    /// Size the columns from the rows held, then write them.
    fn fix(&mut self) -> io::Result<()> {
        let layout = Layout::fit(self.cols, &natural(self.cols, &self.held), self.limit);
        if let Some(announce) = self.announce.take() {
            announce(&layout);
        }
        self.line.clear();
        push_header(&layout, self.cols, &mut self.line);
        self.out.write_all(self.line.as_bytes())?;
        self.layout = Some(layout);
        for cells in std::mem::take(&mut self.held) {
            self.write(&cells)?;
        }
        Ok(())
    }

    fn write(&mut self, cells: &[Cell]) -> io::Result<()> {
        let Some(layout) = &self.layout else {
            return Ok(());
        };
        self.line.clear();
        push_row(
            layout,
            self.cols,
            cells,
            self.color,
            self.rows == 0,
            &mut self.line,
        );
        self.rows += 1;
        self.out.write_all(self.line.as_bytes())
    }
}

/// `text` after `prefix`, wrapped at `limit` cells (continuation lines
/// indented like the first); no line ends in a space.
pub(crate) fn wrap(text: &str, prefix: &str, limit: usize) -> String {
    wrap_with(text, prefix, &" ".repeat(width(prefix)), limit)
}

/// `text` wrapped at words to `limit` cells (textwrap, which measures
/// without the colour codes): the first line after `first`, the others
/// after `rest`. A word longer than a line is broken, so no line is wider
/// than the terminal.
fn wrap_with(text: &str, first: &str, rest: &str, limit: usize) -> String {
    // A number stays with the word after it (`83 ms`, `45 events:`): the
    // space between them is a no-break space while wrapping.
    const GLUE: char = '\u{a0}';
    let glued = !text.contains(GLUE);
    let text = match glued {
        true => glue_numbers(text, GLUE),
        false => text.to_owned(),
    };
    let options = textwrap::Options::new(limit)
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(true)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    let lines: Vec<String> = textwrap::wrap(&text, options)
        .iter()
        .map(|l| l.trim_end().to_owned())
        .collect();
    let out = lines.join("\n");
    match glued {
        true => out.replace(GLUE, " "),
        false => out,
    }
}

/// `text` with each space between a number (`12`, `1,234`, `0.4`) and a
/// short word after it (`ms`, `events:`) replaced by `glue`.
fn glue_numbers(text: &str, glue: char) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            let previous = out.rsplit([' ', glue]).next().unwrap_or("");
            let number = previous.trim_start_matches(['(', '#']);
            let numeric = number.bytes().any(|b| b.is_ascii_digit())
                && number
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b',' || b == b'.');
            // A unit or a counted noun, not an id or a sentence.
            let unit = !word.is_empty()
                && word.chars().count() <= 10
                && word
                    .chars()
                    .all(|c| c.is_alphabetic() || ",;:.)".contains(c));
            out.push(if numeric && unit { glue } else { ' ' });
        }
        out.push_str(word);
    }
    out
}

/// Each line of `text` wrapped at `limit` cells (continuation lines indented
/// two more than the line's own indentation); unchanged without a limit.
pub(crate) fn wrap_lines(text: &str, limit: Option<usize>) -> String {
    let Some(limit) = limit else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.lines() {
        let body = line.trim_start_matches(' ');
        let indent = &line[..line.len() - body.len()];
        if !body.trim().is_empty() {
            out.push_str(&wrap_with(body, indent, &format!("{indent}  "), limit));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: [Col; 3] = [
        Col::new("ID", 0, 8, Cut::Middle),
        Col::new("PATH", 2, 10, Cut::Left),
        Col::new("NOTE", 1, 6, Cut::Right),
    ];

    fn row(a: &str, b: &str, c: &str) -> Vec<Cell> {
        vec![a.into(), b.into(), c.into()]
    }

    #[test]
    fn shortens_by_cut_and_unicode_width() {
        assert_eq!(
            shorten("cus_1gIHnbN8OoIW0c", 15, Cut::Middle),
            "cus_1gI…8OoIW0c"
        );
        assert_eq!(width(&shorten("cus_1gIHnbN8OoIW0c", 15, Cut::Middle)), 15);
        assert_eq!(
            shorten("fixtures/2026-04/03.json", 12, Cut::Left),
            "…-04/03.json"
        );
        assert_eq!(
            width(&shorten("fixtures/2026-04/03.json", 12, Cut::Left)),
            12
        );
        assert_eq!(shorten("connection refused", 8, Cut::Right), "connect…");
        // Wide characters count two cells and are never split.
        let s = shorten("日本語のテキスト", 7, Cut::Right);
        assert!(width(&s) <= 7, "{s}");
        assert_eq!(shorten("short", 10, Cut::Middle), "short");
    }

    #[test]
    fn no_limit_cuts_nothing_and_no_line_ends_in_a_space() {
        let rows = vec![row("a_very_long_identifier", "p", ""), row("b", "q", "x")];
        let (out, layout) = render(&COLS, &rows, None, false);
        assert!(layout.hidden(&COLS).is_empty());
        assert!(out.contains("a_very_long_identifier"));
        for line in out.lines() {
            assert!(!line.ends_with(' '), "{line:?}");
        }
    }

    #[test]
    fn fits_the_width_dropping_by_priority_then_shortening() {
        let rows = vec![row(
            "cus_1gIHnbN8OoIW0c_and_more",
            "fixtures/2026-04-billing/03-initech-invoice-paid.json",
            "a long note that explains",
        )];
        for limit in [8, 16, 20, 30, 40, 60, 80] {
            let (out, _) = render(&COLS, &rows, Some(limit), false);
            for line in out.lines() {
                assert!(width(line) <= limit, "{limit}: {line:?}");
                assert!(!line.ends_with(' '));
            }
        }
        let (_, layout) = render(&COLS, &rows, Some(40), false);
        assert!(layout.hidden(&COLS).is_empty());
        let (_, layout) = render(&COLS, &rows, Some(30), false);
        assert_eq!(
            layout.hidden(&COLS),
            ["PATH"],
            "the least important goes first"
        );
        // Optional columns do not squeeze a required one much.
        let (_, layout) = render(&COLS, &rows, Some(24), false);
        assert_eq!(layout.hidden(&COLS), ["PATH", "NOTE"]);
        // Required columns shorten when nothing else is left.
        let (out, _) = render(&COLS, &rows, Some(16), false);
        assert_eq!(out.lines().nth(1), Some("cus_1gIH…nd_more"), "{out}");
    }

    #[test]
    fn wraps_at_words_and_indents_continuations() {
        let text = "  hint payload_trailing_newline: the signature matches once the trailing newline is removed\nshort\n";
        let out = wrap_lines(text, Some(40));
        for line in out.lines() {
            assert!(width(line) <= 40, "{line:?}");
            assert!(!line.ends_with(' '));
        }
        assert!(out.contains("\n    "), "continuations indented: {out}");
        assert!(out.ends_with("\nshort\n"));
        // A number and its unit stay on one line.
        let out = wrap_lines(
            "56 customers: 0 failed; 2 API requests, 0 retries, 83 ms\n",
            Some(38),
        );
        assert_eq!(
            out,
            "56 customers: 0 failed; 2 API\n  requests, 0 retries, 83 ms\n"
        );
        assert_eq!(wrap_lines(text, None), text);
    }

    #[test]
    fn colour_wraps_the_text_not_the_padding() {
        let cells = vec![
            Cell::styled("ok", Some(super::super::RED)),
            Cell::from("p"),
            Cell::from("n"),
        ];
        let layout = Layout::fit(&COLS, &[8, 4, 4], None);
        let line = layout.line(&COLS, &cells, true);
        assert!(line.starts_with("\x1b[31mok\x1b[0m      "), "{line:?}");
    }

    #[test]
    fn a_row_that_cannot_fit_becomes_a_block_of_every_field() {
        let rows = vec![row(
            "cus_1gIHnbN8OoIW0c",
            "fixtures/2026-04-billing/03-initech-invoice-paid.json",
            "a long note that explains why",
        )];
        let cols = [
            Col::new("ID", 0, 18, Cut::Middle),
            Col::new("PATH", 0, 20, Cut::Left),
            Col::new("NOTE", 1, 6, Cut::Right),
        ];
        let (out, layout) = render(&cols, &rows, Some(30), false);
        assert!(layout.blocks() && layout.hidden(&cols).is_empty());
        // A word too long for its line is broken; prose wraps at words;
        // both under the value's column.
        assert_eq!(
            out,
            "id:   cus_1gIHnbN8OoIW0c\n\
             path: fixtures/2026-04-billing\n      /03-initech-invoice-paid\n      .json\n\
             note: a long note that\n      explains why\n"
        );
        // A one-word value that fits a line of its own goes under its key.
        let (out, _) = render(
            &cols,
            &[row("cus_1gIHnbN8OoIW0c", "fixtures/2026-04/03.json", "-")],
            Some(28),
            false,
        );
        assert_eq!(
            out,
            "id:   cus_1gIHnbN8OoIW0c\npath:\n  fixtures/2026-04/03.json\n"
        );
        for line in out.lines() {
            assert!(width(line) <= 30, "{line:?}");
        }
        // Two records: a blank line between them; `-` values left out.
        let id = "cus_1gIHnbN8OoIW0c";
        let two = vec![row(id, "-", "x"), row(id, "fixtures/x.json", "y")];
        let (out, _) = render(&cols, &two, Some(30), false);
        assert_eq!(
            out,
            format!("id:   {id}\nnote: x\n\nid:   {id}\npath: fixtures/x.json\nnote: y\n")
        );
        // Wide enough, a table.
        let (_, layout) = render(&cols, &rows, Some(80), false);
        assert!(!layout.blocks());
    }

    #[test]
    fn the_least_important_column_shortens_first() {
        let cols = [
            Col::new("ID", 0, 8, Cut::Middle),
            Col::new("TYPE", 0, 8, Cut::Middle).gives_first(),
            Col::new("DRIFT", 1, 6, Cut::Right),
        ];
        // 20 + 20 + 30 + 4 gaps = 74; at 60, DRIFT gives all 14.
        let layout = Layout::fit(&cols, &[20, 20, 30], Some(60));
        assert_eq!(layout.widths, [Some(20), Some(20), Some(16)]);
        // At 40: DRIFT down to 6 (24 given), then TYPE gives the rest (10).
        let layout = Layout::fit(&cols, &[20, 20, 30], Some(46));
        assert_eq!(layout.widths, [Some(20), Some(16), Some(6)]);
    }

    /// The table streamed through `Streamed`, and what it announced.
    fn streamed(cols: &[Col], rows: &[Vec<Cell>], limit: Option<usize>) -> (String, Layout) {
        let announced = std::cell::RefCell::new(None);
        let mut out = Vec::new();
        let mut table = Streamed::new(cols, limit, false, &mut out, |l: &Layout| {
            *announced.borrow_mut() = Some(l.clone());
        });
        for row in rows {
            table.row(row.clone()).unwrap();
        }
        table.finish().unwrap();
        let held = table.held.len();
        drop(table);
        assert_eq!(held, 0);
        let layout = announced.into_inner().expect("the layout was announced");
        (String::from_utf8(out).unwrap(), layout)
    }

    #[test]
    fn a_streamed_table_of_few_rows_is_the_whole_table() {
        let wide = "fixtures/2026-04-billing/03-initech-invoice-paid.json";
        for n in [0, 1, 2, 7, SIZED_FROM] {
            let rows: Vec<Vec<Cell>> = (0..n)
                .map(|i| row(&format!("cus_{i}"), &wide[..i % wide.len()], "note"))
                .collect();
            for limit in [None, Some(12), Some(30), Some(80)] {
                let (want, want_layout) = render(&COLS, &rows, limit, false);
                let (got, layout) = streamed(&COLS, &rows, limit);
                assert_eq!(got, want, "{n} rows at {limit:?}");
                assert_eq!(layout.widths, want_layout.widths);
            }
        }
    }

    /// After the first rows the columns stay as they were sized: on a pipe a
    /// wider value pushes the rest of its line, on a terminal it is cut.
    #[test]
    fn later_rows_keep_the_widths_of_the_first() {
        let mut rows: Vec<Vec<Cell>> = (0..SIZED_FROM + 5)
            .map(|i| row(&format!("cus_{i:04}"), "p", "n"))
            .collect();
        let long = "cus_a_much_longer_identifier_than_the_first_rows";
        rows[SIZED_FROM + 2] = row(long, "p", "n");
        let (out, _) = streamed(&COLS, &rows, None);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1 + rows.len());
        assert_eq!(lines[0], "ID        PATH  NOTE");
        assert_eq!(lines[1], "cus_0000  p     n");
        assert_eq!(lines[SIZED_FROM + 3], format!("{long}  p     n"));
        assert_eq!(lines[SIZED_FROM + 4], "cus_1003  p     n");

        let (out, layout) = streamed(&COLS, &rows, Some(20));
        assert!(layout.hidden(&COLS).is_empty());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1 + rows.len());
        assert_eq!(lines[SIZED_FROM + 3], "cus_…ows  p     n");
        for line in lines {
            assert!(width(line) <= 20, "{line:?}");
        }
    }
}
