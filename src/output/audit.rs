//! `audit`'s output: the findings as a table that fits the terminal, the
//! summary line, the repairs, and the same as one JSON document or CSV.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use super::table::{Cell, Col, Cut, render, wrap_lines};
use super::{Printer, escape_text, fmt};
use crate::audit::compare::{Finding, Kind};
use crate::audit::record::Problem;
use crate::audit::repair::{Plan, Repair};
use crate::audit::{Report, Summary};

const COLS: [Col; 5] = [
    Col::new("USER", 0, 8, Cut::Middle),
    Col::new("FINDING", 0, 26, Cut::Right),
    Col::new("APP", 1, 8, Cut::Right),
    Col::new("STRIPE", 1, 8, Cut::Right),
    // Whole (a Stripe customer id is 18) or not at all.
    Col::new("CUSTOMER", 3, 18, Cut::Middle),
];

/// How many record problems are named on stderr (the JSON lists all).
pub(crate) const PROBLEMS_NAMED: usize = 20;

/// The finding as the table names it: the field for a kind that covers
/// several (`period_end`, `card_last4`), else the kind.
fn finding_label(f: &Finding) -> &'static str {
    match (f.finding, f.field) {
        (Kind::Period | Kind::Card, Some(field)) => field,
        (k, _) => k.name(),
    }
}

