use super::*;
use crate::objects::Card;

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

/// One customer through the one write path.
fn put(s: &mut Store, w: &CustomerWrite) -> anyhow::Result<WriteOutcome> {
    let mut out = s.apply(std::slice::from_ref(w))?;
    Ok(out.pop().expect("one outcome"))
}

#[test]
fn migrates_from_empty_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = Store::open(&path).unwrap();
    drop(s);
    let s = Store::open(&path).unwrap();
    let v: i64 = s
        .sqlite().conn
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
    let mut s = Store::in_memory().unwrap();
    put(
        &mut s,
        &write(vec![(sub("sub_1", "past_due", 10), 200)], Some("u"), None),
    )
    .unwrap();
    let out = put(
        &mut s,
        &write(vec![(sub("sub_1", "active", 10), 100)], Some("u"), None),
    )
    .unwrap();
    assert!(!out.changed);
    assert_eq!(s.mapping_of("cus_1").unwrap().unwrap().status, "past_due");
    // Equal time: the later write wins (later input breaks ties).
    put(
        &mut s,
        &write(vec![(sub("sub_1", "canceled", 10), 200)], Some("u"), None),
    )
    .unwrap();
    assert_eq!(s.mapping_of("cus_1").unwrap().unwrap().status, "canceled");
}

#[test]
fn mapping_takes_newest_subscription_by_created() {
    let mut s = Store::in_memory().unwrap();
    put(
        &mut s,
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
    assert_eq!(row.subscription_id.as_deref(), Some("sub_new"));
    assert_eq!(row.status, "active");
    assert_eq!(row.payment_method.unwrap().last4.as_deref(), Some("4242"));
}

#[test]
fn customer_without_subscription_is_none() {
    let mut s = Store::in_memory().unwrap();
    put(&mut s, &write(vec![], None, Some(1))).unwrap();
    let row = s.mapping_of("cus_1").unwrap().unwrap();
    assert_eq!(row.status, "none");
    assert_eq!(row.user_id, None);
    let f = Filter {
        unmapped: true,
        ..Filter::default()
    };
    assert_eq!(s.mapping(&f).unwrap().len(), 1);
    let f = Filter {
        statuses: vec!["active".into()],
        ..Filter::default()
    };
    assert!(s.mapping(&f).unwrap().is_empty());
}

#[test]
fn customer_object_beats_inferred_user_and_older_objects() {
    let mut s = Store::in_memory().unwrap();
    put(&mut s, &write(vec![], Some("from_event"), None)).unwrap();
    assert_eq!(
        s.customer_user("cus_1").unwrap(),
        Known::User("from_event".into())
    );
    put(&mut s, &write(vec![], Some("from_customer"), Some(50))).unwrap();
    assert_eq!(
        s.customer_user("cus_1").unwrap(),
        Known::User("from_customer".into())
    );
    put(&mut s, &write(vec![], None, Some(40))).unwrap();
    assert_eq!(
        s.customer_user("cus_1").unwrap(),
        Known::User("from_customer".into())
    );
    put(&mut s, &write(vec![], Some("guess"), None)).unwrap();
    assert_eq!(
        s.customer_user("cus_1").unwrap(),
        Known::User("from_customer".into())
    );
}

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
    let mut s = Store::in_memory().unwrap();
    let w = write(vec![(sub("sub_1", "active", 1), 5)], Some("u"), Some(5));
    put(&mut s, &w).unwrap();
    let before: i64 = s
        .sqlite().conn
        .query_row("SELECT total_changes()", [], |r| r.get(0))
        .unwrap();
    let out = put(&mut s, &w).unwrap();
    let after: i64 = s
        .sqlite().conn
        .query_row("SELECT total_changes()", [], |r| r.get(0))
        .unwrap();
    assert!(!out.changed);
    assert_eq!(before, after, "a rerun must write no row");
}

#[test]
fn the_api_listing_decides_ties_not_the_id() {
    let mut s = Store::in_memory().unwrap();
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
    put(&mut s, &w).unwrap();
    assert_eq!(s.mapping_of("cus_1").unwrap().unwrap().status, "active");
    // An offline pass over the same tie keeps what the API said.
    let mut offline = write(vec![], None, None);
    offline.current = Current::Newest(Vec::new());
    put(&mut s, &offline).unwrap();
    assert_eq!(
        s.mapping_of("cus_1")
            .unwrap()
            .unwrap()
            .subscription_id
            .as_deref(),
        Some("sub_a")
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
        Some("sub_b")
    );
}

