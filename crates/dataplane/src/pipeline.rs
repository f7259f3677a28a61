//! The per-packet pipeline, `Forwarder::process` (TF dp-core/vr_datapath.c,
//! vr_bridge.c, vr_flow.c, vr_mpls.c in one place):
//!
//! ```text
//!  workload vif ──> ARP? punt ─ DHCP? punt
//!       │  dst MAC == 00:00:5e:00:01:00 ?
//!       ├─ yes: L3 ─ flow stage (policy vifs) ─ FIB LPM ─ nexthop ─┬─ Encap: L2 rewrite ─> vif
//!       │                                                          ├─ Tunnel: MPLSoUDP/GRE (inner IP) / VXLAN ─> fabric
//!       │                                                          └─ Receive: punt / Discard: drop
//!       └─ no:  L2 ─ flow stage (IP on policy vifs) ─ MAC table (miss: ff:ff.. flood entry)
//!                  ─ Encap ─> vif unchanged / Tunnel: MPLS (inner Ethernet) / VXLAN / Flood: copies
//!  fabric vif ──> to our fabric IP and MPLSoUDP / MPLSoGRE / VXLAN ?  no: Host (the kernel has it)
//!       ├─ an outer fragment (UDP / GRE) to our fabric IP: held until whole (reasm.rs), then on
//!       ├─ MPLS: label table ─> nexthop (L3 label: inner IP; L2 label: inner Ethernet)
//!       └─ VXLAN: VNI table ─> VRF ─> inner dst MAC gateway? L3 : L2   (never back to the fabric)
//! ```

use std::time::Duration;

use filament_wire_pkt::{ethernet, ip_proto, ports};

use crate::buf::PacketBuf;
use crate::dump::*;
use crate::encap::{self, IpInfo, Outer, Overlay};
use crate::flow::{FlowEntry, HeldPkt};
use crate::forwarder::{Forwarder, NeighborKey};
use crate::frag::FragStep;
use crate::mtu::Stop;
use crate::types::*;

/// Per-packet context.
pub(crate) struct Ctx {
    pub(crate) vif_in: VifId,
    pub(crate) from_fabric: bool,
    /// Input vif has POLICY_ENABLED.
    pub(crate) policy_in: bool,
    /// Absolute buffer offset of the frame as received (for hold / punt).
    pub(crate) orig: usize,
    pub(crate) meta: RxMeta,
    /// Copy of the received frame for a mirror nexthop.
    pub(crate) mirror: Option<(NhId, Vec<u8>)>,
    /// Source MAC of the received frame (where an ICMP error about it goes).
    pub(crate) src_mac: MacAddr,
}

/// A nexthop resolved to what the output stage needs (ECMP member chosen).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Out {
    Encap {
        vif: VifId,
        dst_mac: MacAddr,
        src_mac: MacAddr,
    },
    Tunnel {
        /// The tunnel nexthop (the ECMP member), key of its header template.
        nh: NhId,
        vif: VifId,
        src_ip: std::net::Ipv4Addr,
        dst_ip: std::net::Ipv4Addr,
        encap: TunnelEncap,
    },
    Flood(NhId),
    Receive,
    Discard,
}

/// Result of the flow stage.
pub(crate) enum FlowStep {
    /// Go on, in this VRF (NAT may change it), with this flow entry.
    Continue {
        vrf: VrfId,
        flow: Option<u32>,
        nat: bool,
    },
    /// Stop with this verdict (held, punted).
    Done(Verdict),
}

pub(crate) type Step<T> = Result<T, DropReason>;
/// The forwarding stages' result: a verdict, or why the packet stops (a drop, or too big for
/// the fabric with the room the sender is told about, `mtu.rs`).
pub(crate) type Fwd<T> = Result<T, Stop>;

impl Forwarder {
    /// Run one frame received on `vif_in` through the pipeline. The buffer
    /// is rewritten in place (encapsulation, L2 rewrite, NAT, checksum
    /// completion); the verdict says what to do with it. Never panics.
    #[inline]
    pub fn process(
        &mut self,
        now: Duration,
        vif_in: VifId,
        buf: &mut PacketBuf,
        meta: RxMeta,
    ) -> Verdict {
        self.process_hashed(now, vif_in, buf, meta, None)
    }

