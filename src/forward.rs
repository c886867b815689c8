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
}

impl Delivery {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

pub struct Settings {
    pub url: reqwest::Url,
    pub secret: Secret,
    pub concurrency: usize,
    pub timeout: Duration,
    pub headers: HeaderMap,
    pub delay: Duration,
}

/// Check `--forward-to`: http(s) only, plain http only to loopback unless
/// `allow_remote`.
pub fn check_url(url: &str, allow_remote: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        format!("invalid --forward-to {url:?}: {e}; expected e.g. http://localhost:3000/api/stripe")
    })?;
    let host = parsed.host_str().unwrap_or("").to_owned();
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(parsed),
        "http" if crate::stripe::is_loopback(&host) || (allow_remote && !host.is_empty()) => {
            Ok(parsed)
        }
        "http" => Err(format!(
            "--forward-to {url:?}: plain http:// goes only to a loopback host (localhost, 127.0.0.1, [::1]); \
             pass --allow-remote to send signed events to {host}"
        )),
        scheme => Err(format!(
            "--forward-to {url:?}: unsupported scheme {scheme:?}; use http:// or https://"
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
    inflight: tokio::task::JoinSet<(u64, Delivery)>,
    results: HashMap<u64, Delivery>,
    sent: u64,
}

impl Forwarder {
    pub fn new(settings: Settings, rt: tokio::runtime::Handle) -> anyhow::Result<Forwarder> {
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
        self.inflight.spawn_on(
            async move {
                let started = Instant::now();
                // Signed now, as Stripe signs each delivery attempt.
                let header = signature::sign(
                    &settings.secret,
                    crate::commands::unix_now(),
                    body.as_bytes(),
                )
                .header;
                let result = client
                    .post(settings.url.clone())
                    .headers(settings.headers.clone())
                    .header("content-type", "application/json; charset=utf-8")
                    .header("stripe-signature", header)
                    .body(body)
                    .send()
                    .await;
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let delivery = match result {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        // Read the body so the connection can be reused.
                        let _ = resp.bytes().await;
                        Delivery {
                            status: Some(status),
                            ms,
                            error: None,
                        }
                    }
                    Err(e) if e.is_timeout() => Delivery {
                        status: None,
                        ms,
                        error: Some(format!(
                            "timed out after {} s",
                            settings.timeout.as_secs_f64()
                        )),
                    },
                    Err(e) => Delivery {
                        status: None,
                        ms,
                        error: Some(describe(&e)),
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

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
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
    }
}
