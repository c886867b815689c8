//! Typed checkpoints kept in the store's `sync_state` table: where an
//! interrupted backfill resumes. The key strings live here and nowhere else.

use super::sql::{self, Db, args};

/// Where one of the backfill's two listings stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Cursor {
    /// Not started: list from the newest object.
    #[default]
    Start,
    /// Resume after this object id (`starting_after`).
    After(String),
    /// Listed to the end.
    Done,
}

/// A backfill in progress: its snapshot time and both listings' cursors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backfill {
    /// When the pass started: the snapshot time of everything it writes,
    /// kept across a resume so both halves of the pass agree.
    pub started_at: i64,
    /// The pass's number (see [`next_serial`]): the customers it has seen
    /// are marked with it, across a resume.
    pub pass: i64,
    pub customers: Cursor,
    pub subscriptions: Cursor,
}

impl Backfill {
    pub(crate) fn new(started_at: i64, pass: i64) -> Backfill {
        Backfill {
            started_at,
            pass,
            customers: Cursor::Start,
            subscriptions: Cursor::Start,
        }
    }
}

const STARTED: &str = "backfill.started_at";
/// Absent in a pass begun before passes were numbered: that one is pass 0.
const PASS: &str = "backfill.pass";
/// The last number handed out to a backfill pass or run.
const SERIAL: &str = "backfill.serial";
const CUSTOMERS: (&str, &str) = ("backfill.customers_cursor", "backfill.customers_done");
const SUBSCRIPTIONS: (&str, &str) = (
    "backfill.subscriptions_cursor",
    "backfill.subscriptions_done",
);

fn get(db: &mut (impl Db + ?Sized), key: &str) -> anyhow::Result<Option<String>> {
    Ok(sql::one(
        db,
        "SELECT value FROM sync_state WHERE key = ?1",
        &args![key],
        |r| r.string(0),
    )?
    .flatten())
}

fn put(db: &mut (impl Db + ?Sized), key: &str, value: Option<&str>) -> anyhow::Result<()> {
    match value {
        Some(v) => db.exec(
            "INSERT INTO sync_state(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            &args![key, v],
        )?,
        None => db.exec("DELETE FROM sync_state WHERE key = ?1", &args![key])?,
    };
    Ok(())
}

fn cursor(
    db: &mut (impl Db + ?Sized),
    (cursor_key, done_key): (&str, &str),
) -> anyhow::Result<Cursor> {
    if get(db, done_key)?.is_some() {
        return Ok(Cursor::Done);
    }
    Ok(match get(db, cursor_key)? {
        Some(after) => Cursor::After(after),
        None => Cursor::Start,
    })
}

fn put_cursor(
    db: &mut (impl Db + ?Sized),
    (cursor_key, done_key): (&str, &str),
    c: &Cursor,
) -> anyhow::Result<()> {
    match c {
        Cursor::Start => {
            put(db, cursor_key, None)?;
            put(db, done_key, None)
        }
        Cursor::After(id) => {
            put(db, cursor_key, Some(id))?;
            put(db, done_key, None)
        }
        Cursor::Done => put(db, done_key, Some("1")),
    }
}

/// The backfill in progress, if any.
pub(crate) fn load_backfill(db: &mut (impl Db + ?Sized)) -> anyhow::Result<Option<Backfill>> {
    let Some(started) = get(db, STARTED)? else {
        return Ok(None);
    };
    Ok(Some(Backfill {
        started_at: started.parse().unwrap_or(0),
        pass: get(db, PASS)?.and_then(|p| p.parse().ok()).unwrap_or(0),
        customers: cursor(db, CUSTOMERS)?,
        subscriptions: cursor(db, SUBSCRIPTIONS)?,
    }))
}

/// Record the backfill's progress (inside the caller's transaction).
pub(crate) fn save_backfill(db: &mut (impl Db + ?Sized), b: &Backfill) -> anyhow::Result<()> {
    put(db, STARTED, Some(&b.started_at.to_string()))?;
    put(db, PASS, Some(&b.pass.to_string()))?;
    put_cursor(db, CUSTOMERS, &b.customers)?;
    put_cursor(db, SUBSCRIPTIONS, &b.subscriptions)
}

