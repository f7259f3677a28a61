//! [`Forwarder::process_batch`]: a burst of frames from one interface, as
//! an I/O shell takes them from a receive ring (TF's DPDK vRouter works on
//! bursts of 32 from `rte_eth_rx_burst`; the kernel vRouter one at a time).
//!
//! The effects are exactly those of calling [`Forwarder::process`] on each
//! frame in order (checked by the `batch_matches_single` property test):
//! the batch only adds a prefetch stage in front. For up to [`BATCH_MAX`]
//! frames at a time, when the flow table holds more than
//! `PREFETCH_MIN_FLOWS` (4096) entries (fewer stay in cache), it
//! 1. reads each frame's IPv4 5-tuple (when the ingress vif is a policy
//!    workload vif) and hashes the flow key;
//! 2. loads the home bucket of every key in the flow index, then the two
//!    hot cache lines of the entry each bucket points at.
//!
//! These loads are independent of one another, so the CPU overlaps their
//! cache and TLB misses instead of meeting them one after another inside
//! each packet's lookup; then every frame is processed, finding its flow
//! in cache (and its hash computed: the fast path does not hash again). Nothing of the table is trusted from the prefetch stage: the
//! probe at processing time decides (a frame processed earlier in the burst
//! may have added or changed flows). Stable Rust has no safe prefetch
//! instruction (`_mm_prefetch` needs `unsafe` outside an `sse` target-feature
//! function, `core::hint::prefetch_*` is unstable), so the prefetch is an
//! ordinary load whose value goes to a sink.

use std::time::Duration;

use filament_wire_pkt::{ethernet, ip_proto};

use crate::buf::PacketBuf;
use crate::flow::PackedKey;
use crate::forwarder::Forwarder;
use crate::types::{RxMeta, Verdict, VifId, VifKind, VrfId};

/// Frames prefetched together by [`Forwarder::process_batch`]; longer
/// slices are handled in chunks of this size.
pub const BATCH_MAX: usize = 64;

const ETH: usize = ethernet::HEADER_LEN;

/// Flow entries above which the prefetch stage runs (below, the entries in
/// use, 256 bytes each, and their index lines fit in a core's L2 cache).
const PREFETCH_MIN_FLOWS: usize = 4096;

/// "No flow hash" in the prefetch stage's hash array (flow hashes are
/// 32-bit).
const NO_HASH: u64 = u64::MAX;

/// The flow key of an IPv4 TCP/UDP frame without IP options, as the fast
/// path builds it (a hint: no validation beyond what the key needs).
#[inline(always)]
fn v4_key(vrf: VrfId, f: &[u8]) -> Option<PackedKey> {
    let h: &[u8; ETH + 24] = f.get(..ETH + 24)?.try_into().ok()?;
    let w16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let ip4 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let proto = h[ETH + 9];
    if w16(12) != ethernet::ethertype::IPV4
        || h[ETH] != 0x45
        || (proto != ip_proto::UDP && proto != ip_proto::TCP)
    {
        return None;
    }
    Some(PackedKey::v4(
        vrf,
        proto,
        ip4(ETH + 12),
        ip4(ETH + 16),
        w16(ETH + 20),
        w16(ETH + 22),
    ))
}

