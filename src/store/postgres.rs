//! The PostgreSQL store (`--db postgres://...`): the same tables and the
//! same meaning as the SQLite store, shared by several processes at once.
//!
//! The tables live in a schema of their own, `stripe_sync`, made (with
//! the tables) on the first open for writing; the version of what this
//! build made is kept in `stripe_sync.schema_version`, and a store made by
//! a newer build is refused. A read-only role can read a store another
//! role made (`inspect`, `audit`): it needs `USAGE` on the schema and
//! `SELECT` on its tables.
//!
//! Several writers at once: every write transaction first takes a
//! transaction-scoped advisory lock for each customer it writes, in one
//! order (by key), and then runs the one writer's rules
//! ([`super::write::Writer`]) under PostgreSQL's default READ COMMITTED.
//! Each statement after the lock sees what the lock's last holder
//! committed, so the ordering guard (an older snapshot never replaces a
//! newer) and the subscription rule read the state they decide on and
//! write it before anyone else can read it: two receivers of the same
//! events, in any order, end where one would. Locks rather than
//! SERIALIZABLE: a write never fails for being concurrent (a serializable
//! one can, and must then be run again, fetched objects and all), and the
//! lock is taken only for the customers a transaction writes. Events are
//! logged at the end of their transaction, sorted by id: two transactions
//! never wait on each other's log rows in opposite orders.
//!
//! A commit is durable when it returns (`synchronous_commit` is `on`, the
//! server's default, and `serve` sets it so whatever the role's default).
//! `serve`'s 200 follows the commit, so a receiver killed after it loses
//! nothing it acknowledged.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Statement};

use super::reads;
use super::sql::{self, Arg, Db, args};
use super::write::Writer;
use super::{
    CustomerWrite, EventLogger, Filter, MappingRow, PassMarks, PassPage, SqliteStore, Unlisted,
    WriteOutcome, checkpoint,
};
use crate::objects::SubscriptionRecord;

/// Statements sent at once, at most, by [`PgStore::exec_pipelined`]'s
/// callers: a run's event log may hold a million.
const PIPELINE: usize = 1_000;

/// The schema that holds the store's tables.
pub(super) const SCHEMA: &str = "stripe_sync";

/// The schema this build writes (PostgreSQL's own steps, counted from 1).
const VERSION: i64 = 1;

/// v1: SQLite's schema 6, in PostgreSQL's types. Text that is sorted or
/// compared (ids) uses the "C" collation: byte order, as SQLite's, so
/// both stores list the mapping in the same order whatever the database's
/// locale. `rowid` numbers customers in insertion order, as SQLite's own
/// does (the backfill's settling walks it).
const V1: &str = r#"
CREATE TABLE customers (
    rowid             BIGINT GENERATED ALWAYS AS IDENTITY,
    id                TEXT COLLATE "C" PRIMARY KEY,
    user_id           TEXT COLLATE "C",
    user_key          TEXT NOT NULL,
    email             TEXT,
    deleted           BOOLEAN NOT NULL DEFAULT false,
    snapshot_at       BIGINT,
    source            TEXT NOT NULL,
    synced_at         TEXT NOT NULL,
    subscription_id   TEXT COLLATE "C",
    current_at        BIGINT,
    listed_pass       BIGINT,
    first_sub_pass    BIGINT,
    written_run       BIGINT,
    snapshot_event    TEXT,
    snapshot_stage    BIGINT,
    snapshot_previous TEXT
);
CREATE INDEX customers_mapping ON customers (user_id, id);
CREATE UNIQUE INDEX customers_rowid ON customers (rowid);
CREATE INDEX customers_written_run ON customers (written_run, id);
CREATE TABLE subscriptions (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    customer_id          TEXT COLLATE "C" NOT NULL,
    status               TEXT NOT NULL,
    price_id             TEXT,
    current_period_start BIGINT,
    current_period_end   BIGINT,
    cancel_at_period_end BOOLEAN NOT NULL,
    payment_method_id    TEXT,
    card_brand           TEXT,
    card_last4           TEXT,
    created              BIGINT NOT NULL,
    snapshot_at          BIGINT NOT NULL,
    source               TEXT NOT NULL,
    synced_at            TEXT NOT NULL,
    snapshot_event       TEXT,
    snapshot_stage       BIGINT,
    snapshot_previous    TEXT
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id, created);
CREATE TABLE events (
    id           TEXT COLLATE "C" PRIMARY KEY,
    type         TEXT NOT NULL,
    created      BIGINT,
    route        TEXT NOT NULL,
    user_id      TEXT,
    customer_id  TEXT,
    processed_at TEXT NOT NULL
);
CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// Each version's step from the one before, in order.
const STEPS: &[(i64, &str)] = &[(1, V1)];
const _: () = assert!(STEPS[STEPS.len() - 1].0 == VERSION);

/// The first key of every advisory lock the store takes (`pg_advisory_*`
/// with two keys: this, and the lock's own): "STSY", so that an app's
/// own advisory locks in the same database never collide with the store's.
const LOCK_SPACE: i32 = 0x5354_5359;

/// The advisory locks the store takes, by their second key. A customer's
/// is its id's hash ([`customer_key`]); these are the store's own.
#[derive(Debug, Clone, Copy)]
#[repr(i32)]
pub(super) enum Lock {
    /// Making or migrating the schema.
    Schema = 1,
    /// Numbering backfill passes and runs, moving the events checkpoint.
    Serial = 2,
    /// A backfill (`resync --all`) in progress: held for the whole run.
    Backfill = 3,
}

