//! XMPP graceful restart, helper mode (tf-facts §2.7; `node/gr.rs`): an agent's paths
//! stay, stale, while it is away; re-published ones become fresh; End-of-RIB, the EoR
//! timer or the restart timer sweeps the rest.  Deterministic time through the lab clock.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{two_networks, ConfigEnv, Lab, VN1, VRF1};
use filament_control::{ConnId, Input};
use filament_wire_xmpp::stream::KEEPALIVE_BYTES;
use filament_wire_xmpp::{CollectionOp, EndOfRib};
use serde_json::{json, Value};

const VRF2: &str = "default-domain:p:vn2:vn2";
const T1: &str = "default-domain:p:vn1:vn1.inet.0";

/// GR without LLGR (`long_lived_restart_time` 0: the restart timer sweeps).
fn gr_on(restart: u64, eor: u64) -> Value {
    gr_llgr(restart, eor, 0)
}

fn gr_llgr(restart: u64, eor: u64, llgr: u64) -> Value {
    json!({"enable": true, "restart_time": restart, "long_lived_restart_time": llgr,
           "end_of_rib_timeout": eor, "bgp_helper_enable": false, "xmpp_helper_enable": true})
}

/// host1 publishes 10.1.1.3 and 10.1.1.5 in vn1 (instance 3) and subscribes vn2 too;
/// host2 subscribes vn1 and learns both.
fn lab_with_routes(params: Option<Value>) -> (ConfigEnv, Lab, ConnId, ConnId) {
    let env = two_networks();
    let mut lab = Lab::new();
    lab.sync(&env);
    if let Some(p) = params {
        lab.set_gr(&env, p);
    }
    let a = lab.connect("host1");
    let b = lab.connect("host2");
    lab.subscribe(a, VRF1, 3);
    lab.subscribe(a, VRF2, 4);
    lab.subscribe(b, VRF1, 5);
    lab.announce(a, "10.1.1.3", 17);
    lab.announce(a, "10.1.1.5", 19);
    lab.advance(Duration::from_secs(2));
    assert!(lab.agent(b).route(VRF1, "10.1.1.3/32").is_some());
    assert!(lab.agent(b).route(VRF1, "10.1.1.5/32").is_some());
    (env, lab, a, b)
}

/// `stale` of host1's path to `prefix` in vn1's inet table, as `GET /routes` shows it
/// (`None` when there is no such path).
fn stale(lab: &Lab, table: &str, prefix: &str) -> Option<bool> {
    let v = lab.node.routes(Some(table), Some(prefix));
    let paths = v["tables"][0]["routes"][0]["paths"].as_array()?.clone();
    paths
        .iter()
        .find(|p| p["source"].as_str().is_some_and(|s| s.contains("host1")))
        .map(|p| p["stale"] == true)
}

fn retracted(lab: &Lab, c: ConnId, id: &str) -> bool {
    lab.agent(c)
        .retracts
        .iter()
        .any(|(vrf, i)| vrf == VRF1 && i == id)
}

fn rtargets(lab: &Lab) -> usize {
    lab.node.rib().table("bgp.rtarget.0").map_or(0, |t| t.len())
}

