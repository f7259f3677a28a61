//! Shared test harness: frame builders (with filament-wire-pkt) and a
//! two-host topology programmed the way the agent programs it.
//!
//! Host A: fabric vif 0 (192.0.2.1, 02:fa:00:00:00:01); workloads vif 1
//! (VM1 10.1.1.3, 02:00:00:00:00:03) and vif 2 (VM2 10.1.1.4,
//! 02:00:00:00:00:04) in VRF 1 with labels 16/17. Host B: fabric 192.0.2.2
//! (02:fa:00:00:00:02), VM3 10.1.1.5 (02:00:00:00:00:05) on vif 1, label 16.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use filament_dataplane::*;
use filament_wire_pkt::{ethernet, icmp, ip_proto, ipv4, tcp, udp};

pub const A_FABRIC_IP: &str = "192.0.2.1";
pub const B_FABRIC_IP: &str = "192.0.2.2";
pub const A_FABRIC_MAC: &str = "02:fa:00:00:00:01";
pub const B_FABRIC_MAC: &str = "02:fa:00:00:00:02";

pub fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}
pub fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
pub fn vm_mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}
pub fn vm_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 1, n)
}

pub const T0: Duration = Duration::from_secs(1);

/// Ethernet + IPv4 + L4 frame. `l4` is the L4 header+payload with a zero
/// checksum; the checksum is filled.
pub fn frame_v4(
    dst: MacAddr,
    src: MacAddr,
    sip: Ipv4Addr,
    dip: Ipv4Addr,
    proto: u8,
    ttl: u8,
    l4: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + l4.len()];
    ethernet::Repr {
        dst: dst.0,
        src: src.0,
        vlan_tci: None,
        ethertype: ethernet::ethertype::IPV4,
    }
    .emit(&mut f);
    ipv4::Repr {
        src: sip,
        dst: dip,
        protocol: proto,
        payload_len: l4.len(),
        ttl,
        tos: 0,
        ident: 0x1234,
        dont_frag: true,
    }
    .emit(&mut f[14..]);
    f[34..].copy_from_slice(l4);
    let (s, d) = (IpAddr::V4(sip), IpAddr::V4(dip));
    match proto {
        ip_proto::UDP => udp::Packet::new_unchecked(&mut f[34..]).fill_checksum(&s, &d),
        ip_proto::TCP => tcp::Packet::new_unchecked(&mut f[34..]).fill_checksum(&s, &d),
        ip_proto::ICMP => icmp::Packet::new_unchecked(&mut f[34..]).fill_checksum_v4(),
        _ => {}
    }
    f
}

pub fn udp_l4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 8 + payload.len()];
    udp::Repr {
        src_port: sport,
        dst_port: dport,
        payload_len: payload.len(),
    }
    .emit(&mut b);
    b[8..].copy_from_slice(payload);
    b
}

pub fn tcp_l4(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 20 + payload.len()];
    tcp::Repr {
        src_port: sport,
        dst_port: dport,
        seq: 1000,
        ack: 0,
        flags,
        window: 65535,
    }
    .emit(&mut b);
    b[20..].copy_from_slice(payload);
    b
}

pub fn icmp_echo(ident: u16, seq: u16) -> Vec<u8> {
    let mut b = vec![0u8; 8 + 8];
    icmp::Repr {
        msg_type: icmp::types::V4_ECHO_REQUEST,
        code: 0,
        rest: (u32::from(ident) << 16) | u32::from(seq),
    }
    .emit(&mut b);
    b[8..].copy_from_slice(b"pingdata");
    b
}

/// VM `n` sends UDP to `dip` through the gateway (routed).
pub fn vm_udp_routed(n: u8, dip: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    vm_udp_routed_with(n, dip, sport, dport, b"hello overlay")
}

/// `vm_udp_routed` carrying `payload`.
pub fn vm_udp_routed_with(n: u8, dip: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    frame_v4(
        GATEWAY_MAC,
        vm_mac(n),
        vm_ip(n),
        dip,
        ip_proto::UDP,
        64,
        &udp_l4(sport, dport, payload),
    )
}

