//! stripe-sync: verify, replay and resync Stripe webhooks and subscriptions.
//!
//! The binary is a thin wrapper around [`main_entry`]; every command is a
//! short function in [`commands`] that turns arguments into a plan, hands it
//! to an engine (`replay`, `sync`) and renders the result (`output`). The
//! pure pieces (`signature`, `routing`) never touch the outside world.

pub(crate) mod audit;
pub mod cli;
pub mod commands;
pub(crate) mod config;
pub mod event;
pub(crate) mod event_types;
pub(crate) mod forward;
pub mod objects;
pub(crate) mod output;
pub(crate) mod parallel;
pub(crate) mod pg;
pub(crate) mod replay;
pub(crate) mod resolve;
pub(crate) mod routing;
pub(crate) mod runtime;
pub mod secret;
pub(crate) mod serve;
pub mod signature;
pub(crate) mod spill;
pub(crate) mod store;
pub(crate) mod stripe;
pub(crate) mod sync;
/// The throwaway PostgreSQL server of the tests (`tests/support/pg.rs`),
/// one per test process, for the unit tests that need one.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../tests/support/pg.rs"]
pub(crate) mod test_pg;
pub(crate) mod truth;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::output::Printer;

/// The exit statuses of SPEC.md, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Done, nothing wrong found.
    Ok = 0,
    /// Done, and something checked is wrong.
    Problems = 1,
    /// Could not do the job.
    Failure = 2,
    /// Interrupted by Ctrl-C; the store is consistent.
    Interrupted = 130,
}

impl Status {
    pub fn from_problems(any: bool) -> Status {
        if any { Status::Problems } else { Status::Ok }
    }
}

/// Errors that decide their own exit status; anything else is status 2.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    /// A usage error: the message says what to pass instead.
    #[error("{0}")]
    Usage(String),
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    Fatal::Usage(msg.into()).into()
}

/// Parse arguments, run the command, return the exit status.
pub fn main_entry() -> ExitCode {
    let cli = match Cli::try_parse_args() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let printer = Printer::new(&cli.global);
    let status = match run(cli, &printer) {
        Ok(status) => status,
        Err(err) => report_error(&err, &printer),
    };
    ExitCode::from(status as u8)
}

/// Dispatch one parsed command line.
pub fn run(cli: Cli, printer: &Printer) -> anyhow::Result<Status> {
    match cli.command {
        Command::Verify(args) => commands::verify::run(&args, printer),
        Command::Sign(args) => commands::sign::run(&args, printer),
        Command::Replay(args) => commands::replay::run(&args, &cli.global, printer),
        Command::Resync(args) => commands::resync::run(&args, &cli.global, printer),
        Command::Serve(args) => commands::serve::run(&args, &cli.global, printer),
        Command::Inspect(args) => commands::inspect::run(&args, &cli.global, printer),
        Command::Audit(args) => commands::audit::run(&args, &cli.global, printer),
        Command::Completions(args) => commands::completions::run(&args, printer),
    }
}

/// Classify an error into an exit status, printing it unless it is a closed
/// stdout pipe (which ends the program quietly with status 0).
pub fn report_error(err: &anyhow::Error, printer: &Printer) -> Status {
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return Status::Ok;
        }
        let interrupted = matches!(cause.downcast_ref::<Fatal>(), Some(Fatal::Interrupted))
            || matches!(
                cause.downcast_ref::<sync::SyncError>(),
                Some(sync::SyncError::Interrupted(_))
            );
        if interrupted {
            printer.error(
                "interrupted: the store is consistent; run the same command again to continue",
            );
            return Status::Interrupted;
        }
    }
    let msg = err
        .chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    printer.error(&msg);
    Status::Failure
}
