//! Event ids seen in this run.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Event ids as 64-bit keyed hashes (SipHash with a random key per run):
/// 8 bytes an event instead of ~80 for the strings, so a million-event
/// replay keeps about 20 MB here. A false "duplicate" needs two ids of the
/// run to collide: about n^2 / 2^65, 3e-8 for a million events, and with a
/// secret random key not something an input can aim for.
#[derive(Default)]
pub(crate) struct SeenIds {
    key: RandomState,
    set: HashSet<u64, BuildHasherDefault<Spread>>,
}

impl SeenIds {
    /// Whether the id is new.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        self.set.insert(self.key.hash_one(id))
    }
}

/// The set's own hash of a key that is a keyed hash already: the key itself.
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in, to stay correct.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
