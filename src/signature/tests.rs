use super::*;
use proptest::prelude::*;

const SECRET: &str = "whsec_test_secret";
const PAYLOAD: &[u8] = br#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;
const T: i64 = 1_767_225_590;

fn secrets(list: &[&str]) -> Vec<Secret> {
    list.iter().map(|s| Secret::new(*s)).collect()
}

fn sig(secret: &str, t: i64, payload: &[u8]) -> String {
    String::from_utf8(compute_signature(secret.as_bytes(), t, payload).to_vec()).unwrap()
}

fn run(header: &str) -> Verdict {
    verify(PAYLOAD, header, &secrets(&[SECRET]), 300, T + 5)
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.hints.iter().map(|h| h.code.as_str()).collect()
}

#[test]
fn known_vector_matches_reference_hmac() {
    // python3: hmac.new(b"whsec_test_secret", b"1767225590." + PAYLOAD, hashlib.sha256).hexdigest()
    assert_eq!(
        sig(SECRET, T, PAYLOAD),
        "777ef45c837d050036e27e4de1d54cc149683e6e53f4a446ae680bb43cee1dfe"
    );
}

#[test]
fn valid_signature() {
    let v = run(&format!("t={T},v1={}", sig(SECRET, T, PAYLOAD)));
    assert!(v.valid);
    assert_eq!(v.reason, Reason::Ok);
    assert_eq!(v.timestamp, Some(T));
    assert_eq!(v.age_seconds, Some(5));
    assert_eq!(v.matched_secret, Some(0));
    assert!(v.hints.is_empty());
}

#[test]
fn later_v1_entry_matches() {
    let good = sig(SECRET, T, PAYLOAD);
    let v = run(&format!("t={T},v1={},v1={},v0=abc", "0".repeat(64), good));
    assert!(v.valid);
}

#[test]
fn v0_only_is_no_signatures_with_hint() {
    let v = run(&format!("t={T},v0={}", sig(SECRET, T, PAYLOAD)));
    assert_eq!(v.reason, Reason::NoSignatures);
    assert_eq!(codes(&v), ["v0_only"]);
}

#[test]
fn empty_header_is_no_signatures() {
    let v = run("");
    assert_eq!(v.reason, Reason::NoSignatures);
    assert_eq!(v.timestamp, None);
}

#[test]
fn timestamp_without_v1_is_no_signatures() {
    assert_eq!(run(&format!("t={T}")).reason, Reason::NoSignatures);
}

#[test]
fn accepted_header_forms_of_both_sdks() {
    let good = sig(SECRET, T, PAYLOAD);
    for header in [
        format!("t={T},v1={good},"),            // trailing comma
        format!("t=+{T},v1={good}"),            // explicit plus
        format!("t= {T},v1={good}"),            // space after '='
        format!("t={T} ,v1={good}"),            // trailing space in the value
        format!("t=000{T},v1={good}"),          // leading zeros: the number is signed
        format!("t={T},v1={good}=extra"),       // value cut at a second '='
        format!("t={T}=junk,v1={good}"),        // likewise for t
        format!("v1={good},t={T}"),             // any order
        format!("t={T},,v1={good},x=y,v2"),     // unknown and empty entries
        format!("t={T},t=+{T},v1={good}"),      // two t: both SDKs read the same number
        format!("t={T},t={T}abc,v1={good}"),    // python reads the first, node parseInt()s the last
        format!("t=\u{a0}{T}\u{85},v1={good}"), // whitespace each SDK skips
    ] {
        let v = run(&header);
        assert!(v.valid, "{header}: {v:?}");
    }
}

#[test]
fn rejected_header_forms() {
    let good = sig(SECRET, T, PAYLOAD);
    let upper = good.to_uppercase();
    let cases: &[(String, Reason)] = &[
        (format!("t={T},v1={upper}"), Reason::SignatureMismatch),
        (format!("t={T}, v1={good}"), Reason::NoSignatures),
        (format!("T={T},v1={good}"), Reason::MalformedHeader),
        (format!("v1={good}"), Reason::MalformedHeader),
        (format!("t=1,t={T},v1={good}"), Reason::MalformedHeader),
        (format!("t={T},t=1,v1={good}"), Reason::MalformedHeader),
        (format!("t={T}x,t={T},v1={good}"), Reason::MalformedHeader),
        (
            format!("t=\u{a0}{T}\u{1c},v1={good}"),
            Reason::MalformedHeader,
        ),
        (format!("t=\u{feff}{T},v1={good}"), Reason::MalformedHeader),
        (format!("t={T}abc,v1={good}"), Reason::MalformedHeader),
        (
            format!("t=1_767_225_590,v1={good}"),
            Reason::MalformedHeader,
        ),
        (format!("t=0x10,v1={good}"), Reason::MalformedHeader),
        (format!("t=,v1={good}"), Reason::MalformedHeader),
        (format!("t,v1={good}"), Reason::MalformedHeader),
        (format!("t={T},v1"), Reason::MalformedHeader),
        (format!("t=-1,v1={good}"), Reason::MalformedHeader),
        (
            format!("t=99999999999999999999,v1={good}"),
            Reason::MalformedHeader,
        ),
        (
            format!("t=9007199254740993,v1={good}"),
            Reason::MalformedHeader,
        ),
        (
            format!("t=\u{0663}\u{0664},v1={good}"),
            Reason::MalformedHeader,
        ),
    ];
    for (header, reason) in cases {
        let v = run(header);
        assert!(!v.valid, "{header}");
        assert_eq!(v.reason, *reason, "{header}");
    }
}

