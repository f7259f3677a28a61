//! RFC 4684 §3.2 on a route reflector: which RT-membership path each peer
//! is sent, so that every client that asked for a route target is in the
//! VPN route distribution graph of every other one; and what the
//! reflector does about the default membership (0:0:0/0).
//!
//! The clients are speaker cores too, so they apply RT-constraint to what
//! they send the reflector: a client that was never told about a target
//! keeps its routes for that target to itself, as GoBGP or FRR would.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use filament_bgp::rib::{Cand, Source};
use filament_bgp::{Family, Input, RouteKey, State};
use filament_wire_bgp::RtcRoute;

const RT_X: &str = "target:64512:8000001";
const RT_Y: &str = "target:64512:8000002";
const RR: &str = "10.0.0.2";

/// The RT-membership paths node `i` holds from node `from` (its Adj-RIB-In).
fn membership_from(net: &Net, i: usize, from: usize) -> Vec<Cand> {
    let from = Source::Peer(net.nodes[from].addr);
    let rib = net.nodes[i].core.rib();
    rib.keys(Some(Family::RouteTarget))
        .iter()
        .flat_map(|k| rib.candidates(k))
        .filter(|c| c.src == from)
        .collect()
}

fn rtc_key(rt: &str) -> RouteKey {
    rtc_path(64512, rt).key
}

/// `a` and `c`, both clients of the reflector `b`, both ask for target X.
fn two_clients_want_x() -> (Net, usize, usize, usize) {
    let (mut net, a, b, c) = rr_clients(Some(RR));
    for i in [a, c] {
        net.input(i, Input::Advertise(rtc_path(64512, RT_X)));
    }
    net.run();
    (net, a, b, c)
}

#[test]
fn each_client_is_told_about_the_other_clients_membership() {
    let (net, a, b, c) = two_clients_want_x();
    // Both NLRIs are 64512:X; the reflector's best is one client's. The
    // other is sent that one; the best's owner must be sent the other's.
    for i in [a, c] {
        let got = membership_from(&net, i, b);
        assert_eq!(
            got.iter().map(|c| c.path.key.clone()).collect::<Vec<_>>(),
            vec![rtc_key(RT_X)],
            "client {} has the reflector's membership for X",
            net.nodes[i].addr
        );
        // RFC 4684 §3.2 (i): ORIGINATOR_ID is the reflector's router id.
        assert_eq!(got[0].path.attrs.originator_id, Some(v4(RR)));
    }
}

#[test]
fn vpn_routes_cross_between_two_clients_wanting_the_same_target() {
    let (mut net, a, _b, c) = two_clients_want_x();
    let from_a = vpn_path("192.0.2.1:2", "10.1.1.1/32", 17, "192.0.2.1", RT_X);
    let from_c = vpn_path("192.0.2.3:2", "10.1.1.3/32", 18, "192.0.2.3", RT_X);
    net.input(a, Input::Advertise(from_a.clone()));
    net.input(c, Input::Advertise(from_c.clone()));
    net.run();
    assert!(net.best(c, &from_a.key).is_some(), "a's route reaches c");
    assert!(net.best(a, &from_c.key).is_some(), "c's route reaches a");
}

#[test]
fn the_other_clients_withdrawal_takes_the_membership_back() {
    let (mut net, a, b, c) = two_clients_want_x();
    let from_a = vpn_path("192.0.2.1:2", "10.1.1.1/32", 17, "192.0.2.1", RT_X);
    net.input(a, Input::Advertise(from_a.clone()));
    net.run();
    assert!(net.best(c, &from_a.key).is_some());
    // c no longer wants X: a is not told about X any more (c still is: a
    // wants it).
    net.input(c, Input::Withdraw(rtc_key(RT_X)));
    net.run();
    assert!(membership_from(&net, a, b).is_empty());
    assert_eq!(membership_from(&net, c, b).len(), 1);
    assert!(net.best(c, &from_a.key).is_none());
    assert!(
        net.best(b, &from_a.key).is_none(),
        "a stops sending X routes to a reflector nobody behind wants them"
    );
    // And again: c asks, a is told, a's route reaches c.
    net.input(c, Input::Advertise(rtc_path(64512, RT_X)));
    net.run();
    assert_eq!(membership_from(&net, a, b).len(), 1);
    assert!(net.best(c, &from_a.key).is_some());
}

