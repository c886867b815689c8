//! Self-test of the fake Stripe API server in `tests/support/fake_stripe.rs`,
//! driven by a tiny hand-written HTTP/1.1 client over `std::net::TcpStream`.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fake_stripe::{Account, AuthState, FakeStripe, Fault, FaultRule};

// ---------------------------------------------------------------------------
// Minimal HTTP client
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn error_code(&self) -> Option<String> {
        self.json()["error"]["code"].as_str().map(str::to_owned)
    }
}

fn parse_response(buf: &[u8]) -> Option<Resp> {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw_body = &buf[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size_str = String::from_utf8_lossy(&b[..eol]).into_owned();
        let size =
            usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            out.extend_from_slice(&b[..size.min(b.len())]);
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out
}

fn raw_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<Resp> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    if method != "GET" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    parse_response(&buf).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a complete response head",
        )
    })
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn get_with(fake: &FakeStripe, target: &str, extra: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {}", fake.api_key());
    let mut headers = vec![("Authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    raw_request(fake.addr(), "GET", target, &headers, TIMEOUT).expect("request failed")
}

fn get(fake: &FakeStripe, target: &str) -> Resp {
    get_with(fake, target, &[])
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_owned())
        .collect()
}

fn small_account() -> Account {
    Account::new()
        .customer(json!({
            "id": "cus_alice", "created": 1_700_000_000, "email": "alice@example.com",
            "name": "Alice", "metadata": { "clerkUserId": "user_alice" },
            "invoice_settings": { "default_payment_method": "pm_alice" }
        }))
        .customer(json!({
            "id": "cus_bob", "created": 1_700_000_100, "email": "bob@example.com",
            "metadata": { "clerkUserId": "user_bob" }
        }))
        .payment_method(json!({
            "id": "pm_alice", "customer": "cus_alice", "created": 1_700_000_010,
            "card": { "brand": "mastercard", "last4": "4444" }
        }))
        .price(
            json!({ "id": "price_pro", "product": "prod_pro", "unit_amount": 2900,
                       "recurring": { "interval": "month", "interval_count": 1 } }),
        )
        .subscription(json!({
            "id": "sub_active", "customer": "cus_alice", "status": "active",
            "created": 1_700_000_020, "price": "price_pro",
            "default_payment_method": "pm_alice",
            "current_period_start": 1_700_000_020, "current_period_end": 1_702_592_020
        }))
        .subscription(json!({
            "id": "sub_trial", "customer": "cus_bob", "status": "trialing",
            "created": 1_700_000_200, "price": "price_pro"
        }))
        .subscription(json!({
            "id": "sub_past_due", "customer": "cus_alice", "status": "past_due",
            "created": 1_700_000_300, "price": "price_pro"
        }))
        .subscription(json!({
            "id": "sub_canceled", "customer": "cus_alice", "status": "canceled",
            "created": 1_700_000_030, "price": "price_pro",
            "canceled_at": 1_700_500_000, "ended_at": 1_700_500_000
        }))
        .subscription(json!({
            "id": "sub_expired", "customer": "cus_bob", "status": "incomplete_expired",
            "created": 1_700_000_040, "price": "price_pro"
        }))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn auth_missing_wrong_and_masked() {
    let fake = FakeStripe::start(Account::new().with_api_key("sk_test_other_456"));

    let r = raw_request(fake.addr(), "GET", "/v1/customers", &[], TIMEOUT).unwrap();
    assert_eq!(r.status, 401);
    let body = r.json();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You did not provide an API key"),
        "{body}"
    );
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(r.header("request-id").unwrap().starts_with("req_"));
    assert_eq!(r.header("content-type"), Some("application/json"));

    let r = raw_request(
        fake.addr(),
        "GET",
        "/v1/customers",
        &[("Authorization", "Bearer sk_test_fake_123")],
        TIMEOUT,
    )
    .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["message"],
        "Invalid API Key provided: sk_test_****_123"
    );
    assert!(!r.text().contains("sk_test_fake_123"));

    let r = raw_request(
        fake.addr(),
        "GET",
        "/v1/customers",
        &[("Authorization", "Bearer sk_live_SuperSecretValue9876")],
        TIMEOUT,
    )
    .unwrap();
    assert_eq!(r.status, 401);
    assert!(!r.text().contains("SuperSecret"), "{}", r.text());
    assert!(r.text().contains("sk_live_"), "{}", r.text());

    // The right key, as Bearer and as Basic (key as user name), works.
    assert_eq!(get(&fake, "/v1/customers").status, 200);
    // base64("sk_test_other_456:")
    let r = raw_request(
        fake.addr(),
        "GET",
        "/v1/customers",
        &[("Authorization", "Basic c2tfdGVzdF9vdGhlcl80NTY6")],
        TIMEOUT,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    let reqs = fake.requests();
    let states: Vec<AuthState> = reqs.iter().map(|r| r.auth).collect();
    assert_eq!(
        states,
        vec![
            AuthState::Missing,
            AuthState::Invalid,
            AuthState::Invalid,
            AuthState::Valid,
            AuthState::Valid
        ]
    );
    assert!(reqs.iter().all(|r| r.header("authorization").is_none()));
    assert_eq!(
        reqs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![401, 401, 401, 200, 200]
    );
}

#[test]
fn every_response_has_request_id_and_headers_are_recorded() {
    let fake = FakeStripe::start(small_account());
    let r = get_with(
        &fake,
        "/v1/customers/cus_alice",
        &[
            ("Stripe-Version", "2024-06-20"),
            ("Idempotency-Key", "idem-1"),
            ("User-Agent", "selftest/1"),
        ],
    );
    assert_eq!(r.status, 200);
    let rid = r.header("request-id").unwrap().to_owned();
    assert!(rid.starts_with("req_") && rid.len() > 8, "{rid}");
    assert_eq!(r.header("stripe-version"), Some("2024-06-20"));
    let r2 = get(&fake, "/v1/customers/cus_nope");
    assert_ne!(r2.header("request-id").unwrap(), rid);
    assert_eq!(r2.header("stripe-version"), Some("2025-06-30.basil"));

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].request_id, rid);
    assert_eq!(reqs[0].stripe_version.as_deref(), Some("2024-06-20"));
    assert_eq!(reqs[0].idempotency_key.as_deref(), Some("idem-1"));
    assert_eq!(reqs[0].header("user-agent"), Some("selftest/1"));
    assert_eq!(reqs[0].path, "/v1/customers/cus_alice");
    assert_eq!(reqs[1].stripe_version, None);
    assert_eq!(reqs[1].status, 404);
    assert_eq!(fake.request_count(), 2);
    assert_eq!(fake.count_path("/v1/customers/cus_"), 2);
    assert_eq!(fake.count_where(|r| r.status == 404), 1);
    fake.reset_counters();
    assert_eq!(fake.request_count(), 0);
}

#[test]
fn pagination_three_pages_newest_first() {
    let mut account = Account::new();
    for i in 0..25 {
        // Pairs share `created`; the later-added (here also the higher id) comes first.
        account.add_customer(json!({
            "id": format!("cus_{i:03}"),
            "created": 1_700_000_000 + i / 2,
            "email": format!("c{i}@example.com"),
        }));
    }
    let fake = FakeStripe::start(account);

    let mut expected: Vec<(i64, String)> = (0..25)
        .map(|i| (1_700_000_000 + i / 2, format!("cus_{i:03}")))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let p1 = get(&fake, "/v1/customers?limit=10").json();
    assert_eq!(p1["object"], "list");
    assert_eq!(p1["url"], "/v1/customers");
    assert_eq!(p1["has_more"], true);
    let ids1 = ids(&p1);
    assert_eq!(ids1.len(), 10);

    let p2 = get(
        &fake,
        &format!("/v1/customers?limit=10&starting_after={}", ids1[9]),
    )
    .json();
    assert_eq!(p2["has_more"], true);
    let ids2 = ids(&p2);

    let p3 = get(
        &fake,
        &format!("/v1/customers?limit=10&starting_after={}", ids2[9]),
    )
    .json();
    assert_eq!(p3["has_more"], false);
    let ids3 = ids(&p3);
    assert_eq!(ids3.len(), 5);

    let all: Vec<String> = ids1.iter().chain(&ids2).chain(&ids3).cloned().collect();
    assert_eq!(all, expected, "newest first, ties added later first");
    let created: Vec<i64> = [&p1, &p2, &p3]
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap().clone())
        .map(|c| c["created"].as_i64().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]));

    // ending_before walks back.
    let back = get(
        &fake,
        &format!("/v1/customers?limit=10&ending_before={}", ids2[0]),
    )
    .json();
    assert_eq!(ids(&back), ids1);
    assert_eq!(back["has_more"], false);
    let back = get(
        &fake,
        &format!("/v1/customers?limit=3&ending_before={}", ids2[0]),
    )
    .json();
    assert_eq!(ids(&back), ids1[7..].to_vec());
    assert_eq!(back["has_more"], true);

    // Default limit is 10.
    assert_eq!(ids(&get(&fake, "/v1/customers").json()).len(), 10);
    // Email filter.
    let r = get(&fake, "/v1/customers?email=c7%40example.com").json();
    assert_eq!(ids(&r), vec!["cus_007"]);
    // created filter.
    let r = get(&fake, "/v1/customers?created[gte]=1700000011&limit=100").json();
    assert_eq!(ids(&r).len(), 3);
}

