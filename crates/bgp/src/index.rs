//! A hash index of slab slot numbers: the lookup structure of the Loc-RIB
//! ([`crate::rib::Rib`]) and of the control node's route tables.
//!
//! A table of a million routes is looked up and inserted into once per route
//! received, at random places: memory latency, not instructions, is what an
//! ingest costs. hashbrown's `HashTable<u32>` keeps its control bytes and its
//! values in two arrays, so a miss-then-insert touches two random cache
//! lines, and its growth rehashes every key (a read of each key from the
//! slab). Here:
//!
//! * one array of `u64` entries, each the upper 32 bits of the key's hash (the
//!   fingerprint) beside the slot number + 1 (0: empty), so a probe reads one
//!   cache line and a fingerprint match is nearly always the key;
//! * linear probing from the home position, taken from the fingerprint's top
//!   bits: growth (double when 3/4 full: a miss at 7/8 walked four cache lines
//!   on average; a million entries take 2^21 slots either way) moves entries from the old array
//!   without reading a key or hashing again, in order;
//! * removal by backward shift (no tombstones);
//! * [`SlotIndex::touch`] reads an entry's home ahead of its use, so a batch
//!   of lookups overlaps its memory accesses instead of waiting for each.
//!
//! Hashes come from the caller (a seeded hasher: keys come from the network).
//! Slot numbers are below `u32::MAX`.

/// The index (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct SlotIndex {
    /// `fingerprint << 32 | (slot + 1)`, or 0; the length is 0 or a power of two.
    entries: Vec<u64>,
    /// log2 of `entries.len()` (when not empty).
    bits: u32,
    len: usize,
}

const MIN_BITS: u32 = 4;

fn fingerprint(h: u64) -> u32 {
    (h >> 32) as u32
}

fn slot_of(e: u64) -> u32 {
    (e as u32).wrapping_sub(1)
}

impl SlotIndex {
    /// An empty index (allocates on the first insert).
    pub fn new() -> SlotIndex {
        SlotIndex::default()
    }

    /// Entries stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries the index holds before it grows.
    pub fn capacity(&self) -> usize {
        self.entries.len() / 4 * 3
    }

    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    fn home(&self, fp: u32) -> usize {
        if self.entries.is_empty() {
            0
        } else {
            (fp >> (32 - self.bits)) as usize
        }
    }

    /// The slot with hash `h` for which `eq` holds, if any (`eq` is asked only
    /// for slots whose fingerprint matches).
    pub fn find(&self, h: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.position(h, eq).map(|p| slot_of(self.entries[p]))
    }

    fn position(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let fp = fingerprint(h);
        let mask = self.mask();
        let mut p = self.home(fp);
        loop {
            let e = self.entries[p];
            if e == 0 {
                return None;
            }
            if fingerprint(e) == fp && eq(slot_of(e)) {
                return Some(p);
            }
            p = (p + 1) & mask;
        }
    }

    /// Read the entry a lookup of `h` starts at, and return it: a batch that
    /// touches its hashes first has their cache lines loaded in parallel.
    pub fn touch(&self, h: u64) -> u64 {
        self.entries
            .get(self.home(fingerprint(h)))
            .copied()
            .unwrap_or(0)
    }

