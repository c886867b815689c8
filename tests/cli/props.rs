//! Order, duplicates and run boundaries never change the outcome.

use std::fs;

use proptest::prelude::*;

use crate::common::{cmd_in, run, tempdir};
use crate::replay::{fixture_events, mapping};

fn baseline(events: &[String]) -> serde_json::Value {
    let dir = tempdir();
    fs::write(dir.path().join("all.ndjson"), events.join("\n")).unwrap();
    run(cmd_in(dir.path()).args(["replay", "all.ndjson"]));
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
        for f in ["one.ndjson", "two.ndjson"] {
            let out = run(cmd_in(dir.path()).args(["replay", f]));
            prop_assert!(out.status != 2 || shuffled[..cut].is_empty() || shuffled[cut..].is_empty(), "{}", out.stderr);
        }
        prop_assert_eq!(mapping(dir.path(), "stripe-sync.db"), expected);
    }
}
