//! One receive burst of a run loop ([`Rx`]): frames processed in place are sent at once,
//! the others go through `Forwarder::process` and [`dispatch`]; output for the receiving
//! port itself waits in `out` until the burst ends (its ring is being read).

use tokio::sync::mpsc;

use filament_dataplane::inplace::{InPlace, SlotFrame};
use filament_dataplane::{Forwarder, PacketBuf, RxMeta, Verdict, VifId};

use super::{Cmd, LoopTx, Punt, ShellStats, VifMap};
use crate::port::Port;
use crate::ring::PacketRing;
use std::time::Duration;

/// One receive burst's view of the loop (the receiving port is out of `ports` meanwhile).
pub(super) struct Rx<'a> {
    pub(super) vif: VifId,
    pub(super) now: Duration,
    /// Fabric ARP frames are copied to the other loops.
    pub(super) share_arp: bool,
    pub(super) peers: &'a [LoopTx],
    pub(super) fwd: &'a mut Forwarder,
    pub(super) pool: &'a mut Vec<PacketBuf>,
    pub(super) out: &'a mut Vec<(VifId, PacketBuf)>,
    pub(super) punt_tx: &'a mpsc::Sender<Punt>,
    pub(super) stats: &'a mut ShellStats,
    pub(super) ports: &'a mut VifMap<Port>,
    pub(super) tx_only: &'a mut VifMap<PacketRing>,
}

impl Rx<'_> {
    /// Send `frame` to `to` now, or after the burst when it goes back out of the receiving
    /// port (whose ring is being read).
    pub(super) fn send(&mut self, to: VifId, frame: &[u8]) {
        if to == self.vif {
            let mut b = self.pool.pop().unwrap_or_default();
            b.load(frame);
            self.out.push((to, b));
        } else {
            send_to(self.ports, self.tx_only, self.stats, to, frame);
        }
    }

    /// Process `slot`'s frame where it lies when the core takes it in place (then send it at
    /// once, or count the drop), else through [`Rx::one`] on a copy.
    pub(super) fn in_place(&mut self, ip: &mut InPlace, mut slot: SlotFrame<'_>, meta: RxMeta) {
        let flow_hits = ip.flow_hits();
        match ip.process(self.fwd, self.now, self.vif, &mut slot, meta) {
            Some(Verdict::Transmit(to)) => {
                self.stats.in_place += 1;
                self.send(to, slot.frame());
            }
            // A flow's Drop verdict (counted by the core).
            Some(_) => self.stats.in_place += 1,
            None => self.one(slot.frame(), meta),
        }
        self.stats.in_place_flows += ip.flow_hits() - flow_hits;
    }

    /// The general path: copy `frame` into a pooled buffer, process, act on the verdict.
    pub(super) fn one(&mut self, frame: &[u8], meta: RxMeta) {
        if self.share_arp && frame.get(12..14) == Some(&[0x08, 0x06][..]) {
            for p in self.peers {
                let _ = p.send(Cmd::Learn(self.vif, frame.to_vec()));
            }
        }
        let mut buf = self
            .pool
            .pop()
            .unwrap_or_else(|| PacketBuf::with_capacity(2048));
        buf.load(frame);
        let verdict = self.fwd.process(self.now, self.vif, &mut buf, meta);
        // Everything queued before this frame goes back out of the receiving port (other
        // ports' frames left at once), so only this frame's outputs need looking at.
        let before = self.out.len();
        dispatch(
            self.vif,
            buf,
            verdict,
            self.pool,
            self.out,
            self.punt_tx,
            self.stats,
        );
        // Frames for the other ports leave now (in order with the in-place ones).
        let mut k = before;
        while k < self.out.len() {
            if self.out[k].0 == self.vif {
                k += 1;
                continue;
            }
            let (v, b) = self.out.remove(k);
            send_to(self.ports, self.tx_only, self.stats, v, b.frame());
            self.pool.push(b);
        }
    }
}

/// Queue `frame` on `vif`'s port or transmit-only socket (counted when there is neither).
pub(super) fn send_to(
    ports: &mut VifMap<Port>,
    tx_only: &mut VifMap<PacketRing>,
    stats: &mut ShellStats,
    vif: VifId,
    frame: &[u8],
) {
    if let Some(p) = ports.get_mut(&vif) {
        p.tx_push(frame);
    } else if let Some(r) = tx_only.get_mut(&vif) {
        r.tx_push(frame);
    } else {
        stats.tx_unattached += 1;
    }
}

/// Route one verdict: queue for transmit, hand to the agent, or recycle the buffer.
pub(super) fn dispatch(
    vif_in: VifId,
    buf: PacketBuf,
    verdict: Verdict,
    pool: &mut Vec<PacketBuf>,
    out: &mut Vec<(VifId, PacketBuf)>,
    punt_tx: &mpsc::Sender<Punt>,
    stats: &mut ShellStats,
) {
    match verdict {
        Verdict::Transmit(v) => out.push((v, buf)),
        Verdict::Replicate(copies) => {
            for c in copies {
                let mut b = pool.pop().unwrap_or_default();
                b.load(&c.frame);
                out.push((c.vif, b));
            }
            pool.push(buf);
        }
        Verdict::Punt { reason, key } => {
            let p = Punt {
                vif: vif_in,
                reason,
                key,
                frame: buf.to_vec(),
            };
            if punt_tx.try_send(p).is_err() {
                stats.punt_queue_drops += 1;
            }
            pool.push(buf);
        }
        Verdict::Held | Verdict::Host | Verdict::Drop(_) => pool.push(buf),
    }
}
