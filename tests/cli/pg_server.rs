//! The test PostgreSQL server of `tests/support/pg.rs` itself (the binary is
//! not involved): it starts, serves the test role over TCP with its password,
//! keeps databases apart, and never tells a wrong password back.

use crate::support::pg::{self, TEST_ROLE};

/// Runs `f` on a fresh current-thread runtime: these are plain `#[test]`s.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = url
        .parse::<tokio_postgres::Config>()?
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

#[test]
fn pg_server_serves_the_test_role_over_tcp() {
    let Some(server) = pg::server() else { return };
    let db = server.create_database();
    let url = server.url(&db);
    assert_eq!(
        url,
        format!(
            "postgres://{TEST_ROLE}:{}@127.0.0.1:{}/{db}",
            server.password(),
            server.port()
        )
    );
    let rows = block_on(async {
        let client = connect(&url).await.unwrap();
        client
            .batch_execute(
                "CREATE TABLE users (id text PRIMARY KEY, seats int, paid_until timestamptz);
                 INSERT INTO users VALUES ('user_a', 3, '2026-01-05 10:00:00+00'), ('user_b', NULL, NULL);",
            )
            .await
            .unwrap();
        let who: String = client
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(who, TEST_ROLE);
        let encrypted: bool = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            !encrypted,
            "the test server offers no TLS: sslmode=prefer falls back to plain"
        );
        client
            .query("SELECT id, seats FROM users ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, Option<i32>>(1)))
            .collect::<Vec<_>>()
    });
    assert_eq!(
        rows,
        [("user_a".to_owned(), Some(3)), ("user_b".to_owned(), None)]
    );
    // The helpers see what the TCP client wrote, as the same role.
    assert_eq!(server.query_one(&db, "SELECT count(*) FROM users"), "2");
    assert_eq!(
        server.query_one(
            &db,
            "SELECT tableowner::text FROM pg_tables WHERE tablename = 'users'"
        ),
        TEST_ROLE
    );
}

#[test]
fn pg_server_databases_are_fresh_and_apart() {
    let Some(server) = pg::server() else { return };
    let (one, two) = (server.create_database(), server.create_database());
    assert_ne!(one, two);
    server.execute(
        &one,
        "CREATE TABLE billing (user_id text); INSERT INTO billing VALUES ('user_a')",
    );
    assert_eq!(server.query_one(&one, "SELECT count(*) FROM billing"), "1");
    assert_eq!(
        server.query_one(
            &two,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'billing'"
        ),
        "0"
    );
    assert_eq!(server.query_one(&two, "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()"), TEST_ROLE);
    // Owned, not superuser: what a test does as the role is what an app's role could do.
    assert_eq!(
        server.query_one(
            &two,
            "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user"
        ),
        "false"
    );
}

#[test]
fn pg_server_refuses_a_wrong_password_without_echoing_it() {
    let Some(server) = pg::server() else { return };
    let db = server.create_database();
    let wrong = "Wrong-Pass-8214";
    let url = server.url(&db).replace(server.password(), wrong);
    let err = block_on(connect(&url)).expect_err("a wrong password is refused");
    let db_error = err.as_db_error().expect("the server's own refusal");
    assert_eq!(
        db_error.code(),
        &tokio_postgres::error::SqlState::INVALID_PASSWORD
    );
    let mut text = format!("{err} {err:?} {}", db_error.message());
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        text.push_str(&format!(" {c} {c:?}"));
        cause = c.source();
    }
    assert!(
        text.contains(&format!(
            "password authentication failed for user \"{TEST_ROLE}\""
        )),
        "{text}"
    );
    assert!(
        !text.contains(wrong) && !text.contains(server.password()),
        "{text}"
    );
}

#[test]
fn pg_server_is_one_per_process() {
    let Some(first) = pg::server() else { return };
    let again = pg::server().unwrap();
    assert!(std::ptr::eq(first, again));
    assert_eq!(first.url("x"), again.url("x"));
}
