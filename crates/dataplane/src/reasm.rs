//! Reassembly of outer IPv4 fragments of overlay packets addressed to our fabric IP (RFC 791
//! §3.2 "Reassembly"), before decapsulation. TF's vRouter does the same: the DPDK vRouter
//! reassembles in its fragment assembler (`dpdk_fragment_assembler.c`, `vr_fragment.h`), the
//! kernel vRouter relies on the kernel's defragmentation before its receive hook. Here the
//! kernel's copy is of no use (AF_PACKET: the datagram goes to the fabric listener sockets,
//! which discard it; AF_XDP: the XDP program steers the fragments to us), so the forwarder
//! reassembles them itself:
//!
//! ```text
//!  fabric frame ─ classify_fabric: IPv4 to our fabric IP, UDP/GRE, MF set or offset != 0
//!       └─> Reassembler::insert ─ datagram incomplete: Verdict::Held
//!                               └ complete: the whole frame (first fragment's Ethernet and
//!                                 IPv4 header, MF and offset cleared, Total Length and
//!                                 checksum rewritten) ─> the normal decap path
//! ```
//!
//! RFC 791 §3.2: "The internet identification field (ID) is used together with the source
//! and destination address, and the protocol fields, to identify datagram fragments for
//! reassembly." The key is (source, destination, protocol, identification). The header of
//! the reassembled datagram is the first fragment's (RFC 791: the options that are not copied
//! are in the first fragment only).
//!
//! Overlaps: RFC 5722 (for IPv6) says "if any of the fragments being reassembled overlap with
//! any other fragments being reassembled for the same packet, reassembly of that packet must
//! be abandoned and all the fragments that have been received for that packet must be
//! discarded". The same is done here for IPv4: an overlapping or duplicate fragment, or one
//! that contradicts the datagram's end (a second last fragment elsewhere, data past the end),
//! discards the datagram, counted as [`DropReason::ReasmOverlap`] for each fragment discarded.
//!
//! Bounds (every drop counted per fragment, with its reason):
//! * [`ReasmLimits::timeout`]: a datagram not complete this long after its first fragment
//!   arrived is discarded ([`DropReason::ReasmTimeout`]); TF's `VR_ASSEMBLER_TIMEOUT_SECS`
//!   (2 s) by default;
//! * [`ReasmLimits::datagrams`] in progress at most (TF's `VR_LINUX_ASSEMBLER_BUCKETS`, 1024),
//!   [`ReasmLimits::bytes`] held in all (Linux's `ipfrag_high_thresh`, 4 MiB), and
//!   [`ReasmLimits::fragments`] per datagram: a fragment beyond them is dropped
//!   ([`DropReason::ReasmLimit`]; beyond the fragments per datagram, the whole datagram);
//! * a datagram longer than 65535 bytes (RFC 791 Total Length), or a fragment other than the
//!   last whose length is not a multiple of 8 or zero, is [`DropReason::Malformed`].
//!
//! Sans-IO: `now` is passed in; nothing here reads a clock.

use std::time::Duration;

use filament_wire_pkt::{ethernet, ipv4};

use crate::fib::{fast_map, FastMap};
use crate::types::DropReason;

/// Datagrams in progress at most by default (TF `VR_LINUX_ASSEMBLER_BUCKETS`).
pub const REASM_DATAGRAMS: usize = 1024;
/// Bytes held in all at most by default (Linux `net.ipv4.ipfrag_high_thresh`).
pub const REASM_BYTES: usize = 4 << 20;
/// Fragments per datagram at most by default (a 65535-byte datagram at the minimum IPv4 MTU
/// of 576 takes 117).
pub const REASM_FRAGMENTS: usize = 128;
/// Time a datagram may take to arrive whole by default (TF `VR_ASSEMBLER_TIMEOUT_SECS`).
pub const REASM_TIMEOUT: Duration = Duration::from_secs(2);
/// RFC 791: Total Length is 16 bits.
const MAX_DATAGRAM: usize = 65535;

/// The reassembler's bounds (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasmLimits {
    /// Datagrams in progress at most.
    pub datagrams: usize,
    /// Bytes held (headers and payload buffers) at most, over all datagrams.
    pub bytes: usize,
    /// Fragments per datagram at most.
    pub fragments: usize,
    /// A datagram is discarded this long after its first fragment arrived.
    pub timeout: Duration,
}

