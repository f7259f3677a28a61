//! The control node against a TF-shaped agent: the bytes a real contrail-vrouter-agent
//! writes (pugixml `format_default` stanzas, every XSD member encoded, its BUM routes), and
//! what such an agent does with what we send back (docs/tf-agent-compat.md).
//!
//! The TF-side rules are quoted from the sources named at each use; nothing is copied.

#![allow(clippy::unwrap_used)]

mod common;

use common::{inet_entry, olist_of, two_networks, Lab, VN1, VRF1};
use filament_control::{Input, Output};
use filament_wire_xmpp::{
    route_iqs, CollectionOp, Element, PushedItem, RouteNode, Stanza, StreamEvent, StreamHeader,
    StreamParser,
};

/// The agent's stream open, as `XmppProto::EncodeOpen` prints it (no declaration, double
/// quotes, a space for the final `/`).
fn tf_open(agent: &str) -> String {
    format!(
        "<stream:stream from=\"{agent}\" to=\"network-control@contrailsystems.com\" version=\"1.0\" \
         xml:lang=\"en\" xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\" >"
    )
}

/// `ControllerSendSubscribe`, printed with `format_default` (declaration, one element a line).
fn tf_subscribe(agent: &str, vrf: &str, id: u32) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<iq type=\"set\" from=\"{agent}\" \
         to=\"network-control@contrailsystems.com/bgp-peer\" id=\"subscribe{id}\">\n\
         <pubsub xmlns=\"http://jabber.org/protocol/pubsub\">\n<subscribe node=\"{vrf}\">\n\
         <options>\n<instance-id>{id}</instance-id>\n</options>\n</subscribe>\n</pubsub>\n</iq>\n"
    )
}

/// A publish + collection pair as `ControllerSendV4V6UnicastRouteCommon` /
/// `BuildAndSendEvpnDom` / `ControllerSendMcastRouteCommon` write it around `item_xml`.
fn tf_publish(agent: &str, id: &str, node: &str, collection: &str, item_xml: &str) -> String {
    let head = |iq_id: String| {
        format!(
            "<?xml version=\"1.0\"?>\n<iq type=\"set\" from=\"{agent}\" \
             to=\"network-control@contrailsystems.com/bgp-peer\" id=\"{iq_id}\">\n\
             <pubsub xmlns=\"http://jabber.org/protocol/pubsub\">\n"
        )
    };
    format!(
        "{}<publish node=\"{node}\">\n<item>\n{item_xml}</item>\n</publish>\n</pubsub>\n</iq>\n\
         {}<collection node=\"{collection}\">\n<associate node=\"{node}\" />\n</collection>\n\
         </pubsub>\n</iq>\n",
        head(format!("pubsub{id}")),
        head(format!("collection{id}")),
    )
}

/// An inet item with every member the generated encoder writes: the entry-level
/// `virtual-network` is empty (the agent never sets it), the VN is on the next hop.
fn tf_inet_entry(ip: &str, nh: &str, label: u32, vn: &str) -> String {
    format!(
        "<entry>\n<nlri>\n<af>1</af>\n<safi>1</safi>\n<address>{ip}/32</address>\n</nlri>\n\
         <next-hops>\n<next-hop>\n<af>1</af>\n<address>{nh}</address>\n<mac>52:54:00:aa:bb:cc</mac>\n\
         <label>{label}</label>\n<vni>0</vni>\n<tunnel-encapsulation-list>\n\
         <tunnel-encapsulation>gre</tunnel-encapsulation>\n<tunnel-encapsulation>udp</tunnel-encapsulation>\n\
         </tunnel-encapsulation-list>\n<virtual-network>{vn}</virtual-network>\n<tag-list />\n</next-hop>\n\
         </next-hops>\n<version>1</version>\n<virtual-network></virtual-network>\n\
         <mobility seqno=\"0\" sticky=\"false\" />\n<sequence-number>0</sequence-number>\n\
         <security-group-list />\n<community-tag-list />\n<local-preference>200</local-preference>\n\
         <med>0</med>\n<load-balance>\n<load-balance-fields />\n\
         <load-balance-decision>field-hash</load-balance-decision>\n</load-balance>\n\
         <sub-protocol>interface</sub-protocol>\n</entry>\n"
    )
}

