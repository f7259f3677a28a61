//! `filament-wire-pkt`: packet wire formats as zero-copy views, in the style
//! of smoltcp's `wire/` module. Each protocol has
//!
//! * a `Packet<T: AsRef<[u8]>>` view: `new_checked` validates lengths once
//!   (use it on untrusted input), `new_unchecked` trusts the caller (emit);
//!   field getters read from the buffer, setters write into it;
//! * a `Repr` value: `parse(&Packet) -> Result<Repr>`, `emit(&mut Packet)`,
//!   `buffer_len()` (header length).
//!
//! Formats: Ethernet II + 802.1Q ([`ethernet`]), ARP (RFC 826, [`arp`]),
//! IPv4 (RFC 791, [`ipv4`]), IPv6 (RFC 8200, [`ipv6`]), ICMPv4/ICMPv6
//! (RFC 792 / 4443, [`icmp`]), UDP (RFC 768, [`udp`]), TCP (RFC 9293,
//! [`tcp`]), MPLS label stack entries (RFC 3032, [`mpls`]), VXLAN (RFC 7348,
//! [`vxlan`]), GRE (RFC 2784/2890, [`gre`]); and the Internet checksum with
//! its incremental update (RFC 1071 / RFC 1624, [`checksum`]).
//!
//! Nothing here panics on untrusted input given to `new_checked`/`parse`.

#![warn(missing_docs)]

pub mod arp;
pub mod checksum;
pub mod dhcp;
pub mod ethernet;
pub mod gre;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod mpls;
pub mod tcp;
pub mod udp;
pub mod vxlan;

#[cfg(test)]
mod tests;

/// Why a buffer is not a valid packet of a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the header (or than its length fields say).
    #[error("{proto}: truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Protocol being parsed.
        proto: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A field has a value the format does not allow.
    #[error("{proto}: malformed {field}")]
    Malformed {
        /// Protocol being parsed.
        proto: &'static str,
        /// Which field.
        field: &'static str,
    },
}

/// Result of parsing.
pub type Result<T> = std::result::Result<T, Error>;

#[inline]
pub(crate) fn need(proto: &'static str, have: usize, need: usize) -> Result<()> {
    if have < need {
        Err(Error::Truncated { proto, need, have })
    } else {
        Ok(())
    }
}

#[inline]
pub(crate) fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// IP protocol numbers used here (IANA "Assigned Internet Protocol Numbers").
pub mod ip_proto {
    /// ICMP
    pub const ICMP: u8 = 1;
    /// TCP
    pub const TCP: u8 = 6;
    /// UDP
    pub const UDP: u8 = 17;
    /// GRE
    pub const GRE: u8 = 47;
    /// ICMPv6
    pub const ICMPV6: u8 = 58;
    /// IPv6 hop-by-hop options
    pub const HOPOPT: u8 = 0;
    /// IPv6 fragment header
    pub const IPV6_FRAG: u8 = 44;
}

/// Well-known UDP ports of the overlay and of DHCP.
pub mod ports {
    /// MPLS-in-UDP (RFC 7510), used by TF.
    pub const MPLS_OVER_UDP: u16 = 6635;
    /// TF's legacy MPLSoUDP port, accepted on receive (tf-facts §5.4).
    pub const MPLS_OVER_UDP_LEGACY: u16 = 51234;
    /// VXLAN (RFC 7348).
    pub const VXLAN: u16 = 4789;
    /// DHCP server.
    pub const DHCP_SERVER: u16 = 67;
    /// DHCP client.
    pub const DHCP_CLIENT: u16 = 68;
}
