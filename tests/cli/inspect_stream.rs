//! `inspect --json` and `--csv` stream from the store: the same bytes as
//! the whole result printed at once, filtered in SQL as the rows were once
//! filtered in Rust, with the duplicate-customer warning over the same rows.
//!
//! Also the maker of the large stores the inspect probe measures
//! (`benches/support/inspect_probe.rs`):
//!
//! ```text
//! INSPECT_BENCH_DB=/tmp/million.db cargo test --test cli -- --ignored --exact \
//!     inspect_stream::make_a_store_for_the_inspect_bench --nocapture
//! ```

use std::path::Path;

use serde_json::{Value, json};

use crate::common::tempdir;
use crate::harness::{Output, Test};

#[path = "../../benches/support/inspect_probe.rs"]
mod inspect_probe;

/// The user the generated store maps to exactly one customer (for `--user`).
pub const PROBE_USER: &str = "user_probe";

const STATUSES: [&str; 6] = [
    "active", "active", "active", "trialing", "past_due", "canceled",
];

fn token(rng: &mut fastrand::Rng, prefix: &str, len: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    s.extend((0..len).map(|_| rng.alphanumeric()));
    s
}

/// A store of `customers` customers, written with SQL that matches the
/// schema the binary creates (customers in random id order, as a backfill
/// lists them): about 1% unmapped, 0.5% of users with a second customer,
/// 10% without a subscription, 0.5% deleted, and [`PROBE_USER`] once.
pub fn make_store(db: &Path, customers: usize, seed: u64) {
    let dir = db.parent().expect("the store's directory");
    let ignored = dir.join("inspect-bench-schema.json");
    std::fs::write(
        &ignored,
        json!({"id": "evt_schema", "object": "event", "type": "charge.succeeded", "created": 1,
               "data": {"object": {"id": "ch_1", "object": "charge"}}})
        .to_string(),
    )
    .unwrap();
    Test::in_dir(dir)
        .arg("--db")
        .arg(db)
        .arg("replay")
        .arg(&ignored)
        .stdout_has("1 event: 1 ignored")
        .stderr_has("1 event: 1 ignored")
        .run();
    std::fs::remove_file(&ignored).unwrap();

    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")
        .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut customer = tx
            .prepare(
                "INSERT INTO customers (id, user_id, user_key, email, deleted, snapshot_at, source,
                    synced_at, subscription_id, current_at)
                 VALUES (?1, ?2, 'clerkUserId', ?3, ?4, 1767225600, 'api', '2026-01-01T00:00:00Z', ?5, ?6)",
            )
            .unwrap();
        let mut subscription = tx
            .prepare(
                "INSERT INTO subscriptions (id, customer_id, status, price_id, current_period_start,
                    current_period_end, cancel_at_period_end, payment_method_id, card_brand,
                    card_last4, created, snapshot_at, source, synced_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1767225600, 'api',
                    '2026-01-01T00:00:00Z')",
            )
            .unwrap();
        let mut rng = fastrand::Rng::with_seed(seed);
        let prices: Vec<String> = (0..5).map(|_| token(&mut rng, "price_", 24)).collect();
        let mut last_user: Option<String> = None;
        for n in 0..customers {
            let id = token(&mut rng, "cus_", 14);
            let user = if n == customers / 2 {
                Some(PROBE_USER.to_owned())
            } else if rng.u32(0..1000) < 10 {
                None
            } else if rng.u32(0..1000) < 5 && last_user.is_some() {
                last_user.clone()
            } else {
                Some(token(&mut rng, "user_", 27))
            };
            if user.as_deref() != Some(PROBE_USER) {
                last_user.clone_from(&user);
            }
            let deleted = rng.u32(0..1000) < 5;
            let sub = (rng.u32(0..10) > 0).then(|| token(&mut rng, "sub_", 24));
            let created = 1_700_000_000 + rng.i64(0..60_000_000);
            if let Some(sub) = &sub {
                let start = created + rng.i64(0..2_592_000);
                let card = rng.u32(0..10) > 0;
                subscription
                    .execute(rusqlite::params![
                        sub,
                        id,
                        STATUSES[rng.usize(0..STATUSES.len())],
                        prices[rng.usize(0..prices.len())],
                        start,
                        start + 2_592_000,
                        rng.u32(0..10) == 0,
                        card.then(|| token(&mut rng, "pm_", 24)),
                        card.then_some(if rng.bool() { "visa" } else { "mastercard" }),
                        card.then(|| format!("{:04}", rng.u32(0..10_000))),
                        created,
                    ])
                    .unwrap();
            }
            customer
                .execute(rusqlite::params![
                    id,
                    user,
                    format!("customer{n}@example.com"),
                    deleted,
                    sub,
                    sub.as_ref().map(|_| created),
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
}

#[test]
#[ignore = "makes a large store for the inspect bench; set INSPECT_BENCH_DB"]
#[allow(clippy::print_stderr)]
fn make_a_store_for_the_inspect_bench() {
    let db =
        std::env::var_os("INSPECT_BENCH_DB").expect("INSPECT_BENCH_DB=path of the store to make");
    let customers = std::env::var("INSPECT_BENCH_CUSTOMERS")
        .map(|n| n.parse().expect("INSPECT_BENCH_CUSTOMERS is a number"))
        .unwrap_or(1_000_000);
    let db = Path::new(&db);
    assert!(!db.exists(), "{} exists already", db.display());
    let started = std::time::Instant::now();
    make_store(db, customers, 12);
    eprintln!(
        "{} customers in {} in {:.1} s; `inspect --user {PROBE_USER}` shows one",
        customers,
        db.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Measures the release binary on a store made as above. Build both first;
/// the reader counts rows, so this test wants `--release` too:
///
/// ```text
/// cargo build --release
/// INSPECT_BENCH_DB=/tmp/million.db cargo test --release --test cli -- --ignored --exact \
///     inspect_stream::probe_inspect_on_a_large_store --nocapture
/// ```
#[test]
#[ignore = "measures inspect on a large store; set INSPECT_BENCH_DB"]
#[allow(clippy::print_stderr)]
fn probe_inspect_on_a_large_store() {
    let db = std::env::var_os("INSPECT_BENCH_DB").expect("INSPECT_BENCH_DB=path of the store");
    let bin = std::env::var_os("INSPECT_BENCH_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/stripe-sync"),
        Into::into,
    );
    for line in inspect_probe::measure(&bin, Path::new(&db), PROBE_USER) {
        eprintln!("{line}");
    }
}

/// A small generated store, plus a few rows with text to escape and a
/// user with three customers.
fn store() -> tempfile::TempDir {
    let dir = tempdir();
    let db = dir.path().join("stripe-sync.db");
    make_store(&db, 3_000, 7);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "INSERT INTO customers (id, user_id, user_key, email, deleted, source, synced_at)
         VALUES ('cus_t1', 'user_three', 'k', 'a,\"b\"@x.io', 0, 'events', '2026-01-02T00:00:00Z'),
                ('cus_t2', 'user_three', 'k', NULL, 1, 'events', '2026-01-02T00:00:00Z'),
                ('cus_t0', 'user_three', 'k', 'é@x.io', 0, 'api', '2026-01-02T00:00:00Z');",
    )
    .unwrap();
    dir
}

/// The mapping's filters as `inspect` once applied them, row by row.
struct Wanted<'a> {
    users: &'a [&'a str],
    customers: &'a [&'a str],
    statuses: &'a [&'a str],
    unmapped: bool,
}

