//! Packet rewriting helpers of the pipeline: IP parsing into the facts the
//! pipeline needs ([`IpInfo`]), overlay encapsulation (tf-facts §5.4:
//! MPLSoUDP to UDP 6635 with an entropy source port in 49152–65535,
//! MPLSoGRE with GRE protocol 0x8847, VXLAN to UDP 4789), NAT rewrites with
//! incremental checksum updates (RFC 1624), software completion of partial
//! L4 checksums, and the fabric ARP request.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr};

use filament_wire_pkt::{
    arp, checksum, ethernet, gre, icmp, ip_proto, ipv4, ipv6, mpls, ports, tcp, udp, vxlan,
};

use crate::buf::PacketBuf;
use crate::fib::SeededState;
use crate::forwarder::Forwarder;
use crate::types::{DropReason, FlowKey, MacAddr, NatRewrite, TunnelEncap, VifId, VrfId};

/// What the pipeline knows about an IP packet at `l3` in the current frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IpInfo {
    pub(crate) v6: bool,
    /// Offset of the IP header in the current frame.
    pub(crate) l3: usize,
    /// Offset of the L4 header.
    pub(crate) l4: usize,
    /// L4 length (bounded by the IP length field).
    pub(crate) l4_len: usize,
    pub(crate) proto: u8,
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    /// A fragment other than the first (no L4 header).
    pub(crate) later_fragment: bool,
    /// Fragment (first or later; IPv4, or IPv6 with a Fragment header): its identification
    /// (the fragment table's key, with the addresses and protocol).
    pub(crate) frag_id: Option<u32>,
    /// ICMP echo (ports are the identifier).
    pub(crate) icmp_echo: bool,
}

impl IpInfo {
    pub(crate) fn key(&self, vrf: VrfId) -> FlowKey {
        FlowKey {
            vrf,
            proto: self.proto,
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
        }
    }

    /// Offsets after `n` bytes were pulled from the front.
    pub(crate) fn shift(&mut self, n: usize) {
        self.l3 -= n;
        self.l4 -= n;
    }
}

fn wire_err(e: filament_wire_pkt::Error) -> DropReason {
    match e {
        filament_wire_pkt::Error::Truncated { .. } => DropReason::Truncated,
        _ => DropReason::Malformed,
    }
}

