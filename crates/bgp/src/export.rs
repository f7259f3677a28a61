//! What each peer is sent: the export rules applied to the Loc-RIB's best
//! path for one key.
//!
//! * iBGP split horizon (RFC 4271 §9.2.1) and route reflection with
//!   ORIGINATOR_ID / CLUSTER_LIST (RFC 4456 §8) when a cluster id is set;
//! * eBGP: own AS prepended (RFC 4271 §5.1.2), LOCAL_PREF, MED from other
//!   ASes and reflection attributes removed, next hop set to self, except
//!   for the RIB owner's paths and iBGP-learned ones (another control node's
//!   agent routes) that name their own next hop (TF: the vRouter's address
//!   is the tunnel endpoint, so a gateway tunnels straight to it);
//! * RT-constraint (RFC 4684): VPN routes only to peers that asked for one
//!   of their route targets, or to peers that did not negotiate the
//!   route-target family (RFC 4684 §1: such peers receive every route).
//!   Every iBGP membership path counts; an eBGP one only along the best
//!   eBGP path of its NLRI ([`Peer::rtc_pruned`]).
//! * RT membership itself (RFC 4684 §3.2, [`export_membership`]): each
//!   peer is sent the best membership path it may be sent, not only the
//!   Loc-RIB's best, so a reflector tells every client (and non-client)
//!   about the other peers' memberships.
//! * The default membership (prefix length 0) is honoured when received (it
//!   asks for every VPN route, [`Peer::wants`]) but never originated: RFC
//!   4684 §4 only offers it as a way to ask a peer for all VPN routes (its
//!   example is a reflector towards its PE clients), with no MUST or SHOULD,
//!   and TF's control node does not originate it (RTargetGroupMgr reads it
//!   as the "null" RtGroup; a peer without the family is simply registered
//!   to every VPN table, BgpPeer::RegisterAllTables). As in TF, a client
//!   with the family therefore sends the reflector only the VPN routes some
//!   peer with the family (or the RIB owner) asked for, so a peer without
//!   the family gets those and every route of its own side, not a client's
//!   routes for targets nobody asked for.
//! * Long-lived graceful restart (RFC 9494 §4.3, §4.6): LLGR-stale paths go
//!   as they are to peers that negotiated LLGR for their family, to internal
//!   peers without it with NO_EXPORT and LOCAL_PREF 0 (partial deployment),
//!   to no external peer without it.
//! * Well-known communities (RFC 1997): NO_ADVERTISE to nobody, NO_EXPORT and
//!   NO_EXPORT_SUBCONFED to no external peer.

use std::net::IpAddr;

use filament_wire_bgp::{LLGR_STALE, NO_ADVERTISE, NO_EXPORT, NO_EXPORT_SUBCONFED};

use crate::peer::Peer;
use crate::rib::{Cand, DestId, Rib, Source, SrcInfo};
use crate::types::{Attrs, Family, RouteKey, SpeakerConfig};

