//! Stripe-Signature header parsing, verification, signing and diagnosis.
//! Pure functions: no I/O, no clock (the caller passes `now`).
//!
//! Compatibility rule (SPEC.md): where stripe-node (`src/Webhooks.ts`) and
//! stripe-python (`stripe/_webhook.py`) agree on accepting or rejecting a
//! header we agree with them; where they would read a header differently we
//! reject it. Concretely, per comma-separated entry both split the key off at
//! the first `=` and cut the value at the next `=`; the key must be exactly
//! `t` or `v1` (no trimming). Python reads the first `t` with `int()`, node
//! the last with `parseInt`; a header counts only when both get the same
//! number, and both then sign the *number* (`t=+0012` signs `12.`), not the
//! text. `scripts/sdk_conformance.sh` checks this against the real SDKs.

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Ok,
    NoSignatures,
    MalformedHeader,
    SignatureMismatch,
    TimestampOutOfTolerance,
    PayloadNotUtf8,
    /// An empty body: stripe-node refuses it outright (an addition to SPEC.md's list).
    EmptyPayload,
    /// The signature matches the exact bytes, but they start with a UTF-8
    /// byte-order mark, which the SDKs read differently (see [`BOM_DISAGREEMENT`]):
    /// no header passes both (an addition to SPEC.md's list).
    PayloadBom,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::NoSignatures => "no_signatures",
            Reason::MalformedHeader => "malformed_header",
            Reason::SignatureMismatch => "signature_mismatch",
            Reason::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            Reason::PayloadNotUtf8 => "payload_not_utf8",
            Reason::EmptyPayload => "empty_payload",
            Reason::PayloadBom => "payload_bom",
        }
    }
}

/// A likely cause of a failure that the tool has tested, not guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HintCode {
    /// The signature matches once a trailing newline (or CRLF) is removed.
    PayloadTrailingNewline,
    /// The signature matches once CRLF line endings become LF (or back).
    PayloadLineEndings,
    /// The payload starts with a UTF-8 byte-order mark, which the SDKs read
    /// differently; says whether the signature matches with or without it.
    PayloadBom,
    /// The payload is JSON that was re-serialized after signing.
    PayloadReformatted,
    /// The signature matches over the raw bytes, which are not UTF-8.
    SignedBytesNotUtf8,
    /// The secret has surrounding whitespace, and matches without it.
    SecretWhitespace,
    /// The secret lacks its `whsec_` prefix, and matches with it.
    SecretMissingPrefix,
    /// An API key (`sk_`, `rk_`, `pk_`) was given instead of a `whsec_` secret.
    NotAWebhookSecret,
    /// The signature is right, the timestamp too old.
    ExpiredButSignatureValid,
    /// The timestamp lies in the future of the clock (or `--now`).
    FutureTimestamp,
    /// The header has only `v0` (test-mode legacy) signatures.
    V0Only,
    /// A `v1` value matches but in uppercase hex, which Stripe never sends.
    UppercaseHex,
    /// An entry such as ` v1=` has whitespace around its key, so it is ignored.
    HeaderWhitespace,
    /// The header ends in a newline (CR/LF), which the SDKs keep in the last
    /// `v1` value; without it the signature matches.
    HeaderTrailingNewline,
    /// The payload is a thin event (`"object": "v2.core.event"`), which the
    /// SDKs' constructEvent refuses whatever its signature. Not a re-check of
    /// the signature: `verify` adds it from the payload (see [`thin_event_hint`]).
    ThinEvent,
}

