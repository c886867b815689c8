//! Unit tests of the client: the pure rules, then a few real HTTP exchanges
//! with a scripted server on 127.0.0.1 (the fake Stripe in tests/ covers the
//! rest end to end).

use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

const KEY: &str = "sk_test_unit_1234567890";

// ---------------------------------------------------------------------------
// Pure rules
// ---------------------------------------------------------------------------

#[test]
fn api_base_rules() {
    for ok in [
        "https://api.stripe.com",
        "https://example.com:8443/prefix/",
        "http://127.0.0.1:8080",
        "http://127.5.6.7",
        "http://localhost",
        "http://LOCALHOST:9/",
        "http://[::1]:8080",
    ] {
        assert!(validate_api_base(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://example.com",
        "http://10.0.0.1",
        "http://[::2]",
        "http://localhost.example.com",
        "ftp://api.stripe.com",
        "garbage",
        "",
        "localhost:8080",
        "https://user:pw@api.stripe.com",
        "https://api.stripe.com/?x=1",
    ] {
        assert!(validate_api_base(bad).is_err(), "{bad}");
    }
    let msg = validate_api_base("http://example.com").unwrap_err();
    assert!(
        msg.contains("loopback") && msg.contains("https://"),
        "{msg}"
    );
    let msg = validate_api_base("https://user:sk_test_x@h").unwrap_err();
    assert!(!msg.contains("sk_test_x"), "{msg}");
}

#[test]
fn key_modes() {
    let mode = |k: &str| key_mode(&Secret::new(k));
    assert_eq!(mode("sk_test_123"), KeyMode::Test);
    assert_eq!(mode("rk_test_123"), KeyMode::Test);
    assert_eq!(mode("sk_live_123"), KeyMode::Live);
    assert_eq!(mode("rk_live_123"), KeyMode::Live);
    assert_eq!(mode("pk_live_123"), KeyMode::Unknown);
    assert_eq!(mode("whsec_123"), KeyMode::Unknown);
    assert_eq!(mode(""), KeyMode::Unknown);

    let mut cfg = ClientConfig::new(Secret::new("sk_live_1"));
    assert_eq!(cfg.effective_max_rps(), 80.0);
    cfg.api_key = Secret::new("rk_test_1");
    assert_eq!(cfg.effective_max_rps(), 20.0);
    cfg.max_rps = Some(3.5);
    assert_eq!(cfg.effective_max_rps(), 3.5);
    cfg.max_rps = Some(0.0);
    assert_eq!(cfg.effective_max_rps(), 20.0);
}

#[test]
fn backoff_schedule() {
    let default = Backoff {
        base: DEFAULT_BACKOFF_BASE,
    };
    let secs = |n| default.delay(n, None, 1.0).as_secs_f64();
    let schedule: Vec<f64> = (1..=7).map(secs).collect();
    assert_eq!(schedule, [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]);
    assert_eq!(default.delay(u32::MAX, None, 1.0), Duration::from_secs(5));
    // Jitter takes off at most half, never going under 0.5 s.
    assert_eq!(default.delay(1, None, 0.5), DEFAULT_BACKOFF_BASE);
    assert_eq!(default.delay(3, None, 0.5), Duration::from_secs(1));
    assert_eq!(default.delay(3, None, 0.0), Duration::from_secs(1));
    assert_eq!(default.delay(3, None, f64::NAN), Duration::from_secs(2));
    // Retry-After raises the wait, capped at 60 s; it never shortens it.
    let after = |s| Some(Duration::from_secs(s));
    assert_eq!(default.delay(1, after(3), 1.0), Duration::from_secs(3));
    assert_eq!(default.delay(4, after(1), 1.0), Duration::from_secs(4));
    assert_eq!(default.delay(1, after(3600), 1.0), MAX_RETRY_AFTER);
}

#[test]
fn injected_backoff_base_scales_everything() {
    // A base of 0 never sleeps, even when the server asks for a wait.
    let none = Backoff {
        base: Duration::ZERO,
    };
    for retry in [1, 2, 5, u32::MAX] {
        for jitter in [0.5, 1.0] {
            assert_eq!(
                none.delay(retry, Some(Duration::from_secs(30)), jitter),
                Duration::ZERO
            );
        }
    }
    // A base of 50 ms: the same shape, a tenth of the time; Retry-After too.
    let fast = Backoff {
        base: Duration::from_millis(50),
    };
    let ms = |n| fast.delay(n, None, 1.0).as_millis();
    let schedule: Vec<u128> = (1..=6).map(ms).collect();
    assert_eq!(schedule, [50, 100, 200, 400, 500, 500]);
    assert_eq!(fast.delay(1, None, 0.5), Duration::from_millis(50));
    assert_eq!(
        fast.delay(1, Some(Duration::from_secs(2)), 1.0),
        Duration::from_millis(200)
    );
    assert_eq!(
        fast.delay(1, Some(Duration::from_secs(3600)), 1.0),
        Duration::from_secs(6)
    );
}

#[test]
fn an_absurd_backoff_base_is_capped_not_a_panic() {
    let mut cfg = config("http://127.0.0.1:9", 1);
    cfg.backoff_base = Duration::MAX;
    let c = Client::new(cfg).expect("client");
    assert_eq!(c.inner.backoff.base, MAX_RETRY_AFTER);
    assert_eq!(
        c.inner.backoff.delay(u32::MAX, Some(MAX_RETRY_AFTER), 1.0),
        Duration::from_secs(600)
    );
}

#[test]
fn unreachable_retries_stay_well_under_ten_seconds() {
    // The most an unreachable API can cost the first request in waiting,
    // with the default base and the worst jitter: 0.5 s + 1 s.
    let default = Backoff {
        base: DEFAULT_BACKOFF_BASE,
    };
    let worst: Duration = (1..=MAX_UNREACHABLE_RETRIES)
        .map(|n| default.delay(n, None, 1.0))
        .sum();
    assert_eq!(worst, Duration::from_millis(1500));
}

#[test]
fn test_backoff_env_value() {
    assert_eq!(test_backoff_override(None), None);
    assert_eq!(test_backoff_override(Some("0")), Some(Duration::ZERO));
    assert_eq!(
        test_backoff_override(Some(" 25 ")),
        Some(Duration::from_millis(25))
    );
    assert_eq!(
        test_backoff_override(Some("60000")),
        Some(Duration::from_secs(60))
    );
    for ignored in ["", "-1", "1.5", "fast", "60001", "99999999999999999999"] {
        assert_eq!(test_backoff_override(Some(ignored)), None, "{ignored}");
    }
    // `new` applies it (or the default when unset, as in a plain test run).
    let from_env = std::env::var(TEST_BACKOFF_ENV).ok();
    let expected = test_backoff_override(from_env.as_deref()).unwrap_or(DEFAULT_BACKOFF_BASE);
    assert_eq!(ClientConfig::new(Secret::new(KEY)).backoff_base, expected);
}

#[test]
fn retry_after_parsing() {
    assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
    assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_retry_after("86400"), Some(MAX_RETRY_AFTER));
    for bad in [
        "",
        "-1",
        "soon",
        "NaN",
        "inf",
        "Wed, 21 Oct 2015 07:28:00 GMT",
    ] {
        assert_eq!(parse_retry_after(bad), None, "{bad}");
    }
}

#[test]
fn should_retry_table() {
    let table: &[(u16, Option<&str>, bool)] = &[
        (400, None, false),
        (402, None, false),
        (403, None, false),
        (404, None, false),
        (409, None, true),
        (429, None, true),
        (500, None, true),
        (502, None, true),
        (503, None, true),
        (401, None, false),
        (401, Some("true"), false),
        (400, Some("true"), true),
        (429, Some("false"), false),
        (500, Some("false"), false),
        (503, Some("FALSE"), false),
        (409, Some("maybe"), true),
        (404, Some("maybe"), false),
    ];
    for &(status, header, expected) in table {
        assert_eq!(
            should_retry(status, header),
            expected,
            "{status} {header:?}"
        );
    }
}

#[test]
fn url_building() {
    let base = validate_api_base("http://127.0.0.1:1").unwrap();
    let url = build_url(
        &base,
        &["v1", "subscriptions"],
        &[
            ("customer", "cus_1".into()),
            ("expand[]", "data.default_payment_method".into()),
        ],
    )
    .unwrap();
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:1/v1/subscriptions?customer=cus_1&expand%5B%5D=data.default_payment_method"
    );

    let base = validate_api_base("https://h/prefix/").unwrap();
    let url = build_url(&base, &["v1", "customers", "cus 1/x?y"], &[]).unwrap();
    assert_eq!(
        url.as_str(),
        "https://h/prefix/v1/customers/cus%201%2Fx%3Fy"
    );
    assert!(build_url(&base, &["v1", "customers", ".."], &[]).is_err());

    let query = metadata_search_query("clerkUserId", "user_2abc");
    assert_eq!(query, "metadata['clerkUserId']:'user_2abc'");
    let url = build_url(&base, &["v1", "customers", "search"], &[("query", query)]).unwrap();
    assert_eq!(
        url.query(),
        Some("query=metadata%5B%27clerkUserId%27%5D%3A%27user_2abc%27")
    );
}

