//! In-place processing: run a frame through the forwarder where it lies (an I/O shell's receive
//! slot, e.g. an AF_PACKET ring block or an AF_XDP UMEM frame) instead of copying it into a
//! [`PacketBuf`] first, so the shell copies it once, into the transmit slot (the role of
//! TF's DPDK vRouter working on the `rte_mbuf` it received, headroom included).
//!
//! [`InPlace::process`] covers the packets that dominate a host's traffic on interfaces without
//! policy (tf-facts §5.3: "no policy -> fast path without flow lookup"):
//!
//! * workload -> routed (to the gateway / vif MAC) IPv4 or IPv6 -> FIB -> a tunnel nexthop
//!   (MPLSoUDP, MPLSoGRE, VXLAN with the inner Ethernet header of a routed packet) or an Encap
//!   nexthop (local workload);
//! * fabric -> MPLS (over UDP or GRE) with an IP label -> its Encap nexthop, and
//!   fabric -> VXLAN to the gateway MAC -> FIB of the VNI's VRF -> an Encap nexthop.
//!
//! On interfaces with policy (the agent's default, TF's POLICY_ENABLED) the same paths are
//! taken for packets whose flow entry is installed: a flow HIT (Active, no mirror) is counted
//! in its entry and forwarded in place, a NAT hit rewritten in place and routed by its new
//! destination, and a hit on a Drop entry dropped in place (`policy.rs`; the routed IPv4
//! TCP/UDP case through the flow-cached fast path's checks), on the workload side and for
//! the egress policy of frames from the fabric.
//!
//! Everything else — flow misses (held and punted), HOLD entries, mirroring, ARP, DHCP,
//! flooding, ECMP members, drops of other kinds, a neighbour miss, a slot with too little
//! headroom — returns `None` after READING only: the forwarder and the frame are
//! untouched, and the shell runs the general [`Forwarder::process`] on a copy. When it
//! returns `Some`, the effects are exactly the general pipeline's (same verdict, bytes out,
//! vif, flow and drop counters, same IPv4 identification sequence): the differential tests
//! (`inplace/tests.rs`, `inplace/policy_tests.rs`) compare both on the same frames.
//!
//! Headroom: the output may start before the received frame (encapsulation adds up to 50
//! bytes net: outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14, minus the
//! received Ethernet header 14). The slot must have that much room in front of the frame.

use std::net::IpAddr;
use std::time::Duration;

use filament_wire_pkt::{checksum, ethernet, ip_proto, ipv4, mpls, ports, vxlan};

use crate::buf::PacketBuf;
use crate::encap::{self, IpInfo, Outer, Overlay};
use crate::forwarder::{Forwarder, NeighborKey};
use crate::inplace::policy::{FlowHit, FlowVerdict, NatHit};
use crate::pipeline::Out;
use crate::types::*;

const ETH: usize = ethernet::HEADER_LEN;

/// A frame lying in a caller's buffer: `mem[start..start + len]`, with `start` bytes of
/// headroom in front of it.
#[derive(Debug)]
pub struct SlotFrame<'a> {
    /// The whole slot (headroom, frame, tailroom).
    pub mem: &'a mut [u8],
    /// Offset of the frame in `mem`.
    pub start: usize,
    /// Frame length.
    pub len: usize,
}

impl SlotFrame<'_> {
    /// The frame.
    pub fn frame(&self) -> &[u8] {
        self.mem
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }
}

