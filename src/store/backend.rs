//! The store's one interface, and the one place that chooses its backend:
//! an SQLite file (the default, one developer) or a PostgreSQL database
//! shared by a team (`--db postgres://...`). Everything outside
//! `src/store/` sees [`Store`] and [`Location`] only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::postgres::PgStore;
use super::{
    CustomerWrite, EventLogger, Filter, Known, MappingRow, PassMarks, PassPage, SqlitePassWrites,
    SqliteStore, Unlisted, WriteOutcome, checkpoint,
};
use crate::objects::SubscriptionRecord;

/// Where the store is: `--db` (or `STRIPE_SYNC_DB`, or the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file (`PATH` or `sqlite:PATH`).
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl Location {
    /// The store `--db` names; `stripe-sync.db` in the current directory
    /// when it names none.
    pub fn from_flag(flag: Option<&Path>) -> Location {
        let Some(flag) = flag else {
            return Location::Sqlite(PathBuf::from("stripe-sync.db"));
        };
        match flag.to_str() {
            Some(url) if crate::pg::is_url(url) => Location::Postgres(url.to_owned()),
            Some(s) if s.starts_with("sqlite:") => {
                Location::Sqlite(PathBuf::from(&s["sqlite:".len()..]))
            }
            _ => Location::Sqlite(flag.to_path_buf()),
        }
    }
}

/// A path, as messages show it; a URL without its password.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&crate::pg::shown(url)),
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::Sqlite(path.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::Sqlite(path.clone())
    }
}

impl From<&Location> for Location {
    fn from(at: &Location) -> Location {
        at.clone()
    }
}

/// The store: customers, their subscriptions, the processed-event log and
/// the checkpoints, in either backend.
#[derive(Debug)]
pub struct Store(Backend);

#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a process holds one or two stores: their size does not matter"
)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Each method of [`Store`] as its backend's.
macro_rules! on {
    ($self:expr, $s:ident => $e:expr) => {
        match &$self.0 {
            Backend::Sqlite($s) => $e,
            Backend::Postgres($s) => $e,
        }
    };
    (mut $self:expr, $s:ident => $e:expr) => {
        match &mut $self.0 {
            Backend::Sqlite($s) => $e,
            Backend::Postgres($s) => $e,
        }
    };
}

impl Store {
    /// Open for writing, creating and migrating as needed.
    pub fn open(at: impl Into<Location>) -> anyhow::Result<Store> {
        Ok(Store(match at.into() {
            Location::Sqlite(path) => Backend::Sqlite(SqliteStore::open(&path)?),
            Location::Postgres(url) => Backend::Postgres(PgStore::open(&url)?),
        }))
    }

    /// Open an existing store for reading; `None` when there is none.
    pub fn open_read_only(at: impl Into<Location>) -> anyhow::Result<Option<Store>> {
        Ok(match at.into() {
            Location::Sqlite(path) => {
                SqliteStore::open_read_only(&path)?.map(|s| Store(Backend::Sqlite(s)))
            }
            Location::Postgres(url) => {
                PgStore::open_read_only(&url)?.map(|s| Store(Backend::Postgres(s)))
            }
        })
    }

    /// A private copy of the store, where dry runs and `--check` make
    /// their writes: SQLite's private temporary database, filled from the
    /// store (whichever its backend), so the model's writes run as they
    /// would on the store and the store is never touched.
    pub fn open_copy(at: impl Into<Location>) -> anyhow::Result<Store> {
        Ok(Store(Backend::Sqlite(match at.into() {
            Location::Sqlite(path) => SqliteStore::open_copy(&path)?,
            Location::Postgres(url) => {
                let copy = SqliteStore::open_copy(Path::new(""))?;
                if let Some(pg) = PgStore::open_read_only(&url)? {
                    pg.copy_into(&copy)?;
                }
                copy
            }
        })))
    }

    /// An empty in-memory store: tests, and runs that must not read the
    /// store at all (`replay --forward-to`).
    pub fn in_memory() -> anyhow::Result<Store> {
        Ok(Store(Backend::Sqlite(SqliteStore::in_memory()?)))
    }

    /// Close: for SQLite, fold the WAL back into the file.
    pub fn close(self) {
        match self.0 {
            Backend::Sqlite(s) => s.close(),
            Backend::Postgres(_) => {}
        }
    }

    /// Close after a run that failed (see [`SqliteStore::close_or_discard`]);
    /// a PostgreSQL store is shared, and is never removed.
    pub(crate) fn close_or_discard(self) {
        match self.0 {
            Backend::Sqlite(s) => s.close_or_discard(),
            Backend::Postgres(_) => {}
        }
    }

    pub(crate) fn sync_every_commit(&self) -> anyhow::Result<()> {
        on!(self, s => s.sync_every_commit())
    }

    pub(crate) fn serve_lock_wait(&self, wait: Duration) -> anyhow::Result<()> {
        on!(self, s => s.serve_lock_wait(wait))
    }

    pub(crate) fn check_writable(&self) -> anyhow::Result<()> {
        on!(self, s => s.check_writable())
    }