impl HintCode {
    pub fn as_str(self) -> &'static str {
        match self {
            HintCode::PayloadTrailingNewline => "payload_trailing_newline",
            HintCode::PayloadLineEndings => "payload_line_endings",
            HintCode::PayloadBom => "payload_bom",
            HintCode::PayloadReformatted => "payload_reformatted",
            HintCode::SignedBytesNotUtf8 => "signed_bytes_not_utf8",
            HintCode::SecretWhitespace => "secret_whitespace",
            HintCode::SecretMissingPrefix => "secret_missing_prefix",
            HintCode::NotAWebhookSecret => "not_a_webhook_secret",
            HintCode::ExpiredButSignatureValid => "expired_but_signature_valid",
            HintCode::FutureTimestamp => "future_timestamp",
            HintCode::V0Only => "v0_only",
            HintCode::UppercaseHex => "uppercase_hex",
            HintCode::HeaderWhitespace => "header_whitespace",
            HintCode::HeaderTrailingNewline => "header_trailing_newline",
            HintCode::ThinEvent => "thin_event",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hint {
    pub code: HintCode,
    pub message: String,
}

/// The `object` of a Stripe thin event ("event notification").
pub const THIN_EVENT_OBJECT: &str = "v2.core.event";

/// The notice for a payload whose `object` is [`THIN_EVENT_OBJECT`]: both
/// SDKs verify its signature like any other, then refuse to build an event
/// from it (stripe-node's `buildEvent`, stripe-python's `build_v1_event`).
pub fn thin_event_hint() -> Hint {
    Hint {
        code: HintCode::ThinEvent,
        message: "the payload is a thin event (\"object\": \"v2.core.event\"): \
                  stripe.webhooks.constructEvent (stripe-node) and Webhook.construct_event \
                  (stripe-python) refuse it even when its signature is valid; parse it with \
                  stripe.parseEventNotification (stripe-node) or client.parse_event_notification \
                  (stripe-python), then fetch the full event"
            .into(),
    }
}

/// The UTF-8 byte-order mark.
pub const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Why no header verifies a payload that starts with [`UTF8_BOM`] in both
/// SDKs: stripe-node decodes a Buffer with `TextDecoder`, which drops the
/// mark, before it computes the HMAC; stripe-python's `decode("utf-8")`
/// keeps it (stripe-python 16 then parses the JSON from the bytes, BOM
/// allowed; older releases parsed the decoded text and refused it).
pub const BOM_DISAGREEMENT: &str = "stripe-node strips the mark before computing the \
     signature, stripe-python does not, so no signature passes both SDKs; save the file \
     without a BOM";

/// A moment to judge a timestamp's age at: unix seconds, and the nanoseconds
/// past them (a clock reading has them; `--now UNIX` is a whole second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixTime {
    pub secs: i64,
    /// Nanoseconds past `secs`; only whether there are any counts.
    pub nanos: u32,
}

impl UnixTime {
    /// A whole second.
    pub fn from_secs(secs: i64) -> UnixTime {
        UnixTime { secs, nanos: 0 }
    }
}

/// The kind prefix (`sk_`, `rk_`, `pk_`) of a Stripe API key given where a
/// webhook signing secret (`whsec_...`) belongs.
pub fn api_key_prefix(secret: &str) -> Option<&'static str> {
    ["sk_", "rk_", "pk_"]
        .into_iter()
        .find(|p| secret.starts_with(p))
}

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    Empty,
    MissingTimestamp,
    DuplicateTimestamp,
    BadTimestamp(String),
    EntryWithoutValue(&'static str),
    /// A `v1=` with nothing after it: stripe-node's secureCompare throws on it.
    EmptySignature,
    /// A non-ASCII `v1` value of 64 UTF-16 units: node's timingSafeEqual throws.
    UncomparableSignature,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Empty => f.write_str("the header is empty"),
            HeaderError::MissingTimestamp => f.write_str("the header has no `t=` timestamp"),
            HeaderError::DuplicateTimestamp => f.write_str(
                "the header has `t=` entries of different values (stripe-python reads the first, stripe-node the last)",
            ),
            HeaderError::BadTimestamp(why) => write!(f, "the `t=` timestamp is unusable: {why}"),
            HeaderError::EntryWithoutValue(key) => {
                write!(f, "the header has a bare `{key}` entry without `=`")
            }
            HeaderError::UncomparableSignature => f.write_str(
                "a `v1=` value has non-ASCII characters that stripe-node cannot compare (its timingSafeEqual throws)",
            ),
            HeaderError::EmptySignature => f.write_str(
                "the header has an empty `v1=` entry, which stripe-node refuses outright (its secureCompare throws)",
            ),
        }
    }
}

/// A parsed `Stripe-Signature` header, borrowing from the header text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub timestamp: i64,
    pub v1: Vec<&'a str>,
    pub v0_count: usize,
    /// Values of entries whose key is `v1` only after trimming (` v1=`).
    pub spaced_v1: Vec<&'a str>,
}

/// Whitespace JavaScript's `parseInt` skips before a number (StrWhiteSpaceChar;
/// checked against Node 20 for every BMP code point).
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// Whitespace Python's `int()` strips around a number (found by trying every
/// code point with CPython 3.11: not quite `str.isspace`, which adds \x1c-\x1f).
fn is_python_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{0b}'
            | '\u{0c}'
            | '\r'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

