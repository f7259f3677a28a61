//! Loc-RIB unit tests: compact keys round-trip, labels round-trip (inline
//! and spilled), attribute interning, best path, tombstones and id reuse.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::*;
use crate::types::{Attrs, EvpnKey, Path, RouteKey};
use filament_wire_bgp::{Esi, EvpnRoute, LabelField, RouteDistinguisher};

fn peer(n: u8) -> Source {
    Source::Peer(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)))
}

fn cand(src: Source, key: &RouteKey, labels: Vec<u32>, attrs: Arc<Attrs>) -> Cand {
    Cand {
        src,
        path: Path {
            key: key.clone(),
            labels: labels.into(),
            attrs,
        },
        ebgp: true,
        peer_id: Ipv4Addr::new(1, 1, 1, 1),
        from_client: false,
    }
}

fn vpn(rd: &str, p: &str) -> RouteKey {
    RouteKey::Vpn(rd.parse().unwrap(), p.parse().unwrap())
}

#[test]
fn keys_round_trip_through_the_compact_form() {
    let keys = [
        vpn("100:1", "10.1.2.3/32"),
        vpn("10.0.0.1:7", "10.1.0.0/16"),
        vpn("4200000000:9", "0.0.0.0/0"),
        RouteKey::Vpn(
            RouteDistinguisher::from_bytes([0, 9, 1, 2, 3, 4, 5, 6]),
            "1.2.3.4/31".parse().unwrap(),
        ),
        vpn("100:1", "2001:db8::/64"),
        RouteKey::Inet("192.0.2.0/24".parse().unwrap()),
        RouteKey::Evpn(Box::new(EvpnKey(EvpnRoute::EthernetAd {
            rd: "100:2".parse().unwrap(),
            esi: Esi::default(),
            eth_tag: 0,
            label: LabelField::new(0).unwrap(),
        }))),
    ];
    for k in keys {
        let ck = Ck::new(&k);
        assert_eq!(ck.key(), k);
        assert_eq!(ck.family(), k.family());
    }
    assert_eq!(std::mem::size_of::<Ck>(), 16);
}

#[test]
fn labels_pack_inline_or_spill() {
    let mut rib = Rib::default();
    let a = Arc::new(Attrs::default());
    let stacks: [Vec<u32>; 5] = [
        vec![],
        vec![16],
        vec![0xff_ffff, 5],
        vec![1, 1 << 30],
        vec![1, 2, 3],
    ];
    for (i, l) in stacks.iter().enumerate() {
        let k = vpn("100:1", &format!("10.0.0.{i}/32"));
        rib.set(&k, peer(1), Some(cand(peer(1), &k, l.clone(), a.clone())));
        assert_eq!(
            &rib.best(&k).unwrap().path.labels[..],
            &l[..],
            "stack {l:?}"
        );
    }
    // Replacing a spilled stack with an inline one frees the side entry.
    let k = vpn("100:1", "10.0.0.4/32");
    rib.set(&k, peer(1), Some(cand(peer(1), &k, vec![9], a.clone())));
    assert_eq!(rib.best(&k).unwrap().path.labels[..], [9]);
    assert_eq!(rib.overflow.len(), 1, "only 10.0.0.3's stack is spilled");
}

#[test]
fn equal_attribute_sets_share_one_arc() {
    let mut rib = Rib::default();
    let mk = || {
        Arc::new(Attrs {
            med: Some(5),
            ..Attrs::default()
        })
    };
    let (a1, a2) = (mk(), mk());
    let (k1, k2) = (vpn("100:1", "10.0.0.1/32"), vpn("100:2", "10.0.0.1/32"));
    rib.set(&k1, peer(1), Some(cand(peer(1), &k1, vec![1], a1)));
    rib.set(&k2, peer(1), Some(cand(peer(1), &k2, vec![1], a2)));
    let (b1, b2) = (rib.best(&k1).unwrap(), rib.best(&k2).unwrap());
    assert!(Arc::ptr_eq(&b1.path.attrs, &b2.path.attrs));
    assert_eq!(rib.attr_sets(), 1);
    assert_eq!(rib.len(), 2);
}

