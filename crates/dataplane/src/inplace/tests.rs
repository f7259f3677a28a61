//! Tests of the in-place path: differential against `Forwarder::process`
//! (bytes, verdicts, counters) for routed, bridged and IPv6 frames.

use super::*;
use crate::ForwarderCfg;
use filament_wire_pkt::{tcp, udp};
use proptest::prelude::*;
use std::net::Ipv4Addr;

pub(super) const T0: Duration = Duration::from_secs(1);
const HEADROOM: usize = 128;

pub(super) fn vm_mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

/// A host with fabric `fab` (vif 0), local VMs `vms` (vif i+1, L3 label 16+i, L2 label
/// 30+i, bridge entry) in VRF 1, VNI 5001, and VM `remote` behind the peer `peer` through
/// `tenc` (routed: nexthop 10; bridged: nexthop 11, the L2 label 30 for MPLS).
fn host(fab: u8, peer: u8, vms: &[u8], remote: u8, tenc: TunnelEncap) -> Forwarder {
    host_with(fab, peer, vms, remote, tenc, false)
}

/// [`host`], with POLICY_ENABLED on the workload vifs when `policy`.
pub(super) fn host_with(
    fab: u8,
    peer: u8,
    vms: &[u8],
    remote: u8,
    tenc: TunnelEncap,
    policy: bool,
) -> Forwarder {
    let mut f = Forwarder::new(ForwarderCfg {
        flow_capacity: 1024,
        ..Default::default()
    });
    let fmac = |n: u8| format!("02:fa:00:00:00:{n:02x}");
    let vmac = |n: u8| format!("02:00:00:00:00:{n:02x}");
    let (me, them) = (format!("192.0.2.{fab}"), format!("192.0.2.{peer}"));
    let mut l2enc = serde_json::to_value(tenc).unwrap();
    if l2enc.get("label").is_some() {
        l2enc["label"] = 30.into();
    }
    let mut ops = vec![
        serde_json::json!({"op": "add_vif", "id": 0, "kind": "fabric",
        "name": "f", "mac": fmac(fab), "vrf": null, "policy": false, "mtu": 1500, "ip": me}),
    ];
    for (i, &n) in vms.iter().enumerate() {
        let id = i + 1;
        ops.extend([
            serde_json::json!({"op": "add_vif", "id": id, "kind": "workload", "name": "w",
                "mac": GATEWAY_MAC, "vrf": 1, "policy": policy, "mtu": 1500,
                "ip": format!("10.1.1.{n}")}),
            serde_json::json!({"op": "add_nexthop", "id": id, "type": "encap", "vif": id,
                "dst_mac": vmac(n), "src_mac": GATEWAY_MAC}),
            serde_json::json!({"op": "add_label", "label": 16 + i, "nh": id, "payload": "ip"}),
            serde_json::json!({"op": "add_label", "label": 30 + i, "nh": id,
                "payload": "ethernet"}),
            serde_json::json!({"op": "add_route", "vrf": 1,
                "prefix": format!("10.1.1.{n}/32"), "nh": id}),
            serde_json::json!({"op": "add_bridge", "vrf": 1, "mac": vmac(n), "nh": id}),
        ]);
    }
    for (id, enc) in [(10, serde_json::to_value(tenc).unwrap()), (11, l2enc)] {
        ops.push(
            serde_json::json!({"op": "add_nexthop", "id": id, "type": "tunnel",
            "vif": 0, "src_ip": me, "dst_ip": them, "encap": enc}),
        );
    }
    ops.extend([
        serde_json::json!({"op": "add_route", "vrf": 1,
            "prefix": format!("10.1.1.{remote}/32"), "nh": 10}),
        serde_json::json!({"op": "add_bridge", "vrf": 1, "mac": vmac(remote), "nh": 11}),
        serde_json::json!({"op": "add_vni", "vni": 5001, "vrf": 1}),
        serde_json::json!({"op": "add_neighbor", "vif": 0, "ip": them, "mac": fmac(peer)}),
    ]);
    for op in ops {
        let op: Op = serde_json::from_value(op.clone()).unwrap_or_else(|e| panic!("{op}: {e}"));
        f.apply(op).unwrap();
    }
    f
}

