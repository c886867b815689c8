//! The write path: the one writer's SQL. A [`Writer`] holds the statements
//! of one transaction, each prepared (and its SQL looked up) once rather
//! than once per row: a backfill transaction writes thousands of customers.
//!
//! A write either answers its outcome (the mapping before and after, for
//! targeted syncs and replays) or, in a backfill, marks the customer's row
//! with the pass and the run (see [`PassMarks`]) and keeps its mapping from
//! before the run first wrote it in the run's journal, a temporary table.
//! The run's report streams from those, so nothing per customer stays in
//! memory however large the account.

use rusqlite::{Connection, OptionalExtension, params};

use super::mapping::{MAPPING_SELECT, mapping_for};
use super::sql::{self, Arg, Db, Sqlite, args};
use super::{
    Current, CustomerInfo, CustomerWrite, MappingRow, PassMarks, RecordSource, WriteOutcome,
    same_mapping,
};
use crate::objects::{Card, SubscriptionRecord};
use crate::truth::{Evidence, Newer, Previous, Seen, SnapshotOrder, Stage, Stamp};

/// What one customer's write could not order (see [`WriteOutcome`]).
struct Written {
    tied: Vec<String>,
    unordered: Vec<(String, Vec<String>)>,
}

/// An events snapshot against the store's of the same second (rule 1).
enum Against {
    Older,
    Newer,
    /// Ordered by arrival alone: (this write's event, the store's).
    Unordered(Vec<String>),
}

/// The statements a writer may prepare, by index.
#[derive(Debug, Clone, Copy)]
enum Sql {
    CustomerSnapshot,
    CustomerHint,
    Subscription,
    StoredSnapshot,
    StoredCustomer,
    Point,
    CurrentOf,
    Newest,
    PassState,
    PointMarked,
    Mark,
    Journal,
}

impl Sql {
    fn text(self) -> &'static str {
        match self {
            Sql::CustomerSnapshot => CUSTOMER_SNAPSHOT,
            Sql::CustomerHint => CUSTOMER_HINT,
            Sql::Subscription => SUBSCRIPTION,
            Sql::StoredCustomer => STORED_CUSTOMER,
            Sql::StoredSnapshot => STORED_SNAPSHOT,
            Sql::Point => POINT,
            Sql::CurrentOf => CURRENT_OF,
            Sql::Newest => NEWEST,
            Sql::PassState => PASS_STATE,
            Sql::PointMarked => POINT_MARKED,
            Sql::Mark => MARK,
            Sql::Journal => JOURNAL_ROW,
        }
    }
}

/// A customer object: replaces an older view, never a newer one, and
/// touches the row only when something differs. A deleted customer's stub
/// has no metadata: the user it was known by is kept (rule 3), and a
/// deletion from events is final (nothing undeletes a customer in Stripe),
/// even when it comes with an older view of the user.
const CUSTOMER_SNAPSHOT: &str =
    "INSERT INTO customers (id, user_id, user_key, email, deleted, snapshot_at, source,
        synced_at, written_run, listed_pass, first_sub_pass, snapshot_event,
        snapshot_stage, snapshot_previous)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
     ON CONFLICT(id) DO UPDATE SET
       user_id = CASE WHEN customers.snapshot_at > excluded.snapshot_at THEN customers.user_id
                      WHEN excluded.deleted AND excluded.user_id IS NULL THEN customers.user_id
                      ELSE excluded.user_id END,
       email = CASE WHEN customers.snapshot_at > excluded.snapshot_at THEN customers.email
                    WHEN excluded.deleted AND excluded.email IS NULL THEN customers.email
                    ELSE excluded.email END,
       snapshot_event = CASE WHEN customers.snapshot_at > excluded.snapshot_at
                             THEN customers.snapshot_event ELSE excluded.snapshot_event END,
       snapshot_stage = CASE WHEN customers.snapshot_at > excluded.snapshot_at
                             THEN customers.snapshot_stage ELSE excluded.snapshot_stage END,
       snapshot_previous = CASE WHEN customers.snapshot_at > excluded.snapshot_at
                             THEN customers.snapshot_previous ELSE excluded.snapshot_previous END,
       user_key = excluded.user_key,
       deleted = CASE WHEN excluded.source = 'events' THEN (customers.deleted OR excluded.deleted)
                      ELSE excluded.deleted END,
       snapshot_at = CASE WHEN customers.snapshot_at > excluded.snapshot_at
                          THEN customers.snapshot_at ELSE excluded.snapshot_at END,
       source = excluded.source, synced_at = excluded.synced_at,
       written_run = COALESCE(excluded.written_run, customers.written_run),
       listed_pass = COALESCE(excluded.listed_pass, customers.listed_pass),
       first_sub_pass = COALESCE(excluded.first_sub_pass, customers.first_sub_pass)
     WHERE (customers.snapshot_at IS NULL OR customers.snapshot_at <= excluded.snapshot_at
            OR (excluded.deleted AND NOT customers.deleted))
       AND (customers.deleted IS DISTINCT FROM excluded.deleted
            OR customers.snapshot_at IS DISTINCT FROM excluded.snapshot_at
            OR customers.user_key IS DISTINCT FROM excluded.user_key
            OR customers.snapshot_event IS DISTINCT FROM excluded.snapshot_event
            OR (excluded.user_id IS NOT NULL AND customers.user_id IS DISTINCT FROM excluded.user_id)
            OR (excluded.email IS NOT NULL AND customers.email IS DISTINCT FROM excluded.email)
            OR (NOT excluded.deleted AND (customers.user_id IS DISTINCT FROM excluded.user_id
                                          OR customers.email IS DISTINCT FROM excluded.email)))";