/// stripe-python's reading of a `t` value: `int(value)`. `None` where it
/// raises. (Non-ASCII digits, which Python also accepts, are left out: node
/// reads them as NaN, so the two never agree on them anyway.)
fn python_int(raw: &str) -> Option<i128> {
    let s = raw.trim_matches(is_python_whitespace);
    let (negative, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    // Digits with single underscores between them (PEP 515).
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let mut value: i128 = 0;
    for b in body.bytes() {
        match b {
            b'0'..=b'9' => value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?,
            b'_' => {}
            _ => return None,
        }
    }
    Some(if negative { -value } else { value })
}

/// stripe-node's reading: `parseInt(value, 10)`, then `${timestamp}` in the
/// signed string. `None` for NaN, or where the double would not print the
/// same integer back (beyond 2^53 it rounds; from 1e21 it prints exponents).
fn node_parse_int(raw: &str) -> Option<i128> {
    let s = raw.trim_start_matches(is_js_whitespace);
    let (negative, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let digits: &str = &body[..body.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return None;
    }
    let mut value: i128 = 0;
    for b in digits.bytes() {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let value = if negative { -value } else { value };
    // `${timestamp}` prints the double's shortest round-trip digits (plain
    // below 1e21). Python prints the exact integer; only where the two
    // strings are the same can both signatures be the same. Up to 2^53 every
    // integer is a double and prints back as itself, so only larger ones
    // are printed to compare (the common case stays free of allocations).
    let exact_in_double = value.unsigned_abs() <= 1 << 53;
    if !exact_in_double
        && (value.unsigned_abs() >= 10u128.pow(21)
            || format!("{}", value as f64) != value.to_string())
    {
        return None;
    }
    Some(value)
}

/// The timestamp both SDKs would sign, or why they would not agree on one.
/// stripe-python reads the first `t` with `int()`; stripe-node the last with
/// `parseInt` and treats -1 as missing. Both sign the number, not the text.
fn agreed_timestamp(first: &str, last: &str) -> Result<i64, HeaderError> {
    match plain_timestamp(first) {
        Some(t) if first == last => Ok(t),
        _ => sdk_timestamp(first, last),
    }
}

/// [`agreed_timestamp`] by reading the texts as each SDK does.
fn sdk_timestamp(first: &str, last: &str) -> Result<i64, HeaderError> {
    let bad = |why: &str| Err(HeaderError::BadTimestamp(why.to_owned()));
    let (py, node) = (python_int(first), node_parse_int(last));
    match (py, node) {
        (None, _) | (_, None) if first != last => Err(HeaderError::DuplicateTimestamp),
        (None, _) => bad("not a whole number of seconds (stripe-python cannot read it)"),
        (_, None) => bad("stripe-node cannot read it (NaN, or beyond 2^53)"),
        (Some(p), Some(n)) if p != n && first != last => Err(HeaderError::DuplicateTimestamp),
        (Some(p), Some(n)) if p != n => {
            bad("the SDKs read it differently (stripe-node stops at the first non-digit)")
        }
        (Some(_), Some(-1)) => bad("-1 is read as missing by stripe-node"),
        (Some(p), Some(_)) => i64::try_from(p).or_else(|_| bad("too large")),
    }
}

/// What Stripe sends, `t=<1 to 15 digits>`: both SDKs read the digits as the
/// same number (below 2^53, which node's double holds exactly), never -1.
/// Anything else takes the full reading of [`agreed_timestamp`].
fn plain_timestamp(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value = text.bytes().fold(0, |n, d| n * 10 + i64::from(d - b'0'));
    Some(value)
}

/// The entries of a header as both SDKs split them: at every `,`, a key up
/// to the entry's first `=`, and a value up to the next `=` or the end of
/// the entry (`None` for an entry without `=`). One pass over the bytes.
fn entries(header: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let bytes = header.as_bytes();
    let mut next = Some(0);
    std::iter::from_fn(move || {
        let start = next?;
        let key_end =
            start + find_either(&bytes[start..], b',', b'=').unwrap_or(bytes.len() - start);
        let key = &header[start..key_end];
        if bytes.get(key_end) != Some(&b'=') {
            next = (key_end < bytes.len()).then_some(key_end + 1);
            return Some((key, None));
        }
        let value_start = key_end + 1;
        let value_end = value_start
            + find_either(&bytes[value_start..], b',', b'=').unwrap_or(bytes.len() - value_start);
        let entry_end = match bytes.get(value_end) {
            // A second `=`: the rest of the entry is skipped.
            Some(b'=') => find_either(&bytes[value_end..], b',', b',').map(|i| value_end + i),
            Some(_) => Some(value_end),
            None => None,
        };
        next = entry_end.map(|end| end + 1);
        Some((key, Some(&header[value_start..value_end])))
    })
}

/// The first position of `a` or `b` in `bytes`, eight bytes at a time: a
/// header's 64-character `v1` values are most of what the parser reads.
fn find_either(bytes: &[u8], a: u8, b: u8) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The high bit of each zero byte of `x`: exact for the first zero byte
    // (a borrow can only flag bytes after a true zero).
    let zeros = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let (pattern_a, pattern_b) = (ONES * u64::from(a), ONES * u64::from(b));
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("chunks of eight"));
        let found = zeros(word ^ pattern_a) | zeros(word ^ pattern_b);
        if found != 0 {
            return Some(offset + found.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    let tail = words.remainder();
    tail.iter()
        .position(|&c| c == a || c == b)
        .map(|i| offset + i)
}

/// Parse a header value (without the `Stripe-Signature:` name).
pub fn parse_header(header: &str) -> Result<Header<'_>, HeaderError> {
    if header.is_empty() {
        return Err(HeaderError::Empty);
    }
    let mut first_t: Option<&str> = None;
    let mut last_t: Option<&str> = None;
    let mut v1 = Vec::with_capacity(2);
    let mut spaced_v1 = Vec::new();
    let mut v0_count = 0;
    for (key, value) in entries(header) {
        match (key, value) {
            ("t", None) => return Err(HeaderError::EntryWithoutValue("t")),
            ("v1", None) => return Err(HeaderError::EntryWithoutValue("v1")),
            ("t", Some(v)) => {
                first_t.get_or_insert(v);
                last_t = Some(v);
            }
            ("v1", Some("")) => return Err(HeaderError::EmptySignature),
            // Same JS length as a signature but more bytes: node throws.
            ("v1", Some(v)) if !v.is_ascii() && v.encode_utf16().count() == 64 => {
                return Err(HeaderError::UncomparableSignature);
            }
            ("v1", Some(v)) => v1.push(v),
            ("v0", Some(_)) => v0_count += 1,
            (k, Some(v)) if k.trim() == "v1" => spaced_v1.push(v.trim()),
            _ => {}
        }
    }
    let (Some(first), Some(last)) = (first_t, last_t) else {
        return Err(HeaderError::MissingTimestamp);
    };
    let timestamp = agreed_timestamp(first, last)?;
    Ok(Header {
        timestamp,
        v1,
        v0_count,
        spaced_v1,
    })
}

/// Lowercase hex HMAC-SHA256 of `"<t>.<payload>"`, keyed by the whole secret.
pub fn compute_signature(secret: &[u8], timestamp: i64, payload: &[u8]) -> [u8; 64] {
    SigningKey::new(secret).signature(timestamp, payload)
}

/// HMAC-SHA256 keyed by one secret: the key is hashed once (its inner and
/// outer pad blocks), and each signature starts from a copy of that state.
/// Holds no copy of the secret's text; `Debug` prints `(redacted)` anyway.
#[derive(Clone)]
pub(crate) struct SigningKey(HmacSha256);

impl SigningKey {
    pub(crate) fn new(secret: &[u8]) -> SigningKey {
        SigningKey(HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length"))
    }

    /// Lowercase hex HMAC-SHA256 of `"<t>.<payload>"`.
    pub(crate) fn signature(&self, timestamp: i64, payload: &[u8]) -> [u8; 64] {
        self.signature_and_ascii(timestamp, payload).0
    }

    /// [`SigningKey::signature`], and whether the payload is all ASCII,
    /// found in the same pass: the check runs between the hash's blocks,
    /// in time the SHA instructions' latency leaves idle, where a pass of
    /// its own costs a few percent of a verification.
    fn signature_and_ascii(&self, timestamp: i64, payload: &[u8]) -> ([u8; 64], bool) {
        /// Bytes hashed between checks: four SHA-256 blocks (of 128 to
        /// 2048, 256 and 512 measured best on a 2.5 KB event).
        const STRIDE: usize = 256;
        let mut mac = self.0.clone();
        let mut digits = [0u8; 21];
        let digits = decimal(timestamp, &mut digits);
        mac.update(digits);
        mac.update(b".");
        // Complete the first block, so that the rest reaches the hash in
        // whole blocks, read in place rather than through its buffer.
        let (head, rest) = payload.split_at(payload.len().min(64 - (digits.len() + 1)));
        mac.update(head);
        let mut high_bits = or_bytes(head);
        for chunk in rest.chunks(STRIDE) {
            mac.update(chunk);
            high_bits |= or_bytes(chunk);
        }
        let digest = mac.finalize().into_bytes();
        let mut hex = [0u8; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(digest.iter()) {
            pair[0] = hex_digit(byte >> 4);
            pair[1] = hex_digit(byte & 0xf);
        }
        (hex, high_bits < 0x80)
    }
}

/// All the bytes OR-ed together: below 0x80 exactly when all are ASCII.
fn or_bytes(bytes: &[u8]) -> u8 {
    let mut words = bytes.chunks_exact(8);
    let wide = (&mut words).fold(0u64, |acc, w| {
        acc | u64::from_le_bytes(w.try_into().expect("chunks of eight"))
    });
    let narrow = words.remainder().iter().fold(0u8, |acc, b| acc | b);
    wide.to_le_bytes().iter().fold(narrow, |acc, b| acc | b)
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(redacted)")
    }
}

/// The lowercase hex digit of a nibble, without a branch or a table lookup
/// on the (secret-derived) value.
fn hex_digit(nibble: u8) -> u8 {
    let over_nine = 9u8.wrapping_sub(nibble) >> 7; // 1 for a..f
    nibble + b'0' + over_nine * (b'a' - b'0' - 10)
}

/// `n` in decimal, as `n.to_string()` prints it, without allocating.
fn decimal(n: i64, buf: &mut [u8; 21]) -> &[u8] {
    let mut rest = n.unsigned_abs();
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        start -= 1;
        buf[start] = b'-';
    }
    &buf[start..]
}

/// Whether a candidate signature equals the expected one, in a time that
/// depends on its length (public: always 64 from Stripe) but not on where
/// the bytes differ: the differences are OR-ed together without branching,
/// and only the total is compared, once.
fn equal_in_constant_time(expected: &[u8; 64], candidate: &[u8]) -> bool {
    if candidate.len() != expected.len() {
        return false;
    }
    let diff = expected
        .iter()
        .zip(candidate)
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    bool::from(diff.ct_eq(&0))
}

fn matches_any(expected: &[u8; 64], candidates: &[&str]) -> bool {
    // Every candidate is compared, in constant time for equal lengths.
    let mut found = 0u8;
    for c in candidates {
        if c.len() == expected.len() {
            found |= c.as_bytes().ct_eq(expected).unwrap_u8();
        }
    }
    found == 1
}

/// Whether both SDKs can verify a header signed at `t`: not -1 (node reads
/// it as missing), and a number node's double prints back digit for digit.
pub fn signable_timestamp(t: i64) -> bool {
    let text = t.to_string();
    agreed_timestamp(&text, &text).is_ok()
}

/// The `Stripe-Signature` value for a payload.
pub fn sign(secret: &Secret, timestamp: i64, payload: &[u8]) -> SignedHeader {
    sign_all(std::slice::from_ref(secret), timestamp, payload)
}

/// The `Stripe-Signature` value for a payload signed with each secret:
/// `t=<T>,v1=<hex>,v1=<hex>...`, one `v1` per secret in the order given,
/// as Stripe signs while a secret is rolled (the new one first).
pub fn sign_all(secrets: &[Secret], timestamp: i64, payload: &[u8]) -> SignedHeader {
    let signatures: Vec<String> = secrets
        .iter()
        .map(|s| {
            let sig = compute_signature(s.expose().as_bytes(), timestamp, payload);
            String::from_utf8_lossy(&sig).into_owned()
        })
        .collect();
    let mut header = format!("t={timestamp}");
    for s in &signatures {
        header.push_str(",v1=");
        header.push_str(s);
    }
    SignedHeader {
        header,
        timestamp,
        signature: signatures.first().cloned().unwrap_or_default(),
        signatures,
    }
}

/// What `sign --json` prints (SPEC.md's fields; `signatures` is an addition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedHeader {
    pub header: String,
    pub timestamp: i64,
    /// The first secret's signature.
    pub signature: String,
    /// Every secret's signature, in the order of the secrets.
    pub signatures: Vec<String>,
}

/// What a verification concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub valid: bool,
    pub reason: Reason,
    /// Why the header was malformed, when it was.
    pub detail: Option<String>,
    pub timestamp: Option<i64>,
    pub age_seconds: Option<i64>,
    pub matched_secret: Option<usize>,
    pub hints: Vec<Hint>,
}

