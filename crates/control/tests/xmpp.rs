//! The control node against in-process agents speaking TF's XMPP (tf-facts §2, §3).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{two_networks, Lab, VN1, VRF1};
use filament_wire_xmpp::CollectionOp;

const VRF2: &str = "default-domain:p:vn2:vn2";
const VN2: &str = "default-domain:p:vn2";

#[test]
fn two_agents_in_one_network_see_each_other() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.connect("host1");
    let b = lab.connect("host2");
    assert!(lab.agent(a).opened && lab.agent(b).opened);
    lab.subscribe(a, VRF1, 3);
    lab.subscribe(b, VRF1, 4);
    lab.announce(a, "10.1.1.3", 17);
    lab.publish(
        b,
        VRF1,
        VN1,
        "10.1.1.4",
        "192.168.0.2",
        18,
        CollectionOp::Associate,
    );
    let r = lab
        .agent(b)
        .route(VRF1, "10.1.1.3/32")
        .expect("host2 learns host1's route");
    assert_eq!(r.next_hops.len(), 1);
    assert_eq!(r.next_hops[0].address, "192.168.0.1");
    assert_eq!(
        r.next_hops[0].label,
        Some(filament_wire_xmpp::NhLabel::Value(17))
    );
    assert_eq!(r.virtual_network.as_deref(), Some(VN1));
    assert_eq!(r.local_preference, Some(200));
    assert_eq!(r.med, Some(100), "MED derived from local-pref 200");
    assert!(
        lab.agent(a).route(VRF1, "10.1.1.4/32").is_some(),
        "and the other way"
    );
    // the VPN table holds both with RD <agent-ip>:<instance-id> and the VN's export target
    let vpn = lab.node.rib().table("bgp.l3vpn.0").unwrap();
    let p = &vpn["192.168.0.1:3:10.1.1.3/32"].paths[0];
    assert!(p
        .attrs
        .route_targets
        .iter()
        .any(|t| t.starts_with("target:64512:8000")));
    // withdraw
    lab.publish(
        a,
        VRF1,
        VN1,
        "10.1.1.3",
        "192.168.0.1",
        17,
        CollectionOp::Dissociate,
    );
    assert!(lab.agent(b).route(VRF1, "10.1.1.3/32").is_none());
    assert!(!lab
        .node
        .rib()
        .table("bgp.l3vpn.0")
        .unwrap()
        .contains_key("192.168.0.1:3:10.1.1.3/32"));
}

#[test]
fn networks_exchange_routes_only_once_a_policy_connects_them() {
    let mut env = two_networks();
    let mut lab = Lab::new();
    lab.sync(&env);
    let a = lab.join("host1", VRF1, 1);
    let b = lab.join("host2", VRF2, 1);
    lab.announce(a, "10.1.1.3", 17);
    lab.publish(
        b,
        VRF2,
        VN2,
        "10.2.2.3",
        "192.168.0.2",
        21,
        CollectionOp::Associate,
    );
    assert!(
        lab.agent(b).route(VRF2, "10.1.1.3/32").is_none(),
        "isolated networks"
    );
    assert!(lab.agent(a).route(VRF1, "10.2.2.3/32").is_none());
    env.policy_between("p", "vn1", "vn2");
    env.derive();
    lab.sync(&env);
    let r = lab
        .agent(b)
        .route(VRF2, "10.1.1.3/32")
        .expect("vn1's route in vn2 after the policy");
    assert_eq!(r.virtual_network.as_deref(), Some(VN1), "origin VN kept");
    assert_eq!(
        r.next_hops[0].label,
        Some(filament_wire_xmpp::NhLabel::Value(17))
    );
    assert!(
        lab.agent(a).route(VRF1, "10.2.2.3/32").is_some(),
        "and vn2's in vn1"
    );
    let routes = lab
        .node
        .routes(Some(&format!("{VRF2}.inet.0")), Some("10.1.1.3/32"));
    assert_eq!(
        routes["tables"][0]["routes"][0]["paths"][0]["secondary"],
        true
    );
}

