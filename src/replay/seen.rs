//! Event ids seen in this run.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;

/// Event ids as 128-bit keyed hashes: 16 bytes an event instead of ~80 for
/// the strings, so a 1 GB input stays well under 100 MB. With random keys a
/// false "duplicate" needs a 128-bit collision (about 1e-28 for a million
/// events), not something an input can aim for.
#[derive(Default)]
pub(crate) struct SeenIds {
    keys: (RandomState, RandomState),
    set: HashSet<u128>,
}

impl SeenIds {
    /// Whether the id is new.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        use std::hash::BuildHasher;
        let hi = u128::from(self.keys.0.hash_one(id));
        let lo = u128::from(self.keys.1.hash_one(id));
        self.set.insert((hi << 64) | lo)
    }
}
