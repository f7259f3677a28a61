//! Forwarder core benchmarks (issue 5 targets: parse + flow hit + FIB +
//! MPLSoUDP encap <= 100 ns/packet with empty tables, <= 200 ns with 1M
//! flows and 100k prefixes; flow setup (miss -> verdict -> install both
//! directions) >= 500k flows/s per core).
//!
//! `cargo bench -p filament-dataplane` prints time per packet (criterion's
//! "time") and packets or flow setups per second ("thrpt").

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use filament_dataplane::*;
use filament_wire_pkt::{ethernet, ipv4, udp};

const T: Duration = Duration::from_secs(1);
const FABRIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("bench setup: {e:?}"),
    }
}

/// A 64-byte-class UDP frame from the VM to `dst` through the gateway.
fn frame(src: Ipv4Addr, dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    let payload = [0u8; 18];
    let mut f = vec![0u8; 14 + 20 + 8 + payload.len()];
    ethernet::Repr {
        dst: GATEWAY_MAC.0,
        src: [2, 0, 0, 0, 0, 3],
        vlan_tci: None,
        ethertype: 0x0800,
    }
    .emit(&mut f);
    ipv4::Repr {
        src,
        dst,
        protocol: 17,
        payload_len: 8 + payload.len(),
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: true,
    }
    .emit(&mut f[14..]);
    udp::Repr {
        src_port: sport,
        dst_port: 5001,
        payload_len: payload.len(),
    }
    .emit(&mut f[34..]);
    udp::Packet::new_unchecked(&mut f[34..]).fill_checksum(&IpAddr::V4(src), &IpAddr::V4(dst));
    f
}

/// Fabric + one policy workload in VRF 1, a remote /16 via an MPLSoUDP
/// tunnel; `prefixes` extra routes and `flows` extra flow pairs.
fn forwarder(flow_capacity: usize, prefixes: u32, flows: u32) -> Forwarder {
    let mut f = Forwarder::new(ForwarderCfg {
        flow_capacity,
        ..Default::default()
    });
    let ops = vec![
        Op::AddVif(Vif {
            id: VifId(0),
            kind: VifKind::Fabric,
            name: "eth0".into(),
            mac: MacAddr([2, 0xfa, 0, 0, 0, 1]),
            vrf: None,
            policy: false,
            mtu: 9000,
            ip: Some(IpAddr::V4(FABRIC)),
        }),
        Op::AddVif(Vif {
            id: VifId(1),
            kind: VifKind::Workload,
            name: "tap1".into(),
            mac: GATEWAY_MAC,
            vrf: Some(VrfId(1)),
            policy: true,
            mtu: 1500,
            ip: None,
        }),
        Op::AddNexthop(Nexthop {
            id: NhId(10),
            kind: NexthopKind::Tunnel {
                vif: VifId(0),
                src_ip: FABRIC,
                dst_ip: REMOTE,
                encap: TunnelEncap::MplsOverUdp { label: 16 },
            },
        }),
        Op::AddNeighbor {
            vif: VifId(0),
            ip: REMOTE,
            mac: MacAddr([2, 0xfa, 0, 0, 0, 2]),
        },
        Op::AddRoute {
            vrf: VrfId(1),
            prefix: ok("10.9.0.0/16".parse()),
            nh: NhId(10),
        },
    ];
    for op in ops {
        ok(f.apply(op));
    }
    // Prefixes: half /24s, half /32s, in 172.16.0.0/12 (distinct from 10.9/16).
    for i in 0..prefixes {
        let base = 0xac10_0000u32 + i * 256;
        let (addr, len) = if i % 2 == 0 {
            (base, 24)
        } else {
            (base + 7, 32)
        };
        let prefix = ipnet::Ipv4Net::new(Ipv4Addr::from(addr), len).map(ipnet::IpNet::V4);
        ok(f.apply(Op::AddRoute {
            vrf: VrfId(1),
            prefix: ok(prefix),
            nh: NhId(10),
        }));
    }
    for i in 0..flows {
        let key = FlowKey {
            vrf: VrfId(1),
            proto: 17,
            src: IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + (i >> 16))),
            dst: IpAddr::V4(Ipv4Addr::from(0x0a09_0000 + (i & 0xffff))),
            sport: (i & 0xffff) as u16,
            dport: 5001,
        };
        ok(f.apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Forward,
            mirror: None,
            reverse_action: None,
        })));
    }
    f
}

/// Install the flow of `frame` (punt, then the agent's verdict).
fn install(f: &mut Forwarder, frame: &[u8]) {
    let mut buf = PacketBuf::from_frame(frame);
    if let Verdict::Punt { key: Some(key), .. } =
        f.process(T, VifId(1), &mut buf, RxMeta::default())
    {
        ok(f.apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Forward,
            mirror: None,
            reverse_action: None,
        })));
    }
}

/// Time `process` over `pkts` in turn (each must hit an installed flow).
fn fast_path(c: &mut Criterion, name: &str, mut fwd: Forwarder, pkts: Vec<Vec<u8>>) {
    let mut buf = PacketBuf::with_capacity(2048);
    for p in &pkts {
        install(&mut fwd, p);
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

fn bench_fast_path(c: &mut Criterion) {
    let one = vec![frame(
        Ipv4Addr::new(10, 1, 1, 3),
        Ipv4Addr::new(10, 9, 1, 1),
        40000,
    )];
    fast_path(
        c,
        "parse+flow_hit+fib+mplsoudp_encap/empty_tables",
        forwarder(1024, 0, 0),
        one,
    );
    let start = Instant::now();
    let big = forwarder(1 << 21, 100_000, 500_000);
    eprintln!(
        "loaded {} flow entries and {} routes in {:.1} s",
        big.flow_count(),
        big.route_count(),
        start.elapsed().as_secs_f64()
    );
    // 16k of the installed flows, spread over the table, visited in turn
    // (the flow key formula is the one `forwarder` installs).
    let pkts = (0..16_384u32)
        .map(|k| {
            let i = k * 30;
            frame(
                Ipv4Addr::from(0x0a01_0000 + (i >> 16)),
                Ipv4Addr::from(0x0a09_0000 + (i & 0xffff)),
                (i & 0xffff) as u16,
            )
        })
        .collect();
    fast_path(
        c,
        "parse+flow_hit+fib+mplsoudp_encap/1M_flows_100k_prefixes",
        big,
        pkts,
    );
}

/// Miss -> punt (packet held) -> AddFlow (both directions) -> held packet
/// released and encapsulated: one flow setup per iteration.
fn bench_flow_setup(c: &mut Criterion) {
    const CAP: usize = 1 << 20;
    let mut fwd = forwarder(CAP, 0, 0);
    let frames: Vec<Vec<u8>> = (0..65536u32)
        .map(|i| {
            frame(
                Ipv4Addr::from(0x0a01_0000 + (i >> 8)),
                Ipv4Addr::new(10, 9, 0, (i & 0xff) as u8),
                1024 + (i >> 4) as u16,
            )
        })
        .collect();
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
                    buf.load(fr);
                    if let Verdict::Punt { key: Some(key), .. } =
                        fwd.process(T, VifId(1), &mut buf, RxMeta::default())
                    {
                        let applied = fwd.apply(Op::AddFlow(FlowSpec {
                            key,
                            action: FlowAction::Forward,
                            mirror: None,
                            reverse_action: None,
                        }));
                        criterion::black_box(applied.map(|a| a.released.len()).unwrap_or(0));
                    }
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
criterion_main!(benches);