#[test]
fn search_query_escaping() {
    assert_eq!(
        metadata_search_query("k", "O'Brien"),
        r"metadata['k']:'O\'Brien'"
    );
    assert_eq!(metadata_search_query("k", r"a\b"), r"metadata['k']:'a\\b'");
    assert_eq!(
        metadata_search_query("we'ird", r"\'"),
        r"metadata['we\'ird']:'\\\''"
    );
    assert_eq!(metadata_search_query("k", ""), "metadata['k']:''");
}

#[test]
fn bad_settings_fail_before_any_request() {
    let mut cfg = ClientConfig::new(Secret::new("sk_test_1\n"));
    let err = Client::new(cfg.clone()).unwrap_err();
    assert!(matches!(err, ApiError::InvalidBase(_)), "{err}");
    cfg.api_key = Secret::new(KEY);
    cfg.api_base = "http://example.com".into();
    let err = Client::new(cfg).unwrap_err();
    assert!(
        matches!(err, ApiError::InvalidBase(ref m) if m.contains("loopback")),
        "{err}"
    );
    let client = Client::new(ClientConfig::new(Secret::new(KEY))).unwrap();
    assert!(!format!("{client:?}").contains(KEY));
}

// ---------------------------------------------------------------------------
// HTTP exchanges with a scripted server
// ---------------------------------------------------------------------------

