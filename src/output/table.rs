//! Human tables that fit the terminal: columns are chosen by priority, long
//! values are shortened (in the middle for ids, from the left for paths),
//! widths are measured in terminal cells (unicode-aware), and no line ends
//! in a space. Without a width (stdout is not a terminal) nothing is cut.

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
}

impl Col {
    pub(crate) const fn new(header: &'static str, priority: u8, min: usize, cut: Cut) -> Col {
        Col {
            header,
            priority,
            min,
            cut,
        }
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
}

impl Layout {
    /// Fit columns whose values need `natural` cells into `limit` cells:
    /// drop the least important columns first, then shorten the rest in
    /// proportion to how much each can give, never below its `min`.
    pub(crate) fn fit(cols: &[Col], natural: &[usize], limit: Option<usize>) -> Layout {
        let mut widths: Vec<Option<usize>> = natural
            .iter()
            .zip(cols)
            .map(|(n, c)| Some((*n).max(width(c.header))))
            .collect();
        let Some(limit) = limit else {
            return Layout { widths, cut: false };
        };
        let total = |ws: &[Option<usize>]| -> usize {
            let shown: Vec<usize> = ws.iter().flatten().copied().collect();
            shown.iter().sum::<usize>() + GAP * shown.len().saturating_sub(1)
        };
        let floor = |ws: &[Option<usize>]| -> usize {
            let shown: Vec<usize> = ws
                .iter()
                .zip(cols)
                .filter_map(|(w, c)| w.map(|w| w.min(c.min.max(width(c.header)))))
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
                    let min = c.min.max(width(c.header));
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
        // Then shorten what is shown, each column in proportion to what it
        // can give above its floor.
        let mut over = total(&widths).saturating_sub(limit);
        while over > 0 {
            let slack: Vec<(usize, usize)> = widths
                .iter()
                .enumerate()
                .filter_map(|(i, w)| {
                    let floor = cols[i].min.max(width(cols[i].header));
                    w.map(|w| (i, w.saturating_sub(floor)))
                })
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
        Layout { widths, cut: true }
    }

    /// Headers of the columns left out.
    pub(crate) fn hidden(&self, cols: &[Col]) -> Vec<&'static str> {
        self.widths
            .iter()
            .zip(cols)
            .filter(|(w, _)| w.is_none())
            .map(|(_, c)| c.header)
            .collect()
    }

    /// The line of one row: shown columns padded to their widths, no
    /// trailing spaces, colour around the visible text only.
    pub(crate) fn line(&self, cols: &[Col], cells: &[Cell], color: bool) -> String {
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

    /// The header line.
    pub(crate) fn header(&self, cols: &[Col]) -> String {
        let cells: Vec<Cell> = cols.iter().map(|c| Cell::from(c.header)).collect();
        self.line(cols, &cells, false)
    }
}

/// A whole table: widths from every row, then fitted to `limit`.
pub(crate) fn render(
    cols: &[Col],
    rows: &[Vec<Cell>],
    limit: Option<usize>,
    color: bool,
) -> (String, Layout) {
    let mut natural: Vec<usize> = cols.iter().map(|c| width(c.header)).collect();
    for row in rows {
        for (n, cell) in natural.iter_mut().zip(row) {
            *n = (*n).max(width(&cell.text));
        }
    }
    let layout = Layout::fit(cols, &natural, limit);
    let mut out = layout.header(cols);
    out.push('\n');
    for row in rows {
        out.push_str(&layout.line(cols, row, color));
        out.push('\n');
    }
    (out, layout)
}

/// `text` after `prefix`, wrapped at `limit` cells (continuation lines
/// indented like the first); no line ends in a space.
pub(crate) fn wrap(text: &str, prefix: &str, limit: usize) -> String {
    wrap_with(text, prefix, &" ".repeat(width(prefix)), limit)
}

/// `text` wrapped at `limit` cells: the first line after `first`, the others
/// after `rest`. Words longer than a line stay whole.
fn wrap_with(text: &str, first: &str, rest: &str, limit: usize) -> String {
    let visible = |s: &str| width(&strip_ansi(s));
    let mut out = String::with_capacity(text.len() + 16);
    let mut line = String::from(first);
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !empty && visible(&line) + 1 + visible(word) > limit {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out
}

pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
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
        out.push_str(&wrap_with(body, indent, &format!("{indent}  "), limit));
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
}
