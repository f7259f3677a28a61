//! Labeled VPN routes: VPN-IPv4 (RFC 4364 §4.3.4) and VPN-IPv6 (RFC 4659
//! §3.2), with the label encoding of RFC 8277 §2.
//!
//! ```text
//! +---------------------------+
//! |   Length (1 octet)        |  bits of labels + RD + prefix
//! +---------------------------+
//! |   Label (3 octets)        |  20-bit label, 3 TC bits, S (bottom) bit;
//! +---------------------------+  repeated until S = 1
//! |   RD (8 octets)           |
//! +---------------------------+
//! |   Prefix (variable)       |
//! +---------------------------+
//! ```

use ipnet::IpNet;
use smallvec::SmallVec;

use super::ip::{prefix_v4, prefix_v6};
use crate::types::{Label, RouteDistinguisher};
use crate::{DecodeError, EncodeError, Reader};

/// A route's label stack: one label (sometimes two) inline, so decoding a million routes
/// allocates nothing per route.
pub type Labels = SmallVec<[Label; 2]>;

/// One VPN route: label stack, route distinguisher and prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VpnRoute {
    /// Label stack, outermost first; never empty. In MP_UNREACH_NLRI this is
    /// usually `[Label::WITHDRAW]`, which always ends the stack on decode.
    pub labels: Labels,
    /// Route distinguisher.
    pub rd: RouteDistinguisher,
    /// IPv4 prefix for VPNv4, IPv6 for VPNv6.
    pub prefix: IpNet,
}

/// RFC 8277 §2.4 compatibility value in place of a label on withdrawal.
const WITHDRAW_RAW: u32 = 0x80_0000;

/// VPN routes of an MP_REACH_NLRI, or of an MP_UNREACH_NLRI when `withdrawn`.
pub(crate) fn decode(buf: &[u8], v6: bool, withdrawn: bool) -> Result<Vec<VpnRoute>, DecodeError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        let bits = r
            .u8()
            .ok_or_else(|| DecodeError::nlri("missing VPN prefix length"))?;
        let body = r
            .take(usize::from(bits).div_ceil(8))
            .ok_or_else(|| DecodeError::nlri("truncated VPN route"))?;
        out.push(decode_one(bits, body, v6, withdrawn)?);
    }
    Ok(out)
}

fn decode_one(bits: u8, body: &[u8], v6: bool, withdrawn: bool) -> Result<VpnRoute, DecodeError> {
    let mut bits = usize::from(bits);
    let mut r = Reader::new(body);
    let mut labels = Labels::new();
    // RFC 8277 - Section 2.2: labels are read until one with the S bit set;
    // RFC 8277 - Section 2.4: a withdrawal may carry 0x800000 instead. Any
    // entry whose label value is 0x80000 ends the stack (whatever its TC and
    // S bits), so a decoded stack only ever has Label::WITHDRAW last and
    // re-encodes to the same value.
    loop {
        if bits < 24 + 64 {
            return Err(DecodeError::nlri("VPN route too short for label and RD"));
        }
        let b = r
            .array::<3>()
            .ok_or_else(|| DecodeError::nlri("truncated label"))?;
        bits -= 24;
        let raw = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        // RFC 8277 - Section 2.4: in a withdrawal the field is an opaque compatibility
        // field that SHOULD be 0x800000; FRR sends 0x000000. A withdrawal's first field of
        // either value is that field alone (its S bit clear would otherwise run the stack
        // into the RD); another value is a label stack repeated by an older sender, read
        // to its S bit as in an advertisement.
        if withdrawn && labels.is_empty() && (raw == WITHDRAW_RAW || raw == 0) {
            labels.push(Label::WITHDRAW);
            break;
        }
        labels.push(Label::new(raw >> 4).unwrap_or(Label::WITHDRAW));
        if raw & 1 == 1 || raw >> 4 == Label::WITHDRAW.value() {
            break;
        }
    }
    let rd = RouteDistinguisher::from_bytes(
        r.array::<8>()
            .ok_or_else(|| DecodeError::nlri("truncated RD"))?,
    );
    bits -= 64;
    let max = if v6 { 128 } else { 32 };
    if bits > max {
        return Err(DecodeError::nlri(
            "VPN prefix length too long for the family",
        ));
    }
    let rest = r.rest();
    // The octet count was derived from the total length, so the prefix
    // occupies exactly the remaining octets unless labels/RD ended mid-octet
    // (impossible: both are whole octets).
    let bits = bits as u8;
    let prefix = if v6 {
        IpNet::V6(prefix_v6(bits, rest)?)
    } else {
        IpNet::V4(prefix_v4(bits, rest)?)
    };
    Ok(VpnRoute { labels, rd, prefix })
}

