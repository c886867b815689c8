//! Rendering a resync: one row per customer that changed (or drifted) or
//! failed, and the summary.

use serde_json::Value;

use super::escape_text;
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

pub(crate) fn human(reports: &[CustomerReport], s: &Summary, check: bool) -> String {
    let mut b = tabled::builder::Builder::default();
    b.push_record([
        "CUSTOMER",
        "USER",
        "STATUS",
        if check { "DRIFT" } else { "CHANGED" },
        "ERROR",
    ]);
    let mut shown = 0;
    for r in reports {
        // Large runs list what changed or failed; the summary counts the rest.
        if reports.len() > 50 && (!r.changed || r.new) && r.error.is_none() {
            continue;
        }
        shown += 1;
        let esc = |v: &Option<String>| {
            v.as_deref()
                .map(|x| escape_text(x).into_owned())
                .unwrap_or_else(|| "-".into())
        };
        let change = match (&r.diff, r.changed) {
            (_, true) if r.new => "new".into(),
            (Some(Value::Object(m)), true) => m.keys().cloned().collect::<Vec<_>>().join(", "),
            (_, true) => "yes".into(),
            _ => "-".into(),
        };
        b.push_record([
            esc(&r.customer_id),
            esc(&r.user_id),
            esc(&r.status),
            change,
            esc(&r.error),
        ]);
    }
    let mut out = String::new();
    if shown > 0 {
        let mut t = b.build();
        t.with(tabled::settings::Style::blank());
        for line in t.to_string().lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    let verb = if check { "drifted" } else { "changed" };
    let new = reports.iter().filter(|r| r.new).count();
    out.push_str(&format!(
        "{} customers: {} {verb} ({new} new), {} failed; {} API requests, {} retries, {:.1} s\n",
        s.customers,
        s.changed,
        s.failed,
        s.api_requests,
        s.retries,
        s.elapsed_ms as f64 / 1000.0
    ));
    out
}