/// Strip a leading `Stripe-Signature:` header name (any case) and the
/// whitespace before the value, as pasted from logs. At the end only spaces
/// and tabs go (what an HTTP server strips from a field value before the
/// SDKs see it): a trailing CR/LF stays, because both SDKs keep it in the
/// last entry and so reject `...,v1=<hex>\n` (hint `header_trailing_newline`).
pub fn strip_header_name(raw: &str) -> &str {
    const NAME: &str = "stripe-signature:";
    let t = raw.trim_start();
    let t = match t.get(..NAME.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(NAME) => &t[NAME.len()..],
        _ => t,
    };
    t.trim_start().trim_end_matches(HTTP_OWS)
}

/// HTTP's optional whitespace around a field value (RFC 9110 section 5.6.3).
const HTTP_OWS: [char; 2] = [' ', '\t'];

/// The fast path: does the header verify for this payload and secret?
pub fn check(payload: &[u8], header: &Header<'_>, secret: &[u8]) -> bool {
    check_keyed(payload, header, &SigningKey::new(secret))
}

/// [`check`] with the secret keyed beforehand (what [`verify`] uses).
fn check_keyed(payload: &[u8], header: &Header<'_>, key: &SigningKey) -> bool {
    matches_header(header, &key.signature(header.timestamp, payload))
}

