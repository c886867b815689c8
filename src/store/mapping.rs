//! The mapping: one row per customer, user -> customer -> subscription.
//! Filters are SQL conditions with bound parameters, and rows come in the
//! order of the `customers_mapping` index (`user_id, id`, unmapped last),
//! so a million-customer store streams without a sort or a buffer; a few
//! connections read it at once, range by range, and the rows come back in
//! order.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc;

use rusqlite::{Connection, params_from_iter};
use serde::Serialize;

use super::SqliteStore;
use super::sql::{self, Arg, Db, Row, SqliteRow};
use crate::objects::Card;

/// One row of the user -> customer -> subscription mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

/// Which rows to show; empty lists and `false` do not filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub users: Vec<String>,
    pub customers: Vec<String>,
    pub statuses: Vec<String>,
    pub unmapped: bool,
}

impl Filter {
    /// Whether the filter names users or customers: a search of the index
    /// for a few rows, not a walk through it.
    fn searches(&self) -> bool {
        !self.users.is_empty() || !self.customers.is_empty()
    }

    /// Whether every row passes (no filter was given).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.customers.is_empty()
            && self.statuses.is_empty()
            && !self.unmapped
    }
}

/// Users mapped to more than one customer (see [`DuplicateFinder`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Duplicates {
    /// How many users have more than one customer.
    pub users: usize,
    /// The first of them by user id (as many as asked for).
    pub first: Vec<DuplicateUser>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateUser {
    pub user_id: String,
    /// Their customers, by id.
    pub customers: Vec<String>,
}

/// A row's status: a deleted customer has no live subscription (Stripe
/// cancels them on deletion), so its status is `deleted` and its
/// subscription fields are empty.
macro_rules! status_sql {
    () => {
        "CASE WHEN c.deleted THEN 'deleted' ELSE COALESCE(s.status, 'none') END"
    };
}

pub(super) const FROM: &str = "
FROM customers c
LEFT JOIN subscriptions s ON s.id = c.subscription_id AND NOT c.deleted";

pub(super) const MAPPING_SELECT: &str = concat!(
    "
SELECT c.user_id, c.id, c.email, s.id, ",
    status_sql!(),
    ",
       s.price_id, s.current_period_start,
       s.current_period_end, s.cancel_at_period_end, s.card_brand, s.card_last4,
       COALESCE(s.synced_at, c.synced_at), COALESCE(s.source, c.source), c.deleted"
);

#[cfg(test)]
pub(super) fn mapping_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MappingRow> {
    let mut row = MappingRow::default();
    read_row(r, &mut row)?;
    Ok(row)
}

/// [`read_mapping`] of an SQLite row, in rusqlite's error.
fn read_row(r: &rusqlite::Row<'_>, row: &mut MappingRow) -> rusqlite::Result<()> {
    read_mapping(&SqliteRow(r), row).map_err(sql::sqlite_error)
}

/// A row of [`MAPPING_SELECT`] into `row`, reusing its strings: a walk
/// through a million rows allocates next to nothing.
pub(super) fn read_mapping(r: &dyn Row, row: &mut MappingRow) -> anyhow::Result<()> {
    let required = |i: usize| -> anyhow::Result<&str> {
        r.text(i)?
            .ok_or_else(|| anyhow::anyhow!("column {i} of the mapping is NULL"))
    };
    set(&mut row.user_id, r.text(0)?);
    set_text(&mut row.customer_id, required(1)?);
    set(&mut row.email, r.text(2)?);
    set(&mut row.subscription_id, r.text(3)?);
    set_text(&mut row.status, required(4)?);
    set(&mut row.price_id, r.text(5)?);
    row.current_period_start = r.int(6)?;
    row.current_period_end = r.int(7)?;
    row.cancel_at_period_end = r.flag(8)?;
    let (brand, last4) = (r.text(9)?, r.text(10)?);
    if brand.is_none() && last4.is_none() {
        row.payment_method = None;
    } else {
        let card = row.payment_method.get_or_insert(Card {
            brand: None,
            last4: None,
        });
        set(&mut card.brand, brand);
        set(&mut card.last4, last4);
    }
    set_text(&mut row.synced_at, required(11)?);
    set_text(&mut row.source, required(12)?);
    row.deleted = r.flag(13)?;
    Ok(())
}

