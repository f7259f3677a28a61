//! One configured neighbour: the connection-less part of the RFC 4271 §8
//! state machine (Idle / Connect / Active with the ConnectRetry timer),
//! its connections, Adj-RIB-In and Adj-RIB-Out, RT-constraint state
//! (RFC 4684) and graceful-restart helper state (RFC 4724 §4.2).
//!
//! ```text
//!   Idle --Start (passive)--> Active --ConnectRetry expires--> Connect
//!   Idle --Start----------->  Connect --connect fails-------->  Active
//!   Connect/Active --TCP up--> (a Conn in OpenSent, see fsm.rs)
//!   all connections closed --> Active (retry later); Stop --> Idle
//! ```

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use filament_wire_bgp::{Notification, RouteTarget, RtcRoute};

use crate::fsm::{Conn, ConnId, Negotiated, OpenPolicy, State};
use crate::idset::{Dirty, IdSet};
use crate::rib::DestId;
use crate::types::{Attrs, Family, PeerConfig, RouteKey, SpeakerConfig};

/// Inputs to the connection-less part of a peer's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEvent {
    /// ManualStart (Event 1).
    Start,
    /// ManualStop (Event 2).
    Stop,
    /// ConnectRetryTimer_Expires (Event 9).
    RetryExpired,
    /// TcpConnectionFails (Event 18) for our outgoing attempt.
    ConnectFailed,
    /// The last connection closed.
    AllClosed,
}

/// Counters and history shown by `filament neighbors`.
#[derive(Debug, Clone, Default)]
pub struct PeerStats {
    /// Times the session left Established.
    pub flaps: u64,
    /// UPDATE messages received.
    pub updates_in: u64,
    /// UPDATE messages sent.
    pub updates_out: u64,
    /// UPDATEs handled as withdraw (RFC 7606).
    pub treat_as_withdraw: u64,
    /// Malformed messages that closed the session.
    pub malformed: u64,
    /// Paths ignored by loop detection or for a family not negotiated.
    pub ignored: u64,
    /// Why the session last went down or an UPDATE was last refused: the
    /// NOTIFICATION sent or received, a connection lost without one, or an
    /// RFC 7606 treat-as-withdraw, as text.
    pub last_error: Option<String>,
    /// When the session came up.
    pub established_at: Option<Instant>,
}

/// A listing of a peer's stale keys and what it was made at (count, flaps,
/// LLGR families).
pub type StaleView = ((usize, u64, usize), Arc<Vec<RouteKey>>);

