//! Received UPDATEs: RFC 4271 §6.3 / RFC 7606 checks that need the session
//! (eBGP first AS), loop detection (RFC 4271 §9.1.2, RFC 4456 §8), the
//! Adj-RIB-In (this peer's Loc-RIB candidates), End-of-RIB handling for
//! RT-constraint (RFC 4684 §6) and graceful restart (RFC 4724 §4.2). Any
//! change to a membership path, best or not, re-evaluates what every peer
//! is sent for it (RFC 4684 §3.2).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::{Core, Event, Output};
use crate::codec;
use crate::export::best_of;
use crate::rib::{Source, SrcInfo};
use crate::types::{Attrs, Family, RouteKey};

impl Core {
    pub(super) fn receive_update(
        &mut self,
        now: Instant,
        addr: IpAddr,
        u: &filament_wire_bgp::Update,
    ) {
        let asn = self.cfg.asn;
        let router_id = self.cfg.router_id;
        let cluster_id = self.cfg.cluster_id;
        let Some(p) = self.peers.get(&addr) else {
            return;
        };
        let Some(neg) = p.negotiated().cloned() else {
            return;
        };
        let ebgp = !p.is_ibgp(asn);
        let rx = codec::receive(u, neg.four_octet);
        // RFC 4271 - Section 6.3: "If the UPDATE message is received from an
        // external peer, the local system MAY check whether the leftmost ...
        // AS in the AS_PATH attribute is equal to the autonomous system
        // number of the peer that sent the message. If the check determines
        // this is not the case, the Error Subcode MUST be set to Malformed
        // AS_PATH." RFC 7606 - Section 7.2: such a path is treat-as-withdraw.
        if ebgp
            && rx
                .announced
                .iter()
                .any(|g| !g.routes.is_empty() && g.attrs.first_as() != Some(neg.remote_as))
        {
            if let Some(p) = self.peers.get_mut(&addr) {
                p.stats.treat_as_withdraw += 1;
                p.stats.last_error = Some(format!(
                    "treat-as-withdraw: AS_PATH does not start with the peer's AS {} (Update/11)",
                    neg.remote_as
                ));
            }
            for k in rx.withdrawn.iter().chain(
                rx.announced
                    .iter()
                    .flat_map(|g| g.routes.iter().map(|(k, _)| k)),
            ) {
                self.peer_withdraw(addr, k);
            }
            return;
        }
        let mut rtc_changed = false;
        let mut ignored = rx.unknown_families as u64;
        for k in &rx.withdrawn {
            rtc_changed |= k.family() == Family::RouteTarget;
            if neg.families.contains(&k.family()) {
                self.peer_withdraw(addr, k);
            }
        }
        for g in rx.announced {
            std::hint::black_box(self.rib.touch_keys(g.routes.iter().map(|(k, _)| k)));
            let a = &g.attrs;
            // RFC 4271 - Section 9.1.2: "If the AS_PATH attribute of a BGP
            // route contains an AS loop, the BGP route should be excluded
            // from the Phase 2 decision function." RFC 4456 - Section 8: "A
            // router that recognizes the ORIGINATOR_ID attribute SHOULD
            // ignore a route received with its BGP Identifier as the
            // ORIGINATOR_ID." and "If the local CLUSTER_ID is found in the
            // CLUSTER_LIST, the advertisement received SHOULD be ignored."
            // (the routes of a group share one attribute set: checked once)
            let looped = (ebgp && a.as_path_contains(asn))
                || a.originator_id == Some(router_id)
                || cluster_id.is_some_and(|c| a.cluster_list.contains(&c));
            let mut learn = Vec::with_capacity(g.routes.len());
            for (key, labels) in g.routes {
                let fam = key.family();
                if !neg.families.contains(&fam) {
                    ignored += 1;
                    continue;
                }
                rtc_changed |= fam == Family::RouteTarget;
                if looped {
                    ignored += 1;
                    self.peer_withdraw(addr, &key);
                } else {
                    learn.push((key, labels));
                }
            }
            if !learn.is_empty() {
                self.peer_learn(addr, ebgp, neg.remote_id, g.attrs, learn);
            }
        }
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        p.stats.ignored += ignored;
        let mut stale_done = Vec::new();
        for f in &rx.end_of_rib {
            self.out.push_back(Output::Event(Event::EndOfRib {
                peer: addr,
                family: *f,
            }));
            if *f == Family::RouteTarget && !p.rtc_ready {
                p.rtc_ready = true;
                p.rtc_wait_until = None;
                rtc_changed = true;
            }
            // RFC 4724 - Section 4.2: "Once the End-of-RIB marker for an
            // address family is received from the peer, it MUST immediately
            // remove any routes from the peer that are still marked as stale
            // for that address family."
            stale_done.extend(p.stale.iter().filter(|k| k.family() == *f).cloned());
            super::gr::end_of_rib(p, *f);
        }
        if rtc_changed && p.rtc_ready {
            self.recheck_vpn(addr);
        }
        for k in stale_done {
            if let Some(p) = self.peers.get_mut(&addr) {
                p.stale.remove(&k);
            }
            self.peer_withdraw(addr, &k);
        }
        let _ = now;
    }