    /// [`Forwarder::process`], with the flow hash of the frame's IPv4 key
    /// when the caller computed it already (`process_batch`).
    #[inline(always)]
    pub(crate) fn process_hashed(
        &mut self,
        now: Duration,
        vif_in: VifId,
        buf: &mut PacketBuf,
        meta: RxMeta,
        hash: Option<u32>,
    ) -> Verdict {
        if self.fast_path_on {
            if let Some(v) = self.fast_path(now, vif_in, buf, meta, hash) {
                return v;
            }
        }
        self.process_general(now, vif_in, buf, meta)
    }

    /// Everything but the fast path (kept out of line, so the fast path's
    /// callers do not pay for its stack frame).
    #[inline(never)]
    fn process_general(
        &mut self,
        now: Duration,
        vif_in: VifId,
        buf: &mut PacketBuf,
        meta: RxMeta,
    ) -> Verdict {
        self.now = self.now.max(now);
        let len = buf.len() as u64;
        let Some(Some(vin)) = self.vifs.get_mut(vif_in.0 as usize) else {
            return self.drop_pkt(vif_in, DropReason::UnknownVif);
        };
        vin.stats.rx_packets += 1;
        vin.stats.rx_bytes += len;
        let kind = vin.vif.kind;
        let mut ctx = Ctx {
            vif_in,
            from_fabric: kind == VifKind::Fabric,
            policy_in: vin.vif.policy,
            orig: buf.headroom(),
            meta,
            mirror: None,
            src_mac: MacAddr::default(),
        };
        let res = if ctx.from_fabric {
            self.fabric_rx::<true>(&mut ctx, buf)
        } else {
            self.workload_rx(&mut ctx, buf)
        };
        let verdict = match res {
            Ok(v) => v,
            Err(stop) => {
                if let (Stop::TooBig { room }, false) = (stop, ctx.from_fabric) {
                    // The sender is told the size that fits (`mtu.rs`).
                    self.icmp_too_big(&ctx, buf, room);
                }
                let v = self.drop_pkt(vif_in, stop.reason());
                self.release_frags(now);
                return v;
            }
        };
        let verdict = match ctx.mirror.take() {
            Some((nh, frame)) => self.add_mirror(verdict, buf, nh, frame),
            None => verdict,
        };
        match &verdict {
            Verdict::Transmit(out) => self.count_tx(*out, buf.len()),
            Verdict::Replicate(txs) => {
                for t in txs {
                    self.count_tx(t.vif, t.frame.len());
                }
            }
            Verdict::Punt { reason, .. } => self.punts[*reason as usize] += 1,
            _ => {}
        }
        self.release_frags(now);
        verdict
    }

    /// Later fragments that arrived before the first one just processed go out after it
    /// (`frag.rs`).
    #[inline(always)]
    fn release_frags(&mut self, now: Duration) {
        if self.frags.has_ready() {
            self.process_ready_frags(now);
        }
    }

    fn count_tx(&mut self, vif: VifId, len: usize) {
        if let Some(Some(e)) = self.vifs.get_mut(vif.0 as usize) {
            e.stats.tx_packets += 1;
            e.stats.tx_bytes += len as u64;
        }
    }

    // ===== ingress =====

