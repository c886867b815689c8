use super::*;
use crate::objects::Card;

// The throwaway PostgreSQL server of the integration tests (read its header).
use crate::test_pg as pg;

fn sub(id: &str, status: &str, created: i64) -> SubscriptionRecord {
    SubscriptionRecord {
        id: id.into(),
        customer_id: "cus_1".into(),
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

fn write(
    subs: Vec<(SubscriptionRecord, i64)>,
    user: Option<&str>,
    at: Option<i64>,
) -> CustomerWrite {
    CustomerWrite {
        customer_id: "cus_1".into(),
        info: CustomerInfo {
            user_id: user.map(str::to_owned),
            email: None,
            deleted: false,
            snapshot_at: at,
        },
        user_key: "clerkUserId".into(),
        subscriptions: subs,
        evidence: Vec::new(),
        customer_evidence: None,
        current: Current::Newest(Vec::new()),
        source: RecordSource::Events,
    }
}

/// `w` for another customer (its subscriptions too).
fn of(customer: &str, mut w: CustomerWrite) -> CustomerWrite {
    w.customer_id = customer.into();
    for (s, _) in &mut w.subscriptions {
        s.customer_id = customer.into();
    }
    w
}

/// One customer through the one write path.
fn put(s: &mut Store, w: &CustomerWrite) -> anyhow::Result<WriteOutcome> {
    let mut out = s.apply(std::slice::from_ref(w))?;
    Ok(out.pop().expect("one outcome"))
}

// ---------------------------------------------------------------------------
// Both backends: one test body, run on each
// ---------------------------------------------------------------------------

/// A fresh, empty store of one backend, for one test.
struct Backend {
    /// "sqlite" or "postgres": say it in every assertion's message.
    name: &'static str,
    store: Store,
    /// Where the store is, for another open of it.
    at: Location,
    /// PostgreSQL: the test server and the store's database.
    pg: Option<(&'static pg::PgServer, String)>,
    /// SQLite: the directory of the store's file, removed with it.
    _dir: Option<tempfile::TempDir>,
}

/// A fresh store of each backend: an SQLite file in a temp dir, and a new
/// database of the test PostgreSQL server (left out, with a `SKIPPED:`
/// line, when PostgreSQL is not installed and `STRIPE_SYNC_REQUIRE_PG` is
/// not 1).
fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let at = Location::Sqlite(dir.path().join("s.db"));
    let mut all = vec![Backend {
        name: "sqlite",
        store: Store::open(&at).unwrap(),
        at,
        pg: None,
        _dir: Some(dir),
    }];
    if let Some((server, db, at)) = pg_database() {
        all.push(Backend {
            name: "postgres",
            store: Store::open(&at).unwrap(),
            at,
            pg: Some((server, db)),
            _dir: None,
        });
    }
    all
}

/// A new database of the test PostgreSQL server (no store in it yet).
fn pg_database() -> Option<(&'static pg::PgServer, String, Location)> {
    let server = pg::server()?;
    let db = server.create_database();
    let at = Location::Postgres(server.url(&db));
    Some((server, db, at))
}

impl Backend {
    /// Run `sql` on the store's tables behind the store's back (to set up
    /// what the interface cannot); PostgreSQL's in schema `stripe_sync`.
    fn execute(&self, sql: &str) {
        match &self.pg {
            Some((server, db)) => {
                server.execute(db, &format!("SET search_path TO stripe_sync; {sql}"))
            }
            None => self.store.sqlite().conn.execute_batch(sql).unwrap(),
        }
    }

    /// The first column of the first row of `sql`, as text ("" for NULL),
    /// read behind the store's back (what the interface does not show).
    fn one(&self, sql: &str) -> String {
        match &self.pg {
            Some((server, db)) => {
                server.query_one(db, &format!("SET search_path TO stripe_sync; {sql}"))
            }
            None => {
                use rusqlite::types::ValueRef;
                self.store
                    .sqlite()
                    .conn
                    .query_row(sql, [], |r| {
                        Ok(match r.get_ref(0)? {
                            ValueRef::Null => String::new(),
                            ValueRef::Integer(i) => i.to_string(),
                            ValueRef::Real(f) => f.to_string(),
                            ValueRef::Text(t) | ValueRef::Blob(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                        })
                    })
                    .unwrap()
            }
        }
    }

    /// No message may show the database's password.
    fn assert_no_password(&self, e: &str) {
        if let Some((server, _)) = &self.pg {
            assert!(
                !e.contains(server.password()),
                "{}: the password shown: {e}",
                self.name
            );
        }
    }
}

/// All the store's mapping, in its order.
fn everything(s: &Store) -> Vec<MappingRow> {
    s.mapping(&Filter::default()).unwrap()
}

/// SQLite only: the file's schema version and mode.
#[test]
fn migrates_from_empty_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = Store::open(&path).unwrap();
    drop(s);
    let s = Store::open(&path).unwrap();
    let v: i64 = s
        .sqlite()
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, schema::VERSION);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn older_snapshot_never_overwrites_newer() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        put(
            s,
            &write(vec![(sub("sub_1", "past_due", 10), 200)], Some("u"), None),
        )
        .unwrap();
        let out = put(
            s,
            &write(vec![(sub("sub_1", "active", 10), 100)], Some("u"), None),
        )
        .unwrap();
        assert!(!out.changed, "{on}");
        assert_eq!(
            s.mapping_of("cus_1").unwrap().unwrap().status,
            "past_due",
            "{on}"
        );
        // Equal time: the later write wins (later input breaks ties).
        put(
            s,
            &write(vec![(sub("sub_1", "canceled", 10), 200)], Some("u"), None),
        )
        .unwrap();
        assert_eq!(
            s.mapping_of("cus_1").unwrap().unwrap().status,
            "canceled",
            "{on}"
        );
    }
}

#[test]
fn mapping_takes_newest_subscription_by_created() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        put(
            s,
            &write(
                vec![
                    (sub("sub_old", "canceled", 5), 900),
                    (sub("sub_new", "active", 9), 100),
                ],
                Some("u"),
                None,
            ),
        )
        .unwrap();
        let row = s.mapping_of("cus_1").unwrap().unwrap();
        assert_eq!(row.subscription_id.as_deref(), Some("sub_new"), "{on}");
        assert_eq!(row.status, "active", "{on}");
        assert_eq!(
            row.payment_method.unwrap().last4.as_deref(),
            Some("4242"),
            "{on}"
        );
    }
}

#[test]
fn customer_without_subscription_is_none() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        put(s, &write(vec![], None, Some(1))).unwrap();
        let row = s.mapping_of("cus_1").unwrap().unwrap();
        assert_eq!(row.status, "none", "{on}");
        assert_eq!(row.user_id, None, "{on}");
        let f = Filter {
            unmapped: true,
            ..Filter::default()
        };
        assert_eq!(s.mapping(&f).unwrap().len(), 1, "{on}");
        let f = Filter {
            statuses: vec!["active".into()],
            ..Filter::default()
        };
        assert!(s.mapping(&f).unwrap().is_empty(), "{on}");
    }
}