#[test]
fn empty_v1_entry_is_refused_like_stripe_node() {
    // Found by fuzzing against both SDKs: node throws on an empty v1 even
    // when a later one matches; python accepts. They disagree, so reject.
    let good = sig(SECRET, T, PAYLOAD);
    for header in [
        format!("t={T},v1=,v1={good}"),
        format!("t={T},v1={good},v1="),
        format!("t={T},v1="),
    ] {
        let v = run(&header);
        assert!(!v.valid, "{header}");
        assert_eq!(v.reason, Reason::MalformedHeader, "{header}");
    }
}

#[test]
fn non_ascii_v1_values_follow_both_sdks() {
    let good = sig(SECRET, T, PAYLOAD);
    let odd64 = format!("{}é", "a".repeat(63)); // 64 UTF-16 units, 65 bytes
    // python raises on a non-ASCII value it reaches before the match.
    let v = run(&format!("t={T},v1=é,v1={good}"));
    assert!(!v.valid);
    // Reached after the match, python never compares it; node's length check
    // skips a short one: both accept.
    assert!(run(&format!("t={T},v1={good},v1=é")).valid);
    // node's timingSafeEqual throws on a 64-unit non-ASCII value, anywhere.
    for header in [
        format!("t={T},v1={good},v1={odd64}"),
        format!("t={T},v1={odd64},v1={good}"),
    ] {
        let v = run(&header);
        assert_eq!(v.reason, Reason::MalformedHeader, "{header}");
    }
}

#[test]
fn timestamps_past_2_53_count_where_node_prints_them_exactly() {
    // 2^54 is a double node prints digit for digit; 2^53 + 1 is not.
    let t = 1i64 << 54;
    let header = format!("t={t},v1={}", sig(SECRET, t, PAYLOAD));
    assert!(verify(PAYLOAD, &header, &secrets(&[SECRET]), 0, T).valid);
    assert!(signable_timestamp(t));
    let t = (1i64 << 53) + 1;
    let header = format!("t={t},v1={}", sig(SECRET, t, PAYLOAD));
    assert_eq!(
        verify(PAYLOAD, &header, &secrets(&[SECRET]), 0, T).reason,
        Reason::MalformedHeader
    );
}

#[test]
fn signable_timestamps() {
    assert!(signable_timestamp(T));
    assert!(signable_timestamp(0));
    assert!(signable_timestamp(-5));
    assert!(signable_timestamp(1 << 53));
    assert!(signable_timestamp(1 << 54));
    assert!(!signable_timestamp(-1));
    assert!(!signable_timestamp((1 << 53) + 1));
    assert!(!signable_timestamp(i64::MIN));
}

#[test]
fn uppercase_hex_hint() {
    let upper = sig(SECRET, T, PAYLOAD).to_uppercase();
    assert_eq!(codes(&run(&format!("t={T},v1={upper}"))), ["uppercase_hex"]);
}

#[test]
fn spaced_v1_entry_hint() {
    let good = sig(SECRET, T, PAYLOAD);
    let v = run(&format!("t={T}, v1={good}"));
    assert_eq!(codes(&v), ["header_whitespace"]);
}

#[test]
fn signs_the_number_not_the_text() {
    // t=+00123 is read as 123 by both SDKs, which then sign "123.<payload>".
    let v = verify(
        PAYLOAD,
        &format!("t=+00123,v1={}", sig(SECRET, 123, PAYLOAD)),
        &secrets(&[SECRET]),
        0,
        T,
    );
    assert!(v.valid);
    let v = verify(
        PAYLOAD,
        &format!("t=-0,v1={}", sig(SECRET, 0, PAYLOAD)),
        &secrets(&[SECRET]),
        0,
        T,
    );
    assert!(v.valid);
}