/// The broadcast route (`BuildEvpnMulticastMessage`): an address where the MAC would be.
const TF_BUM_NODE: &str = "25/242/255.255.255.255,0.0.0.0/32,255.255.255.255,0.0.0.0";
const TF_BUM_ENTRY: &str = "<entry>\n<nlri>\n<af>25</af>\n<safi>242</safi>\n\
    <ethernet-tag>0</ethernet-tag>\n<mac>ff:ff:ff:ff:ff:ff</mac>\n<address>0.0.0.0/32</address>\n\
    <group></group>\n<source></source>\n<flags>0</flags>\n</nlri>\n<next-hops>\n<next-hop>\n\
    <af>1</af>\n<address>192.168.0.1</address>\n<mac></mac>\n<label>4</label>\n\
    <l3-label>0</l3-label>\n<tunnel-encapsulation-list>\n<tunnel-encapsulation>gre</tunnel-encapsulation>\n\
    </tunnel-encapsulation-list>\n<tag-list />\n</next-hop>\n</next-hops>\n<olist />\n<leaf-olist />\n\
    <local-preference>100</local-preference>\n<med>0</med>\n\
    <replicator-address></replicator-address>\n<etree-leaf>false</etree-leaf>\n</entry>\n";
/// The same broadcast MAC in the key form (TSN assisted replication).
const TF_BUM_NODE_KEYED: &str = "25/242/ff:ff:ff:ff:ff:ff,0.0.0.0/32,255.255.255.255,0.0.0.0";
/// `ControllerSendMcastRouteCommon`: SAFI 241 with the agent's label block.
const TF_MCAST_ENTRY: &str = "<entry>\n<nlri>\n<af>1</af>\n<safi>241</safi>\n\
    <group>255.255.255.255</group>\n<source>0.0.0.0</source>\n<source-label>0</source-label>\n\
    <source-address></source-address>\n</nlri>\n<next-hops>\n<next-hop>\n<af>1</af>\n\
    <address>192.168.0.1</address>\n<label>1048000-1048575</label>\n<tunnel-encapsulation-list>\n\
    <tunnel-encapsulation>gre</tunnel-encapsulation>\n<tunnel-encapsulation>udp</tunnel-encapsulation>\n\
    </tunnel-encapsulation-list>\n</next-hop>\n</next-hops>\n<olist />\n</entry>\n";

/// `tf_publish` of an inet `item_xml` for `ip`/32 in VRF1.
fn tf_publish_inet(agent: &str, id: &str, ip: &str, item_xml: &str) -> String {
    tf_publish(agent, id, &format!("1/1/{VRF1}/{ip}/32"), VRF1, item_xml)
}

/// A synced lab with TF's agent "host1" (subscribed to VRF1 as instance 2) and an agent of
/// ours, "host2" (instance 1).
fn tf_and_ours() -> (Lab, u64, u64) {
    let mut lab = Lab::synced(&two_networks());
    let a = connect_tf(&mut lab, "host1");
    let b = lab.connect("host2");
    lab.send(a, &tf_subscribe("host1", VRF1, 2));
    lab.subscribe(b, VRF1, 1);
    (lab, a, b)
}

/// Connect `name` with TF's own stream open instead of the lab's.
fn connect_tf(lab: &mut Lab, name: &str) -> u64 {
    let c = 1000 + lab.agents.len() as u64;
    let mut agent = common::TestAgent::default();
    agent.name = name.into();
    lab.agents.insert(c, agent);
    lab.step(Input::Accepted {
        conn: c,
        remote: "127.0.0.1".into(),
    });
    lab.send(c, &tf_open(name));
    c
}

