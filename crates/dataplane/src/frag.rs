//! The fragment table and the out-of-order fragment queue of policy vifs (TF
//! dp-core/vr_fragment.c).
//!
//! A flow is identified by ports, which only the first fragment of a datagram carries (RFC 791
//! §3.2: a fragment is identified by "source, destination, protocol, and identification"; RFC
//! 8200 §4.5 likewise for IPv6 with its Fragment header). The first fragment records its ports
//! under that identification in the fragment table ([`FragKey`] -> [`FragPorts`]); later
//! fragments look their ports up there and follow the first one's flow.
//!
//! A later fragment that arrives before its first one (reordering on the path, or a sender
//! that emits the tail first) is queued, as TF's vr_fragment.c does: "Every fragment that does
//! not have a corresponding entry in the fragment metadata table ... will be enqueued to the
//! assembler ... The assembler will use the head of the fragment to search and then to forward
//! the other fragments of the packet". Here:
//!
//! * the queue is bounded: at most [`FRAG_QUEUE_MAX`] fragments in all (TF's
//!   `VR_MAX_FRAGMENTS_PER_CPU_QUEUE`, 256) and [`FRAG_QUEUE_PER_SOURCE`] per source address
//!   (one sender cannot take the whole queue); a fragment that does not fit is dropped and
//!   counted as [`DropReason::FragQueueFull`] (TF's "Fragment Queue Fail");
//! * a queued fragment waits at most [`FRAG_TIMEOUT`] (TF's `VR_ASSEMBLER_TIMEOUT_SECS`, 2 s);
//!   then it is dropped and counted as [`DropReason::Fragment`] (its flow cannot be
//!   identified), when [`Forwarder::age_flows`] runs or the queue is full;
//! * when the first fragment arrives, the queued fragments of its datagram are run through the
//!   pipeline right after it (in arrival order), and what they produce is queued for
//!   [`Forwarder::poll_transmit`];
//! * the fragment table holds at most [`FRAG_MAX`] datagrams (TF's `vr_fragment_entries`,
//!   [`Forwarder::set_frag_table_size`]). A first fragment that finds it full still goes its
//!   way, and still releases the fragments queued behind it at once, with its ports (TF's
//!   assembler flushes them whatever `vr_fragment_add` returned; re-injected there, they
//!   missed the table and were queued again until the timeout). Its ports are then kept in a
//!   small side list instead (at most [`FRAG_QUEUE_MAX`], the oldest going first, aged like
//!   the table): the datagram already held queue room, and its fragments released onto a
//!   HOLD flow, run again when the verdict comes, or arriving after it, still find them. A
//!   first fragment that finds the table full with nothing queued keeps no entry: its later
//!   fragments wait and are dropped at the timeout as above.
//!
//! Time is the `now` the shell passes in; nothing here reads a clock.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use crate::encap::IpInfo;
use crate::fib::{fast_map, FastMap};
use crate::flow::HeldPkt;
use crate::forwarder::Forwarder;
use crate::types::*;

/// Fragment table entries at most by default (first fragments whose later ones are awaited).
pub const FRAG_MAX: usize = 16 * 1024;
/// How long the first fragment's ports are kept for the later ones, and how long a later
/// fragment waits for its first one (TF `VR_ASSEMBLER_TIMEOUT_SECS`).
pub(crate) const FRAG_TIMEOUT: Duration = Duration::from_secs(2);
/// Later fragments queued (awaiting their first fragment) at most (TF
/// `VR_MAX_FRAGMENTS_PER_CPU_QUEUE`).
pub const FRAG_QUEUE_MAX: usize = 256;
/// Later fragments queued at most per source address.
pub const FRAG_QUEUE_PER_SOURCE: usize = 64;

/// Key of the fragment table: what RFC 791 identifies a datagram's fragments by (source,
/// destination, protocol, identification), in a VRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    vrf: VrfId,
    proto: u8,
    id: u32,
    src: IpAddr,
    dst: IpAddr,
}

impl FragKey {
    pub(crate) fn new(vrf: VrfId, info: &IpInfo, id: u32) -> Self {
        FragKey {
            vrf,
            proto: info.proto,
            id,
            src: info.src,
            dst: info.dst,
        }
    }
}

/// The ports of a fragmented datagram, from its first fragment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FragPorts {
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    pub(crate) at: Duration,
}

/// A later fragment waiting for its first one.
#[derive(Debug, Clone)]
struct Queued {
    key: FragKey,
    at: Duration,
    pkt: HeldPkt,
}

/// The fragment table, the queue of early later fragments, and the fragments released by a
/// first fragment, waiting to be processed after it.
#[derive(Debug, Clone)]
pub(crate) struct Frags {
    ports: FastMap<FragKey, FragPorts>,
    /// Entries of `ports` at most.
    max: usize,
    /// In arrival order; at most [`FRAG_QUEUE_MAX`] (scanned only when a first fragment
    /// arrives while it is not empty).
    queue: Vec<Queued>,
    /// Released by a first fragment, processed at the end of its `process`.
    ready: Vec<HeldPkt>,
    /// Ports of datagrams whose first fragment found the table full and released queued
    /// fragments; at most [`FRAG_QUEUE_MAX`], oldest first (module doc).
    spill: VecDeque<(FragKey, FragPorts)>,
}

impl Frags {
    pub(crate) fn new(seed: u64) -> Self {
        Frags {
            ports: fast_map(seed, 0),
            max: FRAG_MAX,
            queue: Vec::new(),
            ready: Vec::new(),
            spill: VecDeque::new(),
        }
    }

    /// Fragments released and not yet processed.
    #[inline]
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }
}

