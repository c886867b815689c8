//! The SQLite store: customers, their subscriptions, the processed-event log
//! and backfill checkpoints. One transaction per synced customer, so a crash
//! never leaves half a customer; an older snapshot never overwrites a newer.

mod audit;
mod backend;
pub(crate) mod checkpoint;
mod mapping;
mod postgres;
mod reads;
pub mod schema;
pub(crate) mod sql;
mod write;

pub(crate) use backend::PassWrites;
pub use backend::{Location, Store};
pub use mapping::{DuplicateFinder, Duplicates, Filter, MappingRow};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use serde::Serialize;
use sql::Db;

use crate::objects::SubscriptionRecord;

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
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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
    /// Offline replay: the model's rule 2 ([`crate::truth::current_subscription`])
    /// over what the store and the inputs know, with the inputs' creation
    /// events of the customer's subscriptions as its evidence for ties.
    Newest(Vec<(String, crate::truth::Stamp)>),
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
    /// For snapshots from events: the evidence of each one's order within
    /// its second, by subscription id (none from the API).
    pub evidence: Vec<(String, crate::truth::SnapshotOrder)>,
    /// The same for the customer object (from events only).
    pub customer_evidence: Option<crate::truth::SnapshotOrder>,
    pub current: Current,
    pub source: RecordSource,
}

/// What a complete backfill pass proves about a stored customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unlisted {
    /// Not deleted, yet the customers listing did not show it: deleted.
    Customer,
    /// It shows a subscription, yet the listing showed none of its: it has none.
    Subscriptions,
}

/// A backfill's numbers: its pass (what it has seen, across a resume) and
/// this process's run of it (what the run wrote, for its report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PassMarks {
    pub pass: i64,
    pub run: i64,
}

/// A page of a backfill pass (or a batch of its settling), written with
/// its checkpoint in one transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PassPage<'a> {
    pub writes: &'a [CustomerWrite],
    /// From the customers listing: each customer is marked as listed by
    /// the pass (those left unmarked are deleted after a complete pass).
    pub listed: bool,
    /// The checkpoint after this page.
    pub checkpoint: Option<&'a checkpoint::Backfill>,
}

/// A processed event, as the store's event log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub created: i64,
    pub route: &'static str,
    pub user_id: Option<&'a str>,
    pub customer_id: Option<&'a str>,
}

/// The SQLite store (see [`Store`] for the interface both backends share).
pub(crate) struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// The files a store opened for writing holds open (none for a
    /// read-only open, a copy or `:memory:`): see [`Store::check_identity`].
    identity: Option<Identity>,
    /// How long a write waits for another process's write lock, and whom
    /// a wait that runs out is told to (see [`Store::serve_lock_wait`]).
    lock_wait: std::cell::Cell<LockWait>,
    /// This open made the file (see [`Store::close_or_discard`]).
    created: bool,
    /// The page cache of each reader of a parallel walk of the mapping, in
    /// KiB, when not SQLite's default (see [`Store::cache_readers`]).
    reader_cache_kib: std::cell::Cell<Option<i64>>,
}

/// How long a write waits for another process's write lock, and whom a
/// wait that runs out is told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockWait {
    /// A command at a terminal: [`BUSY_TIMEOUT`], then "run the command again".
    Command,
    /// `serve`: this long, then words for the HTTP client (Stripe), whose
    /// retry is the "again".
    Server(Duration),
}

impl LockWait {
    fn timeout(self) -> Duration {
        match self {
            LockWait::Command => BUSY_TIMEOUT,
            LockWait::Server(d) => d,
        }
    }
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
    let e = e.to_string();
    // SQLite says "read-only" for the file and for its directory alike:
    // which one it is, the path tells.
    let e = match e == READ_ONLY {
        true => read_only(path),
        false => e,
    };
    anyhow::anyhow!("store {}: {e}", path.display())
}

/// Why the store's file could not be made: its directory, when this user
/// may not write it.
fn cannot_create(path: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot create it: this user may not write the directory {} \
             (make it writable, or keep the store in one that is: --db)",
            directory_of(path).display()
        ),
        _ => format!("cannot create: {e}"),
    }
}

/// The directory a store's file (and its journal) is in: the current one
/// by its name, for a bare file name.
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    }
}

/// SQLite's word for a store it may not write ([`unusable`]); [`describe`]
/// replaces it with [`read_only`]'s, which knows the path.
const READ_ONLY: &str = "read-only: cannot write the store (check its permissions)";