#[test]
fn a_tf_agent_publishing_everything_it_publishes_keeps_its_session() {
    let (mut lab, a, b) = tf_and_ours();
    assert!(lab.agent(a).opened);
    let inet = tf_inet_entry("10.1.1.3", "192.168.0.1", 25, VN1);
    lab.send(a, &tf_publish_inet("host1", "3", "10.1.1.3", &inet));
    // its BUM routes: EVPN broadcast (both node forms) and multicast SAFI 241
    lab.send(
        a,
        &tf_publish("host1", "_l27", TF_BUM_NODE, VRF1, TF_BUM_ENTRY),
    );
    lab.send(
        a,
        &tf_publish("host1", "_l28", TF_BUM_NODE_KEYED, VRF1, TF_BUM_ENTRY),
    );
    lab.send(
        a,
        &tf_publish(
            "host1",
            "_b0",
            &format!("1/241/{VRF1}/255.255.255.255"),
            VRF1,
            TF_MCAST_ENTRY,
        ),
    );
    lab.step(Input::Tick);
    assert!(!lab.agent(a).closed, "the TF agent's session was closed");
    let c = lab.node.counters();
    assert_eq!(c.malformed, 0);
    // the multicast (SAFI 241) route; the broadcast ones are replication legs (below)
    assert_eq!(c.unsupported_items, 1);
    assert_eq!(c.rejected_items, 0);
    // the unicast route reached the other agent with the next hop's VN as its VN (the empty
    // entry-level <virtual-network> used to hide it)
    let got = lab.agent(b).route(VRF1, "10.1.1.3/32").unwrap();
    assert_eq!(got.virtual_network.as_deref(), Some(VN1));
    assert_eq!(got.next_hops[0].address, "192.168.0.1");
    // and no broadcast route was handed to it as a unicast MAC route
    assert!(lab
        .agent(b)
        .routes
        .keys()
        .all(|(_, id)| !id.contains("ff:ff:ff:ff:ff:ff")));
    // the broadcast route (both node forms are the same route) is one broadcast key, the
    // vRouter's, which BGP peers get as a type-3 route
    let evpn = lab.node.rib().table(&format!("{VRF1}.evpn.0")).unwrap();
    let keys: Vec<String> = evpn.keys().collect();
    assert_eq!(keys, ["ff:ff:ff:ff:ff:ff,192.168.0.1/32"]);
}

/// What a TF agent keeps of one `<message>`: if it holds any `<retract>`, only the retracts
/// (`controller_peer.cc` `ReceiveV4V6Update`: `FindNode("retract")`, handle retracts,
/// `return`), else the items.
fn tf_apply(routes: &mut std::collections::BTreeSet<String>, items: &[PushedItem]) {
    let has_retract = items
        .iter()
        .any(|i| matches!(i, PushedItem::Retract { .. }));
    for it in items {
        match it {
            PushedItem::Retract { id } => {
                routes.remove(id);
            }
            PushedItem::Item { id, .. } if !has_retract => {
                routes.insert(id.clone());
            }
            PushedItem::Item { .. } => {}
        }
    }
}

fn publish_bytes(agent: &str, seq: u64, ip: &str, op: CollectionOp) -> Vec<u8> {
    let node = RouteNode::parse(&format!("1/1/{VRF1}/{ip}/32")).unwrap();
    let (p, c) = route_iqs(
        agent,
        seq,
        VRF1,
        node,
        inet_entry(ip, "192.168.0.1", 20, VN1),
        op,
    );
    (p.to_element().to_xml() + &c.to_element().to_xml()).into_bytes()
}

