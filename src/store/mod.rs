//! The SQLite store: customers, their subscriptions, the processed-event log
//! and backfill checkpoints. One transaction per synced customer, so a crash
//! never leaves half a customer; an older snapshot never overwrites a newer.

pub(crate) mod checkpoint;
pub mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::objects::{Card, SubscriptionRecord};

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSource {
    Api,
    Events,
}

impl RecordSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordSource::Api => "api",
            RecordSource::Events => "events",
        }
    }
}

/// A customer's identity as one source saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerInfo {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub deleted: bool,
    /// When this view was true (event `created`, or fetch time). `None`: the
    /// user id was only inferred from an event, so it fills a blank but never
    /// replaces what the customer object said.
    pub snapshot_at: Option<i64>,
}

/// Which subscription the customer's mapping shows, as the source knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Current {
    /// The API listed this one first (`status=all&limit=1`), or none at all:
    /// the rule itself, as of the write's snapshot time.
    Listed(Option<String>, i64),
    /// The backfill's listing (newest first, ties in the API's order): the
    /// first subscription of the customer seen in this pass is its current one.
    FirstInPass(String, i64),
    /// Offline replay: the newest `created` among what the store and the
    /// inputs know; on a tie the current pointer stays, else the greater id.
    Newest,
    /// The source says nothing about subscriptions (a customers page).
    Keep,
}

/// Everything one sync writes for one customer, in one transaction.
#[derive(Debug, Clone)]
pub(crate) struct CustomerWrite {
    pub customer_id: String,
    pub info: CustomerInfo,
    pub user_key: String,
    /// Subscription snapshots with the time each was true.
    pub subscriptions: Vec<(SubscriptionRecord, i64)>,
    pub current: Current,
    pub source: RecordSource,
}

/// Backfill bookkeeping written in the same transaction as a page.
#[derive(Debug, Clone, Default)]
pub(crate) struct PassStep<'a> {
    /// The checkpoint after this page.
    pub checkpoint: Option<&'a checkpoint::Backfill>,
    /// Customers the listing showed (the rest are deleted after a full pass).
    pub seen: Vec<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub id: String,
    pub kind: String,
    pub created: i64,
    pub route: &'static str,
    pub user_id: Option<String>,
    pub customer_id: Option<String>,
}

/// One row of the user -> customer -> subscription mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingRow {
    pub user_id: Option<String>,
    pub customer_id: String,
    pub email: Option<String>,
    pub subscription_id: Option<String>,
    pub status: String,
    pub price_id: Option<String>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub payment_method: Option<Card>,
    pub synced_at: String,
    pub source: String,
    pub deleted: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub users: Vec<String>,
    pub customers: Vec<String>,
    pub statuses: Vec<String>,
    pub unmapped: bool,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn describe(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("store {}: {e}", path.display())
}

/// The one writer prepares about 20 statements; rusqlite keeps 16 by
/// default, and a cache that thrashes re-parses SQL on every customer.
/// The query planner's stability guarantee, too: without it SQLite
/// re-prepares (re-parses) the mapping query at every step after new
/// bindings, which profiling showed as most of a server's SQL time.
fn cache_statements(conn: &Connection) {
    conn.set_prepared_statement_cache_capacity(64);
    let _ = conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    );
}

/// How long a write waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

fn not_a_directory(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        return Err(describe(
            path,
            "is a directory: --db names the store's file (e.g. --db stripe-sync.db)",
        ));
    }
    Ok(())
}

