//! The flow-cached fast path of [`Forwarder::process`] (the role of TF's
//! flow-hit path in dp-core/vr_flow.c: a packet of an established flow
//! skips classification and goes straight to the flow's cached nexthop).
//!
//! It handles the common case only — an IPv4 packet without options or
//! fragmentation, TCP or UDP, routed (to the gateway / vif MAC) from a
//! policy-enabled workload vif, whose flow entry is Active with a Forward
//! action, no mirror, and a route cache of the current table generation
//! pointing at an Encap nexthop or at a tunnel whose outer headers are
//! prebuilt in a [`TunnelTmpl`]. Every check is made before anything is
//! changed: when one fails, [`Forwarder::fast_path`] returns `None` with
//! the forwarder and the buffer untouched, and the general pipeline runs.
//! When it applies, it has exactly the general pipeline's effects (same
//! bytes out, same counters, same flow state); the `fast_path_matches`
//! property test checks that against a forwarder with the fast path off.
//!
//! Per packet a tunnel costs one copy of the template plus the fields that
//! change: the outer IPv4 total length, identification and checksum (the
//! checksum from a precomputed partial sum, RFC 1071 §2(3): "the sum may be
//! calculated in any order" and updated), and the UDP length and source
//! port (the flow's entropy port).

use std::time::Duration;

use filament_wire_pkt::{checksum, ethernet, ip_proto, ipv4, ports};

use crate::buf::PacketBuf;
use crate::encap::{self, Outer};
use crate::flow::{PackedKey, NO_TUNNEL};
use crate::forwarder::{Forwarder, NeighborKey};
use crate::pipeline::Out;
use crate::types::*;

/// Longest prebuilt header: Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 +
/// inner Ethernet 14 = 64.
pub(crate) const TMPL_MAX: usize = 64;

const ETH: usize = ethernet::HEADER_LEN;
/// Offset of the outer IPv4 header in a template.
const IP_AT: usize = ETH;
/// Offset of the outer UDP header in a template, and of the L4 header in
/// a received frame (IPv4 without options).
const UDP_AT: usize = ETH + ipv4::HEADER_LEN;
const L4_AT: usize = UDP_AT;
/// Received bytes the checks read: Ethernet, IPv4, 8 bytes of L4.
const HDRS: usize = L4_AT + 8;

/// Outer headers of one tunnel nexthop, as `encap::encapsulate` writes
/// them for an empty inner packet (outer Ethernet, IPv4, UDP or GRE, MPLS
/// label or VXLAN header, and for VXLAN the inner Ethernet header of a
/// routed packet), valid for one table generation.
#[derive(Debug, Clone)]
pub(crate) struct TunnelTmpl {
    gen: u64,
    /// The fabric vif the tunnel leaves on.
    vif: VifId,
    /// Largest frame the fabric vif sends: MTU + Ethernet header.
    max_frame: usize,
    pub(crate) len: usize,
    /// UDP-based (MPLSoUDP, VXLAN): patch the UDP length and source port.
    udp: bool,
    /// One's-complement sum of the outer IPv4 header words with the total
    /// length, identification and checksum fields taken as zero.
    ip_sum: u32,
    /// The headers in the last `len` bytes (right-aligned, so a packet can
    /// take all `TMPL_MAX` bytes in one fixed-size copy).
    pub(crate) hdr: [u8; TMPL_MAX],
}

#[inline]
fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// One's-complement sum of a 20-byte IPv4 header (as `checksum::sum`,
/// unrolled for the fixed length).
#[inline(always)]
fn header_sum(ip: &[u8]) -> Option<u32> {
    let h: &[u8; ipv4::HEADER_LEN] = ip.get(..ipv4::HEADER_LEN)?.try_into().ok()?;
    let w = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    let acc = w(0) + w(4) + w(8) + w(12) + w(16);
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    Some(((acc & 0xffff_ffff) + (acc >> 32)) as u32)
}

/// `ipv4::Packet::decrement_ttl` for a TTL above 1 (the plan checked):
/// RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), where the TTL word m =
/// ttl << 8 | proto drops by exactly 0x100, so ~m + m' = 0xfeff.
#[inline(always)]
pub(crate) fn decrement_ttl(h: &mut [u8]) {
    let Some(h) = h.get_mut(8..12) else {
        return;
    };
    h[0] = h[0].wrapping_sub(1);
    let c = u16::from_be_bytes([h[2], h[3]]);
    let c = !checksum::fold(u32::from(!c) + 0xfeff);
    h[2..4].copy_from_slice(&c.to_be_bytes());
}