#[test]
fn one_push_holds_items_or_retracts_never_both() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 1);
    let b = lab.join("host2", VRF1, 1);
    for (i, ip) in ["10.1.1.3", "10.1.1.4"].into_iter().enumerate() {
        lab.send(
            a,
            std::str::from_utf8(&publish_bytes(
                "host1",
                i as u64,
                ip,
                CollectionOp::Associate,
            ))
            .unwrap(),
        );
    }
    let mut tf_view: std::collections::BTreeSet<String> = lab
        .agent(b)
        .routes
        .keys()
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(tf_view.len(), 2);
    // one burst: .3 withdrawn, .5 added, then one flush (one push to host2)
    let now = lab.now;
    for (seq, ip, op) in [
        (10, "10.1.1.3", CollectionOp::Dissociate),
        (11, "10.1.1.5", CollectionOp::Associate),
    ] {
        lab.node.handle(
            now,
            Input::Bytes {
                conn: a,
                data: publish_bytes("host1", seq, ip, op),
            },
        );
    }
    let outs = lab.node.flush();
    let mut p = StreamParser::new();
    p.feed(StreamHeader::control_to_agent("host2").to_xml().as_bytes())
        .unwrap();
    let mut messages = 0;
    for o in outs {
        if let Output::Send { conn, data } = o {
            if conn == b {
                p.feed(&data.concat()).unwrap();
            }
        }
    }
    for ev in p.drain_events().unwrap() {
        let StreamEvent::Stanza(e) = ev else { continue };
        let Stanza::RouteUpdate(u) = Stanza::parse(&e).unwrap() else {
            continue;
        };
        messages += 1;
        let retracts = u
            .items
            .iter()
            .filter(|i| matches!(i, PushedItem::Retract { .. }))
            .count();
        assert!(
            retracts == 0 || retracts == u.items.len(),
            "a message mixes items and retracts: {}",
            Element::to_xml(&u.to_element())
        );
        tf_apply(&mut tf_view, &u.items);
    }
    assert_eq!(messages, 2);
    // what a TF agent ends up with is what the table holds
    assert_eq!(
        tf_view.into_iter().collect::<Vec<_>>(),
        ["10.1.1.4/32", "10.1.1.5/32"]
    );
}

#[test]
fn the_stream_open_we_answer_with_is_tf_s() {
    let mut lab = Lab::synced(&two_networks());
    lab.step(Input::Accepted {
        conn: 7,
        remote: "127.0.0.1".into(),
    });
    let outs = lab.node.step(
        lab.now,
        Input::Bytes {
            conn: 7,
            data: tf_open("host1").into_bytes(),
        },
    );
    let [Output::Send { conn: 7, data }] = outs.as_slice() else {
        panic!("{outs:?}")
    };
    let text = String::from_utf8(data.concat()).unwrap();
    // `XmppProto::DecodeInternal` wants `<stream:stream` (or a double-quoted declaration)
    // first, and `XmppSession::Match` frames the header by `…/streams["'] *>` at its end
    assert_eq!(
        text,
        "<stream:stream from=\"network-control@contrailsystems.com\" to=\"host1\" id=\"++123\" \
         version=\"1.0\" xml:lang=\"en\" xmlns=\"jabber:client\" \
         xmlns:stream=\"http://etherx.jabber.org/streams\" >"
    );
}

/// A BGP-learned VPN route without the tunnel-encapsulation community reaches the agent
/// with `gre`, as TF's control node writes it (`xmpp_message_builder.cc` `EncodeNextHop`):
/// an agent turns an empty list into no tunnel type at all.
#[test]
fn a_bgp_route_without_encapsulation_is_pushed_as_gre() {
    let mut lab = Lab::synced(&two_networks());
    let b = lab.join("host2", VRF1, 1);
    let rt = lab.import_target(VRF1);
    lab.add_bgp_vpn("10.0.0.9:5", "172.20.0.0/16", "10.0.0.9", rt);
    let got = lab.agent(b).route(VRF1, "172.20.0.0/16").unwrap();
    assert_eq!(
        got.next_hops[0].tunnel_encapsulation,
        vec![filament_wire_xmpp::TunnelEncap::Gre]
    );
}

