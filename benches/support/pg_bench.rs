//! The PostgreSQL server of the benchmarks: the tests' throwaway server
//! (`tests/support/pg.rs`, included by the bench as `pg`), set back to
//! PostgreSQL's own defaults for what a benchmark of durable commits
//! depends on, and restarted with them.
//!
//! The tests' server runs with `fsync = off`, `synchronous_commit = off`,
//! `full_page_writes = off`, `shared_buffers = 16MB` and `max_connections =
//! 40` (it holds test data only). Here, through `ALTER SYSTEM` as its
//! superuser (over its unix socket, trust) and a restart, it runs with
//! PostgreSQL's defaults: `fsync`, `synchronous_commit` and
//! `full_page_writes` on, `shared_buffers` 128MB, `max_connections` 100,
//! `max_locks_per_transaction` 64 (`BENCH_PG_MAX_LOCKS=N` sets another: the
//! shared lock table, which holds the advisory locks the store takes, has
//! room for N x (max_connections + background processes) locks). Its data directory is under /tmp, on the same disk as the SQLite
//! stores the benchmarks write (in `tempfile`'s temp dir).
//!
//! `BENCH_PG_FSYNC=off` leaves fsync (and full_page_writes) off, to see how
//! much of a figure the disk is; the settings line says which ran.
//! `BENCH_PG_STATEMENTS=1` loads `pg_stat_statements` (a profile: the
//! statements the server ran, how often, for how long; see
//! [`BenchPg::statements`]); it costs the server a little time.
//!
//! Without PostgreSQL's binaries, `start()` answers why (the tests'
//! module prints a `SKIPPED:` line on stderr too) and the caller prints
//! its rows as SKIPPED; with `STRIPE_SYNC_REQUIRE_PG=1` it panics, as it
//! does when the server started but cannot be set up.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::pg;

pub struct BenchPg {
    pub pg: &'static pg::PgServer,
    /// `PostgreSQL 15.x, fsync on, ...`: for the output.
    pub settings: String,
    /// `PostgreSQL 15`: for the tables' measure column.
    pub short: String,
    data: PathBuf,
    socket: PathBuf,
    /// `BENCH_PG_STATEMENTS=1`: pg_stat_statements loaded.
    statements: bool,
}

/// The benchmarks' server, started on first use; `Err(why)` when there is
/// none (PostgreSQL not installed).
pub fn start() -> Result<&'static BenchPg, String> {
    static SERVER: std::sync::OnceLock<Result<BenchPg, String>> = std::sync::OnceLock::new();
    SERVER
        .get_or_init(|| {
            let Some(pg) = pg::server() else {
                // Binaries not found, or root without a `postgres` user:
                // the tests' module said which on stderr.
                return Err("no PostgreSQL here (install postgresql-15 or set \
                            STRIPE_SYNC_PG_BINDIR; the SKIPPED line above says why)"
                    .into());
            };
            // A server that started but cannot be set up is a fault of
            // this code or of the machine, never a skip.
            Ok(configure(pg)
                .unwrap_or_else(|why| panic!("the benchmarks' PostgreSQL server: {why}")))
        })
        .as_ref()
        .map_err(Clone::clone)
}