impl Wanted<'_> {
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for u in self.users {
            args.extend(["--user".to_owned(), (*u).to_owned()]);
        }
        for c in self.customers {
            args.extend(["--customer".to_owned(), (*c).to_owned()]);
        }
        if !self.statuses.is_empty() {
            args.extend(["--status".to_owned(), self.statuses.join(",")]);
        }
        if self.unmapped {
            args.push("--unmapped".to_owned());
        }
        args
    }

    fn keeps(&self, row: &Value) -> bool {
        let user = row["user_id"].as_str();
        (self.users.is_empty() || user.is_some_and(|u| self.users.contains(&u)))
            && (self.customers.is_empty()
                || self
                    .customers
                    .contains(&row["customer_id"].as_str().unwrap()))
            && (self.statuses.is_empty()
                || self.statuses.contains(&row["status"].as_str().unwrap()))
            && (!self.unmapped || user.is_none())
    }
}

/// Stderr holds nothing but warnings (of duplicate customers).
fn only_warnings(stderr: &str) -> bool {
    stderr.lines().all(|l| l.starts_with("warning: "))
}

/// `inspect ARGS` in `d` (a filter that shows user_three), exiting
/// `status`, with stderr `stderr` when given, else only warnings.
fn inspect(d: &Path, args: &[&str], status: i32, stderr: Option<&str>) -> Output {
    let t = Test::in_dir(d)
        .arg("inspect")
        .args(args)
        .status(status)
        .stdout_has("user_three");
    match stderr {
        Some(text) => t.stderr(text),
        None => t.stderr_with("only warnings", only_warnings),
    }
    .run()
}

