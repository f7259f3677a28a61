//! Packets too big for the fabric once encapsulated: what TF's vRouter does about them
//! (tf-facts §5.5 trap `HANDLE_DF 11`: the sender is told, else the inner packet is fragmented).
//!
//! * IPv4 without DF: the inner packet is fragmented (RFC 791 §3.2 "Fragmentation and
//!   reassembly") so that each fragment fits once encapsulated; each fragment is encapsulated
//!   and sent. The receiving workload reassembles.
//! * IPv4 with DF, and IPv6 (never fragmented by routers): the packet is dropped
//!   ([`DropReason::TooBig`]) and the workload gets an ICMP "fragmentation needed" (RFC 1191
//!   §4, type 3 code 4 with the next-hop MTU) or an ICMPv6 "Packet Too Big" (RFC 8201, RFC
//!   4443 §3.2) giving the MTU that fits, so its path MTU discovery lowers what it sends.
//!   The error's source is the packet's destination (the forwarder has no address of its own
//!   in the VRF) and it goes back out of the vif the packet came in on.
//!
//! RFC 1122 §3.2.2: "An ICMP error message MUST NOT be sent as the result of receiving: * an
//! ICMP error message, or ... * a datagram destined to an IP broadcast or IP multicast
//! address, or ... * a non-initial fragment". RFC 4443 §2.4 (e) likewise for ICMPv6 errors;
//! (e.3) makes an exception for Packet Too Big to multicast, which we do not use.

use std::net::IpAddr;

use filament_wire_pkt::{checksum, ethernet, icmp, ip_proto, ipv4, ipv6};

use crate::buf::PacketBuf;
use crate::forwarder::Forwarder;
use crate::pipeline::Ctx;
use crate::types::*;

const ETH: usize = ethernet::HEADER_LEN;
/// RFC 1812 §4.3.2.3: an ICMP error carries as much of the original datagram as fits in 576
/// bytes; RFC 4443 §2.4 (c): an ICMPv6 error as much as fits in the IPv6 minimum MTU (1280).
const ICMP4_MAX: usize = 576;
const ICMP6_MAX: usize = 1280;
/// RFC 8200 §5: the minimum IPv6 link MTU.
const IPV6_MIN_MTU: usize = 1280;
/// Errors queued and not yet sent beyond which no more are generated (a burst of too-big
/// packets from one workload gets a burst of errors, not an unbounded queue).
const MAX_QUEUED_ERRORS: usize = 256;

/// Why the forwarding stages stop a packet: a drop, or too big for the fabric once
/// encapsulated, with `room`, the largest inner payload that fits (Ethernet header included
/// when the payload is a frame), which the ICMP error to the sender is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Dropped for this reason.
    Drop(DropReason),
    /// Too big ([`DropReason::TooBig`]); the sender is told `room`.
    TooBig { room: usize },
}

impl From<DropReason> for Stop {
    #[inline]
    fn from(r: DropReason) -> Self {
        Stop::Drop(r)
    }
}

impl Stop {
    /// The drop reason it is counted under.
    pub(crate) fn reason(self) -> DropReason {
        match self {
            Stop::Drop(r) => r,
            Stop::TooBig { .. } => DropReason::TooBig,
        }
    }
}

impl Forwarder {
    /// IPv4 without DF, `inner` (an IP packet, or an Ethernet frame with `eth` = 14 bytes of
    /// header first) too big for `room` bytes: its fragments, each `room` bytes or less (None:
    /// not fragmentable here — DF set, IPv6, IP options, too little room).
    pub(crate) fn fragments(inner: &[u8], eth: usize, room: usize) -> Option<Vec<Vec<u8>>> {
        let ip = ipv4::Packet::new_checked(inner.get(eth..)?).ok()?;
        // Options would need the copy flag sorted per fragment: not handled, the packet is
        // dropped as too big instead.
        if ip.version() != 4 || ip.dont_frag() || ip.header_len() != ipv4::HEADER_LEN {
            return None;
        }
        let hl = ipv4::HEADER_LEN;
        let total = usize::from(ip.total_len());
        let data = inner.get(eth + hl..eth + total)?;
        // RFC 791: "the data portion of each fragment ... must be a multiple of 8 octets"
        // (all but the last).
        let chunk = room.checked_sub(eth + hl)? & !7;
        if chunk == 0 {
            return None;
        }
        let (base_off, more) = (usize::from(ip.frag_offset()), ip.more_frags());
        let mut out = Vec::with_capacity(data.len().div_ceil(chunk));
        for (i, part) in data.chunks(chunk).enumerate() {
            let last = (i + 1) * chunk >= data.len();
            let mut f = Vec::with_capacity(eth + hl + part.len());
            f.extend_from_slice(inner.get(..eth + hl)?);
            f.extend_from_slice(part);
            let h = f.get_mut(eth..eth + hl)?;
            h[2..4].copy_from_slice(&((hl + part.len()) as u16).to_be_bytes());
            let off = (base_off + i * chunk) / 8;
            let mf = if !last || more { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&((off as u16 & 0x1fff) | mf).to_be_bytes());
            ipv4::Packet::new_unchecked(h).fill_checksum();
            out.push(f);
        }
        Some(out)
    }

