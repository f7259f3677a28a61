//! Routes pushed by the control node (tf-facts §2.5) into the forwarder: inet `1/1` items
//! become tunnel nexthops (an ECMP composite for several next hops) and FIB entries, EVPN
//! `25/242` items bridge entries and the ARP proxy's MACs; replaced make-before-break; stale
//! ones (learnt before a headless period) are flushed at the control node's End-of-RIB.
//!
//! With two control nodes (tf-facts §2: MAX_XMPP_SERVERS = 2) each pushes its own copy of a
//! route: the agent keeps one per channel (TF keeps a path per peer), so a retract from one
//! node leaves the route as the other pushed it, and it goes only when no node holds it.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use filament_dataplane::{MacAddr, Nexthop, NexthopKind, NhId, Op, VrfId};
use filament_wire_xmpp::{ItemsNode, PushedItem, RouteUpdate};

use super::{Agent, Learnt};
use crate::routes::{paths, Path};

impl Agent {
    pub(super) fn routes_in(&mut self, chan: usize, u: &RouteUpdate) {
        // remembered so that an encapsulation-priority change can re-decide every path
        let n = &u.node;
        let mut items = Vec::with_capacity(u.items.len());
        for item in &u.items {
            match item {
                PushedItem::Item { id, entry } => {
                    let k = (n.vrf.clone(), n.afi, n.safi, id.clone());
                    self.pushed_by
                        .entry(k.clone())
                        .or_default()
                        .insert(chan, entry.clone());
                    self.pushed.insert(k, entry.clone());
                    items.push(item.clone());
                }
                PushedItem::Retract { id } => {
                    let k = (n.vrf.clone(), n.afi, n.safi, id.clone());
                    let other = self.pushed_by.get_mut(&k).and_then(|by| {
                        by.remove(&chan);
                        by.values().next().cloned()
                    });
                    match other {
                        // the other control node still holds it: its copy stays
                        Some(entry) => {
                            self.pushed.insert(k, entry.clone());
                            items.push(PushedItem::Item {
                                id: id.clone(),
                                entry,
                            });
                        }
                        None => {
                            self.pushed_by.remove(&k);
                            self.pushed.remove(&k);
                            items.push(item.clone());
                        }
                    }
                }
            }
        }
        self.apply_items(&u.node, &items);
    }

    /// Channel `chan` went down: its copies are forgotten; the routes stay (forwarding
    /// state is never removed for a lost control node) until a node retracts them or they
    /// are flushed as stale.
    pub(super) fn forget_channel(&mut self, chan: usize) {
        self.pushed_by.retain(|_, by| {
            by.remove(&chan);
            !by.is_empty()
        });
    }

    /// The global encapsulation priority changed (tf-facts §5.3): every learnt route's
    /// tunnel nexthops are re-decided from the entries the control node pushed (make before
    /// break, as for a replaced item).
    pub(super) fn reapply_pushed(&mut self) {
        // entries of VRFs we left are forgotten; an entry none of whose encapsulations the
        // old priority allowed is kept and may become usable now
        let vrfs = &self.vrfs;
        self.pushed.retain(|(vrf, ..), _| vrfs.contains_key(vrf));
        self.pushed_by.retain(|(vrf, ..), _| vrfs.contains_key(vrf));
        // stale ones (awaiting a resync) keep their nexthops until pushed again or flushed
        let stale = |(vrf, afi, _, id): &(String, u16, u16, String)| {
            self.vrfs.get(vrf).is_some_and(|v| match afi {
                1 => v.routes.get(id).is_some_and(|l| l.stale),
                _ => evpn_id(id)
                    .and_then(|(_, ip)| v.macs.get(&ip))
                    .is_some_and(|(_, l)| l.stale),
            })
        };
        let all: Vec<_> = self
            .pushed
            .iter()
            .filter(|(k, _)| !stale(k))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        for ((vrf, afi, safi, id), entry) in all {
            let node = ItemsNode { afi, safi, vrf };
            self.apply_items(&node, &[PushedItem::Item { id, entry }]);
        }
    }

