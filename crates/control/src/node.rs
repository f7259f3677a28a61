//! The control node core: one input enum, outputs as values, no I/O (DESIGN layers 2).
//!
//! ```text
//!  Input::Config ──> ConfigGraph ──(on the next non-config input)──> instances → Rib targets,
//!                                                                    subsets → config messages
//!  Input::Bytes ──> Session ──stanzas──> subscribe / publish+collection / EoR ──> Rib
//!  Rib::take_dirty ──> items/retracts for every agent subscribed to the instance
//!  Input::Tick ──> hold timers, keepalives, End-of-RIB to agents, graceful-restart timers
//! ```
//! An agent's session that closes with XMPP graceful restart on (global-system-config
//! `graceful_restart_parameters`, TF's helper mode) leaves its paths stale instead of
//! withdrawing them: see `node/gr.rs`.
//! Config events only mark the graph dirty; derived work runs on the next other input (the
//! shell sends a `Tick` after each batch of feed lines), so replaying a large feed costs one
//! recompute, not one per object.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use filament_config::StoredObj;
use filament_wire_xmpp::stream::RESOURCE_CONFIG;
use filament_wire_xmpp::{
    CollectionOp, ConfigIq, Element, EndOfRib, Entry, RouteNode, Stanza, SubscribeAction,
    SubscribeIq,
};
use serde::{Deserialize, Serialize};

use crate::config::Changes;
use crate::config::{ConfigGraph, InstanceConfig};
use crate::convert::{attrs_from_entry, node_key};
use crate::rib::{Dirty, Family, InstanceTargets, PeerId, Rib};
use crate::session::{Chunk, Session, SessionEvent, SessionState};
use crate::subset::Tracker;

mod gr;
mod hold;
mod push;

pub use gr::GrParams;

/// A connection id chosen by the shell.
pub type ConnId = u64;

/// Everything that happens to the control node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Input {
    /// A config change from the feed (`None` = deleted).
    Config {
        /// Object uuid.
        uuid: String,
        /// The stored object, or `None` when deleted (boxed: it is large).
        object: Option<Box<StoredObj>>,
    },
    /// A TCP connection was accepted on the XMPP port.
    Accepted {
        /// Connection.
        conn: ConnId,
        /// Remote address.
        remote: String,
    },
    /// Bytes from a connection.
    Bytes {
        /// Connection.
        conn: ConnId,
        /// Data.
        data: Vec<u8>,
    },
    /// The connection ended (EOF or error).
    Disconnected {
        /// Connection.
        conn: ConnId,
    },
    /// The config feed has caught up with the store at this revision.
    ConfigSynced {
        /// Store revision.
        revision: u64,
    },
    /// Time passed.
    Tick,
    /// The TLS handshake the shell ran after [`Output::StartTls`] ended: `error` is `None`
    /// on success, else why it failed.
    TlsDone {
        /// Connection.
        conn: ConnId,
        /// Why the handshake failed (`None`: TLS is up).
        error: Option<String>,
    },
    /// The shell's view of a connection's unwritten output: `blocked` once past its
    /// high-water mark (route pushes are then deferred as keys), `false` once drained.
    Backlog {
        /// Connection.
        conn: ConnId,
        /// Past the high-water mark.
        blocked: bool,
    },
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write bytes: the chunks in order (route pushes are shared between connections).
    Send {
        /// Connection.
        conn: ConnId,
        /// Data, in order.
        data: Vec<Chunk>,
    },
    /// Close the connection (after writing what was sent).
    Close {
        /// Connection.
        conn: ConnId,
    },
    /// After writing what was sent (`<proceed/>`), run the server side of a TLS handshake
    /// on the connection and report it with [`Input::TlsDone`]; later bytes go through TLS.
    StartTls {
        /// Connection.
        conn: ConnId,
    },
}

/// Settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's name.
    pub name: String,
    /// XMPP hold time.
    pub hold: Duration,
    /// Quiet time after the last subscription before End-of-RIB is sent to an agent.
    pub eor_delay: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "control".into(),
            hold: crate::session::DEFAULT_HOLD,
            eor_delay: Duration::from_secs(1),
        }
    }
}