/// The output the fast path found.
pub(crate) enum FastOut {
    /// L2 rewrite to a local vif.
    Encap {
        vif: VifId,
        dst_mac: MacAddr,
        src_mac: MacAddr,
    },
    /// The template of tunnel nexthop `nh` (`len` bytes of headers), sent
    /// on `vif`.
    Tunnel { nh: NhId, vif: VifId, len: usize },
}

/// What the checks found, applied once all of them passed (here, or in
/// place in a receive slot by `inplace`).
pub(crate) struct Plan {
    /// IPv4 total length.
    pub(crate) total: usize,
    pub(crate) flow: u32,
    pub(crate) out: FastOut,
    pub(crate) entropy: u16,
}

impl Forwarder {
    /// Turn the fast path on or off (on by default). Off, every packet takes
    /// the general pipeline: for tests comparing the two.
    #[doc(hidden)]
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast_path_on = on;
    }

    /// Packets the fast path handled so far.
    #[doc(hidden)]
    pub fn fast_path_hits(&self) -> u64 {
        self.fast_hits
    }

    /// Run `buf` through the fast path if it applies (see the module doc);
    /// `None`: it does not, and nothing was changed.
    #[inline(always)]
    pub(crate) fn fast_path(
        &mut self,
        now: Duration,
        vif_in: VifId,
        buf: &mut PacketBuf,
        meta: RxMeta,
        hash: Option<u32>,
    ) -> Option<Verdict> {
        let plan = self.fast_plan(vif_in, buf.frame(), hash)?;
        Some(self.fast_apply(now, vif_in, buf, meta, plan))
    }

    /// The checks on frame `f`. Reads only (the template cache aside, which
    /// is not observable). `hash`: the flow table hash of this frame's key,
    /// when the caller computed it already (`process_batch`, from the same
    /// bytes and VRF).
    #[inline(always)]
    pub(crate) fn fast_plan(&mut self, vif_in: VifId, f: &[u8], hash: Option<u32>) -> Option<Plan> {
        let vin = self.vifs.get(vif_in.0 as usize)?.as_ref()?;
        if vin.vif.kind == VifKind::Fabric || !vin.vif.policy {
            return None;
        }
        let vrf = vin.vif.vrf?;
        // Ethernet + IPv4 + the first 8 bytes of L4 as one fixed-size
        // array: the field reads below need no bounds checks.
        let h: &[u8; HDRS] = f.get(..HDRS)?.try_into().ok()?;
        let w16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
        let dst = &h[..6];
        if (dst != GATEWAY_MAC.0 && dst != vin.vif.mac.0) || w16(12) != ethernet::ethertype::IPV4 {
            return None;
        }
        // IPv4 without options, not a fragment (MF and offset zero).
        if h[ETH] != 0x45 || w16(ETH + 6) & 0x3fff != 0 || h[ETH + 8] <= 1 {
            return None;
        }
        let total = usize::from(w16(ETH + 2));
        let l4_len = total.wrapping_sub(ipv4::HEADER_LEN);
        if total > f.len() - ETH || total < ipv4::HEADER_LEN + 8 {
            return None;
        }
        if checksum::fold(header_sum(&h[ETH..])?) != 0xffff {
            return None;
        }
        let proto = h[ETH + 9];
        let (sport, dport) = (w16(L4_AT), w16(L4_AT + 2));
        match proto {
            ip_proto::UDP => {
                let ulen = usize::from(w16(L4_AT + 4));
                if ulen < 8 || ulen > l4_len || matches!(dport, ports::DHCP_SERVER | 547) {
                    return None;
                }
            }
            ip_proto::TCP => {
                let hl = usize::from(*f.get(L4_AT + 12)? >> 4) * 4;
                if l4_len < 20 || hl < 20 || hl > l4_len {
                    return None;
                }
            }
            _ => return None,
        }
        let ip4 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let key = PackedKey::v4(vrf, proto, ip4(ETH + 12), ip4(ETH + 16), sport, dport);
        let h = match hash {
            Some(h) => h,
            None => self.flows.hash(&key),
        };
        debug_assert_eq!(h, self.flows.hash(&key));
        let flow = self.flows.find_hashed(&key, h)?;
        let e = self.flows.get(flow)?;
        // Active, Forward, no mirror.
        if !e.fast {
            return None;
        }
        let entropy = e.udp_src_port;
        let out = if e.tunnel_nh != NO_TUNNEL && e.tunnel_gen == self.gen {
            // The route cache holds this tunnel (its copy in the entry's hot
            // line): the template has the rest.
            if entropy == 0 {
                return None;
            }
            let tnh = e.tunnel_nh;
            let i = tnh as usize;
            let t = match self.tmpls.get(i) {
                Some(Some(t)) if t.gen == self.gen => t,
                _ => {
                    let (_, out) = e.route_cache()?;
                    self.refresh_tmpl(i, &out)?
                }
            };
            if t.len + total > t.max_frame {
                return None;
            }
            FastOut::Tunnel {
                nh: NhId(tnh),
                vif: t.vif,
                len: t.len,
            }
        } else {
            // Anything else than a tunnel: the full route cache (the
            // entry's second line).
            match e.route_cache()? {
                (
                    g,
                    Out::Encap {
                        vif,
                        dst_mac,
                        src_mac,
                    },
                ) if g == self.gen => FastOut::Encap {
                    vif,
                    dst_mac,
                    src_mac,
                },
                _ => return None,
            }
        };
        Some(Plan {
            total,
            flow,
            out,
            entropy,
        })
    }

    /// The effects, in the general pipeline's order: input counters, L4
    /// checksum completion, truncation, flow counters, TTL, rewrite, output
    /// counters.
    #[inline(always)]
    fn fast_apply(
        &mut self,
        now: Duration,
        vif_in: VifId,
        buf: &mut PacketBuf,
        meta: RxMeta,
        plan: Plan,
    ) -> Verdict {
        self.fast_hits += 1;
        self.now = self.now.max(now);
        let rx_len = buf.len() as u64;
        if let Some(Some(vin)) = self.vifs.get_mut(vif_in.0 as usize) {
            vin.stats.rx_packets += 1;
            vin.stats.rx_bytes += rx_len;
        }
        if meta.csum_partial {
            if let Ok((info, _)) = encap::parse_ip(buf.frame(), ETH) {
                encap::complete_l4_checksum(buf.frame_mut(), &info);
            }
        }
        buf.truncate(ETH + plan.total);
        let now = self.now;
        if let Some(e) = self.flows.get_mut(plan.flow) {
            e.packets += 1;
            e.bytes += plan.total as u64;
            e.touch(now);
        }
        if let Some(h) = buf.frame_mut().get_mut(ETH..ETH + ipv4::HEADER_LEN) {
            decrement_ttl(h);
        }
        let out_vif = match plan.out {
            FastOut::Encap {
                vif,
                dst_mac,
                src_mac,
            } => {
                // The routed frame's new Ethernet header takes the place of
                // the received one (as pull_front + push_ethernet).
                if let Some(e) = buf.frame_mut().get_mut(..ETH) {
                    e[..6].copy_from_slice(&dst_mac.0);
                    e[6..12].copy_from_slice(&src_mac.0);
                    e[12..].copy_from_slice(&ethernet::ethertype::IPV4.to_be_bytes());
                }
                vif
            }
            FastOut::Tunnel { nh, vif, .. } => {
                self.ip_ident = self.ip_ident.wrapping_add(1);
                let ident = self.ip_ident;
                buf.pull_front(ETH);
                match self.tmpls.get(nh.0 as usize).and_then(Option::as_ref) {
                    Some(t) => write_tunnel(buf, t, ident, plan.entropy),
                    // Unreachable: the plan found it.
                    None => return self.drop_pkt(vif_in, DropReason::InvalidNexthop),
                }
                vif
            }
        };
        let len = buf.len() as u64;
        if let Some(Some(e)) = self.vifs.get_mut(out_vif.0 as usize) {
            e.stats.tx_packets += 1;
            e.stats.tx_bytes += len;
        }
        Verdict::Transmit(out_vif)
    }

    /// (Re)build the template of tunnel nexthop `i` (resolved as `out`);
    /// `None` when the fabric vif or the neighbour is missing (the general
    /// path drops or ARPs).
    #[cold]
    fn refresh_tmpl(&mut self, i: usize, out: &Out) -> Option<&TunnelTmpl> {
        let t = self.build_tmpl(out)?;
        if self.tmpls.len() <= i {
            self.tmpls.resize_with(i + 1, || None);
        }
        let slot = self.tmpls.get_mut(i)?;
        *slot = Some(t);
        slot.as_ref()
    }

    #[cold]
    fn build_tmpl(&self, out: &Out) -> Option<TunnelTmpl> {
        let Out::Tunnel {
            vif,
            src_ip,
            dst_ip,
            encap: tenc,
            ..
        } = *out
        else {
            return None;
        };
        let e = self.vifs.get(vif.0 as usize)?.as_ref()?;
        let n = self.neighbors.get(&NeighborKey::new(vif, dst_ip))?;
        let mut b = PacketBuf::with_capacity(TMPL_MAX);
        if let TunnelEncap::Vxlan { .. } = tenc {
            // As l3_forward: routed packets over VXLAN go to the remote IRB.
            encap::push_ethernet(&mut b, GATEWAY_MAC, GATEWAY_MAC, false);
        }
        let o = Outer {
            src_mac: e.vif.mac,
            dst_mac: n.mac,
            src_ip,
            dst_ip,
            ident: 0,
            entropy: 0,
        };
        encap::encapsulate(&mut b, &tenc, &o, false);
        let mut f = b.frame().to_vec();
        let len = f.len();
        // Fields set per packet start at zero.
        for at in [IP_AT + 2, IP_AT + 4, IP_AT + 10] {
            put16(&mut f, at, 0);
        }
        let udp = !matches!(tenc, TunnelEncap::MplsOverGre { .. });
        if udp {
            put16(&mut f, UDP_AT + 4, 0);
        }
        let mut hdr = [0u8; TMPL_MAX];
        hdr.get_mut(TMPL_MAX.checked_sub(len)?..)?
            .copy_from_slice(&f);
        Some(TunnelTmpl {
            gen: self.gen,
            vif,
            max_frame: usize::from(e.vif.mtu) + ETH,
            len,
            udp,
            ip_sum: checksum::sum(f.get(IP_AT..IP_AT + ipv4::HEADER_LEN)?),
            hdr,
        })
    }
}

