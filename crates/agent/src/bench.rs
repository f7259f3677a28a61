//! Fixtures for `filament bench agent` (no clock here; the binary times): an agent core with
//! one programmed port whose network carries an ACL of N rules (the transformer's
//! `AclRuleType` shape, the matching rule last), and a stream of distinct flow keys from that
//! port to a remote workload learnt over XMPP. Config and routes go in as a control node
//! sends them (IFMap config iq, route push), so the decision path is the real one.

use filament_dataplane::{FlowKey, VifId, VrfId};
use filament_ifmap::encode_object;
use filament_wire_xmpp::{ConfigIq, ConfigItem, ConfigOp, ConfigOpKind, StreamHeader};
use serde_json::{json, Value};

use crate::core::{Agent, AgentCfg, Input};
use crate::port::PortReq;

const VN: &str = "default-domain:bench:vn1";
const VMI: &str = "00000000-0000-4000-8000-0000000000a1";
const VM: &str = "00000000-0000-4000-8000-0000000000b1";

fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// Why the fixture could not be built (a bug in the fixture, reported by the bench).
#[derive(Debug, thiserror::Error)]
#[error("bench fixture: {0}")]
pub struct FixtureError(String);

fn objects(rules: usize) -> Vec<(&'static str, Value)> {
    let fq = |s: &str| s.split(':').map(str::to_string).collect::<Vec<_>>();
    let mut acl = Vec::new();
    // rules that do not match the benchmark's flows (other networks, TCP ports), then the pass
    for i in 0..rules.saturating_sub(1) {
        acl.push(json!({"match_condition": {"protocol": "tcp",
            "src_address": {"virtual_network": VN}, "src_port": {"start_port": -1, "end_port": -1},
            "dst_address": {"virtual_network": format!("default-domain:bench:other{i}")},
            "dst_port": {"start_port": 1000 + (i % 60000), "end_port": 1000 + (i % 60000)}, "ethertype": "IPv4"},
            "action_list": {"simple_action": "deny"}, "rule_uuid": uuid(0x1000 + i as u64), "direction": ">"}));
    }
    acl.push(json!({"match_condition": {"protocol": "udp",
        "src_address": {"virtual_network": VN}, "src_port": {"start_port": -1, "end_port": -1},
        "dst_address": {"virtual_network": VN}, "dst_port": {"start_port": -1, "end_port": -1}, "ethertype": "IPv4"},
        "action_list": {"simple_action": "pass"}, "rule_uuid": uuid(0xffff), "direction": ">"}));
    vec![
        (
            "virtual-network",
            json!({"fq_name": fq(VN), "uuid": uuid(1), "virtual_network_network_id": 5,
            "network_ipam_refs": [{"to": ["default-domain", "default-project", "default-network-ipam"],
                "attr": {"ipam_subnets": [{"subnet": {"ip_prefix": "10.0.0.0", "ip_prefix_len": 8},
                    "default_gateway": "10.255.255.254", "dns_server_address": "10.255.255.253"}]}}]}),
        ),
        (
            "network-ipam",
            json!({"fq_name": ["default-domain", "default-project", "default-network-ipam"], "uuid": uuid(2)}),
        ),
        (
            "routing-instance",
            json!({"fq_name": fq(&format!("{VN}:vn1")), "uuid": uuid(3),
            "parent_type": "virtual-network"}),
        ),
        (
            "access-control-list",
            json!({"fq_name": fq(&format!("{VN}:vn1")), "uuid": uuid(4),
            "parent_type": "virtual-network", "access_control_list_entries": {"dynamic": false, "acl_rule": acl}}),
        ),
        ("virtual-machine", json!({"fq_name": [VM], "uuid": VM})),
        (
            "virtual-machine-interface",
            json!({"fq_name": ["default-domain", "bench", "port1"], "uuid": VMI,
            "virtual_network_refs": [{"to": fq(VN), "attr": null}],
            "virtual_machine_refs": [{"to": [VM], "attr": null}],
            "virtual_machine_interface_mac_addresses": {"mac_address": ["02:00:00:00:00:01"]}}),
        ),
        (
            "instance-ip",
            json!({"fq_name": ["bench-iip"], "uuid": uuid(5), "instance_ip_address": "10.0.0.3",
            "virtual_machine_interface_refs": [{"to": ["default-domain", "bench", "port1"], "attr": null}]}),
        ),
    ]
}

