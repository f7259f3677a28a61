//! Forwarder set-up shared by the criterion bench (`benches/pipeline.rs`)
//! and the instruction-count driver (`examples/fwd_profile.rs`): the same
//! tables, frames and flow keys in both, so their figures compare.

#![allow(dead_code)] // each user takes what it needs

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use filament_dataplane::*;
use filament_wire_pkt::{ethernet, ipv4, udp};

pub const T: Duration = Duration::from_secs(1);
pub const FABRIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

pub fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("bench setup: {e:?}"),
    }
}

/// A 64-byte-class UDP frame from the VM to `dst` through the gateway.
pub fn frame(src: Ipv4Addr, dst: Ipv4Addr, sport: u16) -> Vec<u8> {
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
pub fn forwarder(flow_capacity: usize, prefixes: u32, flows: u32) -> Forwarder {
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
pub fn install(f: &mut Forwarder, frame: &[u8]) {
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

/// The 16k frames of the loaded benchmark: installed flows spread over
/// the table (the flow key formula is the one `forwarder` installs).
pub fn big_pkts() -> Vec<Vec<u8>> {
    (0..16_384u32)
        .map(|k| {
            let i = k * 30;
            frame(
                Ipv4Addr::from(0x0a01_0000 + (i >> 16)),
                Ipv4Addr::from(0x0a09_0000 + (i & 0xffff)),
                (i & 0xffff) as u16,
            )
        })
        .collect()
}

/// The empty-tables benchmark's single frame.
pub fn one_pkt() -> Vec<u8> {
    frame(
        Ipv4Addr::new(10, 1, 1, 3),
        Ipv4Addr::new(10, 9, 1, 1),
        40000,
    )
}

/// 65536 frames of distinct flows for the flow-setup benchmark.
pub fn setup_frames() -> Vec<Vec<u8>> {
    (0..65536u32)
        .map(|i| {
            frame(
                Ipv4Addr::from(0x0a01_0000 + (i >> 8)),
                Ipv4Addr::new(10, 9, 0, (i & 0xff) as u8),
                1024 + (i >> 4) as u16,
            )
        })
        .collect()
}

/// One flow setup: miss -> punt (held) -> AddFlow both directions -> the
/// held packet released. Returns how many packets were released.
#[inline]
pub fn setup_one(fwd: &mut Forwarder, buf: &mut PacketBuf, fr: &[u8]) -> usize {
    buf.load(fr);
    if let Verdict::Punt { key: Some(key), .. } = fwd.process(T, VifId(1), buf, RxMeta::default()) {
        let applied = fwd.apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Forward,
            mirror: None,
            reverse_action: None,
        }));
        return applied.map(|a| a.released.len()).unwrap_or(0);
    }
    0
}