/// Why this process may not write the store at `path`: the file, or the
/// directory SQLite must create the store's journal in (`NAME-wal`,
/// `NAME-shm`, beside the file).
fn read_only(path: &Path) -> String {
    use rustix::fs::{Access, access};
    if access(path, Access::WRITE_OK).is_err() {
        return "read-only: this process cannot write the file (check its permissions and owner)"
            .into();
    }
    let dir = directory_of(path);
    if access(&dir, Access::WRITE_OK).is_err() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        return format!(
            "read-only: the file is writable but its directory {} is not, and SQLite must \
             create the store's journal there ({name}-wal, {name}-shm): make the directory \
             writable for this user, or keep the store in one that is (--db)",
            dir.display()
        );
    }
    READ_ONLY.into()
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

impl SqliteStore {
    /// Open for writing, creating (mode 0600) and migrating as needed.
    pub fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        not_a_directory(path)?;
        let created = !path.exists();
        if created {
            create_private(path).map_err(|e| describe(path, cannot_create(path, &e)))?;
        }
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| describe(path, format!("cannot open: {e}")))?;
        configure(&conn).map_err(|e| describe(path, unusable_schema(&e)))?;
        schema::migrate(&mut conn).map_err(|e| describe(path, unusable_schema(&e)))?;
        let identity = Identity::of(&conn, path);
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            identity,
            lock_wait: std::cell::Cell::new(LockWait::Command),
            created,
            reader_cache_kib: std::cell::Cell::new(None),
        })
    }

    /// Open an existing store for reading; `None` when there is no file (or
    /// an empty one). Works on a read-only file or directory: when SQLite
    /// cannot create the WAL's shared-memory file there, the store is read
    /// as immutable (nobody can be writing to it either).
    pub fn open_read_only(path: &Path) -> anyhow::Result<Option<SqliteStore>> {
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
        Ok(Some(SqliteStore {
            conn,
            path: path.to_path_buf(),
            identity: None,
            lock_wait: std::cell::Cell::new(LockWait::Command),
            created: false,
            reader_cache_kib: std::cell::Cell::new(None),
        }))
    }

    /// A private copy of the store (empty when there is no file): dry runs
    /// and `--check` run the real writes there, so the file is never
    /// touched, not even by a migration. The copy is SQLite's private
    /// temporary database (an unnamed file, deleted when closed): it pages
    /// through a bounded cache, so checking a store of a million customers
    /// does not hold it all in memory.
    pub fn open_copy(path: &Path) -> anyhow::Result<SqliteStore> {
        let mut conn = Connection::open("").map_err(|e| describe(path, unusable(&e)))?;
        cache_statements(&conn);
        conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -8192;")?;
        if let Some(file) = SqliteStore::open_read_only(path)? {
            rusqlite::backup::Backup::new(&file.conn, &mut conn)
                .and_then(|b| b.run_to_completion(1024, Duration::ZERO, None))
                .map_err(|e| describe(path, unusable(&e)))?;
        }
        schema::migrate(&mut conn).map_err(|e| describe(path, unusable_schema(&e)))?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            identity: None,
            lock_wait: std::cell::Cell::new(LockWait::Command),
            created: false,
            reader_cache_kib: std::cell::Cell::new(None),
        })
    }

    /// An empty in-memory store: tests, and runs that must not read the
    /// store at all (`replay --forward-to`).
    pub fn in_memory() -> anyhow::Result<SqliteStore> {
        let mut conn = Connection::open_in_memory()?;
        cache_statements(&conn);
        schema::migrate(&mut conn)?;
        Ok(SqliteStore {
            conn,
            path: PathBuf::from(":memory:"),
            identity: None,
            lock_wait: std::cell::Cell::new(LockWait::Command),
            created: false,
            reader_cache_kib: std::cell::Cell::new(None),
        })
    }

    /// Fold the WAL back into the file and close, so a normal exit leaves no
    /// `-wal`/`-shm` files when nothing else holds the store.
    ///
    /// Never waits: with another process holding the write lock, the
    /// checkpoint would wait the whole busy timeout at exit; the WAL is then
    /// left for a later close to fold in (a commit is durable either way).
    pub fn close(self) {
        if self
            .identity
            .as_ref()
            .is_some_and(|id| id.lost_side_files())
        {
            // SQLite's last close deletes `-wal` and `-shm` by name, and
            // those names are now other files (another store's, perhaps).
            // What the WAL held was folded in when the change was found.
            std::mem::forget(self.conn);
            return;
        }
        let _ = self.conn.busy_timeout(Duration::ZERO);
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = self.conn.close();
    }

    /// Close after a run that failed. A store this open created, in which
    /// nothing was stored (no customer, no event: a bad key or an
    /// unreachable API stopped the run before anything was fetched), is
    /// removed with its side files, so that the next run starts as the
    /// first did and finds nothing to resume. Anything else is closed as
    /// [`Store::close`] does.
    pub(crate) fn close_or_discard(self) {
        let empty =
            || -> anyhow::Result<bool> { Ok(!self.has_customers()? && !self.has_events()?) };
        if !self.created || !empty().unwrap_or(false) {
            return self.close();
        }
        let path = self.path.clone();
        self.close();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }

    /// `serve`'s durability: each commit syncs the WAL before it returns
    /// (`synchronous = FULL`, which in WAL mode syncs the WAL at every
    /// commit: see <https://www.sqlite.org/wal.html>), so what is
    /// acknowledged survives a power loss. One sync per transaction: a
    /// group-committed batch (its customers, then its event log) pays for
    /// two at most, whatever the number of events in it.
    pub(crate) fn sync_every_commit(&self) -> anyhow::Result<()> {
        self.conn
            .execute_batch("PRAGMA synchronous = FULL")
            .map_err(|e| describe(&self.path, unusable(&e)))
    }

    /// `serve`'s writes wait at most `wait` for another process's write
    /// lock (rather than [`BUSY_TIMEOUT`]), so that a request is answered
    /// well within Stripe's own timeout; and a wait that runs out is said
    /// for the HTTP client, whose retry will be processed, not as advice
    /// for a terminal.
    pub(crate) fn serve_lock_wait(&self, wait: Duration) -> anyhow::Result<()> {
        self.conn
            .busy_timeout(wait)
            .map_err(|e| describe(&self.path, unusable(&e)))?;
        self.lock_wait.set(LockWait::Server(wait));
        Ok(())
    }

    /// Whether this process may write the store. SQLite opens a file it may
    /// not write read-only without a word, and only the first commit fails:
    /// for a server, whose every request would then fail, that is a
    /// start-up error. The side files (`-wal`, `-shm`) must be writable too.
    pub(crate) fn check_writable(&self) -> anyhow::Result<()> {
        let cannot = |what: String| {
            describe(
                &self.path,
                format!("read-only: {what} (check its permissions and owner)"),
            )
        };
        if self
            .conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(|e| describe(&self.path, unusable(&e)))?
        {
            // The file, or the directory its journal must be created in.
            return Err(describe(&self.path, READ_ONLY));
        }
        for (side, _) in self.identity.iter().flat_map(|id| &id.sides) {
            // Asked with access(2), never opened: closing any descriptor of a
            // file drops every POSIX lock this process holds on it, and
            // SQLite's locks on the `-wal`/`-shm` are what tell another
            // process it is not alone (it would truncate the `-shm` under
            // this server).
            if let Err(e) = rustix::fs::access(side, rustix::fs::Access::WRITE_OK) {
                return Err(cannot(format!(
                    "cannot write {}: {}",
                    side.display(),
                    std::io::Error::from(e)
                )));
            }
        }
        Ok(())
    }

    /// Whether the store's files are still the ones it opened: the file at
    /// its path (not deleted, moved away or replaced) and its `-wal` and
    /// `-shm` (by device and inode). SQLite writes on to the files it holds
    /// open, where nobody would read the writes again (a deleted file, or a
    /// log beside a store that no longer uses it), so a commit made after
    /// such a change is not durable. A change is final: when found, what
    /// the WAL holds is folded into the file this store holds (best
    /// effort: a moved store is then whole, and a deleted `-wal`'s commits
    /// are kept), `on_identity_lost` is told once, and every later check
    /// fails with the same reason.
    pub(crate) fn check_identity(&self) -> anyhow::Result<()> {
        let Some(id) = &self.identity else {
            return Ok(());
        };
        if let Some(why) = id.lost.get() {
            return Err(anyhow::anyhow!("{why}"));
        }
        let Some(change) = id.change(&self.path) else {
            return Ok(());
        };
        let _ = self.conn.busy_timeout(Duration::ZERO);
        let folded = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_ok_and(|busy| busy == 0);
        let _ = self.conn.busy_timeout(self.lock_wait.get().timeout());
        let why = describe(
            &self.path,
            format!(
                "{change}{}",
                match (change.side(), folded) {
                    (false, _) => "",
                    (true, true) => " (the commits the log held were copied into the store)",
                    (true, false) => {
                        " (the commits the log held could not be copied into the store: \
                         another process was using it)"
                    }
                }
            ),
        )
        .to_string();
        let why = id.lost.get_or_init(|| why);
        if let Some(tell) = id.on_lost.get() {
            tell(why);
        }
        Err(anyhow::anyhow!("{why}"))
    }

    /// Call `tell` once, with the reason, when [`Store::check_identity`]
    /// finds the store's files changed (never for a store that is not
    /// watched: a read-only open, a copy).
    pub(crate) fn on_identity_lost(&self, tell: impl Fn(&str) + Send + Sync + 'static) {
        if let Some(id) = &self.identity {
            let _ = id.on_lost.set(Box::new(tell));
        }
    }

    pub fn event_seen(&self, id: &str) -> anyhow::Result<bool> {
        reads::event_seen(&mut sql::Sqlite::new(&self.conn), id)
    }

    /// Events in the log, for tests.
    #[cfg(test)]
    pub(crate) fn count_events(&self) -> anyhow::Result<i64> {
        reads::count_events(&mut sql::Sqlite::new(&self.conn))
    }

    /// Whether any event has been logged yet.
    pub fn has_events(&self) -> anyhow::Result<bool> {
        reads::has_events(&mut sql::Sqlite::new(&self.conn))
    }

    /// What the store knows of a customer's user.
    pub(crate) fn customer_user(&self, customer_id: &str) -> anyhow::Result<Known> {
        reads::customer_user(&mut sql::Sqlite::new(&self.conn), customer_id)
    }

    pub fn customer_known(&self, customer_id: &str) -> anyhow::Result<bool> {
        reads::customer_known(&mut sql::Sqlite::new(&self.conn), customer_id)
    }

    /// Customers the store maps to a user.
    pub fn customers_of_user(&self, user_id: &str) -> anyhow::Result<Vec<String>> {
        reads::customers_of_user(&mut sql::Sqlite::new(&self.conn), user_id)
    }

    /// The backfill in progress, if any.
    pub(crate) fn backfill(&self) -> anyhow::Result<Option<checkpoint::Backfill>> {
        checkpoint::load_backfill(&mut sql::Sqlite::new(&self.conn))
    }

    /// Start a fresh backfill pass, snapshot time `started_at`: a new pass
    /// number, so nothing an earlier pass saw counts.
    pub(crate) fn begin_backfill(
        &mut self,
        started_at: i64,
    ) -> anyhow::Result<checkpoint::Backfill> {
        let path = self.path.clone();
        let run = |conn: &mut Connection| -> anyhow::Result<checkpoint::Backfill> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let b = {
                let db = &mut sql::Sqlite::new(&tx);
                let b = checkpoint::Backfill::new(started_at, checkpoint::next_serial(db)?);
                checkpoint::clear_backfill(db)?;
                checkpoint::save_backfill(db, &b)?;
                b
            };
            tx.commit()?;
            Ok(b)
        };
        run(&mut self.conn).map_err(|e| name_store_error(&path, e))
    }

    /// Where `resync --events` resumes, if anywhere.
    pub(crate) fn events_checkpoint(&self) -> anyhow::Result<Option<checkpoint::Events>> {
        checkpoint::load_events(&mut sql::Sqlite::new(&self.conn))
    }

    /// Move the events checkpoint forward (never back).
    pub(crate) fn advance_events_checkpoint(
        &mut self,
        e: &checkpoint::Events,
    ) -> anyhow::Result<()> {
        let path = self.path.clone();
        let db = &mut sql::Sqlite::new(&self.conn);
        let current = checkpoint::load_events(db)?;
        if current.is_some_and(|c| (c.created, c.id.is_some()) > (e.created, e.id.is_some())) {
            return Ok(());
        }
        checkpoint::save_events(db, e).map_err(|err| name_store_error(&path, err))
    }

    /// When the store last took in the whole account (see
    /// [`checkpoint::save_caught_up`]), if ever.
    pub(crate) fn caught_up_at(&self) -> anyhow::Result<Option<i64>> {
        checkpoint::load_caught_up(&mut sql::Sqlite::new(&self.conn))
    }

    /// The store has just taken in the whole account, as of `at`.
    pub(crate) fn mark_caught_up(&mut self, at: i64) -> anyhow::Result<()> {
        let path = self.path.clone();
        checkpoint::save_caught_up(&mut sql::Sqlite::new(&self.conn), at)
            .map_err(|e| name_store_error(&path, e))
    }

    /// The backfill finished: forget its checkpoint.
    pub(crate) fn end_backfill(&mut self) -> anyhow::Result<()> {
        let path = self.path.clone();
        checkpoint::clear_backfill(&mut sql::Sqlite::new(&self.conn))
            .map_err(|e| name_store_error(&path, e))
    }

    /// After the complete pass `pass`, what it proves (see [`Unlisted`])
    /// about up to `limit` customers, in store order after the one at
    /// `after` (0: from the start); with the position to go on from.
    pub(crate) fn backfill_unlisted(
        &self,
        pass: i64,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<(Vec<(String, Unlisted)>, i64)> {
        // Store (rowid) order: one sequential read of the table.
        let mut st = self.conn.prepare_cached(
            "SELECT rowid, id, listed_pass IS ?1,
                    subscription_id IS NOT NULL AND first_sub_pass IS NOT ?1
             FROM customers
             WHERE rowid > ?2 AND deleted = 0
               AND (listed_pass IS NOT ?1
                    OR (subscription_id IS NOT NULL AND first_sub_pass IS NOT ?1))
             ORDER BY rowid LIMIT ?3",
        )?;
        let mut last = after;
        let mut found = Vec::new();
        let mut rows = st.query(params![pass, after, limit as i64])?;
        while let Some(r) = rows.next()? {
            last = r.get(0)?;
            let id: String = r.get(1)?;
            let (listed, without_subscriptions): (bool, bool) = (r.get(2)?, r.get(3)?);
            if !listed {
                found.push((id.clone(), Unlisted::Customer));
            }
            if without_subscriptions {
                found.push((id, Unlisted::Subscriptions));
            }
        }
        Ok((found, last))
    }

    /// Write whole customers (and backfill bookkeeping) in one transaction.
    /// Only the sync engine calls this: it is the one writer of customers
    /// and subscriptions. A write that changes nothing touches no row.
    pub(crate) fn apply(&mut self, writes: &[CustomerWrite]) -> anyhow::Result<Vec<WriteOutcome>> {
        self.in_transaction(|tx, now| {
            let mut writer = write::Writer::new(tx, now);
            writes.iter().map(|w| writer.apply(w)).collect()
        })
    }

    /// A backfill's writes, through `f`: see [`PassWrites`]. What `f`
    /// wrote is committed when it returns, even with an error of its own
    /// (every page is whole, with its checkpoint); a failed write is not.
    pub(crate) fn pass_writes<T, E: From<anyhow::Error>>(
        &mut self,
        marks: PassMarks,
        f: impl FnOnce(&mut SqlitePassWrites<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let pragma = |name: &str| -> anyhow::Result<i64> {
            Ok(self
                .conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?)
        };
        let (cache, autocheckpoint) = (pragma("cache_size")?, pragma("wal_autocheckpoint")?);
        self.conn
            .execute_batch(&format!(
                "PRAGMA cache_size = {PASS_CACHE_KIB}; PRAGMA wal_autocheckpoint = {PASS_AUTOCHECKPOINT};"
            ))
            .map_err(anyhow::Error::from)?;
        let mut writes = SqlitePassWrites {
            conn: &self.conn,
            path: &self.path,
            writer: write::Writer::new(&self.conn, ""),
            marks,
            open: false,
        };
        let out = f(&mut writes);
        let committed = writes.commit();
        drop(writes);
        let _ = self.conn.execute_batch(&format!(
            "PRAGMA cache_size = {cache}; PRAGMA wal_autocheckpoint = {autocheckpoint};"
        ));
        let out = out?;
        committed?;
        Ok(out)
    }

    /// Start a backfill run: its number, and an empty journal of the
    /// mappings it changes (see [`PassWrites`]).
    pub(crate) fn begin_run(&mut self) -> anyhow::Result<i64> {
        let path = self.path.clone();
        let run = |conn: &mut Connection| -> anyhow::Result<i64> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let run = checkpoint::next_serial(&mut sql::Sqlite::new(&tx))?;
            tx.commit()?;
            write::begin_journal(conn)?;
            Ok(run)
        };
        run(&mut self.conn).map_err(|e| name_store_error(&path, e))
    }

    /// Make the indexes [`PassWrites::defer_indexes`] dropped again, with
    /// a small page cache (see [`INDEX_CACHE_KIB`]).
    pub(crate) fn restore_indexes(&mut self) -> anyhow::Result<()> {
        let cache: i64 = self.conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        let made = self
            .conn
            .execute_batch(&format!(
                "PRAGMA cache_size = {INDEX_CACHE_KIB}; PRAGMA shrink_memory;"
            ))
            .and_then(|()| write::sorting(&self.conn, || schema::restore_indexes(&self.conn)));
        let _ = self.conn.execute_batch(&format!(
            "PRAGMA cache_size = {cache}; PRAGMA shrink_memory;"
        ));
        made.map_err(|e| describe(&self.path, unusable(&e)))
    }

    /// How many customers the run wrote.
    pub(crate) fn run_len(&self, run: i64) -> anyhow::Result<u64> {
        Ok(write::run_len(&self.conn, run)?)
    }

    /// Up to `limit` customers the run wrote, after `after` by id, each
    /// with its mapping before the run and now.
    pub(crate) fn run_page(
        &self,
        run: i64,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, WriteOutcome)>> {
        write::run_page(&self.conn, run, after, limit)
    }

    /// One write transaction (`BEGIN IMMEDIATE`: the write lock is taken
    /// first, so a concurrent writer waits instead of failing on upgrade);
    /// SQLite's errors come back in words that name the store.
    fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&Connection, &str) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let path = self.path.clone();
        let wait = self.lock_wait.get();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| describe(&path, unusable_when(&e, wait)))?;
        let out =
            f(&tx, &now_rfc3339()).map_err(|e| match e.downcast_ref::<rusqlite::Error>() {
                Some(se) => describe(&path, unusable_when(se, wait)),
                None => e,
            })?;
        tx.commit()
            .map_err(|e| describe(&path, unusable_when(&e, wait)))?;
        Ok(out)
    }

    /// Log processed events as `f` finds them, all in one transaction that
    /// commits when `f` returns `Ok`: a run's log lands whole or not at all,
    /// and each page of the log is written once, not once per batch.
    pub(crate) fn logging<T>(
        &mut self,
        f: impl FnOnce(&mut EventLogger<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.in_transaction(|tx, now| f(&mut EventLogger::Sqlite { tx, now }))
    }
}