/// Ethernet (to the gateway MAC, or with `bridged` to VM `dst`'s MAC) + IPv4 + UDP or TCP
/// from VM `src` to VM `dst`.
pub(super) fn frame(src: u8, dst: u8, tcp_: bool, dport: u16, ttl: u8, payload: &[u8]) -> Vec<u8> {
    frame_to(GATEWAY_MAC, src, dst, tcp_, dport, ttl, payload)
}

pub(super) fn frame_to(
    to: MacAddr,
    src: u8,
    dst: u8,
    tcp_: bool,
    dport: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    frame_ports(to, src, dst, tcp_, (40000, dport), ttl, payload)
}

/// [`frame_to`] with source and destination ports `(sport, dport)`.
pub(super) fn frame_ports(
    to: MacAddr,
    src: u8,
    dst: u8,
    tcp_: bool,
    (sport, dport): (u16, u16),
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let l4_len = payload.len() + if tcp_ { 20 } else { 8 };
    let mut f = vec![0u8; 34 + l4_len];
    ethernet::Repr {
        dst: to.0,
        src: vm_mac(src).0,
        vlan_tci: None,
        ethertype: ethernet::ethertype::IPV4,
    }
    .emit(&mut f);
    let (s, d) = (Ipv4Addr::new(10, 1, 1, src), Ipv4Addr::new(10, 1, 1, dst));
    ipv4::Repr {
        src: s,
        dst: d,
        protocol: if tcp_ { ip_proto::TCP } else { ip_proto::UDP },
        payload_len: l4_len,
        ttl,
        tos: 0,
        ident: 7,
        dont_frag: true,
    }
    .emit(&mut f[14..]);
    let (s, d) = (IpAddr::V4(s), IpAddr::V4(d));
    if tcp_ {
        tcp::Repr {
            src_port: sport,
            dst_port: dport,
            seq: 1,
            ack: 0,
            flags: 0x10,
            window: 1000,
        }
        .emit(&mut f[34..]);
        f[54..].copy_from_slice(payload);
        tcp::Packet::new_unchecked(&mut f[34..]).fill_checksum(&s, &d);
    } else {
        udp::Repr {
            src_port: sport,
            dst_port: dport,
            payload_len: payload.len(),
        }
        .emit(&mut f[34..]);
        f[42..].copy_from_slice(payload);
        udp::Packet::new_unchecked(&mut f[34..]).fill_checksum(&s, &d);
    }
    f
}

