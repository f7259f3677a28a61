//! What both profile examples measure in place: one frame in an AF_PACKET-like receive slot.

use std::time::Duration;

use filament_dataplane::inplace::{InPlace, SlotFrame};
use filament_dataplane::{Forwarder, RxMeta, Verdict, VifId};

/// Headroom in front of a frame in its slot (AF_PACKET's `PACKET_RESERVE` as the shell sets it).
pub const SLOT_HEADROOM: usize = 64;

/// One frame in place, received on `vif` (the slot was filled by the caller at
/// [`SLOT_HEADROOM`], as the kernel fills the ring); whether it went out. Not inlined, so
/// callgrind's `--toggle-collect='*measured_*'` finds it.
#[inline(never)]
pub fn measured_in_place(
    ctx: &mut InPlace,
    fwd: &mut Forwarder,
    now: Duration,
    vif: VifId,
    mem: &mut [u8],
    len: usize,
) -> bool {
    let mut slot = SlotFrame {
        mem,
        start: SLOT_HEADROOM,
        len,
    };
    matches!(
        ctx.process(fwd, now, vif, &mut slot, RxMeta::default()),
        Some(Verdict::Transmit(_))
    )
}
