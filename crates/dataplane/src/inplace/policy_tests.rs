//! Tests of the in-place path on policy-enabled interfaces (`policy.rs`): differential
//! against the general pipeline (fast path off: the reference is `flow_stage` itself) on twin
//! hosts with installed flows, forward and reverse, routed and bridged, across the fabric
//! (egress policy), Drop and NAT verdicts; misses, HOLD and mirrors must be declined untouched.

use super::tests::{both, encaps, frame6, frame_ports, route_fd00_5, vm_mac, Hosts, T0};
use super::*;
use crate::{FlowKey, FlowSpec, NatRewrite};
use proptest::prelude::*;
use std::net::Ipv4Addr;

const UDP: u8 = ip_proto::UDP;
const TCP: u8 = ip_proto::TCP;

/// Where a test frame enters: from VM 3 on A's vif 1 (`A`) or VM 5 on B's vif 1 (`B`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum From {
    A,
    B,
}

fn key(src: u8, dst: u8, proto: u8, (sport, dport): (u16, u16)) -> FlowKey {
    FlowKey {
        vrf: VrfId(1),
        proto,
        src: IpAddr::V4(Ipv4Addr::new(10, 1, 1, src)),
        dst: IpAddr::V4(Ipv4Addr::new(10, 1, 1, dst)),
        sport,
        dport,
    }
}

/// Verdict `v`: 0 Drop, 1 NAT (source port), 2 Forward with a mirror, 3 NAT (destination VM 4,
/// port 8080), else Forward.
fn spec(key: FlowKey, v: u8) -> FlowSpec {
    let (action, mirror) = match v {
        0 => (FlowAction::Drop, None),
        1 => (
            FlowAction::Nat(NatRewrite {
                src_port: Some(7000),
                ..Default::default()
            }),
            None,
        ),
        2 => (FlowAction::Forward, Some(NhId(10))),
        3 => (
            FlowAction::Nat(NatRewrite {
                dst_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 1, 4))),
                dst_port: Some(8080),
                ..Default::default()
            }),
            None,
        ),
        _ => (FlowAction::Forward, None),
    };
    FlowSpec {
        key,
        action,
        mirror,
        reverse_action: None,
    }
}

impl Hosts {
    /// Install verdict `v` for `key` on both hosts' twins (the agent does it on each host).
    fn install(&mut self, key: FlowKey, v: u8) {
        self.install_on(From::A, spec(key, v));
        self.install_on(From::B, spec(key, v));
    }

    /// Install `spec` on one host's twins; released held packets must agree.
    fn install_on(&mut self, on: From, spec: FlowSpec) {
        let (g, i) = self.twins(on);
        let rg = g.apply(Op::AddFlow(spec.clone())).unwrap();
        let ri = i.apply(Op::AddFlow(spec)).unwrap();
        assert_eq!(rg.released.len(), ri.released.len());
        for (x, y) in rg.released.iter().zip(ri.released.iter()) {
            assert_eq!(x.verdict, y.verdict);
            assert_eq!(x.buf.frame(), y.buf.frame());
        }
    }

    fn twins(&mut self, on: From) -> (&mut Forwarder, &mut Forwarder) {
        match on {
            From::A => (&mut self.ga, &mut self.ia),
            From::B => (&mut self.gb, &mut self.ib),
        }
    }

    /// `f` from the host's local VM (vif 1) through both paths: handled in place?
    fn on(&mut self, at: From, f: &[u8], meta: RxMeta) -> bool {
        let (g, i) = match at {
            From::A => (&mut self.ga, &mut self.ia),
            From::B => (&mut self.gb, &mut self.ib),
        };
        both(g, i, &mut self.ctx, 1, f, meta)
    }

    /// `f` from `from`'s VM, encapsulated by `from`'s twins (general pipeline on both, so they
    /// stay the same), received on the other host's fabric through both paths. `None`: the
    /// sender did not send it over the tunnel (punted, dropped, local).
    fn across_from(&mut self, from: From, f: &[u8]) -> Option<bool> {
        let (g, i) = self.twins(from);
        let mut b = PacketBuf::from_frame(f);
        let vg = g.process(T0, VifId(1), &mut b, RxMeta::default());
        let mut c = PacketBuf::from_frame(f);
        let vi = i.process(T0, VifId(1), &mut c, RxMeta::default());
        assert_eq!(vg, vi);
        assert_eq!(b.frame(), c.frame());
        if vg != Verdict::Transmit(VifId(0)) {
            return None;
        }
        let (g, i) = match from {
            From::A => (&mut self.gb, &mut self.ib),
            From::B => (&mut self.ga, &mut self.ia),
        };
        Some(both(g, i, &mut self.ctx, 0, b.frame(), RxMeta::default()))
    }

