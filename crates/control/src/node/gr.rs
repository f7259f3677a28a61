//! XMPP graceful restart, helper mode (tf-facts §2.7): the control node keeps a closed
//! agent's paths, marked stale, until it comes back and re-publishes them.
//!
//! tf-facts §2.7: "With XMPP helper mode the control node keeps an agent's paths as stale
//! while it reconnects and sweeps them after receiving EoR or the EoR receive timer."
//! The rules below are TF's (`peer_close_manager.cc`, `bgp_xmpp_peer_close.cc`,
//! `xmpp_server.cc` `IsPeerCloseGraceful`, `bgp_path.cc` `PathCompare`):
//!
//! - A close is graceful when global-system-config `graceful_restart_parameters` has
//!   `enable` and `xmpp_helper_enable` true and a non-zero `restart_time`; the reason of
//!   the close does not matter (hold timer, TCP reset, stream close, a new session of the
//!   same agent, an error). The parameters are read at each close: a change applies to
//!   later closes, a running timer keeps its deadline.
//! - Graceful close (TF's `STALE` state): inet and inet6 paths of the agent stay in the
//!   RIB, marked stale; its EVPN paths are deleted at once (TF: "We do not support GR for
//!   multicast routes (yet)" covers ERMVPN, EVPN and MVPN). Its routing subscriptions
//!   are kept (stale) and with them the route-target membership they imply.
//! - A stale path ranks like a fresh one: only LLGR-stale paths rank lower in TF's
//!   `PathCompare`. Nothing is pushed at close: no agent or BGP peer sees a change.
//! - The restart timer runs `restart_time` from the close (`GR_TIMER`). If the agent (same
//!   name) is not back when it fires, and `long_lived_restart_time` is non-zero (TF's
//!   `BgpXmppPeerClose::IsCloseLongLivedGraceful`), its stale paths become LLGR-stale
//!   (`LLGR_TIMER`, TF's `LlgrStaleCurrentSubscriptions`): re-installed with
//!   `PathAttrs::llgr_stale`, so they rank last and go to BGP peers with LLGR_STALE; when
//!   that timer fires too, every stale path and subscription is deleted (at once when the
//!   long-lived time is 0). If it is back, what is still stale is swept (withdrawn);
//!   re-published paths and re-sent subscriptions became fresh when they arrived.
//! - Back in time, the agent sweeps its stale paths by sending End-of-RIB; otherwise the
//!   EoR receive timer (`end_of_rib_timeout` after it reconnected) sweeps them. TF also
//!   stretches that timer while the channel is busy; here it is a plain timeout.
//! - A second close while the timer runs (TF's nested close) stales the paths again
//!   (fresh ones too) and restarts the timer with `restart_time` minus the time already
//!   spent in GR (TF's `gr_elapsed_`), so flapping cannot hold stale paths forever. A
//!   close during LLGR goes back to the GR timer (same rule), then to LLGR for the
//!   long-lived time not yet spent (TF's `llgr_elapsed_`): what the new session
//!   published becomes LLGR-stale too instead of staying at full preference.
//! - With GR disabled, a close deletes everything at once (as before this module).
//!
//! BGP peers (the speaker in `filament-bgp` keeps their stale paths, RFC 4724 / RFC 9494)
//! get their settings from the same object, as TF's `BgpServer` reads them
//! (`GetGracefulRestartTime`, `GetLongLivedGracefulRestartTime`, `IsGRHelperModeEnabled`):
//! helper mode is `enable && bgp_helper_enable`; the OPEN carries `restart_time` and
//! `long_lived_restart_time` when `enable`, else a zero restart time ([`BgpGr`]). A
//! change reaches the running speaker at the BGP link's next poll: helper mode applies to
//! the next session loss, the capabilities to the next OPEN. The link also reports each
//! restarting peer's stale keys ([`ControlNode::set_bgp_stale`]), so `route show` marks
//! those paths stale; LLGR-stale ones carry LLGR_STALE (`PathAttrs::llgr_stale`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use filament_bgp::{PeerStatus, RouteKey, SpeakerConfig};

use super::{ConnId, ControlNode};
use crate::config::ConfigGraph;
use crate::rib::{split_vrf_table, vrf_table, Family, Key, Origin, Path, PathAttrs, PeerId};

