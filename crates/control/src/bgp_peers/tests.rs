//! Unit tests of the BGP link: keys and adverts to and from BGP paths, peers from config.

use super::*;

#[test]
fn vpn_keys_and_adverts_round_trip_through_bgp_paths() {
    let key = route_key("bgp.l3vpn.0", "192.0.2.1:2:10.1.1.3/32").unwrap();
    assert_eq!(
        key,
        RouteKey::Vpn(
            "192.0.2.1:2".parse().unwrap(),
            "10.1.1.3/32".parse().unwrap()
        )
    );
    let attrs = PathAttrs {
        next_hop: "192.0.2.1".into(),
        encap: vec!["gre".into(), "udp".into()],
        local_pref: 100,
        med: 100,
        route_targets: ["target:64512:8000001".to_string()].into(),
        security_groups: vec![8000002],
        origin_vn_id: Some(5),
        ..PathAttrs::default()
    };
    let route = Route {
        paths: [crate::rib::Path {
            peer: PeerId::Xmpp("vr1".into()),
            rd: Some("192.0.2.1:2".into()),
            label: 17,
            attrs: Arc::new(attrs.clone()),
            origin: crate::rib::Origin::Primary,
            vrf: None,
        }]
        .into_iter()
        .collect(),
    };
    let p = advert("bgp.l3vpn.0", &key, Some(&route), 64512).unwrap();
    assert_eq!(p.labels[..], [17]);
    assert_eq!(p.attrs.next_hop, Some("192.0.2.1".parse().unwrap()));
    let (fam, rd, rest, label, back) = learned(&p).unwrap();
    assert_eq!(
        (fam, rd.as_str(), rest.as_str()),
        (Family::Inet, "192.0.2.1:2", "10.1.1.3/32")
    );
    assert_eq!(label, 17);
    assert_eq!(back.encap, vec!["gre".to_string(), "udp".to_string()]);
    assert_eq!(back.route_targets, attrs.route_targets);
    assert_eq!(back.security_groups, vec![8000002]);
    assert_eq!(back.origin_vn_id, Some(5));
    // Paths learned over BGP are never re-advertised by the link.
    let mut bgp_only = route.clone();
    bgp_only.paths[0].peer = PeerId::Bgp("10.0.0.9".into());
    assert!(advert("bgp.l3vpn.0", &key, Some(&bgp_only), 64512).is_none());
}

fn bgp_router(uuid: &str, name: &str, params: Value, refs: &[&str]) -> filament_config::StoredObj {
    let mut fq: Vec<String> = FABRIC_RI.iter().map(|s| s.to_string()).collect();
    fq.push(name.into());
    let refs: Vec<Value> = refs
        .iter()
        .map(|u| json!({"uuid": u, "attr": {}}))
        .collect();
    serde_json::from_value(
        json!({"type": "bgp-router", "uuid": uuid, "fq_name": fq, "seq": 1,
        "props": {"bgp_router_parameters": params}, "refs": {"bgp_router_refs": refs}}),
    )
    .unwrap()
}