    /// Whether the store's files are still the ones it opened (SQLite; a
    /// database has no files of the tool's to lose).
    pub(crate) fn check_identity(&self) -> anyhow::Result<()> {
        match &self.0 {
            Backend::Sqlite(s) => s.check_identity(),
            Backend::Postgres(_) => Ok(()),
        }
    }

    pub(crate) fn on_identity_lost(&self, tell: impl Fn(&str) + Send + Sync + 'static) {
        if let Backend::Sqlite(s) = &self.0 {
            s.on_identity_lost(tell);
        }
    }

    pub fn event_seen(&self, id: &str) -> anyhow::Result<bool> {
        on!(self, s => s.event_seen(id))
    }

    #[cfg(test)]
    pub(crate) fn count_events(&self) -> anyhow::Result<i64> {
        on!(self, s => s.count_events())
    }

    pub fn has_events(&self) -> anyhow::Result<bool> {
        on!(self, s => s.has_events())
    }

    pub(crate) fn customer_user(&self, customer_id: &str) -> anyhow::Result<Known> {
        on!(self, s => s.customer_user(customer_id))
    }

    pub fn customer_known(&self, customer_id: &str) -> anyhow::Result<bool> {
        on!(self, s => s.customer_known(customer_id))
    }

    pub fn customers_of_user(&self, user_id: &str) -> anyhow::Result<Vec<String>> {
        on!(self, s => s.customers_of_user(user_id))
    }

    pub(crate) fn backfill(&self) -> anyhow::Result<Option<checkpoint::Backfill>> {
        on!(self, s => s.backfill())
    }

    pub(crate) fn begin_backfill(
        &mut self,
        started_at: i64,
    ) -> anyhow::Result<checkpoint::Backfill> {
        on!(mut self, s => s.begin_backfill(started_at))
    }

    pub(crate) fn events_checkpoint(&self) -> anyhow::Result<Option<checkpoint::Events>> {
        on!(self, s => s.events_checkpoint())
    }

    pub(crate) fn advance_events_checkpoint(
        &mut self,
        e: &checkpoint::Events,
    ) -> anyhow::Result<()> {
        on!(mut self, s => s.advance_events_checkpoint(e))
    }

    pub(crate) fn caught_up_at(&self) -> anyhow::Result<Option<i64>> {
        on!(self, s => s.caught_up_at())
    }

    pub(crate) fn mark_caught_up(&mut self, at: i64) -> anyhow::Result<()> {
        on!(mut self, s => s.mark_caught_up(at))
    }

    pub(crate) fn end_backfill(&mut self) -> anyhow::Result<()> {
        on!(mut self, s => s.end_backfill())
    }