/// Stale paths of restarting BGP peers: peer address → the speaker's list (kept to see
/// that it did not change) and the same keys as a set.
pub(crate) type BgpStale = HashMap<String, (Arc<Vec<RouteKey>>, HashSet<RouteKey>)>;

/// BGP graceful-restart settings (TF's `BgpServer` view of `graceful_restart_parameters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BgpGr {
    /// `enable && bgp_helper_enable`.
    pub helper: bool,
    /// `restart_time` when `enable`, else 0 (TF's `GetGracefulRestartTime`).
    pub restart_time: u16,
    /// `long_lived_restart_time` when `enable`, else 0.
    pub llgr_time: u32,
}

impl BgpGr {
    /// Put these settings into the speaker's.
    pub fn apply(&self, sc: &mut SpeakerConfig) {
        sc.gr_helper = self.helper;
        sc.gr_restart_time = self.restart_time;
        sc.gr_families = self.restart_time > 0;
        sc.llgr_time = self.llgr_time;
    }
}

/// TF's bound on `long_lived_restart_time` (vnc_cfg.xsd LongLivedGracefulRestartTimeType:
/// 1 to 16777215 s, the 24 bits of RFC 9494's field).
const MAX_LLGR_TIME: u64 = 16_777_215;

/// `graceful_restart_parameters` of global-system-config, if set.
fn gr_props(g: &ConfigGraph) -> Option<&Value> {
    g.lookup(
        "global-system-config",
        &["default-global-system-config".to_string()],
    )
    .and_then(|o| o.props.get("graceful_restart_parameters"))
}

/// The BGP graceful-restart settings from the config graph (TF's defaults when unset).
pub fn bgp_gr(g: &ConfigGraph) -> BgpGr {
    let p = gr_props(g);
    let flag = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_bool) == Some(true);
    let secs = |k: &str, max: u64| {
        p.and_then(|p| p.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_TIME)
            .min(max)
    };
    let enable = flag("enable");
    let restart_time = if enable {
        u16::try_from(secs("restart_time", MAX_TIME)).unwrap_or(0)
    } else {
        0
    };
    BgpGr {
        helper: enable && flag("bgp_helper_enable"),
        restart_time,
        llgr_time: if enable {
            u32::try_from(secs("long_lived_restart_time", MAX_LLGR_TIME)).unwrap_or(0)
        } else {
            0
        },
    }
}

/// TF's default `restart_time` and `end_of_rib_timeout` (vnc_cfg.xsd
/// GracefulRestartParametersType).
const DEFAULT_TIME: u64 = 300;
/// TF's bound on both (vnc_cfg.xsd GracefulRestartTimeType / EndOfRibTimeType: 0–4095 s);
/// larger configured values are clamped, so no deadline can overflow.
const MAX_TIME: u64 = 4095;

/// `graceful_restart_parameters` of global-system-config, as the XMPP helper uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrParams {
    /// `enable && xmpp_helper_enable`.
    pub xmpp_helper: bool,
    /// `restart_time` (0 turns graceful closes off, as in TF).
    pub restart_time: Duration,
    /// `end_of_rib_timeout`: how long after the agent is back its stale paths wait for EoR.
    pub end_of_rib_timeout: Duration,
    /// `long_lived_restart_time` (0: no LLGR after the restart time).
    pub long_lived_restart_time: Duration,
}

/// A stale path: (instance, family, key) → RD, as in `Agent::published`.
pub(crate) type StalePaths = BTreeMap<(String, Family, String), Option<String>>;

/// Where a restarting agent is (TF's `GR_TIMER` state; no entry = TF's `NONE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Closed; the restart timer runs.
    Away,
    /// Back on `conn`; End-of-RIB or its timer (`eor_deadline`) ends the restart.
    Back {
        /// The new session.
        conn: ConnId,
        /// When the EoR receive timer fires.
        eor_deadline: Duration,
    },
}