/// The node's cluster id turns route reflection on; its iBGP peers are clients unless
/// their bgp-router names another cluster (another reflector), as in TF.
#[test]
fn cluster_id_makes_peers_route_reflector_clients() {
    let mut g = ConfigGraph::new();
    let node = |cluster: Option<u32>| {
        let mut p = json!({"address": "10.0.0.1", "identifier": "10.0.0.1",
            "autonomous_system": 64512, "router_type": "control-node"});
        if let Some(c) = cluster {
            p["cluster_id"] = json!(c);
        }
        bgp_router("u-cn1", "cn1", p, &[])
    };
    let peer = |addr: &str, cluster: Option<u32>| {
        let mut p = json!({"address": addr, "autonomous_system": 64512,
            "address_families": {"family": ["inet-vpn"]}});
        if let Some(c) = cluster {
            p["cluster_id"] = json!(c);
        }
        p
    };
    g.apply("u-cn1", Some(node(Some(0x0a00_0001))));
    // refs in either direction make a peering
    g.apply(
        "u-a",
        Some(bgp_router("u-a", "a", peer("10.0.0.2", None), &["u-cn1"])),
    );
    g.apply(
        "u-b",
        Some(bgp_router(
            "u-b",
            "b",
            peer("10.0.0.3", Some(0x0a00_0001)),
            &["u-cn1"],
        )),
    );
    g.apply(
        "u-rr2",
        Some(bgp_router("u-rr2", "rr2", peer("10.0.0.4", Some(7)), &[])),
    );
    let mut cn1 = g.get("u-cn1").unwrap().clone();
    cn1.refs.insert(
        "bgp_router_refs".into(),
        vec![serde_json::from_value(json!({"uuid": "u-rr2", "attr": {}})).unwrap()],
    );
    g.apply("u-cn1", Some(cn1));
    let bc = bgp_config(&g, "cn1");
    assert_eq!(bc.cluster_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
    let client = |a: &str| {
        bc.peers
            .iter()
            .find(|p| p.address.to_string() == a)
            .map(|p| p.rr_client)
    };
    assert_eq!(
        client("10.0.0.2"),
        Some(true),
        "no cluster id of its own: client"
    );
    assert_eq!(client("10.0.0.3"), Some(true), "our cluster id: client");
    assert_eq!(
        client("10.0.0.4"),
        Some(false),
        "another cluster: a reflector, not a client"
    );
    // Without a cluster id on the node: iBGP full mesh, nobody is a client.
    let mut cn1 = g.get("u-cn1").unwrap().clone();
    cn1.props.insert(
        "bgp_router_parameters".into(),
        node(None).props["bgp_router_parameters"].clone(),
    );
    g.apply("u-cn1", Some(cn1));
    let bc = bgp_config(&g, "cn1");
    assert_eq!(bc.cluster_id, None);
    assert_eq!(bc.peers.len(), 3);
    assert!(bc.peers.iter().all(|p| !p.rr_client));
}

#[test]
fn evpn_and_rtarget_keys() {
    let k = route_key("bgp.evpn.0", "192.0.2.1:2:02:00:00:00:00:01,10.1.1.3/32").unwrap();
    let RouteKey::Evpn(b) = &k else {
        panic!("{k:?}");
    };
    let EvpnRoute::MacIp { mac, ip, .. } = &b.0 else {
        panic!("{k:?}");
    };
    assert_eq!(mac.to_string(), "02:00:00:00:00:01");
    assert_eq!(*ip, Some("10.1.1.3".parse().unwrap()));
    let r = route_key(RTARGET_TABLE, "64512:target:64512:8000001").unwrap();
    assert_eq!(r.to_string(), "64512:target:64512:8000001");
}

/// An agent's broadcast route (`ff:ff:ff:ff:ff:ff,<vRouter>`) goes out as EVPN type 3 with
/// the PMSI Tunnel attribute RFC 7432 §11.2 requires (ingress replication to the vRouter,
/// the VNI in the label field), and a peer's type-3 route comes back to the same key with
/// that label.
#[test]
fn type3_carries_a_pmsi_tunnel_both_ways() {
    let table = "bgp.evpn.0";
    let key = route_key(table, "10.77.0.9:3:ff:ff:ff:ff:ff:ff,10.77.0.9/32").unwrap();
    let RouteKey::Evpn(b) = &key else {
        panic!("{key:?}");
    };
    assert!(
        matches!(b.0, EvpnRoute::InclusiveMulticast { .. }),
        "{key:?}"
    );
    let route = |encap: &str, label: u32| Route {
        paths: [crate::rib::Path {
            peer: PeerId::Xmpp("vr1".into()),
            rd: Some("10.77.0.9:3".into()),
            label,
            attrs: Arc::new(PathAttrs {
                next_hop: "10.77.0.9".into(),
                encap: vec![encap.into()],
                route_targets: ["target:64512:8000001".to_string()].into(),
                ..PathAttrs::default()
            }),
            origin: crate::rib::Origin::Primary,
            vrf: None,
        }]
        .into_iter()
        .collect(),
    };
    // VXLAN: the VNI as it is.
    let p = advert(table, &key, Some(&route("vxlan", 5001)), 64512).unwrap();
    let pmsi = pmsi_of(&p.attrs).expect("a PMSI Tunnel attribute");
    assert_eq!(
        pmsi.tunnel_type,
        filament_wire_bgp::PmsiTunnelType::IngressReplication
    );
    assert_eq!(pmsi.label.value(), 5001);
    assert_eq!(pmsi.endpoint(), Some("10.77.0.9".parse().unwrap()));
    assert_eq!(
        p.attrs
            .other
            .iter()
            .find(|o| o.1 == PMSI_TUNNEL)
            .map(|o| o.0),
        Some(0xC0),
        "optional transitive"
    );
    let (fam, rd, rest, label, back) = learned(&p).unwrap();
    assert_eq!(
        (fam, rd.as_str(), rest.as_str(), label),
        (
            Family::Evpn,
            "10.77.0.9:3",
            "ff:ff:ff:ff:ff:ff,10.77.0.9/32",
            5001
        )
    );
    assert_eq!(back.encap, vec!["vxlan".to_string()]);
    // MPLS: the label in the high 20 bits.
    let p = advert(table, &key, Some(&route("udp", 40)), 64512).unwrap();
    assert_eq!(pmsi_of(&p.attrs).unwrap().label.value(), 40 << 4 | 1);
    assert_eq!(learned(&p).unwrap().3, 40);
    // Type 2 routes carry none.
    let mac = route_key(table, "10.77.0.9:3:02:00:00:00:00:01,10.1.1.3/32").unwrap();
    let p = advert(table, &mac, Some(&route("vxlan", 5001)), 64512).unwrap();
    assert!(pmsi_of(&p.attrs).is_none());
    // A peer's type 3 without the attribute is still kept, with label 0.
    let mut bare = (*p.attrs).clone();
    bare.other.clear();
    let bare = BgpPath {
        key: key.clone(),
        labels: LabelStack::new(),
        attrs: Arc::new(bare),
    };
    assert_eq!(learned(&bare).unwrap().3, 0);
}

/// A control node (vendor `contrail` or none) speaks in the global ASN and expects it of
/// control-node peers, whatever their bgp-routers still say (TF's schema transformer
/// rewrites them); an external router keeps its own AS, with or without a vendor.
#[test]
fn control_nodes_follow_the_global_asn() {
    let mut g = ConfigGraph::new();
    let gsc: filament_config::StoredObj = serde_json::from_value(json!({
        "type": "global-system-config", "uuid": "u-gsc", "fq_name": ["default-global-system-config"],
        "seq": 1, "props": {"autonomous_system": 64600}, "refs": {}}))
    .unwrap();
    g.apply("u-gsc", Some(gsc));
    let cn = |addr: &str, vendor: Option<&str>| {
        let mut p = json!({"address": addr, "identifier": addr, "autonomous_system": 64512,
            "router_type": "control-node"});
        if let Some(v) = vendor {
            p["vendor"] = json!(v);
        }
        p
    };
    g.apply(
        "u-cn1",
        Some(bgp_router("u-cn1", "cn1", cn("10.0.0.1", None), &[])),
    );
    g.apply(
        "u-cn2",
        Some(bgp_router(
            "u-cn2",
            "cn2",
            cn("10.0.0.2", Some("Contrail")),
            &["u-cn1"],
        )),
    );
    let ext = json!({"address": "10.0.0.3", "autonomous_system": 65001, "router_type": "router"});
    g.apply("u-gw", Some(bgp_router("u-gw", "gw", ext, &["u-cn1"])));
    let mx = json!({"address": "10.0.0.4", "autonomous_system": 64512, "vendor": "mx",
        "router_type": "control-node"});
    g.apply("u-mx", Some(bgp_router("u-mx", "mx", mx, &["u-cn1"])));
    let bc = bgp_config(&g, "cn1");
    assert_eq!(bc.asn, 64600);
    let remote = |a: &str| {
        bc.peers
            .iter()
            .find(|p| p.address.to_string() == a)
            .map(|p| p.remote_as)
    };
    assert_eq!(remote("10.0.0.2"), Some(64600), "control node peer");
    assert_eq!(remote("10.0.0.3"), Some(65001), "external router");
    assert_eq!(
        remote("10.0.0.4"),
        Some(64512),
        "another vendor keeps its AS"
    );
    // the node's local_autonomous_system is the AS its sessions use (TF's local_as)
    let mut local = cn("10.0.0.1", None);
    local["local_autonomous_system"] = json!(65500);
    g.apply("u-cn1", Some(bgp_router("u-cn1", "cn1", local, &[])));
    assert_eq!(bgp_config(&g, "cn1").asn, 65500);
}

/// A peering link's session attributes override the peer's bgp-router as TF's
/// NeighborSetSessionAttributes does: admin_down, passive, hold time, families (the
/// attributes without a bgp_router first, else this node's); a peer's
/// local_autonomous_system is its AS; this node's admin_down takes every peer down.
#[test]
fn session_attributes_of_the_peering_apply() {
    let mut g = ConfigGraph::new();
    let cn = json!({"address": "10.0.0.1", "identifier": "10.0.0.1", "autonomous_system": 64512,
        "router_type": "control-node"});
    let peer = json!({"address": "10.0.0.2", "autonomous_system": 65001, "hold_time": 90,
        "local_autonomous_system": 65100, "address_families": {"family": ["inet-vpn", "e-vpn"]}});
    g.apply("u-cn1", Some(bgp_router("u-cn1", "cn1", cn.clone(), &[])));
    let mut p = bgp_router("u-p", "p", peer, &[]);
    let attr = json!({"session": [{"attributes": [
        {"bgp_router": "p", "hold_time": 7},
        {"bgp_router": "cn1", "admin_down": true, "passive": true, "hold_time": 30,
         "address_families": {"family": ["inet-vpn"]}}]}]});
    p.refs.insert(
        "bgp_router_refs".into(),
        vec![serde_json::from_value(json!({"uuid": "u-cn1", "attr": attr})).unwrap()],
    );
    g.apply("u-p", Some(p));
    let bc = bgp_config(&g, "cn1");
    let pc = &bc.peers[0];
    assert_eq!(pc.remote_as, 65100, "local_autonomous_system");
    assert!(pc.admin_down && pc.passive);
    assert_eq!(
        pc.hold_time,
        Some(30),
        "this node's attributes, not the peer's"
    );
    assert_eq!(pc.families, vec![filament_bgp::Family::InetVpn]);

    // Without session attributes: the peer's own parameters; this node admin down.
    let mut q = g.get("u-p").unwrap().clone();
    q.refs.insert(
        "bgp_router_refs".into(),
        vec![serde_json::from_value(json!({"uuid": "u-cn1", "attr": {}})).unwrap()],
    );
    g.apply("u-p", Some(q));
    let bc = bgp_config(&g, "cn1");
    let pc = &bc.peers[0];
    assert!(!pc.admin_down && !pc.passive);
    assert_eq!((pc.hold_time, pc.families.len()), (Some(90), 2));
    let mut down = cn;
    down["admin_down"] = json!(true);
    g.apply("u-cn1", Some(bgp_router("u-cn1", "cn1", down, &[])));
    assert!(bgp_config(&g, "cn1").peers[0].admin_down);
}