impl Default for ReasmLimits {
    fn default() -> Self {
        ReasmLimits {
            datagrams: REASM_DATAGRAMS,
            bytes: REASM_BYTES,
            fragments: REASM_FRAGMENTS,
            timeout: REASM_TIMEOUT,
        }
    }
}

/// Why fragments were discarded, and how many (the arriving one included when it is one of
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discarded {
    /// The reason each is counted under.
    pub reason: DropReason,
    /// Fragments discarded.
    pub fragments: u64,
}

impl Discarded {
    fn one(reason: DropReason) -> Self {
        Discarded {
            reason,
            fragments: 1,
        }
    }
}

/// What became of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasm {
    /// Held: its datagram is not complete yet.
    Held,
    /// Its datagram is complete: the whole frame (Ethernet + IPv4, unfragmented).
    Done(Vec<u8>),
}

/// Reassembly counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasmCounters {
    /// Fragments accepted into a datagram.
    pub fragments: u64,
    /// Datagrams released whole.
    pub datagrams: u64,
    /// Fragments of the datagrams released whole.
    pub released: u64,
    /// Datagrams released whole that were no overlay packet for us: the host's. Over
    /// AF_PACKET the kernel has its own copy; over AF_XDP (whose program steers every UDP /
    /// GRE fragment to our fabric IP here) they are lost, and counted here.
    pub host: u64,
}

/// RFC 791's fragment identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: u32,
    dst: u32,
    proto: u8,
    id: u16,
}

/// A datagram in progress.
#[derive(Debug, Clone)]
struct Pending {
    /// When its first fragment (in arrival order) arrived.
    since: Duration,
    /// Ethernet and IPv4 header of the fragment at offset 0, once it arrived.
    head: Vec<u8>,
    /// Payload by offset (holes are zero).
    data: Vec<u8>,
    /// Received payload ranges `[start, end)`, sorted, disjoint.
    have: Vec<(usize, usize)>,
    /// Payload bytes received.
    received: usize,
    /// Payload length, known from the last fragment (MF clear).
    end: Option<usize>,
}

impl Pending {
    fn held_bytes(&self) -> usize {
        self.head.len() + self.data.len()
    }
    fn fragments(&self) -> u64 {
        self.have.len() as u64
    }
}

/// The outer-fragment reassembler (module doc).
#[derive(Debug, Clone)]
pub struct Reassembler {
    limits: ReasmLimits,
    table: FastMap<Key, Pending>,
    /// Sum of `held_bytes` over the table.
    bytes: usize,
    counters: ReasmCounters,
    /// Fragments of timed-out datagrams discarded and not yet reported.
    expired: u64,
}

impl Reassembler {
    /// An empty reassembler (`seed`: the table's hash seed).
    pub fn new(limits: ReasmLimits, seed: u64) -> Self {
        Reassembler {
            limits,
            table: fast_map(seed, 0),
            bytes: 0,
            counters: ReasmCounters::default(),
            expired: 0,
        }
    }

    /// The bounds.
    pub fn limits(&self) -> ReasmLimits {
        self.limits
    }

    /// Change the bounds (datagrams already held stay until complete or timed out).
    pub fn set_limits(&mut self, limits: ReasmLimits) {
        self.limits = limits;
    }

    /// Datagrams in progress.
    pub fn pending(&self) -> usize {
        self.table.len()
    }

    /// Bytes held.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    /// Counters.
    pub fn counters(&self) -> ReasmCounters {
        self.counters
    }

    /// Count a released datagram that turned out to be the host's.
    pub(crate) fn count_host(&mut self) {
        self.counters.host += 1;
    }