    fn workload_rx(&mut self, ctx: &mut Ctx, buf: &mut PacketBuf) -> Fwd<Verdict> {
        let (vrf, vif_mac) = match self.vifs.get(ctx.vif_in.0 as usize) {
            Some(Some(e)) => (e.vif.vrf, e.vif.mac),
            _ => return Err(DropReason::UnknownVif.into()),
        };
        let frame = buf.frame();
        let eth = ethernet::Frame::new_checked(frame).map_err(|_| DropReason::Truncated)?;
        let ethertype = eth.ethertype();
        let dst = MacAddr(eth.dst());
        ctx.src_mac = MacAddr(eth.src());
        let vrf = vrf.ok_or(DropReason::NoVrf)?;
        if ethertype == ethernet::ethertype::ARP {
            if let Some(reply) = self.arp_proxy(frame, ctx.vif_in, vrf, vif_mac) {
                // No agent (`ForwarderCfg::arp_proxy`): answered here, as ND is (`nd.rs`).
                buf.load(&reply);
                return Ok(Verdict::Transmit(ctx.vif_in));
            }
            // tf-facts §5.7: ARP from a VM is answered by the agent's proxy.
            return Ok(Verdict::Punt {
                reason: PuntReason::Arp,
                key: None,
            });
        }
        let ip = match ethertype {
            ethernet::ethertype::IPV4 | ethernet::ethertype::IPV6 => {
                let (info, total) = encap::parse_ip(frame, ethernet::HEADER_LEN)?;
                if info.proto == ip_proto::UDP
                    && !info.later_fragment
                    && matches!(info.dport, ports::DHCP_SERVER | 547)
                {
                    return Ok(Verdict::Punt {
                        reason: PuntReason::Dhcp,
                        key: None,
                    });
                }
                let nd = info.v6 && info.proto == ip_proto::ICMPV6;
                if let Some(na) = nd
                    .then(|| self.nd_proxy(frame, &info, ctx.vif_in, vrf, vif_mac))
                    .flatten()
                {
                    // RFC 4861 Neighbor Solicitation for a routed address: answered here.
                    buf.load(&na);
                    return Ok(Verdict::Transmit(ctx.vif_in));
                }
                buf.truncate(ethernet::HEADER_LEN + total);
                if ctx.meta.csum_partial {
                    encap::complete_l4_checksum(buf.frame_mut(), &info);
                }
                Some(info)
            }
            ethernet::ethertype::VLAN => return Err(DropReason::Unsupported.into()),
            _ => None,
        };
        if dst == GATEWAY_MAC || dst == vif_mac {
            let mut info = ip.ok_or(DropReason::Unsupported)?;
            buf.pull_front(ethernet::HEADER_LEN);
            info.shift(ethernet::HEADER_LEN);
            self.l3_forward(ctx, buf, vrf, info, None)
        } else {
            self.l2_forward(ctx, buf, vrf, ip)
        }
    }

    /// `REASM`: an outer fragment is reassembled (false: for the reassembled datagram, which
    /// is no fragment; a separate copy, so the received frame's stays inlined).
    fn fabric_rx<const REASM: bool>(&mut self, ctx: &mut Ctx, buf: &mut PacketBuf) -> Fwd<Verdict> {
        let our_ip = match self.vifs.get(ctx.vif_in.0 as usize) {
            Some(Some(e)) => match e.vif.ip {
                Some(std::net::IpAddr::V4(a)) => Some(a),
                _ => None,
            },
            _ => None,
        };
        let frame = buf.frame();
        let Ok(eth) = ethernet::Frame::new_checked(frame) else {
            return Ok(Verdict::Host);
        };
        match eth.ethertype() {
            ethernet::ethertype::ARP => {
                encap::learn_arp(self, ctx.vif_in, frame);
                return Ok(Verdict::Host);
            }
            ethernet::ethertype::IPV4 => {}
            _ => return Ok(Verdict::Host),
        }
        match encap::classify_fabric(frame, our_ip)? {
            Overlay::NotOurs => Ok(Verdict::Host),
            Overlay::Fragment if REASM => self.fabric_fragment(ctx, buf),
            Overlay::Fragment => Ok(Verdict::Host),
            Overlay::Mpls(off) => {
                let m = encap::parse_mpls(frame, off)?;
                if !m.bottom {
                    return Err(DropReason::Unsupported.into());
                }
                let entry = self
                    .labels
                    .get(m.label as usize)
                    .copied()
                    .flatten()
                    .ok_or(DropReason::UnknownLabel)?;
                buf.pull_front(off + 4);
                match entry.payload {
                    LabelPayload::Ip => {
                        let (info, total) = encap::parse_ip(buf.frame(), 0)?;
                        buf.truncate(total);
                        let vrf = self.nh_vrf(entry.nh).unwrap_or_default();
                        self.l3_forward(ctx, buf, vrf, info, Some(entry.nh))
                    }
                    LabelPayload::Ethernet => {
                        if !buf.pull_front(encap::L2_CONTROL_WORD_LEN) {
                            return Err(DropReason::Truncated.into());
                        }
                        let vrf = self.nh_vrf(entry.nh).unwrap_or_default();
                        let ip = self.inner_ip(buf)?;
                        self.l2_output_nh(ctx, buf, vrf, ip, entry.nh)
                    }
                }
            }
            Overlay::Vxlan(off) => {
                let vni = encap::parse_vxlan(frame, off)?;
                let vrf = *self.vnis.get(&vni).ok_or(DropReason::UnknownVni)?;
                buf.pull_front(off + 8);
                let eth =
                    ethernet::Frame::new_checked(buf.frame()).map_err(|_| DropReason::Truncated)?;
                let dst = MacAddr(eth.dst());
                let ip = self.inner_ip(buf)?;
                if dst == GATEWAY_MAC {
                    let mut info = ip.ok_or(DropReason::Unsupported)?;
                    buf.pull_front(ethernet::HEADER_LEN);
                    info.shift(ethernet::HEADER_LEN);
                    self.l3_forward(ctx, buf, vrf, info, None)
                } else {
                    self.l2_forward(ctx, buf, vrf, ip)
                }
            }
        }
    }