/// Counters of refused input.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// Sessions closed for malformed XMPP.
    pub malformed: u64,
    /// Route items refused (validation, as TF's ProcessItem: `convert.rs`).
    pub rejected_items: u64,
    /// [`Counters::rejected_items`] by reason ([`crate::convert::ItemError::reason`]).
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// Route items of what we do not carry, ignored with the session kept up: multicast
    /// (`1/241`), mvpn (`1/5`), labeled inet (`1/4`), EVPN multicast MACs and (S,G) routes
    /// (a TF agent's multicast routes, whose tree TF's control node builds) and other EVPN
    /// nodes that are not a `mac,ip/plen` key.  (EVPN broadcast routes are replication
    /// legs, `node/push.rs`.)
    pub unsupported_items: u64,
    /// Publishes into an instance the agent had not subscribed to.
    pub unsubscribed_publish: u64,
    /// Collection iqs that did not match the preceding publish.
    pub unmatched_collection: u64,
    /// Objects the IFMap encoder refused.
    pub config_refused: u64,
    /// Times an agent's unwritten output passed the high-water mark (pushes deferred).
    pub backlogged: u64,
    /// Agent closes handled gracefully (paths kept stale).
    pub gr_closes: u64,
    /// Paths marked stale at graceful closes.
    pub gr_staled: u64,
    /// Stale paths re-published by their agent (fresh again).
    pub gr_refreshed: u64,
    /// Stale paths swept (End-of-RIB, EoR timer, restart timer, unsubscribe).
    pub gr_swept: u64,
    /// Paths deleted at a graceful close (EVPN: no GR for it, as in TF).
    pub gr_deleted: u64,
    /// Stale paths made LLGR-stale after the restart time (`long_lived_restart_time`).
    pub gr_llgr_staled: u64,
}

impl Counters {
    /// Count an agent's route item refused for `e`.
    pub(crate) fn reject(&mut self, e: &crate::convert::ItemError) {
        self.rejected_items += 1;
        *self.rejected_by_reason.entry(e.reason()).or_default() += 1;
    }
}

/// One agent connection.
#[derive(Debug)]
pub(crate) struct Agent {
    pub(crate) session: Session,
    pub(crate) remote: String,
    pub(crate) name: Option<String>,
    /// Subscribed instance → instance id.
    pub(crate) subs: BTreeMap<String, u32>,
    config_vr: Option<String>,
    config_vms: BTreeSet<String>,
    /// The agent's config subset and what it was sent.
    sent: Tracker,
    pending: Option<(RouteNode, Entry)>,
    pub(crate) eor_sent: bool,
    pub(crate) eor_received: bool,
    last_activity: Duration,
    pub(crate) since: Duration,
    /// Paths this agent contributed: (instance, family, key) → RD.
    pub(crate) published: BTreeMap<(String, Family, String), Option<String>>,
    /// `<message from=.. to="<agent>/bgp-peer">`, built once (route pushes).
    msg_head: Option<Chunk>,
    /// Output past the shell's high-water mark: route pushes wait in `deferred`.
    pub(crate) blocked: bool,
    deferred: push::Deferred,
}

/// Per-peer-name history for `neighbors`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PeerHistory {
    /// Times the session went down.
    pub flaps: u64,
    /// When (node time, seconds) it last went down.
    pub last_flap: Option<u64>,
    /// Last close reason.
    pub last_reason: Option<String>,
}

/// The control node.
#[derive(Debug)]
pub struct ControlNode {
    pub(crate) cfg: NodeConfig,
    pub(crate) graph: ConfigGraph,
    pub(crate) rib: Rib,
    pub(crate) agents: BTreeMap<ConnId, Agent>,
    pub(crate) instances: BTreeMap<String, InstanceConfig>,
    config_dirty: bool,
    pub(crate) counters: Counters,
    pub(crate) history: BTreeMap<String, PeerHistory>,
    pub(crate) now: Duration,
    out: Vec<Output>,
    pub(crate) config_events: u64,
    /// BGP peers as the BGP link last reported them (for `neighbors`).
    pub(crate) bgp_neighbors: Vec<serde_json::Value>,
    /// Paths kept stale for restarting BGP peers, by peer address (`node/gr.rs`).
    pub(crate) bgp_stale: gr::BgpStale,
    /// Revision the config feed caught up with (`None` while initializing).
    pub(crate) synced: Option<u64>,
    /// Changed keys of the global tables (VPN, rtarget) for a BGP speaker, once enabled.
    bgp_changes: Option<Dirty>,
    /// The next config recompute walks every agent's subset from scratch (the feed resynced).
    config_full: bool,
    /// Agents in graceful restart, by name (`node/gr.rs`).
    gr: BTreeMap<String, gr::Restarting>,
    /// EVPN broadcast legs published by agents: instance → agent name → leg (`push.rs`).
    bum: BTreeMap<String, BTreeMap<String, push::BumLeg>>,
    /// BGP peers' type-3 legs: instance → broadcast key → leg (`push.rs`).
    bgp_bum: BTreeMap<String, BTreeMap<String, push::BumLeg>>,
    /// New XMPP sessions must start TLS (TF `xmpp_auth_enable`; the shell holds the keys).
    xmpp_tls: bool,
}

