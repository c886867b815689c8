//! `stripe-sync replay [INPUT]...`: arguments -> plan -> replay engine -> render.

use crate::Status;
use crate::cli::{GlobalArgs, ReplayArgs};
use crate::event;
use crate::forward;
use crate::output::{self, Printer, fmt};
use crate::replay::{self, InputError, Plan, Progress};
use crate::runtime::Runtime;
use crate::store;
use crate::sync::{Mode, Syncer};

pub fn run(args: &ReplayArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Status> {
    if args.inputs.is_empty() {
        return Err(crate::usage(
            "no INPUT: name event files, directories or globs (or - for stdin), e.g. `stripe-sync replay fixtures/`",
        ));
    }
    let cfg = super::load_config(global, args.user_key.as_deref(), printer)?;
    // Everything that can be refused is checked before any input is read.
    let live = match args.live {
        true => Some(super::api_client(&args.api, &cfg, printer)?.0),
        false => None,
    };
    let rt = Runtime::new()?;
    let forwarder = match &args.forward_to {
        Some(url) => Some(forward::Forwarder::new(
            forward_settings(args, url, printer)?,
            rt.handle().clone(),
        )?),
        None => None,
    };
    let Some((inputs, input_errors)) = expanded(args, printer)? else {
        return Ok(Status::Failure);
    };
    let reported = input_errors.len();
    // A dry run works on a private copy of the store. Forwarding tests the
    // endpoint, which keeps its own state: the store is not even opened, so
    // nothing is labelled `duplicate` or resolved from what it holds.
    let forwarding = forwarder.is_some();
    let mut syncer = match (forwarding, args.dry_run) {
        (true, _) => Syncer::detached()?,
        (false, true) => Syncer::open(&super::store_location(global, &cfg), Mode::DryRun)?,
        (false, false) => Syncer::open(&super::store_location(global, &cfg), Mode::Write)?,
    };
    let plan = Plan {
        cfg: &cfg,
        feed: replay::Feed::Inputs(&inputs),
        input_errors,
        trace: printer.verbosity() >= 1,
        interruptible: true,
        dry_run_fetches: false,
        live: live.as_ref(),
        fetched: None,
        forwarder,
    };
    let progress = Progress {
        events: printer.counter("events"),
        customers: printer.bar(0, "customers"),
    };
    let started = std::time::Instant::now();
    let mut finished = replay::run(plan, &mut syncer, &rt, &progress)?;
    report_notes(printer, &finished.notes);
    report_run(printer, &finished);
    let db = super::store_location(global, &cfg);
    render(printer, &mut finished, &mut syncer, &db, started.elapsed())?;
    if let Some(w) = output::replay::ambiguity_warning(&finished.ambiguous) {
        printer.warn(&w);
    }
    syncer.close();
    if printer.wants_stderr_summary() {
        printer.info(&output::replay::summary_oneliner(
            &finished.summary,
            started.elapsed(),
        ));
    }

    for e in finished.errors.iter().skip(reported) {
        printer.error(&e.message);
    }
    let status = status_of(&finished, forwarding, args.strict);
    Ok(status)
}

/// The inputs named, expanded (globs, directories), and what could not be
/// (reported now, before any work); `None` when nothing is left to read.
fn expanded(
    args: &ReplayArgs,
    printer: &Printer,
) -> anyhow::Result<Option<(Vec<event::Input>, Vec<InputError>)>> {
    let (inputs, expand_errors) = event::expand(&args.inputs);
    let input_errors: Vec<InputError> = expand_errors
        .into_iter()
        .map(|(source, message)| InputError { source, message })
        .collect();
    for e in &input_errors {
        printer.error(&e.message);
    }
    if inputs.is_empty() && !input_errors.is_empty() {
        if printer.json {
            output::replay::render_input_errors(printer, &input_errors)?;
        }
        return Ok(None);
    }
    if inputs.contains(&event::Input::Stdin) && std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        return Err(crate::usage(
            "INPUT - reads events from stdin, which is a terminal: pipe them in, or name files",
        ));
    }
    Ok(Some((inputs, input_errors)))
}

