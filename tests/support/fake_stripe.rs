//! A stateful fake of the (read side of the) Stripe REST API, for integration
//! tests and benchmarks.
//!
//! Depends only on std, axum, tokio, serde and serde_json, so it can be used
//! from `tests/*.rs` (`mod support;` then `use support::fake_stripe::*;`) and
//! from benches (`#[path = "../tests/support/fake_stripe.rs"] mod fake_stripe;`).
//!
//! The server runs on its own background thread with its own tokio runtime,
//! listens on `127.0.0.1:<random port>` and stops when the handle is dropped,
//! so it works from plain synchronous `#[test]` functions that run the
//! compiled binary.
//!
//! # Quick start
//!
//! ```ignore
//! let fake = FakeStripe::start(Account::generate(50, 60, 7));
//! // point the CLI at fake.url() with fake.api_key() ...
//! assert!(fake.count_path("/v1/subscriptions") > 0);
//! ```
//!
//! # Public API
//!
//! ```ignore
//! // server handle (Drop stops the server)
//! FakeStripe::start(account: Account) -> FakeStripe            // panics if it cannot bind
//! FakeStripe::try_start(account: Account) -> io::Result<FakeStripe>
//! FakeStripe::builder() -> FakeStripeBuilder                   // .account(a) .latency(d) .rate_limit(n)
//!                                                              // .search_enabled(b) .search_lag(d) .start()
//!                                                              // .generated(customers, subscriptions, seed)
//!                                                              // .generated_at(.., now): see "Scale" below
//! fake.url() -> String                     // "http://127.0.0.1:PORT" (no trailing slash)
//! fake.addr() -> SocketAddr
//! fake.api_key() -> &str                   // the accepted key (default "sk_test_fake_123")
//! // state changes at runtime (drift tests); the value is merged into the stored
//! // object if the id exists (metadata keys set to "" or null are removed), else
//! // a new full object is made from it; the stored object is returned.
//! // Each change records its event (see "Event log" below).
//! fake.upsert_customer(Value) -> Value     // customer.created / customer.updated
//! fake.upsert_subscription(Value) -> Value // accepts shorthands, see `Account::add_subscription`;
//!                                          // customer.subscription.created / .updated / .deleted
//! fake.upsert_payment_method(Value) -> Value // payment_method.attached / .detached / .updated
//! fake.cancel_subscription(id) -> Value    // canceled now; customer.subscription.deleted
//! fake.delete_customer(id)                 // GET then answers {"id","object":"customer","deleted":true};
//!                                          // like Stripe, the customer's live subscriptions are canceled now
//! fake.purge(id) -> bool                   // forget an object or event entirely (GET answers 404), no event
//! // clock and event log
//! fake.set_clock(Option<i64>)              // fix the clock at a unix time (None: real time)
//! fake.advance_clock(secs: i64)            // move it (fixes a real-time clock at now + secs)
//! fake.now_unix() -> i64
//! fake.set_event_retention(Duration)       // default DEFAULT_EVENT_RETENTION (30 days)
//! fake.set_event_api_version(&str)         // `api_version` and shape of events recorded from now on
//! fake.events() -> Vec<Value>              // every recorded event, newest first (even past retention)
//! fake.event(id) -> Option<Value>; fake.clear_events()
//! fake.record_invoice_paid(sub_id) -> Value       // invoice.paid for the subscription; returns the event
//! fake.record_event(type, object, Option<previous_attributes>) -> Value  // any other event; state unchanged
//! fake.customer(id) / subscription(id) / payment_method(id) -> Option<Value>  // stored (basil) shape
//! fake.customers() / subscriptions() -> Vec<Value>           // in list order, incl. deleted/canceled
//! // faults
//! fake.set_latency(Duration)               // added to every request
//! fake.set_rate_limit(Option<u32>)         // > N requests in a sliding 1 s window -> 429
//! fake.set_search_rate_limit(Option<u32>)  // same, only for `/search` paths (Stripe: 20/s; off by default)
//! fake.push_fault(impl Into<FaultRule>)    // queued; `Fault` alone = once, any path
//! fake.clear_faults(); fake.pending_faults() -> usize
//! fake.set_search_enabled(bool)            // off -> search answers 400 (region without search)
//! fake.set_search_lag(Duration)            // see "Search" below
//! fake.set_fast_lists(bool)                // see "Scale" below (on by default)
//! fake.go_away()                           // stop listening: connections are refused (state kept)
//! fake.come_back()                         // listen again on the same address, same state
//! // observation
//! fake.requests() -> Vec<RecordedRequest>
//! fake.request_count() -> usize
//! fake.count_path(prefix) -> usize         // note "/v1/customers" also counts "/v1/customers/search"
//! fake.count_where(|r: &RecordedRequest| ...) -> usize
//! fake.max_requests_in_window(Duration) -> usize  // peak count in any sliding window (all requests)
//! fake.rate_limited_count() -> usize       // number of 429 responses sent (rate limiter + 429 faults)
//! fake.reset_counters()                    // clears recorded requests and the 429 count
//!
//! Fault::Status { code, should_retry: Option<bool>, retry_after: Option<u64> }  // Stripe-style JSON error
//! Fault::Timeout(Duration)                 // sleep, then answer normally (use > the client's timeout)
//! Fault::TruncatedBody                     // status 200, first half of the real body, Content-Length = half
//! Fault::Html                              // 502 text/html "<html>..502 Bad Gateway" (no Request-Id)
//! Fault::Raw { status, content_type, body }
//! Fault::status(code) -> Fault             // Status without retry headers
//! FaultRule { fault, times, path_prefix }  // FaultRule::new(f).times(3).on_path("/v1/customers/search")
//! fault.times(n) / fault.on_path(p) / fault.forever() -> FaultRule
//!
//! Account::new() / Account::default()      // empty account, key DEFAULT_API_KEY
//! Account::generate(customers, subscriptions, seed)          // realistic, deterministic data
//! Account::generate_at(customers, subscriptions, seed, now_unix) // fully deterministic (timestamps too)
//! account.with_api_key(key) -> Account
//! account.add_customer(v) / add_subscription(v) / add_payment_method(v) / add_price(v) / add_product(v)
//!        -> &mut Account   (chainable: account.customer(v) / .subscription(v) / ... consume and return self)
//! account.customers / subscriptions / payment_methods / prices / products : Vec<Value> (full objects)
//! account.find_customer_by_clerk_id(id) -> Option<&Value>; account.subscriptions_of(cus) -> Vec<&Value>
//! ```
//!
//! # Behaviour (follows https://docs.stripe.com/api)
//!
//! * Auth: `Authorization: Bearer <key>` (HTTP Basic with the key as user name
//!   also works, like Stripe). Missing -> 401 "You did not provide an API key...";
//!   wrong -> 401 "Invalid API Key provided: sk_test_****_123" (masked).
//! * Every response carries `Request-Id: req_...`, `Content-Type: application/json`
//!   and `Stripe-Version` (the version used). Exception: `Fault::Html`.
//! * `Stripe-Version` request header: absent -> [`DEFAULT_API_VERSION`]; malformed -> 400.
//!   Before [`BASIL_VERSION_DATE`] subscriptions are rendered in the pre-basil
//!   shape: `current_period_start/end` on the subscription and NOT on the items
//!   (as Stripe did). Objects are always stored in the basil shape.
//! * Endpoints (GET only; anything else -> 404 "Unrecognized request URL"):
//!   `/v1/customers` (email, created[..], limit, starting_after, ending_before, expand),
//!   `/v1/customers/search` (query, limit, page, expand), `/v1/customers/{id}`,
//!   `/v1/subscriptions` (customer, status, price, collection_method, created[..], ...),
//!   `/v1/subscriptions/{id}`, `/v1/payment_methods` (customer, type), `/v1/payment_methods/{id}`,
//!   `/v1/prices/{id}`, `/v1/products/{id}`, `/v1/events` (created[..], type, types[],
//!   delivery_success, limit, cursors), `/v1/events/{id}`.
//! * Lists are newest first: `created` desc, and objects created in the same
//!   second in the fake's own order, which like Stripe's is NOT id order: the
//!   object added later comes first (each object gets an insertion sequence
//!   when it is first added, in `Account` order at start, and keeps it when it
//!   is updated). `limit` 1..=100 (default 10), cursors (`starting_after`,
//!   `ending_before`, search `page`) are resolved by that sort key like Stripe,
//!   unknown parameters -> 400 `parameter_unknown`. Deleted customers are not
//!   listed, but their (canceled) subscriptions still are, and retrieving one
//!   answers the stub `{"id","object":"customer","deleted":true}`.
//!   `/v1/subscriptions` without `status` excludes `canceled`; `status=all`, `ended`
//!   and specific statuses are supported.
//! * `expand[]` (also `expand%5B%5D` and `expand[0]`) works on any field holding
//!   an id of a known object (customer, subscription, payment method, price,
//!   product), at most 4 levels; lists need the `data.` prefix; `total_count`
//!   can be expanded on lists and search results.
//! * Search: `metadata['k']:'v'` (or double quotes), `email:`, `name:`, `phone:`,
//!   `created>N`..., `~` substring (>= 3 chars), `-` negation, `AND` / `OR` /
//!   space (not mixed), `null`. Matching of email/name/phone is case-insensitive,
//!   metadata is exact. Search lag: a customer created or changed less than
//!   `lag` ago is matched against its previous version (so a new customer is
//!   not found yet), like Stripe's asynchronously updated search index.
//!   Deleted customers disappear from search at once.
//!
//! # Scale
//!
//! * `FakeStripe::builder().generated(c, s, seed)` serves what
//!   `.account(Account::generate(c, s, seed))` serves, with the same ids,
//!   order and answers, but keeps each generated object as a compact record
//!   and builds it only when asked: a million customers and a million
//!   subscriptions start in seconds and take about a GB (as values they would
//!   take tens of GB). An object changed at runtime becomes a value.
//! * Customers and subscriptions pages (any version from basil on, no
//!   expansion but `data.default_payment_method`) are written as text, each
//!   generated object from a template made once from its value-building code
//!   with a sentinel in every leaf: a page costs what copying it does. The
//!   text is byte for byte what building the page as a value gives;
//!   `set_fast_lists(false)` builds it that way, which the selftests compare.
//! * Cursors are looked up by id and listing goes on from there in the sorted
//!   order (a B-tree), so every page costs the same, the millionth included.
//!
//! # Event log (`GET /v1/events`)
//!
//! * Every change made at runtime through the handle records one event, like
//!   Stripe's: `{"id": "evt_1...", "object": "event", "api_version",
//!   "created", "data": {"object", "previous_attributes"?}, "livemode": false,
//!   "pending_webhooks": 0, "request": {"id": null, "idempotency_key": null},
//!   "type"}`. `data.object` is the full object after the change (rendered with
//!   the events' API version, see `set_event_api_version`);
//!   `previous_attributes` (updates only) holds the old value of each changed
//!   key, recursing into plain hashes such as `metadata` (a key the update
//!   added is `null`; lists such as `items` are given whole). An update that
//!   changes nothing records nothing.
//! * Which events: `upsert_customer` -> `customer.created` (new id, or a deleted
//!   one made again) or `customer.updated`; `delete_customer` ->
//!   `customer.subscription.deleted` for each live subscription (canceled now),
//!   then `customer.deleted` whose `data.object` is the full customer as it was
//!   (no `deleted` key, as Stripe sends it; deleting twice records nothing);
//!   `upsert_subscription` -> `customer.subscription.created`, `.deleted` when
//!   the status becomes `canceled`, else `.updated`; `cancel_subscription` ->
//!   `.deleted`; `upsert_payment_method` -> `payment_method.attached` when it
//!   gains a customer (Stripe has no `payment_method.created`), `.detached`
//!   when it loses one, else `.updated`; `record_invoice_paid` -> `invoice.paid`;
//!   `record_event` -> anything. Prices and products the fake makes up for a
//!   subscription's shorthand count as pre-existing (no event); so does
//!   everything in the `Account` the fake starts with (the log starts empty).
//! * `created` is the fake's clock (`set_clock` / `advance_clock`, else the
//!   real time), which also stamps `created` of objects made at runtime.
//!   Listing is newest first; events of the same second are listed in the
//!   reverse of the order they were recorded (an insertion sequence, as for
//!   the other lists); ids are unique and random, so not in order.
//! * `GET /v1/events`: `limit` 1..=100 (default 10), `starting_after` /
//!   `ending_before` (unknown id: 400 `resource_missing`), `created` /
//!   `created[gt|gte|lt|lte]`, `types[]` (exact names, at most 20: more is a
//!   400 `parameter_invalid_array` on `types`), `type` (one name, `*` matches
//!   any run of characters: `customer.*` also matches
//!   `customer.subscription.updated`; not together with `types[]`: 400),
//!   `delivery_success` (a boolean, ignored). Events older than the retention
//!   (`set_event_retention`, default 30 days before the fake's clock) are not
//!   listed, and as cursors or by id (`GET /v1/events/{id}`) they are unknown,
//!   as at Stripe. Auth, faults, rate limits, latency and request counting
//!   apply as to every endpoint.
#![allow(dead_code)]

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

/// The API key accepted by default.
pub const DEFAULT_API_KEY: &str = "sk_test_fake_123";
/// The API version used when a request has no `Stripe-Version` header.
pub const DEFAULT_API_VERSION: &str = "2025-06-30.basil";
/// Versions whose date is before this one get the pre-basil subscription shape.
pub const BASIL_VERSION_DATE: &str = "2025-03-31";
/// Search needs at least this API version (documented by Stripe).
const SEARCH_MIN_VERSION_DATE: &str = "2020-08-27";
/// How long Stripe keeps events listable (`GET /v1/events`): 30 days.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// Stripe's limit on the number of values of the events list's `types[]`.
const MAX_EVENT_TYPES: usize = 20;

const DAY: i64 = 86_400;

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

/// A misbehaviour to apply to a request (see [`FaultRule`] and [`FakeStripe::push_fault`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with `code` and a Stripe-style JSON error, optionally with the
    /// `Stripe-Should-Retry: true|false` and `Retry-After: N` headers.
    Status {
        code: u16,
        should_retry: Option<bool>,
        retry_after: Option<u64>,
    },
    /// Sleep this long, then answer normally (use a delay longer than the client's timeout).
    Timeout(Duration),
    /// Status 200 with only the first half of the real body (Content-Length matches what is sent).
    TruncatedBody,
    /// 502 with an HTML body, like a proxy in front of the API would send.
    Html,
    /// Anything else.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
}

impl Fault {
    /// A `Status` fault without retry headers.
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            code,
            should_retry: None,
            retry_after: None,
        }
    }

    /// Apply this fault to the next `n` matching requests.
    pub fn times(self, n: usize) -> FaultRule {
        FaultRule::new(self).times(n)
    }

    /// Apply this fault only to requests whose path starts with `prefix`.
    pub fn on_path(self, prefix: &str) -> FaultRule {
        FaultRule::new(self).on_path(prefix)
    }

    /// Apply this fault to every matching request until `clear_faults`.
    pub fn forever(self) -> FaultRule {
        FaultRule::new(self).forever()
    }

    fn describe(&self) -> String {
        match self {
            Fault::Status { code, .. } => format!("status {code}"),
            Fault::Timeout(d) => format!("timeout {}ms", d.as_millis()),
            Fault::TruncatedBody => "truncated body".to_owned(),
            Fault::Html => "html".to_owned(),
            Fault::Raw { status, .. } => format!("raw {status}"),
        }
    }
}

/// A queued fault: applied to the next `times` requests whose path starts
/// with `path_prefix` (any path when `None`). `times == usize::MAX` means forever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    pub fault: Fault,
    pub times: usize,
    pub path_prefix: Option<String>,
}

impl FaultRule {
    pub fn new(fault: Fault) -> FaultRule {
        FaultRule {
            fault,
            times: 1,
            path_prefix: None,
        }
    }

    pub fn times(mut self, n: usize) -> FaultRule {
        self.times = n;
        self
    }

    pub fn on_path(mut self, prefix: &str) -> FaultRule {
        self.path_prefix = Some(prefix.to_owned());
        self
    }

    pub fn forever(mut self) -> FaultRule {
        self.times = usize::MAX;
        self
    }
}

impl From<Fault> for FaultRule {
    fn from(fault: Fault) -> FaultRule {
        FaultRule::new(fault)
    }
}

// ---------------------------------------------------------------------------
// Recorded requests
// ---------------------------------------------------------------------------

/// What the `Authorization` header of a request looked like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthState {
    Missing,
    Invalid,
    Valid,
}

/// One request as seen by the fake.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Arrival order, starting at 0 (not reset by `reset_counters`).
    pub seq: u64,
    pub method: String,
    pub path: String,
    /// The raw query string (still percent-encoded), "" when absent.
    pub query: String,
    /// All headers (lower-case names) except `Authorization`.
    pub headers: Vec<(String, String)>,
    pub auth: AuthState,
    /// The `Stripe-Version` header as sent, if any.
    pub stripe_version: Option<String>,
    /// The `Idempotency-Key` header as sent, if any.
    pub idempotency_key: Option<String>,
    /// Status sent; 0 while in flight or if the client went away first.
    pub status: u16,
    /// The `Request-Id` the response carried.
    pub request_id: String,
    /// Arrival time.
    pub at: Instant,
    /// "rate_limit" or a description of the fault applied, if any.
    pub fault: Option<String>,
}

impl RecordedRequest {
    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded query parameters, in order.
    pub fn query_params(&self) -> Vec<(String, String)> {
        parse_query_string(&self.query)
    }

    /// The last value of a decoded query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_params()
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

// ---------------------------------------------------------------------------
// Account (initial data)
// ---------------------------------------------------------------------------

/// The data a [`FakeStripe`] starts with. All `Vec<Value>` hold full Stripe
/// objects (the `add_*` methods complete partial objects).
#[derive(Clone, Debug)]
pub struct Account {
    pub api_key: String,
    pub customers: Vec<Value>,
    pub subscriptions: Vec<Value>,
    pub payment_methods: Vec<Value>,
    pub prices: Vec<Value>,
    pub products: Vec<Value>,
}

impl Default for Account {
    fn default() -> Account {
        Account::new()
    }
}

impl Account {
    /// An empty account accepting [`DEFAULT_API_KEY`].
    pub fn new() -> Account {
        Account {
            api_key: DEFAULT_API_KEY.to_owned(),
            customers: Vec::new(),
            subscriptions: Vec::new(),
            payment_methods: Vec::new(),
            prices: Vec::new(),
            products: Vec::new(),
        }
    }

    pub fn with_api_key(mut self, key: &str) -> Account {
        self.api_key = key.to_owned();
        self
    }

    /// Add a customer. Missing fields are filled in (id `cus_...`, `created`
    /// = now, ...). A value with `"deleted": true` makes a deleted customer.
    pub fn add_customer(&mut self, customer: Value) -> &mut Account {
        let id = customer
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let existing = id.and_then(|id| self.customers.iter().position(|c| c["id"] == id));
        let base = existing.map(|i| self.customers[i].clone());
        if let Some(c) = normalize_customer(customer, base.as_ref(), now_unix()) {
            match existing {
                Some(i) => self.customers[i] = c,
                None => self.customers.push(c),
            }
        }
        self
    }

