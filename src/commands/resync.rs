//! `stripe-sync resync`: arguments -> plan -> sync engine -> render. GET
//! requests only; `--check` is the same run on a private copy of the store.

use std::time::Instant;

use crate::Status;
use crate::cli::{GlobalArgs, ResyncArgs};
use crate::output::resync::{Listing, Summary, human_listed, json_stream, summary_counts_line};
use crate::output::{Printer, fmt};
use crate::runtime::Runtime;
use crate::stripe::KeyMode;
use crate::sync::backfill::Backfiller;
use crate::sync::report::{CustomerReport, PassReports, Tally};
use crate::sync::targeted::Lookup;
use crate::sync::{Mode, Syncer};

pub fn run(args: &ResyncArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Status> {
    if args.events {
        return super::catchup::run(args, global, printer);
    }
    if !args.all && args.users.is_empty() && args.customers.is_empty() {
        return Err(crate::usage(
            "nothing to resync: pass --user ID, --customer ID (both repeatable), --all or --events",
        ));
    }
    let started = Instant::now();
    let cfg = super::load_config(global, args.user_key.as_deref(), printer)?;
    let (client, key_mode) = super::api_client(&args.api, &cfg, printer)?;
    if args.all && key_mode == KeyMode::Live && !args.yes {
        confirm_live_backfill(printer)?;
    }
    let mode = if args.check {
        Mode::DryRun
    } else {
        Mode::Write
    };
    let mut syncer = Syncer::open(&super::store_location(global, &cfg), mode)?;
    let rt = Runtime::new()?;
    let now = super::unix_now();

    let ctx = Ctx {
        rt: &rt,
        client: &client,
        user_key: &cfg.user_key,
        now,
        printer,
    };
    let ran = match args.all {
        true => ctx.backfill(args, &mut syncer).map(Err),
        false => ctx.targeted(args, &mut syncer).map(Ok),
    };
    let targeted = match ran {
        Ok(targeted) => targeted,
        Err(e) => {
            // A first run that failed before fetching anything leaves no store.
            syncer.close_failed();
            return Err(e);
        }
    };
    // A backfill's report is read from the store's journal as it is
    // printed: a million customers are never all in memory. Its time (-v)
    // counts from here: counting the run's customers and indexing the
    // journal are the report's.
    let reporting = Instant::now();
    let (total, reports): (u64, Box<dyn Iterator<Item = _>>) = match targeted {
        Ok(reports) => (reports.len() as u64, Box::new(reports.into_iter().map(Ok))),
        Err(run) => {
            let pass = PassReports::new(syncer.store(), run);
            (pass.len()?, Box::new(pass))
        }
    };
    let tally = std::cell::Cell::new(Tally::default());
    let mut reports = reports.inspect(|r| {
        if let Ok(r) = r {
            tally.set(tally.get().see(r));
            match (&r.customer_id, &r.error) {
                (Some(c), Some(e)) => printer.error(&format!("customer {c}: {e}")),
                (None, Some(e)) => printer.error(e),
                _ => {}
            }
        }
    });
    let summary = || {
        let stats = client.stats();
        let t = tally.get();
        Summary {
            customers: t.customers,
            changed: t.changed,
            failed: t.failed,
            api_requests: stats.requests,
            retries: stats.retries,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    };
    if printer.json {
        json_stream(printer, &mut reports, &summary)?;
    } else {
        let mut listing = Listing::new(total, args.all_rows);
        let mut shown = Vec::new();
        for r in &mut reports {
            let r = r?;
            if listing.take(&r) {
                shown.push(r);
            }
        }
        let (s, new) = (summary(), tally.get().new);
        printer.out(&human_listed(
            &shown, &listing, new, &s, args.check, printer,
        ))?;
    }
    drop(reports);
    if args.all {
        printer.verbose(&format!("  report: {}", fmt::elapsed(reporting.elapsed())));
    }
    syncer.close();
    let (s, new) = (summary(), tally.get().new);
    if printer.wants_stderr_summary() {
        // The output went to a file or a pipe: the person at the terminal
        // still learns how it went.
        printer.info(&summary_counts_line(new, &s, args.check, false));
    }
    let drift = args.check && s.changed > 0;
    Ok(Status::from_problems(s.failed > 0 || drift))
}

/// What both kinds of resync need.
struct Ctx<'a> {
    rt: &'a Runtime,
    client: &'a crate::stripe::Client,
    user_key: &'a str,
    now: i64,
    printer: &'a Printer,
}

impl Ctx<'_> {
    /// `--all`: the backfill, resumed when one was interrupted; the run's
    /// number, whose report is read from the store (see [`PassReports`]).
    fn backfill(&self, args: &ResyncArgs, syncer: &mut Syncer) -> anyhow::Result<i64> {
        crate::sync::backfill::hold_lock(syncer, self.rt, args.no_wait, |holder| {
            self.printer.info(&format!(
                "another backfill is running on this store: {holder}; waiting for it to \
                 end (Ctrl-C to stop, --no-wait to exit instead)"
            ));
        })?;
        let started = Instant::now();
        // A pass that fetched nothing (a bad key, a dead API) left only its
        // start: running again is no resumption worth announcing.
        let begun = syncer.store().backfill()?.is_some_and(|b| {
            use crate::store::checkpoint::Cursor;
            b.customers != Cursor::Start || b.subscriptions != Cursor::Start
        });
        if !args.check && !args.restart && begun {
            self.printer
                .info("resuming the interrupted backfill (pass --restart to start over)");
        }
        let bar = self.printer.spinner();
        let pass = Backfiller {
            rt: self.rt,
            client: self.client,
            user_key: self.user_key,
            restart: args.restart,
            now: self.now,
        }
        .run(syncer, &mut |c| {
            let stats = self.client.stats();
            bar.set_message(format!(
                "{}, {}, {}, {}",
                fmt::plural(c.customers, "customer"),
                fmt::plural(c.subscriptions, "subscription"),
                fmt::plural(stats.requests, "request"),
                fmt::plural(stats.retries, "retry")
            ));
        });
        bar.finish_and_clear();
        let ran = pass?;
        // Where the time went: the API's pages or the store.
        self.printer.verbose(&format!(
            "backfill: {} and {} in {}",
            fmt::plural(ran.counts.customers, "customer"),
            fmt::plural(ran.counts.subscriptions, "subscription"),
            fmt::elapsed(started.elapsed())
        ));
        for (phase, took) in ran.timings {
            self.printer
                .verbose(&format!("  {phase}: {}", fmt::elapsed(took)));
        }
        Ok(ran.run)
    }

    /// `--customer`/`--user`: the customers asked for, one sync each.
    fn targeted(
        &self,
        args: &ResyncArgs,
        syncer: &mut Syncer,
    ) -> anyhow::Result<Vec<CustomerReport>> {
        let bar = self.printer.bar(0, "customers");
        let done = Lookup::resync(
            self.rt,
            self.client,
            syncer,
            self.user_key,
            self.now,
            (&args.customers, &args.users),
            &bar,
        );
        bar.finish_and_clear();
        let (reports, warnings) = done?;
        for w in &warnings {
            self.printer.warn(w);
        }
        Ok(reports)
    }
}

fn confirm_live_backfill(printer: &Printer) -> anyhow::Result<()> {
    match printer
        .confirm("Backfill every customer of this LIVE Stripe account (GET requests only)?")
    {
        Some(true) => Ok(()),
        Some(false) => Err(crate::usage("backfill cancelled")),
        None => Err(crate::usage(
            "--all on a live key needs confirmation: pass --yes (no terminal to ask on)",
        )),
    }
}