fn set_text(into: &mut String, value: &str) {
    into.clear();
    into.push_str(value);
}

fn set(into: &mut Option<String>, value: Option<&str>) {
    match (into.as_mut(), value) {
        (Some(s), Some(v)) => set_text(s, v),
        (None, Some(v)) => *into = Some(v.to_owned()),
        (_, None) => *into = None,
    }
}

/// One customer's mapping row ([`MAPPING_SELECT`] of one customer).
pub(super) static MAPPING_FOR: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{MAPPING_SELECT}{FROM} WHERE c.id = ?1"));

/// One customer's row (the write path compares it before and after).
pub(super) fn mapping_for(
    db: &mut (impl Db + ?Sized),
    customer_id: &str,
) -> anyhow::Result<Option<MappingRow>> {
    sql::one(db, MAPPING_FOR.as_str(), &[Arg::Text(customer_id)], |r| {
        let mut row = MappingRow::default();
        read_mapping(r, &mut row)?;
        Ok(row)
    })
}

/// The two halves of the mapping's order, each one index range: users'
/// customers by (user id, customer id), then unmapped customers by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Mapped,
    Unmapped,
}

impl Half {
    fn condition(self) -> &'static str {
        match self {
            Half::Mapped => "c.user_id IS NOT NULL",
            Half::Unmapped => "c.user_id IS NULL",
        }
    }

    fn order(self) -> &'static str {
        match self {
            Half::Mapped => "c.user_id, c.id",
            Half::Unmapped => "c.id",
        }
    }

    /// The halves a filter can show rows from.
    fn of(f: &Filter) -> &'static [Half] {
        if f.unmapped {
            &[Half::Unmapped]
        } else if !f.users.is_empty() {
            &[Half::Mapped]
        } else {
            &[Half::Mapped, Half::Unmapped]
        }
    }
}

/// A filter as a WHERE clause over [`FROM`] (starting with `half`'s own
/// condition), and the values bound to its `?N` placeholders.
fn where_clause<'f>(f: &'f Filter, half: Half) -> (String, Vec<&'f str>) {
    let mut sql = format!(" WHERE {}", half.condition());
    let mut values: Vec<&str> = Vec::new();
    let mut any_of = |column: &str, wanted: &'f [String]| {
        if wanted.is_empty() {
            return;
        }
        let first = values.len() + 1;
        let marks: Vec<String> = (first..first + wanted.len())
            .map(|n| format!("?{n}"))
            .collect();
        sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
        values.extend(wanted.iter().map(String::as_str));
    };
    any_of("c.user_id", &f.users);
    any_of("c.id", &f.customers);
    any_of(status_sql!(), &f.statuses);
    (sql, values)
}

/// The most connections that read one mapping at once.
const MAX_READERS: usize = 4;

/// Customers per range of a parallel read, at most: a range's query is
/// cheap beside its rows' lookups.
const RANGE_ROWS: usize = 1024;

/// Customers in the first range, which doubles up to [`RANGE_ROWS`]: the
/// first rows come after this many lookups (a millisecond or two).
const FIRST_RANGE_ROWS: usize = 64;

/// A place in the mapping's order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    user_id: Option<String>,
    customer_id: String,
}

impl Key {
    fn of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Key> {
        Ok(Key {
            user_id: r.get(0)?,
            customer_id: r.get(1)?,
        })
    }
}

/// The rows of one half after one key and up to another (inclusive); no
/// key: from the start, or to the end.
#[derive(Debug, Clone)]
struct Range {
    half: Half,
    after: Option<Key>,
    upto: Option<Key>,
}

impl Range {
    fn whole(half: Half) -> Range {
        Range {
            half,
            after: None,
            upto: None,
        }
    }

    /// The SQL that keeps a row in the range, its values numbered from `first`.
    fn condition<'r>(&'r self, first: usize, values: &mut Vec<&'r str>) -> String {
        let mut sql = String::new();
        for (key, op) in [(&self.after, ">"), (&self.upto, "<=")] {
            let Some(key) = key else { continue };
            let n = first + values.len();
            match (self.half, &key.user_id) {
                (Half::Mapped, Some(user)) => {
                    sql.push_str(&format!(" AND (c.user_id, c.id) {op} (?{n}, ?{})", n + 1));
                    values.extend([user.as_str(), key.customer_id.as_str()]);
                }
                _ => {
                    sql.push_str(&format!(" AND c.id {op} ?{n}"));
                    values.push(&key.customer_id);
                }
            }
        }
        sql
    }
}

