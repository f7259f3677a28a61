//! Golden-frame tests: frames through the pipeline with tables set up, the
//! exact bytes out compared with tests/golden/*.hex (regenerate with
//! FILAMENT_UPDATE_GOLDEN=1) and the headers checked field by field.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::IpAddr;

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::{ethernet, gre, ip_proto, ipv4, mpls, udp, vxlan};

const UDP_ENCAPS: [TunnelEncap; 3] = [
    TunnelEncap::MplsOverUdp { label: 16 },
    TunnelEncap::MplsOverGre { label: 16 },
    TunnelEncap::Vxlan { vni: 5001 },
];

#[test]
fn bridge_within_vrf_is_unchanged() {
    let mut a = host_a(UDP_ENCAPS[0], false);
    let f = frame_v4(
        vm_mac(4),
        vm_mac(3),
        vm_ip(3),
        vm_ip(4),
        ip_proto::UDP,
        64,
        &udp_l4(1000, 2000, b"x"),
    );
    let (v, out) = run(&mut a, 1, &f);
    assert_eq!(v, Verdict::Transmit(VifId(2)));
    assert_eq!(out, f);
    golden("bridge_within_vrf", &out);
    // Back to the sender's own vif: a loop.
    let (v, _) = run(&mut a, 2, &f);
    assert_eq!(v, Verdict::Drop(DropReason::Loop));
}

#[test]
fn route_via_gateway_mac_rewrites_l2_and_ttl() {
    let mut a = host_a(UDP_ENCAPS[0], false);
    let f = vm_udp_routed(3, vm_ip(4), 1000, 2000);
    let (v, out) = run(&mut a, 1, &f);
    assert_eq!(v, Verdict::Transmit(VifId(2)));
    let eth = ethernet::Frame::new_checked(&out[..]).unwrap();
    assert_eq!(eth.dst(), vm_mac(4).0);
    assert_eq!(eth.src(), GATEWAY_MAC.0);
    let ip = ipv4::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(ip.ttl(), 63);
    assert!(ip.verify_checksum());
    assert_eq!(&out[14 + 20..], &f[14 + 20..], "L4 untouched");
    golden("route_via_gateway", &out);
}

