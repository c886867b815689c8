//! The app's own database as an audit source: `--app-db postgres://...` or
//! `sqlite:PATH`, and `--query SQL` returning one row per user.
//!
//! The query always runs read-only (SQLite opened read-only with
//! `query_only`; PostgreSQL inside `BEGIN READ ONLY`, one statement, through
//! a cursor), so an audit can never write the app's database. Rows are
//! streamed to the sink, never collected.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Number, Value};

pub(crate) use crate::pg::shown;

/// Where the rows of a query go: the column names first, then each row
/// (1-based) as a JSON object keyed by column name.
pub(crate) trait RowSink {
    fn columns(&mut self, names: &[String]) -> anyhow::Result<()>;
    fn row(&mut self, n: u64, row: Map<String, Value>) -> anyhow::Result<()>;
}

/// Run `query` on the database at `url` and hand its rows to `sink`.
pub(crate) fn read_rows(url: &str, query: &str, sink: &mut dyn RowSink) -> anyhow::Result<()> {
    if query.trim().trim_end_matches(';').trim().is_empty() {
        return Err(crate::usage(
            "--query is empty: give the SELECT that returns one row per user",
        ));
    }
    if let Some(path) = sqlite_path(url) {
        return sqlite::read_rows(path, query, sink);
    }
    if crate::pg::is_url(url) {
        return postgres::read_rows(url, query, sink);
    }
    Err(crate::usage(format!(
        "--app-db {} is not a database URL: give postgres://USER:PASSWORD@HOST:PORT/DB \
         (or postgresql://...) for PostgreSQL, or sqlite:PATH for a SQLite file",
        shown(url)
    )))
}

/// The file of `sqlite:PATH` (`sqlite://PATH` too, as sqlx writes it).
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    Some(rest.strip_prefix("//").unwrap_or(rest))
}

/// Two columns of one name would overwrite each other in the row's map.
fn check_names(names: &[String]) -> anyhow::Result<()> {
    if names.is_empty() {
        bail!("--query returns no columns: give a SELECT that returns one row per user");
    }
    let mut seen = HashSet::with_capacity(names.len());
    for name in names {
        if !seen.insert(name.as_str()) {
            bail!(
                "--query returns more than one column named `{name}`: give each column its own \
                 name (for example `SELECT s.id AS subscription_id, u.id AS user_id ...`)"
            );
        }
    }
    Ok(())
}

fn float_value(f: f64, text: impl FnOnce() -> String) -> Value {
    // JSON has no NaN or infinities: those stay text.
    Number::from_f64(f).map_or_else(|| Value::String(text()), Value::Number)
}

mod sqlite {
    use rusqlite::types::ValueRef;
    use rusqlite::{Connection, OpenFlags};

    use super::*;

    pub(super) fn read_rows(path: &str, query: &str, sink: &mut dyn RowSink) -> anyhow::Result<()> {
        if path.is_empty() {
            return Err(crate::usage(
                "--app-db sqlite: needs a path: give sqlite:PATH of the app's SQLite file",
            ));
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                bail!("--app-db sqlite:{path} is a directory: give the app's SQLite database file")
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "--app-db sqlite:{path}: no such file; give the path of the app's SQLite \
                 database (it is opened read-only and never created)"
            ),
            Err(e) => bail!("--app-db sqlite:{path}: cannot read it ({e}); check its permissions"),
        }
        // Read-only open, and `query_only` on top, so no statement can write
        // (not even through an ATTACH).
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(Path::new(path), flags).with_context(|| {
            format!("--app-db sqlite:{path}: cannot open it as a SQLite database")
        })?;
        conn.pragma_update(None, "query_only", true)
            .with_context(|| format!("--app-db sqlite:{path}: cannot make it read-only"))?;