/// A range of the forwarder's memory: `len` bytes at address `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemRange {
    /// Start address.
    pub addr: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Forwarder {
    /// The memory of the flow table (its entries, 256 bytes each, and its
    /// index, 16 to 32 bytes per entry), for an I/O shell that asks the kernel
    /// to back it with 2 MiB pages (`madvise(MADV_HUGEPAGE)` on the 2 MiB
    /// aligned part of each range; transparent huge pages are in `madvise`
    /// mode on most distributions). TF's DPDK vRouter keeps its flow table
    /// in huge pages for the same reason: at a million flows every lookup
    /// otherwise misses the TLB twice. The ranges are fixed at construction
    /// (the tables never move or grow); [`Forwarder::new`] has written the
    /// index already, so advise through [`Forwarder::new_advised`], which
    /// calls the shell before the first write.
    pub fn table_memory(&self) -> Vec<MemRange> {
        self.flows
            .memory()
            .into_iter()
            .map(|(addr, len)| MemRange { addr, len })
            .collect()
    }

    /// [`Forwarder::new`], with `advise` called on [`Forwarder::table_memory`]
    /// before the tables are first touched (the index is then written once,
    /// so its pages fault in as huge pages where `advise` asked for them).
    /// The I/O shell passes its `madvise(MADV_HUGEPAGE)` wrapper.
    pub fn new_advised(
        cfg: crate::forwarder::ForwarderCfg,
        advise: impl FnOnce(&[MemRange]),
    ) -> Self {
        let mut f = Forwarder::unfilled(cfg);
        advise(&f.table_memory());
        f.flows.fill_index();
        f
    }

    /// Process a burst of frames received on `vif_in`, in order: after the
    /// call `verdicts[i]` is what [`Forwarder::process`] would have
    /// returned for `bufs[i]` (with `metas[i]`, or `RxMeta::default()` when
    /// `metas` is shorter — pass `&[]` when the shell has no metadata), and
    /// each buffer holds what `process` would have left in it. The shell
    /// acts on each (buffer, verdict) pair exactly as for `process`.
    /// `verdicts` is cleared first; reuse it across bursts.
    ///
    /// Same effects as the per-packet loop, fewer stalls: flow-table cache
    /// and TLB misses of the burst overlap (see the module doc). Bursts of
    /// 16 to 64 frames get most of the benefit.
    pub fn process_batch(
        &mut self,
        now: Duration,
        vif_in: VifId,
        bufs: &mut [PacketBuf],
        metas: &[RxMeta],
        verdicts: &mut Vec<Verdict>,
    ) {
        verdicts.clear();
        verdicts.reserve(bufs.len());
        let mut base = 0;
        let mut hashes = [NO_HASH; BATCH_MAX];
        for chunk in bufs.chunks_mut(BATCH_MAX) {
            self.prefetch_flows(vif_in, chunk, &mut hashes);
            for (j, buf) in chunk.iter_mut().enumerate() {
                let meta = metas.get(base + j).copied().unwrap_or_default();
                let hash = hashes.get(j).and_then(|h| u32::try_from(*h).ok());
                verdicts.push(self.process_hashed(now, vif_in, buf, meta, hash));
            }
            base += chunk.len();
        }
    }

    /// The prefetch stage (module doc): hash every frame's flow key into
    /// `hashes` ([`NO_HASH`] for frames without one) and load its home
    /// bucket, then load the entries those buckets point at. Changes
    /// nothing observable.
    #[inline]
    fn prefetch_flows(&mut self, vif_in: VifId, bufs: &[PacketBuf], hashes: &mut [u64; BATCH_MAX]) {
        let vrf = match self.vifs.get(vif_in.0 as usize) {
            Some(Some(v)) if v.vif.kind != VifKind::Fabric && v.vif.policy => v.vif.vrf,
            _ => None,
        };
        // A small table stays in cache: nothing to overlap, and the fast
        // path hashes as cheaply as this stage would.
        let (Some(vrf), true) = (vrf, self.flows.len() > PREFETCH_MIN_FLOWS) else {
            hashes.fill(NO_HASH);
            return;
        };
        let mut sink = 0u64;
        for (buf, slot) in bufs.iter().zip(hashes.iter_mut()) {
            *slot = match v4_key(vrf, buf.frame()) {
                Some(key) => {
                    let h = self.flows.hash(&key);
                    sink ^= u64::from(self.flows.touch_bucket(h));
                    u64::from(h)
                }
                None => NO_HASH,
            };
        }
        for &h in hashes.iter().take(bufs.len()) {
            if let Ok(h) = u32::try_from(h) {
                sink ^= self.flows.touch_entry(h);
            }
        }
        std::hint::black_box(sink);
    }
}
