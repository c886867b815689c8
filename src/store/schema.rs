//! Schema migrations, by `PRAGMA user_version`.

use rusqlite::Connection;

/// Marks a file as a stripe-sync store ("STSY").
pub const APPLICATION_ID: i64 = 0x5354_5359;

/// The schema this build writes. A store with a higher version was made by
/// a newer stripe-sync and is refused rather than misread.
pub const VERSION: i64 = 6;

const V1: &str = "
CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    user_id     TEXT,
    user_key    TEXT NOT NULL,
    email       TEXT,
    deleted     INTEGER NOT NULL DEFAULT 0,
    snapshot_at INTEGER,
    source      TEXT NOT NULL,
    synced_at   TEXT NOT NULL
);
CREATE INDEX customers_user ON customers(user_id);
CREATE TABLE subscriptions (
    id                   TEXT PRIMARY KEY,
    customer_id          TEXT NOT NULL,
    status               TEXT NOT NULL,
    price_id             TEXT,
    current_period_start INTEGER,
    current_period_end   INTEGER,
    cancel_at_period_end INTEGER NOT NULL,
    payment_method_id    TEXT,
    card_brand           TEXT,
    card_last4           TEXT,
    created              INTEGER NOT NULL,
    snapshot_at          INTEGER NOT NULL,
    source               TEXT NOT NULL,
    synced_at            TEXT NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions(customer_id, created);
CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    created      INTEGER,
    route        TEXT NOT NULL,
    user_id      TEXT,
    customer_id  TEXT,
    processed_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// v2: customers seen by the running backfill, to mark the rest deleted
/// after a complete pass (kept across an interrupted run).
const V2: &str = "
CREATE TABLE backfill_seen (
    customer_id TEXT PRIMARY KEY
) WITHOUT ROWID;
";

/// v3: the mapping's subscription is an explicit pointer on the customer
/// (`subscription_id`, set by the one sync engine from what the API listed
/// first, with `current_at` its snapshot time), and the backfill remembers
/// which customers' first listed subscription it has seen in this pass.
/// Existing stores keep what they showed: the pointer starts at the old
/// `created DESC, id DESC` pick.
const V3: &str = "
ALTER TABLE customers ADD COLUMN subscription_id TEXT;
ALTER TABLE customers ADD COLUMN current_at INTEGER;
CREATE TABLE backfill_subs_seen (
    customer_id TEXT PRIMARY KEY
) WITHOUT ROWID;
UPDATE customers SET subscription_id = (
    SELECT id FROM subscriptions WHERE customer_id = customers.id
    ORDER BY created DESC, id DESC LIMIT 1
);
";

/// v4: what a backfill pass has seen is kept on the customer's row (the
/// pass that listed it, the pass that listed its first subscription), and
/// so is the backfill run that last wrote it (the run's report reads
/// that): a million-customer pass writes each row in place rather than two
/// more tables at random places. An interrupted pass of an older version
/// resumes as pass 0, with what it had seen.
const V4: &str = "
ALTER TABLE customers ADD COLUMN listed_pass INTEGER;
ALTER TABLE customers ADD COLUMN first_sub_pass INTEGER;
ALTER TABLE customers ADD COLUMN written_run INTEGER;
UPDATE customers SET listed_pass = 0 WHERE id IN (SELECT customer_id FROM backfill_seen);
UPDATE customers SET first_sub_pass = 0 WHERE id IN (SELECT customer_id FROM backfill_subs_seen);
DROP TABLE backfill_seen;
DROP TABLE backfill_subs_seen;
";

/// v5: the event log is an ordinary (rowid) table with a unique index on the
/// event id, instead of a table ordered by the id. Event ids are random, so
/// each new row used to land at a random place in the whole log; now rows
/// are appended and only the much smaller id index is written at random (a
/// fresh replay of 400,000 events: 6.3-7.6 s -> 4.6-5.3 s, system time
/// 1.8 -> 0.7 s). Same columns, same rows.
const V5: &str = "
CREATE TABLE events_v5 (
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    created      INTEGER,
    route        TEXT NOT NULL,
    user_id      TEXT,
    customer_id  TEXT,
    processed_at TEXT NOT NULL
);
INSERT INTO events_v5 (id, type, created, route, user_id, customer_id, processed_at)
    SELECT id, type, created, route, user_id, customer_id, processed_at FROM events;
DROP TABLE events;
ALTER TABLE events_v5 RENAME TO events;
";

/// v6: a subscription or customer snapshot from events keeps the evidence
/// of its order within its second (the model's rule 1,
/// [`crate::truth::order`]): the event it came from, its lifecycle stage (0
/// created, 1 updated, 2 final) and the `previous_attributes` it carried
/// (JSON), so a same-second event of a later run (or a later `serve` batch)
/// is ordered by evidence, not by arrival. Null for snapshots from the API,
/// and for those written before.
const V6: &str = "
ALTER TABLE subscriptions ADD COLUMN snapshot_event TEXT;
ALTER TABLE subscriptions ADD COLUMN snapshot_stage INTEGER;
ALTER TABLE subscriptions ADD COLUMN snapshot_previous TEXT;
ALTER TABLE customers ADD COLUMN snapshot_event TEXT;
ALTER TABLE customers ADD COLUMN snapshot_stage INTEGER;
ALTER TABLE customers ADD COLUMN snapshot_previous TEXT;
";

/// Indexes that change no stored data: made on every open for write (when
/// missing), without a version step, so a store they were added to still
/// opens in an older stripe-sync. A read-only open of a store that lacks them
/// still works, only slower.
///
/// `customers_mapping` is the mapping's order (`user_id, id`: `inspect`
/// streams without a sort, and `--user` is one search) and holds every
/// customer column the mapping shows, so a million-row `inspect` reads it
/// in order instead of looking each customer up at random. It covers what
/// v1's `customers_user` served, which is dropped.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS customers_mapping
    ON customers(user_id, id, email, deleted, subscription_id, synced_at, source);
DROP INDEX IF EXISTS customers_user;
CREATE INDEX IF NOT EXISTS subscriptions_customer ON subscriptions(customer_id, created);
";

/// The indexes only readers use (see [`INDEXES`]; `subscriptions_customer`
/// is v1's, made again by [`INDEXES`] too): a large backfill drops them
/// while it writes and makes them again at the end (see
/// `PassWrites::defer_indexes`), one sorted build instead of an index
/// write at a random place for every row.
pub(crate) const DEFERRABLE: &str = "
DROP INDEX IF EXISTS customers_mapping;
DROP INDEX IF EXISTS subscriptions_customer;
";

/// Make the indexes dropped by [`DEFERRABLE`] again.
pub(crate) fn restore_indexes(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(INDEXES)
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "it was written by a newer stripe-sync (schema {found}, this build knows {VERSION}); upgrade stripe-sync"
    )]
    TooNew { found: i64 },
    #[error("it is an SQLite database of another application, not a stripe-sync store")]
    Foreign,
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Each version's step from the one before, in order; [`VERSION`] is the
/// last.
const STEPS: &[(i64, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4), (5, V5), (6, V6)];
const _: () = assert!(STEPS[STEPS.len() - 1].0 == VERSION);

