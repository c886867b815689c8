//! Running the binary on a pseudo-terminal of a chosen width, as a user's
//! shell would (stdin, stdout and stderr all the terminal), and reading
//! back the screen through vt100: what a user sees, and which rows the
//! terminal had to wrap because a line was wider than it.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

use crate::harness::{Output, Screen};

/// Rows of the virtual screen: enough that no test's output scrolls.
const ROWS: u16 = 2000;

pub fn run(cmd: &mut Command, cols: u16, stdin: Option<&[u8]>) -> Output {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("pty path"))
        .expect("open pty")
        .into();
    tcsetwinsize(
        &slave,
        Winsize {
            ws_row: 40,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .expect("window size");
    cmd.env("TERM", "xterm-256color")
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().expect("stripe-sync starts");
    // The parent's copies of the terminal's end go with `cmd`'s Stdio: drop
    // them, so reading the master ends (EIO) when the child exits.
    *cmd = Command::new("true");
    let mut master_w = std::fs::File::from(master.try_clone().expect("dup"));
    let mut master_r = std::fs::File::from(master);
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match master_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        bytes
    });
    if let Some(input) = stdin {
        let _ = master_w.write_all(input);
        // End of input for a line-buffered terminal: ^D at a line start.
        let _ = master_w.write_all(b"\x04");
    }
    let status = child.wait().expect("stripe-sync ends");
    drop(master_w);
    let bytes = reader.join().expect("reader");
    let screen = screen_of(&bytes, cols);
    Output {
        status: status.code().unwrap_or(-1),
        stdout: screen.text(),
        stderr: String::new(),
        screen: Some(screen),
        dir: None,
    }
}

/// The screen `bytes` draw on a terminal `cols` wide.
pub fn screen_of(bytes: &[u8], cols: u16) -> Screen {
    let nz = |n: u16| std::num::NonZeroU16::new(n).expect("non-zero");
    let mut parser = vt100::Parser::new(nz(ROWS), nz(cols), 0);
    parser.process(bytes);
    let screen = parser.screen();
    let mut rows: Vec<String> = screen
        .rows(0, cols)
        .map(|r| r.trim_end().to_owned())
        .collect();
    let wrapped = (0..ROWS)
        .filter(|&r| screen.row_wrapped(r))
        .map(usize::from)
        .collect();
    while rows.last().is_some_and(String::is_empty) {
        rows.pop();
    }
    Screen {
        cols,
        rows,
        wrapped,
    }
}
