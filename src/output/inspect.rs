//! Rendering `inspect`: the mapping as a table that fits the terminal, or
//! CSV; and the duplicate-customer warning, grouped.

use std::collections::BTreeMap;

use super::table::{self, Cell, Col, Cut};
use super::{Printer, Style, escape_text, fmt};
use crate::store::MappingRow;

/// The pattern's known race: two customers created for one user.
pub(crate) fn warn_duplicate_customers(rows: &[MappingRow], printer: &Printer) {
    let mut by_user: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in rows {
        if let Some(u) = &r.user_id {
            by_user.entry(u).or_default().push(&r.customer_id);
        }
    }
    let dups: Vec<(&str, Vec<&str>)> = by_user.into_iter().filter(|(_, c)| c.len() > 1).collect();
    // A few are named one by one; many are grouped into one line.
    const LISTED: usize = 3;
    if dups.len() <= LISTED {
        for (user, customers) in &dups {
            printer.warn(&format!(
                "user {} maps to {} customers ({}): duplicate customers, the checkout race of the pattern; the app syncs only one",
                escape_text(user),
                customers.len(),
                customers.join(", ")
            ));
        }
        return;
    }
    let named: Vec<String> = dups
        .iter()
        .take(LISTED)
        .map(|(u, c)| format!("{} ({})", escape_text(u), c.len()))
        .collect();
    printer.warn(&format!(
        "{} have more than one customer: {}, ...; duplicate customers, the checkout race of the pattern (`inspect --user ID` lists one user's)",
        fmt::plural(dups.len() as u64, "user"),
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

pub(crate) fn table(rows: &[MappingRow], printer: &Printer) -> String {
    let esc = |s: &Option<String>| {
        s.as_deref()
            .map(|v| escape_text(v).into_owned())
            .unwrap_or_else(|| "-".into())
    };
    let cells: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
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
        })
        .collect();
    let (mut out, layout) = table::render(&COLS, &cells, printer.width(), printer.color_out());
    let hidden = layout.hidden(&COLS);
    if !hidden.is_empty() {
        printer.info(&format!(
            "{} not shown at this width: widen the terminal, or use --json or --csv",
            hidden.join(", ")
        ));
    }
    if out.ends_with('\n') && rows.is_empty() {
        out.truncate(out.len());
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub(crate) fn csv(rows: &[MappingRow]) -> String {
    let mut out = String::from(
        "user_id,customer_id,email,subscription_id,status,price_id,current_period_start,current_period_end,cancel_at_period_end,card_brand,card_last4,synced_at,source\n",
    );
    for r in rows {
        let opt = |s: &Option<String>| s.as_deref().map(csv_field).unwrap_or_default();
        let num = |n: Option<i64>| n.map(|v| v.to_string()).unwrap_or_default();
        let (brand, last4) = match &r.payment_method {
            Some(c) => (opt(&c.brand), opt(&c.last4)),
            None => (String::new(), String::new()),
        };
        out.push_str(
            &[
                opt(&r.user_id),
                csv_field(&r.customer_id),
                opt(&r.email),
                opt(&r.subscription_id),
                csv_field(&r.status),
                opt(&r.price_id),
                num(r.current_period_start),
                num(r.current_period_end),
                r.cancel_at_period_end.to_string(),
                brand,
                last4,
                csv_field(&r.synced_at),
                csv_field(&r.source),
            ]
            .join(","),
        );
        out.push('\n');
    }
    out
}
