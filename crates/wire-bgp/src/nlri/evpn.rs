//! EVPN NLRI (RFC 7432 §7, RFC 9136 §3 for the IP Prefix route).
//!
//! ```text
//! +-----------------------------------+
//! |    Route Type (1 octet)           |
//! +-----------------------------------+
//! |     Length (1 octet)              |  octets of route type specific
//! +-----------------------------------+
//! | Route Type specific (variable)    |
//! +-----------------------------------+
//! ```
//!
//! Types 1-5 are typed; other types are kept verbatim. Label fields are kept
//! as raw 3-octet [`LabelField`]s since they carry a VNI for VXLAN
//! (RFC 8365 §5.1.3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::ip::{prefix_v4, prefix_v6};
use crate::types::{Esi, LabelField, MacAddr, RouteDistinguisher};
use crate::{len_u8, DecodeError, EncodeError, Reader};

/// One EVPN route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EvpnRoute {
    /// Type 1, Ethernet Auto-Discovery (RFC 7432 §7.1).
    EthernetAd {
        /// Route distinguisher.
        rd: RouteDistinguisher,
        /// Ethernet segment.
        esi: Esi,
        /// Ethernet tag.
        eth_tag: u32,
        /// MPLS label / VNI.
        label: LabelField,
    },
    /// Type 2, MAC/IP Advertisement (RFC 7432 §7.2).
    MacIp {
        /// Route distinguisher.
        rd: RouteDistinguisher,
        /// Ethernet segment.
        esi: Esi,
        /// Ethernet tag.
        eth_tag: u32,
        /// MAC address.
        mac: MacAddr,
        /// Optional IPv4 / IPv6 address.
        ip: Option<IpAddr>,
        /// MPLS label 1 / L2 VNI.
        label1: LabelField,
        /// Optional MPLS label 2 / L3 VNI.
        label2: Option<LabelField>,
    },
    /// Type 3, Inclusive Multicast Ethernet Tag (RFC 7432 §7.3).
    InclusiveMulticast {
        /// Route distinguisher.
        rd: RouteDistinguisher,
        /// Ethernet tag.
        eth_tag: u32,
        /// Originating router's IP address.
        orig_ip: IpAddr,
    },
    /// Type 4, Ethernet Segment (RFC 7432 §7.4).
    EthernetSegment {
        /// Route distinguisher.
        rd: RouteDistinguisher,
        /// Ethernet segment.
        esi: Esi,
        /// Originating router's IP address.
        orig_ip: IpAddr,
    },
    /// Type 5, IP Prefix (RFC 9136 §3.1). Prefix and gateway share a family.
    IpPrefix {
        /// Route distinguisher.
        rd: RouteDistinguisher,
        /// Ethernet segment.
        esi: Esi,
        /// Ethernet tag.
        eth_tag: u32,
        /// IP prefix.
        prefix: IpNet,
        /// Gateway IP address (zero when unused).
        gateway: IpAddr,
        /// MPLS label / VNI.
        label: LabelField,
    },
    /// Any other route type, verbatim.
    Unknown {
        /// Route type.
        route_type: u8,
        /// Route-type-specific octets.
        data: Vec<u8>,
    },
}

pub(crate) fn decode(buf: &[u8]) -> Result<Vec<EvpnRoute>, DecodeError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        let t = r
            .u8()
            .ok_or_else(|| DecodeError::nlri("missing EVPN route type"))?;
        let len = r
            .u8()
            .ok_or_else(|| DecodeError::nlri("missing EVPN length"))?;
        let body = r
            .take(usize::from(len))
            .ok_or_else(|| DecodeError::nlri("truncated EVPN route"))?;
        let route = decode_one(t, body).ok_or_else(|| DecodeError::nlri("malformed EVPN route"))?;
        out.push(route);
    }
    Ok(out)
}

fn rd(r: &mut Reader<'_>) -> Option<RouteDistinguisher> {
    r.array().map(RouteDistinguisher::from_bytes)
}