enum Reply {
    /// Bytes to write, then close the connection.
    Raw(String),
    /// Never answer (until the client gives up).
    Hang,
}

fn json(status: u16, extra_headers: &[(&str, &str)], body: &str) -> Reply {
    let mut head = format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRequest-Id: req_unit\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    Reply::Raw(format!("{head}\r\n{body}"))
}

fn stripe_error(status: u16, code: &str, message: &str, extra: &[(&str, &str)]) -> Reply {
    let body = serde_json::json!({"error": {"type": "invalid_request_error", "code": code, "message": message}});
    json(status, extra, &body.to_string())
}

struct Server {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Request heads received so far, lowercased.
    fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Answer each connection with the next reply (one request per connection);
/// once the script is done, answer 500.
async fn serve(replies: Vec<Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        let mut replies = replies.into_iter();
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if let Ok(mut seen) = seen.lock() {
                seen.push(String::from_utf8_lossy(&head).to_lowercase());
            }
            match replies.next() {
                Some(Reply::Raw(bytes)) => {
                    let _ = socket.write_all(bytes.as_bytes()).await;
                    let _ = socket.shutdown().await;
                }
                Some(Reply::Hang) => {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        drop(socket);
                    });
                }
                None => {
                    if let Reply::Raw(bytes) = stripe_error(500, "x", "script exhausted", &[]) {
                        let _ = socket.write_all(bytes.as_bytes()).await;
                    }
                }
            }
        }
    });
    Server { url, requests }
}