        let mut stmt = conn.prepare(query).map_err(query_failed)?;
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        check_names(&names)?;
        sink.columns(&names)?;
        let mut rows = stmt.query([]).map_err(query_failed)?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(query_failed)? {
            n += 1;
            let mut map = Map::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                let value = row.get_ref(i).map_err(query_failed)?;
                map.insert(name.clone(), json_of(value));
            }
            sink.row(n, map)?;
        }
        Ok(())
    }

    fn json_of(value: ValueRef<'_>) -> Value {
        match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::from(i),
            ValueRef::Real(f) => float_value(f, || f.to_string()),
            ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
            // A blob's text form: itself if it is UTF-8, else PostgreSQL's hex form.
            ValueRef::Blob(b) => match std::str::from_utf8(b) {
                Ok(s) => Value::String(s.to_owned()),
                Err(_) => Value::String(format!("\\x{}", hex::encode(b))),
            },
        }
    }

    fn query_failed(e: rusqlite::Error) -> anyhow::Error {
        match e {
            rusqlite::Error::MultipleStatement => anyhow!(
                "--query failed: it holds more than one statement; give one SELECT statement"
            ),
            rusqlite::Error::SqliteFailure(_, Some(message)) => {
                anyhow!("--query failed: {message}")
            }
            other => anyhow!("--query failed: {other}"),
        }
    }
}

mod postgres {
    use tokio_postgres::error::SqlState;
    use tokio_postgres::types::Type;
    use tokio_postgres::{Client, SimpleQueryMessage};

    use super::*;
    use crate::pg::{self, Target};

    /// Rows per `FETCH`: enough to keep round trips negligible, few enough
    /// that a batch of wide rows stays small.
    const BATCH: usize = 2000;
    const CURSOR: &str = "stripe_sync_audit";

    pub(super) fn read_rows(url: &str, query: &str, sink: &mut dyn RowSink) -> anyhow::Result<()> {
        let target =
            Target::parse(url, "--app-db", "stripe-sync audit")?.called("the app database");
        if tokio::runtime::Handle::try_current().is_ok() {
            bail!("internal error: --app-db read from inside a tokio runtime; please report this");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime that reads --app-db")?;
        runtime.block_on(read(&target, query, sink))
    }

    async fn read(target: &Target, query: &str, sink: &mut dyn RowSink) -> anyhow::Result<()> {
        let client = target.connect().await?;
        let result = stream(target, &client, query, sink).await;
        drop(client);
        // The connection ends once the client is gone (it sends Terminate):
        // give it a second. It is the only task of this runtime.
        let tasks = tokio::runtime::Handle::current().metrics();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while tasks.num_alive_tasks() > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        result
    }

    /// The query as a cursor inside a read-only transaction, fetched in
    /// batches in the text protocol.
    ///
    /// Why a cursor and the text protocol: the extended protocol
    /// (`query_raw`) returns binary values that need a decoder per type,
    /// and types without one (numeric, enums, domains, arrays...) would
    /// have no text form; the text protocol gives every value as the
    /// server prints it, and the column types from `prepare` say which
    /// to turn into numbers, booleans or JSON. `simple_query` collects
    /// all rows of a statement, so the rows come through `FETCH` in
    /// batches of `BATCH`. `DECLARE ... CURSOR FOR` also accepts only
    /// SELECT, VALUES and WITH ... SELECT.
    async fn stream(
        target: &Target,
        client: &Client,
        query: &str,
        sink: &mut dyn RowSink,
    ) -> anyhow::Result<()> {
        let failed = |e: tokio_postgres::Error| query_failed(target, &e);
        // SET LOCAL, not SET: behind a transaction-pooling PgBouncer a
        // session setting would outlive this transaction. UTC and ISO
        // make timestamps read `2026-01-05 10:00:00+00`; a cursor is
        // planned for its first rows unless told it will be read through.
        client
            .batch_execute(
                "BEGIN READ ONLY; SET LOCAL TimeZone = 'UTC'; \
                 SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL cursor_tuple_fraction = 1.0",
            )
            .await
            .map_err(failed)?;
        // `prepare` takes one statement only: a `; COMMIT; ...` after the
        // query cannot end the read-only transaction. It also gives the types.
        let statement = client.prepare(query).await.map_err(failed)?;
        let names: Vec<String> = statement
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let kinds: Vec<Kind> = statement
            .columns()
            .iter()
            .map(|c| Kind::of(c.type_()))
            .collect();
        check_names(&names)?;
        sink.columns(&names)?;
        client
            .batch_execute(&format!("DECLARE {CURSOR} NO SCROLL CURSOR FOR {query}"))
            .await
            .map_err(|e| {
                let error = query_failed(target, &e);
                // The query itself parsed in `prepare`: what a cursor
                // refuses is a statement that is not a query.
                if e.code() == Some(&SqlState::SYNTAX_ERROR) {
                    anyhow!(
                        "{error}; --query must be one SELECT, VALUES or WITH ... SELECT \
                         statement"
                    )
                } else {
                    error
                }
            })?;
        let fetch = format!("FETCH {BATCH} FROM {CURSOR}");
        let mut n = 0;
        loop {
            let messages = client.simple_query(&fetch).await.map_err(failed)?;
            let mut fetched = 0;
            for message in messages {
                let SimpleQueryMessage::Row(row) = message else {
                    continue;
                };
                fetched += 1;
                n += 1;
                let mut map = Map::with_capacity(names.len());
                for (i, (name, kind)) in names.iter().zip(&kinds).enumerate() {
                    let value = row
                        .try_get(i)
                        .map_err(failed)?
                        .map_or(Value::Null, |t| kind.json(t));
                    map.insert(name.clone(), value);
                }
                sink.row(n, map)?;
            }
            if fetched < BATCH {
                return Ok(());
            }
        }
    }

    fn query_failed(target: &Target, e: &tokio_postgres::Error) -> anyhow::Error {
        match e.as_db_error() {
            Some(db) => anyhow!("--query failed: {}", pg::with_detail(db)),
            None => anyhow!(
                "--query failed: the connection to {} broke ({}); run the audit again",
                target.place(),
                pg::chain(e)
            ),
        }
    }

    /// What a column's text becomes in JSON, decided once from its type.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Bool,
        Integer,
        Float,
        Numeric,
        Json,
        Text,
    }

