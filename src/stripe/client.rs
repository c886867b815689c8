//! The HTTP side: one `reqwest::Client` (one connection pool, rustls), the
//! retry loop, response classification, and the typed reads.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::error::{ApiError, redact, redact_with_key};
use super::pacing::{Lane, Pacer};
use crate::config::DEFAULT_API_VERSION;
use crate::objects::{List, StripeObject};
use crate::secret::Secret;

pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_MAX_RETRIES: u32 = 5;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

const PAGE_LIMIT: &str = "100";
const EXPAND_PAYMENT_METHOD: (&str, &str) = ("expand[]", "data.default_payment_method");
/// Backoff like Stripe's SDKs: the base (0.5 s) doubling to 10 x the base
/// (5 s), jittered to [50 %, 100 %] but never under the base; a
/// `Retry-After` up to 60 s is waited out in full (see [`Backoff`]).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY_FACTOR: u32 = 10;
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Test-only and undocumented: the backoff base in milliseconds (0: no
/// sleeping), so fault tests of the binary do not wait for real.
pub const TEST_BACKOFF_ENV: &str = "STRIPE_SYNC_TEST_BACKOFF_MS";
/// Retries of a request whose connection could not be made at all (refused,
/// DNS, TLS), whatever `--max-retries` says. Stripe's own SDKs give such a
/// failure the same budget as any other: stripe-node's
/// `RequestSender._shouldRetry` retries every connection error ("Retry on
/// connection error": no response) up to `maxNetworkRetries`, which defaults
/// to 2, with 0.5 s doubling backoff. So two retries, about 1 to 1.5 s of
/// waiting: enough for a server that is just starting or a DNS blip, short
/// enough that a run against an API it cannot reach stops within seconds
/// (SPEC "Exit status") instead of spending 5 retries (~12.5 s) per request.
const MAX_UNREACHABLE_RETRIES: u32 = 2;
/// Far above any page of 100 expanded objects; guards memory against a runaway server.
const MAX_BODY_BYTES: usize = 64 << 20;

/// How to reach Stripe. `ClientConfig::new(key)` fills in the defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub api_key: Secret,
    /// Default [`DEFAULT_API_BASE`]; see [`validate_api_base`].
    pub api_base: String,
    /// Sent as `Stripe-Version`; a blank value sends no header (account default).
    pub api_version: String,
    /// `None` (or a value that is not a positive number): by key mode, see
    /// [`KeyMode::default_max_rps`].
    pub max_rps: Option<f64>,
    pub max_retries: u32,
    /// Per attempt, from sending the request to the end of the body.
    /// Zero means the default.
    pub timeout: Duration,
    /// Requests in flight at once; 0 means 1.
    pub max_in_flight: usize,
    /// The wait before the first retry ([`DEFAULT_BACKOFF_BASE`]); later
    /// waits double up to 10 x this, and a server's `Retry-After` is scaled
    /// by `backoff_base / DEFAULT_BACKOFF_BASE` (so in full by default).
    /// Only tests change it; `new` reads [`TEST_BACKOFF_ENV`] for them.
    pub backoff_base: Duration,
    /// Called after every attempt (retries included), for `-vv`.
    pub on_request: Option<RequestHook>,
}

