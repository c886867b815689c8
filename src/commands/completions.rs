//! `stripe-sync completions SHELL`

use crate::Status;
use crate::cli::{Cli, CompletionsArgs};
use crate::output::Printer;

/// The completion script for `shell`, as a string.
pub fn script(shell: clap_complete::Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "stripe-sync", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn run(args: &CompletionsArgs, printer: &Printer) -> anyhow::Result<Status> {
    printer.out(&script(args.shell))?;
    Ok(Status::Ok)
}
