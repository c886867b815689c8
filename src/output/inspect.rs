//! Rendering `inspect`: the mapping streamed as a table that fits the
//! terminal, as JSON or as CSV; and the duplicate-customer warning, grouped.

use std::borrow::Cow;
use std::io::{self, Write};

use super::table::{self, Cell, Col, Cut};
use super::{Printer, Style, escape_text, fmt};
use crate::store::{Duplicates, MappingRow};

/// How many duplicate users the warning names one by one.
pub(crate) const DUPLICATES_NAMED: usize = 3;

/// The pattern's known race: two customers created for one user. `dups`
/// names the first [`DUPLICATES_NAMED`] users (more are only counted).
pub(crate) fn warn_duplicate_customers(dups: &Duplicates, printer: &Printer) {
    // A few are named one by one; many are grouped into one line.
    if dups.users <= DUPLICATES_NAMED {
        for d in &dups.first {
            printer.warn(&format!(
                "user {} maps to {} customers ({}): duplicate customers, the checkout race of the pattern; the app syncs only one",
                escape_text(&d.user_id),
                d.customers.len(),
                d.customers.join(", ")
            ));
        }
        return;
    }
    let named: Vec<String> = dups
        .first
        .iter()
        .take(DUPLICATES_NAMED)
        .map(|d| format!("{} ({})", escape_text(&d.user_id), d.customers.len()))
        .collect();
    printer.warn(&format!(
        "{} have more than one customer: {}, ...; duplicate customers, the checkout race of the pattern (`inspect --user ID` lists one user's)",
        fmt::plural(dups.users as u64, "user"),
        named.join(", "),
    ));
}

pub(crate) fn date(ts: Option<i64>) -> String {
    ts.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(|d| format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
        .unwrap_or_else(|| "-".into())
}

pub(crate) fn card(r: &MappingRow) -> String {
    match &r.payment_method {
        Some(c) => format!(
            "{} •••• {}",
            c.brand.as_deref().unwrap_or("card"),
            c.last4.as_deref().unwrap_or("????")
        ),
        None => "-".into(),
    }
}

/// Columns by priority: who, which customer, what status first.
const COLS: [Col; 9] = [
    Col::new("USER", 0, 14, Cut::Middle),
    Col::new("CUSTOMER", 0, 18, Cut::Middle),
    Col::new("STATUS", 0, 8, Cut::Right),
    Col::new("PERIOD", 1, 23, Cut::Right),
    Col::new("CARD", 2, 20, Cut::Left),
    Col::new("CANCELS", 3, 13, Cut::Right),
    Col::new("EMAIL", 4, 12, Cut::Middle),
    Col::new("PRICE", 5, 14, Cut::Middle),
    Col::new("SOURCE", 6, 6, Cut::Right),
];

/// How a status reads at a glance.
pub(crate) fn status_style(status: &str) -> Option<Style> {
    match status {
        "active" | "trialing" => Some(super::GREEN),
        "past_due" | "unpaid" | "incomplete" | "paused" => Some(super::YELLOW),
        "canceled" | "incomplete_expired" | "deleted" => Some(super::RED),
        _ => Some(super::DIM),
    }
}

/// One row of the table.
fn cells(r: &MappingRow) -> Vec<Cell> {
    let esc = |s: &Option<String>| {
        s.as_deref()
            .map(|v| escape_text(v).into_owned())
            .unwrap_or_else(|| "-".into())
    };
    let period = if r.current_period_start.is_some() || r.current_period_end.is_some() {
        format!(
            "{} → {}",
            date(r.current_period_start),
            date(r.current_period_end)
        )
    } else {
        "-".into()
    };
    vec![
        Cell::from(esc(&r.user_id)),
        Cell::from(r.customer_id.clone()),
        Cell::styled(r.status.clone(), status_style(&r.status)),
        Cell::from(period),
        Cell::from(escape_text(&card(r)).into_owned()),
        Cell::from(if r.cancel_at_period_end {
            "at period end"
        } else {
            "-"
        }),
        Cell::from(esc(&r.email)),
        Cell::from(esc(&r.price_id)),
        Cell::from(r.source.clone()),
    ]
}

/// `inspect`'s table, streamed (see [`table::Streamed`]): its columns are
/// sized from the first [`table::SIZED_FROM`] rows, on a terminal fitted
/// to its width (what does not fit is said on stderr, before the table).
pub(crate) struct TableRows<'p, W: Write> {
    table: table::Streamed<'p, W>,
    printer: &'p Printer,
    /// Said instead of an empty table (a filter that matches nothing).
    none_note: Option<&'static str>,
    rows: u64,
}

