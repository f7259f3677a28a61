//! The flow table (TF include/vr_flow.h, tf-facts §5.5): entries keyed by
//! VRF + 5-tuple in a slab, forward and reverse entries linked by index,
//! HOLD entries queueing up to `hold_max` packets until the agent's verdict,
//! and idle aging driven by the `now` the caller passes in.
//!
//! Capacity comes from configuration; the index (open addressing, linear
//! probing, at least twice the capacity in buckets) is allocated at start,
//! so nothing is rehashed or grown per packet. A fast-path hit on a flow
//! over a tunnel reads one bucket and one cache line of the entry: the
//! packed key (24 bytes for IPv4, compared word by word), counters, last
//! use and the cached tunnel nexthop share the entry's first line.

use std::time::Duration;

use crate::buf::PacketBuf;
use crate::dump::{FlowDump, FlowState};
use crate::types::{FlowAction, FlowKey, NatRewrite, NhId, RxMeta, VifId, VrfId};

/// The flow key in three machine words: family bit, VRF, protocol and
/// ports in the first; an IPv4 pair's addresses in the second (the third
/// zero). An IPv6 pair does not fit: its words two and three are a seeded
/// 128-bit digest of the addresses, and the probe then also compares the
/// entry's full [`FlowKey`] (out of the hot line). Cheap to hash
/// ([`PackedKey::hash`]) and to compare, and small enough to share the
/// entry's first cache line with everything the fast path touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedKey([u64; 3]);

/// Bit 63 of the first word: an IPv6 key.
const V6: u64 = 1 << 63;

impl PackedKey {
    /// The packed key of `k` in a table seeded with `seed` (the seed enters
    /// IPv6 digests only).
    #[inline]
    pub(crate) fn new(k: &FlowKey, seed: u64) -> Self {
        use std::net::IpAddr;
        match (k.src, k.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                Self::v4(k.vrf, k.proto, u32::from(s), u32::from(d), k.sport, k.dport)
            }
            (s, d) => {
                let addr = |a: IpAddr| match a {
                    IpAddr::V4(v4) => u128::from(u32::from(v4)),
                    IpAddr::V6(v6) => u128::from(v6),
                };
                let (s, d) = (addr(s), addr(d));
                let w = |x: u128| [(x >> 64) as u64, x as u64];
                let ([s0, s1], [d0, d1]) = (w(s), w(d));
                let a = fold_mul(
                    s0 ^ seed ^ 0x2d35_8dcc_aa6c_78a5,
                    s1 ^ 0x8bb8_4b93_962e_acc9,
                );
                let b = fold_mul(
                    d0 ^ seed.rotate_left(21) ^ 0x4b33_a62e_d433_d4a3,
                    d1 ^ 0x4d5a_2da5_1de1_aa47,
                );
                let c = fold_mul(
                    s1 ^ d0 ^ 0xa076_1d64_78bd_642f,
                    s0 ^ d1 ^ seed ^ 0xe703_7ed1_a0b4_28db,
                );
                let w0 = Self::v4(k.vrf, k.proto, 0, 0, k.sport, k.dport).0[0] | V6;
                PackedKey([w0, a ^ c, b ^ c.rotate_left(32)])
            }
        }
    }

    /// The key of an IPv4 packet from its header fields (equal to
    /// `PackedKey::new` of the same [`FlowKey`]).
    #[inline]
    pub(crate) fn v4(vrf: VrfId, proto: u8, src: u32, dst: u32, sport: u16, dport: u16) -> Self {
        let w0 = (u64::from(vrf.0) << 40)
            | (u64::from(proto) << 32)
            | (u64::from(sport) << 16)
            | u64::from(dport);
        PackedKey([w0, (u64::from(src) << 32) | u64::from(dst), 0])
    }

    /// An IPv6 key: equal packed keys need the full keys compared too.
    #[inline]
    pub(crate) fn is_v6(&self) -> bool {
        self.0[0] & V6 != 0
    }

    /// Seeded hash of the three words: two folded 64x64->128-bit
    /// multiplies (the wyhash mixing step), about a dozen instructions, with
    /// the seed in every multiply so colliding keys cannot be chosen without
    /// it.
    #[inline(always)]
    pub(crate) fn hash(&self, seed: u64) -> u64 {
        let w = &self.0;
        let a = fold_mul(
            w[0] ^ seed ^ 0xa076_1d64_78bd_642f,
            w[1] ^ seed.rotate_left(32) ^ 0xe703_7ed1_a0b4_28db,
        );
        fold_mul(
            a ^ w[2] ^ seed.rotate_left(16) ^ 0x8ebc_6af0_9c88_c6e3,
            seed.rotate_left(48) ^ 0x5899_65cc_7537_4cc3,
        )
    }

    /// Equality without a call to `memcmp`.
    #[inline]
    pub(crate) fn same(&self, o: &PackedKey) -> bool {
        let (a, b) = (&self.0, &o.0);
        ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2])) == 0
    }
}

