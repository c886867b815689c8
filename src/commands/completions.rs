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

/// The script on stdout; with `--json`, one document
/// `{"shell": "zsh", "script": "..."}` instead.
pub fn run(args: &CompletionsArgs, printer: &Printer) -> anyhow::Result<Status> {
    let script = script(args.shell);
    if printer.json {
        printer.out_json(&serde_json::json!({
            "shell": args.shell.to_string(),
            "script": script,
        }))?;
    } else {
        printer.out(&script)?;
    }
    Ok(Status::Ok)
}

/// Man pages: `stripe-sync.1` and one `stripe-sync-<command>.1` per command,
/// as (file name, roff text).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let cmd = Cli::command();
    let mut pages = Vec::new();
    let mut render = |c: clap::Command, name: String| {
        let mut buf = Vec::new();
        if clap_mangen::Man::new(c).render(&mut buf).is_ok() {
            pages.push((format!("{name}.1"), buf));
        }
    };
    render(cmd.clone(), "stripe-sync".into());
    for sub in cmd.get_subcommands() {
        let name = format!("stripe-sync-{}", sub.get_name());
        render(sub.clone().name(name.clone()), name);
    }
    pages
}
