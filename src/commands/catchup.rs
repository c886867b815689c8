//! `stripe-sync resync --events [--since WHEN] [--follow]`: arguments ->
//! the catch-up engine (`sync::events`) -> one report per poll.

use std::time::{Duration, Instant};

use crate::Status;
use crate::cli::{GlobalArgs, ResyncArgs};
use crate::output::Printer;
use crate::output::catchup::{render, say};
use crate::runtime::Runtime;
use crate::sync::events::{
    CatchUp, Follower, Pass, Polled, TEST_FOLLOW_UNIT_ENV, Terminate, Waiting, follow_unit,
    on_sigterm, parse_since,
};
use crate::sync::{Mode, SyncError, Syncer};

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
    let mut syncer = Syncer::open(&super::store_location(global, &cfg), mode)?;
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
    let term = on_sigterm(&rt)?;
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