    fn apply_items(&mut self, node: &ItemsNode, items: &[PushedItem]) {
        let Some(vrf_id) = self.vrfs.get(&node.vrf).map(|v| v.id) else {
            return;
        };
        let prio = crate::model::global(&self.graph).encaps;
        for item in items {
            match (node.afi, node.safi, item) {
                // inet unicast add/replace
                (1, 1, PushedItem::Item { id, entry }) => {
                    let ps = paths(entry, &prio, self.cfg.fabric_ip);
                    let (vn, sgs) = (entry_vn(entry), entry.security_groups.clone());
                    let Ok(prefix) = id.parse::<ipnet::IpNet>() else {
                        continue;
                    };
                    // make before break: new nexthops, the route replaced, then the old ones go
                    match self.install_paths(&ps, vn, sgs) {
                        Some(l) => {
                            self.op(Op::AddRoute {
                                vrf: VrfId(vrf_id),
                                prefix,
                                nh: NhId(l.nh),
                            });
                            let old = self
                                .vrfs
                                .get_mut(&node.vrf)
                                .and_then(|v| v.routes.insert(id.clone(), l));
                            if let Some(old) = old {
                                self.release(&old);
                            }
                        }
                        None => self.drop_learnt_route(&node.vrf, id),
                    }
                }
                // inet unicast withdraw
                (1, 1, PushedItem::Retract { id }) => self.drop_learnt_route(&node.vrf, id),
                // EVPN mac+ip: bridge entry and the ARP proxy's MAC
                (25, 242, PushedItem::Item { id, entry }) => {
                    let Some((mac, ip)) = evpn_id(id) else {
                        continue;
                    };
                    let ps = paths(entry, &prio, self.cfg.fabric_ip);
                    match self.install_paths(&ps, entry_vn(entry), entry.security_groups.clone()) {
                        Some(l) => {
                            self.op(Op::AddBridge {
                                vrf: VrfId(vrf_id),
                                mac: MacAddr(mac),
                                nh: NhId(l.nh),
                            });
                            let old = self
                                .vrfs
                                .get_mut(&node.vrf)
                                .and_then(|v| v.macs.insert(ip, (mac, l)));
                            if let Some((old_mac, old)) = old {
                                if old_mac != mac {
                                    self.op(Op::DelBridge {
                                        vrf: VrfId(vrf_id),
                                        mac: MacAddr(old_mac),
                                    });
                                }
                                self.release(&old);
                            }
                        }
                        None => self.drop_learnt_mac(&node.vrf, ip),
                    }
                }
                (25, 242, PushedItem::Retract { id }) => {
                    if let Some((_, ip)) = evpn_id(id) {
                        self.drop_learnt_mac(&node.vrf, ip);
                    }
                }
                // other families (multicast, inet6): not programmed yet
                _ => {}
            }
        }
    }

    fn install_paths(&mut self, ps: &[Path], vn: Option<String>, sgs: Vec<u32>) -> Option<Learnt> {
        if ps.is_empty() {
            return None;
        }
        let mut members = Vec::new();
        for p in ps {
            let id = self.alloc_nh();
            self.op(Op::AddNexthop(Nexthop {
                id: NhId(id),
                kind: NexthopKind::Tunnel {
                    vif: self.cfg.fabric_vif,
                    src_ip: self.cfg.fabric_ip,
                    dst_ip: p.dst,
                    encap: p.encap,
                },
            }));
            members.push(id);
        }
        let nh = if members.len() == 1 {
            members[0]
        } else {
            let id = self.alloc_nh();
            self.op(Op::AddNexthop(Nexthop {
                id: NhId(id),
                kind: NexthopKind::Ecmp {
                    members: members.iter().map(|m| NhId(*m)).collect(),
                },
            }));
            id
        };
        Some(Learnt {
            nh,
            members,
            vn,
            sgs,
            stale: false,
        })
    }

