//! Paths found broken by the namespace walk (issue 5): the first fragment of a UDP datagram
//! larger than the workload MTU (its UDP Length counts data in later fragments), and IPv6
//! neighbour discovery from a workload (RFC 4861 solicitations answered with the vif MAC).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::{IpAddr, Ipv6Addr};

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::{checksum, ethernet, ip_proto, ipv4, ipv6};

/// Every encapsulation a tunnel can have.
const ENCAPS: [TunnelEncap; 3] = [
    TunnelEncap::MplsOverUdp { label: 16 },
    TunnelEncap::MplsOverGre { label: 16 },
    TunnelEncap::Vxlan { vni: 5001 },
];

/// The two fragments of a UDP datagram of `data` bytes from VM1 to VM3 (remote), cut at
/// `first` bytes of IP payload (a multiple of 8), as the workload's kernel cuts them.
fn udp_fragments(data: usize, first: usize) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..data).map(|i| i as u8).collect();
    let whole = vm_udp_routed_with(3, vm_ip(5), 40000, 5201, &payload);
    let l4 = &whole[34..];
    let frag = |chunk: &[u8], off: usize, more: bool| {
        let mut f = whole[..34].to_vec();
        f.extend_from_slice(chunk);
        let total = (20 + chunk.len()) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        let ff = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        f[20..22].copy_from_slice(&ff.to_be_bytes());
        ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
        f
    };
    (
        frag(&l4[..first], 0, true),
        frag(&l4[first..], first, false),
    )
}

#[test]
fn both_fragments_of_a_large_udp_datagram_cross_the_overlay() {
    for encap in ENCAPS {
        let mut a = host_a(encap, false);
        let (first, second) = udp_fragments(1400, 1376);
        for (name, f) in [("first", &first), ("second", &second)] {
            let (v, out) = run(&mut a, 1, f);
            assert_eq!(
                v,
                Verdict::Transmit(VifId(0)),
                "{name} fragment over {encap:?}"
            );
            // The inner IP packet rides whole behind the outer headers (TTL decremented).
            assert!(out.ends_with(&f[34..]), "{name} fragment payload intact");
            let inner = &out[out.len() - (f.len() - 14)..];
            assert_eq!(inner[6..8], f[20..22], "{name}: flags and offset kept");
        }
        assert_eq!(a.dropstats().total, 0, "{encap:?}");
    }
}

#[test]
fn a_first_fragment_shorter_than_the_udp_header_is_truncated() {
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, false);
    let (first, _) = udp_fragments(1400, 1376);
    let mut short = first[..34 + 4].to_vec();
    short[16..18].copy_from_slice(&24u16.to_be_bytes());
    ipv4::Packet::new_unchecked(&mut short[14..]).fill_checksum();
    assert_eq!(
        run(&mut a, 1, &short).0,
        Verdict::Drop(DropReason::Truncated)
    );
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Ethernet (from VM1's MAC to `dst_mac`) + IPv6 (`src` to `dst`) + `payload`, whose first
/// header is `next_header`.
fn frame_v6(
    dst_mac: [u8; 6],
    (src, dst): (Ipv6Addr, Ipv6Addr),
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + payload.len()];
    ethernet::Repr {
        dst: dst_mac,
        src: vm_mac(3).0,
        vlan_tci: None,
        ethertype: ethernet::ethertype::IPV6,
    }
    .emit(&mut f);
    ipv6::Repr {
        src,
        dst,
        next_header,
        payload_len: payload.len(),
        hop_limit,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut f[14..]);
    f[54..].copy_from_slice(payload);
    f
}

/// A Neighbor Solicitation from VM1 (fd00::3) for `target`, to its solicited-node group.
fn solicit(target: Ipv6Addr, src: Ipv6Addr, hop: u8) -> Vec<u8> {
    let t = target.octets();
    let group: Ipv6Addr = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let mut ns = vec![0u8; 32];
    ns[0] = 135;
    ns[8..24].copy_from_slice(&t);
    ns[24] = 1; // source link-layer address option
    ns[25] = 1;
    ns[26..32].copy_from_slice(&vm_mac(3).0);
    let c = checksum::l4_checksum(&IpAddr::V6(src), &IpAddr::V6(group), ip_proto::ICMPV6, &ns);
    ns[2..4].copy_from_slice(&c.to_be_bytes());
    frame_v6(
        [0x33, 0x33, 0xff, t[13], t[14], t[15]],
        (src, group),
        ip_proto::ICMPV6,
        hop,
        &ns,
    )
}