/// Whether an expected signature counts as a match among the header's `v1`
/// values, the way both SDKs decide it.
fn matches_header(header: &Header<'_>, expected: &[u8; 64]) -> bool {
    // stripe-python stops at the first match, and raises on a non-ASCII
    // value it reaches before one (hmac.compare_digest on str).
    // Each value is compared in constant time; only where a match sits is
    // branched on.
    let mut first = None;
    for (i, v) in header.v1.iter().enumerate() {
        let equal = equal_in_constant_time(expected, v.as_bytes());
        if equal && first.is_none() {
            first = Some(i);
        }
    }
    match first {
        Some(i) => header.v1[..i].iter().all(|v| v.is_ascii()),
        None => false,
    }
}

/// Verify a payload against a header value and one or more secrets, judging
/// the age as of the whole second `now`.
/// Keys each secret on every call; to verify many payloads against the same
/// secrets, build a [`Verifier`] once.
pub fn verify(
    payload: &[u8],
    header: &str,
    secrets: &[Secret],
    tolerance: u64,
    now: i64,
) -> Verdict {
    verify_at(
        payload,
        header,
        secrets,
        tolerance,
        UnixTime::from_secs(now),
    )
}

/// [`verify`], judging the age as of `now` to the nanosecond: what a
/// reading of the clock gives (see [`judge_age`] for why the fraction counts).
pub fn verify_at(
    payload: &[u8],
    header: &str,
    secrets: &[Secret],
    tolerance: u64,
    now: UnixTime,
) -> Verdict {
    let keys = signing_keys(secrets);
    verify_keyed(payload, header, secrets, &keys, tolerance, now)
}

fn signing_keys(secrets: &[Secret]) -> Vec<SigningKey> {
    secrets
        .iter()
        .map(|s| SigningKey::new(s.expose().as_bytes()))
        .collect()
}

/// [`verify`] for a fixed set of secrets and tolerance, each secret keyed
/// once: what a receiver that checks delivery after delivery holds. `serve`
/// makes one at start and `verify` one per call, so both run this path (and
/// `benches/verify.rs` measures it).
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<Secret>,
    keys: Vec<SigningKey>,
    tolerance: u64,
}

impl Verifier {
    pub fn new(secrets: &[Secret], tolerance: u64) -> Verifier {
        Verifier {
            secrets: secrets.to_vec(),
            keys: signing_keys(secrets),
            tolerance,
        }
    }

    /// The secrets, in the order verdicts number them (`matched_secret`).
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// The same verdict as [`verify`] with these secrets and tolerance.
    pub fn verify(&self, payload: &[u8], header: &str, now: i64) -> Verdict {
        self.verify_at(payload, header, UnixTime::from_secs(now))
    }

