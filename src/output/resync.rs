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
    // A Stripe customer id (18) whole, or a block per customer.
    Col::new("CUSTOMER", 0, 18, Cut::Middle),
    Col::new("USER", 0, 14, Cut::Middle),
    Col::new("STATUS", 0, 8, Cut::Right),
    // What changed is the point of the table, but the ids come whole first.
    Col::new("CHANGED", 0, 10, Cut::Right).gives_first(),
    Col::new("ERROR", 2, 20, Cut::Right),
];

/// Rows listed in full up to this many customers; above it only the ones
/// that changed (or drifted) or failed, new ones included up to this many
/// (a first backfill's thousands are counted, not listed), and the
/// summary says how many were left out.
const FULL_LIST: usize = 50;

/// The table (or nothing when no row is to be shown) and the summary.
pub(crate) fn human(
    reports: &[CustomerReport],
    s: &Summary,
    check: bool,
    all_rows: bool,
    printer: &Printer,
) -> String {
    let mut listing = Listing::new(reports.len() as u64, all_rows);
    let shown: Vec<CustomerReport> = reports
        .iter()
        .filter(|r| listing.take(r))
        .cloned()
        .collect();
    let new = reports.iter().filter(|r| r.new).count() as u64;
    human_listed(&shown, &listing, new, s, check, printer)
}

/// Which customers get a row, decided as the reports pass (a backfill's
/// report is streamed): every one up to [`FULL_LIST`] customers or with
/// `--all-rows`; else those that changed (or drifted) or failed, and new
/// ones while there are at most [`FULL_LIST`] of them. Counts what it
/// leaves out; holds no report.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    quiet: bool,
    /// New customers taken so far.
    new_taken: u64,
    /// Past [`FULL_LIST`] new customers: none is listed (those taken are
    /// dropped at rendering), all are counted here.
    new_left: u64,
    unchanged_left: u64,
}

impl Listing {
    pub(crate) fn new(customers: u64, all_rows: bool) -> Listing {
        Listing {
            quiet: quiet_rows(customers, all_rows),
            ..Listing::default()
        }
    }

    /// Whether `r` gets a row (so far: see [`Listing::new_left`]).
    pub(crate) fn take(&mut self, r: &CustomerReport) -> bool {
        if !self.quiet || r.error.is_some() {
            return true;
        }
        if !r.changed {
            self.unchanged_left += 1;
            return false;
        }
        if !r.new {
            return true;
        }
        if self.new_left > 0 || self.new_taken == FULL_LIST as u64 {
            self.new_left += 1 + std::mem::take(&mut self.new_taken);
            return false;
        }
        self.new_taken += 1;
        true
    }

    /// Whether a listed row is one of the new customers too many to list.
    fn dropped(&self, r: &CustomerReport) -> bool {
        self.new_left > 0 && r.new && r.changed && r.error.is_none()
    }
}

/// Whether only some rows are listed: above [`FULL_LIST`] customers,
/// unless every row was asked for.
pub(crate) fn quiet_rows(customers: u64, all_rows: bool) -> bool {
    !all_rows && customers > FULL_LIST as u64
}

/// The fields of a drift or change, most important first, named as
/// `audit` names its findings (`--json` keeps the store's field names).
const CHANGE_ORDER: [(&str, &str); 10] = [
    ("status", "status"),
    ("deleted", "deleted"),
    ("price_id", "price"),
    ("current_period_start", "period"),
    ("current_period_end", "period"),
    ("cancel_at_period_end", "cancel_at_period_end"),
    ("payment_method", "card"),
    ("subscription_id", "subscription"),
    ("user_id", "user"),
    ("email", "email"),
];

/// `status, price, period`: what a diff changed, most important first.
fn changed_fields(diff: &serde_json::Map<String, Value>) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (field, name) in CHANGE_ORDER {
        if diff.contains_key(field) && !names.contains(&name) {
            names.push(name);
        }
    }
    for field in diff.keys() {
        if !CHANGE_ORDER.iter().any(|(f, _)| f == field) {
            names.push(field);
        }
    }
    names.join(", ")
}

/// The rows `listing` took (`shown`), how many customers were new, and the
/// summary: for a report too large to hold whole.
pub(crate) fn human_listed(
    shown: &[CustomerReport],
    listing: &Listing,
    new: u64,
    s: &Summary,
    check: bool,
    printer: &Printer,
) -> String {
    let rows: Vec<CustomerReport> = shown
        .iter()
        .filter(|r| !listing.dropped(r))
        .cloned()
        .collect();
    let left = match (listing.new_left, listing.unchanged_left) {
        (0, 0) => None,
        (0, n) => Some(super::fmt::noun(
            n,
            "unchanged customer",
            "unchanged customers",
        )),
        (n, 0) => Some(super::fmt::noun(n, "new customer", "new customers")),
        (n, m) => Some(format!(
            "{} new and {} unchanged customers",
            super::fmt::count(n),
            super::fmt::count(m)
        )),
    };
    table_and_summary(&rows, left, new, s, check, printer)
}

