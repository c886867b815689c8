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
    let quiet_rows = !all_rows && reports.len() > FULL_LIST;
    let mut not_shown = 0u64;
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    for r in reports {
        if quiet_rows && (!r.changed || r.new) && r.error.is_none() {
            not_shown += 1;
            continue;
        }
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
    out.push_str(&summary_line(reports, s, check, printer.color_out()));
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
pub(crate) fn summary_line(
    reports: &[CustomerReport],
    s: &Summary,
    check: bool,
    color: bool,
) -> String {
    use super::fmt::{count, elapsed, plural};
    let verb = if check { "drifted" } else { "changed" };
    let new = reports.iter().filter(|r| r.new).count() as u64;
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