#[test]
fn limit_bounds_cursor_errors_and_unknown_parameters() {
    let fake = FakeStripe::start(Account::generate(120, 0, 1));
    for bad in ["0", "101", "-1", "abc", "1.5"] {
        let r = get(&fake, &format!("/v1/customers?limit={bad}"));
        assert_eq!(r.status, 400, "limit={bad}");
        let e = r.json();
        assert_eq!(
            e["error"]["code"], "parameter_invalid_integer",
            "limit={bad}"
        );
        assert_eq!(e["error"]["param"], "limit");
        assert_eq!(e["error"]["type"], "invalid_request_error");
    }
    let r = get(&fake, "/v1/customers?limit=100").json();
    assert_eq!(ids(&r).len(), 100);
    assert_eq!(r["has_more"], true);
    assert_eq!(ids(&get(&fake, "/v1/customers?limit=1").json()).len(), 1);
    assert_eq!(get(&fake, "/v1/subscriptions?limit=101").status, 400);

    let r = get(&fake, "/v1/customers?foo=bar");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "Received unknown parameter: foo"
    );
    assert_eq!(r.error_code().as_deref(), Some("parameter_unknown"));
    assert_eq!(get(&fake, "/v1/customers/cus_x?limit=3").status, 400);
    assert_eq!(get(&fake, "/v1/customers?created[foo]=1").status, 400);

    let r = get(&fake, "/v1/customers?starting_after=cus_doesnotexist");
    assert_eq!(r.status, 400);
    let e = r.json();
    assert_eq!(e["error"]["code"], "resource_missing");
    assert_eq!(e["error"]["param"], "starting_after");
    assert_eq!(
        get(
            &fake,
            "/v1/customers?starting_after=cus_a&ending_before=cus_b"
        )
        .status,
        400
    );
}

#[test]
fn expansion_on_lists_and_retrieve() {
    let fake = FakeStripe::start(small_account());

    let plain = get(&fake, "/v1/subscriptions/sub_active").json();
    assert_eq!(plain["default_payment_method"], "pm_alice");
    assert_eq!(plain["customer"], "cus_alice");

    for q in [
        "expand%5B%5D=data.default_payment_method",
        "expand[]=data.default_payment_method",
        "expand%5B0%5D=data.default_payment_method",
    ] {
        let r = get(&fake, &format!("/v1/subscriptions?customer=cus_alice&{q}"));
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let list = r.json();
        let sub = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "sub_active")
            .unwrap()
            .clone();
        let pm = &sub["default_payment_method"];
        assert_eq!(pm["object"], "payment_method", "{q}");
        assert_eq!(pm["id"], "pm_alice");
        assert_eq!(pm["card"]["brand"], "mastercard");
        assert_eq!(pm["card"]["last4"], "4444");
        // Subscriptions without a payment method stay null.
        assert!(
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["id"] != "sub_active")
                .all(|s| s["default_payment_method"].is_null())
        );
    }

    let r = get(
        &fake,
        "/v1/subscriptions/sub_active?expand[]=default_payment_method&expand[]=customer&expand[]=items.data.price.product",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let s = r.json();
    assert_eq!(s["default_payment_method"]["object"], "payment_method");
    assert_eq!(s["customer"]["object"], "customer");
    assert_eq!(s["customer"]["email"], "alice@example.com");
    assert_eq!(
        s["items"]["data"][0]["price"]["product"]["object"],
        "product"
    );

    let r = get(
        &fake,
        "/v1/customers/cus_alice?expand[]=invoice_settings.default_payment_method",
    );
    assert_eq!(
        r.json()["invoice_settings"]["default_payment_method"]["id"],
        "pm_alice"
    );

    // On a list the path needs `data.`; unknown fields cannot be expanded.
    let r = get(&fake, "/v1/subscriptions?expand[]=default_payment_method");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("cannot be expanded"), "{}", r.text());
    assert_eq!(
        get(&fake, "/v1/customers/cus_alice?expand[]=email").status,
        400
    );
    assert_eq!(
        get(&fake, "/v1/customers/cus_alice?expand[]=nope").status,
        400
    );
    assert_eq!(
        get(
            &fake,
            "/v1/subscriptions?expand[]=data.items.data.price.product"
        )
        .status,
        400,
        "more than 4 levels"
    );
    let r = get(
        &fake,
        "/v1/subscriptions?status=all&expand[]=total_count&limit=1",
    )
    .json();
    assert_eq!(r["total_count"], 5);
}

#[test]
fn subscription_status_and_customer_filters() {
    let fake = FakeStripe::start(small_account());
    let set = |q: &str| -> HashSet<String> {
        let r = get(&fake, &format!("/v1/subscriptions?limit=100{q}"));
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let v = r.json();
        assert_eq!(v["url"], "/v1/subscriptions");
        ids(&v).into_iter().collect()
    };
    let s = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<HashSet<_>>();

    assert_eq!(
        set(""),
        s(&["sub_active", "sub_trial", "sub_past_due", "sub_expired"]),
        "default excludes canceled"
    );
    assert_eq!(
        set("&status=all"),
        s(&[
            "sub_active",
            "sub_trial",
            "sub_past_due",
            "sub_canceled",
            "sub_expired"
        ])
    );
    assert_eq!(set("&status=canceled"), s(&["sub_canceled"]));
    assert_eq!(set("&status=trialing"), s(&["sub_trial"]));
    assert_eq!(set("&status=ended"), s(&["sub_canceled", "sub_expired"]));
    assert_eq!(
        set("&customer=cus_alice"),
        s(&["sub_active", "sub_past_due"])
    );
    assert_eq!(
        set("&customer=cus_alice&status=all"),
        s(&["sub_active", "sub_past_due", "sub_canceled"])
    );
    assert_eq!(
        set("&price=price_pro&status=canceled"),
        s(&["sub_canceled"])
    );
    assert_eq!(set("&customer=cus_nobody"), s(&[]));
    let r = get(&fake, "/v1/subscriptions?status=bogus");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "status");

    // Newest first here too.
    let all = get(&fake, "/v1/subscriptions?status=all").json();
    assert_eq!(
        ids(&all),
        vec![
            "sub_past_due",
            "sub_trial",
            "sub_expired",
            "sub_canceled",
            "sub_active"
        ]
    );

    // Object shape.
    let sub = get(&fake, "/v1/subscriptions/sub_active").json();
    assert_eq!(sub["object"], "subscription");
    assert_eq!(sub["livemode"], false);
    assert_eq!(sub["items"]["object"], "list");
    let item = &sub["items"]["data"][0];
    assert_eq!(item["object"], "subscription_item");
    assert_eq!(item["subscription"], "sub_active");
    assert_eq!(item["price"]["object"], "price");
    assert_eq!(item["price"]["id"], "price_pro");
    assert_eq!(item["price"]["unit_amount"], 2900);
    assert_eq!(item["plan"]["object"], "plan");
    assert_eq!(item["current_period_start"], 1_700_000_020);
    assert_eq!(item["current_period_end"], 1_702_592_020);
    // Defaults computed for a subscription given without periods.
    let trial = get(&fake, "/v1/subscriptions/sub_trial").json();
    let it = &trial["items"]["data"][0];
    assert!(
        it["current_period_end"].as_i64().unwrap() > it["current_period_start"].as_i64().unwrap()
    );

    // Payment methods list.
    let pms = get(&fake, "/v1/payment_methods?customer=cus_alice&type=card").json();
    assert_eq!(ids(&pms), vec!["pm_alice"]);
    assert_eq!(
        get(&fake, "/v1/payment_methods/pm_alice").json()["object"],
        "payment_method"
    );
    assert_eq!(get(&fake, "/v1/prices/price_pro").json()["object"], "price");
    assert_eq!(
        get(&fake, "/v1/products/prod_pro").json()["object"],
        "product"
    );
}