/// The 128-bit product of `a` and `b`, its halves xor-ed.
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// A packet queued on a HOLD flow.
#[derive(Debug, Clone)]
pub(crate) struct HeldPkt {
    pub(crate) vif_in: VifId,
    pub(crate) buf: PacketBuf,
    pub(crate) meta: RxMeta,
}

/// One direction of a flow. Everything the fast path reads or writes for
/// a packet of a flow over a tunnel is in the first cache line (`repr(C)`
/// keeps the order; the entry is 64-byte aligned): the packed key, the
/// counters, the last-use time, the tunnel the route resolved to with its
/// table generation, the entropy port and the flags. The full route cache
/// (also for local Encap outputs), NAT rewrite, held packets and the rest
/// follow, out of the way.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub(crate) struct FlowEntry {
    /// `PackedKey::new(&key, seed)`: what the index compares (set by
    /// [`FlowTable::insert`]).
    pub(crate) pkey: PackedKey,
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    /// Last use, nanoseconds since the shell's time origin.
    last_used_ns: u64,
    /// Generation of `tunnel_nh` (the `route_cache` generation).
    pub(crate) tunnel_gen: u64,
    /// The tunnel nexthop `route_cache` resolved to, or [`NO_TUNNEL`]: the
    /// fast path's copy, kept by [`FlowEntry::set_route_cache`].
    pub(crate) tunnel_nh: u32,
    pub(crate) udp_src_port: u16,
    /// Active, action Forward, no mirror: the fast path may take it. Kept
    /// by [`FlowEntry::set_verdict`].
    pub(crate) fast: bool,
    /// The slot holds an entry (else it is on the free list).
    live: bool,
    /// Resolved output of this direction, valid while the forwarder's table
    /// generation is unchanged (saves the FIB lookup and nexthop walk).
    /// Set only through [`FlowEntry::set_route_cache`].
    route_cache: Option<(u64, crate::pipeline::Out)>,
    pub(crate) state: FlowState,
    /// Pinned ECMP member position (sticky ECMP, TF `fe_ecmp_nh_index`).
    pub(crate) ecmp_index: Option<u16>,
    pub(crate) reverse: Option<u32>,
    pub(crate) mirror: Option<NhId>,
    /// Action (None while HOLD).
    pub(crate) action: Option<FlowAction>,
    pub(crate) key: FlowKey,
    pub(crate) held: Vec<HeldPkt>,
}

impl FlowEntry {
    /// A new entry: HOLD when `action` is None, else Active.
    pub(crate) fn new(
        key: FlowKey,
        action: Option<FlowAction>,
        mirror: Option<NhId>,
        now: Duration,
        held: Vec<HeldPkt>,
    ) -> Self {
        let mut e = FlowEntry {
            pkey: PackedKey::new(&key, 0),
            last_used_ns: 0,
            packets: 0,
            bytes: 0,
            tunnel_gen: 0,
            tunnel_nh: NO_TUNNEL,
            route_cache: None,
            udp_src_port: 0,
            fast: false,
            live: true,
            state: FlowState::Hold,
            ecmp_index: None,
            reverse: None,
            mirror: None,
            action: None,
            key,
            held,
        };
        e.touch(now);
        if action.is_some() {
            e.set_verdict(action, mirror);
        }
        e
    }