/// An agent in graceful restart (by name): what it left behind and its timers.
#[derive(Debug)]
pub(crate) struct Restarting {
    pub(crate) phase: Phase,
    /// Paths not re-published since the close.
    pub(crate) stale: StalePaths,
    /// Routing subscriptions (instance → instance id) not re-sent since the close.
    pub(crate) subs: BTreeMap<String, u32>,
    /// When the restart timer (re)started.
    timer_start: Duration,
    /// GR time already spent in earlier closes of this restart (TF `gr_elapsed_`).
    elapsed: Duration,
    /// Long-lived time already spent before a close during LLGR (TF `llgr_elapsed_`).
    llgr_elapsed: Duration,
    /// `restart_time` at the last close.
    restart_time: Duration,
    /// Closes during this restart (1 = no nested close).
    closes: u64,
    /// In LLGR (TF's `LLGR_TIMER`): when the long-lived timer fires.
    llgr_until: Option<Duration>,
}

impl Restarting {
    /// When the restart timer (or, in LLGR, the long-lived timer) fires.
    fn deadline(&self) -> Duration {
        self.llgr_until.unwrap_or_else(|| {
            self.timer_start
                .saturating_add(self.restart_time.saturating_sub(self.elapsed))
        })
    }
}

/// What happens to an agent, as graceful restart sees it.
#[derive(Debug)]
pub(super) enum GrEvent {
    /// Its session closed, leaving these subscriptions and published paths.
    Closed {
        /// Routing subscriptions of the closed session.
        subs: BTreeMap<String, u32>,
        /// Paths it had published.
        published: StalePaths,
    },
    /// It opened a new session on `conn`.
    Reopened {
        /// The new session.
        conn: ConnId,
    },
    /// End-of-RIB on session `conn`.
    EndOfRib {
        /// The session it came on.
        conn: ConnId,
    },
    /// Time passed (`ControlNode::now`).
    Tick,
}