#[test]
fn retrieve_missing_deleted_and_runtime_changes() {
    let fake = FakeStripe::start(small_account());

    let r = get(&fake, "/v1/customers/cus_x");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["error"],
        json!({
            "type": "invalid_request_error",
            "code": "resource_missing",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
            "param": "id",
            "message": "No such customer: 'cus_x'"
        })
    );
    assert_eq!(
        get(&fake, "/v1/subscriptions/sub_x").json()["error"]["message"],
        "No such subscription: 'sub_x'"
    );
    assert_eq!(get(&fake, "/v1/payment_methods/pm_x").status, 404);

    // Drift: change a customer and a subscription at runtime.
    let c = fake.upsert_customer(json!({
        "id": "cus_alice", "email": "alice@new.example", "metadata": { "plan": "pro" }
    }));
    assert_eq!(
        c["metadata"],
        json!({ "clerkUserId": "user_alice", "plan": "pro" })
    );
    let r = get(&fake, "/v1/customers/cus_alice").json();
    assert_eq!(r["email"], "alice@new.example");
    assert_eq!(r["name"], "Alice");
    fake.upsert_customer(json!({ "id": "cus_alice", "metadata": { "plan": "" } }));
    assert_eq!(
        get(&fake, "/v1/customers/cus_alice").json()["metadata"],
        json!({ "clerkUserId": "user_alice" })
    );
    fake.upsert_subscription(json!({ "id": "sub_active", "status": "past_due" }));
    assert_eq!(
        get(&fake, "/v1/subscriptions/sub_active").json()["status"],
        "past_due"
    );
    let created = fake.upsert_subscription(json!({
        "customer": "cus_bob", "price": "price_new", "quantity": 3
    }));
    let new_id = created["id"].as_str().unwrap().to_owned();
    assert!(new_id.starts_with("sub_"));
    let got = get(&fake, &format!("/v1/subscriptions/{new_id}")).json();
    assert_eq!(got["items"]["data"][0]["quantity"], 3);
    assert_eq!(got["items"]["data"][0]["price"]["id"], "price_new");
    assert_eq!(
        ids(&get(&fake, "/v1/subscriptions?limit=1").json()),
        vec![new_id.clone()],
        "a new subscription is the newest"
    );

    // Delete: stub, unlisted, subscriptions canceled.
    fake.delete_customer("cus_alice");
    let r = get(&fake, "/v1/customers/cus_alice");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({ "id": "cus_alice", "object": "customer", "deleted": true })
    );
    let listed = ids(&get(&fake, "/v1/customers").json());
    assert!(!listed.contains(&"cus_alice".to_owned()));
    assert!(listed.contains(&"cus_bob".to_owned()));
    let alice_subs = get(&fake, "/v1/subscriptions?customer=cus_alice&status=all").json();
    assert!(
        alice_subs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "canceled")
    );
    assert!(ids(&get(&fake, "/v1/subscriptions?customer=cus_alice").json()).is_empty());
    // Expanding a deleted customer gives the stub.
    let s = get(&fake, "/v1/subscriptions/sub_past_due?expand[]=customer").json();
    assert_eq!(s["customer"]["deleted"], true);

    // Unknown id -> deleted stub; purge -> 404.
    fake.delete_customer("cus_ghost");
    assert_eq!(
        get(&fake, "/v1/customers/cus_ghost").json()["deleted"],
        true
    );
    assert!(fake.purge("cus_ghost"));
    assert_eq!(get(&fake, "/v1/customers/cus_ghost").status, 404);
    assert_eq!(
        fake.customer("cus_bob").unwrap()["email"],
        "bob@example.com"
    );
    assert_eq!(fake.subscriptions().len(), 6);
}

#[test]
fn search_queries_pagination_lag_and_disabled() {
    let fake = FakeStripe::start(small_account());
    let search = |q: &str| -> Resp {
        let enc: String = q
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        get(&fake, &format!("/v1/customers/search?query={enc}"))
    };

    for q in [
        "metadata['clerkUserId']:'user_bob'",
        "metadata[\"clerkUserId\"]:\"user_bob\"",
        "email:'bob@example.com'",
        "email:\"BOB@example.com\"",
        "email~'bob@' AND metadata['clerkUserId']:'user_bob'",
        "-email:'alice@example.com'",
    ] {
        let r = search(q);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let v = r.json();
        assert_eq!(v["object"], "search_result");
        assert_eq!(v["url"], "/v1/customers/search");
        assert_eq!(ids(&v), vec!["cus_bob"], "{q}");
        assert_eq!(v["has_more"], false);
        assert!(v["next_page"].is_null());
    }
    assert!(ids(&search("metadata['clerkUserId']:'user_nobody'").json()).is_empty());
    assert_eq!(
        ids(&search("email:'bob@example.com' OR email:'alice@example.com'").json()).len(),
        2
    );
    // Raw (unencoded) quotes and brackets work too.
    let r = get(
        &fake,
        "/v1/customers/search?query=metadata['clerkUserId']:'user_alice'",
    );
    assert_eq!(ids(&r.json()), vec!["cus_alice"]);

    for bad in [
        "metadata['clerkUserId']",
        "nosuchfield:'x'",
        "email:'a' AND email:'b' OR email:'c'",
        "email~'ab'",
        "",
    ] {
        let r = search(bad);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
        let e = r.json();
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(e["error"]["param"], "query");
    }
    assert_eq!(get(&fake, "/v1/customers/search").status, 400);

    // Pagination with next_page.
    let mut account = Account::new();
    for i in 0..5 {
        account.add_customer(json!({
            "id": format!("cus_s{i}"), "created": 1_700_000_000 + i,
            "metadata": { "team": "red" }
        }));
    }
    let fake2 = FakeStripe::start(account);
    let mut seen = Vec::new();
    let mut url =
        "/v1/customers/search?query=metadata%5B%27team%27%5D%3A%27red%27&limit=2".to_owned();
    loop {
        let v = get(&fake2, &url).json();
        seen.extend(ids(&v));
        if v["has_more"] == false {
            assert!(v["next_page"].is_null());
            break;
        }
        let page = v["next_page"].as_str().unwrap().to_owned();
        url = format!(
            "/v1/customers/search?query=metadata%5B%27team%27%5D%3A%27red%27&limit=2&page={page}"
        );
        assert!(seen.len() <= 5);
    }
    assert_eq!(seen, vec!["cus_s4", "cus_s3", "cus_s2", "cus_s1", "cus_s0"]);
    let v = get(
        &fake2,
        "/v1/customers/search?query=metadata%5B%27team%27%5D%3A%27red%27&limit=1&expand[]=total_count",
    )
    .json();
    assert_eq!(v["total_count"], 5);
    assert_eq!(
        get(
            &fake2,
            "/v1/customers/search?query=email%3A%27x%27&page=garbage"
        )
        .status,
        400
    );

    // Search lag: new and changed customers are not visible at once.
    fake.set_search_lag(Duration::from_millis(1000));
    fake.upsert_customer(json!({
        "id": "cus_new", "email": "new@example.com", "metadata": { "clerkUserId": "user_new" }
    }));
    fake.upsert_customer(json!({ "id": "cus_bob", "metadata": { "clerkUserId": "user_bob2" } }));
    assert!(ids(&search("metadata['clerkUserId']:'user_new'").json()).is_empty());
    assert_eq!(
        ids(&search("metadata['clerkUserId']:'user_bob'").json()),
        vec!["cus_bob"],
        "the index still has the old value"
    );
    assert!(ids(&search("metadata['clerkUserId']:'user_bob2'").json()).is_empty());
    // The list API is immediate.
    assert!(ids(&get(&fake, "/v1/customers?limit=100").json()).contains(&"cus_new".to_owned()));
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        ids(&search("metadata['clerkUserId']:'user_new'").json()),
        vec!["cus_new"]
    );
    assert_eq!(
        ids(&search("metadata['clerkUserId']:'user_bob2'").json()),
        vec!["cus_bob"]
    );
    assert!(ids(&search("metadata['clerkUserId']:'user_bob'").json()).is_empty());

    // Disabled search.
    fake.set_search_enabled(false);
    let r = search("email:'bob@example.com'");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    fake.set_search_enabled(true);
    assert_eq!(search("email:'bob@example.com'").status, 200);

    // Search needs API version 2020-08-27 or later.
    let r = get_with(
        &fake,
        "/v1/customers/search?query=email%3A%27bob%40example.com%27",
        &[("Stripe-Version", "2019-12-03")],
    );
    assert_eq!(r.status, 400);
}