/// The second key of a customer's advisory lock: FNV-1a of its id, folded
/// to 32 bits, with the store's own keys ([`Lock`]) left out. Every
/// process computes the same key for the same id.
pub(super) fn customer_key(id: &str) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let folded = ((h >> 32) ^ h) as u32 as i32;
    match folded {
        1..=16 => folded + 16,
        k => k,
    }
}

/// A connection to the store's database, and its statements.
pub(crate) struct PgStore {
    /// Runs the client's futures: the store's interface is blocking, as
    /// SQLite's is, and is called outside any async task.
    /// (Always there: taken only by `Drop`.)
    rt: Option<tokio::runtime::Runtime>,
    /// Where to connect again when the connection is lost (see
    /// [`PgStore::client`]).
    target: crate::pg::Target,
    client: RefCell<Client>,
    /// The session's settings, made again on a new connection.
    session: RefCell<Vec<String>>,
    /// Statements held by [`Db::exec_later`], sent with the next one.
    held: RefCell<Vec<(&'static str, Vec<Held>)>>,
    /// The URL without its password: how messages name the store.
    shown: String,
    prepared: RefCell<HashMap<String, Statement>>,
    /// `serve`'s wait for another writer's lock, when set.
    server_wait: Cell<Option<Duration>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &self.shown).finish()
    }
}