    /// Routes a peer announced with one attribute set into the Loc-RIB; those that
    /// changed something go to the RIB owner as one [`Event::LearnedMany`] (one event
    /// and one handle on the attributes per group, not per route).
    pub(super) fn peer_learn(
        &mut self,
        addr: IpAddr,
        ebgp: bool,
        peer_id: std::net::Ipv4Addr,
        attrs: Arc<Attrs>,
        mut routes: Vec<(RouteKey, crate::types::LabelStack)>,
    ) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        if !p.stale.is_empty() {
            for (k, _) in &routes {
                p.stale.remove(k);
            }
        }
        // one lookup per route answers "had one / exactly this" and sets the
        // candidate; the RIB borrows the route, which then goes out in the event
        let info = SrcInfo {
            src: Source::Peer(addr),
            ebgp,
            peer_id,
            from_client: p.cfg.rr_client,
        };
        let mut received = 0;
        let mut rtcs = Vec::new();
        let mut changed = Vec::new();
        routes.retain(|(key, labels)| {
            let (has, same, best) = self.rib.learn_parts(info, key, labels, &attrs);
            if same {
                return false;
            }
            if !has {
                received += 1;
            }
            if let RouteKey::Rtc(r) = key {
                rtcs.push(*r);
            }
            if let Some(id) = best {
                changed.push(id);
            }
            true
        });
        if let Some(p) = self.peers.get_mut(&addr) {
            p.received += received;
            p.rtc_in.extend(rtcs.iter().copied());
        }
        if !routes.is_empty() {
            self.out.push_back(Output::Event(Event::LearnedMany {
                peer: addr,
                attrs,
                routes,
            }));
        }
        for id in changed {
            self.best_changed(id);
        }
        for r in rtcs {
            self.membership_changed(r);
        }
    }

    /// A peer's RT-membership path for `r` came, changed or went: what every
    /// peer is sent for `r` may change even when the best path did not
    /// (RFC 4684 §3.2: each peer gets the best path it may be sent, see
    /// [`crate::export::export_membership`]).
    fn membership_changed(&mut self, r: filament_wire_bgp::RtcRoute) {
        let key = RouteKey::Rtc(r);
        let Some(id) = self.rib.id_of(&key) else {
            return;
        };
        for p in self.peers.values_mut() {
            if p.session().is_some() {
                p.dirty.mark(id, true);
            }
        }
        // RFC 4684 - Section 3.2: "When processing RT membership NLRIs
        // received from internal iBGP peers, it is necessary to consider all
        // available iBGP paths for a given RT prefix, for building the
        // outbound route filter, and not just the best path." Only iBGP: an
        // eBGP path counts when it is along the best eBGP path, i.e. from
        // that path's neighbour AS (as TF's BuildRTargetDistributionGraph).
        let ebgp: Vec<_> = self
            .rib
            .candidates(&key)
            .into_iter()
            .filter(|c| c.ebgp)
            .collect();
        let best_as = match ebgp.len() {
            0 | 1 => None,
            _ => best_of(&key, ebgp.into_iter()).and_then(|c| match c.src {
                Source::Peer(a) => self.peers.get(&a).map(|p| p.cfg.remote_as),
                Source::Local => None,
            }),
        };
        let mut moved = Vec::new();
        for (addr, p) in self.peers.iter_mut() {
            let pruned = p.rtc_in.contains(&r) && best_as.is_some_and(|n| p.cfg.remote_as != n);
            let changed = if pruned {
                p.rtc_pruned.insert(r)
            } else {
                p.rtc_pruned.remove(&r)
            };
            if changed && p.rtc_ready {
                moved.push(*addr);
            }
        }
        for addr in moved {
            self.recheck_vpn(addr);
        }
    }

    pub(super) fn peer_withdraw(&mut self, addr: IpAddr, key: &RouteKey) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        if !p.stale.is_empty() {
            p.stale.remove(key);
        }
        if !self.rib.has(key, Source::Peer(addr)) {
            return;
        }
        p.received -= 1;
        let rtc = match key {
            RouteKey::Rtc(r) => p.rtc_in.remove(r).then_some(*r),
            _ => None,
        };
        self.out.push_back(Output::Event(Event::Withdrawn {
            peer: addr,
            key: key.clone(),
        }));
        self.rib_set(key, Source::Peer(addr), None);
        if let Some(r) = rtc {
            self.membership_changed(r);
        }
    }
}

/// A path attribute's name by type code (IANA "BGP Path Attributes"), for
/// the operator's view of an error.
pub(crate) fn attr_name(code: u8) -> &'static str {
    match code {
        1 => "ORIGIN",
        2 => "AS_PATH",
        3 => "NEXT_HOP",
        4 => "MULTI_EXIT_DISC",
        5 => "LOCAL_PREF",
        6 => "ATOMIC_AGGREGATE",
        7 => "AGGREGATOR",
        8 => "COMMUNITIES",
        9 => "ORIGINATOR_ID",
        10 => "CLUSTER_LIST",
        14 => "MP_REACH_NLRI",
        15 => "MP_UNREACH_NLRI",
        16 => "EXTENDED_COMMUNITIES",
        17 => "AS4_PATH",
        18 => "AS4_AGGREGATOR",
        22 => "PMSI_TUNNEL",
        32 => "LARGE_COMMUNITY",
        _ => "unknown",
    }
}