impl ControlNode {
    /// The graceful-restart parameters from global-system-config (TF's defaults when unset).
    pub fn gr_params(&self) -> GrParams {
        let p = gr_props(&self.graph);
        let flag = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_bool) == Some(true);
        let secs = |k: &str| {
            Duration::from_secs(
                p.and_then(|p| p.get(k))
                    .and_then(Value::as_u64)
                    .unwrap_or(DEFAULT_TIME)
                    .min(MAX_TIME),
            )
        };
        GrParams {
            xmpp_helper: flag("enable") && flag("xmpp_helper_enable"),
            restart_time: secs("restart_time"),
            end_of_rib_timeout: secs("end_of_rib_timeout"),
            long_lived_restart_time: Duration::from_secs(
                p.and_then(|p| p.get("long_lived_restart_time"))
                    .and_then(Value::as_u64)
                    .unwrap_or(DEFAULT_TIME)
                    .min(MAX_LLGR_TIME),
            ),
        }
    }

    /// Whether a close now is graceful (xmpp_server.cc `IsPeerCloseGraceful`: helper mode
    /// on and a non-zero restart time).
    fn close_is_graceful(&self) -> bool {
        let p = self.gr_params();
        p.xmpp_helper && !p.restart_time.is_zero()
    }

    /// The graceful-restart state machine of the agent `name` (TF's PeerCloseManager).
    pub(super) fn gr_step(&mut self, name: &str, ev: GrEvent) {
        let now = self.now;
        let phase = self.gr.get(name).map(|st| st.phase);
        match (phase, ev) {
            // not graceful: every path and subscription goes now (stale ones included)
            (_, GrEvent::Closed { .. }) if !self.close_is_graceful() => {
                // (the caller recomputes RT membership after any close)
                self.gr.remove(name);
                self.rib.remove_peer(&PeerId::Xmpp(name.into()));
            }
            // graceful close: its paths and subscriptions stay, stale; the restart timer
            // starts, counting the time spent in GR before a nested close (gr_elapsed_)
            (phase, GrEvent::Closed { subs, published }) => {
                let restart_time = self.gr_params().restart_time;
                let st = self.gr.entry(name.to_string()).or_insert(Restarting {
                    phase: Phase::Away,
                    stale: BTreeMap::new(),
                    subs: BTreeMap::new(),
                    timer_start: now,
                    elapsed: Duration::ZERO,
                    llgr_elapsed: Duration::ZERO,
                    restart_time,
                    closes: 0,
                    llgr_until: None,
                });
                if phase.is_some() {
                    let spent = now.saturating_sub(st.timer_start);
                    if st.llgr_until.take().is_some() {
                        // a close in LLGR_TIMER: TF counts the long-lived time spent
                        // (llgr_elapsed_) and runs the GR timer again, then LLGR with
                        // what is left, so what the new session published becomes
                        // LLGR-stale too and nothing outlives restart + long-lived time
                        st.llgr_elapsed += spent;
                    } else {
                        st.elapsed += spent;
                    }
                }
                st.phase = Phase::Away;
                st.closes += 1;
                st.timer_start = now;
                st.restart_time = restart_time;
                st.subs.extend(subs);
                let peer = PeerId::Xmpp(name.into());
                for ((ri, fam, key), rd) in published {
                    if fam == Family::Evpn {
                        // peer_close_manager.cc: no GR for EVPN (nor multicast) paths
                        self.rib.del_local(&ri, fam, &key, &peer, &rd);
                        self.counters.gr_deleted += 1;
                    } else {
                        self.counters.gr_staled += 1;
                        st.stale.insert((ri, fam, key), rd);
                    }
                }
                self.counters.gr_closes += 1;
            }
            // back in time: the EoR receive timer starts
            (Some(_), GrEvent::Reopened { conn }) => {
                let eor_deadline = now.saturating_add(self.gr_params().end_of_rib_timeout);
                if let Some(st) = self.gr.get_mut(name) {
                    st.phase = Phase::Back { conn, eor_deadline };
                }
            }
            // End-of-RIB on the new session: what is still stale is swept
            (Some(Phase::Back { conn: c, .. }), GrEvent::EndOfRib { conn }) if c == conn => {
                self.gr_sweep(name);
            }
            // the restart timer fired while away, LLGR configured: its paths become
            // LLGR-stale for long_lived_restart_time
            (Some(Phase::Away), GrEvent::Tick)
                if self
                    .gr
                    .get(name)
                    .is_some_and(|st| now >= st.deadline() && st.llgr_until.is_none())
                    && !self.gr_params().long_lived_restart_time.is_zero() =>
            {
                self.gr_llgr_stale(name);
            }
            // the restart timer (or the long-lived one) fired while away: everything goes
            (Some(Phase::Away), GrEvent::Tick)
                if self.gr.get(name).is_some_and(|st| now >= st.deadline()) =>
            {
                self.gr_sweep(name);
            }
            // back, and the restart or the EoR receive timer fired: TF fakes End-of-RIB
            (Some(Phase::Back { eor_deadline, .. }), GrEvent::Tick)
                if now >= eor_deadline
                    || self.gr.get(name).is_some_and(|st| now >= st.deadline()) =>
            {
                self.gr_sweep(name);
            }
            // a session of an agent not restarting, End-of-RIB of another session, a tick
            // before any timer: nothing to do
            (None, GrEvent::Reopened { .. })
            | (_, GrEvent::EndOfRib { .. })
            | (_, GrEvent::Tick) => {}
        }
    }

    /// The agent re-subscribed to `ri`: that subscription is fresh again.
    pub(super) fn gr_subscribed(&mut self, name: &str, ri: &str) {
        if let Some(st) = self.gr.get_mut(name) {
            st.subs.remove(ri);
        }
    }

    /// The agent unsubscribed from `ri`: its stale subscription and paths there go.
    pub(super) fn gr_unsubscribed(&mut self, name: &str, ri: &str) {
        let Some(st) = self.gr.get_mut(name) else {
            return;
        };
        st.subs.remove(ri);
        let gone: Vec<_> = st
            .stale
            .keys()
            .filter(|(r, _, _)| r == ri)
            .cloned()
            .collect();
        let peer = PeerId::Xmpp(name.into());
        for k in gone {
            if let Some(rd) = st.stale.remove(&k) {
                self.rib.del_local(&k.0, k.1, &k.2, &peer, &rd);
                self.counters.gr_swept += 1;
            }
        }
    }

    /// The agent re-published `path` with these values: a stale path is fresh again.
    /// Returns `true` when the RIB already holds exactly that path (TF's "refreshed"
    /// path with unchanged attributes): then there is nothing to install or push, so a
    /// restarting agent's identical routes cost its peers no update at all.
    pub(super) fn gr_refreshed(
        &mut self,
        name: &str,
        path: &(String, Family, String),
        peer: &PeerId,
        rd: &Option<String>,
        label: u32,
        attrs: &PathAttrs,
    ) -> bool {
        let Some(old_rd) = self.gr.get_mut(name).and_then(|st| st.stale.remove(path)) else {
            return false;
        };
        self.counters.gr_refreshed += 1;
        if old_rd != *rd {
            return false;
        }
        let (ri, fam, key) = path;
        let export = self.rib.instance(ri).map(|i| &i.export);
        let Some(r) = self
            .rib
            .table(&vrf_table(ri, *fam))
            .and_then(|t| t.get_key(&Key::parse(key)))
        else {
            return false;
        };
        r.paths.iter().any(|p| {
            p.origin == Origin::Primary
                && p.peer == *peer
                && p.rd.as_deref() == rd.as_deref()
                && p.label == label
                && Some(&p.attrs.route_targets) == export
                && PathAttrs {
                    route_targets: p.attrs.route_targets.clone(),
                    ..attrs.clone()
                } == *p.attrs
        })
    }

    /// The agent withdrew a path it had not re-published: the stale one goes (`true`).
    pub(super) fn gr_withdrawn(&mut self, name: &str, path: &(String, Family, String)) -> bool {
        let Some(rd) = self.gr.get_mut(name).and_then(|st| st.stale.remove(path)) else {
            return false;
        };
        self.rib
            .del_local(&path.0, path.1, &path.2, &PeerId::Xmpp(name.into()), &rd);
        self.counters.gr_swept += 1;
        true
    }

    /// End-of-RIB on session `conn`.
    pub(super) fn gr_eor(&mut self, conn: ConnId) {
        let name = self
            .gr
            .iter()
            .find(|(_, st)| matches!(st.phase, Phase::Back { conn: c, .. } if c == conn))
            .map(|(n, _)| n.clone());
        if let Some(n) = name {
            self.gr_step(&n, GrEvent::EndOfRib { conn });
        }
    }

    /// Timers of every restarting agent.
    pub(super) fn gr_tick(&mut self) {
        let names: Vec<String> = self.gr.keys().cloned().collect();
        for n in names {
            self.gr_step(&n, GrEvent::Tick);
        }
    }

    /// LLGR for the agent `name` (TF's `LLGR_STALE`, then `LLGR_TIMER`): each stale path
    /// is re-installed marked LLGR-stale; the long-lived timer starts.
    fn gr_llgr_stale(&mut self, name: &str) {
        let llgr = self.gr_params().long_lived_restart_time;
        let now = self.now;
        let Some(st) = self.gr.get_mut(name) else {
            return;
        };
        st.llgr_until = Some(now.saturating_add(llgr.saturating_sub(st.llgr_elapsed)));
        st.timer_start = now;
        let stale: Vec<_> = st
            .stale
            .iter()
            .map(|(k, rd)| (k.clone(), rd.clone()))
            .collect();
        let peer = PeerId::Xmpp(name.into());
        for ((ri, fam, key), rd) in stale {
            let found = self
                .rib
                .table(&vrf_table(&ri, fam))
                .and_then(|t| t.get_key(&Key::parse(&key)))
                .and_then(|r| {
                    r.paths.iter().find(|p| {
                        p.origin == Origin::Primary
                            && p.peer == peer
                            && p.rd.as_deref() == rd.as_deref()
                    })
                })
                .map(|p| (p.label, PathAttrs::clone(&p.attrs)));
            if let Some((label, mut attrs)) = found.filter(|(_, a)| !a.llgr_stale) {
                attrs.llgr_stale = true;
                self.rib
                    .add_local(&ri, fam, &key, peer.clone(), rd, label, attrs);
                self.counters.gr_llgr_staled += 1;
            }
        }
    }

    /// The agent is no longer restarting: delete its stale paths and subscriptions.
    pub(super) fn gr_sweep(&mut self, name: &str) {
        let Some(st) = self.gr.remove(name) else {
            return;
        };
        let peer = PeerId::Xmpp(name.into());
        self.counters.gr_swept += st.stale.len() as u64;
        for ((ri, fam, key), rd) in st.stale {
            self.rib.del_local(&ri, fam, &key, &peer, &rd);
        }
        if !st.subs.is_empty() {
            self.update_rtarget();
        }
    }

    /// BGP graceful-restart settings from this node's config.
    pub fn bgp_gr(&self) -> BgpGr {
        bgp_gr(&self.graph)
    }

    /// The BGP link's report of its peers: the stale keys of those restarting.
    /// A list that did not change (the same `Arc`) is not read again.
    pub fn set_bgp_stale(&mut self, peers: &[PeerStatus]) {
        let mut old = std::mem::take(&mut self.bgp_stale);
        for p in peers.iter().filter(|p| !p.stale_keys.is_empty()) {
            let addr = p.address.to_string();
            let entry = match old.remove(&addr) {
                Some(e) if Arc::ptr_eq(&e.0, &p.stale_keys) => e,
                _ => (p.stale_keys.clone(), p.stale_keys.iter().cloned().collect()),
            };
            self.bgp_stale.insert(addr, entry);
        }
    }

    /// Whether the BGP path `p` of `table` under `key` is kept stale for its restarting
    /// peer. In a global table the key is the path's own; a secondary path in an instance
    /// names its primary table, and its RD completes the key.
    fn bgp_path_stale(&self, peer: &str, table: &str, key: &str, p: &Path) -> bool {
        let Some((_, keys)) = self.bgp_stale.get(peer) else {
            return false;
        };
        let k = match (&p.origin, p.rd.as_deref()) {
            (Origin::Primary, _) => crate::bgp_peers::route_key(table, key),
            (Origin::Secondary { table: t }, Some(rd)) if !table.starts_with("bgp.") => {
                crate::bgp_peers::route_key(t, &format!("{rd}:{key}"))
            }
            (Origin::Secondary { table: t }, _) => crate::bgp_peers::route_key(t, key),
        };
        k.is_some_and(|k| keys.contains(&k))
    }

    /// Whether `p` (a path of `table` under `key`) is a stale path of a restarting agent
    /// or BGP peer.
    pub fn path_stale(&self, table: &str, key: &str, p: &Path) -> bool {
        let n = match &p.peer {
            PeerId::Xmpp(n) => n,
            PeerId::Bgp(peer) => return self.bgp_path_stale(peer, table, key, p),
            PeerId::Local => return false,
        };
        let Some(st) = self.gr.get(n.as_str()) else {
            return false;
        };
        let (primary, prefix) = match &p.origin {
            Origin::Primary => (table, Key::parse(key)),
            Origin::Secondary { table: t } if table.starts_with("bgp.") => {
                (t.as_str(), Key::parse(key).prefix())
            }
            Origin::Secondary { table: t } => (t.as_str(), Key::parse(key)),
        };
        let Some((ri, fam)) = split_vrf_table(primary) else {
            return false;
        };
        st.stale
            .get(&(ri, fam, prefix.to_string()))
            .is_some_and(|rd| rd.as_deref() == p.rd.as_deref())
    }

    /// Graceful-restart state of the agent `name` for `neighbors` (`None` when it is not
    /// restarting).
    pub fn gr_view(&self, name: &str) -> Option<Value> {
        let st = self.gr.get(name)?;
        let (back, eor) = match st.phase {
            Phase::Away => (false, None),
            Phase::Back { eor_deadline, .. } => (true, Some(eor_deadline)),
        };
        let away = if st.llgr_until.is_some() {
            "LLGR_TIMER"
        } else {
            "GR_TIMER"
        };
        Some(json!({
            "state": if back { "SWEEP_WAIT" } else { away },
            "stale_paths": st.stale.len(),
            "stale_subscriptions": st.subs.len(),
            "restart_remaining_secs": st.deadline().saturating_sub(self.now).as_secs(),
            "eor_remaining_secs": eor.map(|d| d.saturating_sub(self.now).as_secs()),
            "closes": st.closes,
        }))
    }

    /// Names of the agents in graceful restart.
    pub fn restarting_agents(&self) -> impl Iterator<Item = &str> {
        self.gr.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use filament_bgp::peer::PeerStats;
    use filament_bgp::State;
    use serde_json::json;

    use super::*;
    use crate::node::NodeConfig;

    fn with_gr(params: Value) -> ControlNode {
        let mut n = ControlNode::new(NodeConfig::default());
        let gsc = serde_json::from_value(json!({
            "type": "global-system-config", "uuid": "u-gsc", "seq": 1,
            "fq_name": ["default-global-system-config"],
            "props": {"graceful_restart_parameters": params}}))
        .unwrap();
        n.graph.apply("u-gsc", Some(gsc));
        n
    }

    /// TF's `BgpServer`: helper = enable && bgp_helper_enable; the times only when enable.
    #[test]
    fn bgp_settings_follow_enable_and_bgp_helper_enable() {
        let off = ControlNode::new(NodeConfig::default()).bgp_gr();
        assert_eq!(
            off,
            BgpGr {
                helper: false,
                restart_time: 0,
                llgr_time: 0
            }
        );
        let n = with_gr(json!({"enable": false, "bgp_helper_enable": true, "restart_time": 60}));
        assert_eq!(n.bgp_gr(), off);
        let n = with_gr(json!({"enable": true, "restart_time": 60}));
        assert_eq!(
            n.bgp_gr(),
            BgpGr {
                helper: false,
                restart_time: 60,
                llgr_time: 300
            }
        );
        let n = with_gr(json!({"enable": true, "bgp_helper_enable": true,
            "restart_time": 99999, "long_lived_restart_time": 99_999_999}));
        let gr = n.bgp_gr();
        assert_eq!(
            gr,
            BgpGr {
                helper: true,
                restart_time: 4095,
                llgr_time: 16_777_215
            }
        );
        let mut sc = SpeakerConfig::new(64512, "10.0.0.1".parse().unwrap());
        gr.apply(&mut sc);
        assert!(sc.gr_helper && sc.gr_families);
        assert_eq!((sc.gr_restart_time, sc.llgr_time), (4095, 16_777_215));
    }

    /// A restarting peer's keys (from the speaker) mark its paths `stale` in `/routes`;
    /// a path carrying LLGR_STALE is `llgr_stale` and loses to a fresh one.
    #[test]
    fn route_show_marks_a_restarting_bgp_peers_paths() {
        let mut n = ControlNode::new(NodeConfig::default());
        let attrs = |llgr: bool, lp: u32| PathAttrs {
            next_hop: "10.0.0.9".into(),
            local_pref: lp,
            llgr_stale: llgr,
            ..PathAttrs::default()
        };
        let a = PeerId::Bgp("10.0.0.9".into());
        let b = PeerId::Bgp("10.0.0.8".into());
        n.rib_mut().add_vpn(
            Family::Inet,
            "65001:1",
            "10.5.0.0/24",
            a.clone(),
            40,
            attrs(false, 100),
        );
        n.rib_mut().add_vpn(
            Family::Inet,
            "65001:1",
            "10.6.0.0/24",
            a,
            41,
            attrs(true, 200),
        );
        n.rib_mut().add_vpn(
            Family::Inet,
            "65001:1",
            "10.6.0.0/24",
            b,
            42,
            attrs(false, 100),
        );
        let status = |keys: Vec<RouteKey>| PeerStatus {
            address: "10.0.0.9".parse::<IpAddr>().unwrap(),
            name: "frr".into(),
            remote_as: 65001,
            state: State::Active,
            families: Vec::new(),
            received: 2,
            sent: 0,
            uptime_secs: None,
            stale: keys.len(),
            stale_keys: Arc::new(keys),
            gr_state: Some("GR_TIMER"),
            stats: PeerStats::default(),
        };
        let k5 = crate::bgp_peers::route_key("bgp.l3vpn.0", "65001:1:10.5.0.0/24").unwrap();
        n.set_bgp_stale(&[status(vec![k5])]);
        let paths = |n: &ControlNode, p: &str| {
            n.routes(Some("bgp.l3vpn.0"), Some(p))["tables"][0]["routes"][0]["paths"]
                .as_array()
                .cloned()
                .unwrap()
        };
        let p5 = paths(&n, "10.5.0.0/24");
        assert_eq!(
            (p5[0]["stale"].clone(), p5[0]["llgr_stale"].clone()),
            (json!(true), json!(false))
        );
        // LLGR-stale loses to a fresh path even with a higher local-pref
        let p6 = paths(&n, "10.6.0.0/24");
        assert_eq!(p6[0]["source"], "10.0.0.8");
        assert_eq!(p6[0]["best"], true);
        assert_eq!(
            (p6[1]["source"].clone(), p6[1]["llgr_stale"].clone()),
            (json!("10.0.0.9"), json!(true))
        );
        assert_eq!(p6[1]["best"], false);
        // back and swept: no stale keys, no marks
        n.set_bgp_stale(&[status(Vec::new())]);
        assert_eq!(paths(&n, "10.5.0.0/24")[0]["stale"], false);
    }
}