/// The queries of the mapping under a filter, one for each half it shows,
/// in order, each with its values (a reader that reads it whole).
pub(super) fn whole_queries(f: &Filter) -> Vec<(String, Vec<&str>)> {
    Half::of(f)
        .iter()
        .map(|&half| {
            let (cond, values) = where_clause(f, half);
            (
                format!("{MAPPING_SELECT}{FROM}{cond} ORDER BY {}", half.order()),
                values,
            )
        })
        .collect()
}

/// The SQL of one range of the mapping under a filter, and its values
/// (the tests read its query plan).
fn mapping_query<'a>(f: &'a Filter, half: Half, range: &'a Range) -> (String, Vec<&'a str>) {
    let (cond, mut values) = where_clause(f, half);
    let mut range_values = Vec::new();
    let within = range.condition(values.len() + 1, &mut range_values);
    values.extend(range_values);
    (
        format!(
            "{MAPPING_SELECT}{FROM}{cond}{within} ORDER BY {}",
            half.order()
        ),
        values,
    )
}

/// The rows of one range. Its rows past `len` are spares, kept with
/// their strings for the next range.
#[derive(Debug, Default)]
struct Batch {
    rows: Vec<MappingRow>,
    len: usize,
}

impl Batch {
    fn rows(&self) -> &[MappingRow] {
        &self.rows[..self.len]
    }
}

/// Cuts one half of the index's keys into ranges, small at first, then
/// of up to so many keys. The ranges cover every key there could be, the
/// last one open-ended, so whatever the readers' snapshot holds falls in
/// exactly one of them.
struct Cuts {
    half: Half,
    keys_per_range: usize,
    most_keys_per_range: usize,
    after: Option<Key>,
    ended: bool,
}

impl Cuts {
    fn new(half: Half, most_keys_per_range: usize) -> Cuts {
        Cuts {
            half,
            keys_per_range: FIRST_RANGE_ROWS.min(most_keys_per_range),
            most_keys_per_range,
            after: None,
            ended: false,
        }
    }

    /// The next range, reading its keys from `keys` (this half's keys in
    /// order); `None` after the last.
    fn next(&mut self, keys: &mut rusqlite::Rows<'_>) -> rusqlite::Result<Option<Range>> {
        if self.ended {
            return Ok(None);
        }
        let mut upto = None;
        for _ in 0..self.keys_per_range {
            match keys.next()? {
                Some(key) => upto = Some(Key::of(key)?),
                None => {
                    self.ended = true;
                    break;
                }
            }
        }
        self.keys_per_range = (2 * self.keys_per_range).min(self.most_keys_per_range);
        let upto = if self.ended { None } else { upto };
        Ok(Some(Range {
            half: self.half,
            after: std::mem::replace(&mut self.after, upto.clone()),
            upto,
        }))
    }
}

/// Start a read transaction on each reader such that all see the same
/// state of the store: no commit (by any connection) came between the
/// first reader's start and the last one's, as `watch`'s data version
/// tells. A few tries, for a store that is being written; `false` if the
/// writes never paused.
fn begin_together(watch: &Connection, readers: &[SqliteStore]) -> anyhow::Result<bool> {
    let version =
        || -> rusqlite::Result<i64> { watch.query_row("PRAGMA data_version", [], |r| r.get(0)) };
    for _ in 0..3 {
        let before = version()?;
        for r in readers {
            // A transaction's snapshot is taken at its first read.
            r.conn.execute_batch("BEGIN")?;
            r.conn.query_row(
                "SELECT count(*) FROM (SELECT 1 FROM customers LIMIT 1)",
                [],
                |_| Ok(()),
            )?;
        }
        if version()? == before {
            return Ok(true);
        }
        for r in readers {
            r.conn.execute_batch("ROLLBACK")?;
        }
    }
    Ok(false)
}