/// What the checks decided, applied once they all passed. Offsets are absolute (in the slot);
/// `info` offsets are relative to the received frame's start (as `workload_rx` has them).
enum Plan {
    /// Workload frame (truncated to `ETH + total`) to a tunnel: routed (the IP packet is the
    /// inner payload, TTL decremented; VXLAN adds an inner Ethernet header to the gateway MAC)
    /// or bridged (the Ethernet frame is the inner payload).
    Tunnel {
        info: IpInfo,
        total: usize,
        vif: VifId,
        /// Index of the header template in `InPlace::tmpls`.
        tmpl: usize,
        entropy: u16,
        routed: bool,
        flow: Option<FlowHit>,
    },
    /// Routed to a local workload: a new Ethernet header in front of the IP packet at `ip_at`
    /// (`total` bytes). From a workload, `info` is set: checksum completion and TTL.
    Encap {
        info: Option<IpInfo>,
        v6: bool,
        ip_at: usize,
        total: usize,
        vif: VifId,
        dst_mac: MacAddr,
        src_mac: MacAddr,
        flow: Option<FlowHit>,
    },
    /// Bridged to a local workload unchanged: the frame at `at`, `len` bytes. From a workload,
    /// `info` is set: checksum completion.
    Bridge {
        info: Option<IpInfo>,
        at: usize,
        len: usize,
        vif: VifId,
        flow: Option<FlowHit>,
    },
    /// A hit on a Drop flow entry: counted there, dropped (`DropReason::Policy`).
    Drop(FlowHit),
}

/// Longest header a template holds: outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 + inner
/// Ethernet 14 = 64 (MPLS with a control word: 14 + 20 + 8 + 4 + 4 = 50).
const TMPL_MAX: usize = 64;

/// The outer headers of one tunnel nexthop (routed or bridged payload), built by
/// `encap::encapsulate` around an empty payload, valid for one table generation (neighbour
/// MACs, nexthops and interfaces all bump it). Per packet only the lengths, the IPv4
/// identification and checksum and the UDP source port change.
#[derive(Debug, Clone)]
struct Tmpl {
    gen: u64,
    nh: NhId,
    routed: bool,
    /// Largest frame the fabric vif sends: MTU + Ethernet header.
    max_frame: usize,
    len: usize,
    /// UDP-based (MPLSoUDP, VXLAN): patch the UDP length and source port.
    udp: bool,
    /// Ends with the inner Ethernet header of a routed packet over VXLAN: its ethertype
    /// follows the packet's IP version.
    inner_eth: bool,
    /// IPv4 total length and UDP length for an empty payload.
    ip_total: u16,
    udp_len: u16,
    /// One's-complement sum of the outer IPv4 header with the total length, identification
    /// and checksum taken as zero (RFC 1071 §2(3): the sum may be updated in any order).
    ip_sum: u32,
    hdr: [u8; TMPL_MAX],
}

/// Reusable state of in-place processing (one per run loop): header templates per tunnel
/// nexthop, and a scratch buffer where they are built by the pipeline's encapsulation code.
#[derive(Debug, Default)]
pub struct InPlace {
    scratch: PacketBuf,
    tmpls: Vec<Option<Tmpl>>,
    /// Frames of policy-enabled flows handled here (flow hits forwarded or dropped).
    flow_hits: u64,
    /// The NAT rewrite of the plan being applied (when its `FlowHit::nat` is set).
    nat: Option<NatHit>,
}

impl InPlace {
    /// A fresh context.
    pub fn new() -> Self {
        Self {
            scratch: PacketBuf::with_capacity(128),
            tmpls: Vec::new(),
            flow_hits: 0,
            nat: None,
        }
    }

    /// Frames handled here that went through the flow stage (policy-enabled interfaces,
    /// either side): flow hits forwarded or dropped in place.
    pub fn flow_hits(&self) -> u64 {
        self.flow_hits
    }

