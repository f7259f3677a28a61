//! EVPN broadcast (BUM) between agents and BGP peers, as TF's control node does it:
//! an agent's broadcast route (`ff:ff:ff:ff:ff:ff,0.0.0.0/32`) becomes an EVPN type-3
//! (Inclusive Multicast Ethernet Tag, RFC 7432 §7.3) route toward BGP peers, RD
//! `<vRouter>:<instance-id>`, with the PMSI Tunnel attribute (RFC 7432 §11.2, ingress
//! replication to the vRouter); BGP peers' type-3 routes join the `<olist>` of the one
//! broadcast item each such agent gets (`xmpp_message_builder.cc` `AddEnetReach`), and are
//! never pushed as MAC items (an agent of ours would bridge ff:ff:ff:ff:ff:ff to one VTEP).

#![allow(clippy::unwrap_used)]

mod common;

use common::{olist_of, two_networks, Lab, VRF1};

const VRF2: &str = "default-domain:p:vn2:vn2";
use filament_bgp::RouteKey;
use filament_control::bgp_peers::{advert, route_key};
use filament_control::rib::{Family, PathAttrs, PeerId};
use filament_control::{ConnId, Input};
use filament_wire_bgp::{EvpnRoute, PmsiTunnel, PmsiTunnelType, PMSI_TUNNEL};
use filament_wire_xmpp::{
    route_iqs, CollectionOp, Entry, NextHop, NhLabel, Nlri, RouteNode, TunnelEncap,
};

/// The id of the broadcast item an agent gets (what its retract parser reads back).
const BUM_ID: &str = "ff:ff:ff:ff:ff:ff,0.0.0.0/32";

/// `c` (its vRouter at `nh`) publishes or withdraws its broadcast route in VRF1: VXLAN,
/// label = the VNI.
fn publish_bum(lab: &mut Lab, c: ConnId, seq: u64, nh: &str, vni: u32, op: CollectionOp) {
    publish_bum_in(lab, VRF1, c, seq, nh, vni, op);
}

/// [`publish_bum`] in `vrf`.
fn publish_bum_in(
    lab: &mut Lab,
    vrf: &str,
    c: ConnId,
    seq: u64,
    nh: &str,
    vni: u32,
    op: CollectionOp,
) {
    let name = lab.agents[&c].name.clone();
    let node = RouteNode::parse("25/242/ff:ff:ff:ff:ff:ff,0.0.0.0/32").unwrap();
    let e = Entry {
        nlri: Nlri {
            af: 25,
            safi: 242,
            mac: Some("ff:ff:ff:ff:ff:ff".into()),
            address: Some("0.0.0.0/32".into()),
            ..Nlri::default()
        },
        next_hops: vec![NextHop {
            af: 1,
            address: nh.into(),
            label: Some(NhLabel::Value(vni)),
            tunnel_encapsulation: vec![TunnelEncap::Vxlan],
            ..NextHop::default()
        }],
        ..Entry::default()
    };
    let (p, col) = route_iqs(&name, seq, vrf, node, e, op);
    lab.send(c, &(p.to_element().to_xml() + &col.to_element().to_xml()));
}

/// A BGP peer's type-3 route in VRF1's import target, as the BGP link adds it
/// (`bgp_peers::learned`: key `ff:ff:ff:ff:ff:ff,<originator>/32`, PMSI label).
fn add_bgp_type3(lab: &mut Lab, vtep: &str, vni: u32) {
    let rt = lab.import_target(VRF1);
    lab.node.rib_mut().add_vpn(
        Family::Evpn,
        &format!("{vtep}:2"),
        &format!("ff:ff:ff:ff:ff:ff,{vtep}/32"),
        PeerId::Bgp(vtep.into()),
        vni,
        PathAttrs {
            next_hop: vtep.into(),
            encap: vec!["vxlan".into()],
            route_targets: [rt].into_iter().collect(),
            ..PathAttrs::default()
        },
    );
    lab.step(Input::Tick);
}

/// Item 1 of the brief: the agent's broadcast route reaches `bgp.evpn.0` as the vRouter's
/// type-3 route (RD `<vRouter>:<instance-id>`, originator = the vRouter) and what BGP peers
/// are sent for it carries the PMSI Tunnel attribute (ingress replication, label = VNI,
/// endpoint = the vRouter) and VRF1's export target; the withdrawal removes it.
#[test]
fn an_agent_s_broadcast_route_goes_to_bgp_as_type3_with_pmsi() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 2);
    publish_bum(&mut lab, a, 1, "192.168.0.1", 5001, CollectionOp::Associate);
    lab.step(Input::Tick);
    let key = "192.168.0.1:2:ff:ff:ff:ff:ff:ff,192.168.0.1/32";
    let table = lab.node.rib().table("bgp.evpn.0").unwrap();
    let route = table
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| panic!("no {key} in {:?}", table.keys().collect::<Vec<_>>()));
    let bgp_key = route_key("bgp.evpn.0", key).unwrap();
    let RouteKey::Evpn(k) = &bgp_key else {
        panic!("{bgp_key:?}");
    };
    let EvpnRoute::InclusiveMulticast { orig_ip, .. } = &k.0 else {
        panic!("not a type 3: {k:?}");
    };
    assert_eq!(orig_ip.to_string(), "192.168.0.1");
    let sent = advert("bgp.evpn.0", &bgp_key, Some(&route), 64512).unwrap();
    let pmsi = sent
        .attrs
        .other
        .iter()
        .find(|o| o.1 == PMSI_TUNNEL)
        .and_then(|o| PmsiTunnel::decode(&o.2))
        .expect("a PMSI Tunnel attribute");
    assert_eq!(pmsi.tunnel_type, PmsiTunnelType::IngressReplication);
    assert_eq!(pmsi.label.value(), 5001);
    assert_eq!(pmsi.endpoint(), Some("192.168.0.1".parse().unwrap()));
    let export = lab.node.instances()[VRF1].export.clone();
    assert!(!export.is_empty());
    for rt in &export {
        assert!(
            route.paths[0].attrs.route_targets.contains(rt),
            "{rt} missing"
        );
    }
    // withdrawn: gone from BGP
    publish_bum(
        &mut lab,
        a,
        2,
        "192.168.0.1",
        5001,
        CollectionOp::Dissociate,
    );
    lab.step(Input::Tick);
    let table = lab.node.rib().table("bgp.evpn.0");
    assert!(table.is_none_or(|t| t.keys().all(|k| k != key)));
}

