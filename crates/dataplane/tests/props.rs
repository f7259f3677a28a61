//! Property tests: encapsulation then decapsulation is the identity on the
//! inner frame (for every encapsulation, bridged and routed), and the
//! pipeline never panics on arbitrary bytes from any kind of interface.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::{ethernet, ip_proto, ipv4};
use proptest::prelude::*;

fn any_encap() -> impl Strategy<Value = TunnelEncap> {
    prop_oneof![
        Just(TunnelEncap::MplsOverUdp { label: 16 }),
        Just(TunnelEncap::MplsOverGre { label: 16 }),
        Just(TunnelEncap::Vxlan { vni: 5001 }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bridged_encap_then_decap_is_identity(
        encap in any_encap(),
        proto in prop_oneof![Just(ip_proto::UDP), Just(ip_proto::TCP), Just(ip_proto::ICMP)],
        sport in any::<u16>(), dport in any::<u16>(), ttl in 1u8..=255,
        payload in proptest::collection::vec(any::<u8>(), 0..1200),
    ) {
        // Bridged (VM MAC as destination): L2 label / VNI carry the frame.
        let encap = match encap { TunnelEncap::MplsOverUdp { .. } => TunnelEncap::MplsOverUdp { label: 18 },
            TunnelEncap::MplsOverGre { .. } => TunnelEncap::MplsOverGre { label: 18 }, v => v };
        let mut a = host_a(encap, false);
        let mut b = host_b(false);
        let l4 = match proto { ip_proto::UDP => udp_l4(sport, dport, &payload), ip_proto::TCP => tcp_l4(sport, dport, 0x10, &payload),
            _ => { let mut e = icmp_echo(sport, dport); e.extend_from_slice(&payload); e } };
        let f = frame_v4(vm_mac(5), vm_mac(3), vm_ip(3), vm_ip(5), proto, ttl, &l4);
        let (v, wire) = run(&mut a, 1, &f);
        prop_assert_eq!(v, Verdict::Transmit(VifId(0)));
        let (v, inner) = run(&mut b, 0, &wire);
        prop_assert_eq!(v, Verdict::Transmit(VifId(1)));
        prop_assert_eq!(inner, f);
    }

    #[test]
    fn routed_encap_then_decap_equals_local_routing(
        encap in any_encap(), sport in any::<u16>(), dport in any::<u16>(), ttl in 2u8..=255,
        payload in proptest::collection::vec(any::<u8>(), 0..1200),
    ) {
        let mut a = host_a(encap, false);
        let mut b = host_b(false);
        let f = frame_v4(GATEWAY_MAC, vm_mac(3), vm_ip(3), vm_ip(5), ip_proto::UDP, ttl, &udp_l4(sport, dport, &payload));
        let (v, wire) = run(&mut a, 1, &f);
        prop_assert_eq!(v, Verdict::Transmit(VifId(0)));
        let (v, got) = run(&mut b, 0, &wire);
        prop_assert_eq!(v, Verdict::Transmit(VifId(1)));
        // What a one-hop router would deliver: L2 rewritten, TTL - 1.
        let mut want = f.clone();
        ethernet::Repr { dst: vm_mac(5).0, src: GATEWAY_MAC.0, vlan_tci: None, ethertype: 0x0800 }.emit(&mut want);
        ipv4::Packet::new_unchecked(&mut want[14..]).decrement_ttl();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn no_panic_on_arbitrary_bytes(
        vif_in in 0u32..4, policy in any::<bool>(), csum_partial in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..200),
        prefix in prop_oneof![
            Just(Vec::new()),
            // Plausible headers so the deeper parsers are reached.
            Just(vec![0x00, 0x00, 0x5e, 0x00, 0x01, 0x00, 2, 0, 0, 0, 0, 3, 0x08, 0x00]),
            Just(vec![0x02, 0xfa, 0, 0, 0, 1, 2, 0xfa, 0, 0, 0, 2, 0x08, 0x00, 0x45, 0, 0, 60, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1, 0xc0, 0, 0x19, 0xeb]),
        ],
    ) {
        let mut a = host_a(TunnelEncap::Vxlan { vni: 5001 }, policy);
        let mut frame = prefix;
        frame.extend_from_slice(&data);
        let mut buf = PacketBuf::from_frame(&frame);
        let _ = a.process(T0, VifId(vif_in), &mut buf, RxMeta { csum_partial, vlan_tci: None });
        let _ = a.dump_flows();
        let _ = a.age_flows(T0 + std::time::Duration::from_secs(1000));
    }
}
