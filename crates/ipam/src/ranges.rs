//! A set of `u128` values stored as disjoint, non-adjacent inclusive ranges.
//!
//! This is the free-structure behind both the address allocator and the id
//! allocator: every operation (insert, remove, membership, take lowest, take
//! highest) is `O(log n)` in the number of ranges, so allocation never scans
//! address space linearly. Ranges are kept maximal: two stored ranges never
//! touch or overlap.

use std::collections::BTreeMap;

/// Disjoint inclusive ranges keyed by their start, with a cached element count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    /// start -> end (inclusive); ranges are disjoint and non-adjacent.
    ranges: BTreeMap<u128, u128>,
    /// Number of values in the set (saturating; only a full `u128` space overflows).
    count: u128,
}

impl RangeSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Number of values in the set.
    pub(crate) fn len(&self) -> u128 {
        self.count
    }

    /// The range containing `value`, if any.
    fn range_of(&self, value: u128) -> Option<(u128, u128)> {
        self.ranges
            .range(..=value)
            .next_back()
            .filter(|(_, &end)| end >= value)
            .map(|(&start, &end)| (start, end))
    }

    /// Whether `value` is in the set.
    pub(crate) fn contains(&self, value: u128) -> bool {
        self.range_of(value).is_some()
    }

    /// Smallest value in the set.
    pub(crate) fn first(&self) -> Option<u128> {
        self.ranges.first_key_value().map(|(&start, _)| start)
    }

    /// Largest value in the set.
    pub(crate) fn last(&self) -> Option<u128> {
        self.ranges.last_key_value().map(|(_, &end)| end)
    }

    /// Adds every value in `start..=end` (a no-op when `start > end`).
    pub(crate) fn insert_range(&mut self, start: u128, end: u128) {
        if start > end {
            return;
        }
        let mut new_start = start;
        let mut new_end = end;
        // Collect every stored range that overlaps or touches [start, end].
        let upper = end.saturating_add(1);
        let mut absorbed = Vec::new();
        for (&s, &e) in self.ranges.range(..=upper).rev() {
            if e.saturating_add(1) < start {
                break;
            }
            absorbed.push((s, e));
        }
        for (s, e) in absorbed {
            self.ranges.remove(&s);
            self.count = self.count.saturating_sub(span(s, e));
            new_start = new_start.min(s);
            new_end = new_end.max(e);
        }
        self.ranges.insert(new_start, new_end);
        self.count = self.count.saturating_add(span(new_start, new_end));
    }

    /// Adds `value`; returns false when it was already present.
    pub(crate) fn insert(&mut self, value: u128) -> bool {
        if self.contains(value) {
            return false;
        }
        self.insert_range(value, value);
        true
    }

    /// Removes `value`; returns false when it was not present.
    pub(crate) fn remove(&mut self, value: u128) -> bool {
        let Some((start, end)) = self.range_of(value) else {
            return false;
        };
        self.ranges.remove(&start);
        if start < value {
            self.ranges.insert(start, value - 1);
        }
        if value < end {
            self.ranges.insert(value + 1, end);
        }
        self.count = self.count.saturating_sub(1);
        true
    }

    /// Removes and returns the smallest value.
    pub(crate) fn pop_first(&mut self) -> Option<u128> {
        let value = self.first()?;
        self.remove(value);
        Some(value)
    }

    /// Removes and returns the largest value.
    pub(crate) fn pop_last(&mut self) -> Option<u128> {
        let value = self.last()?;
        self.remove(value);
        Some(value)
    }

    /// Stored ranges in ascending order.
    #[cfg(test)]
    pub(crate) fn iter_ranges(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }
}

/// Number of values in `start..=end` (saturating at `u128::MAX`).
fn span(start: u128, end: u128) -> u128 {
    (end - start).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(set: &RangeSet) -> Vec<(u128, u128)> {
        set.iter_ranges().collect()
    }

    #[test]
    fn insert_merges_adjacent_and_overlapping() {
        let mut set = RangeSet::new();
        set.insert_range(10, 20);
        set.insert_range(30, 40);
        assert_eq!(set.len(), 22);
        set.insert_range(21, 29);
        assert_eq!(ranges(&set), vec![(10, 40)]);
        assert_eq!(set.len(), 31);
        set.insert_range(5, 50);
        assert_eq!(ranges(&set), vec![(5, 50)]);
        assert_eq!(set.len(), 46);
        set.insert_range(52, 60);
        assert_eq!(ranges(&set), vec![(5, 50), (52, 60)]);
        assert!(!set.insert(7));
        assert!(set.insert(51));
        assert_eq!(ranges(&set), vec![(5, 60)]);
    }

    #[test]
    fn remove_splits() {
        let mut set = RangeSet::new();
        set.insert_range(1, 10);
        assert!(set.remove(5));
        assert!(!set.remove(5));
        assert_eq!(ranges(&set), vec![(1, 4), (6, 10)]);
        assert!(set.remove(1));
        assert!(set.remove(10));
        assert_eq!(ranges(&set), vec![(2, 4), (6, 9)]);
        assert_eq!(set.len(), 7);
        assert_eq!(set.pop_first(), Some(2));
        assert_eq!(set.pop_last(), Some(9));
        assert!(!set.contains(0));
        assert!(set.contains(3));
        assert!(!set.contains(5));
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut set = RangeSet::new();
        set.insert_range(0, u128::MAX - 1);
        assert_eq!(set.len(), u128::MAX);
        assert_eq!(set.pop_last(), Some(u128::MAX - 1));
        assert_eq!(set.pop_first(), Some(0));
        assert_eq!(set.len(), u128::MAX - 2);
        set.insert(u128::MAX);
        assert_eq!(set.last(), Some(u128::MAX));
        set.insert_range(5, 4);
        assert_eq!(set.first(), Some(1));
    }
}
