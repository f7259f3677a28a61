//! Route pushes to agents (tf-facts §2.5): rendered once and shared between the agents of
//! an instance, and deferred as keys for an agent whose write backlog is too long.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{inet_entry, ConfigEnv, Lab, VN1, VRF1};
use filament_control::{Input, Output};
use filament_wire_xmpp::{route_iqs, CollectionOp, RouteNode};

fn network() -> ConfigEnv {
    let mut env = ConfigEnv::new();
    env.project("p");
    env.vn("p", "vn1", "10.1.1.0");
    env.vrouter("host1", "192.168.0.1");
    env.vrouter("host2", "192.168.0.2");
    env.vrouter("host3", "192.168.0.3");
    env.derive();
    env
}

fn publish_xml(agent: &str, seq: u64, ip: &str) -> Vec<u8> {
    let node = RouteNode::parse(&format!("1/1/{VRF1}/{ip}/32")).unwrap();
    let entry = inet_entry(ip, "192.168.0.1", 20, VN1);
    let (p, c) = route_iqs(agent, seq, VRF1, node, entry, CollectionOp::Associate);
    (p.to_element().to_xml() + &c.to_element().to_xml()).into_bytes()
}

#[test]
fn one_rendering_shared_by_every_subscriber_only_the_address_differs() {
    let env = network();
    let mut lab = Lab::new();
    lab.sync(&env);
    let a = lab.connect("host1");
    let b = lab.connect("host2");
    let c = lab.connect("host3");
    lab.subscribe(a, VRF1, 1);
    lab.subscribe(b, VRF1, 2);
    lab.subscribe(c, VRF1, 3);
    let outs = lab.node.step(
        lab.now,
        Input::Bytes {
            conn: a,
            data: publish_xml("host1", 100, "10.1.1.3"),
        },
    );
    let sent = |conn| {
        outs.iter()
            .find_map(|o| match o {
                Output::Send { conn: c, data } if *c == conn => Some(data.clone()),
                _ => None,
            })
            .unwrap()
    };
    let (da, db, dc) = (sent(a), sent(b), sent(c));
    // the <items> body is one allocation referenced by all three sessions
    let body = da
        .iter()
        .find(|ch| ch.windows(6).any(|w| w == b"<items"))
        .unwrap();
    for d in [&db, &dc] {
        assert!(d.iter().any(|ch| Arc::ptr_eq(ch, body)));
    }
    // and the messages differ only in the `to` address
    let text = |d: &Vec<Arc<[u8]>>| String::from_utf8(d.concat()).unwrap();
    assert!(text(&da).contains("to=\"host1/bgp-peer\""));
    assert_eq!(
        text(&da).replace("host1/bgp-peer", "host2/bgp-peer"),
        text(&db)
    );
}

#[test]
fn a_backlogged_agent_gets_the_current_state_when_it_drains() {
    let env = network();
    let mut lab = Lab::new();
    lab.sync(&env);
    let a = lab.connect("host1");
    let b = lab.connect("host2");
    lab.subscribe(a, VRF1, 1);
    lab.subscribe(b, VRF1, 2);
    let pubr = |lab: &mut Lab, ip: &str, op| {
        lab.publish(a, VRF1, VN1, ip, "192.168.0.1", 20, op);
    };
    pubr(&mut lab, "10.1.1.7", CollectionOp::Associate);
    assert!(lab.agent(b).route(VRF1, "10.1.1.7/32").is_some());

    lab.step(Input::Backlog {
        conn: b,
        blocked: true,
    });
    pubr(&mut lab, "10.1.1.3", CollectionOp::Associate);
    pubr(&mut lab, "10.1.1.5", CollectionOp::Associate);
    pubr(&mut lab, "10.1.1.5", CollectionOp::Dissociate);
    pubr(&mut lab, "10.1.1.7", CollectionOp::Dissociate);
    // nothing queued for b meanwhile; a (not blocked) is up to date
    assert!(lab.agent(b).route(VRF1, "10.1.1.3/32").is_none());
    assert!(lab.agent(b).route(VRF1, "10.1.1.7/32").is_some());
    assert!(lab.agent(a).route(VRF1, "10.1.1.3/32").is_some());
    assert!(lab.agent(a).route(VRF1, "10.1.1.7/32").is_none());
    assert_eq!(lab.node.counters().backlogged, 1);

    lab.step(Input::Backlog {
        conn: b,
        blocked: false,
    });
    // drained: the routes as they are now (added, withdrawn, never-seen-and-gone)
    assert!(lab.agent(b).route(VRF1, "10.1.1.3/32").is_some());
    assert!(lab.agent(b).route(VRF1, "10.1.1.5/32").is_none());
    assert!(lab.agent(b).route(VRF1, "10.1.1.7/32").is_none());
    let ra = lab.agent(a).routes.clone();
    assert_eq!(lab.agent(b).routes, ra);
}

#[test]
fn fast_convergence_xmpp_hold_time_overrides_the_node_setting() {
    use std::time::Duration;
    let env = network();
    let mut lab = Lab::new(); // node hold time 9 s
    lab.sync(&env);
    assert_eq!(lab.node.xmpp_hold(), Duration::from_secs(9));
    let mut gsc = env
        .objects()
        .into_iter()
        .find(|o| o.ty == "global-system-config")
        .unwrap();
    gsc.props.insert(
        "fast_convergence_parameters".into(),
        serde_json::json!({"enable": true, "xmpp_hold_time": 2}),
    );
    let a = lab.connect("host1");
    lab.step(Input::Config {
        uuid: gsc.uuid.clone(),
        object: Some(Box::new(gsc.clone())),
    });
    lab.advance(Duration::from_millis(100));
    assert_eq!(lab.node.xmpp_hold(), Duration::from_secs(2));
    // the open session now expires after 2 s of silence, not 9
    lab.advance(Duration::from_millis(1500));
    assert!(!lab.agent(a).closed);
    lab.advance(Duration::from_millis(600));
    assert!(lab.agent(a).closed);
    // disabled: the node's own setting again
    gsc.props.insert(
        "fast_convergence_parameters".into(),
        serde_json::json!({"enable": false, "xmpp_hold_time": 2}),
    );
    lab.step(Input::Config {
        uuid: gsc.uuid.clone(),
        object: Some(Box::new(gsc)),
    });
    lab.advance(Duration::from_millis(100));
    assert_eq!(lab.node.xmpp_hold(), Duration::from_secs(9));
}