#[test]
fn best_path_and_candidates() {
    let mut rib = Rib::default();
    let k = vpn("100:1", "10.0.0.1/32");
    let short = Arc::new(Attrs::default());
    let mut long = Attrs::default();
    long.prepend(65001);
    let long = Arc::new(long);
    assert!(rib
        .set(&k, peer(2), Some(cand(peer(2), &k, vec![1], long.clone())))
        .is_some());
    assert!(rib
        .set(&k, peer(1), Some(cand(peer(1), &k, vec![2], short)))
        .is_some());
    assert_eq!(rib.best(&k).unwrap().src, peer(1), "shorter AS path wins");
    assert_eq!(rib.candidates(&k).len(), 2);
    assert!(rib.has(&k, peer(2)));
    assert!(rib.same(peer(2), &cand(peer(2), &k, vec![1], long.clone()).path));
    assert!(!rib.same(peer(2), &cand(peer(2), &k, vec![3], long).path));
    // Removing the non-best candidate does not change the best.
    assert!(rib.set(&k, peer(2), None).is_none());
    assert_eq!(rib.keys_from(peer(1)), vec![k.clone()]);
    assert!(rib.keys_from(peer(2)).is_empty());
}

#[test]
fn tombstones_keep_their_id_until_released() {
    let mut rib = Rib::default();
    let a = Arc::new(Attrs::default());
    let k = vpn("100:1", "10.0.0.1/32");
    let id = rib
        .set(&k, peer(1), Some(cand(peer(1), &k, vec![1], a.clone())))
        .unwrap();
    assert_eq!(rib.set(&k, peer(1), None), Some(id));
    assert!(rib.is_empty() && rib.best(&k).is_none());
    assert_eq!(rib.id_of(&k), Some(id), "a tombstone keeps its id");
    assert_eq!(rib.key_of(id), Some(k.clone()));
    assert_eq!(rib.take_emptied(), vec![id]);
    rib.release(id);
    assert_eq!(rib.id_of(&k), None);
    // The id is reused for the next new key.
    let k2 = vpn("100:1", "10.0.0.2/32");
    assert_eq!(
        rib.set(&k2, peer(1), Some(cand(peer(1), &k2, vec![1], a))),
        Some(id)
    );
    assert_eq!(rib.key_of(id), Some(k2));
    assert!(rib.ids(None) == vec![id]);
}

#[test]
fn learn_answers_has_and_same_and_sets_like_set() {
    let mut rib = Rib::default();
    let mut twin = Rib::default();
    let k = vpn("100:1", "10.0.0.1/32");
    let a = Arc::new(Attrs::default());
    let mut longer = Attrs::default();
    longer.prepend(65001);
    let longer = Arc::new(longer);
    // new: no candidate before, best changed
    let (has, same, changed) = rib.learn(cand(peer(1), &k, vec![5], a.clone()));
    assert_eq!((has, same), (false, false));
    assert_eq!(
        changed,
        twin.set(&k, peer(1), Some(cand(peer(1), &k, vec![5], a.clone())))
    );
    assert!(changed.is_some());
    // an exact repeat: nothing set
    assert_eq!(
        rib.learn(cand(peer(1), &k, vec![5], a.clone())),
        (true, true, None)
    );
    // another label: replaced, the best source's path changed
    let (has, same, changed) = rib.learn(cand(peer(1), &k, vec![6], a.clone()));
    assert_eq!((has, same), (true, false));
    assert_eq!(changed, rib.id_of(&k));
    // a worse path from another source: kept, best unchanged
    let (has, same, changed) = rib.learn(cand(peer(2), &k, vec![7], longer));
    assert_eq!((has, same, changed), (false, false, None));
    assert_eq!(rib.candidates(&k).len(), 2);
    assert_eq!(rib.best(&k).unwrap().path.labels[..], [6]);
}

#[test]
fn index_growth_keeps_every_key_and_skips_released_ids() {
    let mut rib = Rib::default();
    let a = Arc::new(Attrs::default());
    let key = |i: u32| {
        vpn(
            &format!("100:{}", i % 7),
            &format!("10.{}.{}.0/24", i >> 8, i & 255),
        )
    };
    let add = |rib: &mut Rib, i: u32| {
        let k = key(i);
        rib.set(&k, peer(1), Some(cand(peer(1), &k, vec![i], a.clone())))
    };
    // several growths of the index, then a third of the keys withdrawn and released
    for i in 0..3000 {
        assert!(add(&mut rib, i).is_some());
    }
    for i in (0..3000).filter(|i| i % 3 == 0) {
        rib.set(&key(i), peer(1), None);
    }
    for id in rib.take_emptied() {
        rib.release(id);
    }
    // ids are reused, then the index grows again past its size
    for i in 3000..9000 {
        assert!(add(&mut rib, i).is_some());
    }
    for i in 0..9000 {
        let want = i >= 3000 || i % 3 != 0;
        assert_eq!(rib.id_of(&key(i)).is_some(), want, "key {i}");
        assert_eq!(rib.best(&key(i)).is_some(), want, "key {i}");
    }
    assert_eq!(rib.len(), 8000);
}