    /// Add a subscription. Besides full objects it accepts shorthands:
    /// `"price": "price_x"` (or a price object) and `"quantity"` for a single
    /// item, `"items": [ {...} ]` or `{"data": [...]}`, and
    /// `current_period_start/end` on the subscription (moved onto the items).
    /// Unknown prices are created (monthly, 20.00 usd) with their product.
    pub fn add_subscription(&mut self, subscription: Value) -> &mut Account {
        let id = subscription
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let existing = id.and_then(|id| self.subscriptions.iter().position(|s| s["id"] == id));
        let base = existing.map(|i| self.subscriptions[i].clone());
        let now = now_unix();
        let mut prices = std::mem::take(&mut self.prices);
        let mut products = std::mem::take(&mut self.products);
        let mut price_of = |r: &Value| vec_catalog_price(&mut prices, &mut products, r, now);
        let normalized = normalize_subscription(subscription, base.as_ref(), &mut price_of, now);
        self.prices = prices;
        self.products = products;
        if let Some(s) = normalized {
            match existing {
                Some(i) => self.subscriptions[i] = s,
                None => self.subscriptions.push(s),
            }
        }
        self
    }

    /// Add a (card) payment method; `card.brand` / `card.last4` etc. can be given partially.
    pub fn add_payment_method(&mut self, payment_method: Value) -> &mut Account {
        let id = payment_method
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let existing = id.and_then(|id| self.payment_methods.iter().position(|p| p["id"] == id));
        let base = existing.map(|i| self.payment_methods[i].clone());
        if let Some(p) = normalize_payment_method(payment_method, base.as_ref(), now_unix()) {
            match existing {
                Some(i) => self.payment_methods[i] = p,
                None => self.payment_methods.push(p),
            }
        }
        self
    }

    pub fn add_price(&mut self, price: Value) -> &mut Account {
        let now = now_unix();
        if let Some(p) = normalize_price(price, now) {
            ensure_vec_product(&mut self.products, &p["product"], now);
            let id = p["id"].clone();
            self.prices.retain(|x| x["id"] != id);
            self.prices.push(p);
        }
        self
    }

    pub fn add_product(&mut self, product: Value) -> &mut Account {
        if let Some(p) = normalize_product(product, now_unix()) {
            let id = p["id"].clone();
            self.products.retain(|x| x["id"] != id);
            self.products.push(p);
        }
        self
    }

    pub fn customer(mut self, customer: Value) -> Account {
        self.add_customer(customer);
        self
    }

    pub fn subscription(mut self, subscription: Value) -> Account {
        self.add_subscription(subscription);
        self
    }

    pub fn payment_method(mut self, payment_method: Value) -> Account {
        self.add_payment_method(payment_method);
        self
    }

    pub fn price(mut self, price: Value) -> Account {
        self.add_price(price);
        self
    }

    pub fn product(mut self, product: Value) -> Account {
        self.add_product(product);
        self
    }

    pub fn customer_ids(&self) -> Vec<String> {
        self.customers
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect()
    }

    pub fn find_customer_by_clerk_id(&self, clerk_user_id: &str) -> Option<&Value> {
        self.customers
            .iter()
            .find(|c| c["metadata"]["clerkUserId"] == clerk_user_id)
    }

    pub fn subscriptions_of(&self, customer_id: &str) -> Vec<&Value> {
        self.subscriptions
            .iter()
            .filter(|s| s["customer"] == customer_id)
            .collect()
    }

    /// Realistic random data, deterministic given `seed` (timestamps are
    /// relative to the current time; use [`Account::generate_at`] to pin them).
    ///
    /// * customers `cus_...` with names and emails; customer `i` (index in
    ///   `customers`) has metadata `{"clerkUserId": "user_i"}`, except ~3%
    ///   which have other or no metadata; ~2% have no email and ~2% share the
    ///   email of another customer; ~10% share their `created` with another.
    /// * 3 products and 4 prices (monthly and yearly).
    /// * subscriptions spread uniformly at random over the customers (so
    ///   some have none, some several); statuses ~60% active, 10% trialing,
    ///   8% past_due, 12% canceled, 4% incomplete, 2% incomplete_expired,
    ///   2% unpaid, 2% paused; each with one item (price, quantity, coherent
    ///   `current_period_start < current_period_end`), `default_payment_method`
    ///   = the customer's card (null for incomplete / incomplete_expired).
    /// * one card payment method per customer with subscriptions (and ~20% of
    ///   the others), also set as the customer's invoice default.
    ///
    /// With 0 customers no subscriptions are generated.
    pub fn generate(customers: usize, subscriptions: usize, seed: u64) -> Account {
        Account::generate_at(customers, subscriptions, seed, now_unix())
    }

    /// Like [`Account::generate`] with an explicit "now" (unix seconds).
    pub fn generate_at(customers: usize, subscriptions: usize, seed: u64, now: i64) -> Account {
        generate_account(customers, subscriptions, seed, now)
    }
}

// ---------------------------------------------------------------------------
// The server handle
// ---------------------------------------------------------------------------

/// Handle of a running fake; dropping it stops the server.
pub struct FakeStripe {
    shared: Shared,
    addr: SocketAddr,
    api_key: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Builder for [`FakeStripe`] with initial fault settings.
#[derive(Default)]
pub struct FakeStripeBuilder {
    account: Option<Account>,
    /// customers, subscriptions, seed, now
    generated: Option<(usize, usize, u64, i64)>,
    latency: Duration,
    rate_limit: Option<u32>,
    search_rate_limit: Option<u32>,
    search_enabled: Option<bool>,
    search_lag: Duration,
}

impl FakeStripeBuilder {
    pub fn account(mut self, account: Account) -> Self {
        self.account = Some(account);
        self
    }
    /// Serve `Account::generate(customers, subscriptions, seed)`, kept as
    /// compact records rather than values: a million customers start in
    /// seconds and a few hundred MB, and every answer is the same.
    pub fn generated(self, customers: usize, subscriptions: usize, seed: u64) -> Self {
        self.generated_at(customers, subscriptions, seed, now_unix())
    }
    /// Like [`FakeStripeBuilder::generated`], as `Account::generate_at`.
    pub fn generated_at(
        mut self,
        customers: usize,
        subscriptions: usize,
        seed: u64,
        now: i64,
    ) -> Self {
        self.generated = Some((customers, subscriptions, seed, now));
        self
    }
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = Some(per_second);
        self
    }
    pub fn search_rate_limit(mut self, per_second: u32) -> Self {
        self.search_rate_limit = Some(per_second);
        self
    }
    pub fn search_enabled(mut self, on: bool) -> Self {
        self.search_enabled = Some(on);
        self
    }
    pub fn search_lag(mut self, d: Duration) -> Self {
        self.search_lag = d;
        self
    }
    pub fn start(self) -> FakeStripe {
        let state = match self.generated {
            Some((c, s, seed, now)) => ServerState::from_generated(generate(c, s, seed, now)),
            None => ServerState::from_account(self.account.unwrap_or_default()),
        };
        let fake = match FakeStripe::try_start_state(state) {
            Ok(f) => f,
            Err(e) => panic!("fake_stripe: cannot start the server: {e}"),
        };
        {
            let mut st = fake.lock();
            st.latency = self.latency;
            st.rate_limit = self.rate_limit;
            st.search_rate_limit = self.search_rate_limit;
            st.search_enabled = self.search_enabled.unwrap_or(true);
            st.search_lag = self.search_lag;
        }
        fake
    }
}

impl FakeStripe {
    /// Start a fake serving `account`. Panics if no local port can be bound.
    pub fn start(account: Account) -> FakeStripe {
        match FakeStripe::try_start(account) {
            Ok(f) => f,
            Err(e) => panic!("fake_stripe: cannot start the server: {e}"),
        }
    }

    pub fn builder() -> FakeStripeBuilder {
        FakeStripeBuilder::default()
    }

    /// Start a fake serving `account`.
    pub fn try_start(account: Account) -> std::io::Result<FakeStripe> {
        FakeStripe::try_start_state(ServerState::from_account(account))
    }

    fn try_start_state(state: ServerState) -> std::io::Result<FakeStripe> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let api_key = state.api_key.clone();
        let shared: Shared = Arc::new(Mutex::new(state));
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let app_state = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fake-stripe-{}", addr.port()))
            .spawn(move || serve_thread(listener, app_state, shutdown_rx, ready_tx))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::Error::other("fake_stripe: server thread died")),
        }
        Ok(FakeStripe {
            shared,
            addr,
            api_key,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API key the fake accepts.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    fn lock(&self) -> MutexGuard<'_, ServerState> {
        lock(&self.shared)
    }

    // ----- state -----

    /// Create or update (merge into) a customer; returns the stored object.
    pub fn upsert_customer(&self, customer: Value) -> Value {
        self.lock().upsert_customer(customer, Instant::now())
    }

    /// Create or update (merge into) a subscription; returns the stored object.
    pub fn upsert_subscription(&self, subscription: Value) -> Value {
        self.lock().upsert_subscription(subscription)
    }

    /// Create or update (merge into) a payment method; returns the stored object.
    pub fn upsert_payment_method(&self, payment_method: Value) -> Value {
        self.lock().upsert_payment_method(payment_method)
    }

    /// Cancel a subscription now (status `canceled`, `canceled_at` and
    /// `ended_at` = the fake's clock) and record `customer.subscription.deleted`,
    /// like `DELETE /v1/subscriptions/{id}`. An ended subscription is returned
    /// unchanged, without an event. Panics if the id is unknown.
    pub fn cancel_subscription(&self, id: &str) -> Value {
        let canceled = self.lock().cancel_subscription(id);
        canceled
            .unwrap_or_else(|| panic!("fake_stripe: cancel_subscription: no subscription '{id}'"))
    }

    /// Delete a customer like `DELETE /v1/customers/{id}`: it answers the
    /// deleted stub from now on and its live subscriptions are canceled.
    /// An unknown id becomes a deleted stub too.
    pub fn delete_customer(&self, id: &str) {
        self.lock().delete_customer(id, Instant::now());
    }

    /// Forget an object of any kind, events included (GET answers 404);
    /// records no event. Returns whether it existed.
    pub fn purge(&self, id: &str) -> bool {
        let mut st = self.lock();
        let mut found = false;
        for kind in Kind::ALL {
            found |= st.store_mut(kind).remove(id);
        }
        found
    }

    pub fn customer(&self, id: &str) -> Option<Value> {
        let st = self.lock();
        st.customers.get(id).map(|e| {
            if e.deleted {
                deleted_stub(id)
            } else {
                e.obj().into_owned()
            }
        })
    }

    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.lock()
            .subscriptions
            .get(id)
            .map(|e| e.obj().into_owned())
    }

    pub fn payment_method(&self, id: &str) -> Option<Value> {
        self.lock()
            .payment_methods
            .get(id)
            .map(|e| e.obj().into_owned())
    }

    /// All customers, newest first; deleted ones as stubs.
    pub fn customers(&self) -> Vec<Value> {
        let st = self.lock();
        st.customers
            .iter_ordered()
            .map(|e| {
                if e.deleted {
                    deleted_stub(e.id())
                } else {
                    e.obj().into_owned()
                }
            })
            .collect()
    }

    /// All subscriptions (any status), newest first.
    pub fn subscriptions(&self) -> Vec<Value> {
        let st = self.lock();
        st.subscriptions
            .iter_ordered()
            .map(|e| e.obj().into_owned())
            .collect()
    }

    // ----- clock and event log -----

    /// Fix the fake's clock at `unix` seconds (None: follow the real time).
    /// It stamps `created` of objects made at runtime and of events, and
    /// decides which events are past the retention.
    pub fn set_clock(&self, unix: Option<i64>) {
        self.lock().clock = unix;
    }

    /// Move the clock by `secs` (may be negative); a clock that followed the
    /// real time is fixed at now + `secs`.
    pub fn advance_clock(&self, secs: i64) {
        let mut st = self.lock();
        st.clock = Some(st.now() + secs);
    }

    /// The fake's current time, unix seconds.
    pub fn now_unix(&self) -> i64 {
        self.lock().now()
    }

    /// Events older than this are no longer listed or retrieved (default
    /// [`DEFAULT_EVENT_RETENTION`], Stripe's 30 days); `fake.events()` keeps them.
    pub fn set_event_retention(&self, retention: Duration) {
        self.lock().event_retention = retention;
    }

    /// The API version events recorded from now on are rendered with (their
    /// `api_version`; before [`BASIL_VERSION_DATE`] subscriptions and invoices
    /// take the pre-basil shape). Default [`DEFAULT_API_VERSION`]. Panics if malformed.
    pub fn set_event_api_version(&self, version: &str) {
        let parsed = parse_version(version)
            .unwrap_or_else(|| panic!("fake_stripe: malformed API version {version:?}"));
        self.lock().event_version = parsed;
    }

    /// Every recorded event, newest first (list order), including those past
    /// the retention.
    pub fn events(&self) -> Vec<Value> {
        let st = self.lock();
        st.events
            .iter_ordered()
            .map(|e| e.obj().into_owned())
            .collect()
    }

    /// One recorded event by id (even past the retention).
    pub fn event(&self, id: &str) -> Option<Value> {
        self.lock().events.get(id).map(|e| e.obj().into_owned())
    }

    /// Forget every recorded event (e.g. after setting a test up).
    pub fn clear_events(&self) {
        self.lock().events = Store::default();
    }

    /// Record an arbitrary event (any `type`, `object` as `data.object`,
    /// `previous_attributes` when given) stamped with the fake's clock; returns it.
    /// The state is not changed: use it for events the fake does not make itself.
    pub fn record_event(
        &self,
        event_type: &str,
        object: Value,
        previous_attributes: Option<Value>,
    ) -> Value {
        let previous = previous_attributes.map(|p| match p {
            Value::Object(m) => m,
            other => panic!("fake_stripe: previous_attributes must be an object, got {other}"),
        });
        self.lock().record_event(event_type, object, previous)
    }

    /// Record `invoice.paid` for a subscription: a paid invoice of its current
    /// period with `customer`, the subscription id and its metadata
    /// (`parent.subscription_details.{subscription,metadata}`; pre-basil event
    /// versions: top-level `subscription` and `subscription_details.metadata`).
    /// Returns the event. Panics if the subscription is unknown.
    pub fn record_invoice_paid(&self, subscription_id: &str) -> Value {
        let event = self.lock().record_invoice_paid(subscription_id);
        event.unwrap_or_else(|| {
            panic!("fake_stripe: record_invoice_paid: no subscription '{subscription_id}'")
        })
    }

    // ----- faults -----

    pub fn set_latency(&self, d: Duration) {
        self.lock().latency = d;
    }

    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        let mut st = self.lock();
        st.rate_limit = per_second;
        st.rate_window.clear();
    }

    pub fn set_search_rate_limit(&self, per_second: Option<u32>) {
        let mut st = self.lock();
        st.search_rate_limit = per_second;
        st.search_window.clear();
    }

    pub fn push_fault(&self, rule: impl Into<FaultRule>) {
        let rule = rule.into();
        if rule.times > 0 {
            self.lock().faults.push_back(rule);
        }
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Number of queued fault rules not yet used up.
    pub fn pending_faults(&self) -> usize {
        self.lock().faults.len()
    }

    pub fn set_search_enabled(&self, on: bool) {
        self.lock().search_enabled = on;
    }

    pub fn set_search_lag(&self, d: Duration) {
        self.lock().search_lag = d;
    }

    /// Whether customers and subscriptions pages are written as text (the
    /// default) or built as values first: the same bytes, which the
    /// selftests check by turning this off.
    pub fn set_fast_lists(&self, on: bool) {
        self.lock().fast_lists = on;
    }

    /// The API goes away: the server stops and its port refuses
    /// connections (connections in flight are dropped). State, faults and
    /// recorded requests are kept for [`FakeStripe::come_back`].
    pub fn go_away(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// The API is back after [`FakeStripe::go_away`]: the same address
    /// (`url()` is unchanged), the same state. Panics if the port was taken
    /// meanwhile.
    pub fn come_back(&mut self) {
        if self.thread.is_some() {
            return;
        }
        let start = || -> std::io::Result<_> {
            // std sets SO_REUSEADDR: the port is free again at once.
            let listener = std::net::TcpListener::bind(self.addr)?;
            listener.set_nonblocking(true)?;
            let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
            let app_state = Arc::clone(&self.shared);
            let thread = std::thread::Builder::new()
                .name(format!("fake-stripe-{}", self.addr.port()))
                .spawn(move || serve_thread(listener, app_state, shutdown_rx, ready_tx))?;
            match ready_rx.recv() {
                Ok(Ok(())) => Ok((shutdown_tx, thread)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(std::io::Error::other("fake_stripe: server thread died")),
            }
        };
        match start() {
            Ok((tx, thread)) => {
                self.shutdown = Some(tx);
                self.thread = Some(thread);
            }
            Err(e) => panic!("fake_stripe: cannot listen on {} again: {e}", self.addr),
        }
    }

    // ----- observation -----

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    pub fn count_path(&self, path_prefix: &str) -> usize {
        self.count_where(|r| r.path.starts_with(path_prefix))
    }

    pub fn count_where(&self, f: impl Fn(&RecordedRequest) -> bool) -> usize {
        self.lock().requests.iter().filter(|r| f(r)).count()
    }

    /// The largest number of requests that arrived within any sliding window
    /// of length `window` (all requests, including rejected ones).
    pub fn max_requests_in_window(&self, window: Duration) -> usize {
        if window.is_zero() {
            return 0;
        }
        let mut times: Vec<Instant> = self.lock().requests.iter().map(|r| r.at).collect();
        times.sort();
        let mut best = 0;
        let mut start = 0;
        for (end, t) in times.iter().enumerate() {
            while t.duration_since(times[start]) >= window {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }

    /// How many 429 responses were sent.
    pub fn rate_limited_count(&self) -> usize {
        self.lock().status_429
    }

    /// Clear recorded requests and the 429 count (state and faults are kept).
    pub fn reset_counters(&self) {
        let mut st = self.lock();
        st.requests.clear();
        st.status_429 = 0;
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_thread(
    listener: std::net::TcpListener,
    shared: Shared,
    shutdown: tokio::sync::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<std::io::Result<()>>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fake-stripe-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let app = Router::new().fallback(handle).with_state(shared);
        let server = axum::serve(listener, app).into_future();
        tokio::select! {
            _ = server => {}
            _ = shutdown => {}
        }
    });
    // Drop in-flight connections (e.g. requests sleeping in a Timeout fault).
    rt.shutdown_background();
}

// ---------------------------------------------------------------------------
// Server state
// ---------------------------------------------------------------------------

type Shared = Arc<Mutex<ServerState>>;

fn lock(m: &Mutex<ServerState>) -> MutexGuard<'_, ServerState> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// List order: `created` desc, then insertion sequence desc (added later
/// first); the id only makes the key point back at its entry.
type SortKey = (Reverse<i64>, Reverse<u64>, Box<str>);

#[derive(Clone, Debug)]
struct Entry {
    body: Stored,
    deleted: bool,
    /// When it was last changed at runtime (None: indexed long ago).
    changed_at: Option<Instant>,
    /// The version search saw before the last change (None: invisible).
    search_prev: Option<Box<Value>>,
    /// Insertion sequence, set by `Store::insert` when the id is first added
    /// and kept on updates: breaks `created` ties like Stripe's own order.
    seq: u64,
}

/// A stored object: a full value, or a generated one kept as its record
/// (see [`Generated`]), which answers exactly what its value would.
#[derive(Clone, Debug)]
enum Stored {
    Value(Box<Value>),
    Generated(Arc<Generated>, GenRef),
}

impl Entry {
    fn new(obj: Value) -> Entry {
        Entry::with_body(Stored::Value(Box::new(obj)))
    }

    fn with_body(body: Stored) -> Entry {
        Entry {
            body,
            deleted: false,
            changed_at: None,
            search_prev: None,
            seq: 0,
        }
    }

    /// The object (a generated one is built on demand).
    fn obj(&self) -> Cow<'_, Value> {
        match &self.body {
            Stored::Value(v) => Cow::Borrowed(v),
            Stored::Generated(g, r) => Cow::Owned(g.value(*r)),
        }
    }

    /// The object, to change it (a generated one becomes a full value).
    fn obj_mut(&mut self) -> &mut Value {
        if let Stored::Generated(g, r) = &self.body {
            self.body = Stored::Value(Box::new(g.value(*r)));
        }
        match &mut self.body {
            Stored::Value(v) => v,
            Stored::Generated(..) => unreachable!("made a value above"),
        }
    }

    /// One top-level field (cheap for generated objects' common fields).
    fn field(&self, key: &str) -> Cow<'_, Value> {
        match &self.body {
            Stored::Value(v) => Cow::Borrowed(&v[key]),
            Stored::Generated(g, r) => Cow::Owned(g.field(*r, key)),
        }
    }

    fn id(&self) -> &str {
        match &self.body {
            Stored::Value(v) => v["id"].as_str().unwrap_or(""),
            Stored::Generated(g, r) => g.id(*r),
        }
    }

    fn created(&self) -> i64 {
        match &self.body {
            Stored::Value(v) => v["created"].as_i64().unwrap_or(0),
            Stored::Generated(g, r) => g.created(*r),
        }
    }

    fn key(&self) -> SortKey {
        (Reverse(self.created()), Reverse(self.seq), self.id().into())
    }
}

#[derive(Default, Debug)]
struct Store {
    by_id: HashMap<Box<str>, Entry>,
    order: BTreeSet<SortKey>,
    /// The last insertion sequence handed out.
    last_seq: u64,
}

impl Store {
    /// Add or replace an entry; a replaced one keeps its insertion sequence.
    fn insert(&mut self, mut entry: Entry) {
        let id: Box<str> = entry.id().into();
        if let Some(old) = self.by_id.get(&id) {
            entry.seq = old.seq;
            let k = old.key();
            self.order.remove(&k);
        } else {
            self.last_seq += 1;
            entry.seq = self.last_seq;
        }
        self.order.insert(entry.key());
        self.by_id.insert(id, entry);
    }

    /// Add entries with new ids to an empty store, in order (a generated
    /// account: one sort instead of a million tree insertions).
    fn insert_new(&mut self, entries: impl ExactSizeIterator<Item = Entry>) {
        if !self.by_id.is_empty() {
            entries.for_each(|e| self.insert(e));
            return;
        }
        self.by_id.reserve(entries.len());
        let mut keys = Vec::with_capacity(entries.len());
        let mut replaced = Vec::new();
        for mut entry in entries {
            self.last_seq += 1;
            entry.seq = self.last_seq;
            keys.push(entry.key());
            if let Some(old) = self.by_id.insert(entry.id().into(), entry) {
                replaced.push(old);
            }
        }
        self.order = keys.into_iter().collect();
        // An id given twice: the later object, in the first one's place
        // (as `insert` does).
        for old in replaced {
            self.order.remove(&old.key());
            if let Some(e) = self.by_id.get_mut(old.id()) {
                self.order.remove(&e.key());
                e.seq = e.seq.min(old.seq);
                self.order.insert(e.key());
            }
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        match self.by_id.remove(id) {
            Some(old) => {
                self.order.remove(&old.key());
                true
            }
            None => false,
        }
    }

    fn get(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.by_id.get_mut(id)
    }

    fn len(&self) -> usize {
        self.by_id.len()
    }

    fn entry_for(&self, key: &SortKey) -> Option<&Entry> {
        self.by_id.get(&key.2)
    }

    /// Newest first.
    fn iter_ordered(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.order.iter().filter_map(|k| self.entry_for(k))
    }

    /// Entries strictly older than `key`, newest first.
    fn after(&self, key: &SortKey) -> impl Iterator<Item = &Entry> + '_ {
        self.order
            .range((Bound::Excluded(key.clone()), Bound::Unbounded))
            .filter_map(|k| self.entry_for(k))
    }

    /// Entries strictly newer than `key`, closest to `key` first.
    fn before(&self, key: &SortKey) -> impl Iterator<Item = &Entry> + '_ {
        self.order
            .range((Bound::Unbounded, Bound::Excluded(key.clone())))
            .rev()
            .filter_map(|k| self.entry_for(k))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Customer,
    Subscription,
    PaymentMethod,
    Price,
    Product,
    Event,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Customer,
        Kind::Subscription,
        Kind::PaymentMethod,
        Kind::Price,
        Kind::Product,
        Kind::Event,
    ];

    /// As in Stripe's "No such X: 'id'" messages.
    fn noun(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Subscription => "subscription",
            Kind::PaymentMethod => "PaymentMethod",
            Kind::Price => "price",
            Kind::Product => "product",
            Kind::Event => "event",
        }
    }

    fn list_url(self) -> &'static str {
        match self {
            Kind::Customer => "/v1/customers",
            Kind::Subscription => "/v1/subscriptions",
            Kind::PaymentMethod => "/v1/payment_methods",
            Kind::Price => "/v1/prices",
            Kind::Product => "/v1/products",
            Kind::Event => "/v1/events",
        }
    }

    fn for_id(id: &str) -> Option<Kind> {
        if id.starts_with("cus_") {
            Some(Kind::Customer)
        } else if id.starts_with("sub_") {
            Some(Kind::Subscription)
        } else if id.starts_with("pm_") || id.starts_with("card_") || id.starts_with("src_") {
            Some(Kind::PaymentMethod)
        } else if id.starts_with("price_") || id.starts_with("plan_") {
            Some(Kind::Price)
        } else if id.starts_with("prod_") {
            Some(Kind::Product)
        } else if id.starts_with("evt_") {
            Some(Kind::Event)
        } else {
            None
        }
    }
}

