//! Instruction-count driver for the fabric receive path (decapsulation), written for the
//! outer-fragment reassembly work (`reasm.rs`): an unfragmented MPLSoUDP frame from host A is
//! decapsulated by host B `N` times inside one `measured_*` function, through
//! `Forwarder::process` (`plain`) or `InPlace::process` in a receive slot (`slot`), so the
//! reassembly hook's cost on unfragmented packets can be counted before and after:
//!
//! ```text
//! cargo build --release -p filament-dataplane --example decap_profile
//! valgrind --tool=callgrind --toggle-collect='*measured_*' \
//!     target/release/examples/decap_profile plain 100000
//! ```
//!
//! `frag` decapsulates the same datagram sent as two outer fragments (the reassembly path).
//! Divide the collected instruction count by N.
#![allow(clippy::unwrap_used)] // a driver: a failed unwrap is a broken setup

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "shared/in_place.rs"]
mod in_place;

use std::hint::black_box;

use common::*;
use filament_dataplane::inplace::InPlace;
use filament_dataplane::*;
use filament_wire_pkt::ip_proto;
use in_place::{measured_in_place, SLOT_HEADROOM};

#[inline(never)]
fn measured_plain(fwd: &mut Forwarder, buf: &mut PacketBuf, frames: &[Vec<u8>], n: usize) -> u64 {
    let mut tx = 0;
    for k in 0..n {
        for f in frames {
            buf.load(f);
            if let Verdict::Transmit(_) = fwd.process(T0, VifId(0), buf, RxMeta::default()) {
                tx += 1;
            }
        }
        black_box(k);
    }
    tx
}

/// The two outer fragments of `wire` (Ethernet + IPv4 + payload), split after `cut` payload
/// bytes (a multiple of 8).
fn fragments(wire: &[u8], cut: usize) -> Vec<Vec<u8>> {
    let hl = usize::from(wire[14] & 0x0f) * 4;
    let payload = &wire[14 + hl..];
    let mk = |part: &[u8], off: usize, more: bool| {
        let mut f = wire[..14 + hl].to_vec();
        f.extend_from_slice(part);
        let total = (hl + part.len()) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        let ff = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        f[20..22].copy_from_slice(&ff.to_be_bytes());
        filament_wire_pkt::ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
        f
    };
    vec![
        mk(&payload[..cut], 0, true),
        mk(&payload[cut..], cut, false),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("plain");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut a = host_a(TunnelEncap::MplsOverUdp { label: 16 }, false);
    let inner = frame_v4(
        GATEWAY_MAC,
        vm_mac(3),
        vm_ip(3),
        vm_ip(5),
        ip_proto::UDP,
        64,
        &udp_l4(40000, 5201, &[0x5a; 18]),
    );
    let (v, wire) = run(&mut a, 1, &inner);
    assert_eq!(v, Verdict::Transmit(VifId(0)));
    let mut b = host_b(false);
    let t0 = std::time::Instant::now();
    let tx = match mode {
        "plain" => measured_plain(&mut b, &mut PacketBuf::with_capacity(2048), &[wire], n),
        "frag" => {
            let frames = fragments(&wire, 24);
            measured_plain(&mut b, &mut PacketBuf::with_capacity(2048), &frames, n)
        }
        "slot" => {
            let mut ctx = InPlace::new();
            let mut mem = vec![0u8; 2048];
            let mut tx = 0;
            for _ in 0..n {
                mem[SLOT_HEADROOM..SLOT_HEADROOM + wire.len()].copy_from_slice(&wire);
                tx += u64::from(measured_in_place(
                    &mut ctx,
                    &mut b,
                    T0,
                    VifId(0),
                    &mut mem,
                    wire.len(),
                ));
            }
            tx
        }
        other => {
            eprintln!("usage: decap_profile plain|slot|frag [N] (got {other:?})");
            std::process::exit(2);
        }
    };
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{mode}: {n} rounds, {tx} transmitted, {ns:.1} ns/round (wall clock), drops {}",
        b.dropstats().total
    );
}