fn neighbor(lab: &Lab, name: &str) -> Value {
    lab.node.neighbors()["neighbors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["peer"] == name)
        .cloned()
        .unwrap()
}

/// Let `secs` seconds pass, one at a time, with every test agent sending keepalives (the
/// lab's hold time is 9 s; the node ignores bytes for connections it dropped).
fn wait(lab: &mut Lab, secs: u64) {
    for _ in 0..secs {
        let live: Vec<ConnId> = lab
            .agents
            .iter()
            .filter(|(_, a)| !a.closed)
            .map(|(c, _)| *c)
            .collect();
        for conn in live {
            lab.step(Input::Bytes {
                conn,
                data: KEEPALIVE_BYTES.to_vec(),
            });
        }
        lab.advance(Duration::from_secs(1));
    }
}

fn eor(lab: &mut Lab, c: ConnId, name: &str) {
    lab.send(c, &EndOfRib::from_agent(name).to_xml());
    lab.step(Input::Tick);
}

#[test]
fn down_keeps_stale_paths_reconnect_refreshes_eor_sweeps_the_rest() {
    let (_env, mut lab, a, b) = lab_with_routes(Some(gr_on(60, 30)));
    let rts = rtargets(&lab);
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), Some(false));
    lab.node.enable_bgp_changes();
    lab.step(Input::Disconnected { conn: a });
    wait(&mut lab, 10);
    // away: both paths kept (stale), nothing retracted from host2, VPN copies kept and
    // nothing for BGP peers (no VPN or RT-membership change)
    assert!(lab.agent(b).retracts.is_empty());
    assert!(lab.node.take_bgp_changes().is_empty());
    assert!(lab.agent(b).route(VRF1, "10.1.1.3/32").is_some());
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), Some(true));
    assert_eq!(stale(&lab, T1, "10.1.1.5/32"), Some(true));
    assert_eq!(stale(&lab, "bgp.l3vpn.0", "10.1.1.5/32"), Some(true));
    let vpn = lab.node.rib().table("bgp.l3vpn.0").unwrap();
    assert!(vpn.contains_key("192.168.0.1:3:10.1.1.5/32"));
    // its subscriptions (vn2 has no other subscriber) keep their RT membership
    assert_eq!(rtargets(&lab), rts);
    let n = neighbor(&lab, "host1");
    assert_eq!(n["state"], "Idle (GR helper)");
    assert_eq!(n["graceful_restart"]["state"], "GR_TIMER");
    assert_eq!(n["graceful_restart"]["stale_paths"], 2);

    // back: re-subscribes and re-publishes one of the two
    let a2 = lab.connect("host1");
    lab.subscribe(a2, VRF1, 3);
    lab.announce(a2, "10.1.1.3", 17);
    wait(&mut lab, 1);
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), Some(false));
    assert_eq!(stale(&lab, T1, "10.1.1.5/32"), Some(true));
    assert!(lab.agent(b).retracts.is_empty());
    assert_eq!(
        neighbor(&lab, "host1")["graceful_restart"]["state"],
        "SWEEP_WAIT"
    );

    // End-of-RIB: what is still stale goes, and only that
    eor(&mut lab, a2, "host1");
    assert!(retracted(&lab, b, "10.1.1.5/32"));
    assert!(!retracted(&lab, b, "10.1.1.3/32"));
    // BGP peers: the swept path's VPN route changed (withdrawn)
    let bgp = lab.node.take_bgp_changes();
    let vpn_keys: Vec<String> = bgp["bgp.l3vpn.0"].iter().map(|k| k.to_string()).collect();
    assert!(vpn_keys.contains(&"192.168.0.1:3:10.1.1.5/32".to_string()));
    // the identical re-published path was not even re-advertised
    assert!(!vpn_keys.contains(&"192.168.0.1:3:10.1.1.3/32".to_string()));
    assert!(lab.agent(b).route(VRF1, "10.1.1.3/32").is_some());
    assert!(lab.agent(b).route(VRF1, "10.1.1.5/32").is_none());
    assert_eq!(stale(&lab, T1, "10.1.1.5/32"), None);
    let vpn = lab.node.rib().table("bgp.l3vpn.0").unwrap();
    assert!(!vpn.contains_key("192.168.0.1:3:10.1.1.5/32"));
    assert!(vpn.contains_key("192.168.0.1:3:10.1.1.3/32"));
    // vn2 was not re-subscribed: its stale subscription went with the sweep
    assert!(rtargets(&lab) < rts);
    assert!(neighbor(&lab, "host1")["graceful_restart"].is_null());
    assert_eq!(lab.node.counters().gr_refreshed, 1);
    assert_eq!(lab.node.counters().gr_swept, 1);
}