/// One neighbour.
#[derive(Debug)]
pub struct Peer {
    /// Its configuration.
    pub cfg: PeerConfig,
    /// Idle, Connect or Active while no connection exists.
    pub base: State,
    /// ConnectRetry timer.
    pub retry_at: Option<Instant>,
    /// Open connections (two during a collision).
    pub conns: Vec<Conn>,
    /// Number of paths received. The Adj-RIB-In itself is the set of this
    /// peer's candidates in the Loc-RIB (every path is stored once; nothing
    /// is filtered on import), see [`crate::rib::Rib::keys_from`].
    pub received: usize,
    /// The RT-membership routes the peer advertised (RFC 4684).
    pub rtc_in: HashSet<RtcRoute>,
    /// Those of an eBGP peer that are not along the best eBGP path of their
    /// NLRI (another neighbour AS has it): they ask for nothing (RFC 4684
    /// §3.2 keeps every path only for iBGP; TF's RTargetGroupMgr counts
    /// eBGP paths only from the best eBGP path's neighbour AS).
    pub rtc_pruned: HashSet<RtcRoute>,
    /// Adj-RIB-Out: the destinations advertised to the peer. What was sent
    /// is what export makes of the current best path (recomputed when it
    /// changes), so only the fact is kept, one bit per destination.
    pub adj_out: IdSet,
    /// The RT-membership attributes last sent (valid while the destination
    /// is in `adj_out`): a membership path is chosen per peer, not from the
    /// best path alone (RFC 4684 §3.2), so a change elsewhere need not be
    /// re-sent when this peer's choice did not move.
    pub rtc_out: HashMap<DestId, Arc<Attrs>>,
    /// Destinations whose advertisement to this peer must be recomputed.
    pub dirty: Dirty,
    /// Families whose End-of-RIB we sent this session.
    pub eor_sent: HashSet<Family>,
    /// RT-constraint: the peer's End-of-RIB for route-target arrived (or
    /// the wait ran out), so VPN routes may be sent (RFC 4684 §6).
    pub rtc_ready: bool,
    /// Deadline of the wait for that End-of-RIB.
    pub rtc_wait_until: Option<Instant>,
    /// Graceful restart: keys kept as stale while the peer restarts.
    pub stale: HashSet<RouteKey>,
    /// When the stale paths are dropped (or become LLGR-stale, RFC 9494) if
    /// the peer has not come back.
    pub stale_until: Option<Instant>,
    /// RFC 9494: the long-lived stale time of each family the closed session
    /// negotiated LLGR for (the peer's, capped by ours).
    pub llgr_params: Vec<(Family, Duration)>,
    /// In LLGR: when each family's LLGR-stale paths are deleted.
    pub llgr_until: Vec<(Family, Instant)>,
    /// When the current restart began (the first loss since the peer was
    /// last in sync): a loss during the restart does not start the restart
    /// time again (see `core/gr.rs`).
    pub gr_since: Option<Instant>,
    /// The families negotiated on the session whose loss made the paths
    /// stale (TF's `BgpPeerClose::negotiated_families_`).
    pub stale_families: Vec<Family>,
    /// Families whose long-lived stale time ran out during this restart
    /// before their End-of-RIB: lost again, their paths are not kept.
    pub llgr_expired: Vec<Family>,
    /// The stale keys as last listed for `peer_status`, with what they were
    /// listed at (count, flaps, LLGR families): rebuilt only when that moved
    /// (between closes the set only shrinks).
    pub stale_view: Mutex<Option<StaleView>>,
    /// Counters.
    pub stats: PeerStats,
}

impl Peer {
    /// A peer in Idle.
    pub fn new(cfg: PeerConfig) -> Peer {
        Peer {
            cfg,
            base: State::Idle,
            retry_at: None,
            conns: Vec::new(),
            received: 0,
            rtc_in: HashSet::new(),
            rtc_pruned: HashSet::new(),
            adj_out: IdSet::default(),
            rtc_out: HashMap::new(),
            dirty: Dirty::default(),
            eor_sent: HashSet::new(),
            rtc_ready: false,
            rtc_wait_until: None,
            stale: HashSet::new(),
            stale_until: None,
            llgr_params: Vec::new(),
            llgr_until: Vec::new(),
            gr_since: None,
            stale_families: Vec::new(),
            llgr_expired: Vec::new(),
            stale_view: Mutex::new(None),
            stats: PeerStats::default(),
        }
    }

    /// The state to display: the most advanced connection's, else the base.
    pub fn state(&self) -> State {
        self.conns
            .iter()
            .map(|c| c.state)
            .filter(|s| *s != State::Idle)
            .max()
            .unwrap_or(self.base)
    }

    /// The established connection, if any.
    pub fn session(&self) -> Option<&Conn> {
        self.conns.iter().find(|c| c.state == State::Established)
    }

