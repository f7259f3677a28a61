//! ICMP errors on policy vifs follow the flow of the packet they are about (TF's vRouter looks
//! an ICMP error up by the header it quotes, `vr_inet_flow_lookup` / `AGENT_TRAP_ICMP_ERROR`):
//! a "port unreachable", "fragmentation needed" (RFC 1191) or "time exceeded" coming back for
//! a flow the agent allowed is forwarded or dropped with that flow, instead of being a flow
//! miss of its own (ICMP, ports 0) that the agent must decide on.
//!
//! RFC 792: an ICMP error's data is "Internet Header + 64 bits of Original Data Datagram";
//! RFC 4443 §2.4 (c): an ICMPv6 error carries "as much of invoking packet as possible". The
//! quoted packet went the other way, so its flow key reversed is the key of the entry the error
//! belongs to.
//!
//! An error about a NAT'd flow (floating IP, SNAT) quotes the *translated* header, and is
//! addressed to the translated address; it is matched to the entry of the quoted header
//! (reversed) like any other, and translated back by that entry's rewrite, as TF's vRouter does
//! for ICMP errors in `vr_inet_flow_nat` (and Linux in `nf_nat_icmp_reply_translation`):
//!
//! * the outer header as any packet of that entry: source and destination addresses (the
//!   IPv4 header checksum, and the ICMPv6 checksum's pseudo-header, updated);
//! * the quoted header the other way round, since the quoted packet travelled the opposite
//!   direction: the entry's new source goes into its destination, its new destination into
//!   its source, and likewise the ports (TCP/UDP) or the echo identifier; the quoted IPv4
//!   header checksum and the quoted TCP/UDP checksum (when the quote holds it) follow;
//! * the ICMP checksum covers the whole message, quote included: it is updated word by word
//!   for what changed (RFC 1624), so a quote cut short (RFC 792: "Internet Header + 64 bits")
//!   or an error too long for one frame is still right.

use std::net::IpAddr;

use filament_wire_pkt::{icmp, ip_proto};

use crate::encap::IpInfo;
use crate::forwarder::Forwarder;
use crate::types::*;
use crate::FlowState;
use filament_wire_pkt::checksum;

/// ICMPv4 error types (RFC 792): destination unreachable, source quench, redirect, time
/// exceeded, parameter problem.
const V4_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];
/// ICMPv6 error types (RFC 4443 §2.1): 1-4 (destination unreachable, packet too big, time
/// exceeded, parameter problem).
const V6_ERRORS: std::ops::RangeInclusive<u8> = 1..=4;

/// The packet an ICMP error quotes: where its header is in the frame and its flow fields.
struct Quoted {
    /// Offset of the quoted IP header, and the end of the ICMP message, in the frame.
    at: usize,
    end: usize,
    v6: bool,
    /// Quoted IP header length.
    hl: usize,
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
}

/// The quote of the ICMP error in `frame` (parsed as `info`), if it is an error with a quote.
fn quoted(frame: &[u8], info: &IpInfo) -> Option<Quoted> {
    if info.later_fragment {
        return None;
    }
    let end = (info.l4 + info.l4_len).min(frame.len());
    let msg = frame.get(info.l4..end)?;
    let t = *msg.first()?;
    let error = match info.proto {
        ip_proto::ICMP => V4_ERRORS.contains(&t),
        ip_proto::ICMPV6 => V6_ERRORS.contains(&t),
        _ => false,
    };
    if !error {
        return None;
    }
    let q = msg.get(icmp::HEADER_LEN..)?;
    let (v6, hl, src, dst, proto) = match (info.proto, q.first()? >> 4) {
        (ip_proto::ICMP, 4) => {
            let hl = usize::from(q[0] & 0x0f) * 4;
            let a: [u8; 4] = q.get(12..16)?.try_into().ok()?;
            let b: [u8; 4] = q.get(16..20)?.try_into().ok()?;
            (false, hl, IpAddr::from(a), IpAddr::from(b), *q.get(9)?)
        }
        (ip_proto::ICMPV6, 6) => {
            let a: [u8; 16] = q.get(8..24)?.try_into().ok()?;
            let b: [u8; 16] = q.get(24..40)?.try_into().ok()?;
            (true, 40, IpAddr::from(a), IpAddr::from(b), *q.get(6)?)
        }
        _ => return None,
    };
    let l4 = q.get(hl..)?;
    let port = |at: usize| l4.get(at..at + 2).map(|p| u16::from_be_bytes([p[0], p[1]]));
    let (sport, dport) = match proto {
        ip_proto::TCP | ip_proto::UDP => (port(0)?, port(2)?),
        // A quoted echo: both "ports" are its identifier.
        ip_proto::ICMP | ip_proto::ICMPV6 => {
            let id = port(4)?;
            (id, id)
        }
        _ => (0, 0),
    };
    Some(Quoted {
        at: info.l4 + icmp::HEADER_LEN,
        end,
        v6,
        hl,
        proto,
        src,
        dst,
        sport,
        dport,
    })
}

