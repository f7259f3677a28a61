//! The sans-IO speaker: every peer, the Loc-RIB and the glue between them.
//!
//! Polling contract (quinn-style): feed [`Input`]s with [`Core::handle`],
//! each with the current time; after every call drain [`Core::poll_output`]
//! (bytes to send, connections to open or close, events for the RIB owner)
//! and re-arm the timer with [`Core::poll_timeout`]; when that instant
//! passes, call `handle(now, Input::Tick)`. The core never reads a clock or
//! touches a socket, so tests drive it with a virtual clock.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use filament_wire_bgp::{CeaseSubcode, Message, Notification};

use crate::codec;

mod flush;
mod gr;
mod receive;
use crate::fsm::{Conn, ConnAction, ConnEvent, ConnId, State};
use crate::peer::{Peer, PeerEvent, PeerStats};
use crate::rib::{Cand, DestId, Rib, Source};
use crate::types::{Attrs, Family, LabelStack, Path, PeerConfig, RouteKey, SpeakerConfig};
pub use flush::FLUSH_CHUNK;
use receive::attr_name;

/// One input to the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// Configure (or reconfigure) a neighbour and start it.
    AddPeer(PeerConfig),
    /// Remove a neighbour (Cease / Peer De-configured).
    RemovePeer(IpAddr),
    /// A TCP connection is up (incoming or one we asked for).
    Connected {
        /// Shell-assigned id.
        conn: ConnId,
        /// The other end's address.
        remote: IpAddr,
        /// Our address on it.
        local: IpAddr,
        /// We initiated it.
        outgoing: bool,
    },
    /// Our connection attempt to `peer` failed.
    ConnectFailed {
        /// The peer's address.
        peer: IpAddr,
    },
    /// Bytes received on a connection.
    Data {
        /// Connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The connection was closed by the other end or failed.
    Closed {
        /// Connection.
        conn: ConnId,
    },
    /// The RIB owner originates (or replaces) a path.
    Advertise(Path),
    /// The RIB owner withdraws its path for a key.
    Withdraw(RouteKey),
    /// Timers: call when [`Core::poll_timeout`] has passed.
    Tick,
    /// The speaker's own settings changed (AS, identifier, cluster id,
    /// timers): the sessions they affect are reset (see [`Core::config`]).
    Reconfigure(SpeakerConfig),
}

/// Something for the shell to do, or to tell the RIB owner.
#[derive(Debug, Clone)]
pub enum Output {
    /// Open a TCP connection to the peer; answer with `Connected` or
    /// `ConnectFailed`.
    Connect {
        /// The peer's address (its key).
        peer: IpAddr,
        /// Where to connect.
        addr: SocketAddr,
        /// Local address to bind, if configured.
        local: Option<IpAddr>,
    },
    /// Write bytes on a connection.
    Send {
        /// Connection.
        conn: ConnId,
        /// Encoded messages.
        bytes: Vec<u8>,
    },
    /// Close a connection (after writing what was queued).
    Close {
        /// Connection.
        conn: ConnId,
    },
    /// An event for the RIB owner.
    Event(Event),
}

/// What the RIB owner hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer changed state.
    PeerState {
        /// The peer's address.
        peer: IpAddr,
        /// Its new state.
        state: State,
    },
    /// A peer advertised (or replaced) a path. (The core emits [`Event::LearnedMany`];
    /// this is for RIB owners' own events and older callers.)
    Learned {
        /// The peer's address.
        peer: IpAddr,
        /// The path as received.
        path: Path,
    },
    /// Paths a peer advertised that share one attribute set (one UPDATE), in order: the
    /// core emits one per UPDATE (per attribute set in it), and the shell folds runs of
    /// them into one. The attributes' reference count is touched once per UPDATE, not
    /// once per route, on either thread (a count per route bounced its cache line
    /// between the cores, 10% of a full-table ingest).
    LearnedMany {
        /// The peer's address.
        peer: IpAddr,
        /// The attributes every path carries.
        attrs: Arc<Attrs>,
        /// Each path's key and labels.
        routes: Vec<(RouteKey, LabelStack)>,
    },
    /// A peer withdrew its path for a key.
    Withdrawn {
        /// The peer's address.
        peer: IpAddr,
        /// The key.
        key: RouteKey,
    },
    /// A peer finished its initial update of a family (RFC 4724 End-of-RIB).
    EndOfRib {
        /// The peer's address.
        peer: IpAddr,
        /// The family.
        family: Family,
    },
}