/// The page cache while a backfill writes (KiB, as `PRAGMA cache_size`
/// takes it). A transaction of a large pass dirties pages all over the id
/// indexes, and what does not fit is written out more than once; but at a
/// million customers those indexes (67 MB) outgrow any cache the process
/// can afford, and what SQLite's cache takes, glibc keeps for the rest of
/// the run: the report that follows must fit in 50 MB (issue 21). With
/// 64 MiB (and the backfill's other savings) that report was 69-85 MB in
/// four runs of five; with 8 MiB, 37-42 MB, and the pass takes no longer
/// than it did with 64 MiB (39.6-46.3 s against 46.3-46.9 s, runs taken
/// in turns on a busy two-core machine): the pages it misses are in the
/// OS's cache, and a batch's writes walk the indexes in order.
const PASS_CACHE_KIB: i64 = -8192;

/// The page cache while the readers' indexes are made again after a large
/// pass (see [`Store::restore_indexes`]): each is one read of its table and
/// a sort, whose memory is as large as the cache, and kept by glibc after.
const INDEX_CACHE_KIB: i64 = -2048;

/// WAL pages between checkpoints while a backfill writes (SQLite's default
/// is 1,000): each commit of a large pass rewrites index pages the last one
/// wrote too, and a checkpoint copies every page once however often the
/// WAL holds it. The WAL file grows to about this many pages (400 MB)
/// before it is copied back and reused.
const PASS_AUTOCHECKPOINT: i64 = 100_000;

