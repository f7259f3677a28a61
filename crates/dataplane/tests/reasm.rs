//! Outer IPv4 fragments of overlay packets addressed to our fabric IP (`reasm.rs`, RFC 791
//! §3.2): however a tunnel packet is split and in whatever order its fragments arrive, it
//! decapsulates to the same inner frame as unfragmented; overlaps, timeouts and bounds drop
//! and count every fragment discarded.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::*;
use filament_dataplane::reasm::{Reasm, ReasmLimits, Reassembler};
use filament_dataplane::*;
use filament_wire_pkt::{ip_proto, ipv4};
use proptest::prelude::*;

/// The fragments of `wire` (Ethernet + IPv4 + payload) cut at payload offsets `cuts`
/// (multiples of 8, ascending, inside the payload): RFC 791 §3.2's fragmentation procedure
/// (header copied, Total Length, MF and offset set, checksum).
fn fragments(wire: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let hl = usize::from(wire[14] & 0x0f) * 4;
    let payload = &wire[14 + hl..];
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(payload.len());
    bounds
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let mut f = wire[..14 + hl].to_vec();
            f.extend_from_slice(&payload[a..b]);
            f[16..18].copy_from_slice(&((hl + b - a) as u16).to_be_bytes());
            let more = b < payload.len();
            // DF as sent; MF on all but the last.
            let df = u16::from(wire[20] & 0x40) << 8;
            let ff = df | ((a / 8) as u16) | if more { 0x2000 } else { 0 };
            f[20..22].copy_from_slice(&ff.to_be_bytes());
            ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
            f
        })
        .collect()
}

/// An overlay frame from host A to host B with `payload` in a UDP datagram VM1 -> VM3.
fn overlay_wire(encap: TunnelEncap, payload: &[u8]) -> Vec<u8> {
    let mut a = host_a(encap, false);
    let f = vm_udp_routed_with(3, vm_ip(5), 40000, 5201, payload);
    let (v, wire) = run(&mut a, 1, &f);
    assert_eq!(v, Verdict::Transmit(VifId(0)));
    wire
}

/// Cut points (multiples of 8) inside a payload of `len` bytes from arbitrary picks.
fn cuts_of(len: usize, picks: &[u16]) -> Vec<usize> {
    let mut c: Vec<usize> = picks
        .iter()
        .map(|p| (usize::from(*p) % len.max(1)) & !7)
        .filter(|c| *c > 0 && *c < len)
        .collect();
    c.sort_unstable();
    c.dedup();
    c
}