/// Item 2: a BGP peer's type-3 route joins the broadcast `<olist>` of an agent that
/// published its broadcast route (next hop = the originator, label = the PMSI label,
/// vxlan), never as a MAC item (not to that agent, nor to an agent of ours, which publishes
/// no broadcast route); its withdrawal leaves the agent alone again (a retract).
#[test]
fn a_bgp_peer_s_type3_joins_the_olist_and_leaves_it() {
    let mut lab = Lab::synced(&two_networks());
    let a = lab.join("host1", VRF1, 2);
    let b = lab.join("host2", VRF1, 1);
    publish_bum(&mut lab, a, 1, "192.168.0.1", 5001, CollectionOp::Associate);
    lab.step(Input::Tick);
    // alone: nothing to replicate to
    assert!(lab.agent(a).route(VRF1, BUM_ID).is_none());
    add_bgp_type3(&mut lab, "10.0.0.9", 5001);
    let got = lab.agent(a).route(VRF1, BUM_ID).unwrap();
    assert!(got.next_hops.is_empty());
    assert_eq!(
        olist_of(got),
        [("10.0.0.9".into(), "5001".into(), "vxlan".into())]
    );
    for c in [a, b] {
        let bum_items: Vec<_> = lab
            .agent(c)
            .routes
            .keys()
            .filter(|(_, id)| id.contains("ff:ff:ff:ff:ff:ff") && id != BUM_ID)
            .collect();
        assert!(bum_items.is_empty(), "pushed as MAC items: {bum_items:?}");
    }
    assert!(lab.agent(b).route(VRF1, BUM_ID).is_none());
    // a second agent's broadcast route: host1's list has both, each once
    let c = lab.join("host3", VRF1, 4);
    publish_bum(&mut lab, c, 1, "192.168.0.3", 5001, CollectionOp::Associate);
    lab.step(Input::Tick);
    let mut got: Vec<String> = olist_of(lab.agent(a).route(VRF1, BUM_ID).unwrap())
        .into_iter()
        .map(|(addr, _, _)| addr)
        .collect();
    got.sort();
    assert_eq!(got, ["10.0.0.9", "192.168.0.3"]);
    // the peer withdraws: host1 keeps host3 only, then host3 goes and host1 is alone
    lab.node.rib_mut().del_vpn(
        Family::Evpn,
        "10.0.0.9:2",
        "ff:ff:ff:ff:ff:ff,10.0.0.9/32",
        &PeerId::Bgp("10.0.0.9".into()),
    );
    lab.step(Input::Tick);
    let got = olist_of(lab.agent(a).route(VRF1, BUM_ID).unwrap());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "192.168.0.3");
    lab.step(Input::Disconnected { conn: c });
    lab.step(Input::Tick);
    assert!(lab.agent(a).route(VRF1, BUM_ID).is_none());
    assert!(lab
        .agent(a)
        .retracts
        .iter()
        .any(|(v, i)| v == VRF1 && i == BUM_ID));
}

/// An agent's broadcast leg imported into another VN by route target (a policy connects
/// vn1 and vn2: each imports the other's target) joins that VN's olists, as TF's
/// `EvpnManager` makes the imported inclusive-multicast route a remote node of the
/// importing instance; it leaves them with the route.
#[test]
fn a_broadcast_leg_imported_by_route_target_joins_that_vn_s_olist() {
    let mut env = two_networks();
    env.policy_between("p", "vn1", "vn2");
    env.derive();
    let mut lab = Lab::synced(&env);
    let a = lab.join("host1", VRF1, 2);
    let b = lab.join("host2", VRF2, 3);
    publish_bum_in(
        &mut lab,
        VRF1,
        a,
        1,
        "192.168.0.1",
        5001,
        CollectionOp::Associate,
    );
    publish_bum_in(
        &mut lab,
        VRF2,
        b,
        1,
        "192.168.0.2",
        5002,
        CollectionOp::Associate,
    );
    lab.step(Input::Tick);
    let got = lab
        .agent(b)
        .route(VRF2, BUM_ID)
        .expect("host2 replicates to host1");
    assert_eq!(
        olist_of(got),
        [("192.168.0.1".into(), "5001".into(), "vxlan".into())]
    );
    let got = lab
        .agent(a)
        .route(VRF1, BUM_ID)
        .expect("and host1 to host2");
    assert_eq!(
        olist_of(got),
        [("192.168.0.2".into(), "5002".into(), "vxlan".into())]
    );
    // host1's route goes: host2 is alone in vn2's replication again
    publish_bum_in(
        &mut lab,
        VRF1,
        a,
        2,
        "192.168.0.1",
        5001,
        CollectionOp::Dissociate,
    );
    lab.step(Input::Tick);
    assert!(lab.agent(b).route(VRF2, BUM_ID).is_none());
}