/// A backfill's writes: pages go into one open transaction until the
/// caller commits (the backfill decides when: see its `Commits`), with
/// every statement prepared once for the whole pass. Each customer is
/// marked with the run that wrote it, and its mapping from before the
/// run's first write of it kept in the run's journal (see
/// [`Store::begin_run`]), rather than answering an outcome.
pub(crate) struct SqlitePassWrites<'c> {
    conn: &'c Connection,
    path: &'c Path,
    writer: write::Writer<sql::Sqlite<'c>>,
    marks: PassMarks,
    open: bool,
}

impl SqlitePassWrites<'_> {
    /// Write a page into the open transaction (opening one if needed). On
    /// failure the transaction is rolled back: the store keeps the last
    /// commit.
    pub(crate) fn write(&mut self, page: &PassPage<'_>) -> anyhow::Result<()> {
        if !self.open {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| describe(self.path, unusable(&e)))?;
            self.open = true;
            self.writer.set_now(now_rfc3339());
        }
        let marks = self.marks;
        let written = page
            .writes
            .iter()
            .try_for_each(|w| self.writer.apply_journaled(w, marks, page.listed))
            .and_then(|()| match page.checkpoint {
                Some(b) => checkpoint::save_backfill(&mut sql::Sqlite::new(self.conn), b),
                None => Ok(()),
            });
        if let Err(e) = written {
            self.open = false;
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(name_store_error(self.path, e));
        }
        Ok(())
    }

    /// Drop the indexes a backfill never reads (see
    /// [`schema::DEFERRABLE`]), in the open transaction, until
    /// [`Store::restore_indexes`]: readers meanwhile still work, slower,
    /// and if the pass is interrupted the next open of the store for
    /// writing makes them again.
    pub(crate) fn defer_indexes(&mut self) -> anyhow::Result<()> {
        self.conn
            .execute_batch(schema::DEFERRABLE)
            .map_err(|e| describe(self.path, unusable(&e)))
    }

    /// Commit what was written since the last commit.
    pub(crate) fn commit(&mut self) -> anyhow::Result<()> {
        if self.open {
            self.open = false;
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| describe(self.path, unusable(&e)))?;
        }
        Ok(())
    }
}

