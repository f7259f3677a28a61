//! `Forwarder`: the tables, the table operations ([`Op`]) and the dumps.
//! The per-packet pipeline is in `pipeline.rs`, encapsulation in `encap.rs`.
//!
//! Identifiers index plain vectors (vifs, nexthops, VRFs, labels) as in TF's
//! vRouter, so the hot path does no hashing for them; their ranges are
//! bounded by [`MAX_VIFS`], [`MAX_NEXTHOPS`], [`MAX_VRFS`] and the 20-bit
//! label space.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dump::*;
use crate::error::OpError;
use crate::fib::{fast_map, FastMap, Vrf};
use crate::flow::{reverse_action, reverse_key, FlowEntry, FlowTable};
use crate::types::*;

/// Largest vif index + 1.
pub const MAX_VIFS: u32 = 1 << 16;
/// Largest nexthop index + 1 (TF default 512K).
pub const MAX_NEXTHOPS: u32 = 1 << 20;
/// Largest VRF index + 1.
pub const MAX_VRFS: u32 = 1 << 16;

/// Forwarder configuration (sizes and timers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForwarderCfg {
    /// Flow entries (each direction is one entry). TF default 512K; no
    /// ceiling other than memory.
    pub flow_capacity: usize,
    /// Packets queued per HOLD flow (TF: 3).
    pub hold_max: usize,
    /// Idle time after which an active flow pair is aged out (TF agent
    /// default 180 s).
    pub flow_timeout: Duration,
    /// Time a HOLD flow waits for the agent's verdict before it is removed.
    pub hold_timeout: Duration,
    /// Minimum interval between ARP requests for the same fabric neighbour.
    pub arp_retry: Duration,
    /// Seed of the table hashes, ECMP and entropy-port hashing. The shell
    /// should pass a random value.
    pub hash_seed: u64,
    /// Answer workloads' ARP requests for routed addresses with the vif MAC here instead of
    /// punting them (a forwarder without an agent; the agent's proxy knows more).
    pub arp_proxy: bool,
}

impl Default for ForwarderCfg {
    fn default() -> Self {
        ForwarderCfg {
            flow_capacity: 512 * 1024,
            hold_max: 3,
            flow_timeout: Duration::from_secs(180),
            hold_timeout: Duration::from_secs(10),
            arp_retry: Duration::from_secs(1),
            hash_seed: 0x9e37_79b9_7f4a_7c15,
            arp_proxy: false,
        }
    }
}

/// A vif with its counters.
#[derive(Debug, Clone)]
pub(crate) struct VifEntry {
    pub(crate) vif: Vif,
    pub(crate) stats: VifStats,
}

/// A label entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LabelEntry {
    pub(crate) nh: NhId,
    pub(crate) payload: LabelPayload,
}

/// Key of the neighbour table: (vif, IPv4) in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct NeighborKey(pub(crate) u64);

impl NeighborKey {
    #[inline]
    pub(crate) fn new(vif: VifId, ip: Ipv4Addr) -> Self {
        NeighborKey((u64::from(vif.0) << 32) | u64::from(u32::from(ip)))
    }
    pub(crate) fn vif(self) -> VifId {
        VifId((self.0 >> 32) as u32)
    }
    pub(crate) fn ip(self) -> Ipv4Addr {
        Ipv4Addr::from(self.0 as u32)
    }
}

/// A fabric neighbour.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Neighbor {
    pub(crate) mac: MacAddr,
    pub(crate) learned: bool,
}

