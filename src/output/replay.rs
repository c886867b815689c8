//! Rendering a replay: the decisions (table or JSON) and the summary.

use std::io::Write;

use serde::Serialize;

use super::table::{Cell, Col, Cut, Layout};
use super::{Printer, escape_text};
use crate::replay::{Ambiguity, Decision, Finished, InputError, Line, Summary, SyncFailure};
use crate::routing::Route;

/// The decisions and the summary on stdout, as the engine streams them
/// (see [`Finished::stream`], which also writes the event log: this only
/// renders). A reader that goes away (`| head`) does not cut the stream
/// short: output errors are held until every decision has passed.
pub(crate) struct Render<'p> {
    printer: &'p Printer,
    out: Tolerant<Box<dyn Write + 'p>>,
    rows: Rows,
    first: bool,
}

impl<'p> Render<'p> {
    /// The head: `{"events":[` or the table's header.
    pub(crate) fn begin(printer: &'p Printer) -> anyhow::Result<Render<'p>> {
        let mut out = Tolerant {
            inner: Box::new(printer.stdout_writer()) as Box<dyn Write + 'p>,
            error: None,
        };
        let rows = Rows::new(printer);
        if printer.json {
            out.write_all(b"{\"events\":[")?;
        } else if let Some(header) = rows.header() {
            writeln!(out, "{header}")?;
        }
        Ok(Render {
            printer,
            out,
            rows,
            first: true,
        })
    }

    /// One decision.
    pub(crate) fn line(&mut self, line: Line) -> anyhow::Result<()> {
        let out = &mut self.out;
        if self.printer.json {
            out.write_all(if self.first { b"\n" } else { b",\n" })?;
            self.first = false;
            match line {
                Line::Raw(raw) => out.write_all(raw.as_bytes())?,
                Line::Settled(d) => serde_json::to_writer(&mut *out, &*d)?,
            }
        } else {
            let d = match line {
                Line::Raw(raw) => serde_json::from_str::<Decision>(&raw)?,
                Line::Settled(d) => *d,
            };
            writeln!(out, "{}", self.rows.render(&d))?;
        }
        Ok(())
    }

    /// The tail: the summary, the errors and what the inputs cannot order.
    pub(crate) fn end(
        mut self,
        finished: &Finished,
        elapsed: std::time::Duration,
    ) -> anyhow::Result<()> {
        let out = &mut self.out;
        if self.printer.json {
            #[derive(Serialize)]
            struct Tail<'a> {
                summary: &'a Summary,
                errors: &'a [InputError],
                sync_failures: &'a [SyncFailure],
                ambiguous: &'a [Ambiguity],
            }
            let tail = serde_json::to_string(&Tail {
                summary: &finished.summary,
                errors: &finished.errors,
                sync_failures: &finished.failures,
                ambiguous: &finished.ambiguous,
            })?;
            // `tail` is `{...}`: splice its fields after the events array.
            write!(out, "\n],{}\n", &tail[1..])?;
        } else {
            let summary = summary_lines(&finished.summary, elapsed, self.printer.color_out());
            write!(
                out,
                "\n{}",
                super::table::wrap_lines(&summary, self.printer.width())
            )?;
        }
        out.flush()?;
        if let Some(note) = self.rows.hidden_note().filter(|_| !self.printer.json) {
            self.printer.info(&note);
        }
        match out.error.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// The warning for what the inputs cannot order: which customers, and
/// that `--live` gives the truth.
pub(crate) fn ambiguity_warning(ambiguous: &[Ambiguity]) -> Option<String> {
    if ambiguous.is_empty() {
        return None;
    }
    let mut customers: Vec<&str> = ambiguous.iter().map(|a| a.customer_id.as_str()).collect();
    customers.dedup();
    let shown: Vec<String> = customers
        .iter()
        .take(5)
        .map(|c| escape_text(c).into_owned())
        .collect();
    let more = match customers.len().saturating_sub(5) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let verb = if customers.len() == 1 {
        "depends"
    } else {
        "depend"
    };
    Some(format!(
        "{} {verb} on an order the inputs cannot tell: {}{more} (events of one object in one \
         second, and no list order, previous_attributes or lifecycle to decide; the later \
         input was taken). `--live` reads the truth from the API",
        super::fmt::plural(customers.len() as u64, "customer"),
        shown.join(", ")
    ))
}

/// Under `--json`, the document of a run that stopped at its inputs.
pub(crate) fn render_input_errors(printer: &Printer, errors: &[InputError]) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Doc<'a> {
        events: [(); 0],
        summary: Summary,
        errors: &'a [InputError],
        sync_failures: [(); 0],
        ambiguous: [(); 0],
    }
    printer.out_json(&Doc {
        events: [],
        summary: Summary::default(),
        errors,
        sync_failures: [],
        ambiguous: [],
    })?;
    Ok(())
}