    /// An outer fragment to our fabric IP: held until its datagram is whole, which then goes
    /// through the fabric stage in its place (`reasm.rs`).
    #[cold]
    #[inline(never)]
    fn fabric_fragment(&mut self, ctx: &mut Ctx, buf: &mut PacketBuf) -> Fwd<Verdict> {
        if !self.reassemble(ctx.vif_in, buf)? {
            return Ok(Verdict::Held);
        }
        ctx.orig = buf.headroom();
        let v = self.fabric_rx::<false>(ctx, buf)?;
        if v == Verdict::Host {
            self.reasm.count_host();
        }
        Ok(v)
    }

    /// Parse the IP packet inside an inner Ethernet frame (None: not IP).
    fn inner_ip(&self, buf: &mut PacketBuf) -> Step<Option<IpInfo>> {
        let frame = buf.frame();
        let eth = ethernet::Frame::new_checked(frame).map_err(|_| DropReason::Truncated)?;
        match eth.ethertype() {
            ethernet::ethertype::IPV4 | ethernet::ethertype::IPV6 => {
                let (info, total) = encap::parse_ip(frame, ethernet::HEADER_LEN)?;
                buf.truncate(ethernet::HEADER_LEN + total);
                Ok(Some(info))
            }
            _ => Ok(None),
        }
    }

    /// VRF of the interface an Encap nexthop points at.
    fn nh_vrf(&self, nh: NhId) -> Option<VrfId> {
        match self.nhs.get(nh.0 as usize)?.as_ref()? {
            NexthopKind::Encap { vif, .. } => self.vifs.get(vif.0 as usize)?.as_ref()?.vif.vrf,
            _ => None,
        }
    }

    pub(crate) fn vif_policy(&self, vif: VifId) -> bool {
        matches!(self.vifs.get(vif.0 as usize), Some(Some(e)) if e.vif.policy)
    }

    // ===== flow stage =====

