//! Read-only questions the punt loop asks the agent model (sans-IO): the DHCP parameters of a
//! port, what the ARP proxy answers in a VRF, and the endpoints and decision of a new flow.

use std::net::{IpAddr, Ipv4Addr};

use filament_dataplane::FlowKey;

use crate::arp::ArpTarget;
use crate::core::{Agent, Port};
use crate::dhcp::DhcpParams;
use crate::flow::{decide, Decision, Endpoint, Tuple};
use crate::model::Encap;

/// Overhead of an encapsulation on the fabric (outer IPv4 + UDP/GRE + label or VXLAN +
/// inner Ethernet for VXLAN).
fn overhead(e: Option<&Encap>) -> u16 {
    match e {
        Some(Encap::MplsOverUdp) => 20 + 8 + 4,
        Some(Encap::Vxlan) => 20 + 8 + 8 + 14,
        Some(Encap::MplsOverGre) | None => 20 + 4 + 4,
    }
}

impl Agent {
    /// The port whose host-side vif is `vif`.
    pub fn port_by_vif(&self, vif: u32) -> Option<&Port> {
        self.ports.values().find(|p| p.vif == vif)
    }

    /// DHCP parameters of a programmed port on `vif`.
    pub fn dhcp_params(&self, vif: u32) -> Option<DhcpParams> {
        let pr = self.port_by_vif(vif)?.programmed.as_ref()?;
        let vn = crate::model::vn(&self.graph, &pr.vn)?;
        let g = crate::model::global(&self.graph);
        let sn = vn.subnets.iter().find(|s| s.contains(pr.ip))?;
        Some(DhcpParams {
            ip: pr.ip,
            plen: sn.plen,
            gateway: sn.gateway,
            service: sn.service.or(sn.gateway)?,
            dns: sn.dns.clone(),
            domain: sn.domain.clone(),
            mtu: Some(
                self.cfg()
                    .fabric_mtu
                    .saturating_sub(overhead(g.encaps.first())),
            ),
            host_routes: sn.host_routes.clone(),
            lease: sn.lease,
        })
    }

    /// What the ARP proxy answers for `target` asked on `vif`.
    pub fn arp_target(&self, vif: u32, target: Ipv4Addr) -> ArpTarget {
        let Some(pr) = self.port_by_vif(vif).and_then(|p| p.programmed.as_ref()) else {
            return ArpTarget::Unknown;
        };
        if let Some(vn) = crate::model::vn(&self.graph, &pr.vn) {
            if vn
                .subnets
                .iter()
                .any(|s| s.gateway == Some(target) || s.service == Some(target))
            {
                return ArpTarget::Gateway;
            }
        }
        // a local port in the same VRF
        if let Some(m) = self
            .ports
            .values()
            .filter_map(|p| p.programmed.as_ref())
            .find(|o| o.vrf == pr.vrf && o.ip == target)
            .and_then(|o| o.mac.parse::<filament_dataplane::MacAddr>().ok())
        {
            return ArpTarget::Mac(m.0);
        }
        let Some(vrf) = self.vrfs.get(&pr.vrf) else {
            return ArpTarget::Unknown;
        };
        if let Some((mac, _)) = vrf.macs.get(&target) {
            return ArpTarget::Mac(*mac);
        }
        if vrf.routes.keys().any(|p| prefix_contains(p, target)) {
            return ArpTarget::Routed;
        }
        ArpTarget::Unknown
    }

    /// An endpoint of a flow in VRF `vrf_id`: a local port, or what the routes say.
    pub fn endpoint(&self, vrf_id: u32, ip: IpAddr) -> Endpoint {
        let IpAddr::V4(v4) = ip else {
            return Endpoint {
                ip: Some(ip),
                ..Endpoint::default()
            };
        };
        if let Some(pr) = self
            .ports
            .values()
            .filter_map(|p| p.programmed.as_ref())
            .find(|o| o.vrf_id == vrf_id && o.ip == v4)
        {
            let vn = crate::model::vn(&self.graph, &pr.vn);
            let vmi = self
                .ports
                .values()
                .find(|p| p.programmed.as_ref() == Some(pr))
                .and_then(|p| crate::model::vmi(&self.graph, &p.req.id));
            let sgs: Vec<crate::model::SgCfg> = vmi
                .map(|v| {
                    v.sgs
                        .iter()
                        .filter_map(|n| crate::model::sg(&self.graph, n))
                        .collect()
                })
                .unwrap_or_default();
            return Endpoint {
                ip: Some(ip),
                vn: Some(pr.vn.clone()),
                sgs: pr.sgs.clone(),
                local: true,
                vn_acl: vn.and_then(|v| v.acl),
                sg_ingress: sgs.iter().flat_map(|s| s.ingress.iter().cloned()).collect(),
                sg_egress: sgs.iter().flat_map(|s| s.egress.iter().cloned()).collect(),
                sg_enforced: !sgs.is_empty(),
            };
        }
        let Some(vrf) = self.vrfs.values().find(|v| v.id == vrf_id) else {
            return Endpoint {
                ip: Some(ip),
                ..Endpoint::default()
            };
        };
        // longest matching learnt route
        let best = vrf
            .routes
            .iter()
            .filter(|(p, _)| prefix_contains(p, v4))
            .max_by_key(|(p, _)| {
                p.rsplit('/')
                    .next()
                    .and_then(|l| l.parse::<u8>().ok())
                    .unwrap_or(0)
            });
        match best {
            Some((_, l)) => Endpoint {
                ip: Some(ip),
                vn_acl: l
                    .vn
                    .as_ref()
                    .and_then(|n| crate::model::vn(&self.graph, n))
                    .and_then(|v| v.acl),
                vn: l.vn.clone(),
                sgs: l.sgs.clone(),
                ..Endpoint::default()
            },
            None => Endpoint {
                ip: Some(ip),
                ..Endpoint::default()
            },
        }
    }

    /// Decide a flow miss.
    pub fn decide_flow(&self, key: &FlowKey) -> Decision {
        let t = Tuple {
            proto: key.proto,
            src: key.src,
            dst: key.dst,
            sport: key.sport,
            dport: key.dport,
        };
        decide(
            &t,
            &self.endpoint(key.vrf.0, key.src),
            &self.endpoint(key.vrf.0, key.dst),
        )
    }
}

fn prefix_contains(p: &str, ip: Ipv4Addr) -> bool {
    let Some((a, l)) = p.split_once('/') else {
        return false;
    };
    let (Ok(a), Ok(l)) = (a.parse::<Ipv4Addr>(), l.parse::<u8>()) else {
        return false;
    };
    let m = u32::MAX.checked_shl(32 - u32::from(l.min(32))).unwrap_or(0);
    u32::from(ip) & m == u32::from(a) & m
}