enum Decision {
    Normal,
    RateLimited,
    Fault(Fault),
}

struct ServerState {
    api_key: String,
    customers: Store,
    subscriptions: Store,
    payment_methods: Store,
    prices: Store,
    products: Store,
    /// The event log (`GET /v1/events`), in list order like the other stores.
    events: Store,
    /// The fake's clock for runtime changes (None: the real time).
    clock: Option<i64>,
    /// Events older than this are neither listed nor retrieved.
    event_retention: Duration,
    /// The API version events are rendered with (`api_version`, object shape).
    event_version: ApiVersion,
    latency: Duration,
    rate_limit: Option<u32>,
    search_rate_limit: Option<u32>,
    rate_window: VecDeque<Instant>,
    search_window: VecDeque<Instant>,
    faults: VecDeque<FaultRule>,
    search_enabled: bool,
    search_lag: Duration,
    requests: Vec<RecordedRequest>,
    /// Customers and subscriptions pages written as text (see `list_text`);
    /// off only in the selftest that compares both ways.
    fast_lists: bool,
    next_seq: u64,
    status_429: usize,
    rng: Rng,
}

impl ServerState {
    fn from_account(account: Account) -> ServerState {
        let mut st = ServerState {
            api_key: account.api_key,
            customers: Store::default(),
            subscriptions: Store::default(),
            payment_methods: Store::default(),
            prices: Store::default(),
            products: Store::default(),
            events: Store::default(),
            clock: None,
            event_retention: DEFAULT_EVENT_RETENTION,
            event_version: ApiVersion::default_version(),
            latency: Duration::ZERO,
            rate_limit: None,
            search_rate_limit: None,
            rate_window: VecDeque::new(),
            search_window: VecDeque::new(),
            faults: VecDeque::new(),
            search_enabled: true,
            search_lag: Duration::ZERO,
            requests: Vec::new(),
            fast_lists: true,
            next_seq: 0,
            status_429: 0,
            rng: entropy_rng(),
        };
        let now = now_unix();
        for p in account.products {
            if let Some(p) = normalize_product(p, now) {
                st.products.insert(Entry::new(p));
            }
        }
        for p in account.prices {
            if let Some(p) = normalize_price(p, now) {
                st.ensure_product(&p["product"], now);
                st.prices.insert(Entry::new(p));
            }
        }
        // Objects made by `Account::add_*` / `generate` are complete already and
        // are inserted as they are (much faster for big accounts); anything
        // else is completed again.
        let pm_template = payment_method_template("");
        for p in account.payment_methods {
            let p = if has_all_keys(&p, &pm_template) {
                Some(p)
            } else {
                normalize_payment_method(p, None, now)
            };
            if let Some(p) = p {
                st.payment_methods.insert(Entry::new(p));
            }
        }
        let customer_template = customer_template("");
        for c in account.customers {
            let deleted = c.get("deleted") == Some(&Value::Bool(true));
            let c = if !deleted && has_all_keys(&c, &customer_template) {
                Some(c)
            } else {
                normalize_customer(c, None, now)
            };
            if let Some(c) = c {
                let mut e = Entry::new(c);
                e.deleted = deleted;
                st.customers.insert(e);
            }
        }
        let sub_template = subscription_template("");
        let item_template = subscription_item_template("", "", 0);
        for s in account.subscriptions {
            let complete = has_all_keys(&s, &sub_template)
                && s.get("current_period_start").is_none()
                && s["items"]["data"].as_array().is_some_and(|items| {
                    !items.is_empty()
                        && items.iter().all(|i| {
                            has_all_keys(i, &item_template)
                                && i["price"]["object"] == "price"
                                && i["current_period_start"].is_i64()
                                && i["current_period_end"].is_i64()
                                && i["price"]["id"]
                                    .as_str()
                                    .is_some_and(|id| st.prices.get(id).is_some())
                        })
                });
            let s = if complete {
                Some(s)
            } else {
                st.normalize_subscription(s, false)
            };
            if let Some(s) = s {
                st.subscriptions.insert(Entry::new(s));
            }
        }
        st
    }

    /// A generated account: its catalog as values, the rest as records.
    fn from_generated(generated: Generated) -> ServerState {
        let mut catalog = Account::new();
        catalog.products = generated.products.clone();
        catalog.prices = generated.prices.clone();
        let mut st = ServerState::from_account(catalog);
        let g = Arc::new(generated);
        let n = |len: usize| 0..u32::try_from(len).unwrap_or(u32::MAX);
        let body = |r: GenRef| Entry::with_body(Stored::Generated(Arc::clone(&g), r));
        let pms = n(g.payment_methods.len()).map(|i| body(GenRef::PaymentMethod(i)));
        st.payment_methods.insert_new(pms);
        let customers = n(g.customers.len()).map(|i| body(GenRef::Customer(i)));
        st.customers.insert_new(customers);
        let subscriptions = n(g.subscriptions.len()).map(|i| body(GenRef::Subscription(i)));
        st.subscriptions.insert_new(subscriptions);
        st
    }

    fn store(&self, kind: Kind) -> &Store {
        match kind {
            Kind::Customer => &self.customers,
            Kind::Subscription => &self.subscriptions,
            Kind::PaymentMethod => &self.payment_methods,
            Kind::Price => &self.prices,
            Kind::Product => &self.products,
            Kind::Event => &self.events,
        }
    }

    fn store_mut(&mut self, kind: Kind) -> &mut Store {
        match kind {
            Kind::Customer => &mut self.customers,
            Kind::Subscription => &mut self.subscriptions,
            Kind::PaymentMethod => &mut self.payment_methods,
            Kind::Price => &mut self.prices,
            Kind::Product => &mut self.products,
            Kind::Event => &mut self.events,
        }
    }

    fn ensure_product(&mut self, product: &Value, now: i64) {
        if let Some(id) = product.as_str()
            && self.products.get(id).is_none()
            && let Some(p) = normalize_product(json!({ "id": id }), now)
        {
            self.products.insert(Entry::new(p));
        }
    }

    fn price_for(&mut self, r: &Value, now: i64) -> Value {
        let id = match r {
            Value::String(s) => Some(s.clone()),
            Value::Object(m) => m.get("id").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        if let Some(e) = id.as_deref().and_then(|id| self.prices.get(id))
            && !r.is_object()
        {
            return e.obj().into_owned();
        }
        let partial = match r {
            Value::Object(_) => r.clone(),
            Value::String(s) => json!({ "id": s }),
            _ => json!({}),
        };
        let price = normalize_price(partial, now).unwrap_or_else(|| json!({}));
        self.ensure_product(&price["product"], now);
        self.prices.insert(Entry::new(price.clone()));
        price
    }

    fn normalize_subscription(&mut self, partial: Value, merge_existing: bool) -> Option<Value> {
        let now = self.now();
        let existing = if merge_existing {
            partial
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| self.subscriptions.get(id))
                .map(|e| e.obj().into_owned())
        } else {
            None
        };
        let mut price_of = |r: &Value| self.price_for(r, now);
        normalize_subscription(partial, existing.as_ref(), &mut price_of, now)
    }

    fn upsert_subscription(&mut self, partial: Value) -> Value {
        let old = partial
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| self.subscriptions.get(id))
            .map(|e| e.obj().into_owned());
        match self.normalize_subscription(partial, true) {
            Some(s) => {
                self.subscriptions.insert(Entry::new(s.clone()));
                self.record_subscription_change(old.as_ref(), &s);
                s
            }
            None => Value::Null,
        }
    }

    /// Cancel a subscription now, like `DELETE /v1/subscriptions/{id}`; an
    /// ended one is left alone (no event). None when the id is unknown.
    fn cancel_subscription(&mut self, id: &str) -> Option<Value> {
        let ts = self.now();
        let e = self.subscriptions.get_mut(id)?;
        let obj = e.obj_mut();
        if subscription_ended(obj) {
            return Some(obj.clone());
        }
        let old = obj.clone();
        obj["status"] = json!("canceled");
        obj["canceled_at"] = json!(ts);
        obj["ended_at"] = json!(ts);
        obj["cancel_at_period_end"] = json!(false);
        let new = obj.clone();
        self.record_subscription_change(Some(&old), &new);
        Some(new)
    }

    /// Stripe's events for a subscription change: created, deleted when it
    /// becomes `canceled` (that is how Stripe reports a cancellation),
    /// otherwise updated (nothing when nothing changed).
    fn record_subscription_change(&mut self, old: Option<&Value>, new: &Value) {
        match old {
            None => {
                let object = self.event_view(Kind::Subscription, new);
                self.record_event("customer.subscription.created", object, None);
            }
            Some(old) if !subscription_ended(old) && new["status"] == "canceled" => {
                let object = self.event_view(Kind::Subscription, new);
                self.record_event("customer.subscription.deleted", object, None);
            }
            Some(old) => self.record_update(Kind::Subscription, old, new),
        }
    }

    fn search_view<'a>(&self, e: &'a Entry, now: Instant) -> Option<Cow<'a, Value>> {
        if e.deleted {
            return None;
        }
        match e.changed_at {
            Some(t) if now.saturating_duration_since(t) < self.search_lag => {
                e.search_prev.as_deref().map(Cow::Borrowed)
            }
            _ => Some(e.obj()),
        }
    }

    fn upsert_customer(&mut self, partial: Value, now: Instant) -> Value {
        let id = partial.get("id").and_then(Value::as_str).map(str::to_owned);
        let existing = id.as_deref().and_then(|id| self.customers.get(id));
        let prev_visible = existing
            .and_then(|e| self.search_view(e, now))
            .map(Cow::into_owned);
        let base = existing
            .filter(|e| !e.deleted)
            .map(|e| e.obj().into_owned());
        match normalize_customer(partial, base.as_ref(), self.now()) {
            Some(c) => {
                self.customers.insert(Entry {
                    body: Stored::Value(Box::new(c.clone())),
                    deleted: false,
                    changed_at: Some(now),
                    search_prev: prev_visible.map(Box::new),
                    seq: 0,
                });
                match base {
                    Some(old) => self.record_update(Kind::Customer, &old, &c),
                    None => {
                        self.record_event("customer.created", c.clone(), None);
                    }
                }
                c
            }
            None => Value::Null,
        }
    }

    fn delete_customer(&mut self, id: &str, now: Instant) {
        let ts = self.now();
        let snapshot = match self.customers.get_mut(id) {
            Some(e) if e.deleted => return,
            Some(e) => {
                e.deleted = true;
                e.changed_at = Some(now);
                e.search_prev = None;
                e.obj().into_owned()
            }
            None => {
                let mut obj = customer_template(id);
                obj["created"] = json!(ts);
                let mut e = Entry::new(obj.clone());
                e.deleted = true;
                e.changed_at = Some(now);
                self.customers.insert(e);
                obj
            }
        };
        // Stripe: deleting a customer immediately cancels its subscriptions
        // (one customer.subscription.deleted each, then customer.deleted).
        let mut ids: Vec<String> = self
            .subscriptions
            .iter_ordered()
            .filter(|e| {
                *e.field("customer") == id
                    && !matches!(
                        e.field("status").as_str(),
                        Some("canceled") | Some("incomplete_expired")
                    )
            })
            .map(|e| e.id().to_owned())
            .collect();
        ids.reverse();
        for sid in ids {
            self.cancel_subscription(&sid);
        }
        // The event carries the customer as it was, without `deleted`.
        self.record_event("customer.deleted", snapshot, None);
    }

    fn upsert_payment_method(&mut self, partial: Value) -> Value {
        let id = partial.get("id").and_then(Value::as_str);
        let old = id
            .and_then(|id| self.payment_methods.get(id))
            .map(|e| e.obj().into_owned());
        let Some(pm) = normalize_payment_method(partial, old.as_ref(), self.now()) else {
            return Value::Null;
        };
        self.payment_methods.insert(Entry::new(pm.clone()));
        // Stripe has no payment_method.created: a payment method shows up in
        // the log when it is attached to a customer.
        let old_customer = old.as_ref().map_or(Value::Null, |o| o["customer"].clone());
        match (old_customer.is_null(), pm["customer"].is_null()) {
            (true, false) => {
                self.record_event("payment_method.attached", pm.clone(), None);
            }
            (false, true) => {
                let previous = Map::from_iter([("customer".to_owned(), old_customer)]);
                self.record_event("payment_method.detached", pm.clone(), Some(previous));
            }
            _ => {
                if let Some(old) = old {
                    self.record_update(Kind::PaymentMethod, &old, &pm);
                }
            }
        }
        pm
    }

    // ----- clock and event log -----

    /// The fake's clock: `created` of new objects and events, retention.
    fn now(&self) -> i64 {
        self.clock.unwrap_or_else(now_unix)
    }

    /// An object as an event carries it (rendered with the events' API version).
    fn event_view(&self, kind: Kind, obj: &Value) -> Value {
        match kind {
            Kind::Subscription => render_subscription(obj, &self.event_version),
            _ => obj.clone(),
        }
    }

    /// Record `<noun>.updated` with `previous_attributes`; nothing when the
    /// object did not change (Stripe sends no event for a no-op update).
    fn record_update(&mut self, kind: Kind, old: &Value, new: &Value) {
        let old = self.event_view(kind, old);
        let new = self.event_view(kind, new);
        let previous = previous_attributes(&old, &new);
        if previous.is_empty() {
            return;
        }
        let event_type = match kind {
            Kind::Subscription => "customer.subscription.updated",
            Kind::PaymentMethod => "payment_method.updated",
            Kind::Price => "price.updated",
            Kind::Product => "product.updated",
            Kind::Customer | Kind::Event => "customer.updated",
        };
        self.record_event(event_type, new, Some(previous));
    }

    /// Append an event to the log, stamped with the fake's clock; returns it.
    fn record_event(
        &mut self,
        event_type: &str,
        object: Value,
        previous_attributes: Option<Map<String, Value>>,
    ) -> Value {
        let id = loop {
            let id = format!("evt_1{}", self.rng.alnum(23));
            if self.events.get(&id).is_none() {
                break id;
            }
        };
        let mut data = Map::new();
        data.insert("object".to_owned(), object);
        if let Some(previous) = previous_attributes {
            data.insert("previous_attributes".to_owned(), Value::Object(previous));
        }
        let event = json!({
            "id": id,
            "object": "event",
            "api_version": self.event_version.full,
            "created": self.now(),
            "data": data,
            "livemode": false,
            "pending_webhooks": 0,
            "request": { "id": null, "idempotency_key": null },
            "type": event_type,
        });
        self.events.insert(Entry::new(event.clone()));
        event
    }

    /// Record `invoice.paid` for a subscription's current period.
    fn record_invoice_paid(&mut self, subscription_id: &str) -> Option<Value> {
        let sub = self.subscriptions.get(subscription_id)?.obj().into_owned();
        let email = sub["customer"]
            .as_str()
            .and_then(|c| self.customers.get(c))
            .map_or(Value::Null, |e| e.field("email").into_owned());
        let id = format!("in_1{}", self.rng.alnum(23));
        let invoice = invoice_for(&id, &sub, &email, self.now(), &self.event_version);
        Some(self.record_event("invoice.paid", invoice, None))
    }

    /// Whether an event is still inside the retention window.
    fn event_retained(&self, e: &Entry) -> bool {
        let age = i64::try_from(self.event_retention.as_secs()).unwrap_or(i64::MAX);
        e.created() >= self.now().saturating_sub(age)
    }

    fn take_fault(&mut self, path: &str) -> Option<Fault> {
        let idx = self.faults.iter().position(|r| {
            r.path_prefix
                .as_deref()
                .is_none_or(|prefix| path.starts_with(prefix))
        })?;
        let rule = &mut self.faults[idx];
        let fault = rule.fault.clone();
        if rule.times != usize::MAX {
            rule.times = rule.times.saturating_sub(1);
            if rule.times == 0 {
                self.faults.remove(idx);
            }
        }
        Some(fault)
    }

    /// Look an id up in any store and render it (for expansion).
    fn resolve(&self, id: &str, version: &ApiVersion) -> Option<Value> {
        let kind = Kind::for_id(id)?;
        let e = self.store(kind).get(id)?;
        Some(render(kind, e, version))
    }
}

