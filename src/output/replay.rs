//! Rendering a replay: the decisions (table or JSON) and the summary.

use std::io::Write;

use serde::Serialize;

use super::{Printer, escape_text};
use crate::replay::{Decision, Finished, InputError, Line, Summary, SyncFailure};
use crate::routing::Route;
use crate::sync::{SyncError, Syncer};

/// Stream the decisions and the summary to stdout. The event log is written
/// as the decisions pass; a reader that goes away (`| head`) does not cut
/// it short: output errors are held until every decision has been logged.
pub(crate) fn render(
    printer: &Printer,
    finished: &mut Finished,
    syncer: &mut Syncer,
) -> anyhow::Result<()> {
    let mut out = Tolerant {
        inner: printer.stdout_writer(),
        error: None,
    };
    if printer.json {
        out.write_all(b"{\"events\":[")?;
    } else {
        writeln!(out, "{}", table_line(&HEADER.map(String::from)))?;
    }
    let mut first = true;
    let streamed: Result<(), SyncError> = finished.stream(syncer, |line| {
        if printer.json {
            out.write_all(if first { b"\n" } else { b",\n" })?;
            first = false;
            match line {
                Line::Raw(raw) => out.write_all(raw.as_bytes())?,
                Line::Settled(d) => serde_json::to_writer(&mut out, &d)?,
            }
        } else {
            let d = match line {
                Line::Raw(raw) => serde_json::from_str::<Decision>(&raw)?,
                Line::Settled(d) => d,
            };
            writeln!(out, "{}", human_row(&d, printer))?;
        }
        Ok(())
    });
    streamed?;
    if printer.json {
        #[derive(Serialize)]
        struct Tail<'a> {
            summary: &'a Summary,
            errors: &'a [InputError],
            sync_failures: &'a [SyncFailure],
        }
        let tail = serde_json::to_string(&Tail {
            summary: &finished.summary,
            errors: &finished.errors,
            sync_failures: &finished.failures,
        })?;
        // `tail` is `{...}`: splice its fields after the events array.
        write!(out, "\n],{}\n", &tail[1..])?;
    } else {
        writeln!(out, "\n{}", summary_line(&finished.summary))?;
    }
    out.flush()?;
    match out.error.take() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn summary_line(s: &Summary) -> String {
    let customers = match s.dry_run {
        true => format!("would sync {} customers", s.customers_synced),
        false => format!(
            "{} customers synced ({} changed), {} failed",
            s.customers_synced, s.customers_changed, s.sync_failures
        ),
    };
    let forwarded = match s.forwarded + s.forward_failures {
        0 => String::new(),
        _ => format!(
            "; forwarded {} (2xx), {} failed",
            s.forwarded, s.forward_failures
        ),
    };
    format!(
        "{} events: {} sync, {} ignored, {} rejected, {} unresolved, {} duplicate, {} invalid; {customers}{forwarded}",
        s.events, s.sync, s.ignored, s.rejected, s.unresolved, s.duplicate, s.invalid,
    )
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

const HEADER: [&str; 7] = [
    "EVENT",
    "TYPE",
    "ROUTE",
    "USER",
    "CUSTOMER",
    "VIA",
    "REASON / SOURCE",
];
const WIDTHS: [usize; 6] = [30, 44, 10, 34, 20, 21];

fn fit(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        format!("{s:<width$}")
    } else {
        let cut: String = s.chars().take(width - 1).collect();
        format!("{cut}…")
    }
}

fn table_line(cells: &[String; 7]) -> String {
    let mut line = String::with_capacity(200);
    for (cell, w) in cells.iter().zip(WIDTHS) {
        line.push_str(&fit(cell, w));
        line.push(' ');
    }
    line.push_str(&cells[6]);
    line.trim_end().to_owned()
}

fn human_row(d: &Decision, printer: &Printer) -> String {
    let esc = |s: &Option<String>| {
        s.as_deref()
            .map(|v| escape_text(v).into_owned())
            .unwrap_or_else(|| "-".into())
    };
    let mut note = match &d.reason {
        Some(r) if d.route != Route::Sync => format!("{} ({})", escape_text(r), d.source),
        _ => d.source.clone(),
    };
    if let Some(f) = &d.forward {
        let answer = match (f.status, &f.error) {
            (Some(s), _) => format!("→ {s} in {} ms", f.ms),
            (None, Some(e)) => format!("→ failed: {}", escape_text(e)),
            (None, None) => "→ no answer".into(),
        };
        note = format!("{answer} · {note}");
    }
    let row = table_line(&[
        esc(&d.event_id),
        esc(&d.kind),
        d.route.as_str().to_owned(),
        esc(&d.user_id),
        esc(&d.customer_id),
        d.resolved_via
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| "-".into()),
        note,
    ]);
    let style = match d.route {
        Route::Sync => None,
        Route::Rejected | Route::Invalid => Some(super::RED),
        Route::Unresolved => Some(super::YELLOW),
        Route::Ignored | Route::Duplicate => Some(super::DIM),
    };
    match style {
        Some(s) => printer.paint(&row, s).into_owned(),
        None => row,
    }
}
