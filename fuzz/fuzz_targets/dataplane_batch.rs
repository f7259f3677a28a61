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

#[path = "dataplane_common.rs"]
mod common;
use common::*;

fn forwarder() -> Forwarder {
    let mut ops = base_ops(true, TunnelEncap::MplsOverUdp { label: 16 });
    ops.push(Op::AddRoute { vrf: VrfId(1), prefix: "0.0.0.0/0".parse().unwrap(), nh: NhId(2) });
    let mut f = programmed(16384, ops);
    // 5000 flows (past the prefetch threshold), keys 10.1.1.3:i -> 10.9.0.1:80.
    for i in 0..5000u16 {
        let key = FlowKey { vrf: VrfId(1), proto: 17, src: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 3)), dst: IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)), sport: i, dport: 80 };
        forward_flow(&mut f, key).unwrap();
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
        assert_eq!(forward_flow(&mut batch, key), forward_flow(&mut single, key));
    }
    let mut bufs: Vec<PacketBuf> = frames.iter().map(|f| PacketBuf::from_frame(f)).collect();
    batch.process_batch(now, vif, &mut bufs, &[], &mut verdicts);
    for (i, f) in frames.iter().enumerate() {
        let mut b = PacketBuf::from_frame(f);
        assert_eq!(verdicts[i], single.process(now, vif, &mut b, RxMeta::default()));
        assert_eq!(bufs[i].frame(), b.frame());
    }
    assert_same_state(&batch, &single);
});
