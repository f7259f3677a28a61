//! Differential target for in-place processing (`filament_dataplane::inplace`): the same
//! arbitrary frame goes through `Forwarder::process` on one forwarder and through
//! `InPlace::process` in a slot (arbitrary headroom; on `None`, the general path on a copy, as
//! the shell does) on a twin, three times (a miss and the verdict, then hits on the installed
//! flow: forward, drop or NAT, chosen by the input), with or without policy on the workload
//! vif, received on the workload or the fabric vif. Verdicts, output bytes, flows, interface
//! counters and drops must be identical, and a declined frame untouched.
#![no_main]

use std::time::Duration;

use filament_dataplane::inplace::{InPlace, SlotFrame};
use filament_dataplane::*;
use libfuzzer_sys::fuzz_target;

#[path = "dataplane_common.rs"]
mod common;
use common::*;

fn forwarder(policy: bool, encap: TunnelEncap) -> Forwarder {
    let mut ops = base_ops(policy, encap);
    ops.push(Op::AddRoute { vrf: VrfId(1), prefix: "0.0.0.0/0".parse().unwrap(), nh: NhId(2) });
    ops.push(Op::AddLabel { label: 16, nh: NhId(1), payload: LabelPayload::Ip });
    ops.push(Op::AddVni { vni: 5001, vrf: VrfId(1) });
    programmed(64, ops)
}

fn verdict(sel: u8, key: FlowKey) -> FlowSpec {
    let action = match sel % 3 {
        0 => FlowAction::Forward,
        1 => FlowAction::Drop,
        _ => FlowAction::Nat(NatRewrite { src_port: Some(7000), ..Default::default() }),
    };
    FlowSpec { key, action, mirror: None, reverse_action: None }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let Some((&sel2, frame)) = rest.split_first() else { return };
    let encap = match sel >> 4 & 3 {
        0 => TunnelEncap::MplsOverUdp { label: 16 },
        1 => TunnelEncap::MplsOverGre { label: 16 },
        _ => TunnelEncap::Vxlan { vni: 5001 },
    };
    let policy = sel & 4 != 0;
    let mut gen = forwarder(policy, encap);
    let mut inp = forwarder(policy, encap);
    let mut ctx = InPlace::new();
    let meta = RxMeta { csum_partial: sel & 8 != 0, vlan_tci: None };
    let vif = VifId(u32::from(sel & 1));
    let headroom = usize::from(sel2 & 0x7f);
    for round in 0..3u64 {
        let now = Duration::from_secs(1 + round);
        let mut b = PacketBuf::from_frame(frame);
        let want = gen.process(now, vif, &mut b, meta);
        let mut mem = vec![0xee; headroom + frame.len() + 8];
        mem[headroom..headroom + frame.len()].copy_from_slice(frame);
        let before = mem.clone();
        let mut slot = SlotFrame { mem: &mut mem, start: headroom, len: frame.len() };
        match ctx.process(&mut inp, now, vif, &mut slot, meta) {
            Some(v) => {
                assert_eq!(v, want);
                if let Verdict::Transmit(_) = v {
                    assert_eq!(slot.frame(), b.frame());
                }
            }
            None => {
                assert_eq!(mem, before, "a declined frame was changed");
                let mut c = PacketBuf::from_frame(frame);
                assert_eq!(inp.process(now, vif, &mut c, meta), want);
                assert_eq!(c.frame(), b.frame());
            }
        }
        if let Verdict::Punt { reason: PuntReason::FlowMiss, key: Some(key) } = want {
            let a = gen.apply(Op::AddFlow(verdict(sel2 >> 7 | sel >> 6 << 1, key)));
            let z = inp.apply(Op::AddFlow(verdict(sel2 >> 7 | sel >> 6 << 1, key)));
            assert_eq!(a.is_ok(), z.is_ok());
            if let (Ok(a), Ok(z)) = (a, z) {
                assert_eq!(a.released.len(), z.released.len());
                for (x, y) in a.released.iter().zip(z.released.iter()) {
                    assert_eq!(x.verdict, y.verdict);
                    assert_eq!(x.buf.frame(), y.buf.frame());
                }
            }
        }
    }
    assert_same_state(&gen, &inp);
});