impl Store {
    /// Open for writing, creating (mode 0600) and migrating as needed.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        not_a_directory(path)?;
        if !path.exists() {
            create_private(path).map_err(|e| describe(path, format!("cannot create: {e}")))?;
        }
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| describe(path, format!("cannot open: {e}")))?;
        configure(&conn).map_err(|e| describe(path, unusable(&e)))?;
        schema::migrate(&mut conn).map_err(|e| describe(path, unusable_schema(&e)))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Open an existing store for reading; `None` when there is no file (or
    /// an empty one). Works on a read-only file or directory: when SQLite
    /// cannot create the WAL's shared-memory file there, the store is read
    /// as immutable (nobody can be writing to it either).
    pub fn open_read_only(path: &Path) -> anyhow::Result<Option<Store>> {
        not_a_directory(path)?;
        if !path.exists() {
            return Ok(None);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // SQLite's own failures may be retried as immutable; a schema verdict
        // (foreign, too new) is final.
        type Checked = (Connection, Result<i64, schema::SchemaError>);
        let attempt = |conn: Connection| -> Result<Checked, rusqlite::Error> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            match schema::check(&conn) {
                Err(schema::SchemaError::Sqlite(e)) => Err(e),
                checked => Ok((conn, checked)),
            }
        };
        // A connection that may write (but is told not to) cleans up the
        // WAL's side files when it closes last; a read-only one cannot, so it
        // is the fallback for files and directories we may not write.
        let query_only = |conn: Connection| -> Result<Checked, rusqlite::Error> {
            conn.execute_batch("PRAGMA query_only = 1;")?;
            attempt(conn)
        };
        let opened = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(query_only)
        .or_else(|_| Connection::open_with_flags(path, flags).and_then(attempt));
        let (conn, checked) = match opened {
            Ok(ok) => ok,
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
                ) =>
            {
                Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)
                    .and_then(attempt)
                    .map_err(|e| describe(path, read_error(&e)))?
            }
            Err(e) => return Err(describe(path, read_error(&e))),
        };
        let version = checked.map_err(|e| describe(path, unusable_schema(&e)))?;
        if version == 0 {
            // An empty file: nothing stored yet.
            return Ok(None);
        }
        Ok(Some(Store {
            conn,
            path: path.to_path_buf(),
        }))
    }

    /// A private in-memory copy of the store (empty when there is no file):
    /// dry runs and `--check` run the real writes there, so the file is
    /// never touched, not even by a migration.
    pub fn open_copy(path: &Path) -> anyhow::Result<Store> {
        let Some(file) = Store::open_read_only(path)? else {
            let mut s = Store::in_memory()?;
            s.path = path.to_path_buf();
            return Ok(s);
        };
        let mut conn = Connection::open_in_memory()?;
        cache_statements(&conn);
        rusqlite::backup::Backup::new(&file.conn, &mut conn)
            .and_then(|b| b.run_to_completion(1024, Duration::ZERO, None))
            .map_err(|e| describe(path, unusable(&e)))?;
        drop(file);
        schema::migrate(&mut conn).map_err(|e| describe(path, unusable_schema(&e)))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> anyhow::Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        cache_statements(&conn);
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn,
            path: PathBuf::from(":memory:"),
        })
    }

    /// Fold the WAL back into the file and close, so a normal exit leaves no
    /// `-wal`/`-shm` files when nothing else holds the store.
    pub fn close(self) {
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = self.conn.close();
    }

    pub fn event_seen(&self, id: &str) -> anyhow::Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM events WHERE id = ?1")?;
        Ok(st.exists([id])?)
    }

    /// Whether any event has been logged yet.
    pub fn has_events(&self) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT EXISTS(SELECT 1 FROM events)", [], |r| r.get(0))?)
    }

    /// What the store knows of a customer's user.
    pub(crate) fn customer_user(&self, customer_id: &str) -> anyhow::Result<Known> {
        let mut st = self
            .conn
            .prepare_cached("SELECT user_id FROM customers WHERE id = ?1")?;
        Ok(
            match st
                .query_row([customer_id], |r| r.get::<_, Option<String>>(0))
                .optional()?
            {
                None => Known::Unknown,
                Some(None) => Known::Unmapped,
                Some(Some(u)) => Known::User(u),
            },
        )
    }

    pub fn customer_known(&self, customer_id: &str) -> anyhow::Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM customers WHERE id = ?1")?;
        Ok(st.exists([customer_id])?)
    }

    /// Customers the store maps to a user.
    pub fn customers_of_user(&self, user_id: &str) -> anyhow::Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id FROM customers WHERE user_id = ?1 ORDER BY id")?;
        let rows = st.query_map([user_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn mapping(&self, f: &Filter) -> anyhow::Result<Vec<MappingRow>> {
        let mut rows = Vec::new();
        let mut st = self.conn.prepare(&format!(
            "{MAPPING_SELECT} ORDER BY c.user_id IS NULL, c.user_id, c.id"
        ))?;
        let iter = st.query_map([], mapping_row)?;
        for row in iter {
            let row = row?;
            if (!f.users.is_empty() && !row.user_id.as_ref().is_some_and(|u| f.users.contains(u)))
                || (!f.customers.is_empty() && !f.customers.contains(&row.customer_id))
                || (!f.statuses.is_empty() && !f.statuses.contains(&row.status))
                || (f.unmapped && row.user_id.is_some())
            {
                continue;
            }
            rows.push(row);
        }
        Ok(rows)
    }

    pub fn mapping_of(&self, customer_id: &str) -> anyhow::Result<Option<MappingRow>> {
        mapping_for(&self.conn, customer_id)
    }

    /// The backfill in progress, if any.
    pub(crate) fn backfill(&self) -> anyhow::Result<Option<checkpoint::Backfill>> {
        Ok(checkpoint::load_backfill(&self.conn)?)
    }

    /// Start a fresh backfill pass: forget the last pass's bookkeeping.
    pub(crate) fn begin_backfill(&mut self, b: &checkpoint::Backfill) -> anyhow::Result<()> {
        let path = self.path.clone();
        let run = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch("DELETE FROM backfill_seen; DELETE FROM backfill_subs_seen;")?;
            checkpoint::clear_backfill(&tx)?;
            checkpoint::save_backfill(&tx, b)?;
            tx.commit()
        };
        run(&mut self.conn).map_err(|e| describe(&path, unusable(&e)))
    }

    /// Where `resync --events` resumes, if anywhere.
    pub(crate) fn events_checkpoint(&self) -> anyhow::Result<Option<checkpoint::Events>> {
        Ok(checkpoint::load_events(&self.conn)?)
    }

    /// Move the events checkpoint forward (never back).
    pub(crate) fn advance_events_checkpoint(
        &mut self,
        e: &checkpoint::Events,
    ) -> anyhow::Result<()> {
        let path = self.path.clone();
        let current = checkpoint::load_events(&self.conn)?;
        if current.is_some_and(|c| (c.created, c.id.is_some()) > (e.created, e.id.is_some())) {
            return Ok(());
        }
        checkpoint::save_events(&self.conn, e).map_err(|err| describe(&path, unusable(&err)))
    }

    /// The backfill finished: forget its checkpoint.
    pub(crate) fn end_backfill(&mut self) -> anyhow::Result<()> {
        let path = self.path.clone();
        checkpoint::clear_backfill(&self.conn).map_err(|e| describe(&path, unusable(&e)))
    }

    /// After a complete pass: customers (not yet deleted) the listing did not
    /// show, and customers none of whose subscriptions it listed.
    pub(crate) fn backfill_unseen(&self) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let ids = |sql: &str| -> anyhow::Result<Vec<String>> {
            let mut st = self.conn.prepare(sql)?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        Ok((
            ids("SELECT id FROM customers WHERE deleted = 0
                 AND id NOT IN (SELECT customer_id FROM backfill_seen) ORDER BY id")?,
            ids(
                "SELECT id FROM customers WHERE deleted = 0 AND subscription_id IS NOT NULL
                 AND id NOT IN (SELECT customer_id FROM backfill_subs_seen) ORDER BY id",
            )?,
        ))
    }

    /// Write whole customers (and backfill bookkeeping) in one transaction.
    /// Only the sync engine calls this: it is the one writer of customers
    /// and subscriptions. A write that changes nothing touches no row.
    pub(crate) fn apply(
        &mut self,
        writes: &[CustomerWrite],
        step: &PassStep<'_>,
    ) -> anyhow::Result<Vec<WriteOutcome>> {
        self.in_transaction(|tx, now| {
            let mut outcomes = Vec::with_capacity(writes.len());
            for w in writes {
                outcomes.push(apply(tx, w, now)?);
            }
            for c in &step.seen {
                tx.prepare_cached("INSERT OR IGNORE INTO backfill_seen(customer_id) VALUES (?1)")?
                    .execute([c])?;
            }
            if let Some(b) = step.checkpoint {
                checkpoint::save_backfill(tx, b)?;
            }
            Ok(outcomes)
        })
    }

    /// One write transaction (`BEGIN IMMEDIATE`: the write lock is taken
    /// first, so a concurrent writer waits instead of failing on upgrade);
    /// SQLite's errors come back in words that name the store.
    fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&Connection, &str) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| describe(&path, unusable(&e)))?;
        let out = f(&tx, &now_rfc3339()).map_err(|e| name_store_error(&path, e))?;
        tx.commit().map_err(|e| describe(&path, unusable(&e)))?;
        Ok(out)
    }

    /// Log processed events, in one transaction.
    pub(crate) fn log_events(&mut self, events: &[LoggedEvent]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.in_transaction(|tx, now| {
            for e in events {
                log_event(tx, e, now)?;
            }
            Ok(())
        })
    }
}

