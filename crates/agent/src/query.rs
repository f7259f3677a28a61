//! Read-only questions the punt loop asks the agent model (sans-IO): the DHCP parameters of a
//! port, what the ARP proxy answers in a VRF, and the endpoints and decision of a new flow.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use filament_dataplane::FlowKey;

use crate::arp::ArpTarget;
use crate::core::{Agent, Port};
use crate::dhcp::DhcpParams;
use crate::flow::{decide, AclRule, Decision, Endpoint, Tuple};
use crate::model::Encap;

/// The security-group rules of one port, one list per group.
#[derive(Debug, Default)]
pub struct PortSgs {
    /// ingress rules
    pub ingress: Vec<Arc<[AclRule]>>,
    /// egress rules
    pub egress: Vec<Arc<[AclRule]>>,
}

/// Parsed policy, per network and per port; emptied on every config change.
#[derive(Debug, Default)]
pub struct PolicyCache {
    vn_acl: HashMap<String, Option<Arc<[AclRule]>>>,
    port_sgs: HashMap<String, Arc<PortSgs>>,
}

/// Worst-case overhead of an encapsulation on the fabric: outer IPv4 (20), UDP (8) or GRE
/// (4), then an MPLS label (4) or the VXLAN header (8), and, since the same tunnel also
/// carries bridged traffic, the inner Ethernet header (14) plus, for MPLS, the L2 control
/// word (4; RFC 4448 §4.6, as the forwarder adds it): MPLSoUDP 50, VXLAN 50, MPLSoGRE 46.
fn overhead(e: &Encap) -> u16 {
    const L2: u16 = 14;
    match e {
        Encap::MplsOverUdp => 20 + 8 + 4 + 4 + L2,
        Encap::Vxlan => 20 + 8 + 8 + L2,
        Encap::MplsOverGre => 20 + 4 + 4 + 4 + L2,
    }
}

/// The MTU a workload is offered: the largest inner frame every allowed encapsulation fits
/// into the fabric (`fabric_mtu` minus the worst overhead among `encaps`, all three when the
/// list is empty), and never more than the port's own interface MTU `port_mtu` (the
/// forwarder drops frames longer than a vif's MTU + 14).
pub fn workload_mtu(fabric_mtu: u16, encaps: &[Encap], port_mtu: Option<u16>) -> u16 {
    let all = [Encap::MplsOverGre, Encap::MplsOverUdp, Encap::Vxlan];
    let list = if encaps.is_empty() { &all[..] } else { encaps };
    let worst = list.iter().map(overhead).max().unwrap_or(50);
    let fab = fabric_mtu.saturating_sub(worst);
    port_mtu.map_or(fab, |p| p.min(fab))
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
            mtu: Some(workload_mtu(
                self.cfg().fabric_mtu,
                &g.encaps,
                self.port_by_vif(vif).and_then(|p| p.req.mtu),
            )),
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

    fn vn_acl_cached(&self, vn: &str) -> Option<Arc<[AclRule]>> {
        let mut c = self.policy.borrow_mut();
        c.vn_acl
            .entry(vn.to_string())
            .or_insert_with(|| {
                crate::model::vn(&self.graph, vn)
                    .and_then(|v| v.acl)
                    .map(Arc::from)
            })
            .clone()
    }

    fn port_sgs_cached(&self, vmi: &str) -> Arc<PortSgs> {
        let mut c = self.policy.borrow_mut();
        c.port_sgs
            .entry(vmi.to_string())
            .or_insert_with(|| {
                let sgs: Vec<crate::model::SgCfg> = crate::model::vmi(&self.graph, vmi)
                    .map(|v| {
                        v.sgs
                            .iter()
                            .filter_map(|n| crate::model::sg(&self.graph, n))
                            .collect()
                    })
                    .unwrap_or_default();
                Arc::new(PortSgs {
                    ingress: sgs.iter().map(|s| Arc::from(s.ingress.clone())).collect(),
                    egress: sgs.iter().map(|s| Arc::from(s.egress.clone())).collect(),
                })
            })
            .clone()
    }

    /// An endpoint of a flow in VRF `vrf_id`: a local port, or what the routes say. Parsed
    /// ACLs come from a cache that every config change empties.
    pub fn endpoint(&self, vrf_id: u32, ip: IpAddr) -> Endpoint {
        let IpAddr::V4(v4) = ip else {
            return Endpoint {
                ip: Some(ip),
                ..Endpoint::default()
            };
        };
        let local = self.ports.values().find_map(|p| {
            let pr = p.programmed.as_ref()?;
            (pr.vrf_id == vrf_id && pr.ip == v4).then_some((p, pr))
        });
        if let Some((p, pr)) = local {
            let sgs = self.port_sgs_cached(&p.req.id);
            return Endpoint {
                ip: Some(ip),
                vn: Some(pr.vn.clone()),
                sgs: pr.sgs.clone(),
                local: true,
                vn_acl: self.vn_acl_cached(&pr.vn),
                sg_ingress: sgs.ingress.clone(),
                sg_egress: sgs.egress.clone(),
                sg_enforced: !sgs.ingress.is_empty(),
            };
        }
        let Some(vrf) = self.vrfs.values().find(|v| v.id == vrf_id) else {
            return Endpoint {
                ip: Some(ip),
                ..Endpoint::default()
            };
        };
        // the host route first, else the longest matching learnt route
        let best = vrf.routes.get(&format!("{v4}/32")).or_else(|| {
            vrf.routes
                .iter()
                .filter(|(p, _)| prefix_contains(p, v4))
                .max_by_key(|(p, _)| {
                    p.rsplit('/')
                        .next()
                        .and_then(|l| l.parse::<u8>().ok())
                        .unwrap_or(0)
                })
                .map(|(_, l)| l)
        });
        match best {
            Some(l) => Endpoint {
                ip: Some(ip),
                vn_acl: l.vn.as_deref().and_then(|n| self.vn_acl_cached(n)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_mtu_covers_the_worst_allowed_encapsulation_and_the_port() {
        // VXLAN and MPLSoUDP carrying Ethernet both cost 50 bytes; MPLSoGRE 46
        assert_eq!(workload_mtu(9000, &[], None), 8950);
        assert_eq!(workload_mtu(9000, &[Encap::MplsOverGre], None), 8954);
        assert_eq!(
            workload_mtu(9000, &[Encap::MplsOverGre, Encap::Vxlan], None),
            8950
        );
        // the port's own interface MTU caps it
        assert_eq!(workload_mtu(9000, &[], Some(1500)), 1500);
        assert_eq!(workload_mtu(1500, &[Encap::MplsOverUdp], Some(1500)), 1450);
    }
}
