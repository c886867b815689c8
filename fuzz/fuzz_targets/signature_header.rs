//! Fuzz the `Stripe-Signature` header parser.
//!
//! Input: arbitrary bytes; non-UTF-8 inputs are skipped (the parser takes `&str`).
//! Checks, besides "never panics, never hangs":
//! - an accepted header has a `t` entry, a timestamp node prints back exactly and not -1,
//!   no empty `v1=` value (stripe-node throws on one, stripe-python skips it), and `v1` values that are slices of the
//!   input free of `,` and `=`;
//! - the canonical form `t=<ts>,v1=<v>...` of an accepted header parses back
//!   to the same timestamp and signatures;
//! - an extra `t=<agreed number>` before or after, or an ignored entry
//!   (`v0=`, `x=`) after, does not change the reading;
//! - `t=<text>` for ASCII text is accepted exactly when independent models of
//!   stripe-python's `int()` and stripe-node's `parseInt(_, 10)` read the same
//!   number (not -1), and yields that number;
//! - the same holds after `strip_header_name` (the `Stripe-Signature:` prefix
//!   remover used on pasted headers), which must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stripe_sync::signature::{HeaderError, parse_header, strip_header_name};

/// node reads integers exactly up to 2^53.
const SAFE_BOUND: i64 = 1 << 53;

/// Node signs `${Number(t)}`: equal to Python's exact digits up to 2^53,
/// and beyond only where the double's shortest digits are the integer's.
fn node_prints_exactly(t: i64) -> bool {
    (-SAFE_BOUND..=SAFE_BOUND).contains(&t) || format!("{}", t as f64) == t.to_string()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_header(text);
    let stripped = strip_header_name(text);
    assert!(is_within(text, stripped), "strip_header_name returned a foreign slice");
    check_header(stripped);
    check_timestamp_grammar(text);
});

/// Is `inner` a sub-slice of `outer` (by address)?
fn is_within(outer: &str, inner: &str) -> bool {
    let o = outer.as_bytes().as_ptr_range();
    let i = inner.as_bytes().as_ptr_range();
    inner.is_empty() || (o.start <= i.start && i.end <= o.end)
}