    /// Add `slot` under hash `h`; the caller knows the key is not stored.
    /// `false` (nothing stored) for `u32::MAX`, which is not a slot number.
    pub fn insert(&mut self, h: u64, slot: u32) -> bool {
        if slot == u32::MAX {
            return false;
        }
        if self.len >= self.capacity() {
            let bits = if self.entries.is_empty() {
                MIN_BITS
            } else {
                self.bits + 1
            };
            self.rebuild(bits);
        }
        let e = u64::from(fingerprint(h)) << 32 | u64::from(slot + 1);
        self.place(e);
        self.len += 1;
        true
    }

    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut p = self.home(fingerprint(e));
        while self.entries[p] != 0 {
            p = (p + 1) & mask;
        }
        self.entries[p] = e;
    }

    /// A new array of `2^bits` entries, filled from the old one in order
    /// (homes come from the fingerprints: no key is read, no hash made).
    fn rebuild(&mut self, bits: u32) {
        // Zeroes written, not `calloc`'s lazy zero pages: a probe reads a slot before an
        // insert writes it, and a read-mapped zero page costs a second fault on that write.
        // (`black_box`: the compiler knows `calloc`'s memory is zero and would drop the fill.)
        let mut fresh = vec![0u64; 1usize << bits];
        std::hint::black_box(&mut fresh[..]).fill(0);
        let old = std::mem::replace(&mut self.entries, fresh);
        self.bits = bits;
        for e in old.into_iter().filter(|&e| e != 0) {
            self.place(e);
        }
    }

    /// Remove `slot` (stored under hash `h`); whether it was there.
    pub fn remove(&mut self, h: u64, slot: u32) -> bool {
        let Some(mut hole) = self.position(h, |s| s == slot) else {
            return false;
        };
        // Backward shift: an entry further along the run moves into the hole
        // when its home is not between the hole and itself (it was displaced
        // past the hole), so every lookup still reaches it without a gap.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == 0 {
                break;
            }
            let home = self.home(fingerprint(e));
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = 0;
        self.len -= 1;
        true
    }

    /// Store `new` in place of `old` (the same key, moved to another slot);
    /// whether `old` was there.
    pub fn replace(&mut self, h: u64, old: u32, new: u32) -> bool {
        if new == u32::MAX {
            return false;
        }
        match self.position(h, |s| s == old) {
            Some(p) => {
                self.entries[p] = u64::from(fingerprint(h)) << 32 | u64::from(new + 1);
                true
            }
            None => false,
        }
    }

    /// Give memory back once the index is under a quarter full.
    pub fn shrink(&mut self) {
        if self.len == 0 {
            *self = SlotIndex::default();
            return;
        }
        let mut bits = self.bits;
        while bits > MIN_BITS && self.len * 4 < (1 << bits) / 4 * 3 {
            bits -= 1;
        }
        if bits < self.bits {
            self.rebuild(bits);
        }
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        *self = SlotIndex::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Hashes with few distinct fingerprints and homes, so runs wrap and collide.
    fn weak(key: u16) -> u64 {
        let fp = u64::from(key % 37).wrapping_mul(0x9E37_79B9) << 37;
        fp | u64::from(key)
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16),
        Remove(u16),
        Move(u16),
        Shrink,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u16>().prop_map(|k| Op::Insert(k % 300)),
            2 => any::<u16>().prop_map(|k| Op::Remove(k % 300)),
            1 => any::<u16>().prop_map(|k| Op::Move(k % 300)),
            1 => Just(Op::Shrink),
        ]
    }

    proptest! {
        /// Any sequence of inserts, removes, moves and shrinks finds exactly what a
        /// map of the same operations holds (keys live in a "slab" by slot number).
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec(op(), 1..600)) {
            let mut ix = SlotIndex::new();
            let mut slab: Vec<Option<u16>> = Vec::new();
            let mut model: HashMap<u16, u32> = HashMap::new();
            for o in ops {
                match o {
                    Op::Insert(k) if !model.contains_key(&k) => {
                        let s = slab.len() as u32;
                        slab.push(Some(k));
                        prop_assert!(ix.insert(weak(k), s));
                        model.insert(k, s);
                    }
                    Op::Insert(_) => {}
                    Op::Remove(k) => {
                        let had = model.remove(&k);
                        prop_assert_eq!(ix.remove(weak(k), had.unwrap_or(u32::MAX - 1)), had.is_some());
                        if let Some(s) = had {
                            slab[s as usize] = None;
                        }
                    }
                    Op::Move(k) => {
                        if let Some(&s) = model.get(&k) {
                            let n = slab.len() as u32;
                            slab.push(Some(k));
                            slab[s as usize] = None;
                            prop_assert!(ix.replace(weak(k), s, n));
                            model.insert(k, n);
                        }
                    }
                    Op::Shrink => ix.shrink(),
                }
                prop_assert_eq!(ix.len(), model.len());
            }
            for k in 0..300u16 {
                let found = ix.find(weak(k), |s| slab[s as usize] == Some(k));
                prop_assert_eq!(found, model.get(&k).copied(), "key {}", k);
            }
        }
    }

    #[test]
    fn grows_past_its_capacity_and_keeps_everything() {
        let mut ix = SlotIndex::new();
        let h = |i: u32| u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for i in 0..100_000 {
            assert!(ix.insert(h(i), i));
        }
        assert!(ix.capacity() >= 100_000);
        assert!((0..100_000).all(|i| ix.find(h(i), |s| s == i) == Some(i)));
        assert_eq!(ix.find(h(100_001), |_| true), None);
        for i in 0..99_000 {
            assert!(ix.remove(h(i), i));
        }
        ix.shrink();
        assert!(ix.capacity() < 8_000, "{}", ix.capacity());
        assert!((99_000..100_000).all(|i| ix.find(h(i), |s| s == i) == Some(i)));
    }

    #[test]
    fn refuses_the_reserved_slot_number() {
        let mut ix = SlotIndex::new();
        assert!(!ix.insert(1, u32::MAX));
        assert!(ix.is_empty());
        assert!(ix.insert(1, 0));
        assert!(!ix.replace(1, 0, u32::MAX));
        assert_eq!(ix.find(1, |_| true), Some(0));
    }
}
