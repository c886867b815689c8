//! Event ids seen in this run.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Event ids as 64-bit keyed hashes (SipHash with a random key per run):
/// 8 bytes an event instead of ~80 for the strings, so a million-event
/// replay keeps about 20 MB here. A false "duplicate" needs two ids of the
/// run to collide: about n^2 / 2^65, 3e-8 for a million events, and with a
/// secret random key not something an input can aim for.
/// With each id, a hash of its event's type: two events of one id and two
/// types are not a redelivery (Stripe redelivers the same event) but two
/// events that share an id (hand-made fixtures), and are named so.
#[derive(Default)]
pub(crate) struct SeenIds {
    key: RandomState,
    set: HashMap<u64, u64, BuildHasherDefault<Spread>>,
}

/// What an event's id says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    New,
    /// The same id and type earlier in the run: a redelivery.
    Again,
    /// The same id with another type earlier in the run.
    OtherType,
}

impl SeenIds {
    /// Note the event `id` of type `kind`; what was known of the id before.
    pub(crate) fn insert(&mut self, id: &str, kind: &str) -> Seen {
        let kind = self.key.hash_one(kind);
        match self.set.insert(self.key.hash_one(id), kind) {
            None => Seen::New,
            Some(earlier) if earlier == kind => Seen::Again,
            Some(earlier) => {
                // The first event's type stays the one the id is known by.
                self.set.insert(self.key.hash_one(id), earlier);
                Seen::OtherType
            }
        }
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