#[test]
fn restart_timer_sweeps_everything_when_the_agent_stays_away() {
    let (_env, mut lab, a, b) = lab_with_routes(Some(gr_on(60, 30)));
    let rts = rtargets(&lab);
    lab.step(Input::Disconnected { conn: a });
    wait(&mut lab, 59);
    assert!(lab.agent(b).retracts.is_empty());
    assert_eq!(rtargets(&lab), rts);
    wait(&mut lab, 2);
    assert!(retracted(&lab, b, "10.1.1.3/32"));
    assert!(retracted(&lab, b, "10.1.1.5/32"));
    assert!(lab.node.rib().table(T1).is_none());
    assert!(rtargets(&lab) < rts);
    assert_eq!(neighbor(&lab, "host1")["state"], "Idle");
}

#[test]
fn eor_timer_sweeps_after_the_agent_is_back_without_eor() {
    let (_env, mut lab, a, b) = lab_with_routes(Some(gr_on(300, 30)));
    lab.step(Input::Disconnected { conn: a });
    wait(&mut lab, 5);
    let a2 = lab.connect("host1");
    lab.subscribe(a2, VRF1, 3);
    lab.announce(a2, "10.1.1.5", 19);
    wait(&mut lab, 28);
    assert!(lab.agent(b).retracts.is_empty());
    wait(&mut lab, 3);
    assert!(retracted(&lab, b, "10.1.1.3/32"));
    assert!(!retracted(&lab, b, "10.1.1.5/32"));
    assert!(lab.agent(b).route(VRF1, "10.1.1.5/32").is_some());
}

#[test]
fn gr_disabled_withdraws_at_once_as_before() {
    // no parameters at all (TF's default: disabled)
    let (env, mut lab, a, b) = lab_with_routes(None);
    lab.step(Input::Disconnected { conn: a });
    assert!(retracted(&lab, b, "10.1.1.3/32"));
    assert!(retracted(&lab, b, "10.1.1.5/32"));
    assert_eq!(neighbor(&lab, "host1")["state"], "Idle");
    // enabled but without xmpp_helper_enable: still not graceful
    let mut off = gr_on(60, 30);
    off["xmpp_helper_enable"] = json!(false);
    lab.set_gr(&env, off);
    let a2 = lab.connect("host1");
    lab.subscribe(a2, VRF1, 3);
    lab.announce(a2, "10.1.1.7", 21);
    wait(&mut lab, 1);
    assert!(lab.agent(b).route(VRF1, "10.1.1.7/32").is_some());
    lab.step(Input::Disconnected { conn: a2 });
    assert!(retracted(&lab, b, "10.1.1.7/32"));
    assert_eq!(lab.node.counters().gr_closes, 0);
}

#[test]
fn restart_time_zero_is_not_graceful() {
    let (_env, mut lab, a, b) = lab_with_routes(Some(gr_on(0, 30)));
    lab.step(Input::Disconnected { conn: a });
    assert!(retracted(&lab, b, "10.1.1.3/32"));
}

#[test]
fn a_second_close_restales_and_keeps_the_time_already_spent() {
    let (_env, mut lab, a, b) = lab_with_routes(Some(gr_on(60, 300)));
    lab.step(Input::Disconnected { conn: a });
    wait(&mut lab, 20);
    let a2 = lab.connect("host1");
    lab.subscribe(a2, VRF1, 3);
    lab.announce(a2, "10.1.1.3", 17);
    wait(&mut lab, 10);
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), Some(false));
    // t = 30: down again; the fresh path is stale again, 30 s of the 60 are left
    lab.step(Input::Disconnected { conn: a2 });
    wait(&mut lab, 1);
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), Some(true));
    assert_eq!(
        neighbor(&lab, "host1")["graceful_restart"]["closes"],
        json!(2)
    );
    wait(&mut lab, 27);
    assert!(lab.agent(b).retracts.is_empty());
    wait(&mut lab, 3);
    assert!(retracted(&lab, b, "10.1.1.3/32"));
    assert!(retracted(&lab, b, "10.1.1.5/32"));
}