/// Parse the IP packet at `l3` of `frame` (the version nibble decides v4 or
/// v6) and its L4 ports. Returns the info and the IP packet's total length.
pub(crate) fn parse_ip(frame: &[u8], l3: usize) -> Result<(IpInfo, usize), DropReason> {
    let b = frame.get(l3..).ok_or(DropReason::Truncated)?;
    let first = *b.first().ok_or(DropReason::Truncated)?;
    // A first fragment (IPv4 MF set, offset 0) carries the L4 header but not all the data
    // the UDP Length field counts: only the header itself must be there.
    let mut first_fragment = false;
    let mut frag_id = None;
    let (v6, hl, total, proto, src, dst, later_fragment) = if first >> 4 == 4 {
        let p = ipv4::Packet::new_checked(b).map_err(wire_err)?;
        if !p.verify_checksum() {
            return Err(DropReason::Checksum);
        }
        // Flags and fragment offset in one word: MF 0x2000, offset 0x1fff.
        let ff = u16::from_be_bytes([b[6], b[7]]);
        first_fragment = ff & 0x3fff == 0x2000;
        if ff & 0x3fff != 0 {
            frag_id = Some(u32::from(p.ident()));
        }
        (
            false,
            p.header_len(),
            usize::from(p.total_len()),
            p.protocol(),
            IpAddr::V4(p.src()),
            IpAddr::V4(p.dst()),
            ff & 0x1fff != 0,
        )
    } else if first >> 4 == 6 {
        let p = ipv6::Packet::new_checked(b).map_err(wire_err)?;
        let total = ipv6::HEADER_LEN + usize::from(p.payload_len());
        let nh = p.next_header();
        if nh == ip_proto::IPV6_FRAG {
            // RFC 8200 §4.5 Fragment header: Next Header (1), Reserved (1), Fragment Offset
            // (13 bits) + Res (2) + M (1), Identification (4). The packet is then read as its
            // upper-layer protocol, which the first fragment carries after this header.
            let fh = b
                .get(ipv6::HEADER_LEN..ipv6::HEADER_LEN + 8)
                .ok_or(DropReason::Truncated)?;
            if total < ipv6::HEADER_LEN + 8 {
                return Err(DropReason::Malformed);
            }
            let off_m = u16::from_be_bytes([fh[2], fh[3]]);
            let later = off_m & 0xfff8 != 0;
            first_fragment = !later && off_m & 1 != 0;
            frag_id = Some(u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]));
            (
                true,
                ipv6::HEADER_LEN + 8,
                total,
                fh[0],
                IpAddr::V6(p.src()),
                IpAddr::V6(p.dst()),
                later,
            )
        } else {
            (
                true,
                ipv6::HEADER_LEN,
                total,
                nh,
                IpAddr::V6(p.src()),
                IpAddr::V6(p.dst()),
                false,
            )
        }
    } else {
        return Err(DropReason::Malformed);
    };
    let l4b = &b[hl..total];
    let mut info = IpInfo {
        v6,
        l3,
        l4: l3 + hl,
        l4_len: total - hl,
        proto,
        src,
        dst,
        sport: 0,
        dport: 0,
        later_fragment,
        frag_id,
        icmp_echo: false,
    };
    if !later_fragment {
        match proto {
            ip_proto::TCP => {
                let t = tcp::Packet::new_checked(l4b).map_err(wire_err)?;
                info.sport = t.src_port();
                info.dport = t.dst_port();
            }
            ip_proto::UDP if first_fragment => {
                if l4b.len() < udp::HEADER_LEN {
                    return Err(DropReason::Truncated);
                }
                let u = udp::Packet::new_unchecked(l4b);
                info.sport = u.src_port();
                info.dport = u.dst_port();
            }
            ip_proto::UDP => {
                let u = udp::Packet::new_checked(l4b).map_err(wire_err)?;
                info.sport = u.src_port();
                info.dport = u.dst_port();
            }
            ip_proto::ICMP | ip_proto::ICMPV6 => {
                let i = icmp::Packet::new_checked(l4b).map_err(wire_err)?;
                let echo = if v6 {
                    matches!(
                        i.msg_type(),
                        icmp::types::V6_ECHO_REQUEST | icmp::types::V6_ECHO_REPLY
                    )
                } else {
                    matches!(
                        i.msg_type(),
                        icmp::types::V4_ECHO_REQUEST | icmp::types::V4_ECHO_REPLY
                    )
                };
                if echo {
                    info.icmp_echo = true;
                    info.sport = i.echo_ident();
                    info.dport = i.echo_ident();
                }
            }
            _ => {}
        }
    }
    Ok((info, total))
}

/// Hash of a flow key with the forwarder's seed (ECMP member, entropy port).
#[inline]
pub(crate) fn flow_hash(seed: u64, key: &FlowKey) -> u64 {
    // The VRF is part of the key's hash; both directions of a flow still
    // hash independently (ECMP is pinned per direction in the flow).
    SeededState {
        seed: seed ^ 0x5bd1_e995,
    }
    .hash_one(key)
}

/// tf-facts §5.4: the outer UDP source port is "computed from a hash of the
/// inner flow into 49152–65535".
#[inline]
pub(crate) fn entropy_port(hash: u64) -> u16 {
    49152 | ((hash >> 16) as u16 & 0x3fff)
}

/// Recompute the TCP/UDP checksum from scratch (the packet arrived with
/// CHECKSUM_PARTIAL: the field held only the pseudo-header sum). Idempotent.
pub(crate) fn complete_l4_checksum(frame: &mut [u8], info: &IpInfo) {
    if info.later_fragment {
        return;
    }
    let Some(seg) = frame.get_mut(info.l4..info.l4 + info.l4_len) else {
        return;
    };
    match info.proto {
        ip_proto::TCP => {
            if let Ok(mut t) = tcp::Packet::new_checked(seg) {
                t.fill_checksum(&info.src, &info.dst);
            }
        }
        ip_proto::UDP => {
            if let Ok(mut u) = udp::Packet::new_checked(seg) {
                u.fill_checksum(&info.src, &info.dst);
            }
        }
        _ => {}
    }
}

