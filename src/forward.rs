//! `replay --forward-to`: deliver each event, signed at send time, to the
//! app's own webhook endpoint, byte for byte as it stands in the input.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use crate::secret::Secret;
use crate::signature;

/// What one delivery got: the endpoint's status and time, or the error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Delivery {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<u16>,
    pub ms: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// A non-2xx answer's body: its first [`BODY_EXCERPT`] bytes, surrounding
    /// whitespace trimmed, escaped for a terminal, `…` at the end when cut.
    /// None for a 2xx, an error, or an empty body.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub body: Option<String>,
}

/// How many bytes of a failed delivery's answer are kept.
pub const BODY_EXCERPT: usize = 200;

/// How much of a failed delivery's answer is read at most (to find the
/// excerpt after leading whitespace); the rest is not waited for.
const BODY_READ_LIMIT: usize = 8 * 1024;

/// What `describe` says when an https:// endpoint answers in plain text.
pub const NOT_TLS: &str = "the endpoint does not speak TLS: use http://";

/// Headers stripe-sync sets on every delivery, as usually spelled; `-H`
/// replaces them only with `--allow-header-override`.
pub const OWN_HEADERS: [&str; 3] = ["Stripe-Signature", "Content-Type", "User-Agent"];

/// `name`'s usual spelling if it is one of [`OWN_HEADERS`].
pub fn own_header(name: &HeaderName) -> Option<&'static str> {
    OWN_HEADERS
        .iter()
        .copied()
        .find(|h| name.as_str().eq_ignore_ascii_case(h))
}

impl Delivery {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

pub struct Settings {
    pub url: reqwest::Url,
    /// The endpoint's secret as given: several, comma-separated, during a
    /// rotation (each delivery then carries one `v1=` per secret).
    pub secret: Secret,
    pub concurrency: usize,
    pub timeout: Duration,
    pub headers: HeaderMap,
    pub delay: Duration,
}

/// Check `--forward-to`: http(s) only, plain http only to loopback unless
/// `allow_remote`.
pub fn check_url(url: &str, allow_remote: bool) -> Result<reqwest::Url, String> {
    check_url_of("--forward-to", url, allow_remote)
}

/// [`check_url`] for the option `flag` (`--forward-to`, `--repair-via`).
pub fn check_url_of(flag: &str, url: &str, allow_remote: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        format!("invalid {flag} {url:?}: {e}; expected e.g. http://localhost:3000/api/stripe")
    })?;
    let host = parsed.host_str().unwrap_or("").to_owned();
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(parsed),
        "http" if crate::stripe::is_loopback(&host) || (allow_remote && !host.is_empty()) => {
            Ok(parsed)
        }
        "http" => Err(format!(
            "{flag} {url:?}: plain http:// goes only to a loopback host (localhost, 127.0.0.1, [::1]); \
             pass --allow-remote to send signed events to {host}"
        )),
        scheme => Err(format!(
            "{flag} {url:?}: unsupported scheme {scheme:?}; use http:// or https://"
        )),
    }
}

/// Parse `-H 'Name: value'`.
pub fn parse_header(raw: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| format!("header {raw:?} is not `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
        format!(
            "header {raw:?}: {:?} is not a valid header name",
            name.trim()
        )
    })?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("header {raw:?}: the value has characters a header cannot carry"))?;
    Ok((name, value))
}

/// Sends deliveries with at most `concurrency` in flight; with 1, strictly
/// in input order.
pub struct Forwarder {
    /// The command's one runtime (see `crate::runtime`).
    rt: tokio::runtime::Handle,
    client: reqwest::Client,
    settings: std::sync::Arc<Settings>,
    /// `settings.secret` split as `verify` and `sign` split `--secret`.
    secrets: std::sync::Arc<[Secret]>,
    inflight: tokio::task::JoinSet<(u64, Delivery)>,
    results: HashMap<u64, Delivery>,
    sent: u64,
}

