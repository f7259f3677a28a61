//! ICMP errors about NAT'd flows (`errflow.rs`): an error quoting the translated header is
//! matched to the flow of the quoted header and translated back, outer and quoted header
//! alike, with every checksum right, so the workload sees an error about the packet it sent.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::{IpAddr, Ipv6Addr};

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::{checksum, ethernet, ip_proto, ipv4, ipv6, tcp};

const VIP: &str = "10.1.1.100";
const SNAT: &str = "10.1.1.200";

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// VM1 (vif 1) -> VIP:80 is DNATed to VM2 10.1.1.4:8080 (vif 2) and SNATed from
/// 10.1.1.200:40000 (the `nat_both_ways` scenario of flows.rs), over `proto`. Returns the
/// forwarder with the flow installed, the packet VM1 sent and the translated one VM2 got.
fn nat_lab(proto: u8) -> (Forwarder, Vec<u8>, Vec<u8>) {
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, true);
    let l4 = if proto == ip_proto::TCP {
        tcp_l4(1000, 80, tcp::flags::SYN, b"data of the segment")
    } else {
        udp_l4(1000, 80, b"data of the datagram")
    };
    let sent = frame_v4(GATEWAY_MAC, vm_mac(3), vm_ip(3), ip4(VIP), proto, 64, &l4);
    let Verdict::Punt { key: Some(key), .. } = run(&mut a, 1, &sent).0 else {
        panic!()
    };
    let nat = NatRewrite {
        src_ip: Some(v4(SNAT)),
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
    assert_eq!(rel.released[0].verdict, Verdict::Transmit(VifId(2)));
    let got = rel.released[0].buf.to_vec();
    (a, sent, got)
}

/// An ICMPv4 error (`typ`, `code`) from `src` to `dst` (Ethernet from VM `from`) quoting
/// `quote` bytes of the IP packet in `about` (an Ethernet frame).
fn icmp4_error(from: u8, src: IpAddr, dst: IpAddr, typ: u8, about: &[u8], quote: usize) -> Vec<u8> {
    let mut m = vec![typ, 3, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&about[14..14 + quote]);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        panic!()
    };
    let mut f = frame_v4(GATEWAY_MAC, vm_mac(from), s, d, 254, 64, &m);
    f[23] = ip_proto::ICMP;
    ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
    f
}

/// The quoted packet's IPv4 header fields that NAT touches, and its ports.
fn quote_of(icmp_frame: &[u8]) -> (IpAddr, IpAddr, u16, u16, &[u8]) {
    let q = &icmp_frame[14 + 20 + 8..];
    // (A quote may be cut short of the length its header gives.)
    let ip = ipv4::Packet::new_unchecked(&q[..20]);
    assert_eq!(
        checksum::checksum(&q[..20]),
        0,
        "quoted IPv4 header checksum"
    );
    let p = |at: usize| u16::from_be_bytes([q[20 + at], q[21 + at]]);
    (ip.src().into(), ip.dst().into(), p(0), p(2), q)
}

/// Outer IPv4 and ICMP checksums verify.
fn outer_ok(f: &[u8]) -> (IpAddr, IpAddr) {
    let ip = ipv4::Packet::new_checked(&f[14..]).unwrap();
    assert!(ip.verify_checksum(), "outer IPv4 checksum");
    assert_eq!(ip.protocol(), ip_proto::ICMP);
    assert_eq!(checksum::checksum(ip.payload()), 0, "ICMP checksum");
    (ip.src().into(), ip.dst().into())
}

#[test]
fn an_error_about_the_translated_packet_reaches_the_sender_about_what_it_sent() {
    // VM2 answers the translated UDP datagram with port unreachable, quoting its IP header
    // and 8 bytes (RFC 792); the error is addressed to the SNAT address.
    let (mut a, sent, got) = nat_lab(ip_proto::UDP);
    let err = icmp4_error(4, IpAddr::V4(vm_ip(4)), v4(SNAT), 3, &got, 28);
    let (v, out) = run(&mut a, 2, &err);
    assert_eq!(v, Verdict::Transmit(VifId(1)), "to VM1, not a flow miss");
    golden("nat_icmp_error_to_sender", &out);
    assert_eq!(outer_ok(&out), (v4(VIP), IpAddr::V4(vm_ip(3))));
    let (qs, qd, sp, dp, q) = quote_of(&out);
    assert_eq!((qs, qd, sp, dp), (IpAddr::V4(vm_ip(3)), v4(VIP), 1000, 80));
    // The quoted UDP header is VM1's, checksum included (it covers data not quoted).
    assert_eq!(&q[20..28], &sent[34..42]);
    // Counted in the flow pair, not punted.
    assert_eq!(a.dropstats().punts.get(&PuntReason::FlowMiss), Some(&1));
    let packets: u64 = a.dump_flows().iter().map(|f| f.packets).sum();
    assert_eq!(packets, 2, "the released packet and the error");
}