#[test]
fn customer_object_beats_inferred_user_and_older_objects() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        put(s, &write(vec![], Some("from_event"), None)).unwrap();
        assert_eq!(
            s.customer_user("cus_1").unwrap(),
            Known::User("from_event".into()),
            "{on}"
        );
        put(s, &write(vec![], Some("from_customer"), Some(50))).unwrap();
        assert_eq!(
            s.customer_user("cus_1").unwrap(),
            Known::User("from_customer".into()),
            "{on}"
        );
        put(s, &write(vec![], None, Some(40))).unwrap();
        assert_eq!(
            s.customer_user("cus_1").unwrap(),
            Known::User("from_customer".into()),
            "{on}"
        );
        put(s, &write(vec![], Some("guess"), None)).unwrap();
        assert_eq!(
            s.customer_user("cus_1").unwrap(),
            Known::User("from_customer".into()),
            "{on}"
        );
    }
}

/// SQLite only: the file's bytes (PostgreSQL's copy:
/// `postgres_a_copy_takes_writes_and_the_database_does_not`).
#[test]
fn a_copy_takes_writes_and_the_file_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = Store::open(&path).unwrap();
    put(
        &mut s,
        &write(vec![(sub("sub_1", "active", 1), 1)], Some("u"), None),
    )
    .unwrap();
    s.close();
    let bytes = std::fs::read(&path).unwrap();
    let mut copy = Store::open_copy(&path).unwrap();
    let out = put(
        &mut copy,
        &write(vec![(sub("sub_1", "past_due", 1), 2)], Some("u"), None),
    )
    .unwrap();
    assert!(out.changed);
    assert_eq!(out.after.unwrap().status, "past_due");
    drop(copy);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let s = Store::open_read_only(&path).unwrap().unwrap();
    assert_eq!(s.mapping_of("cus_1").unwrap().unwrap().status, "active");
}

#[test]
fn an_identical_write_touches_nothing() {
    for mut b in backends() {
        let w = write(vec![(sub("sub_1", "active", 1), 5)], Some("u"), Some(5));
        put(&mut b.store, &w).unwrap();
        // Rows written so far: SQLite counts them; each PostgreSQL row
        // version has the transaction that wrote it (xmin).
        let written = |b: &Backend| match b.pg {
            None => b.one("SELECT total_changes()"),
            Some(_) => b.one(
                "SELECT concat_ws(' / ',
                   (SELECT string_agg(id || ':' || xmin, ',' ORDER BY id) FROM customers),
                   (SELECT string_agg(id || ':' || xmin, ',' ORDER BY id) FROM subscriptions),
                   (SELECT string_agg(key || ':' || xmin, ',' ORDER BY key) FROM sync_state),
                   (SELECT string_agg(id || ':' || xmin, ',' ORDER BY id) FROM events))",
            ),
        };
        let before = written(&b);
        let out = put(&mut b.store, &w).unwrap();
        let after = written(&b);
        assert!(!out.changed, "{}", b.name);
        assert_eq!(before, after, "{}: a rerun must write no row", b.name);
    }
}

#[test]
fn the_api_listing_decides_ties_not_the_id() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        // Same second; the API listed sub_a first (it was created after sub_b).
        let mut w = write(
            vec![
                (sub("sub_b", "canceled", 7), 10),
                (sub("sub_a", "active", 7), 10),
            ],
            Some("u"),
            Some(10),
        );
        w.current = Current::Listed(Some("sub_a".into()), 10);
        put(s, &w).unwrap();
        assert_eq!(
            s.mapping_of("cus_1").unwrap().unwrap().status,
            "active",
            "{on}"
        );
        // An offline pass over the same tie keeps what the API said.
        let mut offline = write(vec![], None, None);
        offline.current = Current::Newest(Vec::new());
        put(s, &offline).unwrap();
        assert_eq!(
            s.mapping_of("cus_1")
                .unwrap()
                .unwrap()
                .subscription_id
                .as_deref(),
            Some("sub_a"),
            "{on}"
        );
        // The backfill: the first listed in the pass wins, later ones do not.
        let pass = s.begin_backfill(20).unwrap().pass;
        let marks = PassMarks {
            pass,
            run: s.begin_run().unwrap(),
        };
        let mut first = write(vec![], None, None);
        first.current = Current::FirstInPass("sub_b".into(), 20);
        let mut later = first.clone();
        later.current = Current::FirstInPass("sub_a".into(), 20);
        s.pass_writes(marks, |out| -> anyhow::Result<()> {
            for w in [&first, &later] {
                out.write(&PassPage {
                    writes: std::slice::from_ref(w),
                    listed: false,
                    checkpoint: None,
                })?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            s.mapping_of("cus_1")
                .unwrap()
                .unwrap()
                .subscription_id
                .as_deref(),
            Some("sub_b"),
            "{on}"
        );
    }
}

#[test]
fn a_deleted_customer_has_no_live_subscription() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        put(
            s,
            &write(vec![(sub("sub_1", "active", 1), 1)], Some("u"), Some(1)),
        )
        .unwrap();
        let mut gone = write(vec![], None, Some(2));
        gone.info.deleted = true;
        let out = put(s, &gone).unwrap();
        assert!(out.changed, "{on}");
        let row = s.mapping_of("cus_1").unwrap().unwrap();
        assert_eq!(row.status, "deleted", "{on}");
        assert!(row.deleted, "{on}");
        assert_eq!(row.subscription_id, None, "{on}");
        assert_eq!(
            row.user_id.as_deref(),
            Some("u"),
            "{on}: whose customer it was is kept"
        );
        let active = Filter {
            statuses: vec!["active".into()],
            ..Filter::default()
        };
        assert!(s.mapping(&active).unwrap().is_empty(), "{on}");
    }
}

#[test]
fn events_are_logged_idempotently() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        let ev = LoggedEvent {
            id: "evt_1",
            kind: "invoice.paid",
            created: 1,
            route: "sync",
            user_id: Some("u"),
            customer_id: Some("cus_1"),
        };
        s.log_events(std::slice::from_ref(&ev)).unwrap();
        s.log_events(std::slice::from_ref(&ev)).unwrap();
        assert!(s.event_seen("evt_1").unwrap(), "{on}");
        assert!(!s.event_seen("evt_2").unwrap(), "{on}");
        assert_eq!(s.count_events().unwrap(), 1, "{on}");
    }
}