impl Drop for SqlitePassWrites<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// A file, as opposed to a path: the same path may name another file later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

#[cfg(unix)]
fn file_id(path: &Path) -> std::io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(FileId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

#[cfg(not(unix))]
fn file_id(_: &Path) -> std::io::Result<FileId> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// The files a store opened for writing holds open (see
/// [`Store::check_identity`]).
struct Identity {
    db: FileId,
    /// `-wal` and `-shm`, named as SQLite names them (beside the file a
    /// symbolic link leads to).
    sides: Vec<(PathBuf, FileId)>,
    /// Why the files were found changed; final once set.
    lost: std::sync::OnceLock<String>,
    on_lost: std::sync::OnceLock<OnLost>,
}

/// Told the reason once, when a store's files are found changed.
type OnLost = Box<dyn Fn(&str) + Send + Sync>;

/// How a store's files changed under it.
enum Change {
    Deleted,
    Replaced,
    Side(PathBuf, SideChange),
    Unreadable(std::io::Error),
}

enum SideChange {
    Deleted,
    Replaced,
    Unreadable(std::io::Error),
}

impl Change {
    fn side(&self) -> bool {
        matches!(self, Change::Side(..))
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Deleted => write!(f, "the file was deleted while in use"),
            Change::Replaced => write!(
                f,
                "the file was replaced while in use (moved away, or another file put in its place)"
            ),
            Change::Unreadable(e) => write!(f, "the file can no longer be checked ({e})"),
            Change::Side(p, c) => {
                let what = match p.to_string_lossy().ends_with("-wal") {
                    true => "write-ahead log",
                    false => "shared-memory index",
                };
                match c {
                    SideChange::Deleted => {
                        write!(f, "its {what} {} was deleted while in use", p.display())
                    }
                    SideChange::Replaced => {
                        write!(f, "its {what} {} was replaced while in use", p.display())
                    }
                    SideChange::Unreadable(e) => write!(
                        f,
                        "its {what} {} can no longer be checked ({e})",
                        p.display()
                    ),
                }
            }
        }
    }
}

