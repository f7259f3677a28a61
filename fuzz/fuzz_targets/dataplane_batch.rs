//! Differential target for `Forwarder::process_batch`: arbitrary frames
//! (length-prefixed in the input) go through one forwarder as bursts and
//! through another one frame by frame with `process`; verdicts, output
//! bytes, released packets, flow dumps, interface counters and drop
//! statistics must be identical. The flow table is pre-filled past the
//! batch's prefetch threshold so the prefetch stage runs.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use filament_dataplane::*;
use libfuzzer_sys::fuzz_target;

fn forwarder() -> Forwarder {
    let mut f = Forwarder::new(ForwarderCfg { flow_capacity: 16384, ..Default::default() });
    let fabric = Ipv4Addr::new(192, 0, 2, 1);
    let remote = Ipv4Addr::new(192, 0, 2, 2);
    let vm = MacAddr([2, 0, 0, 0, 0, 3]);
    let ops = vec![
        Op::AddVif(Vif { id: VifId(0), kind: VifKind::Fabric, name: String::new(), mac: MacAddr([2, 0xfa, 0, 0, 0, 1]), vrf: None, policy: false, mtu: 1500, ip: Some(IpAddr::V4(fabric)) }),
        Op::AddVif(Vif { id: VifId(1), kind: VifKind::Workload, name: String::new(), mac: GATEWAY_MAC, vrf: Some(VrfId(1)), policy: true, mtu: 1500, ip: None }),
        Op::AddNexthop(Nexthop { id: NhId(1), kind: NexthopKind::Encap { vif: VifId(1), dst_mac: vm, src_mac: GATEWAY_MAC } }),
        Op::AddNexthop(Nexthop { id: NhId(2), kind: NexthopKind::Tunnel { vif: VifId(0), src_ip: fabric, dst_ip: remote, encap: TunnelEncap::MplsOverUdp { label: 16 } } }),
        Op::AddNeighbor { vif: VifId(0), ip: remote, mac: MacAddr([2, 0xfa, 0, 0, 0, 2]) },
        Op::AddRoute { vrf: VrfId(1), prefix: "10.1.1.3/32".parse().unwrap(), nh: NhId(1) },
        Op::AddRoute { vrf: VrfId(1), prefix: "0.0.0.0/0".parse().unwrap(), nh: NhId(2) },
        Op::AddBridge { vrf: VrfId(1), mac: vm, nh: NhId(1) },
    ];
    for op in ops {
        f.apply(op).unwrap();
    }
    // 5000 flows (past the prefetch threshold), keys 10.1.1.3:i -> 10.9.0.1:80.
    for i in 0..5000u16 {
        let key = FlowKey { vrf: VrfId(1), proto: 17, src: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 3)), dst: IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)), sport: i, dport: 80 };
        f.apply(Op::AddFlow(FlowSpec { key, action: FlowAction::Forward, mirror: None, reverse_action: None })).unwrap();
    }
    f
}

/// Built once (5000 flow setups are slow under the fuzzer), cloned per input.
static PROGRAMMED: std::sync::OnceLock<Forwarder> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let vif = VifId(u32::from(sel & 1));
    let meta = RxMeta { csum_partial: sel & 2 != 0, vlan_tci: None };
    let mut frames = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        frames.push(tail[..n].to_vec());
        rest = &tail[n..];
    }
    let base = PROGRAMMED.get_or_init(forwarder);
    let mut batch = base.clone();
    let mut single = base.clone();
    let now = Duration::from_secs(1);
    let mut bufs: Vec<PacketBuf> = frames.iter().map(|f| PacketBuf::from_frame(f)).collect();
    let metas = vec![meta; frames.len()];
    let mut verdicts = Vec::new();
    batch.process_batch(now, vif, &mut bufs, &metas, &mut verdicts);
    assert_eq!(verdicts.len(), frames.len());
    let mut keys = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let mut b = PacketBuf::from_frame(f);
        let v = single.process(now, vif, &mut b, meta);
        assert_eq!(verdicts[i], v);
        assert_eq!(bufs[i].frame(), b.frame());
        if let Verdict::Punt { reason: PuntReason::FlowMiss, key: Some(key) } = v {
            keys.push(key);
        }
    }
    // The agent's verdicts after the burst (the shell's order), then the
    // burst again: now established flows.
    for key in keys {
        {
            let spec = FlowSpec { key, action: FlowAction::Forward, mirror: None, reverse_action: None };
            let rb = batch.apply(Op::AddFlow(spec.clone())).map(|a| a.released.into_iter().map(|r| (r.verdict, r.buf.to_vec())).collect::<Vec<_>>());
            let rs = single.apply(Op::AddFlow(spec)).map(|a| a.released.into_iter().map(|r| (r.verdict, r.buf.to_vec())).collect::<Vec<_>>());
            assert_eq!(rb, rs);
        }
    }
    let mut bufs: Vec<PacketBuf> = frames.iter().map(|f| PacketBuf::from_frame(f)).collect();
    batch.process_batch(now, vif, &mut bufs, &[], &mut verdicts);
    for (i, f) in frames.iter().enumerate() {
        let mut b = PacketBuf::from_frame(f);
        assert_eq!(verdicts[i], single.process(now, vif, &mut b, RxMeta::default()));
        assert_eq!(bufs[i].frame(), b.frame());
    }
    assert_eq!(batch.dump_flows(), single.dump_flows());
    assert_eq!(format!("{:?}", batch.dump_interfaces()), format!("{:?}", single.dump_interfaces()));
    assert_eq!(batch.dropstats(), single.dropstats());
});