#[test]
fn a_failed_write_leaves_no_half_customer() {
    for mut b in backends() {
        let on = b.name;
        // The insert of sub_bad fails mid-transaction (a trigger of the test's).
        b.execute(match b.pg {
            None => {
                "CREATE TRIGGER boom BEFORE INSERT ON subscriptions WHEN NEW.id = 'sub_bad'
                 BEGIN SELECT RAISE(ABORT, 'boom'); END;"
            }
            Some(_) => {
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql
                   AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$;
                 CREATE TRIGGER boom BEFORE INSERT ON subscriptions
                   FOR EACH ROW WHEN (NEW.id = 'sub_bad') EXECUTE FUNCTION boom();"
            }
        });
        let w = write(
            vec![
                (sub("sub_ok", "active", 1), 1),
                (sub("sub_bad", "active", 2), 1),
            ],
            Some("u"),
            None,
        );
        let e = put(&mut b.store, &w).unwrap_err();
        b.assert_no_password(&format!("{e:#}"));
        let s = &mut b.store;
        assert!(s.mapping_of("cus_1").unwrap().is_none(), "{on}");
        let mut subs = 0;
        s.for_each_billing_customer(|_| true, |_| subs += 1)
            .unwrap();
        assert_eq!(subs, 0, "{on}");
        // The store goes on: the next write lands whole.
        put(
            s,
            &of(
                "cus_2",
                write(vec![(sub("sub_ok", "active", 1), 1)], Some("u"), None),
            ),
        )
        .unwrap();
        assert_eq!(
            s.mapping_of("cus_2").unwrap().unwrap().status,
            "active",
            "{on}"
        );
    }
}

/// SQLite only: its files (PostgreSQL's newer schema:
/// `postgres_a_newer_schema_is_refused_without_the_password`).
#[test]
fn refuses_newer_schema_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    {
        let c = Connection::open(&newer).unwrap();
        c.execute_batch(&format!(
            "PRAGMA application_id = {}; PRAGMA user_version = 99;",
            schema::APPLICATION_ID
        ))
        .unwrap();
    }
    let e = Store::open(&newer).unwrap_err().to_string();
    assert!(e.contains("newer stripe-sync (schema 99"), "{e}");
    let e = Store::open_read_only(&newer).unwrap_err().to_string();
    assert!(e.contains("newer"), "{e}");

    let foreign = dir.path().join("other.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t(x);")
        .unwrap();
    let e = Store::open(&foreign).unwrap_err().to_string();
    assert!(e.contains("another application"), "{e}");

    let text = dir.path().join("notes.db");
    std::fs::write(
        &text,
        "this is not sqlite, just text that is long enough to have a header",
    )
    .unwrap();
    let e = Store::open(&text).unwrap_err().to_string();
    assert!(e.contains("not an SQLite database"), "{e}");
    assert!(e.contains("notes.db"), "{e}");
}

/// SQLite only: `PRAGMA max_page_count` stands for the full disk.
#[test]
fn full_disk_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let mut s = Store::open(&path).unwrap();
    put(
        &mut s,
        &write(vec![(sub("sub_1", "active", 1), 1)], Some("u"), None),
    )
    .unwrap();
    // Simulate a full disk: the file may not grow past its current size.
    let pages: i64 = s
        .sqlite()
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    s.sqlite()
        .conn
        .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
        .unwrap();
    let many: Vec<CustomerWrite> = (0..2000)
        .map(|i| {
            let mut w = write(vec![], Some("u"), Some(1));
            w.customer_id = format!("cus_{i:05}_{}", "x".repeat(200));
            w
        })
        .collect();
    let e = s.apply(&many).unwrap_err().to_string();
    assert!(e.contains("disk is full") || e.contains("full"), "{e}");
    assert!(
        e.contains("full.db") || e.contains("database or disk is full"),
        "{e}"
    );
    // Nothing of the failed batch landed; the earlier customer is intact.
    let n: i64 = s
        .sqlite()
        .conn
        .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(s.mapping_of("cus_1").unwrap().unwrap().status, "active");
}

#[test]
fn read_only_connection_names_the_problem() {
    for b in backends() {
        let mut ro = Store::open_read_only(&b.at).unwrap().unwrap();
        let e = put(&mut ro, &write(vec![], Some("u"), Some(1))).unwrap_err();
        b.assert_no_password(&format!("{e:#}"));
        let (shown, e) = (b.at.to_string(), e.to_string());
        assert!(
            e.contains(&shown) && e.contains("read-only"),
            "{}: {e}",
            b.name
        );
        assert!(!ro.customer_known("cus_1").unwrap(), "{}", b.name);
    }
}

/// SQLite only: a migration of SQLite's schema 3.
#[test]
fn a_pass_begun_before_v4_resumes_with_what_it_had_seen() {
    let (_dir, path) = older_store(
        3,
        "INSERT INTO customers (id, user_key, source, synced_at, subscription_id)
               VALUES ('cus_seen', 'k', 'api', 'x', 'sub_1'),
                      ('cus_unseen', 'k', 'api', 'x', 'sub_2');
             INSERT INTO backfill_seen VALUES ('cus_seen');
             INSERT INTO backfill_subs_seen VALUES ('cus_seen');
             INSERT INTO sync_state VALUES ('backfill.started_at', '100'),
                                           ('backfill.customers_done', '1');",
    );
    let s = Store::open(&path).unwrap();
    // The interrupted pass is pass 0, and knows what it saw.
    let b = s.backfill().unwrap().unwrap();
    assert_eq!((b.started_at, b.pass), (100, 0));
    assert_eq!(b.customers, checkpoint::Cursor::Done);
    let (found, _) = s.backfill_unlisted(0, 0, 10).unwrap();
    assert_eq!(
        found,
        [
            ("cus_unseen".to_owned(), Unlisted::Customer),
            ("cus_unseen".to_owned(), Unlisted::Subscriptions)
        ]
    );
    let tables: i64 = s
        .sqlite()
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'backfill%seen'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
}