    /// Record a use at `now`.
    #[inline(always)]
    pub(crate) fn touch(&mut self, now: Duration) {
        self.last_used_ns = now.as_nanos() as u64;
    }

    /// Time of the last use.
    pub(crate) fn last_used(&self) -> Duration {
        Duration::from_nanos(self.last_used_ns)
    }

    /// The route cache: the resolved output and its table generation.
    #[inline]
    pub(crate) fn route_cache(&self) -> Option<(u64, crate::pipeline::Out)> {
        self.route_cache
    }

    /// Cache the resolved output `out` of table generation `gen` (and, for
    /// a tunnel, its nexthop in the hot line).
    pub(crate) fn set_route_cache(&mut self, gen: u64, out: crate::pipeline::Out) {
        self.route_cache = Some((gen, out));
        self.tunnel_gen = gen;
        self.tunnel_nh = match out {
            crate::pipeline::Out::Tunnel { nh, .. } => nh.0,
            _ => NO_TUNNEL,
        };
    }

    /// A free slot's filler (its key is never looked up: free slots are not
    /// in the index).
    fn vacant() -> Self {
        let key = FlowKey {
            vrf: VrfId(0),
            proto: 0,
            src: std::net::Ipv4Addr::UNSPECIFIED.into(),
            dst: std::net::Ipv4Addr::UNSPECIFIED.into(),
            sport: 0,
            dport: 0,
        };
        let mut e = FlowEntry::new(key, None, None, Duration::ZERO, Vec::new());
        e.live = false;
        e
    }

    /// Install a verdict (Active) and its mirror.
    pub(crate) fn set_verdict(&mut self, action: Option<FlowAction>, mirror: Option<NhId>) {
        self.state = if action.is_some() {
            FlowState::Active
        } else {
            FlowState::Hold
        };
        self.action = action;
        self.mirror = mirror;
        self.fast = action == Some(FlowAction::Forward) && mirror.is_none();
        // The cached route was resolved under the previous action (a NAT may have changed the
        // destination or VRF; its entropy port hashed the rewritten key): the next packet
        // resolves it again.
        self.route_cache = None;
        self.tunnel_nh = NO_TUNNEL;
        self.udp_src_port = 0;
    }
}

/// `FlowEntry::tunnel_nh` when the route cache holds no tunnel.
pub(crate) const NO_TUNNEL: u32 = u32::MAX;

/// Bucket of the open-addressing index: `slot` is the entry index + 1 (0:
/// empty), `hash` the low 32 bits of the key's hash (its home bucket and a
/// filter before the key compare).
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    hash: u32,
    slot: u32,
}

/// The table: an open-addressing index (linear probing, at most half
/// full, backward-shift deletion, no tombstones) over a slab of entries.
#[derive(Debug)]
pub(crate) struct FlowTable {
    seed: u64,
    index: Vec<Bucket>,
    mask: usize,
    slots: Vec<FlowEntry>,
    free: Vec<u32>,
    len: usize,
    capacity: usize,
}

impl Clone for FlowTable {
    /// A copy with its own allocations, the entry slab reserved to the full
    /// capacity as in [`FlowTable::unfilled`] (so it never grows either).
    fn clone(&self) -> Self {
        let mut slots = Vec::with_capacity(self.capacity);
        slots.extend(self.slots.iter().cloned());
        FlowTable {
            seed: self.seed,
            index: self.index.clone(),
            mask: self.mask,
            slots,
            free: self.free.clone(),
            len: self.len,
            capacity: self.capacity,
        }
    }
}

impl FlowTable {
    #[cfg(test)]
    pub(crate) fn new(seed: u64, capacity: usize) -> Self {
        let mut t = FlowTable::unfilled(seed, capacity);
        t.fill_index();
        t
    }

    /// The table with its memory allocated but not yet written: the index
    /// must be filled ([`FlowTable::fill_index`]) before any other use. In
    /// between, [`FlowTable::memory`] gives the ranges to advise, and the
    /// first write then faults the index in as huge pages where advised.
    pub(crate) fn unfilled(seed: u64, capacity: usize) -> Self {
        let buckets = capacity.saturating_mul(2).max(2).next_power_of_two();
        FlowTable {
            seed,
            index: Vec::with_capacity(buckets),
            mask: buckets - 1,
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            len: 0,
            capacity,
        }
    }

