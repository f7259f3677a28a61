//! Further pipeline paths: IPv6 routing, flooding with split horizon,
//! egress policy on the receiving host (a held overlay packet is released
//! after the verdict), Receive nexthops, and table-operation errors.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::{IpAddr, Ipv6Addr};

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::{ethernet, ip_proto, ipv6, udp};

fn v6_frame(dst_mac: MacAddr, src: Ipv6Addr, dst: Ipv6Addr, hop: u8) -> Vec<u8> {
    let l4 = udp_l4(5000, 53, b"v6 payload");
    let mut f = vec![0u8; 14 + 40 + l4.len()];
    ethernet::Repr {
        dst: dst_mac.0,
        src: vm_mac(3).0,
        vlan_tci: None,
        ethertype: 0x86dd,
    }
    .emit(&mut f);
    ipv6::Repr {
        src,
        dst,
        next_header: ip_proto::UDP,
        payload_len: l4.len(),
        hop_limit: hop,
        traffic_class: 0,
        flow_label: 7,
    }
    .emit(&mut f[14..]);
    f[54..].copy_from_slice(&l4);
    udp::Packet::new_unchecked(&mut f[54..]).fill_checksum(&IpAddr::V6(src), &IpAddr::V6(dst));
    f
}

#[test]
fn ipv6_routed_locally_and_over_the_overlay() {
    let mut a = host_a(TunnelEncap::MplsOverGre { label: 16 }, false);
    let mut b = host_b(false);
    a.apply(Op::AddRoute {
        vrf: VrfId(1),
        prefix: "fd00::4/128".parse().unwrap(),
        nh: NhId(2),
    })
    .unwrap();
    a.apply(Op::AddRoute {
        vrf: VrfId(1),
        prefix: "fd00::/64".parse().unwrap(),
        nh: NhId(10),
    })
    .unwrap();
    let (s, d_local, d_remote): (Ipv6Addr, Ipv6Addr, Ipv6Addr) = (
        "fd00::3".parse().unwrap(),
        "fd00::4".parse().unwrap(),
        "fd00::5".parse().unwrap(),
    );
    let (v, out) = run(&mut a, 1, &v6_frame(GATEWAY_MAC, s, d_local, 64));
    assert_eq!(v, Verdict::Transmit(VifId(2)));
    assert_eq!(&out[..6], &vm_mac(4).0);
    assert_eq!(
        ipv6::Packet::new_checked(&out[14..]).unwrap().hop_limit(),
        63
    );
    let f = v6_frame(GATEWAY_MAC, s, d_remote, 64);
    let (v, wire) = run(&mut a, 1, &f);
    assert_eq!(v, Verdict::Transmit(VifId(0)));
    let (v, got) = run(&mut b, 0, &wire);
    assert_eq!(v, Verdict::Transmit(VifId(1)));
    assert_eq!(
        &got[12..14],
        &[0x86, 0xdd],
        "L3 label rebuilds an IPv6 Ethernet header"
    );
    assert_eq!(&got[14 + 8..], &f[14 + 8..], "addresses and payload intact");
    assert_eq!(
        run(&mut a, 1, &v6_frame(GATEWAY_MAC, s, d_local, 1)).0,
        Verdict::Drop(DropReason::Ttl)
    );
}