    /// The template of tunnel nexthop `out` for a routed or bridged payload (built when
    /// missing or stale); its index, or `None` when the fabric vif or neighbour is missing.
    fn tmpl(&mut self, fwd: &Forwarder, out: &Out, routed: bool) -> Option<usize> {
        let Out::Tunnel {
            nh,
            vif,
            src_ip,
            dst_ip,
            encap: tenc,
        } = *out
        else {
            return None;
        };
        let i = (nh.0 as usize).checked_mul(2)? + usize::from(routed);
        if let Some(Some(t)) = self.tmpls.get(i) {
            if t.gen == fwd.gen && t.nh == nh && t.routed == routed {
                return Some(i);
            }
        }
        let e = fwd.vifs.get(vif.0 as usize)?.as_ref()?;
        let n = fwd.neighbors.get(&NeighborKey::new(vif, dst_ip))?;
        let b = &mut self.scratch;
        b.load(&[]);
        let inner_eth = routed && matches!(tenc, TunnelEncap::Vxlan { .. });
        if inner_eth {
            // As l3_forward: routed packets over VXLAN go to the remote IRB.
            encap::push_ethernet(b, GATEWAY_MAC, GATEWAY_MAC, false);
        }
        let o = Outer {
            src_mac: e.vif.mac,
            dst_mac: n.mac,
            src_ip,
            dst_ip,
            ident: 0,
            entropy: 0,
        };
        encap::encapsulate(b, &tenc, &o, !routed);
        let f = b.frame_mut();
        let len = f.len();
        let udp = !matches!(tenc, TunnelEncap::MplsOverGre { .. });
        let at16 = |f: &[u8], at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
        let (ip_total, udp_len) = (at16(f, ETH + 2), at16(f, UDP_AT + 4));
        for at in [ETH + 2, ETH + 4, ETH + 10] {
            f[at..at + 2].fill(0);
        }
        let mut hdr = [0u8; TMPL_MAX];
        hdr.get_mut(..len)?.copy_from_slice(f);
        let t = Tmpl {
            gen: fwd.gen,
            nh,
            routed,
            max_frame: usize::from(e.vif.mtu) + ETH,
            len,
            udp,
            inner_eth,
            ip_total,
            udp_len,
            ip_sum: checksum::sum(f.get(ETH..UDP_AT)?),
            hdr,
        };
        if self.tmpls.len() <= i {
            self.tmpls.resize_with(i + 1, || None);
        }
        *self.tmpls.get_mut(i)? = Some(t);
        Some(i)
    }

    /// Process `slot`'s frame, received on `vif_in`, in place. `Some(Verdict::Transmit(vif))`:
    /// transmit `slot.mem[slot.start..slot.start + slot.len]` (updated) on `vif`;
    /// `Some(Verdict::Drop(_))`: dropped (counted as the general pipeline does). `None`: not
    /// handled here and nothing was changed; run [`Forwarder::process`] on a copy.
    pub fn process(
        &mut self,
        fwd: &mut Forwarder,
        now: Duration,
        vif_in: VifId,
        slot: &mut SlotFrame<'_>,
        meta: RxMeta,
    ) -> Option<Verdict> {
        if slot.start.checked_add(slot.len)? > slot.mem.len() {
            return None;
        }
        let v = &fwd.vifs.get(vif_in.0 as usize)?.as_ref()?.vif;
        let (fabric, policy, ip, vrf, mac) =
            (v.kind == VifKind::Fabric, v.policy, v.ip, v.vrf, v.mac);
        let policy = policy && !fabric;
        if policy {
            // An established routed IPv4 flow with its route cached: the fast path's checks.
            if let Some(v) = policy::fast_in_slot(fwd, now, vif_in, slot, meta) {
                self.flow_hits += 1;
                return Some(v);
            }
        }
        let plan = if fabric {
            let our_ip = match ip {
                Some(IpAddr::V4(a)) => Some(a),
                _ => None,
            };
            fabric_plan(fwd, slot, vif_in, our_ip, &mut self.nat)?
        } else {
            self.workload_plan(fwd, slot, vif_in, vrf?, mac, policy)?
        };
        if matches!(
            plan,
            Plan::Drop(_)
                | Plan::Tunnel { flow: Some(_), .. }
                | Plan::Encap { flow: Some(_), .. }
                | Plan::Bridge { flow: Some(_), .. }
        ) {
            self.flow_hits += 1;
        }
        Some(self.apply(fwd, now, vif_in, slot, meta, plan))
    }

    /// Apply the pending NAT rewrite when `flow` is a NAT hit.
    fn nat_rewrite(&mut self, mem: &mut [u8], flow: Option<&FlowHit>) {
        if flow.is_some_and(|h| h.nat) {
            if let Some(n) = self.nat.take() {
                policy::apply_nat(mem, &n);
            }
        }
    }

