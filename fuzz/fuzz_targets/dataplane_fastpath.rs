//! Differential target for the forwarder's flow-cached fast path: the same
//! arbitrary frame goes through a forwarder with the fast path on and one
//! with it off, three times (miss and verdict, then established-flow hits
//! that fill and then use the route cache); verdicts, output bytes, flow
//! dumps, interface counters and drop statistics must be identical.
#![no_main]

use std::time::Duration;

use filament_dataplane::*;
use libfuzzer_sys::fuzz_target;

#[path = "dataplane_common.rs"]
mod common;
use common::*;

fn forwarder(policy: bool, encap: TunnelEncap, fast: bool) -> Forwarder {
    let mut ops = base_ops(policy, encap);
    ops.push(Op::AddRoute { vrf: VrfId(1), prefix: "0.0.0.0/0".parse().unwrap(), nh: NhId(2) });
    let mut f = programmed(64, ops);
    f.set_fast_path(fast);
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
            assert_eq!(forward_flow(&mut fast, key), forward_flow(&mut slow, key));
        }
    }
    assert_same_state(&fast, &slow);
});
