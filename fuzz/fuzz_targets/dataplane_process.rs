//! The forwarder pipeline on arbitrary frames from any kind of interface
//! (selected by the first byte, with policy, partial-checksum and ARP-proxy
//! flags; a second frame follows when the input has one: another fragment of
//! the same datagram, for the fragment table and the queue of fragments that
//! come before their first one, or an ICMP error about the first frame's NAT
//! flow, translated back quote included) must never panic; the drop counters
//! stay consistent, also once queued fragments time out.
#![no_main]

use std::time::Duration;

use filament_dataplane::*;
use libfuzzer_sys::fuzz_target;

#[path = "dataplane_common.rs"]
mod common;
use common::*;

fn forwarder(policy: bool, arp_proxy: bool) -> Forwarder {
    let mut ops = base_ops(policy, TunnelEncap::MplsOverUdp { label: 16 });
    ops.extend([
        Op::AddNexthop(Nexthop { id: NhId(3), kind: NexthopKind::Tunnel { vif: VifId(0), src_ip: FABRIC, dst_ip: REMOTE, encap: TunnelEncap::Vxlan { vni: 5001 } } }),
        Op::AddNexthop(Nexthop { id: NhId(4), kind: NexthopKind::Ecmp { members: vec![NhId(2), NhId(3)] } }),
        Op::AddNexthop(Nexthop { id: NhId(5), kind: NexthopKind::Flood { members: vec![NhId(1), NhId(3)] } }),
        Op::AddLabel { label: 16, nh: NhId(1), payload: LabelPayload::Ip },
        Op::AddLabel { label: 17, nh: NhId(1), payload: LabelPayload::Ethernet },
        Op::AddVni { vni: 5001, vrf: VrfId(1) },
        Op::AddRoute { vrf: VrfId(1), prefix: "0.0.0.0/0".parse().unwrap(), nh: NhId(4) },
        Op::AddRoute { vrf: VrfId(1), prefix: "::/0".parse().unwrap(), nh: NhId(2) },
        Op::AddBridge { vrf: VrfId(1), mac: MacAddr::BROADCAST, nh: NhId(5) },
    ]);
    programmed_with(ForwarderCfg { flow_capacity: 64, arp_proxy, ..Default::default() }, ops)
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let mut f = forwarder(sel & 4 != 0, sel & 16 != 0);
    // Bytes after a 0xff 0xff separator are a second frame (e.g. a later fragment).
    let (frame, second) = match frame.windows(2).position(|w| w == [0xff, 0xff]) {
        Some(i) if sel & 32 != 0 => (&frame[..i], Some(&frame[i + 2..])),
        _ => (frame, None),
    };
    let mut buf = PacketBuf::from_frame(frame);
    let meta = RxMeta { csum_partial: sel & 8 != 0, vlan_tci: None };
    let v = f.process(Duration::from_secs(1), VifId(u32::from(sel & 3)), &mut buf, meta);
    if let Verdict::Punt { key: Some(key), .. } = v {
        let nat = NatRewrite { src_ip: Some(key.dst), src_port: Some(7), ..Default::default() };
        let _ = f.apply(Op::AddFlow(FlowSpec { key, action: FlowAction::Nat(nat), mirror: None, reverse_action: None }));
    }
    if let Some(s) = second {
        let mut b = PacketBuf::from_frame(s);
        let _ = f.process(Duration::from_secs(1), VifId(u32::from(sel & 3)), &mut b, RxMeta::default());
    }
    while f.poll_transmit().is_some() {}
    f.age_flows(Duration::from_secs(10));
    let s = f.dropstats();
    assert_eq!(s.total, s.drops.values().sum::<u64>());
});