fn label(r: &mut Reader<'_>) -> Option<LabelField> {
    r.array().map(LabelField::from_bytes)
}

/// `<length in bits><address>` with length 32 or 128 (0 allowed if `opt`).
fn ip_with_len(r: &mut Reader<'_>, opt: bool) -> Option<Option<IpAddr>> {
    match r.u8()? {
        0 if opt => Some(None),
        32 => Some(Some(IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)))),
        128 => Some(Some(IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)))),
        _ => None,
    }
}

fn decode_one(t: u8, body: &[u8]) -> Option<EvpnRoute> {
    let mut r = Reader::new(body);
    let route = match t {
        1 => EvpnRoute::EthernetAd {
            rd: rd(&mut r)?,
            esi: Esi(r.array()?),
            eth_tag: r.u32()?,
            label: label(&mut r)?,
        },
        2 => {
            let rd = rd(&mut r)?;
            let esi = Esi(r.array()?);
            let eth_tag = r.u32()?;
            // RFC 7432 - Section 7.2: "The MAC Address Length field is in
            // bits, and it is set to 48."
            if r.u8()? != 48 {
                return None;
            }
            let mac = MacAddr(r.array()?);
            let ip = ip_with_len(&mut r, true)?;
            let label1 = label(&mut r)?;
            let label2 = if r.is_empty() {
                None
            } else {
                Some(label(&mut r)?)
            };
            EvpnRoute::MacIp {
                rd,
                esi,
                eth_tag,
                mac,
                ip,
                label1,
                label2,
            }
        }
        3 => EvpnRoute::InclusiveMulticast {
            rd: rd(&mut r)?,
            eth_tag: r.u32()?,
            orig_ip: ip_with_len(&mut r, false)??,
        },
        4 => EvpnRoute::EthernetSegment {
            rd: rd(&mut r)?,
            esi: Esi(r.array()?),
            orig_ip: ip_with_len(&mut r, false)??,
        },
        5 => {
            // RFC 9136 - Section 3.1: the NLRI length is 34 octets for IPv4
            // and 58 for IPv6; prefix and gateway are both 4 or 16 octets.
            let v6 = match body.len() {
                34 => false,
                58 => true,
                _ => return None,
            };
            let rd = rd(&mut r)?;
            let esi = Esi(r.array()?);
            let eth_tag = r.u32()?;
            let plen = r.u8()?;
            let (prefix, gateway) = if v6 {
                let p = prefix_v6(plen, &r.array::<16>()?).ok()?;
                (IpNet::V6(p), IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)))
            } else {
                let p = prefix_v4(plen, &r.array::<4>()?).ok()?;
                (IpNet::V4(p), IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)))
            };
            let label = label(&mut r)?;
            EvpnRoute::IpPrefix {
                rd,
                esi,
                eth_tag,
                prefix,
                gateway,
                label,
            }
        }
        _ => {
            return Some(EvpnRoute::Unknown {
                route_type: t,
                data: body.to_vec(),
            })
        }
    };
    // Trailing octets inside a typed route are a length error.
    r.is_empty().then_some(route)
}

fn push_ip(ip: &IpAddr, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(a) => {
            out.push(32);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(128);
            out.extend_from_slice(&a.octets());
        }
    }
}