#[test]
fn subscription_shape_follows_stripe_version() {
    let fake = FakeStripe::start(small_account());
    let fetch = |ver: Option<&str>| -> Value {
        let headers: Vec<(&str, &str)> = ver.map(|v| ("Stripe-Version", v)).into_iter().collect();
        let r = get_with(&fake, "/v1/subscriptions/sub_active", &headers);
        assert_eq!(r.status, 200, "{}", r.text());
        if let Some(v) = ver {
            assert_eq!(r.header("stripe-version"), Some(v));
        }
        r.json()
    };

    for ver in [
        None,
        Some("2025-03-31.basil"),
        Some("2025-06-30.basil"),
        Some("2026-01-28.clover"),
    ] {
        let s = fetch(ver);
        assert!(s.get("current_period_start").is_none(), "{ver:?}");
        assert!(s.get("current_period_end").is_none(), "{ver:?}");
        assert_eq!(s["items"]["data"][0]["current_period_start"], 1_700_000_020);
        assert_eq!(s["items"]["data"][0]["current_period_end"], 1_702_592_020);
    }
    for ver in ["2025-02-24.acacia", "2024-06-20", "2020-08-27"] {
        let s = fetch(Some(ver));
        assert_eq!(s["current_period_start"], 1_700_000_020, "{ver}");
        assert_eq!(s["current_period_end"], 1_702_592_020, "{ver}");
        assert!(
            s["items"]["data"][0].get("current_period_start").is_none(),
            "{ver}"
        );
    }
    // Lists too.
    let r = get_with(
        &fake,
        "/v1/subscriptions?customer=cus_alice",
        &[("Stripe-Version", "2024-06-20")],
    )
    .json();
    assert!(
        r["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["current_period_end"].is_i64())
    );

    let r = get_with(
        &fake,
        "/v1/subscriptions/sub_active",
        &[("Stripe-Version", "not-a-version")],
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Invalid Stripe API version"));
}

#[test]
fn rate_limit_429_and_window_counting() {
    let fake = FakeStripe::start(small_account());
    fake.set_rate_limit(Some(5));
    let started = Instant::now();
    let statuses: Vec<u16> = (0..12)
        .map(|_| get(&fake, "/v1/customers?limit=1").status)
        .collect();
    let elapsed = started.elapsed();
    let n429 = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(&statuses[..5], &[200; 5]);
    if elapsed < Duration::from_millis(900) {
        assert_eq!(n429, 7, "{statuses:?}");
        assert_eq!(fake.max_requests_in_window(Duration::from_secs(1)), 12);
    }
    assert!(n429 > 0);
    assert_eq!(fake.rate_limited_count(), n429);
    assert_eq!(fake.count_where(|r| r.status == 429), n429);
    assert_eq!(
        fake.count_where(|r| r.fault.as_deref() == Some("rate_limit")),
        n429
    );

    let r = get(&fake, "/v1/customers");
    if r.status == 429 {
        let e = r.json();
        assert_eq!(e["error"]["code"], "rate_limit");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert!(r.header("request-id").is_some());
    }
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(get(&fake, "/v1/customers").status, 200);
    fake.set_rate_limit(None);

    // max_requests_in_window over two bursts.
    fake.reset_counters();
    assert_eq!(fake.rate_limited_count(), 0);
    for _ in 0..3 {
        get(&fake, "/v1/customers");
    }
    std::thread::sleep(Duration::from_millis(1300));
    for _ in 0..4 {
        get(&fake, "/v1/customers");
    }
    assert_eq!(fake.request_count(), 7);
    assert_eq!(fake.max_requests_in_window(Duration::from_secs(1)), 4);
    assert_eq!(fake.max_requests_in_window(Duration::from_secs(60)), 7);
    assert_eq!(fake.max_requests_in_window(Duration::ZERO), 0);

    // Search-only rate limit.
    fake.set_search_rate_limit(Some(2));
    let s: Vec<u16> = (0..4)
        .map(|_| get(&fake, "/v1/customers/search?query=email%3A%27x%40y.z%27").status)
        .collect();
    assert_eq!(&s[..2], &[200, 200]);
    assert!(s.contains(&429));
    assert_eq!(get(&fake, "/v1/customers").status, 200);
}

#[test]
fn queued_faults() {
    let fake = FakeStripe::start(small_account());

    fake.push_fault(Fault::Status {
        code: 500,
        should_retry: Some(true),
        retry_after: Some(2),
    });
    let r = get(&fake, "/v1/customers");
    assert_eq!(r.status, 500);
    assert_eq!(r.header("stripe-should-retry"), Some("true"));
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.json()["error"]["type"], "api_error");
    assert_eq!(get(&fake, "/v1/customers").status, 200, "used up");

    // Path filter and count.
    fake.push_fault(
        FaultRule::new(Fault::Status {
            code: 503,
            should_retry: Some(false),
            retry_after: None,
        })
        .times(2)
        .on_path("/v1/subscriptions"),
    );
    assert_eq!(fake.pending_faults(), 1);
    assert_eq!(get(&fake, "/v1/customers").status, 200);
    let r = get(&fake, "/v1/subscriptions");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("stripe-should-retry"), Some("false"));
    assert_eq!(get(&fake, "/v1/subscriptions/sub_active").status, 503);
    assert_eq!(get(&fake, "/v1/subscriptions").status, 200);
    assert_eq!(fake.pending_faults(), 0);

    // 429 fault counts as rate limited.
    fake.push_fault(Fault::status(429));
    assert_eq!(get(&fake, "/v1/customers").status, 429);
    assert_eq!(fake.rate_limited_count(), 1);

    // Truncated body: 200, half the JSON, consistent Content-Length.
    let full = get(&fake, "/v1/customers/cus_alice");
    fake.push_fault(Fault::TruncatedBody);
    let r = get(&fake, "/v1/customers/cus_alice");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length")
            .map(|v| v.parse::<usize>().unwrap()),
        Some(r.body.len())
    );
    assert_eq!(r.body.len(), full.body.len() / 2);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    assert!(full.body.starts_with(&r.body));

    // HTML from a proxy.
    fake.push_fault(Fault::Html);
    let r = get(&fake, "/v1/customers");
    assert_eq!(r.status, 502);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("502 Bad Gateway"));

    // Raw.
    fake.push_fault(Fault::Raw {
        status: 200,
        content_type: "application/json".into(),
        body: "{\"object\":\"list\"".into(),
    });
    assert_eq!(get(&fake, "/v1/customers").text(), "{\"object\":\"list\"");

    // A delay longer than the client's timeout.
    fake.push_fault(Fault::Timeout(Duration::from_secs(3)).on_path("/v1/customers"));
    let started = Instant::now();
    let res = raw_request(
        fake.addr(),
        "GET",
        "/v1/customers",
        &[("Authorization", "Bearer sk_test_fake_123")],
        Duration::from_millis(300),
    );
    assert!(res.is_err(), "expected a client timeout, got {res:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.fault.as_deref() == Some("timeout 3000ms"))
    );

    // Forever + clear.
    fake.push_fault(Fault::status(502).forever());
    assert_eq!(get(&fake, "/v1/customers").status, 502);
    assert_eq!(get(&fake, "/v1/customers").status, 502);
    fake.clear_faults();
    assert_eq!(get(&fake, "/v1/customers").status, 200);

    // Latency applies to every request.
    fake.set_latency(Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(get(&fake, "/v1/customers").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    fake.set_latency(Duration::ZERO);
}

#[test]
fn generated_accounts_are_deterministic_and_realistic() {
    const NOW: i64 = 1_760_000_000;
    let a = Account::generate_at(300, 400, 42, NOW);
    let b = Account::generate_at(300, 400, 42, NOW);
    assert_eq!(a.customers, b.customers);
    assert_eq!(a.subscriptions, b.subscriptions);
    assert_eq!(a.payment_methods, b.payment_methods);
    let c = Account::generate_at(300, 400, 43, NOW);
    assert_ne!(a.customers[0]["id"], c.customers[0]["id"]);
    // Ids stay the same with `generate` (only timestamps move with the clock).
    let d = Account::generate(300, 400, 42);
    assert_eq!(a.customer_ids(), d.customer_ids());

    assert_eq!(a.customers.len(), 300);
    assert_eq!(a.subscriptions.len(), 400);
    let with_clerk = a
        .customers
        .iter()
        .enumerate()
        .filter(|(i, c)| c["metadata"]["clerkUserId"] == format!("user_{i}"))
        .count();
    assert!((270..300).contains(&with_clerk), "{with_clerk}");
    assert_eq!(
        a.find_customer_by_clerk_id("user_5")
            .map(|c| c["id"].clone()),
        a.customers[5]["metadata"]["clerkUserId"]
            .is_string()
            .then(|| a.customers[5]["id"].clone())
    );
    for cus in &a.customers {
        assert_eq!(cus["object"], "customer");
        assert_eq!(cus["livemode"], false);
        assert!(cus["id"].as_str().unwrap().starts_with("cus_"));
        assert!(cus["created"].as_i64().unwrap() < NOW);
    }

    let mut per_customer: HashMap<String, usize> = HashMap::new();
    let mut statuses: HashMap<String, usize> = HashMap::new();
    let pms: HashMap<String, &Value> = a
        .payment_methods
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_owned(), p))
        .collect();
    for s in &a.subscriptions {
        *per_customer
            .entry(s["customer"].as_str().unwrap().to_owned())
            .or_default() += 1;
        *statuses
            .entry(s["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
        assert!(
            s.get("current_period_start").is_none(),
            "stored in basil shape"
        );
        let item = &s["items"]["data"][0];
        let (start, end) = (
            item["current_period_start"].as_i64().unwrap(),
            item["current_period_end"].as_i64().unwrap(),
        );
        assert!(end > start, "{s}");
        assert!(s["created"].as_i64().unwrap() < NOW);
        assert!(item["price"]["id"].as_str().unwrap().starts_with("price_"));
        if s["status"] == "active" || s["status"] == "past_due" {
            assert!(start <= NOW && NOW < end, "current period contains now");
        }
        match s["default_payment_method"].as_str() {
            Some(pm) => {
                let pm = pms[pm];
                assert_eq!(pm["customer"], s["customer"]);
                assert!(
                    ["visa", "mastercard", "amex"].contains(&pm["card"]["brand"].as_str().unwrap())
                );
                assert_eq!(pm["card"]["last4"].as_str().unwrap().len(), 4);
            }
            None => assert!(
                ["incomplete", "incomplete_expired"].contains(&s["status"].as_str().unwrap())
            ),
        }
    }
    for st in ["active", "trialing", "past_due", "canceled", "incomplete"] {
        assert!(
            statuses.get(st).copied().unwrap_or(0) > 0,
            "{st}: {statuses:?}"
        );
    }
    let zero = a
        .customers
        .iter()
        .filter(|c| !per_customer.contains_key(c["id"].as_str().unwrap()))
        .count();
    let many = per_customer.values().filter(|n| **n >= 2).count();
    assert!(zero > 0 && many > 0, "zero={zero} many={many}");

    // Served: listing everything finds all of them.
    let fake = FakeStripe::start(a.clone());
    let mut all = Vec::new();
    let mut url = "/v1/subscriptions?status=all&limit=100".to_owned();
    loop {
        let v = get(&fake, &url).json();
        let page = ids(&v);
        all.extend(page.clone());
        if v["has_more"] == false {
            break;
        }
        url = format!(
            "/v1/subscriptions?status=all&limit=100&starting_after={}",
            page.last().unwrap()
        );
    }
    assert_eq!(all.len(), 400);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 400);
    assert_eq!(fake.count_path("/v1/subscriptions"), 4);
}