/// A peer's summary for `filament neighbors`.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    /// Address.
    pub address: IpAddr,
    /// Display name.
    pub name: String,
    /// Remote AS.
    pub remote_as: u32,
    /// FSM state.
    pub state: State,
    /// Negotiated families (empty unless Established).
    pub families: Vec<Family>,
    /// Paths in the Adj-RIB-In.
    pub received: usize,
    /// Paths in the Adj-RIB-Out.
    pub sent: usize,
    /// Seconds since the session came up.
    pub uptime_secs: Option<u64>,
    /// Paths kept as stale while the peer restarts (RFC 4724 §4.2 helper).
    pub stale: usize,
    /// Their keys (empty unless the peer is restarting): the RIB owner marks
    /// these paths stale in its own tables. The same `Arc` while the set is
    /// unchanged, so a poller can skip re-reading it.
    pub stale_keys: Arc<Vec<RouteKey>>,
    /// `GR_TIMER` or `LLGR_TIMER` while the peer restarts (TF's names).
    pub gr_state: Option<&'static str>,
    /// Counters.
    pub stats: PeerStats,
}

/// The speaker core.
#[derive(Debug)]
pub struct Core {
    cfg: SpeakerConfig,
    peers: HashMap<IpAddr, Peer>,
    conn_peer: HashMap<ConnId, IpAddr>,
    reported: HashMap<IpAddr, State>,
    rib: Rib,
    out: VecDeque<Output>,
    /// Incoming connections refused (unknown or disabled peer).
    pub rejected_connections: u64,
}

impl Core {
    /// A speaker with no peers.
    pub fn new(cfg: SpeakerConfig) -> Core {
        Core {
            cfg,
            peers: HashMap::new(),
            conn_peer: HashMap::new(),
            reported: HashMap::new(),
            rib: Rib::default(),
            out: VecDeque::new(),
            rejected_connections: 0,
        }
    }

    /// The speaker's configuration.
    pub fn config(&self) -> &SpeakerConfig {
        &self.cfg
    }

    /// The Loc-RIB.
    pub fn rib(&self) -> &Rib {
        &self.rib
    }

    /// One peer.
    pub fn peer(&self, addr: &IpAddr) -> Option<&Peer> {
        self.peers.get(addr)
    }