/// The attributes to send `peer` for a best path of family `fam` from
/// source `c` with attributes `attrs` (labels go out unchanged), or `None`
/// when it must not be sent. `local` is our address on the session;
/// `families` the negotiated families. The answer depends only on these
/// arguments, so callers may reuse it for every path sharing them.
pub fn export(
    sc: &SpeakerConfig,
    peer: &Peer,
    families: &[Family],
    local: IpAddr,
    fam: Family,
    c: &SrcInfo,
    attrs: &Attrs,
) -> Option<Attrs> {
    if !families.contains(&fam) {
        return None;
    }
    // Never back to where it came from.
    if c.src == Source::Peer(peer.cfg.address) {
        return None;
    }
    let to_ibgp = peer.is_ibgp(sc.asn);
    let mut partial = false;
    if !attrs.communities.is_empty() {
        let has = |c| attrs.communities.contains(&c);
        // RFC 1997: NO_ADVERTISE: "MUST NOT be advertised to other BGP
        // peers"; NO_EXPORT: "MUST NOT be advertised outside a BGP
        // confederation boundary"; NO_EXPORT_SUBCONFED: "MUST NOT be
        // advertised to external BGP peers" (TF's GetUpdateInfo the same).
        if has(NO_ADVERTISE) || (!to_ibgp && (has(NO_EXPORT) || has(NO_EXPORT_SUBCONFED))) {
            return None;
        }
        // RFC 9494 - Section 4.3: an LLGR-stale route "SHOULD NOT be
        // advertised to any neighbor from which the Long-lived Graceful
        // Restart Capability has not been received. The exception is
        // described in the Optional Partial Deployment Procedure section
        // (Section 4.6)." Section 4.6: "stale routes MAY be advertised to
        // neighbors that have not advertised the Long-lived Graceful Restart
        // Capability under the following conditions: The neighbors MUST be
        // internal (IBGP or Confederation) neighbors. The NO_EXPORT community
        // [RFC1997] MUST be attached to the stale routes. The stale routes
        // MUST have their LOCAL_PREF set to zero." TF does the same for
        // every peer without LLGR (`BgpTable::ProcessLlgrState`), eBGP ones
        // included and with LLGR_STALE removed; we keep to the MUSTs: no
        // eBGP peer, and Section 4.3: "The "LLGR_STALE" community MUST NOT
        // be removed when the route is further advertised." LLGR
        // neighbours get the route as it is (the community is in it).
        if has(LLGR_STALE)
            && !peer
                .negotiated()
                .is_some_and(|n| n.llgr.iter().any(|(f, _)| *f == fam))
        {
            if !to_ibgp {
                return None;
            }
            partial = true;
        }
    }
    // RFC 4684 - Section 4: "a BGP speaker ... SHOULD NOT advertise a VPN
    // route to a peer unless that peer has advertised a route target
    // membership NLRI matching one of the route's route targets" and
    // Section 6: VPN routes wait for the peer's route-target End-of-RIB.
    if fam.is_vpn() && families.contains(&Family::RouteTarget) {
        if !peer.rtc_ready {
            return None;
        }
        let rts: Vec<_> = attrs.route_targets().collect();
        if !peer.wants(&rts) {
            return None;
        }
    }
    let from_ibgp = matches!(c.src, Source::Peer(_)) && !c.ebgp;
    let mut a = attrs.clone();
    if to_ibgp {
        if from_ibgp {
            // RFC 4271 - Section 9.2.1 (paraphrased): routes learned from an
            // internal peer are not advertised to other internal peers
            // (iBGP full mesh: split horizon) ...
            let cluster_id = sc.cluster_id?;
            // RFC 4456 - Section 6: "A route from a Non-Client IBGP peer:
            // Reflect to all the Clients. A route from a Client: Reflect to
            // all the Non-Client peers and also to the Client peers."
            if !c.from_client && !peer.cfg.rr_client {
                return None;
            }
            // RFC 4456 - Section 8: "ORIGINATOR_ID ... This attribute will be
            // created by an RR in reflecting a route." and "When an RR
            // reflects a route, it MUST prepend the local CLUSTER_ID to the
            // CLUSTER_LIST."
            a.originator_id.get_or_insert(c.peer_id);
            a.cluster_list.insert(0, cluster_id);
        }
        a.local_pref.get_or_insert(100);
        if a.next_hop.is_none() {
            a.next_hop = Some(local);
        }
        if partial {
            a.local_pref = Some(0);
            if !a.communities.contains(&NO_EXPORT) {
                a.communities.push(NO_EXPORT);
            }
        }
    } else {
        // Sender-side loop prevention: the peer would drop it anyway.
        if a.as_path_contains(peer.cfg.remote_as) {
            return None;
        }
        // RFC 4271 - Section 5.1.4: "The MULTI_EXIT_DISC attribute received
        // from a neighboring AS MUST NOT be propagated to other neighboring
        // ASes." Section 5.1.5: "A BGP speaker MUST NOT include this
        // [LOCAL_PREF] attribute in UPDATE messages it sends to external
        // peers".
        if c.ebgp {
            a.med = None;
        }
        a.local_pref = None;
        a.originator_id = None;
        a.cluster_list.clear();
        // RFC 4271 - Section 5.1.2: "When a given BGP speaker advertises the
        // route to an external peer, the advertising speaker updates the
        // AS_PATH attribute as follows: ... the local system prepends its own
        // AS number as the last element of the sequence".
        a.prepend(sc.asn);
        // Next hop self, except where the next hop is inside our AS: the
        // RIB owner's own paths and paths from an iBGP peer (another control
        // node's agent routes) name the vRouter, which a gateway reaches by
        // tunnelling straight to it, as TF does (`BgpTable::Export` rewrites
        // the next hop only for bgpaas). With next hop self the gateway would
        // send the vRouter's label to this node, which forwards nothing.
        let inside = c.src == Source::Local || (matches!(c.src, Source::Peer(_)) && !c.ebgp);
        if !inside || a.next_hop.is_none() {
            a.next_hop = Some(local);
        }
    }
    if fam == Family::RouteTarget {
        a.next_hop = Some(local);
        // RFC 4684 - Section 3.2: "When advertising RT membership NLRI to a
        // route-reflector client, the Originator attribute shall be set to
        // the router-id of the advertiser, and the Next-hop attribute shall
        // be set of the local address for that session."
        if to_ibgp && sc.cluster_id.is_some() && peer.cfg.rr_client {
            a.originator_id = Some(sc.router_id);
        }
    }
    Some(a)
}