fn host_a_v6() -> Forwarder {
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, false);
    for (prefix, nh) in [("fd00::3/128", 1), ("fd00::4/128", 2), ("fd00::5/128", 10)] {
        a.apply(Op::AddRoute {
            vrf: VrfId(1),
            prefix: prefix.parse().unwrap(),
            nh: NhId(nh),
        })
        .unwrap();
    }
    a
}

#[test]
fn neighbor_solicitations_for_routed_addresses_are_answered_with_the_vif_mac() {
    let mut a = host_a_v6();
    for target in ["fd00::5", "fd00::4"] {
        let (v, na) = run(&mut a, 1, &solicit(v6(target), v6("fd00::3"), 255));
        assert_eq!(
            v,
            Verdict::Transmit(VifId(1)),
            "NS for {target} answered on vif 1"
        );
        assert_eq!(&na[..6], &vm_mac(3).0, "to the soliciting VM");
        assert_eq!(&na[6..12], &GATEWAY_MAC.0, "from the vif MAC");
        let ip = ipv6::Packet::new_checked(&na[14..]).unwrap();
        assert_eq!(
            (ip.src(), ip.dst(), ip.hop_limit()),
            (v6(target), v6("fd00::3"), 255)
        );
        let icmp = &na[54..];
        assert_eq!(
            (icmp[0], icmp[1], icmp[4]),
            (136, 0, 0x60),
            "NA, Solicited + Override"
        );
        assert_eq!(&icmp[8..24], &v6(target).octets());
        assert_eq!(
            &icmp[24..32],
            &[2, 1, 0, 0, 0x5e, 0, 1, 0],
            "target LLA = gateway MAC"
        );
        let (s, d) = (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()));
        assert_eq!(
            checksum::l4_checksum(&s, &d, ip_proto::ICMPV6, icmp),
            0,
            "checksum"
        );
    }
}

#[test]
fn solicitations_the_forwarder_must_not_answer_are_not_answered() {
    let mut a = host_a_v6();
    let cases = [
        ("own address", solicit(v6("fd00::3"), v6("fd00::3"), 255)),
        ("no route", solicit(v6("fd00::99"), v6("fd00::3"), 255)),
        ("DAD", solicit(v6("fd00::5"), Ipv6Addr::UNSPECIFIED, 255)),
        ("hop limit 64", solicit(v6("fd00::5"), v6("fd00::3"), 64)),
    ];
    for (name, f) in cases {
        let (v, _) = run(&mut a, 1, &f);
        assert!(
            !matches!(v, Verdict::Transmit(VifId(1))),
            "{name}: answered ({v:?})"
        );
    }
    let mut bad = solicit(v6("fd00::5"), v6("fd00::3"), 255);
    bad[56] ^= 0xff; // checksum
    assert!(!matches!(
        run(&mut a, 1, &bad).0,
        Verdict::Transmit(VifId(1))
    ));
}

/// VM1 sends a 1500-byte IPv4 UDP packet (a 1500-byte workload MTU) to VM3, DF as given.
fn big_v4(df: bool) -> Vec<u8> {
    let payload: Vec<u8> = (0..1472).map(|i| (i * 7) as u8).collect();
    let mut f = vm_udp_routed_with(3, vm_ip(5), 40000, 5201, &payload);
    if !df {
        f[20] &= !0x40;
        ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
    }
    f
}

#[test]
fn too_big_with_df_is_dropped_and_the_sender_told_the_mtu_that_fits() {
    // (encap, room for the inner IP packet on a 1500-byte fabric)
    for (encap, mtu) in [
        (TunnelEncap::MplsOverUdp { label: 16 }, 1500 - 20 - 8 - 4),
        (TunnelEncap::MplsOverGre { label: 16 }, 1500 - 20 - 4 - 4),
        (TunnelEncap::Vxlan { vni: 5001 }, 1500 - 20 - 8 - 8 - 14),
    ] {
        let mut a = host_a(encap, false);
        let f = big_v4(true);
        let (v, _) = run(&mut a, 1, &f);
        assert_eq!(v, Verdict::Drop(DropReason::TooBig), "{encap:?}");
        let tx = a.poll_transmit().expect("an ICMP error");
        assert!(a.poll_transmit().is_none());
        assert_eq!(tx.vif, VifId(1), "back to the sender's vif");
        let e = &tx.frame;
        assert_eq!((&e[..6], &e[6..12]), (&vm_mac(3).0[..], &GATEWAY_MAC.0[..]));
        let ip = ipv4::Packet::new_checked(&e[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.src(), ip.dst(), ip.protocol()),
            (vm_ip(5), vm_ip(3), ip_proto::ICMP)
        );
        let m = &e[34..];
        assert_eq!((m[0], m[1]), (3, 4), "fragmentation needed and DF set");
        assert_eq!(u16::from_be_bytes([m[6], m[7]]), mtu, "{encap:?}");
        assert_eq!(checksum::checksum(m), 0, "ICMP checksum");
        // The quote starts with the original IP header (TTL already decremented) and its
        // UDP header (the ports the workload's kernel matches the error with).
        assert_eq!(&m[8 + 12..8 + 20], &f[14 + 12..14 + 20], "addresses");
        assert_eq!(&m[8 + 20..8 + 28], &f[34..42], "UDP header");
        assert_eq!(a.dropstats().drops.get(&DropReason::TooBig), Some(&1));
    }
}