/// Config with references that carry attributes (VN → IPAM subnets, VMI → routing instance)
/// goes out as TF's link-attr nodes, the only place a TF agent reads those attributes from
/// (`ifmap_agent_parser.cc` `LinkParse` keeps a link's type only), and our own receiver
/// (`IfmapGraph`) still sees the references with their attributes.
#[test]
fn config_references_with_attributes_are_link_attr_nodes() {
    let mut env = common::ConfigEnv::new();
    env.project("p");
    let vn = env.vn("p", "vn1", "10.1.1.0");
    env.vrouter("host1", "192.168.0.1");
    env.workload("host1", "p", &vn, "vm1");
    env.derive();
    let mut lab = Lab::new();
    lab.sync(&env);
    let a = lab.connect("host1");
    // the subscribe by hand, to see the bytes
    let sub = filament_wire_xmpp::SubscribeIq::config(
        "host1",
        1,
        filament_wire_xmpp::SubscribeAction::Subscribe,
        "virtual-router:default-global-system-config:host1",
    );
    let outs = lab.node.step(
        lab.now,
        Input::Bytes {
            conn: a,
            data: sub.to_xml().into_bytes(),
        },
    );
    let text: String = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send { conn, data } if *conn == a => {
                Some(String::from_utf8(data.concat()).unwrap())
            }
            _ => None,
        })
        .collect();
    let ipam = "default-domain:default-project:default-network-ipam";
    let vn1 = "default-domain:p:vn1";
    assert!(
        text.contains(&format!(
            "<node type=\"virtual-network-network-ipam\"><name>attr({ipam},{vn1})</name><value><ipam-subnets>"
        )),
        "{text}"
    );
    assert!(text.contains("<node type=\"virtual-machine-interface-routing-instance\"><name>attr("));
    // no link carries metadata content
    assert!(!text.contains("</metadata>"), "{text}");
    // our receiver folds them back into references
    let mut g = filament_ifmap::IfmapGraph::new();
    let mut p = StreamParser::new();
    p.feed(StreamHeader::control_to_agent("host1").to_xml().as_bytes())
        .unwrap();
    p.feed(text.as_bytes()).unwrap();
    for ev in p.drain_events().unwrap() {
        if let StreamEvent::Stanza(e) = ev {
            if let Ok(Stanza::Config(c)) = Stanza::parse(&e) {
                g.apply(&c).unwrap();
            }
        }
    }
    let vn_obj = g.object("virtual-network", vn1).unwrap();
    assert_eq!(
        vn_obj["network_ipam_refs"][0]["attr"]["ipam_subnets"][0]["subnet"]["ip_prefix"],
        "10.1.1.0"
    );
    let vmi = g
        .object("virtual-machine-interface", "default-domain:p:vm1-port")
        .unwrap();
    assert_eq!(
        vmi["routing_instance_refs"][0]["to"],
        serde_json::json!(["default-domain", "p", "vn1", "vn1"])
    );
    assert!(!g.contains(
        "virtual-network-network-ipam",
        &format!("attr({ipam},{vn1})")
    ));
}

/// A real agent writes `<mobility seqno="0" sticky="false">` (never set) and the path's
/// sequence in `<sequence-number>`; TF's `ProcessItem` takes the mobility only when its
/// seqno is not zero, else the sequence number.  The sequence reaches the other agents
/// (their path preference, e.g. for an allowed-address-pair failover).
#[test]
fn the_agent_s_sequence_number_is_kept() {
    let (mut lab, a, b) = tf_and_ours();
    let inet = tf_inet_entry("10.1.1.3", "192.168.0.1", 25, VN1).replace(
        "<sequence-number>0</sequence-number>",
        "<sequence-number>7</sequence-number>",
    );
    assert!(inet.contains("<sequence-number>7<"));
    lab.send(a, &tf_publish_inet("host1", "3", "10.1.1.3", &inet));
    let got = lab.agent(b).route(VRF1, "10.1.1.3/32").unwrap();
    assert_eq!(got.sequence_number, Some(7));
    assert_eq!(got.mobility.map(|m| m.seqno), Some(7));
}