#[test]
fn two_agents_announcing_one_prefix_give_ecmp() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.connect("host1");
    let b = lab.connect("host2");
    let c = lab.connect("host3");
    for (x, id) in [(a, 1), (b, 2), (c, 3)] {
        lab.subscribe(x, VRF1, id);
    }
    lab.announce(a, "10.1.1.100", 30);
    lab.publish(
        b,
        VRF1,
        VN1,
        "10.1.1.100",
        "192.168.0.2",
        31,
        CollectionOp::Associate,
    );
    let r = lab.agent(c).route(VRF1, "10.1.1.100/32").unwrap();
    let mut nhs: Vec<&str> = r.next_hops.iter().map(|n| n.address.as_str()).collect();
    nhs.sort();
    assert_eq!(nhs, ["192.168.0.1", "192.168.0.2"]);
}

#[test]
fn agent_gets_the_config_of_its_vms_only() {
    let mut env = two_networks();
    let vn1 = env
        .db
        .uuid_of(
            filament_schema::index()
                .resource("virtual-network")
                .unwrap(),
            &["default-domain".into(), "p".into(), "vn1".into()],
        )
        .unwrap()
        .to_string();
    let (vm1, _) = env.workload("host1", "p", &vn1, "vm1");
    let (_vm2, _) = env.workload("host2", "p", &vn1, "vm2");
    env.derive();
    let mut lab = Lab::new();
    lab.sync(&env);
    let a = lab.connect("host1");
    lab.subscribe_config(a, "virtual-router:default-global-system-config:host1");
    let g = &lab.agent(a).config;
    assert!(g.contains("virtual-router", "default-global-system-config:host1"));
    assert!(g.contains("virtual-machine", "vm1"));
    assert!(g.contains("virtual-machine-interface", "default-domain:p:vm1-port"));
    assert!(g.contains("virtual-network", "default-domain:p:vn1"));
    assert!(g.contains("routing-instance", VRF1));
    assert!(g.contains("instance-ip", "vm1-ip"));
    assert!(g.contains(
        "network-ipam",
        "default-domain:default-project:default-network-ipam"
    ));
    assert!(g.contains("global-system-config", "default-global-system-config"));
    assert!(
        !g.contains("virtual-machine", "vm2"),
        "another host's VM is not sent"
    );
    assert!(!g.contains("virtual-router", "default-global-system-config:host2"));
    let vmi = g
        .object("virtual-machine-interface", "default-domain:p:vm1-port")
        .unwrap();
    assert_eq!(
        vmi["virtual_network_refs"][0]["to"],
        serde_json::json!(["default-domain", "p", "vn1"])
    );
    assert_eq!(
        vmi["virtual_machine_refs"][0]["uuid"],
        serde_json::json!(vm1)
    );
    let iip = g.object("instance-ip", "vm1-ip").unwrap();
    assert!(iip["instance_ip_address"]
        .as_str()
        .unwrap()
        .starts_with("10.1.1."));
    // removing the VM from the vrouter deletes its subgraph at the agent
    let before = lab.agent(a).config_messages;
    let vr = env
        .db
        .uuid_of(
            filament_schema::index().resource("virtual-router").unwrap(),
            &["default-global-system-config".into(), "host1".into()],
        )
        .unwrap()
        .to_string();
    env.ref_update(
        serde_json::json!({"type": "virtual-router", "uuid": vr, "ref-type": "virtual-machine",
        "ref-uuid": vm1, "operation": "DELETE"}),
    );
    lab.sync(&env);
    assert!(lab.agent(a).config_messages > before);
    let g = &lab.agent(a).config;
    assert!(!g.contains("virtual-machine", "vm1"));
    assert!(!g.contains("virtual-machine-interface", "default-domain:p:vm1-port"));
    assert!(g.contains("virtual-router", "default-global-system-config:host1"));
    // a per-VM subscription (by uuid, as our agent sends it) brings the subgraph back
    lab.subscribe_config(a, &format!("virtual-machine:{vm1}"));
    let g = &lab.agent(a).config;
    assert!(g.contains("virtual-machine", "vm1"));
    assert!(g.contains("virtual-machine-interface", "default-domain:p:vm1-port"));
    assert!(!g.contains("virtual-machine", "vm2"));
}