#[test]
fn a_lone_client_is_not_sent_its_own_membership_back() {
    let (mut net, a, b, _c) = rr_clients(Some(RR));
    net.input(a, Input::Advertise(rtc_path(64512, RT_X)));
    net.run();
    assert!(
        membership_from(&net, a, b).is_empty(),
        "nobody else wants X: a keeps its X routes"
    );
}

/// Reflector `b` (cluster RR) with non-clients `n` and `m` and client `c`.
fn with_non_clients() -> (Net, usize, usize, usize, usize) {
    let mut net = Net::new();
    let n = net.add("10.0.0.1", 64512, None);
    let b = net.add(RR, 64512, Some(RR));
    let c = net.add("10.0.0.3", 64512, None);
    let m = net.add("10.0.0.4", 64512, None);
    for (x, client) in [(n, false), (c, true), (m, false)] {
        net.attach(x, b, client, true);
    }
    net.run();
    for x in [n, c, m] {
        assert_eq!(net.state(x, b), State::Established);
    }
    (net, n, b, c, m)
}

#[test]
fn non_clients_are_sent_the_client_path_when_a_non_client_path_is_best() {
    let (mut net, n, b, c, m) = with_non_clients();
    // n (lowest router id) wins the decision process at b.
    net.input(n, Input::Advertise(rtc_path(64512, RT_X)));
    net.input(c, Input::Advertise(rtc_path(64512, RT_X)));
    net.run();
    let best = net.nodes[b].core.rib().best(&rtc_key(RT_X)).unwrap();
    assert_eq!(best.src, Source::Peer(net.nodes[n].addr));
    // RFC 4684 §3.2 (ii): both non-clients get the client's path (reflected:
    // ORIGINATOR_ID is the client's, CLUSTER_LIST the reflector's).
    for i in [n, m] {
        let got = membership_from(&net, i, b);
        assert_eq!(got.len(), 1, "non-client {}", net.nodes[i].addr);
        assert_eq!(got[0].path.attrs.originator_id, Some(v4("10.0.0.3")));
        assert_eq!(got[0].path.attrs.cluster_list, vec![v4(RR)]);
    }
    // So a VPN route from n for X reaches the client.
    let from_n = vpn_path("192.0.2.1:2", "10.1.1.1/32", 17, "192.0.2.1", RT_X);
    net.input(n, Input::Advertise(from_n.clone()));
    net.run();
    assert!(net.best(c, &from_n.key).is_some());
}

#[test]
fn no_default_membership_is_originated_to_clients() {
    // RFC 4684 §4 makes the default membership a choice, and TF's control
    // node never originates one (it only reads it, as the "null" RtGroup).
    let (net, a, b, c) = rr_clients(Some(RR));
    for i in [a, c] {
        assert!(membership_from(&net, i, b).is_empty());
    }
    assert!(net.nodes[b]
        .core
        .rib()
        .best(&RouteKey::Rtc(RtcRoute::DEFAULT))
        .is_none());
}

