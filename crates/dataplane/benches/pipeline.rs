//! Forwarder core benchmarks (issue 5 targets: parse + flow hit + FIB +
//! MPLSoUDP encap <= 100 ns/packet with empty tables, <= 200 ns with 1M
//! flows and 100k prefixes; flow setup (miss -> verdict -> install both
//! directions) >= 500k flows/s per core).
//!
//! `cargo bench -p filament-dataplane` prints time per packet (criterion's
//! "time") and packets or flow setups per second ("thrpt"), per packet
//! (`pipeline/`) and in bursts of 32 through `process_batch`
//! (`pipeline_batch32/`, time per packet).
//!
//! Huge pages: an I/O shell advises them on `Forwarder::table_memory()`;
//! this bench cannot (no `unsafe` here), but glibc can for every large
//! allocation, so `main` runs the bench again under
//! `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (needs transparent huge pages in
//! `madvise` or `always` mode) unless `GLIBC_TUNABLES` is already set;
//! `FILAMENT_BENCH_SMALL_PAGES=1` keeps 4 KiB pages. The loaded benchmark
//! prints how much of the process is in huge pages.

mod setup;

use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use filament_dataplane::*;
use setup::*;

/// Time `process` over `pkts` in turn (each must hit an installed flow).
fn fast_path(c: &mut Criterion, name: &str, fwd: &mut Forwarder, pkts: &[Vec<u8>]) {
    let mut buf = PacketBuf::with_capacity(2048);
    for p in pkts {
        install(fwd, p);
        buf.load(p);
        assert_eq!(
            fwd.process(T, VifId(1), &mut buf, RxMeta::default()),
            Verdict::Transmit(VifId(0))
        );
    }
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % pkts.len();
            buf.load(&pkts[i]);
            fwd.process(T, VifId(1), &mut buf, RxMeta::default())
        })
    });
    g.finish();
}

/// Burst size of the batch benchmarks (a receive ring's typical burst).
const BURST: usize = 32;

/// Time `process_batch` over `pkts` in bursts of [`BURST`] (each frame
/// must hit an installed flow; `fast_path` installed them). Criterion's
/// "time" is per packet: an iteration is one packet, the burst's time
/// divided among its frames.
fn batch(c: &mut Criterion, name: &str, fwd: &mut Forwarder, pkts: &[Vec<u8>]) {
    let mut bufs: Vec<PacketBuf> = (0..BURST).map(|_| PacketBuf::with_capacity(2048)).collect();
    let mut verdicts = Vec::with_capacity(BURST);
    let mut g = c.benchmark_group("pipeline_batch32");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let bursts = iters.div_ceil(BURST as u64);
            let t = Instant::now();
            for _ in 0..bursts {
                for buf in bufs.iter_mut() {
                    i = (i + 1) % pkts.len();
                    buf.load(&pkts[i]);
                }
                fwd.process_batch(T, VifId(1), &mut bufs, &[], &mut verdicts);
                criterion::black_box(&verdicts);
            }
            t.elapsed()
                .mul_f64(iters as f64 / (bursts * BURST as u64) as f64)
        })
    });
    g.finish();
    assert!(verdicts.iter().all(|v| *v == Verdict::Transmit(VifId(0))));
}

fn bench_fast_path(c: &mut Criterion) {
    let one = vec![one_pkt()];
    let mut small = forwarder(1024, 0, 0);
    let name = "parse+flow_hit+fib+mplsoudp_encap/empty_tables";
    fast_path(c, name, &mut small, &one);
    batch(c, name, &mut small, &one);
    let start = Instant::now();
    let mut big = forwarder(1 << 21, 100_000, 500_000);
    eprintln!(
        "loaded {} flow entries and {} routes in {:.1} s; {}",
        big.flow_count(),
        big.route_count(),
        start.elapsed().as_secs_f64(),
        huge_pages()
    );
    // 16k of the installed flows, spread over the table, visited in turn.
    let pkts = big_pkts();
    let name = "parse+flow_hit+fib+mplsoudp_encap/1M_flows_100k_prefixes";
    fast_path(c, name, &mut big, &pkts);
    batch(c, name, &mut big, &pkts);
}

/// The process's transparent huge pages, as /proc/self/smaps_rollup says.
fn huge_pages() -> String {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let line = |name: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
    };
    format!(
        "{} MiB of {} MiB resident in huge pages",
        line("AnonHugePages:") / 1024,
        line("Rss:") / 1024
    )
}

/// Miss -> punt (packet held) -> AddFlow (both directions) -> held packet
/// released and encapsulated: one flow setup per iteration.
fn bench_flow_setup(c: &mut Criterion) {
    const CAP: usize = 1 << 20;
    let mut fwd = forwarder(CAP, 0, 0);
    let frames = setup_frames();
    let mut g = c.benchmark_group("flow_setup");
    g.throughput(Throughput::Elements(1));
    g.bench_function("miss+verdict+install_both_directions", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            let mut buf = PacketBuf::with_capacity(2048);
            while done < iters {
                // Fresh table for each batch of distinct keys (outside timing).
                let _ = fwd.apply(Op::FlushFlows);
                let n = (iters - done).min(frames.len() as u64) as usize;
                let t = Instant::now();
                for fr in &frames[..n] {
                    criterion::black_box(setup_one(&mut fwd, &mut buf, fr));
                }
                total += t.elapsed();
                done += n as u64;
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench_fast_path, bench_flow_setup
}
/// Runs the benches on the flow table's memory as the product backs it. The I/O shell
/// advises transparent huge pages on `Forwarder::table_memory()` (on by default); this
/// bench cannot (no `unsafe` here), so unless `GLIBC_TUNABLES` is set it runs itself again
/// with glibc's `glibc.malloc.hugetlb=1`, which advises every large allocation the same
/// way. `FILAMENT_BENCH_SMALL_PAGES=1` measures on 4 KiB pages instead.
fn main() {
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    if !set("GLIBC_TUNABLES") && !set("FILAMENT_BENCH_SMALL_PAGES") {
        let rerun = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
                .status()
        });
        match rerun {
            Ok(s) => std::process::exit(s.code().unwrap_or(1)),
            Err(e) => {
                eprintln!("could not run again with huge pages ({e}): measuring on small pages")
            }
        }
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