fn config(api_base: &str, max_retries: u32) -> ClientConfig {
    let mut cfg = ClientConfig::new(Secret::new(KEY));
    cfg.api_base = api_base.to_owned();
    cfg.max_retries = max_retries;
    cfg.max_rps = Some(1000.0);
    cfg.timeout = Duration::from_millis(500);
    // Retries do not sleep here; the backoff tests above check the waits.
    cfg.backoff_base = Duration::ZERO;
    cfg
}

fn client(server: &Server, max_retries: u32) -> Client {
    Client::new(config(&server.url, max_retries)).expect("client")
}

/// A base URL on 127.0.0.1 where nothing listens (bound, then released).
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    url
}

const SUB: &str = r#"{"object":"list","has_more":false,"data":[{"id":"sub_1","object":"subscription",
    "customer":"cus_1","status":"active","created":5,"default_payment_method":{"id":"pm_1","card":{"brand":"visa","last4":"4242"}}}]}"#;

#[tokio::test]
async fn sends_headers_and_encoded_query() {
    let server = serve(vec![json(200, &[], SUB)]).await;
    let c = client(&server, 0);
    let sub = c
        .latest_subscription("cus_1")
        .await
        .expect("ok")
        .expect("a subscription");
    assert_eq!(sub.id.as_deref(), Some("sub_1"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let head = &reqs[0];
    assert!(
        head.starts_with(
            "get /v1/subscriptions?customer=cus_1&status=all&limit=1&expand%5b%5d=data.default_payment_method&expand%5b%5d=data.customer http/1.1\r\n"
        ),
        "{head}"
    );
    assert!(head.contains(&format!("authorization: bearer {}\r\n", KEY.to_lowercase())));
    assert!(head.contains(&format!(
        "stripe-version: {}\r\n",
        DEFAULT_API_VERSION.to_lowercase()
    )));
    assert!(head.contains(&format!(
        "user-agent: stripe-sync/{}\r\n",
        env!("CARGO_PKG_VERSION")
    )));
    assert_eq!(
        c.stats(),
        Stats {
            requests: 1,
            retries: 0,
            rate_limited: 0,
            backoff: Duration::ZERO,
        }
    );
}

#[tokio::test]
async fn retries_429_then_succeeds() {
    let server = serve(vec![
        stripe_error(
            429,
            "rate_limit",
            "Too many requests",
            &[("Retry-After", "0")],
        ),
        json(200, &[], SUB),
    ])
    .await;
    let c = client(&server, 3);
    assert!(c.latest_subscription("cus_1").await.expect("ok").is_some());
    assert_eq!(
        c.stats(),
        Stats {
            requests: 2,
            retries: 1,
            rate_limited: 1,
            backoff: Duration::ZERO,
        }
    );
}

#[tokio::test]
async fn never_retries_401_and_hides_the_key() {
    let server = serve(vec![stripe_error(
        401,
        "api_key_invalid",
        "Invalid API Key provided: sk_test_****7890",
        &[("Stripe-Should-Retry", "true")],
    )])
    .await;
    let c = client(&server, 5);
    let err = c.list_customers(None).await.unwrap_err();
    assert_eq!(
        err,
        ApiError::Unauthorized {
            request_id: Some("req_unit".into())
        }
    );
    assert!(err.is_auth());
    let text = err.to_string();
    assert!(
        text.contains("req_unit") && !text.contains("sk_test"),
        "{text}"
    );
    assert_eq!(c.stats().requests, 1);
}

#[tokio::test]
async fn honours_stripe_should_retry_false() {
    let server = serve(vec![stripe_error(
        500,
        "x",
        "boom",
        &[("Stripe-Should-Retry", "false")],
    )])
    .await;
    let c = client(&server, 5);
    let err = c.list_customers(Some("cus_9")).await.unwrap_err();
    assert!(matches!(err, ApiError::Status { status: 500, .. }), "{err}");
    assert_eq!(c.stats().requests, 1);
    assert!(server.requests()[0].starts_with("get /v1/customers?limit=100&starting_after=cus_9 "));
}

#[tokio::test]
async fn other_4xx_are_final_and_keep_stripes_message() {
    let server = serve(vec![stripe_error(
        403,
        "secret_key_required",
        "The provided key 'rk_test_****7890' does not have access",
        &[],
    )])
    .await;
    let c = client(&server, 5);
    let err = c.list_subscriptions(None).await.unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        "Stripe answered HTTP 403 (secret_key_required): The provided key '(redacted)' does not have access; request req_unit"
    );
    assert!(err.is_auth());
    assert_eq!(c.stats().requests, 1);
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let server = serve(vec![
        stripe_error(503, "x", "down", &[]),
        stripe_error(503, "x", "down", &[]),
        stripe_error(503, "x", "still down", &[]),
    ])
    .await;
    let c = client(&server, 2);
    let err = c.get_json("/v1/customers/cus_1", &[]).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Status { status: 503, ref message, .. } if message == "still down")
    );
    assert_eq!(
        c.stats(),
        Stats {
            requests: 3,
            retries: 2,
            rate_limited: 0,
            backoff: Duration::ZERO,
        }
    );
}

