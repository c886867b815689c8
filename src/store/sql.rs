//! The store's statements, written once for both engines (SQLite and
//! PostgreSQL), and the few operations the one writer needs of a database:
//! run a statement, read its rows. The write path
//! ([`super::write::Writer`]) holds the model's rules for what a write may
//! replace; it runs them through [`Db`], so both backends apply the same
//! rules to the same reads.
//!
//! The dialect both engines accept, which the statements keep to:
//! - placeholders are `?N` (numbered); PostgreSQL's `$N` is made from them
//!   ([`numbered`]);
//! - null-safe comparison is `IS [NOT] DISTINCT FROM` (SQLite 3.39+);
//! - flags are compared as booleans (`c.deleted`, `NOT c.deleted`), never
//!   with `= 0`: SQLite stores them as 0 and 1, PostgreSQL as `boolean`;
//! - no engine's own functions (`max(a, b)`, `GREATEST`): `CASE` instead;
//! - temporary tables are named without `temp.` (both look there first).

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Bool(bool),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Arg::Null, Arg::Int)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Arg::Null, Arg::Text)
    }
}

impl<'a> From<Option<&'a String>> for Arg<'a> {
    fn from(v: Option<&'a String>) -> Self {
        v.map_or(Arg::Null, |v| Arg::Text(v))
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().map_or(Arg::Null, Arg::Text)
    }
}

/// `[Arg; N]` from values of mixed types.
macro_rules! args {
    ($($e:expr),* $(,)?) => {
        [$($crate::store::sql::Arg::from($e)),*]
    };
}
pub(crate) use args;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match *self {
            Arg::Null => ToSqlOutput::Owned(Value::Null),
            Arg::Int(v) => ToSqlOutput::Owned(Value::Integer(v)),
            Arg::Bool(v) => ToSqlOutput::Owned(Value::Integer(i64::from(v))),
            Arg::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
        })
    }
}

/// A row being read: columns by their place in the `SELECT`.
pub(crate) trait Row {
    /// A text column (or NULL).
    fn text(&self, i: usize) -> anyhow::Result<Option<&str>>;
    /// An integer or flag column (or NULL); a flag reads as 0 or 1.
    fn int(&self, i: usize) -> anyhow::Result<Option<i64>>;

    fn string(&self, i: usize) -> anyhow::Result<Option<String>> {
        Ok(self.text(i)?.map(str::to_owned))
    }

    /// A flag: NULL reads as false.
    fn flag(&self, i: usize) -> anyhow::Result<bool> {
        Ok(self.int(i)?.is_some_and(|v| v != 0))
    }
}

/// What the write path needs of a database, inside a transaction its
/// caller opened.
pub(crate) trait Db {
    /// Run a statement; how many rows it changed.
    fn exec(&mut self, sql: &'static str, args: &[Arg<'_>]) -> anyhow::Result<u64>;

    /// Run a statement whose count nobody reads: an engine with round
    /// trips may hold it and send it with the next statement (PostgreSQL:
    /// pipelined), which the server runs after it, in order. An error of
    /// it then surfaces there, or at the commit; the transaction fails
    /// either way.
    fn exec_later(&mut self, sql: &'static str, args: &[Arg<'_>]) -> anyhow::Result<()> {
        self.exec(sql, args).map(|_| ())
    }

    /// Each row of a query, until `f` answers false.
    fn each(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
        f: &mut dyn FnMut(&dyn Row) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()>;
}

