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
/// as (file name, roff text). A command's page is named as git names its own
/// (`stripe-sync-replay(1)`), while its synopsis is the command as typed
/// (`stripe-sync replay [OPTIONS] [INPUT]...`) and it lists the global
/// options too, since they work after the command name.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    // Building the root propagates its global options into every command and
    // names each one (`stripe-sync replay`, page `stripe-sync-replay`). The
    // `help` command gets no page, so the main page does not list one.
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let mut pages = vec![man_page(&root)];
    pages.extend(root.get_subcommands().map(man_page));
    pages
}

fn man_page(cmd: &clap::Command) -> (String, Vec<u8>) {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
    // clap_mangen's own synopsis lists every flag without its value
    // (`[--user-key]`); clap's usage line is the one `--help` prints, and the
    // OPTIONS sections give each flag with its value (`--user-key <KEY>`).
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_owned();
    // clap_mangen would fill the after-help text into one paragraph, running
    // the examples together; it is written below instead.
    let after_help = cmd.get_after_help().map(ToString::to_string);
    let mut page = Vec::new();
    clap_mangen::Man::new(
        cmd.clone()
            .override_usage(usage)
            .after_help(None::<&'static str>),
    )
    .source(concat!("stripe-sync ", env!("CARGO_PKG_VERSION")))
    .render(&mut page)
    .expect("rendering into memory cannot fail");
    let mut page = String::from_utf8_lossy(&page).into_owned();
    let (notes, sections) = after_help_roff(after_help.as_deref().unwrap_or_default());
    insert_before(&mut page, ".SH OPTIONS\n", &notes);
    insert_before(&mut page, ".SH VERSION\n", &sections);
    (format!("{name}.1"), page.into_bytes())
}

/// The after-help text as roff: prose paragraphs continue the description;
/// an `Examples:` paragraph becomes an EXAMPLES section, one example a line,
/// and an `Exit status:` one an EXIT STATUS section.
fn after_help_roff(text: &str) -> (String, String) {
    let mut notes = String::new();
    let mut sections = String::new();
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        if let Some(examples) = paragraph.strip_prefix("Examples:\n") {
            sections.push_str(".SH EXAMPLES\n.nf\n");
            for line in examples.lines() {
                sections.push_str(&roff_line(line.trim_start()));
            }
            sections.push_str(".fi\n");
        } else if let Some(status) = paragraph.strip_prefix("Exit status: ") {
            sections.push_str(".SH \"EXIT STATUS\"\n");
            sections.extend(status.lines().map(roff_line));
        } else {
            notes.push_str(".PP\n");
            notes.extend(paragraph.lines().map(roff_line));
        }
    }
    (notes, sections)
}

/// One line of text as a roff text line.
fn roff_line(line: &str) -> String {
    let escaped = line
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\*(Aq");
    // A line starting with `.` would be read as a request (`'` is escaped).
    let guard = if escaped.starts_with('.') { "\\&" } else { "" };
    format!("{guard}{escaped}\n")
}

fn insert_before(page: &mut String, marker: &str, text: &str) {
    match page.find(marker) {
        Some(at) => page.insert_str(at, text),
        None => page.push_str(text),
    }
}
