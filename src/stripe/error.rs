//! Errors of the Stripe client. Callers branch on the kind (401 or an
//! unreachable API stops a run, see [`ApiError::is_fatal`]; 404 on a customer
//! means "missing"), so this is a `thiserror` enum. Every
//! message carries Stripe's `Request-Id` when there is one, and never an API
//! key: text that comes from Stripe is passed through [`redact`] first.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// HTTP 401. Never retried.
    #[error(
        "Stripe did not accept the API key (HTTP 401{}); check --api-key, --api-key-file, STRIPE_API_KEY or STRIPE_SECRET_KEY",
        request_suffix(.request_id)
    )]
    Unauthorized { request_id: Option<String> },

    /// Any other non-2xx answer with a JSON body (after retries, if retryable).
    #[error("Stripe answered HTTP {status}{}: {message}{}", code_part(.code), request_suffix(.request_id))]
    Status {
        status: u16,
        code: Option<String>,
        message: String,
        request_id: Option<String>,
    },

    /// No connection could be made at all: connection refused, DNS lookup
    /// failure, TLS handshake failure (after the few retries such failures
    /// get). `message` names the API base, e.g. "cannot reach the Stripe API
    /// at http://127.0.0.1:9: connection refused". No request can succeed,
    /// so a run stops (exit 2) rather than failing customer by customer.
    #[error(
        "{message}; check the network connection (proxy, firewall) and --api-base / STRIPE_API_BASE"
    )]
    Unreachable { message: String },

    /// A connection was made but the exchange broke: reset mid-response, a
    /// body cut off mid-stream (after retries).
    #[error("network error talking to Stripe: {message}")]
    Network { message: String },

    /// No answer within the per-request timeout (after retries).
    #[error("the request to Stripe timed out")]
    Timeout,

    /// An answer whose body is not the JSON we expect: an HTML error page from
    /// a proxy, a truncated body, or JSON of the wrong shape.
    #[error("unreadable response from Stripe: {message}{}", request_suffix(.request_id))]
    Decode {
        message: String,
        request_id: Option<String>,
    },

    /// The client cannot be built from its settings: an unusable `--api-base`,
    /// or an API key / API version that cannot be sent in an HTTP header.
    /// Callers map it to a usage error (status 2); no request was sent.
    #[error("{0}")]
    InvalidBase(String),
}

impl ApiError {
    /// The credentials were refused: 401, or 403 (a restricted key without
    /// the permission this read needs). Either way no further request can
    /// succeed, so a run should stop.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            ApiError::Unauthorized { .. } | ApiError::Status { status: 403, .. }
        )
    }

    /// No further request of this run can succeed: the credentials were
    /// refused ([`is_auth`](Self::is_auth)) or the API cannot be reached at
    /// all ([`ApiError::Unreachable`]). Callers stop the run (exit 2).
    pub fn is_fatal(&self) -> bool {
        self.is_auth() || matches!(self, ApiError::Unreachable { .. })
    }

    /// Stripe's `Request-Id` of the response this error came from, if any.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Unauthorized { request_id }
            | ApiError::Status { request_id, .. }
            | ApiError::Decode { request_id, .. } => request_id.as_deref(),
            ApiError::Unreachable { .. }
            | ApiError::Network { .. }
            | ApiError::Timeout
            | ApiError::InvalidBase(_) => None,
        }
    }

    /// The HTTP status, for errors that come from a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Unauthorized { .. } => Some(401),
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn request_suffix(request_id: &Option<String>) -> String {
    match request_id {
        Some(id) => format!("; request {id}"),
        None => String::new(),
    }
}

fn code_part(code: &Option<String>) -> String {
    match code {
        Some(c) => format!(" ({c})"),
        None => String::new(),
    }
}

/// Replace anything that looks like a Stripe key (`sk_…`, `rk_…`, `pk_…`,
/// masked or not) with `(redacted)`, and escape control characters. Stripe
/// echoes a masked key in some messages ("Invalid API Key provided:
/// sk_test_****1234"; a 403 names the restricted key), and we print none of it.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // A key starts a token: `task_id` or `disk_usage` are not keys.
    let mut prev_is_token = false;
    while !rest.is_empty() {
        if !prev_is_token && let Some(len) = key_token_len(rest) {
            out.push_str("(redacted)");
            rest = &rest[len..];
            prev_is_token = true;
            continue;
        }
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
        prev_is_token = is_token_char(c);
        rest = chars.as_str();
    }
    out
}