#[test]
fn a_full_tcp_quote_keeps_its_segment_checksum() {
    // Linux quotes as much as fits in 576 bytes: the whole segment, whose checksum can be
    // verified against the quoted (translated back) addresses.
    let (mut a, sent, got) = nat_lab(ip_proto::TCP);
    let quote = got.len() - 14;
    let err = icmp4_error(4, IpAddr::V4(vm_ip(4)), v4(SNAT), 3, &got, quote);
    let (v, out) = run(&mut a, 2, &err);
    assert_eq!(v, Verdict::Transmit(VifId(1)));
    golden("nat_icmp_error_tcp_full_quote", &out);
    assert_eq!(outer_ok(&out), (v4(VIP), IpAddr::V4(vm_ip(3))));
    let (qs, qd, sp, dp, q) = quote_of(&out);
    assert_eq!((qs, qd, sp, dp), (IpAddr::V4(vm_ip(3)), v4(VIP), 1000, 80));
    let seg = tcp::Packet::new_checked(&q[20..]).unwrap();
    assert!(seg.verify_checksum(&qs, &qd), "quoted TCP checksum");
    assert_eq!(&q[20..], &sent[34..], "the segment VM1 sent, byte for byte");
}

#[test]
fn an_error_from_the_first_side_reaches_the_server_about_its_reply() {
    // VM1 refuses the reply (which it saw from VIP:80): its error, addressed to the VIP and
    // quoting VIP:80 -> VM1:1000, reaches VM2 about 10.1.1.4:8080 -> SNAT:40000.
    let (mut a, _, _) = nat_lab(ip_proto::UDP);
    let reply_as_seen = frame_v4(
        GATEWAY_MAC,
        vm_mac(3),
        ip4(VIP),
        vm_ip(3),
        ip_proto::UDP,
        63,
        &udp_l4(80, 1000, b"reply"),
    );
    let err = icmp4_error(3, IpAddr::V4(vm_ip(3)), v4(VIP), 3, &reply_as_seen, 28);
    let (v, out) = run(&mut a, 1, &err);
    assert_eq!(v, Verdict::Transmit(VifId(2)));
    golden("nat_icmp_error_to_server", &out);
    assert_eq!(outer_ok(&out), (v4(SNAT), IpAddr::V4(vm_ip(4))));
    let (qs, qd, sp, dp, _) = quote_of(&out);
    assert_eq!(
        (qs, qd, sp, dp),
        (IpAddr::V4(vm_ip(4)), v4(SNAT), 8080, 40000)
    );
}

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Ethernet (from VM `from`) + IPv6 `src` -> `dst` + `payload` of `next`.
fn frame6(from: u8, src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + payload.len()];
    ethernet::Repr {
        dst: GATEWAY_MAC.0,
        src: vm_mac(from).0,
        vlan_tci: None,
        ethertype: ethernet::ethertype::IPV6,
    }
    .emit(&mut f);
    ipv6::Repr {
        src,
        dst,
        next_header: next,
        payload_len: payload.len(),
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut f[14..]);
    f[54..].copy_from_slice(payload);
    f
}

#[test]
fn icmpv6_errors_about_a_nated_flow_are_translated_with_the_pseudo_header() {
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, true);
    let (vm1, vm2, vip, snat) = (
        a6("fd00::3"),
        a6("fd00::4"),
        a6("fd00::100"),
        a6("fd00::200"),
    );
    for (p, nh) in [("fd00::3/128", 1), ("fd00::4/128", 2)] {
        a.apply(Op::AddRoute {
            vrf: VrfId(1),
            prefix: p.parse().unwrap(),
            nh: NhId(nh),
        })
        .unwrap();
    }
    let mut l4 = udp_l4(1000, 80, b"six");
    let c = checksum::l4_checksum(&vm1.into(), &vip.into(), ip_proto::UDP, &l4);
    l4[6..8].copy_from_slice(&c.to_be_bytes());
    let sent = frame6(3, vm1, vip, ip_proto::UDP, &l4);
    let Verdict::Punt { key: Some(key), .. } = run(&mut a, 1, &sent).0 else {
        panic!()
    };
    let nat = NatRewrite {
        src_ip: Some(snat.into()),
        src_port: Some(40000),
        dst_ip: Some(vm2.into()),
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
    let got = rel.released[0].buf.to_vec();
    // Destination unreachable (port), RFC 4443 §3.1, quoting the whole translated packet.
    let mut m = vec![1u8, 4, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&got[14..]);
    let c = checksum::l4_checksum(&vm2.into(), &snat.into(), ip_proto::ICMPV6, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let err = frame6(4, vm2, snat, ip_proto::ICMPV6, &m);
    let (v, out) = run(&mut a, 2, &err);
    assert_eq!(v, Verdict::Transmit(VifId(1)));
    golden("nat_icmp6_error_to_sender", &out);
    let ip = ipv6::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (vip, vm1));
    let msg = &out[54..];
    assert_eq!(
        checksum::l4_checksum(&vip.into(), &vm1.into(), ip_proto::ICMPV6, msg),
        0,
        "ICMPv6 checksum under the translated pseudo-header"
    );
    let q = ipv6::Packet::new_checked(&msg[8..]).unwrap();
    assert_eq!((q.src(), q.dst()), (vm1, vip));
    let ql4 = &msg[8 + 40..];
    assert_eq!(&ql4[..4], &[0x03, 0xe8, 0x00, 0x50], "ports 1000 -> 80");
    assert_eq!(
        checksum::l4_checksum(&vm1.into(), &vip.into(), ip_proto::UDP, ql4),
        0,
        "quoted UDP checksum"
    );
}