    impl Kind {
        fn of(ty: &Type) -> Kind {
            if *ty == Type::BOOL {
                Kind::Bool
            } else if [Type::INT2, Type::INT4, Type::INT8, Type::OID].contains(ty) {
                Kind::Integer
            } else if *ty == Type::FLOAT4 || *ty == Type::FLOAT8 {
                Kind::Float
            } else if *ty == Type::NUMERIC {
                Kind::Numeric
            } else if *ty == Type::JSON || *ty == Type::JSONB {
                Kind::Json
            } else {
                Kind::Text
            }
        }

        /// Anything that does not read as its type stays text, unchanged.
        fn json(self, text: &str) -> Value {
            let as_text = || Value::String(text.to_owned());
            match self {
                Kind::Bool => match text {
                    "t" => Value::Bool(true),
                    "f" => Value::Bool(false),
                    _ => as_text(),
                },
                Kind::Integer => text.parse::<i64>().map_or_else(|_| as_text(), Value::from),
                // numeric: exact when it is an integer, else the nearest f64
                // (12.50 -> 12.5); NaN and infinities stay text.
                Kind::Float | Kind::Numeric => match text.parse::<i64>() {
                    Ok(i) if self == Kind::Numeric => Value::from(i),
                    _ => text
                        .parse::<f64>()
                        .map_or_else(|_| as_text(), |f| float_value(f, || text.to_owned())),
                },
                Kind::Json => serde_json::from_str(text).unwrap_or_else(|_| as_text()),
                Kind::Text => as_text(),
            }
        }
    }
    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn text_values_become_json_by_type() {
            assert_eq!(Kind::of(&Type::BOOL).json("t"), Value::Bool(true));
            assert_eq!(
                Kind::of(&Type::INT8).json("-9007199254740993"),
                serde_json::json!(-9007199254740993_i64)
            );
            assert_eq!(Kind::of(&Type::FLOAT8).json("1.5"), serde_json::json!(1.5));
            assert_eq!(
                Kind::of(&Type::FLOAT8).json("NaN"),
                serde_json::json!("NaN")
            );
            assert_eq!(
                Kind::of(&Type::NUMERIC).json("12.50"),
                serde_json::json!(12.5)
            );
            assert_eq!(
                Kind::of(&Type::NUMERIC).json("1250"),
                serde_json::json!(1250)
            );
            assert_eq!(
                Kind::of(&Type::JSONB).json(r#"{"a": [1]}"#),
                serde_json::json!({"a": [1]})
            );
            assert_eq!(
                Kind::of(&Type::TIMESTAMPTZ).json("2026-01-05 10:00:00+00"),
                serde_json::json!("2026-01-05 10:00:00+00")
            );
        }
    }
}