/// Offset of the L4 checksum field for TCP/UDP/ICMP (None: no checksum or
/// UDP over IPv4 without one).
fn l4_csum_at(frame: &[u8], info: &IpInfo) -> Option<usize> {
    if info.later_fragment {
        return None;
    }
    match info.proto {
        ip_proto::TCP => Some(info.l4 + 16),
        ip_proto::UDP => {
            let at = info.l4 + 6;
            let c = frame.get(at..at + 2)?;
            // RFC 768: zero means no checksum (IPv4 only); keep it zero.
            (info.v6 || c != [0, 0]).then_some(at)
        }
        ip_proto::ICMP | ip_proto::ICMPV6 if info.icmp_echo => Some(info.l4 + 2),
        _ => None,
    }
}

fn get16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_be_bytes([s[0], s[1]]))
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// Apply a NAT rewrite to the packet and to `info`, patching the IPv4
/// header checksum and the L4 checksum incrementally (RFC 1624).
pub(crate) fn apply_nat(frame: &mut [u8], info: &mut IpInfo, rw: &NatRewrite) {
    let csum_at = l4_csum_at(frame, info);
    // The pseudo-header covers the addresses for TCP/UDP/ICMPv6, not ICMPv4.
    let pseudo = info.proto != ip_proto::ICMP;
    let mut l4c = csum_at.map(|at| get16(frame, at));
    let rewrite_addr =
        |frame: &mut [u8], at: usize, old: IpAddr, new: IpAddr, l4c: &mut Option<u16>| {
            match (old, new) {
                (IpAddr::V4(_), IpAddr::V4(n)) => {
                    if let Some(s) = frame.get_mut(at..at + 4) {
                        s.copy_from_slice(&n.octets());
                    }
                    let hc = checksum::update_addr(get16(frame, info.l3 + 10), &old, &new);
                    put16(frame, info.l3 + 10, hc);
                }
                (IpAddr::V6(_), IpAddr::V6(n)) => {
                    if let Some(s) = frame.get_mut(at..at + 16) {
                        s.copy_from_slice(&n.octets());
                    }
                }
                _ => return,
            }
            if pseudo {
                if let Some(c) = l4c.as_mut() {
                    *c = checksum::update_addr(*c, &old, &new);
                }
            }
        };
    let (src_at, dst_at) = if info.v6 {
        (info.l3 + 8, info.l3 + 24)
    } else {
        (info.l3 + 12, info.l3 + 16)
    };
    if let Some(n) = rw.src_ip {
        rewrite_addr(frame, src_at, info.src, n, &mut l4c);
        info.src = n;
    }
    if let Some(n) = rw.dst_ip {
        rewrite_addr(frame, dst_at, info.dst, n, &mut l4c);
        info.dst = n;
    }
    if !info.later_fragment {
        let set_port = |frame: &mut [u8], at: usize, new: u16, l4c: &mut Option<u16>| {
            let old = get16(frame, at);
            put16(frame, at, new);
            if let Some(c) = l4c.as_mut() {
                *c = checksum::update16(*c, old, new);
            }
        };
        match info.proto {
            ip_proto::TCP | ip_proto::UDP => {
                if let Some(p) = rw.src_port {
                    set_port(frame, info.l4, p, &mut l4c);
                    info.sport = p;
                }
                if let Some(p) = rw.dst_port {
                    set_port(frame, info.l4 + 2, p, &mut l4c);
                    info.dport = p;
                }
            }
            _ if info.icmp_echo => {
                if let Some(p) = rw.src_port.or(rw.dst_port) {
                    set_port(frame, info.l4 + 4, p, &mut l4c);
                    info.sport = p;
                    info.dport = p;
                }
            }
            _ => {}
        }
    }
    if let (Some(at), Some(c)) = (csum_at, l4c) {
        // A UDP checksum that computes to zero is sent as all ones.
        let c = if info.proto == ip_proto::UDP && c == 0 {
            0xffff
        } else {
            c
        };
        put16(frame, at, c);
    }
}

