//! Fuzz the `Stripe-Signature` header parser.
//!
//! Input: arbitrary bytes; non-UTF-8 inputs are skipped (the parser takes `&str`).
//! Checks, besides "never panics, never hangs":
//! - an accepted header has exactly one `t` entry, a timestamp within node's
//!   safe-integer range and not -1, and `v1` values that are slices of the
//!   input free of `,` and `=`;
//! - the canonical form `t=<ts>,v1=<v>...` of an accepted header parses back
//!   to the same timestamp and signatures;
//! - the timestamp grammar agrees with an independent reference model of
//!   "what node's `parseInt` and python's `int` both read the same way";
//! - the same holds after `strip_header_name` (the `Stripe-Signature:` prefix
//!   remover used on pasted headers), which must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stripe_sync::signature::{HeaderError, parse_header, strip_header_name};

const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

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
    match parse_header(header) {
        Ok(h) => {
            assert!(!header.is_empty());
            assert!(
                (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&h.timestamp) && h.timestamp != -1,
                "accepted timestamp {} outside the range both SDKs read alike",
                h.timestamp
            );
            let t_entries = header
                .split(',')
                .filter(|e| e.split_once('=').map(|(k, _)| k) == Some("t"))
                .count();
            assert_eq!(t_entries, 1, "accepted a header without exactly one t= entry");
            let v1_entries = header
                .split(',')
                .filter(|e| e.split_once('=').map(|(k, _)| k) == Some("v1"))
                .count();
            assert_eq!(h.v1.len(), v1_entries);
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

/// Whitespace that both JavaScript's `parseInt` (WhiteSpace + LineTerminator)
/// and Python's `str.strip()`/`int()` skip; written out independently of the
/// crate's own table.
fn shared_ws(c: char) -> bool {
    let js = matches!(
        c,
        '\u{9}' | '\u{a}' | '\u{b}' | '\u{c}' | '\u{d}' | '\u{20}' | '\u{a0}' | '\u{1680}'
            | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}'
            | '\u{3000}' | '\u{feff}'
    );
    let py = c.is_whitespace() || matches!(c, '\u{1c}'..='\u{1f}');
    js && py
}

/// Reference reading of a `t=` value: `[ws] [+-] ascii-digits [ws]`, at most
/// 2^53-1 in magnitude, and not -1 (stripe-node's "missing").
fn reference_timestamp(raw: &str) -> Option<i64> {
    let s = raw.trim_matches(shared_ws);
    let (neg, digits) = if let Some(d) = s.strip_prefix('-') {
        (true, d)
    } else if let Some(d) = s.strip_prefix('+') {
        (false, d)
    } else {
        (false, s)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: u128 = 0;
    for b in digits.bytes() {
        value = value.saturating_mul(10).saturating_add(u128::from(b - b'0'));
    }
    if value > MAX_SAFE_INTEGER as u128 {
        return None;
    }
    let v = value as i64;
    let v = if neg { -v } else { v };
    (v != -1).then_some(v)
}

/// `t=<raw>` alone: the parser must agree with the reference model.
fn check_timestamp_grammar(text: &str) {
    let raw: String = text.chars().filter(|c| *c != ',' && *c != '=').collect();
    let header = format!("t={raw}");
    let got = parse_header(&header).map(|h| h.timestamp);
    let want = reference_timestamp(&raw);
    match (&got, want) {
        (Ok(g), Some(w)) => assert_eq!(*g, w, "t={raw:?}: parsed {g}, reference {w}"),
        (Err(HeaderError::BadTimestamp(_)), None) => {}
        _ => panic!("t={raw:?}: parser says {got:?}, reference says {want:?}"),
    }
}