    /// Packets counted in A's (in-place twin's) entry for `key`.
    fn packets(&self, on: From, key: &FlowKey) -> u64 {
        let f = if on == From::A { &self.ia } else { &self.ib };
        f.dump_flows()
            .iter()
            .find(|d| d.key == *key)
            .map_or(0, |d| d.packets)
    }
}

/// VM `src` to VM `dst` (routed to the gateway MAC, or bridged to `dst`'s MAC).
fn pkt(bridged: bool, src: u8, dst: u8, proto: u8, ports: (u16, u16), payload: &[u8]) -> Vec<u8> {
    let to = if bridged { vm_mac(dst) } else { GATEWAY_MAC };
    frame_ports(to, src, dst, proto == TCP, ports, 64, payload)
}

#[test]
fn flow_hits_forward_in_place_both_ways() {
    let m = RxMeta::default();
    for tenc in encaps() {
        for bridged in [false, true] {
            let mut h = Hosts::build(tenc, true);
            let (fwd, local) = ((40000, 5001), (40001, 80));
            // A miss is held and punted by the general path.
            let f = pkt(bridged, 3, 5, UDP, fwd, b"first");
            assert!(!h.on(From::A, &f, m));
            assert!(h.across_from(From::A, &f).is_none());
            h.install(key(3, 5, UDP, fwd), 4);
            h.install(key(3, 4, TCP, local), 4);
            for n in 0..3u8 {
                let f = pkt(bridged, 3, 5, UDP, fwd, &[n; 40]);
                // The first hit fills the route cache (in place), then the fast path's checks.
                assert!(h.on(From::A, &f, m), "{tenc:?} bridged {bridged} #{n}");
                assert!(h.on(From::A, &pkt(bridged, 3, 4, TCP, local, b"x"), m));
                // B's egress policy on the way to VM 5, and the reverse direction both ways.
                assert_eq!(h.across_from(From::A, &f), Some(true), "{tenc:?}");
                let r = pkt(bridged, 5, 3, UDP, (fwd.1, fwd.0), &[n; 9]);
                assert!(h.on(From::B, &r, m));
                assert_eq!(h.across_from(From::B, &r), Some(true));
                // Partial checksums are completed as the general path does.
                let partial = RxMeta {
                    csum_partial: true,
                    vlan_tci: None,
                };
                assert!(h.on(From::A, &f, partial));
            }
            h.same_states();
            // A: the 2 held packets the verdict released, 3 + 3 (partial) in place and 3 sent
            // to B's fabric by `across`; B: the 3 it received.
            assert_eq!(h.packets(From::A, &key(3, 5, UDP, fwd)), 11);
            assert_eq!(h.packets(From::B, &key(3, 5, UDP, fwd)), 3);
            assert_eq!(h.packets(From::A, &key(5, 3, UDP, (fwd.1, fwd.0))), 3);
            assert_eq!(h.packets(From::A, &key(3, 4, TCP, local)), 3);
            assert_eq!(h.ctx.flow_hits(), 18);
        }
    }
}

#[test]
fn drop_and_nat_verdicts_are_applied_in_place_and_mirrors_declined() {
    let m = RxMeta::default();
    for tenc in encaps() {
        let mut h = Hosts::build(tenc, true);
        let ports = |v: u8| (41000 + u16::from(v), 22);
        for v in 0..5 {
            h.install(key(3, 5, TCP, ports(v)), v);
        }
        for bridged in [false, true] {
            let drop = pkt(bridged, 3, 5, TCP, ports(0), b"denied");
            let mut g = PacketBuf::from_frame(&drop);
            assert_eq!(
                h.ga.clone().process(T0, VifId(1), &mut g, m),
                Verdict::Drop(DropReason::Policy)
            );
            assert!(h.on(From::A, &drop, m), "a Drop entry is applied in place");
            // NAT is rewritten in place; a mirror goes the general way.
            assert!(h.on(From::A, &pkt(bridged, 3, 5, TCP, ports(1), b"nat"), m));
            assert!(!h.on(From::A, &pkt(bridged, 3, 5, TCP, ports(2), b"mirror"), m));
            assert!(h.on(From::A, &pkt(bridged, 3, 5, TCP, ports(3), b"dnat"), m));
            assert!(h.on(From::A, &pkt(bridged, 3, 5, TCP, ports(4), b"ok"), m));
            // A Forward entry turned Drop, and back.
            let f = pkt(bridged, 3, 5, TCP, ports(4), b"ok");
            h.install(key(3, 5, TCP, ports(4)), 0);
            assert!(h.on(From::A, &f, m));
            h.install(key(3, 5, TCP, ports(4)), 4);
            h.same_states();
        }
        assert_eq!(h.ga.dropstats().drops.get(&DropReason::Policy), Some(&4));
    }
}

