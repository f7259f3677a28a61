//! An encapsulation-priority change in global-vrouter-config (tf-facts §5.3) reaches the
//! agent's forwarding state and its published routes: learnt tunnel nexthops are re-made
//! with the new preferred encapsulation the remote next hop offers, and the agent's own
//! routes are published again with the new encapsulation list.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use filament_agent::core::{Agent, Input, Output};
use filament_dataplane::{NexthopKind, Op, TunnelEncap, VifId};

mod common;
use common::{config_xml_with, host1_agent, host1_header, port1_req};

fn route_push() -> String {
    let nh = "<next-hop><af>1</af><address>192.168.0.2</address><label>20</label><tunnel-encapsulation-list><tunnel-encapsulation>udp</tunnel-encapsulation><tunnel-encapsulation>vxlan</tunnel-encapsulation></tunnel-encapsulation-list></next-hop>";
    format!(
        "<message from=\"network-control@contrailsystems.com\" to=\"host1/bgp-peer\"><event xmlns=\"http://jabber.org/protocol/pubsub\"><items node=\"1/1/default-domain:admin:vn1:vn1\"><item id=\"10.1.1.9/32\"><entry><nlri><af>1</af><safi>1</safi><address>10.1.1.9/32</address></nlri><next-hops>{nh}</next-hops><virtual-network>default-domain:admin:vn1</virtual-network></entry></item></items></event></message>"
    )
}

/// Tunnel encapsulations of the nexthops the agent added to 192.168.0.2.
fn tunnels(outs: &[Output]) -> Vec<TunnelEncap> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Op(Op::AddNexthop(n)) => match &n.kind {
                NexthopKind::Tunnel { dst_ip, encap, .. }
                    if dst_ip.to_string() == "192.168.0.2" =>
                {
                    Some(*encap)
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn xmpp_text(outs: &[Output]) -> String {
    outs.iter()
        .filter_map(|o| match o {
            Output::Xmpp(_, b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn vxlan_first_remakes_tunnels_and_republishes_routes() {
    let (udp_first, vmi) = config_xml_with(&["MPLSoUDP", "MPLSoGRE", "VXLAN"]);
    let (vxlan_first, _) = config_xml_with(&["VXLAN", "MPLSoUDP", "MPLSoGRE"]);
    let mut a = host1_agent();
    let header = host1_header();
    let port = port1_req(&vmi);
    let mut now = 0;
    let mut step = |a: &mut Agent, inputs: Vec<Input>| {
        let mut outs = Vec::new();
        for i in inputs {
            now += 10;
            a.handle(now, i);
            outs.extend(a.poll_output());
        }
        outs
    };
    step(&mut a, vec![Input::Connected(0), Input::Bytes(0, header)]);
    step(&mut a, vec![Input::PortAdd(port, VifId(3))]);
    let first = step(&mut a, vec![Input::Bytes(0, udp_first.into_bytes())]);
    assert!(xmpp_text(&first).contains("<tunnel-encapsulation>udp</tunnel-encapsulation>"));
    let learnt = step(&mut a, vec![Input::Bytes(0, route_push().into_bytes())]);
    assert_eq!(
        tunnels(&learnt),
        vec![TunnelEncap::MplsOverUdp { label: 20 }]
    );
    // The same config again changes nothing.
    let (again, _) = config_xml_with(&["MPLSoUDP", "MPLSoGRE", "VXLAN"]);
    let same = step(&mut a, vec![Input::Bytes(0, again.into_bytes())]);
    assert!(
        tunnels(&same).is_empty(),
        "unchanged priority re-made tunnels"
    );
    // VXLAN first: the learnt route moves to a VXLAN tunnel (the label is the VNI) ...
    let changed = step(&mut a, vec![Input::Bytes(0, vxlan_first.into_bytes())]);
    assert_eq!(tunnels(&changed), vec![TunnelEncap::Vxlan { vni: 20 }]);
    assert!(
        changed.iter().any(|o| matches!(o, Output::Op(Op::AddRoute { prefix, .. }) if prefix.to_string() == "10.1.1.9/32")),
        "route not re-pointed"
    );
    // ... the old nexthop goes (make before break) ...
    assert!(changed
        .iter()
        .any(|o| matches!(o, Output::Op(Op::DelNexthop { .. }))));
    // ... and our own routes are published again: the EVPN one with VXLAN first (inet ones
    // offer MPLS only, as a TF agent's).
    let text = xmpp_text(&changed);
    let evpn = &text[text.find("25/242").expect("EVPN route republished")..];
    let v = evpn
        .find("<tunnel-encapsulation>vxlan</tunnel-encapsulation>")
        .expect("VXLAN in the EVPN route");
    let u = evpn
        .find("<tunnel-encapsulation>udp</tunnel-encapsulation>")
        .unwrap_or(usize::MAX);
    assert!(
        v < u,
        "VXLAN not first in the republished EVPN route:\n{text}"
    );
    // Only MPLSoGRE, which the remote next hop does not offer: as TF's
    // TunnelType::ComputeType, the first offered of MPLSoGRE, MPLSoUDP, VXLAN is used.
    let (gre_only, _) = config_xml_with(&["MPLSoGRE"]);
    let fell_back = step(&mut a, vec![Input::Bytes(0, gre_only.into_bytes())]);
    assert_eq!(
        tunnels(&fell_back),
        vec![TunnelEncap::MplsOverUdp { label: 20 }]
    );
    assert!(
        !fell_back.iter().any(|o| matches!(o, Output::Op(Op::DelRoute { prefix, .. }) if prefix.to_string() == "10.1.1.9/32")),
        "route removed instead of falling back"
    );
}