    pub(super) fn flush_stale(&mut self) {
        let mut routes = Vec::new();
        let mut macs = Vec::new();
        for (name, v) in &self.vrfs {
            routes.extend(
                v.routes
                    .iter()
                    .filter(|(_, l)| l.stale)
                    .map(|(p, _)| (name.clone(), p.clone())),
            );
            macs.extend(
                v.macs
                    .iter()
                    .filter(|(_, (_, l))| l.stale)
                    .map(|(ip, _)| (name.clone(), *ip)),
            );
        }
        // not pushed again: forgotten (an encapsulation change must not bring them back)
        let stale_routes: BTreeSet<(&String, &String)> =
            routes.iter().map(|(v, p)| (v, p)).collect();
        let stale_macs: BTreeSet<(&String, Ipv4Addr)> =
            macs.iter().map(|(v, ip)| (v, *ip)).collect();
        self.pushed.retain(|(vrf, afi, _, id), _| match afi {
            1 => !stale_routes.contains(&(vrf, id)),
            _ => !evpn_id(id).is_some_and(|(_, ip)| stale_macs.contains(&(vrf, ip))),
        });
        let pushed = &self.pushed;
        self.pushed_by.retain(|k, _| pushed.contains_key(k));
        for (vrf, p) in routes {
            self.drop_learnt_route(&vrf, &p);
        }
        for (vrf, ip) in macs {
            self.drop_learnt_mac(&vrf, ip);
        }
    }

    fn release(&mut self, l: &Learnt) {
        if l.members.len() > 1 {
            self.op(Op::DelNexthop { nh: NhId(l.nh) });
            self.free_nh.push(l.nh);
        }
        for m in &l.members {
            self.op(Op::DelNexthop { nh: NhId(*m) });
            self.free_nh.push(*m);
        }
    }

    fn drop_learnt_route(&mut self, vrf: &str, id: &str) {
        let Some(v) = self.vrfs.get_mut(vrf) else {
            return;
        };
        let vrf_id = v.id;
        let Some(l) = v.routes.remove(id) else { return };
        if let Ok(prefix) = id.parse() {
            self.op(Op::DelRoute {
                vrf: VrfId(vrf_id),
                prefix,
            });
        }
        self.release(&l);
    }

    fn drop_learnt_mac(&mut self, vrf: &str, ip: Ipv4Addr) {
        let Some(v) = self.vrfs.get_mut(vrf) else {
            return;
        };
        let vrf_id = v.id;
        let Some((mac, l)) = v.macs.remove(&ip) else {
            return;
        };
        self.op(Op::DelBridge {
            vrf: VrfId(vrf_id),
            mac: MacAddr(mac),
        });
        self.release(&l);
    }
}

/// The route's network: the entry's `virtual-network`, else its first next hop's.
fn entry_vn(e: &filament_wire_xmpp::Entry) -> Option<String> {
    e.virtual_network
        .clone()
        .or_else(|| e.next_hops.iter().find_map(|n| n.virtual_network.clone()))
}

/// `[<tag>-]<mac>,<ip>/<plen>` → (mac, ip); `None` for a group MAC: the broadcast item
/// (`ff:ff:ff:ff:ff:ff,…`, whose `<olist>` lists remote VTEPs for ingress replication, TF's
/// `AddEnetReach`) is no MAC route, and bridging ff:ff:ff:ff:ff:ff to one VTEP (with a
/// proxy-ARP entry for the VTEP's address) would be wrong.  Our agent floods nothing
/// (`arp.rs` answers from the MAC table), so it has no use for the olist yet.
fn evpn_id(id: &str) -> Option<([u8; 6], Ipv4Addr)> {
    let (mac, rest) = id.split_once(',')?;
    let mac = mac.rsplit('-').next()?;
    let m: filament_wire_xmpp::MacAddr = mac.parse().ok()?;
    if m.0[0] & 1 == 1 {
        return None;
    }
    let ip = rest.split(['/', ',']).next()?.parse().ok()?;
    Some((m.0, ip))
}

#[cfg(test)]
mod tests {
    use super::evpn_id;

    #[test]
    fn group_macs_are_no_mac_routes() {
        assert_eq!(
            evpn_id("02:00:00:00:00:01,10.1.1.3/32"),
            Some(([2, 0, 0, 0, 0, 1], "10.1.1.3".parse().unwrap()))
        );
        assert_eq!(evpn_id("ff:ff:ff:ff:ff:ff,10.0.0.9/32"), None);
        assert_eq!(evpn_id("7-ff:ff:ff:ff:ff:ff,0.0.0.0/32"), None);
        assert_eq!(evpn_id("01:00:5e:00:00:01,0.0.0.0/32"), None);
    }
}