impl ClientConfig {
    pub fn new(api_key: Secret) -> ClientConfig {
        ClientConfig {
            api_key,
            api_base: DEFAULT_API_BASE.to_owned(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            max_rps: None,
            max_retries: DEFAULT_MAX_RETRIES,
            timeout: DEFAULT_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            backoff_base: test_backoff_override(std::env::var(TEST_BACKOFF_ENV).ok().as_deref())
                .unwrap_or(DEFAULT_BACKOFF_BASE),
            on_request: None,
        }
    }

    /// The rate ceiling the client will keep to.
    pub fn effective_max_rps(&self) -> f64 {
        match self.max_rps {
            Some(rps) if rps.is_finite() && rps > 0.0 => rps,
            _ => key_mode(&self.api_key).default_max_rps(),
        }
    }
}

/// The value of [`TEST_BACKOFF_ENV`] as a backoff base: whole milliseconds,
/// at most a minute; anything else is ignored.
fn test_backoff_override(value: Option<&str>) -> Option<Duration> {
    let ms: u64 = value?.trim().parse().ok()?;
    (ms <= 60_000).then(|| Duration::from_millis(ms))
}

/// One attempt at a request, as `-vv` reports it: what was asked, what came
/// back, how long it took, what happens next. Never a header, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    pub method: &'static str,
    /// Path and query, readable and safe to print: brackets and quotes
    /// decoded, anything unprintable or ambiguous percent-encoded, key-like
    /// tokens redacted (`/v1/subscriptions?customer=cus_1&status=all`).
    pub target: String,
    /// The HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// Why the attempt failed when the status does not say it: `timeout`,
    /// `unreachable`, `network error`, `unreadable body`.
    pub error: Option<&'static str>,
    /// Stripe's `Request-Id`, when the answer carried one.
    pub request_id: Option<String>,
    /// From sending the request to the end of the body.
    pub elapsed: Duration,
    /// 0 for the first attempt; `n` for the `n`-th retry.
    pub retry: u32,
    pub next: NextStep,
}

/// What the client does after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Nothing more: a success, or a failure not worth retrying.
    Done,
    /// Retry number `number` after waiting `after`.
    Retry { number: u32, after: Duration },
    /// A failure worth retrying, but the retries are spent.
    GiveUp,
}

/// The function [`ClientConfig::on_request`] holds; shared by the client's clones.
#[derive(Clone)]
pub struct RequestHook(Arc<dyn Fn(&RequestLog) + Send + Sync>);

impl RequestHook {
    pub fn new(f: impl Fn(&RequestLog) + Send + Sync + 'static) -> RequestHook {
        RequestHook(Arc::new(f))
    }
}

impl fmt::Debug for RequestHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestHook(..)")
    }
}

/// Test or live mode, read from the key's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    Test,
    Live,
    Unknown,
}

impl KeyMode {
    /// Below Stripe's limits (25/s test, 100/s live) to leave room for the
    /// account's other clients. An unknown key gets the cautious rate.
    pub fn default_max_rps(self) -> f64 {
        match self {
            KeyMode::Live => 80.0,
            KeyMode::Test | KeyMode::Unknown => 20.0,
        }
    }
}

/// `sk_test_`/`rk_test_` -> Test, `sk_live_`/`rk_live_` -> Live, else Unknown.
pub fn key_mode(key: &Secret) -> KeyMode {
    let k = key.expose();
    if k.starts_with("sk_test_") || k.starts_with("rk_test_") {
        KeyMode::Test
    } else if k.starts_with("sk_live_") || k.starts_with("rk_live_") {
        KeyMode::Live
    } else {
        KeyMode::Unknown
    }
}

/// Check `--api-base`: `https://` to any host, plain `http://` only to a
/// loopback host (127.0.0.0/8, ::1, localhost), since the key would
/// otherwise cross the network in clear text. No user info, query or fragment.
pub fn validate_api_base(url: &str) -> Result<Url, String> {
    // Never echo a URL that may carry credentials.
    let shown = if url.contains('@') {
        "(URL with credentials)".to_owned()
    } else {
        format!("{:?}", redact(url))
    };
    const EXPECTED: &str = "expected https://HOST, or http://127.0.0.1:PORT for a local server";
    let parsed = Url::parse(url.trim())
        .map_err(|e| format!("invalid --api-base {shown}: {e}; {EXPECTED}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "invalid --api-base {shown}: it must not contain a user name or password; pass the key with --api-key"
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "invalid --api-base {shown}: it must not have a query (?...) or fragment (#...)"
        ));
    }
    let host = parsed.host_str().unwrap_or("");
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(parsed),
        "http" if is_loopback(host) => Ok(parsed),
        "http" => Err(format!(
            "invalid --api-base {shown}: plain http:// is only allowed to a loopback host \
             (127.0.0.1, [::1], localhost), since the API key would travel unencrypted; use https://"
        )),
        scheme => Err(format!(
            "invalid --api-base {shown}: unsupported scheme {scheme:?}; {EXPECTED}"
        )),
    }
}