impl PgStore {
    /// Connect to the database of `url` (given with `--db` or
    /// `STRIPE_SYNC_DB`).
    fn connect(url: &str) -> anyhow::Result<PgStore> {
        let target =
            crate::pg::Target::parse(url, "--db", "stripe-sync")?.called("the store's database");
        if tokio::runtime::Handle::try_current().is_ok() {
            anyhow::bail!(
                "internal error: the PostgreSQL store was opened inside a tokio runtime; please report this"
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime that talks to the store's database")?;
        let client = rt.block_on(target.connect())?;
        Ok(PgStore {
            rt: Some(rt),
            client: RefCell::new(client),
            session: RefCell::new(Vec::new()),
            held: RefCell::new(Vec::new()),
            shown: target.shown().to_owned(),
            target,
            prepared: RefCell::new(HashMap::new()),
            server_wait: Cell::new(None),
        })
    }

    /// Open for writing: the schema is made or brought up to date first.
    pub(crate) fn open(url: &str) -> anyhow::Result<PgStore> {
        let store = PgStore::connect(url)?;
        store.migrate()?;
        store.set(format!("SET search_path TO {SCHEMA}"))?;
        Ok(store)
    }

    /// Open for reading; `None` when the database holds no store yet.
    pub(crate) fn open_read_only(url: &str) -> anyhow::Result<Option<PgStore>> {
        let store = PgStore::connect(url)?;
        match store.version()? {
            None => return Ok(None),
            Some(v) if v > VERSION => return Err(store.too_new(v)),
            Some(_) => {}
        }
        store.set(format!(
            "SET search_path TO {SCHEMA}; SET default_transaction_read_only = on"
        ))?;
        Ok(Some(store))
    }

    fn too_new(&self, found: i64) -> anyhow::Error {
        self.describe(format!(
            "it was written by a newer stripe-sync (PostgreSQL schema {found}, this build \
             knows {VERSION}); upgrade stripe-sync"
        ))
    }

    /// A message about the store, naming it.
    pub(super) fn describe(&self, e: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("store {}: {e}", self.shown)
    }

    /// A failed statement in words that name the store; a lock wait that
    /// ran out in `serve` says so for the HTTP client, which will retry.
    pub(super) fn failed(&self, e: anyhow::Error) -> anyhow::Error {
        let Some(pe) = e.downcast_ref::<tokio_postgres::Error>() else {
            return e;
        };
        let why = match pe.as_db_error() {
            Some(db) => {
                let code = db.code();
                if *code == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE
                    && let Some(wait) = self.server_wait.get()
                {
                    format!(
                        "another process held the store's lock for more than {} ms; the \
                         event was not processed (a retry will be)",
                        wait.as_millis()
                    )
                } else if *code == tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE
                    || *code == tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION
                {
                    format!(
                        "read-only: {} (the role needs INSERT, UPDATE and DELETE on the tables \
                         of schema {SCHEMA})",
                        crate::pg::with_detail(db)
                    )
                } else {
                    crate::pg::with_detail(db)
                }
            }
            None => crate::pg::chain(pe),
        };
        self.describe(why)
    }

    /// The version of the store in this database, if there is one.
    fn version(&self) -> anyhow::Result<Option<i64>> {
        let client = self.client()?;
        let has = self.block(client.query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{SCHEMA}.schema_version")],
        ));
        if !has.map_err(|e| self.failed(e.into()))?.get::<_, bool>(0) {
            return Ok(None);
        }
        let row = self
            .block(client.query_opt(
                &format!("SELECT max(version) FROM {SCHEMA}.schema_version"),
                &[],
            ))
            .map_err(|e| self.failed(e.into()))?;
        Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)))
    }

    /// Make the schema, or bring it up to [`VERSION`], in one transaction
    /// under the schema lock (two processes starting at once do it once).
    fn migrate(&self) -> anyhow::Result<()> {
        let run = || -> anyhow::Result<()> {
            self.batch("BEGIN")?;
            self.exec_dyn(
                "SELECT pg_advisory_xact_lock(?1, ?2)",
                &[Arg::Int(LOCK_SPACE.into()), Arg::Int(Lock::Schema as i64)],
            )?;
            let found = self.version()?;
            if let Some(v) = found
                && v > VERSION
            {
                return Err(self.too_new(v));
            }
            if found.is_none() {
                // A schema made beforehand (by an administrator, for a role
                // that may not create schemas) is used as it is.
                let made = sql::one(
                    &mut PgDb(self),
                    "SELECT 1 FROM pg_namespace WHERE nspname = ?1",
                    &[Arg::Text(SCHEMA)],
                    |_| Ok(()),
                )?;
                if made.is_none() {
                    self.batch(&format!("CREATE SCHEMA {SCHEMA}"))?;
                }
                self.batch(&format!(
                    "CREATE TABLE {SCHEMA}.schema_version (version BIGINT NOT NULL)"
                ))?;
            }
            let found = found.unwrap_or(0);
            self.batch(&format!("SET LOCAL search_path TO {SCHEMA}"))?;
            for &(v, step) in STEPS {
                if found < v {
                    self.batch(step)?;
                    self.batch(&format!(
                        "DELETE FROM schema_version; INSERT INTO schema_version VALUES ({v})"
                    ))?;
                }
            }
            self.batch("COMMIT")
        };
        run()
            .inspect_err(|_| {
                self.rollback();
            })
            .map_err(|e| {
                let denied = e
                    .downcast_ref::<tokio_postgres::Error>()
                    .and_then(tokio_postgres::Error::as_db_error)
                    .filter(|db| {
                        *db.code() == tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE
                    });
                match denied {
                    Some(db) => self.describe(format!(
                        "this role may not make the store's schema {SCHEMA} ({}): grant it \
                         CREATE on the database, or have an administrator make the schema for \
                         it first (CREATE SCHEMA {SCHEMA} AUTHORIZATION <role>)",
                        db.message()
                    )),
                    None => self.failed(e),
                }
            })
    }

    pub(super) fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            None => unreachable!("the runtime is taken only by drop"),
        }
    }

    /// The connection; a new one when the last was lost (the server
    /// restarted, a proxy cut it): what was in flight failed with it (and
    /// a `serve` request answered 500, which Stripe retries), and the next
    /// statement runs on a new connection with the session's settings.
    fn client(&self) -> anyhow::Result<std::cell::Ref<'_, Client>> {
        if self.client.borrow().is_closed() {
            let client = self.block(self.target.connect())?;
            for setting in self.session.borrow().iter() {
                self.block(client.batch_execute(setting))?;
            }
            self.prepared.borrow_mut().clear();
            *self.client.borrow_mut() = client;
        }
        Ok(self.client.borrow())
    }

    /// Change a setting of the session, kept for a new connection.
    fn set(&self, setting: String) -> anyhow::Result<()> {
        self.batch(&setting)?;
        self.session.borrow_mut().push(setting);
        Ok(())
    }

    /// A statement, prepared once per connection.
    fn statement(&self, sql: &str) -> anyhow::Result<Statement> {
        // First the connection: a new one forgets the old one's statements.
        let client = self.client()?;
        if let Some(st) = self.prepared.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = self.block(client.prepare(&sql::numbered(sql)))?;
        self.prepared
            .borrow_mut()
            .insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    /// Statements without parameters or results (`BEGIN`, schema steps).
    pub(super) fn batch(&self, sql: &str) -> anyhow::Result<()> {
        self.send_held()?;
        Ok(self.block(self.client()?.batch_execute(sql))?)
    }

    /// Send the held statements (see [`Db::exec_later`]), pipelined, and
    /// wait for them all.
    fn send_held(&self) -> anyhow::Result<()> {
        let held = std::mem::take(&mut *self.held.borrow_mut());
        if held.is_empty() {
            return Ok(());
        }
        let mut statements = Vec::with_capacity(held.len());
        for (sql, _) in &held {
            statements.push(self.statement(sql)?);
        }
        let client = self.client()?;
        let params: Vec<Vec<PgArg<'_>>> = held
            .iter()
            .map(|(_, args)| args.iter().map(|a| PgArg(a.arg())).collect())
            .collect();
        let runs = params.iter().zip(&statements).map(|(row, st)| {
            let refs: Vec<&(dyn ToSql + Sync)> =
                row.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            let client = &client;
            async move { client.execute(st, &refs).await }
        });
        self.block(futures_util::future::try_join_all(runs))?;
        Ok(())
    }

    /// Forget the held statements: their transaction is rolled back.
    fn drop_held(&self) {
        self.held.borrow_mut().clear();
    }

    pub(super) fn rollback(&self) {
        self.drop_held();
        // A lost connection rolled its transaction back already.
        let client = self.client.borrow();
        if !client.is_closed() {
            let _ = self.block(client.batch_execute("ROLLBACK"));
        }
    }

    /// Run a statement of any text; how many rows it changed.
    pub(super) fn exec_dyn(&self, sql: &str, args: &[Arg<'_>]) -> anyhow::Result<u64> {
        self.send_held()?;
        let st = self.statement(sql)?;
        let params: Vec<PgArg<'_>> = args.iter().map(|a| PgArg(*a)).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        Ok(self.block(self.client()?.execute(&st, &refs))?)
    }

    /// Run one statement once for each row of `args`, all sent before the
    /// first answer is read (tokio-postgres pipelines the requests of one
    /// connection): one round trip for the lot, not one each. The server
    /// runs them in order.
    pub(super) fn exec_pipelined<const N: usize>(
        &self,
        sql: &str,
        args: &[[Arg<'_>; N]],
    ) -> anyhow::Result<u64> {
        self.send_held()?;
        let st = self.statement(sql)?;
        let client = self.client()?;
        let params: Vec<Vec<PgArg<'_>>> = args
            .iter()
            .map(|row| row.iter().map(|a| PgArg(*a)).collect())
            .collect();
        let runs = params.iter().map(|row| {
            let refs: Vec<&(dyn ToSql + Sync)> =
                row.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            let (client, st) = (&client, &st);
            async move { client.execute(st, &refs).await }
        });
        let counts = self.block(futures_util::future::try_join_all(runs))?;
        Ok(counts.iter().sum())
    }

    /// Each row of a query of any text, streamed, until `f` answers false.
    pub(super) fn each_dyn(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: &mut dyn FnMut(&dyn sql::Row) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        use futures_util::StreamExt;
        self.send_held()?;
        let st = self.statement(sql)?;
        let params: Vec<PgArg<'_>> = args.iter().map(|a| PgArg(*a)).collect();
        let client = self.client()?;
        self.block(async {
            let rows = client.query_raw(&st, params.iter()).await?;
            let mut rows = std::pin::pin!(rows);
            while let Some(row) = rows.next().await {
                if !f(&PgRow(row?))? {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Run `f` in one transaction, after taking the advisory locks of
    /// `customers` (see the module docs), and commit. On failure the
    /// transaction is rolled back and the error names the store.
    pub(super) fn transaction<T>(
        &self,
        customers: &[&str],
        f: impl FnOnce(&mut PgDb<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let run = || -> anyhow::Result<T> {
            self.batch("BEGIN")?;
            self.lock_customers(customers)?;
            let out = f(&mut PgDb(self))?;
            self.batch("COMMIT")?;
            Ok(out)
        };
        run().map_err(|e| {
            self.rollback();
            self.failed(e)
        })
    }

    /// Take the advisory locks of these customers for the transaction, in
    /// key order: two transactions never wait on each other in a circle.
    pub(super) fn lock_customers(&self, customers: &[&str]) -> anyhow::Result<()> {
        let mut keys: Vec<i32> = customers.iter().map(|id| customer_key(id)).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = keys.iter().map(i32::to_string).collect();
        // One statement for them all, the locks taken in key order; held
        // and sent with the transaction's first read (see
        // `Db::exec_later`): the server runs it first, and the read's
        // snapshot is taken after the locks are.
        PgDb(self).exec_later(
            "SELECT count(pg_advisory_xact_lock(?1, k))
             FROM (SELECT k FROM unnest(string_to_array(?2, ',')::int4[]) AS k ORDER BY k) AS keys",
            &[Arg::Int(LOCK_SPACE.into()), Arg::Text(&keys.join(","))],
        )
    }

    /// Take a customer's lock for the transaction if nobody holds it; false
    /// when another transaction does.
    fn try_lock_customer(&self, customer: &str) -> anyhow::Result<bool> {
        Ok(sql::one(
            &mut PgDb(self),
            "SELECT pg_try_advisory_xact_lock(?1, ?2)",
            &[
                Arg::Int(LOCK_SPACE.into()),
                Arg::Int(customer_key(customer).into()),
            ],
            |r| r.flag(0),
        )?
        .unwrap_or(false))
    }

    /// Take one of the store's own locks for the transaction.
    pub(super) fn lock(&self, lock: Lock) -> anyhow::Result<()> {
        self.exec_dyn(
            "SELECT pg_advisory_xact_lock(?1, ?2)",
            &[Arg::Int(LOCK_SPACE.into()), Arg::Int(lock as i64)],
        )?;
        Ok(())
    }

    /// `serve`'s writes wait at most `wait` for another writer's lock.
    pub(crate) fn serve_lock_wait(&self, wait: Duration) -> anyhow::Result<()> {
        self.set(format!("SET lock_timeout = {}", wait.as_millis().max(1)))
            .map_err(|e| self.failed(e))?;
        self.server_wait.set(Some(wait));
        Ok(())
    }

    /// `serve`'s durability: each commit is on disk when it returns.
    pub(crate) fn sync_every_commit(&self) -> anyhow::Result<()> {
        self.set("SET synchronous_commit = on".to_owned())
            .map_err(|e| self.failed(e))
    }

    /// Whether this role may write the store's tables.
    pub(crate) fn check_writable(&self) -> anyhow::Result<()> {
        let mut missing = Vec::new();
        for table in ["customers", "subscriptions", "events", "sync_state"] {
            let may: Option<bool> = sql::one(
                &mut PgDb(self),
                "SELECT has_table_privilege(?1, 'INSERT, UPDATE')",
                &[Arg::Text(&format!("{SCHEMA}.{table}"))],
                |r| r.flag(0),
            )?;
            if may != Some(true) {
                missing.push(table);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(self.describe(format!(
            "read-only: this role may not write {} in schema {SCHEMA} (grant it INSERT and \
             UPDATE, or use a role that owns the schema)",
            missing.join(", ")
        )))
    }
}

/// A store may be dropped anywhere, even in an async task (`serve`
/// closing its `--live` reader), where tokio refuses to drop a runtime the
/// blocking way: this one is let go without waiting. The connection's task
/// goes with it; the server ends the session when the socket closes.
impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The store's connection as the write path's [`Db`], inside a
/// transaction [`PgStore::transaction`] opened.
pub(crate) struct PgDb<'s>(pub(super) &'s PgStore);

impl Db for PgDb<'_> {
    fn exec(&mut self, sql: &'static str, args: &[Arg<'_>]) -> anyhow::Result<u64> {
        self.0.exec_dyn(sql, args)
    }

    fn exec_later(&mut self, sql: &'static str, args: &[Arg<'_>]) -> anyhow::Result<()> {
        let args = args.iter().map(Held::of).collect();
        self.0.held.borrow_mut().push((sql, args));
        Ok(())
    }

    fn each(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
        f: &mut dyn FnMut(&dyn sql::Row) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        self.0.each_dyn(sql, args, f)
    }
}

/// An [`Arg`] of a held statement, owned until it is sent.
#[derive(Debug, Clone)]
enum Held {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
}

impl Held {
    fn of(a: &Arg<'_>) -> Held {
        match *a {
            Arg::Null => Held::Null,
            Arg::Int(v) => Held::Int(v),
            Arg::Text(t) => Held::Text(t.to_owned()),
            Arg::Bool(b) => Held::Bool(b),
        }
    }

    fn arg(&self) -> Arg<'_> {
        match self {
            Held::Null => Arg::Null,
            Held::Int(v) => Arg::Int(*v),
            Held::Text(t) => Arg::Text(t),
            Held::Bool(b) => Arg::Bool(*b),
        }
    }
}

/// A value bound to a placeholder, in the type the statement has there:
/// the store's statements are written once for both engines, and
/// PostgreSQL types each placeholder from its place (a flag column is
/// `boolean`, a count `bigint`).
#[derive(Debug)]
struct PgArg<'a>(Arg<'a>);

impl ToSql for PgArg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let int = |v: i64, out: &mut bytes::BytesMut| match *ty {
            Type::INT8 => v.to_sql(ty, out),
            Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
            Type::BOOL => (v != 0).to_sql(ty, out),
            Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
            _ => Err(format!("an integer cannot be bound to a {ty} parameter").into()),
        };
        match self.0 {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(v) => int(v, out),
            Arg::Bool(b) => match *ty {
                Type::BOOL => b.to_sql(ty, out),
                _ => int(i64::from(b), out),
            },
            Arg::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A row of PostgreSQL's as a [`sql::Row`]: flags read as 0 or 1.
struct PgRow(tokio_postgres::Row);

impl sql::Row for PgRow {
    fn text(&self, i: usize) -> anyhow::Result<Option<&str>> {
        Ok(self.0.try_get::<_, Option<&str>>(i)?)
    }

    fn int(&self, i: usize) -> anyhow::Result<Option<i64>> {
        let ty = self
            .0
            .columns()
            .get(i)
            .map(|c| c.type_().clone())
            .ok_or_else(|| anyhow!("no column {i}"))?;
        Ok(match ty {
            Type::INT8 => self.0.try_get::<_, Option<i64>>(i)?,
            Type::INT4 => self.0.try_get::<_, Option<i32>>(i)?.map(i64::from),
            Type::INT2 => self.0.try_get::<_, Option<i16>>(i)?.map(i64::from),
            Type::BOOL => self.0.try_get::<_, Option<bool>>(i)?.map(i64::from),
            other => anyhow::bail!("column {i} is {other}, not a number"),
        })
    }
}

/// A processed event, kept until the end of its transaction.
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    id: String,
    kind: String,
    created: i64,
    route: &'static str,
    user_id: Option<String>,
    customer_id: Option<String>,
}

impl Logged {
    pub(super) fn of(e: &super::LoggedEvent<'_>) -> Logged {
        Logged {
            id: e.id.to_owned(),
            kind: e.kind.to_owned(),
            created: e.created,
            route: e.route,
            user_id: e.user_id.map(str::to_owned),
            customer_id: e.customer_id.map(str::to_owned),
        }
    }
}

impl PgStore {
    /// One scalar query's answer.
    fn value<T>(
        &self,
        sql: &'static str,
        args: &[Arg<'_>],
        read: impl FnOnce(&dyn sql::Row) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        sql::one(&mut PgDb(self), sql, args, read).map_err(|e| self.failed(e))
    }

    pub(crate) fn event_seen(&self, id: &str) -> anyhow::Result<bool> {
        reads::event_seen(&mut PgDb(self), id).map_err(|e| self.failed(e))
    }

    #[cfg(test)]
    pub(crate) fn count_events(&self) -> anyhow::Result<i64> {
        reads::count_events(&mut PgDb(self)).map_err(|e| self.failed(e))
    }

    pub(crate) fn has_events(&self) -> anyhow::Result<bool> {
        reads::has_events(&mut PgDb(self)).map_err(|e| self.failed(e))
    }

    pub(crate) fn has_customers(&self) -> anyhow::Result<bool> {
        reads::has_customers(&mut PgDb(self)).map_err(|e| self.failed(e))
    }

    pub(crate) fn customer_user(&self, customer_id: &str) -> anyhow::Result<super::Known> {
        reads::customer_user(&mut PgDb(self), customer_id).map_err(|e| self.failed(e))
    }

    pub(crate) fn customer_known(&self, customer_id: &str) -> anyhow::Result<bool> {
        reads::customer_known(&mut PgDb(self), customer_id).map_err(|e| self.failed(e))
    }

    pub(crate) fn customers_of_user(&self, user_id: &str) -> anyhow::Result<Vec<String>> {
        reads::customers_of_user(&mut PgDb(self), user_id).map_err(|e| self.failed(e))
    }

    pub(crate) fn mapping_of(&self, customer_id: &str) -> anyhow::Result<Option<MappingRow>> {
        super::mapping::mapping_for(&mut PgDb(self), customer_id).map_err(|e| self.failed(e))
    }

    /// The rows a filter shows, in order, streamed; both halves of the
    /// mapping from one snapshot. An error of `each` (a closed pipe) is
    /// passed on as it is.
    pub(crate) fn for_each_mapping(
        &self,
        f: &Filter,
        mut each: impl FnMut(&MappingRow) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut stopped = None;
        let mut shown = 0;
        let mut walk = || -> anyhow::Result<()> {
            self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
            let mut row = MappingRow::default();
            for (query, values) in super::mapping::whole_queries(f) {
                let args: Vec<Arg<'_>> = values.into_iter().map(Arg::Text).collect();
                self.each_dyn(&query, &args, &mut |r| {
                    super::mapping::read_mapping(r, &mut row)?;
                    if let Err(e) = each(&row) {
                        stopped = Some(e);
                        return Ok(false);
                    }
                    shown += 1;
                    Ok(true)
                })?;
                if stopped.is_some() {
                    break;
                }
            }
            self.batch("COMMIT")
        };
        let walked = walk();
        if let Some(e) = stopped {
            self.rollback();
            return Err(e);
        }
        walked.map_err(|e| {
            self.rollback();
            self.failed(e)
        })?;
        Ok(shown)
    }

    pub(crate) fn for_each_billing_customer(
        &self,
        bills: impl Fn(&str) -> bool,
        each: impl FnMut(&str),
    ) -> anyhow::Result<()> {
        reads::for_each_billing_customer(&mut PgDb(self), bills, each).map_err(|e| self.failed(e))
    }

    pub(crate) fn billing_subscriptions_of(
        &self,
        user_id: &str,
        bills: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<String>> {
        reads::billing_subscriptions_of(&mut PgDb(self), user_id, bills).map_err(|e| self.failed(e))
    }

    pub(crate) fn last_subscription(
        &self,
        customer_id: &str,
    ) -> anyhow::Result<Option<(SubscriptionRecord, bool)>> {
        reads::last_subscription(&mut PgDb(self), customer_id).map_err(|e| self.failed(e))
    }

    /// Write whole customers in one transaction, each under its lock.
    pub(crate) fn apply(&mut self, writes: &[CustomerWrite]) -> anyhow::Result<Vec<WriteOutcome>> {
        let ids: Vec<&str> = writes.iter().map(|w| w.customer_id.as_str()).collect();
        let now = super::now_rfc3339();
        self.transaction(&ids, |db| {
            let mut writer = Writer::on(PgDb(db.0), &now);
            writes.iter().map(|w| writer.apply(w)).collect()
        })
    }

    /// Log processed events as `f` finds them; they are written sorted by
    /// id when `f` returns, in one transaction.
    pub(crate) fn logging<T>(
        &mut self,
        f: impl FnOnce(&mut EventLogger<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut logger = EventLogger::Postgres(Vec::new());
        let out = f(&mut logger)?;
        let EventLogger::Postgres(mut kept) = logger else {
            unreachable!("made above")
        };
        kept.sort_by(|a, b| a.id.cmp(&b.id));
        let now = super::now_rfc3339();
        self.transaction(&[], |db| {
            for chunk in kept.chunks(PIPELINE) {
                let rows: Vec<[Arg<'_>; 7]> = chunk
                    .iter()
                    .map(|e| {
                        args![
                            &e.id,
                            &e.kind,
                            e.created,
                            e.route,
                            &e.user_id,
                            &e.customer_id,
                            now.as_str()
                        ]
                    })
                    .collect();
                db.0.exec_pipelined(super::LOG_EVENT, &rows)?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    pub(crate) fn backfill(&self) -> anyhow::Result<Option<checkpoint::Backfill>> {
        checkpoint::load_backfill(&mut PgDb(self)).map_err(|e| self.failed(e))
    }

    /// Start a fresh backfill pass (see `SqliteStore::begin_backfill`).
    pub(crate) fn begin_backfill(
        &mut self,
        started_at: i64,
    ) -> anyhow::Result<checkpoint::Backfill> {
        self.transaction(&[], |db| {
            db.0.lock(Lock::Serial)?;
            let b = checkpoint::Backfill::new(started_at, checkpoint::next_serial(db)?);
            checkpoint::clear_backfill(db)?;
            checkpoint::save_backfill(db, &b)?;
            Ok(b)
        })
    }

    pub(crate) fn events_checkpoint(&self) -> anyhow::Result<Option<checkpoint::Events>> {
        checkpoint::load_events(&mut PgDb(self)).map_err(|e| self.failed(e))
    }

    /// Move the events checkpoint forward (never back), under the serial
    /// lock: two followers move it one after the other.
    pub(crate) fn advance_events_checkpoint(
        &mut self,
        e: &checkpoint::Events,
    ) -> anyhow::Result<()> {
        self.transaction(&[], |db| {
            db.0.lock(Lock::Serial)?;
            let current = checkpoint::load_events(db)?;
            if current.is_some_and(|c| (c.created, c.id.is_some()) > (e.created, e.id.is_some())) {
                return Ok(());
            }
            checkpoint::save_events(db, e)
        })
    }

    pub(crate) fn caught_up_at(&self) -> anyhow::Result<Option<i64>> {
        checkpoint::load_caught_up(&mut PgDb(self)).map_err(|e| self.failed(e))
    }

    pub(crate) fn mark_caught_up(&mut self, at: i64) -> anyhow::Result<()> {
        self.transaction(&[], |db| checkpoint::save_caught_up(db, at))
    }

    pub(crate) fn end_backfill(&mut self) -> anyhow::Result<()> {
        self.transaction(&[], |db| checkpoint::clear_backfill(db))
    }

    /// After the complete pass `pass`, what it proves about up to `limit`
    /// customers after the one at `after` in store order (see
    /// `SqliteStore::backfill_unlisted`).
    pub(crate) fn backfill_unlisted(
        &self,
        pass: i64,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<(Vec<(String, Unlisted)>, i64)> {
        let mut last = after;
        let mut found = Vec::new();
        self.each_dyn(
            "SELECT rowid, id, listed_pass IS NOT DISTINCT FROM ?1,
                    subscription_id IS NOT NULL AND first_sub_pass IS DISTINCT FROM ?1
             FROM customers
             WHERE rowid > ?2 AND NOT deleted
               AND (listed_pass IS DISTINCT FROM ?1
                    OR (subscription_id IS NOT NULL AND first_sub_pass IS DISTINCT FROM ?1))
             ORDER BY rowid LIMIT ?3",
            &[Arg::Int(pass), Arg::Int(after), Arg::Int(limit as i64)],
            &mut |r| {
                last = r.int(0)?.unwrap_or(last);
                let id = r.string(1)?.unwrap_or_default();
                if !r.flag(2)? {
                    found.push((id.clone(), Unlisted::Customer));
                }
                if r.flag(3)? {
                    found.push((id, Unlisted::Subscriptions));
                }
                Ok(true)
            },
        )
        .map_err(|e| self.failed(e))?;
        Ok((found, last))
    }

    /// Take the backfill lock for this session (released when the
    /// process ends or its connection drops), unless another session holds
    /// it: then who does, in words.
    pub(crate) fn try_backfill_lock(&self) -> anyhow::Result<Option<String>> {
        let got = self
            .value(
                "SELECT pg_try_advisory_lock(?1, ?2)",
                &[Arg::Int(LOCK_SPACE.into()), Arg::Int(Lock::Backfill as i64)],
                |r| r.flag(0),
            )?
            .unwrap_or(false);
        if got {
            return Ok(None);
        }
        let holder = self.value(
            "SELECT a.pid, NULLIF(a.application_name, ''), host(a.client_addr),
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
               AND l.classid::text::bigint = ?1 AND l.objid::text::bigint = ?2
             LIMIT 1",
            &[Arg::Int(LOCK_SPACE.into()), Arg::Int(Lock::Backfill as i64)],
            |r| {
                // What a role may not see of another role's session reads NULL.
                let mut who = format!("server process {}", r.int(0)?.unwrap_or(0));
                let known: Vec<String> = [
                    r.text(1)?.map(|a| format!("`{a}`")),
                    r.text(2)?.map(|h| format!("from {h}")),
                    r.text(3)?.map(|t| format!("connected {t} UTC")),
                ]
                .into_iter()
                .flatten()
                .collect();
                if !known.is_empty() {
                    who.push_str(&format!(" ({})", known.join(", ")));
                }
                Ok(who)
            },
        )?;
        Ok(Some(holder.unwrap_or_else(|| "another session".to_owned())))
    }

    /// Start a backfill run: its number, and an empty journal (a temporary
    /// table of this session's) of the mappings it changes.
    pub(crate) fn begin_run(&mut self) -> anyhow::Result<i64> {
        let run = self.transaction(&[], |db| {
            db.0.lock(Lock::Serial)?;
            checkpoint::next_serial(db)
        })?;
        self.batch(JOURNAL).map_err(|e| self.failed(e))?;
        Ok(run)
    }

    /// A backfill's writes (see `SqlitePassWrites`): pages go into one
    /// open transaction until the caller commits.
    pub(crate) fn pass_writes<T, E: From<anyhow::Error>>(
        &mut self,
        marks: PassMarks,
        f: impl FnOnce(&mut PgPassWrites<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut writes = PgPassWrites {
            store: self,
            writer: Writer::on(PgDb(self), ""),
            marks,
            open: false,
            locked: 0,
        };
        let out = f(&mut writes);
        let committed = writes.commit();
        drop(writes);
        let out = out?;
        committed?;
        Ok(out)
    }

    /// How many customers the run wrote.
    pub(crate) fn run_len(&self, run: i64) -> anyhow::Result<u64> {
        Ok(self
            .value(
                "SELECT count(*) FROM customers WHERE written_run = ?1",
                &[Arg::Int(run)],
                |r| r.int(0),
            )?
            .flatten()
            .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Up to `limit` customers the run wrote, after `after` by id, each
    /// with its mapping before the run (its first journal row) and now.
    pub(crate) fn run_page(
        &self,
        run: i64,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, WriteOutcome)>> {
        let mut rows = Vec::new();
        self.each_dyn(
            REPORT_PAGE.as_str(),
            &[
                Arg::Int(run),
                Arg::Text(after.unwrap_or("")),
                Arg::Int(limit as i64),
            ],
            &mut |r| {
                rows.push(super::write::read_report(r)?);
                Ok(true)
            },
        )
        .map_err(|e| self.failed(e))?;
        Ok(rows)
    }

    /// Fill `copy` (an SQLite store, empty and migrated) with this store's
    /// rows: a dry run or `--check` on a PostgreSQL store runs on it.
    pub(crate) fn copy_into(&self, copy: &SqliteStore) -> anyhow::Result<()> {
        let conn = &copy.conn;
        let tx = conn.unchecked_transaction()?;
        self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| self.failed(e))?;
        let copied = (|| -> anyhow::Result<()> {
            for (table, columns) in COPIED {
                // Customers in the order they were written, as SQLite's
                // rowid keeps them (the settling of a pass walks that order).
                let order = if *table == "customers" { "rowid" } else { "1" };
                let select = format!("SELECT {columns} FROM {table} ORDER BY {order}");
                let n = columns.split(',').count();
                let marks: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
                let mut insert = tx.prepare(&format!(
                    "INSERT INTO {table} ({columns}) VALUES ({})",
                    marks.join(", ")
                ))?;
                self.each_dyn(&select, &[], &mut |r| {
                    let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(n);
                    for i in 0..n {
                        values.push(match r.int(i) {
                            Ok(Some(v)) => rusqlite::types::Value::Integer(v),
                            Ok(None) => rusqlite::types::Value::Null,
                            Err(_) => match r.string(i)? {
                                Some(t) => rusqlite::types::Value::Text(t),
                                None => rusqlite::types::Value::Null,
                            },
                        });
                    }
                    insert.execute(rusqlite::params_from_iter(values))?;
                    Ok(true)
                })?;
            }
            Ok(())
        })();
        let _ = self.batch("COMMIT");
        copied.map_err(|e| self.failed(e))?;
        tx.commit()?;
        Ok(())
    }
}

/// The tables a copy takes, with their columns (customers in the order
/// they came: SQLite numbers them again as it inserts).
const COPIED: &[(&str, &str)] = &[
    (
        "customers",
        "id, user_id, user_key, email, deleted, snapshot_at, source, synced_at, \
         subscription_id, current_at, listed_pass, first_sub_pass, written_run, \
         snapshot_event, snapshot_stage, snapshot_previous",
    ),
    (
        "subscriptions",
        "id, customer_id, status, price_id, current_period_start, current_period_end, \
         cancel_at_period_end, payment_method_id, card_brand, card_last4, created, \
         snapshot_at, source, synced_at, snapshot_event, snapshot_stage, snapshot_previous",
    ),
    (
        "events",
        "id, type, created, route, user_id, customer_id, processed_at",
    ),
    ("sync_state", "key, value"),
];

/// The run's journal, a temporary table of the session (see
/// `write::JOURNAL`): the mapping of each customer the store had, from
/// before the run's first write of it.
const JOURNAL: &str = r#"
CREATE TEMP TABLE IF NOT EXISTS pass_journal (
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY,
    customer_id          TEXT COLLATE "C" NOT NULL,
    user_id              TEXT,
    email                TEXT,
    subscription_id      TEXT,
    status               TEXT NOT NULL,
    price_id             TEXT,
    current_period_start BIGINT,
    current_period_end   BIGINT,
    cancel_at_period_end BOOLEAN NOT NULL,
    card_brand           TEXT,
    card_last4           TEXT,
    synced_at            TEXT NOT NULL,
    source               TEXT NOT NULL,
    deleted              BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS pass_journal_customer ON pass_journal (customer_id, seq);
TRUNCATE pass_journal;
"#;

/// A page of a run's report: the mapping now, then the customer's first
/// journal row (see `write::read_report`).
static REPORT_PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} , j.customer_id, j.user_id, j.email, j.subscription_id, j.status,
                j.price_id, j.current_period_start, j.current_period_end,
                j.cancel_at_period_end, j.card_brand, j.card_last4, j.synced_at, j.source,
                j.deleted
         {}
         LEFT JOIN LATERAL (SELECT * FROM pass_journal pj WHERE pj.customer_id = c.id
                            ORDER BY pj.seq LIMIT 1) j ON true
         WHERE c.written_run = ?1 AND c.id > ?2 ORDER BY c.id LIMIT ?3",
        super::mapping::MAPPING_SELECT,
        super::mapping::FROM,
    )
});

/// A backfill's writes on PostgreSQL (see `SqlitePassWrites`): each page
/// is written under its customers' locks, with its checkpoint.
pub(crate) struct PgPassWrites<'c> {
    store: &'c PgStore,
    writer: Writer<PgDb<'c>>,
    marks: PassMarks,
    open: bool,
    /// Customers' locks the open transaction holds (see [`LOCKS_PER_COMMIT`]).
    locked: usize,
}

/// The most customers' locks a backfill's transaction holds before it
/// commits. Advisory locks live in the server's shared lock table (about
/// 6,400 entries at PostgreSQL's defaults, for every session at once), and
/// a pass that committed only when the backfill decides (every few
/// seconds) took thousands: "out of shared memory" on a fast machine.
const LOCKS_PER_COMMIT: usize = 256;

impl PgPassWrites<'_> {
    /// Write a page into the open transaction (opening one if needed).
    /// Each customer is written under its lock; a lock another writer
    /// holds (a `serve` beside the backfill) is waited for only after
    /// committing what this transaction wrote, so the pass never waits
    /// while holding locks: it can be in no deadlock, and is never the
    /// transaction PostgreSQL aborts to end one. (The commit is early, not
    /// wrong: every write is whole, and a resume writes again what its
    /// checkpoint had not reached.)
    pub(crate) fn write(&mut self, page: &PassPage<'_>) -> anyhow::Result<()> {
        let store = self.store;
        let marks = self.marks;
        let written = (|| -> anyhow::Result<()> {
            if !self.open {
                store.batch("BEGIN")?;
                self.open = true;
                self.writer.set_now(super::now_rfc3339());
            }
            for w in page.writes {
                if self.locked >= LOCKS_PER_COMMIT {
                    store.batch("COMMIT; BEGIN")?;
                    self.locked = 0;
                }
                if !store.try_lock_customer(&w.customer_id)? {
                    store.batch("COMMIT; BEGIN")?;
                    store.lock_customers(&[&w.customer_id])?;
                    self.locked = 0;
                }
                self.locked += 1;
                self.writer.apply_journaled(w, marks, page.listed)?;
            }
            if let Some(b) = page.checkpoint {
                checkpoint::save_backfill(&mut PgDb(store), b)?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            self.open = false;
            self.locked = 0;
            store.rollback();
            return Err(store.failed(e));
        }
        Ok(())
    }

    pub(crate) fn commit(&mut self) -> anyhow::Result<()> {
        self.locked = 0;
        if self.open {
            self.open = false;
            self.store
                .batch("COMMIT")
                .map_err(|e| self.store.failed(e))?;
        }
        Ok(())
    }
}

impl Drop for PgPassWrites<'_> {
    fn drop(&mut self) {
        if self.open {
            self.store.rollback();
        }
    }
}