impl Identity {
    /// The files of a store just opened and migrated (so SQLite has made its
    /// `-wal` and `-shm`); `None` where files have no identity to check.
    fn of(conn: &Connection, path: &Path) -> Option<Identity> {
        let db = file_id(path).ok()?;
        let resolved = PathBuf::from(conn.path().filter(|p| !p.is_empty())?);
        let sides = ["-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut side = resolved.clone().into_os_string();
                side.push(suffix);
                let side = PathBuf::from(side);
                file_id(&side).ok().map(|id| (side, id))
            })
            .collect();
        Some(Identity {
            db,
            sides,
            lost: std::sync::OnceLock::new(),
            on_lost: std::sync::OnceLock::new(),
        })
    }

    /// What changed since the store was opened, if anything.
    fn change(&self, path: &Path) -> Option<Change> {
        match file_id(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Change::Deleted),
            Err(e) => return Some(Change::Unreadable(e)),
            Ok(now) if now != self.db => return Some(Change::Replaced),
            Ok(_) => {}
        }
        self.sides.iter().find_map(|(side, was)| {
            let change = match file_id(side) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => SideChange::Deleted,
                Err(e) => SideChange::Unreadable(e),
                Ok(now) if now != *was => SideChange::Replaced,
                Ok(_) => return None,
            };
            Some(Change::Side(side.clone(), change))
        })
    }

    /// Whether the store was found changed with its `-wal` or `-shm` no
    /// longer the files it holds.
    fn lost_side_files(&self) -> bool {
        self.lost.get().is_some()
            && self
                .sides
                .iter()
                .any(|(side, was)| file_id(side).ok() != Some(*was))
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

#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub before: Option<MappingRow>,
    pub after: Option<MappingRow>,
    pub changed: bool,
    /// Subscriptions created in the same second that nothing told apart
    /// (the model's rule 2): the mapping's pick among them is ambiguous.
    pub tied: Vec<String>,
    /// Snapshots of a subscription, this write's and the store's, that
    /// nothing but arrival ordered (rule 1): (subscription, its events).
    pub unordered: Vec<(String, Vec<String>)>,
}