    /// The effects, in the general pipeline's order.
    fn apply(
        &mut self,
        fwd: &mut Forwarder,
        now: Duration,
        vif_in: VifId,
        slot: &mut SlotFrame<'_>,
        meta: RxMeta,
        plan: Plan,
    ) -> Verdict {
        fwd.now = fwd.now.max(now);
        if let Some(Some(vin)) = fwd.vifs.get_mut(vif_in.0 as usize) {
            vin.stats.rx_packets += 1;
            vin.stats.rx_bytes += slot.len as u64;
        }
        let start = slot.start;
        let complete = |mem: &mut [u8], info: &IpInfo, total: usize| {
            if meta.csum_partial {
                if let Some(frame) = mem.get_mut(start..start + ETH + total) {
                    encap::complete_l4_checksum(frame, info);
                }
            }
        };
        let (out, new_start, new_len) = match plan {
            Plan::Tunnel {
                info,
                total,
                vif,
                tmpl,
                entropy,
                routed,
                flow,
            } => {
                if let Some(hit) = &flow {
                    policy::count_hit(fwd, hit, Some(entropy));
                }
                complete(slot.mem, &info, total);
                self.nat_rewrite(slot.mem, flow.as_ref());
                let (inner_at, inner_len) = if routed {
                    let mut ip_info = info;
                    ip_info.shift(ETH);
                    if let Some(ip) = slot.mem.get_mut(start + ETH..start + ETH + total) {
                        encap::decrement_ttl(ip, &ip_info);
                    }
                    (start + ETH, total)
                } else {
                    (start, ETH + total)
                };
                fwd.ip_ident = fwd.ip_ident.wrapping_add(1);
                let ident = fwd.ip_ident;
                let Some(Some(t)) = self.tmpls.get(tmpl) else {
                    // Unreachable: the plan found it.
                    return fwd.drop_pkt(vif_in, DropReason::InvalidNexthop);
                };
                let ns = inner_at - t.len;
                let h = &mut slot.mem[ns..inner_at];
                h.copy_from_slice(&t.hdr[..t.len]);
                // As ipv4::Repr::emit and udp::Repr::emit: lengths as u16.
                let ip_total = t.ip_total.wrapping_add(inner_len as u16);
                put16(h, ETH + 2, ip_total);
                put16(h, ETH + 4, ident);
                let c = !checksum::fold(t.ip_sum + u32::from(ip_total) + u32::from(ident));
                put16(h, ETH + 10, c);
                if t.inner_eth && info.v6 {
                    put16(h, t.len - 2, ethernet::ethertype::IPV6);
                }
                if t.udp {
                    put16(h, UDP_AT, entropy);
                    put16(h, UDP_AT + 4, t.udp_len.wrapping_add(inner_len as u16));
                }
                (vif, ns, t.len + inner_len)
            }
            Plan::Encap {
                info,
                v6,
                ip_at,
                total,
                vif,
                dst_mac,
                src_mac,
                flow,
            } => {
                if let Some(hit) = &flow {
                    policy::count_hit(fwd, hit, None);
                }
                if let Some(info) = info {
                    complete(slot.mem, &info, total);
                }
                self.nat_rewrite(slot.mem, flow.as_ref());
                if let Some(info) = info {
                    let mut ip_info = info;
                    ip_info.shift(ETH);
                    if let Some(ip) = slot.mem.get_mut(ip_at..ip_at + total) {
                        encap::decrement_ttl(ip, &ip_info);
                    }
                }
                let ns = ip_at - ETH;
                ethernet::Repr {
                    dst: dst_mac.0,
                    src: src_mac.0,
                    vlan_tci: None,
                    ethertype: if v6 {
                        ethernet::ethertype::IPV6
                    } else {
                        ethernet::ethertype::IPV4
                    },
                }
                .emit(&mut slot.mem[ns..ip_at]);
                (vif, ns, ETH + total)
            }
            Plan::Bridge {
                info,
                at,
                len,
                vif,
                flow,
            } => {
                if let Some(hit) = &flow {
                    policy::count_hit(fwd, hit, None);
                }
                if let Some(info) = info {
                    complete(slot.mem, &info, len - ETH);
                }
                self.nat_rewrite(slot.mem, flow.as_ref());
                (vif, at, len)
            }
            Plan::Drop(hit) => {
                // Nothing else of the general path before its flow stage is observable for a
                // dropped packet (truncation and checksum completion touch only the buffer).
                policy::count_hit(fwd, &hit, None);
                return fwd.drop_pkt(vif_in, DropReason::Policy);
            }
        };
        slot.start = new_start;
        slot.len = new_len;
        if let Some(Some(e)) = fwd.vifs.get_mut(out.0 as usize) {
            e.stats.tx_packets += 1;
            e.stats.tx_bytes += new_len as u64;
        }
        Verdict::Transmit(out)
    }
}