    /// The same verdict as [`verify_at`] with these secrets and tolerance.
    pub fn verify_at(&self, payload: &[u8], header: &str, now: UnixTime) -> Verdict {
        verify_keyed(
            payload,
            header,
            &self.secrets,
            &self.keys,
            self.tolerance,
            now,
        )
    }
}

/// [`verify_at`], with `keys[i]` the key of `secrets[i]`.
fn verify_keyed(
    payload: &[u8],
    header: &str,
    secrets: &[Secret],
    keys: &[SigningKey],
    tolerance: u64,
    now: UnixTime,
) -> Verdict {
    let verdict = verify_bytes(payload, header, secrets, keys, tolerance, now);
    if payload.starts_with(UTF8_BOM) {
        refuse_bom(verdict)
    } else {
        verdict
    }
}

/// The verdict on the payload's exact bytes, whatever they start with.
fn verify_bytes(
    payload: &[u8],
    header: &str,
    secrets: &[Secret],
    keys: &[SigningKey],
    tolerance: u64,
    now: UnixTime,
) -> Verdict {
    let parsed = parse_header(header);
    let timestamp = parsed.as_ref().ok().map(|h| h.timestamp);
    let verdict = Verdict {
        valid: false,
        reason: Reason::Ok,
        detail: None,
        timestamp,
        age_seconds: timestamp.map(|t| now.secs.saturating_sub(t)),
        matched_secret: None,
        hints: Vec::new(),
    };
    // With signatures to compare, the first secret's is computed now, and
    // tells on the way whether the payload is ASCII (as most events are).
    let first_signature = match (&parsed, keys.first()) {
        (Ok(h), Some(key)) if !h.v1.is_empty() => {
            Some(key.signature_and_ascii(h.timestamp, payload))
        }
        _ => None,
    };
    let ascii = match &first_signature {
        Some((_, ascii)) => *ascii,
        None => payload.is_ascii(),
    };
    if !ascii && std::str::from_utf8(payload).is_err() {
        return not_utf8(verdict, payload, parsed.as_ref().ok(), keys);
    }
    if payload.is_empty() {
        let detail = "the payload is empty; stripe-node rejects an empty body";
        return verdict.rejected(Reason::EmptyPayload, detail.into());
    }
    let h = match parsed {
        Ok(h) => h,
        Err(e @ HeaderError::Empty) => {
            return verdict.rejected(Reason::NoSignatures, e.to_string());
        }
        Err(e) => return verdict.rejected(Reason::MalformedHeader, e.to_string()),
    };
    if h.v1.is_empty() {
        return no_v1(verdict, payload, &h, secrets);
    }
    let matched = keys
        .iter()
        .enumerate()
        .position(|(i, k)| match &first_signature {
            Some((expected, _)) if i == 0 => matches_header(&h, expected),
            _ => check_keyed(payload, &h, k),
        });
    match matched {
        Some(i) => judge_age(verdict, i, h.timestamp, now, tolerance),
        None => {
            let mut verdict = verdict;
            verdict.reason = Reason::SignatureMismatch;
            diagnose_mismatch(payload, header, &h, secrets, now, &mut verdict.hints);
            verdict
        }
    }
}

impl Verdict {
    /// This verdict, invalid for `reason` with `detail`.
    fn rejected(mut self, reason: Reason, detail: String) -> Verdict {
        self.reason = reason;
        self.detail = Some(detail);
        self
    }
}

/// The payload is not UTF-8, which the SDKs reject before any signature;
/// a hint says whether the signature would have matched these bytes.
fn not_utf8(verdict: Verdict, payload: &[u8], h: Option<&Header>, keys: &[SigningKey]) -> Verdict {
    let detail = "the payload is not valid UTF-8; the official SDKs reject it";
    let mut verdict = verdict.rejected(Reason::PayloadNotUtf8, detail.into());
    if let Some(h) = h
        && let Some(i) = keys.iter().position(|k| check_keyed(payload, h, k))
    {
        verdict.hints.push(Hint {
            code: HintCode::SignedBytesNotUtf8,
            message: format!(
                "the signature matches these exact bytes with secret #{}, but they are not UTF-8: \
                 the sender signed bytes no Stripe SDK accepts",
                i + 1
            ),
        });
    }
    verdict
}

/// A payload that starts with a UTF-8 byte-order mark, which stripe-node
/// strips and stripe-python keeps: refused whatever the signature, always
/// with the `payload_bom` hint. A signature over the exact bytes (what
/// stripe-python checks) is reason `payload_bom`; other failures keep
/// their reason.
fn refuse_bom(mut verdict: Verdict) -> Verdict {
    if verdict.hints.iter().any(|h| h.code == HintCode::PayloadBom) {
        return verdict; // matched without the BOM (diagnose_payload said so)
    }
    let message = match verdict.matched_secret {
        Some(i) => format!(
            "the signature matches these exact bytes with secret #{}, the UTF-8 byte-order \
             mark at the start included: {BOM_DISAGREEMENT}",
            i + 1
        ),
        None => format!("the payload starts with a UTF-8 byte-order mark: {BOM_DISAGREEMENT}"),
    };
    if verdict.valid {
        verdict.valid = false;
        verdict.reason = Reason::PayloadBom;
        verdict.detail =
            Some("the payload's first bytes are EF BB BF, a UTF-8 byte-order mark".into());
    }
    verdict.hints.push(Hint {
        code: HintCode::PayloadBom,
        message,
    });
    verdict
}