impl SqliteStore {
    /// The rows a filter shows, in order, one at a time: memory stays flat
    /// however large the store. `each` may stop the walk by returning an
    /// error, which is passed on. Returns how many rows were shown.
    ///
    /// A large store is read by several connections at once, each taking
    /// the next range of the index (see [`Store::for_each_mapping_in_ranges`]).
    pub fn for_each_mapping(
        &self,
        f: &Filter,
        each: impl FnMut(&MappingRow) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let readers = if f.searches() {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_READERS))
        };
        self.for_each_mapping_in_ranges(f, readers, RANGE_ROWS, each)
    }

    /// Give the readers of a walk of the whole mapping a page cache of
    /// `kib` KiB between them, each an equal share (SQLite's default is
    /// 2 MiB each): a walk in user order visits the subscriptions' pages
    /// in no order, and a cache that holds the upper levels of the trees
    /// saves most reads from the file. A total, so that the memory does
    /// not grow with the number of cores.
    pub(crate) fn cache_readers(&self, kib: i64) {
        self.reader_cache_kib.set(Some(kib));
    }

    /// [`Store::for_each_mapping`] on this connection alone.
    fn for_each_mapping_here(
        &self,
        f: &Filter,
        mut each: impl FnMut(&MappingRow) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut shown = 0;
        for &half in Half::of(f) {
            let whole = Range::whole(half);
            let (sql, values) = mapping_query(f, half, &whole);
            let mut st = self.conn.prepare(&sql)?;
            let mut rows = st.query(params_from_iter(values))?;
            let mut row = MappingRow::default();
            while let Some(r) = rows.next()? {
                read_row(r, &mut row)?;
                each(&row)?;
                shown += 1;
            }
        }
        Ok(shown)
    }

    /// The mapping read by `readers` connections at once, in ranges of up
    /// to `range_rows` customers of the index order: this connection walks
    /// the index's keys (cheap: the index is read in order) and cuts them
    /// into ranges, the readers take the ranges in turn and look their
    /// rows up (the costly part: each row's subscription is somewhere
    /// else in the file), and the rows are handed to `each` in order. At
    /// most two ranges per reader are in flight, so memory stays bounded.
    ///
    /// The readers share one snapshot of the store (see
    /// [`begin_together`]), so a concurrent writer cannot make a row show
    /// twice or not at all. A filter on users or customers (a search, not
    /// a walk), a small store, an in-memory one, or a single reader: the
    /// one connection reads it all.
    fn for_each_mapping_in_ranges(
        &self,
        f: &Filter,
        readers: usize,
        range_rows: usize,
        mut each: impl FnMut(&MappingRow) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let readers =
            if readers < 2 || f.searches() || !self.holds_more_customers_than(range_rows)? {
                None
            } else {
                self.open_readers(readers)?
            };
        let Some(readers) = readers else {
            return self.for_each_mapping_here(f, each);
        };
        std::thread::scope(|scope| {
            let mut jobs = Vec::with_capacity(readers.len());
            let mut done = Vec::with_capacity(readers.len());
            // Batches go back to the reader that filled them, which reuses
            // their rows: its allocations stay on its own thread.
            let mut spares = Vec::with_capacity(readers.len());
            for reader in readers {
                let (job_tx, job_rx) = mpsc::channel::<Range>();
                let (batch_tx, batch_rx) = mpsc::channel();
                let (spare_tx, spare_rx) = mpsc::channel::<Batch>();
                scope.spawn(move || {
                    for range in job_rx {
                        let mut batch = spare_rx.try_recv().unwrap_or_default();
                        let read = reader.mapping_range(f, &range, &mut batch);
                        if batch_tx.send(read.map(|()| batch)).is_err() {
                            return;
                        }
                    }
                });
                jobs.push(job_tx);
                done.push(batch_rx);
                spares.push(spare_tx);
            }
            let stopped = || anyhow::anyhow!("a reader of the store stopped");
            // Which reader has each range in flight, in order.
            let mut in_flight = VecDeque::new();
            let mut next = 0;
            let mut shown = 0;
            for &half in Half::of(f) {
                let mut keys = self.conn.prepare(&format!(
                    "SELECT c.user_id, c.id FROM customers c WHERE {} ORDER BY {}",
                    half.condition(),
                    half.order()
                ))?;
                let mut keys = keys.query([])?;
                let mut cuts = Cuts::new(half, range_rows);
                loop {
                    while in_flight.len() < 2 * jobs.len() {
                        let Some(range) = cuts.next(&mut keys)? else {
                            break;
                        };
                        jobs[next].send(range).map_err(|_| stopped())?;
                        in_flight.push_back(next);
                        next = (next + 1) % jobs.len();
                    }
                    let Some(reader) = in_flight.pop_front() else {
                        break;
                    };
                    let batch: Batch = done[reader].recv().map_err(|_| stopped())??;
                    for row in batch.rows() {
                        each(row)?;
                        shown += 1;
                    }
                    // A reader that has stopped needs no spares.
                    let _ = spares[reader].send(batch);
                }
            }
            Ok(shown)
        })
    }

    /// `n` more connections to this store's file, begun on one snapshot;
    /// `None` for an in-memory store (or copy), which has no file to share.
    fn open_readers(&self, n: usize) -> anyhow::Result<Option<Vec<SqliteStore>>> {
        let Some(file) = self.conn.path().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let mut readers = Vec::with_capacity(n);
        for _ in 0..n {
            match SqliteStore::open_read_only(Path::new(file))? {
                Some(reader) => {
                    if let Some(kib) = self.reader_cache_kib.get() {
                        let share = kib / i64::try_from(n).unwrap_or(i64::MAX);
                        reader
                            .conn
                            .pragma_update(None, "cache_size", -share.max(1))?;
                    }
                    readers.push(reader)
                }
                None => return Ok(None),
            }
        }
        Ok(begin_together(&self.conn, &readers)?.then_some(readers))
    }

    /// One range of the mapping, on this connection, into `batch`.
    fn mapping_range(&self, f: &Filter, range: &Range, batch: &mut Batch) -> anyhow::Result<()> {
        let (sql, values) = mapping_query(f, range.half, range);
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(values))?;
        batch.len = 0;
        while let Some(r) = rows.next()? {
            if batch.len == batch.rows.len() {
                batch.rows.push(MappingRow::default());
            }
            read_row(r, &mut batch.rows[batch.len])?;
            batch.len += 1;
        }
        Ok(())
    }

    /// Whether the store holds more than `n` customers (without counting
    /// them all).
    fn holds_more_customers_than(&self, n: usize) -> anyhow::Result<bool> {
        let limit = i64::try_from(n).unwrap_or(i64::MAX).saturating_add(1);
        let found: i64 = self.conn.query_row(
            "SELECT count(*) FROM (SELECT 1 FROM customers LIMIT ?1)",
            [limit],
            |r| r.get(0),
        )?;
        Ok(found >= limit)
    }

    /// The rows a filter shows, in order, all at once (tests: the commands
    /// stream them).
    #[cfg(test)]
    pub fn mapping(&self, f: &Filter) -> anyhow::Result<Vec<MappingRow>> {
        let mut rows = Vec::new();
        self.for_each_mapping(f, |r| {
            rows.push(r.clone());
            Ok(())
        })?;
        Ok(rows)
    }

    /// One customer's row, if the store knows the customer.
    pub fn mapping_of(&self, customer_id: &str) -> anyhow::Result<Option<MappingRow>> {
        mapping_for(&mut sql::Sqlite::new(&self.conn), customer_id)
    }

    /// Whether the store holds any customer.
    pub fn has_customers(&self) -> anyhow::Result<bool> {
        super::reads::has_customers(&mut sql::Sqlite::new(&self.conn))
    }
}

