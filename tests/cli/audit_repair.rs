//! `audit --repair-via` end to end: an app that follows the pattern (its
//! webhook verifies the signature, routes by `clerkUserId`, then syncs the
//! user: `GET /v1/subscriptions?customer=C&status=all&limit=1`, written to
//! its own PostgreSQL table) against the fake Stripe. Drift is put into the
//! app's table by hand; `audit` finds exactly those users, sends one event
//! each, and the recheck finds none. Written here from the pattern, not
//! from stripe-sync's code: the app shares none of the tool's assumptions.

use std::net::SocketAddr;
use std::sync::Arc;

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::audit::{account, synced_store};
use crate::common::tempdir;
use crate::harness::Test;
use crate::support::fake_stripe::FakeStripe;

const SECRET: &str = "whsec_audit_repair_test";

/// The app: its database URL, and where Stripe is.
struct App {
    db: String,
    stripe: String,
    key: String,
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the app connects to its database");
    tokio::spawn(conn);
    client
}

/// The app's schema: who is which customer, and the billing record.
const SCHEMA: &str = "
CREATE TABLE users (clerk_user_id TEXT PRIMARY KEY, stripe_customer_id TEXT NOT NULL);
CREATE TABLE billing (
    user_id TEXT PRIMARY KEY,
    stripe_customer_id TEXT,
    subscription_id TEXT,
    status TEXT,
    price_id TEXT,
    current_period_start TIMESTAMPTZ,
    current_period_end TIMESTAMPTZ,
    cancel_at_period_end BOOLEAN,
    card_brand TEXT,
    card_last4 TEXT
);";

