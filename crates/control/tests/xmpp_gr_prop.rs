//! Property test of XMPP graceful restart (`node/gr.rs`): random sequences of agent
//! sessions opening and closing, subscriptions, publishes, withdrawals, End-of-RIB, time
//! and GR switched on and off (with LLGR after the restart time).  After every step a path of an agent is in the RIB only
//! while that agent has a session or is restarting, and only a restarting agent's paths are
//! stale; once every agent is gone and the timers have run, nothing of them is left.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{two_networks, ConfigEnv, Lab};
use filament_control::{ConnId, Input};
use filament_wire_xmpp::stream::KEEPALIVE_BYTES;
use filament_wire_xmpp::{CollectionOp, EndOfRib};
use proptest::prelude::*;
use serde_json::json;

const VRFS: [&str; 2] = ["default-domain:p:vn1:vn1", "default-domain:p:vn2:vn2"];
const VNS: [&str; 2] = ["default-domain:p:vn1", "default-domain:p:vn2"];
const NAMES: [&str; 2] = ["host1", "host2"];

#[derive(Debug, Clone)]
enum Op {
    Connect(usize),
    Disconnect(usize),
    Subscribe(usize, usize),
    Unsubscribe(usize, usize),
    Publish(usize, usize, u8, u32),
    Withdraw(usize, usize, u8),
    Eor(usize),
    Advance(u64),
    Gr(bool),
}

fn op() -> impl Strategy<Value = Op> {
    let a = 0..NAMES.len();
    let v = 0..VRFS.len();
    prop_oneof![
        a.clone().prop_map(Op::Connect),
        a.clone().prop_map(Op::Disconnect),
        (a.clone(), v.clone()).prop_map(|(a, v)| Op::Subscribe(a, v)),
        (a.clone(), v.clone()).prop_map(|(a, v)| Op::Unsubscribe(a, v)),
        (a.clone(), v.clone(), 0u8..4, 16u32..19).prop_map(|(a, v, r, l)| Op::Publish(a, v, r, l)),
        (a.clone(), v.clone(), 0u8..4).prop_map(|(a, v, r)| Op::Withdraw(a, v, r)),
        a.prop_map(Op::Eor),
        (0u64..40).prop_map(Op::Advance),
        any::<bool>().prop_map(Op::Gr),
    ]
}

fn set_gr(lab: &mut Lab, env: &ConfigEnv, on: bool) {
    lab.set_gr(
        env,
        json!({"enable": on, "xmpp_helper_enable": true, "restart_time": 30,
               "long_lived_restart_time": 10, "end_of_rib_timeout": 20}),
    );
}

/// (source, stale) of every path of an XMPP agent in the instance and VPN tables.
fn agent_paths(lab: &Lab) -> Vec<(String, bool)> {
    let v = lab.node.routes(None, None);
    let mut out = Vec::new();
    for t in v["tables"].as_array().unwrap() {
        for r in t["routes"].as_array().unwrap() {
            for p in r["paths"].as_array().unwrap() {
                if p["protocol"] == "XMPP" {
                    out.push((
                        p["source"].as_str().unwrap().to_string(),
                        p["stale"] == true,
                    ));
                }
            }
        }
    }
    out
}

fn established(lab: &Lab) -> BTreeSet<String> {
    lab.node.neighbors()["neighbors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["encoding"] == "XMPP" && n["state"] == "Established")
        .map(|n| n["peer"].as_str().unwrap().to_string())
        .collect()
}

/// Agent `a` publishes (or withdraws) route `r` of instance `v`.
fn route(lab: &mut Lab, c: ConnId, a: usize, v: usize, r: u8, label: u32, op: CollectionOp) {
    let ip = format!("10.{}.{}.{}", v + 1, a + 1, r + 1);
    let nh = format!("192.168.0.{}", a + 1);
    lab.publish(c, VRFS[v], VNS[v], &ip, &nh, label, op);
}

fn check(lab: &Lab) -> Result<(), TestCaseError> {
    let live = established(lab);
    let restarting: BTreeSet<String> = lab.node.restarting_agents().map(String::from).collect();
    for (src, stale) in agent_paths(lab) {
        prop_assert!(
            live.contains(&src) || restarting.contains(&src),
            "path of {src}: neither connected nor restarting"
        );
        prop_assert!(
            !stale || restarting.contains(&src),
            "stale path of {src} not restarting"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn agent_paths_exist_only_while_connected_or_restarting(ops in prop::collection::vec(op(), 1..40)) {
        let env = two_networks();
        let mut lab = Lab::new();
        lab.sync(&env);
        set_gr(&mut lab, &env, true);
        let mut conn: [Option<ConnId>; 2] = [None, None];
        for o in ops {
            match o {
                Op::Connect(a) => conn[a] = Some(lab.connect(NAMES[a])),
                Op::Disconnect(a) => {
                    if let Some(c) = conn[a].take() {
                        lab.step(Input::Disconnected { conn: c });
                    }
                }
                Op::Subscribe(a, v) => {
                    if let Some(c) = conn[a] {
                        lab.subscribe(c, VRFS[v], 3 + v as u32);
                    }
                }
                Op::Unsubscribe(a, v) => {
                    if let Some(c) = conn[a] {
                        lab.unsubscribe(c, VRFS[v]);
                    }
                }
                Op::Publish(a, v, r, label) => {
                    if let Some(c) = conn[a] {
                        route(&mut lab, c, a, v, r, label, CollectionOp::Associate);
                    }
                }
                Op::Withdraw(a, v, r) => {
                    if let Some(c) = conn[a] {
                        route(&mut lab, c, a, v, r, 16, CollectionOp::Dissociate);
                    }
                }
                Op::Eor(a) => {
                    if let Some(c) = conn[a] {
                        lab.send(c, &EndOfRib::from_agent(NAMES[a]).to_xml());
                    }
                }
                Op::Advance(s) => {
                    for _ in 0..s {
                        for c in conn.iter().flatten() {
                            lab.step(Input::Bytes { conn: *c, data: KEEPALIVE_BYTES.to_vec() });
                        }
                        lab.advance(Duration::from_secs(1));
                    }
                }
                Op::Gr(on) => set_gr(&mut lab, &env, on),
            }
            // a session the node closed (e.g. publish into an unsubscribed instance) is gone
            for (i, c) in conn.clone().iter().enumerate() {
                if c.is_some_and(|c| lab.agent(c).closed) {
                    conn[i] = None;
                }
            }
            lab.step(Input::Tick);
            check(&lab)?;
        }
        // everybody leaves; after the longest restart time and the long-lived time (LLGR)
        // nothing of them is left
        for c in conn.iter().flatten() {
            lab.step(Input::Disconnected { conn: *c });
        }
        for _ in 0..41 {
            lab.advance(Duration::from_secs(1));
        }
        prop_assert!(agent_paths(&lab).is_empty(), "{:?}", agent_paths(&lab));
        prop_assert!(lab.node.restarting_agents().next().is_none());
        prop_assert_eq!(lab.node.rib().table("bgp.rtarget.0").map_or(0, |t| t.len()), 0);
    }
}