/// Prepend a template's headers to the inner packet in `buf`, with this
/// packet's lengths, identification, checksum and entropy port.
#[inline(always)]
fn write_tunnel(buf: &mut PacketBuf, t: &TunnelTmpl, ident: u16, entropy: u16) {
    let inner = buf.len();
    let h = if buf.headroom() >= TMPL_MAX {
        // Copy all TMPL_MAX bytes (a fixed-size copy), then give back the
        // unused front: only the template's `len` bytes join the frame.
        buf.push_front(TMPL_MAX).copy_from_slice(&t.hdr);
        buf.pull_front(TMPL_MAX - t.len);
        buf.frame_mut()
    } else {
        let h = buf.push_front(t.len);
        if let Some(src) = t.hdr.get(TMPL_MAX - t.len..) {
            h.copy_from_slice(src);
        }
        h
    };
    if let Some(h) = h.get_mut(..t.len) {
        patch_tunnel(h, t, inner, ident, entropy);
    }
}

/// Set the per-packet fields of template `t`'s headers `h` (already copied
/// in front of an inner packet of `inner` bytes).
#[inline(always)]
pub(crate) fn patch_tunnel(h: &mut [u8], t: &TunnelTmpl, inner: usize, ident: u16, entropy: u16) {
    // As ipv4::Repr::emit and udp::Repr::emit: lengths as u16.
    let total = (t.len - IP_AT + inner) as u16;
    put16(h, IP_AT + 2, total);
    put16(h, IP_AT + 4, ident);
    let c = !checksum::fold(t.ip_sum + u32::from(total) + u32::from(ident));
    put16(h, IP_AT + 10, c);
    if t.udp {
        put16(h, UDP_AT, entropy);
        put16(h, UDP_AT + 4, (t.len - UDP_AT + inner) as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path's TTL decrement equals `ipv4::Packet::decrement_ttl`
    /// for every TTL it applies to (> 1) and every checksum value.
    #[test]
    fn ttl_shortcut_equals_rfc1624_update() {
        let mut a = [0u8; ipv4::HEADER_LEN];
        for ttl in [2u8, 3, 64, 128, 255] {
            for proto in [6u8, 17] {
                for c in 0..=u16::MAX {
                    a[8] = ttl;
                    a[9] = proto;
                    a[10..12].copy_from_slice(&c.to_be_bytes());
                    let mut b = a;
                    ipv4::Packet::new_unchecked(&mut a[..]).decrement_ttl();
                    decrement_ttl(&mut b);
                    assert_eq!(a, b, "ttl {ttl} proto {proto} checksum {c:#06x}");
                }
            }
        }
    }
}
