//! Integer id pools: `virtual_network_network_id`, security-group ids and
//! route-target numbers.
//!
//! [`IdAllocator`] hands out the lowest free id of `min..=max` and keeps free
//! ids as disjoint ranges, so allocate/reserve/release are `O(log n)`.
//! Released ids become available again. The TF ranges are provided as
//! constructors:
//!
//! * virtual networks: `1..=2^24-1` ([`IdAllocator::virtual_network_ids`]);
//! * security groups: TF allocates an index from 1 upward (0 is reserved) and
//!   adds 8,000,000, i.e. ids `8_000_001..` ([`IdAllocator::security_group_ids`]);
//! * route targets: `8_000_000..=2^24-1` ([`IdAllocator::route_target_numbers`]).

use crate::ranges::RangeSet;
use crate::IpamError;

/// Lowest `virtual_network_network_id`.
pub const VN_ID_MIN: u64 = 1;
/// Highest `virtual_network_network_id` (2^24 - 1).
pub const VN_ID_MAX: u64 = (1 << 24) - 1;
/// Offset TF adds to the security-group index (`SGID_MIN_ALLOC`).
pub const SG_ID_BASE: u64 = 8_000_000;
/// Lowest security-group id: index 0 is reserved, so base + 1.
pub const SG_ID_MIN: u64 = SG_ID_BASE + 1;
/// Highest security-group id: base + the largest 32-bit index.
pub const SG_ID_MAX: u64 = SG_ID_BASE + (u32::MAX as u64);
/// Lowest automatically allocated route-target number (`BGP_RTGT_MIN_ID`).
pub const RT_NUMBER_MIN: u64 = 8_000_000;
/// Highest automatically allocated route-target number (2^24 - 1).
pub const RT_NUMBER_MAX: u64 = (1 << 24) - 1;

/// A pool of integer ids `min..=max`, lowest free first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdAllocator {
    min: u64,
    max: u64,
    free: RangeSet,
}

impl IdAllocator {
    /// A pool of `min..=max` with nothing in use.
    pub fn new(min: u64, max: u64) -> Result<Self, IpamError> {
        if min > max {
            return Err(IpamError::InvalidIdRange { min, max });
        }
        let mut free = RangeSet::new();
        free.insert_range(u128::from(min), u128::from(max));
        Ok(Self { min, max, free })
    }

    /// TF's `virtual_network_network_id` pool, `1..=2^24-1`.
    pub fn virtual_network_ids() -> Self {
        Self::fixed(VN_ID_MIN, VN_ID_MAX)
    }

    /// TF's security-group id pool, `8_000_001..=8_000_000 + (2^32-1)`.
    pub fn security_group_ids() -> Self {
        Self::fixed(SG_ID_MIN, SG_ID_MAX)
    }

    /// TF's automatic route-target number pool, `8_000_000..=2^24-1`.
    pub fn route_target_numbers() -> Self {
        Self::fixed(RT_NUMBER_MIN, RT_NUMBER_MAX)
    }

    /// Constructor for the constant ranges above, which are valid by definition.
    fn fixed(min: u64, max: u64) -> Self {
        let mut free = RangeSet::new();
        free.insert_range(u128::from(min), u128::from(max));
        Self { min, max, free }
    }

    /// Lower bound of the pool.
    pub fn min(&self) -> u64 {
        self.min
    }

    /// Upper bound of the pool.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Takes the lowest free id.
    pub fn allocate(&mut self) -> Result<u64, IpamError> {
        self.free
            .pop_first()
            .and_then(|v| u64::try_from(v).ok())
            .ok_or(IpamError::IdExhausted {
                min: self.min,
                max: self.max,
            })
    }

    /// Marks a specific id as used ([`IpamError::IdOutOfRange`] /
    /// [`IpamError::IdInUse`]).
    pub fn reserve(&mut self, id: u64) -> Result<(), IpamError> {
        if !self.in_range(id) {
            return Err(IpamError::IdOutOfRange {
                id,
                min: self.min,
                max: self.max,
            });
        }
        if self.free.remove(u128::from(id)) {
            Ok(())
        } else {
            Err(IpamError::IdInUse { id })
        }
    }

    /// Frees `id`; returns whether it was in use.
    pub fn release(&mut self, id: u64) -> bool {
        self.in_range(id) && self.free.insert(u128::from(id))
    }