pub fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The Customer Search query for one metadata value:
/// `metadata['KEY']:'VALUE'`, quotes and backslashes escaped.
pub fn metadata_search_query(key: &str, value: &str) -> String {
    format!(
        "metadata[{}]:{}",
        search_literal(key),
        search_literal(value)
    )
}

fn search_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The result of reading one customer.
// One value per customer read, moved straight into the caller: boxing the
// object would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum CustomerFetch {
    Found(StripeObject),
    /// Stripe keeps a stub `{"id", "deleted": true}` for deleted customers.
    Deleted,
    /// 404 `resource_missing`: no such customer in this account and mode.
    Missing,
}

/// Counters since the client was built (shared by its clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests sent; every attempt counts, retries included.
    pub requests: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// 429 responses received.
    pub rate_limited: u64,
    /// Time spent waiting between attempts (backoff and `Retry-After`; the
    /// rate limiter's waits are not counted).
    pub backoff: Duration,
}

/// The Stripe client. Cheap to clone; clones share the connection pool, the
/// rate limiter, the concurrency bound and the counters.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    api_key: Secret,
    max_retries: u32,
    backoff: Backoff,
    pacer: Pacer,
    in_flight: Semaphore,
    on_request: Option<RequestHook>,
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    backoff_nanos: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_base", &self.inner.base.as_str())
            .field("max_retries", &self.inner.max_retries)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// One failed attempt, and whether another is worth making.
struct Failure {
    error: ApiError,
    retry: bool,
    retry_after: Option<Duration>,
    /// The answer's status, if one arrived (for the request log).
    status: Option<u16>,
}

impl Failure {
    fn final_(error: ApiError, status: u16) -> Failure {
        Failure {
            error,
            retry: false,
            retry_after: None,
            status: Some(status),
        }
    }
}

/// A 2xx answer: its JSON body, `Request-Id` and status.
struct Answer<T> {
    value: T,
    request_id: Option<String>,
    status: u16,
}

#[derive(Deserialize)]
struct SearchPage {
    #[serde(default)]
    data: Vec<StripeObject>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next_page: Option<String>,
}