#[test]
fn a_deleted_customer_has_no_live_subscription() {
    let mut s = Store::in_memory().unwrap();
    put(
        &mut s,
        &write(vec![(sub("sub_1", "active", 1), 1)], Some("u"), Some(1)),
    )
    .unwrap();
    let mut gone = write(vec![], None, Some(2));
    gone.info.deleted = true;
    let out = put(&mut s, &gone).unwrap();
    assert!(out.changed);
    let row = s.mapping_of("cus_1").unwrap().unwrap();
    assert_eq!(row.status, "deleted");
    assert!(row.deleted);
    assert_eq!(row.subscription_id, None);
    assert_eq!(
        row.user_id.as_deref(),
        Some("u"),
        "whose customer it was is kept"
    );
    let active = Filter {
        statuses: vec!["active".into()],
        ..Filter::default()
    };
    assert!(s.mapping(&active).unwrap().is_empty());
}

#[test]
fn events_are_logged_idempotently() {
    let mut s = Store::in_memory().unwrap();
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
    assert!(s.event_seen("evt_1").unwrap());
    assert!(!s.event_seen("evt_2").unwrap());
    let n: i64 = s
        .sqlite().conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_failed_write_leaves_no_half_customer() {
    let mut s = Store::in_memory().unwrap();
    // A subscription row that violates NOT NULL (status) fails mid-transaction.
    s.sqlite().conn.execute_batch("CREATE TRIGGER boom BEFORE INSERT ON subscriptions WHEN NEW.id = 'sub_bad' BEGIN SELECT RAISE(ABORT, 'boom'); END;").unwrap();
    let w = write(
        vec![
            (sub("sub_ok", "active", 1), 1),
            (sub("sub_bad", "active", 2), 1),
        ],
        Some("u"),
        None,
    );
    assert!(put(&mut s, &w).is_err());
    assert!(s.mapping_of("cus_1").unwrap().is_none());
    let subs: i64 = s
        .sqlite().conn
        .query_row("SELECT count(*) FROM subscriptions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(subs, 0);
}

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
        .sqlite().conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    s.sqlite().conn
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
        .sqlite().conn
        .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(s.mapping_of("cus_1").unwrap().unwrap().status, "active");
}

#[test]
fn read_only_connection_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    Store::open(&path).unwrap();
    let mut ro = Store::open_read_only(&path).unwrap().unwrap();
    let e = put(&mut ro, &write(vec![], Some("u"), Some(1)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ro.db") && e.contains("read-only"), "{e}");
}

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
        .sqlite().conn
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
    let mut s = Store::in_memory().unwrap();
    // Before the pass: one customer with a subscription, one without.
    let mut known = write(vec![(sub("sub_old", "active", 5), 5)], Some("u1"), Some(5));
    known.current = Current::Listed(Some("sub_old".into()), 5);
    put(&mut s, &known).unwrap();
    let b = s.begin_backfill(50).unwrap();
    let marks = PassMarks {
        pass: b.pass,
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
            checkpoint: Some(&b),
        })
    })
    .unwrap();
    assert_eq!(s.run_len(marks.run).unwrap(), 2);
    let page = s.run_page(marks.run, None, 10).unwrap();
    let ids: Vec<&str> = page.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(ids, ["cus_1", "cus_2"]);
    let (cus_1, cus_2) = (&page[0].1, &page[1].1);
    assert_eq!(cus_1.before.as_ref().unwrap().status, "active");
    assert_eq!(cus_1.after.as_ref().unwrap().status, "past_due");
    assert!(cus_1.changed);
    assert!(cus_2.before.is_none() && cus_2.changed);
    // Both were listed and cus_1's subscription seen: nothing to settle.
    let (found, _) = s.backfill_unlisted(marks.pass, 0, 10).unwrap();
    assert_eq!(found, []);
    // A later run of the same pass reports only what it writes.
    let again = PassMarks {
        pass: marks.pass,
        run: s.begin_run().unwrap(),
    };
    assert_eq!(s.run_len(again.run).unwrap(), 0);
}

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

#[test]
fn the_v5_event_log_keeps_every_logged_event_and_still_refuses_a_second_mark() {
    let (_dir, path) = older_store(
        4,
        "INSERT INTO events VALUES ('evt_b', 'invoice.paid', 2, 'sync', 'u1', 'cus_1', 'x'),
                                   ('evt_a', 'customer.created', 1, 'ignored', NULL, NULL, 'y');",
    );
    let mut s = Store::open(&path).unwrap();
    let version: i64 = s
        .sqlite().conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::VERSION);
    let rows: Vec<(String, String, Option<String>)> = {
        let mut st = s
            .sqlite().conn
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
            .sqlite().conn
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
// commit synced, the files checked to be the ones opened
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
        s.sqlite().conn
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