/// What the store knows of a customer's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Known {
    /// The customer is not in the store.
    Unknown,
    /// The customer is stored, without a user id in its metadata.
    Unmapped,
    User(String),
}

fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'%' | b'?' | b'#' => uri.push_str(&format!("%{b:02X}")),
            _ => uri.push(b as char),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// A failure to read the store, in words (a read never needs write access).
fn read_error(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::CannotOpen) => {
            "cannot open the file for reading (check the path and permissions)".into()
        }
        _ => unusable(e),
    }
}

/// SQLite errors from a write, turned into a message that names the store
/// and says what is wrong (read-only, disk full, busy, corrupt).
fn name_store_error(path: &Path, e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<rusqlite::Error>() {
        Some(se) => describe(path, unusable(se)),
        None => e,
    }
}

/// One customer's rows; the caller owns the transaction.
fn apply(tx: &Connection, w: &CustomerWrite, now: &str) -> anyhow::Result<WriteOutcome> {
    let before = mapping_for(tx, &w.customer_id)?;
    upsert_customer(tx, w, now)?;
    for (sub, snapshot_at) in &w.subscriptions {
        upsert_subscription(tx, sub, *snapshot_at, w.source, now)?;
    }
    set_current(tx, w, now)?;
    let after = mapping_for(tx, &w.customer_id)?;
    let changed = match (&before, &after) {
        (Some(b), Some(a)) => !same_mapping(b, a),
        _ => true,
    };
    Ok(WriteOutcome {
        before,
        after,
        changed,
    })
}