#[test]
fn odd_requests_do_not_panic() {
    let fake = FakeStripe::start(small_account());
    let auth = format!("Bearer {}", fake.api_key());
    let h = [("Authorization", auth.as_str())];
    let cases: &[(&str, &str, u16)] = &[
        ("POST", "/v1/customers", 404),
        ("DELETE", "/v1/customers/cus_alice", 404),
        ("GET", "/", 404),
        ("GET", "/v1", 404),
        ("GET", "/v1/customers/", 404),
        ("GET", "/v1/customers/cus_alice/extra", 404),
        ("GET", "/v1/customers/%ZZ%", 404),
        ("GET", "/v1/customers?limit=%zz", 400),
        ("GET", "/v1/customers?&&=&limit", 400),
        ("GET", "/v1/customers?limit=99999999999999999999999", 400),
        ("GET", "/v1/customers?expand=data", 400),
        ("GET", "/v1/customers?expand[]=", 200),
        ("GET", "/v1/customers?expand[]=data..x", 400),
        ("GET", "/v1/customers?expand[x]=data", 400),
        ("GET", "/v1/customers?email=%E2%82%AC%", 200),
        ("GET", "/v1/customers/search?query=metadata%5B", 400),
        ("GET", "/v1/customers/search?query=%27%27%27", 400),
        ("GET", "/v1/customers/search?query=created%3E%3Dabc", 400),
        ("GET", "/v1/customers/search?query=created%3E%3D1", 200),
        ("GET", "/v1/customers/search?query=-%20", 400),
        ("GET", "/v1/customers/search?query=email%3Anull", 200),
        (
            "GET",
            "/v1/customers/search?page=pg_zz&query=email%3A%27a%27",
            400,
        ),
        ("GET", "/v1/subscriptions?status=", 200),
    ];
    for (method, target, want) in cases {
        let r = raw_request(fake.addr(), method, target, &h, TIMEOUT)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        assert_eq!(r.status, *want, "{method} {target}: {}", r.text());
        if r.status != 200 {
            assert!(
                r.json()["error"]["message"].is_string(),
                "{method} {target}"
            );
        }
    }
    // Weird auth headers.
    for a in [
        "Bearer",
        "Bearer ",
        "Basic !!!",
        "Token abc",
        "bearer sk_test_fake_123",
        "Bé",
    ] {
        let r = raw_request(
            fake.addr(),
            "GET",
            "/v1/customers",
            &[("Authorization", a)],
            TIMEOUT,
        )
        .unwrap();
        let want = if a == "bearer sk_test_fake_123" {
            200
        } else {
            401
        };
        assert_eq!(r.status, want, "{a:?}");
    }
    // A long garbage id.
    let long = format!("/v1/customers/cus_{}", "x".repeat(5000));
    assert_eq!(get(&fake, &long).status, 404);
    // Still alive.
    assert_eq!(get(&fake, "/v1/customers").status, 200);
}

