//! The two store backends, for tests that run once on each from the same
//! body: an SQLite file (the default store of each run's dir), or a fresh
//! database of the test PostgreSQL server (`tests/support/pg.rs`) named by
//! `--db postgres://...`, whose password no run may print.
//!
//! A test body is a function taking the [`Backend`]; [`on_both_backends!`]
//! makes it two tests, `MODULE::sqlite::NAME` and `MODULE::postgres::NAME`,
//! so a failure names its backend. The PostgreSQL ones print `SKIPPED` and
//! pass when the server's binaries are missing, unless
//! `STRIPE_SYNC_REQUIRE_PG=1`.
//!
//! "Writes nothing" is checked with [`Store::snapshot`]: on the file's
//! bytes, or on every row of the schema `stripe_sync` with the transaction
//! that wrote it (`xmin`).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::common::tempdir;
use crate::harness::Test;
use crate::support::pg::PgServer;

/// Where a test's stores are: SQLite files (the default store of each run's
/// dir), or PostgreSQL databases of the test server (`--db postgres://...`),
/// a fresh database for each store.
#[derive(Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres(&'static PgServer),
}

impl Backend {
    /// A fresh temp dir and an empty store for the runs in it.
    pub fn site(self) -> Site {
        let tmp = tempdir();
        let dir = tmp.path().to_path_buf();
        let mut site = self.site_in(&dir);
        site._tmp = Some(tmp);
        site
    }

    /// An empty store for runs in `dir` (which the test keeps).
    pub fn site_in(self, dir: &Path) -> Site {
        let store = match self {
            Backend::Sqlite => Store::Sqlite(dir.join("stripe-sync.db")),
            Backend::Postgres(pg) => Store::Postgres {
                pg,
                db: pg.create_database(),
            },
        };
        Site {
            _tmp: None,
            dir: dir.to_path_buf(),
            store,
        }
    }

    /// A fresh temp dir and an empty store: SQLite's file named `file` in
    /// it (not the default: every run says `--db FILE`).
    pub fn site_named(self, file: &str) -> Site {
        let mut site = self.site();
        if let Store::Sqlite(path) = &mut site.store {
            *path = site.dir.join(file);
        }
        site
    }

    pub fn is_postgres(self) -> bool {
        matches!(self, Backend::Postgres(_))
    }
}

/// Each test body (a function taking the [`Backend`], in the calling
/// module) as two tests: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(crate::backends::Backend::Sqlite)
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(pg) = crate::support::pg::server() {
                        super::$name(crate::backends::Backend::Postgres(pg))
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// A store.
pub enum Store {
    /// A file, the default store of the runs' dir.
    Sqlite(PathBuf),
    /// A database of the test server, given to every run as `--db URL`.
    Postgres { pg: &'static PgServer, db: String },
}

impl Store {
    /// Whether the store exists: the file, or the schema `stripe_sync`.
    pub fn exists(&self) -> bool {
        match self {
            Store::Sqlite(path) => path.exists(),
            Store::Postgres { pg, db } => {
                pg.query_one(
                    db,
                    "SELECT count(*) FROM pg_namespace WHERE nspname = 'stripe_sync'",
                ) != "0"
            }
        }
    }

    /// What the store holds, to compare before and after a run that must
    /// write nothing. Taken between runs, when no process has it open.
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Store::Sqlite(path) => file_snapshot(path),
            Store::Postgres { pg, db } => Snapshot::Rows(pg.query_one(db, &rows_snapshot_sql())),
        }
    }

    /// The store as `--db` names it (the URL with its password).
    pub fn arg(&self) -> String {
        match self {
            Store::Sqlite(path) => path.display().to_string(),
            Store::Postgres { pg, db } => pg.url(db),
        }
    }

    /// The value of `sql` (one row, one column, as text; "" for NULL, None
    /// for no row), run on the store's tables (PostgreSQL: in schema
    /// `stripe_sync`). `?1` in `sql` is replaced by `key`, quoted. None
    /// when there is no store.
    pub fn value(&self, sql: &str, key: &str) -> Option<String> {
        if !self.exists() {
            return None;
        }
        let sql = sql.replace("?1", &format!("'{}'", key.replace('\'', "''")));
        match self {
            Store::Sqlite(path) => {
                let c = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                c.busy_timeout(std::time::Duration::from_secs(20)).unwrap();
                c.query_row(&sql, [], |r| {
                    Ok(match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Null => String::new(),
                        rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                        rusqlite::types::ValueRef::Real(f) => f.to_string(),
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                    })
                })
                .ok()
            }
            Store::Postgres { pg, db } => {
                let rows = pg_rows(pg, db, &sql, &["v"]);
                rows.into_iter().next().map(|mut r| r.remove(0))
            }
        }
    }

    /// The rows of a two-column `sql` on the store's tables, as pairs of
    /// text (empty without a store or its table).
    pub fn pairs(&self, sql: &str, table: &str) -> Vec<(String, String)> {
        let has_table = match self {
            Store::Sqlite(_) => {
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1"
            }
            Store::Postgres { .. } => {
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'stripe_sync' AND tablename = ?1"
            }
        };
        if self.value(has_table, table).is_none_or(|n| n == "0") {
            return Vec::new();
        }
        match self {
            Store::Sqlite(path) => {
                let c = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .unwrap();
                c.busy_timeout(std::time::Duration::from_secs(20)).unwrap();
                let mut st = c.prepare(sql).unwrap();
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            Store::Postgres { pg, db } => pg_rows(pg, db, sql, &["k", "v"])
                .into_iter()
                .map(|mut r| (r.remove(0), r.remove(0)))
                .collect(),
        }
    }
}