#[test]
fn tolerance_boundaries() {
    let good = sig(SECRET, T, PAYLOAD);
    let header = format!("t={T},v1={good}");
    let s = secrets(&[SECRET]);
    assert!(
        verify(PAYLOAD, &header, &s, 300, T + 300).valid,
        "age == tolerance passes"
    );
    let late = verify(PAYLOAD, &header, &s, 300, T + 301);
    assert_eq!(late.reason, Reason::TimestampOutOfTolerance);
    assert_eq!(late.matched_secret, Some(0));
    assert_eq!(codes(&late), ["expired_but_signature_valid"]);
    assert!(late.hints[0].message.contains("5 min 1 s old"));
    assert!(late.hints[0].message.contains("1 s past"));
    assert!(
        verify(PAYLOAD, &header, &s, 0, T + 10_000_000).valid,
        "tolerance 0 disables"
    );
    let future = verify(PAYLOAD, &header, &s, 300, T - 10_000);
    assert!(future.valid, "future timestamps pass");
    assert_eq!(future.age_seconds, Some(-10_000));
}

/// stripe-node: `floor(now) - t > tolerance` rejects; stripe-python:
/// `t < time.time() - tolerance`, on the sub-second clock. Valid only where
/// neither rejects: exactly `tolerance` old passes at the whole second only.
#[test]
fn tolerance_boundary_on_a_sub_second_clock() {
    let header = format!("t={T},v1={}", sig(SECRET, T, PAYLOAD));
    let s = secrets(&[SECRET]);
    let at = |secs: i64, nanos: u32| verify_at(PAYLOAD, &header, &s, 300, UnixTime { secs, nanos });
    assert!(at(T + 300, 0).valid, "both SDKs accept at the whole second");
    for nanos in [1, 500_000_000, 999_999_999] {
        let late = at(T + 300, nanos);
        assert!(!late.valid, "{nanos} ns past: stripe-python rejects");
        assert_eq!(late.reason, Reason::TimestampOutOfTolerance);
        assert_eq!(
            late.age_seconds,
            Some(300),
            "the age stays in whole seconds"
        );
        assert_eq!(late.matched_secret, Some(0));
        assert_eq!(codes(&late), ["expired_but_signature_valid"]);
        assert_eq!(
            late.hints[0].message,
            "the signature is valid (secret #1), but the timestamp is 5 min old, a fraction of \
             a second past the tolerance of 300 s; to check the signature alone use \
             --tolerance 0, or --now to judge at delivery time"
        );
        assert!(
            at(T + 299, nanos).valid,
            "299 s and {nanos} ns old: both accept"
        );
    }
    let late = at(T + 301, 1);
    assert!(late.hints[0].message.contains("5 min 1 s old, 1 s past"));
    assert!(
        verify_at(
            PAYLOAD,
            &header,
            &s,
            0,
            UnixTime {
                secs: T + 300,
                nanos: 1
            }
        )
        .valid,
        "tolerance 0 disables"
    );
    assert!(at(T - 1, 999_999_999).valid, "future timestamps pass");
    // A whole-second `now` is the same as verify's.
    assert_eq!(at(T + 300, 0), verify(PAYLOAD, &header, &s, 300, T + 300));
    assert_eq!(at(T + 301, 0), verify(PAYLOAD, &header, &s, 300, T + 301));
}

#[test]
fn future_timestamp_hint_on_mismatch() {
    let header = format!("t={},v1={}", T + 600, "0".repeat(64));
    let v = verify(PAYLOAD, &header, &secrets(&[SECRET]), 300, T);
    assert_eq!(v.reason, Reason::SignatureMismatch);
    assert_eq!(codes(&v), ["future_timestamp"]);
    assert!(v.hints[0].message.contains("10 min in the future"));
}

#[test]
fn rotation_any_secret_matches() {
    let header = format!("t={T},v1={}", sig("whsec_new", T, PAYLOAD));
    let v = verify(
        PAYLOAD,
        &header,
        &secrets(&["whsec_old", "whsec_new"]),
        300,
        T,
    );
    assert!(v.valid);
    assert_eq!(v.matched_secret, Some(1));
    let v = verify(
        PAYLOAD,
        &header,
        &secrets(&["whsec_old", "whsec_older"]),
        300,
        T,
    );
    assert_eq!(v.reason, Reason::SignatureMismatch);
    assert_eq!(v.matched_secret, None);
}

#[test]
fn trailing_newline_hint() {
    let header = format!("t={T},v1={}", sig(SECRET, T, PAYLOAD));
    for suffix in ["\n", "\r\n", "\n\n"] {
        let mut body = PAYLOAD.to_vec();
        body.extend_from_slice(suffix.as_bytes());
        let v = verify(&body, &header, &secrets(&[SECRET]), 300, T);
        assert_eq!(v.reason, Reason::SignatureMismatch);
        assert_eq!(codes(&v), ["payload_trailing_newline"], "{suffix:?}");
    }
}