/// Finds the users with more than one customer among rows that come in the
/// mapping's order, where a user's customers are adjacent: it holds only
/// the current user's customers and the first few users found, so it
/// watches a stream of any length.
#[derive(Debug)]
pub struct DuplicateFinder {
    named: usize,
    /// The user of the rows being seen, and their first customer.
    user: Option<String>,
    first: String,
    /// The user's other customers, if any.
    more: Vec<String>,
    found: Duplicates,
}

impl DuplicateFinder {
    /// A finder that names the first `named` users it finds.
    pub fn new(named: usize) -> Self {
        DuplicateFinder {
            named,
            user: None,
            first: String::new(),
            more: Vec::new(),
            found: Duplicates::default(),
        }
    }

    pub fn see(&mut self, r: &MappingRow) {
        if r.user_id.is_some() && r.user_id == self.user {
            self.more.push(r.customer_id.clone());
            return;
        }
        self.close_user();
        // Reused from user to user: most users have one customer.
        self.user.clone_from(&r.user_id);
        self.first.clone_from(&r.customer_id);
    }

    pub fn finish(mut self) -> Duplicates {
        self.close_user();
        self.found
    }

    fn close_user(&mut self) {
        if self.more.is_empty() {
            return;
        }
        self.found.users += 1;
        if let Some(user_id) = &self.user
            && self.found.first.len() < self.named
        {
            let mut customers = vec![self.first.clone()];
            customers.append(&mut self.more);
            self.found.first.push(DuplicateUser {
                user_id: user_id.clone(),
                customers,
            });
        }
        self.more.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str, values: &[&str]) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st
            .query_map(params_from_iter(values), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn user_filter_searches_the_index_without_sorting() {
        let s = SqliteStore::in_memory().unwrap();
        let f = Filter {
            users: vec!["user_1".into()],
            ..Filter::default()
        };
        assert_eq!(Half::of(&f), [Half::Mapped]);
        let whole = Range::whole(Half::Mapped);
        let (sql, values) = mapping_query(&f, Half::Mapped, &whole);
        let plan = plan(&s.conn, &sql, &values);
        assert!(
            plan.contains("SEARCH c USING COVERING INDEX customers_mapping (user_id=?)"),
            "{plan}"
        );
        assert!(
            plan.contains("USING INTEGER PRIMARY KEY")
                || plan.contains("sqlite_autoindex_subscriptions_1"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn the_whole_mapping_streams_in_index_order() {
        let s = SqliteStore::in_memory().unwrap();
        let all = Filter::default();
        for half in [Half::Mapped, Half::Unmapped] {
            let whole = Range::whole(half);
            let (sql, values) = mapping_query(&all, half, &whole);
            let plan = plan(&s.conn, &sql, &values);
            assert!(
                plan.contains("USING COVERING INDEX customers_mapping"),
                "{half:?}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{half:?}: {plan}");
        }
    }

    #[test]
    fn ranges_search_the_index_without_sorting() {
        let s = SqliteStore::in_memory().unwrap();
        let key = |user: Option<&str>, customer: &str| Key {
            user_id: user.map(str::to_owned),
            customer_id: customer.into(),
        };
        let f = Filter {
            statuses: vec!["active".into()],
            ..Filter::default()
        };
        for (half, user) in [(Half::Mapped, Some("u")), (Half::Unmapped, None)] {
            let range = Range {
                half,
                after: Some(key(user, "cus_a")),
                upto: Some(key(user, "cus_b")),
            };
            let (sql, values) = mapping_query(&f, half, &range);
            assert_eq!(values.len(), if user.is_some() { 5 } else { 3 });
            let plan = plan(&s.conn, &sql, &values);
            assert!(
                plan.contains("SEARCH c USING COVERING INDEX customers_mapping ("),
                "{half:?}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{half:?}: {plan}");
        }
    }

    /// A store made before the index: read as it is, and given the index
    /// (in place of v1's) at the next open for writing.
    #[test]
    fn an_older_store_reads_without_the_index_and_gains_it_on_write() {
        let (dir, s) = store_of(50);
        let path = dir.path().join("s.db");
        s.conn
            .execute_batch(
                "DROP INDEX customers_mapping; CREATE INDEX customers_user ON customers(user_id);",
            )
            .unwrap();
        let want = s.mapping(&Filter::default()).unwrap();
        drop(s);
        let indexes = |s: &SqliteStore| -> Vec<String> {
            let mut st = s
                .conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'customers' AND sql IS NOT NULL ORDER BY name")
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };

        let old = SqliteStore::open_read_only(&path).unwrap().unwrap();
        assert_eq!(indexes(&old), ["customers_user"]);
        assert_eq!(old.mapping(&Filter::default()).unwrap(), want);
        drop(old);

        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(indexes(&s), ["customers_mapping"]);
        assert_eq!(s.mapping(&Filter::default()).unwrap(), want);
    }

    /// A store file with `n` customers: some unmapped, some sharing a
    /// user, with and without subscriptions of several statuses.
    fn store_of(n: usize) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let statuses = ["active", "trialing", "canceled", "past_due"];
        for i in 0..n {
            let user = match i % 10 {
                0 => None,
                1 => Some(format!("user_{:03}", (i + 7) % n)),
                _ => Some(format!("user_{:03}", (i * 7919) % n)),
            };
            let sub = (!i.is_multiple_of(5)).then(|| format!("sub_{i}"));
            s.conn
                .execute(
                    "INSERT INTO customers (id, user_id, user_key, email, deleted, source, synced_at, subscription_id)
                     VALUES (?1, ?2, 'k', ?3, ?4, 'api', 't', ?5)",
                    rusqlite::params![format!("cus_{:04}", (i * 31) % n), user, format!("{i}@x.io"), i.is_multiple_of(13), sub],
                )
                .unwrap();
            // Each field set on some rows and not on others, so a row read
            // into the strings of the one before shows no leftovers.
            let some = |m: usize, v: String| (!i.is_multiple_of(m)).then_some(v);
            if let Some(sub) = sub {
                s.conn
                    .execute(
                        "INSERT INTO subscriptions (id, customer_id, status, price_id,
                            current_period_start, current_period_end, cancel_at_period_end,
                            card_brand, card_last4, created, snapshot_at, source, synced_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, 1, 'events', ?10)",
                        rusqlite::params![
                            sub,
                            format!("cus_{:04}", (i * 31) % n),
                            statuses[i % 4],
                            some(3, format!("price_{}", i % 7)),
                            (!i.is_multiple_of(4)).then_some(i as i64),
                            (!i.is_multiple_of(6)).then_some(-(i as i64)),
                            i.is_multiple_of(2),
                            some(7, "visa".to_owned()),
                            some(9, format!("{:04}", i)),
                            format!("t{i}"),
                        ],
                    )
                    .unwrap();
            }
        }
        (dir, s)
    }

    fn collect(
        s: &SqliteStore,
        f: &Filter,
        readers: usize,
        range_rows: usize,
    ) -> (u64, Vec<MappingRow>) {
        let mut rows = Vec::new();
        let shown = s
            .for_each_mapping_in_ranges(f, readers, range_rows, |r| {
                rows.push(r.clone());
                Ok(())
            })
            .unwrap();
        (shown, rows)
    }

    #[test]
    fn readers_in_ranges_give_the_rows_of_one_reader() {
        let (dir, s) = store_of(500);
        let filters = [
            Filter::default(),
            Filter {
                statuses: vec!["active".into(), "none".into(), "deleted".into()],
                ..Filter::default()
            },
            Filter {
                unmapped: true,
                ..Filter::default()
            },
            Filter {
                statuses: vec!["paused".into()],
                ..Filter::default()
            },
        ];
        // The rows as `inspect` read them before it streamed: all of them,
        // sorted by SQLite, filtered in Rust.
        let mut st = s
            .conn
            .prepare(&format!(
                "{MAPPING_SELECT}{FROM} ORDER BY c.user_id IS NULL, c.user_id, c.id"
            ))
            .unwrap();
        let all: Vec<MappingRow> = st
            .query_map([], mapping_row)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            all.iter()
                .any(|r| r.payment_method.as_ref().is_some_and(|c| c.brand.is_none()))
        );
        for f in &filters {
            let one: Vec<MappingRow> = all
                .iter()
                .filter(|r| {
                    (f.statuses.is_empty() || f.statuses.contains(&r.status))
                        && (!f.unmapped || r.user_id.is_none())
                })
                .cloned()
                .collect();
            let mut here = Vec::new();
            s.for_each_mapping_here(f, |r| {
                here.push(r.clone());
                Ok(())
            })
            .unwrap();
            assert!(here == one, "{f:?} on one connection");
            for (readers, range_rows) in [(1, 7), (2, 1), (3, 7), (4, 100), (3, 499), (3, 500)] {
                let (shown, rows) = collect(&s, f, readers, range_rows);
                assert_eq!(shown, rows.len() as u64);
                assert!(rows == one, "{f:?} with {readers} readers of {range_rows}");
            }
        }
        // The runs above read in ranges, not on one connection.
        assert_eq!(s.open_readers(3).unwrap().map(|r| r.len()), Some(3));
        let (shown, _) = collect(&s, &Filter::default(), 3, 7);
        assert_eq!(shown, 500);
        // An in-memory copy is read by its own connection, not the file's.
        let copy = SqliteStore::open_copy(&dir.path().join("s.db")).unwrap();
        copy.conn
            .execute("DELETE FROM customers WHERE user_id IS NULL", [])
            .unwrap();
        assert!(copy.open_readers(3).unwrap().is_none());
        let (shown, _) = collect(&copy, &Filter::default(), 3, 7);
        assert_eq!(shown, 450);
        let mut order = Vec::new();
        s.for_each_mapping_here(&Filter::default(), |r| {
            order.push((
                r.user_id.is_none(),
                r.user_id.clone(),
                r.customer_id.clone(),
            ));
            Ok(())
        })
        .unwrap();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_stop_in_the_middle_stops_every_reader() {
        let (_dir, s) = store_of(300);
        let mut seen = 0;
        let err = s
            .for_each_mapping_in_ranges(&Filter::default(), 3, 10, |_| {
                seen += 1;
                if seen == 25 {
                    anyhow::bail!("enough")
                }
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "enough");
        assert_eq!(seen, 25);
    }

    /// Readers begun together keep their snapshot: a write after it shows
    /// to none of them.
    #[test]
    fn readers_begun_together_share_a_snapshot() {
        let (dir, s) = store_of(20);
        let readers: Vec<SqliteStore> = (0..3)
            .map(|_| {
                SqliteStore::open_read_only(&dir.path().join("s.db"))
                    .unwrap()
                    .unwrap()
            })
            .collect();
        assert!(begin_together(&s.conn, &readers).unwrap());
        s.conn
            .execute(
                "INSERT INTO customers (id, user_key, source, synced_at) VALUES ('cus_new', 'k', 'api', 't')",
                [],
            )
            .unwrap();
        for r in &readers {
            let range = Range::whole(Half::Unmapped);
            let mut batch = Batch::default();
            r.mapping_range(&Filter::default(), &range, &mut batch)
                .unwrap();
            let ids: Vec<&str> = batch
                .rows()
                .iter()
                .map(|r| r.customer_id.as_str())
                .collect();
            assert!(!ids.contains(&"cus_new"), "{ids:?}");
        }
    }

    fn row(user: Option<&str>, customer: &str) -> MappingRow {
        MappingRow {
            user_id: user.map(str::to_owned),
            customer_id: customer.into(),
            email: None,
            subscription_id: None,
            status: "none".into(),
            price_id: None,
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            payment_method: None,
            synced_at: String::new(),
            source: "api".into(),
            deleted: false,
        }
    }

    #[test]
    fn duplicates_are_adjacent_runs_of_one_user() {
        let rows = [
            row(Some("a"), "cus_1"),
            row(Some("b"), "cus_2"),
            row(Some("b"), "cus_3"),
            row(Some("c"), "cus_4"),
            row(Some("d"), "cus_5"),
            row(Some("d"), "cus_6"),
            row(Some("d"), "cus_7"),
            row(Some("e"), "cus_8"),
            row(Some("e"), "cus_9"),
            row(None, "cus_10"),
            row(None, "cus_11"),
        ];
        let mut finder = DuplicateFinder::new(2);
        rows.iter().for_each(|r| finder.see(r));
        let found = finder.finish();
        assert_eq!(found.users, 3);
        let named: Vec<(&str, usize)> = found
            .first
            .iter()
            .map(|d| (d.user_id.as_str(), d.customers.len()))
            .collect();
        assert_eq!(named, [("b", 2), ("d", 3)]);
        assert_eq!(found.first[1].customers, ["cus_5", "cus_6", "cus_7"]);

        // A run at the very end counts; unmapped customers never do.
        let mut finder = DuplicateFinder::new(3);
        finder.see(&row(None, "cus_1"));
        finder.see(&row(None, "cus_2"));
        finder.see(&row(Some("z"), "cus_3"));
        finder.see(&row(Some("z"), "cus_4"));
        assert_eq!(finder.finish().users, 1);
        assert_eq!(DuplicateFinder::new(3).finish(), Duplicates::default());
    }
}
