//! `stripe-sync audit`: the app's records -> the rules against the store ->
//! findings; then, when asked, repairs through the app's webhook and a
//! recheck of the source.

use std::time::Duration;

use crate::Status;
use crate::audit::compare::{Kind, Rules};
use crate::audit::fields::FieldMap;
use crate::audit::repair::{self, Repair};
use crate::audit::source::{self, Format, Source};
use crate::audit::{self as engine, AppSide, Report};
use crate::cli::{AuditArgs, AuditFormat, GlobalArgs};
use crate::forward;
use crate::output::audit::{self as render, AuditJson, RecheckJson};
use crate::output::table::wrap_lines;
use crate::output::{Printer, fmt};
use crate::runtime::Runtime;
use crate::store::{self, Store};

/// A store older than this gets a warning: Stripe moved on since.
const STALE_AFTER_SECS: i64 = 24 * 60 * 60;

pub fn run(args: &AuditArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Status> {
    if args.csv && printer.json {
        return Err(crate::usage(
            "--csv and --json exclude each other: pick one output format",
        ));
    }
    let cfg = super::load_config(global, args.user_key.as_deref(), printer)?;
    let spec = spec(args, &cfg)?;
    let rules_access = access(args)?;
    let fail_on = fail_on(args)?;
    let forward = match (&args.repair_via, args.dry_run) {
        (Some(url), false) => Some(repair_settings(args, url, printer)?),
        (Some(url), true) => {
            forward::check_url_of("--repair-via", url, args.allow_remote).map_err(crate::usage)?;
            None
        }
        (None, _) => None,
    };
    let db = store::db_path(global.db.as_deref());
    let rt = Runtime::new()?;

    let app = AppSide::read(&spec)?;
    warn_if_empty(&app, printer);
    if args.live {
        resync_users(args, global, &cfg, &app.users(), &rt, printer)?;
    }
    let Some(store) = Store::open_read_only(&db)? else {
        return Err(anyhow::anyhow!(
            "no store at {}: build one with `stripe-sync resync --all` (or pass --live, or --db)",
            db.display()
        ));
    };
    if !args.live {
        warn_if_stale(&store, printer)?;
    }
    let rules = Rules {
        access: rules_access,
        fields: app.read.fields.clone(),
    };
    let report = engine::hold(&store, app, &rules)?;
    tell_problems(&report, printer);

    let mut repairs: Option<Vec<Repair>> = None;
    if args.repair_via.is_some() {
        let mut planned = repair::plan(
            &store,
            &report,
            &cfg.user_key,
            &cfg.api_version,
            super::unix_now(),
        )?;
        if let Some(settings) = forward {
            repair::send(
                &mut planned,
                forward::Forwarder::new(settings, rt.handle().clone())?,
            );
        }
        repairs = Some(planned);
    }
    // A person sees the findings and the repairs before the wait.
    let human = !printer.json && !args.csv;
    if human {
        printer.out(&first_part(&report, repairs.as_deref(), args, printer))?;
    }
    let recheck = match args.recheck {
        Some(secs) => {
            if human {
                printer.info(&format!("rechecking in {secs} s (Ctrl-C stops)"));
            }
            // The timer is made inside the runtime (a `sleep()` made out
            // here panics: no reactor).
            let waited =
                rt.block_on(async move { tokio::time::sleep(Duration::from_secs(secs)).await });
            if waited.is_err() {
                if printer.json {
                    show_json(&report, repairs.as_deref(), None, printer)?;
                }
                printer.error(
                    "interrupted before the recheck: run the audit again to see what remains",
                );
                return Ok(Status::Interrupted);
            }
            let again = AppSide::read(&spec)?;
            warn_if_empty(&again, printer);
            let rules = Rules {
                fields: again.read.fields.clone(),
                ..rules
            };
            let report = engine::hold(&store, again, &rules)?;
            tell_problems(&report, printer);
            Some((secs, report))
        }
        None => None,
    };

    let last = recheck.as_ref().map_or(&report, |(_, r)| r);
    if printer.json {
        show_json(&report, repairs.as_deref(), recheck.as_ref(), printer)?;
    } else if args.csv {
        render::csv(&last.findings, printer.stdout_writer())?;
    } else if let Some((secs, again)) = &recheck {
        printer.out(&recheck_part(*secs, again, printer))?;
    }
    if human && printer.wants_stderr_summary() {
        printer.info(&render::summary_line(&last.summary));
    }
    if !report.problems.is_empty() || !last.problems.is_empty() {
        return Ok(Status::Failure);
    }
    Ok(Status::from_problems(last.fails(&fail_on)))
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

/// `--access`: the statuses that grant access, trimmed, none blank.
fn access(args: &AuditArgs) -> anyhow::Result<Vec<String>> {
    let access: Vec<String> = args
        .access
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if access.is_empty() {
        return Err(crate::usage(
            "--access is empty: name the statuses that grant access, e.g. --access active,trialing",
        ));
    }
    Ok(access)
}

/// `--fail-on`: which findings count for the exit status (default: all).
fn fail_on(args: &AuditArgs) -> anyhow::Result<Vec<Kind>> {
    let named: Vec<&str> = args
        .fail_on
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if named.is_empty() {
        return Ok(Kind::ALL.to_vec());
    }
    let mut kinds = named
        .into_iter()
        .map(|n| {
            Kind::from_name(n).ok_or_else(|| {
                crate::usage(format!(
                    "--fail-on: `{}` is not a finding; findings are {}",
                    crate::output::escape_text(n),
                    Kind::ALL.map(Kind::name).join(", ")
                ))
            })
        })
        .collect::<anyhow::Result<Vec<Kind>>>()?;
    // No record at all is the extreme of paid without access.
    if kinds.contains(&Kind::PaidNoAccess) {
        kinds.push(Kind::MissingInApp);
    }
    Ok(kinds)
}

/// `--repair-via` options, checked before anything is read.
fn repair_settings(
    args: &AuditArgs,
    url: &str,
    printer: &Printer,
) -> anyhow::Result<forward::Settings> {
    let url =
        forward::check_url_of("--repair-via", url, args.allow_remote).map_err(crate::usage)?;
    let secret = match &args.secret {
        Some(s) if !s.is_blank() => s.clone(),
        Some(_) => return Err(crate::usage("the webhook secret for --repair-via is blank")),
        None => printer
            .ask_secret("Endpoint signing secret (whsec_...)")
            .ok_or_else(|| {
                crate::usage(
                    "--repair-via needs the endpoint's signing secret: pass --secret whsec_... or set STRIPE_WEBHOOK_SECRET",
                )
            })?,
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(crate::usage(
            "--timeout must be a positive number of seconds",
        ));
    }
    Ok(forward::Settings {
        url,
        secret,
        concurrency: 1,
        timeout: Duration::from_secs_f64(args.timeout),
        headers: reqwest::header::HeaderMap::new(),
        delay: Duration::ZERO,
    })
}

/// `--live`: the audited users resynced from the API, as `resync --user`.
fn resync_users(
    args: &AuditArgs,
    global: &GlobalArgs,
    cfg: &crate::config::Config,
    users: &[String],
    rt: &Runtime,
    printer: &Printer,
) -> anyhow::Result<()> {
    use crate::sync::targeted::Lookup;
    use crate::sync::{ApiSource, Job, Mode, Syncer};
    let (client, _) = super::api_client(&args.api, cfg, printer)?;
    let mut syncer = Syncer::open(&store::db_path(global.db.as_deref()), Mode::Write)?;
    let now = super::unix_now();
    let targets = Lookup {
        rt,
        client: &client,
        store: syncer.store(),
        user_key: &cfg.user_key,
        now,
    }
    .targets(&[], users)?;
    let mut source = ApiSource::new(rt, &client, &cfg.user_key, now);
    source.prefetched = targets.prefetched;
    let jobs = targets
        .customers
        .into_iter()
        .map(|customer_id| Job {
            customer_id,
            user_hint: None,
        })
        .collect();
    let bar = printer.bar(0, "customers");
    let synced = syncer.sync(&mut source, jobs, Some(rt), &bar);
    bar.finish_and_clear();
    let synced = synced?;
    let failed: Vec<String> = synced
        .iter()
        .filter_map(|s| {
            let r = crate::sync::report::CustomerReport::from_synced(s);
            r.error
                .map(|e| format!("customer {}: {e}", r.customer_id.unwrap_or_default()))
        })
        .collect();
    for f in &failed {
        printer.error(f);
    }
    syncer.close();
    if !failed.is_empty() {
        anyhow::bail!(
            "--live: {} could not be resynced; the audit would hold the app to an old truth (run again, or drop --live)",
            fmt::plural(failed.len() as u64, "customer")
        );
    }
    printer.info(&format!(
        "--live: resynced {} of {} from the API",
        fmt::plural(synced.len() as u64, "customer"),
        fmt::plural(users.len() as u64, "user")
    ));
    Ok(())
}

/// An empty source is more often the wrong file, table or query than an
/// app without users: say so before every billed user shows as missing.
fn warn_if_empty(app: &AppSide, printer: &Printer) {
    if app.read.records == 0 {
        printer.warn(&format!(
            "{} holds no records: every user Stripe bills is reported as missing_in_app (wrong file, --table or --query?)",
            app.read.label
        ));
    }
}

/// Warn when the store may be behind Stripe.
fn warn_if_stale(store: &Store, printer: &Printer) -> anyhow::Result<()> {
    let now = super::unix_now();
    match store.caught_up_at()? {
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
    Ok(())
}

/// Records that could not be audited, on stderr (the first few).
fn tell_problems(report: &Report, printer: &Printer) {
    for p in report.problems.iter().take(render::PROBLEMS_NAMED) {
        printer.error(&p.to_string());
    }
    let more = report.problems.len().saturating_sub(render::PROBLEMS_NAMED);
    if more > 0 {
        printer.error(&format!(
            "... and {} more not audited (--json lists every one)",
            fmt::noun(more as u64, "record", "records")
        ));
    }
}

fn show_json(
    report: &Report,
    repairs: Option<&[Repair]>,
    recheck: Option<&(u64, Report)>,
    printer: &Printer,
) -> anyhow::Result<()> {
    let mut doc = AuditJson::new(report);
    doc.repairs = repairs;
    doc.recheck = recheck.map(|(secs, r)| RecheckJson {
        after_seconds: *secs,
        findings: &r.findings,
        summary: &r.summary,
    });
    printer.out_json(&doc)?;
    Ok(())
}

/// The findings, the summary, what was compared, and the repairs.
fn first_part(
    report: &Report,
    repairs: Option<&[Repair]>,
    args: &AuditArgs,
    printer: &Printer,
) -> String {
    let width = printer.width();
    let mut out = String::new();
    if !report.findings.is_empty() {
        out.push_str(&render::table(&report.findings, printer));
        out.push('\n');
    }
    out.push_str(wrap_lines(&render::summary_line(&report.summary), width).trim_end());
    out.push('\n');
    out.push_str(wrap_lines(&render::compared_line(&report.summary), width).trim_end());
    out.push('\n');
    if let Some(repairs) = repairs {
        out.push('\n');
        out.push_str(render::repairs(repairs, args.dry_run, printer).trim_end());
        out.push('\n');
    }
    out
}

/// What the recheck found.
fn recheck_part(secs: u64, again: &Report, printer: &Printer) -> String {
    let mut out = format!("\nrecheck after {secs} s:\n");
    if !again.findings.is_empty() {
        out.push_str(&render::table(&again.findings, printer));
        out.push('\n');
    }
    out.push_str(wrap_lines(&render::summary_line(&again.summary), printer.width()).trim_end());
    out.push('\n');
    out
}
