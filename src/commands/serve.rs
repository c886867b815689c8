//! `stripe-sync serve`: arguments -> settings -> the server -> its summary.

use std::net::SocketAddr;
use std::time::Duration;

use crate::Status;
use crate::cli::{GlobalArgs, ServeArgs};
use crate::output::{Printer, fmt};
use crate::runtime::Runtime;
use crate::serve::{self, Settings, Stop, writer::Writer};
use crate::store;
use crate::sync::{Mode, Syncer};

pub fn run(args: &ServeArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Status> {
    let listen: SocketAddr = args.listen.parse().map_err(|_| {
        crate::usage(format!(
            "--listen {:?}: expected an address and port, e.g. 127.0.0.1:4242",
            args.listen
        ))
    })?;
    if !args.path.starts_with('/') {
        return Err(crate::usage(format!(
            "--path {:?} must start with /",
            args.path
        )));
    }
    if let Some(i) = args.secrets.iter().position(|s| s.is_blank()) {
        return Err(crate::usage(format!(
            "webhook secret #{} is blank (check --secret and STRIPE_WEBHOOK_SECRET for empty entries)",
            i + 1
        )));
    }
    let cfg = super::load_config(global, args.user_key.as_deref(), printer)?;
    let live = match args.live {
        true => Some(super::api_client(&args.api, &cfg, printer)?.0),
        false => None,
    };
    let syncer = Syncer::open(&store::db_path(global.db.as_deref()), Mode::Write)?;
    let sink = printer.request_sink();
    if args.secrets.is_empty() {
        sink.warn(
            "NO WEBHOOK SECRET: every POST is answered 500 `Webhook secret not configured.` \
             (as the app does); pass --secret whsec_... or set STRIPE_WEBHOOK_SECRET",
        );
    }
    if !listen.ip().is_loopback() {
        sink.warn(&format!(
            "listening on {listen}, beyond this machine, without TLS: put it behind a TLS proxy"
        ));
    }
    let rt = Runtime::new()?;
    let settings = Settings {
        listen,
        path: args.path.clone(),
        secrets: args.secrets.clone(),
        tolerance: args.tolerance,
        record: args.record.clone(),
        max_body: args.max_body,
        read_timeout: Duration::from_secs(args.read_timeout.max(1)),
    };
    let writer = Writer { syncer, cfg, live };
    let path = args.path.clone();
    let (stop, tally) = serve::run(settings, writer, &rt, sink, |addr| {
        printer.info(&format!("listening on http://{addr}{path}"));
    })?;

    let statuses: Vec<String> = tally
        .by_status
        .iter()
        .map(|(s, n)| format!("{} × {s}", fmt::count(*n)))
        .collect();
    let routes: Vec<String> = tally
        .by_route
        .iter()
        .map(|(r, n)| format!("{} {r}", fmt::count(*n)))
        .collect();
    printer.info(&format!(
        "served {}{}{}",
        fmt::plural(tally.requests, "request"),
        if statuses.is_empty() {
            String::new()
        } else {
            format!(": {}", statuses.join(", "))
        },
        if routes.is_empty() {
            String::new()
        } else {
            format!("; routes: {}", routes.join(", "))
        },
    ));
    Ok(match stop {
        Stop::Terminated => Status::Ok,
        Stop::Interrupted => Status::Interrupted,
    })
}