impl App {
    /// The pattern's sync function: the user's latest subscription, from
    /// the API, written whole into the app's row.
    async fn sync(&self, user: &str) {
        let db = connect(&self.db).await;
        let Some(row) = db
            .query_opt(
                "SELECT stripe_customer_id FROM users WHERE clerk_user_id = $1",
                &[&user],
            )
            .await
            .unwrap()
        else {
            return;
        };
        let customer: String = row.get(0);
        let list: Value = reqwest::Client::new()
            .get(format!("{}/v1/subscriptions", self.stripe))
            .bearer_auth(&self.key)
            .query(&[
                ("customer", customer.as_str()),
                ("status", "all"),
                ("limit", "1"),
                ("expand[]", "data.default_payment_method"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sub = &list["data"][0];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let item = &sub["items"]["data"][0];
        let time = |v: &Value| v.as_i64().map(|t| t as f64);
        let card = &sub["default_payment_method"]["card"];
        db.execute(
            "INSERT INTO billing VALUES ($1, $2, $3, COALESCE($4, 'none'), $5,
                 to_timestamp($6), to_timestamp($7), $8, $9, $10)
             ON CONFLICT (user_id) DO UPDATE SET
                 stripe_customer_id = EXCLUDED.stripe_customer_id,
                 subscription_id = EXCLUDED.subscription_id, status = EXCLUDED.status,
                 price_id = EXCLUDED.price_id,
                 current_period_start = EXCLUDED.current_period_start,
                 current_period_end = EXCLUDED.current_period_end,
                 cancel_at_period_end = EXCLUDED.cancel_at_period_end,
                 card_brand = EXCLUDED.card_brand, card_last4 = EXCLUDED.card_last4",
            &[
                &user,
                &customer,
                &text(&sub["id"]),
                &text(&sub["status"]),
                &text(&item["price"]["id"]),
                &time(&item["current_period_start"]),
                &time(&item["current_period_end"]),
                &sub["cancel_at_period_end"].as_bool(),
                &text(&card["brand"]),
                &text(&card["last4"]),
            ],
        )
        .await
        .unwrap();
    }

    /// The webhook: verify (as stripe-node's constructEvent), route by the
    /// object's `metadata.clerkUserId` (else the customer's), sync, 200.
    async fn webhook(
        self: Arc<Self>,
        headers: axum::http::HeaderMap,
        body: bytes::Bytes,
    ) -> (axum::http::StatusCode, String) {
        use axum::http::StatusCode;
        let header = headers
            .get("stripe-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !signed(header, &body) {
            return (
                StatusCode::BAD_REQUEST,
                "Webhook Error: No signatures found matching the expected signature for payload"
                    .into(),
            );
        }
        let event: Value = serde_json::from_slice(&body).unwrap();
        let object = &event["data"]["object"];
        let mut user = object["metadata"]["clerkUserId"]
            .as_str()
            .map(str::to_owned);
        if user.is_none()
            && let Some(c) = object["customer"].as_str()
        {
            let customer: Value = reqwest::Client::new()
                .get(format!("{}/v1/customers/{c}", self.stripe))
                .bearer_auth(&self.key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            user = customer["metadata"]["clerkUserId"]
                .as_str()
                .map(str::to_owned);
        }
        if let Some(user) = user {
            self.sync(&user).await;
        }
        (StatusCode::OK, String::new())
    }
}

/// `t=...,v1=...` checked as the SDKs check it (any v1 matches, 300 s).
fn signed(header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - t).abs() > 300 {
        return false;
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    v1.contains(&expected)
}

/// The app's endpoint on a free loopback port, served from its own thread.
fn serve(app: Arc<App>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let router = axum::Router::new().route(
                "/stripe",
                axum::routing::post(move |h, b| app.clone().webhook(h, b)),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    addr
}

const QUERY: &str = "SELECT * FROM billing";

#[test]
fn drift_in_the_apps_postgres_table_is_found_repaired_through_its_webhook_and_rechecked() {
    let Some(pg) = crate::support::pg::server() else {
        return;
    };
    let fake = FakeStripe::start(account());
    let dir = tempdir();
    synced_store(dir.path(), &fake);
    let url = pg.url(&pg.create_database());
    let app = Arc::new(App {
        db: url.clone(),
        stripe: fake.url(),
        key: fake.api_key().to_owned(),
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let users = ["user_a", "user_b", "user_c", "user_d", "user_e"];
    rt.block_on(async {
        let db = connect(&url).await;
        db.batch_execute(SCHEMA).await.unwrap();
        for u in users {
            let customer = format!("cus_{}", &u[5..]);
            db.execute("INSERT INTO users VALUES ($1, $2)", &[&u, &customer])
                .await
                .unwrap();
            app.sync(u).await;
        }
    });
    // `audit --json EXTRA` against the app's table: one JSON document on
    // stdout; neither the database password nor the webhook secret is ever
    // shown. The test states the status and stderr.
    let audit = |extra: &[&str]| {
        Test::in_dir(dir.path())
            .args(["audit", "--app-db", &url, "--query", QUERY, "--json"])
            .args(extra)
            .stdout_json()
            .stdout_lacks(pg.password())
            .stdout_lacks(SECRET)
            .stderr_lacks(pg.password())
            .stderr_lacks(SECRET)
    };

    // The app's own sync wrote the truth: nothing to find.
    let doc = audit(&[]).run().json();
    assert_eq!(doc["summary"]["users"], 5);
    assert_eq!(doc["summary"]["in_sync"], 5);
    assert_eq!(
        doc["summary"]["fields_compared"],
        json!([
            "customer",
            "subscription",
            "status",
            "price",
            "period_start",
            "period_end",
            "cancel_at_period_end",
            "card_brand",
            "card_last4"
        ])
    );

    // Drift, as the incidents have it: access Stripe canceled, a row that
    // a lost event never wrote, a stale price, a stale period.
    rt.block_on(async {
        let db = connect(&url).await;
        db.batch_execute(
            "UPDATE billing SET status = 'active' WHERE user_id = 'user_b';
             DELETE FROM billing WHERE user_id = 'user_e';
             UPDATE billing SET price_id = 'price_old' WHERE user_id = 'user_a';
             UPDATE billing SET current_period_end = current_period_end - interval '3 days' WHERE user_id = 'user_c';",
        )
        .await
        .unwrap();
    });
    let doc = audit(&[]).status(1).run().json();
    let found: Vec<(&str, &str)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["user_id"].as_str().unwrap(),
                f["finding"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("user_b", "unpaid_access"),
            ("user_e", "missing_in_app"),
            ("user_a", "price"),
            ("user_c", "period"),
        ]
    );

    // A dry run lists the events and sends nothing.
    let app_addr = serve(app.clone());
    let endpoint = format!("http://{app_addr}/stripe");
    let doc = audit(&["--repair-via", &endpoint, "--secret", SECRET, "--dry-run"])
        .status(1)
        .run()
        .json();
    let repairs = doc["repairs"].as_array().unwrap();
    assert_eq!(repairs.len(), 4);
    assert!(repairs.iter().all(|r| r.get("delivery").is_none()));
    assert_eq!(repairs[0]["user_id"], "user_b");
    assert_eq!(repairs[0]["type"], "customer.subscription.deleted");
    assert_eq!(repairs[1]["type"], "customer.subscription.updated");

    // Repair: one signed event per drifted user; the app's own sync fixes
    // each one from the API; the recheck reads the table again.
    let doc = audit(&[
        "--repair-via",
        &endpoint,
        "--secret",
        SECRET,
        "--recheck",
        "1",
    ])
    .run()
    .json();
    let repairs = doc["repairs"].as_array().unwrap();
    let sent: Vec<(&str, u64)> = repairs
        .iter()
        .map(|r| {
            (
                r["user_id"].as_str().unwrap(),
                r["delivery"]["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("user_b", 200),
            ("user_e", 200),
            ("user_a", 200),
            ("user_c", 200)
        ]
    );
    let ids: std::collections::HashSet<&str> = repairs
        .iter()
        .map(|r| r["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "a fresh event id each");
    assert_eq!(doc["recheck"]["after_seconds"], 1);
    assert_eq!(doc["recheck"]["summary"]["drifted"], 0);
    assert_eq!(doc["recheck"]["findings"], json!([]));
    // Neither the database password nor the webhook secret is ever shown
    // (`audit` states it).

    // A wrong secret: the app answers 400, and the recheck still finds the drift.
    rt.block_on(async {
        connect(&url)
            .await
            .batch_execute("UPDATE billing SET status = 'active' WHERE user_id = 'user_b'")
            .await
            .unwrap();
    });
    let doc = audit(&[
        "--repair-via",
        &endpoint,
        "--secret",
        "whsec_wrong",
        "--recheck",
        "0",
    ])
    .status(1)
    .run()
    .json();
    assert_eq!(doc["repairs"][0]["delivery"]["status"], 400);
    assert_eq!(doc["recheck"]["summary"]["drifted"], 1);
}

#[test]
fn an_unreachable_app_database_fails_within_ten_seconds_without_its_password() {
    let dir = tempdir();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://app:s3cret-pw@127.0.0.1:{port}/app");
    let started = std::time::Instant::now();
    Test::in_dir(dir.path())
        .args(["audit", "--app-db", &url, "--query", QUERY])
        .status(2)
        .stderr_has("error: ")
        .stderr_has(format!("127.0.0.1:{port}"))
        .stderr_lacks("s3cret-pw")
        .run();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn a_failing_query_shows_postgresqls_message() {
    let Some(pg) = crate::support::pg::server() else {
        return;
    };
    let dir = tempdir();
    let url = pg.url(&pg.create_database());
    Test::in_dir(dir.path())
        .args([
            "audit",
            "--app-db",
            &url,
            "--query",
            "SELECT nope FROM billing",
        ])
        .status(2)
        .stderr_has("--query failed")
        .stderr_has("relation \"billing\" does not exist")
        .stderr_lacks(pg.password())
        .run();
}