// The test PostgreSQL server of the integration tests, shared as is.
#[cfg(test)]
use crate::test_pg as pg_support;

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps what `read_rows` hands over.
    #[derive(Default)]
    struct Collect {
        columns: Vec<String>,
        rows: Vec<(u64, Map<String, Value>)>,
    }

    impl RowSink for Collect {
        fn columns(&mut self, names: &[String]) -> anyhow::Result<()> {
            self.columns = names.to_vec();
            Ok(())
        }
        fn row(&mut self, n: u64, row: Map<String, Value>) -> anyhow::Result<()> {
            self.rows.push((n, row));
            Ok(())
        }
    }

    fn read(url: &str, query: &str) -> anyhow::Result<Collect> {
        let mut sink = Collect::default();
        read_rows(url, query, &mut sink).map(|()| sink)
    }

    /// A SQLite file with an app's billing table.
    fn app_sqlite() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, plan TEXT, paid_until TEXT,
                                 seats INTEGER, price REAL, active BOOLEAN, avatar BLOB);
             INSERT INTO users VALUES (1, 'a@example.com', 'pro', '2026-01-05 10:00:00', 3, 12.5, 1, x'00ff');
             INSERT INTO users VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
        )
        .unwrap();
        let url = format!("sqlite:{}", path.display());
        (dir, url)
    }

    #[test]
    fn sqlite_rows_come_typed_and_in_order() {
        let (_dir, url) = app_sqlite();
        let got = read(&url, "SELECT id, email, plan, paid_until, seats, price, active, avatar FROM users ORDER BY id").unwrap();
        assert_eq!(
            got.columns,
            [
                "id",
                "email",
                "plan",
                "paid_until",
                "seats",
                "price",
                "active",
                "avatar"
            ]
        );
        assert_eq!(got.rows.len(), 2);
        let (n, first) = &got.rows[0];
        assert_eq!(*n, 1);
        assert_eq!(
            Value::Object(first.clone()),
            serde_json::json!({"id": 1, "email": "a@example.com", "plan": "pro",
                "paid_until": "2026-01-05 10:00:00", "seats": 3, "price": 12.5, "active": 1,
                "avatar": "\\x00ff"})
        );
        // Keys keep the query's order.
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            got.columns.iter().collect::<Vec<_>>()
        );
        let (n, second) = &got.rows[1];
        assert_eq!(*n, 2);
        assert_eq!(second["id"], serde_json::json!(2));
        assert!(
            got.columns[1..].iter().all(|c| second[c].is_null()),
            "{second:?}"
        );
    }

    #[test]
    fn sqlite_failing_query_shows_sqlite_message() {
        let (_dir, url) = app_sqlite();
        let err = read(&url, "SELECT * FROM subscriptions").err().unwrap();
        assert_eq!(
            err.to_string(),
            "--query failed: no such table: subscriptions"
        );
        let err = read(&url, "SELECT 1; SELECT 2").err().unwrap();
        assert!(err.to_string().contains("more than one statement"), "{err}");
        let err = read(&url, "SELECT id, email AS id FROM users")
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("more than one column named `id`"),
            "{err}"
        );
        let err = read(&url, "  ; ").err().unwrap();
        assert!(err.to_string().starts_with("--query is empty"), "{err}");
    }

    #[test]
    fn sqlite_missing_file_is_named_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.db");
        let err = read(&format!("sqlite:{}", path.display()), "SELECT 1")
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("no such file"), "{text}");
        assert!(!path.exists());
        // sqlx's sqlite://PATH form reads the same file.
        let (_dir, url) = app_sqlite();
        let path = url.strip_prefix("sqlite:").unwrap();
        assert_eq!(
            read(&format!("sqlite://{path}"), "SELECT 1 AS one")
                .unwrap()
                .rows
                .len(),
            1
        );
    }

    #[test]
    fn sqlite_query_cannot_write() {
        let (_dir, url) = app_sqlite();
        for query in [
            "INSERT INTO users (id) VALUES (3) RETURNING id",
            "UPDATE users SET plan = 'free' RETURNING id",
            "DELETE FROM users",
        ] {
            let err = read(&url, query).err().unwrap();
            assert!(err.to_string().starts_with("--query "), "{query}: {err}");
        }
        let err = read(&url, "INSERT INTO users (id) VALUES (3) RETURNING id")
            .err()
            .unwrap();
        assert!(err.to_string().contains("readonly"), "{err}");
        let got = read(&url, "SELECT count(*) AS n, min(plan) AS plan FROM users").unwrap();
        assert_eq!(got.rows[0].1["n"], serde_json::json!(2));
        assert_eq!(got.rows[0].1["plan"], serde_json::json!("pro"));
    }

    #[test]
    fn sqlite_streams_many_rows() {
        let (_dir, url) = app_sqlite();
        let query = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50000) SELECT i FROM s";
        let mut count = Count::default();
        read_rows(&url, query, &mut count).unwrap();
        assert_eq!((count.rows, count.last), (50_000, 50_000));
    }

    /// Counts without keeping: what streaming looks like to a sink.
    #[derive(Default)]
    struct Count {
        rows: u64,
        last: u64,
    }

    impl RowSink for Count {
        fn columns(&mut self, _: &[String]) -> anyhow::Result<()> {
            Ok(())
        }
        fn row(&mut self, n: u64, _: Map<String, Value>) -> anyhow::Result<()> {
            self.rows += 1;
            self.last = n;
            Ok(())
        }
    }

    #[test]
    fn other_schemes_are_usage_errors_naming_both_forms() {
        for url in ["mysql://app:hunter2@db/app", "/var/app.db", "sqlite"] {
            let err = read(url, "SELECT 1").err().unwrap();
            let text = err.to_string();
            assert!(
                text.contains("postgres://") && text.contains("sqlite:PATH"),
                "{text}"
            );
            assert!(!text.contains("hunter2"), "{text}");
            assert!(matches!(
                err.downcast_ref::<crate::Fatal>(),
                Some(crate::Fatal::Usage(_))
            ));
        }
    }

    // PostgreSQL: the test server of tests/support/pg.rs, when its binaries are installed.

    fn pg_database() -> Option<(&'static pg_support::PgServer, String)> {
        let server = pg_support::server()?;
        let db = server.create_database();
        server.execute(
            &db,
            "CREATE TABLE users (id bigint PRIMARY KEY, email text, seats int, small smallint,
                                 price numeric(10,2), ratio double precision, active boolean,
                                 paid_until timestamptz, started date, meta jsonb, tags text[],
                                 ref uuid);
             INSERT INTO users VALUES
               (1, 'a@example.com', 3, 7, 12.50, 0.25, true, '2026-01-05 10:00:00+00',
                '2026-01-01', '{\"plan\": \"pro\", \"n\": [1, 2]}', '{a,b}',
                '00000000-0000-0000-0000-000000000001'),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             CREATE SEQUENCE counter;",
        );
        Some((server, db))
    }

    #[test]
    fn pg_rows_come_typed_and_in_order() {
        let Some((server, db)) = pg_database() else {
            return;
        };
        let got = read(&server.url(&db), "SELECT * FROM users ORDER BY id;").unwrap();
        assert_eq!(
            got.columns,
            [
                "id",
                "email",
                "seats",
                "small",
                "price",
                "ratio",
                "active",
                "paid_until",
                "started",
                "meta",
                "tags",
                "ref"
            ]
        );
        assert_eq!(got.rows.len(), 2);
        assert_eq!(
            Value::Object(got.rows[0].1.clone()),
            serde_json::json!({"id": 1, "email": "a@example.com", "seats": 3, "small": 7,
                "price": 12.5, "ratio": 0.25, "active": true,
                "paid_until": "2026-01-05 10:00:00+00", "started": "2026-01-01",
                "meta": {"plan": "pro", "n": [1, 2]}, "tags": "{a,b}",
                "ref": "00000000-0000-0000-0000-000000000001"})
        );
        let (n, second) = &got.rows[1];
        assert_eq!(*n, 2);
        assert!(
            got.columns[1..].iter().all(|c| second[c].is_null()),
            "{second:?}"
        );
    }

    #[test]
    fn pg_streams_more_rows_than_one_batch() {
        let Some((server, db)) = pg_database() else {
            return;
        };
        let mut count = Count::default();
        let query = "SELECT i, 'user_' || i AS name FROM generate_series(1, 25001) AS i";
        read_rows(&server.url(&db), query, &mut count).unwrap();
        assert_eq!((count.rows, count.last), (25_001, 25_001));
        // An empty result still names its columns.
        let got = read(&server.url(&db), "SELECT id FROM users WHERE false").unwrap();
        assert_eq!((got.columns, got.rows.len()), (vec!["id".to_owned()], 0));
    }

    #[test]
    fn pg_query_cannot_write() {
        let Some((server, db)) = pg_database() else {
            return;
        };
        let url = server.url(&db);
        let cases = [
            ("SELECT nextval('counter')", "read-only transaction"),
            (
                "INSERT INTO users (id) VALUES (3) RETURNING id",
                "SELECT, VALUES or WITH",
            ),
            ("DELETE FROM users", "no columns"),
            (
                "SELECT 1 AS one; COMMIT; DELETE FROM users",
                "multiple commands",
            ),
            ("COMMIT", "no columns"),
        ];
        for (query, want) in cases {
            let err = read(&url, query).err().unwrap();
            let text = format!("{err:#}");
            assert!(text.contains("--query"), "{query}: {text}");
            assert!(text.contains(want), "{query}: {text}");
        }
        let got = read(
            &url,
            "SELECT count(*) AS n, (SELECT last_value FROM counter) AS c FROM users",
        )
        .unwrap();
        assert_eq!(
            Value::Object(got.rows[0].1.clone()),
            serde_json::json!({"n": 2, "c": 1})
        );
        assert_eq!(
            server.query_one(&db, "SELECT is_called::text FROM counter"),
            "false"
        );
    }

    #[test]
    fn pg_failing_query_shows_postgres_message() {
        let Some((server, db)) = pg_database() else {
            return;
        };
        let err = read(&server.url(&db), "SELECT * FROM subscriptions")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "--query failed: relation \"subscriptions\" does not exist"
        );
        let err = read(&server.url(&db), "SELECT 1 / (id - 1) AS x FROM users")
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "--query failed: division by zero");
        let err = read(&server.url(&db), "SELECT id, email AS id FROM users")
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("more than one column named `id`"),
            "{err}"
        );
    }

    #[test]
    fn pg_wrong_password_says_so_without_any_password() {
        let Some((server, db)) = pg_database() else {
            return;
        };
        let url = server
            .url(&db)
            .replace(server.password(), "wrong-Secret-42");
        let err = read(&url, "SELECT 1").err().unwrap();
        let text = format!("{err:#} {err:?}");
        assert!(text.contains("authentication failed"), "{text}");
        assert!(
            text.contains(&format!("127.0.0.1:{}", server.port())),
            "{text}"
        );
        assert!(
            !text.contains("wrong-Secret-42") && !text.contains(server.password()),
            "{text}"
        );
        // A missing database is the server's word, also without the password.
        let err = read(&server.url("no_such_db"), "SELECT 1").err().unwrap();
        let text = format!("{err:#} {err:?}");
        assert!(
            text.contains("database \"no_such_db\" does not exist"),
            "{text}"
        );
        assert!(!text.contains(server.password()), "{text}");
    }

    #[test]
    fn pg_unreachable_server_is_named_and_fails_fast() {
        // A port that refuses, and a listener that never answers.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let err = read(
            &format!("postgres://app:hunter2@127.0.0.1:{port}/app"),
            "SELECT 1",
        )
        .err()
        .unwrap();
        let text = format!("{err:#}");
        assert!(
            text.starts_with(&format!(
                "cannot reach the app database at 127.0.0.1:{port}"
            )),
            "{text}"
        );
        assert!(text.contains("postgres://app:***@127.0.0.1"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");

        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let started = std::time::Instant::now();
        let url = format!("postgres://app:hunter2@127.0.0.1:{port}/app?connect_timeout=1");
        let err = read(&url, "SELECT 1").err().unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = format!("{err:#}");
        assert!(text.contains("no answer within 1 s"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
