//! `Forwarder::process_batch` has exactly the effects of `process` called
//! on each frame in order: two forwarders with the same tables get the same
//! bursts (one as a batch, one frame by frame) and the same flow verdicts,
//! and must return the same verdicts and bytes (released packets included)
//! and end with the same flows, counters and drops.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::ip_proto;
use proptest::prelude::*;

/// One frame of a burst: destination VM, protocol, flow (source port),
/// length, optional corruption or truncation, checksum-partial flag.
type Pkt = (u8, u8, u16, usize, Option<(usize, u8)>, Option<usize>, bool);

fn pkt() -> impl Strategy<Value = Pkt> {
    (
        prop_oneof![Just(4u8), Just(5u8), Just(6u8)],
        prop_oneof![
            4 => Just(ip_proto::UDP),
            4 => Just(ip_proto::TCP),
            1 => Just(ip_proto::ICMP)
        ],
        0u16..6,
        0usize..300,
        proptest::option::weighted(0.05, (0usize..60, any::<u8>())),
        proptest::option::weighted(0.05, 0usize..80),
        proptest::bool::weighted(0.1),
    )
}

/// A burst: ingress vif (1, 2 workloads; 0 fabric), frames, and the
/// verdict the agent gives to the flow misses it punts (0 drop, 1 NAT,
/// 2 mirrored forward, else forward).
type Burst = (u32, Vec<Pkt>, u8);

fn burst() -> impl Strategy<Value = Burst> {
    (
        prop_oneof![4 => Just(1u32), 2 => Just(2u32), 1 => Just(0u32)],
        proptest::collection::vec(pkt(), 0..80),
        0u8..6,
    )
}

fn frame(vif_in: u32, p: &Pkt) -> (Vec<u8>, RxMeta) {
    let (dst, proto, sport, len, corrupt, cut, csum_partial) = *p;
    let payload = vec![0x5a; len];
    let l4 = match proto {
        ip_proto::UDP => udp_l4(1000 + sport, 5001, &payload),
        ip_proto::TCP => tcp_l4(1000 + sport, 80, 0x10, &payload),
        _ => icmp_echo(sport, 1),
    };
    let n = if vif_in == 2 { 4 } else { 3 };
    let mut f = frame_v4(GATEWAY_MAC, vm_mac(n), vm_ip(n), vm_ip(dst), proto, 64, &l4);
    if let Some((i, b)) = corrupt {
        if let Some(x) = f.get_mut(i) {
            *x = b;
        }
    }
    if let Some(c) = cut {
        f.truncate(c);
    }
    let meta = RxMeta {
        csum_partial,
        vlan_tci: None,
    };
    (f, meta)
}

/// Host A (policy vifs) through `encap`, its flow table holding 2100
/// unrelated flow pairs (4200 entries; sources 10.7.x.y) besides: past the
/// batch's prefetch threshold (4096 entries), so its prefetch stage and
/// hash hand-over run. Built once per
/// encapsulation, cloned.
fn busy_host_a(encap: TunnelEncap) -> Forwarder {
    static BUSY: std::sync::OnceLock<Vec<Forwarder>> = std::sync::OnceLock::new();
    let all = BUSY.get_or_init(|| {
        ENCAPS
            .iter()
            .map(|e| {
                let mut f = host_a_sized(*e, true, 8192);
                for i in 0..2100u32 {
                    let key = FlowKey {
                        vrf: VrfId(1),
                        proto: ip_proto::UDP,
                        src: std::net::Ipv4Addr::from(0x0a07_0000 + i).into(),
                        dst: vm_ip(5).into(),
                        sport: 999,
                        dport: 5001,
                    };
                    f.apply(Op::AddFlow(flow_spec(key, 5))).unwrap();
                }
                f
            })
            .collect()
    });
    let i = ENCAPS.iter().position(|e| *e == encap).unwrap();
    all[i].clone()
}

const ENCAPS: [TunnelEncap; 3] = [
    TunnelEncap::MplsOverUdp { label: 16 },
    TunnelEncap::MplsOverGre { label: 16 },
    TunnelEncap::Vxlan { vni: 5001 },
];

