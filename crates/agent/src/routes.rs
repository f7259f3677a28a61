//! Route items between the agent and the control node (tf-facts §2.3–2.5): the entries the
//! agent publishes for its ports (inet `1/1` and EVPN `25/242`), and the reading of pushed
//! routes into tunnel paths. Pure functions.

use std::net::{IpAddr, Ipv4Addr};

use filament_dataplane::{MacAddr, TunnelEncap as DpEncap};
use filament_wire_xmpp::route::{Entry, NextHop, NhLabel, Nlri, TunnelEncap};
use filament_wire_xmpp::LoadBalance;

use crate::model::Encap;

/// What the agent exports for one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// routing instance
    pub vrf: String,
    /// VN fq name string
    pub vn: String,
    /// port address
    pub ip: Ipv4Addr,
    /// port MAC
    pub mac: MacAddr,
    /// our fabric address (next hop)
    pub fabric_ip: Ipv4Addr,
    /// L3 MPLS label
    pub label: u32,
    /// L2 MPLS label (EVPN)
    pub l2_label: u32,
    /// VNI, if the network has one
    pub vni: Option<u32>,
    /// encapsulations allowed, priority order
    pub encaps: Vec<Encap>,
    /// security-group ids
    pub sgs: Vec<u32>,
}

fn xmpp_encap(e: Encap) -> TunnelEncap {
    match e {
        Encap::MplsOverGre => TunnelEncap::Gre,
        Encap::MplsOverUdp => TunnelEncap::Udp,
        Encap::Vxlan => TunnelEncap::Vxlan,
    }
}

fn next_hop(x: &Export, label: u32, encaps: Vec<TunnelEncap>, mac: Option<String>) -> NextHop {
    NextHop {
        af: 1,
        address: x.fabric_ip.to_string(),
        mac,
        label: Some(NhLabel::Value(label)),
        vni: x.vni,
        tunnel_encapsulation: encaps,
        virtual_network: Some(x.vn.clone()),
        ..NextHop::default()
    }
}

fn common(x: &Export, nlri: Nlri, nh: NextHop) -> Entry {
    Entry {
        nlri,
        next_hops: vec![nh],
        version: Some(1),
        virtual_network: Some(x.vn.clone()),
        security_groups: x.sgs.clone(),
        // tf-facts §2.4: "normal interface routes are advertised with 200"; med 0.
        local_preference: Some(200),
        med: Some(0),
        load_balance: Some(LoadBalance {
            fields: Vec::new(),
            decision: Some("field-hash".into()),
        }),
        sub_protocol: Some("interface".into()),
        ..Entry::default()
    }
}

/// The inet `1/1` entry: label = the L3 label; the MPLS encapsulations allowed, in priority
/// order. A TF agent offers MPLS only on inet routes (VXLAN is for EVPN, and TF's control
/// node drops `vxlan` from inet items); with VXLAN alone allowed it offers MPLSoGRE and
/// MPLSoUDP, which the receivers fall back to (TF's `TunnelType::ComputeType`).
pub fn inet_entry(x: &Export) -> Entry {
    let mut encaps: Vec<TunnelEncap> = x
        .encaps
        .iter()
        .copied()
        .filter(|e| *e != Encap::Vxlan)
        .map(xmpp_encap)
        .collect();
    if encaps.is_empty() {
        encaps = vec![TunnelEncap::Gre, TunnelEncap::Udp];
    }
    let nlri = Nlri {
        af: 1,
        safi: 1,
        address: Some(format!("{}/32", x.ip)),
        ..Nlri::default()
    };
    common(x, nlri, next_hop(x, x.label, encaps, None))
}

/// The EVPN `25/242` entry (mac + ip): label = the L2 label for MPLS encapsulations, the VNI
/// when VXLAN is the preferred one.
pub fn evpn_entry(x: &Export) -> Entry {
    let encaps: Vec<TunnelEncap> = x
        .encaps
        .iter()
        .copied()
        .filter(|e| *e != Encap::Vxlan || x.vni.is_some())
        .map(xmpp_encap)
        .collect();
    let label = match (x.encaps.first(), x.vni) {
        (Some(Encap::Vxlan), Some(v)) => v,
        _ => x.l2_label,
    };
    let nlri = Nlri {
        af: 25,
        safi: 242,
        ethernet_tag: Some(0),
        mac: Some(x.mac.to_string()),
        address: Some(format!("{}/32", x.ip)),
        ..Nlri::default()
    };
    common(x, nlri, next_hop(x, label, encaps, None))
}

/// One usable path of a pushed route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// remote fabric address
    pub dst: Ipv4Addr,
    /// encapsulation with label / VNI
    pub encap: DpEncap,
}

