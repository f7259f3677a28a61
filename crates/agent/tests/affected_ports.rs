//! A config message re-programs the ports it affects, and only work proportional to what it
//! changed is done: a second port's config leaves the first alone; an instance-ip node
//! update alone (no link to its VMI in the message) re-programs its port with the new
//! address; a network node update alone (new network id, so a new VNI) re-programs every
//! port of that network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use filament_agent::bench::flow_fixture;
use filament_agent::core::{Agent, Input, Output};
use filament_agent::port::PortReq;
use filament_dataplane::{Op, VifId};
use filament_ifmap::encode_object;
use filament_wire_xmpp::{ConfigIq, ConfigItem, ConfigOp, ConfigOpKind};
use serde_json::{json, Value};

const VMI1: &str = "00000000-0000-4000-8000-0000000000a1";
const VMI2: &str = "00000000-0000-4000-8000-0000000000a2";
const VMI3: &str = "00000000-0000-4000-8000-0000000000a3";
const VM2: &str = "00000000-0000-4000-8000-0000000000b2";
const VN: [&str; 3] = ["default-domain", "bench", "vn1"];

/// One config message with these objects; `links: false` sends their nodes only.
fn iq(objs: &[(&str, Value)], links: bool) -> Vec<u8> {
    let mut items = Vec::new();
    for (ty, o) in objs {
        let (node, ls) = encode_object(ty, o.as_object().unwrap()).unwrap();
        items.push(ConfigItem::Node(node));
        if links {
            items.extend(ls.into_iter().map(ConfigItem::Link));
        }
    }
    let kind = ConfigOpKind::Update;
    let iq = ConfigIq::to_agent("bench", vec![ConfigOp { kind, items }]);
    iq.to_element().to_xml().into_bytes()
}

fn iip2(addr: &str) -> (&'static str, Value) {
    (
        "instance-ip",
        json!({"fq_name": ["iip2"], "uuid": "00000000-0000-4000-8000-0000000000c2",
        "instance_ip_address": addr,
        "virtual_machine_interface_refs": [{"to": ["default-domain", "bench", "port2"], "attr": null}]}),
    )
}

fn step(a: &mut Agent, now: u64, input: Input) -> Vec<Output> {
    a.handle(now, input);
    a.poll_output()
}

fn touches_vif1(outs: &[Output]) -> bool {
    outs.iter()
        .any(|o| matches!(o, Output::Op(Op::AddVif(v)) if v.id == VifId(1)))
}

#[test]
fn config_messages_reprogram_exactly_the_affected_ports() {
    let (mut a, _) = flow_fixture(1, 0).unwrap();
    let req = PortReq::parse(&json!({"id": VMI2, "instance-id": VM2,
        "mac-address": "02:00:00:00:00:02", "system-name": "tap2"}))
    .unwrap();
    step(&mut a, 10, Input::PortAdd(req, VifId(2)));
    let vmi2 = (
        "virtual-machine-interface",
        json!({"fq_name": ["default-domain", "bench", "port2"],
        "uuid": VMI2, "virtual_network_refs": [{"to": VN, "attr": null}],
        "virtual_machine_refs": [{"to": [VM2], "attr": null}],
        "virtual_machine_interface_mac_addresses": {"mac_address": ["02:00:00:00:00:02"]}}),
    );
    let vm2 = ("virtual-machine", json!({"fq_name": [VM2], "uuid": VM2}));
    let outs = step(
        &mut a,
        11,
        Input::Bytes(0, iq(&[vm2, vmi2, iip2("10.0.0.4")], true)),
    );
    let ip = |a: &Agent, id: &str| a.ports[id].programmed.as_ref().map(|p| p.ip.to_string());
    assert_eq!(ip(&a, VMI2).as_deref(), Some("10.0.0.4"));
    assert!(
        !touches_vif1(&outs),
        "port 1 re-programmed by port 2's config"
    );
    // the instance-ip's node alone: its port gets the new address
    let outs = step(&mut a, 12, Input::Bytes(0, iq(&[iip2("10.0.0.5")], false)));
    assert_eq!(ip(&a, VMI2).as_deref(), Some("10.0.0.5"));
    assert_eq!(ip(&a, VMI1).as_deref(), Some("10.0.0.3"));
    assert!(outs.iter().any(
        |o| matches!(o, Output::Op(Op::AddRoute { prefix, .. }) if prefix.to_string() == "10.0.0.5/32")
    ));
    assert!(!touches_vif1(&outs));
    // the network's node alone, with a new network id: both ports get the new VNI
    let vn = (
        "virtual-network",
        json!({"fq_name": VN, "uuid": "00000000-0000-4000-8000-000000000001",
        "virtual_network_network_id": 6}),
    );
    let outs = step(&mut a, 13, Input::Bytes(0, iq(&[vn], false)));
    for id in [VMI1, VMI2] {
        assert_eq!(
            a.ports[id].programmed.as_ref().unwrap().vni,
            Some(6),
            "{id}"
        );
    }
    assert!(touches_vif1(&outs));
    // a port whose VMI config came first is programmed at once when added
    let vmi3 = (
        "virtual-machine-interface",
        json!({"fq_name": ["default-domain", "bench", "port3"],
        "uuid": VMI3, "virtual_network_refs": [{"to": VN, "attr": null}],
        "virtual_machine_interface_mac_addresses": {"mac_address": ["02:00:00:00:00:03"]}}),
    );
    step(&mut a, 14, Input::Bytes(0, iq(&[vmi3], true)));
    let req = PortReq::parse(&json!({"id": VMI3, "instance-id": VM2,
        "mac-address": "02:00:00:00:00:03", "system-name": "tap3", "ip-address": "10.0.0.7"}))
    .unwrap();
    step(&mut a, 15, Input::PortAdd(req, VifId(3)));
    assert_eq!(ip(&a, VMI3).as_deref(), Some("10.0.0.7"));
}