#[test]
fn a_new_session_replacing_the_old_one_is_a_graceful_restart() {
    let (_env, mut lab, a, b) = lab_with_routes(Some(gr_on(60, 30)));
    // the agent restarted before the old session's hold timer noticed
    let a2 = lab.connect("host1");
    assert!(lab.agent(a).closed);
    assert!(lab.agent(b).retracts.is_empty());
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), Some(true));
    lab.subscribe(a2, VRF1, 3);
    lab.announce(a2, "10.1.1.3", 17);
    // re-published with another label: fresh, and the change reaches host2
    lab.announce(a2, "10.1.1.5", 29);
    eor(&mut lab, a2, "host1");
    wait(&mut lab, 1);
    assert!(lab.agent(b).retracts.is_empty());
    assert_eq!(stale(&lab, T1, "10.1.1.5/32"), Some(false));
    let r = lab.agent(b).route(VRF1, "10.1.1.5/32").unwrap();
    assert_eq!(
        r.next_hops[0].label,
        Some(filament_wire_xmpp::NhLabel::Value(29))
    );
}

#[test]
fn withdrawing_or_unsubscribing_removes_stale_paths_at_once() {
    let (_env, mut lab, a, b) = lab_with_routes(Some(gr_on(60, 30)));
    lab.step(Input::Disconnected { conn: a });
    let a2 = lab.connect("host1");
    lab.subscribe(a2, VRF1, 3);
    // withdraw one stale path without re-publishing it
    lab.publish(
        a2,
        VRF1,
        VN1,
        "10.1.1.3",
        "192.168.0.1",
        17,
        CollectionOp::Dissociate,
    );
    wait(&mut lab, 1);
    assert!(retracted(&lab, b, "10.1.1.3/32"));
    assert!(!retracted(&lab, b, "10.1.1.5/32"));
    // unsubscribing vn1 takes the other one
    lab.unsubscribe(a2, VRF1);
    wait(&mut lab, 1);
    assert!(retracted(&lab, b, "10.1.1.5/32"));
}

#[test]
fn evpn_paths_are_deleted_at_a_graceful_close_inet6_ones_kept() {
    let (_env, mut lab, a, b) = lab_with_routes(Some(gr_on(60, 30)));
    lab.publish_evpn_and_v6(a, VRF1, VN1, 90);
    wait(&mut lab, 1);
    let mac = "02:00:00:00:00:01,10.1.1.3/32";
    assert!(lab.agent(b).route(VRF1, mac).is_some());
    assert!(lab.agent(b).route(VRF1, "fd00::3/128").is_some());
    lab.step(Input::Disconnected { conn: a });
    wait(&mut lab, 1);
    // peer_close_manager.cc: no GR for EVPN; inet6 is kept like inet
    assert!(retracted(&lab, b, mac));
    assert!(!retracted(&lab, b, "fd00::3/128"));
    assert_eq!(
        stale(&lab, "default-domain:p:vn1:vn1.inet6.0", "fd00::3/128"),
        Some(true)
    );
    assert_eq!(lab.node.counters().gr_deleted, 1);
    assert_eq!(lab.node.counters().gr_staled, 3);
}