#[test]
fn line_ending_and_bom_hints() {
    let lf = b"{\n  \"id\": \"evt_1\"\n}";
    let crlf = b"{\r\n  \"id\": \"evt_1\"\r\n}";
    let signed_lf = format!("t={T},v1={}", sig(SECRET, T, lf));
    let v = verify(crlf, &signed_lf, &secrets(&[SECRET]), 300, T);
    assert!(codes(&v).contains(&"payload_line_endings"));
    let signed_crlf = format!("t={T},v1={}", sig(SECRET, T, crlf));
    let v = verify(lf, &signed_crlf, &secrets(&[SECRET]), 300, T);
    assert!(codes(&v).contains(&"payload_line_endings"));

    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(PAYLOAD);
    let header = format!("t={T},v1={}", sig(SECRET, T, PAYLOAD));
    let v = verify(&bom, &header, &secrets(&[SECRET]), 300, T);
    assert_eq!(v.reason, Reason::SignatureMismatch);
    assert_eq!(codes(&v), ["payload_bom"]);
    assert_eq!(
        v.hints[0].message,
        format!(
            "the signature matches once the UTF-8 byte-order mark at the start is removed: \
             {BOM_DISAGREEMENT}"
        )
    );
}

fn with_bom(payload: &[u8]) -> Vec<u8> {
    [UTF8_BOM, payload].concat()
}

/// stripe-node decodes the BOM away before the HMAC, stripe-python keeps it:
/// a signature over the exact bytes passes only stripe-python's check, so
/// the payload is refused (reason `payload_bom`), naming the disagreement.
#[test]
fn bom_payload_signed_as_is_is_refused() {
    let bom = with_bom(PAYLOAD);
    let header = format!("t={T},v1={}", sig(SECRET, T, &bom));
    let v = verify(
        &bom,
        &header,
        &secrets(&["whsec_other", SECRET]),
        300,
        T + 5,
    );
    assert!(!v.valid);
    assert_eq!(v.reason, Reason::PayloadBom);
    assert_eq!(v.reason.as_str(), "payload_bom");
    assert_eq!(v.matched_secret, Some(1));
    assert_eq!(v.timestamp, Some(T));
    assert_eq!(v.age_seconds, Some(5));
    assert_eq!(codes(&v), ["payload_bom"]);
    assert_eq!(
        v.hints[0].message,
        format!(
            "the signature matches these exact bytes with secret #2, the UTF-8 byte-order mark \
             at the start included: {BOM_DISAGREEMENT}"
        )
    );
    assert!(BOM_DISAGREEMENT.contains("stripe-node strips the mark"));
    assert!(BOM_DISAGREEMENT.contains("stripe-python does not"));
    assert!(BOM_DISAGREEMENT.contains("save the file without a BOM"));
    assert_eq!(
        v.detail.as_deref(),
        Some("the payload's first bytes are EF BB BF, a UTF-8 byte-order mark")
    );
}

#[test]
fn bom_payload_is_refused_whatever_the_signature() {
    let bom = with_bom(PAYLOAD);
    let s = secrets(&[SECRET]);
    let generic = format!("the payload starts with a UTF-8 byte-order mark: {BOM_DISAGREEMENT}");
    // Neither with nor without the mark: a mismatch, and the mark named.
    let wrong = format!("t={T},v1={}", sig("whsec_other", T, &bom));
    let v = verify(&bom, &wrong, &s, 300, T);
    assert_eq!(v.reason, Reason::SignatureMismatch);
    assert_eq!(codes(&v), ["payload_bom"]);
    assert_eq!(v.hints[0].message, generic);
    // Signed as is but too old: the age is the reason, the mark a hint too.
    let signed = format!("t={T},v1={}", sig(SECRET, T, &bom));
    let v = verify(&bom, &signed, &s, 300, T + 301);
    assert_eq!(v.reason, Reason::TimestampOutOfTolerance);
    assert_eq!(codes(&v), ["expired_but_signature_valid", "payload_bom"]);
    assert!(
        v.hints[1]
            .message
            .contains("matches these exact bytes with secret #1")
    );
    // A header that cannot be read, or carries no v1: those reasons, and the hint.
    for (header, reason) in [
        (
            format!("v1={}", sig(SECRET, T, &bom)),
            Reason::MalformedHeader,
        ),
        (
            format!("t={T},v0={}", sig(SECRET, T, &bom)),
            Reason::NoSignatures,
        ),
    ] {
        let v = verify(&bom, &header, &s, 300, T);
        assert_eq!(v.reason, reason, "{header}");
        assert_eq!(v.hints.last().map(|h| h.code), Some(HintCode::PayloadBom));
    }
    // Not UTF-8 after the mark: both SDKs refuse it anyway.
    let broken = with_bom(b"\xff");
    let v = verify(
        &broken,
        &format!("t={T},v1={}", sig(SECRET, T, &broken)),
        &s,
        300,
        T,
    );
    assert_eq!(v.reason, Reason::PayloadNotUtf8);
    assert_eq!(codes(&v), ["signed_bytes_not_utf8", "payload_bom"]);
    // The mark only counts at the start.
    let inner = [PAYLOAD, UTF8_BOM].concat();
    assert!(
        verify(
            &inner,
            &format!("t={T},v1={}", sig(SECRET, T, &inner)),
            &s,
            300,
            T
        )
        .valid
    );
    // A receiver holding a Verifier refuses it the same way.
    let verifier = Verifier::new(&s, 300);
    assert_eq!(
        verifier.verify(&bom, &signed, T),
        verify(&bom, &signed, &s, 300, T)
    );
    assert_eq!(verifier.verify(&bom, &signed, T).reason, Reason::PayloadBom);
}