/// How an agent's config subset is brought up to date.
enum ConfigSync<'a> {
    /// From scratch, diffed against what was sent (level-triggered).
    Full,
    /// Only what these graph changes can affect.
    Changes(&'a Changes),
    /// The agent (un)subscribed a virtual machine.
    Vm(&'a str, bool),
}

impl ControlNode {
    /// A node with no config.
    pub fn new(cfg: NodeConfig) -> Self {
        ControlNode {
            cfg,
            graph: ConfigGraph::new(),
            rib: Rib::new(),
            agents: BTreeMap::new(),
            instances: BTreeMap::new(),
            config_dirty: false,
            counters: Counters::default(),
            history: BTreeMap::new(),
            now: Duration::ZERO,
            out: Vec::new(),
            config_events: 0,
            synced: None,
            bgp_changes: None,
            bgp_neighbors: Vec::new(),
            bgp_stale: gr::BgpStale::default(),
            config_full: false,
            gr: BTreeMap::new(),
            bum: BTreeMap::new(),
            bgp_bum: BTreeMap::new(),
            xmpp_tls: false,
        }
    }

    /// Require STARTTLS on XMPP sessions accepted from now on (TF `xmpp_auth_enable`): the
    /// shell must then answer [`Output::StartTls`] with a handshake.
    pub fn set_xmpp_tls(&mut self, required: bool) {
        self.xmpp_tls = required;
    }

    /// The config graph.
    pub fn graph(&self) -> &ConfigGraph {
        &self.graph
    }

    /// The RIB (read).
    pub fn rib(&self) -> &Rib {
        &self.rib
    }

    /// The RIB, for a BGP speaker adding or withdrawing VPN paths ([`Rib::add_vpn`]).  Call
    /// [`ControlNode::step`] with [`Input::Tick`] afterwards so agents get the changes.
    pub fn rib_mut(&mut self) -> &mut Rib {
        &mut self.rib
    }

    /// Settings.
    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Routing instances with their targets, as last computed from config.
    pub fn instances(&self) -> &BTreeMap<String, InstanceConfig> {
        &self.instances
    }

    /// Start collecting changed keys of the global tables (`bgp.l3vpn.0`, ...).
    pub fn enable_bgp_changes(&mut self) {
        self.bgp_changes.get_or_insert_with(Dirty::new);
    }

    /// Global-table routes changed since the last call, by table (empty unless
    /// [`ControlNode::enable_bgp_changes`] was called). Changes of BGP-learned paths are
    /// not listed: they never change what is advertised (the best non-BGP path).
    pub fn take_bgp_changes(&mut self) -> Dirty {
        self.bgp_changes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether changed global-table keys wait for the BGP link.
    pub fn has_bgp_changes(&self) -> bool {
        self.bgp_changes.as_ref().is_some_and(|c| !c.is_empty())
    }

    /// The BGP link's peer list (JSON rows, e.g. `bgp_peers::peer_summaries`), shown by
    /// `GET /neighbors` beside the XMPP peers.
    pub fn set_bgp_neighbors(&mut self, rows: serde_json::Value) {
        self.bgp_neighbors = match rows {
            serde_json::Value::Array(a) => a,
            serde_json::Value::Null => Vec::new(),
            other => vec![other],
        };
    }

    /// Handle one input at `now` (time since an arbitrary start); returns what to do.
    /// Same as [`ControlNode::handle`] followed by [`ControlNode::flush`].
    pub fn step(&mut self, now: Duration, input: Input) -> Vec<Output> {
        let config_only = matches!(input, Input::Config { .. });
        self.handle(now, input);
        if config_only {
            return Vec::new();
        }
        self.flush()
    }

    /// Handle one input without computing its consequences for other agents yet: a shell
    /// may handle a burst of inputs and [`ControlNode::flush`] once (one push per changed
    /// route instead of one per input).
    pub fn handle(&mut self, now: Duration, input: Input) {
        self.now = self.now.max(now);
        match input {
            Input::Config { uuid, object } => {
                self.graph.apply(&uuid, object.map(|o| *o));
                self.config_dirty = true;
                self.config_events += 1;
            }
            Input::Accepted { conn, remote } => {
                let a = Agent {
                    session: Session::new(self.now, self.xmpp_hold()).with_tls(self.xmpp_tls),
                    remote,
                    name: None,
                    subs: BTreeMap::new(),
                    config_vr: None,
                    config_vms: BTreeSet::new(),
                    sent: Tracker::new(),
                    pending: None,
                    eor_sent: false,
                    eor_received: false,
                    last_activity: self.now,
                    since: self.now,
                    published: BTreeMap::new(),
                    msg_head: None,
                    blocked: false,
                    deferred: push::Deferred::new(),
                };
                self.agents.insert(conn, a);
            }
            Input::Bytes { conn, data } => {
                let evs = match self.agents.get_mut(&conn) {
                    Some(a) => a.session.on_bytes(self.now, &data),
                    None => Vec::new(),
                };
                for ev in evs {
                    self.session_event(conn, ev);
                }
            }
            Input::Disconnected { conn } => {
                if let Some(a) = self.agents.get_mut(&conn) {
                    if !a.session.is_closed() {
                        let ev = a.session.close("connection lost");
                        self.session_event(conn, ev);
                    }
                }
                self.agents.remove(&conn);
            }
            Input::ConfigSynced { revision } => {
                self.synced = Some(revision);
                // the feed (re)caught up: heal every subset from scratch at the next recompute
                self.config_full = true;
                self.config_dirty = true;
            }
            Input::Tick => {
                let conns: Vec<ConnId> = self.agents.keys().copied().collect();
                let hold = self.xmpp_hold();
                for c in conns {
                    let ev = self.agents.get_mut(&c).and_then(|a| {
                        a.session.set_hold(hold);
                        a.session.on_tick(self.now)
                    });
                    if let Some(ev) = ev {
                        self.session_event(c, ev);
                    }
                }
                self.gr_tick();
                self.send_eors();
            }
            // the shell's TLS handshake after <proceed/> ended
            Input::TlsDone { conn, error } => {
                let now = self.now;
                let ev = self
                    .agents
                    .get_mut(&conn)
                    .and_then(|a| a.session.tls_done(now, error.map_or(Ok(()), Err)));
                if let Some(ev) = ev {
                    self.session_event(conn, ev);
                }
            }
            // the shell's write backlog for one agent crossed a water mark
            Input::Backlog { conn, blocked } => self.set_backlog(conn, blocked),
        }
    }

    /// Derived work of the inputs handled so far (config recompute, route pushes) and the
    /// bytes to write.
    pub fn flush(&mut self) -> Vec<Output> {
        if self.config_dirty {
            self.config_dirty = false;
            self.recompute_config();
        }
        self.push_routes();
        for (conn, a) in self.agents.iter_mut() {
            let data = a.session.take_output();
            if !data.is_empty() {
                self.out.push(Output::Send { conn: *conn, data });
            }
            if a.session.take_start_tls() {
                self.out.push(Output::StartTls { conn: *conn });
            }
            if a.session.is_closed() {
                self.out.push(Output::Close { conn: *conn });
            }
        }
        self.agents.retain(|_, a| !a.session.is_closed());
        std::mem::take(&mut self.out)
    }

    /// Instances → RIB targets, RT membership, every agent's config subset.
    fn recompute_config(&mut self) {
        let new = self.graph.instances();
        for (name, ic) in &new {
            self.rib.set_instance(
                name,
                Some(InstanceTargets {
                    import: ic.import.clone(),
                    export: ic.export.clone(),
                }),
            );
        }
        for name in self.instances.keys() {
            if !new.contains_key(name) {
                self.rib.set_instance(name, None);
            }
        }
        self.instances = new;
        self.update_rtarget();
        let changes = self.graph.take_changes();
        let full = std::mem::take(&mut self.config_full);
        let conns: Vec<ConnId> = self.agents.keys().copied().collect();
        for c in conns {
            if full {
                self.sync_config(c, ConfigSync::Full);
            } else {
                self.sync_config(c, ConfigSync::Changes(&changes));
            }
        }
    }

    /// Route-target membership for every instance some agent subscribed to.
    fn update_rtarget(&mut self) {
        let mut rts = BTreeSet::new();
        // stale subscriptions of restarting agents keep their membership (TF keeps them)
        let live = self.agents.values().flat_map(|a| a.subs.keys());
        let stale = self.gr.values().flat_map(|st| st.subs.keys());
        for ri in live.chain(stale) {
            if let Some(ic) = self.instances.get(ri) {
                rts.extend(ic.import.iter().cloned());
            }
        }
        let asn = self.graph.asn();
        self.rib.set_rtarget_membership(asn, &rts);
    }

    /// Send an agent what changed in its config subset: only the part `how` can affect,
    /// or everything from scratch for a new virtual-router subscription (subset::tracker).
    fn sync_config(&mut self, conn: ConnId, how: ConfigSync<'_>) {
        let Some(a) = self.agents.get_mut(&conn) else {
            return;
        };
        let (Some(name), Some(vr)) = (a.name.clone(), a.config_vr.clone()) else {
            return;
        };
        let g = &self.graph;
        let (msgs, refused) = match how {
            _ if a.sent.vrouter() != Some(vr.as_str()) => a.sent.full(g, &vr, &a.config_vms),
            ConfigSync::Full => a.sent.full(g, &vr, &a.config_vms),
            ConfigSync::Changes(ch) => a.sent.update(g, ch),
            ConfigSync::Vm(vm, sub) => a.sent.vm(g, vm, sub),
        };
        self.counters.config_refused += refused as u64;
        for ops in msgs {
            // references with attributes go out as TF's link-attr nodes (filament-ifmap
            // linkattr.rs): a TF agent reads a reference's attribute from there only
            let iq = ConfigIq::to_agent(&name, filament_ifmap::to_tf_wire(ops));
            a.session.send_xml(&iq.to_element().to_xml());
        }
    }

    fn session_event(&mut self, conn: ConnId, ev: SessionEvent) {
        match ev {
            SessionEvent::Opened { peer } => {
                // a second session of the same agent replaces the first (TF closes the old one)
                let dup: Vec<ConnId> = self
                    .agents
                    .iter()
                    .filter(|(c, a)| **c != conn && a.name.as_deref() == Some(peer.as_str()))
                    .map(|(c, _)| *c)
                    .collect();
                for d in dup {
                    if let Some(ev) = self
                        .agents
                        .get_mut(&d)
                        .map(|a| a.session.close("replaced by a new session"))
                    {
                        self.session_event(d, ev);
                    }
                }
                if let Some(a) = self.agents.get_mut(&conn) {
                    a.name = Some(peer.clone());
                    a.since = self.now;
                    a.last_activity = self.now;
                }
                // back during graceful restart: its EoR receive timer starts
                self.gr_step(&peer, gr::GrEvent::Reopened { conn });
            }
            SessionEvent::Stanza(e) => self.stanza(conn, &e),
            // flush emits Output::StartTls after the <proceed/> bytes
            SessionEvent::StartTls => {}
            SessionEvent::Closed { reason } => {
                let Some(a) = self.agents.get_mut(&conn) else {
                    return;
                };
                if a.name.is_none() {
                    // refused before its session came up (TLS): only the reason is kept,
                    // so `neighbors` can say why; it had no routes or subscriptions
                    if let Some(n) = a.session.peer() {
                        let h = self.history.entry(n.to_string()).or_default();
                        h.last_reason = Some(reason);
                        h.last_flap = Some(self.now.as_secs());
                    }
                    return;
                }
                let name = a.name.clone();
                let subs = std::mem::take(&mut a.subs);
                let published = std::mem::take(&mut a.published);
                if let Some(n) = name {
                    // helper mode keeps the paths stale; otherwise all of them go now
                    self.gr_step(&n, gr::GrEvent::Closed { subs, published });
                    let h = self.history.entry(n).or_default();
                    h.flaps += 1;
                    h.last_flap = Some(self.now.as_secs());
                    h.last_reason = Some(reason.clone());
                }
                if reason.starts_with("malformed") || reason.starts_with("stream error") {
                    self.counters.malformed += 1;
                }
                if let Some(n) = self.agents.get(&conn).and_then(|a| a.name.clone()) {
                    // EVPN paths go at any close, GR or not (as in TF): the legs too
                    self.bum_forget(&n, None);
                }
                self.update_rtarget();
            }
        }
    }

    fn close(&mut self, conn: ConnId, reason: String) {
        if let Some(ev) = self.agents.get_mut(&conn).map(|a| a.session.close(reason)) {
            self.session_event(conn, ev);
        }
    }

    fn stanza(&mut self, conn: ConnId, e: &Element) {
        let st = match Stanza::parse(e) {
            Ok(s) => s,
            Err(err) => return self.close(conn, format!("malformed XMPP stanza: {err}")),
        };
        let Some(a) = self.agents.get_mut(&conn) else {
            return;
        };
        a.last_activity = self.now;
        match st {
            Stanza::Subscribe(s) => self.subscribe(conn, s),
            Stanza::Publish(p) => match p.entry {
                // a publish without item is End-of-RIB (tf-facts §2.3)
                None => {
                    a.eor_received = true;
                    self.gr_eor(conn);
                }
                Some(entry) => a.pending = Some((p.node, *entry)),
            },
            Stanza::Collection(c) => {
                let pending = a.pending.take();
                let Some((node, entry)) = pending.filter(|(n, _)| *n == c.node) else {
                    // tf-facts §2.3: the associate node must equal the preceding publish
                    self.counters.unmatched_collection += 1;
                    return;
                };
                self.route(conn, &c.collection, &node, &entry, c.op);
            }
            Stanza::EndOfRib(_) => {
                a.eor_received = true;
                // End-of-RIB ends the agent's graceful restart: what is still stale goes
                self.gr_eor(conn);
            }
            _ => {}
        }
    }

    fn subscribe(&mut self, conn: ConnId, s: SubscribeIq) {
        let Some(a) = self.agents.get_mut(&conn) else {
            return;
        };
        let to_config = s
            .env
            .to
            .as_deref()
            .is_some_and(|t| t.ends_with(&format!("/{RESOURCE_CONFIG}")))
            || s.node.starts_with("virtual-router:")
            || s.node.starts_with("virtual-machine:");
        let sub = s.action == SubscribeAction::Subscribe;
        if to_config {
            if let Some(vr) = s.node.strip_prefix("virtual-router:") {
                let name = vr.rsplit(':').next().unwrap_or(vr).to_string();
                a.config_vr = sub.then_some(name);
                self.sync_config(conn, ConfigSync::Full);
            } else if let Some(vm) = s.node.strip_prefix("virtual-machine:") {
                if sub {
                    a.config_vms.insert(vm.to_string());
                } else {
                    a.config_vms.remove(vm);
                }
                self.sync_config(conn, ConfigSync::Vm(vm, sub));
            } else {
                self.sync_config(conn, ConfigSync::Full);
            }
            return;
        }
        let name = a.name.clone().unwrap_or_default();
        if sub {
            a.subs.insert(s.node.clone(), s.instance_id.unwrap_or(0));
            self.gr_subscribed(&name, &s.node);
            // full sync of the instance's tables to this agent
            self.send_instance(conn, &s.node);
        } else {
            self.gr_unsubscribed(&name, &s.node);
            let Some(a) = self.agents.get_mut(&conn) else {
                return;
            };
            a.subs.remove(&s.node);
            a.deferred.retain(|(ri, _, _)| *ri != s.node);
            let who = a.name.clone().unwrap_or_default();
            let mine: Vec<_> = a
                .published
                .iter()
                .filter(|((ri, _, _), _)| *ri == s.node)
                .map(|(k, rd)| (k.clone(), rd.clone()))
                .collect();
            let peer = PeerId::Xmpp(a.name.as_deref().unwrap_or_default().into());
            for ((ri, fam, key), rd) in mine {
                a.published.remove(&(ri.clone(), fam, key.clone()));
                self.rib.del_local(&ri, fam, &key, &peer, &rd);
            }
            self.bum_forget(&who, Some(&s.node));
        }
        self.update_rtarget();
    }

    fn route(
        &mut self,
        conn: ConnId,
        vrf: &str,
        node: &RouteNode,
        entry: &Entry,
        op: CollectionOp,
    ) {
        let Some(a) = self.agents.get_mut(&conn) else {
            return;
        };
        // tf-facts §2.2: publishing into a VRF the agent has not subscribed to closes the channel
        let Some(&instance_id) = a.subs.get(vrf) else {
            self.counters.unsubscribed_publish += 1;
            return self.close(conn, format!("publish into unsubscribed instance {vrf}"));
        };
        // a real agent publishes its EVPN broadcast route to every control node it talks
        // to: each such agent gets the others as its ingress-replication list, and BGP
        // peers get it as a type-3 route (push.rs)
        if push::is_broadcast(node, entry) {
            let name = a.name.clone().unwrap_or_default();
            self.bum_publish(conn, vrf, instance_id, entry, op);
            return self.bum_route(vrf, &name, entry, op);
        }
        // other BUM routes (multicast 1/241, EVPN multicast MACs): TF builds a replication
        // tree from them; we do not, and ignoring them must not cost the agent its session
        if is_bum(node) {
            self.counters.unsupported_items += 1;
            return;
        }
        let (fam, key) = match node_key(node) {
            Ok(k) => k,
            Err(_) => {
                self.counters.unsupported_items += 1;
                return;
            }
        };
        let peer = PeerId::Xmpp(a.name.as_deref().unwrap_or_default().into());
        match op {
            CollectionOp::Associate => match attrs_from_entry(vrf, fam, &key, entry) {
                Ok((mut attrs, label, rd_ip)) => {
                    // TF's ProcessItem (bgp_xmpp_channel.cc): `if (mobility.seqno)` use it with
                    // its sticky bit, `else if (sequence_number)` use that; a zero seqno is
                    // unset.  A real agent always writes <mobility seqno="0"> and puts the
                    // path's sequence in <sequence-number> (ControllerSendV4V6UnicastRouteCommon).
                    attrs.mobility = match (entry.mobility, entry.sequence_number) {
                        (Some(m), _) if m.seqno != 0 => Some((m.seqno, m.sticky)),
                        (_, Some(s)) if s != 0 => Some((s, false)),
                        _ => None,
                    };
                    attrs.origin_vn_id = attrs
                        .origin_vn
                        .as_deref()
                        .and_then(|vn| self.graph.lookup_name("virtual-network", vn))
                        .and_then(|v| v.props.get("virtual_network_network_id"))
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok());
                    let rd = Some(format!("{rd_ip}:{instance_id}"));
                    a.published
                        .insert((vrf.to_string(), fam, key.clone()), rd.clone());
                    // a stale path re-published is fresh; unchanged, nobody hears of it
                    let restarting = if self.gr.is_empty() {
                        None
                    } else {
                        a.name.clone()
                    };
                    let refreshed = restarting.is_some_and(|n| {
                        let path = (vrf.to_string(), fam, key.clone());
                        self.gr_refreshed(&n, &path, &peer, &rd, label, &attrs)
                    });
                    if !refreshed {
                        self.rib.add_local(vrf, fam, &key, peer, rd, label, attrs);
                    }
                }
                Err(e) => self.counters.reject(&e),
            },
            CollectionOp::Dissociate => {
                let path = (vrf.to_string(), fam, key.clone());
                if let Some(rd) = a.published.remove(&path) {
                    self.rib.del_local(vrf, fam, &key, &peer, &rd);
                } else {
                    // withdrawing a path not re-published yet removes the stale one
                    let name = a.name.clone().unwrap_or_default();
                    self.gr_withdrawn(&name, &path);
                }
            }
        }
    }

    fn send_eors(&mut self) {
        for a in self.agents.values_mut() {
            let Some(name) = a.name.clone() else { continue };
            if !a.eor_sent
                && matches!(a.session.state(), SessionState::Established { .. })
                && self.now.saturating_sub(a.last_activity) >= self.cfg.eor_delay
            {
                a.eor_sent = true;
                a.session.send_xml(&EndOfRib::from_control(&name).to_xml());
            }
        }
    }
}

/// Whether an EVPN publish node has a group MAC (multicast; broadcast ones are taken before
/// this as replication legs): the agent's `<mac>,0.0.0.0/32,<group>,<source>`
/// (`controller_peer.cc` `BuildEvpnMulticastMessage`), which TF's control node turns into
/// its replication tree (`bgp_multicast.cc`), not into a unicast MAC route for other agents.
fn is_bum(node: &RouteNode) -> bool {
    matches!(node, RouteNode::Evpn(k) if k.mac.0[0] & 1 == 1)
}
