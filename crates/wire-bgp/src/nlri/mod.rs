//! Network layer reachability information per address family
//! (RFC 4760 §5 "NLRI encoding"):
//!
//! * [`ip`]: IPv4 / IPv6 unicast prefixes (RFC 4271 §4.3, RFC 4760 / 2545);
//! * [`vpn`]: VPNv4 / VPNv6 labeled VPN routes (RFC 4364 §4.3.4, RFC 4659
//!   §3.2, RFC 8277 §2);
//! * [`evpn`]: EVPN routes (RFC 7432 §7, RFC 9136 §3);
//! * [`rtc`]: route-target membership (RFC 4684 §4).
//!
//! All decoders report malformed NLRI as UPDATE "Invalid Network Field".

pub mod evpn;
pub mod ip;
pub mod rtc;
pub mod vpn;

use ipnet::{Ipv4Net, Ipv6Net};

pub use evpn::EvpnRoute;
pub use rtc::RtcRoute;
pub use vpn::VpnRoute;

use crate::types::{Afi, Safi};
use crate::{DecodeError, EncodeError, Reader};

/// NLRI of one address family, as carried in MP_REACH_NLRI /
/// MP_UNREACH_NLRI (or the UPDATE's own IPv4 fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nlri {
    /// AFI 1 / SAFI 1 (TF `inet`).
    Ipv4Unicast(Vec<Ipv4Net>),
    /// AFI 2 / SAFI 1 (TF `inet6`).
    Ipv6Unicast(Vec<Ipv6Net>),
    /// AFI 1 / SAFI 128 (TF `inet-vpn`); prefixes are IPv4.
    Vpnv4(Vec<VpnRoute>),
    /// AFI 2 / SAFI 128 (TF `inet6-vpn`); prefixes are IPv6.
    Vpnv6(Vec<VpnRoute>),
    /// AFI 25 / SAFI 70 (TF `e-vpn`).
    Evpn(Vec<EvpnRoute>),
    /// AFI 1 / SAFI 132 (TF `route-target`).
    RouteTarget(Vec<RtcRoute>),
    /// Any other family, verbatim.
    Unknown {
        /// Address family.
        afi: Afi,
        /// Subsequent address family.
        safi: Safi,
        /// Encoded NLRI.
        data: Vec<u8>,
    },
}

impl Nlri {
    /// The family this NLRI belongs to.
    pub fn afi_safi(&self) -> (Afi, Safi) {
        match self {
            Nlri::Ipv4Unicast(_) => (Afi::Ipv4, Safi::Unicast),
            Nlri::Ipv6Unicast(_) => (Afi::Ipv6, Safi::Unicast),
            Nlri::Vpnv4(_) => (Afi::Ipv4, Safi::MplsVpn),
            Nlri::Vpnv6(_) => (Afi::Ipv6, Safi::MplsVpn),
            Nlri::Evpn(_) => (Afi::L2vpn, Safi::Evpn),
            Nlri::RouteTarget(_) => (Afi::Ipv4, Safi::RouteTarget),
            Nlri::Unknown { afi, safi, .. } => (*afi, *safi),
        }
    }

    /// Number of routes (0 for unknown families).
    pub fn len(&self) -> usize {
        match self {
            Nlri::Ipv4Unicast(v) => v.len(),
            Nlri::Ipv6Unicast(v) => v.len(),
            Nlri::Vpnv4(v) | Nlri::Vpnv6(v) => v.len(),
            Nlri::Evpn(v) => v.len(),
            Nlri::RouteTarget(v) => v.len(),
            Nlri::Unknown { .. } => 0,
        }
    }

    /// Whether there are no (typed) routes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encoded size in octets of these routes inside MP_(UN)REACH_NLRI,
    /// so a sender can pack UPDATEs up to the message size limit.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v.len())
    }

    /// The NLRI of one family; `withdrawn` for MP_UNREACH_NLRI (where a VPN route's label
    /// field is RFC 8277's opaque compatibility field).
    pub(crate) fn decode(
        afi: Afi,
        safi: Safi,
        buf: &[u8],
        withdrawn: bool,
    ) -> Result<Nlri, DecodeError> {
        Ok(match (afi, safi) {
            (Afi::Ipv4, Safi::Unicast) => Nlri::Ipv4Unicast(ip::decode_v4(buf)?),
            (Afi::Ipv6, Safi::Unicast) => Nlri::Ipv6Unicast(ip::decode_v6(buf)?),
            (Afi::Ipv4, Safi::MplsVpn) => Nlri::Vpnv4(vpn::decode(buf, false, withdrawn)?),
            (Afi::Ipv6, Safi::MplsVpn) => Nlri::Vpnv6(vpn::decode(buf, true, withdrawn)?),
            (Afi::L2vpn, Safi::Evpn) => Nlri::Evpn(evpn::decode(buf)?),
            (Afi::Ipv4, Safi::RouteTarget) => Nlri::RouteTarget(rtc::decode(buf)?),
            _ => Nlri::Unknown {
                afi,
                safi,
                data: buf.to_vec(),
            },
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Nlri::Ipv4Unicast(v) => v.iter().for_each(|p| ip::encode_v4(p, out)),
            Nlri::Ipv6Unicast(v) => v.iter().for_each(|p| ip::encode_v6(p, out)),
            Nlri::Vpnv4(v) => v.iter().try_for_each(|r| r.encode(false, out))?,
            Nlri::Vpnv6(v) => v.iter().try_for_each(|r| r.encode(true, out))?,
            Nlri::Evpn(v) => v.iter().try_for_each(|r| r.encode(out))?,
            Nlri::RouteTarget(v) => v.iter().try_for_each(|r| r.encode(out))?,
            Nlri::Unknown { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }
}

/// Read one `<length in bits, prefix>` pair: the length octet, then
/// ceil(bits / 8) octets. Rejects lengths above `max_bits`.
pub(crate) fn read_prefix<'a>(
    r: &mut Reader<'a>,
    max_bits: u8,
) -> Result<(u8, &'a [u8]), DecodeError> {
    let bits = r
        .u8()
        .ok_or_else(|| DecodeError::nlri("missing prefix length"))?;
    if bits > max_bits {
        return Err(DecodeError::nlri("prefix length too long for the family"));
    }
    let bytes = r
        .take(usize::from(bits).div_ceil(8))
        .ok_or_else(|| DecodeError::nlri("truncated prefix"))?;
    Ok((bits, bytes))
}

/// Copy `src` into a zeroed array of `N` octets.
pub(crate) fn pad<const N: usize>(src: &[u8]) -> [u8; N] {
    let mut a = [0; N];
    let n = src.len().min(N);
    a[..n].copy_from_slice(&src[..n]);
    a
}