#[test]
fn publish_into_an_unsubscribed_instance_closes_only_that_session() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 1);
    let b = lab.join("host2", VRF1, 2);
    lab.announce(a, "10.1.1.3", 17);
    assert!(lab.agent(b).route(VRF1, "10.1.1.3/32").is_some());
    lab.publish(
        a,
        VRF2,
        VN2,
        "10.2.2.9",
        "192.168.0.1",
        17,
        CollectionOp::Associate,
    );
    assert!(lab.agent(a).closed, "TF closes the channel");
    assert!(!lab.agent(b).closed);
    assert!(
        lab.agent(b).route(VRF1, "10.1.1.3/32").is_none(),
        "its routes are withdrawn"
    );
    assert_eq!(lab.node.counters().unsubscribed_publish, 1);
}

#[test]
fn malformed_xml_closes_only_that_session() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.connect("host1");
    let b = lab.join("host2", VRF1, 2);
    lab.send(a, "<iq type='set'><pubsub><a></b></pubsub></iq>");
    assert!(lab.agent(a).closed);
    assert!(!lab.agent(b).closed);
    lab.publish(
        b,
        VRF1,
        VN1,
        "10.1.1.4",
        "192.168.0.2",
        18,
        CollectionOp::Associate,
    );
    assert!(lab
        .node
        .rib()
        .table(&format!("{VRF1}.inet.0"))
        .unwrap()
        .contains_key("10.1.1.4/32"));
    assert_eq!(lab.node.counters().malformed, 1);
    // a well-formed stanza that is not valid TF XMPP closes the session too
    let c = lab.connect("host3");
    lab.send(c, "<iq type='set'><pubsub></pubsub></iq>");
    assert!(lab.agent(c).closed);
    assert!(!lab.agent(b).closed);
}

#[test]
fn hold_timer_drops_a_silent_agent_and_keepalives_flow() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 1);
    let b = lab.join("host2", VRF1, 2);
    lab.announce(a, "10.1.1.3", 17);
    // b keeps talking (keepalive bytes), a stays silent; hold time is 9 s
    for _ in 0..10 {
        lab.advance(Duration::from_secs(1));
        lab.step(filament_control::Input::Bytes {
            conn: b,
            data: vec![0xC8, 0x80],
        });
    }
    assert!(
        lab.agent(a).closed,
        "silent agent dropped after the hold time"
    );
    assert!(!lab.agent(b).closed);
    assert!(lab.agent(b).keepalives >= 2, "keepalive every hold/3");
    assert!(lab.agent(b).route(VRF1, "10.1.1.3/32").is_none());
    assert_eq!(
        lab.node.neighbors()["neighbors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["peer"] == "host1")
            .unwrap()["flap_count"],
        1
    );
}

#[test]
fn end_of_rib_and_unsubscribe() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 1);
    let b = lab.join("host2", VRF1, 2);
    assert!(!lab.agent(a).eor);
    lab.advance(Duration::from_secs(2));
    assert!(lab.agent(a).eor, "End-of-RIB after the quiet time");
    lab.announce(a, "10.1.1.3", 17);
    assert!(lab.agent(b).route(VRF1, "10.1.1.3/32").is_some());
    lab.unsubscribe(a, VRF1);
    assert!(
        lab.agent(b).route(VRF1, "10.1.1.3/32").is_none(),
        "unsubscribe withdraws the agent's routes"
    );
    // route-target membership follows subscriptions
    let rt = lab.node.rib().table("bgp.rtarget.0").unwrap();
    assert!(rt.keys().all(|k| k.starts_with("64512:target:64512:")));
    assert!(!rt.is_empty());
}

