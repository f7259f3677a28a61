//! Unit tests of the RIB's interning.
use super::*;

fn attrs(med: u32) -> PathAttrs {
    PathAttrs {
        next_hop: "10.77.0.5".into(),
        med,
        encap: vec!["gre".into(), "udp".into()],
        local_pref: 100,
        route_targets: ["target:64512:1".to_string()].into(),
        ..PathAttrs::default()
    }
}

#[test]
fn equal_attribute_sets_are_stored_once() {
    let mut rib = Rib::new();
    let peer = PeerId::Bgp("10.77.0.5".into());
    for i in 0..100 {
        let p = format!("10.0.0.{i}/32");
        // A label per prefix (kept in the path), two MEDs.
        rib.add_vpn(
            Family::Inet,
            "100:1",
            &p,
            peer.clone(),
            16 + i,
            attrs(i % 2),
        );
    }
    assert_eq!(rib.attr_sets(), 2);
    let t = rib.table("bgp.l3vpn.0").unwrap();
    let (a, b, c) = (
        &t["100:1:10.0.0.0/32"].paths[0],
        &t["100:1:10.0.0.2/32"].paths[0],
        &t["100:1:10.0.0.1/32"].paths[0],
    );
    assert!(Arc::ptr_eq(&a.attrs, &b.attrs));
    assert!(!Arc::ptr_eq(&a.attrs, &c.attrs));
    assert_eq!((a.attrs.med, c.attrs.med), (0, 1));
    assert_eq!((a.label, b.label, c.label), (16, 18, 17));
    // peer names and RDs are one allocation each
    let (PeerId::Bgp(pa), PeerId::Bgp(pc)) = (&a.peer, &c.peer) else {
        panic!("BGP paths");
    };
    assert!(Name::ptr_eq(pa, pc));
    assert!(Name::ptr_eq(a.rd.as_ref().unwrap(), c.rd.as_ref().unwrap()));
}

#[test]
fn unused_attribute_sets_are_dropped_from_the_pool() {
    let mut rib = Rib::new();
    let peer = PeerId::Bgp("10.77.0.5".into());
    for i in 0..3000u32 {
        let p = format!("10.0.{}.{}/32", i >> 8, i & 255);
        rib.add_vpn(Family::Inet, "100:1", &p, peer.clone(), 16, attrs(i));
        rib.del_vpn(Family::Inet, "100:1", &p, &peer);
    }
    assert!(rib.table("bgp.l3vpn.0").is_none());
    assert!(rib.attr_sets() <= 1024, "swept: {}", rib.attr_sets());
}