impl Client {
    /// Build the client. Fails, before any request, on an unusable base URL
    /// or a key / version that cannot be sent in a header (`InvalidBase`).
    pub fn new(cfg: ClientConfig) -> Result<Client, ApiError> {
        let base = validate_api_base(&cfg.api_base).map_err(ApiError::InvalidBase)?;
        let max_rps = cfg.effective_max_rps();

        let mut headers = HeaderMap::new();
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", cfg.api_key.expose())).map_err(|_| {
                ApiError::InvalidBase(
                    "the API key contains characters that cannot be sent in an HTTP header \
                     (a line break from --api-key-file?)"
                        .to_owned(),
                )
            })?;
        auth.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if !cfg.api_version.trim().is_empty() {
            let version = HeaderValue::from_str(cfg.api_version.trim()).map_err(|_| {
                ApiError::InvalidBase(format!(
                    "the API version {:?} cannot be sent in an HTTP header",
                    redact(&cfg.api_version)
                ))
            })?;
            headers.insert("stripe-version", version);
        }
        let timeout = if cfg.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            cfg.timeout
        };

        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("stripe-sync/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            // The API never redirects; following one could carry the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Network {
                message: format!("cannot set up the HTTP client: {}", error_chain(&e)),
            })?;

        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                api_key: cfg.api_key,
                max_retries: cfg.max_retries,
                // Capped so no setting can overflow the delay arithmetic.
                backoff: Backoff {
                    base: cfg.backoff_base.min(MAX_RETRY_AFTER),
                },
                pacer: Pacer::new(max_rps),
                in_flight: Semaphore::new(cfg.max_in_flight.max(1)),
                on_request: cfg.on_request,
                requests: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                rate_limited: AtomicU64::new(0),
                backoff_nanos: AtomicU64::new(0),
            }),
        })
    }

    /// GET `path` (e.g. `/v1/customers`; each `/`-separated part is
    /// percent-encoded as a path segment) with a form-encoded query. Paced,
    /// bounded, retried; the JSON body of a 2xx answer.
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.fetch(&segments, query, path).await.map(|(v, _)| v)
    }

    /// GET /v1/customers/ID.
    pub async fn customer(&self, id: &str) -> Result<CustomerFetch, ApiError> {
        // Dot segments would be dropped from the URL and turn this into a list call.
        if matches!(id, "" | "." | "..") {
            return Ok(CustomerFetch::Missing);
        }
        let (value, request_id) = match self.fetch(&["v1", "customers", id], &[], "").await {
            Ok(ok) => ok,
            Err(ApiError::Status {
                status: 404,
                code: Some(code),
                ..
            }) if code == "resource_missing" => return Ok(CustomerFetch::Missing),
            Err(e) => return Err(e),
        };
        let what = format!("customer {id}");
        let object: StripeObject = self.decode(value, request_id.clone(), &what)?;
        if object.object.as_deref().is_some_and(|k| k != "customer") {
            return Err(ApiError::Decode {
                message: self.redact(&format!(
                    "{what}: expected a customer object, got {:?}",
                    object.kind()
                )),
                request_id,
            });
        }
        if object.deleted == Some(true) {
            Ok(CustomerFetch::Deleted)
        } else {
            Ok(CustomerFetch::Found(object))
        }
    }

    /// The customer's newest subscription, any status, with its default
    /// payment method and its customer expanded: `status=all&limit=1`
    /// (the customer inline saves a request: a changed user id or a
    /// deletion is seen with the subscription).
    pub async fn latest_subscription(
        &self,
        customer: &str,
    ) -> Result<Option<StripeObject>, ApiError> {
        let query = [
            ("customer", customer.to_owned()),
            ("status", "all".to_owned()),
            ("limit", "1".to_owned()),
            (EXPAND_PAYMENT_METHOD.0, EXPAND_PAYMENT_METHOD.1.to_owned()),
            ("expand[]", "data.customer".to_owned()),
        ];
        let (value, request_id) = self.fetch(&["v1", "subscriptions"], &query, "").await?;
        let what = format!("subscriptions of customer {customer}");
        let list: List<StripeObject> = self.decode(value, request_id, &what)?;
        Ok(list.data.into_iter().next())
    }

    /// One page (100, newest first) of customers after `starting_after`.
    pub async fn list_customers(
        &self,
        starting_after: Option<&str>,
    ) -> Result<List<StripeObject>, ApiError> {
        let mut query = vec![("limit", PAGE_LIMIT.to_owned())];
        if let Some(after) = starting_after {
            query.push(("starting_after", after.to_owned()));
        }
        // Parsed straight from the body: a backfill reads a million of these.
        let (list, _) = self
            .fetch(&["v1", "customers"], &query, "customer list")
            .await?;
        Ok(list)
    }

    /// One page (100, newest first) of events created at or after
    /// `created_gte`, of the given types (none: all), after `starting_after`.
    pub async fn list_events(
        &self,
        created_gte: i64,
        types: &[String],
        starting_after: Option<&str>,
    ) -> Result<List<crate::event::Event>, ApiError> {
        let mut query = vec![
            ("limit", PAGE_LIMIT.to_owned()),
            ("created[gte]", created_gte.to_string()),
        ];
        for t in types {
            query.push(("types[]", t.clone()));
        }
        if let Some(after) = starting_after {
            query.push(("starting_after", after.to_owned()));
        }
        let (value, request_id) = self.fetch(&["v1", "events"], &query, "").await?;
        self.decode(value, request_id, "event list")
    }

    /// One page (100, newest first) of subscriptions of any status after
    /// `starting_after`, default payment methods expanded.
    pub async fn list_subscriptions(
        &self,
        starting_after: Option<&str>,
    ) -> Result<List<StripeObject>, ApiError> {
        let mut query = vec![
            ("status", "all".to_owned()),
            ("limit", PAGE_LIMIT.to_owned()),
            (EXPAND_PAYMENT_METHOD.0, EXPAND_PAYMENT_METHOD.1.to_owned()),
        ];
        if let Some(after) = starting_after {
            query.push(("starting_after", after.to_owned()));
        }
        let what = "subscription list";
        let (list, _) = self.fetch(&["v1", "subscriptions"], &query, what).await?;
        Ok(list)
    }

    /// Every customer whose metadata `key` equals `value`, via the Customer
    /// Search API (all pages). Search is eventually consistent: a customer
    /// created or changed in the last minute may be missing.
    pub async fn search_customers_by_metadata(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<StripeObject>, ApiError> {
        let search = metadata_search_query(key, value);
        let mut found = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![("query", search.clone()), ("limit", PAGE_LIMIT.to_owned())];
            if let Some(p) = &page {
                query.push(("page", p.clone()));
            }
            let (body, request_id) = self
                .fetch(&["v1", "customers", "search"], &query, "")
                .await?;
            let result: SearchPage = self.decode(body, request_id, "customer search")?;
            found.extend(result.data);
            match result.next_page {
                // A server repeating its cursor would otherwise loop forever.
                Some(next)
                    if result.has_more && !next.is_empty() && page.as_ref() != Some(&next) =>
                {
                    page = Some(next);
                }
                _ => break,
            }
        }
        Ok(found)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.inner.requests.load(Ordering::Relaxed),
            retries: self.inner.retries.load(Ordering::Relaxed),
            rate_limited: self.inner.rate_limited.load(Ordering::Relaxed),
            backoff: Duration::from_nanos(self.inner.backoff_nanos.load(Ordering::Relaxed)),
        }
    }

    /// The retry loop: JSON body and `Request-Id` of the first 2xx answer,
    /// parsed as `T` (`what` names it in a shape error).
    async fn fetch<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        what: &str,
    ) -> Result<(T, Option<String>), ApiError> {
        let inner = &*self.inner;
        let url = build_url(&inner.base, segments, query)?;
        let lane = if segments.last() == Some(&"search") {
            Lane::Search
        } else {
            Lane::General
        };
        // Built once, and only when someone listens.
        let target = inner
            .on_request
            .as_ref()
            .map(|_| self.redact(&display_target(&url)));
        let log = |status, error, request_id: Option<&str>, elapsed, retry, next| {
            if let (Some(hook), Some(target)) = (&inner.on_request, &target) {
                (hook.0)(&RequestLog {
                    method: "GET",
                    target: target.clone(),
                    status,
                    error,
                    request_id: request_id.map(str::to_owned),
                    elapsed,
                    retry,
                    next,
                });
            }
        };
        let mut retries = 0;
        loop {
            // The permit is taken before the slot, so a slot is never spent
            // waiting for a permit (which would let sends bunch up).
            let permit = inner
                .in_flight
                .acquire()
                .await
                .map_err(|_| ApiError::Network {
                    message: "the HTTP client was shut down".to_owned(),
                })?;
            inner.pacer.wait(lane).await;
            inner.requests.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let result = self.attempt(&url, what).await;
            let elapsed = sent.elapsed();
            drop(permit);
            let failure = match result {
                Ok(a) => {
                    let id = a.request_id.as_deref();
                    log(Some(a.status), None, id, elapsed, retries, NextStep::Done);
                    return Ok((a.value, a.request_id));
                }
                Err(failure) => failure,
            };
            let max_retries = match failure.error {
                ApiError::Unreachable { .. } => inner.max_retries.min(MAX_UNREACHABLE_RETRIES),
                _ => inner.max_retries,
            };
            let error = error_kind(&failure.error, failure.status);
            let id = failure.error.request_id();
            if !failure.retry || retries >= max_retries {
                let next = match failure.retry {
                    true => NextStep::GiveUp,
                    false => NextStep::Done,
                };
                log(failure.status, error, id, elapsed, retries, next);
                return Err(with_retry_note(failure.error, retries));
            }
            let jitter = 0.5 * (1.0 + fastrand::f64());
            let delay = inner
                .backoff
                .delay(retries + 1, failure.retry_after, jitter);
            let next = NextStep::Retry {
                number: retries + 1,
                after: delay,
            };
            log(failure.status, error, id, elapsed, retries, next);
            retries += 1;
            inner.retries.fetch_add(1, Ordering::Relaxed);
            let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
            inner.backoff_nanos.fetch_add(nanos, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        url: &Url,
        what: &str,
    ) -> Result<Answer<T>, Failure> {
        let inner = &*self.inner;
        let path = url.path();
        let response = match inner.http.get(url.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                let retry = !e.is_builder();
                return Err(Failure {
                    error: self.transport_error(e, path),
                    retry,
                    retry_after: None,
                    status: None,
                });
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers();
        let request_id = header_str(headers, "request-id").map(|id| self.redact(id));
        let stripe_should_retry = header_str(headers, "stripe-should-retry").map(str::to_owned);
        let retry_after = header_str(headers, "retry-after").and_then(parse_retry_after);
        let content_type = header_str(headers, "content-type").map(str::to_owned);
        if status == 429 {
            inner.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        if status == 401 {
            // Stripe's 401 message quotes the (masked) key; we never surface it.
            return Err(Failure::final_(
                ApiError::Unauthorized { request_id },
                status,
            ));
        }

        let body = match read_body(response).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                return Err(Failure::final_(
                    ApiError::Decode {
                        message: format!(
                            "GET {path}: the response is larger than {} MiB",
                            MAX_BODY_BYTES >> 20
                        ),
                        request_id,
                    },
                    status,
                ));
            }
            // Cut off mid-body: a transport failure, whatever the status said.
            Err(e) => {
                return Err(Failure {
                    error: self.transport_error(e, path),
                    retry: true,
                    retry_after: None,
                    status: Some(status),
                });
            }
        };

        if (200..300).contains(&status) {
            return match serde_json::from_slice::<T>(&body) {
                Ok(value) => Ok(Answer {
                    value,
                    request_id,
                    status,
                }),
                // Complete JSON of another shape: retrying cannot help.
                Err(e) if e.is_data() => Err(Failure::final_(
                    ApiError::Decode {
                        message: self.redact(&format!("{what}: unexpected response shape: {e}")),
                        request_id,
                    },
                    status,
                )),
                // Stripe always sends complete JSON on success, so a 2xx body
                // that does not parse was truncated or mangled in transit:
                // retry it like a network error.
                Err(e) => Err(Failure {
                    error: ApiError::Decode {
                        message: format!(
                            "GET {path}: HTTP {status} with a body that is not valid JSON (truncated?): {e}"
                        ),
                        request_id,
                    },
                    retry: true,
                    retry_after: None,
                    status: Some(status),
                }),
            };
        }

        Err(Failure {
            error: self.status_error(status, &body, content_type.as_deref(), request_id, path),
            retry: should_retry(status, stripe_should_retry.as_deref()),
            retry_after,
            status: Some(status),
        })
    }

    /// A non-2xx answer: Stripe's JSON error if the body is one, else `Decode`
    /// (an HTML page from a proxy, for example) naming the status.
    fn status_error(
        &self,
        status: u16,
        body: &[u8],
        content_type: Option<&str>,
        request_id: Option<String>,
        path: &str,
    ) -> ApiError {
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            let text = String::from_utf8_lossy(body);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let mut snippet: String = text.chars().take(120).collect();
            if snippet.len() < text.len() {
                snippet.push('…');
            }
            if snippet.is_empty() {
                snippet.push_str("(empty)");
            }
            let kind = content_type.map(|c| format!(" ({c})")).unwrap_or_default();
            return ApiError::Decode {
                message: self.redact(&format!(
                    "GET {path}: HTTP {status} with a body that is not JSON{kind}: {snippet}"
                )),
                request_id,
            };
        };
        let error = json.get("error");
        let detail = |field: &str| error.and_then(|e| e.get(field)).and_then(Value::as_str);
        let code = detail("code").map(|c| self.redact(c));
        let message = detail("message")
            .or(error.and_then(Value::as_str)) // OAuth style: "error": "invalid_grant"
            .or(detail("type"))
            .map(|m| self.redact(m))
            .unwrap_or_else(|| format!("GET {path}: no error message in the response"));
        ApiError::Status {
            status,
            code,
            message,
            request_id,
        }
    }

    fn transport_error(&self, e: reqwest::Error, path: &str) -> ApiError {
        if e.is_timeout() {
            return ApiError::Timeout;
        }
        // No connection at all (refused, DNS, TLS handshake): the base is
        // what is wrong, not this path, so the message names the base.
        if e.is_connect() {
            let base = self.inner.base.as_str().trim_end_matches('/');
            let reason = unreachable_reason(&e.without_url(), self.inner.base.scheme() == "https");
            return ApiError::Unreachable {
                message: self.redact(&format!("cannot reach the Stripe API at {base}: {reason}")),
            };
        }
        ApiError::Network {
            message: self.redact(&format!("GET {path}: {}", error_chain(&e.without_url()))),
        }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        value: Value,
        request_id: Option<String>,
        what: &str,
    ) -> Result<T, ApiError> {
        serde_json::from_value(value).map_err(|e| ApiError::Decode {
            message: self.redact(&format!("{what}: unexpected response shape: {e}")),
            request_id,
        })
    }

    fn redact(&self, text: &str) -> String {
        redact_with_key(text, self.inner.api_key.expose())
    }
}

