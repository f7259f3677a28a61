//! An agent on two control nodes (tf-facts §2, MAX_XMPP_SERVERS = 2): each node's copy of a
//! route is kept, so a retract from one leaves the route the other still holds, and a
//! channel going down removes nothing.

#![allow(clippy::unwrap_used)]

use filament_agent::core::{Agent, AgentCfg, Input, Output};
use filament_agent::port::PortReq;
use filament_dataplane::{Op, VifId};
use filament_wire_xmpp::StreamHeader;
use serde_json::json;

const VRF: &str = "default-domain:bench:vn1:vn1";
const VMI: &str = "00000000-0000-4000-8000-0000000000a1";
const VM: &str = "00000000-0000-4000-8000-0000000000b1";

fn push(item: &str) -> Vec<u8> {
    format!("<message from=\"network-control@contrailsystems.com\" to=\"bench/bgp-peer\"><event xmlns=\"http://jabber.org/protocol/pubsub\"><items node=\"1/1/{VRF}\">{item}</items></event></message>").into_bytes()
}

fn item(nh: &str) -> Vec<u8> {
    push(&format!("<item id=\"10.0.0.9/32\"><entry><nlri><af>1</af><safi>1</safi><address>10.0.0.9/32</address></nlri><next-hops><next-hop><af>1</af><address>{nh}</address><label>20</label><tunnel-encapsulation-list><tunnel-encapsulation>udp</tunnel-encapsulation></tunnel-encapsulation-list></next-hop></next-hops><virtual-network>default-domain:bench:vn1</virtual-network></entry></item>"))
}

fn retract() -> Vec<u8> {
    push("<retract id=\"10.0.0.9/32\"/>")
}

fn has_route(a: &Agent) -> bool {
    a.vrfs
        .get(VRF)
        .is_some_and(|v| v.routes.contains_key("10.0.0.9/32"))
}

fn route_deleted(outs: &[Output]) -> bool {
    outs.iter()
        .any(|o| matches!(o, Output::Op(Op::DelRoute { prefix, .. }) if prefix.to_string() == "10.0.0.9/32"))
}

fn agent() -> Agent {
    let mut a = Agent::new(AgentCfg {
        name: "bench".into(),
        fabric_ip: [192, 168, 0, 1].into(),
        fabric_vif: VifId(0),
        fabric_mtu: 1500,
        channels: 2,
    });
    let req = PortReq::parse(&json!({"id": VMI, "instance-id": VM,
        "mac-address": "02:00:00:00:00:01", "system-name": "tapbench"}))
    .unwrap();
    a.handle(0, Input::PortAdd(req, VifId(1)));
    let hdr = StreamHeader::control_to_agent("bench")
        .to_xml()
        .into_bytes();
    for n in 0..2 {
        a.handle(1, Input::Connected(n));
        a.handle(2, Input::Bytes(n, hdr.clone()));
    }
    let iq = filament_agent::bench::config_iq(1).unwrap().into_bytes();
    a.handle(3, Input::Bytes(0, iq));
    assert!(a.ports[VMI].programmed.is_some(), "port not programmed");
    let _ = a.poll_output();
    a
}

#[test]
fn a_retract_from_one_control_node_keeps_the_route_the_other_holds() {
    let mut a = agent();
    a.handle(4, Input::Bytes(0, item("192.168.0.2")));
    a.handle(4, Input::Bytes(1, item("192.168.0.2")));
    assert!(has_route(&a));
    let _ = a.poll_output();
    // node 0 retracts (its path went): node 1 still holds the route
    a.handle(5, Input::Bytes(0, retract()));
    assert!(has_route(&a), "route dropped while node 1 holds it");
    assert!(!route_deleted(&a.poll_output()));
    // node 1 retracts too: gone
    a.handle(6, Input::Bytes(1, retract()));
    assert!(!has_route(&a));
    assert!(route_deleted(&a.poll_output()));
}

#[test]
fn a_channel_going_down_removes_nothing_and_forgets_its_copies() {
    let mut a = agent();
    a.handle(4, Input::Bytes(0, item("192.168.0.2")));
    a.handle(4, Input::Bytes(1, item("192.168.0.2")));
    let _ = a.poll_output();
    // node 0 goes away: the route stays
    a.handle(5, Input::Disconnected(0));
    assert!(has_route(&a));
    assert!(!route_deleted(&a.poll_output()));
    // node 1's retract is now the last copy: the route goes (node 0's old copy does not
    // keep it alive)
    a.handle(6, Input::Bytes(1, retract()));
    assert!(!has_route(&a), "a dead channel's copy kept the route");
}
