//! `stripe-sync audit`: the app's records -> the rules against the store ->
//! findings; then, when asked, repairs through the app's webhook and a
//! recheck of the source.

use std::time::Duration;

use crate::Status;
use crate::audit::compare::{Kind, Rules};
use crate::audit::fields::FieldMap;
use crate::audit::repair::{self, Repair};
use crate::audit::source::{self, Format, Source};
use crate::audit::{self as engine, AppSide, live};
use crate::cli::{AuditArgs, AuditFormat, GlobalArgs};
use crate::forward;
use crate::output::audit as render;
use crate::output::{Printer, fmt};
use crate::runtime::Runtime;
use crate::store::{self, Store};

pub fn run(args: &AuditArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Status> {
    if args.csv && printer.json {
        return Err(crate::usage(
            "--csv and --json exclude each other: pick one output format",
        ));
    }
    let cfg = super::load_config(global, args.user_key.as_deref(), printer)?;
    let spec = spec(args, &cfg)?;
    let access = Rules::access(&args.access).map_err(crate::usage)?;
    let fail_on = Kind::counted(&args.fail_on).map_err(crate::usage)?;
    let forward = repair_target(args, printer)?;
    let db = super::store_location(global, &cfg);
    let rt = Runtime::new()?;

    let app = AppSide::read(&spec)?;
    render::tell_empty(&app.read.label, app.read.records, printer);
    if args.live {
        resync_live(args, &cfg, &rt, &db, &app, printer)?;
    }
    let Some(store) = Store::open_read_only(&db)? else {
        return Err(anyhow::anyhow!(
            "no store at {}: build one with `stripe-sync resync --all` (or pass --live, or --db)",
            db
        ));
    };
    if !args.live {
        render::tell_stale(store.caught_up_at()?, super::unix_now(), printer);
    }
    let rules = Rules {
        access: access.clone(),
        fields: app.read.fields.clone(),
    };
    let report = engine::hold(&store, app, &rules)?;
    render::tell_problems(&report, printer);
    let repairs = match args.repair_via {
        Some(_) => Some(repairs(&store, &report, &cfg, &rt, forward)?),
        None => None,
    };
    // A person sees the findings and the repairs before the wait.
    let human = !printer.json && !args.csv;
    if human {
        let first = render::first_part(&report, repairs.as_deref(), args.dry_run, printer);
        printer.out(&first)?;
    }
    let recheck = match args.recheck {
        Some(secs) => match recheck(secs, human, &rt, &store, &spec, access, printer)? {
            Some(again) => Some((secs, again)),
            None => {
                if printer.json {
                    printer.out_json(&render::json(&report, repairs.as_deref(), None))?;
                }
                printer.error(
                    "interrupted before the recheck: run the audit again to see what remains",
                );
                return Ok(Status::Interrupted);
            }
        },
        None => None,
    };

    let last = recheck.as_ref().map_or(&report, |(_, r)| r);
    if printer.json {
        printer.out_json(&render::json(&report, repairs.as_deref(), recheck.as_ref()))?;
    } else if args.csv {
        render::csv(&last.findings, printer.stdout_writer())?;
    } else if let Some((secs, again)) = &recheck {
        printer.out(&render::recheck_part(*secs, again, printer))?;
    }
    if human && printer.wants_stderr_summary() {
        printer.info(&render::summary_line(&last.summary));
    }
    if !report.problems.is_empty() || !last.problems.is_empty() {
        return Ok(Status::Failure);
    }
    Ok(Status::from_problems(last.fails(&fail_on)))
}

/// Where repairs go: `--repair-via`'s settings, checked before anything is
/// read (`None` without it, or with `--dry-run`, which only lists them).
fn repair_target(args: &AuditArgs, printer: &Printer) -> anyhow::Result<Option<forward::Settings>> {
    match (&args.repair_via, args.dry_run) {
        (Some(url), false) => Ok(Some(repair_settings(args, url, printer)?)),
        (Some(url), true) => {
            forward::check_url_of("--repair-via", url, args.allow_remote).map_err(crate::usage)?;
            Ok(None)
        }
        (None, _) => Ok(None),
    }
}

/// `--live`: the audited users resynced from the API first.
fn resync_live(
    args: &AuditArgs,
    cfg: &crate::config::Config,
    rt: &Runtime,
    db: &store::Location,
    app: &AppSide,
    printer: &Printer,
) -> anyhow::Result<()> {
    let (client, _) = super::api_client(&args.api, cfg, printer)?;
    let bar = printer.bar(0, "customers");
    let users = app.users()?;
    let done = live::resync(rt, &client, db, &cfg.user_key, &users, &bar);
    bar.finish_and_clear();
    let done = done?;
    done.warnings.iter().for_each(|w| printer.warn(w));
    printer.info(&format!(
        "--live: resynced {} of {} from the API",
        fmt::plural(done.customers as u64, "customer"),
        fmt::plural(users.len() as u64, "user")
    ));
    Ok(())
}

/// One repair event per drifted user, sent when there is a target.
fn repairs(
    store: &Store,
    report: &engine::Report,
    cfg: &crate::config::Config,
    rt: &Runtime,
    target: Option<forward::Settings>,
) -> anyhow::Result<Vec<Repair>> {
    let now = super::unix_now();
    let mut planned = repair::plan(store, report, &cfg.user_key, &cfg.api_version, now)?;
    if let Some(settings) = target {
        let forwarder = forward::Forwarder::new(settings, rt.handle().clone())?;
        repair::send(&mut planned, forwarder);
    }
    Ok(planned)
}

/// `--recheck SECONDS`: the source read and held again after the wait;
/// `None` when Ctrl-C ended the wait.
fn recheck(
    secs: u64,
    human: bool,
    rt: &Runtime,
    store: &Store,
    spec: &source::Spec,
    access: Vec<String>,
    printer: &Printer,
) -> anyhow::Result<Option<engine::Report>> {
    if human {
        printer.info(&format!("rechecking in {secs} s (Ctrl-C stops)"));
    }
    // The timer is made inside the runtime (a `sleep()` made out here
    // panics: no reactor).
    let waited = rt.block_on(async move { tokio::time::sleep(Duration::from_secs(secs)).await });
    if waited.is_err() {
        return Ok(None);
    }
    let (read, report) = engine::again(store, spec, access)?;
    render::tell_empty(&read.label, read.records, printer);
    render::tell_problems(&report, printer);
    Ok(Some(report))
}

/// The source as the arguments describe it.
fn spec(args: &AuditArgs, cfg: &crate::config::Config) -> anyhow::Result<source::Spec> {
    let src = match (&args.source, &args.app_db, &args.query) {
        (Some(path), None, _) => Source::File(path.clone()),
        (None, Some(url), Some(query)) => Source::AppDb {
            url: url.clone(),
            query: query.clone(),
        },
        _ => {
            return Err(crate::usage(
                "nothing to audit: name the app's records (a file, or - for stdin), or pass --app-db URL --query SQL",
            ));
        }
    };
    if args.table.is_some() && matches!(src, Source::AppDb { .. }) {
        return Err(crate::usage(
            "--table picks a table of a Convex export (.zip); with --app-db, name the table in --query",
        ));
    }
    let format = args.format.map(|f| match f {
        AuditFormat::Json => Format::Json,
        AuditFormat::Ndjson => Format::Ndjson,
        AuditFormat::Csv => Format::Csv,
    });
    Ok(source::Spec {
        source: src,
        format,
        table: args.table.clone(),
        fields: FieldMap::new(&cfg.user_key, &cfg.audit_fields, &args.fields)?,
    })
}

/// `--repair-via` options, checked before anything is read.
fn repair_settings(
    args: &AuditArgs,
    url: &str,
    printer: &Printer,
) -> anyhow::Result<forward::Settings> {
    let url =
        forward::check_url_of("--repair-via", url, args.allow_remote).map_err(crate::usage)?;
    let secret = super::endpoint_secret("--repair-via", args.secret.as_ref(), printer)?;
    Ok(forward::Settings {
        url,
        secret,
        concurrency: 1,
        timeout: Duration::from_secs_f64(args.timeout),
        headers: reqwest::header::HeaderMap::new(),
        delay: Duration::ZERO,
    })
}