#[test]
fn bad_label_is_rejected_not_installed() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 1);
    lab.announce(a, "10.1.1.3", 0);
    assert!(lab.node.rib().table(&format!("{VRF1}.inet.0")).is_none());
    assert_eq!(lab.node.counters().rejected_items, 1);
    assert!(!lab.agent(a).closed);
}

#[test]
fn evpn_and_inet6_routes_flow_between_agents() {
    use filament_wire_xmpp::TunnelEncap;
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 1);
    let b = lab.join("host2", VRF1, 2);
    lab.publish_evpn_and_v6(a, VRF1, VN1, 1);
    let r = lab
        .agent(b)
        .route(VRF1, "02:00:00:00:00:01,10.1.1.3/32")
        .expect("EVPN item");
    assert_eq!(r.nlri.mac.as_deref(), Some("02:00:00:00:00:01"));
    assert_eq!(
        r.next_hops[0].tunnel_encapsulation,
        vec![TunnelEncap::Vxlan]
    );
    assert!(
        lab.agent(b).route(VRF1, "fd00::3/128").is_some(),
        "inet6 item"
    );
    assert!(lab
        .node
        .rib()
        .table("bgp.evpn.0")
        .unwrap()
        .contains_key("192.168.0.1:1:02:00:00:00:00:01,10.1.1.3/32"));
    assert!(lab
        .node
        .rib()
        .table("bgp.l3vpn-inet6.0")
        .unwrap()
        .contains_key("192.168.0.1:1:fd00::3/128"));
}

#[test]
fn every_instance_imports_tf_es_import_target() {
    // tf-facts §3: every instance also imports `target:<ASN>:7999999` (EVPN ES import).
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 1);
    let rt = lab.node.rib().table("bgp.rtarget.0").unwrap();
    assert!(
        rt.contains_key("64512:target:64512:7999999"),
        "{:?}",
        rt.keys().collect::<Vec<_>>()
    );
    // a BGP route carrying only that target lands in both instances and reaches the agent
    let es = filament_control::config::es_import_target(64512);
    lab.add_bgp_vpn("10.9.9.9:1", "10.5.5.5/32", "10.9.9.9", es);
    assert!(lab.agent(a).route(VRF1, "10.5.5.5/32").is_some());
    assert!(lab.node.rib().table(&format!("{VRF2}.inet.0")).is_some());
    // 4-byte ASNs use the short form
    assert_eq!(
        filament_control::config::es_import_target(4_200_000_000),
        "target:4200000000:7999"
    );
}

/// `/routes?prefix=`: whole destinations only (not any key ending in the same text), tables
/// recounted for what matched, tables with nothing matching left out.
#[test]
fn routes_by_prefix_keep_whole_destinations_and_recount() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 3);
    for (ip, label) in [("10.1.1.3", 17), ("10.1.1.13", 18)] {
        lab.announce(a, ip, label);
    }
    let t = format!("{VRF1}.inet.0");
    let v = lab.node.routes(Some(&t), Some("10.1.1.3/32"));
    let tables = v["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 1, "{v}");
    assert_eq!(tables[0]["destinations"], 1, "{v}");
    assert_eq!(tables[0]["paths"], 1, "{v}");
    assert_eq!(tables[0]["primary_paths"], 1, "{v}");
    assert_eq!(tables[0]["secondary_paths"], 0, "{v}");
    assert_eq!(tables[0]["routes"][0]["prefix"], "10.1.1.3/32");
    let v = lab.node.routes(None, Some("0.1.1.3/32"));
    assert_eq!(
        v["tables"].as_array().unwrap().len(),
        0,
        "a suffix is no match: {v}"
    );
}
