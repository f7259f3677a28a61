//! Per-VRF tables: an IPv4 and an IPv6 longest-prefix-match FIB and a MAC
//! (bridge) table, plus the fast seeded hasher every hot table uses.
//!
//! The LPM is one exact-match hash map per prefix length, probed from the
//! longest length present down (a "hash per length" LPM): a lookup costs one
//! probe per distinct prefix length installed in the VRF, independent of the
//! number of prefixes, and updates are O(1).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::types::{MacAddr, NhId};

// ===== hasher =====

/// FxHash-style multiplicative hasher with a per-forwarder seed (flow keys
/// come from the network: the seed keeps collisions unpredictable).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FastHasher {
    hash: u64,
}

const K: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Final avalanche so the low bits (used by hashbrown's buckets and
        // by ECMP / port selection) depend on every input bit.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

/// Builds [`FastHasher`]s starting from a seed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SeededState {
    pub(crate) seed: u64,
}

impl BuildHasher for SeededState {
    type Hasher = FastHasher;
    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { hash: self.seed }
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, SeededState>;

pub(crate) fn fast_map<K, V>(seed: u64, capacity: usize) -> FastMap<K, V> {
    HashMap::with_capacity_and_hasher(capacity, SeededState { seed })
}

// ===== LPM =====

/// Address bits as an unsigned integer (u32 for IPv4, u128 for IPv6).
pub(crate) trait Bits: Copy + Eq + std::hash::Hash {
    const WIDTH: u8;
    fn mask(self, len: u8) -> Self;
}

impl Bits for u32 {
    const WIDTH: u8 = 32;
    #[inline]
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - u32::from(len)))
        }
    }
}

impl Bits for u128 {
    const WIDTH: u8 = 128;
    #[inline]
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - u32::from(len)))
        }
    }
}

/// LPM over one address family.
#[derive(Debug, Clone)]
pub(crate) struct Lpm<B: Bits> {
    /// Index = prefix length.
    by_len: Vec<FastMap<B, NhId>>,
    /// Lengths with at least one prefix, longest first.
    lens: Vec<u8>,
}

impl<B: Bits> Lpm<B> {
    pub(crate) fn new(seed: u64) -> Self {
        Lpm {
            by_len: (0..=B::WIDTH).map(|_| fast_map(seed, 0)).collect(),
            lens: Vec::new(),
        }
    }

    pub(crate) fn insert(&mut self, addr: B, len: u8, nh: NhId) {
        let len = len.min(B::WIDTH);
        if let Some(map) = self.by_len.get_mut(usize::from(len)) {
            map.insert(addr.mask(len), nh);
            if !self.lens.contains(&len) {
                self.lens.push(len);
                self.lens.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
    }

    pub(crate) fn remove(&mut self, addr: B, len: u8) -> Option<NhId> {
        let len = len.min(B::WIDTH);
        let map = self.by_len.get_mut(usize::from(len))?;
        let old = map.remove(&addr.mask(len));
        if map.is_empty() {
            self.lens.retain(|l| *l != len);
        }
        old
    }

    #[inline]
    pub(crate) fn lookup(&self, addr: B) -> Option<NhId> {
        for &len in &self.lens {
            if let Some(map) = self.by_len.get(usize::from(len)) {
                if let Some(nh) = map.get(&addr.mask(len)) {
                    return Some(*nh);
                }
            }
        }
        None
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (B, u8, NhId)> + '_ {
        self.lens.iter().rev().flat_map(move |&len| {
            self.by_len
                .get(usize::from(len))
                .into_iter()
                .flat_map(move |m| m.iter().map(move |(a, nh)| (*a, len, *nh)))
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.by_len.iter().map(|m| m.len()).sum()
    }
}

/// One VRF: FIBs and bridge table.
#[derive(Debug, Clone)]
pub(crate) struct Vrf {
    pub(crate) v4: Lpm<u32>,
    pub(crate) v6: Lpm<u128>,
    pub(crate) bridge: FastMap<MacAddr, NhId>,
}

impl Vrf {
    pub(crate) fn new(seed: u64) -> Self {
        Vrf {
            v4: Lpm::new(seed),
            v6: Lpm::new(seed),
            bridge: fast_map(seed, 0),
        }
    }

    pub(crate) fn add_route(&mut self, prefix: IpNet, nh: NhId) {
        match prefix.trunc() {
            IpNet::V4(p) => self.v4.insert(u32::from(p.addr()), p.prefix_len(), nh),
            IpNet::V6(p) => self.v6.insert(u128::from(p.addr()), p.prefix_len(), nh),
        }
    }

    pub(crate) fn del_route(&mut self, prefix: IpNet) -> Option<NhId> {
        match prefix.trunc() {
            IpNet::V4(p) => self.v4.remove(u32::from(p.addr()), p.prefix_len()),
            IpNet::V6(p) => self.v6.remove(u128::from(p.addr()), p.prefix_len()),
        }
    }

    #[inline]
    pub(crate) fn lookup(&self, dst: IpAddr) -> Option<NhId> {
        match dst {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        }
    }

    /// Routes (both families).
    pub(crate) fn route_count(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_removal_falls_back() {
        let mut v = Vrf::new(7);
        v.add_route("10.0.0.0/8".parse().unwrap(), NhId(1));
        v.add_route("10.1.0.0/16".parse().unwrap(), NhId(2));
        v.add_route("10.1.1.7/32".parse().unwrap(), NhId(3));
        v.add_route("0.0.0.0/0".parse().unwrap(), NhId(4));
        v.add_route("2001:db8::/32".parse().unwrap(), NhId(5));
        let q = |s: &str| v.lookup(s.parse().unwrap());
        assert_eq!(q("10.1.1.7"), Some(NhId(3)));
        assert_eq!(q("10.1.1.8"), Some(NhId(2)));
        assert_eq!(q("10.2.0.1"), Some(NhId(1)));
        assert_eq!(q("192.0.2.1"), Some(NhId(4)));
        assert_eq!(q("2001:db8::1"), Some(NhId(5)));
        assert_eq!(q("2001:db9::1"), None);
        assert_eq!(v.del_route("10.1.0.0/16".parse().unwrap()), Some(NhId(2)));
        assert_eq!(v.lookup("10.1.1.8".parse().unwrap()), Some(NhId(1)));
        // Host bits in the prefix are ignored.
        v.add_route("10.9.9.9/24".parse().unwrap(), NhId(6));
        assert_eq!(v.lookup("10.9.9.1".parse().unwrap()), Some(NhId(6)));
        assert_eq!(v.v4.iter().count(), 4);
    }
}