/// `base` + `segments` (each percent-encoded as one segment) + form-encoded `query`.
fn build_url(base: &Url, segments: &[&str], query: &[(&str, String)]) -> Result<Url, ApiError> {
    if let Some(bad) = segments.iter().find(|s| matches!(**s, "." | "..")) {
        return Err(ApiError::InvalidBase(format!(
            "invalid path segment {bad:?} in an API path"
        )));
    }
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| ApiError::InvalidBase(format!("the API base URL {base} cannot take a path")))?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    Ok(url)
}

/// The path and query of `url` for the request log: query pairs decoded so
/// `expand[]` and search quotes read as written, with every character that
/// is not printable ASCII, or would make a pair ambiguous, percent-encoded.
fn display_target(url: &Url) -> String {
    fn push_shown(out: &mut String, text: &str) {
        for c in text.chars() {
            if c.is_ascii_graphic() && !matches!(c, '&' | '=' | '%' | '#' | '+') {
                out.push(c);
            } else {
                for b in c.encode_utf8(&mut [0; 4]).bytes() {
                    let _ = write!(out, "%{b:02X}");
                }
            }
        }
    }
    let mut out = url.path().to_owned();
    for (i, (k, v)) in url.query_pairs().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        push_shown(&mut out, &k);
        out.push('=');
        push_shown(&mut out, &v);
    }
    out
}