/// The summary a person reads: counts with separators and plurals, the
/// problem counts coloured, zero counts left out.
pub(crate) fn summary_lines(s: &Summary, elapsed: std::time::Duration, color: bool) -> String {
    use super::fmt::{count, elapsed as took, plural};
    let part = |n: u64, word: &str, style: Option<super::Style>| -> Option<String> {
        let text = format!("{} {word}", count(n));
        (n > 0).then(|| match style {
            Some(st) => super::paint(color, &text, st).into_owned(),
            None => text,
        })
    };
    let routes: Vec<String> = [
        part(s.sync, "sync", None),
        part(s.ignored, "ignored", None),
        part(s.rejected, "rejected", Some(super::RED)),
        part(s.unresolved, "unresolved", Some(super::YELLOW)),
        part(s.duplicate, "duplicate", None),
        part(s.invalid, "invalid", Some(super::RED)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut out = format!("{}: {}", plural(s.events, "event"), routes.join(", "));
    if s.events == 0 {
        out = "0 events".into();
    }
    out.push('\n');
    let failed = match s.sync_failures {
        0 => String::new(),
        n => format!(
            ", {}",
            super::paint(color, &format!("{} failed", count(n)), super::RED)
        ),
    };
    if s.forwarded + s.forward_failures > 0 {
        let bad = match s.forward_failures {
            0 => "0 failed".to_owned(),
            n => super::paint(color, &format!("{} failed", count(n)), super::RED).into_owned(),
        };
        out.push_str(&format!(
            "forwarded {}: {} answered 2xx, {bad} ({})\n",
            plural(s.forwarded + s.forward_failures, "event"),
            count(s.forwarded),
            took(elapsed)
        ));
    } else if s.dry_run {
        out.push_str(&format!(
            "would sync {} ({} would change); nothing written ({})\n",
            plural(s.customers_synced, "customer"),
            count(s.customers_changed),
            took(elapsed)
        ));
    } else {
        out.push_str(&format!(
            "{} synced ({} changed){failed} in {}\n",
            plural(s.customers_synced, "customer"),
            count(s.customers_changed),
            took(elapsed)
        ));
    }
    out
}

/// One line for stderr when stdout is not a terminal.
pub(crate) fn summary_oneliner(s: &Summary, elapsed: std::time::Duration) -> String {
    summary_lines(s, elapsed, false)
        .trim_end()
        .replace('\n', "; ")
}

/// A writer that keeps the first error and swallows the rest.
struct Tolerant<W: Write> {
    inner: W,
    error: Option<std::io::Error>,
}

impl<W: Write> Write for Tolerant<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.error.is_none()
            && let Err(e) = self.inner.write_all(buf)
        {
            self.error = Some(e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.error.is_none()
            && let Err(e) = self.inner.flush()
        {
            self.error = Some(e);
        }
        Ok(())
    }
}

/// The columns a terminal shows, by priority; on a pipe every column is
/// shown in full and the reason follows on the same line.
const COLS: [Col; 8] = [
    Col::new("EVENT", 0, 18, Cut::Middle),
    Col::new("TYPE", 0, 24, Cut::Middle).gives_first(),
    Col::new("ROUTE", 0, 10, Cut::Right),
    Col::new("USER", 0, 20, Cut::Middle),
    Col::new("CUSTOMER", 1, 18, Cut::Middle),
    Col::new("VIA", 2, 17, Cut::Right),
    Col::new("SOURCE", 3, 24, Cut::Left),
    Col::new("REASON", 4, 30, Cut::Right),
];

/// Widths the values usually need: Stripe ids, the longest common event
/// types; longer values are shortened on a terminal.
const NATURAL: [usize; 8] = [28, 36, 10, 32, 18, 21, 48, 60];

/// How decisions are laid out: fitted to a terminal (a row per decision,
/// or a block per decision when a row cannot fit), or wide for a pipe.
pub(crate) struct Rows {
    layout: Layout,
    cols: &'static [Col],
    limit: Option<usize>,
    color: bool,
    verbose: bool,
    /// No decision rendered yet (blocks are separated by a blank line).
    first: std::cell::Cell<bool>,
}

impl Rows {
    pub(crate) fn new(printer: &Printer) -> Rows {
        let limit = printer.width();
        // On a terminal the reason (and, with -v, customer, via and source)
        // go on a line of their own under the row; where not even the
        // required columns fit, each decision is a block that names every
        // field. On a pipe every column is on the row, uncut.
        let (layout, cols) = match limit {
            Some(_) => {
                let row = Layout::fit(&COLS[..7], &NATURAL[..7], limit);
                match row.blocks() {
                    true => (Layout::fit(&COLS, &NATURAL, limit), &COLS[..]),
                    false => (row, &COLS[..7]),
                }
            }
            None => (Layout::fit(&COLS, &NATURAL, None), &COLS[..]),
        };
        Rows {
            layout,
            cols,
            limit,
            color: printer.color_out(),
            verbose: printer.verbosity() >= 1,
            first: std::cell::Cell::new(true),
        }
    }

    /// The table's header (none in blocks: they name each field).
    pub(crate) fn header(&self) -> Option<String> {
        (!self.layout.blocks()).then(|| self.layout.header(self.cols))
    }

    /// What the terminal's rows leave out and `-v` would show under each
    /// row: `CUSTOMER, VIA, SOURCE not shown: ...`.
    pub(crate) fn hidden_note(&self) -> Option<String> {
        let hidden = self.layout.hidden(self.cols);
        (!hidden.is_empty() && !self.verbose).then(|| {
            format!(
                "{} not shown: widen the terminal, or use -v or --json",
                hidden.join(", ")
            )
        })
    }

    /// The row of one decision, and its note line(s) on a terminal; or its
    /// block.
    pub(crate) fn render(&self, d: &Decision) -> String {
        let esc = |s: &Option<String>| {
            s.as_deref()
                .map(|v| escape_text(v).into_owned())
                .unwrap_or_else(|| "-".into())
        };
        let style = match d.route {
            Route::Sync => None,
            Route::Rejected | Route::Invalid => Some(super::RED),
            Route::Unresolved => Some(super::YELLOW),
            Route::Ignored | Route::Duplicate => Some(super::DIM),
        };
        let reason = d
            .reason
            .as_deref()
            .filter(|_| d.route != Route::Sync)
            .map(|r| escape_text(r).into_owned());
        let via = d
            .resolved_via
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| "-".into());
        let cells = vec![
            Cell::from(esc(&d.event_id)),
            Cell::from(esc(&d.kind)),
            Cell::styled(d.route.as_str(), style),
            Cell::from(esc(&d.user_id)),
            Cell::from(esc(&d.customer_id)),
            Cell::from(via),
            Cell::from(escape_text(&d.source).into_owned()),
            Cell::from(reason.clone().unwrap_or_else(|| "-".into())),
        ];
        let mut out = String::new();
        if self.layout.blocks() && !self.first.replace(false) {
            out.push('\n');
        }
        out.push_str(&self.layout.line(self.cols, &cells, self.color));
        let Some(limit) = self.limit else {
            if let Some(f) = &d.forward {
                out.push_str(&format!("  {}", delivery(f, self.color)));
            }
            return out;
        };
        // On a terminal: why (for anything but sync), where from (-v), and
        // how the delivery went, each under the row (a block has the first
        // two already).
        let mut notes: Vec<String> = Vec::new();
        if let Some(r) = reason.as_ref().filter(|_| !self.layout.blocks()) {
            notes.push(match style {
                Some(st) => super::paint(self.color, r, st).into_owned(),
                None => r.clone(),
            });
        }
        if self.verbose && !self.layout.blocks() {
            notes.push(format!(
                "{} via {} · {}",
                esc(&d.customer_id),
                d.resolved_via.map_or("-", |v| v.as_str()),
                escape_text(&d.source)
            ));
        }
        if let Some(f) = &d.forward {
            notes.push(delivery(f, self.color));
        }
        for note in notes {
            out.push('\n');
            out.push_str(&super::table::wrap(&note, "  ↳ ", limit));
        }
        out
    }
}

/// A delivery's answer: `→ 200 in 12 ms`, or the failure with the body.
pub(crate) fn delivery(f: &crate::forward::Delivery, color: bool) -> String {
    let text = match (f.status, &f.error) {
        (Some(s), _) if (200..300).contains(&s) => {
            return super::paint(color, &format!("→ {s} in {} ms", f.ms), super::GREEN)
                .into_owned();
        }
        (Some(s), _) => match &f.body {
            Some(body) => format!("→ {s} in {} ms: {body}", f.ms),
            None => format!("→ {s} in {} ms", f.ms),
        },
        (None, Some(e)) => format!("→ failed after {} ms: {}", f.ms, escape_text(e)),
        (None, None) => "→ no answer".into(),
    };
    super::paint(color, &text, super::RED).into_owned()
}