    pub(crate) fn flow_stage(
        &mut self,
        ctx: &mut Ctx,
        buf: &mut PacketBuf,
        key: FlowKey,
        info: &mut IpInfo,
    ) -> Step<FlowStep> {
        let now = self.now;
        // TF vr_fragment.c: a flow is identified by the first fragment's ports; later
        // fragments (no L4 header) find them by (VRF, addresses, protocol, IP id), or wait in
        // a queue for their first fragment (`frag.rs`).
        let key = match info.frag_id {
            Some(id) => {
                let (vif_in, meta) = (ctx.vif_in, ctx.meta);
                let pkt = || HeldPkt {
                    vif_in,
                    buf: PacketBuf::from_frame(buf.bytes_from(ctx.orig)),
                    meta,
                };
                match self.frag_step(key.vrf, info, id, pkt)? {
                    FragStep::Queued => return Ok(FlowStep::Done(Verdict::Held)),
                    FragStep::Ports(sport, dport) => {
                        (info.sport, info.dport) = (sport, dport);
                        FlowKey {
                            sport,
                            dport,
                            ..key
                        }
                    }
                }
            }
            None => key,
        };
        let len = buf.len() as u64;
        let hold_max = self.cfg.hold_max;
        // An ICMP error counts in (and follows) the flow of the packet it quotes (`errflow.rs`).
        let quoted = match info.proto {
            ip_proto::ICMP | ip_proto::ICMPV6 if !info.icmp_echo => {
                self.icmp_error_flow(buf.frame(), info, key.vrf)
            }
            _ => None,
        };
        let key = quoted.unwrap_or(key);
        match self.flows.find(&key) {
            Some(i) => {
                let Some(e) = self.flows.get_mut(i) else {
                    return Err(DropReason::FlowLimit);
                };
                match (e.state, e.action) {
                    // Awaiting the verdict: queue up to hold_max packets.
                    (FlowState::Hold, _) | (_, None) => {
                        if e.held.len() >= hold_max {
                            return Err(DropReason::FlowHoldLimit);
                        }
                        e.held.push(HeldPkt {
                            vif_in: ctx.vif_in,
                            buf: PacketBuf::from_frame(buf.bytes_from(ctx.orig)),
                            meta: ctx.meta,
                        });
                        Ok(FlowStep::Done(Verdict::Held))
                    }
                    (FlowState::Active, Some(action)) => {
                        e.packets += 1;
                        e.bytes += len;
                        e.touch(now);
                        if let Some(m) = e.mirror {
                            ctx.mirror = Some((m, buf.bytes_from(ctx.orig).to_vec()));
                        }
                        match action {
                            FlowAction::Drop => Err(DropReason::Policy),
                            FlowAction::Forward => Ok(FlowStep::Continue {
                                vrf: key.vrf,
                                flow: Some(i),
                                nat: false,
                            }),
                            FlowAction::Nat(rw) => {
                                if quoted.is_some() {
                                    // An ICMP error about the flow: translated back, quote too.
                                    crate::errflow::nat_icmp_error(buf.frame_mut(), info, &rw);
                                } else {
                                    encap::apply_nat(buf.frame_mut(), info, &rw);
                                }
                                let vrf = rw.dst_vrf.unwrap_or(key.vrf);
                                Ok(FlowStep::Continue {
                                    vrf,
                                    flow: Some(i),
                                    nat: true,
                                })
                            }
                        }
                    }
                }
            }
            None => {
                // tf-facts §5.5: "the flow is created in HOLD state and up to
                // 3 packets are queued"; the packet is trapped to the agent.
                let held = if hold_max > 0 {
                    let mut v = Vec::with_capacity(hold_max.min(4));
                    v.push(HeldPkt {
                        vif_in: ctx.vif_in,
                        buf: PacketBuf::from_frame(buf.bytes_from(ctx.orig)),
                        meta: ctx.meta,
                    });
                    v
                } else {
                    Vec::new()
                };
                let entry = FlowEntry::new(key, None, None, now, held);
                self.flows.insert(entry).ok_or(DropReason::FlowLimit)?;
                buf.rewind(ctx.orig);
                Ok(FlowStep::Done(Verdict::Punt {
                    reason: PuntReason::FlowMiss,
                    key: Some(key),
                }))
            }
        }
    }

    // ===== L3 =====

