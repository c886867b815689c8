//! A throwaway PostgreSQL server for tests: one per test process, started on
//! first use from the installed binaries (Debian's postgresql-15, or any
//! `initdb` + `pg_ctl` + `postgres`), stopped and deleted when the process ends.
//!
//! Used from `tests/*` (`support::pg`) and, through `#[path]`, from the
//! library's unit tests (`src/audit/appdb.rs`). Depends only on std,
//! tokio, tokio-postgres, tempfile, fastrand and rustix.
//!
//! ```ignore
//! let Some(pg) = support::pg::server() else { return }; // SKIPPED line printed
//! let db = pg.create_database();                        // fresh, owned by the test role
//! pg.execute(&db, "CREATE TABLE users (id int); INSERT INTO users VALUES (1)");
//! let url = pg.url(&db); // postgres://stripe_sync_test:<password>@127.0.0.1:<port>/<db>
//! assert!(!stderr.contains(pg.password()));
//! ```
//!
//! The server listens on 127.0.0.1 (a free port) with scram-sha-256 passwords
//! for TCP, and on a unix socket in its temp dir with trust (used here to set
//! up roles and databases). It runs with fsync off: it holds test data only.
//!
//! Without the binaries, `server()` prints a `SKIPPED:` line and returns
//! None, unless `STRIPE_SYNC_REQUIRE_PG=1` (as in CI): then it panics.
//! `STRIPE_SYNC_PG_BINDIR` names the binaries' directory when it is not found.
//!
//! As root (initdb refuses root) the binaries run as the `postgres` user,
//! through runuser (or su).

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The role the tests connect as, over TCP, with `PgServer::password()`.
pub const TEST_ROLE: &str = "stripe_sync_test";
const SUPERUSER: &str = "postgres";
const NOT_FOUND: &str = "PostgreSQL binaries not found (initdb, pg_ctl); install \
                       postgresql-15 (apt-get install postgresql-15) or set \
                       STRIPE_SYNC_PG_BINDIR to the directory that holds them";

pub struct PgServer {
    port: u16,
    password: String,
    /// The temp dir: data, log and the unix socket.
    dir: PathBuf,
    next_db: AtomicU32,
    /// Its other end is the watchdog's stdin: when this process ends, for
    /// any reason, the kernel closes it and the watchdog stops the server.
    _watchdog: ChildStdin,
}

static SERVER: OnceLock<Result<Option<PgServer>, String>> = OnceLock::new();

/// The test process's server, started on first use; None when PostgreSQL is
/// not installed (and not required).
pub fn server() -> Option<&'static PgServer> {
    match SERVER.get_or_init(start) {
        Ok(server) => server.as_ref(),
        Err(why) => panic!("{why}"),
    }
}

impl PgServer {
    /// `postgres://stripe_sync_test:<password>@127.0.0.1:<port>/<db>`
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{TEST_ROLE}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// A fresh database owned by the test role; its name.
    pub fn create_database(&self) -> String {
        let name = format!("test_{}", self.next_db.fetch_add(1, Ordering::Relaxed) + 1);
        self.run_as(
            SUPERUSER,
            "postgres",
            &format!("CREATE DATABASE {name} OWNER {TEST_ROLE}"),
        );
        name
    }

    /// The test role's password: no output of the tool may contain it.
    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Run `sql` (one or more statements) in `db` as the test role; panics on error.
    pub fn execute(&self, db: &str, sql: &str) {
        self.run_as(TEST_ROLE, db, sql);
    }

    /// The first column of the first row of `sql` in `db`, as text ("" for NULL).
    pub fn query_one(&self, db: &str, sql: &str) -> String {
        let config = self.socket_config(TEST_ROLE, db);
        let sql = sql.to_owned();
        on_own_runtime(async move {
            let client = connect(config).await;
            let messages = client.simple_query(&sql).await;
            let messages = messages.unwrap_or_else(|e| panic!("{sql}: {}", message(&e)));
            messages
                .into_iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => {
                        Some(row.get(0).unwrap_or_default().to_owned())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{sql}: no row"))
        })
    }

    fn run_as(&self, user: &str, db: &str, sql: &str) {
        let config = self.socket_config(user, db);
        let sql = sql.to_owned();
        on_own_runtime(async move {
            let client = connect(config).await;
            if let Err(e) = client.batch_execute(&sql).await {
                panic!("test PostgreSQL: {sql}: {}", message(&e));
            }
        });
    }

    fn socket_config(&self, user: &str, db: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.dir)
            .port(self.port)
            .user(user)
            .dbname(db);
        config
    }
}