#[test]
fn replicas_in_another_instance_show_stale_and_stay_until_the_sweep() {
    let mut env = two_networks();
    env.policy_between("p", "vn1", "vn2");
    env.derive();
    let mut lab = Lab::new();
    lab.sync(&env);
    lab.set_gr(&env, gr_on(60, 30));
    let a = lab.connect("host1");
    let c = lab.connect("host2");
    lab.subscribe(a, VRF1, 3);
    lab.subscribe(c, VRF2, 6);
    lab.announce(a, "10.1.1.3", 17);
    wait(&mut lab, 1);
    let t2 = "default-domain:p:vn2:vn2.inet.0";
    assert!(lab.agent(c).route(VRF2, "10.1.1.3/32").is_some());
    assert_eq!(stale(&lab, t2, "10.1.1.3/32"), Some(false));
    lab.step(Input::Disconnected { conn: a });
    wait(&mut lab, 5);
    // the copy in vn2 (a secondary path) is stale too, and still pushed
    assert_eq!(stale(&lab, t2, "10.1.1.3/32"), Some(true));
    assert!(lab.agent(c).retracts.is_empty());
    wait(&mut lab, 56);
    assert!(lab
        .agent(c)
        .retracts
        .iter()
        .any(|(vrf, id)| vrf == VRF2 && id == "10.1.1.3/32"));
    assert_eq!(stale(&lab, t2, "10.1.1.3/32"), None);
}

#[test]
fn hold_timer_expiry_is_graceful_and_a_config_change_keeps_the_running_timer() {
    let (env, mut lab, a, b) = lab_with_routes(Some(gr_on(60, 30)));
    // host1 goes silent; host2 keeps its session alive
    for _ in 0..10 {
        lab.step(Input::Bytes {
            conn: b,
            data: KEEPALIVE_BYTES.to_vec(),
        });
        lab.advance(Duration::from_secs(1));
    }
    assert!(lab.agent(a).closed, "hold timer (9 s) expired");
    assert!(lab.agent(b).retracts.is_empty());
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), Some(true));
    // a shorter restart_time now applies to later closes, not to this restart
    // (closed at t = 9 s: the restart timer fires at 69 s; now is 12 s)
    lab.set_gr(&env, gr_on(5, 30));
    wait(&mut lab, 55);
    assert!(lab.agent(b).retracts.is_empty());
    wait(&mut lab, 3);
    assert!(retracted(&lab, b, "10.1.1.3/32"));
}

/// An agent with `n` routes flaps and re-publishes the same routes, then End-of-RIB, with
/// no time passing: the bytes the other agent receives meanwhile.
fn flap_cost(params: Option<Value>, n: u32) -> usize {
    let (_env, mut lab, a, b) = lab_with_routes(params);
    let ips: Vec<String> = (0..n)
        .map(|i| format!("10.1.{}.{}", 2 + i / 250, i % 250 + 1))
        .collect();
    for ip in &ips {
        lab.announce(a, ip, 17);
    }
    lab.step(Input::Tick);
    let before = lab.agent(b).bytes;
    lab.step(Input::Disconnected { conn: a });
    let a2 = lab.connect("host1");
    lab.subscribe(a2, VRF1, 3);
    lab.subscribe(a2, VRF2, 4);
    lab.announce(a2, "10.1.1.3", 17);
    lab.announce(a2, "10.1.1.5", 19);
    for ip in &ips {
        lab.announce(a2, ip, 17);
    }
    eor(&mut lab, a2, "host1");
    assert!(lab.node.restarting_agents().next().is_none());
    assert_eq!(lab.node.rib().table(T1).unwrap().len(), n as usize + 2);
    lab.agent(b).bytes - before
}

#[test]
fn a_flap_with_identical_republish_costs_the_other_agents_nothing() {
    let n = 500;
    let without = flap_cost(None, n);
    let with = flap_cost(Some(gr_on(60, 30)), n);
    println!("{n} routes, agent flap + identical re-publish: {without} bytes to another agent without GR, {with} with GR");
    // without GR: a retract and an item per route; with GR: not a byte
    assert!(without > 2 * n as usize * 20, "{without}");
    assert_eq!(with, 0);
}