impl VpnRoute {
    pub(crate) fn encode(&self, v6: bool, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.labels.is_empty() {
            return Err(EncodeError::Invalid {
                what: "VPN route without a label",
            });
        }
        let (plen, addr): (u8, Vec<u8>) = match (self.prefix, v6) {
            (IpNet::V4(p), false) => (p.prefix_len(), p.addr().octets().to_vec()),
            (IpNet::V6(p), true) => (p.prefix_len(), p.addr().octets().to_vec()),
            _ => {
                return Err(EncodeError::Invalid {
                    what: "VPN prefix of the wrong family",
                })
            }
        };
        let bits = self.labels.len() * 24 + 64 + usize::from(plen);
        out.push(crate::len_u8(bits, "VPN route length")?);
        let last = self.labels.len() - 1;
        for (i, l) in self.labels.iter().enumerate() {
            let raw = if *l == Label::WITHDRAW {
                WITHDRAW_RAW
            } else {
                (l.value() << 4) | u32::from(i == last)
            };
            out.extend_from_slice(&raw.to_be_bytes()[1..]);
        }
        out.extend_from_slice(&self.rd.to_bytes());
        out.extend_from_slice(&addr[..usize::from(plen).div_ceil(8)]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::nlri::Nlri;
    use crate::{Afi, Safi};

    // TF agent route 172.31.41.236:2:10.47.255.252/32, label 16 (bottom).
    static VPNV4: [u8; 16] = [
        0x78, // length 120 bits = 24 label + 64 RD + 32 prefix
        0x00, 0x01, 0x01, // label 16, S = 1
        0x00, 0x01, 172, 31, 41, 236, 0x00, 0x02, // RD type 1 172.31.41.236:2
        10, 47, 255, 252, // prefix
    ];

    #[test]
    fn vpnv4_round_trip() {
        let n = Nlri::decode(Afi::Ipv4, Safi::MplsVpn, &VPNV4, false).unwrap();
        let want = VpnRoute {
            labels: vec![Label::new(16).unwrap()].into(),
            rd: RouteDistinguisher::ip(Ipv4Addr::new(172, 31, 41, 236), 2),
            prefix: "10.47.255.252/32".parse().unwrap(),
        };
        assert_eq!(n, Nlri::Vpnv4(vec![want]));
        let mut out = Vec::new();
        n.encode(&mut out).unwrap();
        assert_eq!(out, VPNV4);
    }

    #[test]
    fn vpnv6_round_trip_with_two_labels_and_withdraw_label() {
        let bytes = [
            0x98, // 152 bits = 48 labels + 64 RD + 40 prefix
            0x00, 0x01, 0x00, // label 16, S = 0
            0x00, 0x02, 0x01, // label 32, S = 1
            0x00, 0x00, 0xfc, 0x00, 0x00, 0x00, 0x00, 0x05, // RD 64512:5
            0x20, 0x01, 0x0d, 0xb8, 0x01, // 2001:db8:100::/40
            0x70, // 112 bits: withdraw label + RD + 2001:db8::/24 (truncated)
            0x80, 0x00, 0x00, // compatibility "label" 0x800000
            0x00, 0x00, 0xfc, 0x00, 0x00, 0x00, 0x00, 0x05, // RD 64512:5
            0x20, 0x01, 0x0d, // 2001:d00::/24
        ];
        let n = Nlri::decode(Afi::Ipv6, Safi::MplsVpn, &bytes, false).unwrap();
        let Nlri::Vpnv6(routes) = &n else {
            panic!("{n:?}")
        };
        assert_eq!(
            routes[0].labels.as_slice(),
            [Label::new(16).unwrap(), Label::new(32).unwrap()]
        );
        assert_eq!(
            routes[0].prefix,
            "2001:db8:100::/40".parse::<IpNet>().unwrap()
        );
        assert_eq!(routes[1].labels.as_slice(), [Label::WITHDRAW]);
        assert_eq!(routes[1].rd.to_string(), "64512:5");
        let mut out = Vec::new();
        n.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    /// FRR withdraws VPN routes with the compatibility field 0x000000 (S bit clear): in
    /// MP_UNREACH_NLRI that field stands alone, RD and prefix follow; 0x800000 too, and an
    /// older sender's repeated label stack is read to its S bit.
    #[test]
    fn withdrawal_compatibility_field_is_one_field_whatever_its_value() {
        for compat in [[0u8, 0, 0], [0x80, 0, 0]] {
            let mut bytes = vec![0x70]; // 112 bits = 24 + 64 + 24
            bytes.extend_from_slice(&compat);
            bytes.extend_from_slice(&[0x00, 0x00, 0xfd, 0xe9, 0x00, 0x00, 0x00, 0x09]); // RD 65001:9
            bytes.extend_from_slice(&[10, 200, 9]); // 10.200.9.0/24
            let n = Nlri::decode(Afi::Ipv4, Safi::MplsVpn, &bytes, true).unwrap();
            let want = VpnRoute {
                labels: vec![Label::WITHDRAW].into(),
                rd: "65001:9".parse().unwrap(),
                prefix: "10.200.9.0/24".parse().unwrap(),
            };
            assert_eq!(
                n,
                Nlri::Vpnv4(vec![want]),
                "compatibility field {compat:02x?}"
            );
        }
        // read as an advertisement, 0x000000 is label 0 without S: the stack runs on
        let mut bytes = vec![0x70, 0, 0, 0];
        bytes.extend_from_slice(&[0x00, 0x00, 0xfd, 0xe9, 0x00, 0x00, 0x00, 0x09, 10, 200, 9]);
        assert_ne!(
            Nlri::decode(Afi::Ipv4, Safi::MplsVpn, &bytes, false).ok(),
            Nlri::decode(Afi::Ipv4, Safi::MplsVpn, &bytes, true).ok()
        );
        // a withdrawal repeating a two-label stack
        let mut bytes = vec![0x88, 0x00, 0x01, 0x00, 0x00, 0x02, 0x01]; // 136 = 48 + 64 + 24
        bytes.extend_from_slice(&[0x00, 0x00, 0xfd, 0xe9, 0x00, 0x00, 0x00, 0x09, 10, 200, 9]);
        let Nlri::Vpnv4(r) = Nlri::decode(Afi::Ipv4, Safi::MplsVpn, &bytes, true).unwrap() else {
            panic!("not VPNv4");
        };
        assert_eq!(r[0].prefix, "10.200.9.0/24".parse::<IpNet>().unwrap());
        assert_eq!(r[0].rd.to_string(), "65001:9");
    }

    #[test]
    fn withdraw_label_value_ends_the_stack() {
        // Fuzz regression: label value 0x80000 with TC bits and no S bit,
        // followed by another label. It must end the stack so that
        // decode → encode → decode is stable.
        let bytes = [
            0x78, // 120 bits
            0x80, 0x00, 0x02, // label 0x80000, TC 1, S 0
            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, // RD 1:1
            0x0a, 0x00, 0x00, 0x00, // 32 more bits: 10.0.0.0/32
        ];
        let first = decode(&bytes, false, false).unwrap();
        assert_eq!(first[0].labels.as_slice(), [Label::WITHDRAW]);
        let mut out = Vec::new();
        first[0].encode(false, &mut out).unwrap();
        assert_eq!(decode(&out, false, false).unwrap(), first);
    }

    #[test]
    fn malformed_vpn() {
        // prefix length 33 after label + RD
        let mut b = VPNV4.to_vec();
        b[0] = 121;
        b.push(0);
        assert!(decode(&b, false, false).is_err());
        // truncated
        assert!(decode(&VPNV4[..10], false, false).is_err());
        // no bottom-of-stack before the data runs out
        assert!(decode(&[0x58, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0], false, false).is_err());
    }
}