pub fn vif(
    id: u32,
    kind: VifKind,
    mac: MacAddr,
    vrf: Option<u32>,
    policy: bool,
    ip: Option<Ipv4Addr>,
) -> Op {
    Op::AddVif(Vif {
        id: VifId(id),
        kind,
        name: format!("if{id}"),
        mac,
        vrf: vrf.map(VrfId),
        policy,
        mtu: 1500,
        ip: ip.map(IpAddr::V4),
    })
}

/// A flow entry for `key` by verdict number: 0 drop, 1 NAT (source port
/// 7000), 2 forward with a mirror to nexthop 2, anything else forward.
pub fn flow_spec(key: FlowKey, verdict: u8) -> FlowSpec {
    let (action, mirror) = match verdict {
        0 => (FlowAction::Drop, None),
        1 => (
            FlowAction::Nat(NatRewrite {
                src_port: Some(7000),
                ..Default::default()
            }),
            None,
        ),
        2 => (FlowAction::Forward, Some(NhId(2))),
        _ => (FlowAction::Forward, None),
    };
    FlowSpec {
        key,
        action,
        mirror,
        reverse_action: None,
    }
}

/// Any of the three tunnel encapsulations (MPLSoUDP and MPLSoGRE with label 16,
/// VXLAN with VNI 5001), for property tests.
pub fn any_encap() -> impl proptest::strategy::Strategy<Value = TunnelEncap> {
    use proptest::prelude::*;
    prop_oneof![
        Just(TunnelEncap::MplsOverUdp { label: 16 }),
        Just(TunnelEncap::MplsOverGre { label: 16 }),
        Just(TunnelEncap::Vxlan { vni: 5001 }),
    ]
}

/// Twin forwarders take flow verdict `verdict` (see [`flow_spec`]) for `key`:
/// both accept it and release the same packets (verdicts and bytes).
pub fn same_flow_verdict(a: &mut Forwarder, b: &mut Forwarder, key: FlowKey, verdict: u8) {
    let ra = a.apply(Op::AddFlow(flow_spec(key, verdict))).unwrap();
    let rb = b.apply(Op::AddFlow(flow_spec(key, verdict))).unwrap();
    assert_eq!(ra.released.len(), rb.released.len());
    for (x, y) in ra.released.iter().zip(rb.released.iter()) {
        assert_eq!(x.verdict, y.verdict);
        assert_eq!(x.buf.frame(), y.buf.frame());
    }
}

/// Twin forwarders queued the same frames to send (ARP requests), in order.
pub fn same_transmits(a: &mut Forwarder, b: &mut Forwarder) {
    while let Some(t) = a.poll_transmit() {
        assert_eq!(Some(t), b.poll_transmit());
    }
    assert_eq!(b.poll_transmit(), None);
}

/// Twin forwarders hold the same flows, interface counters and drops.
pub fn same_state(a: &Forwarder, b: &Forwarder) {
    assert_eq!(a.dump_flows(), b.dump_flows());
    assert_eq!(
        format!("{:?}", a.dump_interfaces()),
        format!("{:?}", b.dump_interfaces())
    );
    assert_eq!(a.dropstats(), b.dropstats());
}

/// Program a local workload the way TF's agent does: vif (gateway MAC),
/// Encap nexthop, label, /32 route, bridge entry.
pub fn add_workload(f: &mut Forwarder, id: u32, n: u8, label: u32, policy: bool) {
    for op in [
        vif(
            id,
            VifKind::Workload,
            GATEWAY_MAC,
            Some(1),
            policy,
            Some(vm_ip(n)),
        ),
        Op::AddNexthop(Nexthop {
            id: NhId(id),
            kind: NexthopKind::Encap {
                vif: VifId(id),
                dst_mac: vm_mac(n),
                src_mac: GATEWAY_MAC,
            },
        }),
        Op::AddLabel {
            label,
            nh: NhId(id),
            payload: LabelPayload::Ip,
        },
        Op::AddRoute {
            vrf: VrfId(1),
            prefix: format!("{}/32", vm_ip(n)).parse().unwrap(),
            nh: NhId(id),
        },
        Op::AddBridge {
            vrf: VrfId(1),
            mac: vm_mac(n),
            nh: NhId(id),
        },
    ] {
        f.apply(op).unwrap();
    }
}

