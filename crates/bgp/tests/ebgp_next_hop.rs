//! The next hop a gateway (eBGP) is sent for a VPN route whose next hop is
//! inside our AS. Two control nodes a and b (iBGP mesh, AS 64512) and a
//! gateway c (AS 65001) peered with b: a's agent route (next hop = the
//! vRouter) reaches c from b with the vRouter as next hop, as TF sends it,
//! not b's address: b forwards nothing, and c would send the vRouter's label
//! to b. A route b learned from another AS still gets next hop self.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use filament_wire_bgp::{AsPath, AsSegment};

const RT_X: &str = "target:64512:8000001";

#[test]
fn another_control_nodes_route_keeps_the_vrouter_as_next_hop_towards_a_gateway() {
    let mut net = Net::new();
    let a = net.add("10.0.0.1", 64512, None);
    let b = net.add("10.0.0.2", 64512, None);
    let c = net.add("10.0.0.3", 65001, None);
    let d = net.add("10.0.0.4", 65002, None);
    net.connect(a, b);
    net.connect(b, c);
    net.connect(d, b);
    for i in [a, b, c, d] {
        want_all(&mut net, i);
    }
    // a's agent route, next hop the vRouter.
    let p = vpn_path("192.0.2.1:2", "10.1.1.3/32", 17, "192.0.2.1", RT_X);
    net.input(a, filament_bgp::Input::Advertise(p.clone()));
    net.run();
    let at_c = net
        .best(c, &p.key)
        .expect("a's route reaches the gateway through b");
    assert_eq!(
        at_c.attrs.next_hop,
        Some(ip("192.0.2.1")),
        "the vRouter, not b"
    );
    assert_eq!(at_c.labels[..], [17]);
    assert_eq!(
        at_c.attrs.as_path,
        AsPath(vec![AsSegment::Sequence(vec![64512])])
    );
    assert_eq!(at_c.attrs.local_pref, None);
    // d's route (another AS) reaches c with b as next hop.
    let q = vpn_path("65002:1", "10.9.0.0/16", 30, "10.0.0.4", RT_X);
    net.input(d, filament_bgp::Input::Advertise(q.clone()));
    net.run();
    let at_c = net.best(c, &q.key).expect("d's route reaches c through b");
    assert_eq!(at_c.attrs.next_hop, Some(ip("10.0.0.2")), "next hop self");
    assert_eq!(
        at_c.attrs.as_path,
        AsPath(vec![AsSegment::Sequence(vec![64512, 65002])])
    );
}