/// The word the request log shows for a failed attempt whose status (if
/// any) does not explain it.
fn error_kind(error: &ApiError, status: Option<u16>) -> Option<&'static str> {
    match error {
        ApiError::Timeout => Some("timeout"),
        ApiError::Unreachable { .. } => Some("unreachable"),
        ApiError::Network { .. } => Some("network error"),
        // A 2xx whose body we cannot use; a non-2xx is explained by its status.
        ApiError::Decode { .. } if status.is_none_or(|s| (200..300).contains(&s)) => {
            Some("unreadable body")
        }
        ApiError::InvalidBase(_) => Some("invalid request"),
        ApiError::Decode { .. } | ApiError::Status { .. } | ApiError::Unauthorized { .. } => None,
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// The whole body, `None` if it exceeds [`MAX_BODY_BYTES`].
async fn read_body(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let expected = response.content_length().unwrap_or(0);
    let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(MAX_BODY_BYTES));
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The error and its causes, deduplicated (reqwest and hyper repeat each other).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Why a connection could not be made, in a few words plus the innermost
/// cause: reqwest and hyper wrap it in "error sending request" and "client
/// error (Connect)", which say nothing. hyper-util's connector names the step
/// that failed ("dns error", "tcp connect error"); a failure of an `https`
/// connection past those steps is the TLS handshake (rustls's own message,
/// such as "invalid peer certificate: UnknownIssuer", is the cause).
fn unreachable_reason(e: &(dyn std::error::Error + 'static), https: bool) -> String {
    let mut refused = false;
    let mut dns = false;
    let mut tcp = false;
    let mut proxy = false;
    let mut innermost = e.to_string();
    let mut cause = Some(e);
    while let Some(err) = cause {
        let text = err.to_string();
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        dns |= text.starts_with("dns error");
        tcp |= text.starts_with("tcp connect error");
        proxy |= text.contains("tunnel") || text.contains("proxy");
        innermost = text;
        cause = err.source();
    }
    if refused {
        "connection refused".to_owned()
    } else if dns {
        format!("DNS lookup failed ({innermost})")
    } else if proxy && !tcp {
        format!("the proxy failed ({innermost})")
    } else if https && !tcp {
        format!("TLS handshake failed ({innermost})")
    } else {
        format!("cannot connect ({innermost})")
    }
}

fn with_retry_note(error: ApiError, retries: u32) -> ApiError {
    if retries == 0 {
        return error;
    }
    match error {
        ApiError::Network { message } => ApiError::Network {
            message: format!("{message} (gave up after {retries} retries)"),
        },
        ApiError::Unreachable { message } => ApiError::Unreachable {
            message: format!("{message} (gave up after {retries} retries)"),
        },
        other => other,
    }
}

/// Whether a non-2xx answer is worth another attempt (Stripe's SDKs, plus
/// 429, which the spec retries): `Stripe-Should-Retry` decides when present,
/// else 409, 429 and 5xx are retried. A 401 never is.
fn should_retry(status: u16, stripe_should_retry: Option<&str>) -> bool {
    if status == 401 {
        return false;
    }
    match stripe_should_retry {
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        _ => matches!(status, 409 | 429) || status >= 500,
    }
}

/// `Retry-After` in seconds (integer or decimal), capped at 60 s. The
/// HTTP-date form is ignored (Stripe sends seconds); backoff applies then.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        secs.min(MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

/// How long to wait before a retry. The base is [`DEFAULT_BACKOFF_BASE`]
/// unless a test injected a smaller one ([`ClientConfig::backoff_base`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backoff {
    base: Duration,
}

impl Backoff {
    /// The wait before retry number `retry` (1-based): the base doubling,
    /// capped at 10 x the base, times `jitter` (clamped to [0.5, 1]), at
    /// least the base; at least `retry_after` (capped at 60 s, scaled like
    /// the base) when the server asked for it.
    fn delay(self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let base = self.base.as_secs_f64();
        let doublings = retry.saturating_sub(1).min(16);
        let delay =
            (base * f64::from(1u32 << doublings)).min(base * f64::from(MAX_RETRY_DELAY_FACTOR));
        let jitter = if jitter.is_nan() {
            1.0
        } else {
            jitter.clamp(0.5, 1.0)
        };
        let delay = Duration::from_secs_f64(delay * jitter).max(self.base);
        match retry_after {
            Some(asked) => delay.max(self.scale_retry_after(asked)),
            None => delay,
        }
    }

    /// `Retry-After` in full with the default base; shrunk in proportion to
    /// an injected one, so a test's server can still ask for a wait.
    fn scale_retry_after(self, asked: Duration) -> Duration {
        let asked = asked.min(MAX_RETRY_AFTER);
        if self.base == DEFAULT_BACKOFF_BASE {
            return asked;
        }
        asked
            .mul_f64(self.base.as_secs_f64() / DEFAULT_BACKOFF_BASE.as_secs_f64())
            .min(MAX_RETRY_AFTER)
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
