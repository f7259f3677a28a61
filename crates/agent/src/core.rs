//! The agent model (sans-IO): one input enum in, forwarder `Op`s and XMPP bytes out.
//!
//! ```text
//!  Input::PortAdd/PortDelete ─┐            ┌─> Output::Op(forwarder table op)
//!  Input::Connected/Bytes/... ┼─> Agent ───┼─> Output::Xmpp(channel, bytes)
//!  Input::Tick(now)           ┘   (config graph, ports, VRFs, routes, flows)
//! ```
//! Port lifecycle (seed 000 steps 5–7): on add, subscribe `virtual-machine:<vm>` on the
//! config channel; once the VMI and its network are in the config graph, program vif (VRF,
//! policy on), Encap nexthop, MPLS labels (from 16), /32 route, bridge entry, VNI; subscribe
//! the routing instance; publish inet and EVPN routes. Routes pushed by the control node
//! become tunnel nexthops (ECMP composite when several) and FIB / bridge entries.
//! Headless: when every channel is down nothing is removed; on reconnect everything is
//! re-sent (subscriptions, routes, End-of-RIB).
//!
//! Polling contract: after any `handle`, drain `poll_output`; call `handle(Input::Tick)` at
//! `poll_timeout`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use filament_dataplane::{
    FlowAction, FlowKey, FlowSpec, LabelPayload, MacAddr, Nexthop, NexthopKind, NhId, Op, Vif,
    VifId, VifKind, VrfId, FIRST_UNICAST_LABEL, GATEWAY_MAC,
};
use filament_ifmap::IfmapGraph;
use filament_wire_xmpp::{
    route_iqs, CollectionOp, EndOfRib, EvpnKey, RouteNode, Stanza, SubscribeAction, SubscribeIq,
};

pub use crate::port::PortReq;
use crate::routes::{evpn_entry, inet_entry, Export};
use crate::xmpp::{ChanEvent, ChanState, Channel};

mod affected;
mod routes_in;

pub use affected::{FlowDeps, PolicyChange};

/// Static settings of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCfg {
    /// agent name (XMPP JID, virtual-router name)
    pub name: String,
    /// fabric (vhost) address: next hop of exported routes, tunnel source
    pub fabric_ip: Ipv4Addr,
    /// the fabric interface's vif
    pub fabric_vif: VifId,
    /// the fabric MTU (DHCP MTU = this minus the encapsulation overhead)
    pub fabric_mtu: u16,
    /// number of control-node channels (1 or 2)
    pub channels: usize,
}

/// Inputs (every I/O task only sends these in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// a port was added by the port API; `vif` is the attached host-side interface
    PortAdd(PortReq, VifId),
    /// a port was deleted
    PortDelete(String),
    /// TCP connection to control node `n` is up
    Connected(usize),
    /// TCP connection to control node `n` closed
    Disconnected(usize),
    /// bytes from control node `n`
    Bytes(usize, Vec<u8>),
    /// timers
    Tick,
}

/// Outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// a forwarder table operation
    Op(Op),
    /// bytes to control node `n`
    Xmpp(usize, Vec<u8>),
    /// close the connection to control node `n`
    Close(usize),
}

/// What a programmed port holds in the forwarder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Programmed {
    /// VRF name
    pub vrf: String,
    /// VRF index
    pub vrf_id: u32,
    /// its address
    pub ip: Ipv4Addr,
    /// its MAC
    pub mac: String,
    /// Encap nexthop
    pub nh: u32,
    /// L3 label
    pub label: u32,
    /// L2 label
    pub l2_label: u32,
    /// VNI
    pub vni: Option<u32>,
    /// network
    pub vn: String,
    /// security-group ids
    pub sgs: Vec<u32>,
}

/// A port known to the agent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Port {
    /// the request
    pub req: PortReq,
    /// its vif
    pub vif: u32,
    /// `None` while waiting for the VMI config
    pub programmed: Option<Programmed>,
}