    /// Take one fragment: `frame` is Ethernet + IPv4 with MF set or a fragment offset (the
    /// caller checked the header checksum). Fragments of datagrams found timed out on the way
    /// are discarded and reported by the next [`Reassembler::expire`].
    pub fn insert(&mut self, now: Duration, frame: &[u8]) -> Result<Reasm, Discarded> {
        let b = frame
            .get(ethernet::HEADER_LEN..)
            .ok_or(Discarded::one(DropReason::Truncated))?;
        let ip = ipv4::Packet::new_checked(b).map_err(|e| {
            Discarded::one(match e {
                filament_wire_pkt::Error::Truncated { .. } => DropReason::Truncated,
                _ => DropReason::Malformed,
            })
        })?;
        let hl = ip.header_len();
        let len = usize::from(ip.total_len()) - hl;
        let off = usize::from(ip.frag_offset());
        let more = ip.more_frags();
        // RFC 791: every fragment but the last carries a multiple of 8 octets ("the fragment
        // offset is measured in units of 8 octets"); the datagram fits Total Length.
        // A fragment without data is not sent by any sender (and would not fill a hole).
        if len == 0 || (more && len % 8 != 0) || hl + off + len > MAX_DATAGRAM {
            return Err(Discarded::one(DropReason::Malformed));
        }
        let key = Key {
            src: u32::from(ip.src()),
            dst: u32::from(ip.dst()),
            proto: ip.protocol(),
            id: ip.ident(),
        };
        let payload = &b[hl..hl + len];
        if let Some(p) = self.table.get(&key) {
            if now.saturating_sub(p.since) >= self.limits.timeout {
                // Its time is up: what was held goes, this fragment starts it again.
                self.expired += self.remove(&key).map_or(0, |p| p.fragments());
            }
        }
        if !self.table.contains_key(&key) {
            if self.table.len() >= self.limits.datagrams {
                self.expire_old(now);
            }
            if self.table.len() >= self.limits.datagrams {
                return Err(Discarded::one(DropReason::ReasmLimit));
            }
        }
        let head_len = if off == 0 {
            ethernet::HEADER_LEN + hl
        } else {
            0
        };
        let grow = (off + len).saturating_sub(self.table.get(&key).map_or(0, |p| p.data.len()));
        if self.bytes + grow + head_len > self.limits.bytes {
            self.expire_old(now);
            if self.bytes + grow + head_len > self.limits.bytes {
                return Err(Discarded::one(DropReason::ReasmLimit));
            }
        }
        let limits = self.limits;
        let p = self.table.entry(key).or_insert_with(|| Pending {
            since: now,
            head: Vec::new(),
            data: Vec::new(),
            have: Vec::new(),
            received: 0,
            end: None,
        });
        match check(p, off, len, more, limits.fragments) {
            Ok(at) => {
                let before = p.held_bytes();
                if off == 0 {
                    p.head = frame[..ethernet::HEADER_LEN + hl].to_vec();
                }
                if p.data.len() < off + len {
                    p.data.resize(off + len, 0);
                }
                p.data[off..off + len].copy_from_slice(payload);
                p.have.insert(at, (off, off + len));
                p.received += len;
                if !more {
                    p.end = Some(off + len);
                }
                self.bytes = self.bytes + p.held_bytes() - before;
                self.counters.fragments += 1;
            }
            Err(reason) => {
                let fragments = self.remove(&key).map_or(0, |p| p.fragments()) + 1;
                return Err(Discarded { reason, fragments });
            }
        }
        let complete = matches!(self.table.get(&key), Some(p) if !p.head.is_empty()
            && p.end == Some(p.received));
        if !complete {
            return Ok(Reasm::Held);
        }
        let Some(p) = self.remove(&key) else {
            return Ok(Reasm::Held);
        };
        let fragments = p.fragments();
        let end = p.received;
        let hl = p.head.len() - ethernet::HEADER_LEN;
        if hl + end > MAX_DATAGRAM {
            return Err(Discarded {
                reason: DropReason::Malformed,
                fragments,
            });
        }
        let mut out = p.head;
        out.extend_from_slice(&p.data[..end]);
        let ip = &mut out[ethernet::HEADER_LEN..];
        ip[2..4].copy_from_slice(&((hl + end) as u16).to_be_bytes());
        // Flags: DF as the first fragment had it; MF and the offset cleared.
        ip[6] &= 0x40;
        ip[7] = 0;
        ipv4::Packet::new_unchecked(&mut *ip).fill_checksum();
        self.counters.datagrams += 1;
        self.counters.released += fragments;
        Ok(Reasm::Done(out))
    }