/// The header has no `v1=` signature: v0-only senders and whitespace
/// around the entries are the usual causes.
fn no_v1(verdict: Verdict, payload: &[u8], h: &Header, secrets: &[Secret]) -> Verdict {
    let detail = "the header has no `v1=` signature";
    let mut verdict = verdict.rejected(Reason::NoSignatures, detail.into());
    if h.v0_count > 0 {
        verdict.hints.push(Hint {
            code: HintCode::V0Only,
            message: "the header carries only v0 signatures, which Stripe's SDKs ignore; \
                      sign with v1 (HMAC-SHA256 of \"<t>.<payload>\")"
                .into(),
        });
    }
    diagnose_header_whitespace(payload, h, secrets, &mut verdict.hints);
    verdict
}

/// Secret #`i + 1` signed the payload at `t`: valid unless the timestamp is
/// older than the tolerance (0: no limit) where either SDK would say so.
/// stripe-node rejects when `floor(now) - t > tolerance`; stripe-python when
/// `t < time.time() - tolerance`, on its sub-second clock, which is stricter
/// by the fraction: a timestamp exactly `tolerance` seconds old passes only
/// at the whole second.
fn judge_age(mut verdict: Verdict, i: usize, t: i64, now: UnixTime, tolerance: u64) -> Verdict {
    verdict.matched_secret = Some(i);
    let age = now.secs.saturating_sub(t);
    let tol = i64::try_from(tolerance).unwrap_or(i64::MAX);
    let past_by = match tolerance {
        0 => None,
        _ if age > tol => Some(age_words(age - tol)),
        // Exactly `tolerance` old by the second, and stripe-python's clock past it.
        _ if age == tol && now.nanos > 0 => Some("a fraction of a second".to_owned()),
        _ => None,
    };
    if let Some(past_by) = past_by {
        verdict.reason = Reason::TimestampOutOfTolerance;
        verdict.hints.push(Hint {
            code: HintCode::ExpiredButSignatureValid,
            message: format!(
                "the signature is valid (secret #{}), but the timestamp is {} old, \
                 {past_by} past the tolerance of {tolerance} s; to check the signature alone \
                 use --tolerance 0, or --now to judge at delivery time",
                i + 1,
                age_words(age),
            ),
        });
    } else {
        verdict.valid = true;
        verdict.reason = Reason::Ok;
    }
    verdict
}

fn diagnose_header_whitespace(
    payload: &[u8],
    h: &Header<'_>,
    secrets: &[Secret],
    hints: &mut Vec<Hint>,
) {
    if h.spaced_v1.is_empty() {
        return;
    }
    let hit = secrets.iter().any(|s| {
        let expected = compute_signature(s.expose().as_bytes(), h.timestamp, payload);
        matches_any(&expected, &h.spaced_v1)
    });
    if hit {
        hints.push(Hint {
            code: HintCode::HeaderWhitespace,
            message: "a ` v1=` entry has a space before its key, so Stripe's SDKs ignore it; \
                      without the space it matches: the header was re-joined with \", \""
                .into(),
        });
    }
}

/// Does the header match once a trailing newline (with any spaces and tabs
/// around it) is removed? Both SDKs keep it in the last entry, so a `v1`
/// value read from a file or `.env` line with its line ending never matches.
fn diagnose_header_trailing_newline(
    payload: &[u8],
    header: &str,
    secrets: &[Secret],
    hints: &mut Vec<Hint>,
) {
    let trimmed = header.trim_end_matches(['\r', '\n', ' ', '\t']);
    if !header[trimmed.len()..].contains(['\r', '\n']) {
        return;
    }
    let Ok(h) = parse_header(trimmed) else {
        return;
    };
    if secrets
        .iter()
        .any(|s| check(payload, &h, s.expose().as_bytes()))
    {
        hints.push(Hint {
            code: HintCode::HeaderTrailingNewline,
            message: "the signature matches once the trailing newline is removed from the \
                      Stripe-Signature header: it was read with its line ending (a file, a \
                      .env line, `echo`), and Stripe's SDKs compare the v1 value byte for byte"
                .into(),
        });
    }
}

/// Re-run the check on plausible corruptions and report those that match.
fn diagnose_mismatch(
    payload: &[u8],
    header: &str,
    h: &Header<'_>,
    secrets: &[Secret],
    now: UnixTime,
    hints: &mut Vec<Hint>,
) {
    diagnose_payload(payload, h, secrets, hints);
    diagnose_secrets(payload, h, secrets, hints);
    diagnose_uppercase_hex(payload, h, secrets, hints);
    diagnose_header_whitespace(payload, h, secrets, hints);
    diagnose_header_trailing_newline(payload, header, secrets, hints);
    if h.timestamp > now.secs {
        hints.push(Hint {
            code: HintCode::FutureTimestamp,
            message: format!(
                "the timestamp is {} in the future: the signer's clock is off, or the header \
                 belongs to another delivery",
                age_words(h.timestamp.saturating_sub(now.secs))
            ),
        });
    }
}

