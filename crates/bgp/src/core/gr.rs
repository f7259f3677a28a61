//! Graceful restart, helper side: stale paths while a peer restarts (RFC 4724
//! §4.2) and long-lived stale paths after its restart time (RFC 9494 §4), on
//! TF's `PeerCloseManager` timeline (`bgp_peer_close.cc`, `peer_close_manager.cc`).
//!
//! ```text
//!   Established --TCP lost, no NOTIFICATION, helper on,
//!                 GR capability with time > 0------------> GR     (paths stale, restart timer)
//!   Established --same, GR time 0, LLGR capability-------> LLGR
//!   GR   --restart timer, peer not back, LLGR negotiated--> LLGR   (LLGR_STALE attached,
//!                                                                  NO_LLGR paths deleted)
//!   GR   --restart timer, peer not back, no LLGR--------> none   (stale paths deleted)
//!   GR/LLGR --timer, peer back (TF fakes End-of-RIB)----> none   (what is still stale deleted)
//!   LLGR --a family's long-lived stale time------------> its stale paths deleted
//!   GR/LLGR --End-of-RIB of a family (receive.rs)-------> its stale paths deleted,
//!                                                          its long-lived timer over
//!   GR/LLGR --peer back, TF's checks fail (tf_abort)----> none   (every stale path deleted)
//!   GR/LLGR --peer back, a family without F bit---------> that family's stale paths deleted
//!   GR   --lost again before End-of-RIB----------------> GR     (restart time counted from
//!                                                                  the first loss: TF's gr_elapsed_)
//!   LLGR --lost again before End-of-RIB----------------> GR     (for what the new session sent;
//!                                                                  long-lived timers keep running;
//!                                                                  a family whose timer ran out
//!                                                                  unsynchronized: deleted)
//!   any  --lost with a NOTIFICATION, or helper off-----> none   (every path deleted)
//! ```
//!
//! Helper mode follows [`SpeakerConfig::gr_helper`] (TF: `enable &&
//! bgp_helper_enable`), read at each close: off, a lost session's paths go at
//! once. LLGR applies when we advertised it ([`SpeakerConfig::llgr_time`] > 0)
//! and the peer's capability lists the family with a non-zero time; the paths
//! are kept for the peer's time capped by ours. A GR-stale path ranks like a
//! fresh one (TF's `PathCompare` has no GR-stale rule); an LLGR-stale one
//! carries LLGR_STALE and ranks last ([`crate::rib`]), and goes to peers
//! without the LLGR capability only if they are internal, with NO_EXPORT and
//! LOCAL_PREF 0 (RFC 9494 §4.6, [`crate::export`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use filament_wire_bgp::{LLGR_STALE, NO_LLGR};

use super::Core;
use crate::fsm::Negotiated;
use crate::peer::Peer;
use crate::rib::Source;
use crate::types::{Attrs, Family, RouteKey, SpeakerConfig};

/// Where a peer is in graceful restart, for `neighbors` (TF's close-manager
/// state names): `GR_TIMER` while a restart time runs (also a new one after
/// a loss during LLGR), `LLGR_TIMER` once only long-lived timers run.
pub fn gr_state(p: &Peer) -> Option<&'static str> {
    if p.stale.is_empty() {
        None
    } else if p.stale_until.is_none() && !p.llgr_until.is_empty() {
        Some("LLGR_TIMER")
    } else {
        Some("GR_TIMER")
    }
}

/// The keys of `p`'s stale paths, listed again only when the set moved: a
/// restarting full-table peer's keys are not copied at every status poll.
pub fn stale_keys(p: &Peer) -> Arc<Vec<RouteKey>> {
    if p.stale.is_empty() {
        return Arc::default();
    }
    let at = (p.stale.len(), p.stats.flaps, p.llgr_until.len());
    let Ok(mut view) = p.stale_view.lock() else {
        return Arc::new(p.stale.iter().cloned().collect());
    };
    match &*view {
        Some((seen, keys)) if *seen == at => keys.clone(),
        _ => {
            let keys = Arc::new(p.stale.iter().cloned().collect::<Vec<_>>());
            *view = Some((at, keys.clone()));
            keys
        }
    }
}