/// The table, the summary and what was `left` out (`53 unchanged customers`).
fn table_and_summary(
    shown: &[CustomerReport],
    left: Option<String>,
    new: u64,
    s: &Summary,
    check: bool,
    printer: &Printer,
) -> String {
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
            (Some(Value::Object(m)), true) => changed_fields(m),
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
        let (table, layout) = table::render(&cols, &rows, printer.width(), printer.color_out());
        out.push_str(&table);
        // Errors are also on stderr; a hidden column is named when it
        // held something.
        let hidden = layout.hidden(&cols);
        let lost = cols
            .iter()
            .enumerate()
            .any(|(i, c)| hidden.contains(&c.header) && rows.iter().any(|r| r[i].text != "-"));
        if lost {
            printer.info(&format!(
                "{} not shown at this width: widen the terminal, or use --json",
                hidden.join(", ")
            ));
        }
    }
    let mut tail = summary_counts_line(new, s, check, printer.color_out());
    tail.push('\n');
    if let Some(left) = left {
        tail.push_str(&format!(
            "({left} not listed; --all-rows or --json lists all)\n"
        ));
    }
    out.push_str(&table::wrap_lines(&tail, printer.width()));
    out
}

/// `300 customers: 2 changed (1 new), 0 failed; 7 API requests, 0.4 s`
/// (`, 2 retries` after the requests when there were any).
pub(crate) fn summary_counts_line(new: u64, s: &Summary, check: bool, color: bool) -> String {
    use super::fmt::{count, elapsed, plural};
    let retries = match s.retries {
        0 => String::new(),
        n => format!(", {}", plural(n, "retry")),
    };
    let verb = if check { "drifted" } else { "changed" };
    let failed = match s.failed {
        0 => "0 failed".to_owned(),
        n => super::paint(color, &format!("{} failed", count(n)), super::RED).into_owned(),
    };
    format!(
        "{}: {} {verb} ({} new), {failed}; {}{retries}, {}",
        plural(s.customers, "customer"),
        count(s.changed),
        count(new),
        plural(s.api_requests, "API request"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(i: usize, changed: bool, new: bool) -> CustomerReport {
        CustomerReport {
            customer_id: Some(format!("cus_{i}")),
            user_id: None,
            status: Some("active".into()),
            changed,
            error: None,
            diff: None,
            new,
        }
    }

    fn take_all(listing: &mut Listing, reports: &[CustomerReport]) -> Vec<CustomerReport> {
        let taken: Vec<CustomerReport> = reports
            .iter()
            .filter(|r| listing.take(r))
            .cloned()
            .collect();
        taken.into_iter().filter(|r| !listing.dropped(r)).collect()
    }

    #[test]
    fn above_fifty_customers_the_changed_new_and_failed_are_listed() {
        // 56 unchanged, 3 changed, 1 new, 1 failed.
        let mut reports: Vec<CustomerReport> = (0..56).map(|i| report(i, false, false)).collect();
        reports.extend((56..59).map(|i| report(i, true, false)));
        reports.push(report(59, true, true));
        let mut failed = report(60, false, false);
        failed.error = Some("timeout".into());
        reports.push(failed);
        let mut listing = Listing::new(reports.len() as u64, false);
        let rows = take_all(&mut listing, &reports);
        let ids: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.customer_id.as_deref())
            .collect();
        assert_eq!(ids, ["cus_56", "cus_57", "cus_58", "cus_59", "cus_60"]);
        assert_eq!((listing.new_left, listing.unchanged_left), (0, 56));
        // --all-rows: every one.
        let mut listing = Listing::new(reports.len() as u64, true);
        assert_eq!(take_all(&mut listing, &reports).len(), reports.len());
    }

    #[test]
    fn a_first_backfill_counts_its_new_customers_instead_of_listing_them() {
        let mut reports: Vec<CustomerReport> = (0..300).map(|i| report(i, true, true)).collect();
        reports.push(report(300, true, false));
        let mut listing = Listing::new(reports.len() as u64, false);
        let rows = take_all(&mut listing, &reports);
        assert_eq!(rows.len(), 1, "only the changed one");
        assert_eq!((listing.new_left, listing.unchanged_left), (300, 0));
        // Fifty new ones are listed.
        let reports: Vec<CustomerReport> = (0..60).map(|i| report(i, i < 50, i < 50)).collect();
        let mut listing = Listing::new(reports.len() as u64, false);
        assert_eq!(take_all(&mut listing, &reports).len(), 50);
        assert_eq!((listing.new_left, listing.unchanged_left), (0, 10));
    }

    #[test]
    fn changed_fields_come_most_important_first() {
        let diff = serde_json::json!({
            "cancel_at_period_end": {}, "current_period_end": {}, "current_period_start": {},
            "email": {}, "payment_method": {}, "price_id": {}, "status": {}, "zeta": {}
        });
        assert_eq!(
            changed_fields(diff.as_object().unwrap()),
            "status, price, period, cancel_at_period_end, card, email, zeta"
        );
    }
}
