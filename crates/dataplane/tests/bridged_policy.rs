//! The flow stage on the bridged path (issue 7 acceptance, SG "TCP 22 only"): traffic bridged
//! between hosts (MPLSoUDP L2 label with control word, VXLAN) into a policy vif is punted as a
//! flow miss on the receiving host, so its ingress rules are evaluated for the request; the
//! bridged reply from that vif then matches the installed reverse flow (no second punt), and a
//! drop verdict stops both directions.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::net::IpAddr;

use common::*;
use filament_dataplane::*;
use filament_wire_pkt::ip_proto;

const SYN: u8 = 0x02;
const SYN_ACK: u8 = 0x12;

/// Host B with VM5 on a policy vif and a tunnel (nexthop 10) back to host A for VM3's MAC.
fn policy_host_b(encap: TunnelEncap) -> Forwarder {
    let mut b = host_b(true);
    b.apply(tunnel(10, B_FABRIC_IP, A_FABRIC_IP, encap))
        .unwrap();
    b.apply(Op::AddBridge {
        vrf: VrfId(1),
        mac: vm_mac(3),
        nh: NhId(10),
    })
    .unwrap();
    b.apply(Op::AddNeighbor {
        vif: VifId(0),
        ip: ip4(A_FABRIC_IP),
        mac: mac(A_FABRIC_MAC),
    })
    .unwrap();
    b
}

/// VM3 on A opens TCP to VM5:22 with a bridged SYN (A has no policy); returns B's verdict
/// for the frame A put on the fabric, and the frame VM3 sent.
fn syn_to_b(a_encap: TunnelEncap, b: &mut Forwarder) -> (Verdict, Vec<u8>) {
    let mut a = host_a(a_encap, false);
    let syn = frame_v4(
        vm_mac(5),
        vm_mac(3),
        vm_ip(3),
        vm_ip(5),
        ip_proto::TCP,
        64,
        &tcp_l4(40000, 22, SYN, b""),
    );
    let (v, wire) = run(&mut a, 1, &syn);
    assert_eq!(
        v,
        Verdict::Transmit(VifId(0)),
        "A bridges the SYN into the tunnel"
    );
    (run(b, 0, &wire).0, syn)
}

fn syn_ack_from_vm5() -> Vec<u8> {
    frame_v4(
        vm_mac(3),
        vm_mac(5),
        vm_ip(5),
        vm_ip(3),
        ip_proto::TCP,
        64,
        &tcp_l4(22, 40000, SYN_ACK, b""),
    )
}

fn check_request_then_reply(a_encap: TunnelEncap, b_encap: TunnelEncap) {
    let mut b = policy_host_b(b_encap);
    let (v, syn) = syn_to_b(a_encap, &mut b);
    // The request is what the receiving host decides on: a flow miss for VM3 -> VM5:22.
    let Verdict::Punt {
        reason: PuntReason::FlowMiss,
        key: Some(key),
    } = v
    else {
        panic!("bridged SYN into a policy vif was not punted: {v:?}")
    };
    assert_eq!(
        (key.vrf, key.proto, key.src, key.dst, key.sport, key.dport),
        (
            VrfId(1),
            ip_proto::TCP,
            IpAddr::V4(vm_ip(3)),
            IpAddr::V4(vm_ip(5)),
            40000,
            22
        )
    );
    let rel = b
        .apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Forward,
            mirror: None,
            reverse_action: None,
        }))
        .unwrap();
    assert_eq!(rel.released.len(), 1);
    assert_eq!(rel.released[0].verdict, Verdict::Transmit(VifId(1)));
    assert_eq!(rel.released[0].buf.frame(), &syn[..], "delivered unchanged");
    // The reply from VM5 matches the reverse entry: tunnelled, not punted again.
    let (v, _) = run(&mut b, 1, &syn_ack_from_vm5());
    assert_eq!(
        v,
        Verdict::Transmit(VifId(0)),
        "reply did not use the reverse flow"
    );
    // A second request packet uses the forward entry directly.
    let (v2, _) = syn_to_b(a_encap, &mut b);
    assert_eq!(v2, Verdict::Transmit(VifId(1)));
}

#[test]
fn bridged_mpls_over_udp_request_is_decided_on_the_receiving_host_and_reply_matches() {
    // A's tunnel to B carries B's L2 label 18 (payload Ethernet, with the control word).
    check_request_then_reply(
        TunnelEncap::MplsOverUdp { label: 18 },
        TunnelEncap::MplsOverUdp { label: 16 },
    );
}

#[test]
fn bridged_vxlan_request_is_decided_on_the_receiving_host_and_reply_matches() {
    check_request_then_reply(
        TunnelEncap::Vxlan { vni: 5001 },
        TunnelEncap::Vxlan { vni: 5001 },
    );
}

#[test]
fn bridged_request_denied_on_the_receiving_host_drops_both_directions() {
    let mut b = policy_host_b(TunnelEncap::MplsOverUdp { label: 16 });
    let (v, _) = syn_to_b(TunnelEncap::MplsOverUdp { label: 18 }, &mut b);
    let Verdict::Punt { key: Some(key), .. } = v else {
        panic!("{v:?}")
    };
    let rel = b
        .apply(Op::AddFlow(FlowSpec {
            key,
            action: FlowAction::Drop,
            mirror: None,
            reverse_action: None,
        }))
        .unwrap();
    assert_eq!(rel.released[0].verdict, Verdict::Drop(DropReason::Policy));
    let (v, _) = syn_to_b(TunnelEncap::MplsOverUdp { label: 18 }, &mut b);
    assert_eq!(v, Verdict::Drop(DropReason::Policy));
    let (v, _) = run(&mut b, 1, &syn_ack_from_vm5());
    assert_eq!(v, Verdict::Drop(DropReason::Policy));
}
