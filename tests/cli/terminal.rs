//! Running the binary on a pseudo-terminal of a chosen width, as a user's
//! shell would: `setsid --ctty` makes the terminal the binary's controlling
//! terminal (so `^C` typed on it is a real Ctrl-C and a prompt can read it),
//! with stdin, stdout and stderr all on it. The screen is read back through
//! vt100: what a user sees, and which rows the terminal had to wrap because
//! a line was wider than it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

use crate::harness::{Output, Screen};

/// Rows of the virtual screen: enough that no test's output scrolls.
const ROWS: u16 = 2000;

/// The binary of `cmd`, started on a new terminal `cols` wide.
pub struct Terminal {
    child: Child,
    master: std::fs::File,
    bytes: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    cols: u16,
    /// The run's own temp dir, removed with the terminal.
    dir: Option<tempfile::TempDir>,
}

impl Terminal {
    pub(crate) fn keep(&mut self, dir: tempfile::TempDir) {
        self.dir = Some(dir);
    }

    pub fn start(cmd: &Command, cols: u16) -> Terminal {
        let (master, slave) = open_pty(cols);
        // `setsid --ctty BIN ARGS`: BIN in a session of its own, the terminal
        // its controlling one (setsid execs BIN: the child's pid is BIN's).
        let mut setsid = Command::new("setsid");
        setsid.arg("--ctty");
        let mut run = crate::harness::prefixed(setsid, cmd);
        run.env("TERM", "xterm-256color")
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        let child = run.spawn().expect("setsid (util-linux) starts stripe-sync");
        // The parent's copies of the terminal's end go with `run`: reading
        // the master then ends (EIO) when the binary exits.
        drop(run);
        let mut master_r = master.try_clone().expect("dup");
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = bytes.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match master_r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().expect("lock").extend_from_slice(&buf[..n]),
                }
            }
        });
        Terminal {
            child,
            master,
            bytes,
            reader: Some(reader),
            cols,
            dir: None,
        }
    }

    /// The binary's pid, for a test that signals it other than by a key.
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types `text` on the terminal's keyboard.
    pub fn type_text(&mut self, text: &str) -> &mut Terminal {
        self.master.write_all(text.as_bytes()).expect("type");
        self
    }

    /// Ctrl-C, as typed: the terminal sends SIGINT to the binary.
    pub fn ctrl_c(&mut self) -> &mut Terminal {
        self.type_text("\x03")
    }

    /// The screen so far.
    pub fn screen(&self) -> Screen {
        screen_of(&self.bytes.lock().expect("lock"), self.cols)
    }

    /// Waits until the screen shows `text` (panics after `within`, showing
    /// the screen, or when the binary exits first).
    pub fn wait_for(&mut self, text: &str, within: Duration) -> &mut Terminal {
        let start = Instant::now();
        loop {
            let screen = self.screen().text();
            if screen.contains(text) {
                return self;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || start.elapsed() > within {
                panic!("waited for {text:?} on the screen ({exited:?}):\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the binary to exit; the screen it left.
    pub fn finish(mut self) -> Output {
        let status = self.child.wait().expect("stripe-sync ends");
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let screen = self.screen();
        Output {
            status: status.code().unwrap_or(-1),
            stdout: screen.text(),
            stderr: String::new(),
            screen: Some(screen),
            dir: self.dir.take(),
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A new pseudo-terminal `cols` wide: its master end (what the terminal
/// shows is read there, what is typed is written there) and the end a
/// program writes to.
pub fn open_pty(cols: u16) -> (std::fs::File, OwnedFd) {
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
    let size = Winsize {
        ws_row: 40,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    tcsetwinsize(&slave, size).expect("window size");
    (std::fs::File::from(master), slave)
}

/// Runs `cmd` to the end on a terminal `cols` wide, `stdin` typed first.
pub fn run(cmd: &mut Command, cols: u16, stdin: Option<&[u8]>) -> Output {
    let mut term = Terminal::start(cmd, cols);
    if let Some(input) = stdin {
        term.type_text(&String::from_utf8_lossy(input));
        // End of input on a terminal: ^D at a line start.
        term.type_text("\x04");
    }
    term.finish()
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
