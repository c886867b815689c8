//! Rendering a resync: one row per customer that changed (or drifted) or
//! failed, and the summary.

use serde_json::Value;

use super::table::{self, Cell, Col, Cut};
use super::{Printer, escape_text};
use crate::sync::report::CustomerReport;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Summary {
    pub customers: u64,
    pub changed: u64,
    pub failed: u64,
    pub api_requests: u64,
    pub retries: u64,
    pub elapsed_ms: u64,
}

const COLS: [Col; 5] = [
    Col::new("CUSTOMER", 0, 14, Cut::Middle),
    Col::new("USER", 0, 14, Cut::Middle),
    Col::new("STATUS", 0, 8, Cut::Right),
    Col::new("CHANGED", 1, 10, Cut::Right),
    Col::new("ERROR", 2, 20, Cut::Right),
];

/// Rows listed in full up to this many customers; above it only the ones
/// that changed (or drifted) or failed, and the summary says so.
const FULL_LIST: usize = 50;

/// The table (or nothing when no row is to be shown) and the summary.
pub(crate) fn human(
    reports: &[CustomerReport],
    s: &Summary,
    check: bool,
    all_rows: bool,
    printer: &Printer,
) -> String {
    let quiet = quiet_rows(reports.len() as u64, all_rows);
    let shown: Vec<CustomerReport> = reports
        .iter()
        .filter(|r| listed(r, quiet))
        .cloned()
        .collect();
    let not_shown = (reports.len() - shown.len()) as u64;
    let new = reports.iter().filter(|r| r.new).count() as u64;
    human_rows(&shown, not_shown, new, s, check, printer)
}

/// Whether only some rows are listed: above [`FULL_LIST`] customers,
/// unless every row was asked for.
pub(crate) fn quiet_rows(customers: u64, all_rows: bool) -> bool {
    !all_rows && customers > FULL_LIST as u64
}

/// Whether a customer gets a row: under [`quiet_rows`], only one that
/// changed (or drifted) and was not new, or failed.
pub(crate) fn listed(r: &CustomerReport, quiet: bool) -> bool {
    !quiet || (r.changed && !r.new) || r.error.is_some()
}

/// [`human`] from the rows to list, how many were not, and how many
/// customers were new: for a report too large to hold whole.
pub(crate) fn human_rows(
    shown: &[CustomerReport],
    not_shown: u64,
    new: u64,
    s: &Summary,
    check: bool,
    printer: &Printer,
) -> String {
    use super::fmt::plural;
    let mut cols = COLS;
    if check {
        cols[3].header = "DRIFT";
    }
    let esc = |v: &Option<String>| {
        v.as_deref()
            .map(|x| escape_text(x).into_owned())
            .unwrap_or_else(|| "-".into())
    };
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    for r in shown {
        let change = match (&r.diff, r.changed) {
            (_, true) if r.new => "new".into(),
            (Some(Value::Object(m)), true) => m.keys().cloned().collect::<Vec<_>>().join(", "),
            (_, true) => "yes".into(),
            _ => "-".into(),
        };
        let status = esc(&r.status);
        let style = super::inspect::status_style(&status).filter(|_| r.status.is_some());
        rows.push(vec![
            Cell::from(esc(&r.customer_id)),
            Cell::from(esc(&r.user_id)),
            Cell::styled(status, style),
            Cell::styled(change, r.changed.then_some(super::YELLOW)),
            Cell::styled(esc(&r.error), r.error.as_ref().map(|_| super::RED)),
        ]);
    }
    let mut out = String::new();
    if !rows.is_empty() {
        let (table, _) = table::render(&cols, &rows, printer.width(), printer.color_out());
        out.push_str(&table);
    }
    out.push_str(&summary_counts_line(new, s, check, printer.color_out()));
    out.push('\n');
    if not_shown > 0 {
        out.push_str(&format!(
            "({} not listed: unchanged or new; --all-rows or --json lists every customer)\n",
            plural(not_shown, "customer")
        ));
    }
    out
}

/// `300 customers: 2 changed (1 new), 0 failed; 7 API requests, 0 retries, 0.4 s`
pub(crate) fn summary_counts_line(new: u64, s: &Summary, check: bool, color: bool) -> String {
    use super::fmt::{count, elapsed, plural};
    let verb = if check { "drifted" } else { "changed" };
    let failed = match s.failed {
        0 => "0 failed".to_owned(),
        n => super::paint(color, &format!("{} failed", count(n)), super::RED).into_owned(),
    };
    format!(
        "{}: {} {verb} ({} new), {failed}; {}, {}, {}",
        plural(s.customers, "customer"),
        count(s.changed),
        count(new),
        plural(s.api_requests, "API request"),
        plural(s.retries, "retry"),
        elapsed(std::time::Duration::from_millis(s.elapsed_ms))
    )
}

/// `{"customers": [...], "summary": {...}}` on stdout, exactly as
/// `Printer::out_json` prints it, one customer at a time: a backfill's
/// report is read from the store as it is written. `summary` is asked for
/// once every customer is out.
pub(crate) fn json_stream(
    printer: &Printer,
    reports: &mut dyn Iterator<Item = anyhow::Result<CustomerReport>>,
    summary: &dyn Fn() -> Summary,
) -> anyhow::Result<()> {
    use std::cell::RefCell;
    use std::io::Write;

    use serde::ser::{Error, SerializeSeq, SerializeStruct};

    struct Doc<'a> {
        reports: RefCell<&'a mut dyn Iterator<Item = anyhow::Result<CustomerReport>>>,
        summary: &'a dyn Fn() -> Summary,
        /// What stopped the stream, as it was (serde only carries text).
        failed: RefCell<Option<anyhow::Error>>,
    }
    struct Customers<'d, 'a>(&'d Doc<'a>);

    impl serde::Serialize for Customers<'_, '_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(None)?;
            for r in &mut **self.0.reports.borrow_mut() {
                match r {
                    Ok(r) => seq.serialize_element(&r)?,
                    Err(e) => {
                        let message = e.to_string();
                        *self.0.failed.borrow_mut() = Some(e);
                        return Err(S::Error::custom(message));
                    }
                }
            }
            seq.end()
        }
    }

    // Fields in this order: the summary is made after the customers.
    impl serde::Serialize for Doc<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut doc = s.serialize_struct("Report", 2)?;
            doc.serialize_field("customers", &Customers(self))?;
            doc.serialize_field("summary", &(self.summary)())?;
            doc.end()
        }
    }

    let doc = Doc {
        reports: RefCell::new(reports),
        summary,
        failed: RefCell::new(None),
    };
    let mut out = printer.stdout_writer();
    if let Err(e) = serde_json::to_writer_pretty(&mut out, &doc) {
        return Err(match doc.failed.into_inner() {
            Some(failed) => failed,
            None => std::io::Error::from(e).into(),
        });
    }
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}
