//! The RIB's replication by route targets and the BGP hook (tf-facts §3).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use filament_control::rib::{Family, InstanceTargets, Origin, PathAttrs, PeerId, Rib};

fn targets(import: &[&str], export: &[&str]) -> Option<InstanceTargets> {
    Some(InstanceTargets {
        import: import.iter().map(|s| s.to_string()).collect(),
        export: export.iter().map(|s| s.to_string()).collect(),
    })
}

fn attrs(nh: &str, rts: &[&str]) -> PathAttrs {
    PathAttrs {
        next_hop: nh.into(),
        local_pref: 100,
        route_targets: rts.iter().map(|s| s.to_string()).collect(),
        ..PathAttrs::default()
    }
}

#[test]
fn bgp_vpn_route_lands_in_importing_instances_only() {
    let mut rib = Rib::new();
    rib.set_instance("red", targets(&["target:64512:1"], &["target:64512:1"]));
    rib.set_instance("blue", targets(&["target:64512:2"], &["target:64512:2"]));
    let peer = PeerId::Bgp("10.0.0.9".into());
    rib.add_vpn(
        Family::Inet,
        "10.0.0.9:5",
        "172.20.0.0/16",
        peer.clone(),
        100,
        attrs("10.0.0.9", &["target:64512:1"]),
    );
    let red = rib.table("red.inet.0").unwrap();
    assert_eq!(red["172.20.0.0/16"].paths[0].peer, peer);
    assert!(matches!(
        red["172.20.0.0/16"].paths[0].origin,
        Origin::Secondary { .. }
    ));
    assert!(rib.table("blue.inet.0").is_none());
    // blue starts importing red's target: the route follows
    rib.set_instance(
        "blue",
        targets(&["target:64512:2", "target:64512:1"], &["target:64512:2"]),
    );
    assert!(rib
        .table("blue.inet.0")
        .unwrap()
        .contains_key("172.20.0.0/16"));
    let dirty = rib.take_dirty();
    assert!(dirty["blue.inet.0"].contains(&"172.20.0.0/16".into()));
    rib.del_vpn(Family::Inet, "10.0.0.9:5", "172.20.0.0/16", &peer);
    assert!(rib.table("red.inet.0").is_none() && rib.table("blue.inet.0").is_none());
    assert!(rib.table("bgp.l3vpn.0").is_none());
}

#[test]
fn local_paths_export_with_instance_targets_and_prefer_xmpp_on_tie() {
    let mut rib = Rib::new();
    rib.set_instance("red", targets(&["target:64512:1"], &["target:64512:1"]));
    let agent = PeerId::Xmpp("host1".into());
    rib.add_local(
        "red",
        Family::Inet,
        "10.1.1.3/32",
        agent.clone(),
        Some("192.168.0.1:1".into()),
        100,
        attrs("192.168.0.1", &[]),
    );
    let vpn = rib.table("bgp.l3vpn.0").unwrap();
    let p = &vpn["192.168.0.1:1:10.1.1.3/32"].paths[0];
    assert_eq!(
        p.attrs.route_targets,
        BTreeSet::from(["target:64512:1".to_string()])
    );
    // a BGP path with equal attributes for the same prefix: ECMP, XMPP first
    rib.add_vpn(
        Family::Inet,
        "10.0.0.9:1",
        "10.1.1.3/32",
        PeerId::Bgp("10.0.0.9".into()),
        100,
        attrs("10.0.0.9", &["target:64512:1"]),
    );
    let r = &rib.table("red.inet.0").unwrap()["10.1.1.3/32"];
    assert_eq!(r.best().len(), 2);
    assert_eq!(r.paths[0].peer, agent);
    // a higher local-pref wins alone
    let mut better = attrs("10.0.0.10", &["target:64512:1"]);
    better.local_pref = 200;
    rib.add_vpn(
        Family::Inet,
        "10.0.0.10:1",
        "10.1.1.3/32",
        PeerId::Bgp("10.0.0.10".into()),
        100,
        better,
    );
    let r = &rib.table("red.inet.0").unwrap()["10.1.1.3/32"];
    assert_eq!(r.best().len(), 1);
    assert_eq!(r.best()[0].attrs.next_hop, "10.0.0.10");
    // the agent goes away: its primary and VPN copy go, the BGP paths stay
    rib.remove_peer(&agent);
    let r = &rib.table("red.inet.0").unwrap()["10.1.1.3/32"];
    assert!(r.paths.iter().all(|p| matches!(p.peer, PeerId::Bgp(_))));
    assert!(!rib
        .table("bgp.l3vpn.0")
        .unwrap()
        .contains_key("192.168.0.1:1:10.1.1.3/32"));
}

#[test]
fn bgp_learned_vpn_paths_are_not_dirty_but_agent_paths_and_replicas_are() {
    let mut rib = Rib::new();
    let peer = PeerId::Bgp("10.0.0.9".into());
    for i in 0..100 {
        rib.add_vpn(
            Family::Inet,
            "100:1",
            &format!("10.0.0.{i}/32"),
            peer.clone(),
            16,
            attrs("10.0.0.9", &["target:64512:1"]),
        );
    }
    // nothing reads BGP paths' changes in the global table: no dirty keys
    assert!(rib.take_dirty().is_empty());
    let vpn = rib.table("bgp.l3vpn.0").unwrap();
    assert_eq!(
        (vpn.len(), vpn.paths(), vpn.primary_paths()),
        (100, 100, 100)
    );
    // an agent's path is exported: its VPN key is dirty (the BGP link advertises it)
    rib.add_local(
        "red",
        Family::Inet,
        "10.1.1.3/32",
        PeerId::Xmpp("host1".into()),
        Some("192.168.0.1:1".into()),
        17,
        attrs("192.168.0.1", &[]),
    );
    let dirty = rib.take_dirty();
    assert!(dirty["bgp.l3vpn.0"].contains(&"192.168.0.1:1:10.1.1.3/32".into()));
    assert!(dirty["red.inet.0"].contains(&"10.1.1.3/32".into()));
    // an importing instance makes BGP routes dirty there (agents get them)
    rib.set_instance("blue", targets(&["target:64512:1"], &[]));
    let dirty = rib.take_dirty();
    assert_eq!(dirty["blue.inet.0"].len(), 100);
    assert!(!dirty.contains_key("bgp.l3vpn.0"));
    let blue = rib.table("blue.inet.0").unwrap();
    assert_eq!((blue.paths(), blue.secondary_paths()), (100, 100));
    rib.del_vpn(Family::Inet, "100:1", "10.0.0.7/32", &peer);
    let dirty = rib.take_dirty();
    assert_eq!(
        dirty["blue.inet.0"]
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
        vec!["10.0.0.7/32".to_string()]
    );
    assert_eq!(rib.table("bgp.l3vpn.0").unwrap().paths(), 100);
    // summary rows come from the counters and match a walk
    for row in rib.summary() {
        let t = rib.table(&row.name).unwrap();
        let walked: usize = t.entries().map(|(_, r)| r.paths.len()).sum();
        assert_eq!((row.prefixes, row.paths), (t.len(), walked), "{}", row.name);
    }
}