/// A value as a person reads it: times as dates, lists joined, null as `-`.
fn value(f: &Finding, v: &Value) -> String {
    let period = f.finding == Kind::Period;
    match v {
        Value::Null => "-".into(),
        Value::String(s) => escape_text(s).into_owned(),
        Value::Number(n) if period => n
            .as_i64()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .map(|d| {
                format!(
                    "{}-{:02}-{:02} {:02}:{:02}",
                    d.year(),
                    u8::from(d.month()),
                    d.day(),
                    d.hour(),
                    d.minute()
                )
            })
            .unwrap_or_else(|| n.to_string()),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => escape_text(s).into_owned(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The findings table, fitted to the terminal.
pub(crate) fn table(findings: &[Finding], printer: &Printer) -> String {
    let color = printer.color_out();
    let rows: Vec<Vec<Cell>> = findings
        .iter()
        .map(|f| {
            let serious = matches!(
                f.finding,
                Kind::UnpaidAccess | Kind::PaidNoAccess | Kind::MissingInApp | Kind::UnknownUser
            );
            vec![
                Cell::from(escape_text(&f.user_id).into_owned()),
                Cell::styled(finding_label(f), serious.then_some(super::RED)),
                Cell::from(value(f, &f.app)),
                Cell::from(value(f, &f.stripe)),
                Cell::from(
                    f.customer_id
                        .as_deref()
                        .map_or("-".into(), |c| escape_text(c).into_owned()),
                ),
            ]
        })
        .collect();
    let (out, layout) = render(&COLS, &rows, printer.width(), color);
    let hidden = layout.hidden(&COLS);
    if !hidden.is_empty() {
        printer.info(&format!(
            "{} not shown at this width: widen the terminal, or use --json or --csv",
            hidden.join(", ")
        ));
    }
    out
}

/// `412 users: 385 in sync, 27 drifted (3 unpaid access, 1 paid without
/// access, ...)`, then which fields were compared.
pub(crate) fn summary_line(s: &Summary) -> String {
    let kinds: Vec<String> = s
        .findings
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{} {}", fmt::count(*n), k.phrase()))
        .collect();
    let mut line = format!(
        "{}: {} in sync, {} drifted",
        fmt::plural(s.users, "user"),
        fmt::count(s.in_sync),
        fmt::count(s.drifted)
    );
    if !kinds.is_empty() {
        line.push_str(&format!(" ({})", kinds.join(", ")));
    }
    if s.problems > 0 {
        line.push_str(&format!(
            "; {} not audited",
            fmt::noun(s.problems, "record", "records")
        ));
    }
    line
}

/// Which fields the app's records have, so a reader knows what "in sync" covers.
pub(crate) fn compared_line(s: &Summary) -> String {
    match s.fields_compared.is_empty() {
        true => format!(
            "compared: nothing but who is billed ({} has no field but the user)",
            s.source
        ),
        false => format!(
            "compared: {} (from {})",
            s.fields_compared.join(", "),
            s.source
        ),
    }
}

/// The repairs, one line each (wrapped at words on a terminal).
pub(crate) fn repairs(repairs: &[Repair], dry_run: bool, printer: &Printer) -> String {
    let color = printer.color_out();
    let mut out = String::new();
    let head = match dry_run {
        true => format!(
            "would send ({}):",
            fmt::plural(repairs.len() as u64, "drifted user")
        ),
        false => format!(
            "repairs ({}):",
            fmt::plural(repairs.len() as u64, "drifted user")
        ),
    };
    out.push_str(&head);
    out.push('\n');
    for r in repairs {
        let user = escape_text(&r.user_id);
        let line = match &r.plan {
            Plan::Send {
                event_id,
                kind,
                subscription_id,
                ..
            } => {
                let answer = match &r.delivery {
                    Some(d) => format!(" {}", super::replay::delivery(d, color)),
                    None => String::new(),
                };
                format!("  {user}  {kind} {subscription_id} ({event_id}){answer}")
            }
            Plan::NotRepairable { reason, .. } => {
                format!("  {user}  not repairable: {}", escape_text(reason))
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    wrap_lines(&out, printer.width())
}

/// The findings as CSV (`user_id,customer_id,finding,field,app,stripe`).
pub(crate) fn csv(findings: &[Finding], out: impl Write) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "user_id",
        "customer_id",
        "finding",
        "field",
        "app",
        "stripe",
    ])?;
    // The app's values are the app's data, not ours: control characters
    // (a terminal escape in an email or id) are escaped as in the table.
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => escape_text(s).into_owned(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map_or_else(|| i.to_string(), |s| escape_text(s).into_owned())
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    for f in findings {
        w.write_record([
            escape_text(&f.user_id).as_ref(),
            &escape_text(f.customer_id.as_deref().unwrap_or("")),
            f.finding.name(),
            f.field.unwrap_or(""),
            &cell(&f.app),
            &cell(&f.stripe),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// A problem as JSON: where, which field, what.
#[derive(Serialize)]
pub(crate) struct ProblemJson<'a> {
    pub source: &'a str,
    pub unit: &'a str,
    pub at: &'a str,
    pub field: Option<&'static str>,
    pub message: &'a str,
}

impl<'a> From<&'a Problem> for ProblemJson<'a> {
    fn from(p: &'a Problem) -> Self {
        ProblemJson {
            source: &p.origin.source,
            unit: p.origin.unit,
            at: &p.origin.at,
            field: p.field.map(|f| f.name()),
            message: &p.message,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct RecheckJson<'a> {
    pub after_seconds: u64,
    pub findings: &'a [Finding],
    pub summary: &'a Summary,
}

/// The whole result as one JSON document.
#[derive(Serialize)]
pub(crate) struct AuditJson<'a> {
    pub findings: &'a [Finding],
    pub summary: &'a Summary,
    pub problems: Vec<ProblemJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repairs: Option<&'a [Repair]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recheck: Option<RecheckJson<'a>>,
}

impl<'a> AuditJson<'a> {
    pub(crate) fn new(report: &'a Report) -> Self {
        AuditJson {
            findings: &report.findings,
            summary: &report.summary,
            problems: report.problems.iter().map(ProblemJson::from).collect(),
            repairs: None,
            recheck: None,
        }
    }
}

/// The whole result as one JSON document (see [`AuditJson`]).
pub(crate) fn json<'a>(
    report: &'a Report,
    repairs: Option<&'a [Repair]>,
    recheck: Option<&'a (u64, Report)>,
) -> AuditJson<'a> {
    let mut doc = AuditJson::new(report);
    doc.repairs = repairs;
    doc.recheck = recheck.map(|(secs, r)| RecheckJson {
        after_seconds: *secs,
        findings: &r.findings,
        summary: &r.summary,
    });
    doc
}

/// The findings, the summary, what was compared, and the repairs.
pub(crate) fn first_part(
    report: &Report,
    repairs: Option<&[Repair]>,
    dry_run: bool,
    printer: &Printer,
) -> String {
    let width = printer.width();
    let mut out = String::new();
    if !report.findings.is_empty() {
        out.push_str(&table(&report.findings, printer));
        out.push('\n');
    }
    out.push_str(wrap_lines(&summary_line(&report.summary), width).trim_end());
    out.push('\n');
    out.push_str(wrap_lines(&compared_line(&report.summary), width).trim_end());
    out.push('\n');
    if let Some(repairs) = repairs {
        out.push('\n');
        out.push_str(self::repairs(repairs, dry_run, printer).trim_end());
        out.push('\n');
    }
    out
}

/// What the recheck found.
pub(crate) fn recheck_part(secs: u64, again: &Report, printer: &Printer) -> String {
    let mut out = format!("\nrecheck after {secs} s:\n");
    if !again.findings.is_empty() {
        out.push_str(&table(&again.findings, printer));
        out.push('\n');
    }
    out.push_str(wrap_lines(&summary_line(&again.summary), printer.width()).trim_end());
    out.push('\n');
    out
}

/// A store older than this gets a warning: Stripe moved on since.
const STALE_AFTER_SECS: i64 = 24 * 60 * 60;

/// An empty source is more often the wrong file, table or query than an
/// app without users: say so before every billed user shows as missing.
pub(crate) fn tell_empty(label: &str, records: u64, printer: &Printer) {
    if records == 0 {
        printer.warn(&format!(
            "{label} holds no records: every user Stripe bills is reported as missing_in_app (wrong file, --table or --query?)"
        ));
    }
}

/// Warn when the store may be behind Stripe: it last took in the whole
/// account at `caught_up` (never: None).
pub(crate) fn tell_stale(caught_up: Option<i64>, now: i64, printer: &Printer) {
    match caught_up {
        None => printer.warn(
            "the store has never taken in the whole account (no finished `resync --all` or `resync --events`): \
             findings may be out of date; run `stripe-sync resync --events` first, or pass --live",
        ),
        Some(at) if now - at > STALE_AFTER_SECS => printer.warn(&format!(
            "the store last caught up with Stripe {} ago: findings may be out of date; \
             run `stripe-sync resync --events` first, or pass --live",
            fmt::age(u64::try_from(now - at).unwrap_or(0))
        )),
        Some(_) => {}
    }
}

/// Records that could not be audited, on stderr (the first few).
pub(crate) fn tell_problems(report: &Report, printer: &Printer) {
    for p in report.problems.iter().take(PROBLEMS_NAMED) {
        printer.error(&p.to_string());
    }
    let more = report.problems.len().saturating_sub(PROBLEMS_NAMED);
    if more > 0 {
        printer.error(&format!(
            "... and {} more not audited (--json lists every one)",
            fmt::noun(more as u64, "record", "records")
        ));
    }
}