#[test]
fn reformatted_json_hint() {
    let original = b"{\n  \"id\": \"evt_1\",\n  \"object\": \"event\"\n}";
    let compact = br#"{"id":"evt_1","object":"event"}"#;
    let header = format!("t={T},v1={}", sig(SECRET, T, original));
    let v = verify(compact, &header, &secrets(&[SECRET]), 300, T);
    assert_eq!(codes(&v), ["payload_reformatted"]);
}

#[test]
fn secret_hints() {
    let header = format!("t={T},v1={}", sig(SECRET, T, PAYLOAD));
    let v = verify(PAYLOAD, &header, &secrets(&["whsec_test_secret\n"]), 300, T);
    assert_eq!(codes(&v), ["secret_whitespace"]);
    let v = verify(PAYLOAD, &header, &secrets(&["test_secret"]), 300, T);
    assert_eq!(codes(&v), ["secret_missing_prefix"]);
    let v = verify(
        PAYLOAD,
        &header,
        &secrets(&["sk_test_abc", "rk_live_x"]),
        300,
        T,
    );
    assert_eq!(codes(&v), ["not_a_webhook_secret", "not_a_webhook_secret"]);
    assert!(!v.hints.iter().any(|h| h.message.contains("sk_test_abc")));
}

#[test]
fn non_utf8_payload_rejected() {
    let body = b"{\"id\":\"evt_\xff\"}";
    let header = format!("t={T},v1={}", sig(SECRET, T, body));
    let v = verify(body, &header, &secrets(&[SECRET]), 300, T);
    assert_eq!(v.reason, Reason::PayloadNotUtf8);
    assert!(!v.valid);
    assert_eq!(codes(&v), ["signed_bytes_not_utf8"]);
    let v = verify(body, "t=1,v1=00", &secrets(&[SECRET]), 300, T);
    assert_eq!(v.reason, Reason::PayloadNotUtf8);
    assert!(v.hints.is_empty());
}

#[test]
fn header_name_is_stripped() {
    assert_eq!(strip_header_name("Stripe-Signature: t=1,v1=a"), "t=1,v1=a");
    // A trailing line ending stays: the SDKs keep it in the last value.
    assert_eq!(
        strip_header_name("stripe-signature:t=1,v1=a\r\n"),
        "t=1,v1=a\r\n"
    );
    assert_eq!(strip_header_name("  t=1,v1=a \t"), "t=1,v1=a");
    assert_eq!(strip_header_name("t=1,v1=a\n "), "t=1,v1=a\n");
    assert_eq!(strip_header_name("Stripe-Sig"), "Stripe-Sig");
    assert_eq!(strip_header_name("Stripe-Signatur€"), "Stripe-Signatur€");
}

#[test]
fn sign_output_verifies() {
    let s = Secret::new(SECRET);
    let signed = sign(&s, T, PAYLOAD);
    assert_eq!(signed.header, format!("t={T},v1={}", signed.signature));
    assert_eq!(signed.signatures, std::slice::from_ref(&signed.signature));
    assert!(verify(PAYLOAD, &signed.header, &[s], 300, T).valid);
}