/// Only an inferred user id: fill blanks, keep what is known.
/// A deletion from events with no customer object: final too.
const CUSTOMER_HINT: &str =
    "INSERT INTO customers (id, user_id, user_key, email, deleted, snapshot_at, source,
        synced_at, written_run, listed_pass, first_sub_pass)
     VALUES (?1, ?2, ?3, ?4, ?10, NULL, ?5, ?6, ?7, ?8, ?9)
     ON CONFLICT(id) DO UPDATE SET
       user_id = COALESCE(customers.user_id, excluded.user_id),
       email = COALESCE(customers.email, excluded.email),
       deleted = customers.deleted OR excluded.deleted,
       synced_at = excluded.synced_at,
       written_run = COALESCE(excluded.written_run, customers.written_run),
       listed_pass = COALESCE(excluded.listed_pass, customers.listed_pass),
       first_sub_pass = COALESCE(excluded.first_sub_pass, customers.first_sub_pass)
     WHERE (customers.user_id IS NULL AND excluded.user_id IS NOT NULL)
        OR (customers.email IS NULL AND excluded.email IS NOT NULL)
        OR (excluded.deleted AND NOT customers.deleted)";

/// Newer snapshots replace older ones; an identical one touches nothing.
const SUBSCRIPTION: &str = "INSERT INTO subscriptions (id, customer_id, status, price_id, current_period_start,
        current_period_end, cancel_at_period_end, payment_method_id, card_brand, card_last4,
        created, snapshot_at, source, synced_at, snapshot_event, snapshot_stage,
        snapshot_previous)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
     ON CONFLICT(id) DO UPDATE SET
        snapshot_event = excluded.snapshot_event, snapshot_stage = excluded.snapshot_stage,
        snapshot_previous = excluded.snapshot_previous,
        customer_id = excluded.customer_id, status = excluded.status, price_id = excluded.price_id,
        current_period_start = excluded.current_period_start,
        current_period_end = excluded.current_period_end,
        cancel_at_period_end = excluded.cancel_at_period_end,
        payment_method_id = excluded.payment_method_id,
        card_brand = CASE WHEN excluded.payment_method_id IS NOT DISTINCT FROM subscriptions.payment_method_id
                          AND excluded.card_brand IS NULL AND excluded.card_last4 IS NULL
                     THEN subscriptions.card_brand ELSE excluded.card_brand END,
        card_last4 = CASE WHEN excluded.payment_method_id IS NOT DISTINCT FROM subscriptions.payment_method_id
                          AND excluded.card_brand IS NULL AND excluded.card_last4 IS NULL
                     THEN subscriptions.card_last4 ELSE excluded.card_last4 END,
        created = excluded.created, snapshot_at = excluded.snapshot_at,
        source = excluded.source, synced_at = excluded.synced_at
     WHERE subscriptions.snapshot_at <= excluded.snapshot_at
       AND (subscriptions.snapshot_at IS DISTINCT FROM excluded.snapshot_at
            OR subscriptions.customer_id IS DISTINCT FROM excluded.customer_id
            OR subscriptions.status IS DISTINCT FROM excluded.status
            OR subscriptions.price_id IS DISTINCT FROM excluded.price_id
            OR subscriptions.current_period_start IS DISTINCT FROM excluded.current_period_start
            OR subscriptions.current_period_end IS DISTINCT FROM excluded.current_period_end
            OR subscriptions.cancel_at_period_end IS DISTINCT FROM excluded.cancel_at_period_end
            OR subscriptions.payment_method_id IS DISTINCT FROM excluded.payment_method_id
            OR (excluded.card_brand IS NOT NULL AND subscriptions.card_brand IS DISTINCT FROM excluded.card_brand)
            OR (excluded.card_last4 IS NOT NULL AND subscriptions.card_last4 IS DISTINCT FROM excluded.card_last4)
            OR subscriptions.created IS DISTINCT FROM excluded.created
            OR subscriptions.source IS DISTINCT FROM excluded.source
            OR subscriptions.snapshot_event IS DISTINCT FROM excluded.snapshot_event)";

const STORED_CUSTOMER: &str =
    "SELECT snapshot_at, user_id, email, snapshot_event, snapshot_stage, snapshot_previous
     FROM customers WHERE id = ?1";

const STORED_SNAPSHOT: &str =
    "SELECT snapshot_at, customer_id, status, price_id, current_period_start,
        current_period_end, cancel_at_period_end, payment_method_id, created,
        snapshot_event, snapshot_stage, snapshot_previous
     FROM subscriptions WHERE id = ?1";

const POINT: &str = "UPDATE customers SET subscription_id = ?2, current_at = ?3, synced_at = ?4
     WHERE id = ?1 AND (current_at IS NULL OR CAST(?3 AS BIGINT) IS NULL OR current_at <= ?3)
       AND subscription_id IS DISTINCT FROM ?2";

const CURRENT_OF: &str = "SELECT subscription_id FROM customers WHERE id = ?1";

/// The candidates of the model's rule 2: those of the newest second.
const NEWEST: &str = "SELECT id, created FROM subscriptions WHERE customer_id = ?1 AND created =
       (SELECT max(created) FROM subscriptions WHERE customer_id = ?1)";

const PASS_STATE: &str =
    "SELECT written_run, listed_pass, first_sub_pass, subscription_id, current_at
     FROM customers WHERE id = ?1";

const POINT_MARKED: &str =
    "UPDATE customers SET subscription_id = ?2, current_at = ?3, synced_at = ?4,
        written_run = ?5, listed_pass = ?6, first_sub_pass = ?7
     WHERE id = ?1";

const MARK: &str = "UPDATE customers SET written_run = ?2, listed_pass = ?3, first_sub_pass = ?4
     WHERE id = ?1";

const JOURNAL_ROW: &str = "INSERT INTO pass_journal (customer_id, user_id, email,
        subscription_id, status, price_id, current_period_start, current_period_end,
        cancel_at_period_end, card_brand, card_last4, synced_at, source, deleted)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// The run's journal (see the module docs): the mapping of each customer