    /// Route an IP packet (the buffer starts at the IP header). `fixed_nh`:
    /// the nexthop of an MPLS label (no FIB lookup unless NAT changed the
    /// destination).
    fn l3_forward(
        &mut self,
        ctx: &mut Ctx,
        buf: &mut PacketBuf,
        vrf: VrfId,
        mut info: IpInfo,
        fixed_nh: Option<NhId>,
    ) -> Fwd<Verdict> {
        let mut vrf = vrf;
        let mut flow = None;
        if ctx.policy_in && !ctx.from_fabric {
            match self.flow_stage(ctx, buf, info.key(vrf), &mut info)? {
                FlowStep::Done(v) => return Ok(v),
                FlowStep::Continue {
                    vrf: v, flow: f, ..
                } => (vrf, flow) = (v, f),
            }
        }
        let lookup = |fwd: &Self, vrf: VrfId, info: &IpInfo| -> Step<NhId> {
            fwd.vrfs
                .get(vrf.0 as usize)
                .and_then(Option::as_ref)
                .and_then(|v| v.lookup(info.dst))
                .ok_or(DropReason::NoRoute)
        };
        let mut hash = encap::flow_hash(self.cfg.hash_seed, &info.key(vrf));
        let gen = self.gen;
        let cached = match (fixed_nh, flow) {
            (None, Some(i)) => self
                .flows
                .get(i)
                .and_then(|e| e.route_cache())
                .filter(|(g, _)| *g == gen),
            _ => None,
        };
        let mut out = match cached {
            Some((_, out)) => out,
            None => {
                let nh = match fixed_nh {
                    Some(n) => n,
                    None => lookup(self, vrf, &info)?,
                };
                let out = self.resolve(nh, hash, flow)?;
                if let (None, Some(e)) = (fixed_nh, flow.and_then(|i| self.flows.get_mut(i))) {
                    e.set_route_cache(gen, out);
                }
                out
            }
        };
        if ctx.from_fabric {
            // Egress policy: the destination interface needs a flow entry.
            if let Out::Encap { vif, .. } = out {
                if self.vif_policy(vif) {
                    let fvrf = self
                        .vifs
                        .get(vif.0 as usize)
                        .and_then(|e| e.as_ref())
                        .and_then(|e| e.vif.vrf)
                        .unwrap_or(vrf);
                    match self.flow_stage(ctx, buf, info.key(fvrf), &mut info)? {
                        FlowStep::Done(v) => return Ok(v),
                        FlowStep::Continue {
                            vrf: v,
                            flow: f,
                            nat: n,
                        } => {
                            flow = f;
                            if n {
                                let nh = lookup(self, v, &info)?;
                                hash = encap::flow_hash(self.cfg.hash_seed, &info.key(v));
                                out = self.resolve(nh, hash, flow)?;
                            }
                        }
                    }
                }
            }
        }
        match out {
            Out::Encap {
                vif,
                dst_mac,
                src_mac,
            } => {
                if !ctx.from_fabric && !encap::decrement_ttl(buf.frame_mut(), &info) {
                    return Err(DropReason::Ttl.into());
                }
                encap::push_ethernet(buf, dst_mac, src_mac, info.v6);
                Ok(Verdict::Transmit(vif))
            }
            Out::Tunnel {
                vif,
                src_ip,
                dst_ip,
                encap,
                ..
            } => {
                if ctx.from_fabric {
                    return Err(DropReason::Loop.into());
                }
                if !encap::decrement_ttl(buf.frame_mut(), &info) {
                    return Err(DropReason::Ttl.into());
                }
                if let TunnelEncap::Vxlan { .. } = encap {
                    // VXLAN carries Ethernet: address the remote IRB so the
                    // receiver routes it in the VNI's VRF.
                    encap::push_ethernet(buf, GATEWAY_MAC, GATEWAY_MAC, info.v6);
                }
                self.tunnel_out(buf, vif, src_ip, dst_ip, &encap, hash, flow, false)
            }
            Out::Receive => {
                buf.rewind(ctx.orig);
                Ok(Verdict::Punt {
                    reason: PuntReason::Receive,
                    key: Some(info.key(vrf)),
                })
            }
            Out::Discard => Err(DropReason::Discard.into()),
            Out::Flood(_) => Err(DropReason::InvalidNexthop.into()),
        }
    }