/// While a secret is rolled Stripe signs with each: one `v1` per secret,
/// the new one first, and either secret alone verifies the header.
#[test]
fn signing_with_several_secrets_gives_one_v1_each_in_order() {
    let s = secrets(&["whsec_new", "whsec_old"]);
    let signed = sign_all(&s, T, PAYLOAD);
    let (new, old) = (sig("whsec_new", T, PAYLOAD), sig("whsec_old", T, PAYLOAD));
    assert_eq!(signed.header, format!("t={T},v1={new},v1={old}"));
    assert_eq!(signed.timestamp, T);
    assert_eq!(signed.signature, new);
    assert_eq!(signed.signatures, [new, old]);
    for (i, one) in s.iter().enumerate() {
        let v = verify(PAYLOAD, &signed.header, std::slice::from_ref(one), 300, T);
        assert!(v.valid, "secret #{}", i + 1);
        assert_eq!(v.matched_secret, Some(0));
    }
    let v = verify(
        PAYLOAD,
        &signed.header,
        &secrets(&["whsec_other", "whsec_old"]),
        300,
        T,
    );
    assert_eq!(v.matched_secret, Some(1));
    assert!(!verify(PAYLOAD, &signed.header, &secrets(&["whsec_other"]), 300, T).valid);
    assert_eq!(
        parse_header(&signed.header).map(|h| h.v1.len()),
        Ok(2),
        "both read as v1 entries"
    );
    // One secret: exactly `sign`'s header.
    assert_eq!(sign_all(&s[..1], T, PAYLOAD), sign(&s[0], T, PAYLOAD));
    // No secret (callers refuse that first): a header without v1, no panic.
    let none = sign_all(&[], T, PAYLOAD);
    assert_eq!(
        (none.header.as_str(), none.signature.as_str()),
        ("t=1767225590", "")
    );
}

#[test]
fn garbage_headers_do_not_panic() {
    let commas = ",".repeat(10_000);
    for h in [
        commas.as_str(),
        "\x00\x1b[2J",
        "t=\u{202e}1",
        "=",
        "==,==",
        "t==",
        "v1==",
    ] {
        let v = run(h);
        assert!(!v.valid);
    }
}

