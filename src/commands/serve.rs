//! `stripe-sync serve`: arguments -> settings -> the server -> its summary.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::Status;
use crate::cli::{GlobalArgs, ServeArgs};
use crate::output::{Printer, RequestSink, fmt};
use crate::runtime::Runtime;
use crate::serve::{self, Settings, Stop, writer::Writer};
use crate::store;
use crate::sync::{Mode, Syncer};

pub fn run(args: &ServeArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Status> {
    let listen = listen_addr(&args.listen)?;
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
    // What could only fail later, request after request, fails now.
    if let Some(dir) = &args.record {
        check_record_dir(dir)?;
    }
    let db = super::store_location(global, &cfg);
    let syncer = Syncer::open(&db, Mode::Write)?;
    syncer.store().check_writable()?;
    syncer.store().sync_every_commit()?;
    let answer_bound =
        serve::answer_bound(std::env::var(serve::TEST_ANSWER_BOUND_ENV).ok().as_deref());
    syncer
        .store()
        .serve_lock_wait(serve::lock_wait(answer_bound))?;
    // With `--live`, requests read the store to know what to fetch.
    let fetching = match &live {
        Some(client) => {
            let reader = store::Store::open_read_only(&db)?
                .ok_or_else(|| anyhow::anyhow!("store {}: disappeared as it was opened", db))?;
            Some(serve::Live::new(client.clone(), cfg.clone(), reader))
        }
        None => None,
    };
    let sink = printer.request_sink();
    let halt = serve::Halt::new();
    let lost = stop_when_lost(&syncer, sink, halt.clone());
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
    let rt = Arc::new(Runtime::new()?);
    // Each connection is a file descriptor: as many as the system allows.
    let open_files = serve::raise_open_files_limit();
    let settings = Settings {
        listen,
        path: args.path.clone(),
        verifier: crate::signature::Verifier::new(&args.secrets, args.tolerance),
        record: args.record.clone(),
        max_body: args.max_body,
        read_timeout: Duration::from_secs(args.read_timeout.max(1)),
        max_connections: args.max_connections.map_or_else(
            || serve::default_max_connections(open_files),
            |n| n as usize,
        ),
        answer_bound,
        live: fetching,
    };
    let writer = Writer {
        syncer,
        cfg,
        live,
        sink,
    };
    let path = args.path.clone();
    let (stop, tally) = serve::run(settings, writer, &rt, sink, &halt, |addr| {
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
    if let Some(why) = lost.get() {
        return Err(anyhow::anyhow!(
            "{why}: serve stopped (every request since was answered 500, so Stripe retries it); \
             start it again with --db naming the store to use"
        ));
    }
    Ok(match stop {
        Stop::Terminated => Status::Ok,
        Stop::Interrupted => Status::Interrupted,
    })
}

/// `--record DIR` must be a folder this process can write in, or every
/// valid event would be answered 500: made when missing, then tried.
fn check_record_dir(dir: &Path) -> anyhow::Result<()> {
    let fail = |why: String| anyhow::anyhow!("--record {}: {why}", dir.display());
    if dir.exists() && !dir.is_dir() {
        return Err(fail(
            "is a file, not a directory (--record names the folder recordings go to)".into(),
        ));
    }
    #[cfg(unix)]
    let made = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create it: {e}")))?;
    tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        fail(format!(
            "cannot write in it: {} (check its permissions and owner)",
            std::io::Error::from(e.kind())
        ))
    })?;
    // A folder made now is on disk before any recording in it is acknowledged.
    #[cfg(unix)]
    if made && let Some(parent) = dir.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail(format!("cannot sync {}: {e}", parent.display())))?;
    }
    Ok(())
}

/// When the store's file is deleted or replaced under the server (see
/// `Store::check_identity`), say so once and stop the server (`halt`) the
/// way SIGTERM does: requests in flight are answered (500: nothing more is
/// acknowledged), the writer ends, and `run` returns the reason (status 2).
fn stop_when_lost(syncer: &Syncer, sink: RequestSink, halt: serve::Halt) -> Arc<OnceLock<String>> {
    let lost = Arc::new(OnceLock::new());
    let seen = Arc::clone(&lost);
    syncer.store().on_identity_lost(move |why| {
        let _ = seen.set(why.to_owned());
        sink.warn(&format!(
            "{why}: every request is answered 500 from now on (Stripe retries it); stopping"
        ));
        halt.now();
    });
    lost
}

/// `--listen`: an address and port (`127.0.0.1:4242`, `[::1]:4242`), or
/// `localhost:PORT` (the loopback address, as `stripe listen` and the
/// apps' dev servers write it). Other host names are refused: which of a
/// name's addresses to listen on is not this tool's guess to make.
fn listen_addr(listen: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = listen.parse() {
        return Ok(addr);
    }
    if let Some(port) = listen.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let hint = match listen.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() && !host.is_empty() => format!(
            ": {host} is a host name; give an address (127.0.0.1, 0.0.0.0, [::1]) or localhost"
        ),
        _ => String::new(),
    };
    Err(crate::usage(format!(
        "--listen {listen:?}: expected an address and port, e.g. 127.0.0.1:4242 or localhost:4242{hint}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_addresses_and_localhost_and_names_a_host_name() {
        assert_eq!(
            listen_addr("127.0.0.1:4242").unwrap().to_string(),
            "127.0.0.1:4242"
        );
        assert_eq!(listen_addr("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert_eq!(
            listen_addr("localhost:4242").unwrap().to_string(),
            "127.0.0.1:4242"
        );
        let e = listen_addr("example.com:4242").unwrap_err().to_string();
        assert!(e.contains("example.com is a host name"), "{e}");
        let e = listen_addr("4242").unwrap_err().to_string();
        assert!(e.contains("expected an address and port"), "{e}");
        assert!(listen_addr("localhost:99999").is_err());
    }
}