#[test]
fn broadcast_floods_to_locals_and_tunnels_but_not_back() {
    let mut a = host_a(TunnelEncap::Vxlan { vni: 5001 }, false);
    a.apply(Op::AddNexthop(Nexthop {
        id: NhId(30),
        kind: NexthopKind::Flood {
            members: vec![NhId(1), NhId(2), NhId(10)],
        },
    }))
    .unwrap();
    a.apply(Op::AddBridge {
        vrf: VrfId(1),
        mac: MacAddr::BROADCAST,
        nh: NhId(30),
    })
    .unwrap();
    let bcast = frame_v4(
        MacAddr::BROADCAST,
        vm_mac(3),
        vm_ip(3),
        "10.1.1.255".parse().unwrap(),
        ip_proto::UDP,
        64,
        &udp_l4(1, 2, b"b"),
    );
    let (v, _) = run(&mut a, 1, &bcast);
    let Verdict::Replicate(txs) = v else {
        panic!("{v:?}")
    };
    let vifs: Vec<VifId> = txs.iter().map(|t| t.vif).collect();
    assert_eq!(vifs, vec![VifId(2), VifId(0)], "not back to the sender");
    assert_eq!(txs[0].frame, bcast);
    assert_eq!(
        &txs[1].frame[14 + 20 + 8 + 8..],
        &bcast[..],
        "VXLAN copy carries the frame"
    );
    // The same broadcast arriving from the fabric goes to local vifs only.
    // (As sent, it is addressed to B's fabric IP: host A leaves it to the kernel.)
    assert_eq!(run(&mut a, 0, &txs[1].frame).0, Verdict::Host);
    let mut from_b = txs[1].frame.clone();
    from_b[14 + 12..14 + 16].copy_from_slice(&[192, 0, 2, 2]);
    from_b[14 + 16..14 + 20].copy_from_slice(&[192, 0, 2, 1]);
    filament_wire_pkt::ipv4::Packet::new_unchecked(&mut from_b[14..]).fill_checksum();
    let (v, _) = run(&mut a, 0, &from_b);
    let Verdict::Replicate(txs) = v else {
        panic!("{v:?}")
    };
    let vifs: Vec<VifId> = txs.iter().map(|t| t.vif).collect();
    assert_eq!(
        vifs,
        vec![VifId(1), VifId(2)],
        "split horizon: no tunnel copies"
    );
}

#[test]
fn egress_policy_holds_overlay_packets_until_the_verdict() {
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, false);
    let mut b = host_b(false);
    // VM3 on B gets policy.
    b.apply(vif(
        1,
        VifKind::Workload,
        GATEWAY_MAC,
        Some(1),
        true,
        Some(vm_ip(5)),
    ))
    .unwrap();
    let (_, wire) = run(&mut a, 1, &vm_udp_routed(3, vm_ip(5), 1000, 2000));
    let (v, punted) = run(&mut b, 0, &wire);
    let Verdict::Punt {
        reason: PuntReason::FlowMiss,
        key: Some(key),
    } = v
    else {
        panic!("{v:?}")
    };
    assert_eq!(punted, wire, "punted as received on the fabric");
    assert_eq!((key.vrf, key.dst), (VrfId(1), IpAddr::V4(vm_ip(5))));
    let rel = b
        .apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Forward,
            mirror: None,
            reverse_action: None,
        }))
        .unwrap();
    assert_eq!(rel.released.len(), 1);
    assert_eq!(rel.released[0].vif_in, VifId(0));
    assert_eq!(rel.released[0].verdict, Verdict::Transmit(VifId(1)));
    assert_eq!(&rel.released[0].buf.frame()[..6], &vm_mac(5).0);
    // The reply from VM3 matches the reverse entry (no punt) and is tunnelled.
    b.apply(tunnel(
        10,
        B_FABRIC_IP,
        A_FABRIC_IP,
        TunnelEncap::MplsOverUdp { label: 16 },
    ))
    .unwrap();
    b.apply(Op::AddRoute {
        vrf: VrfId(1),
        prefix: "10.1.1.3/32".parse().unwrap(),
        nh: NhId(10),
    })
    .unwrap();
    b.apply(Op::AddNeighbor {
        vif: VifId(0),
        ip: ip4(A_FABRIC_IP),
        mac: mac(A_FABRIC_MAC),
    })
    .unwrap();
    let (v, _) = run(&mut b, 1, &vm_udp_routed(5, vm_ip(3), 2000, 1000));
    assert_eq!(v, Verdict::Transmit(VifId(0)));
}