#[test]
fn out_of_range_parameters_are_clamped_to_tf_bounds() {
    let env = two_networks();
    let mut lab = Lab::new();
    lab.sync(&env);
    lab.set_gr(
        &env,
        json!({"enable": true, "xmpp_helper_enable": true,
               "restart_time": u64::MAX, "end_of_rib_timeout": u64::MAX}),
    );
    let p = lab.node.gr_params();
    assert!(p.xmpp_helper);
    assert_eq!(p.restart_time, Duration::from_secs(4095));
    assert_eq!(p.end_of_rib_timeout, Duration::from_secs(4095));
    // wrong types: TF's defaults, helper off unless both flags are booleans set to true
    lab.set_gr(
        &env,
        json!({"enable": "yes", "xmpp_helper_enable": true, "restart_time": "x"}),
    );
    let p = lab.node.gr_params();
    assert!(!p.xmpp_helper);
    assert_eq!(p.restart_time, Duration::from_secs(300));
}

/// `llgr_stale` of host1's path to `prefix` in `table`.
fn llgr_stale(lab: &Lab, table: &str, prefix: &str) -> Option<bool> {
    let v = lab.node.routes(Some(table), Some(prefix));
    let paths = v["tables"][0]["routes"][0]["paths"].as_array()?.clone();
    paths
        .iter()
        .find(|p| p["source"].as_str().is_some_and(|s| s.contains("host1")))
        .map(|p| p["llgr_stale"] == true)
}

/// TF's `BgpXmppPeerClose::IsCloseLongLivedGraceful`: past the restart time, with a
/// non-zero `long_lived_restart_time`, an agent's stale paths stay LLGR-stale (ranked
/// last, sent to BGP peers with LLGR_STALE) until that timer fires too; back in time,
/// what it re-publishes is fresh and End-of-RIB sweeps the rest.
#[test]
fn past_the_restart_time_paths_are_llgr_stale_until_the_long_lived_timer() {
    let (_env, mut lab, a, b) = lab_with_routes(Some(gr_llgr(10, 30, 100)));
    lab.node.enable_bgp_changes();
    lab.step(Input::Disconnected { conn: a });
    wait(&mut lab, 9);
    assert_eq!(llgr_stale(&lab, T1, "10.1.1.3/32"), Some(false));
    assert_eq!(
        neighbor(&lab, "host1")["graceful_restart"]["state"],
        "GR_TIMER"
    );
    wait(&mut lab, 2);
    // LLGR: still there, stale and LLGR-stale, in the VN and in bgp.l3vpn.0
    assert_eq!(
        neighbor(&lab, "host1")["graceful_restart"]["state"],
        "LLGR_TIMER"
    );
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), Some(true));
    assert_eq!(llgr_stale(&lab, T1, "10.1.1.3/32"), Some(true));
    assert_eq!(llgr_stale(&lab, "bgp.l3vpn.0", "10.1.1.5/32"), Some(true));
    assert!(lab.agent(b).route(VRF1, "10.1.1.3/32").is_some());
    assert_eq!(lab.node.counters().gr_llgr_staled, 2);
    // BGP peers hear the VPN routes again, now with LLGR_STALE
    let bgp = lab.node.take_bgp_changes();
    let keys: Vec<String> = bgp["bgp.l3vpn.0"].iter().map(|k| k.to_string()).collect();
    assert!(
        keys.contains(&"192.168.0.1:3:10.1.1.3/32".to_string()),
        "{keys:?}"
    );
    let vpn = lab.node.rib().table("bgp.l3vpn.0").unwrap();
    let route = vpn.get("192.168.0.1:3:10.1.1.3/32").unwrap();
    let key =
        filament_control::bgp_peers::route_key("bgp.l3vpn.0", "192.168.0.1:3:10.1.1.3/32").unwrap();
    let adv = filament_control::bgp_peers::advert("bgp.l3vpn.0", &key, Some(route), 64512).unwrap();
    assert!(adv
        .attrs
        .communities
        .contains(&filament_wire_bgp::LLGR_STALE));

    // back within the long-lived time: the re-published path is fresh, EoR sweeps the other
    let a2 = lab.connect("host1");
    lab.subscribe(a2, VRF1, 3);
    lab.announce(a2, "10.1.1.3", 17);
    wait(&mut lab, 1);
    assert_eq!(llgr_stale(&lab, T1, "10.1.1.3/32"), Some(false));
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), Some(false));
    assert_eq!(llgr_stale(&lab, T1, "10.1.1.5/32"), Some(true));
    eor(&mut lab, a2, "host1");
    assert!(retracted(&lab, b, "10.1.1.5/32"));
    assert!(neighbor(&lab, "host1")["graceful_restart"].is_null());

    // away again past both timers: everything goes
    lab.step(Input::Disconnected { conn: a2 });
    wait(&mut lab, 11);
    assert_eq!(llgr_stale(&lab, T1, "10.1.1.3/32"), Some(true));
    wait(&mut lab, 100);
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), None);
    assert!(retracted(&lab, b, "10.1.1.3/32"));
    assert!(neighbor(&lab, "host1")["graceful_restart"].is_null());
}