/// True when `obj` has every top-level key of `template`.
fn has_all_keys(obj: &Value, template: &Value) -> bool {
    match (obj.as_object(), template.as_object()) {
        (Some(o), Some(t)) => t.keys().all(|k| o.contains_key(k)),
        _ => false,
    }
}

/// Canceled or expired: nothing more happens to it (no more cancellation).
fn subscription_ended(sub: &Value) -> bool {
    matches!(
        sub["status"].as_str(),
        Some("canceled") | Some("incomplete_expired")
    )
}

/// A plain hash (like `metadata`), as opposed to a Stripe object or list
/// (`items`, an expanded price) that `previous_attributes` reports whole.
fn is_plain_hash(v: &Value) -> bool {
    v.as_object().is_some_and(|m| !m.contains_key("object"))
}

/// Stripe's `previous_attributes`: the old value of every changed key,
/// recursing into plain hashes; a key the update added is `null`.
fn previous_attributes(old: &Value, new: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return out;
    };
    for (k, ov) in o {
        match n.get(k) {
            Some(nv) if nv == ov => {}
            Some(nv) if is_plain_hash(ov) && is_plain_hash(nv) => {
                let inner = previous_attributes(ov, nv);
                if !inner.is_empty() {
                    out.insert(k.clone(), Value::Object(inner));
                }
            }
            _ => {
                out.insert(k.clone(), ov.clone());
            }
        }
    }
    for k in n.keys() {
        if !o.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    out
}

/// A paid invoice for the current period of `sub` (first item), in the
/// shape of `version`: basil and later carry the subscription under
/// `parent.subscription_details`, older versions at the top level.
fn invoice_for(id: &str, sub: &Value, email: &Value, now: i64, version: &ApiVersion) -> Value {
    let basil = version.date.as_str() >= BASIL_VERSION_DATE;
    let sub_id = sub["id"].clone();
    let metadata = sub["metadata"].clone();
    let item = sub["items"]["data"].get(0).cloned().unwrap_or(Value::Null);
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let amount = item["price"]["unit_amount"].as_i64().unwrap_or(0) * quantity;
    let period = json!({
        "end": item["current_period_end"],
        "start": item["current_period_start"],
    });
    let mut line = json!({
        "id": format!("il_{}", &id[3..]),
        "object": "line_item",
        "amount": amount,
        "currency": sub["currency"],
        "description": format!("{quantity} × Subscription"),
        "discount_amounts": [],
        "discountable": true,
        "discounts": [],
        "invoice": id,
        "livemode": false,
        "metadata": {},
        "period": period,
        "quantity": quantity,
    });
    let mut invoice = json!({
        "id": id,
        "object": "invoice",
        "account_country": "US",
        "account_name": null,
        "amount_due": amount,
        "amount_paid": amount,
        "amount_remaining": 0,
        "attempt_count": 1,
        "attempted": true,
        "auto_advance": false,
        "billing_reason": "subscription_cycle",
        "collection_method": sub["collection_method"],
        "created": now,
        "currency": sub["currency"],
        "customer": sub["customer"],
        "customer_email": email,
        "default_payment_method": null,
        "description": null,
        "discounts": [],
        "due_date": null,
        "effective_at": now,
        "hosted_invoice_url": null,
        "invoice_pdf": null,
        "lines": {
            "object": "list",
            "data": [],
            "has_more": false,
            "url": format!("/v1/invoices/{id}/lines"),
        },
        "livemode": false,
        "metadata": {},
        "number": null,
        "period_end": item["current_period_start"],
        "period_start": item["current_period_start"],
        "status": "paid",
        "status_transitions": {
            "finalized_at": now,
            "marked_uncollectible_at": null,
            "paid_at": now,
            "voided_at": null,
        },
        "subtotal": amount,
        "test_clock": sub["test_clock"],
        "total": amount,
    });
    if basil {
        line["parent"] = json!({
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": null,
                "proration": false,
                "proration_details": { "credited_items": null },
                "subscription": sub_id,
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        });
        line["pricing"] = json!({
            "price_details": { "price": item["price"]["id"], "product": item["price"]["product"] },
            "type": "price_details",
            "unit_amount_decimal": item["price"]["unit_amount_decimal"],
        });
        invoice["parent"] = json!({
            "quote_details": null,
            "subscription_details": { "metadata": metadata, "subscription": sub_id },
            "type": "subscription_details",
        });
        // As in Stripe's own basil example: the old field is still there, null.
        invoice["subscription"] = Value::Null;
    } else {
        line["plan"] = item["plan"].clone();
        line["price"] = item["price"].clone();
        line["proration"] = json!(false);
        line["subscription"] = sub_id.clone();
        line["subscription_item"] = item["id"].clone();
        line["type"] = json!("subscription");
        invoice["paid"] = json!(true);
        invoice["subscription"] = sub_id;
        invoice["subscription_details"] = json!({ "metadata": metadata });
    }
    invoice["lines"]["data"] = json!([line]);
    invoice
}

fn deleted_stub(id: &str) -> Value {
    json!({ "id": id, "object": "customer", "deleted": true })
}

fn render(kind: Kind, e: &Entry, version: &ApiVersion) -> Value {
    match kind {
        Kind::Customer if e.deleted => deleted_stub(e.id()),
        Kind::Subscription => render_subscription(&e.obj(), version),
        _ => e.obj().into_owned(),
    }
}

fn render_subscription(sub: &Value, version: &ApiVersion) -> Value {
    let mut v = sub.clone();
    if version.date.as_str() < BASIL_VERSION_DATE {
        let first = sub["items"]["data"].get(0);
        let start = first.map_or(Value::Null, |i| i["current_period_start"].clone());
        let end = first.map_or(Value::Null, |i| i["current_period_end"].clone());
        if let Some(items) = v["items"]["data"].as_array_mut() {
            for item in items {
                if let Some(m) = item.as_object_mut() {
                    m.remove("current_period_start");
                    m.remove("current_period_end");
                }
            }
        }
        if let Some(m) = v.as_object_mut() {
            m.insert("current_period_start".to_owned(), start);
            m.insert("current_period_end".to_owned(), end);
        }
    }
    v
}

// ---------------------------------------------------------------------------
// HTTP handling
// ---------------------------------------------------------------------------

struct Reply {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    /// Add Request-Id / Stripe-Version.
    stripe: bool,
    version: Option<String>,
}

impl Reply {
    /// A 200 whose body is JSON text already.
    fn json_text(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            body,
            content_type: "application/json",
            headers: Vec::new(),
            stripe: true,
            version: None,
        }
    }

    fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            body: serde_json::to_vec_pretty(v).unwrap_or_default(),
            content_type: "application/json",
            headers: Vec::new(),
            stripe: true,
            version: None,
        }
    }

    fn error(
        status: u16,
        etype: &str,
        message: impl Into<String>,
        code: Option<&str>,
        param: Option<&str>,
    ) -> Reply {
        let mut err = Map::new();
        if let Some(code) = code {
            err.insert("code".into(), json!(code));
            err.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        err.insert("message".into(), json!(message.into()));
        if let Some(param) = param {
            err.insert("param".into(), json!(param));
        }
        err.insert("type".into(), json!(etype));
        Reply::json(status, &json!({ "error": Value::Object(err) }))
    }

    fn invalid(message: impl Into<String>, code: Option<&str>, param: Option<&str>) -> Reply {
        Reply::error(400, "invalid_request_error", message, code, param)
    }
}

fn unrecognized(method: &str, path: &str) -> Reply {
    Reply::error(
        404,
        "invalid_request_error",
        format!(
            "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
        ),
        None,
        None,
    )
}

fn rate_limit_reply() -> Reply {
    Reply::error(
        429,
        "invalid_request_error",
        "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.",
        Some("rate_limit"),
        None,
    )
}

fn status_fault_reply(code: u16, should_retry: Option<bool>, retry_after: Option<u64>) -> Reply {
    let mut r = match code {
        400 => Reply::invalid("Invalid request (injected by fake_stripe).", None, None),
        401 => Reply::error(
            401,
            "invalid_request_error",
            "Invalid API Key provided: sk_test_****",
            None,
            None,
        ),
        402 => Reply::error(
            402,
            "card_error",
            "Your card was declined.",
            Some("card_declined"),
            None,
        ),
        403 => Reply::error(
            403,
            "invalid_request_error",
            "The provided key does not have the required permissions for this endpoint.",
            None,
            None,
        ),
        404 => Reply::error(
            404,
            "invalid_request_error",
            "No such object (injected by fake_stripe).",
            Some("resource_missing"),
            None,
        ),
        409 => Reply::error(
            409,
            "invalid_request_error",
            "This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request. If you see this error frequently and are making multiple concurrent requests to a single object, make your requests serially or at a lower rate.",
            Some("lock_timeout"),
            None,
        ),
        429 => rate_limit_reply(),
        c if c >= 500 => Reply::error(c, "api_error", "An unknown error occurred", None, None),
        c => Reply::error(
            c,
            "invalid_request_error",
            format!("Injected error {c}"),
            None,
            None,
        ),
    };
    r.status = code;
    if let Some(b) = should_retry {
        r.headers.push(("stripe-should-retry", b.to_string()));
    }
    if let Some(s) = retry_after {
        r.headers.push(("retry-after", s.to_string()));
    }
    r
}

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

async fn handle(AxState(shared): AxState<Shared>, req: Request) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let headers = req.headers().clone();
    drop(req);

    let (seq, request_id, latency, decision) = {
        let mut st = lock(&shared);
        let now = Instant::now();
        let seq = st.next_seq;
        st.next_seq += 1;
        let request_id = format!("req_{}", st.rng.alnum(14));
        let (auth, _) = auth_state(&headers, &st.api_key);
        let limit = st.rate_limit;
        let mut admitted = window_admit(&mut st.rate_window, limit, now);
        if admitted && path.ends_with("/search") {
            let limit = st.search_rate_limit;
            admitted = window_admit(&mut st.search_window, limit, now);
        }
        let decision = if !admitted {
            Decision::RateLimited
        } else {
            match st.take_fault(&path) {
                Some(f) => Decision::Fault(f),
                None => Decision::Normal,
            }
        };
        let recorded_headers = headers
            .iter()
            .filter(|(k, _)| k.as_str() != "authorization")
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        st.requests.push(RecordedRequest {
            seq,
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            headers: recorded_headers,
            auth,
            stripe_version: header_str(&headers, "stripe-version"),
            idempotency_key: header_str(&headers, "idempotency-key"),
            status: 0,
            request_id: request_id.clone(),
            at: now,
            fault: match &decision {
                Decision::Normal => None,
                Decision::RateLimited => Some("rate_limit".to_owned()),
                Decision::Fault(f) => Some(f.describe()),
            },
        });
        (seq, request_id, st.latency, decision)
    };

    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let mut truncate = false;
    let mut reply = match decision {
        Decision::RateLimited => rate_limit_reply(),
        Decision::Normal => process(&shared, &method, &path, &query, &headers),
        Decision::Fault(fault) => match fault {
            Fault::Status {
                code,
                should_retry,
                retry_after,
            } => status_fault_reply(code, should_retry, retry_after),
            Fault::Timeout(d) => {
                tokio::time::sleep(d).await;
                process(&shared, &method, &path, &query, &headers)
            }
            Fault::TruncatedBody => {
                truncate = true;
                process(&shared, &method, &path, &query, &headers)
            }
            Fault::Html => Reply {
                status: 502,
                body: HTML_502.as_bytes().to_vec(),
                content_type: "text/html",
                headers: Vec::new(),
                stripe: false,
                version: None,
            },
            Fault::Raw {
                status,
                content_type,
                body,
            } => {
                let mut r = Reply::json(status, &Value::Null);
                r.body = body.into_bytes();
                r.headers.push(("content-type", content_type));
                r.content_type = "";
                r
            }
        },
    };
    if truncate {
        reply.status = 200;
        let half = reply.body.len() / 2;
        reply.body.truncate(half);
    }
    if reply.stripe && reply.version.is_none() {
        reply.version = Some(DEFAULT_API_VERSION.to_owned());
    }

    let response = build_response(reply, &request_id);
    let sent = response.status().as_u16();
    {
        let mut st = lock(&shared);
        if let Some(r) = st.requests.iter_mut().rev().find(|r| r.seq == seq) {
            r.status = sent;
        }
        if sent == 429 {
            st.status_429 += 1;
        }
    }
    response
}

fn build_response(reply: Reply, request_id: &str) -> Response {
    let mut b = Response::builder().status(reply.status);
    if !reply.content_type.is_empty() {
        b = b.header("content-type", reply.content_type);
    }
    if reply.stripe {
        b = b.header("request-id", request_id);
        if let Some(v) = &reply.version {
            b = b.header("stripe-version", v.as_str());
        }
    }
    if reply.status == 401 {
        b = b.header("www-authenticate", "Basic realm=\"Stripe\"");
    }
    for (k, v) in reply.headers {
        b = b.header(k, v);
    }
    b.body(Body::from(reply.body)).unwrap_or_else(|_| {
        let mut r = Response::new(Body::from(
            "fake_stripe: could not build the response (bad status or header)",
        ));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn window_admit(window: &mut VecDeque<Instant>, limit: Option<u32>, now: Instant) -> bool {
    let Some(limit) = limit else {
        return true;
    };
    while let Some(&front) = window.front() {
        if now.saturating_duration_since(front) >= Duration::from_secs(1) {
            window.pop_front();
        } else {
            break;
        }
    }
    if window.len() >= limit as usize {
        false
    } else {
        window.push_back(now);
        true
    }
}

/// Returns the auth state and the key presented, if any.
fn auth_state(headers: &HeaderMap, key: &str) -> (AuthState, Option<String>) {
    let Some(raw) = headers.get("authorization") else {
        return (AuthState::Missing, None);
    };
    let s = String::from_utf8_lossy(raw.as_bytes()).trim().to_owned();
    let scheme = |name: &str| {
        s.get(..name.len())
            .filter(|p| p.eq_ignore_ascii_case(name))
            .and_then(|_| s.get(name.len()..))
            .map(str::trim)
    };
    let presented = if let Some(k) = scheme("bearer ") {
        k.to_owned()
    } else if let Some(b64) = scheme("basic ") {
        let decoded = base64_decode(b64).unwrap_or_default();
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        decoded.split(':').next().unwrap_or("").to_owned()
    } else if s.eq_ignore_ascii_case("bearer") || s.eq_ignore_ascii_case("basic") {
        String::new()
    } else {
        s.clone()
    };
    if presented.is_empty() {
        (AuthState::Missing, None)
    } else if presented == key {
        (AuthState::Valid, Some(presented))
    } else {
        (AuthState::Invalid, Some(presented))
    }
}

/// Mask a key like Stripe does: keep the `sk_test_` style prefix and the last
/// four characters, star the rest; never return the key whole.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let underscores: Vec<usize> = chars
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == '_')
        .map(|(i, _)| i)
        .take(2)
        .collect();
    let prefix_len = match underscores.as_slice() {
        [_, second] if *second < 8 => second + 1,
        _ => 0,
    };
    let rest = chars.len() - prefix_len;
    let prefix: String = chars[..prefix_len].iter().collect();
    if rest <= 4 {
        format!("{prefix}{}", "*".repeat(rest.max(1)))
    } else {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{prefix}{}{tail}", "*".repeat(rest - 4))
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[derive(Clone, Debug)]
struct ApiVersion {
    full: String,
    date: String,
}

impl ApiVersion {
    fn default_version() -> ApiVersion {
        ApiVersion {
            full: DEFAULT_API_VERSION.to_owned(),
            date: DEFAULT_API_VERSION[..10].to_owned(),
        }
    }
}

fn parse_version(v: &str) -> Option<ApiVersion> {
    let v = v.trim();
    let b = v.as_bytes();
    if b.len() < 10 {
        return None;
    }
    let date_ok = b[..10].iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        _ => c.is_ascii_digit(),
    });
    if !date_ok {
        return None;
    }
    let rest = &v[10..];
    let suffix_ok = rest.is_empty()
        || (rest.len() > 1
            && rest.starts_with('.')
            && rest[1..]
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c == b'_'));
    if !suffix_ok {
        return None;
    }
    Some(ApiVersion {
        full: v.to_owned(),
        date: v[..10].to_owned(),
    })
}

fn process(shared: &Shared, method: &str, path: &str, query: &str, headers: &HeaderMap) -> Reply {
    let st = lock(shared);
    match auth_state(headers, &st.api_key) {
        (AuthState::Valid, _) => {}
        (AuthState::Missing, _) => {
            return Reply::error(
                401,
                "invalid_request_error",
                "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
                None,
                None,
            );
        }
        (AuthState::Invalid, presented) => {
            return Reply::error(
                401,
                "invalid_request_error",
                format!(
                    "Invalid API Key provided: {}",
                    mask_key(presented.as_deref().unwrap_or(""))
                ),
                None,
                None,
            );
        }
    }
    let version = match header_str(headers, "stripe-version") {
        None => parse_version(DEFAULT_API_VERSION),
        Some(v) => match parse_version(&v) {
            Some(v) => Some(v),
            None => {
                return Reply::invalid(format!("Invalid Stripe API version: {v}"), None, None);
            }
        },
    };
    let Some(version) = version else {
        return Reply::error(500, "api_error", "bad default version", None, None);
    };
    let mut reply = route(&st, method, path, query, &version);
    reply.version = Some(version.full.clone());
    reply
}