#[test]
fn a_pass_marks_what_it_saw_and_a_run_what_it_wrote() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        // Before the pass: one customer with a subscription, one without.
        let mut known = write(vec![(sub("sub_old", "active", 5), 5)], Some("u1"), Some(5));
        known.current = Current::Listed(Some("sub_old".into()), 5);
        put(s, &known).unwrap();
        let bf = s.begin_backfill(50).unwrap();
        let marks = PassMarks {
            pass: bf.pass,
            run: s.begin_run().unwrap(),
        };
        // The pass lists cus_1 with a newer subscription, and cus_2, new.
        let mut listed = write(vec![], Some("u1"), Some(50));
        listed.current = Current::Keep;
        let mut new = listed.clone();
        new.customer_id = "cus_2".into();
        let mut subs = write(vec![(sub("sub_new", "past_due", 9), 50)], None, None);
        subs.info.snapshot_at = None;
        subs.current = Current::FirstInPass("sub_new".into(), 50);
        s.pass_writes(marks, |out| -> anyhow::Result<()> {
            out.write(&PassPage {
                writes: &[listed, new],
                listed: true,
                checkpoint: None,
            })?;
            out.write(&PassPage {
                writes: &[subs],
                listed: false,
                checkpoint: Some(&bf),
            })
        })
        .unwrap();
        assert_eq!(s.run_len(marks.run).unwrap(), 2, "{on}");
        let page = s.run_page(marks.run, None, 10).unwrap();
        let ids: Vec<&str> = page.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(ids, ["cus_1", "cus_2"], "{on}");
        let (cus_1, cus_2) = (&page[0].1, &page[1].1);
        assert_eq!(cus_1.before.as_ref().unwrap().status, "active", "{on}");
        assert_eq!(cus_1.after.as_ref().unwrap().status, "past_due", "{on}");
        assert!(cus_1.changed, "{on}");
        assert!(cus_2.before.is_none() && cus_2.changed, "{on}");
        // Both were listed and cus_1's subscription seen: nothing to settle.
        let (found, _) = s.backfill_unlisted(marks.pass, 0, 10).unwrap();
        assert_eq!(found, [], "{on}");
        // A later run of the same pass reports only what it writes.
        let again = PassMarks {
            pass: marks.pass,
            run: s.begin_run().unwrap(),
        };
        assert_eq!(s.run_len(again.run).unwrap(), 0, "{on}");
    }
}

/// SQLite only: the readers' indexes it drops for a large pass.
#[test]
fn a_large_pass_drops_the_readers_indexes_and_makes_them_again() {
    let mut s = Store::in_memory().unwrap();
    let indexes = |s: &Store| -> Vec<String> {
        let mut st = s
            .sqlite().conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let all = indexes(&s);
    assert_eq!(all, ["customers_mapping", "subscriptions_customer"]);
    let marks = PassMarks {
        pass: s.begin_backfill(1).unwrap().pass,
        run: s.begin_run().unwrap(),
    };
    s.pass_writes(marks, |out| out.defer_indexes()).unwrap();
    assert!(indexes(&s).is_empty());
    s.restore_indexes().unwrap();
    assert_eq!(indexes(&s), all);

    // An interrupted pass never restores them: the next open for writing does.
    let marks = PassMarks {
        pass: s.begin_backfill(1).unwrap().pass,
        run: s.begin_run().unwrap(),
    };
    s.pass_writes(marks, |out| out.defer_indexes()).unwrap();
    assert!(indexes(&s).is_empty());
    schema::migrate(&mut s.sqlite_mut().conn).unwrap();
    assert_eq!(indexes(&s), all);
}

/// SQLite only: a migration of SQLite's schema 4.
#[test]
fn the_v5_event_log_keeps_every_logged_event_and_still_refuses_a_second_mark() {
    let (_dir, path) = older_store(
        4,
        "INSERT INTO events VALUES ('evt_b', 'invoice.paid', 2, 'sync', 'u1', 'cus_1', 'x'),
                                   ('evt_a', 'customer.created', 1, 'ignored', NULL, NULL, 'y');",
    );
    let mut s = Store::open(&path).unwrap();
    let version: i64 = s
        .sqlite()
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::VERSION);
    let rows: Vec<(String, String, Option<String>)> = {
        let mut st = s
            .sqlite()
            .conn
            .prepare("SELECT id, route, user_id FROM events ORDER BY id")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        rows,
        [
            ("evt_a".to_owned(), "ignored".to_owned(), None),
            ("evt_b".to_owned(), "sync".to_owned(), Some("u1".to_owned()))
        ]
    );
    assert!(s.event_seen("evt_a").unwrap() && !s.event_seen("evt_c").unwrap());
    // A second mark of a logged id changes nothing; a new id is appended.
    s.logging(|log| {
        for (id, route) in [("evt_b", "ignored"), ("evt_c", "sync")] {
            log.log(&LoggedEvent {
                id,
                kind: "invoice.paid",
                created: 3,
                route,
                user_id: None,
                customer_id: None,
            })?;
        }
        Ok(())
    })
    .unwrap();
    let routes: Vec<String> = {
        let mut st = s
            .sqlite()
            .conn
            .prepare("SELECT route FROM events ORDER BY id")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(routes, ["ignored", "sync", "sync"]);
}

/// A store file left at schema `version` by that version, with `sql` run in
/// it (the migration tests' starting point).
fn older_store(version: i64, sql: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("v{version}.db"));
    let conn = rusqlite::Connection::open(&path).unwrap();
    schema::create_at(&conn, version).unwrap();
    conn.execute_batch(sql).unwrap();
    (dir, path)
}

// ---------------------------------------------------------------------------
// The store under `serve` (issue 18): refused files left as found, every
// commit synced, the files checked to be the ones opened (SQLite only: its
// files and `PRAGMA synchronous`)
// ---------------------------------------------------------------------------

/// Bytes and modification time of a file.
fn fingerprint(path: &std::path::Path) -> (Vec<u8>, std::time::SystemTime) {
    (
        std::fs::read(path).unwrap(),
        std::fs::metadata(path).unwrap().modified().unwrap(),
    )
}

#[test]
fn a_foreign_file_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("app.db");
    {
        let c = Connection::open(&foreign).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1);",
        )
        .unwrap();
    }
    let before = fingerprint(&foreign);
    let e = Store::open(&foreign).unwrap_err().to_string();
    assert!(
        e.contains("another application") && e.contains("app.db"),
        "{e}"
    );
    assert!(before == fingerprint(&foreign), "the refused file changed");
    let mode: String = Connection::open(&foreign)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    for side in ["-wal", "-shm", "-journal"] {
        let p = dir.path().join(format!("app.db{side}"));
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

#[test]
fn serve_connection_syncs_every_commit_others_at_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("s.db")).unwrap();
    let sync = |s: &Store| -> i64 {
        s.sqlite()
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(sync(&s), 1, "NORMAL for replay and resync");
    s.sync_every_commit().unwrap();
    assert_eq!(
        sync(&s),
        2,
        "FULL: in WAL mode, the WAL is synced at each commit"
    );
}