#[test]
fn nat_flows_are_rewritten_in_place_both_ways() {
    let m = RxMeta::default();
    let nat = |k| FlowSpec {
        key: k,
        action: FlowAction::Nat(NatRewrite {
            dst_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 1, 5))),
            dst_port: Some(80),
            ..Default::default()
        }),
        mirror: None,
        reverse_action: None,
    };
    for tenc in encaps() {
        for bridged in [false, true] {
            let mut h = Hosts::build(tenc, true);
            // VM 3 reaches VM 5 as 10.1.1.99:8080: A's flow rewrites the destination (and its
            // reverse entry the source of the replies); B sees VM 3 -> VM 5:80 and forwards.
            let k = key(3, 99, TCP, (40000, 8080));
            h.install_on(From::A, nat(k));
            h.install_on(From::B, spec(key(3, 5, TCP, (40000, 80)), 4));
            let to = |n: u8| if bridged { vm_mac(n) } else { GATEWAY_MAC };
            for n in 0..3u8 {
                let f = frame_ports(to(5), 3, 99, true, (40000, 8080), 64, &[n; 30]);
                assert!(h.on(From::A, &f, m), "{tenc:?} bridged {bridged}");
                assert_eq!(h.across_from(From::A, &f), Some(true));
                let r = frame_ports(to(3), 5, 3, true, (80, 40000), 64, &[n; 7]);
                assert!(h.on(From::B, &r, m));
                // A's reverse entry rewrites the reply's source back to 10.1.1.99:8080.
                assert_eq!(h.across_from(From::B, &r), Some(true));
            }
            h.same_states();
            assert_eq!(h.packets(From::A, &k), 6);
            assert_eq!(h.packets(From::A, &key(5, 3, TCP, (80, 40000))), 3);
        }
    }
}

#[test]
fn egress_drop_on_the_receiving_host_is_applied_in_place() {
    for tenc in encaps() {
        let mut h = Hosts::build(tenc, true);
        let k = key(3, 5, UDP, (40000, 53));
        h.install(k, 4);
        // B's verdict differs from A's (B's agent has its own policy).
        for f in [&mut h.gb, &mut h.ib] {
            f.apply(Op::AddFlow(spec(k, 0))).unwrap();
        }
        let f = pkt(false, 3, 5, UDP, (40000, 53), b"q");
        assert_eq!(h.across_from(From::A, &f), Some(true));
        assert_eq!(h.gb.dropstats().drops.get(&DropReason::Policy), Some(&1));
        h.same_states();
    }
}

#[test]
fn a_new_verdict_drops_the_cached_route() {
    let m = RxMeta::default();
    for tenc in encaps() {
        let mut h = Hosts::build(tenc, true);
        let k = key(3, 5, UDP, (40000, 80));
        // NAT to VM 4: the flow's route cache holds VM 4's interface (vif 2).
        for f in [&mut h.ga, &mut h.ia] {
            let mut s = spec(k, 4);
            s.action = FlowAction::Nat(NatRewrite {
                dst_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 1, 4))),
                ..Default::default()
            });
            f.apply(Op::AddFlow(s)).unwrap();
        }
        let f = pkt(false, 3, 5, UDP, (40000, 80), b"n");
        let mut b = PacketBuf::from_frame(&f);
        assert_eq!(
            h.ia.process(T0, VifId(1), &mut b, m),
            Verdict::Transmit(VifId(2))
        );
        let mut b = PacketBuf::from_frame(&f);
        assert_eq!(
            h.ga.process(T0, VifId(1), &mut b, m),
            Verdict::Transmit(VifId(2))
        );
        // Forward now: to VM 5 over the tunnel, in place and on the general path.
        for f in [&mut h.ga, &mut h.ia] {
            f.apply(Op::AddFlow(spec(k, 4))).unwrap();
        }
        let mut b = PacketBuf::from_frame(&f);
        assert_eq!(
            h.ga.clone().process(T0, VifId(1), &mut b, m),
            Verdict::Transmit(VifId(0))
        );
        assert!(h.on(From::A, &f, m));
        assert!(h.on(From::A, &f, m));
        h.same_states();
    }
}