/// Mapping rows compare equal when everything but the sync time matches.
/// Field by field, without a copy: a backfill's report compares a million.
pub(crate) fn same_mapping(a: &MappingRow, b: &MappingRow) -> bool {
    let MappingRow {
        user_id,
        customer_id,
        email,
        subscription_id,
        status,
        price_id,
        current_period_start,
        current_period_end,
        cancel_at_period_end,
        payment_method,
        synced_at: _,
        source: _,
        deleted,
    } = a;
    *user_id == b.user_id
        && *customer_id == b.customer_id
        && *email == b.email
        && *subscription_id == b.subscription_id
        && *status == b.status
        && *price_id == b.price_id
        && *current_period_start == b.current_period_start
        && *current_period_end == b.current_period_end
        && *cancel_at_period_end == b.cancel_at_period_end
        && *payment_method == b.payment_method
        && *deleted == b.deleted
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

fn configure(conn: &Connection) -> Result<(), schema::SchemaError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    cache_statements(conn);
    // Ours (or empty) before anything is written: switching to WAL rewrites
    // the file's header, and a file of another application is refused
    // byte for byte as it was found.
    retrying_busy(|| match schema::check(conn) {
        Err(schema::SchemaError::Sqlite(e)) => Err(e),
        checked => Ok(checked),
    })??;
    retrying_busy(|| conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())))?;
    // An 8 MiB page cache: a replay of a million events stays within its
    // 50 MB. 16 MiB measured within noise of it: the event log's random
    // ids outgrow either.
    // NORMAL syncs the WAL only at checkpoints: a commit survives a crash of
    // the process, not of the machine (a power loss may roll back the last
    // ones, never corrupt the store). Right for `replay` and `resync`, which
    // are run again after such a loss; `serve` acknowledges each commit to
    // Stripe, which will not send the event again, so it syncs every commit
    // (see [`Store::sync_every_commit`]).
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -8192;")?;
    Ok(())
}