    /// The packet in `buf` (from a workload, dropped as too big) gets an ICMP error back out of
    /// its input vif, telling `room` (the largest inner frame that fits, Ethernet header
    /// included when the inner payload is a frame).
    pub(crate) fn icmp_too_big(&mut self, ctx: &Ctx, buf: &PacketBuf, room: usize) {
        if self.tx_queue.len() >= MAX_QUEUED_ERRORS {
            return;
        }
        // The buffer holds the inner payload as the tunnel would have carried it: the bare IP
        // packet (its Ethernet header pulled), or an Ethernet frame.
        let frame = buf.frame();
        let (ip_at, ip_room) = if buf.headroom() == ctx.orig + ETH {
            (0, room)
        } else {
            (ETH, room.saturating_sub(ETH))
        };
        let Some(ip) = frame.get(ip_at..) else {
            return;
        };
        let vif_mac = match self.vifs.get(ctx.vif_in.0 as usize) {
            Some(Some(e)) => e.vif.mac,
            _ => return,
        };
        let err = match ip.first().map(|b| b >> 4) {
            Some(4) => icmp4_frag_needed(ip, ip_room),
            Some(6) => icmp6_too_big(ip, ip_room),
            _ => None,
        };
        let Some(err) = err else {
            return;
        };
        let mut f = vec![0u8; ETH];
        ethernet::Repr {
            dst: ctx.src_mac.0,
            src: vif_mac.0,
            vlan_tci: None,
            ethertype: if ip[0] >> 4 == 4 {
                ethernet::ethertype::IPV4
            } else {
                ethernet::ethertype::IPV6
            },
        }
        .emit(&mut f);
        f.extend_from_slice(&err);
        self.tx_queue.push_back(Tx {
            vif: ctx.vif_in,
            frame: f,
        });
    }
}

/// RFC 1191 §4: "the router MUST include the MTU of that next-hop network in the low-order
/// 16 bits of the ICMP header field that is labelled 'unused' in the ICMP specification".
fn icmp4_frag_needed(orig: &[u8], mtu: usize) -> Option<Vec<u8>> {
    let p = ipv4::Packet::new_checked(orig).ok()?;
    if !p.dont_frag() || p.frag_offset() != 0 || p.dst().is_multicast() || p.dst().is_broadcast() {
        return None;
    }
    if p.protocol() == ip_proto::ICMP {
        // Only errors about echo requests / replies (queries), never about errors.
        let t = *orig.get(p.header_len())?;
        if !matches!(t, icmp::types::V4_ECHO_REQUEST | icmp::types::V4_ECHO_REPLY) {
            return None;
        }
    }
    let quote = &orig[..orig.len().min(usize::from(p.total_len()))];
    let quote = &quote[..quote.len().min(ICMP4_MAX - ipv4::HEADER_LEN - 8)];
    let mut out = vec![0u8; ipv4::HEADER_LEN + 8 + quote.len()];
    ipv4::Repr {
        src: p.dst(),
        dst: p.src(),
        protocol: ip_proto::ICMP,
        payload_len: 8 + quote.len(),
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: false,
    }
    .emit(&mut out);
    let m = &mut out[ipv4::HEADER_LEN..];
    m[0] = 3; // destination unreachable
    m[1] = 4; // fragmentation needed and DF set
    m[6..8].copy_from_slice(&(mtu.min(0xffff) as u16).to_be_bytes());
    m[8..].copy_from_slice(quote);
    let c = checksum::checksum(m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    Some(out)
}

/// RFC 4443 §3.2 Packet Too Big: type 2, code 0, "MTU: The Maximum Transmission Unit of the
/// next-hop link".
fn icmp6_too_big(orig: &[u8], mtu: usize) -> Option<Vec<u8>> {
    let p = ipv6::Packet::new_checked(orig).ok()?;
    if p.dst().is_multicast() {
        return None;
    }
    if p.next_header() == ip_proto::ICMPV6 {
        // RFC 4443 §2.4 (e.1): not in response to an ICMPv6 error message (types < 128).
        let t = *orig.get(ipv6::HEADER_LEN)?;
        if t < 128 {
            return None;
        }
    }
    let total = ipv6::HEADER_LEN + usize::from(p.payload_len());
    let quote = &orig[..orig.len().min(total)];
    let quote = &quote[..quote.len().min(ICMP6_MAX - ipv6::HEADER_LEN - 8)];
    let mut out = vec![0u8; ipv6::HEADER_LEN + 8 + quote.len()];
    ipv6::Repr {
        src: p.dst(),
        dst: p.src(),
        next_header: ip_proto::ICMPV6,
        payload_len: 8 + quote.len(),
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut out);
    let m = &mut out[ipv6::HEADER_LEN..];
    m[0] = 2;
    // An MTU below the IPv6 minimum cannot be asked for: the fabric is misconfigured; tell
    // the minimum (the workload then sends fragments that still do not fit, and they are
    // counted as TooBig).
    m[4..8].copy_from_slice(&(mtu.max(IPV6_MIN_MTU) as u32).to_be_bytes());
    m[8..].copy_from_slice(quote);
    let c = checksum::l4_checksum(
        &IpAddr::V6(p.dst()),
        &IpAddr::V6(p.src()),
        ip_proto::ICMPV6,
        m,
    );
    m[2..4].copy_from_slice(&c.to_be_bytes());
    Some(out)
}