/// The restart is over (or never began): no timer runs for `p`. Its stale
/// keys leave `p.stale` as they are withdrawn or refreshed.
fn end_restart(p: &mut Peer) {
    p.stale_until = None;
    p.llgr_until.clear();
    p.gr_since = None;
    p.stale_families.clear();
    p.llgr_expired.clear();
}

/// End-of-RIB of family `f` from `p` (the caller sweeps its stale paths):
/// the family is in sync again.
///
/// RFC 9494 - Section 4.2: the long-lived timer "is neither stopped nor
/// updated until EoR is received for the relevant AFI/SAFI from the peer."
pub(super) fn end_of_rib(p: &mut Peer, f: Family) {
    p.llgr_until.retain(|(g, _)| *g != f);
    p.llgr_expired.retain(|g| *g != f);
}

/// Decide, when an established session of `p` is lost, which of its paths
/// (`adj_in`) are kept stale; returns those to withdraw now and whether to go
/// straight to LLGR (a zero restart time).
///
/// RFC 4724 - Section 4.2: "When the Receiving Speaker detects termination of
/// the TCP session for a BGP session with a peer that has advertised the
/// Graceful Restart Capability, it MUST retain the routes received from the
/// peer for all the address families that were previously received in the
/// Graceful Restart Capability and MUST mark them as stale routing
/// information." RFC 9494 - Section 4.2: when the Restart Time is zero the
/// routes of the families in the LLGR capability are retained as LLGR-stale
/// at once.
///
/// A loss while paths are still stale from an earlier one (the peer came
/// back and went again before its End-of-RIB: TF's nested close,
/// `PeerCloseManager::CloseInternal`) does not start the restart time again:
/// TF restarts its GR timer with the restart time less the time elapsed since
/// it started (`gr_elapsed_`), so a flapping peer's stale paths go when the
/// first restart time runs out, here `gr_since + restart time`. During LLGR
/// the long-lived timers keep running: RFC 9494 - Section 4.2: "If a
/// "Long-lived Stale Time" timer is running for routes with a given AFI/SAFI
/// received from a peer, it MUST NOT be updated (other than by manual
/// operator intervention) until the peer has established and synchronized a
/// new session." and "in the case of consecutive restarts, the previously
/// marked stale routes MUST NOT be deleted before the timer for the
/// "Long-lived Stale Time" expires." What the new session sent gets a
/// restart time of its own, as TF's new GR_TIMER gives it (TF pauses its
/// LLGR timer meanwhile and resumes it with `llgr_elapsed_` taken off; the
/// MUST above keeps ours running). A loss of a session that never reached
/// Established is not a close at all (TF's `BgpPeerClose::Close` with an
/// unchanged flap count): the caller only comes here for established ones.
pub(super) fn retain_on_close(
    sc: &SpeakerConfig,
    p: &mut Peer,
    neg: Option<&Negotiated>,
    graceful: bool,
    adj_in: Vec<RouteKey>,
    now: Instant,
) -> (Vec<RouteKey>, bool) {
    let nested = !p.stale.is_empty();
    let in_llgr = nested && p.stale_until.is_none() && !p.llgr_until.is_empty();
    let Some(n) = neg.filter(|_| graceful && sc.gr_helper) else {
        end_restart(p);
        return (adj_in, false);
    };
    let gr = n
        .graceful_restart
        .as_ref()
        .filter(|(t, fams)| *t > 0 && !fams.is_empty());
    p.llgr_params = if sc.llgr_time == 0 {
        Vec::new()
    } else {
        n.llgr
            .iter()
            .filter(|(_, t)| *t > 0)
            .map(|(f, t)| (*f, Duration::from_secs(u64::from((*t).min(sc.llgr_time)))))
            .collect()
    };
    if gr.is_none() && p.llgr_params.is_empty() {
        end_restart(p);
        return (adj_in, false);
    }
    let llgr = &p.llgr_params;
    let keep = |f: Family| {
        gr.is_some_and(|(_, fams)| fams.contains(&f)) || llgr.iter().any(|(g, _)| *g == f)
    };
    // RFC 9494 - Section 4.2: "If the timer expires during synchronization
    // with the peer, any stale routes that the peer has not refreshed, are
    // removed. If the session subsequently resets prior to becoming
    // synchronized, any remaining routes (for the AFI/SAFI whose LLST timer
    // expired) MUST be removed immediately."
    let expired = &p.llgr_expired;
    let mut drop = Vec::new();
    for k in adj_in {
        let f = k.family();
        if keep(f) && !expired.contains(&f) {
            p.stale.insert(k);
        } else {
            drop.push(k);
        }
    }
    p.stale_families = n.families.clone();
    if !nested {
        p.llgr_until.clear();
    }
    if !nested || in_llgr {
        p.gr_since = Some(now);
    }
    let since = p.gr_since.unwrap_or(now);
    let (phase, until) = match gr {
        Some((t, _)) => {
            let end = since + Duration::from_secs(u64::from(*t));
            p.stale_until = Some(end.max(now));
            let left = end.saturating_duration_since(now).as_secs();
            ("graceful restart helper", left)
        }
        None => {
            p.stale_until = None;
            let t = p.llgr_params.iter().map(|(_, d)| d.as_secs()).max();
            ("long-lived graceful restart helper", t.unwrap_or(0))
        }
    };
    p.stats.last_error = Some(format!(
        "connection closed without NOTIFICATION; {phase}: {} paths kept stale for up to {until} s{}",
        p.stale.len(),
        if nested { " (lost again during the restart)" } else { "" }
    ));
    (drop, gr.is_none())
}