/// `inspect`'s JSON as it was printed before it streamed: the whole array
/// through `serde_json::to_writer_pretty`, then a newline.
fn printed_at_once(rows: &[Value]) -> String {
    serde_json::to_string_pretty(rows).unwrap() + "\n"
}

#[test]
fn filtered_streams_are_the_rows_the_old_filters_kept_in_the_same_bytes() {
    let dir = store();
    let d = dir.path();
    let all = Test::in_dir(d)
        .args(["inspect", "--json"])
        .stdout_json()
        .stderr_has("users have more than one customer")
        .run();
    let rows = all.json().as_array().unwrap().clone();
    assert_eq!(rows.len(), 3_003);
    assert_eq!(all.stdout, printed_at_once(&rows));
    // The old order: by user, unmapped last, then by customer.
    let key = |r: &Value| {
        let user = r["user_id"].as_str().map(str::to_owned);
        (
            user.is_none(),
            user,
            r["customer_id"].as_str().unwrap().to_owned(),
        )
    };
    assert!(rows.windows(2).all(|w| key(&w[0]) < key(&w[1])));
    let csv_all = Test::in_dir(d)
        .args(["inspect", "--csv"])
        .stdout_has("user_id,customer_id,")
        .stderr_has("users have more than one customer")
        .run();
    let csv_lines: Vec<&str> = csv_all.stdout.lines().collect();
    // One line per row: the generated text has no line breaks.
    assert_eq!(csv_lines.len(), rows.len() + 1);

    let unmapped: Vec<&str> = rows
        .iter()
        .filter(|r| r["user_id"].is_null())
        .map(|r| r["customer_id"].as_str().unwrap())
        .take(2)
        .collect();
    let mapped = rows[10]["customer_id"].as_str().unwrap();
    let filters = [
        Wanted {
            users: &["user_probe"],
            customers: &[],
            statuses: &[],
            unmapped: false,
        },
        Wanted {
            users: &["user_three", "user_probe", "user_three", "nobody"],
            customers: &[],
            statuses: &[],
            unmapped: false,
        },
        Wanted {
            users: &["user_three"],
            customers: &["cus_t0", "cus_t2"],
            statuses: &[],
            unmapped: false,
        },
        Wanted {
            users: &[],
            customers: &[unmapped[0], mapped, unmapped[1], "cus_none"],
            statuses: &[],
            unmapped: false,
        },
        Wanted {
            users: &[],
            customers: &[],
            statuses: &["active", "trialing"],
            unmapped: false,
        },
        Wanted {
            users: &[],
            customers: &[],
            statuses: &["none"],
            unmapped: false,
        },
        Wanted {
            users: &[],
            customers: &[],
            statuses: &["deleted", "canceled"],
            unmapped: false,
        },
        Wanted {
            users: &[],
            customers: &[],
            statuses: &[],
            unmapped: true,
        },
        Wanted {
            users: &[],
            customers: &[],
            statuses: &["past_due"],
            unmapped: true,
        },
        Wanted {
            users: &[],
            customers: &[unmapped[0], mapped],
            statuses: &[],
            unmapped: true,
        },
        Wanted {
            users: &["user_three"],
            customers: &[],
            statuses: &[],
            unmapped: true,
        },
        Wanted {
            users: &["user_three"],
            customers: &[],
            statuses: &["paused"],
            unmapped: false,
        },
    ];
    for wanted in &filters {
        let args = wanted.args();
        let kept: Vec<usize> = (0..rows.len())
            .filter(|&i| wanted.keeps(&rows[i]))
            .collect();
        let want: Vec<Value> = kept.iter().map(|&i| rows[i].clone()).collect();
        let status = if want.is_empty() { 1 } else { 0 };

        Test::in_dir(d)
            .args(["inspect", "--json"])
            .args(&args)
            .status(status)
            .stdout(printed_at_once(&want))
            .stderr_with("only warnings", only_warnings)
            .run();

        let want_csv: String = std::iter::once(0)
            .chain(kept.iter().map(|i| i + 1))
            .map(|i| format!("{}\n", csv_lines[i]))
            .collect();
        Test::in_dir(d)
            .args(["inspect", "--csv"])
            .args(&args)
            .status(status)
            .stdout(want_csv)
            .stderr_with("only warnings", only_warnings)
            .run();
    }
    // Some filters above kept rows, and some kept none.
    assert!(
        filters
            .iter()
            .any(|w| rows.iter().filter(|r| w.keeps(r)).count() > 1)
    );
    assert!(filters.iter().any(|w| !rows.iter().any(|r| w.keeps(r))));
}