#[test]
fn too_big_without_df_is_fragmented_and_reassembles_on_the_far_side() {
    for encap in ENCAPS {
        let mut a = host_a(encap, false);
        let mut b = host_b(false);
        let f = big_v4(false);
        let (v, _) = run(&mut a, 1, &f);
        let Verdict::Replicate(txs) = v else {
            panic!("{encap:?}: {v:?}")
        };
        assert_eq!(txs.len(), 2, "{encap:?}");
        let mut data = vec![0u8; 1480];
        let mut got = 0;
        for t in &txs {
            assert_eq!(t.vif, VifId(0));
            assert!(t.frame.len() <= 1514, "{} bytes on the wire", t.frame.len());
            let (v, out) = run(&mut b, 0, &t.frame);
            assert_eq!(
                v,
                Verdict::Transmit(VifId(1)),
                "{encap:?}: fragment decapsulated"
            );
            let ip = ipv4::Packet::new_checked(&out[14..]).unwrap();
            assert!(ip.verify_checksum());
            let off = usize::from(ip.frag_offset());
            let part = ip.payload();
            data[off..off + part.len()].copy_from_slice(part);
            got += part.len();
        }
        assert_eq!(got, 1480);
        assert_eq!(
            &data[..],
            &f[34..],
            "{encap:?}: the fragments reassemble the datagram"
        );
        assert!(a.poll_transmit().is_none(), "no ICMP error");
        assert_eq!(a.dropstats().total, 0);
    }
}

#[test]
fn too_big_ipv6_gets_packet_too_big() {
    let mut a = host_a_v6();
    let l4 = udp_l4(5000, 5201, &[7u8; 1452]);
    let (s, d) = (v6("fd00::3"), v6("fd00::5"));
    let f = frame_v6(GATEWAY_MAC.0, (s, d), ip_proto::UDP, 64, &l4);
    assert_eq!(run(&mut a, 1, &f).0, Verdict::Drop(DropReason::TooBig));
    let tx = a.poll_transmit().expect("an ICMPv6 error");
    let ip = ipv6::Packet::new_checked(&tx.frame[14..]).unwrap();
    assert_eq!(
        (ip.src(), ip.dst(), ip.next_header()),
        (d, s, ip_proto::ICMPV6)
    );
    let m = &tx.frame[54..];
    assert_eq!(m[0], 2, "Packet Too Big");
    assert_eq!(u32::from_be_bytes([m[4], m[5], m[6], m[7]]), 1500 - 32);
    let (es, ed) = (IpAddr::V6(d), IpAddr::V6(s));
    assert_eq!(checksum::l4_checksum(&es, &ed, ip_proto::ICMPV6, m), 0);
}

/// The flow key of VRF 1's UDP 40000 -> 5201 from `src` to `dst` (the walk's iperf3 flow).
fn udp_key(src: IpAddr, dst: IpAddr) -> FlowKey {
    FlowKey {
        vrf: VrfId(1),
        proto: ip_proto::UDP,
        src,
        dst,
        sport: 40000,
        dport: 5201,
    }
}