/// Why graceful restart ends when the restarting peer's new session comes up,
/// if it does: TF's `BgpPeerClose::SetGRCapabilities`, which on the new OPEN
/// in GR_TIMER / LLGR_TIMER re-runs `IsCloseGraceful` (LLGR_TIMER:
/// `IsCloseLongLivedGraceful`) and on `false` closes non-gracefully: every
/// stale path goes at once. TF (`IsGRReady`) requires the helper mode still
/// on, a GR capability listing families, a non-zero restart time unless LLGR
/// applies, the negotiated families unchanged since the paths went stale and
/// equal to the GR families, and the Forwarding State bit for each of them
/// but EVPN (TF keeps no stale EVPN path; ours are kept, and the per-family
/// rule of [`unpreserved_stale`] still removes them without the bit).
fn tf_abort(sc: &SpeakerConfig, p: &Peer, n: &Negotiated, in_llgr: bool) -> Option<String> {
    if !sc.gr_helper {
        return Some("helper mode is off".into());
    }
    let (time, fams) = match &n.graceful_restart {
        Some((t, f)) if !f.is_empty() => (*t, f),
        Some(_) => return Some("the new graceful restart capability lists no family".into()),
        None => return Some("no graceful restart capability in the new OPEN".into()),
    };
    let same = |a: &[Family], b: &[Family]| {
        a.iter().all(|f| b.contains(f)) && b.iter().all(|f| a.contains(f))
    };
    let llgr_ok = llgr_applies(sc, n, fams);
    if time == 0 && !llgr_ok {
        return Some("restart time 0 without long-lived graceful restart".into());
    }
    if !p.stale_families.is_empty() && !same(&n.families, &p.stale_families) {
        return Some("the negotiated families differ from the lost session's".into());
    }
    if !same(&n.families, fams) {
        return Some("the graceful restart families differ from the negotiated ones".into());
    }
    if let Some(f) = fams
        .iter()
        .find(|f| **f != Family::Evpn && !n.gr_forwarding.contains(f))
    {
        return Some(format!("forwarding state not preserved for {}", f.name()));
    }
    if in_llgr && !llgr_ok {
        return Some("long-lived graceful restart no longer applies".into());
    }
    None
}