#[test]
fn receive_nexthop_punts_and_bad_ops_are_errors() {
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, false);
    a.apply(Op::AddNexthop(Nexthop {
        id: NhId(40),
        kind: NexthopKind::Receive,
    }))
    .unwrap();
    a.apply(Op::AddRoute {
        vrf: VrfId(1),
        prefix: "10.1.1.1/32".parse().unwrap(),
        nh: NhId(40),
    })
    .unwrap();
    let f = frame_v4(
        GATEWAY_MAC,
        vm_mac(3),
        vm_ip(3),
        "10.1.1.1".parse().unwrap(),
        ip_proto::ICMP,
        64,
        &icmp_echo(7, 1),
    );
    let (v, out) = run(&mut a, 1, &f);
    assert!(
        matches!(v, Verdict::Punt { reason: PuntReason::Receive, key: Some(k) } if k.sport == 7 && k.dport == 7)
    );
    assert_eq!(out, f);

    assert_eq!(
        a.apply(Op::AddRoute {
            vrf: VrfId(1),
            prefix: "10.0.0.0/8".parse().unwrap(),
            nh: NhId(999)
        })
        .unwrap_err(),
        OpError::UnknownNexthop { nh: NhId(999) }
    );
    assert!(matches!(
        a.apply(Op::AddLabel {
            label: 1 << 20,
            nh: NhId(1),
            payload: LabelPayload::Ip
        }),
        Err(OpError::LabelOutOfRange { .. })
    ));
    assert!(matches!(
        a.apply(tunnel(
            41,
            A_FABRIC_IP,
            B_FABRIC_IP,
            TunnelEncap::Vxlan { vni: 1 << 24 }
        )),
        Err(OpError::VniOutOfRange { .. })
    ));
    let not_fabric = Op::AddNexthop(Nexthop {
        id: NhId(42),
        kind: NexthopKind::Tunnel {
            vif: VifId(1),
            src_ip: ip4(A_FABRIC_IP),
            dst_ip: ip4(B_FABRIC_IP),
            encap: TunnelEncap::MplsOverUdp { label: 16 },
        },
    });
    assert!(matches!(
        a.apply(not_fabric),
        Err(OpError::NotFabric { .. })
    ));
    let nested = Op::AddNexthop(Nexthop {
        id: NhId(43),
        kind: NexthopKind::Ecmp {
            members: vec![NhId(1)],
        },
    });
    a.apply(nested).unwrap();
    let nested2 = Op::AddNexthop(Nexthop {
        id: NhId(44),
        kind: NexthopKind::Ecmp {
            members: vec![NhId(43)],
        },
    });
    assert!(matches!(
        a.apply(nested2),
        Err(OpError::NestedComposite { .. })
    ));
    assert!(matches!(
        a.apply(Op::DelRoute {
            vrf: VrfId(9),
            prefix: "10.0.0.0/8".parse().unwrap()
        }),
        Err(OpError::NotFound { .. })
    ));
    // Deleting the workload's vif: its nexthop now drops instead of panicking.
    a.apply(Op::DelVif { vif: VifId(2) }).unwrap();
    let (v, _) = run(&mut a, 1, &vm_udp_routed(3, vm_ip(4), 1, 2));
    assert_eq!(v, Verdict::Drop(DropReason::InvalidNexthop));
}

#[test]
fn bridged_vxlan_to_a_policy_vif_needs_a_flow() {
    let mut a = host_a(TunnelEncap::Vxlan { vni: 5001 }, false);
    let mut b = host_b(true);
    let f = frame_v4(
        vm_mac(5),
        vm_mac(3),
        vm_ip(3),
        vm_ip(5),
        ip_proto::UDP,
        64,
        &udp_l4(5, 6, b"l2"),
    );
    let (_, wire) = run(&mut a, 1, &f);
    let (v, _) = run(&mut b, 0, &wire);
    let Verdict::Punt {
        reason: PuntReason::FlowMiss,
        key: Some(key),
    } = v
    else {
        panic!("{v:?}")
    };
    let rel = b
        .apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Forward,
            mirror: None,
            reverse_action: None,
        }))
        .unwrap();
    assert_eq!(rel.released[0].verdict, Verdict::Transmit(VifId(1)));
    assert_eq!(rel.released[0].buf.frame(), &f[..]);
}
