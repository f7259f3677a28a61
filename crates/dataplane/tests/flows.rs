//! Flow table behaviour through the pipeline: miss -> hold + punt -> verdict
//! releases held packets; NAT both ways; ECMP spreading and stickiness;
//! policy drop; flow limit; aging; mirror.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::{ethernet, ip_proto, ipv4, tcp, udp};

fn encap() -> TunnelEncap {
    TunnelEncap::MplsOverUdp { label: 16 }
}

#[test]
fn miss_holds_three_punts_once_and_verdict_releases_them() {
    let mut a = host_a(encap(), true);
    let f = vm_udp_routed(3, vm_ip(4), 1000, 2000);
    let (v, punted) = run(&mut a, 1, &f);
    let Verdict::Punt {
        reason: PuntReason::FlowMiss,
        key: Some(key),
    } = v
    else {
        panic!("{v:?}")
    };
    assert_eq!(punted, f, "the agent gets the packet as received");
    assert_eq!(key.vrf, VrfId(1));
    assert_eq!(
        (key.proto, key.sport, key.dport),
        (ip_proto::UDP, 1000, 2000)
    );
    assert_eq!(key.dst, IpAddr::V4(vm_ip(4)));
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Held);
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Held);
    assert_eq!(
        run(&mut a, 1, &f).0,
        Verdict::Drop(DropReason::FlowHoldLimit)
    );
    assert_eq!(a.dump_flows()[0].state, FlowState::Hold);

    let applied = a
        .apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Forward,
            mirror: None,
            reverse_action: None,
        }))
        .unwrap();
    assert_eq!(applied.released.len(), 3);
    for r in &applied.released {
        assert_eq!(r.vif_in, VifId(1));
        assert_eq!(r.verdict, Verdict::Transmit(VifId(2)));
        let eth = ethernet::Frame::new_checked(r.buf.frame()).unwrap();
        assert_eq!(eth.dst(), vm_mac(4).0);
    }
    // Both directions exist and are linked; the reverse passes without a punt.
    let flows = a.dump_flows();
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0].reverse, Some(flows[1].index));
    assert_eq!(flows[1].reverse, Some(flows[0].index));
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Transmit(VifId(2)));
    let reply = vm_udp_routed(4, vm_ip(3), 2000, 1000);
    assert_eq!(run(&mut a, 2, &reply).0, Verdict::Transmit(VifId(1)));
    assert_eq!(a.dropstats().punts.get(&PuntReason::FlowMiss), Some(&1));
}

#[test]
fn policy_drop_and_delete() {
    let mut a = host_a(encap(), true);
    let f = vm_udp_routed(3, vm_ip(4), 1, 2);
    let Verdict::Punt { key: Some(key), .. } = run(&mut a, 1, &f).0 else {
        panic!()
    };
    let rel = a
        .apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Drop,
            mirror: None,
            reverse_action: None,
        }))
        .unwrap();
    assert_eq!(rel.released[0].verdict, Verdict::Drop(DropReason::Policy));
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Drop(DropReason::Policy));
    a.apply(Op::DelFlow {
        key: key.reversed(),
    })
    .unwrap();
    assert_eq!(a.flow_count(), 0, "deleting either direction removes both");
    assert!(matches!(run(&mut a, 1, &f).0, Verdict::Punt { .. }));
}

