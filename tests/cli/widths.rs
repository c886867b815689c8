//! At 40, 60, 80 and 120 columns no line any command draws on a terminal
//! wraps: tables fit or change shape, messages wrap at words.

use crate::harness::Test;

pub const WIDTHS: [u16; 4] = [40, 60, 80, 120];

#[test]
fn help_fits_every_width() {
    for cols in WIDTHS {
        let out = Test::new()
            .args(["--help"])
            .terminal(cols)
            .stdout_has("Usage: stripe-sync [OPTIONS] <COMMAND>")
            .run();
        out.screen.expect("a terminal").assert_fits();
    }
}

/// Ctrl-C typed on the terminal reaches the binary as SIGINT (the harness's
/// terminal is the binary's controlling terminal).
#[test]
fn ctrl_c_on_the_terminal_interrupts() {
    let dir = tempfile::tempdir().unwrap();
    let mut term = Test::in_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--secret", "whsec_test"])
        .spawn_terminal(80);
    term.wait_for("listening", std::time::Duration::from_secs(10));
    term.ctrl_c();
    let out = term.finish();
    assert_eq!(out.status, 130, "{}", out.stdout);
}
