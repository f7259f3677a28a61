//! Route Target membership NLRI (RFC 4684 §4), AFI 1 / SAFI 132.
//!
//! ```text
//! +-------------------------------+
//! | Length (1 octet, in bits)     |  0, or 32..=96
//! +-------------------------------+
//! | origin AS (4 octets)          |
//! +-------------------------------+
//! | route target (8 octets)       |  prefix of it, ceil((len-32)/8) octets
//! +-------------------------------+
//! ```
//!
//! TF shows these as `<origin-as>:target:<asn>:<n>` in `bgp.rtarget.0`.

use std::fmt;

use crate::types::RouteTarget;
use crate::{DecodeError, EncodeError, Reader};

/// One route-target membership route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RtcRoute {
    /// Prefix length in bits: 0 (the default route) or 32..=96.
    pub prefix_len: u8,
    /// Origin AS (0 for the default route).
    pub origin_as: u32,
    /// Route target octets; only the first `prefix_len - 32` bits count.
    pub target: [u8; 8],
}

impl RtcRoute {
    /// The default route-target membership route (length 0): "send me
    /// every VPN route".
    pub const DEFAULT: RtcRoute = RtcRoute {
        prefix_len: 0,
        origin_as: 0,
        target: [0; 8],
    };

    /// A full-length (/96) membership route.
    pub fn new(origin_as: u32, rt: RouteTarget) -> Self {
        RtcRoute {
            prefix_len: 96,
            origin_as,
            target: rt.to_bytes(),
        }
    }

    /// The route target, when the route is full length and a known RT type.
    pub fn route_target(&self) -> Option<RouteTarget> {
        (self.prefix_len == 96)
            .then(|| RouteTarget::from_bytes(&self.target))
            .flatten()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.prefix_len != 0 && !(32..=96).contains(&self.prefix_len) {
            return Err(EncodeError::Invalid {
                what: "RT membership prefix length",
            });
        }
        let mut full = [0; 12];
        full[..4].copy_from_slice(&self.origin_as.to_be_bytes());
        full[4..].copy_from_slice(&self.target);
        out.push(self.prefix_len);
        out.extend_from_slice(&full[..usize::from(self.prefix_len).div_ceil(8)]);
        Ok(())
    }
}

impl fmt::Display for RtcRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.route_target() {
            _ if self.prefix_len == 0 => f.write_str("0:0:0/0"),
            Some(rt) => write!(f, "{}:{}", self.origin_as, rt),
            None => write!(
                f,
                "{}:{:02x?}/{}",
                self.origin_as, self.target, self.prefix_len
            ),
        }
    }
}

pub(crate) fn decode(buf: &[u8]) -> Result<Vec<RtcRoute>, DecodeError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        let bits = r
            .u8()
            .ok_or_else(|| DecodeError::nlri("missing RTC length"))?;
        // RFC 4684 - Section 4 (paraphrased): the prefix length is 0 (the
        // default route) or 32..=96; the origin AS is never partial, so
        // 1..=31 and anything above 96 are malformed.
        if bits != 0 && !(32..=96).contains(&bits) {
            return Err(DecodeError::nlri("RT membership prefix length"));
        }
        let bytes = r
            .take(usize::from(bits).div_ceil(8))
            .ok_or_else(|| DecodeError::nlri("truncated RT membership route"))?;
        let full: [u8; 12] = super::pad(bytes);
        let [a, b, c, d, t @ ..] = full;
        out.push(RtcRoute {
            prefix_len: bits,
            origin_as: u32::from_be_bytes([a, b, c, d]),
            target: t,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlri::Nlri;
    use crate::{Afi, Safi};

    #[test]
    fn rtc_round_trip() {
        let bytes = [
            96, // full length
            0x00, 0x00, 0xfc, 0x00, // origin AS 64512
            0x00, 0x02, 0xfc, 0x00, 0x00, 0x7a, 0x12, 0x01, // target:64512:8000001
            0,    // default route
            48,   // partial: origin AS + 2 octets of RT (type 0x00 0x02)
            0x00, 0x00, 0xfc, 0x00, 0x00, 0x02,
        ];
        let n = Nlri::decode(Afi::Ipv4, Safi::RouteTarget, &bytes, false).unwrap();
        let Nlri::RouteTarget(routes) = &n else {
            panic!("{n:?}")
        };
        let rt: RouteTarget = "target:64512:8000001".parse().unwrap();
        assert_eq!(routes[0], RtcRoute::new(64512, rt));
        assert_eq!(routes[0].to_string(), "64512:target:64512:8000001");
        assert_eq!(routes[1], RtcRoute::DEFAULT);
        assert_eq!(routes[2].prefix_len, 48);
        assert_eq!(routes[2].target, [0, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(routes[2].route_target(), None);
        let mut out = Vec::new();
        n.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn rtc_malformed() {
        assert!(decode(&[97; 14]).is_err());
        assert!(decode(&[16, 0, 0]).is_err());
        assert!(decode(&[96, 0, 0, 0]).is_err());
    }
}