/// Point the customer at its current subscription, by the rule of the
/// write's source (see [`Current`]).
fn set_current(tx: &Connection, w: &CustomerWrite, now: &str) -> anyhow::Result<()> {
    let point = |sub: Option<&str>, at: Option<i64>| -> anyhow::Result<()> {
        tx.prepare_cached(
            "UPDATE customers SET subscription_id = ?2, current_at = ?3, synced_at = ?4
             WHERE id = ?1 AND (current_at IS NULL OR ?3 IS NULL OR current_at <= ?3)
               AND subscription_id IS NOT ?2",
        )?
        .execute(params![w.customer_id, sub, at, now])?;
        Ok(())
    };
    match &w.current {
        Current::Keep => Ok(()),
        Current::Listed(sub, at) => point(sub.as_deref(), Some(*at)),
        Current::FirstInPass(sub, at) => {
            let first = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO backfill_subs_seen(customer_id) VALUES (?1)",
                )?
                .execute([&w.customer_id])?;
            if first == 1 {
                point(Some(sub), Some(*at))?;
            }
            Ok(())
        }
        Current::Newest => {
            let current: Option<String> = tx
                .prepare_cached("SELECT subscription_id FROM customers WHERE id = ?1")?
                .query_row([&w.customer_id], |r| r.get(0))
                .optional()?
                .flatten();
            let mut st = tx.prepare_cached(
                "SELECT id FROM subscriptions WHERE customer_id = ?1 AND created =
                   (SELECT max(created) FROM subscriptions WHERE customer_id = ?1)
                 ORDER BY id DESC",
            )?;
            let tied: Vec<String> = st
                .query_map([&w.customer_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let pick = match &current {
                Some(c) if tied.contains(c) => Some(c.clone()),
                _ => tied.into_iter().next(),
            };
            if pick.is_some() {
                point(pick.as_deref(), None)?;
            }
            Ok(())
        }
    }
}

#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub before: Option<MappingRow>,
    pub after: Option<MappingRow>,
    pub changed: bool,
}

/// Mapping rows compare equal when everything but the sync time matches.
pub(crate) fn same_mapping(a: &MappingRow, b: &MappingRow) -> bool {
    let strip = |r: &MappingRow| MappingRow {
        synced_at: String::new(),
        source: String::new(),
        ..r.clone()
    };
    strip(a) == strip(b)
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .open(path)
        .map(|_| ())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    cache_statements(conn);
    // Switching a new file to WAL takes an exclusive lock that SQLite does
    // not wait for with the busy handler: two processes creating one store
    // at once would see SQLITE_BUSY at once. Wait for it here instead.
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5 + fastrand::u64(0..20)));
            }
            other => break other?,
        }
    }
    // A 16 MiB page cache keeps a large replay's random event-id inserts from
    // spilling and re-reading pages, within the replay's memory budget.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;")?;
    Ok(())
}