/// The forwarder: tables + counters. See the crate doc for usage. A clone
/// is an independent forwarder in the same state (a fuzz target reuses a
/// programmed one this way).
#[derive(Debug, Clone)]
pub struct Forwarder {
    pub(crate) cfg: ForwarderCfg,
    pub(crate) vifs: Vec<Option<VifEntry>>,
    pub(crate) nhs: Vec<Option<NexthopKind>>,
    pub(crate) vrfs: Vec<Option<Vrf>>,
    pub(crate) labels: Vec<Option<LabelEntry>>,
    pub(crate) vnis: FastMap<u32, VrfId>,
    pub(crate) neighbors: FastMap<NeighborKey, Neighbor>,
    /// Last ARP request sent per neighbour (rate limit).
    pub(crate) arp_pending: FastMap<NeighborKey, Duration>,
    pub(crate) flows: FlowTable,
    /// Ports of fragmented datagrams (IPv4 and IPv6) seen on policy vifs, for their later
    /// fragments, and later fragments queued until their first one arrives (`frag.rs`).
    pub(crate) frags: crate::frag::Frags,
    /// Outer IPv4 fragments to our fabric IP, until their datagram is whole (`reasm.rs`).
    pub(crate) reasm: crate::reasm::Reassembler,
    /// Frames the forwarder originates (ARP requests), drained by
    /// [`Forwarder::poll_transmit`].
    pub(crate) tx_queue: VecDeque<Tx>,
    pub(crate) drops: [u64; DROP_REASONS],
    pub(crate) punts: [u64; PUNT_REASONS],
    /// Latest `now` seen.
    pub(crate) now: Duration,
    /// Identification of the next outer IPv4 header.
    pub(crate) ip_ident: u16,
    /// Table generation: bumped by every operation that can change where a
    /// packet goes (everything but flow operations); flow route caches from
    /// an older generation are ignored.
    pub(crate) gen: u64,
    /// Prebuilt outer headers per tunnel nexthop (the fast path's).
    pub(crate) tmpls: Vec<Option<crate::fastpath::TunnelTmpl>>,
    /// The flow-cached fast path is used (tests turn it off to compare).
    pub(crate) fast_path_on: bool,
    /// Packets the fast path handled.
    pub(crate) fast_hits: u64,
}

pub(crate) const DROP_REASONS: usize = DropReason::ReasmLimit as usize + 1;
pub(crate) const PUNT_REASONS: usize = PuntReason::Receive as usize + 1;

const ALL_DROPS: [DropReason; DROP_REASONS] = [
    DropReason::Truncated,
    DropReason::Malformed,
    DropReason::UnknownVif,
    DropReason::NoVrf,
    DropReason::NoRoute,
    DropReason::NoBridgeEntry,
    DropReason::NoNeighbor,
    DropReason::Policy,
    DropReason::FlowLimit,
    DropReason::FlowHoldLimit,
    DropReason::Ttl,
    DropReason::Discard,
    DropReason::UnknownLabel,
    DropReason::UnknownVni,
    DropReason::InvalidNexthop,
    DropReason::TooBig,
    DropReason::NoHeadroom,
    DropReason::Unsupported,
    DropReason::Loop,
    DropReason::Fragment,
    DropReason::Checksum,
    DropReason::BadTunnel,
    DropReason::FragQueueFull,
    DropReason::ReasmTimeout,
    DropReason::ReasmOverlap,
    DropReason::ReasmLimit,
];
const ALL_PUNTS: [PuntReason; PUNT_REASONS] = [
    PuntReason::FlowMiss,
    PuntReason::Arp,
    PuntReason::Dhcp,
    PuntReason::Receive,
];

fn slot<T>(v: &mut Vec<Option<T>>, idx: u32) -> &mut Option<T> {
    let i = idx as usize;
    if v.len() <= i {
        v.resize_with(i + 1, || None);
    }
    &mut v[i]
}

fn not_found(what: String) -> OpError {
    OpError::NotFound { what }
}

// ===== impl Forwarder: tables =====

impl Forwarder {
    /// Empty tables sized by `cfg`.
    pub fn new(cfg: ForwarderCfg) -> Self {
        Forwarder::new_advised(cfg, |_| {})
    }

    /// The forwarder with its flow table allocated but its index not yet
    /// written (see [`Forwarder::new_advised`]).
    pub(crate) fn unfilled(cfg: ForwarderCfg) -> Self {
        let seed = cfg.hash_seed;
        Forwarder {
            flows: FlowTable::unfilled(seed, cfg.flow_capacity),
            cfg,
            vifs: Vec::new(),
            nhs: Vec::new(),
            vrfs: Vec::new(),
            labels: Vec::new(),
            vnis: fast_map(seed, 0),
            neighbors: fast_map(seed, 0),
            arp_pending: fast_map(seed, 0),
            frags: crate::frag::Frags::new(seed),
            reasm: crate::reasm::Reassembler::new(Default::default(), seed),
            tx_queue: VecDeque::new(),
            drops: [0; DROP_REASONS],
            punts: [0; PUNT_REASONS],
            now: Duration::ZERO,
            ip_ident: 0,
            gen: 0,
            tmpls: Vec::new(),
            fast_path_on: true,
            fast_hits: 0,
        }
    }

