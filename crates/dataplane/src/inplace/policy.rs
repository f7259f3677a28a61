//! In-place processing on policy-enabled interfaces: the flow stage of the general pipeline
//! (`Forwarder::flow_stage`, TF dp-core/vr_flow.c) for packets whose flow entry is
//! installed, so a flow HIT is rewritten in its receive slot like a frame of an interface
//! without policy (tf-facts §5.5: a packet of a policy interface "is looked up in the flow
//! table ... [on a hit] the action is applied").
//!
//! Two routes in:
//!
//! * [`fast_in_slot`]: the flow-cached fast path's checks (`Forwarder::fast_plan`: routed
//!   IPv4 TCP/UDP, Active and Forward, no mirror, a route cache of this table generation)
//!   with its effects applied in the slot instead of a `PacketBuf`;
//! * [`flow_hit`]: the flow stage for everything else the in-place planner handles (bridged,
//!   IPv6, ICMP, a route cache not yet filled, and the egress policy of frames from the
//!   fabric to a policy interface). An Active entry without mirror applies in place: Forward
//!   goes on; NAT is rewritten (`encap::apply_nat`, the general path's own rewrite) and
//!   routed by its rewritten destination; Drop is dropped (counted as `DropReason::Policy`).
//!
//! A miss (the packet must be held and punted), a HOLD entry, a mirror, or a later fragment
//! return `None`: the general pipeline runs on a copy, exactly as before.

use std::time::Duration;

use filament_wire_pkt::{ethernet, ip_proto, ipv4};

use super::{SlotFrame, ETH};
use crate::encap::{self, IpInfo};
use crate::fastpath::{self, FastOut, TMPL_MAX};
use crate::forwarder::Forwarder;
use crate::pipeline::Out;
use crate::types::*;
use crate::FlowState;

/// A flow hit of the flow stage: entry `idx` counts one packet of `bytes` (the buffer's length
/// where the general pipeline runs the flow stage: the IP packet when routed, the Ethernet
/// frame when bridged).
#[derive(Debug, Clone, Copy)]
pub(super) struct FlowHit {
    pub(super) idx: u32,
    pub(super) bytes: u64,
    /// Routed from a workload: `l3_forward` caches the resolved output in the entry.
    pub(super) cache: Option<Out>,
    /// A NAT verdict: the rewrite to apply is `InPlace::nat` (kept out of the plan, which is
    /// moved around: a small plan is cheaper).
    pub(super) nat: bool,
}

/// A NAT rewrite to apply in the slot: the IP packet's `info` has offsets relative to `at`
/// (absolute in the slot).
#[derive(Debug, Clone, Copy)]
pub(super) struct NatHit {
    pub(super) rw: NatRewrite,
    pub(super) info: IpInfo,
    pub(super) at: usize,
}

/// What the flow stage does with a packet of key `info.key(vrf)`.
pub(super) enum FlowVerdict {
    /// Active, Forward, no mirror: go on.
    Forward(FlowHit),
    /// Active, Drop, no mirror: count and drop (`DropReason::Policy`).
    Drop(FlowHit),
    /// Active, NAT, no mirror: rewrite, then go on with the rewritten addresses.
    Nat(FlowHit, NatRewrite),
}

/// The flow stage's verdict for a packet with a usable installed entry; `None` (read only)
/// for a miss, HOLD, a mirror or a later fragment: the general path's business.
pub(super) fn flow_hit(
    fwd: &Forwarder,
    info: &IpInfo,
    vrf: VrfId,
    bytes: usize,
) -> Option<FlowVerdict> {
    // Fragments: flow_stage keeps the first one's ports for the later ones (fragment table),
    // which only the general path does.
    if info.later_fragment || info.frag_id.is_some() {
        return None;
    }
    // ICMP errors are looked up by the flow they quote (`errflow.rs`): the general path's.
    if matches!(info.proto, ip_proto::ICMP | ip_proto::ICMPV6) && !info.icmp_echo {
        return None;
    }
    let idx = fwd.flows.find(&info.key(vrf))?;
    let e = fwd.flows.get(idx)?;
    let hit = FlowHit {
        idx,
        bytes: bytes as u64,
        cache: None,
        nat: false,
    };
    match (e.state, e.action, e.mirror) {
        (FlowState::Active, Some(FlowAction::Forward), None) => Some(FlowVerdict::Forward(hit)),
        (FlowState::Active, Some(FlowAction::Drop), None) => Some(FlowVerdict::Drop(hit)),
        (FlowState::Active, Some(FlowAction::Nat(rw)), None) => Some(FlowVerdict::Nat(hit, rw)),
        _ => None,
    }
}