fn check_header(header: &str) {
    if !header.is_empty() {
        let base = parse_header(header);
        for suffix in [",", ",v0=00", ",x=y", ",v2=ab"] {
            let ext = format!("{header}{suffix}");
            let mut want = base.clone();
            if let (Ok(h), ",v0=00") = (&mut want, suffix) {
                h.v0_count += 1;
            }
            assert_eq!(
                parse_header(&ext),
                want,
                "appending {suffix:?} changed the reading of {header:?}"
            );
        }
    }
    match parse_header(header) {
        Ok(h) => {
            assert!(!header.is_empty());
            assert!(
                node_prints_exactly(h.timestamp) && h.timestamp != -1,
                "accepted timestamp {} outside the range both SDKs read alike",
                h.timestamp
            );
            let t_entries = header
                .split(',')
                .filter(|e| e.split_once('=').map(|(k, _)| k) == Some("t"))
                .count();
            assert!(t_entries >= 1, "accepted a header without a t= entry");
            let v1_entries = header
                .split(',')
                .filter(|e| e.split_once('=').map(|(k, _)| k) == Some("v1"))
                .count();
            assert_eq!(h.v1.len(), v1_entries);
            // stripe-node throws on an empty v1 value; python skips it: they
            // disagree, so such a header must be refused (fixed in b108c26).
            assert!(h.v1.iter().all(|v| !v.is_empty()), "accepted an empty v1= entry");
            for v in h.v1.iter().chain(&h.spaced_v1) {
                assert!(is_within(header, v), "a signature is not a slice of the header");
                assert!(!v.contains(',') && !v.contains('='), "signature {v:?} spans entries");
            }
            for v in &h.spaced_v1 {
                assert_eq!(*v, v.trim());
            }
            // Canonical re-rendering parses back to the same header.
            let mut canon = format!("t={}", h.timestamp);
            for v in &h.v1 {
                canon.push_str(",v1=");
                canon.push_str(v);
            }
            let again = parse_header(&canon)
                .unwrap_or_else(|e| panic!("canonical form {canon:?} rejected: {e}"));
            assert_eq!(again.timestamp, h.timestamp);
            assert_eq!(again.v1, h.v1);
            assert_eq!(again.v0_count, 0);
            // Python reads the first t, node the last: an extra t= with the
            // agreed number, before or after, changes nothing.
            for extended in [format!("t={},{header}", h.timestamp), format!("{header},t={}", h.timestamp)] {
                let e = parse_header(&extended)
                    .unwrap_or_else(|e| panic!("{extended:?} rejected ({e}) though {header:?} reads {}", h.timestamp));
                assert_eq!(e.timestamp, h.timestamp, "{extended:?}");
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            if header.is_empty() {
                assert_eq!(e, HeaderError::Empty);
            } else {
                assert_ne!(e, HeaderError::Empty);
            }
        }
    }
}

const ASCII_WS: &[char] = &[' ', '\t', '\n', '\r', '\u{b}', '\u{c}'];

/// stripe-python's reading, `int(text)`, for ASCII text: surrounding
/// whitespace, an optional sign, digits with single `_` between them (PEP 515).
fn python_int_ascii(raw: &str) -> Option<i128> {
    let s = raw.trim_matches(ASCII_WS);
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let groups: Vec<&str> = body.split('_').collect();
    if groups.iter().any(|g| g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let digits: String = groups.concat();
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return Some(if neg { -(1i128 << 100) } else { 1i128 << 100 }); // "huge", exact value irrelevant
    }
    let v: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    Some(if neg { -v } else { v })
}

/// stripe-node's reading, `parseInt(text, 10)`, for ASCII text: leading
/// whitespace, an optional sign, the longest run of digits. `Err(())` when
/// node's double would not print the integer back (or it is beyond i64).
fn node_parse_int_ascii(raw: &str) -> Result<Option<i128>, ()> {
    let s = raw.trim_start_matches(ASCII_WS);
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let run = body.bytes().take_while(u8::is_ascii_digit).count();
    if run == 0 {
        return Ok(None); // NaN
    }
    let digits = body[..run].trim_start_matches('0');
    if digits.len() > 21 {
        return Err(());
    }
    let v: i128 = if digits.is_empty() { 0 } else { digits.parse().unwrap() };
    let v = if neg { -v } else { v };
    // Node signs `${double}`: the same digits only where the double's
    // shortest form is the integer itself. Beyond i64 the parser refuses
    // (a documented limit), so the model stops tracking there too.
    if i64::try_from(v).is_err() || format!("{}", v as f64) != v.to_string() {
        return Err(());
    }
    Ok(Some(v))
}

/// `t=<raw>` alone (ASCII only): accepted exactly when python and node read
/// the same number and it is not -1, and then with that number.
fn check_timestamp_grammar(text: &str) {
    let raw: String = text.chars().filter(|c| *c != ',' && *c != '=').collect();
    let header = format!("t={raw}");
    let got = parse_header(&header).map(|h| h.timestamp);
    if !raw.is_ascii() {
        return;
    }
    let py = python_int_ascii(&raw);
    let node = node_parse_int_ascii(&raw);
    match (&got, py, node) {
        (Ok(g), Some(p), _) if i128::from(*g) == p => {
            assert!(matches!(node, Ok(Some(n)) if n == p), "t={raw:?}: accepted {g}, node reads {node:?}");
        }
        (Ok(g), ..) => panic!("t={raw:?}: accepted {g}, python reads {py:?}, node {node:?}"),
        (Err(_), Some(p), Ok(Some(n))) if p == n && p != -1 => {
            panic!("t={raw:?}: both SDKs read {p}, the parser says {got:?}")
        }
        (Err(HeaderError::Empty | HeaderError::MissingTimestamp), ..) => {
            panic!("t={raw:?}: {got:?}")
        }
        (Err(_), ..) => {}
    }
}