impl<'p, W: Write> TableRows<'p, W> {
    pub(crate) fn new(out: W, printer: &'p Printer, none_note: Option<&'static str>) -> Self {
        let announce = move |layout: &table::Layout| {
            let hidden = layout.hidden(&COLS);
            if !hidden.is_empty() {
                printer.info(&format!(
                    "{} not shown at this width: widen the terminal, or use --json or --csv",
                    hidden.join(", ")
                ));
            }
        };
        TableRows {
            table: table::Streamed::new(&COLS, printer.width(), printer.color_out(), out, announce),
            printer,
            none_note,
            rows: 0,
        }
    }
}

impl<W: Write> RowSink for TableRows<'_, W> {
    fn row(&mut self, r: &MappingRow) -> io::Result<()> {
        self.rows += 1;
        self.table.row(cells(r))
    }

    fn finish(&mut self) -> io::Result<()> {
        match (self.rows, self.none_note) {
            (0, Some(note)) => {
                self.printer.info(note);
                Ok(())
            }
            _ => self.table.finish(),
        }
    }
}

/// Where `inspect`'s table, `--json` and `--csv` write rows as the store yields them.
pub(crate) trait RowSink {
    fn row(&mut self, r: &MappingRow) -> io::Result<()>;
    /// After the last row: close the document and flush.
    fn finish(&mut self) -> io::Result<()>;
}

/// `inspect --json`, streamed: the same bytes as the whole array through
/// `serde_json::to_writer_pretty`, then a newline.
pub(crate) struct JsonRows<W: Write> {
    out: W,
    /// The row being rendered (reused).
    buf: Vec<u8>,
    rows: u64,
}

impl<W: Write> JsonRows<W> {
    pub(crate) fn new(mut out: W) -> io::Result<Self> {
        out.write_all(b"[")?;
        Ok(JsonRows {
            out,
            buf: Vec::with_capacity(1024),
            rows: 0,
        })
    }
}

impl<W: Write> RowSink for JsonRows<W> {
    fn row(&mut self, r: &MappingRow) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer_pretty(&mut self.buf, r)?;
        self.out
            .write_all(if self.rows == 0 { b"\n  " } else { b",\n  " })?;
        // An element of the array sits one level deeper: every line break
        // of the object gains the array's indent. JSON strings escape their
        // own line breaks, so each one here is the layout's.
        let mut lines = self.buf.split(|&b| b == b'\n');
        if let Some(first) = lines.next() {
            self.out.write_all(first)?;
        }
        for line in lines {
            self.out.write_all(b"\n  ")?;
            self.out.write_all(line)?;
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out
            .write_all(if self.rows == 0 { b"]\n" } else { b"\n]\n" })?;
        self.out.flush()
    }
}

const CSV_HEADER: [&str; 13] = [
    "user_id",
    "customer_id",
    "email",
    "subscription_id",
    "status",
    "price_id",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "card_brand",
    "card_last4",
    "synced_at",
    "source",
];

/// A text cell of `inspect --csv`: control characters escaped as in the
/// table (metadata must not reach a terminal raw), and a value that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) prefixed
/// with `'`, as OWASP advises. Only text cells: numbers stay numbers.
pub(crate) fn csv_text(s: &str) -> Cow<'_, str> {
    let escaped = escape_text(s);
    match escaped.starts_with(['=', '+', '-', '@']) {
        true => format!("'{escaped}").into(),
        false => escaped,
    }
}

/// The writer's own error, so a closed pipe stays `BrokenPipe`.
fn io_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// `inspect --csv`, streamed (the `csv` crate): a header line, then one
/// line per row.
pub(crate) struct CsvRows<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> CsvRows<W> {
    pub(crate) fn new(out: W) -> io::Result<Self> {
        let mut out = csv::Writer::from_writer(out);
        out.write_record(CSV_HEADER).map_err(io_error)?;
        // The header is out at once (and a closed pipe is known now).
        out.flush()?;
        Ok(CsvRows { out })
    }
}

impl<W: Write> RowSink for CsvRows<W> {
    fn row(&mut self, r: &MappingRow) -> io::Result<()> {
        fn opt(s: &Option<String>) -> Cow<'_, str> {
            s.as_deref().map(csv_text).unwrap_or_default()
        }
        let num = |n: Option<i64>| n.map(|v| v.to_string()).unwrap_or_default();
        let (brand, last4) = match &r.payment_method {
            Some(c) => (opt(&c.brand), opt(&c.last4)),
            None => (Cow::default(), Cow::default()),
        };
        let cells: [Cow<'_, str>; 13] = [
            opt(&r.user_id),
            csv_text(&r.customer_id),
            opt(&r.email),
            opt(&r.subscription_id),
            csv_text(&r.status),
            opt(&r.price_id),
            num(r.current_period_start).into(),
            num(r.current_period_end).into(),
            r.cancel_at_period_end.to_string().into(),
            brand,
            last4,
            csv_text(&r.synced_at),
            csv_text(&r.source),
        ];
        self.out
            .write_record(cells.iter().map(|c| c.as_bytes()))
            .map_err(io_error)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Card;