/// Decrement the TTL / hop limit of the IP packet at `info.l3`; false when
/// it would expire (TTL <= 1).
pub(crate) fn decrement_ttl(frame: &mut [u8], info: &IpInfo) -> bool {
    if info.v6 {
        let at = info.l3 + 7;
        match frame.get_mut(at) {
            Some(h) if *h > 1 => {
                *h -= 1;
                true
            }
            _ => false,
        }
    } else {
        let Some(b) = frame.get_mut(info.l3..info.l3 + ipv4::HEADER_LEN) else {
            return false;
        };
        if b[8] <= 1 {
            return false;
        }
        ipv4::Packet::new_unchecked(b).decrement_ttl();
        true
    }
}

/// Outer IPv4 header fields of a tunnel.
pub(crate) struct Outer {
    pub(crate) src_mac: MacAddr,
    pub(crate) dst_mac: MacAddr,
    pub(crate) src_ip: Ipv4Addr,
    pub(crate) dst_ip: Ipv4Addr,
    pub(crate) ident: u16,
    pub(crate) entropy: u16,
}

/// Length of the control word in front of an Ethernet frame carried over
/// MPLS (RFC 4448 §4.6; TF's vRouter adds a zero control word to L2
/// payloads, `VR_L2_CTRL_DATA`).
pub(crate) const L2_CONTROL_WORD_LEN: usize = 4;

/// Encapsulate the frame in `buf` (inner IP packet for MPLS L3, inner
/// Ethernet for MPLS L2 — `l2`, with a zero control word — and VXLAN) for
/// `encap`, adding MPLS/GRE/UDP/VXLAN, outer IPv4 and outer Ethernet headers.
pub(crate) fn encapsulate(buf: &mut PacketBuf, encap: &TunnelEncap, o: &Outer, l2: bool) {
    const ETH: usize = ethernet::HEADER_LEN;
    const IP: usize = ipv4::HEADER_LEN;
    let cw = if l2 { L2_CONTROL_WORD_LEN } else { 0 };
    let (proto, tunnel_len) = match encap {
        TunnelEncap::MplsOverUdp { .. } => (ip_proto::UDP, udp::HEADER_LEN + mpls::ENTRY_LEN + cw),
        TunnelEncap::MplsOverGre { .. } => (ip_proto::GRE, gre::BASE_LEN + mpls::ENTRY_LEN + cw),
        TunnelEncap::Vxlan { .. } => (ip_proto::UDP, udp::HEADER_LEN + vxlan::HEADER_LEN),
    };
    let inner_len = buf.len();
    // One push for all outer headers, written front to back.
    let hdr = buf.push_front(ETH + IP + tunnel_len);
    let (eth, rest) = hdr.split_at_mut(ETH);
    let (ip, t) = rest.split_at_mut(IP);
    ethernet::Repr {
        dst: o.dst_mac.0,
        src: o.src_mac.0,
        vlan_tci: None,
        ethertype: ethernet::ethertype::IPV4,
    }
    .emit(eth);
    ipv4::Repr {
        src: o.src_ip,
        dst: o.dst_ip,
        protocol: proto,
        payload_len: tunnel_len + inner_len,
        ttl: 64,
        tos: 0,
        ident: o.ident,
        dont_frag: false,
    }
    .emit(ip);
    let (label, mpls_at) = match *encap {
        TunnelEncap::MplsOverUdp { label } => {
            // RFC 7510 §3 allows a zero UDP checksum over IPv4 for MPLS-in-UDP.
            let payload_len = tunnel_len - udp::HEADER_LEN + inner_len;
            udp::Repr {
                src_port: o.entropy,
                dst_port: ports::MPLS_OVER_UDP,
                payload_len,
            }
            .emit(t);
            (label, udp::HEADER_LEN)
        }
        TunnelEncap::MplsOverGre { label } => {
            // RFC 4023 §4.1: the GRE Protocol Type is 0x8847 for MPLS unicast.
            gre::Repr {
                protocol: ethernet::ethertype::MPLS,
                checksum: false,
                key: None,
                seq: None,
            }
            .emit(t);
            (label, gre::BASE_LEN)
        }
        TunnelEncap::Vxlan { vni } => {
            // RFC 7348 §5: "UDP Checksum: It SHOULD be transmitted as zero".
            let payload_len = vxlan::HEADER_LEN + inner_len;
            udp::Repr {
                src_port: o.entropy,
                dst_port: ports::VXLAN,
                payload_len,
            }
            .emit(t);
            vxlan::Repr { vni }.emit(&mut t[udp::HEADER_LEN..]);
            return;
        }
    };
    mpls::Repr {
        label,
        tc: 0,
        bottom: true,
        ttl: 64,
    }
    .emit(&mut t[mpls_at..]);
    // The L2 control word (all zero) follows the label.
    t[mpls_at + mpls::ENTRY_LEN..].fill(0);
}

