//! Fabric packets whose outer IPv4 header carries options (IHL 6..15, RFC 791 §3.1: "The
//! option field is variable in length. There may be zero or more options."): the overlay
//! payload starts after the whole header (IHL*4), so decapsulation gives the same inner frame
//! as without options, for MPLSoUDP, MPLSoGRE and VXLAN, bridged and routed. The options are
//! covered by the header checksum.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::{ip_proto, ipv4};
use proptest::prelude::*;

/// `wire` (Ethernet + a 20-byte IPv4 header + payload) with `opts` (a multiple of 4 bytes, at
/// most 40) inserted after the fixed header: IHL, total length and checksum fixed up.
fn with_options(wire: &[u8], opts: &[u8]) -> Vec<u8> {
    assert_eq!(wire[14], 0x45);
    assert!(opts.len().is_multiple_of(4) && opts.len() <= 40);
    let mut f = wire[..34].to_vec();
    f.extend_from_slice(opts);
    f.extend_from_slice(&wire[34..]);
    f[14] = 0x40 | ((20 + opts.len()) / 4) as u8;
    let total = u16::from_be_bytes([f[16], f[17]]) + opts.len() as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
    f
}

/// IPv4 options of `words` 32-bit words: a Router Alert (RFC 2113) when there is room,
/// then `fill` (NOP, or arbitrary option bytes the forwarder must not interpret), ending in EOL.
fn options(words: usize, fill: &[u8]) -> Vec<u8> {
    let mut o = vec![0u8; words * 4];
    let mut at = 0;
    if words >= 1 {
        o[..4].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]);
        at = 4;
    }
    let end = o.len().saturating_sub(1).max(at);
    for (i, b) in o[at..end].iter_mut().enumerate() {
        *b = fill.get(i).copied().unwrap_or(1);
    }
    o
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn outer_options_decapsulate_as_without(
        encap in any_encap(),
        bridged in any::<bool>(),
        words in 1usize..=10,
        fill in proptest::collection::vec(any::<u8>(), 0..40),
        sport in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        // Bridged: VM5's MAC, the L2 label (18) / the VNI. Routed: the gateway MAC, label 16.
        let (encap, dmac) = match (encap, bridged) {
            (TunnelEncap::MplsOverUdp { .. }, true) => (TunnelEncap::MplsOverUdp { label: 18 }, vm_mac(5)),
            (TunnelEncap::MplsOverGre { .. }, true) => (TunnelEncap::MplsOverGre { label: 18 }, vm_mac(5)),
            (e, true) => (e, vm_mac(5)),
            (e, false) => (e, GATEWAY_MAC),
        };
        let mut a = host_a(encap, false);
        let f = frame_v4(dmac, vm_mac(3), vm_ip(3), vm_ip(5), ip_proto::UDP, 64, &udp_l4(sport, 5201, &payload));
        let (v, wire) = run(&mut a, 1, &f);
        prop_assert_eq!(v, Verdict::Transmit(VifId(0)));
        let (v, plain) = run(&mut host_b(false), 0, &wire);
        prop_assert_eq!(v, Verdict::Transmit(VifId(1)));

        let opt = with_options(&wire, &options(words, &fill));
        let mut b = host_b(false);
        let (v, got) = run(&mut b, 0, &opt);
        prop_assert_eq!(v, Verdict::Transmit(VifId(1)));
        prop_assert_eq!(got, plain);
        prop_assert_eq!(b.dropstats().total, 0);

        // A flipped option byte breaks the header checksum: dropped and counted.
        let mut bad = opt.clone();
        bad[34 + 1] ^= 0x40;
        let mut b = host_b(false);
        let (v, _) = run(&mut b, 0, &bad);
        prop_assert_eq!(v, Verdict::Drop(DropReason::Checksum));
    }
}

/// The largest header (IHL 15) with the overlay header right behind it, cut after the UDP
/// ports: counted as truncated, not passed as someone else's.
#[test]
fn an_ihl_15_mplsoudp_frame_cut_after_its_options_is_counted() {
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, false);
    let f = frame_v4(
        GATEWAY_MAC,
        vm_mac(3),
        vm_ip(3),
        vm_ip(5),
        ip_proto::UDP,
        64,
        &udp_l4(40000, 5201, b"x"),
    );
    let (_, wire) = run(&mut a, 1, &f);
    let opt = with_options(&wire, &options(10, &[]));
    assert_eq!(opt[14], 0x4f);
    // The outer IPv4 header claims the whole datagram: a frame cut inside it is malformed;
    // the forwarder counts it (the kernel would have dropped it uncounted).
    let mut b = host_b(false);
    let (v, _) = run(&mut b, 0, &opt[..14 + 60 + 4]);
    assert!(
        matches!(
            v,
            Verdict::Drop(DropReason::Truncated | DropReason::Malformed)
        ),
        "{v:?}"
    );
    assert_eq!(b.dropstats().total, 1);
}
