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
