//! The per-packet pipeline (`Forwarder::process`).

use std::time::Duration;

use crate::buf::PacketBuf;
use crate::forwarder::Forwarder;
use crate::types::{DropReason, RxMeta, Verdict, VifId};

impl Forwarder {
    /// Run one frame received on `vif_in` through the pipeline. The buffer
    /// is rewritten in place (encapsulation, L2 rewrite, NAT, checksum
    /// completion); the verdict says what to do with it.
    pub fn process(&mut self, now: Duration, vif_in: VifId, buf: &mut PacketBuf, meta: RxMeta) -> Verdict {
        self.now = self.now.max(now);
        let _ = (buf, meta);
        self.drop_pkt(vif_in, DropReason::Unsupported)
    }
}