#[test]
fn later_fragments_on_a_policy_vif_follow_the_first_fragments_flow() {
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, true);
    let key = udp_key(IpAddr::V4(vm_ip(3)), IpAddr::V4(vm_ip(5)));
    let (first, second) = udp_fragments(1400, 1376);
    // No flow yet: the first fragment is held and punted, the second held behind it.
    assert!(matches!(run(&mut a, 1, &first).0, Verdict::Punt { key: Some(k), .. } if k == key));
    assert_eq!(run(&mut a, 1, &second).0, Verdict::Held);
    let released = a.apply(Op::AddFlow(flow_spec(key, 3))).unwrap().released;
    assert_eq!(released.len(), 2, "both fragments released");
    for r in &released {
        assert_eq!(r.verdict, Verdict::Transmit(VifId(0)));
    }
    // With the flow installed: both go, and count in the flow entry.
    let (mut first, mut second) = udp_fragments(1400, 1376);
    for f in [&mut first, &mut second] {
        f[18..20].copy_from_slice(&0x4321u16.to_be_bytes()); // another datagram
        ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
    }
    assert_eq!(run(&mut a, 1, &first).0, Verdict::Transmit(VifId(0)));
    assert_eq!(run(&mut a, 1, &second).0, Verdict::Transmit(VifId(0)));
    let flows = a.dump_flows();
    let fwd = flows.iter().find(|f| f.key == key).unwrap();
    assert_eq!(fwd.packets, 4);
    // A later fragment whose first one was never seen waits for it (`frag_order.rs`) ...
    second[18..20].copy_from_slice(&0x7777u16.to_be_bytes());
    ipv4::Packet::new_unchecked(&mut second[14..]).fill_checksum();
    assert_eq!(run(&mut a, 1, &second).0, Verdict::Held);
    // ... and is dropped when it never comes; the fragment table forgets too: after the
    // timeout a later fragment of the datagram seen before waits (and is dropped) as well.
    a.age_flows(T0 + std::time::Duration::from_secs(5));
    assert_eq!(a.dropstats().drops.get(&DropReason::Fragment), Some(&1));
    let (_, late) = udp_fragments(1400, 1376);
    let mut late = late;
    late[18..20].copy_from_slice(&0x4321u16.to_be_bytes());
    ipv4::Packet::new_unchecked(&mut late[14..]).fill_checksum();
    let mut b = PacketBuf::from_frame(&late);
    let v = a.process(
        T0 + std::time::Duration::from_secs(5),
        VifId(1),
        &mut b,
        RxMeta::default(),
    );
    assert_eq!(v, Verdict::Held);
    a.age_flows(T0 + std::time::Duration::from_secs(8));
    assert_eq!(a.dropstats().drops.get(&DropReason::Fragment), Some(&2));
}

fn arp_request(target: std::net::Ipv4Addr, sender: std::net::Ipv4Addr) -> Vec<u8> {
    use filament_wire_pkt::arp;
    let mut f = vec![0u8; 14 + arp::PACKET_LEN];
    ethernet::Repr {
        dst: [0xff; 6],
        src: vm_mac(3).0,
        vlan_tci: None,
        ethertype: ethernet::ethertype::ARP,
    }
    .emit(&mut f);
    arp::Repr {
        operation: arp::op::REQUEST,
        sender_mac: vm_mac(3).0,
        sender_ip: sender,
        target_mac: [0; 6],
        target_ip: target,
    }
    .emit(&mut f[14..]);
    f
}

#[test]
fn arp_is_answered_only_with_arp_proxy_on() {
    use filament_wire_pkt::arp;
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, false);
    // Default (an agent answers): punted.
    assert!(matches!(
        run(&mut a, 1, &arp_request(vm_ip(5), vm_ip(3))).0,
        Verdict::Punt {
            reason: PuntReason::Arp,
            ..
        }
    ));
    let mut a = host_a_cfg(
        TunnelEncap::MplsOverUdp { label: 16 },
        false,
        ForwarderCfg {
            arp_proxy: true,
            ..Default::default()
        },
    );
    let (v, reply) = run(&mut a, 1, &arp_request(vm_ip(5), vm_ip(3)));
    assert_eq!(v, Verdict::Transmit(VifId(1)));
    assert_eq!(&reply[..6], &vm_mac(3).0);
    let r = arp::Repr::parse(&arp::Packet::new_checked(&reply[14..]).unwrap()).unwrap();
    assert_eq!(r.operation, arp::op::REPLY);
    assert_eq!((r.sender_mac, r.sender_ip), (GATEWAY_MAC.0, vm_ip(5)));
    assert_eq!((r.target_mac, r.target_ip), (vm_mac(3).0, vm_ip(3)));
    // Its own address, an unrouted one and gratuitous ARP: not answered.
    for (t, s) in [
        (vm_ip(3), vm_ip(4)),
        (vm_ip(99), vm_ip(3)),
        (vm_ip(3), vm_ip(3)),
    ] {
        assert!(!matches!(
            run(&mut a, 1, &arp_request(t, s)).0,
            Verdict::Transmit(_)
        ));
    }
}