impl Forwarder {
    pub fn new(settings: Settings, rt: tokio::runtime::Handle) -> anyhow::Result<Forwarder> {
        let secrets = settings.secret.split_list();
        if let Some(i) = crate::secret::first_blank(&secrets) {
            return Err(crate::usage(format!(
                "webhook secret #{} for --forward-to is blank (check --secret and \
                 STRIPE_WEBHOOK_SECRET for empty entries)",
                i + 1
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Stripe's own webhook User-Agent.
            .user_agent("Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .build()?;
        Ok(Forwarder {
            rt,
            client,
            settings: std::sync::Arc::new(settings),
            secrets: secrets.into(),
            inflight: tokio::task::JoinSet::new(),
            results: HashMap::new(),
            sent: 0,
        })
    }

    /// Deliver one event body; `key` identifies its decision.
    pub fn send(&mut self, key: u64, body: String) {
        if self.sent > 0 && !self.settings.delay.is_zero() {
            // The timer must be created inside the runtime: `sleep()` called
            // out here, as block_on's argument, panics ("no reactor running").
            let delay = self.settings.delay;
            self.rt
                .block_on(async move { tokio::time::sleep(delay).await });
        }
        while self.inflight.len() >= self.settings.concurrency.max(1) {
            self.collect_one();
        }
        self.sent += 1;
        let client = self.client.clone();
        let settings = self.settings.clone();
        let secrets = self.secrets.clone();
        self.inflight.spawn_on(
            async move {
                let started = Instant::now();
                // Signed now, as Stripe signs each delivery attempt, with
                // each secret during a rotation.
                let header =
                    signature::sign_all(&secrets, crate::commands::unix_now(), body.as_bytes())
                        .header;
                // `-H` last: `headers()` replaces what is set before it, so
                // an override (only with --allow-header-override) is the
                // one value sent, and the client's User-Agent yields to it.
                let result = client
                    .post(settings.url.clone())
                    .header("content-type", "application/json; charset=utf-8")
                    .header("stripe-signature", header)
                    .headers(settings.headers.clone())
                    .body(body)
                    .send()
                    .await;
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let delivery = match result {
                    Ok(resp) if resp.status().is_success() => {
                        let status = resp.status().as_u16();
                        // Read the body so the connection can be reused.
                        let _ = resp.bytes().await;
                        Delivery {
                            status: Some(status),
                            ms,
                            error: None,
                            body: None,
                        }
                    }
                    Ok(mut resp) => {
                        let status = resp.status().as_u16();
                        let (raw, complete) = read_head(&mut resp, BODY_READ_LIMIT).await;
                        Delivery {
                            status: Some(status),
                            ms,
                            error: None,
                            body: excerpt(&raw, complete),
                        }
                    }
                    Err(e) if e.is_timeout() => Delivery {
                        status: None,
                        ms,
                        error: Some(format!(
                            "timed out after {} s",
                            settings.timeout.as_secs_f64()
                        )),
                        body: None,
                    },
                    Err(e) => Delivery {
                        status: None,
                        ms,
                        error: Some(describe(&e)),
                        body: None,
                    },
                };
                (key, delivery)
            },
            &self.rt,
        );
        if self.settings.concurrency <= 1 {
            self.collect_one();
        }
    }

    fn collect_one(&mut self) {
        // A task that was cancelled has no result to attribute.
        if let Some(Ok((key, d))) = self.rt.block_on(self.inflight.join_next()) {
            self.results.insert(key, d);
        }
    }

    /// Wait for every delivery; the results by key.
    pub fn finish(mut self) -> HashMap<u64, Delivery> {
        while !self.inflight.is_empty() {
            self.collect_one();
        }
        self.results
    }
}

/// Up to `limit` bytes of the answer (at least what arrived), and whether
/// that is the whole body. A body that fails or times out half way counts
/// as cut.
async fn read_head(resp: &mut reqwest::Response, limit: usize) -> (Vec<u8>, bool) {
    let mut raw = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                raw.extend_from_slice(&chunk);
                if raw.len() > limit {
                    return (raw, false);
                }
            }
            Ok(None) => return (raw, true),
            Err(_) => return (raw, false),
        }
    }
}

/// The part of a failed delivery's answer worth showing: the first
/// [`BODY_EXCERPT`] bytes of the trimmed body, cut on a character boundary,
/// escaped for a terminal, with `…` when anything was left out. None when
/// there is nothing to show.
fn excerpt(raw: &[u8], complete: bool) -> Option<String> {
    let body = if complete {
        raw.trim_ascii()
    } else {
        raw.trim_ascii_start()
    };
    let cut = !complete || body.len() > BODY_EXCERPT;
    let mut head = &body[..body.len().min(BODY_EXCERPT)];
    if body.len() > BODY_EXCERPT {
        head = head[..utf8_boundary(head)].trim_ascii_end();
    }
    if head.is_empty() {
        return None;
    }
    let mut text = crate::output::escape_text(&String::from_utf8_lossy(head)).into_owned();
    if cut {
        text.push('…');
    }
    Some(text)
}

/// `head.len()`, less a UTF-8 sequence the cut at the end left incomplete.
fn utf8_boundary(head: &[u8]) -> usize {
    let len = head.len();
    for i in (len.saturating_sub(3)..len).rev() {
        let b = head[i];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back
        }
        let width = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if len - i < width { i } else { len };
    }
    len
}

/// True when a TLS handshake got an answer that is not TLS at all: a record
/// whose type or version no TLS peer sends (rustls), or OpenSSL's words for
/// the same. This is what `https://` to a plain-HTTP port gives.
fn not_tls(msg: &str) -> bool {
    [
        "received corrupt message of type InvalidContentType",
        "received corrupt message of type UnknownProtocolVersion",
        "wrong version number",
        "packet length too long",
    ]
    .iter()
    .any(|m| msg.contains(m))
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut chain = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    if chain.iter().any(|m| not_tls(m)) {
        return NOT_TLS.to_owned();
    }
    if e.url().is_some_and(|u| u.scheme() == "https")
        && chain.iter().any(|m| m.contains("tls handshake eof"))
    {
        // A plain server that hangs up on a ClientHello: likely, not sure.
        return "the endpoint closed the connection during the TLS handshake \
                (if it serves plain HTTP, use http://)"
            .to_owned();
    }
    let mut msg = if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    for s in chain {
        msg.push_str(": ");
        msg.push_str(&s);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        assert!(check_url("http://localhost:3000/api/stripe", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/", false).is_ok());
        assert!(check_url("http://[::1]:8080/", false).is_ok());
        assert!(check_url("https://app.example.com/hook", false).is_ok());
        let e = check_url("http://app.example.com/hook", false).unwrap_err();
        assert!(e.contains("--allow-remote"), "{e}");
        assert!(check_url("http://app.example.com/hook", true).is_ok());
        assert!(check_url("ftp://x/y", true).is_err());
        assert!(check_url("not a url", true).is_err());
    }

    #[test]
    fn headers() {
        let (n, v) = parse_header("X-Test:  yes ").unwrap();
        assert_eq!((n.as_str(), v.to_str().unwrap()), ("x-test", "yes"));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
        assert!(parse_header("X: a\nb").is_err());
        for raw in ["stripe-signature: x", "Content-Type: x", "USER-AGENT: x"] {
            assert!(own_header(&parse_header(raw).unwrap().0).is_some(), "{raw}");
        }
        assert_eq!(own_header(&parse_header("X-Test: x").unwrap().0), None);
    }

    #[test]
    fn body_excerpts() {
        assert_eq!(excerpt(b"", true), None);
        assert_eq!(excerpt(b" \n\t", true), None);
        assert_eq!(
            excerpt(b"  bad signature\n", true).unwrap(),
            "bad signature"
        );
        assert_eq!(excerpt(b"a\x1b[2Jb\nc", true).unwrap(), "a\\u{1b}[2Jb\\nc");
        // Exactly the limit: kept whole, no ellipsis.
        let full = "x".repeat(BODY_EXCERPT);
        assert_eq!(excerpt(full.as_bytes(), true).unwrap(), full);
        // One more byte: cut, with an ellipsis.
        let long = format!("{full}y");
        assert_eq!(excerpt(long.as_bytes(), true).unwrap(), format!("{full}…"));
        // A two-byte character across byte 200 is left out whole.
        let straddle = format!("{}é tail", "x".repeat(BODY_EXCERPT - 1));
        assert_eq!(
            excerpt(straddle.as_bytes(), true).unwrap(),
            format!("{}…", "x".repeat(BODY_EXCERPT - 1))
        );
        // A three-byte one ending exactly at byte 200 stays.
        let fits = format!("{}€ tail", "x".repeat(BODY_EXCERPT - 3));
        assert_eq!(
            excerpt(fits.as_bytes(), true).unwrap(),
            format!("{}€…", "x".repeat(BODY_EXCERPT - 3))
        );
        // No whitespace is left before the ellipsis.
        let spaced = format!("{}\n  {}", "x".repeat(BODY_EXCERPT - 3), "y".repeat(9));
        assert_eq!(
            excerpt(spaced.as_bytes(), true).unwrap(),
            format!("{}…", "x".repeat(BODY_EXCERPT - 3))
        );
        // Invalid UTF-8 shows as U+FFFD; an unfinished read is marked cut.
        assert_eq!(excerpt(b"a\xffb", true).unwrap(), "a\u{fffd}b");
        assert_eq!(excerpt(b"partial", false).unwrap(), "partial…");
        assert_eq!(excerpt(b"", false), None);
    }

    #[test]
    fn utf8_boundaries() {
        let s = "aé€😀".as_bytes(); // 1 + 2 + 3 + 4 bytes
        let cuts: Vec<usize> = (0..=s.len()).map(|n| utf8_boundary(&s[..n])).collect();
        assert_eq!(cuts, [0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10]);
    }

    #[test]
    fn plain_text_answers_to_tls() {
        assert!(not_tls(
            "received corrupt message of type InvalidContentType"
        ));
        assert!(not_tls("error:0A00010B:SSL routines::wrong version number"));
        assert!(!not_tls("invalid peer certificate: UnknownIssuer"));
        assert!(!not_tls("Connection refused (os error 111)"));
    }
}