impl BenchPg {
    /// A fresh database's URL (plain TCP on 127.0.0.1: `sslmode=disable`,
    /// the server has no TLS).
    pub fn fresh_url(&self) -> (String, String) {
        let db = self.pg.create_database();
        if self.statements {
            superuser(
                &self.socket,
                self.pg.port(),
                &db,
                "CREATE EXTENSION pg_stat_statements",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let url = format!("{}?sslmode=disable", self.pg.url(&db));
        (db, url)
    }

    /// A count in a database (`SELECT count(*) FROM stripe_sync.TABLE`).
    pub fn count(&self, db: &str, table: &str) -> Option<u64> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.pg
                .query_one(db, &format!("SELECT count(*) FROM stripe_sync.{table}"))
        }))
        .ok()
        .and_then(|t| t.trim().parse().ok())
    }

    /// With `BENCH_PG_STATEMENTS=1`, the statements run in `db` (its
    /// transactions, then the top ones by time), each per `per` (events,
    /// customers), as lines to print; else nothing.
    pub fn statements(&self, db: &str, per: u64, what: &str) -> Vec<String> {
        if !self.statements {
            return Vec::new();
        }
        let per = per.max(1) as f64;
        let q = |sql: &str| superuser_rows(&self.socket, self.pg.port(), db, sql);
        let mut out = Vec::new();
        if let Ok(rows) = q("SELECT xact_commit, xact_rollback, blks_hit, blks_read \
             FROM pg_stat_database WHERE datname = current_database()")
            && let Some(r) = rows.first()
        {
            let n = |i: usize| r[i].parse::<f64>().unwrap_or(0.0) / per;
            out.push(format!(
                "database {db}: {:.2} commits, {:.2} rollbacks, {:.1} buffer hits, {:.2} \
                 reads per {what} (pg_stat_database, reported with a delay)",
                n(0),
                n(1),
                n(2),
                n(3)
            ));
        }
        match q(
            "SELECT s.calls, round(s.total_exec_time::numeric, 1), s.rows, \
             regexp_replace(s.query, '\\s+', ' ', 'g') \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname = current_database() ORDER BY s.total_exec_time DESC LIMIT 15",
        ) {
            Ok(rows) => {
                out.push(format!(
                    "pg_stat_statements, by time: calls per {what}, exec time per {what}, text"
                ));
                for r in rows {
                    let calls: f64 = r[0].parse().unwrap_or(0.0);
                    let ms: f64 = r[1].parse().unwrap_or(0.0);
                    let text: String = r[3].chars().take(110).collect();
                    out.push(format!(
                        "  {:>6.2} x {:>7.1} us  {text}",
                        calls / per,
                        ms * 1000.0 / per
                    ));
                }
            }
            Err(e) => out.push(format!("pg_stat_statements: {e}")),
        }
        out
    }

    /// CPU time of the whole server so far: the postmaster and its live
    /// processes, and the processes that ended (reaped by the postmaster,
    /// counted in its children's times).
    pub fn cpu(&self) -> Option<Duration> {
        let pid: u32 = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()?;
        let mut ticks = cpu_ticks(pid, true)?;
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            ticks += cpu_ticks(child, true).unwrap_or(0);
        }
        Some(Duration::from_secs_f64(ticks as f64 / CLOCK_TICKS))
    }
}

/// Clock ticks a second in /proc/PID/stat (`getconf CLK_TCK`: 100 on Linux).
pub const CLOCK_TICKS: f64 = 100.0;

/// A process's CPU time so far (user + system, with its reaped children's
/// when `children`), in clock ticks.
pub fn cpu_ticks(pid: u32, children: bool) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let [utime, stime, cutime, cstime] = fields[..] else {
        return None;
    };
    Some(utime + stime + if children { cutime + cstime } else { 0 })
}

/// A process's CPU time so far (user + system).
pub fn cpu_of(pid: u32) -> Option<Duration> {
    cpu_ticks(pid, false).map(|t| Duration::from_secs_f64(t as f64 / CLOCK_TICKS))
}

