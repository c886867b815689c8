//! The SQLite store: customers, their subscriptions, the processed-event log
//! and backfill checkpoints. One transaction per synced customer, so a crash
//! never leaves half a customer; an older snapshot never overwrites a newer.

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

/// Everything one sync writes for one customer, in one transaction.
#[derive(Debug, Clone)]
pub struct CustomerWrite {
    pub customer_id: String,
    pub info: CustomerInfo,
    pub user_key: String,
    /// Subscription snapshots with the time each was true.
    pub subscriptions: Vec<(SubscriptionRecord, i64)>,
    pub source: RecordSource,
    /// Processed events to log with this customer.
    pub events: Vec<LoggedEvent>,
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

impl Store {
    /// Open for writing, creating (mode 0600) and migrating as needed.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
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

    /// Open an existing store for reading; `None` when there is no file.
    pub fn open_read_only(path: &Path) -> anyhow::Result<Option<Store>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| describe(path, format!("cannot open: {e}")))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| describe(path, unusable(&e)))?;
        let version = schema::check(&conn).map_err(|e| describe(path, unusable_schema(&e)))?;
        if version == 0 {
            // An empty file: nothing stored yet.
            return Ok(None);
        }
        Ok(Some(Store {
            conn,
            path: path.to_path_buf(),
        }))
    }

    /// A private in-memory copy of an existing store (`None` if there is no
    /// file): `--check` runs its rolled-back writes there, so the file is
    /// never touched, not even by a migration.
    pub fn open_snapshot(path: &Path) -> anyhow::Result<Option<Store>> {
        let Some(file) = Store::open_read_only(path)? else {
            return Ok(None);
        };
        let mut conn = Connection::open_in_memory()?;
        conn.restore(
            rusqlite::MAIN_DB,
            path,
            None::<fn(rusqlite::backup::Progress)>,
        )
        .map_err(|e| describe(path, unusable(&e)))?;
        drop(file);
        schema::migrate(&mut conn).map_err(|e| describe(path, unusable_schema(&e)))?;
        Ok(Some(Store {
            conn,
            path: path.to_path_buf(),
        }))
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> anyhow::Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn,
            path: PathBuf::from(":memory:"),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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

    /// The user id the store maps a customer to.
    pub fn customer_user(&self, customer_id: &str) -> anyhow::Result<Option<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT user_id FROM customers WHERE id = ?1")?;
        Ok(st
            .query_row([customer_id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
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

    /// Every subscription stored for a customer, with its snapshot time.
    pub fn subscriptions_of(
        &self,
        customer_id: &str,
    ) -> anyhow::Result<Vec<(SubscriptionRecord, i64)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, customer_id, status, price_id, current_period_start, current_period_end,
                    cancel_at_period_end, payment_method_id, card_brand, card_last4, created, snapshot_at
             FROM subscriptions WHERE customer_id = ?1",
        )?;
        let rows = st.query_map([customer_id], |r| {
            let brand: Option<String> = r.get(8)?;
            let last4: Option<String> = r.get(9)?;
            Ok((
                SubscriptionRecord {
                    id: r.get(0)?,
                    customer_id: r.get(1)?,
                    status: r.get(2)?,
                    price_id: r.get(3)?,
                    current_period_start: r.get(4)?,
                    current_period_end: r.get(5)?,
                    cancel_at_period_end: r.get(6)?,
                    payment_method_id: r.get(7)?,
                    card: (brand.is_some() || last4.is_some()).then_some(Card { brand, last4 }),
                    created: r.get(10)?,
                },
                r.get(11)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Write one customer in one transaction; returns whether its mapping
    /// row changed. With `dry_run` the transaction is rolled back, so the
    /// caller learns what would change (drift) and nothing is written.
    pub fn write_customer(
        &mut self,
        w: &CustomerWrite,
        dry_run: bool,
    ) -> anyhow::Result<WriteOutcome> {
        let mut out = self.write_batch(std::slice::from_ref(w), &[], &[], dry_run)?;
        out.pop()
            .ok_or_else(|| anyhow::anyhow!("no outcome for customer {}", w.customer_id))
    }

    /// Log events that belong to no customer write (ignored types), in one transaction.
    pub fn log_events(&mut self, events: &[LoggedEvent]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| describe(&path, unusable(&e)))?;
        let now = now_rfc3339();
        for e in events {
            log_event(&tx, e, &now)?;
        }
        tx.commit().map_err(|e| describe(&path, unusable(&e)))?;
        Ok(())
    }

    /// Mark a customer deleted (it is kept, not dropped silently).
    pub fn mark_deleted(&mut self, customer_id: &str) -> anyhow::Result<bool> {
        let n = self.conn.execute(
            "UPDATE customers SET deleted = 1, synced_at = ?2 WHERE id = ?1 AND deleted = 0",
            params![customer_id, now_rfc3339()],
        )?;
        Ok(n > 0)
    }

    /// Forget which customers the last backfill saw (a fresh pass starts).
    pub fn backfill_reset(&mut self) -> anyhow::Result<()> {
        self.conn.execute_batch("DELETE FROM backfill_seen;")?;
        Ok(())
    }

    /// Customers in the store (not yet deleted) that the backfill did not see.
    pub fn backfill_unseen(&self) -> anyhow::Result<Vec<String>> {
        let mut st = self.conn.prepare(
            "SELECT id FROM customers WHERE deleted = 0
             AND id NOT IN (SELECT customer_id FROM backfill_seen) ORDER BY id",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// All customer ids in the store.
    pub fn customer_ids(&self) -> anyhow::Result<Vec<String>> {
        let mut st = self.conn.prepare("SELECT id FROM customers ORDER BY id")?;
        let rows = st.query_map([], |r| r.get(0))?;
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

    pub fn get_state(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM sync_state WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_state(&mut self, key: &str, value: Option<&str>) -> anyhow::Result<()> {
        put_state(&self.conn, key, value)
    }

    /// Several whole customers (and an optional checkpoint) in one
    /// transaction: still never half a customer, and far fewer page writes
    /// than a commit per customer when thousands are synced.
    pub fn write_batch(
        &mut self,
        writes: &[CustomerWrite],
        state: &[(&str, Option<&str>)],
        seen: &[&str],
        dry_run: bool,
    ) -> anyhow::Result<Vec<WriteOutcome>> {
        let path = self.path.clone();
        self.write_batch_inner(writes, state, seen, dry_run)
            .map_err(|e| name_store_error(&path, e))
    }

    fn write_batch_inner(
        &mut self,
        writes: &[CustomerWrite],
        state: &[(&str, Option<&str>)],
        seen: &[&str],
        dry_run: bool,
    ) -> anyhow::Result<Vec<WriteOutcome>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_rfc3339();
        let mut outcomes = Vec::with_capacity(writes.len());
        for w in writes {
            outcomes.push(apply(&tx, w, &now)?);
        }
        for c in seen {
            tx.prepare_cached("INSERT OR IGNORE INTO backfill_seen(customer_id) VALUES (?1)")?
                .execute([c])?;
        }
        for (k, v) in state {
            put_state(&tx, k, *v)?;
        }
        if dry_run {
            tx.rollback()?;
        } else {
            tx.commit()?;
        }
        Ok(outcomes)
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

/// Set or clear one checkpoint value.
fn put_state(conn: &Connection, key: &str, value: Option<&str>) -> anyhow::Result<()> {
    match value {
        Some(v) => conn.execute(
            "INSERT INTO sync_state(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, v],
        )?,
        None => conn.execute("DELETE FROM sync_state WHERE key = ?1", [key])?,
    };
    Ok(())
}

/// One customer's rows; the caller owns the transaction.
fn apply(tx: &Connection, w: &CustomerWrite, now: &str) -> anyhow::Result<WriteOutcome> {
    let before = mapping_for(tx, &w.customer_id)?;
    upsert_customer(tx, w, now)?;
    for (sub, snapshot_at) in &w.subscriptions {
        upsert_subscription(tx, sub, *snapshot_at, w.source, now)?;
    }
    for e in &w.events {
        log_event(tx, e, now)?;
    }
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

#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub before: Option<MappingRow>,
    pub after: Option<MappingRow>,
    pub changed: bool,
}

/// Mapping rows compare equal when everything but the sync time matches.
fn same_mapping(a: &MappingRow, b: &MappingRow) -> bool {
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
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
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
        Some(rusqlite::ErrorCode::DatabaseBusy) => {
            "still locked by another process after 30 s".into()
        }
        _ => e.to_string(),
    }
}

fn unusable_schema(e: &schema::SchemaError) -> String {
    match e {
        schema::SchemaError::Sqlite(e) => unusable(e),
        other => other.to_string(),
    }
}

const MAPPING_SELECT: &str = "
SELECT c.user_id, c.id, c.email, s.id, s.status, s.price_id, s.current_period_start,
       s.current_period_end, s.cancel_at_period_end, s.card_brand, s.card_last4,
       COALESCE(s.synced_at, c.synced_at), COALESCE(s.source, c.source), c.deleted
FROM customers c
LEFT JOIN subscriptions s ON s.id = (
    SELECT id FROM subscriptions WHERE customer_id = c.id ORDER BY created DESC, id DESC LIMIT 1
)";

fn mapping_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MappingRow> {
    let brand: Option<String> = r.get(9)?;
    let last4: Option<String> = r.get(10)?;
    let sub_id: Option<String> = r.get(3)?;
    Ok(MappingRow {
        user_id: r.get(0)?,
        customer_id: r.get(1)?,
        email: r.get(2)?,
        status: r
            .get::<_, Option<String>>(4)?
            .unwrap_or_else(|| "none".into()),
        cancel_at_period_end: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
        subscription_id: sub_id,
        price_id: r.get(5)?,
        current_period_start: r.get(6)?,
        current_period_end: r.get(7)?,
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
        // A customer object: replaces an older view, never a newer one.
        Some(at) => {
            conn.prepare_cached(
                "INSERT INTO customers (id, user_id, user_key, email, deleted, snapshot_at, source, synced_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(id) DO UPDATE SET
                   user_id = excluded.user_id, user_key = excluded.user_key, email = excluded.email,
                   deleted = excluded.deleted, snapshot_at = excluded.snapshot_at,
                   source = excluded.source, synced_at = excluded.synced_at
                 WHERE customers.snapshot_at IS NULL OR customers.snapshot_at <= excluded.snapshot_at",
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
                   synced_at = excluded.synced_at",
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
         WHERE subscriptions.snapshot_at <= excluded.snapshot_at",
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