/// EVPN broadcast by ingress replication: every agent that published its broadcast route
/// gets the others in the `<olist>` of one `ff:ff:ff:ff:ff:ff` item (TF:
/// `xmpp_message_builder.cc` `AddEnetReach`, read by the agent's `AddMulticastEvpnRoute`),
/// and a retract once nobody else is left; an agent of ours, which publishes none, gets none.
#[test]
fn broadcast_routes_become_each_agent_s_replication_list() {
    let mut lab = Lab::synced(&two_networks());
    let a = connect_tf(&mut lab, "host1");
    let c = connect_tf(&mut lab, "host3");
    let b = lab.connect("host2");
    lab.send(a, &tf_subscribe("host1", VRF1, 2));
    lab.send(c, &tf_subscribe("host3", VRF1, 4));
    lab.subscribe(b, VRF1, 1);
    let bum_c = TF_BUM_ENTRY
        .replace(
            "<address>192.168.0.1</address>",
            "<address>192.168.0.3</address>",
        )
        .replace("<label>4</label>", "<label>5</label>");
    lab.send(
        a,
        &tf_publish("host1", "_l21", TF_BUM_NODE, VRF1, TF_BUM_ENTRY),
    );
    let id = "ff:ff:ff:ff:ff:ff,0.0.0.0/32";
    // alone: nothing to replicate to
    assert!(lab.agent(a).route(VRF1, id).is_none());
    lab.send(c, &tf_publish("host3", "_l22", TF_BUM_NODE, VRF1, &bum_c));
    let got_a = lab.agent(a).route(VRF1, id).unwrap();
    assert!(got_a.next_hops.is_empty());
    assert_eq!(
        olist_of(got_a),
        [("192.168.0.3".into(), "5".into(), "gre".into())]
    );
    let got_c = lab.agent(c).route(VRF1, id).unwrap();
    assert_eq!(
        olist_of(got_c),
        [("192.168.0.1".into(), "4".into(), "gre".into())]
    );
    assert!(lab.agent(b).route(VRF1, id).is_none());
    assert!(!lab.agent(a).closed && !lab.agent(c).closed);
    // host3 withdraws its broadcast route: host1 is alone again
    let withdraw = tf_publish("host3", "_l23", TF_BUM_NODE, VRF1, &bum_c)
        .replace("<associate ", "<dissociate ");
    lab.send(c, &withdraw);
    assert!(lab.agent(a).route(VRF1, id).is_none());
    assert!(lab
        .agent(a)
        .retracts
        .iter()
        .any(|(v, i)| v == VRF1 && i == id));
    // host3 back, then its session goes: host1's list empties with it
    lab.send(c, &tf_publish("host3", "_l24", TF_BUM_NODE, VRF1, &bum_c));
    assert!(lab.agent(a).route(VRF1, id).is_some());
    lab.step(Input::Disconnected { conn: c });
    assert!(lab.agent(a).route(VRF1, id).is_none());
    assert!(lab.agent(b).retracts.iter().all(|(_, i)| i != id));
}

/// TF's `ProcessItem` (bgp_xmpp_channel.cc) refuses an inet item with a label above 20 bits,
/// with more than one next hop ("Agents should send only one next-hop in the item"), with
/// a next hop that is no address or 0.0.0.0, or with a router MAC that does not parse; it
/// skips `vxlan` in an inet item's encapsulations (all skipped: an infeasible path, which
/// we refuse).  Each refusal is counted by reason and the session stays up.
#[test]
fn inet_items_tf_refuses_are_refused_and_counted() {
    let (mut lab, a, b) = tf_and_ours();
    let good = tf_inet_entry("10.1.1.9", "192.168.0.1", 25, VN1);
    let nh_start = good.find("<next-hop>").unwrap();
    let nh_end = good.find("</next-hop>").unwrap() + "</next-hop>".len();
    let one_nh = &good[nh_start..nh_end];
    let encaps = "<tunnel-encapsulation>gre</tunnel-encapsulation>\n\
                  <tunnel-encapsulation>udp</tunnel-encapsulation>\n";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "10.1.1.10",
            tf_inet_entry("10.1.1.10", "192.168.0.1", 0x10_0000, VN1),
            "bad_label",
        ),
        (
            "10.1.1.11",
            good.replace(
                one_nh,
                &format!("{one_nh}\n{}", one_nh.replace("192.168.0.1", "192.168.0.2")),
            ),
            "several_next_hops",
        ),
        (
            "10.1.1.12",
            tf_inet_entry("10.1.1.12", "0.0.0.0", 25, VN1),
            "bad_next_hop",
        ),
        (
            "10.1.1.13",
            tf_inet_entry("10.1.1.13", "vhost0", 25, VN1),
            "bad_next_hop",
        ),
        (
            "10.1.1.14",
            good.replace(
                encaps,
                "<tunnel-encapsulation>vxlan</tunnel-encapsulation>\n",
            ),
            "no_valid_encapsulation",
        ),
        (
            "10.1.1.15",
            good.replace("52:54:00:aa:bb:cc", "52:54:00:zz"),
            "bad_mac",
        ),
    ];
    for (i, (ip, item, _)) in cases.iter().enumerate() {
        let item = item.replace("10.1.1.9/32", &format!("{ip}/32"));
        lab.send(a, &tf_publish_inet("host1", &format!("r{i}"), ip, &item));
    }
    lab.step(Input::Tick);
    assert!(!lab.agent(a).closed, "refused items keep the session");
    let c = lab.node.counters().clone();
    assert_eq!(c.rejected_items, cases.len() as u64);
    for (ip, _, reason) in &cases {
        assert!(
            lab.agent(b).route(VRF1, &format!("{ip}/32")).is_none(),
            "{ip} ({reason}) must not be installed"
        );
    }
    let mut want = std::collections::BTreeMap::new();
    for (_, _, r) in &cases {
        *want.entry(*r).or_insert(0u64) += 1;
    }
    assert_eq!(c.rejected_by_reason, want);

    // the largest 20-bit label is fine; vxlan beside udp is dropped from the path
    let edge = tf_inet_entry("10.1.1.20", "192.168.0.1", 0xF_FFFF, VN1).replace(
        encaps,
        "<tunnel-encapsulation>vxlan</tunnel-encapsulation>\n\
         <tunnel-encapsulation>udp</tunnel-encapsulation>\n",
    );
    lab.send(a, &tf_publish_inet("host1", "ok", "10.1.1.20", &edge));
    lab.step(Input::Tick);
    let got = lab.agent(b).route(VRF1, "10.1.1.20/32").expect("installed");
    assert_eq!(
        got.next_hops[0].label,
        Some(filament_wire_xmpp::NhLabel::Value(0xF_FFFF))
    );
    let enc: Vec<&str> = got.next_hops[0]
        .tunnel_encapsulation
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(
        enc,
        ["udp"],
        "vxlan is not an inet encapsulation (TF skips it)"
    );
    assert_eq!(lab.node.counters().rejected_items, cases.len() as u64);
}

