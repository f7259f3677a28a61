//! In-process lab: a config database (the real config core + schema transformer), the
//! control node core, and test agents speaking TF's XMPP through the wire crate.  No
//! sockets, a virtual clock.

#![allow(dead_code, clippy::unwrap_used, clippy::too_many_arguments)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use filament_config::{ConfigDb, Ctx, StoredObj};
use filament_control::rib::{Family, PathAttrs, PeerId};
use filament_control::{ConnId, ControlNode, Input, NodeConfig, Output};
use filament_ifmap::IfmapGraph;
use filament_schema::index;
use filament_wire_xmpp::{
    route_iqs, CollectionOp, Element, Entry, NextHop, NhLabel, Nlri, PushedItem, RouteNode, Stanza,
    StreamEvent, StreamHeader, StreamParser, SubscribeAction, SubscribeIq, TunnelEncap,
};
use serde_json::{json, Value};

/// Config through the real config core and transformer.
pub struct ConfigEnv {
    pub db: ConfigDb,
    n: u64,
}

impl ConfigEnv {
    pub fn new() -> Self {
        let mut e = ConfigEnv {
            db: ConfigDb::new(),
            n: 0,
        };
        e.run(|db, ctx| db.bootstrap(ctx));
        e
    }
    fn run(
        &mut self,
        f: impl FnOnce(&mut ConfigDb, &mut Ctx<'_>) -> filament_config::Result<filament_config::Txn>,
    ) {
        let mut n = self.n;
        let mut gen = || {
            n += 1;
            format!("00000000-0000-4000-8000-{n:012x}")
        };
        let mut ctx = Ctx::new("2026-01-01T00:00:00.000000", &mut gen);
        let txn = f(&mut self.db, &mut ctx).unwrap();
        drop(ctx);
        self.n = n;
        self.db.apply(txn);
    }
    pub fn create(&mut self, ty: &str, body: Value) -> String {
        let d = index().resource(ty).unwrap();
        let mut out = String::new();
        self.run(|db, ctx| {
            let (t, u) = db.create(d, &body, ctx)?;
            out = u;
            Ok(t)
        });
        out
    }
    pub fn ref_update(&mut self, body: Value) {
        self.run(|db, ctx| db.ref_update(&body, ctx).map(|(t, _)| t));
    }
    /// Run the schema transformer to a fixed point.
    pub fn derive(&mut self) {
        for _ in 0..4 {
            let mut t = filament_transformer::Transformer::new(self.objects());
            let writes = t.reconcile();
            if writes.is_empty() {
                return;
            }
            self.run(|db, ctx| db.apply_derived(&writes, ctx, "http://test"));
        }
    }
    pub fn objects(&self) -> Vec<StoredObj> {
        self.db
            .objects_for_test()
            .map(|o| o.to_stored().unwrap())
            .collect()
    }
    pub fn project(&mut self, name: &str) -> String {
        self.create(
            "project",
            json!({"fq_name": ["default-domain", name], "parent_type": "domain"}),
        )
    }
    pub fn vn(&mut self, proj: &str, name: &str, prefix: &str) -> String {
        self.create("virtual-network", json!({"fq_name": ["default-domain", proj, name], "parent_type": "project",
            "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": prefix, "ip_prefix_len": 24}}]}}]}))
    }
    pub fn vrouter(&mut self, name: &str, ip: &str) -> String {
        self.create(
            "virtual-router",
            json!({"fq_name": ["default-global-system-config", name],
            "parent_type": "global-system-config", "virtual_router_ip_address": ip}),
        )
    }
    /// A VM on a vrouter with one port in a VN and an instance IP.
    pub fn workload(
        &mut self,
        vrouter: &str,
        proj: &str,
        vn: &str,
        vm_name: &str,
    ) -> (String, String) {
        let vm = self.create("virtual-machine", json!({"fq_name": [vm_name]}));
        let vmi = self.create(
            "virtual-machine-interface",
            json!({"fq_name": ["default-domain", proj, format!("{vm_name}-port")],
            "parent_type": "project", "virtual_network_refs": [{"uuid": vn, "to": []}],
            "virtual_machine_refs": [{"uuid": vm, "to": []}]}),
        );
        self.create("instance-ip", json!({"fq_name": [format!("{vm_name}-ip")], "virtual_network_refs": [{"uuid": vn, "to": []}],
            "virtual_machine_interface_refs": [{"uuid": vmi, "to": []}]}));
        let vr = self
            .db
            .uuid_of(
                index().resource("virtual-router").unwrap(),
                &[
                    "default-global-system-config".to_string(),
                    vrouter.to_string(),
                ],
            )
            .unwrap()
            .to_string();
        self.ref_update(
            json!({"type": "virtual-router", "uuid": vr, "ref-type": "virtual-machine",
            "ref-uuid": vm, "operation": "ADD", "attr": null}),
        );
        (vm, vmi)
    }
    pub fn policy_between(&mut self, proj: &str, a: &str, b: &str) {
        let fa = format!("default-domain:{proj}:{a}");
        let fb = format!("default-domain:{proj}:{b}");
        self.create("network-policy", json!({"fq_name": ["default-domain", proj, "pol"], "parent_type": "project",
            "network_policy_entries": {"policy_rule": [{"direction": "<>", "protocol": "any",
                "action_list": {"simple_action": "pass"},
                "src_addresses": [{"virtual_network": fa}], "dst_addresses": [{"virtual_network": fb}],
                "src_ports": [{"start_port": -1, "end_port": -1}], "dst_ports": [{"start_port": -1, "end_port": -1}]}]}}));
        for vn in [a, b] {
            let u = self
                .db
                .uuid_of(
                    index().resource("virtual-network").unwrap(),
                    &[
                        "default-domain".to_string(),
                        proj.to_string(),
                        vn.to_string(),
                    ],
                )
                .unwrap()
                .to_string();
            self.ref_update(json!({"type": "virtual-network", "uuid": u,
                "ref-type": "network-policy", "ref-fq-name": ["default-domain", proj, "pol"], "operation": "ADD",
                "attr": {"sequence": {"major": 0, "minor": 0}, "timer": null}}));
        }
    }
}