    fn row(n: u32) -> MappingRow {
        MappingRow {
            user_id: (!n.is_multiple_of(3)).then(|| format!("user_{n}")),
            customer_id: format!("cus_{n}"),
            email: Some(match n % 4 {
                0 => "a,b@x.io".to_owned(),
                1 => "quote\"d\n\u{1b}@x.io".to_owned(),
                2 => "plain@x.io".to_owned(),
                _ => "ünï\u{202e}@x.io\r".to_owned(),
            }),
            subscription_id: n.is_multiple_of(2).then(|| format!("sub_{n}")),
            status: "active".into(),
            price_id: Some("price_1".into()),
            current_period_start: (!n.is_multiple_of(5)).then_some(-1),
            current_period_end: Some(i64::from(n) * 1_000_000_007),
            cancel_at_period_end: !n.is_multiple_of(2),
            payment_method: match n % 3 {
                0 => None,
                1 => Some(Card {
                    brand: Some("visa".into()),
                    last4: Some("4242".into()),
                }),
                _ => Some(Card {
                    brand: None,
                    last4: Some("0,0\"".into()),
                }),
            },
            synced_at: "2026-01-01T00:00:00Z".into(),
            source: "events".into(),
            deleted: n.is_multiple_of(7),
        }
    }

    fn stream(sink: &mut dyn RowSink, rows: &[MappingRow]) {
        for r in rows {
            sink.row(r).unwrap();
        }
        sink.finish().unwrap();
    }

    #[test]
    fn streamed_json_is_the_whole_array_pretty_printed() {
        for n in [0, 1, 2, 13] {
            let rows: Vec<MappingRow> = (0..n).map(row).collect();
            let mut want = serde_json::to_vec_pretty(&rows).unwrap();
            want.push(b'\n');
            let mut sink = JsonRows::new(Vec::new()).unwrap();
            stream(&mut sink, &rows);
            assert_eq!(
                String::from_utf8(sink.out).unwrap(),
                String::from_utf8(want).unwrap(),
                "{n} rows"
            );
        }
    }

    /// Every row read back by a CSV reader gives the row's values, text
    /// escaped and defused, numbers untouched.
    #[test]
    fn streamed_csv_reads_back_as_the_rows() {
        for n in [0, 1, 13] {
            let rows: Vec<MappingRow> = (0..n).map(row).collect();
            let mut sink = CsvRows::new(Vec::new()).unwrap();
            stream(&mut sink, &rows);
            let bytes = sink.out.into_inner().unwrap();
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{202e}'),
                "{text}"
            );
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            assert_eq!(reader.headers().unwrap(), CSV_HEADER.as_slice());
            let read: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
            assert_eq!(read.len(), rows.len());
            for (r, rec) in rows.iter().zip(&read) {
                let opt = |s: &Option<String>| {
                    s.as_deref()
                        .map(|v| escape_text(v).into_owned())
                        .unwrap_or_default()
                };
                assert_eq!(&rec[0], opt(&r.user_id));
                assert_eq!(&rec[2], opt(&r.email));
                let num = |n: Option<i64>| n.map(|v| v.to_string()).unwrap_or_default();
                assert_eq!(
                    rec[6],
                    num(r.current_period_start),
                    "negative numbers stay numbers"
                );
                assert_eq!(rec[7], num(r.current_period_end));
                assert_eq!(&rec[8], r.cancel_at_period_end.to_string());
                let last4 = r.payment_method.as_ref().and_then(|c| c.last4.clone());
                assert_eq!(&rec[10], last4.unwrap_or_default());
            }
        }
    }

    #[test]
    fn csv_text_escapes_controls_and_defuses_formulas() {
        assert_eq!(
            csv_text("a\x1b]0;pwned\x07@x.io"),
            "a\\u{1b}]0;pwned\\u{7}@x.io"
        );
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for s in ["+1", "-2+3", "@SUM(A1)"] {
            assert_eq!(csv_text(s), format!("'{s}"));
        }
        assert_eq!(csv_text("user_1"), "user_1");
        assert_eq!(csv_text("a=b"), "a=b");
    }

    /// A closed pipe surfaces as the writer's own error (`BrokenPipe`), so
    /// the caller can end quietly.
    #[test]
    fn a_closed_pipe_is_the_io_error_itself() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = JsonRows {
            out: Closed,
            buf: Vec::new(),
            rows: 0,
        };
        let err = sink.row(&row(1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let err = CsvRows::new(Closed).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