fn route(st: &ServerState, method: &str, path: &str, query: &str, version: &ApiVersion) -> Reply {
    if method != "GET" {
        return unrecognized(method, path);
    }
    let segs: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| percent_decode(s, false))
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let pairs = parse_query_string(query);
    let now = Instant::now();
    let ok = |v: Value| Reply::json(200, &v);
    let result = match segs.as_slice() {
        ["v1", "customers"] => list_customers(st, &pairs, version),
        ["v1", "subscriptions"] => list_subscriptions(st, &pairs, version),
        ["v1", "payment_methods"] => list_payment_methods(st, &pairs, version),
        ["v1", "events"] => list_events(st, &pairs, version),
        ["v1", "customers", "search"] => search_customers(st, &pairs, version, now).map(ok),
        ["v1", "customers", id] if !id.is_empty() => {
            retrieve(st, Kind::Customer, id, &pairs, version).map(ok)
        }
        ["v1", "subscriptions", id] if !id.is_empty() => {
            retrieve(st, Kind::Subscription, id, &pairs, version).map(ok)
        }
        ["v1", "payment_methods", id] if !id.is_empty() => {
            retrieve(st, Kind::PaymentMethod, id, &pairs, version).map(ok)
        }
        ["v1", "prices", id] if !id.is_empty() => {
            retrieve(st, Kind::Price, id, &pairs, version).map(ok)
        }
        ["v1", "products", id] if !id.is_empty() => {
            retrieve(st, Kind::Product, id, &pairs, version).map(ok)
        }
        ["v1", "events", id] if !id.is_empty() => retrieve_event(st, id, &pairs, version).map(ok),
        _ => return unrecognized(method, path),
    };
    result.unwrap_or_else(|r| r)
}

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

#[derive(Default, Debug)]
struct Params {
    single: HashMap<String, String>,
    expand: Vec<String>,
    created: Vec<(String, i64)>,
}

impl Params {
    fn get(&self, k: &str) -> Option<&str> {
        self.single.get(k).map(String::as_str)
    }
}

/// Split `key[sub]` into (`key`, Some(`sub`)).
fn split_key(k: &str) -> (&str, Option<&str>) {
    match k.find('[') {
        Some(i) if k.ends_with(']') => (&k[..i], Some(&k[i + 1..k.len() - 1])),
        _ => (k, None),
    }
}

fn parse_params(pairs: &[(String, String)], allowed: &[&str]) -> Result<Params, Reply> {
    let mut p = Params::default();
    for (k, v) in pairs {
        let (base, sub) = split_key(k);
        let unknown = || {
            Reply::invalid(
                format!("Received unknown parameter: {k}"),
                Some("parameter_unknown"),
                Some(k),
            )
        };
        if base == "expand" {
            match sub {
                Some(s) if s.is_empty() || s.bytes().all(|c| c.is_ascii_digit()) => {
                    if !v.is_empty() {
                        p.expand.push(v.clone());
                    }
                }
                None => {
                    return Err(Reply::invalid(
                        "Invalid array",
                        Some("parameter_invalid_array"),
                        Some("expand"),
                    ));
                }
                Some(_) => return Err(unknown()),
            }
            continue;
        }
        if !allowed.contains(&base) {
            return Err(unknown());
        }
        if base == "created" {
            let op = match sub {
                None => "eq",
                Some(op @ ("gt" | "gte" | "lt" | "lte")) => op,
                Some(_) => return Err(unknown()),
            };
            if v.is_empty() {
                continue;
            }
            let n: i64 = v.parse().map_err(|_| {
                Reply::invalid(
                    format!("Invalid integer: {v}"),
                    Some("parameter_invalid_integer"),
                    Some(k),
                )
            })?;
            p.created.push((op.to_owned(), n));
            continue;
        }
        if sub.is_some() {
            return Err(unknown());
        }
        if !v.is_empty() {
            p.single.insert(base.to_owned(), v.clone());
        }
    }
    Ok(p)
}

fn parse_limit(p: &Params) -> Result<usize, Reply> {
    let Some(raw) = p.get("limit") else {
        return Ok(10);
    };
    let n: i64 = raw.trim().parse().map_err(|_| {
        Reply::invalid(
            format!("Invalid integer: {raw}"),
            Some("parameter_invalid_integer"),
            Some("limit"),
        )
    })?;
    if n < 1 {
        return Err(Reply::invalid(
            "This value must be greater than or equal to 1.",
            Some("parameter_invalid_integer"),
            Some("limit"),
        ));
    }
    if n > 100 {
        return Err(Reply::invalid(
            "This value must be less than or equal to 100.",
            Some("parameter_invalid_integer"),
            Some("limit"),
        ));
    }
    Ok(n as usize)
}

fn created_matches(e: &Entry, filters: &[(String, i64)]) -> bool {
    if filters.is_empty() {
        return true;
    }
    let c = e.created();
    filters.iter().all(|(op, n)| match op.as_str() {
        "gt" => c > *n,
        "gte" => c >= *n,
        "lt" => c < *n,
        "lte" => c <= *n,
        _ => c == *n,
    })
}

// ---------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------

fn retrieve(
    st: &ServerState,
    kind: Kind,
    id: &str,
    pairs: &[(String, String)],
    version: &ApiVersion,
) -> Result<Value, Reply> {
    let p = parse_params(pairs, &[])?;
    let Some(e) = st.store(kind).get(id) else {
        return Err(Reply::error(
            404,
            "invalid_request_error",
            format!("No such {}: '{id}'", kind.noun()),
            Some("resource_missing"),
            Some("id"),
        ));
    };
    let mut v = render(kind, e, version);
    if !(kind == Kind::Customer && e.deleted) {
        apply_expansions(st, &mut v, &p.expand, version, None)?;
    }
    Ok(v)
}

fn list_customers(
    st: &ServerState,
    pairs: &[(String, String)],
    version: &ApiVersion,
) -> Result<Reply, Reply> {
    let p = parse_params(
        pairs,
        &[
            "limit",
            "starting_after",
            "ending_before",
            "email",
            "created",
            "test_clock",
        ],
    )?;
    let email = p.get("email").map(str::to_owned);
    let clock = p.get("test_clock").map(str::to_owned);
    let filter = |e: &Entry| {
        !e.deleted
            && email.as_deref().is_none_or(|m| *e.field("email") == m)
            && clock.as_deref().is_none_or(|c| *e.field("test_clock") == c)
            && created_matches(e, &p.created)
    };
    list(st, Kind::Customer, &p, filter, version)
}

const SUBSCRIPTION_STATUSES: [&str; 8] = [
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "trialing",
    "paused",
];

fn list_subscriptions(
    st: &ServerState,
    pairs: &[(String, String)],
    version: &ApiVersion,
) -> Result<Reply, Reply> {
    let p = parse_params(
        pairs,
        &[
            "limit",
            "starting_after",
            "ending_before",
            "customer",
            "status",
            "price",
            "collection_method",
            "created",
            "test_clock",
        ],
    )?;
    let status = p.get("status").map(str::to_owned);
    if let Some(s) = status.as_deref()
        && !SUBSCRIPTION_STATUSES.contains(&s)
        && s != "all"
        && s != "ended"
    {
        return Err(Reply::invalid(
            format!(
                "Invalid status: must be one of active, past_due, unpaid, canceled, incomplete, incomplete_expired, trialing, paused, all, or ended (got {s})"
            ),
            Some("parameter_invalid_string"),
            Some("status"),
        ));
    }
    if let Some(cm) = p.get("collection_method")
        && cm != "charge_automatically"
        && cm != "send_invoice"
    {
        return Err(Reply::invalid(
            format!(
                "Invalid collection_method: must be one of charge_automatically or send_invoice (got {cm})"
            ),
            Some("parameter_invalid_string"),
            Some("collection_method"),
        ));
    }
    let customer = p.get("customer").map(str::to_owned);
    let price = p.get("price").map(str::to_owned);
    let cm = p.get("collection_method").map(str::to_owned);
    let clock = p.get("test_clock").map(str::to_owned);
    let filter = |e: &Entry| {
        let status_ok = match status.as_deref() {
            Some("all") => true,
            other => {
                let s = e.field("status");
                let s = s.as_str().unwrap_or("");
                match other {
                    None => s != "canceled",
                    Some("ended") => s == "canceled" || s == "incomplete_expired",
                    Some(want) => s == want,
                }
            }
        };
        status_ok
            && customer
                .as_deref()
                .is_none_or(|c| *e.field("customer") == c)
            && price.as_deref().is_none_or(|pr| {
                e.field("items")["data"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|i| i["price"]["id"] == pr))
            })
            && cm
                .as_deref()
                .is_none_or(|c| *e.field("collection_method") == c)
            && clock.as_deref().is_none_or(|c| *e.field("test_clock") == c)
            && created_matches(e, &p.created)
    };
    list(st, Kind::Subscription, &p, filter, version)
}

fn list_payment_methods(
    st: &ServerState,
    pairs: &[(String, String)],
    version: &ApiVersion,
) -> Result<Reply, Reply> {
    let p = parse_params(
        pairs,
        &[
            "limit",
            "starting_after",
            "ending_before",
            "customer",
            "type",
        ],
    )?;
    let customer = p.get("customer").map(str::to_owned);
    let ptype = p.get("type").map(str::to_owned);
    let filter = |e: &Entry| {
        customer
            .as_deref()
            .is_none_or(|c| *e.field("customer") == c)
            && ptype.as_deref().is_none_or(|t| *e.field("type") == t)
    };
    list(st, Kind::PaymentMethod, &p, filter, version)
}

fn list_events(
    st: &ServerState,
    pairs: &[(String, String)],
    version: &ApiVersion,
) -> Result<Reply, Reply> {
    // `types[]` is an array parameter, like `expand[]`.
    let mut types = Vec::new();
    let mut rest = Vec::new();
    for (k, v) in pairs {
        match split_key(k) {
            ("types", Some(i)) if i.is_empty() || i.bytes().all(|c| c.is_ascii_digit()) => {
                if !v.is_empty() {
                    types.push(v.clone());
                }
            }
            ("types", None) => {
                return Err(Reply::invalid(
                    "Invalid array",
                    Some("parameter_invalid_array"),
                    Some("types"),
                ));
            }
            _ => rest.push((k.clone(), v.clone())),
        }
    }
    let p = parse_params(
        &rest,
        &[
            "limit",
            "starting_after",
            "ending_before",
            "created",
            "type",
            "delivery_success",
        ],
    )?;
    if types.len() > MAX_EVENT_TYPES {
        return Err(Reply::invalid(
            format!(
                "Invalid array: types may contain at most {MAX_EVENT_TYPES} elements (got {}).",
                types.len()
            ),
            Some("parameter_invalid_array"),
            Some("types"),
        ));
    }
    let type_glob = p.get("type").map(str::to_owned);
    if type_glob.is_some() && !types.is_empty() {
        return Err(Reply::invalid(
            "You may pass either type or types, but not both.",
            None,
            Some("types"),
        ));
    }
    if let Some(b) = p.get("delivery_success")
        && b != "true"
        && b != "false"
    {
        return Err(Reply::invalid(
            format!("Invalid boolean: {b}"),
            Some("parameter_invalid_boolean"),
            Some("delivery_success"),
        ));
    }
    // Stripe has dropped events past the retention: as cursors they are unknown ids.
    for param in ["starting_after", "ending_before"] {
        if let Some(id) = p.get(param)
            && st.events.get(id).is_some_and(|e| !st.event_retained(e))
        {
            return Err(Reply::invalid(
                format!("No such event: '{id}'"),
                Some("resource_missing"),
                Some(param),
            ));
        }
    }
    let filter = |e: &Entry| {
        let t = e.field("type");
        let t = t.as_str().unwrap_or("");
        st.event_retained(e)
            && created_matches(e, &p.created)
            && (types.is_empty() || types.iter().any(|want| want == t))
            && type_glob.as_deref().is_none_or(|g| glob_matches(g, t))
    };
    list(st, Kind::Event, &p, filter, version)
}

fn retrieve_event(
    st: &ServerState,
    id: &str,
    pairs: &[(String, String)],
    version: &ApiVersion,
) -> Result<Value, Reply> {
    if st.events.get(id).is_some_and(|e| !st.event_retained(e)) {
        return Err(Reply::error(
            404,
            "invalid_request_error",
            format!("No such event: '{id}'"),
            Some("resource_missing"),
            Some("id"),
        ));
    }
    retrieve(st, Kind::Event, id, pairs, version)
}

/// The events list's `type` filter: `*` matches any run of characters
/// (`customer.*` matches `customer.created` and `customer.subscription.deleted`).
fn glob_matches(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return s.is_empty();
    };
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn list(
    st: &ServerState,
    kind: Kind,
    p: &Params,
    filter: impl Fn(&Entry) -> bool,
    version: &ApiVersion,
) -> Result<Reply, Reply> {
    let limit = parse_limit(p)?;
    let store = st.store(kind);
    let cursor_key = |param: &str, id: &str| -> Result<SortKey, Reply> {
        store.get(id).map(Entry::key).ok_or_else(|| {
            Reply::invalid(
                format!("No such {}: '{id}'", kind.noun()),
                Some("resource_missing"),
                Some(param),
            )
        })
    };
    let (page, has_more): (Vec<&Entry>, bool) =
        match (p.get("starting_after"), p.get("ending_before")) {
            (Some(_), Some(_)) => {
                return Err(Reply::invalid(
                    "You may only specify one of these parameters: ending_before, starting_after.",
                    None,
                    None,
                ));
            }
            (Some(after), None) => {
                let key = cursor_key("starting_after", after)?;
                let mut v: Vec<&Entry> = store
                    .after(&key)
                    .filter(|e| filter(e))
                    .take(limit + 1)
                    .collect();
                let more = v.len() > limit;
                v.truncate(limit);
                (v, more)
            }
            (None, Some(before)) => {
                let key = cursor_key("ending_before", before)?;
                let mut v: Vec<&Entry> = store
                    .before(&key)
                    .filter(|e| filter(e))
                    .take(limit + 1)
                    .collect();
                let more = v.len() > limit;
                v.truncate(limit);
                v.reverse();
                (v, more)
            }
            (None, None) => {
                let mut v: Vec<&Entry> = store
                    .iter_ordered()
                    .filter(|e| filter(e))
                    .take(limit + 1)
                    .collect();
                let more = v.len() > limit;
                v.truncate(limit);
                (v, more)
            }
        };
    if st.fast_lists
        && let Some(body) = list_text(st, kind, &page, has_more, &p.expand, version)?
    {
        return Ok(Reply::json_text(body));
    }
    let data: Vec<Value> = page.iter().map(|e| render(kind, e, version)).collect();
    let mut out = json!({
        "object": "list",
        "data": data,
        "has_more": has_more,
        "url": kind.list_url(),
    });
    let total = || store.iter_ordered().filter(|e| filter(e)).count();
    apply_expansions(st, &mut out, &p.expand, version, Some(&total))?;
    Ok(Reply::json(200, &out))
}

/// A customers or subscriptions page written as text, item by item, as
/// `Reply::json` would print the whole list (the selftests compare the two
/// byte for byte): generated objects from their templates, others from
/// their values. `None` for what only the value path does (other lists,
/// pre-basil versions, other expansions).
fn list_text(
    st: &ServerState,
    kind: Kind,
    page: &[&Entry],
    has_more: bool,
    expand: &[String],
    version: &ApiVersion,
) -> Result<Option<Vec<u8>>, Reply> {
    const EXPAND_PM: &str = "data.default_payment_method";
    let expand_pm = match (kind, expand) {
        (Kind::Customer, []) => false,
        (Kind::Subscription, []) => false,
        (Kind::Subscription, [e]) if e == EXPAND_PM => true,
        _ => return Ok(None),
    };
    if version.date.as_str() < BASIL_VERSION_DATE {
        return Ok(None);
    }
    // A value pretty-printed at depth 0, at `indent` instead.
    let write_value = |v: &Value, indent: &[u8], out: &mut Vec<u8>| {
        for b in serde_json::to_vec_pretty(v).unwrap_or_default() {
            out.push(b);
            if b == b'\n' {
                out.extend_from_slice(indent);
            }
        }
    };
    let mut out = Vec::with_capacity(64 + page.len() * 2048);
    out.extend_from_slice(b"{\n  \"object\": \"list\",\n  \"data\": [");
    let mut missing = false;
    for (n, e) in page.iter().enumerate() {
        out.extend_from_slice(if n == 0 { b"\n    " } else { b",\n    " });
        match &e.body {
            Stored::Generated(g, r) if !(kind == Kind::Customer && e.deleted) => {
                // As `expand_path` resolves it.
                let mut expand = |id: &str, out: &mut Vec<u8>| {
                    let found = Kind::for_id(id).and_then(|k| Some((k, st.store(k).get(id)?)));
                    match found {
                        Some((Kind::PaymentMethod, pm)) => match &pm.body {
                            Stored::Generated(g, r) => g.fill(*r, out, None),
                            Stored::Value(v) => write_value(v, b"      ", out),
                        },
                        Some((k, e)) => write_value(&render(k, e, version), b"      ", out),
                        None => missing = true,
                    }
                };
                let expand: Option<ExpandFn<'_>> = match expand_pm {
                    true => Some(&mut expand),
                    false => None,
                };
                g.fill(*r, &mut out, expand);
            }
            _ => {
                let mut v = render(kind, e, version);
                if expand_pm {
                    expand_path(st, &mut v, &["default_payment_method"], EXPAND_PM, version)?;
                }
                write_value(&v, b"    ", &mut out);
            }
        }
        if missing {
            return Err(cannot_expand(EXPAND_PM));
        }
    }
    if !page.is_empty() {
        out.extend_from_slice(b"\n  ");
    }
    out.extend_from_slice(b"],\n  \"has_more\": ");
    out.extend_from_slice(if has_more { b"true" } else { b"false" });
    out.extend_from_slice(b",\n  \"url\": ");
    let _ = serde_json::to_writer(&mut out, kind.list_url());
    out.extend_from_slice(b"\n}");
    Ok(Some(out))
}

fn search_customers(
    st: &ServerState,
    pairs: &[(String, String)],
    version: &ApiVersion,
    now: Instant,
) -> Result<Value, Reply> {
    if !st.search_enabled {
        return Err(Reply::invalid(
            "Search is not available for this account: it is not supported in your region. Use the list API (GET /v1/customers) instead.",
            None,
            None,
        ));
    }
    if version.date.as_str() < SEARCH_MIN_VERSION_DATE {
        return Err(Reply::invalid(
            format!(
                "Search is not supported on API version {}. Update your API version, or set the API version of this request to 2020-08-27 or greater.",
                version.full
            ),
            None,
            None,
        ));
    }
    let p = parse_params(pairs, &["query", "limit", "page"])?;
    let Some(q) = p.get("query") else {
        return Err(Reply::invalid(
            "Missing required param: query.",
            Some("parameter_missing"),
            Some("query"),
        ));
    };
    let query = parse_search(q).map_err(|detail| {
        Reply::invalid(
            format!(
                "Invalid search query: {detail}. Use the format `metadata['key']:'value'` to query metadata or `field:'value'` for other fields; see https://stripe.com/docs/search#search-query-language."
            ),
            Some("parameter_invalid_string"),
            Some("query"),
        )
    })?;
    let limit = parse_limit(&p)?;
    let store = &st.customers;
    let matches = |e: &Entry| st.search_view(e, now).is_some_and(|v| query.matches(&v));
    let iter: Box<dyn Iterator<Item = &Entry>> = match p.get("page") {
        Some(token) => {
            let key = decode_page_token(token).ok_or_else(|| {
                Reply::invalid(
                    "Invalid page token.",
                    Some("parameter_invalid_string"),
                    Some("page"),
                )
            })?;
            Box::new(store.after(&key))
        }
        None => Box::new(store.iter_ordered()),
    };
    let mut page: Vec<&Entry> = iter.filter(|e| matches(e)).take(limit + 1).collect();
    let has_more = page.len() > limit;
    page.truncate(limit);
    let next_page = if has_more {
        page.last()
            .map_or(Value::Null, |e| json!(encode_page_token(&e.key())))
    } else {
        Value::Null
    };
    let data: Vec<Value> = page
        .iter()
        .map(|e| render(Kind::Customer, e, version))
        .collect();
    let mut out = json!({
        "object": "search_result",
        "data": data,
        "has_more": has_more,
        "next_page": next_page,
        "url": "/v1/customers/search",
    });
    let total = || store.iter_ordered().filter(|e| matches(e)).count();
    apply_expansions(st, &mut out, &p.expand, version, Some(&total))?;
    Ok(out)
}