/// Resolve `nh` for a packet without a flow (no ECMP pinning: `resolve` has no side effects
/// then, and for a nexthop that is not ECMP the hash is not used); ECMP itself is left to the
/// general path.
fn resolve_plain(fwd: &mut Forwarder, nh: NhId) -> Option<Out> {
    if let Some(Some(NexthopKind::Ecmp { .. })) = fwd.nhs.get(nh.0 as usize) {
        return None;
    }
    fwd.resolve(nh, 0, None).ok()
}

/// Offset of the outer UDP header in a template.
const UDP_AT: usize = ETH + ipv4::HEADER_LEN;

#[inline]
fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// The unicast bridge entry of `dst` in `vrf` (multicast, broadcast and unknown unicast
/// flood: the general path).
fn bridge_nh(fwd: &Forwarder, vrf: VrfId, dst: MacAddr) -> Option<NhId> {
    if dst.is_multicast() {
        return None;
    }
    fwd.vrfs
        .get(vrf.0 as usize)?
        .as_ref()?
        .bridge
        .get(&dst)
        .copied()
}

impl InPlace {
    /// Workload side (`workload_rx` + `l3_forward` / `l2_forward` + `tunnel_out` of the general
    /// pipeline, their success paths for IP packets only).
    fn workload_plan(
        &mut self,
        fwd: &mut Forwarder,
        slot: &SlotFrame<'_>,
        vif_in: VifId,
        vrf: VrfId,
        vif_mac: MacAddr,
        policy: bool,
    ) -> Option<Plan> {
        let frame = slot.frame();
        let eth = ethernet::Frame::new_checked(frame).ok()?;
        let et = eth.ethertype();
        if et != ethernet::ethertype::IPV4 && et != ethernet::ethertype::IPV6 {
            return None;
        }
        let dst = MacAddr(eth.dst());
        let (info, total) = encap::parse_ip(frame, ETH).ok()?;
        if info.proto == ip_proto::UDP
            && !info.later_fragment
            && matches!(info.dport, ports::DHCP_SERVER | 547)
        {
            return None;
        }
        // ICMPv6 other than echo (neighbour discovery above all: the general path answers
        // solicitations for routed addresses itself, `nd.rs`).
        if info.proto == ip_proto::ICMPV6 && !info.icmp_echo {
            return None;
        }
        let routed = dst == GATEWAY_MAC || dst == vif_mac;
        // The flow stage comes first (l3_forward / l2_forward): a hit on a Drop entry drops
        // before any TTL or route check.
        // `rinfo` / `rvrf`: the packet's addresses and (routed) VRF after the flow stage.
        let (mut flow, mut rinfo, mut rvrf) = (None, info, vrf);
        if policy {
            let bytes = if routed { total } else { ETH + total };
            match policy::flow_hit(fwd, &info, vrf, bytes)? {
                FlowVerdict::Drop(hit) => return Some(Plan::Drop(hit)),
                FlowVerdict::Forward(hit) => flow = Some(hit),
                FlowVerdict::Nat(mut hit, rw) => {
                    rinfo = policy::nat_info(&info, &rw);
                    if routed {
                        // l3_forward goes on in the rewrite's VRF; l2_forward bridges in its own.
                        rvrf = rw.dst_vrf.unwrap_or(vrf);
                    }
                    self.nat = Some(NatHit {
                        rw,
                        info,
                        at: slot.start,
                    });
                    hit.nat = true;
                    flow = Some(hit);
                }
            }
        }
        let nh = if routed {
            // The hop limit must allow forwarding (else the general path drops with Ttl).
            let ttl_at = if info.v6 { ETH + 7 } else { ETH + 8 };
            if *frame.get(ttl_at)? <= 1 {
                return None;
            }
            fwd.vrfs.get(rvrf.0 as usize)?.as_ref()?.lookup(rinfo.dst)?
        } else {
            bridge_nh(fwd, vrf, dst)?
        };
        let out = resolve_plain(fwd, nh)?;
        if let (true, Some(hit)) = (routed, flow.as_mut()) {
            // l3_forward caches the route in the flow entry.
            hit.cache = Some(out);
        }
        match out {
            Out::Encap {
                vif,
                dst_mac,
                src_mac,
            } => Some(if routed {
                Plan::Encap {
                    info: Some(info),
                    v6: info.v6,
                    ip_at: slot.start + ETH,
                    total,
                    vif,
                    dst_mac,
                    src_mac,
                    flow,
                }
            } else {
                if vif == vif_in {
                    return None;
                }
                Plan::Bridge {
                    info: Some(info),
                    at: slot.start,
                    len: ETH + total,
                    vif,
                    flow,
                }
            }),
            out @ Out::Tunnel { vif, .. } => {
                let t = self.tmpl(fwd, &out, routed)?;
                let tm = self.tmpls.get(t)?.as_ref()?;
                // Routed: the received Ethernet header goes (VXLAN: another, in the template,
                // takes its place); bridged: the whole frame is the payload.
                let (room, inner) = if routed {
                    (slot.start + ETH, total)
                } else {
                    (slot.start, ETH + total)
                };
                if tm.len + inner > tm.max_frame || room < tm.len {
                    return None;
                }
                let hash = encap::flow_hash(fwd.cfg.hash_seed, &rinfo.key(rvrf));
                Some(Plan::Tunnel {
                    info,
                    total,
                    vif,
                    tmpl: t,
                    entropy: encap::entropy_port(hash),
                    routed,
                    flow,
                })
            }
            _ => None,
        }
    }
}