/// Encapsulate VM1 -> VM3 routed on host A, check the outer headers, then
/// decapsulate on host B and check VM3 receives the routed frame.
#[test]
fn routed_encap_and_decap_each_encapsulation() {
    for (encap, name) in UDP_ENCAPS.iter().zip(["mplsoudp", "mplsogre", "vxlan"]) {
        let mut a = host_a(*encap, false);
        let f = vm_udp_routed(3, vm_ip(5), 1000, 2000);
        let (v, out) = run(&mut a, 1, &f);
        assert_eq!(v, Verdict::Transmit(VifId(0)), "{name}");
        golden(&format!("encap_{name}"), &out);

        let eth = ethernet::Frame::new_checked(&out[..]).unwrap();
        assert_eq!(eth.dst(), mac(B_FABRIC_MAC).0);
        assert_eq!(eth.src(), mac(A_FABRIC_MAC).0);
        let ip = ipv4::Packet::new_checked(&out[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src(), ip4(A_FABRIC_IP));
        assert_eq!(ip.dst(), ip4(B_FABRIC_IP));
        let inner_ip = match encap {
            TunnelEncap::MplsOverUdp { .. } => {
                assert_eq!(ip.protocol(), ip_proto::UDP);
                let u = udp::Packet::new_checked(ip.payload()).unwrap();
                assert_eq!(u.dst_port(), 6635);
                assert!((49152..=65535).contains(&u.src_port()));
                let m = mpls::Packet::new_checked(u.payload()).unwrap();
                assert_eq!((m.label(), m.bottom()), (16, true));
                m.payload().to_vec()
            }
            TunnelEncap::MplsOverGre { .. } => {
                assert_eq!(ip.protocol(), ip_proto::GRE);
                let g = gre::Packet::new_checked(ip.payload()).unwrap();
                assert_eq!(g.protocol(), 0x8847);
                let m = mpls::Packet::new_checked(g.payload()).unwrap();
                assert_eq!(m.label(), 16);
                m.payload().to_vec()
            }
            TunnelEncap::Vxlan { .. } => {
                let u = udp::Packet::new_checked(ip.payload()).unwrap();
                assert_eq!(u.dst_port(), 4789);
                let x = vxlan::Packet::new_checked(u.payload()).unwrap();
                assert_eq!(x.vni(), 5001);
                let inner = ethernet::Frame::new_checked(x.payload()).unwrap();
                assert_eq!(
                    inner.dst(),
                    GATEWAY_MAC.0,
                    "routed VXLAN addresses the remote IRB"
                );
                inner.payload().to_vec()
            }
        };
        // The inner IP packet is the VM's, TTL decremented once.
        let mut expect_ip = f[14..].to_vec();
        ipv4::Packet::new_unchecked(&mut expect_ip[..]).decrement_ttl();
        assert_eq!(inner_ip, expect_ip, "{name}");

        let mut b = host_b(false);
        let (v, got) = run(&mut b, 0, &out);
        assert_eq!(v, Verdict::Transmit(VifId(1)), "{name} decap");
        let mut expect = vec![0u8; 14];
        ethernet::Repr {
            dst: vm_mac(5).0,
            src: GATEWAY_MAC.0,
            vlan_tci: None,
            ethertype: 0x0800,
        }
        .emit(&mut expect);
        expect.extend_from_slice(&expect_ip);
        assert_eq!(got, expect, "{name} decap");
        golden(&format!("decap_{name}"), &got);
    }
}

#[test]
fn bridged_vxlan_and_l2_mpls_carry_the_ethernet_frame() {
    for (encap, name) in [
        (TunnelEncap::Vxlan { vni: 5001 }, "vxlan"),
        (TunnelEncap::MplsOverUdp { label: 18 }, "mplsoudp_l2"),
    ] {
        let mut a = host_a(encap, false);
        let f = frame_v4(
            vm_mac(5),
            vm_mac(3),
            vm_ip(3),
            vm_ip(5),
            ip_proto::UDP,
            64,
            &udp_l4(5, 6, b"l2"),
        );
        let (v, out) = run(&mut a, 1, &f);
        assert_eq!(v, Verdict::Transmit(VifId(0)));
        golden(&format!("bridge_encap_{name}"), &out);
        // Outer Ethernet, IPv4, UDP, then VXLAN (8) or label + control word (4 + 4).
        let hdr = 14 + 20 + 8 + 8;
        assert_eq!(&out[hdr..], &f[..], "inner frame is the VM's frame");
        let mut b = host_b(false);
        let (v, got) = run(&mut b, 0, &out);
        assert_eq!(v, Verdict::Transmit(VifId(1)));
        assert_eq!(got, f);
    }
}

#[test]
fn fabric_traffic_not_for_us_is_left_to_the_host() {
    let mut b = host_b(false);
    let mut a = host_a(UDP_ENCAPS[0], false);
    let (_, out) = run(&mut a, 1, &vm_udp_routed(3, vm_ip(5), 1, 2));
    // Addressed to another fabric IP.
    let mut other = out.clone();
    other[14 + 16..14 + 20].copy_from_slice(&[192, 0, 2, 9]);
    ipv4::Packet::new_unchecked(&mut other[14..]).fill_checksum();
    assert_eq!(run(&mut b, 0, &other).0, Verdict::Host);
    // Plain UDP to us on another port.
    let plain = frame_v4(
        mac(B_FABRIC_MAC),
        mac(A_FABRIC_MAC),
        ip4(A_FABRIC_IP),
        ip4(B_FABRIC_IP),
        ip_proto::UDP,
        64,
        &udp_l4(5, 22, b""),
    );
    assert_eq!(run(&mut b, 0, &plain).0, Verdict::Host);
    // Unknown label: dropped and counted.
    let mut bad = out.clone();
    let m = 14 + 20 + 8;
    mpls::Repr {
        label: 999,
        tc: 0,
        bottom: true,
        ttl: 64,
    }
    .emit(&mut bad[m..]);
    assert_eq!(
        run(&mut b, 0, &bad).0,
        Verdict::Drop(DropReason::UnknownLabel)
    );
    assert_eq!(b.dropstats().drops.get(&DropReason::UnknownLabel), Some(&1));
}

#[test]
fn drops_with_reason() {
    let mut a = host_a(UDP_ENCAPS[0], false);
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (
            vm_udp_routed(3, "10.9.9.9".parse().unwrap(), 1, 2),
            DropReason::NoRoute,
        ),
        (
            frame_v4(
                GATEWAY_MAC,
                vm_mac(3),
                vm_ip(3),
                vm_ip(4),
                ip_proto::UDP,
                1,
                &udp_l4(1, 2, b""),
            ),
            DropReason::Ttl,
        ),
        (vec![1, 2, 3], DropReason::Truncated),
        (
            vm_udp_routed(3, vm_ip(4), 1, 2)[..30].to_vec(),
            DropReason::Truncated,
        ),
        (
            frame_v4(
                vm_mac(9),
                vm_mac(3),
                vm_ip(3),
                vm_ip(4),
                ip_proto::UDP,
                64,
                &udp_l4(1, 2, b""),
            ),
            DropReason::NoBridgeEntry,
        ),
    ];
    for (f, reason) in &cases {
        assert_eq!(run(&mut a, 1, f).0, Verdict::Drop(*reason), "{reason:?}");
    }
    let mut bad_csum = vm_udp_routed(3, vm_ip(4), 1, 2);
    bad_csum[24] ^= 0xff;
    assert_eq!(
        run(&mut a, 1, &bad_csum).0,
        Verdict::Drop(DropReason::Checksum)
    );
    assert_eq!(
        run(&mut a, 77, &bad_csum).0,
        Verdict::Drop(DropReason::UnknownVif)
    );
    a.apply(Op::AddNexthop(Nexthop {
        id: NhId(50),
        kind: NexthopKind::Discard,
    }))
    .unwrap();
    a.apply(Op::AddRoute {
        vrf: VrfId(1),
        prefix: "10.8.0.0/16".parse().unwrap(),
        nh: NhId(50),
    })
    .unwrap();
    assert_eq!(
        run(
            &mut a,
            1,
            &vm_udp_routed(3, "10.8.1.1".parse().unwrap(), 1, 2)
        )
        .0,
        Verdict::Drop(DropReason::Discard)
    );
    let s = a.dropstats();
    assert_eq!(s.drops.get(&DropReason::Truncated), Some(&2));
    assert_eq!(s.drops.get(&DropReason::NoRoute), Some(&1));
    assert_eq!(s.total, 8);
    let vif1 = a
        .dump_interfaces()
        .into_iter()
        .find(|d| d.vif.id == VifId(1))
        .unwrap();
    assert_eq!(
        vif1.stats.drops, 7,
        "the unknown-vif drop belongs to no vif"
    );
}