#[test]
fn builder_and_drop_stops_the_server() {
    let fake = FakeStripe::builder()
        .account(Account::generate(5, 5, 9).with_api_key("sk_test_builder"))
        .latency(Duration::from_millis(20))
        .search_enabled(false)
        .start();
    assert_eq!(fake.api_key(), "sk_test_builder");
    assert!(fake.url().starts_with("http://127.0.0.1:"));
    assert_eq!(fake.url(), format!("http://{}", fake.addr()));
    let started = Instant::now();
    assert_eq!(get(&fake, "/v1/customers").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(
        get(&fake, "/v1/customers/search?query=email%3A%27a%27").status,
        400
    );
    let addr = fake.addr();
    // An in-flight slow request must not block the drop.
    fake.push_fault(Fault::Timeout(Duration::from_secs(30)));
    let slow = std::thread::spawn(move || {
        raw_request(addr, "GET", "/v1/customers", &[], Duration::from_secs(20))
    });
    std::thread::sleep(Duration::from_millis(200));
    let dropped = Instant::now();
    drop(fake);
    assert!(dropped.elapsed() < Duration::from_secs(5));
    assert!(slow.join().unwrap().is_err(), "the connection was dropped");
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn concurrent_clients_and_sliding_window_limit() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FakeStripe>();

    let fake = FakeStripe::start(Account::generate(30, 40, 3));
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let fake = &fake;
                scope.spawn(move || {
                    (0..10)
                        .map(|_| get(fake, "/v1/subscriptions?limit=5").status)
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(statuses.len(), 80);
    assert!(statuses.iter().all(|s| *s == 200));
    assert_eq!(fake.request_count(), 80);

    // With a limit, no 1-second window ever holds more than N accepted requests.
    fake.reset_counters();
    fake.set_rate_limit(Some(10));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..6 {
            let fake = &fake;
            scope.spawn(move || {
                while started.elapsed() < Duration::from_millis(1600) {
                    get(fake, "/v1/customers?limit=1");
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
    });
    let mut ok: Vec<Instant> = fake
        .requests()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.at)
        .collect();
    ok.sort();
    assert!(ok.len() >= 10, "{}", ok.len());
    let mut start = 0;
    for (end, t) in ok.iter().enumerate() {
        while t.duration_since(ok[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        assert!(end - start < 10, "more than 10 accepted within 1 s");
    }
    assert_eq!(fake.rate_limited_count(), fake.request_count() - ok.len());
    assert!(fake.rate_limited_count() > 0);
}

/// Stripe breaks `created` ties in its own order, not by id; the fake's is
/// "added later first", kept across updates, and every cursor follows it.
#[test]
fn ties_are_listed_in_insertion_order_not_id_order() {
    const T: i64 = 1_700_000_000;
    // Added in descending id order: id order and insertion order disagree.
    let account = Account::new()
        .customer(json!({"id": "cus_old", "created": T - 1, "metadata": {"team": "red"}}))
        .customer(json!({"id": "cus_z", "created": T, "metadata": {"team": "red"}}))
        .customer(json!({"id": "cus_m", "created": T, "metadata": {"team": "red"}}))
        .customer(json!({"id": "cus_a", "created": T, "metadata": {"team": "red"}}))
        .subscription(
            json!({"id": "sub_B", "customer": "cus_z", "status": "canceled",
            "created": T + 10, "price": "price_p", "canceled_at": T + 20, "ended_at": T + 20}),
        )
        .subscription(
            json!({"id": "sub_A", "customer": "cus_z", "status": "active",
            "created": T + 10, "price": "price_p"}),
        );
    let fake = FakeStripe::start(account);
    let order = ["cus_a", "cus_m", "cus_z", "cus_old"];

    let all = ids(&get(&fake, "/v1/customers?limit=100").json());
    assert_eq!(all, order, "same second: the customer added last first");
    let listed: Vec<Value> = fake.customers().iter().map(|c| c["id"].clone()).collect();
    assert_eq!(listed, order, "fake.customers() in list order");

    // starting_after walks the ties one by one; ending_before walks back.
    let mut walked = Vec::new();
    let mut url = "/v1/customers?limit=1".to_owned();
    loop {
        let v = get(&fake, &url).json();
        let page = ids(&v);
        walked.extend(page.clone());
        if v["has_more"] == false {
            break;
        }
        url = format!("/v1/customers?limit=1&starting_after={}", page[0]);
    }
    assert_eq!(walked, order);
    assert_eq!(
        ids(&get(&fake, "/v1/customers?limit=2&starting_after=cus_m").json()),
        ["cus_z", "cus_old"]
    );
    let back = get(&fake, "/v1/customers?limit=2&ending_before=cus_old").json();
    assert_eq!(ids(&back), ["cus_m", "cus_z"]);
    assert_eq!(back["has_more"], true);

    // The user's subscription: what `status=all&limit=1` answers first.
    let latest = "/v1/subscriptions?customer=cus_z&status=all&limit=1";
    let v = get(&fake, latest).json();
    assert_eq!(
        ids(&v),
        ["sub_A"],
        "added after sub_B, though sub_A < sub_B"
    );
    assert_eq!(v["data"][0]["status"], "active");
    assert_eq!(v["has_more"], true);
    assert_eq!(
        ids(&get(&fake, &format!("{latest}&starting_after=sub_A")).json()),
        ["sub_B"]
    );

    // An update keeps the object's place; a new object in the same second goes first.
    fake.upsert_subscription(json!({"id": "sub_B", "metadata": {"touched": "yes"}}));
    fake.upsert_customer(json!({"id": "cus_z", "email": "z@example.com"}));
    assert_eq!(ids(&get(&fake, latest).json()), ["sub_A"]);
    assert_eq!(ids(&get(&fake, "/v1/customers?limit=100").json()), order);
    fake.upsert_customer(json!({"id": "cus_0", "created": T, "metadata": {"team": "red"}}));
    assert_eq!(
        ids(&get(&fake, "/v1/customers?limit=100").json()),
        ["cus_0", "cus_a", "cus_m", "cus_z", "cus_old"]
    );

    // Search pages follow the same order.
    let mut seen = Vec::new();
    let q = "/v1/customers/search?query=metadata%5B%27team%27%5D%3A%27red%27&limit=2";
    let mut url = q.to_owned();
    loop {
        let v = get(&fake, &url).json();
        seen.extend(ids(&v));
        match v["next_page"].as_str() {
            Some(page) => url = format!("{q}&page={page}"),
            None => break,
        }
    }
    assert_eq!(seen, ["cus_0", "cus_a", "cus_m", "cus_z", "cus_old"]);

    // A deleted customer: the stub, unlisted, its subscriptions canceled and
    // still listed in the same order.
    fake.delete_customer("cus_z");
    assert_eq!(
        get(&fake, "/v1/customers/cus_z").json(),
        json!({"id": "cus_z", "object": "customer", "deleted": true})
    );
    assert!(!ids(&get(&fake, "/v1/customers?limit=100").json()).contains(&"cus_z".to_owned()));
    let v = get(
        &fake,
        &format!("{latest}&expand[]=data.default_payment_method"),
    );
    assert_eq!(v.status, 200, "{}", v.text());
    let v = v.json();
    assert_eq!(ids(&v), ["sub_A"]);
    assert_eq!(v["data"][0]["status"], "canceled");
    assert_eq!(v["data"][0]["customer"], "cus_z");
    let live = get(&fake, "/v1/subscriptions?customer=cus_z").json();
    assert!(ids(&live).is_empty(), "no live subscription left");
}

// ---------------------------------------------------------------------------
// Event log
// ---------------------------------------------------------------------------

const T0: i64 = 1_750_000_000;

fn event_types(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect()
}

/// The ids of `fake.events()`, newest first.
fn log_ids(fake: &FakeStripe) -> Vec<String> {
    fake.events()
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Asserts the envelope Stripe gives every event; returns `data.object`.
fn assert_event_shape(event: &Value, event_type: &str, created: i64) -> Value {
    let keys: Vec<&str> = event
        .as_object()
        .expect("event object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "object",
            "api_version",
            "created",
            "data",
            "livemode",
            "pending_webhooks",
            "request",
            "type"
        ],
        "{event}"
    );
    assert!(event["id"].as_str().expect("id").starts_with("evt_1"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["api_version"], "2025-06-30.basil");
    assert_eq!(event["created"], created);
    assert_eq!(event["livemode"], false);
    assert_eq!(event["pending_webhooks"], 0);
    assert_eq!(
        event["request"],
        json!({"id": null, "idempotency_key": null})
    );
    assert_eq!(event["type"], event_type);
    let updated = event_type.ends_with(".updated") || event_type.ends_with(".detached");
    assert_eq!(
        event["data"].get("previous_attributes").is_some(),
        updated,
        "previous_attributes only on updates: {event}"
    );
    event["data"]["object"].clone()
}

/// Walks `/v1/events?<query>` page by page with `starting_after`; returns the
/// ids and the number of requests made.
fn walk_events(fake: &FakeStripe, query: &str) -> (Vec<String>, usize) {
    let mut all = Vec::new();
    let mut requests = 0;
    let mut url = format!("/v1/events?{query}");
    loop {
        let r = get(fake, &url);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        requests += 1;
        let v = r.json();
        let page = ids(&v);
        all.extend(page.clone());
        if v["has_more"] == false {
            break;
        }
        let last = page.last().expect("has_more with an empty page");
        url = format!("/v1/events?{query}&starting_after={last}");
    }
    (all, requests)
}

#[test]
fn account_loaded_at_start_records_no_events() {
    let fake = FakeStripe::start(Account::generate(30, 40, 3));
    assert!(fake.events().is_empty());
    let r = get(&fake, "/v1/events?limit=100");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"object": "list", "data": [], "has_more": false, "url": "/v1/events"})
    );
    assert_eq!(fake.count_path("/v1/events"), 1);

    // The first runtime change is the first event.
    fake.upsert_customer(json!({"id": "cus_new"}));
    assert_eq!(
        event_types(&get(&fake, "/v1/events").json()),
        ["customer.created"]
    );
}

#[test]
fn runtime_changes_record_stripe_shaped_events() {
    let fake = FakeStripe::start(small_account());
    fake.set_clock(Some(T0));

    // customer.created: the full object, stamped with the fake's clock.
    let c = fake.upsert_customer(json!({
        "id": "cus_carol", "email": "carol@example.com", "metadata": {"clerkUserId": "user_carol"}
    }));
    assert_eq!(c["created"], T0, "new objects take the fake's clock");
    let created = fake.events()[0].clone();
    let obj = assert_event_shape(&created, "customer.created", T0);
    assert_eq!(obj, fake.customer("cus_carol").expect("stored"));

    // customer.updated: previous_attributes holds old values, recursing into metadata.
    fake.advance_clock(1);
    fake.upsert_customer(json!({
        "id": "cus_carol", "email": "c@example.com", "metadata": {"plan": "pro"}
    }));
    let updated = fake.events()[0].clone();
    let obj = assert_event_shape(&updated, "customer.updated", T0 + 1);
    assert_eq!(obj["email"], "c@example.com");
    assert_eq!(
        obj["metadata"],
        json!({"clerkUserId": "user_carol", "plan": "pro"})
    );
    assert_eq!(
        updated["data"]["previous_attributes"],
        json!({"email": "carol@example.com", "metadata": {"plan": null}})
    );
    // A no-op update records nothing (Stripe sends no event for it).
    fake.upsert_customer(json!({"id": "cus_carol", "email": "c@example.com"}));
    assert_eq!(fake.events().len(), 2);

    // Subscriptions: created, updated (items reported whole), deleted on cancel.
    fake.advance_clock(1);
    let s = fake.upsert_subscription(json!({
        "id": "sub_carol", "customer": "cus_carol", "price": "price_pro",
        "metadata": {"clerkUserId": "user_carol"}
    }));
    assert_eq!(s["created"], T0 + 2);
    let obj = assert_event_shape(&fake.events()[0], "customer.subscription.created", T0 + 2);
    assert_eq!(obj, s);
    assert!(obj.get("current_period_start").is_none(), "basil shape");
    assert!(obj["items"]["data"][0]["current_period_start"].is_i64());

    fake.upsert_subscription(json!({"id": "sub_carol", "cancel_at_period_end": true}));
    let ev = fake.events()[0].clone();
    let obj = assert_event_shape(&ev, "customer.subscription.updated", T0 + 2);
    assert_eq!(obj["cancel_at_period_end"], true);
    assert_eq!(
        ev["data"]["previous_attributes"],
        json!({"cancel_at_period_end": false})
    );
    fake.upsert_subscription(json!({"id": "sub_carol", "quantity": 3}));
    let ev = fake.events()[0].clone();
    assert_event_shape(&ev, "customer.subscription.updated", T0 + 2);
    let prev_items = &ev["data"]["previous_attributes"]["items"];
    assert_eq!(prev_items["object"], "list", "lists are given whole");
    assert_eq!(prev_items["data"][0]["quantity"], 1);

    fake.advance_clock(1);
    fake.upsert_subscription(json!({"id": "sub_carol", "status": "canceled"}));
    let obj = assert_event_shape(&fake.events()[0], "customer.subscription.deleted", T0 + 3);
    assert_eq!(obj["status"], "canceled");
    // An ended subscription is not canceled (or reported) again.
    fake.cancel_subscription("sub_carol");
    assert_eq!(fake.events().len(), 6);
    let c = fake.cancel_subscription("sub_trial");
    assert_eq!(c["status"], "canceled");
    assert_eq!(c["canceled_at"], T0 + 3);
    let obj = assert_event_shape(&fake.events()[0], "customer.subscription.deleted", T0 + 3);
    assert_eq!(obj["id"], "sub_trial");

    // invoice.paid: customer, subscription and its metadata in the basil place.
    fake.upsert_subscription(
        json!({"id": "sub_active", "metadata": {"clerkUserId": "user_alice"}}),
    );
    let ev = fake.record_invoice_paid("sub_active");
    let inv = assert_event_shape(&ev, "invoice.paid", T0 + 3);
    assert!(inv["id"].as_str().expect("id").starts_with("in_"));
    assert_eq!(inv["object"], "invoice");
    assert_eq!(inv["customer"], "cus_alice");
    assert_eq!(inv["customer_email"], "alice@example.com");
    assert_eq!(inv["status"], "paid");
    assert_eq!(inv["amount_paid"], 2900);
    assert_eq!(inv["parent"]["type"], "subscription_details");
    assert_eq!(
        inv["parent"]["subscription_details"],
        json!({"metadata": {"clerkUserId": "user_alice"}, "subscription": "sub_active"})
    );
    assert_eq!(
        inv["subscription"],
        Value::Null,
        "basil: moved under parent"
    );
    assert_eq!(
        inv["lines"]["data"][0]["parent"]["subscription_item_details"]["subscription"],
        "sub_active"
    );

    // Payment methods: attached when they gain a customer, then updated.
    fake.upsert_payment_method(json!({"id": "pm_carol", "customer": "cus_carol"}));
    let obj = assert_event_shape(&fake.events()[0], "payment_method.attached", T0 + 3);
    assert_eq!(obj["customer"], "cus_carol");
    fake.upsert_payment_method(json!({"id": "pm_carol", "customer": null}));
    let ev = fake.events()[0].clone();
    assert_event_shape(&ev, "payment_method.detached", T0 + 3);
    assert_eq!(
        ev["data"]["previous_attributes"],
        json!({"customer": "cus_carol"})
    );

    // Any other event, for routing tests.
    let other = fake.record_event(
        "checkout.session.completed",
        json!({"id": "cs_1", "object": "checkout.session"}),
        None,
    );
    assert_event_shape(&other, "checkout.session.completed", T0 + 3);

    // Over HTTP: the same events, newest first; retrieve by id.
    let log = fake.events();
    let listed = get(&fake, "/v1/events?limit=100").json();
    assert_eq!(listed["data"], Value::Array(log.clone()));
    assert_eq!(
        event_types(&listed)[..3],
        [
            "checkout.session.completed",
            "payment_method.detached",
            "payment_method.attached"
        ]
    );
    let id = log[5]["id"].as_str().expect("id");
    assert_eq!(get(&fake, &format!("/v1/events/{id}")).json(), log[5]);
    assert_eq!(fake.event(id).as_ref(), Some(&log[5]));
    let r = get(&fake, "/v1/events/evt_missing");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code().as_deref(), Some("resource_missing"));
    assert_eq!(r.json()["error"]["message"], "No such event: 'evt_missing'");

    fake.clear_events();
    assert!(fake.events().is_empty());
    assert!(ids(&get(&fake, "/v1/events").json()).is_empty());
}

#[test]
fn events_follow_the_event_api_version() {
    let fake = FakeStripe::start(small_account());
    fake.set_event_api_version("2024-06-20");
    fake.upsert_subscription(json!({"id": "sub_active", "metadata": {"k": "v"}}));
    let ev = fake.events()[0].clone();
    assert_eq!(ev["api_version"], "2024-06-20");
    let obj = &ev["data"]["object"];
    assert!(
        obj["current_period_start"].is_i64(),
        "pre-basil shape: {obj}"
    );
    assert!(
        obj["items"]["data"][0]
            .get("current_period_start")
            .is_none()
    );
    assert_eq!(
        ev["data"]["previous_attributes"],
        json!({"metadata": {"k": null}})
    );

    let inv = fake.record_invoice_paid("sub_active")["data"]["object"].clone();
    assert_eq!(inv["subscription"], "sub_active");
    assert_eq!(inv["subscription_details"], json!({"metadata": {"k": "v"}}));
    assert!(inv.get("parent").is_none(), "{inv}");
    assert_eq!(inv["lines"]["data"][0]["subscription"], "sub_active");

    // Already recorded events keep the version they were rendered with.
    fake.set_event_api_version("2025-06-30.basil");
    fake.upsert_customer(json!({"id": "cus_bob", "name": "Bob"}));
    let versions: Vec<Value> = fake
        .events()
        .iter()
        .map(|e| e["api_version"].clone())
        .collect();
    assert_eq!(
        versions,
        [
            json!("2025-06-30.basil"),
            json!("2024-06-20"),
            json!("2024-06-20")
        ]
    );
}

#[test]
fn events_of_the_same_second_are_listed_newest_first() {
    let fake = FakeStripe::start(Account::new());
    fake.set_clock(Some(T0));
    // Ids are random, so insertion order and id order disagree somewhere.
    for i in 0..6 {
        fake.upsert_customer(json!({"id": format!("cus_{i}")}));
    }
    fake.advance_clock(5);
    fake.upsert_customer(json!({"id": "cus_later"}));
    fake.advance_clock(-10);
    fake.upsert_customer(json!({"id": "cus_backdated"}));

    let objects: Vec<Value> = fake
        .events()
        .iter()
        .map(|e| e["data"]["object"]["id"].clone())
        .collect();
    assert_eq!(
        objects,
        [
            "cus_later",
            "cus_5",
            "cus_4",
            "cus_3",
            "cus_2",
            "cus_1",
            "cus_0",
            "cus_backdated"
        ]
        .map(|s| json!(s)),
        "created desc, then the event recorded later first"
    );
    let created: Vec<Value> = fake.events().iter().map(|e| e["created"].clone()).collect();
    assert_eq!(created[0], T0 + 5);
    assert!(created[1..7].iter().all(|c| *c == T0));
    assert_eq!(created[7], T0 - 5);
    let log = log_ids(&fake);
    assert_eq!(
        log.iter().collect::<HashSet<_>>().len(),
        log.len(),
        "unique ids"
    );

    // Cursors walk the ties one by one, both ways.
    let (walked, requests) = walk_events(&fake, "limit=1");
    assert_eq!(walked, log);
    assert_eq!(requests, log.len());
    let back = get(
        &fake,
        &format!("/v1/events?limit=3&ending_before={}", log[4]),
    )
    .json();
    assert_eq!(ids(&back), log[1..4]);
    assert_eq!(back["has_more"], true);
    assert_eq!(fake.now_unix(), T0 - 5);
}

#[test]
fn events_page_by_100_with_starting_after() {
    let fake = FakeStripe::start(Account::new());
    fake.set_clock(Some(T0));
    for i in 0..250 {
        // Seven events a second: ties inside and across page boundaries.
        if i % 7 == 0 {
            fake.advance_clock(1);
        }
        fake.upsert_customer(json!({"id": format!("cus_{i:03}")}));
    }
    let log = log_ids(&fake);
    assert_eq!(log.len(), 250);

    fake.reset_counters();
    let (walked, requests) = walk_events(&fake, "limit=100");
    assert_eq!(walked, log, "three pages, in list order, nothing twice");
    assert_eq!(requests, 3);
    assert_eq!(fake.count_path("/v1/events"), 3);
    let sizes: Vec<usize> = [
        "/v1/events?limit=100".to_owned(),
        format!("/v1/events?limit=100&starting_after={}", log[99]),
        format!("/v1/events?limit=100&starting_after={}", log[199]),
    ]
    .iter()
    .map(|u| ids(&get(&fake, u).json()).len())
    .collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(
        ids(&get(&fake, "/v1/events").json()),
        log[..10],
        "default limit 10"
    );

    // Errors like the other lists.
    for bad in ["0", "101", "x"] {
        let r = get(&fake, &format!("/v1/events?limit={bad}"));
        assert_eq!(r.status, 400, "limit={bad}");
        assert_eq!(r.error_code().as_deref(), Some("parameter_invalid_integer"));
        assert_eq!(r.json()["error"]["param"], "limit");
    }
    let r = get(&fake, "/v1/events?starting_after=evt_unknown");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code().as_deref(), Some("resource_missing"));
    assert_eq!(r.json()["error"]["param"], "starting_after");
    let r = get(&fake, "/v1/events?ending_before=evt_unknown");
    assert_eq!(r.json()["error"]["param"], "ending_before");
    let both = format!(
        "/v1/events?starting_after={}&ending_before={}",
        log[1], log[0]
    );
    assert_eq!(get(&fake, &both).status, 400);
    let r = get(&fake, "/v1/events?customer=cus_001");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code().as_deref(), Some("parameter_unknown"));
    assert_eq!(get(&fake, "/v1/events?delivery_success=maybe").status, 400);
    assert_eq!(
        ids(&get(&fake, "/v1/events?delivery_success=true&limit=100").json()),
        log[..100],
        "delivery_success is accepted and ignored"
    );

    // Auth and faults apply here too.
    let r = raw_request(fake.addr(), "GET", "/v1/events", &[], TIMEOUT).expect("request");
    assert_eq!(r.status, 401);
    fake.push_fault(Fault::status(503).on_path("/v1/events"));
    assert_eq!(get(&fake, "/v1/events").status, 503);
    assert_eq!(get(&fake, "/v1/events").status, 200);
}

#[test]
fn events_created_filters() {
    let fake = FakeStripe::start(Account::new());
    // Two events at each of T0, T0+10, T0+20.
    for (i, t) in [T0, T0, T0 + 10, T0 + 10, T0 + 20, T0 + 20]
        .iter()
        .enumerate()
    {
        fake.set_clock(Some(*t));
        fake.upsert_customer(json!({"id": format!("cus_{i}")}));
    }
    let created_of = |query: &str| -> Vec<i64> {
        let r = get(&fake, &format!("/v1/events?limit=100&{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        r.json()["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["created"].as_i64().expect("created"))
            .collect()
    };
    let (a, b, c) = (T0, T0 + 10, T0 + 20);
    assert_eq!(created_of(&format!("created[gte]={b}")), [c, c, b, b]);
    assert_eq!(created_of(&format!("created[gt]={b}")), [c, c]);
    assert_eq!(created_of(&format!("created[lte]={b}")), [b, b, a, a]);
    assert_eq!(created_of(&format!("created[lt]={b}")), [a, a]);
    assert_eq!(created_of(&format!("created={b}")), [b, b]);
    assert_eq!(
        created_of(&format!("created%5Bgt%5D={a}&created%5Blt%5D={c}")),
        [b, b]
    );
    assert!(created_of(&format!("created[gt]={c}")).is_empty());
    let r = get(&fake, "/v1/events?created[gte]=soon");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code().as_deref(), Some("parameter_invalid_integer"));
    assert_eq!(get(&fake, "/v1/events?created[after]=1").status, 400);
}

#[test]
fn events_type_and_types_filters() {
    let fake = FakeStripe::start(small_account());
    fake.upsert_customer(json!({"id": "cus_new"}));
    fake.upsert_customer(json!({"id": "cus_new", "email": "n@example.com"}));
    fake.upsert_subscription(json!({"id": "sub_active", "metadata": {"a": "b"}}));
    fake.record_invoice_paid("sub_active");
    fake.delete_customer("cus_bob"); // sub_trial deleted, then the customer

    let types_of = |query: &str| -> Vec<String> {
        let r = get(&fake, &format!("/v1/events?limit=100&{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        event_types(&r.json())
    };
    assert_eq!(
        types_of(""),
        [
            "customer.deleted",
            "customer.subscription.deleted",
            "invoice.paid",
            "customer.subscription.updated",
            "customer.updated",
            "customer.created"
        ]
    );
    assert_eq!(
        types_of("types[]=customer.created&types[]=customer.subscription.deleted"),
        ["customer.subscription.deleted", "customer.created"]
    );
    assert_eq!(
        types_of("types%5B0%5D=invoice.paid&types%5B1%5D=customer.updated"),
        ["invoice.paid", "customer.updated"]
    );
    assert_eq!(types_of("type=invoice.paid"), ["invoice.paid"]);
    assert_eq!(
        types_of("type=customer.subscription.*"),
        [
            "customer.subscription.deleted",
            "customer.subscription.updated"
        ]
    );
    assert_eq!(
        types_of("type=customer.*"),
        [
            "customer.deleted",
            "customer.subscription.deleted",
            "customer.subscription.updated",
            "customer.updated",
            "customer.created"
        ],
        "the wildcard spans dots"
    );
    assert_eq!(
        types_of("type=*.deleted"),
        ["customer.deleted", "customer.subscription.deleted"]
    );
    assert!(
        types_of("type=customer").is_empty(),
        "no prefix match without *"
    );

    // At most 20 types.
    let many = |n: usize| -> String {
        (0..n)
            .map(|i| format!("types[]=x.type{i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    assert!(types_of(&many(20)).is_empty());
    let r = get(&fake, &format!("/v1/events?{}", many(21)));
    assert_eq!(r.status, 400, "{}", r.text());
    let e = r.json()["error"].clone();
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(e["code"], "parameter_invalid_array");
    assert_eq!(e["param"], "types");
    assert!(
        e["message"].as_str().expect("message").contains("20"),
        "{e}"
    );
    // `type` and `types` together, and `types` that is not an array.
    let r = get(&fake, "/v1/events?type=customer.*&types[]=invoice.paid");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "types");
    let r = get(&fake, "/v1/events?types=invoice.paid");
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code().as_deref(), Some("parameter_invalid_array"));
}

#[test]
fn events_past_the_retention_are_dropped() {
    let fake = FakeStripe::start(Account::new());
    let day = 86_400;
    fake.set_clock(Some(T0 - 40 * day));
    fake.upsert_customer(json!({"id": "cus_old"}));
    fake.set_clock(Some(T0 - 29 * day));
    fake.upsert_customer(json!({"id": "cus_recent"}));
    fake.set_clock(Some(T0));
    fake.upsert_customer(json!({"id": "cus_now"}));
    let log = log_ids(&fake);
    assert_eq!(log.len(), 3, "fake.events() keeps everything");
    let (now_id, recent_id, old_id) = (&log[0], &log[1], &log[2]);

    let listed = ids(&get(&fake, "/v1/events?limit=100").json());
    assert_eq!(
        listed,
        [now_id.clone(), recent_id.clone()],
        "30 days by default"
    );
    let r = get(&fake, &format!("/v1/events/{old_id}"));
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code().as_deref(), Some("resource_missing"));
    let r = get(&fake, &format!("/v1/events?starting_after={old_id}"));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code().as_deref(), Some("resource_missing"));
    let since = T0 - 50 * day;
    assert_eq!(
        ids(&get(&fake, &format!("/v1/events?created[gte]={since}")).json()).len(),
        2,
        "a created filter does not bring it back"
    );
    assert_eq!(
        ids(&get(
            &fake,
            &format!("/v1/events?limit=1&starting_after={recent_id}")
        )
        .json()),
        Vec::<String>::new(),
        "has_more stops at the retention"
    );

    // The window moves with the clock, and its length is configurable.
    fake.advance_clock(2 * day);
    assert_eq!(ids(&get(&fake, "/v1/events").json()), [now_id.as_str()]);
    fake.set_event_retention(Duration::from_secs(60 * day as u64));
    assert_eq!(ids(&get(&fake, "/v1/events").json()), log);
    assert_eq!(get(&fake, &format!("/v1/events/{old_id}")).status, 200);
}

#[test]
fn deleting_a_customer_cascades_into_subscription_deleted_events() {
    let fake = FakeStripe::start(small_account());
    fake.set_clock(Some(T0));
    let alice = fake.customer("cus_alice").expect("alice");
    fake.delete_customer("cus_alice");

    let log = fake.events();
    let types: Vec<&str> = log
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "customer.deleted",
            "customer.subscription.deleted",
            "customer.subscription.deleted"
        ],
        "the live subscriptions first, the customer last (newest)"
    );
    // customer.deleted carries the full customer as it was, without `deleted`.
    let obj = assert_event_shape(&log[0], "customer.deleted", T0);
    assert_eq!(obj, alice);
    assert!(obj.get("deleted").is_none());
    assert_eq!(obj["email"], "alice@example.com");
    // Only live subscriptions (not sub_canceled), canceled at the clock.
    let mut subs: Vec<String> = log[1..]
        .iter()
        .map(|e| {
            let s = assert_event_shape(e, "customer.subscription.deleted", T0);
            assert_eq!(s["status"], "canceled");
            assert_eq!(s["canceled_at"], T0);
            assert_eq!(s["ended_at"], T0);
            assert_eq!(s["customer"], "cus_alice");
            s["id"].as_str().expect("id").to_owned()
        })
        .collect();
    subs.sort();
    assert_eq!(subs, ["sub_active", "sub_past_due"]);
    assert_eq!(
        fake.subscription("sub_canceled").expect("kept")["canceled_at"],
        1_700_500_000
    );

    // Deleting again changes nothing and records nothing.
    fake.delete_customer("cus_alice");
    assert_eq!(fake.events().len(), 3);
    // An unknown id becomes a deleted stub, with its customer.deleted.
    fake.delete_customer("cus_ghost");
    let ev = fake.events()[0].clone();
    assert_eq!(
        assert_event_shape(&ev, "customer.deleted", T0)["id"],
        "cus_ghost"
    );
    // A deleted customer made again is created again.
    fake.upsert_customer(json!({"id": "cus_alice", "email": "back@example.com"}));
    assert_eq!(fake.events()[0]["type"], "customer.created");
}