/// Run `bursts` through both forwarders (`busy`: with 2100 more flows, so
/// the prefetch stage runs); returns (packets, fast-path hits).
fn compare(encap: TunnelEncap, busy: bool, bursts: &[Burst]) -> (usize, u64) {
    let mut batch = if busy {
        busy_host_a(encap)
    } else {
        host_a(encap, true)
    };
    let mut single = batch.clone();
    let mut verdicts = Vec::new();
    let mut packets = 0;
    for (i, (vif_in, pkts, verdict)) in bursts.iter().enumerate() {
        let now = T0 + Duration::from_millis(10 * i as u64);
        let vif = VifId(*vif_in);
        let (frames, metas): (Vec<_>, Vec<_>) = pkts.iter().map(|p| frame(*vif_in, p)).unzip();
        let mut bufs: Vec<PacketBuf> = frames.iter().map(|f| PacketBuf::from_frame(f)).collect();
        // Every other burst without metadata (defaults for all frames).
        let metas_in: &[RxMeta] = if i % 2 == 0 { &metas } else { &[] };
        batch.process_batch(now, vif, &mut bufs, metas_in, &mut verdicts);
        assert_eq!(verdicts.len(), frames.len());
        let mut keys = Vec::new();
        for (j, f) in frames.iter().enumerate() {
            let meta = metas_in.get(j).copied().unwrap_or_default();
            let mut b = PacketBuf::from_frame(f);
            let v = single.process(now, vif, &mut b, meta);
            assert_eq!(verdicts[j], v, "burst {i} frame {j}");
            assert_eq!(bufs[j].frame(), b.frame(), "burst {i} frame {j}");
            if let Verdict::Punt {
                reason: PuntReason::FlowMiss,
                key: Some(key),
            } = v
            {
                keys.push(key);
            }
        }
        packets += frames.len();
        // The agent's verdicts, after the burst (the shell's order).
        for key in keys {
            same_flow_verdict(&mut batch, &mut single, key, *verdict);
        }
        same_transmits(&mut batch, &mut single);
    }
    same_state(&batch, &single);
    assert_eq!(batch.fast_path_hits(), single.fast_path_hits());
    (packets, batch.fast_path_hits())
}

#[test]
fn batch_of_established_flows_takes_the_fast_path() {
    // 5 flows x 20 frames in bursts longer than BATCH_MAX: misses and held
    // packets in the first burst, then fast-path hits in the chunks.
    let flows: Vec<Pkt> = (0..100)
        .map(|i| (5, ip_proto::UDP, (i % 5) as u16, 64, None, None, false))
        .collect();
    let bursts = vec![(1, flows.clone(), 5), (1, flows.clone(), 5), (1, flows, 5)];
    const { assert!(BATCH_MAX < 100) };
    for busy in [false, true] {
        let (packets, hits) = compare(TunnelEncap::MplsOverUdp { label: 16 }, busy, &bursts);
        assert_eq!(packets, 300);
        // First burst: per flow 1 punt, 2 more held (hold_max 3), the rest
        // dropped at the hold limit. The verdicts release the 3 held copies
        // of each flow: the first takes the general path and fills the route
        // cache, the other 2 are fast (10); the later 200 frames are all fast.
        assert_eq!(hits, 210);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn batch_matches_single(
        encap in any_encap(),
        busy in any::<bool>(),
        bursts in proptest::collection::vec(burst(), 1..8),
    ) {
        compare(encap, busy, &bursts);
    }
}

#[test]
fn new_advised_hands_over_the_flow_table_memory_and_works() {
    let cfg = ForwarderCfg {
        flow_capacity: 1000,
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut f = Forwarder::new_advised(cfg, |r| seen.extend_from_slice(r));
    // The index (2048 buckets of 8 bytes) and the entries, unmoved since.
    assert_eq!(seen, f.table_memory());
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].len, 2048 * 8);
    assert!(seen[1].len >= 1000 * 64);
    // The forwarder is usable: a workload vif with policy punts a miss.
    f.apply(vif(1, VifKind::Workload, GATEWAY_MAC, Some(1), true, None))
        .unwrap();
    let fr = vm_udp_routed_with(3, vm_ip(5), 1000, 5001, &[0; 8]);
    let (v, _) = run(&mut f, 1, &fr);
    assert!(
        matches!(
            v,
            Verdict::Punt {
                reason: PuntReason::FlowMiss,
                ..
            }
        ),
        "{v:?}"
    );
    assert_eq!(f.flow_count(), 1);
}