/// What a test agent has received.
#[derive(Default)]
pub struct TestAgent {
    pub name: String,
    parser: StreamParser,
    pub opened: bool,
    /// (vrf, item id) → entry.
    pub routes: BTreeMap<(String, String), Entry>,
    /// Every retract received, in order: (vrf, item id).
    pub retracts: Vec<(String, String)>,
    /// Bytes received.
    pub bytes: usize,
    pub config: IfmapGraph,
    pub config_messages: usize,
    pub eor: bool,
    pub closed: bool,
    /// The node asked the shell to start TLS (after `<proceed/>`).
    pub start_tls: bool,
    pub keepalives: usize,
    seq: u64,
}

impl TestAgent {
    fn feed(&mut self, data: &[u8]) {
        self.bytes += data.len();
        self.parser.feed(data).unwrap();
        while let Some(ev) = self.parser.next_event().unwrap() {
            match ev {
                StreamEvent::Open(_) => self.opened = true,
                StreamEvent::Keepalive => self.keepalives += 1,
                StreamEvent::Close => self.closed = true,
                StreamEvent::Stanza(e) => match Stanza::parse(&e).unwrap() {
                    Stanza::RouteUpdate(u) => {
                        for it in u.items {
                            match it {
                                PushedItem::Item { id, entry } => {
                                    self.routes.insert((u.node.vrf.clone(), id), *entry);
                                }
                                PushedItem::Retract { id } => {
                                    self.routes.remove(&(u.node.vrf.clone(), id.clone()));
                                    self.retracts.push((u.node.vrf.clone(), id));
                                }
                            }
                        }
                    }
                    Stanza::Config(c) => {
                        self.config_messages += 1;
                        self.config.apply(&c).unwrap();
                    }
                    Stanza::EndOfRib(_) => self.eor = true,
                    _ => {}
                },
            }
        }
    }
    pub fn route(&self, vrf: &str, id: &str) -> Option<&Entry> {
        self.routes.get(&(vrf.to_string(), id.to_string()))
    }
}