#[test]
fn duplicate_customers_are_found_among_the_filtered_rows() {
    let dir = store();
    let d = dir.path();
    let three = "warning: user user_three maps to 3 customers (cus_t0, cus_t1, cus_t2): duplicate customers, the checkout race of the pattern; the app syncs only one\n";

    // The generated users with two customers, and user_three: more than a
    // few, so one grouped line names the first three.
    let out = Test::in_dir(d)
        .args(["inspect", "--json"])
        .stdout_json()
        .stderr_has("users have more than one customer")
        .run();
    let rows = out.json();
    let mut per_user = std::collections::BTreeMap::<&str, usize>::new();
    for r in rows.as_array().unwrap() {
        if let Some(u) = r["user_id"].as_str() {
            *per_user.entry(u).or_default() += 1;
        }
    }
    let dups: Vec<(&str, usize)> = per_user.into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(dups.len() > 3, "{dups:?}");
    let named: Vec<String> = dups[..3]
        .iter()
        .map(|(u, n)| format!("{u} ({n})"))
        .collect();
    assert_eq!(
        out.stderr,
        format!(
            "warning: {} users have more than one customer: {}, ...; duplicate customers, the checkout race of the pattern (`inspect --user ID` lists one user's)\n",
            dups.len(),
            named.join(", ")
        )
    );
    // Every output form warns the same way.
    for form in [&["--csv"][..], &[]] {
        inspect(d, form, 0, Some(&out.stderr));
    }

    // Named one by one when a filter leaves a few.
    let out = inspect(
        d,
        &["--json", "--user", "user_three", "--user", dups[0].0],
        0,
        None,
    );
    let first = format!(
        "warning: user {} maps to {} customers ",
        dups[0].0, dups[0].1
    );
    let (a, b) = out.stderr.split_once('\n').unwrap();
    let (a, b) = (format!("{a}\n"), b.to_owned());
    let (mine, theirs) = if a.starts_with(&first) {
        (b, a)
    } else {
        (a, b)
    };
    assert!(theirs.starts_with(&first), "{}", out.stderr);
    assert_eq!(mine, three);

    // Only the rows the filter shows count: a status that leaves user_three
    // one customer leaves no duplicate.
    let out = inspect(
        d,
        &["--csv", "--user", "user_three", "--status", "deleted"],
        0,
        Some(""),
    );
    assert_eq!(out.stdout.lines().count(), 2);
    inspect(
        d,
        &["--user", "user_three", "--status", "none,deleted"],
        0,
        Some(three),
    );
    inspect(
        d,
        &["--json", "--customer", "cus_t0", "--customer", "cus_t2"],
        0,
        Some(
            "warning: user user_three maps to 2 customers (cus_t0, cus_t2): duplicate customers, the checkout race of the pattern; the app syncs only one\n",
        ),
    );
    Test::in_dir(d)
        .args(["-q", "inspect", "--json", "--user", "user_three"])
        .stdout_json()
        .stderr("")
        .run();
}