    /// Negotiated parameters of the established session.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.session().and_then(|c| c.neg.as_ref())
    }

    /// Whether the peer is in our AS.
    pub fn is_ibgp(&self, local_as: u32) -> bool {
        self.cfg.remote_as == local_as
    }

    /// The OPEN policy for this peer.
    pub fn policy(&self, sc: &SpeakerConfig) -> OpenPolicy {
        OpenPolicy {
            local_as: sc.asn,
            router_id: sc.router_id,
            remote_as: self.cfg.remote_as,
            hold_time: self.cfg.hold_time.unwrap_or(sc.hold_time),
            families: self.cfg.families.clone(),
            gr_restart_time: sc.gr_restart_time,
            gr_families: sc.gr_families,
            llgr_time: sc.llgr_time,
            gr_restarted: self.stats.flaps == 0,
        }
    }

    /// The peer's BGP identifier, once known.
    pub fn remote_id(&self) -> Option<Ipv4Addr> {
        self.conns
            .iter()
            .find_map(|c| c.neg.as_ref().map(|n| n.remote_id))
    }

    /// Run the connection-less state machine; returns whether to start an
    /// outgoing connection.
    pub fn step(&mut self, now: Instant, ev: PeerEvent, retry: Duration) -> bool {
        let passive = self.cfg.passive;
        match (self.base, ev) {
            // Admin down: stay Idle whatever happens.
            (_, PeerEvent::Start) if self.cfg.admin_down => {
                self.base = State::Idle;
                false
            }
            // Idle: ManualStart_with_PassiveTcpEstablishment -> Active.
            (State::Idle, PeerEvent::Start) if passive => {
                self.base = State::Active;
                false
            }
            // Idle: ManualStart -> Connect, start ConnectRetry, connect out.
            (State::Idle, PeerEvent::Start) => {
                self.base = State::Connect;
                self.retry_at = Some(now + retry);
                true
            }
            // Connect: the attempt failed -> Active, retry later.
            (State::Connect, PeerEvent::ConnectFailed) => {
                self.base = State::Active;
                self.retry_at = Some(now + retry);
                false
            }
            // Connect / Active: ConnectRetry expired -> try again (unless passive).
            (State::Connect | State::Active, PeerEvent::RetryExpired) if !passive => {
                self.base = State::Connect;
                self.retry_at = Some(now + retry);
                true
            }
            // Passive peers just keep waiting.
            (State::Connect | State::Active, PeerEvent::RetryExpired) => {
                self.retry_at = None;
                false
            }
            // Any: ManualStop -> Idle, no timers.
            (_, PeerEvent::Stop) => {
                self.base = State::Idle;
                self.retry_at = None;
                false
            }
            // Every connection went away: wait in Active, retry later.
            (_, PeerEvent::AllClosed) => {
                self.base = State::Active;
                self.retry_at = (!passive).then(|| now + retry);
                false
            }
            // Everything else changes nothing.
            (_, _) => false,
        }
    }

    /// Whether the connection `id` belongs to this peer.
    pub fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    /// The RT-membership routes the peer advertised that are in the VPN
    /// route distribution graph (not pruned, see [`Peer::rtc_pruned`]).
    pub fn rtc_routes(&self) -> impl Iterator<Item = &RtcRoute> {
        self.rtc_in
            .iter()
            .filter(|r| self.rtc_pruned.is_empty() || !self.rtc_pruned.contains(r))
    }

    /// RFC 4684 - Section 4: whether the peer's membership routes ask for
    /// a route carrying any of `rts`. A zero-length membership route is the
    /// default: it asks for every route.
    pub fn wants(&self, rts: &[RouteTarget]) -> bool {
        self.rtc_routes().any(|r| {
            r.prefix_len == 0
                || rts.iter().any(|rt| {
                    let bits = usize::from(r.prefix_len.saturating_sub(32));
                    prefix_match(&r.target, &rt.to_bytes(), bits)
                })
        })
    }

    /// Record a NOTIFICATION sent or received, e.g. `sent Update/10
    /// (Invalid Network Field)` or `received Cease/6 (Other Configuration
    /// Change)`, with its data in hex when it has some.
    pub fn note_error(&mut self, n: &Notification, sent: bool) {
        let mut text = format!(
            "{} {:?}/{}",
            if sent { "sent" } else { "received" },
            n.code,
            n.subcode,
        );
        if let Some(name) = n.subcode_name() {
            text.push_str(&format!(" ({name})"));
        }
        if !n.data.is_empty() {
            let hex: String = n.data.iter().take(32).map(|b| format!("{b:02x}")).collect();
            text.push_str(&format!(", data {hex}"));
        }
        self.stats.last_error = Some(text);
    }
}

fn prefix_match(a: &[u8; 8], b: &[u8; 8], bits: usize) -> bool {
    let full = bits / 8;
    if a[..full] != b[..full] {
        return false;
    }
    let rem = bits % 8;
    rem == 0 || {
        let mask = 0xffu8 << (8 - rem);
        a[full] & mask == b[full] & mask
    }
}
