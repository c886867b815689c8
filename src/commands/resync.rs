//! `stripe-sync resync`: arguments -> plan -> sync engine -> render. GET
//! requests only; `--check` is the same run on a private copy of the store.

use std::time::Instant;

use serde::Serialize;

use crate::Status;
use crate::cli::{GlobalArgs, ResyncArgs};
use crate::output::resync::{Summary, human, summary_line};
use crate::output::{Printer, fmt};
use crate::runtime::Runtime;
use crate::store;
use crate::stripe::KeyMode;
use crate::sync::backfill::Backfiller;
use crate::sync::report::CustomerReport;
use crate::sync::targeted::Lookup;
use crate::sync::{ApiSource, Job, Mode, Syncer};

#[derive(Serialize)]
struct Report<'a> {
    customers: &'a [CustomerReport],
    summary: &'a Summary,
}

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
    let mut syncer = Syncer::open(&store::db_path(global.db.as_deref()), mode)?;
    let rt = Runtime::new()?;
    let now = super::unix_now();

    let ctx = Ctx {
        rt: &rt,
        client: &client,
        user_key: &cfg.user_key,
        now,
        printer,
    };
    let reports = match args.all {
        true => ctx.backfill(args, &mut syncer)?,
        false => ctx.targeted(args, &mut syncer)?,
    };
    syncer.close();
    for r in &reports {
        if let (Some(c), Some(e)) = (&r.customer_id, &r.error) {
            printer.error(&format!("customer {c}: {e}"));
        } else if let (None, Some(e)) = (&r.customer_id, &r.error) {
            printer.error(e);
        }
    }

    let stats = client.stats();
    let summary = Summary {
        customers: reports.iter().filter(|r| r.customer_id.is_some()).count() as u64,
        changed: reports.iter().filter(|r| r.changed).count() as u64,
        failed: reports.iter().filter(|r| r.error.is_some()).count() as u64,
        api_requests: stats.requests,
        retries: stats.retries,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    if printer.json {
        printer.out_json(&Report {
            customers: &reports,
            summary: &summary,
        })?;
    } else {
        printer.out(&human(
            &reports,
            &summary,
            args.check,
            args.all_rows,
            printer,
        ))?;
    }
    if printer.wants_stderr_summary() {
        // The output went to a file or a pipe: the person at the terminal
        // still learns how it went.
        printer.info(&summary_line(&reports, &summary, args.check, false));
    }
    let drift = args.check && summary.changed > 0;
    Ok(Status::from_problems(summary.failed > 0 || drift))
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
    /// `--all`: the backfill, resumed when one was interrupted.
    fn backfill(
        &self,
        args: &ResyncArgs,
        syncer: &mut Syncer,
    ) -> anyhow::Result<Vec<CustomerReport>> {
        if !args.check && !args.restart && syncer.store().backfill()?.is_some() {
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
        Ok(pass?
            .outcomes
            .iter()
            .map(|(c, o)| CustomerReport::from_outcome(c, o))
            .collect())
    }

    /// `--customer`/`--user`: the customers asked for, one sync each.
    fn targeted(
        &self,
        args: &ResyncArgs,
        syncer: &mut Syncer,
    ) -> anyhow::Result<Vec<CustomerReport>> {
        let targets = Lookup {
            rt: self.rt,
            client: self.client,
            store: syncer.store(),
            user_key: self.user_key,
            now: self.now,
        }
        .targets(&args.customers, &args.users)?;
        for w in &targets.warnings {
            self.printer.warn(w);
        }
        let mut reports: Vec<CustomerReport> = targets
            .missing_users
            .iter()
            .map(|(user, e)| CustomerReport::user_not_found(user, e.clone()))
            .collect();
        let mut source = ApiSource::new(self.rt, self.client, self.user_key, self.now);
        source.prefetched = targets.prefetched;
        let jobs = targets
            .customers
            .into_iter()
            .map(|customer_id| Job {
                customer_id,
                user_hint: None,
            })
            .collect();
        let bar = self.printer.bar(0, "customers");
        let synced = syncer.sync(&mut source, jobs, Some(self.rt), &bar);
        bar.finish_and_clear();
        reports.extend(synced?.iter().map(CustomerReport::from_synced));
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