/// The RT-membership advertisement for `peer` of the route-target
/// destination `id`: [`export`] of the Loc-RIB's best path when that may be
/// sent to `peer`, else, to an iBGP peer, of the best among the candidates
/// that may.
///
/// RFC 4684 - Section 3.2: "When advertising an RT membership NLRI to a
/// non-client peer, if the best path as selected by the path selection
/// procedure described in Section 9.1 of the base BGP specification \[4\] is
/// a route received from a non-client peer, and if there is an alternative
/// path to the same destination from a client, the attributes of the client
/// path are advertised to the peer." and "When processing RT membership
/// NLRIs received from internal iBGP peers, it is necessary to consider all
/// available iBGP paths for a given RT prefix, for building the outbound
/// route filter, and not just the best path."
///
/// Every client's membership NLRI for a target is the same prefix
/// (`<our AS>:<target>`), so with best-path-only advertisement the client
/// whose path is best is never told that another client wants the target,
/// and keeps its routes for it (its outbound filter has nothing from us).
/// Choosing per peer among the paths export allows (a non-client path is
/// not reflected to a non-client, nothing goes back to its sender) sends
/// the client path to non-clients, and each client the membership of the
/// others (with our router id as ORIGINATOR_ID, §3.2 (i), so it is not
/// dropped as its own). Our own outbound filter towards a peer is already
/// built from every membership path that peer sent ([`Peer::wants`]).
pub fn export_membership(
    sc: &SpeakerConfig,
    peer: &Peer,
    families: &[Family],
    local: IpAddr,
    rib: &Rib,
    id: DestId,
) -> Option<Attrs> {
    let fam = Family::RouteTarget;
    let (si, attrs, _) = rib.best_parts(id)?;
    if let Some(a) = export(sc, peer, families, local, fam, &si, attrs) {
        return Some(a);
    }
    // Towards another AS, plain best-path advertisement.
    if !peer.is_ibgp(sc.asn) {
        return None;
    }
    let key = rib.key_of(id)?;
    let of = |c: &Cand| {
        let si = SrcInfo {
            src: c.src,
            ebgp: c.ebgp,
            peer_id: c.peer_id,
            from_client: c.from_client,
        };
        export(sc, peer, families, local, fam, &si, &c.path.attrs)
    };
    let allowed = rib.candidates(&key).into_iter().filter(|c| of(c).is_some());
    of(&best_of(&key, allowed)?)
}

/// The best of `cands` (paths for `key`) by the Loc-RIB's own decision
/// process (a scratch RIB holds them: for the few, seldom changing
/// RT-membership destinations).
pub fn best_of(key: &RouteKey, cands: impl Iterator<Item = Cand>) -> Option<Cand> {
    let mut rib = Rib::default();
    for c in cands {
        rib.set(key, c.src, Some(c));
    }
    rib.best(key)
}
