//! Security groups are allow lists: the entries of a group's ACLs pass whatever their
//! `action_list` says (the transformers write `pass`; this test gives none), so an
//! "ingress TCP 22 only" group lets SSH in and nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use filament_agent::core::Input;
use filament_dataplane::{FlowKey, VifId, VrfId};
use serde_json::json;

mod common;
use common::{config_xml_full, host1_agent, host1_header, port1_req};

#[test]
fn ingress_tcp_22_only_group_without_actions_allows_ssh_only() {
    let any4 = json!({"subnet": {"ip_prefix": "0.0.0.0", "ip_prefix_len": 0}, "subnet_list": []});
    let rules = json!([{"match_condition": {"protocol": "tcp", "src_address": any4,
        "src_port": {"start_port": 0, "end_port": 65535},
        "dst_address": {"security_group": "8000002", "subnet_list": []},
        "dst_port": {"start_port": 22, "end_port": 22}, "ethertype": "IPv4"},
        "action_list": {"apply_service": []}, "rule_uuid": "r-ssh", "direction": ">"}]);
    let (config, vmi) = config_xml_full(&["MPLSoUDP", "MPLSoGRE", "VXLAN"], Some(rules));
    let mut a = host1_agent();
    let header = host1_header();
    let port = port1_req(&vmi);
    let route = "<message from=\"network-control@contrailsystems.com\" to=\"host1/bgp-peer\"><event xmlns=\"http://jabber.org/protocol/pubsub\"><items node=\"1/1/default-domain:admin:vn1:vn1\"><item id=\"10.1.1.9/32\"><entry><nlri><af>1</af><safi>1</safi><address>10.1.1.9/32</address></nlri><next-hops><next-hop><af>1</af><address>192.168.0.2</address><label>20</label><tunnel-encapsulation-list><tunnel-encapsulation>udp</tunnel-encapsulation></tunnel-encapsulation-list></next-hop></next-hops><virtual-network>default-domain:admin:vn1</virtual-network></entry></item></items></event></message>";
    for (t, i) in [
        Input::Connected(0),
        Input::Bytes(0, header),
        Input::PortAdd(port, VifId(3)),
        Input::Bytes(0, config.into_bytes()),
        Input::Bytes(0, route.as_bytes().to_vec()),
    ]
    .into_iter()
    .enumerate()
    {
        a.handle(t as u64 * 10, i);
        a.poll_output();
    }
    let pr = a.ports[&vmi].programmed.clone().expect("port programmed");
    assert_eq!(pr.sgs, vec![8000002], "sg1's id");
    let key = |proto: u8, dport: u16| FlowKey {
        vrf: VrfId(pr.vrf_id),
        proto,
        src: "10.1.1.9".parse().unwrap(),
        dst: std::net::IpAddr::V4(pr.ip),
        sport: 40000,
        dport,
    };
    let ssh = a.decide_flow(&key(6, 22));
    assert!(ssh.allow, "{ssh:?}");
    assert_eq!(ssh.rule, "r-ssh");
    let web = a.decide_flow(&key(6, 80));
    assert!(!web.allow, "{web:?}");
    assert_eq!(web.rule, filament_agent::flow::SG_DEFAULT_DENY);
    assert!(!a.decide_flow(&key(1, 0)).allow, "ping passed");
}
