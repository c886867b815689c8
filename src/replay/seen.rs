//! Event ids seen in this run.

use std::hash::BuildHasher;

/// Event ids as 64-bit keyed hashes (foldhash with a random seed per run),
/// with their event's type numbered: two events of one id and two types
/// are not a redelivery (Stripe redelivers the same event) but two events
/// that share an id (hand-made fixtures), and are named so.
///
/// Each id takes one 8-byte slot, in one of [`SHARDS`] open-addressing
/// tables picked by the hash's top byte: a slot keeps the other 56 bits
/// and the type's number, so the whole hash tells ids apart. A table holds
/// at most 80% of its slots and grows by a quarter, one table at a time:
/// about 11 MB for a million ids, never twice that while growing. A false
/// "duplicate" needs two ids of the run to collide: about n^2 / 2^65, 3e-8
/// for a million events, and with a random seed not something an input can
/// aim for.
pub(crate) struct SeenIds {
    key: foldhash::quality::RandomState,
    shards: Vec<Shard>,
    /// Event types, numbered from 1 in order of appearance.
    types: foldhash::HashMap<Box<str>, u32>,
    /// Ids whose type's number does not fit a slot's tag: the type number.
    overflow: foldhash::HashMap<u64, u32>,
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

/// Tables, by the top byte of an id's hash.
const SHARDS: usize = 256;
/// The hash bits a slot keeps (the top byte picks the table).
const LOW: u64 = (1 << 56) - 1;
/// The slot tag of a type numbered past the tags (see `overflow`).
const OVERFLOW: u8 = u8::MAX;

impl Default for SeenIds {
    fn default() -> SeenIds {
        SeenIds {
            key: foldhash::quality::RandomState::default(),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            types: foldhash::HashMap::default(),
            overflow: foldhash::HashMap::default(),
        }
    }
}

impl SeenIds {
    /// Note the event `id` of type `kind`; what was known of the id before.
    /// The first event's type stays the one the id is known by.
    pub(crate) fn insert(&mut self, id: &str, kind: &str) -> Seen {
        let hash = self.key.hash_one(id);
        let number = match self.types.get(kind) {
            Some(n) => *n,
            None => {
                let n = self.types.len() as u32 + 1;
                self.types.insert(kind.into(), n);
                n
            }
        };
        // Numbers start at 1: a slot in use is never 0.
        let tag = u8::try_from(number).unwrap_or(OVERFLOW);
        let shard = &mut self.shards[(hash >> 56) as usize];
        match shard.insert(hash & LOW, tag) {
            None => {
                if tag == OVERFLOW {
                    self.overflow.insert(hash, number);
                }
                Seen::New
            }
            Some(earlier) => {
                let earlier = match earlier {
                    OVERFLOW => self.overflow.get(&hash).copied().unwrap_or_default(),
                    t => u32::from(t),
                };
                match earlier == number {
                    true => Seen::Again,
                    false => Seen::OtherType,
                }
            }
        }
    }
}

/// One open-addressing table (linear probing) of slots `tag << 56 | low`;
/// 0 is a free slot.
#[derive(Default)]
struct Shard {
    slots: Vec<u64>,
    len: usize,
}

impl Shard {
    /// Keep `low` with `tag` unless it is there: then the tag it has.
    fn insert(&mut self, low: u64, tag: u8) -> Option<u8> {
        if (self.len + 1) * 5 > self.slots.len() * 4 {
            self.grow();
        }
        let cap = self.slots.len();
        let mut i = Shard::home(low, cap);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                self.slots[i] = u64::from(tag) << 56 | low;
                self.len += 1;
                return None;
            }
            if slot & LOW == low {
                return Some((slot >> 56) as u8);
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    /// The first slot to try for `low` (ordered like the hashes).
    fn home(low: u64, cap: usize) -> usize {
        ((u128::from(low) * cap as u128) >> 56) as usize
    }

    /// A quarter more slots (64 at first), every entry placed again.
    fn grow(&mut self) {
        let cap = (self.slots.len() + self.slots.len() / 4).max(64);
        let old = std::mem::replace(&mut self.slots, vec![0; cap]);
        for slot in old.into_iter().filter(|s| *s != 0) {
            let mut i = Shard::home(slot & LOW, cap);
            while self.slots[i] != 0 {
                i += 1;
                if i == cap {
                    i = 0;
                }
            }
            self.slots[i] = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_told_apart_and_types_compared() {
        let mut seen = SeenIds::default();
        for i in 0..50_000 {
            assert_eq!(seen.insert(&format!("evt_{i}"), "a.b"), Seen::New);
        }
        for i in 0..50_000 {
            let kind = if i % 2 == 0 { "a.b" } else { "c.d" };
            let want = if i % 2 == 0 {
                Seen::Again
            } else {
                Seen::OtherType
            };
            assert_eq!(seen.insert(&format!("evt_{i}"), kind), want);
        }
        // The first type stays the id's.
        assert_eq!(seen.insert("evt_1", "a.b"), Seen::Again);
        assert_eq!(seen.insert("evt_1", "c.d"), Seen::OtherType);
    }

    #[test]
    fn types_past_the_tags_are_exact() {
        let mut seen = SeenIds::default();
        for i in 0..600 {
            assert_eq!(
                seen.insert(&format!("evt_{i}"), &format!("t{i}")),
                Seen::New
            );
        }
        for i in 0..600 {
            let id = format!("evt_{i}");
            assert_eq!(seen.insert(&id, &format!("t{i}")), Seen::Again, "{id}");
            assert_eq!(seen.insert(&id, &format!("t{}", i + 1)), Seen::OtherType);
        }
    }
}