#[tokio::test]
async fn retries_a_truncated_success_body() {
    let half = &SUB[..SUB.len() / 2];
    let server = serve(vec![json(200, &[], half), json(200, &[], SUB)]).await;
    let c = client(&server, 1);
    assert!(c.latest_subscription("cus_1").await.expect("ok").is_some());
    assert_eq!(c.stats().retries, 1);

    let server = serve(vec![json(200, &[], half)]).await;
    let err = client(&server, 0)
        .latest_subscription("cus_1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Decode {
                request_id: Some(_),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn html_error_page_is_a_decode_error() {
    let page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    let reply = format!(
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    let server = serve(vec![Reply::Raw(reply)]).await;
    let err = client(&server, 0).list_customers(None).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            ApiError::Decode {
                request_id: None,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("HTTP 502") && text.contains("text/html"),
        "{text}"
    );
}

#[tokio::test]
async fn body_cut_off_mid_stream_is_retried() {
    let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\nConnection: close\r\n\r\n{\"object\":";
    let server = serve(vec![Reply::Raw(reply.into()), json(200, &[], SUB)]).await;
    let c = client(&server, 1);
    assert!(c.latest_subscription("cus_1").await.expect("ok").is_some());
    assert_eq!(c.stats().retries, 1);
}

#[tokio::test]
async fn timeouts_are_their_own_kind() {
    let server = serve(vec![Reply::Hang]).await;
    let err = client(&server, 0).list_customers(None).await.unwrap_err();
    assert_eq!(err, ApiError::Timeout);
    assert!(!err.is_fatal());
}

#[tokio::test]
async fn refused_connection_is_unreachable_after_two_retries() {
    let base = closed_port().await;
    // --max-retries 5 (the default) still gives a refused connection only 2.
    let c = Client::new(config(&base, DEFAULT_MAX_RETRIES)).expect("client");
    let err = c.list_customers(None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ApiError::Unreachable { .. }), "{text}");
    assert!(err.is_fatal());
    assert!(
        text.starts_with(&format!(
            "cannot reach the Stripe API at {base}: connection refused (gave up after 2 retries); "
        )),
        "{text}"
    );
    assert!(text.contains("--api-base") && !text.contains(KEY), "{text}");
    assert_eq!(
        c.stats(),
        Stats {
            requests: 3,
            retries: 2,
            rate_limited: 0,
            backoff: Duration::ZERO,
        }
    );

    // Fewer retries asked for: fewer made.
    let c = Client::new(config(&base, 0)).expect("client");
    let err = c.customer("cus_1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach the Stripe API at {base}: connection refused; \
             check the network connection (proxy, firewall) and --api-base / STRIPE_API_BASE"
        )
    );
    assert_eq!(c.stats().requests, 1);
}

#[tokio::test]
async fn tls_handshake_failure_is_unreachable() {
    // A plain-HTTP server behind an https:// base: it answers the
    // ClientHello with an HTTP response, so the handshake fails.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
            let _ = socket.shutdown().await;
        }
    });
    let c = Client::new(config(&base, 1)).expect("client");
    let err = c.list_customers(None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ApiError::Unreachable { .. }), "{text}");
    assert!(
        text.starts_with(&format!(
            "cannot reach the Stripe API at {base}: TLS handshake failed ("
        )),
        "{text}"
    );
    assert_eq!(c.stats().retries, 1);
}