/// the store had, from before the run's first write of it. Appended in
/// write order (no index to keep up while the pass writes); sorted by
/// customer once, for the report (see [`REPORT_TABLES`]). Starting one
/// forgets the report of an earlier run on the connection.
const JOURNAL: &str = "
DROP TABLE IF EXISTS temp.pass_report;
DROP TABLE IF EXISTS temp.pass_before;
DROP TABLE IF EXISTS temp.pass_report_of;
CREATE TEMP TABLE pass_report_of (run INTEGER NOT NULL);
DROP TABLE IF EXISTS temp.pass_journal;
CREATE TEMP TABLE pass_journal (
    customer_id          TEXT NOT NULL,
    user_id              TEXT,
    email                TEXT,
    subscription_id      TEXT,
    status               TEXT NOT NULL,
    price_id             TEXT,
    current_period_start INTEGER,
    current_period_end   INTEGER,
    cancel_at_period_end INTEGER NOT NULL,
    card_brand           TEXT,
    card_last4           TEXT,
    synced_at            TEXT NOT NULL,
    source               TEXT NOT NULL,
    deleted              INTEGER NOT NULL
);
";

/// Start an empty journal (a run's own: temporary tables die with the
/// connection).
pub(super) fn begin_journal(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(JOURNAL)
}