/// Odd metadata in the events (padded, blank, not strings): a warning
/// each, the first few.
fn report_notes(printer: &Printer, notes: &replay::Notes) {
    for note in &notes.kept {
        printer.warn(note);
    }
    let more = notes.total - notes.kept.len() as u64;
    if more > 0 {
        printer.warn(&format!(
            "{} more about metadata values (whitespace around them, blank, not strings)",
            fmt::plural(more, "warning")
        ));
    }
}

/// With `-v`, how long each phase took and what each customer's sync
/// changed; every failed customer, always.
fn report_run(printer: &Printer, finished: &replay::Finished) {
    for (phase, took) in &finished.timings {
        printer.verbose(&format!("{phase}: {}", fmt::elapsed(*took)));
    }
    for (customer, outcome) in &finished.customers {
        let what = if outcome.changed {
            "changed"
        } else {
            "unchanged"
        };
        printer.verbose(&format!("customer {customer}: {what}"));
    }
    for f in &finished.failures {
        printer.error(&format!(
            "customer {}: sync failed: {}",
            f.customer_id, f.error
        ));
    }
}

/// The engine streams the decisions (writing the event log as they pass)
/// and the renderer prints them. When the event log fails after the
/// customers were committed, say what was kept, and still close the
/// document (one JSON document, always).
fn render(
    printer: &Printer,
    finished: &mut replay::Finished,
    syncer: &mut Syncer,
    db: &store::Location,
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    let mut render = output::replay::Render::begin(printer)?;
    let streamed = finished.stream(syncer, |line| render.line(line));
    let streamed = streamed.map_err(|e| {
        let kept = match (finished.summary.dry_run, finished.summary.customers_synced) {
            (true, _) | (false, 0) => String::new(),
            (false, n) => format!("{} synced and committed, but ", fmt::plural(n, "customer")),
        };
        let e = anyhow::Error::new(e).context(format!(
            "{kept}the store's event log could not be written: run the replay again \
             (what is committed stays; its events are processed again and logged)"
        ));
        finished.errors.push(InputError {
            source: db.to_string(),
            message: format!("{e:#}"),
        });
        e
    });
    render.end(finished, elapsed)?;
    streamed
}

/// Exit status: 2 for input errors, else (forwarding) the deliveries, else
/// 1 for rejected events, failed syncs or (`--strict`) unresolved ones.
fn status_of(finished: &replay::Finished, forwarding: bool, strict: bool) -> Status {
    let s = &finished.summary;
    if !finished.errors.is_empty() || s.invalid > 0 {
        Status::Failure
    } else if forwarding {
        // The endpoint is under test: deliveries decide; the routing
        // verdict stays in the output.
        Status::from_problems(s.forward_failures > 0)
    } else {
        Status::from_problems(s.rejected > 0 || s.sync_failures > 0 || (strict && s.unresolved > 0))
    }
}

/// `--forward-to` options, checked before any input is read.
fn forward_settings(
    args: &ReplayArgs,
    url: &str,
    printer: &Printer,
) -> anyhow::Result<forward::Settings> {
    let url = forward::check_url(url, args.allow_remote).map_err(crate::usage)?;
    // Headers before the secret, which may prompt.
    let mut headers = reqwest::header::HeaderMap::new();
    let mut overridden: Vec<&str> = Vec::new();
    for raw in &args.headers {
        let (name, value) = forward::parse_header(raw).map_err(crate::usage)?;
        if let Some(own) = forward::own_header(&name) {
            if !args.allow_header_override {
                return Err(crate::usage(format!(
                    "-H would replace the {own} that stripe-sync sets on every delivery; \
                     pass --allow-header-override to send yours \
                     (e.g. to test how the endpoint rejects a forged signature)"
                )));
            }
            if !overridden.contains(&own) {
                overridden.push(own);
            }
        }
        headers.append(name, value);
    }
    if !overridden.is_empty() {
        printer.warn(&format!(
            "--allow-header-override: every delivery carries the -H {} in place of stripe-sync's own",
            overridden.join(", ")
        ));
    }
    let secret = super::endpoint_secret("--forward-to", args.secret.as_ref(), printer)?;
    if args.concurrency == 0 {
        return Err(crate::usage("--concurrency must be at least 1"));
    }
    Ok(forward::Settings {
        url,
        secret,
        concurrency: args.concurrency,
        timeout: std::time::Duration::from_secs_f64(args.timeout),
        headers,
        delay: std::time::Duration::from_millis(args.delay),
    })
}
