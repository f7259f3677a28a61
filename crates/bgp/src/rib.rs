//! The Loc-RIB: every candidate path per route key and the best one, by
//! the RFC 4271 §9.1.2 decision process (with the usual tie-breakers from
//! RFC 4456 §9 for reflected routes).
//!
//! Candidates come from the RIB owner ([`Source::Local`], e.g. routes the
//! control node learned from its agents) and from each peer's Adj-RIB-In.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use filament_wire_bgp::Origin;

use crate::types::{Family, Path, RouteKey};

/// Where a candidate path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Originated by the RIB owner.
    Local,
    /// Learned from the peer with this address.
    Peer(IpAddr),
}

/// A candidate path with what the decision process needs about its source.
#[derive(Debug, Clone)]
pub struct Cand {
    /// Where it came from.
    pub src: Source,
    /// The path as received (or as the owner gave it).
    pub path: Path,
    /// Learned over eBGP.
    pub ebgp: bool,
    /// BGP identifier of the peer it was learned from (ours for local).
    pub peer_id: Ipv4Addr,
    /// The peer is a route-reflector client.
    pub from_client: bool,
}

#[derive(Debug, Default)]
struct Dest {
    cands: Vec<Cand>,
    best: Option<usize>,
}

/// The Loc-RIB.
#[derive(Debug, Default)]
pub struct Rib {
    dests: HashMap<RouteKey, Dest>,
}

impl Rib {
    /// Put (`Some`) or remove (`None`) the candidate of `src` for `key`.
    /// Returns whether the best path changed.
    pub fn set(&mut self, key: &RouteKey, src: Source, cand: Option<Cand>) -> bool {
        let d = self.dests.entry(key.clone()).or_default();
        let before = d.best.map(|i| d.cands[i].src);
        let pos = d.cands.iter().position(|c| c.src == src);
        match (pos, cand) {
            (Some(i), Some(c)) => d.cands[i] = c,
            (None, Some(c)) => {
                // Most destinations have one candidate: grow one at a time
                // (a first push would reserve room for four).
                d.cands.reserve_exact(1);
                d.cands.push(c);
            }
            (Some(i), None) => {
                d.cands.swap_remove(i);
            }
            (None, None) => {}
        }
        d.best = (0..d.cands.len()).min_by(|&a, &b| compare(&d.cands[a], &d.cands[b]));
        let after = d.best.map(|i| d.cands[i].src);
        if d.cands.is_empty() {
            self.dests.remove(key);
        }
        // The best changed source, or the best source's path was replaced.
        before != after || after == Some(src)
    }

    /// The best path for `key`.
    pub fn best(&self, key: &RouteKey) -> Option<&Cand> {
        let d = self.dests.get(key)?;
        d.best.map(|i| &d.cands[i])
    }

    /// Every candidate for `key`.
    pub fn candidates(&self, key: &RouteKey) -> &[Cand] {
        self.dests.get(key).map_or(&[], |d| &d.cands)
    }

    /// Keys that have a candidate from `src` (a scan: for session resets,
    /// not for the per-route path).
    pub fn keys_from(&self, src: Source) -> Vec<RouteKey> {
        self.dests
            .iter()
            .filter(|(_, d)| d.cands.iter().any(|c| c.src == src))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether `src` has a candidate for `key`.
    pub fn has(&self, key: &RouteKey, src: Source) -> bool {
        self.candidates(key).iter().any(|c| c.src == src)
    }

    /// Keys of one family (all families when `None`).
    pub fn keys(&self, family: Option<Family>) -> Vec<RouteKey> {
        self.dests
            .keys()
            .filter(|k| family.is_none_or(|f| k.family() == f))
            .cloned()
            .collect()
    }

    /// Number of destinations.
    pub fn len(&self) -> usize {
        self.dests.len()
    }

    /// Whether the RIB is empty.
    pub fn is_empty(&self) -> bool {
        self.dests.is_empty()
    }

    /// Every best path.
    pub fn best_paths(&self) -> impl Iterator<Item = &Cand> {
        self.dests
            .values()
            .filter_map(|d| d.best.map(|i| &d.cands[i]))
    }
}

fn origin_rank(o: Origin) -> u8 {
    match o {
        Origin::Igp => 0,
        Origin::Egp => 1,
        Origin::Incomplete => 2,
    }
}

/// `Less` means `a` is preferred.
fn compare(a: &Cand, b: &Cand) -> Ordering {
    let (x, y) = (&a.path.attrs, &b.path.attrs);
    // The owner's own paths first (they are what it originates).
    let local = |c: &Cand| u8::from(c.src != Source::Local);
    // RFC 4271 - Section 9.1.2.2: "a) Remove from consideration all routes
    // that are not tied for having the smallest number of AS numbers present
    // in their AS_PATH attributes. ... b) ... the lowest Origin number ...
    // c) ... MULTI_EXIT_DISC ... only comparable between routes learned from
    // the same neighboring AS ... d) ... if at least one of the candidate
    // routes was received via EBGP, remove from consideration all routes
    // that were received via IBGP. ... f) ... the lowest BGP Identifier
    // value ... g) ... the lowest peer address."
    local(a)
        .cmp(&local(b))
        .then(
            y.local_pref
                .unwrap_or(100)
                .cmp(&x.local_pref.unwrap_or(100)),
        )
        .then(x.as_path_len().cmp(&y.as_path_len()))
        .then(origin_rank(x.origin).cmp(&origin_rank(y.origin)))
        .then_with(|| {
            if x.first_as() == y.first_as() {
                x.med.unwrap_or(0).cmp(&y.med.unwrap_or(0))
            } else {
                Ordering::Equal
            }
        })
        .then(u8::from(!a.ebgp).cmp(&u8::from(!b.ebgp)))
        // RFC 4456 - Section 9: "If a route carries the ORIGINATOR_ID
        // attribute, then in the route selection process the ORIGINATOR_ID
        // SHOULD be treated as the BGP Identifier of the BGP speaker that
        // has advertised the route." and a shorter CLUSTER_LIST wins.
        .then(
            x.originator_id
                .unwrap_or(a.peer_id)
                .cmp(&y.originator_id.unwrap_or(b.peer_id)),
        )
        .then(x.cluster_list.len().cmp(&y.cluster_list.len()))
        .then_with(|| match (a.src, b.src) {
            (Source::Peer(p), Source::Peer(q)) => p.cmp(&q),
            _ => Ordering::Equal,
        })
}