#[test]
fn unreachable_reasons() {
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<dyn std::error::Error + 'static>>);
    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref()
        }
    }
    // reqwest -> hyper-util -> connector step -> cause, as the client sees it.
    let chain = |step: &'static str, cause: Box<dyn std::error::Error + 'static>| {
        Layer(
            "error sending request",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer(step, Some(cause)))),
            ))),
        )
    };
    let io = |kind, text: &str| Box::new(std::io::Error::new(kind, text.to_owned()));
    use std::io::ErrorKind;
    let refused = chain(
        "tcp connect error",
        io(
            ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ),
    );
    for https in [false, true] {
        assert_eq!(unreachable_reason(&refused, https), "connection refused");
    }
    let dns = chain(
        "dns error",
        io(ErrorKind::Other, "failed to lookup address information"),
    );
    assert_eq!(
        unreachable_reason(&dns, true),
        "DNS lookup failed (failed to lookup address information)"
    );
    let unreachable = chain(
        "tcp connect error",
        io(ErrorKind::Other, "Network is unreachable (os error 101)"),
    );
    assert_eq!(
        unreachable_reason(&unreachable, true),
        "cannot connect (Network is unreachable (os error 101))"
    );
    // Past DNS and TCP, an https connection fails in the handshake.
    let tls = Layer(
        "error sending request",
        Some(Box::new(Layer(
            "client error (Connect)",
            Some(io(
                ErrorKind::Other,
                "invalid peer certificate: UnknownIssuer",
            )),
        ))),
    );
    assert_eq!(
        unreachable_reason(&tls, true),
        "TLS handshake failed (invalid peer certificate: UnknownIssuer)"
    );
    assert_eq!(
        unreachable_reason(&tls, false),
        "cannot connect (invalid peer certificate: UnknownIssuer)"
    );
    let proxy = chain("unsuccessful tunnel", io(ErrorKind::Other, "407"));
    assert_eq!(unreachable_reason(&proxy, true), "the proxy failed (407)");
}

#[tokio::test]
async fn retry_after_is_scaled_with_the_injected_base() {
    let busy = || {
        stripe_error(
            429,
            "rate_limit",
            "Too many requests",
            &[("Retry-After", "2")],
        )
    };
    // Base 0: no waiting at all, Retry-After or not.
    let server = serve(vec![busy(), busy(), json(200, &[], SUB)]).await;
    let c = client(&server, 5);
    assert!(c.latest_subscription("cus_1").await.expect("ok").is_some());
    assert_eq!(
        c.stats(),
        Stats {
            requests: 3,
            retries: 2,
            rate_limited: 2,
            backoff: Duration::ZERO,
        }
    );

    // Base 5 ms (a hundredth of the default): 2 s asked becomes 20 ms.
    let server = serve(vec![busy(), json(200, &[], SUB)]).await;
    let mut cfg = config(&server.url, 5);
    cfg.backoff_base = Duration::from_millis(5);
    let c = Client::new(cfg).expect("client");
    assert!(c.latest_subscription("cus_1").await.expect("ok").is_some());
    assert_eq!(c.stats().backoff, Duration::from_millis(20));
}