/// TF's `IsCloseLongLivedGracefulInternal`: we advertised LLGR, the peer's
/// capability lists families with a non-zero time, the same ones as its GR
/// capability (EVPN aside) and each but EVPN with the Forwarding State bit.
fn llgr_applies(sc: &SpeakerConfig, n: &Negotiated, gr_fams: &[Family]) -> bool {
    let fams: Vec<Family> = n.llgr.iter().map(|(f, _)| *f).collect();
    sc.llgr_time > 0
        && n.llgr.iter().any(|(_, t)| *t > 0)
        && gr_fams
            .iter()
            .chain(&fams)
            .all(|f| *f == Family::Evpn || (gr_fams.contains(f) && fams.contains(f)))
        && fams
            .iter()
            .all(|f| *f == Family::Evpn || n.llgr_forwarding.contains(f))
}

/// Take out of `p.stale` the paths the peer's new session does not let us
/// keep, and return them for withdrawal.
///
/// First TF's rule ([`tf_abort`]): when it ends the restart, every stale path
/// goes. Then, per family, RFC 4724 - Section 4.2: "If the Forwarding State
/// bit for a specific address family is not set in the newly received
/// Graceful Restart Capability, or if a specific address family is not
/// included in the newly received Graceful Restart Capability, or if the
/// Graceful Restart Capability is not received in the re-established session
/// at all, then the Receiving Speaker MUST immediately remove all the stale
/// routes from the peer that it is retaining for that address family."
/// RFC 9494 §4.2 says the same of the LLGR capability for LLGR-stale routes.
/// The peer sends them again.
pub(super) fn unpreserved_stale(sc: &SpeakerConfig, p: &mut Peer) -> Vec<RouteKey> {
    let mut sweep = Vec::new();
    if p.stale.is_empty() {
        return sweep;
    }
    let in_llgr = p.stale_until.is_none() && !p.llgr_until.is_empty();
    let abort = p.negotiated().and_then(|n| tf_abort(sc, p, n, in_llgr));
    if let Some(why) = abort {
        sweep.extend(p.stale.drain());
        end_restart(p);
        p.stats.last_error = Some(format!(
            "graceful restart ended: {why}; {} stale paths removed",
            sweep.len()
        ));
        return sweep;
    }
    let (keep, keep_llgr) = p
        .negotiated()
        .map(|n| (n.gr_forwarding.clone(), n.llgr_forwarding.clone()))
        .unwrap_or_default();
    p.stale.retain(|k| {
        let f = k.family();
        let kept = if in_llgr {
            keep_llgr.contains(&f)
        } else {
            keep.contains(&f) || keep_llgr.contains(&f)
        };
        if !kept {
            sweep.push(k.clone());
        }
        kept
    });
    if p.stale.is_empty() {
        end_restart(p);
    }
    if !sweep.is_empty() {
        p.stats.last_error = Some(format!(
            "graceful restart: {} stale paths removed, the peer kept no forwarding state for their families",
            sweep.len()
        ));
    }
    sweep
}