fn start() -> Result<Option<PgServer>, String> {
    let required = std::env::var_os("STRIPE_SYNC_REQUIRE_PG").is_some_and(|v| v == "1");
    let skip = |why: &str| {
        if required {
            return Err(format!("STRIPE_SYNC_REQUIRE_PG=1 and {why}"));
        }
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
        Ok(None)
    };
    let Some(bindir) = find_bindir() else {
        return skip(NOT_FOUND);
    };
    let as_root = rustix::process::geteuid().is_root();
    let owner = if as_root {
        match (id("-u"), id("-g")) {
            (Some(uid), Some(gid)) => Some((uid, gid)),
            _ => {
                return skip(
                    "running as root, and there is no `postgres` user to run initdb as \
                     (initdb refuses root); install postgresql-15, which creates it",
                );
            }
        }
    } else {
        None
    };
    // Under /tmp: the socket path must stay under ~100 bytes, and every
    // parent must be traversable by the postgres user.
    let base = Path::new("/tmp");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new()
        .prefix("stripe-sync-pg-")
        .tempdir_in(&base)
        .map_err(|e| {
            format!(
                "test PostgreSQL: cannot make a temp dir in {}: {e}",
                base.display()
            )
        })?
        .keep();
    // From here on, any return drops the watchdog's stdin: it removes the dir
    // (and stops a server that got started).
    let watchdog = watchdog(&dir)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("test PostgreSQL: chown {} to postgres: {e}", dir.display()))?;
    }
    let pg = |program: &str| pg_command(&bindir, program, as_root, &dir);
    let data = dir.join("data");
    let log = dir.join("server.log");
    let initdb = pg("initdb")
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .args(["-E", "UTF8", "--locale=C", "--no-sync"])
        .output();
    check("initdb", initdb, None)?;
    let settings = format!(
        "\n# stripe-sync tests\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
         fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n\
         shared_buffers = 16MB\n",
        dir.display()
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .and_then(|mut conf| conf.write_all(settings.as_bytes()))
        .map_err(|e| format!("test PostgreSQL: cannot write postgresql.conf: {e}"))?;

    // A free port can be taken between looking and binding: try another one.
    let mut attempt = 0;
    let port = loop {
        attempt += 1;
        let port = free_port()?;
        let started = pg("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "-o", &format!("-p {port}"), "start"])
            .output();
        let server_log = || std::fs::read_to_string(&log).unwrap_or_default();
        match check("pg_ctl start", started, Some(&log)) {
            Ok(()) => break port,
            Err(_) if attempt < 3 && server_log().contains("could not bind") => continue,
            Err(why) => return Err(why),
        }
    };

    let password = format!(
        "pw-{}",
        std::iter::repeat_with(fastrand::alphanumeric)
            .take(24)
            .collect::<String>()
    );
    let server = PgServer {
        port,
        password,
        dir,
        next_db: AtomicU32::new(0),
        _watchdog: watchdog,
    };
    server.run_as(
        SUPERUSER,
        "postgres",
        &format!(
            "CREATE ROLE {TEST_ROLE} LOGIN PASSWORD '{}'",
            server.password
        ),
    );
    Ok(Some(server))
}

/// The first directory holding initdb, pg_ctl and postgres.
fn find_bindir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("STRIPE_SYNC_PG_BINDIR") {
        candidates.push(dir.into());
    }
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        candidates.push(String::from_utf8_lossy(&out.stdout).trim().into());
    }
    // Debian: /usr/lib/postgresql/<major>/bin, newest first.
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
            .collect();
        versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
        candidates.extend(versions.into_iter().map(|(_, dir)| dir));
    }
    // An initdb on PATH (often a symlink into the real bindir).
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if let Ok(real) = std::fs::canonicalize(dir.join("initdb")) {
            candidates.extend(real.parent().map(Path::to_path_buf));
        }
    }
    candidates.into_iter().find(|dir| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    })
}

/// `program` from `bindir`, as the postgres user when this process is root.
fn pg_command(bindir: &Path, program: &str, as_root: bool, dir: &Path) -> Command {
    let program = bindir.join(program);
    let mut command = if !as_root {
        Command::new(program)
    } else if let Some(runuser) = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
    {
        let mut command = Command::new(runuser);
        command.args(["-u", SUPERUSER, "--"]).arg(program);
        command
    } else {
        let mut command = Command::new("su");
        command
            .args(["-s", "/bin/sh", SUPERUSER, "-c", "exec \"$0\" \"$@\""])
            .arg(program);
        command
    };
    // The postgres user may not be able to enter this process's directory.
    command
        .current_dir(dir)
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    command
}

/// A detached `sh` that waits for EOF on its stdin (this process's end),
/// then stops the server (immediate shutdown) and removes `dir`.
fn watchdog(dir: &Path) -> Result<ChildStdin, String> {
    const SCRIPT: &str = r#"
trap '' INT HUP
cat > /dev/null
pidfile="$1/data/postmaster.pid"
if [ -f "$pidfile" ]; then
  pm=$(head -n 1 "$pidfile")
  kill -QUIT "$pm" 2> /dev/null
  i=0
  while kill -0 "$pm" 2> /dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$pm" 2> /dev/null
fi
case "$1" in */stripe-sync-pg-*) rm -rf "$1" ;; esac
"#;
    let mut child = Command::new("sh")
        .args(["-c", SCRIPT, "stripe-sync-pg-watchdog"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("test PostgreSQL: cannot start the watchdog (sh): {e}"))?;
    Ok(child.stdin.take().expect("piped stdin"))
}

fn check(
    what: &str,
    output: std::io::Result<std::process::Output>,
    log: Option<&Path>,
) -> Result<(), String> {
    let output = output.map_err(|e| format!("test PostgreSQL: cannot run {what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let log = log.map_or_else(String::new, |log| {
        let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("(unreadable: {e})"));
        format!("\n--- server log ---\n{text}")
    });
    Err(format!(
        "test PostgreSQL: {what} failed ({}):\n{}{}{log}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// `id -u postgres` / `id -g postgres`.
fn id(flag: &str) -> Option<u32> {
    let out = Command::new("id")
        .args([flag, SUPERUSER])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("test PostgreSQL: no free port on 127.0.0.1: {e}"))
}

/// Runs `future` on a runtime of its own thread: callers may be plain
/// `#[test]`s or inside `#[tokio::test]`.
fn on_own_runtime<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(future)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

async fn connect(config: tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("test PostgreSQL: cannot connect: {}", message(&e)));
    tokio::spawn(connection);
    client
}

/// The server's own message when there is one (tokio-postgres's Display
/// alone says only "db error").
fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}
