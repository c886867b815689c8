//! Order, duplicates and run boundaries never change the outcome.

use std::fs;

use proptest::prelude::*;

use crate::common::tempdir;
use crate::harness::Test;
use crate::replay::{fixture_events, mapping};

/// The rejected checkout of the fixtures: its file exits 1 wherever it goes.
const REJECTED: &str = "evt_1djGUORkT3sQ8vLmJhFak61D";

/// `replay FILE` (holding `text`) in `dir`: status 1 when the rejected
/// checkout is in it, else 0; an empty file is 0 events, never status 2.
fn replay(dir: &std::path::Path, file: &str, text: &str) {
    Test::in_dir(dir)
        .args(["replay", file])
        .status(i32::from(text.contains(REJECTED)))
        .stdout_has(" synced (")
        .stderr_has(" synced (")
        .stderr_lacks("error")
        .run();
}

fn baseline(events: &[String]) -> serde_json::Value {
    let dir = tempdir();
    fs::write(dir.path().join("all.ndjson"), events.join("\n")).unwrap();
    replay(dir.path(), "all.ndjson", &events.join("\n"));
    mapping(dir.path(), "stripe-sync.db")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn permutations_duplicates_and_splits_give_the_same_mapping(
        seed in any::<u64>(),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        split in any::<prop::sample::Index>(),
    ) {
        let events = fixture_events();
        let expected = baseline(&events);
        let mut shuffled = events.clone();
        for d in &dups {
            shuffled.push(events[d.index(events.len())].clone());
        }
        let mut rng = seed;
        for i in (1..shuffled.len()).rev() {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            shuffled.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let dir = tempdir();
        let cut = split.index(shuffled.len() + 1);
        fs::write(dir.path().join("one.ndjson"), shuffled[..cut].join("\n")).unwrap();
        fs::write(dir.path().join("two.ndjson"), shuffled[cut..].join("\n")).unwrap();
        for (f, part) in [("one.ndjson", &shuffled[..cut]), ("two.ndjson", &shuffled[cut..])] {
            replay(dir.path(), f, &part.join("\n"));
        }
        prop_assert_eq!(mapping(dir.path(), "stripe-sync.db"), expected);
    }
}