#[test]
fn errors_about_plain_flows_are_left_as_they_are() {
    // A Forward flow: the error follows it unchanged (walk.rs has the forwarding; here the
    // bytes): only the TTL and the header checksum move.
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, true);
    let key = FlowKey {
        vrf: VrfId(1),
        proto: ip_proto::UDP,
        src: IpAddr::V4(vm_ip(3)),
        dst: IpAddr::V4(vm_ip(4)),
        sport: 1000,
        dport: 2000,
    };
    a.apply(Op::AddFlow(flow_spec(key, 3))).unwrap();
    let about = frame_v4(
        GATEWAY_MAC,
        vm_mac(3),
        vm_ip(3),
        vm_ip(4),
        ip_proto::UDP,
        63,
        &udp_l4(1000, 2000, b"x"),
    );
    let err = icmp4_error(4, IpAddr::V4(vm_ip(4)), IpAddr::V4(vm_ip(3)), 3, &about, 28);
    let (v, out) = run(&mut a, 2, &err);
    assert_eq!(v, Verdict::Transmit(VifId(1)));
    assert_eq!(&out[14 + 20..], &err[14 + 20..], "ICMP message untouched");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any NAT rewrite (each field present or not), UDP or TCP, any quote length from the
        /// RFC 792 minimum to the whole packet: the error reaches VM1 about exactly the header
        /// it sent, and every checksum (outer IPv4, ICMP, quoted IPv4, quoted L4 when whole)
        /// verifies.
        #[test]
        fn translated_errors_quote_what_the_sender_sent(
            tcp_not_udp in any::<bool>(),
            snat in proptest::option::of(1u8..250),
            sport in proptest::option::of(1u16..),
            dport in proptest::option::of(1u16..),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            cut in any::<u16>(),
        ) {
            // DNAT to VM2 always (the route to VM2 is what carries the packet); the rest varies.
            let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, true);
            let proto = if tcp_not_udp { ip_proto::TCP } else { ip_proto::UDP };
            let l4 = if tcp_not_udp {
                tcp_l4(1000, 80, tcp::flags::SYN, &payload)
            } else {
                udp_l4(1000, 80, &payload)
            };
            let sent = frame_v4(GATEWAY_MAC, vm_mac(3), vm_ip(3), ip4(VIP), proto, 64, &l4);
            let Verdict::Punt { key: Some(key), .. } = run(&mut a, 1, &sent).0 else {
                panic!()
            };
            let snat_ip = snat.map(|n| IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, n)));
            let nat = NatRewrite {
                src_ip: snat_ip,
                src_port: sport,
                dst_ip: Some(IpAddr::V4(vm_ip(4))),
                dst_port: dport,
                dst_vrf: None,
            };
            let rel = a
                .apply(Op::AddFlow(FlowSpec { key, action: FlowAction::Nat(nat), mirror: None, reverse_action: None }))
                .unwrap();
            prop_assert_eq!(&rel.released[0].verdict, &Verdict::Transmit(VifId(2)));
            let got = rel.released[0].buf.to_vec();
            let whole = got.len() - 14;
            let quote = 28 + usize::from(cut) % (whole - 27);
            let to = snat_ip.unwrap_or(IpAddr::V4(vm_ip(3)));
            let err = icmp4_error(4, IpAddr::V4(vm_ip(4)), to, 3, &got, quote);
            let (v, out) = run(&mut a, 2, &err);
            prop_assert_eq!(v, Verdict::Transmit(VifId(1)));
            prop_assert_eq!(outer_ok(&out), (v4(VIP), IpAddr::V4(vm_ip(3))));
            let (qs, qd, sp, dp, q) = quote_of(&out);
            prop_assert_eq!((qs, qd, sp, dp), (IpAddr::V4(vm_ip(3)), v4(VIP), 1000, 80));
            if quote == whole {
                prop_assert_eq!(checksum::l4_checksum(&qs, &qd, proto, &q[20..]), 0);
                prop_assert_eq!(&q[20..], &sent[34..]);
            } else if !tcp_not_udp {
                prop_assert_eq!(&q[20..28], &sent[34..42], "the UDP header as sent");
            }
        }
    }
}