/// The rows of `sql`, its columns named `cols` (as text; "" for NULL),
/// in the PostgreSQL store's schema.
fn pg_rows(pg: &PgServer, db: &str, sql: &str, cols: &[&str]) -> Vec<Vec<String>> {
    let names = cols.join(", ");
    let values: Vec<String> = cols.iter().map(|c| format!("q.{c}")).collect();
    let json = pg.query_one(
        db,
        &format!(
            "SET search_path TO stripe_sync; \
             SELECT coalesce(json_agg(json_build_array({})), '[]')::text \
             FROM ({sql}) AS q({names})",
            values.join(", ")
        ),
    );
    let rows: Vec<Vec<serde_json::Value>> = serde_json::from_str(&json).unwrap();
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| match v {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// A dir the runs happen in, and their store.
pub struct Site {
    /// The temp dir, when the site made it.
    pub _tmp: Option<tempfile::TempDir>,
    pub dir: PathBuf,
    pub store: Store,
}

impl Site {
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `stripe-sync` in the site's dir, on its store (see [`sync`]).
    pub fn sync(&self) -> Test {
        sync(self)
    }

    /// The store as messages name it: `stripe-sync.db`, or the URL with
    /// its password as `***`.
    pub fn shown(&self) -> String {
        match &self.store {
            Store::Sqlite(path) => match path.strip_prefix(&self.dir) {
                Ok(rel) => rel.display().to_string(),
                Err(_) => path.display().to_string(),
            },
            Store::Postgres { pg, db } => pg.url(db).replace(pg.password(), "***"),
        }
    }
}

/// `stripe-sync` in the site's dir, on its store: the dir's default store
/// (SQLite), or `--db URL` (PostgreSQL; the password never printed).
pub fn sync(site: &Site) -> Test {
    let t = Test::in_dir(&site.dir);
    match &site.store {
        Store::Sqlite(path) if *path == site.dir.join("stripe-sync.db") => t,
        Store::Sqlite(path) => t
            .arg("--db")
            .arg(path.strip_prefix(&site.dir).unwrap_or(path)),
        Store::Postgres { pg, db } => t.args(["--db", &pg.url(db)]).hides(pg.password()),
    }
}

/// What a store holds. SQLite: the bytes and modification times of the
/// main file and, if present and not empty, the WAL (not `-shm`, which
/// readers may touch). PostgreSQL: every row of the store's tables, each
/// with its `xmin` (the transaction that wrote that version of it), so a
/// row written again with the same values counts as a write too.
#[derive(PartialEq)]
pub enum Snapshot {
    Files(Vec<(PathBuf, Vec<u8>, SystemTime)>),
    Rows(String),
}

pub fn file_snapshot(db: &Path) -> Snapshot {
    let mut files = Vec::new();
    for p in [
        db.to_path_buf(),
        PathBuf::from(format!("{}-wal", db.display())),
    ] {
        // An empty WAL (left by a reader) holds nothing: the same as none.
        if let Ok(bytes) = fs::read(&p)
            && !(bytes.is_empty() && p != db)
        {
            let mtime = fs::metadata(&p).and_then(|m| m.modified()).unwrap();
            files.push((p, bytes, mtime));
        }
    }
    assert!(!files.is_empty(), "no store at {}", db.display());
    Snapshot::Files(files)
}

/// One text of every row of the PostgreSQL store's tables, in key order,
/// each with its `xmin` (fails when there is no store).
pub fn rows_snapshot_sql() -> String {
    let tables = [
        ("schema_version", "version"),
        ("customers", "id"),
        ("subscriptions", "id"),
        ("events", "id"),
        ("sync_state", "key"),
    ];
    let parts: Vec<String> = tables
        .iter()
        .map(|(table, key)| {
            format!(
                "'{table}:' || coalesce((SELECT string_agg(t::text || ' xmin=' || t.xmin::text, \
                 E'\\n' ORDER BY t.{key}) FROM stripe_sync.{table} t), '')"
            )
        })
        .collect();
    format!("SELECT concat_ws(E'\\n', {})", parts.join(", "))
}

impl Snapshot {
    /// What differs from `other`, for a message.
    pub fn describe_change(&self, other: &Snapshot) -> String {
        match (self, other) {
            (Snapshot::Files(a), Snapshot::Files(b)) => {
                let describe = |s: &Vec<(PathBuf, Vec<u8>, SystemTime)>| -> Vec<String> {
                    s.iter()
                        .map(|(p, b, t)| {
                            format!("{} ({} bytes, mtime {t:?})", p.display(), b.len())
                        })
                        .collect()
                };
                format!("{:?} -> {:?}", describe(a), describe(b))
            }
            (Snapshot::Rows(a), Snapshot::Rows(b)) => {
                let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
                let gone: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
                let new: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
                format!("rows before, not after: {gone:#?}\nrows after, not before: {new:#?}")
            }
            _ => "a different backend".to_owned(),
        }
    }

    /// The same contents (SQLite: the same bytes, whatever the times).
    pub fn same_contents(&self, other: &Snapshot) -> bool {
        match (self, other) {
            (Snapshot::Files(a), Snapshot::Files(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && x.1 == y.1)
            }
            (a, b) => a == b,
        }
    }
}

pub fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    assert!(
        before == after,
        "{what} changed the store: {}",
        before.describe_change(after)
    );
}