/// What the flow stage does with a fragment.
pub(crate) enum FragStep {
    /// Not a later fragment, or one whose first fragment was seen: these are its ports.
    Ports(u16, u16),
    /// A later fragment queued until its first one arrives.
    Queued,
}

impl Forwarder {
    /// Size the fragment table: at most `entries` datagrams whose first fragment was seen are
    /// remembered for their later fragments (TF's `vr_fragment_entries`; default
    /// [`FRAG_MAX`]). Entries already in it stay until they age out.
    pub fn set_frag_table_size(&mut self, entries: usize) {
        self.frags.max = entries;
    }

    /// The flow stage's fragment handling for a fragment (`info.frag_id` set) of a packet
    /// received as `pkt` (its frame as received): a first fragment records its ports and
    /// releases the fragments of its datagram that arrived before it; a later one takes the
    /// recorded ports, or is queued.
    pub(crate) fn frag_step(
        &mut self,
        vrf: VrfId,
        info: &IpInfo,
        id: u32,
        pkt: impl FnOnce() -> HeldPkt,
    ) -> Result<FragStep, DropReason> {
        let now = self.now;
        let key = FragKey::new(vrf, info, id);
        if info.later_fragment {
            if let Some(p) = self.frags.ports.get(&key) {
                return Ok(FragStep::Ports(p.sport, p.dport));
            }
            // A first fragment that found the table full (module doc).
            if let Some((_, p)) = self.frags.spill.iter().find(|(k, _)| *k == key) {
                return Ok(FragStep::Ports(p.sport, p.dport));
            }
            self.frag_enqueue(key, pkt(), now)?;
            return Ok(FragStep::Queued);
        }
        let (sport, dport) = (info.sport, info.dport);
        let ports = FragPorts {
            sport,
            dport,
            at: now,
        };
        let listed = self.frags.ports.len() < self.frags.max || self.frags.ports.contains_key(&key);
        if listed {
            self.frags.ports.insert(key, ports);
        }
        if !self.frags.queue.is_empty() {
            // The queued fragments of this datagram, in arrival order, at once: with the
            // table full too (TF's assembler flushes them once the head is seen).
            let f = &mut self.frags;
            let before = f.ready.len();
            let mut i = 0;
            while i < f.queue.len() {
                if f.queue[i].key == key {
                    f.ready.push(f.queue.remove(i).pkt);
                } else {
                    i += 1;
                }
            }
            if !listed && f.ready.len() > before {
                f.spill.retain(|(k, _)| *k != key);
                if f.spill.len() >= FRAG_QUEUE_MAX {
                    f.spill.pop_front();
                }
                f.spill.push_back((key, ports));
            }
        }
        Ok(FragStep::Ports(sport, dport))
    }

    /// Queue a later fragment whose first one has not been seen; bounded (module doc).
    fn frag_enqueue(
        &mut self,
        key: FragKey,
        pkt: HeldPkt,
        now: Duration,
    ) -> Result<(), DropReason> {
        let per_source = |q: &[Queued]| q.iter().filter(|e| e.key.src == key.src).count();
        if self.frags.queue.len() >= FRAG_QUEUE_MAX
            || per_source(&self.frags.queue) >= FRAG_QUEUE_PER_SOURCE
        {
            // Make room from fragments that waited too long, if any.
            self.expire_queued_frags(now);
        }
        if self.frags.queue.len() >= FRAG_QUEUE_MAX
            || per_source(&self.frags.queue) >= FRAG_QUEUE_PER_SOURCE
        {
            return Err(DropReason::FragQueueFull);
        }
        self.frags.queue.push(Queued { key, at: now, pkt });
        Ok(())
    }

    /// Drop (and count as [`DropReason::Fragment`]) queued fragments older than
    /// [`FRAG_TIMEOUT`]; forget first fragments' ports as old.
    pub(crate) fn expire_frags(&mut self, now: Duration) {
        let fresh = |p: &FragPorts| now.saturating_sub(p.at) < FRAG_TIMEOUT;
        self.frags.ports.retain(|_, p| fresh(p));
        self.frags.spill.retain(|(_, p)| fresh(p));
        self.expire_queued_frags(now);
    }

    fn expire_queued_frags(&mut self, now: Duration) {
        if self.frags.queue.is_empty() {
            return;
        }
        let mut expired = Vec::new();
        self.frags.queue.retain(|q| {
            let keep = now.saturating_sub(q.at) < FRAG_TIMEOUT;
            if !keep {
                expired.push(q.pkt.vif_in);
            }
            keep
        });
        for vif in expired {
            self.drop_pkt(vif, DropReason::Fragment);
        }
    }

    /// Run the fragments a first fragment released through the pipeline (after it) and queue
    /// what they produce for [`Forwarder::poll_transmit`].
    #[cold]
    #[inline(never)]
    pub(crate) fn process_ready_frags(&mut self, now: Duration) {
        let ready = std::mem::take(&mut self.frags.ready);
        for h in ready {
            let mut buf = h.buf;
            match self.process(now, h.vif_in, &mut buf, h.meta) {
                Verdict::Transmit(vif) => self.tx_queue.push_back(Tx {
                    vif,
                    frame: buf.to_vec(),
                }),
                Verdict::Replicate(txs) => self.tx_queue.extend(txs),
                // Held on the first fragment's HOLD flow (released with it), or dropped and
                // counted; a punt needs the agent's channel, which the shell only has for the
                // packet it passed in: none is expected (the first fragment created the flow).
                Verdict::Punt { .. } | Verdict::Held | Verdict::Host | Verdict::Drop(_) => {}
            }
        }
    }
}