/// Push an Ethernet header in front of an IP packet.
pub(crate) fn push_ethernet(buf: &mut PacketBuf, dst: MacAddr, src: MacAddr, v6: bool) {
    let ethertype = if v6 {
        ethernet::ethertype::IPV6
    } else {
        ethernet::ethertype::IPV4
    };
    ethernet::Repr {
        dst: dst.0,
        src: src.0,
        vlan_tci: None,
        ethertype,
    }
    .emit(buf.push_front(ethernet::HEADER_LEN));
}

/// A broadcast ARP request for `target` from (`mac`, `ip`).
pub(crate) fn arp_request(mac: MacAddr, ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp_frame(arp::op::REQUEST, [0xff; 6], (mac.0, ip), ([0; 6], target))
}

/// An Ethernet frame to `eth_dst` holding ARP `operation` from `sender` (also the Ethernet
/// source) about `target`.
pub(crate) fn arp_frame(
    operation: u16,
    eth_dst: [u8; 6],
    sender: ([u8; 6], Ipv4Addr),
    target: ([u8; 6], Ipv4Addr),
) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::HEADER_LEN + arp::PACKET_LEN];
    ethernet::Repr {
        dst: eth_dst,
        src: sender.0,
        vlan_tci: None,
        ethertype: ethernet::ethertype::ARP,
    }
    .emit(&mut f);
    arp::Repr {
        operation,
        sender_mac: sender.0,
        sender_ip: sender.1,
        target_mac: target.0,
        target_ip: target.1,
    }
    .emit(&mut f[ethernet::HEADER_LEN..]);
    f
}

/// Where the overlay payload starts in a fabric frame addressed to us.
pub(crate) enum Overlay {
    /// MPLS label stack entry at this offset (MPLSoUDP or MPLSoGRE).
    Mpls(usize),
    /// VXLAN header at this offset.
    Vxlan(usize),
    /// An outer fragment (UDP or GRE, header checksum good) to our fabric IP: reassembled
    /// first (`reasm.rs`).
    Fragment,
    /// Not an overlay packet for us.
    NotOurs,
}

