//! Instruction-count driver for the forwarder's hot paths (issue 5): the
//! same tables and frames as the criterion bench (`benches/setup`), pushed
//! through `Forwarder::process` `N` times inside one `measured_*` function
//! so a profiler can count just that part:
//!
//! ```text
//! cargo build --release -p filament-dataplane --example fwd_profile
//! valgrind --tool=callgrind --toggle-collect='*measured_*' \
//!     target/release/examples/fwd_profile empty 100000
//! valgrind --tool=callgrind --cache-sim=yes --toggle-collect='*measured_*' \
//!     target/release/examples/fwd_profile big 100000
//! target/release/examples/fwd_profile setup 65536
//! ```
//!
//! Modes: `empty` (one flow, one route), `big` (1M flow entries, 100k
//! prefixes, 16k flows visited in turn), `empty-batch` and `big-batch`
//! (the same in bursts of 32 through `process_batch`; N is rounded up to
//! a multiple of 32), `empty-slot` and `big-slot` (the same frames through
//! `InPlace::process` in a receive slot, as the I/O shell runs them on
//! policy vifs; each slot is refilled outside the `measured_*` function,
//! as the kernel fills the ring: compare with `empty` / `big`, whose
//! `measured_*` loop includes the copy into the `PacketBuf`), `setup` (miss -> verdict ->
//! install both directions per frame). Divide the collected instruction
//! count by N. The driver also prints ns per packet by the wall clock
//! (noisy on a shared machine) and by the thread's CPU time (use runs of
//! a few seconds: the kernel counts it in 10 ms ticks).
//! `FWD_SLOW=1` turns the flow-cached fast path off (the general pipeline
//! only, for before/after figures).

#[path = "../benches/setup/mod.rs"]
mod setup;

#[path = "shared/in_place.rs"]
mod in_place;

use std::hint::black_box;
use std::time::Instant;

use filament_dataplane::inplace::InPlace;
use filament_dataplane::*;
use in_place::{measured_in_place, SLOT_HEADROOM};
use setup::*;

fn drive_in_place(fwd: &mut Forwarder, pkts: &[Vec<u8>], n: usize) -> u64 {
    let mut ctx = InPlace::new();
    let mut mem = vec![0u8; 2048];
    let mut tx = 0;
    for k in 0..n {
        let p = &pkts[k % pkts.len()];
        mem[SLOT_HEADROOM..SLOT_HEADROOM + p.len()].copy_from_slice(p);
        tx += u64::from(measured_in_place(
            &mut ctx,
            fwd,
            T,
            VifId(1),
            &mut mem,
            p.len(),
        ));
    }
    tx
}

#[inline(never)]
fn measured_fast_path(fwd: &mut Forwarder, buf: &mut PacketBuf, pkts: &[Vec<u8>], n: usize) -> u64 {
    let mut tx = 0u64;
    for k in 0..n {
        let p = &pkts[k % pkts.len()];
        buf.load(p);
        if let Verdict::Transmit(_) = fwd.process(T, VifId(1), buf, RxMeta::default()) {
            tx += 1;
        }
    }
    tx
}

/// As `measured_fast_path`, in bursts of 32 through `process_batch`.
#[inline(never)]
fn measured_batch(fwd: &mut Forwarder, bufs: &mut [PacketBuf], pkts: &[Vec<u8>], n: usize) -> u64 {
    let mut tx = 0u64;
    let mut verdicts = Vec::with_capacity(bufs.len());
    let mut k = 0;
    while k < n {
        for buf in bufs.iter_mut() {
            buf.load(&pkts[k % pkts.len()]);
            k += 1;
        }
        fwd.process_batch(T, VifId(1), bufs, &[], &mut verdicts);
        tx += verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Transmit(_)))
            .count() as u64;
    }
    tx
}

#[inline(never)]
fn measured_setup(fwd: &mut Forwarder, buf: &mut PacketBuf, frames: &[Vec<u8>]) -> usize {
    let mut released = 0;
    for fr in frames {
        released += setup_one(fwd, buf, fr);
    }
    released
}

/// This thread's user + system CPU time so far, from
/// /proc/thread-self/stat (clock ticks, taken as 100 Hz): less disturbed
/// by other processes than the wall clock on a shared machine. 0 where
/// unavailable.
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the ")" closing the command name: state is field 3,
    // utime and stime fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10_000_000
}

/// MiB of this process in transparent huge pages (/proc/self/smaps_rollup).
fn huge_mib() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("AnonHugePages:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("empty");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut buf = PacketBuf::with_capacity(2048);
    match mode {
        "empty" | "big" | "empty-batch" | "big-batch" | "empty-slot" | "big-slot" => {
            let batch = mode.ends_with("-batch");
            let (mut fwd, pkts) = if mode.starts_with("empty") {
                (forwarder(1024, 0, 0), vec![one_pkt()])
            } else {
                (forwarder(1 << 21, 100_000, 500_000), big_pkts())
            };
            fwd.set_fast_path(std::env::var_os("FWD_SLOW").is_none());
            for p in &pkts {
                install(&mut fwd, p);
            }
            // Warm the caches / touch the flows once, outside measurement.
            let warm = measured_fast_path(&mut fwd, &mut buf, &pkts, pkts.len());
            assert_eq!(
                warm as usize,
                pkts.len(),
                "every packet must be transmitted"
            );
            let t = Instant::now();
            let cpu = thread_cpu_ns();
            let tx = if batch {
                // Whole bursts: n rounded up to a multiple of 32.
                let mut bufs: Vec<PacketBuf> =
                    (0..32).map(|_| PacketBuf::with_capacity(2048)).collect();
                let n32 = n.div_ceil(32) * 32;
                measured_batch(&mut fwd, &mut bufs, &pkts, n32) as usize * n / n32
            } else if mode.ends_with("-slot") {
                drive_in_place(&mut fwd, &pkts, n) as usize
            } else {
                measured_fast_path(&mut fwd, &mut buf, &pkts, n) as usize
            };
            let ns = t.elapsed().as_nanos() as f64 / n as f64;
            let cpu_ns = thread_cpu_ns().saturating_sub(cpu) as f64 / n as f64;
            assert_eq!(tx, n);
            println!(
                "{mode}: {n} packets, {ns:.1} ns/packet (wall clock), {cpu_ns:.1} ns/packet (thread CPU time, 10 ms ticks), {} flow entries, {} MiB in huge pages",
                fwd.flow_count(),
                huge_mib()
            );
        }
        "setup" => {
            let frames = setup_frames();
            let n = n.min(frames.len());
            let mut fwd = forwarder(1 << 20, 0, 0);
            let t = Instant::now();
            let released = measured_setup(&mut fwd, &mut buf, black_box(&frames[..n]));
            let s = t.elapsed().as_secs_f64();
            assert_eq!(released, n, "every held packet released");
            println!(
                "setup: {n} flow setups, {:.0} setups/s (wall clock), {} flow entries",
                n as f64 / s,
                fwd.flow_count()
            );
        }
        other => {
            eprintln!(
                "usage: fwd_profile empty|big|empty-batch|big-batch|empty-slot|big-slot|setup [N] (got {other:?})"
            );
            std::process::exit(2);
        }
    }
}