    /// Discard the datagrams whose time is up; returns the fragments discarded since the last
    /// call (to count as [`DropReason::ReasmTimeout`]), including those
    /// [`Reassembler::insert`] found timed out.
    pub fn expire(&mut self, now: Duration) -> u64 {
        self.expire_old(now);
        std::mem::take(&mut self.expired)
    }

    fn expire_old(&mut self, now: Duration) {
        if self.table.is_empty() {
            return;
        }
        let timeout = self.limits.timeout;
        let (mut n, mut freed) = (0, 0);
        self.table.retain(|_, p| {
            let keep = now.saturating_sub(p.since) < timeout;
            if !keep {
                n += p.fragments();
                freed += p.held_bytes();
            }
            keep
        });
        self.bytes -= freed;
        self.expired += n;
    }

    fn remove(&mut self, key: &Key) -> Option<Pending> {
        let p = self.table.remove(key)?;
        self.bytes -= p.held_bytes();
        Some(p)
    }
}

/// Where a fragment `[off, off + len)` goes in `p.have`, or why the datagram is abandoned
/// (module doc: overlaps, contradictions of the end, too many fragments).
fn check(p: &Pending, off: usize, len: usize, more: bool, max: usize) -> Result<usize, DropReason> {
    if p.have.len() >= max {
        return Err(DropReason::ReasmLimit);
    }
    let end = off + len;
    match (p.end, more) {
        // Data past the end the last fragment gave, or a second, different, last fragment.
        (Some(e), true) if end > e => return Err(DropReason::ReasmOverlap),
        (Some(e), false) if end != e => return Err(DropReason::ReasmOverlap),
        // A last fragment before data already received.
        (None, false) if p.have.last().is_some_and(|r| r.1 > end) => {
            return Err(DropReason::ReasmOverlap)
        }
        _ => {}
    }
    let at = p.have.partition_point(|r| r.0 < off);
    let prev_overlaps = at > 0 && p.have[at - 1].1 > off;
    let next_overlaps = p.have.get(at).is_some_and(|r| r.0 < end);
    if prev_overlaps || next_overlaps {
        return Err(DropReason::ReasmOverlap);
    }
    Ok(at)
}

impl crate::Forwarder {
    /// Set the outer-fragment reassembler's bounds (default [`ReasmLimits::default`]).
    pub fn set_reassembly_limits(&mut self, limits: ReasmLimits) {
        self.reasm.set_limits(limits);
    }

    /// The outer-fragment reassembler (counters, datagrams in progress).
    pub fn reassembler(&self) -> &Reassembler {
        &self.reasm
    }

    /// An outer fragment to our fabric IP in `buf` (the pipeline's fabric stage): held
    /// (`Ok(false)`), or its datagram complete and loaded into `buf` in its place (`Ok(true)`),
    /// or dropped (`Err`, the fragment's own reason; other fragments discarded with it are
    /// counted here).
    #[cold]
    #[inline(never)]
    pub(crate) fn reassemble(
        &mut self,
        vif_in: crate::VifId,
        buf: &mut crate::PacketBuf,
    ) -> Result<bool, DropReason> {
        let now = self.now;
        let r = self.reasm.insert(now, buf.frame());
        // Datagrams found timed out on the way (the table is scanned by `age_flows`).
        let n = std::mem::take(&mut self.reasm.expired);
        self.drops[DropReason::ReasmTimeout as usize] += n;
        match r {
            Ok(Reasm::Held) => Ok(false),
            Ok(Reasm::Done(frame)) => {
                buf.load(&frame);
                Ok(true)
            }
            Err(d) => {
                // The arriving fragment is counted by the pipeline, the others here.
                for _ in 1..d.fragments {
                    self.drop_pkt(vif_in, d.reason);
                }
                Err(d.reason)
            }
        }
    }

    /// Count the fragments of datagrams whose time is up as [`DropReason::ReasmTimeout`].
    pub(crate) fn expire_reasm(&mut self, now: Duration) {
        let n = self.reasm.expire(now);
        if n > 0 {
            self.drops[DropReason::ReasmTimeout as usize] += n;
        }
    }
}