/// `inspect --json | head -c 100`: the reader goes away after the first
/// bytes, and the command ends quietly with status 0, readers and all.
#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = store();
    for form in ["--json", "--csv"] {
        // Not even the duplicate-customer warning: it comes after the
        // data, which nobody reads any more.
        Test::in_dir(dir.path())
            .args(["inspect", form])
            .hang_up_after(100)
            .stdout_with("the first 100 bytes", |s| s.len() == 100)
            .run();
    }
}

/// `inspect`'s table streams: its columns are sized from the first 1,000
/// rows (`output::table::SIZED_FROM`), and a later row with a wider value
/// pushes the rest of its own line on a pipe, and is cut on a terminal.
#[test]
fn the_table_is_sized_from_its_first_rows() {
    let dir = tempdir();
    let db = dir.path().join("stripe-sync.db");
    make_store(&db, 1_500, 3);
    // Mapped rows come in user order: this user's comes last of them.
    let wide_user = format!("user_zz{}", "w".repeat(60));
    let wide_email = format!("{}@example.com", "long".repeat(15));
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO customers (id, user_id, user_key, email, deleted, source, synced_at)
             VALUES ('cus_wide', ?1, 'k', ?2, 0, 'events', '2026-01-02T00:00:00Z')",
            [&wide_user, &wide_email],
        )
        .unwrap();
    let csv = Test::in_dir(dir.path())
        .args(["inspect", "--csv"])
        .stdout_has("cus_wide")
        .stderr_with("only warnings", only_warnings)
        .run();
    let customers: Vec<String> = csv::Reader::from_reader(csv.stdout.as_bytes())
        .records()
        .map(|r| r.unwrap()[1].to_owned())
        .collect();
    assert_eq!(customers.len(), 1_501);
    let wide_at = customers.iter().position(|c| c == "cus_wide").unwrap();
    assert!(wide_at > 1_000, "the wide row comes after the first 1,000");

    // On a pipe: every row, in the store's order, nothing cut; the columns
    // align on the header's except on the wide row.
    let pipe = Test::in_dir(dir.path())
        .arg("inspect")
        .stdout_has(&wide_user)
        .stdout_has(&wide_email)
        .stderr_with("only warnings", only_warnings)
        .run();
    let lines: Vec<&str> = pipe.stdout.lines().collect();
    assert_eq!(lines.len(), 1 + customers.len());
    assert!(!pipe.stdout.contains('…'));
    let at = lines[0].find("CUSTOMER").unwrap();
    for (n, (line, customer)) in lines[1..].iter().zip(&customers).enumerate() {
        let found = line.find(customer.as_str());
        match n == wide_at {
            true => assert!(found > Some(at), "{line}"),
            false => assert_eq!(found, Some(at), "row {n}: {line}"),
        }
    }

    // On a terminal: the same rows, each line fitted to the width (the
    // screen keeps 2,000 lines: the whole table, then the warnings).
    let term = Test::in_dir(dir.path())
        .arg("inspect")
        .terminal(100)
        .stdout_has("user_zzwww")
        .run();
    let screen = term.screen.as_ref().unwrap();
    screen.assert_fits();
    let header = screen
        .rows
        .iter()
        .position(|l| l.starts_with("USER"))
        .unwrap();
    let table = &screen.rows[header + 1..header + 1 + customers.len()];
    let wide = &table[wide_at];
    assert!(wide.starts_with("user_zzw") && wide.contains('…'), "{wide}");
    assert!(wide.contains("cus_wide"), "{wide}");
    for (line, customer) in table.iter().zip(&customers) {
        assert!(line.contains(customer.as_str()), "{customer}: {line}");
    }
}