impl Forwarder {
    /// The key of the Active flow entry (Forward, Drop or NAT) an ICMP error in `frame`
    /// (parsed as `info`) is about, if it is one and that entry exists.
    pub(crate) fn icmp_error_flow(
        &self,
        frame: &[u8],
        info: &IpInfo,
        vrf: VrfId,
    ) -> Option<FlowKey> {
        let q = quoted(frame, info)?;
        let key = FlowKey {
            vrf,
            proto: q.proto,
            src: q.dst,
            dst: q.src,
            sport: q.dport,
            dport: q.sport,
        };
        let e = self.flows.get(self.flows.find(&key)?)?;
        (e.state == FlowState::Active && e.action.is_some()).then_some(key)
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

fn put_addr(b: &mut [u8], at: usize, a: &IpAddr) {
    let o: &[u8] = match a {
        IpAddr::V4(v4) => &v4.octets(),
        IpAddr::V6(v6) => &v6.octets(),
    };
    if let Some(s) = b.get_mut(at..at + o.len()) {
        s.copy_from_slice(o);
    }
}

/// Translate an ICMP error matched to a NAT entry with rewrite `rw` (module doc): the outer
/// header as the entry's packets, the quoted header the other way round, every checksum kept
/// right. `info` follows the outer addresses. Address rewrites of the other family are
/// ignored (`Forwarder::apply` refuses them).
pub(crate) fn nat_icmp_error(frame: &mut [u8], info: &mut IpInfo, rw: &NatRewrite) {
    let Some(q) = quoted(frame, info) else {
        return;
    };
    let same = |a: &IpAddr, b: &IpAddr| a.is_ipv4() == b.is_ipv4();
    // The quoted header and what follows of its L4 header (at most a TCP header's checksum),
    // as it was: the ICMP checksum is updated for each word that changes.
    let l4 = q.at + q.hl;
    let snap_end = (l4 + 20).min(q.end);
    let snap_end = q.at + ((snap_end - q.at) & !1);
    let before = frame
        .get(q.at..snap_end)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let (src_at, dst_at) = if q.v6 {
        (q.at + 8, q.at + 24)
    } else {
        (q.at + 12, q.at + 16)
    };
    // The quoted L4 checksum, when the quote holds it (UDP over IPv4: zero means none).
    let l4_csum_at = match q.proto {
        ip_proto::TCP => Some(l4 + 16),
        ip_proto::UDP => Some(l4 + 6).filter(|&at| q.v6 || get16(frame, at) != 0),
        ip_proto::ICMP | ip_proto::ICMPV6 => Some(l4 + 2),
        _ => None,
    }
    .filter(|&at| at + 2 <= q.end);
    let pseudo = q.proto != ip_proto::ICMP;
    let mut l4c = l4_csum_at.map(|at| get16(frame, at));
    // Quoted addresses: the entry's new destination is the quoted source, its new source the
    // quoted destination.
    for (new, at, old) in [(rw.dst_ip, src_at, q.src), (rw.src_ip, dst_at, q.dst)] {
        let Some(new) = new.filter(|n| same(n, &old)) else {
            continue;
        };
        put_addr(frame, at, &new);
        if !q.v6 {
            let hc = checksum::update_addr(get16(frame, q.at + 10), &old, &new);
            put16(frame, q.at + 10, hc);
        }
        if let (true, Some(c)) = (pseudo, l4c.as_mut()) {
            *c = checksum::update_addr(*c, &old, &new);
        }
    }
    // Quoted ports (or echo identifier), the same way round.
    let ports: &[(Option<u16>, usize)] = match q.proto {
        ip_proto::TCP | ip_proto::UDP => &[(rw.dst_port, l4), (rw.src_port, l4 + 2)],
        ip_proto::ICMP | ip_proto::ICMPV6 => &[(rw.src_port.or(rw.dst_port), l4 + 4)],
        _ => &[],
    };
    for &(new, at) in ports {
        let Some(new) = new.filter(|_| at + 2 <= q.end) else {
            continue;
        };
        let old = get16(frame, at);
        put16(frame, at, new);
        if let Some(c) = l4c.as_mut() {
            *c = checksum::update16(*c, old, new);
        }
    }
    if let (Some(at), Some(c)) = (l4_csum_at, l4c) {
        let c = if q.proto == ip_proto::UDP && c == 0 {
            0xffff
        } else {
            c
        };
        put16(frame, at, c);
    }
    // The ICMP checksum: every quoted word that changed.
    let mut ic = get16(frame, info.l4 + 2);
    for (i, old) in before.chunks_exact(2).enumerate() {
        let at = q.at + 2 * i;
        let new = get16(frame, at);
        let old = u16::from_be_bytes([old[0], old[1]]);
        if new != old {
            ic = checksum::update16(ic, old, new);
        }
    }
    // The outer header, as the entry's packets.
    let (osrc_at, odst_at) = if info.v6 {
        (info.l3 + 8, info.l3 + 24)
    } else {
        (info.l3 + 12, info.l3 + 16)
    };
    for (new, at, is_src) in [(rw.src_ip, osrc_at, true), (rw.dst_ip, odst_at, false)] {
        let old = if is_src { info.src } else { info.dst };
        let Some(new) = new.filter(|n| same(n, &old)) else {
            continue;
        };
        put_addr(frame, at, &new);
        if info.v6 {
            // RFC 4443 §2.3: the ICMPv6 checksum covers the pseudo-header.
            ic = checksum::update_addr(ic, &old, &new);
        } else {
            let hc = checksum::update_addr(get16(frame, info.l3 + 10), &old, &new);
            put16(frame, info.l3 + 10, hc);
        }
        if is_src {
            info.src = new;
        } else {
            info.dst = new;
        }
    }
    put16(frame, info.l4 + 2, ic);
}