fn configure(pg: &'static pg::PgServer) -> Result<BenchPg, String> {
    let socket = socket_dir(pg.port()).ok_or_else(|| {
        format!(
            "the test PostgreSQL's socket (.s.PGSQL.{}) not found under the temp dir",
            pg.port()
        )
    })?;
    let durable = !std::env::var("BENCH_PG_FSYNC").is_ok_and(|v| v == "off" || v == "0");
    let on = if durable { "on" } else { "off" };
    let max_locks = std::env::var("BENCH_PG_MAX_LOCKS")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(64)
        .to_string();
    // One at a time: ALTER SYSTEM runs outside any transaction block.
    for (name, value) in [
        ("fsync", on),
        ("full_page_writes", on),
        ("synchronous_commit", "on"),
        ("shared_buffers", "'128MB'"),
        ("max_connections", "100"),
        ("max_locks_per_transaction", &max_locks),
    ] {
        superuser(
            &socket,
            pg.port(),
            "postgres",
            &format!("ALTER SYSTEM SET {name} = {value}"),
        )?;
    }
    let statements = std::env::var("BENCH_PG_STATEMENTS").is_ok_and(|v| v == "1");
    if statements {
        superuser(
            &socket,
            pg.port(),
            "postgres",
            "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",
        )?;
    }
    let data = PathBuf::from(superuser_value(&socket, pg.port(), "SHOW data_directory")?);
    let bindir = PathBuf::from(superuser_value(
        &socket,
        pg.port(),
        "SELECT setting FROM pg_config WHERE name = 'BINDIR'",
    )?);
    // shared_buffers takes a restart (the rest a reload). The options the
    // server was started with (its port) are kept in postmaster.opts.
    let out = pg_command(&bindir, "pg_ctl", &socket)
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(socket.join("server.log"))
        .args(["-w", "-t", "60", "-m", "fast", "restart"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("pg_ctl restart: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pg_ctl restart ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let show = |name: &str| {
        superuser_value(&socket, pg.port(), &format!("SHOW {name}")).unwrap_or_else(|e| e)
    };
    let version = show("server_version");
    let (fsync, sync_commit, fpw, buffers) = (
        show("fsync"),
        show("synchronous_commit"),
        show("full_page_writes"),
        show("shared_buffers"),
    );
    let (connections, locks) = (show("max_connections"), show("max_locks_per_transaction"));
    if durable && fsync != "on" {
        return Err(format!("fsync is {fsync} after the restart"));
    }
    let major = version.split('.').next().unwrap_or("?").to_owned();
    Ok(BenchPg {
        pg,
        settings: format!(
            "PostgreSQL {version} on 127.0.0.1:{} (TCP, no TLS), fsync {fsync}, synchronous_commit \
             {sync_commit} (serve sets it on for its sessions), full_page_writes {fpw}, \
             shared_buffers {buffers}, max_connections {connections}, max_locks_per_transaction \
             {locks}, data in {} (same disk as the SQLite stores){}",
            pg.port(),
            data.display(),
            if statements {
                ", pg_stat_statements loaded"
            } else {
                ""
            }
        ),
        short: format!(
            "PostgreSQL {major}{}{}",
            if fsync == "on" { "" } else { ", fsync OFF" },
            if locks == "64" {
                String::new()
            } else {
                format!(", max_locks_per_transaction {locks}")
            }
        ),
        data,
        socket,
        statements,
    })
}

/// The directory of the server's unix socket: the tests' module makes it
/// under /tmp (or the temp dir) as `stripe-sync-pg-*`, and keeps its path
/// to itself.
fn socket_dir(port: u16) -> Option<PathBuf> {
    for base in [PathBuf::from("/tmp"), std::env::temp_dir()] {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().starts_with("stripe-sync-pg-")
                && e.path().join(format!(".s.PGSQL.{port}")).exists()
            {
                return Some(e.path());
            }
        }
    }
    None
}

fn superuser_config(socket: &Path, port: u16, db: &str) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(socket)
        .port(port)
        .user("postgres")
        .dbname(db);
    config
}

fn on_own_runtime<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(f)
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Statements as the superuser, in database `db`.
fn superuser(socket: &Path, port: u16, db: &str, sql: &str) -> Result<(), String> {
    let config = superuser_config(socket, port, db);
    let sql = sql.to_owned();
    on_own_runtime(async move {
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting as postgres: {e}"))?;
        tokio::spawn(conn);
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| format!("{sql}: {}", message(&e)))
    })
}

/// The server's own message when there is one.
fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// The first value of a query, as the superuser.
fn superuser_value(socket: &Path, port: u16, sql: &str) -> Result<String, String> {
    superuser_rows(socket, port, "postgres", sql)?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .ok_or_else(|| format!("{sql}: no row"))
}

/// The rows of a query in database `db`, as the superuser, as text
/// ("" for NULL).
fn superuser_rows(
    socket: &Path,
    port: u16,
    db: &str,
    sql: &str,
) -> Result<Vec<Vec<String>>, String> {
    let config = superuser_config(socket, port, db);
    let sql = sql.to_owned();
    on_own_runtime(async move {
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting as postgres: {e}"))?;
        tokio::spawn(conn);
        let rows = client
            .simple_query(&sql)
            .await
            .map_err(|e| format!("{sql}: {}", message(&e)))?;
        Ok(rows
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("").to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    })
}

/// A PostgreSQL program, as the postgres user when this process is root
/// (as the tests' module runs them).
fn pg_command(bindir: &Path, program: &str, dir: &Path) -> Command {
    let program = bindir.join(program);
    let mut command = if !rustix::process::geteuid().is_root() {
        Command::new(program)
    } else if let Some(runuser) = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
    {
        let mut command = Command::new(runuser);
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        let mut command = Command::new("su");
        command
            .args(["-s", "/bin/sh", "postgres", "-c", "exec \"$0\" \"$@\""])
            .arg(program);
        command
    };
    command
        .current_dir(dir)
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    command
}
