//! The flow-cached fast path has exactly the general pipeline's effects:
//! two forwarders with the same tables, one with the fast path off, get the
//! same packets, flow verdicts and table changes, and must return the same
//! verdicts and bytes and end with the same flows, counters and drops.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::ip_proto;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Pkt {
        vif_in: u32,
        dst: u8,
        proto: u8,
        sport: u16,
        ttl: u8,
        len: usize,
        corrupt: Option<(usize, u8)>,
        cut: Option<usize>,
        csum_partial: bool,
        verdict: u8,
    },
    Table(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (
            1u32..=2,
            prop_oneof![Just(4u8), Just(5u8), Just(6u8)],
            prop_oneof![Just(ip_proto::UDP), Just(ip_proto::TCP), Just(ip_proto::ICMP)],
            0u16..3,
            prop_oneof![Just(1u8), Just(2u8), Just(64u8)],
            0usize..1500,
            proptest::option::weighted(0.1, (0usize..60, any::<u8>())),
            proptest::option::weighted(0.1, 0usize..80),
            proptest::bool::weighted(0.2),
            0u8..6,
        )
            .prop_map(|(vif_in, dst, proto, sport, ttl, len, corrupt, cut, csum_partial, verdict)| Step::Pkt {
                vif_in, dst, proto, sport, ttl, len, corrupt, cut, csum_partial, verdict,
            }),
        1 => (0u8..6).prop_map(Step::Table),
    ]
}

fn table_op(n: u8) -> Op {
    match n {
        0 => Op::AddNeighbor {
            vif: VifId(0),
            ip: ip4(B_FABRIC_IP),
            mac: mac("02:fa:00:00:00:99"),
        },
        1 => tunnel(
            10,
            A_FABRIC_IP,
            B_FABRIC_IP,
            TunnelEncap::MplsOverGre { label: 20 },
        ),
        2 => tunnel(10, A_FABRIC_IP, B_FABRIC_IP, TunnelEncap::Vxlan { vni: 7 }),
        3 => tunnel(
            10,
            A_FABRIC_IP,
            B_FABRIC_IP,
            TunnelEncap::MplsOverUdp { label: 21 },
        ),
        4 => Op::AddVif(Vif {
            id: VifId(0),
            kind: VifKind::Fabric,
            name: "eth0".into(),
            mac: mac(A_FABRIC_MAC),
            vrf: None,
            policy: false,
            mtu: 600,
            ip: Some(ip4(A_FABRIC_IP).into()),
        }),
        _ => Op::DelNeighbor {
            vif: VifId(0),
            ip: ip4(B_FABRIC_IP),
        },
    }
}

fn packet(s: &Step) -> Option<(u32, Vec<u8>, RxMeta, u8)> {
    let Step::Pkt {
        vif_in,
        dst,
        proto,
        sport,
        ttl,
        len,
        corrupt,
        cut,
        csum_partial,
        verdict,
    } = s
    else {
        return None;
    };
    let payload = vec![0x5a; *len];
    let l4 = match *proto {
        ip_proto::UDP => udp_l4(1000 + sport, 5001, &payload),
        ip_proto::TCP => tcp_l4(1000 + sport, 80, 0x10, &payload),
        _ => icmp_echo(*sport, 1),
    };
    let n = if *vif_in == 1 { 3 } else { 4 };
    let mut f = frame_v4(
        GATEWAY_MAC,
        vm_mac(n),
        vm_ip(n),
        vm_ip(*dst),
        *proto,
        *ttl,
        &l4,
    );
    if let Some((i, b)) = corrupt {
        if let Some(x) = f.get_mut(*i) {
            *x = *b;
        }
    }
    if let Some(c) = cut {
        f.truncate(*c);
    }
    let meta = RxMeta {
        csum_partial: *csum_partial,
        vlan_tci: None,
    };
    Some((*vif_in, f, meta, *verdict))
}

/// Run `steps` through both forwarders; returns the fast path's hits.
fn compare(encap: TunnelEncap, steps: &[Step]) -> u64 {
    let mut fast = host_a(encap, true);
    let mut slow = host_a(encap, true);
    slow.set_fast_path(false);
    for (i, s) in steps.iter().enumerate() {
        let now = T0 + Duration::from_millis(i as u64);
        let Some((vif_in, f, meta, verdict)) = packet(s) else {
            if let Step::Table(n) = s {
                let op = table_op(*n);
                assert_eq!(fast.apply(op.clone()).is_ok(), slow.apply(op).is_ok());
            }
            continue;
        };
        let mut bf = PacketBuf::from_frame(&f);
        let mut bs = PacketBuf::from_frame(&f);
        let vf = fast.process(now, VifId(vif_in), &mut bf, meta);
        let vs = slow.process(now, VifId(vif_in), &mut bs, meta);
        assert_eq!(vf, vs, "step {i}: {s:?}");
        assert_eq!(bf.frame(), bs.frame(), "step {i}: {s:?}");
        if let Verdict::Punt {
            reason: PuntReason::FlowMiss,
            key: Some(key),
        } = vf
        {
            same_flow_verdict(&mut fast, &mut slow, key, verdict);
        }
        same_transmits(&mut fast, &mut slow);
    }
    same_state(&fast, &slow);
    assert_eq!(slow.fast_path_hits(), 0);
    fast.fast_path_hits()
}

fn pkt(vif_in: u32, dst: u8, proto: u8, sport: u16) -> Step {
    Step::Pkt {
        vif_in,
        dst,
        proto,
        sport,
        ttl: 64,
        len: 100,
        corrupt: None,
        cut: None,
        csum_partial: false,
        verdict: 5,
    }
}

#[test]
fn fast_path_takes_established_flows_and_matches() {
    for encap in [
        TunnelEncap::MplsOverUdp { label: 16 },
        TunnelEncap::MplsOverGre { label: 16 },
        TunnelEncap::Vxlan { vni: 5001 },
    ] {
        // Miss + install, then hits: over the tunnel (dst 5) and local (4).
        let steps: Vec<Step> = (0..4)
            .flat_map(|_| [pkt(1, 5, ip_proto::UDP, 0), pkt(1, 4, ip_proto::TCP, 1)])
            .collect();
        // The first packet of each flow punts; its held copy, released by
        // the verdict, takes the general path (filling the route cache);
        // the other three are fast.
        assert_eq!(compare(encap, &steps), 6, "{encap:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fast_path_matches_general_pipeline(
        encap in any_encap(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        compare(encap, &steps);
    }
}