    /// Resolve a nexthop; ECMP picks a member by the flow's pinned index or
    /// the 5-tuple hash, and pins it in the flow.
    pub(crate) fn resolve(&mut self, nh: NhId, hash: u64, flow: Option<u32>) -> Step<Out> {
        let kind = self
            .nhs
            .get(nh.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(DropReason::InvalidNexthop)?;
        let member = match kind {
            NexthopKind::Ecmp { members } => {
                if members.is_empty() {
                    return Err(DropReason::InvalidNexthop);
                }
                let pinned = flow
                    .and_then(|i| self.flows.get(i))
                    .and_then(|e| e.ecmp_index)
                    .map(usize::from)
                    .filter(|i| *i < members.len());
                let idx = pinned.unwrap_or((hash % members.len() as u64) as usize);
                let m = members[idx];
                if pinned.is_none() {
                    if let Some(e) = flow.and_then(|i| self.flows.get_mut(i)) {
                        e.ecmp_index = u16::try_from(idx).ok();
                    }
                }
                m
            }
            _ => nh,
        };
        let kind = self
            .nhs
            .get(member.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(DropReason::InvalidNexthop)?;
        Ok(match kind {
            NexthopKind::Encap { vif, .. }
                if !matches!(self.vifs.get(vif.0 as usize), Some(Some(_))) =>
            {
                // The interface was deleted under the nexthop.
                return Err(DropReason::InvalidNexthop);
            }
            NexthopKind::Encap {
                vif,
                dst_mac,
                src_mac,
            } => Out::Encap {
                vif: *vif,
                dst_mac: *dst_mac,
                src_mac: *src_mac,
            },
            NexthopKind::Tunnel {
                vif,
                src_ip,
                dst_ip,
                encap,
            } => Out::Tunnel {
                nh: member,
                vif: *vif,
                src_ip: *src_ip,
                dst_ip: *dst_ip,
                encap: *encap,
            },
            NexthopKind::Flood { .. } => Out::Flood(member),
            NexthopKind::Receive => Out::Receive,
            NexthopKind::Discard => Out::Discard,
            NexthopKind::Ecmp { .. } => return Err(DropReason::InvalidNexthop),
        })
    }

    /// Encapsulate toward a remote fabric IP; a neighbour miss queues an ARP
    /// request (rate-limited) and drops.
    #[allow(clippy::too_many_arguments)] // the tunnel's fields, unpacked
    pub(crate) fn tunnel_out(
        &mut self,
        buf: &mut PacketBuf,
        vif: VifId,
        src_ip: std::net::Ipv4Addr,
        dst_ip: std::net::Ipv4Addr,
        encap: &TunnelEncap,
        hash: u64,
        flow: Option<u32>,
        l2: bool,
    ) -> Fwd<Verdict> {
        let (fmac, mtu) = match self.vifs.get(vif.0 as usize) {
            Some(Some(e)) => (e.vif.mac, e.vif.mtu),
            _ => return Err(DropReason::InvalidNexthop.into()),
        };
        let Some(n) = self.neighbors.get(&NeighborKey::new(vif, dst_ip)) else {
            let now = self.now;
            let last = self
                .arp_pending
                .get(&NeighborKey::new(vif, dst_ip))
                .copied();
            if last.is_none_or(|t| now.saturating_sub(t) >= self.cfg.arp_retry) {
                self.arp_pending.insert(NeighborKey::new(vif, dst_ip), now);
                self.tx_queue.push_back(Tx {
                    vif,
                    frame: encap::arp_request(fmac, src_ip, dst_ip),
                });
            }
            return Err(DropReason::NoNeighbor.into());
        };
        let entropy = encap::entropy_port(hash);
        if let Some(e) = flow.and_then(|i| self.flows.get_mut(i)) {
            e.udp_src_port = entropy;
        }
        self.ip_ident = self.ip_ident.wrapping_add(1);
        let o = Outer {
            src_mac: fmac,
            dst_mac: n.mac,
            src_ip,
            dst_ip,
            ident: self.ip_ident,
            entropy,
        };
        let inner_len = buf.len();
        encap::encapsulate(buf, encap, &o, l2);
        let max = usize::from(mtu) + ethernet::HEADER_LEN;
        if buf.len() > max {
            // Back to the inner payload (encapsulation only pushed headers in front of it).
            let over = buf.len() - inner_len;
            buf.pull_front(over);
            let room = max.saturating_sub(over);
            // The inner payload is an Ethernet frame (bridged, or routed over VXLAN) or the
            // bare IP packet (routed over MPLS).
            let eth = if l2 || matches!(encap, TunnelEncap::Vxlan { .. }) {
                ethernet::HEADER_LEN
            } else {
                0
            };
            if let Some(frags) = Self::fragments(buf.frame(), eth, room) {
                let mut txs = Vec::with_capacity(frags.len());
                for f in frags {
                    let mut b = PacketBuf::from_frame(&f);
                    match self.tunnel_out(&mut b, vif, src_ip, dst_ip, encap, hash, flow, l2)? {
                        Verdict::Transmit(v) => txs.push(Tx {
                            vif: v,
                            frame: b.to_vec(),
                        }),
                        _ => return Err(Stop::TooBig { room }),
                    }
                }
                return Ok(Verdict::Replicate(txs));
            }
            return Err(Stop::TooBig { room });
        }
        Ok(Verdict::Transmit(vif))
    }
}