/// Payload corruptions: a trailing newline, converted line endings, a
/// byte-order mark, and (only when none of those explains it) JSON that was
/// parsed and serialized again.
fn diagnose_payload(payload: &[u8], h: &Header<'_>, secrets: &[Secret], hints: &mut Vec<Hint>) {
    let any_secret = |p: &[u8]| secrets.iter().any(|s| check(p, h, s.expose().as_bytes()));
    let explained_before = hints.len();
    let mut trimmed = payload;
    while let Some(rest) = trimmed.strip_suffix(b"\n") {
        trimmed = rest.strip_suffix(b"\r").unwrap_or(rest);
    }
    if trimmed.len() != payload.len() && any_secret(trimmed) {
        hints.push(Hint {
            code: HintCode::PayloadTrailingNewline,
            message: "the signature matches once the trailing newline is removed: an editor or \
                      `echo` added it; verify the exact bytes received"
                .into(),
        });
    }
    if payload.windows(2).any(|w| w == b"\r\n") {
        let lf: Vec<u8> = String::from_utf8_lossy(payload)
            .replace("\r\n", "\n")
            .into_bytes();
        if any_secret(&lf) {
            hints.push(Hint {
                code: HintCode::PayloadLineEndings,
                message: "the signature matches once CRLF line endings become LF: the file was \
                          converted (git autocrlf, a Windows editor)"
                    .into(),
            });
        }
    } else if payload.contains(&b'\n') {
        let crlf: Vec<u8> = String::from_utf8_lossy(payload)
            .replace('\n', "\r\n")
            .into_bytes();
        if any_secret(&crlf) {
            hints.push(Hint {
                code: HintCode::PayloadLineEndings,
                message: "the signature matches once LF line endings become CRLF: the file was \
                          converted after it was received"
                    .into(),
            });
        }
    }
    if let Some(rest) = payload.strip_prefix(UTF8_BOM)
        && any_secret(rest)
    {
        hints.push(Hint {
            code: HintCode::PayloadBom,
            message: format!(
                "the signature matches once the UTF-8 byte-order mark at the start is \
                 removed: {BOM_DISAGREEMENT}"
            ),
        });
    }
    // Only when no simpler byte-level cause explains the mismatch.
    let payload_explained = hints.len() > explained_before;
    if !payload_explained && let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload) {
        let forms = [
            serde_json::to_vec(&value).ok(),
            serde_json::to_vec_pretty(&value).ok(),
        ];
        if forms
            .iter()
            .flatten()
            .any(|f| f.as_slice() != payload && any_secret(f))
        {
            hints.push(Hint {
                code: HintCode::PayloadReformatted,
                message: "the signature matches the same JSON serialized differently: the body \
                          was parsed and re-serialized (e.g. JSON.stringify(req.body)) before \
                          verification; verify the raw request body"
                    .into(),
            });
        }
    }
}

/// Secret mistakes: an API key given, surrounding whitespace, no `whsec_`.
fn diagnose_secrets(payload: &[u8], h: &Header<'_>, secrets: &[Secret], hints: &mut Vec<Hint>) {
    for (i, s) in secrets.iter().enumerate() {
        let text = s.expose();
        let n = i + 1;
        let kind = api_key_prefix(text);
        if let Some(prefix) = kind {
            hints.push(Hint {
                code: HintCode::NotAWebhookSecret,
                message: format!(
                    "secret #{n} is an API key ({prefix}…), not a webhook signing secret; use the \
                     endpoint's whsec_… secret (Dashboard > Webhooks, or `stripe listen`)"
                ),
            });
        }
        let trimmed = text.trim();
        if trimmed != text && check(payload, h, trimmed.as_bytes()) {
            hints.push(Hint {
                code: HintCode::SecretWhitespace,
                message: format!(
                    "secret #{n} has surrounding whitespace (a newline from a file or .env?); \
                     without it the signature matches"
                ),
            });
        }
        if !trimmed.starts_with("whsec_") && kind.is_none() {
            let prefixed = format!("whsec_{trimmed}");
            if check(payload, h, prefixed.as_bytes()) {
                hints.push(Hint {
                    code: HintCode::SecretMissingPrefix,
                    message: format!(
                        "secret #{n} lacks its whsec_ prefix; the whole string, prefix included, \
                         is the HMAC key"
                    ),
                });
            }
        }
    }
}

/// A `v1` value that matches only when case is ignored.
fn diagnose_uppercase_hex(
    payload: &[u8],
    h: &Header<'_>,
    secrets: &[Secret],
    hints: &mut Vec<Hint>,
) {
    let upper_hit = secrets.iter().any(|s| {
        let expected = compute_signature(s.expose().as_bytes(), h.timestamp, payload);
        h.v1.iter()
            .any(|v| v.as_bytes() != expected && v.as_bytes().eq_ignore_ascii_case(&expected))
    });
    if upper_hit {
        hints.push(Hint {
            code: HintCode::UppercaseHex,
            message: "a v1 signature matches only when case is ignored: Stripe signatures are \
                      lowercase hex and the SDKs compare them exactly"
                .into(),
        });
    }
}

/// An age in words (`5 s`, `2 min`, `8 months`).
fn age_words(seconds: i64) -> String {
    crate::output::fmt::age(u64::try_from(seconds).unwrap_or(0))
}

#[cfg(test)]
mod tests;