/// Run `f` through `gen` (general pipeline) and `inp` (in place, falling back to the
/// general pipeline on a copy, as the shell does); both must agree.
pub(super) fn both(
    gen: &mut Forwarder,
    inp: &mut Forwarder,
    ctx: &mut InPlace,
    vif: u32,
    f: &[u8],
    meta: RxMeta,
) -> bool {
    let mut b = PacketBuf::from_frame(f);
    let want = gen.process(T0, VifId(vif), &mut b, meta);
    let mut mem = vec![0xeeu8; HEADROOM + f.len() + 16];
    mem[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
    let before = mem.clone();
    let mut slot = SlotFrame {
        mem: &mut mem,
        start: HEADROOM,
        len: f.len(),
    };
    match ctx.process(inp, T0, VifId(vif), &mut slot, meta) {
        Some(v) => {
            assert_eq!(want, v);
            if let Verdict::Transmit(_) = v {
                assert_eq!(slot.frame(), b.frame());
            }
            true
        }
        None => {
            assert_eq!(mem, before, "a declined frame was changed");
            let mut c = PacketBuf::from_frame(f);
            assert_eq!(inp.process(T0, VifId(vif), &mut c, meta), want);
            assert_eq!(c.frame(), b.frame());
            false
        }
    }
}

pub(super) fn same_state(a: &Forwarder, b: &Forwarder) {
    let j =
        |f: &Forwarder| serde_json::json!([f.dump_interfaces(), f.dropstats(), f.ip_ident, f.now]);
    assert_eq!(j(a), j(b));
}

pub(super) fn encaps() -> [TunnelEncap; 3] {
    [
        TunnelEncap::MplsOverUdp { label: 16 },
        TunnelEncap::MplsOverGre { label: 16 },
        TunnelEncap::Vxlan { vni: 5001 },
    ]
}

/// Host A (fabric .1, VMs 3 and 4, VM 5 behind B) and host B (fabric .2, VM 5, VM 3
/// behind A), each as twins: `g*` runs the general pipeline (fast path off), `i*` the
/// in-place path (falling back to `process` on a copy).
pub(super) struct Hosts {
    pub(super) ga: Forwarder,
    pub(super) ia: Forwarder,
    pub(super) gb: Forwarder,
    pub(super) ib: Forwarder,
    pub(super) ctx: InPlace,
}

impl Hosts {
    fn new(tenc: TunnelEncap) -> Hosts {
        Hosts::build(tenc, false)
    }

    /// The two hosts, with policy on every workload vif when `policy`.
    pub(super) fn build(tenc: TunnelEncap, policy: bool) -> Hosts {
        let mut h = Hosts {
            ga: host_with(1, 2, &[3, 4], 5, tenc, policy),
            ia: host_with(1, 2, &[3, 4], 5, tenc, policy),
            gb: host_with(2, 1, &[5], 3, tenc, policy),
            ib: host_with(2, 1, &[5], 3, tenc, policy),
            ctx: InPlace::new(),
        };
        h.ga.set_fast_path(false);
        h.gb.set_fast_path(false);
        h
    }

    /// `f` from VM 3 (vif 1) on A through both paths (see [`both`]).
    fn on_a(&mut self, f: &[u8]) -> bool {
        both(
            &mut self.ga,
            &mut self.ia,
            &mut self.ctx,
            1,
            f,
            RxMeta::default(),
        )
    }

    /// A's tunnel packet for `f` (the general pipeline on both A twins, so their state
    /// stays the same) received on B's fabric (vif 0) through both paths.
    fn across(&mut self, f: &[u8]) -> bool {
        let mut b = PacketBuf::from_frame(f);
        self.ga.process(T0, VifId(1), &mut b, RxMeta::default());
        let mut c = PacketBuf::from_frame(f);
        self.ia.process(T0, VifId(1), &mut c, RxMeta::default());
        both(
            &mut self.gb,
            &mut self.ib,
            &mut self.ctx,
            0,
            b.frame(),
            RxMeta::default(),
        )
    }

    /// Each host's twins have the same interfaces, counters, clock and flows (dump, route
    /// caches, last use).
    pub(super) fn same_states(&self) {
        for (g, i) in [(&self.ga, &self.ia), (&self.gb, &self.ib)] {
            same_state(g, i);
            assert_eq!(g.dump_flows(), i.dump_flows());
            for d in g.dump_flows() {
                let (x, y) = (g.flows.get(d.index).unwrap(), i.flows.get(d.index).unwrap());
                assert_eq!(
                    format!("{:?}", x.route_cache()),
                    format!("{:?}", y.route_cache())
                );
                assert_eq!((x.tunnel_nh, x.tunnel_gen), (y.tunnel_nh, y.tunnel_gen));
                assert_eq!(x.last_used(), y.last_used());
            }
        }
    }
}

#[test]
fn routed_encap_and_decap_are_handled_in_place() {
    for tenc in encaps() {
        let mut h = Hosts::new(tenc);
        let f = frame(3, 5, false, 5001, 64, b"payload");
        assert!(h.on_a(&f));
        // Local: VM3 -> VM4.
        assert!(h.on_a(&frame(3, 4, true, 80, 64, b"x")));
        // The tunnel's output decapsulated on B.
        assert!(h.across(&f), "{tenc:?}");
        // Bridged (to VM5's MAC), and its decapsulation on B (L2 label / VXLAN).
        let f = frame_to(vm_mac(5), 3, 5, true, 80, 64, b"bridged");
        assert!(h.on_a(&f));
        assert!(h.across(&f));
        assert!(h.on_a(&frame_to(vm_mac(4), 3, 4, false, 9, 64, b"l2")));
        h.same_states();
        // TTL 1 and DHCP go to the general path.
        assert!(!h.on_a(&frame(3, 5, false, 9, 1, b"")));
        assert!(!h.on_a(&frame(3, 5, false, 67, 64, b"")));
        same_state(&h.ga, &h.ia);
    }
}

/// Ethernet (to the gateway MAC) + IPv6 + UDP from fd00::3 to fd00::5.
pub(super) fn frame6() -> Vec<u8> {
    let mut f = vec![0u8; 14 + 40 + 8 + 5];
    ethernet::Repr {
        dst: GATEWAY_MAC.0,
        src: vm_mac(3).0,
        vlan_tci: None,
        ethertype: ethernet::ethertype::IPV6,
    }
    .emit(&mut f);
    let (s6, d6): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        ("fd00::3".parse().unwrap(), "fd00::5".parse().unwrap());
    filament_wire_pkt::ipv6::Repr {
        src: s6,
        dst: d6,
        next_header: ip_proto::UDP,
        payload_len: 13,
        hop_limit: 9,
        traffic_class: 0,
        flow_label: 0,
    }
    .emit(&mut f[14..]);
    udp::Repr {
        src_port: 1,
        dst_port: 2,
        payload_len: 5,
    }
    .emit(&mut f[54..]);
    udp::Packet::new_unchecked(&mut f[54..]).fill_checksum(&s6.into(), &d6.into());
    f
}

/// fd00::5/128 (VM 5 on host B) in VRF 1 of each forwarder: through the tunnel (nexthop 10)
/// on host A's, to the local vif (nexthop 1) on host B's.
pub(super) fn route_fd00_5(a: [&mut Forwarder; 2], b: [&mut Forwarder; 2]) {
    for (fs, nh) in [(a, 10), (b, 1)] {
        for f in fs {
            f.apply(Op::AddRoute {
                vrf: VrfId(1),
                prefix: "fd00::5/128".parse().unwrap(),
                nh: NhId(nh),
            })
            .unwrap();
        }
    }
}

#[test]
fn ipv6_routed_over_every_tunnel_matches() {
    for tenc in encaps() {
        let mut h = Hosts::new(tenc);
        route_fd00_5([&mut h.ga, &mut h.ia], [&mut h.gb, &mut h.ib]);
        let f = frame6();
        assert!(h.on_a(&f), "{tenc:?}");
        assert!(h.across(&f));
        h.same_states();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Random frames (valid, then possibly with one byte changed), through both paths on
    /// twin forwarders: same verdicts, bytes and counters, on both hosts.
    #[test]
    fn in_place_equals_general_pipeline(
        e in 0usize..3,
        pkts in proptest::collection::vec(
            (any::<bool>(), (3u8..6, 0u8..3), any::<u16>(), prop_oneof![Just(64u8), 0u8..3],
             proptest::collection::vec(any::<u8>(), 0..1500), any::<bool>(),
             proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
             any::<bool>()),
            1..12),
    ) {
        let tenc = encaps()[e];
        let mut h = Hosts::new(tenc);
        for (tcp_, dst, dport, ttl, payload, partial, flip, decap) in pkts {
            // To the gateway (routed), to the VM's MAC (bridged) or to an unknown MAC.
            let (dst, to) = dst;
            let to = [GATEWAY_MAC, vm_mac(dst), vm_mac(9)][usize::from(to)];
            let mut f = frame_to(to, 3, dst, tcp_, dport, ttl, &payload);
            let meta = RxMeta { csum_partial: partial, vlan_tci: None };
            let vif = if decap {
                // Host A's encapsulation of it, received on B's fabric.
                let mut b = PacketBuf::from_frame(&f);
                let mut scratch = host(1, 2, &[3, 4], 5, tenc);
                if scratch.process(T0, VifId(1), &mut b, RxMeta::default()) != Verdict::Transmit(VifId(0)) {
                    continue;
                }
                f = b.to_vec();
                0
            } else {
                1
            };
            if let Some((i, v)) = flip {
                let i = i.index(f.len());
                f[i] = v;
            }
            let (g, p) = if decap { (&mut h.gb, &mut h.ib) } else { (&mut h.ga, &mut h.ia) };
            both(g, p, &mut h.ctx, vif, &f, meta);
        }
        h.same_states();
    }
}
