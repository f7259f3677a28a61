//! Outer IPv4 fragments to our fabric IP (`filament_dataplane::reasm`), built from arbitrary
//! fields (identification, offset, MF, protocol, length, payload bytes, time steps) so that
//! overlaps, duplicates, contradicting ends, bounds and timeouts are all reached, fed to a
//! small-bounded `Reassembler` and through a forwarder's fabric vif. Never panics; what the
//! reassembler holds stays within its bounds; every fragment is accepted or refused, and every
//! accepted one is released in a datagram, discarded with a reason or timed out; what comes
//! out is an unfragmented IPv4 frame with a good checksum; the forwarder's drop counters add up.
#![no_main]

use std::time::Duration;

use filament_dataplane::reasm::{Reasm, ReasmLimits, Reassembler};
use filament_dataplane::*;
use filament_wire_pkt::ipv4;
use libfuzzer_sys::fuzz_target;

#[path = "dataplane_common.rs"]
mod common;
use common::*;

/// One fragment from 6 bytes of fields and up to 64 bytes of payload: Ethernet + IPv4 from
/// REMOTE to FABRIC.
fn fragment(fields: &[u8], payload: &[u8]) -> Vec<u8> {
    let id = u16::from(fields[0] & 3);
    let more = fields[1] & 1 != 0;
    let off8 = u16::from_be_bytes([fields[2], fields[3]]) & if fields[1] & 2 != 0 { 0x1fff } else { 0x3f };
    let proto = if fields[1] & 4 != 0 { 47 } else { 17 };
    let mut f = vec![0u8; 14 + 20];
    f[0..6].copy_from_slice(&[2, 0xfa, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0xfa, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(payload);
    let ip = &mut f[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[6..8].copy_from_slice(&(off8 | if more { 0x2000 } else { 0 }).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&REMOTE.octets());
    ip[16..20].copy_from_slice(&FABRIC.octets());
    ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
    f
}

fuzz_target!(|data: &[u8]| {
    let limits = ReasmLimits { datagrams: 3, bytes: 2048, fragments: 8, timeout: Duration::from_secs(2) };
    let mut r = Reassembler::new(limits, 1);
    let mut fwd = programmed(64, {
        let mut ops = base_ops(false, TunnelEncap::MplsOverUdp { label: 16 });
        ops.push(Op::AddLabel { label: 16, nh: NhId(1), payload: LabelPayload::Ip });
        ops
    });
    fwd.set_reassembly_limits(limits);
    let (mut now, mut errs, mut dropped, mut inserted) = (Duration::ZERO, 0u64, 0u64, 0u64);
    let mut rest = data;
    while rest.len() >= 7 {
        let (fields, tail) = rest.split_at(7);
        let len = usize::from(fields[5] & 63);
        let (payload, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        now += Duration::from_millis(u64::from(fields[6]) * 8);
        let frame = fragment(fields, payload);
        inserted += 1;
        let before = r.counters().fragments;
        match r.insert(now, &frame) {
            Ok(Reasm::Held) => {}
            Ok(Reasm::Done(d)) => {
                let p = ipv4::Packet::new_checked(&d[14..]).expect("a whole datagram parses");
                assert!(p.verify_checksum());
                assert!(!p.more_frags() && p.frag_offset() == 0);
                assert_eq!(usize::from(p.total_len()), d.len() - 14);
            }
            Err(e) => {
                assert!(e.fragments >= 1);
                assert_eq!(r.counters().fragments, before);
                errs += 1;
                dropped += e.fragments;
            }
        }
        assert!(r.held_bytes() <= limits.bytes && r.pending() <= limits.datagrams);
        let mut b = PacketBuf::from_frame(&frame);
        let _ = fwd.process(now, VifId(0), &mut b, RxMeta::default());
        let s = fwd.dropstats();
        assert!(s.reassembly.held_bytes <= limits.bytes as u64);
    }
    let expired = r.expire(now + Duration::from_secs(60));
    assert_eq!((r.pending(), r.held_bytes()), (0, 0));
    let c = r.counters();
    assert_eq!(inserted, c.fragments + errs);
    assert_eq!(c.fragments, c.released + (dropped - errs) + expired);
    fwd.age_flows(now + Duration::from_secs(60));
    let s = fwd.dropstats();
    assert_eq!(s.total, s.drops.values().sum::<u64>());
    assert_eq!((s.reassembly.pending, s.reassembly.held_bytes), (0, 0));
});