fn encode_page_token(key: &SortKey) -> String {
    let raw = format!("{}:{}:{}", key.0.0, key.1.0, key.2);
    let mut s = String::from("pg_");
    for b in raw.bytes() {
        let _ = write!(s, "{:02x}", b ^ 0x5a);
    }
    s
}

fn decode_page_token(token: &str) -> Option<SortKey> {
    let hex = token.strip_prefix("pg_")?;
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .ok()
                .map(|b| b ^ 0x5a)
        })
        .collect();
    let raw = String::from_utf8(bytes?).ok()?;
    let mut parts = raw.splitn(3, ':');
    let created = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let id = parts.next()?;
    Some((Reverse(created), Reverse(seq), id.into()))
}

// ---------------------------------------------------------------------------
// Expansion
// ---------------------------------------------------------------------------

fn cannot_expand(path: &str) -> Reply {
    Reply::invalid(
        format!("This property cannot be expanded ({path})."),
        None,
        Some("expand"),
    )
}

fn apply_expansions(
    st: &ServerState,
    v: &mut Value,
    expand: &[String],
    version: &ApiVersion,
    total_count: Option<&dyn Fn() -> usize>,
) -> Result<(), Reply> {
    for path in expand {
        if path == "total_count"
            && let Some(count) = total_count
        {
            v["total_count"] = json!(count());
            continue;
        }
        let segs: Vec<&str> = path.split('.').collect();
        if segs.len() > 4 {
            return Err(Reply::invalid(
                format!("You cannot expand more than 4 levels of a property. Property: {path}"),
                None,
                Some("expand"),
            ));
        }
        if segs.iter().any(|s| s.is_empty()) {
            return Err(cannot_expand(path));
        }
        expand_path(st, v, &segs, path, version)?;
    }
    Ok(())
}

fn expand_path(
    st: &ServerState,
    v: &mut Value,
    segs: &[&str],
    full: &str,
    version: &ApiVersion,
) -> Result<(), Reply> {
    let Some((first, rest)) = segs.split_first() else {
        return Ok(());
    };
    match v {
        Value::Array(items) => {
            for item in items {
                expand_path(st, item, segs, full, version)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            let Some(field) = map.get_mut(*first) else {
                return Err(cannot_expand(full));
            };
            if let Value::String(id) = field {
                match st.resolve(id, version) {
                    Some(obj) => *field = obj,
                    None => return Err(cannot_expand(full)),
                }
            }
            expand_path(st, field, rest, full, version)
        }
        Value::Null => Ok(()),
        _ => Err(cannot_expand(full)),
    }
}

// ---------------------------------------------------------------------------
// Search query language
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum SField {
    Email,
    Name,
    Phone,
    Created,
    Metadata(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SOp {
    Eq,
    Contains,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq)]
enum SValue {
    Str(String),
    Null,
}

#[derive(Debug, Clone)]
struct SClause {
    negate: bool,
    field: SField,
    op: SOp,
    value: SValue,
}

#[derive(Debug, Clone)]
struct SQuery {
    clauses: Vec<SClause>,
    any: bool,
}

impl SQuery {
    fn matches(&self, obj: &Value) -> bool {
        if self.any {
            self.clauses.iter().any(|c| c.matches(obj))
        } else {
            self.clauses.iter().all(|c| c.matches(obj))
        }
    }
}

impl SClause {
    fn matches(&self, obj: &Value) -> bool {
        let hit = match &self.field {
            SField::Created => {
                let c = obj["created"].as_i64().unwrap_or(0);
                let n = match &self.value {
                    SValue::Str(s) => s.parse::<i64>().unwrap_or(0),
                    SValue::Null => return self.negate,
                };
                match self.op {
                    SOp::Eq => c == n,
                    SOp::Gt => c > n,
                    SOp::Gte => c >= n,
                    SOp::Lt => c < n,
                    SOp::Lte => c <= n,
                    SOp::Contains => false,
                }
            }
            SField::Metadata(k) => {
                let v = obj["metadata"].get(k).and_then(Value::as_str);
                match (&self.value, self.op) {
                    (SValue::Null, _) => v.is_none(),
                    (SValue::Str(s), SOp::Contains) => v.is_some_and(|v| v.contains(s.as_str())),
                    (SValue::Str(s), _) => v == Some(s.as_str()),
                }
            }
            f => {
                let name = match f {
                    SField::Email => "email",
                    SField::Name => "name",
                    _ => "phone",
                };
                let v = obj[name].as_str().map(str::to_lowercase);
                match (&self.value, self.op) {
                    (SValue::Null, _) => v.is_none(),
                    (SValue::Str(s), SOp::Contains) => {
                        v.is_some_and(|v| v.contains(&s.to_lowercase()))
                    }
                    (SValue::Str(s), _) => v.is_some_and(|v| v == s.to_lowercase()),
                }
            }
        };
        hit != self.negate
    }
}

fn parse_quoted(chars: &[char], i: &mut usize) -> Result<String, String> {
    let Some(&quote) = chars.get(*i) else {
        return Err("expected a quoted string".into());
    };
    if quote != '\'' && quote != '"' {
        return Err(format!("expected a quoted string at position {}", *i));
    }
    *i += 1;
    let mut out = String::new();
    while let Some(&c) = chars.get(*i) {
        *i += 1;
        if c == '\\' {
            if let Some(&n) = chars.get(*i) {
                out.push(n);
                *i += 1;
            }
        } else if c == quote {
            return Ok(out);
        } else {
            out.push(c);
        }
    }
    Err("unterminated string".into())
}

fn keyword_at(chars: &[char], i: usize) -> Option<(bool, usize)> {
    for (word, is_or) in [("AND", false), ("OR", true)] {
        let n = word.len();
        if chars.len() > i + n
            && chars[i..i + n]
                .iter()
                .zip(word.chars())
                .all(|(a, b)| a.eq_ignore_ascii_case(&b))
            && chars[i + n].is_whitespace()
        {
            return Some((is_or, n));
        }
    }
    None
}

fn parse_search(q: &str) -> Result<SQuery, String> {
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    let mut clauses = Vec::new();
    let mut conj: Option<bool> = None;
    let skip_ws = |i: &mut usize| {
        while chars.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        if !clauses.is_empty() {
            let (is_or, len) = keyword_at(&chars, i).unwrap_or((false, 0));
            if conj.is_some_and(|c| c != is_or) {
                return Err("AND and OR cannot be combined in the same query".into());
            }
            conj = Some(is_or);
            i += len;
            skip_ws(&mut i);
            if i >= chars.len() {
                return Err("the query ends with AND/OR".into());
            }
        }
        let negate = chars[i] == '-';
        if negate {
            i += 1;
        }
        let start = i;
        while chars
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if name.is_empty() {
            return Err(format!("expected a field name at position {i}"));
        }
        let field = match name.as_str() {
            "metadata" => {
                if chars.get(i) != Some(&'[') {
                    return Err("expected metadata['key']".into());
                }
                i += 1;
                let key = parse_quoted(&chars, &mut i)?;
                if chars.get(i) != Some(&']') {
                    return Err("expected ] after the metadata key".into());
                }
                i += 1;
                SField::Metadata(key)
            }
            "email" => SField::Email,
            "name" => SField::Name,
            "phone" => SField::Phone,
            "created" => SField::Created,
            other => {
                return Err(format!(
                    "Field `{other}` is an unsupported search field for resource `customers`. See http://stripe.com/docs/search#query-fields-for-customers for a list of supported fields"
                ));
            }
        };
        let op = match chars.get(i) {
            Some(':') => SOp::Eq,
            Some('~') => SOp::Contains,
            Some('>') if chars.get(i + 1) == Some(&'=') => SOp::Gte,
            Some('<') if chars.get(i + 1) == Some(&'=') => SOp::Lte,
            Some('>') => SOp::Gt,
            Some('<') => SOp::Lt,
            _ => return Err(format!("expected an operator after `{name}`")),
        };
        i += if matches!(op, SOp::Gte | SOp::Lte) {
            2
        } else {
            1
        };
        let value = match chars.get(i) {
            Some('\'') | Some('"') => SValue::Str(parse_quoted(&chars, &mut i)?),
            _ => {
                let start = i;
                while chars.get(i).is_some_and(|c| !c.is_whitespace()) {
                    i += 1;
                }
                let raw: String = chars[start..i].iter().collect();
                if raw.is_empty() {
                    return Err(format!("expected a value after `{name}`"));
                }
                if raw == "null" {
                    SValue::Null
                } else {
                    SValue::Str(raw)
                }
            }
        };
        match (&field, op, &value) {
            (SField::Created, SOp::Contains, _) => {
                return Err("`~` is not supported on numeric fields".into());
            }
            (SField::Created, _, SValue::Str(s)) if s.parse::<i64>().is_err() => {
                return Err(format!("`{s}` is not a valid number for `created`"));
            }
            (SField::Created, _, _) => {}
            (_, SOp::Gt | SOp::Gte | SOp::Lt | SOp::Lte, _) => {
                return Err(format!("numeric comparators are not supported on `{name}`"));
            }
            (_, SOp::Contains, SValue::Str(s)) if s.chars().count() < 3 => {
                return Err("substring matches (~) need at least 3 characters".into());
            }
            _ => {}
        }
        clauses.push(SClause {
            negate,
            field,
            op,
            value,
        });
        if clauses.len() > 10 {
            return Err("a query can contain at most 10 clauses".into());
        }
    }
    if clauses.is_empty() {
        return Err("the query is empty".into());
    }
    Ok(SQuery {
        clauses,
        any: conj == Some(true),
    })
}

// ---------------------------------------------------------------------------
// Query strings
// ---------------------------------------------------------------------------

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decode (`+` is a space when `plus_as_space`); bad escapes are kept literally.
pub fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `a=1&b=x+y&expand%5B%5D=z` into decoded pairs, in order.
pub fn parse_query_string(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Object templates and normalization
// ---------------------------------------------------------------------------

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn deep_merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if k == "metadata" {
                    merge_metadata(b.entry(k).or_insert_with(|| json!({})), v);
                    continue;
                }
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => deep_merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, p) => *b = p,
    }
}

/// Stripe metadata semantics: keys are merged; a key set to "" (or null) is removed;
/// metadata set to "" (or null) clears it.
fn merge_metadata(slot: &mut Value, patch: Value) {
    match patch {
        Value::Object(p) => {
            if !slot.is_object() {
                *slot = json!({});
            }
            if let Some(m) = slot.as_object_mut() {
                for (k, v) in p {
                    if v.is_null() || v == "" {
                        m.remove(&k);
                    } else {
                        m.insert(k, v);
                    }
                }
            }
        }
        Value::Null => *slot = json!({}),
        Value::String(s) if s.is_empty() => *slot = json!({}),
        other => *slot = other,
    }
}

fn take_id(v: &Value) -> Option<String> {
    v.get("id").and_then(Value::as_str).map(str::to_owned)
}

fn customer_template(id: &str) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": 0,
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": null,
        "invoice_prefix": "",
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null
        },
        "livemode": false,
        "metadata": {},
        "name": null,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null
    })
}

fn normalize_customer(partial: Value, existing: Option<&Value>, now: i64) -> Option<Value> {
    let Value::Object(mut p) = partial else {
        return None;
    };
    p.remove("deleted");
    p.remove("object");
    let mut c = match existing {
        Some(e) => e.clone(),
        None => {
            let id = p
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| random_id("cus_", 14));
            let mut t = customer_template(&id);
            t["created"] = json!(now);
            t["invoice_prefix"] = json!(entropy_rng().hex_upper(8));
            t
        }
    };
    // Accept an expanded default payment method.
    if let Some(pm) = p
        .get_mut("invoice_settings")
        .and_then(|s| s.get_mut("default_payment_method"))
        && let Some(id) = take_id(pm)
    {
        *pm = json!(id);
    }
    deep_merge(&mut c, Value::Object(p));
    Some(c)
}

fn payment_method_template(id: &str) -> Value {
    json!({
        "id": id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {
                "city": null,
                "country": null,
                "line1": null,
                "line2": null,
                "postal_code": null,
                "state": null
            },
            "email": null,
            "name": null,
            "phone": null,
            "tax_id": null
        },
        "card": {
            "brand": "visa",
            "checks": {
                "address_line1_check": null,
                "address_postal_code_check": null,
                "cvc_check": "pass"
            },
            "country": "US",
            "display_brand": "visa",
            "exp_month": 12,
            "exp_year": 2030,
            "fingerprint": "",
            "funding": "credit",
            "generated_from": null,
            "last4": "4242",
            "networks": { "available": ["visa"], "preferred": null },
            "regulated_status": "unregulated",
            "three_d_secure_usage": { "supported": true },
            "wallet": null
        },
        "created": 0,
        "customer": null,
        "customer_account": null,
        "livemode": false,
        "metadata": {},
        "type": "card"
    })
}

fn normalize_payment_method(partial: Value, existing: Option<&Value>, now: i64) -> Option<Value> {
    let Value::Object(mut p) = partial else {
        return None;
    };
    p.remove("object");
    if let Some(id) = p.get("customer").and_then(take_id) {
        p.insert("customer".into(), json!(id));
    }
    let explicit_display = p
        .get("card")
        .is_some_and(|c| c.get("display_brand").is_some());
    let explicit_networks = p.get("card").is_some_and(|c| c.get("networks").is_some());
    let mut pm = match existing {
        Some(e) => e.clone(),
        None => {
            let id = p
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| random_id("pm_1", 23));
            let mut t = payment_method_template(&id);
            t["created"] = json!(now);
            t["card"]["fingerprint"] = json!(entropy_rng().alnum(16));
            t
        }
    };
    deep_merge(&mut pm, Value::Object(p));
    let brand = pm["card"]["brand"].clone();
    if pm["card"].is_object() {
        if !explicit_display {
            pm["card"]["display_brand"] = brand.clone();
        }
        if !explicit_networks {
            pm["card"]["networks"] = json!({ "available": [brand], "preferred": null });
        }
    }
    Some(pm)
}

fn product_template(id: &str) -> Value {
    json!({
        "id": id,
        "object": "product",
        "active": true,
        "created": 0,
        "default_price": null,
        "description": null,
        "images": [],
        "livemode": false,
        "marketing_features": [],
        "metadata": {},
        "name": "Subscription",
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": null,
        "tax_code": null,
        "type": "service",
        "unit_label": null,
        "updated": 0,
        "url": null
    })
}

fn normalize_product(partial: Value, now: i64) -> Option<Value> {
    let Value::Object(mut p) = partial else {
        return None;
    };
    p.remove("object");
    let id = p
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| random_id("prod_", 14));
    let mut t = product_template(&id);
    t["created"] = json!(now);
    t["updated"] = json!(now);
    deep_merge(&mut t, Value::Object(p));
    Some(t)
}

fn price_template(id: &str, product: &str) -> Value {
    json!({
        "id": id,
        "object": "price",
        "active": true,
        "billing_scheme": "per_unit",
        "created": 0,
        "currency": "usd",
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": null,
        "metadata": {},
        "nickname": null,
        "product": product,
        "recurring": {
            "interval": "month",
            "interval_count": 1,
            "meter": null,
            "trial_period_days": null,
            "usage_type": "licensed"
        },
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": "recurring",
        "unit_amount": 2000,
        "unit_amount_decimal": "2000"
    })
}

fn normalize_price(partial: Value, now: i64) -> Option<Value> {
    let Value::Object(mut p) = partial else {
        return None;
    };
    p.remove("object");
    if let Some(id) = p.get("product").and_then(take_id) {
        p.insert("product".into(), json!(id));
    }
    let explicit_decimal = p.contains_key("unit_amount_decimal");
    let id = p
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| random_id("price_1", 23));
    let mut t = price_template(&id, &random_id("prod_", 14));
    t["created"] = json!(now);
    deep_merge(&mut t, Value::Object(p));
    if !explicit_decimal && let Some(a) = t["unit_amount"].as_i64() {
        t["unit_amount_decimal"] = json!(a.to_string());
    }
    Some(t)
}

fn plan_from_price(price: &Value) -> Value {
    json!({
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"],
        "livemode": false,
        "metadata": price["metadata"],
        "meter": null,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": price["tiers_mode"],
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": price["recurring"]["usage_type"]
    })
}

fn vec_catalog_price(
    prices: &mut Vec<Value>,
    products: &mut Vec<Value>,
    r: &Value,
    now: i64,
) -> Value {
    let id = match r {
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => take_id(r),
        _ => None,
    };
    if !r.is_object()
        && let Some(p) = id
            .as_deref()
            .and_then(|id| prices.iter().find(|p| p["id"] == id))
    {
        return p.clone();
    }
    let partial = match r {
        Value::Object(_) => r.clone(),
        Value::String(s) => json!({ "id": s }),
        _ => json!({}),
    };
    let price = normalize_price(partial, now).unwrap_or_else(|| json!({}));
    ensure_vec_product(products, &price["product"], now);
    prices.retain(|p| p["id"] != price["id"]);
    prices.push(price.clone());
    price
}

fn ensure_vec_product(products: &mut Vec<Value>, product: &Value, now: i64) {
    if let Some(id) = product.as_str()
        && !products.iter().any(|p| p["id"] == id)
        && let Some(p) = normalize_product(json!({ "id": id }), now)
    {
        products.push(p);
    }
}

fn subscription_template(id: &str) -> Value {
    let mut t = json!({
        "id": id,
        "object": "subscription",
        "application": null,
        "application_fee_percent": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": null,
        "billing_cycle_anchor_config": null,
        "billing_mode": { "flexible": null, "type": "classic" },
        "billing_schedules": [],
        "billing_thresholds": null,
        "cancel_at": null,
        "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": { "comment": null, "feedback": null, "reason": null },
        "collection_method": "charge_automatically",
        "created": 0,
        "currency": "usd",
        "customer": null,
        "customer_account": null,
        "days_until_due": null,
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "ended_at": null,
    });
    let rest = json!({
        "invoice_settings": {
            "account_tax_ids": null,
            "custom_fields": null,
            "description": null,
            "footer": null,
            "issuer": { "type": "self" }
        },
        "items": { "object": "list", "data": [], "has_more": false, "url": "" },
        "latest_invoice": null,
        "livemode": false,
        "managed_payments": { "enabled": false },
        "metadata": {},
        "next_pending_invoice_item_invoice": null,
        "on_behalf_of": null,
        "pause_collection": null,
        "payment_settings": {
            "payment_method_options": null,
            "payment_method_types": null,
            "save_default_payment_method": "off"
        },
        "pending_invoice_item_interval": null,
        "pending_setup_intent": null,
        "pending_update": null,
        "schedule": null,
        "start_date": null,
        "status": "active",
        "test_clock": null,
        "transfer_data": null,
        "trial_end": null,
        "trial_settings": { "end_behavior": { "missing_payment_method": "create_invoice" } },
        "trial_start": null
    });
    if let (Some(m), Value::Object(r)) = (t.as_object_mut(), rest) {
        m.extend(r);
    }
    t
}