/// The control node core with agents attached by connection id.
pub struct Lab {
    pub node: ControlNode,
    pub now: Duration,
    pub agents: HashMap<ConnId, TestAgent>,
    fed: HashMap<String, StoredObj>,
    next: ConnId,
}

impl Lab {
    pub fn new() -> Self {
        let cfg = NodeConfig {
            name: "ctl1".into(),
            hold: Duration::from_secs(9),
            eor_delay: Duration::from_secs(1),
        };
        Lab {
            node: ControlNode::new(cfg),
            now: Duration::ZERO,
            agents: HashMap::new(),
            fed: HashMap::new(),
            next: 1,
        }
    }
    /// A lab with `env`'s config fed in (`sync`).
    pub fn synced(env: &ConfigEnv) -> Self {
        let mut lab = Lab::new();
        lab.sync(env);
        lab
    }
    fn dispatch(&mut self, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send { conn, data } => {
                    if let Some(a) = self.agents.get_mut(&conn) {
                        a.feed(&data.concat());
                    }
                }
                Output::Close { conn } => {
                    if let Some(a) = self.agents.get_mut(&conn) {
                        a.closed = true;
                    }
                }
                // TLS handshakes belong to the shell (tests/xmpp_tls.rs)
                Output::StartTls { conn } => {
                    if let Some(a) = self.agents.get_mut(&conn) {
                        a.start_tls = true;
                    }
                }
            }
        }
    }
    pub fn step(&mut self, i: Input) {
        let outs = self.node.step(self.now, i);
        self.dispatch(outs);
    }
    /// Feed the config changes since the last call, then a tick.
    pub fn sync(&mut self, env: &ConfigEnv) {
        let now: HashMap<String, StoredObj> = env
            .objects()
            .into_iter()
            .map(|o| (o.uuid.clone(), o))
            .collect();
        let gone: Vec<String> = self
            .fed
            .keys()
            .filter(|u| !now.contains_key(*u))
            .cloned()
            .collect();
        for u in gone {
            self.step(Input::Config {
                uuid: u,
                object: None,
            });
        }
        for (u, o) in &now {
            if self.fed.get(u) != Some(o) {
                self.step(Input::Config {
                    uuid: u.clone(),
                    object: Some(Box::new(o.clone())),
                });
            }
        }
        self.fed = now;
        self.step(Input::ConfigSynced { revision: 1 });
        self.step(Input::Tick);
    }
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.step(Input::Tick);
    }
    pub fn connect(&mut self, name: &str) -> ConnId {
        let c = self.next;
        self.next += 1;
        self.agents.insert(
            c,
            TestAgent {
                name: name.into(),
                ..TestAgent::default()
            },
        );
        self.step(Input::Accepted {
            conn: c,
            remote: "127.0.0.1".into(),
        });
        self.send(c, &StreamHeader::agent_to_control(name).to_xml());
        c
    }
    pub fn send(&mut self, c: ConnId, xml: &str) {
        self.step(Input::Bytes {
            conn: c,
            data: xml.as_bytes().to_vec(),
        });
    }
    pub fn agent(&self, c: ConnId) -> &TestAgent {
        &self.agents[&c]
    }
    fn seq(&mut self, c: ConnId) -> u64 {
        let a = self.agents.get_mut(&c).unwrap();
        a.seq += 1;
        a.seq
    }
    /// The first of `vrf`'s import route targets.
    pub fn import_target(&self, vrf: &str) -> String {
        self.node.instances()[vrf]
            .import
            .iter()
            .next()
            .unwrap()
            .clone()
    }
    /// A route from BGP peer `peer` (its IP, also the next hop): `prefix` in the IPv4 VPN
    /// table with RD `rd` and one route target, then a tick.
    pub fn add_bgp_vpn(&mut self, rd: &str, prefix: &str, peer: &str, route_target: String) {
        self.node.rib_mut().add_vpn(
            Family::Inet,
            rd,
            prefix,
            PeerId::Bgp(peer.into()),
            100,
            PathAttrs {
                next_hop: peer.into(),
                route_targets: [route_target].into(),
                ..PathAttrs::default()
            },
        );
        self.step(Input::Tick);
    }
    /// `connect` then `subscribe`.
    pub fn join(&mut self, name: &str, vrf: &str, instance_id: u32) -> ConnId {
        let c = self.connect(name);
        self.subscribe(c, vrf, instance_id);
        c
    }
    pub fn subscribe(&mut self, c: ConnId, vrf: &str, instance_id: u32) {
        let name = self.agents[&c].name.clone();
        let s = self.seq(c);
        self.send(
            c,
            &SubscribeIq::routing(&name, s, SubscribeAction::Subscribe, vrf, instance_id).to_xml(),
        );
    }
    pub fn unsubscribe(&mut self, c: ConnId, vrf: &str) {
        let name = self.agents[&c].name.clone();
        let s = self.seq(c);
        self.send(
            c,
            &SubscribeIq::routing(&name, s, SubscribeAction::Unsubscribe, vrf, 0).to_xml(),
        );
    }
    pub fn subscribe_config(&mut self, c: ConnId, node: &str) {
        let name = self.agents[&c].name.clone();
        let s = self.seq(c);
        self.send(
            c,
            &SubscribeIq::config(&name, s, SubscribeAction::Subscribe, node).to_xml(),
        );
    }
    /// Publish an inet route `ip/32` with a label from the agent at `nh`.
    pub fn publish(
        &mut self,
        c: ConnId,
        vrf: &str,
        vn: &str,
        ip: &str,
        nh: &str,
        label: u32,
        op: CollectionOp,
    ) {
        let name = self.agents[&c].name.clone();
        let s = self.seq(c);
        let node = RouteNode::parse(&format!("1/1/{vrf}/{ip}/32")).unwrap();
        let entry = inet_entry(ip, nh, label, vn);
        let (p, col) = route_iqs(&name, s, vrf, node, entry, op);
        self.send(c, &(p.to_element().to_xml() + &col.to_element().to_xml()));
    }

    /// [`Lab::publish`] of the usual route: `ip`/32 in VRF1 of VN1, next hop 192.168.0.1.
    pub fn announce(&mut self, c: ConnId, ip: &str, label: u32) {
        self.publish(
            c,
            VRF1,
            VN1,
            ip,
            "192.168.0.1",
            label,
            CollectionOp::Associate,
        );
    }

    /// Set global-system-config `graceful_restart_parameters` on the running node.
    pub fn set_gr(&mut self, env: &ConfigEnv, params: Value) {
        let mut gsc = env
            .objects()
            .into_iter()
            .find(|o| o.ty == "global-system-config")
            .unwrap();
        gsc.props
            .insert("graceful_restart_parameters".into(), params);
        self.step(Input::Config {
            uuid: gsc.uuid.clone(),
            object: Some(Box::new(gsc)),
        });
        self.step(Input::Tick);
    }

    /// `c` publishes into `vrf` an EVPN route (02:00:00:00:00:01, 10.1.1.3/32, VXLAN) and
    /// an inet6 one (fd00::3/128, MPLSoUDP) of `vn`, from 192.168.0.1 label 5001, as iq
    /// ids `id` and `id + 1`.
    pub fn publish_evpn_and_v6(&mut self, c: ConnId, vrf: &str, vn: &str, id: u64) {
        let name = self.agents[&c].name.clone();
        let nh = NextHop {
            af: 1,
            address: "192.168.0.1".into(),
            label: Some(NhLabel::Value(5001)),
            tunnel_encapsulation: vec![TunnelEncap::Vxlan],
            ..NextHop::default()
        };
        let evpn = RouteNode::parse("25/242/02:00:00:00:00:01,10.1.1.3/32").unwrap();
        let e = Entry {
            nlri: Nlri {
                af: 25,
                safi: 242,
                mac: Some("02:00:00:00:00:01".into()),
                address: Some("10.1.1.3/32".into()),
                ..Nlri::default()
            },
            next_hops: vec![nh.clone()],
            virtual_network: Some(vn.into()),
            ..Entry::default()
        };
        let (p, col) = route_iqs(&name, id, vrf, evpn, e, CollectionOp::Associate);
        self.send(c, &(p.to_element().to_xml() + &col.to_element().to_xml()));
        let v6 = RouteNode::parse(&format!("2/1/{vrf}/fd00::3/128")).unwrap();
        let e6 = Entry {
            nlri: Nlri {
                af: 2,
                safi: 1,
                address: Some("fd00::3/128".into()),
                ..Nlri::default()
            },
            next_hops: vec![NextHop {
                tunnel_encapsulation: vec![TunnelEncap::Udp],
                ..nh
            }],
            virtual_network: Some(vn.into()),
            ..Entry::default()
        };
        let (p, col) = route_iqs(&name, id + 1, vrf, v6, e6, CollectionOp::Associate);
        self.send(c, &(p.to_element().to_xml() + &col.to_element().to_xml()));
    }
}

