//! The PMSI Tunnel attribute (RFC 6514 §5, type code 22) as EVPN uses it on
//! Inclusive Multicast Ethernet Tag routes (RFC 7432 §11.2, RFC 8365 §5.1.3).
//!
//! RFC 7432 - Section 11.2: "The Inclusive Multicast Ethernet Tag route
//! MUST carry a PMSI Tunnel attribute as specified in [RFC6514]." With
//! ingress replication (tunnel type 6) the tunnel identifier is the unicast
//! address of the PE that receives the flooded traffic, and the MPLS Label
//! field carries the label (in its high 20 bits) or, with VXLAN, the 24-bit
//! VNI (RFC 8365 §5.1.3: "the MPLS label field ... carries the VNI").
//!
//! The attribute travels in the speaker's [`crate::PathAttr::Unknown`] form
//! (it is optional transitive, so a route passed on keeps it); this module
//! only gives its value a typed view.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::types::LabelField;

/// Type code of the PMSI Tunnel attribute (RFC 6514 §5).
pub const PMSI_TUNNEL: u8 = 22;

/// Flags a PMSI Tunnel attribute is sent with: optional, transitive.
pub const PMSI_TUNNEL_FLAGS: u8 = 0xC0;

enum_with_unknown! {
    /// PMSI tunnel types (RFC 6514 §5, RFC 7385 registry).
    pub enum PmsiTunnelType(u8) {
        /// No tunnel information present.
        NoTunnelInfo = 0,
        /// RSVP-TE P2MP LSP.
        RsvpTeP2mp = 1,
        /// mLDP P2MP LSP.
        MldpP2mp = 2,
        /// PIM-SSM tree.
        PimSsm = 3,
        /// PIM-SM tree.
        PimSm = 4,
        /// BIDIR-PIM tree.
        BidirPim = 5,
        /// Ingress replication: the flood list is built from these routes.
        IngressReplication = 6,
        /// mLDP MP2MP LSP.
        MldpMp2mp = 7,
    }
}

/// A decoded PMSI Tunnel attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmsiTunnel {
    /// Flags octet (bit 0: Leaf Information Required).
    pub flags: u8,
    /// How the flooded traffic is carried.
    pub tunnel_type: PmsiTunnelType,
    /// The 3-octet MPLS Label field (a label in the high 20 bits, or a VNI).
    pub label: LabelField,
    /// Tunnel identifier: for ingress replication the receiving PE's address.
    pub tunnel_id: Vec<u8>,
}

impl PmsiTunnel {
    /// Ingress replication towards `endpoint` with `label` (RFC 7432 §11.2).
    pub fn ingress_replication(label: LabelField, endpoint: IpAddr) -> Self {
        let tunnel_id = match endpoint {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        PmsiTunnel {
            flags: 0,
            tunnel_type: PmsiTunnelType::IngressReplication,
            label,
            tunnel_id,
        }
    }

    /// Decode an attribute value: flags (1), tunnel type (1), MPLS label
    /// (3), tunnel identifier (the rest). `None` when shorter than 5 octets.
    pub fn decode(value: &[u8]) -> Option<Self> {
        let (&[flags, ty, l0, l1, l2], id) = value.split_first_chunk::<5>()?;
        Some(PmsiTunnel {
            flags,
            tunnel_type: PmsiTunnelType::from(ty),
            label: LabelField::from_bytes([l0, l1, l2]),
            tunnel_id: id.to_vec(),
        })
    }

    /// The attribute value (without the attribute header).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(5 + self.tunnel_id.len());
        v.push(self.flags);
        v.push(self.tunnel_type.into());
        v.extend_from_slice(&self.label.to_bytes());
        v.extend_from_slice(&self.tunnel_id);
        v
    }

    /// The tunnel identifier as an address, when it is 4 or 16 octets (as
    /// ingress replication's is).
    pub fn endpoint(&self) -> Option<IpAddr> {
        if let Ok(a) = <[u8; 4]>::try_from(self.tunnel_id.as_slice()) {
            return Some(IpAddr::V4(Ipv4Addr::from(a)));
        }
        <[u8; 16]>::try_from(self.tunnel_id.as_slice())
            .ok()
            .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_replication_round_trips_with_a_vni() {
        let vni = LabelField::new(100).unwrap();
        let p = PmsiTunnel::ingress_replication(vni, "10.77.0.9".parse().unwrap());
        let bytes = p.encode();
        // flags 0, type 6, VNI 100 as 3 octets, IPv4 endpoint.
        assert_eq!(bytes, [0, 6, 0, 0, 100, 10, 77, 0, 9]);
        let back = PmsiTunnel::decode(&bytes).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.endpoint(), Some("10.77.0.9".parse().unwrap()));
        assert_eq!(back.label.value(), 100);
    }

    #[test]
    fn short_values_and_odd_identifiers() {
        assert_eq!(PmsiTunnel::decode(&[0, 6, 0, 0]), None);
        let p = PmsiTunnel::decode(&[1, 9, 0x00, 0x3e, 0x81]).unwrap();
        assert_eq!(p.tunnel_type, PmsiTunnelType::Unknown(9));
        assert_eq!(p.label.label().value(), 1000);
        assert_eq!(p.endpoint(), None);
        let v6 = PmsiTunnel::ingress_replication(
            LabelField::new(7).unwrap(),
            "2001:db8::1".parse().unwrap(),
        );
        assert_eq!(
            PmsiTunnel::decode(&v6.encode()).unwrap().endpoint(),
            Some("2001:db8::1".parse().unwrap())
        );
    }
}
