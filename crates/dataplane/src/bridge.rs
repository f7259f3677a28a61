//! The bridging half of the pipeline (TF dp-core/vr_bridge.c): MAC table
//! lookup with the ff:ff:ff:ff:ff:ff entry as the flood nexthop for
//! broadcast and unknown unicast, L2 output through Encap / Tunnel (MPLS L2
//! label with control word, VXLAN) nexthops, flooding with split horizon,
//! and mirror copies.

use filament_wire_pkt::ethernet;

use crate::buf::PacketBuf;
use crate::encap::{self, IpInfo};
use crate::forwarder::Forwarder;
use crate::pipeline::{Ctx, FlowStep, Fwd, Out};
use crate::types::*;

impl Forwarder {
    // ===== L2 =====

    /// Bridge a frame (the buffer starts at its Ethernet header) in `vrf`.
    pub(crate) fn l2_forward(
        &mut self,
        ctx: &mut Ctx,
        buf: &mut PacketBuf,
        vrf: VrfId,
        ip: Option<IpInfo>,
    ) -> Fwd<Verdict> {
        let mut flow = None;
        let mut ip = ip;
        if let Some(info) = ip.as_mut() {
            if ctx.policy_in && !ctx.from_fabric {
                match self.flow_stage(ctx, buf, info.key(vrf), info)? {
                    FlowStep::Done(v) => return Ok(v),
                    FlowStep::Continue { flow: f, .. } => flow = f,
                }
            }
        }
        let dst = ethernet::Frame::new_checked(buf.frame())
            .map(|f| MacAddr(f.dst()))
            .map_err(|_| DropReason::Truncated)?;
        let table = self
            .vrfs
            .get(vrf.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(DropReason::NoBridgeEntry)?;
        let nh = if dst.is_multicast() {
            None
        } else {
            table.bridge.get(&dst).copied()
        }
        .or_else(|| table.bridge.get(&MacAddr::BROADCAST).copied())
        .ok_or(DropReason::NoBridgeEntry)?;
        self.l2_send(ctx, buf, vrf, ip, nh, flow)
    }

    /// Output a bridged frame through a label's nexthop (MPLS L2 label).
    pub(crate) fn l2_output_nh(
        &mut self,
        ctx: &mut Ctx,
        buf: &mut PacketBuf,
        vrf: VrfId,
        ip: Option<IpInfo>,
        nh: NhId,
    ) -> Fwd<Verdict> {
        self.l2_send(ctx, buf, vrf, ip, nh, None)
    }

    fn l2_send(
        &mut self,
        ctx: &mut Ctx,
        buf: &mut PacketBuf,
        vrf: VrfId,
        ip: Option<IpInfo>,
        nh: NhId,
        flow: Option<u32>,
    ) -> Fwd<Verdict> {
        let hash = self.l2_hash(buf, vrf, ip.as_ref());
        match self.resolve(nh, hash, flow)? {
            Out::Encap { vif, .. } => {
                if vif == ctx.vif_in {
                    return Err(DropReason::Loop.into());
                }
                // Egress policy for bridged IP arriving from the fabric (the
                // sender's vrouter did the ingress side).
                if let (true, Some(mut info)) = (ctx.from_fabric && self.vif_policy(vif), ip) {
                    if let FlowStep::Done(v) =
                        self.flow_stage(ctx, buf, info.key(vrf), &mut info)?
                    {
                        return Ok(v);
                    }
                }
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
                self.tunnel_out(buf, vif, src_ip, dst_ip, &encap, hash, flow, true)
            }
            Out::Flood(f) => self.flood(ctx, buf, f, hash),
            Out::Receive => {
                buf.rewind(ctx.orig);
                Ok(Verdict::Punt {
                    reason: PuntReason::Receive,
                    key: None,
                })
            }
            Out::Discard => Err(DropReason::Discard.into()),
        }
    }

    fn l2_hash(&self, buf: &PacketBuf, vrf: VrfId, ip: Option<&IpInfo>) -> u64 {
        match ip {
            Some(i) => encap::flow_hash(self.cfg.hash_seed, &i.key(vrf)),
            None => {
                let f = buf.frame();
                let mut k = [0u8; 12];
                if let Some(m) = f.get(..12) {
                    k.copy_from_slice(m);
                }
                let a = u128::from_be_bytes([
                    0, 0, 0, 0, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10],
                    k[11],
                ]);
                let key = FlowKey {
                    vrf,
                    proto: 0,
                    src: std::net::IpAddr::V6(a.into()),
                    dst: std::net::IpAddr::V6(0u128.into()),
                    sport: 0,
                    dport: 0,
                };
                encap::flow_hash(self.cfg.hash_seed, &key)
            }
        }
    }

    /// Copies to every flood member except the input (and, for frames from
    /// the fabric, except other tunnels: split horizon).
    fn flood(
        &mut self,
        ctx: &mut Ctx,
        buf: &mut PacketBuf,
        flood_nh: NhId,
        hash: u64,
    ) -> Fwd<Verdict> {
        let members = match self.nhs.get(flood_nh.0 as usize).and_then(Option::as_ref) {
            Some(NexthopKind::Flood { members }) => members.clone(),
            _ => return Err(DropReason::InvalidNexthop.into()),
        };
        let frame = buf.to_vec();
        let mut txs = Vec::with_capacity(members.len());
        for m in members {
            match self.resolve(m, hash, None) {
                Ok(Out::Encap { vif, .. }) if vif != ctx.vif_in => txs.push(Tx {
                    vif,
                    frame: frame.clone(),
                }),
                Ok(Out::Tunnel {
                    vif,
                    src_ip,
                    dst_ip,
                    encap,
                    ..
                }) if !ctx.from_fabric => {
                    let mut copy = PacketBuf::from_frame(&frame);
                    match self.tunnel_out(&mut copy, vif, src_ip, dst_ip, &encap, hash, None, true)
                    {
                        // Fragments of a copy too big for the fabric (`mtu.rs`).
                        Ok(Verdict::Replicate(frags)) => txs.extend(frags),
                        Ok(_) => txs.push(Tx {
                            vif,
                            frame: copy.to_vec(),
                        }),
                        Err(s) => self.drops[s.reason() as usize] += 1,
                    }
                }
                _ => {}
            }
        }
        Ok(Verdict::Replicate(txs))
    }

    /// Add a mirror copy (the frame as received, sent through the mirror
    /// nexthop) to a forwarding verdict.
    pub(crate) fn add_mirror(
        &mut self,
        verdict: Verdict,
        buf: &PacketBuf,
        nh: NhId,
        frame: Vec<u8>,
    ) -> Verdict {
        let copy = match self.resolve(nh, 0, None) {
            Ok(Out::Encap { vif, .. }) => Some(Tx { vif, frame }),
            Ok(Out::Tunnel {
                vif,
                src_ip,
                dst_ip,
                encap,
                ..
            }) => {
                let mut b = PacketBuf::from_frame(&frame);
                // A mirror copy too big for the fabric is not mirrored (no fragments).
                match self.tunnel_out(&mut b, vif, src_ip, dst_ip, &encap, 0, None, true) {
                    Ok(Verdict::Transmit(_)) => Some(Tx {
                        vif,
                        frame: b.to_vec(),
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        match (verdict, copy) {
            (Verdict::Transmit(v), Some(c)) => Verdict::Replicate(vec![
                Tx {
                    vif: v,
                    frame: buf.to_vec(),
                },
                c,
            ]),
            (Verdict::Replicate(mut txs), Some(c)) => {
                txs.push(c);
                Verdict::Replicate(txs)
            }
            (v, _) => v,
        }
    }
}