#[tokio::test]
async fn customer_found_deleted_missing() {
    let server = serve(vec![
        json(200, &[], r#"{"id":"cus_1","object":"customer","email":"a@b.c","metadata":{"u":"1"}}"#),
        json(200, &[], r#"{"id":"cus_2","object":"customer","deleted":true}"#),
        stripe_error(404, "resource_missing", "No such customer: 'cus_3'", &[]),
        // A 404 that is not about the customer (wrong --api-base path) is an error.
        json(404, &[], r#"{"error":{"type":"invalid_request_error","message":"Unrecognized request URL (GET: /x)"}}"#),
        json(200, &[], r#"{"id":"sub_1","object":"subscription"}"#),
    ])
    .await;
    let c = client(&server, 0);
    match c.customer("cus_1").await {
        Ok(CustomerFetch::Found(o)) => assert_eq!(o.email.as_deref(), Some("a@b.c")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.customer("cus_2").await,
        Ok(CustomerFetch::Deleted)
    ));
    assert!(matches!(
        c.customer("cus_3").await,
        Ok(CustomerFetch::Missing)
    ));
    assert!(matches!(
        c.customer("cus_4").await,
        Err(ApiError::Status {
            status: 404,
            code: None,
            ..
        })
    ));
    assert!(matches!(
        c.customer("cus_5").await,
        Err(ApiError::Decode { .. })
    ));
    assert!(matches!(c.customer("..").await, Ok(CustomerFetch::Missing)));
    assert_eq!(c.stats().requests, 5);
}

#[tokio::test]
async fn search_follows_pages() {
    let page1 = r#"{"object":"search_result","data":[{"id":"cus_1","object":"customer"}],"has_more":true,"next_page":"pg_2"}"#;
    let page2 = r#"{"object":"search_result","data":[{"id":"cus_2","object":"customer"}],"has_more":false,"next_page":null}"#;
    let server = serve(vec![json(200, &[], page1), json(200, &[], page2)]).await;
    let c = client(&server, 0);
    let found = c
        .search_customers_by_metadata("clerkUserId", "it's")
        .await
        .expect("ok");
    let ids: Vec<_> = found.iter().filter_map(|o| o.id.as_deref()).collect();
    assert_eq!(ids, ["cus_1", "cus_2"]);
    let reqs = server.requests();
    let q = "query=metadata%5b%27clerkuserid%27%5d%3a%27it%5c%27s%27&limit=100";
    assert!(
        reqs[0].starts_with(&format!("get /v1/customers/search?{q} ")),
        "{}",
        reqs[0]
    );
    assert!(
        reqs[1].starts_with(&format!("get /v1/customers/search?{q}&page=pg_2 ")),
        "{}",
        reqs[1]
    );
}

// ---------------------------------------------------------------------------
// The request hook (-vv)
// ---------------------------------------------------------------------------

/// A client whose hook keeps every [`RequestLog`].
fn logging_client(server: &Server, max_retries: u32) -> (Client, Arc<Mutex<Vec<RequestLog>>>) {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let kept = logs.clone();
    let mut cfg = config(&server.url, max_retries);
    cfg.on_request = Some(RequestHook::new(move |log| {
        if let Ok(mut logs) = kept.lock() {
            logs.push(log.clone());
        }
    }));
    (Client::new(cfg).expect("client"), logs)
}

fn taken(logs: &Mutex<Vec<RequestLog>>) -> Vec<RequestLog> {
    logs.lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

/// `json` with its own `Request-Id`.
fn json_id(status: u16, id: &str, extra_headers: &[(&str, &str)], body: &str) -> Reply {
    let Reply::Raw(raw) = json(status, extra_headers, body) else {
        unreachable!()
    };
    Reply::Raw(raw.replace("Request-Id: req_unit", &format!("Request-Id: {id}")))
}

#[tokio::test]
async fn the_hook_sees_every_attempt_and_what_follows() {
    let half = &SUB[..SUB.len() / 2];
    let server = serve(vec![
        json_id(429, "req_1", &[("Retry-After", "0")], "{}"),
        json_id(200, "req_2", &[], half),
        json_id(200, "req_3", &[], SUB),
    ])
    .await;
    let (c, logs) = logging_client(&server, 3);
    assert!(c.latest_subscription("cus_1").await.expect("ok").is_some());
    let logs = taken(&logs);
    let target = "/v1/subscriptions?customer=cus_1&status=all&limit=1&expand[]=data.default_payment_method&expand[]=data.customer";
    let retry = |number| NextStep::Retry {
        number,
        after: Duration::ZERO,
    };
    let seen: Vec<_> = logs
        .iter()
        .map(|l| {
            (
                l.method,
                l.target.as_str(),
                l.status,
                l.error,
                l.request_id.as_deref(),
                l.retry,
                l.next,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", target, Some(429), None, Some("req_1"), 0, retry(1)),
            (
                "GET",
                target,
                Some(200),
                Some("unreadable body"),
                Some("req_2"),
                1,
                retry(2)
            ),
            (
                "GET",
                target,
                Some(200),
                None,
                Some("req_3"),
                2,
                NextStep::Done
            ),
        ]
    );
    assert!(logs.iter().all(|l| l.elapsed < Duration::from_secs(5)));
    assert_eq!(c.stats().requests, 3, "one log per request sent");
}

#[tokio::test]
async fn the_hook_reports_giving_up_final_answers_and_timeouts() {
    // Retryable, but no retries allowed: given up.
    let server = serve(vec![stripe_error(503, "x", "down", &[])]).await;
    let (c, logs) = logging_client(&server, 0);
    assert!(c.list_customers(None).await.is_err());
    let log = taken(&logs).pop().expect("one log");
    assert_eq!(
        (log.target.as_str(), log.status, log.error, log.next),
        ("/v1/customers?limit=100", Some(503), None, NextStep::GiveUp)
    );

    // A 404 is an answer, not worth retrying: done.
    let server = serve(vec![stripe_error(404, "resource_missing", "No such", &[])]).await;
    let (c, logs) = logging_client(&server, 3);
    assert!(matches!(
        c.customer("cus_gone").await,
        Ok(CustomerFetch::Missing)
    ));
    let log = taken(&logs).pop().expect("one log");
    assert_eq!(
        (log.target.as_str(), log.status, log.next),
        ("/v1/customers/cus_gone", Some(404), NextStep::Done)
    );

    // No answer at all: the error kind stands in for the status.
    let server = serve(vec![Reply::Hang]).await;
    let (c, logs) = logging_client(&server, 0);
    assert_eq!(c.list_customers(None).await.unwrap_err(), ApiError::Timeout);
    let log = taken(&logs).pop().expect("one log");
    assert_eq!(
        (log.status, log.error, log.request_id, log.next),
        (None, Some("timeout"), None, NextStep::GiveUp)
    );
}

#[tokio::test]
async fn the_hook_never_sees_the_key_and_gets_a_printable_target() {
    let server = serve(vec![
        json(200, &[], r#"{"id":"x","object":"customer","deleted":true}"#),
        json(
            200,
            &[],
            r#"{"object":"search_result","data":[],"has_more":false}"#,
        ),
    ])
    .await;
    let (c, logs) = logging_client(&server, 0);
    // A key pasted where a customer id belongs.
    let _ = c.customer(KEY).await;
    let _ = c
        .search_customers_by_metadata("clerkUserId", "user 1&x=\u{1b}é")
        .await;
    let logs = taken(&logs);
    let targets: Vec<&str> = logs.iter().map(|l| l.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/v1/customers/(redacted)",
            "/v1/customers/search?query=metadata['clerkUserId']:'user%201%26x%3D%1B%C3%A9'&limit=100",
        ]
    );
    assert!(!format!("{logs:?}").contains(KEY));
}

#[test]
fn a_config_with_a_hook_still_debugs_without_the_key() {
    let mut cfg = config("http://127.0.0.1:1", 0);
    assert!(format!("{cfg:?}").contains("on_request: None"));
    cfg.on_request = Some(RequestHook::new(|_| {}));
    let shown = format!("{cfg:?}");
    assert!(
        shown.contains("on_request: Some(RequestHook(..))"),
        "{shown}"
    );
    assert!(!shown.contains(KEY), "{shown}");
}