/// Fabric side (`fabric_rx` + `l3_forward` / `l2_forward` / `l2_output_nh` to an Encap
/// nexthop, success paths for IP payloads only).
fn fabric_plan(
    fwd: &mut Forwarder,
    slot: &SlotFrame<'_>,
    vif_in: VifId,
    our_ip: Option<std::net::Ipv4Addr>,
    nat: &mut Option<NatHit>,
) -> Option<Plan> {
    let frame = slot.frame();
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() != ethernet::ethertype::IPV4 {
        return None;
    }
    let nh_vrf = |fwd: &Forwarder, nh: NhId| {
        match fwd.nhs.get(nh.0 as usize).and_then(Option::as_ref) {
            Some(NexthopKind::Encap { vif, .. }) => fwd
                .vifs
                .get(vif.0 as usize)
                .and_then(|e| e.as_ref())
                .and_then(|e| e.vif.vrf),
            _ => None,
        }
        .unwrap_or_default()
    };
    // (payload offset, routed, vrf, nexthop if fixed by a label)
    let (off, routed, vrf, fixed) = match encap::classify_fabric(frame, our_ip).ok()? {
        Overlay::NotOurs | Overlay::Fragment => return None,
        Overlay::Mpls(off) => {
            let m = encap::parse_mpls(frame, off).ok()?;
            if !m.bottom {
                return None;
            }
            let entry = fwd.labels.get(m.label as usize).copied().flatten()?;
            let vrf = nh_vrf(fwd, entry.nh);
            match entry.payload {
                LabelPayload::Ip => (off + mpls::ENTRY_LEN, true, vrf, Some(entry.nh)),
                LabelPayload::Ethernet => (
                    off + mpls::ENTRY_LEN + encap::L2_CONTROL_WORD_LEN,
                    false,
                    vrf,
                    Some(entry.nh),
                ),
            }
        }
        Overlay::Vxlan(off) => {
            let vni = encap::parse_vxlan(frame, off).ok()?;
            let vrf = *fwd.vnis.get(&vni)?;
            (off + vxlan::HEADER_LEN, false, vrf, None)
        }
    };
    let payload = frame.get(off..)?;
    // Inner Ethernet (L2 payloads): an IP packet to the gateway MAC is routed.
    let (ip_off, routed, dst) = if routed {
        (off, true, None)
    } else {
        let ie = ethernet::Frame::new_checked(payload).ok()?;
        let et = ie.ethertype();
        if et != ethernet::ethertype::IPV4 && et != ethernet::ethertype::IPV6 {
            return None;
        }
        let dst = MacAddr(ie.dst());
        // Only VXLAN routes to the gateway MAC; an L2 label always bridges.
        (off + ETH, fixed.is_none() && dst == GATEWAY_MAC, Some(dst))
    };
    let (info, total) = encap::parse_ip(frame.get(ip_off..)?, 0).ok()?;
    let nh = match (fixed, routed, dst) {
        (Some(nh), _, _) => nh,
        (None, true, _) => fwd.vrfs.get(vrf.0 as usize)?.as_ref()?.lookup(info.dst)?,
        (None, false, Some(d)) => bridge_nh(fwd, vrf, d)?,
        (None, false, None) => return None,
    };
    let Out::Encap {
        mut vif,
        mut dst_mac,
        mut src_mac,
    } = resolve_plain(fwd, nh)?
    else {
        return None;
    };
    if vif == vif_in || ip_off < ETH {
        return None;
    }
    // Egress policy (l3_forward / l2_send): the destination interface's flow entry, keyed in
    // its VRF when routed, in the label's / VNI's VRF when bridged.
    let mut flow = None;
    if fwd.vif_policy(vif) {
        let (fvrf, bytes) = if routed {
            let dvrf = fwd
                .vifs
                .get(vif.0 as usize)
                .and_then(|e| e.as_ref())
                .and_then(|e| e.vif.vrf);
            (dvrf.unwrap_or(vrf), total)
        } else {
            (vrf, ETH + total)
        };
        match policy::flow_hit(fwd, &info, fvrf, bytes)? {
            FlowVerdict::Drop(hit) => return Some(Plan::Drop(hit)),
            FlowVerdict::Forward(hit) => flow = Some(hit),
            FlowVerdict::Nat(mut hit, rw) => {
                *nat = Some(NatHit {
                    rw,
                    info,
                    at: slot.start + ip_off,
                });
                hit.nat = true;
                if routed {
                    // l3_forward resolves the rewritten destination again, in the rewrite's
                    // VRF (a tunnel would be a loop back to the fabric: the general path).
                    let rinfo = policy::nat_info(&info, &rw);
                    let v = rw.dst_vrf.unwrap_or(fvrf);
                    let nh = fwd.vrfs.get(v.0 as usize)?.as_ref()?.lookup(rinfo.dst)?;
                    match resolve_plain(fwd, nh)? {
                        Out::Encap {
                            vif: v,
                            dst_mac: d,
                            src_mac: s,
                        } if v != vif_in => (vif, dst_mac, src_mac) = (v, d, s),
                        _ => return None,
                    }
                }
                flow = Some(hit);
            }
        }
    }
    Some(if routed {
        Plan::Encap {
            info: None,
            v6: info.v6,
            ip_at: slot.start + ip_off,
            total,
            vif,
            dst_mac,
            src_mac,
            flow,
        }
    } else {
        Plan::Bridge {
            info: None,
            at: slot.start + off,
            len: ETH + total,
            vif,
            flow,
        }
    })
}

mod policy;

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