impl Core {
    /// The GR and LLGR timers of the peer at `addr`.
    pub(super) fn gr_timers(&mut self, now: Instant, addr: IpAddr) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        if p.stale.is_empty() {
            end_restart(p);
            return;
        }
        if p.stale_until.is_some_and(|t| t <= now) {
            p.stale_until = None;
            // RFC 4724 - Section 4.2: "If the session does not get
            // re-established within the "Restart Time" that the peer
            // advertised previously, the Receiving Speaker MUST delete all
            // the stale routes from the peer that it is retaining." RFC 9494
            // §4.2: unless LLGR applies, when they become LLGR-stale. A peer
            // that is back has its stale paths swept (TF fakes End-of-RIB).
            if p.session().is_none() && !p.llgr_params.is_empty() {
                self.enter_llgr(now, addr);
            } else {
                let stale: Vec<RouteKey> = p.stale.drain().collect();
                for k in stale {
                    self.peer_withdraw(addr, &k);
                }
                return;
            }
        }
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let due: Vec<Family> = p
            .llgr_until
            .iter()
            .filter(|(_, t)| *t <= now)
            .map(|(f, _)| *f)
            .collect();
        if due.is_empty() {
            return;
        }
        // RFC 9494 - Section 4.2: "If the timer expires ... the stale routes
        // MUST be deleted" (the long-lived stale time of their family).
        p.llgr_until.retain(|(f, _)| !due.contains(f));
        p.llgr_expired.extend(due.iter().copied());
        let gone: Vec<RouteKey> = p
            .stale
            .iter()
            .filter(|k| due.contains(&k.family()))
            .cloned()
            .collect();
        for k in gone {
            self.peer_withdraw(addr, &k);
        }
    }

    /// The restart time ran out (or was zero) and LLGR applies: the stale
    /// paths of the LLGR families become LLGR-stale, the others go.
    ///
    /// RFC 9494 - Section 4.2: "the routes ... MUST be retained as stale
    /// routes ... the LLGR_STALE community MUST be attached to them" and
    /// Section 4.3: routes carrying NO_LLGR "MUST NOT be retained"; "they
    /// MUST be deleted". Attaching the community re-installs each path with
    /// it, so the Loc-RIB ranks it last and every LLGR peer is told.
    pub(super) fn enter_llgr(&mut self, now: Instant, addr: IpAddr) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let params = p.llgr_params.clone();
        // A family's long-lived timer that already runs (a loss during LLGR)
        // is not updated (RFC 9494 §4.2, see `retain_on_close`).
        for (f, d) in &params {
            if !p.llgr_until.iter().any(|(g, _)| g == f) {
                p.llgr_until.push((*f, now + *d));
            }
        }
        let left = p
            .llgr_until
            .iter()
            .map(|(_, t)| t.saturating_duration_since(now).as_secs())
            .max();
        p.stats.last_error = Some(format!(
            "long-lived graceful restart helper: {} paths kept LLGR-stale for up to {} s",
            p.stale.len(),
            left.unwrap_or(0)
        ));
        let keys: Vec<RouteKey> = p.stale.iter().cloned().collect();
        let mut gone = Vec::new();
        let mut relearn = Vec::new();
        for k in keys {
            if !params.iter().any(|(f, _)| *f == k.family()) {
                gone.push(k);
                continue;
            }
            let cand = self
                .rib
                .candidates(&k)
                .into_iter()
                .find(|c| c.src == Source::Peer(addr));
            match cand {
                Some(c) if c.path.attrs.communities.contains(&NO_LLGR) => gone.push(k),
                Some(c) if !c.path.attrs.communities.contains(&LLGR_STALE) => relearn.push(c),
                _ => {}
            }
        }
        for k in gone {
            self.peer_withdraw(addr, &k);
        }
        // one new attribute set per distinct old one (paths share them)
        let mut with_llgr: HashMap<*const Attrs, Arc<Attrs>> = HashMap::new();
        for c in relearn {
            let attrs = with_llgr
                .entry(Arc::as_ptr(&c.path.attrs))
                .or_insert_with(|| {
                    let mut a = Attrs::clone(&c.path.attrs);
                    a.communities.push(LLGR_STALE);
                    Arc::new(a)
                })
                .clone();
            let key = c.path.key.clone();
            let routes = vec![(c.path.key, c.path.labels)];
            self.peer_learn(addr, c.ebgp, c.peer_id, attrs, routes);
            // learning a path makes it fresh; this one stays stale
            if let Some(p) = self.peers.get_mut(&addr) {
                p.stale.insert(key);
            }
        }
    }
}