/// A route learnt from a control node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Learnt {
    /// nexthop (tunnel or ECMP composite)
    pub nh: u32,
    /// member tunnel nexthops (ECMP), or the one
    pub members: Vec<u32>,
    /// VN of the route
    pub vn: Option<String>,
    /// security-group ids of the route
    pub sgs: Vec<u32>,
    /// learnt before the control nodes went away and not pushed again since (flushed at the
    /// next End-of-RIB from a control node)
    pub stale: bool,
}

/// One VRF.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Vrf {
    /// index
    pub id: u32,
    /// learnt inet routes by prefix text (`10.1.1.3/32`)
    pub routes: BTreeMap<String, Learnt>,
    /// learnt EVPN MACs by IP (for the ARP proxy)
    pub macs: BTreeMap<Ipv4Addr, ([u8; 6], Learnt)>,
}

/// A pushed route item: (VRF, AFI, SAFI, item id).
type PushedKey = (String, u16, u16, String);

/// The agent core.
pub struct Agent {
    cfg: AgentCfg,
    /// config graph from the control node(s)
    pub graph: IfmapGraph,
    /// ports by VMI uuid
    pub ports: BTreeMap<String, Port>,
    /// VRFs by name
    pub vrfs: BTreeMap<String, Vrf>,
    chans: Vec<Channel>,
    now: u64,
    seq: u64,
    next_nh: u32,
    next_label: u32,
    free_nh: Vec<u32>,
    out: Vec<Output>,
    /// config items that failed to decode (dropped, counted)
    pub config_errors: u64,
    /// parsed ACLs for flow decisions (emptied on config changes)
    pub(crate) policy: std::cell::RefCell<crate::query::PolicyCache>,
    /// VMI uuid -> its IFMap node name
    vmi_names: BTreeMap<String, String>,
    /// route items the control node pushed, by (VRF, AFI, SAFI, item id)
    pushed: BTreeMap<PushedKey, Box<filament_wire_xmpp::Entry>>,
    /// the same, per channel (each control node's copy)
    pushed_by: BTreeMap<PushedKey, BTreeMap<usize, Box<filament_wire_xmpp::Entry>>>,
    /// the encapsulation priority the tunnels and published routes were made with
    encaps: Vec<crate::model::Encap>,
    /// what the ports' desired states depend on (which ports a config message affects)
    deps: affected::Deps,
    /// what config messages changed for flow decisions, until the shell takes it
    policy_change: PolicyChange,
}

impl Agent {
    /// A new agent; no channel connected yet.
    pub fn new(cfg: AgentCfg) -> Self {
        let chans = (0..cfg.channels.clamp(1, 2))
            .map(|_| Channel::new(&cfg.name))
            .collect();
        Agent {
            cfg,
            graph: IfmapGraph::new(),
            ports: BTreeMap::new(),
            vrfs: BTreeMap::new(),
            chans,
            now: 0,
            seq: 0,
            next_nh: 1,
            next_label: FIRST_UNICAST_LABEL,
            free_nh: Vec::new(),
            out: Vec::new(),
            config_errors: 0,
            policy: std::cell::RefCell::default(),
            vmi_names: BTreeMap::new(),
            pushed: BTreeMap::new(),
            pushed_by: BTreeMap::new(),
            encaps: Vec::new(),
            deps: affected::Deps::default(),
            policy_change: PolicyChange::default(),
        }
    }

    /// Settings.
    pub fn cfg(&self) -> &AgentCfg {
        &self.cfg
    }

    /// State of each channel.
    pub fn channel_states(&self) -> Vec<ChanState> {
        self.chans.iter().map(Channel::state).collect()
    }

    /// Per-channel counters.
    pub fn channel_stats(&self) -> Vec<crate::xmpp::ChanStats> {
        self.chans.iter().map(|c| c.stats.clone()).collect()
    }

    /// Whether no control node is reachable (forwarding state kept as is).
    pub fn headless(&self) -> bool {
        !self
            .chans
            .iter()
            .any(|c| c.state() == ChanState::Established)
    }