#[test]
fn a_store_whose_file_changed_refuses_every_later_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = Store::open(&path).unwrap();
    s.check_identity().unwrap();
    let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let t = std::sync::Arc::clone(&told);
    s.on_identity_lost(move |why| t.lock().unwrap().push(why.to_owned()));
    // Another store put in its place.
    let moved = dir.path().join("moved.db");
    std::fs::rename(&path, &moved).unwrap();
    drop(Store::open(&dir.path().join("other.db")).unwrap());
    std::fs::rename(dir.path().join("other.db"), &path).unwrap();
    let e = s.check_identity().unwrap_err().to_string();
    assert!(e.contains("s.db") && e.contains("replaced"), "{e}");
    // Final: the same answer later, told once.
    assert_eq!(s.check_identity().unwrap_err().to_string(), e);
    assert_eq!(*told.lock().unwrap(), [e]);

    // The WAL deleted: what it held is folded into the store first.
    let path = dir.path().join("w.db");
    let mut s = Store::open(&path).unwrap();
    put(
        &mut s,
        &write(vec![(sub("sub_1", "active", 1), 1)], Some("u"), None),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("w.db-wal")).unwrap();
    let e = s.check_identity().unwrap_err().to_string();
    assert!(e.contains("w.db-wal") && e.contains("deleted"), "{e}");
    assert!(e.contains("copied into the store"), "{e}");
    s.close();
    let again = Store::open_read_only(&path).unwrap().unwrap();
    assert_eq!(again.mapping_of("cus_1").unwrap().unwrap().status, "active");

    // Stores that are not watched: nothing to check.
    Store::in_memory().unwrap().check_identity().unwrap();
}

// ---------------------------------------------------------------------------
// More of the store's meaning, on both backends: checkpoints, a pass's
// settling, the mapping's filters and reads, what `audit` reads
// ---------------------------------------------------------------------------

#[test]
fn checkpoints_are_kept_and_the_events_one_never_moves_back() {
    use checkpoint::{Backfill, Cursor, Events};
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        assert_eq!(s.backfill().unwrap(), None, "{on}");
        let first = s.begin_backfill(100).unwrap();
        assert_eq!(s.backfill().unwrap().as_ref(), Some(&first), "{on}");
        // A page's checkpoint lands with the page.
        let marks = PassMarks {
            pass: first.pass,
            run: s.begin_run().unwrap(),
        };
        let at = Backfill {
            customers: Cursor::After("cus_9".into()),
            subscriptions: Cursor::Done,
            ..first.clone()
        };
        s.pass_writes(marks, |out| {
            out.write(&PassPage {
                writes: &[write(vec![], Some("u"), Some(100))],
                listed: true,
                checkpoint: Some(&at),
            })
        })
        .unwrap();
        assert_eq!(s.backfill().unwrap().as_ref(), Some(&at), "{on}");
        // A new pass: a number never handed out, cursors from the start.
        let second = s.begin_backfill(200).unwrap();
        assert!(
            second.pass > marks.run && marks.run > first.pass,
            "{on}: {second:?}"
        );
        assert_eq!(second, Backfill::new(200, second.pass), "{on}");
        assert_eq!(s.backfill().unwrap(), Some(second), "{on}");
        s.end_backfill().unwrap();
        assert_eq!(s.backfill().unwrap(), None, "{on}");

        assert_eq!(s.events_checkpoint().unwrap(), None, "{on}");
        let seven = Events {
            created: 7,
            id: Some("evt_7".into()),
        };
        s.advance_events_checkpoint(&seven).unwrap();
        for back in [
            Events {
                created: 5,
                id: Some("evt_5".into()),
            },
            Events {
                created: 7,
                id: None,
            },
        ] {
            s.advance_events_checkpoint(&back).unwrap();
            assert_eq!(
                s.events_checkpoint().unwrap().as_ref(),
                Some(&seven),
                "{on}"
            );
        }
        let nine = Events {
            created: 9,
            id: None,
        };
        s.advance_events_checkpoint(&nine).unwrap();
        assert_eq!(s.events_checkpoint().unwrap(), Some(nine), "{on}");

        assert_eq!(s.caught_up_at().unwrap(), None, "{on}");
        s.mark_caught_up(42).unwrap();
        s.mark_caught_up(43).unwrap();
        assert_eq!(s.caught_up_at().unwrap(), Some(43), "{on}");
    }
}

#[test]
fn a_complete_pass_proves_what_it_did_not_see_in_store_order() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        // Written in this order (store order), not in id order.
        for w in [
            of(
                "cus_3",
                write(vec![(sub("sub_3", "active", 3), 1)], Some("u3"), Some(1)),
            ),
            of(
                "cus_1",
                write(vec![(sub("sub_1", "active", 1), 1)], Some("u1"), Some(1)),
            ),
            of("cus_2", write(vec![], Some("u2"), Some(1))),
            of("cus_4", write(vec![], Some("u4"), Some(1))),
        ] {
            put(s, &w).unwrap();
        }
        let mut gone = of("cus_4", write(vec![], None, Some(2)));
        gone.info.deleted = true;
        put(s, &gone).unwrap();
        let bf = s.begin_backfill(50).unwrap();
        let marks = PassMarks {
            pass: bf.pass,
            run: s.begin_run().unwrap(),
        };
        // The pass lists cus_1 and cus_3, and only cus_1's subscription.
        let listed: Vec<CustomerWrite> = [("cus_1", "u1"), ("cus_3", "u3")]
            .into_iter()
            .map(|(c, u)| {
                let mut w = of(c, write(vec![], Some(u), Some(50)));
                w.current = Current::Keep;
                w
            })
            .collect();
        let mut subs = write(vec![(sub("sub_1", "active", 1), 50)], None, None);
        subs.current = Current::FirstInPass("sub_1".into(), 50);
        s.pass_writes(marks, |out| -> anyhow::Result<()> {
            out.write(&PassPage {
                writes: &listed,
                listed: true,
                checkpoint: None,
            })?;
            out.write(&PassPage {
                writes: &[subs],
                listed: false,
                checkpoint: None,
            })
        })
        .unwrap();
        // cus_3 shows a subscription the pass did not list; cus_2 was not
        // listed; cus_4 is deleted already.
        let want = [
            ("cus_3".to_owned(), Unlisted::Subscriptions),
            ("cus_2".to_owned(), Unlisted::Customer),
        ];
        let (found, _) = s.backfill_unlisted(marks.pass, 0, 10).unwrap();
        assert_eq!(found, want, "{on}");
        // One customer at a time, each page after the last one's position.
        let (mut paged, mut after) = (Vec::new(), 0);
        loop {
            let (page, last) = s.backfill_unlisted(marks.pass, after, 1).unwrap();
            if page.is_empty() {
                break;
            }
            assert!(last > after, "{on}: {last} after {after}");
            paged.extend(page);
            after = last;
        }
        assert_eq!(paged, want, "{on}");
    }
}

