//! Sets of Loc-RIB destination ids ([`crate::rib::DestId`]) as bitsets:
//! a peer's Adj-RIB-Out (which destinations it was sent) and its dirty
//! queue (which destinations to re-evaluate for it) cost one bit (plus a
//! queue entry while dirty) per destination instead of a copy of the key.

use crate::rib::DestId;

/// A set of ids.
#[derive(Debug, Default, Clone)]
pub struct IdSet {
    bits: Vec<u64>,
    len: usize,
}

impl IdSet {
    /// Add `id`; true if it was not there.
    pub fn insert(&mut self, id: DestId) -> bool {
        let (w, b) = (id as usize / 64, id % 64);
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        let fresh = self.bits[w] & (1 << b) == 0;
        self.bits[w] |= 1 << b;
        self.len += usize::from(fresh);
        fresh
    }

    /// Remove `id`; true if it was there.
    pub fn remove(&mut self, id: DestId) -> bool {
        let (w, b) = (id as usize / 64, id % 64);
        let Some(word) = self.bits.get_mut(w) else {
            return false;
        };
        let had = *word & (1 << b) != 0;
        *word &= !(1 << b);
        self.len -= usize::from(had);
        had
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: DestId) -> bool {
        self.bits
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Remove every id (and the memory).
    pub fn clear(&mut self) {
        self.bits = Vec::new();
        self.len = 0;
    }
}

/// Destinations to re-evaluate for one peer, in the order they became
/// dirty, each with whether its best path changed (`false`: only the
/// peer's filter may have, e.g. new RT-membership routes; a destination
/// already sent is then not sent again).
#[derive(Debug, Default, Clone)]
pub struct Dirty {
    queued: IdSet,
    changed: IdSet,
    queue: std::collections::VecDeque<DestId>,
}

impl Dirty {
    /// Queue `id` (`changed`: its best path changed).
    pub fn mark(&mut self, id: DestId, changed: bool) {
        if changed {
            self.changed.insert(id);
        }
        if self.queued.insert(id) {
            self.queue.push_back(id);
        }
    }

    /// Take up to `n` ids, oldest first, with their `changed` flag.
    pub fn take(&mut self, n: usize) -> Vec<(DestId, bool)> {
        let n = n.min(self.queue.len());
        let out: Vec<(DestId, bool)> = self
            .queue
            .drain(..n)
            .map(|id| (id, self.changed.remove(id)))
            .collect();
        for (id, _) in &out {
            self.queued.remove(*id);
        }
        if self.queue.is_empty() {
            // Give the bitsets' memory back after a full-table burst.
            self.queued.clear();
            self.changed.clear();
            self.queue.shrink_to(1024);
        }
        out
    }

    /// Whether `id` is queued.
    pub fn contains(&self, id: DestId) -> bool {
        self.queued.contains(id)
    }

    /// Number of queued ids.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Drop everything queued.
    pub fn clear(&mut self) {
        *self = Dirty::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_counts_and_forgets() {
        let mut s = IdSet::default();
        assert!(s.insert(3));
        assert!(!s.insert(3));
        assert!(s.insert(200));
        assert_eq!(s.len(), 2);
        assert!(s.contains(200) && !s.contains(199));
        assert!(s.remove(3));
        assert!(!s.remove(3));
        assert!(!s.remove(100_000));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn dirty_keeps_order_and_merges_changed() {
        let mut d = Dirty::default();
        d.mark(5, false);
        d.mark(1, true);
        d.mark(5, true);
        d.mark(9, false);
        assert_eq!(d.len(), 3);
        assert_eq!(d.take(2), vec![(5, true), (1, true)]);
        assert!(d.contains(9) && !d.contains(5));
        d.mark(5, false);
        assert_eq!(d.take(10), vec![(9, false), (5, false)]);
        assert!(d.is_empty());
    }
}