    /// (address, length in bytes) of the index and of the entry slab, both
    /// allocated once in `new` and never moved or grown.
    pub(crate) fn memory(&self) -> [(usize, usize); 2] {
        [
            (
                self.index.as_ptr() as usize,
                self.index.capacity() * std::mem::size_of::<Bucket>(),
            ),
            (
                self.slots.as_ptr() as usize,
                self.slots.capacity() * std::mem::size_of::<FlowEntry>(),
            ),
        ]
    }

    /// Write every index bucket (empty): the pages are faulted in by that
    /// write, as huge pages where advised.
    pub(crate) fn fill_index(&mut self) {
        self.index.clear();
        self.index.resize(self.mask + 1, Bucket::default());
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn hash(&self, key: &PackedKey) -> u32 {
        key.hash(self.seed) as u32
    }

    /// Read the home bucket of hash `h` (a prefetch by load for
    /// `Forwarder::process_batch`: the value only feeds a sink). Returns
    /// its slot word.
    #[inline(always)]
    pub(crate) fn touch_bucket(&self, h: u32) -> u32 {
        self.index.get(h as usize & self.mask).map_or(0, |b| b.slot)
    }

    /// Read the entry the home bucket of hash `h` points at: the first
    /// word of its hot line. A hint only: the bucket may hold another key;
    /// the probe at processing time decides.
    #[inline(always)]
    pub(crate) fn touch_entry(&self, h: u32) -> u64 {
        let slot = self.touch_bucket(h);
        match slot.checked_sub(1).and_then(|i| self.slots.get(i as usize)) {
            Some(e) => e.pkey.0[0],
            None => 0,
        }
    }

    #[inline]
    pub(crate) fn find(&self, key: &FlowKey) -> Option<u32> {
        let pkey = PackedKey::new(key, self.seed);
        self.find_bucket(&pkey, Some(key), self.hash(&pkey))
            .and_then(|b| self.index.get(b))
            .map(|b| b.slot - 1)
    }

    /// Index of the entry with the IPv4 key `key`, whose hash
    /// (`FlowTable::hash`) is `h`.
    #[inline(always)]
    pub(crate) fn find_hashed(&self, key: &PackedKey, h: u32) -> Option<u32> {
        self.find_bucket(key, None, h)
            .and_then(|b| self.index.get(b))
            .map(|b| b.slot - 1)
    }

    /// Bucket position holding `key` (hash `h`). An IPv6 key matches only
    /// with its full key `full` given and equal.
    #[inline(always)]
    fn find_bucket(&self, key: &PackedKey, full: Option<&FlowKey>, h: u32) -> Option<usize> {
        let mut i = h as usize & self.mask;
        // The index is at most half full: the probe meets an empty bucket.
        loop {
            let b = *self.index.get(i)?;
            if b.slot == 0 {
                return None;
            }
            if b.hash == h {
                // A bucket points at a live entry.
                if let Some(e) = self.slots.get(b.slot as usize - 1) {
                    if e.pkey.same(key) && (!key.is_v6() || full == Some(&e.key)) {
                        return Some(i);
                    }
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    pub(crate) fn get(&self, idx: u32) -> Option<&FlowEntry> {
        self.slots.get(idx as usize).filter(|e| e.live)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, idx: u32) -> Option<&mut FlowEntry> {
        self.slots.get_mut(idx as usize).filter(|e| e.live)
    }

    /// Insert a new entry (the key must not exist). None when full.
    pub(crate) fn insert(&mut self, mut entry: FlowEntry) -> Option<u32> {
        if self.len >= self.capacity {
            return None;
        }
        entry.pkey = PackedKey::new(&entry.key, self.seed);
        let h = self.hash(&entry.pkey);
        let idx = match self.free.pop() {
            Some(i) => {
                *self.slots.get_mut(i as usize)? = entry;
                i
            }
            None => {
                let i = u32::try_from(self.slots.len()).ok()?;
                if i == u32::MAX {
                    return None;
                }
                self.slots.push(entry);
                i
            }
        };
        let mut i = h as usize & self.mask;
        while self.index.get(i)?.slot != 0 {
            i = (i + 1) & self.mask;
        }
        *self.index.get_mut(i)? = Bucket {
            hash: h,
            slot: idx + 1,
        };
        self.len += 1;
        Some(idx)
    }

    /// Remove one entry; returns it.
    pub(crate) fn remove(&mut self, idx: u32) -> Option<FlowEntry> {
        let h = self.hash(&self.get(idx)?.pkey);
        // The bucket pointing at `idx`, on the probe run from its home.
        let mut pos = h as usize & self.mask;
        loop {
            let b = *self.index.get(pos)?;
            if b.slot == 0 {
                return None;
            }
            if b.slot == idx + 1 {
                break;
            }
            pos = (pos + 1) & self.mask;
        }
        self.unlink(pos);
        let slot = self.slots.get_mut(idx as usize).filter(|e| e.live)?;
        let mut e = std::mem::replace(slot, FlowEntry::vacant());
        e.live = true;
        self.free.push(idx);
        self.len -= 1;
        Some(e)
    }

    /// Empty bucket `pos`, shifting later buckets of the probe run back so
    /// every key stays reachable from its home bucket.
    fn unlink(&mut self, pos: usize) {
        let mask = self.mask;
        let mut hole = pos;
        let mut j = pos;
        loop {
            j = (j + 1) & mask;
            let Some(b) = self.index.get(j).copied() else {
                break;
            };
            if b.slot == 0 {
                break;
            }
            let home = b.hash as usize & mask;
            // b may move to the hole unless its home lies cyclically in
            // (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                if let Some(h) = self.index.get_mut(hole) {
                    *h = b;
                }
                hole = j;
            }
        }
        if let Some(h) = self.index.get_mut(hole) {
            *h = Bucket::default();
        }
    }

    /// Remove an entry and its reverse; returns the held packets of both.
    pub(crate) fn remove_pair(&mut self, idx: u32) -> Vec<HeldPkt> {
        let mut held = Vec::new();
        if let Some(e) = self.remove(idx) {
            held.extend(e.held);
            if let Some(r) = e.reverse {
                if self.get(r).is_some_and(|re| re.reverse == Some(idx)) {
                    if let Some(re) = self.remove(r) {
                        held.extend(re.held);
                    }
                }
            }
        }
        held
    }

    /// Remove pairs idle for longer than `timeout` (HOLD entries: longer than
    /// `hold_timeout`). Returns how many entries were removed.
    pub(crate) fn age(
        &mut self,
        now: Duration,
        timeout: Duration,
        hold_timeout: Duration,
    ) -> usize {
        let mut expired = Vec::new();
        for (i, e) in self.slots.iter().enumerate() {
            if !e.live {
                continue;
            }
            let limit = match e.state {
                FlowState::Hold => hold_timeout,
                FlowState::Active => timeout,
            };
            // A pair ages as a unit: it expires when both directions are idle.
            let last = match e.reverse.and_then(|r| self.get(r)) {
                Some(r) => e.last_used().max(r.last_used()),
                None => e.last_used(),
            };
            if now.saturating_sub(last) > limit {
                expired.push(i as u32);
            }
        }
        let before = self.len();
        for i in expired {
            self.remove_pair(i);
        }
        before - self.len()
    }

    pub(crate) fn clear(&mut self) {
        self.index.fill(Bucket::default());
        self.slots.clear();
        self.free.clear();
        self.len = 0;
    }

    pub(crate) fn dump(&self, now: Duration) -> Vec<FlowDump> {
        let mut out: Vec<FlowDump> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, e)| e.live)
            .map(|(i, e)| FlowDump {
                index: i as u32,
                key: e.key,
                state: e.state,
                action: e.action,
                reverse: e.reverse,
                mirror: e.mirror,
                ecmp_index: e.ecmp_index,
                udp_src_port: e.udp_src_port,
                packets: e.packets,
                bytes: e.bytes,
                idle_ms: now.saturating_sub(e.last_used()).as_millis() as u64,
            })
            .collect();
        out.sort_by_key(|d| d.index);
        out
    }
}

/// The key packets of the reverse direction carry after `action` rewrote
/// the forward direction.
pub(crate) fn reverse_key(key: &FlowKey, action: &FlowAction) -> FlowKey {
    let mut r = key.reversed();
    if let FlowAction::Nat(n) = action {
        if let Some(ip) = n.dst_ip {
            r.src = ip;
        }
        if let Some(ip) = n.src_ip {
            r.dst = ip;
        }
        if let Some(p) = n.dst_port {
            r.sport = p;
        }
        if let Some(p) = n.src_port {
            r.dport = p;
        }
        if let Some(v) = n.dst_vrf {
            r.vrf = v;
        }
    }
    r
}

/// The action of the reverse entry: NAT undone, others unchanged.
pub(crate) fn reverse_action(key: &FlowKey, action: &FlowAction) -> FlowAction {
    match action {
        FlowAction::Nat(n) => FlowAction::Nat(NatRewrite {
            // Replies to the translated source go back to the original.
            dst_ip: n.src_ip.map(|_| key.src),
            dst_port: n.src_port.map(|_| key.sport),
            src_ip: n.dst_ip.map(|_| key.dst),
            src_port: n.dst_port.map(|_| key.dport),
            dst_vrf: n.dst_vrf.map(|_| key.vrf),
        }),
        other => *other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sport: u16) -> FlowKey {
        FlowKey {
            vrf: VrfId(1),
            proto: 6,
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            sport,
            dport: 80,
        }
    }

    fn entry(k: FlowKey, at: u64) -> FlowEntry {
        FlowEntry::new(
            k,
            Some(FlowAction::Forward),
            None,
            Duration::from_secs(at),
            Vec::new(),
        )
    }

    #[test]
    fn capacity_aging_and_pairs() {
        let mut t = FlowTable::new(1, 3);
        let a = t.insert(entry(key(1), 0)).unwrap();
        let b = t.insert(entry(key(1).reversed(), 100)).unwrap();
        t.get_mut(a).unwrap().reverse = Some(b);
        t.get_mut(b).unwrap().reverse = Some(a);
        t.insert(entry(key(2), 0)).unwrap();
        assert!(t.insert(entry(key(3), 0)).is_none(), "full at capacity 3");
        // At 150 s: key(2) idle 150 > 120 expires; the pair is kept alive by b.
        assert_eq!(
            t.age(
                Duration::from_secs(150),
                Duration::from_secs(120),
                Duration::from_secs(5)
            ),
            1
        );
        assert_eq!(t.find(&key(1)), Some(a));
        assert_eq!(
            t.age(
                Duration::from_secs(221),
                Duration::from_secs(120),
                Duration::from_secs(5)
            ),
            2
        );
        assert_eq!(t.len(), 0);
        assert!(t.insert(entry(key(3), 0)).is_some());
    }

    #[test]
    fn memory_ranges_hold_the_tables_and_do_not_move() {
        let mut t = FlowTable::new(5, 100);
        let before = t.memory();
        assert_eq!(before[0].1, 256 * std::mem::size_of::<Bucket>());
        assert_eq!(before[1].1, 100 * std::mem::size_of::<FlowEntry>());
        for k in 0..100 {
            let idx = t.insert(entry(key(k), 0)).unwrap();
            let at = t.get(idx).unwrap() as *const FlowEntry as usize;
            assert!(at >= before[1].0 && at + 64 <= before[1].0 + before[1].1);
        }
        t.clear();
        t.insert(entry(key(1), 0)).unwrap();
        assert_eq!(t.memory(), before);
        // A clone has its own memory, of the same sizes, and the same keys.
        let c = t.clone();
        let m = c.memory();
        assert_ne!(m[1].0, before[1].0);
        assert_eq!((m[0].1, m[1].1), (before[0].1, before[1].1));
        assert_eq!(c.find(&key(1)), t.find(&key(1)));
    }

    #[test]
    fn tunnel_fast_path_fields_fit_in_one_cache_line() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<FlowEntry>(), 64);
        assert_eq!(size_of::<PackedKey>(), 24);
        // Key, counters, last use, tunnel cache, entropy port, flags.
        assert_eq!(offset_of!(FlowEntry, pkey), 0);
        for end in [
            offset_of!(FlowEntry, packets) + 8,
            offset_of!(FlowEntry, bytes) + 8,
            offset_of!(FlowEntry, last_used_ns) + 8,
            offset_of!(FlowEntry, tunnel_gen) + 8,
            offset_of!(FlowEntry, tunnel_nh) + 4,
            offset_of!(FlowEntry, udp_src_port) + 2,
            offset_of!(FlowEntry, fast) + 1,
            offset_of!(FlowEntry, live) + 1,
        ] {
            assert!(end <= 64, "a hot field ends at {end}");
        }
    }

    #[test]
    fn ipv6_keys_with_equal_digests_are_told_apart_by_the_full_key() {
        let v6 = |s: &str, d: &str| FlowKey {
            vrf: VrfId(2),
            proto: 17,
            src: s.parse().unwrap(),
            dst: d.parse().unwrap(),
            sport: 1,
            dport: 2,
        };
        let mut t = FlowTable::new(9, 16);
        let a = v6("2001:db8::1", "2001:db8::2");
        let b = v6("2001:db8::2", "2001:db8::1");
        let ia = t.insert(entry(a, 0)).unwrap();
        let ib = t.insert(entry(b, 0)).unwrap();
        assert_eq!((t.find(&a), t.find(&b)), (Some(ia), Some(ib)));
        let pa = t.get(ia).unwrap().pkey;
        assert!(pa.is_v6());
        assert_eq!(pa, PackedKey::new(&a, 9));
        // A digest collision: the entry found through a's packed key holds
        // another full key; a must not match it.
        t.get_mut(ia).unwrap().key = v6("2001:db8::3", "2001:db8::2");
        assert_eq!(t.find(&a), None);
        assert_eq!(t.find(&b), Some(ib));
        // A v4 key equal in its first word is not a v6 key.
        let v4 = FlowKey {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            ..a
        };
        assert_eq!(t.find(&v4), None);
        assert!(!PackedKey::new(&v4, 9).is_v6());
    }

    #[test]
    fn index_matches_a_map_under_inserts_and_removals() {
        // A small table (64 entries, 128 buckets) and few hash bits in
        // play: long probe runs, wrap-around, and many backward shifts.
        let mut t = FlowTable::new(3, 64);
        let mut model: std::collections::HashMap<u16, u32> = Default::default();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 200) as u16;
            if let Some(idx) = model.get(&k).copied() {
                if x & 1 == 0 {
                    assert!(t.remove(idx).is_some(), "step {step}");
                    model.remove(&k);
                }
            } else if let Some(idx) = t.insert(entry(key(k), 0)) {
                model.insert(k, idx);
            } else {
                assert_eq!(model.len(), 64, "full only at capacity");
            }
            assert_eq!(t.len(), model.len());
            if step % 97 == 0 {
                for k in 0..200u16 {
                    assert_eq!(
                        t.find(&key(k)),
                        model.get(&k).copied(),
                        "step {step} key {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn nat_reverse_key_and_action_invert() {
        let k = key(1000);
        let nat = FlowAction::Nat(NatRewrite {
            src_ip: Some("192.0.2.1".parse().unwrap()),
            src_port: Some(40000),
            ..Default::default()
        });
        let r = reverse_key(&k, &nat);
        assert_eq!(r.src, k.dst);
        assert_eq!(r.dst, "192.0.2.1".parse::<std::net::IpAddr>().unwrap());
        assert_eq!((r.sport, r.dport), (80, 40000));
        let FlowAction::Nat(ra) = reverse_action(&k, &nat) else {
            panic!()
        };
        assert_eq!(ra.dst_ip, Some(k.src));
        assert_eq!(ra.dst_port, Some(1000));
        assert_eq!(ra.src_ip, None);
    }
}
