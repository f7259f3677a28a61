//! Adj-RIB-Out behaviour of the compact speaker: a full table goes out in
//! chunks with End-of-RIB last (RFC 4724 §2), update groups share encodings
//! only between peers that are sent the same thing, a new RT membership
//! (RFC 4684) sends only what was not sent yet, and a withdrawn
//! destination's id is reused only after its withdrawal went out.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use filament_bgp::core::FLUSH_CHUNK;
use filament_bgp::{Event, Family, Input, LabelStack, Path, RouteKey, State};

const RT_X: &str = "target:64512:8000001";
const RT_Y: &str = "target:64512:8000002";

fn inet(i: u32) -> RouteKey {
    let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
    RouteKey::Inet(format!("{a}/32").parse().unwrap())
}

fn learned_from(net: &Net, i: usize, key: &RouteKey) -> usize {
    net.nodes[i]
        .events
        .iter()
        .filter(|e| matches!(e, Event::Learned { path, .. } if path.key == *key))
        .count()
}

#[test]
fn full_table_goes_out_in_chunks_with_end_of_rib_last() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    let n = (2 * FLUSH_CHUNK + 100) as u32;
    let base = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", RT_X);
    for i in 0..n {
        net.input(
            a,
            Input::Advertise(Path {
                key: inet(i),
                labels: LabelStack::new(),
                attrs: base.attrs.clone(),
            }),
        );
    }
    net.connect(a, b);
    assert_eq!(net.state(b, a), State::Established);
    let ev = &net.nodes[b].events;
    let learned = ev
        .iter()
        .filter(|e| matches!(e, Event::Learned { .. }))
        .count();
    assert_eq!(learned, n as usize, "every route arrives");
    // one event per UPDATE (per attribute set in it), not one per route
    let events = net.nodes[b].learned_events;
    assert!(
        events > 0 && events * 100 < n as usize,
        "{events} LearnedMany events for {n} routes"
    );
    let eor = ev
        .iter()
        .position(|e| matches!(e, Event::EndOfRib { family, .. } if *family == Family::Inet))
        .expect("End-of-RIB for inet");
    let last = ev
        .iter()
        .rposition(|e| matches!(e, Event::Learned { .. }))
        .unwrap();
    assert!(eor > last, "End-of-RIB after the last route");
    assert_eq!(net.nodes[b].core.rib().len(), n as usize);
}

#[test]
fn reflector_clients_and_an_ebgp_peer_each_get_their_own_attributes() {
    let mut net = Net::new();
    let rr = net.add("10.0.0.1", 64512, Some("1.1.1.1"));
    let src = net.add("10.0.0.2", 64512, None);
    let c1 = net.add("10.0.0.3", 64512, None);
    let c2 = net.add("10.0.0.4", 64512, None);
    let e = net.add("10.0.0.5", 65001, None);
    for x in [src, c1, c2, e] {
        net.attach(x, rr, x != e, false);
    }
    net.run();
    let paths: Vec<Path> = (0..50)
        .map(|i| {
            vpn_path(
                "192.0.2.1:2",
                &format!("10.1.{i}.0/24"),
                100 + i,
                "192.0.2.1",
                RT_X,
            )
        })
        .collect();
    for p in &paths {
        net.input(src, Input::Advertise(p.clone()));
    }
    net.run();
    for p in &paths {
        for c in [c1, c2] {
            let got = net.best(c, &p.key).expect("reflected to every client");
            assert_eq!(got.labels, p.labels);
            assert_eq!(got.attrs.originator_id, Some(v4("10.0.0.2")));
            assert_eq!(got.attrs.cluster_list, vec![v4("1.1.1.1")]);
            assert!(got.attrs.as_path.0.is_empty());
        }
        let got = net.best(e, &p.key).expect("sent to the eBGP peer");
        assert_eq!(got.labels, p.labels);
        assert_eq!(got.attrs.first_as(), Some(64512), "eBGP: own AS prepended");
        assert!(got.attrs.cluster_list.is_empty() && got.attrs.originator_id.is_none());
        assert_eq!(got.attrs.local_pref, None);
        assert!(net.best(src, &p.key).unwrap().attrs.originator_id.is_none());
    }
}

#[test]
fn new_membership_sends_only_routes_not_sent_yet() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    net.connect(a, b);
    let x = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", RT_X);
    let y = vpn_path("192.0.2.1:3", "10.2.2.3/32", 18, "192.0.2.1", RT_Y);
    net.input(a, Input::Advertise(x.clone()));
    net.input(a, Input::Advertise(y.clone()));
    net.input(b, Input::Advertise(rtc_path(64512, RT_X)));
    net.run();
    assert_eq!(learned_from(&net, b, &x.key), 1);
    assert_eq!(learned_from(&net, b, &y.key), 0);
    net.input(b, Input::Advertise(rtc_path(64512, RT_Y)));
    net.run();
    assert_eq!(learned_from(&net, b, &y.key), 1);
    assert_eq!(
        learned_from(&net, b, &x.key),
        1,
        "x was already sent: a membership change does not resend it"
    );
    // A changed path is sent again even though the key was sent before.
    let mut x2 = x.clone();
    x2.labels = LabelStack::from_slice(&[99]);
    net.input(a, Input::Advertise(x2.clone()));
    net.run();
    assert_eq!(net.best(b, &x.key).unwrap().labels[..], [99]);
}

#[test]
fn withdrawn_destination_id_is_reused_only_after_the_withdrawal() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    net.connect(a, b);
    let attrs = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", RT_X).attrs;
    let path = |i| Path {
        key: inet(i),
        labels: LabelStack::new(),
        attrs: attrs.clone(),
    };
    net.input(a, Input::Advertise(path(1)));
    net.run();
    assert!(net.best(b, &inet(1)).is_some());
    // Withdraw 1 and originate 2 and 3 before one flush: 1's slot is not
    // given to 2 or 3 before b was told 1 is gone.
    let now = net.now;
    net.nodes[a].core.apply(now, Input::Withdraw(inet(1)));
    net.nodes[a].core.apply(now, Input::Advertise(path(2)));
    net.nodes[a].core.apply(now, Input::Advertise(path(3)));
    net.nodes[a].core.flush();
    net.run();
    assert!(net.best(b, &inet(1)).is_none());
    assert!(net.best(b, &inet(2)).is_some() && net.best(b, &inet(3)).is_some());
    // Now the slot is free; a new key reuses it and b gets that key, not 1.
    net.input(a, Input::Advertise(path(4)));
    net.run();
    assert!(net.best(b, &inet(4)).is_some());
    assert!(net.best(b, &inet(1)).is_none());
    assert_eq!(net.nodes[b].core.rib().len(), 3);
    assert_eq!(net.peer(a, b).adj_out.len(), 3);
}