pub fn tunnel(id: u32, src: &str, dst: &str, encap: TunnelEncap) -> Op {
    Op::AddNexthop(Nexthop {
        id: NhId(id),
        kind: NexthopKind::Tunnel {
            vif: VifId(0),
            src_ip: ip4(src),
            dst_ip: ip4(dst),
            encap,
        },
    })
}

/// Host A with VM1, VM2 local and VM3 remote on B through `encap`.
pub fn host_a(encap: TunnelEncap, policy: bool) -> Forwarder {
    host_a_sized(encap, policy, 1024)
}

/// [`host_a`] with room for `flow_capacity` flow entries.
pub fn host_a_sized(encap: TunnelEncap, policy: bool, flow_capacity: usize) -> Forwarder {
    host_a_cfg(
        encap,
        policy,
        ForwarderCfg {
            flow_capacity,
            ..Default::default()
        },
    )
}

/// [`host_a`] with this configuration.
pub fn host_a_cfg(encap: TunnelEncap, policy: bool, cfg: ForwarderCfg) -> Forwarder {
    let mut f = Forwarder::new(cfg);
    f.apply(vif(
        0,
        VifKind::Fabric,
        mac(A_FABRIC_MAC),
        None,
        false,
        Some(ip4(A_FABRIC_IP)),
    ))
    .unwrap();
    add_workload(&mut f, 1, 3, 16, policy);
    add_workload(&mut f, 2, 4, 17, policy);
    f.apply(tunnel(10, A_FABRIC_IP, B_FABRIC_IP, encap))
        .unwrap();
    f.apply(Op::AddRoute {
        vrf: VrfId(1),
        prefix: "10.1.1.5/32".parse().unwrap(),
        nh: NhId(10),
    })
    .unwrap();
    f.apply(Op::AddBridge {
        vrf: VrfId(1),
        mac: vm_mac(5),
        nh: NhId(10),
    })
    .unwrap();
    f.apply(Op::AddVni {
        vni: 5001,
        vrf: VrfId(1),
    })
    .unwrap();
    f.apply(Op::AddNeighbor {
        vif: VifId(0),
        ip: ip4(B_FABRIC_IP),
        mac: mac(B_FABRIC_MAC),
    })
    .unwrap();
    f
}

/// Host B with VM5 local (label 16 L3; label 18 L2; its vif with `policy`)
/// and VNI 5001.
pub fn host_b(policy: bool) -> Forwarder {
    let mut f = Forwarder::new(ForwarderCfg {
        flow_capacity: 1024,
        ..Default::default()
    });
    f.apply(vif(
        0,
        VifKind::Fabric,
        mac(B_FABRIC_MAC),
        None,
        false,
        Some(ip4(B_FABRIC_IP)),
    ))
    .unwrap();
    add_workload(&mut f, 1, 5, 16, policy);
    f.apply(Op::AddLabel {
        label: 18,
        nh: NhId(1),
        payload: LabelPayload::Ethernet,
    })
    .unwrap();
    f.apply(Op::AddVni {
        vni: 5001,
        vrf: VrfId(1),
    })
    .unwrap();
    f
}

pub fn run(f: &mut Forwarder, vif_in: u32, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let mut b = PacketBuf::from_frame(frame);
    let v = f.process(T0, VifId(vif_in), &mut b, RxMeta::default());
    (v, b.to_vec())
}

/// Compare with (or, with FILAMENT_UPDATE_GOLDEN=1, write) the hex dump in
/// tests/golden/<name>.hex.
pub fn golden(name: &str, bytes: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.hex"));
    let text: String = bytes
        .chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
                + "\n"
        })
        .collect();
    if std::env::var("FILAMENT_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden {path:?}; run with FILAMENT_UPDATE_GOLDEN=1"));
    assert_eq!(text, want, "frame differs from golden {name}");
}