/// The two fragments of a UDP datagram (1400 bytes of data) from fd00::3 to fd00::5 with
/// IPv6 Fragment headers (RFC 8200 §4.5), the first carrying 1008 bytes of it.
fn v6_udp_fragments(id: u32) -> (Vec<u8>, Vec<u8>) {
    let (s, d) = (v6("fd00::3"), v6("fd00::5"));
    let mut l4 = udp_l4(40000, 5201, &[9u8; 1400]);
    let c = checksum::l4_checksum(&IpAddr::V6(s), &IpAddr::V6(d), ip_proto::UDP, &l4);
    l4[6..8].copy_from_slice(&c.to_be_bytes());
    let frag = |part: &[u8], off: usize, more: bool| {
        let off_m = (off as u16) | u16::from(more);
        let mut fh = vec![ip_proto::UDP, 0];
        fh.extend_from_slice(&off_m.to_be_bytes());
        fh.extend_from_slice(&id.to_be_bytes());
        fh.extend_from_slice(part);
        frame_v6(GATEWAY_MAC.0, (s, d), 44, 64, &fh)
    };
    (frag(&l4[..1008], 0, true), frag(&l4[1008..], 1008, false))
}

#[test]
fn ipv6_fragments_on_a_policy_vif_follow_the_first_fragments_flow() {
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, true);
    a.apply(Op::AddRoute {
        vrf: VrfId(1),
        prefix: "fd00::5/128".parse().unwrap(),
        nh: NhId(10),
    })
    .unwrap();
    let key = udp_key(IpAddr::V6(v6("fd00::3")), IpAddr::V6(v6("fd00::5")));
    a.apply(Op::AddFlow(flow_spec(key, 3))).unwrap();
    let (first, second) = v6_udp_fragments(7);
    let (v, out) = run(&mut a, 1, &first);
    assert_eq!(
        v,
        Verdict::Transmit(VifId(0)),
        "first fragment: the UDP flow by its ports"
    );
    assert!(
        out.ends_with(&first[54..]),
        "fragment header and data intact"
    );
    assert_eq!(run(&mut a, 1, &second).0, Verdict::Transmit(VifId(0)));
    let fwd = a.dump_flows().into_iter().find(|f| f.key == key).unwrap();
    assert_eq!(fwd.packets, 2);
    let (_, orphan) = v6_udp_fragments(8);
    assert_eq!(run(&mut a, 1, &orphan).0, Verdict::Held);
    a.age_flows(T0 + std::time::Duration::from_secs(3));
    assert_eq!(a.dropstats().drops.get(&DropReason::Fragment), Some(&1));
}

#[test]
fn icmp_errors_on_a_policy_vif_follow_the_flow_they_quote() {
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, true);
    // VM1 -> VM5 UDP 40000 -> 5201 allowed.
    let key = udp_key(IpAddr::V4(vm_ip(3)), IpAddr::V4(vm_ip(5)));
    a.apply(Op::AddFlow(flow_spec(key, 3))).unwrap();
    // VM1 answers a packet VM5 sent it (5201 -> 40000) with port unreachable: the error
    // quotes that packet, whose flow (reversed) is the installed one.
    let error_about = |sport: u16, dport: u16| {
        let quoted = frame_v4(
            GATEWAY_MAC,
            vm_mac(5),
            vm_ip(5),
            vm_ip(3),
            ip_proto::UDP,
            63,
            &udp_l4(sport, dport, b"hello"),
        );
        let mut icmp = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted[14..14 + 28]);
        frame_v4(
            GATEWAY_MAC,
            vm_mac(3),
            vm_ip(3),
            vm_ip(5),
            ip_proto::ICMP,
            64,
            &icmp,
        )
    };
    let (v, _) = run(&mut a, 1, &error_about(5201, 40000));
    assert_eq!(v, Verdict::Transmit(VifId(0)), "forwarded with its flow");
    let rev = a
        .dump_flows()
        .into_iter()
        .find(|f| f.key.src == IpAddr::V4(vm_ip(5)))
        .unwrap();
    let fwd = a.dump_flows().into_iter().find(|f| f.key == key).unwrap();
    assert_eq!(
        fwd.packets + rev.packets,
        1,
        "counted in the quoted flow's pair"
    );
    // An error about a flow nobody installed is a flow miss of its own, as before.
    assert!(matches!(
        run(&mut a, 1, &error_about(5201, 40001)).0,
        Verdict::Punt {
            reason: PuntReason::FlowMiss,
            ..
        }
    ));
}