/// The first row of a query, read by `f`.
pub(crate) fn one<T>(
    db: &mut (impl Db + ?Sized),
    sql: &'static str,
    args: &[Arg<'_>],
    f: impl FnOnce(&dyn Row) -> anyhow::Result<T>,
) -> anyhow::Result<Option<T>> {
    let mut f = Some(f);
    let mut out = None;
    db.each(sql, args, &mut |r| {
        if let Some(f) = f.take() {
            out = Some(f(r)?);
        }
        Ok(false)
    })?;
    Ok(out)
}

/// `sql` with PostgreSQL's placeholders: `?N` becomes `$N`. The store's
/// statements hold no `?` in a string literal.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// The SQLite side of [`Db`]: statements prepared once each, found again
/// by their text's address (each is a `&'static str`), ahead of rusqlite's
/// own cache, which hashes the text at every use.
pub(crate) struct Sqlite<'c> {
    conn: &'c rusqlite::Connection,
    prepared: Vec<(usize, rusqlite::CachedStatement<'c>)>,
}

impl<'c> Sqlite<'c> {
    pub(crate) fn new(conn: &'c rusqlite::Connection) -> Sqlite<'c> {
        Sqlite {
            conn,
            prepared: Vec::new(),
        }
    }

    fn statement(&mut self, sql: &'static str) -> rusqlite::Result<usize> {
        let key = sql.as_ptr() as usize;
        if let Some(i) = self.prepared.iter().position(|(k, _)| *k == key) {
            return Ok(i);
        }
        self.prepared.push((key, self.conn.prepare_cached(sql)?));
        Ok(self.prepared.len() - 1)
    }
}

/// An SQLite row as a [`Row`].
pub(crate) struct SqliteRow<'r, 's>(pub(crate) &'r rusqlite::Row<'s>);

/// An error of [`Row`]'s reads, back in rusqlite's type (for its closures).
pub(crate) fn sqlite_error(e: anyhow::Error) -> rusqlite::Error {
    match e.downcast::<rusqlite::Error>() {
        Ok(e) => e,
        Err(e) => rusqlite::Error::ToSqlConversionFailure(e.into()),
    }
}

impl Row for SqliteRow<'_, '_> {
    fn text(&self, i: usize) -> anyhow::Result<Option<&str>> {
        let v = self.0.get_ref(i)?;
        Ok(v.as_str_or_null().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(e))
        })?)
    }

    fn int(&self, i: usize) -> anyhow::Result<Option<i64>> {
        let v = self.0.get_ref(i)?;
        Ok(v.as_i64_or_null().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(e))
        })?)
    }
}

impl Db for Sqlite<'_> {
    fn exec(&mut self, sql: &'static str, args: &[Arg<'_>]) -> anyhow::Result<u64> {
        let i = self.statement(sql)?;
        let st = &mut self.prepared[i].1;
        Ok(st.execute(rusqlite::params_from_iter(args.iter()))? as u64)
    }

    fn each(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
        f: &mut dyn FnMut(&dyn Row) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let i = self.statement(sql)?;
        let st = &mut self.prepared[i].1;
        let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
        while let Some(r) = rows.next()? {
            if !f(&SqliteRow(r))? {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE a = ?1 AND b IS NOT DISTINCT FROM ?12 OR c = ?"),
            "SELECT a FROM t WHERE a = $1 AND b IS NOT DISTINCT FROM $12 OR c = ?"
        );
    }

    #[test]
    fn sqlite_reads_and_writes_through_db() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, f INTEGER NOT NULL)")
            .unwrap();
        let mut db = Sqlite::new(&conn);
        const INSERT: &str = "INSERT INTO t (id, n, f) VALUES (?1, ?2, ?3)";
        const READ: &str = "SELECT id, n, f FROM t WHERE id = ?1";
        assert_eq!(db.exec(INSERT, &args!["a", Some(5), true]).unwrap(), 1);
        assert_eq!(db.exec(INSERT, &args!["b", None::<i64>, false]).unwrap(), 1);
        let read = |db: &mut Sqlite<'_>, id: &str| {
            one(db, READ, &args![id], |r| {
                Ok((r.string(0)?, r.int(1)?, r.flag(2)?))
            })
            .unwrap()
        };
        assert_eq!(read(&mut db, "a"), Some((Some("a".into()), Some(5), true)));
        assert_eq!(read(&mut db, "b"), Some((Some("b".into()), None, false)));
        assert_eq!(read(&mut db, "c"), None);
        assert_eq!(db.prepared.len(), 2);
    }
}