#[test]
fn a_runs_report_pages_by_customer_id() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        put(s, &of("cus_b", write(vec![], Some("u"), Some(1)))).unwrap();
        let marks = PassMarks {
            pass: s.begin_backfill(10).unwrap().pass,
            run: s.begin_run().unwrap(),
        };
        let writes: Vec<CustomerWrite> = ["cus_c", "cus_a", "cus_b"]
            .into_iter()
            .map(|c| {
                let mut w = of(
                    c,
                    write(
                        vec![(sub(&format!("sub_{c}"), "active", 1), 10)],
                        Some("u"),
                        Some(10),
                    ),
                );
                w.current = Current::Listed(Some(format!("sub_{c}")), 10);
                w
            })
            .collect();
        // Each page its own commit: the journal keeps the first "before".
        for w in &writes {
            s.pass_writes(marks, |out| {
                out.write(&PassPage {
                    writes: std::slice::from_ref(w),
                    listed: true,
                    checkpoint: None,
                })
            })
            .unwrap();
        }
        assert_eq!(s.run_len(marks.run).unwrap(), 3, "{on}");
        let (mut ids, mut after) = (Vec::new(), None::<String>);
        loop {
            let page = s.run_page(marks.run, after.as_deref(), 2).unwrap();
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (id, out) in page {
                let before = out.before.map(|r| r.status);
                let after = out.after.map(|r| r.status);
                ids.push((id, before, after, out.changed));
            }
        }
        let row = |id: &str, before: Option<&str>| {
            (
                id.to_owned(),
                before.map(str::to_owned),
                Some("active".to_owned()),
                true,
            )
        };
        assert_eq!(
            ids,
            [
                row("cus_a", None),
                row("cus_b", Some("none")),
                row("cus_c", None)
            ],
            "{on}"
        );
    }
}

