//! The flow table (TF include/vr_flow.h, tf-facts §5.5): entries keyed by
//! VRF + 5-tuple in a slab, forward and reverse entries linked by index,
//! HOLD entries queueing up to `hold_max` packets until the agent's verdict,
//! and idle aging driven by the `now` the caller passes in.
//!
//! Capacity comes from configuration; the index map is sized at start so the
//! hot path never rehashes until the table is full.

use std::time::Duration;

use crate::buf::PacketBuf;
use crate::dump::{FlowDump, FlowState};
use crate::fib::{fast_map, FastMap};
use crate::types::{FlowAction, FlowKey, NatRewrite, NhId, RxMeta, VifId, VrfId};

/// The flow key as five machine words (family bit, VRF, protocol, ports;
/// addresses as 128-bit values): cheap to hash and to compare in the hot
/// path's hash probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedKey([u64; 5]);

impl std::hash::Hash for PackedKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for w in self.0 {
            state.write_u64(w);
        }
    }
}

impl PackedKey {
    #[inline]
    pub(crate) fn new(k: &FlowKey) -> Self {
        let addr = |a: &std::net::IpAddr| match a {
            std::net::IpAddr::V4(v4) => u128::from(u32::from(*v4)),
            std::net::IpAddr::V6(v6) => u128::from(*v6),
        };
        let v6 = u64::from(k.src.is_ipv6()) << 63;
        let w0 = v6
            | (u64::from(k.vrf.0) << 40)
            | (u64::from(k.proto) << 32)
            | (u64::from(k.sport) << 16)
            | u64::from(k.dport);
        let (s, d) = (addr(&k.src), addr(&k.dst));
        PackedKey([w0, (s >> 64) as u64, s as u64, (d >> 64) as u64, d as u64])
    }

    /// The key of an IPv4 packet from its header fields (equal to
    /// `PackedKey::new` of the same [`FlowKey`]).
    #[inline]
    pub(crate) fn v4(vrf: VrfId, proto: u8, src: u32, dst: u32, sport: u16, dport: u16) -> Self {
        let w0 = (u64::from(vrf.0) << 40)
            | (u64::from(proto) << 32)
            | (u64::from(sport) << 16)
            | u64::from(dport);
        PackedKey([w0, 0, u64::from(src), 0, u64::from(dst)])
    }
}

/// A packet queued on a HOLD flow.
#[derive(Debug, Clone)]
pub(crate) struct HeldPkt {
    pub(crate) vif_in: VifId,
    pub(crate) buf: PacketBuf,
    pub(crate) meta: RxMeta,
}

/// One direction of a flow.
#[derive(Debug, Clone)]
pub(crate) struct FlowEntry {
    pub(crate) key: FlowKey,
    pub(crate) state: FlowState,
    /// Action (None while HOLD).
    pub(crate) action: Option<FlowAction>,
    pub(crate) reverse: Option<u32>,
    pub(crate) mirror: Option<NhId>,
    /// Pinned ECMP member position (sticky ECMP, TF `fe_ecmp_nh_index`).
    pub(crate) ecmp_index: Option<u16>,
    pub(crate) udp_src_port: u16,
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) last_used: Duration,
    pub(crate) held: Vec<HeldPkt>,
    /// Resolved output of this direction, valid while the forwarder's table
    /// generation is unchanged (saves the FIB lookup and nexthop walk).
    pub(crate) route_cache: Option<(u64, crate::pipeline::Out)>,
}

/// The table.
#[derive(Debug)]
pub(crate) struct FlowTable {
    index: FastMap<PackedKey, u32>,
    slots: Vec<Option<FlowEntry>>,
    free: Vec<u32>,
    capacity: usize,
}

impl FlowTable {
    pub(crate) fn new(seed: u64, capacity: usize) -> Self {
        FlowTable {
            index: fast_map(seed, capacity),
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            capacity,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    #[inline]
    pub(crate) fn find(&self, key: &FlowKey) -> Option<u32> {
        self.index.get(&PackedKey::new(key)).copied()
    }

    #[inline]
    pub(crate) fn find_packed(&self, key: &PackedKey) -> Option<u32> {
        self.index.get(key).copied()
    }

    #[inline]
    pub(crate) fn get(&self, idx: u32) -> Option<&FlowEntry> {
        self.slots.get(idx as usize).and_then(Option::as_ref)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, idx: u32) -> Option<&mut FlowEntry> {
        self.slots.get_mut(idx as usize).and_then(Option::as_mut)
    }

    /// Insert a new entry (the key must not exist). None when full.
    pub(crate) fn insert(&mut self, entry: FlowEntry) -> Option<u32> {
        if self.index.len() >= self.capacity {
            return None;
        }
        let key = entry.key;
        let idx = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i as usize) {
                    *slot = Some(entry);
                }
                i
            }
            None => {
                let i = u32::try_from(self.slots.len()).ok()?;
                self.slots.push(Some(entry));
                i
            }
        };
        self.index.insert(PackedKey::new(&key), idx);
        Some(idx)
    }

    /// Remove one entry; returns it.
    pub(crate) fn remove(&mut self, idx: u32) -> Option<FlowEntry> {
        let e = self.slots.get_mut(idx as usize)?.take()?;
        self.index.remove(&PackedKey::new(&e.key));
        self.free.push(idx);
        Some(e)
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
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(e) = slot else { continue };
            let limit = match e.state {
                FlowState::Hold => hold_timeout,
                FlowState::Active => timeout,
            };
            // A pair ages as a unit: it expires when both directions are idle.
            let last = match e.reverse.and_then(|r| self.get(r)) {
                Some(r) => e.last_used.max(r.last_used),
                None => e.last_used,
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
        self.index.clear();
        self.slots.clear();
        self.free.clear();
    }

    pub(crate) fn dump(&self, now: Duration) -> Vec<FlowDump> {
        let mut out: Vec<FlowDump> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|e| (i, e)))
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
                idle_ms: now.saturating_sub(e.last_used).as_millis() as u64,
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
        FlowEntry {
            key: k,
            state: FlowState::Active,
            action: Some(FlowAction::Forward),
            reverse: None,
            mirror: None,
            ecmp_index: None,
            udp_src_port: 0,
            packets: 0,
            bytes: 0,
            last_used: Duration::from_secs(at),
            held: Vec::new(),
            route_cache: None,
        }
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
