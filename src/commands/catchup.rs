//! `stripe-sync resync --events [--since WHEN] [--follow]`: arguments ->
//! the catch-up engine (`sync::events`) -> one report per poll.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Status;
use crate::cli::{GlobalArgs, ResyncArgs};
use crate::output::resync::{Summary, human};
use crate::output::{Printer, fmt};
use crate::runtime::Runtime;
use crate::store;
use crate::sync::events::{
    CatchUp, Follower, News, Pass, Polled, TEST_FOLLOW_UNIT_ENV, Terminate, Waiting, follow_unit,
    parse_since,
};
use crate::sync::report::CustomerReport;
use crate::sync::{Mode, SyncError, Syncer};

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

pub(crate) fn run(
    args: &ResyncArgs,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<Status> {
    let cfg = super::load_config(global, args.user_key.as_deref(), printer)?;
    let now = super::unix_now();
    let since = match &args.since {
        Some(w) => Some(parse_since(w, now).map_err(crate::usage)?),
        None => None,
    };
    let (client, _) = super::api_client(&args.api, &cfg, printer)?;
    let mode = if args.check {
        Mode::DryRun
    } else {
        Mode::Write
    };
    let mut syncer = Syncer::open(&store::db_path(global.db.as_deref()), mode)?;
    if since.is_none() && syncer.store().events_checkpoint()?.is_none() {
        return Err(crate::usage(
            "no events checkpoint in the store: run `stripe-sync resync --all` first (it sets one), or pass --since (e.g. --since 7d)",
        ));
    }
    let rt = Runtime::new()?;
    let poll = |since: Option<i64>,
                syncer: &mut Syncer,
                term: Option<&Terminate>|
     -> Result<Option<(Pass, Status)>, SyncError> {
        let started = Instant::now();
        let before = client.stats();
        let pass = CatchUp {
            rt: &rt,
            client: &client,
            cfg: &cfg,
            since,
            now: super::unix_now(),
            term,
        }
        .run(syncer)?;
        let Some(pass) = pass else {
            return Ok(None);
        };
        let after = client.stats();
        let status =
            render(args, printer, &pass, started, before, after).map_err(SyncError::Store)?;
        Ok(Some((pass, status)))
    };
    if !args.follow {
        let polled = match poll(since, &mut syncer, None) {
            Ok(polled) => polled,
            Err(e) => {
                // A first catch-up that stored nothing leaves no store.
                syncer.close_failed();
                return Err(e.into());
            }
        };
        syncer.close();
        return Ok(polled.map_or(Status::Ok, |(_, status)| status));
    }

    // --follow: SIGTERM ends it with 0 (after the poll in flight), Ctrl-C
    // with 130, a refused key with 2; a failing API is waited out.
    let (tx, term) = tokio::sync::watch::channel(false);
    let mut sigterm = {
        let _inside = rt.handle().enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?
    };
    rt.handle().spawn(async move {
        if sigterm.recv().await.is_some() {
            let _ = tx.send(true);
        }
    });
    let unit = follow_unit(std::env::var(TEST_FOLLOW_UNIT_ENV).ok().as_deref());
    printer.info(&format!(
        "following Stripe's event log every {} s (SIGTERM or Ctrl-C stops)",
        args.interval
    ));
    let followed = Follower {
        rt: &rt,
        interval: Duration::from_secs(args.interval),
        waiting: Waiting::new(args.interval, unit),
        term,
    }
    .run(
        since,
        |start, term| {
            Ok(match poll(start, &mut syncer, Some(term))? {
                None => Polled::Stopped,
                Some((pass, _)) => Polled::Done {
                    reached: pass.checkpoint.map(|c| c.created),
                },
            })
        },
        |news| say(printer, &news),
    );
    if let Err(e) = followed {
        syncer.close_failed();
        return Err(e.into());
    }
    syncer.close();
    Ok(Status::Ok)
}

/// A follower's news on stderr: the waiting and the return said once, each
/// try with -v.
fn say(printer: &Printer, news: &News<'_>) {
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

fn render(
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