/// EVPN items keep `vxlan` (ProcessEnetItem skips only unknown names) and are not held to
/// the 20-bit label (a VNI is 24 bits); several next hops are refused there too.
#[test]
fn evpn_items_keep_vxlan_and_take_one_next_hop() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 1);
    let b = lab.join("host2", VRF1, 2);
    lab.publish_evpn_and_v6(a, VRF1, VN1, 10);
    let key = "02:00:00:00:00:01,10.1.1.3/32";
    let got = lab.agent(b).route(VRF1, key).expect("EVPN route installed");
    assert!(got.next_hops[0]
        .tunnel_encapsulation
        .iter()
        .any(|t| t.as_str() == "vxlan"));
    assert_eq!(lab.node.counters().rejected_items, 0);

    let mut e = lab.agent(b).route(VRF1, key).unwrap().clone();
    e.nlri.mac = Some("02:00:00:00:00:02".into());
    e.nlri.address = Some("10.1.1.4/32".into());
    e.next_hops[0].label = Some(filament_wire_xmpp::NhLabel::Value(0x12_3456));
    let mut second = e.next_hops[0].clone();
    let node = RouteNode::parse("25/242/02:00:00:00:00:02,10.1.1.4/32").unwrap();
    let (p, col) = route_iqs(
        "host1",
        20,
        VRF1,
        node.clone(),
        e.clone(),
        CollectionOp::Associate,
    );
    lab.send(a, &(p.to_element().to_xml() + &col.to_element().to_xml()));
    assert!(
        lab.agent(b)
            .route(VRF1, "02:00:00:00:00:02,10.1.1.4/32")
            .is_some(),
        "a 24-bit VNI is fine in EVPN"
    );
    second.address = "192.168.0.9".into();
    e.next_hops.push(second);
    e.nlri.mac = Some("02:00:00:00:00:03".into());
    let node = RouteNode::parse("25/242/02:00:00:00:00:03,10.1.1.4/32").unwrap();
    let (p, col) = route_iqs("host1", 21, VRF1, node, e, CollectionOp::Associate);
    lab.send(a, &(p.to_element().to_xml() + &col.to_element().to_xml()));
    assert!(lab
        .agent(b)
        .route(VRF1, "02:00:00:00:00:03,10.1.1.4/32")
        .is_none());
    assert_eq!(
        lab.node
            .counters()
            .rejected_by_reason
            .get("several_next_hops"),
        Some(&1)
    );
    assert!(!lab.agent(a).closed);
}