impl EvpnRoute {
    /// The route type code.
    pub fn route_type(&self) -> u8 {
        match self {
            EvpnRoute::EthernetAd { .. } => 1,
            EvpnRoute::MacIp { .. } => 2,
            EvpnRoute::InclusiveMulticast { .. } => 3,
            EvpnRoute::EthernetSegment { .. } => 4,
            EvpnRoute::IpPrefix { .. } => 5,
            EvpnRoute::Unknown { route_type, .. } => *route_type,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut v = Vec::new();
        match self {
            EvpnRoute::EthernetAd {
                rd,
                esi,
                eth_tag,
                label,
            } => {
                v.extend_from_slice(&rd.to_bytes());
                v.extend_from_slice(&esi.0);
                v.extend_from_slice(&eth_tag.to_be_bytes());
                v.extend_from_slice(&label.to_bytes());
            }
            EvpnRoute::MacIp {
                rd,
                esi,
                eth_tag,
                mac,
                ip,
                label1,
                label2,
            } => {
                v.extend_from_slice(&rd.to_bytes());
                v.extend_from_slice(&esi.0);
                v.extend_from_slice(&eth_tag.to_be_bytes());
                v.push(48);
                v.extend_from_slice(&mac.0);
                match ip {
                    Some(ip) => push_ip(ip, &mut v),
                    None => v.push(0),
                }
                v.extend_from_slice(&label1.to_bytes());
                if let Some(l) = label2 {
                    v.extend_from_slice(&l.to_bytes());
                }
            }
            EvpnRoute::InclusiveMulticast {
                rd,
                eth_tag,
                orig_ip,
            } => {
                v.extend_from_slice(&rd.to_bytes());
                v.extend_from_slice(&eth_tag.to_be_bytes());
                push_ip(orig_ip, &mut v);
            }
            EvpnRoute::EthernetSegment { rd, esi, orig_ip } => {
                v.extend_from_slice(&rd.to_bytes());
                v.extend_from_slice(&esi.0);
                push_ip(orig_ip, &mut v);
            }
            EvpnRoute::IpPrefix {
                rd,
                esi,
                eth_tag,
                prefix,
                gateway,
                label,
            } => {
                v.extend_from_slice(&rd.to_bytes());
                v.extend_from_slice(&esi.0);
                v.extend_from_slice(&eth_tag.to_be_bytes());
                v.push(prefix.prefix_len());
                match (prefix, gateway) {
                    (IpNet::V4(p), IpAddr::V4(g)) => {
                        v.extend_from_slice(&p.addr().octets());
                        v.extend_from_slice(&g.octets());
                    }
                    (IpNet::V6(p), IpAddr::V6(g)) => {
                        v.extend_from_slice(&p.addr().octets());
                        v.extend_from_slice(&g.octets());
                    }
                    _ => {
                        return Err(EncodeError::Invalid {
                            what: "EVPN type 5 mixed families",
                        })
                    }
                }
                v.extend_from_slice(&label.to_bytes());
            }
            EvpnRoute::Unknown { data, .. } => v.extend_from_slice(data),
        }
        out.push(self.route_type());
        out.push(len_u8(v.len(), "EVPN route")?);
        out.extend_from_slice(&v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlri::Nlri;
    use crate::{Afi, Label, Safi};

    fn round_trip(bytes: &[u8]) -> Vec<EvpnRoute> {
        let n = Nlri::decode(Afi::L2vpn, Safi::Evpn, bytes, false).unwrap();
        let mut out = Vec::new();
        n.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
        match n {
            Nlri::Evpn(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn type2_mac_ip_round_trip() {
        let bytes = [
            0x02, 0x25, // type 2, length 37
            0x00, 0x01, 10, 0, 0, 1, 0x00, 0x03, // RD 10.0.0.1:3
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ESI 0
            0x00, 0x00, 0x00, 0x00, // ethernet tag 0
            48, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, // MAC length 48, MAC
            32, 10, 1, 1, 5, // IP length 32, 10.1.1.5
            0x00, 0x00, 0x05, // label1: VNI 5
        ];
        let routes = round_trip(&bytes);
        assert_eq!(
            routes,
            vec![EvpnRoute::MacIp {
                rd: "10.0.0.1:3".parse().unwrap(),
                esi: Esi::ZERO,
                eth_tag: 0,
                mac: "02:aa:bb:cc:dd:ee".parse().unwrap(),
                ip: Some("10.1.1.5".parse().unwrap()),
                label1: LabelField::new(5).unwrap(),
                label2: None,
            }]
        );
    }

    #[test]
    fn type2_no_ip_two_labels_round_trip() {
        let bytes = [
            0x02, 0x24, // type 2, length 36
            0x00, 0x00, 0xfc, 0x00, 0x00, 0x00, 0x00, 0x01, // RD 64512:1
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, // ESI
            0x00, 0x00, 0x00, 0x07, // ethernet tag 7
            48, 0x02, 0, 0, 0, 0, 1, // MAC
            0, // no IP
            0x00, 0x01, 0x01, // label1: MPLS 16, S
            0x00, 0x02, 0x01, // label2: MPLS 32, S
        ];
        let routes = round_trip(&bytes);
        let EvpnRoute::MacIp {
            ip,
            label1,
            label2,
            eth_tag,
            ..
        } = &routes[0]
        else {
            panic!("{routes:?}")
        };
        assert_eq!((*ip, *eth_tag), (None, 7));
        assert_eq!(label1.label(), Label::new(16).unwrap());
        assert_eq!(label2.map(|l| l.label()), Label::new(32));
    }

    #[test]
    fn type3_imet_round_trip() {
        let bytes = [
            0x03, 0x11, // type 3, length 17
            0x00, 0x01, 10, 0, 0, 1, 0x00, 0x03, // RD 10.0.0.1:3
            0x00, 0x00, 0x00, 0x00, // ethernet tag
            32, 10, 0, 0, 1, // originating router 10.0.0.1
        ];
        assert_eq!(
            round_trip(&bytes),
            vec![EvpnRoute::InclusiveMulticast {
                rd: "10.0.0.1:3".parse().unwrap(),
                eth_tag: 0,
                orig_ip: "10.0.0.1".parse().unwrap(),
            }]
        );
    }

    #[test]
    fn type1_type4_type5_and_unknown_round_trip() {
        let mut bytes = vec![
            0x01, 0x19, // type 1, length 25
            0, 0, 0, 1, 0, 0, 0, 2, // RD 1:2
            0, 0, 0, 0, 0, 0, 0, 0, 0, 9, // ESI
            0xff, 0xff, 0xff, 0xff, // MAX-ET
            0, 0, 0, // label
            0x04, 0x17, // type 4, length 23
            0, 0, 0, 1, 0, 0, 0, 2, // RD 1:2
            0, 0, 0, 0, 0, 0, 0, 0, 0, 9, // ESI
            32, 192, 0, 2, 1, // originating router
            0x05, 0x22, // type 5, length 34
            0, 0, 0, 1, 0, 0, 0, 2, // RD 1:2
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ESI
            0, 0, 0, 0, // ethernet tag
            24, 10, 2, 3, 0, // prefix 10.2.3.0/24
            0, 0, 0, 0, // gateway 0.0.0.0
            0x00, 0x00, 0x0a, // VNI 10
            0x09, 0x02, 0xab, 0xcd, // unknown type 9, 2 octets
        ];
        let routes = round_trip(&bytes);
        assert_eq!(routes.len(), 4);
        assert_eq!(
            routes[2],
            EvpnRoute::IpPrefix {
                rd: RouteDistinguisher::as2(1, 2),
                esi: Esi::ZERO,
                eth_tag: 0,
                prefix: "10.2.3.0/24".parse().unwrap(),
                gateway: "0.0.0.0".parse().unwrap(),
                label: LabelField::new(10).unwrap(),
            }
        );
        assert_eq!(
            routes[3],
            EvpnRoute::Unknown {
                route_type: 9,
                data: vec![0xab, 0xcd]
            }
        );
        // malformed: MAC length 47
        bytes.truncate(0);
        bytes.extend_from_slice(&[2, 33]);
        bytes.extend_from_slice(&[0; 22]);
        bytes.push(47);
        bytes.extend_from_slice(&[0; 10]);
        assert!(decode(&bytes).is_err());
        // truncated
        assert!(decode(&[3, 17, 0, 0]).is_err());
    }
}
