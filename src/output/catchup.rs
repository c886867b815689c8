//! `resync --events`'s output: one report per poll (a table, a JSON
//! document, or with `--follow` one JSON line), and a follower's news.

use std::time::Instant;

use serde::Serialize;

use crate::Status;
use crate::cli::ResyncArgs;
use crate::output::resync::{Summary, human};
use crate::output::{Printer, fmt};
use crate::sync::events::{News, Pass};
use crate::sync::report::CustomerReport;

#[derive(Serialize)]
struct Checkpoint {
    created: i64,
    id: Option<String>,
}

#[derive(Serialize)]
struct EventsPart {
    listed: u64,
    sync: u64,
    ignored: u64,
    rejected: u64,
    unresolved: u64,
    duplicate: u64,
    checkpoint: Option<Checkpoint>,
    gap: bool,
    /// With `gap`: the span whose events may be missing.
    gap_span: Option<[i64; 2]>,
}

#[derive(Serialize)]
struct Report<'a> {
    customers: &'a [CustomerReport],
    summary: &'a Summary,
    events: EventsPart,
}

/// A follower's news on stderr: the waiting and the return said once, each
/// try with -v.
pub(crate) fn say(printer: &Printer, news: &News<'_>) {
    match news {
        News::Waiting {
            cause, first: true, ..
        } => printer.warn(&format!(
            "waiting for the Stripe API: {cause}; trying again with backoff, at most a minute apart"
        )),
        News::Waiting {
            cause,
            first: false,
            after,
        } => printer.verbose(&format!(
            "still waiting for the Stripe API: {cause}; next try in {}",
            fmt::elapsed(*after)
        )),
        News::Back { away } => printer.info(&format!(
            "the Stripe API answers again (after {}); following the event log",
            fmt::elapsed(*away)
        )),
    }
}

/// One poll's report; its status (failures, drift under `--check`, a gap).
pub(crate) fn render(
    args: &ResyncArgs,
    printer: &Printer,
    pass: &Pass,
    started: Instant,
    before: crate::stripe::Stats,
    after: crate::stripe::Stats,
) -> anyhow::Result<Status> {
    let mut reports: Vec<CustomerReport> = pass
        .customers
        .iter()
        .map(|(c, o)| CustomerReport::from_outcome(c, o))
        .collect();
    reports.extend(
        pass.failures
            .iter()
            .map(|(c, e)| CustomerReport::failed(c, e)),
    );
    let summary = Summary {
        customers: reports.len() as u64,
        changed: reports.iter().filter(|r| r.changed).count() as u64,
        failed: reports.iter().filter(|r| r.error.is_some()).count() as u64,
        api_requests: after.requests - before.requests,
        retries: after.retries - before.retries,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    for (c, e) in &pass.failures {
        printer.error(&format!("customer {c}: {e}"));
    }
    if let Some((from, to)) = pass.gap {
        printer.warn(&format!(
            "the start ({from}) is older than Stripe keeps events (30 days, since {to}): events may be missing; `stripe-sync resync --all` is the repair"
        ));
    }
    let s = &pass.summary;
    // A follower prints only what is new: no table, no document.
    if args.follow && pass.nothing_new() {
        return Ok(Status::Ok);
    }
    if printer.json {
        let doc = Report {
            customers: &reports,
            summary: &summary,
            events: EventsPart {
                listed: pass.listed,
                sync: s.sync,
                ignored: s.ignored,
                rejected: s.rejected,
                unresolved: s.unresolved,
                duplicate: s.duplicate,
                checkpoint: pass.checkpoint.as_ref().map(|c| Checkpoint {
                    created: c.created,
                    id: c.id.clone(),
                }),
                gap: pass.gap.is_some(),
                gap_span: pass.gap.map(|(a, b)| [a, b]),
            },
        };
        match args.follow {
            // One document per poll, one per line.
            true => printer.out(&format!("{}\n", serde_json::to_string(&doc)?))?,
            false => printer.out_json(&doc)?,
        }
    } else {
        let table = human(&reports, &summary, args.check, args.all_rows, printer);
        printer.out(&format!(
            "{} listed: {} sync, {} ignored, {} rejected, {} unresolved, {} duplicate\n{table}",
            fmt::plural(pass.listed, "event"),
            s.sync,
            s.ignored,
            s.rejected,
            s.unresolved,
            s.duplicate
        ))?;
    }
    let drift = args.check && summary.changed > 0;
    Ok(Status::from_problems(
        summary.failed > 0 || drift || pass.gap.is_some(),
    ))
}
