//! Graceful restart, helper side (RFC 4724 §4.2), when a restarted peer's
//! session is back: which of the paths kept stale may stay until its
//! End-of-RIB.

use crate::peer::Peer;
use crate::types::RouteKey;

/// Take out of `p.stale` the paths the peer's new OPEN does not let us keep,
/// and return them for withdrawal.
///
/// RFC 4724 - Section 4.2: "If the Forwarding State bit for a specific
/// address family is not set in the newly received Graceful Restart
/// Capability, or if a specific address family is not included in the newly
/// received Graceful Restart Capability, or if the Graceful Restart
/// Capability is not received in the re-established session at all, then
/// the Receiving Speaker MUST immediately remove all the stale routes from
/// the peer that it is retaining for that address family." (TF's
/// `BgpPeerClose::IsGRReady` aborts the whole restart then, except for
/// EVPN.) The peer sends them again.
pub(super) fn unpreserved_stale(p: &mut Peer) -> Vec<RouteKey> {
    let mut sweep = Vec::new();
    if p.stale.is_empty() {
        return sweep;
    }
    let keep = p
        .negotiated()
        .map(|n| n.gr_forwarding.clone())
        .unwrap_or_default();
    p.stale.retain(|k| {
        let kept = keep.contains(&k.family());
        if !kept {
            sweep.push(k.clone());
        }
        kept
    });
    if p.stale.is_empty() {
        p.stale_until = None;
    }
    if !sweep.is_empty() {
        p.stats.last_error = Some(format!(
            "graceful restart: {} stale paths removed, the peer kept no forwarding state for their families",
            sweep.len()
        ));
    }
    sweep
}