    /// Whether `id` is currently allocated.
    pub fn is_used(&self, id: u64) -> bool {
        self.in_range(id) && !self.free.contains(u128::from(id))
    }

    /// Number of ids in use.
    pub fn used_count(&self) -> u64 {
        let total = u128::from(self.max - self.min) + 1;
        u64::try_from(total - self.free.len()).unwrap_or(u64::MAX)
    }

    fn in_range(&self, id: u64) -> bool {
        (self.min..=self.max).contains(&id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_first_and_reuse() {
        let mut ids = IdAllocator::virtual_network_ids();
        assert_eq!(ids.allocate().unwrap(), 1);
        assert_eq!(ids.allocate().unwrap(), 2);
        assert_eq!(ids.allocate().unwrap(), 3);
        assert!(ids.release(2));
        assert!(!ids.release(2));
        assert!(!ids.is_used(2));
        assert_eq!(ids.allocate().unwrap(), 2);
        assert_eq!(ids.allocate().unwrap(), 4);
        assert_eq!(ids.used_count(), 4);
    }

    #[test]
    fn reserve_rules() {
        let mut ids = IdAllocator::new(10, 20).unwrap();
        ids.reserve(10).unwrap();
        assert_eq!(ids.reserve(10), Err(IpamError::IdInUse { id: 10 }));
        assert_eq!(
            ids.reserve(21),
            Err(IpamError::IdOutOfRange {
                id: 21,
                min: 10,
                max: 20
            })
        );
        assert!(matches!(
            ids.reserve(9),
            Err(IpamError::IdOutOfRange { .. })
        ));
        assert_eq!(ids.allocate().unwrap(), 11);
        ids.reserve(13).unwrap();
        assert_eq!(ids.allocate().unwrap(), 12);
        assert_eq!(ids.allocate().unwrap(), 14);
        assert!(ids.is_used(13));
        assert!(!ids.is_used(100));
        assert!(!ids.release(100));
    }

    #[test]
    fn exhaustion() {
        let mut ids = IdAllocator::new(5, 7).unwrap();
        assert_eq!(ids.allocate().unwrap(), 5);
        assert_eq!(ids.allocate().unwrap(), 6);
        assert_eq!(ids.allocate().unwrap(), 7);
        let err = ids.allocate().unwrap_err();
        assert_eq!(err, IpamError::IdExhausted { min: 5, max: 7 });
        assert!(err.is_exhausted());
        ids.release(6);
        assert_eq!(ids.allocate().unwrap(), 6);
    }

    #[test]
    fn invalid_range() {
        assert_eq!(
            IdAllocator::new(3, 2),
            Err(IpamError::InvalidIdRange { min: 3, max: 2 })
        );
        let mut single = IdAllocator::new(0, 0).unwrap();
        assert_eq!(single.allocate().unwrap(), 0);
        let mut full = IdAllocator::new(0, u64::MAX).unwrap();
        assert_eq!(full.used_count(), 0);
        full.reserve(u64::MAX).unwrap();
        assert_eq!(full.used_count(), 1);
    }

    #[test]
    fn tf_ranges() {
        let mut sg = IdAllocator::security_group_ids();
        assert_eq!(sg.allocate().unwrap(), 8_000_001);
        assert_eq!(sg.allocate().unwrap(), 8_000_002);
        assert!(matches!(
            sg.reserve(8_000_000),
            Err(IpamError::IdOutOfRange { .. })
        ));
        let mut rt = IdAllocator::route_target_numbers();
        assert_eq!(rt.allocate().unwrap(), 8_000_000);
        assert_eq!(rt.max(), 16_777_215);
        let vn = IdAllocator::virtual_network_ids();
        assert_eq!((vn.min(), vn.max()), (1, 16_777_215));
    }

    #[test]
    fn many_allocations_are_fast() {
        let mut ids = IdAllocator::virtual_network_ids();
        for expected in 1..=50_000u64 {
            assert_eq!(ids.allocate().unwrap(), expected);
        }
        for id in (1..=50_000u64).step_by(2) {
            assert!(ids.release(id));
        }
        assert_eq!(ids.allocate().unwrap(), 1);
        assert_eq!(ids.allocate().unwrap(), 3);
        assert_eq!(ids.used_count(), 25_002);
    }
}
