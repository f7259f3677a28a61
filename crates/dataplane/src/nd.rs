//! IPv6 neighbour discovery proxy (RFC 4861): a workload's Neighbor Solicitation for an
//! address the forwarder routes elsewhere is answered here, with the vif's MAC (the gateway
//! MAC 00:00:5e:00:01:00 by default), as TF's vRouter answers it in the data path
//! (`vr_neighbor_input` -> proxy reply with the vif MAC; tf-facts §5.1, §5.7 for the ARP
//! equivalent). The workload then sends its IPv6 traffic to that MAC and it is routed.
//!
//! Not answered (the solicitation goes on through the normal L2 path): DAD probes (unspecified
//! source), targets without a route in the VRF, and targets routed back to the soliciting
//! vif itself (its own address).
//!
//! ARP requests get the same answer here only with [`crate::ForwarderCfg::arp_proxy`] (a
//! forwarder without an agent, `filament vrouter run`); otherwise they are punted to the
//! agent, whose ARP proxy knows more (tf-facts §5.7).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use filament_wire_pkt::{arp, checksum, ethernet, icmp, ip_proto, ipv6};

use crate::encap::IpInfo;
use crate::forwarder::Forwarder;
use crate::types::*;

/// Neighbor Solicitation: ICMPv6 header (4) + reserved (4) + target (16).
const NS_LEN: usize = 24;
/// Neighbor Advertisement with one Target Link-Layer Address option (8).
const NA_LEN: usize = 24 + 8;
/// RFC 4861 §4.4 flags: Solicited (0x40) and Override (0x20) in the first byte.
const NA_FLAGS_S_O: u8 = 0x60;
/// RFC 4861 §4.6.1: option type 2 = Target Link-Layer Address, length 1 (8 bytes).
const OPT_TARGET_LLA: u8 = 2;

impl Forwarder {
    /// If `frame` (Ethernet, IPv6 at 14, parsed as `info`) is a Neighbor Solicitation the
    /// forwarder answers, the Neighbor Advertisement to send back on `vif_in`. Out of line:
    /// the caller checks for ICMPv6 first.
    #[cold]
    #[inline(never)]
    pub(crate) fn nd_proxy(
        &self,
        frame: &[u8],
        info: &IpInfo,
        vif_in: VifId,
        vrf: VrfId,
        vif_mac: MacAddr,
    ) -> Option<Vec<u8>> {
        if !info.v6 || info.proto != ip_proto::ICMPV6 || info.later_fragment {
            return None;
        }
        let ip = ipv6::Packet::new_checked(frame.get(ethernet::HEADER_LEN..)?).ok()?;
        let ns = frame.get(info.l4..info.l4 + info.l4_len)?;
        if ns.len() < NS_LEN || ns[0] != icmp::types::V6_NEIGHBOR_SOLICIT || ns[1] != 0 {
            return None;
        }
        // RFC 4861 §7.1.1: "A node MUST silently discard any received Neighbor Solicitation
        // messages that do not satisfy all of the following validity checks: - The IP Hop
        // Limit field has a value of 255. - The ICMP checksum is valid. - ICMP Code is 0. -
        // ICMP length (derived from the IP length) is 24 or more octets. - Target Address is
        // not a multicast address."
        if ip.hop_limit() != 255 {
            return None;
        }
        let (src, dst) = (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()));
        if checksum::l4_checksum(&src, &dst, ip_proto::ICMPV6, ns) != 0 {
            return None;
        }
        let mut t = [0u8; 16];
        t.copy_from_slice(&ns[8..24]);
        let target = Ipv6Addr::from(t);
        // DAD (unspecified source) is the workload checking its own address: not ours to answer.
        if target.is_multicast() || ip.src().is_unspecified() {
            return None;
        }
        if !self.proxied(IpAddr::V6(target), vif_in, vrf) {
            return None;
        }
        let eth = ethernet::Frame::new_checked(frame).ok()?;
        Some(neighbor_advert(
            vif_mac,
            MacAddr(eth.src()),
            target,
            ip.src(),
        ))
    }
}

impl Forwarder {
    /// `target` has a route in `vrf` that does not lead back to `vif_in`.
    fn proxied(&self, target: IpAddr, vif_in: VifId, vrf: VrfId) -> bool {
        let Some(nh) = self
            .vrfs
            .get(vrf.0 as usize)
            .and_then(Option::as_ref)
            .and_then(|v| v.lookup(target))
        else {
            return false;
        };
        !matches!(self.nhs.get(nh.0 as usize), Some(Some(NexthopKind::Encap { vif, .. })) if *vif == vif_in)
    }

    /// With `arp_proxy`: the ARP reply to a workload's request (RFC 826) for an address routed
    /// elsewhere, with the vif MAC. Gratuitous ARP (sender = target) is not answered.
    #[inline(never)]
    pub(crate) fn arp_proxy(
        &self,
        frame: &[u8],
        vif_in: VifId,
        vrf: VrfId,
        vif_mac: MacAddr,
    ) -> Option<Vec<u8>> {
        if !self.cfg.arp_proxy {
            return None;
        }
        let p = arp::Packet::new_checked(frame.get(ethernet::HEADER_LEN..)?).ok()?;
        let r = arp::Repr::parse(&p).ok()?;
        if r.operation != arp::op::REQUEST
            || r.sender_ip == r.target_ip
            || r.sender_ip == Ipv4Addr::UNSPECIFIED
            || !self.proxied(IpAddr::V4(r.target_ip), vif_in, vrf)
        {
            return None;
        }
        Some(crate::encap::arp_frame(
            arp::op::REPLY,
            r.sender_mac,
            (vif_mac.0, r.target_ip),
            (r.sender_mac, r.sender_ip),
        ))
    }
}

/// A solicited Neighbor Advertisement for `target` at `mac`, to `to` at `to_mac`.
fn neighbor_advert(mac: MacAddr, to_mac: MacAddr, target: Ipv6Addr, to: Ipv6Addr) -> Vec<u8> {
    let l3 = ethernet::HEADER_LEN;
    let l4 = l3 + ipv6::HEADER_LEN;
    let mut f = vec![0u8; l4 + NA_LEN];
    ethernet::Repr {
        dst: to_mac.0,
        src: mac.0,
        vlan_tci: None,
        ethertype: ethernet::ethertype::IPV6,
    }
    .emit(&mut f);
    // RFC 4861 §7.2.4: the advertisement's source is the target address; §4.4: "IP Fields:
    // ... Hop Limit 255".
    ipv6::Repr {
        src: target,
        dst: to,
        next_header: ip_proto::ICMPV6,
        payload_len: NA_LEN,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut f[l3..]);
    let na = &mut f[l4..];
    na[0] = icmp::types::V6_NEIGHBOR_ADVERT;
    na[4] = NA_FLAGS_S_O;
    na[8..24].copy_from_slice(&target.octets());
    na[24] = OPT_TARGET_LLA;
    na[25] = 1;
    na[26..32].copy_from_slice(&mac.0);
    let c = checksum::l4_checksum(&IpAddr::V6(target), &IpAddr::V6(to), ip_proto::ICMPV6, na);
    na[2..4].copy_from_slice(&c.to_be_bytes());
    f
}