    pub(crate) fn backfill_unlisted(
        &self,
        pass: i64,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<(Vec<(String, Unlisted)>, i64)> {
        on!(self, s => s.backfill_unlisted(pass, after, limit))
    }

    pub(crate) fn apply(&mut self, writes: &[CustomerWrite]) -> anyhow::Result<Vec<WriteOutcome>> {
        on!(mut self, s => s.apply(writes))
    }

    pub(crate) fn pass_writes<T, E: From<anyhow::Error>>(
        &mut self,
        marks: PassMarks,
        f: impl FnOnce(&mut PassWrites<'_, '_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match &mut self.0 {
            Backend::Sqlite(s) => s.pass_writes(marks, |w| f(&mut PassWrites::Sqlite(w))),
            Backend::Postgres(s) => s.pass_writes(marks, |w| f(&mut PassWrites::Postgres(w))),
        }
    }

    /// Hold the store's backfill lock for this run, so two backfills of
    /// one shared store never run at once; when another process holds it,
    /// who does. (An SQLite store is one writer's at a time already.)
    pub(crate) fn try_backfill_lock(&self) -> anyhow::Result<Option<String>> {
        match &self.0 {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(s) => s.try_backfill_lock(),
        }
    }

    pub(crate) fn begin_run(&mut self) -> anyhow::Result<i64> {
        on!(mut self, s => s.begin_run())
    }

    pub(crate) fn restore_indexes(&mut self) -> anyhow::Result<()> {
        match &mut self.0 {
            Backend::Sqlite(s) => s.restore_indexes(),
            Backend::Postgres(_) => Ok(()),
        }
    }

    pub(crate) fn run_len(&self, run: i64) -> anyhow::Result<u64> {
        on!(self, s => s.run_len(run))
    }

    pub(crate) fn run_page(
        &self,
        run: i64,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, WriteOutcome)>> {
        on!(self, s => s.run_page(run, after, limit))
    }

    #[cfg(test)]
    pub(crate) fn log_events(&mut self, events: &[super::LoggedEvent<'_>]) -> anyhow::Result<()> {
        self.logging(|log| events.iter().try_for_each(|e| log.log(e)))
    }

    pub(crate) fn logging<T>(
        &mut self,
        f: impl FnOnce(&mut EventLogger<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        on!(mut self, s => s.logging(f))
    }

    pub fn for_each_mapping(
        &self,
        f: &Filter,
        each: impl FnMut(&MappingRow) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        on!(self, s => s.for_each_mapping(f, each))
    }

    pub(crate) fn cache_readers(&self, kib: i64) {
        if let Backend::Sqlite(s) = &self.0 {
            s.cache_readers(kib);
        }
    }

    #[cfg(test)]
    pub fn mapping(&self, f: &Filter) -> anyhow::Result<Vec<MappingRow>> {
        let mut rows = Vec::new();
        self.for_each_mapping(f, |r| {
            rows.push(r.clone());
            Ok(())
        })?;
        Ok(rows)
    }

    pub fn mapping_of(&self, customer_id: &str) -> anyhow::Result<Option<MappingRow>> {
        on!(self, s => s.mapping_of(customer_id))
    }

    pub fn has_customers(&self) -> anyhow::Result<bool> {
        on!(self, s => s.has_customers())
    }

    pub(crate) fn for_each_billing_customer(
        &self,
        bills: impl Fn(&str) -> bool,
        each: impl FnMut(&str),
    ) -> anyhow::Result<()> {
        on!(self, s => s.for_each_billing_customer(bills, each))
    }

    pub(crate) fn billing_subscriptions_of(
        &self,
        user_id: &str,
        bills: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<String>> {
        on!(self, s => s.billing_subscriptions_of(user_id, bills))
    }

    pub(crate) fn last_subscription(
        &self,
        customer_id: &str,
    ) -> anyhow::Result<Option<(SubscriptionRecord, bool)>> {
        on!(self, s => s.last_subscription(customer_id))
    }

    /// The SQLite store underneath, for tests of its own behaviour.
    #[cfg(test)]
    pub(crate) fn sqlite(&self) -> &SqliteStore {
        match &self.0 {
            Backend::Sqlite(s) => s,
            Backend::Postgres(_) => panic!("not an SQLite store"),
        }
    }

    #[cfg(test)]
    pub(crate) fn sqlite_mut(&mut self) -> &mut SqliteStore {
        match &mut self.0 {
            Backend::Sqlite(s) => s,
            Backend::Postgres(_) => panic!("not an SQLite store"),
        }
    }
}

/// A backfill's writes (see [`SqlitePassWrites`]), in either backend.
pub(crate) enum PassWrites<'a, 'c> {
    Sqlite(&'a mut SqlitePassWrites<'c>),
    Postgres(&'a mut super::postgres::PgPassWrites<'c>),
}

impl PassWrites<'_, '_> {
    pub(crate) fn write(&mut self, page: &PassPage<'_>) -> anyhow::Result<()> {
        match self {
            PassWrites::Sqlite(w) => w.write(page),
            PassWrites::Postgres(w) => w.write(page),
        }
    }

    pub(crate) fn defer_indexes(&mut self) -> anyhow::Result<()> {
        match self {
            PassWrites::Sqlite(w) => w.defer_indexes(),
            PassWrites::Postgres(_) => Ok(()),
        }
    }

    pub(crate) fn commit(&mut self) -> anyhow::Result<()> {
        match self {
            PassWrites::Sqlite(w) => w.commit(),
            PassWrites::Postgres(w) => w.commit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_names_a_file_or_a_database() {
        let at = |s: &str| Location::from_flag(Some(Path::new(s)));
        assert_eq!(
            Location::from_flag(None),
            Location::Sqlite(PathBuf::from("stripe-sync.db"))
        );
        assert_eq!(at("team.db"), Location::Sqlite(PathBuf::from("team.db")));
        assert_eq!(
            at("sqlite:/var/lib/s.db"),
            Location::Sqlite(PathBuf::from("/var/lib/s.db"))
        );
        for url in [
            "postgres://u:pw@h/db",
            "postgresql://u:pw@h:5433/db?sslmode=require",
        ] {
            assert_eq!(at(url), Location::Postgres(url.to_owned()));
        }
        // A file whose name merely starts like a scheme is a file.
        assert_eq!(
            at("postgres.db"),
            Location::Sqlite(PathBuf::from("postgres.db"))
        );
    }

    #[test]
    fn a_location_is_shown_without_its_password() {
        let at = Location::from_flag(Some(Path::new(
            "postgres://sync:s3cr3t@db.internal:5432/app?sslmode=verify-full",
        )));
        let shown = at.to_string();
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(
            shown,
            "postgres://sync:***@db.internal:5432/app?sslmode=verify-full"
        );
    }

    #[test]
    fn the_flag_beats_the_config() {
        use clap::Parser;
        let cfg = crate::config::Config::parse("db = \"postgres://u@h/from_config\"").unwrap();
        let global = |args: &[&str]| {
            let mut argv = vec!["stripe-sync"];
            argv.extend_from_slice(args);
            argv.extend_from_slice(&["inspect"]);
            crate::cli::Cli::try_parse_from(argv).unwrap().global
        };
        assert_eq!(
            crate::commands::store_location(&global(&[]), &cfg),
            Location::Postgres("postgres://u@h/from_config".into())
        );
        assert_eq!(
            crate::commands::store_location(&global(&["--db", "mine.db"]), &cfg),
            Location::Sqlite(PathBuf::from("mine.db"))
        );
        assert!(crate::config::Config::parse("db = \"\"").is_err());
    }
}