/// Classify a fabric frame (Ethernet + IPv4) addressed to `our_ip`.
pub(crate) fn classify_fabric(
    frame: &[u8],
    our_ip: Option<Ipv4Addr>,
) -> Result<Overlay, DropReason> {
    let Some(b) = frame.get(ethernet::HEADER_LEN..) else {
        return Ok(Overlay::NotOurs);
    };
    let ip = match ipv4::Packet::new_checked(b) {
        Ok(ip) => ip,
        // A broken IPv4 header that still reads as a tunnel packet to our fabric IP is
        // counted here (the kernel drops its copy silently); anything else is the host's.
        Err(e) if looks_like_tunnel_to(b, our_ip) => return Err(wire_err(e)),
        Err(_) => return Ok(Overlay::NotOurs),
    };
    if Some(ip.dst()) != our_ip {
        return Ok(Overlay::NotOurs);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        // A fragment: a tunnel packet's is reassembled here (the kernel's copy never reaches
        // the forwarder), anything else is the host's.
        return match ip.protocol() {
            ip_proto::UDP | ip_proto::GRE if ip.verify_checksum() => Ok(Overlay::Fragment),
            ip_proto::UDP | ip_proto::GRE => Err(DropReason::Checksum),
            _ => Ok(Overlay::NotOurs),
        };
    }
    if !ip.verify_checksum() {
        return Err(DropReason::Checksum);
    }
    let off = ethernet::HEADER_LEN + ip.header_len();
    match ip.protocol() {
        ip_proto::GRE => {
            let g = gre::Packet::new_checked(ip.payload()).map_err(wire_err)?;
            if g.protocol() != ethernet::ethertype::MPLS {
                return Ok(Overlay::NotOurs);
            }
            gre::Repr::parse(&g).map_err(|e| match e {
                filament_wire_pkt::Error::Malformed {
                    field: "checksum", ..
                } => DropReason::Checksum,
                filament_wire_pkt::Error::Malformed { .. } => DropReason::BadTunnel,
                e => wire_err(e),
            })?;
            Ok(Overlay::Mpls(off + g.header_len()))
        }
        ip_proto::UDP => {
            let u = udp::Packet::new_checked(ip.payload()).map_err(wire_err)?;
            match u.dst_port() {
                ports::MPLS_OVER_UDP | ports::MPLS_OVER_UDP_LEGACY => {
                    Ok(Overlay::Mpls(off + udp::HEADER_LEN))
                }
                ports::VXLAN => Ok(Overlay::Vxlan(off + udp::HEADER_LEN)),
                _ => Ok(Overlay::NotOurs),
            }
        }
        _ => Ok(Overlay::NotOurs),
    }
}

/// An IPv4 header too broken to parse (length fields) whose fixed fields still say: version 4,
/// to `our_ip`, UDP or GRE.
fn looks_like_tunnel_to(b: &[u8], our_ip: Option<Ipv4Addr>) -> bool {
    let (Some(our), Some(h)) = (our_ip, b.get(..ipv4::HEADER_LEN)) else {
        return false;
    };
    h[0] >> 4 == 4 && h[16..20] == our.octets() && matches!(h[9], ip_proto::UDP | ip_proto::GRE)
}

pub(crate) fn parse_mpls(frame: &[u8], off: usize) -> Result<mpls::Repr, DropReason> {
    let p = mpls::Packet::new_checked(frame.get(off..).ok_or(DropReason::Truncated)?)
        .map_err(wire_err)?;
    mpls::Repr::parse(&p).map_err(wire_err)
}

pub(crate) fn parse_vxlan(frame: &[u8], off: usize) -> Result<u32, DropReason> {
    let p = vxlan::Packet::new_checked(frame.get(off..).ok_or(DropReason::Truncated)?)
        .map_err(wire_err)?;
    Ok(vxlan::Repr::parse(&p).map_err(wire_err)?.vni)
}

/// Learn a fabric neighbour from an ARP packet, when we asked for it or
/// already know it as learned (bounded by the tunnels we use).
pub(crate) fn learn_arp(fwd: &mut Forwarder, vif: VifId, frame: &[u8]) {
    let Some(b) = frame.get(ethernet::HEADER_LEN..) else {
        return;
    };
    let Ok(p) = arp::Packet::new_checked(b) else {
        return;
    };
    let Ok(r) = arp::Repr::parse(&p) else { return };
    let key = crate::forwarder::NeighborKey::new(vif, r.sender_ip);
    let asked = fwd.arp_pending.contains_key(&key);
    match fwd.neighbors.get(&key) {
        Some(n) if !n.learned => {}
        Some(n) => {
            if n.mac.0 != r.sender_mac {
                // Cached routes and tunnel headers carry the old MAC.
                fwd.gen = fwd.gen.wrapping_add(1);
            }
            fwd.neighbors.insert(
                key,
                crate::forwarder::Neighbor {
                    mac: MacAddr(r.sender_mac),
                    learned: true,
                },
            );
        }
        None if asked => {
            fwd.neighbors.insert(
                key,
                crate::forwarder::Neighbor {
                    mac: MacAddr(r.sender_mac),
                    learned: true,
                },
            );
            fwd.arp_pending.remove(&key);
        }
        None => {}
    }
}