fn subscription_item_template(id: &str, sub_id: &str, created: i64) -> Value {
    json!({
        "id": id,
        "object": "subscription_item",
        "billing_thresholds": null,
        "created": created,
        "current_period_end": null,
        "current_period_start": null,
        "discounts": [],
        "metadata": {},
        "plan": null,
        "price": null,
        "quantity": 1,
        "subscription": sub_id,
        "tax_rates": []
    })
}

fn normalize_subscription(
    partial: Value,
    existing: Option<&Value>,
    price_of: &mut dyn FnMut(&Value) -> Value,
    now: i64,
) -> Option<Value> {
    let Value::Object(mut p) = partial else {
        return None;
    };
    p.remove("object");
    let items_in = p.remove("items");
    let price_short = p.remove("price");
    let quantity_short = p.remove("quantity");
    let period_start = p.remove("current_period_start");
    let period_end = p.remove("current_period_end");
    for k in ["customer", "default_payment_method", "latest_invoice"] {
        if let Some(id) = p.get(k).and_then(take_id) {
            p.insert(k.to_owned(), json!(id));
        }
    }
    let mut sub = match existing {
        Some(e) => e.clone(),
        None => {
            let id = p
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| random_id("sub_1", 23));
            let mut t = subscription_template(&id);
            t["created"] = json!(now);
            t
        }
    };
    deep_merge(&mut sub, Value::Object(p));
    let sub_id = sub["id"].as_str().unwrap_or("").to_owned();
    let created = sub["created"].as_i64().unwrap_or(now);

    let mut items: Vec<Value> = match items_in {
        Some(Value::Object(mut m)) => match m.remove("data") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        Some(Value::Array(a)) => a,
        _ => sub["items"]["data"].as_array().cloned().unwrap_or_default(),
    };
    if items.is_empty() {
        items.push(json!({}));
    }
    if let Some(pr) = price_short {
        items[0]["price"] = pr;
        if let Some(m) = items[0].as_object_mut() {
            m.remove("plan");
        }
    }
    if let Some(q) = quantity_short {
        items[0]["quantity"] = q;
    }
    let mut normalized = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(mut it) = item else {
            continue;
        };
        let price_ref = it.remove("price").unwrap_or(Value::Null);
        it.remove("plan");
        it.remove("object");
        let item_id = it
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| random_id("si_", 14));
        let mut full = subscription_item_template(&item_id, &sub_id, created);
        deep_merge(&mut full, Value::Object(it));
        full["subscription"] = json!(sub_id);
        let price = price_of(&price_ref);
        full["plan"] = plan_from_price(&price);
        full["price"] = price;
        if let Some(s) = &period_start {
            full["current_period_start"] = s.clone();
        }
        if let Some(e) = &period_end {
            full["current_period_end"] = e.clone();
        }
        let start = match full["current_period_start"].as_i64() {
            Some(s) => s,
            None => {
                let s = sub["billing_cycle_anchor"].as_i64().unwrap_or(created);
                full["current_period_start"] = json!(s);
                s
            }
        };
        if full["current_period_end"].as_i64().is_none() {
            let interval = full["price"]["recurring"]["interval"]
                .as_str()
                .unwrap_or("month")
                .to_owned();
            let count = full["price"]["recurring"]["interval_count"]
                .as_i64()
                .unwrap_or(1);
            full["current_period_end"] = json!(add_interval(start, &interval, count));
        }
        normalized.push(full);
    }
    if let Some(first) = normalized.first() {
        if sub["billing_cycle_anchor"].is_null() {
            sub["billing_cycle_anchor"] = first["current_period_start"].clone();
        }
        if let Some(cur) = first["price"]["currency"].as_str() {
            sub["currency"] = json!(cur);
        }
    }
    if sub["start_date"].is_null() {
        sub["start_date"] = json!(created);
    }
    sub["items"] = json!({
        "object": "list",
        "data": normalized,
        "has_more": false,
        "url": format!("/v1/subscription_items?subscription={sub_id}"),
    });
    if let Some(m) = sub.as_object_mut() {
        m.remove("current_period_start");
        m.remove("current_period_end");
    }
    Some(sub)
}

// ---------------------------------------------------------------------------
// Calendar helpers
// ---------------------------------------------------------------------------

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)
}

/// `ts` plus `count` intervals, with calendar months (day clamped like Stripe).
fn add_interval(ts: i64, interval: &str, count: i64) -> i64 {
    let count = count.max(1);
    match interval {
        "day" => ts + DAY * count,
        "week" => ts + 7 * DAY * count,
        "month" | "year" => {
            let months = if interval == "year" {
                12 * count
            } else {
                count
            };
            let days = ts.div_euclid(DAY);
            let secs = ts.rem_euclid(DAY);
            let (y, m, d) = civil_from_days(days);
            let total = y * 12 + (m - 1) + months;
            let ny = total.div_euclid(12);
            let nm = total.rem_euclid(12) + 1;
            let nd = d.min(days_in_month(ny, nm));
            days_from_civil(ny, nm, nd) * DAY + secs
        }
        _ => ts + 30 * DAY * count,
    }
}

/// The billing period (anchored at `anchor`) that contains `at`.
fn period_containing(anchor: i64, interval: &str, count: i64, at: i64) -> (i64, i64) {
    let mut start = anchor;
    for _ in 0..100_000 {
        let next = add_interval(start, interval, count);
        if next > at {
            return (start, next);
        }
        start = next;
    }
    (start, add_interval(start, interval, count))
}

// ---------------------------------------------------------------------------
// RNG (xorshift64*), no rand crate
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Rng(u64);

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 to spread the seed; the state must not be 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            lo
        } else {
            lo + self.below((hi - lo) as u64) as i64
        }
    }

    fn pct(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn alnum(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| ALNUM[self.below(ALNUM.len() as u64) as usize] as char)
            .collect()
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    fn hex_upper(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789ABCDEF"[self.below(16) as usize]))
            .collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn entropy_rng() -> Rng {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Rng::new(nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn random_id(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", entropy_rng().alnum(len))
}

// ---------------------------------------------------------------------------
// Data generation
// ---------------------------------------------------------------------------

const FIRST_NAMES: [&str; 24] = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "John",
    "Radia",
    "Edsger",
    "Hedy",
    "Donald",
    "Katherine",
    "Tim",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
    "Joan",
    "Niklaus",
    "Shafi",
    "Yukihiro",
];
const LAST_NAMES: [&str; 24] = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "McCarthy",
    "Perlman",
    "Dijkstra",
    "Lamarr",
    "Knuth",
    "Johnson",
    "Berners-Lee",
    "Wilson",
    "Rossum",
    "Borg",
    "Stroustrup",
    "Clarke",
    "Wirth",
    "Goldwasser",
    "Matsumoto",
];
const DOMAINS: [&str; 5] = [
    "example.com",
    "example.org",
    "mail.test",
    "acme.test",
    "corp.example",
];

struct GenPrice {
    id: String,
    interval: &'static str,
    per_seat: bool,
}

/// A generated account kept as records: a million customers fit in memory
/// and are served without building their values (see [`Generated::fill`]).
/// [`Account::generate_at`] builds its values from the same records, so a
/// fake started either way answers every request identically.
#[derive(Debug)]
struct Generated {
    now: i64,
    products: Vec<Value>,
    prices: Vec<Value>,
    customers: Vec<GenCustomer>,
    subscriptions: Vec<GenSubscription>,
    payment_methods: Vec<GenPaymentMethod>,
    templates: Templates,
}

/// Which generated object an entry is (an index into its kind's records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GenRef {
    Customer(u32),
    Subscription(u32),
    PaymentMethod(u32),
}

#[derive(Debug)]
struct GenCustomer {
    id: Box<str>,
    created: i64,
    email: Option<Box<str>>,
    name: Box<str>,
    /// Which metadata, see [`customer_value`]; `user` is its user id.
    metadata: u8,
    user: Box<str>,
    /// Index of its card in `payment_methods`.
    payment_method: Option<u32>,
    subscriptions: u32,
    delinquent: bool,
    phone: Option<Box<str>>,
    invoice_prefix: Box<str>,
}

#[derive(Debug)]
struct GenPaymentMethod {
    id: Box<str>,
    customer: u32,
    brand: &'static str,
    last4: Box<str>,
    exp_month: i64,
    exp_year: i64,
    fingerprint: Box<str>,
    funding: &'static str,
}

#[derive(Debug)]
struct GenSubscription {
    id: Box<str>,
    customer: u32,
    status: &'static str,
    price: u8,
    /// Carries the customer's `clerkUserId` in its metadata.
    user_metadata: bool,
    created: i64,
    billing_cycle_anchor: i64,
    has_payment_method: bool,
    latest_invoice: Box<str>,
    item_id: Box<str>,
    quantity: i64,
    period: (i64, i64),
    trial: Option<(i64, i64)>,
    ended_at: Option<i64>,
    canceled_at: Option<i64>,
    cancellation_reason: Option<&'static str>,
    cancel_at_period_end: bool,
    cancel_at: Option<i64>,
}

/// One leaf of a generated object, as its value or its JSON text.
#[derive(Clone, Copy)]
enum Leaf<'a> {
    Null,
    Int(i64),
    Bool(bool),
    Str(&'a str),
}

impl Leaf<'_> {
    fn value(self) -> Value {
        match self {
            Leaf::Null => Value::Null,
            Leaf::Int(n) => json!(n),
            Leaf::Bool(b) => json!(b),
            Leaf::Str(s) => json!(s),
        }
    }

    fn write_json(self, out: &mut Vec<u8>) {
        let _ = match self {
            Leaf::Null => serde_json::to_writer(&mut *out, &()),
            Leaf::Int(n) => serde_json::to_writer(&mut *out, &n),
            Leaf::Bool(b) => serde_json::to_writer(&mut *out, &b),
            Leaf::Str(s) => serde_json::to_writer(&mut *out, s),
        };
    }

    /// Inside a string that the template holds (quotes excluded).
    fn write_in_string(self, out: &mut Vec<u8>) {
        let from = out.len();
        self.write_json(out);
        if out.len() >= from + 2 && out[from] == b'"' {
            out.pop();
            out.remove(from);
        }
    }

    fn opt_str(s: Option<&str>) -> Leaf<'_> {
        s.map_or(Leaf::Null, Leaf::Str)
    }

    fn opt_int(n: Option<i64>) -> Leaf<'static> {
        n.map_or(Leaf::Null, Leaf::Int)
    }
}

// The leaves of each kind, by slot. A slot is a hole in the kind's
// templates: built once from the real value-building code with a sentinel
// in each slot (a number for the integer slots, which that code reads), then
// filled per object.
const C_ID: u8 = 0;
const C_CREATED: u8 = 1;
const C_EMAIL: u8 = 2;
const C_NAME: u8 = 3;
const C_PHONE: u8 = 4;
const C_USER: u8 = 5;
const C_CURRENCY: u8 = 6;
const C_DELINQUENT: u8 = 7;
const C_PREFIX: u8 = 8;
const C_SEQUENCE: u8 = 9;
const C_PAYMENT_METHOD: u8 = 10;
const C_INT_SLOTS: &[u8] = &[C_CREATED, C_SEQUENCE];

const P_ID: u8 = 0;
const P_CREATED: u8 = 1;
const P_CUSTOMER: u8 = 2;
const P_EMAIL: u8 = 3;
const P_NAME: u8 = 4;
const P_BRAND: u8 = 5;
const P_LAST4: u8 = 6;
const P_EXP_MONTH: u8 = 7;
const P_EXP_YEAR: u8 = 8;
const P_FINGERPRINT: u8 = 9;
const P_FUNDING: u8 = 10;
const P_INT_SLOTS: &[u8] = &[P_CREATED, P_EXP_MONTH, P_EXP_YEAR];

const S_ID: u8 = 0;
const S_CUSTOMER: u8 = 1;
const S_STATUS: u8 = 2;
const S_CREATED: u8 = 3;
const S_ANCHOR: u8 = 4;
const S_PAYMENT_METHOD: u8 = 5;
const S_INVOICE: u8 = 6;
const S_USER: u8 = 7;
const S_ITEM: u8 = 8;
const S_QUANTITY: u8 = 9;
const S_START: u8 = 10;
const S_END: u8 = 11;
const S_TRIAL_START: u8 = 12;
const S_TRIAL_END: u8 = 13;
const S_ENDED_AT: u8 = 14;
const S_CANCELED_AT: u8 = 15;
const S_REASON: u8 = 16;
const S_CANCEL_AT_PERIOD_END: u8 = 17;
const S_CANCEL_AT: u8 = 18;
const S_INT_SLOTS: &[u8] = &[
    S_CREATED,
    S_ANCHOR,
    S_QUANTITY,
    S_START,
    S_END,
    S_TRIAL_START,
    S_TRIAL_END,
    S_ENDED_AT,
    S_CANCELED_AT,
    S_CANCEL_AT,
];

/// Integer sentinels: 19 digits, far from any real value.
const SENTINEL_INT: i64 = 8_000_000_000_000_000_000;

fn sentinel(slot: u8, int_slots: &[u8]) -> Value {
    if int_slots.contains(&slot) {
        json!(SENTINEL_INT + i64::from(slot))
    } else {
        json!(format!("~~S{slot}~~"))
    }
}

/// An object's pretty JSON text at a given depth, with holes for its leaves.
#[derive(Debug, Default)]
struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug)]
enum Piece {
    Text(Box<[u8]>),
    /// A whole JSON value.
    Value(u8),
    /// Characters inside a string of the template.
    InString(u8),
}

impl Template {
    /// From the value built with sentinels, pretty-printed as at `depth`
    /// (serde_json's pretty printer: two spaces a level, and raw line breaks
    /// only between tokens, so indenting a deeper copy is one replacement).
    fn new(v: &Value, depth: usize) -> Template {
        let text = serde_json::to_string_pretty(v).unwrap_or_default();
        let text = text.replace('\n', &format!("\n{}", "  ".repeat(depth)));
        let bytes = text.as_bytes();
        let int_prefix = (SENTINEL_INT / 100).to_string();
        let mut pieces = Vec::new();
        let mut text_run: Vec<u8> = Vec::new();
        let mut i = 0;
        let digits_at = |at: usize, n: usize| {
            bytes.len() >= at + n && bytes[at..at + n].iter().all(u8::is_ascii_digit)
        };
        let number = |from: usize, n: usize| -> u8 {
            bytes[from..from + n]
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
                .try_into()
                .unwrap_or(u8::MAX)
        };
        while i < bytes.len() {
            let rest = &bytes[i..];
            let hole = if rest.starts_with(b"~~S") {
                let n = rest[3..].iter().take_while(|b| b.is_ascii_digit()).count();
                let slot = number(i + 3, n);
                let end = i + 3 + n + 2;
                // A whole string value takes its quotes along.
                if text_run.last() == Some(&b'"') && bytes.get(end) == Some(&b'"') {
                    text_run.pop();
                    Some((Piece::Value(slot), end + 1))
                } else {
                    Some((Piece::InString(slot), end))
                }
            } else if rest.starts_with(int_prefix.as_bytes())
                && digits_at(i + int_prefix.len(), 2)
                && !digits_at(i + int_prefix.len() + 2, 1)
            {
                let slot = number(i + int_prefix.len(), 2);
                Some((Piece::Value(slot), i + int_prefix.len() + 2))
            } else {
                None
            };
            match hole {
                Some((piece, next)) => {
                    if !text_run.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text_run).into()));
                    }
                    pieces.push(piece);
                    i = next;
                }
                None => {
                    text_run.push(bytes[i]);
                    i += 1;
                }
            }
        }
        if !text_run.is_empty() {
            pieces.push(Piece::Text(text_run.into()));
        }
        Template { pieces }
    }

    /// Write the object: `value` writes the JSON of a whole-value slot,
    /// `leaf` gives the characters of an in-string slot.
    fn fill<'a>(
        &self,
        out: &mut Vec<u8>,
        leaf: &dyn Fn(u8) -> Leaf<'a>,
        value: &mut dyn FnMut(u8, &mut Vec<u8>),
    ) {
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Value(slot) => value(*slot, out),
                Piece::InString(slot) => leaf(*slot).write_in_string(out),
            }
        }
    }
}

/// List items are at depth 2 (`{"data": [ {...} ]}`), a payment method
/// expanded in a subscription of a list at depth 3.
const LIST_DEPTH: usize = 2;
const EXPANDED_DEPTH: usize = 3;

#[derive(Debug, Default)]
struct Templates {
    /// By metadata kind, at [`LIST_DEPTH`].
    customers: Vec<Template>,
    /// By (user metadata, price), at [`LIST_DEPTH`].
    subscriptions: Vec<Template>,
    /// At [`EXPANDED_DEPTH`].
    payment_method: Template,
}

