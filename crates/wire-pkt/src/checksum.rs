//! The Internet checksum (RFC 1071), the IPv4/IPv6 pseudo-header sums of
//! TCP/UDP/ICMPv6, and the incremental update used when NAT rewrites an
//! address or port (RFC 1624).

use std::net::IpAddr;

/// One's-complement sum of `data` (16-bit big-endian words, odd byte padded
/// with zero), not folded and not inverted.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        acc += u64::from(rest[i]) << 8;
    }
    // Fold 64 -> 32 bits keeping the one's-complement carries.
    while acc >> 32 != 0 {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// Fold a 32-bit sum to 16 bits (end-around carry). Two rounds always
/// suffice: the first leaves at most 0xffff + 0xffff = 0x1fffe, the second
/// at most 0xfffe + 1. Branch-free (this runs for every forwarded packet).
#[inline]
pub fn fold(s: u32) -> u16 {
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// RFC 1071: the checksum of `data` (folded, inverted).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// The pseudo-header sum for TCP/UDP (RFC 768 / RFC 9293 §3.1 for IPv4,
/// RFC 8200 §8.1 for IPv6): source, destination, protocol, upper-layer
/// length. Mixed address families give 0 (callers never mix them).
#[inline]
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, proto: u8, len: u32) -> u32 {
    let mut acc: u64 = u64::from(proto) + u64::from(len);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc += u64::from(u32::from(*s) >> 16) + u64::from(u32::from(*s) & 0xffff);
            acc += u64::from(u32::from(*d) >> 16) + u64::from(u32::from(*d) & 0xffff);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            for w in s.segments().iter().chain(d.segments().iter()) {
                acc += u64::from(*w);
            }
        }
        _ => return 0,
    }
    while acc >> 32 != 0 {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// Checksum of an upper-layer segment `l4` (with its checksum field
/// zeroed) under the pseudo-header.
#[inline]
pub fn l4_checksum(src: &IpAddr, dst: &IpAddr, proto: u8, l4: &[u8]) -> u16 {
    let ph = pseudo_header(src, dst, proto, l4.len() as u32);
    let s = u64::from(ph) + u64::from(sum(l4));
    !fold(((s & 0xffff_ffff) + (s >> 32)) as u32)
}

/// RFC 1624 §3 eqn. 3: the new checksum after a 16-bit word changed from
/// `old` to `new`: `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!check) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// RFC 1624 update for a 32-bit field (an IPv4 address) changed.
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let c = update16(check, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// RFC 1624 update for an address of either family changed (IPv6: eight
/// words).
pub fn update_addr(check: u16, old: &IpAddr, new: &IpAddr) -> u16 {
    match (old, new) {
        (IpAddr::V4(o), IpAddr::V4(n)) => update32(check, u32::from(*o), u32::from(*n)),
        (IpAddr::V6(o), IpAddr::V6(n)) => o
            .segments()
            .iter()
            .zip(n.segments().iter())
            .fold(check, |c, (a, b)| update16(c, *a, *b)),
        _ => check,
    }
}
