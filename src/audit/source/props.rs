//! Any bytes, in any format a source may be read as, end in records,
//! problems or an error: never a panic, never a record without a user
//! (STYLE.md habit 8: untrusted text gets property tests).

use proptest::prelude::*;

use super::*;

fn spec(path: &Path, format: Option<Format>) -> Spec {
    Spec {
        source: Source::File(path.to_owned()),
        format,
        table: None,
        fields: FieldMap::new("clerkUserId", &[], &[]).unwrap(),
    }
}

/// Read `bytes` as `name` (its extension picks the format unless `format`
/// does); the records' users are returned.
fn read_as(name: &str, bytes: &[u8], format: Option<Format>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let mut users = Vec::new();
    let mut no_stdin = || -> anyhow::Result<Box<dyn io::Read>> { panic!("no stdin here") };
    let read = read_with(&spec(&path, format), &mut no_stdin, &mut |item| {
        if let Item::Record(r, _) = item {
            users.push(r.user);
        }
        Ok(())
    });
    // An error is an answer (exit 2); only a panic would fail the test.
    let _ = read;
    users
}

/// Text shaped like the sources: JSON and CSV punctuation, field names,
/// values of every type, stray bytes.
fn near_source() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\n".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("\"userId\"".to_owned()),
        Just("\"user_id\"".to_owned()),
        Just("user_id,status,current_period_end\n".to_owned()),
        Just("\"status\"".to_owned()),
        Just("\"stripe:user:u1\"".to_owned()),
        Just("\"stripe:customer:cus_1\"".to_owned()),
        Just("\"currentPeriodEnd\"".to_owned()),
        Just("\"paymentMethod\"".to_owned()),
        Just("\"key\"".to_owned()),
        Just("\"value\"".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("1767225600000".to_owned()),
        Just("-1e400".to_owned()),
        Just("\"2026-01-05 10:00:00+00\"".to_owned()),
        Just("\"u1\"".to_owned()),
        Just("\u{feff}".to_owned()),
        "[a-z0-9_]{0,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_in_any_format_read_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        for (name, format) in [
            ("x.json", None),
            ("x.ndjson", None),
            ("x.csv", None),
            ("x", None),
            ("x", Some(Format::Json)),
            ("x", Some(Format::Ndjson)),
            ("x", Some(Format::Csv)),
        ] {
            for user in read_as(name, &bytes, format) {
                prop_assert!(!user.is_empty());
            }
        }
    }

    #[test]
    fn text_shaped_like_a_source_reads_without_a_panic(bytes in near_source()) {
        for name in ["x.json", "x.ndjson", "x.csv", "x"] {
            for user in read_as(name, &bytes, None) {
                prop_assert!(!user.is_empty());
            }
        }
    }
}