impl Generated {
    fn customer_leaf(&self, i: u32, slot: u8) -> Leaf<'_> {
        let c = &self.customers[i as usize];
        match slot {
            C_ID => Leaf::Str(&c.id),
            C_CREATED => Leaf::Int(c.created),
            C_EMAIL => Leaf::opt_str(c.email.as_deref()),
            C_NAME => Leaf::Str(&c.name),
            C_PHONE => Leaf::opt_str(c.phone.as_deref()),
            C_USER => Leaf::Str(&c.user),
            C_CURRENCY => match c.subscriptions {
                0 => Leaf::Null,
                _ => Leaf::Str("usd"),
            },
            C_DELINQUENT => Leaf::Bool(c.delinquent),
            C_PREFIX => Leaf::Str(&c.invoice_prefix),
            C_SEQUENCE => Leaf::Int(1 + i64::from(c.subscriptions) * 3),
            C_PAYMENT_METHOD => Leaf::opt_str(
                c.payment_method
                    .map(|p| &*self.payment_methods[p as usize].id),
            ),
            _ => Leaf::Null,
        }
    }

    fn payment_method_leaf(&self, i: u32, slot: u8) -> Leaf<'_> {
        let p = &self.payment_methods[i as usize];
        let c = &self.customers[p.customer as usize];
        match slot {
            P_ID => Leaf::Str(&p.id),
            P_CREATED => Leaf::Int(c.created + 30),
            P_CUSTOMER => Leaf::Str(&c.id),
            P_EMAIL => Leaf::opt_str(c.email.as_deref()),
            P_NAME => Leaf::Str(&c.name),
            P_BRAND => Leaf::Str(p.brand),
            P_LAST4 => Leaf::Str(&p.last4),
            P_EXP_MONTH => Leaf::Int(p.exp_month),
            P_EXP_YEAR => Leaf::Int(p.exp_year),
            P_FINGERPRINT => Leaf::Str(&p.fingerprint),
            P_FUNDING => Leaf::Str(p.funding),
            _ => Leaf::Null,
        }
    }

    fn subscription_leaf(&self, i: u32, slot: u8) -> Leaf<'_> {
        let s = &self.subscriptions[i as usize];
        let c = &self.customers[s.customer as usize];
        match slot {
            S_ID => Leaf::Str(&s.id),
            S_CUSTOMER => Leaf::Str(&c.id),
            S_STATUS => Leaf::Str(s.status),
            S_CREATED => Leaf::Int(s.created),
            S_ANCHOR => Leaf::Int(s.billing_cycle_anchor),
            S_PAYMENT_METHOD => Leaf::opt_str(
                c.payment_method
                    .filter(|_| s.has_payment_method)
                    .map(|p| &*self.payment_methods[p as usize].id),
            ),
            S_INVOICE => Leaf::Str(&s.latest_invoice),
            S_USER => Leaf::Str(&c.user),
            S_ITEM => Leaf::Str(&s.item_id),
            S_QUANTITY => Leaf::Int(s.quantity),
            S_START => Leaf::Int(s.period.0),
            S_END => Leaf::Int(s.period.1),
            S_TRIAL_START => Leaf::opt_int(s.trial.map(|t| t.0)),
            S_TRIAL_END => Leaf::opt_int(s.trial.map(|t| t.1)),
            S_ENDED_AT => Leaf::opt_int(s.ended_at),
            S_CANCELED_AT => Leaf::opt_int(s.canceled_at),
            S_REASON => Leaf::opt_str(s.cancellation_reason),
            S_CANCEL_AT_PERIOD_END => Leaf::Bool(s.cancel_at_period_end),
            S_CANCEL_AT => Leaf::opt_int(s.cancel_at),
            _ => Leaf::Null,
        }
    }

    /// The object's value, built by the same code as `Account::generate`'s.
    fn value(&self, r: GenRef) -> Value {
        match r {
            GenRef::Customer(i) => customer_value(
                &|slot| self.customer_leaf(i, slot).value(),
                self.customers[i as usize].metadata,
                self.now,
            ),
            GenRef::PaymentMethod(i) => {
                payment_method_value(&|slot| self.payment_method_leaf(i, slot).value(), self.now)
            }
            GenRef::Subscription(i) => {
                let s = &self.subscriptions[i as usize];
                subscription_value(
                    &|slot| self.subscription_leaf(i, slot).value(),
                    s.user_metadata,
                    &self.prices[usize::from(s.price)],
                    &self.prices,
                    self.now,
                )
            }
        }
    }

    /// A top-level field; the ones lists filter on without building the value.
    fn field(&self, r: GenRef, key: &str) -> Value {
        let leaf = match (r, key) {
            (GenRef::Customer(i), "id") => self.customer_leaf(i, C_ID),
            (GenRef::Customer(i), "email") => self.customer_leaf(i, C_EMAIL),
            (GenRef::Subscription(i), "id") => self.subscription_leaf(i, S_ID),
            (GenRef::Subscription(i), "status") => self.subscription_leaf(i, S_STATUS),
            (GenRef::Subscription(i), "customer") => self.subscription_leaf(i, S_CUSTOMER),
            (GenRef::PaymentMethod(i), "id") => self.payment_method_leaf(i, P_ID),
            (GenRef::PaymentMethod(i), "customer") => self.payment_method_leaf(i, P_CUSTOMER),
            (GenRef::PaymentMethod(_), "type") => Leaf::Str("card"),
            (_, "created") => Leaf::Int(self.created(r)),
            _ => return self.value(r)[key].clone(),
        };
        leaf.value()
    }

    fn id(&self, r: GenRef) -> &str {
        match r {
            GenRef::Customer(i) => &self.customers[i as usize].id,
            GenRef::Subscription(i) => &self.subscriptions[i as usize].id,
            GenRef::PaymentMethod(i) => &self.payment_methods[i as usize].id,
        }
    }

    fn created(&self, r: GenRef) -> i64 {
        match r {
            GenRef::Customer(i) => self.customers[i as usize].created,
            GenRef::Subscription(i) => self.subscriptions[i as usize].created,
            GenRef::PaymentMethod(i) => {
                let p = &self.payment_methods[i as usize];
                self.customers[p.customer as usize].created + 30
            }
        }
    }

    /// Every kind's templates, from the value-building code and sentinels.
    fn build_templates(&mut self) {
        let c_leaf = |slot| sentinel(slot, C_INT_SLOTS);
        self.templates.customers = (0..4)
            .map(|m| Template::new(&customer_value(&c_leaf, m, self.now), LIST_DEPTH))
            .collect();
        let mut subscriptions = Vec::new();
        for user_metadata in [false, true] {
            for price in &self.prices {
                let v = subscription_value(
                    &|slot| sentinel(slot, S_INT_SLOTS),
                    user_metadata,
                    price,
                    &self.prices,
                    self.now,
                );
                subscriptions.push(Template::new(&v, LIST_DEPTH));
            }
        }
        self.templates.subscriptions = subscriptions;
        let p_leaf = |slot| sentinel(slot, P_INT_SLOTS);
        self.templates.payment_method =
            Template::new(&payment_method_value(&p_leaf, self.now), EXPANDED_DEPTH);
    }

    /// Write the object as a list item (at [`LIST_DEPTH`]; a payment method
    /// at [`EXPANDED_DEPTH`]). `expand_payment_method` writes a
    /// subscription's `default_payment_method` slot (its id, or null).
    fn fill(&self, r: GenRef, out: &mut Vec<u8>, expand_payment_method: Option<ExpandFn<'_>>) {
        match r {
            GenRef::Customer(i) => {
                let t = &self.templates.customers[usize::from(self.customers[i as usize].metadata)];
                let leaf = |slot| self.customer_leaf(i, slot);
                t.fill(out, &leaf, &mut |slot, out| leaf(slot).write_json(out));
            }
            GenRef::PaymentMethod(i) => {
                let leaf = |slot| self.payment_method_leaf(i, slot);
                self.templates
                    .payment_method
                    .fill(out, &leaf, &mut |slot, out| leaf(slot).write_json(out));
            }
            GenRef::Subscription(i) => {
                let s = &self.subscriptions[i as usize];
                let t = &self.templates.subscriptions
                    [usize::from(s.user_metadata) * self.prices.len() + usize::from(s.price)];
                let leaf = |slot| self.subscription_leaf(i, slot);
                let mut expand = expand_payment_method;
                t.fill(
                    out,
                    &leaf,
                    &mut |slot, out| match (leaf(slot), &mut expand) {
                        (Leaf::Str(id), Some(expand)) if slot == S_PAYMENT_METHOD => {
                            expand(id, out)
                        }
                        (l, _) => l.write_json(out),
                    },
                );
            }
        }
    }

    /// The account with every object built as a value.
    fn account(&self) -> Account {
        let mut acc = Account::new();
        acc.products = self.products.clone();
        acc.prices = self.prices.clone();
        let n = |len: usize| 0..u32::try_from(len).unwrap_or(u32::MAX);
        acc.payment_methods = n(self.payment_methods.len())
            .map(|i| self.value(GenRef::PaymentMethod(i)))
            .collect();
        acc.customers = n(self.customers.len())
            .map(|i| self.value(GenRef::Customer(i)))
            .collect();
        acc.subscriptions = n(self.subscriptions.len())
            .map(|i| self.value(GenRef::Subscription(i)))
            .collect();
        acc
    }
}

/// A generated customer's value; `leaf` gives each slot (`C_*`).
fn customer_value(leaf: &dyn Fn(u8) -> Value, metadata: u8, now: i64) -> Value {
    let metadata = match metadata {
        0 => json!({}),
        1 => json!({ "source": "import" }),
        2 => json!({ "clerkUserID": leaf(C_USER), "note": "legacy key casing" }),
        _ => json!({ "clerkUserId": leaf(C_USER) }),
    };
    let customer = json!({
        "id": leaf(C_ID),
        "created": leaf(C_CREATED),
        "email": leaf(C_EMAIL),
        "name": leaf(C_NAME),
        "phone": leaf(C_PHONE),
        "metadata": metadata,
        "currency": leaf(C_CURRENCY),
        "delinquent": leaf(C_DELINQUENT),
        "invoice_prefix": leaf(C_PREFIX),
        "next_invoice_sequence": leaf(C_SEQUENCE),
        "invoice_settings": { "default_payment_method": leaf(C_PAYMENT_METHOD) },
    });
    normalize_customer(customer, None, now).unwrap_or_default()
}

/// A generated card's value; `leaf` gives each slot (`P_*`).
fn payment_method_value(leaf: &dyn Fn(u8) -> Value, now: i64) -> Value {
    let pm = json!({
        "id": leaf(P_ID),
        "created": leaf(P_CREATED),
        "customer": leaf(P_CUSTOMER),
        "billing_details": { "email": leaf(P_EMAIL), "name": leaf(P_NAME) },
        "card": {
            "brand": leaf(P_BRAND),
            "last4": leaf(P_LAST4),
            "exp_month": leaf(P_EXP_MONTH),
            "exp_year": leaf(P_EXP_YEAR),
            "fingerprint": leaf(P_FINGERPRINT),
            "funding": leaf(P_FUNDING),
            "checks": { "cvc_check": "pass", "address_line1_check": null, "address_postal_code_check": null },
        },
    });
    normalize_payment_method(pm, None, now).unwrap_or_default()
}

/// A generated subscription's value; `leaf` gives each slot (`S_*`). Every
/// key set here is in the subscription template, so a null leaf leaves the
/// template's null in place.
fn subscription_value(
    leaf: &dyn Fn(u8) -> Value,
    user_metadata: bool,
    price: &Value,
    prices: &[Value],
    now: i64,
) -> Value {
    let mut sub = Map::new();
    sub.insert("trial_start".into(), leaf(S_TRIAL_START));
    sub.insert("trial_end".into(), leaf(S_TRIAL_END));
    sub.insert("ended_at".into(), leaf(S_ENDED_AT));
    sub.insert("canceled_at".into(), leaf(S_CANCELED_AT));
    sub.insert(
        "cancellation_details".into(),
        json!({ "comment": null, "feedback": null, "reason": leaf(S_REASON) }),
    );
    sub.insert("cancel_at_period_end".into(), leaf(S_CANCEL_AT_PERIOD_END));
    sub.insert("cancel_at".into(), leaf(S_CANCEL_AT));
    sub.insert("id".into(), leaf(S_ID));
    sub.insert("customer".into(), leaf(S_CUSTOMER));
    sub.insert("status".into(), leaf(S_STATUS));
    sub.insert("created".into(), leaf(S_CREATED));
    sub.insert("start_date".into(), leaf(S_CREATED));
    sub.insert("billing_cycle_anchor".into(), leaf(S_ANCHOR));
    sub.insert("default_payment_method".into(), leaf(S_PAYMENT_METHOD));
    sub.insert("latest_invoice".into(), leaf(S_INVOICE));
    let metadata = match user_metadata {
        true => json!({ "clerkUserId": leaf(S_USER) }),
        false => json!({}),
    };
    sub.insert("metadata".into(), metadata);
    sub.insert(
        "items".into(),
        json!([{
            "id": leaf(S_ITEM),
            "created": leaf(S_CREATED),
            "price": price["id"],
            "quantity": leaf(S_QUANTITY),
            "current_period_start": leaf(S_START),
            "current_period_end": leaf(S_END),
        }]),
    );
    let mut price_of = |r: &Value| {
        prices
            .iter()
            .find(|p| p["id"] == *r)
            .cloned()
            .unwrap_or_default()
    };
    normalize_subscription(Value::Object(sub), None, &mut price_of, now).unwrap_or_default()
}

fn generate_account(n_customers: usize, n_subscriptions: usize, seed: u64, now: i64) -> Account {
    generate(n_customers, n_subscriptions, seed, now).account()
}

/// The records of [`Account::generate_at`]'s account.
fn generate(n_customers: usize, n_subscriptions: usize, seed: u64, now: i64) -> Generated {
    let mut rng = Rng::new(seed);
    let mut acc = Account::new();
    let epoch = now - 900 * DAY;

    // Catalog: 3 products, 4 prices.
    let products = [
        ("Starter", "Starter plan"),
        ("Pro", "Pro plan"),
        ("Team", "Team plan, billed per seat"),
    ];
    let mut product_ids = Vec::new();
    for (name, desc) in products {
        let id = format!("prod_{}", rng.alnum(14));
        acc.add_product(json!({
            "id": id, "name": name, "description": desc,
            "created": epoch, "updated": epoch,
        }));
        product_ids.push(id);
    }
    let price_specs = [
        (0usize, 900i64, "month", "starter-monthly", false),
        (1, 2900, "month", "pro-monthly", false),
        (1, 29000, "year", "pro-yearly", false),
        (2, 1200, "month", "team-monthly", true),
    ];
    let mut prices = Vec::new();
    for (prod, amount, interval, lookup, per_seat) in price_specs {
        let id = format!("price_1{}", rng.alnum(23));
        acc.add_price(json!({
            "id": id,
            "product": product_ids[prod],
            "unit_amount": amount,
            "lookup_key": lookup,
            "nickname": lookup,
            "created": epoch,
            "recurring": { "interval": interval, "interval_count": 1 },
        }));
        prices.push(GenPrice {
            id,
            interval,
            per_seat,
        });
    }
    // The subscriptions' price index is into the catalog's price list.
    let price_index: Vec<u8> = prices
        .iter()
        .map(|p| {
            acc.prices
                .iter()
                .position(|q| q["id"] == p.id.as_str())
                .and_then(|i| u8::try_from(i).ok())
                .unwrap_or(0)
        })
        .collect();

    // Customers (identity first; the rest is drawn below, in the same order
    // as ever, so a seed keeps giving the same account).
    let mut customers: Vec<GenCustomer> = Vec::with_capacity(n_customers);
    for i in 0..n_customers {
        let created = match customers.last() {
            Some(prev) if rng.pct(10) => prev.created,
            _ => now - 3600 - rng.range(0, 730 * DAY),
        };
        let first = *rng.pick(&FIRST_NAMES);
        let last = *rng.pick(&LAST_NAMES);
        let email: Option<Box<str>> = if rng.pct(2) {
            None
        } else if rng.pct(2) && !customers.is_empty() {
            let j = rng.below(customers.len() as u64) as usize;
            customers[j].email.clone()
        } else {
            Some(
                format!(
                    "{}.{}{}@{}",
                    first.to_lowercase(),
                    last.to_lowercase().replace('-', ""),
                    i,
                    rng.pick(&DOMAINS)
                )
                .into(),
            )
        };
        let metadata = match rng.below(100) {
            0 => 0,
            1 => 1,
            2 => 2,
            _ => 3,
        };
        customers.push(GenCustomer {
            id: format!("cus_{}", rng.alnum(14)).into(),
            created,
            email,
            name: format!("{first} {last}").into(),
            metadata,
            user: format!("user_{i}").into(),
            payment_method: None,
            subscriptions: 0,
            delinquent: false,
            phone: None,
            invoice_prefix: "".into(),
        });
    }

    // Subscriptions: customer, status and price first.
    let n_subscriptions = if n_customers == 0 { 0 } else { n_subscriptions };
    let mut subs = Vec::with_capacity(n_subscriptions);
    for _ in 0..n_subscriptions {
        let ci = rng.below(n_customers as u64) as usize;
        let status = match rng.below(100) {
            0..=59 => "active",
            60..=69 => "trialing",
            70..=77 => "past_due",
            78..=89 => "canceled",
            90..=93 => "incomplete",
            94..=95 => "incomplete_expired",
            96..=97 => "unpaid",
            _ => "paused",
        };
        let pi = match rng.below(100) {
            0..=39 => 0,
            40..=69 => 1,
            70..=84 => 2,
            _ => 3,
        };
        customers[ci].subscriptions += 1;
        customers[ci].delinquent |= matches!(status, "past_due" | "unpaid");
        subs.push((ci, status, pi));
    }

    // Payment methods: one per customer with subscriptions, ~20% of the others.
    let mut payment_methods = Vec::new();
    for (ci, c) in customers.iter_mut().enumerate() {
        if c.subscriptions == 0 && !rng.pct(20) {
            continue;
        }
        let (brand, last4s): (&str, &[&str]) = match rng.below(10) {
            0..=5 => ("visa", &["4242", "1881", "0077", "5556", "3155"]),
            6..=8 => ("mastercard", &["4444", "5100", "8210", "0005"]),
            _ => ("amex", &["8431", "0005", "1000"]),
        };
        let last4 = if rng.pct(70) {
            (*rng.pick(last4s)).to_owned()
        } else {
            rng.digits(4)
        };
        let id = format!("pm_1{}", rng.alnum(23));
        let exp_year = 1970 + (now / (365 * DAY + DAY / 4)) + rng.range(1, 6);
        let exp_month = rng.range(1, 13);
        let fingerprint = rng.alnum(16);
        let funding = if rng.pct(80) { "credit" } else { "debit" };
        c.payment_method = u32::try_from(payment_methods.len()).ok();
        payment_methods.push(GenPaymentMethod {
            id: id.into(),
            customer: u32::try_from(ci).unwrap_or(u32::MAX),
            brand,
            last4: last4.into(),
            exp_month,
            exp_year,
            fingerprint: fingerprint.into(),
            funding,
        });
    }

    for c in customers.iter_mut() {
        c.phone = if rng.pct(30) {
            Some(format!("+1555{}", rng.digits(7)).into())
        } else {
            None
        };
        c.invoice_prefix = rng.hex_upper(8).into();
    }

    let mut subscriptions = Vec::with_capacity(subs.len());
    for (ci, status, pi) in subs {
        let c = &customers[ci];
        let price = &prices[pi];
        let earliest = c.created + 60;
        let mut status = status;
        let created: i64;
        let (start, end): (i64, i64);
        let mut trial = None;
        let mut ended_at = None;
        let mut canceled_at = None;
        let mut cancellation_reason = None;
        let mut cancel_at_period_end = false;
        let mut cancel_at = None;
        match status {
            "trialing" => {
                created = earliest.max(now - 600 - rng.range(0, 13 * DAY));
                start = created;
                end = created + 14 * DAY;
                trial = Some((start, end));
            }
            "incomplete" => {
                created = earliest.max(now - 300 - rng.range(0, 20 * 3600));
                start = created;
                end = add_interval(start, price.interval, 1);
            }
            "incomplete_expired" if now - earliest > 2 * DAY => {
                created = rng.range(earliest, now - 2 * DAY);
                start = created;
                end = add_interval(start, price.interval, 1);
                ended_at = Some(created + 23 * 3600);
            }
            "incomplete_expired" => {
                status = "incomplete";
                created = earliest.max(now - 300 - rng.range(0, 20 * 3600));
                start = created;
                end = add_interval(start, price.interval, 1);
            }
            "canceled" => {
                created = rng.range(earliest, now - 120);
                let stop = rng.range(created + 60, now - 60);
                (start, end) = period_containing(created, price.interval, 1, stop);
                canceled_at = Some(stop);
                ended_at = Some(stop);
                cancellation_reason = Some(if rng.pct(30) {
                    "payment_failed"
                } else {
                    "cancellation_requested"
                });
            }
            _ => {
                created = rng.range(earliest, now - 120);
                (start, end) = period_containing(created, price.interval, 1, now);
                if status == "active" && rng.pct(10) {
                    cancel_at_period_end = true;
                    cancel_at = Some(end);
                    canceled_at = Some(rng.range(start, now));
                    cancellation_reason = Some("cancellation_requested");
                }
            }
        }
        let has_payment_method = !matches!(status, "incomplete" | "incomplete_expired");
        let id = format!("sub_1{}", rng.alnum(23));
        let item_id = format!("si_{}", rng.alnum(14));
        let quantity = if price.per_seat { rng.range(2, 11) } else { 1 };
        let user_metadata = c.metadata == 3 && rng.pct(70);
        let latest_invoice = format!("in_1{}", rng.alnum(23));
        subscriptions.push(GenSubscription {
            id: id.into(),
            customer: u32::try_from(ci).unwrap_or(u32::MAX),
            status,
            price: price_index[pi],
            user_metadata,
            created,
            billing_cycle_anchor: if status == "trialing" { end } else { created },
            has_payment_method,
            latest_invoice: latest_invoice.into(),
            item_id: item_id.into(),
            quantity,
            period: (start, end),
            trial,
            ended_at,
            canceled_at,
            cancellation_reason,
            cancel_at_period_end,
            cancel_at,
        });
    }
    let mut generated = Generated {
        now,
        products: acc.products,
        prices: acc.prices,
        customers,
        subscriptions,
        payment_methods,
        templates: Templates::default(),
    };
    generated.build_templates();
    generated
}

/// Writes an expanded object (by id) into a page being rendered.
type ExpandFn<'a> = &'a mut dyn FnMut(&str, &mut Vec<u8>);