#[test]
fn nat_both_ways_rewrites_addresses_ports_and_checksums() {
    // VM1 -> VIP 10.1.1.100:80 is DNATed to VM2 10.1.1.4:8080 and SNATed
    // from 10.1.1.200:40000.
    let mut a = host_a(encap(), true);
    let vip = "10.1.1.100".parse().unwrap();
    let f = frame_v4(
        GATEWAY_MAC,
        vm_mac(3),
        vm_ip(3),
        vip,
        ip_proto::TCP,
        64,
        &tcp_l4(1000, 80, tcp::flags::SYN, b"x"),
    );
    let Verdict::Punt { key: Some(key), .. } = run(&mut a, 1, &f).0 else {
        panic!()
    };
    let nat = NatRewrite {
        src_ip: Some("10.1.1.200".parse().unwrap()),
        src_port: Some(40000),
        dst_ip: Some(IpAddr::V4(vm_ip(4))),
        dst_port: Some(8080),
        dst_vrf: None,
    };
    let rel = a
        .apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Nat(nat),
            mirror: None,
            reverse_action: None,
        }))
        .unwrap();
    let r = &rel.released[0];
    assert_eq!(r.verdict, Verdict::Transmit(VifId(2)));
    let out = r.buf.to_vec();
    golden("nat_forward", &out);
    let ip = ipv4::Packet::new_checked(&out[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(
        ip.src(),
        "10.1.1.200".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert_eq!(ip.dst(), vm_ip(4));
    let t = tcp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((t.src_port(), t.dst_port()), (40000, 8080));
    assert!(t.verify_checksum(&IpAddr::V4(ip.src()), &IpAddr::V4(ip.dst())));

    // VM2 answers the translated source; VM1 sees the VIP answer.
    let reply = frame_v4(
        GATEWAY_MAC,
        vm_mac(4),
        vm_ip(4),
        "10.1.1.200".parse().unwrap(),
        ip_proto::TCP,
        64,
        &tcp_l4(8080, 40000, tcp::flags::SYN | tcp::flags::ACK, b"y"),
    );
    let (v, back) = run(&mut a, 2, &reply);
    assert_eq!(
        v,
        Verdict::Transmit(VifId(1)),
        "reverse entry installed with the verdict"
    );
    golden("nat_reverse", &back);
    let ip = ipv4::Packet::new_checked(&back[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src(), ip.dst()), (vip, vm_ip(3)));
    let t = tcp::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((t.src_port(), t.dst_port()), (80, 1000));
    assert!(t.verify_checksum(&IpAddr::V4(ip.src()), &IpAddr::V4(ip.dst())));
}

/// Host A with an ECMP route 10.9.0.0/16 over tunnels to B and C.
fn ecmp_host(policy: bool) -> Forwarder {
    let mut a = host_a(encap(), policy);
    a.apply(tunnel(
        11,
        A_FABRIC_IP,
        "192.0.2.3",
        TunnelEncap::MplsOverUdp { label: 30 },
    ))
    .unwrap();
    a.apply(tunnel(
        12,
        A_FABRIC_IP,
        "192.0.2.4",
        TunnelEncap::MplsOverUdp { label: 40 },
    ))
    .unwrap();
    for (ip, m) in [
        ("192.0.2.3", "02:fa:00:00:00:03"),
        ("192.0.2.4", "02:fa:00:00:00:04"),
    ] {
        a.apply(Op::AddNeighbor {
            vif: VifId(0),
            ip: ip4(ip),
            mac: mac(m),
        })
        .unwrap();
    }
    a.apply(Op::AddNexthop(Nexthop {
        id: NhId(20),
        kind: NexthopKind::Ecmp {
            members: vec![NhId(10), NhId(11)],
        },
    }))
    .unwrap();
    a.apply(Op::AddRoute {
        vrf: VrfId(1),
        prefix: "10.9.0.0/16".parse().unwrap(),
        nh: NhId(20),
    })
    .unwrap();
    a
}

/// Which remote fabric IP an encapsulated frame goes to.
fn outer_dst(frame: &[u8]) -> std::net::Ipv4Addr {
    ipv4::Packet::new_checked(&frame[14..]).unwrap().dst()
}

#[test]
fn ecmp_spreads_flows_over_members() {
    let mut a = ecmp_host(false);
    let mut counts = std::collections::BTreeMap::new();
    for sport in 0..400u16 {
        let (v, out) = run(
            &mut a,
            1,
            &vm_udp_routed(3, "10.9.1.1".parse().unwrap(), 10000 + sport, 80),
        );
        assert_eq!(v, Verdict::Transmit(VifId(0)));
        *counts.entry(outer_dst(&out)).or_insert(0) += 1;
        // Entropy port in range and stable per flow.
        let u = udp::Packet::new_checked(&out[34..]).unwrap();
        assert!(u.src_port() >= 49152);
    }
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(
        counts.values().all(|c| *c >= 120),
        "uneven spread {counts:?}"
    );
}

#[test]
fn ecmp_flow_keeps_its_member_when_one_is_added() {
    let mut a = ecmp_host(true);
    let mut before = Vec::new();
    for sport in 0..60u16 {
        let f = vm_udp_routed(3, "10.9.1.1".parse().unwrap(), 20000 + sport, 80);
        let Verdict::Punt { key: Some(key), .. } = run(&mut a, 1, &f).0 else {
            panic!()
        };
        let rel = a
            .apply(Op::AddFlow(FlowSpec {
                key,
                action: FlowAction::Forward,
                mirror: None,
                reverse_action: None,
            }))
            .unwrap();
        before.push((f, outer_dst(rel.released[0].buf.frame())));
    }
    // Add a third member (appended: positions stay stable).
    a.apply(tunnel(
        13,
        A_FABRIC_IP,
        "192.0.2.5",
        TunnelEncap::MplsOverUdp { label: 50 },
    ))
    .unwrap();
    a.apply(Op::AddNeighbor {
        vif: VifId(0),
        ip: ip4("192.0.2.5"),
        mac: mac("02:fa:00:00:00:05"),
    })
    .unwrap();
    a.apply(Op::AddNexthop(Nexthop {
        id: NhId(20),
        kind: NexthopKind::Ecmp {
            members: vec![NhId(10), NhId(11), NhId(13)],
        },
    }))
    .unwrap();
    for (f, dst) in &before {
        let (v, out) = run(&mut a, 1, f);
        assert_eq!(v, Verdict::Transmit(VifId(0)));
        assert_eq!(outer_dst(&out), *dst, "pinned flow moved");
    }
    // New flows do use the new member (the hash alone would have moved
    // about a third of the old flows).
    let mut new_member = 0;
    for sport in 0..60u16 {
        let f = vm_udp_routed(3, "10.9.1.1".parse().unwrap(), 30000 + sport, 80);
        let Verdict::Punt { key: Some(key), .. } = run(&mut a, 1, &f).0 else {
            panic!()
        };
        let rel = a
            .apply(Op::AddFlow(FlowSpec {
                key,
                action: FlowAction::Forward,
                mirror: None,
                reverse_action: None,
            }))
            .unwrap();
        if outer_dst(rel.released[0].buf.frame()) == ip4("192.0.2.5") {
            new_member += 1;
        }
    }
    assert!(
        new_member > 5,
        "new member got {new_member} of 60 new flows"
    );
    assert!(a.dump_flows().iter().any(|f| f.ecmp_index == Some(2)));
}

#[test]
fn flow_limit_and_aging() {
    let mut a = Forwarder::new(ForwarderCfg {
        flow_capacity: 4,
        ..Default::default()
    });
    a.apply(vif(
        0,
        VifKind::Fabric,
        mac(A_FABRIC_MAC),
        None,
        false,
        Some(ip4(A_FABRIC_IP)),
    ))
    .unwrap();
    add_workload(&mut a, 1, 3, 16, true);
    add_workload(&mut a, 2, 4, 17, true);
    let mut keys = Vec::new();
    for sport in 0..4u16 {
        let Verdict::Punt { key: Some(k), .. } =
            run(&mut a, 1, &vm_udp_routed(3, vm_ip(4), sport, 1)).0
        else {
            panic!()
        };
        keys.push(k);
    }
    assert_eq!(
        run(&mut a, 1, &vm_udp_routed(3, vm_ip(4), 99, 1)).0,
        Verdict::Drop(DropReason::FlowLimit)
    );
    // Installing needs the reverse slot too.
    let err = a
        .apply(Op::AddFlow(FlowSpec {
            key: keys[0],
            action: FlowAction::Forward,
            mirror: None,
            reverse_action: None,
        }))
        .unwrap_err();
    assert!(matches!(err, OpError::FlowTableFull { capacity: 4, .. }));
    // HOLD entries the agent never answered age out after hold_timeout.
    assert_eq!(a.age_flows(T0 + Duration::from_secs(5)), 0);
    assert_eq!(a.age_flows(T0 + Duration::from_secs(11)), 4);
    let Verdict::Punt { key: Some(k), .. } = run(&mut a, 1, &vm_udp_routed(3, vm_ip(4), 7, 1)).0
    else {
        panic!()
    };
    a.apply(Op::AddFlow(FlowSpec {
        key: k,
        action: FlowAction::Forward,
        mirror: None,
        reverse_action: None,
    }))
    .unwrap();
    assert_eq!(a.flow_count(), 2);
    // Active flows age after flow_timeout (180 s) of idleness.
    assert_eq!(a.age_flows(T0 + Duration::from_secs(100)), 0);
    assert_eq!(a.age_flows(T0 + Duration::from_secs(200)), 2);
}

#[test]
fn mirror_sends_a_copy() {
    let mut a = host_a(encap(), true);
    a.apply(vif(5, VifKind::Workload, GATEWAY_MAC, Some(2), false, None))
        .unwrap();
    a.apply(Op::AddNexthop(Nexthop {
        id: NhId(5),
        kind: NexthopKind::Encap {
            vif: VifId(5),
            dst_mac: vm_mac(9),
            src_mac: GATEWAY_MAC,
        },
    }))
    .unwrap();
    let f = vm_udp_routed(3, vm_ip(4), 1, 2);
    let Verdict::Punt { key: Some(key), .. } = run(&mut a, 1, &f).0 else {
        panic!()
    };
    let rel = a
        .apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Forward,
            mirror: Some(NhId(5)),
            reverse_action: None,
        }))
        .unwrap();
    let Verdict::Replicate(txs) = &rel.released[0].verdict else {
        panic!("{:?}", rel.released[0].verdict)
    };
    assert_eq!(txs.len(), 2);
    assert_eq!(txs[0].vif, VifId(2));
    assert_eq!(
        txs[1],
        Tx {
            vif: VifId(5),
            frame: f.clone()
        }
    );
}