/// The fake a bench starts with `generated` (objects kept as records) and
/// the one started from `Account::generate_at`'s values answer every
/// request with the same bytes, whether lists are written as text (the
/// default) or built as values; and still after runtime changes.
#[test]
fn generated_records_answer_like_the_account_values() {
    const NOW: i64 = 1_760_000_000;
    let (customers, subscriptions, seed) = (260, 330, 5);
    let fakes = [
        FakeStripe::start(Account::generate_at(customers, subscriptions, seed, NOW)),
        FakeStripe::builder()
            .generated_at(customers, subscriptions, seed, NOW)
            .start(),
    ];
    let reference = &fakes[0];
    let cus: Vec<String> = reference
        .customers()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let subs = reference.subscriptions();
    let sub_ids: Vec<String> = subs
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let pm_of = |s: &Value| s["default_payment_method"].as_str().map(str::to_owned);
    let pm = subs.iter().find_map(pm_of).unwrap();
    let expand = "expand[]=data.default_payment_method";
    let mut targets = vec![
        "/v1/customers".to_owned(),
        "/v1/customers?limit=100&expand[]=total_count".to_owned(),
        format!("/v1/customers?limit=7&starting_after={}", cus[12]),
        format!("/v1/customers?limit=5&ending_before={}", cus[40]),
        format!("/v1/customers?email=nobody%40example.com&limit=3"),
        "/v1/subscriptions?limit=100".to_owned(),
        "/v1/subscriptions?status=active&limit=20".to_owned(),
        format!(
            "/v1/subscriptions?status=all&limit=100&starting_after={}",
            sub_ids[99]
        ),
        format!(
            "/v1/subscriptions?customer={}&status=all&limit=1&{expand}",
            cus[3]
        ),
        format!("/v1/subscriptions?status=all&limit=3&expand[]=data.customer"),
        format!("/v1/customers/{}", cus[9]),
        format!("/v1/subscriptions/{}", sub_ids[9]),
        format!("/v1/payment_methods/{pm}"),
        "/v1/customers/search?query=metadata%5B%27clerkUserId%27%5D%3A%27user_5%27".to_owned(),
    ];
    // Every page of both backfill listings.
    for list in [
        "/v1/customers?limit=100",
        &format!("/v1/subscriptions?status=all&limit=100&{expand}"),
    ] {
        let mut url = list.to_owned();
        loop {
            targets.push(url.clone());
            let v = get(reference, &url).json();
            if v["has_more"] == false {
                break;
            }
            url = format!("{list}&starting_after={}", ids(&v).last().unwrap());
        }
    }
    let compare = |targets: &[String]| {
        for target in targets {
            for version in ["2025-06-30.basil", "2024-06-20"] {
                let mut bodies = Vec::new();
                for fake in &fakes {
                    for fast in [true, false] {
                        fake.set_fast_lists(fast);
                        let r = get_with(fake, target, &[("Stripe-Version", version)]);
                        bodies.push((r.status, r.text()));
                    }
                }
                for b in &bodies[1..] {
                    assert_eq!(b, &bodies[0], "{target} ({version})");
                }
            }
        }
    };
    compare(&targets);

    // The same changes to both: generated objects become values.
    let gone_pm = subs
        .iter()
        .filter(|s| s["customer"] != cus[7].as_str())
        .find_map(pm_of)
        .unwrap();
    for fake in &fakes {
        fake.set_clock(Some(NOW + 10));
        fake.upsert_customer(json!({"id": cus[5], "email": "changed@example.com"}));
        fake.delete_customer(&cus[7]);
        fake.cancel_subscription(&sub_ids[3]);
        fake.upsert_subscription(json!({"id": sub_ids[4], "status": "past_due"}));
    }
    compare(&targets);
    // A default payment method that no longer exists cannot be expanded.
    for fake in &fakes {
        fake.purge(&gone_pm);
    }
    compare(&targets);
    assert!(targets.iter().any(|t| get(reference, t).status == 400));
}