/// Forget the backfill (it finished, or `--restart`).
pub(crate) fn clear_backfill(db: &mut (impl Db + ?Sized)) -> anyhow::Result<()> {
    for key in [
        STARTED,
        PASS,
        CUSTOMERS.0,
        CUSTOMERS.1,
        SUBSCRIPTIONS.0,
        SUBSCRIPTIONS.1,
    ] {
        put(db, key, None)?;
    }
    Ok(())
}

/// A new number for a backfill pass or run, never handed out before in
/// this store (inside the caller's transaction).
pub(crate) fn next_serial(db: &mut (impl Db + ?Sized)) -> anyhow::Result<i64> {
    let last: i64 = get(db, SERIAL)?.and_then(|s| s.parse().ok()).unwrap_or(0);
    put(db, SERIAL, Some(&(last + 1).to_string()))?;
    Ok(last + 1)
}

/// Where the event log catch-up (`resync --events`) resumes: the newest
/// processed event's `created` (and id, when there is one; a backfill sets
/// only the time it started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Events {
    pub created: i64,
    pub id: Option<String>,
}

const EVENTS_CREATED: &str = "events.created";
const EVENTS_ID: &str = "events.id";

pub(crate) fn load_events(db: &mut (impl Db + ?Sized)) -> anyhow::Result<Option<Events>> {
    let Some(created) = get(db, EVENTS_CREATED)?.and_then(|c| c.parse().ok()) else {
        return Ok(None);
    };
    Ok(Some(Events {
        created,
        id: get(db, EVENTS_ID)?,
    }))
}

pub(crate) fn save_events(db: &mut (impl Db + ?Sized), e: &Events) -> anyhow::Result<()> {
    put(db, EVENTS_CREATED, Some(&e.created.to_string()))?;
    put(db, EVENTS_ID, e.id.as_deref())
}

/// When the store last took in the whole account: a backfill that ended
/// or a catch-up from the event log that left no customer behind (unix
/// seconds). `audit` warns when it is old.
const CAUGHT_UP: &str = "caught_up_at";

pub(crate) fn load_caught_up(db: &mut (impl Db + ?Sized)) -> anyhow::Result<Option<i64>> {
    Ok(get(db, CAUGHT_UP)?.and_then(|v| v.parse().ok()))
}

pub(crate) fn save_caught_up(db: &mut (impl Db + ?Sized), at: i64) -> anyhow::Result<()> {
    put(db, CAUGHT_UP, Some(&at.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_cursor_state() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::schema::migrate(&mut conn).unwrap();
        let conn = &mut crate::store::sql::Sqlite::new(&conn);
        assert_eq!(load_backfill(conn).unwrap(), None);
        let b = Backfill {
            started_at: 42,
            pass: 7,
            customers: Cursor::After("cus_9".into()),
            subscriptions: Cursor::Done,
        };
        save_backfill(conn, &b).unwrap();
        assert_eq!(load_backfill(conn).unwrap(), Some(b));
        let b2 = Backfill::new(43, 8);
        save_backfill(conn, &b2).unwrap();
        assert_eq!(load_backfill(conn).unwrap(), Some(b2));
        clear_backfill(conn).unwrap();
        assert_eq!(load_backfill(conn).unwrap(), None);
        assert_eq!(next_serial(conn).unwrap(), 1);
        assert_eq!(next_serial(conn).unwrap(), 2);

        assert_eq!(load_events(conn).unwrap(), None);
        let e = Events {
            created: 7,
            id: Some("evt_1".into()),
        };
        save_events(conn, &e).unwrap();
        assert_eq!(load_events(conn).unwrap(), Some(e));
        let e = Events {
            created: 9,
            id: None,
        };
        save_events(conn, &e).unwrap();
        assert_eq!(load_events(conn).unwrap(), Some(e));
    }
}