    /// The configuration.
    pub fn cfg(&self) -> &ForwarderCfg {
        &self.cfg
    }

    /// Apply one table operation. An [`Op::AddFlow`] returns the packets it
    /// released, already processed; the caller transmits them.
    pub fn apply(&mut self, op: Op) -> Result<Applied, OpError> {
        if !matches!(op, Op::AddFlow(_) | Op::DelFlow { .. } | Op::FlushFlows) {
            self.gen = self.gen.wrapping_add(1);
        }
        match op {
            Op::AddVif(vif) => {
                if vif.id.0 >= MAX_VIFS {
                    return Err(OpError::UnknownVif { vif: vif.id });
                }
                let s = slot(&mut self.vifs, vif.id.0);
                let stats = s.as_ref().map(|e| e.stats).unwrap_or_default();
                *s = Some(VifEntry { vif, stats });
            }
            Op::DelVif { vif } => {
                let s = self.vifs.get_mut(vif.0 as usize).and_then(Option::take);
                if s.is_none() {
                    return Err(OpError::UnknownVif { vif });
                }
                self.neighbors.retain(|k, _| k.vif() != vif);
            }
            Op::AddNexthop(nh) => {
                self.check_nexthop(&nh)?;
                *slot(&mut self.nhs, nh.id.0) = Some(nh.kind);
            }
            Op::DelNexthop { nh } => {
                if self
                    .nhs
                    .get_mut(nh.0 as usize)
                    .and_then(Option::take)
                    .is_none()
                {
                    return Err(OpError::UnknownNexthop { nh });
                }
            }
            Op::AddRoute { vrf, prefix, nh } => {
                self.check_nh_exists(nh)?;
                self.vrf_mut(vrf)?.add_route(prefix, nh);
            }
            Op::DelRoute { vrf, prefix } => {
                let removed = self.vrf_get_mut(vrf).and_then(|v| v.del_route(prefix));
                if removed.is_none() {
                    return Err(not_found(format!("route {prefix} in vrf {vrf}")));
                }
            }
            Op::AddBridge { vrf, mac, nh } => {
                self.check_nh_exists(nh)?;
                self.vrf_mut(vrf)?.bridge.insert(mac, nh);
            }
            Op::DelBridge { vrf, mac } => {
                let removed = self.vrf_get_mut(vrf).and_then(|v| v.bridge.remove(&mac));
                if removed.is_none() {
                    return Err(not_found(format!("bridge entry {mac} in vrf {vrf}")));
                }
            }
            Op::AddLabel { label, nh, payload } => {
                if label > MAX_LABEL {
                    return Err(OpError::LabelOutOfRange { label });
                }
                self.check_nh_exists(nh)?;
                *slot(&mut self.labels, label) = Some(LabelEntry { nh, payload });
            }
            Op::DelLabel { label } => {
                if self
                    .labels
                    .get_mut(label as usize)
                    .and_then(Option::take)
                    .is_none()
                {
                    return Err(not_found(format!("label {label}")));
                }
            }
            Op::AddVni { vni, vrf } => {
                if vni > MAX_VNI {
                    return Err(OpError::VniOutOfRange { vni });
                }
                self.vrf_mut(vrf)?;
                self.vnis.insert(vni, vrf);
            }
            Op::DelVni { vni } => {
                if self.vnis.remove(&vni).is_none() {
                    return Err(not_found(format!("vni {vni}")));
                }
            }
            Op::AddNeighbor { vif, ip, mac } => {
                self.check_fabric_vif(vif, NhId(0))?;
                self.neighbors.insert(
                    NeighborKey::new(vif, ip),
                    Neighbor {
                        mac,
                        learned: false,
                    },
                );
            }
            Op::DelNeighbor { vif, ip } => {
                if self.neighbors.remove(&NeighborKey::new(vif, ip)).is_none() {
                    return Err(not_found(format!("neighbor {ip} on vif {vif}")));
                }
            }
            Op::AddFlow(spec) => return self.install_flow(spec),
            Op::DelFlow { key } => {
                let idx = self
                    .flows
                    .find(&key)
                    .ok_or_else(|| not_found(format!("flow {key:?}")))?;
                self.flows.remove_pair(idx);
            }
            Op::FlushFlows => self.flows.clear(),
        }
        Ok(Applied::default())
    }