fn unusable(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            "not an SQLite database (is it the right file?)".into()
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => "the database file is corrupt".into(),
        Some(rusqlite::ErrorCode::ReadOnly) => {
            "read-only: cannot write the store (check its permissions)".into()
        }
        Some(rusqlite::ErrorCode::DiskFull) => "the disk is full; nothing was written".into(),
        Some(rusqlite::ErrorCode::CannotOpen) => {
            "cannot open the file (check the path and permissions)".into()
        }
        Some(rusqlite::ErrorCode::DatabaseBusy) => format!(
            "another process held the store's write lock for more than {} s; nothing was written, run the command again",
            BUSY_TIMEOUT.as_secs()
        ),
        _ => e.to_string(),
    }
}

fn unusable_schema(e: &schema::SchemaError) -> String {
    match e {
        schema::SchemaError::Sqlite(e) => unusable(e),
        other => other.to_string(),
    }
}

/// The mapping row: a deleted customer has no live subscription (Stripe
/// cancels them on deletion), so its status is `deleted` and its
/// subscription fields are empty.
const MAPPING_SELECT: &str = "
SELECT c.user_id, c.id, c.email, s.id,
       CASE WHEN c.deleted THEN 'deleted' ELSE COALESCE(s.status, 'none') END,
       s.price_id, s.current_period_start,
       s.current_period_end, s.cancel_at_period_end, s.card_brand, s.card_last4,
       COALESCE(s.synced_at, c.synced_at), COALESCE(s.source, c.source), c.deleted
FROM customers c
LEFT JOIN subscriptions s ON s.id = c.subscription_id AND c.deleted = 0";

fn mapping_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MappingRow> {
    let brand: Option<String> = r.get(9)?;
    let last4: Option<String> = r.get(10)?;
    Ok(MappingRow {
        user_id: r.get(0)?,
        customer_id: r.get(1)?,
        email: r.get(2)?,
        subscription_id: r.get(3)?,
        status: r.get(4)?,
        price_id: r.get(5)?,
        current_period_start: r.get(6)?,
        current_period_end: r.get(7)?,
        cancel_at_period_end: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
        payment_method: (brand.is_some() || last4.is_some()).then_some(Card { brand, last4 }),
        synced_at: r.get(11)?,
        source: r.get(12)?,
        deleted: r.get(13)?,
    })
}

fn mapping_for(conn: &Connection, customer_id: &str) -> anyhow::Result<Option<MappingRow>> {
    let mut st = conn.prepare_cached(&format!("{MAPPING_SELECT} WHERE c.id = ?1"))?;
    Ok(st.query_row([customer_id], mapping_row).optional()?)
}

fn upsert_customer(conn: &Connection, w: &CustomerWrite, now: &str) -> anyhow::Result<()> {
    let info = &w.info;
    match info.snapshot_at {
        // A customer object: replaces an older view, never a newer one, and
        // touches the row only when something differs. A deleted customer's
        // stub has no metadata: the user it belonged to is kept.
        Some(at) => {
            conn.prepare_cached(
                "INSERT INTO customers (id, user_id, user_key, email, deleted, snapshot_at, source, synced_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(id) DO UPDATE SET
                   user_id = CASE WHEN excluded.deleted THEN customers.user_id ELSE excluded.user_id END,
                   email = CASE WHEN excluded.deleted THEN customers.email ELSE excluded.email END,
                   user_key = excluded.user_key, deleted = excluded.deleted,
                   snapshot_at = excluded.snapshot_at,
                   source = excluded.source, synced_at = excluded.synced_at
                 WHERE (customers.snapshot_at IS NULL OR customers.snapshot_at <= excluded.snapshot_at)
                   AND (customers.deleted IS NOT excluded.deleted
                        OR customers.snapshot_at IS NOT excluded.snapshot_at
                        OR customers.user_key IS NOT excluded.user_key
                        OR (NOT excluded.deleted AND (customers.user_id IS NOT excluded.user_id
                                                      OR customers.email IS NOT excluded.email)))",
            )?
            .execute(params![
                w.customer_id,
                info.user_id,
                w.user_key,
                info.email,
                info.deleted,
                at,
                w.source.as_str(),
                now
            ])?;
        }
        // Only an inferred user id: fill blanks, keep what is known.
        None => {
            conn.prepare_cached(
                "INSERT INTO customers (id, user_id, user_key, email, deleted, snapshot_at, source, synced_at)
                 VALUES (?1, ?2, ?3, ?4, 0, NULL, ?5, ?6)
                 ON CONFLICT(id) DO UPDATE SET
                   user_id = COALESCE(customers.user_id, excluded.user_id),
                   email = COALESCE(customers.email, excluded.email),
                   synced_at = excluded.synced_at
                 WHERE (customers.user_id IS NULL AND excluded.user_id IS NOT NULL)
                    OR (customers.email IS NULL AND excluded.email IS NOT NULL)",
            )?
            .execute(params![w.customer_id, info.user_id, w.user_key, info.email, w.source.as_str(), now])?;
        }
    }
    Ok(())
}