/// The store's schema version, checking it is ours and not newer.
pub fn check(conn: &Connection) -> Result<i64, SchemaError> {
    // One statement, so one read of the file: another process may be
    // creating the store, and a version read before its commit with a
    // table count read after it would look like another application's file.
    let (version, app, tables): (i64, i64, i64) = conn.query_row(
        "SELECT (SELECT user_version FROM pragma_user_version),
                (SELECT application_id FROM pragma_application_id),
                (SELECT count(*) FROM sqlite_master)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if version > 0 && app != APPLICATION_ID {
        return Err(SchemaError::Foreign);
    }
    if version == 0 && app == 0 && tables > 0 {
        return Err(SchemaError::Foreign);
    }
    if version > VERSION {
        return Err(SchemaError::TooNew { found: version });
    }
    Ok(version)
}

/// A store left at an older `version`, as that version made it (for the
/// migration tests).
#[cfg(test)]
pub(crate) fn create_at(conn: &Connection, version: i64) -> rusqlite::Result<()> {
    for &(v, sql) in STEPS {
        if v <= version {
            conn.execute_batch(sql)?;
        }
    }
    conn.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {version};"
    ))
}

/// Bring the schema up to [`VERSION`], in one transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version = check(&tx)?;
    for &(v, sql) in STEPS {
        if version < v {
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {v};"
            ))?;
        }
    }
    tx.execute_batch(INDEXES)?;
    tx.commit()?;
    Ok(())
}