/// Like [`redact`], and also removes the exact key text wherever it appears
/// (a key with an unusual prefix would escape the pattern).
pub(crate) fn redact_with_key(text: &str, key: &str) -> String {
    let key = key.trim();
    if key.len() >= 8 && text.contains(key) {
        redact(&text.replace(key, "(redacted)"))
    } else {
        redact(text)
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '*'
}

/// Length of a key-like token at the start of `s`: a `sk_`/`rk_`/`pk_` prefix
/// followed by at least one more token character.
fn key_token_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() < 4 || !matches!(&b[..3], b"sk_" | b"rk_" | b"pk_") {
        return None;
    }
    let len = 3 + s[3..].chars().take_while(|&c| is_token_char(c)).count();
    (len > 3).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_keys_in_messages() {
        assert_eq!(
            redact("Invalid API Key provided: sk_test_****1234"),
            "Invalid API Key provided: (redacted)"
        );
        assert_eq!(
            redact("The provided key 'rk_live_****abcd' does not have"),
            "The provided key '(redacted)' does not have"
        );
        assert_eq!(redact("pk_test_abc, sk_live_x."), "(redacted), (redacted).");
        // Not a key: part of a longer word, or a bare prefix.
        assert_eq!(redact("task_id disk_usage sk_"), "task_id disk_usage sk_");
        assert_eq!(redact("line\nbreak\u{1b}[31m"), "line\\nbreak\\u{1b}[31m");
        assert_eq!(redact("key:\nsk_test_1"), "key:\\n(redacted)");
        assert_eq!(
            redact("No such customer: 'cus_é1'"),
            "No such customer: 'cus_é1'"
        );
    }

    #[test]
    fn redacts_the_exact_key() {
        assert_eq!(
            redact_with_key("bad key whatever123456 here", "whatever123456"),
            "bad key (redacted) here"
        );
        assert_eq!(redact_with_key("short ab", "ab"), "short ab");
    }

    #[test]
    fn messages_carry_the_request_id() {
        let e = ApiError::Status {
            status: 404,
            code: Some("resource_missing".into()),
            message: "No such customer: 'cus_1'".into(),
            request_id: Some("req_123".into()),
        };
        assert_eq!(
            e.to_string(),
            "Stripe answered HTTP 404 (resource_missing): No such customer: 'cus_1'; request req_123"
        );
        let e = ApiError::Unauthorized {
            request_id: Some("req_9".into()),
        };
        assert!(e.to_string().contains("HTTP 401; request req_9"));
        assert!(e.is_auth());
        assert_eq!(e.request_id(), Some("req_9"));
        assert!(!ApiError::Timeout.is_auth());
    }

    #[test]
    fn fatal_kinds() {
        let status = |status| ApiError::Status {
            status,
            code: None,
            message: "m".into(),
            request_id: None,
        };
        let unreachable = ApiError::Unreachable {
            message: "cannot reach the Stripe API at http://127.0.0.1:9: connection refused".into(),
        };
        for fatal in [
            ApiError::Unauthorized { request_id: None },
            status(403),
            unreachable.clone(),
        ] {
            assert!(fatal.is_fatal(), "{fatal}");
        }
        for not_fatal in [
            status(404),
            status(429),
            status(500),
            ApiError::Network {
                message: "connection reset".into(),
            },
            ApiError::Timeout,
            ApiError::Decode {
                message: "m".into(),
                request_id: None,
            },
        ] {
            assert!(!not_fatal.is_fatal(), "{not_fatal}");
        }
        assert!(!unreachable.is_auth());
        assert_eq!(unreachable.request_id(), None);
        assert_eq!(
            unreachable.to_string(),
            "cannot reach the Stripe API at http://127.0.0.1:9: connection refused; \
             check the network connection (proxy, firewall) and --api-base / STRIPE_API_BASE"
        );
    }
}