proptest! {
    #[test]
    fn sign_then_verify(payload in ".+", secret in "whsec_[A-Za-z0-9]{1,40}", t in 0i64..4_000_000_000) {
        let s = Secret::new(secret);
        let header = sign(&s, t, payload.as_bytes()).header;
        let v = verify(payload.as_bytes(), &header, &[s], 0, t);
        // A leading U+FEFF is a byte-order mark, which the SDKs disagree on.
        prop_assert_eq!(v.valid, !payload.starts_with('\u{feff}'));
    }

    #[test]
    fn signed_with_several_verifies_with_each(
        payload in "[ -~]{1,200}",
        names in prop::collection::vec("whsec_[A-Za-z0-9]{1,20}", 1..4),
        t in 0i64..4_000_000_000,
    ) {
        let s = secrets(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let signed = sign_all(&s, t, payload.as_bytes());
        prop_assert_eq!(signed.signatures.len(), s.len());
        for one in &s {
            let v = verify(payload.as_bytes(), &signed.header, std::slice::from_ref(one), 0, t);
            prop_assert!(v.valid);
        }
    }

    #[test]
    fn any_payload_byte_flip_fails(payload in "[ -~]{1,200}", idx in any::<prop::sample::Index>(), bit in 0u8..7) {
        let s = Secret::new(SECRET);
        let header = sign(&s, T, payload.as_bytes()).header;
        let mut bytes = payload.into_bytes();
        let i = idx.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let v = verify(&bytes, &header, &[s], 0, T);
        prop_assert!(!v.valid);
    }

    #[test]
    fn any_signature_char_change_fails(payload in ".{1,100}", idx in 0usize..64, c in "[0-9a-f]") {
        let s = Secret::new(SECRET);
        let signed = sign(&s, T, payload.as_bytes());
        let mut chars: Vec<char> = signed.signature.chars().collect();
        let new = c.chars().next().unwrap();
        prop_assume!(chars[idx] != new);
        chars[idx] = new;
        let header = format!("t={T},v1={}", chars.into_iter().collect::<String>());
        prop_assert_eq!(verify(payload.as_bytes(), &header, &[s], 0, T).reason, Reason::SignatureMismatch);
    }

    #[test]
    fn parser_never_panics(header in any::<String>(), payload in any::<Vec<u8>>()) {
        let _ = parse_header(&header);
        let _ = verify(&payload, &header, &secrets(&[SECRET, "sk_test_x", " whsec_y "]), 300, T);
    }

    #[test]
    fn parser_never_panics_on_header_like_text(header in "[tv01=, +\\-0-9a-f\u{a0}\u{202e}]{0,80}") {
        let _ = verify(PAYLOAD, &header, &secrets(&[SECRET]), 300, T);
    }
}

#[test]
fn empty_payload_rejected_like_stripe_node() {
    let header = format!("t={T},v1={}", sig(SECRET, T, b""));
    let v = verify(b"", &header, &secrets(&[SECRET]), 300, T);
    assert!(!v.valid);
    assert_eq!(v.reason, Reason::EmptyPayload);
}

#[test]
fn header_trailing_newline_is_a_mismatch_with_a_rechecked_hint() {
    let good = format!("t={T},v1={}", sig(SECRET, T, PAYLOAD));
    for tail in ["\n", "\r\n", "\n\n", " \r\n\t"] {
        let v = run(&format!("{good}{tail}"));
        assert!(!v.valid, "{tail:?}");
        assert_eq!(v.reason, Reason::SignatureMismatch, "{tail:?}");
        assert_eq!(codes(&v), ["header_trailing_newline"], "{tail:?}");
    }
    // Both SDKs read these the same as without the newline: still valid.
    assert!(run(&format!("{good},\n")).valid);
    assert!(run(&format!("v1={},t={T}\n", sig(SECRET, T, PAYLOAD))).valid);
    // Only a real re-check gives the hint.
    let wrong = format!("t={T},v1={}\n", sig("whsec_other", T, PAYLOAD));
    assert!(codes(&run(&wrong)).is_empty());
    let spaced = format!("{good} ");
    assert_eq!(run(&spaced).reason, Reason::SignatureMismatch);
    assert!(codes(&run(&spaced)).is_empty(), "a space is not a newline");
}

#[test]
fn api_key_prefixes() {
    assert_eq!(api_key_prefix("sk_test_x"), Some("sk_"));
    assert_eq!(api_key_prefix("rk_live_x"), Some("rk_"));
    assert_eq!(api_key_prefix("pk_test_x"), Some("pk_"));
    assert_eq!(api_key_prefix("whsec_x"), None);
    assert_eq!(api_key_prefix(" sk_test_x"), None);
}

#[test]
fn thin_event_hint_names_both_sdk_methods() {
    let h = thin_event_hint();
    assert_eq!(h.code.as_str(), "thin_event");
    for needle in [
        "v2.core.event",
        "parseEventNotification",
        "parse_event_notification",
    ] {
        assert!(h.message.contains(needle), "{needle}");
    }
}

/// The header split the way the SDKs write it (`split(',')`, then the key up
/// to the first `=` and the value up to the next), to hold the one-pass
/// tokenizer to.
fn entries_by_split(header: &str) -> Vec<(&str, Option<&str>)> {
    header
        .split(',')
        .map(|item| match item.split_once('=') {
            Some((k, rest)) => (k, Some(rest.split('=').next().unwrap_or(""))),
            None => (item, None),
        })
        .collect()
}

/// node_parse_int's double check before the 2^53 shortcut: print both.
fn node_prints_back(value: i128) -> bool {
    value.unsigned_abs() < 10u128.pow(21) && format!("{}", value as f64) == value.to_string()
}

#[test]
fn entries_of_edge_headers() {
    for header in [
        "",
        ",",
        ",,",
        "=",
        "==",
        "t",
        "t=",
        "t==",
        "t=1,",
        ",t=1",
        "t=1=2,v1=a=b=c",
        "v1=,t=5",
        "a,b=c,=d,e=",
        "t=1,v1=é,v1=x",
        "ñ=ñ=ñ,ñ",
    ] {
        assert_eq!(
            entries(header).collect::<Vec<_>>(),
            entries_by_split(header),
            "{header:?}"
        );
    }
}

#[test]
fn find_either_at_every_offset() {
    // Matches in and across eight-byte words, before and after the tail.
    for len in 0..40 {
        for at in 0..len {
            let mut bytes = vec![b'x'; len];
            bytes[at] = b'=';
            assert_eq!(find_either(&bytes, b',', b'='), Some(at), "{len} {at}");
            bytes[len - 1] = b',';
            let first = if at < len - 1 { at } else { len - 1 };
            assert_eq!(find_either(&bytes, b',', b'='), Some(first), "{len} {at}");
        }
        assert_eq!(find_either(&vec![b'x'; len], b',', b'='), None);
    }
    // A byte one above the pattern (a borrow) is no match.
    assert_eq!(find_either(b"-,", b',', b','), Some(1));
    assert_eq!(
        find_either(b"\x01\x00\x01\x00\x01\x00\x01\x00,", b',', b','),
        Some(8)
    );
}

#[test]
fn decimal_prints_like_to_string() {
    for n in [
        0,
        1,
        -1,
        9,
        10,
        -10,
        99,
        100,
        T,
        i64::MAX,
        i64::MIN,
        i64::MIN + 1,
    ] {
        let mut buf = [0u8; 21];
        assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
    }
}

#[test]
fn hex_digits() {
    let digits: Vec<u8> = (0..16).map(hex_digit).collect();
    assert_eq!(digits, b"0123456789abcdef");
}

#[test]
fn constant_time_equality() {
    let expected = compute_signature(SECRET.as_bytes(), T, PAYLOAD);
    assert!(equal_in_constant_time(&expected, &expected));
    assert!(!equal_in_constant_time(&expected, &expected[..63]));
    assert!(!equal_in_constant_time(&expected, b""));
    for i in 0..64 {
        let mut other = expected;
        other[i] ^= 1;
        assert!(!equal_in_constant_time(&expected, &other), "{i}");
    }
}

#[test]
fn plain_timestamps_are_the_sdk_reading() {
    for text in [
        "0",
        "00",
        "5",
        "1767225590",
        "000000000000001",
        "999999999999999",
    ] {
        assert_eq!(
            plain_timestamp(text).map(Ok),
            Some(sdk_timestamp(text, text))
        );
    }
    // Longer, signed, spaced or empty texts take the full reading.
    for text in ["", "+1", "-1", " 1", "1 ", "1_0", "1000000000000000", "١"] {
        assert_eq!(plain_timestamp(text), None, "{text:?}");
    }
}

#[test]
fn signing_key_never_formats_the_secret() {
    let key = SigningKey::new(SECRET.as_bytes());
    assert_eq!(format!("{key:?}"), "(redacted)");
    let verifier = Verifier::new(&secrets(&[SECRET]), 300);
    assert!(!format!("{verifier:?}").contains("test_secret"));
}

#[test]
fn verifier_agrees_with_verify_on_every_case() {
    let good = sig(SECRET, T, PAYLOAD);
    let s = secrets(&["sk_test_x", " whsec_test_secret ", SECRET]);
    let verifier = Verifier::new(&s, 300);
    for header in [
        format!("t={T},v1={good}"),
        format!("t={T},v1={}", good.to_uppercase()),
        format!("t={T}, v1={good}"),
        format!("t={T},v0={good}"),
        format!("t={},v1={good}", T - 1000),
        format!("t=,v1={good}"),
        String::new(),
    ] {
        for payload in [PAYLOAD, b"", b"\xff\xfe", b"{\"id\": 1}\n"] {
            assert_eq!(
                verifier.verify(payload, &header, T + 5),
                verify(payload, &header, &s, 300, T + 5),
                "{header:?} {payload:?}"
            );
        }
    }
}

proptest! {
    #[test]
    fn entries_split_like_the_sdks(header in "[tv01=, a\u{e9}]{0,40}") {
        prop_assert_eq!(entries(&header).collect::<Vec<_>>(), entries_by_split(&header));
    }

    #[test]
    fn entries_split_any_text_like_the_sdks(header in any::<String>()) {
        prop_assert_eq!(entries(&header).collect::<Vec<_>>(), entries_by_split(&header));
    }

    #[test]
    fn find_either_is_the_first_match(
        bytes in any::<Vec<u8>>(),
        a in any::<u8>(),
        b in any::<u8>(),
    ) {
        prop_assert_eq!(find_either(&bytes, a, b), bytes.iter().position(|&c| c == a || c == b));
    }

    #[test]
    fn decimal_of_any_number(n in any::<i64>()) {
        let mut buf = [0u8; 21];
        let text = n.to_string();
        prop_assert_eq!(decimal(n, &mut buf), text.as_bytes());
    }

    #[test]
    fn plain_digits_read_as_the_sdks_read_them(text in "[0-9]{1,22}") {
        if let Some(t) = plain_timestamp(&text) {
            prop_assert_eq!(Ok(t), sdk_timestamp(&text, &text));
        }
        prop_assert_eq!(agreed_timestamp(&text, &text), sdk_timestamp(&text, &text));
    }

    #[test]
    fn node_reading_near_2_53_prints_back(offset in -5_000i128..5_000, shift in 50u32..72) {
        let value = (1i128 << shift) + offset;
        let text = value.to_string();
        prop_assert_eq!(node_parse_int(&text), node_prints_back(value).then_some(value));
    }

    #[test]
    fn verifier_agrees_with_verify(
        header in "[tv01=, +\\-0-9a-f]{0,90}",
        payload in any::<Vec<u8>>(),
        now in 0i64..4_000_000_000,
        nanos in prop_oneof![Just(0u32), 1u32..1_000_000_000],
    ) {
        let s = secrets(&[SECRET, "whsec_other"]);
        prop_assert_eq!(
            Verifier::new(&s, 300).verify(&payload, &header, now),
            verify(&payload, &header, &s, 300, now)
        );
        let at = UnixTime { secs: now, nanos };
        prop_assert_eq!(
            Verifier::new(&s, 300).verify_at(&payload, &header, at),
            verify_at(&payload, &header, &s, 300, at)
        );
    }

    #[test]
    fn signed_headers_verify_with_a_verifier(payload in ".+", t in 0i64..4_000_000_000) {
        let s = secrets(&["whsec_old", SECRET]);
        let header = sign(&s[1], t, payload.as_bytes()).header;
        let v = Verifier::new(&s, 0).verify(payload.as_bytes(), &header, t);
        prop_assert_eq!(v.valid, !payload.starts_with('\u{feff}'));
        prop_assert_eq!(v.matched_secret, Some(1));
    }
}