#[test]
fn neighbour_miss_sends_arp_then_learns_the_reply() {
    let mut a = host_a(UDP_ENCAPS[0], false);
    a.apply(Op::DelNeighbor {
        vif: VifId(0),
        ip: ip4(B_FABRIC_IP),
    })
    .unwrap();
    let f = vm_udp_routed(3, vm_ip(5), 1, 2);
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Drop(DropReason::NoNeighbor));
    let req = a.poll_transmit().expect("an ARP request");
    assert_eq!(req.vif, VifId(0));
    golden("arp_request", &req.frame);
    // Rate limited: no second request within arp_retry.
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Drop(DropReason::NoNeighbor));
    assert!(a.poll_transmit().is_none());
    // The reply on the fabric is learned (and left to the kernel too).
    let mut reply = vec![0u8; 42];
    ethernet::Repr {
        dst: mac(A_FABRIC_MAC).0,
        src: mac(B_FABRIC_MAC).0,
        vlan_tci: None,
        ethertype: 0x0806,
    }
    .emit(&mut reply);
    filament_wire_pkt::arp::Repr {
        operation: 2,
        sender_mac: mac(B_FABRIC_MAC).0,
        sender_ip: ip4(B_FABRIC_IP),
        target_mac: mac(A_FABRIC_MAC).0,
        target_ip: ip4(A_FABRIC_IP),
    }
    .emit(&mut reply[14..]);
    assert_eq!(run(&mut a, 0, &reply).0, Verdict::Host);
    assert!(a
        .dump_neighbors()
        .iter()
        .any(|n| n.learned && n.mac == mac(B_FABRIC_MAC)));
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Transmit(VifId(0)));
}

#[test]
fn arp_and_dhcp_from_workloads_are_punted() {
    let mut a = host_a(UDP_ENCAPS[0], false);
    let mut arp = vec![0u8; 42];
    ethernet::Repr {
        dst: [0xff; 6],
        src: vm_mac(3).0,
        vlan_tci: None,
        ethertype: 0x0806,
    }
    .emit(&mut arp);
    let (v, out) = run(&mut a, 1, &arp);
    assert_eq!(
        v,
        Verdict::Punt {
            reason: PuntReason::Arp,
            key: None
        }
    );
    assert_eq!(out, arp);
    let dhcp = frame_v4(
        [0xff; 6].into(),
        vm_mac(3),
        "0.0.0.0".parse().unwrap(),
        "255.255.255.255".parse().unwrap(),
        ip_proto::UDP,
        64,
        &udp_l4(68, 67, &[1; 240]),
    );
    assert_eq!(
        run(&mut a, 1, &dhcp).0,
        Verdict::Punt {
            reason: PuntReason::Dhcp,
            key: None
        }
    );
    assert_eq!(a.dropstats().punts.get(&PuntReason::Dhcp), Some(&1));
}

#[test]
fn partial_checksum_is_completed() {
    let mut a = host_a(UDP_ENCAPS[0], false);
    let mut f = frame_v4(
        GATEWAY_MAC,
        vm_mac(3),
        vm_ip(3),
        vm_ip(4),
        ip_proto::TCP,
        64,
        &tcp_l4(40000, 80, 0x18, b"GET /"),
    );
    // What veth offload leaves: the pseudo-header sum only.
    let ph = filament_wire_pkt::checksum::pseudo_header(
        &IpAddr::V4(vm_ip(3)),
        &IpAddr::V4(vm_ip(4)),
        6,
        25,
    );
    f[34 + 16..34 + 18].copy_from_slice(&filament_wire_pkt::checksum::fold(ph).to_be_bytes());
    let mut b = PacketBuf::from_frame(&f);
    let v = a.process(
        T0,
        VifId(1),
        &mut b,
        RxMeta {
            csum_partial: true,
            vlan_tci: None,
        },
    );
    assert_eq!(v, Verdict::Transmit(VifId(2)));
    let out = b.to_vec();
    let t = filament_wire_pkt::tcp::Packet::new_checked(&out[34..]).unwrap();
    assert!(t.verify_checksum(&IpAddr::V4(vm_ip(3)), &IpAddr::V4(vm_ip(4))));
}