/// vn1's routing instance in [`two_networks`].
pub const VRF1: &str = "default-domain:p:vn1:vn1";
/// vn1 in [`two_networks`].
pub const VN1: &str = "default-domain:p:vn1";

/// Networks vn1 (10.1.1.0/24) and vn2 (10.2.2.0/24) of project p, vrouters host1 and host2.
pub fn two_networks() -> ConfigEnv {
    let mut env = ConfigEnv::new();
    env.project("p");
    env.vn("p", "vn1", "10.1.1.0");
    env.vn("p", "vn2", "10.2.2.0");
    env.vrouter("host1", "192.168.0.1");
    env.vrouter("host2", "192.168.0.2");
    env.derive();
    env
}

pub fn inet_entry(ip: &str, nh: &str, label: u32, vn: &str) -> Entry {
    Entry {
        nlri: Nlri {
            af: 1,
            safi: 1,
            address: Some(format!("{ip}/32")),
            ..Nlri::default()
        },
        next_hops: vec![NextHop {
            af: 1,
            address: nh.into(),
            label: Some(NhLabel::Value(label)),
            tunnel_encapsulation: vec![TunnelEncap::Gre, TunnelEncap::Udp],
            virtual_network: Some(vn.into()),
            ..NextHop::default()
        }],
        version: Some(1),
        virtual_network: Some(vn.into()),
        local_preference: Some(200),
        med: Some(0),
        ..Entry::default()
    }
}

/// `(address, label, encapsulations)` of each `<olist>` next hop of an item (the EVPN
/// broadcast item's ingress-replication list), encapsulations joined by `,`.
pub fn olist_of(e: &Entry) -> Vec<(String, String, String)> {
    e.extra
        .iter()
        .filter(|x| x.name == "olist")
        .flat_map(|o| o.children_named("next-hop"))
        .map(|nh| {
            let t = |n: &str| nh.child(n).map(Element::text).unwrap_or_default();
            let encaps = nh
                .child("tunnel-encapsulation-list")
                .map(|l| {
                    l.children_named("tunnel-encapsulation")
                        .map(Element::text)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            (t("address"), t("label"), encaps)
        })
        .collect()
}