fn upsert_subscription(
    conn: &Connection,
    s: &SubscriptionRecord,
    snapshot_at: i64,
    source: RecordSource,
    now: &str,
) -> anyhow::Result<()> {
    let (brand, last4) = match &s.card {
        Some(c) => (c.brand.as_deref(), c.last4.as_deref()),
        None => (None, None),
    };
    // Newer snapshots replace older ones; an identical one touches nothing.
    conn.prepare_cached(
        "INSERT INTO subscriptions (id, customer_id, status, price_id, current_period_start,
            current_period_end, cancel_at_period_end, payment_method_id, card_brand, card_last4,
            created, snapshot_at, source, synced_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT(id) DO UPDATE SET
            customer_id = excluded.customer_id, status = excluded.status, price_id = excluded.price_id,
            current_period_start = excluded.current_period_start,
            current_period_end = excluded.current_period_end,
            cancel_at_period_end = excluded.cancel_at_period_end,
            payment_method_id = excluded.payment_method_id,
            card_brand = CASE WHEN excluded.payment_method_id IS subscriptions.payment_method_id
                              AND excluded.card_brand IS NULL AND excluded.card_last4 IS NULL
                         THEN subscriptions.card_brand ELSE excluded.card_brand END,
            card_last4 = CASE WHEN excluded.payment_method_id IS subscriptions.payment_method_id
                              AND excluded.card_brand IS NULL AND excluded.card_last4 IS NULL
                         THEN subscriptions.card_last4 ELSE excluded.card_last4 END,
            created = excluded.created, snapshot_at = excluded.snapshot_at,
            source = excluded.source, synced_at = excluded.synced_at
         WHERE subscriptions.snapshot_at <= excluded.snapshot_at
           AND (subscriptions.snapshot_at IS NOT excluded.snapshot_at
                OR subscriptions.customer_id IS NOT excluded.customer_id
                OR subscriptions.status IS NOT excluded.status
                OR subscriptions.price_id IS NOT excluded.price_id
                OR subscriptions.current_period_start IS NOT excluded.current_period_start
                OR subscriptions.current_period_end IS NOT excluded.current_period_end
                OR subscriptions.cancel_at_period_end IS NOT excluded.cancel_at_period_end
                OR subscriptions.payment_method_id IS NOT excluded.payment_method_id
                OR (excluded.card_brand IS NOT NULL AND subscriptions.card_brand IS NOT excluded.card_brand)
                OR (excluded.card_last4 IS NOT NULL AND subscriptions.card_last4 IS NOT excluded.card_last4)
                OR subscriptions.created IS NOT excluded.created
                OR subscriptions.source IS NOT excluded.source)",
    )?
    .execute(params![
        s.id,
        s.customer_id,
        s.status,
        s.price_id,
        s.current_period_start,
        s.current_period_end,
        s.cancel_at_period_end,
        s.payment_method_id,
        brand,
        last4,
        s.created,
        snapshot_at,
        source.as_str(),
        now
    ])?;
    Ok(())
}

fn log_event(conn: &Connection, e: &LoggedEvent, now: &str) -> anyhow::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO events (id, type, created, route, user_id, customer_id, processed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![e.id, e.kind, e.created, e.route, e.user_id, e.customer_id, now])?;
    Ok(())
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Resolve the store path from `--db`.
pub fn db_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("stripe-sync.db"))
}

#[cfg(test)]
mod tests;