/// TF's nested close in LLGR_TIMER (`PeerCloseManager::CloseInternal`): lost again
/// during LLGR before End-of-RIB, the agent gets the GR timer again (less the GR time
/// spent in earlier closes), then LLGR for the long-lived time not yet spent
/// (`llgr_elapsed_`): the path it re-published becomes LLGR-stale too, and everything
/// is gone at restart + long-lived time counted over both closes.
#[test]
fn a_close_during_llgr_runs_the_gr_timer_again_then_the_rest_of_the_long_lived_time() {
    let (_env, mut lab, a, b) = lab_with_routes(Some(gr_llgr(10, 300, 100)));
    lab.step(Input::Disconnected { conn: a });
    wait(&mut lab, 11);
    assert_eq!(
        neighbor(&lab, "host1")["graceful_restart"]["state"],
        "LLGR_TIMER"
    );
    // t = 51: back, re-publishes 10.1.1.3 only, no End-of-RIB; t = 61: lost again
    wait(&mut lab, 40);
    let a2 = lab.connect("host1");
    lab.subscribe(a2, VRF1, 3);
    lab.announce(a2, "10.1.1.3", 17);
    wait(&mut lab, 10);
    assert_eq!(llgr_stale(&lab, T1, "10.1.1.3/32"), Some(false));
    assert_eq!(llgr_stale(&lab, T1, "10.1.1.5/32"), Some(true));
    lab.step(Input::Disconnected { conn: a2 });
    wait(&mut lab, 1);
    let gr = neighbor(&lab, "host1")["graceful_restart"].clone();
    assert_eq!(
        (gr["state"].clone(), gr["closes"].clone()),
        (json!("GR_TIMER"), json!(2))
    );
    assert_eq!(stale(&lab, T1, "10.1.1.3/32"), Some(true));
    assert_eq!(llgr_stale(&lab, T1, "10.1.1.3/32"), Some(false));
    // the GR timer again (10 s), then LLGR: the re-published path is LLGR-stale too
    wait(&mut lab, 10);
    assert_eq!(
        neighbor(&lab, "host1")["graceful_restart"]["state"],
        "LLGR_TIMER"
    );
    assert_eq!(llgr_stale(&lab, T1, "10.1.1.3/32"), Some(true));
    // 50 of the 100 long-lived seconds were spent before the second close
    let left = neighbor(&lab, "host1")["graceful_restart"]["restart_remaining_secs"]
        .as_u64()
        .unwrap();
    assert!((48..=50).contains(&left), "{left}");
    assert!(lab.agent(b).retracts.is_empty());
    wait(&mut lab, left + 1);
    assert!(retracted(&lab, b, "10.1.1.3/32"));
    assert!(retracted(&lab, b, "10.1.1.5/32"));
    assert!(neighbor(&lab, "host1")["graceful_restart"].is_null());
}