#[test]
fn ipv6_flow_hits_are_handled_in_place() {
    for tenc in encaps() {
        let mut h = Hosts::build(tenc, true);
        route_fd00_5([&mut h.ga, &mut h.ia], [&mut h.gb, &mut h.ib]);
        let f = frame6();
        assert!(!h.on(From::A, &f, RxMeta::default()), "a miss");
        let k = FlowKey {
            vrf: VrfId(1),
            proto: UDP,
            src: "fd00::3".parse().unwrap(),
            dst: "fd00::5".parse().unwrap(),
            sport: 1,
            dport: 2,
        };
        h.install(k, 4);
        assert!(h.on(From::A, &f, RxMeta::default()), "{tenc:?}");
        assert_eq!(h.across_from(From::A, &f), Some(true));
        h.same_states();
    }
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Step {
    /// A frame: `dir` 0 A's VM 3 to VM 5, 1 VM 3 to VM 4 (local), 2 VM 3 to VM 5 received on
    /// B's fabric, 3 B's VM 5 to VM 3, 4 VM 5 to VM 3 received on A's fabric.
    Pkt {
        dir: u8,
        tcp: bool,
        port: u8,
        bridged: bool,
        ttl: u8,
        payload: Vec<u8>,
        partial: bool,
        flip: Option<(prop::sample::Index, u8)>,
    },
    /// Install verdict `v` (see [`spec`]) for the forward key of (`dir` 0..3, `tcp`, `port`).
    Install { dir: u8, tcp: bool, port: u8, v: u8 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..5, any::<bool>(), 0u8..3, any::<bool>(), prop_oneof![Just(64u8), 0u8..3],
              proptest::collection::vec(any::<u8>(), 0..600), proptest::bool::weighted(0.2),
              proptest::option::weighted(0.1, (any::<prop::sample::Index>(), any::<u8>())))
            .prop_map(|(dir, tcp, port, bridged, ttl, payload, partial, flip)| Step::Pkt {
                dir, tcp, port, bridged, ttl, payload, partial, flip,
            }),
        2 => (0u8..4, any::<bool>(), 0u8..3, 0u8..6)
            .prop_map(|(dir, tcp, port, v)| Step::Install { dir, tcp, port, v }),
    ]
}

/// (source VM, destination VM, ports) of direction `dir`.
fn endpoints(dir: u8, port: u8) -> (u8, u8, (u16, u16)) {
    let p = [(40000, 80), (40001, 5001), (40002, 53)][usize::from(port % 3)];
    match dir {
        0 | 2 => (3, 5, p),
        1 => (3, 4, p),
        _ => (5, 3, (p.1, p.0)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Random frames and verdicts on policy interfaces, through both paths on twin hosts:
    /// same verdicts, bytes, interface counters, drops and flow entries, on both hosts.
    #[test]
    fn in_place_equals_general_pipeline_on_policy_vifs(
        e in 0usize..3,
        steps in proptest::collection::vec(step(), 1..30),
    ) {
        let mut h = Hosts::build(encaps()[e], true);
        for s in steps {
            match s {
                Step::Install { dir, tcp, port, v } => {
                    let (src, dst, ports) = endpoints(dir, port);
                    h.install(key(src, dst, if tcp { TCP } else { UDP }, ports), v);
                }
                Step::Pkt { dir, tcp, port, bridged, ttl, payload, partial, flip } => {
                    let (src, dst, ports) = endpoints(dir, port);
                    let to = if bridged { vm_mac(dst) } else { GATEWAY_MAC };
                    let mut f = frame_ports(to, src, dst, tcp, ports, ttl, &payload);
                    if let Some((i, v)) = flip {
                        let i = i.index(f.len());
                        f[i] = v;
                    }
                    let meta = RxMeta { csum_partial: partial, vlan_tci: None };
                    match dir {
                        0 | 1 => { h.on(From::A, &f, meta); }
                        3 => { h.on(From::B, &f, meta); }
                        2 => { h.across_from(From::A, &f); }
                        _ => { h.across_from(From::B, &f); }
                    }
                }
            }
        }
        h.same_states();
    }
}