/// The report of a run is read from two temporary tables made once, after
/// the pass, both in customer id order: the customers the run wrote (their
/// columns of the mapping: one read of the table in its own order, and a
/// sort) and the journal (sorted). The report reads them in step, and each
/// customer's subscription through `subscriptions_customer`, which is in
/// customer order too. Joining the store's tables in id order, as the
/// report first did, read the customers, their subscriptions and the
/// journal a row at a time at random places: at a million customers the
/// report took 8.4-8.6 s after a first backfill and 11.0-11.2 s after a
/// second (a journal of a million), against 4.8 s and 7.6-7.8 s this way
/// (`cargo bench --bench backfill`, interleaved runs, a busy 2-core VM).
const REPORT_TABLES: &str = "
DROP TABLE IF EXISTS temp.pass_report;
DROP TABLE IF EXISTS temp.pass_before;
CREATE TEMP TABLE pass_report (
    id              TEXT PRIMARY KEY,
    user_id         TEXT,
    email           TEXT,
    deleted         INTEGER NOT NULL,
    subscription_id TEXT,
    synced_at       TEXT NOT NULL,
    source          TEXT NOT NULL
) WITHOUT ROWID;
CREATE TEMP TABLE pass_before (
    customer_id          TEXT PRIMARY KEY,
    user_id              TEXT,
    email                TEXT,
    subscription_id      TEXT,
    status               TEXT NOT NULL,
    price_id             TEXT,
    current_period_start INTEGER,
    current_period_end   INTEGER,
    cancel_at_period_end INTEGER NOT NULL,
    card_brand           TEXT,
    card_last4           TEXT,
    synced_at            TEXT NOT NULL,
    source               TEXT NOT NULL,
    deleted              INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The customers the run wrote, sorted: `NOT INDEXED` reads the table in
/// its own order (through the id index, each row would be a read at random).
const REPORT_CUSTOMERS: &str = "
INSERT INTO temp.pass_report (id, user_id, email, deleted, subscription_id, synced_at, source)
SELECT id, user_id, email, deleted, subscription_id, synced_at, source
FROM main.customers NOT INDEXED WHERE written_run = ?1 ORDER BY id";

/// The journal, sorted. A customer is journaled once a run; were it twice,
/// the first (the oldest mapping) is the one from before the run.
const REPORT_BEFORE: &str = "
INSERT OR IGNORE INTO temp.pass_before
SELECT customer_id, user_id, email, subscription_id, status, price_id, current_period_start,
       current_period_end, cancel_at_period_end, card_brand, card_last4, synced_at, source,
       deleted
FROM temp.pass_journal ORDER BY customer_id, rowid";

/// The report's page caches, the store's and the temporary tables' (KiB,
/// as `PRAGMA cache_size` takes it); a sort's memory is as large. Reads in
/// order need little: the report must fit in 50 MB at a million customers
/// (issue 21), and what SQLite takes under it, glibc keeps.
const REPORT_CACHE_KIB: i64 = -2048;

/// Make the report tables of the run (once: see [`REPORT_TABLES`]), after
/// letting go of what the pass cached.
fn prepare_report(conn: &Connection, run: i64) -> rusqlite::Result<()> {
    let made: Option<i64> = conn
        .query_row("SELECT run FROM temp.pass_report_of", [], |r| r.get(0))
        .optional()?;
    if made == Some(run) {
        return Ok(());
    }
    conn.execute_batch(&format!(
        "PRAGMA cache_size = {REPORT_CACHE_KIB}; PRAGMA temp.cache_size = {REPORT_CACHE_KIB};
         PRAGMA shrink_memory;"
    ))?;
    conn.execute_batch(REPORT_TABLES)?;
    sorting(conn, || {
        conn.execute(REPORT_CUSTOMERS, [run])?;
        conn.execute(REPORT_BEFORE, [])
    })?;
    conn.execute("DELETE FROM temp.pass_report_of", [])?;
    conn.execute("INSERT INTO temp.pass_report_of (run) VALUES (?1)", [run])?;
    Ok(())
}

/// Run `f`, whose sorts may take a thread of SQLite's to sort each part
/// while the next is read (`PRAGMA threads`): a million rows sort in a
/// quarter less time on two cores, in the same memory.
pub(super) fn sorting<T>(
    conn: &Connection,
    f: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let threads: i64 = conn.query_row("PRAGMA threads", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA threads = 1")?;
    let out = f();
    let _ = conn.execute_batch(&format!("PRAGMA threads = {threads}"));
    out
}

/// How many customers the run wrote.
pub(super) fn run_len(conn: &Connection, run: i64) -> rusqlite::Result<u64> {
    prepare_report(conn, run)?;
    let n: i64 = conn.query_row("SELECT count(*) FROM temp.pass_report", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A page of the report: the mapping now (columns 0 to 13, as
/// [`MAPPING_SELECT`] reads them from `c` and `s`), then as journaled (14
/// to 27), after `?1` by customer id, `?2` rows. A customer's subscription
/// is looked up among the customer's own, through `subscriptions_customer`
/// (`by_customer`: that index is in customer order too); column 28 says
/// the customer shows one stored under another customer, to be read on its
/// own. Without that index (another process's pass drops it for a while),
/// by the subscription's id alone.
fn report_page_sql(by_customer: bool) -> String {
    let (join, elsewhere) = match by_customer {
        true => (
            "INDEXED BY subscriptions_customer ON s.customer_id = c.id AND s.id = c.subscription_id",
            "c.deleted = 0 AND c.subscription_id IS NOT NULL AND s.id IS NULL",
        ),
        false => ("ON s.id = c.subscription_id", "0"),
    };
    format!(
        "{MAPPING_SELECT}, j.customer_id, j.user_id, j.email, j.subscription_id, j.status,
                j.price_id, j.current_period_start, j.current_period_end,
                j.cancel_at_period_end, j.card_brand, j.card_last4, j.synced_at, j.source,
                j.deleted, {elsewhere}
         FROM temp.pass_report c
         LEFT JOIN main.subscriptions s {join} AND c.deleted = 0
         LEFT JOIN temp.pass_before j ON j.customer_id = c.id
         WHERE c.id > ?1 ORDER BY c.id LIMIT ?2"
    )
}

/// Up to `limit` customers the run wrote, after `after` by id, each with
/// its mapping before the run (none: new to the store) and now.
pub(super) fn run_page(
    conn: &Connection,
    run: i64,
    after: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<(String, WriteOutcome)>> {
    prepare_report(conn, run)?;
    let page = |by_customer: bool| -> rusqlite::Result<Vec<(String, WriteOutcome, bool)>> {
        let mut st = conn.prepare_cached(&report_page_sql(by_customer))?;
        let rows = st.query_map(params![after.unwrap_or(""), limit as i64], |r| {
            let (customer, outcome) = report_row(r)?;
            Ok((customer, outcome, r.get(28)?))
        })?;
        rows.collect()
    };
    let mut rows = Vec::new();
    for (customer, read, elsewhere) in page(true).or_else(|_| page(false))? {
        let read = match elsewhere {
            true => outcome(read.before, mapping_for(&mut Sqlite::new(conn), &customer)?),
            false => read,
        };
        rows.push((customer, read));
    }
    Ok(rows)
}

/// A row of the report (see [`report_page_sql`]).
fn report_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, WriteOutcome)> {
    read_report(&sql::SqliteRow(r)).map_err(sql::sqlite_error)
}

/// A row of a backfill run's report, either engine's: the mapping now
/// (columns 0 to 13, as [`MAPPING_SELECT`] reads them), then as journaled
/// before the run (14 to 27; 14 is NULL for a customer new to the store).
pub(super) fn read_report(r: &dyn sql::Row) -> anyhow::Result<(String, WriteOutcome)> {
    let mut after = MappingRow::default();
    super::mapping::read_mapping(r, &mut after)?;
    let before = match r.text(14)? {
        None => None,
        Some(_) => {
            let (brand, last4) = (r.string(23)?, r.string(24)?);
            Some(MappingRow {
                user_id: r.string(15)?,
                customer_id: after.customer_id.clone(),
                email: r.string(16)?,
                subscription_id: r.string(17)?,
                status: required(r.string(18)?)?,
                price_id: r.string(19)?,
                current_period_start: r.int(20)?,
                current_period_end: r.int(21)?,
                cancel_at_period_end: r.flag(22)?,
                payment_method: (brand.is_some() || last4.is_some())
                    .then_some(Card { brand, last4 }),
                synced_at: required(r.string(25)?)?,
                source: required(r.string(26)?)?,
                deleted: r.flag(27)?,
            })
        }
    };
    Ok((after.customer_id.clone(), outcome(before, Some(after))))
}

/// The outcome of a write, from the mapping before and after it.
pub(super) fn outcome(before: Option<MappingRow>, after: Option<MappingRow>) -> WriteOutcome {
    let changed = match (&before, &after) {
        (Some(b), Some(a)) => !same_mapping(b, a),
        _ => true,
    };
    WriteOutcome {
        before,
        after,
        changed,
        tied: Vec::new(),
        unordered: Vec::new(),
    }
}

/// A customer's backfill marks: the run that last wrote it, the pass that
/// listed it, the pass that listed its first subscription (all none for
/// other writes, which leave them as they are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Marks {
    run: Option<i64>,
    listed: Option<i64>,
    first_sub: Option<i64>,
}

/// What a backfill write reads of the customer's row first.
#[derive(Debug, Clone, Default)]
struct PassState {
    marks: Marks,
    subscription_id: Option<String>,
    current_at: Option<i64>,
}

/// Whether a write's count of changed rows is read (see [`Db::exec_later`]).
#[derive(Debug, Clone, Copy)]
enum Count {
    Read,
    Unread,
}

/// A column the schema holds NOT NULL.
fn required<T>(v: Option<T>) -> anyhow::Result<T> {
    v.ok_or_else(|| anyhow::anyhow!("a NOT NULL column of the store read as NULL"))
}

/// The writes of one transaction; the caller owns the transaction. The
/// rules are this code's; the database is either engine's (see [`Db`]).
pub(super) struct Writer<D> {
    /// `synced_at` of what this transaction writes.
    now: String,
    db: D,
}

impl<'c> Writer<Sqlite<'c>> {
    /// A writer on an SQLite connection.
    pub(super) fn new(conn: &'c Connection, now: &str) -> Writer<Sqlite<'c>> {
        Writer::on(Sqlite::new(conn), now)
    }
}

impl<D: Db> Writer<D> {
    pub(super) fn on(db: D, now: &str) -> Writer<D> {
        Writer {
            now: now.to_owned(),
            db,
        }
    }

    /// A new transaction writes as of `now`.
    pub(super) fn set_now(&mut self, now: String) {
        self.now = now;
    }

    /// One customer, answering its mapping before and after.
    pub(super) fn apply(&mut self, w: &CustomerWrite) -> anyhow::Result<WriteOutcome> {
        let before = mapping_for(&mut self.db, &w.customer_id)?;
        let Written { tied, unordered } = self.write(w, before.is_some())?;
        let after = mapping_for(&mut self.db, &w.customer_id)?;
        Ok(WriteOutcome {
            tied,
            unordered,
            ..outcome(before, after)
        })
    }

    /// One customer of a backfill (`listed`: by the customers listing):
    /// journaled before the run's first write of it, then written and
    /// marked (see [`PassMarks`]), in as few statements as the store's
    /// state allows: it is read once, first.
    pub(super) fn apply_journaled(
        &mut self,
        w: &CustomerWrite,
        pass: PassMarks,
        listed: bool,
    ) -> anyhow::Result<()> {
        let id = w.customer_id.as_str();
        let state: Option<PassState> =
            sql::one(&mut self.db, Sql::PassState.text(), &args![id], |r| {
                Ok(PassState {
                    marks: Marks {
                        run: r.int(0)?,
                        listed: r.int(1)?,
                        first_sub: r.int(2)?,
                    },
                    subscription_id: r.string(3)?,
                    current_at: r.int(4)?,
                })
            })?;
        let has = state.clone().unwrap_or_default();
        if state.is_some() && has.marks.run != Some(pass.run) {
            self.journal(id)?;
        }
        // The pass's first subscription of the customer is its current one.
        let first_sub = match &w.current {
            Current::FirstInPass(sub, at) if has.marks.first_sub != Some(pass.pass) => {
                Some((sub.as_str(), *at))
            }
            _ => None,
        };
        let marks = Marks {
            run: Some(pass.run),
            listed: if listed {
                Some(pass.pass)
            } else {
                has.marks.listed
            },
            first_sub: if first_sub.is_some() {
                Some(pass.pass)
            } else {
                has.marks.first_sub
            },
        };
        let mut marked = false;
        // A customer the store has gains nothing from a write that only
        // fills blanks with blanks (a subscription page's).
        let nothing_to_fill =
            w.info.snapshot_at.is_none() && w.info.user_id.is_none() && w.info.email.is_none();
        if state.is_none() || !nothing_to_fill {
            marked |= self.upsert_customer(w, marks, Count::Read)?;
        }
        for (sub, snapshot_at) in &w.subscriptions {
            self.upsert_subscription(sub, *snapshot_at, w.source, None)?;
        }
        match (&w.current, first_sub) {
            (Current::FirstInPass(..), None) => {}
            // `Sql::Point`'s rule, on the state read above (the upsert
            // leaves the pointer alone): only a change is written.
            (_, Some((sub, at))) => {
                let newer = has.current_at.is_none_or(|c| c <= at);
                if newer && has.subscription_id.as_deref() != Some(sub) {
                    let now = self.now.as_str();
                    self.db.exec_later(
                        Sql::PointMarked.text(),
                        &args![id, sub, at, now, marks.run, marks.listed, marks.first_sub],
                    )?;
                    marked = true;
                }
            }
            _ => {
                self.set_current(w)?;
            }
        }
        if !marked && has.marks != marks {
            self.db.exec_later(
                Sql::Mark.text(),
                &args![id, marks.run, marks.listed, marks.first_sub],
            )?;
        }
        Ok(())
    }

    /// Keep the customer's mapping as it is before the run changes it.
    fn journal(&mut self, customer_id: &str) -> anyhow::Result<()> {
        let Some(b) = mapping_for(&mut self.db, customer_id)? else {
            return Ok(());
        };
        let card = b.payment_method.as_ref();
        self.db.exec_later(
            Sql::Journal.text(),
            &args![
                customer_id,
                &b.user_id,
                &b.email,
                &b.subscription_id,
                &b.status,
                &b.price_id,
                b.current_period_start,
                b.current_period_end,
                b.cancel_at_period_end,
                card.and_then(|c| c.brand.as_deref()),
                card.and_then(|c| c.last4.as_deref()),
                &b.synced_at,
                &b.source,
                b.deleted,
            ],
        )?;
        Ok(())
    }

    /// One customer's rows; the subscriptions rule 2 could not tell apart,
    /// and those rule 1 ordered by arrival against the store's snapshot.
    /// `known`: the store had the customer (a new one has no snapshot to
    /// weigh against, and skips the look-up).
    fn write(&mut self, w: &CustomerWrite, known: bool) -> anyhow::Result<Written> {
        let mut unordered = Vec::new();
        match w.customer_evidence.as_ref().filter(|_| known) {
            Some(order) => match self.customer_against_stored(w, order)? {
                Against::Older => {
                    // The store's view of the user is newer: only what
                    // else this write says (a deletion) applies.
                    let (user_id, email) = self.stored_user(&w.customer_id)?;
                    let mut older = w.clone();
                    older.info.user_id = user_id;
                    older.info.email = email;
                    older.customer_evidence = None;
                    self.upsert_customer(&older, Marks::default(), Count::Unread)?;
                }
                Against::Newer => {
                    self.upsert_customer(w, Marks::default(), Count::Unread)?;
                }
                Against::Unordered(events) => {
                    unordered.push((w.customer_id.clone(), events));
                    self.upsert_customer(w, Marks::default(), Count::Unread)?;
                }
            },
            None => {
                self.upsert_customer(w, Marks::default(), Count::Unread)?;
            }
        }
        for (sub, snapshot_at) in &w.subscriptions {
            let order = w
                .evidence
                .iter()
                .find(|(id, _)| *id == sub.id)
                .map(|(_, o)| o);
            if let Some(order) = order.filter(|_| known) {
                match self.against_stored(sub, *snapshot_at, order)? {
                    Against::Older => continue,
                    Against::Newer => {}
                    Against::Unordered(events) => unordered.push((sub.id.clone(), events)),
                }
            }
            self.upsert_subscription(sub, *snapshot_at, w.source, order)?;
        }
        Ok(Written {
            tied: self.set_current(w)?,
            unordered,
        })
    }

    /// The user and email the store shows for a customer.
    fn stored_user(&mut self, id: &str) -> anyhow::Result<(Option<String>, Option<String>)> {
        Ok(
            sql::one(&mut self.db, Sql::StoredCustomer.text(), &args![id], |r| {
                Ok((r.string(1)?, r.string(2)?))
            })?
            .unwrap_or_default(),
        )
    }

    /// Rule 1 between a customer object from events and the one the store
    /// keeps from the same second.
    fn customer_against_stored(
        &mut self,
        w: &CustomerWrite,
        order: &SnapshotOrder,
    ) -> anyhow::Result<Against> {
        let Some(at) = w.info.snapshot_at else {
            return Ok(Against::Newer);
        };
        let stored = sql::one(
            &mut self.db,
            Sql::StoredCustomer.text(),
            &args![&w.customer_id],
            |r| {
                let info = CustomerInfo {
                    user_id: r.string(1)?,
                    email: r.string(2)?,
                    deleted: false,
                    snapshot_at: r.int(0)?,
                };
                Ok((info, r.string(3)?, r.int(4)?, r.string(5)?))
            },
        )?;
        let Some((info, event, stage, previous)) = stored else {
            return Ok(Against::Newer);
        };
        if info.snapshot_at != Some(at) {
            return Ok(Against::Newer);
        }
        let Some(event) = event else {
            return Ok(Against::Newer);
        };
        if *event == *order.stamp.event_id {
            return Ok(Against::Newer);
        }
        let mut new = w.info.clone();
        new.deleted = false;
        self.weigh(
            &info,
            Stamp {
                created: at,
                listed: None,
                stage: stage.map_or(Stage::Updated, Stage::from_number),
                seq: 0,
                event_id: std::sync::Arc::from(event),
            },
            previous.and_then(|p| serde_json::from_str(&p).ok()),
            &new,
            order,
        )
    }

    /// Rule 1 between the store's snapshot (arrived first) and this write's.
    fn weigh<S: crate::truth::Snapshot>(
        &self,
        stored: &S,
        stamp: Stamp,
        previous: Option<Previous>,
        new: &S,
        order: &SnapshotOrder,
    ) -> anyhow::Result<Against> {
        let mut new_stamp = order.stamp.clone();
        // A list is one input's; the store's snapshot arrived first.
        new_stamp.listed = None;
        new_stamp.seq = 1;
        let (newer, evidence) = crate::truth::order(
            Seen {
                stamp: &stamp,
                snapshot: stored,
                previous: previous.as_ref(),
            },
            Seen {
                stamp: &new_stamp,
                snapshot: new,
                previous: order.previous.as_ref(),
            },
        );
        Ok(match (newer, evidence) {
            (Newer::First, _) => Against::Older,
            (Newer::Second, Evidence::Arrival) => Against::Unordered(vec![
                new_stamp.event_id.to_string(),
                stamp.event_id.to_string(),
            ]),
            (Newer::Second, _) => Against::Newer,
        })
    }

    /// Rule 1 between an events snapshot and the one the store keeps from
    /// the same second (an earlier run's, or an earlier `serve` batch's).
    fn against_stored(
        &mut self,
        sub: &SubscriptionRecord,
        snapshot_at: i64,
        order: &SnapshotOrder,
    ) -> anyhow::Result<Against> {
        let stored = sql::one(
            &mut self.db,
            Sql::StoredSnapshot.text(),
            &args![&sub.id],
            |r| {
                let record = SubscriptionRecord {
                    id: sub.id.clone(),
                    customer_id: required(r.string(1)?)?,
                    status: required(r.string(2)?)?,
                    price_id: r.string(3)?,
                    current_period_start: r.int(4)?,
                    current_period_end: r.int(5)?,
                    cancel_at_period_end: r.flag(6)?,
                    payment_method_id: r.string(7)?,
                    card: None,
                    created: required(r.int(8)?)?,
                };
                let at = required(r.int(0)?)?;
                Ok((at, record, r.string(9)?, r.int(10)?, r.string(11)?))
            },
        )?;
        let Some((at, record, event, stage, previous)) = stored else {
            return Ok(Against::Newer);
        };
        if at != snapshot_at {
            return Ok(Against::Newer);
        }
        let event: std::sync::Arc<str> = std::sync::Arc::from(event.unwrap_or_default());
        if *event == *order.stamp.event_id {
            return Ok(Against::Newer);
        }
        let stamp = Stamp {
            created: at,
            listed: None,
            stage: stage.map_or(Stage::Updated, Stage::from_number),
            seq: 0,
            event_id: event,
        };
        let previous: Option<Previous> = previous.and_then(|p| serde_json::from_str(&p).ok());
        self.weigh(&record, stamp, previous, sub, order)
    }

    /// The customer's row; whether it was written (inserted, or updated
    /// with `marks` if given: see [`Marks`]).
    fn upsert_customer(
        &mut self,
        w: &CustomerWrite,
        marks: Marks,
        count: Count,
    ) -> anyhow::Result<bool> {
        let (info, now) = (&w.info, self.now.as_str());
        let db = &mut self.db;
        let run = |db: &mut D, sql: Sql, args: &[Arg<'_>]| -> anyhow::Result<u64> {
            match count {
                Count::Read => db.exec(sql.text(), args),
                Count::Unread => db.exec_later(sql.text(), args).map(|()| 0),
            }
        };
        let changed = match info.snapshot_at {
            Some(at) => {
                let order = w.customer_evidence.as_ref();
                let previous = order
                    .and_then(|o| o.previous.as_ref())
                    .and_then(|p| serde_json::to_string(p).ok());
                run(
                    db,
                    Sql::CustomerSnapshot,
                    &args![
                        &w.customer_id,
                        &info.user_id,
                        &w.user_key,
                        &info.email,
                        info.deleted,
                        at,
                        w.source.as_str(),
                        now,
                        marks.run,
                        marks.listed,
                        marks.first_sub,
                        order.map(|o| &*o.stamp.event_id),
                        order.map(|o| o.stamp.stage.number()),
                        previous.as_deref(),
                    ],
                )?
            }
            None => run(
                db,
                Sql::CustomerHint,
                &args![
                    &w.customer_id,
                    &info.user_id,
                    &w.user_key,
                    &info.email,
                    w.source.as_str(),
                    now,
                    marks.run,
                    marks.listed,
                    marks.first_sub,
                    info.deleted,
                ],
            )?,
        };
        Ok(changed > 0)
    }

    fn upsert_subscription(
        &mut self,
        s: &SubscriptionRecord,
        snapshot_at: i64,
        source: RecordSource,
        order: Option<&SnapshotOrder>,
    ) -> anyhow::Result<()> {
        let event = order.map(|o| &*o.stamp.event_id);
        let stage = order.map(|o| o.stamp.stage.number());
        let previous = order
            .and_then(|o| o.previous.as_ref())
            .and_then(|p| serde_json::to_string(p).ok());
        let (brand, last4) = match &s.card {
            Some(c) => (c.brand.as_deref(), c.last4.as_deref()),
            None => (None, None),
        };
        let now = self.now.as_str();
        self.db.exec_later(
            Sql::Subscription.text(),
            &args![
                &s.id,
                &s.customer_id,
                &s.status,
                &s.price_id,
                s.current_period_start,
                s.current_period_end,
                s.cancel_at_period_end,
                &s.payment_method_id,
                brand,
                last4,
                s.created,
                snapshot_at,
                source.as_str(),
                now,
                event,
                stage,
                previous.as_deref(),
            ],
        )?;
        Ok(())
    }

    fn point(
        &mut self,
        customer_id: &str,
        sub: Option<&str>,
        at: Option<i64>,
    ) -> anyhow::Result<()> {
        let now = self.now.as_str();
        self.db
            .exec_later(Sql::Point.text(), &args![customer_id, sub, at, now])?;
        Ok(())
    }

    /// Point the customer at its current subscription, by the rule of the
    /// write's source (see [`Current`]); answer the subscriptions the
    /// model could not tell apart.
    fn set_current(&mut self, w: &CustomerWrite) -> anyhow::Result<Vec<String>> {
        let id = w.customer_id.as_str();
        match &w.current {
            Current::Keep => {}
            Current::Listed(sub, at) => self.point(id, sub.as_deref(), Some(*at))?,
            // Only a backfill writes these (see `apply_journaled`); alone,
            // the subscription points at itself.
            Current::FirstInPass(sub, at) => self.point(id, Some(sub), Some(*at))?,
            Current::Newest(born) => {
                let shown: Option<String> =
                    sql::one(&mut self.db, Sql::CurrentOf.text(), &args![id], |r| {
                        r.string(0)
                    })?
                    .flatten();
                let mut newest: Vec<(String, i64)> = Vec::new();
                self.db.each(Sql::Newest.text(), &args![id], &mut |r| {
                    newest.push((required(r.string(0)?)?, required(r.int(1)?)?));
                    Ok(true)
                })?;
                let candidates: Vec<crate::truth::Candidate<'_>> = newest
                    .iter()
                    .map(|(sub, created)| crate::truth::Candidate {
                        id: sub,
                        created: *created,
                        born: born.iter().find(|(b, _)| b == sub).map(|(_, s)| s),
                    })
                    .collect();
                let pick = crate::truth::current_subscription(&candidates, shown.as_deref());
                if pick.id.is_some() {
                    self.point(id, pick.id.as_deref(), None)?;
                }
                return Ok(pick.ambiguous);
            }
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::mapping::FROM;
    use crate::store::{PassPage, SqliteStore};

    fn sub(id: &str, customer: &str, status: &str, created: i64) -> SubscriptionRecord {
        SubscriptionRecord {
            id: id.into(),
            customer_id: customer.into(),
            status: status.into(),
            price_id: Some("price_1".into()),
            current_period_start: Some(1),
            current_period_end: Some(2),
            cancel_at_period_end: false,
            payment_method_id: Some("pm_1".into()),
            card: Some(Card {
                brand: Some("visa".into()),
                last4: Some("4242".into()),
            }),
            created,
        }
    }

    /// A customer object, as the API lists it at `at`.
    fn customer(id: &str, user: Option<&str>, at: i64) -> CustomerWrite {
        CustomerWrite {
            customer_id: id.into(),
            info: CustomerInfo {
                user_id: user.map(str::to_owned),
                email: Some(format!("{id}@example.com")),
                deleted: false,
                snapshot_at: Some(at),
            },
            user_key: "clerkUserId".into(),
            subscriptions: Vec::new(),
            evidence: Vec::new(),
            customer_evidence: None,
            current: Current::Keep,
            source: RecordSource::Api,
        }
    }

    /// A customer's subscriptions at `at`, `current` its mapping's.
    fn subscriptions(
        id: &str,
        subs: Vec<SubscriptionRecord>,
        current: Current,
        at: i64,
    ) -> CustomerWrite {
        CustomerWrite {
            info: CustomerInfo::default(),
            subscriptions: subs.into_iter().map(|s| (s, at)).collect(),
            current,
            ..customer(id, None, at)
        }
    }

    /// The report as it was first read: the store's tables and the
    /// journal joined in customer id order, a row at a time.
    fn joined(s: &SqliteStore, run: i64) -> Vec<(String, WriteOutcome)> {
        s.conn
            .execute_batch("CREATE INDEX temp.joined ON pass_journal(customer_id)")
            .unwrap();
        let sql = format!(
            "{MAPPING_SELECT}, j.customer_id, j.user_id, j.email, j.subscription_id, j.status,
                j.price_id, j.current_period_start, j.current_period_end,
                j.cancel_at_period_end, j.card_brand, j.card_last4, j.synced_at, j.source,
                j.deleted
             {FROM} LEFT JOIN temp.pass_journal j ON j.customer_id = c.id
             WHERE c.written_run = ?1 ORDER BY c.id"
        );
        let mut st = s.conn.prepare(&sql).unwrap();
        st.query_map([run], report_row)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn report(s: &SqliteStore, run: i64, page: usize) -> Vec<(String, WriteOutcome)> {
        let mut all: Vec<(String, WriteOutcome)> = Vec::new();
        loop {
            let after = all.last().map(|(c, _)| c.clone());
            let rows = run_page(&s.conn, run, after.as_deref(), page).unwrap();
            let done = rows.len() < page;
            all.extend(rows);
            if done {
                return all;
            }
        }
    }

    fn outcomes(report: &[(String, WriteOutcome)]) -> Vec<String> {
        report
            .iter()
            .map(|(c, o)| format!("{c} {:?} {:?} {}", o.before, o.after, o.changed))
            .collect()
    }

    #[test]
    fn the_report_read_in_order_is_the_report_joined_at_random() {
        let mut s = SqliteStore::in_memory().unwrap();
        store_before_the_run(&mut s);
        let b = s.begin_backfill(50).unwrap();
        let marks = PassMarks {
            pass: b.pass,
            run: s.begin_run().unwrap(),
        };
        let (customers, subs) = the_runs_writes();
        s.pass_writes(marks, |out| -> anyhow::Result<()> {
            out.write(&PassPage {
                writes: &customers,
                listed: true,
                checkpoint: None,
            })?;
            out.write(&PassPage {
                writes: &subs,
                listed: false,
                checkpoint: Some(&b),
            })
        })
        .unwrap();

        let joined = joined(&s, marks.run);
        assert_eq!(
            joined.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
            [
                "cus_b_changes",
                "cus_c_new",
                "cus_d_loses_its_own",
                "cus_f_deleted",
                "cus_g_points_elsewhere",
                "cus_h_same",
                "cus_i_new_without",
            ]
        );
        assert_each_outcome(&joined);

        assert_eq!(run_len(&s.conn, marks.run).unwrap(), 7);
        for page in [1, 2, 3, 7, 100] {
            assert_eq!(
                outcomes(&report(&s, marks.run, page)),
                outcomes(&joined),
                "pages of {page}"
            );
        }
        // Without `subscriptions_customer`, by the subscription's id alone.
        s.conn
            .execute_batch("DROP INDEX subscriptions_customer")
            .unwrap();
        assert_eq!(outcomes(&report(&s, marks.run, 3)), outcomes(&joined));
        // The next run reports only what it writes.
        let again = s.begin_run().unwrap();
        assert_eq!(run_len(&s.conn, again).unwrap(), 0);
        assert!(report(&s, again, 10).is_empty());
    }

    /// The store before the run, at 10: customers that the run leaves the
    /// same, changes, deletes, takes their subscription from, does not
    /// write, or shows a subscription now kept under another customer.
    fn store_before_the_run(s: &mut SqliteStore) {
        let listed = |s: &str, c: &str, status: &str| sub(s, c, status, 5);
        let current = |id: &str| Current::Listed(Some(id.into()), 10);
        // Before the run, at 10.
        let mut before = Vec::new();
        for (id, sub_id, status) in [
            ("cus_h_same", "sub_h", "active"),
            ("cus_b_changes", "sub_b", "active"),
            ("cus_f_deleted", "sub_f", "trialing"),
            ("cus_d_loses_its_own", "sub_d", "active"),
            ("cus_e_not_written", "sub_e", "active"),
            ("cus_g_points_elsewhere", "sub_moved", "active"),
        ] {
            before.push(customer(id, Some("user"), 10));
            before.push(subscriptions(
                id,
                vec![listed(sub_id, id, status)],
                current(sub_id),
                10,
            ));
        }
        // A subscription the store now keeps under another customer, while
        // cus_g still shows it (the join finds it by its id).
        before.push(subscriptions(
            "cus_a_other",
            vec![sub("sub_moved", "cus_a_other", "past_due", 5)],
            Current::Keep,
            11,
        ));
        s.apply(&before).unwrap();
    }

    /// The run's writes at 50: its customers listing, then its
    /// subscriptions listing (and what settling writes).
    fn the_runs_writes() -> (Vec<CustomerWrite>, Vec<CustomerWrite>) {
        let listed = |s: &str, c: &str, status: &str| sub(s, c, status, 5);
        let customers: Vec<CustomerWrite> = [
            "cus_h_same",
            "cus_b_changes",
            "cus_d_loses_its_own",
            "cus_g_points_elsewhere",
            "cus_c_new",
            "cus_i_new_without",
        ]
        .iter()
        .map(|id| customer(id, Some("user"), 50))
        .chain([CustomerWrite {
            info: CustomerInfo {
                deleted: true,
                snapshot_at: Some(50),
                ..CustomerInfo::default()
            },
            ..customer("cus_f_deleted", None, 50)
        }])
        .collect();
        let first = |id: &str| Current::FirstInPass(id.into(), 50);
        let subs = vec![
            subscriptions(
                "cus_h_same",
                vec![listed("sub_h", "cus_h_same", "active")],
                first("sub_h"),
                50,
            ),
            subscriptions(
                "cus_b_changes",
                vec![listed("sub_b", "cus_b_changes", "past_due")],
                first("sub_b"),
                50,
            ),
            subscriptions(
                "cus_c_new",
                vec![
                    sub("sub_c2", "cus_c_new", "active", 7),
                    sub("sub_c1", "cus_c_new", "canceled", 6),
                ],
                first("sub_c2"),
                50,
            ),
            // What settling writes for a customer none of whose subscriptions
            // was listed.
            subscriptions(
                "cus_d_loses_its_own",
                Vec::new(),
                Current::Listed(None, 50),
                50,
            ),
        ];
        (customers, subs)
    }

    /// Each customer's mapping before and after the run, as joined.
    fn assert_each_outcome(joined: &[(String, WriteOutcome)]) {
        let status = |c: &str| {
            let (_, o) = joined.iter().find(|(id, _)| id == c).unwrap();
            (
                o.before.as_ref().map(|b| b.status.clone()),
                o.after.as_ref().map(|a| a.status.clone()),
                o.changed,
            )
        };
        assert_eq!(
            status("cus_b_changes"),
            (Some("active".into()), Some("past_due".into()), true)
        );
        assert_eq!(status("cus_c_new"), (None, Some("active".into()), true));
        assert_eq!(
            status("cus_d_loses_its_own"),
            (Some("active".into()), Some("none".into()), true)
        );
        assert_eq!(
            status("cus_f_deleted"),
            (Some("trialing".into()), Some("deleted".into()), true)
        );
        assert_eq!(
            status("cus_g_points_elsewhere"),
            (Some("past_due".into()), Some("past_due".into()), false)
        );
        assert_eq!(
            status("cus_h_same"),
            (Some("active".into()), Some("active".into()), false)
        );
        assert_eq!(
            status("cus_i_new_without"),
            (None, Some("none".into()), true)
        );
    }
}