/// The paths of a pushed entry: per next hop, the first of our priorities the next hop
/// offers (tf-facts §2.5: "If a next-hop has a non-zero label and no encap list, `gre` is
/// filled in"). Next hops at `own` (our own routes reflected back) and unusable ones are
/// skipped.
pub fn paths(e: &Entry, prio: &[Encap], own: Ipv4Addr) -> Vec<Path> {
    let mut out = Vec::new();
    for nh in &e.next_hops {
        let Ok(IpAddr::V4(dst)) = nh.address.parse::<IpAddr>() else {
            continue;
        };
        if dst == own {
            continue;
        }
        let label = match nh.label {
            Some(NhLabel::Value(v)) => v,
            _ => 0,
        };
        let offered: Vec<Encap> = if nh.tunnel_encapsulation.is_empty() && label != 0 {
            vec![Encap::MplsOverGre]
        } else {
            nh.tunnel_encapsulation
                .iter()
                .filter_map(|t| match t {
                    TunnelEncap::Gre => Some(Encap::MplsOverGre),
                    TunnelEncap::Udp => Some(Encap::MplsOverUdp),
                    TunnelEncap::Vxlan => Some(Encap::Vxlan),
                    _ => None,
                })
                .collect()
        };
        // The first of our priorities offered, else (TF's `ComputeType`) the first offered
        // of MPLSoGRE, MPLSoUDP, VXLAN.
        let fallback = [Encap::MplsOverGre, Encap::MplsOverUdp, Encap::Vxlan];
        let Some(pick) = prio.iter().chain(&fallback).find(|p| offered.contains(p)) else {
            continue;
        };
        let encap = match pick {
            Encap::MplsOverGre if label >= 16 => DpEncap::MplsOverGre { label },
            Encap::MplsOverUdp if label >= 16 => DpEncap::MplsOverUdp { label },
            Encap::Vxlan => match nh.vni.filter(|v| *v != 0).or((label != 0).then_some(label)) {
                Some(vni) => DpEncap::Vxlan { vni },
                None => continue,
            },
            _ => continue,
        };
        if !out.iter().any(|p: &Path| p.dst == dst && p.encap == encap) {
            out.push(Path { dst, encap });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export() -> Export {
        Export {
            vrf: "d:p:vn1:vn1".into(),
            vn: "d:p:vn1".into(),
            ip: Ipv4Addr::new(10, 1, 1, 3),
            mac: MacAddr([2, 0, 0, 0, 0, 3]),
            fabric_ip: Ipv4Addr::new(192, 168, 0, 1),
            label: 16,
            l2_label: 17,
            vni: Some(5),
            encaps: vec![Encap::MplsOverUdp, Encap::MplsOverGre, Encap::Vxlan],
            sgs: vec![8000001],
        }
    }

    #[test]
    fn inet_entry_has_tf_fields() {
        let e = inet_entry(&export());
        assert_eq!(e.nlri.address.as_deref(), Some("10.1.1.3/32"));
        let nh = &e.next_hops[0];
        assert_eq!(nh.address, "192.168.0.1");
        assert_eq!(nh.label, Some(NhLabel::Value(16)));
        assert_eq!(
            nh.tunnel_encapsulation,
            vec![TunnelEncap::Udp, TunnelEncap::Gre],
            "MPLS only on inet"
        );
        assert_eq!(e.local_preference, Some(200));
        assert_eq!(e.security_groups, vec![8000001]);
        assert_eq!(e.virtual_network.as_deref(), Some("d:p:vn1"));
    }

    #[test]
    fn own_inet_entry_is_skipped_and_remote_one_picks_our_priority() {
        let e = inet_entry(&export());
        assert!(paths(&e, &[Encap::MplsOverGre], Ipv4Addr::new(192, 168, 0, 1)).is_empty());
        let p = paths(
            &e,
            &[Encap::MplsOverGre, Encap::MplsOverUdp],
            Ipv4Addr::new(192, 168, 0, 2),
        );
        assert_eq!(
            p,
            vec![Path {
                dst: Ipv4Addr::new(192, 168, 0, 1),
                encap: DpEncap::MplsOverGre { label: 16 }
            }]
        );
        // VXLAN preferred: the EVPN entry offers it; the inet one falls back to MPLSoGRE
        let p = paths(
            &evpn_entry(&export()),
            &[Encap::Vxlan],
            Ipv4Addr::new(192, 168, 0, 2),
        );
        assert_eq!(p[0].encap, DpEncap::Vxlan { vni: 5 });
        let p = paths(&e, &[Encap::Vxlan], Ipv4Addr::new(192, 168, 0, 2));
        assert_eq!(p[0].encap, DpEncap::MplsOverGre { label: 16 });
    }

    #[test]
    fn vxlan_alone_still_offers_mpls_on_inet() {
        let x = Export {
            encaps: vec![Encap::Vxlan],
            ..export()
        };
        let e = inet_entry(&x);
        assert_eq!(
            e.next_hops[0].tunnel_encapsulation,
            vec![TunnelEncap::Gre, TunnelEncap::Udp]
        );
        let p = paths(&e, &[Encap::Vxlan], Ipv4Addr::new(192, 168, 0, 2));
        assert_eq!(p[0].encap, DpEncap::MplsOverGre { label: 16 });
    }

    #[test]
    fn no_encap_list_means_gre_and_ecmp_keeps_each_host() {
        let mut e = inet_entry(&export());
        e.next_hops[0].tunnel_encapsulation.clear();
        let mut second = e.next_hops[0].clone();
        second.address = "192.168.0.9".into();
        e.next_hops.push(second);
        let p = paths(
            &e,
            &[Encap::MplsOverUdp, Encap::MplsOverGre],
            Ipv4Addr::new(192, 168, 0, 2),
        );
        assert_eq!(p.len(), 2);
        assert!(p
            .iter()
            .all(|x| x.encap == DpEncap::MplsOverGre { label: 16 }));
    }
}