/// `info` as `encap::apply_nat` leaves it after rewriting with `rw` (what the general path
/// routes and hashes by), computed without touching the packet.
pub(super) fn nat_info(info: &IpInfo, rw: &NatRewrite) -> IpInfo {
    let mut i = *info;
    if let Some(a) = rw.src_ip {
        i.src = a;
    }
    if let Some(a) = rw.dst_ip {
        i.dst = a;
    }
    if !i.later_fragment {
        match i.proto {
            ip_proto::TCP | ip_proto::UDP => {
                if let Some(p) = rw.src_port {
                    i.sport = p;
                }
                if let Some(p) = rw.dst_port {
                    i.dport = p;
                }
            }
            _ if i.icmp_echo => {
                if let Some(p) = rw.src_port.or(rw.dst_port) {
                    i.sport = p;
                    i.dport = p;
                }
            }
            _ => {}
        }
    }
    i
}

/// Rewrite the packet in `mem` as NAT hit `n` says.
pub(super) fn apply_nat(mem: &mut [u8], n: &NatHit) {
    if let Some(region) = mem.get_mut(n.at..) {
        let mut info = n.info;
        encap::apply_nat(region, &mut info, &n.rw);
    }
}

/// The flow stage's effects for a hit (counters, last use, the route cache of a routed
/// workload packet) and, for a tunnel, `tunnel_out`'s entropy port.
pub(super) fn count_hit(fwd: &mut Forwarder, hit: &FlowHit, entropy: Option<u16>) {
    let (now, gen) = (fwd.now, fwd.gen);
    if let Some(e) = fwd.flows.get_mut(hit.idx) {
        e.packets += 1;
        e.bytes += hit.bytes;
        e.touch(now);
        if let Some(out) = hit.cache {
            e.set_route_cache(gen, out);
        }
        if let Some(p) = entropy {
            e.udp_src_port = p;
        }
    }
}

/// `Forwarder::fast_plan` for `slot`'s frame from policy workload vif `vif_in`, applied in the
/// slot (`Forwarder::fast_apply`'s effects in its order: input counters, L4 checksum
/// completion, truncation, flow counters, TTL, rewrite, output counters). `None`: the fast
/// path does not apply or the slot lacks headroom for the tunnel headers; nothing changed.
#[inline(always)]
pub(super) fn fast_in_slot(
    fwd: &mut Forwarder,
    now: Duration,
    vif_in: VifId,
    slot: &mut SlotFrame<'_>,
    meta: RxMeta,
) -> Option<Verdict> {
    let plan = fwd.fast_plan(vif_in, slot.frame(), None)?;
    let start = slot.start;
    if let FastOut::Tunnel { len, .. } = plan.out {
        if start + ETH < len {
            return None;
        }
    }
    fwd.now = fwd.now.max(now);
    if let Some(Some(vin)) = fwd.vifs.get_mut(vif_in.0 as usize) {
        vin.stats.rx_packets += 1;
        vin.stats.rx_bytes += slot.len as u64;
    }
    let mem = &mut *slot.mem;
    if meta.csum_partial {
        if let Some(frame) = mem.get_mut(start..start + slot.len) {
            if let Ok((info, _)) = encap::parse_ip(frame, ETH) {
                encap::complete_l4_checksum(frame, &info);
            }
        }
    }
    let total = plan.total;
    let now = fwd.now;
    if let Some(e) = fwd.flows.get_mut(plan.flow) {
        e.packets += 1;
        e.bytes += total as u64;
        e.touch(now);
    }
    if let Some(h) = mem.get_mut(start + ETH..start + ETH + ipv4::HEADER_LEN) {
        fastpath::decrement_ttl(h);
    }
    let (out, new_start, new_len) = match plan.out {
        FastOut::Encap {
            vif,
            dst_mac,
            src_mac,
        } => {
            // The routed frame's new Ethernet header takes the place of the received one.
            if let Some(e) = mem.get_mut(start..start + ETH) {
                e[..6].copy_from_slice(&dst_mac.0);
                e[6..12].copy_from_slice(&src_mac.0);
                e[12..].copy_from_slice(&ethernet::ethertype::IPV4.to_be_bytes());
            }
            (vif, start, ETH + total)
        }
        FastOut::Tunnel { nh, vif, .. } => {
            fwd.ip_ident = fwd.ip_ident.wrapping_add(1);
            let ident = fwd.ip_ident;
            let inner_at = start + ETH;
            let Some(Some(t)) = fwd.tmpls.get(nh.0 as usize) else {
                // Unreachable: the plan found it.
                return Some(fwd.drop_pkt(vif_in, DropReason::InvalidNexthop));
            };
            let ns = inner_at - t.len;
            if let (Some(h), Some(src)) = (mem.get_mut(ns..inner_at), t.hdr.get(TMPL_MAX - t.len..))
            {
                h.copy_from_slice(src);
                fastpath::patch_tunnel(h, t, total, ident, plan.entropy);
            }
            (vif, ns, t.len + total)
        }
    };
    slot.start = new_start;
    slot.len = new_len;
    if let Some(Some(e)) = fwd.vifs.get_mut(out.0 as usize) {
        e.stats.tx_packets += 1;
        e.stats.tx_bytes += new_len as u64;
    }
    Some(Verdict::Transmit(out))
}