/// The config iq a control node would send for the fixture.
pub fn config_iq(rules: usize) -> Result<String, FixtureError> {
    let mut items = Vec::new();
    for (ty, o) in objects(rules) {
        let m = o
            .as_object()
            .ok_or_else(|| FixtureError(format!("{ty} not an object")))?;
        let (node, links) = encode_object(ty, m).map_err(|e| FixtureError(format!("{ty}: {e}")))?;
        items.push(ConfigItem::Node(node));
        items.extend(links.into_iter().map(ConfigItem::Link));
    }
    let iq = ConfigIq::to_agent(
        "bench",
        vec![ConfigOp {
            kind: ConfigOpKind::Update,
            items,
        }],
    );
    Ok(iq.to_element().to_xml())
}

/// An agent with the port programmed, a remote route learnt, and `flows` distinct UDP keys
/// from the port to the remote workload (each decided by the last of `rules` ACL rules).
pub fn flow_fixture(rules: usize, flows: usize) -> Result<(Agent, Vec<FlowKey>), FixtureError> {
    let mut a = Agent::new(AgentCfg {
        name: "bench".into(),
        fabric_ip: [192, 168, 0, 1].into(),
        fabric_vif: VifId(0),
        fabric_mtu: 1500,
        channels: 1,
    });
    let req = PortReq::parse(&json!({"id": VMI, "instance-id": VM, "mac-address": "02:00:00:00:00:01", "system-name": "tapbench"}))
        .map_err(|e| FixtureError(e.to_string()))?;
    a.handle(0, Input::PortAdd(req, VifId(1)));
    a.handle(1, Input::Connected(0));
    a.handle(
        2,
        Input::Bytes(
            0,
            StreamHeader::control_to_agent("bench")
                .to_xml()
                .into_bytes(),
        ),
    );
    a.handle(3, Input::Bytes(0, config_iq(rules)?.into_bytes()));
    let push = format!(
        "<message from=\"network-control@contrailsystems.com\" to=\"bench/bgp-peer\"><event xmlns=\"http://jabber.org/protocol/pubsub\"><items node=\"1/1/{VN}:vn1\"><item id=\"10.0.0.9/32\"><entry><nlri><af>1</af><safi>1</safi><address>10.0.0.9/32</address></nlri><next-hops><next-hop><af>1</af><address>192.168.0.2</address><label>20</label><tunnel-encapsulation-list><tunnel-encapsulation>udp</tunnel-encapsulation></tunnel-encapsulation-list></next-hop></next-hops><virtual-network>{VN}</virtual-network></entry></item></items></event></message>"
    );
    a.handle(4, Input::Bytes(0, push.into_bytes()));
    let _ = a.poll_output();
    let vrf = a
        .ports
        .get(VMI)
        .and_then(|p| p.programmed.as_ref())
        .map(|p| p.vrf_id)
        .ok_or_else(|| FixtureError("port not programmed".into()))?;
    let keys = (0..flows)
        .map(|i| FlowKey {
            vrf: VrfId(vrf),
            proto: 17,
            src: [10, 0, 0, 3].into(),
            dst: [10, 0, 0, 9].into(),
            sport: 1024 + (i % 60000) as u16,
            dport: 1 + (i / 60000) as u16,
        })
        .collect();
    Ok((a, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_flows_are_decided_by_the_last_rule() {
        let (a, keys) = flow_fixture(1000, 3).unwrap();
        for k in &keys {
            let d = a.decide_flow(k);
            assert!(d.allow);
            assert_eq!(d.rule, uuid(0xffff));
        }
        // TCP matches none of the N rules: within the network, the implicit allow decides
        let mut k = keys[0];
        k.proto = 6;
        assert_eq!(a.decide_flow(&k).rule, crate::flow::IMPLICIT_SAME_VN);
    }
}