    /// Process one input at time `now` (ms).
    pub fn handle(&mut self, now: u64, input: Input) {
        self.now = now;
        match input {
            Input::PortAdd(req, vif) => self.port_add(req, vif),
            Input::PortDelete(id) => self.port_delete(&id),
            Input::Connected(n) => {
                if let Some(c) = self.chans.get_mut(n) {
                    c.handle_connected(now);
                }
            }
            Input::Disconnected(n) => {
                if let Some(c) = self.chans.get_mut(n) {
                    c.handle_disconnected();
                }
                self.forget_channel(n);
            }
            Input::Bytes(n, data) => {
                let evs = match self.chans.get_mut(n) {
                    Some(c) => c.handle_bytes(now, &data),
                    None => Vec::new(),
                };
                for ev in evs {
                    self.chan_event(n, ev);
                }
            }
            Input::Tick => {
                for n in 0..self.chans.len() {
                    if let Some(ev) = self.chans[n].handle_timeout(now) {
                        self.chan_event(n, ev);
                    }
                }
            }
        }
        self.flush_chans();
    }

    /// Earliest time `Input::Tick` is due.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.chans.iter().filter_map(Channel::poll_timeout).min()
    }

    /// Outputs produced so far, in order.
    pub fn poll_output(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn flush_chans(&mut self) {
        for (n, c) in self.chans.iter_mut().enumerate() {
            for b in c.poll_transmit() {
                self.out.push(Output::Xmpp(n, b));
            }
            if c.state() == ChanState::Idle {
                // nothing to do: the shell reconnects
            }
        }
    }

    fn op(&mut self, op: Op) {
        self.out.push(Output::Op(op));
    }

    fn alloc_nh(&mut self) -> u32 {
        self.free_nh.pop().unwrap_or_else(|| {
            self.next_nh += 1;
            self.next_nh - 1
        })
    }

    fn vrf_id(&mut self, name: &str) -> u32 {
        let next = u32::try_from(self.vrfs.len()).unwrap_or(u32::MAX - 1) + 1;
        self.vrfs
            .entry(name.to_string())
            .or_insert_with(|| Vrf {
                id: next,
                ..Vrf::default()
            })
            .id
    }

    fn send_all(&mut self, s: &Stanza) {
        for c in &mut self.chans {
            c.send(self.now, s);
        }
    }

    fn send_one(&mut self, n: usize, s: &Stanza) {
        if let Some(c) = self.chans.get_mut(n) {
            c.send(self.now, s);
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    // ===== channels =====

    fn chan_event(&mut self, n: usize, ev: ChanEvent) {
        match ev {
            // a control node is (back): config subscriptions, VRF subscriptions, routes, EoR
            ChanEvent::Up => {
                // back from headless: what we learnt is stale until pushed again (tf-facts
                // §2.6 headless mode: kept, marked stale, flushed after the resync)
                if self
                    .chans
                    .iter()
                    .filter(|c| c.state() == ChanState::Established)
                    .count()
                    == 1
                {
                    for v in self.vrfs.values_mut() {
                        v.routes.values_mut().for_each(|l| l.stale = true);
                        v.macs.values_mut().for_each(|(_, l)| l.stale = true);
                    }
                }
                self.resync(n)
            }
            // the control node has sent everything: flush what it did not push again
            ChanEvent::Stanza(Stanza::EndOfRib(_)) => self.flush_stale(),
            ChanEvent::Stanza(Stanza::Config(iq)) => {
                *self.policy.get_mut() = crate::query::PolicyCache::default();
                match self.graph.apply(&iq) {
                    Ok(touched) => {
                        self.reconcile_affected(&touched);
                        self.encaps_changed();
                    }
                    Err(_) => {
                        // applied in part: the next message reconciles every port
                        self.deps.invalidate();
                        self.policy_change.all = true;
                        self.config_errors += 1;
                    }
                }
            }
            ChanEvent::Stanza(Stanza::RouteUpdate(u)) => self.routes_in(n, &u),
            ChanEvent::Stanza(_) => {}
            // headless: nothing is removed; the shell reconnects
            ChanEvent::Down(_) => {
                self.forget_channel(n);
                self.out.push(Output::Close(n));
            }
        }
    }

    /// global-vrouter-config's encapsulation priority changed: tunnel nexthops re-made with
    /// the new preferred encapsulation both ends support, and our routes published again
    /// with the new list (tf-facts §5.3).
    fn encaps_changed(&mut self) {
        let now = crate::model::global(&self.graph).encaps;
        if now == self.encaps {
            return;
        }
        let first = self.encaps.is_empty() && self.pushed.is_empty();
        self.encaps = now;
        if first {
            return;
        }
        self.reapply_pushed();
        let exports: Vec<Export> = self
            .ports
            .values()
            .filter_map(|p| self.export_of(p))
            .collect();
        for x in exports {
            for st in self.route_stanzas(&x, CollectionOp::Associate) {
                self.send_all(&st);
            }
        }
    }

    fn resync(&mut self, n: usize) {
        let name = self.cfg.name.clone();
        let vr = format!("virtual-router:default-global-system-config:{name}");
        let s = self.next_seq();
        self.send_one(
            n,
            &Stanza::Subscribe(SubscribeIq::config(
                &name,
                s,
                SubscribeAction::Subscribe,
                &vr,
            )),
        );
        let vms: Vec<String> = self.ports.values().map(|p| p.req.vm.clone()).collect();
        for vm in vms {
            let s = self.next_seq();
            let node = format!("virtual-machine:{vm}");
            self.send_one(
                n,
                &Stanza::Subscribe(SubscribeIq::config(
                    &name,
                    s,
                    SubscribeAction::Subscribe,
                    &node,
                )),
            );
        }
        let vrfs: Vec<(String, u32)> = self.vrfs.iter().map(|(k, v)| (k.clone(), v.id)).collect();
        for (vrf, id) in vrfs {
            let s = self.next_seq();
            self.send_one(
                n,
                &Stanza::Subscribe(SubscribeIq::routing(
                    &name,
                    s,
                    SubscribeAction::Subscribe,
                    &vrf,
                    id,
                )),
            );
        }
        let exports: Vec<Export> = self
            .ports
            .values()
            .filter_map(|p| self.export_of(p))
            .collect();
        for x in exports {
            for st in self.route_stanzas(&x, CollectionOp::Associate) {
                self.send_one(n, &st);
            }
        }
        self.send_one(n, &Stanza::EndOfRib(EndOfRib::from_agent(&name)));
    }

    // ===== ports =====

    fn port_add(&mut self, req: PortReq, vif: VifId) {
        let name = self.cfg.name.clone();
        if !self.ports.contains_key(&req.id) {
            let s = self.next_seq();
            let node = format!("virtual-machine:{}", req.vm);
            self.send_all(&Stanza::Subscribe(SubscribeIq::config(
                &name,
                s,
                SubscribeAction::Subscribe,
                &node,
            )));
        }
        self.ports.insert(
            req.id.clone(),
            Port {
                req: req.clone(),
                vif: vif.0,
                programmed: None,
            },
        );
        self.reconcile_port(&req.id);
    }

    fn port_delete(&mut self, id: &str) {
        let Some(p) = self.ports.remove(id) else {
            return;
        };
        self.deps.set_port(id, None);
        self.deps.unsettled.remove(id);
        let old = self.vmi_names.remove(id);
        self.deps.set_vmi_port(id, old.as_ref(), None);
        if let Some(pr) = &p.programmed {
            self.unprogram(&p, pr);
        }
        if !self.ports.values().any(|o| o.req.vm == p.req.vm) {
            let (name, s) = (self.cfg.name.clone(), self.next_seq());
            let node = format!("virtual-machine:{}", p.req.vm);
            self.send_all(&Stanza::Subscribe(SubscribeIq::config(
                &name,
                s,
                SubscribeAction::Unsubscribe,
                &node,
            )));
        }
    }

    fn reconcile_ports(&mut self) {
        let ids: Vec<String> = self.ports.keys().cloned().collect();
        for id in ids {
            self.reconcile_port(&id);
        }
    }

    /// What the port should be, from its request and the config graph (`None`: config not
    /// there yet).
    fn desired(
        &mut self,
        p: &Port,
    ) -> Option<(String, crate::model::VnCfg, Ipv4Addr, String, Vec<u32>)> {
        // the VMI's node name is remembered: no scan of every VMI per config message
        let cached = self
            .vmi_names
            .get(&p.req.id)
            .and_then(|n| crate::model::vmi_named(&self.graph, &p.req.id, n));
        let vmi = match cached {
            Some(v) => v,
            None => {
                let v = match self.deps.vmi_name(&p.req.id) {
                    Some(name) => crate::model::vmi_named(&self.graph, &p.req.id, name?)?,
                    None => crate::model::vmi(&self.graph, &p.req.id)?,
                };
                let old = self.vmi_names.insert(p.req.id.clone(), v.name.clone());
                self.deps
                    .set_vmi_port(&p.req.id, old.as_ref(), Some(&v.name));
                v
            }
        };
        let vn_name = vmi.vn.clone()?;
        self.deps
            .set_port(&p.req.id, Some((vn_name.clone(), vmi.sgs.clone())));
        let vn = crate::model::vn(&self.graph, &vn_name)?;
        let ip = vmi.ips.first().copied().or(p.req.ip)?;
        let mac = vmi.mac.clone().unwrap_or_else(|| p.req.mac.to_string());
        let sgs = vmi
            .sgs
            .iter()
            .filter_map(|n| crate::model::sg(&self.graph, n)?.id)
            .collect();
        Some((vn_name, vn, ip, mac, sgs))
    }

    fn reconcile_port(&mut self, id: &str) {
        self.reconcile_port_inner(id);
        self.mark_settled(id);
    }

    fn reconcile_port_inner(&mut self, id: &str) {
        let Some(p) = self.ports.get(id).cloned() else {
            return;
        };
        let Some((vn_name, vn, ip, mac_s, sgs)) = self.desired(&p) else {
            return;
        };
        let g = crate::model::global(&self.graph);
        let vni = vn.vni(&g);
        if let Some(pr) = &p.programmed {
            if pr.vrf == vn.vrf && pr.ip == ip && pr.mac == mac_s && pr.vni == vni {
                // only the security groups changed: same forwarding state, routes re-published
                // with the new security-group list
                if pr.sgs != sgs {
                    if let Some(pr) = self.ports.get_mut(id).and_then(|p| p.programmed.as_mut()) {
                        pr.sgs = sgs;
                    }
                    if let Some(x) = self.ports.get(id).and_then(|p| self.export_of(p)) {
                        for st in self.route_stanzas(&x, CollectionOp::Associate) {
                            self.send_all(&st);
                        }
                    }
                }
                return;
            }
            self.unprogram(&p, pr);
        }
        let Ok(mac) = mac_s.parse::<MacAddr>() else {
            return;
        };
        let new_vrf = !self.vrfs.contains_key(&vn.vrf);
        let vrf_id = self.vrf_id(&vn.vrf);
        let nh = self.alloc_nh();
        let (label, l2_label) = (self.next_label, self.next_label + 1);
        self.next_label += 2;
        let (vrf, vif) = (VrfId(vrf_id), VifId(p.vif));
        self.op(Op::AddVif(Vif {
            id: vif,
            kind: VifKind::Workload,
            name: p.req.system_name.clone(),
            mac: GATEWAY_MAC,
            vrf: Some(vrf),
            policy: true,
            mtu: p.req.mtu.unwrap_or(1500),
            ip: Some(IpAddr::V4(ip)),
        }));
        self.op(Op::AddNexthop(Nexthop {
            id: NhId(nh),
            kind: NexthopKind::Encap {
                vif,
                dst_mac: mac,
                src_mac: GATEWAY_MAC,
            },
        }));
        self.op(Op::AddLabel {
            label,
            nh: NhId(nh),
            payload: LabelPayload::Ip,
        });
        self.op(Op::AddLabel {
            label: l2_label,
            nh: NhId(nh),
            payload: LabelPayload::Ethernet,
        });
        self.op(Op::AddRoute {
            vrf,
            prefix: host(ip),
            nh: NhId(nh),
        });
        self.op(Op::AddBridge {
            vrf,
            mac,
            nh: NhId(nh),
        });
        if let Some(v) = vni {
            self.op(Op::AddVni { vni: v, vrf });
        }
        let pr = Programmed {
            vrf: vn.vrf.clone(),
            vrf_id,
            ip,
            mac: mac_s,
            nh,
            label,
            l2_label,
            vni,
            vn: vn_name,
            sgs,
        };
        if let Some(port) = self.ports.get_mut(id) {
            port.programmed = Some(pr);
        }
        let name = self.cfg.name.clone();
        if new_vrf {
            let s = self.next_seq();
            self.send_all(&Stanza::Subscribe(SubscribeIq::routing(
                &name,
                s,
                SubscribeAction::Subscribe,
                &vn.vrf,
                vrf_id,
            )));
        }
        if let Some(x) = self.ports.get(id).and_then(|p| self.export_of(p)) {
            for st in self.route_stanzas(&x, CollectionOp::Associate) {
                self.send_all(&st);
            }
        }
    }

    fn unprogram(&mut self, p: &Port, pr: &Programmed) {
        if let Some(x) = self.export_of(p) {
            for st in self.route_stanzas(&x, CollectionOp::Dissociate) {
                self.send_all(&st);
            }
        }
        let vrf = VrfId(pr.vrf_id);
        self.op(Op::DelRoute {
            vrf,
            prefix: host(pr.ip),
        });
        if let Ok(mac) = pr.mac.parse::<MacAddr>() {
            self.op(Op::DelBridge { vrf, mac });
        }
        self.op(Op::DelLabel { label: pr.label });
        self.op(Op::DelLabel { label: pr.l2_label });
        self.op(Op::DelNexthop { nh: NhId(pr.nh) });
        self.free_nh.push(pr.nh);
        if let Some(port) = self.ports.get_mut(&p.req.id) {
            port.programmed = None;
        }
    }

    fn export_of(&self, p: &Port) -> Option<Export> {
        let pr = p.programmed.as_ref()?;
        Some(Export {
            vrf: pr.vrf.clone(),
            vn: pr.vn.clone(),
            ip: pr.ip,
            mac: pr.mac.parse().ok()?,
            fabric_ip: self.cfg.fabric_ip,
            label: pr.label,
            l2_label: pr.l2_label,
            vni: pr.vni,
            encaps: crate::model::global(&self.graph).encaps,
            sgs: pr.sgs.clone(),
        })
    }

    /// The two-iq publish/collection pairs for inet and EVPN (tf-facts §2.3).
    fn route_stanzas(&mut self, x: &Export, op: CollectionOp) -> Vec<Stanza> {
        let name = self.cfg.name.clone();
        let inet = RouteNode::Inet {
            vrf: x.vrf.clone(),
            prefix: x.ip,
            plen: 32,
            primary_instance: None,
        };
        let evpn = RouteNode::Evpn(EvpnKey {
            ethernet_tag: None,
            mac: filament_wire_xmpp::MacAddr(x.mac.0),
            ip: IpAddr::V4(x.ip),
            plen: 32,
            group_source: None,
        });
        let mut out = Vec::new();
        for (node, mut entry) in [(inet, inet_entry(x)), (evpn, evpn_entry(x))] {
            if op == CollectionOp::Dissociate {
                entry.next_hops.clear();
            }
            let s = self.next_seq();
            let (p, c) = route_iqs(&name, s, &x.vrf, node, entry, op);
            out.push(Stanza::Publish(p));
            out.push(Stanza::Collection(c));
        }
        out
    }

    /// A flow-miss verdict (see `crate::decide`) as the forwarder op.
    pub fn flow_op(key: FlowKey, allow: bool) -> Op {
        Op::AddFlow(FlowSpec {
            key,
            action: if allow {
                FlowAction::Forward
            } else {
                FlowAction::Drop
            },
            mirror: None,
            reverse_action: None,
        })
    }
}

fn host(ip: Ipv4Addr) -> ipnet::IpNet {
    ipnet::IpNet::V4(ipnet::Ipv4Net::from(ip))
}