    /// Next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call `handle(now, Input::Tick)` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .values()
            .flat_map(|p| {
                [p.retry_at, p.stale_until, p.rtc_wait_until]
                    .into_iter()
                    .chain(p.llgr_until.iter().map(|(_, t)| Some(*t)))
                    .chain(p.conns.iter().map(Conn::next_deadline))
            })
            .flatten()
            .min()
    }

    /// Summaries of every peer, sorted by address.
    pub fn peer_status(&self, now: Instant) -> Vec<PeerStatus> {
        let mut v: Vec<_> = self
            .peers
            .values()
            .map(|p| PeerStatus {
                address: p.cfg.address,
                name: p.cfg.name.clone(),
                remote_as: p.cfg.remote_as,
                state: p.state(),
                families: p
                    .negotiated()
                    .map(|n| n.families.clone())
                    .unwrap_or_default(),
                received: p.received,
                sent: p.adj_out.len(),
                uptime_secs: p
                    .session()
                    .and(p.stats.established_at)
                    .map(|t| now.saturating_duration_since(t).as_secs()),
                stale: p.stale.len(),
                stale_keys: gr::stale_keys(p),
                gr_state: gr::gr_state(p),
                stats: p.stats.clone(),
            })
            .collect();
        v.sort_by_key(|s| s.address);
        v
    }

    /// Process one input, then [`Core::flush`].
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.apply(now, input);
        self.flush();
    }

    /// Process one input without encoding UPDATEs yet: a batch of inputs
    /// followed by one [`Core::flush`] packs routes into fewer messages.
    /// Call `flush` before polling output.
    pub fn apply(&mut self, now: Instant, input: Input) {
        match input {
            Input::AddPeer(cfg) => self.add_peer(now, cfg),
            Input::RemovePeer(addr) => self.remove_peer(now, addr),
            Input::Connected {
                conn,
                remote,
                local,
                outgoing,
            } => self.connected(now, conn, remote, local, outgoing),
            Input::ConnectFailed { peer } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.step(now, PeerEvent::ConnectFailed, self.cfg.connect_retry);
                }
            }
            Input::Data { conn, bytes } => {
                if let Some(&addr) = self.conn_peer.get(&conn) {
                    if let Some(c) = self.peers.get_mut(&addr).and_then(|p| p.conn_mut(conn)) {
                        c.feed(&bytes);
                    }
                    while let Some(ev) = self
                        .peers
                        .get_mut(&addr)
                        .and_then(|p| p.conn_mut(conn))
                        .and_then(Conn::next_event)
                    {
                        if !self.conn_event(now, addr, conn, ev) {
                            break;
                        }
                    }
                }
            }
            Input::Closed { conn } => {
                if let Some(&addr) = self.conn_peer.get(&conn) {
                    self.conn_down(now, addr, conn, true);
                }
            }
            Input::Advertise(path) => {
                let key = path.key.clone();
                let cand = Cand {
                    src: Source::Local,
                    path,
                    ebgp: false,
                    peer_id: self.cfg.router_id,
                    from_client: false,
                };
                self.rib_set(&key, Source::Local, Some(cand));
            }
            Input::Withdraw(key) => self.rib_set(&key, Source::Local, None),
            Input::Tick => self.timers(now),
            Input::Reconfigure(cfg) => self.reconfigure(now, cfg),
        }
    }

    /// Messages of a connection that its reader already decoded (with
    /// [`Core::established_ctx`] and [`crate::fsm::decode_event`], off the core's
    /// thread), in order: the same as [`Input::Data`] with their bytes. Bytes of the
    /// connection given as `Input::Data` before must have been whole messages
    /// ([`crate::fsm::framed_len`]). Flush after, as after [`Core::apply`].
    pub fn apply_decoded(&mut self, now: Instant, conn: ConnId, events: Vec<ConnEvent>) {
        let Some(&addr) = self.conn_peer.get(&conn) else {
            return;
        };
        for ev in events {
            if !self.conn_event(now, addr, conn, ev) {
                break;
            }
        }
    }

    /// A connection's decoder settings once its session is Established (they do not
    /// change after that): its reader may then decode the messages itself.
    pub fn established_ctx(&mut self, conn: ConnId) -> Option<filament_wire_bgp::DecodeCtx> {
        let addr = *self.conn_peer.get(&conn)?;
        self.peers.get_mut(&addr)?.conn_mut(conn)?.established_ctx()
    }

    /// New speaker settings. As TF's `BgpServer::ConfigUpdater` does, a new
    /// AS or identifier resets every session (both are in the OPEN) and a new
    /// cluster id resets the internal ones (reflection and CLUSTER_LIST change
    /// for them only); other settings apply from the next session on. The
    /// peers come back by themselves (connect or wait, as configured), and the
    /// routes they sent are withdrawn meanwhile.
    fn reconfigure(&mut self, now: Instant, cfg: SpeakerConfig) {
        let reset_all = cfg.asn != self.cfg.asn || cfg.router_id != self.cfg.router_id;
        let reset_ibgp = cfg.cluster_id != self.cfg.cluster_id;
        let old_asn = self.cfg.asn;
        self.cfg = cfg;
        let mut addrs: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| reset_all || (reset_ibgp && p.is_ibgp(old_asn)))
            .map(|(a, _)| *a)
            .collect();
        addrs.sort();
        for addr in addrs {
            let Some(pc) = self.peers.get(&addr).map(|p| p.cfg.clone()) else {
                continue;
            };
            // Cease / Other Configuration Change (RFC 4486, see add_peer).
            let stats = self.drop_peer(now, addr, CeaseSubcode::OtherConfigChange);
            self.start_peer(now, pc, stats);
        }
    }

    fn add_peer(&mut self, now: Instant, cfg: PeerConfig) {
        let mut stats = None;
        if let Some(p) = self.peers.get(&cfg.address) {
            if p.cfg == cfg {
                return;
            }
            // RFC 4486 - Section 3: "If a BGP speaker decides to reset the
            // session ... due to a configuration change other than the ones
            // described above, then the speaker MAY send a NOTIFICATION
            // message with the Error Code Cease and the Error Subcode
            // "Other Configuration Change"."
            stats = self.drop_peer(now, cfg.address, CeaseSubcode::OtherConfigChange);
        }
        self.start_peer(now, cfg, stats);
    }

    /// Configure a (new or reset) neighbour and start it; `stats` are the
    /// counters of the session it replaces (same neighbour, same counters:
    /// a reset counts as a flap).
    fn start_peer(&mut self, now: Instant, cfg: PeerConfig, stats: Option<PeerStats>) {
        let addr = cfg.address;
        let mut p = Peer::new(cfg);
        if let Some(st) = stats {
            p.stats = PeerStats {
                established_at: None,
                ..st
            };
        }
        let connect = p.step(now, PeerEvent::Start, self.cfg.connect_retry);
        self.peers.insert(addr, p);
        if connect {
            self.push_connect(addr);
        }
    }

    fn remove_peer(&mut self, now: Instant, addr: IpAddr) {
        let _ = self.drop_peer(now, addr, CeaseSubcode::PeerDeconfigured);
    }

    /// Close a peer's connections with a Cease `why`, withdraw what it sent
    /// and forget it; returns its counters.
    fn drop_peer(&mut self, now: Instant, addr: IpAddr, why: CeaseSubcode) -> Option<PeerStats> {
        let ids: Vec<ConnId> = self
            .peers
            .get(&addr)
            .map(|p| p.conns.iter().map(|c| c.id).collect())
            .unwrap_or_default();
        for id in ids {
            self.send_notification(addr, id, Notification::cease(why));
            self.out.push_back(Output::Close { conn: id });
            self.conn_down(now, addr, id, false);
        }
        let keys = self.rib.keys_from(Source::Peer(addr));
        for k in keys {
            self.peer_withdraw(addr, &k);
        }
        self.reported.remove(&addr);
        self.peers.remove(&addr).map(|p| p.stats)
    }

    fn push_connect(&mut self, addr: IpAddr) {
        if let Some(p) = self.peers.get(&addr) {
            self.out.push_back(Output::Connect {
                peer: addr,
                addr: SocketAddr::new(addr, p.cfg.port),
                local: p.cfg.local_addr,
            });
        }
    }

    fn connected(
        &mut self,
        now: Instant,
        id: ConnId,
        remote: IpAddr,
        local: IpAddr,
        outgoing: bool,
    ) {
        let sc = &self.cfg;
        let Some(p) = self.peers.get_mut(&remote).filter(|p| !p.cfg.admin_down) else {
            self.rejected_connections += 1;
            self.out.push_back(Output::Close { conn: id });
            return;
        };
        let conn = Conn::new(id, outgoing, local, now);
        let open = Message::Open(p.policy(sc).open());
        let mut bytes = Vec::new();
        if open.encode(&conn.ctx, &mut bytes).is_err() {
            self.out.push_back(Output::Close { conn: id });
            return;
        }
        p.conns.push(conn);
        self.conn_peer.insert(id, remote);
        self.out.push_back(Output::Send { conn: id, bytes });
    }

    /// Run one event on a connection; false once the connection is gone.
    fn conn_event(&mut self, now: Instant, addr: IpAddr, id: ConnId, ev: ConnEvent) -> bool {
        let Some(p) = self.peers.get_mut(&addr) else {
            return false;
        };
        if let ConnEvent::Bad(_) = ev {
            p.stats.malformed += 1;
        }
        let pol = p.policy(&self.cfg);
        let Some(c) = p.conn_mut(id) else {
            return false;
        };
        let actions = c.step(now, ev, &pol);
        let mut alive = true;
        for a in actions {
            alive &= self.conn_action(now, addr, id, a);
        }
        alive
    }

    fn send_notification(&mut self, addr: IpAddr, id: ConnId, n: Notification) {
        if let Some(p) = self.peers.get_mut(&addr) {
            p.note_error(&n, true);
            let ctx = p.conn_mut(id).map(|c| c.ctx).unwrap_or_default();
            let mut bytes = Vec::new();
            if Message::Notification(n).encode(&ctx, &mut bytes).is_ok() {
                self.out.push_back(Output::Send { conn: id, bytes });
            }
        }
    }

    /// Apply one connection action; false when the connection closed.
    fn conn_action(&mut self, now: Instant, addr: IpAddr, id: ConnId, a: ConnAction) -> bool {
        match a {
            ConnAction::Send(m) => {
                let ctx = self
                    .peers
                    .get_mut(&addr)
                    .and_then(|p| p.conn_mut(id))
                    .map(|c| c.ctx)
                    .unwrap_or_default();
                let mut bytes = Vec::new();
                if m.encode(&ctx, &mut bytes).is_ok() {
                    self.out.push_back(Output::Send { conn: id, bytes });
                }
                true
            }
            ConnAction::Close { send, received } => {
                if let (Some(n), Some(p)) = (&received, self.peers.get_mut(&addr)) {
                    p.note_error(n, false);
                }
                let graceful = send.is_none() && received.is_none();
                if let Some(n) = send {
                    self.send_notification(addr, id, n);
                }
                self.out.push_back(Output::Close { conn: id });
                self.conn_down(now, addr, id, graceful);
                false
            }
            ConnAction::OpenReceived => self.resolve_collision(now, addr, id),
            ConnAction::Established => {
                self.established(now, addr);
                true
            }
            ConnAction::Update(u) => {
                if let Some(p) = self.peers.get_mut(&addr) {
                    p.stats.updates_in += 1;
                }
                self.receive_update(now, addr, &u);
                true
            }
            ConnAction::TreatAsWithdraw(w) => {
                // RFC 7606 - Section 2: "In this approach, the malformed UPDATE
                // message MUST be handled as though all contained routes had
                // been withdrawn just as if they had been listed in the
                // WITHDRAWN ROUTES field (or in the MP_UNREACH_NLRI
                // attribute if appropriate) of the UPDATE message".
                // Section 8: "the error SHOULD be logged", so the operator
                // sees it in the neighbour's last reason.
                let keys = codec::all_keys(&w.update);
                if let Some(p) = self.peers.get_mut(&addr) {
                    p.stats.treat_as_withdraw += 1;
                    p.stats.last_error = Some(format!(
                        "treat-as-withdraw: attribute {} ({}): {} (Update/{}), {} routes withdrawn",
                        w.attr_type,
                        attr_name(w.attr_type),
                        filament_wire_bgp::update_error_name(w.subcode).unwrap_or("error"),
                        u8::from(w.subcode),
                        keys.len(),
                    ));
                }
                for k in keys {
                    self.peer_withdraw(addr, &k);
                }
                true
            }
            ConnAction::RouteRefresh(r) => {
                let fam = Family::from_afi_safi(r.afi, r.safi);
                let ids = fam.map(|f| self.rib.ids(Some(f))).unwrap_or_default();
                if let Some(p) = self.peers.get_mut(&addr) {
                    for id in ids {
                        p.adj_out.remove(id);
                        p.dirty.mark(id, true);
                    }
                }
                true
            }
        }
    }

    /// RFC 4271 - Section 6.8: connection collision detection, run when an
    /// OPEN is accepted on `id`. Returns whether `id` survives.
    fn resolve_collision(&mut self, now: Instant, addr: IpAddr, id: ConnId) -> bool {
        let router_id = self.cfg.router_id;
        let Some(p) = self.peers.get(&addr) else {
            return false;
        };
        let Some(this) = p.conns.iter().find(|c| c.id == id) else {
            return false;
        };
        let Some(remote_id) = this.neg.as_ref().map(|n| n.remote_id) else {
            return true;
        };
        let this_out = this.outgoing;
        let other = p
            .conns
            .iter()
            .find(|c| c.id != id && c.state != State::Idle);
        let loser = other.map(|other| {
            // "collision with existing BGP connection that is in the
            // Established state causes closing of the newly created
            // connection."
            if other.state == State::Established {
                return id;
            }
            // "If the value of the local BGP Identifier is less than the
            // remote one, the local system closes the BGP connection that
            // already exists ... and accepts the BGP connection initiated by
            // the remote system." -- i.e. the connection initiated by the
            // speaker with the higher identifier survives.
            let keep_outgoing = router_id > remote_id;
            if this_out == keep_outgoing {
                other.id
            } else {
                id
            }
        });
        let Some(l) = loser else {
            return true;
        };
        self.send_notification(
            addr,
            l,
            Notification::cease(CeaseSubcode::CollisionResolution),
        );
        self.out.push_back(Output::Close { conn: l });
        self.conn_down(now, addr, l, false);
        l != id
    }

    fn established(&mut self, now: Instant, addr: IpAddr) {
        let wait = self.cfg.rtc_eor_wait;
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let fams = p
            .negotiated()
            .map(|n| n.families.clone())
            .unwrap_or_default();
        p.stats.established_at = Some(now);
        let sweep = gr::unpreserved_stale(&self.cfg, p);
        p.adj_out.clear();
        p.eor_sent.clear();
        p.rtc_ready = !fams.contains(&Family::RouteTarget);
        p.rtc_wait_until = (!p.rtc_ready).then(|| now + wait);
        for f in fams {
            for id in self.rib.ids(Some(f)) {
                p.dirty.mark(id, true);
            }
        }
        for k in sweep {
            self.peer_withdraw(addr, &k);
        }
    }

    /// A connection is gone; `graceful` when no NOTIFICATION was exchanged
    /// (RFC 4724 applies only then).
    fn conn_down(&mut self, now: Instant, addr: IpAddr, id: ConnId, graceful: bool) {
        self.conn_peer.remove(&id);
        let retry = self.cfg.connect_retry;
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let Some(pos) = p.conns.iter().position(|c| c.id == id) else {
            return;
        };
        let c = p.conns.remove(pos);
        let adj_in = if c.was_established {
            self.rib.keys_from(Source::Peer(addr))
        } else {
            Vec::new()
        };
        let mut drop_keys = Vec::new();
        let mut straight_to_llgr = false;
        if c.was_established {
            p.stats.flaps += 1;
            if graceful {
                // No NOTIFICATION either way: the TCP connection was lost
                // (the peer's process died, or it closed without one).
                p.stats.last_error = Some("connection closed without NOTIFICATION".into());
            }
            p.adj_out.clear();
            p.dirty.clear();
            p.eor_sent.clear();
            // Graceful restart helper (RFC 4724 §4.2, RFC 9494): see gr.rs.
            let (drop, llgr_now) =
                gr::retain_on_close(&self.cfg, p, c.neg.as_ref(), graceful, adj_in, now);
            drop_keys = drop;
            straight_to_llgr = llgr_now;
        }
        if p.conns.is_empty() {
            p.step(now, PeerEvent::AllClosed, retry);
        }
        for k in drop_keys {
            self.peer_withdraw(addr, &k);
        }
        if straight_to_llgr {
            self.enter_llgr(now, addr);
        }
    }

    fn rib_set(&mut self, key: &RouteKey, src: Source, cand: Option<Cand>) {
        if let Some(id) = self.rib.set(key, src, cand) {
            self.best_changed(id);
        }
    }

    /// Destination `id`'s best path changed: mark it for every peer that needs to hear.
    pub(crate) fn best_changed(&mut self, id: crate::rib::DestId) {
        let best_src = self.rib.best_parts(id).map(|(s, _, _)| s.src);
        for (addr, p) in self.peers.iter_mut() {
            // A peer is never sent its own path back: nothing to do for it
            // unless it holds an older advertisement to withdraw.
            if best_src == Some(Source::Peer(*addr)) && !p.adj_out.contains(id) {
                continue;
            }
            if p.session().is_some() {
                p.dirty.mark(id, true);
            }
        }
    }

    /// Mark every VPN destination for re-evaluation towards one peer (its
    /// RT-constraint filter changed).
    pub(crate) fn recheck_vpn(&mut self, addr: IpAddr) {
        let ids: Vec<DestId> = [Family::InetVpn, Family::Inet6Vpn, Family::Evpn]
            .into_iter()
            .flat_map(|f| self.rib.ids(Some(f)))
            .collect();
        if let Some(p) = self.peers.get_mut(&addr) {
            for id in ids {
                p.dirty.mark(id, false);
            }
        }
    }

    /// Whether some peer still has destinations to be sent: call
    /// [`Core::flush`] again (each flush does at most [`FLUSH_CHUNK`] per
    /// peer, so a full table goes out in steps the shell can pace).
    pub fn pending(&self) -> bool {
        self.peers
            .values()
            .any(|p| p.session().is_some() && !p.dirty.is_empty())
    }

    fn timers(&mut self, now: Instant) {
        let addrs: Vec<IpAddr> = self.peers.keys().copied().collect();
        for addr in addrs {
            let retry = self.cfg.connect_retry;
            let Some(p) = self.peers.get_mut(&addr) else {
                continue;
            };
            if p.retry_at.is_some_and(|t| t <= now) {
                p.retry_at = None;
                // A connection in progress makes the retry moot.
                if p.conns.is_empty() && p.step(now, PeerEvent::RetryExpired, retry) {
                    self.push_connect(addr);
                }
            }
            let Some(p) = self.peers.get_mut(&addr) else {
                continue;
            };
            if p.rtc_wait_until.is_some_and(|t| t <= now) {
                p.rtc_wait_until = None;
                p.rtc_ready = true;
                self.recheck_vpn(addr);
            }
            self.gr_timers(now, addr);
            let due: Vec<(ConnId, Vec<ConnEvent>)> = self
                .peers
                .get(&addr)
                .map(|p| p.conns.iter().map(|c| (c.id, c.due(now))).collect())
                .unwrap_or_default();
            for (id, evs) in due {
                for ev in evs {
                    if !self.conn_event(now, addr, id, ev) {
                        break;
                    }
                }
            }
        }
    }
}