#[test]
fn the_mapping_filters_and_reads_agree() {
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        assert!(
            !s.has_customers().unwrap() && !s.has_events().unwrap(),
            "{on}"
        );
        for w in [
            of(
                "cus_4",
                write(vec![(sub("sub_4", "past_due", 1), 1)], Some("u2"), Some(1)),
            ),
            of(
                "cus_2",
                write(vec![(sub("sub_2", "canceled", 1), 1)], Some("u1"), Some(1)),
            ),
            of("cus_3", write(vec![], None, Some(1))),
            of(
                "cus_1",
                write(vec![(sub("sub_1", "active", 1), 1)], Some("u1"), Some(1)),
            ),
            of("cus_0", write(vec![], None, Some(1))),
        ] {
            put(s, &w).unwrap();
        }
        let mut mail = of("cus_1", write(vec![], Some("u1"), Some(2)));
        mail.info.email = Some("a@example.com".into());
        put(s, &mail).unwrap();
        assert!(s.has_customers().unwrap(), "{on}");
        let ids = |f: Filter| -> Vec<String> {
            s.mapping(&f)
                .unwrap()
                .into_iter()
                .map(|r| r.customer_id)
                .collect()
        };
        // Users' customers by (user, customer), then the unmapped by id.
        assert_eq!(
            ids(Filter::default()),
            ["cus_1", "cus_2", "cus_4", "cus_0", "cus_3"],
            "{on}"
        );
        let users = Filter {
            users: vec!["u1".into()],
            ..Filter::default()
        };
        assert_eq!(ids(users), ["cus_1", "cus_2"], "{on}");
        let customers = Filter {
            customers: vec!["cus_4".into(), "cus_3".into()],
            ..Filter::default()
        };
        assert_eq!(ids(customers), ["cus_4", "cus_3"], "{on}");
        let statuses = Filter {
            statuses: vec!["active".into(), "past_due".into()],
            ..Filter::default()
        };
        assert_eq!(ids(statuses), ["cus_1", "cus_4"], "{on}");
        let none = Filter {
            statuses: vec!["none".into()],
            ..Filter::default()
        };
        assert_eq!(ids(none), ["cus_0", "cus_3"], "{on}");
        let unmapped = Filter {
            unmapped: true,
            ..Filter::default()
        };
        assert_eq!(ids(unmapped), ["cus_0", "cus_3"], "{on}");
        let both = Filter {
            users: vec!["u1".into()],
            statuses: vec!["canceled".into()],
            ..Filter::default()
        };
        assert_eq!(ids(both), ["cus_2"], "{on}");
        // Streamed rows are the rows, and the count is theirs.
        let mut streamed = Vec::new();
        let n = s
            .for_each_mapping(&Filter::default(), |r| {
                streamed.push(r.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 5, "{on}");
        assert_eq!(streamed, everything(s), "{on}");
        // A reader that stops the walk stops it, with its own error.
        let mut seen = 0;
        let e = s
            .for_each_mapping(&Filter::default(), |_| {
                seen += 1;
                anyhow::bail!("closed pipe")
            })
            .unwrap_err();
        assert_eq!((seen, e.to_string()), (1, "closed pipe".to_owned()), "{on}");
        // And the store reads on after it.
        let row = s.mapping_of("cus_1").unwrap().unwrap();
        assert_eq!(
            (
                row.user_id.as_deref(),
                row.email.as_deref(),
                row.status.as_str(),
                row.source.as_str()
            ),
            (Some("u1"), Some("a@example.com"), "active", "events"),
            "{on}"
        );
        assert_eq!(s.mapping_of("cus_9").unwrap(), None, "{on}");
        assert_eq!(
            s.customers_of_user("u1").unwrap(),
            ["cus_1", "cus_2"],
            "{on}"
        );
        assert!(s.customers_of_user("u9").unwrap().is_empty(), "{on}");
        assert!(s.customer_known("cus_3").unwrap(), "{on}");
        assert!(!s.customer_known("cus_9").unwrap(), "{on}");
        assert_eq!(s.customer_user("cus_3").unwrap(), Known::Unmapped, "{on}");
        assert_eq!(s.customer_user("cus_9").unwrap(), Known::Unknown, "{on}");
    }
}

#[test]
fn the_audits_reads_agree() {
    let bills = |status: &str| matches!(status, "active" | "past_due" | "trialing");
    for mut b in backends() {
        let (s, on) = (&mut b.store, b.name);
        let mut two = of(
            "cus_1",
            write(
                vec![
                    (sub("sub_old", "active", 5), 1),
                    (sub("sub_new", "trialing", 9), 1),
                    (sub("sub_gone", "canceled", 7), 1),
                ],
                Some("u1"),
                Some(1),
            ),
        );
        two.subscriptions[1].0.card = None;
        two.subscriptions[1].0.cancel_at_period_end = true;
        put(s, &two).unwrap();
        put(
            s,
            &of(
                "cus_2",
                write(vec![(sub("sub_2", "past_due", 3), 1)], Some("u1"), Some(1)),
            ),
        )
        .unwrap();
        put(
            s,
            &of(
                "cus_3",
                write(vec![(sub("sub_3", "active", 4), 1)], Some("u2"), Some(1)),
            ),
        )
        .unwrap();
        let mut gone = of("cus_3", write(vec![], None, Some(2)));
        gone.info.deleted = true;
        put(s, &gone).unwrap();

        let mut billing = Vec::new();
        s.for_each_billing_customer(bills, |c| billing.push(c.to_owned()))
            .unwrap();
        billing.sort();
        assert_eq!(billing, ["cus_1", "cus_1", "cus_2", "cus_3"], "{on}");
        // Not deleted customers' only, newest first.
        assert_eq!(
            s.billing_subscriptions_of("u1", bills).unwrap(),
            ["sub_new", "sub_old", "sub_2"],
            "{on}"
        );
        assert!(
            s.billing_subscriptions_of("u2", bills).unwrap().is_empty(),
            "{on}"
        );
        // The mapping's subscription, whole.
        let (last, deleted) = s.last_subscription("cus_1").unwrap().unwrap();
        let mut want = sub("sub_new", "trialing", 9);
        want.card = None;
        want.cancel_at_period_end = true;
        assert_eq!((last, deleted), (want, false), "{on}");
        // A deleted customer's newest, and that it is deleted.
        let (last, deleted) = s.last_subscription("cus_3").unwrap().unwrap();
        let mut want = sub("sub_3", "active", 4);
        want.customer_id = "cus_3".into();
        assert_eq!((last, deleted), (want, true), "{on}");
        assert!(s.last_subscription("cus_9").unwrap().is_none(), "{on}");
    }
}

#[test]
fn a_second_mark_of_a_logged_event_changes_nothing() {
    let event = |id, route| LoggedEvent {
        id,
        kind: "invoice.paid",
        created: 1,
        route,
        user_id: None,
        customer_id: None,
    };
    for mut b in backends() {
        let on = b.name;
        b.store
            .log_events(&[event("evt_b", "sync"), event("evt_b", "ignored")])
            .unwrap();
        b.store
            .log_events(&[
                event("evt_c", "sync"),
                event("evt_b", "ignored"),
                event("evt_a", "ignored"),
            ])
            .unwrap();
        assert_eq!(b.store.count_events().unwrap(), 3, "{on}");
        assert!(b.store.has_events().unwrap(), "{on}");
        let routes: Vec<String> = ["evt_a", "evt_b", "evt_c"]
            .into_iter()
            .map(|id| b.one(&format!("SELECT route FROM events WHERE id = '{id}'")))
            .collect();
        assert_eq!(routes, ["ignored", "sync", "sync"], "{on}");
    }
}

#[test]
fn a_write_that_waits_too_long_for_the_lock_says_so_for_a_retry() {
    for mut b in backends() {
        let on = b.name;
        let mut other = Store::open(&b.at).unwrap();
        other
            .serve_lock_wait(std::time::Duration::from_millis(100))
            .unwrap();
        let marks = PassMarks {
            pass: b.store.begin_backfill(1).unwrap().pass,
            run: b.store.begin_run().unwrap(),
        };
        let mine = write(vec![(sub("sub_1", "active", 1), 1)], Some("u"), Some(1));
        // While a backfill's page is written and not yet committed.
        let e = b
            .store
            .pass_writes(marks, |out| -> anyhow::Result<String> {
                out.write(&PassPage {
                    writes: std::slice::from_ref(&mine),
                    listed: true,
                    checkpoint: None,
                })?;
                let theirs = write(vec![(sub("sub_1", "past_due", 1), 2)], Some("u"), Some(2));
                Ok(format!("{:#}", put(&mut other, &theirs).unwrap_err()))
            })
            .unwrap();
        assert!(
            e.contains("another process held the store's")
                && e.contains("the event was not processed"),
            "{on}: {e}"
        );
        b.assert_no_password(&e);
        // Committed: the retry is processed.
        let theirs = write(vec![(sub("sub_1", "past_due", 1), 2)], Some("u"), Some(2));
        assert!(put(&mut other, &theirs).unwrap().changed, "{on}");
        assert_eq!(
            b.store.mapping_of("cus_1").unwrap().unwrap().status,
            "past_due",
            "{on}"
        );
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL only: a database shared by processes, found without a store,
// made by a newer build, copied for a dry run
// ---------------------------------------------------------------------------

#[test]
fn postgres_a_second_open_sees_the_first_ones_commits() {
    let Some((_, _, at)) = pg_database() else {
        return;
    };
    let mut first = Store::open(&at).unwrap();
    // Open before the first one writes: no snapshot of its own.
    let mut second = Store::open(&at).unwrap();
    put(
        &mut first,
        &write(vec![(sub("sub_1", "past_due", 1), 200)], Some("u"), Some(1)),
    )
    .unwrap();
    assert_eq!(everything(&second), everything(&first));
    assert_eq!(
        second.mapping_of("cus_1").unwrap().unwrap().status,
        "past_due"
    );
    // The ordering guard holds across processes: the second's older
    // snapshot does not replace the first's newer one.
    let out = put(
        &mut second,
        &write(vec![(sub("sub_1", "active", 1), 100)], Some("u"), None),
    )
    .unwrap();
    assert!(!out.changed);
    put(&mut second, &of("cus_2", write(vec![], Some("u"), Some(1)))).unwrap();
    assert_eq!(first.customers_of_user("u").unwrap(), ["cus_1", "cus_2"]);
    // The event log and the checkpoints too.
    first
        .log_events(&[LoggedEvent {
            id: "evt_1",
            kind: "invoice.paid",
            created: 1,
            route: "sync",
            user_id: Some("u"),
            customer_id: Some("cus_1"),
        }])
        .unwrap();
    assert!(second.event_seen("evt_1").unwrap());
    let bf = second.begin_backfill(10).unwrap();
    assert_eq!(first.backfill().unwrap(), Some(bf.clone()));
    // Numbers handed out by either are never handed out again.
    let runs = [first.begin_run().unwrap(), second.begin_run().unwrap()];
    assert!(
        runs[0] != runs[1] && !runs.contains(&bf.pass),
        "{runs:?} {bf:?}"
    );
    let events = checkpoint::Events {
        created: 5,
        id: Some("evt_1".into()),
    };
    first.advance_events_checkpoint(&events).unwrap();
    assert_eq!(second.events_checkpoint().unwrap(), Some(events));
    // And a later process, after both closed.
    let rows = everything(&first);
    drop((first, second));
    let third = Store::open(&at).unwrap();
    assert_eq!(everything(&third), rows);
    assert_eq!(third.backfill().unwrap(), Some(bf));
}

#[test]
fn postgres_read_only_open_finds_no_store_or_the_same_mapping() {
    let Some((server, db, at)) = pg_database() else {
        return;
    };
    assert!(Store::open_read_only(&at).unwrap().is_none());
    // Looking made nothing.
    assert_eq!(
        server.query_one(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'stripe_sync'"
        ),
        "0"
    );
    let mut s = Store::open(&at).unwrap();
    let ro = Store::open_read_only(&at).unwrap().unwrap();
    assert!(everything(&ro).is_empty());
    put(
        &mut s,
        &write(vec![(sub("sub_1", "active", 1), 1)], Some("u"), Some(1)),
    )
    .unwrap();
    put(&mut s, &of("cus_2", write(vec![], None, Some(1)))).unwrap();
    assert_eq!(everything(&ro), everything(&s));
    assert_eq!(everything(&ro).len(), 2);
    assert_eq!(
        ro.mapping_of("cus_1").unwrap(),
        s.mapping_of("cus_1").unwrap()
    );
    let ro = Store::open_read_only(&at).unwrap().unwrap();
    assert_eq!(everything(&ro), everything(&s));
}

#[test]
fn postgres_a_newer_schema_is_refused_without_the_password() {
    let Some((server, db, at)) = pg_database() else {
        return;
    };
    let mut s = Store::open(&at).unwrap();
    put(&mut s, &write(vec![], Some("u"), Some(1))).unwrap();
    drop(s);
    server.execute(&db, "UPDATE stripe_sync.schema_version SET version = 99");
    let refusals = [
        ("open", Store::open(&at).unwrap_err()),
        ("open_read_only", Store::open_read_only(&at).unwrap_err()),
    ];
    for (how, e) in refusals {
        let e = format!("{e:#}");
        assert!(e.contains("newer stripe-sync"), "{how}: {e}");
        assert!(
            !e.contains(server.password()),
            "{how}: the password shown: {e}"
        );
    }
    // Left as found.
    assert_eq!(
        server.query_one(&db, "SELECT max(version) FROM stripe_sync.schema_version"),
        "99"
    );
    assert_eq!(
        server.query_one(&db, "SELECT count(*) FROM stripe_sync.customers"),
        "1"
    );
}

#[test]
fn postgres_a_copy_takes_writes_and_the_database_does_not() {
    let Some((server, db, at)) = pg_database() else {
        return;
    };
    // No store in the database: an empty copy, and still no store.
    let mut copy = Store::open_copy(&at).unwrap();
    put(&mut copy, &write(vec![], Some("u"), Some(1))).unwrap();
    drop(copy);
    assert!(Store::open_read_only(&at).unwrap().is_none());

    let mut s = Store::open(&at).unwrap();
    let mut known = write(vec![(sub("sub_1", "active", 1), 1)], Some("u"), Some(1));
    known.current = Current::Listed(Some("sub_1".into()), 1);
    put(&mut s, &known).unwrap();
    put(&mut s, &of("cus_2", write(vec![], None, Some(1)))).unwrap();
    s.log_events(&[LoggedEvent {
        id: "evt_1",
        kind: "invoice.paid",
        created: 1,
        route: "sync",
        user_id: Some("u"),
        customer_id: Some("cus_1"),
    }])
    .unwrap();
    let bf = s.begin_backfill(10).unwrap();
    let rows = everything(&s);
    let mut copy = Store::open_copy(&at).unwrap();
    assert_eq!(everything(&copy), rows);
    assert!(copy.event_seen("evt_1").unwrap());
    assert_eq!(copy.backfill().unwrap(), Some(bf.clone()));
    assert_eq!(
        copy.last_subscription("cus_1").unwrap(),
        s.last_subscription("cus_1").unwrap()
    );
    // The copy's writes follow the store's rules on the store's rows.
    let older = write(vec![(sub("sub_1", "canceled", 1), 0)], Some("u"), None);
    assert!(!put(&mut copy, &older).unwrap().changed);
    let out = put(
        &mut copy,
        &write(vec![(sub("sub_1", "past_due", 1), 2)], Some("u"), None),
    )
    .unwrap();
    assert!(out.changed);
    assert_eq!(out.before.unwrap().status, "active");
    assert_eq!(out.after.unwrap().status, "past_due");
    copy.log_events(&[LoggedEvent {
        id: "evt_2",
        kind: "invoice.paid",
        created: 2,
        route: "sync",
        user_id: None,
        customer_id: None,
    }])
    .unwrap();
    copy.end_backfill().unwrap();
    drop(copy);
    // None of it reached the database.
    assert_eq!(everything(&s), rows);
    assert!(!s.event_seen("evt_2").unwrap());
    assert_eq!(s.backfill().unwrap(), Some(bf));
    let ro = Store::open_read_only(&at).unwrap().unwrap();
    assert_eq!(ro.mapping_of("cus_1").unwrap().unwrap().status, "active");
    assert_eq!(
        server.query_one(&db, "SELECT count(*) FROM stripe_sync.events"),
        "1"
    );
}

#[test]
fn postgres_two_processes_at_once_end_where_one_would() {
    let Some((_, _, at)) = pg_database() else {
        return;
    };
    const N: usize = 24;
    // Both open the new database at once (one makes the schema), then write
    // the same customers, in opposite orders, a few to a transaction: one
    // each at 200, the other the even ones at 100 and the odd ones at 300.
    // The newer snapshot must win each, whichever process commits last.
    let start = std::sync::Barrier::new(2);
    let writer = |newest_even: bool| {
        let (start, at) = (&start, &at);
        move || {
            start.wait();
            let mut s = Store::open(at).unwrap();
            let mut writes: Vec<CustomerWrite> = (0..N)
                .map(|i| {
                    let (status, t) = match (newest_even, i % 2 == 0) {
                        (true, _) => ("past_due", 200),
                        (false, true) => ("active", 100),
                        (false, false) => ("canceled", 300),
                    };
                    let c = format!("cus_{i:02}");
                    of(
                        &c,
                        write(
                            vec![(sub(&format!("sub_{i:02}"), status, 1), t)],
                            Some("u"),
                            Some(t),
                        ),
                    )
                })
                .collect();
            if !newest_even {
                writes.reverse();
            }
            for batch in writes.chunks(5) {
                s.apply(batch).unwrap();
                let ids: Vec<String> = batch
                    .iter()
                    .map(|w| format!("evt_{}", w.customer_id))
                    .collect();
                s.logging(|log| {
                    for id in &ids {
                        log.log(&LoggedEvent {
                            id,
                            kind: "invoice.paid",
                            created: 1,
                            route: "sync",
                            user_id: None,
                            customer_id: None,
                        })?;
                    }
                    Ok(())
                })
                .unwrap();
            }
        }
    };
    std::thread::scope(|scope| {
        let a = scope.spawn(writer(true));
        let b = scope.spawn(writer(false));
        a.join().unwrap();
        b.join().unwrap();
    });
    let s = Store::open_read_only(&at).unwrap().unwrap();
    let statuses: Vec<(String, String)> = everything(&s)
        .into_iter()
        .map(|r| (r.customer_id, r.status))
        .collect();
    let want: Vec<(String, String)> = (0..N)
        .map(|i| {
            let status = if i % 2 == 0 { "past_due" } else { "canceled" };
            (format!("cus_{i:02}"), status.to_owned())
        })
        .collect();
    assert_eq!(statuses, want);
    assert_eq!(s.count_events().unwrap(), N as i64);
}