#[test]
fn a_client_without_route_target_gets_every_reflected_vpn_route() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add(RR, 64512, Some(RR));
    let c = net.add("10.0.0.3", 64512, None);
    for (x, rtc) in [(a, false), (c, true)] {
        net.attach(x, b, true, rtc);
    }
    net.run();
    assert!(!net.negotiated(b, a).families.contains(&Family::RouteTarget));
    // c asks for X; a route from a for X reaches it through the reflector.
    net.input(c, Input::Advertise(rtc_path(64512, RT_X)));
    let from_a = vpn_path("192.0.2.1:2", "10.1.1.1/32", 17, "192.0.2.1", RT_X);
    net.input(a, Input::Advertise(from_a.clone()));
    // The reflector's own route for a target nobody asked for.
    let own = vpn_path("10.0.0.2:2", "10.9.9.9/32", 19, "10.0.0.2", RT_Y);
    net.input(b, Input::Advertise(own.clone()));
    net.run();
    assert!(net.best(c, &from_a.key).is_some());
    assert!(net.best(c, &own.key).is_none(), "c did not ask for Y");
    // a asked for nothing (it cannot), yet it gets the reflector's route:
    // RFC 4684 filtering applies only to peers that negotiated the family.
    assert!(net.best(a, &own.key).is_some());
}

#[test]
fn a_change_that_leaves_a_peers_membership_path_alone_sends_it_nothing() {
    let (mut net, a, b, c) = two_clients_want_x();
    let to_a = net.peer(b, a).stats.updates_out;
    let to_c = net.peer(b, c).stats.updates_out;
    // a's membership path changes (a community); a is still sent c's path,
    // so it hears nothing, while c is sent a's new path.
    let mut p = rtc_path(64512, RT_X);
    std::sync::Arc::make_mut(&mut p.attrs).communities = vec![0xfde8_0001];
    net.input(a, Input::Advertise(p));
    net.run();
    assert_eq!(net.peer(b, a).stats.updates_out, to_a);
    assert_eq!(net.peer(b, c).stats.updates_out, to_c + 1);
    assert_eq!(
        membership_from(&net, c, b)[0].path.attrs.communities,
        vec![0xfde8_0001]
    );
}

/// `b` (AS 64512) with eBGP peers `e1` (AS 65001) and `e2` (AS 65002) that
/// both relay the membership of AS 65009 for X (one NLRI, two paths).
fn two_ebgp_paths_for_one_membership() -> (Net, usize, usize, usize) {
    let mut net = Net::new();
    let e1 = net.add("10.0.1.1", 65001, None);
    let b = net.add(RR, 64512, None);
    let e2 = net.add("10.0.1.2", 65002, None);
    net.connect(e1, b);
    net.connect(e2, b);
    for e in [e1, e2] {
        assert_eq!(net.state(e, b), State::Established);
        net.input(e, Input::Advertise(rtc_path(65009, RT_X)));
    }
    net.run();
    (net, e1, b, e2)
}

#[test]
fn ebgp_memberships_count_only_along_the_best_ebgp_path() {
    let (mut net, e1, b, e2) = two_ebgp_paths_for_one_membership();
    let key = rtc_path(65009, RT_X).key;
    assert_eq!(net.nodes[b].core.rib().candidates(&key).len(), 2);
    // Membership to eBGP peers is plain best-path advertisement: e2 gets
    // e1's path, e1 nothing (no alternative is chosen for an eBGP peer).
    assert!(membership_from(&net, e1, b).is_empty());
    assert_eq!(membership_from(&net, e2, b).len(), 1);
    // The paths tie but for the router id: e1's is best. As TF builds its
    // RT distribution graph (only the best eBGP path's neighbour AS), X's
    // routes go to e1 and not also to e2.
    let x = vpn_path("10.0.0.2:2", "10.1.1.3/32", 17, "10.0.0.2", RT_X);
    net.input(b, Input::Advertise(x.clone()));
    net.run();
    assert!(net.best(e1, &x.key).is_some());
    assert!(net.best(e2, &x.key).is_none(), "not along the best path");
    // e1 withdraws: e2's path is the best one now, and gets the route.
    net.input(e1, Input::Withdraw(key));
    net.run();
    assert!(net.best(e1, &x.key).is_none());
    assert!(net.best(e2, &x.key).is_some());
}