#[test]
fn a_fragmented_mplsoudp_frame_decapsulates_as_unfragmented() {
    let wire = overlay_wire(TunnelEncap::MplsOverUdp { label: 16 }, &[0x5a; 100]);
    let mut b = host_b(false);
    let (v, plain) = run(&mut b, 0, &wire);
    assert_eq!(v, Verdict::Transmit(VifId(1)));

    // The first fragment holds the UDP header and a little: the label is in the second.
    let frags = fragments(&wire, &[8, 48]);
    assert_eq!(frags.len(), 3);
    let mut b = host_b(false);
    assert_eq!(run(&mut b, 0, &frags[0]).0, Verdict::Held);
    assert_eq!(run(&mut b, 0, &frags[1]).0, Verdict::Held);
    assert_eq!(b.reassembler().pending(), 1);
    let (v, got) = run(&mut b, 0, &frags[2]);
    assert_eq!(v, Verdict::Transmit(VifId(1)));
    assert_eq!(got, plain);
    golden("decap_mplsoudp_fragmented", &got);
    assert_eq!(b.dropstats().total, 0);
    assert_eq!(b.reassembler().pending(), 0);
    assert_eq!(b.reassembler().held_bytes(), 0);
    assert_eq!(b.reassembler().counters().datagrams, 1);
    assert_eq!(b.reassembler().counters().fragments, 3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any split, any arrival order, any encapsulation: the last fragment to arrive releases
    /// the inner frame, the same bytes as the unfragmented packet gives; nothing is dropped
    /// and nothing stays held.
    #[test]
    fn any_split_in_any_order_decapsulates_as_unfragmented(
        encap in any_encap(),
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
        picks in proptest::collection::vec(any::<u16>(), 1..8),
        order in any::<proptest::sample::Index>(),
        seed in any::<u64>(),
    ) {
        let wire = overlay_wire(encap, &payload);
        let (v, plain) = run(&mut host_b(false), 0, &wire);
        prop_assert_eq!(v, Verdict::Transmit(VifId(1)));
        let hl = usize::from(wire[14] & 0x0f) * 4;
        let cuts = cuts_of(wire.len() - 14 - hl, &picks);
        prop_assume!(!cuts.is_empty());
        let mut frags = fragments(&wire, &cuts);
        // A permutation from the seed (Fisher-Yates on a simple LCG), starting anywhere.
        let mut s = seed | 1;
        for i in (1..frags.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            frags.swap(i, (s >> 33) as usize % (i + 1));
        }
        let k = order.index(frags.len());
        frags.rotate_left(k);
        let mut b = host_b(false);
        let n = frags.len();
        for (i, f) in frags.iter().enumerate() {
            let (v, got) = run(&mut b, 0, f);
            if i + 1 < n {
                prop_assert_eq!(v, Verdict::Held);
            } else {
                prop_assert_eq!(v, Verdict::Transmit(VifId(1)));
                prop_assert_eq!(&got, &plain);
            }
        }
        prop_assert_eq!(b.dropstats().total, 0);
        prop_assert_eq!(b.reassembler().pending(), 0);
        prop_assert_eq!(b.reassembler().held_bytes(), 0);
    }

    /// The reassembler alone: the datagram comes back byte for byte (its header as sent, MF
    /// and offset clear), from any split in any order, with other datagrams interleaved.
    #[test]
    fn the_reassembler_returns_the_datagram_as_sent(
        payload in proptest::collection::vec(any::<u8>(), 1..3000),
        picks in proptest::collection::vec(any::<u16>(), 0..12),
        seed in any::<u64>(),
        df in any::<bool>(),
    ) {
        let mut wire = frame_v4(vm_mac(1), vm_mac(2), ip4(B_FABRIC_IP), ip4(A_FABRIC_IP), ip_proto::GRE, 64, &payload);
        if !df {
            wire[20] &= !0x40;
            ipv4::Packet::new_unchecked(&mut wire[14..]).fill_checksum();
        }
        let cuts = cuts_of(payload.len(), &picks);
        let mut frags = fragments(&wire, &cuts);
        // Another datagram (other identification) split alike, interleaved and left open.
        let mut other = wire.clone();
        other[18] ^= 0xff;
        ipv4::Packet::new_unchecked(&mut other[14..]).fill_checksum();
        let others = fragments(&other, &cuts);
        let mut s = seed | 1;
        for i in (1..frags.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            frags.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut r = Reassembler::new(ReasmLimits::default(), seed);
        let mut done = None;
        for (i, f) in frags.iter().enumerate() {
            if let Some(o) = others.get(i).filter(|_| others.len() > 1 && i + 1 < others.len()) {
                prop_assert_eq!(r.insert(T0, o).unwrap(), Reasm::Held);
            }
            if cuts.is_empty() {
                continue; // not a fragment: nothing to reassemble
            }
            match r.insert(T0, f).unwrap() {
                Reasm::Held => prop_assert!(i + 1 < frags.len()),
                Reasm::Done(d) => done = Some(d),
            }
        }
        if !cuts.is_empty() {
            prop_assert_eq!(done, Some(wire));
        }
        prop_assert_eq!(r.counters().datagrams, u64::from(!cuts.is_empty()));
    }

    /// Arbitrary fragments (any offsets, lengths, flags, identifications), at any times:
    /// every fragment is accepted into a datagram or dropped with a reason; what is held never
    /// exceeds the bounds; what comes out is a well-formed unfragmented IPv4 frame.
    #[test]
    fn arbitrary_fragments_stay_bounded_and_counted(
        frags in proptest::collection::vec(
            (0u16..4, any::<bool>(), 0u16..40, 1usize..200, 0u64..5000), 1..200),
    ) {
        let limits = ReasmLimits { datagrams: 3, bytes: 4000, fragments: 6, timeout: Duration::from_secs(2) };
        let mut r = Reassembler::new(limits, 7);
        let (mut dropped, mut errs, inserted) = (0u64, 0u64, frags.len() as u64);
        for (id, more, off8, len, ms) in frags {
            let len = if more { (len + 7) & !7 } else { len };
            let mut f = frame_v4(vm_mac(1), vm_mac(2), ip4(B_FABRIC_IP), ip4(A_FABRIC_IP), ip_proto::GRE, 64, &vec![id as u8; len]);
            f[18..20].copy_from_slice(&id.to_be_bytes());
            f[20..22].copy_from_slice(&(off8 | if more { 0x2000 } else { 0 }).to_be_bytes());
            ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
            let before = r.counters().fragments;
            match r.insert(Duration::from_millis(ms), &f) {
                Ok(Reasm::Held) => {}
                Ok(Reasm::Done(d)) => {
                    let p = ipv4::Packet::new_checked(&d[14..]).unwrap();
                    prop_assert!(p.verify_checksum());
                    prop_assert!(!p.more_frags() && p.frag_offset() == 0);
                    prop_assert_eq!(usize::from(p.total_len()), d.len() - 14);
                }
                Err(d) => {
                    prop_assert!(d.fragments >= 1);
                    dropped += d.fragments;
                    errs += 1;
                    // Refused on arrival, the fragment was not accepted.
                    prop_assert_eq!(r.counters().fragments, before);
                }
            }
            prop_assert!(r.held_bytes() <= limits.bytes);
            prop_assert!(r.pending() <= limits.datagrams);
        }
        let expired = r.expire(Duration::from_secs(3600));
        prop_assert_eq!(r.pending(), 0);
        prop_assert_eq!(r.held_bytes(), 0);
        // Every fragment was accepted or refused; every accepted one ended in a released
        // datagram, a discarded one (counted) or a timeout (counted).
        let c = r.counters();
        prop_assert_eq!(inserted, c.fragments + errs);
        prop_assert_eq!(c.fragments, c.released + (dropped - errs) + expired);
    }
}

#[test]
fn a_duplicate_fragment_discards_its_datagram_and_counts_both() {
    let wire = overlay_wire(TunnelEncap::MplsOverUdp { label: 16 }, &[7; 200]);
    let frags = fragments(&wire, &[64, 128]);
    let mut b = host_b(false);
    assert_eq!(run(&mut b, 0, &frags[0]).0, Verdict::Held);
    assert_eq!(run(&mut b, 0, &frags[1]).0, Verdict::Held);
    assert_eq!(
        run(&mut b, 0, &frags[1]).0,
        Verdict::Drop(DropReason::ReasmOverlap)
    );
    let d = b.dropstats();
    assert_eq!(d.drops.get(&DropReason::ReasmOverlap), Some(&3));
    assert_eq!(b.reassembler().pending(), 0);
    // An overlapping (not identical) piece does the same.
    let mut b = host_b(false);
    let shifted = fragments(&wire, &[72, 128]);
    assert_eq!(run(&mut b, 0, &frags[1]).0, Verdict::Held);
    assert_eq!(
        run(&mut b, 0, &shifted[0]).0,
        Verdict::Drop(DropReason::ReasmOverlap)
    );
    assert_eq!(b.dropstats().drops.get(&DropReason::ReasmOverlap), Some(&2));
    assert_eq!(b.reassembler().held_bytes(), 0);
}

#[test]
fn a_datagram_missing_a_piece_is_counted_after_the_timeout() {
    let wire = overlay_wire(TunnelEncap::Vxlan { vni: 5001 }, &[1; 300]);
    let frags = fragments(&wire, &[96, 200]);
    let mut b = host_b(false);
    assert_eq!(run(&mut b, 0, &frags[0]).0, Verdict::Held);
    assert_eq!(run(&mut b, 0, &frags[2]).0, Verdict::Held);
    b.age_flows(T0 + Duration::from_millis(1900));
    assert_eq!(b.dropstats().total, 0);
    b.age_flows(T0 + Duration::from_millis(2100));
    assert_eq!(b.dropstats().drops.get(&DropReason::ReasmTimeout), Some(&2));
    assert_eq!(b.reassembler().pending(), 0);
    // The missing piece alone, later, starts a datagram of its own.
    let mut late = PacketBuf::from_frame(&frags[1]);
    let v = b.process(
        T0 + Duration::from_secs(3),
        VifId(0),
        &mut late,
        RxMeta::default(),
    );
    assert_eq!(v, Verdict::Held);
    assert_eq!(b.reassembler().pending(), 1);
}

#[test]
fn beyond_the_bounds_fragments_are_dropped_and_counted() {
    let mut b = host_b(false);
    b.set_reassembly_limits(ReasmLimits {
        datagrams: 2,
        ..ReasmLimits::default()
    });
    for id in 0..3u16 {
        let mut wire = overlay_wire(TunnelEncap::MplsOverUdp { label: 16 }, &[2; 64]);
        wire[18..20].copy_from_slice(&id.to_be_bytes());
        ipv4::Packet::new_unchecked(&mut wire[14..]).fill_checksum();
        let first = fragments(&wire, &[16]).remove(0);
        let want = if id < 2 {
            Verdict::Held
        } else {
            Verdict::Drop(DropReason::ReasmLimit)
        };
        assert_eq!(run(&mut b, 0, &first).0, want, "datagram {id}");
    }
    assert_eq!(b.dropstats().drops.get(&DropReason::ReasmLimit), Some(&1));
    // A fragment other than the last not a multiple of 8 long, and a bad header checksum.
    let wire = overlay_wire(TunnelEncap::MplsOverUdp { label: 16 }, &[2; 64]);
    let mut odd = fragments(&wire, &[16]).remove(0);
    odd.pop();
    odd[17] -= 1;
    ipv4::Packet::new_unchecked(&mut odd[14..]).fill_checksum();
    assert_eq!(run(&mut b, 0, &odd).0, Verdict::Drop(DropReason::Malformed));
    let mut bad = fragments(&wire, &[16]).remove(1);
    bad[24] ^= 1;
    assert_eq!(run(&mut b, 0, &bad).0, Verdict::Drop(DropReason::Checksum));
}

#[test]
fn fragments_not_for_us_or_not_a_tunnel_protocol_stay_the_hosts() {
    let wire = overlay_wire(TunnelEncap::MplsOverUdp { label: 16 }, &[3; 64]);
    // Another destination.
    let mut other = wire.clone();
    other[30..34].copy_from_slice(&[192, 0, 2, 9]);
    ipv4::Packet::new_unchecked(&mut other[14..]).fill_checksum();
    let mut b = host_b(false);
    for f in fragments(&other, &[16]) {
        assert_eq!(run(&mut b, 0, &f).0, Verdict::Host);
    }
    // ICMP to our fabric IP.
    let mut icmp = wire.clone();
    icmp[23] = ip_proto::ICMP;
    ipv4::Packet::new_unchecked(&mut icmp[14..]).fill_checksum();
    for f in fragments(&icmp, &[16]) {
        assert_eq!(run(&mut b, 0, &f).0, Verdict::Host);
    }
    // A reassembled UDP datagram to another port is the host's too.
    let mut udp = wire.clone();
    udp[36..38].copy_from_slice(&53u16.to_be_bytes());
    let frags = fragments(&udp, &[16]);
    assert_eq!(run(&mut b, 0, &frags[0]).0, Verdict::Held);
    assert_eq!(run(&mut b, 0, &frags[1]).0, Verdict::Host);
    let d = b.dropstats();
    assert_eq!(d.total, 0);
    assert_eq!((d.reassembly.datagrams, d.reassembly.host), (1, 1));
}
