//! Differential target for the forwarder's flow-cached fast path: the same
//! arbitrary frame goes through a forwarder with the fast path on and one
//! with it off, three times (miss and verdict, then established-flow hits
//! that fill and then use the route cache); verdicts, output bytes, flow
//! dumps, interface counters and drop statistics must be identical.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use filament_dataplane::*;
use libfuzzer_sys::fuzz_target;

fn forwarder(policy: bool, encap: TunnelEncap, fast: bool) -> Forwarder {
    let mut f = Forwarder::new(ForwarderCfg { flow_capacity: 64, ..Default::default() });
    f.set_fast_path(fast);
    let fabric = Ipv4Addr::new(192, 0, 2, 1);
    let remote = Ipv4Addr::new(192, 0, 2, 2);
    let vm = MacAddr([2, 0, 0, 0, 0, 3]);
    let ops = vec![
        Op::AddVif(Vif { id: VifId(0), kind: VifKind::Fabric, name: String::new(), mac: MacAddr([2, 0xfa, 0, 0, 0, 1]), vrf: None, policy: false, mtu: 1500, ip: Some(IpAddr::V4(fabric)) }),
        Op::AddVif(Vif { id: VifId(1), kind: VifKind::Workload, name: String::new(), mac: GATEWAY_MAC, vrf: Some(VrfId(1)), policy, mtu: 1500, ip: None }),
        Op::AddNexthop(Nexthop { id: NhId(1), kind: NexthopKind::Encap { vif: VifId(1), dst_mac: vm, src_mac: GATEWAY_MAC } }),
        Op::AddNexthop(Nexthop { id: NhId(2), kind: NexthopKind::Tunnel { vif: VifId(0), src_ip: fabric, dst_ip: remote, encap } }),
        Op::AddNeighbor { vif: VifId(0), ip: remote, mac: MacAddr([2, 0xfa, 0, 0, 0, 2]) },
        Op::AddRoute { vrf: VrfId(1), prefix: "10.1.1.3/32".parse().unwrap(), nh: NhId(1) },
        Op::AddRoute { vrf: VrfId(1), prefix: "0.0.0.0/0".parse().unwrap(), nh: NhId(2) },
        Op::AddBridge { vrf: VrfId(1), mac: vm, nh: NhId(1) },
    ];
    for op in ops {
        f.apply(op).unwrap();
    }
    f
}

/// Make the frame reach past the first checks: to the gateway MAC, IPv4
/// ethertype, and a correct IPv4 header checksum (the fuzzer rarely finds
/// one), so the flow stage and the fast path see varied packets.
fn repair(frame: &mut [u8]) {
    if frame.len() < 34 {
        return;
    }
    frame[..6].copy_from_slice(&GATEWAY_MAC.0);
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let hl = usize::from(frame[14] & 0x0f) * 4;
    if hl < 20 || frame.len() < 14 + hl {
        return;
    }
    frame[24..26].copy_from_slice(&[0, 0]);
    let c = filament_wire_pkt::checksum::checksum(&frame[14..14 + hl]);
    frame[24..26].copy_from_slice(&c.to_be_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let mut frame = frame.to_vec();
    if sel & 0x40 != 0 {
        repair(&mut frame);
    }
    let frame = &frame[..];
    let encap = match sel >> 4 & 3 {
        0 => TunnelEncap::MplsOverUdp { label: 16 },
        1 => TunnelEncap::MplsOverGre { label: 16 },
        _ => TunnelEncap::Vxlan { vni: 5001 },
    };
    let policy = sel & 4 != 0;
    let mut fast = forwarder(policy, encap, true);
    let mut slow = forwarder(policy, encap, false);
    let meta = RxMeta { csum_partial: sel & 8 != 0, vlan_tci: None };
    let vif = VifId(u32::from(sel & 1));
    for round in 0..3u64 {
        let now = Duration::from_secs(1 + round);
        let mut bf = PacketBuf::from_frame(frame);
        let mut bs = PacketBuf::from_frame(frame);
        let vf = fast.process(now, vif, &mut bf, meta);
        let vs = slow.process(now, vif, &mut bs, meta);
        assert_eq!(vf, vs);
        assert_eq!(bf.frame(), bs.frame());
        if let Verdict::Punt { reason: PuntReason::FlowMiss, key: Some(key) } = vf {
            let spec = FlowSpec { key, action: FlowAction::Forward, mirror: None, reverse_action: None };
            let rf = fast.apply(Op::AddFlow(spec.clone())).map(|a| a.released.into_iter().map(|r| (r.verdict, r.buf.to_vec())).collect::<Vec<_>>());
            let rs = slow.apply(Op::AddFlow(spec)).map(|a| a.released.into_iter().map(|r| (r.verdict, r.buf.to_vec())).collect::<Vec<_>>());
            assert_eq!(rf, rs);
        }
    }
    assert_eq!(fast.dump_flows(), slow.dump_flows());
    assert_eq!(format!("{:?}", fast.dump_interfaces()), format!("{:?}", slow.dump_interfaces()));
    assert_eq!(fast.dropstats(), slow.dropstats());
});