/// Switching a new file to WAL takes an exclusive lock that SQLite does not
/// wait for with the busy handler: two processes creating one store at once
/// would see SQLITE_BUSY at once. Wait for it here instead (at most
/// [`BUSY_TIMEOUT`]).
fn retrying_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5 + fastrand::u64(0..20)));
            }
            other => return other,
        }
    }
}

fn unusable(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            "not an SQLite database (is it the right file?)".into()
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => "the database file is corrupt".into(),
        Some(rusqlite::ErrorCode::ReadOnly) => READ_ONLY.into(),
        Some(rusqlite::ErrorCode::DiskFull) => {
            "the disk is full (the write in progress was rolled back)".into()
        }
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

/// [`unusable`], for a store that waits for the write lock as `wait` says:
/// a server's wait that ran out is no advice to run a command again.
fn unusable_when(e: &rusqlite::Error, wait: LockWait) -> String {
    match (e.sqlite_error_code(), wait) {
        (Some(rusqlite::ErrorCode::DatabaseBusy), LockWait::Server(d)) => format!(
            "busy: another process held the store's write lock for more than {}; \
             the event was not processed, and a retry will be",
            crate::output::fmt::elapsed(d)
        ),
        _ => unusable(e),
    }
}

fn unusable_schema(e: &schema::SchemaError) -> String {
    match e {
        schema::SchemaError::Sqlite(e) => unusable(e),
        other => other.to_string(),
    }
}

/// Log one processed event (a second mark of the same id is ignored).
const LOG_EVENT: &str =
    "INSERT INTO events (id, type, created, route, user_id, customer_id, processed_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING";

/// The event log's writer inside [`Store::logging`]'s transaction.
pub(crate) enum EventLogger<'a> {
    /// Written as found, in the open transaction.
    Sqlite { tx: &'a Connection, now: &'a str },
    /// Kept, and written sorted by id at the end of the transaction (see
    /// [`postgres`]: two writers never wait on each other's rows in
    /// opposite orders).
    Postgres(Vec<postgres::Logged>),
}

impl EventLogger<'_> {
    /// Mark one event processed (a second mark of the same id is ignored).
    pub(crate) fn log(&mut self, e: &LoggedEvent<'_>) -> anyhow::Result<()> {
        match self {
            EventLogger::Sqlite { tx, now } => {
                sql::Sqlite::new(tx).exec(
                    LOG_EVENT,
                    &sql::args![
                        e.id,
                        e.kind,
                        e.created,
                        e.route,
                        e.user_id,
                        e.customer_id,
                        *now
                    ],
                )?;
            }
            EventLogger::Postgres(kept) => kept.push(postgres::Logged::of(e)),
        }
        Ok(())
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

#[cfg(test)]
mod tests;