    fn check_nh_exists(&self, nh: NhId) -> Result<&NexthopKind, OpError> {
        self.nhs
            .get(nh.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(OpError::UnknownNexthop { nh })
    }

    fn check_fabric_vif(&self, vif: VifId, nh: NhId) -> Result<(), OpError> {
        match self.vifs.get(vif.0 as usize).and_then(Option::as_ref) {
            None => Err(OpError::UnknownVif { vif }),
            Some(e) if e.vif.kind != VifKind::Fabric => Err(OpError::NotFabric { nh, vif }),
            Some(_) => Ok(()),
        }
    }

    fn check_nexthop(&self, nh: &Nexthop) -> Result<(), OpError> {
        if nh.id.0 >= MAX_NEXTHOPS {
            return Err(OpError::UnknownNexthop { nh: nh.id });
        }
        match &nh.kind {
            NexthopKind::Discard | NexthopKind::Receive => Ok(()),
            NexthopKind::Encap { vif, .. } => {
                if self
                    .vifs
                    .get(vif.0 as usize)
                    .and_then(Option::as_ref)
                    .is_none()
                {
                    return Err(OpError::UnknownVif { vif: *vif });
                }
                Ok(())
            }
            NexthopKind::Tunnel { vif, encap, .. } => {
                self.check_fabric_vif(*vif, nh.id)?;
                match encap {
                    TunnelEncap::MplsOverUdp { label } | TunnelEncap::MplsOverGre { label }
                        if *label > MAX_LABEL =>
                    {
                        Err(OpError::LabelOutOfRange { label: *label })
                    }
                    TunnelEncap::Vxlan { vni } if *vni > MAX_VNI => {
                        Err(OpError::VniOutOfRange { vni: *vni })
                    }
                    _ => Ok(()),
                }
            }
            NexthopKind::Ecmp { members } | NexthopKind::Flood { members } => {
                for m in members {
                    if *m == nh.id {
                        return Err(OpError::NestedComposite {
                            nh: nh.id,
                            member: *m,
                        });
                    }
                    match self.check_nh_exists(*m)? {
                        NexthopKind::Ecmp { .. } | NexthopKind::Flood { .. } => {
                            return Err(OpError::NestedComposite {
                                nh: nh.id,
                                member: *m,
                            })
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
        }
    }

    fn vrf_mut(&mut self, vrf: VrfId) -> Result<&mut Vrf, OpError> {
        if vrf.0 >= MAX_VRFS {
            return Err(not_found(format!("vrf {vrf} (max {MAX_VRFS})")));
        }
        let seed = self.cfg.hash_seed;
        Ok(slot(&mut self.vrfs, vrf.0).get_or_insert_with(|| Vrf::new(seed)))
    }

    fn vrf_get_mut(&mut self, vrf: VrfId) -> Option<&mut Vrf> {
        self.vrfs.get_mut(vrf.0 as usize).and_then(Option::as_mut)
    }

    /// Install both directions of a flow verdict and release held packets.
    fn install_flow(&mut self, spec: FlowSpec) -> Result<Applied, OpError> {
        let key = spec.key;
        if let FlowAction::Nat(n) = &spec.action {
            let fam = key.src.is_ipv4();
            if n.src_ip.is_some_and(|a| a.is_ipv4() != fam)
                || n.dst_ip.is_some_and(|a| a.is_ipv4() != fam)
            {
                return Err(OpError::NatFamily { key });
            }
        }
        let rkey = reverse_key(&key, &spec.action);
        let raction = spec
            .reverse_action
            .unwrap_or_else(|| reverse_action(&key, &spec.action));
        // Entries that already exist (HOLD, or an older verdict) are replaced
        // in place; each key is looked up once.
        let fi = self.flows.find(&key);
        let ri = if rkey == key {
            fi
        } else {
            self.flows.find(&rkey)
        };
        let needed = 2 - usize::from(fi.is_some()) - usize::from(ri.is_some());
        if self.flows.len() + needed > self.flows.capacity() {
            return Err(OpError::FlowTableFull {
                capacity: self.flows.capacity(),
                key,
            });
        }
        let mut held = match fi.and_then(|i| self.flows.get_mut(i)) {
            Some(e) => std::mem::take(&mut e.held),
            None => Vec::new(),
        };
        if rkey != key {
            if let Some(e) = ri.and_then(|i| self.flows.get_mut(i)) {
                held.append(&mut e.held);
            }
        }
        let now = self.now;
        let fwd = self.upsert_flow(fi, key, spec.action, spec.mirror, now);
        let rev = if rkey == key {
            fwd
        } else {
            self.upsert_flow(ri, rkey, raction, spec.mirror, now)
        };
        if let Some(e) = self.flows.get_mut(fwd) {
            e.reverse = Some(rev);
        }
        if let Some(e) = self.flows.get_mut(rev) {
            e.reverse = Some(fwd);
        }
        let mut applied = Applied {
            released: Vec::with_capacity(held.len()),
        };
        for h in held {
            let mut buf = h.buf;
            let verdict = self.process(now, h.vif_in, &mut buf, h.meta);
            applied.released.push(Released {
                vif_in: h.vif_in,
                buf,
                verdict,
            });
        }
        Ok(applied)
    }

    /// Set the verdict of entry `found` (the index of `key`, if it exists)
    /// or insert a new Active entry.
    fn upsert_flow(
        &mut self,
        found: Option<u32>,
        key: FlowKey,
        action: FlowAction,
        mirror: Option<NhId>,
        now: Duration,
    ) -> u32 {
        if let Some(i) = found {
            if let Some(e) = self.flows.get_mut(i) {
                e.set_verdict(Some(action), mirror);
                e.touch(now);
            }
            return i;
        }
        let entry = FlowEntry::new(key, Some(action), mirror, now, Vec::new());
        // Capacity was checked by the caller.
        self.flows.insert(entry).unwrap_or(u32::MAX)
    }

    /// Age out idle flows (and HOLD flows the agent never answered) as of
    /// `now`; returns how many entries were removed. Call periodically.
    pub fn age_flows(&mut self, now: Duration) -> usize {
        self.now = self.now.max(now);
        self.arp_pending
            .retain(|_, t| now.saturating_sub(*t) < Duration::from_secs(60));
        self.expire_frags(now);
        self.expire_reasm(now);
        self.flows
            .age(now, self.cfg.flow_timeout, self.cfg.hold_timeout)
    }

    /// Next frame the forwarder itself originates (ARP requests for fabric
    /// neighbours). Poll after each batch of [`Forwarder::process`] calls
    /// until it returns None.
    pub fn poll_transmit(&mut self) -> Option<Tx> {
        self.tx_queue.pop_front()
    }

    /// Number of routes over all VRFs.
    pub fn route_count(&self) -> usize {
        self.vrfs.iter().flatten().map(Vrf::route_count).sum()
    }

    /// Number of flow entries.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Count a drop (the pipeline's single exit for drops).
    #[inline]
    pub(crate) fn drop_pkt(&mut self, vif_in: VifId, reason: DropReason) -> Verdict {
        self.drops[reason as usize] += 1;
        if let Some(Some(e)) = self.vifs.get_mut(vif_in.0 as usize) {
            e.stats.drops += 1;
        }
        Verdict::Drop(reason)
    }

    // ===== dumps =====

    /// Interfaces with counters (`vif --list`).
    pub fn dump_interfaces(&self) -> Vec<VifDump> {
        self.vifs
            .iter()
            .flatten()
            .map(|e| VifDump {
                vif: e.vif.clone(),
                stats: e.stats,
            })
            .collect()
    }

    /// Nexthops (`nh --list`).
    pub fn dump_nexthops(&self) -> Vec<Nexthop> {
        self.nhs
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                k.as_ref().map(|k| Nexthop {
                    id: NhId(i as u32),
                    kind: k.clone(),
                })
            })
            .collect()
    }

    /// Routes and bridge entries of every VRF (`rt --dump`), sorted.
    pub fn dump_routes(&self) -> Vec<RouteDump> {
        let mut out = Vec::new();
        for (i, v) in self.vrfs.iter().enumerate() {
            let Some(v) = v else { continue };
            let vrf = VrfId(i as u32);
            let mut routes: Vec<RouteDump> =
                v.v4.iter()
                    .filter_map(|(a, l, nh)| {
                        ipnet::Ipv4Net::new(Ipv4Addr::from(a), l)
                            .ok()
                            .map(|p| RouteDump {
                                vrf,
                                prefix: Some(p.into()),
                                mac: None,
                                nh,
                            })
                    })
                    .chain(v.v6.iter().filter_map(|(a, l, nh)| {
                        ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(a), l)
                            .ok()
                            .map(|p| RouteDump {
                                vrf,
                                prefix: Some(p.into()),
                                mac: None,
                                nh,
                            })
                    }))
                    .collect();
            routes.sort_by_key(|r| r.prefix);
            let mut macs: Vec<RouteDump> = v
                .bridge
                .iter()
                .map(|(m, nh)| RouteDump {
                    vrf,
                    prefix: None,
                    mac: Some(*m),
                    nh: *nh,
                })
                .collect();
            macs.sort_by_key(|r| r.mac);
            out.extend(routes);
            out.extend(macs);
        }
        out
    }

    /// MPLS label and VNI tables.
    pub fn dump_labels(&self) -> LabelsDump {
        let labels = self
            .labels
            .iter()
            .enumerate()
            .filter_map(|(l, e)| {
                e.map(|e| LabelDump {
                    label: l as u32,
                    nh: e.nh,
                    payload: e.payload,
                })
            })
            .collect();
        let mut vnis: Vec<VniDump> = self
            .vnis
            .iter()
            .map(|(v, r)| VniDump { vni: *v, vrf: *r })
            .collect();
        vnis.sort_by_key(|v| v.vni);
        LabelsDump { labels, vnis }
    }

    /// Fabric neighbours.
    pub fn dump_neighbors(&self) -> Vec<NeighborDump> {
        let mut out: Vec<NeighborDump> = self
            .neighbors
            .iter()
            .map(|(k, n)| NeighborDump {
                vif: k.vif(),
                ip: k.ip(),
                mac: n.mac,
                learned: n.learned,
            })
            .collect();
        out.sort_by_key(|n| (n.vif, n.ip));
        out
    }

    /// Flow entries (`flow -l`).
    pub fn dump_flows(&self) -> Vec<FlowDump> {
        self.flows.dump(self.now)
    }

    /// Drop (and punt) counters per reason (`dropstats`).
    pub fn dropstats(&self) -> DropStats {
        let mut s = DropStats::default();
        for (r, n) in ALL_DROPS.iter().zip(self.drops.iter()) {
            if *n > 0 {
                s.drops.insert(*r, *n);
                s.total += n;
            }
        }
        for (r, n) in ALL_PUNTS.iter().zip(self.punts.iter()) {
            if *n > 0 {
                s.punts.insert(*r, *n);
            }
        }
        s.flow_table = FlowTableStats {
            entries: self.flows.len() as u64,
            capacity: self.flows.capacity() as u64,
        };
        let r = self.reasm.counters();
        s.reassembly = ReasmStats {
            fragments: r.fragments,
            datagrams: r.datagrams,
            host: r.host,
            pending: self.reasm.pending() as u64,
            held_bytes: self.reasm.held_bytes() as u64,
        };
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_tables_follow_the_enum_order() {
        for (i, r) in ALL_DROPS.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
        for (i, r) in ALL_PUNTS.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
    }
}