#[test]
fn ops_round_trip_through_json() {
    let a = ecmp_host(true);
    let ops = vec![
        Op::AddRoute {
            vrf: VrfId(1),
            prefix: "10.1.1.3/32".parse().unwrap(),
            nh: NhId(3),
        },
        Op::AddNexthop(Nexthop {
            id: NhId(10),
            kind: NexthopKind::Tunnel {
                vif: VifId(0),
                src_ip: ip4(A_FABRIC_IP),
                dst_ip: ip4(B_FABRIC_IP),
                encap: TunnelEncap::Vxlan { vni: 5001 },
            },
        }),
        Op::AddBridge {
            vrf: VrfId(1),
            mac: vm_mac(3),
            nh: NhId(3),
        },
        Op::AddFlow(FlowSpec {
            key: FlowKey {
                vrf: VrfId(1),
                proto: 6,
                src: "10.0.0.1".parse().unwrap(),
                dst: "10.0.0.2".parse().unwrap(),
                sport: 1,
                dport: 2,
            },
            action: FlowAction::Nat(NatRewrite {
                src_ip: Some("192.0.2.9".parse().unwrap()),
                ..Default::default()
            }),
            mirror: None,
            reverse_action: None,
        }),
    ];
    let text = serde_json::to_string(&ops).unwrap();
    assert!(text.contains(r#""op":"add_route""#), "{text}");
    assert!(text.contains(r#""mac":"02:00:00:00:00:03""#), "{text}");
    let back: Vec<Op> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, ops);
    // Dumps serialize.
    let dumps = serde_json::json!({
        "interfaces": a.dump_interfaces(), "nexthops": a.dump_nexthops(), "routes": a.dump_routes(),
        "labels": a.dump_labels(), "flows": a.dump_flows(), "dropstats": a.dropstats(),
    });
    let nh = &dumps["nexthops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == 20)
        .unwrap()
        .clone();
    assert_eq!(nh["type"], "ecmp");
    assert_eq!(dumps["routes"].as_array().unwrap().len(), 4 + 3);
}

#[test]
fn route_changes_reach_established_flows() {
    // A flow's cached route must follow table changes.
    let mut a = host_a(encap(), true);
    let f = vm_udp_routed(3, vm_ip(5), 1, 2);
    let Verdict::Punt { key: Some(key), .. } = run(&mut a, 1, &f).0 else {
        panic!()
    };
    a.apply(Op::AddFlow(FlowSpec {
        key,
        action: FlowAction::Forward,
        mirror: None,
        reverse_action: None,
    }))
    .unwrap();
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Transmit(VifId(0)));
    // VM3 moves to this host (vif 2's nexthop).
    a.apply(Op::AddRoute {
        vrf: VrfId(1),
        prefix: "10.1.1.5/32".parse().unwrap(),
        nh: NhId(2),
    })
    .unwrap();
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Transmit(VifId(2)));
    a.apply(Op::DelRoute {
        vrf: VrfId(1),
        prefix: "10.1.1.5/32".parse().unwrap(),
    })
    .unwrap();
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Drop(DropReason::NoRoute));
}
